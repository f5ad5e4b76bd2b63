use super::*;
use k8s_openapi::api::apps::v1::{
    RollingUpdateStatefulSetStrategy, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaimSpec, PodCondition, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

fn set(replicas: i32) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("set-uid".into()),
            generation: Some(3),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some("nginx".into()),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..LabelSelector::default()
            },
            template: template("a:1"),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: None,
                }),
            }),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

fn revs() -> Revisions {
    Revisions {
        current: ("web-r1".into(), template("a:1")),
        update: ("web-r1".into(), template("a:1")),
    }
}

fn updating() -> Revisions {
    Revisions {
        current: ("web-r1".into(), template("a:1")),
        update: ("web-r2".into(), template("a:2")),
    }
}

/// A pod of the set in `phase`, ready or not, at revision `rev`.
fn pod(ord: i32, phase: &str, ready: bool, rev: &str) -> Pod {
    let mut p = new_pod(&set(3), ord, &(rev.to_string(), template("a:1")));
    p.status = Some(PodStatus {
        phase: Some(phase.into()),
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

fn up(ord: i32) -> Pod {
    pod(ord, "Running", true, "web-r1")
}

fn names(v: &[Pod]) -> Vec<String> {
    v.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn plan_of(s: &StatefulSet, pods: &[Pod], r: &Revisions) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    plan(s, &refs, r, &HashSet::new(), t(100))
}

#[test]
fn ordinals_parse_only_exact_names() {
    assert_eq!(ordinal("web", "web-0"), Some(0));
    assert_eq!(ordinal("web", "web-12"), Some(12));
    assert_eq!(ordinal("web", "web-01"), None);
    assert_eq!(ordinal("web", "web-x"), None);
    assert_eq!(ordinal("web", "webby-1"), None);
    assert_eq!(ordinal("web", "web-"), None);
    assert_eq!(ordinal("my-web", "my-web-3"), Some(3));
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time() {
    let s = set(3);
    let p = plan_of(&s, &[], &revs());
    assert_eq!(names(&p.create), vec!["web-0"]);
    // web-0 exists but is not ready: nothing more.
    let p = plan_of(&s, &[pod(0, "Pending", false, "web-r1")], &revs());
    assert!(p.create.is_empty());
    let p = plan_of(&s, &[pod(0, "Running", false, "web-r1")], &revs());
    assert!(p.create.is_empty());
    // Running and Ready: the next one.
    let p = plan_of(&s, &[up(0)], &revs());
    assert_eq!(names(&p.create), vec!["web-1"]);
    let p = plan_of(&s, &[up(0), up(1), up(2)], &revs());
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(p.status.replicas, 3);
    assert_eq!(p.status.ready_replicas, Some(3));
    assert_eq!(p.status.available_replicas, Some(3));
    assert_eq!(p.status.current_replicas, Some(3));
    assert_eq!(p.status.updated_replicas, Some(3));
    assert_eq!(p.status.observed_generation, Some(3));
    assert_eq!(p.status.current_revision.as_deref(), Some("web-r1"));
}

#[test]
fn a_gap_is_filled_before_anything_else() {
    let s = set(3);
    let p = plan_of(&s, &[up(0), up(2)], &revs());
    assert_eq!(names(&p.create), vec!["web-1"]);
}

#[test]
fn parallel_creates_and_deletes_at_once() {
    let mut s = set(3);
    s.spec.as_mut().unwrap().pod_management_policy = Some("Parallel".into());
    let p = plan_of(&s, &[], &revs());
    assert_eq!(names(&p.create), vec!["web-0", "web-1", "web-2"]);
    s.spec.as_mut().unwrap().replicas = Some(1);
    let p = plan_of(
        &s,
        &[up(0), pod(1, "Pending", false, "web-r1"), up(2)],
        &revs(),
    );
    assert_eq!(p.delete, vec!["web-2".to_string(), "web-1".to_string()]);
}

#[test]
fn scale_down_goes_from_the_highest_ordinal_one_at_a_time() {
    let s = set(1);
    let p = plan_of(&s, &[up(0), up(1), up(2)], &revs());
    assert_eq!(p.delete, vec!["web-2".to_string()]);
    // web-2 terminating: wait for it.
    let mut term = up(2);
    term.metadata.deletion_timestamp = Some(Time(t(99)));
    let p = plan_of(&s, &[up(0), up(1), term], &revs());
    assert!(p.delete.is_empty());
    // An unhealthy replica blocks scaling down...
    let p = plan_of(&s, &[pod(0, "Running", false, "web-r1"), up(1)], &revs());
    assert!(p.delete.is_empty());
    // ...but the first unhealthy condemned pod itself may go.
    let p = plan_of(
        &s,
        &[up(0), up(1), pod(2, "Running", false, "web-r1")],
        &revs(),
    );
    assert_eq!(p.delete, vec!["web-2".to_string()]);
}

#[test]
fn a_finished_pod_is_deleted_to_be_made_again() {
    let s = set(2);
    let p = plan_of(&s, &[pod(0, "Failed", false, "web-r1"), up(1)], &revs());
    assert_eq!(p.delete, vec!["web-0".to_string()]);
    assert!(p.create.is_empty());
}

#[test]
fn pods_have_identity_and_claims() {
    let mut s = set(2);
    s.spec.as_mut().unwrap().volume_claim_templates = Some(vec![PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec::default()),
        status: None,
    }]);
    let p = plan_of(&s, &[], &revs());
    let pod = &p.create[0];
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[POD_NAME_LABEL], "web-0");
    assert_eq!(labels[POD_INDEX_LABEL], "0");
    assert_eq!(labels[revision::HASH_LABEL], "web-r1");
    assert_eq!(labels["app"], "web");
    let vol = &spec.volumes.as_ref().unwrap()[0];
    assert_eq!(vol.name, "data");
    assert_eq!(
        vol.persistent_volume_claim.as_ref().unwrap().claim_name,
        "data-web-0"
    );
    assert_eq!(
        p.create_claims[0].metadata.name.as_deref(),
        Some("data-web-0")
    );
    assert_eq!(
        p.create_claims[0].metadata.labels.as_ref().unwrap()["app"],
        "web"
    );
    assert!(
        p.create_claims[0].metadata.owner_references.is_none(),
        "Retain keeps claims free of owners"
    );
    // An existing claim is not made again.
    let refs: Vec<&Pod> = Vec::new();
    let p = plan(
        &s,
        &refs,
        &revs(),
        &HashSet::from(["data-web-0".to_string()]),
        t(0),
    );
    assert!(p.create_claims.is_empty());
    // Delete with the set: the set owns them.
    s.spec
        .as_mut()
        .unwrap()
        .persistent_volume_claim_retention_policy =
        Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some("Delete".into()),
            when_scaled: Some("Retain".into()),
        });
    let c = claims(&s, 1);
    let owner = &c[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.uid.as_str(), owner.controller), ("set-uid", None));
}

#[test]
fn rolling_update_replaces_from_the_highest_ordinal_down() {
    let s = set(3);
    let r = updating();
    let p = plan_of(&s, &[up(0), up(1), up(2)], &r);
    assert_eq!(p.delete, vec!["web-2".to_string()]);
    // web-2 recreated at the update revision (it is missing).
    let p = plan_of(&s, &[up(0), up(1)], &r);
    assert_eq!(names(&p.create), vec!["web-2"]);
    assert_eq!(
        p.create[0].metadata.labels.as_ref().unwrap()[revision::HASH_LABEL],
        "web-r2"
    );
    assert_eq!(
        p.create[0].spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("a:2")
    );
    // Not ready yet: wait.
    let p = plan_of(&s, &[up(0), up(1), pod(2, "Running", false, "web-r2")], &r);
    assert!(p.delete.is_empty() && p.create.is_empty());
    // Ready: the next one down.
    let new2 = pod(2, "Running", true, "web-r2");
    let p = plan_of(&s, &[up(0), up(1), new2.clone()], &r);
    assert_eq!(p.delete, vec!["web-1".to_string()]);
    assert_eq!(p.status.updated_replicas, Some(1));
    assert_eq!(p.status.current_revision.as_deref(), Some("web-r1"));
    // All updated and ready: the update revision becomes current.
    let all = [
        pod(0, "Running", true, "web-r2"),
        pod(1, "Running", true, "web-r2"),
        new2,
    ];
    let p = plan_of(&s, &all, &r);
    assert_eq!(p.status.current_revision.as_deref(), Some("web-r2"));
    assert_eq!(p.status.current_replicas, Some(3));
}

#[test]
fn a_partition_keeps_lower_ordinals_at_the_current_revision() {
    let mut s = set(3);
    s.spec
        .as_mut()
        .unwrap()
        .update_strategy
        .as_mut()
        .unwrap()
        .rolling_update
        .as_mut()
        .unwrap()
        .partition = Some(2);
    let r = updating();
    let done2 = pod(2, "Running", true, "web-r2");
    let p = plan_of(&s, &[up(0), up(1), done2.clone()], &r);
    assert!(p.delete.is_empty(), "ordinals below the partition stay");
    // A pod below the partition that is missing comes back at the current revision.
    let p = plan_of(&s, &[up(0), done2], &r);
    assert_eq!(
        p.create[0].metadata.labels.as_ref().unwrap()[revision::HASH_LABEL],
        "web-r1"
    );
}

#[test]
fn on_delete_replaces_only_deleted_pods() {
    let mut s = set(2);
    s.spec.as_mut().unwrap().update_strategy = Some(StatefulSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    });
    let r = updating();
    let p = plan_of(&s, &[up(0), up(1)], &r);
    assert!(p.delete.is_empty());
    let p = plan_of(&s, &[up(0)], &r);
    assert_eq!(
        p.create[0].metadata.labels.as_ref().unwrap()[revision::HASH_LABEL],
        "web-r2",
        "a deleted pod comes back at the update revision"
    );
}

#[test]
fn min_ready_seconds_holds_the_next_pod() {
    let mut s = set(2);
    s.spec.as_mut().unwrap().min_ready_seconds = Some(200);
    let p = plan_of(&s, &[up(0)], &revs());
    assert!(p.create.is_empty());
    assert!(p.requeue.is_some());
    assert_eq!(p.status.available_replicas, Some(0));
}

#[test]
fn start_ordinal_shifts_names() {
    let mut s = set(2);
    s.spec.as_mut().unwrap().ordinals =
        Some(k8s_openapi::api::apps::v1::StatefulSetOrdinals { start: Some(5) });
    let p = plan_of(&s, &[], &revs());
    assert_eq!(names(&p.create), vec!["web-5"]);
    let p = plan_of(&s, &[up(0)], &revs());
    assert_eq!(names(&p.create), vec!["web-5"], "replicas first");
    assert!(p.delete.is_empty());
    let p = plan_of(&s, &[up(0), up(5), up(6)], &revs());
    assert_eq!(p.delete, vec!["web-0".to_string()], "web-0 is out of range");
}

#[test]
fn a_pod_without_status_yet_blocks_the_next() {
    let s = set(3);
    let mut p0 = up(0);
    p0.status = None;
    let p = plan_of(&s, &[p0], &revs());
    assert!(p.create.is_empty(), "{:?}", names(&p.create));
}

#[test]
fn when_scaled_delete_hands_claims_to_the_removed_pod() {
    let mut s = set(1);
    let mut pod = up(2);
    pod.metadata.uid = Some("pod-uid".into());
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data-web-2".into()),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    };
    assert_eq!(scaled_claim_owners(&s, &pod, &claim), None, "Retain");
    s.spec
        .as_mut()
        .unwrap()
        .persistent_volume_claim_retention_policy =
        Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some("Retain".into()),
            when_scaled: Some("Delete".into()),
        });
    let owners = scaled_claim_owners(&s, &pod, &claim).expect("an owner");
    assert_eq!(
        (
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str()
        ),
        ("Pod", "web-2", "pod-uid")
    );
    let mut owned = claim.clone();
    owned.metadata.owner_references = Some(owners);
    assert_eq!(scaled_claim_owners(&s, &pod, &owned), None, "once");
}

#[test]
fn an_adopted_pod_gets_its_identity_labels() {
    let s = set(1);
    let mut p0 = up(0);
    p0.metadata.labels.as_mut().unwrap().remove(POD_INDEX_LABEL);
    let p = plan_of(&s, &[p0], &revs());
    assert_eq!(p.relabel, vec!["web-0".to_string()]);
    let p = plan_of(&s, &[up(0)], &revs());
    assert!(p.relabel.is_empty());
}
