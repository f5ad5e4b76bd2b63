//! The scheduling cycle: prepare, filter nodes (from a rotating start, stopping once enough
//! feasible ones are found, as kube-scheduler's `percentageOfNodesToScore` does), score them,
//! and pick the best (ties broken by a seeded random choice); or explain, in Kubernetes' words,
//! why no node fits.
//!
//! Owns the cycle and the unschedulable message. Must not change the snapshot beyond its
//! indexes: placing the pod (`Snapshot::assume`) is the caller's decision.

use std::fmt;

use crate::cycle::{Plan, State};
use crate::filter::Histogram;
use crate::pod::PodInfo;
use crate::snapshot::Snapshot;

/// Below this many nodes, every node is considered (Kubernetes' `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The least share of nodes the adaptive rule considers (`minFeasibleNodesPercentageToFind`).
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Settings of the scheduler.
#[derive(Debug, Clone)]
pub struct Config {
    /// The share of nodes (in percent) to find feasible before scoring; 0 is Kubernetes'
    /// adaptive default (50% less 1% per 125 nodes, at least 5%, at least 100 nodes), 100 is
    /// every node.
    pub percentage_of_nodes_to_score: u32,
    /// The seed of the choice between equally scored nodes.
    pub seed: u64,
    /// The score a placed pod's required affinity gives to pods it matches
    /// (`hardPodAffinityWeight`, 1 by default).
    pub hard_pod_affinity_weight: i64,
    /// Spread the pods of a workload (same ReplicaSet, ReplicationController or StatefulSet, or
    /// selected by the same Services) over nodes and zones when they have no spread
    /// constraints of their own (Kubernetes' system default constraints).
    pub default_spreading: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            percentage_of_nodes_to_score: 0,
            seed: 0x5eed_b347,
            hard_pod_affinity_weight: 1,
            default_spreading: true,
        }
    }
}

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The chosen node.
    pub node: String,
    /// How many nodes were filtered.
    pub evaluated: usize,
    /// How many of them passed and were scored.
    pub feasible: usize,
}

/// Why a pod fits on no node. Its message is Kubernetes' `FitError`:
/// `0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu.`
///
/// Kubernetes 1.33 goes on with a `preemption: ...` sentence from its preemption plugin.
/// Berth does not preempt pods, so the message ends after the filter reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    /// How many nodes there are.
    pub nodes: usize,
    /// Each reason and how many nodes gave it, in Kubernetes' order.
    pub reasons: Vec<(String, usize)>,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("no nodes available to schedule pods");
        }
        write!(f, "0/{} nodes are available:", self.nodes)?;
        if !self.reasons.is_empty() {
            let parts: Vec<String> = self
                .reasons
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            write!(f, " {}.", parts.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// How many feasible nodes to find among `nodes` before scoring.
pub fn feasible_nodes_to_find(nodes: usize, percentage: u32) -> usize {
    if nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return nodes;
    }
    let mut pct = percentage as usize;
    if pct == 0 {
        pct = 50usize
            .saturating_sub(nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE);
    }
    let n = nodes * pct.min(100) / 100;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Places pods, one at a time, on a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: Config,
    rng: u64,
    next_start: usize,
    feasible: Vec<u32>,
    total: Vec<i64>,
    buf: Vec<i64>,
    /// Which nodes match the last node selector and affinity seen (its key, the snapshot's
    /// node epoch), reused while pods of one workload come one after the other.
    node_ok: (Option<String>, u64, Vec<bool>),
}

impl Scheduler {
    /// A scheduler with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            rng: config.seed | 1,
            config,
            next_start: 0,
            feasible: Vec::new(),
            total: Vec::new(),
            buf: Vec::new(),
            node_ok: (None, 0, Vec::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn random_below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (r % n as u64) as usize
    }

    /// Takes the node-matching cache out, filled for `pod` (`None` if it has no node rules).
    fn take_node_ok(&mut self, snap: &Snapshot, pod: &PodInfo) -> Option<Vec<bool>> {
        let key = pod.node_key.as_ref()?;
        let (cached_key, epoch, mut ok) = std::mem::take(&mut self.node_ok);
        if cached_key.as_ref() != Some(key)
            || epoch != snap.node_epoch
            || ok.len() != snap.slots.len()
        {
            crate::cycle::node_matches(snap, pod, &mut ok);
        }
        self.node_ok = (Some(key.clone()), snap.node_epoch, Vec::new());
        Some(ok)
    }

    /// Chooses a node for `pod`, or says why none fits. The snapshot's indexes may grow; the
    /// pod is not placed (call [`Snapshot::assume`] with the result).
    pub fn schedule(&mut self, snap: &mut Snapshot, pod: &PodInfo) -> Result<Placement, FitError> {
        snap.refresh();
        let n = snap.live.len();
        if n == 0 {
            return Err(FitError {
                nodes: 0,
                reasons: Vec::new(),
            });
        }
        let plan = Plan::new(snap, pod, self.config.default_spreading);
        let snap: &Snapshot = snap;
        let node_ok = self.take_node_ok(snap, pod);
        let state = State::new(
            snap,
            pod,
            &plan,
            self.config.hard_pod_affinity_weight,
            node_ok.as_deref(),
        );
        let to_find = feasible_nodes_to_find(n, self.config.percentage_of_nodes_to_score);
        let mut feasible = std::mem::take(&mut self.feasible);
        feasible.clear();
        let mut histogram = Histogram::default();
        let mut evaluated = 0;
        for i in 0..n {
            let s = snap.live[(self.next_start + i) % n];
            evaluated += 1;
            match state.filter(s) {
                Ok(()) => {
                    feasible.push(s);
                    if feasible.len() >= to_find {
                        break;
                    }
                }
                Err(f) => histogram.add(f, &state),
            }
        }
        self.next_start = (self.next_start + evaluated) % n;
        let result = match feasible.len() {
            0 => Err(FitError {
                nodes: n,
                reasons: histogram.sorted(),
            }),
            1 => Ok(feasible[0]),
            _ => {
                let mut total = std::mem::take(&mut self.total);
                let mut buf = std::mem::take(&mut self.buf);
                state.score(&feasible, &mut total, &mut buf);
                let mut best = 0;
                let mut ties = 1;
                for i in 1..feasible.len() {
                    if total[i] > total[best] {
                        best = i;
                        ties = 1;
                    } else if total[i] == total[best] {
                        ties += 1;
                        if self.random_below(ties) == 0 {
                            best = i;
                        }
                    }
                }
                self.total = total;
                self.buf = buf;
                Ok(feasible[best])
            }
        };
        let feasible_count = feasible.len();
        self.feasible = feasible;
        drop(state);
        if let Some(ok) = node_ok {
            self.node_ok.2 = ok;
        }
        result.map(|slot| Placement {
            node: snap.slots[slot as usize].name.clone(),
            evaluated,
            feasible: feasible_count,
        })
    }

    /// The score of every node that passes the filters, by name, highest first (for tests
    /// and diagnostics; every node is considered).
    pub fn scores(&mut self, snap: &mut Snapshot, pod: &PodInfo) -> Vec<(String, i64)> {
        snap.refresh();
        let plan = Plan::new(snap, pod, self.config.default_spreading);
        let snap: &Snapshot = snap;
        let node_ok = self.take_node_ok(snap, pod);
        let state = State::new(
            snap,
            pod,
            &plan,
            self.config.hard_pod_affinity_weight,
            node_ok.as_deref(),
        );
        let feasible: Vec<u32> = snap
            .live
            .iter()
            .copied()
            .filter(|s| state.filter(*s).is_ok())
            .collect();
        let mut total = Vec::new();
        state.score(&feasible, &mut total, &mut Vec::new());
        let mut out: Vec<(String, i64)> = feasible
            .iter()
            .zip(total)
            .map(|(s, t)| (snap.slots[*s as usize].name.clone(), t))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_share_follows_kubernetes() {
        assert_eq!(feasible_nodes_to_find(50, 0), 50);
        assert_eq!(feasible_nodes_to_find(100, 0), 100);
        assert_eq!(feasible_nodes_to_find(1000, 0), 420);
        assert_eq!(feasible_nodes_to_find(5000, 0), 500);
        assert_eq!(feasible_nodes_to_find(20_000, 0), 1000);
        assert_eq!(feasible_nodes_to_find(5000, 100), 5000);
        assert_eq!(feasible_nodes_to_find(500, 1), 100);
    }

    #[test]
    fn fit_error_message() {
        let e = FitError {
            nodes: 3,
            reasons: vec![
                ("node(s) had untolerated taint {key: value}".into(), 1),
                ("Insufficient cpu".into(), 2),
            ],
        };
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."
        );
        let none = FitError {
            nodes: 0,
            reasons: vec![],
        };
        assert_eq!(none.to_string(), "no nodes available to schedule pods");
    }
}
