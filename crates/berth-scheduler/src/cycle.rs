//! One scheduling cycle's pre-computation, Kubernetes' PreFilter and PreScore: which match
//! sets and topologies the pod's rules need ([`Plan`], made while the snapshot may still build
//! indexes), then the counts per domain, the global minimums of spread constraints and the
//! terms of placed pods that concern this pod ([`State`], read-only, shared by the filters and
//! the scores).
//!
//! Owns that preparation. Must not judge individual nodes (that is [`crate::filter`] and
//! [`crate::score`]).

use std::borrow::Cow;

use k8s_openapi::api::core::v1::Toleration;

use crate::pod::{LABEL_HOSTNAME, LABEL_ZONE, PodInfo};
use crate::selector::{Effect, Matcher, TaintRef, tolerated};
use crate::snapshot::{Group, Snapshot, TAINT_UNSCHEDULABLE, TermKind, Topology};

/// Kubernetes' system default spread constraints: by host, max skew 3; by zone, max skew 5;
/// both `ScheduleAnyway`.
const DEFAULT_CONSTRAINTS: [(&str, i64); 2] = [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)];

#[derive(Debug, Clone)]
pub(crate) struct SpreadPlan {
    set: u32,
    topo: u32,
    max_skew: i64,
    self_match: bool,
    min_domains: Option<i64>,
    honor_node_affinity: bool,
    honor_taints: bool,
    hostname: bool,
}

/// The ids of what a pod's rules need, prepared in the snapshot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    hard: Vec<SpreadPlan>,
    soft: Vec<SpreadPlan>,
    soft_require_all: bool,
    affinity: Option<(Vec<(u32, u32)>, bool)>,
    anti: Vec<(u32, u32)>,
    existing_anti: Vec<u32>,
    preferred: Vec<(u32, u32, i64)>,
    existing_scored: Vec<u32>,
}

impl Plan {
    /// Prepares the indexes `pod` needs.
    pub fn new(snap: &mut Snapshot, pod: &PodInfo, default_spreading: bool) -> Self {
        let mut plan = Plan::default();
        let ns_labels = snap.namespace_labels(&pod.namespace).cloned();
        let spread_plan = |snap: &mut Snapshot,
                           m: &Matcher,
                           key: &str,
                           max_skew: i64,
                           self_match: bool,
                           min_domains: Option<i64>,
                           honor: (bool, bool)| {
            let set = snap.match_set(m);
            let topo = snap.topology(key);
            snap.set_counts(set, topo);
            SpreadPlan {
                set,
                topo,
                max_skew,
                self_match,
                min_domains,
                honor_node_affinity: honor.0,
                honor_taints: honor.1,
                hostname: key == LABEL_HOSTNAME,
            }
        };
        if !pod.spread.is_empty() {
            plan.soft_require_all = true;
            for c in &pod.spread {
                let p = spread_plan(
                    snap,
                    &c.matcher,
                    &c.topology_key,
                    c.max_skew,
                    c.self_match,
                    c.min_domains,
                    (c.honor_node_affinity, c.honor_taints),
                );
                if c.hard {
                    plan.hard.push(p);
                } else {
                    plan.soft.push(p);
                }
            }
        } else if default_spreading && let Some(m) = snap.default_spread_matcher(pod) {
            for (key, skew) in DEFAULT_CONSTRAINTS {
                let p = spread_plan(snap, &m, key, skew, false, None, (true, false));
                plan.soft.push(p);
            }
        }
        if !pod.affinity_required.is_empty() {
            let all = Matcher {
                clauses: pod
                    .affinity_required
                    .iter()
                    .flat_map(|t| t.matcher.clauses.iter().cloned())
                    .collect(),
                owner: None,
            };
            let set = snap.match_set(&all);
            let mut terms = Vec::new();
            for t in &pod.affinity_required {
                let topo = snap.topology(&t.topology_key);
                snap.set_counts(set, topo);
                terms.push((set, topo));
            }
            let self_all = all.matches(&pod.view(), ns_labels.as_ref());
            plan.affinity = Some((terms, self_all));
        }
        for t in &pod.anti_required {
            let set = snap.match_set(&t.matcher);
            let topo = snap.topology(&t.topology_key);
            snap.set_counts(set, topo);
            plan.anti.push((set, topo));
        }
        for (t, sign) in pod
            .affinity_preferred
            .iter()
            .map(|t| (t, 1))
            .chain(pod.anti_preferred.iter().map(|t| (t, -1)))
        {
            let set = snap.match_set(&t.matcher);
            let topo = snap.topology(&t.topology_key);
            snap.set_counts(set, topo);
            plan.preferred.push((set, topo, sign * t.weight));
        }
        let view = pod.view();
        let groups = &snap.index.groups;
        snap.candidate_groups(&view, |id| {
            let g = &groups[id as usize];
            if g.total == 0 || !g.matcher.matches(&view, ns_labels.as_ref()) {
                return;
            }
            if g.kind == TermKind::RequiredAnti {
                plan.existing_anti.push(id);
            } else {
                plan.existing_scored.push(id);
            }
        });
        plan
    }
}

/// A spread constraint with its counts per domain and global minimum.
pub(crate) struct Spread<'a> {
    pub topo: &'a Topology,
    pub counts: Cow<'a, [u32]>,
    pub max_skew: i64,
    pub self_match: i64,
    pub min: i64,
    pub hostname: bool,
}

impl Spread<'_> {
    /// The matching pods in the domain of `slot`, or `None` if the node lacks the key.
    pub fn count(&self, slot: u32) -> Option<i64> {
        let d = self.topo.domain(slot)?;
        Some(i64::from(self.counts.get(d as usize).copied().unwrap_or(0)))
    }
}

/// A topology and counts per domain, with a weight (for scores).
pub(crate) struct Counted<'a> {
    pub topo: &'a Topology,
    pub counts: &'a [u32],
    pub weight: i64,
}

impl Counted<'_> {
    /// The count in the domain of `slot`, or `None` if the node lacks the key.
    pub fn count(&self, slot: u32) -> Option<u32> {
        let d = self.topo.domain(slot)?;
        Some(self.counts.get(d as usize).copied().unwrap_or(0))
    }
}

/// Everything the filters and scores read in one cycle.
pub(crate) struct State<'a> {
    pub snap: &'a Snapshot,
    pub pod: &'a PodInfo,
    pub hard: Vec<Spread<'a>>,
    pub soft: Vec<Spread<'a>>,
    pub soft_require_all: bool,
    /// Required affinity: each term's counts of pods matching all terms, whether there is
    /// none at all, and whether the pod matches its own terms.
    pub affinity: Option<(Vec<Counted<'a>>, bool, bool)>,
    pub anti: Vec<Counted<'a>>,
    pub existing_anti: Vec<Counted<'a>>,
    /// Preferred terms of the pod and terms of placed pods that score it.
    pub scored_terms: Vec<Counted<'a>>,
    /// Tolerations that can tolerate `PreferNoSchedule` taints.
    pub prefer_tolerations: Vec<&'a Toleration>,
    /// By slot, whether the node matches the pod's node selector and required node affinity
    /// (`None` when the pod has neither).
    pub node_ok: Option<&'a [bool]>,
    /// The pod tolerates the taint of a cordoned node.
    pub tolerates_unschedulable: bool,
}

impl<'a> State<'a> {
    pub fn new(
        snap: &'a Snapshot,
        pod: &'a PodInfo,
        plan: &Plan,
        hard_pod_affinity_weight: i64,
        node_ok: Option<&'a [bool]>,
    ) -> Self {
        let idx = &snap.index;
        let hard_keys: Vec<u32> = plan.hard.iter().map(|p| p.topo).collect();
        let soft_keys: Vec<u32> = plan.soft.iter().map(|p| p.topo).collect();
        let hard = plan
            .hard
            .iter()
            .map(|p| spread(snap, pod, node_ok, p, &hard_keys, true))
            .collect();
        let soft = plan
            .soft
            .iter()
            .map(|p| spread(snap, pod, node_ok, p, &soft_keys, plan.soft_require_all))
            .collect();
        let counted = |set: u32, topo: u32, weight: i64| Counted {
            topo: &idx.topologies[topo as usize],
            counts: idx.sets[set as usize].counts(topo),
            weight,
        };
        let of_group = |g: &'a Group, weight: i64| Counted {
            topo: &idx.topologies[g.topo as usize],
            counts: &g.counts,
            weight,
        };
        let affinity = plan.affinity.as_ref().map(|(terms, self_all)| {
            let terms: Vec<Counted<'a>> = terms.iter().map(|(s, t)| counted(*s, *t, 0)).collect();
            let none = terms.iter().all(|c| c.counts.iter().all(|n| *n == 0));
            (terms, none, *self_all)
        });
        let mut scored_terms: Vec<Counted<'a>> = plan
            .preferred
            .iter()
            .map(|(s, t, w)| counted(*s, *t, *w))
            .collect();
        for id in &plan.existing_scored {
            let g = &idx.groups[*id as usize];
            let w = match g.kind {
                TermKind::RequiredAffinity => hard_pod_affinity_weight,
                _ => g.weight,
            };
            if w != 0 {
                scored_terms.push(of_group(g, w));
            }
        }
        State {
            snap,
            pod,
            hard,
            soft,
            soft_require_all: plan.soft_require_all,
            affinity,
            anti: plan.anti.iter().map(|(s, t)| counted(*s, *t, 0)).collect(),
            existing_anti: plan
                .existing_anti
                .iter()
                .map(|id| of_group(&idx.groups[*id as usize], 0))
                .collect(),
            scored_terms,
            prefer_tolerations: pod
                .tolerations
                .iter()
                .filter(|t| {
                    matches!(
                        t.effect.as_deref(),
                        None | Some("") | Some("PreferNoSchedule")
                    )
                })
                .collect(),
            node_ok,
            tolerates_unschedulable: tolerated(
                &pod.tolerations,
                &TaintRef::new(TAINT_UNSCHEDULABLE, "", Effect::NoSchedule),
            ),
        }
    }

    /// True if the node in `slot` matches the pod's node selector and required node affinity.
    pub fn node_matches(&self, slot: u32) -> bool {
        match self.node_ok {
            Some(ok) => ok.get(slot as usize).copied().unwrap_or(false),
            None => true,
        }
    }
}

/// By slot, whether each node matches `pod`'s node selector and required node affinity.
pub(crate) fn node_matches(snap: &Snapshot, pod: &PodInfo, out: &mut Vec<bool>) {
    out.clear();
    out.extend(snap.slots.iter().map(|s| {
        s.node
            .as_ref()
            .is_some_and(|n| pod.node_matches(&n.facts.name, &n.facts.labels))
    }));
}

/// The first `NoSchedule`/`NoExecute` taint of the node in `slot` that `tols` do not tolerate.
pub(crate) fn first_untolerated<'s>(
    snap: &'s Snapshot,
    slot: u32,
    tols: &[Toleration],
) -> Option<&'s TaintRef> {
    let node = snap.slots[slot as usize].node.as_ref()?;
    node.filter_taints.iter().find(|t| {
        debug_assert!(t.effect != Effect::PreferNoSchedule);
        !tolerated(tols, t)
    })
}

/// The counts and minimum of one spread constraint: straight from the match set when every
/// node counts, else by visiting every node that passes the constraint's node inclusion
/// policies and has all the keys `keys` (when `require_all`).
fn spread<'a>(
    snap: &'a Snapshot,
    pod: &PodInfo,
    node_ok: Option<&[bool]>,
    p: &SpreadPlan,
    keys: &[u32],
    require_all: bool,
) -> Spread<'a> {
    let idx = &snap.index;
    let topo = &idx.topologies[p.topo as usize];
    let set = &idx.sets[p.set as usize];
    let live = snap.live.len();
    let by_affinity = p.honor_node_affinity && pod.has_node_constraints();
    let all_keyed = !require_all
        || keys
            .iter()
            .all(|k| idx.topologies[*k as usize].nodes_with_key == live);
    let (counts, domains, min) = if !by_affinity && !p.honor_taints && all_keyed {
        let counts = set.counts(p.topo);
        let min = counts.iter().copied().min().unwrap_or(0);
        (Cow::Borrowed(counts), counts.len(), i64::from(min))
    } else {
        let mut counts = vec![0u32; topo.names.len()];
        let mut present = vec![false; topo.names.len()];
        for &s in &snap.live {
            if require_all
                && !keys
                    .iter()
                    .all(|k| idx.topologies[*k as usize].domain(s).is_some())
            {
                continue;
            }
            let Some(d) = topo.domain(s) else {
                continue;
            };
            if by_affinity && !node_ok.is_none_or(|ok| ok.get(s as usize).copied().unwrap_or(false))
            {
                continue;
            }
            if p.honor_taints && first_untolerated(snap, s, &pod.tolerations).is_some() {
                continue;
            }
            present[d as usize] = true;
            counts[d as usize] += set.per_node.get(&s).copied().unwrap_or(0);
        }
        let domains = present.iter().filter(|p| **p).count();
        let min = counts
            .iter()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(c, _)| *c)
            .min()
            .unwrap_or(0);
        (Cow::Owned(counts), domains, i64::from(min))
    };
    let min = match p.min_domains {
        Some(m) if (domains as i64) < m => 0,
        _ => min,
    };
    Spread {
        topo,
        counts,
        max_skew: p.max_skew,
        self_match: i64::from(p.self_match),
        min,
        hostname: p.hostname,
    }
}
