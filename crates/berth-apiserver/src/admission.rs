//! Admission of new objects by the LimitRange and ResourceQuota rules of their namespace, as
//! Kubernetes' LimitRanger and ResourceQuota admission plugins do on create:
//!
//! - [`mutate`] (before validation) gives a new pod's containers the LimitRange defaults;
//! - [`validate`] (after validation, before the object is stored) checks a pod or claim against
//!   the LimitRanges, then, for any namespaced kind, checks the object against every quota of
//!   the namespace it falls under and charges its usage to them, each by a compare-and-swap
//!   write of the quota's `status.used` (retried on conflict), so that concurrent creates never
//!   take a quota over its hard limits. Dry runs check without charging.
//!
//! The rules themselves are `berth_api::quota`'s; this module owns only reading LimitRanges and
//! quotas from the store and writing quota status. Usage that the charged objects stop using
//! (deletions, finished pods) is released by the quota controller, not here.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Arc, LazyLock, Mutex};

use berth_api::quota::{self, Evaluator, ResourceList, limit_range};
use berth_api::{ApiError, ResourceKind, kinds, meta};
use berth_store::ListOptions;
use serde_json::{Map, Value};

use crate::objects::{
    FieldValidation, Objects, Part, Produced, WriteOptions, decode_stored, store_error,
};

/// The field manager of quota status written on admission.
pub const FIELD_MANAGER: &str = "resourcequota-admission";

/// `<resource> "<name>" is forbidden: <detail>`, with the details Kubernetes sends.
fn forbidden(kind: &ResourceKind, name: &str, detail: impl Display) -> ApiError {
    let mut e = ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {detail}",
        berth_api::status::qualified(kind.group, kind.plural)
    ));
    e.name = Some(name.to_string());
    e.group = Some(kind.group.to_string());
    e.kind = Some(kind.plural.to_string());
    e
}

fn is_core(kind: &ResourceKind, k: &str) -> bool {
    kind.group.is_empty() && kind.kind == k
}

/// The objects stored under `prefix`, decoded, in key (name) order.
async fn list(objects: &Objects, prefix: String) -> Result<Vec<Value>, ApiError> {
    let listed = objects
        .store
        .list(ListOptions {
            prefix,
            ..ListOptions::default()
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    listed.items.iter().map(decode_stored).collect()
}

/// The LimitRanges of `namespace`.
async fn limit_ranges(objects: &Objects, namespace: &str) -> Result<Vec<Value>, ApiError> {
    let Some(kind) = kinds::by_kind("v1", "LimitRange") else {
        return Ok(Vec::new());
    };
    list(objects, kind.namespace_prefix(namespace)).await
}

/// Mutating admission of a new object: a pod's containers get the defaults of the
/// namespace's LimitRanges (and the pod's QoS class follows). Returns the LimitRanges read,
/// for [`validate`]; none for kinds LimitRanges do not concern.
pub async fn mutate(
    objects: &Objects,
    kind: &ResourceKind,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<Vec<Value>, ApiError> {
    let (Some(ns), true) = (
        namespace,
        is_core(kind, "Pod") || is_core(kind, "PersistentVolumeClaim"),
    ) else {
        return Ok(Vec::new());
    };
    let ranges = limit_ranges(objects, ns).await?;
    if is_core(kind, "Pod") && limit_range::apply_pod_defaults(obj, &ranges) {
        // The QoS class is computed from the resources as they are now.
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            status.remove("qosClass");
        }
        berth_api::defaults::apply(kind, obj);
    }
    Ok(ranges)
}

/// Validating admission of a new object, after it was defaulted and validated and before it
/// is stored: the LimitRange checks of pods and claims, then the quotas of its namespace,
/// charged unless `dry_run`.
pub async fn validate(
    objects: &Objects,
    kind: &ResourceKind,
    namespace: Option<&str>,
    obj: &Value,
    ranges: &[Value],
    dry_run: bool,
) -> Result<(), ApiError> {
    let name = meta::name(obj);
    let checked = if is_core(kind, "Pod") {
        limit_range::validate_pod(obj, ranges)
    } else if is_core(kind, "PersistentVolumeClaim") {
        limit_range::validate_claim(obj, ranges)
    } else {
        Ok(())
    };
    checked.map_err(|e| forbidden(kind, name, e))?;
    match namespace {
        Some(ns) if kind.namespaced => admit_quota(objects, kind, ns, obj, dry_run).await,
        _ => Ok(()),
    }
}

/// One lock per namespace, so that this server charges a namespace's quotas one create at a
/// time (other writers are handled by compare-and-swap).
static NAMESPACE_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn namespace_lock(ns: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = NAMESPACE_LOCKS.lock().unwrap_or_else(|e| e.into_inner());
    // Forget the locks nobody holds or waits for.
    locks.retain(|_, l| Arc::strong_count(l) > 1);
    Arc::clone(locks.entry(ns.to_string()).or_default())
}

/// The ResourceQuota admission of a new object in `ns`.
async fn admit_quota(
    objects: &Objects,
    kind: &ResourceKind,
    ns: &str,
    obj: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let Some(rq_kind) = kinds::by_kind("v1", "ResourceQuota") else {
        return Ok(());
    };
    let quotas = list(objects, rq_kind.namespace_prefix(ns)).await?;
    if quotas.is_empty() {
        return Ok(());
    }
    let name = meta::name(obj);
    let ev = Evaluator::of(kind.group, kind.plural);
    let applicable = quota::applicable(&ev, &quotas, obj).map_err(|e| forbidden(kind, name, e))?;
    if applicable.is_empty() {
        return Ok(());
    }
    let now = objects.clock.now();
    let delta = quota::charge_of(&ev, obj, now).map_err(|e| forbidden(kind, name, e))?;
    if delta.is_empty() {
        return Ok(());
    }
    // A create that will fail because the name is taken charges nothing.
    let key = kind.key(Some(ns), name);
    let (existing, _) = objects
        .store
        .get(&key)
        .await
        .map_err(|e| store_error(kind, name, e))?;
    if existing.is_some() {
        return Ok(());
    }
    let lock = namespace_lock(ns);
    let _held = lock.lock().await;
    for i in applicable {
        let q = &quotas[i];
        // A quota the controller has not computed yet: count what exists now.
        let computed = if quota::missing_usage(&ev, q).is_empty() {
            ResourceList::new()
        } else {
            let existing = list(objects, kind.namespace_prefix(ns)).await?;
            let hard = quota::enforced_hard(q);
            let scopes = quota::scope_requirements(q);
            let (g, r) = ev.group_resource();
            quota::calculate_usage(
                &hard,
                &scopes,
                |group, resource| (group == g && resource == r).then_some(existing.as_slice()),
                now,
            )
        };
        charge(
            objects,
            rq_kind,
            ns,
            meta::name(q),
            &ev,
            obj,
            &delta,
            &computed,
            dry_run,
        )
        .await
        .map_err(|e| match e {
            Charge::Refused(reason) => forbidden(kind, name, reason),
            Charge::Failed(e) => e,
        })?;
    }
    Ok(())
}

/// Why a charge did not happen.
enum Charge {
    /// The quota refuses the object (its message).
    Refused(quota::QuotaError),
    /// Reading or writing the quota failed.
    Failed(ApiError),
}

/// Charges `delta` to the quota `ns/name` by a compare-and-swap status write of the quota as
/// stored (re-read and re-checked on conflict). `computed` completes a usage the quota lacks.
#[allow(clippy::too_many_arguments)]
async fn charge(
    objects: &Objects,
    rq_kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    ev: &Evaluator,
    obj: &Value,
    delta: &ResourceList,
    computed: &ResourceList,
    dry_run: bool,
) -> Result<(), Charge> {
    let opts = WriteOptions {
        field_manager: FIELD_MANAGER.to_string(),
        field_validation: FieldValidation::Ignore,
        dry_run,
    };
    let mut refused = None;
    let result = objects
        .update(rq_kind, Some(ns), name, Part::Status, &opts, |current| {
            refused = None;
            let mut new = current.clone();
            // Gone out of scope or limits meanwhile: nothing to charge.
            if !quota::quota_matches(ev, current, obj) {
                return Ok(Produced::Object(new));
            }
            let mut used = quota::used(current);
            for r in quota::missing_usage(ev, current) {
                used.insert(
                    r.clone(),
                    computed.get(&r).copied().unwrap_or(quota::Amount::ZERO),
                );
            }
            match quota::charge(current, &used, delta) {
                Ok(None) => Ok(Produced::Object(new)),
                Ok(Some(new_used)) => {
                    set_status(&mut new, &new_used);
                    Ok(Produced::Object(new))
                }
                Err(e) => {
                    refused = Some(e);
                    Err(ApiError::forbidden("quota exceeded"))
                }
            }
        })
        .await;
    match (result, refused) {
        (Ok(_), _) => Ok(()),
        (Err(_), Some(reason)) => Err(Charge::Refused(reason)),
        // Deleted since it was listed: it limits nothing any more.
        (Err(e), None) if e.code == 404 => Ok(()),
        (Err(e), None) => Err(Charge::Failed(e)),
    }
}

/// Writes `used` into the quota's status, filling `status.hard` from `spec.hard` when the
/// status has none yet.
fn set_status(quota: &mut Value, used: &ResourceList) {
    let spec_hard = quota.pointer("/spec/hard").cloned();
    let Some(m) = quota.as_object_mut() else {
        return;
    };
    let status = m
        .entry("status")
        .or_insert_with(|| Value::Object(Map::new()));
    if !status.is_object() {
        *status = Value::Object(Map::new());
    }
    let Some(status) = status.as_object_mut() else {
        return;
    };
    if !status.get("hard").is_some_and(Value::is_object) {
        status.insert(
            "hard".into(),
            spec_hard.unwrap_or_else(|| Value::Object(Map::new())),
        );
    }
    status.insert("used".into(), quota::to_json(used));
}
