//! The resource quota controller: keeps each ResourceQuota's `status.hard` equal to its
//! `spec.hard` and recomputes `status.used` from the objects that exist in its namespace, so
//! that what admission charged is released when objects are deleted, pods finish or a pod
//! stays behind long after its deletion.
//!
//! As Kubernetes' controller, it reconciles a quota when it is new, when its spec changed or its
//! status lacks something (not when admission charged it), when a charged object in its
//! namespace is deleted or stops being charged (a pod that finished, a Service that changed
//! type, a claim that was resized), and every [`RESYNC`]. Deletions of the other kinds a quota
//! counts (ConfigMaps, Secrets, `count/deployments.apps`, ...) are watched from the first quota
//! that counts them on. Usage is counted from a consistent
//! list of each kind the quota constrains, taken after the quota was read, with the pure rules
//! of `berth_api::quota`; the status is written only when it differs, by compare-and-swap on
//! the quota's resourceVersion, so that a charge admitted after the quota was read is never
//! overwritten. As in Kubernetes, an object charged just before the quota was read but stored
//! only after the lists were taken (a window of the admission's own write) is missed until the
//! next recomputation.
//!
//! Owns ResourceQuota status only. Must not create, change or delete anything else.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::quota::{self, Evaluator};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ResourceQuota, Service};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::watch;

use crate::Context;
use crate::informer::{Change, Informer, Watched};
use crate::queue::{self, Key, Next, Queue};

/// How often every quota is recomputed even without a change (Kubernetes' default is 5
/// minutes; Berth releases usage sooner).
pub const RESYNC: Duration = Duration::from_secs(30);

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum QuotaControllerError {
    /// Reading the quota failed.
    #[error("reading resourcequota {key}: {source}")]
    Read {
        /// The quota's key.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// Listing the objects a quota constrains failed.
    #[error("listing {resource} for resourcequota {key}: {source}")]
    List {
        /// The quota's key.
        key: Key,
        /// The listed resource.
        resource: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// An object could not be converted to or from JSON.
    #[error("converting for resourcequota {key}: {source}")]
    Convert {
        /// The quota's key.
        key: Key,
        /// The conversion error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the status failed (a conflict means the quota changed meanwhile: retried).
    #[error("updating the status of resourcequota {key}: {source}")]
    Write {
        /// The quota's key.
        key: Key,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

/// True if `rq` limits something that objects of `group`/`resource` charge.
pub fn tracks(rq: &ResourceQuota, group: &str, resource: &str) -> bool {
    let Some(hard) = rq.spec.as_ref().and_then(|s| s.hard.as_ref()) else {
        return false;
    };
    !Evaluator::of(group, resource)
        .matching_resources(hard.keys().map(String::as_str))
        .is_empty()
}

/// Whether a quota change calls for a recomputation: a new quota, a changed spec, a status
/// whose hard limits differ from the spec, or a status lacking the usage of a limited
/// resource. A change of `status.used` alone (admission charging) does not.
pub fn needs_sync(old: Option<&ResourceQuota>, new: &ResourceQuota) -> bool {
    let Some(old) = old else {
        return true;
    };
    if old.spec != new.spec {
        return true;
    }
    let Ok(v) = serde_json::to_value(new) else {
        return true;
    };
    let spec_hard = quota::resource_list(v.pointer("/spec/hard"));
    let Some(status_hard) = v.pointer("/status/hard") else {
        return true;
    };
    if !quota::equals(&spec_hard, &quota::resource_list(Some(status_hard))) {
        return true;
    }
    let used = quota::used(&v);
    spec_hard.keys().any(|k| !used.contains_key(k))
}

fn quota_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().namespace.clone().unwrap_or_default()
}

/// The quotas of `namespace` that constrain `group`/`resource`.
fn tracking(
    quotas: &Informer<ResourceQuota>,
    namespace: &str,
    group: &str,
    resource: &str,
) -> Vec<Key> {
    quotas
        .filter(|q| {
            q.metadata.namespace.as_deref() == Some(namespace) && tracks(q, group, resource)
        })
        .iter()
        .map(|q| Key::of(q.as_ref()))
        .collect()
}

/// Queues the quotas of `namespace` that constrain `group`/`resource`.
fn queue_tracking(
    quotas: &Informer<ResourceQuota>,
    queue: &Queue<Key>,
    namespace: &str,
    group: &str,
    resource: &str,
) {
    for key in tracking(quotas, namespace, group, resource) {
        queue.add(key);
    }
}

/// Follows one counted core kind `resource`: a deletion, or a change that `released(old, new)`
/// says frees quota, queues the quotas of the object's namespace that count it. The release
/// check runs only in namespaces with such quotas (most have none, and pods change often).
fn follow_counted<'a, K: Watched>(
    informer: &Informer<K>,
    shutdown: &watch::Receiver<bool>,
    quotas: &'a Informer<ResourceQuota>,
    queue: &'a Queue<Key>,
    resource: &'static str,
    released: impl Fn(&K, &K) -> bool + Send + 'a,
) -> impl Future<Output = ()> + Send + 'a {
    informer.follow(shutdown, move |c| match c {
        Change::Applied {
            old: Some(old),
            new,
        } => {
            let keys = tracking(quotas, &quota_of(new.as_ref()), "", resource);
            if !keys.is_empty() && released(&old, &new) {
                for key in keys {
                    queue.add(key);
                }
            }
        }
        Change::Applied { old: None, .. } => {}
        Change::Deleted(o) => queue_tracking(quotas, queue, &quota_of(o.as_ref()), "", resource),
        Change::Resynced => quotas.queue_all(queue),
    })
}

/// True if a pod stopped being charged between `old` and `new` (it finished, or it stayed
/// past its deletion).
fn pod_released(old: &Pod, new: &Pod, now: jiff::Timestamp) -> bool {
    let charged =
        |p: &Pod| serde_json::to_value(p).is_ok_and(|v| quota::pod_charges_compute(&v, now));
    charged(old) && !charged(new)
}

fn service_type(s: &Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .filter(|t| matches!(*t, "NodePort" | "LoadBalancer"))
        .unwrap_or("")
}

fn claim_allocated(c: &PersistentVolumeClaim) -> Option<String> {
    c.status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|a| a.get("storage"))
        .map(|q| q.0.clone())
}

/// Runs until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: watch::Receiver<bool>) {
    let quotas = ctx.informers.get::<ResourceQuota>();
    let pods = ctx.informers.get::<Pod>();
    let services = ctx.informers.get::<Service>();
    let claims = ctx.informers.get::<PersistentVolumeClaim>();
    let queue: Arc<Queue<Key>> = Queue::new();

    let feed = {
        let queue = Arc::clone(&queue);
        let ctx = Arc::clone(&ctx);
        let shutdown = shutdown.clone();
        async move {
            let all = || quotas.queue_all(&queue);
            // The kinds whose deletions are watched; pods, services and claims have informers.
            let watched: Mutex<BTreeSet<(String, String)>> = Mutex::new(
                [
                    ("", "pods"),
                    ("", "services"),
                    ("", "persistentvolumeclaims"),
                ]
                .iter()
                .map(|(g, r)| (g.to_string(), r.to_string()))
                .collect(),
            );
            let watch_counted = |q: &ResourceQuota| {
                let Ok(v) = serde_json::to_value(q) else {
                    return;
                };
                let mut watched = watched.lock().unwrap_or_else(|e| e.into_inner());
                for gr in quota::tracked_group_resources(&v) {
                    if watched.contains(&gr) {
                        continue;
                    }
                    let Some(ar) = api_resource(&gr.0, &gr.1) else {
                        continue;
                    };
                    watched.insert(gr);
                    tokio::spawn(watch_deletions(
                        ctx.client.clone(),
                        ar,
                        Arc::clone(&quotas),
                        Arc::clone(&queue),
                        shutdown.clone(),
                    ));
                }
            };
            let follow_quotas = quotas.follow(&shutdown, |c| match c {
                Change::Applied { old, new } => {
                    watch_counted(&new);
                    if needs_sync(old.as_deref(), &new) {
                        queue.add(Key::of(new.as_ref()));
                    }
                }
                Change::Deleted(_) => {}
                Change::Resynced => all(),
            });
            let now = || ctx.clock.now();
            let follow_pods = follow_counted(&pods, &shutdown, &quotas, &queue, "pods", |o, n| {
                pod_released(o, n, now())
            });
            let follow_services =
                follow_counted(&services, &shutdown, &quotas, &queue, "services", |o, n| {
                    service_type(o) != service_type(n)
                });
            let follow_claims = follow_counted(
                &claims,
                &shutdown,
                &quotas,
                &queue,
                "persistentvolumeclaims",
                |o, n| claim_allocated(o) != claim_allocated(n),
            );
            // Usage that changes without an event (a pod past its deletion) is recounted.
            let ticks = queue::every(RESYNC, &shutdown, all);
            quotas.ready().await;
            all();
            for q in quotas.list() {
                watch_counted(&q);
            }
            tokio::join!(
                follow_quotas,
                follow_pods,
                follow_services,
                follow_claims,
                ticks
            );
        }
    };
    let worker = {
        let ctx = Arc::clone(&ctx);
        queue::run_workers("resourcequota", queue, 2, shutdown, move |key: Key| {
            let ctx = Arc::clone(&ctx);
            async move { reconcile(&ctx, &key).await }
        })
    };
    tokio::join!(feed, worker);
}

/// Watches deletions of the objects of `ar` in every namespace and queues the quotas of their
/// namespace that count them (all of them after a relist, which may hide deletions).
async fn watch_deletions(
    client: kube::Client,
    ar: ApiResource,
    quotas: Arc<Informer<ResourceQuota>>,
    queue: Arc<Queue<Key>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tokio::pin!(stream);
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = shutdown.changed() => return,
        };
        match event {
            Some(Ok(watcher::Event::Delete(o))) => {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                queue_tracking(&quotas, &queue, &ns, &ar.group, &ar.plural);
            }
            Some(Ok(watcher::Event::InitDone)) => {
                for q in quotas.list() {
                    if tracks(&q, &ar.group, &ar.plural) {
                        queue.add(Key::of(q.as_ref()));
                    }
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                tracing::debug!(resource = %ar.plural, error = %e, "quota watch failed; retrying");
            }
            None => return,
        }
    }
}

/// The served resource of `group`/`resource` (namespaced), for a dynamic list.
fn api_resource(group: &str, resource: &str) -> Option<ApiResource> {
    let kind = berth_api::kinds::all()
        .iter()
        .find(|k| k.group == group && k.plural == resource && k.namespaced)?;
    Some(ApiResource {
        group: kind.group.to_string(),
        version: kind.version.to_string(),
        api_version: kind.api_version(),
        kind: kind.kind.to_string(),
        plural: kind.plural.to_string(),
    })
}

/// Recomputes the usage of the quota `key` and writes its status if it differs.
async fn reconcile(ctx: &Context, key: &Key) -> Result<Next, QuotaControllerError> {
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let rq = match api.get(&key.name).await {
        Ok(q) => q,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(Next::Done),
        Err(source) => {
            return Err(QuotaControllerError::Read {
                key: key.clone(),
                source,
            });
        }
    };
    let convert = |source| QuotaControllerError::Convert {
        key: key.clone(),
        source,
    };
    let q = serde_json::to_value(&rq).map_err(convert)?;
    // Lists taken after the quota was read include everything it was charged for.
    let mut objects: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for (group, resource) in quota::tracked_group_resources(&q) {
        let Some(ar) = api_resource(&group, &resource) else {
            continue;
        };
        let list: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &key.namespace, &ar);
        let items = list.list(&ListParams::default()).await.map_err(|source| {
            QuotaControllerError::List {
                key: key.clone(),
                resource: berth_api::status::qualified(&group, &resource),
                source,
            }
        })?;
        let values = items
            .items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(convert)?;
        objects.insert((group, resource), values);
    }
    let now = ctx.clock.now();
    let hard = quota::resource_list(q.pointer("/spec/hard"));
    let scopes = quota::scope_requirements(&q);
    let used = quota::calculate_usage(
        &hard,
        &scopes,
        |g, r| {
            objects
                .get(&(g.to_string(), r.to_string()))
                .map(Vec::as_slice)
        },
        now,
    );
    let next = next_release(objects.get(&(String::new(), "pods".to_string())), now);
    let Some(status) = quota::desired_status(&q, &used) else {
        return Ok(next);
    };
    let mut updated = rq.clone();
    updated.status = Some(serde_json::from_value(status).map_err(convert)?);
    match api
        .replace_status(&key.name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(next),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Next::Done),
        Err(source) => Err(QuotaControllerError::Write {
            key: key.clone(),
            source,
        }),
    }
}

/// When a pod that is being deleted but still charged stops being charged (its deletion time
/// plus grace period): look again then.
fn next_release(pods: Option<&Vec<Value>>, now: jiff::Timestamp) -> Next {
    pods.into_iter()
        .flatten()
        .filter(|p| quota::pod_charges_compute(p, now))
        .filter_map(quota::pod_stuck_after)
        .filter_map(|t| now.duration_until(t).try_into().ok())
        .map(|d: Duration| d + Duration::from_secs(1))
        .min()
        .map_or(Next::Done, Next::After)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rq(v: Value) -> ResourceQuota {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_spec_and_incomplete_status_changes_call_for_a_sync() {
        let base =
            json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {"pods": "2"}}});
        let new = rq(base.clone());
        assert!(needs_sync(None, &new), "a new quota");
        assert!(needs_sync(Some(&new), &new), "no status yet");
        let mut synced = base.clone();
        synced["status"] = json!({"hard": {"pods": "2"}, "used": {"pods": "0"}});
        let synced = rq(synced);
        assert!(!needs_sync(Some(&new), &synced));
        // Admission charging changes only the used values.
        let mut charged = serde_json::to_value(&synced).unwrap();
        charged["status"]["used"]["pods"] = json!("1");
        assert!(!needs_sync(Some(&synced), &rq(charged.clone())));
        let mut raised = charged.clone();
        raised["spec"]["hard"]["pods"] = json!("3");
        assert!(needs_sync(Some(&rq(charged)), &rq(raised)));
        let mut added = base;
        added["spec"]["hard"]["services"] = json!("1");
        added["status"] = json!({"hard": {"pods": "2"}, "used": {"pods": "0"}});
        assert!(needs_sync(Some(&synced), &rq(added)));
    }

    #[test]
    fn quotas_track_the_kinds_whose_usage_they_limit() {
        let q = rq(
            json!({"metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "1", "count/deployments.apps": "2"}}}),
        );
        assert!(tracks(&q, "", "pods"));
        assert!(tracks(&q, "apps", "deployments"));
        assert!(!tracks(&q, "", "services"));
        assert!(!tracks(&rq(json!({"metadata": {"name": "q"}})), "", "pods"));
    }

    #[test]
    fn a_finished_pod_is_released() {
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let running: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p"}, "status": {"phase": "Running"}}),
        )
        .unwrap();
        let done: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p"}, "status": {"phase": "Succeeded"}}),
        )
        .unwrap();
        assert!(pod_released(&running, &done, now));
        assert!(!pod_released(&running, &running, now));
        assert!(!pod_released(&done, &done, now));
    }

    #[test]
    fn a_pod_stuck_deleting_is_looked_at_again_when_it_stops_being_charged() {
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let stuck = json!({"metadata": {"name": "p", "deletionTimestamp": "2025-01-01T00:00:10Z", "deletionGracePeriodSeconds": 20}});
        let gone = json!({"metadata": {"name": "q", "deletionTimestamp": "2024-12-31T00:00:00Z", "deletionGracePeriodSeconds": 1}});
        let plain = json!({"metadata": {"name": "r"}});
        assert_eq!(
            next_release(Some(&vec![stuck, gone, plain.clone()]), now),
            Next::After(Duration::from_secs(31))
        );
        assert_eq!(next_release(Some(&vec![plain]), now), Next::Done);
        assert_eq!(next_release(None, now), Next::Done);
    }
}
