//! Parsing a request path and method into what it asks for (Kubernetes' `RequestInfo`).
//!
//! This module owns only the mapping from URL and method to verb, group, version, resource,
//! namespace, name and subresource. It does not check that the resource exists.

use http::Method;

/// What a resource request addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInfo {
    /// True for `/api/...` and `/apis/...` resource paths; false for everything else.
    pub resource_request: bool,
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// The API group (`""` for core).
    pub group: String,
    /// The API version.
    pub version: String,
    /// The namespace, if the path names one.
    pub namespace: Option<String>,
    /// The resource (plural).
    pub resource: String,
    /// The object name, if any.
    pub name: Option<String>,
    /// The subresource, if any (`status`, `scale`, `binding`...).
    pub subresource: Option<String>,
}

/// Parses a resource path. `watch_param` is true when the query has `watch=true|1`.
/// Returns `None` for paths that are not resource paths (discovery documents are handled
/// before this is called).
pub fn parse(method: &Method, path: &str, watch_param: bool) -> Option<RequestInfo> {
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = trimmed.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let (group, version, rest) = match parts.first().copied() {
        Some("api") if parts.len() >= 3 => {
            let version = parts[1].to_string();
            (String::new(), version, parts.split_off(2))
        }
        Some("apis") if parts.len() >= 4 => {
            let group = parts[1].to_string();
            let version = parts[2].to_string();
            (group, version, parts.split_off(3))
        }
        _ => return None,
    };
    let mut rest = rest;
    // Legacy watch paths: /api/v1/watch/namespaces/ns/pods
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest.remove(0);
    }
    let mut info = RequestInfo {
        resource_request: true,
        group,
        version,
        ..Default::default()
    };
    // namespaces/{ns}/{resource}/... unless the resource is namespaces itself.
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        info.namespace = Some(rest[1].to_string());
        rest.drain(0..2);
    }
    match rest.as_slice() {
        [resource] => info.resource = resource.to_string(),
        [resource, name] => {
            info.resource = resource.to_string();
            info.name = Some(name.to_string());
        }
        [resource, name, sub] => {
            info.resource = resource.to_string();
            info.name = Some(name.to_string());
            info.subresource = Some(sub.to_string());
        }
        _ => return None,
    }
    // `/api/v1/namespaces/foo` names the namespace `foo` (the resource is namespaces).
    if info.resource == "namespaces"
        && info.namespace.is_none()
        && let Some(name) = &info.name
    {
        info.namespace = Some(name.clone());
    }
    info.verb = match *method {
        Method::GET | Method::HEAD => {
            if legacy_watch || (watch_param && info.subresource.is_none()) {
                "watch"
            } else if info.name.is_some() {
                "get"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => {
            if info.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => return None,
    }
    .to_string();
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_object_with_subresource() {
        let i = parse(
            &Method::PATCH,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
            false,
        )
        .unwrap();
        assert_eq!(i.verb, "patch");
        assert_eq!(i.group, "apps");
        assert_eq!(i.namespace.as_deref(), Some("ns"));
        assert_eq!(i.resource, "deployments");
        assert_eq!(i.name.as_deref(), Some("web"));
        assert_eq!(i.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn namespace_object_and_lists() {
        let i = parse(&Method::GET, "/api/v1/namespaces/kube-system", false).unwrap();
        assert_eq!(
            (i.resource.as_str(), i.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        assert_eq!(i.namespace.as_deref(), Some("kube-system"));
        let i = parse(&Method::GET, "/api/v1/pods", true).unwrap();
        assert_eq!(i.verb, "watch");
        assert_eq!(i.namespace, None);
        let i = parse(&Method::GET, "/api/v1/watch/namespaces/a/pods", false).unwrap();
        assert_eq!(i.verb, "watch");
        assert_eq!(i.namespace.as_deref(), Some("a"));
        let i = parse(&Method::DELETE, "/api/v1/namespaces/a/configmaps", false).unwrap();
        assert_eq!(i.verb, "deletecollection");
    }

    #[test]
    fn rejects_non_resource_and_malformed() {
        assert!(parse(&Method::GET, "/healthz", false).is_none());
        assert!(parse(&Method::GET, "/api/v1//pods", false).is_none());
        assert!(parse(&Method::GET, "/apis/apps/v1/a/b/c/d/e", false).is_none());
    }
}
