//! A pod as the scheduler reads it: parsed once from the API object into what the plugins
//! compare (requests, host ports, tolerations, node selector and affinity, pod affinity terms,
//! spread constraints, its controller).
//!
//! Owns that translation. Must not look at nodes or other pods.

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, Toleration};

use crate::resources::{Resources, pod_nonzero_requests, pod_requests};
use crate::selector::{
    Clause, Labels, Matcher, NodeTerm, PodView, label_selector, merge_label_keys,
};

/// The label every node carries with its host name; the topology key of per-node rules.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
/// The label of a node's zone.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

/// How the snapshot names a pod: its UID, or `namespace/name` when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodKey(pub String);

impl PodKey {
    /// The key of an API pod.
    pub fn of(pod: &Pod) -> Self {
        match pod.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
            Some(uid) => Self(uid.to_owned()),
            None => Self::named(
                pod.metadata.namespace.as_deref().unwrap_or("default"),
                pod.metadata.name.as_deref().unwrap_or(""),
            ),
        }
    }

    /// The key `namespace/name`.
    pub fn named(namespace: &str, name: &str) -> Self {
        Self(format!("{namespace}/{name}"))
    }
}

/// A host port a container asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The host IP (`0.0.0.0` when unset: every address).
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// True if `self` and `other` cannot both be bound on one node (Kubernetes'
    /// `HostPortInfo.CheckConflict`): same protocol and port, and the same IP or either is
    /// `0.0.0.0`.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// An inter-pod affinity term of a pod.
#[derive(Debug, Clone)]
pub(crate) struct AffinityTerm {
    /// The pods it is about.
    pub matcher: Matcher,
    /// The topology key.
    pub topology_key: String,
    /// The weight (preferred terms; 0 for required ones).
    pub weight: i64,
}

/// A topology spread constraint of a pod.
#[derive(Debug, Clone)]
pub(crate) struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    /// `DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    pub matcher: Matcher,
    /// True if the pod itself matches the selector.
    pub self_match: bool,
    pub min_domains: Option<i64>,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (the default is Ignore).
    pub honor_taints: bool,
}

/// A pod parsed for scheduling.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// The snapshot's key of the pod.
    pub key: PodKey,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
    /// The UID of the pod's controller, if any.
    pub owner: Option<String>,
    /// True if the controller is a ReplicaSet, ReplicationController or StatefulSet, whose
    /// pods Kubernetes spreads by default.
    pub(crate) spread_by_owner: bool,
    /// The effective requests.
    pub requests: Resources,
    /// CPU (millicores) and memory (bytes) for scoring, with defaults for missing requests.
    pub nonzero: (i64, i64),
    /// The host ports of its containers.
    pub ports: Vec<HostPort>,
    pub(crate) tolerations: Vec<Toleration>,
    pub(crate) node_selector: Vec<(String, String)>,
    /// Required node affinity: any term must match. `None` when there is none.
    pub(crate) required_node: Option<Vec<NodeTerm>>,
    /// A string equal for pods with equal node selectors and required node affinity (`None`
    /// without either), to reuse which nodes match.
    pub(crate) node_key: Option<String>,
    pub(crate) preferred_node: Vec<(i64, NodeTerm)>,
    pub(crate) affinity_required: Vec<AffinityTerm>,
    pub(crate) anti_required: Vec<AffinityTerm>,
    pub(crate) affinity_preferred: Vec<AffinityTerm>,
    pub(crate) anti_preferred: Vec<AffinityTerm>,
    pub(crate) spread: Vec<SpreadConstraint>,
}

fn affinity_term(pod_ns: &str, labels: &Labels, t: &PodAffinityTerm, weight: i64) -> AffinityTerm {
    let mut selector = label_selector(t.label_selector.as_ref());
    merge_label_keys(
        &mut selector,
        t.match_label_keys.as_deref().unwrap_or_default(),
        labels,
        false,
    );
    merge_label_keys(
        &mut selector,
        t.mismatch_label_keys.as_deref().unwrap_or_default(),
        labels,
        true,
    );
    AffinityTerm {
        matcher: Matcher {
            clauses: vec![Clause::of_term(
                pod_ns,
                t.namespaces.as_ref(),
                t.namespace_selector.as_ref(),
                selector,
            )],
            owner: None,
        },
        topology_key: t.topology_key.clone(),
        weight,
    }
}

impl PodInfo {
    /// Parses a pod.
    pub fn new(pod: &Pod) -> Self {
        let meta = &pod.metadata;
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let labels = meta.labels.clone().unwrap_or_default();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let owner = controller.map(|o| o.uid.clone());
        let spread_by_owner = controller.is_some_and(|o| {
            matches!(
                (o.api_version.as_str(), o.kind.as_str()),
                ("apps/v1", "ReplicaSet")
                    | ("v1", "ReplicationController")
                    | ("apps/v1", "StatefulSet")
            )
        });
        let default_spec = Default::default();
        let spec = pod.spec.as_ref().unwrap_or(&default_spec);
        let mut ports = Vec::new();
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        for c in spec.containers.iter().chain(sidecars) {
            for p in c.ports.iter().flatten() {
                let Some(port) = p.host_port.filter(|p| *p > 0) else {
                    continue;
                };
                ports.push(HostPort {
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|i| !i.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".to_owned()),
                    protocol: p
                        .protocol
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "TCP".to_owned()),
                    port,
                });
            }
        }
        let affinity = spec.affinity.as_ref();
        let node_aff = affinity.and_then(|a| a.node_affinity.as_ref());
        let required_node = node_aff
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|s| s.node_selector_terms.iter().map(NodeTerm::new).collect());
        let preferred_node = node_aff
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| (i64::from(p.weight), NodeTerm::new(&p.preference)))
            .collect();
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| affinity_term(&namespace, &labels, t, 0))
                .collect()
        };
        let preferred =
            |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
                terms
                    .into_iter()
                    .flatten()
                    .filter(|w| w.weight != 0)
                    .map(|w| {
                        affinity_term(
                            &namespace,
                            &labels,
                            &w.pod_affinity_term,
                            i64::from(w.weight),
                        )
                    })
                    .collect::<Vec<_>>()
            };
        let affinity_required = required(pa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let anti_required = required(paa.and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let affinity_preferred = preferred(pa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let anti_preferred = preferred(paa.and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        }));
        let spread = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .map(|c| {
                let mut selector = label_selector(c.label_selector.as_ref());
                merge_label_keys(
                    &mut selector,
                    c.match_label_keys.as_deref().unwrap_or_default(),
                    &labels,
                    false,
                );
                let self_match = crate::selector::matches_labels(&selector, &labels);
                SpreadConstraint {
                    max_skew: i64::from(c.max_skew.max(1)),
                    topology_key: c.topology_key.clone(),
                    hard: c.when_unsatisfiable != "ScheduleAnyway",
                    matcher: Matcher {
                        clauses: vec![Clause {
                            namespaces: vec![namespace.clone()],
                            namespace_selector: None,
                            selector,
                        }],
                        owner: None,
                    },
                    self_match,
                    min_domains: c.min_domains.map(i64::from),
                    honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                    honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
                }
            })
            .collect();
        let node_selector: Vec<(String, String)> = spec
            .node_selector
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let node_key = (!node_selector.is_empty() || required_node.is_some())
            .then(|| format!("{node_selector:?}|{required_node:?}"));
        Self {
            key: PodKey::of(pod),
            name: meta.name.clone().unwrap_or_default(),
            owner,
            spread_by_owner,
            requests: pod_requests(spec),
            nonzero: pod_nonzero_requests(spec),
            ports,
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            node_selector,
            required_node,
            node_key,
            preferred_node,
            affinity_required,
            anti_required,
            affinity_preferred,
            anti_preferred,
            spread,
            labels,
            namespace,
        }
    }

    /// The pod as matchers see it.
    pub(crate) fn view(&self) -> PodView<'_> {
        PodView {
            namespace: &self.namespace,
            labels: &self.labels,
            owner: self.owner.as_deref(),
        }
    }

    /// True if the pod has a node selector or required node affinity.
    pub(crate) fn has_node_constraints(&self) -> bool {
        !self.node_selector.is_empty() || self.required_node.is_some()
    }

    /// True if the node `name` with `labels` satisfies the pod's node selector and required
    /// node affinity.
    pub(crate) fn node_matches(&self, name: &str, labels: &Labels) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .required_node
                .as_ref()
                .is_none_or(|terms| terms.iter().any(|t| t.matches(name, labels)))
    }

    /// True if the pod has any inter-pod affinity term.
    pub fn has_pod_affinity(&self) -> bool {
        !(self.affinity_required.is_empty()
            && self.anti_required.is_empty()
            && self.affinity_preferred.is_empty()
            && self.anti_preferred.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> PodInfo {
        PodInfo::new(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn parses_what_the_plugins_need() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                    "uid": "rs-uid", "controller": true}]},
            "spec": {
                "containers": [{"name": "a", "ports": [
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
                    {"containerPort": 81}]}],
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}],
                "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}],
                    "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm":
                        {"topologyKey": "zone", "labelSelector": {}}}]}}
            }
        }));
        assert_eq!(p.key, PodKey("u".into()));
        assert_eq!(p.owner.as_deref(), Some("rs-uid"));
        assert!(p.spread_by_owner);
        assert_eq!(p.ports.len(), 2);
        assert_eq!(p.ports[0].ip, "0.0.0.0");
        assert_eq!(p.ports[0].protocol, "TCP");
        assert_eq!(p.ports[1].protocol, "UDP");
        assert_eq!(p.node_selector, vec![("disk".into(), "ssd".into())]);
        assert_eq!(p.spread.len(), 1);
        assert!(p.spread[0].hard && p.spread[0].self_match);
        assert!(p.spread[0].honor_node_affinity && !p.spread[0].honor_taints);
        assert_eq!(p.anti_required.len(), 1);
        assert_eq!(p.anti_preferred[0].weight, 10);
        assert!(p.has_pod_affinity());
        assert!(p.node_matches("n", &[("disk".to_string(), "ssd".to_string())].into()));
        assert!(!p.node_matches("n", &Labels::new()));
    }

    #[test]
    fn a_pod_without_uid_is_keyed_by_name() {
        let p = pod(serde_json::json!({"metadata": {"name": "p", "namespace": "ns"}}));
        assert_eq!(p.key, PodKey::named("ns", "p"));
        assert!(!p.spread_by_owner);
        assert!(p.requests.is_zero());
    }

    #[test]
    fn ports_conflict_on_the_same_address_or_the_wildcard() {
        let hp = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        assert!(hp("0.0.0.0", "TCP", 80).conflicts(&hp("10.0.0.1", "TCP", 80)));
        assert!(hp("10.0.0.1", "TCP", 80).conflicts(&hp("10.0.0.1", "TCP", 80)));
        assert!(!hp("10.0.0.1", "TCP", 80).conflicts(&hp("10.0.0.2", "TCP", 80)));
        assert!(!hp("0.0.0.0", "TCP", 80).conflicts(&hp("0.0.0.0", "UDP", 80)));
        assert!(!hp("0.0.0.0", "TCP", 80).conflicts(&hp("0.0.0.0", "TCP", 81)));
    }
}
