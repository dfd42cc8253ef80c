//! `POST /api/v1/publish` and `POST /api/v1/revoke`: how publishers reach a node over HTTP,
//! the only way in on the embedded engine. Both take `Authorization: Bearer <publish key>`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use axum::{Json, Router};
use livegate_protocol::{AnyPublication, FieldError};
use serde_json::{Value, json};
use uuid::Uuid;

use super::api_error::ApiError;
use crate::metrics::Metrics;
use crate::node::Node;

pub fn router(node: Arc<Node>) -> Router {
    let limit = node.config.max_publication_bytes;
    Router::new()
        .route("/api/v1/publish", post(publish))
        .route("/api/v1/revoke", post(revoke))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}

/// Checks the bearer key in constant time.
fn authorize(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = node.config.publish_api_key.as_deref() else {
        return Err(ApiError::Disabled);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same_len = presented.len() == key.len();
    let diff = presented
        .bytes()
        .zip(key.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if same_len && diff == 0 {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn body(node: &Node, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|_| ApiError::TooLarge(node.config.max_publication_bytes))
}

async fn publish(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&node, &headers)?;
    let raw = body(&node, raw)?;
    Metrics::inc(&node.metrics.api_publications, 1);
    let mut publication = AnyPublication::parse(&raw).inspect_err(|e| {
        Metrics::inc(&node.metrics.publications_dropped.reason(e.reason()), 1);
        tracing::info!(reason = e.reason(), error = %e, "refused a publication");
    })?;
    // `origin_connection` is the node's own mark on client typing; never taken from outside.
    if let AnyPublication::Chat(chat) = &mut publication {
        chat.origin_connection = None;
    }
    // Assigned here, once, so every node that emits it stamps the same id.
    let event_id = publication
        .event_id_mut()
        .get_or_insert_with(|| Uuid::new_v4().to_string())
        .clone();
    node.engine.publish(publication).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": event_id }))))
}

async fn revoke(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    authorize(&node, &headers)?;
    let raw = body(&node, raw)?;
    let request: Value = serde_json::from_slice(&raw).map_err(|_| ApiError::InvalidJson)?;
    let sid = request
        .get("sid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let reason = match request.get("reason") {
        None | Some(Value::Null) => Some("revoked"),
        Some(v) => v.as_str(),
    };
    let (Some(sid), Some(reason)) = (sid, reason) else {
        let mut errors = Vec::new();
        if sid.is_none() {
            errors.push(FieldError::new("sid", "must be a non-empty string"));
        }
        if reason.is_none() {
            errors.push(FieldError::new("reason", "must be a string"));
        }
        return Err(ApiError::InvalidRequest(errors));
    };
    node.engine
        .revoke_session(sid, reason, node.config.revocation_ttl)
        .await?;
    tracing::info!(sid, reason, "session revoked through the API");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "sid": sid, "reason": reason })),
    ))
}
