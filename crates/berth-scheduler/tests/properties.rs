//! Property: on random small clusters and random pod sequences, a chosen node always passes
//! every filter, and a pod is declared unschedulable only when no node passes — both judged by
//! a naive reference that recomputes each rule from the list of placed pods.

use berth_scheduler::pod::{LABEL_HOSTNAME, LABEL_ZONE};
use berth_scheduler::selector::{Effect, TaintRef};
use berth_scheduler::{Config, NodeFacts, PodInfo, Resources, Scheduler, Snapshot};
use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
struct NodeModel {
    cpu: i64,
    mem_gi: i64,
    zone: usize,
    ssd: bool,
    tainted: bool,
    soft_taint: bool,
    cordoned: bool,
    allowed: i64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Anti {
    None,
    Host,
    Zone,
}

#[derive(Debug, Clone)]
struct PodModel {
    app: usize,
    cpu: i64,
    mem_mi: i64,
    port: Option<i32>,
    ssd: bool,
    tolerates: bool,
    anti: Anti,
    spread: bool,
}

fn node_model() -> impl Strategy<Value = NodeModel> {
    (
        prop::sample::select(vec![500i64, 1000, 2000, 4000]),
        1i64..=4,
        0usize..3,
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        1i64..=6,
    )
        .prop_map(
            |(cpu, mem_gi, zone, ssd, tainted, soft_taint, cordoned, allowed)| NodeModel {
                cpu,
                mem_gi,
                zone,
                ssd,
                tainted,
                soft_taint,
                cordoned,
                allowed,
            },
        )
}

fn pod_model() -> impl Strategy<Value = PodModel> {
    (
        0usize..3,
        prop::sample::select(vec![0i64, 100, 500, 1500]),
        prop::sample::select(vec![0i64, 256, 1024]),
        prop::option::weighted(0.2, prop::sample::select(vec![80, 81])),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.3),
        prop::sample::select(vec![Anti::None, Anti::None, Anti::Host, Anti::Zone]),
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(app, cpu, mem_mi, port, ssd, tolerates, anti, spread)| PodModel {
                app,
                cpu,
                mem_mi,
                port,
                ssd,
                tolerates,
                anti,
                spread,
            },
        )
}

fn facts(i: usize, m: &NodeModel) -> NodeFacts {
    let name = format!("n{i}");
    let mut labels: std::collections::BTreeMap<String, String> = [
        (LABEL_HOSTNAME.to_owned(), name.clone()),
        (LABEL_ZONE.to_owned(), format!("z{}", m.zone)),
    ]
    .into();
    if m.ssd {
        labels.insert("disk".into(), "ssd".into());
    }
    let mut f = NodeFacts::new(
        name,
        labels,
        Resources::cpu_memory(m.cpu, m.mem_gi << 30),
        m.allowed,
    );
    if m.tainted {
        f.taints
            .push(TaintRef::new("dedicated", "x", Effect::NoSchedule));
    }
    if m.soft_taint {
        f.taints
            .push(TaintRef::new("soft", "", Effect::PreferNoSchedule));
    }
    f.unschedulable = m.cordoned;
    f
}

fn api_pod(i: usize, m: &PodModel) -> k8s_openapi::api::core::v1::Pod {
    let app = format!("app{}", m.app);
    let mut requests = serde_json::Map::new();
    if m.cpu > 0 {
        requests.insert("cpu".into(), json!(format!("{}m", m.cpu)));
    }
    if m.mem_mi > 0 {
        requests.insert("memory".into(), json!(format!("{}Mi", m.mem_mi)));
    }
    let mut container = json!({"name": "c", "resources": {"requests": requests}});
    if let Some(p) = m.port {
        container["ports"] = json!([{"containerPort": p, "hostPort": p}]);
    }
    let mut spec = json!({"containers": [container]});
    if m.ssd {
        spec["nodeSelector"] = json!({"disk": "ssd"});
    }
    if m.tolerates {
        spec["tolerations"] = json!([{"key": "dedicated", "operator": "Exists"}]);
    }
    let key = match m.anti {
        Anti::None => None,
        Anti::Host => Some(LABEL_HOSTNAME),
        Anti::Zone => Some(LABEL_ZONE),
    };
    if let Some(key) = key {
        spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}}]}});
    }
    if m.spread {
        spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": LABEL_ZONE,
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": app}}}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("p{i}"), "namespace": "ns", "uid": format!("u{i}"),
            "labels": {"app": app}},
        "spec": spec
    }))
    .unwrap()
}

/// Every rule, recomputed from scratch: may pod `p` go on node `n` with `placed` as they are?
fn fits(nodes: &[NodeModel], placed: &[(PodModel, usize)], p: &PodModel, n: usize) -> bool {
    let node = &nodes[n];
    let on = |i: usize| {
        placed
            .iter()
            .filter(move |(_, at)| *at == i)
            .map(|(q, _)| q)
    };
    if node.cordoned || (node.tainted && !p.tolerates) || (p.ssd && !node.ssd) {
        return false;
    }
    if p.port.is_some() && on(n).any(|q| q.port == p.port) {
        return false;
    }
    if on(n).count() as i64 + 1 > node.allowed {
        return false;
    }
    let requested = p.cpu != 0 || p.mem_mi != 0;
    let cpu: i64 = on(n).map(|q| q.cpu).sum();
    let mem: i64 = on(n).map(|q| q.mem_mi).sum();
    if requested
        && ((p.cpu > 0 && cpu + p.cpu > node.cpu)
            || (p.mem_mi > 0 && mem + p.mem_mi > node.mem_gi * 1024))
    {
        return false;
    }
    if p.spread {
        let eligible: Vec<usize> = (0..nodes.len())
            .filter(|i| !p.ssd || nodes[*i].ssd)
            .collect();
        let mut per_zone = [None::<usize>; 3];
        for i in &eligible {
            let c = on(*i).filter(|q| q.app == p.app).count();
            let z = &mut per_zone[nodes[*i].zone];
            *z = Some(z.unwrap_or(0) + c);
        }
        let min = per_zone.iter().flatten().min().copied().unwrap_or(0);
        let here = per_zone[node.zone].unwrap_or(0);
        if here + 1 > min + 1 {
            return false;
        }
    }
    let same_domain = |anti: Anti, at: usize| match anti {
        Anti::None => false,
        Anti::Host => at == n,
        Anti::Zone => nodes[at].zone == node.zone,
    };
    // The pod's own anti-affinity, and that of placed pods of the same app (their terms select
    // their own app).
    for (q, at) in placed {
        if q.app == p.app && (same_domain(p.anti, *at) || same_domain(q.anti, *at)) {
            return false;
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn a_chosen_node_passes_every_filter(
        nodes in prop::collection::vec(node_model(), 1..10),
        pods in prop::collection::vec(pod_model(), 1..30),
        seed in any::<u64>(),
    ) {
        let mut snap = Snapshot::new();
        for (i, n) in nodes.iter().enumerate() {
            snap.upsert_node(facts(i, n));
        }
        let mut sched = Scheduler::new(Config { seed, ..Config::default() });
        let mut placed: Vec<(PodModel, usize)> = Vec::new();
        for (i, p) in pods.iter().enumerate() {
            let info = PodInfo::new(&api_pod(i, p));
            match sched.schedule(&mut snap, &info) {
                Ok(pl) => {
                    let n: usize = pl.node.trim_start_matches('n').parse().unwrap();
                    prop_assert!(fits(&nodes, &placed, p, n), "pod {i} {p:?} on {} breaks a rule", pl.node);
                    snap.assume(info, &pl.node);
                    placed.push((p.clone(), n));
                }
                Err(e) => {
                    let some = (0..nodes.len()).find(|n| fits(&nodes, &placed, p, *n));
                    prop_assert!(some.is_none(), "pod {i} {p:?} fits n{} but: {e}", some.unwrap_or(0));
                    let counted: usize = e.reasons.iter().map(|(_, c)| c).sum();
                    prop_assert!(counted >= nodes.len(), "{e}");
                    let prefix = format!("0/{} nodes are available: ", nodes.len());
                    prop_assert!(e.to_string().starts_with(&prefix), "{e}");
                }
            }
        }
    }
}
