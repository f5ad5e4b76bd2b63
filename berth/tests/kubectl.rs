//! End-to-end: the real `kubectl` drives `berth server` as it would drive Kubernetes.

mod common;

use std::time::Duration;

use base64::Engine as _;

use common::{TestServer, eventually, require};
use serde_json::Value;

fn kubectl_available() -> bool {
    require("kubectl", &["version", "--client"])
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels:
    app: web
data:
  color: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: registry.local/web:1.0
        ports:
        - containerPort: 8080
        - containerPort: 9090
          name: metrics
        env:
        - name: MODE
          value: blue
        - name: LEVEL
          value: info
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
"#;

#[test]
fn version_and_api_resources() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let v = s.kubectl_ok(&["version", "-o", "json"]);
    let v: Value = serde_json::from_str(&v).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "33");
    let out = s.kubectl_ok(&["api-resources"]);
    for (name, short) in [
        ("pods", "po"),
        ("services", "svc"),
        ("namespaces", "ns"),
        ("nodes", "no"),
        ("configmaps", "cm"),
        ("secrets", ""),
        ("endpoints", "ep"),
        ("events", "ev"),
        ("serviceaccounts", "sa"),
        ("persistentvolumes", "pv"),
        ("persistentvolumeclaims", "pvc"),
        ("resourcequotas", "quota"),
        ("limitranges", "limits"),
        ("deployments", "deploy"),
        ("replicasets", "rs"),
        ("statefulsets", "sts"),
        ("daemonsets", "ds"),
        ("controllerrevisions", ""),
        ("jobs", ""),
        ("cronjobs", "cj"),
        ("horizontalpodautoscalers", "hpa"),
        ("leases", ""),
        ("endpointslices", ""),
        ("ingresses", "ing"),
        ("ingressclasses", ""),
        ("networkpolicies", "netpol"),
        ("roles", ""),
        ("clusterroles", ""),
        ("rolebindings", ""),
        ("clusterrolebindings", ""),
        ("poddisruptionbudgets", "pdb"),
        ("storageclasses", "sc"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name));
        let line = line.unwrap_or_else(|| panic!("api-resources lacks {name}:\n{out}"));
        if !short.is_empty() {
            assert!(
                line.split_whitespace().nth(1) == Some(short),
                "{name} should have short name {short}: {line}"
            );
        }
    }
    // Both Event resources are listed.
    assert!(
        out.lines()
            .any(|l| l.starts_with("events ") && l.contains("events.k8s.io/v1")),
        "{out}"
    );
}

#[test]
fn apply_get_patch_delete() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let out = s.kubectl_ok_stdin(&["apply", "-f", "-"], MANIFEST);
    assert!(out.contains("namespace/shop created"), "{out}");
    assert!(out.contains("deployment.apps/web created"), "{out}");

    // Defaults filled by the server, ports and env kept.
    let d = s.get_json(&["-n", "shop", "get", "deploy", "web"]);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");

    // Re-apply with env changed and a port dropped from nothing: ports kept, env changed.
    let changed = MANIFEST
        .replace("value: blue", "value: green")
        .replace("        - name: LEVEL\n          value: info\n", "");
    let out = s.kubectl_ok_stdin(&["apply", "-f", "-"], &changed);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let d = s.get_json(&["-n", "shop", "get", "deploy", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["ports"].as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c["env"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["env"][0]["value"], "green");
    assert_eq!(d["metadata"]["generation"], 2);

    // get variants.
    let wide = s.kubectl_ok(&["-n", "shop", "get", "deploy", "-o", "wide"]);
    assert!(
        wide.contains("READY") && wide.contains("UP-TO-DATE") && wide.contains("IMAGES"),
        "{wide}"
    );
    assert!(wide.contains("registry.local/web:1.0"), "{wide}");
    let yaml = s.kubectl_ok(&["-n", "shop", "get", "cm", "settings", "-o", "yaml"]);
    assert!(yaml.contains("color: blue"), "{yaml}");
    let all = s.kubectl_ok(&["get", "cm", "-A"]);
    assert!(all.contains("shop") && all.contains("settings"), "{all}");
    let labelled = s.kubectl_ok(&["get", "cm,deploy", "-A", "-l", "app=web"]);
    assert!(
        labelled.contains("settings") && labelled.contains("web"),
        "{labelled}"
    );
    let none = s.kubectl(&["get", "cm", "-A", "-l", "app=none"]);
    assert!(String::from_utf8_lossy(&none.stderr).contains("No resources found"));
    let fs = s.kubectl_ok(&["get", "ns", "--field-selector", "metadata.name=shop"]);
    assert!(fs.contains("shop") && !fs.contains("kube-system"), "{fs}");
    let svc = s.kubectl_ok(&["-n", "shop", "get", "svc", "web"]);
    assert!(svc.contains("ClusterIP") && svc.contains("10.43."), "{svc}");
    let desc = s.kubectl_ok(&["-n", "shop", "describe", "deploy", "web"]);
    assert!(
        desc.contains("RollingUpdate") && desc.contains("MODE"),
        "{desc}"
    );

    // scale, label, annotate, patch.
    s.kubectl_ok(&["-n", "shop", "scale", "deploy", "web", "--replicas=5"]);
    assert_eq!(
        s.get_json(&["-n", "shop", "get", "deploy", "web"])["spec"]["replicas"],
        5
    );
    s.kubectl_ok(&["-n", "shop", "label", "cm", "settings", "tier=gold"]);
    s.kubectl_ok(&["-n", "shop", "annotate", "cm", "settings", "owner=team-a"]);
    let cm = s.get_json(&["-n", "shop", "get", "cm", "settings"]);
    assert_eq!(cm["metadata"]["labels"]["tier"], "gold");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "team-a");
    s.kubectl_ok(&[
        "-n",
        "shop",
        "patch",
        "cm",
        "settings",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"size":"xl"}}"#,
    ]);
    s.kubectl_ok(&[
        "-n",
        "shop",
        "patch",
        "cm",
        "settings",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/data/color"}]"#,
    ]);
    let cm = s.get_json(&["-n", "shop", "get", "cm", "settings"]);
    assert_eq!(cm["data"], serde_json::json!({"size": "xl"}));
    s.kubectl_ok(&[
        "-n", "shop", "patch", "deploy", "web", "--type", "strategic", "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.local/web:2.0"}]}}}}"#,
    ]);
    let d = s.get_json(&["-n", "shop", "get", "deploy", "web"]);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.local/web:2.0");
    assert_eq!(
        c["ports"].as_array().unwrap().len(),
        2,
        "strategic merge keeps the ports"
    );

    // Generators (protobuf bodies).
    s.kubectl_ok(&["create", "namespace", "gen"]);
    s.kubectl_ok(&[
        "-n",
        "gen",
        "create",
        "configmap",
        "c1",
        "--from-literal=a=b",
        "--from-literal=x=y",
    ]);
    s.kubectl_ok(&[
        "-n",
        "gen",
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=hunter2",
    ]);
    s.kubectl_ok(&[
        "-n",
        "gen",
        "create",
        "deployment",
        "d1",
        "--image=registry.local/app:1",
        "--replicas=2",
        "--port=8080",
    ]);
    s.kubectl_ok(&["-n", "gen", "create", "serviceaccount", "robot"]);
    // A TokenRequest in protobuf to serviceaccounts/token; the token is a JWT of the account.
    let token = s.kubectl_ok(&[
        "-n",
        "gen",
        "create",
        "token",
        "robot",
        "--duration=15m",
        "--audience=example.com",
    ]);
    let claims = token.trim().split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64url claims"),
    )
    .unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:gen:robot", "{claims}");
    assert_eq!(claims["aud"][0], "example.com", "{claims}");
    let c1 = s.get_json(&["-n", "gen", "get", "cm", "c1"]);
    assert_eq!(c1["data"]["a"], "b");
    let s1 = s.get_json(&["-n", "gen", "get", "secret", "s1"]);
    assert_eq!(s1["data"]["password"], "aHVudGVyMg==");
    assert_eq!(s1["type"], "Opaque");
    let d1 = s.get_json(&["-n", "gen", "get", "deploy", "d1"]);
    assert_eq!(d1["spec"]["replicas"], 2);
    assert_eq!(
        d1["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );

    // delete -f and by name.
    let out = s.kubectl_ok(&["-n", "gen", "delete", "cm", "c1"]);
    assert!(out.contains("deleted"), "{out}");
    let err = s.kubectl_err(&["-n", "gen", "get", "cm", "c1"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn server_side_apply_conflicts_and_field_removal() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  labels:
    app: api
    team: core
spec:
  replicas: 3
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: registry.local/api:1
"#;
    let out = s.kubectl_ok_stdin(&["apply", "--server-side", "-f", "-"], manifest);
    assert!(out.contains("serverside-applied"), "{out}");
    // The second manager applies only the field it cares about.
    let other =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 7\n";
    let err = {
        let o = s.kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager",
                "other",
                "-f",
                "-",
            ],
            Some(other),
        );
        assert!(!o.status.success(), "a conflicting apply must fail");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    s.kubectl_ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        other,
    );
    assert_eq!(s.get_json(&["get", "deploy", "api"])["spec"]["replicas"], 7);
    // The first manager drops a label from its manifest: it is removed.
    let dropped = manifest
        .replace("    team: core\n", "")
        .replace("  replicas: 3\n", "");
    s.kubectl_ok_stdin(&["apply", "--server-side", "-f", "-"], &dropped);
    let d = s.get_json(&["get", "deploy", "api"]);
    assert!(
        d["metadata"]["labels"].get("team").is_none(),
        "{}",
        d["metadata"]["labels"]
    );
    assert_eq!(
        d["spec"]["replicas"], 7,
        "replicas belong to the other manager now"
    );
}

#[test]
fn client_side_apply_then_second_manager_conflicts() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    s.kubectl_ok_stdin(&["apply", "-f", "-"], MANIFEST);
    let apply = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop"},"spec":{"replicas":9}}"#;
    let o = s.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "intruder",
            "-f",
            "-",
        ],
        Some(apply),
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("conflict") && err.contains("kubectl-client-side-apply"),
        "{err}"
    );
}

#[test]
fn watch_sees_changes_of_other_clients() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    // A sentinel that the watch lists first tells us the watch is established.
    s.kubectl_ok(&["create", "configmap", "sentinel", "--from-literal=a=0"]);
    let mut watch = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .arg("--cache-dir")
        .arg(s.data_dir().join("watch-cache"))
        .args([
            "get",
            "cm",
            "-w",
            "--output-watch-events",
            "--request-timeout=60s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |pred: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                let hit = pred(&line);
                seen.push(line);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    assert!(
        wait_for(&|l| l.contains("sentinel")),
        "the watch never listed the sentinel"
    );
    s.kubectl_ok(&["create", "configmap", "w1", "--from-literal=a=1"]);
    s.kubectl_ok(&[
        "patch",
        "cm",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    s.kubectl_ok(&["delete", "cm", "w1"]);
    let done = wait_for(&|l| l.starts_with("DELETED") && l.contains("w1"));
    let _ = watch.kill();
    let _ = watch.wait();
    let events: Vec<&str> = seen
        .iter()
        .filter(|l| l.contains("w1"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert!(done, "no DELETED event: {seen:?}");
    assert_eq!(events, ["ADDED", "MODIFIED", "DELETED"], "{seen:?}");
}

#[test]
fn foreground_cascade_leaves_no_dependents() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let owner = s.get_json(&["create", "configmap", "owner", "--from-literal=a=b"]);
    let _ = owner;
    let owner = s.get_json(&["get", "cm", "owner"]);
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    for i in 0..3 {
        let dep = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"dep-{i}","ownerReferences":[{{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"{uid}","blockOwnerDeletion":true}}]}}}}"#
        );
        s.kubectl_ok_stdin(&["create", "-f", "-"], &dep);
    }
    s.kubectl_ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    let left = eventually(Duration::from_secs(20), || {
        let out = s.kubectl_ok(&["get", "cm", "-o", "name"]);
        (!out.contains("dep-") && !out.contains("owner")).then_some(())
    });
    assert!(
        left.is_some(),
        "dependents remain: {}",
        s.kubectl_ok(&["get", "cm"])
    );
}

#[test]
fn bad_input_gets_clear_errors() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let err = s.kubectl_err(&["create", "configmap", "Bad_Name", "--from-literal=a=b"]);
    assert!(err.contains("Invalid") || err.contains("invalid"), "{err}");
    let bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata:\n  a: b\nbogus: 1\n";
    let o = s.kubectl_stdin(&["apply", "-f", "-"], Some(bad));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown field") && err.contains("bogus"),
        "{err}"
    );
    let err = s.kubectl_err(&[
        "-n",
        "missing",
        "create",
        "configmap",
        "x",
        "--from-literal=a=b",
    ]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn pod_table_shows_kubectl_statuses() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let pod = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"nodeName":"n1","initContainers":[{{"name":"init","image":"i:1"}}],"containers":[{{"name":"app","image":"a:1"}}]}}}}"#
        )
    };
    for n in ["p-init", "p-crash", "p-term"] {
        s.kubectl_ok_stdin(&["create", "-f", "-"], &pod(n));
    }
    let status_patch = |name: &str, status: &str| {
        s.kubectl_ok(&[
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type",
            "merge",
            "-p",
            &format!(r#"{{"status":{status}}}"#),
        ]);
    };
    status_patch(
        "p-init",
        r#"{"phase":"Pending","initContainerStatuses":[{"name":"init","ready":false,"restartCount":0,"image":"i:1","imageID":"","state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}}}],"containerStatuses":[{"name":"app","ready":false,"restartCount":0,"image":"a:1","imageID":"","state":{"waiting":{"reason":"PodInitializing"}}}]}"#,
    );
    status_patch(
        "p-crash",
        r#"{"phase":"Running","initContainerStatuses":[{"name":"init","ready":true,"restartCount":0,"image":"i:1","imageID":"","state":{"terminated":{"exitCode":0,"reason":"Completed"}}}],"containerStatuses":[{"name":"app","ready":false,"restartCount":4,"image":"a:1","imageID":"","state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}"#,
    );
    s.kubectl_ok(&["delete", "pod", "p-term", "--wait=false"]);
    let table = s.kubectl_ok(&["get", "pods"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{table}"))
            .to_string()
    };
    assert!(row("p-init").contains("Init:0/1"), "{table}");
    assert!(row("p-crash").contains("CrashLoopBackOff"), "{table}");
    assert!(
        row("p-crash").split_whitespace().nth(3) == Some("4"),
        "{table}"
    );
    assert!(row("p-term").contains("Terminating"), "{table}");
    let wide = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(wide.contains("NODE") && wide.contains("n1"), "{wide}");
}

#[test]
fn explain_and_server_side_dry_run() {
    if !kubectl_available() {
        return;
    }
    let s = TestServer::start();
    let out = s.kubectl_ok(&["explain", "deployment.spec.strategy"]);
    assert!(
        out.contains("rollingUpdate") && out.contains("RollingUpdate"),
        "{out}"
    );
    let out = s.kubectl_ok(&["explain", "pods.spec.containers.ports"]);
    assert!(
        out.contains("containerPort") && out.contains("protocol"),
        "{out}"
    );
    let out = s.kubectl_ok(&[
        "create",
        "configmap",
        "dry",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["data"]["a"], "b");
    let err = s.kubectl_err(&["get", "cm", "dry"]);
    assert!(err.contains("not found"), "{err}");
}
