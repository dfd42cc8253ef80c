//! Who may change a project's targets: `Authorization: Bearer <credential>`, where the
//! credential is either
//! - a user JWT, checked by [`livegate_auth::TokenVerifier`] with the gateway's keys and rules
//!   (`token_use` must be `"user"`), whose `projects` claim holds the path's project, and whose
//!   session is not revoked (when a [`RevocationCheck`] is configured); or
//! - an API key configured for the path's project (`project_uuid=key`).
//!
//! Missing or bad credentials are a 401; good credentials for another project are a 403.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{HeaderMap, header};
use fred::interfaces::KeysInterface;
use fred::prelude::Client;
use livegate_auth::TokenVerifier;
use livegate_protocol::RedisNames;
use uuid::Uuid;

use super::api_error::ApiError;

/// Shortest API key accepted in configuration.
pub const MIN_API_KEY_CHARS: usize = 16;

/// Tells whether a session (`sid`) is revoked. An error means "cannot tell now": the request is
/// refused with 503 (fail closed, as the gateway's handshake does).
pub trait RevocationCheck: Send + Sync + 'static {
    fn is_revoked<'a>(
        &'a self,
        sid: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;
}

/// Revocations in Redis: the key `{prefix}:revoked-session:{sid}` exists (CONTRACT §5).
#[derive(Clone)]
pub struct RedisRevocations {
    client: Client,
    names: RedisNames,
}

impl RedisRevocations {
    pub fn new(client: Client, names: RedisNames) -> Self {
        RedisRevocations { client, names }
    }
}

impl RevocationCheck for RedisRevocations {
    fn is_revoked<'a>(
        &'a self,
        sid: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            let key = self.names.revoked_session(sid);
            let n: i64 = self.client.exists(&key).await.map_err(|e| e.to_string())?;
            Ok(n > 0)
        })
    }
}

/// Per-project API keys, from `project_uuid=key` entries.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(Uuid, String)>,
}

impl std::fmt::Debug for ApiKeys {
    /// The keys never reach logs; only the projects that have one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(p, _)| p))
            .finish()
    }
}

impl ApiKeys {
    /// Parses `project_uuid=key` entries (blank ones are skipped); lists every bad entry.
    pub fn parse(entries: &[String]) -> Result<ApiKeys, Vec<String>> {
        let mut keys = Vec::new();
        let mut errors = Vec::new();
        for (i, entry) in entries
            .iter()
            .map(|e| e.trim())
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            // Entries are reported by position: they hold secrets.
            match entry.split_once('=') {
                Some((project, key)) => match Uuid::parse_str(project.trim()) {
                    Ok(p) if key.chars().count() >= MIN_API_KEY_CHARS => {
                        keys.push((p, key.to_owned()))
                    }
                    Ok(_) => errors.push(format!(
                        "entry {}: the key must be at least {MIN_API_KEY_CHARS} characters",
                        i + 1
                    )),
                    Err(_) => errors.push(format!("entry {}: {project:?} is not a UUID", i + 1)),
                },
                None => errors.push(format!("entry {}: not project_uuid=key", i + 1)),
            }
        }
        if errors.is_empty() {
            Ok(ApiKeys { keys })
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The projects `presented` is a key of. Every key is compared, in constant time per key,
    /// so the answer's timing does not tell how close a guess was.
    fn projects_of(&self, presented: &str) -> Vec<Uuid> {
        self.keys
            .iter()
            .filter(|(_, key)| constant_time_eq(presented.as_bytes(), key.as_bytes()))
            .map(|(p, _)| *p)
            .collect()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a
        .iter()
        .zip(b)
        .fold(u8::from(a.len() != b.len()), |acc, (x, y)| acc | (x ^ y));
    diff == 0
}

/// Who is calling, once the credential checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User { sub: String, sid: String },
    ApiKey,
}

/// Checks credentials (see the module docs).
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<TokenVerifier>,
    keys: ApiKeys,
    revocations: Option<Arc<dyn RevocationCheck>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("verifier", &self.verifier)
            .field("api_keys", &self.keys)
            .field("revocations", &self.revocations.is_some())
            .finish()
    }
}

impl Authenticator {
    /// `verifier`: user tokens are accepted only with one; `keys`: per-project API keys.
    pub fn new(verifier: Option<TokenVerifier>, keys: ApiKeys) -> Self {
        Authenticator {
            verifier,
            keys,
            revocations: None,
        }
    }

    /// Also refuse tokens of revoked sessions.
    pub fn with_revocations(mut self, check: impl RevocationCheck) -> Self {
        self.revocations = Some(Arc::new(check));
        self
    }

    /// Checks the bearer credential, then that it may act on the path's project. The project
    /// segment is parsed after the credential, so a bad credential is always a 401; a segment
    /// that is not a UUID names no project (404).
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        project: &str,
    ) -> Result<(Uuid, Caller), ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(ApiError::AuthMissing)?;

        let key_projects = self.keys.projects_of(bearer);
        let (allowed, caller) = if !key_projects.is_empty() {
            (key_projects, Caller::ApiKey)
        } else {
            let Some(verifier) = &self.verifier else {
                return Err(ApiError::InvalidToken("not a known API key".into()));
            };
            let claims = verifier.verify(bearer).await?;
            if let Some(check) = &self.revocations {
                match check.is_revoked(&claims.sid).await {
                    Ok(false) => {}
                    Ok(true) => return Err(ApiError::SessionRevoked),
                    Err(e) => return Err(ApiError::SessionCheckUnavailable(e)),
                }
            }
            (
                claims.projects,
                Caller::User {
                    sub: claims.sub,
                    sid: claims.sid,
                },
            )
        };
        let project_id = Uuid::parse_str(project).map_err(|_| ApiError::NotFound {
            message: format!("{project:?} is not a project id (a UUID)"),
            errors: vec![],
        })?;
        if allowed.contains(&project_id) {
            Ok((project_id, caller))
        } else {
            Err(ApiError::ProjectForbidden(project_id.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_and_hide() {
        let p = Uuid::from_u128(1);
        let keys = ApiKeys::parse(&[format!("{p}=0123456789abcdef"), " ".into()])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(keys.projects_of("0123456789abcdef"), vec![p]);
        assert!(keys.projects_of("0123456789abcde").is_empty());
        assert!(keys.projects_of("0123456789abcdefX").is_empty());
        assert!(!format!("{keys:?}").contains("0123456789"));
        let errors = ApiKeys::parse(&[
            "nope".into(),
            "x=0123456789abcdef".into(),
            format!("{p}=short"),
        ])
        .err()
        .unwrap_or_default();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors.iter().all(|e| !e.contains("short")),
            "keys are not echoed"
        );
    }
}
