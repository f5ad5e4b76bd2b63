//! Tests of server-side apply and managed fields with real Deployment manifests.

use super::*;
use serde_json::json;

/// The registry's `apps/v1` Deployment: all verbs, `status` and `scale` subresources.
fn deployment() -> &'static ResourceKind {
    crate::kinds::by_kind("apps/v1", "Deployment").expect("registered kind")
}

fn t(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_764_000_000 + secs).expect("valid time")
}

/// The manifest of the server-side apply tests (`nginx.yaml`), as kubectl sends it.
fn manifest(
    replicas: Option<i64>,
    image: &str,
    env: &[(&str, &str)],
    labels: &[(&str, &str)],
) -> Value {
    let mut labels_map = Map::new();
    for (k, v) in labels {
        labels_map.insert((*k).to_string(), json!(v));
    }
    let env: Vec<Value> = env
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut container = json!({
        "name": "nginx",
        "image": image,
        "ports": [{"containerPort": 80}],
    });
    if !env.is_empty() {
        container["env"] = Value::Array(env);
    }
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": labels_map},
        "spec": {
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [container]},
            },
        },
    });
    if let Some(r) = replicas {
        d["spec"]["replicas"] = json!(r);
    }
    d
}

/// What the API server stores after creating `obj`: server fields and defaults filled in.
fn as_stored(obj: &Value) -> Value {
    let mut d = obj.clone();
    d["metadata"]["uid"] = json!("0b0b2a4c-1111-4222-8333-944455556666");
    d["metadata"]["resourceVersion"] = json!("101");
    d["metadata"]["generation"] = json!(1);
    d["metadata"]["creationTimestamp"] = json!("2025-11-24T16:00:00Z");
    let spec = &mut d["spec"];
    if spec.get("replicas").is_none() {
        spec["replicas"] = json!(1);
    }
    spec["revisionHistoryLimit"] = json!(10);
    spec["progressDeadlineSeconds"] = json!(600);
    spec["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}});
    let c = &mut spec["template"]["spec"]["containers"][0];
    c["imagePullPolicy"] = json!("Always");
    c["ports"][0]["protocol"] = json!("TCP");
    c["terminationMessagePath"] = json!("/dev/termination-log");
    spec["template"]["spec"]["restartPolicy"] = json!("Always");
    spec["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
    d
}

/// `kubectl apply` (client-side) of `m` on an absent object: a create by
/// `kubectl-client-side-apply` carrying the last-applied annotation.
fn client_side_create(m: &Value) -> Value {
    let mut sent = m.clone();
    sent["metadata"]["annotations"] = json!({ LAST_APPLIED_ANNOTATION: m.to_string() });
    let mut stored = as_stored(&sent);
    update(
        deployment(),
        None,
        &mut stored,
        "kubectl-client-side-apply",
        None,
        t(0),
    );
    stored
}

fn entries(obj: &Value) -> Vec<ManagedEntry> {
    decode(
        obj.pointer("/metadata/managedFields")
            .expect("managedFields"),
    )
    .expect("decodes")
}

fn owner_set(obj: &Value, manager: &str, op: Operation) -> FieldSet {
    entries(obj)
        .into_iter()
        .find(|e| e.manager == manager && e.operation == op)
        .map(|e| e.fields)
        .unwrap_or_default()
}

fn fp(names: &[&str]) -> Vec<PathElement> {
    field_path(names)
}

fn nginx_container() -> PathElement {
    PathElement::key(vec![("name".into(), json!("nginx"))])
}

fn container_path(rest: &[PathElement]) -> Vec<PathElement> {
    let mut p = fp(&["spec", "template", "spec", "containers"]);
    p.push(nginx_container());
    p.extend_from_slice(rest);
    p
}

#[test]
fn create_records_every_field_for_the_creator() {
    let obj = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let list = obj["metadata"]["managedFields"].as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["manager"], "kubectl-client-side-apply");
    assert_eq!(list[0]["operation"], "Update");
    assert_eq!(list[0]["apiVersion"], "apps/v1");
    assert_eq!(list[0]["time"], "2025-11-24T16:00:00Z");
    assert_eq!(list[0]["fieldsType"], "FieldsV1");
    let set = owner_set(&obj, "kubectl-client-side-apply", Operation::Update);
    assert!(set.has(&fp(&["spec", "replicas"])));
    assert!(set.has(&fp(&["metadata", "annotations", LAST_APPLIED_ANNOTATION])));
    assert!(set.has(&container_path(&[])));
    assert!(set.has(&container_path(&fp(&["image"]))));
    assert!(
        set.has(&fp(&["spec", "selector"])),
        "selector is an atomic struct"
    );
    // Server-owned metadata is never owned.
    assert!(!set.has(&fp(&["metadata", "name"])));
    assert!(!set.has(&fp(&["metadata", "uid"])));
    assert!(!set.has(&fp(&["spec"])));
    let fields = &list[0]["fieldsV1"];
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
            .get(r#"k:{"name":"nginx"}"#)
            .is_some()
    );
}

#[test]
fn client_side_apply_then_other_manager_conflicts_on_replicas() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(3), "nginx:1.27", &[], &[("app", "nginx")]);
    let err = apply(deployment(), Some(&live), &applied, "other", false, t(60)).unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(err.reason, Reason::Conflict);
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(err.causes.len(), 1);
    assert_eq!(err.causes[0].reason, "FieldManagerConflict");
    assert_eq!(err.causes[0].field, ".spec.replicas");
    assert_eq!(
        err.causes[0].message,
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );
    let status = err.to_status();
    assert_eq!(status["details"]["causes"][0]["field"], ".spec.replicas");
}

#[test]
fn force_takes_ownership_and_dropping_the_field_then_removes_it() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(3), "nginx:1.27", &[], &[("app", "nginx")]);
    let forced = apply(deployment(), Some(&live), &applied, "other", true, t(60)).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let other = owner_set(&forced, "other", Operation::Apply);
    assert!(other.has(&fp(&["spec", "replicas"])));
    assert!(other.has(&container_path(&fp(&["image"]))));
    let csa = owner_set(&forced, "kubectl-client-side-apply", Operation::Update);
    assert!(!csa.has(&fp(&["spec", "replicas"])), "ownership moved");
    assert!(
        csa.has(&container_path(&fp(&["image"]))),
        "same value: shared"
    );
    let other_entry = entries(&forced)
        .into_iter()
        .find(|e| e.manager == "other")
        .unwrap();
    assert_eq!(other_entry.time.as_deref(), Some("2025-11-24T16:01:00Z"));
    // Apply entries come first, as Kubernetes sorts them.
    assert_eq!(forced["metadata"]["managedFields"][0]["operation"], "Apply");

    // The same manager drops spec.replicas from its manifest: nobody else owns it, it goes.
    let mut live2 = forced.clone();
    live2["metadata"]["resourceVersion"] = json!("102");
    let dropped = manifest(None, "nginx:1.27", &[], &[("app", "nginx")]);
    let out = apply(deployment(), Some(&live2), &dropped, "other", false, t(120)).unwrap();
    assert!(out["spec"].get("replicas").is_none(), "{}", out["spec"]);
    assert!(!owner_set(&out, "other", Operation::Apply).has(&fp(&["spec", "replicas"])));
    // Unowned defaults and fields still owned by others stay.
    assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
}

#[test]
fn applying_the_same_value_is_shared_ownership_not_a_conflict() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]);
    let out = apply(deployment(), Some(&live), &applied, "other", false, t(60)).unwrap();
    assert!(owner_set(&out, "other", Operation::Apply).has(&fp(&["spec", "replicas"])));
    assert!(
        owner_set(&out, "kubectl-client-side-apply", Operation::Update)
            .has(&fp(&["spec", "replicas"]))
    );
    assert_eq!(out["spec"], live["spec"]);
}

#[test]
fn conflicts_are_listed_per_field() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(5), "nginx:1.28", &[], &[("app", "web")]);
    let err = apply(deployment(), Some(&live), &applied, "other", false, t(60)).unwrap_err();
    let fields: Vec<&str> = err.causes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            ".metadata.labels.app",
            ".spec.replicas",
            ".spec.template.spec.containers[name=\"nginx\"].image",
        ]
    );
    assert_eq!(
        err.message,
        "Apply failed with 3 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .metadata.labels.app\n\
         - .spec.replicas\n\
         - .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn apply_creates_with_apply_entry_only() {
    let applied = manifest(Some(2), "nginx:1.27", &[("A", "1")], &[("app", "nginx")]);
    let out = apply(deployment(), None, &applied, "kubectl", false, t(0)).unwrap();
    let mut expected = applied.clone();
    expected["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let mut got = out.clone();
    got["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    assert_eq!(got, expected);
    let list = entries(&out);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].operation, Operation::Apply);
    assert_eq!(list[0].manager, "kubectl");
    let encoded = serde_json::to_string(&out["metadata"]["managedFields"][0]["fieldsV1"]).unwrap();
    assert_eq!(
        encoded,
        r#"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:env":{"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}"#
    );
}

#[test]
fn list_map_items_are_owned_by_key() {
    // Two appliers own different containers and ports of the same Deployment.
    let a = manifest(Some(1), "nginx:1.27", &[], &[("app", "nginx")]);
    let live = apply(deployment(), None, &a, "team-a", false, t(0)).unwrap();
    let live = as_stored(&live);
    let mut b = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "ports": [{"containerPort": 443, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "busybox"}
        ]}}},
    });
    let out = apply(deployment(), Some(&live), &b, "team-b", false, t(10)).unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "nginx:1.27", "merged by name");
    let ports: Vec<&Value> = containers[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["containerPort"])
        .collect();
    assert_eq!(ports, vec![&json!(80), &json!(443)]);
    let team_b = owner_set(&out, "team-b", Operation::Apply);
    let https = PathElement::key(vec![
        ("containerPort".into(), json!(443)),
        ("protocol".into(), json!("TCP")),
    ]);
    let http = PathElement::key(vec![
        ("containerPort".into(), json!(80)),
        ("protocol".into(), json!("TCP")),
    ]);
    assert!(team_b.has(&container_path(&[
        PathElement::Field("ports".into()),
        https.clone()
    ])));
    assert!(!team_b.has(&container_path(&[
        PathElement::Field("ports".into()),
        http.clone()
    ])));
    let team_a = owner_set(&out, "team-a", Operation::Apply);
    assert!(team_a.has(&container_path(&[PathElement::Field("ports".into()), http])));

    // team-b drops its port: only 443 goes, team-a's port and container stay.
    b["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("ports");
    let out2 = apply(deployment(), Some(&out), &b, "team-b", false, t(20)).unwrap();
    let c0 = &out2["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c0["ports"].as_array().unwrap().len(), 1);
    assert_eq!(c0["ports"][0]["containerPort"], 80);
    // team-b drops the sidecar container entirely.
    b["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let out3 = apply(deployment(), Some(&out2), &b, "team-b", false, t(30)).unwrap();
    let names: Vec<&Value> = out3["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    assert_eq!(names, vec![&json!("nginx")]);
    let sidecar = PathElement::key(vec![("name".into(), json!("sidecar"))]);
    let mut sidecar_path = fp(&["spec", "template", "spec", "containers"]);
    sidecar_path.push(sidecar);
    assert!(!owner_set(&out3, "team-b", Operation::Apply).has(&sidecar_path));
}

#[test]
fn dropped_env_var_and_label_are_removed() {
    let first = manifest(
        Some(1),
        "nginx:1.27",
        &[("A", "1"), ("B", "2")],
        &[("app", "nginx"), ("tier", "web")],
    );
    let live = as_stored(&apply(deployment(), None, &first, "kubectl", false, t(0)).unwrap());
    let second = manifest(Some(1), "nginx:1.27", &[("A", "1")], &[("app", "nginx")]);
    let out = apply(deployment(), Some(&live), &second, "kubectl", false, t(10)).unwrap();
    let env = out["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert_eq!(env, &vec![json!({"name": "A", "value": "1"})]);
    assert_eq!(out["metadata"]["labels"], json!({"app": "nginx"}));
    let set = owner_set(&out, "kubectl", Operation::Apply);
    assert!(!set.has(&fp(&["metadata", "labels", "tier"])));
    // Defaults nobody owns survive.
    assert_eq!(out["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
}

#[test]
fn dropped_field_another_manager_owns_stays() {
    let labels = &[("app", "nginx"), ("tier", "web")];
    let live = as_stored(
        &apply(
            deployment(),
            None,
            &manifest(Some(1), "nginx:1.27", &[], labels),
            "a",
            false,
            t(0),
        )
        .unwrap(),
    );
    let live = apply(
        deployment(),
        Some(&live),
        &manifest(Some(1), "nginx:1.27", &[], labels),
        "b",
        false,
        t(5),
    )
    .unwrap();
    let out = apply(
        deployment(),
        Some(&live),
        &manifest(Some(1), "nginx:1.27", &[], &[("app", "nginx")]),
        "a",
        false,
        t(10),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"]["tier"], "web");
    assert!(!owner_set(&out, "a", Operation::Apply).has(&fp(&["metadata", "labels", "tier"])));
    assert!(owner_set(&out, "b", Operation::Apply).has(&fp(&["metadata", "labels", "tier"])));
}

#[test]
fn update_takes_changed_fields_from_other_managers() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    edited["metadata"]["labels"]["team"] = json!("blue");
    update(
        deployment(),
        Some(&live),
        &mut edited,
        "kubectl-edit",
        None,
        t(30),
    );
    let edit = owner_set(&edited, "kubectl-edit", Operation::Update);
    assert!(edit.has(&container_path(&fp(&["image"]))));
    assert!(edit.has(&fp(&["metadata", "labels", "team"])));
    assert!(
        !edit.has(&fp(&["spec", "replicas"])),
        "unchanged fields are not taken"
    );
    let csa = owner_set(&edited, "kubectl-client-side-apply", Operation::Update);
    assert!(!csa.has(&container_path(&fp(&["image"]))));
    assert!(csa.has(&fp(&["spec", "replicas"])));

    // A status write is recorded with its subresource; status is not owned on the main resource.
    let mut with_status = edited.clone();
    with_status["status"] = json!({"replicas": 2, "observedGeneration": 1});
    update(
        deployment(),
        Some(&edited),
        &mut with_status,
        "deployment-controller",
        Some("status"),
        t(40),
    );
    let list = with_status["metadata"]["managedFields"].as_array().unwrap();
    let ctrl = list
        .iter()
        .find(|e| e["manager"] == "deployment-controller")
        .expect("controller entry");
    assert_eq!(ctrl["subresource"], "status");
    assert!(ctrl["fieldsV1"]["f:status"].get("f:replicas").is_some());

    // Applying status to the main resource does not own it and does not conflict.
    let mut applied = manifest(Some(2), "nginx:1.28", &[], &[("app", "nginx")]);
    applied["status"] = json!({"replicas": 7});
    let out = apply(
        deployment(),
        Some(&with_status),
        &applied,
        "other",
        true,
        t(50),
    )
    .unwrap();
    assert!(!owner_set(&out, "other", Operation::Apply).has(&fp(&["status", "replicas"])));
    assert!(
        owner_set(&out, "deployment-controller", Operation::Update)
            .has(&fp(&["status", "replicas"]))
    );
}

#[test]
fn update_with_no_change_keeps_entries_and_removed_fields_lose_owners() {
    let live = client_side_create(&manifest(
        Some(2),
        "nginx:1.27",
        &[],
        &[("app", "nginx"), ("x", "y")],
    ));
    let mut same = live.clone();
    update(deployment(), Some(&live), &mut same, "someone", None, t(30));
    assert_eq!(
        same["metadata"]["managedFields"],
        live["metadata"]["managedFields"]
    );
    let mut removed = live.clone();
    removed["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("x");
    update(
        deployment(),
        Some(&live),
        &mut removed,
        "someone",
        None,
        t(30),
    );
    assert!(
        !owner_set(&removed, "kubectl-client-side-apply", Operation::Update)
            .has(&fp(&["metadata", "labels", "x"]))
    );
    assert!(entries(&removed).iter().all(|e| e.manager != "someone"));
    // Sending managedFields: [] resets them.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([]);
    reset["spec"]["replicas"] = json!(4);
    update(
        deployment(),
        Some(&live),
        &mut reset,
        "someone",
        None,
        t(30),
    );
    let list = entries(&reset);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].manager, "someone");
}

#[test]
fn kubectl_server_side_apply_takes_over_from_client_side_apply() {
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(3), "nginx:1.27", &[], &[("app", "nginx")]);
    let out = apply(deployment(), Some(&live), &applied, "kubectl", false, t(60)).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    assert!(owner_set(&out, "kubectl", Operation::Apply).has(&fp(&["spec", "replicas"])));
    let annotation = meta::annotation(&out, LAST_APPLIED_ANNOTATION).unwrap();
    let parsed: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(parsed["spec"]["replicas"], 3);
    // A field the client-side apply did not apply still conflicts.
    let mut live2 = out.clone();
    let mut edited = live2.clone();
    edited["spec"]["paused"] = json!(true);
    update(
        deployment(),
        Some(&live2),
        &mut edited,
        "kubectl-edit",
        None,
        t(70),
    );
    live2 = edited;
    let mut applied2 = applied.clone();
    applied2["spec"]["paused"] = json!(false);
    let err = apply(
        deployment(),
        Some(&live2),
        &applied2,
        "kubectl",
        false,
        t(80),
    )
    .unwrap_err();
    assert_eq!(err.causes[0].field, ".spec.paused");
    assert_eq!(
        err.causes[0].message,
        "conflict with \"kubectl-edit\" using apps/v1"
    );
}

#[test]
fn first_apply_to_an_object_without_managed_fields_records_before_first_apply() {
    let live = as_stored(&manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]));
    let applied = manifest(Some(3), "nginx:1.27", &[], &[("app", "nginx")]);
    let err = apply(deployment(), Some(&live), &applied, "other", false, t(60)).unwrap_err();
    assert_eq!(
        err.causes[0].message,
        "conflict with \"before-first-apply\" using apps/v1"
    );
}

#[test]
fn apply_conflicts_with_apply_managers_are_named_without_version() {
    let live = as_stored(
        &apply(
            deployment(),
            None,
            &manifest(Some(2), "nginx:1.27", &[], &[]),
            "a",
            false,
            t(0),
        )
        .unwrap(),
    );
    let err = apply(
        deployment(),
        Some(&live),
        &manifest(Some(4), "nginx:1.27", &[], &[]),
        "b",
        false,
        t(1),
    )
    .unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );
}

#[test]
fn bad_applied_configurations_are_rejected() {
    let mut m = manifest(Some(1), "nginx", &[], &[]);
    m["kind"] = json!("StatefulSet");
    assert_eq!(
        apply(deployment(), None, &m, "x", false, t(0))
            .unwrap_err()
            .code,
        400
    );
    let mut m = manifest(Some(1), "nginx", &[], &[]);
    m["metadata"]["managedFields"] = json!([]);
    assert_eq!(
        apply(deployment(), None, &m, "x", false, t(0))
            .unwrap_err()
            .code,
        400
    );
    let mut m = manifest(Some(1), "nginx", &[], &[]);
    m["spec"]["template"]["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("name");
    assert_eq!(
        apply(deployment(), None, &m, "x", false, t(0))
            .unwrap_err()
            .code,
        400
    );
}

#[test]
fn set_lists_are_unioned_and_owned_by_value() {
    let mut first = manifest(Some(1), "nginx:1.27", &[], &[]);
    first["metadata"]["finalizers"] = json!(["example.com/a"]);
    let live = as_stored(&apply(deployment(), None, &first, "a", false, t(0)).unwrap());
    let mut second = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "finalizers": ["example.com/b"]},
    });
    let out = apply(deployment(), Some(&live), &second, "b", false, t(1)).unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/b"])
    );
    let b = &out["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "b")
        .unwrap()["fieldsV1"];
    assert_eq!(
        b,
        &json!({"f:metadata": {"f:finalizers": {"v:\"example.com/b\"": {}}}})
    );
    // b drops its finalizer: a's stays.
    second["metadata"]["finalizers"] = json!([]);
    let out2 = apply(deployment(), Some(&out), &second, "b", false, t(2)).unwrap();
    assert_eq!(out2["metadata"]["finalizers"], json!(["example.com/a"]));
}

#[test]
fn update_managers_are_capped_with_ancient_changes() {
    let mut live = client_side_create(&manifest(Some(1), "nginx:1.27", &[], &[]));
    for i in 0..12 {
        let mut next = live.clone();
        next["metadata"]["labels"] = json!({ format!("l{i}"): "x" });
        // keep earlier labels so that every manager keeps something
        if let Some(prev) = live["metadata"]["labels"].as_object() {
            for (k, v) in prev {
                next["metadata"]["labels"][k] = v.clone();
            }
        }
        update(
            deployment(),
            Some(&live),
            &mut next,
            &format!("m{i}"),
            None,
            t(10 + i),
        );
        live = next;
    }
    let list = entries(&live);
    let updates = list
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .count();
    assert_eq!(updates, MAX_UPDATE_MANAGERS);
    let ancient = list
        .iter()
        .find(|e| e.manager == ANCIENT_CHANGES)
        .expect("bucket");
    // The oldest writers' fields are kept in the bucket.
    assert!(ancient.fields.has(&fp(&["spec", "replicas"])));
    assert!(list.iter().any(|e| e.manager == "m11"));
}

#[test]
fn decodes_kubernetes_managed_fields_with_several_entries() {
    let list = json!([
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
         "time": "2025-11-24T16:01:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2025-11-24T16:00:30Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
                      "f:status": {"f:replicas": {}}},
         "subresource": "status"},
        {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "apps/v1",
         "time": "2025-11-24T16:00:00Z", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:paused": {}}}}
    ]);
    let decoded = decode(&list).unwrap();
    assert_eq!(decoded.len(), 3);
    assert_eq!(decoded[1].subresource, "status");
    // Re-encoding sorts Update entries by time and reproduces the entries exactly.
    let encoded = encode(&decoded);
    assert_eq!(encoded[0], list[0]);
    assert_eq!(encoded[1], list[2]);
    assert_eq!(encoded[2], list[1]);
    assert!(decode(&json!({})).is_err());
    assert!(decode(&json!([{"operation": "Patch"}])).is_err());
}

#[test]
fn null_facing_an_object_records_only_the_fields_below() {
    let node = schema::root(deployment());
    let old = json!({"spec": {"template": {"spec": {"securityContext": null}}}});
    let new = json!({"spec": {"template": {"spec": {"securityContext": {"runAsUser": 1000}}}}});
    let cmp = typed::compare(&node, Some(&old), Some(&new)).unwrap();
    let mut expected = FieldSet::new();
    expected.insert(&fp(&[
        "spec",
        "template",
        "spec",
        "securityContext",
        "runAsUser",
    ]));
    assert_eq!(cmp.added, expected);
    assert!(cmp.modified.is_empty());
    assert!(cmp.removed.is_empty());
}

#[test]
fn create_matches_kubernetes_for_kubectl_create_deployment() {
    // `kubectl create deployment nginx --image=nginx` as stored by Kubernetes 1.33 (defaults
    // filled in before the field manager runs).
    let mut obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"},
                     "creationTimestamp": "2025-11-24T16:00:00Z"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx", "resources": {},
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600
        }
    });
    update(deployment(), None, &mut obj, "kubectl-create", None, t(0));
    let got = &obj["metadata"]["managedFields"][0]["fieldsV1"];
    let want: Value = serde_json::from_str(
        r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#,
    )
    .unwrap();
    let got_set = FieldSet::from_fields_v1(got).unwrap();
    let want_set = FieldSet::from_fields_v1(&want).unwrap();
    let extra: Vec<String> = got_set
        .difference(&want_set)
        .paths()
        .iter()
        .map(ToString::to_string)
        .collect();
    let missing: Vec<String> = want_set
        .difference(&got_set)
        .paths()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}");
    assert_eq!(extra, Vec::<String>::new());
    // Byte for byte, as kubectl shows it.
    assert_eq!(got.to_string(), want.to_string());
}

#[test]
fn pod_volumes_empty_structs_and_owner_references() {
    let pod_kind = ResourceKind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: crate::kinds::ALL_VERBS,
        subresources: &[],
        schema_name: "io.k8s.api.core.v1.Pod",
        storage: ("", "pods"),
    };
    let applied = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                 "uid": "1234", "controller": true}]
        },
        "spec": {
            "containers": [{"name": "web", "image": "nginx",
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
            "volumes": [{"name": "scratch", "emptyDir": {}}],
            "tolerations": [{"key": "a", "operator": "Exists"}]
        }
    });
    let out = apply(&pod_kind, None, &applied, "ctl", false, t(0)).unwrap();
    let fields = &out["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:volumes"],
        json!({"k:{\"name\":\"scratch\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}})
    );
    assert!(
        fields["f:metadata"]["f:ownerReferences"]
            .get("k:{\"uid\":\"1234\"}")
            .is_some()
    );
    assert!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:volumeMounts"]
            .get("k:{\"mountPath\":\"/scratch\"}")
            .is_some()
    );
    // Tolerations are an atomic list: owned as a whole.
    assert_eq!(fields["f:spec"]["f:tolerations"], json!({}));
}

#[test]
fn kubectl_upgrade_of_client_side_managers_then_dropping_a_label_removes_it() {
    // kubectl apply (client-side), then `kubectl apply --server-side`: kubectl first rewrites
    // managedFields with a JSON patch that moves the client-side manager's fields into its own
    // Apply entry (csaupgrade), then applies.
    let labels = &[("app", "nginx"), ("tier", "web")];
    let live = client_side_create(&manifest(Some(2), "nginx:1.27", &[], labels));
    let mut upgraded = live.clone();
    let mut list = entries(&live);
    for e in &mut list {
        if e.manager == "kubectl-client-side-apply" {
            e.manager = "kubectl".into();
            e.operation = Operation::Apply;
        }
    }
    upgraded["metadata"]["managedFields"] = encode(&list);
    update(
        deployment(),
        Some(&live),
        &mut upgraded,
        "kubectl",
        None,
        t(50),
    );
    assert_eq!(
        entries(&upgraded),
        list,
        "managedFields sent by the client are kept"
    );
    let out = apply(
        deployment(),
        Some(&upgraded),
        &manifest(Some(2), "nginx:1.27", &[], &[("app", "nginx")]),
        "kubectl",
        false,
        t(60),
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"app": "nginx"}));
}

#[test]
fn associative_list_merge_keeps_live_items_in_place_and_follows_the_configuration_order() {
    let node = schema::root(deployment());
    let containers = |names: &[&str]| {
        let items: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "image": format!("{n}:live")}))
            .collect();
        json!({"spec": {"template": {"spec": {"containers": items}}}})
    };
    let names = |v: &Value| -> Vec<String> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let config = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "b", "image": "b:new"}, {"name": "c", "image": "c:new"}
    ]}}}});
    let merged = typed::merge(&node, &containers(&["a", "b"]), &config).unwrap();
    assert_eq!(names(&merged), vec!["a", "b", "c"]);
    assert_eq!(
        merged["spec"]["template"]["spec"]["containers"][1]["image"],
        "b:new"
    );
    let swapped = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "b"}, {"name": "a"}
    ]}}}});
    let merged = typed::merge(&node, &containers(&["a", "b"]), &swapped).unwrap();
    assert_eq!(names(&merged), vec!["b", "a"]);
    assert_eq!(
        merged["spec"]["template"]["spec"]["containers"][1]["image"],
        "a:live"
    );
    // Duplicate keys in an applied configuration are an error, not a panic.
    let dup =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "x"}, {"name": "x"}]}}}});
    assert!(typed::merge(&node, &containers(&["a"]), &dup).is_err());
}

/// A small JSON object over the keys `a`, `b`, `c`: nested maps and leaves.
fn arb_object() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![(0..3i64).prop_map(|n| json!(n)), Just(Value::Null)];
    let tree = leaf.prop_recursive(3, 24, 3, |inner| {
        proptest::collection::btree_map(prop_oneof!["a", "b", "c"], inner, 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    });
    proptest::collection::btree_map(prop_oneof!["a", "b", "c"], tree, 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest::proptest! {
    #[test]
    fn comparing_around_ignored_fields_matches_dropping_them_afterwards(
        old in arb_object(),
        new in arb_object(),
        ignored in proptest::collection::vec(
            proptest::collection::vec(proptest::prop_oneof!["a", "b", "c"], 1..4),
            0..4,
        ),
    ) {
        let mut set = FieldSet::new();
        for p in &ignored {
            let names: Vec<&str> = p.iter().map(String::as_str).collect();
            set.insert(&fp(&names));
        }
        let node = Node::Untyped;
        let full = typed::compare(&node, Some(&old), Some(&new)).unwrap();
        let skipped = typed::compare_ignoring(&node, Some(&old), Some(&new), &set).unwrap();
        proptest::prop_assert_eq!(skipped.added, full.added.recursive_difference(&set));
        proptest::prop_assert_eq!(skipped.modified, full.modified.recursive_difference(&set));
        proptest::prop_assert_eq!(skipped.removed, full.removed.recursive_difference(&set));
    }
}
