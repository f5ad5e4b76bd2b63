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

/// The message of every eviction a budget refuses.
const REFUSED: &str = "Cannot evict pod as it would violate the pod's disruption budget.";
/// Evictions recorded in a budget's `disruptedPods` beyond which the API refuses more, until
/// the disruption controller confirms them.
const MAX_DISRUPTED_PODS: usize = 2000;

/// True for a pod whose eviction needs no budget: finished, not started (Pending) or already
/// being deleted (Kubernetes' `canIgnorePDB`).
fn can_ignore_budget(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::is_deleting(pod)
}

/// True if the pod's Ready condition is True.
fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("type") == Some(&json!("Ready")) && c.get("status") == Some(&json!("True")))
}

/// POST `pods/{name}/eviction`: deletes the pod unless a PodDisruptionBudget forbids it, as
/// Kubernetes' eviction REST does: finished, pending and terminating pods go without a budget
/// check; a pod that is not Ready goes without taking a disruption when the budget allows it
/// (`unhealthyPodEvictionPolicy`); otherwise its budget must allow one disruption, which the
/// eviction takes (recording the pod in `disruptedPods`). The pod gets the `DisruptionTarget`
/// condition before it is deleted.
pub async fn eviction(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let ns = req.info.namespace.as_deref().unwrap_or("");
    let name = req.info.name.as_deref().unwrap_or("");
    let ev = body::decode_object(req.content_type, &req.body)?;
    let ev_name = meta::name(&ev);
    if !ev_name.is_empty() && ev_name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut asked = DeleteOptions::default();
    if let Some(o) = ev.get("deleteOptions").filter(|o| o.is_object()) {
        asked = DeleteOptions::parse(o.to_string().as_bytes(), &crate::query::Query::default())?;
    }
    asked.dry_run |= req.query.dry_run()?;
    let caller_rv = asked.precondition_resource_version.is_some();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (pod, rev) = api.objects.get(req.kind, Some(ns), name).await?;
        let mut options = asked.clone();
        let mut pdb_name = None;
        if can_ignore_budget(&pod) {
            // A pending pod must not turn Ready meanwhile (a budget would count it then).
            let pending = pod.pointer("/status/phase").is_some_and(|p| p == "Pending");
            if pending && !meta::is_deleting(&pod) && !caller_rv {
                options.precondition_resource_version = Some(rev.to_string());
            }
        } else if let Admitted::Unhealthy(budget) =
            admit_eviction(api, ns, &pod, options.dry_run).await?
        {
            // The pod must still be unready when it is deleted.
            if !caller_rv {
                options.precondition_resource_version = Some(rev.to_string());
            }
            pdb_name = Some(budget);
        }
        match add_condition_and_delete(api, req.kind, ns, name, options).await {
            Ok(()) => break,
            Err(e) if e.code == 409 && !caller_rv => match pdb_name {
                Some(budget) => return Err(still_processing(&budget)),
                // The pod changed under a budget-free eviction: look again.
                None if attempts < 5 => continue,
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(Reply::json_value(
        StatusCode::CREATED,
        &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
    ))
}

/// Marks the pod as a disruption target (unless a dry run) and deletes it with `options`.
async fn add_condition_and_delete(
    api: &Arc<Api>,
    kind: &'static berth_api::ResourceKind,
    ns: &str,
    name: &str,
    mut options: DeleteOptions,
) -> Result<(), ApiError> {
    if !options.dry_run {
        let opts = WriteOptions {
            field_manager: "berth-apiserver".into(),
            field_validation: Default::default(),
            dry_run: false,
        };
        let now = meta::format_time(api.objects.clock.now());
        let rv = options.precondition_resource_version.clone();
        let uid = options.precondition_uid.clone();
        let written = api
            .objects
            .update(kind, Some(ns), name, Part::Status, &opts, |current| {
                if let Some(uid) = &uid
                    && uid != meta::uid(current)
                {
                    return Err(ApiError::conflict(
                        "",
                        "pods",
                        name,
                        &format!(
                            "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                            meta::uid(current)
                        ),
                    ));
                }
                let mut p = current.clone();
                let already = p
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|c| c.get("type") == Some(&json!("DisruptionTarget")))
                    .filter(|c| c.get("status") == Some(&json!("True")))
                    .and_then(|c| c.get("lastTransitionTime").cloned());
                set_condition(
                    &mut p,
                    json!({
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "EvictionByEvictionAPI",
                        "message": "Eviction API: evicting",
                        "lastProbeTime": null,
                        "lastTransitionTime": already.unwrap_or(json!(now)),
                    }),
                );
                meta::set(&mut p, "resourceVersion", rv.clone().map(Value::String));
                Ok(Produced::Object(p))
            })
            .await?;
        if options.precondition_resource_version.is_some() {
            // This write moved the pod on: the precondition follows it.
            options.precondition_resource_version =
                Some(meta::resource_version(&written.object).to_string());
        }
    }
    api.objects.delete(kind, Some(ns), name, &options).await?;
    Ok(())
}

/// How a budget admitted an eviction.
enum Admitted {
    /// No budget selects the pod.
    NoBudget,
    /// The budget allowed a disruption and this eviction took it.
    Decremented,
    /// The pod is not Ready and the budget's policy lets it go without taking a disruption;
    /// the budget's name.
    Unhealthy(String),
}

/// The refusal while the disruption controller has not caught up with a budget.
fn still_processing(pdb_name: &str) -> ApiError {
    let mut e = ApiError::too_many_requests(REFUSED, 10);
    e.causes.push(berth_api::StatusCause::new(
        "DisruptionBudget",
        "",
        format!("The disruption budget {pdb_name} is still being processed by the server."),
    ));
    e
}

/// Checks that the budget `pdb` allows one more disruption now (Kubernetes'
/// `checkAndDecrement` without the decrement).
fn check_budget(pdb: &Value) -> Result<(), ApiError> {
    let name = meta::name(pdb);
    let observed = pdb
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed < meta::generation(pdb) {
        return Err(still_processing(name));
    }
    let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let allowed = int("/status/disruptionsAllowed");
    let forbidden = |why: &str| {
        ApiError::forbidden(format!(
            "poddisruptionbudget.policy \"{name}\" is forbidden: {why}"
        ))
    };
    if allowed < 0 {
        return Err(forbidden("pdb disruptions allowed is negative"));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len);
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(forbidden(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        let mut e = ApiError::too_many_requests(REFUSED, 0);
        e.causes.push(berth_api::StatusCause::new(
            "DisruptionBudget",
            "",
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int("/status/desiredHealthy"),
                int("/status/currentHealthy")
            ),
        ));
        return Err(e);
    }
    Ok(())
}

/// Finds the PodDisruptionBudget that selects `pod` (a missing selector selects nothing, an
/// empty one every pod, as in `policy/v1`) and admits the eviction against it, taking one
/// disruption unless the pod is unhealthy and the budget's policy lets it go.
async fn admit_eviction(
    api: &Arc<Api>,
    ns: &str,
    pod: &Value,
    dry_run: bool,
) -> Result<Admitted, ApiError> {
    let Some(pdb_kind) = berth_api::kinds::by_resource("policy", "v1", "poddisruptionbudgets")
    else {
        return Ok(Admitted::NoBudget);
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
        if !sel.matches(&labels) {
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
        return Ok(Admitted::NoBudget);
    };
    let pdb_name = meta::name(&pdb).to_string();
    if !pod_ready(pod) {
        let policy = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfHealthyBudget");
        let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let current = int("/status/currentHealthy");
        let desired = int("/status/desiredHealthy");
        if policy == "AlwaysAllow" || (current >= desired && desired > 0) {
            return Ok(Admitted::Unhealthy(pdb_name));
        }
    }
    check_budget(&pdb)?;
    if dry_run {
        return Ok(Admitted::Decremented);
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
                check_budget(current)?;
                let mut p = current.clone();
                let allowed = p
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    - 1;
                p["status"]["disruptionsAllowed"] = json!(allowed);
                if allowed == 0 {
                    disallow(&mut p, &now);
                }
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
    Ok(Admitted::Decremented)
}

/// Sets the budget's `DisruptionAllowed` condition to False (`InsufficientPods`), as the last
/// allowed disruption is taken.
fn disallow(pdb: &mut Value, now: &str) {
    let generation = pdb
        .pointer("/status/observedGeneration")
        .cloned()
        .unwrap_or(Value::Null);
    let since = pdb
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type") == Some(&json!("DisruptionAllowed")))
        .filter(|c| c.get("status") == Some(&json!("False")))
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or(json!(now));
    set_condition(
        pdb,
        json!({
            "type": "DisruptionAllowed",
            "status": "False",
            "reason": "InsufficientPods",
            "message": "",
            "observedGeneration": generation,
            "lastTransitionTime": since,
        }),
    );
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
    fn budgets_refuse_with_kubernetes_messages() {
        let pdb = |allowed: i64, generation: i64, observed: i64| {
            json!({"metadata": {"name": "web", "generation": generation},
                   "status": {"disruptionsAllowed": allowed, "observedGeneration": observed,
                              "desiredHealthy": 2, "currentHealthy": 2}})
        };
        assert!(check_budget(&pdb(1, 1, 1)).is_ok());
        let e = check_budget(&pdb(0, 1, 1)).unwrap_err();
        assert_eq!(e.code, 429);
        assert_eq!(e.message, REFUSED);
        assert_eq!(
            e.causes[0].message,
            "The disruption budget web needs 2 healthy pods and has 2 currently"
        );
        let e = check_budget(&pdb(1, 2, 1)).unwrap_err();
        assert_eq!(e.code, 429);
        assert!(e.causes[0].message.contains("still being processed"));
        assert_eq!(check_budget(&pdb(-1, 1, 1)).unwrap_err().code, 403);
    }

    #[test]
    fn pending_finished_and_terminating_pods_need_no_budget() {
        for phase in ["Pending", "Succeeded", "Failed"] {
            assert!(can_ignore_budget(&json!({"status": {"phase": phase}})));
        }
        assert!(!can_ignore_budget(&json!({"status": {"phase": "Running"}})));
        assert!(can_ignore_budget(
            &json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}, "status": {"phase": "Running"}})
        ));
    }

    #[test]
    fn the_last_disruption_turns_the_condition_false() {
        let mut p = json!({"status": {"observedGeneration": 4, "conditions": [
            {"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
             "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        disallow(&mut p, "2024-01-02T00:00:00Z");
        let c = &p["status"]["conditions"][0];
        assert_eq!(c["status"], "False");
        assert_eq!(c["reason"], "InsufficientPods");
        assert_eq!(c["observedGeneration"], 4);
        assert_eq!(c["lastTransitionTime"], "2024-01-02T00:00:00Z");
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
