//! Protobuf → JSON: the `k8s\0` + `runtime.Unknown` envelope and the object message inside it,
//! driven by the schema table. Renders JSON as Kubernetes' Go types would: zero values of
//! `omitempty` fields are left out, pointers keep theirs. Never guesses: an unknown kind or field
//! number is 415, malformed bytes 400; never panics.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{self, Card, Field, Message, Ty};
use super::wire::{Reader, WireType};
use super::{CONTENT_TYPE, MAGIC, MAX_DEPTH};
use crate::ApiError;

/// See [`super::decode`].
pub(crate) fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the k8s\\0 magic")
    })?;
    let env = decode_envelope(rest)?;
    if !env.content_encoding.is_empty() {
        return Err(ApiError::unsupported_media_type(format!(
            "protobuf envelope contentEncoding {:?} is not supported",
            env.content_encoding
        )));
    }
    if !env.content_type.is_empty() && env.content_type != CONTENT_TYPE {
        return Err(ApiError::unsupported_media_type(format!(
            "protobuf envelope contentType {:?} is not supported",
            env.content_type
        )));
    }
    let msg = schema::top_level(&env.api_version, &env.kind).ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "protobuf decoding of kind {:?} in {:?} is not supported; send JSON",
            env.kind, env.api_version
        ))
    })?;
    let raw = env
        .raw
        .ok_or_else(|| ApiError::bad_request("protobuf envelope carries no object (raw)"))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(env.api_version));
    obj.insert("kind".into(), Value::String(env.kind));
    decode_into(msg, raw, 1, &mut obj)?;
    Ok(Value::Object(obj))
}

/// See [`super::decode_watch_event`].
pub(crate) fn decode_watch_event(buf: &[u8]) -> Result<(String, Value), ApiError> {
    let mut event_type = String::new();
    let mut object = None;
    let mut r = Reader::new(buf);
    while let Some((num, wt)) = r.tag()? {
        match (num, wt) {
            (1, WireType::Len) => event_type = utf8(r.bytes()?, "WatchEvent", 1)?,
            (2, WireType::Len) => {
                let mut ext = Reader::new(r.bytes()?);
                while let Some((n, w)) = ext.tag()? {
                    match (n, w) {
                        (1, WireType::Len) => object = Some(decode(ext.bytes()?)?),
                        _ => ext.skip(w)?,
                    }
                }
            }
            (n, w) => {
                return Err(ApiError::bad_request(format!(
                    "protobuf WatchEvent field {n} (wire type {w:?}) is not supported"
                )));
            }
        }
    }
    let object =
        object.ok_or_else(|| ApiError::bad_request("protobuf WatchEvent has no object"))?;
    Ok((event_type, object))
}

/// The fields of `runtime.Unknown` that matter.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: Option<&'a [u8]>,
    content_encoding: String,
    content_type: String,
}

fn decode_envelope(buf: &[u8]) -> Result<Envelope<'_>, ApiError> {
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: None,
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(buf);
    while let Some((num, wt)) = r.tag()? {
        match (num, wt) {
            (1, WireType::Len) => {
                let tm = r.bytes()?;
                let mut t = Reader::new(tm);
                while let Some((n, w)) = t.tag()? {
                    match (n, w) {
                        (1, WireType::Len) => env.api_version = utf8(t.bytes()?, "TypeMeta", 1)?,
                        (2, WireType::Len) => env.kind = utf8(t.bytes()?, "TypeMeta", 2)?,
                        _ => t.skip(w)?,
                    }
                }
            }
            (2, WireType::Len) => env.raw = Some(r.bytes()?),
            (3, WireType::Len) => env.content_encoding = utf8(r.bytes()?, "Unknown", 3)?,
            (4, WireType::Len) => env.content_type = utf8(r.bytes()?, "Unknown", 4)?,
            (n, w) => {
                return Err(ApiError::unsupported_media_type(format!(
                    "protobuf envelope runtime.Unknown field {n} (wire type {w:?}) is not supported"
                )));
            }
        }
    }
    if env.kind.is_empty() || env.api_version.is_empty() {
        return Err(ApiError::bad_request(
            "protobuf envelope lacks apiVersion or kind",
        ));
    }
    Ok(env)
}

fn utf8(b: &[u8], msg: &str, num: u32) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| {
        ApiError::bad_request(format!(
            "protobuf {msg} field {num}: string is not valid UTF-8"
        ))
    })
}

fn bad_wire(msg: &Message, f: &Field, wt: WireType) -> ApiError {
    ApiError::bad_request(format!(
        "protobuf {} field {} ({}): unexpected wire type {wt:?}",
        msg.short_name(),
        f.num,
        f.name
    ))
}

/// Decodes the bytes of one message of type `msg` into `out` (fields are merged, so inlined
/// messages share the parent's object).
pub(crate) fn decode_into(
    msg: &'static Message,
    buf: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "protobuf message nesting deeper than {MAX_DEPTH}"
        )));
    }
    let mut r = Reader::new(buf);
    while let Some((num, wt)) = r.tag()? {
        let Some(f) = msg.field(num) else {
            return Err(ApiError::unsupported_media_type(format!(
                "protobuf decoding of {} field {num} is not supported; send JSON",
                msg.short_name()
            )));
        };
        match (f.card, f.ty) {
            (Card::Inline, Ty::Msg(inner)) => {
                if wt != WireType::Len {
                    return Err(bad_wire(msg, f, wt));
                }
                decode_into(inner, r.bytes()?, depth + 1, out)?;
            }
            (Card::Inline, _) => return Err(schema_error(msg, f)),
            (Card::Map, _) => {
                if wt != WireType::Len {
                    return Err(bad_wire(msg, f, wt));
                }
                let (k, v) = decode_map_entry(msg, f, r.bytes()?, depth)?;
                let entry = out
                    .entry(f.name.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(m) = entry {
                    m.insert(k, v);
                }
            }
            (Card::Many, ty) => {
                let entry = out
                    .entry(f.name.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if !entry.is_array() {
                    *entry = Value::Array(Vec::new());
                }
                let Value::Array(a) = entry else {
                    continue;
                };
                if wt == WireType::Len && matches!(ty, Ty::I32 | Ty::I64 | Ty::Bool) {
                    // A packed run of varints.
                    let mut p = Reader::new(r.bytes()?);
                    while !p.is_empty() {
                        a.push(decode_value(msg, f, WireType::Varint, &mut p, depth)?);
                    }
                } else {
                    a.push(decode_value(msg, f, wt, &mut r, depth)?);
                }
            }
            (Card::One, Ty::Msg(inner)) => {
                // A repeated occurrence of a singular message field merges into the first.
                if wt != WireType::Len {
                    return Err(bad_wire(msg, f, wt));
                }
                let bytes = r.bytes()?;
                let entry = out
                    .entry(f.name.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Value::Object(m) = entry {
                    decode_into(inner, bytes, depth + 1, m)?;
                }
            }
            (Card::One, _) => {
                let v = decode_value(msg, f, wt, &mut r, depth)?;
                if is_unset(f, &v) {
                    out.remove(f.name);
                } else {
                    out.insert(f.name.to_string(), v);
                }
            }
        }
    }
    Ok(())
}

/// Whether a singular value is left out of JSON: zero times always (Go renders them `null`),
/// other zero values unless the field keeps them.
fn is_unset(f: &Field, v: &Value) -> bool {
    match v {
        Value::Null => true,
        _ if f.keep_zero => false,
        Value::String(s) => s.is_empty() && !matches!(f.ty, Ty::Quantity | Ty::IntOrString),
        Value::Number(n) => n.as_i64() == Some(0) && !matches!(f.ty, Ty::IntOrString),
        Value::Bool(b) => !b,
        _ => false,
    }
}

fn schema_error(msg: &Message, f: &Field) -> ApiError {
    ApiError::internal(format!(
        "protobuf schema error at {} field {}",
        msg.short_name(),
        f.num
    ))
}

/// Decodes one value of `f.ty`; `Value::Null` means "unset" (a zero time, an empty raw JSON).
fn decode_value(
    msg: &'static Message,
    f: &Field,
    wt: WireType,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<Value, ApiError> {
    let want = match f.ty {
        Ty::I32 | Ty::I64 | Ty::Bool => WireType::Varint,
        _ => WireType::Len,
    };
    if wt != want {
        return Err(bad_wire(msg, f, wt));
    }
    Ok(match f.ty {
        Ty::Str => Value::String(utf8(r.bytes()?, msg.short_name(), f.num)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        // int32 is sign-extended to 64 bits on the wire; truncation is the proto rule.
        Ty::I32 => Value::from(r.varint()? as i64 as i32),
        Ty::I64 => Value::from(r.varint()? as i64),
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Msg(inner) => {
            let mut m = Map::new();
            decode_into(inner, r.bytes()?, depth + 1, &mut m)?;
            Value::Object(m)
        }
        Ty::Time => decode_time(r.bytes()?, false)?,
        Ty::MicroTime => decode_time(r.bytes()?, true)?,
        Ty::Quantity => {
            let mut q = Reader::new(r.bytes()?);
            let mut s = String::new();
            while let Some((n, w)) = q.tag()? {
                match (n, w) {
                    (1, WireType::Len) => s = utf8(q.bytes()?, "Quantity", 1)?,
                    _ => {
                        return Err(ApiError::unsupported_media_type(format!(
                            "protobuf decoding of Quantity field {n} is not supported"
                        )));
                    }
                }
            }
            Value::String(s)
        }
        Ty::RawJson => decode_raw_json(msg, f, r.bytes()?)?,
        Ty::IntOrString => decode_int_or_string(r.bytes()?)?,
    })
}

fn decode_map_entry(
    msg: &'static Message,
    f: &Field,
    buf: &[u8],
    depth: usize,
) -> Result<(String, Value), ApiError> {
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(buf);
    while let Some((n, w)) = r.tag()? {
        match n {
            1 if w == WireType::Len => key = utf8(r.bytes()?, msg.short_name(), f.num)?,
            2 => value = Some(decode_value(msg, f, w, &mut r, depth)?),
            _ => return Err(bad_wire(msg, f, w)),
        }
    }
    // An absent value is the type's zero; map values keep it (`data: {k: ""}` is meaningful).
    let value = value.unwrap_or_else(|| match f.ty {
        Ty::Quantity => Value::String("0".into()),
        Ty::I32 | Ty::I64 => Value::from(0),
        Ty::Bool => Value::Bool(false),
        Ty::Msg(_) => Value::Object(Map::new()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}

/// `metav1.Time` / `MicroTime {1 seconds, 2 nanos}` as RFC 3339 in UTC (whole seconds, or
/// microseconds for MicroTime, as Kubernetes serializes them); the zero time is `null`.
fn decode_time(buf: &[u8], micro: bool) -> Result<Value, ApiError> {
    let mut r = Reader::new(buf);
    let (mut secs, mut nanos) = (0i64, 0i32);
    while let Some((n, w)) = r.tag()? {
        match (n, w) {
            (1, WireType::Varint) => secs = r.varint()? as i64,
            (2, WireType::Varint) => nanos = r.varint()? as i64 as i32,
            _ => {
                return Err(ApiError::unsupported_media_type(format!(
                    "protobuf decoding of Time field {n} is not supported"
                )));
            }
        }
    }
    if secs == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::from_second(secs)
        .map_err(|e| ApiError::bad_request(format!("protobuf Time out of range: {e}")))?;
    let whole = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Value::String(if micro {
        let micros = nanos.clamp(0, 999_999_999) / 1000;
        format!("{whole}.{micros:06}Z")
    } else {
        format!("{whole}Z")
    }))
}

/// A message `{1 bytes raw}` whose bytes are JSON, rendered as that JSON; empty means unset.
fn decode_raw_json(msg: &Message, f: &Field, buf: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(buf);
    let mut raw: &[u8] = &[];
    while let Some((n, w)) = r.tag()? {
        match (n, w) {
            (1, WireType::Len) => raw = r.bytes()?,
            _ => {
                return Err(ApiError::unsupported_media_type(format!(
                    "protobuf decoding of {} field {} ({}) sub-field {n} is not supported",
                    msg.short_name(),
                    f.num,
                    f.name
                )));
            }
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| {
        ApiError::bad_request(format!(
            "protobuf {} field {} ({}) does not hold JSON: {e}",
            msg.short_name(),
            f.num,
            f.name
        ))
    })
}

/// `intstr.IntOrString {1 type, 2 intVal, 3 strVal}` as a JSON number or string.
fn decode_int_or_string(buf: &[u8]) -> Result<Value, ApiError> {
    let mut r = Reader::new(buf);
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, String::new());
    while let Some((n, w)) = r.tag()? {
        match (n, w) {
            (1, WireType::Varint) => kind = r.varint()?,
            (2, WireType::Varint) => int_val = r.varint()? as i64 as i32,
            (3, WireType::Len) => str_val = utf8(r.bytes()?, "IntOrString", 3)?,
            _ => {
                return Err(ApiError::unsupported_media_type(format!(
                    "protobuf decoding of IntOrString field {n} is not supported"
                )));
            }
        }
    }
    match kind {
        0 => Ok(Value::from(int_val)),
        1 => Ok(Value::String(str_val)),
        k => Err(ApiError::bad_request(format!(
            "protobuf IntOrString has unknown type {k}"
        ))),
    }
}
