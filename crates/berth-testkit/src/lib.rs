//! Berth's end-to-end test harness: a `berth server` process in a temporary directory on a free
//! port ([`TestServer`]), a cluster of a server and several `berth agent` processes sharing one
//! dockerd ([`TestCluster`]), the real `kubectl` with a fresh cache, the Python client, a busybox
//! image built locally, and the rule that a missing tool skips loudly on a laptop but fails in
//! CI (`CI=true`).
//!
//! Owns process lifetimes and clean-up (every container and network a test's nodes made is
//! removed when the test's handles drop). Must not reach into Berth's crates: it drives the
//! binary like a user does.

mod cluster;

pub use cluster::{TestAgent, TestCluster};

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
        .ancestors()
        .nth(2)
        .expect("the testkit lives in crates/ of the workspace")
        .to_path_buf()
}

/// The `berth` binary under test: `$BERTH_BIN`, else the one cargo built next to the running
/// test (`target/<profile>/berth`, the test being in `target/<profile>/deps/`).
pub fn berth_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    profile_dir.join("berth")
}

/// A `berth server` process for one test.
pub struct TestServer {
    /// The server process.
    pub child: Child,
    /// Its data directory, removed at drop.
    pub dir: tempfile::TempDir,
    /// The API's URL.
    pub url: String,
    /// The admin kubeconfig it wrote.
    pub kubeconfig: PathBuf,
    /// kubectl's discovery cache for this server.
    pub cache_dir: PathBuf,
    /// The flags it was started with after the common ones.
    pub extra_args: Vec<String>,
    /// The node name of the server's own agent, when it runs one.
    pub node: Option<String>,
}

impl TestServer {
    /// Starts a server with `--disable-agent` on 127.0.0.1 and a free port.
    pub fn start() -> TestServer {
        Self::start_with(&[])
    }

    /// Starts a server with extra flags.
    pub fn start_with(extra: &[&str]) -> TestServer {
        let mut args = vec!["--disable-agent".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args, None)
    }

    /// Starts a server that runs its node agent (a node with a unique name, its own pod CIDR
    /// and a streaming port picked at random), with extra flags. Its containers and network are
    /// removed when the server is dropped.
    pub fn start_with_agent(extra: &[&str]) -> TestServer {
        let node = unique_node_name();
        let mut args: Vec<String> = [
            "--node-name",
            &node,
            "--node-ip",
            "127.0.0.1",
            "--listen-port",
            "0",
            "--lease-renew-interval",
            "1s",
            "--cluster-cidr",
            &unique_cluster_cidr(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(args, Some(node))
    }

    fn spawn(extra_args: Vec<String>, node: Option<String>) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (child, url, kubeconfig) = spawn_server(dir.path(), &extra_args);
        let cache_dir = dir.path().join("kubectl-cache");
        TestServer {
            child,
            dir,
            url,
            kubeconfig,
            cache_dir,
            extra_args,
            node,
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
        if let Some(node) = &self.node {
            remove_node_containers(node);
        }
    }
}

/// A node name no other test uses.
pub fn unique_node_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cluster CIDR (a /20) no other server of this test run uses, so that the Docker networks
/// of parallel tests never overlap.
pub fn unique_cluster_cidr() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let second = 100 + (std::process::id() % 100) as u32;
    format!("10.{second}.{}.0/20", (n % 16) * 16)
}

/// Removes the containers and networks an agent made for `node` (tests share one dockerd).
pub fn remove_node_containers(node: &str) {
    let label = format!("label=dev.berth.node={node}");
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", &label])
        .output();
    if let Ok(out) = ids {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
    if let Ok(out) = Command::new("docker")
        .args(["network", "ls", "-q", "--filter", &label])
        .output()
    {
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("docker")
                .args(["network", "rm", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A busybox image built locally from the static busybox binary (nothing can be pulled), for
/// pods in tests; built once per test process.
pub fn busybox_image() -> &'static str {
    use std::sync::OnceLock;
    const TAG: &str = "berth-test/busybox:1";
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy("/bin/busybox", dir.path().join("busybox")).expect("busybox-static");
        std::fs::write(
            dir.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"sh\"]\n",
        )
        .expect("Dockerfile");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", TAG])
            .arg(dir.path())
            .output()
            .expect("docker build runs");
        assert!(
            out.status.success(),
            "building {TAG}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    TAG
}

fn spawn_server(dir: &Path, extra: &[String]) -> (Child, String, PathBuf) {
    let mut child = Command::new(berth_binary())
        .args([
            "server",
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

/// A `berth controllers` process (scheduler and controllers, leader-elected) against a server;
/// killed when dropped.
pub struct ControllersProcess {
    /// The process.
    pub child: Child,
}

impl ControllersProcess {
    /// Starts one with the leader-election `identity`.
    pub fn start(server: &TestServer, identity: &str) -> Self {
        let child = Command::new(berth_binary())
            .args(["controllers", "--identity", identity, "--kubeconfig"])
            .arg(&server.kubeconfig)
            .env("BERTH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("berth controllers starts");
        Self { child }
    }

    /// Kills it with SIGKILL (it cannot release its Lease).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ControllersProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl TestServer {
    /// The holder of the Lease `kube-system/<name>`, if any.
    pub fn lease_holder(&self, name: &str) -> Option<String> {
        let out = self.kubectl(&["get", "lease", name, "-n", "kube-system", "-o", "json"]);
        if !out.status.success() {
            return None;
        }
        let lease: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
    }
}
