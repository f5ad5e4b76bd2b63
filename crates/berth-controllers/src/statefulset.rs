//! The StatefulSet controller: pods `<set>-<ordinal>` with a stable hostname (and the
//! governing Service as subdomain), a PersistentVolumeClaim per volumeClaimTemplate and ordinal
//! (`<claim>-<set>-<ordinal>`, kept when the pod goes: the retention policy defaults to
//! Retain; `whenDeleted: Delete` makes the set their owner, `whenScaled: Delete` hands a
//! scaled-down pod's claims to that pod, for the garbage collector), created in ordinal order with each waiting for the previous to be Running and Ready
//! (`OrderedReady`) or all at once (`Parallel`), removed in reverse order; rolling updates
//! replace pods from the highest ordinal down to the partition, one at a time, or only when
//! deleted (`OnDelete`). ControllerRevisions hold each template; `status.currentRevision` and
//! `updateRevision` name them and pods carry theirs in `controller-revision-hash`.
//!
//! The decisions follow Kubernetes' `defaultStatefulSetControl` and are the pure [`plan`];
//! [`reconcile`] reads the caches, keeps the revisions and carries a plan out. Must not touch
//! pods it does not control, nor delete claims.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::watch;

use crate::Context;
use crate::pods;
use crate::queue::{self, Key, Next, Queue};
use crate::revision::{self, UpdateRevision};
use crate::workload::{self, Freshness};

/// The controller's name (events, logs).
pub const NAME: &str = "statefulset-controller";
/// The label naming a StatefulSet pod.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a StatefulSet pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum StatefulSetError {
    /// An API call failed.
    #[error("{action} for statefulset {key}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// The StatefulSet.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// The two revisions a StatefulSet moves between.
#[derive(Debug, Clone, PartialEq)]
pub struct Revisions {
    /// The revision the running pods came from: its name and template.
    pub current: (String, PodTemplateSpec),
    /// The revision of the set's template now.
    pub update: (String, PodTemplateSpec),
}

/// What a plan asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Claims to create (before the pods that use them).
    pub create_claims: Vec<PersistentVolumeClaim>,
    /// Pods to create, in order.
    pub create: Vec<Pod>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// The status.
    pub status: StatefulSetStatus,
    /// Look again after this long (a pod becomes available).
    pub requeue: Option<Duration>,
    /// Pods whose identity labels are missing or wrong (e.g. adopted), by name.
    pub relabel: Vec<String>,
}

/// The ordinal of `pod` in the set named `set`, if the pod's name is `<set>-<ordinal>`.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    let rest = pod.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty() || (rest.len() > 1 && rest.starts_with('0')) {
        return None;
    }
    rest.parse().ok().filter(|o: &i32| *o >= 0)
}

fn set_name(set: &StatefulSet) -> String {
    set.metadata.name.clone().unwrap_or_default()
}

/// The claim name of template `claim` for ordinal `ord`.
pub fn claim_name(claim: &str, set: &str, ord: i32) -> String {
    format!("{claim}-{set}-{ord}")
}

fn revision_of(pod: &Pod) -> &str {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(revision::HASH_LABEL))
        .map_or("", String::as_str)
}

/// Whether the pod was created (has a phase).
fn is_created(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| !p.is_empty())
}

fn is_healthy(pod: &Pod) -> bool {
    workload::is_running_and_ready(pod) && !pods::is_terminating(pod)
}

/// The claims of ordinal `ord` of `set`.
pub fn claims(set: &StatefulSet, ord: i32) -> Vec<PersistentVolumeClaim> {
    let name = set_name(set);
    let Some(spec) = set.spec.as_ref() else {
        return Vec::new();
    };
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            let owner_references = delete_with_set.then(|| {
                vec![OwnerReference {
                    controller: None,
                    ..pods::controller_ref(set)
                }]
            });
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &name, ord)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references,
                    ..ObjectMeta::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The owner references a claim of a pod being removed by a scale-down should have when the
/// set's retention policy says `whenScaled: Delete`: the pod's, added, so that the garbage
/// collector removes the claim with the pod. `None` when nothing is to change.
pub fn scaled_claim_owners(
    set: &StatefulSet,
    pod: &Pod,
    claim: &PersistentVolumeClaim,
) -> Option<Vec<OwnerReference>> {
    let delete_when_scaled = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref())
        .and_then(|p| p.when_scaled.as_deref())
        == Some("Delete");
    let uid = pod.metadata.uid.clone()?;
    let refs = claim.metadata.owner_references.clone().unwrap_or_default();
    if !delete_when_scaled || refs.iter().any(|r| r.uid == uid) {
        return None;
    }
    let mut out = refs;
    out.push(OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid,
        controller: None,
        block_owner_deletion: None,
    });
    Some(out)
}

/// Whether the pod carries the identity labels of ordinal `ord`.
fn identity_matches(pod: &Pod, ord: i32) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    get(POD_NAME_LABEL) == pod.metadata.name.as_deref()
        && get(POD_INDEX_LABEL) == Some(ord.to_string().as_str())
}

/// The pod of ordinal `ord` made from the revision `(revision name, template)`.
pub fn new_pod(set: &StatefulSet, ord: i32, rev: &(String, PodTemplateSpec)) -> Pod {
    let set_name = set_name(set);
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let mut pod = pods::pod_from_template(&rev.1, &namespace, pods::controller_ref(set));
    let name = format!("{set_name}-{ord}");
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
    labels.insert(revision::HASH_LABEL.into(), rev.0.clone());
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .filter(|s| !s.is_empty());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    spec.subdomain = service;
    for t in set
        .spec
        .iter()
        .flat_map(|s| s.volume_claim_templates.iter().flatten())
    {
        let tname = t.metadata.name.clone().unwrap_or_default();
        let volume = Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &set_name, ord),
                read_only: None,
            }),
            ..Volume::default()
        };
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        match volumes.iter_mut().find(|v| v.name == tname) {
            Some(v) => *v = volume,
            None => volumes.push(volume),
        }
    }
    pod
}

fn i32_of(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Decides the next steps for `set` given the pods it controls, the revisions and the names of
/// the claims that exist, at `now`.
pub fn plan(
    set: &StatefulSet,
    pods_of_set: &[&Pod],
    revs: &Revisions,
    existing_claims: &HashSet<String>,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let Some(spec) = set.spec.as_ref() else {
        return out;
    };
    let name = set_name(set);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let strategy = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .map(|r| r.partition.unwrap_or(0));
    let old_status = set.status.clone().unwrap_or_default();

    // The status as the pods are now.
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(revs.current.0.clone()),
        update_revision: Some(revs.update.0.clone()),
        collision_count: old_status.collision_count,
        conditions: old_status.conditions.clone(),
        ..StatefulSetStatus::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in pods_of_set {
        if is_created(p) {
            st.replicas += 1;
        }
        if workload::is_running_and_ready(p) {
            ready += 1;
            if pods::is_available(p, min_ready, now) {
                available += 1;
            }
        }
        if is_created(p) && !pods::is_terminating(p) {
            if revision_of(p) == revs.current.0 {
                current += 1;
            }
            if revision_of(p) == revs.update.0 {
                updated += 1;
            }
        }
    }

    // Pods in range by index, the others condemned (highest first).
    let mut slots: Vec<Option<&Pod>> = vec![None; usize::try_from(replicas).unwrap_or(0)];
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for p in pods_of_set {
        let Some(ord) = ordinal(&name, p.metadata.name.as_deref().unwrap_or("")) else {
            continue;
        };
        if ord >= start && ord < start + replicas {
            slots[usize::try_from(ord - start).unwrap_or(0)] = Some(p);
        } else {
            condemned.push((ord, p));
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));
    let first_unhealthy: Option<i32> = slots
        .iter()
        .enumerate()
        .find(|(_, p)| p.is_none_or(|p| !is_healthy(p)))
        .map(|(i, _)| start + i32_of(i))
        .or_else(|| {
            condemned
                .iter()
                .find(|(_, p)| !is_healthy(p))
                .map(|(o, _)| *o)
        });

    let status_current = old_status.current_replicas.unwrap_or(0);
    let revision_for = |ord: i32| {
        let use_current = strategy == "RollingUpdate"
            && match partition {
                None => ord < start + status_current,
                Some(p) => ord < start + p,
            };
        if use_current {
            &revs.current
        } else {
            &revs.update
        }
    };

    let want_claims = |ord: i32, out: &mut Plan| {
        for c in claims(set, ord) {
            let n = c.metadata.name.clone().unwrap_or_default();
            if !existing_claims.contains(&n)
                && !out
                    .create_claims
                    .iter()
                    .any(|x| x.metadata.name.as_deref() == Some(n.as_str()))
            {
                out.create_claims.push(c);
            }
        }
    };

    let mut blocked = false;
    // 1. The replicas, in order.
    for (i, slot) in slots.iter().enumerate() {
        let ord = start + i32_of(i);
        match slot {
            None => {
                let rev = revision_for(ord);
                want_claims(ord, &mut out);
                out.create.push(new_pod(set, ord, rev));
                st.replicas += 1;
                if rev.0 == revs.current.0 {
                    current += 1;
                }
                if rev.0 == revs.update.0 {
                    updated += 1;
                }
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(p) if workload::is_finished(p) => {
                // A finished pod is deleted and made again on a later pass.
                if !pods::is_terminating(p) {
                    out.delete.push(p.metadata.name.clone().unwrap_or_default());
                }
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(p) => {
                if pods::phase(p) == "Pending" {
                    want_claims(ord, &mut out);
                }
                if !identity_matches(p, ord) {
                    out.relabel
                        .push(p.metadata.name.clone().unwrap_or_default());
                }
                if monotonic {
                    if pods::is_terminating(p) || !workload::is_running_and_ready(p) {
                        blocked = true;
                        break;
                    }
                    if !pods::is_available(p, min_ready, now) {
                        out.requeue = pods::available_in(p, min_ready, now);
                        blocked = true;
                        break;
                    }
                }
            }
        }
    }

    // 2. Pods beyond the replicas, highest ordinal first.
    if !blocked {
        for (ord, p) in &condemned {
            if pods::is_terminating(p) {
                if monotonic {
                    blocked = true;
                    break;
                }
                continue;
            }
            if monotonic && Some(*ord) != first_unhealthy && !is_healthy(p) {
                blocked = true;
                break;
            }
            if monotonic && Some(*ord) != first_unhealthy && !pods::is_available(p, min_ready, now)
            {
                out.requeue = pods::available_in(p, min_ready, now);
                blocked = true;
                break;
            }
            out.delete.push(p.metadata.name.clone().unwrap_or_default());
            if monotonic {
                blocked = true;
                break;
            }
        }
    }

    // 3. The rolling update: the highest pod not at the update revision goes, one at a time.
    if !blocked && strategy == "RollingUpdate" {
        let min = usize::try_from(partition.unwrap_or(0).max(0)).unwrap_or(0);
        for i in (min..slots.len()).rev() {
            let Some(p) = slots[i] else {
                continue;
            };
            if out
                .delete
                .iter()
                .any(|d| Some(d.as_str()) == p.metadata.name.as_deref())
            {
                break;
            }
            if revision_of(p) != revs.update.0 && !pods::is_terminating(p) {
                out.delete.push(p.metadata.name.clone().unwrap_or_default());
                current -= i32::from(revision_of(p) == revs.current.0);
                break;
            }
            if !is_healthy(p) {
                break;
            }
        }
    }

    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current);
    st.updated_replicas = Some(updated);
    // A finished rolling update makes the update revision current.
    if strategy == "RollingUpdate" && updated == st.replicas && ready == st.replicas {
        st.current_replicas = Some(updated);
        st.current_revision = st.update_revision.clone();
    }
    out.status = st;
    out
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let sets = ctx.informers.get::<StatefulSet>();
    let pods_inf = ctx.informers.get::<Pod>();
    let revs = ctx.informers.get::<ControllerRevision>();
    let claims_inf = ctx.informers.get::<PersistentVolumeClaim>();
    let queue: Arc<Queue<Key>> = Queue::new();
    let fresh = Arc::new(Freshness::new());

    let feed = {
        let queue = Arc::clone(&queue);
        let fresh = Arc::clone(&fresh);
        let shutdown = shutdown.clone();
        async move {
            let all = || sets.queue_all(&queue);
            let follow_sets = workload::follow_own(&sets, &shutdown, &queue, &fresh);
            let follow_pods =
                workload::follow_owned(&pods_inf, &sets, &shutdown, &queue, &fresh, true);
            let follow_revs =
                workload::follow_owned(&revs, &sets, &shutdown, &queue, &fresh, false);
            sets.ready().await;
            pods_inf.ready().await;
            revs.ready().await;
            claims_inf.ready().await;
            all();
            tokio::join!(follow_sets, follow_pods, follow_revs);
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers(NAME, queue, 2, shutdown, move |key: Key| {
            let ctx = Arc::clone(&ctx);
            let fresh = Arc::clone(&fresh);
            async move { reconcile(&ctx, &fresh, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

fn api_err(
    action: &'static str,
    key: &Key,
) -> impl FnOnce(kube::Error) -> StatefulSetError + use<> {
    let key = key.clone();
    move |source| StatefulSetError::Api {
        action,
        key,
        source,
    }
}

/// Finds or makes the update revision and picks the current one.
async fn revisions(
    ctx: &Context,
    fresh: &Freshness,
    key: &Key,
    set: &StatefulSet,
    owned: &[Arc<ControllerRevision>],
) -> Result<Revisions, StatefulSetError> {
    let spec = set.spec.clone().unwrap_or_default();
    let data = revision::data(&spec.template);
    let refs: Vec<&ControllerRevision> = owned.iter().map(AsRef::as_ref).collect();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let update_name = match revision::find_update(&refs, &data) {
        UpdateRevision::Latest(n) => n,
        UpdateRevision::Reuse { name, number } => {
            let r = api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({ "revision": number })),
                )
                .await
                .map_err(api_err("renumbering a revision", key))?;
            fresh.expect(key, "ControllerRevision", workload::rv(&r.metadata));
            name
        }
        UpdateRevision::Create => {
            let mut collisions = set
                .status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0);
            loop {
                let rev = revision::new_revision(
                    &key.name,
                    &key.namespace,
                    pods::controller_ref(set),
                    spec.template
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.as_ref()),
                    data.clone(),
                    revision::next_number(&refs),
                    collisions,
                );
                let n = rev.metadata.name.clone().unwrap_or_default();
                match api.create(&PostParams::default(), &rev).await {
                    Ok(r) => {
                        fresh.expect(key, "ControllerRevision", workload::rv(&r.metadata));
                        break n;
                    }
                    Err(e) if workload::is_conflict(&e) => {
                        let existing = api
                            .get(&n)
                            .await
                            .map_err(api_err("reading a revision", key))?;
                        if revision::equal(&existing, &data)
                            && existing
                                .metadata
                                .owner_references
                                .iter()
                                .flatten()
                                .any(|r| Some(&r.uid) == set.metadata.uid.as_ref())
                        {
                            break n;
                        }
                        collisions += 1;
                        if collisions > 100 {
                            return Err(api_err("creating a revision", key)(e));
                        }
                    }
                    Err(e) => return Err(api_err("creating a revision", key)(e)),
                }
            }
        }
    };
    let current_name = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|c| owned.iter().any(|r| r.metadata.name.as_ref() == Some(c)));
    let current = match current_name {
        Some(c) if c != update_name => {
            let template = owned
                .iter()
                .find(|r| r.metadata.name.as_ref() == Some(&c))
                .and_then(|r| revision::template(r))
                .unwrap_or_else(|| spec.template.clone());
            (c, template)
        }
        _ => (update_name.clone(), spec.template.clone()),
    };
    Ok(Revisions {
        current,
        update: (update_name, spec.template),
    })
}

/// Makes the StatefulSet `key` converge one step.
async fn reconcile(ctx: &Context, fresh: &Freshness, key: &Key) -> Result<Next, StatefulSetError> {
    if !fresh.satisfied(key) {
        return Ok(Next::After(workload::CACHE_LAG_RETRY));
    }
    let Some(set) = ctx
        .informers
        .get::<StatefulSet>()
        .get(&key.namespace, &key.name)
    else {
        return Ok(Next::Done);
    };
    let spec = set.spec.clone().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let Ok(sel) = pods::selector(Some(&spec.selector)) else {
        return Ok(Next::Done);
    };

    // The pods: claim orphans that match and are members, let go of those that no longer match.
    let candidates = ctx.informers.get::<Pod>().filter(|p| {
        p.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && ordinal(&key.name, p.metadata.name.as_deref().unwrap_or("")).is_some()
    });
    let claim = pods::claim(&set.metadata, &sel, candidates);
    let owner = pods::controller_ref(set.as_ref());
    for p in &claim.adopt {
        pods::adopt(&pods_api, &owner, p)
            .await
            .map_err(api_err("adopting a pod", key))?;
    }
    for p in &claim.release {
        pods::release(&pods_api, &owner.uid, p)
            .await
            .map_err(api_err("releasing a pod", key))?;
    }
    if set.metadata.deletion_timestamp.is_some() {
        return Ok(Next::Done);
    }

    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let owned_revs = ctx.informers.get::<ControllerRevision>().filter(|r| {
        r.metadata.namespace.as_deref() == Some(key.namespace.as_str())
            && pods::is_controlled_by(&r.metadata, &set_uid)
    });
    let revs = revisions(ctx, fresh, key, &set, &owned_revs).await?;
    let existing_claims: HashSet<String> = ctx
        .informers
        .get::<PersistentVolumeClaim>()
        .filter(|c| c.metadata.namespace.as_deref() == Some(key.namespace.as_str()))
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    let refs: Vec<&Pod> = claim.owned.iter().map(AsRef::as_ref).collect();
    let now = ctx.clock.now();
    let p = plan(&set, &refs, &revs, &existing_claims, now);
    tracing::trace!(
        statefulset = %key,
        pods = ?refs
            .iter()
            .map(|p| (p.metadata.name.clone(), workload::is_running_and_ready(p)))
            .collect::<Vec<_>>(),
        create = ?p.create.iter().map(|p| p.metadata.name.clone()).collect::<Vec<_>>(),
        delete = ?p.delete,
        "plan"
    );

    let claims_api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &key.namespace);
    let regarding = workload::object_ref(set.as_ref());
    for c in &p.create_claims {
        match claims_api.create(&PostParams::default(), c).await {
            Ok(_) => {}
            Err(e) if workload::is_conflict(&e) => {}
            Err(e) => return Err(api_err("creating a claim", key)(e)),
        }
    }
    for pod in &p.create {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        match pods_api.create(&PostParams::default(), pod).await {
            Ok(created) => {
                fresh.expect(key, "Pod", workload::rv(&created.metadata));
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {} successful",
                        key.name
                    ),
                )
                .await;
            }
            Err(e) if workload::is_conflict(&e) => {}
            Err(e) => {
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Warning",
                    "FailedCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {} failed error: {e}",
                        key.name
                    ),
                )
                .await;
                return Err(api_err("creating a pod", key)(e));
            }
        }
    }
    let claim_cache = ctx.informers.get::<PersistentVolumeClaim>();
    let replicas_range = {
        let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        start..start + spec.replicas.unwrap_or(1).max(0)
    };
    for n in &p.relabel {
        let ord = ordinal(&key.name, n).unwrap_or(0);
        let patch = json!({"metadata": {"labels": {
            POD_NAME_LABEL: n,
            POD_INDEX_LABEL: ord.to_string(),
        }}});
        match pods_api
            .patch(n, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(updated) => fresh.expect(key, "Pod", workload::rv(&updated.metadata)),
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("labelling a pod", key)(e)),
        }
    }
    for n in &p.delete {
        // A pod removed by a scale-down hands its claims to the garbage collector when the
        // retention policy says so.
        if let Some(ord) = ordinal(&key.name, n).filter(|o| !replicas_range.contains(o))
            && let Some(pod) = refs.iter().find(|p| p.metadata.name.as_deref() == Some(n))
        {
            for want in claims(&set, ord) {
                let cname = want.metadata.name.clone().unwrap_or_default();
                let Some(claim) = claim_cache.get(&key.namespace, &cname) else {
                    continue;
                };
                if let Some(owners) = scaled_claim_owners(&set, pod, &claim) {
                    let patch = json!({"metadata": {
                        "ownerReferences": owners,
                        "resourceVersion": claim.metadata.resource_version,
                    }});
                    match claims_api
                        .patch(&cname, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if workload::is_not_found(&e) || workload::is_conflict(&e) => {}
                        Err(e) => return Err(api_err("handing a claim to its pod", key)(e)),
                    }
                }
            }
        }
        match pods_api.delete(n, &DeleteParams::default()).await {
            Ok(res) => {
                if let Some(pod) = res.left() {
                    fresh.expect(key, "Pod", workload::rv(&pod.metadata));
                }
                workload::record_event(
                    &ctx.client,
                    NAME,
                    now,
                    regarding.clone(),
                    "Normal",
                    "SuccessfulDelete",
                    format!("delete Pod {n} in StatefulSet {} successful", key.name),
                )
                .await;
            }
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a pod", key)(e)),
        }
    }
    if set.status.as_ref() != Some(&p.status) {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({ "status": p.status });
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(s) => fresh.expect(key, "StatefulSet", workload::rv(&s.metadata)),
            Err(e) if workload::is_not_found(&e) => return Ok(Next::Done),
            Err(e) => return Err(api_err("writing the status", key)(e)),
        }
    }

    // Old revisions beyond the history limit go, unless a pod still uses them.
    let mut live: HashSet<String> = HashSet::from([
        p.status.current_revision.clone().unwrap_or_default(),
        p.status.update_revision.clone().unwrap_or_default(),
    ]);
    live.extend(refs.iter().map(|p| revision_of(p).to_owned()));
    let rev_refs: Vec<&ControllerRevision> = owned_revs.iter().map(AsRef::as_ref).collect();
    let rev_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &key.namespace);
    for n in revision::to_prune(&rev_refs, &live, spec.revision_history_limit.unwrap_or(10)) {
        match rev_api.delete(&n, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if workload::is_not_found(&e) => {}
            Err(e) => return Err(api_err("deleting a revision", key)(e)),
        }
    }
    Ok(match p.requeue {
        Some(d) => Next::After(d.max(Duration::from_millis(10))),
        None => Next::Done,
    })
}

#[cfg(test)]
mod tests;
