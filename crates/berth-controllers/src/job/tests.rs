use super::*;
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn job(completions: Option<i32>, parallelism: i32) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some("pi".into()),
            namespace: Some("default".into()),
            uid: Some("job-uid".into()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism: Some(parallelism),
            backoff_limit: Some(6),
            completion_mode: Some("NonIndexed".into()),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("job-name".into(), "pi".into())])),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("busybox:1".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

fn indexed(completions: i32, parallelism: i32) -> Job {
    let mut j = job(Some(completions), parallelism);
    j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
    j
}

fn pod(n: &str, phase: &str, at: i64) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(n.into()),
            uid: Some(format!("uid-{n}")),
            finalizers: Some(vec![TRACKING_FINALIZER.into()]),
            creation_timestamp: Some(Time(t(at))),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name: "pi".into(),
                uid: "job-uid".into(),
                controller: Some(true),
                ..OwnerReference::default()
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: matches!(phase, "Succeeded" | "Failed").then(|| {
                vec![ContainerStatus {
                    name: "c".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: i32::from(phase == "Failed"),
                            finished_at: Some(Time(t(at))),
                            ..ContainerStateTerminated::default()
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                }]
            }),
            ..PodStatus::default()
        }),
    }
}

fn with_index(mut p: Pod, i: i32) -> Pod {
    p.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(INDEX_ANNOTATION.into(), i.to_string());
    p
}

fn ready(mut p: Pod) -> Pod {
    p.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "Ready".into(),
        status: "True".into(),
        ..PodCondition::default()
    }]);
    p
}

fn no_finalizer(mut p: Pod) -> Pod {
    p.metadata.finalizers = None;
    p
}

/// Applies a plan's status to the job, as a successful write would.
fn apply(j: &mut Job, p: &Plan) {
    if let Some(s) = &p.status {
        j.status = Some(s.clone());
    }
}

fn refs(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter().collect()
}

fn cond<'a>(j: &'a Job, ty: &str) -> Option<&'a JobCondition> {
    condition(j.status.as_ref()?, ty)
}

#[test]
fn a_new_job_starts_parallelism_pods_and_its_clock() {
    let j = job(Some(5), 2);
    let p = plan(&j, &[], t(0));
    assert_eq!(p.create, vec![None, None]);
    let st = p.status.unwrap();
    assert_eq!(st.start_time, Some(Time(t(0))));
    assert_eq!(st.active, Some(0));
}

#[test]
fn never_more_than_the_remaining_completions_run() {
    let mut j = job(Some(3), 5);
    j.status = Some(JobStatus {
        succeeded: Some(2),
        start_time: Some(Time(t(0))),
        ..JobStatus::default()
    });
    let p = plan(&j, &[], t(1));
    assert_eq!(p.create.len(), 1, "one completion left");
    let running = [pod("a", "Running", 0), pod("b", "Running", 1)];
    let p = plan(&j, &refs(&running), t(2));
    assert!(p.create.is_empty());
    assert_eq!(p.delete, vec!["b".to_string()], "the newest extra goes");
}

#[test]
fn a_succeeded_pod_is_counted_once_through_uncounted_uids() {
    let mut j = job(Some(2), 2);
    let pods = vec![pod("a", "Succeeded", 5), pod("b", "Running", 1)];
    // First pass: the UID is recorded, the finalizer is released after the status write.
    let p = plan(&j, &refs(&pods), t(6));
    let st = p.status.clone().unwrap();
    assert_eq!(
        st.uncounted_terminated_pods.as_ref().unwrap().succeeded,
        Some(vec!["uid-a".to_string()])
    );
    assert_eq!(st.succeeded, Some(0));
    assert_eq!(p.remove_finalizers, vec!["a".to_string()]);
    assert!(p.create.is_empty(), "1 succeeded + 1 active = 2");
    apply(&mut j, &p);
    // The same cache again: nothing is counted twice.
    let p2 = plan(&j, &refs(&pods), t(7));
    assert_eq!(p2.status, None, "nothing changed");
    assert_eq!(p2.remove_finalizers, vec!["a".to_string()], "retried");
    // The finalizer is gone: the UID moves into succeeded.
    let pods = vec![
        no_finalizer(pod("a", "Succeeded", 5)),
        pod("b", "Running", 1),
    ];
    let p3 = plan(&j, &refs(&pods), t(8));
    apply(&mut j, &p3);
    let st = j.status.clone().unwrap();
    assert_eq!(st.succeeded, Some(1));
    assert!(
        st.uncounted_terminated_pods
            .as_ref()
            .is_none_or(|u| u.succeeded.is_none())
    );
    let p4 = plan(&j, &refs(&pods), t(9));
    assert_eq!(p4.status, None, "stable");
}

#[test]
fn completions_reached_sets_success_criteria_then_complete() {
    let mut j = job(Some(1), 1);
    let done = vec![pod("a", "Succeeded", 5)];
    let p = plan(&j, &refs(&done), t(6));
    apply(&mut j, &p);
    let done = vec![no_finalizer(pod("a", "Succeeded", 5))];
    let p = plan(&j, &refs(&done), t(7));
    apply(&mut j, &p);
    let c = cond(&j, "SuccessCriteriaMet").expect("interim condition");
    assert_eq!(c.reason.as_deref(), Some("CompletionsReached"));
    let c = cond(&j, "Complete").expect("complete once nothing is uncounted");
    assert_eq!(c.reason.as_deref(), Some("CompletionsReached"));
    assert_eq!(j.status.as_ref().unwrap().completion_time, Some(Time(t(7))));
    assert!(is_finished(&j));
    assert!(p.events.iter().any(|e| e.1 == "Completed"));
    // Finished: nothing more happens.
    let p = plan(&j, &refs(&done), t(8));
    assert!(p.create.is_empty() && p.status.is_none());
}

#[test]
fn the_backoff_limit_fails_the_job_after_its_pods_stop() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().backoff_limit = Some(1);
    // One failure: within the limit, a new pod after the back-off.
    let pods = vec![no_finalizer(pod("a", "Failed", 10))];
    j.status = Some(JobStatus {
        failed: Some(1),
        start_time: Some(Time(t(0))),
        ..JobStatus::default()
    });
    let p = plan(&j, &refs(&pods), t(12));
    assert!(p.create.is_empty(), "backing off");
    assert_eq!(p.requeue, Some(Duration::from_secs(8)));
    let p = plan(&j, &refs(&pods), t(20));
    assert_eq!(p.create.len(), 1, "back-off over");
    // A second failure exceeds the limit; a still running pod is stopped first.
    let pods = vec![
        no_finalizer(pod("a", "Failed", 10)),
        pod("b", "Failed", 40),
        pod("c", "Running", 41),
    ];
    let p = plan(&j, &refs(&pods), t(42));
    apply(&mut j, &p);
    let c = cond(&j, "FailureTarget").expect("interim failure");
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert!(cond(&j, "Failed").is_none(), "pods still to stop and count");
    assert_eq!(p.delete, vec!["c".to_string()]);
    assert!(p.events.iter().any(|e| e.1 == "BackoffLimitExceeded"));
    // c is terminating (counted as failed), b is uncounted: still not Failed.
    let mut c_term = pod("c", "Running", 41);
    c_term.metadata.deletion_timestamp = Some(Time(t(43)));
    let pods = vec![
        no_finalizer(pod("a", "Failed", 10)),
        no_finalizer(pod("b", "Failed", 40)),
        c_term,
    ];
    let p = plan(&j, &refs(&pods), t(43));
    apply(&mut j, &p);
    assert!(cond(&j, "Failed").is_none());
    // Everything counted and gone: Failed with the same reason.
    let pods = vec![
        no_finalizer(pod("a", "Failed", 10)),
        no_finalizer(pod("b", "Failed", 40)),
    ];
    let p = plan(&j, &refs(&pods), t(50));
    apply(&mut j, &p);
    let c = cond(&j, "Failed").expect("failed");
    assert_eq!(c.reason.as_deref(), Some("BackoffLimitExceeded"));
    assert_eq!(j.status.as_ref().unwrap().failed, Some(3));
    assert!(j.status.as_ref().unwrap().completion_time.is_none());
}

#[test]
fn backoff_doubles_per_failure_since_the_last_success() {
    let j = job(Some(5), 1);
    let pods = [
        pod("a", "Failed", 0),
        pod("b", "Succeeded", 10),
        pod("c", "Failed", 20),
        pod("d", "Failed", 30),
        pod("e", "Failed", 40),
    ];
    // Three failures after the success: 40 s after the last one.
    assert_eq!(
        backoff_remaining(&j, &refs(&pods), t(40)),
        Duration::from_secs(40)
    );
    assert_eq!(
        backoff_remaining(&j, &refs(&pods), t(70)),
        Duration::from_secs(10)
    );
    assert_eq!(backoff_remaining(&j, &refs(&pods), t(90)), Duration::ZERO);
    let many: Vec<Pod> = (0..12)
        .map(|i| pod(&format!("f{i}"), "Failed", 0))
        .collect();
    assert_eq!(backoff_remaining(&j, &refs(&many), t(0)), BACKOFF_MAX);
}

#[test]
fn the_active_deadline_fails_the_job() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().active_deadline_seconds = Some(30);
    j.status = Some(JobStatus {
        start_time: Some(Time(t(0))),
        ..JobStatus::default()
    });
    let running = vec![pod("a", "Running", 0)];
    let p = plan(&j, &refs(&running), t(10));
    assert_eq!(
        p.requeue,
        Some(Duration::from_secs(20)),
        "look again at the deadline"
    );
    let p = plan(&j, &refs(&running), t(30));
    apply(&mut j, &p);
    let c = cond(&j, "FailureTarget").unwrap();
    assert_eq!(c.reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(
        c.message.as_deref(),
        Some("Job was active longer than specified deadline")
    );
    assert_eq!(p.delete, vec!["a".to_string()]);
    let p = plan(&j, &[], t(31));
    apply(&mut j, &p);
    assert_eq!(
        cond(&j, "Failed").unwrap().reason.as_deref(),
        Some("DeadlineExceeded")
    );
}

#[test]
fn indexed_jobs_run_each_index_once_and_record_completed_indexes() {
    let mut j = indexed(4, 2);
    let p = plan(&j, &[], t(0));
    assert_eq!(p.create, vec![Some(0), Some(1)]);
    apply(&mut j, &p);
    let pods = vec![
        with_index(pod("pi-0-x", "Succeeded", 3), 0),
        with_index(pod("pi-1-x", "Running", 1), 1),
        // A duplicate of index 1: the newer one goes.
        with_index(pod("pi-1-y", "Running", 2), 1),
    ];
    let p = plan(&j, &refs(&pods), t(4));
    assert_eq!(p.delete, vec!["pi-1-y".to_string()]);
    assert!(p.create.is_empty(), "deletions first");
    apply(&mut j, &p);
    assert_eq!(
        j.status.as_ref().unwrap().completed_indexes.as_deref(),
        Some("0")
    );
    assert_eq!(j.status.as_ref().unwrap().succeeded, Some(1));
    let pods = vec![
        no_finalizer(with_index(pod("pi-0-x", "Succeeded", 3), 0)),
        with_index(pod("pi-1-x", "Running", 1), 1),
    ];
    let p = plan(&j, &refs(&pods), t(5));
    assert_eq!(p.create, vec![Some(2)], "the first pending index");
    let new = new_pod(&j, Some(2));
    assert_eq!(new.metadata.generate_name.as_deref(), Some("pi-2-"));
    assert_eq!(new.spec.as_ref().unwrap().hostname.as_deref(), Some("pi-2"));
    assert_eq!(
        new.metadata.annotations.as_ref().unwrap()[INDEX_ANNOTATION],
        "2"
    );
    assert_eq!(new.metadata.labels.as_ref().unwrap()[INDEX_ANNOTATION], "2");
    let env = &new.spec.as_ref().unwrap().containers[0]
        .env
        .as_ref()
        .unwrap()[0];
    assert_eq!(env.name, INDEX_ENV);
    assert_eq!(
        env.value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    );
    assert!(
        new.metadata
            .finalizers
            .as_ref()
            .unwrap()
            .contains(&TRACKING_FINALIZER.to_string())
    );
    assert_eq!(
        new.metadata.owner_references.as_ref().unwrap()[0].uid,
        "job-uid"
    );
}

#[test]
fn indexed_completion_needs_every_index() {
    let mut j = indexed(3, 3);
    let pods = vec![
        with_index(pod("a", "Succeeded", 1), 0),
        with_index(pod("b", "Succeeded", 1), 2),
        with_index(pod("c", "Succeeded", 1), 2),
    ];
    let p = plan(&j, &refs(&pods), t(2));
    apply(&mut j, &p);
    let st = j.status.clone().unwrap();
    assert_eq!(st.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(st.succeeded, Some(2), "index 2 counts once");
    assert_eq!(p.create, vec![Some(1)]);
    assert!(cond(&j, "SuccessCriteriaMet").is_none());
    let pods: Vec<Pod> = pods
        .into_iter()
        .map(no_finalizer)
        .chain([with_index(pod("d", "Succeeded", 3), 1)])
        .collect();
    let p = plan(&j, &refs(&pods), t(4));
    apply(&mut j, &p);
    assert_eq!(
        j.status.as_ref().unwrap().completed_indexes.as_deref(),
        Some("0-2")
    );
    assert!(cond(&j, "Complete").is_some());
}

#[test]
fn index_sets_parse_and_format() {
    let s = parse_indexes("0,2-4,7");
    assert_eq!(s, BTreeSet::from([0, 2, 3, 4, 7]));
    assert_eq!(format_indexes(&s), "0,2-4,7");
    assert_eq!(format_indexes(&BTreeSet::from([1, 2])), "1-2");
    assert_eq!(format_indexes(&BTreeSet::new()), "");
    assert!(parse_indexes("x,").is_empty());
}

#[test]
fn suspending_stops_pods_and_resuming_restarts_the_clock() {
    let mut j = job(Some(2), 2);
    j.spec.as_mut().unwrap().suspend = Some(true);
    let running = vec![pod("a", "Running", 0)];
    let p = plan(&j, &refs(&running), t(5));
    assert_eq!(p.delete, vec!["a".to_string()]);
    assert!(p.create.is_empty());
    apply(&mut j, &p);
    let c = cond(&j, "Suspended").unwrap();
    assert_eq!(c.reason.as_deref(), Some("JobSuspended"));
    assert!(
        j.status.as_ref().unwrap().start_time.is_none(),
        "not started while suspended"
    );
    j.spec.as_mut().unwrap().suspend = Some(false);
    let p = plan(&j, &[], t(100));
    apply(&mut j, &p);
    let st = j.status.as_ref().unwrap();
    assert_eq!(st.start_time, Some(Time(t(100))));
    let c = st
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Suspended")
        .unwrap();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    assert_eq!(p.create.len(), 2);
}

#[test]
fn the_ttl_deletes_a_finished_job_when_due() {
    let mut j = job(Some(1), 1);
    j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(60);
    let pods = vec![no_finalizer(pod("a", "Succeeded", 1))];
    j.status = Some(JobStatus {
        succeeded: Some(1),
        start_time: Some(Time(t(0))),
        ..JobStatus::default()
    });
    let p = plan(&j, &refs(&pods), t(2));
    apply(&mut j, &p);
    assert!(is_finished(&j));
    assert_eq!(p.requeue, Some(Duration::from_secs(60)));
    assert!(!p.delete_job);
    let p = plan(&j, &refs(&pods), t(62));
    assert!(p.delete_job);
}

#[test]
fn ready_pods_and_a_job_without_completions() {
    let j = job(None, 3);
    let pods = vec![ready(pod("a", "Running", 0)), pod("b", "Running", 0)];
    let p = plan(&j, &refs(&pods), t(1));
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.status.as_ref().unwrap().ready, Some(1));
    // Once one pod succeeds, no new pods; the job completes when the rest stop.
    let pods = vec![pod("a", "Succeeded", 2), pod("b", "Running", 0)];
    let p = plan(&j, &refs(&pods), t(3));
    assert!(p.create.is_empty());
    assert!(p.delete.is_empty(), "the others may finish");
}

#[test]
fn a_job_being_deleted_releases_its_pods() {
    let mut j = job(Some(1), 1);
    j.metadata.deletion_timestamp = Some(Time(t(0)));
    let pods = vec![pod("a", "Running", 0), no_finalizer(pod("b", "Running", 0))];
    let p = plan(&j, &refs(&pods), t(1));
    assert_eq!(p.remove_finalizers, vec!["a".to_string()]);
    assert!(p.create.is_empty() && p.status.is_none());
}

#[test]
fn restarts_count_against_the_limit_with_on_failure() {
    let mut j = job(Some(1), 1);
    let spec = j.spec.as_mut().unwrap();
    spec.backoff_limit = Some(2);
    spec.template.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
    let mut p0 = pod("a", "Running", 0);
    p0.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
        name: "c".into(),
        restart_count: 2,
        ..ContainerStatus::default()
    }]);
    let p = plan(&j, &[&p0], t(1));
    apply(&mut j, &p);
    assert_eq!(
        cond(&j, "FailureTarget").unwrap().reason.as_deref(),
        Some("BackoffLimitExceeded")
    );
}
