//! Conversion between the versions a stored kind is served in.
//!
//! `events.k8s.io/v1` Events are stored as core `v1` Events (one resource, two
//! representations, as in Kubernetes). Requests in the events.k8s.io form are converted to
//! the stored form on the way in and back on the way out. Every other kind is served as
//! stored. This module owns only field mappings, never semantics.

use berth_api::ResourceKind;
use serde_json::{Map, Value};

/// Field names that differ: (events.k8s.io/v1, core v1).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn is_events_v1(kind: &ResourceKind) -> bool {
    kind.group == "events.k8s.io" && kind.kind == "Event"
}

/// The kind objects of `kind` are stored and processed as.
pub fn storage_kind(kind: &'static ResourceKind) -> &'static ResourceKind {
    if is_events_v1(kind) {
        berth_api::kinds::by_kind("v1", "Event").unwrap_or(kind)
    } else {
        kind
    }
}

fn rename(
    obj: Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
    api_version: &str,
) -> Value {
    let Value::Object(mut m) = obj else {
        return obj;
    };
    let mut out = Map::new();
    let pairs: Vec<_> = pairs.collect();
    for (k, v) in std::mem::take(&mut m) {
        let new_key = pairs
            .iter()
            .find(|(from, _)| *from == k)
            .map(|(_, to)| to.to_string())
            .unwrap_or(k);
        out.insert(new_key, v);
    }
    out.insert("apiVersion".into(), Value::String(api_version.to_string()));
    Value::Object(out)
}

/// A body in the requested kind's form converted to the stored form.
pub fn to_storage(kind: &ResourceKind, obj: Value) -> Value {
    if !is_events_v1(kind) {
        return obj;
    }
    rename(obj, EVENT_FIELDS.iter().copied(), "v1")
}

/// A stored object converted to the requested kind's form.
pub fn from_storage(kind: &ResourceKind, obj: Value) -> Value {
    if !is_events_v1(kind) {
        return obj;
    }
    rename(
        obj,
        EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
        "events.k8s.io/v1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip() {
        let k = berth_api::kinds::by_kind("events.k8s.io/v1", "Event");
        let Some(k) = k else { return };
        let v1 = json!({"apiVersion":"events.k8s.io/v1","kind":"Event","regarding":{"name":"p"},"note":"hi","deprecatedCount":2});
        let core = to_storage(k, v1.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(from_storage(k, core), v1);
    }
}
