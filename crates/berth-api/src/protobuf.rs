//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into JSON.
//!
//! Owns the wire-format reader, the `k8s\0` + `runtime.Unknown` envelope and a static table of the
//! message types that `kubectl create <generator>` emits (field numbers from Kubernetes'
//! `generated.proto` files). It must not do I/O, defaulting or validation, and it never guesses:
//! an unknown kind or field number gives `415 UnsupportedMediaType`, malformed bytes `400`.

mod schema;
mod wire;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::ApiError;
use schema::{Field, Message, Ty};
use wire::{Reader, WireType};

/// The 4-byte prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Maximum nesting depth of messages accepted by the decoder.
pub const MAX_DEPTH: usize = 48;

/// Decodes a protobuf request body into the JSON object it encodes (apiVersion and kind set from
/// the envelope). Unsupported kinds or fields give a clear ApiError 415 UnsupportedMediaType
/// naming the kind or the message and field number; malformed bytes give 400 BadRequest; never
/// panics.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
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
    if !env.content_type.is_empty() && env.content_type != "application/vnd.kubernetes.protobuf" {
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
    decode_into(msg, &raw, 1, &mut obj)?;
    Ok(Value::Object(obj))
}

/// The fields of `runtime.Unknown` that matter.
struct Envelope {
    api_version: String,
    kind: String,
    raw: Option<Vec<u8>>,
    content_encoding: String,
    content_type: String,
}

fn decode_envelope(buf: &[u8]) -> Result<Envelope, ApiError> {
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
            (2, WireType::Len) => env.raw = Some(r.bytes()?.to_vec()),
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
        msg.name, f.num, f.name
    ))
}

/// Decodes the bytes of one message of type `msg` into `out` (fields are merged, so inline
/// messages can share the parent's object).
fn decode_into(
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
        let Some(f) = msg.fields.iter().find(|f| f.num == num) else {
            return Err(ApiError::unsupported_media_type(format!(
                "protobuf decoding of {} field {num} is not supported; send JSON",
                msg.name
            )));
        };
        if let Ty::Inline(inner) = f.ty {
            if wt != WireType::Len {
                return Err(bad_wire(msg, f, wt));
            }
            decode_into(inner, r.bytes()?, depth + 1, out)?;
            continue;
        }
        if f.ty.is_map() {
            if wt != WireType::Len {
                return Err(bad_wire(msg, f, wt));
            }
            let (k, v) = decode_map_entry(msg, f, r.bytes()?, depth)?;
            let entry = out
                .entry(f.name.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(k, v);
            }
            continue;
        }
        if let (Ty::Msg(inner), false) = (f.ty, f.repeated) {
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
            continue;
        }
        let value = decode_value(msg, f, f.ty, wt, &mut r, depth)?;
        if f.repeated {
            let entry = out
                .entry(f.name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.push(value.unwrap_or(Value::String(String::new())));
            }
        } else {
            match value {
                Some(v) => {
                    out.insert(f.name.to_string(), v);
                }
                None => {
                    out.remove(f.name);
                }
            }
        }
    }
    Ok(())
}

/// Decodes one non-map value of type `ty`; `None` means "unset" (empty string, zero of a
/// non-pointer scalar, zero Time).
fn decode_value(
    msg: &'static Message,
    f: &Field,
    ty: Ty,
    wt: WireType,
    r: &mut Reader<'_>,
    depth: usize,
) -> Result<Option<Value>, ApiError> {
    let expect = |want: WireType| {
        if wt == want {
            Ok(())
        } else {
            Err(bad_wire(msg, f, wt))
        }
    };
    Ok(match ty {
        Ty::Str => {
            expect(WireType::Len)?;
            let s = utf8(r.bytes()?, msg.name, f.num)?;
            if s.is_empty() && !f.repeated {
                None
            } else {
                Some(Value::String(s))
            }
        }
        Ty::Bytes => {
            expect(WireType::Len)?;
            let b = r.bytes()?;
            Some(Value::String(
                base64::engine::general_purpose::STANDARD.encode(b),
            ))
        }
        Ty::I32 | Ty::I32Z => {
            expect(WireType::Varint)?;
            // int32 is sign-extended to 64 bits on the wire; truncation is the proto rule.
            let v = r.varint()? as i64 as i32;
            if v == 0 && matches!(ty, Ty::I32Z) {
                None
            } else {
                Some(Value::from(v))
            }
        }
        Ty::I64 | Ty::I64Z => {
            expect(WireType::Varint)?;
            let v = r.varint()? as i64;
            if v == 0 && matches!(ty, Ty::I64Z) {
                None
            } else {
                Some(Value::from(v))
            }
        }
        Ty::Bool | Ty::BoolZ => {
            expect(WireType::Varint)?;
            let v = r.varint()? != 0;
            if !v && matches!(ty, Ty::BoolZ) {
                None
            } else {
                Some(Value::Bool(v))
            }
        }
        Ty::Msg(inner) => {
            expect(WireType::Len)?;
            let mut m = Map::new();
            decode_into(inner, r.bytes()?, depth + 1, &mut m)?;
            Some(Value::Object(m))
        }
        Ty::Time => {
            expect(WireType::Len)?;
            decode_time(r.bytes()?)?
        }
        Ty::Quantity => {
            expect(WireType::Len)?;
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
            Some(Value::String(s))
        }
        Ty::RawJson => {
            expect(WireType::Len)?;
            decode_raw_json(msg, f, r.bytes()?)?
        }
        Ty::IntOrString => {
            expect(WireType::Len)?;
            Some(decode_int_or_string(r.bytes()?)?)
        }
        Ty::Inline(_) | Ty::MapStr | Ty::MapBytes | Ty::MapQuantity => {
            return Err(ApiError::internal(format!(
                "protobuf schema error at {} field {}",
                msg.name, f.num
            )));
        }
    })
}

fn decode_map_entry(
    msg: &'static Message,
    f: &Field,
    buf: &[u8],
    depth: usize,
) -> Result<(String, Value), ApiError> {
    let value_ty = match f.ty {
        Ty::MapBytes => Ty::Bytes,
        Ty::MapQuantity => Ty::Quantity,
        _ => Ty::Str,
    };
    let vf = Field {
        num: f.num,
        name: f.name,
        ty: value_ty,
        // Map values keep empty strings: `data: {k: ""}` is meaningful.
        repeated: true,
    };
    let mut key = String::new();
    let mut value = None;
    let mut r = Reader::new(buf);
    while let Some((n, w)) = r.tag()? {
        match n {
            1 if w == WireType::Len => key = utf8(r.bytes()?, msg.name, f.num)?,
            2 => value = decode_value(msg, &vf, value_ty, w, &mut r, depth)?,
            _ => return Err(bad_wire(msg, f, w)),
        }
    }
    let value = value.unwrap_or_else(|| match value_ty {
        Ty::Quantity => Value::String("0".into()),
        _ => Value::String(String::new()),
    });
    Ok((key, value))
}

/// `metav1.Time {1 seconds, 2 nanos}` as RFC 3339 (whole seconds, as Kubernetes serializes it);
/// the zero time means unset.
fn decode_time(buf: &[u8]) -> Result<Option<Value>, ApiError> {
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
        return Ok(None);
    }
    let ts = jiff::Timestamp::from_second(secs)
        .map_err(|e| ApiError::bad_request(format!("protobuf Time out of range: {e}")))?;
    Ok(Some(Value::String(
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )))
}

/// A message `{1 bytes raw}` whose bytes are JSON, rendered as that JSON; empty means unset.
fn decode_raw_json(msg: &Message, f: &Field, buf: &[u8]) -> Result<Option<Value>, ApiError> {
    let mut r = Reader::new(buf);
    let mut raw: &[u8] = &[];
    while let Some((n, w)) = r.tag()? {
        match (n, w) {
            (1, WireType::Len) => raw = r.bytes()?,
            _ => {
                return Err(ApiError::unsupported_media_type(format!(
                    "protobuf decoding of {} field {} ({}) sub-field {n} is not supported",
                    msg.name, f.num, f.name
                )));
            }
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(raw).map(Some).map_err(|e| {
        ApiError::bad_request(format!(
            "protobuf {} field {} ({}) does not hold JSON: {e}",
            msg.name, f.num, f.name
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

#[cfg(test)]
mod tests;
