//! The admin page: a live table of a project's targets, at `GET /`, with its assets under
//! `/admin/…`, all embedded in the binary (`assets/admin/`, and the vendored Socket.IO client
//! `assets/socket.io.min.js`, see `assets/README.md`).
//!
//! The page connects with `socket.io-client`, follows seed 000's client pattern and changes
//! targets through the REST API on this same origin (see [`super::targets`]). In development mode
//! `GET /admin/dev-session` hands it a fresh dev token and the dev project, so `make run` opens
//! straight onto a live table; that route does not exist otherwise.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::config::DEV_PROJECT_ID;
use crate::dev_token::DevToken;
use crate::node::Node;

const INDEX_HTML: &str = include_str!("../../assets/admin/index.html");
const APP_JS: &str = include_str!("../../assets/admin/app.js");
const APP_CSS: &str = include_str!("../../assets/admin/app.css");
const SOCKET_IO_JS: &str = include_str!("../../assets/socket.io.min.js");

/// Only this origin's scripts, styles and connections; never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'";

/// How long a token from `/admin/dev-session` lives.
const DEV_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

pub fn router(node: Arc<Node>) -> Router {
    let mut router = Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/admin/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/admin/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/admin/socket.io.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", SOCKET_IO_JS) }),
        );
    if node.config.dev && node.config.dev_secret.is_some() {
        router = router.route("/admin/dev-session", get(dev_session));
    }
    router.with_state(node)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Embedded in the binary: an upgrade changes them, so browsers revalidate.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `{token, project_id}` for the page in development mode: a dev token like the banner's.
async fn dev_session(State(node): State<Arc<Node>>) -> Response {
    let token = DevToken {
        user: "dev-admin",
        projects: &[DEV_PROJECT_ID],
        sid: None,
        permissions: &["all".to_owned()],
        ttl: DEV_SESSION_TTL,
        secret: node.config.dev_secret.as_deref(),
    }
    .mint();
    match token {
        Ok(token) => {
            let mut response =
                Json(json!({"token": token, "project_id": DEV_PROJECT_ID})).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot sign a dev token");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"code": "internal", "message": "cannot sign a dev token"}})),
            )
                .into_response()
        }
    }
}
