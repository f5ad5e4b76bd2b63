//! End to end: ResourceQuota and LimitRange with kubectl against `berth server` (its
//! controllers in process, no nodes: pods stay Pending). A quota refuses the pod too many with
//! Kubernetes' message and admits a new one once the quota controller released the usage of a
//! deleted pod or of one that finished; `kubectl describe quota` shows used and hard; a cpu quota requires cpu requests;
//! a LimitRange fills in container resources and refuses a pod above its max; a ReplicaSet whose
//! pods exceed a quota reports the failure in its ReplicaFailure condition.

mod common;

use std::time::Duration;

use common::{TestServer, eventually, require};
use serde_json::{Value, json};

fn kubectl_ready() -> bool {
    require("kubectl", &["version", "--client"])
}

fn namespace(s: &TestServer, ns: &str) {
    s.kubectl_ok(&["create", "namespace", ns]);
}

fn json_of(s: &TestServer, args: &[&str]) -> Option<Value> {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let out = s.kubectl(&a);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn run_pod(s: &TestServer, ns: &str, name: &str) -> std::process::Output {
    s.kubectl(&[
        "run",
        name,
        "-n",
        ns,
        "--image=busybox:1",
        "--restart=Never",
        "--command",
        "--",
        "sleep",
        "3600",
    ])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The quota's `status.used.<resource>` once the controller (or admission) wrote it.
fn used(s: &TestServer, ns: &str, quota: &str, resource: &str) -> Option<String> {
    let v = json_of(s, &["get", "resourcequota", quota, "-n", ns])?;
    v["status"]["used"][resource].as_str().map(str::to_owned)
}

/// Namespace `ns` with quota `q` of `pods` pods, once the controller filled in its status.
fn pod_quota(s: &TestServer, ns: &str, pods: u32) {
    namespace(s, ns);
    s.kubectl_ok(&[
        "create",
        "quota",
        "q",
        "-n",
        ns,
        &format!("--hard=pods={pods}"),
    ]);
    eventually(Duration::from_secs(20), || {
        (used(s, ns, "q", "pods").as_deref() == Some("0")).then_some(())
    })
    .expect("the controller computed the quota's usage");
}

#[test]
fn a_pod_quota_refuses_the_pod_too_many_until_one_is_deleted() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "quota-pods";
    pod_quota(&s, ns, 2);

    for name in ["p1", "p2"] {
        let out = run_pod(&s, ns, name);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
    }
    let out = run_pod(&s, ns, "p3");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{}",
        stderr(&out)
    );

    let described = s.kubectl_ok(&["describe", "quota", "q", "-n", ns]);
    assert!(
        described
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "2", "2"]),
        "{described}"
    );
    let yaml = s.kubectl_ok(&["get", "quota", "q", "-n", ns, "-o", "yaml"]);
    assert!(
        yaml.contains("hard:") && yaml.contains("used:") && yaml.contains("pods: \"2\""),
        "{yaml}"
    );
    let table = s.kubectl_ok(&["get", "quota", "-n", ns]);
    assert!(table.contains("pods: 2/2"), "{table}");

    s.kubectl_ok(&[
        "delete",
        "pod",
        "p1",
        "-n",
        ns,
        "--grace-period=0",
        "--force",
    ]);
    // Once the controller released p1's usage, a new pod is admitted.
    eventually(Duration::from_secs(30), || {
        run_pod(&s, ns, "p3").status.success().then_some(())
    })
    .expect("a new pod is admitted after one was deleted");
    assert_eq!(used(&s, ns, "q", "pods").as_deref(), Some("2"));
    assert!(!run_pod(&s, ns, "p4").status.success());
}

#[test]
fn a_pod_that_finishes_releases_its_quota() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "quota-finished";
    pod_quota(&s, ns, 1);
    let out = run_pod(&s, ns, "p1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!run_pod(&s, ns, "p2").status.success());

    // No node runs it here: its phase is set as its node would report the end of its run. A
    // finished pod is no longer charged, and its change must release the quota at once.
    s.kubectl_ok(&[
        "patch",
        "pod",
        "p1",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Succeeded"}}"#,
    ]);
    // Well within the controller's 30 s resync, which would release it anyway.
    eventually(Duration::from_secs(10), || {
        run_pod(&s, ns, "p2").status.success().then_some(())
    })
    .expect("a new pod is admitted once the other finished");
    assert_eq!(used(&s, ns, "q", "pods").as_deref(), Some("1"));
}

#[test]
fn a_cpu_quota_requires_every_container_to_request_cpu() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "quota-cpu";
    namespace(&s, ns);
    s.kubectl_ok(&["create", "quota", "cpu", "-n", ns, "--hard=requests.cpu=1"]);
    let out = run_pod(&s, ns, "nocpu");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods \"nocpu\" is forbidden: failed quota: cpu: must specify requests.cpu for: nocpu"
        ),
        "{}",
        stderr(&out)
    );
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "withcpu", "namespace": ns},
        "spec": {"containers": [{
            "name": "app", "image": "busybox:1", "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": "600m"}}
        }]}
    });
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &pod.to_string());
    assert_eq!(used(&s, ns, "cpu", "requests.cpu").as_deref(), Some("600m"));
    let mut second = pod.clone();
    second["metadata"]["name"] = json!("second");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&second.to_string()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "exceeded quota: cpu, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_limit_range_fills_in_resources_and_refuses_a_pod_above_its_max() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "limits";
    namespace(&s, ns);
    let lr = json!({
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": ns},
        "spec": {"limits": [{
            "type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "max": {"memory": "1Gi"}
        }]}
    });
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &lr.to_string());
    let out = run_pod(&s, ns, "plain");
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = json_of(&s, &["get", "pod", "plain", "-n", ns]).expect("the pod");
    let res = &pod["spec"]["containers"][0]["resources"];
    assert_eq!(res["requests"], json!({"cpu": "100m", "memory": "128Mi"}));
    assert_eq!(res["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    assert_eq!(
        pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container plain; cpu, memory limit for container plain"
    );

    let big = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "big", "namespace": ns},
        "spec": {"containers": [{
            "name": "app", "image": "busybox:1",
            "resources": {"limits": {"memory": "2Gi"}}
        }]}
    });
    let out = s.kubectl_stdin(&["apply", "-f", "-"], Some(&big.to_string()));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods \"big\" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_replica_set_beyond_its_quota_reports_the_failure() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "quota-rs";
    namespace(&s, ns);
    s.kubectl_ok(&["create", "quota", "q", "-n", ns, "--hard=pods=2"]);
    let rs = json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1"}]}
            }
        }
    });
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &rs.to_string());
    let condition = eventually(Duration::from_secs(30), || {
        let v = json_of(&s, &["get", "replicaset", "web", "-n", ns])?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
            .cloned()
    })
    .expect("a ReplicaFailure condition");
    assert_eq!(condition["reason"], "FailedCreate", "{condition}");
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{message}"
    );
    let pods = json_of(&s, &["get", "pods", "-n", ns, "-l", "app=web"]).expect("pods");
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_secret_count_is_released_as_soon_as_a_secret_is_deleted() {
    if !kubectl_ready() {
        return;
    }
    let s = TestServer::start();
    let ns = "quota-secrets";
    namespace(&s, ns);
    s.kubectl_ok(&["create", "quota", "q", "-n", ns, "--hard=secrets=1"]);
    let secret = |name: &str| {
        s.kubectl(&[
            "create",
            "secret",
            "generic",
            name,
            "-n",
            ns,
            "--from-literal=k=v",
        ])
    };
    assert!(secret("a").status.success());
    let out = secret("b");
    assert!(
        stderr(&out).contains(
            "secrets \"b\" is forbidden: exceeded quota: q, requested: secrets=1, used: secrets=1, limited: secrets=1"
        ),
        "{}",
        stderr(&out)
    );
    s.kubectl_ok(&["delete", "secret", "a", "-n", ns]);
    // Well before the periodic resync: the controller watches secrets for this quota.
    eventually(Duration::from_secs(10), || {
        secret("b").status.success().then_some(())
    })
    .expect("the deleted secret's count was released");
    assert_eq!(used(&s, ns, "q", "secrets").as_deref(), Some("1"));
}
