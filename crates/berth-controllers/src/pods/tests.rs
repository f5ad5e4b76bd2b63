use std::sync::Mutex;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::fixtures::*;
use super::*;

fn owner(uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        name: format!("rs-{uid}"),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn names(pods: &[Arc<Pod>]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[test]
fn terminal_and_terminating_pods_are_not_active() {
    assert!(is_active(&pod("a", &[]).0));
    assert!(is_active(&pod("a", &[]).running("n").0));
    assert!(!is_active(&pod("a", &[]).phase("Succeeded").0));
    assert!(!is_active(&pod("a", &[]).phase("Failed").0));
    assert!(!is_active(&pod("a", &[]).running("n").terminating().0));
}

#[test]
fn a_pod_is_available_once_ready_for_longer_than_min_ready_seconds() {
    let p = pod("a", &[]).running("n").ready(t(10)).0;
    assert!(is_ready(&p));
    assert!(is_available(&p, 0, t(10)));
    assert!(!is_available(&p, 5, t(15)), "exactly at the end is not yet");
    assert!(is_available(&p, 5, t(16)));
    assert_eq!(available_in(&p, 5, t(12)), Some(Duration::from_secs(3)));
    assert_eq!(available_in(&p, 5, t(16)), None);
    assert_eq!(available_in(&p, 0, t(12)), None);
    let not_ready = pod("b", &[]).running("n").0;
    assert!(!is_ready(&not_ready));
    assert!(!is_available(&not_ready, 0, t(100)));
    assert_eq!(available_in(&not_ready, 5, t(100)), None);
}

#[test]
fn claim_keeps_adopts_releases_and_ignores_as_the_ref_manager_does() {
    let me = owner("me");
    let other = owner("other");
    let sel = selector(Some(&LabelSelector {
        match_labels: Some(labels(&[("app", "web")])),
        match_expressions: None,
    }))
    .expect("valid");
    let owner_meta = ObjectMeta {
        name: Some("rs-me".into()),
        namespace: Some("default".into()),
        uid: Some("me".into()),
        ..ObjectMeta::default()
    };
    let candidates = vec![
        pod("mine", &[("app", "web")]).owned(&me).arc(),
        pod("mine-relabelled", &[("app", "db")]).owned(&me).arc(),
        pod("theirs", &[("app", "web")]).owned(&other).arc(),
        pod("orphan", &[("app", "web")]).arc(),
        pod("orphan-other-labels", &[("app", "db")]).arc(),
        pod("orphan-dying", &[("app", "web")]).terminating().arc(),
    ];
    let c = claim(&owner_meta, &sel, candidates.clone());
    assert_eq!(names(&c.owned), ["mine", "orphan"]);
    assert_eq!(names(&c.adopt), ["orphan"]);
    assert_eq!(names(&c.release), ["mine-relabelled"]);

    // An owner being deleted neither adopts nor releases.
    let mut deleting = owner_meta.clone();
    deleting.deletion_timestamp = Some(Time(t(0)));
    let c = claim(&deleting, &sel, candidates);
    assert_eq!(names(&c.owned), ["mine"]);
    assert!(c.adopt.is_empty() && c.release.is_empty());
}

#[test]
fn absent_selectors_match_nothing_and_empty_ones_everything() {
    let none = selector(None).expect("valid");
    assert!(!matches(&none, Some(&labels(&[("a", "b")]))));
    let all = selector(Some(&LabelSelector::default())).expect("valid");
    assert!(matches(&all, None));
    let bad = LabelSelector {
        match_expressions: Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                key: "a".into(),
                operator: "Sometimes".into(),
                values: None,
            },
        ]),
        match_labels: None,
    };
    assert!(selector(Some(&bad)).is_err());
}

#[test]
fn adoption_and_release_patches_keep_other_owners_and_are_conditional() {
    let me = owner("me");
    let gc = OwnerReference {
        controller: None,
        ..owner("someone")
    };
    let p = pod("a", &[]).owned(&gc).0;
    let adopt = adopt_patch(&me, &p.metadata);
    assert_eq!(adopt["metadata"]["resourceVersion"], "1");
    assert_eq!(adopt["metadata"]["uid"], "uid-a");
    let refs = adopt["metadata"]["ownerReferences"]
        .as_array()
        .expect("list");
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[1]["uid"], "me");
    assert_eq!(refs[1]["controller"], true);
    assert_eq!(refs[1]["blockOwnerDeletion"], true);

    let owned = pod("b", &[]).owned(&me).0;
    let release = release_patch("me", &owned.metadata);
    assert_eq!(release["metadata"]["ownerReferences"], Value::Null);
    let mut both = owned.clone();
    both.metadata.owner_references = Some(vec![gc.clone(), me.clone()]);
    let release = release_patch("me", &both.metadata);
    assert_eq!(release["metadata"]["ownerReferences"][0]["uid"], "someone");
}

#[test]
fn controller_ref_names_the_owner_kind_and_blocks_its_deletion() {
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web-abc".into()),
            uid: Some("u1".into()),
            ..ObjectMeta::default()
        },
        ..ReplicaSet::default()
    };
    let r = controller_ref(&rs);
    assert_eq!(
        (
            r.api_version.as_str(),
            r.kind.as_str(),
            r.name.as_str(),
            r.uid.as_str()
        ),
        ("apps/v1", "ReplicaSet", "web-abc", "u1")
    );
    assert_eq!(
        (r.controller, r.block_owner_deletion),
        (Some(true), Some(true))
    );
    let p = pod("x", &[]).owned(&r).0;
    assert!(is_controlled_by(&p.metadata, "u1"));
    assert!(!is_controlled_by(&p.metadata, "u2"));
}

#[test]
fn pods_from_a_template_carry_its_labels_spec_and_the_owner() {
    let mut tpl = template(&[("app", "web")], "busybox:1");
    tpl.metadata.as_mut().expect("meta").annotations = Some(labels(&[("note", "x")]));
    let p = pod_from_template(&tpl, "team", owner("me"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("team"));
    assert_eq!(p.metadata.labels, Some(labels(&[("app", "web")])));
    assert_eq!(p.metadata.annotations, Some(labels(&[("note", "x")])));
    assert_eq!(p.metadata.owner_references, Some(vec![owner("me")]));
    assert_eq!(p.spec, tpl.spec);
    assert!(p.metadata.name.is_none());
    assert_eq!(generate_name_prefix("web-abc"), "web-abc-");
}

#[test]
fn template_hashes_are_stable_safe_and_change_with_the_collision_count() {
    let a = template(&[("app", "web")], "busybox:1");
    let b = template(&[("app", "web")], "busybox:2");
    let h = template_hash(&a, None);
    assert_eq!(h, template_hash(&a.clone(), None));
    assert_ne!(h, template_hash(&b, None));
    assert_ne!(h, template_hash(&a, Some(1)));
    assert_ne!(template_hash(&a, Some(1)), template_hash(&a, Some(2)));
    assert!(!h.is_empty() && h.len() <= 10);
    assert!(h.bytes().all(|c| SAFE_ALPHANUMS.contains(&c)), "{h}");
}

#[test]
fn templates_compare_without_the_hash_label_and_empty_fields() {
    let a = template(&[("app", "web")], "busybox:1");
    let mut b = a.clone();
    b.metadata
        .as_mut()
        .expect("meta")
        .labels
        .as_mut()
        .expect("labels")
        .insert(POD_TEMPLATE_HASH.into(), "abc".into());
    assert!(templates_equal_ignoring_hash(&a, &b));
    b.metadata.as_mut().expect("meta").annotations = Some(BTreeMap::new());
    b.spec.as_mut().expect("spec").volumes = Some(vec![]);
    assert!(templates_equal_ignoring_hash(&a, &b));
    let c = template(&[("app", "web")], "busybox:2");
    assert!(!templates_equal_ignoring_hash(&a, &c));
}

#[tokio::test]
async fn slow_start_doubles_the_batch_and_stops_after_a_failing_batch() {
    let seen = Mutex::new(Vec::new());
    let (ok, err) = slow_start_batch(10, 1, |i| {
        seen.lock().expect("lock").push(i);
        async move { Ok::<_, String>(i) }
    })
    .await;
    assert_eq!((ok, err), (10, None));
    assert_eq!(seen.lock().expect("lock").len(), 10);

    // Batches 1, 2, 4: the call with index 5 (in the third batch) fails; the batch finishes
    // and no fourth batch starts.
    let calls = Mutex::new(0usize);
    let (ok, err) = slow_start_batch(20, 1, |i| {
        *calls.lock().expect("lock") += 1;
        async move {
            if i == 5 {
                Err(format!("quota at {i}"))
            } else {
                Ok(i)
            }
        }
    })
    .await;
    assert_eq!(ok, 6);
    assert_eq!(err.as_deref(), Some("quota at 5"));
    assert_eq!(*calls.lock().expect("lock"), 7);

    let (ok, err) = slow_start_batch(0, 1, |i| async move { Ok::<_, String>(i) }).await;
    assert_eq!((ok, err), (0, None));
}

#[tokio::test(start_paused = true)]
async fn expectations_hold_until_observed_or_lapsed() {
    let e: Expectations<&str> = Expectations::new();
    assert!(e.satisfied(&"rs"));
    e.expect_creations("rs", 2);
    assert!(!e.satisfied(&"rs"));
    e.creation_observed(&"rs");
    assert!(!e.satisfied(&"rs"));
    e.creation_observed(&"rs");
    assert!(e.satisfied(&"rs"));

    e.expect_deletions("rs", ["default/a".to_owned(), "default/b".to_owned()]);
    assert!(!e.satisfied(&"rs"));
    e.deletion_observed(&"rs", "default/a");
    e.deletion_observed(&"rs", "default/a");
    assert!(
        !e.satisfied(&"rs"),
        "one deletion observed twice counts once"
    );
    e.deletion_observed(&"rs", "default/b");
    assert!(e.satisfied(&"rs"));

    e.expect_creations("rs", 1);
    tokio::time::advance(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
    assert!(e.satisfied(&"rs"), "lapsed");
    e.forget(&"rs");
    assert!(e.satisfied(&"rs"));

    e.expect_creations("a", 1);
    e.expect_deletions("b", ["default/x".to_owned()]);
    e.clear();
    assert!(
        e.satisfied(&"a") && e.satisfied(&"b"),
        "a relist clears everything"
    );
}

#[test]
fn deletion_order_follows_kubernetes_ranking() {
    let now = t(10_000);
    let unassigned = pod("unassigned", &[]).arc();
    let pending = pod("pending", &[]).on("n1").arc();
    let unknown = pod("unknown", &[]).on("n1").phase("Unknown").arc();
    let running = pod("running", &[]).running("n1").arc();
    let ready_new = pod("ready-new", &[]).running("n1").ready(t(9_990)).arc();
    let ready_old = pod("ready-old", &[]).running("n1").ready(t(10)).arc();
    let pods = vec![
        ready_old.clone(),
        ready_new.clone(),
        running.clone(),
        unknown.clone(),
        pending.clone(),
        unassigned.clone(),
    ];
    assert_eq!(
        names(&deletion_order(&pods, &pods, now)),
        [
            "unassigned",
            "pending",
            "unknown",
            "running",
            "ready-new",
            "ready-old"
        ]
    );

    // Deletion cost comes before everything but readiness.
    let cheap = pod("cheap", &[])
        .running("n1")
        .ready(t(10))
        .annotated(POD_DELETION_COST, "-5")
        .arc();
    let dear = pod("dear", &[])
        .running("n1")
        .ready(t(9_990))
        .annotated(POD_DELETION_COST, "5")
        .arc();
    assert_eq!(
        names(&deletion_order(&[dear, cheap], &[], now)),
        ["cheap", "dear"]
    );

    // Doubled-up pods go before pods alone on their node.
    let crowded = pod("crowded", &[]).running("busy").ready(t(10)).arc();
    let alone = pod("alone", &[]).running("quiet").ready(t(10)).arc();
    let neighbour = pod("neighbour", &[]).running("busy").arc();
    assert_eq!(
        names(&deletion_order(
            &[alone.clone(), crowded.clone()],
            &[alone, crowded, neighbour],
            now
        )),
        ["crowded", "alone"]
    );

    // More restarts first, then newer first.
    let flaky = pod("flaky", &[]).running("n").restarts(4).arc();
    let steady = pod("steady", &[]).running("n").arc();
    assert_eq!(
        names(&deletion_order(&[steady, flaky], &[], now)),
        ["flaky", "steady"]
    );
    let old = pod("old", &[]).running("n").created(t(0)).arc();
    let young = pod("young", &[]).running("n").created(t(9_000)).arc();
    assert_eq!(
        names(&deletion_order(&[old, young], &[], now)),
        ["young", "old"]
    );
}
