//! Durability: every create the server acknowledged survives `kill -9` of the server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestServer, admin_client};
use serde_json::{Value, json};

#[test]
fn acknowledged_creates_survive_kill_9() {
    let mut server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (client, url) = admin_client(&server.kubeconfig);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, url, acked, stop) = (client.clone(), url.clone(), Arc::clone(&acked), Arc::clone(&stop));
            rt.spawn(async move {
                for i in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let name = format!("w{w}-{i}");
                    let body = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name},"data":{"v":"x".repeat(512)}});
                    let r = client.post(format!("{url}/api/v1/namespaces/default/configmaps")).json(&body).send().await;
                    match r {
                        Ok(resp) if resp.status().as_u16() == 201 => acked.lock().unwrap().push(name),
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    server.kill9();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    rt.block_on(async {
        for w in writers {
            let _ = w.await;
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "the load should have created objects before the kill ({})",
        acked.len()
    );
    server.restart();
    let (client, url) = admin_client(&server.kubeconfig);
    let list: Value = rt.block_on(async {
        client
            .get(format!("{url}/api/v1/namespaces/default/configmaps"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let present: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates were lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

#[test]
fn service_addresses_are_never_handed_out_twice_across_restarts() {
    let mut server = TestServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let create = |server: &TestServer, prefix: &str| -> Vec<(String, u64)> {
        let (client, url) = admin_client(&server.kubeconfig);
        rt.block_on(async {
            let mut out = Vec::new();
            for i in 0..10 {
                let body = json!({"apiVersion":"v1","kind":"Service","metadata":{"name":format!("{prefix}{i}")},"spec":{"type":"NodePort","ports":[{"port":80}]}});
                let v: Value = client.post(format!("{url}/api/v1/namespaces/default/services")).json(&body).send().await.unwrap().json().await.unwrap();
                out.push((v["spec"]["clusterIP"].as_str().unwrap().to_string(), v["spec"]["ports"][0]["nodePort"].as_u64().unwrap()));
            }
            out
        })
    };
    let before = create(&server, "a");
    server.restart();
    let after = create(&server, "b");
    let ips: std::collections::HashSet<&String> =
        before.iter().chain(&after).map(|(ip, _)| ip).collect();
    let ports: std::collections::HashSet<u64> =
        before.iter().chain(&after).map(|(_, p)| *p).collect();
    assert_eq!(ips.len(), 20, "{before:?} {after:?}");
    assert_eq!(ports.len(), 20, "{before:?} {after:?}");
}
