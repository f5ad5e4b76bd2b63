//! Synthetic clusters for tests and benchmarks: nodes of varied sizes in zones, some with SSD,
//! GPU (tainted), cordoned, not Ready or soon-to-be-drained (`PreferNoSchedule`), and
//! workloads of pods with requests, a share of them with node selectors, affinity,
//! anti-affinity, spread constraints, tolerations or host ports.
//!
//! Owns generating them, deterministically from a seed. Must not be used by the scheduler
//! itself.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity, PodSpec,
    ResourceRequirements, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::pod::{LABEL_HOSTNAME, LABEL_ZONE};
use crate::resources::Resources;
use crate::selector::{Effect, Labels, TaintRef};
use crate::snapshot::{NodeFacts, Readiness};

/// The number of zones synthetic nodes are spread over.
pub const ZONES: usize = 8;

/// A small deterministic random generator (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A Ready node `name` in `zone` with `milli_cpu` and `memory` allocatable, room for 110 pods,
/// and the hostname and zone labels.
pub fn node(name: &str, zone: &str, milli_cpu: i64, memory: i64) -> NodeFacts {
    let labels: Labels = [
        (LABEL_HOSTNAME.to_owned(), name.to_owned()),
        (LABEL_ZONE.to_owned(), zone.to_owned()),
    ]
    .into();
    NodeFacts::new(name, labels, Resources::cpu_memory(milli_cpu, memory), 110)
}

/// `count` nodes named `node-00000`...: sizes from 2 CPU/4 GiB to 64 CPU/256 GiB, zones
/// `zone-0`..`zone-7`; 30% with `disk=ssd`; 5% GPU nodes (`accelerator=gpu`, tainted
/// `dedicated=gpu:NoSchedule`); 2% with a `PreferNoSchedule` taint; 1% cordoned; 1% not Ready.
pub fn nodes(count: usize, seed: u64) -> Vec<NodeFacts> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let (cpu, mem_gi) = match rng.below(10) {
                0..=2 => (2_000, 4),
                3..=6 => (4_000, 16),
                7..=8 => (16_000, 64),
                _ => (64_000, 256),
            };
            let name = format!("node-{i:05}");
            let mut n = node(&name, &format!("zone-{}", i % ZONES), cpu, mem_gi << 30);
            n.labels.insert(
                "disk".into(),
                if rng.chance(30) { "ssd" } else { "hdd" }.into(),
            );
            if rng.chance(5) {
                n.labels.insert("accelerator".into(), "gpu".into());
                n.taints
                    .push(TaintRef::new("dedicated", "gpu", Effect::NoSchedule));
            }
            if rng.chance(2) {
                n.taints.push(TaintRef::new(
                    "maintenance",
                    "soon",
                    Effect::PreferNoSchedule,
                ));
            }
            if rng.chance(1) {
                n.unschedulable = true;
            }
            if rng.chance(1) {
                n.ready = Readiness::NotReady;
            }
            n
        })
        .collect()
}

/// The kinds of workload [`pods`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Requests only (spread by default as one ReplicaSet's pods).
    Plain,
    /// `nodeSelector: disk=ssd`.
    Ssd,
    /// Preferred anti-affinity to its own pods by host.
    PreferSpread,
    /// Required anti-affinity to its own pods by host.
    OnePerNode,
    /// A zone spread constraint (max skew 1, DoNotSchedule) and a host one (ScheduleAnyway).
    ZoneSpread,
    /// Tolerates the GPU taint and requires a GPU node.
    Gpu,
    /// Required affinity to an earlier workload's pods in the same zone.
    NextTo,
    /// A host port.
    HostPort,
}

fn quantity(s: String) -> Quantity {
    Quantity(s)
}

fn selector(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some([("app".to_owned(), app.to_owned())].into()),
        ..LabelSelector::default()
    }
}

fn term(app: &str, key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(selector(app)),
        topology_key: key.to_owned(),
        ..PodAffinityTerm::default()
    }
}

/// One pod of a workload.
pub fn pod(
    namespace: &str,
    app: &str,
    index: usize,
    kind: Workload,
    milli_cpu: i64,
    memory_mi: i64,
    next_to: Option<&str>,
) -> Pod {
    let requests = BTreeMap::from([
        ("cpu".to_owned(), quantity(format!("{milli_cpu}m"))),
        ("memory".to_owned(), quantity(format!("{memory_mi}Mi"))),
    ]);
    let mut container = Container {
        name: "app".into(),
        image: Some("registry.example/app:1".into()),
        resources: Some(ResourceRequirements {
            requests: Some(requests),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    };
    let mut spec = PodSpec::default();
    match kind {
        Workload::Plain => {}
        Workload::Ssd => {
            spec.node_selector = Some([("disk".to_owned(), "ssd".to_owned())].into());
        }
        Workload::PreferSpread => {
            spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        WeightedPodAffinityTerm {
                            weight: 100,
                            pod_affinity_term: term(app, LABEL_HOSTNAME),
                        },
                    ]),
                    ..PodAntiAffinity::default()
                }),
                ..Affinity::default()
            });
        }
        Workload::OnePerNode => {
            spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: Some(vec![term(
                        app,
                        LABEL_HOSTNAME,
                    )]),
                    ..PodAntiAffinity::default()
                }),
                ..Affinity::default()
            });
        }
        Workload::ZoneSpread => {
            let c = |key: &str, skew, when: &str| TopologySpreadConstraint {
                label_selector: Some(selector(app)),
                max_skew: skew,
                topology_key: key.to_owned(),
                when_unsatisfiable: when.to_owned(),
                ..TopologySpreadConstraint::default()
            };
            spec.topology_spread_constraints = Some(vec![
                c(LABEL_ZONE, 1, "DoNotSchedule"),
                c(LABEL_HOSTNAME, 1, "ScheduleAnyway"),
            ]);
        }
        Workload::Gpu => {
            spec.tolerations = Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Equal".into()),
                value: Some("gpu".into()),
                effect: Some("NoSchedule".into()),
                ..Toleration::default()
            }]);
            spec.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "accelerator".into(),
                                operator: "In".into(),
                                values: Some(vec!["gpu".into()]),
                            }]),
                            ..NodeSelectorTerm::default()
                        }],
                    }),
                    ..NodeAffinity::default()
                }),
                ..Affinity::default()
            });
        }
        Workload::NextTo => {
            if let Some(other) = next_to {
                spec.affinity = Some(Affinity {
                    pod_affinity: Some(PodAffinity {
                        required_during_scheduling_ignored_during_execution: Some(vec![term(
                            other, LABEL_ZONE,
                        )]),
                        ..PodAffinity::default()
                    }),
                    ..Affinity::default()
                });
            }
        }
        Workload::HostPort => {
            container.ports = Some(vec![ContainerPort {
                container_port: 8080,
                host_port: Some(9000),
                ..ContainerPort::default()
            }]);
        }
    }
    spec.containers = vec![container];
    let name = format!("{app}-{index}");
    Pod {
        metadata: ObjectMeta {
            uid: Some(format!("{namespace}-{name}")),
            name: Some(name),
            namespace: Some(namespace.to_owned()),
            labels: Some([("app".to_owned(), app.to_owned())].into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: app.to_owned(),
                uid: format!("rs-{namespace}-{app}"),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// `count` pods in workloads of 5 to 40 replicas (pods of one workload are consecutive), in
/// ten namespaces: 50% plain, 10% SSD-only, 15% preferring one per host, 5% requiring one per
/// host, 8% spread over zones, 3% GPU, 5% next to an earlier workload, 4% with a host port.
/// Requests range from 50m to 1 CPU and 64 MiB to 2 GiB. Returns each pod with its workload
/// kind.
pub fn pods(count: usize, seed: u64) -> Vec<(Pod, Workload)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(count);
    let mut plain_apps: Vec<(String, String)> = Vec::new();
    let mut w = 0;
    while out.len() < count {
        let kind = match rng.below(100) {
            0..=49 => Workload::Plain,
            50..=59 => Workload::Ssd,
            60..=74 => Workload::PreferSpread,
            75..=79 => Workload::OnePerNode,
            80..=87 => Workload::ZoneSpread,
            88..=90 => Workload::Gpu,
            91..=95 => Workload::NextTo,
            _ => Workload::HostPort,
        };
        let ns = format!("ns-{}", w % 10);
        let app = format!("app-{w}");
        w += 1;
        let replicas = 5 + rng.below(36) as usize;
        let milli_cpu = [50, 100, 250, 500, 1000][rng.below(5) as usize];
        let memory_mi = [64, 128, 256, 512, 1024, 2048][rng.below(6) as usize];
        let next_to = if kind == Workload::NextTo {
            let same_ns: Vec<&(String, String)> =
                plain_apps.iter().filter(|(n, _)| *n == ns).collect();
            if same_ns.is_empty() {
                None
            } else {
                Some(same_ns[rng.below(same_ns.len() as u64) as usize].1.clone())
            }
        } else {
            None
        };
        if kind == Workload::Plain {
            plain_apps.push((ns.clone(), app.clone()));
        }
        for i in 0..replicas.min(count - out.len()) {
            out.push((
                pod(&ns, &app, i, kind, milli_cpu, memory_mi, next_to.as_deref()),
                kind,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let a = nodes(1000, 7);
        assert_eq!(a, nodes(1000, 7));
        assert!(a.iter().any(|n| n.labels.contains_key("accelerator")));
        assert!(a.iter().any(|n| n.unschedulable));
        assert!(a.iter().any(|n| n.ready == Readiness::NotReady));
        let p = pods(2000, 7);
        assert_eq!(p.len(), 2000);
        for kind in [
            Workload::Plain,
            Workload::OnePerNode,
            Workload::ZoneSpread,
            Workload::Gpu,
        ] {
            assert!(p.iter().any(|(_, k)| *k == kind), "{kind:?}");
        }
    }
}
