//! Handshake authentication: the Socket.IO connect middleware, and the one place where internal
//! failures become `connect_error` codes (CONTRACT §1).
//!
//! Order of checks: `token` and `project_id` present (`auth_missing`) → `project_id` a UUID
//! (`invalid_project_id`) → the token ([`livegate_auth`]) → the project in `projects`
//! (`project_forbidden`) → the session not revoked (`session_revoked`, or `unavailable` when the
//! engine cannot tell). A rejected handshake keeps no state: socketioxide removes the socket.

use std::fmt;
use std::sync::Arc;

use livegate_protocol::ConnectErrorCode;
use serde_json::Value;
use socketioxide::extract::{SocketRef, State, TryData};
use uuid::Uuid;

use crate::node::Node;
use livegate_auth::{TokenError, UserClaims};

/// Who a socket is, once its handshake passed. Stored in the socket's extensions.
#[derive(Debug, Clone)]
pub struct Identity {
    pub project_id: Uuid,
    /// The token's claims, with `projects` narrowed to `[project_id]`: a socket is scoped to
    /// the one project it connected to, and need not hold the user's whole list (a user of many
    /// projects would otherwise cost 16 bytes per project per socket).
    pub claims: Arc<UserClaims>,
}

/// A refused handshake: the client sees `"<code>: <explanation>"` as `connect_error` message.
#[derive(Debug)]
pub struct Rejection {
    pub code: ConnectErrorCode,
    pub explanation: String,
}

impl Rejection {
    fn new(code: ConnectErrorCode, explanation: impl Into<String>) -> Self {
        Rejection {
            code,
            explanation: explanation.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.explanation)
    }
}

impl From<TokenError> for Rejection {
    fn from(e: TokenError) -> Self {
        let code = match &e {
            TokenError::Invalid(_) => ConnectErrorCode::InvalidToken,
            TokenError::Expired => ConnectErrorCode::TokenExpired,
            TokenError::NotAUserToken => ConnectErrorCode::NotAUserToken,
        };
        Rejection::new(code, e.to_string())
    }
}

/// The connect middleware: runs before the socket joins the namespace.
pub async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(node): State<Arc<Node>>,
) -> Result<(), Rejection> {
    let result = check(auth.ok().as_ref(), &node).await;
    node.metrics
        .handshake(result.as_ref().err().map(|r| r.code));
    match result {
        Ok(identity) => {
            socket.extensions.insert(identity);
            Ok(())
        }
        Err(rejection) => {
            tracing::debug!(code = %rejection.code, reason = %rejection.explanation, "handshake refused");
            Err(rejection)
        }
    }
}

async fn check(auth: Option<&Value>, node: &Node) -> Result<Identity, Rejection> {
    if node.is_draining() {
        return Err(Rejection::new(
            ConnectErrorCode::Unavailable,
            "this node is shutting down; reconnect to another one",
        ));
    }
    let field = |name: &str| auth.and_then(|a| a.get(name)).filter(|v| !v.is_null());
    let (token, project) = match (field("token"), field("project_id")) {
        (Some(t), Some(p)) if t.as_str() != Some("") && p.as_str() != Some("") => (t, p),
        _ => {
            return Err(Rejection::new(
                ConnectErrorCode::AuthMissing,
                "auth must carry token and project_id",
            ));
        }
    };
    let project_id = project
        .as_str()
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(|| {
            Rejection::new(
                ConnectErrorCode::InvalidProjectId,
                "project_id must be a UUID",
            )
        })?;
    let token = token
        .as_str()
        .ok_or_else(|| Rejection::new(ConnectErrorCode::InvalidToken, "token must be a string"))?;
    let mut claims = node.config.verifier.verify(token).await?;
    if !claims.projects.contains(&project_id) {
        return Err(Rejection::new(
            ConnectErrorCode::ProjectForbidden,
            "the token does not grant this project",
        ));
    }
    match node.engine.is_session_revoked(&claims.sid).await {
        Ok(false) => {}
        Ok(true) => {
            return Err(Rejection::new(
                ConnectErrorCode::SessionRevoked,
                "the session was revoked",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check session revocation");
            return Err(Rejection::new(
                ConnectErrorCode::Unavailable,
                "cannot check the session right now; retry with backoff",
            ));
        }
    }
    claims.projects = vec![project_id];
    Ok(Identity {
        project_id,
        claims: Arc::new(claims),
    })
}
