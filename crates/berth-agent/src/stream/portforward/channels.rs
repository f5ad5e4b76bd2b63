//! Port-forwarding over the WebSocket channel protocol (`v4.channel.k8s.io`), as the kubelet
//! serves it to clients that do not speak SPDY (the Python client's `portforward`).
//!
//! The ports come from the `ports` query parameter (repeatable, each a comma-separated list).
//! Port `i` has channel `2i` for data and `2i + 1` for errors; the first message on each carries
//! the port number (little-endian `u16`). Each port gets one TCP connection to the pod for the
//! session: the client's bytes on the data channel go to the pod, the pod's come back on it, a
//! failed connection is reported as text on the error channel. A port is done when the pod
//! closes its side; the session ends when the client closes or every port is done, and then the
//! WebSocket is closed (the client reads that as the end of every port).
//!
//! Must not: open connections anywhere but the pod's address, or more than one per port.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::super::channel::{self, Protocol};
use super::super::websocket::{self, Message, Opcode, Role, WsReader, WsWriter};
use super::{client_to_pod, connect, pod_to_client};

/// The v5 message that closes a channel (the client's half of it).
const CLOSE_CHANNEL: u8 = 255;
/// How long the session waits after the last port is done before it closes the WebSocket: a
/// client that reads the close together with the last data may drop the data (the Python
/// client does), so the close comes a moment later.
const LINGER: Duration = Duration::from_millis(100);

/// The channel protocol to answer an offer with: v4 as the kubelet does, v5 when only that is
/// offered (the framing is the same; v5 adds closing one channel).
pub(super) fn negotiate(offered: &[String]) -> Option<Protocol> {
    if offered.iter().any(|p| p == Protocol::V4.name()) {
        Some(Protocol::V4)
    } else {
        channel::negotiate(offered)
    }
}

/// The ports of the `ports` query values, in order.
pub(super) fn parse_ports(values: &[String]) -> Result<Vec<u16>, String> {
    if values.is_empty() {
        return Err("query parameter \"ports\" is required".to_owned());
    }
    let mut ports = Vec::new();
    for value in values {
        if value.is_empty() {
            return Err("query parameter \"ports\" cannot be empty".to_owned());
        }
        for p in value.split(',') {
            match p.trim().parse::<u16>() {
                Ok(0) => return Err(format!("port {p:?} must be > 0")),
                Ok(port) => ports.push(port),
                Err(_) => return Err(format!("unable to parse {p:?} as a port")),
            }
        }
    }
    // Two channels per port, numbered by one byte, and 255 is reserved by v5.
    if ports.len() > 127 {
        return Err(format!("too many ports: {} (at most 127)", ports.len()));
    }
    Ok(ports)
}

/// What the session sends, in order, through the one writer.
enum Out {
    Message(Bytes),
    Pong(Bytes),
}

/// Runs a session until the client closes it or every port is done.
pub(super) async fn run<R, W>(r: R, w: W, ip: IpAddr, pod: String, ports: Vec<u16>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = WsReader::server(r);
    let (out, out_rx) = mpsc::channel(64);
    let writer = tokio::spawn(write_loop(w, out_rx));
    let mut to_pod: Vec<Option<mpsc::Sender<Bytes>>> = Vec::with_capacity(ports.len());
    let mut tasks = JoinSet::new();
    for (i, &port) in ports.iter().enumerate() {
        let data_channel = u8::try_from(2 * i).unwrap_or(u8::MAX - 1);
        for ch in [data_channel, data_channel + 1] {
            let _ = out
                .send(Out::Message(channel::message(ch, &port.to_le_bytes())))
                .await;
        }
        let (tx, rx) = mpsc::channel(16);
        to_pod.push(Some(tx));
        tasks.spawn(forward(
            ip,
            port,
            pod.clone(),
            data_channel,
            rx,
            out.clone(),
        ));
    }
    loop {
        tokio::select! {
            message = reader.next() => match message {
                Ok(Some(Message::Binary(bytes))) => match channel::split(&bytes) {
                    Ok((CLOSE_CHANNEL, [ch, ..])) => {
                        if let Some(slot) = to_pod.get_mut(usize::from(*ch / 2)) {
                            *slot = None;
                        }
                    }
                    Ok((ch, data)) if ch % 2 == 0 && !data.is_empty() => {
                        let slot = to_pod.get_mut(usize::from(ch / 2));
                        if let Some(slot) = slot
                            && let Some(tx) = slot.as_ref()
                            && tx.send(Bytes::copy_from_slice(data)).await.is_err()
                        {
                            *slot = None;
                        }
                    }
                    // Writes to an error channel, or to no port, mean nothing.
                    Ok(_) | Err(_) => {}
                },
                Ok(Some(Message::Ping(payload))) => {
                    let _ = out.send(Out::Pong(payload)).await;
                }
                Ok(Some(Message::Text(_) | Message::Pong(_))) => {}
                Ok(Some(Message::Close(_)) | None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad WebSocket input");
                    break;
                }
            },
            done = tasks.join_next() => {
                if done.is_none() || tasks.is_empty() {
                    tokio::time::sleep(LINGER).await;
                    break;
                }
            }
        }
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    drop(out);
    let _ = writer.await;
}

/// Forwards one port until the pod closes its side (or the session ends).
async fn forward(
    ip: IpAddr,
    port: u16,
    pod: String,
    data_channel: u8,
    from_client: mpsc::Receiver<Bytes>,
    out: mpsc::Sender<Out>,
) {
    let conn = match connect(ip, port).await {
        Ok(conn) => conn,
        Err(message) => {
            let text = format!("error forwarding port {port} to pod {pod}: {message}");
            let _ = out
                .send(Out::Message(channel::message(
                    data_channel + 1,
                    text.as_bytes(),
                )))
                .await;
            return;
        }
    };
    let _ = conn.set_nodelay(true);
    let (pod_read, pod_write) = conn.into_split();
    let upstream = async move {
        client_to_pod(from_client, pod_write).await;
        // The client is done writing; the pod's answer still flows until it closes.
        std::future::pending::<()>().await;
    };
    let downstream = pod_to_client(pod_read, &out, |chunk| {
        Out::Message(channel::message(data_channel, chunk))
    });
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(w: W, mut rx: mpsc::Receiver<Out>) {
    let mut writer = WsWriter::new(w, Role::Server);
    while let Some(out) = rx.recv().await {
        let sent = match out {
            Out::Message(bytes) => writer.binary(&bytes).await,
            Out::Pong(payload) => writer.send(Opcode::Pong, &payload).await,
        };
        if sent.is_err() {
            return;
        }
    }
    let _ = writer.close(websocket::CLOSE_NORMAL, "").await;
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_a_comma_separated_list_and_may_repeat() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_ports(&v(&["8080"])), Ok(vec![8080]));
        assert_eq!(
            parse_ports(&v(&["80,443", "9000"])),
            Ok(vec![80, 443, 9000])
        );
        assert!(parse_ports(&v(&[])).unwrap_err().contains("required"));
        assert!(parse_ports(&v(&[""])).unwrap_err().contains("empty"));
        assert!(parse_ports(&v(&["0"])).unwrap_err().contains("> 0"));
        assert!(parse_ports(&v(&["http"])).unwrap_err().contains("parse"));
        assert!(parse_ports(&v(&["70000"])).unwrap_err().contains("parse"));
    }

    #[test]
    fn v4_is_chosen_as_the_kubelet_does() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = v(&["v5.channel.k8s.io", "v4.channel.k8s.io"]);
        assert_eq!(negotiate(&both), Some(Protocol::V4));
        assert_eq!(negotiate(&v(&["v5.channel.k8s.io"])), Some(Protocol::V5));
        assert_eq!(negotiate(&v(&["base64.channel.k8s.io"])), None);
    }
}
