//! The response envelope of every targets API answer (seed 001, CONTRACT §6):
//!
//! ```text
//! {"ok": true,  "request_id", "method", "path", "code", "total"?, "message"?, "data"}
//! {"ok": false, "request_id", "method", "path", "code", "error": {"code", "message", "errors"?}}
//! ```
//!
//! `request_id` is a fresh UUID v4 per request, also sent as the `x-request-id` header; `path`
//! is the request path without its query string. A `204` has no body.

use std::convert::Infallible;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use livegate_protocol::FieldError;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::api_error::ApiError;

/// What every envelope repeats about its request.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Uuid,
    pub method: Method,
    pub path: String,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestMeta {
            request_id: Uuid::new_v4(),
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// A successful answer.
#[derive(Debug)]
pub enum Reply {
    /// An envelope with `data`.
    Data {
        status: StatusCode,
        total: Option<usize>,
        message: Option<String>,
        data: Value,
    },
    /// `204 No Content`.
    NoContent,
}

/// The body, fields in the order seed 001 shows them.
#[derive(Serialize)]
struct Envelope<'a> {
    ok: bool,
    request_id: Uuid,
    method: &'a str,
    path: &'a str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

impl RequestMeta {
    /// Renders the answer to this request.
    pub fn respond(&self, result: Result<Reply, ApiError>) -> Response {
        let mut envelope = Envelope {
            ok: result.is_ok(),
            request_id: self.request_id,
            method: self.method.as_str(),
            path: &self.path,
            code: 0,
            total: None,
            message: None,
            data: None,
            error: None,
        };
        let status = match result {
            Ok(Reply::NoContent) => {
                return self.with_request_id(StatusCode::NO_CONTENT.into_response());
            }
            Ok(Reply::Data {
                status,
                total,
                message,
                data,
            }) => {
                envelope.total = total;
                envelope.message = message;
                envelope.data = Some(data);
                status
            }
            Err(error) => {
                let (status, code) = error.wire();
                self.log(&error, status);
                envelope.error = Some(ErrorDetail {
                    code,
                    message: error.to_string(),
                    errors: error.field_errors().to_vec(),
                });
                status
            }
        };
        envelope.code = status.as_u16();
        self.with_request_id((status, Json(envelope)).into_response())
    }

    fn with_request_id(&self, mut response: Response) -> Response {
        if let Ok(v) = HeaderValue::from_str(&self.request_id.to_string()) {
            response.headers_mut().insert("x-request-id", v);
        }
        response
    }

    /// Client mistakes are routine (debug); failures of ours are logged with their cause.
    fn log(&self, error: &ApiError, status: StatusCode) {
        let source = std::error::Error::source(error).map(ToString::to_string);
        if status.is_server_error() {
            tracing::warn!(request_id = %self.request_id, method = %self.method, path = %self.path,
                error = %error, cause = ?source, "targets API request failed");
        } else {
            tracing::debug!(request_id = %self.request_id, method = %self.method, path = %self.path,
                error = %error, "targets API request refused");
        }
    }
}
