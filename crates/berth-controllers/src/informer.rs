//! Shared informers: one watch per kind for every controller of a term, a cache of what it saw,
//! and a broadcast of each change.
//!
//! Owns the watch loops and the caches. Must not decide anything: controllers subscribe, map
//! changes to the keys they reconcile and read the cache; they never write through it.
//!
//! A subscriber that falls behind (the broadcast buffer overflows) or sees a relist gets
//! [`Change::Resynced`] and must treat everything in the cache as changed, which a
//! level-triggered controller does by queueing all its keys.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use crate::queue::{Key, Queue};

/// How many changes a slow subscriber may fall behind before it is told to resync.
const BUFFER: usize = 4096;

/// What a controller hears from an informer.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// An object was created or changed: its previous state in the cache (if any) and the new.
    Applied {
        /// The object as cached before this change.
        old: Option<Arc<K>>,
        /// The object now.
        new: Arc<K>,
    },
    /// An object was deleted; its last state.
    Deleted(Arc<K>),
    /// The cache was (re)filled from a list, or the subscriber missed changes: anything may
    /// have changed.
    Resynced,
}

/// The bounds of a kind an informer can watch.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// The cache and change feed of one kind.
pub struct Informer<K: Watched> {
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
    /// True once the first list is in the cache.
    synced: watch::Receiver<bool>,
}

impl<K: Watched> Informer<K> {
    /// A receiver of the changes from now on. Subscribe before reading the cache, so that no
    /// change falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Change<K>> {
        self.changes.subscribe()
    }

    /// Subscribes now and returns the loop that hands each change to `handle` until the informer
    /// ends or `shutdown` fires. A controller builds its followers before it waits for the caches
    /// and queues its keys, then runs them: nothing changes unseen in between.
    pub fn follow<'a>(
        &self,
        shutdown: &watch::Receiver<bool>,
        mut handle: impl FnMut(Change<K>) + Send + 'a,
    ) -> impl Future<Output = ()> + Send + 'a {
        let mut changes = self.subscribe();
        let mut shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    c = recv(&mut changes) => match c {
                        Some(c) => handle(c),
                        None => return,
                    },
                    _ = shutdown.changed() => return,
                }
            }
        }
    }

    /// Queues the key of every cached object.
    pub fn queue_all(&self, queue: &Queue<Key>) {
        for o in self.store.state() {
            queue.add(Key::of(o.as_ref()));
        }
    }

    /// Queues the key of every cached object in `namespace`.
    pub fn queue_in_namespace(&self, queue: &Queue<Key>, namespace: Option<&str>) {
        for o in self.filter(|o| o.meta().namespace.as_deref() == namespace) {
            queue.add(Key::of(o.as_ref()));
        }
    }

    /// The highest resource version among the cached objects (0 when empty).
    pub fn newest_version(&self) -> u64 {
        self.store
            .state()
            .iter()
            .map(|o| crate::workload::rv(o.meta()))
            .max()
            .unwrap_or(0)
    }

    /// The cached object that controls `meta`: its controller reference names this kind (in
    /// this kind's API group) in `meta`'s namespace, with the uid the cache holds.
    pub fn controller_of(&self, meta: &ObjectMeta) -> Option<Arc<K>> {
        let r = crate::pods::controller_of(meta)?;
        if !refers_to::<K>(r) {
            return None;
        }
        let o = self.get(meta.namespace.as_deref().unwrap_or(""), &r.name)?;
        (o.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(o)
    }

    /// Queues every cached object in `child`'s namespace whose selector (as `selector_of` reads
    /// it) matches `child`'s labels: the owners that may adopt an orphan.
    pub fn queue_selecting(
        &self,
        queue: &Queue<Key>,
        child: &ObjectMeta,
        selector_of: impl Fn(&K) -> Option<&LabelSelector>,
    ) {
        let ns = child.namespace.as_deref();
        for o in self.filter(|o| o.meta().namespace.as_deref() == ns) {
            let sel = crate::pods::selector(selector_of(&o));
            if sel.is_ok_and(|s| crate::pods::matches(&s, child.labels.as_ref())) {
                queue.add(Key::of(o.as_ref()));
            }
        }
    }

    /// Queues the cached objects that `selects` a changed object as it was or as it is now (a
    /// Service or a budget and a pod, say). A resync calls `all`.
    pub fn queue_selecting_change<C>(
        &self,
        queue: &Queue<Key>,
        change: Change<C>,
        selects: impl Fn(&K, &C) -> bool,
        all: impl Fn(),
    ) {
        let selecting = |c: &C| {
            self.filter(|o| selects(o, c))
                .into_iter()
                .map(|o| Key::of(o.as_ref()))
        };
        match change {
            Change::Applied { old, new } => {
                let mut keys: BTreeSet<Key> = selecting(&new).collect();
                if let Some(old) = old {
                    keys.extend(selecting(&old));
                }
                keys.into_iter().for_each(|k| queue.add(k));
            }
            Change::Deleted(c) => selecting(&c).for_each(|k| queue.add(k)),
            Change::Resynced => all(),
        }
    }

    /// Waits until the first list has filled the cache. Any number of tasks may wait at once.
    pub async fn ready(&self) {
        let mut synced = self.synced.clone();
        // An error means the watch task ended (shutdown): the cache stays as it is.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Every cached object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.state()
    }

    /// The cached objects that `keep` accepts.
    pub fn filter(&self, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        self.store.state().into_iter().filter(|o| keep(o)).collect()
    }

    /// The cached object `namespace/name` (`namespace` empty for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut r = ObjectRef::<K>::new(name);
        if !namespace.is_empty() {
            r = r.within(namespace);
        }
        self.store.get(&r)
    }
}

/// The informers of one term of leadership: created on first use, stopped with the term.
pub struct Informers {
    client: kube::Client,
    shutdown: watch::Receiver<bool>,
    by_kind: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Informers {
    /// Informers over `client` whose watches end when `shutdown` turns true.
    pub fn new(client: kube::Client, shutdown: watch::Receiver<bool>) -> Self {
        Self {
            client,
            shutdown,
            by_kind: Mutex::new(HashMap::new()),
        }
    }

    /// The informer of kind `K`, started on first use. Must be called inside a tokio runtime.
    pub fn get<K: Watched>(&self) -> Arc<Informer<K>> {
        let mut by_kind = self.by_kind.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = by_kind.get(&TypeId::of::<K>())
            && let Ok(informer) = Arc::clone(existing).downcast::<Informer<K>>()
        {
            return informer;
        }
        let writer = Writer::<K>::default();
        let (changes, _) = broadcast::channel(BUFFER);
        let (synced_tx, synced) = watch::channel(false);
        let informer = Arc::new(Informer {
            store: writer.as_reader(),
            changes: changes.clone(),
            synced,
        });
        by_kind.insert(TypeId::of::<K>(), informer.clone());
        let api = kube::Api::<K>::all(self.client.clone());
        tokio::spawn(watch_loop(
            api,
            writer,
            changes,
            synced_tx,
            self.shutdown.clone(),
        ));
        informer
    }
}

async fn watch_loop<K: Watched>(
    api: kube::Api<K>,
    mut writer: Writer<K>,
    changes: broadcast::Sender<Change<K>>,
    synced: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let kind = K::kind(&());
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    tokio::pin!(stream);
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = shutdown.changed() => return,
        };
        let event = match event {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                tracing::debug!(kind = %kind, error = %e, "watch failed; retrying");
                continue;
            }
            None => return,
        };
        let reader = writer.as_reader();
        // Nobody listening is fine: the cache is still kept.
        match &event {
            watcher::Event::Apply(o) => {
                let key = ObjectRef::from_obj(o);
                let old = reader.get(&key);
                writer.apply_watcher_event(&event);
                if let Some(new) = reader.get(&key) {
                    let _ = changes.send(Change::Applied { old, new });
                }
            }
            watcher::Event::Delete(o) => {
                let key = ObjectRef::from_obj(o);
                let last = reader.get(&key).unwrap_or_else(|| Arc::new(o.clone()));
                writer.apply_watcher_event(&event);
                let _ = changes.send(Change::Deleted(last));
            }
            watcher::Event::InitDone => {
                writer.apply_watcher_event(&event);
                synced.send_replace(true);
                let _ = changes.send(Change::Resynced);
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {
                writer.apply_watcher_event(&event);
            }
        }
    }
}

/// Whether the owner reference `r` names an object of kind `K`, in `K`'s API group.
pub fn refers_to<K: Resource<DynamicType = ()>>(r: &OwnerReference) -> bool {
    let group = K::group(&());
    let in_group = if group.is_empty() {
        !r.api_version.contains('/')
    } else {
        r.api_version
            .strip_prefix(group.as_ref())
            .is_some_and(|v| v.starts_with('/'))
    };
    r.kind == K::kind(&()) && in_group
}

/// Receives the next change, turning a lag into [`Change::Resynced`]. `None` once the informer
/// is gone.
pub async fn recv<K: Clone>(rx: &mut broadcast::Receiver<Change<K>>) -> Option<Change<K>> {
    match rx.recv().await {
        Ok(c) => Some(c),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resynced),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}
