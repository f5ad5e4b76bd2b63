//! ResourceQuota and LimitRange rules, as Kubernetes' quota evaluators and its ResourceQuota and
//! LimitRanger admission plugins compute them: what an object charges against a quota, which
//! quotas it falls under (resources and scopes), the resources a quota makes mandatory, the
//! check of a charge against hard limits, the usage of a namespace's objects, and (in
//! [`limit_range`]) container defaults and min/max/ratio checks.
//!
//! Pure: callers read the quotas, limit ranges and objects and write the results. Quantities
//! are kept exactly ([`Quantity`], nano-units) together with their format, so that sums and
//! messages print as Kubernetes prints them (`500m`, `1536Mi`, `2`). This module must not decide
//! when quotas are read or written, nor retry anything.

pub mod limit_range;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::meta;
use crate::quantity::{Quantity, parse_quantity};

/// Nano-units per unit.
const NANO: i128 = 1_000_000_000;

/// How a quantity prints, as Kubernetes' `resource.Format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Decimal with SI suffixes: `500m`, `2`, `1k`, `5G`.
    DecimalSi,
    /// Powers of two: `512Mi`, `1Gi` (whole numbers from 1024 up).
    BinarySi,
    /// Decimal with an exponent: `1e3`, `5e-3`.
    DecimalExponent,
}

/// An exact quantity and the format it prints in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    /// The value.
    pub value: Quantity,
    /// The format of [`Amount::canonical`].
    pub format: Format,
}

impl Amount {
    /// Zero, printed `0`.
    pub const ZERO: Amount = Amount {
        value: Quantity(0),
        format: Format::DecimalSi,
    };

    /// A whole count, e.g. one pod.
    pub fn count(n: i128) -> Self {
        Amount {
            value: Quantity(n.saturating_mul(NANO)),
            format: Format::DecimalSi,
        }
    }

    /// Parses a quantity string, keeping the format its suffix implies (`Ki`..`Ei` binary, an
    /// exponent `e3` decimal-exponent, anything else decimal SI). `None` if it does not parse.
    pub fn parse(s: &str) -> Option<Self> {
        let value = parse_quantity(s)?;
        let unsigned = s.trim_matches(' ').trim_start_matches(['+', '-']);
        let split = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let suffix = &unsigned[split..];
        let format = if suffix.ends_with('i') {
            Format::BinarySi
        } else if suffix.len() > 1 && suffix.starts_with(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSi
        };
        Some(Amount { value, format })
    }

    /// The quantity of a JSON value: a string, or a number as Kubernetes also accepts.
    pub fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Self::parse(s),
            Value::Number(n) => Self::parse(&n.to_string()),
            _ => None,
        }
    }

    /// True if the value is zero.
    pub fn is_zero(self) -> bool {
        self.value.0 == 0
    }

    /// The value rounded up to whole units (`Quantity.RoundUp(0)`).
    pub fn round_up_to_units(self) -> Amount {
        let v = self.value.0;
        let rem = v.rem_euclid(NANO);
        let rounded = if rem == 0 { v } else { v - rem + NANO };
        Amount {
            value: Quantity(rounded),
            format: self.format,
        }
    }

    /// The canonical text Kubernetes prints (`Quantity.String()`): `1536Mi`, `1500m`, `2k`.
    pub fn canonical(self) -> String {
        canonical(self.value.0, self.format)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The sum prints in the left operand's format, or in the right one's when the left is zero
/// (as `Quantity.Add` does).
impl std::ops::Add for Amount {
    type Output = Amount;

    fn add(self, other: Amount) -> Amount {
        Amount {
            value: Quantity(self.value.0.saturating_add(other.value.0)),
            format: if self.is_zero() {
                other.format
            } else {
                self.format
            },
        }
    }
}

/// The difference prints in the left operand's format.
impl std::ops::Sub for Amount {
    type Output = Amount;

    fn sub(self, other: Amount) -> Amount {
        Amount {
            value: Quantity(self.value.0.saturating_sub(other.value.0)),
            format: self.format,
        }
    }
}

/// Kubernetes' canonical form of `nanos` nano-units in `format`.
fn canonical(nanos: i128, format: Format) -> String {
    if nanos == 0 {
        return "0".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let nano = NANO as u128;
    // Binary only for whole numbers of at least 1024; anything else prints decimal.
    if format == Format::BinarySi && abs >= 1024 * nano && abs.is_multiple_of(nano) {
        let mut n = abs / nano;
        let mut exp = 0;
        while exp < 6 && n.is_multiple_of(1024) {
            n /= 1024;
            exp += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][exp];
        return format!("{sign}{n}{suffix}");
    }
    let mut mantissa = abs;
    let mut exp: i32 = -9;
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exp += 1;
    }
    let down = exp.rem_euclid(3);
    mantissa = mantissa.saturating_mul(10u128.pow(down as u32));
    exp -= down;
    let suffix = match (format, exp) {
        (_, 0) => String::new(),
        (Format::DecimalExponent, e) => format!("e{e}"),
        (_, -9) => "n".into(),
        (_, -6) => "u".into(),
        (_, -3) => "m".into(),
        (_, 3) => "k".into(),
        (_, 6) => "M".into(),
        (_, 9) => "G".into(),
        (_, 12) => "T".into(),
        (_, 15) => "P".into(),
        (_, 18) => "E".into(),
        (_, e) => format!("e{e}"),
    };
    format!("{sign}{mantissa}{suffix}")
}

/// A set of named quantities (`ResourceList`), in name order.
pub type ResourceList = BTreeMap<String, Amount>;

/// The resource list of a JSON object such as `spec.hard` or `resources.requests`; entries that
/// are not quantities are skipped.
pub fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Amount::from_json(v).map(|a| (k.clone(), a)))
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON object of a resource list, each quantity in canonical form.
pub fn to_json(list: &ResourceList) -> Value {
    Value::Object(
        list.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.canonical())))
            .collect::<Map<String, Value>>(),
    )
}

/// `a + b`, per resource (`quota.Add`).
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        out.entry(k.clone())
            .and_modify(|x| *x = *x + *v)
            .or_insert(*v);
    }
    out
}

/// Only the entries of `list` named in `names` (`quota.Mask`).
pub fn mask<'a>(list: &ResourceList, names: impl IntoIterator<Item = &'a str>) -> ResourceList {
    names
        .into_iter()
        .filter_map(|n| list.get(n).map(|v| (n.to_string(), *v)))
        .collect()
}

/// True if both lists name the same resources with equal values (formats aside).
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| w.value == v.value))
}

/// Whether every resource of `a` that `b` limits is within it; the names that are not
/// (`quota.LessThanOrEqual`).
pub fn less_than_or_equal(a: &ResourceList, b: &ResourceList) -> (bool, Vec<String>) {
    let exceeded: Vec<String> = b
        .iter()
        .filter(|(k, limit)| a.get(*k).is_some_and(|v| v.value > limit.value))
        .map(|(k, _)| k.clone())
        .collect();
    (exceeded.is_empty(), exceeded)
}

/// `name=value` pairs in name order, joined by commas, as quota messages print lists.
pub fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The object-count resource name of a group resource: `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// Why a quota refuses an object, with Kubernetes' messages (the API server prefixes them
/// with `<resource> "<name>" is forbidden: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// A quota tracks a compute resource some containers do not state.
    #[error("failed quota: {quota}: must specify {missing}")]
    MustSpecify {
        /// The quota's name.
        quota: String,
        /// `limits.cpu for: app; requests.memory for: app,sidecar`.
        missing: String,
    },
    /// The object's usage would take a quota over a hard limit.
    #[error("exceeded quota: {quota}, requested: {requested}, used: {used}, limited: {limited}")]
    Exceeded {
        /// The quota's name.
        quota: String,
        /// What the object asks for, of the exceeded resources.
        requested: String,
        /// What the quota has used of them.
        used: String,
        /// The hard limits of them.
        limited: String,
    },
    /// The object asks for negative amounts.
    #[error("quota usage is negative for resource(s): {0}")]
    Negative(String),
}

// ---------------------------------------------------------------------------------------------
// Evaluators

/// The compute resources a quota makes every container state (Kubernetes keeps this rule for
/// cpu and memory only).
const MUST_SPECIFY: &[&str] = &[
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// The pod resources a quota can limit (besides `hugepages-*`, `requests.hugepages-*` and
/// extended `requests.<domain>/<name>`).
const POD_RESOURCES: &[&str] = &[
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

const SERVICE_RESOURCES: &[&str] = &[
    "count/services",
    "services",
    "services.loadbalancers",
    "services.nodeports",
];

const PVC_RESOURCES: &[&str] = &["persistentvolumeclaims", "requests.storage"];

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// The core kinds whose object counts also have a legacy name (`configmaps` beside
/// `count/configmaps`).
const LEGACY_COUNTS: &[&str] = &[
    "configmaps",
    "resourcequotas",
    "replicationcontrollers",
    "secrets",
];

/// What measures an object's usage: the special evaluators of pods, services and claims, or
/// the object count of any other group resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Evaluator {
    /// Pods: counts, requests and limits.
    Pods,
    /// Services: counts, load balancers and node ports.
    Services,
    /// PersistentVolumeClaims: counts and requested storage, also per storage class.
    PersistentVolumeClaims,
    /// One per object, as `count/<resource>.<group>` (and the legacy name of a few core kinds).
    ObjectCount {
        /// The API group, `""` for core.
        group: String,
        /// The plural resource name.
        resource: String,
    },
}

impl Evaluator {
    /// The evaluator of objects of `group`/`resource`.
    pub fn of(group: &str, resource: &str) -> Self {
        match (group, resource) {
            ("", "pods") => Evaluator::Pods,
            ("", "services") => Evaluator::Services,
            ("", "persistentvolumeclaims") => Evaluator::PersistentVolumeClaims,
            _ => Evaluator::ObjectCount {
                group: group.to_string(),
                resource: resource.to_string(),
            },
        }
    }

    /// The group and plural resource it measures.
    pub fn group_resource(&self) -> (&str, &str) {
        match self {
            Evaluator::Pods => ("", "pods"),
            Evaluator::Services => ("", "services"),
            Evaluator::PersistentVolumeClaims => ("", "persistentvolumeclaims"),
            Evaluator::ObjectCount { group, resource } => (group, resource),
        }
    }

    /// The quota resource names among `names` that this evaluator measures.
    pub fn matching_resources<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        names
            .into_iter()
            .filter(|n| self.measures(n))
            .map(str::to_string)
            .collect()
    }

    fn measures(&self, name: &str) -> bool {
        match self {
            Evaluator::Pods => {
                POD_RESOURCES.contains(&name)
                    || name.starts_with("hugepages-")
                    || name.starts_with("requests.hugepages-")
                    || (name.starts_with("requests.") && !is_native_resource(name))
            }
            Evaluator::Services => SERVICE_RESOURCES.contains(&name),
            Evaluator::PersistentVolumeClaims => {
                name == "count/persistentvolumeclaims"
                    || PVC_RESOURCES.contains(&name)
                    || PVC_RESOURCES
                        .iter()
                        .any(|r| name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}{r}")))
            }
            Evaluator::ObjectCount { group, resource } => {
                name == object_count_name(group, resource)
                    || (group.is_empty()
                        && LEGACY_COUNTS.contains(&resource.as_str())
                        && name == resource)
            }
        }
    }

    /// What `obj` charges (`Evaluator.Usage`). Pods that finished, or that are still there
    /// after their deletion and grace period (at `now`), charge only `count/pods`.
    pub fn usage(&self, obj: &Value, now: Timestamp) -> ResourceList {
        match self {
            Evaluator::Pods => pod_usage(obj, now),
            Evaluator::Services => service_usage(obj),
            Evaluator::PersistentVolumeClaims => pvc_usage(obj),
            Evaluator::ObjectCount { group, resource } => {
                let mut out = ResourceList::new();
                out.insert(object_count_name(group, resource), Amount::count(1));
                if group.is_empty() && LEGACY_COUNTS.contains(&resource.as_str()) {
                    out.insert(resource.clone(), Amount::count(1));
                }
                out
            }
        }
    }

    /// Whether `obj` falls under one scope requirement of a quota. Only pods have scopes;
    /// every other object falls under none.
    pub fn matches_scope(&self, req: &ScopeRequirement, obj: &Value) -> bool {
        match self {
            Evaluator::Pods => pod_matches_scope(req, obj),
            _ => false,
        }
    }

    /// Checks that `obj` states what the quota's `required` resources need: for pods, every
    /// container must state the cpu and memory requests and limits a quota tracks. Returns the
    /// missing ones as Kubernetes words them (`limits.cpu for: app; requests.memory for: a,b`).
    pub fn constraints(&self, required: &[String], obj: &Value) -> Result<(), String> {
        if *self != Evaluator::Pods {
            return Ok(());
        }
        let required: BTreeSet<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|r| MUST_SPECIFY.contains(r))
            .collect();
        if required.is_empty() {
            return Ok(());
        }
        let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for c in containers(obj, "containers").chain(containers(obj, "initContainers")) {
            let requests = resource_list(c.pointer("/resources/requests"));
            let limits = resource_list(c.pointer("/resources/limits"));
            let states = compute_usage(&requests, &limits);
            let name = c.get("name").and_then(Value::as_str).unwrap_or("");
            for r in &required {
                if !states.contains_key(*r) {
                    missing.entry(r).or_default().insert(name.to_string());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing
            .iter()
            .map(|(r, names)| {
                format!(
                    "{r} for: {}",
                    names.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Kubernetes' `IsNativeResource`: no domain, or a `kubernetes.io/` one.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Kubernetes' `IsExtendedResourceName` for a container resource: a domain-qualified name
/// outside `kubernetes.io/` and not already quota-prefixed.
fn is_extended_resource(name: &str) -> bool {
    !is_native_resource(name) && !name.starts_with("requests.")
}

fn containers<'a>(obj: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    obj.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The quota usage of one set of requests and limits (`podComputeUsageHelper`).
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), Amount::count(1));
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(v) = requests.get(r) {
            out.insert(r.into(), *v);
            out.insert(format!("requests.{r}"), *v);
        }
        if let Some(v) = limits.get(r) {
            out.insert(format!("limits.{r}"), *v);
        }
    }
    for (k, v) in requests {
        if k.starts_with("hugepages-") {
            out.insert(k.clone(), *v);
            out.insert(format!("requests.{k}"), *v);
        }
        if is_extended_resource(k) {
            out.insert(format!("requests.{k}"), *v);
        }
    }
    out
}

/// Sets each resource of `into` to the larger of it and `other`'s.
fn max_into(into: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        match into.get(k) {
            Some(x) if x.value >= v.value => {}
            _ => {
                into.insert(k.clone(), *v);
            }
        }
    }
}

/// The effective requests or limits (`field`) of a pod: the sum over app containers and
/// restartable (sidecar) init containers, or more if an init container needs more while it
/// runs (with the sidecars started before it), as Kubernetes' resource helpers compute it.
/// Pod overhead is not included.
pub fn pod_resources(pod: &Value, field: &str) -> ResourceList {
    let path = format!("/resources/{field}");
    let mut total = ResourceList::new();
    for c in containers(pod, "containers") {
        total = add(&total, &resource_list(c.pointer(&path)));
    }
    let mut sidecars = ResourceList::new();
    let mut init_peak = ResourceList::new();
    for c in containers(pod, "initContainers") {
        let own = resource_list(c.pointer(&path));
        let while_running = if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            total = add(&total, &own);
            sidecars = add(&sidecars, &own);
            sidecars.clone()
        } else {
            add(&own, &sidecars)
        };
        max_into(&mut init_peak, &while_running);
    }
    max_into(&mut total, &init_peak);
    total
}

/// True unless the pod finished, or was deleted and is still there after its deletion time
/// plus grace period (a node that went away), as Kubernetes' `QuotaV1Pod`.
pub fn pod_charges_compute(pod: &Value, now: Timestamp) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    if let Some(expiry) = pod_stuck_after(pod) {
        return now <= expiry;
    }
    true
}

/// When a pod being deleted stops being charged: its deletion time plus its grace period.
pub fn pod_stuck_after(pod: &Value) -> Option<Timestamp> {
    let deleted = pod
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(meta::parse_time)?;
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)?;
    deleted
        .checked_add(jiff::SignedDuration::from_secs(grace))
        .ok()
}

fn pod_usage(pod: &Value, now: Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), Amount::count(1));
    if !pod_charges_compute(pod, now) {
        return out;
    }
    let overhead = resource_list(pod.pointer("/spec/overhead"));
    let requests = add(&pod_resources(pod, "requests"), &overhead);
    let mut limits = pod_resources(pod, "limits");
    for (k, v) in &overhead {
        if let Some(l) = limits.get_mut(k)
            && !l.is_zero()
        {
            *l = *l + *v;
        }
    }
    add(&out, &compute_usage(&requests, &limits))
}

fn service_usage(svc: &Value) -> ResourceList {
    let ports = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = ResourceList::new();
    out.insert("count/services".into(), Amount::count(1));
    out.insert("services".into(), Amount::count(1));
    let (mut lbs, mut node_ports) = (0, 0);
    match svc.pointer("/spec/type").and_then(Value::as_str) {
        Some("NodePort") => node_ports = ports.len(),
        Some("LoadBalancer") => {
            lbs = 1;
            node_ports = if svc.pointer("/spec/allocateLoadBalancerNodePorts")
                == Some(&Value::Bool(false))
            {
                ports
                    .iter()
                    .filter(|p| p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0)
                    .count()
            } else {
                ports.len()
            };
        }
        _ => {}
    }
    out.insert("services.loadbalancers".into(), Amount::count(lbs));
    out.insert(
        "services.nodeports".into(),
        Amount::count(node_ports as i128),
    );
    out
}

/// The storage class of a claim: the beta annotation, else `spec.storageClassName`.
fn claim_class(pvc: &Value) -> &str {
    meta::annotation(pvc, "volume.beta.kubernetes.io/storage-class")
        .or_else(|| {
            pvc.pointer("/spec/storageClassName")
                .and_then(Value::as_str)
        })
        .unwrap_or("")
}

fn pvc_usage(pvc: &Value) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("persistentvolumeclaims".into(), Amount::count(1));
    out.insert("count/persistentvolumeclaims".into(), Amount::count(1));
    let class = claim_class(pvc);
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            Amount::count(1),
        );
    }
    let requested = pvc
        .pointer("/spec/resources/requests/storage")
        .and_then(Amount::from_json)
        .map(Amount::round_up_to_units);
    let allocated = pvc
        .pointer("/status/allocatedResources/storage")
        .and_then(Amount::from_json);
    let storage = match (requested, allocated) {
        (Some(r), Some(a)) if a.value > r.value => Some(a.round_up_to_units()),
        (r, _) => r,
    };
    if let Some(s) = storage {
        out.insert("requests.storage".into(), s);
        if !class.is_empty() {
            out.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), s);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scopes

/// One scope a quota applies to: a `spec.scopes` entry (operator `Exists`) or a
/// `spec.scopeSelector.matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRequirement {
    /// `Terminating`, `NotTerminating`, `BestEffort`, `NotBestEffort`, `PriorityClass` or
    /// `CrossNamespacePodAffinity`.
    pub scope: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values of `In` and `NotIn`.
    pub values: Vec<String>,
}

/// The scope requirements of a quota.
pub fn scope_requirements(quota: &Value) -> Vec<ScopeRequirement> {
    let mut out: Vec<ScopeRequirement> = quota
        .pointer("/spec/scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| ScopeRequirement {
            scope: s.to_string(),
            operator: "Exists".into(),
            values: Vec::new(),
        })
        .collect();
    for e in quota
        .pointer("/spec/scopeSelector/matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(ScopeRequirement {
            scope: e
                .get("scopeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            operator: e
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        });
    }
    out
}

/// True if the pod has an `activeDeadlineSeconds` (it will end by itself).
pub fn pod_is_terminating(pod: &Value) -> bool {
    pod.pointer("/spec/activeDeadlineSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|s| s >= 0)
}

/// True if no container of the pod requests or limits cpu or memory (QoS class BestEffort).
pub fn pod_is_best_effort(pod: &Value) -> bool {
    if let Some(qos) = pod.pointer("/status/qosClass").and_then(Value::as_str)
        && !qos.is_empty()
    {
        return qos == "BestEffort";
    }
    !containers(pod, "containers")
        .chain(containers(pod, "initContainers"))
        .any(|c| {
            ["requests", "limits"].iter().any(|f| {
                let list = resource_list(c.pointer(&format!("/resources/{f}")));
                ["cpu", "memory"]
                    .iter()
                    .any(|r| list.get(*r).is_some_and(|v| v.value.0 > 0))
            })
        })
}

fn uses_cross_namespace_affinity(pod: &Value) -> bool {
    let cross = |term: &Value| {
        term.get("namespaces")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            || term.get("namespaceSelector").is_some_and(|s| !s.is_null())
    };
    ["podAffinity", "podAntiAffinity"].iter().any(|a| {
        let Some(aff) = pod.pointer(&format!("/spec/affinity/{a}")) else {
            return false;
        };
        let required = aff
            .get("requiredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(cross);
        let preferred = aff
            .get("preferredDuringSchedulingIgnoredDuringExecution")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|w| w.get("podAffinityTerm"))
            .any(cross);
        required || preferred
    })
}

fn pod_matches_scope(req: &ScopeRequirement, pod: &Value) -> bool {
    match req.scope.as_str() {
        "Terminating" => pod_is_terminating(pod),
        "NotTerminating" => !pod_is_terminating(pod),
        "BestEffort" => pod_is_best_effort(pod),
        "NotBestEffort" => !pod_is_best_effort(pod),
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        "PriorityClass" => {
            let class = pod
                .pointer("/spec/priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("");
            match req.operator.as_str() {
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                "In" => !class.is_empty() && req.values.iter().any(|v| v == class),
                "NotIn" => class.is_empty() || !req.values.iter().any(|v| v == class),
                _ => false,
            }
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Quotas

/// The hard limits a quota enforces: `status.hard`, or `spec.hard` while the status has none
/// yet (a quota just created).
pub fn enforced_hard(quota: &Value) -> ResourceList {
    match quota.pointer("/status/hard") {
        Some(h) if h.is_object() => resource_list(Some(h)),
        _ => resource_list(quota.pointer("/spec/hard")),
    }
}

/// `status.used`.
pub fn used(quota: &Value) -> ResourceList {
    resource_list(quota.pointer("/status/used"))
}

/// Whether `obj` falls under `quota` (`generic.Matches`): the quota limits something the
/// evaluator measures, and the object is in every scope of the quota.
pub fn quota_matches(ev: &Evaluator, quota: &Value, obj: &Value) -> bool {
    let hard = enforced_hard(quota);
    !ev.matching_resources(hard.keys().map(String::as_str))
        .is_empty()
        && scope_requirements(quota)
            .iter()
            .all(|r| ev.matches_scope(r, obj))
}

/// The resources of `quota` that `ev` measures but that have no used value yet (a quota the
/// controller has not computed).
pub fn missing_usage(ev: &Evaluator, quota: &Value) -> Vec<String> {
    let hard = enforced_hard(quota);
    let used = used(quota);
    ev.matching_resources(hard.keys().map(String::as_str))
        .into_iter()
        .filter(|r| !used.contains_key(r))
        .collect()
}

/// The usage a new object charges: its evaluator's usage without zeros.
pub fn charge_of(ev: &Evaluator, obj: &Value, now: Timestamp) -> Result<ResourceList, QuotaError> {
    let usage = ev.usage(obj, now);
    let negative: Vec<&str> = usage
        .iter()
        .filter(|(_, v)| v.value.is_negative())
        .map(|(k, _)| k.as_str())
        .collect();
    if !negative.is_empty() {
        return Err(QuotaError::Negative(negative.join(",")));
    }
    Ok(usage.into_iter().filter(|(_, v)| !v.is_zero()).collect())
}

/// The quotas (indexes into `quotas`) that an object created with evaluator `ev` falls under,
/// after checking that it states what each requires (`failed quota: ...: must specify ...`).
pub fn applicable(ev: &Evaluator, quotas: &[Value], obj: &Value) -> Result<Vec<usize>, QuotaError> {
    let mut out = Vec::new();
    for (i, q) in quotas.iter().enumerate() {
        if !quota_matches(ev, q, obj) {
            continue;
        }
        let hard = enforced_hard(q);
        let restricted = ev.matching_resources(hard.keys().map(String::as_str));
        if let Err(missing) = ev.constraints(&restricted, obj) {
            return Err(QuotaError::MustSpecify {
                quota: meta::name(q).to_string(),
                missing,
            });
        }
        out.push(i);
    }
    Ok(out)
}

/// Charges `delta` to `quota`: the new `status.used`, or `None` if the quota limits none of
/// it, or the `exceeded quota` refusal. `used` is the quota's current usage (its
/// `status.used`, completed by the caller where it lacked values).
pub fn charge(
    quota: &Value,
    used: &ResourceList,
    delta: &ResourceList,
) -> Result<Option<ResourceList>, QuotaError> {
    let hard = enforced_hard(quota);
    let requested = mask(delta, hard.keys().map(String::as_str));
    if requested.is_empty() {
        return Ok(None);
    }
    let new_used = add(used, &requested);
    let masked = mask(&new_used, requested.keys().map(String::as_str));
    let (ok, exceeded) = less_than_or_equal(&masked, &hard);
    if !ok {
        let names = || exceeded.iter().map(String::as_str);
        return Err(QuotaError::Exceeded {
            quota: meta::name(quota).to_string(),
            requested: pretty(&mask(&requested, names())),
            used: pretty(&mask(used, names())),
            limited: pretty(&mask(&hard, names())),
        });
    }
    Ok(Some(new_used))
}

/// The evaluators that measure some resource of `hard`: pods, services and claims, the legacy
/// counted core kinds, and an object count for each other `count/<resource>.<group>`.
pub fn evaluators_for(hard: &ResourceList) -> Vec<Evaluator> {
    let mut all: BTreeSet<Evaluator> = BTreeSet::new();
    all.insert(Evaluator::Pods);
    all.insert(Evaluator::Services);
    all.insert(Evaluator::PersistentVolumeClaims);
    for r in LEGACY_COUNTS {
        all.insert(Evaluator::of("", r));
    }
    for name in hard.keys() {
        if let Some(gr) = name.strip_prefix("count/") {
            let (resource, group) = gr.split_once('.').unwrap_or((gr, ""));
            if !resource.is_empty() {
                all.insert(Evaluator::of(group, resource));
            }
        }
    }
    all.into_iter()
        .filter(|ev| {
            !ev.matching_resources(hard.keys().map(String::as_str))
                .is_empty()
        })
        .collect()
}

/// The group resources whose objects [`calculate_usage`] needs for `quota` (per `spec.hard`).
pub fn tracked_group_resources(quota: &Value) -> Vec<(String, String)> {
    let hard = resource_list(quota.pointer("/spec/hard"));
    evaluators_for(&hard)
        .iter()
        .map(|ev| {
            let (g, r) = ev.group_resource();
            (g.to_string(), r.to_string())
        })
        .collect()
}

/// The usage of a namespace's objects against the hard limits `hard` of a quota with scopes
/// `scopes` (`quota.CalculateUsage`): every resource that some evaluator measures starts at
/// zero, then each object of that evaluator in all the scopes adds its usage. `objects`
/// returns the objects of a group resource in the quota's namespace (`None` when they could
/// not be listed: those resources are left out).
pub fn calculate_usage<'a>(
    hard: &ResourceList,
    scopes: &[ScopeRequirement],
    mut objects: impl FnMut(&str, &str) -> Option<&'a [Value]>,
    now: Timestamp,
) -> ResourceList {
    let mut total = ResourceList::new();
    for ev in evaluators_for(hard) {
        let names = ev.matching_resources(hard.keys().map(String::as_str));
        let (group, resource) = ev.group_resource();
        let Some(items) = objects(group, resource) else {
            continue;
        };
        let mut used: ResourceList = names.iter().map(|n| (n.clone(), Amount::ZERO)).collect();
        for item in items {
            if scopes.iter().all(|s| ev.matches_scope(s, item)) {
                used = add(&used, &ev.usage(item, now));
            }
        }
        total = add(&total, &mask(&used, names.iter().map(String::as_str)));
    }
    total
}

/// The status a quota should have: `hard` from `spec.hard`, `used` as computed. `None` if the
/// current status already says that (values compared, not their spelling).
pub fn desired_status(quota: &Value, used: &ResourceList) -> Option<Value> {
    let spec_hard = quota
        .pointer("/spec/hard")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let hard_now = quota
        .pointer("/status/hard")
        .map(|h| resource_list(Some(h)));
    let used_now = quota
        .pointer("/status/used")
        .map(|u| resource_list(Some(u)));
    let same_hard = hard_now.is_some_and(|h| equals(&h, &resource_list(Some(&spec_hard))));
    let same_used = used_now.is_some_and(|u| equals(&u, used));
    if same_hard && same_used {
        return None;
    }
    let mut status = Map::new();
    status.insert("hard".into(), spec_hard);
    status.insert("used".into(), to_json(used));
    Some(Value::Object(status))
}
