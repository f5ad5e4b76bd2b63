//! End to end: `berth token create` against a running `berth server`, a node joining with the
//! printed token, and kubectl with the node's kubeconfig meeting the node authorizer.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestServer;

fn token_create(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["token", "create"])
        .args(args)
        .env("BERTH_LOG", "warn")
        .output()
        .expect("berth token create runs")
}

fn kubectl(kubeconfig: &Path, cache: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn token_create_then_join_then_node_limits() {
    let s = TestServer::start();
    let data_dir = s.data_dir().to_str().unwrap().to_string();

    let out = token_create(&["--data-dir", &data_dir, "--ttl", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .last()
        .expect("a token line")
        .trim()
        .to_string();
    assert!(token.starts_with("K10"), "{stdout}");
    assert!(stderr(&out).contains("valid until"), "{}", stderr(&out));

    // Join with it as n2.
    let agent_dir = s.data_dir().join("agent-n2");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let creds = rt
        .block_on(berth_agent::join::join(
            &s.url,
            &token,
            "n2",
            &["127.0.0.1".parse().unwrap()],
            &agent_dir,
        ))
        .expect("joining with a fresh token works");

    if !common::require("kubectl", &["version", "--client"]) {
        return;
    }
    // The token is a bootstrap-token Secret that expires in an hour.
    let id = token.split("::").nth(1).unwrap().split('.').next().unwrap();
    let secret = format!("bootstrap-token-{id}");
    let kind = s.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &secret,
        "-o",
        "jsonpath={.type}",
    ]);
    assert_eq!(kind, "bootstrap.kubernetes.io/token");
    let exp = s.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &secret,
        "-o",
        "go-template={{.data.expiration | base64decode}}",
    ]);
    let exp: jiff::Timestamp = exp.trim().parse().unwrap();
    let left = exp.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((3500..=3600).contains(&left), "{left}");

    s.kubectl_ok_stdin(
        &["apply", "-f", "-"],
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n3"}}"#,
    );
    let cache = s.dir.path().join("kubectl-cache-n2");
    let as_node = |args: &[&str]| kubectl(&creds.kubeconfig, &cache, args);

    let out = as_node(&["get", "nodes", "-o", "name"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = as_node(&["label", "node", "n3", "hijacked=yes"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"User "system:node:n2" cannot patch resource "nodes""#),
        "{}",
        stderr(&out)
    );
    let out = as_node(&["get", "secrets", "-A"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Forbidden") || stderr(&out).contains("forbidden"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn token_create_without_a_server_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = token_create(&["--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("admin.kubeconfig"), "{err}");
    assert!(err.contains("is `berth server` running"), "{err}");
}
