//! The ReplicaSet controller: keeps `spec.replicas` active pods matching each ReplicaSet's
//! selector, controlled by it, and reports what it sees in `status`.
//!
//! Owns the pods a ReplicaSet controls (creating, deleting, adopting and releasing them) and
//! the ReplicaSet's status. Must not change a ReplicaSet's spec or metadata (its Deployment
//! does) and must not touch pods another controller owns.
//!
//! The decision for one ReplicaSet is the pure [`plan_replicaset`] (what to adopt, release,
//! create, delete) and [`replicaset_status`]; [`run`] feeds them from the informers and applies
//! the plan through the API, remembering creates and deletes in flight
//! ([`Expectations`](crate::pods::Expectations)) so that a cache that lags does not make it act
//! twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use berth_api::selectors::SelectorError;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::pods::{self, Expectations};
use crate::queue::{self, Key, Next, Queue};
use crate::workload;

/// The most pods one sync creates or deletes (Kubernetes' `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// The condition reported when pods cannot be created or deleted.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// The component named in the controller's events.
const COMPONENT: &str = "replicaset-controller";
/// How many ReplicaSets are reconciled at once.
const WORKERS: usize = 5;

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    /// The ReplicaSet's selector does not parse.
    #[error("invalid selector of ReplicaSet {key}: {source}")]
    Selector {
        /// The ReplicaSet.
        key: Key,
        /// Why.
        #[source]
        source: SelectorError,
    },
    /// The ReplicaSet changed identity or is being deleted: it must not adopt.
    #[error("ReplicaSet {key} cannot adopt pods: {reason}")]
    CannotAdopt {
        /// The ReplicaSet.
        key: Key,
        /// Why.
        reason: String,
    },
    /// Adopting or releasing a pod failed.
    #[error("claiming pod {pod} for ReplicaSet {key}: {source}")]
    Claim {
        /// The ReplicaSet.
        key: Key,
        /// The pod.
        pod: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Creating or deleting pods failed; reported in the `ReplicaFailure` condition.
    #[error("managing the pods of ReplicaSet {key}: {message}")]
    Manage {
        /// The ReplicaSet.
        key: Key,
        /// The API's message.
        message: String,
    },
    /// Writing the status failed.
    #[error("writing the status of ReplicaSet {key}: {source}")]
    Status {
        /// The ReplicaSet.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// What to do about the pod count of one ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub enum Manage {
    /// The count is right, the ReplicaSet is being deleted, or writes are still in flight.
    Nothing,
    /// Create this many pods from the template.
    Create(usize),
    /// Delete these pods (namespace/name), the most deletable first.
    Delete(Vec<Arc<Pod>>),
}

/// The plan for one ReplicaSet.
#[derive(Debug)]
pub struct Plan {
    /// Active matching orphans to adopt.
    pub adopt: Vec<Arc<Pod>>,
    /// Controlled pods that no longer match, to release.
    pub release: Vec<Arc<Pod>>,
    /// The active pods the ReplicaSet controls once adoptions and releases are done.
    pub owned: Vec<Arc<Pod>>,
    /// Pods to create or delete.
    pub manage: Manage,
}

/// Plans one ReplicaSet. `siblings` are the ReplicaSets of its namespace (its own included),
/// `pods` the pods of its namespace; `settled` is false while creates or deletes it sent are
/// not yet in the cache (then it does not act on the count).
pub fn plan_replicaset(
    rs: &ReplicaSet,
    siblings: &[Arc<ReplicaSet>],
    pods: &[Arc<Pod>],
    settled: bool,
    now: Timestamp,
) -> Result<Plan, SelectorError> {
    let spec = rs.spec.as_ref();
    let sel = pods::selector(spec.map(|s| &s.selector))?;
    let active = pods.iter().filter(|p| pods::is_active(p)).cloned();
    let claim = pods::claim(&rs.metadata, &sel, active);
    let manage = if settled && rs.metadata.deletion_timestamp.is_none() {
        let want =
            usize::try_from(spec.and_then(|s| s.replicas).unwrap_or(1).max(0)).unwrap_or_default();
        let have = claim.owned.len();
        if have < want {
            Manage::Create((want - have).min(BURST_REPLICAS))
        } else if have > want {
            let n = (have - want).min(BURST_REPLICAS);
            let related = related_pods(rs, siblings, pods);
            let mut order = pods::deletion_order(&claim.owned, &related, now);
            order.truncate(n);
            Manage::Delete(order)
        } else {
            Manage::Nothing
        }
    } else {
        Manage::Nothing
    };
    Ok(Plan {
        adopt: claim.adopt,
        release: claim.release,
        owned: claim.owned,
        manage,
    })
}

/// The pods of `rs` and of the ReplicaSets that share its controller (a Deployment's other
/// ReplicaSets), whose nodes make a pod "doubled up".
fn related_pods(rs: &ReplicaSet, siblings: &[Arc<ReplicaSet>], pods: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let own = rs.metadata.uid.as_deref().unwrap_or("");
    let mut uids: Vec<&str> = vec![own];
    if let Some(ctl) = pods::controller_of(&rs.metadata) {
        uids.extend(
            siblings
                .iter()
                .filter(|s| pods::is_controlled_by(&s.metadata, &ctl.uid))
                .filter_map(|s| s.metadata.uid.as_deref()),
        );
    }
    pods.iter()
        .filter(|p| {
            pods::controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid.as_str()))
        })
        .cloned()
        .collect()
}

/// The status of `rs` given the active pods it controls: counts, the generation seen, and the
/// `ReplicaFailure` condition, set (reason `FailedCreate` or `FailedDelete`, message the API's)
/// when managing the pods failed and cleared once it succeeds.
pub fn replicaset_status(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    manage_error: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = rs.spec.as_ref();
    let mut status = rs.status.clone().unwrap_or_default();
    let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let template_labels = spec
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(owned.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let fully_labeled = count(&|p| {
        let l = p.metadata.labels.as_ref();
        template_labels
            .iter()
            .all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
    });
    let failure = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some(message) if !failure => {
            let want = spec.and_then(|s| s.replicas).unwrap_or(1);
            let have = i32::try_from(owned.len()).unwrap_or(i32::MAX);
            let reason = match have.cmp(&want) {
                std::cmp::Ordering::Less => "FailedCreate",
                std::cmp::Ordering::Greater => "FailedDelete",
                std::cmp::Ordering::Equal => "",
            };
            status
                .conditions
                .get_or_insert_default()
                .push(ReplicaSetCondition {
                    type_: REPLICA_FAILURE.into(),
                    status: "True".into(),
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    last_transition_time: Some(Time(seconds(now))),
                });
        }
        None if failure => {
            if let Some(c) = status.conditions.as_mut() {
                c.retain(|c| c.type_ != REPLICA_FAILURE);
            }
        }
        _ => {}
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    // Zero counts are left out, as Kubernetes' `omitempty` does.
    let some = |n: i32| (n != 0).then_some(n);
    status.replicas = i32::try_from(owned.len()).unwrap_or(i32::MAX);
    status.fully_labeled_replicas = some(fully_labeled);
    status.ready_replicas = some(count(&|p| pods::is_ready(p)));
    status.available_replicas = some(count(&|p| pods::is_available(p, min_ready, now)));
    status.observed_generation = rs.metadata.generation;
    status
}

/// `t` truncated to the second, as the API stores times.
pub(crate) fn seconds(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// True when two statuses say the same (absent counts are zero).
fn same_status(a: &ReplicaSetStatus, b: &ReplicaSetStatus) -> bool {
    let n = |v: Option<i32>| v.unwrap_or(0);
    a.replicas == b.replicas
        && n(a.fully_labeled_replicas) == n(b.fully_labeled_replicas)
        && n(a.ready_replicas) == n(b.ready_replicas)
        && n(a.available_replicas) == n(b.available_replicas)
        && a.observed_generation == b.observed_generation
        && a.conditions.as_deref().unwrap_or_default()
            == b.conditions.as_deref().unwrap_or_default()
}

/// The shared state of the controller's workers.
struct State {
    ctx: Arc<Context>,
    expectations: Expectations<Key>,
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let replicasets = ctx.informers.get::<ReplicaSet>();
    let pod_informer = ctx.informers.get::<Pod>();
    let queue: Arc<Queue<Key>> = Queue::new();
    let state = Arc::new(State {
        ctx: Arc::clone(&ctx),
        expectations: Expectations::new(),
    });

    let feed = {
        let queue = Arc::clone(&queue);
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        async move {
            let follow_sets = replicasets.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
                Change::Deleted(rs) => state.expectations.forget(&Key::of(rs.as_ref())),
                Change::Resynced => replicasets.queue_all(&queue),
            });
            let follow_pods = pod_informer.follow(&shutdown, |c| pod_changed(&state, &queue, c));
            replicasets.ready().await;
            pod_informer.ready().await;
            replicasets.queue_all(&queue);
            tokio::join!(follow_sets, follow_pods);
        }
    };
    let worker = {
        let state = Arc::clone(&state);
        queue::run_workers("replicaset", queue, WORKERS, shutdown, move |key| {
            let state = Arc::clone(&state);
            async move { reconcile(&state, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// The ReplicaSet (by key) that controls `pod`, if it is in the cache.
fn controlling_rs(ctx: &Context, pod: &Pod) -> Option<Key> {
    let rs = ctx
        .informers
        .get::<ReplicaSet>()
        .controller_of(&pod.metadata)?;
    Some(Key::of(rs.as_ref()))
}

/// Queues every ReplicaSet whose selector matches the orphan `pod`.
fn queue_matching(ctx: &Context, queue: &Queue<Key>, pod: &Pod) {
    ctx.informers
        .get::<ReplicaSet>()
        .queue_selecting(queue, &pod.metadata, |rs| {
            rs.spec.as_ref().map(|s| &s.selector)
        });
}

fn pod_changed(state: &State, queue: &Queue<Key>, change: Change<Pod>) {
    let ctx = &state.ctx;
    let deleted = |pod: &Pod| {
        if let Some(key) = controlling_rs(ctx, pod) {
            state
                .expectations
                .deletion_observed(&key, &pods::object_key(&pod.metadata));
            queue.add(key);
        }
    };
    match change {
        Change::Applied { old: None, new } => {
            if pods::is_terminating(&new) {
                deleted(&new);
            } else if let Some(key) = controlling_rs(ctx, &new) {
                state.expectations.creation_observed(&key);
                queue.add(key);
            } else if pods::controller_of(&new.metadata).is_none() {
                queue_matching(ctx, queue, &new);
            }
        }
        Change::Applied {
            old: Some(old),
            new,
        } => {
            if old.metadata.resource_version == new.metadata.resource_version {
                return;
            }
            let labels_changed = old.metadata.labels != new.metadata.labels;
            if pods::is_terminating(&new) {
                deleted(&new);
                if labels_changed {
                    deleted(&old);
                }
                return;
            }
            let old_ref = pods::controller_of(&old.metadata);
            let new_ref = pods::controller_of(&new.metadata);
            let ref_changed = old_ref.map(|r| &r.uid) != new_ref.map(|r| &r.uid);
            if ref_changed && let Some(key) = controlling_rs(ctx, &old) {
                queue.add(key);
            }
            if let Some(key) = controlling_rs(ctx, &new) {
                queue.add(key);
            } else if new_ref.is_none() && (labels_changed || ref_changed) {
                queue_matching(ctx, queue, &new);
            }
        }
        Change::Deleted(pod) => deleted(&pod),
        Change::Resynced => {
            // Pods listed afresh are not announced one by one: what the expectations wait
            // for may never be seen, and the fresh cache is the truth.
            state.expectations.clear();
            ctx.informers.get::<ReplicaSet>().queue_all(queue);
        }
    }
}

/// Brings one ReplicaSet's pods and status in line.
async fn reconcile(state: &State, key: &Key) -> Result<Next, ReplicaSetError> {
    let ctx = &state.ctx;
    let Some(rs) = ctx
        .informers
        .get::<ReplicaSet>()
        .get(&key.namespace, &key.name)
    else {
        state.expectations.forget(key);
        return Ok(Next::Done);
    };
    let now = ctx.clock.now();
    let in_ns = |ns: Option<&str>| ns == Some(key.namespace.as_str());
    let siblings = ctx
        .informers
        .get::<ReplicaSet>()
        .filter(|r| in_ns(r.metadata.namespace.as_deref()));
    let all_pods = ctx
        .informers
        .get::<Pod>()
        .filter(|p| in_ns(p.metadata.namespace.as_deref()));
    let settled = state.expectations.satisfied(key);
    let plan = match plan_replicaset(&rs, &siblings, &all_pods, settled, now) {
        Ok(p) => p,
        Err(source) => {
            // Validation keeps bad selectors out; nothing to do until the object changes.
            tracing::warn!(replicaset = %key, error = %source, "invalid selector");
            return Ok(Next::Done);
        }
    };
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    claim(ctx, key, &rs, &pods_api, &plan).await?;

    let manage_error = match &plan.manage {
        Manage::Nothing => None,
        Manage::Create(n) => create_pods(state, key, &rs, &pods_api, *n).await,
        Manage::Delete(victims) => delete_pods(state, key, &rs, &pods_api, victims).await,
    };

    let status = replicaset_status(&rs, &plan.owned, manage_error.as_deref(), now);
    if !same_status(
        rs.status.as_ref().unwrap_or(&ReplicaSetStatus::default()),
        &status,
    ) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({ "status": status_patch(&status) });
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Next::Done),
            Err(source) => {
                return Err(ReplicaSetError::Status {
                    key: key.clone(),
                    source,
                });
            }
        }
    }
    if let Some(message) = manage_error {
        return Err(ReplicaSetError::Manage {
            key: key.clone(),
            message,
        });
    }
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let soonest = plan
        .owned
        .iter()
        .filter_map(|p| pods::available_in(p, min_ready, now))
        .min();
    Ok(match soonest {
        // The API's times are whole seconds; look just after the pod turns available.
        Some(d) => Next::After(d + Duration::from_millis(50)),
        None => Next::Done,
    })
}

/// The status as a merge patch: every field present, so that cleared ones are removed.
fn status_patch(status: &ReplicaSetStatus) -> serde_json::Value {
    json!({
        "replicas": status.replicas,
        "fullyLabeledReplicas": status.fully_labeled_replicas,
        "readyReplicas": status.ready_replicas,
        "availableReplicas": status.available_replicas,
        "observedGeneration": status.observed_generation,
        "conditions": status.conditions,
    })
}

/// Releases and adopts as planned; before the first adoption, checks with a fresh read that the
/// ReplicaSet is still the same object and not being deleted (Kubernetes'
/// `RecheckDeletionTimestamp`).
async fn claim(
    ctx: &Context,
    key: &Key,
    rs: &ReplicaSet,
    pods_api: &Api<Pod>,
    plan: &Plan,
) -> Result<(), ReplicaSetError> {
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let claim_err = |pod: &Pod, source| ReplicaSetError::Claim {
        key: key.clone(),
        pod: pods::object_key(&pod.metadata),
        source,
    };
    for pod in &plan.release {
        pods::release(pods_api, &uid, pod)
            .await
            .map_err(|e| claim_err(pod, e))?;
    }
    if plan.adopt.is_empty() {
        return Ok(());
    }
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let cannot = |reason: String| ReplicaSetError::CannotAdopt {
        key: key.clone(),
        reason,
    };
    let fresh = api
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
    let owner = pods::controller_ref(rs);
    for pod in &plan.adopt {
        pods::adopt(pods_api, &owner, pod)
            .await
            .map_err(|e| claim_err(pod, e))?;
    }
    Ok(())
}

/// True for the refusal of a namespace being deleted, where creating is pointless.
fn namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

/// Creates `n` pods in slow-start batches; the message of the first failure, if any.
async fn create_pods(
    state: &State,
    key: &Key,
    rs: &ReplicaSet,
    api: &Api<Pod>,
    n: usize,
) -> Option<String> {
    let template = rs.spec.as_ref().and_then(|s| s.template.as_ref())?;
    state.expectations.expect_creations(key.clone(), n);
    let mut pod = pods::pod_from_template(template, &key.namespace, pods::controller_ref(rs));
    pod.metadata.generate_name = Some(pods::generate_name_prefix(&key.name));
    let pod = &pod;
    let created = AtomicUsize::new(0);
    let created_ref = &created;
    let (_, err) = pods::slow_start_batch(n, pods::SLOW_START_INITIAL_BATCH, |_| async move {
        match api.create(&PostParams::default(), pod).await {
            Ok(p) => {
                created_ref.fetch_add(1, AtomicOrdering::Relaxed);
                let name = p.metadata.name.unwrap_or_default();
                event(
                    &state.ctx,
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                );
                Ok(())
            }
            Err(e) if namespace_terminating(&e) => Ok(()),
            Err(e) => {
                let message = format!("Error creating: {}", api_message(&e));
                event(&state.ctx, rs, "Warning", "FailedCreate", message);
                Err(e)
            }
        }
    })
    .await;
    // Creates that failed, were refused or never started will not show up in the cache.
    for _ in created.load(AtomicOrdering::Relaxed)..n {
        state.expectations.creation_observed(key);
    }
    err.map(|e| {
        tracing::debug!(replicaset = %key, error = %e, "creating pods failed");
        api_message(&e)
    })
}

/// Records an event about `rs` without waiting for it (events are best effort).
fn event(
    ctx: &Context,
    rs: &ReplicaSet,
    type_: &'static str,
    reason: &'static str,
    message: String,
) {
    let client = ctx.client.clone();
    let now = ctx.clock.now();
    let regarding = workload::object_ref(rs);
    tokio::spawn(async move {
        workload::record_event(&client, COMPONENT, now, regarding, type_, reason, message).await;
    });
}

/// Deletes `victims` concurrently; the message of the first failure, if any.
async fn delete_pods(
    state: &State,
    key: &Key,
    rs: &ReplicaSet,
    api: &Api<Pod>,
    victims: &[Arc<Pod>],
) -> Option<String> {
    state.expectations.expect_deletions(
        key.clone(),
        victims.iter().map(|p| pods::object_key(&p.metadata)),
    );
    let results = futures::future::join_all(victims.iter().map(|p| async move {
        let name = p.metadata.name.clone().unwrap_or_default();
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: p.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        (p, api.delete(&name, &dp).await)
    }))
    .await;
    let mut first = None;
    for (p, r) in results {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        match r {
            Ok(_) => event(
                &state.ctx,
                rs,
                "Normal",
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            ),
            // Gone already, or replaced by another of the same name: nothing left to delete.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {
                state
                    .expectations
                    .deletion_observed(key, &pods::object_key(&p.metadata));
            }
            Err(e) => {
                state
                    .expectations
                    .deletion_observed(key, &pods::object_key(&p.metadata));
                let message = api_message(&e);
                event(
                    &state.ctx,
                    rs,
                    "Warning",
                    "FailedDelete",
                    format!("Error deleting: {message}"),
                );
                first.get_or_insert(message);
            }
        }
    }
    first
}

/// The API's message of an error (its Status message), else the error itself.
pub(crate) fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
