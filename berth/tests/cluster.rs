//! Several nodes on one machine: a server and three `berth agent` processes sharing one
//! dockerd, each managing only its own containers; a frozen agent that comes back leaves its
//! pods untouched.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{TestCluster, busybox_image, eventually, require};
use serde_json::Value;

fn pod_manifest(name: &str, node: &str, image: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "spread"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app",
                "image": image,
                "command": ["sleep", "3600"],
            }],
        },
    })
    .to_string()
}

fn pod(c: &TestCluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn running(c: &TestCluster, name: &str) -> Option<Value> {
    pod(c, name).filter(|p| p["status"]["phase"] == "Running")
}

/// The node labels of the running containers of pod `name`.
fn container_nodes(name: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label=dev.berth.pod.name={name}"),
            "--format",
            "{{.Label \"dev.berth.node\"}}",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn three_agents_each_run_only_their_own_pods() {
    if !require("docker", &["info"]) || !require("kubectl", &["version", "--client"]) {
        return;
    }
    let image = busybox_image();
    let c = TestCluster::start(3);
    let nodes = c.node_names();
    assert_eq!(nodes.len(), 3);
    let listed = c.kubectl_ok(&["get", "nodes", "-o", "name"]);
    for n in &nodes {
        assert!(listed.contains(&format!("node/{n}")), "{listed}");
    }
    // Each node has its own pod CIDR.
    let cidrs: std::collections::BTreeSet<String> = nodes
        .iter()
        .map(|n| c.get_json(&["get", "node", n])["spec"]["podCIDR"].to_string())
        .collect();
    assert_eq!(cidrs.len(), 3, "{cidrs:?}");

    let names: Vec<String> = (0..3).map(|i| format!("on-{}", nodes[i])).collect();
    for (name, node) in names.iter().zip(&nodes) {
        c.kubectl_ok_stdin(&["apply", "-f", "-"], &pod_manifest(name, node, image));
    }
    for (name, node) in names.iter().zip(&nodes) {
        eventually(Duration::from_secs(60), || running(&c, name))
            .unwrap_or_else(|| panic!("{name} runs"));
        // The sandbox and the app container, both made by the pod's own node.
        let made_by = container_nodes(name);
        assert_eq!(made_by.len(), 2, "{made_by:?}");
        assert!(made_by.iter().all(|n| n == node), "{made_by:?} for {node}");
    }
}

#[test]
fn a_frozen_agent_that_resumes_leaves_its_pods_alone() {
    if !require("docker", &["info"]) || !require("kubectl", &["version", "--client"]) {
        return;
    }
    let image = busybox_image();
    let c = TestCluster::start(2);
    let node = c.agents[0].name.clone();
    c.kubectl_ok_stdin(&["apply", "-f", "-"], &pod_manifest("steady", &node, image));
    let before = eventually(Duration::from_secs(60), || running(&c, "steady")).expect("runs");
    let uid = before["metadata"]["uid"].clone();
    c.agents[0].signal("STOP");
    std::thread::sleep(Duration::from_millis(2500));
    c.agents[0].signal("CONT");
    // Give the control plane time to act if it (wrongly) would.
    std::thread::sleep(Duration::from_secs(8));
    let after = running(&c, "steady").expect("still running");
    assert_eq!(after["metadata"]["uid"], uid);
    assert_eq!(
        after["status"]["containerStatuses"][0]["restartCount"], 0,
        "{after}"
    );
    assert_eq!(c.node_ready(&node), Some(true));
}
