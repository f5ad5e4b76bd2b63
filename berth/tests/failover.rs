//! Node failover across real agent processes: when a machine dies (its agent killed and its
//! containers gone), its node turns NotReady and the Deployment's pods run again on the other
//! nodes. And two controller processes never both act: one Deployment, one set of pods.

mod common;

use std::time::Duration;

use common::{ControllersProcess, TestCluster, TestServer, busybox_image, eventually, require};
use serde_json::Value;

const LEASE: &str = "berth-controllers";

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "app",
                        "image": image,
                        "command": ["sleep", "3600"],
                        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                    }],
                },
            },
        },
    })
    .to_string()
}

/// The pods of `app`: (name, node, ready, being deleted).
fn pods(s: &TestServer, app: &str) -> Vec<(String, String, bool, bool)> {
    let list = s.get_json(&["get", "pods", "-l", &format!("app={app}")]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p: &Value| {
            let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                ready,
                !p["metadata"]["deletionTimestamp"].is_null(),
            )
        })
        .collect()
}

#[test]
fn pods_of_a_dead_node_run_again_elsewhere() {
    if !require("docker", &["info"]) || !require("kubectl", &["version", "--client"]) {
        return;
    }
    let image = busybox_image();
    let mut c = TestCluster::start(3);
    c.kubectl_ok_stdin(&["apply", "-f", "-"], &deployment("web", 3, image));
    let placed = eventually(Duration::from_secs(90), || {
        let p = pods(&c, "web");
        (p.len() == 3 && p.iter().all(|p| p.2)).then_some(p)
    })
    .expect("3 ready replicas");
    let victim = placed[0].1.clone();
    let index = c
        .agents
        .iter()
        .position(|a| a.name == victim)
        .expect("the pod's node is one of ours");
    c.agents[index].kill_machine();

    eventually(Duration::from_secs(60), || {
        (c.node_ready(&victim) != Some(true)).then_some(())
    })
    .expect("the dead node turns NotReady");
    let taints = c.get_json(&["get", "node", &victim])["spec"]["taints"].to_string();
    assert!(
        taints.contains("node.kubernetes.io/unreachable"),
        "{taints}"
    );
    let after = eventually(Duration::from_secs(90), || {
        let p = pods(&c, "web");
        let live: Vec<_> = p.iter().filter(|p| !p.3 && p.1 != victim).collect();
        (live.len() == 3 && live.iter().all(|p| p.2)).then_some(p)
    })
    .expect("3 ready replicas on the surviving nodes");
    assert!(
        after.iter().filter(|p| !p.3).all(|p| p.1 != victim),
        "{after:?}"
    );
}

#[test]
fn two_controller_processes_make_one_set_of_pods() {
    if !require("kubectl", &["version", "--client"]) {
        return;
    }
    // No nodes: the pods stay Pending, which is all this needs to count them.
    let s = TestServer::start_with(&["--disable-controllers"]);
    let mut a = ControllersProcess::start(&s, "first");
    eventually(Duration::from_secs(20), || {
        s.lease_holder(LEASE).filter(|h| h == "first")
    })
    .expect("first leads");
    let _b = ControllersProcess::start(&s, "second");
    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        &deployment("dup", 4, "berth-test/none:1"),
    );
    eventually(Duration::from_secs(30), || {
        (pods(&s, "dup").len() == 4).then_some(())
    })
    .expect("4 pods");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(pods(&s, "dup").len(), 4, "no duplicates while both run");
    assert_eq!(
        s.get_json(&["get", "replicasets", "-l", "app=dup"])["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    a.kill9();
    eventually(Duration::from_secs(30), || {
        s.lease_holder(LEASE).filter(|h| h == "second")
    })
    .expect("second takes over");
    s.kubectl_ok(&["scale", "deployment", "dup", "--replicas", "6"]);
    eventually(Duration::from_secs(30), || {
        (pods(&s, "dup").len() == 6).then_some(())
    })
    .expect("the new leader scales to 6");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pods(&s, "dup").len(), 6);
}
