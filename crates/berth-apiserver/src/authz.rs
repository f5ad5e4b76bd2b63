//! Authorization: whether an authenticated user may perform a request.
//!
//! Owns the [`Authorizer`] trait, the request attributes it decides on, the `system:masters`
//! authorizer, the union of authorizers, and Kubernetes' "forbidden" message. It must not parse
//! HTTP requests (the server builds [`RequestAttributes`]) nor authenticate anyone.

pub mod node;

use crate::authn::UserInfo;

/// The group whose members may do anything.
pub const SYSTEM_MASTERS: &str = "system:masters";

/// What a request wants to do, as the authorizers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAttributes {
    /// The authenticated user.
    pub user: UserInfo,
    /// get list watch create update patch delete deletecollection (resource requests), or the
    /// lower-case HTTP method for non-resource requests.
    pub verb: String,
    /// The API group ("" for the core group).
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The resource (plural), e.g. "pods".
    pub resource: String,
    /// The subresource, e.g. "status", or "".
    pub subresource: String,
    /// The namespace, or "" for cluster-scoped requests.
    pub namespace: String,
    /// The object name, or "".
    pub name: String,
    /// The request path.
    pub path: String,
    /// Whether this is a request for an API resource (else a non-resource path like /healthz).
    pub resource_request: bool,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request is allowed.
    Allow,
    /// The request is denied, with a reason (may be empty).
    Deny(String),
    /// This authorizer has no opinion; the next one decides.
    NoOpinion,
}

/// Decides whether a request is allowed.
pub trait Authorizer: Send + Sync {
    /// Decides on `attrs`.
    fn authorize(&self, attrs: &RequestAttributes) -> Decision;
}

/// Allows everything for members of `system:masters`; no opinion otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemMastersAuthorizer;

impl Authorizer for SystemMastersAuthorizer {
    fn authorize(&self, attrs: &RequestAttributes) -> Decision {
        if attrs.user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }
}

/// Asks each authorizer in order: the first `Allow` or `Deny` wins; if all have no opinion the
/// request is denied with an empty reason, so the caller's message is exactly Kubernetes'
/// [`forbidden_message`] (Kubernetes adds no reason when no authorizer had an opinion).
pub struct UnionAuthorizer(pub Vec<Box<dyn Authorizer>>);

impl Authorizer for UnionAuthorizer {
    fn authorize(&self, attrs: &RequestAttributes) -> Decision {
        for a in &self.0 {
            match a.authorize(attrs) {
                Decision::NoOpinion => continue,
                d => return d,
            }
        }
        Decision::Deny(String::new())
    }
}

/// Kubernetes' message for a forbidden request, e.g.
/// `User "jane" cannot list resource "pods" in API group "" in the namespace "default"`,
/// `... at the cluster scope`, or for non-resource requests `User "jane" cannot get path "/foo"`.
pub fn forbidden_message(attrs: &RequestAttributes) -> String {
    let user = &attrs.user.name;
    if !attrs.resource_request {
        return format!("User {user:?} cannot {} path {:?}", attrs.verb, attrs.path);
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let mut msg = format!(
        "User {user:?} cannot {} resource {resource:?} in API group {:?}",
        attrs.verb, attrs.api_group
    );
    if attrs.namespace.is_empty() {
        msg.push_str(" at the cluster scope");
    } else {
        msg.push_str(&format!(" in the namespace {:?}", attrs.namespace));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(user: &str, groups: &[&str]) -> RequestAttributes {
        RequestAttributes {
            user: UserInfo {
                name: user.into(),
                uid: String::new(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            verb: "list".into(),
            api_group: String::new(),
            api_version: "v1".into(),
            resource: "pods".into(),
            subresource: String::new(),
            namespace: "default".into(),
            name: String::new(),
            path: "/api/v1/namespaces/default/pods".into(),
            resource_request: true,
        }
    }

    #[test]
    fn messages_match_kubernetes() {
        let a = attrs("jane", &[]);
        assert_eq!(
            forbidden_message(&a),
            r#"User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
        );
        let mut c = attrs("system:anonymous", &[]);
        c.verb = "get".into();
        c.api_group = "apps".into();
        c.resource = "deployments".into();
        c.subresource = "scale".into();
        c.namespace = String::new();
        assert_eq!(
            forbidden_message(&c),
            r#"User "system:anonymous" cannot get resource "deployments/scale" in API group "apps" at the cluster scope"#
        );
        let mut n = attrs("jane", &[]);
        n.resource_request = false;
        n.verb = "get".into();
        n.path = "/foo".into();
        assert_eq!(
            forbidden_message(&n),
            r#"User "jane" cannot get path "/foo""#
        );
    }

    #[test]
    fn masters_allowed_others_denied() {
        let u = UnionAuthorizer(vec![Box::new(SystemMastersAuthorizer)]);
        assert_eq!(
            u.authorize(&attrs("admin", &["system:masters", "system:authenticated"])),
            Decision::Allow
        );
        let d = u.authorize(&attrs("jane", &["system:authenticated"]));
        assert_eq!(d, Decision::Deny(String::new()));
    }

    struct Fixed(Decision);
    impl Authorizer for Fixed {
        fn authorize(&self, _: &RequestAttributes) -> Decision {
            self.0.clone()
        }
    }

    #[test]
    fn first_opinion_wins() {
        let u = UnionAuthorizer(vec![
            Box::new(Fixed(Decision::NoOpinion)),
            Box::new(Fixed(Decision::Deny("no".into()))),
            Box::new(Fixed(Decision::Allow)),
        ]);
        assert_eq!(u.authorize(&attrs("x", &[])), Decision::Deny("no".into()));
    }
}
