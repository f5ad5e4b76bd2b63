use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::*;
use crate::pods::fixtures::*;

const WEB: &[(&str, &str)] = &[("app", "web")];

/// A rolling Deployment `default/web` of `replicas` with maxSurge/maxUnavailable, the defaults
/// otherwise (revisionHistoryLimit 10, progressDeadlineSeconds 600).
fn deployment(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-web".into()),
            resource_version: Some("1".into()),
            generation: Some(1),
            creation_timestamp: Some(Time(t(0))),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(WEB)),
                match_expressions: None,
            },
            template: template(WEB, "busybox:1"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            min_ready_seconds: None,
            paused: None,
        }),
        status: None,
    }
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

fn int(i: i32) -> IntOrString {
    IntOrString::Int(i)
}

/// Gives the template an env value (a "new version").
fn set_version(d: &mut Deployment, v: &str) {
    let spec = d.spec.as_mut().expect("spec");
    let t = &mut spec.template;
    t.spec.as_mut().expect("pod spec").containers[0].env = Some(vec![EnvVar {
        name: "VERSION".into(),
        value: Some(v.into()),
        value_from: None,
    }]);
    d.metadata.generation = Some(d.metadata.generation.unwrap_or(0) + 1);
}

/// A Deployment and its ReplicaSets, with the API's and the ReplicaSet controller's part played
/// in memory: pods of a ReplicaSet exist one tick after it is scaled up and are available one
/// tick after that (or never, when `stuck`); scaled-down pods go at once.
struct World {
    d: Deployment,
    rss: Vec<ReplicaSet>,
    others: Vec<ReplicaSet>,
    now: Timestamp,
    next_uid: u32,
    stuck: bool,
    writes: usize,
}

impl World {
    fn new(d: Deployment) -> Self {
        Self {
            d,
            rss: Vec::new(),
            others: Vec::new(),
            now: t(100),
            next_uid: 0,
            stuck: false,
            writes: 0,
        }
    }

    fn step(&mut self) -> Step {
        let owned: Vec<Arc<ReplicaSet>> = self.rss.iter().cloned().map(Arc::new).collect();
        let mut ns = owned.clone();
        ns.extend(self.others.iter().cloned().map(Arc::new));
        rollout_step(&self.d, &owned, &ns, &[], self.now)
    }

    fn apply(&mut self, step: &Step) {
        for a in &step.actions {
            self.writes += 1;
            match a.clone() {
                Action::CreateReplicaSet(mut rs) => {
                    self.next_uid += 1;
                    rs.metadata.uid = Some(format!("rs-uid-{}", self.next_uid));
                    rs.metadata.creation_timestamp = Some(Time(self.now));
                    rs.metadata.generation = Some(1);
                    rs.status = Some(ReplicaSetStatus::default());
                    assert!(
                        !self.rss.iter().any(|o| o.metadata.name == rs.metadata.name),
                        "created twice"
                    );
                    self.rss.push(rs);
                }
                Action::UpdateReplicaSet(rs) => {
                    let i = self
                        .rss
                        .iter()
                        .position(|o| o.metadata.name == rs.metadata.name)
                        .expect("updates an existing ReplicaSet");
                    let mut rs = rs;
                    rs.status = self.rss[i].status.clone();
                    self.rss[i] = rs;
                }
                Action::DeleteReplicaSet(name, _) => {
                    self.rss
                        .retain(|o| o.metadata.name.as_deref() != Some(name.as_str()));
                }
                Action::SetRevision(r) => {
                    self.d
                        .metadata
                        .annotations
                        .get_or_insert_default()
                        .insert(REVISION.into(), r);
                }
                Action::UpdateStatus(s) => self.d.status = Some(s),
            }
        }
    }

    /// The ReplicaSet controller and the pods catch up by one tick; true if a status changed.
    fn tick(&mut self) -> bool {
        let before: Vec<_> = self.rss.iter().map(|rs| rs.status.clone()).collect();
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(1))
            .expect("time");
        let stuck = self.stuck;
        let newest = self.rss.iter().map(created).max().flatten();
        for rs in &mut self.rss {
            let want = rs_replicas(rs);
            let is_newest = created(rs) == newest;
            let st = rs.status.get_or_insert_default();
            let had = st.replicas;
            let available = st.available_replicas.unwrap_or(0);
            let next_available = if stuck && is_newest {
                0
            } else {
                want.min(had).max(available.min(want))
            };
            st.replicas = want;
            st.ready_replicas = Some(next_available);
            st.available_replicas = Some(next_available);
            st.observed_generation = rs.metadata.generation;
        }
        before
            != self
                .rss
                .iter()
                .map(|rs| rs.status.clone())
                .collect::<Vec<_>>()
    }

    fn total_pods(&self) -> i32 {
        self.rss.iter().map(rs_replicas).sum()
    }

    fn available(&self) -> i32 {
        self.rss.iter().map(rs_available).sum()
    }

    /// Steps and ticks until nothing is written; returns the number of rounds.
    fn settle(&mut self, mut check: impl FnMut(&World)) -> usize {
        for round in 0..200 {
            let step = self.step();
            self.apply(&step);
            check(self);
            let changed = self.tick();
            check(self);
            if step.actions.is_empty() && !changed {
                return round;
            }
        }
        panic!("no steady state after 200 rounds");
    }

    fn rs_named(&self, prefix_of_revision: &str) -> &ReplicaSet {
        self.rss
            .iter()
            .find(|rs| annotation(&rs.metadata, REVISION) == Some(prefix_of_revision))
            .unwrap_or_else(|| panic!("a ReplicaSet of revision {prefix_of_revision}"))
    }

    fn progressing_reason(&self) -> Option<String> {
        condition(self.d.status.as_ref()?, PROGRESSING).and_then(|c| c.reason.clone())
    }
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), (3, 2));
    assert_eq!(fenceposts(Some(&pct("25%")), Some(&pct("25%")), 3), (1, 0));
    assert_eq!(fenceposts(Some(&int(0)), Some(&int(0)), 5), (0, 1));
    assert_eq!(fenceposts(Some(&pct("0%")), Some(&pct("10%")), 5), (0, 1));
    assert_eq!(fenceposts(Some(&int(2)), Some(&pct("50%")), 5), (2, 2));
    assert_eq!(fenceposts(Some(&pct("x")), Some(&int(1)), 5), (0, 0));
    assert!(scaled_value(&pct("50"), 4, true).is_err());
    let d = deployment(2, int(0), int(5));
    assert_eq!(max_unavailable(&d), 2, "never more than the replicas");
    let d0 = deployment(0, int(1), int(1));
    assert_eq!(max_unavailable(&d0), 0);
    let mut recreate = deployment(3, int(1), int(1));
    recreate.spec.as_mut().expect("spec").strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
}

#[test]
fn a_new_deployment_creates_its_first_replicaset() {
    let mut w = World::new(deployment(3, pct("25%"), pct("25%")));
    let step = w.step();
    let Action::CreateReplicaSet(rs) = &step.actions[0] else {
        panic!("first a create: {:?}", step.actions);
    };
    let tpl = w.d.spec.as_ref().map(|s| s.template.clone()).expect("tpl");
    let hash = pods::template_hash(&tpl, None);
    assert_eq!(
        rs.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(rs.metadata.namespace.as_deref(), Some("default"));
    let hashed = labels(&[("app", "web"), (POD_TEMPLATE_HASH, &hash)]);
    assert_eq!(rs.metadata.labels.as_ref(), Some(&hashed));
    let spec = rs.spec.as_ref().expect("spec");
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&hashed));
    assert_eq!(
        spec.template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref()),
        Some(&hashed)
    );
    assert_eq!(
        spec.replicas,
        Some(3),
        "maxSurge 1 of 3 leaves room for all"
    );
    let owner = &rs.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("Deployment", "web", "uid-web")
    );
    assert_eq!(owner.block_owner_deletion, Some(true));
    let a = rs.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
    assert_eq!(a.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
    assert_eq!(a.get(MAX_REPLICAS).map(String::as_str), Some("4"));
    assert!(rs.metadata.creation_timestamp.is_none());
    assert!(step.actions.contains(&Action::SetRevision("1".into())));
    let Some(Action::UpdateStatus(status)) = step.actions.last() else {
        panic!("the status last");
    };
    let c = condition(status, PROGRESSING).expect("progressing");
    assert_eq!(c.reason.as_deref(), Some(reason::NEW_RS_CREATED));
    assert_eq!(
        c.message.as_deref(),
        Some(format!("Created new replica set \"web-{hash}\"").as_str())
    );
    let a = condition(status, AVAILABLE).expect("available");
    assert_eq!(
        (a.status.as_str(), a.reason.as_deref()),
        ("False", Some(reason::MIN_UNAVAILABLE))
    );
    assert_eq!(status.observed_generation, Some(1));

    // Rolled out: complete, available, revision 1.
    w.apply(&step);
    w.settle(|_| {});
    let s = w.d.status.clone().expect("status");
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    assert_eq!(s.unavailable_replicas, None);
    assert_eq!(
        w.progressing_reason().as_deref(),
        Some(reason::NEW_RS_AVAILABLE)
    );
    let c = condition(&s, PROGRESSING).expect("progressing");
    assert_eq!(
        c.message.as_deref(),
        Some(format!("ReplicaSet \"web-{hash}\" has successfully progressed.").as_str())
    );
    let a = condition(&s, AVAILABLE).expect("available");
    assert_eq!(
        (a.status.as_str(), a.reason.as_deref(), a.message.as_deref()),
        (
            "True",
            Some(reason::MIN_AVAILABLE),
            Some("Deployment has minimum availability.")
        )
    );
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("1"));
    assert!(w.step().actions.is_empty(), "steady");
    assert_eq!(
        w.step().requeue_after,
        None,
        "complete: no deadline to watch"
    );
}

/// Rolls `d` out, changes the template, and checks every intermediate state against the
/// bounds: never more than replicas + maxSurge pods, never fewer than replicas -
/// maxUnavailable available.
fn roll(replicas: i32, surge: IntOrString, unavailable: IntOrString) {
    let d = deployment(replicas, surge.clone(), unavailable.clone());
    let (max_s, max_u) = (max_surge(&d), max_unavailable(&d));
    let mut w = World::new(d);
    w.settle(|_| {});
    assert_eq!(w.available(), replicas);
    set_version(&mut w.d, "2");
    let mut states = 0;
    w.settle(|w| {
        states += 1;
        assert!(
            w.total_pods() <= replicas + max_s,
            "{} pods, more than {replicas} + {max_s}",
            w.total_pods()
        );
        assert!(
            w.available() >= replicas - max_u,
            "{} available, fewer than {replicas} - {max_u}",
            w.available()
        );
    });
    assert!(states > 2);
    let new = w.rs_named("2");
    assert_eq!(rs_replicas(new), replicas);
    assert_eq!(rs_replicas(w.rs_named("1")), 0);
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("2"));
    assert_eq!(
        w.progressing_reason().as_deref(),
        Some(reason::NEW_RS_AVAILABLE)
    );
    let s = w.d.status.clone().expect("status");
    assert_eq!(
        (s.updated_replicas, s.available_replicas),
        (Some(replicas), Some(replicas))
    );
}

#[test]
fn rolling_updates_stay_within_surge_and_unavailability() {
    roll(4, int(1), int(1));
    roll(10, pct("25%"), pct("25%"));
    roll(3, int(0), int(1));
    roll(3, int(1), int(0));
    roll(5, pct("100%"), int(0));
    roll(1, pct("25%"), pct("25%"));
}

#[test]
fn the_first_scale_up_of_a_rollout_is_bounded_by_max_surge() {
    let mut w = World::new(deployment(4, int(1), int(1)));
    w.settle(|_| {});
    set_version(&mut w.d, "2");
    let step = w.step();
    let Action::CreateReplicaSet(rs) = &step.actions[0] else {
        panic!("a create");
    };
    assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(1));
    // With the new ReplicaSet unavailable and all old pods available, one old pod may go.
    w.apply(&step);
    assert_eq!(rs_replicas(w.rs_named("1")), 3);
}

#[test]
fn recreate_scales_old_pods_away_before_the_new_replicaset() {
    let mut d = deployment(3, int(1), int(1));
    d.spec.as_mut().expect("spec").strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let mut w = World::new(d);
    w.settle(|_| {});
    assert_eq!(w.available(), 3);
    set_version(&mut w.d, "2");

    // First the old ReplicaSet goes to zero; nothing new yet.
    let step = w.step();
    assert!(
        step.actions
            .iter()
            .all(|a| !matches!(a, Action::CreateReplicaSet(_)))
    );
    w.apply(&step);
    assert_eq!(rs_replicas(w.rs_named("1")), 0);
    assert_eq!(w.rss.len(), 1);

    // Its status still counts pods: wait.
    let step = w.step();
    assert!(
        step.actions
            .iter()
            .all(|a| !matches!(a, Action::CreateReplicaSet(_)))
    );

    // The status says zero but a terminating pod of it remains: wait still.
    w.tick();
    let old = Arc::new(w.rs_named("1").clone());
    let leaving = pod("web-old", WEB)
        .owned(&pods::controller_ref(old.as_ref()))
        .running("n")
        .terminating()
        .arc();
    let owned = vec![Arc::clone(&old)];
    let step = rollout_step(&w.d, &owned, &owned, &[leaving], w.now);
    assert!(
        step.actions
            .iter()
            .all(|a| !matches!(a, Action::CreateReplicaSet(_)))
    );

    // Gone: the new ReplicaSet is created at full size at once.
    let step = w.step();
    let Some(Action::CreateReplicaSet(rs)) = step.actions.first() else {
        panic!("a create: {:?}", step.actions);
    };
    assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(3));
    w.apply(&step);
    w.settle(|w| assert!(w.total_pods() <= 3));
    assert_eq!(w.available(), 3);
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("2"));
}

#[test]
fn a_rollback_reuses_the_old_replicaset_with_the_next_revision() {
    let mut w = World::new(deployment(2, int(1), int(0)));
    w.settle(|_| {});
    let v1 = w.d.spec.as_ref().map(|s| s.template.clone()).expect("tpl");
    set_version(&mut w.d, "2");
    w.settle(|_| {});
    let first = w.rs_named("1").metadata.name.clone();
    assert_eq!(w.rss.len(), 2);

    // kubectl rollout undo: the template of revision 1 again.
    w.d.spec.as_mut().expect("spec").template = v1;
    w.d.metadata.generation = Some(3);
    w.settle(|_| {});
    assert_eq!(w.rss.len(), 2, "no new ReplicaSet");
    let back = w.rs_named("3");
    assert_eq!(back.metadata.name, first);
    assert_eq!(annotation(&back.metadata, REVISION_HISTORY), Some("1"));
    assert_eq!(rs_replicas(back), 2);
    assert_eq!(rs_replicas(w.rs_named("2")), 0);
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("3"));

    // And forward again: revision 2's ReplicaSet becomes 4, remembering 2.
    set_version(&mut w.d, "2");
    w.settle(|_| {});
    let again = w.rs_named("4");
    assert_eq!(annotation(&again.metadata, REVISION_HISTORY), Some("2"));
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("4"));
}

#[test]
fn revision_history_is_trimmed_to_its_length_limit() {
    let d = deployment(1, int(1), int(0));
    let mut rs = replicaset("web-x", 1, WEB);
    let long: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let history = long.join(",");
    rs.metadata.annotations = Some(
        [
            (REVISION.to_owned(), "700".to_owned()),
            (REVISION_HISTORY.to_owned(), history.clone()),
        ]
        .into(),
    );
    assert!(set_new_rs_annotations(&d, &mut rs, 701, true));
    let got = annotation(&rs.metadata, REVISION_HISTORY).expect("history");
    assert!(got.len() <= MAX_REVISION_HISTORY_CHARS, "{}", got.len());
    assert!(got.ends_with(",700"));
    assert!(!got.starts_with("0,"), "the oldest were dropped");
    // A lower revision never replaces a higher one.
    assert!(!set_new_rs_annotations(&d, &mut rs, 5, true));
    assert_eq!(annotation(&rs.metadata, REVISION), Some("701"));
}

#[test]
fn deployment_annotations_but_kubectls_and_the_revision_are_copied() {
    let mut w = World::new(deployment(1, int(1), int(0)));
    w.d.metadata.annotations = Some(
        [
            ("kubernetes.io/change-cause".to_owned(), "first".to_owned()),
            (LAST_APPLIED.to_owned(), "{}".to_owned()),
            (REVISION.to_owned(), "99".to_owned()),
        ]
        .into(),
    );
    let step = w.step();
    let Action::CreateReplicaSet(rs) = &step.actions[0] else {
        panic!("a create");
    };
    let a = rs.metadata.annotations.as_ref().expect("annotations");
    assert_eq!(
        a.get("kubernetes.io/change-cause").map(String::as_str),
        Some("first")
    );
    assert!(!a.contains_key(LAST_APPLIED));
    assert_eq!(a.get(REVISION).map(String::as_str), Some("1"));
}

#[test]
fn a_paused_deployment_does_not_roll_out_but_scales_and_resumes() {
    let mut w = World::new(deployment(3, int(1), int(0)));
    w.settle(|_| {});
    w.d.spec.as_mut().expect("spec").paused = Some(true);
    set_version(&mut w.d, "2");
    w.settle(|_| {});
    assert_eq!(w.rss.len(), 1, "no new ReplicaSet while paused");
    assert_eq!(w.progressing_reason().as_deref(), Some(reason::PAUSED));
    let c = condition(w.d.status.as_ref().expect("status"), PROGRESSING).expect("cond");
    assert_eq!(
        (c.status.as_str(), c.message.as_deref()),
        ("Unknown", Some("Deployment is paused"))
    );
    assert_eq!(w.step().requeue_after, None, "no deadline while paused");

    // Scaling still happens.
    w.d.spec.as_mut().expect("spec").replicas = Some(5);
    w.d.metadata.generation = Some(3);
    w.settle(|_| {});
    assert_eq!(rs_replicas(w.rs_named("1")), 5);
    assert_eq!(
        w.d.status.as_ref().and_then(|s| s.observed_generation),
        Some(3)
    );

    // Resumed: the rollout proceeds.
    w.d.spec.as_mut().expect("spec").paused = Some(false);
    w.d.metadata.generation = Some(4);
    let step = w.step();
    let Some(Action::UpdateStatus(s)) = step.actions.last() else {
        panic!("a status");
    };
    assert!(
        step.actions
            .iter()
            .any(|a| matches!(a, Action::CreateReplicaSet(_)))
    );
    assert_eq!(
        condition(s, PROGRESSING).and_then(|c| c.reason.as_deref()),
        Some(reason::NEW_RS_CREATED)
    );
    w.apply(&step);
    w.settle(|_| {});
    assert_eq!(rs_replicas(w.rs_named("2")), 5);
    assert_eq!(
        w.progressing_reason().as_deref(),
        Some(reason::NEW_RS_AVAILABLE)
    );
}

#[test]
fn resuming_reports_deployment_resumed() {
    let mut w = World::new(deployment(1, int(1), int(0)));
    w.settle(|_| {});
    w.d.spec.as_mut().expect("spec").paused = Some(true);
    w.settle(|_| {});
    w.d.spec.as_mut().expect("spec").paused = Some(false);
    let step = w.step();
    w.apply(&step);
    let c = condition(w.d.status.as_ref().expect("status"), PROGRESSING).expect("cond");
    // Nothing to roll out: resumed, then the complete rollout is reported again.
    assert!(
        matches!(
            c.reason.as_deref(),
            Some(reason::RESUMED | reason::NEW_RS_AVAILABLE)
        ),
        "{c:?}"
    );
    w.settle(|_| {});
    assert_eq!(
        w.progressing_reason().as_deref(),
        Some(reason::NEW_RS_AVAILABLE)
    );
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline() {
    let mut w = World::new(deployment(2, int(1), int(0)));
    w.settle(|_| {});
    set_version(&mut w.d, "2");
    w.stuck = true;
    for _ in 0..5 {
        let step = w.step();
        w.apply(&step);
        w.tick();
    }
    assert_eq!(
        w.progressing_reason().as_deref(),
        Some(reason::REPLICA_SET_UPDATED)
    );
    let step = w.step();
    let wait = step.requeue_after.expect("a look at the deadline");
    assert!(
        wait > Duration::from_secs(590) && wait <= Duration::from_secs(601),
        "{wait:?}"
    );
    w.now = w
        .now
        .checked_add(jiff::SignedDuration::from_secs(601))
        .expect("t");
    let step = w.step();
    w.apply(&step);
    let c = condition(w.d.status.as_ref().expect("status"), PROGRESSING).expect("cond");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some(reason::TIMED_OUT))
    );
    let new_name = w.rs_named("2").metadata.name.clone().expect("name");
    assert_eq!(
        c.message.as_deref(),
        Some(format!("ReplicaSet \"{new_name}\" has timed out progressing.").as_str())
    );
    assert_eq!(w.step().requeue_after, None);
    // Pausing does not hide the missed deadline.
    w.d.spec.as_mut().expect("spec").paused = Some(true);
    let step = w.step();
    w.apply(&step);
    assert_eq!(w.progressing_reason().as_deref(), Some(reason::TIMED_OUT));
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    // Kubernetes' documented example: 10 replicas, maxSurge 3, maxUnavailable 2, a rollout
    // stuck at 8 old and 5 new; scaled to 15, 3 go to the old and 2 to the new ReplicaSet.
    let d = deployment(10, int(3), int(2));
    let deploy_ref = pods::controller_ref(&d);
    let mk = |name: &str, replicas: i32, version: Option<&str>, age: i64| {
        let mut rs = replicaset(name, replicas, WEB);
        rs.metadata.owner_references = Some(vec![deploy_ref.clone()]);
        rs.metadata.creation_timestamp = Some(Time(t(age)));
        let mut tpl = template(WEB, "busybox:1");
        if let Some(v) = version {
            tpl.spec.as_mut().expect("spec").containers[0].env = Some(vec![EnvVar {
                name: "VERSION".into(),
                value: Some(v.into()),
                value_from: None,
            }]);
        }
        rs.spec.as_mut().expect("spec").template = Some(tpl);
        rs.metadata.annotations = Some(
            [
                (DESIRED_REPLICAS.to_owned(), "10".to_owned()),
                (MAX_REPLICAS.to_owned(), "13".to_owned()),
                (
                    REVISION.to_owned(),
                    if version.is_some() { "2" } else { "1" }.to_owned(),
                ),
            ]
            .into(),
        );
        rs.status = Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(if version.is_some() { 0 } else { replicas }),
            ..ReplicaSetStatus::default()
        });
        rs
    };
    let mut w = World::new(d);
    set_version(&mut w.d, "2");
    w.rss = vec![mk("web-old", 8, None, 0), mk("web-new", 5, Some("2"), 50)];
    w.d.spec.as_mut().expect("spec").replicas = Some(15);
    let step = w.step();
    w.apply(&step);
    fn size(w: &World, name: &str) -> i32 {
        rs_replicas(
            w.rss
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
                .expect("rs"),
        )
    }
    assert_eq!((size(&w, "web-old"), size(&w, "web-new")), (11, 7));
    for rs in &w.rss {
        assert_eq!(annotation(&rs.metadata, DESIRED_REPLICAS), Some("15"));
        assert_eq!(annotation(&rs.metadata, MAX_REPLICAS), Some("18"));
    }
    // And down to 5: allowed 5 + 3 = 8 of 18, the larger first.
    w.d.spec.as_mut().expect("spec").replicas = Some(5);
    let step = w.step();
    w.apply(&step);
    assert_eq!(size(&w, "web-old") + size(&w, "web-new"), 8);
    assert_eq!((size(&w, "web-old"), size(&w, "web-new")), (5, 3));
    // To zero: everything goes.
    w.d.spec.as_mut().expect("spec").replicas = Some(0);
    let step = w.step();
    w.apply(&step);
    assert_eq!((size(&w, "web-old"), size(&w, "web-new")), (0, 0));
}

#[test]
fn scaling_a_settled_deployment_scales_its_only_replicaset() {
    let mut w = World::new(deployment(3, pct("25%"), pct("25%")));
    w.settle(|_| {});
    w.d.spec.as_mut().expect("spec").replicas = Some(6);
    w.d.metadata.generation = Some(2);
    let step = w.step();
    assert_eq!(step.actions.len(), 2, "{:?}", step.actions);
    w.apply(&step);
    let rs = w.rs_named("1");
    assert_eq!(rs_replicas(rs), 6);
    assert_eq!(annotation(&rs.metadata, DESIRED_REPLICAS), Some("6"));
    assert_eq!(annotation(&rs.metadata, MAX_REPLICAS), Some("8"));
    w.settle(|_| {});
    assert_eq!(w.available(), 6);
}

#[test]
fn old_replicasets_beyond_the_history_limit_are_deleted() {
    let mut w = World::new(deployment(1, int(1), int(0)));
    w.d.spec.as_mut().expect("spec").revision_history_limit = Some(1);
    w.settle(|_| {});
    for v in ["2", "3", "4"] {
        set_version(&mut w.d, v);
        w.settle(|_| {});
    }
    let mut revisions: Vec<_> = w
        .rss
        .iter()
        .map(|rs| {
            annotation(&rs.metadata, REVISION)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    revisions.sort();
    assert_eq!(revisions, ["3", "4"], "the current and one old");
}

#[test]
fn a_taken_name_counts_a_collision_and_the_next_sync_hashes_anew() {
    let mut w = World::new(deployment(1, int(1), int(0)));
    let tpl = w.d.spec.as_ref().map(|s| s.template.clone()).expect("tpl");
    let taken = format!("web-{}", pods::template_hash(&tpl, None));
    let mut squatter = replicaset(&taken, 1, &[("app", "other")]);
    squatter.metadata.uid = Some("someone-else".into());
    w.others = vec![squatter];
    let step = w.step();
    assert!(
        step.actions
            .iter()
            .all(|a| !matches!(a, Action::CreateReplicaSet(_)))
    );
    w.apply(&step);
    assert_eq!(w.d.status.as_ref().and_then(|s| s.collision_count), Some(1));
    let step = w.step();
    let Some(Action::CreateReplicaSet(rs)) = step.actions.first() else {
        panic!("a create");
    };
    assert_eq!(
        rs.metadata.name,
        Some(format!("web-{}", pods::template_hash(&tpl, Some(1))))
    );
}

#[test]
fn a_deployment_selecting_everything_only_records_its_generation() {
    let mut d = deployment(1, int(1), int(0));
    d.spec.as_mut().expect("spec").selector = LabelSelector::default();
    d.metadata.generation = Some(4);
    let step = rollout_step(&d, &[], &[], &[], t(0));
    assert_eq!(step.actions.len(), 1);
    let Action::UpdateStatus(s) = &step.actions[0] else {
        panic!("a status");
    };
    assert_eq!(s.observed_generation, Some(4));
}

#[test]
fn a_deployment_being_deleted_only_reports_status() {
    let mut w = World::new(deployment(2, int(1), int(0)));
    w.settle(|_| {});
    w.d.metadata.deletion_timestamp = Some(Time(t(0)));
    set_version(&mut w.d, "2");
    let step = w.step();
    assert!(
        step.actions
            .iter()
            .all(|a| matches!(a, Action::UpdateStatus(_))),
        "{:?}",
        step.actions
    );
}

#[test]
fn replica_failures_of_the_replicasets_show_on_the_deployment() {
    let mut w = World::new(deployment(2, int(1), int(0)));
    w.settle(|_| {});
    w.d.spec.as_mut().expect("spec").replicas = Some(3);
    let step = w.step();
    w.apply(&step);
    let st = w.rss[0].status.get_or_insert_default();
    st.conditions = Some(vec![k8s_openapi::api::apps::v1::ReplicaSetCondition {
        type_: REPLICA_FAILURE.into(),
        status: "True".into(),
        reason: Some("FailedCreate".into()),
        message: Some("pods \"web-\" is forbidden: exceeded quota".into()),
        last_transition_time: Some(Time(t(5))),
    }]);
    set_version(&mut w.d, "2");
    let step = w.step();
    w.apply(&step);
    let c = condition(w.d.status.as_ref().expect("status"), REPLICA_FAILURE).expect("copied");
    assert_eq!(c.reason.as_deref(), Some("FailedCreate"));
    assert_eq!(c.last_update_time, Some(Time(t(5))));
    w.rss[0].status.get_or_insert_default().conditions = None;
    let step = w.step();
    w.apply(&step);
    assert!(condition(w.d.status.as_ref().expect("status"), REPLICA_FAILURE).is_none());
}

#[test]
fn a_failed_create_is_reported_in_progressing() {
    let d = deployment(1, int(1), int(0));
    let s = failed_create_status(&d, "web-abc", "quota exceeded", t(9)).expect("deadline");
    let c = condition(&s, PROGRESSING).expect("cond");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        (
            "False",
            Some(reason::FAILED_RS_CREATE),
            Some("Failed to create new replica set \"web-abc\": quota exceeded")
        )
    );
    let mut no_deadline = d.clone();
    no_deadline
        .spec
        .as_mut()
        .expect("spec")
        .progress_deadline_seconds = Some(i32::MAX);
    assert!(failed_create_status(&no_deadline, "x", "y", t(0)).is_none());
}

#[test]
fn an_adopted_replicaset_with_the_template_is_the_new_one() {
    // An orphan ReplicaSet of the right template (adopted before the sync) is found, gets the
    // revision and the replica annotations; no second ReplicaSet is made.
    let mut w = World::new(deployment(2, int(1), int(0)));
    let mut rs = replicaset("web-adopted", 2, WEB);
    rs.metadata.owner_references = Some(vec![pods::controller_ref(&w.d)]);
    rs.status = Some(ReplicaSetStatus {
        replicas: 2,
        available_replicas: Some(2),
        ready_replicas: Some(2),
        ..ReplicaSetStatus::default()
    });
    w.rss = vec![rs];
    w.settle(|_| {});
    assert_eq!(w.rss.len(), 1);
    let rs = &w.rss[0];
    assert_eq!(annotation(&rs.metadata, REVISION), Some("1"));
    assert_eq!(annotation(&w.d.metadata, REVISION), Some("1"));
    // Replica annotations come with the first scaling, as in Kubernetes.
    assert_eq!(annotation(&rs.metadata, DESIRED_REPLICAS), None);
    w.d.spec.as_mut().expect("spec").replicas = Some(3);
    w.settle(|_| {});
    assert_eq!(annotation(&w.rss[0].metadata, DESIRED_REPLICAS), Some("3"));
}
