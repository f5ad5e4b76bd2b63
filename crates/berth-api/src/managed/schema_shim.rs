//! Temporary stand-in for `crate::schema` (same API) until it lands; Deployment only.
#![allow(dead_code)]

use crate::kinds::ResourceKind;

/// Schema node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Scalar.
    Scalar,
    /// Struct.
    Struct(String),
    /// Map.
    Map {
        /// Values.
        value: Box<Node>,
        /// Atomic.
        atomic: bool,
    },
    /// List.
    List {
        /// Element.
        element: Box<Node>,
        /// Type.
        list_type: ListType,
        /// Patch.
        patch: PatchStrategy,
    },
    /// Untyped.
    Untyped,
}

/// List type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Atomic.
    Atomic,
    /// Set.
    Set,
    /// Map.
    Map {
        /// Keys.
        keys: Vec<String>,
    },
}

/// Patch strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchStrategy {
    /// None.
    None,
}

/// Root.
pub fn root(kind: &ResourceKind) -> Node {
    Node::Struct(kind.schema_name.to_string())
}

fn s(name: &str) -> Node {
    Node::Struct(name.to_string())
}
fn map_of(keys: &[&str], element: &str) -> Node {
    Node::List {
        element: Box::new(s(element)),
        list_type: ListType::Map {
            keys: keys.iter().map(|k| k.to_string()).collect(),
        },
        patch: PatchStrategy::None,
    }
}
fn strings() -> Node {
    Node::Map {
        value: Box::new(Node::Scalar),
        atomic: false,
    }
}
fn atomic_list() -> Node {
    Node::List {
        element: Box::new(Node::Scalar),
        list_type: ListType::Atomic,
        patch: PatchStrategy::None,
    }
}

/// Field.
pub fn field(struct_name: &str, field: &str) -> Option<Node> {
    let short = struct_name.rsplit('.').next().unwrap_or(struct_name);
    Some(match (short, field) {
        ("Deployment", "metadata") | ("PodTemplateSpec", "metadata") => s("ObjectMeta"),
        ("Deployment", "spec") => s("DeploymentSpec"),
        ("Deployment", "status") => s("DeploymentStatus"),
        ("Deployment", "apiVersion" | "kind") => Node::Scalar,
        ("ObjectMeta", "labels" | "annotations") => strings(),
        ("ObjectMeta", "finalizers") => Node::List {
            element: Box::new(Node::Scalar),
            list_type: ListType::Set,
            patch: PatchStrategy::None,
        },
        ("ObjectMeta", "ownerReferences") => map_of(&["uid"], "OwnerReference"),
        (
            "ObjectMeta",
            "name" | "namespace" | "uid" | "resourceVersion" | "generation" | "creationTimestamp"
            | "deletionTimestamp",
        ) => Node::Scalar,
        ("ObjectMeta", "managedFields") => atomic_list(),
        ("DeploymentSpec", "selector") => s("LabelSelector"),
        ("DeploymentSpec", "template") => s("PodTemplateSpec"),
        ("DeploymentSpec", "strategy") => s("DeploymentStrategy"),
        (
            "DeploymentSpec",
            "replicas"
            | "paused"
            | "minReadySeconds"
            | "revisionHistoryLimit"
            | "progressDeadlineSeconds",
        ) => Node::Scalar,
        ("DeploymentStrategy", "type") => Node::Scalar,
        ("DeploymentStrategy", "rollingUpdate") => s("RollingUpdateDeployment"),
        ("RollingUpdateDeployment", "maxSurge" | "maxUnavailable") => Node::Scalar,
        ("DeploymentStatus", "conditions") => map_of(&["type"], "DeploymentCondition"),
        ("DeploymentStatus", _) => Node::Scalar,
        ("PodTemplateSpec", "spec") => s("PodSpec"),
        ("PodSpec", "containers" | "initContainers") => map_of(&["name"], "Container"),
        ("PodSpec", "volumes") => map_of(&["name"], "Volume"),
        ("PodSpec", "securityContext") => s("PodSecurityContext"),
        (
            "PodSpec",
            "restartPolicy"
            | "dnsPolicy"
            | "schedulerName"
            | "terminationGracePeriodSeconds"
            | "nodeName",
        ) => Node::Scalar,
        ("Container", "ports") => map_of(&["containerPort", "protocol"], "ContainerPort"),
        ("Container", "env") => map_of(&["name"], "EnvVar"),
        ("Container", "volumeMounts") => map_of(&["mountPath"], "VolumeMount"),
        ("Container", "args" | "command") => atomic_list(),
        ("Container", "resources") => s("ResourceRequirements"),
        (
            "Container",
            "name"
            | "image"
            | "imagePullPolicy"
            | "terminationMessagePath"
            | "terminationMessagePolicy",
        ) => Node::Scalar,
        ("ContainerPort", "containerPort" | "protocol" | "name" | "hostPort") => Node::Scalar,
        ("EnvVar", "name" | "value") => Node::Scalar,
        ("Volume", "name") => Node::Scalar,
        ("Volume", "emptyDir") => s("EmptyDirVolumeSource"),
        _ => return None,
    })
}

/// Atomic struct.
pub fn is_atomic_struct(struct_name: &str) -> bool {
    struct_name.ends_with("LabelSelector")
}
