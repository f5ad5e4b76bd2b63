//! `berth agent`: joins a machine to a cluster and runs the pods bound to it. Also the node agent
//! that `berth server` runs in its own process.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_agent::config::AgentConfig;
use berth_agent::join::NodeCredentials;
use clap::Args;
use tokio::sync::watch;

use crate::cmd::server::parse_duration;

/// Flags of `berth agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The API server, e.g. https://10.0.0.1:6443 (needed for the first start only).
    #[arg(long, env = "BERTH_SERVER")]
    pub server: Option<String>,
    /// A join token from `berth token create` (needed for the first start only).
    #[arg(long, env = "BERTH_TOKEN")]
    pub token: Option<String>,
    /// Where the agent keeps its credentials and pod files
    /// [default: /var/lib/berth-agent as root, else the user's data directory].
    #[arg(long, env = "BERTH_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Instead of one real node, run this many simulated nodes (`<node-name>-sim-<i>`) in this
    /// process: real API traffic (join, Node, Lease, pod status) over an in-memory container
    /// runtime, for load tests of the control plane.
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Flags the agent shares with `berth server`.
#[derive(Debug, Args, Clone)]
pub struct NodeArgs {
    /// The node's name [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// A label for the node, `key=value` (repeatable).
    #[arg(long = "node-label", value_parser = parse_label)]
    pub node_labels: Vec<(String, String)>,
    /// The node's address that other machines reach it on [default: the source address of
    /// the default route].
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// The port of the agent's TLS endpoint (logs, exec, port-forward); 0 picks a free one.
    #[arg(long, default_value_t = 10250)]
    pub listen_port: u16,
    /// How often the node's Lease is renewed.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_renew_interval: Duration,
    /// The static busybox binary the pod sandbox image is built from.
    #[arg(long, default_value = berth_agent::config::DEFAULT_BUSYBOX)]
    pub busybox: PathBuf,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid node label {s:?}: expected key=value"))?;
    if k.is_empty() {
        return Err(format!("invalid node label {s:?}: the key is empty"));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The host name, lower-cased, as a node name.
pub fn host_node_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The source address of the default route (no packet is sent), else 127.0.0.1.
pub fn default_node_ip() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
        s.connect("10.255.255.255:9")?;
        Ok(s.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The default data directory of `berth agent`.
fn default_agent_dir() -> PathBuf {
    let server_default = crate::cmd::server::default_data_dir();
    match server_default.file_name() {
        Some(_) => server_default.with_file_name("berth-agent"),
        None => PathBuf::from("berth-agent-data"),
    }
}

/// The address pods use for the API server: the server's host, unless it is a loopback address
/// (unreachable from a container), then the node's address.
fn api_endpoint(server_url: &str, node_ip: IpAddr) -> (Option<String>, u16) {
    let Ok(url) = server_url.parse::<http::Uri>() else {
        return (None, 6443);
    };
    let port = url.port_u16().unwrap_or(443);
    let host = url
        .host()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_string();
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || host.is_empty() {
        (Some(node_ip.to_string()), port)
    } else {
        (Some(host), port)
    }
}

/// A running node agent.
pub struct RunningAgent {
    /// The agent and its streaming endpoint; both end when the shutdown signal is sent.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The port of the streaming endpoint.
    pub port: u16,
}

/// Starts the agent with the credentials in `dir` (written by a join or by the server),
/// reaching the API with `client` (made from those credentials).
pub async fn start(
    node: &NodeArgs,
    node_name: &str,
    dir: &Path,
    creds: NodeCredentials,
    client: kube::Client,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<RunningAgent> {
    let node_ip = node.node_ip.unwrap_or_else(default_node_ip);
    let kubeconfig = kube::config::Kubeconfig::read_from(&creds.kubeconfig)
        .with_context(|| format!("reading {}", creds.kubeconfig.display()))?;
    let server_url = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        node.listen_port,
    ))
    .await
    .with_context(|| format!("listening on port {} (--listen-port)", node.listen_port))?;
    let port = listener.local_addr()?.port();
    let tls = berth_agent::stream::server_tls_config(
        creds.serving_cert_pem.as_bytes(),
        creds.serving_key_pem.as_bytes(),
        creds.ca_pem.as_bytes(),
    )
    .context("the agent's serving certificate")?;

    let mut config = AgentConfig::new(node_name, dir, node_ip);
    config.node_labels = node.node_labels.iter().cloned().collect::<BTreeMap<_, _>>();
    config.listen_port = port;
    config.lease_renew_interval = node.lease_renew_interval;
    config.busybox_path = node.busybox.clone();
    config.ca_pem = creds.ca_pem.clone();
    (config.api_host, config.api_port) = api_endpoint(&server_url, node_ip);

    let stream = berth_agent::agent::StreamEndpoint { listener, tls };
    let task = tokio::spawn(async move {
        berth_agent::agent::run(config, client, Some(stream), shutdown)
            .await
            .context("node agent")
    });
    Ok(RunningAgent { task, port })
}

/// The credentials stored in `dir`, or new ones from joining with `--server` and `--token`.
async fn join_or_load(
    args: &AgentArgs,
    node_name: &str,
    node_ip: IpAddr,
    dir: &Path,
) -> anyhow::Result<NodeCredentials> {
    if let Some(c) = berth_agent::join::load_credentials(dir)? {
        return Ok(c);
    }
    let (Some(server), Some(token)) = (&args.server, &args.token) else {
        anyhow::bail!(
            "{} holds no node credentials: give --server and --token (from `berth token create` on the server) to join",
            dir.display()
        );
    };
    let c = berth_agent::join::join(server, token, node_name, &[node_ip], dir)
        .await
        .context("joining the cluster")?;
    println!("Joined {server} as node {node_name}");
    Ok(c)
}

/// `--simulate N`: N nodes on in-memory runtimes and hosts, each joined with its own
/// credentials (under `<data-dir>/sim-<i>`), until interrupted.
async fn simulate(
    args: &AgentArgs,
    n: usize,
    base: &str,
    node_ip: IpAddr,
    dir: &Path,
) -> anyhow::Result<()> {
    use berth_agent::api::{ClusterApi, KubeApi};
    use berth_agent::host::{FakeHost, Host};
    use berth_agent::runtime::{ContainerRuntime, FakeRuntime};
    let (tx, rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let name = format!("{base}-sim-{i}");
        let node_dir = dir.join(format!("sim-{i}"));
        std::fs::create_dir_all(&node_dir)
            .with_context(|| format!("creating {}", node_dir.display()))?;
        let creds = join_or_load(args, &name, node_ip, &node_dir).await?;
        let client = crate::cmd::controllers::client_from_kubeconfig(&creds.kubeconfig).await?;
        let mut config = AgentConfig::new(name, node_dir, node_ip);
        config.node_labels = args.node.node_labels.iter().cloned().collect();
        config.lease_renew_interval = args.node.lease_renew_interval;
        config.ca_pem = creds.ca_pem.clone();
        let api: Arc<dyn ClusterApi> = Arc::new(KubeApi::new(client));
        let host: Arc<dyn Host> = Arc::new(FakeHost::new());
        let rt: Arc<dyn ContainerRuntime> = Arc::new(FakeRuntime::simulated());
        tasks.spawn(berth_agent::agent::run_on_runtime(
            config,
            api,
            host,
            rt,
            rx.clone(),
        ));
    }
    println!("Berth agent running {n} simulated nodes ({base}-sim-0 ...)");
    tokio::select! {
        _ = crate::cmd::server::shutdown_signal() => {}
        Some(r) = tasks.join_next() => {
            r.context("a simulated node")?.context("a simulated node")?;
        }
    }
    let _ = tx.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Runs `berth agent` until interrupted.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.clone().unwrap_or_else(default_agent_dir);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    let node_name = args.node.node_name.clone().unwrap_or_else(host_node_name);
    let node_ip = args.node.node_ip.unwrap_or_else(default_node_ip);
    if let Some(n) = args.simulate {
        return simulate(&args, n, &node_name, node_ip, &dir).await;
    }
    let creds = join_or_load(&args, &node_name, node_ip, &dir).await?;
    let (tx, rx) = watch::channel(false);
    let client = crate::cmd::controllers::client_from_kubeconfig(&creds.kubeconfig).await?;
    let agent = start(&args.node, &node_name, &dir, creds, client, rx).await?;
    println!(
        "Berth agent {node_name} running (streaming endpoint on port {})",
        agent.port
    );
    let mut task = agent.task;
    tokio::select! {
        _ = crate::cmd::server::shutdown_signal() => {
            tracing::info!("shutting down");
            let _ = tx.send(true);
            let _ = task.await;
            Ok(())
        }
        r = &mut task => r.context("the agent task")?,
    }
}
