//! What every controller that owns pods (or other objects through ownerReferences) needs, as
//! Kubernetes' `controller_utils`, `ControllerRefManager` and `ControllerExpectations` provide it:
//!
//! - pod state: [`is_active`], [`is_ready`], [`ready_since`], [`is_available`];
//! - ownership: [`controller_of`], [`controller_ref`], [`claim`] (adopt matching orphans,
//!   release owned objects that no longer match) with [`adopt`] and [`release`] to apply it;
//! - templates: [`pod_from_template`], [`template_hash`], [`templates_equal_ignoring_hash`];
//! - selectors: [`selector`] and [`matches`] over `metav1.LabelSelector`;
//! - creating in slow-start batches (1, 2, 4, ...): [`slow_start_batch`];
//! - [`Expectations`]: creates and deletes in flight per owner, so that a controller does not
//!   act again on a cache that has not seen its last writes yet;
//! - the order in which to delete pods when scaling down: [`deletion_order`].
//!
//! Everything here but [`adopt`], [`release`] and [`slow_start_batch`] is pure. This module must
//! not know any particular controller: it is shared by the ReplicaSet, StatefulSet, DaemonSet
//! and Job controllers.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::selectors::{self, SelectorError};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

/// The label a Deployment adds to its ReplicaSets' selectors, templates and pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The annotation whose integer value makes a pod cheaper (lower) or dearer (higher) to delete
/// when its controller scales down.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// How long expectations stay in force when the cache never confirms them (client-go's
/// `ExpectationsTimeout`).
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The size of the first batch of [`slow_start_batch`] (Kubernetes' `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH: usize = 1;

// ---------------------------------------------------------------------------------------------
// Pod state
// ---------------------------------------------------------------------------------------------

/// The pod's phase (`Pending` when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// True for a pod that is being deleted (`deletionTimestamp` set).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// True for a pod that counts towards its controller's replicas: neither `Succeeded` nor
/// `Failed`, and not being deleted (Kubernetes' `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_terminating(pod)
}

/// The time the pod's `Ready` condition last turned `True`, if it is ready now. A ready pod
/// whose condition has no transition time gives the Unix epoch.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (c.status == "True").then(|| {
        c.last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
    })
}

/// True when the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// True when the pod has been ready for longer than `min_ready_seconds` at `now` (Kubernetes'
/// `IsPodAvailable`: ready, and either no minimum or the transition is strictly before
/// `now - min_ready_seconds`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(t) if t == Timestamp::UNIX_EPOCH => false,
        Some(t) => t
            .checked_add(jiff::SignedDuration::from_secs(i64::from(
                min_ready_seconds,
            )))
            .is_ok_and(|end| end < now),
    }
}

/// How long after `now` the ready pod becomes available, for a controller that must look again
/// then (`None` if it is not ready or available already).
pub fn available_in(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 || is_available(pod, min_ready_seconds, now) {
        return None;
    }
    let end = since
        .checked_add(jiff::SignedDuration::from_secs(i64::from(
            min_ready_seconds,
        )))
        .ok()?;
    let left = end.duration_since(now);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// The highest restart count among the pod's containers.
pub fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// The node the pod is bound to (empty when unscheduled).
pub fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// `namespace/name` of an object, the key expectations track deletions by.
pub fn object_key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

/// Parses a `metav1.LabelSelector`: an absent selector matches nothing, an empty one everything.
pub fn selector(sel: Option<&LabelSelector>) -> Result<selectors::LabelSelector, SelectorError> {
    match sel {
        None => Ok(selectors::LabelSelector::nothing()),
        Some(s) => {
            let v = serde_json::to_value(s).unwrap_or(Value::Null);
            selectors::LabelSelector::from_json(&v)
        }
    }
}

/// True when `labels` satisfy `sel`.
pub fn matches(sel: &selectors::LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    sel.matches_with(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
}

// ---------------------------------------------------------------------------------------------
// Ownership
// ---------------------------------------------------------------------------------------------

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// True when the object's controller is the object with `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// The controller reference to `owner` that its dependents carry: `controller: true` and
/// `blockOwnerDeletion: true` (Kubernetes' `NewControllerRef`).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What a controller does with the candidates of one owner (Kubernetes' `ControllerRefManager`).
#[derive(Debug)]
pub struct Claim<K> {
    /// The objects the owner controls after the claim: those it controlled and still match,
    /// and those to adopt (assuming their adoption succeeds).
    pub owned: Vec<Arc<K>>,
    /// Orphans that match: the owner becomes their controller.
    pub adopt: Vec<Arc<K>>,
    /// Objects the owner controls that no longer match: it lets go of them.
    pub release: Vec<Arc<K>>,
}

impl<K> Default for Claim<K> {
    fn default() -> Self {
        Self {
            owned: Vec::new(),
            adopt: Vec::new(),
            release: Vec::new(),
        }
    }
}

/// Sorts `candidates` for the owner `owner` with `sel`:
/// - controlled by the owner and matching: owned;
/// - controlled by the owner and not matching: released, unless the owner is being deleted;
/// - controlled by another: ignored;
/// - an orphan that matches, is in the owner's namespace and is not being deleted: adopted,
///   unless the owner is being deleted.
pub fn claim<K: Resource>(
    owner: &ObjectMeta,
    sel: &selectors::LabelSelector,
    candidates: impl IntoIterator<Item = Arc<K>>,
) -> Claim<K> {
    let uid = owner.uid.as_deref().unwrap_or("");
    let owner_deleting = owner.deletion_timestamp.is_some();
    let mut out = Claim::default();
    for obj in candidates {
        let meta = obj.meta();
        let matching = matches(sel, meta.labels.as_ref());
        match controller_of(meta) {
            Some(r) if r.uid == uid => {
                if matching {
                    out.owned.push(obj);
                } else if !owner_deleting {
                    out.release.push(obj);
                }
            }
            Some(_) => {}
            None => {
                if matching
                    && !owner_deleting
                    && meta.deletion_timestamp.is_none()
                    && meta.namespace == owner.namespace
                {
                    out.adopt.push(Arc::clone(&obj));
                    out.owned.push(obj);
                }
            }
        }
    }
    out
}

/// The JSON merge patch that makes `owner` the controller of `obj`: its owner references plus
/// `owner`, conditional on the object's resourceVersion (a concurrent change makes it 409).
pub fn adopt_patch(owner: &OwnerReference, obj: &ObjectMeta) -> Value {
    let mut refs: Vec<Value> = obj
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner.uid)
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    refs.push(serde_json::to_value(owner).unwrap_or(Value::Null));
    json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version,
        "uid": obj.uid,
    }})
}

/// The JSON merge patch that removes the owner `owner_uid` from `obj`'s owner references,
/// conditional on the object's resourceVersion.
pub fn release_patch(owner_uid: &str, obj: &ObjectMeta) -> Value {
    let refs: Vec<Value> = obj
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        Value::Array(refs)
    };
    json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version,
        "uid": obj.uid,
    }})
}

/// The field manager of the controllers' writes.
pub const FIELD_MANAGER: &str = "berth-controllers";

/// Makes `owner` the controller of `obj`. An object that is gone meanwhile is not an error.
pub async fn adopt<K>(api: &Api<K>, owner: &OwnerReference, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let patch = adopt_patch(owner, obj.meta());
    match api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge::<&Value>(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes `owner_uid` from `obj`'s owners. An object that is gone meanwhile or no longer
/// valid is not an error (Kubernetes ignores both).
pub async fn release<K>(api: &Api<K>, owner_uid: &str, obj: &K) -> Result<(), kube::Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    let patch = release_patch(owner_uid, obj.meta());
    match api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge::<&Value>(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/// A pod made from `template` in `namespace`, controlled by `owner`: the template's labels,
/// annotations, finalizers and spec. The caller names it (`name` or `generate_name`, see
/// [`generate_name_prefix`]).
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner: OwnerReference,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_owned()),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The `generateName` of the pods of the controller `owner_name` (`<owner>-`).
pub fn generate_name_prefix(owner_name: &str) -> String {
    format!("{owner_name}-")
}

/// The characters Kubernetes encodes hashes with (no vowels, no look-alikes).
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A stable, name-safe hash of a pod template and a collision count, as a Deployment names its
/// ReplicaSets: FNV-1a (32 bits) over the template's JSON and the count's little-endian bytes,
/// its decimal digits spelled in [`SAFE_ALPHANUMS`] (Kubernetes' `ComputeHash` in spirit).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|b| char::from(SAFE_ALPHANUMS[usize::from(b) % SAFE_ALPHANUMS.len()]))
        .collect()
}

/// Removes what a JSON document holds only as absence: nulls, empty objects and empty arrays,
/// recursively (Kubernetes' semantic equality treats nil and empty alike).
fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty_json(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// True when the two templates are equal but for their `pod-template-hash` label (Kubernetes'
/// `EqualIgnoreHash`); absent and empty fields are equal.
pub fn templates_equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let norm = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.remove(POD_TEMPLATE_HASH);
        }
        prune(serde_json::to_value(&t).unwrap_or(Value::Null))
    };
    norm(a) == norm(b)
}

// ---------------------------------------------------------------------------------------------
// Slow start
// ---------------------------------------------------------------------------------------------

/// Calls `op` `count` times in batches of growing size (`initial`, then doubling), the calls of
/// a batch concurrently, and stops after the first batch in which a call failed. Returns how
/// many calls succeeded and the first error. Kubernetes creates pods this way so that a
/// controller whose creates all fail (quota, admission) sends one request, not hundreds.
pub async fn slow_start_batch<T, E, F, Fut>(
    count: usize,
    initial: usize,
    op: F,
) -> (usize, Option<E>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut done = 0usize;
    let mut remaining = count;
    let mut batch = remaining.min(initial.max(1));
    while batch > 0 {
        let results = futures::future::join_all((done..done + batch).map(&op)).await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(_) => done += 1,
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        remaining -= batch;
        batch = remaining.min(batch * 2);
    }
    (done, None)
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct Expected {
    creates: i64,
    deletes: HashSet<String>,
    since: tokio::time::Instant,
}

/// The creates and deletes a controller has sent for each of its objects and not yet seen in
/// its cache (client-go's `UIDTrackingControllerExpectations`). While some are outstanding the
/// controller must not act on that object's pod count, which is stale: it would create or
/// delete again. Expectations lapse after [`EXPECTATIONS_TIMEOUT`] in case an event is lost.
///
/// Kept in memory only: a controller that starts afresh has none, which is safe because its
/// cache starts from a fresh list.
#[derive(Debug)]
pub struct Expectations<K> {
    inner: Mutex<HashMap<K, Expected>>,
    timeout: Duration,
}

impl<K: Clone + Eq + Hash> Default for Expectations<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> Expectations<K> {
    /// No expectations, lapsing after [`EXPECTATIONS_TIMEOUT`].
    pub fn new() -> Self {
        Self::with_timeout(EXPECTATIONS_TIMEOUT)
    }

    /// No expectations, lapsing after `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Expected>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when the controller may act on `key`: nothing is outstanding, or what was
    /// outstanding has lapsed.
    pub fn satisfied(&self, key: &K) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(e) => (e.creates <= 0 && e.deletes.is_empty()) || e.since.elapsed() > self.timeout,
        }
    }

    /// Records that `n` creates for `key` are about to be sent (replacing what was recorded).
    pub fn expect_creations(&self, key: K, n: usize) {
        self.lock().insert(
            key,
            Expected {
                creates: i64::try_from(n).unwrap_or(i64::MAX),
                deletes: HashSet::new(),
                since: tokio::time::Instant::now(),
            },
        );
    }

    /// Records that the objects `keys` (see [`object_key`]) are about to be deleted (replacing
    /// what was recorded).
    pub fn expect_deletions(&self, key: K, keys: impl IntoIterator<Item = String>) {
        self.lock().insert(
            key,
            Expected {
                creates: 0,
                deletes: keys.into_iter().collect(),
                since: tokio::time::Instant::now(),
            },
        );
    }

    /// A create for `key` was seen in the cache, or will never happen (it failed or was
    /// skipped).
    pub fn creation_observed(&self, key: &K) {
        if let Some(e) = self.lock().get_mut(key) {
            e.creates -= 1;
        }
    }

    /// The deletion of `object` (see [`object_key`]) for `key` was seen in the cache (the
    /// object is gone or has a deletionTimestamp), or failed.
    pub fn deletion_observed(&self, key: &K, object: &str) {
        if let Some(e) = self.lock().get_mut(key) {
            e.deletes.remove(object);
        }
    }

    /// Forgets `key` (its object is gone).
    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Forgets everything: the cache was filled afresh from a list (or changes were missed),
    /// so the observations the expectations wait for may never come; the fresh cache is the
    /// truth now.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion order
// ---------------------------------------------------------------------------------------------

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn creation(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Compares two times as "t1 goes first": the zero time first, then the later.
fn later_or_zero_first(t1: Option<Timestamp>, t2: Option<Timestamp>) -> Ordering {
    match (t1, t2) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// The logarithmic bucket of the age of `t` at `now` (-1 for no age), so that pods of similar
/// age are not told apart by their exact timestamps (Kubernetes' `LogarithmicScaleDown`).
fn age_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let nanos = now.as_nanosecond() - t.as_nanosecond();
    if nanos <= 0 {
        -1
    } else {
        // The floor of log2 of a positive integer.
        i64::from(127 - nanos.leading_zeros())
    }
}

/// Orders by age bucket (younger first), then by UID; exact times when `now` is unknown.
fn by_age(
    a: &Pod,
    b: &Pod,
    ta: Option<Timestamp>,
    tb: Option<Timestamp>,
    now: Timestamp,
) -> Ordering {
    match (ta, tb) {
        (Some(x), Some(y)) if x != y => {
            let (ra, rb) = (age_bucket(x, now), age_bucket(y, now));
            if ra == rb {
                a.metadata.uid.cmp(&b.metadata.uid)
            } else {
                ra.cmp(&rb)
            }
        }
        (x, y) if x == y => Ordering::Equal,
        (x, y) => later_or_zero_first(x, y),
    }
}

/// Compares two pods for deletion: `Less` means `a` should go first. `rank_a`/`rank_b` count
/// the related pods on each pod's node (doubled-up pods go first). Kubernetes' order:
/// unassigned before assigned; Pending before Unknown before Running; not ready before ready;
/// lower `pod-deletion-cost` first; higher rank first; ready for less time first; more restarts
/// first; newer first.
pub fn cmp_for_deletion(
    a: &Pod,
    rank_a: usize,
    b: &Pod,
    rank_b: usize,
    now: Timestamp,
) -> Ordering {
    let assigned = |p: &Pod| !node_name(p).is_empty();
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| rank_b.cmp(&rank_a))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                let known = |p: &Pod| ready_since(p).filter(|t| *t != Timestamp::UNIX_EPOCH);
                by_age(a, b, known(a), known(b), now)
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| by_age(a, b, creation(a), creation(b), now))
}

/// The `pods` in the order to delete them, first to go first. `related` are the active and
/// inactive pods of the owner and of its siblings (the other ReplicaSets of one Deployment):
/// a pod on a node crowded with related pods goes before one alone on its node.
pub fn deletion_order(pods: &[Arc<Pod>], related: &[Arc<Pod>], now: Timestamp) -> Vec<Arc<Pod>> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(p)).or_default() += 1;
    }
    let mut ranked: Vec<(Arc<Pod>, usize)> = pods
        .iter()
        .map(|p| {
            (
                Arc::clone(p),
                on_node.get(node_name(p)).copied().unwrap_or(0),
            )
        })
        .collect();
    ranked.sort_by(|(a, ra), (b, rb)| cmp_for_deletion(a, *ra, b, *rb, now));
    ranked.into_iter().map(|(p, _)| p).collect()
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
