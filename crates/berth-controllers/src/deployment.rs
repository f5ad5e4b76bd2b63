//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets named
//! `<deployment>-<pod-template-hash>`, by RollingUpdate (within `maxSurge` and
//! `maxUnavailable`) or Recreate, scales them proportionally when the Deployment is scaled in
//! the middle of a rollout, keeps `revisionHistoryLimit` old ReplicaSets, and reports
//! progress in the status and the `Progressing` and `Available` conditions, as
//! kube-controller-manager does; `kubectl rollout status|history|undo|pause|resume|restart`
//! rely on exactly these annotations and conditions.
//!
//! Owns the ReplicaSets a Deployment controls (create, scale, annotate, delete), the
//! Deployment's `deployment.kubernetes.io/revision` annotation and its status. Must not touch
//! pods (the ReplicaSet controller does) nor the Deployment's spec (a rollback is kubectl's
//! client-side patch of the template).
//!
//! One sync of one Deployment is the pure [`rollout_step`]: it replays Kubernetes' sync on an
//! in-memory copy of the Deployment and its ReplicaSets and returns the writes to make
//! ([`Action`]); [`run`] feeds it from the informers and applies the writes in order, each
//! conditional on the resourceVersion it was planned from, stopping at the first failure.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_api::selectors::SelectorError;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::pods::{self, POD_TEMPLATE_HASH};
use crate::queue::{self, Key, Next, Queue};
use crate::replicaset::{api_message, seconds};
use crate::workload;

/// The rollout sequence number of a ReplicaSet, and of the Deployment (its newest).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The earlier revisions a ReplicaSet served before a rollback made it new again.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's `spec.replicas` when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` when the ReplicaSet was last scaled (its share in proportional
/// scaling).
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// kubectl's record of the applied configuration, never copied to ReplicaSets.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The extensions/v1beta1 rollback request annotation, never copied.
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
/// The longest `revision-history` annotation.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;
/// The component named in the controller's events.
const COMPONENT: &str = "deployment-controller";
/// How many Deployments are reconciled at once.
const WORKERS: usize = 5;

/// The `Progressing` condition.
pub const PROGRESSING: &str = "Progressing";
/// The `Available` condition.
pub const AVAILABLE: &str = "Available";
/// The `ReplicaFailure` condition, copied from a ReplicaSet.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// The reasons of the Deployment conditions (Kubernetes' own strings).
pub mod reason {
    /// A ReplicaSet was scaled as part of the rollout.
    pub const REPLICA_SET_UPDATED: &str = "ReplicaSetUpdated";
    /// The new ReplicaSet could not be created.
    pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
    /// The new ReplicaSet was created.
    pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
    /// An existing ReplicaSet was found to be the new one.
    pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
    /// The new ReplicaSet is fully rolled out and available.
    pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
    /// No progress within `progressDeadlineSeconds`.
    pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
    /// The Deployment is paused.
    pub const PAUSED: &str = "DeploymentPaused";
    /// The Deployment was resumed.
    pub const RESUMED: &str = "DeploymentResumed";
    /// At least `replicas - maxUnavailable` pods are available.
    pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
    /// Fewer than `replicas - maxUnavailable` pods are available.
    pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";
}

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The Deployment changed identity or is being deleted: it must not adopt.
    #[error("Deployment {key} cannot adopt ReplicaSets: {reason}")]
    CannotAdopt {
        /// The Deployment.
        key: Key,
        /// Why.
        reason: String,
    },
    /// A write planned for the Deployment failed (a conflict means the cache was stale).
    #[error("Deployment {key}: {what}: {source}")]
    Write {
        /// The Deployment.
        key: Key,
        /// The write.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// A write one sync makes, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the new ReplicaSet.
    CreateReplicaSet(ReplicaSet),
    /// Replace a ReplicaSet (its replicas, annotations, minReadySeconds), conditional on the
    /// resourceVersion it carries.
    UpdateReplicaSet(ReplicaSet),
    /// Delete an old ReplicaSet (`name`, `uid`).
    DeleteReplicaSet(String, String),
    /// Set the Deployment's revision annotation.
    SetRevision(String),
    /// Write the Deployment's status.
    UpdateStatus(DeploymentStatus),
}

/// What one sync decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// The writes, in order.
    pub actions: Vec<Action>,
    /// Look again after this long even without a change (to notice a missed deadline).
    pub requeue_after: Option<Duration>,
}

// ---------------------------------------------------------------------------------------------
// Small accessors and Kubernetes' deployment_util
// ---------------------------------------------------------------------------------------------

/// The Deployment's `spec.replicas` (1 when unset).
pub fn replicas_of(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// An int or a percentage of `total`, the percentage rounded up or down (Kubernetes'
/// `GetScaledValueFromIntOrPercent`). A string that is not a percentage is an error.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    format!("invalid value for IntOrString: {s:?} is not a percentage")
                })?;
            let product = pct * i64::from(total);
            let v = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            Ok(i32::try_from(v).unwrap_or(i32::MAX))
        }
    }
}

/// `(maxSurge, maxUnavailable)` resolved against `replicas`: surge rounds up, unavailability
/// rounds down, and when both come to zero unavailability is 1 (Kubernetes'
/// `ResolveFenceposts`). Invalid values give `(0, 0)`.
pub fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    replicas: i32,
) -> (i32, i32) {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), replicas, true);
    let unavailable = scaled_value(max_unavailable.unwrap_or(&zero), replicas, false);
    match (surge, unavailable) {
        (Ok(0), Ok(0)) => (0, 1),
        (Ok(s), Ok(u)) => (s, u),
        _ => (0, 0),
    }
}

fn rolling_params(d: &Deployment) -> (Option<&IntOrString>, Option<&IntOrString>) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    (
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
    )
}

/// How many pods above `spec.replicas` a rolling Deployment may run (0 for Recreate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    let (s, u) = rolling_params(d);
    fenceposts(s, u, replicas_of(d)).0
}

/// How many of `spec.replicas` a rolling Deployment may have unavailable (0 for Recreate or
/// zero replicas; never more than the replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = replicas_of(d);
    if !is_rolling(d) || replicas == 0 {
        return 0;
    }
    let (s, u) = rolling_params(d);
    fenceposts(s, u, replicas).1.min(replicas)
}

fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn progress_deadline(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600),
    )
}

/// The revision of a ReplicaSet (0 without the annotation; an error when it does not parse).
pub fn revision(rs: &ReplicaSet) -> Result<i64, std::num::ParseIntError> {
    annotation(&rs.metadata, REVISION).map_or(Ok(0), str::parse)
}

fn max_revision<'a>(rss: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    rss.into_iter()
        .filter_map(|rs| revision(rs).ok())
        .max()
        .unwrap_or(0)
        .max(0)
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, then by name (Kubernetes' `ReplicaSetsByCreationTimestamp`).
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    let now = Time(seconds(now));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Sets `cond`, unless one of its type with the same status and reason is there already; the
/// transition time is kept while the status stays the same (Kubernetes'
/// `SetDeploymentCondition`).
fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_default().push(cond);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

/// All updated, all there, all available, and the newest generation seen (Kubernetes'
/// `DeploymentComplete`).
fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let replicas = replicas_of(d);
    let n = |v: Option<i32>| v.unwrap_or(0);
    n(status.updated_replicas) == replicas
        && n(status.replicas) == replicas
        && n(status.available_replicas) == replicas
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// New pods updated, ready or available, or old ones gone since `old` (Kubernetes'
/// `DeploymentProgressing`).
fn progressing(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// No progress reported for longer than the deadline (Kubernetes' `DeploymentTimedOut`).
fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = condition(status, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(reason::NEW_RS_AVAILABLE) => false,
        Some(reason::TIMED_OUT) => true,
        _ => c.last_update_time.as_ref().is_some_and(|from| {
            from.0
                .checked_add(jiff::SignedDuration::from_secs(progress_deadline(d)))
                .is_ok_and(|end| end < now)
        }),
    }
}

/// Sets the desired and max replicas annotations; true if they changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_default();
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.into(), v);
            changed = true;
        }
    }
    changed
}

fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

fn skip_copy(key: &str) -> bool {
    matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS | ROLLBACK_TO
    )
}

/// Copies the Deployment's annotations (but the revision, replica and kubectl ones) to the
/// ReplicaSet, e.g. `kubernetes.io/change-cause` that `kubectl rollout history` shows.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let a = rs.metadata.annotations.get_or_insert_default();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip_copy(k) || a.get(k) == Some(v) {
            continue;
        }
        a.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Annotates the new ReplicaSet: the Deployment's annotations, the revision `new_revision` (if
/// higher than its own, keeping the old one in `revision-history`, as on a rollback), and for
/// a ReplicaSet about to be created the replica annotations. True if anything changed
/// (Kubernetes' `SetNewReplicaSetAnnotations`).
fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let a = rs.metadata.annotations.get_or_insert_default();
    let old = a.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(v) => v,
            Err(_) if s.is_empty() => 0,
            Err(_) => return false,
        },
    };
    if old_int < new_revision {
        a.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                a.insert(REVISION_HISTORY.into(), old);
            } else {
                let mut parts: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < parts.len() {
                    total -= parts[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    parts = parts.split_off(start);
                    parts.push(&old);
                    let joined = parts.join(",");
                    a.insert(REVISION_HISTORY.into(), joined);
                }
            }
        }
    }
    if !exists {
        let replicas = replicas_of(d);
        if set_replicas_annotations(rs, replicas, replicas + max_surge(d)) {
            changed = true;
        }
    }
    changed
}

/// The status after the new ReplicaSet could not be created: `Progressing=False`,
/// `ReplicaSetCreateError` (None without a progress deadline).
pub fn failed_create_status(
    d: &Deployment,
    rs_name: &str,
    message: &str,
    now: Timestamp,
) -> Option<DeploymentStatus> {
    if !has_progress_deadline(d) {
        return None;
    }
    let mut status = d.status.clone().unwrap_or_default();
    set_condition(
        &mut status,
        new_condition(
            PROGRESSING,
            "False",
            reason::FAILED_RS_CREATE,
            format!("Failed to create new replica set \"{rs_name}\": {message}"),
            now,
        ),
    );
    Some(status)
}

// ---------------------------------------------------------------------------------------------
// One sync, replayed in memory
// ---------------------------------------------------------------------------------------------

/// The state of one sync: the Deployment's status and revision as the sync changes them, its
/// ReplicaSets with the changes planned so far, and what must be written.
struct Sim<'a> {
    d: &'a Deployment,
    replicas: i32,
    status: DeploymentStatus,
    revision: Option<String>,
    rss: Vec<ReplicaSet>,
    taken: HashSet<&'a str>,
    pods: &'a [Arc<Pod>],
    created: Option<usize>,
    dirty: Vec<usize>,
    deletes: Vec<(String, String)>,
    halted: bool,
    now: Timestamp,
}

/// One sync of the Deployment `d` (Kubernetes' `syncDeployment`). `owned` are the ReplicaSets
/// it controls (after adoption and release), `namespace_rss` every ReplicaSet of its
/// namespace (whose names a new one must not take), `pods` the pods its ReplicaSets control
/// (a Recreate waits for the old ones to go).
pub fn rollout_step(
    d: &Deployment,
    owned: &[Arc<ReplicaSet>],
    namespace_rss: &[Arc<ReplicaSet>],
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> Step {
    let mut rss: Vec<ReplicaSet> = owned.iter().map(|rs| (**rs).clone()).collect();
    rss.sort_by(by_creation);
    let mut sim = Sim {
        d,
        replicas: replicas_of(d),
        status: d.status.clone().unwrap_or_default(),
        revision: annotation(&d.metadata, REVISION).map(str::to_owned),
        rss,
        taken: namespace_rss
            .iter()
            .filter_map(|rs| rs.metadata.name.as_deref())
            .collect(),
        pods,
        created: None,
        dirty: Vec::new(),
        deletes: Vec::new(),
        halted: false,
        now,
    };
    let selects_all = d
        .spec
        .as_ref()
        .is_some_and(|s| pods::selector(Some(&s.selector)).is_ok_and(|s| s.is_empty()));
    if selects_all {
        // Kubernetes refuses to act on a selector that takes every pod of the namespace.
        if sim.status.observed_generation < d.metadata.generation {
            sim.status.observed_generation = d.metadata.generation;
        }
        return sim.finish();
    }
    if d.metadata.deletion_timestamp.is_some() {
        sim.sync_status_only();
        return sim.finish();
    }
    sim.check_paused_conditions();
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused || sim.is_scaling_event() {
        sim.sync();
    } else if is_recreate(d) {
        sim.rollout_recreate();
    } else {
        sim.rollout_rolling();
    }
    sim.finish()
}

impl Sim<'_> {
    /// The writes, in order: the create, the updates, the deletes, the revision, the status.
    fn finish(self) -> Step {
        let mut actions = Vec::new();
        if let Some(i) = self.created {
            let mut rs = self.rss[i].clone();
            rs.metadata.creation_timestamp = None;
            actions.push(Action::CreateReplicaSet(rs));
        }
        for &i in &self.dirty {
            actions.push(Action::UpdateReplicaSet(self.rss[i].clone()));
        }
        for (name, uid) in self.deletes {
            actions.push(Action::DeleteReplicaSet(name, uid));
        }
        if self.revision.as_deref() != annotation(&self.d.metadata, REVISION)
            && let Some(r) = &self.revision
        {
            actions.push(Action::SetRevision(r.clone()));
        }
        let stored = self.d.status.clone().unwrap_or_default();
        if !same_status(&stored, &self.status) {
            actions.push(Action::UpdateStatus(self.status.clone()));
        }
        let requeue_after = requeue_stuck(self.d, &self.status, self.now);
        Step {
            actions,
            requeue_after,
        }
    }

    fn mark(&mut self, i: usize) {
        if self.created != Some(i) && !self.dirty.contains(&i) {
            self.dirty.push(i);
        }
    }

    /// The oldest ReplicaSet whose template is the Deployment's (Kubernetes'
    /// `FindNewReplicaSet`); `rss` is kept sorted by creation.
    fn find_new(&self) -> Option<usize> {
        let template = self.d.spec.as_ref().map(|s| &s.template)?;
        self.rss.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| pods::templates_equal_ignoring_hash(t, template))
        })
    }

    fn olds(&self, new: Option<usize>) -> Vec<usize> {
        (0..self.rss.len()).filter(|i| Some(*i) != new).collect()
    }

    fn active(&self, idx: impl IntoIterator<Item = usize>) -> Vec<usize> {
        idx.into_iter()
            .filter(|&i| rs_replicas(&self.rss[i]) > 0)
            .collect()
    }

    fn sum(&self, idx: &[usize], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
        idx.iter().map(|&i| f(&self.rss[i])).sum()
    }

    fn all(new: Option<usize>, olds: &[usize]) -> Vec<usize> {
        let mut all = olds.to_vec();
        all.extend(new);
        all
    }

    /// Kubernetes' `getAllReplicaSetsAndSyncRevision`: the new ReplicaSet (found, brought up
    /// to date, or created when `create`) and the old ones.
    fn new_and_olds(&mut self, create: bool) -> (Option<usize>, Vec<usize>) {
        let existing = self.find_new();
        let olds = self.olds(existing);
        let new_revision = max_revision(olds.iter().map(|&i| &self.rss[i])).saturating_add(1);
        if let Some(i) = existing {
            let d = self.d;
            let mut rs = self.rss[i].clone();
            let annotated = set_new_rs_annotations(d, &mut rs, new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let spec = rs.spec.get_or_insert_default();
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
            if annotated || min_ready_changed {
                spec.min_ready_seconds = min_ready;
                self.rss[i] = rs;
                self.mark(i);
            }
            if let Some(r) = annotation(&self.rss[i].metadata, REVISION) {
                self.revision = Some(r.to_owned());
            }
            if has_progress_deadline(d) && condition(&self.status, PROGRESSING).is_none() {
                let name = self.rss[i].metadata.name.clone().unwrap_or_default();
                set_condition(
                    &mut self.status,
                    new_condition(
                        PROGRESSING,
                        "True",
                        reason::FOUND_NEW_RS,
                        format!("Found new replica set \"{name}\""),
                        self.now,
                    ),
                );
            }
            return (Some(i), olds);
        }
        if !create || self.halted {
            return (None, olds);
        }
        self.create_new(&olds, new_revision)
    }

    /// Plans the new ReplicaSet, or counts a hash collision when its name is taken.
    fn create_new(&mut self, olds: &[usize], new_revision: i64) -> (Option<usize>, Vec<usize>) {
        let d = self.d;
        let Some(spec) = d.spec.as_ref() else {
            return (None, olds.to_vec());
        };
        let template = spec.template.clone();
        let hash = pods::template_hash(&template, self.status.collision_count);
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        if self.taken.contains(name.as_str()) {
            // Another ReplicaSet has this name and is not ours with this template: count the
            // collision so that the next sync hashes differently.
            self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
            self.halted = true;
            return (None, olds.to_vec());
        }
        let mut new_template = template;
        new_template
            .metadata
            .get_or_insert_default()
            .labels
            .get_or_insert_default()
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_default()
            .insert(POD_TEMPLATE_HASH.into(), hash);
        let labels = new_template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels,
                owner_references: Some(vec![pods::controller_ref(d)]),
                creation_timestamp: Some(Time(self.now)),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(new_template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = olds.iter().map(|&i| &self.rss[i]).collect();
        all.push(&rs);
        let count = new_rs_new_replicas(d, &all, &rs);
        rs.spec.get_or_insert_default().replicas = Some(count);
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        self.rss.push(rs);
        let i = self.rss.len() - 1;
        self.created = Some(i);
        self.revision = Some(new_revision.to_string());
        if has_progress_deadline(d) {
            set_condition(
                &mut self.status,
                new_condition(
                    PROGRESSING,
                    "True",
                    reason::NEW_RS_CREATED,
                    format!("Created new replica set \"{name}\""),
                    self.now,
                ),
            );
        }
        (Some(i), olds.to_vec())
    }

    /// Kubernetes' `checkPausedConditions`: `Progressing=Unknown` with `DeploymentPaused` or
    /// `DeploymentResumed` when the pause changes, unless the deadline was already missed.
    fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(self.d) {
            return;
        }
        let current = condition(&self.status, PROGRESSING);
        if current.is_some_and(|c| c.reason.as_deref() == Some(reason::TIMED_OUT)) {
            return;
        }
        let paused_cond = current.is_some_and(|c| c.reason.as_deref() == Some(reason::PAUSED));
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused && !paused_cond {
            let c = new_condition(
                PROGRESSING,
                "Unknown",
                reason::PAUSED,
                "Deployment is paused".into(),
                self.now,
            );
            set_condition(&mut self.status, c);
        } else if !paused && paused_cond {
            let c = new_condition(
                PROGRESSING,
                "Unknown",
                reason::RESUMED,
                "Deployment is resumed".into(),
                self.now,
            );
            set_condition(&mut self.status, c);
        }
    }

    /// A ReplicaSet with pods whose desired-replicas annotation differs from `spec.replicas`
    /// (Kubernetes' `isScalingEvent`).
    fn is_scaling_event(&mut self) -> bool {
        let (new, olds) = self.new_and_olds(false);
        let all = Self::all(new, &olds);
        self.active(all).into_iter().any(|i| {
            annotation(&self.rss[i].metadata, DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i32>().ok())
                .is_some_and(|desired| desired != self.replicas)
        })
    }

    /// Scales a ReplicaSet to `to` and brings its replica annotations up to date; true if its
    /// size changed (Kubernetes' `scaleReplicaSet`).
    fn scale_rs(&mut self, i: usize, to: i32) -> bool {
        let desired = self.replicas;
        let max = desired + max_surge(self.d);
        let size_changed = rs_replicas(&self.rss[i]) != to;
        if size_changed || replicas_annotations_need_update(&self.rss[i], desired, max) {
            let rs = &mut self.rss[i];
            rs.spec.get_or_insert_default().replicas = Some(to);
            set_replicas_annotations(rs, desired, max);
            self.mark(i);
        }
        size_changed
    }

    /// Like [`Self::scale_rs`] but nothing when the size is right already.
    fn scale_rs_if_needed(&mut self, i: usize, to: i32) -> bool {
        if rs_replicas(&self.rss[i]) == to {
            return false;
        }
        self.scale_rs(i, to)
    }

    /// Kubernetes' `sync`: scaling (proportionally during a rollout) without rolling out, for
    /// a paused Deployment or a scaling event.
    fn sync(&mut self) {
        let (new, olds) = self.new_and_olds(false);
        self.scale(new, &olds);
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused {
            self.cleanup(&olds);
        }
        let all = Self::all(new, &olds);
        self.status = self.calculate_status(&all, new);
    }

    fn sync_status_only(&mut self) {
        let (new, olds) = self.new_and_olds(false);
        let all = Self::all(new, &olds);
        self.status = self.calculate_status(&all, new);
    }

    /// Kubernetes' `scale`.
    fn scale(&mut self, new: Option<usize>, olds: &[usize]) {
        if let Some(i) = self.active_or_latest(new, olds) {
            if rs_replicas(&self.rss[i]) != self.replicas {
                self.scale_rs_if_needed(i, self.replicas);
            }
            return;
        }
        if self.is_saturated(new) {
            for i in self.active(olds.iter().copied()) {
                self.scale_rs_if_needed(i, 0);
            }
            return;
        }
        if !is_rolling(self.d) {
            return;
        }
        let mut all = self.active(Self::all(new, olds));
        let total = self.sum(&all, rs_replicas);
        let allowed = if self.replicas > 0 {
            self.replicas + max_surge(self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        let size_then_age = |a: &ReplicaSet, b: &ReplicaSet, newer_first: bool| {
            rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
                if newer_first {
                    by_creation(b, a)
                } else {
                    by_creation(a, b)
                }
            })
        };
        match to_add.cmp(&0) {
            Ordering::Greater => {
                all.sort_by(|&a, &b| size_then_age(&self.rss[a], &self.rss[b], true))
            }
            Ordering::Less => {
                all.sort_by(|&a, &b| size_then_age(&self.rss[a], &self.rss[b], false))
            }
            Ordering::Equal => {}
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(all.len());
        for &i in &all {
            let rs = &self.rss[i];
            if to_add != 0 {
                let p = proportion(rs, self.d, &self.status, to_add, added);
                sizes.push(rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.push(rs_replicas(rs));
            }
        }
        for (k, &i) in all.iter().enumerate() {
            if k == 0 && to_add != 0 {
                sizes[0] = (sizes[0] + to_add - added).max(0);
            }
            self.scale_rs(i, sizes[k]);
        }
    }

    /// The only active ReplicaSet, or the newest when none is active (Kubernetes'
    /// `FindActiveOrLatest`).
    fn active_or_latest(&self, new: Option<usize>, olds: &[usize]) -> Option<usize> {
        if new.is_none() && olds.is_empty() {
            return None;
        }
        let active = self.active(Self::all(new, olds));
        match active.len() {
            0 => new.or_else(|| {
                olds.iter()
                    .copied()
                    .max_by(|&a, &b| by_creation(&self.rss[a], &self.rss[b]))
            }),
            1 => Some(active[0]),
            _ => None,
        }
    }

    /// The new ReplicaSet has all the Deployment's replicas, annotated so, all available.
    fn is_saturated(&self, new: Option<usize>) -> bool {
        let Some(i) = new else { return false };
        let rs = &self.rss[i];
        annotation(&rs.metadata, DESIRED_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok())
            .is_some_and(|desired| {
                rs_replicas(rs) == self.replicas
                    && desired == self.replicas
                    && rs_available(rs) == self.replicas
            })
    }

    /// Kubernetes' `rolloutRolling`.
    fn rollout_rolling(&mut self) {
        let (new, olds) = self.new_and_olds(true);
        let all = Self::all(new, &olds);
        let Some(new_i) = new else {
            // The new ReplicaSet could not be planned (a hash collision): report and retry.
            self.sync_rollout_status(&all, new);
            return;
        };
        if self.reconcile_new(&all, new_i) {
            self.sync_rollout_status(&all, new);
            return;
        }
        let active_olds = self.active(olds.iter().copied());
        if self.reconcile_olds(&all, &active_olds, new_i) {
            self.sync_rollout_status(&all, new);
            return;
        }
        let stored = self.status.clone();
        if complete(self.d, &stored) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(&all, new);
    }

    /// Scales the new ReplicaSet up as far as maxSurge allows, or down to `spec.replicas`.
    fn reconcile_new(&mut self, all: &[usize], new: usize) -> bool {
        let current = rs_replicas(&self.rss[new]);
        if current == self.replicas {
            return false;
        }
        if current > self.replicas {
            return self.scale_rs_if_needed(new, self.replicas);
        }
        let rss: Vec<&ReplicaSet> = all.iter().map(|&i| &self.rss[i]).collect();
        let count = new_rs_new_replicas(self.d, &rss, &self.rss[new]);
        self.scale_rs_if_needed(new, count)
    }

    /// Scales old ReplicaSets down as far as maxUnavailable allows, their unhealthy pods first
    /// (Kubernetes' `reconcileOldReplicaSets`).
    fn reconcile_olds(&mut self, all: &[usize], olds: &[usize], new: usize) -> bool {
        let old_pods = self.sum(olds, rs_replicas);
        if old_pods == 0 {
            return false;
        }
        let all_pods = self.sum(all, rs_replicas);
        let min_available = self.replicas - max_unavailable(self.d);
        let new_rs = &self.rss[new];
        let new_unavailable = rs_replicas(new_rs) - rs_available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let cleaned = self.cleanup_unhealthy(olds, max_scaled_down);
        let mut with_new = olds.to_vec();
        with_new.push(new);
        let scaled = self.scale_down_olds(&with_new, olds);
        cleaned + scaled > 0
    }

    /// Scales old ReplicaSets down by their unavailable pods, oldest first, at most `max`.
    fn cleanup_unhealthy(&mut self, olds: &[usize], max: i32) -> i32 {
        let mut olds = olds.to_vec();
        olds.sort_by(|&a, &b| by_creation(&self.rss[a], &self.rss[b]));
        let mut total = 0;
        for i in olds {
            if total >= max {
                break;
            }
            let (replicas, available) = (rs_replicas(&self.rss[i]), rs_available(&self.rss[i]));
            if replicas == 0 || replicas == available {
                continue;
            }
            let n = (max - total).min(replicas - available);
            self.scale_rs_if_needed(i, replicas - n);
            total += n;
        }
        total
    }

    /// Scales old ReplicaSets down, oldest first, while more than `replicas - maxUnavailable`
    /// pods stay available.
    fn scale_down_olds(&mut self, all: &[usize], olds: &[usize]) -> i32 {
        let min_available = self.replicas - max_unavailable(self.d);
        let available = self.sum(all, rs_available);
        if available <= min_available {
            return 0;
        }
        let mut olds = olds.to_vec();
        olds.sort_by(|&a, &b| by_creation(&self.rss[a], &self.rss[b]));
        let target = available - min_available;
        let mut total = 0;
        for i in olds {
            if total >= target {
                break;
            }
            let replicas = rs_replicas(&self.rss[i]);
            if replicas == 0 {
                continue;
            }
            let n = replicas.min(target - total);
            self.scale_rs_if_needed(i, replicas - n);
            total += n;
        }
        total
    }

    /// Kubernetes' `rolloutRecreate`: old ReplicaSets to zero, wait for their pods to go, then
    /// the new one to `spec.replicas`.
    fn rollout_recreate(&mut self) {
        let (mut new, mut olds) = self.new_and_olds(false);
        let mut all = Self::all(new, &olds);
        let mut scaled_down = false;
        for i in self.active(olds.iter().copied()) {
            scaled_down |= self.scale_rs_if_needed(i, 0);
        }
        if scaled_down || self.old_pods_running(new, &olds) {
            self.sync_rollout_status(&all, new);
            return;
        }
        if new.is_none() {
            (new, olds) = self.new_and_olds(true);
            all = Self::all(new, &olds);
        }
        if let Some(i) = new {
            self.scale_rs_if_needed(i, self.replicas);
        }
        let stored = self.status.clone();
        if complete(self.d, &stored) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(&all, new);
    }

    /// Old ReplicaSets report pods, or pods of theirs that are not finished remain (being
    /// deleted ones included).
    fn old_pods_running(&self, new: Option<usize>, olds: &[usize]) -> bool {
        if self.sum(olds, rs_status_replicas) > 0 {
            return true;
        }
        let new_uid = new.and_then(|i| self.rss[i].metadata.uid.as_deref());
        let old_uids: HashSet<&str> = olds
            .iter()
            .filter_map(|&i| self.rss[i].metadata.uid.as_deref())
            .collect();
        self.pods.iter().any(|p| {
            pods::controller_of(&p.metadata).is_some_and(|r| {
                Some(r.uid.as_str()) != new_uid && old_uids.contains(r.uid.as_str())
            }) && !matches!(pods::phase(p), "Succeeded" | "Failed")
        })
    }

    /// Deletes the oldest old ReplicaSets beyond `revisionHistoryLimit` that have no pods
    /// (Kubernetes' `cleanupDeployment`).
    fn cleanup(&mut self, olds: &[usize]) {
        let Some(limit) = self
            .d
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .filter(|l| *l != i32::MAX)
        else {
            return;
        };
        let mut alive: Vec<usize> = olds
            .iter()
            .copied()
            .filter(|&i| self.rss[i].metadata.deletion_timestamp.is_none())
            .collect();
        let diff = i64::try_from(alive.len()).unwrap_or(i64::MAX) - i64::from(limit);
        if diff <= 0 {
            return;
        }
        alive.sort_by(|&a, &b| {
            let (ra, rb) = (&self.rss[a], &self.rss[b]);
            revision(ra)
                .unwrap_or(0)
                .cmp(&revision(rb).unwrap_or(0))
                .then_with(|| by_creation(ra, rb))
        });
        for &i in alive.iter().take(usize::try_from(diff).unwrap_or(0)) {
            let rs = &self.rss[i];
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            self.deletes.push((
                rs.metadata.name.clone().unwrap_or_default(),
                rs.metadata.uid.clone().unwrap_or_default(),
            ));
        }
    }

    /// The status the ReplicaSets add up to, with the `Available` condition (Kubernetes'
    /// `calculateStatus`). Zero counts are left out, as Kubernetes' `omitempty` does.
    fn calculate_status(&self, all: &[usize], new: Option<usize>) -> DeploymentStatus {
        let available = self.sum(all, rs_available);
        let total = self.sum(all, rs_replicas);
        let some = |n: i32| (n != 0).then_some(n);
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: some(self.sum(all, rs_status_replicas)),
            updated_replicas: some(new.map_or(0, |i| rs_status_replicas(&self.rss[i]))),
            ready_replicas: some(self.sum(all, rs_ready)),
            available_replicas: some(available),
            unavailable_replicas: some((total - available).max(0)),
            collision_count: self.status.collision_count,
            conditions: self.status.conditions.clone(),
            terminating_replicas: None,
        };
        if available >= self.replicas - max_unavailable(self.d) {
            set_condition(
                &mut status,
                new_condition(
                    AVAILABLE,
                    "True",
                    reason::MIN_AVAILABLE,
                    "Deployment has minimum availability.".into(),
                    self.now,
                ),
            );
        } else {
            set_condition(
                &mut status,
                new_condition(
                    AVAILABLE,
                    "False",
                    reason::MIN_UNAVAILABLE,
                    "Deployment does not have minimum availability.".into(),
                    self.now,
                ),
            );
        }
        status
    }

    /// The status with the `Progressing` condition brought up to date and the ReplicaSets'
    /// `ReplicaFailure` copied (Kubernetes' `syncRolloutStatus`).
    fn sync_rollout_status(&mut self, all: &[usize], new: Option<usize>) {
        let d = self.d;
        let mut status = self.calculate_status(all, new);
        if !has_progress_deadline(d) {
            remove_condition(&mut status, PROGRESSING);
        }
        let current = condition(&self.status, PROGRESSING).cloned();
        let done = status.replicas == status.updated_replicas
            && current
                .as_ref()
                .is_some_and(|c| c.reason.as_deref() == Some(reason::NEW_RS_AVAILABLE));
        let new_name = new.and_then(|i| self.rss[i].metadata.name.clone());
        let what = |name: &Option<String>| match name {
            Some(n) => format!("ReplicaSet \"{n}\""),
            None => format!(
                "Deployment \"{}\"",
                d.metadata.name.as_deref().unwrap_or_default()
            ),
        };
        if has_progress_deadline(d) && !done {
            if complete(d, &status) {
                let c = new_condition(
                    PROGRESSING,
                    "True",
                    reason::NEW_RS_AVAILABLE,
                    format!("{} has successfully progressed.", what(&new_name)),
                    self.now,
                );
                set_condition(&mut status, c);
            } else if progressing(&self.status, &status) {
                let mut c = new_condition(
                    PROGRESSING,
                    "True",
                    reason::REPLICA_SET_UPDATED,
                    format!("{} is progressing.", what(&new_name)),
                    self.now,
                );
                // Progress moves lastUpdateTime even when the reason stays the same.
                if let Some(cur) = &current {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, c);
            } else if timed_out(d, &status, self.now) {
                let c = new_condition(
                    PROGRESSING,
                    "False",
                    reason::TIMED_OUT,
                    format!("{} has timed out progressing.", what(&new_name)),
                    self.now,
                );
                set_condition(&mut status, c);
            }
        }
        match self.replica_failure(all, new) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        self.status = status;
    }

    /// The `ReplicaFailure` condition of the new ReplicaSet, else of any other.
    fn replica_failure(&self, all: &[usize], new: Option<usize>) -> Option<DeploymentCondition> {
        let of = |i: usize| {
            self.rss[i]
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == REPLICA_FAILURE)
                .map(|c| DeploymentCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time.clone(),
                })
        };
        new.and_then(of).or_else(|| all.iter().find_map(|&i| of(i)))
    }
}

/// How many replicas the new ReplicaSet may have now: as many as maxSurge leaves room for, up
/// to `spec.replicas`, for RollingUpdate; `spec.replicas` for Recreate (Kubernetes'
/// `NewRSNewReplicas`).
fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    let replicas = replicas_of(d);
    if !is_rolling(d) {
        return replicas;
    }
    let (s, _) = rolling_params(d);
    let surge = scaled_value(s.unwrap_or(&IntOrString::Int(0)), replicas, true).unwrap_or(0);
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = replicas + surge;
    let new_replicas = rs_replicas(new);
    if current >= max_total {
        return new_replicas;
    }
    new_replicas + (max_total - current).min(replicas - new_replicas)
}

/// The share of `to_add` a ReplicaSet gets, from its size against the max-replicas it was
/// annotated with (Kubernetes' `GetProportion`).
fn proportion(
    rs: &ReplicaSet,
    d: &Deployment,
    status: &DeploymentStatus,
    to_add: i32,
    added: i32,
) -> i32 {
    let size = rs_replicas(rs);
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if replicas_of(d) == 0 {
        -size
    } else {
        let max = replicas_of(d) + max_surge(d);
        let before = annotation(&rs.metadata, MAX_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok())
            .filter(|v| *v != 0)
            .unwrap_or_else(|| status.replicas.unwrap_or(0));
        if before <= 0 {
            0
        } else {
            let scaled = (f64::from(size) * f64::from(max) / f64::from(before)).round();
            // The product of two i32 over a positive i32 fits an i32 after rounding here.
            #[allow(clippy::cast_possible_truncation)]
            let scaled = scaled as i32;
            scaled - size
        }
    };
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

/// When to look again for a rollout that has not finished: when its deadline passes
/// (Kubernetes' `requeueStuckDeployment`).
fn requeue_stuck(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    if !has_progress_deadline(d) || complete(d, status) {
        return None;
    }
    let c = condition(status, PROGRESSING)?;
    if matches!(
        c.reason.as_deref(),
        Some(reason::TIMED_OUT | reason::PAUSED)
    ) {
        return None;
    }
    let from = c.last_update_time.as_ref()?.0;
    let end = from
        .checked_add(jiff::SignedDuration::from_secs(progress_deadline(d)))
        .ok()?;
    let left = Duration::try_from(end.duration_since(now)).unwrap_or(Duration::ZERO);
    // Just after the deadline, so that the next sync sees it passed; soon when it has.
    Some(if left < Duration::from_secs(1) {
        Duration::from_secs(1)
    } else {
        left + Duration::from_millis(100)
    })
}

/// True when two statuses say the same (absent counts are zero).
fn same_status(a: &DeploymentStatus, b: &DeploymentStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    n(a.replicas) == n(b.replicas)
        && n(a.updated_replicas) == n(b.updated_replicas)
        && n(a.ready_replicas) == n(b.ready_replicas)
        && n(a.available_replicas) == n(b.available_replicas)
        && n(a.unavailable_replicas) == n(b.unavailable_replicas)
        && a.observed_generation == b.observed_generation
        && a.collision_count == b.collision_count
        && a.conditions.as_deref().unwrap_or_default()
            == b.conditions.as_deref().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let deployments = ctx.informers.get::<Deployment>();
    let replicasets = ctx.informers.get::<ReplicaSet>();
    let pod_informer = ctx.informers.get::<Pod>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        async move {
            let follow_deployments = deployments.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
                Change::Deleted(_) => {}
                Change::Resynced => deployments.queue_all(&queue),
            });
            let follow_sets = replicasets.follow(&shutdown, |c| rs_changed(&ctx, &queue, c));
            let follow_pods = pod_informer.follow(&shutdown, |c| {
                // A Recreate waits for the old pods to be gone.
                if let Change::Deleted(pod) = c
                    && let Some(key) = deployment_of_pod(&ctx, &pod)
                {
                    queue.add(key);
                }
            });
            deployments.ready().await;
            replicasets.ready().await;
            pod_informer.ready().await;
            deployments.queue_all(&queue);
            tokio::join!(follow_deployments, follow_sets, follow_pods);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("deployment", queue, WORKERS, shutdown, move |key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// The Deployment (by key) that controls `rs`, if it is in the cache.
fn controlling_deployment(ctx: &Context, rs: &ReplicaSet) -> Option<Key> {
    let d = ctx
        .informers
        .get::<Deployment>()
        .controller_of(&rs.metadata)?;
    Some(Key::of(d.as_ref()))
}

/// The Deployment of the ReplicaSet that controls `pod`, for Recreate Deployments only.
fn deployment_of_pod(ctx: &Context, pod: &Pod) -> Option<Key> {
    let rs = ctx
        .informers
        .get::<ReplicaSet>()
        .controller_of(&pod.metadata)?;
    let d = ctx
        .informers
        .get::<Deployment>()
        .controller_of(&rs.metadata)?;
    is_recreate(&d).then(|| Key::of(d.as_ref()))
}

/// Queues every Deployment whose selector matches the orphan `rs`.
fn queue_matching(ctx: &Context, queue: &Queue<Key>, rs: &ReplicaSet) {
    ctx.informers
        .get::<Deployment>()
        .queue_selecting(queue, &rs.metadata, |d| {
            d.spec.as_ref().map(|s| &s.selector)
        });
}

fn rs_changed(ctx: &Context, queue: &Queue<Key>, change: Change<ReplicaSet>) {
    match change {
        Change::Applied { old, new } => {
            if let Some(old) = &old {
                let ref_changed = pods::controller_of(&old.metadata).map(|r| &r.uid)
                    != pods::controller_of(&new.metadata).map(|r| &r.uid);
                if ref_changed && let Some(key) = controlling_deployment(ctx, old) {
                    queue.add(key);
                }
            }
            if let Some(key) = controlling_deployment(ctx, &new) {
                queue.add(key);
            } else if pods::controller_of(&new.metadata).is_none() {
                let relabelled = old.as_ref().is_none_or(|o| {
                    o.metadata.labels != new.metadata.labels
                        || o.metadata.owner_references != new.metadata.owner_references
                });
                if relabelled {
                    queue_matching(ctx, queue, &new);
                }
            }
        }
        Change::Deleted(rs) => {
            if let Some(key) = controlling_deployment(ctx, &rs) {
                queue.add(key);
            }
        }
        Change::Resynced => ctx.informers.get::<Deployment>().queue_all(queue),
    }
}

/// Syncs one Deployment.
async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, DeploymentError> {
    let Some(d) = ctx
        .informers
        .get::<Deployment>()
        .get(&key.namespace, &key.name)
    else {
        return Ok(Next::Done);
    };
    let sel = match pods::selector(d.spec.as_ref().map(|s| &s.selector)) {
        Ok(s) => s,
        Err(e) => {
            invalid_selector(key, &e);
            return Ok(Next::Done);
        }
    };
    let in_ns = |ns: Option<&str>| ns == Some(key.namespace.as_str());
    let namespace_rss = ctx
        .informers
        .get::<ReplicaSet>()
        .filter(|rs| in_ns(rs.metadata.namespace.as_deref()));
    let claim = pods::claim(&d.metadata, &sel, namespace_rss.iter().cloned());
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
    claim_replicasets(ctx, key, &d, &rs_api, &claim).await?;
    let uids: HashSet<&str> = claim
        .owned
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    let owned_pods = if is_recreate(&d) {
        ctx.informers.get::<Pod>().filter(|p| {
            in_ns(p.metadata.namespace.as_deref())
                && pods::controller_of(&p.metadata).is_some_and(|r| uids.contains(r.uid.as_str()))
        })
    } else {
        Vec::new()
    };
    let now = ctx.clock.now();
    let step = rollout_step(&d, &claim.owned, &namespace_rss, &owned_pods, now);
    apply(ctx, key, &d, &claim.owned, &rs_api, step.actions, now).await?;
    Ok(step.requeue_after.map_or(Next::Done, Next::After))
}

fn invalid_selector(key: &Key, e: &SelectorError) {
    // Validation keeps bad selectors out; nothing to do until the object changes.
    tracing::warn!(deployment = %key, error = %e, "invalid selector");
}

/// Releases and adopts ReplicaSets; before the first adoption, checks with a fresh read that
/// the Deployment is still the same object and not being deleted.
async fn claim_replicasets(
    ctx: &Context,
    key: &Key,
    d: &Deployment,
    api: &Api<ReplicaSet>,
    claim: &pods::Claim<ReplicaSet>,
) -> Result<(), DeploymentError> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let write = |what: String, source| DeploymentError::Write {
        key: key.clone(),
        what,
        source,
    };
    for rs in &claim.release {
        pods::release(api, &uid, rs.as_ref())
            .await
            .map_err(|e| write(format!("releasing {}", pods::object_key(&rs.metadata)), e))?;
    }
    if claim.adopt.is_empty() {
        return Ok(());
    }
    let cannot = |reason: String| DeploymentError::CannotAdopt {
        key: key.clone(),
        reason,
    };
    let fresh = Api::<Deployment>::namespaced(ctx.client.clone(), &key.namespace)
        .get(&key.name)
        .await
        .map_err(|e| cannot(format!("reading it: {e}")))?;
    if fresh.metadata.uid.as_deref() != Some(uid.as_str()) {
        return Err(cannot(format!(
            "the original is gone: got uid {:?}, wanted {uid}",
            fresh.metadata.uid
        )));
    }
    if fresh.metadata.deletion_timestamp.is_some() {
        return Err(cannot("it is being deleted".into()));
    }
    let owner = pods::controller_ref(d);
    for rs in &claim.adopt {
        pods::adopt(api, &owner, rs.as_ref())
            .await
            .map_err(|e| write(format!("adopting {}", pods::object_key(&rs.metadata)), e))?;
    }
    Ok(())
}

/// Records `ScalingReplicaSet` on the Deployment without waiting for it (best effort).
fn scaled_event(ctx: &Context, d: &Deployment, rs_name: &str, from: i32, to: i32) {
    let client = ctx.client.clone();
    let now = ctx.clock.now();
    let regarding = workload::object_ref(d);
    let way = if to > from { "up" } else { "down" };
    let message = format!("Scaled {way} replica set {rs_name} from {from} to {to}");
    tokio::spawn(async move {
        workload::record_event(
            &client,
            COMPONENT,
            now,
            regarding,
            "Normal",
            "ScalingReplicaSet",
            message,
        )
        .await;
    });
}

/// Makes the writes of one step in order, stopping at the first failure. The Deployment's
/// own writes chain its resourceVersion.
async fn apply(
    ctx: &Context,
    key: &Key,
    d: &Deployment,
    before: &[Arc<ReplicaSet>],
    rs_api: &Api<ReplicaSet>,
    actions: Vec<Action>,
    now: Timestamp,
) -> Result<(), DeploymentError> {
    let d_api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let write = |what: String, source| DeploymentError::Write {
        key: key.clone(),
        what,
        source,
    };
    let mut current = d.clone();
    for action in actions {
        match action {
            Action::CreateReplicaSet(rs) => {
                let name = rs.metadata.name.clone().unwrap_or_default();
                let replicas = rs_replicas(&rs);
                if let Err(e) = rs_api.create(&PostParams::default(), &rs).await {
                    let exists = matches!(&e, kube::Error::Api(s) if s.code == 409);
                    if !exists
                        && let Some(status) =
                            failed_create_status(&current, &name, &api_message(&e), now)
                    {
                        let mut with = current.clone();
                        with.status = Some(status);
                        // The condition reports the bigger problem; its own failure matters less.
                        let _ = d_api
                            .replace_status(&key.name, &PostParams::default(), &with)
                            .await;
                    }
                    return Err(write(format!("creating ReplicaSet {name}"), e));
                }
                if replicas > 0 {
                    scaled_event(ctx, d, &name, 0, replicas);
                }
            }
            Action::UpdateReplicaSet(rs) => {
                let name = rs.metadata.name.clone().unwrap_or_default();
                rs_api
                    .replace(&name, &PostParams::default(), &rs)
                    .await
                    .map_err(|e| write(format!("updating ReplicaSet {name}"), e))?;
                let old = before
                    .iter()
                    .find(|b| b.metadata.name == rs.metadata.name)
                    .map(|b| rs_replicas(b));
                if let Some(old) = old
                    && old != rs_replicas(&rs)
                {
                    scaled_event(ctx, d, &name, old, rs_replicas(&rs));
                }
            }
            Action::DeleteReplicaSet(name, uid) => {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match rs_api.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(e) => return Err(write(format!("deleting ReplicaSet {name}"), e)),
                }
            }
            Action::SetRevision(revision) => {
                let patch = json!({"metadata": {
                    "annotations": {REVISION: revision},
                    "resourceVersion": current.metadata.resource_version,
                }});
                current = d_api
                    .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(|e| write("setting the revision".into(), e))?;
            }
            Action::UpdateStatus(status) => {
                let mut with = current.clone();
                with.status = Some(status);
                current = d_api
                    .replace_status(&key.name, &PostParams::default(), &with)
                    .await
                    .map_err(|e| write("writing the status".into(), e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
