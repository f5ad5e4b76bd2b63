use super::*;
use crate::kinds;
use crate::testutil::DEPLOYMENT;

fn walk(mut node: Node, path: &[&str]) -> Node {
    for step in path {
        node = match node {
            Node::Struct(name) => field(&name, step).unwrap_or_else(|| panic!("no field {step}")),
            Node::List { element, .. } => *element,
            Node::Map { value, .. } => *value,
            other => panic!("cannot walk {other:?}"),
        };
    }
    node
}

#[test]
fn deployment_containers_merge_by_name() {
    let node = walk(
        root(&DEPLOYMENT),
        &["spec", "template", "spec", "containers"],
    );
    let Node::List {
        element,
        list_type,
        patch,
    } = node
    else {
        panic!("containers is not a list");
    };
    assert_eq!(
        *element,
        Node::Struct("io.k8s.api.core.v1.Container".into())
    );
    assert_eq!(
        list_type,
        ListType::Map {
            keys: vec!["name".into()]
        }
    );
    assert_eq!(patch.merge_key.as_deref(), Some("name"));
    assert!(patch.merge);
}

#[test]
fn container_ports_map_keys() {
    let Some(Node::List {
        list_type, patch, ..
    }) = field("io.k8s.api.core.v1.Container", "ports")
    else {
        panic!("ports is not a list");
    };
    assert_eq!(
        list_type,
        ListType::Map {
            keys: vec!["containerPort".into(), "protocol".into()]
        }
    );
    assert_eq!(patch.merge_key.as_deref(), Some("containerPort"));
}

#[test]
fn scalars_maps_and_untyped() {
    let c = "io.k8s.api.core.v1.Container";
    assert_eq!(field(c, "image"), Some(Node::Scalar));
    assert_eq!(field(c, "imagePullPolicyy"), None);
    let limits = walk(Node::Struct(c.into()), &["resources", "limits"]);
    assert_eq!(
        limits,
        Node::Map {
            value: Box::new(Node::Scalar),
            atomic: false
        }
    );
    let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    assert_eq!(
        field(meta, "labels"),
        Some(Node::Map {
            value: Box::new(Node::Scalar),
            atomic: false
        })
    );
    assert_eq!(field(meta, "creationTimestamp"), Some(Node::Scalar));
    let rev = "io.k8s.api.apps.v1.ControllerRevision";
    assert_eq!(field(rev, "data"), Some(Node::Untyped));
    assert!(matches!(
        field("io.k8s.api.core.v1.PodSpec", "tolerations"),
        Some(Node::List {
            list_type: ListType::Atomic,
            ..
        })
    ));
    assert!(matches!(
        field(meta, "finalizers"),
        Some(Node::List {
            list_type: ListType::Set,
            patch: PatchStrategy { merge: true, .. },
            ..
        })
    ));
    assert!(is_atomic_struct(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"
    ));
    assert!(!is_atomic_struct("io.k8s.api.core.v1.PodSpec"));
}

#[test]
fn retain_keys_strategies() {
    let s = field_patch_strategy("io.k8s.api.apps.v1.DeploymentSpec", "strategy");
    assert!(s.retain_keys && !s.merge);
    let v = field_patch_strategy("io.k8s.api.core.v1.PodSpec", "volumes");
    assert!(v.retain_keys && v.merge);
    assert_eq!(v.merge_key.as_deref(), Some("name"));
    assert_eq!(
        field_patch_strategy("io.k8s.api.core.v1.PodSpec", "nope"),
        PatchStrategy::default()
    );
}

#[test]
fn every_table_entry_exists() {
    for (def, f, ..) in table::FIELDS {
        let name = table::full_name(def);
        assert!(
            field(&name, f).is_some(),
            "{name}.{f} not in the generated schemas"
        );
    }
    for def in table::ATOMIC_STRUCTS {
        let name = table::full_name(def);
        assert!(definitions().contains_key(&name), "{name} not generated");
    }
}

#[test]
fn unknown_field_deep_in_pod_template() {
    let obj = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "bogus": 1},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "a", "image": "nginx"},
                    {"name": "b", "image": "nginx", "imagePullPolicyy": "Always",
                     "resources": {"limits": {"cpu": "1"}}}
                ]}
            }
        }
    });
    let found = unknown_fields(&DEPLOYMENT, &obj);
    assert_eq!(
        found,
        vec![
            "metadata.bogus".to_string(),
            "spec.template.spec.containers[1].imagePullPolicyy".to_string()
        ]
    );
}

#[test]
fn registry_kinds_have_schemas() {
    for kind in kinds::all() {
        assert!(
            SCHEMAS.structs.contains_key(kind.schema_name),
            "no schema for {}",
            kind.schema_name
        );
    }
}

#[test]
fn definitions_carry_gvk_and_serialize() {
    let defs = definitions();
    let d = &defs["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        d["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert_eq!(
        defs["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
        "DeploymentList"
    );
    let text = serde_json::to_string(defs).expect("serializes");
    assert!(text.contains("\"x-kubernetes-patch-merge-key\":\"containerPort\""));
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        // Property names are not keywords (JSONSchemaProps has a `$ref` field).
                        ("properties", Value::Object(props)) => {
                            props.values().for_each(|p| refs(p, out))
                        }
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&Value::Object(defs.clone()), &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix(REF_PREFIX)
            .unwrap_or_else(|| panic!("bad ref {r}"));
        assert!(defs.contains_key(name), "dangling {r}");
    }
    // No JSON Schema keywords OpenAPI 3.0 lacks.
    for bad in ["\"$defs\"", "\"const\"", "\"prefixItems\""] {
        assert!(!text.contains(bad), "{bad} in definitions");
    }
}

#[test]
fn prune_removes_what_unknown_fields_reports() {
    let mut obj = serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "$setElementOrder/finalizers": []},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "bogus": true}]}}}
    });
    let reported = unknown_fields(&DEPLOYMENT, &obj);
    let pruned = prune_unknown_fields(&DEPLOYMENT, &mut obj);
    assert_eq!(reported, pruned);
    assert_eq!(
        pruned,
        vec![
            "metadata.$setElementOrder/finalizers".to_string(),
            "spec.template.spec.containers[0].bogus".to_string()
        ]
    );
    assert_eq!(obj["metadata"], serde_json::json!({"name": "web"}));
    assert_eq!(
        obj["spec"]["template"]["spec"]["containers"][0],
        serde_json::json!({"name": "a"})
    );
    assert!(unknown_fields(&DEPLOYMENT, &obj).is_empty());
}
