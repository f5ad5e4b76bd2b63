//! The discovery documents `kubectl` and client libraries read to learn which resources exist:
//! aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` on `/api` and `/apis`)
//! and the legacy documents (`APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`).
//!
//! Everything is computed from the kind registry ([`crate::kinds::all`]); the shapes follow what a
//! Kubernetes 1.33 API server returns. This module does not do HTTP: the server picks the document
//! and the Content-Type ([`AGGREGATED_CONTENT_TYPE`] for aggregated discovery). Clients that ask
//! for `v=v2beta1` get the same body with `apiVersion: apidiscovery.k8s.io/v2beta1` (see
//! [`with_discovery_version`] and [`AGGREGATED_CONTENT_TYPE_V2BETA1`]).

use std::cmp::Ordering;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::kinds::{self, ResourceKind, Subresource};

/// Content-Type of aggregated discovery documents (`/api` and `/apis`).
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Content-Type of aggregated discovery for clients that ask for `v2beta1` (kubectl before 1.30).
pub const AGGREGATED_CONTENT_TYPE_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Group priorities as kube-apiserver orders groups in discovery (higher first); groups not
/// listed come after, alphabetically.
const GROUP_PRIORITY: &[(&str, u32)] = &[
    ("", 18000),
    ("apiregistration.k8s.io", 17900),
    ("apps", 17800),
    ("events.k8s.io", 17750),
    ("authentication.k8s.io", 17700),
    ("authorization.k8s.io", 17600),
    ("autoscaling", 17500),
    ("batch", 17400),
    ("certificates.k8s.io", 17300),
    ("networking.k8s.io", 17200),
    ("policy", 17100),
    ("rbac.authorization.k8s.io", 17000),
    ("storage.k8s.io", 16800),
    ("admissionregistration.k8s.io", 16700),
    ("apiextensions.k8s.io", 16700),
    ("scheduling.k8s.io", 16600),
    ("coordination.k8s.io", 16500),
    ("node.k8s.io", 16300),
    ("discovery.k8s.io", 16200),
    ("flowcontrol.apiserver.k8s.io", 16100),
    ("resource.k8s.io", 15900),
    ("metrics.k8s.io", 100),
];

fn group_priority(group: &str) -> u32 {
    GROUP_PRIORITY
        .iter()
        .find(|(g, _)| *g == group)
        .map_or(0, |(_, p)| *p)
}

/// Kubernetes version ordering: GA before beta before alpha, then higher numbers first
/// (`v2, v1, v2beta1, v1beta1, v1alpha1`); versions of other shapes last, alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u8, u32, u32)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u32 = rest.get(..digits)?.parse().ok()?;
        let tail = rest.get(digits..)?;
        if tail.is_empty() {
            return Some((2, major, 0));
        }
        let (rank, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((rank, major, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The served groups (core `""` first) in discovery order, each with its versions in preference
/// order (the first is the preferred version).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in kinds::all() {
        match out.iter_mut().find(|(g, _)| *g == k.group) {
            Some((_, versions)) => {
                if !versions.contains(&k.version) {
                    versions.push(k.version);
                }
            }
            None => out.push((k.group, vec![k.version])),
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by(|a, b| compare_versions(a, b));
    }
    out.sort_by(|(a, _), (b, _)| {
        group_priority(b)
            .cmp(&group_priority(a))
            .then_with(|| a.cmp(b))
    });
    out
}

/// The kinds of one group-version, sorted by resource name as kube-apiserver lists them.
fn resources_of(group: &str, version: &str) -> Vec<&'static ResourceKind> {
    let mut out: Vec<&'static ResourceKind> = kinds::all()
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    out.sort_by_key(|k| k.plural);
    out
}

/// `responseKind` as discovery writes it: group and version empty when they are the parent's.
fn response_kind(parent: &ResourceKind, (group, version, kind): (&str, &str, &str)) -> Value {
    if group == parent.group && version == parent.version {
        json!({"group": "", "version": "", "kind": kind})
    } else {
        json!({"group": group, "version": version, "kind": kind})
    }
}

fn aggregated_resource(k: &ResourceKind) -> Value {
    let mut r = json!({
        "resource": k.plural,
        "responseKind": response_kind(k, (k.group, k.version, k.kind)),
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": k.verbs,
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if !k.categories.is_empty() {
        r["categories"] = json!(k.categories);
    }
    if !k.subresources.is_empty() {
        let mut subs: Vec<&Subresource> = k.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        r["subresources"] = Value::Array(
            subs.iter()
                .map(|s| {
                    json!({
                        "subresource": s.name,
                        "responseKind": response_kind(k, s.response_kind),
                        "verbs": s.verbs,
                    })
                })
                .collect(),
        );
    }
    r
}

fn aggregated_group(group: &str, versions: &[&str]) -> Value {
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata = json!({"name": group, "creationTimestamp": null});
    }
    json!({
        "metadata": metadata,
        "versions": versions
            .iter()
            .map(|v| {
                json!({
                    "version": v,
                    "resources": resources_of(group, v)
                        .into_iter()
                        .map(aggregated_resource)
                        .collect::<Vec<_>>(),
                    "freshness": "Current",
                })
            })
            .collect::<Vec<_>>(),
    })
}

fn discovery_list(items: Vec<Value>) -> Value {
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// `GET /api` as aggregated discovery: an `APIGroupDiscoveryList` with one item, the core group.
pub fn aggregated_core() -> Value {
    let items = groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty())
        .map(|(g, v)| aggregated_group(g, &v))
        .collect();
    discovery_list(items)
}

/// `GET /apis` as aggregated discovery: every non-core group with its versions and resources.
pub fn aggregated_groups() -> Value {
    let items = groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| aggregated_group(g, &v))
        .collect();
    discovery_list(items)
}

/// The same aggregated document under another `apidiscovery.k8s.io` version (`v2beta1`): the
/// body is identical apart from `apiVersion`.
pub fn with_discovery_version(mut doc: Value, version: &str) -> Value {
    doc["apiVersion"] = json!(format!("apidiscovery.k8s.io/{version}"));
    doc
}

/// Which aggregated discovery version an `Accept` header asks for: `Some("v2")` or
/// `Some("v2beta1")` when the first media range the server can serve is
/// `application/json;g=apidiscovery.k8s.io;v=<version>;as=APIGroupDiscoveryList`, `None` when a
/// plain JSON type (or `*/*`) comes first or nothing matches: then the legacy documents are
/// served. Media ranges with `q=0` are skipped; otherwise the header's order is the preference.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut g, mut v, mut r#as, mut q_zero) = (None, None, None, false);
        for p in parts {
            let Some((key, value)) = p.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "g" => g = Some(value),
                "v" => v = Some(value),
                "as" => r#as = Some(value),
                "q" => q_zero = value.parse::<f32>().is_ok_and(|q| q <= 0.0),
                _ => {}
            }
        }
        if q_zero {
            continue;
        }
        if media == "application/json"
            && g == Some("apidiscovery.k8s.io")
            && r#as == Some("APIGroupDiscoveryList")
        {
            match v {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => continue,
            }
        }
        if g.is_none()
            && r#as.is_none()
            && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
        {
            return None;
        }
    }
    None
}

/// The Content-Type of an aggregated discovery reply of `version` (`v2` or `v2beta1`).
pub fn aggregated_content_type(version: &str) -> &'static str {
    if version == "v2beta1" {
        AGGREGATED_CONTENT_TYPE_V2BETA1
    } else {
        AGGREGATED_CONTENT_TYPE
    }
}

/// Legacy `GET /api`: `APIVersions`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

fn group_version(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

fn legacy_group(group: &str, versions: &[&str]) -> Value {
    let listed: Vec<Value> = versions.iter().map(|v| group_version(group, v)).collect();
    let preferred = listed.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": listed, "preferredVersion": preferred})
}

/// Legacy `GET /apis`: `APIGroupList` of every non-core group with its preferred version.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| legacy_group(g, &v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`: `APIGroup`; `None` if the group is not served.
pub fn api_group(group: &str) -> Option<Value> {
    if group.is_empty() {
        return None;
    }
    let (g, versions) = groups().into_iter().find(|(g, _)| *g == group)?;
    let mut doc = json!({"kind": "APIGroup", "apiVersion": "v1"});
    if let (Some(obj), Value::Object(body)) = (doc.as_object_mut(), legacy_group(g, &versions)) {
        obj.extend(body);
    }
    Some(doc)
}

/// A stable stand-in for kube-apiserver's storage version hash: base64 of 8 bytes of a hash of
/// `group/version/Kind`.
fn storage_version_hash(k: &ResourceKind) -> String {
    let digest = fnv1a64(format!("{}/{}/{}", k.group, k.version, k.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.to_be_bytes())
}

/// 64-bit FNV-1a.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// `GET /api/v1` (group `""`) or `GET /apis/{group}/{version}`: `APIResourceList`, subresources
/// as `pods/status` entries; `None` if the group-version is not served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let kinds = resources_of(group, version);
    if kinds.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for k in kinds {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": k.verbs,
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        r["storageVersionHash"] = json!(storage_version_hash(k));
        resources.push(r);
        let mut subs: Vec<&Subresource> = k.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        for s in subs {
            let (g, v, kind) = s.response_kind;
            let mut r = json!({
                "name": format!("{}/{}", k.plural, s.name),
                "singularName": "",
                "namespaced": k.namespaced,
            });
            if g != k.group || v != k.version {
                r["group"] = json!(g);
                r["version"] = json!(v);
            }
            r["kind"] = json!(kind);
            r["verbs"] = json!(s.verbs);
            resources.push(r);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut doc = json!({"kind": "APIResourceList"});
    if !group.is_empty() {
        doc["apiVersion"] = json!("v1");
    }
    doc["groupVersion"] = json!(group_version);
    doc["resources"] = Value::Array(resources);
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1beta1", "v1", "v2beta2", "v1alpha1", "v2", "foo", "v10"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v2beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn core_first_and_groups_by_priority() {
        let gs = groups();
        assert_eq!(gs[0].0, "");
        assert_eq!(gs[0].1[0], "v1");
        let names: Vec<&str> = gs.iter().map(|(g, _)| *g).collect();
        let pos = |g: &str| names.iter().position(|n| *n == g);
        if let (Some(a), Some(b)) = (pos("apps"), pos("batch")) {
            assert!(a < b);
        }
        for (_, versions) in &gs {
            let mut sorted = versions.clone();
            sorted.sort_by(|a, b| compare_versions(a, b));
            assert_eq!(&sorted, versions);
        }
    }

    #[test]
    fn aggregated_core_has_pods() {
        let doc = aggregated_core();
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = doc["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = v1["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|r| r["resource"] == "pods")
            .expect("pods");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert!(
            pods["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("watch")))
        );
        let status = pods["subresources"]
            .as_array()
            .expect("subresources")
            .iter()
            .find(|s| s["subresource"] == "status")
            .expect("status");
        assert_eq!(status["responseKind"]["kind"], "Pod");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
    }

    #[test]
    fn every_resource_has_what_kubectl_needs() {
        for doc in [aggregated_core(), aggregated_groups()] {
            for item in doc["items"].as_array().expect("items") {
                for version in item["versions"].as_array().expect("versions") {
                    for r in version["resources"].as_array().expect("resources") {
                        assert!(
                            r["responseKind"]["kind"]
                                .as_str()
                                .is_some_and(|k| !k.is_empty())
                        );
                        assert!(r["verbs"].as_array().is_some_and(|v| !v.is_empty()));
                        assert!(r["scope"] == "Namespaced" || r["scope"] == "Cluster");
                    }
                }
            }
        }
        let doc = aggregated_groups();
        for item in doc["items"].as_array().expect("items") {
            assert!(
                item["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| !n.is_empty())
            );
        }
    }

    #[test]
    fn legacy_documents() {
        let v = api_versions("10.0.0.1:6443");
        assert_eq!(v["versions"], json!(["v1"]));
        assert_eq!(
            v["serverAddressByClientCIDRs"][0],
            json!({"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"})
        );
        let list = api_group_list();
        assert_eq!(list["kind"], "APIGroupList");
        for g in list["groups"].as_array().expect("groups") {
            let name = g["name"].as_str().expect("name");
            assert_eq!(g["preferredVersion"], g["versions"][0]);
            let one = api_group(name).expect("group");
            assert_eq!(one["kind"], "APIGroup");
            assert_eq!(one["versions"], g["versions"]);
        }
        assert!(api_group("").is_none());
        assert!(api_group("nope.example.com").is_none());
    }

    #[test]
    fn resource_list_core() {
        let doc = api_resource_list("", "v1").expect("core");
        assert_eq!(doc["groupVersion"], "v1");
        assert!(doc.get("apiVersion").is_none());
        let resources = doc["resources"].as_array().expect("resources");
        let pods = resources
            .iter()
            .find(|r| r["name"] == "pods")
            .expect("pods");
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert!(
            pods["storageVersionHash"]
                .as_str()
                .is_some_and(|h| h.len() == 12)
        );
        let status = resources
            .iter()
            .find(|r| r["name"] == "pods/status")
            .expect("pods/status");
        assert_eq!(status["kind"], "Pod");
        assert_eq!(status["singularName"], "");
        assert!(status.get("group").is_none());
        assert!(api_resource_list("", "v2").is_none());
        assert!(api_resource_list("nope", "v1").is_none());
    }

    #[test]
    fn every_group_version_has_a_resource_list() {
        for (g, versions) in groups() {
            for v in versions {
                let doc = api_resource_list(g, v).expect("served");
                if !g.is_empty() {
                    assert_eq!(doc["groupVersion"], format!("{g}/{v}"));
                    assert_eq!(doc["apiVersion"], "v1");
                }
            }
        }
    }

    #[test]
    fn v2beta1_is_same_body() {
        let doc = with_discovery_version(aggregated_groups(), "v2beta1");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(doc["items"], aggregated_groups()["items"]);
    }

    #[test]
    fn accept_negotiation() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        let old = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(old), Some("v2beta1"));
        assert_eq!(
            aggregated_content_type("v2beta1"),
            AGGREGATED_CONTENT_TYPE_V2BETA1
        );
        assert_eq!(aggregated_content_type("v2"), AGGREGATED_CONTENT_TYPE);
        assert_eq!(aggregated_version("application/json, */*"), None);
        assert_eq!(aggregated_version(""), None);
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
            ),
            None
        );
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0, application/json"
            ),
            None
        );
        assert_eq!(
            aggregated_version(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
    }
}
