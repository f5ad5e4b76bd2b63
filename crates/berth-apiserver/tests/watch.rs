//! Watch semantics over HTTPS against an in-process server: resuming from a list's
//! resourceVersion while many writers run sees every change exactly once, in order; after
//! compaction the same resume gets 410 Gone.

use std::collections::BTreeMap;
use std::time::Duration;

mod common;

use berth_apiserver::RunningServer;
use futures::StreamExt;
use serde_json::{Value, json};

async fn server(compaction: Duration) -> (RunningServer, tempfile::TempDir, reqwest::Client) {
    let h = common::start(compaction).await;
    (h.server, h.dir, h.client)
}

async fn rv_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_watch_sees_every_change_once_in_order() {
    let (s, _dir, client) = server(Duration::from_secs(300)).await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", s.url);
    // Some history before the list.
    common::create_configmaps(&client, &base, "pre-", 5).await;
    let list: Value = client
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list_rv: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // 50 writers: create, update twice, delete, each change acknowledged with its revision.
    let mut writers = Vec::new();
    for w in 0..50 {
        let (client, base) = (client.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<(i64, String, String)> = Vec::new();
            let name = format!("w-{w}");
            let body = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name},"data":{"n":"0"}});
            let (st, v) = rv_of(client.post(&base).json(&body).send().await.unwrap()).await;
            assert_eq!(st, 201, "{v}");
            acked.push((v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap(), "ADDED".into(), name.clone()));
            for n in 1..3 {
                let (st, v) = rv_of(
                    client
                        .patch(format!("{base}/{name}"))
                        .header("content-type", "application/merge-patch+json")
                        .body(json!({"data":{"n":n.to_string()}}).to_string())
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                assert_eq!(st, 200, "{v}");
                acked.push((v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap(), "MODIFIED".into(), name.clone()));
            }
            let (st, v) = rv_of(client.delete(format!("{base}/{name}")).send().await.unwrap()).await;
            assert_eq!(st, 200, "{v}");
            acked.push((v["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap(), "DELETED".into(), name));
            acked
        }));
    }
    // The watch starts while the writers run, from the list's revision.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let resp = client
        .get(format!(
            "{base}?watch=true&resourceVersion={list_rv}&timeoutSeconds=60"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut expected: Vec<(i64, String, String)> = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    expected.sort();
    let last = expected.last().unwrap().0;
    let mut seen: Vec<(i64, String, String)> = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.last().is_none_or(|e| e.0 < last) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("watch delivers in time")
            .expect("stream open")
            .unwrap();
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let ev: Value = serde_json::from_slice(&line).unwrap();
            let rv: i64 = ev["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            seen.push((
                rv,
                ev["type"].as_str().unwrap().to_string(),
                ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
        }
    }
    let revisions: Vec<i64> = seen.iter().map(|e| e.0).collect();
    let mut sorted = revisions.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        revisions, sorted,
        "events arrive in strictly increasing revision order, no duplicates"
    );
    assert!(
        seen.iter().all(|e| e.0 > list_rv),
        "nothing at or before the list's revision"
    );
    let seen_map: BTreeMap<i64, (String, String)> =
        seen.into_iter().map(|(r, t, n)| (r, (t, n))).collect();
    let expected_map: BTreeMap<i64, (String, String)> =
        expected.into_iter().map(|(r, t, n)| (r, (t, n))).collect();
    assert_eq!(
        seen_map, expected_map,
        "every acknowledged change exactly once"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_compaction_gets_410() {
    let (s, _dir, client) = server(Duration::from_millis(500)).await;
    let base = format!("{}/api/v1/namespaces/default/configmaps", s.url);
    let list: Value = client
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    common::create_configmaps(&client, &base, "c-", 10).await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let resp = client
        .get(format!(
            "{base}?watch=true&resourceVersion={list_rv}&timeoutSeconds=5"
        ))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap();
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ERROR", "{text}");
    assert_eq!(first["object"]["code"], 410, "{text}");
    // A list at the compacted revision is also gone; a fresh list works.
    let r = client
        .get(format!(
            "{base}?resourceVersion={list_rv}&resourceVersionMatch=Exact"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);
    let r = client.get(&base).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.shutdown().await;
}
