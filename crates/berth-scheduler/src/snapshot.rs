//! The scheduler's picture of the cluster: the nodes (labels, allocatable, taints, cordon,
//! readiness), what the pods already placed on each use (requests, host ports, a count), and
//! indexes that answer "how many pods matching this selector are in each topology domain"
//! without scanning every pod.
//!
//! Owns that state and keeping it consistent as nodes change and pods are assumed and
//! forgotten. Must not decide placements (that is [`crate::schedule`]) and does no I/O: the
//! caller feeds it from the API.
//!
//! The indexes are built lazily: a topology (the domain of each node for one label key) the
//! first time a pod asks for it, a match set (the pods one matcher accepts, counted per node
//! and per domain) the first time a term or constraint names it, and kept up to date as pods
//! come and go. A node that appears, disappears or changes labels drops them all; they are
//! rebuilt on the next use.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::pod::{HostPort, PodInfo, PodKey};
use crate::resources::Resources;
use crate::selector::{
    Anchor, Clause, Effect, Labels, Matcher, PodView, TaintRef, matches_labels, set_selector,
};

/// The taint Kubernetes puts on a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint Kubernetes puts on a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint a cordoned node is treated as having.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// How many match sets are kept; past this, the least recently used half is dropped (and
/// rebuilt on use).
const MAX_SETS: usize = 1024;
/// How many term groups may exist before empty ones are purged by a rebuild.
const MAX_GROUPS: usize = 1024;
/// A node without a domain for a topology key.
pub(crate) const NO_DOMAIN: u32 = u32::MAX;

/// A node's Ready condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// `Ready=True`.
    Ready,
    /// `Ready=False`, or no Ready condition yet.
    NotReady,
    /// `Ready=Unknown`: the node stopped reporting.
    Unknown,
}

/// What the scheduler knows of a node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeFacts {
    /// The name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
    /// The allocatable resources.
    pub allocatable: Resources,
    /// How many pods it may run (allocatable `pods`).
    pub allowed_pods: i64,
    /// Its taints.
    pub taints: Vec<TaintRef>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// Its Ready condition.
    pub ready: Readiness,
}

impl NodeFacts {
    /// A Ready, untainted node.
    pub fn new(
        name: impl Into<String>,
        labels: Labels,
        allocatable: Resources,
        allowed_pods: i64,
    ) -> Self {
        Self {
            name: name.into(),
            labels,
            allocatable,
            allowed_pods,
            taints: Vec::new(),
            unschedulable: false,
            ready: Readiness::Ready,
        }
    }

    /// Reads an API node.
    pub fn from_node(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let alloc = status.and_then(|s| s.allocatable.as_ref());
        let allowed_pods = alloc
            .and_then(|a| a.get("pods"))
            .and_then(|q| berth_api::quantity::parse_quantity(&q.0))
            .map(|q| i64::try_from(q.0 / 1_000_000_000).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let ready = match status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str())
        {
            Some("True") => Readiness::Ready,
            Some("Unknown") => Readiness::Unknown,
            _ => Readiness::NotReady,
        };
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            allocatable: alloc.map(Resources::from_list).unwrap_or_default(),
            allowed_pods,
            taints: spec
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .map(TaintRef::of)
                .collect(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            ready,
        }
    }
}

/// A live node with what the filters read precomputed.
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub facts: NodeFacts,
    /// `NoSchedule` and `NoExecute` taints, plus the readiness taint Kubernetes' node
    /// lifecycle controller would add (`not-ready` or `unreachable`, `NoSchedule`) when the
    /// node is not Ready and does not carry it yet.
    pub filter_taints: Vec<TaintRef>,
    /// `PreferNoSchedule` taints.
    pub prefer_taints: Vec<TaintRef>,
}

impl NodeState {
    fn new(facts: NodeFacts) -> Self {
        let mut filter_taints: Vec<TaintRef> = facts
            .taints
            .iter()
            .filter(|t| matches!(t.effect, Effect::NoSchedule | Effect::NoExecute))
            .cloned()
            .collect();
        let readiness_taint = match facts.ready {
            Readiness::Ready => None,
            Readiness::NotReady => Some(TAINT_NOT_READY),
            Readiness::Unknown => Some(TAINT_UNREACHABLE),
        };
        if let Some(key) = readiness_taint
            && !filter_taints
                .iter()
                .any(|t| t.key == key && t.effect == Effect::NoSchedule)
        {
            filter_taints.push(TaintRef::new(key, "", Effect::NoSchedule));
        }
        let prefer_taints = facts
            .taints
            .iter()
            .filter(|t| t.effect == Effect::PreferNoSchedule)
            .cloned()
            .collect();
        Self {
            facts,
            filter_taints,
            prefer_taints,
        }
    }
}

/// A node name and what is placed on it. A slot without a node holds pods bound to a node the
/// snapshot does not know (yet, or any more).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub name: String,
    pub node: Option<NodeState>,
    /// Sum of the placed pods' requests.
    pub requested: Resources,
    /// Sum of the placed pods' scoring requests (CPU, memory).
    pub nonzero: (i64, i64),
    /// How many pods are placed.
    pub pods: u32,
    /// Host ports in use.
    pub ports: Vec<HostPort>,
}

/// What the filters and scores read of every node, packed into one cache line so that visiting
/// thousands of nodes touches little memory. Kept in step with [`Slot`].
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
pub(crate) struct Hot {
    /// The slot has a node.
    pub live: bool,
    pub unschedulable: bool,
    /// It has `NoSchedule`/`NoExecute` taints (counting the readiness taint).
    pub filter_taints: bool,
    pub prefer_taints: bool,
    /// Host ports are in use.
    pub ports: bool,
    pub pods: u32,
    pub allowed_pods: u32,
    pub alloc_cpu: i64,
    pub alloc_memory: i64,
    pub alloc_ephemeral: i64,
    pub req_cpu: i64,
    pub req_memory: i64,
    pub req_ephemeral: i64,
}

impl Hot {
    fn of(slot: &Slot) -> Self {
        let mut h = Hot {
            live: slot.node.is_some(),
            ports: !slot.ports.is_empty(),
            pods: slot.pods,
            req_cpu: slot.requested.milli_cpu,
            req_memory: slot.requested.memory,
            req_ephemeral: slot.requested.ephemeral_storage,
            ..Hot::default()
        };
        if let Some(n) = &slot.node {
            h.unschedulable = n.facts.unschedulable;
            h.filter_taints = !n.filter_taints.is_empty();
            h.prefer_taints = !n.prefer_taints.is_empty();
            h.allowed_pods = u32::try_from(n.facts.allowed_pods.max(0)).unwrap_or(u32::MAX);
            h.alloc_cpu = n.facts.allocatable.milli_cpu;
            h.alloc_memory = n.facts.allocatable.memory;
            h.alloc_ephemeral = n.facts.allocatable.ephemeral_storage;
        }
        h
    }
}

/// What a term of a placed pod does to pods scheduled after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TermKind {
    /// Required anti-affinity: matching pods may not share the domain.
    RequiredAnti,
    /// Required affinity: matching pods are drawn to the domain (scored with the hard pod
    /// affinity weight).
    RequiredAffinity,
    /// Preferred affinity (positive weight) or anti-affinity (negative weight).
    Preferred,
}

#[derive(Debug, Clone)]
struct ExistingTerm {
    kind: TermKind,
    matcher: Matcher,
    topology_key: String,
    weight: i64,
    key: String,
}

#[derive(Debug, Clone)]
struct Placed {
    slot: u32,
    namespace: String,
    labels: Labels,
    owner: Option<String>,
    requests: Resources,
    nonzero: (i64, i64),
    ports: Vec<HostPort>,
    terms: Vec<ExistingTerm>,
}

impl Placed {
    fn view(&self) -> PodView<'_> {
        PodView {
            namespace: &self.namespace,
            labels: &self.labels,
            owner: self.owner.as_deref(),
        }
    }
}

/// The domain of every node for one label key.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    /// Domain id by slot ([`NO_DOMAIN`] without the label).
    pub domain_of: Vec<u32>,
    /// Domain values by id.
    pub names: Vec<String>,
    /// How many live nodes have the label.
    pub nodes_with_key: usize,
}

impl Topology {
    pub fn domain(&self, slot: u32) -> Option<u32> {
        self.domain_of
            .get(slot as usize)
            .copied()
            .filter(|d| *d != NO_DOMAIN)
    }
}

/// The placed pods one matcher accepts, counted per node and per domain of each topology
/// asked for.
#[derive(Debug, Clone)]
pub(crate) struct MatchSet {
    pub matcher: Matcher,
    pub per_node: HashMap<u32, u32>,
    pub by_topo: Vec<(u32, Vec<u32>)>,
    last_used: u64,
}

impl MatchSet {
    /// The counts per domain of topology `topo` (prepared by [`Snapshot::set_counts`]).
    pub fn counts(&self, topo: u32) -> &[u32] {
        self.by_topo
            .iter()
            .find(|(t, _)| *t == topo)
            .map(|(_, c)| c.as_slice())
            .unwrap_or(&[])
    }
}

/// The terms of placed pods that are alike (same kind, matcher, topology key and weight),
/// counted per domain of the pods carrying them.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub matcher: Matcher,
    pub topo: u32,
    pub kind: TermKind,
    pub weight: i64,
    pub counts: Vec<u32>,
    pub total: u32,
}

/// Ids of matchers by a property every pod they accept has, to find the few a pod concerns.
#[derive(Debug, Clone, Default)]
struct Anchors {
    by_owner: HashMap<String, Vec<u32>>,
    by_label: HashMap<String, HashMap<String, Vec<u32>>>,
    unanchored: Vec<u32>,
}

impl Anchors {
    fn insert(&mut self, anchor: Anchor, id: u32) {
        match anchor {
            Anchor::Owner(o) => self.by_owner.entry(o).or_default().push(id),
            Anchor::Label(k, values) if !k.is_empty() => {
                let by_value = self.by_label.entry(k).or_default();
                for v in values {
                    by_value.entry(v).or_default().push(id);
                }
            }
            // A selector that matches nothing concerns no pod.
            Anchor::Label(..) => {}
            Anchor::None => self.unanchored.push(id),
        }
    }

    /// Calls `f` with every id whose matcher may accept `pod` (each at most once).
    fn candidates(&self, pod: &PodView<'_>, mut f: impl FnMut(u32)) {
        if let Some(o) = pod.owner
            && let Some(ids) = self.by_owner.get(o)
        {
            ids.iter().for_each(|id| f(*id));
        }
        for (k, v) in pod.labels {
            if let Some(ids) = self.by_label.get(k).and_then(|m| m.get(v)) {
                ids.iter().for_each(|id| f(*id));
            }
        }
        self.unanchored.iter().for_each(|id| f(*id));
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Index {
    pub topologies: Vec<Topology>,
    topo_by_key: HashMap<String, u32>,
    pub sets: Vec<MatchSet>,
    set_by_key: HashMap<String, u32>,
    set_anchors: Anchors,
    pub groups: Vec<Group>,
    group_by_key: HashMap<String, u32>,
    group_anchors: Anchors,
}

/// The placed pods by controller and by label, to build match sets without visiting every
/// pod.
#[derive(Debug, Clone, Default)]
struct PodIndex {
    by_owner: HashMap<String, HashSet<u32>>,
    by_label: HashMap<String, HashMap<String, HashSet<u32>>>,
}

impl PodIndex {
    fn insert(&mut self, id: u32, p: &Placed) {
        if let Some(o) = &p.owner {
            self.by_owner.entry(o.clone()).or_default().insert(id);
        }
        for (k, v) in &p.labels {
            self.by_label
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(id);
        }
    }

    fn remove(&mut self, id: u32, p: &Placed) {
        if let Some(o) = &p.owner
            && let Some(ids) = self.by_owner.get_mut(o)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_owner.remove(o);
            }
        }
        for (k, v) in &p.labels {
            if let Some(by_value) = self.by_label.get_mut(k) {
                if let Some(ids) = by_value.get_mut(v) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        by_value.remove(v);
                    }
                }
                if by_value.is_empty() {
                    self.by_label.remove(k);
                }
            }
        }
    }
}

/// The nodes and the pods placed on them.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub(crate) slots: Vec<Slot>,
    /// By slot, what the filters and scores read most.
    pub(crate) hot: Vec<Hot>,
    /// By slot, the scoring requests (CPU, memory) of the placed pods.
    pub(crate) nonzero: Vec<(i64, i64)>,
    by_name: HashMap<String, u32>,
    free: Vec<u32>,
    /// The slots with a node, in the order nodes were first added.
    pub(crate) live: Vec<u32>,
    pods: Vec<Option<Placed>>,
    pod_ids: HashMap<PodKey, u32>,
    free_pods: Vec<u32>,
    pod_index: PodIndex,
    namespaces: HashMap<String, Labels>,
    services: HashMap<String, Vec<(String, Labels)>>,
    pub(crate) index: Index,
    dirty: bool,
    /// Counts scheduling cycles, to find the match sets used least recently.
    cycle: u64,
    /// Changes whenever a node appears, disappears or changes labels.
    pub(crate) node_epoch: u64,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Self::default()
    }

    /// A snapshot of API nodes and pods (pods without a node or finished are skipped).
    pub fn from_objects<'a>(
        nodes: impl IntoIterator<Item = &'a Node>,
        pods: impl IntoIterator<Item = &'a Pod>,
    ) -> Self {
        let mut s = Self::new();
        for n in nodes {
            s.upsert_node(NodeFacts::from_node(n));
        }
        for p in pods {
            s.add_pod(p);
        }
        s
    }

    /// How many nodes there are.
    pub fn node_count(&self) -> usize {
        self.live.len()
    }

    /// How many pods are placed.
    pub fn pod_count(&self) -> usize {
        self.pod_ids.len()
    }

    /// The names of the nodes.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.live
            .iter()
            .map(|s| self.slots[*s as usize].name.as_str())
    }

    /// What the scheduler knows of node `name`.
    pub fn node(&self, name: &str) -> Option<&NodeFacts> {
        let s = *self.by_name.get(name)?;
        self.slots[s as usize].node.as_ref().map(|n| &n.facts)
    }

    /// How many pods are placed on node `name`.
    pub fn pods_on(&self, name: &str) -> usize {
        self.by_name
            .get(name)
            .map_or(0, |s| self.slots[*s as usize].pods as usize)
    }

    /// The summed requests of the pods on node `name`.
    pub fn requested_on(&self, name: &str) -> Option<&Resources> {
        self.by_name
            .get(name)
            .map(|s| &self.slots[*s as usize].requested)
    }

    /// The node pod `key` is placed on.
    pub fn node_of(&self, key: &PodKey) -> Option<&str> {
        let p = self.placed(*self.pod_ids.get(key)?)?;
        Some(self.slots[p.slot as usize].name.as_str())
    }

    fn placed(&self, id: u32) -> Option<&Placed> {
        self.pods.get(id as usize).and_then(Option::as_ref)
    }

    fn slot_for(&mut self, name: &str) -> u32 {
        if let Some(s) = self.by_name.get(name) {
            return *s;
        }
        let slot = Slot {
            name: name.to_owned(),
            node: None,
            requested: Resources::default(),
            nonzero: (0, 0),
            pods: 0,
            ports: Vec::new(),
        };
        let s = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = slot;
                s
            }
            None => {
                self.slots.push(slot);
                self.hot.push(Hot::default());
                self.nonzero.push((0, 0));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_name.insert(name.to_owned(), s);
        self.sync_hot(s);
        s
    }

    fn sync_hot(&mut self, s: u32) {
        let slot = &self.slots[s as usize];
        self.hot[s as usize] = Hot::of(slot);
        self.nonzero[s as usize] = slot.nonzero;
    }

    /// Adds a node or replaces what is known of it.
    pub fn upsert_node(&mut self, facts: NodeFacts) {
        let s = self.slot_for(&facts.name);
        let slot = &mut self.slots[s as usize];
        match &slot.node {
            Some(old) if old.facts.labels == facts.labels => {}
            Some(_) => {
                self.dirty = true;
                self.node_epoch += 1;
            }
            None => {
                self.live.push(s);
                self.dirty = true;
                self.node_epoch += 1;
            }
        }
        slot.node = Some(NodeState::new(facts));
        self.sync_hot(s);
    }

    /// Adds or updates an API node.
    pub fn upsert_api_node(&mut self, node: &Node) {
        self.upsert_node(NodeFacts::from_node(node));
    }

    /// Removes node `name`. Pods still bound to it keep counting until they are forgotten.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&s) = self.by_name.get(name) else {
            return;
        };
        if self.slots[s as usize].node.take().is_some() {
            self.live.retain(|x| *x != s);
            self.dirty = true;
            self.node_epoch += 1;
        }
        self.sync_hot(s);
        self.free_if_empty(s);
    }

    fn free_if_empty(&mut self, s: u32) {
        let slot = &self.slots[s as usize];
        if slot.node.is_none() && slot.pods == 0 {
            self.by_name.remove(&slot.name);
            self.free.push(s);
        }
    }

    /// Records the labels of namespace `name` (for namespace selectors of affinity terms).
    pub fn set_namespace(&mut self, name: &str, labels: Labels) {
        if self.namespaces.get(name) != Some(&labels) {
            self.namespaces.insert(name.to_owned(), labels);
            self.dirty = true;
        }
    }

    /// Forgets namespace `name`.
    pub fn remove_namespace(&mut self, name: &str) {
        if self.namespaces.remove(name).is_some() {
            self.dirty = true;
        }
    }

    /// Records the selector of Service `namespace/name` (its pods are spread by default); an
    /// empty selector removes it.
    pub fn set_service(&mut self, namespace: &str, name: &str, selector: Labels) {
        let list = self.services.entry(namespace.to_owned()).or_default();
        list.retain(|(n, _)| n != name);
        if !selector.is_empty() {
            list.push((name.to_owned(), selector));
        }
    }

    /// Forgets Service `namespace/name`.
    pub fn remove_service(&mut self, namespace: &str, name: &str) {
        self.set_service(namespace, name, Labels::new());
    }

    /// Places a pod bound in the API: one with a node that has not finished (a finished or
    /// unbound pod is forgotten instead). Returns true if it is placed.
    pub fn add_pod(&mut self, pod: &Pod) -> bool {
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        match node {
            Some(n) if !n.is_empty() && !matches!(phase, Some("Succeeded" | "Failed")) => {
                self.assume(PodInfo::new(pod), n);
                true
            }
            _ => {
                self.forget(&PodKey::of(pod));
                false
            }
        }
    }

    /// True if pod `key` is placed.
    pub fn contains(&self, key: &PodKey) -> bool {
        self.pod_ids.contains_key(key)
    }

    /// Places `pod` on node `node` (replacing an earlier placement of the same pod), as the
    /// scheduler does with a pod it is binding before the API shows it bound.
    pub fn assume(&mut self, pod: PodInfo, node: &str) {
        self.forget(&pod.key);
        let s = self.slot_for(node);
        let slot = &mut self.slots[s as usize];
        slot.requested.add(&pod.requests);
        slot.nonzero.0 += pod.nonzero.0;
        slot.nonzero.1 += pod.nonzero.1;
        slot.pods += 1;
        slot.ports.extend(pod.ports.iter().cloned());
        self.sync_hot(s);
        let mut terms = Vec::new();
        let mut push = |kind, t: &crate::pod::AffinityTerm, weight: i64| {
            let mut key = t.matcher.key();
            key.push('#');
            key.push_str(&t.topology_key);
            key.push_str(&format!("#{kind:?}#{weight}"));
            terms.push(ExistingTerm {
                kind,
                matcher: t.matcher.clone(),
                topology_key: t.topology_key.clone(),
                weight,
                key,
            });
        };
        for t in &pod.anti_required {
            push(TermKind::RequiredAnti, t, 0);
        }
        for t in &pod.affinity_required {
            push(TermKind::RequiredAffinity, t, 0);
        }
        for t in &pod.affinity_preferred {
            push(TermKind::Preferred, t, t.weight);
        }
        for t in &pod.anti_preferred {
            push(TermKind::Preferred, t, -t.weight);
        }
        let placed = Placed {
            slot: s,
            namespace: pod.namespace,
            labels: pod.labels,
            owner: pod.owner,
            requests: pod.requests,
            nonzero: pod.nonzero,
            ports: pod.ports,
            terms,
        };
        if !self.dirty {
            self.count_in_sets(&placed, 1);
            for t in &placed.terms {
                self.count_in_group(t, s, 1);
            }
        }
        let id = match self.free_pods.pop() {
            Some(id) => id,
            None => {
                self.pods.push(None);
                u32::try_from(self.pods.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.pod_index.insert(id, &placed);
        self.pods[id as usize] = Some(placed);
        self.pod_ids.insert(pod.key, id);
    }

    /// Removes pod `key`. Returns true if it was placed.
    pub fn forget(&mut self, key: &PodKey) -> bool {
        let Some(id) = self.pod_ids.remove(key) else {
            return false;
        };
        let Some(placed) = self.pods[id as usize].take() else {
            return false;
        };
        self.free_pods.push(id);
        self.pod_index.remove(id, &placed);
        let s = placed.slot;
        let slot = &mut self.slots[s as usize];
        slot.requested.sub(&placed.requests);
        slot.nonzero.0 -= placed.nonzero.0;
        slot.nonzero.1 -= placed.nonzero.1;
        slot.pods = slot.pods.saturating_sub(1);
        for p in &placed.ports {
            if let Some(i) = slot.ports.iter().position(|x| x == p) {
                slot.ports.swap_remove(i);
            }
        }
        self.sync_hot(s);
        if !self.dirty {
            self.count_in_sets(&placed, -1);
            for t in &placed.terms {
                self.count_in_group(t, s, -1);
            }
        }
        self.free_if_empty(s);
        true
    }

    /// Brings the indexes up to date after node or namespace changes, and bounds their size.
    /// Called at the start of every cycle.
    pub(crate) fn refresh(&mut self) {
        self.cycle += 1;
        if self.index.sets.len() > MAX_SETS {
            self.evict_sets();
        }
        if self.index.groups.len() > MAX_GROUPS
            && self.index.groups.iter().filter(|g| g.total == 0).count() > MAX_GROUPS / 2
        {
            self.dirty = true;
        }
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.index = Index::default();
        for id in 0..self.pods.len() {
            let Some(p) = &self.pods[id] else {
                continue;
            };
            if p.terms.is_empty() {
                continue;
            }
            let (terms, s) = (p.terms.clone(), p.slot);
            for t in &terms {
                self.count_in_group(t, s, 1);
            }
        }
    }

    /// Keeps the most recently used half of the match sets.
    fn evict_sets(&mut self) {
        let idx = &mut self.index;
        let mut sets = std::mem::take(&mut idx.sets);
        sets.sort_by_key(|s| std::cmp::Reverse(s.last_used));
        sets.truncate(MAX_SETS / 2);
        idx.set_by_key.clear();
        idx.set_anchors = Anchors::default();
        for (id, set) in sets.iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            idx.set_by_key.insert(set.matcher.key(), id);
            idx.set_anchors.insert(set.matcher.anchor(), id);
        }
        idx.sets = sets;
    }

    /// The id of the topology of label `key`, built on first use.
    pub(crate) fn topology(&mut self, key: &str) -> u32 {
        if let Some(t) = self.index.topo_by_key.get(key) {
            return *t;
        }
        let mut domain_of = vec![NO_DOMAIN; self.slots.len()];
        let mut names: Vec<String> = Vec::new();
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut nodes_with_key = 0;
        for &s in &self.live {
            let Some(n) = &self.slots[s as usize].node else {
                continue;
            };
            let Some(v) = n.facts.labels.get(key) else {
                continue;
            };
            nodes_with_key += 1;
            let id = *ids.entry(v.as_str()).or_insert_with(|| {
                names.push(v.clone());
                u32::try_from(names.len() - 1).unwrap_or(NO_DOMAIN)
            });
            domain_of[s as usize] = id;
        }
        let id = u32::try_from(self.index.topologies.len()).unwrap_or(u32::MAX);
        self.index.topologies.push(Topology {
            domain_of,
            names,
            nodes_with_key,
        });
        self.index.topo_by_key.insert(key.to_owned(), id);
        id
    }

    /// The ids of the placed pods `matcher` may accept.
    fn candidate_pods(&self, matcher: &Matcher) -> Vec<u32> {
        let pi = &self.pod_index;
        match matcher.anchor() {
            Anchor::Owner(o) => pi
                .by_owner
                .get(&o)
                .map(|ids| ids.iter().copied().collect())
                .unwrap_or_default(),
            Anchor::Label(k, values) => {
                let Some(by_value) = pi.by_label.get(&k) else {
                    return Vec::new();
                };
                values
                    .iter()
                    .filter_map(|v| by_value.get(v))
                    .flat_map(|ids| ids.iter().copied())
                    .collect()
            }
            Anchor::None => (0..self.pods.len())
                .filter(|id| self.pods[*id].is_some())
                .map(|id| u32::try_from(id).unwrap_or(u32::MAX))
                .collect(),
        }
    }

    /// The id of the match set of `matcher`, built on first use from the placed pods.
    pub(crate) fn match_set(&mut self, matcher: &Matcher) -> u32 {
        let key = matcher.key();
        if let Some(id) = self.index.set_by_key.get(&key) {
            self.index.sets[*id as usize].last_used = self.cycle;
            return *id;
        }
        let mut per_node: HashMap<u32, u32> = HashMap::new();
        for pid in self.candidate_pods(matcher) {
            let Some(p) = self.placed(pid) else {
                continue;
            };
            if matcher.matches(&p.view(), self.namespaces.get(&p.namespace)) {
                *per_node.entry(p.slot).or_insert(0) += 1;
            }
        }
        let id = u32::try_from(self.index.sets.len()).unwrap_or(u32::MAX);
        self.index.set_anchors.insert(matcher.anchor(), id);
        self.index.sets.push(MatchSet {
            matcher: matcher.clone(),
            per_node,
            by_topo: Vec::new(),
            last_used: self.cycle,
        });
        self.index.set_by_key.insert(key, id);
        id
    }

    /// Makes the per-domain counts of set `set` for topology `topo` available.
    pub(crate) fn set_counts(&mut self, set: u32, topo: u32) {
        let Index {
            sets, topologies, ..
        } = &mut self.index;
        let ms = &mut sets[set as usize];
        if ms.by_topo.iter().any(|(t, _)| *t == topo) {
            return;
        }
        let t = &topologies[topo as usize];
        let mut counts = vec![0u32; t.names.len()];
        for (slot, n) in &ms.per_node {
            if let Some(d) = t.domain(*slot) {
                counts[d as usize] += n;
            }
        }
        ms.by_topo.push((topo, counts));
    }

    fn count_in_sets(&mut self, p: &Placed, delta: i32) {
        let Index {
            sets,
            topologies,
            set_anchors,
            ..
        } = &mut self.index;
        let ns_labels = self.namespaces.get(&p.namespace);
        let view = p.view();
        set_anchors.candidates(&view, |id| {
            let ms = &mut sets[id as usize];
            if !ms.matcher.matches(&view, ns_labels) {
                return;
            }
            let n = ms.per_node.entry(p.slot).or_insert(0);
            *n = n.saturating_add_signed(delta);
            if *n == 0 {
                ms.per_node.remove(&p.slot);
            }
            for (topo, counts) in &mut ms.by_topo {
                if let Some(d) = topologies[*topo as usize].domain(p.slot) {
                    let c = &mut counts[d as usize];
                    *c = c.saturating_add_signed(delta);
                }
            }
        });
    }

    fn count_in_group(&mut self, t: &ExistingTerm, slot: u32, delta: i32) {
        let topo = self.topology(&t.topology_key);
        let id = match self.index.group_by_key.get(&t.key) {
            Some(id) => *id,
            None => {
                let n = self.index.topologies[topo as usize].names.len();
                self.index.groups.push(Group {
                    matcher: t.matcher.clone(),
                    topo,
                    kind: t.kind,
                    weight: t.weight,
                    counts: vec![0; n],
                    total: 0,
                });
                let id = u32::try_from(self.index.groups.len() - 1).unwrap_or(u32::MAX);
                self.index.group_by_key.insert(t.key.clone(), id);
                self.index.group_anchors.insert(t.matcher.anchor(), id);
                id
            }
        };
        let Some(d) = self.index.topologies[topo as usize].domain(slot) else {
            return;
        };
        let g = &mut self.index.groups[id as usize];
        let c = &mut g.counts[d as usize];
        *c = c.saturating_add_signed(delta);
        g.total = g.total.saturating_add_signed(delta);
    }

    /// Calls `f` with the id of every group of placed pods' terms that may match `pod`.
    pub(crate) fn candidate_groups(&self, pod: &PodView<'_>, f: impl FnMut(u32)) {
        self.index.group_anchors.candidates(pod, f);
    }

    /// The labels of namespace `ns`, if known.
    pub(crate) fn namespace_labels(&self, ns: &str) -> Option<&Labels> {
        self.namespaces.get(ns)
    }

    /// The matcher of Kubernetes' default spreading for `pod`: pods selected by every
    /// Service that selects it and, if a ReplicaSet, ReplicationController or StatefulSet
    /// controls it, controlled by the same object. `None` when neither applies.
    pub(crate) fn default_spread_matcher(&self, pod: &PodInfo) -> Option<Matcher> {
        let mut merged = Labels::new();
        for (_, sel) in self.services.get(&pod.namespace).into_iter().flatten() {
            if set_selector(sel).is_some_and(|s| matches_labels(&s, &pod.labels)) {
                merged.extend(sel.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let owner = pod.owner.clone().filter(|_| pod.spread_by_owner);
        if merged.is_empty() && owner.is_none() {
            return None;
        }
        Some(Matcher {
            clauses: vec![Clause {
                namespaces: vec![pod.namespace.clone()],
                namespace_selector: None,
                selector: set_selector(&merged).unwrap_or_default(),
            }],
            owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, zone: &str) -> NodeFacts {
        NodeFacts::new(
            name,
            [
                ("kubernetes.io/hostname".to_string(), name.to_string()),
                ("zone".to_string(), zone.to_string()),
            ]
            .into(),
            Resources::cpu_memory(4000, 8 << 30),
            110,
        )
    }

    fn pod(name: &str, app: &str) -> PodInfo {
        PodInfo::new(
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns", "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}},
                    "ports": [{"containerPort": 80, "hostPort": 80}]}]}
            }))
            .unwrap(),
        )
    }

    fn web_matcher() -> Matcher {
        Matcher {
            clauses: vec![Clause {
                namespaces: vec!["ns".into()],
                namespace_selector: None,
                selector: set_selector(&[("app".to_string(), "web".to_string())].into()).unwrap(),
            }],
            owner: None,
        }
    }

    #[test]
    fn assume_and_forget_keep_node_totals() {
        let mut s = Snapshot::new();
        s.upsert_node(node("a", "z1"));
        s.assume(pod("p1", "web"), "a");
        s.assume(pod("p2", "web"), "a");
        assert_eq!(s.pods_on("a"), 2);
        assert_eq!(s.requested_on("a").unwrap().milli_cpu, 200);
        assert_eq!(s.slots[0].ports.len(), 2);
        // Assuming again moves rather than doubles.
        s.assume(pod("p2", "web"), "a");
        assert_eq!(s.pods_on("a"), 2);
        assert!(s.forget(&PodKey::named("ns", "p1")));
        assert!(!s.forget(&PodKey::named("ns", "p1")));
        assert_eq!(s.pods_on("a"), 1);
        assert_eq!(s.requested_on("a").unwrap().milli_cpu, 100);
        assert_eq!(s.slots[0].ports.len(), 1);
        assert_eq!(s.node_of(&PodKey::named("ns", "p2")), Some("a"));
    }

    #[test]
    fn match_sets_follow_assumed_and_forgotten_pods() {
        let mut s = Snapshot::new();
        for (n, z) in [("a", "z1"), ("b", "z1"), ("c", "z2")] {
            s.upsert_node(node(n, z));
        }
        s.assume(pod("p1", "web"), "a");
        s.refresh();
        let set = s.match_set(&web_matcher());
        let zone = s.topology("zone");
        s.set_counts(set, zone);
        assert_eq!(s.index.sets[set as usize].counts(zone), &[1, 0]);
        s.assume(pod("p2", "web"), "c");
        s.assume(pod("p3", "db"), "c");
        assert_eq!(s.index.sets[set as usize].counts(zone), &[1, 1]);
        s.assume(pod("p4", "web"), "b");
        assert_eq!(s.index.sets[set as usize].counts(zone), &[2, 1]);
        s.forget(&PodKey::named("ns", "p1"));
        assert_eq!(s.index.sets[set as usize].counts(zone), &[1, 1]);
        // A label change drops the indexes; they are rebuilt from the pods on next use.
        let mut moved = node("b", "z2");
        moved.allowed_pods = 5;
        s.upsert_node(moved);
        s.refresh();
        let set = s.match_set(&web_matcher());
        let zone = s.topology("zone");
        s.set_counts(set, zone);
        assert_eq!(s.index.sets[set as usize].counts(zone), &[0, 2]);
    }

    #[test]
    fn status_updates_keep_the_indexes() {
        let mut s = Snapshot::new();
        s.upsert_node(node("a", "z1"));
        s.refresh();
        let mut cordoned = node("a", "z1");
        cordoned.unschedulable = true;
        s.upsert_node(cordoned);
        assert!(!s.dirty);
        assert!(s.node("a").unwrap().unschedulable);
    }

    #[test]
    fn pods_on_unknown_nodes_wait_for_them() {
        let mut s = Snapshot::new();
        s.assume(pod("p1", "web"), "later");
        assert_eq!(s.node_count(), 0);
        assert_eq!(s.pods_on("later"), 1);
        s.upsert_node(node("later", "z1"));
        assert_eq!(s.node_count(), 1);
        assert_eq!(s.pods_on("later"), 1);
        s.remove_node("later");
        assert_eq!(s.node_count(), 0);
        assert_eq!(
            s.pods_on("later"),
            1,
            "a removed node's pods count until forgotten"
        );
        s.forget(&PodKey::named("ns", "p1"));
        assert_eq!(s.pods_on("later"), 0);
        assert!(s.by_name.is_empty());
        s.upsert_node(node("again", "z1"));
        assert_eq!(s.slots.len(), 1, "the slot is reused");
    }

    #[test]
    fn api_objects_are_read() {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {"zone": "a"}},
            "spec": {"unschedulable": true, "taints": [
                {"key": "k", "value": "v", "effect": "NoSchedule"},
                {"key": "soft", "effect": "PreferNoSchedule"}]},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "Unknown"}]}
        }))
        .unwrap();
        let f = NodeFacts::from_node(&n);
        assert_eq!(f.allowed_pods, 110);
        assert_eq!(f.allocatable.milli_cpu, 2000);
        assert!(f.unschedulable);
        assert_eq!(f.ready, Readiness::Unknown);
        let st = NodeState::new(f);
        assert_eq!(st.filter_taints.len(), 2);
        assert_eq!(st.filter_taints[1].key, TAINT_UNREACHABLE);
        assert_eq!(st.prefer_taints.len(), 1);

        let bound: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}
        }))
        .unwrap();
        let mut done = bound.clone();
        done.status =
            Some(serde_json::from_value(serde_json::json!({"phase": "Succeeded"})).unwrap());
        let mut s = Snapshot::from_objects([&n], [&bound]);
        assert_eq!(s.pods_on("n1"), 1);
        assert!(!s.add_pod(&done), "a finished pod no longer counts");
        assert_eq!(s.pods_on("n1"), 0);
    }

    #[test]
    fn default_spreading_uses_services_and_the_controller() {
        let mut s = Snapshot::new();
        let p = PodInfo::new(
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web", "v": "1"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "rs", "uid": "rs1", "controller": true}]}
            }))
            .unwrap(),
        );
        let m = s.default_spread_matcher(&p).unwrap();
        assert_eq!(m.owner.as_deref(), Some("rs1"));
        s.set_service("ns", "svc", [("app".to_string(), "web".to_string())].into());
        s.set_service(
            "ns",
            "other",
            [("app".to_string(), "db".to_string())].into(),
        );
        let m = s.default_spread_matcher(&p).unwrap();
        assert_eq!(m.clauses[0].selector.requirements.len(), 1);
        let lone = PodInfo::new(
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "cache"}}
            }))
            .unwrap(),
        );
        assert!(s.default_spread_matcher(&lone).is_none());
    }
}
