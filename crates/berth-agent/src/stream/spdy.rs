//! SPDY/3.1 framing, as `kubectl port-forward` speaks it inside its WebSocket tunnel.
//!
//! Owns the frame types, their binary encoding and decoding, and the header block compression
//! (zlib with the SPDY/3 dictionary, one compression context per direction for the whole
//! connection). Decoding is incremental over a byte buffer (the peer may split one frame over
//! many WebSocket messages), bounded, and never panics on bad input: malformed frames are
//! [`SpdyError`]s.
//!
//! Must not: run sessions or touch sockets (see `portforward`). No flow control is applied:
//! `WINDOW_UPDATE` frames are decoded and may be ignored by the caller, as the Kubernetes
//! clients do.

use std::sync::LazyLock;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The protocol version carried in every control frame.
pub const VERSION: u16 = 3;

/// Flag of `SYN_STREAM`, `SYN_REPLY`, `HEADERS` and data frames: the sender closes its half.
pub const FLAG_FIN: u8 = 0x01;
/// Flag of `SYN_STREAM`: the stream is unidirectional (the receiver must not send).
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// `RST_STREAM` status codes.
pub mod rst {
    /// Generic protocol error.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// A frame for a stream that is not active.
    pub const INVALID_STREAM: u32 = 2;
    /// The stream was refused before any processing.
    pub const REFUSED_STREAM: u32 = 3;
    /// The stream is no longer needed.
    pub const CANCEL: u32 = 5;
    /// An internal error.
    pub const INTERNAL_ERROR: u32 = 6;
}

/// Largest payload a frame can carry (24-bit length).
pub const MAX_FRAME_LENGTH: usize = (1 << 24) - 1;

/// Largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// Control frame types.
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Errors of SPDY framing.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// A control frame carries a version other than 3.
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// A control frame's length does not fit its type.
    #[error("SPDY control frame of type {frame_type} has an invalid length {length}")]
    InvalidLength {
        /// The control frame type.
        frame_type: u16,
        /// The length it declared.
        length: usize,
    },
    /// A frame names stream 0 where a stream is required.
    #[error("SPDY frame of type {0} names stream 0")]
    ZeroStreamId(u16),
    /// A header block could not be decompressed.
    #[error("SPDY header block does not decompress: {0}")]
    Decompress(String),
    /// A header block could not be compressed.
    #[error("SPDY header block does not compress: {0}")]
    Compress(String),
    /// A decompressed header block is malformed.
    #[error("SPDY header block is malformed: {0}")]
    BadHeaderBlock(&'static str),
    /// A decompressed header block is larger than allowed.
    #[error("SPDY header block is over {MAX_HEADER_BLOCK} bytes")]
    HeaderBlockTooLarge,
    /// A frame to be encoded does not fit the format.
    #[error("SPDY frame cannot be encoded: {0}")]
    Unencodable(&'static str),
}

/// Header name/value pairs of a stream. Names are lower case; several values of one name are
/// joined by NUL bytes, as on the wire.
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (compared in lower case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

/// One entry of a `SETTINGS` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Flags (persist value, persisted).
    pub flags: u8,
    /// The setting's id (24 bits).
    pub id: u32,
    /// Its value.
    pub value: u32,
}

/// A SPDY/3.1 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// The new stream (odd from clients, even from servers).
        stream_id: u32,
        /// The stream it is associated with, or 0.
        associated_to: u32,
        /// Priority 0 (highest) to 7.
        priority: u8,
        /// Credential slot.
        slot: u8,
        /// [`FLAG_FIN`], [`FLAG_UNIDIRECTIONAL`].
        flags: u8,
        /// The stream's headers.
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        /// The stream.
        stream_id: u32,
        /// [`FLAG_FIN`].
        flags: u8,
        /// Reply headers.
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why (see [`rst`]).
        status: u32,
    },
    /// Connection settings.
    Settings {
        /// Flags (clear settings).
        flags: u8,
        /// The settings.
        entries: Vec<Setting>,
    },
    /// Liveness check; the receiver echoes pings it did not send.
    Ping {
        /// Odd from clients, even from servers.
        id: u32,
    },
    /// The sender will accept no new streams.
    GoAway {
        /// The last stream the sender processed.
        last_good_stream_id: u32,
        /// Why.
        status: u32,
    },
    /// More headers of a stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// [`FLAG_FIN`].
        flags: u8,
        /// The headers.
        headers: Headers,
    },
    /// Flow-control credit.
    WindowUpdate {
        /// The stream (0 for the connection).
        stream_id: u32,
        /// Bytes added to the window.
        delta: u32,
    },
    /// Stream data.
    Data {
        /// The stream.
        stream_id: u32,
        /// [`FLAG_FIN`].
        flags: u8,
        /// The payload.
        data: Bytes,
    },
}

/// The SPDY/3 header compression dictionary: each listed header word as a 4-byte big-endian
/// length followed by the word, then a run of common status lines, dates and values.
pub static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &[&str] = &[
        "100101201202205206300302303304305306307",
        "402405406407408409410411412413414415416417",
        "502504505",
        "203 Non-Authoritative Information",
        "204 No Content",
        "301 Moved Permanently",
        "400 Bad Request",
        "401 Unauthorized",
        "403 Forbidden",
        "404 Not Found",
        "500 Internal Server Error",
        "501 Not Implemented",
        "503 Service Unavailable",
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
        " 00:00:00",
        " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
        "chunked,text/html,image/png,image/jpg,image/gif,",
        "application/xml,application/xhtml+xml,text/plain,text/javascript,",
        "publicprivatemax-age=gzip,deflate,sdch",
        "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    ];
    let mut out = Vec::with_capacity(1424);
    for word in WORDS {
        // Every word is a few bytes long: the length fits in 32 bits.
        out.extend_from_slice(&(word.len() as u32).to_be_bytes());
        out.extend_from_slice(word.as_bytes());
    }
    for part in TAIL {
        out.extend_from_slice(part.as_bytes());
    }
    out
});

/// Compresses header blocks for one direction of a connection.
struct HeaderCompressor {
    z: Compress,
}

impl HeaderCompressor {
    fn new() -> Result<Self, SpdyError> {
        let mut z = Compress::new(Compression::default(), true);
        z.set_dictionary(&DICTIONARY)
            .map_err(|e| SpdyError::Compress(e.to_string()))?;
        Ok(Self { z })
    }

    /// Compresses one block and flushes (sync) so the peer can decode it at once.
    fn compress(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(block.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            self.z
                .compress_vec(&block[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compress(e.to_string()))?;
            let consumed = self.z.total_in() - before_in;
            pos += usize::try_from(consumed).unwrap_or(usize::MAX);
            let room = out.len() < out.capacity();
            // Done once all input is in and the flush left room in the buffer.
            if pos >= block.len() && room {
                return Ok(out);
            }
            if room && consumed == 0 && self.z.total_out() == before_out {
                return Err(SpdyError::Compress("no progress".into()));
            }
        }
    }
}

/// Decompresses header blocks for one direction of a connection.
struct HeaderDecompressor {
    z: Decompress,
    dictionary_set: bool,
}

impl HeaderDecompressor {
    fn new() -> Self {
        Self {
            z: Decompress::new(true),
            dictionary_set: false,
        }
    }

    fn decompress(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(SpdyError::HeaderBlockTooLarge);
                }
                out.reserve(out.len().max(256));
            }
            let before_in = self.z.total_in();
            let before_out = self.z.total_out();
            let result = self
                .z
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            let consumed = self.z.total_in() - before_in;
            pos += usize::try_from(consumed).unwrap_or(usize::MAX);
            match result {
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::Decompress(
                        "the peer ended its compression stream".into(),
                    ));
                }
                Ok(Status::Ok) | Ok(Status::BufError) => {
                    let room = out.len() < out.capacity();
                    if pos >= input.len() && room {
                        return Ok(out);
                    }
                    if room && consumed == 0 && self.z.total_out() == before_out {
                        return Err(SpdyError::Decompress("no progress".into()));
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(_) if !self.dictionary_set => {
                        self.dictionary_set = true;
                        self.z
                            .set_dictionary(&DICTIONARY)
                            .map_err(|e| SpdyError::Decompress(e.to_string()))?;
                    }
                    _ => return Err(SpdyError::Decompress(e.to_string())),
                },
            }
        }
    }
}

/// Writes frames; owns the compression context of the sending direction.
pub struct Encoder {
    compressor: HeaderCompressor,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

fn header_block(headers: &Headers) -> Result<Vec<u8>, SpdyError> {
    let mut block = Vec::new();
    let count = u32::try_from(headers.len()).map_err(|_| SpdyError::Unencodable("headers"))?;
    block.extend_from_slice(&count.to_be_bytes());
    for (name, value) in headers {
        for s in [name.to_ascii_lowercase().as_str(), value.as_str()] {
            let len = u32::try_from(s.len()).map_err(|_| SpdyError::Unencodable("header"))?;
            block.extend_from_slice(&len.to_be_bytes());
            block.extend_from_slice(s.as_bytes());
        }
    }
    Ok(block)
}

fn put_control(
    out: &mut BytesMut,
    frame_type: u16,
    flags: u8,
    body: &[u8],
) -> Result<(), SpdyError> {
    if body.len() > MAX_FRAME_LENGTH {
        return Err(SpdyError::Unencodable("frame longer than 2^24 - 1 bytes"));
    }
    out.put_u16(0x8000 | VERSION);
    out.put_u16(frame_type);
    // The length fits in 24 bits (checked above).
    out.put_u32((u32::from(flags) << 24) | body.len() as u32);
    out.put_slice(body);
    Ok(())
}

fn stream_id(id: u32) -> Result<u32, SpdyError> {
    if id & 0x8000_0000 != 0 {
        return Err(SpdyError::Unencodable("stream id over 31 bits"));
    }
    Ok(id)
}

impl Encoder {
    /// A fresh encoder (one per connection and direction).
    pub fn new() -> Result<Self, SpdyError> {
        Ok(Self {
            compressor: HeaderCompressor::new()?,
        })
    }

    /// Appends `frame`'s encoding to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        match frame {
            Frame::Data {
                stream_id: id,
                flags,
                data,
            } => {
                if data.len() > MAX_FRAME_LENGTH {
                    return Err(SpdyError::Unencodable("data frame longer than 2^24 - 1"));
                }
                out.put_u32(stream_id(*id)?);
                out.put_u32((u32::from(*flags) << 24) | data.len() as u32);
                out.put_slice(data);
                Ok(())
            }
            Frame::SynStream {
                stream_id: id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let block = self.compressor.compress(&header_block(headers)?)?;
                let mut body = Vec::with_capacity(10 + block.len());
                body.extend_from_slice(&stream_id(*id)?.to_be_bytes());
                body.extend_from_slice(&stream_id(*associated_to)?.to_be_bytes());
                body.push((priority & 0x7) << 5);
                body.push(*slot);
                body.extend_from_slice(&block);
                put_control(out, SYN_STREAM, *flags, &body)
            }
            Frame::SynReply {
                stream_id: id,
                flags,
                headers,
            }
            | Frame::Headers {
                stream_id: id,
                flags,
                headers,
            } => {
                let frame_type = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let block = self.compressor.compress(&header_block(headers)?)?;
                let mut body = Vec::with_capacity(4 + block.len());
                body.extend_from_slice(&stream_id(*id)?.to_be_bytes());
                body.extend_from_slice(&block);
                put_control(out, frame_type, *flags, &body)
            }
            Frame::RstStream {
                stream_id: id,
                status,
            } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&stream_id(*id)?.to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                put_control(out, RST_STREAM, 0, &body)
            }
            Frame::Settings { flags, entries } => {
                let count =
                    u32::try_from(entries.len()).map_err(|_| SpdyError::Unencodable("settings"))?;
                let mut body = Vec::with_capacity(4 + 8 * entries.len());
                body.extend_from_slice(&count.to_be_bytes());
                for s in entries {
                    if s.id > 0x00ff_ffff {
                        return Err(SpdyError::Unencodable("setting id over 24 bits"));
                    }
                    body.extend_from_slice(&((u32::from(s.flags) << 24) | s.id).to_be_bytes());
                    body.extend_from_slice(&s.value.to_be_bytes());
                }
                put_control(out, SETTINGS, *flags, &body)
            }
            Frame::Ping { id } => put_control(out, PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&stream_id(*last_good_stream_id)?.to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                put_control(out, GOAWAY, 0, &body)
            }
            Frame::WindowUpdate {
                stream_id: id,
                delta,
            } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&stream_id(*id)?.to_be_bytes());
                body[4..].copy_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                put_control(out, WINDOW_UPDATE, 0, &body)
            }
        }
    }
}

/// Reads frames from a growing buffer; owns the decompression context of the receiving
/// direction.
pub struct Decoder {
    decompressor: HeaderDecompressor,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_header_block(block: &[u8]) -> Result<Headers, SpdyError> {
    let mut rest = block;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        if rest.len() < n {
            return Err(SpdyError::BadHeaderBlock("truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = be32(take(4)?) as usize;
    // Every pair takes at least 8 bytes: a larger count is a lie.
    if count > block.len() / 8 {
        return Err(SpdyError::BadHeaderBlock("more pairs than bytes"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let len = be32(take(4)?) as usize;
        let name = take(len)?;
        if name.is_empty() {
            return Err(SpdyError::BadHeaderBlock("empty header name"));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| SpdyError::BadHeaderBlock("header name is not UTF-8"))?
            .to_ascii_lowercase();
        let len = be32(take(4)?) as usize;
        let value = String::from_utf8_lossy(take(len)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

impl Decoder {
    /// A fresh decoder (one per connection and direction).
    pub fn new() -> Self {
        Self {
            decompressor: HeaderDecompressor::new(),
        }
    }

    /// Takes the next whole frame off the front of `buf`; `Ok(None)` until one is complete.
    /// Control frames of unknown types are skipped, as the protocol asks.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        loop {
            if buf.len() < 8 {
                return Ok(None);
            }
            let length = (be32(&buf[4..8]) & 0x00ff_ffff) as usize;
            if buf.len() < 8 + length {
                buf.reserve(8 + length - buf.len());
                return Ok(None);
            }
            let word = be32(&buf[0..4]);
            let flags = buf[4];
            buf.advance(8);
            let body = buf.split_to(length).freeze();
            if word & 0x8000_0000 == 0 {
                return Ok(Some(Frame::Data {
                    stream_id: word,
                    flags,
                    data: body,
                }));
            }
            let version = ((word >> 16) & 0x7fff) as u16;
            let frame_type = (word & 0xffff) as u16;
            if version != VERSION {
                return Err(SpdyError::UnsupportedVersion(version));
            }
            let bad_len = || SpdyError::InvalidLength { frame_type, length };
            let id_at = |at: usize| be32(&body[at..at + 4]) & 0x7fff_ffff;
            let frame = match frame_type {
                SYN_STREAM => {
                    if length < 10 {
                        return Err(bad_len());
                    }
                    let headers = parse_header_block(&self.decompressor.decompress(&body[10..])?)?;
                    let id = id_at(0);
                    if id == 0 {
                        return Err(SpdyError::ZeroStreamId(frame_type));
                    }
                    Frame::SynStream {
                        stream_id: id,
                        associated_to: id_at(4),
                        priority: body[8] >> 5,
                        slot: body[9],
                        flags,
                        headers,
                    }
                }
                SYN_REPLY | HEADERS => {
                    if length < 4 {
                        return Err(bad_len());
                    }
                    let headers = parse_header_block(&self.decompressor.decompress(&body[4..])?)?;
                    let id = id_at(0);
                    if id == 0 {
                        return Err(SpdyError::ZeroStreamId(frame_type));
                    }
                    if frame_type == SYN_REPLY {
                        Frame::SynReply {
                            stream_id: id,
                            flags,
                            headers,
                        }
                    } else {
                        Frame::Headers {
                            stream_id: id,
                            flags,
                            headers,
                        }
                    }
                }
                RST_STREAM => {
                    if length != 8 {
                        return Err(bad_len());
                    }
                    Frame::RstStream {
                        stream_id: id_at(0),
                        status: be32(&body[4..8]),
                    }
                }
                SETTINGS => {
                    if length < 4 {
                        return Err(bad_len());
                    }
                    let count = be32(&body[0..4]) as usize;
                    if count.checked_mul(8).and_then(|n| n.checked_add(4)) != Some(length) {
                        return Err(bad_len());
                    }
                    let entries = body[4..]
                        .chunks_exact(8)
                        .map(|e| Setting {
                            flags: e[0],
                            id: be32(&e[0..4]) & 0x00ff_ffff,
                            value: be32(&e[4..8]),
                        })
                        .collect();
                    Frame::Settings { flags, entries }
                }
                PING => {
                    if length != 4 {
                        return Err(bad_len());
                    }
                    Frame::Ping {
                        id: be32(&body[0..4]),
                    }
                }
                GOAWAY => {
                    // SPDY/3 adds a status to SPDY/2's 4-byte body; accept both.
                    match length {
                        4 => Frame::GoAway {
                            last_good_stream_id: id_at(0),
                            status: 0,
                        },
                        8 => Frame::GoAway {
                            last_good_stream_id: id_at(0),
                            status: be32(&body[4..8]),
                        },
                        _ => return Err(bad_len()),
                    }
                }
                WINDOW_UPDATE => {
                    if length != 8 {
                        return Err(bad_len());
                    }
                    Frame::WindowUpdate {
                        stream_id: id_at(0),
                        delta: be32(&body[4..8]) & 0x7fff_ffff,
                    }
                }
                _ => continue,
            };
            return Ok(Some(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: headers(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                slot: 2,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: Vec::new(),
            },
            Frame::Headers {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: headers(&[("x", "a\0b")]),
            },
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![Setting {
                    flags: 1,
                    id: 7,
                    value: 65536,
                }],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway {
                last_good_stream_id: 5,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1000,
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 5,
                flags: 0,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn dictionary_has_the_specified_size() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(DICTIONARY.ends_with(b",*,enq=0."));
    }

    #[test]
    fn frames_round_trip_one_by_one_and_byte_by_byte() {
        let mut enc = Encoder::new().unwrap();
        let mut wire = BytesMut::new();
        for f in all_frames() {
            enc.encode(&f, &mut wire).unwrap();
        }
        // All at once.
        let mut dec = Decoder::new();
        let mut buf = wire.clone();
        let mut got = Vec::new();
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            got.push(f);
        }
        assert_eq!(got, all_frames());
        assert!(buf.is_empty());
        // One byte at a time, as a peer that writes each field separately delivers them.
        let mut dec = Decoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, all_frames());
    }

    #[test]
    fn header_blocks_share_one_compression_context() {
        let mut enc = Encoder::new().unwrap();
        let frame = Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: headers(&[("streamtype", "data"), ("port", "80")]),
        };
        let mut first = BytesMut::new();
        enc.encode(&frame, &mut first).unwrap();
        let mut second = BytesMut::new();
        enc.encode(&frame, &mut second).unwrap();
        // The second block refers back to the first one: it is shorter.
        assert!(second.len() < first.len(), "{first:?} {second:?}");
        // The first block names the dictionary (FDICT set in the zlib header).
        assert_eq!(first[19] & 0x20, 0x20);
        assert_eq!(
            be32(&first[20..24]),
            0xe3c6_a7c2,
            "adler-32 of the dictionary"
        );
        // A decoder that missed the first block cannot read the second.
        let mut fresh = Decoder::new();
        assert!(fresh.decode(&mut second.clone()).is_err());
        let mut dec = Decoder::new();
        assert_eq!(dec.decode(&mut first).unwrap(), Some(frame.clone()));
        assert_eq!(dec.decode(&mut second).unwrap(), Some(frame));
    }

    #[test]
    fn a_block_compressed_with_the_dictionary_by_plain_zlib_decodes() {
        // Compress a header block independently of Encoder: a zlib stream with the dictionary.
        let block = header_block(&headers(&[("streamtype", "error"), ("port", "9")])).unwrap();
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(&DICTIONARY).unwrap();
        let mut compressed = Vec::with_capacity(1024);
        z.compress_vec(&block, &mut compressed, FlushCompress::Sync)
            .unwrap();
        let mut body = BytesMut::new();
        body.put_u32(1);
        body.put_u32(0);
        body.put_u16(0);
        body.put_slice(&compressed);
        let mut wire = BytesMut::new();
        put_control(&mut wire, SYN_STREAM, 0, &body).unwrap();
        let frame = Decoder::new().decode(&mut wire).unwrap().unwrap();
        match frame {
            Frame::SynStream { headers: h, .. } => {
                assert_eq!(header(&h, "streamType"), Some("error"));
                assert_eq!(header(&h, "port"), Some("9"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        let control = |version: u16, ty: u16, body: &[u8]| {
            let mut b = BytesMut::new();
            b.put_u16(0x8000 | version);
            b.put_u16(ty);
            b.put_u32(body.len() as u32);
            b.put_slice(body);
            b
        };
        let mut dec = Decoder::new();
        assert!(matches!(
            dec.decode(&mut control(2, PING, &[0, 0, 0, 1])),
            Err(SpdyError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            dec.decode(&mut control(3, PING, &[0, 0, 1])),
            Err(SpdyError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec.decode(&mut control(3, RST_STREAM, &[0; 4])),
            Err(SpdyError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec.decode(&mut control(3, SETTINGS, &[0, 0, 0, 2, 0, 0, 0, 0])),
            Err(SpdyError::InvalidLength { .. })
        ));
        assert!(matches!(
            dec.decode(&mut control(3, SYN_STREAM, &[0; 9])),
            Err(SpdyError::InvalidLength { .. })
        ));
        // Garbage instead of a zlib stream.
        let mut garbage = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        garbage.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
        assert!(matches!(
            Decoder::new().decode(&mut control(3, SYN_STREAM, &garbage)),
            Err(SpdyError::Decompress(_))
        ));
        // Unknown control types are skipped.
        let mut buf = control(3, 0x77, b"whatever");
        buf.extend_from_slice(&control(3, PING, &[0, 0, 0, 9]));
        assert_eq!(
            Decoder::new().decode(&mut buf).unwrap(),
            Some(Frame::Ping { id: 9 })
        );
    }

    #[test]
    fn malformed_header_blocks_are_errors() {
        assert!(parse_header_block(&[0, 0]).is_err());
        assert!(parse_header_block(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a', 0, 0, 0, 0]).is_err());
        let ok = parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 1, b'A', 0, 0, 0, 1, b'v']).unwrap();
        assert_eq!(ok, headers(&[("a", "v")]));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let len = (next() % 64) as usize;
            let mut buf = BytesMut::new();
            for _ in 0..len {
                buf.put_u8(next() as u8);
            }
            if next() % 2 == 0 && buf.len() >= 8 {
                // Make it a plausible SPDY/3 control frame with a short length.
                buf[0] = 0x80;
                buf[1] = 3;
                buf[5] = 0;
                buf[6] = 0;
                buf[7] = (len.saturating_sub(8)) as u8;
            }
            let mut dec = Decoder::new();
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }

    #[test]
    fn unencodable_frames_are_errors() {
        let mut enc = Encoder::new().unwrap();
        let mut out = BytesMut::new();
        assert!(
            enc.encode(
                &Frame::RstStream {
                    stream_id: 0x8000_0001,
                    status: 1
                },
                &mut out
            )
            .is_err()
        );
        assert!(
            enc.encode(
                &Frame::Settings {
                    flags: 0,
                    entries: vec![Setting {
                        flags: 0,
                        id: 0x0100_0000,
                        value: 0
                    }]
                },
                &mut out
            )
            .is_err()
        );
    }
}
