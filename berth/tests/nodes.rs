//! Node lifecycle, Endpoints and EndpointSlices, disruption budgets and `kubectl drain` against
//! a real `berth server`: fake nodes (a Node and a Lease this test renews, pods bound to them
//! with a status written through the status subresource), and the server's own node on Docker
//! for the drain.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{TestServer, eventually, require};
use serde_json::{Value, json};

fn now_micro() -> String {
    berth_api::meta::format_micro_time(jiff::Timestamp::now())
}

fn now_time() -> String {
    berth_api::meta::format_time(jiff::Timestamp::now())
}

fn kubectl_at(kubeconfig: &std::path::Path, args: &[&str]) -> bool {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The conditions of a healthy node, heartbeat now.
fn healthy_conditions() -> Value {
    let now = now_time();
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": "",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!([
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID"),
        cond("Ready", "True", "KubeletReady"),
    ])
}

/// A node registered through the API whose Lease a thread renews every second while
/// `renewing` is set.
struct FakeNode {
    name: String,
    renewing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeNode {
    fn register(s: &TestServer, name: &str, zone: &str) -> FakeNode {
        let node = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone}},
            "status": {"conditions": healthy_conditions(),
                       "addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]},
        });
        s.kubectl_ok_stdin(&["create", "-f", "-"], &node.to_string());
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 10, "renewTime": now_micro()},
        });
        s.kubectl_ok_stdin(&["create", "-f", "-"], &lease.to_string());
        let renewing = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (renewing, stop) = (Arc::clone(&renewing), Arc::clone(&stop));
            let kubeconfig = s.kubeconfig.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if renewing.load(Ordering::SeqCst) {
                        let patch = json!({"spec": {"renewTime": now_micro()}}).to_string();
                        kubectl_at(
                            &kubeconfig,
                            &[
                                "patch",
                                "lease",
                                &name,
                                "-n",
                                "kube-node-lease",
                                "--type=merge",
                                "-p",
                                &patch,
                            ],
                        );
                    }
                    std::thread::sleep(Duration::from_millis(1000));
                }
            })
        };
        FakeNode {
            name: name.to_string(),
            renewing,
            stop,
            thread: Some(thread),
        }
    }

    fn pause(&self) {
        self.renewing.store(false, Ordering::SeqCst);
    }

    /// Renews the Lease again and posts a Ready status, as a returning agent does.
    fn resume(&self, s: &TestServer) {
        self.renewing.store(true, Ordering::SeqCst);
        let patch = json!({"status": {"conditions": healthy_conditions()}}).to_string();
        s.kubectl_ok(&[
            "patch",
            "node",
            &self.name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ]);
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn node(s: &TestServer, name: &str) -> Value {
    s.get_json(&["get", "node", name])
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn taints(node: &Value) -> Vec<(String, String)> {
    node["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["key"].as_str().unwrap_or_default().to_string(),
                t["effect"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn has_taint(node: &Value, key: &str, effect: &str) -> bool {
    taints(node).iter().any(|(k, e)| k == key && e == effect)
}

/// Creates a pod bound to `node` (no scheduler involved) from extra spec fields.
fn bound_pod(s: &TestServer, name: &str, node: &str, labels: Value, extra_spec: Value) {
    let mut spec = json!({
        "nodeName": node,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": "berth-test/busybox:1",
                        "ports": [{"name": "http", "containerPort": 8080}]}],
    });
    if let (Some(m), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": name, "labels": labels}, "spec": spec});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &pod.to_string());
}

/// Writes a pod's status as an agent would: Running with `ip`, Ready or not.
fn set_pod_status(s: &TestServer, name: &str, ip: &str, ready: bool) {
    let ready = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now_time()},
                       {"type": "ContainersReady", "status": ready, "lastTransitionTime": now_time()}]}});
    s.kubectl_ok(&[
        "patch",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

#[test]
fn a_silent_node_turns_not_ready_and_its_pods_are_evicted_after_their_toleration() {
    if !require("kubectl", &["version", "--client"]) {
        return;
    }
    let s = TestServer::start();
    let fake = FakeNode::register(&s, "fake-silent", "zone-a");
    bound_pod(&s, "doomed", "fake-silent", json!({"app": "x"}), json!({}));
    bound_pod(
        &s,
        "patient",
        "fake-silent",
        json!({"app": "x"}),
        json!({"tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                "effect": "NoExecute"}]}),
    );
    set_pod_status(&s, "pod/doomed", "10.99.0.5", true);

    // Admission gave the pod Berth's short default tolerations.
    let pod = s.get_json(&["get", "pod", "doomed"]);
    let tolerations = pod["spec"]["tolerations"].as_array().expect("tolerations");
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let t = tolerations
            .iter()
            .find(|t| t["key"] == key)
            .unwrap_or_else(|| panic!("a {key} toleration: {tolerations:?}"));
        assert_eq!(t["effect"], "NoExecute");
        assert_eq!(t["tolerationSeconds"], 2);
    }

    // Renewing, the node stays Ready well past the grace period.
    std::thread::sleep(Duration::from_secs(7));
    let n = node(&s, "fake-silent");
    assert_eq!(condition(&n, "Ready").expect("Ready")["status"], "True");
    assert!(
        !has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute"),
        "{n}"
    );

    // Silent: NotReady with the unreachable taints within the grace period (5 s) plus the
    // monitor period.
    fake.pause();
    let silent = Instant::now();
    let n = eventually(Duration::from_secs(15), || {
        let n = node(&s, "fake-silent");
        (condition(&n, "Ready")?["status"] == "Unknown"
            && has_taint(&n, "node.kubernetes.io/unreachable", "NoExecute"))
        .then_some(n)
    })
    .unwrap_or_else(|| panic!("the node turns NotReady: {}", node(&s, "fake-silent")));
    let took = silent.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took <= Duration::from_secs(9),
        "NotReady after {took:?}"
    );
    assert!(has_taint(
        &n,
        "node.kubernetes.io/unreachable",
        "NoSchedule"
    ));
    for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = condition(&n, t).expect("condition");
        assert_eq!(c["status"], "Unknown", "{t}");
        assert_eq!(c["reason"], "NodeStatusUnknown", "{t}");
        assert_eq!(c["message"], "Kubelet stopped posting node status.", "{t}");
    }
    let tainted: jiff::Timestamp = n["spec"]["taints"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                t["key"] == "node.kubernetes.io/unreachable" && t["effect"] == "NoExecute"
            })
        })
        .and_then(|t| t["timeAdded"].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("the NoExecute taint says when it was added: {n}"));

    // Its pods are marked not Ready, and deleted after their 2 s toleration, but the one
    // tolerating the taint for ever stays.
    let pod = eventually(Duration::from_secs(10), || {
        let p = s.get_json(&["get", "pod", "doomed"]);
        p["metadata"]["deletionTimestamp"].is_string().then_some(p)
    })
    .expect("the pod is deleted");
    // The deletion came at deletionTimestamp minus the grace period; both stamps have whole
    // seconds, so 2 s of toleration show as at least 1.
    let meta = &pod["metadata"];
    let deleted: jiff::Timestamp = meta["deletionTimestamp"].as_str().unwrap().parse().unwrap();
    let grace = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
    let after = deleted.as_second() - grace - tainted.as_second();
    assert!(after >= 1, "deleted {after} s after the taint: {pod}");
    assert_eq!(condition(&pod, "Ready").expect("Ready")["status"], "False");
    let patient = s.get_json(&["get", "pod", "patient"]);
    assert!(
        patient["metadata"]["deletionTimestamp"].is_null(),
        "{patient}"
    );

    // Back: Ready again and the taints are gone.
    fake.resume(&s);
    eventually(Duration::from_secs(10), || {
        let n = node(&s, "fake-silent");
        let clear = !taints(&n).iter().any(|(k, _)| {
            k == "node.kubernetes.io/unreachable" || k == "node.kubernetes.io/not-ready"
        });
        (condition(&n, "Ready")?["status"] == "True" && clear).then_some(())
    })
    .expect("Ready again without taints");
}

#[test]
fn an_agent_reporting_not_ready_gets_the_not_ready_taints_and_cordon_the_unschedulable_one() {
    if !require("kubectl", &["version", "--client"]) {
        return;
    }
    let s = TestServer::start();
    let _fake = FakeNode::register(&s, "fake-sick", "zone-a");
    s.kubectl_ok(&["cordon", "fake-sick"]);
    eventually(Duration::from_secs(10), || {
        has_taint(
            &node(&s, "fake-sick"),
            "node.kubernetes.io/unschedulable",
            "NoSchedule",
        )
        .then_some(())
    })
    .expect("cordoned: the unschedulable taint");
    s.kubectl_ok(&["uncordon", "fake-sick"]);
    eventually(Duration::from_secs(10), || {
        (!has_taint(
            &node(&s, "fake-sick"),
            "node.kubernetes.io/unschedulable",
            "NoSchedule",
        ))
        .then_some(())
    })
    .expect("uncordoned: no unschedulable taint");

    // The agent itself says Ready=False (its lease still renewed).
    let mut conditions = healthy_conditions();
    conditions[3]["status"] = json!("False");
    conditions[3]["reason"] = json!("KubeletNotReady");
    let patch = json!({"status": {"conditions": conditions}}).to_string();
    s.kubectl_ok(&[
        "patch",
        "node",
        "fake-sick",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
    let n = eventually(Duration::from_secs(10), || {
        let n = node(&s, "fake-sick");
        (has_taint(&n, "node.kubernetes.io/not-ready", "NoExecute")
            && has_taint(&n, "node.kubernetes.io/not-ready", "NoSchedule"))
        .then_some(n)
    })
    .expect("not-ready taints");
    assert!(!has_taint(
        &n,
        "node.kubernetes.io/unreachable",
        "NoExecute"
    ));
    assert_eq!(condition(&n, "Ready").expect("Ready")["status"], "False");
}

fn endpoints(s: &TestServer, name: &str) -> Option<Value> {
    let out = s.kubectl(&["get", "endpoints", name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn ips(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["ip"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn slices(s: &TestServer, service: &str) -> Vec<Value> {
    let list = s.get_json(&[
        "get",
        "endpointslices.discovery.k8s.io",
        "-l",
        &format!("kubernetes.io/service-name={service}"),
    ]);
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn endpoints_and_slices_list_ready_and_not_ready_pods() {
    if !require("kubectl", &["version", "--client"]) {
        return;
    }
    // The fake node's lease is never renewed here: a long grace period keeps it Ready.
    let s = TestServer::start_with(&["--node-monitor-grace-period", "1h"]);
    let fake = FakeNode::register(&s, "fake-ep", "zone-b");
    fake.pause();
    for (name, ip, ready) in [
        ("web-a", "10.99.1.1", true),
        ("web-b", "10.99.1.2", true),
        ("web-c", "10.99.1.3", false),
    ] {
        bound_pod(&s, name, "fake-ep", json!({"app": "web"}), json!({}));
        set_pod_status(&s, &format!("pod/{name}"), ip, ready);
    }
    bound_pod(&s, "db", "fake-ep", json!({"app": "db"}), json!({}));
    set_pod_status(&s, "pod/db", "10.99.1.9", true);
    let svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "labels": {"team": "a"}},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &svc.to_string());

    let ep = eventually(Duration::from_secs(15), || {
        let e = endpoints(&s, "web")?;
        let subset = &e["subsets"][0];
        (ips(&subset["addresses"]).len() == 2 && ips(&subset["notReadyAddresses"]).len() == 1)
            .then_some(e)
    })
    .expect("Endpoints with two ready and one not ready address");
    let subset = &ep["subsets"][0];
    assert_eq!(ips(&subset["addresses"]), ["10.99.1.1", "10.99.1.2"]);
    assert_eq!(ips(&subset["notReadyAddresses"]), ["10.99.1.3"]);
    assert_eq!(
        subset["ports"],
        json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
    );
    let a = &subset["addresses"][0];
    assert_eq!(a["nodeName"], "fake-ep");
    assert_eq!(a["targetRef"]["kind"], "Pod");
    assert_eq!(ep["metadata"]["labels"]["team"], "a");

    let slice = eventually(Duration::from_secs(15), || {
        let list = slices(&s, "web");
        (list.len() == 1 && list[0]["endpoints"].as_array()?.len() == 3).then(|| list[0].clone())
    })
    .expect("one EndpointSlice with three endpoints");
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["name"], "web");
    assert_eq!(
        slice["ports"],
        json!([{"name": "web", "port": 8080, "protocol": "TCP"}])
    );
    for e in slice["endpoints"].as_array().expect("endpoints") {
        let ready = e["addresses"][0] != "10.99.1.3";
        assert_eq!(e["conditions"]["ready"], ready, "{e}");
        assert_eq!(e["conditions"]["serving"], ready, "{e}");
        assert_eq!(e["conditions"]["terminating"], false, "{e}");
        assert_eq!(e["nodeName"], "fake-ep");
        assert_eq!(e["zone"], "zone-b");
    }

    // Nothing changes: nothing is written.
    let rv = |v: &Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_string)
    };
    let (ep_rv, slice_rv) = (rv(&ep), rv(&slice));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rv(&endpoints(&s, "web").expect("endpoints")), ep_rv);
    assert_eq!(rv(&slices(&s, "web")[0]), slice_rv);

    // web-c turns ready, web-a goes.
    set_pod_status(&s, "pod/web-c", "10.99.1.3", true);
    s.kubectl_ok(&["delete", "pod", "web-a", "--grace-period=0", "--force"]);
    eventually(Duration::from_secs(15), || {
        let e = endpoints(&s, "web")?;
        let subset = &e["subsets"][0];
        (ips(&subset["addresses"]) == ["10.99.1.2", "10.99.1.3"]
            && subset["notReadyAddresses"].is_null())
        .then_some(())
    })
    .expect("Endpoints follow the pods");
    eventually(Duration::from_secs(15), || {
        let list = slices(&s, "web");
        let eps = list.first()?["endpoints"].as_array()?.clone();
        (list.len() == 1 && eps.len() == 2 && eps.iter().all(|e| e["conditions"]["ready"] == true))
            .then_some(())
    })
    .expect("the slice follows the pods");

    // A Service without a selector keeps the Endpoints its user writes; `kubernetes` keeps
    // the API server's.
    let manual = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external"},
                        "spec": {"ports": [{"port": 5432}]}});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &manual.to_string());
    let eps = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external"},
                     "subsets": [{"addresses": [{"ip": "192.0.2.50"}], "ports": [{"port": 5432}]}]});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &eps.to_string());
    std::thread::sleep(Duration::from_secs(2));
    let e = endpoints(&s, "external").expect("user's Endpoints");
    assert_eq!(ips(&e["subsets"][0]["addresses"]), ["192.0.2.50"]);
    assert!(slices(&s, "external").is_empty());
    let k = endpoints(&s, "kubernetes").expect("kubernetes Endpoints");
    assert_eq!(ips(&k["subsets"][0]["addresses"]).len(), 1, "{k}");

    // Deleting the Service removes its Endpoints and slices.
    s.kubectl_ok(&["delete", "service", "web"]);
    eventually(Duration::from_secs(15), || {
        (endpoints(&s, "web").is_none() && slices(&s, "web").is_empty()).then_some(())
    })
    .expect("Endpoints and slices removed with the Service");
}

fn pdb_status(s: &TestServer, name: &str) -> Value {
    s.get_json(&["get", "pdb", name])["status"].clone()
}

#[test]
fn kubectl_drain_evicts_the_real_nodes_pods_and_honours_a_disruption_budget() {
    if !require("kubectl", &["version", "--client"]) || !require("docker", &["version"]) {
        return;
    }
    let image = common::busybox_image();
    let s = TestServer::start_with_agent(&[]);
    let node_name = s.node.clone().expect("the server runs a node");
    eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&["get", "node", &node_name, "-o", "json"]);
        let n: Value = serde_json::from_slice(&out.stdout).ok()?;
        (condition(&n, "Ready")?["status"] == "True").then_some(())
    })
    .expect("the node is Ready");

    // Two replicas pinned to the node (no scheduler needed), guarded by a budget that
    // allows no disruption.
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "nodeName": node_name, "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "containers": [{"name": "c", "image": image, "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]}}}});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &rs.to_string());
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
    s.kubectl_ok_stdin(&["create", "-f", "-"], &pdb.to_string());
    let status = eventually(Duration::from_secs(90), || {
        let st = pdb_status(&s, "web");
        (st["currentHealthy"] == 2).then_some(st)
    })
    .expect("two healthy pods counted by the budget");
    assert_eq!(status["desiredHealthy"], 2);
    assert_eq!(status["expectedPods"], 2);
    assert_eq!(status["disruptionsAllowed"], 0);
    let c = &status["conditions"][0];
    assert_eq!(
        (&c["type"], &c["status"], &c["reason"]),
        (
            &json!("DisruptionAllowed"),
            &json!("False"),
            &json!("InsufficientPods")
        )
    );
    let before: Vec<String> = pod_names(&s, "app=web");
    assert_eq!(before.len(), 2);

    // Refused while the budget allows nothing: the drain times out, the pods stay.
    let drain = [
        "drain",
        node_name.as_str(),
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=12s",
    ];
    let err = s.kubectl_err(&drain);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{err}"
    );
    let n = node(&s, &node_name);
    assert_eq!(n["spec"]["unschedulable"], true);
    assert!(has_taint(
        &n,
        "node.kubernetes.io/unschedulable",
        "NoSchedule"
    ));
    for p in &before {
        let pod = s.get_json(&["get", "pod", p]);
        assert!(pod["metadata"]["deletionTimestamp"].is_null(), "{p} kept");
    }

    // One disruption at a time (maxUnavailable 1 of the ReplicaSet's 2): the drain evicts
    // both, the second once the replacement of the first is Ready.
    s.kubectl_ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":null,"maxUnavailable":1}}"#,
    ]);
    eventually(Duration::from_secs(20), || {
        let st = pdb_status(&s, "web");
        (st["disruptionsAllowed"] == 1 && st["expectedPods"] == 2).then_some(())
    })
    .expect("the budget allows one disruption");
    let out = s.kubectl_ok(&[
        "drain",
        node_name.as_str(),
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=120s",
    ]);
    assert!(out.contains("drained"), "{out}");
    for p in &before {
        assert!(
            !s.kubectl(&["get", "pod", p]).status.success(),
            "{p} was evicted and removed"
        );
    }

    s.kubectl_ok(&["uncordon", node_name.as_str()]);
    eventually(Duration::from_secs(10), || {
        let n = node(&s, &node_name);
        (n["spec"]["unschedulable"].is_null()
            && !has_taint(&n, "node.kubernetes.io/unschedulable", "NoSchedule"))
        .then_some(())
    })
    .expect("uncordoned");
}

fn pod_names(s: &TestServer, selector: &str) -> Vec<String> {
    let list = s.get_json(&["get", "pods", "-l", selector]);
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}
