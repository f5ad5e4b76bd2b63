//! Request bodies and response formats: decoding JSON, YAML and protobuf bodies, choosing the
//! patch type from the content type, and negotiating the response representation (JSON,
//! protobuf or a `meta.k8s.io` Table) from the `Accept` header.
//!
//! This module owns content types only; it does not look at what an object means.

use berth_api::{ApiError, table::IncludeObject};
use serde_json::Value;

/// The largest request body accepted, as in Kubernetes (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The content type of protobuf bodies.
pub const PROTOBUF: &str = berth_api::protobuf::CONTENT_TYPE;

/// The essence of a content type: lowercased, parameters dropped.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes an object body by its content type. A missing content type is JSON (the Python
/// client sends none).
pub fn decode_object(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let ct = content_type.map(essence).unwrap_or_default();
    let value = match ct.as_str() {
        "" | "application/json" | "*/*" => decode_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body)?,
        PROTOBUF => berth_api::protobuf::decode(body)?,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
            )));
        }
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be an object (got a JSON value that is not an object)",
        ));
    }
    Ok(value)
}

/// Parses JSON, with an error message naming the problem.
pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't decode the request body as JSON: {e}"))
    })
}

/// Parses YAML (a single document) into JSON, with an error message naming the problem.
pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    // JSON is YAML; parse it as JSON first, which is what clients send in practice.
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    serde_saphyr::from_slice::<Value>(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't decode the request body as YAML: {e}"))
    })
}

/// The kind of patch a PATCH request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a content type, or 415.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, ApiError> {
        match content_type.map(essence).as_deref() {
            Some("application/json-patch+json") => Ok(PatchType::Json),
            Some("application/merge-patch+json") => Ok(PatchType::Merge),
            Some("application/strategic-merge-patch+json") => Ok(PatchType::Strategic),
            Some("application/apply-patch+yaml") | Some("application/apply-patch+cbor") => {
                Ok(PatchType::Apply)
            }
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {})",
                other.unwrap_or("no content type")
            ))),
        }
    }

    /// Decodes the patch document.
    pub fn decode(self, body: &[u8]) -> Result<Value, ApiError> {
        match self {
            PatchType::Apply => decode_yaml(body),
            _ => decode_json(body),
        }
    }
}

/// The representation a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The objects as JSON.
    Json,
    /// The objects as Kubernetes protobuf (`k8s\0` + `runtime.Unknown`), when the kind's
    /// schema is known and every object encodes; JSON otherwise.
    Protobuf,
    /// A `meta.k8s.io/v1` Table (or `v1beta1`, same shape).
    Table {
        /// Which object to embed in each row.
        include: IncludeObject,
        /// The Table's apiVersion version part (`v1` or `v1beta1`).
        beta: bool,
    },
}

/// Chooses the response representation from the `Accept` header and the `includeObject`
/// query parameter. A Table anywhere in the header wins; otherwise the first of JSON and
/// protobuf listed. JSON is always acceptable, even when only protobuf is asked for (the
/// protobuf answer falls back to JSON for kinds it cannot encode); an `Accept` that admits
/// neither JSON, protobuf nor a Table is 406.
pub fn negotiate(accept: Option<&str>, include_object: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    let mut first = None;
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = "";
        let mut g = "";
        let mut v = "";
        for p in parts {
            if let Some((k, val)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = val.trim(),
                    "g" => g = val.trim(),
                    "v" => v = val.trim(),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/json" | "application/yaml" | "*/*" | "application/*" => {
                if as_ == "Table" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1") {
                    let include = match include_object {
                        Some("None") => IncludeObject::None,
                        Some("Object") => IncludeObject::Object,
                        _ => IncludeObject::Metadata,
                    };
                    return Ok(Output::Table {
                        include,
                        beta: v == "v1beta1",
                    });
                }
                if as_.is_empty() {
                    first.get_or_insert(Output::Json);
                }
            }
            PROTOBUF if as_.is_empty() => {
                first.get_or_insert(Output::Protobuf);
            }
            _ => {}
        }
    }
    match first {
        Some(o) => Ok(o),
        // Protobuf in another form (e.g. `as=PartialObjectMetadataList`): answer JSON.
        None if accept.contains(PROTOBUF) => Ok(Output::Json),
        None => Err(ApiError::not_acceptable(format!(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf, application/json;as=Table;v=v1;g=meta.k8s.io (asked: {accept})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_tables_and_json() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(matches!(
            negotiate(Some(kubectl), None).unwrap(),
            Output::Table { beta: false, .. }
        ));
        assert_eq!(negotiate(None, None).unwrap(), Output::Json);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*"), None).unwrap(),
            Output::Protobuf
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf,application/json"),
                None
            )
            .unwrap(),
            Output::Protobuf
        );
        assert_eq!(
            negotiate(
                Some("application/json, application/vnd.kubernetes.protobuf"),
                None
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(
            negotiate(
                Some("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
                None
            )
            .unwrap(),
            Output::Json
        );
        assert_eq!(negotiate(Some("text/html"), None).unwrap_err().code, 406);
    }

    #[test]
    fn decodes_bodies_with_clear_errors() {
        assert_eq!(decode_object(None, b"{\"a\":1}").unwrap()["a"], 1);
        assert_eq!(
            decode_object(Some("application/yaml"), b"a: 1\nb: x\n").unwrap()["b"],
            "x"
        );
        assert_eq!(decode_object(None, b"{\"a\":").unwrap_err().code, 400);
        assert_eq!(decode_object(None, b"[1]").unwrap_err().code, 400);
        assert_eq!(
            decode_object(Some("text/plain"), b"x").unwrap_err().code,
            415
        );
        assert_eq!(
            PatchType::from_content_type(Some("application/json"))
                .unwrap_err()
                .code,
            415
        );
    }
}
