//! JSON → protobuf: objects, lists and watch events of the kinds in the schema table, as
//! Kubernetes' protobuf serializer writes them (fields in number order, map entries sorted by
//! key, repeated scalars unpacked). Every JSON field must be in the table with a value of the
//! right JSON type; anything else is an [`EncodeError`] (callers then answer JSON), so the
//! encoder never emits bytes that a Kubernetes client would read differently from the JSON.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{self, Card, Field, Message, Ty};
use super::wire::{self, WireType};
use super::{MAGIC, MAX_DEPTH};

/// Why an object could not be encoded as protobuf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The table has no message for this kind.
    #[error("no protobuf schema for kind {kind:?} in {api_version:?}")]
    UnsupportedKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// A JSON field the message does not have.
    #[error("{message} has no field {field:?}")]
    UnknownField {
        /// The message, e.g. `core.v1.PodSpec`.
        message: &'static str,
        /// The JSON field name.
        field: String,
    },
    /// A JSON value of the wrong type, or one the protobuf type cannot hold.
    #[error("{message}.{field}: {problem}")]
    BadValue {
        /// The message, e.g. `core.v1.PodSpec`.
        message: &'static str,
        /// The JSON field name.
        field: &'static str,
        /// What is wrong with the value.
        problem: String,
    },
    /// Objects nested deeper than [`MAX_DEPTH`].
    #[error("object nesting deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// See [`super::encode_raw`].
pub(crate) fn encode_raw(
    api_version: &str,
    kind: &str,
    obj: &Value,
) -> Result<Vec<u8>, EncodeError> {
    let msg = top_level(api_version, kind)?;
    let Value::Object(m) = obj else {
        return Err(EncodeError::BadValue {
            message: msg.short_name(),
            field: "",
            problem: "the object is not a JSON object".into(),
        });
    };
    let mut out = Vec::with_capacity(1024);
    encode_message(msg, m, 1, &mut out)?;
    Ok(out)
}

fn top_level(api_version: &str, kind: &str) -> Result<&'static Message, EncodeError> {
    schema::top_level(api_version, kind).ok_or_else(|| EncodeError::UnsupportedKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })
}

/// Appends the `runtime.TypeMeta` message of the envelope.
fn type_meta(api_version: &str, kind: &str) -> Vec<u8> {
    let mut tm = Vec::with_capacity(api_version.len() + kind.len() + 4);
    wire::put_bytes(&mut tm, 1, api_version.as_bytes());
    wire::put_bytes(&mut tm, 2, kind.as_bytes());
    tm
}

/// Writes `k8s\0` + `runtime.Unknown{typeMeta, raw}` whose raw content is `raw_len` bytes
/// written by `fill`, then the empty contentEncoding and contentType Kubernetes writes too.
fn envelope_with(
    api_version: &str,
    kind: &str,
    raw_len: usize,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let tm = type_meta(api_version, kind);
    let mut out = Vec::with_capacity(MAGIC.len() + tm.len() + raw_len + 16);
    out.extend_from_slice(MAGIC);
    wire::put_bytes(&mut out, 1, &tm);
    wire::put_tag(&mut out, 2, WireType::Len);
    wire::put_varint(&mut out, raw_len as u64);
    let before = out.len();
    fill(&mut out);
    debug_assert_eq!(out.len() - before, raw_len);
    wire::put_bytes(&mut out, 3, b"");
    wire::put_bytes(&mut out, 4, b"");
    out
}

/// See [`super::envelope`].
pub(crate) fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    envelope_with(api_version, kind, raw.len(), |out| {
        out.extend_from_slice(raw)
    })
}

/// The length of field `num` holding `len` bytes.
fn field_len(num: u32, len: usize) -> usize {
    wire::varint_len(u64::from(num) << 3) + wire::varint_len(len as u64) + len
}

/// See [`super::encode_list`].
pub(crate) fn encode_list<B: AsRef<[u8]>>(
    api_version: &str,
    list_kind: &str,
    list_meta: &Value,
    items: &[B],
) -> Result<Vec<u8>, EncodeError> {
    let list = top_level(api_version, list_kind)?;
    let bad = |field: &'static str, problem: &str| EncodeError::BadValue {
        message: list.short_name(),
        field,
        problem: problem.to_string(),
    };
    let meta_f = list
        .field_named("metadata")
        .ok_or_else(|| bad("metadata", "not a list message"))?;
    let items_f = list
        .field_named("items")
        .ok_or_else(|| bad("items", "not a list message"))?;
    let mut meta = Vec::new();
    match list_meta {
        Value::Object(m) => encode_message(schema::list_meta(), m, 1, &mut meta)?,
        Value::Null => {}
        _ => return Err(bad("metadata", "not an object")),
    }
    let raw_len = field_len(meta_f.num, meta.len())
        + items
            .iter()
            .map(|i| field_len(items_f.num, i.as_ref().len()))
            .sum::<usize>();
    Ok(envelope_with(api_version, list_kind, raw_len, |out| {
        wire::put_bytes(out, meta_f.num, &meta);
        for item in items {
            wire::put_bytes(out, items_f.num, item.as_ref());
        }
    }))
}

/// See [`super::watch_frame`].
pub(crate) fn watch_frame(event_type: &str, api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    // metav1.WatchEvent {1 type, 2 RawExtension{1 raw}}, raw being the enveloped object.
    let tm = type_meta(api_version, kind);
    let env_len = MAGIC.len() + field_len(1, tm.len()) + field_len(2, raw.len()) + 4;
    let ext_len = field_len(1, env_len);
    let event_len = field_len(1, event_type.len()) + field_len(2, ext_len);
    let mut out = Vec::with_capacity(4 + event_len);
    out.extend_from_slice(&u32::try_from(event_len).unwrap_or(u32::MAX).to_be_bytes());
    wire::put_bytes(&mut out, 1, event_type.as_bytes());
    wire::put_tag(&mut out, 2, WireType::Len);
    wire::put_varint(&mut out, ext_len as u64);
    wire::put_tag(&mut out, 1, WireType::Len);
    wire::put_varint(&mut out, env_len as u64);
    out.extend_from_slice(MAGIC);
    wire::put_bytes(&mut out, 1, &tm);
    wire::put_bytes(&mut out, 2, raw);
    wire::put_bytes(&mut out, 3, b"");
    wire::put_bytes(&mut out, 4, b"");
    debug_assert_eq!(out.len(), 4 + event_len);
    out
}

/// Encodes the JSON object `obj` as message `msg`, rejecting fields the message lacks.
fn encode_message(
    msg: &'static Message,
    obj: &Map<String, Value>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let used = encode_fields(msg, obj, depth, out)?;
    let type_meta = if msg.type_meta {
        usize::from(obj.contains_key("apiVersion")) + usize::from(obj.contains_key("kind"))
    } else {
        0
    };
    if used + type_meta != obj.len() {
        let unknown = obj
            .keys()
            .find(|k| !(msg.type_meta && (*k == "apiVersion" || *k == "kind")) && !knows(msg, k))
            .cloned()
            .unwrap_or_default();
        return Err(EncodeError::UnknownField {
            message: msg.short_name(),
            field: unknown,
        });
    }
    Ok(())
}

/// Whether `name` is a JSON field of `msg` (inlined messages included).
fn knows(msg: &Message, name: &str) -> bool {
    msg.fields.iter().any(|f| match (f.card, f.ty) {
        (Card::Inline, Ty::Msg(inner)) => knows(inner, name),
        _ => f.name == name,
    })
}

/// Appends the fields of `msg` found in `obj`; returns how many JSON fields were used.
fn encode_fields(
    msg: &'static Message,
    obj: &Map<String, Value>,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    let mut used = 0;
    for f in msg.fields {
        if let (Card::Inline, Ty::Msg(inner)) = (f.card, f.ty) {
            let open = wire::open(out, f.num);
            let n = encode_fields(inner, obj, depth + 1, out)?;
            if n == 0 {
                out.truncate(open.tag_at);
            } else {
                open.close(out);
            }
            used += n;
            continue;
        }
        let Some(v) = obj.get(f.name) else {
            continue;
        };
        used += 1;
        if v.is_null() {
            continue;
        }
        match f.card {
            Card::One => encode_value(msg, f, f.num, v, depth, out)?,
            Card::Many => {
                let Value::Array(items) = v else {
                    return Err(bad(msg, f, "not an array"));
                };
                for item in items {
                    encode_value(msg, f, f.num, item, depth, out)?;
                }
            }
            Card::Map => {
                let Value::Object(m) = v else {
                    return Err(bad(msg, f, "not an object"));
                };
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, val) in entries {
                    let open = wire::open(out, f.num);
                    wire::put_bytes(out, 1, k.as_bytes());
                    encode_value(msg, f, 2, val, depth, out)?;
                    open.close(out);
                }
            }
            Card::Inline => return Err(bad(msg, f, "inlined field is not a message")),
        }
    }
    Ok(used)
}

fn bad(msg: &'static Message, f: &'static Field, problem: &str) -> EncodeError {
    EncodeError::BadValue {
        message: msg.short_name(),
        field: f.name,
        problem: problem.to_string(),
    }
}

/// Appends one value of `f.ty` as field `num`.
fn encode_value(
    msg: &'static Message,
    f: &'static Field,
    num: u32,
    v: &Value,
    depth: usize,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let int = |v: &Value| {
        v.as_i64()
            .ok_or_else(|| bad(msg, f, &format!("{v} is not an integer")))
    };
    let string = || {
        v.as_str()
            .ok_or_else(|| bad(msg, f, &format!("{v} is not a string")))
    };
    match f.ty {
        Ty::Str => wire::put_bytes(out, num, string()?.as_bytes()),
        Ty::Bytes => {
            let b = base64::engine::general_purpose::STANDARD
                .decode(string()?)
                .map_err(|e| bad(msg, f, &format!("not base64: {e}")))?;
            wire::put_bytes(out, num, &b);
        }
        Ty::I32 => {
            let n = i32::try_from(int(v)?).map_err(|_| bad(msg, f, "out of int32 range"))?;
            // int32 is sign-extended to 64 bits on the wire.
            wire::put_varint_field(out, num, i64::from(n) as u64);
        }
        Ty::I64 => wire::put_varint_field(out, num, int(v)? as u64),
        Ty::Bool => {
            let b = v
                .as_bool()
                .ok_or_else(|| bad(msg, f, &format!("{v} is not a boolean")))?;
            wire::put_varint_field(out, num, u64::from(b));
        }
        Ty::Msg(inner) => {
            let Value::Object(m) = v else {
                return Err(bad(msg, f, "not an object"));
            };
            let open = wire::open(out, num);
            encode_message(inner, m, depth + 1, out)?;
            open.close(out);
        }
        Ty::Time | Ty::MicroTime => {
            let ts: jiff::Timestamp = string()?
                .parse()
                .map_err(|e| bad(msg, f, &format!("not an RFC 3339 time: {e}")))?;
            let open = wire::open(out, num);
            wire::put_varint_field(out, 1, ts.as_second() as u64);
            wire::put_varint_field(out, 2, i64::from(ts.subsec_nanosecond()) as u64);
            open.close(out);
        }
        Ty::Quantity => {
            let open = wire::open(out, num);
            match v {
                Value::String(s) => wire::put_bytes(out, 1, s.as_bytes()),
                Value::Number(n) => wire::put_bytes(out, 1, n.to_string().as_bytes()),
                _ => return Err(bad(msg, f, &format!("{v} is not a quantity"))),
            }
            open.close(out);
        }
        Ty::IntOrString => {
            let open = wire::open(out, num);
            match v {
                Value::String(s) => {
                    wire::put_varint_field(out, 1, 1);
                    wire::put_varint_field(out, 2, 0);
                    wire::put_bytes(out, 3, s.as_bytes());
                }
                Value::Number(_) => {
                    let n =
                        i32::try_from(int(v)?).map_err(|_| bad(msg, f, "out of int32 range"))?;
                    wire::put_varint_field(out, 1, 0);
                    wire::put_varint_field(out, 2, i64::from(n) as u64);
                    wire::put_bytes(out, 3, b"");
                }
                _ => return Err(bad(msg, f, &format!("{v} is not an int or a string"))),
            }
            open.close(out);
        }
        Ty::RawJson => {
            let raw = serde_json::to_vec(v).map_err(|e| bad(msg, f, &e.to_string()))?;
            let open = wire::open(out, num);
            wire::put_bytes(out, 1, &raw);
            open.close(out);
        }
    }
    Ok(())
}
