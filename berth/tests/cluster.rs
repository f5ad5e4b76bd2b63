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

/// A unix-socket proxy in front of dockerd that can be cut, as if the engine died.
struct EngineProxy {
    path: std::path::PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl EngineProxy {
    fn start(path: &std::path::Path) -> Self {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("proxy socket");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, c) = (stop.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    continue;
                };
                let (Ok(c2), Ok(e2)) = (client.try_clone(), engine.try_clone()) else {
                    continue;
                };
                c.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), engine.try_clone().unwrap()]);
                let pipe = |mut from: UnixStream, mut to: UnixStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                pipe(client, e2);
                pipe(engine, c2);
            }
        });
        Self {
            path: path.to_path_buf(),
            stop,
            conns,
        }
    }

    /// Closes every connection and the socket.
    fn cut(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
        let _ = std::fs::remove_file(&self.path);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn ready_condition(c: &TestCluster, node: &str) -> Option<(String, String)> {
    let n = c.get_json(&["get", "node", node]);
    n["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

#[test]
fn a_node_whose_engine_is_unreachable_reports_not_ready_and_recovers() {
    if !require("docker", &["info"]) || !require("kubectl", &["version", "--client"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("docker.sock");
    let proxy = EngineProxy::start(&sock);
    let mut c = TestCluster::start(0);
    let host = format!("unix://{}", sock.display());
    let i = c.add_agent_with_env(&[("DOCKER_HOST", host.as_str())]);
    let node = c.agents[i].name.clone();
    // Set up (its network exists), then the engine goes away.
    eventually(Duration::from_secs(30), || {
        let out = Command::new("docker")
            .args(["network", "ls", "-q", "--filter"])
            .arg(format!("label=dev.berth.node={node}"))
            .output()
            .ok()?;
        (!out.stdout.is_empty()).then_some(())
    })
    .expect("the node's network");
    std::thread::sleep(Duration::from_secs(1));
    proxy.cut();
    let (status, message) = eventually(Duration::from_secs(30), || {
        ready_condition(&c, &node).filter(|(s, _)| s == "False")
    })
    .expect("Ready turns False while the engine is unreachable");
    assert_eq!(status, "False");
    assert!(message.contains("container runtime is down"), "{message}");

    let _back = EngineProxy::start(&sock);
    eventually(Duration::from_secs(30), || {
        ready_condition(&c, &node).filter(|(s, _)| s == "True")
    })
    .expect("Ready again once the engine answers");
}
