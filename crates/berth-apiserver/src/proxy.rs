//! The streaming subresources `pods/log`, `pods/exec` and `pods/portforward`: the API server
//! checks the pod and container, then proxies the request to the streaming endpoint of the
//! node agent that runs the pod (the kubelet's `/containerLogs`, `/exec` and `/portForward`).
//!
//! Owns the checks Kubernetes makes before proxying (the pod exists, is bound to a node, the
//! container is one of its containers, exec is refused in completed pods), finding the node's
//! address and port (`status.addresses`, `status.daemonEndpoints.kubeletEndpoint.Port`), the
//! TLS connection to the agent (the agent's certificate verified against the cluster CA, the
//! API server's kubelet-client certificate presented), and the relaying: log bodies are passed
//! through chunk by chunk as they come, and upgraded connections (WebSocket exec and
//! port-forward) are spliced both ways once both sides have switched protocols.
//!
//! Must not: interpret the streams themselves (the agent speaks the protocols) or buffer a
//! response body.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_api::ApiError;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::Api;
use crate::query::Query;
use crate::request::RequestInfo;

/// How long connecting to a node agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The agent's port when the Node does not name one.
const DEFAULT_AGENT_PORT: u16 = 10250;

/// Request headers passed on to the agent (the rest, credentials above all, stay here).
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
    "accept",
];

/// Response headers passed back from the agent.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
    "content-type",
];

/// Whether the request is one of the proxied pod subresources.
pub fn handles(info: &RequestInfo) -> bool {
    info.group.is_empty()
        && info.version == "v1"
        && info.resource == "pods"
        && info.name.is_some()
        && matches!(
            info.subresource.as_deref(),
            Some("log" | "exec" | "portforward")
        )
}

/// The verb a request is authorized as: `create` for exec and port-forward whatever the
/// method (Kubernetes authorizes their WebSocket GETs as `create`), the parsed verb otherwise.
pub fn authorization_verb(info: &RequestInfo) -> String {
    if handles(info) && matches!(info.subresource.as_deref(), Some("exec" | "portforward")) {
        "create".to_string()
    } else {
        info.verb.clone()
    }
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

/// Every container name of the pod: init, regular and ephemeral containers.
fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| pod["spec"][*list].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The container a request addresses: the named one, or the only one.
fn resolve_container(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String, ApiError> {
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    match wanted.filter(|c| !c.is_empty()) {
        Some(c) => {
            if container_names(pod).iter().any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                container_names(pod).join(" ")
            ))),
        },
    }
}

/// The status of `container` in the pod's status, if reported.
fn container_status<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    [
        "initContainerStatuses",
        "containerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|list| pod["status"][*list].as_array())
    .flatten()
    .find(|s| s["name"].as_str() == Some(container))
}

/// The node's address for reaching its agent: InternalIP first, then ExternalIP, then Hostname.
fn node_address(node: &Value) -> Option<String> {
    let addresses = node["status"]["addresses"].as_array()?;
    ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .find(|a| a["type"].as_str() == Some(*kind))
                .and_then(|a| a["address"].as_str())
                .filter(|a| !a.is_empty())
                .map(str::to_string)
        })
}

fn node_port(node: &Value) -> u16 {
    node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_AGENT_PORT)
}

/// Checks the log options as the API server does (the agent applies them).
fn check_log_options(query: &Query) -> Result<(), ApiError> {
    for flag in ["follow", "previous", "timestamps"] {
        query.flag(flag)?;
    }
    let integer = |key: &str| -> Result<Option<i64>, ApiError> {
        match query.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value {v:?} for {key}: expected an integer"
                ))
            }),
        }
    };
    if integer("tailLines")?.is_some_and(|n| n < 0) {
        return Err(ApiError::bad_request(
            "tailLines must be greater than or equal to 0",
        ));
    }
    let since_seconds = integer("sinceSeconds")?;
    if since_seconds.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request("sinceSeconds must be greater than 0"));
    }
    if let Some(t) = query.get("sinceTime").filter(|t| !t.is_empty()) {
        if since_seconds.is_some() {
            return Err(ApiError::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ));
        }
        t.parse::<jiff::Timestamp>().map_err(|e| {
            ApiError::bad_request(format!("sinceTime {t:?} is not an RFC 3339 time: {e}"))
        })?;
    }
    if integer("limitBytes")?.is_some_and(|n| n < 1) {
        return Err(ApiError::bad_request("limitBytes must be greater than 0"));
    }
    Ok(())
}

/// The query for the agent: the client's, less `container` (which moves into the path).
fn forwarded_query(raw: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(raw) = raw {
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            if k != "container" {
                out.append_pair(&k, &v);
            }
        }
    }
    out.finish()
}

fn empty_text() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    r
}

/// Serves a proxied subresource (see [`handles`]); `parts` and `body` are the client's request.
pub async fn handle(
    api: &Arc<Api>,
    info: &RequestInfo,
    query: &Query,
    mut parts: http::request::Parts,
    body: crate::server::RequestBody,
) -> Result<Response<Body>, ApiError> {
    drop(body);
    let sub = info.subresource.as_deref().unwrap_or_default();
    let allowed = match sub {
        "log" => parts.method == Method::GET,
        _ => parts.method == Method::GET || parts.method == Method::POST,
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(format!(
            "{} is not supported on pods/{sub}",
            parts.method
        )));
    }
    let namespace = info.namespace.as_deref().unwrap_or_default();
    let name = info.name.as_deref().unwrap_or_default();
    let pods = berth_api::kinds::by_resource("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    let (pod, _) = api.objects.get(pods, Some(namespace), name).await?;

    let path = match sub {
        "log" => {
            check_log_options(query)?;
            let container = resolve_container(&pod, name, query.get("container"))?;
            if !query.flag("previous")?
                && let Some(status) = container_status(&pod, &container)
                && status["state"].get("waiting").is_some()
                && status["lastState"].get("terminated").is_none()
            {
                let reason = text(status, &["state", "waiting", "reason"]).unwrap_or("");
                return Err(ApiError::bad_request(format!(
                    "container {container:?} in pod {name:?} is waiting to start: {reason}"
                )));
            }
            format!("/containerLogs/{namespace}/{name}/{container}")
        }
        "exec" => {
            let container = resolve_container(&pod, name, query.get("container"))?;
            if let Some(phase @ ("Succeeded" | "Failed")) = text(&pod, &["status", "phase"]) {
                return Err(ApiError::bad_request(format!(
                    "cannot exec into a container in a completed pod; current phase is {phase}"
                )));
            }
            format!("/exec/{namespace}/{name}/{container}")
        }
        _ => format!("/portForward/{namespace}/{name}"),
    };

    let node_name = text(&pod, &["spec", "nodeName"]).unwrap_or("");
    if node_name.is_empty() {
        if sub == "log" {
            // Kubernetes streams nothing for a pod that no node runs yet.
            return Ok(empty_text());
        }
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = berth_api::kinds::by_resource("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let (node, _) = api.objects.get(nodes, None, node_name).await?;
    let address = node_address(&node).ok_or_else(|| {
        ApiError::bad_request(format!("node {node_name} has no address to reach it by"))
    })?;
    let port = node_port(&node);
    let query_string = forwarded_query(parts.uri.query());
    let uri = if query_string.is_empty() {
        path
    } else {
        format!("{path}?{query_string}")
    };

    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let mut headers = HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(*name) {
            headers.append(*name, value.clone());
        }
    }
    let backend = send(api, &address, port, parts.method.clone(), &uri, headers).await?;

    let status = backend.status();
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    for name in FORWARDED_RESPONSE_HEADERS {
        for value in backend.headers().get_all(*name) {
            response.headers_mut().append(*name, value.clone());
        }
    }
    if status != StatusCode::SWITCHING_PROTOCOLS {
        *response.body_mut() = Body::new(backend.into_body());
        return Ok(response);
    }
    let Some(client_upgrade) = client_upgrade else {
        return Err(ApiError::internal(
            "the node agent switched protocols for a request that did not ask to",
        ));
    };
    let backend_upgrade = hyper::upgrade::on(backend);
    tokio::spawn(async move {
        let (client, backend) = match tokio::join!(client_upgrade, backend_upgrade) {
            (Ok(c), Ok(b)) => (c, b),
            (c, b) => {
                tracing::debug!(client = ?c.err(), backend = ?b.err(), "stream upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut backend = TokioIo::new(backend);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
            tracing::debug!(error = %e, "proxied stream ended with an error");
        }
    });
    Ok(response)
}

/// Sends the request to the agent at `address:port` over TLS and returns its response head
/// (the body streams from the connection, which lives as long as needed).
async fn send(
    api: &Api,
    address: &str,
    port: u16,
    method: Method,
    uri: &str,
    headers: HeaderMap,
) -> Result<Response<Incoming>, ApiError> {
    let dial_error = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "error dialing backend: dial tcp {address}:{port}: {e}"
        ))
    };
    let tls = api
        .pki
        .kubelet_client_config()
        .map_err(|e| ApiError::internal(format!("no client certificate for node agents: {e}")))?;
    let server_name = match address.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(address.to_string())
            .map_err(|e| dial_error(&e))?,
    };
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((address, port)),
    )
    .await
    .map_err(|_| dial_error(&"timed out"))?
    .map_err(|e| dial_error(&e))?;
    let _ = tcp.set_nodelay(true);
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(server_name, tcp),
    )
    .await
    .map_err(|_| dial_error(&"TLS handshake timed out"))?
    .map_err(|e| dial_error(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| dial_error(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "connection to node agent ended with an error");
        }
    });
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::internal(format!("building the agent request: {e}")))?;
    *request.headers_mut() = headers;
    let host = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    if let Ok(v) = HeaderValue::from_str(&host) {
        request.headers_mut().insert(http::header::HOST, v);
    }
    sender
        .send_request(request)
        .await
        .map_err(|e| ApiError::internal(format!("error talking to the node agent: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(sub: &str, method: &Method) -> RequestInfo {
        crate::request::parse(
            method,
            &format!("/api/v1/namespaces/ns/pods/web/{sub}"),
            false,
        )
        .expect("resource path")
    }

    #[test]
    fn streaming_subresources_are_recognized_and_authorized_as_create() {
        assert!(handles(&info("log", &Method::GET)));
        assert_eq!(authorization_verb(&info("log", &Method::GET)), "get");
        assert_eq!(authorization_verb(&info("exec", &Method::GET)), "create");
        assert_eq!(authorization_verb(&info("exec", &Method::POST)), "create");
        assert_eq!(
            authorization_verb(&info("portforward", &Method::GET)),
            "create"
        );
        assert!(!handles(&info("status", &Method::GET)));
        assert_eq!(authorization_verb(&info("status", &Method::GET)), "get");
    }

    #[test]
    fn containers_are_resolved_like_kubernetes() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(resolve_container(&one, "p", None).unwrap(), "a");
        assert_eq!(resolve_container(&one, "p", Some("")).unwrap(), "a");
        let two = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}],
        }});
        assert_eq!(
            resolve_container(&two, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        assert_eq!(resolve_container(&two, "p", Some("init")).unwrap(), "init");
        let e = resolve_container(&two, "p", Some("c")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container c is not valid for pod p")
        );
    }

    #[test]
    fn node_address_and_port() {
        let node = json!({"status": {
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "10.0.0.5"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 12345}},
        }});
        assert_eq!(node_address(&node).as_deref(), Some("10.0.0.5"));
        assert_eq!(node_port(&node), 12345);
        let bare = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}});
        assert_eq!(node_address(&bare).as_deref(), Some("n1"));
        assert_eq!(node_port(&bare), DEFAULT_AGENT_PORT);
        assert_eq!(node_address(&json!({})), None);
    }

    #[test]
    fn log_options_are_checked_and_the_container_leaves_the_query() {
        let ok = Query::parse(Some("follow=true&tailLines=5&sinceSeconds=10&limitBytes=3"));
        assert!(check_log_options(&ok).is_ok());
        for bad in [
            "tailLines=-1",
            "sinceSeconds=0",
            "sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z",
            "sinceTime=nope",
            "limitBytes=0",
            "follow=maybe",
        ] {
            assert_eq!(
                check_log_options(&Query::parse(Some(bad)))
                    .unwrap_err()
                    .code,
                400,
                "{bad}"
            );
        }
        assert_eq!(
            forwarded_query(Some(
                "container=c&command=sh&command=-c&command=echo%20hi&stdin=true"
            )),
            "command=sh&command=-c&command=echo+hi&stdin=true"
        );
        assert_eq!(forwarded_query(None), "");
    }
}
