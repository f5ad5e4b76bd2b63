//! WebSocket (RFC 6455) framing and the opening handshake, for both roles.
//!
//! Owns frame encoding and decoding (masking, 7/16/64-bit lengths, control frame rules),
//! message reassembly from fragments, the `Sec-WebSocket-Accept` computation, subprotocol
//! lists, and an async reader and writer over any byte stream. The server role is what the
//! agent serves; the client role exists for tests and tools that talk to it.
//!
//! Must not: know the Kubernetes channel protocols (see `channel`) or SPDY (see `spdy`). No
//! extensions (such as permessage-deflate) are negotiated, so reserved bits are errors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The GUID that the accept key hashes with the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Default limit of one reassembled message.
pub const DEFAULT_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Close code of a normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code for a protocol error.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code for a message that is too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Errors of the WebSocket layer.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// A frame sets reserved bits although no extension was negotiated.
    #[error("WebSocket frame sets reserved bits")]
    ReservedBits,
    /// A frame carries an opcode RFC 6455 does not define.
    #[error("unknown WebSocket opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame is fragmented or longer than 125 bytes.
    #[error("WebSocket control frame {0:#x} is fragmented or over 125 bytes")]
    BadControlFrame(u8),
    /// A frame is masked when it must not be, or unmasked when it must be.
    #[error("WebSocket frame masking is wrong for this direction (masked: {masked})")]
    Masking {
        /// Whether the frame was masked.
        masked: bool,
    },
    /// A message is larger than the limit.
    #[error("WebSocket message of {length} bytes is over the limit of {limit}")]
    TooLarge {
        /// Its (announced) length.
        length: u64,
        /// The limit.
        limit: usize,
    },
    /// Fragments arrive out of order.
    #[error("WebSocket fragmentation error: {0}")]
    Fragmentation(&'static str),
    /// A close frame's payload is malformed.
    #[error("WebSocket close frame payload is malformed")]
    BadClose,
    /// The byte stream failed.
    #[error("WebSocket I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The opening handshake failed.
    #[error("WebSocket handshake: {0}")]
    Handshake(String),
}

/// Which end of the connection this is: clients mask what they send, servers do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The accepting end.
    Server,
    /// The connecting end.
    Client,
}

/// Frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continues a fragmented message.
    Continuation,
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
    /// Closing handshake.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_u8(b: u8) -> Result<Self, WsError> {
        Ok(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => return Err(WsError::UnknownOpcode(other)),
        })
    }

    fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Last fragment of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: Opcode,
    /// The (unmasked) payload.
    pub payload: Bytes,
}

/// A whole message (or control frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (bytes as received; UTF-8 is not checked).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// The peer closes, with a code and reason when it gave them.
    Close(Option<(u16, String)>),
}

/// Appends one frame to `out`, masked with `mask` when given (clients must mask).
pub fn encode_frame(
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    out: &mut BytesMut,
) {
    out.reserve(payload.len() + 14);
    out.put_u8(if fin { 0x80 } else { 0 } | opcode.as_u8());
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.put_u8(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(mask_bit | 127);
            out.put_u64(n as u64);
        }
    }
    match mask {
        Some(key) => {
            out.put_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.put_slice(payload),
    }
}

/// Takes one frame off the front of `buf` as received by `role`; `Ok(None)` until a whole
/// frame is there. Frames longer than `limit` are errors before their payload arrives.
pub fn decode_frame(
    buf: &mut BytesMut,
    role: Role,
    limit: usize,
) -> Result<Option<Frame>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = Opcode::from_u8(b0 & 0x0f)?;
    let masked = b1 & 0x80 != 0;
    if masked != (role == Role::Server) {
        return Err(WsError::Masking { masked });
    }
    let (length, mut header) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && (!fin || length > 125) {
        return Err(WsError::BadControlFrame(opcode.as_u8()));
    }
    if length > limit as u64 {
        return Err(WsError::TooLarge { length, limit });
    }
    // Within `limit`, which is a usize.
    let length = length as usize;
    let mask = if masked {
        if buf.len() < header + 4 {
            return Ok(None);
        }
        let key = [
            buf[header],
            buf[header + 1],
            buf[header + 2],
            buf[header + 3],
        ];
        header += 4;
        Some(key)
    } else {
        None
    };
    if buf.len() < header + length {
        buf.reserve(header + length - buf.len());
        return Ok(None);
    }
    buf.advance(header);
    let mut payload = buf.split_to(length);
    if let Some(key) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok(Some(Frame {
        fin,
        opcode,
        payload: payload.freeze(),
    }))
}

/// Reassembles messages from frames.
#[derive(Debug)]
pub struct Assembler {
    limit: usize,
    partial: Option<(Opcode, BytesMut)>,
}

impl Assembler {
    /// An assembler that refuses messages over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            partial: None,
        }
    }

    /// Feeds one frame; returns a message when one is complete.
    pub fn push(&mut self, frame: Frame) -> Result<Option<Message>, WsError> {
        match frame.opcode {
            Opcode::Ping => Ok(Some(Message::Ping(frame.payload))),
            Opcode::Pong => Ok(Some(Message::Pong(frame.payload))),
            Opcode::Close => Ok(Some(Message::Close(parse_close(&frame.payload)?))),
            Opcode::Text | Opcode::Binary => {
                if self.partial.is_some() {
                    return Err(WsError::Fragmentation(
                        "a new message started inside a fragmented one",
                    ));
                }
                if frame.fin {
                    return Ok(Some(whole(frame.opcode, frame.payload)));
                }
                self.partial = Some((frame.opcode, BytesMut::from(&frame.payload[..])));
                Ok(None)
            }
            Opcode::Continuation => {
                let Some((opcode, mut data)) = self.partial.take() else {
                    return Err(WsError::Fragmentation("continuation without a message"));
                };
                if data.len() + frame.payload.len() > self.limit {
                    return Err(WsError::TooLarge {
                        length: (data.len() + frame.payload.len()) as u64,
                        limit: self.limit,
                    });
                }
                data.extend_from_slice(&frame.payload);
                if frame.fin {
                    Ok(Some(whole(opcode, data.freeze())))
                } else {
                    self.partial = Some((opcode, data));
                    Ok(None)
                }
            }
        }
    }
}

fn whole(opcode: Opcode, payload: Bytes) -> Message {
    if opcode == Opcode::Text {
        Message::Text(payload)
    } else {
        Message::Binary(payload)
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(WsError::BadClose),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| WsError::BadClose)?;
            Ok(Some((code, reason.to_owned())))
        }
    }
}

/// Reads messages from a byte stream.
#[derive(Debug)]
pub struct WsReader<R> {
    io: R,
    role: Role,
    buf: BytesMut,
    assembler: Assembler,
}

impl<R: AsyncRead + Unpin> WsReader<R> {
    /// A reader for `role`, starting with bytes already read past the handshake.
    pub fn new(io: R, role: Role, leftover: BytesMut, limit: usize) -> Self {
        Self {
            io,
            role,
            buf: leftover,
            assembler: Assembler::new(limit),
        }
    }

    /// The reader of an upgraded server connection (hyper has consumed the handshake), with the
    /// default message limit.
    pub fn server(io: R) -> Self {
        Self::new(io, Role::Server, BytesMut::new(), DEFAULT_MAX_MESSAGE)
    }

    /// The next message; `Ok(None)` when the stream ends without a close frame. Cancel-safe:
    /// a cancelled call loses no data.
    pub async fn next(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            while let Some(frame) = decode_frame(&mut self.buf, self.role, self.assembler.limit)? {
                if let Some(message) = self.assembler.push(frame)? {
                    return Ok(Some(message));
                }
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}

/// Writes frames to a byte stream.
#[derive(Debug)]
pub struct WsWriter<W> {
    io: W,
    role: Role,
    buf: BytesMut,
}

impl<W: AsyncWrite + Unpin> WsWriter<W> {
    /// A writer for `role`.
    pub fn new(io: W, role: Role) -> Self {
        Self {
            io,
            role,
            buf: BytesMut::new(),
        }
    }

    /// Sends one unfragmented frame and flushes.
    pub async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), WsError> {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(random_mask()),
        };
        self.buf.clear();
        encode_frame(true, opcode, payload, mask, &mut self.buf);
        self.io.write_all(&self.buf).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Sends a binary message.
    pub async fn binary(&mut self, payload: &[u8]) -> Result<(), WsError> {
        self.send(Opcode::Binary, payload).await
    }

    /// Sends a close frame with `code` and `reason` (cut to fit a control frame).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        let mut payload = code.to_be_bytes().to_vec();
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.send(Opcode::Close, &payload).await
    }

    /// Shuts the byte stream down.
    pub async fn shutdown(&mut self) -> Result<(), WsError> {
        self.io.shutdown().await?;
        Ok(())
    }
}

fn random_mask() -> [u8; 4] {
    let mut key = [0u8; 4];
    if aws_lc_rs::rand::fill(&mut key).is_err() {
        // The mask only defeats proxy cache poisoning; a fixed one still frames correctly.
        key = [0x5a, 0xa5, 0x3c, 0xc3];
    }
    key
}

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &input);
    B64.encode(digest.as_ref())
}

/// A fresh random `Sec-WebSocket-Key` (for clients).
pub fn new_key() -> String {
    let mut raw = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut raw).is_err() {
        raw = *b"berth-websocket!";
    }
    B64.encode(raw)
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks for a WebSocket upgrade (`Connection: Upgrade`,
/// `Upgrade: websocket`).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    has_token(headers, "connection", "upgrade") && has_token(headers, "upgrade", "websocket")
}

/// The subprotocols a client offers, in its order.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Checks the client's handshake headers and returns its key.
pub fn client_key(headers: &HeaderMap) -> Result<String, WsError> {
    if !is_upgrade_request(headers) {
        return Err(WsError::Handshake(
            "the request does not ask for a WebSocket upgrade".into(),
        ));
    }
    let version = headers
        .get("sec-websocket-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if version.trim() != "13" {
        return Err(WsError::Handshake(format!(
            "unsupported Sec-WebSocket-Version {version:?}: only 13 is supported"
        )));
    }
    let key = headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    match B64.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(key.to_owned()),
        _ => Err(WsError::Handshake(
            "Sec-WebSocket-Key is missing or not 16 bytes of base64".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn round_trip(payload_len: usize, mask: Option<[u8; 4]>) {
        let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
        let mut wire = BytesMut::new();
        encode_frame(true, Opcode::Binary, &payload, mask, &mut wire);
        let role = if mask.is_some() {
            Role::Server
        } else {
            Role::Client
        };
        // Byte by byte: nothing until the last byte.
        let mut buf = BytesMut::new();
        let total = wire.len();
        for (i, b) in wire.iter().enumerate() {
            buf.put_u8(*b);
            let got = decode_frame(&mut buf, role, 1 << 20).unwrap();
            if i + 1 < total {
                assert!(got.is_none());
            } else {
                let frame = got.unwrap();
                assert_eq!(frame.payload, payload);
                assert!(frame.fin);
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn frames_round_trip_with_all_length_forms() {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            round_trip(len, None);
            round_trip(len, Some([1, 2, 3, 4]));
        }
    }

    #[test]
    fn masking_must_match_the_direction() {
        let mut wire = BytesMut::new();
        encode_frame(true, Opcode::Binary, b"x", None, &mut wire);
        assert!(matches!(
            decode_frame(&mut wire, Role::Server, 100),
            Err(WsError::Masking { masked: false })
        ));
        let mut wire = BytesMut::new();
        encode_frame(true, Opcode::Binary, b"x", Some([9, 9, 9, 9]), &mut wire);
        assert!(matches!(
            decode_frame(&mut wire, Role::Client, 100),
            Err(WsError::Masking { masked: true })
        ));
    }

    #[test]
    fn bad_frames_are_errors() {
        // Reserved bits.
        let mut b = BytesMut::from(&[0xC2u8, 0x80, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut b, Role::Server, 100),
            Err(WsError::ReservedBits)
        ));
        // Unknown opcode.
        let mut b = BytesMut::from(&[0x83u8, 0x80, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut b, Role::Server, 100),
            Err(WsError::UnknownOpcode(3))
        ));
        // Fragmented ping.
        let mut b = BytesMut::from(&[0x09u8, 0x80, 0, 0, 0, 0][..]);
        assert!(matches!(
            decode_frame(&mut b, Role::Server, 100),
            Err(WsError::BadControlFrame(9))
        ));
        // Announced length over the limit, refused before the payload arrives.
        let mut b =
            BytesMut::from(&[0x82u8, 0xFF, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            decode_frame(&mut b, Role::Server, 1000),
            Err(WsError::TooLarge { .. })
        ));
        // Close with a one-byte payload.
        let mut asm = Assembler::new(100);
        assert!(matches!(
            asm.push(Frame {
                fin: true,
                opcode: Opcode::Close,
                payload: Bytes::from_static(b"x")
            }),
            Err(WsError::BadClose)
        ));
        assert!(matches!(
            asm.push(Frame {
                fin: true,
                opcode: Opcode::Continuation,
                payload: Bytes::new()
            }),
            Err(WsError::Fragmentation(_))
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let len = (next() % 40) as usize;
            let mut buf: BytesMut = (0..len).map(|_| next() as u8).collect();
            let role = if next() % 2 == 0 {
                Role::Server
            } else {
                Role::Client
            };
            let mut asm = Assembler::new(64);
            while let Ok(Some(frame)) = decode_frame(&mut buf, role, 64) {
                if asm.push(frame).is_err() {
                    break;
                }
            }
        }
    }

    #[test]
    fn fragments_are_reassembled_around_control_frames() {
        let mut asm = Assembler::new(10);
        let f = |fin, opcode, p: &'static [u8]| Frame {
            fin,
            opcode,
            payload: Bytes::from_static(p),
        };
        assert_eq!(asm.push(f(false, Opcode::Binary, b"ab")).unwrap(), None);
        assert_eq!(
            asm.push(f(true, Opcode::Ping, b"p")).unwrap(),
            Some(Message::Ping(Bytes::from_static(b"p")))
        );
        assert!(matches!(
            asm.push(f(false, Opcode::Text, b"x")),
            Err(WsError::Fragmentation(_))
        ));
        let mut asm = Assembler::new(10);
        asm.push(f(false, Opcode::Binary, b"ab")).unwrap();
        assert_eq!(
            asm.push(f(false, Opcode::Continuation, b"cd")).unwrap(),
            None
        );
        assert_eq!(
            asm.push(f(true, Opcode::Continuation, b"e")).unwrap(),
            Some(Message::Binary(Bytes::from_static(b"abcde")))
        );
        asm.push(f(false, Opcode::Binary, b"123456")).unwrap();
        assert!(matches!(
            asm.push(f(true, Opcode::Continuation, b"78901")),
            Err(WsError::TooLarge { .. })
        ));
        assert_eq!(
            asm.push(f(true, Opcode::Close, &[0x03, 0xe8, b'o', b'k']))
                .unwrap(),
            Some(Message::Close(Some((1000, "ok".into()))))
        );
    }

    #[tokio::test]
    async fn reader_and_writer_talk_over_a_pipe() {
        let (a, b) = tokio::io::duplex(64);
        let (ar, aw) = tokio::io::split(a);
        let (br, bw) = tokio::io::split(b);
        let mut client = WsWriter::new(aw, Role::Client);
        let mut server = WsReader::new(br, Role::Server, BytesMut::new(), 1 << 20);
        let big = vec![7u8; 100_000];
        let send = async {
            client.binary(b"hello").await.unwrap();
            client.send(Opcode::Ping, b"pp").await.unwrap();
            client.binary(&big).await.unwrap();
            client.close(CLOSE_NORMAL, "bye").await.unwrap();
            client.shutdown().await.unwrap();
        };
        let recv = async {
            let mut got = Vec::new();
            while let Some(m) = server.next().await.unwrap() {
                got.push(m);
            }
            got
        };
        let ((), got) = tokio::join!(send, recv);
        assert_eq!(
            got,
            vec![
                Message::Binary(Bytes::from_static(b"hello")),
                Message::Ping(Bytes::from_static(b"pp")),
                Message::Binary(Bytes::from(big.clone())),
                Message::Close(Some((1000, "bye".into()))),
            ]
        );
        // And back: server frames are unmasked.
        let mut server_w = WsWriter::new(bw, Role::Server);
        let mut client_r = WsReader::new(ar, Role::Client, BytesMut::new(), 1 << 20);
        server_w.binary(b"x").await.unwrap();
        assert_eq!(
            client_r.next().await.unwrap(),
            Some(Message::Binary(Bytes::from_static(b"x")))
        );
    }

    #[test]
    fn handshake_headers_are_checked() {
        let mut h = HeaderMap::new();
        assert!(client_key(&h).is_err());
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        h.insert("upgrade", "WebSocket".parse().unwrap());
        assert!(is_upgrade_request(&h));
        assert!(client_key(&h).is_err());
        h.insert("sec-websocket-version", "13".parse().unwrap());
        h.insert("sec-websocket-key", "short".parse().unwrap());
        assert!(client_key(&h).is_err());
        h.insert("sec-websocket-key", new_key().parse().unwrap());
        assert!(client_key(&h).is_ok());
        h.append(
            "sec-websocket-protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        h.append("sec-websocket-protocol", "x".parse().unwrap());
        assert_eq!(
            offered_protocols(&h),
            vec!["v5.channel.k8s.io", "v4.channel.k8s.io", "x"]
        );
    }
}
