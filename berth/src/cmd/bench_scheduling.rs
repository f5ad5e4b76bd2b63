//! `berth bench scheduling`: end-to-end scheduling throughput through the API. Creates pods with
//! no node as fast as the server takes them and counts, from a watch, how many pods per second
//! get bound to a node (the nodes are typically `berth agent --simulate N`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;

use crate::cmd::bench::percentiles;

/// Flags of `berth bench scheduling`.
#[derive(Debug, Args)]
pub struct SchedulingArgs {
    /// Kubeconfig of the cluster (the admin one).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// How many pods to create.
    #[arg(long, default_value_t = 2000)]
    pub pods: usize,
    /// Concurrent creates.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// CPU each pod requests (so that placement has work to do), in millicores.
    #[arg(long, default_value_t = 10)]
    pub cpu_millis: u32,
}

/// Runs the benchmark.
pub async fn run(args: SchedulingArgs) -> anyhow::Result<()> {
    let client = crate::cmd::controllers::client_from_kubeconfig(&args.kubeconfig).await?;
    let ns = format!("bench-scheduling-{}", std::process::id());
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?,
        )
        .await
        .context("creating the benchmark namespace")?;
    let pods = kube::Api::<Pod>::namespaced(client.clone(), &ns);
    let nodes = kube::Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&Default::default())
        .await?
        .items
        .len();

    let (bound_tx, mut bound_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch = {
        let pods = pods.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(ev) = events.next().await {
                if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev
                    && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
                {
                    let _ = bound_tx.send((p.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        })
    };
    // Let the watch start before the clock does.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let make = |i: usize| -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("p-{i}"), "labels": {"app": "bench-scheduling"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "app",
                    "image": "bench/app:1",
                    "resources": {"requests": {"cpu": format!("{}m", args.cpu_millis), "memory": "1Mi"}},
                }],
            }
        }))
        .expect("a valid pod")
    };
    let started = Instant::now();
    let mut created_at = HashMap::with_capacity(args.pods);
    let creates = futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            let pod = make(i);
            async move {
                let r = pods.create(&PostParams::default(), &pod).await;
                (i, Instant::now(), r)
            }
        })
        .buffer_unordered(args.concurrency.max(1));
    tokio::pin!(creates);
    while let Some((i, at, r)) = creates.next().await {
        r.with_context(|| format!("creating pod p-{i}"))?;
        created_at.insert(format!("p-{i}"), at);
    }
    let created_in = started.elapsed();

    let mut latencies = Vec::with_capacity(args.pods);
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut last = started;
    while seen.len() < args.pods {
        let (name, at) = tokio::time::timeout_at(deadline, bound_rx.recv())
            .await
            .with_context(|| {
                format!(
                    "only {} of {} pods were bound within 300 s",
                    seen.len(),
                    args.pods
                )
            })?
            .context("the watch ended")?;
        if seen.insert(name.clone()) {
            if let Some(c) = created_at.get(&name) {
                latencies.push(at.saturating_duration_since(*c));
            }
            last = last.max(at);
        }
    }
    let total = last - started;
    watch.abort();
    let (p50, p99) = percentiles(&mut latencies);
    println!(
        "{} pods on {nodes} nodes: created in {:.2} s, all bound after {:.2} s: {:.0} pods bound/s; create-to-bound p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.pods,
        created_in.as_secs_f64(),
        total.as_secs_f64(),
        args.pods as f64 / total.as_secs_f64(),
    );
    kube::Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await?;
    Ok(())
}
