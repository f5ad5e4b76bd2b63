//! What the StatefulSet, DaemonSet, Job and CronJob controllers share beyond [`crate::pods`]:
//! a few more pod predicates, object references and events, and [`Freshness`], which keeps a
//! controller from acting on a cache that has not yet seen its own writes (of any kind: pods
//! created or patched, its own status).
//!
//! Owns only pure helpers and the in-memory expectations. Must not decide what a controller
//! does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::informer::{self, Change, Informer, Watched};
use crate::pods;
use crate::queue::{Key, Queue};

/// Pod phase `Succeeded`.
pub const SUCCEEDED: &str = "Succeeded";
/// Pod phase `Failed`.
pub const FAILED: &str = "Failed";
/// Pod phase `Running`.
pub const RUNNING: &str = "Running";

/// Whether the pod finished (Succeeded or Failed).
pub fn is_finished(pod: &Pod) -> bool {
    matches!(pods::phase(pod), SUCCEEDED | FAILED)
}

/// Whether the pod runs and is Ready.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    pods::phase(pod) == RUNNING && pods::is_ready(pod)
}

/// A reference to `obj` for events.
pub fn object_ref<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

/// The numeric `resourceVersion` of an object (0 when absent or not a number). Berth's
/// resource versions are the store's global, monotonic revisions.
pub fn rv(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Follows a workload controller's own kind `K`: a change queues the object, a deletion also
/// drops what [`Freshness`] waited for on its behalf, a resync queues them all.
pub fn follow_own<'a, K: Watched + k8s_openapi::Resource>(
    own: &'a Informer<K>,
    shutdown: &watch::Receiver<bool>,
    queue: &'a Queue<Key>,
    fresh: &'a Freshness,
) -> impl Future<Output = ()> + Send + 'a {
    own.follow(shutdown, move |c| {
        fresh.observe_change(K::KIND, &c, own);
        match c {
            Change::Applied { new, .. } => queue.add(Key::of(new.as_ref())),
            Change::Deleted(o) => {
                fresh.forget(&Key::of(o.as_ref()));
                queue.add(Key::of(o.as_ref()));
            }
            Change::Resynced => own.queue_all(queue),
        }
    })
}

/// Follows the objects of kind `O` that a workload kind `K` controls: a change queues the
/// controlling `K`, and an orphan's change every `K` of its namespace (which may adopt it, when
/// `adopt` says so). A resync queues every `K`.
pub fn follow_owned<'a, O, K>(
    owned: &'a Informer<O>,
    owners: &'a Informer<K>,
    shutdown: &watch::Receiver<bool>,
    queue: &'a Queue<Key>,
    fresh: &'a Freshness,
    adopt: bool,
) -> impl Future<Output = ()> + Send + 'a
where
    O: Watched + k8s_openapi::Resource,
    K: Watched,
{
    owned.follow(shutdown, move |c| {
        fresh.observe_change(O::KIND, &c, owned);
        match c {
            Change::Applied { new: o, .. } | Change::Deleted(o) => match owner_key::<K>(o.meta()) {
                Some(k) => queue.add(k),
                None if adopt && pods::controller_of(o.meta()).is_none() => {
                    owners.queue_in_namespace(queue, o.meta().namespace.as_deref());
                }
                None => {}
            },
            Change::Resynced => owners.queue_all(queue),
        }
    })
}

/// The key of the object that controls `meta` (in its namespace), when that object is a `K`.
pub fn owner_key<K: Resource<DynamicType = ()>>(meta: &ObjectMeta) -> Option<Key> {
    let r = pods::controller_of(meta)?;
    informer::refers_to::<K>(r)
        .then(|| Key::new(meta.namespace.clone().unwrap_or_default(), r.name.clone()))
}

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a 409.
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Records an event about `regarding` (best effort: a failure is only logged).
pub async fn record_event(
    client: &kube::Client,
    component: &str,
    now: Timestamp,
    regarding: ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
) {
    let namespace = regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    // Unique even for several events about one object in the same instant.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, AtomicOrdering::Relaxed);
    let name = format!(
        "{}.{:x}",
        regarding.name.clone().unwrap_or_default(),
        now.as_nanosecond().wrapping_add(i128::from(seq))
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: regarding,
        reason: Some(reason.to_owned()),
        message: Some(message),
        type_: Some(type_.to_owned()),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_owned()),
        reporting_instance: Some(component.to_owned()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(reason, error = %e, "could not record an event");
    }
}

/// How long an expectation may stay unmet before it is dropped (a write whose echo was never
/// seen, e.g. an object created and deleted before the watch delivered it).
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Per kind, the resource version a key waits for and since when.
type Wanted = HashMap<&'static str, (u64, Instant)>;

/// What a controller expects its caches to show before it trusts them again for one key: for
/// each kind, the resource version of its latest write. Berth's resource versions are global
/// and a watch delivers them in order, so once the informer of a kind has delivered a change at
/// or after that version, the cache holds the write.
#[derive(Default)]
pub struct Freshness {
    seen: Mutex<HashMap<&'static str, u64>>,
    want: Mutex<HashMap<Key, Wanted>>,
}

impl Freshness {
    /// No expectations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The informer of `kind` delivered a change at `rv`.
    pub fn observe(&self, kind: &'static str, rv: u64) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let s = seen.entry(kind).or_insert(0);
        *s = (*s).max(rv);
    }

    /// Records what the informer of `kind` delivered: the version of a change, or after a
    /// resync the newest version in its cache.
    pub fn observe_change<K: Watched>(
        &self,
        kind: &'static str,
        change: &Change<K>,
        informer: &Informer<K>,
    ) {
        let rv = match change {
            Change::Applied { new: o, .. } | Change::Deleted(o) => rv(o.meta()),
            Change::Resynced => informer.newest_version(),
        };
        self.observe(kind, rv);
    }

    /// `key` wrote an object of `kind` that now has resource version `rv`.
    pub fn expect(&self, key: &Key, kind: &'static str, rv: u64) {
        if rv == 0 {
            return;
        }
        let mut want = self.want.lock().unwrap_or_else(|e| e.into_inner());
        let w = want
            .entry(key.clone())
            .or_default()
            .entry(kind)
            .or_insert((0, Instant::now()));
        if rv > w.0 {
            *w = (rv, Instant::now());
        }
    }

    /// Whether the caches show every write of `key` (or waited long enough for them).
    pub fn satisfied(&self, key: &Key) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut want = self.want.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = want.get_mut(key) else {
            return true;
        };
        w.retain(|kind, (rv, at)| {
            seen.get(kind).copied().unwrap_or(0) < *rv && at.elapsed() < EXPECTATION_TIMEOUT
        });
        let ok = w.is_empty();
        if ok {
            want.remove(key);
        }
        ok
    }

    /// Forgets `key` (it was deleted).
    pub fn forget(&self, key: &Key) {
        self.want
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// How long to wait before looking again when the caches lag behind a controller's writes.
pub const CACHE_LAG_RETRY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_wait_for_the_echo_of_a_write() {
        let e = Freshness::new();
        let k = Key::new("ns", "a");
        assert!(e.satisfied(&k));
        e.expect(&k, "Pod", 10);
        e.observe("Pod", 9);
        assert!(!e.satisfied(&k));
        e.observe("Job", 20);
        assert!(!e.satisfied(&k), "another kind's version says nothing");
        e.observe("Pod", 12);
        assert!(e.satisfied(&k));
        e.expect(&k, "Pod", 30);
        e.forget(&k);
        assert!(e.satisfied(&k));
    }

    fn owned_by(api_version: &str, kind: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: Some("ns".into()),
            owner_references: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: api_version.into(),
                    kind: kind.into(),
                    name: "owner".into(),
                    uid: "u".into(),
                    controller: Some(true),
                    ..Default::default()
                },
            ]),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn the_owner_key_needs_the_kind_and_its_api_group() {
        use k8s_openapi::api::apps::v1::DaemonSet;
        use k8s_openapi::api::batch::v1::Job;
        use k8s_openapi::api::core::v1::Node;
        let want = Some(Key::new("ns", "owner"));
        assert_eq!(
            owner_key::<DaemonSet>(&owned_by("apps/v1", "DaemonSet")),
            want
        );
        assert_eq!(owner_key::<Job>(&owned_by("batch/v1", "Job")), want);
        assert_eq!(owner_key::<Node>(&owned_by("v1", "Node")), want);
        assert_eq!(
            owner_key::<DaemonSet>(&owned_by("example.com/v1", "DaemonSet")),
            None
        );
        assert_eq!(
            owner_key::<DaemonSet>(&owned_by("appsx/v1", "DaemonSet")),
            None
        );
        assert_eq!(owner_key::<Job>(&owned_by("batch/v1", "CronJob")), None);
        assert_eq!(owner_key::<Node>(&owned_by("x/v1", "Node")), None);
        let mut not_controller = owned_by("apps/v1", "DaemonSet");
        not_controller.owner_references.as_mut().unwrap()[0].controller = None;
        assert_eq!(owner_key::<DaemonSet>(&not_controller), None);
    }
}
