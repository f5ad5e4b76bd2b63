//! The node authorizer: what a node's credential (user `system:node:<n>` in group
//! `system:nodes`) may do, after Kubernetes' node authorizer and NodeRestriction admission.
//!
//! A node may read nodes, pods, services, endpoints, endpoint slices and namespaces; change only
//! its own Node (and its status) and its own Lease in `kube-node-lease`; update the status of
//! and delete the pods bound to it (never a pod's spec); get the ConfigMaps and Secrets those
//! pods reference (one by one: a list or watch only with a `metadata.name` field selector);
//! request tokens for the service accounts those pods run as, bound to such a pod; and create
//! and update events. Everything else gets no opinion, so the union denies it.
//!
//! Decisions that depend on pods read them through [`PodIndex`] (the watch cache in the server,
//! a fake in tests). The checks that need the request body (the name of a created Node or Lease,
//! the pod a token is bound to) are in [`admit`], which the server calls once the body is read.
//! This module must not authenticate anyone nor parse HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::{Authorizer, Decision, RequestAttributes};
use crate::authn::UserInfo;
use crate::cache::WatchCache;

/// The group of every node.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of a node's user name.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user is, if it is one: the user name is `system:node:<n>` and the user is in
/// `system:nodes`.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

/// What the node authorizer needs to know of a pod.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodFacts {
    /// `spec.nodeName`.
    pub node: String,
    /// `metadata.uid`.
    pub uid: String,
    /// What the pod refers to.
    pub references: PodReferences,
}

impl PodFacts {
    /// The facts of a pod object.
    pub fn of(pod: &Value) -> Self {
        PodFacts {
            node: str_at(pod, "/spec/nodeName").unwrap_or("").to_string(),
            uid: str_at(pod, "/metadata/uid").unwrap_or("").to_string(),
            references: pod_references(pod),
        }
    }
}

/// Read access to pods for the node authorizer.
pub trait PodIndex: Send + Sync {
    /// The pod `namespace/name`, if it exists.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodFacts>>;
    /// The pods in `namespace` whose `spec.nodeName` is `node`.
    fn pods_on_node(&self, namespace: &str, node: &str) -> Vec<Arc<PodFacts>>;
}

fn pods_kind() -> Option<&'static berth_api::ResourceKind> {
    berth_api::kinds::by_resource("", "v1", "pods")
}

/// The watch cache answers from each pod's facts, derived once per version of the pod, and its
/// index of pods by node: a node asks for every Secret, ConfigMap and token its pods need, and
/// each question looks at all its pods in the namespace.
impl PodIndex for WatchCache {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodFacts>> {
        let kind = pods_kind()?;
        self.get(&kind.key(Some(namespace), name))
            .map(|o| o.derived(PodFacts::of))
    }

    fn pods_on_node(&self, namespace: &str, node: &str) -> Vec<Arc<PodFacts>> {
        let Some(kind) = pods_kind() else {
            return Vec::new();
        };
        self.pods_bound_to(node, &kind.namespace_prefix(namespace))
            .iter()
            .map(|o| o.derived(PodFacts::of))
            .collect()
    }
}

/// The names a pod refers to, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodReferences {
    /// Secrets: volumes (secret, projected, and the volume plugins' secret references), env
    /// `valueFrom.secretKeyRef`, `envFrom.secretRef`, `imagePullSecrets`.
    pub secrets: BTreeSet<String>,
    /// ConfigMaps: volumes (configMap, projected), env `valueFrom.configMapKeyRef`,
    /// `envFrom.configMapRef`.
    pub config_maps: BTreeSet<String>,
    /// The service account (`default` when unset).
    pub service_account: String,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// What `pod` refers to (see [`PodReferences`]).
pub fn pod_references(pod: &Value) -> PodReferences {
    let mut r = PodReferences {
        service_account: str_at(pod, "/spec/serviceAccountName")
            .or_else(|| str_at(pod, "/spec/serviceAccount"))
            .unwrap_or("default")
            .to_string(),
        ..Default::default()
    };
    let mut secret = |s: Option<&str>| {
        if let Some(s) = s {
            r.secrets.insert(s.to_string());
        }
    };
    for p in items(pod, "/spec/imagePullSecrets") {
        secret(str_at(p, "/name"));
    }
    for v in items(pod, "/spec/volumes") {
        secret(str_at(v, "/secret/secretName"));
        for p in [
            "/azureFile/secretName",
            "/cephfs/secretRef/name",
            "/cinder/secretRef/name",
            "/flexVolume/secretRef/name",
            "/iscsi/secretRef/name",
            "/rbd/secretRef/name",
            "/scaleIO/secretRef/name",
            "/storageos/secretRef/name",
            "/csi/nodePublishSecretRef/name",
        ] {
            secret(str_at(v, p));
        }
        for s in items(v, "/projected/sources") {
            secret(str_at(s, "/secret/name"));
        }
    }
    let containers = || {
        [
            "/spec/containers",
            "/spec/initContainers",
            "/spec/ephemeralContainers",
        ]
        .into_iter()
        .flat_map(|p| items(pod, p))
    };
    for c in containers() {
        for e in items(c, "/env") {
            secret(str_at(e, "/valueFrom/secretKeyRef/name"));
        }
        for e in items(c, "/envFrom") {
            secret(str_at(e, "/secretRef/name"));
        }
    }
    let mut config_map = |s: Option<&str>| {
        if let Some(s) = s {
            r.config_maps.insert(s.to_string());
        }
    };
    for v in items(pod, "/spec/volumes") {
        config_map(str_at(v, "/configMap/name"));
        for s in items(v, "/projected/sources") {
            config_map(str_at(s, "/configMap/name"));
        }
    }
    for c in containers() {
        for e in items(c, "/env") {
            config_map(str_at(e, "/valueFrom/configMapKeyRef/name"));
        }
        for e in items(c, "/envFrom") {
            config_map(str_at(e, "/configMapRef/name"));
        }
    }
    r
}

const READ: &[&str] = &["get", "list", "watch"];
const NO_RELATIONSHIP: &str = "no relationship found between node";

fn no_relationship(node: &str) -> Decision {
    Decision::Deny(format!("{NO_RELATIONSHIP} '{node}' and this object"))
}

/// Whether a non-resource path is a discovery or informational document any node may read.
fn is_discovery_path(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    matches!(
        p,
        "/api" | "/apis" | "/version" | "/healthz" | "/livez" | "/readyz" | "/openapi/v2"
    ) || ["/api/", "/apis/", "/openapi/v3"]
        .iter()
        .any(|prefix| p.starts_with(prefix))
}

/// The node authorizer (see the module documentation).
pub struct NodeAuthorizer {
    pods: Arc<dyn PodIndex>,
}

impl NodeAuthorizer {
    /// An authorizer reading pods from `pods`.
    pub fn new(pods: Arc<dyn PodIndex>) -> Self {
        NodeAuthorizer { pods }
    }

    fn pod_on_node(&self, namespace: &str, name: &str, node: &str) -> bool {
        self.pods
            .pod(namespace, name)
            .is_some_and(|p| p.node == node)
    }

    fn decide(&self, node: &str, a: &RequestAttributes) -> Decision {
        let verb = a.verb.as_str();
        let read = READ.contains(&verb);
        let sub = a.subresource.as_str();
        match (a.api_group.as_str(), a.resource.as_str()) {
            ("", "nodes") if sub.is_empty() || sub == "status" => match verb {
                _ if read => Decision::Allow,
                // The created object's name is checked by `admit`.
                "create" if sub.is_empty() && (a.name.is_empty() || a.name == node) => {
                    Decision::Allow
                }
                "create" | "update" | "patch" | "delete" if a.name == node => Decision::Allow,
                _ => Decision::Deny(format!("node '{node}' may only modify its own Node object")),
            },
            ("coordination.k8s.io", "leases") if a.namespace == LEASE_NAMESPACE => match verb {
                "list" | "watch" => Decision::Allow,
                "create" if a.name.is_empty() || a.name == node => Decision::Allow,
                "get" | "create" | "update" | "patch" | "delete" if a.name == node => {
                    Decision::Allow
                }
                _ => Decision::Deny(
                    "can only access node lease with the same name as the requesting node".into(),
                ),
            },
            ("", "pods") => match (sub, verb) {
                ("", _) | ("status", _) if read => Decision::Allow,
                ("status", "update" | "patch") | ("", "delete") => {
                    if self.pod_on_node(&a.namespace, &a.name, node) {
                        Decision::Allow
                    } else {
                        Decision::Deny(format!(
                            "node '{node}' can only update the status of and delete pods with \
                             spec.nodeName set to itself"
                        ))
                    }
                }
                ("", "update" | "patch") => Decision::Deny(format!(
                    "node '{node}' may not change a pod's spec; it can only update the status of \
                     pods bound to it"
                )),
                ("", "create" | "deletecollection") => {
                    Decision::Deny(format!("node '{node}' may not {verb} pods"))
                }
                _ => Decision::NoOpinion,
            },
            // A list or watch restricted to one name (`fieldSelector=metadata.name=X`) carries
            // that name: a node keeps the objects its pods use current by watching each.
            ("", "secrets" | "configmaps") if sub.is_empty() => match verb {
                "get" | "list" | "watch" if !a.name.is_empty() => {
                    let secrets = a.resource == "secrets";
                    let referenced = self.pods.pods_on_node(&a.namespace, node).iter().any(|p| {
                        let r = &p.references;
                        let names = if secrets { &r.secrets } else { &r.config_maps };
                        names.contains(&a.name)
                    });
                    if referenced {
                        Decision::Allow
                    } else {
                        no_relationship(node)
                    }
                }
                "list" | "watch" => {
                    Decision::Deny("can only get individual resources of this type".into())
                }
                _ => Decision::NoOpinion,
            },
            ("", "serviceaccounts") if sub == "token" && verb == "create" => {
                let used = self
                    .pods
                    .pods_on_node(&a.namespace, node)
                    .iter()
                    .any(|p| p.references.service_account == a.name);
                if used {
                    Decision::Allow
                } else {
                    no_relationship(node)
                }
            }
            ("" | "events.k8s.io", "events") if sub.is_empty() => match verb {
                "create" | "update" | "patch" => Decision::Allow,
                _ => Decision::NoOpinion,
            },
            ("", "services" | "endpoints" | "namespaces")
            | ("discovery.k8s.io", "endpointslices")
                if sub.is_empty() && read =>
            {
                Decision::Allow
            }
            _ => Decision::NoOpinion,
        }
    }
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, attrs: &RequestAttributes) -> Decision {
        let Some(node) = node_name(&attrs.user) else {
            return Decision::NoOpinion;
        };
        if !attrs.resource_request {
            return if attrs.verb == "get" && is_discovery_path(&attrs.path) {
                Decision::Allow
            } else {
                Decision::NoOpinion
            };
        }
        self.decide(node, attrs)
    }
}

/// Checks a node's request against its body (NodeRestriction): a node may create only the Node
/// and the Lease named after itself, and request only tokens bound to a pod bound to it that
/// runs as the service account. `Err` carries the reason for a 403. Requests by other users,
/// and bodies that do not decode (the handler refuses those), pass.
pub fn admit(
    attrs: &RequestAttributes,
    body: Option<&Value>,
    pods: &dyn PodIndex,
) -> Result<(), String> {
    let Some(node) = node_name(&attrs.user) else {
        return Ok(());
    };
    let Some(body) = body else {
        return Ok(());
    };
    let body_name = str_at(body, "/metadata/name").unwrap_or("");
    match (
        attrs.api_group.as_str(),
        attrs.resource.as_str(),
        attrs.subresource.as_str(),
        attrs.verb.as_str(),
    ) {
        ("", "nodes", "", "create") if body_name != node => Err(format!(
            "node '{node}' is not allowed to create a Node named {body_name:?}"
        )),
        ("coordination.k8s.io", "leases", "", "create") if body_name != node => Err(format!(
            "node '{node}' is not allowed to create a Lease named {body_name:?}; can only access \
             node lease with the same name as the requesting node"
        )),
        ("", "serviceaccounts", "token", "create") => {
            let kind = str_at(body, "/spec/boundObjectRef/kind").unwrap_or("");
            let name = str_at(body, "/spec/boundObjectRef/name").unwrap_or("");
            if kind != "Pod" || name.is_empty() {
                return Err(format!(
                    "node '{node}' requested a token not bound to a pod"
                ));
            }
            let Some(pod) = pods.pod(&attrs.namespace, name) else {
                return Err(format!(
                    "node '{node}' requested a token bound to a pod that does not exist"
                ));
            };
            if pod.node != node {
                return Err(format!(
                    "node '{node}' requested a token bound to a pod scheduled on a different node"
                ));
            }
            if let Some(uid) = str_at(body, "/spec/boundObjectRef/uid")
                && pod.uid != uid
            {
                return Err(format!(
                    "node '{node}' requested a token bound to a pod whose uid does not match"
                ));
            }
            if pod.references.service_account != attrs.name {
                return Err(format!(
                    "node '{node}' requested a token for a service account its pod does not use"
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Pods in memory.
    struct FakePods(Vec<Value>);

    impl PodIndex for FakePods {
        fn pod(&self, namespace: &str, name: &str) -> Option<Arc<PodFacts>> {
            self.0
                .iter()
                .find(|p| p["metadata"]["namespace"] == namespace && p["metadata"]["name"] == name)
                .map(|p| Arc::new(PodFacts::of(p)))
        }

        fn pods_on_node(&self, namespace: &str, node: &str) -> Vec<Arc<PodFacts>> {
            self.0
                .iter()
                .filter(|p| {
                    p["metadata"]["namespace"] == namespace && p["spec"]["nodeName"] == node
                })
                .map(|p| Arc::new(PodFacts::of(p)))
                .collect()
        }
    }

    fn pods() -> FakePods {
        FakePods(vec![
            json!({
                "metadata": {"name": "web", "namespace": "default", "uid": "u-web"},
                "spec": {
                    "nodeName": "n2",
                    "serviceAccountName": "builder",
                    "imagePullSecrets": [{"name": "pull"}],
                    "volumes": [
                        {"name": "a", "secret": {"secretName": "vol-secret"}},
                        {"name": "b", "configMap": {"name": "vol-cm"}},
                        {"name": "c", "projected": {"sources": [
                            {"secret": {"name": "proj-secret"}},
                            {"configMap": {"name": "proj-cm"}},
                            {"serviceAccountToken": {"path": "token"}}
                        ]}},
                        {"name": "d", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "csi-secret"}}}
                    ],
                    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "init-envfrom"}}]}],
                    "containers": [{
                        "name": "c",
                        "env": [
                            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}},
                            {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                            {"name": "C", "value": "plain"}
                        ],
                        "envFrom": [{"configMapRef": {"name": "envfrom-cm"}}]
                    }]
                }
            }),
            json!({
                "metadata": {"name": "db", "namespace": "default", "uid": "u-db"},
                "spec": {
                    "nodeName": "n3",
                    "volumes": [{"name": "a", "secret": {"secretName": "n3-secret"}}],
                    "containers": [{"name": "c"}]
                }
            }),
            json!({
                "metadata": {"name": "pending", "namespace": "default", "uid": "u-p"},
                "spec": {
                    "volumes": [{"name": "a", "secret": {"secretName": "unbound-secret"}}],
                    "containers": [{"name": "c"}]
                }
            }),
        ])
    }

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn n2() -> UserInfo {
        user("system:node:n2", &[NODES_GROUP, "system:authenticated"])
    }

    /// `verb group/resource[/sub] ns/name` as attributes of node n2.
    fn attrs(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> RequestAttributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        RequestAttributes {
            user: n2(),
            verb: verb.into(),
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
            resource_request: true,
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        Allow,
        Deny,
        NoOpinion,
    }

    #[test]
    fn decisions() {
        use Want::*;
        let a = NodeAuthorizer::new(Arc::new(pods()));
        let cases: &[(&str, &str, &str, &str, &str, Want)] = &[
            // Nodes: read all, change only its own.
            ("get", "", "nodes", "", "n3", Allow),
            ("list", "", "nodes", "", "", Allow),
            ("watch", "", "nodes", "", "", Allow),
            ("create", "", "nodes", "", "", Allow),
            ("create", "", "nodes", "", "n2", Allow),
            ("patch", "", "nodes", "", "n2", Allow),
            ("update", "", "nodes", "", "n2", Allow),
            ("delete", "", "nodes", "", "n2", Allow),
            ("patch", "", "nodes/status", "", "n2", Allow),
            ("update", "", "nodes/status", "", "n2", Allow),
            ("patch", "", "nodes", "", "n3", Deny),
            ("patch", "", "nodes/status", "", "n3", Deny),
            ("delete", "", "nodes", "", "n3", Deny),
            ("create", "", "nodes", "", "n3", Deny),
            ("deletecollection", "", "nodes", "", "", Deny),
            ("get", "", "nodes/proxy", "", "n2", NoOpinion),
            // Leases: its own in kube-node-lease.
            (
                "get",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n2",
                Allow,
            ),
            (
                "create",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "",
                Allow,
            ),
            (
                "update",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n2",
                Allow,
            ),
            (
                "patch",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n2",
                Allow,
            ),
            (
                "delete",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n2",
                Allow,
            ),
            (
                "list",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "",
                Allow,
            ),
            (
                "watch",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "",
                Allow,
            ),
            (
                "get",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n3",
                Deny,
            ),
            (
                "update",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n3",
                Deny,
            ),
            (
                "delete",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "n3",
                Deny,
            ),
            (
                "get",
                "coordination.k8s.io",
                "leases",
                "default",
                "n2",
                NoOpinion,
            ),
            // Pods: read all; status and delete of its own; never the spec.
            ("get", "", "pods", "default", "db", Allow),
            ("list", "", "pods", "", "", Allow),
            ("watch", "", "pods", "default", "", Allow),
            ("get", "", "pods/status", "default", "db", Allow),
            ("patch", "", "pods/status", "default", "web", Allow),
            ("update", "", "pods/status", "default", "web", Allow),
            ("patch", "", "pods/status", "default", "db", Deny),
            ("update", "", "pods/status", "default", "pending", Deny),
            ("patch", "", "pods/status", "default", "missing", Deny),
            ("delete", "", "pods", "default", "web", Allow),
            ("delete", "", "pods", "default", "db", Deny),
            ("patch", "", "pods", "default", "web", Deny),
            ("update", "", "pods", "default", "web", Deny),
            ("patch", "", "pods", "default", "db", Deny),
            ("create", "", "pods", "default", "", Deny),
            ("deletecollection", "", "pods", "default", "", Deny),
            ("create", "", "pods/eviction", "default", "db", NoOpinion),
            (
                "create",
                "",
                "pods/binding",
                "default",
                "pending",
                NoOpinion,
            ),
            // Secrets and ConfigMaps: get those its pods use.
            ("get", "", "secrets", "default", "vol-secret", Allow),
            ("get", "", "secrets", "default", "proj-secret", Allow),
            ("get", "", "secrets", "default", "env-secret", Allow),
            ("get", "", "secrets", "default", "init-envfrom", Allow),
            ("get", "", "secrets", "default", "pull", Allow),
            ("get", "", "secrets", "default", "csi-secret", Allow),
            ("get", "", "secrets", "default", "n3-secret", Deny),
            ("get", "", "secrets", "default", "unbound-secret", Deny),
            ("get", "", "secrets", "other", "vol-secret", Deny),
            ("get", "", "secrets", "default", "vol-cm", Deny),
            ("list", "", "secrets", "", "", Deny),
            ("list", "", "secrets", "default", "", Deny),
            ("watch", "", "secrets", "default", "", Deny),
            // A list or watch named by `metadata.name` is a read of that object.
            ("watch", "", "secrets", "default", "vol-secret", Allow),
            ("list", "", "secrets", "default", "vol-secret", Allow),
            ("watch", "", "secrets", "default", "n3-secret", Deny),
            ("create", "", "secrets", "default", "", NoOpinion),
            ("update", "", "secrets", "default", "vol-secret", NoOpinion),
            ("get", "", "configmaps", "default", "vol-cm", Allow),
            ("get", "", "configmaps", "default", "proj-cm", Allow),
            ("get", "", "configmaps", "default", "env-cm", Allow),
            ("get", "", "configmaps", "default", "envfrom-cm", Allow),
            ("get", "", "configmaps", "default", "vol-secret", Deny),
            ("get", "", "configmaps", "default", "kube-root-ca.crt", Deny),
            ("list", "", "configmaps", "default", "", Deny),
            // Tokens for the service accounts its pods use.
            (
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "builder",
                Allow,
            ),
            (
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "default",
                Deny,
            ),
            (
                "create",
                "",
                "serviceaccounts/token",
                "other",
                "builder",
                Deny,
            ),
            (
                "get",
                "",
                "serviceaccounts",
                "default",
                "builder",
                NoOpinion,
            ),
            // Events.
            ("create", "", "events", "default", "", Allow),
            ("patch", "", "events", "default", "e1", Allow),
            ("update", "", "events", "default", "e1", Allow),
            ("create", "events.k8s.io", "events", "default", "", Allow),
            ("delete", "", "events", "default", "e1", NoOpinion),
            // Read-only cluster information.
            ("get", "", "services", "default", "kubernetes", Allow),
            ("list", "", "services", "", "", Allow),
            ("watch", "", "endpoints", "", "", Allow),
            ("list", "discovery.k8s.io", "endpointslices", "", "", Allow),
            ("get", "", "namespaces", "kube-system", "kube-system", Allow),
            ("delete", "", "services", "default", "kubernetes", NoOpinion),
            ("delete", "", "namespaces", "default", "default", NoOpinion),
            // Anything else: no opinion.
            ("list", "apps", "deployments", "", "", NoOpinion),
            (
                "get",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "admin",
                NoOpinion,
            ),
        ];
        for &(verb, group, resource, ns, name, want) in cases {
            let d = a.authorize(&attrs(verb, group, resource, ns, name));
            let got = match d {
                Decision::Allow => Allow,
                Decision::Deny(_) => Deny,
                Decision::NoOpinion => NoOpinion,
            };
            assert_eq!(
                got, want,
                "{verb} {group}/{resource} {ns}/{name}: got {d:?}"
            );
        }
    }

    #[test]
    fn reasons_are_kubernetes_words() {
        let a = NodeAuthorizer::new(Arc::new(pods()));
        assert_eq!(
            a.authorize(&attrs("get", "", "secrets", "default", "n3-secret")),
            Decision::Deny("no relationship found between node 'n2' and this object".into())
        );
        assert_eq!(
            a.authorize(&attrs("list", "", "secrets", "", "")),
            Decision::Deny("can only get individual resources of this type".into())
        );
    }

    #[test]
    fn only_nodes_are_judged() {
        let a = NodeAuthorizer::new(Arc::new(pods()));
        let mut x = attrs("get", "", "secrets", "default", "vol-secret");
        // The name alone does not make a node, nor the group alone.
        x.user = user("system:node:n2", &["system:authenticated"]);
        assert_eq!(a.authorize(&x), Decision::NoOpinion);
        x.user = user("jane", &[NODES_GROUP]);
        assert_eq!(a.authorize(&x), Decision::NoOpinion);
        x.user = user("system:node:", &[NODES_GROUP]);
        assert_eq!(a.authorize(&x), Decision::NoOpinion);
    }

    #[test]
    fn discovery_paths_are_readable() {
        let a = NodeAuthorizer::new(Arc::new(pods()));
        let mut x = attrs("get", "", "", "", "");
        x.resource_request = false;
        for (path, want) in [
            ("/api", true),
            ("/apis/apps/v1", true),
            ("/version", true),
            ("/openapi/v3/api/v1", true),
            ("/metrics", false),
            ("/debug/pprof", false),
        ] {
            x.path = path.into();
            assert_eq!(a.authorize(&x) == Decision::Allow, want, "{path}");
        }
        x.path = "/api".into();
        x.verb = "post".into();
        assert_eq!(a.authorize(&x), Decision::NoOpinion);
    }

    #[test]
    fn union_with_masters_denies_the_rest() {
        let u = super::super::UnionAuthorizer(vec![
            Box::new(super::super::SystemMastersAuthorizer),
            Box::new(NodeAuthorizer::new(Arc::new(pods()))),
        ]);
        assert_eq!(
            u.authorize(&attrs("list", "apps", "deployments", "", "")),
            Decision::Deny(String::new())
        );
        assert_eq!(
            u.authorize(&attrs("patch", "", "nodes", "", "n2")),
            Decision::Allow
        );
    }

    #[test]
    fn references() {
        let r = pod_references(&pods().0[0]);
        assert_eq!(r.service_account, "builder");
        let secrets: Vec<_> = r.secrets.iter().map(String::as_str).collect();
        assert_eq!(
            secrets,
            [
                "csi-secret",
                "env-secret",
                "init-envfrom",
                "proj-secret",
                "pull",
                "vol-secret"
            ]
        );
        let cms: Vec<_> = r.config_maps.iter().map(String::as_str).collect();
        assert_eq!(cms, ["env-cm", "envfrom-cm", "proj-cm", "vol-cm"]);
        assert_eq!(pod_references(&json!({})).service_account, "default");
    }

    #[test]
    fn admission_checks_bodies() {
        let p = pods();
        let check = |verb: &str, group: &str, resource: &str, ns: &str, name: &str, body: Value| {
            admit(&attrs(verb, group, resource, ns, name), Some(&body), &p)
        };
        let named = |n: &str| json!({"metadata": {"name": n}});
        assert!(check("create", "", "nodes", "", "", named("n2")).is_ok());
        assert!(check("create", "", "nodes", "", "", named("n3")).is_err());
        assert!(
            check(
                "create",
                "",
                "nodes",
                "",
                "",
                json!({"metadata": {"generateName": "n"}})
            )
            .is_err()
        );
        assert!(
            check(
                "create",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "",
                named("n2")
            )
            .is_ok()
        );
        assert!(
            check(
                "create",
                "coordination.k8s.io",
                "leases",
                LEASE_NAMESPACE,
                "",
                named("n3")
            )
            .is_err()
        );
        let token = |pod: &str, uid: Option<&str>| json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": uid}}});
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "builder",
                token("web", Some("u-web"))
            )
            .is_ok()
        );
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "builder",
                token("web", None)
            )
            .is_ok()
        );
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "builder",
                token("web", Some("u-x"))
            )
            .is_err()
        );
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "default",
                token("db", None)
            )
            .is_err()
        );
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "default",
                token("web", None)
            )
            .is_err()
        );
        assert!(
            check(
                "create",
                "",
                "serviceaccounts/token",
                "default",
                "builder",
                json!({"spec": {}})
            )
            .is_err()
        );
        // Other users and other requests pass.
        let mut by_admin = attrs("create", "", "nodes", "", "");
        by_admin.user = user("berth-admin", &["system:masters"]);
        assert!(admit(&by_admin, Some(&named("n3")), &p).is_ok());
        assert!(check("patch", "", "pods/status", "default", "web", json!({})).is_ok());
    }
}
