use serde_json::json;

use super::*;

use crate::testutil::DEPLOYMENT;

const POD: ResourceKind = ResourceKind {
    plural: "pods",
    singular: "pod",
    schema_name: "io.k8s.api.core.v1.Pod",
    storage: ("", "pods"),
    ..crate::testutil::kind("", "v1", "Pod", true)
};

/// A live Deployment as the API server stores it after `kubectl apply` and defaulting.
fn live_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["example.com/a", "example.com/b"]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [
                                {"name": "A", "value": "1"},
                                {"name": "B", "value": "2"}
                            ],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "terminationMessagePath": "/dev/termination-log"
                        },
                        {"name": "sidecar", "image": "busybox", "args": ["sleep", "3600"]}
                    ],
                    "volumes": [
                        {"name": "cache", "emptyDir": {}},
                        {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}}
                    ],
                    "restartPolicy": "Always"
                }
            }
        }
    })
}

fn smp(original: &Value, patch: Value) -> Value {
    strategic_merge_patch(&DEPLOYMENT, original, &patch).expect("patch applies")
}

fn containers(obj: &Value) -> &Vec<Value> {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
}

#[test]
fn kubectl_reapply_changes_env_keeps_ports() {
    // What kubectl apply sends after env A changed to 10 and env B was removed from the file.
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "A"}],
                "$setElementOrder/ports": [{"containerPort": 80}],
                "env": [{"name": "A", "value": "10"}, {"$patch": "delete", "name": "B"}],
                "name": "web"
            }]
        }}}
    });
    let out = smp(&live_deployment(), patch);
    let c = containers(&out);
    assert_eq!(c.len(), 2);
    assert_eq!(c[0]["name"], "web");
    assert_eq!(c[1]["name"], "sidecar");
    assert_eq!(c[0]["env"], json!([{"name": "A", "value": "10"}]));
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c[0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c[0]["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c[1]["args"], json!(["sleep", "3600"]));
    assert_eq!(
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
        "{\"new\":1}"
    );
    // No directive survives.
    assert!(!out.to_string().contains('$'));
}

#[test]
fn set_element_order_reorders_and_appends_new_items() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "extra"}, {"name": "web"}],
        "containers": [{"name": "extra", "image": "redis"}]
    }}}});
    let out = smp(&live_deployment(), patch);
    let names: Vec<&str> = containers(&out)
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["sidecar", "extra", "web"]);
}

#[test]
fn merge_by_key_appends_new_items_in_patch_order() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "z", "image": "z"},
        {"name": "web", "image": "nginx:1.27"},
        {"name": "y", "image": "y"}
    ]}}}});
    let out = smp(&live_deployment(), patch);
    let names: Vec<&str> = containers(&out)
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default())
        .collect();
    // Patch items keep patch order, server-only items keep their place relative to the server list.
    assert_eq!(names, ["z", "web", "y", "sidecar"]);
    assert_eq!(containers(&out)[1]["image"], "nginx:1.27");
    assert_eq!(containers(&out)[1]["env"][1]["name"], "B");
}

#[test]
fn delete_directive_removes_container() {
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"$patch": "delete", "name": "sidecar"}]
    }}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(containers(&out).len(), 1);
    assert_eq!(containers(&out)[0]["name"], "web");
}

#[test]
fn retain_keys_on_strategy_drops_rolling_update() {
    // kubectl apply after changing the strategy type from RollingUpdate to Recreate.
    let patch = json!({"spec": {"strategy": {
        "$retainKeys": ["type"],
        "type": "Recreate",
        "rollingUpdate": null
    }}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_rejects_fields_not_listed() {
    let patch =
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}});
    let err = strategic_merge_patch(&DEPLOYMENT, &live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        PatchError::Malformed("invalid patch format of retainKeys".into())
    );
    assert_eq!(ApiError::from(err).code, 400);
}

#[test]
fn volumes_merge_by_name_with_retain_keys() {
    // Switching volume "config" from a ConfigMap to a Secret, as kubectl apply sends it.
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/volumes": [{"name": "cache"}, {"name": "config"}, {"name": "data"}],
        "volumes": [
            {"$retainKeys": ["name", "secret"], "name": "config", "secret": {"secretName": "web"}, "configMap": null},
            {"name": "data", "emptyDir": {"medium": "Memory"}}
        ]
    }}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([
            {"name": "cache", "emptyDir": {}},
            {"name": "config", "secret": {"secretName": "web"}},
            {"name": "data", "emptyDir": {"medium": "Memory"}}
        ])
    );
}

#[test]
fn primitive_list_merge_unions_finalizers() {
    let patch = json!({"metadata": {"finalizers": ["example.com/c", "example.com/a"]}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["example.com/c", "example.com/a", "example.com/b"])
    );
}

#[test]
fn delete_from_primitive_list() {
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["example.com/b"],
        "$deleteFromPrimitiveList/finalizers": ["example.com/a"]
    }});
    let out = smp(&live_deployment(), patch);
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/b"]));
}

#[test]
fn atomic_lists_are_replaced_and_nulls_delete() {
    let patch = json!({"spec": {"replicas": null, "template": {"spec": {"containers": [
        {"name": "sidecar", "args": ["sleep", "1"]}
    ]}}}});
    let out = smp(&live_deployment(), patch);
    assert!(out["spec"].get("replicas").is_none());
    assert_eq!(containers(&out)[1]["args"], json!(["sleep", "1"]));
}

#[test]
fn patch_replace_directive_on_map_and_list() {
    let patch = json!({"spec": {"selector": {"$patch": "replace", "matchLabels": {"tier": "x"}}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(
        out["spec"]["selector"],
        json!({"matchLabels": {"tier": "x"}})
    );

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "only", "image": "x"},
        {"$patch": "replace"}
    ]}}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(
        containers(&out),
        &vec![json!({"name": "only", "image": "x"})]
    );
}

#[test]
fn patch_delete_directive_on_map() {
    let patch = json!({"metadata": {"annotations": {"$patch": "delete"}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(out["metadata"]["annotations"], json!({}));
}

#[test]
fn labels_merge_as_maps() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}});
    let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}});
    let out = strategic_merge_patch(&POD, &pod, &patch).expect("applies");
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
}

#[test]
fn missing_merge_key_is_a_server_error() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
    let err = strategic_merge_patch(&DEPLOYMENT, &live_deployment(), &patch).unwrap_err();
    assert_eq!(
        err,
        PatchError::Failed("map: map[image:x] does not contain declared merge key: name".into())
    );
    assert_eq!(ApiError::from(err).code, 500);
}

#[test]
fn smp_rejects_non_object_patch() {
    let err = strategic_merge_patch(&DEPLOYMENT, &live_deployment(), &json!([1])).unwrap_err();
    let api = ApiError::from(err);
    assert_eq!(api.code, 400);
    assert!(api.message.contains("cannot unmarshal array"));
}

#[test]
fn json_patch_applies_and_fails_like_kubernetes() {
    let obj = live_deployment();
    let out = json_patch(
        &obj,
        &json!([
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
            {"op": "remove", "path": "/spec/template/spec/containers/1"}
        ]),
    )
    .expect("applies");
    assert_eq!(out["spec"]["replicas"], 3);
    assert_eq!(out["metadata"]["labels"], json!({"x": "y"}));
    assert_eq!(containers(&out).len(), 1);

    let failed = json_patch(
        &obj,
        &json!([{"op": "test", "path": "/spec/replicas", "value": 5}]),
    )
    .unwrap_err();
    let api = ApiError::from(failed);
    assert_eq!((api.code, api.reason), (422, Reason::Invalid));
    assert_eq!(
        api.message,
        "the server rejected our request due to an error in our request"
    );

    let missing = json_patch(&obj, &json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
    assert_eq!(ApiError::from(missing).code, 422);

    let malformed = json_patch(&obj, &json!({"op": "add"})).unwrap_err();
    assert_eq!(ApiError::from(malformed).code, 400);
    let bad_op = json_patch(&obj, &json!([{"op": "frobnicate", "path": "/a"}])).unwrap_err();
    assert_eq!(ApiError::from(bad_op).code, 400);
}

#[test]
fn merge_patch_follows_rfc_7386() {
    let obj = live_deployment();
    let out = merge_patch(
        &obj,
        &json!({"spec": {"replicas": 5, "strategy": {"rollingUpdate": null}},
                "metadata": {"finalizers": ["x"]}}),
    )
    .expect("applies");
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(out["spec"]["strategy"], json!({"type": "RollingUpdate"}));
    // Lists are replaced, not merged.
    assert_eq!(out["metadata"]["finalizers"], json!(["x"]));
    let err = merge_patch(&obj, &json!("x")).unwrap_err();
    assert_eq!(ApiError::from(err).code, 400);
}

#[test]
fn unknown_fields_merge_like_json() {
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "custom": {"a": 1, "b": null}}
    ]}}}});
    let out = smp(&live_deployment(), patch);
    assert_eq!(containers(&out)[0]["custom"], json!({"a": 1}));
}

#[test]
fn service_ports_merge_by_port() {
    let svc_kind = ResourceKind {
        kind: "Service",
        plural: "services",
        singular: "service",
        schema_name: "io.k8s.api.core.v1.Service",
        storage: ("", "services"),
        ..POD
    };
    let svc = json!({"spec": {"ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}
    ]}});
    let patch = json!({"spec": {"ports": [{"port": 443, "targetPort": 9443}]}});
    let out = strategic_merge_patch(&svc_kind, &svc, &patch).expect("applies");
    assert_eq!(out["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(out["spec"]["ports"][1]["targetPort"], 9443);
    assert_eq!(out["spec"]["ports"][1]["name"], "https");
}

#[test]
fn replace_strategy_field_is_replaced_whole() {
    let pdb_kind = ResourceKind {
        group: "policy",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        schema_name: "io.k8s.api.policy.v1.PodDisruptionBudget",
        storage: ("policy", "poddisruptionbudgets"),
        ..POD
    };
    let pdb = json!({"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web", "tier": "fe"}}}});
    let patch = json!({"spec": {"selector": {"matchLabels": {"app": "api"}}}});
    let out = strategic_merge_patch(&pdb_kind, &pdb, &patch).expect("applies");
    assert_eq!(
        out["spec"]["selector"],
        json!({"matchLabels": {"app": "api"}})
    );
    assert_eq!(out["spec"]["minAvailable"], 1);
}

fn pod_with_containers(names: &[(&str, &str)]) -> Value {
    let containers: Vec<Value> = names
        .iter()
        .map(|(n, image)| json!({"name": n, "image": image}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": containers}})
}

fn names(obj: &Value, list: &str) -> Vec<String> {
    obj["spec"][list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn server_only_item_placement_after_delete_and_add() {
    // "d" was added by another writer; the apply removes "a" and adds "b" and "c".
    // kube-apiserver's in-place slice edits put the server-only item first here.
    let live = pod_with_containers(&[("a", "x"), ("d", "y")]);
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "c"}],
        "containers": [
            {"name": "b", "image": "b"},
            {"name": "c", "image": "c"},
            {"$patch": "delete", "name": "a"}
        ]
    }});
    let out = strategic_merge_patch(&POD, &live, &patch).expect("applies");
    assert_eq!(names(&out, "containers"), ["d", "b", "c"]);

    // Without a deletion the server-only item stays after the applied ones.
    let live = pod_with_containers(&[("a", "x"), ("d", "y")]);
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b", "image": "b"}]
    }});
    let out = strategic_merge_patch(&POD, &live, &patch).expect("applies");
    assert_eq!(names(&out, "containers"), ["a", "b", "d"]);
}

#[test]
fn delete_in_one_list_reorder_another() {
    let mut live = pod_with_containers(&[("a", "a"), ("b", "b")]);
    live["spec"]["initContainers"] =
        json!([{"name": "c", "image": "c"}, {"name": "d", "image": "d"}]);
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "b"}],
        "$setElementOrder/initContainers": [{"name": "d"}, {"name": "c"}],
        "containers": [{"$patch": "delete", "name": "a"}]
    }});
    let out = strategic_merge_patch(&POD, &live, &patch).expect("applies");
    assert_eq!(names(&out, "containers"), ["b"]);
    assert_eq!(names(&out, "initContainers"), ["d", "c"]);
}

#[test]
fn set_element_order_may_name_absent_items() {
    let live = pod_with_containers(&[("1", "old"), ("3", "old")]);
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
        "containers": [{"name": "3", "image": "three"}, {"name": "1", "image": "one"}]
    }});
    let out = strategic_merge_patch(&POD, &live, &patch).expect("applies");
    assert_eq!(names(&out, "containers"), ["3", "1"]);
    assert_eq!(out["spec"]["containers"][0]["image"], "three");
}

#[test]
fn set_element_order_must_agree_with_patch_list() {
    let live = pod_with_containers(&[("1", "x"), ("2", "x")]);
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}],
        "containers": [{"name": "2", "image": "y"}, {"name": "1", "image": "y"}]
    }});
    let err = strategic_merge_patch(&POD, &live, &patch).unwrap_err();
    assert!(matches!(&err, PatchError::Failed(m) if m.starts_with("The order in patch list")));
}

#[test]
fn primitive_order_then_delete() {
    let live = json!({"metadata": {"name": "p", "finalizers": ["1", "2", "3", "4"]}});
    let patch = json!({"metadata": {
        "$setElementOrder/finalizers": ["1", "2"],
        "$deleteFromPrimitiveList/finalizers": ["3"]
    }});
    let out = strategic_merge_patch(&POD, &live, &patch).expect("applies");
    assert_eq!(out["metadata"]["finalizers"], json!(["1", "2", "4"]));
}

#[test]
fn bad_directives_are_rejected() {
    let live = live_deployment();
    let cases = [
        (
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            400,
        ),
        (json!({"spec": {"$setElementOrder": []}}), 400),
        (json!({"spec": {"strategy": {"$retainKeys": "type"}}}), 400),
        (json!({"spec": {"selector": {"$patch": "frobnicate"}}}), 500),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
            500,
        ),
        (
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web"}, "x"]}}}}),
            500,
        ),
    ];
    for (patch, code) in cases {
        let err = strategic_merge_patch(&DEPLOYMENT, &live, &patch).unwrap_err();
        assert_eq!(ApiError::from(err.clone()).code, code, "{patch}: {err}");
    }
}

fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..5).prop_map(|n| json!(n)),
        "[a-c]{1,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Without a schema and without directives, a strategic merge patch is a JSON merge patch.
    #[test]
    fn untyped_strategic_merge_is_json_merge(
        original in proptest::collection::btree_map("[a-d]", arb_json(), 0..4),
        patch in proptest::collection::btree_map("[a-d]", arb_json(), 0..4),
    ) {
        let unknown = ResourceKind { schema_name: "io.example.v1.Unknown", ..POD };
        let original = Value::Object(original.into_iter().collect());
        let patch = Value::Object(patch.into_iter().collect());
        let smp = strategic_merge_patch(&unknown, &original, &patch);
        let merge = merge_patch(&original, &patch);
        proptest::prop_assert_eq!(smp, merge);
    }
}

#[test]
fn fields_keep_their_order() {
    let patch = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "env": null}
    ]}}}});
    let out = smp(&live_deployment(), patch);
    let keys: Vec<&String> = out["spec"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["replicas", "selector", "strategy", "template"]);
    let c: Vec<&String> = containers(&out)[0]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        c,
        [
            "name",
            "image",
            "imagePullPolicy",
            "ports",
            "terminationMessagePath"
        ]
    );
    let replaced = smp(
        &live_deployment(),
        json!({"spec": {"selector": {"$patch": "replace", "matchLabels": {"b": "1"}, "matchExpressions": []}}}),
    );
    let keys: Vec<&String> = replaced["spec"]["selector"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["matchLabels", "matchExpressions"]);
}
