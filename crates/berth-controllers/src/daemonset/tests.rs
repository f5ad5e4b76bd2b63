use super::*;
use k8s_openapi::api::apps::v1::{DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{Container, NodeSpec, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn ds() -> DaemonSet {
    DaemonSet {
        metadata: ObjectMeta {
            name: Some("agent".into()),
            namespace: Some("kube-system".into()),
            uid: Some("ds-uid".into()),
            generation: Some(2),
            ..ObjectMeta::default()
        },
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "agent".into())])),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".into(), "agent".into())])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("a:1".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::Int(1)),
                    max_surge: Some(IntOrString::Int(0)),
                }),
            }),
            ..DaemonSetSpec::default()
        }),
        status: None,
    }
}

fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Taint::default()
                    })
                    .collect(),
            ),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// A daemon pod on `node` at revision `hash`, running and ready or not, created at `at`.
fn pod(name: &str, node: &str, hash: &str, ready: bool, at: i64) -> Pod {
    let mut p = new_pod(&ds(), node, hash);
    p.metadata.name = Some(name.into());
    p.metadata.creation_timestamp = Some(Time(t(at)));
    p.spec.as_mut().unwrap().node_name = Some(node.into());
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(t(0))),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    });
    p
}

fn run(d: &DaemonSet, nodes: &[Node], pods: &[Pod], hash: &str) -> Plan {
    let n: Vec<&Node> = nodes.iter().collect();
    let p: Vec<&Pod> = pods.iter().collect();
    plan(d, &n, &p, hash, &BTreeMap::new(), t(100))
}

#[test]
fn every_eligible_node_gets_one_pod() {
    let nodes = [node("n1", &[], &[]), node("n2", &[], &[])];
    let p = run(&ds(), &nodes, &[], "h1");
    assert_eq!(p.create_on, vec!["n1".to_string(), "n2".to_string()]);
    assert_eq!(p.status.desired_number_scheduled, 2);
    assert_eq!(p.status.current_number_scheduled, 0);
    let pods = [
        pod("a", "n1", "h1", true, 0),
        pod("b", "n2", "h1", false, 0),
    ];
    let p = run(&ds(), &nodes, &pods, "h1");
    assert!(p.create_on.is_empty() && p.delete.is_empty());
    let st = &p.status;
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.number_available,
            st.updated_number_scheduled,
            st.number_unavailable,
            st.number_misscheduled
        ),
        (2, 2, 1, Some(1), Some(2), Some(1), 0)
    );
    assert_eq!(st.observed_generation, Some(2));
    // A node joining later gets one too.
    let more = [nodes[0].clone(), nodes[1].clone(), node("n3", &[], &[])];
    assert_eq!(
        run(&ds(), &more, &pods, "h1").create_on,
        vec!["n3".to_string()]
    );
}

#[test]
fn pods_are_pinned_to_their_node_through_the_scheduler() {
    let p = new_pod(&ds(), "n7", "h1");
    assert_eq!(p.metadata.generate_name.as_deref(), Some("agent-"));
    let spec = p.spec.as_ref().unwrap();
    assert!(spec.node_name.is_none(), "the scheduler binds it");
    let terms = &spec
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 1);
    let f = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (f.key.as_str(), f.operator.as_str()),
        ("metadata.name", "In")
    );
    assert_eq!(f.values, Some(vec!["n7".to_string()]));
    assert_eq!(target_node(&p).as_deref(), Some("n7"));
    let labels = p.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[revision::HASH_LABEL], "h1");
    assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "2");
    let keys: Vec<(&str, &str)> = spec
        .tolerations
        .iter()
        .flatten()
        .map(|t| {
            (
                t.key.as_deref().unwrap_or(""),
                t.effect.as_deref().unwrap_or(""),
            )
        })
        .collect();
    for want in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        assert!(keys.contains(&want), "{want:?} in {keys:?}");
    }
    assert!(!keys.contains(&("node.kubernetes.io/network-unavailable", "NoSchedule")));
}

#[test]
fn node_selector_affinity_and_taints_decide_eligibility() {
    let mut d = ds();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .node_selector = Some(BTreeMap::from([("disk".into(), "ssd".into())]));
    assert_eq!(
        should_run(&d, &node("a", &[("disk", "ssd")], &[])),
        (true, true)
    );
    assert_eq!(
        should_run(&d, &node("b", &[("disk", "hdd")], &[])),
        (false, false)
    );
    let d = ds();
    // Tolerated by the daemon tolerations.
    assert_eq!(
        should_run(
            &d,
            &node(
                "c",
                &[],
                &[("node.kubernetes.io/unschedulable", "NoSchedule")]
            )
        ),
        (true, true)
    );
    assert_eq!(
        should_run(
            &d,
            &node("c", &[], &[("node.kubernetes.io/not-ready", "NoExecute")])
        ),
        (true, true)
    );
    // An untolerated NoSchedule taint: no new pod, but one there stays.
    assert_eq!(
        should_run(&d, &node("d", &[], &[("gpu", "NoSchedule")])),
        (false, true)
    );
    // NoExecute: it goes.
    assert_eq!(
        should_run(&d, &node("e", &[], &[("gpu", "NoExecute")])),
        (false, false)
    );
    // PreferNoSchedule does not matter.
    assert_eq!(
        should_run(&d, &node("f", &[], &[("gpu", "PreferNoSchedule")])),
        (true, true)
    );
    // Required node affinity.
    let mut d = ds();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .affinity = Some(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "zone".into(),
                        operator: "In".into(),
                        values: Some(vec!["a".into(), "b".into()]),
                    }]),
                    match_fields: None,
                }],
            }),
            ..NodeAffinity::default()
        }),
        ..Affinity::default()
    });
    assert!(should_run(&d, &node("g", &[("zone", "b")], &[])).0);
    assert!(!should_run(&d, &node("h", &[("zone", "c")], &[])).0);
    // The pod's affinity is narrowed to the node (the expressions were checked here).
    let p = new_pod(&d, "g", "h1");
    let terms = &p
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 1);
    assert!(terms[0].match_expressions.is_none());
}

#[test]
fn tolerations_match_taints() {
    let taint = Taint {
        key: "k".into(),
        value: Some("v".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    };
    let tol = |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| Toleration {
        key: key.map(Into::into),
        operator: Some(op.into()),
        value: value.map(Into::into),
        effect: effect.map(Into::into),
        toleration_seconds: None,
    };
    assert!(tolerates(&tol(Some("k"), "Equal", Some("v"), None), &taint));
    assert!(!tolerates(
        &tol(Some("k"), "Equal", Some("w"), None),
        &taint
    ));
    assert!(tolerates(
        &tol(Some("k"), "Exists", None, Some("NoSchedule")),
        &taint
    ));
    assert!(!tolerates(
        &tol(Some("k"), "Exists", None, Some("NoExecute")),
        &taint
    ));
    assert!(
        tolerates(&tol(None, "Exists", None, None), &taint),
        "tolerates everything"
    );
    assert!(!tolerates(&tol(Some("x"), "Exists", None, None), &taint));
}

#[test]
fn misscheduled_and_duplicate_pods_are_removed() {
    let mut d = ds();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .node_selector = Some(BTreeMap::from([("role".into(), "edge".into())]));
    let nodes = [node("n1", &[("role", "edge")], &[]), node("n2", &[], &[])];
    let pods = [
        pod("a", "n1", "h1", true, 0),
        pod("b", "n1", "h1", true, 5),
        pod("c", "n2", "h1", true, 0),
        pod("gone", "n9", "h1", true, 0),
    ];
    let p = run(&d, &nodes, &pods, "h1");
    let mut del = p.delete.clone();
    del.sort();
    assert_eq!(del, vec!["b", "c", "gone"], "the oldest stays");
    assert_eq!(p.status.number_misscheduled, 1);
    assert_eq!(p.status.desired_number_scheduled, 1);
}

#[test]
fn a_failed_pod_is_replaced() {
    let nodes = [node("n1", &[], &[])];
    let mut failed = pod("a", "n1", "h1", false, 0);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let p = run(&ds(), &nodes, &[failed.clone()], "h1");
    assert_eq!(p.delete, vec!["a".to_string()]);
    assert_eq!(p.failed_on, vec!["n1".to_string()]);
    assert_eq!(p.events[0].1, "FailedDaemonPod");
    // Within the node's back-off it stays, and the controller looks again when it ends.
    let n: Vec<&Node> = nodes.iter().collect();
    let waits = BTreeMap::from([("n1".to_string(), Duration::from_secs(4))]);
    let p = plan(&ds(), &n, &[&failed], "h1", &waits, t(100));
    assert!(p.delete.is_empty() && p.create_on.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(4)));
    // Once it is being deleted, it no longer holds the node.
    failed.metadata.deletion_timestamp = Some(Time(t(50)));
    let p = run(&ds(), &nodes, &[failed], "h1");
    assert_eq!(p.create_on, vec!["n1".to_string()]);
    assert!(p.delete.is_empty());
    // A running pod being deleted does hold it.
    let mut going = pod("b", "n1", "h1", true, 0);
    going.metadata.deletion_timestamp = Some(Time(t(50)));
    let p = run(&ds(), &nodes, &[going], "h1");
    assert!(p.create_on.is_empty() && p.delete.is_empty());
}

#[test]
fn rolling_update_stays_within_max_unavailable() {
    let nodes = [
        node("n1", &[], &[]),
        node("n2", &[], &[]),
        node("n3", &[], &[]),
    ];
    let old = [
        pod("a", "n1", "h1", true, 0),
        pod("b", "n2", "h1", true, 0),
        pod("c", "n3", "h1", true, 0),
    ];
    let p = run(&ds(), &nodes, &old, "h2");
    assert_eq!(p.delete.len(), 1, "one at a time");
    assert_eq!(p.status.updated_number_scheduled, Some(0));
    // One node replaced and not yet ready: nothing more.
    let mid = [
        pod("a2", "n1", "h2", false, 10),
        pod("b", "n2", "h1", true, 0),
        pod("c", "n3", "h1", true, 0),
    ];
    let p = run(&ds(), &nodes, &mid, "h2");
    assert!(p.delete.is_empty());
    // An unavailable old pod may always be replaced.
    let mid = [
        pod("a2", "n1", "h2", true, 10),
        pod("b", "n2", "h1", false, 0),
        pod("c", "n3", "h1", true, 0),
    ];
    let p = run(&ds(), &nodes, &mid, "h2");
    assert_eq!(p.delete, vec!["b".to_string()], "and it uses up the budget");
    // With maxUnavailable 2, two available old pods go at once.
    let mut d = ds();
    d.spec
        .as_mut()
        .unwrap()
        .update_strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
        .unwrap()
        .max_unavailable = Some(IntOrString::String("66%".into()));
    let p = run(&d, &nodes, &old, "h2");
    assert_eq!(p.delete.len(), 2);
}

#[test]
fn surge_starts_the_new_pod_before_removing_the_old() {
    let mut d = ds();
    d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDaemonSet {
            max_unavailable: Some(IntOrString::Int(0)),
            max_surge: Some(IntOrString::Int(1)),
        }),
    });
    let nodes = [node("n1", &[], &[]), node("n2", &[], &[])];
    let old = [pod("a", "n1", "h1", true, 0), pod("b", "n2", "h1", true, 0)];
    let p = run(&d, &nodes, &old, "h2");
    assert!(p.delete.is_empty());
    assert_eq!(p.create_on, vec!["n1".to_string()], "one surge pod");
    // The new pod is not ready: both stay, no second surge.
    let both = [
        pod("a", "n1", "h1", true, 0),
        pod("a2", "n1", "h2", false, 10),
        pod("b", "n2", "h1", true, 0),
    ];
    let p = run(&d, &nodes, &both, "h2");
    assert!(p.delete.is_empty() && p.create_on.is_empty());
    // Ready: the old one goes.
    let both = [
        pod("a", "n1", "h1", true, 0),
        pod("a2", "n1", "h2", true, 10),
        pod("b", "n2", "h1", true, 0),
    ];
    let p = run(&d, &nodes, &both, "h2");
    assert_eq!(p.delete, vec!["a".to_string()]);
}

#[test]
fn on_delete_leaves_old_pods_alone() {
    let mut d = ds();
    d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    });
    let nodes = [node("n1", &[], &[])];
    let p = run(&d, &nodes, &[pod("a", "n1", "h1", true, 0)], "h2");
    assert!(p.delete.is_empty() && p.create_on.is_empty());
    assert_eq!(p.status.updated_number_scheduled, Some(0));
}

#[test]
fn percentages_round_up() {
    assert_eq!(scaled(Some(&IntOrString::String("10%".into())), 5, 0), 1);
    assert_eq!(scaled(Some(&IntOrString::String("50%".into())), 3, 0), 2);
    assert_eq!(scaled(Some(&IntOrString::Int(3)), 5, 0), 3);
    assert_eq!(scaled(None, 5, 1), 1);
}

#[test]
fn failed_pod_backoff_doubles_per_node() {
    let b = FailedBackoff::default();
    let k = Key::new("ns", "ds");
    assert_eq!(b.remaining(&k, "n1"), None);
    b.next(&k, "n1");
    assert!(
        b.remaining(&k, "n1")
            .is_some_and(|d| d <= FAILED_POD_BACKOFF)
    );
    b.next(&k, "n1");
    assert!(
        b.remaining(&k, "n1")
            .is_some_and(|d| d > FAILED_POD_BACKOFF)
    );
    assert_eq!(b.remaining(&k, "n2"), None, "per node");
}
