//! The disruption controller: keeps the status of every PodDisruptionBudget as Kubernetes'
//! does, which the eviction subresource of the API server reads to admit or refuse evictions:
//! `currentHealthy` (selected pods that are Ready, not being deleted and not just evicted),
//! `desiredHealthy` (from `minAvailable` or `maxUnavailable`, as a number or a percentage of
//! `expectedPods`), `expectedPods` (the scale of the pods' controllers: ReplicaSet, the
//! Deployment above it, StatefulSet; or the number of pods for an integer `minAvailable`),
//! `disruptionsAllowed`, `observedGeneration`, the
//! `DisruptionAllowed` condition, and the `disruptedPods` the API server recorded, each dropped
//! once its pod is deleted or after [`DELETION_TIMEOUT`].
//!
//! Owns PodDisruptionBudget status only. Must not evict or delete anything. The arithmetic is
//! the pure [`status_for`]; the reconciler reads the caches and writes the status when it
//! differs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::Context;
use crate::informer::Change;
use crate::queue::{self, Key, Next, Queue};

/// How long an eviction recorded in `disruptedPods` keeps its pod out of the healthy count
/// while the pod is not yet being deleted (Kubernetes' `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// The condition type.
pub const CONDITION: &str = "DisruptionAllowed";
/// The condition's reason when disruptions are allowed.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// The condition's reason when none are.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// The condition's reason when the budget could not be computed.
pub const SYNC_FAILED: &str = "SyncFailed";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum DisruptionError {
    /// Writing the budget's status failed.
    #[error("updating the status of poddisruptionbudget {key}: {source}")]
    Write {
        /// The budget's key.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// True if the budget's selector selects the pod (same namespace; a missing selector selects
/// nothing, an empty one every pod, as in `policy/v1`).
pub fn pdb_selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    if pdb.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let Ok(v) = serde_json::to_value(selector) else {
        return false;
    };
    let Ok(sel) = berth_api::selectors::from_json(&v) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    sel.matches_with(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
}

/// A number or a percentage of `total` (Kubernetes' `GetScaledValueFromIntOrPercent`, rounding
/// up).
pub fn scaled(v: &IntOrString, total: i32) -> Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%') else {
                return Err(format!(
                    "invalid value for IntOrString: invalid type: string is not a percentage: {s:?}"
                ));
            };
            let p: i64 = p
                .parse()
                .map_err(|_| format!("invalid value {s:?}: not a percentage"))?;
            let total = i64::from(total);
            let v = (p * total + 99).div_euclid(100);
            Ok(i32::try_from(v).unwrap_or(i32::MAX))
        }
    }
}

/// A pod's controller: its UID and scale (`spec.replicas`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// The controller's UID.
    pub uid: String,
    /// Its desired replicas.
    pub replicas: i32,
}

/// The sum of the scales of the pods' controllers (each counted once) and the names of pods
/// without a controller. `scale_of` finds a controller's scale in the pod's namespace; an
/// error when it finds none for a pod that has a controller.
pub fn expected_scale(
    pods: &[&Pod],
    scale_of: impl Fn(&OwnerReference, &str) -> Option<Scale>,
) -> Result<(i32, Vec<String>), String> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(owner) = crate::pods::controller_of(&pod.metadata) else {
            unmanaged.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        };
        if scales.contains_key(&owner.uid) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let Some(s) = scale_of(owner, ns) else {
            return Err(format!(
                "found no controllers for pod {:?}",
                pod.metadata.name.as_deref().unwrap_or_default()
            ));
        };
        scales.insert(s.uid, s.replicas);
    }
    Ok((scales.values().sum(), unmanaged))
}

/// The expected pods and desired healthy pods of a budget over its `pods`.
pub fn budget(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scale_of: impl Fn(&OwnerReference, &str) -> Option<Scale>,
) -> Result<(i32, i32), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    if let Some(max) = &spec.max_unavailable {
        let (expected, _) = expected_scale(pods, scale_of)?;
        let max = scaled(max, expected)?;
        return Ok((expected, (expected - max).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((i32::try_from(pods.len()).unwrap_or(i32::MAX), *n)),
        Some(min) => {
            let (expected, _) = expected_scale(pods, scale_of)?;
            Ok((expected, scaled(min, expected)?))
        }
        None => Ok((0, 0)),
    }
}

/// The recorded evictions still pending: those whose pod exists, is not being deleted and was
/// evicted less than [`DELETION_TIMEOUT`] ago; and when the next of them expires.
pub fn pending_disruptions(
    recorded: Option<&BTreeMap<String, Time>>,
    pods: &[&Pod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let timeout = SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or(SignedDuration::MAX);
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    for (name, at) in recorded.into_iter().flatten() {
        let Some(pod) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let expires = at.0.checked_add(timeout).unwrap_or(Timestamp::MAX);
        if expires < now {
            continue;
        }
        kept.insert(name.clone(), at.clone());
        recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
    }
    (kept, recheck)
}

/// Pods that count as healthy: Ready, not being deleted, not just evicted.
pub fn count_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>) -> i32 {
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .filter(|p| crate::pods::is_ready(p))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Sets a condition as `meta.SetStatusCondition` does: the transition time changes only with
/// the status.
pub fn set_condition(conditions: &mut Vec<Condition>, mut c: Condition) {
    match conditions.iter_mut().find(|x| x.type_ == c.type_) {
        Some(x) => {
            if x.status != c.status {
                x.status = c.status;
                x.last_transition_time = c.last_transition_time;
            }
            x.reason = c.reason;
            x.message = c.message;
            x.observed_generation = c.observed_generation;
        }
        None => {
            c.message.truncate(32768);
            conditions.push(c);
        }
    }
}

/// The budget's status over `pods` (those of its namespace), or the fail-safe status (no
/// disruptions allowed, condition SyncFailed, the rest kept) when the budget cannot be
/// computed; and when to look again for pending evictions to expire.
pub fn status_for<'a>(
    pdb: &PodDisruptionBudget,
    pods: impl IntoIterator<Item = &'a Pod>,
    scale_of: impl Fn(&OwnerReference, &str) -> Option<Scale>,
    now: Timestamp,
) -> (PodDisruptionBudgetStatus, Option<Timestamp>) {
    let selected: Vec<&Pod> = pods.into_iter().filter(|p| pdb_selects(pdb, p)).collect();
    let old = pdb.status.clone().unwrap_or_default();
    let mut conditions = old.conditions.clone().unwrap_or_default();
    let (expected, desired) = match budget(pdb, &selected, scale_of) {
        Ok(b) => b,
        Err(message) => {
            set_condition(
                &mut conditions,
                Condition {
                    type_: CONDITION.into(),
                    status: "False".into(),
                    reason: SYNC_FAILED.into(),
                    message,
                    observed_generation: old.observed_generation,
                    last_transition_time: Time(now),
                },
            );
            let status = PodDisruptionBudgetStatus {
                disruptions_allowed: 0,
                conditions: Some(conditions),
                ..old
            };
            return (status, None);
        }
    };
    let (disrupted, recheck) = pending_disruptions(old.disrupted_pods.as_ref(), &selected, now);
    let healthy = count_healthy(&selected, &disrupted);
    let mut allowed = healthy - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let generation = pdb.metadata.generation;
    let (status, reason) = if allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    set_condition(
        &mut conditions,
        Condition {
            type_: CONDITION.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: generation,
            last_transition_time: Time(now),
        },
    );
    let status = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        conditions: Some(conditions),
    };
    (status, recheck)
}

/// True if two statuses say the same (an absent and an empty `disruptedPods` alike).
fn same_status(a: &PodDisruptionBudgetStatus, b: &PodDisruptionBudgetStatus) -> bool {
    let norm = |s: &PodDisruptionBudgetStatus| {
        let mut s = s.clone();
        if s.disrupted_pods.as_ref().is_some_and(BTreeMap::is_empty) {
            s.disrupted_pods = None;
        }
        s
    };
    norm(a) == norm(b)
}

/// The scale of a pod's controller from the caches (Kubernetes' finders: a ReplicaSet, or the
/// Deployment that controls it; a StatefulSet. Berth serves no ReplicationControllers).
fn scale_from_caches(ctx: &Context, owner: &OwnerReference, ns: &str) -> Option<Scale> {
    let group = owner.api_version.split('/').rev().nth(1).unwrap_or("");
    let apps = group == "apps" || group == "extensions";
    let matches = |uid: Option<&String>| uid == Some(&owner.uid);
    match owner.kind.as_str() {
        "ReplicaSet" if apps => {
            let rs = ctx.informers.get::<ReplicaSet>().get(ns, &owner.name)?;
            if !matches(rs.metadata.uid.as_ref()) {
                return None;
            }
            let parent = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true));
            match parent {
                Some(d) if d.kind == "Deployment" => {
                    let dep = ctx.informers.get::<Deployment>().get(ns, &d.name)?;
                    (dep.metadata.uid.as_ref() == Some(&d.uid)).then(|| Scale {
                        uid: d.uid.clone(),
                        replicas: dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    })
                }
                _ => Some(Scale {
                    uid: owner.uid.clone(),
                    replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                }),
            }
        }
        "StatefulSet" if apps => {
            let s = ctx.informers.get::<StatefulSet>().get(ns, &owner.name)?;
            matches(s.metadata.uid.as_ref()).then(|| Scale {
                uid: owner.uid.clone(),
                replicas: s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            })
        }
        _ => None,
    }
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let pdbs = ctx.informers.get::<PodDisruptionBudget>();
    let pods = ctx.informers.get::<Pod>();
    let rss = ctx.informers.get::<ReplicaSet>();
    let deployments = ctx.informers.get::<Deployment>();
    let sets = ctx.informers.get::<StatefulSet>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let shutdown = shutdown.clone();
        async move {
            let all = || pdbs.queue_all(&queue);
            // A workload's scale decides its budgets' expected pods.
            let in_namespace =
                |meta: &ObjectMeta| pdbs.queue_in_namespace(&queue, meta.namespace.as_deref());
            let follow_budgets = pdbs.follow(&shutdown, |c| match c {
                Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
                Change::Deleted(_) => {}
                Change::Resynced => all(),
            });
            let follow_pods = pods.follow(&shutdown, |c| {
                pdbs.queue_selecting_change(&queue, c, pdb_selects, all);
            });
            let follow_sets = rss.follow(&shutdown, |c| match c {
                Change::Applied { new: o, .. } | Change::Deleted(o) => in_namespace(&o.metadata),
                Change::Resynced => all(),
            });
            let follow_deployments = deployments.follow(&shutdown, |c| match c {
                Change::Applied { new: o, .. } | Change::Deleted(o) => in_namespace(&o.metadata),
                Change::Resynced => all(),
            });
            let follow_statefulsets = sets.follow(&shutdown, |c| match c {
                Change::Applied { new: o, .. } | Change::Deleted(o) => in_namespace(&o.metadata),
                Change::Resynced => all(),
            });
            pdbs.ready().await;
            pods.ready().await;
            rss.ready().await;
            deployments.ready().await;
            sets.ready().await;
            all();
            tokio::join!(
                follow_budgets,
                follow_pods,
                follow_sets,
                follow_deployments,
                follow_statefulsets
            );
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("disruption", queue, 2, shutdown, move |key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// How soon a reconcile that lost a write race looks again.
const RETRY_SOON: Duration = Duration::from_millis(200);

async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, DisruptionError> {
    let Some(pdb) = ctx
        .informers
        .get::<PodDisruptionBudget>()
        .get(&key.namespace, &key.name)
    else {
        return Ok(Next::Done);
    };
    let now = ctx.clock.now();
    let pods = ctx
        .informers
        .get::<Pod>()
        .filter(|p| p.metadata.namespace.as_deref() == Some(key.namespace.as_str()));
    let (status, recheck) = status_for(
        &pdb,
        pods.iter().map(|p| p.as_ref()),
        |o, ns| scale_from_caches(ctx, o, ns),
        now,
    );
    let next = match recheck {
        Some(at) => Next::After(
            Duration::try_from(at.duration_since(now))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(100)),
        ),
        None => Next::Done,
    };
    if same_status(&pdb.status.clone().unwrap_or_default(), &status) {
        return Ok(next);
    }
    let mut new = (*pdb).clone();
    new.status = Some(status);
    let api: Api<PodDisruptionBudget> = Api::namespaced(ctx.client.clone(), &key.namespace);
    match api
        .replace_status(&key.name, &PostParams::default(), &new)
        .await
    {
        Ok(_) => Ok(next),
        // The API server's eviction or the informer was ahead of this cache: look again.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Next::After(RETRY_SOON)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Next::Done),
        Err(source) => Err(DisruptionError::Write {
            key: key.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                generation: Some(3),
                ..ObjectMeta::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: None,
        }
    }

    fn pod(name: &str, ready: bool, owner: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "ReplicaSet".into(),
                        name: "rs".into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: None,
                    }]
                }),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    fn scale_five(o: &OwnerReference, _: &str) -> Option<Scale> {
        (o.uid == "rs-uid").then(|| Scale {
            uid: "rs-uid".into(),
            replicas: 5,
        })
    }

    fn cond(s: &PodDisruptionBudgetStatus) -> (&str, &str) {
        let c = &s.conditions.as_ref().unwrap()[0];
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 5), Ok(3));
        assert_eq!(scaled(&IntOrString::String("0%".into()), 5), Ok(0));
        assert_eq!(scaled(&IntOrString::String("100%".into()), 7), Ok(7));
        assert_eq!(scaled(&IntOrString::Int(2), 7), Ok(2));
        assert!(scaled(&IntOrString::String("half".into()), 7).is_err());
    }

    #[test]
    fn an_integer_min_available_counts_the_pods() {
        let b = pdb(Some(IntOrString::Int(2)), None);
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("c", false, None),
        ];
        let (s, recheck) = status_for(&b, pods.iter(), |_, _| None, t(0));
        assert_eq!(
            (
                s.expected_pods,
                s.desired_healthy,
                s.current_healthy,
                s.disruptions_allowed
            ),
            (3, 2, 2, 0)
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(cond(&s), ("False", INSUFFICIENT_PODS));
        assert_eq!(recheck, None);
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("c", true, None),
        ];
        let (s, _) = status_for(&b, pods.iter(), |_, _| None, t(0));
        assert_eq!(s.disruptions_allowed, 1);
        assert_eq!(cond(&s), ("True", SUFFICIENT_PODS));
    }

    #[test]
    fn max_unavailable_and_percentages_use_the_controllers_scale() {
        let pods: Vec<Pod> = (0..4)
            .map(|i| pod(&format!("p{i}"), true, Some("rs-uid")))
            .collect();
        let b = pdb(None, Some(IntOrString::Int(1)));
        let (s, _) = status_for(&b, pods.iter(), scale_five, t(0));
        // Five wanted, four healthy: one already unavailable, none more allowed.
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
            (5, 4, 0)
        );
        let b = pdb(Some(IntOrString::String("50%".into())), None);
        let (s, _) = status_for(&b, pods.iter(), scale_five, t(0));
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
            (5, 3, 1)
        );
        let b = pdb(None, Some(IntOrString::String("40%".into())));
        let (s, _) = status_for(&b, pods.iter(), scale_five, t(0));
        assert_eq!((s.desired_healthy, s.disruptions_allowed), (3, 1));
    }

    #[test]
    fn a_missing_controller_fails_safe() {
        let mut b = pdb(None, Some(IntOrString::Int(1)));
        b.status = Some(PodDisruptionBudgetStatus {
            disruptions_allowed: 2,
            observed_generation: Some(2),
            ..PodDisruptionBudgetStatus::default()
        });
        let pods = [pod("a", true, Some("gone"))];
        let (s, _) = status_for(&b, pods.iter(), scale_five, t(0));
        assert_eq!(s.disruptions_allowed, 0);
        assert_eq!(
            s.observed_generation,
            Some(2),
            "not observed: evictions wait"
        );
        assert_eq!(cond(&s), ("False", SYNC_FAILED));
        assert!(
            s.conditions.unwrap()[0]
                .message
                .contains("found no controllers")
        );
    }

    #[test]
    fn evicted_pods_do_not_count_until_deleted_or_timed_out() {
        let mut b = pdb(Some(IntOrString::Int(1)), None);
        b.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(BTreeMap::from([
                ("a".into(), Time(t(0))),
                ("gone".into(), Time(t(0))),
                ("old".into(), Time(t(-200))),
            ])),
            ..PodDisruptionBudgetStatus::default()
        });
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("old", true, None),
        ];
        let (s, recheck) = status_for(&b, pods.iter(), |_, _| None, t(10));
        assert_eq!(s.current_healthy, 2, "a is on its way out");
        assert_eq!(
            s.disrupted_pods
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(recheck, Some(t(120)));
        assert_eq!(s.disruptions_allowed, 1);
    }

    #[test]
    fn selectors_follow_policy_v1() {
        let mut b = pdb(Some(IntOrString::Int(1)), None);
        assert!(pdb_selects(&b, &pod("a", true, None)));
        b.spec.as_mut().unwrap().selector = Some(LabelSelector::default());
        assert!(pdb_selects(&b, &pod("a", true, None)), "empty selects all");
        b.spec.as_mut().unwrap().selector = None;
        assert!(
            !pdb_selects(&b, &pod("a", true, None)),
            "missing selects none"
        );
    }

    #[test]
    fn a_computed_status_is_stable() {
        let mut b = pdb(Some(IntOrString::Int(1)), None);
        let pods = [pod("a", true, None), pod("b", true, None)];
        let (s, _) = status_for(&b, pods.iter(), |_, _| None, t(0));
        b.status = Some(s.clone());
        let (again, _) = status_for(&b, pods.iter(), |_, _| None, t(50));
        assert!(same_status(&s, &again));
    }
}
