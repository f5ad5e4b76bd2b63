//! `berth bench pods`: pod start latency through Berth (create to Running, as a watch sees it),
//! one at a time and in a burst, side by side with the same containers made directly through
//! the Docker API (a sandbox container plus the app container joined to its network namespace).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, DnsConfig, DockerRuntime, NetworkSpec, SandboxSpec,
};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use tokio::sync::Notify;

use crate::cmd::bench::percentiles;

/// Flags of `berth bench pods`.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Kubeconfig of the cluster (the admin one).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The node to place the pods on.
    #[arg(long)]
    pub node: String,
    /// A locally present image whose `sleep` the pods run.
    #[arg(long)]
    pub image: String,
    /// The sandbox image for the plain Docker baseline (the agent builds it).
    #[arg(long, default_value_t = format!("berth/pause:{}", env!("CARGO_PKG_VERSION")))]
    pub sandbox_image: String,
    /// Pods per round.
    #[arg(long, default_value_t = 50)]
    pub count: usize,
    /// Rounds, each through Berth and the plain baseline (Berth first in odd rounds, the
    /// baseline first in even ones); the medians of their overheads are printed at the end.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// PID of the agent process, to report its RSS with the pods running.
    #[arg(long)]
    pub agent_pid: Option<u32>,
    /// A process whose CPU time over each burst is reported, as `NAME=PID` (repeatable), with
    /// the machine's busy and idle CPU time over the same window.
    #[arg(long = "cpu-of", value_name = "NAME=PID", value_parser = parse_named_pid)]
    pub cpu_of: Vec<(String, u32)>,
}

fn parse_named_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=PID"))?;
    let pid = pid
        .parse()
        .map_err(|_| format!("{pid:?} in {s:?} is not a process ID"))?;
    Ok((name.to_owned(), pid))
}

/// CPU time used over one burst by the processes named with `--cpu-of`, this one and the
/// machine as a whole, as read from `/proc` (in clock ticks) when the burst began.
struct CpuWindow<'a> {
    of: &'a [(String, u32)],
    start: Vec<(String, u64)>,
}

impl<'a> CpuWindow<'a> {
    /// Starts a window, or `None` when no process was named (nothing is read then).
    fn open(of: &'a [(String, u32)]) -> Option<Self> {
        (!of.is_empty()).then(|| Self {
            of,
            start: Self::sample(of),
        })
    }

    /// The machine's busy and idle time, then each named process's and this one's.
    fn sample(of: &[(String, u32)]) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        if let Some(line) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
        {
            let t: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let idle = t.get(3).copied().unwrap_or(0) + t.get(4).copied().unwrap_or(0);
            v.push(("machine busy".to_owned(), t.iter().sum::<u64>() - idle));
            v.push(("machine idle".to_owned(), idle));
        }
        let me = ("benchmark client".to_owned(), std::process::id());
        for (name, pid) in of.iter().chain(std::iter::once(&me)) {
            // utime and stime: fields 14 and 15, counted after the parenthesised command name.
            let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
                });
            if let Some(ticks) = ticks {
                v.push((name.clone(), ticks));
            }
        }
        v
    }

    /// Prints what was used since the window opened, in seconds, on one line after `label`.
    fn report(&self, label: &str) {
        // Linux reports these in USER_HZ, which is 100 on every architecture it supports.
        const HZ: f64 = 100.0;
        let used = Self::sample(self.of)
            .iter()
            .filter_map(|(name, now)| {
                let (_, then) = self.start.iter().find(|(n, _)| n == name)?;
                Some(format!(
                    "{name} {:.2} s",
                    now.saturating_sub(*then) as f64 / HZ
                ))
            })
            .collect::<Vec<_>>()
            .join(", ");
        println!("{label}, CPU time over the burst: {used}");
    }
}

/// Runs the benchmark: `rounds` rounds, each through Berth and through the plain Docker API in
/// alternating order (so that neither always follows the other's clean-up), with the median
/// overheads over the rounds at the end (a single burst on a shared dockerd swings by hundreds of
/// milliseconds from run to run).
pub async fn run(args: PodsArgs) -> anyhow::Result<()> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&args.kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = kube::Client::try_from(config)?;
    let mut overheads: [Vec<f64>; 4] = Default::default();
    for round in 1..=args.rounds.max(1) {
        println!("round {round} of {}", args.rounds.max(1));
        let ((mut sequential, mut burst), (mut plain_seq, mut plain_burst)) = if round % 2 == 1 {
            let berth = through_berth(&client, &args, round).await?;
            (berth, plain_docker(&args, round).await?)
        } else {
            let plain = plain_docker(&args, round).await?;
            (through_berth(&client, &args, round).await?, plain)
        };
        let figures = [
            ("Berth, one at a time", &mut sequential),
            ("plain Docker API, one at a time", &mut plain_seq),
            ("Berth, burst", &mut burst),
            ("plain Docker API, burst", &mut plain_burst),
        ]
        .map(|(what, samples)| {
            let (p50, p99) = percentiles(samples);
            println!(
                "{what}: {} pods, start latency p50 {p50:.1} ms, p99 {p99:.1} ms",
                samples.len()
            );
            (p50, p99)
        });
        for (i, what) in ["one at a time", "in the burst"].into_iter().enumerate() {
            let (b, p) = (figures[2 * i], figures[2 * i + 1]);
            println!(
                "overhead {what}: p50 {:+.1} ms, p99 {:+.1} ms",
                b.0 - p.0,
                b.1 - p.1
            );
            overheads[2 * i].push(b.0 - p.0);
            overheads[2 * i + 1].push(b.1 - p.1);
        }
    }
    let rounds = overheads[0].len();
    if rounds > 1 {
        let [s50, s99, b50, b99] = overheads.map(|mut v| {
            v.sort_unstable_by(f64::total_cmp);
            v[v.len() / 2]
        });
        println!(
            "median over {rounds} rounds: overhead one at a time p50 {s50:+.1} ms, p99 {s99:+.1} ms; \
             in the burst p50 {b50:+.1} ms, p99 {b99:+.1} ms"
        );
    }
    Ok(())
}

/// One round through Berth: `count` pods one at a time, then a burst of `count`, each timed
/// from its create to `Running` as a watch sees it; returns once the agent has removed them all.
async fn through_berth(
    client: &kube::Client,
    args: &PodsArgs,
    round: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let ns = format!("bench-pods-{}-{round}", std::process::id());
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the benchmark namespace")?;
    let pods = kube::Api::<Pod>::namespaced(client.clone(), &ns);
    let running: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let changed = Arc::new(Notify::new());
    let watch = {
        let running = Arc::clone(&running);
        let changed = Arc::clone(&changed);
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = events.next().await {
                let pod = match ev {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
                    _ => continue,
                };
                if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                    let name = pod.metadata.name.unwrap_or_default();
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(name)
                        .or_insert_with(Instant::now);
                    changed.notify_waiters();
                }
            }
        })
    };
    let make = |name: &str| -> anyhow::Result<Pod> {
        Ok(serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {
                "nodeName": args.node,
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "app", "image": args.image, "imagePullPolicy": "IfNotPresent",
                                "command": ["sleep", "3600"]}],
            }
        }))?)
    };
    let wait_running = |name: String| {
        let running = Arc::clone(&running);
        let changed = Arc::clone(&changed);
        async move {
            loop {
                let notified = changed.notified();
                if let Some(t) = running.lock().unwrap_or_else(|e| e.into_inner()).get(&name) {
                    return *t;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            }
        }
    };

    let mut sequential = Vec::new();
    for i in 0..args.count {
        let name = format!("seq-{i}");
        let started = Instant::now();
        pods.create(&PostParams::default(), &make(&name)?).await?;
        let at = tokio::time::timeout(Duration::from_secs(60), wait_running(name.clone()))
            .await
            .with_context(|| format!("pod {name} did not run within 60 s"))?;
        sequential.push(at - started);
    }
    let cpu = CpuWindow::open(&args.cpu_of);
    let started = Instant::now();
    let creates = (0..args.count).map(|i| {
        let pods = pods.clone();
        let pod = make(&format!("burst-{i}"));
        async move {
            pods.create(&PostParams::default(), &pod?)
                .await
                .map_err(anyhow::Error::from)
        }
    });
    for r in futures::future::join_all(creates).await {
        r?;
    }
    let mut burst = Vec::new();
    for i in 0..args.count {
        let at = tokio::time::timeout(Duration::from_secs(120), wait_running(format!("burst-{i}")))
            .await
            .context("burst pods did not all run within 120 s")?;
        burst.push(at - started);
    }
    if let Some(cpu) = &cpu {
        cpu.report("Berth");
    }
    if let Some(pid) = args.agent_pid {
        println!(
            "agent RSS with {} pods running: {}",
            2 * args.count,
            rss(pid).unwrap_or_else(|| "unknown".into())
        );
    }
    watch.abort();
    // The baseline starts only when the agent has stopped and removed every container, so
    // that the two never share dockerd.
    pods.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    let gone = async {
        while !pods.list(&ListParams::default()).await?.items.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(180), gone)
        .await
        .context("the agent did not remove the pods within 180 s")??;
    kube::Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await?;
    Ok((sequential, burst))
}

fn rss(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} MB", kb / 1024.0))
}

/// The same containers straight through the Docker API: sequential and burst latencies.
async fn plain_docker(
    args: &PodsArgs,
    round: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let uid = format!("bench-plain-{}-{round}", std::process::id());
    let rt = Arc::new(DockerRuntime::connect(uid.clone(), "bench").await?);
    let network = uid.clone();
    rt.ensure_network(&NetworkSpec {
        name: network.clone(),
        subnet: "10.254.0.0/24".parse()?,
        gateway: "10.254.0.1".parse()?,
        labels: BTreeMap::new(),
    })
    .await
    .context("creating the baseline's network (10.254.0.0/24 must be free)")?;
    let one = |name: String| {
        let rt = Arc::clone(&rt);
        let network = network.clone();
        let image = args.image.clone();
        let sandbox_image = args.sandbox_image.clone();
        async move {
            let sandbox = rt
                .create_sandbox(&SandboxSpec {
                    pod_uid: format!("{name}-uid"),
                    pod_name: name.clone(),
                    pod_namespace: "bench".into(),
                    attempt: 0,
                    labels: BTreeMap::new(),
                    image: sandbox_image,
                    network,
                    ip: None,
                    hostname: name.clone(),
                    dns: DnsConfig::default(),
                    port_mappings: Vec::new(),
                    cgroup_parent: None,
                })
                .await?;
            let mut spec = ContainerSpec::new("app", sandbox, image);
            spec.command = vec!["sleep".into(), "3600".into()];
            let id = rt.create_container(&spec).await?;
            rt.start(&id).await?;
            anyhow::Ok(Instant::now())
        }
    };
    let mut seq = Vec::new();
    for i in 0..args.count {
        let started = Instant::now();
        seq.push(one(format!("seq-{i}")).await? - started);
    }
    // Burst latencies count from the common start, as for Berth's burst.
    let mut burst = Vec::new();
    let cpu = CpuWindow::open(&args.cpu_of);
    let started = Instant::now();
    for r in futures::future::join_all((0..args.count).map(|i| one(format!("burst-{i}")))).await {
        burst.push(r? - started);
    }
    if let Some(cpu) = &cpu {
        cpu.report("plain Docker API");
    }
    let all = rt.list(&BTreeMap::new()).await?;
    for c in all
        .iter()
        .filter(|c| c.labels.get("dev.berth.kind").map(String::as_str) != Some("sandbox"))
    {
        let _ = rt.remove(&c.id).await;
    }
    for c in all {
        let _ = rt.remove(&c.id).await;
    }
    rt.remove_network(&network).await?;
    Ok((seq, burst))
}
