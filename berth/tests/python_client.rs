//! End-to-end: the official Python Kubernetes client against `berth server`.

mod common;

use common::{TestServer, python, workspace_root};

#[test]
fn python_client_create_list_patch_watch() {
    let Some(py) = python() else { return };
    let s = TestServer::start_with(&["--compaction-interval", "1s"]);
    let script = workspace_root().join("berth/tests/python/client_test.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(&s.kubeconfig)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python client checks failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
