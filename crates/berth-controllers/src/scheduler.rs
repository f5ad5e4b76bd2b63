//! The scheduler: places every pod that has no node and asks for `default-scheduler` (or no
//! scheduler), with the placement core of `berth-scheduler`, and binds it through
//! `pods/{name}/binding`. A pod that fits nowhere gets `PodScheduled=False`, reason
//! `Unschedulable`, with Kubernetes' message, and a `FailedScheduling` event; it is tried again
//! when nodes or placed pods change (within a second) and every 30 seconds regardless.
//!
//! Owns the binding of unscheduled pods and their `PodScheduled` condition while they wait.
//! Must not touch pods that have a node, are being deleted or belong to another scheduler.
//!
//! The loop is thin: it keeps a [`Snapshot`] up to date from the informers (pods it is binding
//! count as placed until the informer shows them bound), takes pods from a queue and acts on
//! [`decide`]'s answer. Binds and status writes run concurrently, a bounded number at a time,
//! so that placing a pod never waits for the API.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use berth_scheduler::{Config as CoreConfig, PodInfo, PodKey, Scheduler, Snapshot};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Binding, Namespace, Node, ObjectReference, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::Context;
use crate::informer::{self, Change};
use crate::queue::Key;
use crate::workload::{self, is_not_found, object_ref};

/// The scheduler name pods ask for (an empty name means this one too).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// The reason of the `PodScheduled=False` condition of a pod that fits nowhere.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
/// The reason of the condition of a pod held back by scheduling gates.
pub const REASON_GATED: &str = "SchedulingGated";
/// The message of the condition of a pod held back by scheduling gates.
pub const MESSAGE_GATED: &str = "Scheduling is blocked due to non-empty scheduling gates";
/// How often every unschedulable pod is tried again even without a change (Kubernetes waits
/// up to 5 minutes; Berth prefers converging sooner).
pub const RETRY_PERIOD: Duration = Duration::from_secs(30);
/// How soon after a change of nodes or placed pods the unschedulable pods are tried again (the
/// changes of that second are handled together).
pub const CHANGE_DELAY: Duration = Duration::from_secs(1);
/// How many binds and status writes may be under way at once (their events are recorded after
/// the permit is given back).
const CONCURRENT_WRITES: usize = 32;
/// How many pods are placed before the informers are read again.
const BATCH: usize = 64;

/// Errors of one write.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The binding was refused or failed.
    #[error("binding {pod} to {node}: {source}")]
    Bind {
        /// The pod.
        pod: Key,
        /// The node.
        node: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Writing the pod's PodScheduled condition failed.
    #[error("setting the PodScheduled condition of {pod}: {source}")]
    Condition {
        /// The pod.
        pod: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// True if this scheduler must place `pod`: it has no node, asks for `default-scheduler` (or
/// nobody in particular), is not being deleted and has not finished.
pub fn is_ours(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && matches!(
            spec.scheduler_name.as_deref(),
            None | Some("") | Some(SCHEDULER_NAME)
        )
        && pod.metadata.deletion_timestamp.is_none()
        && !workload::is_finished(pod)
}

/// True if scheduling gates hold `pod` back.
pub fn is_gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// True if a change from `old` to `new` can change where the pod fits: its labels or spec
/// changed (not only its status, as when this scheduler writes its condition).
pub fn placement_inputs_changed(old: &Pod, new: &Pod) -> bool {
    old.metadata.labels != new.metadata.labels || old.spec != new.spec
}

/// The `PodScheduled=False` condition to write for `reason` and `message`, as a strategic merge
/// patch of the status; `None` when the pod already carries exactly that (so that trying again
/// writes nothing).
pub fn condition_patch(pod: &Pod, reason: &str, message: &str, now: Timestamp) -> Option<Value> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    if let Some(c) = current
        && c.status == "False"
        && c.reason.as_deref() == Some(reason)
        && c.message.as_deref() == Some(message)
    {
        return None;
    }
    // The transition time moves only when the status does.
    let since = current
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    Some(json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": reason,
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": since.to_string(),
    }]}}))
}

/// The Binding that assigns `pod` to `node` (with the pod's UID, so that a pod deleted and
/// created again under the same name is not bound by mistake).
pub fn binding(pod: &Pod, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_owned()),
            ..ObjectReference::default()
        },
    }
}

/// The message of the `Scheduled` event.
pub fn scheduled_message(pod: &Pod, node: &str) -> String {
    format!(
        "Successfully assigned {}/{} to {node}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// What to do with one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing: it is not this scheduler's to place (any more).
    Skip,
    /// Bind it to this node (already assumed in the snapshot).
    Bind(String),
    /// It waits: write this condition patch, if any, and record this message as an event
    /// when the patch is written.
    Wait {
        /// The condition's reason.
        reason: &'static str,
        /// The condition's message.
        message: String,
        /// The status patch, `None` when the pod already says so.
        patch: Option<Value>,
    },
}

/// Decides for `pod` and, when it is to be bound, places it in `snap`.
pub fn decide(snap: &mut Snapshot, sched: &mut Scheduler, pod: &Pod, now: Timestamp) -> Decision {
    if !is_ours(pod) {
        return Decision::Skip;
    }
    if is_gated(pod) {
        return Decision::Wait {
            reason: REASON_GATED,
            message: MESSAGE_GATED.into(),
            patch: condition_patch(pod, REASON_GATED, MESSAGE_GATED, now),
        };
    }
    let info = PodInfo::new(pod);
    match sched.schedule(snap, &info) {
        Ok(p) => {
            snap.assume(info, &p.node);
            Decision::Bind(p.node)
        }
        Err(e) => {
            let message = e.to_string();
            Decision::Wait {
                reason: REASON_UNSCHEDULABLE,
                patch: condition_patch(pod, REASON_UNSCHEDULABLE, &message, now),
                message,
            }
        }
    }
}

/// The outcome of a bind, reported back to the loop.
struct Bound {
    key: Key,
    uid: PodKey,
    result: Result<(), SchedulerError>,
}

/// The loop's state.
struct Loop {
    ctx: Arc<Context>,
    snap: Snapshot,
    sched: Scheduler,
    /// Pods to try, in order, without duplicates.
    active: VecDeque<Key>,
    queued: HashSet<Key>,
    /// Pods that fit nowhere the last time.
    unschedulable: HashSet<Key>,
    /// Pods being bound (or bound, not yet seen so by the informer): the snapshot key.
    assumed: HashMap<Key, PodKey>,
    /// Nodes or placed pods changed since the unschedulable pods were last tried.
    changed: bool,
    writes: Arc<Semaphore>,
    bound_tx: mpsc::UnboundedSender<Bound>,
}

/// Records a Service's selector (its pods are spread by default).
fn apply_service(snap: &mut Snapshot, s: &Service) {
    let ns = s.metadata.namespace.as_deref().unwrap_or("default");
    let name = s.metadata.name.as_deref().unwrap_or("");
    let selector = s
        .spec
        .as_ref()
        .and_then(|sp| sp.selector.clone())
        .unwrap_or_default();
    snap.set_service(ns, name, selector);
}

fn key_of(pod: &Pod) -> Key {
    Key::of(pod)
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

impl Loop {
    fn enqueue(&mut self, key: Key) {
        if self.queued.insert(key.clone()) {
            self.active.push_back(key);
        }
    }

    fn retry_unschedulable(&mut self) {
        let keys: Vec<Key> = self.unschedulable.drain().collect();
        for k in keys {
            self.enqueue(k);
        }
        self.changed = false;
    }

    /// Rebuilds the snapshot and the queue from the caches.
    fn resync(&mut self) {
        let inf = &self.ctx.informers;
        let mut snap = Snapshot::new();
        for n in inf.get::<Node>().list() {
            snap.upsert_api_node(&n);
        }
        for ns in inf.get::<Namespace>().list() {
            snap.set_namespace(
                ns.metadata.name.as_deref().unwrap_or(""),
                ns.metadata.labels.clone().unwrap_or_default(),
            );
        }
        for s in inf.get::<Service>().list() {
            apply_service(&mut snap, &s);
        }
        let pods = inf.get::<Pod>().list();
        let mut unbound = Vec::new();
        for p in &pods {
            if is_bound(p) {
                snap.add_pod(p);
                self.assumed.remove(&key_of(p));
            } else if is_ours(p) {
                unbound.push(p);
            }
        }
        // Pods being bound stay placed where they were assumed.
        let mut keep = HashMap::new();
        for p in unbound {
            let k = key_of(p);
            if let Some(uid) = self.assumed.get(&k)
                && let Some(node) = self.snap.node_of(uid)
            {
                snap.assume(PodInfo::new(p), node);
                keep.insert(k, uid.clone());
            } else {
                self.enqueue(k);
            }
        }
        self.assumed = keep;
        self.snap = snap;
        self.unschedulable.retain(|k| !self.queued.contains(k));
        self.changed = true;
    }

    fn on_pod(&mut self, c: Change<Pod>) {
        match c {
            Change::Applied { old, new } => {
                let key = key_of(&new);
                if is_bound(&new) {
                    self.assumed.remove(&key);
                    self.unschedulable.remove(&key);
                    // A pod newly placed, finished or relabelled may let others fit.
                    let changed = match old.as_deref() {
                        Some(o) if is_bound(o) => {
                            workload::is_finished(&new) != workload::is_finished(o)
                                || placement_inputs_changed(o, &new)
                        }
                        _ => true,
                    };
                    self.snap.add_pod(&new);
                    self.changed |= changed;
                    return;
                }
                if !is_ours(&new) {
                    // Being deleted, finished or another scheduler's.
                    self.unschedulable.remove(&key);
                    if self.assumed.remove(&key).is_some() {
                        self.snap.forget(&PodKey::of(&new));
                    }
                    return;
                }
                if self.assumed.contains_key(&key) {
                    return;
                }
                if self.unschedulable.contains(&key) {
                    let changed = old
                        .as_deref()
                        .is_none_or(|o| placement_inputs_changed(o, &new));
                    if !changed {
                        return;
                    }
                    self.unschedulable.remove(&key);
                }
                self.enqueue(key);
            }
            Change::Deleted(pod) => {
                let key = key_of(&pod);
                self.unschedulable.remove(&key);
                self.assumed.remove(&key);
                if self.snap.forget(&PodKey::of(&pod)) {
                    self.changed = true;
                }
            }
            Change::Resynced => self.resync(),
        }
    }

    fn on_node(&mut self, c: Change<Node>) {
        match c {
            Change::Applied { new, .. } => self.snap.upsert_api_node(&new),
            Change::Deleted(n) => self
                .snap
                .remove_node(n.metadata.name.as_deref().unwrap_or("")),
            Change::Resynced => return self.resync(),
        }
        self.changed = true;
    }

    fn on_service(&mut self, c: Change<Service>) {
        match c {
            Change::Applied { new, .. } => apply_service(&mut self.snap, &new),
            Change::Deleted(s) => self.snap.remove_service(
                s.metadata.namespace.as_deref().unwrap_or("default"),
                s.metadata.name.as_deref().unwrap_or(""),
            ),
            Change::Resynced => self.resync(),
        }
    }

    fn on_namespace(&mut self, c: Change<Namespace>) {
        match c {
            Change::Applied { new, .. } => self.snap.set_namespace(
                new.metadata.name.as_deref().unwrap_or(""),
                new.metadata.labels.clone().unwrap_or_default(),
            ),
            Change::Deleted(ns) => self
                .snap
                .remove_namespace(ns.metadata.name.as_deref().unwrap_or("")),
            Change::Resynced => self.resync(),
        }
    }

    fn on_bound(&mut self, b: Bound) {
        let Err(e) = b.result else {
            return;
        };
        tracing::debug!(error = %e, "bind failed");
        // Whatever happened, the pod is not where it was assumed; the informer says where it is.
        // (A pod of the same name created since is another pod, with its own assumption.)
        if self.assumed.get(&b.key) == Some(&b.uid) {
            self.assumed.remove(&b.key);
            self.snap.forget(&b.uid);
        }
        let pods = self.ctx.informers.get::<Pod>();
        if let Some(p) = pods.get(&b.key.namespace, &b.key.name) {
            if is_bound(&p) {
                self.snap.add_pod(&p);
            } else if is_ours(&p) {
                // Tried again with the other unschedulable pods, after the next change or tick.
                self.unschedulable.insert(b.key);
                self.changed = true;
            }
        }
    }

    /// Places the next pod of the queue.
    fn schedule_next(&mut self) {
        let Some(key) = self.active.pop_front() else {
            return;
        };
        self.queued.remove(&key);
        let Some(pod) = self
            .ctx
            .informers
            .get::<Pod>()
            .get(&key.namespace, &key.name)
        else {
            return;
        };
        if self.assumed.contains_key(&key) {
            return;
        }
        let now = self.ctx.clock.now();
        match decide(&mut self.snap, &mut self.sched, &pod, now) {
            Decision::Skip => {}
            Decision::Bind(node) => {
                self.assumed.insert(key.clone(), PodKey::of(&pod));
                self.spawn_bind(key, pod, node);
            }
            Decision::Wait {
                reason,
                message,
                patch,
            } => {
                self.unschedulable.insert(key.clone());
                if let Some(patch) = patch {
                    self.spawn_condition(key, pod, reason, message, patch);
                }
            }
        }
    }

    fn spawn_bind(&self, key: Key, pod: Arc<Pod>, node: String) {
        let client = self.ctx.client.clone();
        let writes = Arc::clone(&self.writes);
        let tx = self.bound_tx.clone();
        let now = self.ctx.clock.now();
        tokio::spawn(async move {
            let permit = writes.acquire_owned().await;
            let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
            let body = binding(&pod, &node);
            let result = api
                .create_subresource::<_, Value>("binding", &key.name, &PostParams::default(), &body)
                .await
                .map(|_| ())
                .map_err(|source| SchedulerError::Bind {
                    pod: key.clone(),
                    node: node.clone(),
                    source,
                });
            // The event does not hold up the next bind.
            drop(permit);
            if result.is_ok() {
                workload::record_event(
                    &client,
                    SCHEDULER_NAME,
                    now,
                    object_ref(pod.as_ref()),
                    "Normal",
                    "Scheduled",
                    scheduled_message(&pod, &node),
                )
                .await;
            }
            let _ = tx.send(Bound {
                key,
                uid: PodKey::of(&pod),
                result,
            });
        });
    }

    fn spawn_condition(
        &self,
        key: Key,
        pod: Arc<Pod>,
        reason: &'static str,
        message: String,
        patch: Value,
    ) {
        let client = self.ctx.client.clone();
        let writes = Arc::clone(&self.writes);
        let now = self.ctx.clock.now();
        tokio::spawn(async move {
            let permit = writes.acquire_owned().await;
            let api: Api<Pod> = Api::namespaced(client.clone(), &key.namespace);
            let written = api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await;
            drop(permit);
            match written {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => return,
                Err(source) => {
                    let e = SchedulerError::Condition { pod: key, source };
                    tracing::debug!(error = %e, "could not write the condition");
                    return;
                }
            }
            if reason == REASON_UNSCHEDULABLE {
                workload::record_event(
                    &client,
                    SCHEDULER_NAME,
                    now,
                    object_ref(pod.as_ref()),
                    "Warning",
                    "FailedScheduling",
                    message,
                )
                .await;
            }
        });
    }
}

/// Receives a change if one is waiting, turning a lag into [`Change::Resynced`].
fn try_change<K: Clone>(rx: &mut broadcast::Receiver<Change<K>>) -> Option<Change<K>> {
    match rx.try_recv() {
        Ok(c) => Some(c),
        Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Change::Resynced),
        Err(_) => None,
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let services = ctx.informers.get::<Service>();
    let namespaces = ctx.informers.get::<Namespace>();
    let mut pod_rx = pods.subscribe();
    let mut node_rx = nodes.subscribe();
    let mut svc_rx = services.subscribe();
    let mut ns_rx = namespaces.subscribe();
    tokio::select! {
        _ = async { tokio::join!(pods.ready(), nodes.ready(), services.ready(), namespaces.ready()) } => {}
        _ = shutdown.changed() => return,
    }
    let (bound_tx, mut bound_rx) = mpsc::unbounded_channel();
    let mut l = Loop {
        ctx: Arc::clone(&ctx),
        snap: Snapshot::new(),
        sched: Scheduler::new(CoreConfig::default()),
        active: VecDeque::new(),
        queued: HashSet::new(),
        unschedulable: HashSet::new(),
        assumed: HashMap::new(),
        changed: false,
        writes: Arc::new(Semaphore::new(CONCURRENT_WRITES)),
        bound_tx,
    };
    l.resync();
    let mut last_retry = Instant::now();
    let mut last_change_retry = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Take in everything that is waiting, then place a batch of pods.
        loop {
            let mut any = false;
            while let Some(c) = try_change(&mut pod_rx) {
                l.on_pod(c);
                any = true;
            }
            while let Some(c) = try_change(&mut node_rx) {
                l.on_node(c);
                any = true;
            }
            while let Some(c) = try_change(&mut svc_rx) {
                l.on_service(c);
                any = true;
            }
            while let Some(c) = try_change(&mut ns_rx) {
                l.on_namespace(c);
                any = true;
            }
            while let Ok(b) = bound_rx.try_recv() {
                l.on_bound(b);
                any = true;
            }
            if !any {
                break;
            }
        }
        let now = Instant::now();
        if now.duration_since(last_retry) >= RETRY_PERIOD {
            l.retry_unschedulable();
            last_retry = now;
        } else if l.changed && now.duration_since(last_change_retry) >= CHANGE_DELAY {
            l.retry_unschedulable();
            last_change_retry = now;
        }
        if !l.active.is_empty() {
            for _ in 0..BATCH {
                l.schedule_next();
            }
            tokio::task::yield_now().await;
            continue;
        }
        let wake = if l.changed {
            (last_change_retry + CHANGE_DELAY).min(last_retry + RETRY_PERIOD)
        } else {
            last_retry + RETRY_PERIOD
        };
        tokio::select! {
            c = informer::recv(&mut pod_rx) => match c {
                Some(c) => l.on_pod(c),
                None => return,
            },
            c = informer::recv(&mut node_rx) => match c {
                Some(c) => l.on_node(c),
                None => return,
            },
            c = informer::recv(&mut svc_rx) => match c {
                Some(c) => l.on_service(c),
                None => return,
            },
            c = informer::recv(&mut ns_rx) => match c {
                Some(c) => l.on_namespace(c),
                None => return,
            },
            Some(b) = bound_rx.recv() => l.on_bound(b),
            _ = tokio::time::sleep_until(wake) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_scheduler::synthetic::node;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn pending(name: &str, cpu: &str) -> Pod {
        pod(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("u-{name}")},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}
        }))
    }

    fn now() -> Timestamp {
        "2026-11-25T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn only_unbound_live_pods_of_this_scheduler_are_ours() {
        assert!(is_ours(&pending("p", "1")));
        let mut other = pending("p", "1");
        other.spec.as_mut().unwrap().scheduler_name = Some("my-scheduler".into());
        assert!(!is_ours(&other));
        let mut named = pending("p", "1");
        named.spec.as_mut().unwrap().scheduler_name = Some(SCHEDULER_NAME.into());
        assert!(is_ours(&named));
        let mut bound = pending("p", "1");
        bound.spec.as_mut().unwrap().node_name = Some("n".into());
        assert!(!is_ours(&bound));
        let mut deleting = pending("p", "1");
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        assert!(!is_ours(&deleting));
        let mut done = pending("p", "1");
        done.status = Some(serde_json::from_value(json!({"phase": "Failed"})).unwrap());
        assert!(!is_ours(&done));
    }

    #[test]
    fn the_condition_is_written_only_when_it_changes() {
        let p = pending("p", "1");
        let patch = condition_patch(
            &p,
            REASON_UNSCHEDULABLE,
            "0/1 nodes are available: 1 Insufficient cpu.",
            now(),
        )
        .unwrap();
        assert_eq!(patch["status"]["conditions"][0]["status"], "False");
        assert_eq!(patch["status"]["conditions"][0]["reason"], "Unschedulable");
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            "2026-11-25T10:00:00Z"
        );
        let mut with = p.clone();
        with.status = Some(
            serde_json::from_value(json!({"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient cpu.",
            "lastTransitionTime": "2026-11-25T09:00:00Z"}]}))
            .unwrap(),
        );
        assert_eq!(
            condition_patch(
                &with,
                REASON_UNSCHEDULABLE,
                "0/1 nodes are available: 1 Insufficient cpu.",
                now()
            ),
            None
        );
        let changed = condition_patch(
            &with,
            REASON_UNSCHEDULABLE,
            "0/2 nodes are available: 2 Insufficient cpu.",
            now(),
        )
        .unwrap();
        assert_eq!(
            changed["status"]["conditions"][0]["lastTransitionTime"], "2026-11-25T09:00:00Z",
            "the status stays False, so the transition time stays"
        );
    }

    #[test]
    fn a_pod_that_fits_is_assumed_and_bound() {
        let mut snap = Snapshot::new();
        snap.upsert_node(node("n1", "z", 1000, 1 << 30));
        let mut sched = Scheduler::new(CoreConfig::default());
        let p = pending("p", "600m");
        assert_eq!(
            decide(&mut snap, &mut sched, &p, now()),
            Decision::Bind("n1".into())
        );
        assert_eq!(snap.pods_on("n1"), 1, "assumed before the API knows");
        match decide(&mut snap, &mut sched, &pending("q", "600m"), now()) {
            Decision::Wait {
                reason,
                message,
                patch,
            } => {
                assert_eq!(reason, "Unschedulable");
                assert_eq!(message, "0/1 nodes are available: 1 Insufficient cpu.");
                assert!(patch.is_some());
            }
            d => panic!("{d:?}"),
        }
        let b = binding(&p, "n1");
        assert_eq!(b.target.kind.as_deref(), Some("Node"));
        assert_eq!(b.target.name.as_deref(), Some("n1"));
        assert_eq!(b.metadata.uid.as_deref(), Some("u-p"));
        assert_eq!(
            scheduled_message(&p, "n1"),
            "Successfully assigned ns/p to n1"
        );
        let mut bound = p.clone();
        bound.spec.as_mut().unwrap().node_name = Some("n1".into());
        assert_eq!(decide(&mut snap, &mut sched, &bound, now()), Decision::Skip);
    }

    #[test]
    fn gated_pods_wait_without_scheduling() {
        let mut snap = Snapshot::new();
        snap.upsert_node(node("n1", "z", 1000, 1 << 30));
        let mut sched = Scheduler::new(CoreConfig::default());
        let mut p = pending("p", "100m");
        p.spec.as_mut().unwrap().scheduling_gates = Some(vec![
            serde_json::from_value(json!({"name": "example.com/wait"})).unwrap(),
        ]);
        match decide(&mut snap, &mut sched, &p, now()) {
            Decision::Wait {
                reason, message, ..
            } => {
                assert_eq!(reason, REASON_GATED);
                assert_eq!(message, MESSAGE_GATED);
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(snap.pods_on("n1"), 0);
    }

    #[test]
    fn status_only_changes_do_not_retry_a_pod() {
        let p = pending("p", "1");
        let mut q = p.clone();
        q.status = Some(
            serde_json::from_value(
                json!({"conditions": [{"type": "PodScheduled", "status": "False"}]}),
            )
            .unwrap(),
        );
        assert!(!placement_inputs_changed(&p, &q));
        let mut r = p.clone();
        r.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
        assert!(placement_inputs_changed(&p, &r));
        let mut t = p.clone();
        t.spec.as_mut().unwrap().tolerations = Some(vec![
            serde_json::from_value(json!({"operator": "Exists"})).unwrap(),
        ]);
        assert!(placement_inputs_changed(&p, &t));
    }
}
