//! The agent's streaming endpoint: container logs, exec and port-forward over TLS, for the API
//! server to proxy `pods/log`, `pods/exec` and `pods/portforward` to (the kubelet's
//! `/containerLogs`, `/exec` and `/portForward` paths).
//!
//! Owns the TLS listener ([`serve`], [`server_tls_config`]), the check that the peer is the
//! API server (a client certificate from the cluster CA with the common name
//! [`APISERVER_CLIENT_CN`]), request routing, and finding a pod's containers and sandbox
//! through the runtime's labels. The protocols live in submodules: [`websocket`] framing,
//! the Kubernetes [`channel`] protocol, [`spdy`] framing; the handlers in `logs`, `exec` and
//! `portforward`.
//!
//! Must not: talk to the API server or read pod objects (the API server has checked the pod
//! and container before proxying), or change containers (exec runs commands in running ones).

pub mod channel;
mod exec;
mod logs;
mod portforward;
pub mod spdy;
pub mod websocket;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::runtime::{ContainerRuntime, ContainerSummary, RuntimeError, SummaryState, labels};

/// Common name of the client certificate the API server presents to agents; the only peer the
/// streaming endpoint serves.
pub const APISERVER_CLIENT_CN: &str = "berth:apiserver";

/// The WebSocket subprotocol of port-forwarding: SPDY/3.1 frames tunnelled in binary messages.
pub const PORT_FORWARD_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Body of the endpoint's responses.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Errors of the streaming endpoint.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A certificate, key or CA bundle could not be read.
    #[error("{what} is not valid PEM: {detail}")]
    Pem {
        /// What was parsed.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A request the endpoint cannot serve, answered with `code`.
    #[error("{message}")]
    Request {
        /// HTTP status code.
        code: u16,
        /// What is wrong, for the client.
        message: String,
    },
    /// The container runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl StreamError {
    fn bad_request(message: impl Into<String>) -> Self {
        StreamError::Request {
            code: 400,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        StreamError::Request {
            code: 404,
            message: message.into(),
        }
    }

    fn code(&self) -> u16 {
        match self {
            StreamError::Request { code, .. } => *code,
            StreamError::Runtime(RuntimeError::NotFound { .. }) => 404,
            _ => 500,
        }
    }
}

/// A TLS configuration for the endpoint: the agent's serving certificate chain and key (PEM),
/// and client certificates required and verified against the cluster CA (PEM). HTTP/1.1 only
/// (upgrades need it).
pub fn server_tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, StreamError> {
    let pem = |what: &'static str| {
        move |e: rustls::pki_types::pem::Error| StreamError::Pem {
            what,
            detail: e.to_string(),
        }
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem("serving certificate"))?;
    if chain.is_empty() {
        return Err(StreamError::Pem {
            what: "serving certificate",
            detail: "no certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem("serving key"))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.map_err(pem("cluster CA"))?)?;
    }
    if roots.is_empty() {
        return Err(StreamError::Pem {
            what: "cluster CA",
            detail: "no certificate found".into(),
        });
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the endpoint on `listener` until `shutdown` resolves; then stops accepting and ends
/// the connections in progress.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    runtime: Arc<dyn ContainerRuntime>,
    shutdown: F,
) where
    F: Future<Output = ()> + Send,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "streaming endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let runtime = Arc::clone(&runtime);
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "streaming endpoint: TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let peer_cn = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| common_name(c.as_ref()));
            let authorized = peer_cn.as_deref() == Some(APISERVER_CLIENT_CN);
            if !authorized {
                tracing::info!(%peer, cn = ?peer_cn, "streaming endpoint: refusing a client that is not the API server");
            }
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let runtime = Arc::clone(&runtime);
                async move {
                    let response = if authorized {
                        route(runtime, req).await
                    } else {
                        error_response(
                            403,
                            "only the API server may use the node agent's streaming endpoint",
                        )
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "streaming endpoint: connection ended with an error");
            }
        });
    }
    connections.abort_all();
}

/// The subject common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

/// A Kubernetes `Status` failure response.
fn error_response(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        _ => "InternalError",
    };
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    let mut r = Response::new(full(Bytes::from(status.to_string())));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn full(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The query string's pairs.
fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Typed access to query parameters.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn flag(&self, key: &str) -> Result<bool, StreamError> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(v) => Err(StreamError::bad_request(format!(
                "invalid value {v:?} for {key}: expected true or false"
            ))),
        }
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, StreamError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                StreamError::bad_request(format!(
                    "invalid value {v:?} for {key}: expected an integer"
                ))
            }),
        }
    }
}

async fn route(runtime: Arc<dyn ContainerRuntime>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    let result = match segments.as_slice() {
        ["healthz"] => Ok(Response::new(full(Bytes::from_static(b"ok")))),
        ["containerLogs", ns, pod, container] => {
            if method != Method::GET && method != Method::HEAD {
                Err(method_not_allowed(&method, &path))
            } else {
                let params = Params(query_pairs(&req));
                logs::logs(runtime.as_ref(), ns, pod, container, &params).await
            }
        }
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] => {
            let uid = (segments.len() == 5).then(|| segments[3].to_owned());
            if method != Method::GET && method != Method::POST {
                Err(method_not_allowed(&method, &path))
            } else {
                let (ns, pod, container) =
                    ((*ns).to_owned(), (*pod).to_owned(), (*container).to_owned());
                let target = PodRef {
                    namespace: ns,
                    name: pod,
                    uid,
                };
                exec::exec(runtime, req, target, container).await
            }
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
            let uid = (segments.len() == 4).then(|| segments[3].to_owned());
            if method != Method::GET && method != Method::POST {
                Err(method_not_allowed(&method, &path))
            } else {
                let target = PodRef {
                    namespace: (*ns).to_owned(),
                    name: (*pod).to_owned(),
                    uid,
                };
                portforward::port_forward(runtime, req, target).await
            }
        }
        _ => Err(StreamError::not_found(format!(
            "the path {path} is not served here"
        ))),
    };
    match result {
        Ok(r) => r,
        Err(e) => {
            let code = e.code();
            if code >= 500 {
                tracing::warn!(%path, error = %e, "streaming request failed");
            }
            error_response(code, &e.to_string())
        }
    }
}

fn method_not_allowed(method: &Method, path: &str) -> StreamError {
    StreamError::Request {
        code: 405,
        message: format!("{method} is not supported on {path}"),
    }
}

/// A pod as the request names it.
#[derive(Debug, Clone)]
struct PodRef {
    namespace: String,
    name: String,
    uid: Option<String>,
}

impl PodRef {
    fn labels(&self, kind: &str) -> BTreeMap<String, String> {
        let mut l = BTreeMap::from([
            (labels::KIND.to_owned(), kind.to_owned()),
            (labels::POD_NAMESPACE.to_owned(), self.namespace.clone()),
            (labels::POD_NAME.to_owned(), self.name.clone()),
        ]);
        if let Some(uid) = &self.uid {
            l.insert(labels::POD_UID.to_owned(), uid.clone());
        }
        l
    }
}

fn restart_count(c: &ContainerSummary) -> u32 {
    c.labels
        .get(labels::RESTART_COUNT)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The instances of one container of a pod, newest attempt first. When containers of several
/// pods of that name exist (a pod replaced under the same name whose old containers are not
/// removed yet), only those of the most recently created pod count.
async fn container_instances(
    runtime: &dyn ContainerRuntime,
    pod: &PodRef,
    container: &str,
) -> Result<Vec<ContainerSummary>, StreamError> {
    let mut filter = pod.labels(labels::KIND_CONTAINER);
    filter.insert(labels::CONTAINER_NAME.to_owned(), container.to_owned());
    let mut found = runtime.list(&filter).await?;
    let newest_uid = found
        .iter()
        .max_by_key(|c| c.created_unix)
        .and_then(|c| c.labels.get(labels::POD_UID).cloned());
    found.retain(|c| c.labels.get(labels::POD_UID) == newest_uid.as_ref());
    found.sort_by(|a, b| {
        restart_count(b)
            .cmp(&restart_count(a))
            .then(b.created_unix.cmp(&a.created_unix))
    });
    Ok(found)
}

/// The running container that exec reaches.
async fn running_container(
    runtime: &dyn ContainerRuntime,
    pod: &PodRef,
    container: &str,
) -> Result<String, StreamError> {
    let instances = container_instances(runtime, pod, container).await?;
    match instances.first() {
        Some(c) if c.state == SummaryState::Running => Ok(c.id.clone()),
        _ => Err(StreamError::not_found(format!(
            "container not found ({container:?})"
        ))),
    }
}

#[cfg(test)]
mod tests;
