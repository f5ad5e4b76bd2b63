//! Joining nodes: join tokens, the join endpoint and node credentials.
//!
//! A join token is `K10<ca-sha256>::<id>.<secret>`: the SHA-256 (hex) of the cluster CA
//! certificate's DER, which the joining agent pins, and a Kubernetes bootstrap token
//! `<id>.<secret>` (id 6 and secret 16 characters of `[a-z0-9]`). The token is stored as
//! Kubernetes stores bootstrap tokens: a Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token` with `token-id`, `token-secret`, `expiration` (RFC 3339) and
//! `usage-bootstrap-authentication: "true"`.
//!
//! This module owns the token format, the unauthenticated `GET /cacerts` (the CA PEM, for the
//! agent to check against the pinned hash), the token-authenticated `POST /berth/v1/join` that
//! signs a node's client and serving certificate requests, and [`issue_local_node`], which
//! writes the same credentials for the server's own in-process agent. An expired token is
//! refused and its Secret deleted. What a node may do with its credential is decided by
//! `authz::node`, not here; certificates are signed by `pki`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_api::status::Reason;
use berth_api::{ApiError, meta};
use bytes::Bytes;
use http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::authz::node::NODE_USER_PREFIX;
use crate::objects::DeleteOptions;
use crate::pki::{ClusterPki, PkiError};
use crate::{Api, Reply};

/// The path of the CA certificate endpoint (no authentication).
pub const CACERTS_PATH: &str = "/cacerts";
/// The path of the join endpoint.
pub const JOIN_PATH: &str = "/berth/v1/join";
/// The prefix of a join token, followed by the CA hash.
pub const TOKEN_PREFIX: &str = "K10";
/// The type of bootstrap-token Secrets.
pub const BOOTSTRAP_TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The name prefix of bootstrap-token Secrets (followed by the token id).
pub const BOOTSTRAP_TOKEN_PREFIX: &str = "bootstrap-token-";
/// The namespace of bootstrap-token Secrets.
pub const BOOTSTRAP_TOKEN_NAMESPACE: &str = "kube-system";
/// The node's kubeconfig in its data directory.
pub const NODE_KUBECONFIG: &str = "node.kubeconfig";
/// The agent's serving certificate in its data directory.
pub const SERVING_CERT: &str = "serving.crt";
/// The agent's serving key in its data directory.
pub const SERVING_KEY: &str = "serving.key";
/// The cluster CA certificate in the agent's data directory.
pub const CA_CERT: &str = "ca.crt";

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Errors of join tokens and node credentials.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The token is not of the form `K10<sha256-hex>::<id>.<secret>` (or `<id>.<secret>`).
    #[error("invalid join token: {0}")]
    InvalidToken(String),
    /// The node name is not a DNS-1123 subdomain.
    #[error("invalid node name {name:?}: {detail}")]
    InvalidNodeName {
        /// The name.
        name: String,
        /// Why it is invalid.
        detail: String,
    },
    /// A certificate could not be requested, signed or written.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A certificate request could not be made.
    #[error("creating a certificate request: {0}")]
    Request(#[from] rcgen::Error),
    /// A directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the cluster CA certificate's DER, lower-case hex.
    pub ca_hash: String,
    /// The bootstrap token id (6 characters `[a-z0-9]`).
    pub id: String,
    /// The bootstrap token secret (16 characters `[a-z0-9]`).
    pub secret: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{TOKEN_PREFIX}{}::{}.{}",
            self.ca_hash, self.id, self.secret
        )
    }
}

fn random_string(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// SHA-256 of `der`, lower-case hex.
pub fn ca_hash(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Splits a bootstrap token `<id>.<secret>` and checks the lengths and alphabet.
pub fn parse_bootstrap_token(s: &str) -> Result<(&str, &str), JoinError> {
    let bad = || {
        JoinError::InvalidToken(format!(
            "expected <id>.<secret> with a {ID_LEN}-character id and a {SECRET_LEN}-character \
             secret of lower-case letters and digits"
        ))
    };
    let (id, secret) = s.split_once('.').ok_or_else(bad)?;
    if id.len() != ID_LEN
        || secret.len() != SECRET_LEN
        || !id.bytes().all(is_token_char)
        || !secret.bytes().all(is_token_char)
    {
        return Err(bad());
    }
    Ok((id, secret))
}

impl JoinToken {
    /// A new token with a random id and secret for the CA whose certificate is `ca_der`.
    pub fn generate(ca_der: &[u8]) -> Self {
        JoinToken {
            ca_hash: ca_hash(ca_der),
            id: random_string(ID_LEN),
            secret: random_string(SECRET_LEN),
        }
    }

    /// Parses `K10<sha256-hex>::<id>.<secret>`.
    pub fn parse(s: &str) -> Result<Self, JoinError> {
        let s = s.trim();
        let rest = s.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            JoinError::InvalidToken(format!(
                "a join token starts with {TOKEN_PREFIX} followed by the cluster CA's hash \
                 (K10<sha256>::<id>.<secret>); create one with `berth token create`"
            ))
        })?;
        let (hash, bootstrap) = rest
            .split_once("::")
            .ok_or_else(|| JoinError::InvalidToken("expected K10<sha256>::<id>.<secret>".into()))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JoinError::InvalidToken(
                "the CA hash must be 64 hexadecimal digits (SHA-256)".into(),
            ));
        }
        let (id, secret) = parse_bootstrap_token(bootstrap)?;
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// The bootstrap token `<id>.<secret>` sent as the bearer token of the join request.
    pub fn bootstrap_token(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// The bootstrap-token Secret that makes this token valid until `expiration` (never, when
    /// `None`).
    pub fn secret_object(&self, expiration: Option<Timestamp>, description: &str) -> Value {
        let mut data = serde_json::Map::new();
        let mut put = |k: &str, v: &str| {
            data.insert(k.to_string(), Value::String(B64.encode(v.as_bytes())));
        };
        put("token-id", &self.id);
        put("token-secret", &self.secret);
        if let Some(t) = expiration {
            put("expiration", &meta::format_time(t));
        }
        put("usage-bootstrap-authentication", "true");
        if !description.is_empty() {
            put("description", description);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": format!("{BOOTSTRAP_TOKEN_PREFIX}{}", self.id),
                "namespace": BOOTSTRAP_TOKEN_NAMESPACE,
            },
            "type": BOOTSTRAP_TOKEN_TYPE,
            "data": data,
        })
    }
}

/// The body of `POST /berth/v1/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    /// The node's name (a DNS-1123 subdomain).
    pub node_name: String,
    /// A PEM certificate request for the node's client certificate.
    #[serde(rename = "clientCSR")]
    pub client_csr: String,
    /// A PEM certificate request for the agent's serving certificate.
    #[serde(rename = "servingCSR")]
    pub serving_csr: String,
    /// The node's addresses, written into the serving certificate.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// The answer of `POST /berth/v1/join`: PEM certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    /// The node's client certificate (CN `system:node:<name>`, O `system:nodes`).
    pub client_certificate: String,
    /// The agent's serving certificate (SANs: node name and addresses).
    pub serving_certificate: String,
    /// The cluster CA certificate.
    pub ca_certificate: String,
}

/// Checks a node name (a DNS-1123 subdomain).
pub fn validate_node_name(name: &str) -> Result<(), JoinError> {
    let problems = berth_api::validation::dns1123_subdomain(name);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(JoinError::InvalidNodeName {
            name: name.to_string(),
            detail: problems.join("; "),
        })
    }
}

/// `GET /cacerts`: the cluster CA certificate, PEM.
pub fn cacerts(api: &Api) -> Reply {
    Reply {
        status: StatusCode::OK,
        content_type: "application/x-pem-file",
        body: Body::from(api.pki.ca_pem().to_string()),
        warnings: Vec::new(),
    }
}

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(401, Reason::Unauthorized, message)
}

fn secret_field(secret: &Value, key: &str) -> Option<String> {
    let data = secret.pointer(&format!("/data/{key}"))?.as_str()?;
    let bytes = B64.decode(data).ok()?;
    String::from_utf8(bytes).ok()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the bootstrap token `<id>.<secret>` against its Secret. An expired token's Secret is
/// deleted. Every refusal is a 401 with a message saying why.
pub async fn check_bootstrap_token(api: &Api, token: &str) -> Result<(), ApiError> {
    let (id, secret) = parse_bootstrap_token(token).map_err(|e| unauthorized(e.to_string()))?;
    let kind = berth_api::kinds::by_resource("", "v1", "secrets")
        .ok_or_else(|| ApiError::internal("secrets are not registered"))?;
    let name = format!("{BOOTSTRAP_TOKEN_PREFIX}{id}");
    let unknown = || {
        unauthorized(format!(
            "join token {id} is not known to this cluster (it may have expired and been \
             removed); create a new one with `berth token create`"
        ))
    };
    let stored = match api
        .objects
        .get(kind, Some(BOOTSTRAP_TOKEN_NAMESPACE), &name)
        .await
    {
        Ok((s, _)) => s,
        Err(e) if e.code == 404 => return Err(unknown()),
        Err(e) => return Err(e),
    };
    let usable = stored.get("type").and_then(Value::as_str) == Some(BOOTSTRAP_TOKEN_TYPE)
        && secret_field(&stored, "token-id").as_deref() == Some(id)
        && secret_field(&stored, "usage-bootstrap-authentication").as_deref() == Some("true")
        && !meta::is_deleting(&stored);
    if !usable {
        return Err(unknown());
    }
    let expected = secret_field(&stored, "token-secret").unwrap_or_default();
    if !constant_time_eq(expected.as_bytes(), secret.as_bytes()) {
        return Err(unauthorized(format!(
            "the secret of join token {id} is wrong; check the token, or create a new one with \
             `berth token create`"
        )));
    }
    if let Some(exp) = secret_field(&stored, "expiration") {
        let expires: Timestamp = exp.parse().map_err(|_| unknown())?;
        if expires <= api.objects.clock.now() {
            let deleted = api
                .objects
                .delete(
                    kind,
                    Some(BOOTSTRAP_TOKEN_NAMESPACE),
                    &name,
                    &DeleteOptions::default(),
                )
                .await;
            if let Err(e) = deleted {
                tracing::debug!(error = %e, token = id, "removing an expired join token failed");
            }
            return Err(unauthorized(format!(
                "join token {id} expired at {exp}; create a new one with `berth token create`"
            )));
        }
    }
    Ok(())
}

/// `POST /berth/v1/join`: checks the bearer bootstrap token, then signs the node's client and
/// serving certificate requests.
pub async fn join(
    api: &Arc<Api>,
    method: &http::Method,
    authorization: Option<&str>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    if method != http::Method::POST {
        return Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {JOIN_PATH}; use POST"
        )));
    }
    let token = authorization
        .and_then(crate::authn::bearer_token)
        .ok_or_else(|| {
            unauthorized(
                "joining needs a join token: send `Authorization: Bearer <token-id>.<token-secret>`",
            )
        })?;
    check_bootstrap_token(api, token).await?;
    let req: JoinRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the join request is not valid: {e}")))?;
    validate_node_name(&req.node_name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let addresses = req
        .addresses
        .iter()
        .map(|a| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| ApiError::bad_request(format!("address {a:?} is not an IP address")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = api
        .pki
        .sign_node_client_csr(&req.client_csr, &req.node_name)
        .map_err(|e| ApiError::bad_request(format!("clientCSR: {e}")))?;
    let serving = api
        .pki
        .sign_node_serving_csr(&req.serving_csr, &req.node_name, &addresses)
        .map_err(|e| ApiError::bad_request(format!("servingCSR: {e}")))?;
    tracing::info!(node = %req.node_name, "node joined");
    let resp = JoinResponse {
        client_certificate: client,
        serving_certificate: serving,
        ca_certificate: api.pki.ca_pem().to_string(),
    };
    let value = serde_json::to_value(&resp).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Reply::json_value(StatusCode::OK, &value))
}

/// A fresh P-256 key and a PEM certificate request for it with common name `cn`.
pub fn key_and_csr(cn: &str) -> Result<(rcgen::KeyPair, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key, csr))
}

/// Writes the credentials of node `node_name` into `agent_data_dir` without a token, for the
/// server's own in-process agent: `node.kubeconfig` (for `server_url`, client certificate and
/// key embedded, mode 0600), `serving.crt`, `serving.key` (0600) and `ca.crt` — the same files
/// a joining agent writes. Fresh keys and certificates are issued on every call.
pub fn issue_local_node(
    pki: &ClusterPki,
    server_url: &str,
    node_name: &str,
    addresses: &[IpAddr],
    agent_data_dir: &Path,
) -> Result<(), JoinError> {
    validate_node_name(node_name)?;
    std::fs::create_dir_all(agent_data_dir).map_err(|source| JoinError::Io {
        path: agent_data_dir.to_path_buf(),
        source,
    })?;
    let user = format!("{NODE_USER_PREFIX}{node_name}");
    let (client_key, client_csr) = key_and_csr(&user)?;
    let client_cert = pki.sign_node_client_csr(&client_csr, node_name)?;
    let (serving_key, serving_csr) = key_and_csr(node_name)?;
    let serving_cert = pki.sign_node_serving_csr(&serving_csr, node_name, addresses)?;
    crate::pki::write_file(
        &agent_data_dir.join(CA_CERT),
        pki.ca_pem().as_bytes(),
        0o644,
    )?;
    crate::pki::write_file(
        &agent_data_dir.join(SERVING_KEY),
        serving_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    crate::pki::write_file(
        &agent_data_dir.join(SERVING_CERT),
        serving_cert.as_bytes(),
        0o644,
    )?;
    crate::pki::write_kubeconfig(
        &agent_data_dir.join(NODE_KUBECONFIG),
        server_url,
        pki.ca_pem(),
        &user,
        &client_cert,
        &client_key.serialize_pem(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = JoinToken::generate(b"not really a certificate");
        assert_eq!(t.id.len(), 6);
        assert_eq!(t.secret.len(), 16);
        assert!(t.id.bytes().chain(t.secret.bytes()).all(is_token_char));
        let s = t.to_string();
        assert!(s.starts_with("K10"));
        assert!(s.contains(&format!("::{}.{}", t.id, t.secret)));
        assert_eq!(JoinToken::parse(&s).unwrap(), t);
        assert_eq!(JoinToken::parse(&format!("  {s}\n")).unwrap(), t);
        assert_eq!(t.ca_hash, ca_hash(b"not really a certificate"));
        assert_eq!(t.bootstrap_token(), format!("{}.{}", t.id, t.secret));
        // Two tokens differ.
        assert_ne!(JoinToken::generate(b"x").secret, t.secret);
    }

    #[test]
    fn ca_hash_is_sha256_hex() {
        assert_eq!(
            ca_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_tokens_are_refused() {
        let hash = "a".repeat(64);
        for bad in [
            "",
            "abcdef.0123456789abcdef",
            &format!("K10{hash}"),
            &format!("K10{hash}::abcdef"),
            &format!("K10{}::abcdef.0123456789abcdef", "a".repeat(63)),
            &format!("K10{}::abcdef.0123456789abcdef", "g".repeat(64)),
            &format!("K10{hash}::abcde.0123456789abcdef"),
            &format!("K10{hash}::abcdef.0123456789abcde"),
            &format!("K10{hash}::ABCDEF.0123456789abcdef"),
            &format!("K10{hash}::abcdef.0123456789abcdeF"),
            &format!("K10{hash}::abcdef:0123456789abcdef"),
            &format!("K20{hash}::abcdef.0123456789abcdef"),
        ] {
            assert!(JoinToken::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let ok =
            JoinToken::parse(&format!("K10{}::abcdef.0123456789abcdef", "AB".repeat(32))).unwrap();
        assert_eq!(ok.ca_hash, "ab".repeat(32));
        assert_eq!(
            parse_bootstrap_token("abcdef.0123456789abcdef").unwrap(),
            ("abcdef", "0123456789abcdef")
        );
        assert!(parse_bootstrap_token("abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn bootstrap_secret_has_kubernetes_fields() {
        let t = JoinToken {
            ca_hash: "0".repeat(64),
            id: "abcdef".into(),
            secret: "0123456789abcdef".into(),
        };
        let exp: Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        let s = t.secret_object(Some(exp), "for n2");
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(s["metadata"]["namespace"], "kube-system");
        assert_eq!(s["type"], "bootstrap.kubernetes.io/token");
        assert_eq!(secret_field(&s, "token-id").unwrap(), "abcdef");
        assert_eq!(
            secret_field(&s, "token-secret").unwrap(),
            "0123456789abcdef"
        );
        assert_eq!(
            secret_field(&s, "expiration").unwrap(),
            "2030-01-02T03:04:05Z"
        );
        assert_eq!(
            secret_field(&s, "usage-bootstrap-authentication").unwrap(),
            "true"
        );
        assert_eq!(secret_field(&s, "description").unwrap(), "for n2");
        let forever = t.secret_object(None, "");
        assert!(forever.pointer("/data/expiration").is_none());
        assert!(forever.pointer("/data/description").is_none());
        // The Secret passes the API's own validation.
        let kind = berth_api::kinds::by_resource("", "v1", "secrets").unwrap();
        assert!(berth_api::validation::validate(kind, &s, None).is_empty());
    }

    #[test]
    fn node_names_are_subdomains() {
        assert!(validate_node_name("n2").is_ok());
        assert!(validate_node_name("node-1.example.com").is_ok());
        assert!(validate_node_name("Node_1").is_err());
        assert!(validate_node_name("").is_err());
        assert!(validate_node_name(&"a".repeat(254)).is_err());
    }

    #[test]
    fn local_node_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::load_or_create(&dir.path().join("server"), &[], None).unwrap();
        let agent = dir.path().join("agent");
        let addr: IpAddr = "10.1.2.3".parse().unwrap();
        issue_local_node(&pki, "https://127.0.0.1:6443", "n1", &[addr], &agent).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(agent.join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(SERVING_KEY), 0o600);
        assert_eq!(mode(NODE_KUBECONFIG), 0o600);
        assert_eq!(
            std::fs::read_to_string(agent.join(CA_CERT)).unwrap(),
            pki.ca_pem()
        );
        let serving = std::fs::read_to_string(agent.join(SERVING_CERT)).unwrap();
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(serving.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let sans = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = sans
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(n1)", "IPAddress(0a:01:02:03)"]);
        // The kubeconfig authenticates as the node.
        let kc: Value =
            serde_json::from_slice(&std::fs::read(agent.join(NODE_KUBECONFIG)).unwrap()).unwrap();
        assert_eq!(kc["users"][0]["name"], "system:node:n1");
        let cert_pem = B64
            .decode(
                kc["users"][0]["user"]["client-certificate-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .unwrap()
            .unwrap();
        let user = crate::authn::Authenticator::authenticate(
            &crate::authn::ClientCertAuthenticator,
            &crate::authn::Credentials {
                client_certs: &[der],
                authorization: None,
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(user.name, "system:node:n1");
        assert!(
            user.groups
                .iter()
                .any(|g| g == crate::authz::node::NODES_GROUP)
        );
        assert!(issue_local_node(&pki, "https://127.0.0.1:6443", "Bad_Name", &[], &agent).is_err());
    }

    #[test]
    fn csr_subject_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
        // A request asking to be an administrator gets a node certificate all the same.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "berth-admin");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let pem = pki.sign_node_client_csr(&csr, "n3").unwrap();
        let der = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        let o: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["system:node:n3"]);
        assert_eq!(o, ["system:nodes"]);
        assert!(pki.sign_node_client_csr("not a csr", "n3").is_err());
    }
}
