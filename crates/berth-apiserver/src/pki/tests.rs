//! Tests of the cluster PKI: persistence, SAN changes, real TLS handshakes.

use super::*;
use crate::authn::{Authenticator, ClientCertAuthenticator, Credentials};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join("tls").join(name)).unwrap()
}

const FILES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "apiserver.crt",
    "apiserver.key",
    "admin.crt",
    "admin.key",
];

#[test]
fn create_then_reload_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Some(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1)));
    let a = ClusterPki::load_or_create(dir.path(), &["api.example.com".into()], svc).unwrap();
    let before: Vec<String> = FILES.iter().map(|f| read(dir.path(), f)).collect();
    let b = ClusterPki::load_or_create(dir.path(), &["api.example.com".into()], svc).unwrap();
    let after: Vec<String> = FILES.iter().map(|f| read(dir.path(), f)).collect();
    assert_eq!(before, after);
    assert_eq!(a.ca_pem(), b.ca_pem());
    assert_eq!(a.serving_cert_pem(), b.serving_cert_pem());
    assert_eq!(a.admin_cert_pem(), b.admin_cert_pem());
    assert_eq!(a.ca_hash(), b.ca_hash());
    for key in ["ca.key", "apiserver.key", "admin.key"] {
        let mode = std::fs::metadata(dir.path().join("tls").join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let sans = cert_sans(b.serving.cert_der().unwrap().as_ref()).unwrap();
    for want in [
        "DNS:localhost",
        "IP:127.0.0.1",
        "IP:::1",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "IP:10.96.0.1",
        "DNS:api.example.com",
    ] {
        assert!(sans.contains(want), "{want} missing from {sans:?}");
    }
    let (_, ca) = x509_parser::parse_x509_certificate(a.ca_der().as_ref()).unwrap();
    let cn = ca
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert!(cn.starts_with("berth-ca@"), "{cn}");
    assert!(ca.is_ca());
}

#[test]
fn san_change_reissues_only_serving_cert() {
    let dir = tempfile::tempdir().unwrap();
    let a = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
    let b = ClusterPki::load_or_create(
        dir.path(),
        &["10.1.2.3".into(), "Berth.Example".into()],
        None,
    )
    .unwrap();
    assert_eq!(a.ca_pem(), b.ca_pem());
    assert_eq!(read(dir.path(), "ca.key"), a.ca.key_pem);
    assert_eq!(a.admin_cert_pem(), b.admin_cert_pem());
    assert_ne!(a.serving_cert_pem(), b.serving_cert_pem());
    let sans = cert_sans(b.serving.cert_der().unwrap().as_ref()).unwrap();
    assert!(
        sans.contains("IP:10.1.2.3") && sans.contains("DNS:berth.example"),
        "{sans:?}"
    );
    assert!(signed_by(
        b.serving.cert_der().unwrap().as_ref(),
        b.ca_der().as_ref()
    ));
    // Same set again (order and case do not matter): reused.
    let c = ClusterPki::load_or_create(
        dir.path(),
        &["berth.example".into(), "10.1.2.3".into()],
        None,
    )
    .unwrap();
    assert_eq!(b.serving_cert_pem(), c.serving_cert_pem());
}

#[test]
fn invalid_san_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        ClusterPki::load_or_create(dir.path(), &["bad name!".into()], None),
        Err(PkiError::InvalidSan(_))
    ));
}

#[test]
fn ca_hash_is_sha256_of_spki() {
    use rcgen::PublicKeyData;
    let dir = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
    let key = KeyPair::from_pem(&pki.ca.key_pem).unwrap();
    let want: String = Sha256::digest(key.subject_public_key_info())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(pki.ca_hash(), format!("sha256:{want}"));
}

#[test]
fn client_cert_groups() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
    let (cert, key) = pki
        .issue_client_cert(
            "system:node:n1",
            &["system:nodes", "extra"],
            Duration::from_secs(3600),
        )
        .unwrap();
    assert!(PrivateKeyDer::from_pem_slice(key.as_bytes()).is_ok());
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    assert!(signed_by(der.as_ref(), pki.ca_der().as_ref()));
    let user = ClientCertAuthenticator
        .authenticate(&Credentials {
            client_certs: &[der],
            authorization: None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "system:node:n1");
    assert_eq!(
        user.groups,
        vec!["system:nodes", "extra", "system:authenticated"]
    );
    assert!(matches!(
        pki.issue_client_cert("x", &["a", "b", "c"], Duration::from_secs(60)),
        Err(PkiError::TooManyOrganizations(3))
    ));
    let (serving, _) = pki
        .issue_serving_cert(
            &["n1".into(), "192.168.1.5".into()],
            Duration::from_secs(3600),
        )
        .unwrap();
    let sans = cert_sans(
        CertificateDer::from_pem_slice(serving.as_bytes())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    assert_eq!(
        sans,
        BTreeSet::from(["DNS:n1".to_string(), "IP:192.168.1.5".to_string()])
    );
}

/// Runs a TLS handshake over an in-memory pipe; returns the server side's peer certificates.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let (c, s) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(client);
    let server_task = tokio::spawn(async move {
        let mut tls = acceptor.accept(s).await.map_err(|e| e.to_string())?;
        let peers = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(peers)
    });
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let client_result = async {
        let mut tls = connector
            .connect(name, c)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(buf)
    }
    .await;
    let server_result = server_task.await.map_err(|e| e.to_string())?;
    let peers = server_result?;
    assert_eq!(&client_result?, b"pong");
    Ok(peers)
}

#[tokio::test]
async fn handshake_with_written_kubeconfig_authenticates_admin() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, "https://127.0.0.1:6443")
        .unwrap();
    let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (client, url) = client_config_from_kubeconfig(&kubeconfig).unwrap();
    assert_eq!(url, "https://127.0.0.1:6443");
    let server = pki.server_config().unwrap();
    assert_eq!(
        server.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
    let peers = handshake(server, client).await.unwrap();
    assert_eq!(peers.len(), 1);
    let user = ClientCertAuthenticator
        .authenticate(&Credentials {
            client_certs: &peers,
            authorization: None,
        })
        .unwrap()
        .unwrap();
    assert_eq!(user.name, "berth-admin");
    assert!(user.groups.iter().any(|g| g == "system:masters"));
    assert!(user.groups.iter().any(|g| g == "system:authenticated"));
}

fn client_with(roots_from: &ClusterPki, cert: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(roots_from.ca_der().clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match cert {
        Some((c, k)) => b
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(k.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    })
}

#[tokio::test]
async fn foreign_client_cert_is_rejected_and_no_cert_is_admitted() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(ours.path(), &[], None).unwrap();
    let other = ClusterPki::load_or_create(theirs.path(), &[], None).unwrap();
    let (cert, key) = other
        .issue_client_cert("mallory", &["system:masters"], Duration::from_secs(3600))
        .unwrap();
    let err = handshake(
        pki.server_config().unwrap(),
        client_with(&pki, Some((&cert, &key))),
    )
    .await;
    assert!(err.is_err(), "foreign client certificate was accepted");
    // Without a client certificate the handshake succeeds and no peer certificate is seen.
    let peers = handshake(pki.server_config().unwrap(), client_with(&pki, None))
        .await
        .unwrap();
    assert!(peers.is_empty());
    // A client trusting another CA refuses our server.
    assert!(
        handshake(pki.server_config().unwrap(), client_with(&other, None))
            .await
            .is_err()
    );
}

#[test]
fn kubeconfig_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k");
    std::fs::write(&p, "apiVersion: v1\n").unwrap();
    assert!(matches!(
        client_config_from_kubeconfig(&p),
        Err(PkiError::Kubeconfig { .. })
    ));
    std::fs::write(&p, r#"{"current-context":"x","contexts":[]}"#).unwrap();
    assert!(matches!(
        client_config_from_kubeconfig(&p),
        Err(PkiError::Kubeconfig { .. })
    ));
}

#[test]
fn proc_parsers() {
    let fib = "Main:\n  +-- 0.0.0.0/0 3 0 4\n     |-- 0.0.0.0\n        /0 universe UNICAST\n        \
               +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.1\n              /32 host LOCAL\n           \
               |-- 172.17.0.0\n              /16 link UNICAST\n           |-- 172.17.0.1\n              \
               /32 host LOCAL\n        |-- 172.17.255.255\n           /32 link BROADCAST\nLocal:\n           \
               |-- 172.17.0.1\n              /32 host LOCAL\n";
    assert_eq!(parse_fib_trie(fib), vec![Ipv4Addr::new(172, 17, 0, 1)]);
    let inet6 = "00000000000000000000000000000001 01 80 10 80       lo\n\
                 fd000000000000000000000000000002 04 40 00 82     eth0\n\
                 fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n";
    assert_eq!(
        parse_if_inet6(inet6),
        vec!["fd00::2".parse::<Ipv6Addr>().unwrap()]
    );
}

/// Real kubectl (when installed) accepts the serving certificate and the written kubeconfig,
/// and the server sees the admin's client certificate.
#[tokio::test]
async fn kubectl_reads_version_with_written_kubeconfig() {
    let Ok(kubectl) = std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
    else {
        eprintln!("kubectl not installed; skipping");
        return;
    };
    assert!(kubectl.status.success());
    let dir = tempfile::tempdir().unwrap();
    let pki = ClusterPki::load_or_create(dir.path(), &[], None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubeconfig = dir.path().join("kubeconfig");
    pki.write_admin_kubeconfig(&kubeconfig, &format!("https://127.0.0.1:{port}"))
        .unwrap();
    // This tiny server speaks HTTP/1.1 only.
    let mut config = (*pki.server_config().unwrap()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    // kubectl's dispatcher asks /version first, then kubectl proper: serve every connection.
    let server = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let peers = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let user = ClientCertAuthenticator.authenticate(&Credentials {
                client_certs: &peers,
                authorization: None,
            });
            let _ = seen_tx.send((
                String::from_utf8_lossy(&req).into_owned(),
                user.ok().flatten(),
            ));
            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0-berth"}"#;
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(resp.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    let out = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--request-timeout=5s", "get", "--raw", "/version"])
        .output()
        .await
        .unwrap();
    server.abort();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("v1.33.0-berth"));
    let mut seen = Vec::new();
    while let Ok(s) = seen_rx.try_recv() {
        seen.push(s);
    }
    assert!(!seen.is_empty());
    for (req, user) in seen {
        assert!(req.starts_with("GET /version"), "{req}");
        let user = user.expect("kubectl presented the admin certificate");
        assert_eq!(user.name, "berth-admin");
        assert!(user.groups.iter().any(|g| g == "system:masters"));
    }
}
