//! The namespace lifecycle: a namespace being deleted is emptied of every object, then its
//! `kubernetes` finalizer is removed and it disappears.

use std::sync::Arc;

use berth_api::meta;
use serde_json::Value;

use crate::Api;
use crate::objects::{DeleteOptions, Part, Produced};

const MANAGER: &str = "berth-namespace-controller";

/// One level-triggered pass.
pub async fn pass(api: Arc<Api>) {
    let Some(ns_kind) = berth_api::kinds::by_kind("v1", "Namespace") else {
        return;
    };
    let (namespaces, _) = api.cache.list(&ns_kind.key_prefix(), |o| o.deleting);
    for ns in namespaces {
        let (all, _) = api.cache.list(crate::cache::REGISTRY_PREFIX, |o| {
            o.namespace == ns.name && o.kind.namespaced
        });
        if !all.is_empty() {
            for o in all {
                if o.deleting {
                    continue;
                }
                let options = DeleteOptions {
                    propagation_policy: Some("Background".into()),
                    ..Default::default()
                };
                match api
                    .objects
                    .delete(o.kind, Some(&o.namespace), &o.name, &options)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.code == 404 || e.code == 409 => {}
                    Err(e) => tracing::warn!(key = %o.key, error = %e, "emptying namespace failed"),
                }
            }
            continue;
        }
        let opts = super::options(MANAGER);
        let result = api
            .objects
            .update(ns_kind, None, &ns.name, Part::Main, &opts, |cur| {
                let mut v = cur.clone();
                if let Some(list) = v
                    .pointer_mut("/spec/finalizers")
                    .and_then(Value::as_array_mut)
                {
                    list.retain(|f| f.as_str() != Some("kubernetes"));
                }
                meta::set(&mut v, "resourceVersion", None);
                Ok(Produced::Object(v))
            })
            .await;
        if let Err(e) = result
            && e.code != 404
        {
            tracing::warn!(namespace = %ns.name, error = %e, "finalizing namespace failed");
        }
    }
}
