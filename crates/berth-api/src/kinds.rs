//! The kind registry: every resource the API serves, with its group, version, kind, plural and
//! singular names, scope, short names, categories, verbs and subresources.
//!
//! The API server is generic over this table: adding a kind is adding an entry here (plus its
//! defaulting, validation, table columns and selectable fields in the sibling modules). This
//! module owns only the static facts; behaviour lives in `defaults`, `validation`, `table` and
//! `fields`, keyed by [`ResourceKind`].

/// A subresource of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    /// The path segment, e.g. `status`, `scale`, `log`, `binding`, `eviction`.
    pub name: &'static str,
    /// The kind sent and returned, as `(group, version, kind)`; `status` uses the parent kind.
    pub response_kind: (&'static str, &'static str, &'static str),
    /// The verbs allowed on it.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceKind {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// Kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular name, e.g. `deployment`.
    pub singular: &'static str,
    /// True for namespaced resources.
    pub namespaced: bool,
    /// Short names, e.g. `["deploy"]`.
    pub short_names: &'static [&'static str],
    /// Categories, e.g. `["all"]`.
    pub categories: &'static [&'static str],
    /// Verbs on the main resource.
    pub verbs: &'static [&'static str],
    /// Subresources.
    pub subresources: &'static [Subresource],
    /// The OpenAPI definition name of the kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub schema_name: &'static str,
    /// The storage location: `(group, resource)` used in the store key. Usually the kind's own
    /// group and plural; kinds served in two groups share one (events).
    pub storage: (&'static str, &'static str),
}

impl ResourceKind {
    /// `apiVersion` as written in objects: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The list kind, e.g. `DeploymentList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// True if the kind has the named subresource.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// True if the kind has a `status` subresource (so that writes to the main resource ignore
    /// `status` and writes to `status` ignore everything else).
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The store key prefix for all objects of this resource, ending in `/`.
    pub fn key_prefix(&self) -> String {
        let (group, resource) = self.storage;
        let group = if group.is_empty() { "core" } else { group };
        format!("/registry/{group}/{resource}/")
    }

    /// The store key prefix of this resource in one namespace, ending in `/`.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("{}{namespace}/", self.key_prefix())
    }

    /// The store key of one object. `namespace` is ignored for cluster-scoped kinds.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }
}

/// The verbs of an ordinary read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Every served resource.
pub fn all() -> &'static [ResourceKind] {
    crate::registry::KINDS
}

/// The resource `plural` in `group`/`version`, if served.
pub fn by_resource(group: &str, version: &str, plural: &str) -> Option<&'static ResourceKind> {
    all()
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)
}

/// The resource of `kind` in `apiVersion` (`v1`, `apps/v1`), if served.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceKind> {
    let (group, version) = split_api_version(api_version);
    all()
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}
