//! LimitRange rules, as Kubernetes' LimitRanger admission plugin applies them to new pods and
//! claims: container defaults (`default` for limits, `defaultRequest` for requests), the
//! `kubernetes.io/limit-ranger` annotation naming what was set, and the min, max and
//! maxLimitRequestRatio checks per Container and per Pod, and the storage min and max per
//! PersistentVolumeClaim.
//!
//! Pure: the caller reads the LimitRanges of the namespace and turns a refusal into
//! `403 Forbidden`. Must not change anything but container resources and that annotation.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::{Amount, ResourceList, pod_resources, resource_list};

/// The annotation listing the defaults a pod received.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The largest milli-value Kubernetes compares exactly (`resource.MaxMilliValue`).
const MAX_MILLI_VALUE: i128 = (i64::MAX / 1000) as i128;

/// The violations of one LimitRange, printed as Kubernetes aggregates errors: one message as
/// is, several (duplicates dropped) as `[first, second]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LimitRangeError(pub Vec<String>);

impl fmt::Display for LimitRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seen = BTreeSet::new();
        let unique: Vec<&str> = self
            .0
            .iter()
            .filter(|m| seen.insert(m.as_str()))
            .map(String::as_str)
            .collect();
        if unique.len() == 1 {
            f.write_str(unique[0])
        } else {
            write!(f, "[{}]", unique.join(", "))
        }
    }
}

fn items<'a>(range: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

fn object<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    v.get(key).and_then(Value::as_object).into_iter().flatten()
}

/// The default requests and limits of a LimitRange's Container items, with the item defaults
/// Kubernetes fills in (a missing default limit is the max; a missing default request is the
/// default limit, else the min).
fn container_defaults(range: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let (mut requests, mut limits) = (Map::new(), Map::new());
    for item in items(range, "Container") {
        let mut default: Map<String, Value> = object(item, "default")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in object(item, "max") {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut request: Map<String, Value> = object(item, "defaultRequest")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in default.iter().chain(object(item, "min")) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        requests.extend(request);
        limits.extend(default);
    }
    (requests, limits)
}

/// Fills `field` (`requests` or `limits`) of a container with the defaults it lacks; the names
/// set, sorted.
fn merge(container: &mut Value, field: &str, defaults: &Map<String, Value>) -> Vec<String> {
    let mut set = Vec::new();
    if defaults.is_empty() {
        return set;
    }
    let Some(c) = container.as_object_mut() else {
        return set;
    };
    let resources = c
        .entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    if !resources.is_object() {
        *resources = Value::Object(Map::new());
    }
    let Some(resources) = resources.as_object_mut() else {
        return set;
    };
    let have = resources.get(field).and_then(Value::as_object);
    let wanted: Vec<(&String, &Value)> = defaults
        .iter()
        .filter(|(k, _)| !have.is_some_and(|h| h.contains_key(*k)))
        .collect();
    if wanted.is_empty() {
        return set;
    }
    let list = resources
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    if let Some(list) = list.as_object_mut() {
        for (k, v) in wanted {
            list.insert(k.clone(), v.clone());
            set.push(k.clone());
        }
    }
    set.sort();
    set
}

/// Gives the pod's containers and init containers the defaults of each LimitRange in turn
/// (what a container states is kept), and records what was set in the
/// `kubernetes.io/limit-ranger` annotation. Returns true if the pod changed.
pub fn apply_pod_defaults(pod: &mut Value, ranges: &[Value]) -> bool {
    let mut changed = false;
    for range in ranges {
        let (requests, limits) = container_defaults(range);
        if requests.is_empty() && limits.is_empty() {
            continue;
        }
        let mut notes = Vec::new();
        for (list, label) in [
            ("containers", "container"),
            ("initContainers", "init container"),
        ] {
            let Some(cs) = pod
                .pointer_mut(&format!("/spec/{list}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in cs {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let set_limits = merge(c, "limits", &limits);
                let set_requests = merge(c, "requests", &requests);
                if !set_requests.is_empty() {
                    notes.push(format!(
                        "{} request for {label} {name}",
                        set_requests.join(", ")
                    ));
                }
                if !set_limits.is_empty() {
                    notes.push(format!(
                        "{} limit for {label} {name}",
                        set_limits.join(", ")
                    ));
                }
            }
        }
        if !notes.is_empty() {
            changed = true;
            let m = crate::meta::metadata_mut(pod);
            let annotations = m
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if !annotations.is_object() {
                *annotations = Value::Object(Map::new());
            }
            if let Some(a) = annotations.as_object_mut() {
                a.insert(
                    ANNOTATION.to_string(),
                    Value::String(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
    }
    changed
}

/// Kubernetes' comparable values of a request, a limit and an enforced bound: milli-units when
/// all fit, else whole units, each rounded up.
fn comparable(request: Option<Amount>, limit: Option<Amount>, enforced: Amount) -> [i128; 3] {
    let ceil = |v: i128, d: i128| v.div_euclid(d) + i128::from(v.rem_euclid(d) != 0);
    let nanos = [
        request.map_or(0, |a| a.value.0),
        limit.map_or(0, |a| a.value.0),
        enforced.value.0,
    ];
    let units = nanos.map(|n| ceil(n, 1_000_000_000));
    if units.iter().all(|u| *u <= MAX_MILLI_VALUE) {
        nanos.map(|n| ceil(n, 1_000_000))
    } else {
        units
    }
}

fn min_constraint(
    kind: &str,
    resource: &str,
    enforced: Amount,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (
        requests.get(resource).copied(),
        limits.get(resource).copied(),
    );
    let [r, l, e] = comparable(req, lim, enforced);
    match (req, lim) {
        (None, _) => Some(format!(
            "minimum {resource} usage per {kind} is {enforced}.  No request is specified"
        )),
        (Some(req), _) if r < e => Some(format!(
            "minimum {resource} usage per {kind} is {enforced}, but request is {req}"
        )),
        (_, Some(lim)) if l < e => Some(format!(
            "minimum {resource} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        _ => None,
    }
}

fn max_constraint(
    kind: &str,
    resource: &str,
    enforced: Amount,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (
        requests.get(resource).copied(),
        limits.get(resource).copied(),
    );
    let [r, l, e] = comparable(req, lim, enforced);
    match (req, lim) {
        (_, None) => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}.  No limit is specified"
        )),
        (_, Some(lim)) if l > e => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}, but limit is {lim}"
        )),
        (Some(req), _) if r > e => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn max_request_constraint(
    kind: &str,
    resource: &str,
    enforced: Amount,
    requests: &ResourceList,
) -> Option<String> {
    let req = requests.get(resource).copied();
    let [r, _, e] = comparable(req, None, enforced);
    match req {
        None => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}.  No request is specified"
        )),
        Some(req) if r > e => Some(format!(
            "maximum {resource} usage per {kind} is {enforced}, but request is {req}"
        )),
        _ => None,
    }
}

fn ratio_constraint(
    kind: &str,
    resource: &str,
    enforced: Amount,
    requests: &ResourceList,
    limits: &ResourceList,
) -> Option<String> {
    let (req, lim) = (
        requests.get(resource).copied(),
        limits.get(resource).copied(),
    );
    let [r, l, _] = comparable(req, lim, enforced);
    if req.is_none() || r == 0 {
        return Some(format!(
            "{resource} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if lim.is_none() || l == 0 {
        return Some(format!(
            "{resource} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let observed = l as f64 / r as f64;
    let ceil = |v: i128, d: i128| v.div_euclid(d) + i128::from(v.rem_euclid(d) != 0);
    let enforced_units = ceil(enforced.value.0, 1_000_000_000);
    let (scaled, max) = if enforced_units <= MAX_MILLI_VALUE {
        (observed * 1000.0, ceil(enforced.value.0, 1_000_000) as f64)
    } else {
        (observed, enforced_units as f64)
    };
    (scaled > max).then(|| {
        format!(
            "{resource} max limit to request ratio per {kind} is {enforced}, but provided ratio is {observed:.6}"
        )
    })
}

/// The min, max and ratio checks of one item against one set of requests and limits.
fn check_item(
    kind: &str,
    item: &Value,
    requests: &ResourceList,
    limits: &ResourceList,
    errors: &mut Vec<String>,
) {
    let bounds = |key: &str| resource_list(item.get(key));
    for (r, v) in bounds("min") {
        errors.extend(min_constraint(kind, &r, v, requests, limits));
    }
    for (r, v) in bounds("max") {
        errors.extend(max_constraint(kind, &r, v, requests, limits));
    }
    for (r, v) in bounds("maxLimitRequestRatio") {
        errors.extend(ratio_constraint(kind, &r, v, requests, limits));
    }
}

/// Checks a pod (its defaults applied) against each LimitRange in turn: every container and
/// init container against the Container items, the pod's effective requests and limits against
/// the Pod items. The violations of the first LimitRange that has any.
pub fn validate_pod(pod: &Value, ranges: &[Value]) -> Result<(), LimitRangeError> {
    for range in ranges {
        let mut errors = Vec::new();
        for item in range
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match item.get("type").and_then(Value::as_str) {
                Some("Container") => {
                    for list in ["containers", "initContainers"] {
                        for c in pod
                            .pointer(&format!("/spec/{list}"))
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            let requests = resource_list(c.pointer("/resources/requests"));
                            let limits = resource_list(c.pointer("/resources/limits"));
                            check_item("Container", item, &requests, &limits, &mut errors);
                        }
                    }
                }
                Some("Pod") => {
                    let requests = pod_resources(pod, "requests");
                    let limits = pod_resources(pod, "limits");
                    check_item("Pod", item, &requests, &limits, &mut errors);
                }
                _ => {}
            }
        }
        if !errors.is_empty() {
            return Err(LimitRangeError(errors));
        }
    }
    Ok(())
}

/// Checks a claim's requested storage against the PersistentVolumeClaim items of each
/// LimitRange in turn (claims get no defaults).
pub fn validate_claim(pvc: &Value, ranges: &[Value]) -> Result<(), LimitRangeError> {
    let requests = resource_list(pvc.pointer("/spec/resources/requests"));
    let none = ResourceList::new();
    for range in ranges {
        let mut errors = Vec::new();
        for item in items(range, "PersistentVolumeClaim") {
            for (r, v) in resource_list(item.get("min")) {
                errors.extend(min_constraint(
                    "PersistentVolumeClaim",
                    &r,
                    v,
                    &requests,
                    &none,
                ));
            }
            for (r, v) in resource_list(item.get("max")) {
                errors.extend(max_request_constraint(
                    "PersistentVolumeClaim",
                    &r,
                    v,
                    &requests,
                ));
            }
        }
        if !errors.is_empty() {
            return Err(LimitRangeError(errors));
        }
    }
    Ok(())
}
