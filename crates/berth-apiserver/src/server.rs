//! The HTTPS server: accepting TLS connections, authenticating and authorizing every request,
//! serving the non-resource paths (health, version, discovery, OpenAPI) and handing resource
//! requests to [`crate::rest`].
//!
//! This module owns the process-level wiring of the API server: certificates, store, cache,
//! allocators, bootstrap objects and background loops are started here, in that order, and
//! nothing is served before the cache is synced.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use berth_api::ApiError;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::alloc::{Allocators, Cidr};
use crate::authn::{Authenticator, Credentials, UserInfo};
use crate::authz::{Authorizer, Decision, RequestAttributes};
use crate::body::MAX_BODY_BYTES;
use crate::cache::WatchCache;
use crate::clock::{Clock, SystemClock};
use crate::objects::Objects;
use crate::query::Query;
use crate::rest::ResourceRequest;
use crate::{Api, Reply};

/// Streams one HTTP/2 connection may have open at once (kube-apiserver's
/// `--http2-max-streams-per-connection` default): a node's client carries every watch of its
/// pods' Secrets and ConfigMaps on one connection, and hyper's default of 200 could leave its
/// other requests waiting for a watch to end.
const HTTP2_MAX_STREAMS_PER_CONNECTION: u32 = 1000;

/// A request body as the handlers read it: a connection's body, or an in-process client's
/// ([`crate::loopback`]).
pub type RequestBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A request with its body boxed as the handlers read it.
pub(crate) fn boxed_request<B>(req: Request<B>) -> Request<RequestBody>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    req.map(|b| b.map_err(Into::into).boxed_unsync())
}

/// The Kubernetes version Berth's API corresponds to.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "33");

/// What the API server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where certificates and the kubeconfig live.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub bind_address: IpAddr,
    /// The HTTPS port (0 picks a free one).
    pub port: u16,
    /// Extra subject alternative names of the serving certificate.
    pub tls_sans: Vec<String>,
    /// The Service CIDR.
    pub service_cidr: String,
    /// The cluster CIDR each Node's pod CIDR (a /24) is cut from.
    pub cluster_cidr: String,
    /// How often the store's history is compacted (each compaction keeps one interval).
    pub compaction_interval: Duration,
    /// How many changes the watch cache keeps for resuming watches.
    pub watch_history: usize,
    /// The `tolerationSeconds` new pods get for the not-ready and unreachable taints.
    pub default_tolerations: crate::objects::DefaultTolerations,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Certificates could not be loaded or created.
    #[error("certificates: {0}")]
    Pki(#[from] crate::pki::PkiError),
    /// The bearer token file could not be read.
    #[error("authentication: {0}")]
    Authn(#[from] crate::authn::AuthnError),
    /// The store failed.
    #[error("state store: {0}")]
    Store(#[from] berth_store::StoreError),
    /// Allocation ranges could not be set up.
    #[error(transparent)]
    Alloc(#[from] crate::alloc::AllocError),
    /// The service-account signing key could not be loaded or created.
    #[error(transparent)]
    ServiceAccount(#[from] crate::serviceaccount::ServiceAccountError),
    /// Bootstrap objects could not be created.
    #[error("creating the cluster's initial objects: {0}")]
    Bootstrap(#[from] ApiError),
    /// The listener could not bind.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A started server.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin kubeconfig written for it.
    pub kubeconfig: PathBuf,
    /// The URL clients on this machine use.
    pub url: String,
    /// The shared state, for in-process clients and tests.
    pub api: Arc<Api>,
    shutdown: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting connections and ends background loops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.accept.await;
    }

    /// Waits until the accept loop ends (it ends only on shutdown).
    pub async fn wait(&mut self) {
        let _ = (&mut self.accept).await;
    }
}

/// Starts the API server over `store`.
pub async fn start(
    config: Config,
    store: Arc<dyn berth_store::Store>,
) -> Result<RunningServer, ServerError> {
    let cidr = Cidr::parse(&config.service_cidr)?;
    let pki = Arc::new(crate::pki::ClusterPki::load_or_create(
        &config.data_dir,
        &config.tls_sans,
        Some(IpAddr::V4(cidr.first())),
    )?);
    let tokens = Arc::new(crate::serviceaccount::TokenSigner::load_or_create(
        pki.dir(),
    )?);
    let tls = pki.server_config()?;
    let cache = WatchCache::start(Arc::clone(&store), config.watch_history).await?;
    let cluster_cidr = Cidr::parse(&config.cluster_cidr)
        .map_err(|_| crate::alloc::AllocError::InvalidClusterCidr(config.cluster_cidr.clone()))?;
    let alloc = Allocators::start(Arc::clone(&store), cidr, cluster_cidr).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let authn: Box<dyn Authenticator> = Box::new(crate::authn::UnionAuthenticator(vec![
        Box::new(crate::authn::ClientCertAuthenticator),
        Box::new(crate::authn::TokenAuthenticator::load(&config.data_dir)?),
        Box::new(crate::serviceaccount::ServiceAccountAuthenticator::new(
            Arc::clone(&tokens),
            cache.clone(),
            Arc::clone(&clock),
        )),
    ]));
    let authz: Box<dyn Authorizer> = Box::new(crate::authz::UnionAuthorizer(vec![
        Box::new(crate::authz::SystemMastersAuthorizer),
        Box::new(crate::authz::node::NodeAuthorizer::new(cache.clone())),
    ]));
    let api = Arc::new(Api {
        store: Arc::clone(&store),
        cache,
        objects: Objects {
            store: Arc::clone(&store),
            alloc,
            clock,
            default_tolerations: config.default_tolerations,
        },
        authn,
        authz,
        pki: Arc::clone(&pki),
        tokens,
    });

    let addr = SocketAddr::new(config.bind_address, config.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let host = if addr.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        addr.ip()
    };
    let url = match host {
        IpAddr::V4(ip) => format!("https://{ip}:{}", addr.port()),
        IpAddr::V6(ip) => format!("https://[{ip}]:{}", addr.port()),
    };
    crate::bootstrap::ensure(&api, addr.port()).await?;
    let kubeconfig = config.data_dir.join("admin.kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, &url)?;

    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(crate::bootstrap::compaction_loop(
        Arc::clone(&api),
        config.compaction_interval,
        shutdown_rx.clone(),
    ));
    crate::controllers::start(&api, shutdown_rx.clone());
    crate::serviceaccount::start_controller(&api, shutdown_rx.clone());
    let accept = tokio::spawn(accept_loop(listener, tls, Arc::clone(&api), shutdown_rx));
    tracing::info!(%addr, "API server listening");
    Ok(RunningServer {
        addr,
        kubeconfig,
        url,
        api,
        shutdown,
        accept,
    })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: Arc<Api>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = Arc::clone(&api);
        let mut conn_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let certs: Arc<Vec<rustls::pki_types::CertificateDer<'static>>> = Arc::new(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.to_vec())
                    .unwrap_or_default(),
            );
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let api = Arc::clone(&api);
                let certs = Arc::clone(&certs);
                let req = boxed_request(req);
                async move { Ok::<_, std::convert::Infallible>(handle(api, &certs, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http2()
                .max_concurrent_streams(HTTP2_MAX_STREAMS_PER_CONNECTION);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = conn_shutdown.changed() => {}
            }
        });
    }
}

/// The `/version` document.
pub fn version_info() -> serde_json::Value {
    json!({
        "major": KUBERNETES_VERSION.0,
        "minor": KUBERNETES_VERSION.1,
        "gitVersion": format!("v{}.{}.0+berth-{}", KUBERNETES_VERSION.0, KUBERNETES_VERSION.1, env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// The architecture as Kubernetes names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        other => other,
    }
}

/// Serves one request of a client that presented `certs` (none for bearer tokens).
pub(crate) async fn handle(
    api: Arc<Api>,
    certs: &[rustls::pki_types::CertificateDer<'static>],
    req: Request<RequestBody>,
) -> Response<Body> {
    // One line per request at debug level (target `berth::http`), as kube-apiserver logs them.
    let logged = tracing::enabled!(target: "berth::http", tracing::Level::DEBUG)
        .then(|| (Instant::now(), req.method().clone(), req.uri().clone()));
    // Proxied streams (pods/log, exec, portforward) answer with the agent's own response.
    let mut raw = None;
    let routed = route(api, certs, req, &mut raw).await;
    let response = match (routed, raw) {
        (Ok(_), Some(raw)) => raw,
        (Ok(r), None) => r.into_response(),
        (Err(e), _) => Reply::error(&e).into_response(),
    };
    if let Some((started, method, uri)) = logged {
        tracing::debug!(
            target: "berth::http",
            %method,
            %uri,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
    }
    response
}

fn header<'a>(req: &'a http::request::Parts, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

async fn route(
    api: Arc<Api>,
    certs: &[rustls::pki_types::CertificateDer<'static>],
    req: Request<RequestBody>,
    raw: &mut Option<Response<Body>>,
) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return Ok(Reply::text(StatusCode::OK, "ok")),
        "/version" | "/version/" => return Ok(Reply::json_value(StatusCode::OK, &version_info())),
        // Before authentication: the CA is public, and joining proves a bootstrap token.
        crate::join::CACERTS_PATH => return Ok(crate::join::cacerts(&api)),
        crate::join::JOIN_PATH => {
            let authorization = header(&parts, "authorization").map(str::to_string);
            let body = read_body(&parts, body).await?;
            return crate::join::join(&api, &parts.method, authorization.as_deref(), body).await;
        }
        _ => {}
    }
    let creds = Credentials {
        client_certs: certs,
        authorization: header(&parts, "authorization"),
    };
    let user = match api.authn.authenticate(&creds) {
        Ok(Some(u)) => u,
        Ok(None) => return Err(ApiError::unauthorized()),
        Err(e) => {
            tracing::debug!(error = %e, "authentication failed");
            return Err(ApiError::unauthorized());
        }
    };
    let query = Query::parse(parts.uri.query());
    let watch = query.flag("watch")?;
    let Some(info) = crate::request::parse(&parts.method, &path, watch) else {
        authorize_fresh(&api, non_resource_attributes(&user, &parts.method, &path)).await?;
        return non_resource(&parts, &path);
    };
    let Some(kind) = berth_api::kinds::by_resource(&info.group, &info.version, &info.resource)
    else {
        return Err(ApiError::no_such_path(&path));
    };
    let verb = crate::proxy::authorization_verb(&info);
    let name = match (&info.name, verb.as_str()) {
        (Some(name), _) => name.clone(),
        (None, "list" | "watch") => exact_name(&query).unwrap_or_default(),
        (None, _) => String::new(),
    };
    let attrs = RequestAttributes {
        user: user.clone(),
        verb,
        api_group: info.group.clone(),
        api_version: info.version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone().unwrap_or_default(),
        namespace: info.namespace.clone().unwrap_or_default(),
        name,
        path: path.clone(),
        resource_request: true,
    };
    authorize_fresh(&api, attrs.clone()).await?;
    if crate::proxy::handles(&info) {
        *raw = Some(crate::proxy::handle(&api, &info, &query, parts, body).await?);
        return Ok(Reply::text(StatusCode::OK, ""));
    }
    let body = read_body(&parts, body).await?;
    admit_node(&api, &attrs, header(&parts, "content-type"), &body)?;
    let req = ResourceRequest {
        info: &info,
        kind,
        query: &query,
        content_type: header(&parts, "content-type"),
        accept: header(&parts, "accept"),
        user_agent: header(&parts, "user-agent"),
        body,
    };
    crate::rest::handle(&api, req).await
}

/// The name a list or watch is restricted to by a `metadata.name=X` field selector: Kubernetes
/// authorizes such a request as one on the named object (so that a node may watch a Secret its
/// pods use).
fn exact_name(query: &Query) -> Option<String> {
    let selector = berth_api::fields::FieldSelector::parse(query.get("fieldSelector")?).ok()?;
    let name = selector.requires_exact_match("metadata.name")?;
    (!name.is_empty() && berth_api::validation::path_segment_name(name).is_empty())
        .then(|| name.to_string())
}

fn non_resource_attributes(
    user: &UserInfo,
    method: &http::Method,
    path: &str,
) -> RequestAttributes {
    let verb = match *method {
        http::Method::GET | http::Method::HEAD => "get",
        http::Method::POST => "post",
        http::Method::PUT => "put",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "unknown",
    };
    RequestAttributes {
        user: user.clone(),
        verb: verb.to_string(),
        api_group: String::new(),
        api_version: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        path: path.to_string(),
        resource_request: false,
    }
}

fn authorize(api: &Api, attrs: RequestAttributes) -> Result<(), ApiError> {
    match api.authz.authorize(&attrs) {
        Decision::Allow => Ok(()),
        Decision::Deny(reason) => {
            let mut msg = crate::authz::forbidden_message(&attrs);
            if !reason.is_empty() {
                msg = format!("{msg}: {reason}");
            }
            Err(ApiError::forbidden(msg))
        }
        Decision::NoOpinion => Err(ApiError::forbidden(crate::authz::forbidden_message(&attrs))),
    }
}

/// [`authorize`], and for nodes, once more after the watch cache has caught up with the store
/// when the first answer is a denial: node decisions rest on cached pods, and a pod bound a
/// moment ago may not be cached yet.
async fn authorize_fresh(api: &Api, attrs: RequestAttributes) -> Result<(), ApiError> {
    match authorize(api, attrs.clone()) {
        Err(_) if crate::authz::node::node_name(&attrs.user).is_some() => {
            crate::rest::wait_consistent(api, None).await?;
            authorize(api, attrs)
        }
        r => r,
    }
}

/// The body checks of the node authorizer (see [`crate::authz::node::admit`]): 403 when a node
/// names another node's objects in what it sends.
fn admit_node(
    api: &Api,
    attrs: &RequestAttributes,
    content_type: Option<&str>,
    body: &Bytes,
) -> Result<(), ApiError> {
    if crate::authz::node::node_name(&attrs.user).is_none() || body.is_empty() {
        return Ok(());
    }
    let decoded = crate::body::decode_object(content_type, body).ok();
    crate::authz::node::admit(attrs, decoded.as_ref(), api.cache.as_ref()).map_err(|reason| {
        ApiError::forbidden(format!(
            "{}: {reason}",
            crate::authz::forbidden_message(attrs)
        ))
    })
}

/// How much of an oversized body is read and discarded before answering 413, so that
/// HTTP/1.1 clients still writing receive the answer instead of a broken connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a request body of at most [`MAX_BODY_BYTES`]; a larger one is a 413.
async fn read_body(parts: &http::request::Parts, body: RequestBody) -> Result<Bytes, ApiError> {
    let declared = header(parts, "content-length").and_then(|l| l.parse::<usize>().ok());
    let mut body = body;
    if declared.is_none_or(|len| len <= MAX_BODY_BYTES) {
        let mut collected = bytes::BytesMut::new();
        loop {
            match body.frame().await {
                None => return Ok(collected.freeze()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        collected.extend_from_slice(&data);
                        if collected.len() > MAX_BODY_BYTES {
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    return Err(ApiError::bad_request(format!(
                        "reading the request body failed: {e}"
                    )));
                }
            }
        }
    }
    // Too large: discard a bounded amount so the client can read the answer.
    let mut drained = 0usize;
    let drain = async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                drained += data.len();
                if drained > DRAIN_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    Err(ApiError::too_large(MAX_BODY_BYTES))
}

/// Discovery and OpenAPI documents.
fn non_resource(parts: &http::request::Parts, path: &str) -> Result<Reply, ApiError> {
    use berth_api::discovery;
    if parts.method != http::Method::GET && parts.method != http::Method::HEAD {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on {path}",
            parts.method
        )));
    }
    let accept = header(parts, "accept").unwrap_or("");
    let aggregated = discovery::aggregated_version(accept);
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api"] if aggregated.is_some() => {
            Ok(aggregated_reply(discovery::aggregated_core(), aggregated))
        }
        ["apis"] if aggregated.is_some() => {
            Ok(aggregated_reply(discovery::aggregated_groups(), aggregated))
        }
        ["api"] => {
            let host = header(parts, "host").unwrap_or("127.0.0.1:6443");
            Ok(Reply::json_value(
                StatusCode::OK,
                &discovery::api_versions(host),
            ))
        }
        ["apis"] => Ok(Reply::json_value(
            StatusCode::OK,
            &discovery::api_group_list(),
        )),
        ["api", version] => discovery::api_resource_list("", version)
            .map(|v| Reply::json_value(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::no_such_path(path)),
        ["apis", group] => discovery::api_group(group)
            .map(|v| Reply::json_value(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::no_such_path(path)),
        ["apis", group, version] => discovery::api_resource_list(group, version)
            .map(|v| Reply::json_value(StatusCode::OK, &v))
            .ok_or_else(|| ApiError::no_such_path(path)),
        ["openapi", "v3"] => Ok(Reply::json_value(
            StatusCode::OK,
            &berth_api::openapi::v3_index(),
        )),
        ["openapi", "v3", rest @ ..] => {
            let doc_path = rest.join("/");
            let (bytes, _hash) = berth_api::openapi::v3_document(&doc_path)
                .ok_or_else(|| ApiError::no_such_path(path))?;
            Ok(Reply::json(StatusCode::OK, Bytes::from(bytes.clone())))
        }
        _ => Err(ApiError::no_such_path(path)),
    }
}

/// An aggregated discovery document in the version the client asked for.
fn aggregated_reply(doc: serde_json::Value, version: Option<&'static str>) -> Reply {
    let version = version.unwrap_or("v2");
    let doc = berth_api::discovery::with_discovery_version(doc, version);
    let mut r = Reply::json_value(StatusCode::OK, &doc);
    r.content_type = berth_api::discovery::aggregated_content_type(version);
    r
}
