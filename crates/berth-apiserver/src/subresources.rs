//! The subresources that are not plain views of the object: `scale` (Deployments,
//! ReplicaSets, StatefulSets), `pods/binding` (the scheduler's placement) and
//! `pods/eviction` (deletion that honours PodDisruptionBudgets).

use std::sync::Arc;

use berth_api::{ApiError, meta};
use http::StatusCode;
use serde_json::{Value, json};

use crate::body::{self, PatchType};
use crate::objects::{DeleteOptions, Part, Produced, WriteOptions};
use crate::rest::ResourceRequest;
use crate::{Api, Reply};

/// The `autoscaling/v1` Scale of a scalable object.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .map(selector_string)
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(obj),
            "namespace": meta::namespace(obj),
            "uid": meta::uid(obj),
            "resourceVersion": meta::resource_version(obj),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": { "replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) },
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// A LabelSelector object in its query-string form (`a=b,c in (d)`), as Scale reports it.
fn selector_string(sel: &Value) -> String {
    berth_api::selectors::from_json(sel)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// GET, PUT and PATCH of `scale`.
pub async fn scale(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let kind = req.kind;
    let ns = req.info.namespace.as_deref();
    let name = req.info.name.as_deref().unwrap_or("");
    if req.info.verb == "get" {
        let (obj, _) = api.objects.get(kind, ns, name).await?;
        return Ok(Reply::json_value(StatusCode::OK, &scale_of(&obj)));
    }
    let opts: WriteOptions = req.write_options()?;
    let new_scale_of = |current_scale: &Value| -> Result<Value, ApiError> {
        if req.info.verb == "update" {
            return body::decode_object(req.content_type, &req.body);
        }
        let pt = PatchType::from_content_type(req.content_type)?;
        let patch = pt.decode(&req.body)?;
        match pt {
            PatchType::Json => Ok(berth_api::patch::json_patch(current_scale, &patch)?),
            PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                Ok(berth_api::patch::merge_patch(current_scale, &patch)?)
            }
        }
    };
    let w = api
        .objects
        .update(kind, ns, name, Part::Main, &opts, |current| {
            let new_scale = new_scale_of(&scale_of(current))?;
            let replicas = new_scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "autoscaling",
                        "Scale",
                        name,
                        vec![berth_api::StatusCause::required("spec.replicas")],
                    )
                })?;
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![berth_api::StatusCause::invalid(
                        "spec.replicas",
                        &json!(replicas),
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let mut obj = current.clone();
            obj["spec"]["replicas"] = json!(replicas);
            let rv = meta::resource_version(&new_scale).to_string();
            meta::set(
                &mut obj,
                "resourceVersion",
                (!rv.is_empty()).then(|| Value::String(rv)),
            );
            Ok(Produced::Object(obj))
        })
        .await?;
    Ok(Reply::json_value(StatusCode::OK, &scale_of(&w.object)))
}

/// POST `pods/{name}/binding`: assigns the pod to a node, once.
pub async fn binding(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let ns = req.info.namespace.as_deref();
    let name = req.info.name.as_deref().unwrap_or("");
    let b = body::decode_object(req.content_type, &req.body)?;
    let target = b
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if target.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            name,
            vec![berth_api::StatusCause::required("target.name")],
        ));
    }
    let target_kind = b
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("Node");
    if !target_kind.is_empty() && target_kind != "Node" {
        return Err(ApiError::invalid(
            "",
            "Binding",
            name,
            vec![berth_api::StatusCause::not_supported(
                "target.kind",
                &json!(target_kind),
                &["Node"],
            )],
        ));
    }
    let body_name = meta::name(&b);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the binding ({body_name}) does not match the pod ({name})"
        )));
    }
    let opts = req.write_options()?;
    let now = meta::format_time(api.objects.clock.now());
    let uid_pre = b
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    api.objects
        .update(req.kind, ns, name, Part::Internal, &opts, |pod| {
            if let Some(uid) = &uid_pre
                && uid != meta::uid(pod)
            {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    name,
                    "the pod's UID does not match the binding",
                ));
            }
            let current = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            if meta::is_deleting(pod) {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let mut p = pod.clone();
            p["spec"]["nodeName"] = json!(target);
            set_condition(
                &mut p,
                json!({ "type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now }),
            );
            // No precondition: a concurrent write is retried with the check above.
            meta::set(&mut p, "resourceVersion", None);
            Ok(Produced::Object(p))
        })
        .await?;
    Ok(Reply::json_value(
        StatusCode::CREATED,
        &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    ))
}

/// Sets (replaces by type) a condition in `status.conditions`.
fn set_condition(obj: &mut Value, condition: Value) {
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    let conds = obj["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conds else {
        return;
    };
    list.retain(|c| c.get("type") != condition.get("type"));
    list.push(condition);
}

/// POST `pods/{name}/eviction`: deletes the pod unless a PodDisruptionBudget forbids it.
pub async fn eviction(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let ns = req.info.namespace.as_deref().unwrap_or("");
    let name = req.info.name.as_deref().unwrap_or("");
    let ev = body::decode_object(req.content_type, &req.body)?;
    let (pod, _) = api.objects.get(req.kind, Some(ns), name).await?;
    let mut options = DeleteOptions::default();
    if let Some(o) = ev.get("deleteOptions").filter(|o| o.is_object()) {
        options = DeleteOptions::parse(o.to_string().as_bytes(), &crate::query::Query::default())?;
    }
    options.dry_run |= req.query.dry_run()?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let terminal = phase == "Succeeded" || phase == "Failed" || meta::is_deleting(&pod);
    if !terminal {
        admit_eviction(api, ns, &pod, options.dry_run).await?;
    }
    api.objects
        .delete(req.kind, Some(ns), name, &options)
        .await?;
    Ok(Reply::json_value(
        StatusCode::CREATED,
        &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    ))
}

/// Checks the PodDisruptionBudgets that select `pod` and takes one disruption from each.
async fn admit_eviction(
    api: &Arc<Api>,
    ns: &str,
    pod: &Value,
    dry_run: bool,
) -> Result<(), ApiError> {
    let Some(pdb_kind) = berth_api::kinds::by_resource("policy", "v1", "poddisruptionbudgets")
    else {
        return Ok(());
    };
    let labels = meta::labels(pod);
    // The budgets as of now: a status the disruption controller just wrote must count.
    crate::rest::wait_consistent(api, None).await?;
    let (pdbs, _) = api.cache.list(&pdb_kind.namespace_prefix(ns), |_| true);
    let mut matching = Vec::new();
    for o in pdbs {
        let v = o.value();
        let Some(sel) = v.pointer("/spec/selector") else {
            continue;
        };
        let Ok(sel) = berth_api::selectors::from_json(sel) else {
            continue;
        };
        if sel.is_empty() || !sel.matches(&labels) {
            continue;
        }
        matching.push(v);
    }
    if matching.len() > 1 {
        return Err(ApiError::internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let Some(pdb) = matching.pop() else {
        return Ok(());
    };
    let pdb_name = meta::name(&pdb).to_string();
    let refuse = |why: &str| {
        let mut e = ApiError::too_many_requests(
            format!("Cannot evict pod as it would violate the pod's disruption budget. {why}"),
            10,
        );
        e.causes.push(berth_api::StatusCause::new(
            "DisruptionBudget",
            "",
            format!("The disruption budget {pdb_name} {why}"),
        ));
        e
    };
    let observed = pdb
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed < meta::generation(&pdb) {
        return Err(refuse("is still being processed by the server."));
    }
    let allowed = pdb
        .pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if allowed < 1 {
        let current = pdb
            .pointer("/status/currentHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let desired = pdb
            .pointer("/status/desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return Err(refuse(&format!(
            "needs {desired} healthy pods and has {current} currently"
        )));
    }
    if dry_run {
        return Ok(());
    }
    let opts = WriteOptions {
        field_manager: "berth-apiserver".into(),
        field_validation: Default::default(),
        dry_run: false,
    };
    let pod_name = meta::name(pod).to_string();
    let now = meta::format_time(api.objects.clock.now());
    api.objects
        .update(
            pdb_kind,
            Some(ns),
            &pdb_name,
            Part::Status,
            &opts,
            |current| {
                let mut p = current.clone();
                let allowed = p
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if allowed < 1 {
                    return Err(refuse("does not allow more disruptions now."));
                }
                p["status"]["disruptionsAllowed"] = json!(allowed - 1);
                if !p["status"]
                    .get("disruptedPods")
                    .is_some_and(Value::is_object)
                {
                    p["status"]["disruptedPods"] = json!({});
                }
                p["status"]["disruptedPods"][&pod_name] = json!(now);
                // No precondition: a concurrent write is retried with the check above.
                meta::set(&mut p, "resourceVersion", None);
                Ok(Produced::Object(p))
            },
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_strings() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]});
        assert_eq!(selector_string(&s), "app=web,tier in (a,b)");
    }

    #[test]
    fn scale_view() {
        let d = json!({"metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = scale_of(&d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web");
        assert_eq!(s["metadata"]["resourceVersion"], "7");
    }
}
