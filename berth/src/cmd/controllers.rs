//! `berth controllers`: the scheduler and controllers as their own process, pointed at a
//! kubeconfig, campaigning for the same Lease as the ones inside every `berth server`; only the
//! holder acts. Also how `berth server` starts them in its own process, where they reach the API
//! through the in-process loopback instead of a TLS connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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

/// A kube client from a kubeconfig file (see [`http2_client`]).
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("loading {}", path.display()))?;
    http2_client(config).context("building the API client")
}

/// How often an idle HTTP/2 connection to the API server is pinged, and how long a ping may go
/// unanswered before the connection counts as dead (client-go's 30 s and 15 s): its watches
/// then fail and are resumed on a new connection.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A kube client that speaks HTTP/2 to the API server, as client-go does: one TLS connection
/// carries every request and watch of the client. kube's own client speaks HTTP/1.1 only,
/// which takes a connection (and a TLS handshake on both ends) for each request in flight: a
/// node starting its pods opened several at once. Otherwise the same layers as kube's: the
/// kubeconfig's server, TLS identity and trust, credentials and headers; no read timeout, as
/// the pings find a dead connection.
fn http2_client(config: kube::Config) -> anyhow::Result<kube::Client> {
    use kube::client::ConfigExt;
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Only fails if another thread installed one meanwhile.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
    // The connector offers h2 by ALPN (`enable_http2`). Only h2, which Berth's API server always
    // accepts: a client that may fall back to HTTP/1.1 learns which it got only once a
    // connection is up, so a burst of first requests would each open a connection of its own.
    let tls = config.rustls_client_config()?;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http2()
        .wrap_connector(http);
    let transport =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .http2_only(true)
            .http2_keep_alive_interval(HTTP2_PING_INTERVAL)
            .http2_keep_alive_timeout(HTTP2_PING_TIMEOUT)
            .build(https);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(transport);
    Ok(kube::Client::new(service, config.default_namespace))
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    use super::*;

    /// kube's own client opens a TLS connection for each request in flight; this one carries
    /// them all as HTTP/2 streams of one connection, against the API server's TLS settings.
    #[tokio::test]
    async fn requests_in_flight_share_one_http2_connection() {
        let dir = tempfile::tempdir().unwrap();
        let pki = berth_apiserver::pki::ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let kubeconfig = dir.path().join("admin.kubeconfig");
        pki.write_admin_kubeconfig(&kubeconfig, &url).unwrap();

        let connections = Arc::new(AtomicUsize::new(0));
        let http2_requests = Arc::new(AtomicUsize::new(0));
        let server = tokio::spawn({
            let connections = Arc::clone(&connections);
            let http2_requests = Arc::clone(&http2_requests);
            async move {
                loop {
                    let (tcp, _) = listener.accept().await.unwrap();
                    connections.fetch_add(1, Ordering::SeqCst);
                    let tls = acceptor.accept(tcp).await.unwrap();
                    let http2_requests = Arc::clone(&http2_requests);
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        if req.version() == http::Version::HTTP_2 {
                            http2_requests.fetch_add(1, Ordering::SeqCst);
                        }
                        async {
                            // Long enough for every request to be in flight at once.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0"}"#;
                            Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    tokio::spawn(async move {
                        let builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                    });
                }
            }
        });

        let client = client_from_kubeconfig(&kubeconfig).await.unwrap();
        let versions = (0..20).map(|_| client.apiserver_version());
        let versions = futures::future::try_join_all(versions).await.unwrap();
        assert!(versions.iter().all(|v| v.minor == "33"));
        assert_eq!(http2_requests.load(Ordering::SeqCst), 20);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        server.abort();
    }
}
