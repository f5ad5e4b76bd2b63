//! The DaemonSet controller: one pod on every eligible node (its nodeSelector and required node
//! affinity match, and it tolerates the node's NoSchedule and NoExecute taints), nodes that join
//! later included. Pods are placed through the scheduler with the required node affinity
//! `matchFields metadata.name In [node]`, as Kubernetes places them, and carry the tolerations
//! Kubernetes adds to daemon pods (not-ready and unreachable NoExecute; disk, memory and PID
//! pressure and unschedulable NoSchedule; network-unavailable for host-network pods). Updates roll
//! node by node within `maxUnavailable` and `maxSurge`, or wait for deletion (`OnDelete`);
//! ControllerRevisions hold each template and pods carry the revision's hash.
//!
//! The decisions follow Kubernetes' DaemonSet controller and are the pure [`plan`];
//! [`reconcile`] reads the caches, keeps the revisions and carries a plan out. Must not touch
//! pods it does not control.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::pods;
use crate::queue::{self, Key, Next, Queue};
use crate::revision::{self, UpdateRevision};
use crate::workload::{self, Freshness};

/// The controller's name (events, logs).
pub const NAME: &str = "daemonset-controller";
/// The label holding the DaemonSet's generation when the pod was made.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum DaemonSetError {
    /// An API call failed.
    #[error("{action} for daemonset {key}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// The DaemonSet.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// What a plan asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Nodes that get a new pod.
    pub create_on: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// The status.
    pub status: DaemonSetStatus,
    /// Look again after this long (a pod becomes available, a back-off ends).
    pub requeue: Option<Duration>,
    /// Nodes whose failed pod is deleted now (their back-off grows).
    pub failed_on: Vec<String>,
    /// Events to record: type, reason, message.
    pub events: Vec<(&'static str, &'static str, String)>,
}

/// The first delay before a node's failed daemon pod is deleted again; it doubles each time.
pub const FAILED_POD_BACKOFF: Duration = Duration::from_secs(1);
/// The longest such delay.
pub const FAILED_POD_BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

/// Per DaemonSet and node, how often a failed pod was deleted and when, so that a pod the node
/// keeps rejecting is not deleted and made again in a hot loop (Kubernetes'
/// `failedPodsBackoff`). In memory: a new leader starts without back-off.
#[derive(Default)]
pub struct FailedBackoff {
    inner:
        std::sync::Mutex<std::collections::HashMap<(Key, String), (Duration, std::time::Instant)>>,
}

impl FailedBackoff {
    /// The back-off left for `node` of `key`, if any.
    pub fn remaining(&self, key: &Key, node: &str) -> Option<Duration> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (d, at) = g.get(&(key.clone(), node.to_owned()))?;
        d.checked_sub(at.elapsed()).filter(|r| !r.is_zero())
    }

    /// A failed pod on `node` of `key` was deleted now: the next delay doubles.
    pub fn next(&self, key: &Key, node: &str) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // Forget entries idle for twice the longest delay.
        g.retain(|_, (_, at)| at.elapsed() < FAILED_POD_BACKOFF_MAX * 2);
        let e = g
            .entry((key.clone(), node.to_owned()))
            .or_insert((Duration::ZERO, std::time::Instant::now()));
        e.0 = if e.0.is_zero() {
            FAILED_POD_BACKOFF
        } else {
            (e.0 * 2).min(FAILED_POD_BACKOFF_MAX)
        };
        e.1 = std::time::Instant::now();
    }
}

// ---------------------------------------------------------------------------------------------
// Node eligibility

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".into()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    }
}

/// The tolerations Kubernetes adds to every daemon pod (`host_network`: also
/// network-unavailable).
pub fn daemon_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut out = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        out.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    out
}

/// Adds the daemon tolerations the template lacks.
fn with_daemon_tolerations(template: &PodTemplateSpec) -> Vec<Toleration> {
    let spec = template.spec.clone().unwrap_or_default();
    let mut tols = spec.tolerations.unwrap_or_default();
    for t in daemon_tolerations(spec.host_network == Some(true)) {
        let present = tols.iter().any(|x| {
            x.key == t.key && x.effect == t.effect && x.operator.as_deref() == Some("Exists")
        });
        if !present {
            tols.push(t);
        }
    }
    tols
}

/// Whether `tol` tolerates `taint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if tol
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    let exists = tol.operator.as_deref() == Some("Exists");
    if key.is_empty() {
        return exists;
    }
    if key != taint.key {
        return false;
    }
    exists || tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |v: &str| v.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(b)) = (
                value.and_then(number),
                values.first().and_then(|b| number(b)),
            ) else {
                return false;
            };
            if r.operator == "Gt" { v > b } else { v < b }
        }
        _ => false,
    }
}

/// Whether a node selector term matches the node (an empty term matches nothing).
pub fn term_matches(t: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or(&[]);
    let fields = t.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.as_ref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// Whether the daemon pod may run on `node` and whether one already there may stay
/// (Kubernetes' `NodeShouldRunDaemonPod`).
pub fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let Some(spec) = ds.spec.as_ref() else {
        return (false, false);
    };
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    let node_name = node.metadata.name.as_deref().unwrap_or("");
    if pod_spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = pod_spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = pod_spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|sel| {
            sel.node_selector_terms
                .iter()
                .any(|t| term_matches(t, node))
        });
    if !selector_ok || !affinity_ok {
        return (false, false);
    }
    let tols = with_daemon_tolerations(&spec.template);
    let untolerated = |effects: &[&str]| {
        node.spec
            .iter()
            .flat_map(|s| s.taints.iter().flatten())
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !tols.iter().any(|tol| tolerates(tol, t)))
    };
    if untolerated(&["NoSchedule", "NoExecute"]) {
        return (false, !untolerated(&["NoExecute"]));
    }
    (true, true)
}

/// The node a daemon pod is for: its `nodeName`, or the single node its required node affinity
/// names by `metadata.name`.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n.to_owned());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|r| {
            let v = r.values.as_deref()?;
            (r.key == "metadata.name" && r.operator == "In" && v.len() == 1).then(|| v[0].clone())
        })
    })
}

/// The pod affinity with the required node affinity narrowed to `node` (Kubernetes'
/// `ReplaceDaemonSetPodNodeNameNodeAffinity`).
pub fn node_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_owned()]),
        }]),
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    a
}

/// The pod of `ds` for `node` at the revision with `hash`.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let spec = ds.spec.clone().unwrap_or_default();
    let namespace = ds.metadata.namespace.clone().unwrap_or_default();
    let mut pod = pods::pod_from_template(&spec.template, &namespace, pods::controller_ref(ds));
    pod.metadata.generate_name = Some(pods::generate_name_prefix(
        ds.metadata.name.as_deref().unwrap_or(""),
    ));
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(revision::HASH_LABEL.into(), hash.to_owned());
    labels.insert(
        TEMPLATE_GENERATION_LABEL.into(),
        ds.metadata.generation.unwrap_or(0).to_string(),
    );
    let tols = with_daemon_tolerations(&spec.template);
    let ps = pod.spec.get_or_insert_with(Default::default);
    ps.tolerations = Some(tols);
    ps.affinity = Some(node_affinity(ps.affinity.take(), node));
    pod
}

// ---------------------------------------------------------------------------------------------
// The plan

fn hash_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(revision::HASH_LABEL))
        .map_or("", String::as_str)
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Resolves an int-or-percent against `total`, rounding up.
fn scaled(v: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match v {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
                Some(p) => i32::try_from((p * i64::from(total) + 99) / 100).unwrap_or(i32::MAX),
                None => s.parse().unwrap_or(default),
            }
        }
    }
}

fn sort_oldest_first(v: &mut [&Pod]) {
    v.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            p.metadata.name.clone(),
        )
    });
}

/// Decides the next steps for `ds` given the nodes, the pods it controls, the update
/// revision's hash and `now`.
///
/// `backoff` gives, per node, how long a failed pod there must stay before it is deleted again.
pub fn plan(
    ds: &DaemonSet,
    nodes: &[&Node],
    owned: &[&Pod],
    hash: &str,
    backoff: &BTreeMap<String, Duration>,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let Some(spec) = ds.spec.as_ref() else {
        return out;
    };
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let strategy = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    let ru = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let max_surge_set = ru
        .and_then(|r| r.max_surge.as_ref())
        .is_some_and(|v| scaled(Some(v), 100, 0) > 0);

    // Pods by node, leaving out finished pods that are being deleted.
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in owned {
        if workload::is_finished(p) && pods::is_terminating(p) {
            continue;
        }
        if let Some(n) = target_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let known: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();

    // 1. Each node: create, clean up, or remove.
    let mut eligible: BTreeMap<String, bool> = BTreeMap::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (run, keep) = should_run(ds, node);
        eligible.insert(name.clone(), run);
        let on_node = by_node.get(&name).cloned().unwrap_or_default();
        if run && on_node.is_empty() {
            out.create_on.push(name);
        } else if keep {
            let mut running: Vec<&Pod> = Vec::new();
            for p in on_node.iter().filter(|p| !pods::is_terminating(p)) {
                if pods::phase(p) == workload::FAILED {
                    // A node that keeps rejecting the pod is not hammered.
                    if let Some(d) = backoff.get(&name).filter(|d| !d.is_zero()) {
                        out.requeue = Some(out.requeue.map_or(*d, |r| r.min(*d)));
                        continue;
                    }
                    out.failed_on.push(name.clone());
                    out.events.push((
                        "Warning",
                        "FailedDaemonPod",
                        format!(
                            "Found failed daemon pod {}/{} on node {name}, will try to kill it",
                            p.metadata.namespace.as_deref().unwrap_or(""),
                            name_of(p)
                        ),
                    ));
                    out.delete.push(name_of(p));
                } else if workload::is_finished(p) {
                    out.delete.push(name_of(p));
                } else {
                    running.push(p);
                }
            }
            if running.len() > 1 {
                sort_oldest_first(&mut running);
                if !max_surge_set {
                    out.delete.extend(running[1..].iter().map(|p| name_of(p)));
                } else {
                    // With surge, an old and a new pod may overlap until the new one is
                    // available; everything else goes.
                    let newest = running.iter().find(|p| hash_of(p) == hash).copied();
                    let oldest_old = running.iter().find(|p| hash_of(p) != hash).copied();
                    for p in &running {
                        let is_new = newest.is_some_and(|n| std::ptr::eq(*p, n));
                        let is_old = oldest_old.is_some_and(|o| std::ptr::eq(*p, o));
                        if !is_new && !is_old {
                            out.delete.push(name_of(p));
                        }
                    }
                    if let (Some(n), Some(o)) = (newest, oldest_old)
                        && (!pods::is_ready(o) || pods::is_available(n, min_ready, now))
                    {
                        out.delete.push(name_of(o));
                    }
                }
            }
        } else {
            out.delete.extend(
                on_node
                    .iter()
                    .filter(|p| !pods::is_terminating(p))
                    .map(|p| name_of(p)),
            );
        }
    }
    // Pods for nodes that no longer exist.
    for (node, ps) in &by_node {
        if !known.contains(node.as_str()) {
            out.delete.extend(
                ps.iter()
                    .filter(|p| !pods::is_terminating(p))
                    .map(|p| name_of(p)),
            );
        }
    }

    // 2. The status.
    let mut st = DaemonSetStatus {
        observed_generation: ds.metadata.generation,
        collision_count: ds.status.as_ref().and_then(|s| s.collision_count),
        conditions: ds.status.as_ref().and_then(|s| s.conditions.clone()),
        ..DaemonSetStatus::default()
    };
    let (mut available, mut updated) = (0, 0);
    for (name, run) in &eligible {
        let mut on_node: Vec<&Pod> = by_node.get(name).cloned().unwrap_or_default();
        let scheduled = !on_node.is_empty();
        if *run {
            st.desired_number_scheduled += 1;
            if scheduled {
                st.current_number_scheduled += 1;
                sort_oldest_first(&mut on_node);
                let p = on_node[0];
                if pods::is_ready(p) {
                    st.number_ready += 1;
                    if pods::is_available(p, min_ready, now) {
                        available += 1;
                    } else if let Some(d) = pods::available_in(p, min_ready, now) {
                        out.requeue = Some(out.requeue.map_or(d, |r| r.min(d)));
                    }
                }
                if on_node.iter().any(|p| hash_of(p) == hash) {
                    updated += 1;
                }
            }
        } else if scheduled {
            st.number_misscheduled += 1;
        }
    }
    st.number_available = Some(available);
    st.updated_number_scheduled = Some(updated);
    st.number_unavailable = Some(st.desired_number_scheduled - available);
    let desired = st.desired_number_scheduled;
    out.status = st;

    // 3. The rolling update, once nothing else is pending.
    if strategy != "RollingUpdate" || !out.delete.is_empty() {
        return out;
    }
    let max_surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, 0);
    let mut max_unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired, 1);
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    let mut candidates: Vec<(String, &Pod, bool)> = Vec::new();
    let mut unavailable = 0;
    let mut surging = 0;
    let mut allowed_new: Vec<String> = Vec::new();
    let mut old_to_delete: Vec<String> = Vec::new();
    for (node, ps) in &by_node {
        if !known.contains(node.as_str()) {
            continue;
        }
        let live: Vec<&Pod> = ps
            .iter()
            .copied()
            .filter(|p| !pods::is_terminating(p) && !workload::is_finished(p))
            .collect();
        let new: Vec<&Pod> = live
            .iter()
            .copied()
            .filter(|p| hash_of(p) == hash)
            .collect();
        let old: Vec<&Pod> = live
            .iter()
            .copied()
            .filter(|p| hash_of(p) != hash)
            .collect();
        if new.len() > 1 || old.len() > 1 {
            // The node is being cleaned up: unavailable meanwhile.
            unavailable += 1;
            surging += 1;
            continue;
        }
        let (new, old) = (new.first().copied(), old.first().copied());
        match (new, old) {
            (None, None) => unavailable += 1,
            (Some(n), None) => {
                if !pods::is_available(n, min_ready, now) {
                    unavailable += 1;
                }
            }
            (Some(n), Some(o)) => {
                if max_surge > 0 {
                    if pods::is_available(n, min_ready, now) {
                        old_to_delete.push(name_of(o));
                    } else {
                        surging += 1;
                    }
                } else {
                    unavailable += 1;
                }
            }
            (None, Some(o)) => {
                let ok = pods::is_available(o, min_ready, now);
                if !ok && max_surge == 0 {
                    unavailable += 1;
                }
                candidates.push((node.clone(), o, ok));
            }
        }
    }
    if max_surge == 0 {
        // Delete old pods: every unavailable one, and available ones within maxUnavailable.
        for (_, o, ok) in &candidates {
            if !ok {
                out.delete.push(name_of(o));
            }
        }
        let room = usize::try_from((max_unavailable - unavailable).max(0)).unwrap_or(0);
        out.delete.extend(
            candidates
                .iter()
                .filter(|(_, _, ok)| *ok)
                .take(room)
                .map(|(_, o, _)| name_of(o)),
        );
    } else {
        // Surge: start new pods beside old ones, then remove the old once the new is available.
        for (node, _, ok) in &candidates {
            if !ok && eligible.get(node).copied().unwrap_or(false) {
                allowed_new.push(node.clone());
            }
        }
        let room = usize::try_from((max_surge - surging).max(0)).unwrap_or(0);
        let more: Vec<String> = candidates
            .iter()
            .filter(|(node, _, ok)| *ok && eligible.get(node).copied().unwrap_or(false))
            .take(room)
            .map(|(n, _, _)| n.clone())
            .collect();
        out.create_on.extend(allowed_new);
        out.create_on.extend(more);
        out.delete.extend(old_to_delete);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The controller

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let sets = ctx.informers.get::<DaemonSet>();
    let pods_inf = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    let revs = ctx.informers.get::<ControllerRevision>();
    let queue: Arc<Queue<Key>> = Queue::new();
    let fresh = Arc::new(Freshness::new());
    let backoff = Arc::new(FailedBackoff::default());

    let feed = {
        let queue = Arc::clone(&queue);
        let fresh = Arc::clone(&fresh);
        let shutdown = shutdown.clone();
        async move {
            let all = || sets.queue_all(&queue);
            let follow_sets = workload::follow_own(&sets, &shutdown, &queue, &fresh);
            let follow_pods =
                workload::follow_owned(&pods_inf, &sets, &shutdown, &queue, &fresh, true);
            let follow_nodes = nodes.follow(&shutdown, |c| match c {
                // A node's labels, taints or existence decide where daemon pods go.
                Change::Applied { old, new } => {
                    let relevant = old.as_ref().is_none_or(|o| {
                        o.metadata.labels != new.metadata.labels
                            || o.spec.as_ref().map(|s| &s.taints)
                                != new.spec.as_ref().map(|s| &s.taints)
                    });
                    if relevant {
                        all();
                    }
                }
                Change::Deleted(_) | Change::Resynced => all(),
            });
            sets.ready().await;
            pods_inf.ready().await;
            nodes.ready().await;
            revs.ready().await;
            all();
            tokio::join!(follow_sets, follow_pods, follow_nodes);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers(NAME, queue, 2, shutdown, move |key: Key| {
            let ctx = Arc::clone(&ctx);
            let fresh = Arc::clone(&fresh);
            let backoff = Arc::clone(&backoff);
            async move { reconcile(&ctx, &fresh, &backoff, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

fn api_err(action: &'static str, key: &Key) -> impl FnOnce(kube::Error) -> DaemonSetError + use<> {
    let key = key.clone();
    move |source| DaemonSetError::Api {
        action,
        key,
        source,
    }
}

/// Finds or makes the revision of the DaemonSet's template; returns its hash.
async fn update_hash(
    ctx: &Context,
    fresh: &Freshness,
    key: &Key,
    ds: &DaemonSet,
    owned: &[Arc<ControllerRevision>],
) -> Result<String, DaemonSetError> {
    let spec = ds.spec.clone().unwrap_or_default();
    let data = revision::data(&spec.template);
    let refs: Vec<&ControllerRevision> = owned.iter().map(AsRef::as_ref).collect();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let hash_label = |r: &ControllerRevision| {
        r.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(revision::HASH_LABEL))
            .cloned()
            .unwrap_or_default()
    };
    let by_name = |n: &str| {
        owned
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(n))
            .map(|r| hash_label(r))
            .unwrap_or_default()
    };
    match revision::find_update(&refs, &data) {
        UpdateRevision::Latest(n) => Ok(by_name(&n)),
        UpdateRevision::Reuse { name, number } => {
            let r = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "revision": number })),
                )
                .await
                .map_err(api_err("renumbering a revision", key))?;
            fresh.expect(key, "ControllerRevision", workload::rv(&r.metadata));
            Ok(hash_label(&r))
        }
        UpdateRevision::Create => {
            let mut collisions = ds
                .status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0);
            loop {
                let rev = revision::new_revision(
                    &key.name,
                    &key.namespace,
                    pods::controller_ref(ds),
                    spec.template
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.as_ref()),
                    data.clone(),
                    revision::next_number(&refs),
                    collisions,
                );
                let n = rev.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), &rev).await {
                    Ok(r) => return Ok(hash_label(&r)),
                    Err(e) if workload::is_conflict(&e) => {
                        let existing = api
                            .get(&n)
                            .await
                            .map_err(api_err("reading a revision", key))?;
                        if revision::equal(&existing, &data) {
                            return Ok(hash_label(&existing));
                        }
                        collisions += 1;
                        if collisions > 100 {
                            return Err(api_err("creating a revision", key)(e));
                        }
                    }
                    Err(e) => return Err(api_err("creating a revision", key)(e)),
                }
            }
        }
    }
}

/// Makes the DaemonSet `key` converge one step.
async fn reconcile(
    ctx: &Context,
    fresh: &Freshness,
    backoff: &FailedBackoff,
    key: &Key,
) -> Result<Next, DaemonSetError> {
    if !fresh.satisfied(key) {
        return Ok(Next::After(workload::CACHE_LAG_RETRY));
    }
    let Some(ds) = ctx
        .informers
        .get::<DaemonSet>()
        .get(&key.namespace, &key.name)
    else {
        return Ok(Next::Done);
    };
    let spec = ds.spec.clone().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let Ok(sel) = pods::selector(Some(&spec.selector)) else {
        return Ok(Next::Done);
    };
    let candidates = ctx
        .informers
        .get::<Pod>()
        .filter(|p| p.metadata.namespace.as_deref() == Some(key.namespace.as_str()));
    let claim = pods::claim(&ds.metadata, &sel, candidates);
    let owner = pods::controller_ref(ds.as_ref());
    for p in &claim.adopt {
        pods::adopt(&pods_api, &owner, p)
            .await
            .map_err(api_err("adopting a pod", key))?;
    }
    for p in &claim.release {
        pods::release(&pods_api, &owner.uid, p)
            .await
            .map_err(api_err("releasing a pod", key))?;
    }
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }
    let ds_uid = ds.metadata.uid.clone().unwrap_or_default();
    let owned_revs = ctx.informers.get::<ControllerRevision>().filter(|r| {
        r.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && pods::is_controlled_by(&r.metadata, &ds_uid)
    });
    let hash = update_hash(ctx, fresh, key, &ds, &owned_revs).await?;
    let nodes = ctx.informers.get::<Node>().list();
    let node_refs: Vec<&Node> = nodes.iter().map(AsRef::as_ref).collect();
    let refs: Vec<&Pod> = claim.owned.iter().map(AsRef::as_ref).collect();
    let now = ctx.clock.now();
    let waits: BTreeMap<String, Duration> = node_refs
        .iter()
        .filter_map(|n| {
            let name = n.metadata.name.clone()?;
            let d = backoff.remaining(key, &name)?;
            Some((name, d))
        })
        .collect();
    let p = plan(&ds, &node_refs, &refs, &hash, &waits, now);
    let regarding = workload::object_ref(ds.as_ref());
    for node in &p.failed_on {
        backoff.next(key, node);
    }
    for (type_, reason, message) in &p.events {
        workload::record_event(
            &ctx.client,
            NAME,
            now,
            regarding.clone(),
            type_,
            reason,
            message.clone(),
        )
        .await;
    }

    for n in &p.delete {
        match pods_api.delete(n, &DeleteParams::default()).await {
            Ok(res) => {
                if let Some(pod) = res.left() {
                    fresh.expect(key, "Pod", workload::rv(&pod.metadata));
                }
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {n}"),
                )
                .await;
            }
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a pod", key)(e)),
        }
    }
    for node in &p.create_on {
        let pod = new_pod(&ds, node, &hash);
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                fresh.expect(key, "Pod", workload::rv(&created.metadata));
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulCreate",
                    format!(
                        "Created pod: {}",
                        created.metadata.name.as_deref().unwrap_or("")
                    ),
                )
                .await;
            }
            Err(e) => {
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                )
                .await;
                return Err(api_err("creating a pod", key)(e));
            }
        }
    }
    if ds.status.as_ref() != Some(&p.status) {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({ "status": p.status });
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(s) => fresh.expect(key, "DaemonSet", workload::rv(&s.metadata)),
            Err(e) if workload::is_not_found(&e) => return Ok(Next::Done),
            Err(e) => return Err(api_err("writing the status", key)(e)),
        }
    }
    // Old revisions beyond the history limit go, unless a pod still uses them.
    let live_hashes: HashSet<&str> = refs.iter().map(|p| hash_of(p)).collect();
    let live: HashSet<String> = owned_revs
        .iter()
        .filter(|r| {
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(revision::HASH_LABEL))
                .is_some_and(|h| *h == hash || live_hashes.contains(h.as_str()))
        })
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    let rev_refs: Vec<&ControllerRevision> = owned_revs.iter().map(AsRef::as_ref).collect();
    let rev_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &key.namespace);
    for n in revision::to_prune(&rev_refs, &live, spec.revision_history_limit.unwrap_or(10)) {
        match rev_api.delete(&n, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a revision", key)(e)),
        }
    }
    Ok(match p.requeue {
        Some(d) => Next::After(d.max(Duration::from_millis(10))),
        None => Next::Done,
    })
}

#[cfg(test)]
mod tests;
