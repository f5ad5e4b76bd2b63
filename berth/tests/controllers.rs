//! The controllers inside `berth server` and as a separate `berth controllers` process: the
//! `kube-root-ca.crt` ConfigMap in every namespace, and leader election through the
//! `kube-system/berth-controllers` Lease (one holder acts; another takes over when it dies).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestServer, eventually};
use serde_json::Value;

const LEASE: &str = "berth-controllers";

fn root_ca(s: &TestServer, ns: &str) -> Option<String> {
    let out = s.kubectl(&[
        "get",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        ns,
        "-o",
        "json",
    ]);
    if !out.status.success() {
        return None;
    }
    let cm: Value = serde_json::from_slice(&out.stdout).ok()?;
    cm["data"]["ca.crt"].as_str().map(str::to_owned)
}

fn holder(s: &TestServer) -> Option<String> {
    let out = s.kubectl(&["get", "lease", LEASE, "-n", "kube-system", "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let lease: Value = serde_json::from_slice(&out.stdout).ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

struct Controllers(Child);

impl Controllers {
    fn start(s: &TestServer, identity: &str) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["controllers", "--identity", identity, "--kubeconfig"])
            .arg(&s.kubeconfig)
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("berth controllers starts");
        Self(child)
    }
}

impl Drop for Controllers {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_namespace_gets_the_cluster_ca_and_keeps_it() {
    let s = TestServer::start();
    let ca = eventually(Duration::from_secs(20), || root_ca(&s, "default"))
        .expect("kube-root-ca.crt in default");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    s.kubectl_ok(&["create", "namespace", "team-a"]);
    let in_new = eventually(Duration::from_secs(20), || root_ca(&s, "team-a"))
        .expect("kube-root-ca.crt in a new namespace");
    assert_eq!(in_new, ca);
    // Deleted or changed, it comes back as it was.
    s.kubectl_ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team-a"]);
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ]);
    for ns in ["team-a", "default"] {
        eventually(Duration::from_secs(20), || {
            (root_ca(&s, ns).as_deref() == Some(ca.as_str())).then_some(())
        })
        .unwrap_or_else(|| panic!("kube-root-ca.crt restored in {ns}"));
    }
}

#[test]
fn one_candidate_leads_and_another_takes_over_when_it_dies() {
    let s = TestServer::start_with(&["--disable-controllers"]);
    let mut a = Controllers::start(&s, "candidate-a");
    let first = eventually(Duration::from_secs(20), || holder(&s)).expect("a holder");
    assert_eq!(first, "candidate-a");
    let _b = Controllers::start(&s, "candidate-b");
    // The follower does not act: the holder stays, across several renewals.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(holder(&s).as_deref(), Some("candidate-a"));

    // The leader dies without releasing the Lease; the other takes over after the lease
    // duration (8 s) and acts.
    let _ = a.0.kill();
    let _ = a.0.wait();
    let killed = std::time::Instant::now();
    eventually(Duration::from_secs(30), || {
        (holder(&s).as_deref() == Some("candidate-b")).then_some(())
    })
    .expect("candidate-b takes over");
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(20), "took over after {took:?}");
    s.kubectl_ok(&["create", "namespace", "after-failover"]);
    eventually(Duration::from_secs(20), || root_ca(&s, "after-failover"))
        .expect("the new leader acts");
}
