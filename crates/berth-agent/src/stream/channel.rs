//! The Kubernetes channel protocols over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`)
//! that `kubectl exec` and the Python client speak.
//!
//! Owns subprotocol negotiation, the one-byte channel prefix of every binary message, the
//! resize message, and the `Status` documents sent on the error channel when a command ends.
//!
//! Must not: do I/O or run commands (see `exec`).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

/// Subprotocol of kubectl 1.30 and later: adds the close-stdin signal.
pub const V5: &str = "v5.channel.k8s.io";
/// Subprotocol of older clients and the Python client: JSON status on the error channel.
pub const V4: &str = "v4.channel.k8s.io";

/// Channel of standard input (client to server).
pub const STDIN: u8 = 0;
/// Channel of standard output.
pub const STDOUT: u8 = 1;
/// Channel of standard error.
pub const STDERR: u8 = 2;
/// Channel of the final status.
pub const ERROR: u8 = 3;
/// Channel of terminal resize events (client to server).
pub const RESIZE: u8 = 4;
/// v5 only: `[255, channel]` closes the named channel (the client's stdin).
pub const CLOSE: u8 = 255;

/// Errors of the channel protocol.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A binary message is empty: it lacks its channel byte.
    #[error("empty message: no channel byte")]
    Empty,
    /// A resize message is not `{"Width":W,"Height":H}`.
    #[error("malformed resize message: {0}")]
    BadResize(String),
}

/// A negotiated channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `v4.channel.k8s.io`.
    V4,
    /// `v5.channel.k8s.io`.
    V5,
}

impl Protocol {
    /// The subprotocol name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V4 => V4,
            Protocol::V5 => V5,
        }
    }
}

/// The newest protocol the client offers, if any is supported.
pub fn negotiate(offered: &[String]) -> Option<Protocol> {
    if offered.iter().any(|p| p == V5) {
        Some(Protocol::V5)
    } else if offered.iter().any(|p| p == V4) {
        Some(Protocol::V4)
    } else {
        None
    }
}

/// A message for `channel` carrying `data`.
pub fn message(channel: u8, data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + 1);
    b.put_u8(channel);
    b.put_slice(data);
    b.freeze()
}

/// Splits a received message into its channel and data.
pub fn split(message: &[u8]) -> Result<(u8, &[u8]), ChannelError> {
    match message.split_first() {
        Some((channel, data)) => Ok((*channel, data)),
        None => Err(ChannelError::Empty),
    }
}

/// A terminal size from a resize message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    /// Columns.
    pub width: u16,
    /// Rows.
    pub height: u16,
}

/// Parses `{"Width":W,"Height":H}`.
pub fn parse_resize(data: &[u8]) -> Result<TerminalSize, ChannelError> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| ChannelError::BadResize(e.to_string()))?;
    let field = |name: &str| -> Result<u16, ChannelError> {
        v.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| ChannelError::BadResize(format!("{name} is not a number up to 65535")))
    };
    Ok(TerminalSize {
        width: field("Width")?,
        height: field("Height")?,
    })
}

/// The status sent on [`ERROR`] when the command exited with `code`: `Success` for 0, else a
/// `NonZeroExitCode` failure whose cause carries the code (what kubectl turns into its own
/// exit code).
pub fn exit_status(code: i64, command: &[String]) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The status sent on [`ERROR`] when the command could not be run or followed to its end.
pub fn error_status(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_v5() {
        let offer = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(negotiate(&offer(&[V4, V5])), Some(Protocol::V5));
        assert_eq!(
            negotiate(&offer(&["channel.k8s.io", V4])),
            Some(Protocol::V4)
        );
        assert_eq!(negotiate(&offer(&["base64.channel.k8s.io"])), None);
        assert_eq!(negotiate(&[]), None);
    }

    #[test]
    fn messages_carry_their_channel() {
        let m = message(STDERR, b"oops");
        assert_eq!(&m[..], b"\x02oops");
        assert_eq!(split(&m).unwrap(), (STDERR, &b"oops"[..]));
        assert_eq!(split(&[STDOUT]).unwrap(), (STDOUT, &b""[..]));
        assert!(matches!(split(&[]), Err(ChannelError::Empty)));
    }

    #[test]
    fn resize_messages_parse() {
        assert_eq!(
            parse_resize(br#"{"Width":120,"Height":40}"#).unwrap(),
            TerminalSize {
                width: 120,
                height: 40
            }
        );
        assert!(parse_resize(b"{}").is_err());
        assert!(parse_resize(br#"{"Width":-1,"Height":1}"#).is_err());
        assert!(parse_resize(br#"{"Width":70000,"Height":1}"#).is_err());
        assert!(parse_resize(b"not json").is_err());
    }

    #[test]
    fn exit_statuses_are_what_kubectl_reads() {
        assert_eq!(
            exit_status(0, &[]),
            json!({"metadata": {}, "status": "Success"})
        );
        let s = exit_status(3, &["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(error_status("x")["status"], "Failure");
    }
}
