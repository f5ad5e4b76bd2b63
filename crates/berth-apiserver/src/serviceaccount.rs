//! Service-account tokens: issuing them (`POST .../serviceaccounts/{name}/token`, an
//! `authentication.k8s.io/v1` TokenRequest), authenticating requests that carry them, and the
//! `default` ServiceAccount every namespace has.
//!
//! Tokens are JWTs signed with ES256 by a P-256 key kept in `<data_dir>/tls/service-account.key`
//! (PKCS#8 PEM, mode 0600, created on first start). Claims are Kubernetes': `iss`, `sub`
//! (`system:serviceaccount:<ns>:<name>`), `aud`, `exp`, `iat`, `nbf`, `jti` and `kubernetes.io`
//! (namespace, service account name and uid, and the bound pod, secret or node). A token
//! authenticates while it has not expired, its audience includes the API server's, and the
//! service account (and the object it is bound to) still exists with the same uid.
//!
//! This module must not decide what a service account may do (that is `authz`).

use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use berth_api::{ApiError, StatusCause, meta};
use http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::authn::{Authenticator, AuthnError, Credentials, SYSTEM_AUTHENTICATED, UserInfo};
use crate::cache::WatchCache;
use crate::clock::Clock;
use crate::rest::ResourceRequest;
use crate::{Api, Reply};

/// The issuer of service-account tokens, and the API server's audience.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The signing key's file in the TLS directory.
pub const KEY_FILE: &str = "service-account.key";
/// The group of every service account.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// The prefix of a service account's user name.
pub const USER_PREFIX: &str = "system:serviceaccount:";
/// Lifetime of a token when the request does not say.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a request may ask for (Kubernetes' limit).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest lifetime a request may ask for (2^32 seconds, Kubernetes' limit).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// Errors of the signing key.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAccountError {
    /// The key file could not be read or written.
    #[error("service-account signing key: {0}")]
    Pki(#[from] crate::pki::PkiError),
    /// The key file could not be read.
    #[error("reading the service-account signing key {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file does not hold a P-256 key.
    #[error("the service-account signing key {path} is not a PKCS#8 P-256 key: {detail}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// Signing failed.
    #[error("signing a service-account token failed")]
    Sign,
}

/// A `{name, uid}` reference inside the `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameUid {
    /// The object's name.
    pub name: String,
    /// The object's uid.
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account.
    pub serviceaccount: NameUid,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<NameUid>,
    /// The secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<NameUid>,
    /// The node the token is bound to, or the node of the bound pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NameUid>,
}

/// The claims of a service-account token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// A unique id.
    #[serde(default)]
    pub jti: String,
    /// Kubernetes' own claims.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

/// Why a token that claims to be ours was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify with our key.
    #[error("invalid signature")]
    Signature,
    /// The token has expired or is not valid yet.
    #[error("token is expired or not yet valid")]
    Expired,
    /// The token is not meant for the API server.
    #[error("token audiences {0:?} do not include the API server's")]
    Audience(Vec<String>),
}

/// Signs and verifies service-account tokens with one ES256 key.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
    issuer: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Loads `<dir>/service-account.key`, creating a P-256 key there (mode 0600) if missing.
    pub fn load_or_create(dir: &Path) -> Result<Self, ServiceAccountError> {
        let path = dir.join(KEY_FILE);
        let shown = path.display().to_string();
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(|source| ServiceAccountError::Read {
                    path: dir.display().to_string(),
                    source,
                })?;
                let key = rcgen::KeyPair::generate().map_err(|e| ServiceAccountError::BadKey {
                    path: shown.clone(),
                    detail: e.to_string(),
                })?;
                let pem = key.serialize_pem();
                crate::pki::write_file(&path, pem.as_bytes(), 0o600)?;
                pem
            }
            Err(source) => {
                return Err(ServiceAccountError::Read {
                    path: shown,
                    source,
                });
            }
        };
        Self::from_pem(&pem).map_err(|detail| ServiceAccountError::BadKey {
            path: shown,
            detail,
        })
    }

    /// A signer from a PKCS#8 PEM P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let der = rcgen::KeyPair::from_pem(pem)
            .map_err(|e| e.to_string())?
            .serialize_der();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .map_err(|e| e.to_string())?;
        let public = key.public_key().as_ref().to_vec();
        let kid = B64URL.encode(Sha256::digest(&public));
        Ok(TokenSigner {
            key,
            public,
            kid,
            issuer: ISSUER.to_string(),
        })
    }

    /// The issuer (`iss`) of the tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String, ServiceAccountError> {
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| ServiceAccountError::Sign)?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
    }

    /// Verifies a token at time `now` (seconds since the epoch). `Ok(None)` when it is not one
    /// of ours (not a JWT, or another issuer); `Err` when it claims our issuer but is invalid.
    pub fn verify(&self, token: &str, now: i64) -> Result<Option<Claims>, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let Ok(payload) = B64URL.decode(p) else {
            return Ok(None);
        };
        let Ok(unverified) = serde_json::from_slice::<Value>(&payload) else {
            return Ok(None);
        };
        if unverified.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Ok(None);
        }
        let header: Value = B64URL
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(TokenError::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(TokenError::Signature);
        }
        let sig = B64URL.decode(s).map_err(|_| TokenError::Malformed)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(format!("{h}.{p}").as_bytes(), &sig)
            .map_err(|_| TokenError::Signature)?;
        let claims: Claims =
            serde_json::from_value(unverified).map_err(|_| TokenError::Malformed)?;
        // A minute of leeway for clock skew, as Kubernetes allows.
        if claims.exp + 60 <= now || claims.nbf - 60 > now {
            return Err(TokenError::Expired);
        }
        if !claims.aud.iter().any(|a| a == &self.issuer) {
            return Err(TokenError::Audience(claims.aud.clone()));
        }
        Ok(Some(claims))
    }
}

/// A value as base64url-encoded JSON, as a JWT part.
fn b64_json<T: Serialize>(value: &T) -> String {
    B64URL.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Looks up objects by store key, for checking that a token's service account and bound object
/// still exist.
pub trait UidLookup: Send + Sync {
    /// The uid of the object at `key`, if it exists and is not being deleted.
    fn uid(&self, key: &str) -> Option<String>;
}

impl UidLookup for WatchCache {
    fn uid(&self, key: &str) -> Option<String> {
        self.get(key).filter(|o| !o.deleting).map(|o| o.uid.clone())
    }
}

fn key_of(resource: &str, namespace: Option<&str>, name: &str) -> Option<String> {
    berth_api::kinds::by_resource("", "v1", resource).map(|k| k.key(namespace, name))
}

/// Authenticates service-account tokens (see the module documentation).
pub struct ServiceAccountAuthenticator {
    signer: Arc<TokenSigner>,
    objects: Arc<dyn UidLookup>,
    clock: Arc<dyn Clock>,
}

impl ServiceAccountAuthenticator {
    /// An authenticator verifying with `signer`, checking objects in `objects`, at `clock`'s
    /// time.
    pub fn new(
        signer: Arc<TokenSigner>,
        objects: Arc<dyn UidLookup>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ServiceAccountAuthenticator {
            signer,
            objects,
            clock,
        }
    }
}

impl Authenticator for ServiceAccountAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(token) = credentials
            .authorization
            .and_then(crate::authn::bearer_token)
        else {
            return Ok(None);
        };
        let now = self.clock.now().as_second();
        let Some(claims) = self
            .signer
            .verify(token, now)
            .map_err(|e| AuthnError::InvalidToken(e.to_string()))?
        else {
            return Ok(None);
        };
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let expected_sub = format!("{USER_PREFIX}{ns}:{}", k.serviceaccount.name);
        if claims.sub != expected_sub {
            return Err(AuthnError::InvalidToken(
                "the subject does not match the service account".into(),
            ));
        }
        let gone = |what: &str| AuthnError::InvalidToken(format!("{what} no longer exists"));
        let exists = |resource: &str, namespace: Option<&str>, r: &NameUid| {
            key_of(resource, namespace, &r.name)
                .and_then(|key| self.objects.uid(&key))
                .is_some_and(|uid| uid == r.uid)
        };
        if !exists("serviceaccounts", Some(ns), &k.serviceaccount) {
            return Err(gone(&format!(
                "service account {ns}/{}",
                k.serviceaccount.name
            )));
        }
        if let Some(pod) = &k.pod
            && !exists("pods", Some(ns), pod)
        {
            return Err(gone(&format!(
                "pod {ns}/{} the token is bound to",
                pod.name
            )));
        }
        if let Some(secret) = &k.secret
            && !exists("secrets", Some(ns), secret)
        {
            return Err(gone(&format!(
                "secret {ns}/{} the token is bound to",
                secret.name
            )));
        }
        if k.pod.is_none()
            && k.secret.is_none()
            && let Some(node) = &k.node
            && !exists("nodes", None, node)
        {
            return Err(gone(&format!("node {} the token is bound to", node.name)));
        }
        Ok(Some(UserInfo {
            name: claims.sub.clone(),
            uid: k.serviceaccount.uid.clone(),
            groups: vec![
                SERVICE_ACCOUNTS_GROUP.to_string(),
                format!("{SERVICE_ACCOUNTS_GROUP}:{ns}"),
                SYSTEM_AUTHENTICATED.to_string(),
            ],
        }))
    }
}

fn invalid(name: &str, cause: StatusCause) -> ApiError {
    ApiError::invalid("authentication.k8s.io", "TokenRequest", name, vec![cause])
}

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: issues a token for the service
/// account, optionally bound to a Pod, Secret or Node, and answers with the TokenRequest and its
/// `status.token` and `status.expirationTimestamp`.
pub async fn token_request(api: &Arc<Api>, req: &ResourceRequest<'_>) -> Result<Reply, ApiError> {
    let ns = req.info.namespace.clone().unwrap_or_default();
    let name = req.info.name.clone().unwrap_or_default();
    let mut tr = crate::body::decode_object(req.content_type, &req.body)?;
    let kind = tr.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "TokenRequest" {
        return Err(ApiError::bad_request(format!(
            "the body must be an authentication.k8s.io/v1 TokenRequest, got kind {kind:?}"
        )));
    }
    let spec = tr.get("spec").cloned().unwrap_or_else(|| json!({}));
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(
                &name,
                StatusCause::invalid("spec.expirationSeconds", v, "must be an integer"),
            )
        })?,
    };
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            &name,
            StatusCause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            ),
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            &name,
            StatusCause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            ),
        ));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(api.tokens.issuer().to_string());
    }

    let sa_kind = berth_api::kinds::by_resource("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::internal("serviceaccounts are not registered"))?;
    let (sa, _) = api.objects.get(sa_kind, Some(&ns), &name).await?;
    if meta::is_deleting(&sa) {
        return Err(ApiError::forbidden(format!(
            "service account {ns}/{name} is being deleted"
        )));
    }
    let mut k8s = KubernetesClaims {
        namespace: ns.clone(),
        serviceaccount: NameUid {
            name: name.clone(),
            uid: meta::uid(&sa).to_string(),
        },
        pod: None,
        secret: None,
        node: None,
    };
    let bound = spec.get("boundObjectRef").filter(|b| b.is_object());
    if let Some(b) = bound {
        let s = |f: &str| b.get(f).and_then(Value::as_str).unwrap_or("").to_string();
        let (bkind, bname, buid) = (s("kind"), s("name"), s("uid"));
        let api_version = s("apiVersion");
        if !api_version.is_empty() && api_version != "v1" {
            return Err(invalid(
                &name,
                StatusCause::not_supported(
                    "spec.boundObjectRef.apiVersion",
                    &json!(api_version),
                    &["v1"],
                ),
            ));
        }
        let resource = match bkind.as_str() {
            "Pod" => "pods",
            "Secret" => "secrets",
            "Node" => "nodes",
            _ => {
                return Err(invalid(
                    &name,
                    StatusCause::not_supported(
                        "spec.boundObjectRef.kind",
                        &json!(bkind),
                        &["Pod", "Secret", "Node"],
                    ),
                ));
            }
        };
        if bname.is_empty() {
            return Err(invalid(
                &name,
                StatusCause::required("spec.boundObjectRef.name"),
            ));
        }
        let kind = berth_api::kinds::by_resource("", "v1", resource)
            .ok_or_else(|| ApiError::internal(format!("{resource} are not registered")))?;
        let obj_ns = (resource != "nodes").then_some(ns.as_str());
        let (obj, _) = api.objects.get(kind, obj_ns, &bname).await?;
        let uid = meta::uid(&obj).to_string();
        if !buid.is_empty() && buid != uid {
            return Err(ApiError::conflict(
                "",
                resource,
                &bname,
                &format!(
                    "the UID in the bound object reference ({buid}) does not match the {bkind}'s ({uid})"
                ),
            ));
        }
        let r = NameUid { name: bname, uid };
        match resource {
            "pods" => {
                let node = obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !node.is_empty() {
                    let node_uid = key_of("nodes", None, node)
                        .and_then(|key| api.cache.get(&key))
                        .map(|o| o.uid.clone())
                        .unwrap_or_default();
                    k8s.node = Some(NameUid {
                        name: node.to_string(),
                        uid: node_uid,
                    });
                }
                k8s.pod = Some(r);
            }
            "secrets" => k8s.secret = Some(r),
            _ => k8s.node = Some(r),
        }
    }

    let now = api.objects.clock.now();
    let iat = now.as_second();
    let claims = Claims {
        iss: api.tokens.issuer().to_string(),
        sub: format!("{USER_PREFIX}{ns}:{name}"),
        aud: audiences.clone(),
        exp: iat + expiration,
        iat,
        nbf: iat,
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: k8s,
    };
    let token = api
        .tokens
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = Timestamp::from_second(claims.exp).unwrap_or(now);
    tr["apiVersion"] = json!("authentication.k8s.io/v1");
    tr["kind"] = json!("TokenRequest");
    tr["metadata"] = json!({
        "name": name,
        "namespace": ns,
        "creationTimestamp": meta::format_time(now),
    });
    tr["spec"] = json!({
        "audiences": audiences,
        "expirationSeconds": expiration,
        "boundObjectRef": bound.cloned().unwrap_or(Value::Null),
    });
    tr["status"] = json!({
        "token": token,
        "expirationTimestamp": meta::format_time(expires),
    });
    Ok(Reply::json_value(StatusCode::CREATED, &tr))
}

/// The name of the service account every namespace has.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Creates the `default` ServiceAccount in every namespace that lacks one and is not being
/// deleted.
pub async fn ensure_default_service_accounts(api: &Arc<Api>) {
    let (Some(ns_kind), Some(sa_kind)) = (
        berth_api::kinds::by_resource("", "v1", "namespaces"),
        berth_api::kinds::by_resource("", "v1", "serviceaccounts"),
    ) else {
        return;
    };
    let (namespaces, _) = api.cache.list(&ns_kind.key_prefix(), |o| !o.deleting);
    for ns in namespaces {
        let key = sa_kind.key(Some(&ns.name), DEFAULT_SERVICE_ACCOUNT);
        if api.cache.get(&key).is_some() {
            continue;
        }
        let sa = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": ns.name},
        });
        let opts = crate::controllers::options("service-account-controller");
        match api
            .objects
            .create(sa_kind, Some(&ns.name), sa, &opts, false)
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 409 || e.code == 403 || e.code == 404 => {}
            Err(e) => {
                tracing::warn!(namespace = %ns.name, error = %e, "creating the default service account failed");
            }
        }
    }
}

/// Keeps a `default` ServiceAccount in every namespace until shutdown.
pub fn start_controller(api: &Arc<Api>, shutdown: watch::Receiver<bool>) {
    tokio::spawn(crate::controllers::run_loop(
        Arc::clone(api),
        std::time::Duration::from_secs(10),
        shutdown,
        |ev| matches!(ev.object.kind.kind, "Namespace" | "ServiceAccount"),
        |api| async move { ensure_default_service_accounts(&api).await },
    ));
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::clock::FakeClock;

    fn signer() -> TokenSigner {
        TokenSigner::from_pem(&rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap()
    }

    fn claims(now: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "system:serviceaccount:default:builder".into(),
            aud: vec![ISSUER.into()],
            exp: now + 3600,
            iat: now,
            nbf: now,
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                serviceaccount: NameUid {
                    name: "builder".into(),
                    uid: "sa-uid".into(),
                },
                pod: Some(NameUid {
                    name: "web".into(),
                    uid: "pod-uid".into(),
                }),
                secret: None,
                node: None,
            },
        }
    }

    #[test]
    fn sign_and_verify() {
        let s = signer();
        let now = 1_800_000_000;
        let c = claims(now);
        let token = s.sign(&c).unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert_eq!(s.verify(&token, now).unwrap(), Some(c.clone()));
        // Claims are Kubernetes' JSON.
        let payload: Value =
            serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap())
                .unwrap();
        assert_eq!(
            payload["kubernetes.io"]["serviceaccount"]["name"],
            "builder"
        );
        assert_eq!(payload["kubernetes.io"]["pod"]["uid"], "pod-uid");
        assert!(payload["kubernetes.io"].get("secret").is_none());
        // Expired (beyond the leeway), not yet valid, tampered, other key, other audience.
        assert_eq!(s.verify(&token, now + 3661), Err(TokenError::Expired));
        assert_eq!(s.verify(&token, now - 61), Err(TokenError::Expired));
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut forged = c.clone();
        forged.sub = "system:serviceaccount:kube-system:admin".into();
        parts[1] = B64URL.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(s.verify(&parts.join("."), now), Err(TokenError::Signature));
        assert_eq!(signer().verify(&token, now), Err(TokenError::Signature));
        let mut other_aud = c.clone();
        other_aud.aud = vec!["vault".into()];
        assert!(matches!(
            s.verify(&s.sign(&other_aud).unwrap(), now),
            Err(TokenError::Audience(_))
        ));
        // Not ours: not a JWT, or another issuer.
        assert_eq!(s.verify("abc", now), Ok(None));
        let mut other_iss = c;
        other_iss.iss = "https://elsewhere".into();
        assert_eq!(s.verify(&s.sign(&other_iss).unwrap(), now), Ok(None));
    }

    #[test]
    fn key_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenSigner::load_or_create(dir.path()).unwrap();
        let b = TokenSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(a.kid, b.kid);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let now = 1_800_000_000;
        let t = a.sign(&claims(now)).unwrap();
        assert!(b.verify(&t, now).unwrap().is_some());
        std::fs::write(dir.path().join(KEY_FILE), "junk").unwrap();
        assert!(TokenSigner::load_or_create(dir.path()).is_err());
    }

    #[derive(Default)]
    struct Objects(Mutex<HashMap<String, String>>);
    impl UidLookup for Objects {
        fn uid(&self, key: &str) -> Option<String> {
            self.0.lock().unwrap().get(key).cloned()
        }
    }

    #[test]
    fn authenticates_while_the_account_and_pod_exist() {
        let now = 1_800_000_000;
        let s = Arc::new(signer());
        let objects = Arc::new(Objects::default());
        let sa_key = key_of("serviceaccounts", Some("default"), "builder").unwrap();
        let pod_key = key_of("pods", Some("default"), "web").unwrap();
        objects
            .0
            .lock()
            .unwrap()
            .insert(sa_key.clone(), "sa-uid".into());
        objects
            .0
            .lock()
            .unwrap()
            .insert(pod_key.clone(), "pod-uid".into());
        let clock = Arc::new(FakeClock::new(Timestamp::from_second(now).unwrap()));
        let a = ServiceAccountAuthenticator::new(Arc::clone(&s), objects.clone(), clock.clone());
        let token = s.sign(&claims(now)).unwrap();
        let header = format!("Bearer {token}");
        let creds = Credentials {
            client_certs: &[],
            authorization: Some(&header),
        };
        let user = a.authenticate(&creds).unwrap().unwrap();
        assert_eq!(user.name, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        // Other bearer tokens are not this authenticator's business.
        let other = Credentials {
            client_certs: &[],
            authorization: Some("Bearer abcdef.0123456789abcdef"),
        };
        assert_eq!(a.authenticate(&other).unwrap(), None);
        // A recreated pod (new uid) ends the token.
        objects.0.lock().unwrap().insert(pod_key, "other".into());
        assert!(a.authenticate(&creds).is_err());
        objects.0.lock().unwrap().insert(
            key_of("pods", Some("default"), "web").unwrap(),
            "pod-uid".into(),
        );
        assert!(a.authenticate(&creds).is_ok());
        // So does a deleted service account, and expiry.
        objects.0.lock().unwrap().remove(&sa_key);
        assert!(a.authenticate(&creds).is_err());
        objects.0.lock().unwrap().insert(sa_key, "sa-uid".into());
        clock.set(Timestamp::from_second(now + 7200).unwrap());
        assert!(a.authenticate(&creds).is_err());
    }
}
