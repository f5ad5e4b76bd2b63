//! The garbage collector: deletes objects whose owners are all gone, deletes the dependents of
//! owners being deleted in the foreground (and removes the `foregroundDeletion` finalizer once
//! no blocking dependent remains), and orphans dependents of owners deleted with the `orphan`
//! finalizer.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::{ResourceKind, meta};
use serde_json::Value;

use crate::Api;
use crate::cache::CachedObject;
use crate::objects::{DeleteOptions, Part, Produced};

const MANAGER: &str = "berth-garbage-collector";

fn ns_of(o: &CachedObject) -> Option<&str> {
    (!o.namespace.is_empty()).then_some(o.namespace.as_str())
}

/// One level-triggered pass over the whole cache.
pub async fn pass(api: Arc<Api>) {
    let (all, _) = api.cache.list(crate::cache::REGISTRY_PREFIX, |_| true);
    let by_uid: HashMap<&str, &Arc<CachedObject>> =
        all.iter().map(|o| (o.uid.as_str(), o)).collect();
    let mut dependents: HashMap<&str, Vec<&Arc<CachedObject>>> = HashMap::new();
    for o in &all {
        for r in &o.owners {
            dependents.entry(r.uid.as_str()).or_default().push(o);
        }
    }
    for o in &all {
        if o.owners.is_empty() || o.deleting {
            continue;
        }
        // An owner only counts if it exists with that UID in a scope the dependent can see.
        let live_owners: Vec<&Arc<CachedObject>> = o
            .owners
            .iter()
            .filter_map(|r| by_uid.get(r.uid.as_str()).copied())
            .filter(|owner| owner.namespace.is_empty() || owner.namespace == o.namespace)
            .collect();
        let all_gone = live_owners.is_empty();
        let owner_in_foreground = live_owners
            .iter()
            .any(|w| w.deleting && w.finalizers.iter().any(|f| f == "foregroundDeletion"));
        if all_gone || (owner_in_foreground && live_owners.iter().all(|w| w.deleting)) {
            let has_own_dependents = dependents
                .get(o.uid.as_str())
                .is_some_and(|d| !d.is_empty());
            let policy = if owner_in_foreground && has_own_dependents {
                "Foreground"
            } else {
                "Background"
            };
            delete(&api, o, policy).await;
        }
    }
    for o in &all {
        if !o.deleting {
            continue;
        }
        let deps = dependents.get(o.uid.as_str()).cloned().unwrap_or_default();
        if o.finalizers.iter().any(|f| f == "orphan") {
            for d in &deps {
                remove_owner_ref(&api, d, &o.uid).await;
            }
            if deps.is_empty() {
                remove_finalizer(&api, o, "orphan").await;
            }
        } else if o.finalizers.iter().any(|f| f == "foregroundDeletion") {
            let blocking = deps.iter().any(|d| {
                d.owners
                    .iter()
                    .any(|r| r.uid == o.uid && r.block_owner_deletion)
            });
            if !blocking {
                remove_finalizer(&api, o, "foregroundDeletion").await;
            }
        }
    }
}

async fn delete(api: &Api, o: &CachedObject, policy: &str) {
    let options = DeleteOptions {
        propagation_policy: Some(policy.to_string()),
        ..Default::default()
    };
    match api
        .objects
        .delete(o.kind, ns_of(o), &o.name, &options)
        .await
    {
        Ok(_) => tracing::debug!(key = %o.key, "garbage collected"),
        Err(e) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(key = %o.key, error = %e, "garbage collection failed"),
    }
}

async fn modify(
    api: &Api,
    kind: &'static ResourceKind,
    o: &CachedObject,
    change: impl Fn(&mut Value),
) {
    let opts = super::options(MANAGER);
    let uid = o.uid.clone();
    let result = api
        .objects
        .update(kind, ns_of(o), &o.name, Part::Main, &opts, |cur| {
            if meta::uid(cur) != uid {
                return Err(berth_api::ApiError::conflict(
                    kind.group,
                    kind.plural,
                    &o.name,
                    "the object was replaced",
                ));
            }
            let mut v = cur.clone();
            change(&mut v);
            meta::set(&mut v, "resourceVersion", None);
            Ok(Produced::Object(v))
        })
        .await;
    match result {
        Ok(_) => {}
        Err(e) if e.code == 404 || e.code == 409 => {}
        Err(e) => tracing::warn!(key = %o.key, error = %e, "garbage collector update failed"),
    }
}

async fn remove_finalizer(api: &Api, o: &CachedObject, finalizer: &str) {
    modify(api, o.kind, o, |v| {
        if let Some(list) = v
            .pointer_mut("/metadata/finalizers")
            .and_then(Value::as_array_mut)
        {
            list.retain(|f| f.as_str() != Some(finalizer));
        }
    })
    .await;
}

async fn remove_owner_ref(api: &Api, o: &CachedObject, owner_uid: &str) {
    modify(api, o.kind, o, |v| {
        if let Some(list) = v
            .pointer_mut("/metadata/ownerReferences")
            .and_then(Value::as_array_mut)
        {
            list.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
        }
    })
    .await;
}
