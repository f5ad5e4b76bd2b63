//! `/exec/{namespace}/{pod}/{container}?command=...&stdin=&stdout=&stderr=&tty=`: runs a
//! command in a running container and carries its streams over a WebSocket with the
//! Kubernetes channel protocol (`v5.channel.k8s.io`, or `v4.channel.k8s.io`).
//!
//! Owns the exec session: stdin (channel 0, closed by the v5 close signal), stdout and stderr
//! (channels 1 and 2), terminal resizes (channel 4), and the final status with the exit code
//! (channel 3), then a normal close. Must not start the command before the request is known
//! to be valid, and never answers 101 when the command cannot be started.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::channel::{self, Protocol};
use super::websocket::{self, Message, Opcode, Role, WsReader, WsWriter};
use super::{Body, Params, PodRef, StreamError, full, query_pairs, running_container};
use crate::runtime::{ContainerRuntime, ExecSession, ExecSpec, StreamKind};

/// How long to wait for the client's close frame after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the client asked for.
#[derive(Debug, Clone)]
struct ExecOptions {
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

fn parse_options(params: &Params) -> Result<ExecOptions, StreamError> {
    let command: Vec<String> = params.all("command");
    if command.is_empty() || command.iter().all(|c| c.is_empty()) {
        return Err(StreamError::bad_request(
            "you must specify at least 1 command",
        ));
    }
    let mut opts = ExecOptions {
        command,
        stdin: params.flag("stdin")?,
        stdout: params.flag("stdout")?,
        stderr: params.flag("stderr")?,
        tty: params.flag("tty")?,
    };
    if !opts.stdin && !opts.stdout && !opts.stderr {
        return Err(StreamError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if opts.tty {
        // With a terminal everything arrives on stdout; the kubelet drops stderr too.
        opts.stderr = false;
    }
    Ok(opts)
}

pub(super) async fn exec(
    runtime: Arc<dyn ContainerRuntime>,
    mut req: Request<Incoming>,
    pod: PodRef,
    container: String,
) -> Result<Response<Body>, StreamError> {
    let params = Params(query_pairs(&req));
    let opts = parse_options(&params)?;
    let key = websocket::client_key(req.headers()).map_err(|e| {
        StreamError::bad_request(format!(
            "exec needs a WebSocket upgrade with {} or {}: {e}",
            channel::V5,
            channel::V4
        ))
    })?;
    let offered = websocket::offered_protocols(req.headers());
    let protocol = channel::negotiate(&offered).ok_or_else(|| {
        StreamError::bad_request(format!(
            "none of the offered subprotocols {offered:?} is supported: use {} or {}",
            channel::V5,
            channel::V4
        ))
    })?;
    let id = running_container(runtime.as_ref(), &pod, &container).await?;
    let session = runtime
        .exec(
            &id,
            &ExecSpec {
                cmd: opts.command.clone(),
                stdin: opts.stdin,
                tty: opts.tty,
            },
        )
        .await?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let (r, w) = tokio::io::split(io);
                run(runtime, session, opts, protocol, r, w).await;
            }
            Err(e) => tracing::debug!(error = %e, "exec: upgrade failed"),
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
    h.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(protocol.name()),
    );
    Ok(response)
}

/// Writes stdin chunks to the command; dropping the sender closes its stdin.
fn stdin_pump(mut stdin: std::pin::Pin<Box<dyn AsyncWrite + Send>>) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            if stdin.write_all(&data).await.is_err() || stdin.flush().await.is_err() {
                return;
            }
        }
        let _ = stdin.shutdown().await;
    });
    tx
}

async fn run<R, W>(
    runtime: Arc<dyn ContainerRuntime>,
    session: ExecSession,
    opts: ExecOptions,
    protocol: Protocol,
    r: R,
    w: W,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = WsReader::server(r);
    let mut writer = WsWriter::new(w, Role::Server);
    let ExecSession {
        id: exec_id,
        mut output,
        stdin,
        exit_code,
    } = session;
    // An empty message on the lowest writable channel tells the client the streams are ready.
    let first = if opts.stdout {
        channel::STDOUT
    } else if opts.stderr {
        channel::STDERR
    } else {
        channel::ERROR
    };
    if writer.binary(&channel::message(first, &[])).await.is_err() {
        return;
    }
    let mut stdin_tx = if opts.stdin {
        stdin.map(stdin_pump)
    } else {
        None
    };
    let mut failure: Option<String> = None;
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(chunk)) => {
                    let (wanted, ch) = match chunk.stream {
                        StreamKind::Stdout => (opts.stdout, channel::STDOUT),
                        StreamKind::Stderr => (opts.stderr, channel::STDERR),
                    };
                    if wanted && writer.binary(&channel::message(ch, &chunk.data)).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => {
                    failure = Some(format!("reading the command's output failed: {e}"));
                    break;
                }
                None => break,
            },
            message = reader.next() => match message {
                Ok(Some(Message::Binary(data))) => {
                    let Ok((ch, data)) = channel::split(&data) else { continue };
                    match ch {
                        channel::STDIN => {
                            if let Some(tx) = &stdin_tx
                                && !data.is_empty()
                                && tx.send(Bytes::copy_from_slice(data)).await.is_err()
                            {
                                stdin_tx = None;
                            }
                        }
                        channel::RESIZE if opts.tty => match channel::parse_resize(data) {
                            Ok(size) => {
                                let resized = runtime
                                    .resize_exec(&exec_id, size.width, size.height)
                                    .await;
                                if let Err(e) = resized {
                                    tracing::debug!(error = %e, "exec: resize failed");
                                }
                            }
                            Err(e) => tracing::debug!(error = %e, "exec: bad resize message"),
                        },
                        channel::CLOSE
                            if protocol == Protocol::V5 && data.first() == Some(&channel::STDIN) =>
                        {
                            stdin_tx = None;
                        }
                        _ => {}
                    }
                }
                Ok(Some(Message::Ping(payload))) => {
                    if writer.send(Opcode::Pong, &payload).await.is_err() {
                        return;
                    }
                }
                Ok(Some(Message::Text(_) | Message::Pong(_))) => {}
                Ok(Some(Message::Close(_))) => {
                    // The client is gone: no one reads the status. Closing stdin lets an
                    // interactive shell end.
                    let _ = writer.close(websocket::CLOSE_NORMAL, "").await;
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "exec: bad WebSocket input");
                    let _ = writer.close(websocket::CLOSE_PROTOCOL_ERROR, &e.to_string()).await;
                    return;
                }
            },
        }
    }
    drop(stdin_tx);
    let status = match failure {
        Some(message) => channel::error_status(&message),
        None => match exit_code.await {
            Ok(code) => channel::exit_status(code, &opts.command),
            Err(e) => channel::error_status(&format!("reading the exit code failed: {e}")),
        },
    };
    let status = status.to_string();
    if writer
        .binary(&channel::message(channel::ERROR, status.as_bytes()))
        .await
        .is_err()
    {
        return;
    }
    let _ = writer.close(websocket::CLOSE_NORMAL, "").await;
    // Let the client answer the close before the connection goes.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            match reader.next().await {
                Ok(Some(Message::Close(_))) | Ok(None) | Err(_) => return,
                Ok(Some(_)) => {}
            }
        }
    })
    .await;
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn options_are_validated() {
        assert!(parse_options(&params(&[("stdout", "true")])).is_err());
        assert!(parse_options(&params(&[("command", "ls")])).is_err());
        assert!(parse_options(&params(&[("command", "ls"), ("stdout", "maybe")])).is_err());
        let o = parse_options(&params(&[
            ("command", "sh"),
            ("stderr", "true"),
            ("tty", "true"),
        ]))
        .unwrap();
        assert!(o.tty && !o.stderr);
        let o = parse_options(&params(&[
            ("command", "sh"),
            ("command", "-c"),
            ("command", "exit 3"),
            ("stdin", "true"),
            ("stdout", "1"),
        ]))
        .unwrap();
        assert_eq!(o.command, vec!["sh", "-c", "exit 3"]);
        assert!(o.stdin && o.stdout && !o.stderr && !o.tty);
    }
}
