use super::*;
use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobSpec, JobStatus, JobTemplateSpec};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn cron(schedule: &str) -> CronJob {
    CronJob {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            namespace: Some("default".into()),
            uid: Some("cj-uid".into()),
            creation_timestamp: Some(Time(t("2026-01-01T00:00:30Z"))),
            ..ObjectMeta::default()
        },
        spec: Some(CronJobSpec {
            schedule: schedule.into(),
            time_zone: Some("UTC".into()),
            concurrency_policy: Some("Allow".into()),
            suspend: Some(false),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(1),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(BTreeMap::from([("app".into(), "hello".into())])),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec::default()),
            },
            ..CronJobSpec::default()
        }),
        status: None,
    }
}

fn job(name: &str, uid: &str, state: Option<&str>, start: &str) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            uid: Some(uid.into()),
            owner_references: Some(vec![pods::controller_ref(&cron("* * * * *"))]),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(JobStatus {
            start_time: Some(Time(t(start))),
            completion_time: (state == Some("Complete")).then(|| Time(t(start))),
            conditions: state.map(|s| {
                vec![JobCondition {
                    type_: s.into(),
                    status: "True".into(),
                    ..JobCondition::default()
                }]
            }),
            ..JobStatus::default()
        }),
    }
}

fn active(cj: &mut CronJob, jobs: &[&Job]) {
    cj.status.get_or_insert_with(CronJobStatus::default).active =
        Some(jobs.iter().map(|j| job_ref(j)).collect());
}

fn none() -> HashSet<String> {
    HashSet::new()
}

#[test]
fn nothing_before_the_first_time_then_a_job_named_by_its_minute() {
    let cj = cron("*/1 * * * *");
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:00:45Z"));
    assert!(p.create.is_none());
    assert_eq!(p.requeue, Some(Duration::from_millis(15_100)));
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:01:00.2Z"));
    let j = p.create.expect("a job");
    let minutes = t("2026-01-01T00:01:00Z").as_second() / 60;
    assert_eq!(j.metadata.name, Some(format!("hello-{minutes}")));
    assert_eq!(
        j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
        "2026-01-01T00:01:00Z"
    );
    assert_eq!(j.metadata.labels.as_ref().unwrap()["app"], "hello");
    let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CronJob", Some(true))
    );
    assert_eq!(
        p.status.last_schedule_time,
        Some(Time(t("2026-01-01T00:01:00Z")))
    );
    assert_eq!(p.requeue, Some(Duration::from_millis(59_900)));
}

#[test]
fn a_time_already_started_is_not_started_again() {
    let mut cj = cron("*/1 * * * *");
    cj.status = Some(CronJobStatus {
        last_schedule_time: Some(Time(t("2026-01-01T00:01:00Z"))),
        ..CronJobStatus::default()
    });
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:01:30Z"));
    assert!(p.create.is_none());
    assert_eq!(p.requeue, Some(Duration::from_millis(30_100)));
}

#[test]
fn the_scheduled_timestamp_is_in_the_time_zone() {
    let mut cj = cron("0 9 * * *");
    cj.spec.as_mut().unwrap().time_zone = Some("Asia/Tokyo".into());
    cj.metadata.creation_timestamp = Some(Time(t("2025-12-31T23:00:00Z")));
    let Some(tz) = time_zone(&cj) else {
        // No time zone database on this machine.
        return;
    };
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:00:10Z"));
    let j = p.create.expect("09:00 in Tokyo is 00:00 UTC");
    assert_eq!(
        j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
        "2026-01-01T09:00:00+09:00"
    );
    assert_eq!(
        rfc3339(t("2026-01-01T00:00:00Z"), &tz),
        "2026-01-01T09:00:00+09:00"
    );
    cj.spec.as_mut().unwrap().time_zone = Some("Mars/Olympus".into());
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:00:10Z"));
    assert!(p.create.is_none());
    assert_eq!(p.events[0].1, "UnknownTimeZone");
}

#[test]
fn forbid_waits_for_the_running_job() {
    let mut cj = cron("*/1 * * * *");
    cj.spec.as_mut().unwrap().concurrency_policy = Some("Forbid".into());
    let running = job("hello-1", "u1", None, "2026-01-01T00:01:00Z");
    active(&mut cj, &[&running]);
    let p = plan(&cj, &[&running], &none(), t("2026-01-01T00:02:00Z"));
    assert!(p.create.is_none());
    assert!(p.events.iter().any(|e| e.1 == "JobAlreadyActive"));
    // Done: it leaves the active list and the next one starts.
    let done = job("hello-1", "u1", Some("Complete"), "2026-01-01T00:01:00Z");
    let p = plan(&cj, &[&done], &none(), t("2026-01-01T00:02:00Z"));
    assert!(p.create.is_some());
    assert!(p.status.active.is_none());
    assert!(p.events.iter().any(|e| e.1 == "SawCompletedJob"));
}

#[test]
fn replace_deletes_the_running_job() {
    let mut cj = cron("*/1 * * * *");
    cj.spec.as_mut().unwrap().concurrency_policy = Some("Replace".into());
    let running = job("hello-1", "u1", None, "2026-01-01T00:01:00Z");
    active(&mut cj, &[&running]);
    let p = plan(&cj, &[&running], &none(), t("2026-01-01T00:02:00Z"));
    assert!(p.create.is_some());
    assert_eq!(p.delete, vec!["hello-1".to_string()]);
    assert!(p.status.active.is_none());
}

#[test]
fn allow_runs_jobs_side_by_side() {
    let mut cj = cron("*/1 * * * *");
    let running = job("hello-1", "u1", None, "2026-01-01T00:01:00Z");
    active(&mut cj, &[&running]);
    let p = plan(&cj, &[&running], &none(), t("2026-01-01T00:02:00Z"));
    assert!(p.create.is_some());
    assert!(p.delete.is_empty());
    assert_eq!(p.status.active.as_ref().map(Vec::len), Some(1));
}

#[test]
fn suspended_cronjobs_start_nothing() {
    let mut cj = cron("*/1 * * * *");
    cj.spec.as_mut().unwrap().suspend = Some(true);
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:05:00Z"));
    assert!(p.create.is_none() && p.requeue.is_none());
}

#[test]
fn starting_deadline_drops_times_too_old() {
    let mut cj = cron("0 * * * *");
    cj.spec.as_mut().unwrap().starting_deadline_seconds = Some(60);
    // 01:00 was 90 s ago: past its deadline; the search starts from now - 60 s.
    let p = plan(&cj, &[], &none(), t("2026-01-01T01:01:30Z"));
    assert!(p.create.is_none());
    // 30 s late is within it.
    let p = plan(&cj, &[], &none(), t("2026-01-01T01:00:30Z"));
    assert!(p.create.is_some());
}

#[test]
fn after_many_missed_times_only_the_latest_starts() {
    let cj = cron("*/1 * * * *");
    // Created at 00:00:30; 200 minutes later.
    let now = t("2026-01-01T03:20:10Z");
    let p = plan(&cj, &[], &none(), now);
    let j = p.create.expect("one job");
    assert_eq!(
        j.metadata.name,
        Some(job_name("hello", t("2026-01-01T03:20:00Z")))
    );
    assert!(p.events.iter().any(|e| e.1 == "TooManyMissedTimes"));
    // A few missed: no event, still only the latest.
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:05:10Z"));
    assert_eq!(
        p.create.unwrap().metadata.name,
        Some(job_name("hello", t("2026-01-01T00:05:00Z")))
    );
    assert!(p.events.is_empty());
}

#[test]
fn most_recent_counts_missed_times() {
    let cj = cron("0 * * * *");
    let tz = TimeZone::UTC;
    let s = Schedule::parse("0 * * * *").unwrap();
    let (_, r, m) = most_recent(&cj, t("2026-01-01T00:59:00Z"), &s, &tz, false).unwrap();
    assert_eq!((r, m), (None, Missed::None));
    let (_, r, m) = most_recent(&cj, t("2026-01-01T01:30:00Z"), &s, &tz, false).unwrap();
    assert_eq!((r, m), (Some(t("2026-01-01T01:00:00Z")), Missed::None));
    let (_, r, m) = most_recent(&cj, t("2026-01-01T05:30:00Z"), &s, &tz, false).unwrap();
    assert_eq!((r, m), (Some(t("2026-01-01T05:00:00Z")), Missed::Few));
    // An irregular schedule still finds the exact latest time.
    let s = Schedule::parse("30 6-16/4 * * 1-5").unwrap();
    let (_, r, _) = most_recent(&cj, t("2026-01-09T15:00:00Z"), &s, &tz, false).unwrap();
    assert_eq!(r, Some(t("2026-01-09T14:30:00Z")));
}

#[test]
fn history_limits_prune_the_oldest_finished_jobs() {
    let cj = cron("*/1 * * * *");
    let ok: Vec<Job> = (1..=5)
        .map(|i| {
            job(
                &format!("ok-{i}"),
                &format!("o{i}"),
                Some("Complete"),
                &format!("2026-01-01T00:0{i}:00Z"),
            )
        })
        .collect();
    let bad: Vec<Job> = (1..=2)
        .map(|i| {
            job(
                &format!("bad-{i}"),
                &format!("b{i}"),
                Some("Failed"),
                &format!("2026-01-01T00:0{i}:30Z"),
            )
        })
        .collect();
    let running = job("run", "r", None, "2026-01-01T00:00:10Z");
    let mut all: Vec<&Job> = ok.iter().chain(bad.iter()).collect();
    all.push(&running);
    let p = plan(&cj, &all, &none(), t("2026-01-01T00:05:30Z"));
    let mut del = p.delete.clone();
    del.sort();
    assert_eq!(del, vec!["bad-1", "ok-1", "ok-2"]);
    assert_eq!(
        p.status.last_successful_time,
        Some(Time(t("2026-01-01T00:05:00Z")))
    );
}

#[test]
fn an_active_job_that_vanished_leaves_the_list() {
    let mut cj = cron("*/5 * * * *");
    let j = job("hello-1", "u1", None, "2026-01-01T00:01:00Z");
    active(&mut cj, &[&j]);
    // Not in the cache, but the API still has it: it stays.
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:02:00Z"));
    assert_eq!(p.status.active.as_ref().map(Vec::len), Some(1));
    let p = plan(
        &cj,
        &[],
        &HashSet::from(["u1".to_string()]),
        t("2026-01-01T00:02:00Z"),
    );
    assert!(p.status.active.is_none());
    assert!(p.events.iter().any(|e| e.1 == "MissingJob"));
}

#[test]
fn bad_schedules_are_reported() {
    let cj = cron("61 * * * *");
    let p = plan(&cj, &[], &none(), t("2026-01-01T00:05:00Z"));
    assert_eq!(p.events[0].1, "UnparseableSchedule");
    assert!(p.create.is_none());
}
