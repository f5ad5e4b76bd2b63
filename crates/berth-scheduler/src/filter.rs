//! The filters of Kubernetes' default profile, in its order: NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread,
//! InterPodAffinity. A node fails at the first filter that rejects it, with that filter's
//! reasons (NodeResourcesFit may give several); the reasons of all nodes make the
//! unschedulable message.
//!
//! Owns the per-node checks and Kubernetes' reason strings. Must not rank nodes.

use crate::cycle::State;
use crate::selector::tolerated;

/// Why one node was rejected, Kubernetes' reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason<'a> {
    /// NodeUnschedulable: cordoned and not tolerated.
    Unschedulable,
    /// TaintToleration: the first untolerated `NoSchedule`/`NoExecute` taint.
    Taint(&'a str, &'a str),
    /// NodeAffinity: the node selector or required node affinity does not match.
    NodeAffinity,
    /// NodePorts.
    Ports,
    /// NodeResourcesFit: no room for one more pod.
    TooManyPods,
    /// NodeResourcesFit: not enough of a resource.
    Insufficient(&'a str),
    /// PodTopologySpread: the node lacks a constraint's topology key.
    SpreadLabel,
    /// PodTopologySpread: the skew would exceed the maximum.
    Spread,
    /// InterPodAffinity: the pod's required affinity.
    Affinity,
    /// InterPodAffinity: the pod's required anti-affinity.
    AntiAffinity,
    /// InterPodAffinity: a placed pod's required anti-affinity.
    ExistingAntiAffinity,
}

impl Reason<'_> {
    /// The message, as Kubernetes' plugins word it.
    pub fn message(&self) -> String {
        match self {
            Reason::Unschedulable => "node(s) were unschedulable".into(),
            Reason::Taint(k, v) => format!("node(s) had untolerated taint {{{k}: {v}}}"),
            Reason::NodeAffinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Reason::Ports => "node(s) didn't have free ports for the requested pod ports".into(),
            Reason::TooManyPods => "Too many pods".into(),
            Reason::Insufficient(r) => format!("Insufficient {r}"),
            Reason::SpreadLabel => {
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into()
            }
            Reason::Spread => "node(s) didn't match pod topology spread constraints".into(),
            Reason::Affinity => "node(s) didn't match pod affinity rules".into(),
            Reason::AntiAffinity => "node(s) didn't match pod anti-affinity rules".into(),
            Reason::ExistingAntiAffinity => {
                "node(s) didn't satisfy existing pods anti-affinity rules".into()
            }
        }
    }
}

/// Why a node was rejected: one reason, or the resources that do not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure<'a> {
    One(Reason<'a>),
    Resources {
        too_many_pods: bool,
        cpu: bool,
        memory: bool,
        ephemeral_storage: bool,
        /// Bit `i`: the pod's `i`-th scalar request does not fit (the first 64).
        scalars: u64,
    },
}

/// Counts of each reason over the rejected nodes.
#[derive(Debug, Default)]
pub(crate) struct Histogram<'a> {
    counts: Vec<(Reason<'a>, usize)>,
}

impl<'a> Histogram<'a> {
    fn bump(&mut self, r: Reason<'a>) {
        match self.counts.iter_mut().find(|(x, _)| *x == r) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((r, 1)),
        }
    }

    /// Counts the reasons of one rejected node.
    pub fn add(&mut self, f: Failure<'a>, state: &State<'a>) {
        match f {
            Failure::One(r) => self.bump(r),
            Failure::Resources {
                too_many_pods,
                cpu,
                memory,
                ephemeral_storage,
                scalars,
            } => {
                if too_many_pods {
                    self.bump(Reason::TooManyPods);
                }
                if cpu {
                    self.bump(Reason::Insufficient("cpu"));
                }
                if memory {
                    self.bump(Reason::Insufficient("memory"));
                }
                if ephemeral_storage {
                    self.bump(Reason::Insufficient("ephemeral-storage"));
                }
                for (i, (name, _)) in state.pod.requests.scalars.iter().enumerate().take(64) {
                    if scalars & (1 << i) != 0 {
                        self.bump(Reason::Insufficient(name));
                    }
                }
            }
        }
    }

    /// `"<count> <reason>"` for each reason, sorted as strings (Kubernetes'
    /// `sortReasonsHistogram`).
    pub fn sorted(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> =
            self.counts.iter().map(|(r, n)| (r.message(), *n)).collect();
        v.sort_by(|a, b| format!("{} {}", a.1, a.0).cmp(&format!("{} {}", b.1, b.0)));
        v
    }
}

impl<'a> State<'a> {
    /// Runs every filter on the node in `slot`.
    pub fn filter(&self, slot: u32) -> Result<(), Failure<'a>> {
        let snap = self.snap;
        let pod = self.pod;
        let h = &snap.hot[slot as usize];
        if !h.live {
            return Err(Failure::One(Reason::Unschedulable));
        }

        // NodeUnschedulable.
        if h.unschedulable && !self.tolerates_unschedulable {
            return Err(Failure::One(Reason::Unschedulable));
        }

        // TaintToleration.
        if h.filter_taints {
            let s = &snap.slots[slot as usize];
            if let Some(t) = s.node.as_ref().and_then(|n| {
                n.filter_taints
                    .iter()
                    .find(|t| !tolerated(&pod.tolerations, t))
            }) {
                return Err(Failure::One(Reason::Taint(&t.key, &t.value)));
            }
        }

        // NodeAffinity.
        if !self.node_matches(slot) {
            return Err(Failure::One(Reason::NodeAffinity));
        }

        // NodePorts.
        if h.ports && !pod.ports.is_empty() {
            let used = &snap.slots[slot as usize].ports;
            if pod
                .ports
                .iter()
                .any(|want| used.iter().any(|u| u.conflicts(want)))
            {
                return Err(Failure::One(Reason::Ports));
            }
        }

        // NodeResourcesFit.
        let too_many_pods = h.pods >= h.allowed_pods;
        let req = &pod.requests;
        let short = |want: i64, have: i64, taken: i64| want > 0 && want > have - taken;
        let (mut cpu, mut memory, mut ephemeral_storage, mut scalars) = (false, false, false, 0);
        if !req.is_zero() {
            cpu = short(req.milli_cpu, h.alloc_cpu, h.req_cpu);
            memory = short(req.memory, h.alloc_memory, h.req_memory);
            ephemeral_storage = short(req.ephemeral_storage, h.alloc_ephemeral, h.req_ephemeral);
            if !req.scalars.is_empty() {
                let s = &snap.slots[slot as usize];
                let alloc = s.node.as_ref().map(|n| &n.facts.allocatable);
                for (i, (name, want)) in req.scalars.iter().enumerate().take(64) {
                    let have = alloc.map_or(0, |a| a.scalar(name));
                    if short(*want, have, s.requested.scalar(name)) {
                        scalars |= 1 << i;
                    }
                }
            }
        }
        if too_many_pods || cpu || memory || ephemeral_storage || scalars != 0 {
            return Err(Failure::Resources {
                too_many_pods,
                cpu,
                memory,
                ephemeral_storage,
                scalars,
            });
        }

        // PodTopologySpread.
        for c in &self.hard {
            let Some(count) = c.count(slot) else {
                return Err(Failure::One(Reason::SpreadLabel));
            };
            if count + c.self_match - c.min > c.max_skew {
                return Err(Failure::One(Reason::Spread));
            }
        }

        // InterPodAffinity.
        if let Some((terms, none, self_all)) = &self.affinity {
            let mut pods_exist = true;
            for t in terms {
                match t.count(slot) {
                    None => return Err(Failure::One(Reason::Affinity)),
                    Some(0) => pods_exist = false,
                    Some(_) => {}
                }
            }
            // The first pod of a group with affinity to itself may go anywhere the keys are.
            if !(pods_exist || (*none && *self_all)) {
                return Err(Failure::One(Reason::Affinity));
            }
        }
        if self
            .anti
            .iter()
            .any(|t| t.count(slot).is_some_and(|n| n > 0))
        {
            return Err(Failure::One(Reason::AntiAffinity));
        }
        if self
            .existing_anti
            .iter()
            .any(|t| t.count(slot).is_some_and(|n| n > 0))
        {
            return Err(Failure::One(Reason::ExistingAntiAffinity));
        }
        Ok(())
    }
}
