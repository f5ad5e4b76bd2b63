//! The watch cache: one writer (a single store watch over every resource), many cheap readers.
//!
//! The cache holds the current state of every object, already serialized with its
//! `resourceVersion` (as JSON, and as protobuf once a client has asked for it), plus the labels
//! and selectable fields needed to filter lists and watches, an index of pods by the node they
//! are bound to, and a bounded history of recent changes so that watches can resume from a
//! recent `resourceVersion`. A watch from a revision older than the history gets `410 Gone`.
//! Live changes reach only the watches of their kind, and a watch of one node's pods only the
//! changes of pods on that node ([`trigger_field`]).
//!
//! Nothing reads the cache before it is synced: [`WatchCache::start`] lists the store first.
//! Consistent reads wait until the cache has caught up with the store's current revision.
//! This module must not write to the store.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use berth_api::ResourceKind;
use berth_store::{Event, EventType, KeyValue, ListOptions, Revision, Store, StoreError};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

/// How many past changes the cache keeps for resuming watches.
pub const DEFAULT_HISTORY: usize = 20_000;
/// How many changes an in-process subscriber of every change may fall behind before it is told
/// it lagged.
const BROADCAST_CAPACITY: usize = 16_384;
/// How many changes of its kind a live watcher may fall behind before it is closed (it then
/// resumes from its last revision, as from kube-apiserver's watch cache, whose per-watcher
/// buffers are smaller still). Each kind with watchers allocates its slots up front: with
/// 8,192 an idle server's allocated memory was 17.6 MB, with 2,048 it is 14.1 MB.
const KIND_CAPACITY: usize = 2_048;

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    /// The store key.
    pub key: String,
    /// The kind the object is stored as.
    pub kind: &'static ResourceKind,
    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The revision of the last change (the `resourceVersion`).
    pub revision: Revision,
    /// The object as JSON, `metadata.resourceVersion` set.
    pub json: Bytes,
    /// The object's labels.
    pub labels: Vec<(String, String)>,
    /// The object's selectable fields and their values.
    pub fields: Vec<(&'static str, String)>,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerRef>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// True when `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The object as a protobuf object message, encoded on first use (see
    /// [`CachedObject::protobuf`]).
    protobuf: OnceLock<Option<Bytes>>,
    /// A value derived from the object as it entered the cache or on first use (see
    /// [`CachedObject::derived`]).
    derived: OnceLock<Arc<dyn Any + Send + Sync>>,
}

/// The value kept with each new version of an object as it enters the cache, derived while its
/// parsed form is at hand rather than by parsing its JSON again later (see
/// [`CachedObject::derived`]): for pods, the facts the node authorizer asks of every pod on a
/// node each time that node reads a Secret, a ConfigMap or a token, and pods change often.
fn derive_on_entry(kind: &ResourceKind, value: &Value) -> Option<Arc<dyn Any + Send + Sync>> {
    (kind.storage == POD_STORAGE)
        .then(|| Arc::new(crate::authz::node::PodFacts::of(value)) as Arc<dyn Any + Send + Sync>)
}

/// The field whose value routes the changes of `kind` to the watches that require a value of
/// it, as kube-apiserver's watch cache routes pods by `spec.nodeName`: each node watches its
/// own pods, and a change of a pod must wake the watches of the (at most two) nodes it was and
/// is bound to, not every node's.
pub fn trigger_field(kind: &ResourceKind) -> Option<&'static str> {
    (kind.storage == POD_STORAGE).then_some(POD_NODE_FIELD)
}

/// How many changes a watch routed by its trigger value may fall behind (see
/// [`KIND_CAPACITY`]); smaller, because there is one such channel per value watched.
const TRIGGER_CAPACITY: usize = 256;

/// One owner reference, as the garbage collector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    /// The owner's UID.
    pub uid: String,
    /// The owner's apiVersion.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// `blockOwnerDeletion`.
    pub block_owner_deletion: bool,
}

impl CachedObject {
    /// Builds a cached object from a stored key-value. Fails on undecodable values, which are
    /// logged and skipped by the cache rather than served.
    pub fn from_kv(kind: &'static ResourceKind, kv: &KeyValue) -> Result<Self, serde_json::Error> {
        let mut value: Value = serde_json::from_slice(&kv.value)?;
        Ok(Self::from_value(kind, &kv.key, kv.mod_revision, &mut value))
    }

    /// Builds a cached object from a decoded object, setting its `resourceVersion`.
    pub fn from_value(
        kind: &'static ResourceKind,
        key: &str,
        revision: Revision,
        value: &mut Value,
    ) -> Self {
        berth_api::meta::set(
            value,
            "resourceVersion",
            Some(Value::String(revision.to_string())),
        );
        let labels = berth_api::meta::labels(value)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let fields = berth_api::fields::field_values(kind, value);
        let owners = value
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .map(|refs| {
                refs.iter()
                    .map(|r| {
                        let s =
                            |f: &str| r.get(f).and_then(Value::as_str).unwrap_or("").to_string();
                        OwnerRef {
                            uid: s("uid"),
                            api_version: s("apiVersion"),
                            kind: s("kind"),
                            name: s("name"),
                            block_owner_deletion: r
                                .get("blockOwnerDeletion")
                                .and_then(Value::as_bool)
                                .unwrap_or(false),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let finalizers = berth_api::meta::finalizers(value)
            .into_iter()
            .map(str::to_string)
            .collect();
        let json = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        let derived = OnceLock::new();
        if let Some(d) = derive_on_entry(kind, value) {
            let _ = derived.set(d);
        }
        CachedObject {
            key: key.to_string(),
            kind,
            namespace: berth_api::meta::namespace(value).to_string(),
            name: berth_api::meta::name(value).to_string(),
            revision,
            json,
            labels,
            fields,
            uid: berth_api::meta::uid(value).to_string(),
            owners,
            finalizers,
            deleting: berth_api::meta::is_deleting(value),
            protobuf: OnceLock::new(),
            derived,
        }
    }

    /// The object as a protobuf object message (no envelope), encoded on first use and kept, so
    /// that protobuf lists and watches concatenate pre-encoded objects; `None` when the kind
    /// has no protobuf schema or the object does not encode (the caller answers JSON).
    pub fn protobuf(&self) -> Option<Bytes> {
        self.protobuf
            .get_or_init(|| {
                let api_version = self.kind.api_version();
                if !berth_api::protobuf::supports(&api_version, self.kind.kind) {
                    return None;
                }
                match berth_api::protobuf::encode_raw(&api_version, self.kind.kind, &self.value())
                {
                    Ok(raw) => Some(Bytes::from(raw)),
                    Err(e) => {
                        tracing::warn!(key = %self.key, error = %e, "object does not encode as protobuf; it is served as JSON");
                        None
                    }
                }
            })
            .clone()
    }

    /// The object decoded again (for handlers that need to look inside).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// A value `derive` computes from the object, computed on first use and kept with this
    /// version of the object. One type of value is kept per object; asking for another type
    /// computes it afresh each time.
    pub fn derived<T: Any + Send + Sync>(&self, derive: impl Fn(&Value) -> T) -> Arc<T> {
        let kept = self
            .derived
            .get_or_init(|| Arc::new(derive(&self.value())) as Arc<dyn Any + Send + Sync>);
        Arc::clone(kept)
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(derive(&self.value())))
    }

    /// The value of label `key`, for selector matching.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the selectable field `field`, for selector matching.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v.as_str())
    }
}

/// The type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventType {
    /// The object appeared.
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted; the object is its last state with the delete's revision.
    Deleted,
}

impl WatchEventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchEventType::Added => "ADDED",
            WatchEventType::Modified => "MODIFIED",
            WatchEventType::Deleted => "DELETED",
        }
    }
}

/// One change as the cache saw it.
#[derive(Debug, Clone)]
pub struct CacheEvent {
    /// The revision of the change.
    pub revision: Revision,
    /// Added, modified or deleted.
    pub event_type: WatchEventType,
    /// The object after the change (for deletes, its last state).
    pub object: Arc<CachedObject>,
    /// The object before the change, if it existed.
    pub prev: Option<Arc<CachedObject>>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Send the current state as ADDED events, then every change.
    WithState,
    /// Send every change after this revision.
    After(Revision),
}

/// A started watch: the events to send first, then the live feed.
pub struct CacheWatch {
    /// Events to send before the live ones (synthetic ADDED events or replayed history).
    pub initial: Vec<Arc<CacheEvent>>,
    /// Live events with revisions above `revision`.
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    /// The revision the initial events bring the watcher to.
    pub revision: Revision,
}

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The asked revision is older than the history the cache keeps.
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision a watch may start after.
        oldest: Revision,
    },
    /// The cache did not reach the store's revision in time.
    #[error("the watch cache has not caught up with revision {0} yet; try again")]
    NotReady(Revision),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    /// The keys of the pods bound to each node (`spec.nodeName`), as kube-apiserver's watch
    /// cache indexes them: a node's every read of a token, Secret or ConfigMap is authorized by
    /// looking at its own pods, which must not cost a walk over every pod.
    pods_by_node: HashMap<String, BTreeSet<String>>,
    revision: Revision,
    history: VecDeque<Arc<CacheEvent>>,
    /// History covers every revision above this one.
    oldest: Revision,
    max_history: usize,
}

impl State {
    /// Moves a pod's key in [`State::pods_by_node`] from the node of `old` to that of `new`
    /// (either absent for a pod created or deleted). Other kinds are not indexed.
    fn index_pod(&mut self, old: Option<&CachedObject>, new: Option<&CachedObject>) {
        fn node_of(o: &CachedObject) -> Option<(&str, &String)> {
            if o.kind.storage != POD_STORAGE {
                return None;
            }
            let node = o.field(POD_NODE_FIELD).filter(|n| !n.is_empty())?;
            Some((node, &o.key))
        }
        let before = old.and_then(node_of);
        let after = new.and_then(node_of);
        if before == after {
            return;
        }
        if let Some((node, key)) = before
            && let Some(keys) = self.pods_by_node.get_mut(node)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.pods_by_node.remove(node);
            }
        }
        if let Some((node, key)) = after {
            self.pods_by_node
                .entry(node.to_string())
                .or_default()
                .insert(key.clone());
        }
    }
}

/// The storage group and resource of pods, and the field [`State::pods_by_node`] indexes and
/// [`trigger_field`] routes them by.
const POD_STORAGE: Storage = ("", "pods");
const POD_NODE_FIELD: &str = "spec.nodeName";

/// The watch cache (see the module documentation).
pub struct WatchCache {
    state: RwLock<State>,
    /// Every change, for in-process subscribers.
    live: broadcast::Sender<Arc<CacheEvent>>,
    /// The changes of one kind (by storage group and resource), for the watches of that kind:
    /// a change wakes only the watchers of its kind. Made on the first watch of a kind.
    by_kind: Mutex<HashMap<Storage, broadcast::Sender<Arc<CacheEvent>>>>,
    /// The changes of one kind whose [`trigger_field`] has a given value before or after the
    /// change, for the watches that require that value. Made on the first such watch.
    by_trigger: Mutex<HashMap<Storage, Triggered>>,
    revision: watch::Sender<Revision>,
    kinds: HashMap<Storage, &'static ResourceKind>,
}

/// A kind's storage group and resource, as in its keys.
type Storage = (&'static str, &'static str);

/// The channels of one kind's watches by the value they require of its trigger field.
type Triggered = HashMap<String, broadcast::Sender<Arc<CacheEvent>>>;

/// The key prefix the cache watches.
pub const REGISTRY_PREFIX: &str = "/registry/";

impl WatchCache {
    /// Lists the store, builds the cache and starts following the store's changes.
    pub async fn start(store: Arc<dyn Store>, max_history: usize) -> Result<Arc<Self>, StoreError> {
        let mut kinds = HashMap::new();
        for k in berth_api::kinds::all() {
            kinds.entry(k.storage).or_insert(k);
        }
        let (live, _) = broadcast::channel(BROADCAST_CAPACITY);
        let (revision, _) = watch::channel(0);
        let cache = Arc::new(WatchCache {
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                pods_by_node: HashMap::new(),
                revision: 0,
                history: VecDeque::new(),
                oldest: 0,
                max_history,
            }),
            live,
            by_kind: Mutex::new(HashMap::new()),
            by_trigger: Mutex::new(HashMap::new()),
            revision,
            kinds,
        });
        let start = cache.relist(store.as_ref()).await?;
        let stream = store.watch(REGISTRY_PREFIX, start).await?;
        tokio::spawn(Arc::clone(&cache).follow(store, stream));
        Ok(cache)
    }

    /// The kind stored under `key`, if the key belongs to a served resource.
    fn kind_of(&self, key: &str) -> Option<&'static ResourceKind> {
        let rest = key.strip_prefix(REGISTRY_PREFIX)?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?;
        let resource = parts.next()?;
        let group = if group == "core" { "" } else { group };
        self.kinds.get(&(group, resource)).copied()
    }

    /// Replaces the cache's content with a fresh list of the store; returns its revision.
    async fn relist(&self, store: &dyn Store) -> Result<Revision, StoreError> {
        let list = store
            .list(ListOptions {
                prefix: REGISTRY_PREFIX.to_string(),
                ..Default::default()
            })
            .await?;
        let mut objects = BTreeMap::new();
        for kv in &list.items {
            let Some(kind) = self.kind_of(&kv.key) else {
                continue;
            };
            match CachedObject::from_kv(kind, kv) {
                Ok(o) => {
                    objects.insert(kv.key.clone(), Arc::new(o));
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "skipping undecodable object"),
            }
        }
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            state.pods_by_node.clear();
            for o in objects.values() {
                state.index_pod(None, Some(o));
            }
            state.objects = objects;
            state.revision = list.revision;
            state.history.clear();
            state.oldest = list.revision;
        }
        self.revision.send_replace(list.revision);
        Ok(list.revision)
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Store>, mut stream: berth_store::WatchStream) {
        loop {
            match stream.next().await {
                Some(Ok(event)) => self.apply(&event),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "store watch failed; relisting the watch cache");
                    stream = loop {
                        match self.relist(store.as_ref()).await {
                            Ok(rev) => match store.watch(REGISTRY_PREFIX, rev).await {
                                Ok(s) => break s,
                                Err(e) => tracing::warn!(error = %e, "store watch failed"),
                            },
                            Err(StoreError::Closed) => return,
                            Err(e) => tracing::warn!(error = %e, "store list failed"),
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    };
                }
                None => return,
            }
        }
    }

    fn apply(&self, event: &Event) {
        let rev = event.revision();
        let kind = self.kind_of(&event.kv.key);
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if rev <= state.revision {
            return;
        }
        state.revision = rev;
        if let Some(kind) = kind {
            let prev = state.objects.get(&event.kv.key).cloned();
            let cache_event = match event.event_type {
                EventType::Put => match CachedObject::from_kv(kind, &event.kv) {
                    Ok(obj) => {
                        let obj = Arc::new(obj);
                        state.index_pod(prev.as_deref(), Some(&obj));
                        state.objects.insert(event.kv.key.clone(), Arc::clone(&obj));
                        let event_type = if prev.is_some() {
                            WatchEventType::Modified
                        } else {
                            WatchEventType::Added
                        };
                        Some(CacheEvent {
                            revision: rev,
                            event_type,
                            object: obj,
                            prev,
                        })
                    }
                    Err(e) => {
                        tracing::warn!(key = %event.kv.key, error = %e, "undecodable object");
                        None
                    }
                },
                EventType::Delete => {
                    state.index_pod(prev.as_deref(), None);
                    state.objects.remove(&event.kv.key);
                    prev.map(|p| {
                        let mut value = p.value();
                        let last = CachedObject::from_value(kind, &p.key, rev, &mut value);
                        CacheEvent {
                            revision: rev,
                            event_type: WatchEventType::Deleted,
                            object: Arc::new(last),
                            prev: Some(p),
                        }
                    })
                }
            };
            if let Some(ce) = cache_event {
                let ce = Arc::new(ce);
                state.history.push_back(Arc::clone(&ce));
                while state.history.len() > state.max_history {
                    if let Some(old) = state.history.pop_front() {
                        state.oldest = old.revision;
                    }
                }
                // Sent under the lock so that watchers see events in revision order with no gap
                // between their initial events and the live feed.
                if let Some(tx) = lock(&self.by_kind).get(&kind.storage) {
                    let _ = tx.send(Arc::clone(&ce));
                }
                self.send_triggered(kind, &ce);
                let _ = self.live.send(ce);
            }
        }
        drop(state);
        self.revision.send_replace(rev);
    }

    /// Sends `ce` to the watches that require the value its object has, or had, of the
    /// kind's trigger field; drops the channels whose watches are gone.
    fn send_triggered(&self, kind: &ResourceKind, ce: &Arc<CacheEvent>) {
        let Some(field) = trigger_field(kind) else {
            return;
        };
        let mut by_trigger = lock(&self.by_trigger);
        let Some(channels) = by_trigger.get_mut(&kind.storage) else {
            return;
        };
        let now = ce.object.field(field).unwrap_or("");
        let before = ce.prev.as_ref().map(|p| p.field(field).unwrap_or(""));
        for value in std::iter::once(now).chain(before.filter(|b| *b != now)) {
            if let Some(tx) = channels.get(value)
                && tx.send(Arc::clone(ce)).is_err()
            {
                channels.remove(value);
            }
        }
    }

    /// The revision the cache has caught up to.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// A receiver of every change, for in-process controllers that react to changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CacheEvent>> {
        self.live.subscribe()
    }

    /// Waits until the cache has seen `revision`.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<(), CacheError> {
        let mut rx = self.revision.subscribe();
        let wait = rx.wait_for(|r| *r >= revision);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(CacheError::NotReady(revision)),
        }
    }

    /// Drops history at and below `revision`, as the store's compaction did.
    pub fn compact(&self, revision: Revision) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        while state
            .history
            .front()
            .is_some_and(|e| e.revision <= revision)
        {
            state.history.pop_front();
        }
        if state.oldest < revision {
            state.oldest = revision.min(state.revision);
        }
    }

    /// The objects under `prefix` that `keep` accepts, in key order, and the cache revision.
    pub fn list(
        &self,
        prefix: &str,
        mut keep: impl FnMut(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, Revision) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let items = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, o)| keep(o))
            .map(|(_, o)| Arc::clone(o))
            .collect();
        (items, state.revision)
    }

    /// The pods bound to `node` whose keys start with `prefix` (all pods, or one namespace's),
    /// in key order.
    pub fn pods_bound_to(&self, node: &str, prefix: &str) -> Vec<Arc<CachedObject>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(keys) = state.pods_by_node.get(node) else {
            return Vec::new();
        };
        keys.range(prefix.to_string()..)
            .take_while(|k| k.starts_with(prefix))
            .filter_map(|k| state.objects.get(k).cloned())
            .collect()
    }

    /// One object, if cached.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        state.objects.get(key).cloned()
    }

    /// Starts a watch over keys under `prefix`. `trigger` is the value the watch requires of
    /// its kind's [`trigger_field`], if it requires one: its live feed then carries only the
    /// changes of objects that have or had that value (the watch still filters them).
    pub fn watch(
        &self,
        prefix: &str,
        start: WatchStart,
        trigger: Option<&str>,
    ) -> Result<CacheWatch, CacheError> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        // Subscribed under the read lock: no change is applied between the initial events and
        // the live feed.
        let kind = self.kind_of(prefix);
        let live = match (kind, trigger) {
            (Some(kind), Some(value)) if trigger_field(kind).is_some() => {
                let mut by_trigger = lock(&self.by_trigger);
                let channels = by_trigger.entry(kind.storage).or_default();
                // Channels of values no longer watched are dropped here too, for values whose
                // objects never change again.
                channels.retain(|_, tx| tx.receiver_count() > 0);
                channels
                    .entry(value.to_string())
                    .or_insert_with(|| broadcast::channel(TRIGGER_CAPACITY).0)
                    .subscribe()
            }
            (Some(kind), _) => lock(&self.by_kind)
                .entry(kind.storage)
                .or_insert_with(|| broadcast::channel(KIND_CAPACITY).0)
                .subscribe(),
            (None, _) => self.live.subscribe(),
        };
        let initial: Vec<Arc<CacheEvent>> = match start {
            WatchStart::WithState => state
                .objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, o)| {
                    Arc::new(CacheEvent {
                        revision: o.revision,
                        event_type: WatchEventType::Added,
                        object: Arc::clone(o),
                        prev: None,
                    })
                })
                .collect(),
            WatchStart::After(rev) => {
                if rev < state.oldest {
                    return Err(CacheError::TooOld {
                        requested: rev,
                        oldest: state.oldest,
                    });
                }
                // History is in revision order: skip to the first event after `rev`.
                let first = state.history.partition_point(|e| e.revision <= rev);
                state
                    .history
                    .range(first..)
                    .filter(|e| e.object.key.starts_with(prefix))
                    .cloned()
                    .collect()
            }
        };
        Ok(CacheWatch {
            initial,
            live,
            revision: state.revision,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::fake::FakeStore;

    fn cm(name: &str, label: &str) -> Bytes {
        Bytes::from(
            serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":name,"namespace":"ns","labels":{"app":label}}})
                .to_string(),
        )
    }

    const KEY: &str = "/registry/core/configmaps/ns/";

    #[tokio::test]
    async fn a_watch_hears_only_its_kind_and_derived_values_are_kept() {
        let store = Arc::new(FakeStore::new());
        let cache = WatchCache::start(store.clone(), 100).await.unwrap();
        let mut w = cache.watch(KEY, WatchStart::After(0), None).unwrap();
        let mut all = cache.subscribe();
        let secret = serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"ns"}});
        store
            .create(
                "/registry/core/secrets/ns/s",
                Bytes::from(secret.to_string()),
            )
            .await
            .unwrap();
        store
            .create(&format!("{KEY}a"), cm("a", "x"))
            .await
            .unwrap();
        assert_eq!(all.recv().await.unwrap().object.name, "s");
        assert_eq!(all.recv().await.unwrap().object.name, "a");
        let e = w.live.recv().await.unwrap();
        assert_eq!(
            e.object.name, "a",
            "the Secret never reached the ConfigMap watch"
        );

        let label = |v: &Value| {
            v["metadata"]["labels"]["app"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        let first = e.object.derived(label);
        assert_eq!(*first, "x");
        assert!(
            Arc::ptr_eq(&first, &e.object.derived(label)),
            "computed once"
        );
        assert!(*e.object.derived(|v| v["metadata"]["name"] == "a"));
    }

    #[tokio::test]
    async fn pods_are_indexed_by_the_node_they_are_bound_to() {
        let store = Arc::new(FakeStore::new());
        let pod = |ns: &str, name: &str, node: Option<&str>| {
            let mut p = serde_json::json!({"apiVersion":"v1","kind":"Pod",
                "metadata":{"name":name,"namespace":ns},"spec":{"containers":[]}});
            if let Some(n) = node {
                p["spec"]["nodeName"] = n.into();
            }
            Bytes::from(p.to_string())
        };
        let key = |ns: &str, name: &str| format!("/registry/core/pods/{ns}/{name}");
        // Present before the cache starts: indexed by the first list.
        store
            .create(&key("a", "p1"), pod("a", "p1", Some("n1")))
            .await
            .unwrap();
        let cache = WatchCache::start(store.clone(), 100).await.unwrap();
        let created = store
            .create(&key("a", "p2"), pod("a", "p2", None))
            .await
            .unwrap();
        store
            .create(&key("b", "p3"), pod("b", "p3", Some("n1")))
            .await
            .unwrap();
        let bound = store
            .update(
                &key("a", "p2"),
                created.mod_revision,
                pod("a", "p2", Some("n2")),
            )
            .await
            .unwrap();
        cache
            .wait_for(bound.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        let names = |node: &str, prefix: &str| -> Vec<String> {
            cache
                .pods_bound_to(node, prefix)
                .iter()
                .map(|o| o.name.clone())
                .collect()
        };
        let all = "/registry/core/pods/";
        assert_eq!(names("n1", all), ["p1", "p3"]);
        assert_eq!(names("n1", "/registry/core/pods/a/"), ["p1"]);
        assert_eq!(names("n2", all), ["p2"]);

        let (_, gone) = store.delete(&key("a", "p1"), None).await.unwrap();
        cache.wait_for(gone, Duration::from_secs(5)).await.unwrap();
        assert_eq!(names("n1", all), ["p3"]);
        assert!(names("n3", all).is_empty());
    }

    #[tokio::test]
    async fn a_watch_of_one_nodes_pods_hears_only_the_changes_of_pods_it_had_or_has() {
        let store = Arc::new(FakeStore::new());
        let pod = |name: &str, node: &str| {
            Bytes::from(
                serde_json::json!({"apiVersion":"v1","kind":"Pod",
                    "metadata":{"name":name,"namespace":"a","uid":format!("uid-{name}")},
                    "spec":{"nodeName":node,"serviceAccountName":"sa","containers":[]}})
                .to_string(),
            )
        };
        let key = |name: &str| format!("/registry/core/pods/a/{name}");
        let cache = WatchCache::start(store.clone(), 100).await.unwrap();
        let all = "/registry/core/pods/";
        let mut n1 = cache.watch(all, WatchStart::After(0), Some("n1")).unwrap();
        let mut unbound = cache.watch(all, WatchStart::After(0), Some("")).unwrap();
        let mut every = cache.watch(all, WatchStart::After(0), None).unwrap();

        let p1 = store.create(&key("p1"), pod("p1", "")).await.unwrap();
        store.create(&key("p2"), pod("p2", "n2")).await.unwrap();
        let bound = store
            .update(&key("p1"), p1.mod_revision, pod("p1", "n1"))
            .await
            .unwrap();
        let moved = store
            .update(&key("p1"), bound.mod_revision, pod("p1", "n2"))
            .await
            .unwrap();
        store.create(&key("p3"), pod("p3", "n1")).await.unwrap();
        cache
            .wait_for(moved.mod_revision + 1, Duration::from_secs(5))
            .await
            .unwrap();

        let heard = |w: &mut CacheWatch| {
            let mut out = Vec::new();
            while let Ok(e) = w.live.try_recv() {
                out.push((
                    e.object.name.clone(),
                    e.object.field("spec.nodeName").unwrap().to_string(),
                ));
            }
            out
        };
        let pair = |n: &str, node: &str| (n.to_string(), node.to_string());
        assert_eq!(
            heard(&mut n1),
            [pair("p1", "n1"), pair("p1", "n2"), pair("p3", "n1")],
            "its pod bound, then moved away, then a new one; never p2"
        );
        assert_eq!(heard(&mut unbound), [pair("p1", ""), pair("p1", "n1")]);
        assert_eq!(heard(&mut every).len(), 5);

        // The node authorizer's facts came with the pod into the cache.
        let facts = cache
            .get(&key("p3"))
            .unwrap()
            .derived(|_| crate::authz::node::PodFacts::default());
        assert_eq!((facts.node.as_str(), facts.uid.as_str()), ("n1", "uid-p3"));
        assert_eq!(facts.references.service_account, "sa");

        // A channel whose watches are gone is dropped.
        drop(unbound);
        let p4 = store.create(&key("p4"), pod("p4", "")).await.unwrap();
        cache
            .wait_for(p4.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        let by_trigger = lock(&cache.by_trigger);
        let channels = &by_trigger[&("", "pods")];
        assert!(!channels.contains_key(""));
        assert!(channels.contains_key("n1"));
    }

    #[tokio::test]
    async fn lists_watches_and_history() {
        let store = Arc::new(FakeStore::new());
        store
            .create(&format!("{KEY}a"), cm("a", "x"))
            .await
            .unwrap();
        // Keys of no served resource are ignored.
        store
            .create("/registry/ranges/serviceips", Bytes::from("{}"))
            .await
            .unwrap();
        let cache = WatchCache::start(store.clone(), 3).await.unwrap();
        let (items, rev) = cache.list(KEY, |_| true);
        assert_eq!(items.len(), 1);
        assert_eq!(rev, 2);
        assert_eq!(items[0].value()["metadata"]["resourceVersion"], "1");
        assert_eq!(items[0].labels, vec![("app".to_string(), "x".to_string())]);

        let mut w = cache.watch(KEY, WatchStart::After(rev), None).unwrap();
        let b = store
            .create(&format!("{KEY}b"), cm("b", "y"))
            .await
            .unwrap();
        let e = w.live.recv().await.unwrap();
        assert_eq!(
            (e.event_type, e.revision),
            (WatchEventType::Added, b.mod_revision)
        );
        let (prev, del) = store.delete(&format!("{KEY}a"), None).await.unwrap();
        let e = w.live.recv().await.unwrap();
        assert_eq!(e.event_type, WatchEventType::Deleted);
        assert_eq!(
            e.object.revision, del,
            "a deleted object carries the delete's revision"
        );
        assert_eq!(e.prev.as_ref().unwrap().revision, prev.mod_revision);

        cache.wait_for(del, Duration::from_secs(1)).await.unwrap();
        // History replays after a revision, bounded to 3 events.
        let replay = cache.watch(KEY, WatchStart::After(rev), None).unwrap();
        assert_eq!(replay.initial.len(), 2);
        for i in 0..3 {
            store
                .create(&format!("{KEY}c{i}"), cm("c", "z"))
                .await
                .unwrap();
        }
        cache
            .wait_for(del + 3, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(matches!(
            cache.watch(KEY, WatchStart::After(rev), None),
            Err(CacheError::TooOld { .. })
        ));
        // Compaction trims history too.
        cache.compact(del + 3);
        assert!(matches!(
            cache.watch(KEY, WatchStart::After(del + 2), None),
            Err(CacheError::TooOld { .. })
        ));
        let state = cache.watch(KEY, WatchStart::WithState, None).unwrap();
        assert_eq!(state.initial.len(), 4);
        assert!(
            state
                .initial
                .iter()
                .all(|e| e.event_type == WatchEventType::Added)
        );
    }
}
