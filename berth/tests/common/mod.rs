//! Shared helpers of the end-to-end tests: a `berth server` process in a temporary directory
//! on a free port, the real `kubectl` with a fresh cache, the Python client, and the rule
//! that a missing tool skips loudly on a laptop but fails in CI (`CI=true`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when running in CI, where every dependency must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Checks that `tool` runs; returns false (and says so) when it does not and we are not in CI.
pub fn require(tool: &str, probe: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if in_ci() {
            panic!(
                "{tool} is required in CI but `{tool} {}` failed",
                probe.join(" ")
            );
        }
        eprintln!(
            "SKIPPED: {tool} is not available (`{tool} {}` failed); this test runs in CI",
            probe.join(" ")
        );
    }
    ok
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the binary crate lives in the workspace")
        .to_path_buf()
}

/// A `berth server` process for one test.
pub struct TestServer {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub kubeconfig: PathBuf,
    pub cache_dir: PathBuf,
    pub extra_args: Vec<String>,
}

impl TestServer {
    /// Starts a server with `--disable-agent` on 127.0.0.1 and a free port.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, url, kubeconfig) = spawn_server(dir.path(), &extra_args);
        let cache_dir = dir.path().join("kubectl-cache");
        TestServer {
            child,
            dir,
            url,
            kubeconfig,
            cache_dir,
            extra_args,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory (after a kill).
    pub fn restart(&mut self) {
        self.kill9();
        let (child, url, kubeconfig) = spawn_server(self.dir.path(), &self.extra_args);
        self.child = child;
        self.url = url;
        self.kubeconfig = kubeconfig;
    }

    /// Runs kubectl against this server with a fresh discovery cache.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Runs kubectl with `input` on stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(input) = input {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr if it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Like `kubectl_ok` with stdin.
    pub fn kubectl_ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.kubectl_stdin(args, Some(input));
        assert!(
            out.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, expects failure, returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} succeeded but should fail:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl get ... -o json` parsed.
    pub fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&a)).expect("kubectl prints JSON")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(dir: &Path, extra: &[String]) -> (Child, String, PathBuf) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "server",
            "--disable-agent",
            "--bind-address",
            "127.0.0.1",
            "--https-listen-port",
            "0",
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("BERTH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("berth server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut url = None;
    let mut kubeconfig = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while url.is_none() || kubeconfig.is_none() {
        assert!(
            Instant::now() < deadline,
            "berth server did not start in time"
        );
        let Some(Ok(line)) = lines.next() else {
            panic!("berth server exited before it was ready")
        };
        if let Some(u) = line.strip_prefix("Berth API server listening on ") {
            url = Some(u.trim().to_string());
        }
        if let Some(k) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(PathBuf::from(k.trim()));
        }
    }
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    (
        child,
        url.unwrap_or_default(),
        kubeconfig.unwrap_or_default(),
    )
}

/// The Python interpreter that has the `kubernetes` package: `$BERTH_TEST_PYTHON`, else the
/// workspace's `.venv`, else `python3`.
pub fn python() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("BERTH_TEST_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            workspace_root().join(".venv/bin/python"),
            PathBuf::from("python3"),
        ])
        .collect();
    for c in candidates {
        let ok = Command::new(&c)
            .args(["-c", "import kubernetes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(c);
        }
    }
    if in_ci() {
        panic!("a Python with the kubernetes package is required in CI (.ci/run makes .venv)");
    }
    eprintln!("SKIPPED: no Python with the kubernetes package; this test runs in CI");
    None
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An HTTPS client with the admin credential of a kubeconfig, and the server URL.
pub fn admin_client(kubeconfig: &Path) -> (reqwest::Client, String) {
    let (tls, url) = berth_apiserver::pki::client_config_from_kubeconfig(kubeconfig)
        .expect("kubeconfig is readable");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured((*tls).clone())
        .build()
        .expect("client builds");
    (client, url)
}
