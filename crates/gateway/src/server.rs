//! Wires the node together: engine, Socket.IO layer (namespace, path, caps, heartbeat), the
//! delivery task, the idle sweeper and the HTTP routes, then serves until shutdown.
//!
//! Shutdown order (SIGTERM or Ctrl-C cancels `shutdown`):
//! 1. `/readyz` fails, and new handshakes are refused (503 on the Engine.IO path without a `sid`,
//!    `unavailable` at the Socket.IO connect);
//! 2. the drain ([`crate::drain`]) closes the node's TCP connections in batches over
//!    `LIVEGATE_DRAIN_WINDOW`, so clients see a transport close and reconnect elsewhere; it ends
//!    early once no socket is left;
//! 3. what is left is closed (`io.close()`), the HTTP server stops;
//! 4. background tasks are cancelled and awaited within a grace period.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use livegate_protocol::chat::CHAT_NAMESPACE;
use livegate_protocol::{INBOUND_PACKET_CAP, NAMESPACE, RedisNames, SOCKET_IO_PATH};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo, TransportType};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, EngineKind};
use crate::drain::{DrainListener, DrainRegistry};
use crate::engine::embedded::EmbeddedEngine;
use crate::engine::redis::{RedisEngine, RedisSettings};
use crate::engine::{Deliveries, Engine};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::session::idle;
use crate::{auth, chat, delivery, drain, http, session};

/// How long background tasks get to finish once the server has stopped.
const TASK_GRACE: Duration = Duration::from_secs(5);

fn engine(
    config: &Config,
    metrics: Arc<Metrics>,
) -> std::io::Result<(Arc<dyn Engine>, Deliveries)> {
    match config.engine {
        EngineKind::Embedded => {
            let (engine, deliveries) = EmbeddedEngine::new();
            Ok((Arc::new(engine), deliveries))
        }
        EngineKind::Redis => {
            let settings = RedisSettings {
                url: config.redis.url.clone(),
                names: RedisNames::new(config.redis.prefix.clone()),
                sharded: config.redis.sharded,
                command_timeout: config.redis.timeout,
                unsubscribe_grace: config.redis.unsubscribe_grace,
                max_publication_bytes: config.max_publication_bytes,
            };
            let (engine, deliveries) = RedisEngine::start(settings, metrics)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok((Arc::new(engine), deliveries))
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let (engine, deliveries) = engine(&config, metrics.clone())?;
    let node = Arc::new(Node::new(config, engine, metrics));
    let cfg = &node.config;

    let (layer, io) = SocketIo::builder()
        .req_path(SOCKET_IO_PATH)
        .transports([TransportType::Polling, TransportType::Websocket])
        .ping_interval(cfg.ping_interval)
        .ping_timeout(cfg.ping_timeout)
        .connect_timeout(cfg.connect_timeout)
        // The 4 KB cap needs all three: polling bodies, websocket messages, websocket frames.
        .max_payload(INBOUND_PACKET_CAP as u64)
        .ws_max_message_size(INBOUND_PACKET_CAP)
        .ws_max_frame_size(INBOUND_PACKET_CAP)
        // Only the first read chunk (tungstenite grows it for larger messages; the cap above
        // still holds): 1 KB instead of 4 KB per idle socket.
        .ws_read_buffer_size(1024)
        .max_buffer_size(cfg.socket_buffer)
        // Binary attachments are not part of the protocol: a packet carrying one closes the connection.
        .with_parser(ParserConfig::common().max_incoming_binaries(0))
        .with_state(node.clone())
        .build_layer();
    io.ns(NAMESPACE, session::on_connect.with(auth::authenticate));
    io.ns(CHAT_NAMESPACE, chat::on_connect.with(auth::authenticate));

    let tracker = TaskTracker::new();
    let tasks = shutdown.child_token();
    tracker.spawn(delivery::run(
        io.clone(),
        node.clone(),
        deliveries,
        tasks.clone(),
    ));
    tracker.spawn(idle::sweep(io.clone(), node.clone(), tasks.clone()));

    let connections = DrainRegistry::new();
    let app = Router::new()
        .merge(http::router(node.clone()))
        .merge(http::metrics::router(
            node.clone(),
            io.clone(),
            connections.clone(),
        ))
        .layer(layer)
        .layer(axum::middleware::map_request(own_request_parts))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            drain::refuse_new_sessions,
        ));
    let addr = listener.local_addr()?;
    tracing::info!(%addr, engine = ?node.config.engine, "listening");
    // Sets TCP_NODELAY on every connection (axum does not) and makes each one closable by the drain.
    let listener = DrainListener::new(listener, connections.clone());
    let drain_node = node.clone();
    let drain_io = io.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            drain_node.start_draining();
            let settings = drain_node.config.drain;
            let started = std::time::Instant::now();
            tracing::info!(
                window = ?settings.window,
                batches = settings.batches,
                connections = connections.len(),
                sockets = sockets_on(&drain_io),
                "shutting down: draining connections"
            );
            let closed = drain::drain(&connections, settings, || sockets_on(&drain_io)).await;
            drain_node.metrics.drained_connections.inc_by(closed as u64);
            tracing::info!(closed, took = ?started.elapsed(), "drain finished: closing what is left");
            drain_io.close().await;
        })
        .await;

    tasks.cancel();
    tracker.close();
    drop(io);
    if tokio::time::timeout(TASK_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background tasks did not stop within the grace period");
    }
    served
}

/// Socket.IO sockets on this node, every namespace.
fn sockets_on(io: &SocketIo) -> usize {
    io.nsps()
        .into_iter()
        .map(|ns| ns.local().sockets().len())
        .sum()
}

/// Memory per connection: hyper parses headers and the URI as slices of its 8–16 KB connection
/// read buffer, and engineioxide keeps the request parts for the socket's whole life, which pins
/// that buffer. Copying them into their own small allocations lets it go once the connection is
/// upgraded: −10.8 KB per idle socket, measured (bench/results/2026-11-23-profile.md).
///
/// A Socket.IO request keeps only the headers the transport still reads ([`SOCKET_IO_HEADERS`]):
/// a browser's cookies, user agent and languages (often kilobytes) would otherwise be held per
/// socket, and no handler reads them (the token travels in the CONNECT packet). Every other
/// route keeps all its headers.
async fn own_request_parts(mut req: axum::extract::Request) -> axum::extract::Request {
    let socket_io = req.uri().path().starts_with(SOCKET_IO_PATH);
    let headers = std::mem::take(req.headers_mut());
    let mut owned = axum::http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers.iter() {
        if socket_io && !SOCKET_IO_HEADERS.contains(name) {
            continue;
        }
        if let Ok(v) = axum::http::HeaderValue::from_bytes(value.as_bytes()) {
            owned.append(name.clone(), v);
        }
    }
    *req.headers_mut() = owned;
    if let Ok(uri) = axum::http::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    // axum's router stores a clone of the original URI, sharing the same buffer.
    if let Some(original) = req.extensions_mut().get_mut::<axum::extract::OriginalUri>()
        && let Ok(uri) = axum::http::Uri::try_from(original.0.to_string())
    {
        original.0 = uri;
    }
    req
}

/// What engineioxide and hyper read of a Socket.IO request after this node's layers: the
/// websocket handshake, and the body framing and type of a polling `POST`.
const SOCKET_IO_HEADERS: [axum::http::HeaderName; 10] = {
    use axum::http::header::*;
    [
        HOST,
        CONNECTION,
        UPGRADE,
        SEC_WEBSOCKET_KEY,
        SEC_WEBSOCKET_VERSION,
        SEC_WEBSOCKET_PROTOCOL,
        SEC_WEBSOCKET_EXTENSIONS,
        CONTENT_TYPE,
        CONTENT_LENGTH,
        TRANSFER_ENCODING,
    ]
};

#[cfg(test)]
mod tests {
    use axum::extract::Request;
    use axum::http::header::{AUTHORIZATION, COOKIE, SEC_WEBSOCKET_KEY, USER_AGENT};

    use super::*;

    fn request(path: &str) -> Request {
        Request::builder()
            .uri(path)
            .header(COOKIE, "session=".to_owned() + &"x".repeat(3000))
            .header(USER_AGENT, "Mozilla/5.0")
            .header(AUTHORIZATION, "Bearer k")
            .header(SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(axum::body::Body::empty())
            .expect("a valid test request")
    }

    #[tokio::test]
    async fn a_socket_io_request_keeps_only_the_transport_headers() {
        let req = own_request_parts(request(&format!(
            "{SOCKET_IO_PATH}/?EIO=4&transport=websocket"
        )))
        .await;
        let names: Vec<_> = req.headers().keys().cloned().collect();
        assert_eq!(names, vec![SEC_WEBSOCKET_KEY]);
        assert!(req.uri().query().is_some_and(|q| q.contains("EIO=4")));
    }

    #[tokio::test]
    async fn other_routes_keep_every_header() {
        let req = own_request_parts(request("/api/v1/publish")).await;
        for name in [COOKIE, USER_AGENT, AUTHORIZATION, SEC_WEBSOCKET_KEY] {
            assert!(req.headers().contains_key(&name), "{name} dropped");
        }
    }
}
