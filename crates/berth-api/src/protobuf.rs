//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) in both directions: request
//! bodies decoded into the JSON model, and objects, lists and watch events encoded from it for
//! clients that ask for protobuf (client-go does).
//!
//! Owns the wire format (`wire`), the `k8s\0` + `runtime.Unknown` envelope, the decoder
//! (`decode`), the encoder (`encode`) and the schema they share (`schema`, with the table in
//! `generated.rs` produced by `scripts/gen-protobuf-schema.py` from Kubernetes' `generated.proto`
//! files and Go types, for every message reachable from the built-in kinds). It must not do I/O,
//! defaulting or validation, and it never guesses: decoding an unknown kind or field number
//! gives `415 UnsupportedMediaType`, malformed bytes `400`; encoding anything the table cannot
//! express exactly gives an [`EncodeError`], on which callers answer JSON.

mod decode;
mod encode;
mod generated;
mod schema;
mod wire;

use serde_json::Value;

use crate::ApiError;
pub use encode::EncodeError;

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The media type of protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of protobuf watch streams: length-prefixed `WatchEvent` frames.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Maximum nesting depth of messages accepted by the decoder and written by the encoder.
pub const MAX_DEPTH: usize = 48;

/// Decodes a protobuf body (`k8s\0` + `runtime.Unknown`) into the JSON object it encodes
/// (apiVersion and kind set from the envelope). Unsupported kinds or fields give a clear ApiError
/// 415 UnsupportedMediaType naming the kind or the message and field number; malformed bytes
/// give 400 BadRequest; never panics.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    decode::decode(body)
}

/// Decodes one `metav1.WatchEvent` of a protobuf watch stream (a frame without its 4-byte
/// length) into its type and object, the object as [`decode`] gives it.
pub fn decode_watch_event(event: &[u8]) -> Result<(String, Value), ApiError> {
    decode::decode_watch_event(event)
}

/// Whether objects of `kind` in `api_version` (or lists, with `kind` such as `PodList`) can be
/// encoded.
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema::top_level(api_version, kind).is_some()
}

/// The object message of `obj`, a `kind` of `api_version`, without the envelope: what a list
/// carries per item, and what [`envelope`] and [`watch_frame`] wrap.
pub fn encode_raw(api_version: &str, kind: &str, obj: &Value) -> Result<Vec<u8>, EncodeError> {
    encode::encode_raw(api_version, kind, obj)
}

/// `obj` as a complete protobuf body (`k8s\0` + `runtime.Unknown`), its type from its own
/// `apiVersion` and `kind`.
pub fn encode(obj: &Value) -> Result<Vec<u8>, EncodeError> {
    let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (s("apiVersion"), s("kind"));
    let raw = encode::encode_raw(api_version, kind, obj)?;
    Ok(envelope(api_version, kind, &raw))
}

/// Wraps an object message (from [`encode_raw`]) in `k8s\0` + `runtime.Unknown`.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    encode::envelope(api_version, kind, raw)
}

/// A complete `<Kind>List` body: `list_meta` (`metav1.ListMeta` as JSON) and the items, each
/// an object message from [`encode_raw`], concatenated without decoding them again.
pub fn encode_list<B: AsRef<[u8]>>(
    api_version: &str,
    list_kind: &str,
    list_meta: &Value,
    items: &[B],
) -> Result<Vec<u8>, EncodeError> {
    encode::encode_list(api_version, list_kind, list_meta, items)
}

/// One frame of a protobuf watch stream: a 4-byte big-endian length, then `metav1.WatchEvent
/// {type, object: RawExtension{raw: k8s\0 + Unknown{apiVersion, kind, raw}}}`, as Kubernetes
/// writes them. `raw` is an object message from [`encode_raw`].
pub fn watch_frame(event_type: &str, api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    encode::watch_frame(event_type, api_version, kind, raw)
}

#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod tests;
