//! The table of served kinds (see [`crate::kinds`]): the static facts of every resource as a
//! Kubernetes 1.33 API server reports them in discovery (`kubectl api-resources -o wide`).
//!
//! This module owns only data: group, version, kind, names, scope, short names, categories,
//! verbs, the subresources served so far, the OpenAPI definition name and the storage location.
//! It must not hold behaviour (defaulting, validation, printing live in sibling modules).

use crate::kinds::{ALL_VERBS, ResourceKind, Subresource};

/// Verbs of a `status` or `scale` subresource.
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// Verbs of namespaces: everything but `deletecollection`.
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The `status` subresource of `(group, version, kind)`.
const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        response_kind: (group, version, kind),
        verbs: GET_PATCH_UPDATE,
    }
}

/// The `scale` subresource (`autoscaling/v1` `Scale`).
const SCALE: Subresource = Subresource {
    name: "scale",
    response_kind: ("autoscaling", "v1", "Scale"),
    verbs: GET_PATCH_UPDATE,
};

/// Builds an entry; `storage` is the kind's own group and plural.
#[allow(clippy::too_many_arguments)]
const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [Subresource],
    schema_name: &'static str,
) -> ResourceKind {
    ResourceKind {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        verbs,
        subresources,
        schema_name,
        storage: (group, plural),
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

/// Every served kind.
pub(crate) static KINDS: &[ResourceKind] = &[
    // core/v1
    kind(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        NONE,
        NAMESPACE_VERBS,
        &[status("", "v1", "Namespace")],
        "io.k8s.api.core.v1.Namespace",
    ),
    kind(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        &["no"],
        NONE,
        ALL_VERBS,
        &[status("", "v1", "Node")],
        "io.k8s.api.core.v1.Node",
    ),
    kind(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        ALL_VERBS,
        &[
            status("", "v1", "Pod"),
            Subresource {
                name: "binding",
                response_kind: ("", "v1", "Binding"),
                verbs: &["create"],
            },
            Subresource {
                name: "eviction",
                response_kind: ("policy", "v1", "Eviction"),
                verbs: &["create"],
            },
            // Streams, proxied to the node agent that runs the pod.
            Subresource {
                name: "exec",
                response_kind: ("", "v1", "PodExecOptions"),
                verbs: &["create", "get"],
            },
            Subresource {
                name: "log",
                response_kind: ("", "v1", "Pod"),
                verbs: &["get"],
            },
            Subresource {
                name: "portforward",
                response_kind: ("", "v1", "PodPortForwardOptions"),
                verbs: &["create", "get"],
            },
        ],
        "io.k8s.api.core.v1.Pod",
    ),
    kind(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        &["svc"],
        ALL,
        ALL_VERBS,
        &[status("", "v1", "Service")],
        "io.k8s.api.core.v1.Service",
    ),
    kind(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        &["ep"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.core.v1.Endpoints",
    ),
    kind(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        &["cm"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.core.v1.ConfigMap",
    ),
    kind(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.core.v1.Secret",
    ),
    kind(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.core.v1.Event",
    ),
    kind(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        &["sa"],
        NONE,
        ALL_VERBS,
        &[Subresource {
            name: "token",
            response_kind: ("authentication.k8s.io", "v1", "TokenRequest"),
            verbs: &["create"],
        }],
        "io.k8s.api.core.v1.ServiceAccount",
    ),
    kind(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        false,
        &["pv"],
        NONE,
        ALL_VERBS,
        &[status("", "v1", "PersistentVolume")],
        "io.k8s.api.core.v1.PersistentVolume",
    ),
    kind(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        true,
        &["pvc"],
        NONE,
        ALL_VERBS,
        &[status("", "v1", "PersistentVolumeClaim")],
        "io.k8s.api.core.v1.PersistentVolumeClaim",
    ),
    kind(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        true,
        &["quota"],
        NONE,
        ALL_VERBS,
        &[status("", "v1", "ResourceQuota")],
        "io.k8s.api.core.v1.ResourceQuota",
    ),
    kind(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        true,
        &["limits"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.core.v1.LimitRange",
    ),
    // apps/v1
    kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        &["deploy"],
        ALL,
        ALL_VERBS,
        &[status("apps", "v1", "Deployment"), SCALE],
        "io.k8s.api.apps.v1.Deployment",
    ),
    kind(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        ALL_VERBS,
        &[status("apps", "v1", "ReplicaSet"), SCALE],
        "io.k8s.api.apps.v1.ReplicaSet",
    ),
    kind(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        true,
        &["sts"],
        ALL,
        ALL_VERBS,
        &[status("apps", "v1", "StatefulSet"), SCALE],
        "io.k8s.api.apps.v1.StatefulSet",
    ),
    kind(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        true,
        &["ds"],
        ALL,
        ALL_VERBS,
        &[status("apps", "v1", "DaemonSet")],
        "io.k8s.api.apps.v1.DaemonSet",
    ),
    kind(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.apps.v1.ControllerRevision",
    ),
    // batch/v1
    kind(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        NONE,
        ALL,
        ALL_VERBS,
        &[status("batch", "v1", "Job")],
        "io.k8s.api.batch.v1.Job",
    ),
    kind(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        true,
        &["cj"],
        ALL,
        ALL_VERBS,
        &[status("batch", "v1", "CronJob")],
        "io.k8s.api.batch.v1.CronJob",
    ),
    // autoscaling/v2
    kind(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        "horizontalpodautoscaler",
        true,
        &["hpa"],
        ALL,
        ALL_VERBS,
        &[status("autoscaling", "v2", "HorizontalPodAutoscaler")],
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
    ),
    // coordination.k8s.io/v1
    kind(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.coordination.v1.Lease",
    ),
    // discovery.k8s.io/v1
    kind(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.discovery.v1.EndpointSlice",
    ),
    // networking.k8s.io/v1
    kind(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        true,
        &["ing"],
        NONE,
        ALL_VERBS,
        &[status("networking.k8s.io", "v1", "Ingress")],
        "io.k8s.api.networking.v1.Ingress",
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        false,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.networking.v1.IngressClass",
    ),
    kind(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        &["netpol"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.networking.v1.NetworkPolicy",
    ),
    // rbac.authorization.k8s.io/v1
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.rbac.v1.Role",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        false,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.rbac.v1.ClusterRole",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        true,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.rbac.v1.RoleBinding",
    ),
    kind(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        false,
        NONE,
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
    ),
    // policy/v1
    kind(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        true,
        &["pdb"],
        NONE,
        ALL_VERBS,
        &[status("policy", "v1", "PodDisruptionBudget")],
        "io.k8s.api.policy.v1.PodDisruptionBudget",
    ),
    // storage.k8s.io/v1
    kind(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
        &["sc"],
        NONE,
        ALL_VERBS,
        &[],
        "io.k8s.api.storage.v1.StorageClass",
    ),
    // events.k8s.io/v1: the same objects as core events, stored once.
    ResourceKind {
        storage: ("", "events"),
        ..kind(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            true,
            &["ev"],
            NONE,
            ALL_VERBS,
            &[],
            "io.k8s.api.events.v1.Event",
        )
    },
];

#[cfg(test)]
mod tests {
    use super::KINDS;
    use crate::kinds::{self, ALL_VERBS};
    use std::collections::BTreeSet;

    /// `kubectl api-resources` of a Kubernetes 1.33 cluster, restricted to the kinds served
    /// here: (plural, short names, apiVersion, namespaced, kind).
    const API_RESOURCES: &[(&str, &[&str], &str, bool, &str)] = &[
        ("configmaps", &["cm"], "v1", true, "ConfigMap"),
        ("endpoints", &["ep"], "v1", true, "Endpoints"),
        ("events", &["ev"], "v1", true, "Event"),
        ("limitranges", &["limits"], "v1", true, "LimitRange"),
        ("namespaces", &["ns"], "v1", false, "Namespace"),
        ("nodes", &["no"], "v1", false, "Node"),
        (
            "persistentvolumeclaims",
            &["pvc"],
            "v1",
            true,
            "PersistentVolumeClaim",
        ),
        (
            "persistentvolumes",
            &["pv"],
            "v1",
            false,
            "PersistentVolume",
        ),
        ("pods", &["po"], "v1", true, "Pod"),
        ("resourcequotas", &["quota"], "v1", true, "ResourceQuota"),
        ("secrets", &[], "v1", true, "Secret"),
        ("serviceaccounts", &["sa"], "v1", true, "ServiceAccount"),
        ("services", &["svc"], "v1", true, "Service"),
        (
            "controllerrevisions",
            &[],
            "apps/v1",
            true,
            "ControllerRevision",
        ),
        ("daemonsets", &["ds"], "apps/v1", true, "DaemonSet"),
        ("deployments", &["deploy"], "apps/v1", true, "Deployment"),
        ("replicasets", &["rs"], "apps/v1", true, "ReplicaSet"),
        ("statefulsets", &["sts"], "apps/v1", true, "StatefulSet"),
        (
            "horizontalpodautoscalers",
            &["hpa"],
            "autoscaling/v2",
            true,
            "HorizontalPodAutoscaler",
        ),
        ("cronjobs", &["cj"], "batch/v1", true, "CronJob"),
        ("jobs", &[], "batch/v1", true, "Job"),
        ("leases", &[], "coordination.k8s.io/v1", true, "Lease"),
        (
            "endpointslices",
            &[],
            "discovery.k8s.io/v1",
            true,
            "EndpointSlice",
        ),
        ("events", &["ev"], "events.k8s.io/v1", true, "Event"),
        (
            "ingressclasses",
            &[],
            "networking.k8s.io/v1",
            false,
            "IngressClass",
        ),
        (
            "ingresses",
            &["ing"],
            "networking.k8s.io/v1",
            true,
            "Ingress",
        ),
        (
            "networkpolicies",
            &["netpol"],
            "networking.k8s.io/v1",
            true,
            "NetworkPolicy",
        ),
        (
            "poddisruptionbudgets",
            &["pdb"],
            "policy/v1",
            true,
            "PodDisruptionBudget",
        ),
        (
            "clusterrolebindings",
            &[],
            "rbac.authorization.k8s.io/v1",
            false,
            "ClusterRoleBinding",
        ),
        (
            "clusterroles",
            &[],
            "rbac.authorization.k8s.io/v1",
            false,
            "ClusterRole",
        ),
        (
            "rolebindings",
            &[],
            "rbac.authorization.k8s.io/v1",
            true,
            "RoleBinding",
        ),
        ("roles", &[], "rbac.authorization.k8s.io/v1", true, "Role"),
        (
            "storageclasses",
            &["sc"],
            "storage.k8s.io/v1",
            false,
            "StorageClass",
        ),
    ];

    #[test]
    fn matches_kubectl_api_resources() {
        assert_eq!(KINDS.len(), API_RESOURCES.len());
        for (plural, short, api_version, namespaced, kind) in API_RESOURCES {
            let k = kinds::by_kind(api_version, kind)
                .unwrap_or_else(|| panic!("{api_version} {kind} missing"));
            assert_eq!(k.plural, *plural, "{kind}");
            assert_eq!(k.short_names, *short, "{kind}");
            assert_eq!(k.namespaced, *namespaced, "{kind}");
            assert_eq!(k.singular, kind.to_lowercase(), "{kind}");
            let (group, version) = kinds::split_api_version(api_version);
            assert_eq!(kinds::by_resource(group, version, plural), Some(k));
        }
    }

    #[test]
    fn lookups_are_unique() {
        let mut gvr = BTreeSet::new();
        let mut gvk = BTreeSet::new();
        for k in KINDS {
            assert!(
                gvr.insert((k.group, k.version, k.plural)),
                "{} twice",
                k.plural
            );
            assert!(gvk.insert((k.api_version(), k.kind)), "{} twice", k.kind);
        }
        // The only kind served twice is Event, in two groups sharing one storage.
        let events: Vec<_> = KINDS.iter().filter(|k| k.kind == "Event").collect();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|k| k.storage == ("", "events")));
        let storages: BTreeSet<_> = KINDS.iter().map(|k| k.storage).collect();
        assert_eq!(storages.len(), KINDS.len() - 1);
    }

    #[test]
    fn short_names_are_unique_per_group() {
        let mut seen = BTreeSet::new();
        for k in KINDS.iter().filter(|k| k.group != "events.k8s.io") {
            for s in k.short_names {
                assert!(seen.insert(*s), "short name {s} twice");
            }
        }
    }

    #[test]
    fn subresources_and_verbs() {
        let with_status: BTreeSet<_> = KINDS
            .iter()
            .filter(|k| k.has_status())
            .map(|k| k.plural)
            .collect();
        let expected: BTreeSet<_> = [
            "namespaces",
            "nodes",
            "pods",
            "services",
            "persistentvolumes",
            "persistentvolumeclaims",
            "resourcequotas",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "horizontalpodautoscalers",
            "ingresses",
            "poddisruptionbudgets",
        ]
        .into_iter()
        .collect();
        assert_eq!(with_status, expected);
        for k in KINDS {
            if let Some(s) = k.subresource("status") {
                assert_eq!(s.response_kind, (k.group, k.version, k.kind));
            }
            let scale = k.subresource("scale");
            let scalable = matches!(k.plural, "deployments" | "replicasets" | "statefulsets");
            assert_eq!(scale.is_some(), scalable, "{}", k.plural);
            if let Some(s) = scale {
                assert_eq!(s.response_kind, ("autoscaling", "v1", "Scale"));
                assert_eq!(s.verbs, &["get", "patch", "update"]);
            }
            if k.plural == "namespaces" {
                assert!(!k.verbs.contains(&"deletecollection"));
            } else {
                assert_eq!(k.verbs, ALL_VERBS, "{}", k.plural);
            }
            let all = matches!(
                k.plural,
                "pods"
                    | "services"
                    | "deployments"
                    | "replicasets"
                    | "statefulsets"
                    | "daemonsets"
                    | "jobs"
                    | "cronjobs"
                    | "horizontalpodautoscalers"
            );
            assert_eq!(k.categories == ["all"], all, "{}", k.plural);
            assert!(k.schema_name.starts_with("io.k8s.api."));
            assert!(k.schema_name.ends_with(&format!(".{}", k.kind)));
        }
        let pod = kinds::by_kind("v1", "Pod").expect("pods");
        let binding = pod.subresource("binding").expect("binding");
        assert_eq!(
            (binding.response_kind, binding.verbs),
            (("", "v1", "Binding"), &["create"][..])
        );
        let eviction = pod.subresource("eviction").expect("eviction");
        assert_eq!(eviction.response_kind, ("policy", "v1", "Eviction"));
        assert_eq!(eviction.verbs, &["create"]);
        for (name, kind, verbs) in [
            ("exec", "PodExecOptions", &["create", "get"][..]),
            ("log", "Pod", &["get"][..]),
            (
                "portforward",
                "PodPortForwardOptions",
                &["create", "get"][..],
            ),
        ] {
            let s = pod.subresource(name).expect(name);
            assert_eq!((s.response_kind, s.verbs), (("", "v1", kind), verbs));
        }
        let sa = kinds::by_kind("v1", "ServiceAccount").expect("serviceaccounts");
        let token = sa.subresource("token").expect("token");
        assert_eq!(
            (token.response_kind, token.verbs),
            (
                ("authentication.k8s.io", "v1", "TokenRequest"),
                &["create"][..]
            )
        );
        let ev = kinds::by_kind("events.k8s.io/v1", "Event").expect("events.k8s.io");
        assert_eq!(ev.key_prefix(), "/registry/core/events/");
        assert_eq!(ev.schema_name, "io.k8s.api.events.v1.Event");
    }
}
