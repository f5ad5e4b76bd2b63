//! Controllers that run inside the API server process and act through its object pipeline:
//! the garbage collector (owner references, foreground and orphan deletion) and the namespace
//! lifecycle (a deleted namespace is emptied, then removed).
//!
//! Both are level-triggered: each pass compares the whole cached state with what it should be
//! and acts, so a restart at any moment is safe. A pass runs shortly after any change and at
//! least every few seconds.

pub mod garbage_collector;
pub mod namespace;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::Api;
use crate::cache::{CacheEvent, WatchEventType};
use crate::objects::{FieldValidation, WriteOptions};

/// Write options of a controller.
pub(crate) fn options(manager: &str) -> WriteOptions {
    WriteOptions {
        field_manager: manager.to_string(),
        field_validation: FieldValidation::Ignore,
        dry_run: false,
    }
}

/// Whether a change can give the garbage collector or the namespace controller work: a deletion (an owner gone, a
/// dependent gone, a namespace emptied), an object being deleted (finalizers to act on), or an
/// object whose owner references changed (a new dependent whose owner may be missing). Other
/// changes (a pod's status, an event) cannot, so they do not cost a pass over the whole cache.
pub(crate) fn deletion_or_ownership(ev: &CacheEvent) -> bool {
    ev.event_type == WatchEventType::Deleted
        || ev.object.deleting
        || ev.prev.as_ref().map(|p| &p.owners) != Some(&ev.object.owners)
            && !ev.object.owners.is_empty()
}

/// Runs `pass` after changes for which `relevant` holds (debounced) and every `resync`, until
/// shutdown.
pub(crate) async fn run_loop<F, Fut>(
    api: Arc<Api>,
    resync: Duration,
    mut shutdown: watch::Receiver<bool>,
    relevant: fn(&CacheEvent) -> bool,
    mut pass: F,
) where
    F: FnMut(Arc<Api>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut changes = api.cache.subscribe();
    loop {
        pass(Arc::clone(&api)).await;
        let deadline = tokio::time::sleep(resync);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = changes.recv() => match r {
                    Ok(ev) if !relevant(&ev) => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Let a burst of changes settle into one pass.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        while changes.try_recv().is_ok() {}
                    }
                    Err(broadcast::error::RecvError::Closed) => changes = api.cache.subscribe(),
                },
                _ = &mut deadline => {}
                _ = shutdown.changed() => return,
            }
            break;
        }
    }
}

/// Starts the in-process controllers.
pub fn start(api: &Arc<Api>, shutdown: watch::Receiver<bool>) {
    tokio::spawn(run_loop(
        Arc::clone(api),
        Duration::from_secs(5),
        shutdown.clone(),
        deletion_or_ownership,
        garbage_collector::pass,
    ));
    tokio::spawn(run_loop(
        Arc::clone(api),
        Duration::from_secs(5),
        shutdown,
        deletion_or_ownership,
        namespace::pass,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CachedObject;
    use serde_json::json;

    fn pod(meta: serde_json::Value) -> Arc<CachedObject> {
        let kind = berth_api::kinds::by_kind("v1", "Pod").unwrap();
        let mut v = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta});
        Arc::new(CachedObject::from_value(kind, "/k", 1, &mut v))
    }

    fn event(
        event_type: WatchEventType,
        prev: Option<&Arc<CachedObject>>,
        object: &Arc<CachedObject>,
    ) -> CacheEvent {
        CacheEvent {
            revision: 1,
            event_type,
            object: Arc::clone(object),
            prev: prev.cloned(),
        }
    }

    #[test]
    fn only_deletions_and_owner_changes_wake_the_controllers() {
        let plain = pod(json!({"name": "p", "namespace": "ns", "uid": "u"}));
        let owner =
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "o"}]);
        let owned =
            pod(json!({"name": "p", "namespace": "ns", "uid": "u", "ownerReferences": owner}));
        let deleting = pod(json!({"name": "p", "namespace": "ns", "uid": "u",
            "deletionTimestamp": "2026-01-01T00:00:00Z"}));
        use WatchEventType::{Added, Deleted, Modified};
        assert!(
            !deletion_or_ownership(&event(Added, None, &plain)),
            "a pod without owners"
        );
        assert!(
            !deletion_or_ownership(&event(Modified, Some(&plain), &plain)),
            "a status write"
        );
        assert!(
            !deletion_or_ownership(&event(Modified, Some(&owned), &owned)),
            "owners unchanged"
        );
        assert!(
            deletion_or_ownership(&event(Added, None, &owned)),
            "a new dependent"
        );
        assert!(
            deletion_or_ownership(&event(Modified, Some(&plain), &owned)),
            "adopted"
        );
        assert!(
            deletion_or_ownership(&event(Modified, Some(&plain), &deleting)),
            "being deleted"
        );
        assert!(
            deletion_or_ownership(&event(Deleted, Some(&plain), &plain)),
            "gone"
        );
    }
}
