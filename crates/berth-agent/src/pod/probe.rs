//! Liveness, readiness and startup probes: running one check (exec, httpGet, tcpSocket) and the
//! per-container probe loop with all the timing fields (initialDelaySeconds, periodSeconds,
//! timeoutSeconds, successThreshold, failureThreshold).
//!
//! Owns [`check`] (one attempt), [`Thresholds`] (counting consecutive results into a verdict),
//! and [`Prober`], a background task per container whose verdicts the pod worker reads from a
//! shared [`ProbeResults`] and is woken for. Startup comes first: liveness and readiness do not
//! run until it has succeeded. Must not restart or kill containers (the worker acts on
//! verdicts) or write to the API (it reports `Unhealthy` events through a callback).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::sync::Notify;

use crate::runtime::ContainerRuntime;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// Restarts the container when it fails.
    Liveness,
    /// Gates the container's Ready.
    Readiness,
    /// Holds the other two back until it succeeds; restarts the container when it fails.
    Startup,
}

impl ProbeKind {
    /// `Liveness`, `Readiness`, `Startup`, as event messages write it.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Success,
    /// The check failed, with why.
    Failure(String),
}

/// Runs one attempt of `probe` against the container `container_id` at `pod_ip`.
pub async fn check(
    runtime: &dyn ContainerRuntime,
    container_id: &str,
    container: &Container,
    pod_ip: Option<IpAddr>,
    probe: &Probe,
) -> Outcome {
    let timeout =
        Duration::from_secs(u64::try_from(probe.timeout_seconds.unwrap_or(1).max(1)).unwrap_or(1));
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match runtime.exec_output(container_id, &cmd, timeout).await {
            Ok(out) if out.exit_code == 0 => Outcome::Success,
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                Outcome::Failure(if text.trim().is_empty() {
                    format!("command {cmd:?} exited with {}", out.exit_code)
                } else {
                    text.trim_end().to_string()
                })
            }
            Err(crate::runtime::RuntimeError::Timeout { .. }) => {
                Outcome::Failure(format!("command timed out after {timeout:?}"))
            }
            Err(e) => Outcome::Failure(e.to_string()),
        };
    }
    if let Some(http) = &probe.http_get {
        let Some(port) = resolve_port(&http.port, container) else {
            return Outcome::Failure(format!("unknown port {:?}", http.port));
        };
        let host = match http.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_string(),
            None => match pod_ip {
                Some(ip) => ip.to_string(),
                None => return Outcome::Failure("the pod has no IP".into()),
            },
        };
        let scheme = match http.scheme.as_deref() {
            Some("HTTPS") => "https",
            _ => "http",
        };
        let path = http.path.as_deref().unwrap_or("/");
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let url = format!("{scheme}://{host}:{port}{path}");
        return http_check(
            &url,
            http.http_headers.as_deref().unwrap_or_default(),
            timeout,
        )
        .await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let Some(port) = resolve_port(&tcp.port, container) else {
            return Outcome::Failure(format!("unknown port {:?}", tcp.port));
        };
        let host = match tcp.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.to_string(),
            None => match pod_ip {
                Some(ip) => ip.to_string(),
                None => return Outcome::Failure("the pod has no IP".into()),
            },
        };
        let addr = format!("{host}:{port}");
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => Outcome::Success,
            Ok(Err(e)) => Outcome::Failure(format!("dial tcp {addr}: connect: {e}")),
            Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
        };
    }
    Outcome::Failure(
        "the probe has no handler this agent supports (exec, httpGet, tcpSocket)".into(),
    )
}

/// A port number, or a named port of the container.
fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|p| *p != 0),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Some(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }
    }
}

async fn http_check(
    url: &str,
    headers: &[k8s_openapi::api::core::v1::HTTPHeader],
    timeout: Duration,
) -> Outcome {
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent("kube-probe/1.33")
        .build()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failure(e.to_string()),
    };
    let mut req = client.get(url);
    for h in headers {
        req = req.header(h.name.as_str(), h.value.as_str());
    }
    match req.send().await {
        Ok(resp) if (200..400).contains(&resp.status().as_u16()) => Outcome::Success,
        Ok(resp) => Outcome::Failure(format!(
            "HTTP probe failed with statuscode: {}",
            resp.status().as_u16()
        )),
        Err(e) if e.is_timeout() => Outcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Err(e) => Outcome::Failure(format!("Get \"{url}\": {e}")),
    }
}

/// Counts consecutive results of one probe into a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Thresholds {
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    verdict: Option<bool>,
}

impl Thresholds {
    /// From the probe's fields (defaults 1 and 3).
    pub fn new(probe: &Probe) -> Self {
        let pos = |v: Option<i32>, d: u32| {
            v.and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(d)
        };
        Self {
            success_threshold: pos(probe.success_threshold, 1),
            failure_threshold: pos(probe.failure_threshold, 3),
            successes: 0,
            failures: 0,
            verdict: None,
        }
    }

    /// Adds an attempt's result; returns the verdict once a threshold is reached (`Some(true)`
    /// healthy, `Some(false)` failed), the previous verdict otherwise.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success {
            self.failures = 0;
            self.successes += 1;
            if self.successes >= self.success_threshold {
                self.verdict = Some(true);
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= self.failure_threshold {
                self.verdict = Some(false);
            }
        }
        self.verdict
    }
}

/// Verdicts of one container's probes, shared between its [`Prober`] and the pod worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeResults {
    /// Startup: `None` while undecided (or no probe, see `has_startup`).
    pub startup: Option<bool>,
    /// Whether the container has a startup probe.
    pub has_startup: bool,
    /// Readiness verdict (`None` until decided; no probe means ready once started).
    pub readiness: Option<bool>,
    /// Whether the container has a readiness probe.
    pub has_readiness: bool,
    /// Set when liveness (or startup) failed: the container must be restarted.
    pub kill: Option<ProbeKind>,
    /// The last failure message of the probe that asked for a kill.
    pub kill_message: String,
}

impl ProbeResults {
    /// The verdicts before any probe of `container` ran: not started while it has a startup
    /// probe, not ready while it has a readiness probe.
    pub fn initial(container: &Container) -> Self {
        Self {
            has_startup: container.startup_probe.is_some(),
            has_readiness: container.readiness_probe.is_some(),
            ..Self::default()
        }
    }

    /// Whether the container counts as started.
    pub fn started(&self) -> bool {
        !self.has_startup || self.startup == Some(true)
    }

    /// Whether the container counts as ready (when running).
    pub fn ready(&self) -> bool {
        self.started() && (!self.has_readiness || self.readiness == Some(true))
    }
}

/// Called for each failed attempt (for the `Unhealthy` event): kind and message.
pub type FailureHook = Arc<dyn Fn(ProbeKind, &str) + Send + Sync>;

/// The probes of one running container, in a background task; stopped when dropped.
pub struct Prober {
    results: Arc<Mutex<ProbeResults>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn secs(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
}

impl Prober {
    /// Starts probing `container` (engine ID `container_id`), which started `since_start` ago;
    /// `wake` is notified whenever a verdict changes.
    pub fn start(
        runtime: Arc<dyn ContainerRuntime>,
        container: Container,
        container_id: String,
        pod_ip: Option<IpAddr>,
        since_start: Duration,
        wake: Arc<Notify>,
        on_failure: FailureHook,
    ) -> Self {
        let results = Arc::new(Mutex::new(ProbeResults::initial(&container)));
        let any = container.startup_probe.is_some()
            || container.readiness_probe.is_some()
            || container.liveness_probe.is_some();
        let task = any.then(|| {
            let results = Arc::clone(&results);
            tokio::spawn(async move {
                let r = ProbeRun {
                    runtime,
                    container,
                    container_id,
                    pod_ip,
                    results,
                    wake,
                    on_failure,
                };
                r.run(since_start).await;
            })
        });
        Self { results, task }
    }

    /// The current verdicts.
    pub fn results(&self) -> ProbeResults {
        self.results
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct ProbeRun {
    runtime: Arc<dyn ContainerRuntime>,
    container: Container,
    container_id: String,
    pod_ip: Option<IpAddr>,
    results: Arc<Mutex<ProbeResults>>,
    wake: Arc<Notify>,
    on_failure: FailureHook,
}

impl ProbeRun {
    fn update(&self, f: impl FnOnce(&mut ProbeResults)) {
        let changed = {
            let mut r = self.results.lock().unwrap_or_else(|e| e.into_inner());
            let before = r.clone();
            f(&mut r);
            *r != before
        };
        if changed {
            self.wake.notify_one();
        }
    }

    async fn attempt(&self, kind: ProbeKind, probe: &Probe) -> bool {
        match check(
            self.runtime.as_ref(),
            &self.container_id,
            &self.container,
            self.pod_ip,
            probe,
        )
        .await
        {
            Outcome::Success => true,
            Outcome::Failure(msg) => {
                (self.on_failure)(kind, &msg);
                self.update(|r| r.kill_message = msg);
                false
            }
        }
    }

    async fn run(self, since_start: Duration) {
        if let Some(probe) = self.container.startup_probe.clone() {
            let delay = secs(probe.initial_delay_seconds, 0).saturating_sub(since_start);
            tokio::time::sleep(delay).await;
            let mut t = Thresholds::new(&probe);
            let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
            loop {
                let ok = self.attempt(ProbeKind::Startup, &probe).await;
                match t.record(ok) {
                    Some(true) => {
                        self.update(|r| r.startup = Some(true));
                        break;
                    }
                    Some(false) => {
                        self.update(|r| {
                            r.startup = Some(false);
                            r.kill = Some(ProbeKind::Startup);
                        });
                        return;
                    }
                    None => {}
                }
                tokio::time::sleep(period).await;
            }
        }
        let started_at = tokio::time::Instant::now() - since_start;
        let mut loops = Vec::new();
        for (kind, probe) in [
            (ProbeKind::Readiness, self.container.readiness_probe.clone()),
            (ProbeKind::Liveness, self.container.liveness_probe.clone()),
        ] {
            if let Some(p) = probe {
                loops.push(self.probe_loop(kind, p, started_at));
            }
        }
        futures::future::join_all(loops).await;
    }

    async fn probe_loop(&self, kind: ProbeKind, probe: Probe, started_at: tokio::time::Instant) {
        tokio::time::sleep_until(started_at + secs(probe.initial_delay_seconds, 0)).await;
        let period = secs(probe.period_seconds, 10).max(Duration::from_secs(1));
        let mut t = Thresholds::new(&probe);
        loop {
            let ok = self.attempt(kind, &probe).await;
            let verdict = t.record(ok);
            match kind {
                ProbeKind::Readiness => self.update(|r| r.readiness = verdict.or(r.readiness)),
                _ => {
                    if verdict == Some(false) {
                        self.update(|r| r.kill = Some(kind));
                        return;
                    }
                }
            }
            tokio::time::sleep(period).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ExecOutput, FakeRuntime};
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn thresholds_count_consecutive_results() {
        let mut t = Thresholds::new(&probe(
            json!({"successThreshold": 2, "failureThreshold": 2}),
        ));
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(false), None);
        assert_eq!(t.record(true), None);
        assert_eq!(t.record(true), Some(true));
        assert_eq!(t.record(false), Some(true), "one failure is not enough");
        assert_eq!(t.record(false), Some(false));
    }

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c: Container = serde_json::from_value(json!({
            "name": "c", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Some(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Some(81));
        assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
    }

    /// A running container in the fake engine.
    async fn running_container(rt: &FakeRuntime) -> String {
        use crate::runtime::{ContainerSpec, DnsConfig, NetworkSpec, SandboxSpec};
        use std::collections::BTreeMap;
        use std::net::Ipv4Addr;
        rt.add_image("pause", "sha256:p");
        rt.add_image("app", "sha256:a");
        rt.ensure_network(&NetworkSpec {
            name: "n".into(),
            subnet: "10.244.1.0/24".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 244, 1, 1),
            labels: BTreeMap::new(),
        })
        .await
        .unwrap();
        let sb = rt
            .create_sandbox(&SandboxSpec {
                pod_uid: "u".into(),
                pod_name: "p".into(),
                pod_namespace: "ns".into(),
                attempt: 0,
                labels: BTreeMap::new(),
                image: "pause".into(),
                network: "n".into(),
                ip: None,
                hostname: "p".into(),
                dns: DnsConfig::default(),
                port_mappings: Vec::new(),
                cgroup_parent: None,
            })
            .await
            .unwrap();
        let id = rt
            .create_container(&ContainerSpec::new("c", sb, "app"))
            .await
            .unwrap();
        rt.start(&id).await.unwrap();
        id
    }

    #[tokio::test]
    async fn exec_and_tcp_checks() {
        let rt = FakeRuntime::new();
        let id = running_container(&rt).await;
        rt.script_exec(
            &["cat", "/tmp/healthy"],
            ExecOutput {
                exit_code: 1,
                stdout: Vec::new(),
                stderr: b"cat: can't open '/tmp/healthy': No such file or directory\n".to_vec(),
            },
        );
        let c: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
        let p = probe(json!({"exec": {"command": ["cat", "/tmp/healthy"]}}));
        let out = check(&rt, &id, &c, None, &p).await;
        assert_eq!(
            out,
            Outcome::Failure("cat: can't open '/tmp/healthy': No such file or directory".into())
        );

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = probe(json!({"tcpSocket": {"port": port, "host": "127.0.0.1"}}));
        assert_eq!(check(&rt, "id", &c, None, &p).await, Outcome::Success);
        drop(listener);
        assert!(matches!(
            check(&rt, "id", &c, None, &p).await,
            Outcome::Failure(_)
        ));
    }

    #[tokio::test]
    async fn http_checks_accept_2xx_and_3xx_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let code = if req.starts_with("GET /ok") {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let rt = FakeRuntime::new();
        let c: Container = serde_json::from_value(json!({"name": "c"})).unwrap();
        let ip = Some("127.0.0.1".parse().unwrap());
        let ok = probe(json!({"httpGet": {"path": "/ok", "port": port}}));
        assert_eq!(check(&rt, "id", &c, ip, &ok).await, Outcome::Success);
        let bad = probe(json!({"httpGet": {"path": "/bad", "port": port}}));
        assert_eq!(
            check(&rt, "id", &c, ip, &bad).await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
    }

    #[tokio::test]
    async fn a_failing_liveness_probe_asks_for_a_kill_after_the_threshold() {
        let rt = Arc::new(FakeRuntime::new());
        let id = running_container(&rt).await;
        rt.script_exec(
            &["false"],
            ExecOutput {
                exit_code: 1,
                stdout: Vec::new(),
                stderr: Vec::new(),
            },
        );
        let c: Container = serde_json::from_value(json!({
            "name": "c",
            "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
        }))
        .unwrap();
        let wake = Arc::new(Notify::new());
        let failures = Arc::new(Mutex::new(0));
        let f2 = Arc::clone(&failures);
        let hook: FailureHook = Arc::new(move |_, _| *f2.lock().unwrap() += 1);
        let p = Prober::start(rt, c, id, None, Duration::ZERO, Arc::clone(&wake), hook);
        assert!(p.results().ready(), "no readiness probe: ready");
        tokio::time::timeout(Duration::from_secs(10), wake.notified())
            .await
            .unwrap();
        // Woken by the kill verdict (or the failure message first); wait for the verdict.
        for _ in 0..10 {
            if p.results().kill.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(p.results().kill, Some(ProbeKind::Liveness));
        assert_eq!(*failures.lock().unwrap(), 2);
    }
}
