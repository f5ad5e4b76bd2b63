//! `berth server`: the control plane on the embedded store.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Flags of `berth server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where state, certificates and the admin kubeconfig live
    /// [default: /var/lib/berth as root, else the user's data directory]
    #[arg(long, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The HTTPS port of the API server (0 picks a free one).
    #[arg(long, default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Extra host names or addresses for the serving certificate (repeatable).
    #[arg(long = "tls-san")]
    pub tls_san: Vec<String>,
    /// Do not run a node agent in the server process.
    #[arg(long)]
    pub disable_agent: bool,
    /// Do not run the scheduler and controllers in the server process (run `berth controllers`
    /// elsewhere instead).
    #[arg(long)]
    pub disable_controllers: bool,
    /// The CIDR Service ClusterIPs are allocated from.
    #[arg(long, default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// The CIDR pod addresses come from; each node gets a /24 of it.
    #[arg(long, default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// How often the store's history is compacted, e.g. 5m, 30s.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub compaction_interval: Duration,
    /// The `tolerationSeconds` of the `node.kubernetes.io/not-ready:NoExecute` toleration
    /// added to every pod that has none (Kubernetes' default is 300).
    #[arg(long, default_value_t = berth_apiserver::objects::DEFAULT_TOLERATION_SECONDS)]
    pub default_not_ready_toleration_seconds: i64,
    /// The `tolerationSeconds` of the `node.kubernetes.io/unreachable:NoExecute` toleration
    /// added to every pod that has none (Kubernetes' default is 300).
    #[arg(long, default_value_t = berth_apiserver::objects::DEFAULT_TOLERATION_SECONDS)]
    pub default_unreachable_toleration_seconds: i64,
    /// Timings of the node lifecycle controller (unless --disable-controllers).
    #[command(flatten)]
    pub node_lifecycle: crate::cmd::controllers::NodeLifecycleArgs,
    /// Settings of the node agent the server runs (unless --disable-agent).
    #[command(flatten)]
    pub node: crate::cmd::agent::NodeArgs,
}

/// Parses `300ms`, `30s`, `5m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 5m, 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(format!(
                "invalid duration {s:?}: the unit must be ms, s, m or h"
            ));
        }
    };
    Ok(d)
}

/// The default data directory: `/var/lib/berth` for root, else `$XDG_DATA_HOME/berth` or
/// `~/.local/share/berth`.
pub fn default_data_dir() -> PathBuf {
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if is_root.unwrap_or(false) {
        return PathBuf::from("/var/lib/berth");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/berth"),
        None => PathBuf::from("berth-data"),
    }
}

/// Runs the server until interrupted.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    // Absolute, so that the printed `export KUBECONFIG=` line works from any directory.
    let data_dir = std::fs::canonicalize(&data_dir)
        .with_context(|| format!("resolving the data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("state.redb");
    let store = berth_store::redb::RedbStore::open(&db_path).with_context(|| {
        format!(
            "opening the state store {} (is another berth server using this data directory?)",
            db_path.display()
        )
    })?;
    let store: Arc<dyn berth_store::Store> = Arc::new(store);
    let config = berth_apiserver::Config {
        data_dir: data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        tls_sans: args.tls_san.clone(),
        service_cidr: args.service_cidr.clone(),
        cluster_cidr: args.cluster_cidr.clone(),
        compaction_interval: args.compaction_interval,
        watch_history: berth_apiserver::cache::DEFAULT_HISTORY,
        default_tolerations: berth_apiserver::objects::DefaultTolerations {
            not_ready_seconds: args.default_not_ready_toleration_seconds.max(0),
            unreachable_seconds: args.default_unreachable_toleration_seconds.max(0),
        },
    };
    let mut server = berth_apiserver::start(config, store)
        .await
        .context("starting the API server")?;
    let (agent_stop, agent_rx) = tokio::sync::watch::channel(false);
    let controllers = if args.disable_controllers {
        None
    } else {
        // In process, the controllers skip TLS: they reach the API through the loopback,
        // with the admin kubeconfig's certificate.
        let client =
            crate::cmd::controllers::loopback_client(Arc::clone(&server.api), &server.kubeconfig)
                .context("starting the controllers")?;
        Some(crate::cmd::controllers::start(
            client,
            crate::cmd::controllers::kubeconfig_ca_pem(&server.kubeconfig),
            crate::cmd::controllers::default_identity(),
            &args.node_lifecycle,
            agent_rx.clone(),
        ))
    };
    let agent = if args.disable_agent {
        None
    } else {
        Some(start_local_agent(&args, &data_dir, &server, agent_rx).await?)
    };
    println!("Berth API server listening on {}", server.url);
    println!("export KUBECONFIG={}", server.kubeconfig.display());
    let agent_done = async {
        match agent {
            Some(a) => a.task.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
        }
        r = agent_done => {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "the node agent stopped"),
                Err(e) => tracing::error!(error = %e, "the node agent stopped"),
            }
        }
        _ = server.wait() => {}
    }
    let _ = agent_stop.send(true);
    if let Some(c) = controllers {
        // Give the Lease up while the API still answers, so that another server takes over at
        // once.
        let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
    }
    server.shutdown().await;
    Ok(())
}

/// Issues this machine's node credentials (no token: the server holds the CA) and starts the
/// agent with them.
async fn start_local_agent(
    args: &ServerArgs,
    data_dir: &std::path::Path,
    server: &berth_apiserver::RunningServer,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<crate::cmd::agent::RunningAgent> {
    use crate::cmd::agent;
    let node_name = args
        .node
        .node_name
        .clone()
        .unwrap_or_else(agent::host_node_name);
    let node_ip = args.node.node_ip.unwrap_or_else(agent::default_node_ip);
    let dir = data_dir.join("agent");
    berth_apiserver::join::issue_local_node(
        &server.api.pki,
        &server.url,
        &node_name,
        &[node_ip],
        &dir,
    )
    .context("issuing the local node's credentials")?;
    let creds = berth_agent::join::load_credentials(&dir)?
        .context("the local node's credentials were not written")?;
    // The agent in the server's process reaches the API through the loopback, with its own
    // node credential: the node authorizer limits it as it limits any other node.
    let client =
        crate::cmd::controllers::loopback_client(Arc::clone(&server.api), &creds.kubeconfig)
            .context("the local node's API client")?;
    let running = agent::start(&args.node, &node_name, &dir, creds, client, shutdown).await?;
    tracing::info!(node = %node_name, port = running.port, "node agent started");
    Ok(running)
}

pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
    }
}
