//! `berth bench scheduler`: the placement core alone, on one thread, over synthetic nodes and
//! pods (see `berth_scheduler::synthetic` for the mix): pods placed per second and the latency
//! of one pod (parsing it, choosing its node, recording the placement).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_scheduler::synthetic::{self, Workload};
use berth_scheduler::{Config, PodInfo, Scheduler, Snapshot};
use clap::Args;

use crate::cmd::bench::percentiles;

/// Flags of `berth bench scheduler`.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Synthetic nodes.
    #[arg(long, default_value_t = 5_000)]
    pub nodes: usize,
    /// Synthetic pods, placed one after the other.
    #[arg(long, default_value_t = 50_000)]
    pub pods: usize,
    /// The share of nodes to find feasible before scoring (0: Kubernetes' adaptive default,
    /// 100: every node).
    #[arg(long, default_value_t = 0)]
    pub percentage_of_nodes_to_score: u32,
    /// The seed of the synthetic cluster and of tie-breaking.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// Runs the benchmark.
pub fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let nodes = synthetic::nodes(args.nodes, args.seed);
    let pods = synthetic::pods(args.pods, args.seed);
    let mut snap = Snapshot::new();
    for n in nodes {
        snap.upsert_node(n);
    }
    println!(
        "generated {} nodes and {} pods in {:.1} s",
        snap.node_count(),
        pods.len(),
        started.elapsed().as_secs_f64()
    );
    let mut sched = Scheduler::new(Config {
        percentage_of_nodes_to_score: args.percentage_of_nodes_to_score,
        seed: args.seed,
        ..Config::default()
    });
    let mut latencies = Vec::with_capacity(pods.len());
    let mut by_kind: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut unschedulable = 0usize;
    let mut first_error = None;
    let run = Instant::now();
    for (pod, kind) in &pods {
        let t = Instant::now();
        let info = PodInfo::new(pod);
        match sched.schedule(&mut snap, &info) {
            Ok(p) => snap.assume(info, &p.node),
            Err(e) => {
                unschedulable += 1;
                first_error.get_or_insert_with(|| format!("{}: {e}", info.name));
            }
        }
        let d = t.elapsed();
        latencies.push(d);
        by_kind.entry(kind_name(*kind).into()).or_default().push(d);
    }
    let total = run.elapsed();
    let (p50, p99) = percentiles(&mut latencies);
    let max = latencies.last().copied().unwrap_or_default();
    println!(
        "placed {} pods ({} unschedulable) on {} nodes in {:.2} s on one thread: {:.0} pods/s",
        pods.len() - unschedulable,
        unschedulable,
        snap.node_count(),
        total.as_secs_f64(),
        pods.len() as f64 / total.as_secs_f64()
    );
    println!(
        "per pod: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        p50 * 1000.0,
        p99 * 1000.0,
        max.as_secs_f64() * 1e6
    );
    for (kind, mut l) in by_kind {
        let (p50, p99) = percentiles(&mut l);
        println!(
            "  {kind:<14} {:>6} pods  p50 {:>7.1} µs  p99 {:>7.1} µs",
            l.len(),
            p50 * 1000.0,
            p99 * 1000.0
        );
    }
    if let Some(e) = first_error {
        println!("first unschedulable: {e}");
    }
    Ok(())
}

fn kind_name(k: Workload) -> &'static str {
    match k {
        Workload::Plain => "plain",
        Workload::Ssd => "nodeSelector",
        Workload::PreferSpread => "preferred-anti",
        Workload::OnePerNode => "required-anti",
        Workload::ZoneSpread => "zone-spread",
        Workload::Gpu => "gpu-toleration",
        Workload::NextTo => "pod-affinity",
        Workload::HostPort => "host-port",
    }
}
