//! Wires the node together: engine, Socket.IO layer (namespace, path, caps, heartbeat), the
//! delivery task, the idle sweeper and the HTTP routes, then serves until shutdown.
//!
//! Shutdown order: `/readyz` fails → Socket.IO sockets are closed (`io.close()`) → the HTTP
//! server stops → background tasks are cancelled and awaited within a grace period.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use livegate_protocol::{INBOUND_PACKET_CAP, NAMESPACE, RedisNames, SOCKET_IO_PATH};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo, TransportType};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, EngineKind};
use crate::engine::embedded::EmbeddedEngine;
use crate::engine::redis::{RedisEngine, RedisSettings};
use crate::engine::{Deliveries, Engine};
use crate::metrics::Metrics;
use crate::node::Node;
use crate::session::idle;
use crate::{auth, delivery, http, session};

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
        .ws_read_buffer_size(INBOUND_PACKET_CAP)
        .max_buffer_size(cfg.socket_buffer)
        // Binary attachments are not part of the protocol: a packet carrying one closes the connection.
        .with_parser(ParserConfig::common().max_incoming_binaries(0))
        .with_state(node.clone())
        .build_layer();
    io.ns(NAMESPACE, session::on_connect.with(auth::authenticate));

    let tracker = TaskTracker::new();
    let tasks = shutdown.child_token();
    tracker.spawn(delivery::run(
        io.clone(),
        node.clone(),
        deliveries,
        tasks.clone(),
    ));
    tracker.spawn(idle::sweep(io.clone(), node.clone(), tasks.clone()));

    let app = Router::new().merge(http::router(node.clone())).layer(layer);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, engine = ?node.config.engine, "listening");
    let listener = listener.tap_io(|tcp| {
        // axum does not set TCP_NODELAY: without it, Nagle + delayed ACK add ~40 ms per handshake.
        let _ = tcp.set_nodelay(true);
    });
    let drain_node = node.clone();
    let drain_io = io.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            drain_node.start_draining();
            tracing::info!("shutting down: closing sockets");
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
