//! The machine-readable error codes of the wire: action errors and handshake (`connect_error`) codes.

use std::fmt;

use serde::Serialize;

/// The `code` of an `error` system message (seed 003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidPayload,
    UnsupportedChannel,
    UnsupportedAction,
    Forbidden,
    SubscriptionFailed,
    UnsubscribeFailed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidPayload => "invalid_payload",
            ErrorCode::UnsupportedChannel => "unsupported_channel",
            ErrorCode::UnsupportedAction => "unsupported_action",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::SubscriptionFailed => "subscription_failed",
            ErrorCode::UnsubscribeFailed => "unsubscribe_failed",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a handshake was refused. The `connect_error` message starts with the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectErrorCode {
    AuthMissing,
    InvalidProjectId,
    InvalidToken,
    TokenExpired,
    NotAUserToken,
    ProjectForbidden,
    SessionRevoked,
    /// Transient: the node cannot check the session right now; retry with backoff.
    Unavailable,
}

impl ConnectErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectErrorCode::AuthMissing => "auth_missing",
            ConnectErrorCode::InvalidProjectId => "invalid_project_id",
            ConnectErrorCode::InvalidToken => "invalid_token",
            ConnectErrorCode::TokenExpired => "token_expired",
            ConnectErrorCode::NotAUserToken => "not_a_user_token",
            ConnectErrorCode::ProjectForbidden => "project_forbidden",
            ConnectErrorCode::SessionRevoked => "session_revoked",
            ConnectErrorCode::Unavailable => "unavailable",
        }
    }

    /// Final codes must not be retried with the same token; only `unavailable` is transient.
    pub fn is_final(self) -> bool {
        !matches!(self, ConnectErrorCode::Unavailable)
    }
}

impl fmt::Display for ConnectErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [
            ErrorCode::InvalidPayload,
            ErrorCode::UnsupportedChannel,
            ErrorCode::UnsupportedAction,
            ErrorCode::Forbidden,
            ErrorCode::SubscriptionFailed,
            ErrorCode::UnsubscribeFailed,
        ] {
            assert_eq!(serde_json::to_value(code).ok(), Some(code.as_str().into()));
        }
        assert_eq!(ConnectErrorCode::NotAUserToken.as_str(), "not_a_user_token");
        assert!(ConnectErrorCode::SessionRevoked.is_final());
        assert!(!ConnectErrorCode::Unavailable.is_final());
    }
}
