//! Berth's controllers: level-triggered reconcilers that read shared informers and act only
//! through the Kubernetes API (a `kube::Client`), so that they run the same inside
//! `berth server` and as a separate process pointed at a kubeconfig.
//!
//! Layout:
//! - [`informer`]: one watch and cache per kind, shared by all controllers of a term.
//! - [`queue`]: the de-duplicating work queue and the worker loop every controller uses.
//! - [`leader`]: leader election through a Lease; only the holder runs the controllers.
//! - one file per controller (e.g. [`root_ca`]), each exposing `run(ctx, shutdown)`.
//!
//! A controller compares what is with what should be for one key and acts; it never keeps
//! state that a restart would lose, so a new leader picks up where the old one stopped.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod endpointslice;
pub mod informer;
pub mod job;
pub mod leader;
pub mod node_lifecycle;
pub mod pods;
pub mod queue;
pub mod replicaset;
pub mod resourcequota;
pub mod revision;
pub mod root_ca;
pub mod scheduler;
pub mod statefulset;
pub mod workload;

use std::sync::Arc;
use std::time::Duration;

use berth_api::clock::Clock;
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::informer::Informers;
use crate::leader::{Elector, LeaderConfig};

/// The name of the Lease whose holder runs the controllers (in `kube-system`).
pub const LEASE_NAME: &str = "berth-controllers";

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct Config {
    /// The leader election.
    pub leader: LeaderConfig,
    /// The cluster CA in PEM, published in each namespace as the `kube-root-ca.crt` ConfigMap.
    pub root_ca_pem: Option<String>,
    /// How long a node may go without renewing its Lease or posting status before it is
    /// declared NotReady (Kubernetes' `--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often the health of every node is checked (`--node-monitor-period`).
    pub node_monitor_period: Duration,
}

impl Config {
    /// Defaults for the candidate `identity`.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            leader: LeaderConfig::new("kube-system", LEASE_NAME, identity),
            root_ca_pem: None,
            node_monitor_grace_period: node_lifecycle::DEFAULT_GRACE_PERIOD,
            node_monitor_period: node_lifecycle::DEFAULT_MONITOR_PERIOD,
        }
    }
}

/// What every controller of a term shares.
pub struct Context {
    /// The API client.
    pub client: kube::Client,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The term's informers.
    pub informers: Informers,
    /// The settings.
    pub config: Config,
}

/// Starts one controller; it runs until its shutdown channel turns true.
pub type Start = fn(Arc<Context>, watch::Receiver<bool>) -> BoxFuture<'static, ()>;

/// Every controller, by name.
pub const CONTROLLERS: &[(&str, Start)] = &[
    ("root-ca-configmap", |c, s| Box::pin(root_ca::run(c, s))),
    ("scheduler", |c, s| Box::pin(scheduler::run(c, s))),
    ("replicaset", |c, s| Box::pin(replicaset::run(c, s))),
    ("deployment", |c, s| Box::pin(deployment::run(c, s))),
    ("job", |c, s| Box::pin(job::run(c, s))),
    ("statefulset", |c, s| Box::pin(statefulset::run(c, s))),
    ("daemonset", |c, s| Box::pin(daemonset::run(c, s))),
    ("cronjob", |c, s| Box::pin(cronjob::run(c, s))),
    ("node-lifecycle", |c, s| Box::pin(node_lifecycle::run(c, s))),
    ("endpoints", |c, s| Box::pin(endpoints::run(c, s))),
    ("endpointslice", |c, s| Box::pin(endpointslice::run(c, s))),
    ("disruption", |c, s| Box::pin(disruption::run(c, s))),
    ("resourcequota", |c, s| Box::pin(resourcequota::run(c, s))),
];

/// Runs every controller until `shutdown` (no leader election: the caller holds the Lease).
pub async fn run_all(
    client: kube::Client,
    clock: Arc<dyn Clock>,
    config: Config,
    shutdown: watch::Receiver<bool>,
) {
    let ctx = Arc::new(Context {
        informers: Informers::new(client.clone(), shutdown.clone()),
        client,
        clock,
        config,
    });
    let handles: Vec<_> = CONTROLLERS
        .iter()
        .map(|(name, start)| {
            tracing::debug!(controller = name, "starting");
            tokio::spawn(start(Arc::clone(&ctx), shutdown.clone()))
        })
        .collect();
    for h in handles {
        let _ = h.await;
    }
}

/// Campaigns for the Lease and runs every controller while holding it, until `shutdown`.
pub async fn run(
    client: kube::Client,
    clock: Arc<dyn Clock>,
    config: Config,
    shutdown: watch::Receiver<bool>,
) {
    let elector = Elector::new(client.clone(), config.leader.clone(), Arc::clone(&clock));
    elector
        .run(shutdown, move |term| {
            run_all(client.clone(), Arc::clone(&clock), config.clone(), term)
        })
        .await;
}
