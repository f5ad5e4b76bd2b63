//! End to end: `berth server` with its node agent runs pods on the real dockerd, driven by the
//! real kubectl. Images are built locally from busybox-static; nothing is pulled from outside.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, busybox_image, eventually, require};
use serde_json::Value;

fn docker_ready() -> bool {
    require("docker", &["info"]) && require("kubectl", &["version", "--client"])
}

/// A server with its agent, once its node is Ready.
fn cluster() -> TestServer {
    let s = TestServer::start_with_agent(&[]);
    let node = s.node.clone().unwrap();
    eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        let ready = v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    })
    .unwrap_or_else(|| panic!("node {node} did not become Ready"));
    s
}

fn apply(s: &TestServer, manifest: &str) {
    s.kubectl_ok_stdin(&["apply", "-f", "-"], manifest);
}

/// Waits until `pred` holds for the pod's JSON; returns it.
fn wait_pod(s: &TestServer, name: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let found = eventually(timeout, || {
        let out = s.kubectl(&["get", "pod", name, "-o", "json"]);
        if !out.status.success() {
            return None;
        }
        last = serde_json::from_slice(&out.stdout).ok()?;
        pred(&last).then(|| last.clone())
    });
    found.unwrap_or_else(|| panic!("pod {name} did not reach the expected state; last: {last:#}"))
}

fn running_and_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The ID of the running Docker container of `container` in `pod`.
fn container_id(node: &str, pod: &str, container: &str) -> String {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=dev.berth.node={node}"),
            "--filter",
            &format!("label=dev.berth.pod.name={pod}"),
            "--filter",
            &format!("label=dev.berth.container.name={container}"),
        ])
        .output()
        .expect("docker ps");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("no running container {container} of pod {pod}"))
        .to_string()
}

/// Runs a command in a pod's container through Docker; returns (exit code, stdout).
fn docker_exec(node: &str, pod: &str, container: &str, cmd: &[&str]) -> (i32, String) {
    let id = container_id(node, pod, container);
    let out = Command::new("docker")
        .arg("exec")
        .arg(&id)
        .args(cmd)
        .stderr(Stdio::inherit())
        .output()
        .expect("docker exec");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A pod bound to `node` (there is no scheduler yet: tests place pods themselves).
fn pod_manifest(node: &str, name: &str, extra_spec: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeName: {node}\n{extra_spec}  containers:\n{containers}"
    )
}

#[test]
fn node_registers_with_labels_cidr_and_lease() {
    if !docker_ready() {
        return;
    }
    let s = cluster();
    let node = s.node.clone().unwrap();
    let v = s.get_json(&["get", "node", &node]);
    assert_eq!(v["metadata"]["labels"]["kubernetes.io/hostname"], node);
    assert_eq!(v["metadata"]["labels"]["kubernetes.io/os"], "linux");
    assert!(
        v["spec"]["podCIDR"].as_str().unwrap().ends_with("/24"),
        "{v}"
    );
    assert_eq!(v["status"]["capacity"]["pods"], "110");
    assert!(
        v["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .unwrap()
            .starts_with("docker://"),
        "{v}"
    );
    for c in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
        assert!(
            v["status"]["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["type"] == c),
            "{c} missing"
        );
    }
    let lease = s.get_json(&["get", "lease", "-n", "kube-node-lease", &node]);
    let first = lease["spec"]["renewTime"].as_str().unwrap().to_string();
    let renewed = eventually(Duration::from_secs(10), || {
        let l = s.get_json(&["get", "lease", "-n", "kube-node-lease", &node]);
        (l["spec"]["renewTime"].as_str() != Some(first.as_str())).then_some(())
    });
    assert!(renewed.is_some(), "the lease is renewed every second here");
    let wide = s.kubectl_ok(&["get", "nodes"]);
    assert!(wide.contains(&node) && wide.contains("Ready"), "{wide}");
}

#[test]
fn containers_share_localhost_and_pods_reach_each_other_by_ip() {
    if !docker_ready() {
        return;
    }
    let img = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    // A port on the node no one uses now, published as pa's hostPort.
    let host_port = std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let web = |name: &str, ports: &str| {
        pod_manifest(
            &node,
            name,
            "",
            &format!(
                "  - name: web\n    image: {img}\n    command: [sh, -c, 'mkdir -p /www && echo hello-from-{name} > /www/index.html && exec httpd -f -p 8080 -h /www']\n    ports: [{ports}]\n  - name: client\n    image: {img}\n    command: [sleep, '3600']\n"
            ),
        )
    };
    apply(
        &s,
        &web(
            "pa",
            &format!("{{containerPort: 8080, hostPort: {host_port}}}"),
        ),
    );
    apply(&s, &web("pb", "{containerPort: 8080}"));
    let a = wait_pod(&s, "pa", Duration::from_secs(60), running_and_ready);
    let b = wait_pod(&s, "pb", Duration::from_secs(60), running_and_ready);
    let ip_a = a["status"]["podIP"].as_str().unwrap().to_string();
    let ip_b = b["status"]["podIP"].as_str().unwrap().to_string();
    assert_ne!(ip_a, ip_b);
    assert_eq!(a["status"]["hostIP"], "127.0.0.1");
    let (code, out) = docker_exec(
        &node,
        "pa",
        "client",
        &["wget", "-qO-", "http://127.0.0.1:8080/"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "hello-from-pa"),
        "localhost inside the pod"
    );
    let (code, out) = docker_exec(
        &node,
        "pb",
        "client",
        &["wget", "-qO-", &format!("http://{ip_a}:8080/")],
    );
    assert_eq!((code, out.trim()), (0, "hello-from-pa"), "pod to pod by IP");
    // hostPort: the node's port reaches the pod.
    let body = eventually(Duration::from_secs(20), || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", host_port)).ok()?;
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        conn.read_to_string(&mut out).ok()?;
        out.contains("hello-from-pa").then_some(out)
    });
    assert!(body.is_some(), "hostPort {host_port} reaches pa");
    let table = s.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(table.contains("2/2") && table.contains(&ip_a), "{table}");
}

#[test]
fn config_maps_and_secrets_reach_env_and_files_and_files_follow_changes() {
    if !docker_ready() {
        return;
    }
    let img = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    s.kubectl_ok(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=color=blue",
        "--from-literal=size=L",
    ]);
    s.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=s3cret",
    ]);
    apply(
        &s,
        &pod_manifest(
            &node,
            "cfgpod",
            "  volumes:\n  - name: cfg\n    configMap: {name: cfg}\n  - name: creds\n    secret: {secretName: creds, defaultMode: 0400}\n",
            &format!(
                "  - name: app\n    image: {img}\n    command: [sleep, '3600']\n    env:\n    - {{name: COLOR, valueFrom: {{configMapKeyRef: {{name: cfg, key: color}}}}}}\n    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}}}\n    - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}\n    envFrom:\n    - configMapRef: {{name: cfg}}\n    volumeMounts:\n    - {{name: cfg, mountPath: /etc/cfg}}\n    - {{name: creds, mountPath: /etc/creds}}\n"
            ),
        ),
    );
    wait_pod(&s, "cfgpod", Duration::from_secs(60), running_and_ready);
    let (_, env) = docker_exec(&node, "cfgpod", "app", &["env"]);
    for want in [
        "COLOR=blue",
        "PASSWORD=s3cret",
        "MY_POD=cfgpod",
        "size=L",
        "KUBERNETES_SERVICE_HOST=",
    ] {
        assert!(env.contains(want), "{want} missing from:\n{env}");
    }
    let (_, color) = docker_exec(&node, "cfgpod", "app", &["cat", "/etc/cfg/color"]);
    assert_eq!(color, "blue");
    let (_, pw) = docker_exec(&node, "cfgpod", "app", &["cat", "/etc/creds/password"]);
    assert_eq!(pw, "s3cret");
    let (_, mode) = docker_exec(
        &node,
        "cfgpod",
        "app",
        &["stat", "-c", "%a", "/etc/creds/password"],
    );
    assert_eq!(mode.trim(), "400");
    let (_, ns) = docker_exec(
        &node,
        "cfgpod",
        "app",
        &[
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
        ],
    );
    assert_eq!(ns, "default");
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "cfg",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"color":"green"}}"#,
    ]);
    let updated = eventually(Duration::from_secs(30), || {
        let (_, c) = docker_exec(&node, "cfgpod", "app", &["cat", "/etc/cfg/color"]);
        (c == "green").then_some(())
    });
    assert!(updated.is_some(), "the file follows the ConfigMap");
}

#[test]
fn memory_limit_is_in_the_cgroup_and_deletion_respects_the_grace_period() {
    if !docker_ready() {
        return;
    }
    let img = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    apply(
        &s,
        &pod_manifest(
            &node,
            "limited",
            "  terminationGracePeriodSeconds: 3\n",
            &format!(
                "  - name: app\n    image: {img}\n    command: [sleep, '3600']\n    resources:\n      limits: {{memory: 64Mi, cpu: 500m}}\n"
            ),
        ),
    );
    wait_pod(&s, "limited", Duration::from_secs(60), running_and_ready);
    let (_, v2) = docker_exec(
        &node,
        "limited",
        "app",
        &["cat", "/sys/fs/cgroup/memory.max"],
    );
    let limit = if v2.trim().is_empty() {
        docker_exec(
            &node,
            "limited",
            "app",
            &["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
        )
        .1
    } else {
        v2
    };
    assert_eq!(limit.trim(), (64 * 1024 * 1024).to_string());
    // `sleep` as PID 1 ignores SIGTERM: the agent waits the grace period, then kills.
    let started = Instant::now();
    s.kubectl_ok(&["delete", "pod", "limited", "--wait=true", "--timeout=30s"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "deleted in {took:?}");
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=dev.berth.pod.name=limited",
            "--filter",
            &format!("label=dev.berth.node={node}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "containers remain: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn probes_restart_unhealthy_and_clear_ready() {
    if !docker_ready() {
        return;
    }
    let img = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    apply(
        &s,
        &pod_manifest(
            &node,
            "probed",
            "",
            &format!(
                "  - name: live\n    image: {img}\n    command: [sh, -c, 'touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600']\n    livenessProbe:\n      exec: {{command: [cat, /tmp/healthy]}}\n      periodSeconds: 1\n      failureThreshold: 2\n  - name: ready\n    image: {img}\n    command: [sleep, '3600']\n    readinessProbe:\n      exec: {{command: [cat, /tmp/never]}}\n      periodSeconds: 1\n"
            ),
        ),
    );
    let p = wait_pod(&s, "probed", Duration::from_secs(60), |p| {
        p["status"]["containerStatuses"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "live"))
            .is_some_and(|c| c["restartCount"].as_i64().unwrap_or(0) >= 1)
    });
    let statuses = p["status"]["containerStatuses"].as_array().unwrap();
    let ready = statuses.iter().find(|c| c["name"] == "ready").unwrap();
    assert_eq!(
        ready["ready"], false,
        "a failing readiness probe keeps it unready"
    );
    assert!(ready["state"]["running"].is_object());
    assert!(
        p["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "False"),
        "{p}"
    );
    let events = s.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed",
    ]);
    assert!(
        events.contains("Unhealthy") && events.contains("Liveness probe failed"),
        "{events}"
    );
}

#[test]
fn init_containers_run_first_and_a_crashing_container_backs_off() {
    if !docker_ready() {
        return;
    }
    let img = busybox_image();
    let s = cluster();
    let node = s.node.clone().unwrap();
    apply(
        &s,
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: crashy\nspec:\n  nodeName: {node}\n  volumes:\n  - {{name: work, emptyDir: {{}}}}\n  initContainers:\n  - name: setup\n    image: {img}\n    command: [sh, -c, 'echo prepared > /work/marker']\n    volumeMounts: [{{name: work, mountPath: /work}}]\n  containers:\n  - name: app\n    image: {img}\n    command: [sh, -c, 'cat /work/marker; exit 1']\n    volumeMounts: [{{name: work, mountPath: /work}}]\n"
        ),
    );
    // Record when each restart happened.
    let mut seen: Vec<(i64, Instant)> = Vec::new();
    let mut crash_loop = false;
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && seen.last().is_none_or(|(n, _)| *n < 3) {
        let out = s.kubectl(&["get", "pod", "crashy", "-o", "json"]);
        if let Ok(p) = serde_json::from_slice::<Value>(&out.stdout)
            && let Some(cs) = p["status"]["containerStatuses"].get(0)
        {
            let n = cs["restartCount"].as_i64().unwrap_or(0);
            if seen.last().is_none_or(|(m, _)| *m != n) {
                seen.push((n, Instant::now()));
            }
            if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                crash_loop = true;
            }
            // While the init container runs, the app container waits with
            // PodInitializing; once it has left that state, init has finished.
            if cs["state"]["waiting"]["reason"] != "PodInitializing" {
                assert_eq!(
                    p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"], 0,
                    "{p}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(crash_loop, "CrashLoopBackOff is reported");
    let at = |n: i64| seen.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
    let (Some(t1), Some(t2), Some(t3)) = (at(1), at(2), at(3)) else {
        panic!(
            "restarts seen: {:?}",
            seen.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    };
    let (gap1, gap2) = (t2 - t1, t3 - t2);
    assert!(gap1 >= Duration::from_secs(8), "first back-off {gap1:?}");
    assert!(
        gap2 >= Duration::from_secs(17) && gap2 > gap1,
        "second back-off {gap2:?} after {gap1:?}"
    );
    let table = s.kubectl_ok(&["get", "pod", "crashy"]);
    assert!(table.contains("crashy"), "{table}");
    let events = s.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crashy",
    ]);
    assert!(
        events.contains("BackOff") && events.contains("Started"),
        "{events}"
    );
}
