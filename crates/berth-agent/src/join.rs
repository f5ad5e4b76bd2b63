//! Joining a cluster: turning a join token into this node's credentials, and finding them again
//! after a restart.
//!
//! A join token is `K10<ca-sha256>::<id>.<secret>` (`berth token create` prints one). [`join`]
//! fetches the server's CA from `GET /cacerts` without trusting anything yet, refuses it unless
//! its SHA-256 (of the certificate's DER) is the one in the token, and from then on trusts only
//! that CA: it sends `POST /berth/v1/join` with the bootstrap token `<id>.<secret>` and two
//! certificate requests for keys it generated, and receives a client certificate
//! (`system:node:<name>` in `system:nodes`) and a serving certificate for its own TLS port.
//!
//! Files in the data directory: `node.kubeconfig` (server, CA, client certificate and key
//! embedded; JSON, which kubectl and kube-rs read as YAML), `serving.crt`, `serving.key`,
//! `ca.crt`. Keys and the kubeconfig are mode 0600. [`load_credentials`] reads them back, so a
//! restart needs no token.
//!
//! This module must not talk to the API beyond the join itself (that is `api`).

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The node's kubeconfig in the data directory.
pub const NODE_KUBECONFIG: &str = "node.kubeconfig";
/// The agent's serving certificate in the data directory.
pub const SERVING_CERT: &str = "serving.crt";
/// The agent's serving key in the data directory.
pub const SERVING_KEY: &str = "serving.key";
/// The cluster CA certificate in the data directory.
pub const CA_CERT: &str = "ca.crt";
/// The prefix of a node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The prefix of a join token, followed by the CA hash.
pub const TOKEN_PREFIX: &str = "K10";

/// How long each join request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of joining and of loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The token is not of the form `K10<sha256-hex>::<id>.<secret>`.
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
    /// The server URL is not an `https://` URL.
    #[error("invalid server URL {0:?}: expected https://HOST:PORT")]
    InvalidServer(String),
    /// The server could not be reached or did not answer.
    #[error("{url}: {source}")]
    Http {
        /// The URL asked.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server's `/cacerts` holds no certificate.
    #[error("the server's /cacerts did not return a PEM certificate: {0}")]
    BadCaCerts(String),
    /// The CA the server presents is not the one the token pins.
    #[error(
        "the server's CA certificate does not match the hash in the token (token: sha256 \
         {expected}, server: sha256 {actual}); the token belongs to another cluster, or \
         something between this machine and the server is intercepting the connection"
    )]
    CaMismatch {
        /// The hash in the token.
        expected: String,
        /// The hash of the server's CA.
        actual: String,
    },
    /// The server refused the join.
    #[error("the server refused to join this node ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server's answer could not be used.
    #[error("the server's join answer is not valid: {0}")]
    BadResponse(String),
    /// A key or certificate request could not be made.
    #[error("creating a key and certificate request: {0}")]
    Generate(#[from] rcgen::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Stored credentials are incomplete or damaged.
    #[error("the credentials in {dir} are not usable: {detail}; remove them and join again")]
    Corrupt {
        /// The data directory.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JoinError + '_ {
    move |source| JoinError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// This node's credentials, as written to its data directory.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredentials {
    /// The node's kubeconfig (client certificate of `system:node:<name>`).
    pub kubeconfig: PathBuf,
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// The agent's serving certificate, PEM.
    pub serving_cert_pem: String,
    /// The agent's serving key, PEM.
    pub serving_key_pem: String,
    /// The node's name.
    pub node_name: String,
}

impl std::fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("kubeconfig", &self.kubeconfig)
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the cluster CA certificate's DER, lower-case hex.
    pub ca_hash: String,
    /// The bootstrap token id.
    pub id: String,
    /// The bootstrap token secret.
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

fn is_token_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl JoinToken {
    /// Parses `K10<sha256-hex>::<id>.<secret>` (id 6 and secret 16 characters of `[a-z0-9]`).
    pub fn parse(s: &str) -> Result<Self, JoinError> {
        let s = s.trim();
        let rest = s.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            JoinError::InvalidToken(
                "a join token starts with K10 followed by the cluster CA's hash \
                 (K10<sha256>::<id>.<secret>); create one on the server with `berth token create`"
                    .into(),
            )
        })?;
        let (hash, bootstrap) = rest
            .split_once("::")
            .ok_or_else(|| JoinError::InvalidToken("expected K10<sha256>::<id>.<secret>".into()))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JoinError::InvalidToken(
                "the CA hash must be 64 hexadecimal digits (SHA-256)".into(),
            ));
        }
        let bad = || {
            JoinError::InvalidToken(
                "expected <id>.<secret> after `::`, with a 6-character id and a 16-character \
                 secret of lower-case letters and digits"
                    .into(),
            )
        };
        let (id, secret) = bootstrap.split_once('.').ok_or_else(bad)?;
        if id.len() != 6
            || secret.len() != 16
            || !id.bytes().all(is_token_char)
            || !secret.bytes().all(is_token_char)
        {
            return Err(bad());
        }
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            id: id.to_string(),
            secret: secret.to_string(),
        })
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

/// SHA-256 of `der`, lower-case hex.
pub fn ca_hash(der: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JoinRequest<'a> {
    node_name: &'a str,
    #[serde(rename = "clientCSR")]
    client_csr: &'a str,
    #[serde(rename = "servingCSR")]
    serving_csr: &'a str,
    addresses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinResponse {
    client_certificate: String,
    serving_certificate: String,
    ca_certificate: String,
}

/// Accepts any server certificate. Used for exactly one request, `GET /cacerts`, whose answer
/// is then checked against the hash in the token before anything is trusted.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn http_client(tls: rustls::ClientConfig) -> Result<reqwest::Client, JoinError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|source| JoinError::Http {
            url: String::new(),
            source,
        })
}

/// A client that trusts only the CA `ca_der`.
fn pinned_client(ca_der: CertificateDer<'static>) -> Result<reqwest::Client, JoinError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der)?;
    let tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    http_client(tls)
}

/// The CA certificate the server presents at `/cacerts`, fetched without verification.
async fn fetch_ca(base: &str) -> Result<(String, CertificateDer<'static>), JoinError> {
    let p = provider();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::clone(&p))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(p)))
        .with_no_client_auth();
    let url = format!("{base}/cacerts");
    let http_err = |source| JoinError::Http {
        url: url.clone(),
        source,
    };
    let resp = http_client(tls)?.get(&url).send().await.map_err(http_err)?;
    let status = resp.status();
    let text = resp.text().await.map_err(http_err)?;
    if !status.is_success() {
        return Err(JoinError::BadCaCerts(format!("HTTP {status}")));
    }
    let der = CertificateDer::pem_slice_iter(text.as_bytes())
        .next()
        .ok_or_else(|| JoinError::BadCaCerts("no certificate in the answer".into()))?
        .map_err(|e| JoinError::BadCaCerts(e.to_string()))?;
    Ok((text, der))
}

/// A fresh P-256 key and a PEM certificate request for it with common name `cn`.
fn key_and_csr(cn: &str) -> Result<(rcgen::KeyPair, String), JoinError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key)?.pem()?;
    Ok((key, csr))
}

/// The message of a Kubernetes `Status` body, or the body itself.
fn status_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| body.trim().to_string())
}

fn check_node_name(name: &str) -> Result<(), JoinError> {
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

/// Joins the cluster at `server` (`https://HOST:PORT`) with `token` as node `node_name`
/// reachable at `addresses`, and writes the credentials into `data_dir` (see the module
/// documentation). A token whose CA hash does not match the server's CA, and a token the server
/// does not accept (unknown, wrong secret, expired), are refused with messages saying so.
pub async fn join(
    server: &str,
    token: &str,
    node_name: &str,
    addresses: &[IpAddr],
    data_dir: &Path,
) -> Result<NodeCredentials, JoinError> {
    let token = JoinToken::parse(token)?;
    check_node_name(node_name)?;
    let base = server.trim().trim_end_matches('/');
    if !base.starts_with("https://") || base.len() <= "https://".len() {
        return Err(JoinError::InvalidServer(server.to_string()));
    }

    let (ca_pem, ca_der) = fetch_ca(base).await?;
    let actual = ca_hash(ca_der.as_ref());
    if actual != token.ca_hash {
        return Err(JoinError::CaMismatch {
            expected: token.ca_hash,
            actual,
        });
    }

    let user = format!("{NODE_USER_PREFIX}{node_name}");
    let (client_key, client_csr) = key_and_csr(&user)?;
    let (serving_key, serving_csr) = key_and_csr(node_name)?;
    let request = JoinRequest {
        node_name,
        client_csr: &client_csr,
        serving_csr: &serving_csr,
        addresses: addresses.iter().map(IpAddr::to_string).collect(),
    };
    let url = format!("{base}/berth/v1/join");
    let http_err = |source| JoinError::Http {
        url: url.clone(),
        source,
    };
    let resp = pinned_client(ca_der.clone())?
        .post(&url)
        .bearer_auth(format!("{}.{}", token.id, token.secret))
        .json(&request)
        .send()
        .await
        .map_err(http_err)?;
    let status = resp.status();
    let body = resp.text().await.map_err(http_err)?;
    if !status.is_success() {
        return Err(JoinError::Refused {
            status: status.as_u16(),
            message: status_message(&body),
        });
    }
    let answer: JoinResponse =
        serde_json::from_str(&body).map_err(|e| JoinError::BadResponse(e.to_string()))?;
    let answered_ca = CertificateDer::pem_slice_iter(answer.ca_certificate.as_bytes())
        .next()
        .and_then(Result::ok);
    if answered_ca.as_ref() != Some(&ca_der) {
        return Err(JoinError::BadResponse(
            "the CA certificate in the answer is not the pinned one".into(),
        ));
    }
    for (what, pem) in [
        ("client certificate", &answer.client_certificate),
        ("serving certificate", &answer.serving_certificate),
    ] {
        if CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .and_then(Result::ok)
            .is_none()
        {
            return Err(JoinError::BadResponse(format!("the {what} is not PEM")));
        }
    }

    let creds = NodeCredentials {
        kubeconfig: data_dir.join(NODE_KUBECONFIG),
        ca_pem,
        serving_cert_pem: answer.serving_certificate,
        serving_key_pem: serving_key.serialize_pem(),
        node_name: node_name.to_string(),
    };
    write_credentials(
        data_dir,
        base,
        &creds,
        &answer.client_certificate,
        &client_key.serialize_pem(),
    )?;
    Ok(creds)
}

/// Writes `contents` to `path` atomically (temporary file, then rename) with `mode`.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), JoinError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(contents).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

fn write_credentials(
    dir: &Path,
    server: &str,
    creds: &NodeCredentials,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<(), JoinError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let user = format!("{NODE_USER_PREFIX}{}", creds.node_name);
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "berth",
            "cluster": {
                "server": server,
                "certificate-authority-data": B64.encode(creds.ca_pem.as_bytes()),
            },
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": B64.encode(client_cert_pem.as_bytes()),
                "client-key-data": B64.encode(client_key_pem.as_bytes()),
            },
        }],
        "contexts": [{
            "name": "berth",
            "context": { "cluster": "berth", "user": user },
        }],
        "current-context": "berth",
        "preferences": {},
    });
    let mut text = serde_json::to_vec_pretty(&kubeconfig).unwrap_or_default();
    text.push(b'\n');
    write_file(&dir.join(CA_CERT), creds.ca_pem.as_bytes(), 0o644)?;
    write_file(
        &dir.join(SERVING_KEY),
        creds.serving_key_pem.as_bytes(),
        0o600,
    )?;
    write_file(
        &dir.join(SERVING_CERT),
        creds.serving_cert_pem.as_bytes(),
        0o644,
    )?;
    // Last: its presence means the node has joined.
    write_file(&creds.kubeconfig, &text, 0o600)
}

/// The credentials a previous [`join`] (or the server, for its own agent) wrote into
/// `data_dir`; `None` when the node has not joined yet.
pub fn load_credentials(data_dir: &Path) -> Result<Option<NodeCredentials>, JoinError> {
    let kubeconfig = data_dir.join(NODE_KUBECONFIG);
    let text = match std::fs::read_to_string(&kubeconfig) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(JoinError::Io {
                path: kubeconfig,
                source,
            });
        }
    };
    let corrupt = |detail: String| JoinError::Corrupt {
        dir: data_dir.to_path_buf(),
        detail,
    };
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| corrupt(format!("{NODE_KUBECONFIG} is not JSON: {e}")))?;
    let node_name = doc
        .pointer("/users/0/name")
        .and_then(|n| n.as_str())
        .and_then(|n| n.strip_prefix(NODE_USER_PREFIX))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| corrupt(format!("{NODE_KUBECONFIG} has no system:node user")))?
        .to_string();
    let read = |name: &str| {
        let path = data_dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(corrupt(format!("{name} is missing")))
            }
            Err(source) => Err(JoinError::Io { path, source }),
        }
    };
    Ok(Some(NodeCredentials {
        kubeconfig,
        ca_pem: read(CA_CERT)?,
        serving_cert_pem: read(SERVING_CERT)?,
        serving_key_pem: read(SERVING_KEY)?,
        node_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse() {
        let hash = "fedcba9876543210".repeat(4);
        let t = JoinToken::parse(&format!("K10{hash}::abc123.0123456789abcdef\n")).unwrap();
        assert_eq!(t.ca_hash, hash);
        assert_eq!(t.id, "abc123");
        assert_eq!(t.secret, "0123456789abcdef");
        assert_eq!(t.to_string(), format!("K10{hash}::abc123.0123456789abcdef"));
        // Upper-case hex is accepted and normalised.
        let upper = JoinToken::parse(&format!(
            "K10{}::abc123.0123456789abcdef",
            hash.to_uppercase()
        ))
        .unwrap();
        assert_eq!(upper.ca_hash, hash);
        // The secret stays out of debug output.
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        for bad in [
            String::new(),
            "abc123.0123456789abcdef".to_string(),
            format!("K10{hash}"),
            format!("K10{hash}::"),
            format!("K10{hash}::abc123"),
            format!("K10{}::abc123.0123456789abcdef", &hash[1..]),
            format!("K10{}x::abc123.0123456789abcdef", &hash[1..]),
            format!("K10{hash}::abc12.0123456789abcdef"),
            format!("K10{hash}::abc123.0123456789abcdefg"),
            format!("K10{hash}::ABC123.0123456789abcdef"),
            format!("K10{hash}::abc123.0123456789abcde-"),
        ] {
            assert!(
                matches!(JoinToken::parse(&bad), Err(JoinError::InvalidToken(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn hashes() {
        assert_eq!(
            ca_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn status_messages() {
        assert_eq!(
            status_message(r#"{"kind":"Status","message":"join token abc123 expired"}"#),
            "join token abc123 expired"
        );
        assert_eq!(status_message(" plain \n"), "plain");
    }

    #[tokio::test]
    async fn bad_input_is_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let token = format!("K10{}::abc123.0123456789abcdef", "0".repeat(64));
        // Port 9 on localhost: nothing should ever be sent there.
        let e = join("https://127.0.0.1:9", "nonsense", "n1", &[], dir.path())
            .await
            .unwrap_err();
        assert!(matches!(e, JoinError::InvalidToken(_)), "{e}");
        let e = join("https://127.0.0.1:9", &token, "Bad_Name", &[], dir.path())
            .await
            .unwrap_err();
        assert!(matches!(e, JoinError::InvalidNodeName { .. }), "{e}");
        let e = join("http://127.0.0.1:9", &token, "n1", &[], dir.path())
            .await
            .unwrap_err();
        assert!(matches!(e, JoinError::InvalidServer(_)), "{e}");
        assert!(load_credentials(dir.path()).unwrap().is_none());
    }

    #[test]
    fn credentials_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_credentials(dir.path()).unwrap(), None);
        let creds = NodeCredentials {
            kubeconfig: dir.path().join(NODE_KUBECONFIG),
            ca_pem: "ca".into(),
            serving_cert_pem: "cert".into(),
            serving_key_pem: "key".into(),
            node_name: "n1".into(),
        };
        write_credentials(dir.path(), "https://h:6443", &creds, "ccert", "ckey").unwrap();
        assert_eq!(load_credentials(dir.path()).unwrap(), Some(creds.clone()));
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(SERVING_KEY), 0o600);
        assert_eq!(mode(NODE_KUBECONFIG), 0o600);
        assert_eq!(mode(CA_CERT), 0o644);
        let kc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&creds.kubeconfig).unwrap()).unwrap();
        assert_eq!(kc["clusters"][0]["cluster"]["server"], "https://h:6443");
        assert_eq!(kc["contexts"][0]["context"]["user"], "system:node:n1");
        assert_eq!(
            B64.decode(kc["users"][0]["user"]["client-key-data"].as_str().unwrap())
                .unwrap(),
            b"ckey"
        );
        std::fs::remove_file(dir.path().join(SERVING_KEY)).unwrap();
        let e = load_credentials(dir.path()).unwrap_err();
        assert!(e.to_string().contains("serving.key is missing"), "{e}");
        std::fs::write(&creds.kubeconfig, "{}").unwrap();
        assert!(load_credentials(dir.path()).is_err());
    }
}
