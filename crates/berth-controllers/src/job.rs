//! The Job controller: runs a Job's pods to `completions` (NonIndexed or Indexed), at most
//! `parallelism` at a time, re-creating failed ones after an exponential back-off until
//! `backoffLimit` failures or `activeDeadlineSeconds`; `suspend` stops its pods; a finished Job
//! is deleted `ttlSecondsAfterFinished` after it finished.
//!
//! Every pod carries the `batch.kubernetes.io/job-tracking` finalizer so that its outcome is
//! counted exactly once, as Kubernetes counts it: a finished pod's UID is first written to
//! `status.uncountedTerminatedPods`, then its finalizer is removed, and once the cache shows the
//! pod without it, the UID moves into `succeeded` or `failed` (Indexed Jobs record succeeded
//! indexes in `completedIndexes` directly). The Job's interim condition (`SuccessCriteriaMet`
//! or `FailureTarget`) comes first, its terminal one (`Complete` or `Failed`) once no pod is
//! uncounted or terminating, as in Kubernetes 1.33.
//!
//! Decisions are the pure [`plan`]; [`reconcile`] only reads the caches and carries a plan out.
//! Must not touch pods it does not control (except removing its finalizer from pods of a Job
//! that is gone).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::pods;
use crate::queue::{self, Key, Next, Queue};
use crate::workload::{self, Freshness};

/// The controller's name (events, logs).
pub const NAME: &str = "job-controller";
/// The finalizer that keeps a pod until its outcome is counted.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) holding an Indexed Job pod's completion index.
pub const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// The env var holding the completion index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The first delay before re-creating a failed pod; it doubles with each further failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest delay before re-creating a failed pod.
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);
/// How many pods one reconcile creates or deletes at most.
const MAX_PER_SYNC: usize = 500;

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// An API call failed.
    #[error("{action} for job {key}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// The Job.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// What a plan asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The status to write, when it differs from the current one.
    pub status: Option<JobStatus>,
    /// Pods to create: the completion index of each (`None` for NonIndexed Jobs).
    pub create: Vec<Option<i32>>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// Pods whose tracking finalizer to remove (after the status is written), by name.
    pub remove_finalizers: Vec<String>,
    /// Delete the Job itself (its TTL after finishing passed).
    pub delete_job: bool,
    /// Events to record: type, reason, message.
    pub events: Vec<(&'static str, &'static str, String)>,
    /// Look again after this long.
    pub requeue: Option<Duration>,
}

fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The completion index of a pod, if it has a valid one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(INDEX_ANNOTATION)?
        .parse()
        .ok()
        .filter(|i: &i32| *i >= 0)
}

fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Whether a pod counts as failed: its phase is Failed, or (unless only failed pods are
/// replaced) it is being deleted before it succeeded.
fn is_failed(pod: &Pod, job: &Job) -> bool {
    if pods::phase(pod) == workload::FAILED {
        return true;
    }
    !only_replace_failed(job)
        && pods::is_terminating(pod)
        && pods::phase(pod) != workload::SUCCEEDED
}

fn condition<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// Whether the Job finished (`Complete` or `Failed`).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| condition(s, "Complete").is_some() || condition(s, "Failed").is_some())
}

/// Sets condition `type_` to `status` (adding it when absent, unless `status` is False);
/// returns whether anything changed.
fn set_condition(
    st: &mut JobStatus,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status && c.reason.as_deref() == Some(reason) {
            return false;
        }
        c.status = status.to_owned();
        c.reason = Some(reason.to_owned());
        c.message = Some(message.to_owned());
        c.last_probe_time = Some(Time(now));
        c.last_transition_time = Some(Time(now));
        return true;
    }
    if status == "False" {
        return false;
    }
    conds.push(JobCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
    true
}

/// Parses `completedIndexes` (`1,3-5`).
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

/// Formats indexes as `completedIndexes` does: ascending, runs of three or more... any run of
/// consecutive indexes as `a-b`.
pub fn format_indexes(ix: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut it = ix.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// When a finished pod finished: the latest time one of its containers terminated, else when
/// its deletion was asked for, else when it was created.
fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let from_containers = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    from_containers
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// How long to wait before creating pods again: `BACKOFF_BASE` doubled for each failure since
/// the last success, counted from the last failure.
pub fn backoff_remaining(job: &Job, pods: &[&Pod], now: Timestamp) -> Duration {
    let last_success = pods
        .iter()
        .filter(|p| pods::phase(p) == workload::SUCCEEDED)
        .filter_map(|p| finish_time(p))
        .max();
    let failures: Vec<Timestamp> = pods
        .iter()
        .filter(|p| is_failed(p, job))
        .filter_map(|p| finish_time(p))
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    let Some(last) = failures.iter().max() else {
        return Duration::ZERO;
    };
    let n = u32::try_from(failures.len()).unwrap_or(u32::MAX);
    let delay = BACKOFF_BASE
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(BACKOFF_MAX);
    let elapsed = now.duration_since(*last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    delay.saturating_sub(elapsed)
}

fn secs(s: i64) -> SignedDuration {
    SignedDuration::from_secs(s)
}

fn until(now: Timestamp, t: Timestamp) -> Duration {
    Duration::try_from(now.duration_until(t)).unwrap_or(Duration::ZERO)
}

fn min_requeue(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Decides what to do for `job` given its pods (the pods it controls) at `now`.
pub fn plan(job: &Job, pods: &[&Pod], now: Timestamp) -> Plan {
    let mut out = Plan::default();
    let Some(spec) = job.spec.as_ref() else {
        return out;
    };
    let old = job.status.clone().unwrap_or_default();
    let mut st = old.clone();

    // A Job being deleted only lets go of its pods.
    if job.metadata.deletion_timestamp.is_some() {
        out.remove_finalizers = pods
            .iter()
            .filter(|p| has_tracking_finalizer(p))
            .map(|p| name(p))
            .collect();
        return out;
    }

    let indexed = is_indexed(job);
    let completions = spec.completions;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let suspended = spec.suspend == Some(true);
    let finished = is_finished(job);

    // 1. Uncounted pods whose finalizer is gone are counted.
    let tracked: HashSet<String> = pods
        .iter()
        .filter(|p| has_tracking_finalizer(p))
        .map(|p| uid(p))
        .collect();
    let mut unc = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_succeeded: Vec<String> = unc.succeeded.take().unwrap_or_default();
    let mut unc_failed: Vec<String> = unc.failed.take().unwrap_or_default();
    let mut succeeded = st.succeeded.unwrap_or(0);
    let mut failed = st.failed.unwrap_or(0);
    unc_succeeded.retain(|u| {
        let keep = tracked.contains(u);
        if !keep {
            succeeded += 1;
        }
        keep
    });
    unc_failed.retain(|u| {
        let keep = tracked.contains(u);
        if !keep {
            failed += 1;
        }
        keep
    });

    // The Job's finishing condition, if it is finishing.
    let interim_failure = condition(&old, "FailureTarget").cloned();
    let interim_success = condition(&old, "SuccessCriteriaMet").cloned();
    let finishing = interim_failure.is_some() || interim_success.is_some() || finished;

    // 2. Finished pods still carrying the finalizer are recorded as uncounted.
    let mut completed_ix = parse_indexes(st.completed_indexes.as_deref().unwrap_or(""));
    let mut status_adds = false;
    let mut release: Vec<String> = Vec::new();
    for p in pods.iter().filter(|p| has_tracking_finalizer(p)) {
        let u = uid(p);
        if unc_succeeded.contains(&u) || unc_failed.contains(&u) {
            release.push(name(p));
            continue;
        }
        let ix = completion_index(p);
        let ix_valid = ix.is_some_and(|i| completions.is_none_or(|c| i < c));
        if pods::phase(p) == workload::SUCCEEDED {
            if indexed {
                if let Some(i) = ix.filter(|_| ix_valid)
                    && completed_ix.insert(i)
                {
                    status_adds = true;
                }
            } else {
                unc_succeeded.push(u);
                status_adds = true;
            }
            release.push(name(p));
        } else if is_failed(p, job)
            || (finishing && (pods::is_terminating(p) || workload::is_finished(p)))
        {
            if !indexed || ix_valid {
                unc_failed.push(u);
                status_adds = true;
            }
            release.push(name(p));
        }
    }

    let active_pods: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| pods::is_active(p))
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| pods::is_terminating(p) && !workload::is_finished(p))
        .count();
    let active = i32::try_from(active_pods.len()).unwrap_or(i32::MAX);
    let succeeded_total = if indexed {
        i32::try_from(completed_ix.len()).unwrap_or(i32::MAX)
    } else {
        succeeded + i32::try_from(unc_succeeded.len()).unwrap_or(0)
    };
    let failed_total = failed + i32::try_from(unc_failed.len()).unwrap_or(0);

    if st.start_time.is_none() && !suspended && !finished {
        st.start_time = Some(Time(now));
    }

    // 3. Is the Job finishing?
    let mut finish: Option<(&'static str, String, String)> = None;
    if let Some(c) = &interim_failure {
        finish = Some((
            "Failed",
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ));
    } else if let Some(c) = &interim_success {
        finish = Some((
            "Complete",
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ));
    } else if !finished {
        let restarts: i32 = active_pods
            .iter()
            .flat_map(|p| {
                p.status
                    .iter()
                    .flat_map(|s| s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum();
        let on_failure = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            == Some("OnFailure");
        let deadline = spec
            .active_deadline_seconds
            .zip(st.start_time.as_ref())
            .filter(|_| !suspended)
            .map(|(d, t)| t.0.saturating_add(secs(d)).unwrap_or(t.0));
        let complete = match completions {
            Some(c) => succeeded_total >= c && active == 0,
            None => succeeded_total > 0 && active == 0,
        };
        if failed_total > backoff_limit
            || (on_failure && backoff_limit > 0 && restarts >= backoff_limit)
        {
            finish = Some((
                "FailureTarget",
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        } else if deadline.is_some_and(|d| now >= d) {
            finish = Some((
                "FailureTarget",
                "DeadlineExceeded".into(),
                "Job was active longer than specified deadline".into(),
            ));
        } else if complete {
            finish = Some((
                "SuccessCriteriaMet",
                "CompletionsReached".into(),
                "Reached expected number of succeeded pods".into(),
            ));
        } else if let Some(d) = deadline {
            out.requeue = min_requeue(out.requeue, until(now, d));
        }
    }

    if finished {
        // Nothing to run; only counting and the TTL.
    } else if let Some((kind, reason, message)) = finish {
        if kind == "FailureTarget" || kind == "SuccessCriteriaMet" {
            set_condition(&mut st, kind, "True", &reason, &message, now);
            if kind == "FailureTarget" {
                out.events
                    .push(("Warning", static_reason(&reason), message.clone()));
            }
        }
        // Stop what still runs.
        out.delete = active_pods.iter().map(|p| name(p)).collect();
        let all_counted = unc_succeeded.is_empty() && unc_failed.is_empty();
        if all_counted && terminating == 0 && active == 0 {
            let terminal = if kind == "SuccessCriteriaMet" || kind == "Complete" {
                "Complete"
            } else {
                "Failed"
            };
            set_condition(&mut st, terminal, "True", &reason, &message, now);
            if terminal == "Complete" {
                st.completion_time = Some(Time(now));
                out.events
                    .push(("Normal", "Completed", "Job completed".to_owned()));
            }
        }
    } else if suspended {
        out.delete = active_pods.iter().map(|p| name(p)).collect();
        if set_condition(
            &mut st,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        ) {
            out.events
                .push(("Normal", "Suspended", "Job suspended".to_owned()));
        }
    } else {
        if set_condition(
            &mut st,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            st.start_time = Some(Time(now));
            out.events
                .push(("Normal", "Resumed", "Job resumed".to_owned()));
        }
        manage(
            job,
            pods,
            &active_pods,
            &completed_ix,
            succeeded_total,
            parallelism,
            terminating,
            now,
            &mut out,
        );
    }

    // 4. The status.
    let active_after = active - i32::try_from(out.delete.len()).unwrap_or(0);
    st.active = Some(active_after.max(0));
    st.ready = Some(
        i32::try_from(
            active_pods
                .iter()
                .filter(|p| pods::is_ready(p) && !out.delete.contains(&name(p)))
                .count(),
        )
        .unwrap_or(0),
    );
    st.terminating = Some(i32::try_from(terminating).unwrap_or(0));
    st.succeeded = Some(succeeded);
    st.failed = Some(failed);
    if indexed {
        st.completed_indexes = Some(format_indexes(&completed_ix));
        st.succeeded = Some(succeeded_total);
    }
    st.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!unc_succeeded.is_empty()).then_some(unc_succeeded),
        failed: (!unc_failed.is_empty()).then_some(unc_failed),
    });
    let changed = st != old;
    if changed {
        out.status = Some(st.clone());
    }
    // Finalizers come off only once the status records the pods (now, or already).
    let _ = status_adds;
    out.remove_finalizers = release;

    // 5. The TTL of a finished Job.
    if let Some(ttl) = spec.ttl_seconds_after_finished {
        let finished_at = ["Complete", "Failed"].iter().find_map(|t| {
            condition(&st, t).map(|c| {
                st.completion_time
                    .as_ref()
                    .filter(|_| *t == "Complete")
                    .or(c.last_transition_time.as_ref())
                    .map_or(now, |t| t.0)
            })
        });
        if let Some(at) = finished_at {
            let expire = at.saturating_add(secs(i64::from(ttl))).unwrap_or(at);
            if now >= expire {
                out.delete_job = true;
            } else {
                out.requeue = min_requeue(out.requeue, until(now, expire));
            }
        }
    }
    out
}

fn static_reason(reason: &str) -> &'static str {
    match reason {
        "BackoffLimitExceeded" => "BackoffLimitExceeded",
        "DeadlineExceeded" => "DeadlineExceeded",
        _ => "JobFailed",
    }
}

/// Creates or deletes pods so that the right number run.
#[allow(clippy::too_many_arguments)]
fn manage(
    job: &Job,
    pods: &[&Pod],
    active_pods: &[&Pod],
    completed_ix: &BTreeSet<i32>,
    succeeded: i32,
    parallelism: i32,
    terminating: usize,
    now: Timestamp,
    out: &mut Plan,
) {
    let spec = job.spec.as_ref();
    let completions = spec.and_then(|s| s.completions);
    let active = i32::try_from(active_pods.len()).unwrap_or(i32::MAX);
    let want = match completions {
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism),
    };
    let indexed = is_indexed(job);

    // Extra pods: duplicates of an index, indexes out of range or done, then the newest.
    let mut remove: Vec<&Pod> = Vec::new();
    let mut keep: Vec<&Pod> = Vec::new();
    if indexed {
        let mut by_ix: BTreeMap<i32, Vec<&Pod>> = BTreeMap::new();
        for p in active_pods {
            match completion_index(p) {
                Some(i) if completions.is_none_or(|c| i < c) && !completed_ix.contains(&i) => {
                    by_ix.entry(i).or_default().push(p)
                }
                _ => remove.push(p),
            }
        }
        for (_, mut v) in by_ix {
            // The most removable first; the last one stays.
            v.sort_by_key(|p| removal_rank(p));
            if let Some(best) = v.pop() {
                keep.push(best);
            }
            remove.extend(v);
        }
    } else {
        keep = active_pods.to_vec();
    }
    let excess = usize::try_from(i32::try_from(keep.len()).unwrap_or(0) - want).unwrap_or(0);
    if excess > 0 {
        keep.sort_by_key(|p| removal_rank(p));
        remove.extend(keep.drain(..excess));
    }
    if !remove.is_empty() {
        out.delete = remove.iter().take(MAX_PER_SYNC).map(|p| name(p)).collect();
        return;
    }
    if active >= want {
        return;
    }
    let wait = backoff_remaining(job, pods, now);
    if !wait.is_zero() {
        out.requeue = min_requeue(out.requeue, wait);
        return;
    }
    let terminating = if only_replace_failed(job) {
        i32::try_from(terminating).unwrap_or(0)
    } else {
        0
    };
    let diff = usize::try_from(want - active - terminating)
        .unwrap_or(0)
        .min(MAX_PER_SYNC);
    if indexed {
        let busy: BTreeSet<i32> = active_pods
            .iter()
            .filter_map(|p| completion_index(p))
            .collect();
        let busy_terminating: BTreeSet<i32> = if only_replace_failed(job) {
            pods.iter()
                .filter(|p| pods::is_terminating(p) && !workload::is_finished(p))
                .filter_map(|p| completion_index(p))
                .collect()
        } else {
            BTreeSet::new()
        };
        let c = completions.unwrap_or(0);
        out.create = (0..c)
            .filter(|i| {
                !completed_ix.contains(i) && !busy.contains(i) && !busy_terminating.contains(i)
            })
            .take(diff)
            .map(Some)
            .collect();
    } else {
        out.create = vec![None; diff];
    }
}

/// Which pods to remove first: not yet scheduled, then pending, then not ready, then the
/// newest (Kubernetes' `ActivePods` order, reversed).
fn removal_rank(p: &Pod) -> (u8, u8, u8, std::cmp::Reverse<Option<Timestamp>>) {
    let unscheduled = p
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_none_or(str::is_empty);
    let pending = pods::phase(p) != workload::RUNNING;
    (
        u8::from(!unscheduled),
        u8::from(!pending),
        u8::from(pods::is_ready(p)),
        std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
    )
}

/// The pod of `job` for completion index `index` (None for NonIndexed Jobs).
pub fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let spec = job.spec.clone().unwrap_or_default();
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let namespace = job.metadata.namespace.clone().unwrap_or_default();
    let mut pod = pods::pod_from_template(&spec.template, &namespace, pods::controller_ref(job));
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.to_owned());
    match index {
        None => pod.metadata.generate_name = Some(format!("{job_name}-")),
        Some(i) => {
            pod.metadata.generate_name = Some(format!("{job_name}-{i}-"));
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(INDEX_ANNOTATION.into(), i.to_string());
            pod.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(INDEX_ANNOTATION.into(), i.to_string());
            if let Some(ps) = pod.spec.as_mut() {
                if ps.hostname.as_deref().is_none_or(str::is_empty) {
                    ps.hostname = Some(format!("{job_name}-{i}"));
                }
                let env = EnvVar {
                    name: INDEX_ENV.into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: format!("metadata.annotations['{INDEX_ANNOTATION}']"),
                        }),
                        ..EnvVarSource::default()
                    }),
                };
                let containers = ps
                    .init_containers
                    .iter_mut()
                    .flatten()
                    .chain(ps.containers.iter_mut());
                for c in containers {
                    let vars = c.env.get_or_insert_with(Vec::new);
                    if !vars.iter().any(|e| e.name == INDEX_ENV) {
                        vars.push(env.clone());
                    }
                }
            }
        }
    }
    pod
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let jobs = ctx.informers.get::<Job>();
    let pods = ctx.informers.get::<Pod>();
    let queue: Arc<Queue<Key>> = Queue::new();
    let exp = Arc::new(Freshness::new());

    let feed = {
        let queue = Arc::clone(&queue);
        let exp = Arc::clone(&exp);
        let shutdown = shutdown.clone();
        async move {
            let all = || {
                jobs.queue_all(&queue);
                pods.list()
                    .iter()
                    .filter_map(|p| owner_key(p))
                    .for_each(|k| queue.add(k));
            };
            let follow_jobs = jobs.follow(&shutdown, |c| {
                exp.observe_change("Job", &c, &jobs);
                match c {
                    Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
                    Change::Deleted(j) => {
                        exp.forget(&Key::of(j.as_ref()));
                        queue.add(Key::of(j.as_ref()));
                    }
                    Change::Resynced => all(),
                }
            });
            let follow_pods = pods.follow(&shutdown, |c| {
                exp.observe_change("Pod", &c, &pods);
                match c {
                    Change::Applied { new: p, .. } | Change::Deleted(p) => {
                        if let Some(k) = owner_key(&p) {
                            queue.add(k);
                        }
                    }
                    Change::Resynced => all(),
                }
            });
            jobs.ready().await;
            pods.ready().await;
            all();
            tokio::join!(follow_jobs, follow_pods);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers(NAME, queue, 2, shutdown, move |key: Key| {
            let ctx = Arc::clone(&ctx);
            let exp = Arc::clone(&exp);
            async move { reconcile(&ctx, &exp, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// The Job key of a pod's controlling owner, when that is a Job.
fn owner_key(pod: &Pod) -> Option<Key> {
    workload::owner_key::<Job>(&pod.metadata)
}

fn api_err(action: &'static str, key: &Key) -> impl FnOnce(kube::Error) -> JobError + use<> {
    let key = key.clone();
    move |source| JobError::Api {
        action,
        key,
        source,
    }
}

/// Removes the tracking finalizer of `pod` (a merge patch carrying the cached resource version,
/// so that it applies only to the finalizers as seen).
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<Option<Pod>, kube::Error> {
    if !has_tracking_finalizer(pod) {
        return Ok(None);
    }
    let rest: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = json!({
        "metadata": {
            "resourceVersion": pod.metadata.resource_version,
            "finalizers": rest,
        }
    });
    match api
        .patch(&name(pod), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(p) => Ok(Some(p)),
        // Gone, or changed meanwhile: the next pass looks again.
        Err(e) if workload::is_not_found(&e) || workload::is_conflict(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes the Job `key` converge one step.
async fn reconcile(ctx: &Context, exp: &Freshness, key: &Key) -> Result<Next, JobError> {
    tracing::trace!(job = %key, "reconcile");
    if !exp.satisfied(key) {
        return Ok(Next::After(workload::CACHE_LAG_RETRY));
    }
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let cache = ctx.informers.get::<Pod>();
    let Some(job) = ctx.informers.get::<Job>().get(&key.namespace, &key.name) else {
        // The Job is gone: let go of its pods.
        let orphans = cache.filter(|p| {
            p.metadata.namespace.as_deref() == Some(key.namespace.as_str())
                && owner_key(p).as_ref() == Some(key)
                && has_tracking_finalizer(p)
        });
        for p in orphans {
            remove_finalizer(&pods_api, &p)
                .await
                .map_err(api_err("removing a finalizer", key))?;
        }
        return Ok(Next::Done);
    };
    if job
        .spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .is_some_and(|m| m != "kubernetes.io/job-controller")
    {
        return Ok(Next::Done);
    }
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let owned = cache.filter(|p| {
        p.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && pods::is_controlled_by(&p.metadata, &job_uid)
    });
    let refs: Vec<&Pod> = owned.iter().map(AsRef::as_ref).collect();
    let now = ctx.clock.now();
    let p = plan(&job, &refs, now);
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &key.namespace);

    if p.delete_job {
        let dp = DeleteParams {
            propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: Some(job_uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match jobs_api.delete(&key.name, &dp).await {
            Ok(_) => {}
            Err(e) if workload::is_not_found(&e) || workload::is_conflict(&e) => {}
            Err(e) => return Err(api_err("deleting the finished job", key)(e)),
        }
    }

    // The status first: pods leave their finalizer only once it records them.
    if let Some(status) = &p.status {
        let mut updated = (*job).clone();
        updated.status = Some(status.clone());
        match jobs_api
            .replace_status(&key.name, &PostParams::default(), &updated)
            .await
        {
            Ok(j) => exp.expect(key, "Job", workload::rv(&j.metadata)),
            // A newer Job is on its way through the cache; it queues us again.
            Err(e) if workload::is_conflict(&e) || workload::is_not_found(&e) => {
                return Ok(Next::After(workload::CACHE_LAG_RETRY));
            }
            Err(e) => return Err(api_err("writing the status", key)(e)),
        }
    }
    for n in &p.remove_finalizers {
        if let Some(pod) = owned.iter().find(|o| o.metadata.name.as_deref() == Some(n))
            && let Some(updated) = remove_finalizer(&pods_api, pod)
                .await
                .map_err(api_err("removing a finalizer", key))?
        {
            exp.expect(key, "Pod", workload::rv(&updated.metadata));
        }
    }
    let regarding = workload::object_ref(job.as_ref());
    for n in &p.delete {
        match pods_api.delete(n, &DeleteParams::default()).await {
            Ok(res) => {
                if let Some(pod) = res.left() {
                    exp.expect(key, "Pod", workload::rv(&pod.metadata));
                }
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {n}"),
                )
                .await;
            }
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a pod", key)(e)),
        }
    }
    for index in &p.create {
        let pod = new_pod(&job, *index);
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                exp.expect(key, "Pod", workload::rv(&created.metadata));
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created pod: {}", name(&created)),
                )
                .await;
            }
            Err(e) => {
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Warning",
                    "FailedCreate",
                    format!("Error creating: {e}"),
                )
                .await;
                return Err(api_err("creating a pod", key)(e));
            }
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
        Some(d) => Next::After(d.max(Duration::from_millis(10))),
        None => Next::Done,
    })
}

#[cfg(test)]
mod tests;
