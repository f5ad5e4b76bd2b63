//! The scores of Kubernetes' default profile, each normalised to 0..=100 as its plugin does
//! and weighted as the profile weighs it: TaintToleration 3, NodeAffinity 2, PodTopologySpread
//! 2, InterPodAffinity 2, NodeResourcesFit (LeastAllocated) 1, NodeResourcesBalancedAllocation
//! 1. (ImageLocality, weight 1, has no image data here and scores nothing.)
//!
//! Owns ranking the nodes that passed the filters. Must not reject nodes.

use crate::cycle::State;
use crate::selector::tolerates;

/// The highest score of one plugin.
pub const MAX_NODE_SCORE: i64 = 100;

/// Plugin weights of Kubernetes' default profile.
pub mod weights {
    /// TaintToleration.
    pub const TAINT_TOLERATION: i64 = 3;
    /// NodeAffinity.
    pub const NODE_AFFINITY: i64 = 2;
    /// PodTopologySpread.
    pub const POD_TOPOLOGY_SPREAD: i64 = 2;
    /// InterPodAffinity.
    pub const INTER_POD_AFFINITY: i64 = 2;
    /// NodeResourcesFit.
    pub const NODE_RESOURCES_FIT: i64 = 1;
    /// NodeResourcesBalancedAllocation.
    pub const BALANCED_ALLOCATION: i64 = 1;
}

/// Kubernetes' `DefaultNormalizeScore`: scales so the highest is 100 (or, `reverse`, so the
/// highest is 0 and zeros are 100). All zeros stay zeros (or become 100 when reversed).
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0).max(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// InterPodAffinity's normalisation: `100 * (s - min) / (max - min)`, all zeros when equal.
pub fn min_max_normalize(scores: &mut [i64]) {
    let (Some(min), Some(max)) = (scores.iter().copied().min(), scores.iter().copied().max())
    else {
        return;
    };
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (MAX_NODE_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

/// `(capacity - requested) * 100 / capacity`, 0 when over capacity.
fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity <= 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

impl State<'_> {
    /// Adds the weighted score of every plugin for each node of `feasible` to `total`
    /// (`total[i]` belongs to `feasible[i]`), using `buf` as scratch space.
    pub fn score(&self, feasible: &[u32], total: &mut Vec<i64>, buf: &mut Vec<i64>) {
        total.clear();
        total.resize(feasible.len(), 0);
        let add = |total: &mut Vec<i64>, buf: &[i64], w: i64| {
            for (t, s) in total.iter_mut().zip(buf) {
                *t += w * s;
            }
        };
        let pod = self.pod;
        let slots = &self.snap.slots;
        let node = |s: u32| {
            slots[s as usize]
                .node
                .as_ref()
                .expect("feasible nodes exist")
        };

        // TaintToleration: fewer untolerated PreferNoSchedule taints is better.
        buf.clear();
        buf.extend(feasible.iter().map(|s| {
            if !self.snap.hot[*s as usize].prefer_taints {
                return 0;
            }
            node(*s)
                .prefer_taints
                .iter()
                .filter(|t| !self.prefer_tolerations.iter().any(|tol| tolerates(tol, t)))
                .count() as i64
        }));
        default_normalize(buf, true);
        add(total, buf, weights::TAINT_TOLERATION);

        // NodeAffinity: the weights of the matching preferred terms.
        if !pod.preferred_node.is_empty() {
            buf.clear();
            buf.extend(feasible.iter().map(|s| {
                let f = &node(*s).facts;
                pod.preferred_node
                    .iter()
                    .filter(|(_, t)| t.matches(&f.name, &f.labels))
                    .map(|(w, _)| *w)
                    .sum::<i64>()
            }));
            default_normalize(buf, false);
            add(total, buf, weights::NODE_AFFINITY);
        }

        // NodeResourcesFit, LeastAllocated over CPU and memory (weight 1 each).
        let hot = &self.snap.hot;
        let nonzero = &self.snap.nonzero;
        buf.clear();
        buf.extend(feasible.iter().map(|s| {
            let h = &hot[*s as usize];
            let (cpu, memory) = nonzero[*s as usize];
            let mut sum = 0;
            let mut n = 0;
            for (req, cap) in [
                (cpu + pod.nonzero.0, h.alloc_cpu),
                (memory + pod.nonzero.1, h.alloc_memory),
            ] {
                if cap == 0 {
                    continue;
                }
                sum += least_requested(req, cap);
                n += 1;
            }
            if n == 0 { 0 } else { sum / n }
        }));
        add(total, buf, weights::NODE_RESOURCES_FIT);

        // NodeResourcesBalancedAllocation; skipped for pods that request neither CPU nor memory.
        if pod.requests.milli_cpu != 0 || pod.requests.memory != 0 {
            buf.clear();
            buf.extend(feasible.iter().map(|s| {
                let h = &hot[*s as usize];
                let mut fractions = [0f64; 2];
                let mut n = 0;
                for (req, cap) in [
                    (h.req_cpu + pod.requests.milli_cpu, h.alloc_cpu),
                    (h.req_memory + pod.requests.memory, h.alloc_memory),
                ] {
                    if cap == 0 {
                        continue;
                    }
                    fractions[n] = (req as f64 / cap as f64).min(1.0);
                    n += 1;
                }
                let std = if n == 2 {
                    ((fractions[0] - fractions[1]) / 2.0).abs()
                } else {
                    0.0
                };
                ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
            }));
            add(total, buf, weights::BALANCED_ALLOCATION);
        }

        // PodTopologySpread (ScheduleAnyway constraints, or the default spreading).
        if !self.soft.is_empty() {
            self.spread_scores(feasible, buf);
            add(total, buf, weights::POD_TOPOLOGY_SPREAD);
        }

        // InterPodAffinity: preferred terms of the pod and of placed pods.
        if !self.scored_terms.is_empty() {
            buf.clear();
            buf.extend(feasible.iter().map(|s| {
                self.scored_terms
                    .iter()
                    .filter_map(|t| t.count(*s).map(|n| t.weight * i64::from(n)))
                    .sum::<i64>()
            }));
            min_max_normalize(buf);
            add(total, buf, weights::INTER_POD_AFFINITY);
        }
    }

    fn spread_scores(&self, feasible: &[u32], buf: &mut Vec<i64>) {
        let ignored =
            |s: u32| self.soft_require_all && self.soft.iter().any(|c| c.topo.domain(s).is_none());
        // Each constraint's weight grows with the number of domains among the candidates.
        let weights: Vec<f64> = self
            .soft
            .iter()
            .map(|c| {
                let size = if c.hostname {
                    feasible.iter().filter(|s| !ignored(**s)).count()
                } else {
                    let mut seen = vec![false; c.topo.names.len()];
                    for d in feasible
                        .iter()
                        .filter(|s| !ignored(**s))
                        .filter_map(|s| c.topo.domain(*s))
                    {
                        seen[d as usize] = true;
                    }
                    seen.iter().filter(|x| **x).count()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        buf.clear();
        buf.extend(feasible.iter().map(|s| {
            if ignored(*s) {
                return -1;
            }
            let mut score = 0f64;
            for (c, w) in self.soft.iter().zip(&weights) {
                if let Some(n) = c.count(*s) {
                    score += n as f64 * w + (c.max_skew - 1) as f64;
                }
            }
            // Scores are not negative: half up is Go's math.Round.
            (score + 0.5) as i64
        }));
        // Fewer matching pods is better: min and max over the nodes that count.
        let counted = || buf.iter().copied().filter(|s| *s >= 0);
        let min = counted().min().unwrap_or(0);
        let max = counted().max().unwrap_or(0);
        for s in buf.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalization_matches_kubernetes() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut r = vec![0, 1, 2];
        default_normalize(&mut r, true);
        assert_eq!(r, vec![100, 50, 0]);
        let mut z = vec![0, 0];
        default_normalize(&mut z, true);
        assert_eq!(z, vec![100, 100]);
        let mut z = vec![0, 0];
        default_normalize(&mut z, false);
        assert_eq!(z, vec![0, 0]);
    }

    #[test]
    fn min_max_normalization_matches_kubernetes() {
        let mut s = vec![-100, 0, 50];
        min_max_normalize(&mut s);
        assert_eq!(s, vec![0, 66, 100]);
        let mut e = vec![7, 7];
        min_max_normalize(&mut e);
        assert_eq!(e, vec![0, 0]);
    }

    #[test]
    fn least_requested_is_the_free_share() {
        assert_eq!(least_requested(0, 1000), 100);
        assert_eq!(least_requested(250, 1000), 75);
        assert_eq!(least_requested(1001, 1000), 0);
        assert_eq!(least_requested(1, 0), 0);
    }
}
