//! `berth controllers`: the scheduler and controllers as their own process, pointed at a
//! kubeconfig, campaigning for the same Lease as the ones inside every `berth server`; only the
//! holder acts. Also how `berth server` starts them in its own process, where they reach the API
//! through the in-process loopback instead of a TLS connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use tokio::sync::watch;

/// Flags of `berth controllers`.
#[derive(Debug, Args)]
pub struct ControllersArgs {
    /// The kubeconfig to reach the API server with.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// This candidate's identity in the leader election [default: host name, process id].
    #[arg(long)]
    pub identity: Option<String>,
    /// Timings of the node lifecycle controller.
    #[command(flatten)]
    pub node_lifecycle: NodeLifecycleArgs,
}

/// Timings of the node lifecycle controller (flags of `berth controllers` and `berth server`).
#[derive(Debug, Clone, Args)]
pub struct NodeLifecycleArgs {
    /// How long a node may go without renewing its Lease before it is NotReady, tainted
    /// unreachable and its pods evicted after their tolerations, e.g. 5s, 40s.
    #[arg(long, default_value = "5s", value_parser = crate::cmd::server::parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// How often the health of every node is checked.
    #[arg(long, default_value = "1s", value_parser = crate::cmd::server::parse_duration)]
    pub node_monitor_period: std::time::Duration,
}

impl NodeLifecycleArgs {
    /// Puts the timings into the controllers' settings.
    pub fn apply(&self, config: &mut berth_controllers::Config) {
        config.node_monitor_grace_period = self.node_monitor_grace_period;
        config.node_monitor_period = self.node_monitor_period;
    }
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("loading {}", path.display()))?;
    kube::Client::try_from(config).context("building the API client")
}

/// The CA a kubeconfig trusts, in PEM (published in each namespace as `kube-root-ca.crt`).
pub fn kubeconfig_ca_pem(path: &Path) -> Option<String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).ok()?;
    let cluster = kubeconfig.clusters.first()?.cluster.as_ref()?;
    inline_or_file(
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
    )
}

/// A kubeconfig's PEM: the base64 `*-data` field, else the file it names.
fn inline_or_file(data: Option<&str>, file: Option<&str>) -> Option<String> {
    if let Some(data) = data {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        return String::from_utf8(pem).ok();
    }
    std::fs::read_to_string(file?).ok()
}

/// A client of the API server running in this process, authenticated as the client
/// certificate of `kubeconfig` (which that server wrote), with no TLS connection.
pub fn loopback_client(
    api: Arc<berth_apiserver::Api>,
    kubeconfig: &Path,
) -> anyhow::Result<kube::Client> {
    let read = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let user = read
        .auth_infos
        .first()
        .and_then(|a| a.auth_info.as_ref())
        .with_context(|| format!("{} names no user", kubeconfig.display()))?;
    let cert = inline_or_file(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
    )
    .with_context(|| format!("{} has no client certificate", kubeconfig.display()))?;
    let service = berth_apiserver::loopback::Loopback::new(api, cert.as_bytes())?;
    Ok(kube::Client::new(service, "default"))
}

/// A leader-election identity unique to this process.
pub fn default_identity() -> String {
    format!(
        "{}_{}",
        crate::cmd::agent::host_node_name(),
        std::process::id()
    )
}

/// Starts the elected controllers with `client`; `root_ca_pem` is the cluster CA they
/// publish. They stop with `shutdown`.
pub fn start(
    client: kube::Client,
    root_ca_pem: Option<String>,
    identity: String,
    node_lifecycle: &NodeLifecycleArgs,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let mut config = berth_controllers::Config::new(identity);
    config.root_ca_pem = root_ca_pem;
    node_lifecycle.apply(&mut config);
    let clock: Arc<dyn berth_api::clock::Clock> = Arc::new(berth_api::clock::SystemClock);
    tokio::spawn(berth_controllers::run(client, clock, config, shutdown))
}

/// Runs until interrupted.
pub async fn run(args: ControllersArgs) -> anyhow::Result<()> {
    let identity = args.identity.unwrap_or_else(default_identity);
    let (stop, stopped) = watch::channel(false);
    let client = client_from_kubeconfig(&args.kubeconfig).await?;
    let task = start(
        client,
        kubeconfig_ca_pem(&args.kubeconfig),
        identity.clone(),
        &args.node_lifecycle,
        stopped,
    );
    tracing::info!(%identity, "controllers campaigning for the lease");
    crate::cmd::server::shutdown_signal().await;
    let _ = stop.send(true);
    let _ = task.await;
    Ok(())
}
