//! Authentication: who is asking.
//!
//! Owns [`UserInfo`], the [`Authenticator`] trait, the client-certificate authenticator (the TLS
//! layer has already verified the chain against the cluster CA), static bearer tokens, and the
//! union of authenticators. It must not decide what a user may do (that is `authz`) nor verify
//! certificate chains (that is the TLS configuration in `pki`).

use std::collections::HashMap;
use std::path::Path;

use rustls::pki_types::CertificateDer;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The group every authenticated user belongs to.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. "berth-admin" or "system:node:n1".
    pub name: String,
    /// A unique id ("" when unknown, as for certificate users).
    pub uid: String,
    /// The groups, including "system:authenticated".
    pub groups: Vec<String>,
}

/// What a request presents to prove who it is.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The client certificate chain the TLS layer verified (leaf first); empty if none.
    pub client_certs: &'a [CertificateDer<'static>],
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

/// Authentication failures.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// The client certificate could not be parsed.
    #[error("client certificate is not valid X.509: {0}")]
    BadCertificate(String),
    /// The client certificate has no common name.
    #[error("client certificate has no common name")]
    NoCommonName,
    /// The token file could not be read.
    #[error("reading token file {path}: {source}")]
    TokenFileRead {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bearer token was recognised but is not valid (bad signature, expired, or its subject
    /// no longer exists).
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    /// The token file is not valid.
    #[error("token file {path} is not valid: {source}")]
    TokenFileParse {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Establishes who sent a request.
pub trait Authenticator: Send + Sync {
    /// `Ok(Some(user))` when the credentials identify a user, `Ok(None)` when this authenticator
    /// does not recognise them, `Err` when they are present but invalid.
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError>;
}

/// Authenticates by the verified client certificate: CN is the user name, each O a group.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertAuthenticator;

impl Authenticator for ClientCertAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(leaf) = credentials.client_certs.first() else {
            return Ok(None);
        };
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| AuthnError::BadCertificate(e.to_string()))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .filter(|cn| !cn.is_empty())
            .ok_or(AuthnError::NoCommonName)?
            .to_string();
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        groups.push(SYSTEM_AUTHENTICATED.to_string());
        Ok(Some(UserInfo {
            name,
            uid: String::new(),
            groups,
        }))
    }
}

/// One entry of the token file.
#[derive(Debug, Deserialize)]
struct TokenEntry {
    token: String,
    name: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    groups: Vec<String>,
}

/// Static bearer tokens.
///
/// Tokens are kept only as SHA-256 digests and compared in constant time. The optional file
/// `<data_dir>/tokens.json` is a JSON array of
/// `{"token": "...", "name": "jane", "uid": "42", "groups": ["dev"]}`; "system:authenticated" is
/// added to every user's groups.
#[derive(Debug, Default)]
pub struct TokenAuthenticator {
    tokens: HashMap<[u8; 32], UserInfo>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

impl TokenAuthenticator {
    /// An authenticator for the given tokens (token → user, groups taken as given plus
    /// "system:authenticated").
    pub fn new(tokens: impl IntoIterator<Item = (String, UserInfo)>) -> Self {
        let tokens = tokens
            .into_iter()
            .map(|(t, mut u)| {
                if !u.groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
                    u.groups.push(SYSTEM_AUTHENTICATED.to_string());
                }
                (digest(&t), u)
            })
            .collect();
        TokenAuthenticator { tokens }
    }

    /// Loads `<data_dir>/tokens.json`; a missing file gives an authenticator with no tokens.
    pub fn load(data_dir: &Path) -> Result<Self, AuthnError> {
        let path = data_dir.join("tokens.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(AuthnError::TokenFileRead {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let entries: Vec<TokenEntry> =
            serde_json::from_str(&text).map_err(|source| AuthnError::TokenFileParse {
                path: path.display().to_string(),
                source,
            })?;
        Ok(Self::new(
            entries
                .into_iter()
                .filter(|e| !e.token.is_empty())
                .map(|e| {
                    (
                        e.token,
                        UserInfo {
                            name: e.name,
                            uid: e.uid,
                            groups: e.groups,
                        },
                    )
                }),
        ))
    }

    /// Number of tokens known.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is known.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

impl Authenticator for TokenAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(token) = credentials.authorization.and_then(bearer_token) else {
            return Ok(None);
        };
        let wanted = digest(token);
        // Look at every entry so the time taken does not depend on which one matches.
        let mut found = None;
        for (d, user) in &self.tokens {
            if constant_time_eq(d, &wanted) {
                found = Some(user.clone());
            }
        }
        Ok(found)
    }
}

/// Asks each authenticator in order; the first that identifies the user wins. If none does and
/// some failed, the first failure is returned.
pub struct UnionAuthenticator(pub Vec<Box<dyn Authenticator>>);

impl Authenticator for UnionAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let mut first_err = None;
        for a in &self.0 {
            match a.authenticate(credentials) {
                Ok(Some(u)) => return Ok(Some(u)),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "authenticator failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: "1".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn tokens() {
        let a = TokenAuthenticator::new([("s3cret".to_string(), user("jane", &["dev"]))]);
        let creds = |h| Credentials {
            client_certs: &[],
            authorization: h,
        };
        let got = a
            .authenticate(&creds(Some("Bearer s3cret")))
            .unwrap()
            .unwrap();
        assert_eq!(got.name, "jane");
        assert_eq!(got.groups, vec!["dev", SYSTEM_AUTHENTICATED]);
        assert_eq!(a.authenticate(&creds(Some("Bearer s3cre"))).unwrap(), None);
        assert_eq!(a.authenticate(&creds(None)).unwrap(), None);
    }

    #[test]
    fn token_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(TokenAuthenticator::load(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join("tokens.json"),
            r#"[{"token":"t1","name":"bob","groups":["g"]}]"#,
        )
        .unwrap();
        let a = TokenAuthenticator::load(dir.path()).unwrap();
        let u = a
            .authenticate(&Credentials {
                client_certs: &[],
                authorization: Some("Bearer t1"),
            })
            .unwrap();
        assert_eq!(
            u,
            Some(UserInfo {
                name: "bob".into(),
                uid: String::new(),
                groups: vec!["g".into(), SYSTEM_AUTHENTICATED.into()]
            })
        );
        std::fs::write(dir.path().join("tokens.json"), "{").unwrap();
        assert!(TokenAuthenticator::load(dir.path()).is_err());
    }

    struct Failing;
    impl Authenticator for Failing {
        fn authenticate(&self, _: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
            Err(AuthnError::NoCommonName)
        }
    }

    #[test]
    fn union_first_success_wins_and_errors_surface() {
        let tokens = TokenAuthenticator::new([("t".to_string(), user("jane", &[]))]);
        let u = UnionAuthenticator(vec![Box::new(Failing), Box::new(tokens)]);
        let ok = u
            .authenticate(&Credentials {
                client_certs: &[],
                authorization: Some("Bearer t"),
            })
            .unwrap();
        assert_eq!(ok.map(|u| u.name), Some("jane".to_string()));
        assert!(
            u.authenticate(&Credentials {
                client_certs: &[],
                authorization: None
            })
            .is_err()
        );
        let empty = UnionAuthenticator(vec![Box::new(ClientCertAuthenticator)]);
        assert_eq!(
            empty
                .authenticate(&Credentials {
                    client_certs: &[],
                    authorization: None
                })
                .unwrap(),
            None
        );
    }
}
