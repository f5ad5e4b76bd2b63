//! The OpenAPI v3 schemas of the built-in kinds and their list, map and merge semantics.
//!
//! Component schemas are generated once from k8s-openapi's `JsonSchema` implementations with
//! schemars' OpenAPI 3 settings, then annotated with the Kubernetes extensions k8s-openapi does
//! not carry (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`,
//! `x-kubernetes-group-version-kind`) from the marker table in `schema/table.rs`.
//!
//! On top of the definitions this module offers a navigation API ([`Node`], [`field`], ...) that
//! strategic merge patch, server-side apply and field validation use to walk an object in step
//! with its schema. This module does not serve documents (that is `openapi`) and does not patch
//! (that is `patch` and `managed`).

mod table;

use std::collections::HashMap;
use std::sync::LazyLock;

use k8s_openapi::api::{
    admissionregistration, apps, authentication, authorization, autoscaling, batch, certificates,
    coordination, core, discovery, events, flowcontrol, networking, node, policy, rbac, scheduling,
    storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
use k8s_openapi::{ListableResource, Resource};
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::kinds::ResourceKind;

/// Prefix of `$ref`s to component schemas.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// The shape of one schema node, for walking an object in step with its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// String, number, boolean, or a type with its own JSON form (Quantity, IntOrString, Time,
    /// MicroTime).
    Scalar,
    /// An object with named fields; the definition name. Atomic if the definition is
    /// `x-kubernetes-map-type: atomic`.
    Struct(String),
    /// A map with arbitrary keys (`additionalProperties`) and its value node; `atomic` from
    /// `x-kubernetes-map-type`.
    Map {
        /// The node of every value.
        value: Box<Node>,
        /// True if the map is replaced as a whole.
        atomic: bool,
    },
    /// A list and its element node.
    List {
        /// The node of every element.
        element: Box<Node>,
        /// `x-kubernetes-list-type` (atomic when absent).
        list_type: ListType,
        /// `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
        patch: PatchStrategy,
    },
    /// Arbitrary JSON (RawExtension, JSON, unknown): atomic.
    Untyped,
}

/// `x-kubernetes-list-type` of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars.
    Set,
    /// A list of objects identified by the values of `keys`.
    Map {
        /// The `x-kubernetes-list-map-keys`.
        keys: Vec<String>,
    },
}

/// The strategic-merge-patch strategy of a field (`x-kubernetes-patch-strategy` and
/// `x-kubernetes-patch-merge-key`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchStrategy {
    /// `x-kubernetes-patch-merge-key`: the field identifying list items.
    pub merge_key: Option<String>,
    /// `merge`: lists are merged (by key, or as a union of scalars).
    pub merge: bool,
    /// `replace`: replaced as a whole.
    pub replace: bool,
    /// `retainKeys`: `$retainKeys` clears the fields of the object it does not list.
    pub retain_keys: bool,
}

impl PatchStrategy {
    fn from_schema(schema: &Value) -> PatchStrategy {
        let mut out = PatchStrategy {
            merge_key: schema
                .get("x-kubernetes-patch-merge-key")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..PatchStrategy::default()
        };
        if let Some(s) = schema
            .get("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
        {
            for part in s.split(',') {
                match part.trim() {
                    "merge" => out.merge = true,
                    "replace" => out.replace = true,
                    "retainKeys" => out.retain_keys = true,
                    _ => {}
                }
            }
        }
        out
    }
}

/// Everything computed once: the definitions and the per-struct navigation index.
struct Schemas {
    definitions: Map<String, Value>,
    structs: HashMap<String, StructInfo>,
}

struct StructInfo {
    atomic: bool,
    fields: HashMap<String, (Node, PatchStrategy)>,
}

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(build);

/// All component schemas by definition name (`io.k8s.api.apps.v1.Deployment`, ...), with `$ref`s
/// pointing to `#/components/schemas/<name>` and the Kubernetes extensions applied.
pub fn definitions() -> &'static Map<String, Value> {
    &SCHEMAS.definitions
}

/// The root node of objects of `kind`: `Node::Struct(kind.schema_name)`.
pub fn root(kind: &ResourceKind) -> Node {
    Node::Struct(kind.schema_name.to_string())
}

/// The node of `field` of the struct definition `struct_name`; `None` for an unknown field (or an
/// unknown struct).
pub fn field(struct_name: &str, field: &str) -> Option<Node> {
    SCHEMAS
        .structs
        .get(struct_name)
        .and_then(|s| s.fields.get(field))
        .map(|(node, _)| node.clone())
}

/// True if the struct definition is `x-kubernetes-map-type: atomic` (replaced as a whole).
pub fn is_atomic_struct(struct_name: &str) -> bool {
    SCHEMAS.structs.get(struct_name).is_some_and(|s| s.atomic)
}

/// The patch strategy of a struct field (e.g. `retainKeys` of `DeploymentSpec.strategy`,
/// `merge,retainKeys` and key `name` of `PodSpec.volumes`); the default for unknown fields.
pub fn field_patch_strategy(struct_name: &str, field: &str) -> PatchStrategy {
    SCHEMAS
        .structs
        .get(struct_name)
        .and_then(|s| s.fields.get(field))
        .map(|(_, p)| p.clone())
        .unwrap_or_default()
}

/// Unknown fields of an object, as Kubernetes reports them for `fieldValidation=Strict/Warn`:
/// each entry a path like `spec.template.spec.containers[0].imagePullPolicyy` (list items by
/// index, map keys as path segments).
///
/// Duplicate fields cannot be seen in a parsed [`Value`]; callers that need them must detect them
/// while decoding the request body.
pub fn unknown_fields(kind: &ResourceKind, obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !SCHEMAS.structs.contains_key(kind.schema_name) {
        // A kind without a schema here: nothing is known to be unknown.
        return out;
    }
    walk_unknown(
        &root(kind),
        &mut obj.clone(),
        false,
        &mut String::new(),
        &mut out,
    );
    out
}

/// Removes the unknown fields of an object, as decoding into the typed object does in
/// kube-apiserver (`fieldValidation=Ignore` or `Warn`), and returns their paths in the form of
/// [`unknown_fields`]. Kinds without a schema here are left alone.
pub fn prune_unknown_fields(kind: &ResourceKind, obj: &mut Value) -> Vec<String> {
    let mut out = Vec::new();
    if SCHEMAS.structs.contains_key(kind.schema_name) {
        walk_unknown(&root(kind), obj, true, &mut String::new(), &mut out);
    }
    out
}

/// Walks `value` with `node`, recording the paths of unknown fields in `out` and, if `prune`,
/// removing them.
fn walk_unknown(
    node: &Node,
    value: &mut Value,
    prune: bool,
    path: &mut String,
    out: &mut Vec<String>,
) {
    let push_key = |path: &mut String, key: &str| {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    };
    match (node, value) {
        (Node::Struct(name), Value::Object(map)) => {
            let mut unknown = Vec::new();
            for (key, child) in map.iter_mut() {
                let len = path.len();
                push_key(path, key);
                match field(name, key) {
                    Some(child_node) => walk_unknown(&child_node, child, prune, path, out),
                    None => {
                        out.push(path.clone());
                        unknown.push(key.clone());
                    }
                }
                path.truncate(len);
            }
            if prune {
                for key in unknown {
                    map.shift_remove(&key);
                }
            }
        }
        (Node::Map { value: inner, .. }, Value::Object(map)) => {
            for (key, child) in map.iter_mut() {
                let len = path.len();
                push_key(path, key);
                walk_unknown(inner, child, prune, path, out);
                path.truncate(len);
            }
        }
        (Node::List { element, .. }, Value::Array(items)) => {
            for (i, child) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk_unknown(element, child, prune, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Adds one type's schema (and everything it references) to the generator; records its GVK.
fn add<T: JsonSchema + Resource>(generator: &mut SchemaGenerator, gvks: &mut Vec<(String, Value)>) {
    generator.subschema_for::<T>();
    gvks.push((
        T::schema_name().into_owned(),
        gvk(T::GROUP, T::VERSION, T::KIND),
    ));
}

/// Like [`add`], for a kind that has a list kind: also records the list definition to synthesize.
fn add_listable<T: JsonSchema + ListableResource>(
    generator: &mut SchemaGenerator,
    gvks: &mut Vec<(String, Value)>,
    lists: &mut Vec<(String, &'static str, &'static str, &'static str)>,
) {
    add::<T>(generator, gvks);
    lists.push((
        T::schema_name().into_owned(),
        T::GROUP,
        T::VERSION,
        T::LIST_KIND,
    ));
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

fn build() -> Schemas {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let mut gvks = Vec::new();
    let mut lists = Vec::new();
    macro_rules! listable {
        ($($t:ty),* $(,)?) => { $( add_listable::<$t>(&mut generator, &mut gvks, &mut lists); )* };
    }
    macro_rules! single {
        ($($t:ty),* $(,)?) => { $( add::<$t>(&mut generator, &mut gvks); )* };
    }
    listable!(
        core::v1::Namespace,
        core::v1::Node,
        core::v1::Pod,
        core::v1::PodTemplate,
        core::v1::ReplicationController,
        core::v1::Service,
        core::v1::Endpoints,
        core::v1::ConfigMap,
        core::v1::Secret,
        core::v1::Event,
        core::v1::ServiceAccount,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        core::v1::ResourceQuota,
        core::v1::LimitRange,
        apps::v1::Deployment,
        apps::v1::ReplicaSet,
        apps::v1::StatefulSet,
        apps::v1::DaemonSet,
        apps::v1::ControllerRevision,
        batch::v1::Job,
        batch::v1::CronJob,
        autoscaling::v2::HorizontalPodAutoscaler,
        autoscaling::v1::HorizontalPodAutoscaler,
        coordination::v1::Lease,
        discovery::v1::EndpointSlice,
        networking::v1::Ingress,
        networking::v1::IngressClass,
        networking::v1::NetworkPolicy,
        rbac::v1::Role,
        rbac::v1::ClusterRole,
        rbac::v1::RoleBinding,
        rbac::v1::ClusterRoleBinding,
        policy::v1::PodDisruptionBudget,
        storage::v1::StorageClass,
        events::v1::Event,
        // Not served yet, but kinds kubectl and clients commonly look up.
        admissionregistration::v1::MutatingWebhookConfiguration,
        admissionregistration::v1::ValidatingWebhookConfiguration,
        admissionregistration::v1::ValidatingAdmissionPolicy,
        admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        certificates::v1::CertificateSigningRequest,
        flowcontrol::v1::FlowSchema,
        flowcontrol::v1::PriorityLevelConfiguration,
        node::v1::RuntimeClass,
        scheduling::v1::PriorityClass,
        storage::v1::CSIDriver,
        storage::v1::CSINode,
        storage::v1::VolumeAttachment,
        apiextensions::CustomResourceDefinition,
        apiregistration::APIService,
    );
    single!(
        core::v1::Binding,
        autoscaling::v1::Scale,
        policy::v1::Eviction,
        authentication::v1::TokenRequest,
        authentication::v1::TokenReview,
        authentication::v1::SelfSubjectReview,
        authorization::v1::SelfSubjectAccessReview,
        authorization::v1::SelfSubjectRulesReview,
        authorization::v1::SubjectAccessReview,
        authorization::v1::LocalSubjectAccessReview,
    );
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::APIGroup>();
    generator.subschema_for::<meta::APIGroupList>();
    generator.subschema_for::<meta::APIResourceList>();
    generator.subschema_for::<meta::APIVersions>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::ListMeta>();
    let mut definitions = generator.take_definitions(true);

    for (def, field, strategy, key, list_type, keys) in table::FIELDS {
        let Some(prop) = definitions
            .get_mut(&table::full_name(def))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if !strategy.is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        }
        if !key.is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        if !list_type.is_empty() {
            prop.insert("x-kubernetes-list-type".into(), json!(list_type));
        }
        if !keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
    for def in table::ATOMIC_STRUCTS {
        if let Some(d) = definitions
            .get_mut(&table::full_name(def))
            .and_then(Value::as_object_mut)
        {
            d.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }
    for (def, field) in table::ATOMIC_MAPS {
        if let Some(prop) = definitions
            .get_mut(&table::full_name(def))
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut)
        {
            prop.insert("x-kubernetes-map-type".into(), json!("atomic"));
        }
    }

    // Group-version-kinds; a definition serving several (Event) collects all of them.
    let status_gvk = gvk("", "v1", "Status");
    gvks.push((meta::Status::schema_name().into_owned(), status_gvk));
    let mut groups: Vec<(&str, &str)> = gvks
        .iter()
        .filter_map(|(_, v)| Some((v.get("group")?.as_str()?, v.get("version")?.as_str()?)))
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let delete_gvks: Vec<Value> = groups
        .iter()
        .map(|(g, v)| gvk(g, v, "DeleteOptions"))
        .collect();
    let mut by_def: Vec<(String, Vec<Value>)> = Vec::new();
    for (def, v) in gvks.iter().cloned() {
        match by_def.iter_mut().find(|(d, _)| *d == def) {
            Some((_, list)) => list.push(v),
            None => by_def.push((def, vec![v])),
        }
    }
    by_def.push((meta::DeleteOptions::schema_name().into_owned(), delete_gvks));
    for (def, list) in by_def {
        if let Some(d) = definitions.get_mut(&def).and_then(Value::as_object_mut) {
            d.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }

    // List kinds: k8s-openapi has no schema for them, so they are written here.
    let list_meta = format!("{REF_PREFIX}{}", meta::ListMeta::schema_name());
    for (item, group, version, list_kind) in lists {
        let Some((prefix, _)) = item.rsplit_once('.') else {
            continue;
        };
        let name = format!("{prefix}.{list_kind}");
        let item_kind = list_kind.strip_suffix("List").unwrap_or(list_kind);
        definitions.insert(
            name,
            json!({
                "description": format!("{list_kind} is a list of {item_kind} objects."),
                "type": "object",
                "required": ["items"],
                "properties": {
                    "apiVersion": {
                        "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                        "type": "string"
                    },
                    "items": {
                        "description": format!("items is the list of {item_kind} objects."),
                        "type": "array",
                        "items": {"$ref": format!("{REF_PREFIX}{item}")}
                    },
                    "kind": {
                        "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                        "type": "string"
                    },
                    "metadata": {
                        "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                        "allOf": [{"$ref": list_meta}]
                    }
                },
                "x-kubernetes-group-version-kind": [gvk(group, version, list_kind)]
            }),
        );
    }

    let structs = index(&definitions);
    Schemas {
        definitions,
        structs,
    }
}

/// The navigation index: for every definition with properties, its fields' nodes.
fn index(definitions: &Map<String, Value>) -> HashMap<String, StructInfo> {
    let mut out = HashMap::new();
    for (name, def) in definitions {
        let Some(props) = def.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let fields = props
            .iter()
            .map(|(f, s)| {
                (
                    f.clone(),
                    (node_of(s, definitions), PatchStrategy::from_schema(s)),
                )
            })
            .collect();
        let atomic = def.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
        out.insert(name.clone(), StructInfo { atomic, fields });
    }
    out
}

/// The definition a schema refers to, through `$ref` or a single-element `allOf`.
fn ref_name(schema: &Value) -> Option<&str> {
    let r = schema.get("$ref").or_else(|| {
        schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|s| s.get("$ref"))
    })?;
    r.as_str()?.strip_prefix(REF_PREFIX)
}

fn node_of(schema: &Value, definitions: &Map<String, Value>) -> Node {
    if let Some(name) = ref_name(schema) {
        return match definitions.get(name) {
            Some(def) if def.get("properties").is_some() => Node::Struct(name.to_string()),
            Some(def) => node_of(def, definitions),
            None => Node::Untyped,
        };
    }
    if schema.get("x-kubernetes-int-or-string").is_some() {
        return Node::Scalar;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => {
            let element = schema
                .get("items")
                .map_or(Node::Untyped, |i| node_of(i, definitions));
            let list_type = match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => ListType::Set,
                Some("map") => ListType::Map {
                    keys: schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|k| {
                            k.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                },
                _ => ListType::Atomic,
            };
            Node::List {
                element: Box::new(element),
                list_type,
                patch: PatchStrategy::from_schema(schema),
            }
        }
        Some("object") => match schema.get("additionalProperties") {
            Some(ap @ Value::Object(_)) => Node::Map {
                value: Box::new(node_of(ap, definitions)),
                atomic: schema.get("x-kubernetes-map-type").and_then(Value::as_str)
                    == Some("atomic"),
            },
            _ => Node::Untyped,
        },
        Some(_) => Node::Scalar,
        None => Node::Untyped,
    }
}

#[cfg(test)]
mod tests;
