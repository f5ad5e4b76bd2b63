//! Fixtures the unit tests of several modules share: resource kinds built without the registry.
//!
//! Test-only (compiled under `cfg(test)`); it must not hold assertions or logic under test.

use crate::kinds::ResourceKind;

/// A kind with only its group, version, kind and scope set; names, verbs, subresources, schema
/// and storage are empty.
pub(crate) const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceKind {
    ResourceKind {
        group,
        version,
        kind,
        plural: "",
        singular: "",
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: &[],
        subresources: &[],
        schema_name: "",
        storage: ("", ""),
    }
}

/// `apps/v1` Deployment with its names, schema and storage, but no verbs or subresources.
pub(crate) const DEPLOYMENT: ResourceKind = ResourceKind {
    plural: "deployments",
    singular: "deployment",
    schema_name: "io.k8s.api.apps.v1.Deployment",
    storage: ("apps", "deployments"),
    ..kind("apps", "v1", "Deployment", true)
};
