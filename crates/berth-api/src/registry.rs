//! The table of served kinds (see [`crate::kinds`]).

use crate::kinds::{ALL_VERBS, ResourceKind, Subresource};

const STATUS_V1_POD: Subresource = Subresource {
    name: "status",
    response_kind: ("", "v1", "Pod"),
    verbs: &["get", "patch", "update"],
};

/// Every served kind.
pub(crate) static KINDS: &[ResourceKind] = &[ResourceKind {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    singular: "pod",
    namespaced: true,
    short_names: &["po"],
    categories: &["all"],
    verbs: ALL_VERBS,
    subresources: &[STATUS_V1_POD],
    schema_name: "io.k8s.api.core.v1.Pod",
    storage: ("", "pods"),
}];
