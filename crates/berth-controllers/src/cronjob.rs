//! The CronJob controller: creates a Job `<cronjob>-<scheduled time in minutes since the
//! epoch>` at each time of its schedule ([`schedule`]) in `spec.timeZone` (the controller's
//! local zone when unset), honouring `concurrencyPolicy` (Allow, Forbid, Replace),
//! `startingDeadlineSeconds` and `suspend`; keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`; deletes finished Jobs beyond `successfulJobsHistoryLimit` and
//! `failedJobsHistoryLimit`. As in Kubernetes, after a long outage only the most recent missed
//! time is started, and more than 100 missed times are reported with an event.
//!
//! The time comes from the context's clock, so tests drive it with a fake one; the reconcile
//! asks to be called again at the next scheduled time. Decisions are the pure [`plan`]. Must
//! not touch Jobs it does not control.

pub mod schedule;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::pods;
use crate::queue::{self, Key, Next, Queue};
use crate::workload;

pub use schedule::{CronError, Schedule};

/// The controller's name (events, logs).
pub const NAME: &str = "cronjob-controller";
/// The annotation holding a Job's scheduled time (RFC 3339, in the CronJob's time zone).
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Past this many missed times the controller reports them with an event.
const TOO_MANY_MISSED: i64 = 100;
/// Added to every requeue, so that a slightly early wake-up still finds the time due.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    /// An API call failed.
    #[error("{action} for cronjob {key}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// The CronJob.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The schedule's times are less than a second apart (or it has none after a time).
    #[error("time difference between two schedules is less than 1 second")]
    TooFrequent,
}

/// What a plan asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The status to write (the reconciler adds the created Job to `active`).
    pub status: CronJobStatus,
    /// The Job to create.
    pub create: Option<Job>,
    /// Jobs to delete (Replace, history limits), by name.
    pub delete: Vec<String>,
    /// Events to record: type, reason, message.
    pub events: Vec<(&'static str, &'static str, String)>,
    /// Look again after this long.
    pub requeue: Option<Duration>,
}

/// How many schedule times were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// None.
    None,
    /// Some, up to 100.
    Few,
    /// More than 100.
    Many,
}

fn condition_true(job: &Job, ty: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

/// The finishing condition of a Job, if it finished.
fn finished(job: &Job) -> Option<&'static str> {
    if condition_true(job, "Complete") {
        Some("Complete")
    } else if condition_true(job, "Failed") {
        Some("Failed")
    } else {
        None
    }
}

/// The time zone of a CronJob (`None` when `spec.timeZone` names no zone).
pub fn time_zone(cj: &CronJob) -> Option<TimeZone> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        None => Some(TimeZone::system()),
        Some("") | Some("UTC") => Some(TimeZone::UTC),
        Some("Local") => Some(TimeZone::system()),
        Some(name) => TimeZone::get(name).ok(),
    }
}

/// The Job name for a scheduled time.
pub fn job_name(cj: &str, scheduled: Timestamp) -> String {
    format!("{cj}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 in `tz` (`Z` for a zero offset, as Go writes it).
fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The most recent scheduled time at or before `now` that has not been started, as Kubernetes'
/// `mostRecentScheduleTime`: the time the search starts from, the time (if any) and how many
/// were missed. [`CronJobError::TooFrequent`] for a schedule whose times are less than a
/// second apart.
pub fn most_recent(
    cj: &CronJob,
    now: Timestamp,
    sched: &Schedule,
    tz: &TimeZone,
    with_deadline: bool,
) -> Result<(Timestamp, Option<Timestamp>, Missed), CronJobError> {
    let mut earliest = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if with_deadline && let Some(d) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
        let deadline = now.checked_sub(SignedDuration::from_secs(d)).unwrap_or(now);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let Some(t1) = sched.next(earliest, tz) else {
        return Ok((earliest, None, Missed::None));
    };
    if now < t1 {
        return Ok((earliest, None, Missed::None));
    }
    let Some(t2) = sched.next(t1, tz) else {
        return Ok((earliest, Some(t1), Missed::None));
    };
    if now < t2 {
        return Ok((earliest, Some(t1), Missed::None));
    }
    let between = t2.duration_since(t1).as_secs();
    if between < 1 {
        return Err(CronJobError::TooFrequent);
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed = elapsed / between + 1;
    // Start a little before the last few, so that irregular schedules land exactly.
    let skip = SignedDuration::from_secs((missed - 2).max(0).saturating_mul(between));
    let mut t = sched.next(t1.checked_add(skip).unwrap_or(t1), tz);
    let mut recent = None;
    while let Some(x) = t {
        if x > now {
            break;
        }
        recent = Some(x);
        t = sched.next(x, tz);
    }
    let kind = if missed > TOO_MANY_MISSED {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok((earliest, recent.or(Some(t1)), kind))
}

/// How long until the next scheduled time after the last one, plus a small margin.
pub fn next_after(cj: &CronJob, now: Timestamp, sched: &Schedule, tz: &TimeZone) -> Duration {
    let from = match most_recent(cj, now, sched, tz, false) {
        Err(_) => now,
        Ok((_, Some(t), _)) => t,
        Ok((earliest, None, Missed::None)) => earliest,
        Ok((_, None, _)) => now,
    };
    let next = sched.next(from, tz).unwrap_or(now);
    Duration::try_from(now.duration_until(next)).unwrap_or(Duration::ZERO) + NEXT_SCHEDULE_DELTA
}

/// The Job a CronJob makes for `scheduled`.
pub fn new_job(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let name = cj.metadata.name.clone().unwrap_or_default();
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = template.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339(scheduled, tz));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![pods::controller_ref(cj)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// A reference to a Job for `status.active`.
pub fn job_ref(job: &Job) -> ObjectReference {
    workload::object_ref(job)
}

/// Decides what to do for `cj` given the Jobs it controls, the UIDs of active Jobs confirmed
/// gone from the API, and `now`.
pub fn plan(cj: &CronJob, jobs: &[&Job], gone: &HashSet<String>, now: Timestamp) -> Plan {
    let mut out = Plan::default();
    let Some(spec) = cj.spec.as_ref() else {
        return out;
    };
    let mut st = cj.status.clone().unwrap_or_default();
    let mut active = st.active.take().unwrap_or_default();
    let children: HashSet<&str> = jobs
        .iter()
        .filter_map(|j| j.metadata.uid.as_deref())
        .collect();
    for j in jobs {
        let uid = j.metadata.uid.as_deref().unwrap_or("");
        let found = active.iter().any(|a| a.uid.as_deref() == Some(uid));
        let done = finished(j);
        if found && let Some(cond) = done {
            active.retain(|a| a.uid.as_deref() != Some(uid));
            out.events.push((
                "Normal",
                "SawCompletedJob",
                format!(
                    "Saw completed job: {}, condition: {cond}",
                    j.metadata.name.as_deref().unwrap_or("")
                ),
            ));
        }
        // A succeeded Job counts whether or not it was still listed as active (it may be
        // pruned by the history limit in this same pass).
        if done == Some("Complete")
            && let Some(t) = j.status.as_ref().and_then(|s| s.completion_time.as_ref())
            && st.last_successful_time.as_ref().is_none_or(|l| t.0 > l.0)
        {
            st.last_successful_time = Some(t.clone());
        }
    }
    active.retain(|a| {
        let uid = a.uid.as_deref().unwrap_or("");
        let missing = !children.contains(uid) && gone.contains(uid);
        if missing {
            out.events.push((
                "Normal",
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    a.name.as_deref().unwrap_or("")
                ),
            ));
        }
        !missing
    });

    let finish = |mut out: Plan, st: CronJobStatus, active: Vec<ObjectReference>| {
        let mut st = st;
        st.active = (!active.is_empty()).then_some(active);
        out.status = st;
        history(cj, jobs, &mut out);
        out
    };
    if cj.metadata.deletion_timestamp.is_some() {
        return finish(out, st, active);
    }
    let Some(tz) = time_zone(cj) else {
        let name = spec.time_zone.clone().unwrap_or_default();
        out.events.push((
            "Warning",
            "UnknownTimeZone",
            format!("invalid timeZone: {name:?}"),
        ));
        return finish(out, st, active);
    };
    if spec.suspend == Some(true) {
        return finish(out, st, active);
    }
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            out.events.push((
                "Warning",
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            ));
            return finish(out, st, active);
        }
    };
    // The status as it stands decides when the next time is.
    let with_status = |st: &CronJobStatus| CronJob {
        status: Some(st.clone()),
        ..cj.clone()
    };
    let scheduled = match most_recent(cj, now, &sched, &tz, true) {
        Err(e) => {
            out.events.push((
                "Warning",
                "InvalidSchedule",
                format!("invalid schedule: {} : {e}", spec.schedule),
            ));
            return finish(out, st, active);
        }
        Ok((_, recent, missed)) => {
            if missed == Missed::Many && recent.is_some() {
                out.events.push((
                    "Warning",
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".to_owned(),
                ));
            }
            recent
        }
    };
    let Some(scheduled) = scheduled else {
        out.requeue = Some(next_after(&with_status(&st), now, &sched, &tz));
        return finish(out, st, active);
    };
    let too_late = spec.starting_deadline_seconds.is_some_and(|d| {
        scheduled
            .checked_add(SignedDuration::from_secs(d))
            .is_ok_and(|end| end < now)
    });
    if too_late {
        out.events.push((
            "Warning",
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
            ),
        ));
        out.requeue = Some(next_after(&with_status(&st), now, &sched, &tz));
        return finish(out, st, active);
    }
    let name = job_name(cj.metadata.name.as_deref().unwrap_or(""), scheduled);
    let processed = active
        .iter()
        .any(|a| a.name.as_deref() == Some(name.as_str()))
        || st.last_schedule_time.as_ref().map(|t| t.0) == Some(scheduled);
    if processed {
        out.requeue = Some(next_after(&with_status(&st), now, &sched, &tz));
        return finish(out, st, active);
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        out.events.push((
            "Normal",
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .to_owned(),
        ));
        out.requeue = Some(next_after(&with_status(&st), now, &sched, &tz));
        return finish(out, st, active);
    }
    if policy == "Replace" {
        for a in active.drain(..) {
            if let Some(n) = a.name {
                out.delete.push(n);
            }
        }
    }
    out.create = Some(new_job(cj, scheduled, &tz));
    st.last_schedule_time = Some(Time(scheduled));
    out.requeue = Some(next_after(&with_status(&st), now, &sched, &tz));
    finish(out, st, active)
}

/// Adds the finished Jobs beyond the history limits (oldest start first) to the deletions.
fn history(cj: &CronJob, jobs: &[&Job], out: &mut Plan) {
    let Some(spec) = cj.spec.as_ref() else {
        return;
    };
    let mut by: BTreeMap<&str, Vec<&Job>> = BTreeMap::new();
    for j in jobs {
        if let Some(c) = finished(j) {
            by.entry(c).or_default().push(j);
        }
    }
    for (cond, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let (Some(limit), Some(list)) = (limit, by.get_mut(cond)) else {
            continue;
        };
        let excess = list
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        list.sort_by(|a, b| {
            let start = |j: &Job| {
                j.status
                    .as_ref()
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0)
            };
            match (start(a), start(b)) {
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(_), None) => std::cmp::Ordering::Less,
                (x, y) if x == y => a.metadata.name.cmp(&b.metadata.name),
                (x, y) => x.cmp(&y),
            }
        });
        for j in list.iter().take(excess) {
            if let Some(n) = &j.metadata.name
                && !out.delete.contains(n)
            {
                out.delete.push(n.clone());
            }
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let cronjobs = ctx.informers.get::<CronJob>();
    let jobs = ctx.informers.get::<Job>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let shutdown = shutdown.clone();
        async move {
            let all = || cronjobs.queue_all(&queue);
            let follow_cronjobs = cronjobs.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
                Change::Deleted(_) => {}
                Change::Resynced => all(),
            });
            let follow_jobs = jobs.follow(&shutdown, |c| match c {
                Change::Applied { new: j, .. } | Change::Deleted(j) => {
                    if let Some(k) = workload::owner_key::<CronJob>(&j.metadata) {
                        queue.add(k);
                    }
                }
                Change::Resynced => all(),
            });
            cronjobs.ready().await;
            jobs.ready().await;
            all();
            tokio::join!(follow_cronjobs, follow_jobs);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers(NAME, queue, 2, shutdown, move |key: Key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

fn api_err(action: &'static str, key: &Key) -> impl FnOnce(kube::Error) -> CronJobError + use<> {
    let key = key.clone();
    move |source| CronJobError::Api {
        action,
        key,
        source,
    }
}

/// Makes the CronJob `key` converge one step.
async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, CronJobError> {
    let Some(cj) = ctx
        .informers
        .get::<CronJob>()
        .get(&key.namespace, &key.name)
    else {
        return Ok(Next::Done);
    };
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let owned = ctx.informers.get::<Job>().filter(|j| {
        j.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && pods::is_controlled_by(&j.metadata, &uid)
    });
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &key.namespace);
    // Active Jobs the cache lacks are looked up, so that a slow watch does not lose them.
    let mut gone = HashSet::new();
    for a in cj
        .status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .into_iter()
        .flatten()
    {
        let uid = a.uid.clone().unwrap_or_default();
        if owned
            .iter()
            .any(|j| j.metadata.uid.as_deref() == Some(uid.as_str()))
        {
            continue;
        }
        match jobs_api.get_opt(a.name.as_deref().unwrap_or("")).await {
            Ok(Some(j)) if j.metadata.uid.as_deref() == Some(uid.as_str()) => {}
            Ok(_) => {
                gone.insert(uid);
            }
            Err(e) => return Err(api_err("reading an active job", key)(e)),
        }
    }
    let refs: Vec<&Job> = owned.iter().map(AsRef::as_ref).collect();
    let now = ctx.clock.now();
    let mut p = plan(&cj, &refs, &gone, now);
    let regarding = workload::object_ref(cj.as_ref());
    let bg = DeleteParams::background();

    for n in &p.delete {
        match jobs_api.delete(n, &bg).await {
            Ok(_) => {
                p.status
                    .active
                    .iter_mut()
                    .for_each(|a| a.retain(|r| r.name.as_deref() != Some(n.as_str())));
                p.events
                    .push(("Normal", "SuccessfulDelete", format!("Deleted job {n}")));
            }
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a job", key)(e)),
        }
    }
    if let Some(job) = &p.create {
        let name = job.metadata.name.clone().unwrap_or_default();
        let created = match jobs_api.create(&PostParams::default(), job).await {
            Ok(j) => {
                p.events
                    .push(("Normal", "SuccessfulCreate", format!("Created job {name}")));
                Some(j)
            }
            Err(e) if workload::is_conflict(&e) => {
                // Made before (the status write after it failed), or by someone else.
                let existing = jobs_api
                    .get(&name)
                    .await
                    .map_err(api_err("reading a job", key))?;
                pods::is_controlled_by(&existing.metadata, &uid).then_some(existing)
            }
            Err(e) => {
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Warning",
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                )
                .await;
                return Err(api_err("creating a job", key)(e));
            }
        };
        match created {
            Some(j) => {
                let r = job_ref(&j);
                let active = p.status.active.get_or_insert_with(Vec::new);
                if !active.iter().any(|a| a.uid == r.uid) {
                    active.push(r);
                }
            }
            None => {
                p.status.last_schedule_time = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.last_schedule_time.clone());
            }
        }
    }
    if cj.status.clone().unwrap_or_default() != p.status {
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({ "status": {
            "active": p.status.active,
            "lastScheduleTime": p.status.last_schedule_time,
            "lastSuccessfulTime": p.status.last_successful_time,
        }});
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if workload::is_not_found(&e) => return Ok(Next::Done),
            Err(e) => return Err(api_err("writing the status", key)(e)),
        }
    }
    for (type_, reason, message) in p.events {
        workload::record_event(
            &ctx.client,
            NAME,
            now,
            regarding.clone(),
            type_,
            reason,
            message,
        )
        .await;
    }
    Ok(match p.requeue {
        Some(d) => Next::After(d),
        None => Next::Done,
    })
}

#[cfg(test)]
mod tests;
