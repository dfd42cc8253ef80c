//! Every way a targets API request fails, and the one mapping from failure to HTTP status and
//! `error.code`. [`super::envelope`] renders the body.

use axum::http::StatusCode;
use livegate_auth::TokenError;
use livegate_protocol::FieldError;

use super::model::{Invalid, MAX_BULK_ITEMS};
use super::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("an Authorization: Bearer <user token or API key> header is required")]
    AuthMissing,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("the token has expired")]
    TokenExpired,
    #[error("token_use must be \"user\"")]
    NotAUserToken,
    #[error("the token's session has been revoked")]
    SessionRevoked,
    #[error("these credentials may not act on project {0}")]
    ProjectForbidden(String),
    /// `errors` points at the request fields that name what is missing (bulk PATCH).
    #[error("{message}")]
    NotFound {
        message: String,
        errors: Vec<FieldError>,
    },
    #[error("target {0} already exists")]
    TargetExists(uuid::Uuid),
    #[error("the request has {} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("a bulk PATCH carries at most {MAX_BULK_ITEMS} targets; this one has {0}")]
    TooManyTargets(usize),
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("the target store is unavailable; retry later")]
    StoreUnavailable(#[source] StoreError),
    #[error("the session check is unavailable; retry later")]
    SessionCheckUnavailable(String),
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ApiError {
    /// The HTTP status and `error.code`: the one place they are chosen.
    pub fn wire(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::AuthMissing => (StatusCode::UNAUTHORIZED, "auth_missing"),
            ApiError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            ApiError::NotAUserToken => (StatusCode::UNAUTHORIZED, "not_a_user_token"),
            ApiError::SessionRevoked => (StatusCode::UNAUTHORIZED, "session_revoked"),
            ApiError::ProjectForbidden(_) => (StatusCode::FORBIDDEN, "project_forbidden"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::TargetExists(_) => (StatusCode::CONFLICT, "target_exists"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::TooManyTargets(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_targets"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::StoreUnavailable(_) | ApiError::SessionCheckUnavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The field-level reasons, sent as `error.errors` when there are any.
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            ApiError::Validation(errors) | ApiError::NotFound { errors, .. } => errors,
            _ => &[],
        }
    }

    /// A 404 for one target of a project.
    pub fn no_target(project: uuid::Uuid, target: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound {
            message: format!("project {project} has no target {target}"),
            errors: vec![],
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Fields(errors) => ApiError::Validation(errors),
            Invalid::TooManyItems(n) => ApiError::TooManyTargets(n),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Invalid(why) => ApiError::InvalidToken(why),
            TokenError::Expired => ApiError::TokenExpired,
            TokenError::NotAUserToken => ApiError::NotAUserToken,
        }
    }
}

impl From<StoreError> for ApiError {
    /// `NotFound` is mapped by the caller, who knows which request field named the ids; here it
    /// becomes a plain 404.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists(id) => ApiError::TargetExists(id),
            StoreError::NotFound(ids) => ApiError::NotFound {
                message: format!("no such target: {}", join(&ids)),
                errors: vec![],
            },
            e @ StoreError::Corrupt { .. } => ApiError::Internal(e),
            e @ (StoreError::Redis { .. } | StoreError::Contended { .. }) => {
                ApiError::StoreUnavailable(e)
            }
        }
    }
}

fn join(ids: &[uuid::Uuid]) -> String {
    ids.iter()
        .map(uuid::Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
