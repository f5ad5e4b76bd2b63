//! End to end: `kubectl logs`, `kubectl exec` and `kubectl port-forward` (and the Python
//! client's exec) against `berth server` with its node agent, on the real dockerd. The API
//! server proxies `pods/log`, `pods/exec` and `pods/portforward` to the agent's streaming
//! endpoint.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{TestServer, busybox_image, eventually, require};
use serde_json::Value;

fn tools_ready() -> bool {
    require("docker", &["info"]) && require("kubectl", &["version", "--client"])
}

/// A server with its agent, its node Ready, and the pod `web` running: container `app`
/// (three log lines, then httpd on 8080) and container `sidecar`.
fn cluster_with_web_pod() -> TestServer {
    let s = TestServer::start_with_agent(&[]);
    let node = s.node.clone().expect("node name");
    eventually(Duration::from_secs(60), || {
        let out = s.kubectl(&["get", "node", &node, "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("node {node} did not become Ready"));
    let image = busybox_image();
    let manifest = format!(
        r#"{{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {{"name": "web"}},
  "spec": {{
    "nodeName": "{node}",
    "terminationGracePeriodSeconds": 1,
    "containers": [
      {{"name": "app", "image": "{image}", "imagePullPolicy": "Never",
        "command": ["sh", "-c", "echo one; echo two; echo three; mkdir -p /www; echo hello-through-kubectl > /www/index.html; exec httpd -f -p 8080 -h /www"]}},
      {{"name": "sidecar", "image": "{image}", "imagePullPolicy": "Never",
        "command": ["sh", "-c", "trap 'exit 0' TERM; echo side; sleep 100000 & wait"]}}
    ]
  }}
}}"#
    );
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &manifest);
    eventually(Duration::from_secs(90), || {
        let out = s.kubectl(&["get", "pod", "web", "-o", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        (v["status"]["phase"] == "Running"
            && v["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|cs| cs.len() == 2 && cs.iter().all(|c| c["ready"] == true)))
        .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "pod web did not start: {}",
            s.kubectl_ok(&["get", "pod", "web", "-o", "json"])
        )
    });
    s
}

fn kubectl_command(s: &TestServer, args: &[&str]) -> Command {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .arg("--cache-dir")
        .arg(&s.cache_dir)
        .args(args);
    cmd
}

/// Lines a child prints on stdout, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool, what: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("{what} did not appear; saw {seen:?}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .expect("request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    response
}

#[test]
fn kubectl_logs_exec_and_port_forward() {
    if !tools_ready() {
        return;
    }
    let s = cluster_with_web_pod();

    // Logs: container choice, --tail, --timestamps, --since, unknown container, --previous.
    let logs = eventually(Duration::from_secs(20), || {
        let out = s.kubectl(&["logs", "web", "-c", "app"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text == "one\ntwo\nthree\n").then_some(text)
    });
    assert!(
        logs.is_some(),
        "{:?}",
        s.kubectl(&["logs", "web", "-c", "app"])
    );
    assert_eq!(
        s.kubectl_ok(&["logs", "web", "-c", "app", "--tail=1"]),
        "three\n"
    );
    assert_eq!(s.kubectl_ok(&["logs", "web", "-c", "sidecar"]), "side\n");
    // Without -c kubectl picks the first container.
    assert_eq!(s.kubectl_ok(&["logs", "web"]), "one\ntwo\nthree\n");
    assert_eq!(
        s.kubectl_ok(&["logs", "web", "-c", "app", "--since=1h"]),
        "one\ntwo\nthree\n"
    );
    let stamped = s.kubectl_ok(&["logs", "web", "-c", "app", "--timestamps"]);
    for (line, text) in stamped.lines().zip(["one", "two", "three"]) {
        let (ts, rest) = line.split_once(' ').expect("timestamped line");
        assert_eq!(rest, text, "{stamped}");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    }
    let err = s.kubectl_err(&["logs", "web", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );
    let err = s.kubectl_err(&["logs", "web", "-c", "app", "--previous"]);
    assert!(
        err.contains(r#"previous terminated container "app" in pod "web" not found"#),
        "{err}"
    );
    let err = s.kubectl_err(&["logs", "missing"]);
    assert!(err.contains("not found"), "{err}");

    // logs -f: a line written later arrives on the open stream.
    let mut follow = KillOnDrop(
        kubectl_command(&s, &["logs", "-f", "web", "-c", "app"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl logs -f"),
    );
    let lines = lines_of(&mut follow.0);
    wait_line(&lines, |l| l == "three", "three in logs -f");
    s.kubectl_ok(&[
        "exec",
        "web",
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "echo four > /proc/1/fd/1",
    ]);
    wait_line(&lines, |l| l == "four", "a later line in logs -f");
    drop(follow);

    // exec: output, stderr and the exit code passed through.
    let out = s.kubectl(&[
        "exec",
        "web",
        "-c",
        "app",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("err"),
        "{out:?}"
    );
    assert_eq!(
        s.kubectl_ok(&["exec", "web", "-c", "app", "--", "echo", "a b"]),
        "a b\n"
    );
    // Without -c kubectl picks the first container.
    assert_eq!(
        s.kubectl_ok(&["exec", "web", "--", "cat", "/www/index.html"]),
        "hello-through-kubectl\n"
    );
    // Stdin, ended by EOF.
    let out = s.kubectl_stdin(
        &[
            "exec",
            "-i",
            "web",
            "-c",
            "app",
            "--",
            "sh",
            "-c",
            "cat; echo done",
        ],
        Some("line1\nline2\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line1\nline2\ndone\n");
    let err = s.kubectl_err(&["exec", "web", "-c", "nope", "--", "true"]);
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );

    // exec -it under a pseudo-terminal (`script`), an interactive shell fed by its input.
    if Command::new("script").arg("--version").output().is_ok() {
        let kubectl = format!(
            "kubectl --kubeconfig {} --cache-dir {} exec -it web -c app -- sh",
            s.kubeconfig.display(),
            s.cache_dir.display()
        );
        let mut script = Command::new("script")
            .args(["-qefc", &kubectl, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script runs");
        let mut stdin = script.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            // Give the shell time to start before typing.
            std::thread::sleep(Duration::from_secs(2));
            let _ = stdin.write_all(b"tty; echo sum=$((20+22))\n");
            std::thread::sleep(Duration::from_secs(1));
            let _ = stdin.write_all(b"exit 4\n");
            std::thread::sleep(Duration::from_secs(30));
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let out = script.wait_with_output();
            let _ = tx.send(out);
        });
        let out = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("kubectl exec -it ends")
            .expect("script output");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("sum=42"), "{text}");
        assert!(
            text.contains("/dev/pts/"),
            "a terminal in the container: {text}"
        );
        assert_eq!(out.status.code(), Some(4), "{text}");
    }

    // port-forward: a local port reaches httpd in the pod, connection after connection.
    let mut forward = KillOnDrop(
        kubectl_command(&s, &["port-forward", "pod/web", ":8080"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl port-forward"),
    );
    let lines = lines_of(&mut forward.0);
    let line = wait_line(
        &lines,
        |l| l.starts_with("Forwarding from 127.0.0.1:"),
        "the forwarding line",
    );
    let port: u16 = line
        .trim_start_matches("Forwarding from 127.0.0.1:")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    for _ in 0..3 {
        let response = http_get(port);
        assert!(response.starts_with("HTTP/1."), "{response}");
        assert!(response.contains("hello-through-kubectl"), "{response}");
    }
    drop(forward);

    // A crashing container: `--previous` shows the run before the last one.
    let node = s.node.clone().expect("node name");
    let image = busybox_image();
    let crashy = format!(
        r#"{{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {{"name": "crashy"}},
  "spec": {{
    "nodeName": "{node}",
    "volumes": [{{"name": "work", "emptyDir": {{}}}}],
    "containers": [
      {{"name": "app", "image": "{image}", "imagePullPolicy": "Never",
        "volumeMounts": [{{"name": "work", "mountPath": "/work"}}],
        "command": ["sh", "-c", "n=$(cat /work/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /work/n; echo run-$n; exit 1"]}}
    ]
  }}
}}"#
    );
    s.kubectl_ok_stdin(&["apply", "-f", "-"], &crashy);
    let run = |args: &[&str]| -> Option<u32> {
        let out = s.kubectl(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.trim().strip_prefix("run-")?.parse().ok()
    };
    let pair = eventually(Duration::from_secs(90), || {
        let previous = run(&["logs", "crashy", "--previous"])?;
        let current = run(&["logs", "crashy"])?;
        let again = run(&["logs", "crashy", "--previous"])?;
        // A restart between the two reads shifts both; read until they are stable.
        (again == previous).then_some((previous, current))
    });
    let (previous, current) = pair.unwrap_or_else(|| {
        panic!(
            "no previous run of crashy: {:?} / {}",
            s.kubectl(&["logs", "crashy", "--previous"]),
            s.kubectl_ok(&["get", "pod", "crashy", "-o", "json"])
        )
    });
    assert_eq!(
        current,
        previous + 1,
        "previous run-{previous}, current run-{current}"
    );
}

#[test]
fn python_client_exec_and_port_forward() {
    if !tools_ready() {
        return;
    }
    let Some(python) = common::python() else {
        return;
    };
    let s = cluster_with_web_pod();
    let script = r#"
import sys, time
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
resp = stream(api.connect_get_namespaced_pod_exec, "web", "default", container="app",
              command=["sh", "-c", "echo py-out; exit 5"], stderr=True, stdin=False,
              stdout=True, tty=False, _preload_content=False)
resp.run_forever(timeout=30)
print("stdout=" + resp.read_stdout().strip())
print("code=" + str(resp.returncode))
print("logs=" + api.read_namespaced_pod_log("web", "default", container="app", tail_lines=1).strip())

# port-forward over the WebSocket channel protocol: 8080 is httpd, 8081 has no listener
from kubernetes.stream import portforward
pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080,8081")
sock = pf.socket(8080)
sock.settimeout(30)
sock.sendall(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
reply = b""
while b"hello-through-kubectl" not in reply:
    chunk = sock.recv(4096)
    if not chunk:
        break
    reply += chunk
sock.close()
print("forwarded=" + reply.decode(errors="replace").splitlines()[-1].strip())
deadline = time.time() + 30
while pf.error(8081) is None and time.time() < deadline:
    time.sleep(0.1)
print("refused=" + str(pf.error(8081)))
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&s.kubeconfig)
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("stdout=py-out"), "{text}");
    assert!(text.contains("code=5"), "{text}");
    assert!(text.contains("logs=three"), "{text}");
    assert!(text.contains("forwarded=hello-through-kubectl"), "{text}");
    assert!(
        text.contains("refused=error forwarding port 8081 to pod default/web"),
        "{text}"
    );
}
