//! Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Running`): parsing, the field
//! labels each kind supports (as Kubernetes 1.33's field label conversion functions list them),
//! the values of those fields for an object, and matching.
//!
//! The API server computes [`field_values`] once per cached object and evaluates selectors
//! against it, so matching does not allocate. This module must not read labels (that is
//! `selectors`) nor decide which objects a request may see.

use serde_json::Value;

use crate::kinds::ResourceKind;
use crate::status::ApiError;

/// Why a field selector could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term has no `=`, `==` or `!=` operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    NoOperator {
        /// The whole selector.
        selector: String,
        /// The term without an operator.
        term: String,
    },
    /// A value has a bad escape sequence or an unescaped `,` or `=`.
    #[error("invalid field selector: {0}")]
    BadValue(String),
}

impl From<FieldSelectorError> for ApiError {
    fn from(e: FieldSelectorError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field label, e.g. `spec.nodeName`.
    pub field: String,
    /// The value compared with (unescaped).
    pub value: String,
    /// True for `!=`, false for `=` and `==`.
    pub negated: bool,
}

/// A field selector: the conjunction of its terms. The empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    /// The terms, all of which must hold.
    pub requirements: Vec<FieldRequirement>,
}

const META_ONLY: &[&str] = &["metadata.name", "metadata.namespace"];
const POD: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];
const EVENT: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];
const NODE: &[&str] = &["metadata.name", "spec.unschedulable"];
const NAMESPACE: &[&str] = &["metadata.name", "status.phase"];
const SECRET: &[&str] = &["metadata.name", "metadata.namespace", "type"];
const SERVICE: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.clusterIP",
    "spec.type",
];
const REPLICAS: &[&str] = &["metadata.name", "metadata.namespace", "status.replicas"];
const JOB: &[&str] = &["metadata.name", "metadata.namespace", "status.successful"];
const CSR: &[&str] = &["metadata.name", "spec.signerName"];
const RESOURCE_SLICE: &[&str] = &["metadata.name", "spec.nodeName", "spec.driver"];

/// The field labels `kind` accepts in field selectors, as Kubernetes 1.33 lists them. Kinds
/// without their own list accept `metadata.name` and `metadata.namespace`. Note that
/// `events.k8s.io` Events have no list of their own in Kubernetes, so only the metadata fields.
pub fn supported(kind: &ResourceKind) -> &'static [&'static str] {
    match (kind.group, kind.kind) {
        ("", "Pod") => POD,
        ("", "Event") => EVENT,
        ("", "Node") => NODE,
        ("", "Namespace") => NAMESPACE,
        ("", "Secret") => SECRET,
        ("", "Service") => SERVICE,
        ("", "ReplicationController") | ("apps", "ReplicaSet") => REPLICAS,
        ("batch", "Job") => JOB,
        ("certificates.k8s.io", "CertificateSigningRequest" | "ClusterTrustBundle") => CSR,
        ("resource.k8s.io", "ResourceSlice") => RESOURCE_SLICE,
        _ => META_ONLY,
    }
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn bool_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

fn int_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

/// The value of every supported field of `obj` (see [`supported`]). Missing strings are `""`,
/// booleans `true`/`false`, numbers decimal (missing numbers `0`), as Kubernetes' `GetAttrs`.
pub fn field_values(kind: &ResourceKind, obj: &Value) -> Vec<(&'static str, String)> {
    let fields = supported(kind);
    let mut out = Vec::with_capacity(fields.len());
    for &f in fields {
        let v = match f {
            "metadata.name" => str_at(obj, "/metadata/name").to_string(),
            "metadata.namespace" => str_at(obj, "/metadata/namespace").to_string(),
            "spec.hostNetwork" => bool_at(obj, "/spec/hostNetwork"),
            "spec.unschedulable" => bool_at(obj, "/spec/unschedulable"),
            "status.replicas" => int_at(obj, "/status/replicas"),
            "status.successful" => int_at(obj, "/status/succeeded"),
            "status.podIP" => {
                let ip = str_at(obj, "/status/podIP");
                if ip.is_empty() {
                    str_at(obj, "/status/podIPs/0/ip").to_string()
                } else {
                    ip.to_string()
                }
            }
            "status.podIPs" => obj
                .pointer("/status/podIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.get("ip").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
            "source" => str_at(obj, "/source/component").to_string(),
            other => {
                let pointer = format!("/{}", other.replace('.', "/"));
                match obj.pointer(&pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                }
            }
        };
        out.push((f, v));
    }
    out
}

/// Splits `s` at unescaped commas.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Splits a term at its first unescaped operator: `(lhs, op, rhs)`.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    let mut escaped = false;
    for (i, c) in term.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            continue;
        }
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn unescape(v: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(FieldSelectorError::BadValue(format!(
                        "invalid escape sequence: \\{e}"
                    )));
                }
                None => {
                    return Err(FieldSelectorError::BadValue(
                        "invalid escape sequence: \\".to_string(),
                    ));
                }
            },
            // Go prints the rune as its code point.
            ',' | '=' => {
                return Err(FieldSelectorError::BadValue(format!(
                    "unescaped character in value: {}",
                    u32::from(c)
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses `a=b,c!=d,e==f`; values may escape `\,`, `\=` and `\\`. The empty string selects
    /// everything.
    pub fn parse(s: &str) -> Result<Self, FieldSelectorError> {
        let mut requirements = Vec::new();
        for term in split_terms(s) {
            if term.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(term) else {
                return Err(FieldSelectorError::NoOperator {
                    selector: s.to_string(),
                    term: term.to_string(),
                });
            };
            requirements.push(FieldRequirement {
                field: lhs.to_string(),
                value: unescape(rhs)?,
                negated: op == "!=",
            });
        }
        Ok(Self { requirements })
    }

    /// True if the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value `field` must equal for the selector to match, if one of its terms requires it
    /// (`field=value` or `field==value`), as Kubernetes' `RequiresExactMatch`.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negated)
            .map(|r| r.value.as_str())
    }

    /// Checks every field label is supported by `kind`: `400 BadRequest` with
    /// `field label not supported: <label>` otherwise, as Kubernetes answers.
    #[allow(clippy::result_large_err)] // ApiError is the crate's error type for callers.
    pub fn validate(&self, kind: &ResourceKind) -> Result<(), ApiError> {
        let fields = supported(kind);
        for r in &self.requirements {
            if !fields.contains(&r.field.as_str()) && !is_alias(kind, &r.field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(())
    }

    /// Validates for `kind` and rewrites legacy aliases (`spec.host` on pods is
    /// `spec.nodeName`), giving the selector to match with.
    #[allow(clippy::result_large_err)] // ApiError is the crate's error type for callers.
    pub fn for_kind(mut self, kind: &ResourceKind) -> Result<Self, ApiError> {
        self.validate(kind)?;
        for r in &mut self.requirements {
            if is_alias(kind, &r.field) {
                r.field = "spec.nodeName".to_string();
            }
        }
        Ok(self)
    }

    /// True if the field values (from [`field_values`]) satisfy every term. A field absent from
    /// `values` counts as the empty string.
    pub fn matches(&self, values: &[(&str, String)]) -> bool {
        self.matches_with(|f| {
            values
                .iter()
                .find(|(k, _)| *k == f)
                .map(|(_, v)| v.as_str())
        })
    }

    /// The value that a `field=value` term of this selector requires of `field`, if it has
    /// one: every object the selector matches has that value (absent counting as empty).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| !r.negated && r.field == field)
            .map(|r| r.value.as_str())
    }

    /// Like [`Self::matches`], looking field values up through `get`.
    pub fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements
            .iter()
            .all(|r| (get(&r.field).unwrap_or("") == r.value) != r.negated)
    }
}

fn is_alias(kind: &ResourceKind, field: &str) -> bool {
    kind.group.is_empty() && kind.kind == "Pod" && field == "spec.host"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(group: &'static str, k: &'static str) -> ResourceKind {
        crate::testutil::kind(group, "v1", k, true)
    }

    #[test]
    fn parses_kubernetes_examples() {
        let s = FieldSelector::parse("x=a,y==b,z!=c").unwrap();
        assert_eq!(s.requirements.len(), 3);
        assert!(s.requirements[2].negated && !s.requirements[1].negated);
        assert_eq!(s.requirements[1].value, "b");
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(s.requires_exact_match("y"), Some("b"));
        assert_eq!(
            s.requires_exact_match("z"),
            None,
            "a negated term requires nothing"
        );
        assert_eq!(s.requires_exact_match("w"), None);
        assert_eq!(
            FieldSelector::parse("x=a\\,b").unwrap().requirements[0].value,
            "a,b"
        );
        assert_eq!(
            FieldSelector::parse("x=a\\=b\\\\").unwrap().requirements[0].value,
            "a=b\\"
        );
        assert_eq!(
            FieldSelector::parse("x=").unwrap().requirements[0].value,
            ""
        );
        assert_eq!(
            FieldSelector::parse("x=a,foo").unwrap_err().to_string(),
            "invalid selector: 'x=a,foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse("x=a=b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            FieldSelector::parse("x=a\\").unwrap_err().to_string(),
            "invalid field selector: invalid escape sequence: \\"
        );
        assert!(FieldSelector::parse("x=a\\b").is_err());
    }

    #[test]
    fn pod_fields_and_matching() {
        let pod = json!({
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.5",
                       "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}
        });
        let k = kind("", "Pod");
        let vals = field_values(&k, &pod);
        let get = |f: &str| vals.iter().find(|(k, _)| *k == f).map(|(_, v)| v.clone());
        assert_eq!(get("spec.hostNetwork").as_deref(), Some("true"));
        assert_eq!(get("spec.schedulerName").as_deref(), Some(""));
        assert_eq!(get("status.podIPs").as_deref(), Some("10.0.0.5,fd00::5"));
        let m = |s: &str| {
            FieldSelector::parse(s)
                .unwrap()
                .for_kind(&k)
                .unwrap()
                .matches(&vals)
        };
        assert!(m("spec.nodeName=n1,status.phase!=Pending"));
        assert!(m("spec.host=n1"));
        assert!(!m("status.phase=Pending"));
        assert!(m("spec.schedulerName="));
        assert!(m("metadata.name=web-1,metadata.namespace==default"));
    }

    #[test]
    fn unsupported_labels_are_bad_requests() {
        let s = FieldSelector::parse("spec.foo=bar").unwrap();
        let err = s.validate(&kind("", "Pod")).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.foo");
        assert!(
            FieldSelector::parse("metadata.namespace=x")
                .unwrap()
                .validate(&kind("", "Node"))
                .is_err()
        );
        assert!(
            FieldSelector::parse("type=Opaque")
                .unwrap()
                .validate(&kind("", "Secret"))
                .is_ok()
        );
        assert!(
            FieldSelector::parse("involvedObject.name=x")
                .unwrap()
                .validate(&kind("events.k8s.io", "Event"))
                .is_err()
        );
    }

    #[test]
    fn other_kinds_values() {
        let ev = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
                        "source": {"component": "kubelet"}, "type": "Normal"});
        let vals = field_values(&kind("", "Event"), &ev);
        assert!(vals.contains(&("source", "kubelet".to_string())));
        assert!(vals.contains(&("involvedObject.kind", "Pod".to_string())));
        assert!(vals.contains(&("involvedObject.uid", String::new())));
        let rs = json!({"metadata": {"name": "r"}, "status": {"replicas": 3}});
        assert!(
            field_values(&kind("apps", "ReplicaSet"), &rs)
                .contains(&("status.replicas", "3".to_string()))
        );
        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 1}});
        assert!(
            field_values(&kind("batch", "Job"), &job)
                .contains(&("status.successful", "1".to_string()))
        );
        let node = json!({"metadata": {"name": "n"}});
        assert_eq!(
            field_values(&kind("", "Node"), &node),
            vec![
                ("metadata.name", "n".to_string()),
                ("spec.unschedulable", "false".to_string())
            ]
        );
    }
}
