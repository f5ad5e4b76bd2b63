use serde_json::{Value, json};

use super::*;

fn doc(path: &str) -> Value {
    let (bytes, _) = v3_document(path).expect("document");
    serde_json::from_slice(bytes).expect("json")
}

fn has_param(op: &Value, name: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name))
}

#[test]
fn index_lists_every_group_version_with_its_hash() {
    let index = v3_index();
    let paths = index["paths"].as_object().expect("paths");
    for (group, versions) in discovery::groups() {
        for version in versions {
            let path = gv_path(group, version);
            let (_, hash) = v3_document(&path).expect("document");
            assert_eq!(
                paths[&path]["serverRelativeURL"],
                format!("/openapi/v3/{path}?hash={hash}")
            );
        }
    }
    assert!(paths.contains_key("api/v1"));
    assert!(v3_document("apis/nope.example.com/v1").is_none());
    assert!(v3_document("/api/v1").is_some());
}

#[test]
fn hash_is_stable_and_content_dependent() {
    assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
    assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
    assert_eq!(content_hash(b"abc").len(), 32);
}

#[test]
fn operation_id_names() {
    assert_eq!(group_camel(""), "Core");
    assert_eq!(group_camel("apps"), "Apps");
    assert_eq!(
        group_camel("rbac.authorization.k8s.io"),
        "RbacAuthorization"
    );
    assert_eq!(
        group_camel("flowcontrol.apiserver.k8s.io"),
        "FlowcontrolApiserver"
    );
    assert_eq!(
        tag("rbac.authorization.k8s.io", "v1"),
        "rbacAuthorization_v1"
    );
    assert_eq!(tag("", "v1"), "core_v1");
}

#[test]
fn core_pod_paths_as_kube_apiserver_names_them() {
    let d = doc("api/v1");
    assert_eq!(d["openapi"], "3.0.0");
    assert_eq!(
        d["info"],
        json!({"title": "Kubernetes", "version": "v1.33.0"})
    );
    let paths = &d["paths"];
    let item = &paths["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(item["get"]["operationId"], "readCoreV1NamespacedPod");
    assert_eq!(item["put"]["operationId"], "replaceCoreV1NamespacedPod");
    assert_eq!(item["delete"]["operationId"], "deleteCoreV1NamespacedPod");
    let patch = &item["patch"];
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    for p in ["fieldValidation", "dryRun", "fieldManager", "force"] {
        assert!(has_param(patch, p), "{p}");
    }
    assert!(
        patch["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]["$ref"]
            == "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    );
    assert!(has_param(item, "name") && has_param(item, "namespace") && has_param(item, "pretty"));

    let coll = &paths["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(coll["get"]["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(coll["get"]["x-kubernetes-action"], "list");
    for p in [
        "labelSelector",
        "fieldSelector",
        "limit",
        "continue",
        "resourceVersion",
        "timeoutSeconds",
        "watch",
    ] {
        assert!(has_param(&coll["get"], p), "{p}");
    }
    assert_eq!(
        coll["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodList"
    );
    assert_eq!(coll["post"]["operationId"], "createCoreV1NamespacedPod");
    assert_eq!(
        coll["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    assert_eq!(coll["delete"]["x-kubernetes-action"], "deletecollection");

    let all = &paths["/api/v1/pods"];
    assert_eq!(all["get"]["operationId"], "listCoreV1PodForAllNamespaces");
    assert!(has_param(all, "labelSelector"));

    let status = &paths["/api/v1/namespaces/{namespace}/pods/{name}/status"];
    assert_eq!(
        status["get"]["operationId"],
        "readCoreV1NamespacedPodStatus"
    );
    assert_eq!(
        status["patch"]["operationId"],
        "patchCoreV1NamespacedPodStatus"
    );
    assert!(has_param(&status["patch"], "fieldValidation"));

    assert_eq!(
        paths["/api/v1/watch/namespaces/{namespace}/pods"]["get"]["operationId"],
        "watchCoreV1NamespacedPodList"
    );
    assert_eq!(
        paths["/api/v1/watch/pods"]["get"]["x-kubernetes-action"],
        "watchlist"
    );

    let schemas = d["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "io.k8s.api.core.v1.Pod",
        "io.k8s.api.core.v1.PodList",
        "io.k8s.api.core.v1.PodSpec",
        "io.k8s.api.core.v1.ContainerPort",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
    // Only what the document references: no apps definitions in the core document.
    assert!(!schemas.contains_key("io.k8s.api.apps.v1.Deployment"));
}

#[test]
fn cluster_scoped_paths() {
    let d = doc("api/v1");
    let paths = &d["paths"];
    assert_eq!(
        paths["/api/v1/nodes"]["get"]["operationId"],
        "listCoreV1Node"
    );
    assert_eq!(
        paths["/api/v1/nodes/{name}"]["patch"]["operationId"],
        "patchCoreV1Node"
    );
    assert!(!has_param(&paths["/api/v1/nodes/{name}"], "namespace"));
    assert_eq!(
        paths["/api/v1/watch/nodes/{name}"]["get"]["operationId"],
        "watchCoreV1Node"
    );
    // Namespaces have no deletecollection.
    assert!(paths["/api/v1/namespaces"].get("delete").is_none());
}

#[test]
fn apps_deployments_with_scale() {
    let d = doc("apis/apps/v1");
    let paths = &d["paths"];
    let item = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    for m in ["get", "put", "patch", "delete"] {
        assert!(item.get(m).is_some(), "{m}");
    }
    assert_eq!(
        item["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(
        paths["/apis/apps/v1/deployments"]["get"]["operationId"],
        "listAppsV1DeploymentForAllNamespaces"
    );
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "kind": "Scale", "version": "v1"})
    );
    assert_eq!(
        scale["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.autoscaling.v1.Scale"
    );
    let schemas = d["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "io.k8s.api.apps.v1.Deployment",
        "io.k8s.api.apps.v1.DeploymentStrategy",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.api.core.v1.PodTemplateSpec",
    ] {
        assert!(schemas.contains_key(name), "{name}");
    }
}

/// What `kubectl apply` checks before it sends `fieldValidation=Strict`: a patch operation with the
/// kind's group-version-kind declaring the `fieldValidation` parameter.
#[test]
fn every_kind_has_a_patch_with_field_validation() {
    for k in kinds::all().iter().filter(|k| k.verbs.contains(&"patch")) {
        let d = doc(&gv_path(k.group, k.version));
        let want = json!({"group": k.group, "kind": k.kind, "version": k.version});
        let found = d["paths"].as_object().expect("paths").values().any(|item| {
            item["patch"]["x-kubernetes-group-version-kind"] == want
                && has_param(&item["patch"], "fieldValidation")
        });
        assert!(found, "{}", k.kind);
    }
}

/// Every `$ref` of every document resolves within the document, and every kind's schema carries
/// its group-version-kind (what `kubectl explain` looks up).
#[test]
fn refs_resolve_and_kinds_are_findable() {
    for (group, versions) in discovery::groups() {
        for version in versions {
            let d = doc(&gv_path(group, version));
            let schemas = d["components"]["schemas"].as_object().expect("schemas");
            let mut refs = Vec::new();
            collect_refs(&d, &mut refs);
            for r in refs {
                assert!(schemas.contains_key(&r), "{group}/{version}: {r}");
            }
            for k in kinds::all()
                .iter()
                .filter(|k| k.group == group && k.version == version)
            {
                let want = json!({"group": k.group, "kind": k.kind, "version": k.version});
                let found = schemas.values().any(|s| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.contains(&want))
                });
                assert!(found, "{group}/{version} {}", k.kind);
            }
        }
    }
}

/// Writes the discovery and OpenAPI documents to `$BERTH_DUMP_DIR` (as `<url path>/index.json`) for checking with a real
/// kubectl against a static file server.
#[test]
#[ignore = "writes files; run by hand"]
fn dump_documents() {
    let Ok(dir) = std::env::var("BERTH_DUMP_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let write = |rel: &str, bytes: &[u8]| {
        let path = dir.join(rel).join("index.json");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    let json = |v: &Value| serde_json::to_vec(v).expect("json");
    write("aggregated/api", &json(&discovery::aggregated_core()));
    write("aggregated/apis", &json(&discovery::aggregated_groups()));
    write("legacy/api", &json(&discovery::api_versions("127.0.0.1")));
    write("legacy/apis", &json(&discovery::api_group_list()));
    for (group, versions) in discovery::groups() {
        if !group.is_empty() {
            write(
                &format!("legacy/apis/{group}"),
                &json(&discovery::api_group(group).expect("group")),
            );
        }
        for version in versions {
            let path = gv_path(group, version);
            write(
                &format!("legacy/{path}"),
                &json(&discovery::api_resource_list(group, version).expect("list")),
            );
            let (bytes, _) = v3_document(&path).expect("doc");
            write(&format!("openapi/v3/{path}"), bytes);
        }
    }
    write("openapi/v3", &json(&v3_index()));
}

/// Subresources the registry may add later (log, exec, portforward, finalize) are named as
/// kube-apiserver names them.
#[test]
fn stream_and_action_subresources() {
    use crate::kinds::{ALL_VERBS, Subresource};
    const POD: ResourceKind = ResourceKind {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[
            Subresource {
                name: "log",
                response_kind: ("", "v1", "Pod"),
                verbs: &["get"],
            },
            Subresource {
                name: "exec",
                response_kind: ("", "v1", "PodExecOptions"),
                verbs: &["create", "get"],
            },
            Subresource {
                name: "portforward",
                response_kind: ("", "v1", "PodPortForwardOptions"),
                verbs: &["create", "get"],
            },
            Subresource {
                name: "binding",
                response_kind: ("", "v1", "Binding"),
                verbs: &["create"],
            },
        ],
        schema_name: "io.k8s.api.core.v1.Pod",
        storage: ("", "pods"),
    };
    const NAMESPACE: ResourceKind = ResourceKind {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[Subresource {
            name: "finalize",
            response_kind: ("", "v1", "Namespace"),
            verbs: &["update"],
        }],
        schema_name: "io.k8s.api.core.v1.Namespace",
        storage: ("", "namespaces"),
    };
    let paths = gv_paths(&[POD, NAMESPACE], "", "v1");
    let base = "/api/v1/namespaces/{namespace}/pods/{name}";
    let log = &paths[&format!("{base}/log")];
    assert_eq!(log["get"]["operationId"], "readCoreV1NamespacedPodLog");
    assert!(has_param(log, "follow") && has_param(log, "container"));
    let exec = &paths[&format!("{base}/exec")];
    assert_eq!(
        exec["get"]["operationId"],
        "connectCoreV1GetNamespacedPodExec"
    );
    assert_eq!(
        exec["post"]["operationId"],
        "connectCoreV1PostNamespacedPodExec"
    );
    assert_eq!(exec["get"]["x-kubernetes-action"], "connect");
    assert_eq!(
        exec["get"]["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "PodExecOptions", "version": "v1"})
    );
    assert!(has_param(exec, "command") && has_param(exec, "stdout"));
    assert_eq!(
        paths[&format!("{base}/portforward")]["get"]["operationId"],
        "connectCoreV1GetNamespacedPodPortforward"
    );
    let binding = &paths[&format!("{base}/binding")];
    assert_eq!(
        binding["post"]["operationId"],
        "createCoreV1NamespacedPodBinding"
    );
    assert_eq!(
        binding["post"]["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Binding"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert!(paths.contains_key("/api/v1/"));
}
