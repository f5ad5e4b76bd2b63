//! The cluster's certificates: the CA, the API server's serving certificate, the admin client
//! certificate, and the TLS configurations and kubeconfig built from them.
//!
//! Everything lives in `<data_dir>/tls/` (`ca.crt`, `ca.key`, `apiserver.crt`, `apiserver.key`,
//! `admin.crt`, `admin.key`; keys mode 0600). It is created on first start and reused after; the
//! serving certificate alone is re-issued (by the same CA) when the wanted SAN set changes, and a
//! leaf certificate is re-issued when it is within 30 days of expiry. Keys are ECDSA P-256.
//!
//! The kubeconfig is written as JSON (valid YAML; kubectl reads it) and
//! [`client_config_from_kubeconfig`] reads only JSON kubeconfigs, so this crate needs no YAML
//! parser. All TLS uses the aws-lc-rs provider explicitly, never the process default.
//!
//! This module must not authenticate or authorize requests (see `authn` and `authz`).

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// CA validity: 10 years.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Validity of the serving and admin certificates: 1 year.
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Leaf certificates closer than this to expiry are re-issued on load.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates are back-dated by this much to tolerate clock skew.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Errors of the PKI.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation or signing failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// A stored or given certificate or key could not be parsed.
    #[error("{what} is not valid: {detail}")]
    Parse {
        /// What was parsed.
        what: String,
        /// Why it failed.
        detail: String,
    },
    /// Building a TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A client certificate chain to check was empty.
    #[error("no client certificate")]
    NoClientCertificate,
    /// A subject alternative name is not a valid DNS name or IP address.
    #[error("invalid subject alternative name {0:?}")]
    InvalidSan(String),
    /// More organizations (groups) were asked for than a certificate can carry here.
    #[error("at most 2 organizations per client certificate are supported, got {0}")]
    TooManyOrganizations(usize),
    /// The kubeconfig lacks something or is malformed.
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn parse_err(what: impl Into<String>, detail: impl ToString) -> PkiError {
    PkiError::Parse {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    cert_pem: String,
    key_pem: String,
}

impl Pair {
    fn cert_der(&self) -> Result<CertificateDer<'static>, PkiError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes())
            .map_err(|e| parse_err("certificate PEM", e))
    }

    fn key_der(&self) -> Result<PrivateKeyDer<'static>, PkiError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| parse_err("private key PEM", e))
    }
}

/// The cluster's certificate authority and the certificates it issued for the API server and
/// the admin user.
pub struct ClusterPki {
    dir: PathBuf,
    ca: Pair,
    ca_der: CertificateDer<'static>,
    ca_key: KeyPair,
    serving: Pair,
    admin: Pair,
    /// The TLS client configuration for node agents, made on first use.
    kubelet_client: OnceLock<Arc<rustls::ClientConfig>>,
}

/// Common name of the client certificate the API server presents to node agents' streaming
/// endpoints (the agents serve no one else).
pub const KUBELET_CLIENT_CN: &str = "berth:apiserver";

impl std::fmt::Debug for ClusterPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Sets validity from `now - BACKDATE` for `validity` and a random serial number.
fn base_params(validity: Duration) -> CertificateParams {
    let mut params = CertificateParams::default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let start = now().saturating_sub(BACKDATE);
    params.not_before = epoch + start;
    params.not_after = epoch + start + BACKDATE + validity;
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.use_authority_key_identifier_extension = true;
    params
}

/// A SAN string as it is compared: `IP:<addr>` or `DNS:<name>`.
fn san_key(s: &str) -> Result<String, PkiError> {
    let s = s.trim();
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(format!("IP:{ip}"));
    }
    let name = s.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && (l == "*" || l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        });
    if valid {
        Ok(format!("DNS:{name}"))
    } else {
        Err(PkiError::InvalidSan(s.to_string()))
    }
}

fn san_types(keys: &BTreeSet<String>) -> Result<Vec<SanType>, PkiError> {
    keys.iter()
        .map(|k| {
            if let Some(ip) = k.strip_prefix("IP:") {
                ip.parse()
                    .map(SanType::IpAddress)
                    .map_err(|_| PkiError::InvalidSan(k.clone()))
            } else {
                let dns = k.strip_prefix("DNS:").unwrap_or(k);
                Ok(SanType::DnsName(dns.to_string().try_into()?))
            }
        })
        .collect()
}

/// The SAN set stored in a certificate, as [`san_key`] strings.
fn cert_sans(der: &[u8]) -> Result<BTreeSet<String>, PkiError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| parse_err("certificate", e))?;
    let mut out = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    out.insert(format!("DNS:{}", d.to_ascii_lowercase()));
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        out.insert(format!("IP:{ip}"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Whether the certificate expires within [`RENEW_BEFORE`], or cannot be parsed.
fn expires_soon(der: &[u8]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return true;
    };
    let not_after = cert.validity().not_after.timestamp();
    let limit = (now() + RENEW_BEFORE).as_secs();
    i64::try_from(limit).map_or(true, |limit| not_after < limit)
}

/// Whether `leaf` was signed by the CA whose certificate is `ca`.
fn signed_by(leaf: &[u8], ca: &[u8]) -> bool {
    let (Ok((_, leaf)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(leaf),
        x509_parser::parse_x509_certificate(ca),
    ) else {
        return false;
    };
    leaf.issuer() == ca.subject() && leaf.verify_signature(Some(ca.public_key())).is_ok()
}

/// The machine's host name, lower-cased, from `/proc/sys/kernel/hostname` (or `/etc/hostname`).
pub fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty())
}

/// The machine's non-loopback, non-link-local addresses, read without `unsafe` or external
/// tools: IPv4 local addresses from `/proc/net/fib_trie`, IPv6 from `/proc/net/if_inet6`.
/// On systems without these files (non-Linux), the list is empty.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = BTreeSet::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") {
        out.extend(parse_fib_trie(&text).into_iter().map(IpAddr::V4));
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(parse_if_inet6(&text).into_iter().map(IpAddr::V6));
    }
    out.into_iter().collect()
}

/// Local IPv4 host addresses from `/proc/net/fib_trie`: an address line `|-- a.b.c.d` followed
/// by `/32 host LOCAL`.
fn parse_fib_trie(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(addr) = t.strip_prefix("|--") {
            last = addr.trim().parse().ok();
        } else if t.starts_with("/32 host LOCAL")
            && let Some(a) = last
            && !a.is_loopback()
            && !a.is_link_local()
            && !a.is_unspecified()
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

/// Global IPv6 addresses from `/proc/net/if_inet6` (`<32 hex> <ifindex> <prefix> <scope> ...`).
fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(hex), Some(_), Some(_), Some(scope)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if hex.len() != 32 || scope != "00" {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let a = Ipv6Addr::from(bits);
        if !a.is_loopback() && !a.is_unspecified() && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The SANs the API server's certificate should carry.
fn wanted_sans(extra: &[String], service_ip: Option<IpAddr>) -> Result<BTreeSet<String>, PkiError> {
    let mut names: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "::1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(h) = host_name()
        && san_key(&h).is_ok()
    {
        names.push(h);
    }
    names.extend(host_addresses().iter().map(IpAddr::to_string));
    names.extend(service_ip.map(|ip| ip.to_string()));
    let mut out = names
        .iter()
        .map(|n| san_key(n))
        .collect::<Result<BTreeSet<_>, _>>()?;
    for e in extra.iter().filter(|e| !e.trim().is_empty()) {
        out.insert(san_key(e)?);
    }
    Ok(out)
}

/// Writes `contents` to `path` atomically (temporary file, then rename) with `mode`.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
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

fn read_pair(dir: &Path, stem: &str) -> Result<Option<Pair>, PkiError> {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let read = |p: &Path| match std::fs::read_to_string(p) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io {
            path: p.to_path_buf(),
            source,
        }),
    };
    match (read(&cert)?, read(&key)?) {
        (Some(cert_pem), Some(key_pem)) => Ok(Some(Pair { cert_pem, key_pem })),
        _ => Ok(None),
    }
}

fn write_pair(dir: &Path, stem: &str, pair: &Pair) -> Result<(), PkiError> {
    write_file(
        &dir.join(format!("{stem}.key")),
        pair.key_pem.as_bytes(),
        0o600,
    )?;
    write_file(
        &dir.join(format!("{stem}.crt")),
        pair.cert_pem.as_bytes(),
        0o644,
    )
}

/// The parameters of a leaf certificate: subject (CN and up to two O), SANs, key usages and
/// one extended key usage (server or client authentication).
fn leaf_params(
    sans: &[SanType],
    common_name: &str,
    organizations: &[&str],
    validity: Duration,
    server: bool,
) -> Result<CertificateParams, PkiError> {
    if organizations.len() > 2 {
        return Err(PkiError::TooManyOrganizations(organizations.len()));
    }
    let mut params = base_params(validity);
    // rcgen keeps one value per attribute type; a second O is written under the same OID
    // through a custom type (2.5.4.10), which is how Kubernetes reads several groups.
    if let Some(o) = organizations.first() {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    if let Some(o) = organizations.get(1) {
        params
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 10]), *o);
    }
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = sans.to_vec();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    Ok(params)
}

fn new_ca() -> Result<Pair, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = base_params(CA_VALIDITY);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("berth-ca@{}", now().as_secs()));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = false;
    let cert = params.self_signed(&key)?;
    Ok(Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

impl ClusterPki {
    /// Loads `<data_dir>/tls/` or creates it: an ECDSA P-256 cluster CA (10 years, CN
    /// "berth-ca@<unix time>"), a serving certificate signed by it with SANs localhost,
    /// 127.0.0.1, ::1, kubernetes, kubernetes.default, kubernetes.default.svc,
    /// kubernetes.default.svc.cluster.local, the host name, the machine's non-loopback addresses
    /// (see [`host_addresses`]), `service_ip`, and every extra SAN (IPs as IP SANs, others as DNS
    /// SANs), and an admin client certificate (CN "berth-admin", O "system:masters").
    ///
    /// Restarts reuse everything unchanged; the serving certificate alone is re-issued when the
    /// wanted SAN set differs from the stored one. A leaf that is missing, not signed by the CA,
    /// or within 30 days of expiry is re-issued. Private key files are mode 0600.
    pub fn load_or_create(
        data_dir: &Path,
        extra_sans: &[String],
        service_ip: Option<IpAddr>,
    ) -> Result<Self, PkiError> {
        let dir = data_dir.join("tls");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&dir))?;

        let ca = match read_pair(&dir, "ca")? {
            Some(p) => p,
            None => {
                let p = new_ca()?;
                // A new CA invalidates every leaf.
                for stem in ["apiserver", "admin"] {
                    let _ = std::fs::remove_file(dir.join(format!("{stem}.crt")));
                }
                write_pair(&dir, "ca", &p)?;
                p
            }
        };
        let ca_der = ca.cert_der()?;
        let ca_key = KeyPair::from_pem(&ca.key_pem)?;
        let mut pki = ClusterPki {
            dir: dir.clone(),
            ca,
            ca_der,
            ca_key,
            serving: Pair {
                cert_pem: String::new(),
                key_pem: String::new(),
            },
            admin: Pair {
                cert_pem: String::new(),
                key_pem: String::new(),
            },
            kubelet_client: OnceLock::new(),
        };

        let wanted = wanted_sans(extra_sans, service_ip)?;
        let serving = match read_pair(&dir, "apiserver")? {
            Some(p) if pki.leaf_reusable(&p) && cert_sans(p.cert_der()?.as_ref())? == wanted => p,
            _ => {
                let p = pki.issue(
                    &san_types(&wanted)?,
                    "kube-apiserver",
                    &[],
                    LEAF_VALIDITY,
                    true,
                )?;
                write_pair(&dir, "apiserver", &p)?;
                p
            }
        };
        let admin = match read_pair(&dir, "admin")? {
            Some(p) if pki.leaf_reusable(&p) => p,
            _ => {
                let p = pki.issue(
                    &[],
                    "berth-admin",
                    &["system:masters"],
                    LEAF_VALIDITY,
                    false,
                )?;
                write_pair(&dir, "admin", &p)?;
                p
            }
        };
        pki.serving = serving;
        pki.admin = admin;
        Ok(pki)
    }

    /// A stored leaf is reused when it parses, was signed by our CA, its key parses, and it is
    /// not near expiry.
    fn leaf_reusable(&self, p: &Pair) -> bool {
        let Ok(der) = p.cert_der() else { return false };
        p.key_der().is_ok()
            && signed_by(der.as_ref(), self.ca_der.as_ref())
            && !expires_soon(der.as_ref())
    }

    /// Issues a leaf certificate with a fresh P-256 key.
    fn issue(
        &self,
        sans: &[SanType],
        common_name: &str,
        organizations: &[&str],
        validity: Duration,
        server: bool,
    ) -> Result<Pair, PkiError> {
        let key = KeyPair::generate()?;
        let params = leaf_params(sans, common_name, organizations, validity, server)?;
        let issuer = Issuer::from_ca_cert_der(&self.ca_der, &self.ca_key)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs the public key of a PEM certificate signing request with `params`. Only the key is
    /// taken from the request (its signature proves the requester holds the private key); the
    /// subject, names and usages it asks for are ignored.
    fn sign_csr(&self, csr_pem: &str, params: CertificateParams) -> Result<String, PkiError> {
        let mut csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| parse_err("certificate signing request", e))?;
        csr.params = params;
        let issuer = Issuer::from_ca_cert_der(&self.ca_der, &self.ca_key)?;
        Ok(csr.signed_by(&issuer)?.pem())
    }

    /// Signs a node's client certificate from its CSR: CN `system:node:<node_name>`, O
    /// `system:nodes`, valid for one year. Returns the certificate PEM.
    pub fn sign_node_client_csr(&self, csr_pem: &str, node_name: &str) -> Result<String, PkiError> {
        let params = leaf_params(
            &[],
            &format!("system:node:{node_name}"),
            &["system:nodes"],
            LEAF_VALIDITY,
            false,
        )?;
        self.sign_csr(csr_pem, params)
    }

    /// Signs a node agent's serving certificate from its CSR: CN `<node_name>`, SANs the node
    /// name and `addresses`, valid for one year. Returns the certificate PEM.
    pub fn sign_node_serving_csr(
        &self,
        csr_pem: &str,
        node_name: &str,
        addresses: &[IpAddr],
    ) -> Result<String, PkiError> {
        let mut keys = BTreeSet::new();
        keys.insert(san_key(node_name)?);
        keys.extend(addresses.iter().map(|a| format!("IP:{a}")));
        let params = leaf_params(&san_types(&keys)?, node_name, &[], LEAF_VALIDITY, true)?;
        self.sign_csr(csr_pem, params)
    }

    /// The directory holding the files (`<data_dir>/tls`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// The API server's serving certificate, PEM.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving.cert_pem
    }

    /// The admin client certificate, PEM.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin.cert_pem
    }

    /// "sha256:<hex>" of the CA certificate's SubjectPublicKeyInfo DER (kubeadm's CA pin format).
    pub fn ca_hash(&self) -> String {
        let spki = x509_parser::parse_x509_certificate(self.ca_der.as_ref())
            .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
            .unwrap_or_default();
        let digest = Sha256::digest(&spki);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Signs a client certificate for `common_name` with `organizations` (groups; at most 2),
    /// valid for `validity`. Returns (certificate PEM, private key PEM).
    pub fn issue_client_cert(
        &self,
        common_name: &str,
        organizations: &[&str],
        validity: Duration,
    ) -> Result<(String, String), PkiError> {
        let p = self.issue(&[], common_name, organizations, validity, false)?;
        Ok((p.cert_pem, p.key_pem))
    }

    /// Signs a serving certificate (for node agents) with the given SANs (IPs as IP SANs, others
    /// as DNS SANs); the first SAN is also the common name. Returns (certificate PEM, key PEM).
    pub fn issue_serving_cert(
        &self,
        sans: &[String],
        validity: Duration,
    ) -> Result<(String, String), PkiError> {
        let keys = sans
            .iter()
            .map(|s| san_key(s))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let cn = sans
            .first()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let p = self.issue(&san_types(&keys)?, &cn, &[], validity, true)?;
        Ok((p.cert_pem, p.key_pem))
    }

    /// TLS client configuration for talking to node agents: trusts the cluster CA (agents serve
    /// certificates it signed) and presents a client certificate with CN [`KUBELET_CLIENT_CN`]
    /// and no groups. The certificate is issued in memory once per process (1 year), not stored.
    /// HTTP/1.1 only: the streams are upgraded connections.
    pub fn kubelet_client_config(&self) -> Result<Arc<rustls::ClientConfig>, PkiError> {
        if let Some(config) = self.kubelet_client.get() {
            return Ok(Arc::clone(config));
        }
        let pair = self.issue(&[], KUBELET_CLIENT_CN, &[], LEAF_VALIDITY, false)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![pair.cert_der()?], pair.key_der()?)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::clone(
            self.kubelet_client.get_or_init(|| Arc::new(config)),
        ))
    }

    /// TLS configuration for the API server: ALPN h2 and http/1.1; client certificates are
    /// requested and, when presented, verified against the cluster CA; clients without one are
    /// admitted (the server then authenticates them by bearer token or rejects them).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(self.client_verifier()?)
            .with_single_cert(vec![self.serving.cert_der()?], self.serving.key_der()?)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// The verifier of client certificates: signed by the cluster CA, or none at all.
    fn client_verifier(
        &self,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, PkiError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        Ok(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?,
        )
    }

    /// Checks a client certificate chain (leaf first) as the TLS handshake would: valid now
    /// and signed by the cluster CA.
    pub fn verify_client_chain(
        &self,
        chain: &[rustls::pki_types::CertificateDer<'static>],
    ) -> Result<(), PkiError> {
        let (leaf, intermediates) = chain.split_first().ok_or(PkiError::NoClientCertificate)?;
        self.client_verifier()?.verify_client_cert(
            leaf,
            intermediates,
            rustls::pki_types::UnixTime::now(),
        )?;
        Ok(())
    }

    /// Writes a kubeconfig for `server_url` with the admin credential to `path`, mode 0600.
    /// Cluster, context and current context are named "berth", the user "berth-admin". The file
    /// is JSON, which is valid YAML and read by kubectl.
    pub fn write_admin_kubeconfig(&self, path: &Path, server_url: &str) -> Result<(), PkiError> {
        write_kubeconfig(
            path,
            server_url,
            &self.ca.cert_pem,
            "berth-admin",
            &self.admin.cert_pem,
            &self.admin.key_pem,
        )
    }
}

/// Writes a kubeconfig to `path`, mode 0600: one cluster (`server_url`, trusting `ca_pem`), one
/// user `user_name` with the client certificate and key embedded, cluster, context and current
/// context named "berth". The file is JSON, which is valid YAML (kubectl and kube-rs read it).
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    user_name: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "berth",
            "cluster": {
                "server": server_url,
                "certificate-authority-data": B64.encode(ca_pem.as_bytes()),
            },
        }],
        "users": [{
            "name": user_name,
            "user": {
                "client-certificate-data": B64.encode(cert_pem.as_bytes()),
                "client-key-data": B64.encode(key_pem.as_bytes()),
            },
        }],
        "contexts": [{
            "name": "berth",
            "context": { "cluster": "berth", "user": user_name },
        }],
        "current-context": "berth",
        "preferences": {},
    });
    let mut text = serde_json::to_vec_pretty(&doc).map_err(|e| parse_err("kubeconfig", e))?;
    text.push(b'\n');
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    write_file(path, &text, 0o600)
}

/// Reads a JSON kubeconfig (as [`ClusterPki::write_admin_kubeconfig`] writes; YAML is not
/// parsed) and builds a TLS client configuration for its current context: trusting the
/// cluster's CA and presenting the user's client certificate. Inline `*-data` fields and file
/// paths (relative to the kubeconfig's directory) are both accepted. ALPN is left empty, so
/// HTTP clients speak HTTP/1.1 unless they set it. Returns the configuration and the server URL.
pub fn client_config_from_kubeconfig(
    path: &Path,
) -> Result<(Arc<rustls::ClientConfig>, String), PkiError> {
    let bad = |detail: &str| PkiError::Kubeconfig {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(&format!("not JSON (only JSON kubeconfigs are read): {e}")))?;
    let named = |list: &str, name: &str, field: &str| -> Result<serde_json::Value, PkiError> {
        doc.get(list)
            .and_then(|l| l.as_array())
            .and_then(|l| {
                l.iter()
                    .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))
            })
            .and_then(|e| e.get(field))
            .cloned()
            .ok_or_else(|| bad(&format!("no {list} entry named {name:?}")))
    };
    let current = doc
        .get("current-context")
        .and_then(|c| c.as_str())
        .ok_or_else(|| bad("no current-context"))?;
    let context = named("contexts", current, "context")?;
    let cluster_name = context
        .get("cluster")
        .and_then(|c| c.as_str())
        .ok_or_else(|| bad("context has no cluster"))?;
    let user_name = context
        .get("user")
        .and_then(|c| c.as_str())
        .ok_or_else(|| bad("context has no user"))?;
    let cluster = named("clusters", cluster_name, "cluster")?;
    let user = named("users", user_name, "user")?;
    let server = cluster
        .get("server")
        .and_then(|s| s.as_str())
        .ok_or_else(|| bad("cluster has no server"))?;

    let base = path.parent().unwrap_or(Path::new("."));
    let load = |obj: &serde_json::Value, field: &str| -> Result<Option<Vec<u8>>, PkiError> {
        if let Some(data) = obj.get(format!("{field}-data")).and_then(|d| d.as_str()) {
            return B64
                .decode(data.trim())
                .map(Some)
                .map_err(|e| bad(&format!("{field}-data: {e}")));
        }
        match obj.get(field).and_then(|d| d.as_str()) {
            Some(file) => {
                let p = base.join(file);
                std::fs::read(&p).map(Some).map_err(io_err(&p))
            }
            None => Ok(None),
        }
    };
    let ca = load(&cluster, "certificate-authority")?
        .ok_or_else(|| bad("cluster has no certificate authority"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.map_err(|e| parse_err("certificate-authority", e))?)?;
    }
    if roots.is_empty() {
        return Err(bad("certificate authority holds no certificate"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (
        load(&user, "client-certificate")?,
        load(&user, "client-key")?,
    ) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| parse_err("client-certificate", e))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| parse_err("client-key", e))?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok((Arc::new(config), server.to_string()))
}

#[cfg(test)]
mod tests;
