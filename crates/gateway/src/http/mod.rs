//! The node's plain HTTP endpoints, beside Socket.IO on the same listener.
//!
//! - `GET /healthz`: the process is alive.
//! - `GET /readyz`: the node takes connections (not draining, engine ready).
//! - `GET /metrics`: Prometheus metrics ([`metrics`]; mounted by [`crate::server`], which holds the sockets).
//! - `POST /api/v1/publish`: one publication into the engine (bearer publish key).
//! - `POST /api/v1/revoke`: revoke a session everywhere (bearer publish key).
//! - `/v2/projects/{project_id}/targets…`: the targets REST API, in-process when on ([`targets`]).
//! - `GET /` and `/admin/…`: the admin page ([`admin`]).

pub mod admin;
pub mod api_error;
pub mod health;
pub mod metrics;
pub mod publish_api;
pub mod targets;

use std::sync::Arc;

use axum::Router;

use crate::node::Node;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .merge(health::router(node.clone()))
        .merge(targets::router(&node))
        .merge(admin::router(node.clone()))
        .merge(publish_api::router(node))
}
