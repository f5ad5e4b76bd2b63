//! `/portForward/{namespace}/{pod}`: `kubectl port-forward` over a WebSocket whose binary
//! messages carry a SPDY/3.1 session (subprotocol `SPDY/3.1+portforward.k8s.io`), and the
//! WebSocket channel protocol of other clients in [`channels`].
//!
//! Owns the session: every forwarded connection is a pair of client-opened streams with the
//! same `requestID` header, an `error` stream and a `data` stream, both naming the pod `port`.
//! Each pair gets a TCP connection to the pod's IP (the sandbox's address on the node's pod
//! network); bytes flow both ways on the data stream, a failure is reported as text on the
//! error stream, and the error stream is closed when the connection is done (the client waits
//! for that). Pings are answered.
//!
//! Must not: open streams of its own or forward to anything but the pod's address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::spdy::{self, FLAG_FIN, Frame};
use super::websocket::{self, Message, Opcode, Role, WsReader, WsWriter};
use super::{Body, PORT_FORWARD_PROTOCOL, PodRef, StreamError, channel, full};
use crate::runtime::{ContainerRuntime, SummaryState, labels};

mod channels;

/// How long connecting to the pod may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest data frame sent.
const CHUNK: usize = 32 * 1024;

pub(super) async fn port_forward(
    runtime: Arc<dyn ContainerRuntime>,
    mut req: Request<Incoming>,
    pod: PodRef,
) -> Result<Response<Body>, StreamError> {
    let key = websocket::client_key(req.headers()).map_err(|e| {
        StreamError::bad_request(format!(
            "port-forward needs a WebSocket upgrade with {PORT_FORWARD_PROTOCOL}: {e}"
        ))
    })?;
    let offered = websocket::offered_protocols(req.headers());
    let mode = if offered.iter().any(|p| p == PORT_FORWARD_PROTOCOL) {
        Mode::Spdy
    } else if let Some(protocol) = channels::negotiate(&offered) {
        let ports = channels::parse_ports(&super::Params(super::query_pairs(&req)).all("ports"))
            .map_err(StreamError::bad_request)?;
        Mode::Channels(protocol, ports)
    } else {
        return Err(StreamError::bad_request(format!(
            "none of the offered subprotocols {offered:?} is supported: use {PORT_FORWARD_PROTOCOL} or {}",
            channel::Protocol::V4.name()
        )));
    };
    let protocol = match &mode {
        Mode::Spdy => PORT_FORWARD_PROTOCOL,
        Mode::Channels(p, _) => p.name(),
    };
    let ip = pod_ip(runtime.as_ref(), &pod).await?;
    let name = format!("{}/{}", pod.namespace, pod.name);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                match mode {
                    Mode::Spdy => run(r, w, ip, name).await,
                    Mode::Channels(_, ports) => channels::run(r, w, ip, name, ports).await,
                }
            }
            Err(e) => tracing::debug!(error = %e, "port-forward: upgrade failed"),
        }
    });
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        "sec-websocket-accept",
        HeaderValue::from_str(&websocket::accept_key(&key))
            .map_err(|e| StreamError::bad_request(e.to_string()))?,
    );
    h.insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
    Ok(response)
}

/// The protocol a port-forward request negotiated.
enum Mode {
    /// SPDY/3.1 in WebSocket messages (kubectl).
    Spdy,
    /// The channel protocol, with the ports of the query.
    Channels(channel::Protocol, Vec<u16>),
}

/// The IP of the pod's running sandbox (the newest, should there be several).
async fn pod_ip(runtime: &dyn ContainerRuntime, pod: &PodRef) -> Result<IpAddr, StreamError> {
    let sandboxes = runtime.list(&pod.labels(labels::KIND_SANDBOX)).await?;
    let newest = sandboxes
        .iter()
        .filter(|s| s.state == SummaryState::Running)
        .max_by_key(|s| s.created_unix)
        .ok_or_else(|| {
            StreamError::not_found(format!(
                "pod {}/{} has no running sandbox on this node",
                pod.namespace, pod.name
            ))
        })?;
    let status = runtime.inspect(&newest.id).await?;
    // A sandbox without an address on the pod network shares the node's network.
    Ok(status
        .ip
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4))
}

/// What the session sends, in order, through the one writer.
#[derive(Debug)]
enum Out {
    Frame(Frame),
    Pong(Bytes),
    Close,
}

/// Half-opened request: the streams seen so far for one `requestID`.
#[derive(Debug, Default)]
struct Pending {
    error: Option<u32>,
    data: Option<(u32, mpsc::Receiver<Bytes>)>,
    port: Option<String>,
}

/// One forwarded connection in progress.
struct Active {
    error_stream: u32,
    reset: Option<oneshot::Sender<()>>,
}

struct Session {
    ip: IpAddr,
    pod: String,
    out: mpsc::Sender<Out>,
    pending: HashMap<String, Pending>,
    /// Data streams still open from the client: where their bytes go.
    to_pod: HashMap<u32, mpsc::Sender<Bytes>>,
    /// By data stream.
    active: HashMap<u32, Active>,
    tasks: JoinSet<u32>,
}

impl Session {
    async fn send(&self, frame: Frame) {
        let _ = self.out.send(Out::Frame(frame)).await;
    }

    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => self.open(stream_id, flags, &headers).await,
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if let Some(tx) = self.to_pod.get(&stream_id) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        self.to_pod.remove(&stream_id);
                    }
                    if flags & FLAG_FIN != 0 {
                        self.to_pod.remove(&stream_id);
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                self.to_pod.remove(&stream_id);
                let data_stream = if self.active.contains_key(&stream_id) {
                    Some(stream_id)
                } else {
                    self.active
                        .iter()
                        .find(|(_, a)| a.error_stream == stream_id)
                        .map(|(d, _)| *d)
                };
                if let Some(d) = data_stream
                    && let Some(active) = self.active.get_mut(&d)
                    && let Some(reset) = active.reset.take()
                {
                    let _ = reset.send(());
                }
                self.pending.retain(|_, p| {
                    p.error != Some(stream_id) && p.data.as_ref().map(|d| d.0) != Some(stream_id)
                });
            }
            Frame::Ping { id } => {
                // Client pings are odd; ours would be even (we send none).
                if id % 2 == 1 {
                    self.send(Frame::Ping { id }).await;
                }
            }
            Frame::SynReply { .. }
            | Frame::Settings { .. }
            | Frame::GoAway { .. }
            | Frame::Headers { .. }
            | Frame::WindowUpdate { .. } => {}
        }
    }

    async fn open(&mut self, stream_id: u32, flags: u8, headers: &spdy::Headers) {
        let stream_type = spdy::header(headers, "streamType").unwrap_or("");
        if stream_type != "error" && stream_type != "data" {
            self.send(Frame::RstStream {
                stream_id,
                status: spdy::rst::PROTOCOL_ERROR,
            })
            .await;
            return;
        }
        self.send(Frame::SynReply {
            stream_id,
            flags: 0,
            headers: Vec::new(),
        })
        .await;
        let request = spdy::header(headers, "requestID").unwrap_or("").to_owned();
        let entry = self.pending.entry(request.clone()).or_default();
        if let Some(port) = spdy::header(headers, "port") {
            entry.port = Some(port.to_owned());
        }
        if stream_type == "error" {
            entry.error = Some(stream_id);
        } else {
            let (tx, rx) = mpsc::channel(16);
            if flags & FLAG_FIN == 0 {
                self.to_pod.insert(stream_id, tx);
            }
            entry.data = Some((stream_id, rx));
        }
        if entry.error.is_some()
            && entry.data.is_some()
            && let Some(Pending {
                error: Some(error_stream),
                data: Some((data_stream, from_client)),
                port,
            }) = self.pending.remove(&request)
        {
            let (reset_tx, reset_rx) = oneshot::channel();
            self.active.insert(
                data_stream,
                Active {
                    error_stream,
                    reset: Some(reset_tx),
                },
            );
            self.tasks.spawn(forward(Forward {
                ip: self.ip,
                port,
                pod: self.pod.clone(),
                data_stream,
                error_stream,
                from_client,
                out: self.out.clone(),
                reset: reset_rx,
            }));
        }
    }

    fn finished(&mut self, data_stream: u32) {
        self.active.remove(&data_stream);
        self.to_pod.remove(&data_stream);
    }
}

struct Forward {
    ip: IpAddr,
    port: Option<String>,
    pod: String,
    data_stream: u32,
    error_stream: u32,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Out>,
    reset: oneshot::Receiver<()>,
}

fn data(stream_id: u32, flags: u8, data: Bytes) -> Out {
    Out::Frame(Frame::Data {
        stream_id,
        flags,
        data,
    })
}

/// The port a SPDY stream's `port` header names.
fn parse_port(port: Option<&str>) -> Result<u16, String> {
    port.and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port {:?}", port.unwrap_or("")))
}

async fn connect(ip: IpAddr, port: u16) -> Result<TcpStream, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((ip, port))).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("dial tcp {ip}:{port}: {e}")),
        Err(_) => Err(format!("dial tcp {ip}:{port}: timed out")),
    }
}

/// Runs one forwarded connection; returns its data stream.
async fn forward(f: Forward) -> u32 {
    let Forward {
        ip,
        port,
        pod,
        data_stream,
        error_stream,
        from_client,
        out,
        reset,
    } = f;
    let conn = match async { connect(ip, parse_port(port.as_deref())?).await }.await {
        Ok(conn) => conn,
        Err(message) => {
            let text = format!(
                "error forwarding port {} to pod {pod}: {message}",
                port.as_deref().unwrap_or("")
            );
            let _ = out.send(data(error_stream, 0, Bytes::from(text))).await;
            let _ = out.send(data(error_stream, FLAG_FIN, Bytes::new())).await;
            let _ = out.send(data(data_stream, FLAG_FIN, Bytes::new())).await;
            return data_stream;
        }
    };
    let _ = conn.set_nodelay(true);
    let (pod_read, pod_write) = conn.into_split();
    let upstream = client_to_pod(from_client, pod_write);
    let downstream_out = out.clone();
    let downstream = async move {
        if pod_to_client(pod_read, &downstream_out, |chunk| {
            data(data_stream, 0, Bytes::copy_from_slice(chunk))
        })
        .await
        {
            let _ = downstream_out
                .send(data(data_stream, FLAG_FIN, Bytes::new()))
                .await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => {}
        _ = reset => {}
    }
    let _ = out.send(data(error_stream, FLAG_FIN, Bytes::new())).await;
    data_stream
}

/// Copies what the client sends to the pod until the client is done, then closes the pod's
/// side for writing.
async fn client_to_pod(mut from_client: mpsc::Receiver<Bytes>, mut pod_write: OwnedWriteHalf) {
    while let Some(bytes) = from_client.recv().await {
        if pod_write.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = pod_write.shutdown().await;
}

/// Sends what the pod writes, chunk by chunk as `wrap` makes it a message, until the pod closes
/// its side (true) or the session is gone (false).
async fn pod_to_client<T>(
    mut pod_read: OwnedReadHalf,
    out: &mpsc::Sender<T>,
    wrap: impl Fn(&[u8]) -> T,
) -> bool {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match pod_read.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(n) => {
                if out.send(wrap(&buf[..n])).await.is_err() {
                    return false;
                }
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(w: W, mut rx: mpsc::Receiver<Out>) {
    let mut writer = WsWriter::new(w, Role::Server);
    let mut encoder = match spdy::Encoder::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "port-forward: no SPDY encoder");
            return;
        }
    };
    let mut buf = BytesMut::new();
    while let Some(out) = rx.recv().await {
        let sent = match out {
            Out::Frame(frame) => {
                buf.clear();
                match encoder.encode(&frame, &mut buf) {
                    Ok(()) => writer.binary(&buf).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "port-forward: frame not encodable");
                        Ok(())
                    }
                }
            }
            Out::Pong(payload) => writer.send(Opcode::Pong, &payload).await,
            Out::Close => {
                let _ = writer.close(websocket::CLOSE_NORMAL, "").await;
                break;
            }
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

/// Runs a port-forward session until the client closes it.
async fn run<R, W>(r: R, w: W, ip: IpAddr, pod: String)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = WsReader::server(r);
    let (out, out_rx) = mpsc::channel(64);
    let writer = tokio::spawn(write_loop(w, out_rx));
    let mut session = Session {
        ip,
        pod,
        out: out.clone(),
        pending: HashMap::new(),
        to_pod: HashMap::new(),
        active: HashMap::new(),
        tasks: JoinSet::new(),
    };
    let mut decoder = spdy::Decoder::new();
    let mut buf = BytesMut::new();
    'session: loop {
        tokio::select! {
            message = reader.next() => match message {
                Ok(Some(Message::Binary(bytes))) => {
                    buf.extend_from_slice(&bytes);
                    loop {
                        match decoder.decode(&mut buf) {
                            Ok(Some(frame)) => session.handle(frame).await,
                            Ok(None) => break,
                            Err(e) => {
                                tracing::debug!(error = %e, "port-forward: bad SPDY input");
                                let _ = out
                                    .send(Out::Frame(Frame::GoAway {
                                        last_good_stream_id: 0,
                                        status: 1,
                                    }))
                                    .await;
                                break 'session;
                            }
                        }
                    }
                }
                Ok(Some(Message::Ping(payload))) => {
                    let _ = out.send(Out::Pong(payload)).await;
                }
                Ok(Some(Message::Text(_) | Message::Pong(_))) => {}
                Ok(Some(Message::Close(_))) | Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad WebSocket input");
                    break;
                }
            },
            Some(done) = session.tasks.join_next(), if !session.tasks.is_empty() => {
                if let Ok(data_stream) = done {
                    session.finished(data_stream);
                }
            }
        }
    }
    session.tasks.abort_all();
    while session.tasks.join_next().await.is_some() {}
    let _ = out.send(Out::Close).await;
    drop(session);
    drop(out);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::spdy::{Decoder, Encoder};

    async fn send(
        w: &mut WsWriter<tokio::io::WriteHalf<tokio::io::DuplexStream>>,
        enc: &mut Encoder,
        frame: Frame,
    ) {
        let mut buf = BytesMut::new();
        enc.encode(&frame, &mut buf).unwrap();
        // Split each frame in two messages, as a client writing field by field does.
        let (a, b) = buf.split_at(buf.len() / 2);
        w.binary(a).await.unwrap();
        w.binary(b).await.unwrap();
    }

    async fn recv(
        r: &mut WsReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
        dec: &mut Decoder,
        buf: &mut BytesMut,
    ) -> Option<Frame> {
        loop {
            if let Some(f) = dec.decode(buf).unwrap() {
                return Some(f);
            }
            match r.next().await.unwrap()? {
                Message::Binary(b) => buf.extend_from_slice(&b),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    fn headers(kind: &str, port: u16, request: &str) -> spdy::Headers {
        vec![
            ("streamtype".into(), kind.into()),
            ("port".into(), port.to_string()),
            ("requestid".into(), request.into()),
        ]
    }

    fn syn(id: u32, kind: &str, port: u16, request: &str) -> Frame {
        Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: headers(kind, port, request),
        }
    }

    #[tokio::test]
    async fn a_session_forwards_bytes_and_reports_errors() {
        // An echo server standing in for the pod.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await.unwrap();
            }
            // Closing after the client's EOF.
        });
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };

        let (client, server) = tokio::io::duplex(1024);
        let (sr, sw) = tokio::io::split(server);
        let session = tokio::spawn(run(sr, sw, IpAddr::V4(Ipv4Addr::LOCALHOST), "ns/p".into()));
        let (cr, cw) = tokio::io::split(client);
        let mut w = WsWriter::new(cw, Role::Client);
        let mut r = WsReader::new(cr, Role::Client, BytesMut::new(), 1 << 20);
        let mut enc = Encoder::new().unwrap();
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();

        send(&mut w, &mut enc, Frame::Ping { id: 1 }).await;
        assert_eq!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::Ping { id: 1 })
        );

        send(&mut w, &mut enc, syn(1, "error", port, "0")).await;
        assert!(matches!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::SynReply { stream_id: 1, .. })
        ));
        send(
            &mut w,
            &mut enc,
            Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
        )
        .await;
        send(&mut w, &mut enc, syn(3, "data", port, "0")).await;
        assert!(matches!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::SynReply { stream_id: 3, .. })
        ));
        send(
            &mut w,
            &mut enc,
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"ping"),
            },
        )
        .await;
        assert_eq!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from_static(b"ping")
            })
        );
        // Half-close: the echo server ends, the data stream ends, then the error stream.
        send(
            &mut w,
            &mut enc,
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
        )
        .await;
        assert_eq!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new()
            })
        );
        assert_eq!(
            recv(&mut r, &mut dec, &mut buf).await,
            Some(Frame::Data {
                stream_id: 1,
                flags: FLAG_FIN,
                data: Bytes::new()
            })
        );

        // A port nothing listens on: the error stream says so.
        send(&mut w, &mut enc, syn(5, "error", closed_port, "1")).await;
        recv(&mut r, &mut dec, &mut buf).await;
        send(&mut w, &mut enc, syn(7, "data", closed_port, "1")).await;
        recv(&mut r, &mut dec, &mut buf).await;
        match recv(&mut r, &mut dec, &mut buf).await {
            Some(Frame::Data {
                stream_id: 5, data, ..
            }) => {
                let text = String::from_utf8_lossy(&data);
                assert!(
                    text.starts_with(&format!("error forwarding port {closed_port} to pod ns/p")),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }

        // An unknown stream type is refused.
        send(&mut w, &mut enc, syn(9, "bogus", port, "2")).await;
        let mut refused = false;
        for _ in 0..5 {
            if let Some(Frame::RstStream { stream_id: 9, .. }) =
                recv(&mut r, &mut dec, &mut buf).await
            {
                refused = true;
                break;
            }
        }
        assert!(refused);

        // Garbage ends the session with GOAWAY and a close.
        w.binary(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")
            .await
            .unwrap();
        let mut saw_goaway = false;
        while let Some(f) = recv(&mut r, &mut dec, &mut buf).await {
            if matches!(f, Frame::GoAway { .. }) {
                saw_goaway = true;
            }
        }
        assert!(saw_goaway);
        session.await.unwrap();
    }
}
