//! Node lifecycle: decides from each node's Lease (in `kube-node-lease`) and status heartbeat
//! whether its agent is alive, and acts on it as Kubernetes' node lifecycle controller does.
//!
//! - A node not heard from within the grace period gets its Ready, MemoryPressure, DiskPressure
//!   and PIDPressure conditions set to Unknown (`NodeStatusUnknown`), the
//!   `node.kubernetes.io/unreachable` NoSchedule and NoExecute taints, and its pods marked not
//!   Ready. A node whose agent reports Ready=False gets the `node.kubernetes.io/not-ready`
//!   taints instead. Both go away when the agent reports Ready again.
//! - NoSchedule taints follow the conditions (memory, disk and PID pressure, network
//!   unavailable) and `spec.unschedulable` (cordon).
//! - Taint-based eviction: a pod on a node with a NoExecute taint it does not tolerate is
//!   deleted at once; one tolerating it for `tolerationSeconds` is deleted after that long,
//!   counted from when the taint was added.
//!
//! One deviation from Kubernetes, for fast recovery: once a node that was unreachable renews
//! its Lease again, its NoExecute taint is lifted at once (evictions stop), while the
//! NoSchedule taint and the Unknown conditions stay until the agent posts its status.
//!
//! Owns the taints and conditions listed above and nothing else on the Node; must not change a
//! pod other than marking it not Ready or deleting it. The decisions are pure functions of the
//! objects and the time ([`node_health`], [`unknown_conditions`], [`desired_taints`],
//! [`taint_eviction`], [`not_ready_status`]); the reconciler only reads and writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::queue::{self, Next, Queue};

/// The default node monitor grace period. The agent renews its Lease every 2 s; an agent
/// paused (SIGSTOP) for 2.5 s right before a renewal leaves a gap of at most 4.5 s, which stays
/// under 5 s, while a dead node is noticed at most grace + period = 6 s after its last renewal.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// The default node monitor period: how often every node is checked.
pub const DEFAULT_MONITOR_PERIOD: Duration = Duration::from_secs(1);

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The taint of a node whose agent reports Ready=False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node not heard from.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a cordoned node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The taint of a node under memory pressure.
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// The taint of a node under disk pressure.
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// The taint of a node short of process ids.
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// The taint of a node whose network is not set up.
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
/// The NoSchedule effect.
pub const NO_SCHEDULE: &str = "NoSchedule";
/// The NoExecute effect.
pub const NO_EXECUTE: &str = "NoExecute";

/// The reason of conditions set Unknown because the agent went silent.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// The message of conditions set Unknown because the agent went silent.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// The reason of conditions the agent never posted.
pub const REASON_NEVER: &str = "NodeStatusNeverUpdated";
/// The message of conditions the agent never posted.
pub const MESSAGE_NEVER: &str = "Kubelet never posted node status.";

/// The conditions set Unknown when a node is not heard from.
const WATCHED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Every taint key this controller manages.
const MANAGED_TAINTS: &[&str] = &[
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    TAINT_MEMORY_PRESSURE,
    TAINT_DISK_PRESSURE,
    TAINT_PID_PRESSURE,
    TAINT_NETWORK_UNAVAILABLE,
];

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum NodeLifecycleError {
    /// Writing the Node's status failed.
    #[error("updating the status of node {node}: {source}")]
    Status {
        /// The node.
        node: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Writing the Node's taints failed.
    #[error("updating the taints of node {node}: {source}")]
    Taints {
        /// The node.
        node: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Marking a pod not Ready or deleting it failed.
    #[error("{action} pod {namespace}/{name}: {source}")]
    Pod {
        /// What was being done.
        action: &'static str,
        /// The pod's namespace.
        namespace: String,
        /// The pod's name.
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// What the controller has heard from a node, on its own clock (the agents' clocks may
/// differ from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// When this controller first saw the node: the grace period counts from there until a
    /// renewal is seen.
    pub first_seen: Timestamp,
    /// When it last saw the Lease renewed or a new status heartbeat, if it has.
    pub renewed: Option<Timestamp>,
}

impl Heard {
    /// The last sign of life.
    pub fn last(&self) -> Timestamp {
        self.renewed.unwrap_or(self.first_seen)
    }
}

/// A node's health as the controller judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Heard from, and the agent reports Ready.
    Ready,
    /// Heard from, and the agent reports Ready=False.
    NotReady,
    /// Heard from, but no Ready status yet: a node registering, or one that was unreachable
    /// and renews its Lease again before posting its status. Not schedulable, not evicted.
    Pending,
    /// Not heard from within the grace period (or still Unknown and not heard from since this
    /// controller started).
    Unreachable,
}

/// The condition of `type_` in the node's status.
pub fn node_condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Judges a node from its Ready condition and what was heard from it by `now`.
pub fn node_health(node: &Node, heard: &Heard, now: Timestamp, grace: Duration) -> Health {
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    if now.duration_since(heard.last()) > grace {
        return Health::Unreachable;
    }
    let Some(ready) = node_condition(node, "Ready") else {
        return Health::Pending;
    };
    match ready.status.as_str() {
        "True" => Health::Ready,
        "False" => Health::NotReady,
        _ => {
            // Unknown: pending only if a renewal was seen after it turned Unknown.
            let since = ready.last_transition_time.as_ref().map(|t| t.0);
            match (heard.renewed, since) {
                (Some(r), Some(s)) if r > s => Health::Pending,
                (Some(_), None) => Health::Pending,
                _ => Health::Unreachable,
            }
        }
    }
}

/// The node's conditions with Ready, MemoryPressure, DiskPressure and PIDPressure set to
/// Unknown as Kubernetes does for a silent agent, or `None` when they are all Unknown already.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in WATCHED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(REASON_UNKNOWN.into());
                c.message = Some(MESSAGE_UNKNOWN.into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: (*type_).into(),
                    status: "Unknown".into(),
                    reason: Some(REASON_NEVER.into()),
                    message: Some(MESSAGE_NEVER.into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// The managed taints (key, effect) a node should carry, from its conditions, its
/// `spec.unschedulable` and its health.
pub fn managed_taints(node: &Node, health: Health) -> Vec<(&'static str, &'static str)> {
    let mut want = Vec::new();
    let status = |t: &str| node_condition(node, t).map(|c| c.status.as_str());
    match status("Ready") {
        Some("True") => {}
        Some("False") | None => want.push((TAINT_NOT_READY, NO_SCHEDULE)),
        Some(_) => want.push((TAINT_UNREACHABLE, NO_SCHEDULE)),
    }
    for (cond, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if status(cond) == Some("True") {
            want.push((key, NO_SCHEDULE));
        }
    }
    if node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
    {
        want.push((TAINT_UNSCHEDULABLE, NO_SCHEDULE));
    }
    match health {
        Health::NotReady => want.push((TAINT_NOT_READY, NO_EXECUTE)),
        Health::Unreachable => want.push((TAINT_UNREACHABLE, NO_EXECUTE)),
        Health::Ready | Health::Pending => {}
    }
    want
}

/// The node's new taint list when the managed taints differ from [`managed_taints`]: other
/// taints and the managed ones that stay are kept as they are (with their `timeAdded`); new
/// NoExecute taints get `timeAdded` = `now`. `None` when nothing changes.
pub fn desired_taints(node: &Node, health: Health, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let want = managed_taints(node, health);
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
            !MANAGED_TAINTS.contains(&t.key.as_str())
                || want.iter().any(|(k, e)| t.key == *k && t.effect == *e)
        })
        .cloned()
        .collect();
    for (key, effect) in &want {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: (*key).into(),
                effect: (*effect).into(),
                value: None,
                time_added: (*effect == NO_EXECUTE).then_some(Time(now)),
            });
        }
    }
    (next != current).then_some(next)
}

/// True if `toleration` tolerates `taint` (Kubernetes' `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

/// When a pod must leave a node because of the node's NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// It may stay (no NoExecute taint, or tolerated without a time limit).
    Never,
    /// It must go now.
    Now,
    /// It must go at this time.
    At(Timestamp),
}

/// Decides when `pod` must be deleted because of the NoExecute taints among `taints`: at once
/// if one is not tolerated, else at the earliest `timeAdded + tolerationSeconds` of the
/// tolerations used (counted no earlier than the pod's creation), or never if none has a limit.
pub fn taint_eviction(pod: &Pod, taints: &[Taint], now: Timestamp) -> Eviction {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut due: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == NO_EXECUTE) {
        let used: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Eviction::Now;
        }
        let since = taint
            .time_added
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(now)
            .max(created);
        for t in used {
            if let Some(secs) = t.toleration_seconds {
                let at = since
                    .checked_add(SignedDuration::from_secs(secs.max(0)))
                    .unwrap_or(Timestamp::MAX);
                due = Some(due.map_or(at, |d| d.min(at)));
            }
        }
    }
    match due {
        None => Eviction::Never,
        Some(at) if at <= now => Eviction::Now,
        Some(at) => Eviction::At(at),
    }
}

/// The pod's conditions with Ready set to False (as Kubernetes marks the pods of an unreachable
/// node), or `None` when it has no Ready condition that is not False already.
pub fn not_ready_status(pod: &Pod, now: Timestamp) -> Option<Vec<PodCondition>> {
    let mut conditions = pod.status.as_ref()?.conditions.clone()?;
    let ready = conditions.iter_mut().find(|c| c.type_ == "Ready")?;
    if ready.status == "False" {
        return None;
    }
    ready.status = "False".into();
    ready.last_transition_time = Some(Time(now));
    Some(conditions)
}

/// What the controller has observed of each node's signs of life.
#[derive(Default)]
struct Observations {
    nodes: Mutex<HashMap<String, Observed>>,
}

#[derive(Debug, Clone)]
struct Observed {
    renew: Option<String>,
    heartbeat: Option<String>,
    heard: Heard,
}

impl Observations {
    /// Records the node's current Lease renewal and Ready heartbeat at `now` and returns what
    /// has been heard from it.
    fn observe(&self, node: &Node, lease: Option<&Lease>, now: Timestamp) -> Heard {
        let name = node.metadata.name.clone().unwrap_or_default();
        let renew = lease
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string());
        let heartbeat = node_condition(node, "Ready")
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let o = nodes.entry(name).or_insert_with(|| Observed {
            renew: renew.clone(),
            heartbeat: heartbeat.clone(),
            heard: Heard {
                first_seen: now,
                renewed: None,
            },
        });
        let fresh_renew = renew.is_some() && renew != o.renew;
        let fresh_heartbeat = heartbeat.is_some() && heartbeat != o.heartbeat;
        if fresh_renew || fresh_heartbeat {
            o.heard.renewed = Some(now);
        }
        o.renew = renew;
        o.heartbeat = heartbeat;
        o.heard
    }

    fn forget(&self, node: &str) {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let nodes = ctx.informers.get::<Node>();
    let leases = ctx.informers.get::<Lease>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Arc<Queue<String>> = Queue::new();
    let seen = Arc::new(Observations::default());
    let period = ctx
        .config
        .node_monitor_period
        .max(Duration::from_millis(100));

    let feed = {
        let queue = Arc::clone(&queue);
        let nodes = Arc::clone(&nodes);
        let seen = Arc::clone(&seen);
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        async move {
            let all = || {
                for n in nodes.list() {
                    queue.add(n.metadata.name.clone().unwrap_or_default());
                }
            };
            let observe = |node: &Node| {
                let name = node.metadata.name.as_deref().unwrap_or_default();
                let lease = leases.get(LEASE_NAMESPACE, name);
                seen.observe(node, lease.as_deref(), ctx.clock.now());
            };
            let follow_nodes = nodes.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => {
                    observe(&new);
                    queue.add(new.metadata.name.clone().unwrap_or_default());
                }
                Change::Deleted(n) => seen.forget(n.metadata.name.as_deref().unwrap_or_default()),
                Change::Resynced => all(),
            });
            let follow_leases = leases.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => {
                    if new.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE) {
                        let name = new.metadata.name.clone().unwrap_or_default();
                        if let Some(node) = nodes.get("", &name) {
                            observe(&node);
                            queue.add(name);
                        }
                    }
                }
                Change::Deleted(_) => {}
                Change::Resynced => all(),
            });
            // Leases are not announced when they lapse: every node is looked at each period.
            let ticks = queue::every(period, &shutdown, all);
            nodes.ready().await;
            leases.ready().await;
            pods.ready().await;
            for n in nodes.list() {
                observe(&n);
            }
            all();
            tokio::join!(follow_nodes, follow_leases, ticks);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("node-lifecycle", queue, 4, shutdown, move |name| {
            let ctx = Arc::clone(&ctx);
            let seen = Arc::clone(&seen);
            async move { reconcile(&ctx, &seen, &name).await }
        })
    };
    tokio::join!(feed, worker);
}

/// How soon a reconcile that lost a write race looks again.
const RETRY_SOON: Duration = Duration::from_millis(100);

/// True for the errors that mean "someone else changed it first; look again".
fn raced(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

async fn reconcile(
    ctx: &Context,
    seen: &Observations,
    name: &str,
) -> Result<Next, NodeLifecycleError> {
    let Some(cached) = ctx.informers.get::<Node>().get("", name) else {
        seen.forget(name);
        return Ok(Next::Done);
    };
    let now = ctx.clock.now();
    let lease = ctx.informers.get::<Lease>().get(LEASE_NAMESPACE, name);
    let heard = seen.observe(&cached, lease.as_deref(), now);
    let grace = ctx.config.node_monitor_grace_period;
    let health = node_health(&cached, &heard, now, grace);
    let api: Api<Node> = Api::all(ctx.client.clone());
    let mut node = (*cached).clone();

    if health == Health::Unreachable
        && let Some(conditions) = unknown_conditions(&node, now)
    {
        tracing::info!(
            node = name,
            "node stopped posting status; marking it NotReady"
        );
        node.status.get_or_insert_default().conditions = Some(conditions);
        node = match api
            .replace_status(name, &PostParams::default(), &node)
            .await
        {
            Ok(n) => n,
            Err(e) if raced(&e) => return Ok(Next::After(RETRY_SOON)),
            Err(e) if gone(&e) => return Ok(Next::Done),
            Err(source) => {
                return Err(NodeLifecycleError::Status {
                    node: name.into(),
                    source,
                });
            }
        };
    }
    if let Some(taints) = desired_taints(&node, health, now) {
        node.spec.get_or_insert_default().taints = Some(taints);
        node = match api.replace(name, &PostParams::default(), &node).await {
            Ok(n) => n,
            Err(e) if raced(&e) => return Ok(Next::After(RETRY_SOON)),
            Err(e) if gone(&e) => return Ok(Next::Done),
            Err(source) => {
                return Err(NodeLifecycleError::Taints {
                    node: name.into(),
                    source,
                });
            }
        };
    }

    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let no_execute = taints.iter().any(|t| t.effect == NO_EXECUTE);
    if health != Health::Unreachable && !no_execute {
        return Ok(Next::Done);
    }
    let pods = ctx.informers.get::<Pod>().filter(|p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name)
            && p.metadata.deletion_timestamp.is_none()
    });
    let mut next: Option<Timestamp> = None;
    for pod in pods {
        if health == Health::Unreachable
            && let Some(conditions) = not_ready_status(&pod, now)
        {
            mark_not_ready(ctx, &pod, conditions).await?;
        }
        match taint_eviction(&pod, &taints, now) {
            Eviction::Never => {}
            Eviction::Now => evict(ctx, &pod, name).await?,
            Eviction::At(at) => next = Some(next.map_or(at, |n| n.min(at))),
        }
    }
    Ok(match next {
        Some(at) => {
            let wait = at.duration_since(now);
            Next::After(Duration::try_from(wait).unwrap_or(Duration::ZERO))
        }
        None => Next::Done,
    })
}

async fn mark_not_ready(
    ctx: &Context,
    pod: &Pod,
    conditions: Vec<PodCondition>,
) -> Result<(), NodeLifecycleError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut p = pod.clone();
    p.status.get_or_insert_default().conditions = Some(conditions);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    match api.replace_status(&name, &PostParams::default(), &p).await {
        // A conflict means a newer pod is on its way; the next pass looks again.
        Ok(_) => Ok(()),
        Err(e) if raced(&e) || gone(&e) => Ok(()),
        Err(source) => Err(NodeLifecycleError::Pod {
            action: "marking not ready",
            namespace: ns,
            name,
            source,
        }),
    }
}

async fn evict(ctx: &Context, pod: &Pod, node: &str) -> Result<(), NodeLifecycleError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    tracing::info!(pod = %format!("{ns}/{name}"), node, "deleting pod for a NoExecute taint");
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => {
            // The next pass must not delete it again from a cache that has not seen this.
            let pods = ctx.informers.get::<Pod>();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while tokio::time::Instant::now() < deadline
                && pods
                    .get(&ns, &name)
                    .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(())
        }
        Err(e) if raced(&e) || gone(&e) => Ok(()),
        Err(source) => Err(NodeLifecycleError::Pod {
            action: "deleting",
            namespace: ns,
            name,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn cond(type_: &str, status: &str, since: i64) -> NodeCondition {
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(Time(t(since))),
            last_heartbeat_time: Some(Time(t(since))),
            ..NodeCondition::default()
        }
    }

    fn node(conditions: Vec<NodeCondition>, taints: Vec<Taint>, unschedulable: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                creation_timestamp: Some(Time(t(-100))),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: (!taints.is_empty()).then_some(taints),
                unschedulable: unschedulable.then_some(true),
                ..NodeSpec::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(conditions),
                ..NodeStatus::default()
            }),
        }
    }

    fn healthy() -> Vec<NodeCondition> {
        vec![
            cond("MemoryPressure", "False", 0),
            cond("DiskPressure", "False", 0),
            cond("PIDPressure", "False", 0),
            cond("Ready", "True", 0),
        ]
    }

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            value: None,
            time_added: added.map(|s| Time(t(s))),
        }
    }

    fn toleration(key: &str, effect: &str, secs: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            toleration_seconds: secs,
            value: None,
        }
    }

    fn pod(tolerations: Vec<Toleration>, created: i64) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(t(created))),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..PodSpec::default()
            }),
            status: None,
        }
    }

    const GRACE: Duration = DEFAULT_GRACE_PERIOD;

    #[test]
    fn a_node_heard_within_the_grace_period_is_judged_by_its_ready_condition() {
        let heard = Heard {
            first_seen: t(0),
            renewed: Some(t(10)),
        };
        let n = node(healthy(), vec![], false);
        assert_eq!(node_health(&n, &heard, t(14), GRACE), Health::Ready);
        assert_eq!(node_health(&n, &heard, t(15), GRACE), Health::Ready);
        let mut c = healthy();
        c[3].status = "False".into();
        assert_eq!(
            node_health(&node(c, vec![], false), &heard, t(12), GRACE),
            Health::NotReady
        );
        let registering = node(vec![], vec![], false);
        assert_eq!(
            node_health(&registering, &heard, t(12), GRACE),
            Health::Pending
        );
    }

    #[test]
    fn a_node_silent_past_the_grace_period_is_unreachable() {
        let heard = Heard {
            first_seen: t(0),
            renewed: Some(t(10)),
        };
        let n = node(healthy(), vec![], false);
        assert_eq!(
            node_health(
                &n,
                &heard,
                t(15)
                    .saturating_add(SignedDuration::from_millis(1))
                    .unwrap(),
                GRACE
            ),
            Health::Unreachable
        );
        // Never heard renewing: the grace period counts from the first sight.
        let never = Heard {
            first_seen: t(0),
            renewed: None,
        };
        assert_eq!(node_health(&n, &never, t(4), GRACE), Health::Ready);
        assert_eq!(node_health(&n, &never, t(6), GRACE), Health::Unreachable);
    }

    #[test]
    fn a_pause_of_two_and_a_half_seconds_between_renewals_is_not_unreachable() {
        // Renewed every 2 s, then paused 2.5 s just before a renewal: 4.5 s of silence.
        let n = node(healthy(), vec![], false);
        let heard = Heard {
            first_seen: t(0),
            renewed: Some(t(100)),
        };
        let at = t(104)
            .saturating_add(SignedDuration::from_millis(500))
            .unwrap();
        assert_eq!(node_health(&n, &heard, at, GRACE), Health::Ready);
    }

    #[test]
    fn an_unknown_node_renewing_again_is_pending_until_it_posts_status() {
        let mut c = healthy();
        c[3] = cond("Ready", "Unknown", 20);
        let n = node(c, vec![], false);
        let renewed_after = Heard {
            first_seen: t(0),
            renewed: Some(t(21)),
        };
        assert_eq!(
            node_health(&n, &renewed_after, t(22), GRACE),
            Health::Pending
        );
        // Only seen at the controller's start: still unreachable.
        let just_started = Heard {
            first_seen: t(30),
            renewed: None,
        };
        assert_eq!(
            node_health(&n, &just_started, t(31), GRACE),
            Health::Unreachable
        );
        let renewed_before = Heard {
            first_seen: t(0),
            renewed: Some(t(19)),
        };
        assert_eq!(
            node_health(&n, &renewed_before, t(22), GRACE),
            Health::Unreachable
        );
    }

    #[test]
    fn unknown_conditions_are_set_once_with_kubernetes_reason_and_message() {
        let mut n = node(healthy(), vec![], false);
        let c = unknown_conditions(&n, t(50)).expect("changed");
        for cond in &c {
            assert_eq!(cond.status, "Unknown");
            assert_eq!(cond.reason.as_deref(), Some(REASON_UNKNOWN));
            assert_eq!(cond.message.as_deref(), Some(MESSAGE_UNKNOWN));
            assert_eq!(cond.last_transition_time, Some(Time(t(50))));
            assert_eq!(cond.last_heartbeat_time, Some(Time(t(0))));
        }
        n.status.as_mut().unwrap().conditions = Some(c);
        assert_eq!(unknown_conditions(&n, t(51)), None);
        // A node that never posted status gets all four, "never updated".
        let fresh = node(vec![], vec![], false);
        let c = unknown_conditions(&fresh, t(5)).unwrap();
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.reason.as_deref() == Some(REASON_NEVER)));
    }

    #[test]
    fn taints_follow_health_conditions_and_cordon() {
        let n = node(healthy(), vec![], false);
        assert_eq!(desired_taints(&n, Health::Ready, t(0)), None);

        let mut c = healthy();
        c[3] = cond("Ready", "Unknown", 1);
        let unreachable = node(c.clone(), vec![], false);
        let taints = desired_taints(&unreachable, Health::Unreachable, t(7)).unwrap();
        assert_eq!(
            taints,
            vec![
                taint(TAINT_UNREACHABLE, NO_SCHEDULE, None),
                taint(TAINT_UNREACHABLE, NO_EXECUTE, Some(7)),
            ]
        );
        // Already there: no change, and timeAdded is kept.
        let tainted = node(c.clone(), taints.clone(), false);
        assert_eq!(desired_taints(&tainted, Health::Unreachable, t(9)), None);
        // Renewing again: the NoExecute taint goes, NoSchedule stays until Ready.
        assert_eq!(
            desired_taints(&tainted, Health::Pending, t(9)),
            Some(vec![taint(TAINT_UNREACHABLE, NO_SCHEDULE, None)])
        );
        // Back to Ready: both go; a user's taint stays.
        let mut mixed = taints.clone();
        mixed.insert(0, taint("dedicated", NO_SCHEDULE, None));
        let back = node(healthy(), mixed, false);
        assert_eq!(
            desired_taints(&back, Health::Ready, t(20)),
            Some(vec![taint("dedicated", NO_SCHEDULE, None)])
        );

        let mut c = healthy();
        c[3].status = "False".into();
        c[0].status = "True".into();
        let sick = node(c, vec![], true);
        assert_eq!(
            desired_taints(&sick, Health::NotReady, t(3)).unwrap(),
            vec![
                taint(TAINT_NOT_READY, NO_SCHEDULE, None),
                taint(TAINT_MEMORY_PRESSURE, NO_SCHEDULE, None),
                taint(TAINT_UNSCHEDULABLE, NO_SCHEDULE, None),
                taint(TAINT_NOT_READY, NO_EXECUTE, Some(3)),
            ]
        );
        let uncordoned = node(
            healthy(),
            vec![taint(TAINT_UNSCHEDULABLE, NO_SCHEDULE, None)],
            false,
        );
        assert_eq!(
            desired_taints(&uncordoned, Health::Ready, t(3)),
            Some(vec![])
        );
    }

    #[test]
    fn untolerated_no_execute_taints_evict_at_once() {
        let taints = vec![taint(TAINT_UNREACHABLE, NO_EXECUTE, Some(10))];
        assert_eq!(
            taint_eviction(&pod(vec![], 0), &taints, t(11)),
            Eviction::Now
        );
        let other = pod(vec![toleration(TAINT_NOT_READY, NO_EXECUTE, None)], 0);
        assert_eq!(taint_eviction(&other, &taints, t(11)), Eviction::Now);
        // NoSchedule taints never evict.
        let soft = vec![taint(TAINT_UNREACHABLE, NO_SCHEDULE, None)];
        assert_eq!(
            taint_eviction(&pod(vec![], 0), &soft, t(11)),
            Eviction::Never
        );
    }

    #[test]
    fn tolerated_taints_evict_after_the_toleration_seconds() {
        let taints = vec![taint(TAINT_UNREACHABLE, NO_EXECUTE, Some(10))];
        let p = pod(vec![toleration(TAINT_UNREACHABLE, NO_EXECUTE, Some(2))], 0);
        assert_eq!(taint_eviction(&p, &taints, t(11)), Eviction::At(t(12)));
        assert_eq!(taint_eviction(&p, &taints, t(12)), Eviction::Now);
        // Forever without tolerationSeconds.
        let forever = pod(vec![toleration(TAINT_UNREACHABLE, NO_EXECUTE, None)], 0);
        assert_eq!(taint_eviction(&forever, &taints, t(1000)), Eviction::Never);
        // An empty key with Exists tolerates everything.
        let all = pod(
            vec![Toleration {
                operator: Some("Exists".into()),
                ..Toleration::default()
            }],
            0,
        );
        assert_eq!(taint_eviction(&all, &taints, t(1000)), Eviction::Never);
        // The shortest limit wins; a pod created after the taint counts from its creation.
        let two = pod(
            vec![
                toleration(TAINT_UNREACHABLE, NO_EXECUTE, Some(30)),
                toleration("", NO_EXECUTE, Some(5)),
            ],
            20,
        );
        assert_eq!(taint_eviction(&two, &taints, t(21)), Eviction::At(t(25)));
    }

    #[test]
    fn equal_tolerations_compare_values() {
        let mut tn = taint("dedicated", NO_EXECUTE, Some(0));
        tn.value = Some("db".into());
        let eq = |v: &str| Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some(v.into()),
            effect: None,
            toleration_seconds: None,
        };
        assert!(tolerates(&eq("db"), &tn));
        assert!(!tolerates(&eq("web"), &tn));
    }

    #[test]
    fn pods_are_marked_not_ready_once() {
        let mut p = pod(vec![], 0);
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        });
        assert!(crate::pods::is_ready(&p));
        let c = not_ready_status(&p, t(3)).unwrap();
        assert_eq!(c[0].status, "False");
        assert_eq!(c[0].last_transition_time, Some(Time(t(3))));
        p.status.as_mut().unwrap().conditions = Some(c);
        assert!(!crate::pods::is_ready(&p));
        assert_eq!(not_ready_status(&p, t(4)), None);
    }
}
