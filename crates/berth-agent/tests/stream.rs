//! The agent's streaming endpoint end to end: TLS with client certificates, container logs,
//! exec over WebSocket (`v5.channel.k8s.io`) and port-forward (SPDY/3.1 in WebSocket), through
//! a client written here as the API server's would be.
//!
//! The tests on [`FakeRuntime`] always run; the ones on the real dockerd skip loudly when
//! `docker info` fails, unless `CI=true`, where that is a failure. Docker tests use their own
//! cluster UID, network and /24 out of 10.245.0.0/16 and remove what they made.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_agent::runtime::image::{DEFAULT_BUSYBOX_PATH, busybox_image_tar};
use berth_agent::runtime::{
    ContainerRuntime, ContainerSpec, ContainerState, DnsConfig, DockerRuntime, ExecOutput,
    FakeRuntime, Ipv4Cidr, LogChunk, NetworkSpec, SandboxId, SandboxSpec, StreamKind, labels,
};
use berth_agent::stream::spdy::{self, FLAG_FIN, Frame};
use berth_agent::stream::websocket::{self, Message, Role, WsReader, WsWriter};
use berth_agent::stream::{self as agent_stream, APISERVER_CLIENT_CN, PORT_FORWARD_PROTOCOL};
use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::sync::oneshot;

const IMAGE: &str = "berth-test/busybox:1";

// ---------------------------------------------------------------------------------------------
// Certificates, server and client.

struct Certs {
    ca_pem: String,
    server: (String, String),
    apiserver: (String, String),
    stranger: (String, String),
}

fn certs() -> Certs {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "stream-test-ca");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |sans: Vec<String>, cn: &str, server: bool| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    Certs {
        ca_pem: ca_cert.pem(),
        server: leaf(vec!["127.0.0.1".into(), "node-1".into()], "node-1", true),
        apiserver: leaf(Vec::new(), APISERVER_CLIENT_CN, false),
        stranger: leaf(Vec::new(), "system:node:node-2", false),
    }
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(runtime: Arc<dyn ContainerRuntime>, certs: &Certs) -> Server {
    let tls = agent_stream::server_tls_config(
        certs.server.0.as_bytes(),
        certs.server.1.as_bytes(),
        certs.ca_pem.as_bytes(),
    )
    .expect("server TLS config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(agent_stream::serve(listener, tls, runtime, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stop: Some(stop),
    }
}

#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

type Upgrade = (
    WsReader<ReadHalf<TokioIo<Upgraded>>>,
    WsWriter<WriteHalf<TokioIo<Upgraded>>>,
    String,
);

impl Client {
    fn new(server: &Server, certs: &Certs, identity: &(String, String)) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(certs.ca_pem.as_bytes()).expect("ca pem"))
            .expect("root");
        let chain = vec![CertificateDer::from_pem_slice(identity.0.as_bytes()).expect("cert")];
        let key = PrivateKeyDer::from_pem_slice(identity.1.as_bytes()).expect("key");
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
        Self {
            addr: server.addr,
            tls: Arc::new(tls),
        }
    }

    async fn send(&self, req: Request<Empty<Bytes>>) -> Response<Incoming> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("connect");
        let name = rustls::pki_types::ServerName::IpAddress(self.addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(Arc::clone(&self.tls))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn.with_upgrades());
        sender.send_request(req).await.expect("request")
    }

    async fn get(&self, path: &str) -> Response<Incoming> {
        self.send(
            Request::get(path)
                .header("host", "node-1")
                .body(Empty::new())
                .expect("request"),
        )
        .await
    }

    /// GET and read the whole body as text.
    async fn text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A WebSocket upgrade offering `protocols`; the error is the refusal's status and body.
    async fn upgrade(&self, path: &str, protocols: &str) -> Result<Upgrade, (StatusCode, String)> {
        let key = websocket::new_key();
        let response = self
            .send(
                Request::get(path)
                    .header("host", "node-1")
                    .header("connection", "Upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", &key)
                    .header("sec-websocket-protocol", protocols)
                    .body(Empty::new())
                    .expect("request"),
            )
            .await;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            return Err((status, String::from_utf8_lossy(&body).into_owned()));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(header("sec-websocket-accept"), websocket::accept_key(&key));
        let protocol = header("sec-websocket-protocol");
        let upgraded = hyper::upgrade::on(response).await.expect("upgraded");
        let (r, w) = tokio::io::split(TokioIo::new(upgraded));
        Ok((
            WsReader::new(r, Role::Client, BytesMut::new(), 1 << 24),
            WsWriter::new(w, Role::Client),
            protocol,
        ))
    }
}

/// What an exec session delivered.
#[derive(Debug, Default)]
struct ExecResult {
    first: Option<Vec<u8>>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<Value>,
    closed: bool,
}

async fn read_exec(reader: &mut WsReader<ReadHalf<TokioIo<Upgraded>>>) -> ExecResult {
    let mut out = ExecResult::default();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = reader.next().await.expect("websocket") {
            match message {
                Message::Binary(data) => {
                    if out.first.is_none() {
                        out.first = Some(data.to_vec());
                    }
                    match data.first() {
                        Some(1) => out.stdout.extend_from_slice(&data[1..]),
                        Some(2) => out.stderr.extend_from_slice(&data[1..]),
                        Some(3) => {
                            out.status = Some(serde_json::from_slice(&data[1..]).expect("status"))
                        }
                        other => panic!("unexpected channel {other:?}"),
                    }
                }
                Message::Close(code) => {
                    assert_eq!(code.map(|c| c.0), Some(1000));
                    out.closed = true;
                    break;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("exec finished in time");
    out
}

fn exit_code(status: &Value) -> i64 {
    match status["status"].as_str() {
        Some("Success") => 0,
        _ => {
            assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
            status["details"]["causes"][0]["message"]
                .as_str()
                .and_then(|m| m.parse().ok())
                .expect("exit code cause")
        }
    }
}

/// A SPDY session over a port-forward WebSocket, client side.
struct SpdyClient {
    reader: WsReader<ReadHalf<TokioIo<Upgraded>>>,
    writer: WsWriter<WriteHalf<TokioIo<Upgraded>>>,
    encoder: spdy::Encoder,
    decoder: spdy::Decoder,
    buf: BytesMut,
}

impl SpdyClient {
    fn new(upgrade: Upgrade) -> Self {
        let (reader, writer, protocol) = upgrade;
        assert_eq!(protocol, PORT_FORWARD_PROTOCOL);
        Self {
            reader,
            writer,
            encoder: spdy::Encoder::new().expect("encoder"),
            decoder: spdy::Decoder::new(),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut wire = BytesMut::new();
        self.encoder.encode(&frame, &mut wire).expect("encode");
        self.writer.binary(&wire).await.expect("send");
    }

    async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(frame) = self.decoder.decode(&mut self.buf).expect("decode") {
                    return Some(frame);
                }
                match self.reader.next().await.expect("websocket")? {
                    Message::Binary(b) => self.buf.extend_from_slice(&b),
                    Message::Close(_) => return None,
                    _ => {}
                }
            }
        })
        .await
        .expect("a frame in time")
    }

    async fn open(&mut self, id: u32, kind: &str, port: u16, request: u32) {
        self.send(Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: vec![
                ("streamType".into(), kind.into()),
                ("port".into(), port.to_string()),
                ("requestID".into(), request.to_string()),
            ],
        })
        .await;
        match self.recv().await {
            Some(Frame::SynReply { stream_id, .. }) => assert_eq!(stream_id, id),
            other => panic!("expected SYN_REPLY for {id}, got {other:?}"),
        }
    }

    /// Opens an error and a data stream for `port` as kubectl does (the error stream is closed
    /// for writing at once).
    async fn connect(&mut self, error: u32, data: u32, port: u16, request: u32) {
        self.open(error, "error", port, request).await;
        self.send(Frame::Data {
            stream_id: error,
            flags: FLAG_FIN,
            data: Bytes::new(),
        })
        .await;
        self.open(data, "data", port, request).await;
    }

    /// Reads data frames until the data stream ends and the error stream closes; returns the
    /// bytes of each.
    async fn drain(&mut self, error: u32, data: u32) -> (Vec<u8>, Vec<u8>) {
        let (mut got, mut errors) = (Vec::new(), Vec::new());
        let (mut data_done, mut error_done) = (false, false);
        while !(data_done && error_done) {
            match self.recv().await {
                Some(Frame::Data {
                    stream_id,
                    flags,
                    data: bytes,
                }) => {
                    if stream_id == data {
                        got.extend_from_slice(&bytes);
                        if flags & FLAG_FIN != 0 {
                            data_done = true;
                            // What kubectl does when the remote side is done.
                            self.send(Frame::RstStream {
                                stream_id: data,
                                status: spdy::rst::CANCEL,
                            })
                            .await;
                        }
                    } else if stream_id == error {
                        errors.extend_from_slice(&bytes);
                        error_done |= flags & FLAG_FIN != 0;
                    }
                }
                Some(Frame::Ping { .. }) | Some(Frame::SynReply { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        (got, errors)
    }
}

// ---------------------------------------------------------------------------------------------
// On the fake runtime.

async fn fake_pod(rt: &FakeRuntime) -> String {
    rt.add_image("pause", "sha256:p");
    rt.add_image("img", "sha256:i");
    rt.add_image(IMAGE, "sha256:b");
    rt.ensure_network(&NetworkSpec {
        name: "net".into(),
        subnet: "10.9.0.0/24".parse().expect("cidr"),
        gateway: "10.9.0.1".parse().expect("ip"),
        labels: BTreeMap::new(),
    })
    .await
    .expect("network");
    let sandbox = rt
        .create_sandbox(&sandbox_spec("web", "net", None))
        .await
        .expect("sandbox");
    let id = rt
        .create_container(&ContainerSpec::new("app", sandbox, "img"))
        .await
        .expect("container");
    rt.start(&id).await.expect("start");
    id
}

#[tokio::test]
async fn only_the_api_server_is_served() {
    let certs = certs();
    let rt = Arc::new(FakeRuntime::new());
    let server = start(rt.clone(), &certs).await;
    let stranger = Client::new(&server, &certs, &certs.stranger);
    let (status, body) = stranger.text("/healthz").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("only the API server"), "{body}");
    let apiserver = Client::new(&server, &certs, &certs.apiserver);
    assert_eq!(
        apiserver.text("/healthz").await,
        (StatusCode::OK, "ok".into())
    );
    let (status, body) = apiserver.text("/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let status: Value = serde_json::from_str(&body).expect("Status");
    assert_eq!(status["kind"], "Status");
    // Without a client certificate the handshake fails.
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates({
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(certs.ca_pem.as_bytes()).expect("ca"))
            .expect("root");
        roots
    })
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let refused = async {
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(anonymous))
            .connect(
                rustls::pki_types::ServerName::IpAddress(server.addr.ip().into()),
                tcp,
            )
            .await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(!matches!(refused, Ok(n) if n > 0), "{refused:?}");
    // Bad certificate material is an error, not a panic.
    assert!(agent_stream::server_tls_config(b"nope", b"nope", b"nope").is_err());
}

#[tokio::test]
async fn logs_and_exec_on_the_fake_runtime() {
    let certs = certs();
    let rt = Arc::new(FakeRuntime::new());
    let id = fake_pod(&rt).await;
    let t0: jiff::Timestamp = "2024-03-04T05:06:07.25Z".parse().expect("time");
    rt.script_logs(
        &id,
        ["one\n", "two\n", "three\n"]
            .iter()
            .enumerate()
            .map(|(i, l)| LogChunk {
                stream: if i == 1 {
                    StreamKind::Stderr
                } else {
                    StreamKind::Stdout
                },
                data: Bytes::from_static(l.as_bytes()),
                timestamp: Some(t0 + jiff::SignedDuration::from_secs(i as i64)),
            })
            .collect(),
    );
    let server = start(rt.clone(), &certs).await;
    let client = Client::new(&server, &certs, &certs.apiserver);
    let logs = "/containerLogs/default/web/app";
    assert_eq!(
        client.text(logs).await,
        (StatusCode::OK, "one\ntwo\nthree\n".into())
    );
    assert_eq!(
        client.text(&format!("{logs}?tailLines=2")).await.1,
        "two\nthree\n"
    );
    assert_eq!(
        client
            .text(&format!("{logs}?tailLines=1&timestamps=true"))
            .await
            .1,
        "2024-03-04T05:06:09.250000000Z three\n"
    );
    assert_eq!(
        client.text(&format!("{logs}?limitBytes=6")).await.1,
        "one\ntw"
    );
    let (status, body) = client.text(&format!("{logs}?previous=true")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains(r#"previous terminated container \"app\" in pod \"web\" not found"#),
        "{body}"
    );
    let (status, body) = client.text(&format!("{logs}?sinceSeconds=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = client.text("/containerLogs/default/web/nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("is not available"), "{body}");

    // Exec: output on channels 1 and 2, then the exit code as a NonZeroExitCode status.
    rt.script_exec(
        &["sh", "-c", "exit 3"],
        ExecOutput {
            exit_code: 3,
            stdout: b"out\n".to_vec(),
            stderr: b"err\n".to_vec(),
        },
    );
    let exec = "/exec/default/web/app?command=sh&command=-c&command=exit+3&stdout=true&stderr=true";
    let (mut reader, _writer, protocol) = client
        .upgrade(exec, "v5.channel.k8s.io, v4.channel.k8s.io")
        .await
        .expect("upgrade");
    assert_eq!(protocol, "v5.channel.k8s.io");
    let result = read_exec(&mut reader).await;
    assert_eq!(result.first, Some(vec![1]), "an empty stdout message first");
    assert_eq!(result.stdout, b"out\n");
    assert_eq!(result.stderr, b"err\n");
    let status = result.status.expect("status");
    assert_eq!(exit_code(&status), 3);
    assert!(result.closed);

    // The Python client's v4.
    let (mut reader, _writer, protocol) = client
        .upgrade(exec, "v4.channel.k8s.io")
        .await
        .expect("upgrade");
    assert_eq!(protocol, "v4.channel.k8s.io");
    assert_eq!(
        exit_code(&read_exec(&mut reader).await.status.expect("status")),
        3
    );

    // Refusals answer with a Status and no upgrade.
    let (status, body) = client
        .upgrade(exec, "v3.channel.k8s.io")
        .await
        .expect_err("refused");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = client
        .upgrade(
            "/exec/default/web/app?command=ls&stdout=true",
            "v5.channel.k8s.io",
        )
        .await
        .expect_err("refused");
    // An unscripted exec is an engine error (500) on the fake.
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let (status, body) = client
        .upgrade(
            "/exec/default/web/gone?command=ls&stdout=true",
            "v5.channel.k8s.io",
        )
        .await
        .expect_err("refused");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains(r#"container not found (\"gone\")"#), "{body}");
    let (status, body) = client
        .upgrade("/exec/default/web/app?stdout=true", "v5.channel.k8s.io")
        .await
        .expect_err("refused");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = client
        .text("/exec/default/web/app?command=ls&stdout=true")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "exec without an upgrade");
    let (status, body) = client
        .upgrade("/portForward/default/nobody", PORT_FORWARD_PROTOCOL)
        .await
        .expect_err("refused");
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

// ---------------------------------------------------------------------------------------------
// On the real dockerd.

fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "`docker info` fails and CI=true: the Docker streaming tests must run in CI"
        );
        eprintln!("SKIPPED: `docker info` fails; Docker streaming tests did not run");
    }
    ok
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Removes the test's containers and network when dropped.
struct Cleanup {
    cluster_uid: String,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(out) = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label={}={}", labels::CLUSTER, self.cluster_uid),
            ])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network])
            .output();
    }
}

fn sandbox_spec(pod: &str, network: &str, ip: Option<Ipv4Addr>) -> SandboxSpec {
    SandboxSpec {
        pod_uid: unique("uid"),
        pod_name: pod.to_owned(),
        pod_namespace: "default".to_owned(),
        attempt: 0,
        labels: BTreeMap::new(),
        image: IMAGE.to_owned(),
        network: network.to_owned(),
        ip,
        hostname: pod.to_owned(),
        dns: DnsConfig::default(),
        port_mappings: Vec::new(),
        cgroup_parent: None,
    }
}

fn sh(name: &str, sandbox: &SandboxId, restart_count: u32, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(name, sandbox.clone(), IMAGE);
    spec.command = vec!["/bin/sh".to_owned(), "-c".to_owned()];
    spec.args = vec![script.to_owned()];
    spec.restart_count = restart_count;
    spec
}

async fn docker_setup() -> Option<(Arc<DockerRuntime>, String, Cleanup)> {
    if !docker_available() {
        return None;
    }
    let cluster_uid = unique("stream-test");
    let network = unique("berth-stream");
    let cleanup = Cleanup {
        cluster_uid: cluster_uid.clone(),
        network: network.clone(),
    };
    let rt = DockerRuntime::connect(cluster_uid, "node-1")
        .await
        .expect("connect to dockerd");
    let tar = busybox_image_tar(Path::new(DEFAULT_BUSYBOX_PATH)).expect("build context");
    rt.build_image_from_tar(IMAGE, tar).await.expect("image");
    for _ in 0..20 {
        let third = rand::random::<u8>();
        let spec = NetworkSpec {
            name: network.clone(),
            subnet: Ipv4Cidr::new(Ipv4Addr::new(10, 245, third, 0), 24).expect("cidr"),
            gateway: Ipv4Addr::new(10, 245, third, 1),
            labels: BTreeMap::new(),
        };
        if rt.ensure_network(&spec).await.is_ok() {
            return Some((Arc::new(rt), network, cleanup));
        }
    }
    panic!("no free /24 in 10.245.0.0/16");
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_and_port_forward_on_docker() {
    let Some((rt, network, _cleanup)) = docker_setup().await else {
        return;
    };
    let certs = certs();
    let sandbox = rt
        .create_sandbox(&sandbox_spec("web", &network, None))
        .await
        .expect("sandbox");
    // A first run that exits, then the current one: `previous` reaches the first.
    let first = rt
        .create_container(&sh("app", &sandbox, 0, "echo first-run"))
        .await
        .expect("first");
    rt.start(&first).await.expect("start first");
    wait_for("the first run exits", Duration::from_secs(20), async || {
        matches!(
            rt.inspect(&first).await.expect("inspect").state,
            ContainerState::Exited { .. }
        )
    })
    .await;
    // Docker copies stdout and stderr separately, so the stderr line waits a
    // little to keep the order of the three lines fixed.
    let app = rt
        .create_container(&sh(
            "app",
            &sandbox,
            1,
            "mkdir -p /www && echo hello-through-port-forward > /www/index.html; \
             echo one; echo two; sleep 0.2; echo three >&2; exec httpd -f -p 8080 -h /www",
        ))
        .await
        .expect("app");
    rt.start(&app).await.expect("start app");

    let server = start(rt.clone(), &certs).await;
    let client = Client::new(&server, &certs, &certs.apiserver);
    let logs = "/containerLogs/default/web/app";
    wait_for("three lines of logs", Duration::from_secs(20), async || {
        let (_, got) = client.text(logs).await;
        if got != "one\ntwo\nthree\n" {
            eprintln!("logs so far: {got:?}");
        }
        got == "one\ntwo\nthree\n"
    })
    .await;
    assert_eq!(
        client.text(&format!("{logs}?tailLines=1")).await.1,
        "three\n"
    );
    assert_eq!(
        client.text(&format!("{logs}?limitBytes=6")).await.1,
        "one\ntw"
    );
    assert_eq!(
        client.text(&format!("{logs}?previous=true")).await,
        (StatusCode::OK, "first-run\n".into())
    );
    let stamped = client.text(&format!("{logs}?timestamps=true")).await.1;
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 3, "{stamped}");
    for (line, text) in lines.iter().zip(["one", "two", "three"]) {
        let (ts, rest) = line.split_once(' ').expect("timestamp prefix");
        assert_eq!(rest, text);
        assert_eq!(ts.len(), "2024-01-01T00:00:00.000000000Z".len(), "{ts}");
        assert!(
            ts.ends_with('Z') && ts.parse::<jiff::Timestamp>().is_ok(),
            "{ts}"
        );
    }
    let (status, _) = client.text(&format!("{logs}?sinceSeconds=3600")).await;
    assert_eq!(status, StatusCode::OK);

    // Follow: what the container writes later arrives on the open stream.
    let mut follow = client.get(&format!("{logs}?follow=true")).await.into_body();
    let mut seen = String::new();
    let read_until = async |body: &mut Incoming, seen: &mut String, want: &str| {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !seen.contains(want) {
                let frame = body.frame().await.expect("open stream").expect("frame");
                if let Ok(data) = frame.into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{want:?} did not arrive; got {seen:?}"));
    };
    read_until(&mut follow, &mut seen, "three\n").await;
    let out = rt
        .exec_output(
            &app,
            &["sh".into(), "-c".into(), "echo four > /proc/1/fd/1".into()],
            Duration::from_secs(10),
        )
        .await
        .expect("write to the container's stdout");
    assert_eq!(out.exit_code, 0, "{out:?}");
    read_until(&mut follow, &mut seen, "four\n").await;
    drop(follow);

    // Exec: streams and exit code.
    let (mut reader, _writer, _) = client
        .upgrade(
            "/exec/default/web/app?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3&stdout=true&stderr=true",
            "v5.channel.k8s.io",
        )
        .await
        .expect("exec");
    let result = read_exec(&mut reader).await;
    assert_eq!(result.stdout, b"out\n");
    assert_eq!(result.stderr, b"err\n");
    assert_eq!(exit_code(&result.status.expect("status")), 3);

    // Stdin, closed with the v5 close signal.
    let (mut reader, mut writer, _) = client
        .upgrade(
            "/exec/default/web/app?command=cat&stdin=true&stdout=true&stderr=true",
            "v5.channel.k8s.io",
        )
        .await
        .expect("exec cat");
    writer.binary(b"\x00hello ").await.expect("stdin");
    writer.binary(b"\x00world").await.expect("stdin");
    writer.binary(&[255, 0]).await.expect("close stdin");
    let result = read_exec(&mut reader).await;
    assert_eq!(result.stdout, b"hello world");
    assert_eq!(exit_code(&result.status.expect("status")), 0);

    // A terminal: resized through channel 4. Until the resize lands the terminal
    // has no size and `stty size` complains, so its stderr is dropped.
    let (mut reader, mut writer, _) = client
        .upgrade(
            "/exec/default/web/app?command=sh&command=-c&command=for+i+in+%24%28seq+1+100%29%3B+do+s%3D%24%28stty+size+2%3E%2Fdev%2Fnull%29%3B+%5B+%22%24s%22+%3D+%2233+99%22+%5D+%26%26+break%3B+sleep+0.05%3B+done%3B+echo+%24s&stdin=true&stdout=true&tty=true",
            "v5.channel.k8s.io",
        )
        .await
        .expect("exec tty");
    writer
        .binary(b"\x04{\"Width\":99,\"Height\":33}")
        .await
        .expect("resize");
    let result = read_exec(&mut reader).await;
    assert_eq!(String::from_utf8_lossy(&result.stdout).trim(), "33 99");

    // Port-forward: HTTP through the tunnel to httpd in the pod.
    let mut pf = SpdyClient::new(
        client
            .upgrade("/portForward/default/web", PORT_FORWARD_PROTOCOL)
            .await
            .expect("port-forward"),
    );
    pf.send(Frame::Ping { id: 1 }).await;
    assert_eq!(pf.recv().await, Some(Frame::Ping { id: 1 }));
    wait_for("httpd listens", Duration::from_secs(20), async || {
        let ip = rt
            .inspect(&sandbox.0)
            .await
            .expect("sandbox")
            .ip
            .expect("ip");
        tokio::net::TcpStream::connect((ip, 8080)).await.is_ok()
    })
    .await;
    for (request, (error, data)) in [(1, 3), (5, 7)].into_iter().enumerate() {
        pf.connect(error, data, 8080, request as u32).await;
        pf.send(Frame::Data {
            stream_id: data,
            flags: 0,
            data: Bytes::from_static(b"GET /index.html HTTP/1.0\r\n\r\n"),
        })
        .await;
        let (body, errors) = pf.drain(error, data).await;
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.starts_with("HTTP/1.") && body.contains("hello-through-port-forward"),
            "{body}"
        );
        assert!(errors.is_empty(), "{}", String::from_utf8_lossy(&errors));
    }
    // Nothing listens on port 9: the error stream says so.
    pf.connect(9, 11, 9, 7).await;
    let (_, errors) = pf.drain(9, 11).await;
    let errors = String::from_utf8_lossy(&errors);
    assert!(
        errors.starts_with("error forwarding port 9 to pod default/web"),
        "{errors}"
    );
}
