//! Serves the targets API on Redis (the `livegate-targets` binary): the Redis store, the Redis
//! publisher and the revocation check share one fred client. Also `GET /healthz` (the process is
//! up) and `GET /readyz` (Redis answers `PING`).

use std::future::Future;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use fred::interfaces::ClientLike;
use fred::prelude::Client;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::config::TargetsConfig;
use super::{Authenticator, RedisRevocations, RedisStore, TargetsApi, router};
use crate::{RedisPublisher, redis};

/// Connects to Redis, then serves on `listener` until `shutdown` resolves; in-flight requests
/// finish, then the Redis client quits.
pub async fn serve(
    config: TargetsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let client = redis::connect(&config.redis_url, config.redis_timeout).await?;
    let store = RedisStore::new(client.clone(), &config.names);
    let publisher = RedisPublisher::new(client.clone(), config.names.clone(), config.sharded);
    let mut auth = Authenticator::new(config.verifier.clone(), config.api_keys.clone());
    if config.check_revocations {
        auth = auth.with_revocations(RedisRevocations::new(client.clone(), config.names.clone()));
    }
    let app = router(TargetsApi::new(store, publisher, auth)).merge(
        axum::Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readyz))
            .with_state(client.clone()),
    );
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    tracing::info!(%addr, config = ?config, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Io)?;
    if let Err(e) = client.quit().await {
        tracing::debug!(error = %e, "redis quit failed");
    }
    Ok(())
}

async fn readyz(State(client): State<Client>) -> (StatusCode, Json<Value>) {
    match client.ping::<String>(None).await {
        Ok(_) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready"})),
        ),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot connect to Redis")]
    Redis(#[from] crate::Error),
    #[error("the HTTP server failed")]
    Io(#[source] std::io::Error),
}
