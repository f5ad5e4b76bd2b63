use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::*;
use crate::pods::fixtures::*;

const WEB: &[(&str, &str)] = &[("app", "web")];

fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn plan(rs: &ReplicaSet, pods: &[Arc<Pod>], settled: bool) -> Plan {
    plan_replicaset(rs, &[Arc::new(rs.clone())], pods, settled, t(1000)).expect("valid selector")
}

#[test]
fn creates_the_missing_pods() {
    let rs = replicaset("web", 3, WEB);
    assert_eq!(plan(&rs, &[], true).manage, Manage::Create(3));
    let me = pods::controller_ref(&rs);
    let one = pod("web-a", WEB).owned(&me).running("n").arc();
    assert_eq!(
        plan(&rs, std::slice::from_ref(&one), true).manage,
        Manage::Create(2)
    );
    let three: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| pod(&format!("web-{n}"), WEB).owned(&me).arc())
        .collect();
    assert_eq!(plan(&rs, &three, true).manage, Manage::Nothing);
}

#[test]
fn terminal_and_terminating_pods_are_replaced() {
    let rs = replicaset("web", 3, WEB);
    let me = pods::controller_ref(&rs);
    let pods = vec![
        pod("ok", WEB).owned(&me).running("n").arc(),
        pod("failed", WEB).owned(&me).phase("Failed").arc(),
        pod("done", WEB).owned(&me).phase("Succeeded").arc(),
        pod("leaving", WEB)
            .owned(&me)
            .running("n")
            .terminating()
            .arc(),
    ];
    let p = plan(&rs, &pods, true);
    assert_eq!(names(&p.owned), ["ok"]);
    assert_eq!(p.manage, Manage::Create(2));
}

#[test]
fn nothing_is_created_or_deleted_while_writes_are_in_flight_or_the_set_is_deleted() {
    let rs = replicaset("web", 3, WEB);
    let orphan = pod("orphan", WEB).arc();
    let p = plan(&rs, &[orphan], false);
    assert_eq!(p.manage, Manage::Nothing);
    assert_eq!(names(&p.adopt), ["orphan"], "claiming goes on");

    let mut deleting = replicaset("web", 3, WEB);
    deleting.metadata.deletion_timestamp = Some(Time(t(0)));
    assert_eq!(plan(&deleting, &[], true).manage, Manage::Nothing);
}

#[test]
fn scaling_down_deletes_the_least_valuable_pods() {
    let rs = replicaset("web", 2, WEB);
    let me = pods::controller_ref(&rs);
    let pods = vec![
        pod("ready-old", WEB)
            .owned(&me)
            .running("n")
            .ready(t(10))
            .arc(),
        pod("unassigned", WEB).owned(&me).arc(),
        pod("ready-new", WEB)
            .owned(&me)
            .running("n")
            .ready(t(990))
            .arc(),
        pod("pending", WEB).owned(&me).on("n").arc(),
    ];
    let Manage::Delete(victims) = plan(&rs, &pods, true).manage else {
        panic!("expected deletes");
    };
    assert_eq!(names(&victims), ["unassigned", "pending"]);

    let rs0 = replicaset("web", 0, WEB);
    let me0 = pods::controller_ref(&rs0);
    let pods: Vec<_> = pods
        .iter()
        .map(|p| {
            let mut p = (**p).clone();
            p.metadata.owner_references = Some(vec![me0.clone()]);
            Arc::new(p)
        })
        .collect();
    let Manage::Delete(victims) = plan(&rs0, &pods, true).manage else {
        panic!("expected deletes");
    };
    assert_eq!(victims.len(), 4);
}

#[test]
fn pods_doubled_up_with_sibling_pods_go_first() {
    // Two ReplicaSets of one Deployment; the sibling's pod shares node "busy".
    let deploy = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "web".into(),
        uid: "deploy".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut rs = replicaset("web-1", 1, WEB);
    rs.metadata.owner_references = Some(vec![deploy.clone()]);
    let mut sibling = replicaset("web-2", 1, &[("app", "web"), ("v", "2")]);
    sibling.metadata.owner_references = Some(vec![deploy]);
    let me = pods::controller_ref(&rs);
    let them = pods::controller_ref(&sibling);
    let pods = vec![
        pod("alone", WEB)
            .owned(&me)
            .running("quiet")
            .ready(t(10))
            .arc(),
        pod("crowded", WEB)
            .owned(&me)
            .running("busy")
            .ready(t(10))
            .arc(),
        pod("sibling", &[("app", "web"), ("v", "2")])
            .owned(&them)
            .running("busy")
            .ready(t(10))
            .arc(),
    ];
    let siblings = [Arc::new(rs.clone()), Arc::new(sibling)];
    let p = plan_replicaset(&rs, &siblings, &pods, true, t(1000)).expect("valid");
    let Manage::Delete(victims) = p.manage else {
        panic!("expected a delete");
    };
    assert_eq!(names(&victims), ["crowded"]);
}

#[test]
fn orphans_are_adopted_and_counted_and_strays_released() {
    let rs = replicaset("web", 2, WEB);
    let me = pods::controller_ref(&rs);
    let pods = vec![
        pod("orphan", WEB).running("n").arc(),
        pod("stray", &[("app", "db")]).owned(&me).running("n").arc(),
        pod("mine", WEB).owned(&me).running("n").arc(),
        pod("dead-orphan", WEB).phase("Failed").arc(),
    ];
    let p = plan(&rs, &pods, true);
    assert_eq!(names(&p.adopt), ["orphan"]);
    assert_eq!(names(&p.release), ["stray"]);
    assert_eq!(names(&p.owned), ["orphan", "mine"]);
    assert_eq!(p.manage, Manage::Nothing);
}

#[test]
fn one_sync_creates_at_most_a_burst() {
    let rs = replicaset("big", 2000, WEB);
    assert_eq!(plan(&rs, &[], true).manage, Manage::Create(BURST_REPLICAS));
}

#[test]
fn status_counts_labeled_ready_and_available_pods() {
    let mut rs = replicaset("web", 4, WEB);
    rs.metadata.generation = Some(7);
    let spec = rs.spec.as_mut().expect("spec");
    spec.min_ready_seconds = Some(30);
    spec.template
        .as_mut()
        .and_then(|t| t.metadata.as_mut())
        .and_then(|m| m.labels.as_mut())
        .expect("labels")
        .insert("tier".into(), "fe".into());
    let full = &[("app", "web"), ("tier", "fe")];
    let me = pods::controller_ref(&rs);
    let owned = vec![
        pod("long-ready", full)
            .owned(&me)
            .running("n")
            .ready(t(0))
            .arc(),
        pod("just-ready", full)
            .owned(&me)
            .running("n")
            .ready(t(990))
            .arc(),
        pod("starting", full).owned(&me).running("n").arc(),
        pod("partly-labeled", WEB).owned(&me).running("n").arc(),
    ];
    let s = replicaset_status(&rs, &owned, None, t(1000));
    assert_eq!(s.replicas, 4);
    assert_eq!(s.fully_labeled_replicas, Some(3));
    assert_eq!(s.ready_replicas, Some(2));
    assert_eq!(s.available_replicas, Some(1));
    assert_eq!(s.observed_generation, Some(7));
    assert!(s.conditions.is_none());
    assert!(same_status(&s, &s.clone()));
}

#[test]
fn a_failed_create_sets_replica_failure_until_one_succeeds() {
    let rs = replicaset("web", 3, WEB);
    let s = replicaset_status(
        &rs,
        &[],
        Some("pods \"web-\" is forbidden: exceeded quota"),
        t(1000),
    );
    let c = &s.conditions.as_ref().expect("conditions")[0];
    assert_eq!(c.type_, REPLICA_FAILURE);
    assert_eq!(c.status, "True");
    assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
    assert_eq!(
        c.message.as_deref(),
        Some("pods \"web-\" is forbidden: exceeded quota")
    );
    assert_eq!(c.last_transition_time, Some(Time(t(1000))));

    // Still failing: the condition stays as first reported.
    let mut failing = rs.clone();
    failing.status = Some(s.clone());
    let again = replicaset_status(&failing, &[], Some("other"), t(2000));
    assert_eq!(again.conditions, s.conditions);

    // A sync that succeeds clears it.
    let ok = replicaset_status(&failing, &[], None, t(3000));
    assert!(ok.conditions.is_none());
    assert!(!same_status(&s, &ok));

    // Deleting too many failed.
    let me = pods::controller_ref(&rs);
    let extra: Vec<_> = (0..4)
        .map(|i| pod(&format!("p{i}"), WEB).owned(&me).arc())
        .collect();
    let s = replicaset_status(&rs, &extra, Some("boom"), t(1000));
    assert_eq!(
        s.conditions.expect("conditions")[0].reason.as_deref(),
        Some("FailedDelete")
    );
}

#[test]
fn an_invalid_selector_is_an_error_not_a_panic() {
    let mut rs = replicaset("web", 1, WEB);
    rs.spec.as_mut().expect("spec").selector.match_expressions = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
            key: "app".into(),
            operator: "Maybe".into(),
            values: None,
        },
    ]);
    assert!(plan_replicaset(&rs, &[], &[], true, t(0)).is_err());
}
