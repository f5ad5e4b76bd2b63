//! Tests of each filter and score through the whole cycle, on small hand-made clusters.

use serde_json::{Value, json};

use crate::pod::{LABEL_HOSTNAME, LABEL_ZONE};
use crate::selector::{Effect, TaintRef};
use crate::snapshot::Readiness;
use crate::synthetic::node;
use crate::{Config, NodeFacts, PodInfo, Scheduler, Snapshot};

const GI: i64 = 1 << 30;

fn cluster(nodes: Vec<NodeFacts>) -> Snapshot {
    let mut s = Snapshot::new();
    for n in nodes {
        s.upsert_node(n);
    }
    s
}

/// Three equal nodes a, b, c in zones z1, z2, z3.
fn three() -> Snapshot {
    cluster(vec![
        node("a", "z1", 4000, 8 * GI),
        node("b", "z2", 4000, 8 * GI),
        node("c", "z3", 4000, 8 * GI),
    ])
}

fn sched() -> Scheduler {
    Scheduler::new(Config::default())
}

/// A pod `name` in namespace `ns` with `spec` merged over one container requesting `cpu`.
fn pod_with(name: &str, labels: Value, cpu: &str, spec: Value) -> PodInfo {
    let mut s = json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]});
    if let (Some(base), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    PodInfo::new(
        &serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels},
            "spec": s
        }))
        .unwrap(),
    )
}

fn pod(name: &str) -> PodInfo {
    pod_with(name, json!({}), "100m", json!({}))
}

/// Schedules and assumes; the node or the message.
fn place(sc: &mut Scheduler, snap: &mut Snapshot, p: PodInfo) -> Result<String, String> {
    match sc.schedule(snap, &p) {
        Ok(pl) => {
            snap.assume(p, &pl.node);
            Ok(pl.node)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn counts(snap: &Snapshot) -> Vec<usize> {
    let mut names: Vec<&str> = snap.node_names().collect();
    names.sort();
    names.iter().map(|n| snap.pods_on(n)).collect()
}

// ---- Filters ----

#[test]
fn cordoned_nodes_take_only_pods_tolerating_unschedulable() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.unschedulable = true;
    let mut snap = cluster(vec![a]);
    let mut sc = sched();
    assert_eq!(
        place(&mut sc, &mut snap, pod("p")),
        Err("0/1 nodes are available: 1 node(s) were unschedulable.".into())
    );
    let tolerant = pod_with(
        "t",
        json!({}),
        "100m",
        json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
    );
    assert_eq!(place(&mut sc, &mut snap, tolerant), Ok("a".into()));
}

#[test]
fn nodes_that_are_not_ready_count_as_tainted() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.ready = Readiness::NotReady;
    let mut b = node("b", "z1", 4000, 8 * GI);
    b.ready = Readiness::Unknown;
    let mut snap = cluster(vec![a, b]);
    let mut sc = sched();
    assert_eq!(
        place(&mut sc, &mut snap, pod("p")),
        Err("0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.".into())
    );
    let tolerant = pod_with(
        "t",
        json!({}),
        "100m",
        json!({"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]}),
    );
    assert_eq!(place(&mut sc, &mut snap, tolerant), Ok("a".into()));
}

#[test]
fn no_schedule_and_no_execute_taints_filter_prefer_no_schedule_does_not() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.taints
        .push(TaintRef::new("dedicated", "db", Effect::NoSchedule));
    let mut b = node("b", "z1", 4000, 8 * GI);
    b.taints.push(TaintRef::new("evict", "", Effect::NoExecute));
    let mut c = node("c", "z1", 4000, 8 * GI);
    c.taints
        .push(TaintRef::new("soft", "x", Effect::PreferNoSchedule));
    let mut snap = cluster(vec![a, b, c]);
    let mut sc = sched();
    for i in 0..3 {
        assert_eq!(
            place(&mut sc, &mut snap, pod(&format!("p{i}"))),
            Ok("c".into())
        );
    }
    let mut only_ab = cluster(vec![
        {
            let mut a = node("a", "z1", 4000, 8 * GI);
            a.taints
                .push(TaintRef::new("dedicated", "db", Effect::NoSchedule));
            a
        },
        {
            let mut b = node("b", "z1", 4000, 8 * GI);
            b.taints.push(TaintRef::new("evict", "", Effect::NoExecute));
            b
        },
    ]);
    assert_eq!(
        place(&mut sc, &mut only_ab, pod("x")),
        Err("0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) had untolerated taint {evict: }.".into())
    );
    let db = pod_with(
        "db",
        json!({}),
        "100m",
        json!({"tolerations": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}),
    );
    assert_eq!(place(&mut sc, &mut only_ab, db), Ok("a".into()));
    let any = pod_with(
        "any",
        json!({}),
        "100m",
        json!({"tolerations": [{"operator": "Exists"}]}),
    );
    assert!(place(&mut sc, &mut only_ab, any).is_ok());
}

#[test]
fn the_message_lists_taints_before_resources_as_kubernetes_sorts_them() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.taints
        .push(TaintRef::new("key", "value", Effect::NoSchedule));
    let mut snap = cluster(vec![
        a,
        node("b", "z2", 1000, 8 * GI),
        node("c", "z3", 1000, 8 * GI),
    ]);
    assert_eq!(
        place(&mut sched(), &mut snap, pod_with("big", json!({}), "2", json!({}))),
        Err("0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu.".into())
    );
}

#[test]
fn resources_fit_against_allocatable_minus_placed() {
    let mut snap = cluster(vec![node("a", "z1", 1000, 2 * GI)]);
    let mut sc = sched();
    assert!(
        place(
            &mut sc,
            &mut snap,
            pod_with("p1", json!({}), "600m", json!({}))
        )
        .is_ok()
    );
    assert_eq!(
        place(
            &mut sc,
            &mut snap,
            pod_with("p2", json!({}), "600m", json!({}))
        ),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
    let both = PodInfo::new(
        &serde_json::from_value(json!({
            "metadata": {"name": "both", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {
                "cpu": "600m", "memory": "3Gi", "ephemeral-storage": "1Gi", "example.com/gpu": "1"}}}]}
        }))
        .unwrap(),
    );
    assert_eq!(
        place(&mut sc, &mut snap, both),
        Err("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient ephemeral-storage, 1 Insufficient example.com/gpu, 1 Insufficient memory.".into())
    );
    // Freed room is usable again.
    snap.forget(&crate::PodKey("uid-p1".into()));
    assert!(
        place(
            &mut sc,
            &mut snap,
            pod_with("p3", json!({}), "600m", json!({}))
        )
        .is_ok()
    );
}

#[test]
fn init_containers_count_by_their_peak() {
    let mut snap = cluster(vec![node("a", "z1", 1000, 2 * GI)]);
    let p = pod_with(
        "init",
        json!({}),
        "100m",
        json!({"initContainers": [{"name": "i", "resources": {"requests": {"cpu": "1500m"}}}]}),
    );
    assert_eq!(
        place(&mut sched(), &mut snap, p),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
}

#[test]
fn the_pod_count_is_a_resource() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.allowed_pods = 2;
    let mut snap = cluster(vec![a]);
    let mut sc = sched();
    assert!(place(&mut sc, &mut snap, pod("p1")).is_ok());
    assert!(place(&mut sc, &mut snap, pod("p2")).is_ok());
    assert_eq!(
        place(
            &mut sc,
            &mut snap,
            pod_with("p3", json!({}), "0", json!({}))
        ),
        Err("0/1 nodes are available: 1 Too many pods.".into())
    );
}

#[test]
fn host_ports_are_exclusive() {
    let mut snap = cluster(vec![
        node("a", "z1", 4000, 8 * GI),
        node("b", "z1", 4000, 8 * GI),
    ]);
    let mut sc = sched();
    let hp = |name: &str, ip: Option<&str>, proto: &str| {
        let mut port = json!({"containerPort": 80, "hostPort": 8080, "protocol": proto});
        if let Some(ip) = ip {
            port["hostIP"] = ip.into();
        }
        pod_with(
            name,
            json!({}),
            "100m",
            json!({"containers": [{"name": "c", "ports": [port]}]}),
        )
    };
    let first = place(&mut sc, &mut snap, hp("p1", None, "TCP")).unwrap();
    let second = place(&mut sc, &mut snap, hp("p2", Some("10.0.0.1"), "TCP")).unwrap();
    assert_ne!(
        first, second,
        "the wildcard address takes the port on every address"
    );
    assert!(place(&mut sc, &mut snap, hp("udp", None, "UDP")).is_ok());
    assert_eq!(
        place(&mut sc, &mut snap, hp("p3", None, "TCP")),
        Err("0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.".into())
    );
}

#[test]
fn node_selector_and_required_node_affinity() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.labels.insert("disk".into(), "ssd".into());
    a.labels.insert("cores".into(), "16".into());
    let mut b = node("b", "z2", 4000, 8 * GI);
    b.labels.insert("disk".into(), "hdd".into());
    b.labels.insert("cores".into(), "4".into());
    let mut snap = cluster(vec![a, b, node("c", "z3", 4000, 8 * GI)]);
    let mut sc = sched();
    let sel = pod_with(
        "s",
        json!({}),
        "100m",
        json!({"nodeSelector": {"disk": "ssd"}}),
    );
    assert_eq!(place(&mut sc, &mut snap, sel), Ok("a".into()));
    let affinity = |name: &str, terms: Value| {
        pod_with(
            name,
            json!({}),
            "100m",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}),
        )
    };
    let gt = affinity(
        "gt",
        json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}]),
    );
    assert_eq!(place(&mut sc, &mut snap, gt), Ok("a".into()));
    let lt = affinity(
        "lt",
        json!([{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["8"]}]}]),
    );
    assert_eq!(place(&mut sc, &mut snap, lt), Ok("b".into()));
    let absent = affinity(
        "dne",
        json!([{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]),
    );
    assert_eq!(place(&mut sc, &mut snap, absent), Ok("c".into()));
    let notin = affinity(
        "notin",
        json!([{"matchExpressions": [
            {"key": "disk", "operator": "Exists"},
            {"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]),
    );
    assert_eq!(place(&mut sc, &mut snap, notin), Ok("b".into()));
    let either = affinity(
        "or",
        json!([
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]),
    );
    assert_eq!(place(&mut sc, &mut snap, either), Ok("c".into()));
    let none = affinity(
        "none",
        json!([{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["tape"]}]}]),
    );
    assert_eq!(
        place(&mut sc, &mut snap, none),
        Err("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.".into())
    );
    let both = pod_with(
        "both",
        json!({}),
        "100m",
        json!({"nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
                [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}}}}),
    );
    assert!(
        place(&mut sc, &mut snap, both).is_err(),
        "selector and affinity must both hold"
    );
}

fn anti(name: &str, app: &str, key: &str, required: bool) -> PodInfo {
    let term = json!({"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}});
    let aff = if required {
        json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}})
    } else {
        json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}})
    };
    pod_with(name, json!({"app": app}), "100m", json!({"affinity": aff}))
}

#[test]
fn required_anti_affinity_leaves_the_fourth_replica_pending() {
    let mut snap = three();
    let mut sc = sched();
    for i in 0..3 {
        assert!(
            place(
                &mut sc,
                &mut snap,
                anti(&format!("w{i}"), "web", LABEL_HOSTNAME, true)
            )
            .is_ok()
        );
    }
    assert_eq!(counts(&snap), vec![1, 1, 1]);
    assert_eq!(
        place(&mut sc, &mut snap, anti("w3", "web", LABEL_HOSTNAME, true)),
        Err("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.".into())
    );
}

#[test]
fn placed_pods_anti_affinity_keeps_matching_pods_away() {
    let mut snap = cluster(vec![
        node("a", "z1", 4000, 8 * GI),
        node("b", "z1", 4000, 8 * GI),
    ]);
    let mut sc = sched();
    // A loner that wants no "web" pod in its zone.
    let loner = anti("loner", "loner", LABEL_ZONE, true);
    let loner = {
        let mut l = loner;
        l.anti_required[0].matcher = anti("x", "web", LABEL_ZONE, true).anti_required[0]
            .matcher
            .clone();
        l
    };
    assert!(place(&mut sc, &mut snap, loner).is_ok());
    let web = pod_with("web", json!({"app": "web"}), "100m", json!({}));
    assert_eq!(
        place(&mut sc, &mut snap, web),
        Err(
            "0/2 nodes are available: 2 node(s) didn't satisfy existing pods anti-affinity rules."
                .into()
        )
    );
    assert!(place(&mut sc, &mut snap, pod("other")).is_ok());
}

#[test]
fn required_affinity_co_locates_and_lets_the_first_pod_start() {
    let mut snap = three();
    let mut sc = sched();
    let with_cache = |name: &str, labels: Value| {
        pod_with(
            name,
            labels,
            "100m",
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                [{"topologyKey": LABEL_ZONE, "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}),
        )
    };
    assert_eq!(
        place(&mut sc, &mut snap, with_cache("web", json!({"app": "web"}))),
        Err("0/3 nodes are available: 3 node(s) didn't match pod affinity rules.".into())
    );
    // A pod that matches its own term may start a group anywhere.
    let first = place(
        &mut sc,
        &mut snap,
        with_cache("c0", json!({"app": "cache"})),
    )
    .unwrap();
    for i in 0..4 {
        let at = place(
            &mut sc,
            &mut snap,
            with_cache(&format!("web{i}"), json!({"app": "web"})),
        );
        assert_eq!(at, Ok(first.clone()));
    }
}

#[test]
fn topology_spread_do_not_schedule_keeps_the_skew() {
    let mut snap = cluster(vec![
        node("a1", "z1", 8000, 8 * GI),
        node("a2", "z1", 8000, 8 * GI),
        node("b1", "z2", 8000, 8 * GI),
        {
            let mut n = node("nozone", "z", 8000, 8 * GI);
            n.labels.remove(LABEL_ZONE);
            n
        },
    ]);
    let mut sc = sched();
    let spread = |name: &str| {
        pod_with(
            name,
            json!({"app": "s"}),
            "100m",
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": LABEL_ZONE,
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}}}]}),
        )
    };
    let mut zones = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..6 {
        let n = place(&mut sc, &mut snap, spread(&format!("s{i}"))).unwrap();
        assert_ne!(n, "nozone", "a node without the key never takes the pod");
        *zones
            .entry(snap.node(&n).unwrap().labels[LABEL_ZONE].clone())
            .or_default() += 1;
    }
    assert_eq!(zones.values().copied().collect::<Vec<_>>(), vec![3, 3]);

    // Only z1 nodes left room: the skew stops a fourth pod there... and says why.
    let mut small = cluster(vec![
        node("a", "z1", 8000, 8 * GI),
        node("b", "z2", 50, 8 * GI),
        {
            let mut n = node("nozone", "z", 8000, 8 * GI);
            n.labels.remove(LABEL_ZONE);
            n
        },
    ]);
    assert!(place(&mut sc, &mut small, spread("t0")).is_ok());
    assert_eq!(
        place(&mut sc, &mut small, spread("t1")),
        Err("0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label).".into())
    );
}

#[test]
fn min_domains_treats_missing_domains_as_empty() {
    let mut snap = cluster(vec![
        node("a", "z1", 8000, 8 * GI),
        node("b", "z2", 8000, 8 * GI),
    ]);
    let mut sc = sched();
    let spread = |name: &str| {
        pod_with(
            name,
            json!({"app": "s"}),
            "100m",
            json!({"topologySpreadConstraints": [{"maxSkew": 2, "minDomains": 3, "topologyKey": LABEL_ZONE,
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}}}]}),
        )
    };
    // With fewer than 3 zones the minimum counts as 0: at most 2 per zone.
    for i in 0..4 {
        assert!(place(&mut sc, &mut snap, spread(&format!("s{i}"))).is_ok());
    }
    assert_eq!(counts(&snap), vec![2, 2]);
    assert!(place(&mut sc, &mut snap, spread("s4")).is_err());
}

#[test]
fn spread_honours_node_affinity_when_counting_domains() {
    let mut a = node("a", "z1", 8000, 8 * GI);
    a.labels.insert("pool".into(), "x".into());
    let mut b = node("b", "z2", 8000, 8 * GI);
    b.labels.insert("pool".into(), "x".into());
    // z3 is not in the pool: its empty domain must not hold the minimum at 0.
    let mut snap = cluster(vec![a, b, node("c", "z3", 8000, 8 * GI)]);
    let mut sc = sched();
    for i in 0..4 {
        let p = pod_with(
            &format!("s{i}"),
            json!({"app": "s"}),
            "100m",
            json!({"nodeSelector": {"pool": "x"},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": LABEL_ZONE,
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}}}]}),
        );
        assert!(place(&mut sc, &mut snap, p).is_ok(), "pod {i}");
    }
    assert_eq!(counts(&snap), vec![2, 2, 0]);
}

// ---- Scores ----

#[test]
fn least_allocated_prefers_the_emptier_node() {
    let mut snap = cluster(vec![
        node("small", "z1", 2000, 4 * GI),
        node("big", "z1", 16000, 32 * GI),
    ]);
    assert_eq!(place(&mut sched(), &mut snap, pod("p")), Ok("big".into()));
}

#[test]
fn balanced_allocation_prefers_even_use() {
    // Same free share on average, but "even" stays balanced after a CPU-and-memory pod.
    let mut even = node("even", "z1", 4000, 4 * GI);
    even.allocatable.milli_cpu = 4000;
    let lopsided = node("lopsided", "z1", 8000, 2 * GI);
    let mut snap = cluster(vec![even, lopsided]);
    let mut sc = sched();
    let p = pod_with(
        "p",
        json!({}),
        "1",
        json!({"containers": [{"name": "c",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}),
    );
    let scores = sc.scores(&mut snap, &p);
    assert_eq!(scores[0].0, "even", "{scores:?}");
}

#[test]
fn preferred_node_affinity_weights_add_up() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.labels.insert("disk".into(), "ssd".into());
    let mut b = node("b", "z2", 4000, 8 * GI);
    b.labels.insert("net".into(), "fast".into());
    let mut snap = cluster(vec![a, b, node("c", "z3", 4000, 8 * GI)]);
    let p = pod_with(
        "p",
        json!({}),
        "100m",
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
            {"weight": 50, "preference": {"matchExpressions": [{"key": "net", "operator": "Exists"}]}}]}}}),
    );
    let scores = sched().scores(&mut snap, &p);
    let names: Vec<&str> = scores.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["b", "a", "c"]);
    // Normalised to 100 for the best and weighted 2: 200 apart from the node matching nothing.
    assert_eq!(scores[0].1 - scores[2].1, 200);
}

#[test]
fn prefer_no_schedule_taints_are_avoided_unless_tolerated() {
    let mut a = node("a", "z1", 4000, 8 * GI);
    a.taints
        .push(TaintRef::new("soft", "x", Effect::PreferNoSchedule));
    let mut snap = cluster(vec![a, node("b", "z1", 4000, 8 * GI)]);
    let mut sc = sched();
    let scores = sc.scores(&mut snap, &pod("p"));
    assert_eq!(scores[0].0, "b");
    assert_eq!(scores[0].1 - scores[1].1, 300, "100 normalised, weight 3");
    let tolerant = pod_with(
        "t",
        json!({}),
        "100m",
        json!({"tolerations": [{"key": "soft", "operator": "Exists", "effect": "PreferNoSchedule"}]}),
    );
    let scores = sc.scores(&mut snap, &tolerant);
    assert_eq!(scores[0].1, scores[1].1);
}

#[test]
fn preferred_anti_affinity_spreads_six_replicas_two_two_two() {
    let mut snap = three();
    let mut sc = sched();
    for i in 0..6 {
        assert!(
            place(
                &mut sc,
                &mut snap,
                anti(&format!("w{i}"), "web", LABEL_HOSTNAME, false)
            )
            .is_ok()
        );
        let c = counts(&snap);
        assert!(
            c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
            "{c:?}"
        );
    }
    assert_eq!(counts(&snap), vec![2, 2, 2]);
}

#[test]
fn preferred_affinity_draws_and_anti_affinity_repels() {
    let mut snap = three();
    let mut sc = sched();
    let db = pod_with("db", json!({"app": "db"}), "100m", json!({}));
    let db_node = place(&mut sc, &mut snap, db).unwrap();
    let near = pod_with(
        "near",
        json!({}),
        "100m",
        json!({"affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": LABEL_HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}}]}}}),
    );
    assert_eq!(sc.scores(&mut snap, &near)[0].0, db_node);
    let far = pod_with(
        "far",
        json!({}),
        "100m",
        json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": LABEL_HOSTNAME, "labelSelector": {"matchLabels": {"app": "db"}}}}]}}}),
    );
    let scores = sc.scores(&mut snap, &far);
    assert_eq!(scores.last().unwrap().0, db_node);
}

#[test]
fn placed_pods_terms_score_the_incoming_pod() {
    let mut snap = three();
    let mut sc = sched();
    // "shy" prefers no "web" pod next to it; a web pod then avoids shy's node.
    let shy = pod_with(
        "shy",
        json!({"app": "shy"}),
        "100m",
        json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": LABEL_HOSTNAME, "labelSelector": {"matchLabels": {"app": "web"}}}}]}}}),
    );
    let shy_node = place(&mut sc, &mut snap, shy).unwrap();
    let web = pod_with("web", json!({"app": "web"}), "100m", json!({}));
    assert_eq!(sc.scores(&mut snap, &web).last().unwrap().0, shy_node);
    // "friend" requires a "web" pod in its zone; a web pod is drawn to it (hard weight 1).
    let mut snap = three();
    let friend = pod_with(
        "friend",
        json!({"app": "web"}),
        "100m",
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": LABEL_HOSTNAME, "labelSelector": {"matchLabels": {"app": "web"}}}]}}}),
    );
    let friend_node = place(&mut sc, &mut snap, friend).unwrap();
    let other = pod_with("other", json!({"app": "web"}), "100m", json!({}));
    assert_eq!(sc.scores(&mut snap, &other)[0].0, friend_node);
}

#[test]
fn schedule_anyway_spread_prefers_the_emptier_domain() {
    let mut snap = three();
    let mut sc = sched();
    let spread = |name: &str| {
        pod_with(
            name,
            json!({"app": "s"}),
            "100m",
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": LABEL_ZONE,
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "s"}}}]}),
        )
    };
    for i in 0..9 {
        assert!(place(&mut sc, &mut snap, spread(&format!("s{i}"))).is_ok());
    }
    assert_eq!(counts(&snap), vec![3, 3, 3]);
}

fn replica(name: &str, rs: &str, cpu: &str) -> PodInfo {
    PodInfo::new(
        &serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": {"app": rs},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                    "uid": format!("rs-{rs}"), "controller": true}]},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
        }))
        .unwrap(),
    )
}

#[test]
fn a_workload_is_spread_by_default() {
    // One node is much bigger, so resource scores alone would stack the pods there.
    let mut snap = cluster(vec![
        node("big", "z1", 64000, 256 * GI),
        node("b", "z2", 8000, 16 * GI),
        node("c", "z3", 8000, 16 * GI),
    ]);
    let mut sc = sched();
    let big = place(&mut sc, &mut snap, replica("r0", "rs", "1")).unwrap();
    assert_eq!(big, "big");
    let scores = sc.scores(&mut snap, &replica("r1", "rs", "1"));
    assert_ne!(scores[0].0, "big", "{scores:?}");
    let mut off = Scheduler::new(Config {
        default_spreading: false,
        ..Config::default()
    });
    assert_eq!(off.scores(&mut snap, &replica("r1", "rs", "1"))[0].0, "big");
    // Services spread the pods they select the same way.
    let mut snap = three();
    snap.set_service("ns", "svc", [("app".to_string(), "web".to_string())].into());
    let web = |name: &str| pod_with(name, json!({"app": "web"}), "0", json!({}));
    let mut sc = sched();
    for i in 0..3 {
        place(&mut sc, &mut snap, web(&format!("w{i}"))).unwrap();
    }
    assert_eq!(counts(&snap), vec![1, 1, 1]);
}

#[test]
fn equal_scores_are_broken_by_the_seed() {
    let run = |seed| {
        let mut snap = cluster(
            (0..20)
                .map(|i| node(&format!("n{i:02}"), "z", 4000, 8 * GI))
                .collect(),
        );
        let mut sc = Scheduler::new(Config {
            seed,
            ..Config::default()
        });
        (0..5)
            .map(|i| place(&mut sc, &mut snap, pod(&format!("p{i}"))).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn no_nodes_is_its_own_message() {
    let mut snap = Snapshot::new();
    assert_eq!(
        place(&mut sched(), &mut snap, pod("p")),
        Err("no nodes available to schedule pods".into())
    );
}

#[test]
fn node_changes_are_picked_up_between_cycles() {
    let mut snap = three();
    let mut sc = sched();
    for i in 0..3 {
        place(
            &mut sc,
            &mut snap,
            anti(&format!("w{i}"), "web", LABEL_HOSTNAME, true),
        )
        .unwrap();
    }
    assert!(place(&mut sc, &mut snap, anti("w3", "web", LABEL_HOSTNAME, true)).is_err());
    snap.upsert_node(node("d", "z1", 4000, 8 * GI));
    assert_eq!(
        place(&mut sc, &mut snap, anti("w3", "web", LABEL_HOSTNAME, true)),
        Ok("d".into())
    );
    snap.remove_node("d");
    snap.forget(&crate::PodKey("uid-w3".into()));
    assert!(place(&mut sc, &mut snap, anti("w4", "web", LABEL_HOSTNAME, true)).is_err());
    // Moving a node to a new hostname label frees its domain.
    let mut c = snap.node("c").unwrap().clone();
    c.labels.insert(LABEL_HOSTNAME.into(), "c-renamed".into());
    snap.upsert_node(c);
    assert!(place(&mut sc, &mut snap, anti("w5", "web", LABEL_HOSTNAME, true)).is_err());
    snap.forget(&crate::PodKey("uid-w2".into()));
    snap.forget(&crate::PodKey("uid-w1".into()));
    snap.forget(&crate::PodKey("uid-w0".into()));
    assert!(place(&mut sc, &mut snap, anti("w6", "web", LABEL_HOSTNAME, true)).is_ok());
}
