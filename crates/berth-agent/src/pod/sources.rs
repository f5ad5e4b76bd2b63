//! The ConfigMaps and Secrets that the pods on this node use, each kept current by a watch of
//! its own (field selector `metadata.name`), as the kubelet's watch-based object manager does.
//!
//! A pod's sync reads them here instead of asking the API server every time (every pod of a
//! namespace mounts `kube-root-ca.crt`, and every pod is synced every few seconds), and a change
//! of an object wakes the pods that use it, so their files follow promptly.
//!
//! Owns the watches, the pods that use each object (a watch stops when the last one is gone)
//! and the last state of each object. Must not interpret the objects: the worker and `spec` do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use tokio::sync::{Notify, watch};

use crate::api::{ApiCallError, ClusterApi, ObjectEvent};

/// How long a read waits for the first list of a new watch before it asks the API server
/// directly (the watch keeps trying meanwhile).
const FIRST_LIST: Duration = Duration::from_secs(5);

/// (namespace, name).
type Key = (String, String);

/// The last state of a watched object: `None` until the watch's first list is complete, then
/// whether the object exists and as what.
type Seen<K> = Option<Option<Arc<K>>>;

struct Entry<K> {
    /// The pods that use the object, by UID, with what wakes each.
    users: HashMap<String, Arc<Notify>>,
    seen: watch::Receiver<Seen<K>>,
    task: tokio::task::AbortHandle,
}

type Entries<K> = Mutex<HashMap<Key, Entry<K>>>;

/// Opens the watch of one object.
type Open<K> = Box<dyn Fn(&str, &str) -> BoxStream<'static, ObjectEvent<K>> + Send + Sync>;

/// Objects of one kind, each watched while a pod uses it.
pub struct Watched<K> {
    open: Open<K>,
    entries: Arc<Entries<K>>,
}

impl<K> Watched<K>
where
    K: kube::Resource + Send + Sync + 'static,
{
    fn new(open: Open<K>) -> Self {
        Self {
            open,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry<K>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The object `namespace/name` as last seen, for the pod `uid` (woken through `wake` when
    /// the object changes). Starts the object's watch if no pod used it yet and waits for its
    /// first list; `Err(())` if that list did not come in time.
    async fn get(
        &self,
        uid: &str,
        wake: &Arc<Notify>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<K>>, ()> {
        let key = (namespace.to_string(), name.to_string());
        let mut seen = {
            let mut entries = self.entries();
            let entry = entries.entry(key.clone()).or_insert_with(|| {
                let (tx, rx) = watch::channel(None);
                let events = (self.open)(namespace, name);
                let task = tokio::spawn(follow(
                    events,
                    tx,
                    Arc::downgrade(&self.entries),
                    key.clone(),
                ));
                Entry {
                    users: HashMap::new(),
                    seen: rx,
                    task: task.abort_handle(),
                }
            });
            entry
                .users
                .entry(uid.to_string())
                .or_insert_with(|| Arc::clone(wake));
            entry.seen.clone()
        };
        match tokio::time::timeout(FIRST_LIST, seen.wait_for(Option::is_some)).await {
            Ok(Ok(state)) => Ok(state.clone().flatten()),
            _ => Err(()),
        }
    }

    /// Forgets the pod `uid`; stops the watches no pod uses any more.
    fn release(&self, uid: &str) {
        self.entries().retain(|_, e| {
            e.users.remove(uid);
            let used = !e.users.is_empty();
            if !used {
                e.task.abort();
            }
            used
        });
    }

    /// How many objects are watched.
    fn watched(&self) -> usize {
        self.entries().len()
    }
}

/// Follows one object's watch: publishes each complete state and wakes the object's users
/// when it changes after the first list.
async fn follow<K: kube::Resource>(
    mut events: BoxStream<'static, ObjectEvent<K>>,
    seen: watch::Sender<Seen<K>>,
    entries: Weak<Entries<K>>,
    key: Key,
) {
    // The state of a relist in progress.
    let mut listing: Option<Option<Arc<K>>> = None;
    while let Some(event) = events.next().await {
        let now = match event {
            ObjectEvent::Relist => {
                listing = Some(None);
                continue;
            }
            ObjectEvent::Applied(o) => match listing.as_mut() {
                Some(l) => {
                    *l = Some(Arc::from(o));
                    continue;
                }
                None => Some(Arc::from(o)),
            },
            ObjectEvent::Deleted(_) => match listing.as_mut() {
                Some(l) => {
                    *l = None;
                    continue;
                }
                None => None,
            },
            ObjectEvent::Synced => listing.take().flatten(),
            ObjectEvent::Error(e) => {
                tracing::debug!(object = %format!("{}/{}", key.0, key.1), error = %e, "watching");
                continue;
            }
        };
        let version = |o: &Option<Arc<K>>| {
            o.as_ref()
                .map(|o| o.meta().resource_version.clone().unwrap_or_default())
        };
        let before = seen.send_replace(Some(now.clone()));
        let changed = before.is_some_and(|b| version(&b) != version(&now));
        if changed && let Some(entries) = entries.upgrade() {
            let entries = entries.lock().unwrap_or_else(|e| e.into_inner());
            for wake in entries.get(&key).iter().flat_map(|e| e.users.values()) {
                wake.notify_one();
            }
        }
    }
}

/// The ConfigMaps and Secrets of the pods on this node.
pub struct Sources {
    api: Arc<dyn ClusterApi>,
    config_maps: Watched<ConfigMap>,
    secrets: Watched<Secret>,
}

impl Sources {
    /// Sources read through `api`.
    pub fn new(api: Arc<dyn ClusterApi>) -> Self {
        let cm_api = Arc::clone(&api);
        let secret_api = Arc::clone(&api);
        Self {
            config_maps: Watched::new(Box::new(move |ns, name| cm_api.watch_config_map(ns, name))),
            secrets: Watched::new(Box::new(move |ns, name| secret_api.watch_secret(ns, name))),
            api,
        }
    }

    /// The ConfigMap `namespace/name`, if it exists, for the pod `uid` (woken through `wake`
    /// when the ConfigMap changes).
    pub async fn config_map(
        &self,
        uid: &str,
        wake: &Arc<Notify>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ConfigMap>>, ApiCallError> {
        match self.config_maps.get(uid, wake, namespace, name).await {
            Ok(cm) => Ok(cm),
            Err(()) => Ok(self
                .api
                .get_config_map(namespace, name)
                .await?
                .map(Arc::new)),
        }
    }

    /// The Secret `namespace/name`, if it exists, for the pod `uid` (woken through `wake` when
    /// the Secret changes).
    pub async fn secret(
        &self,
        uid: &str,
        wake: &Arc<Notify>,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, ApiCallError> {
        match self.secrets.get(uid, wake, namespace, name).await {
            Ok(s) => Ok(s),
            Err(()) => Ok(self.api.get_secret(namespace, name).await?.map(Arc::new)),
        }
    }

    /// Forgets the pod `uid` (its worker is gone); stops watches no pod uses any more.
    pub fn release(&self, uid: &str) {
        self.config_maps.release(uid);
        self.secrets.release(uid);
    }

    /// How many ConfigMaps and Secrets are watched.
    pub fn watched(&self) -> usize {
        self.config_maps.watched() + self.secrets.watched()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FakeApi;

    fn cm(name: &str, value: &str, version: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version},
            "data": {"k": value},
        }))
        .unwrap()
    }

    fn value(cm: &Option<Arc<ConfigMap>>) -> Option<String> {
        cm.as_ref()
            .and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("k").cloned())
    }

    #[tokio::test]
    async fn one_watch_serves_every_pod_and_a_change_wakes_them() {
        let api = FakeApi::new();
        api.put_config_map(cm("a", "1", "1"));
        let sources = Sources::new(api.clone());
        let (w1, w2) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        for (uid, wake) in [("p1", &w1), ("p2", &w2), ("p1", &w1)] {
            let got = sources.config_map(uid, wake, "ns", "a").await.unwrap();
            assert_eq!(value(&got).as_deref(), Some("1"));
        }
        let missing = sources.config_map("p1", &w1, "ns", "b").await.unwrap();
        assert!(missing.is_none(), "an absent object reads as absent");
        let calls = api.calls();
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.starts_with("watch_config_map"))
                .count(),
            2,
            "one watch per object: {calls:?}"
        );
        assert!(!calls.iter().any(|c| c.starts_with("get_config_map")));

        api.put_config_map(cm("a", "2", "2"));
        tokio::time::timeout(Duration::from_secs(5), async {
            tokio::join!(w1.notified(), w2.notified())
        })
        .await
        .expect("both users woken by the change");
        let got = sources.config_map("p2", &w2, "ns", "a").await.unwrap();
        assert_eq!(value(&got).as_deref(), Some("2"));

        sources.release("p1");
        assert_eq!(sources.watched(), 1, "b had only p1; a still has p2");
        sources.release("p2");
        assert_eq!(sources.watched(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_never_lists_falls_back_to_a_get() {
        let api = FakeApi::new();
        api.put_config_map(cm("a", "1", "1"));
        api.silence_object_watches();
        let sources = Sources::new(api.clone());
        let got = sources
            .config_map("p", &Arc::new(Notify::new()), "ns", "a")
            .await
            .unwrap();
        assert_eq!(value(&got).as_deref(), Some("1"));
        assert!(api.calls().contains(&"get_config_map ns/a".to_string()));
    }
}
