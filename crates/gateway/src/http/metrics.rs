//! `GET /metrics`: every metric of the node in the Prometheus text format.
//!
//! Counters are kept on the hot path ([`crate::metrics`]); the gauges below are read here, at
//! scrape time, because counting them is cheaper than keeping them up to date: one pass over the
//! node's sockets per scrape. Unauthenticated, like `/healthz`: do not route it through a public
//! ingress (the example ingress in `deploy/k8s` exposes only the Socket.IO path).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use livegate_protocol::Channel;
use socketioxide::SocketIo;

use crate::config::EngineKind;
use crate::drain::DrainRegistry;
use crate::node::Node;

#[derive(Clone)]
struct Scrape {
    node: Arc<Node>,
    io: SocketIo,
    connections: Arc<DrainRegistry>,
}

pub fn router(node: Arc<Node>, io: SocketIo, connections: Arc<DrainRegistry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Scrape {
            node,
            io,
            connections,
        })
}

async fn metrics(State(scrape): State<Scrape>) -> impl IntoResponse {
    scrape.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scrape.node.metrics.render(),
    )
}

impl Scrape {
    fn refresh_gauges(&self) {
        let node = &self.node;
        let m = &node.metrics;
        m.connected_sockets.reset();
        for ns in self.io.nsps() {
            let path = ns.ns_path().to_owned();
            let n = ns.local().sockets().len();
            m.connected_sockets
                .with_label_values(&[path.as_str()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }

        let mut per_channel: BTreeMap<&'static str, usize> =
            Channel::ALL.iter().map(|c| (c.as_str(), 0)).collect();
        per_channel.extend(node.members.by_label());
        for (channel, n) in per_channel {
            m.subscriptions
                .with_label_values(&[channel])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }

        if node.config.engine == EngineKind::Redis {
            m.redis_link_up.set(i64::from(node.engine.is_ready()));
        }
        m.ready.set(i64::from(node.is_ready()));
        m.draining.set(i64::from(node.is_draining()));
        m.open_connections
            .set(i64::try_from(self.connections.len()).unwrap_or(i64::MAX));
    }
}
