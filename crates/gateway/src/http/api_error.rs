//! Every HTTP API failure and its response: `{"error": {"code", "message", "errors"?}}`.
//! The one place where internal errors become HTTP statuses.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use livegate_protocol::FieldError;
use livegate_protocol::publication::PublicationError;
use serde_json::json;

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer publish key is required")]
    Unauthorized,
    #[error("this endpoint is off: the node has no publish key")]
    Disabled,
    #[error("the body is not valid JSON")]
    InvalidJson,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    InvalidPublication(PublicationError),
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    #[error("{0}")]
    Unavailable(#[from] EngineError),
}

impl From<PublicationError> for ApiError {
    fn from(e: PublicationError) -> Self {
        match e {
            PublicationError::NotJson => ApiError::InvalidJson,
            other => ApiError::InvalidPublication(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, errors) = match &self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Disabled => (StatusCode::NOT_FOUND, "publish_api_disabled", None),
            ApiError::InvalidJson => (StatusCode::BAD_REQUEST, "invalid_json", None),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            ApiError::InvalidPublication(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_publication",
                Some(e.field_errors()),
            ),
            ApiError::InvalidRequest(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                Some(errors.clone()),
            ),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
        };
        let mut error = json!({"code": code, "message": self.to_string()});
        if let (Some(errors), Some(obj)) = (errors, error.as_object_mut()) {
            obj.insert("errors".into(), json!(errors));
        }
        (status, Json(json!({ "error": error }))).into_response()
    }
}
