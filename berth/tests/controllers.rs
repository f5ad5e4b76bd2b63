//! The controllers inside `berth server` and as a separate `berth controllers` process: the
//! `kube-root-ca.crt` ConfigMap in every namespace, and leader election through the
//! `kube-system/berth-controllers` Lease (one holder acts; another takes over when it dies).

mod common;

use std::time::Duration;

use common::{ControllersProcess, TestServer, eventually};
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
    let mut a = ControllersProcess::start(&s, "candidate-a");
    let first = eventually(Duration::from_secs(20), || s.lease_holder(LEASE)).expect("a holder");
    assert_eq!(first, "candidate-a");
    let _b = ControllersProcess::start(&s, "candidate-b");
    // The follower does not act: the holder stays, across several renewals.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(s.lease_holder(LEASE).as_deref(), Some("candidate-a"));

    // The leader dies without releasing the Lease; the other takes over after the lease
    // duration (8 s) and acts.
    a.kill9();
    let killed = std::time::Instant::now();
    eventually(Duration::from_secs(30), || {
        (s.lease_holder(LEASE).as_deref() == Some("candidate-b")).then_some(())
    })
    .expect("candidate-b takes over");
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(20), "took over after {took:?}");
    s.kubectl_ok(&["create", "namespace", "after-failover"]);
    eventually(Duration::from_secs(20), || root_ca(&s, "after-failover"))
        .expect("the new leader acts");
}
