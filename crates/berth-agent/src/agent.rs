//! The node agent's life: connect to the engine and the API server, register the node, keep
//! its Lease and status fresh, and run the pods bound to it until told to stop.
//!
//! Owns [`run`] and the heartbeat loop; once the engine is connected it starts the streaming
//! endpoint (`stream`) on the listener the caller bound (whose port is in
//! [`AgentConfig::listen_port`]). Must not obtain credentials (see `join`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::api::{ClusterApi, KubeApi};
use crate::config::AgentConfig;
use crate::events::Recorder;
use crate::host::{Host, LinuxHost};
use crate::node::{NodeError, NodeStatus, RuntimeHealth};
use crate::pod::manager::PodManager;
use crate::pod::worker::Shared;
use crate::runtime::{ContainerRuntime, DockerRuntime, Ipv4Cidr, NetworkSpec, RuntimeError, image};

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Registering the node failed.
    #[error("registering node: {0}")]
    Node(#[from] NodeError),
    /// The engine refused to set up the node's network or sandbox image.
    #[error("setting up the container engine: {0}")]
    Runtime(#[from] RuntimeError),
    /// The node's pod CIDR cannot be used.
    #[error("the node's pod CIDR {0:?} is not an IPv4 CIDR")]
    BadPodCidr(String),
    /// The agent was told to stop before it was set up.
    #[error("stopped before the node was registered")]
    Stopped,
}

/// How long to wait between attempts while the engine or the API server is unreachable.
const RETRY: Duration = Duration::from_secs(2);

async fn wait_or_stop(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

/// Connects to Docker, retrying (and reporting the node NotReady) while it does not answer.
async fn connect_runtime(
    cluster_uid: &str,
    node: &mut NodeStatus,
    config: &AgentConfig,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Arc<DockerRuntime>, AgentError> {
    let mut registered = false;
    loop {
        match DockerRuntime::connect(cluster_uid, &config.node_name).await {
            Ok(rt) => match rt.ping().await {
                Ok(()) => return Ok(Arc::new(rt)),
                Err(e) => tracing::warn!(error = %e, "the container engine does not answer"),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect to the container engine");
                let health = RuntimeHealth::Down(e.to_string());
                let r = if registered {
                    node.update_status(&health).await.map(|_| ())
                } else {
                    node.register(&health).await.map(|_| ())
                };
                match r {
                    Ok(()) => registered = true,
                    Err(e) => tracing::warn!(error = %e, "cannot report the node"),
                }
            }
        }
        if wait_or_stop(shutdown, RETRY).await {
            return Err(AgentError::Stopped);
        }
    }
}

async fn runtime_health(rt: &dyn ContainerRuntime) -> RuntimeHealth {
    match rt.version().await {
        Ok(v) => RuntimeHealth::Up(v.node_info_string()),
        Err(e) => RuntimeHealth::Down(e.to_string()),
    }
}

/// The agent's TLS endpoint for logs, exec and port-forward: a bound listener and its TLS
/// configuration (see [`crate::stream::server_tls_config`]).
pub struct StreamEndpoint {
    /// The bound listener.
    pub listener: tokio::net::TcpListener,
    /// Serving certificate and client verification.
    pub tls: Arc<rustls::ServerConfig>,
}

/// Runs the agent with an API client until `shutdown` turns true.
pub async fn run(
    config: AgentConfig,
    client: kube::Client,
    stream: Option<StreamEndpoint>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let api: Arc<dyn ClusterApi> = Arc::new(KubeApi::new(client));
    let host: Arc<dyn Host> = Arc::new(LinuxHost::new(&config.data_dir));
    run_with(config, api, host, stream, shutdown).await
}

/// [`run`] with the API and the host given.
pub async fn run_with(
    config: AgentConfig,
    api: Arc<dyn ClusterApi>,
    host: Arc<dyn Host>,
    stream: Option<StreamEndpoint>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let cluster_uid = loop {
        match api.cluster_uid().await {
            Ok(u) => break u,
            Err(e) => tracing::warn!(error = %e, "cannot reach the API server"),
        }
        if wait_or_stop(&mut shutdown, RETRY).await {
            return Err(AgentError::Stopped);
        }
    };
    let mut node = NodeStatus::new(Arc::clone(&api), host, config.clone())?;
    let runtime = connect_runtime(&cluster_uid, &mut node, &config, &mut shutdown).await?;
    run_node(config, api, node, runtime, &cluster_uid, stream, shutdown).await
}

/// Runs a node on the container runtime given (e.g. a [`crate::runtime::FakeRuntime`] for a
/// simulated node), with the API and host given, until `shutdown` turns true.
pub async fn run_on_runtime(
    config: AgentConfig,
    api: Arc<dyn ClusterApi>,
    host: Arc<dyn Host>,
    rt: Arc<dyn ContainerRuntime>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let cluster_uid = loop {
        match api.cluster_uid().await {
            Ok(u) => break u,
            Err(e) => tracing::warn!(error = %e, "cannot reach the API server"),
        }
        if wait_or_stop(&mut shutdown, RETRY).await {
            return Err(AgentError::Stopped);
        }
    };
    let node = NodeStatus::new(Arc::clone(&api), host, config.clone())?;
    run_node(config, api, node, rt, &cluster_uid, None, shutdown).await
}

/// Registers the node on a connected runtime and runs it.
async fn run_node(
    config: AgentConfig,
    api: Arc<dyn ClusterApi>,
    mut node: NodeStatus,
    rt: Arc<dyn ContainerRuntime>,
    cluster_uid: &str,
    stream: Option<StreamEndpoint>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), AgentError> {
    let stream_task = stream.map(|ep| {
        let mut stop = shutdown.clone();
        tokio::spawn(crate::stream::serve(
            ep.listener,
            ep.tls,
            Arc::clone(&rt),
            async move { while stop.changed().await.is_ok() && !*stop.borrow() {} },
        ))
    });
    let health = runtime_health(rt.as_ref()).await;
    let registered = loop {
        match node.register(&health).await {
            Ok(n) => break n,
            Err(e) => tracing::warn!(error = %e, "registering the node"),
        }
        if wait_or_stop(&mut shutdown, RETRY).await {
            return Err(AgentError::Stopped);
        }
    };
    let cidr_text = registered
        .spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .unwrap_or_default();
    let cidr: Ipv4Cidr = cidr_text
        .parse()
        .map_err(|_| AgentError::BadPodCidr(cidr_text.clone()))?;
    let gateway = Ipv4Addr::from(u32::from(cidr.addr) + 1);
    let network = config.network_name(cluster_uid);
    // The engine may fail here as anywhere else: report the node NotReady and try again
    // rather than give up.
    loop {
        let ready = async {
            rt.ensure_network(&NetworkSpec {
                name: network.clone(),
                subnet: cidr,
                gateway,
                labels: BTreeMap::new(),
            })
            .await?;
            image::ensure_busybox_image(rt.as_ref(), &config.sandbox_image, &config.busybox_path)
                .await
        };
        match ready.await {
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, "setting up the node's network and sandbox image");
                if let Err(e) = node
                    .update_status(&RuntimeHealth::Down(e.to_string()))
                    .await
                {
                    tracing::warn!(error = %e, "cannot report the node");
                }
            }
        }
        if wait_or_stop(&mut shutdown, RETRY).await {
            return Err(AgentError::Stopped);
        }
    }
    tracing::info!(node = %config.node_name, pod_cidr = %cidr, network = %network, "node registered");

    let allocatable = registered
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    let shared = Arc::new(Shared {
        runtime: Arc::clone(&rt),
        api: Arc::clone(&api),
        recorder: Recorder::new(Arc::clone(&api), config.node_name.clone()),
        sources: crate::pod::sources::Sources::new(Arc::clone(&api)),
        config: config.clone(),
        network,
        node_allocatable: allocatable,
        engine: crate::pod::engine::EngineView::new(),
    });
    let heartbeat = tokio::spawn(heartbeat(
        node,
        Arc::clone(&rt),
        config.clone(),
        shutdown.clone(),
    ));
    let events = api.watch_pods(&config.node_name);
    PodManager::new(shared).run(events, shutdown).await;
    heartbeat.abort();
    if let Some(t) = stream_task {
        t.abort();
    }
    Ok(())
}

/// Renews the Lease every `lease_renew_interval` and writes the status every
/// `status_interval`, or at once when the engine's health changes.
async fn heartbeat(
    mut node: NodeStatus,
    rt: Arc<dyn ContainerRuntime>,
    config: AgentConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut lease_tick = tokio::time::interval(config.lease_renew_interval);
    lease_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_health = None;
    let mut last_status = tokio::time::Instant::now();
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = lease_tick.tick() => {}
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { return },
        }
        // After a gap (the agent was frozen, or the API unreachable) the control plane may have
        // marked the node unknown: post the status at once rather than at the next interval.
        let mut gap = false;
        match node.renew_lease().await {
            Ok(()) => {
                gap = last_renewed.elapsed() > config.lease_renew_interval * 2;
                last_renewed = tokio::time::Instant::now();
            }
            Err(e) => tracing::warn!(error = %e, "renewing the node lease"),
        }
        let health = runtime_health(rt.as_ref()).await;
        let due = gap || last_status.elapsed() >= config.status_interval;
        if due || last_health.as_ref() != Some(&health) {
            match node.update_status(&health).await {
                Ok(()) => {
                    last_status = tokio::time::Instant::now();
                    last_health = Some(health);
                }
                Err(e) => tracing::warn!(error = %e, "updating the node status"),
            }
        }
    }
}
