//! The scheduler end to end: Node objects without agents (kept Ready by renewing their Leases),
//! pods created through the API, and checks of where they are bound, or of the
//! `PodScheduled` condition and events of those that fit nowhere.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{TestServer, eventually, require};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Node objects with no agent behind them, kept Ready by renewing their Leases in
/// `kube-node-lease` every second until dropped.
struct FakeNodes {
    names: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeNodes {
    fn new(s: &TestServer) -> Self {
        let names: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (kubeconfig, cache) = (s.kubeconfig.clone(), s.cache_dir.clone());
        let (list, flag) = (Arc::clone(&names), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let now = jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
                    .to_string();
                let items: Vec<Value> = list
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|n| {
                        json!({
                            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                            "metadata": {"name": n, "namespace": "kube-node-lease"},
                            "spec": {"holderIdentity": n, "leaseDurationSeconds": 40, "renewTime": now}
                        })
                    })
                    .collect();
                if !items.is_empty() {
                    let body = documents(&items);
                    let mut child = std::process::Command::new("kubectl")
                        .arg("--kubeconfig")
                        .arg(&kubeconfig)
                        .arg("--cache-dir")
                        .arg(&cache)
                        .args(["apply", "-f", "-"])
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("kubectl runs");
                    if let Some(mut stdin) = child.stdin.take() {
                        use std::io::Write;
                        let _ = stdin.write_all(body.as_bytes());
                    }
                    let _ = child.wait();
                }
                std::thread::sleep(Duration::from_millis(800));
            }
        });
        Self {
            names,
            stop,
            thread: Some(thread),
        }
    }

    /// Creates a Ready node `name` with `cpu` CPUs and 8 GiB, extra labels and taints.
    fn add(&self, s: &TestServer, name: &str, cpu: &str, labels: Value, taints: Value) {
        let mut l = json!({"kubernetes.io/hostname": name});
        for (k, v) in labels.as_object().into_iter().flatten() {
            l[k] = v.clone();
        }
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": l},
            "spec": {"taints": taints}
        });
        s.kubectl_ok_stdin(&["create", "-f", "-"], &node.to_string());
        let now = jiff::Timestamp::now().to_string();
        let status = json!({"status": {
            "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "ready", "lastHeartbeatTime": now, "lastTransitionTime": now}]
        }});
        s.kubectl_ok(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
        self.names.lock().unwrap().push(name.to_owned());
    }
}

impl Drop for FakeNodes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tools() -> bool {
    require("kubectl", &["version", "--client"])
}

fn server() -> TestServer {
    // A generous grace period so that a slow Lease renewal on a busy machine does not turn a
    // fake node NotReady in the middle of a check.
    TestServer::start_with(&["--node-monitor-grace-period", "20s"])
}

/// A pod manifest: no agent runs it, it only has to be placed.
fn pod(name: &str, labels: Value, cpu: &str, extra: Value) -> Value {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "registry.example/app:1",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec})
}

/// Objects as a stream of YAML documents (JSON is YAML), for one kubectl call.
fn documents(items: &[Value]) -> String {
    items
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

fn create(s: &TestServer, ns: &str, items: Vec<Value>) {
    s.kubectl_ok_stdin(&["create", "-n", ns, "-f", "-"], &documents(&items));
}

fn pods(s: &TestServer, ns: &str) -> Vec<Value> {
    s.get_json(&["get", "pods", "-n", ns])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn node_of(p: &Value) -> Option<&str> {
    p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty())
}

fn name_of(p: &Value) -> &str {
    p["metadata"]["name"].as_str().unwrap_or("")
}

/// The PodScheduled condition's status, reason and message.
fn scheduled(p: &Value) -> Option<(String, String, String)> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            (s("status"), s("reason"), s("message"))
        })
}

/// Waits until every pod whose name starts with `prefix` is bound; returns pod to node.
fn wait_bound(s: &TestServer, ns: &str, prefix: &str, count: usize) -> BTreeMap<String, String> {
    eventually(WAIT, || {
        let placed: BTreeMap<String, String> = pods(s, ns)
            .iter()
            .filter(|p| name_of(p).starts_with(prefix))
            .filter_map(|p| Some((name_of(p).to_owned(), node_of(p)?.to_owned())))
            .collect();
        (placed.len() == count).then_some(placed)
    })
    .unwrap_or_else(|| panic!("{count} pods {prefix}* bound in {ns}: {:#?}", pods(s, ns)))
}

/// Waits until pod `name` is Unschedulable with `message`.
fn wait_unschedulable(s: &TestServer, ns: &str, name: &str, message: &str) {
    eventually(WAIT, || {
        let p = s.get_json(&["get", "pod", "-n", ns, name]);
        (node_of(&p).is_none()
            && scheduled(&p) == Some(("False".into(), "Unschedulable".into(), message.to_owned())))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{name} Unschedulable with {message:?}: {:#}",
            s.get_json(&["get", "pod", "-n", ns, name])
        )
    });
}

/// The events of namespace `ns` about object `name`: (type, reason, message).
fn events(s: &TestServer, ns: &str, name: &str) -> Vec<(String, String, String)> {
    s.get_json(&["get", "events", "-n", ns])["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            (f("type"), f("reason"), f("message"))
        })
        .collect()
}

fn per_node(placed: &BTreeMap<String, String>) -> Vec<usize> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in placed.values() {
        *counts.entry(n).or_default() += 1;
    }
    let mut v: Vec<usize> = counts.into_values().collect();
    v.sort();
    v
}

#[test]
fn anti_affinity_spreads_pods_and_the_extra_replica_waits_with_kubernetes_message() {
    if !tools() {
        return;
    }
    let s = server();
    let nodes = FakeNodes::new(&s);
    for n in ["sched-a", "sched-b", "sched-c"] {
        nodes.add(&s, n, "4", json!({}), json!([]));
    }
    s.kubectl_ok(&["create", "namespace", "spread"]);

    // Preferred anti-affinity: six replicas spread 2-2-2.
    let term = |app: &str| {
        json!({"topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": {"app": app}}})
    };
    let web: Vec<Value> = (0..6)
        .map(|i| {
            pod(
                &format!("web-{i}"),
                json!({"app": "web"}),
                "100m",
                json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution":
                    [{"weight": 100, "podAffinityTerm": term("web")}]}}}),
            )
        })
        .collect();
    create(&s, "spread", web);
    let placed = wait_bound(&s, "spread", "web-", 6);
    assert_eq!(per_node(&placed), vec![2, 2, 2], "{placed:?}");
    let node = &placed["web-0"];
    let ev = events(&s, "spread", "web-0");
    assert!(
        ev.contains(&(
            "Normal".into(),
            "Scheduled".into(),
            format!("Successfully assigned spread/web-0 to {node}")
        )),
        "{ev:?}"
    );
    let p = s.get_json(&["get", "pod", "-n", "spread", "web-0"]);
    assert_eq!(scheduled(&p).map(|c| c.0), Some("True".into()));

    // Required anti-affinity: three of four run, one per node; the fourth waits.
    let one: Vec<Value> = (0..4)
        .map(|i| {
            pod(
                &format!("one-{i}"),
                json!({"app": "one"}),
                "100m",
                json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    [term("one")]}}}),
            )
        })
        .collect();
    create(&s, "spread", one);
    let placed = wait_bound(&s, "spread", "one-", 3);
    assert_eq!(per_node(&placed), vec![1, 1, 1]);
    let waiting = (0..4)
        .map(|i| format!("one-{i}"))
        .find(|n| !placed.contains_key(n))
        .unwrap();
    let message = "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.";
    wait_unschedulable(&s, "spread", &waiting, message);
    let ev = eventually(WAIT, || {
        let ev = events(&s, "spread", &waiting);
        ev.iter().any(|e| e.1 == "FailedScheduling").then_some(ev)
    })
    .expect("a FailedScheduling event");
    assert!(
        ev.contains(&("Warning".into(), "FailedScheduling".into(), message.into())),
        "{ev:?}"
    );
    // Trying again writes nothing new while nothing changes.
    let rv = s.get_json(&["get", "pod", "-n", "spread", &waiting])["metadata"]["resourceVersion"]
        .clone();
    std::thread::sleep(Duration::from_secs(3));
    let again = s.get_json(&["get", "pod", "-n", "spread", &waiting]);
    assert_eq!(again["metadata"]["resourceVersion"], rv, "no write loop");

    // A replica going away makes room: the waiting one is placed where it was.
    let (gone, freed) = placed
        .iter()
        .next()
        .map(|(p, n)| (p.clone(), n.clone()))
        .unwrap();
    s.kubectl_ok(&[
        "delete",
        "pod",
        "-n",
        "spread",
        &gone,
        "--grace-period=0",
        "--force",
    ]);
    let now_at = eventually(WAIT, || {
        let p = s.get_json(&["get", "pod", "-n", "spread", &waiting]);
        node_of(&p).map(str::to_owned)
    })
    .expect("the waiting replica is placed once a node frees up");
    assert_eq!(now_at, freed);

    // More CPU than any node has.
    create(&s, "spread", vec![pod("huge", json!({}), "100", json!({}))]);
    wait_unschedulable(
        &s,
        "spread",
        "huge",
        "0/3 nodes are available: 3 Insufficient cpu.",
    );
}

#[test]
fn taints_selectors_and_requests_place_pods_where_the_rules_say() {
    if !tools() {
        return;
    }
    let s = server();
    let nodes = FakeNodes::new(&s);
    nodes.add(&s, "small", "2", json!({"disk": "ssd"}), json!([]));
    nodes.add(&s, "big", "4", json!({}), json!([]));
    nodes.add(
        &s,
        "gpu",
        "4",
        json!({"accelerator": "gpu"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    );
    s.kubectl_ok(&["create", "namespace", "mixed"]);

    let tolerate =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    create(
        &s,
        "mixed",
        vec![
            pod(
                "trainer",
                json!({}),
                "1",
                json!({"tolerations": tolerate, "nodeSelector": {"accelerator": "gpu"}}),
            ),
            pod(
                "db",
                json!({}),
                "100m",
                json!({"nodeSelector": {"disk": "ssd"}}),
            ),
            pod("fat", json!({}), "3", json!({})),
        ],
    );
    let placed = wait_bound(&s, "mixed", "", 3);
    assert_eq!(placed["trainer"], "gpu");
    assert_eq!(placed["db"], "small");
    assert_eq!(
        placed["fat"], "big",
        "only big has 3 CPUs free and no taint"
    );

    let plain: Vec<Value> = (0..6)
        .map(|i| pod(&format!("plain-{i}"), json!({}), "100m", json!({})))
        .collect();
    create(&s, "mixed", plain);
    let placed = wait_bound(&s, "mixed", "plain-", 6);
    assert!(
        placed.values().all(|n| n != "gpu"),
        "the tainted node takes only tolerating pods: {placed:?}"
    );

    create(&s, "mixed", vec![pod("huge", json!({}), "3", json!({}))]);
    wait_unschedulable(
        &s,
        "mixed",
        "huge",
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.",
    );

    // A cordoned node takes no new pod, and says so.
    s.kubectl_ok(&["cordon", "big"]);
    create(&s, "mixed", vec![pod("late", json!({}), "100m", json!({}))]);
    let placed = wait_bound(&s, "mixed", "late", 1);
    assert_eq!(placed["late"], "small");
    create(
        &s,
        "mixed",
        vec![pod(
            "picky",
            json!({}),
            "100m",
            json!({"nodeSelector": {"kubernetes.io/hostname": "big"}}),
        )],
    );
    wait_unschedulable(
        &s,
        "mixed",
        "picky",
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable.",
    );

    // A new node with room is used for the pod that waited.
    nodes.add(&s, "extra", "8", json!({}), json!([]));
    let at = eventually(WAIT, || {
        node_of(&s.get_json(&["get", "pod", "-n", "mixed", "huge"])).map(str::to_owned)
    })
    .expect("huge is placed on the new node");
    assert_eq!(at, "extra");

    // Every pod on the tainted node tolerates its taint.
    for p in pods(&s, "mixed") {
        if node_of(&p) == Some("gpu") {
            assert!(
                p["spec"]["tolerations"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["key"] == "dedicated"))
            );
        }
    }
}
