//! API errors and their wire form, the Kubernetes `Status` object.
//!
//! Every failure the API server returns is an [`ApiError`]: an HTTP code, a machine-readable
//! reason (`NotFound`, `Invalid`, `Conflict`...), a message naming the problem and, for
//! validation failures, the causes with their field paths. This module owns the mapping to the
//! `Status` JSON; it must not decide *when* an error happens.

use serde_json::{Value, json};

/// One cause of a failure, usually a field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// A machine-readable reason, e.g. `FieldValueInvalid`, `FieldValueRequired`.
    pub reason: String,
    /// What is wrong, for people.
    pub message: String,
    /// The field path, e.g. `spec.containers[0].name`; empty when the cause is not a field.
    pub field: String,
}

impl StatusCause {
    /// A cause with the given reason, field and message.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
            field: field.into(),
        }
    }
    /// `FieldValueRequired` at `field`.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new("FieldValueRequired", field, "Required value")
    }
    /// `FieldValueInvalid` at `field`, with the offending value shown as Kubernetes does.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        let field = field.into();
        let shown = match value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        let message = format!("Invalid value: {shown}: {}", detail.as_ref());
        Self::new("FieldValueInvalid", field, message)
    }
    /// `FieldValueNotSupported` at `field`.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let shown = match value {
            Value::String(s) => format!("\"{s}\""),
            other => other.to_string(),
        };
        Self::new(
            "FieldValueNotSupported",
            field,
            format!("Unsupported value: {shown}: supported values: {list}"),
        )
    }
    /// `FieldValueForbidden` at `field`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            "FieldValueForbidden",
            field,
            format!("Forbidden: {}", detail.into()),
        )
    }
    /// `FieldValueDuplicate` at `field`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Self::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {value}"),
        )
    }
}

/// The machine-readable reason of a failure (`Status.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// 400.
    BadRequest,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// 405.
    MethodNotAllowed,
    /// 406.
    NotAcceptable,
    /// 409, object exists.
    AlreadyExists,
    /// 409, optimistic-concurrency or field-manager conflict.
    Conflict,
    /// 410, resource version too old.
    Gone,
    /// 410 for a watch from a compacted revision is also `Expired` in some paths.
    Expired,
    /// 413.
    RequestEntityTooLarge,
    /// 415.
    UnsupportedMediaType,
    /// 422.
    Invalid,
    /// 429.
    TooManyRequests,
    /// 500.
    InternalError,
    /// 503.
    ServiceUnavailable,
    /// 504.
    Timeout,
}

impl Reason {
    /// The `Status.reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadRequest => "BadRequest",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Invalid => "Invalid",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Timeout => "Timeout",
        }
    }
}

/// A failed API request, rendered as a Kubernetes `Status`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The machine-readable reason.
    pub reason: Reason,
    /// What went wrong, for people.
    pub message: String,
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind` (the resource for NotFound/AlreadyExists, the kind for Invalid).
    pub kind: Option<String>,
    /// `details.causes`.
    pub causes: Vec<StatusCause>,
    /// `details.retryAfterSeconds`.
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    /// An error with the given code, reason and message and no details.
    pub fn new(code: u16, reason: Reason, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }
    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.group = Some(group.to_string());
        self.kind = Some(kind.to_string());
        self.name = Some(name.to_string());
        self
    }
    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, Reason::BadRequest, message)
    }
    /// `401 Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(401, Reason::Unauthorized, "Unauthorized")
    }
    /// `403 Forbidden` with Kubernetes' message shape.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, Reason::Forbidden, message)
    }
    /// `404 NotFound` for `resource` (plural, with group suffix e.g. `deployments.apps`) `name`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified(group, resource);
        Self::new(
            404,
            Reason::NotFound,
            format!("{qualified} \"{name}\" not found"),
        )
        .with_details(group, resource, name)
    }
    /// `404 NotFound` for a path that names no resource.
    pub fn no_such_path(path: &str) -> Self {
        Self::new(
            404,
            Reason::NotFound,
            format!("the server could not find the requested resource ({path})"),
        )
    }
    /// `405 MethodNotAllowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, Reason::MethodNotAllowed, message)
    }
    /// `406 NotAcceptable`.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, Reason::NotAcceptable, message)
    }
    /// `409 AlreadyExists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let qualified = qualified(group, resource);
        Self::new(
            409,
            Reason::AlreadyExists,
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(group, resource, name)
    }
    /// `409 Conflict` for an optimistic-concurrency failure on an update.
    pub fn conflict(group: &str, resource: &str, name: &str, detail: &str) -> Self {
        let qualified = qualified(group, resource);
        Self::new(
            409,
            Reason::Conflict,
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {detail}"),
        )
        .with_details(group, resource, name)
    }
    /// `410 Gone` for a resource version that is too old.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Expired, message)
    }
    /// `413 RequestEntityTooLarge`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            Reason::RequestEntityTooLarge,
            format!("Request entity too large: limit is {limit}"),
        )
    }
    /// `415 UnsupportedMediaType`.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, Reason::UnsupportedMediaType, message)
    }
    /// `422 Invalid`: `Kind "name" is invalid: field: message, ...` with the causes.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = if listed.len() == 1 {
            listed[0].clone()
        } else {
            format!("[{}]", listed.join(", "))
        };
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = Self::new(
            422,
            Reason::Invalid,
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(group, kind, name);
        e.causes = causes;
        e
    }
    /// `500 InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            Reason::InternalError,
            format!("Internal error occurred: {}", message.into()),
        )
    }
    /// `503 ServiceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, Reason::ServiceUnavailable, message)
    }
    /// `429 TooManyRequests`.
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut e = Self::new(429, Reason::TooManyRequests, message);
        e.retry_after_seconds = Some(retry_after_seconds);
        e
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(name) = &self.name {
            details.insert("name".into(), json!(name));
        }
        if let Some(group) = self.group.as_ref().filter(|g| !g.is_empty()) {
            details.insert("group".into(), json!(group));
        }
        if let Some(kind) = &self.kind {
            details.insert("kind".into(), json!(kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    let mut m = serde_json::Map::new();
                    m.insert("reason".into(), json!(c.reason));
                    m.insert("message".into(), json!(c.message));
                    if !c.field.is_empty() {
                        m.insert("field".into(), json!(c.field));
                    }
                    Value::Object(m)
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// `resource.group`, or `resource` for the core group.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The `Status` object of a success, as returned by some deletes.
pub fn success_status(group: &str, resource: &str, name: &str, uid: Option<&str>) -> Value {
    let mut details = json!({ "name": name, "kind": resource });
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    if let Some(uid) = uid {
        details["uid"] = json!(uid);
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_kubernetes_shape() {
        let s = ApiError::not_found("apps", "deployments", "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn invalid_lists_causes_with_fields() {
        let e = ApiError::invalid(
            "",
            "Pod",
            "p",
            vec![StatusCause::required("spec.containers[0].image")],
        );
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(
            s["message"],
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
        assert_eq!(
            s["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
    }
}
