//! Thousands of synthetic nodes and pods: every placement is checked against the rules from
//! first principles (not through the scheduler's own indexes), and workloads are checked to
//! spread.

use std::collections::{BTreeMap, HashMap, HashSet};

use berth_scheduler::pod::LABEL_ZONE;
use berth_scheduler::synthetic::{self, Workload};
use berth_scheduler::{Config, PodInfo, Readiness, Resources, Scheduler, Snapshot};
use k8s_openapi::api::core::v1::Pod;

fn app(p: &Pod) -> String {
    p.metadata.labels.as_ref().unwrap()["app"].clone()
}

fn next_to(p: &Pod) -> Option<String> {
    let terms = p
        .spec
        .as_ref()?
        .affinity
        .as_ref()?
        .pod_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    terms[0]
        .label_selector
        .as_ref()?
        .match_labels
        .as_ref()?
        .get("app")
        .cloned()
}

struct Run {
    snap: Snapshot,
    pods: Vec<(Pod, Workload)>,
    placed: Vec<Option<String>>,
    failures: Vec<String>,
}

fn run(nodes: usize, pods: usize, seed: u64) -> Run {
    let mut snap = Snapshot::new();
    for n in synthetic::nodes(nodes, seed) {
        snap.upsert_node(n);
    }
    let pods = synthetic::pods(pods, seed);
    let mut sc = Scheduler::new(Config::default());
    let mut placed = Vec::new();
    let mut failures = Vec::new();
    for (p, _) in &pods {
        let info = PodInfo::new(p);
        match sc.schedule(&mut snap, &info) {
            Ok(pl) => {
                snap.assume(info, &pl.node);
                placed.push(Some(pl.node));
            }
            Err(e) => {
                failures.push(format!("{}: {e}", info.name));
                placed.push(None);
            }
        }
    }
    Run {
        snap,
        pods,
        placed,
        failures,
    }
}

#[test]
fn five_thousand_nodes_take_thousands_of_pods_by_the_rules() {
    let r = run(5000, 12_000, 42);
    assert!(
        r.failures.is_empty(),
        "{:?}",
        &r.failures[..r.failures.len().min(5)]
    );

    let mut used: HashMap<&str, (Resources, i64)> = HashMap::new();
    let mut by_app: BTreeMap<String, Vec<(&str, Workload, &Pod)>> = BTreeMap::new();
    let mut host_ports: HashSet<&str> = HashSet::new();
    for ((p, kind), node) in r.pods.iter().zip(&r.placed) {
        let node = node.as_deref().unwrap();
        let facts = r.snap.node(node).unwrap();
        assert!(!facts.unschedulable, "a cordoned node took {node}");
        assert_eq!(facts.ready, Readiness::Ready);
        let gpu_node = facts.labels.contains_key("accelerator");
        assert_eq!(
            gpu_node,
            *kind == Workload::Gpu,
            "GPU nodes take GPU pods only"
        );
        if *kind == Workload::Ssd {
            assert_eq!(facts.labels["disk"], "ssd");
        }
        if *kind == Workload::HostPort {
            assert!(
                host_ports.insert(node),
                "two pods on host port 9000 of {node}"
            );
        }
        let info = PodInfo::new(p);
        let u = used.entry(node).or_default();
        u.0.add(&info.requests);
        u.1 += 1;
        by_app.entry(app(p)).or_default().push((node, *kind, p));
    }
    for (node, (req, count)) in &used {
        let f = r.snap.node(node).unwrap();
        assert!(
            req.milli_cpu <= f.allocatable.milli_cpu,
            "{node} CPU overcommitted"
        );
        assert!(
            req.memory <= f.allocatable.memory,
            "{node} memory overcommitted"
        );
        assert!(*count <= f.allowed_pods);
        assert_eq!(r.snap.pods_on(node) as i64, *count);
        assert_eq!(r.snap.requested_on(node).unwrap(), req);
    }

    let zone = |n: &str| r.snap.node(n).unwrap().labels[LABEL_ZONE].clone();
    let mut plain = 0;
    let mut plain_spread = 0;
    for (name, pods) in &by_app {
        let kind = pods[0].1;
        let distinct: HashSet<&str> = pods.iter().map(|(n, _, _)| *n).collect();
        match kind {
            Workload::OnePerNode => assert_eq!(distinct.len(), pods.len(), "{name}"),
            Workload::PreferSpread => assert_eq!(distinct.len(), pods.len(), "{name}"),
            Workload::ZoneSpread => {
                let mut per_zone = vec![0; synthetic::ZONES];
                for (n, _, _) in pods {
                    let z = zone(n);
                    per_zone[z.trim_start_matches("zone-").parse::<usize>().unwrap()] += 1;
                }
                let (min, max) = (
                    per_zone.iter().min().unwrap(),
                    per_zone.iter().max().unwrap(),
                );
                assert!(max - min <= 1, "{name}: {per_zone:?}");
            }
            Workload::NextTo => {
                if let Some(other) = next_to(pods[0].2) {
                    let zones: HashSet<String> =
                        by_app[&other].iter().map(|(n, _, _)| zone(n)).collect();
                    for (n, _, _) in pods {
                        assert!(zones.contains(&zone(n)), "{name} is not next to {other}");
                    }
                }
            }
            Workload::Plain => {
                plain += 1;
                if distinct.len() == pods.len() {
                    plain_spread += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        plain_spread * 100 >= plain * 95,
        "only {plain_spread} of {plain} plain workloads have one pod per node"
    );
}

#[test]
fn a_full_cluster_says_why_and_recovers_when_pods_go() {
    // 200 small nodes (2 CPU each, minus the tainted and cordoned ones) and pods of 1 CPU.
    let mut snap = Snapshot::new();
    for i in 0..200 {
        snap.upsert_node(synthetic::node(
            &format!("n{i}"),
            &format!("zone-{}", i % 4),
            2000,
            8 << 30,
        ));
    }
    let mut sc = Scheduler::new(Config::default());
    let mut keys = Vec::new();
    for i in 0..400 {
        let info = PodInfo::new(&synthetic::pod(
            "ns",
            "fill",
            i,
            Workload::Plain,
            1000,
            64,
            None,
        ));
        let pl = sc
            .schedule(&mut snap, &info)
            .expect("room for two per node");
        keys.push(info.key.clone());
        snap.assume(info, &pl.node);
    }
    for n in snap.node_names().map(str::to_owned).collect::<Vec<_>>() {
        assert_eq!(snap.pods_on(&n), 2);
    }
    let extra = PodInfo::new(&synthetic::pod(
        "ns",
        "extra",
        0,
        Workload::Plain,
        1000,
        64,
        None,
    ));
    let err = sc.schedule(&mut snap, &extra).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/200 nodes are available: 200 Insufficient cpu."
    );
    snap.forget(&keys[123]);
    let pl = sc.schedule(&mut snap, &extra).unwrap();
    assert_eq!(
        pl.evaluated, 200,
        "every node was visited to find the one with room"
    );
}

#[test]
fn large_clusters_score_only_a_share_of_the_nodes() {
    let mut snap = Snapshot::new();
    for n in synthetic::nodes(5000, 3) {
        snap.upsert_node(n);
    }
    let mut sc = Scheduler::new(Config::default());
    let info = PodInfo::new(&synthetic::pod(
        "ns",
        "one",
        0,
        Workload::Plain,
        100,
        64,
        None,
    ));
    let pl = sc.schedule(&mut snap, &info).unwrap();
    assert_eq!(
        pl.feasible, 500,
        "10% of 5,000 nodes, as kube-scheduler's adaptive rule"
    );
    assert!(pl.evaluated >= 500 && pl.evaluated < 1000);
    let mut all = Scheduler::new(Config {
        percentage_of_nodes_to_score: 100,
        ..Config::default()
    });
    let pl = all.schedule(&mut snap, &info).unwrap();
    assert_eq!(pl.evaluated, 5000);
}
