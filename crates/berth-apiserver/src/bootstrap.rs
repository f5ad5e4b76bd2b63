//! What every cluster has from its first start: the namespaces `default`, `kube-system`,
//! `kube-public` and `kube-node-lease`, and the `kubernetes` Service in `default` with its
//! Endpoints pointing at this API server; and the loop that compacts the store's history.
//!
//! Bootstrap objects are created through the object pipeline like any client's, and only when
//! missing, so restarts leave them alone.

use std::sync::Arc;
use std::time::Duration;

use berth_api::{ApiError, kinds};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::Api;
use crate::objects::{FieldValidation, Part, Produced, WriteOptions};

/// The field manager of objects the API server maintains.
pub const MANAGER: &str = "berth-apiserver";

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn opts() -> WriteOptions {
    WriteOptions {
        field_manager: MANAGER.into(),
        field_validation: FieldValidation::Strict,
        dry_run: false,
    }
}

async fn create_if_missing(
    api: &Api,
    group_version: &str,
    kind: &str,
    ns: Option<&str>,
    obj: Value,
) -> Result<(), ApiError> {
    let k = kinds::by_kind(group_version, kind)
        .ok_or_else(|| ApiError::internal(format!("kind {kind} is not registered")))?;
    let name = berth_api::meta::name(&obj).to_string();
    match api.objects.get(k, ns, &name).await {
        Ok(_) => return Ok(()),
        Err(e) if e.code == 404 => {}
        Err(e) => return Err(e),
    }
    match api.objects.create(k, ns, obj, &opts(), false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the objects every cluster has, if missing, and points the `kubernetes` Service's
/// Endpoints at this server's `port`.
pub async fn ensure(api: &Arc<Api>, port: u16) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        create_if_missing(
            api,
            "v1",
            "Namespace",
            None,
            json!({
                "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns },
            }),
        )
        .await?;
    }
    let ip = api.objects.alloc.cidr().first().to_string();
    create_if_missing(
        api,
        "v1",
        "Service",
        Some("default"),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": { "component": "apiserver", "provider": "kubernetes" },
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": ip,
                "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
                "sessionAffinity": "None",
            },
        }),
    )
    .await?;
    let address = crate::pki::host_addresses()
        .into_iter()
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .map(|a| a.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let subsets = json!([{
        "addresses": [{ "ip": address }],
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    }]);
    let endpoints = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": subsets,
    });
    create_if_missing(api, "v1", "Endpoints", Some("default"), endpoints).await?;
    // The port may differ from the last start: keep the Endpoints current.
    let k = kinds::by_kind("v1", "Endpoints")
        .ok_or_else(|| ApiError::internal("Endpoints is not registered"))?;
    api.objects
        .update(
            k,
            Some("default"),
            "kubernetes",
            Part::Main,
            &opts(),
            |cur| {
                let mut e = cur.clone();
                e["subsets"] = subsets.clone();
                berth_api::meta::set(&mut e, "resourceVersion", None);
                Ok(Produced::Object(e))
            },
        )
        .await?;
    Ok(())
}

/// Compacts the store's history every `interval`, keeping at least one interval of history
/// (as kube-apiserver does with etcd), and trims the watch cache's history to match.
pub async fn compaction_loop(
    api: Arc<Api>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if interval.is_zero() {
        return;
    }
    let mut previous: Option<i64> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let current = match api.store.current_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "compaction: reading the revision failed");
                continue;
            }
        };
        if let Some(rev) = previous.filter(|r| *r > 0) {
            match api.store.compact(rev).await {
                Ok(()) => {
                    api.cache.compact(rev);
                    tracing::debug!(revision = rev, "compacted");
                }
                Err(e) => tracing::warn!(error = %e, revision = rev, "compaction failed"),
            }
        }
        previous = Some(current);
    }
}
