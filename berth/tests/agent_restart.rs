//! End to end: a separate `berth agent` joined with a token survives `kill -9`: after a restart
//! (no token needed) it adopts the containers it already runs, cleans up a pod deleted during
//! the outage and restarts a container killed during it with restartCount + 1.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{
    TestServer, busybox_image, eventually, remove_node_containers, require, unique_cluster_cidr,
    unique_node_name,
};
use serde_json::Value;

/// A `berth agent` process; killed and its containers removed on drop.
struct Agent {
    child: Option<Child>,
    node: String,
}

impl Agent {
    fn spawn(server: &TestServer, dir: &Path, node: &str, token: Option<&str>) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.args(["agent", "--data-dir"]).arg(dir).args([
            "--node-name",
            node,
            "--node-ip",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--lease-renew-interval",
            "1s",
        ]);
        if let Some(t) = token {
            cmd.args(["--server", &server.url, "--token", t]);
        }
        cmd.env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("berth agent starts")
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        remove_node_containers(&self.node);
    }
}

fn docker_ids(node: &str, pod: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-q", "--no-trunc"])
        .args(extra)
        .args([
            "--filter",
            &format!("label=dev.berth.node={node}"),
            "--filter",
            &format!("label=dev.berth.pod.name={pod}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn pod_json(s: &TestServer, name: &str) -> Option<Value> {
    let out = s.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn a_restarted_agent_adopts_its_containers_and_catches_up() {
    if !(require("docker", &["info"]) && require("kubectl", &["version", "--client"])) {
        return;
    }
    let img = busybox_image();
    let s = TestServer::start_with(&["--cluster-cidr", &unique_cluster_cidr()]);
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["token", "create", "--data-dir"])
        .arg(s.data_dir())
        .output()
        .expect("berth token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let node = unique_node_name();
    let dir = s.data_dir().join("standalone-agent");
    let mut agent = Agent {
        child: Some(Agent::spawn(&s, &dir, &node, Some(&token))),
        node: node.clone(),
    };
    let ready = eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
    assert!(ready.is_some(), "the joined node becomes Ready");
    for name in ["keep", "gone"] {
        s.kubectl_ok_stdin(
            &["apply", "-f", "-"],
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {img}\n    command: [sleep, '3600']\n"
            ),
        );
    }
    let running =
        |name: &str| pod_json(&s, name).is_some_and(|p| p["status"]["phase"] == "Running");
    assert!(
        eventually(Duration::from_secs(60), || (running("keep")
            && running("gone"))
        .then_some(()))
        .is_some(),
        "both pods run"
    );
    let uid = pod_json(&s, "keep").unwrap()["metadata"]["uid"].clone();
    let keep_before = docker_ids(&node, "keep", &[]);
    assert_eq!(keep_before.len(), 2, "sandbox and app container");

    // The machine loses its agent; meanwhile one pod is deleted and a container dies.
    agent.kill9();
    s.kubectl_ok(&["delete", "pod", "gone", "--wait=false"]);
    let app = docker_ids(
        &node,
        "keep",
        &["--filter", "label=dev.berth.kind=container"],
    );
    assert_eq!(app.len(), 1);
    let killed = Command::new("docker")
        .args(["kill", &app[0]])
        .output()
        .unwrap();
    assert!(killed.status.success());

    agent.child = Some(Agent::spawn(&s, &dir, &node, None));
    let cleaned = eventually(Duration::from_secs(60), || {
        (pod_json(&s, "gone").is_none() && docker_ids(&node, "gone", &["-a"]).is_empty())
            .then_some(())
    });
    assert!(
        cleaned.is_some(),
        "the pod deleted during the outage is cleaned up"
    );
    let restarted = eventually(Duration::from_secs(60), || {
        let p = pod_json(&s, "keep")?;
        let cs = &p["status"]["containerStatuses"][0];
        (cs["restartCount"] == 1 && cs["state"]["running"].is_object()).then_some(p)
    })
    .expect("the killed container is restarted with restartCount 1");
    assert_eq!(restarted["metadata"]["uid"], uid);
    let keep_after = docker_ids(&node, "keep", &[]);
    assert_eq!(keep_after.len(), 2, "no duplicates: {keep_after:?}");
    let sandbox = docker_ids(&node, "keep", &["--filter", "label=dev.berth.kind=sandbox"]);
    assert!(
        keep_before.contains(&sandbox[0]),
        "the sandbox was adopted, not recreated"
    );
}
