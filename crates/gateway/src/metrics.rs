//! The node's metrics, and their Prometheus text exposition (`GET /metrics`, see
//! [`crate::http::metrics`]).
//!
//! Counters on the hot path are plain `prometheus` counters (one atomic add each); call sites
//! bump them with [`Metrics::inc`]. What is cheaper to read than to keep up to date (sockets
//! connected, subscriptions per channel, Redis link state, open TCP connections) is gauged when
//! Prometheus scrapes, by [`Metrics::render`]'s caller. Every metric is listed, with what it
//! means and what to alert on, in `docs/operations.md`.

use std::sync::atomic::{AtomicU64, Ordering};

use livegate_protocol::ConnectErrorCode;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Upper bounds (seconds) of the publish→emit latency buckets: 0.1 ms to ~3.3 s, doubling.
fn latency_buckets() -> Vec<f64> {
    (0..16).map(|i| 0.0001 * f64::from(1u32 << i)).collect()
}

/// Something [`Metrics::inc`] can add to.
pub trait Counter {
    fn add(&self, n: u64);
}

impl Counter for IntCounter {
    fn add(&self, n: u64) {
        self.inc_by(n);
    }
}

impl Counter for AtomicU64 {
    fn add(&self, n: u64) {
        self.fetch_add(n, Ordering::Relaxed);
    }
}

/// `livegate_publications_dropped_total`, by reason.
pub struct DroppedPublications(IntCounterVec);

impl DroppedPublications {
    /// The counter of one reason (`invalid_json`, `oversized`, `project_mismatch`, `lagged`, …).
    pub fn reason(&self, reason: &str) -> IntCounter {
        self.0.with_label_values(&[reason])
    }
}

impl Counter for DroppedPublications {
    /// A drop whose call site gave no reason.
    fn add(&self, n: u64) {
        self.reason("unspecified").inc_by(n);
    }
}

pub struct Metrics {
    registry: Registry,
    handshakes: IntCounterVec,
    /// Publications taken from the bus (Redis), valid or not.
    pub publications_received: IntCounter,
    /// Publications accepted by `POST /api/v1/publish`, valid or not.
    pub api_publications: IntCounter,
    pub publications_dropped: DroppedPublications,
    /// Socket-level deliveries: one per socket a publication was emitted to.
    pub deliveries: IntCounter,
    /// Publications emitted to at least one socket, and the time from receipt to emit.
    pub publish_to_emit: Histogram,
    pub emit_failures: IntCounter,
    pub idle_disconnects: IntCounter,
    pub slow_consumer_disconnects: IntCounter,
    pub redis_disconnects: IntCounter,
    /// Project channels subscribed again after a Redis (re)connection.
    pub resubscriptions: IntCounter,
    /// Connections the drain closed.
    pub drained_connections: IntCounter,
    // Gauges set at scrape time.
    pub connected_sockets: IntGaugeVec,
    pub subscriptions: IntGaugeVec,
    pub redis_link_up: IntGauge,
    pub ready: IntGauge,
    pub draining: IntGauge,
    pub open_connections: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("metric names are valid literals");
    registry
        .register(Box::new(c.clone()))
        .expect("each metric is registered once on a fresh registry");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])
        .expect("metric names are valid literals");
    registry
        .register(Box::new(c.clone()))
        .expect("each metric is registered once on a fresh registry");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("metric names are valid literals");
    registry
        .register(Box::new(g.clone()))
        .expect("each metric is registered once on a fresh registry");
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, label: &str) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), &[label]).expect("metric names are valid literals");
    registry
        .register(Box::new(g.clone()))
        .expect("each metric is registered once on a fresh registry");
    g
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let publish_to_emit = Histogram::with_opts(
            HistogramOpts::new(
                "livegate_publish_to_emit_seconds",
                "Time from when this node received a publication (from Redis or the publish API) to \
                 when it emitted it to its sockets",
            )
            .buckets(latency_buckets()),
        )
        .expect("valid histogram options");
        r.register(Box::new(publish_to_emit.clone()))
            .expect("each metric is registered once on a fresh registry");
        let build = IntGaugeVec::new(
            Opts::new(
                "livegate_build_info",
                "Always 1; the version of the running binary",
            ),
            &["version"],
        )
        .expect("valid gauge options");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(build))
            .expect("each metric is registered once on a fresh registry");
        #[cfg(target_os = "linux")]
        if let Err(e) = r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )) {
            tracing::warn!(error = %e, "process metrics are not available");
        }

        Metrics {
            handshakes: counter_vec(
                &r,
                "livegate_handshakes_total",
                "Socket.IO handshakes, by result: accepted, or the connect_error code",
                "result",
            ),
            publications_received: counter(
                &r,
                "livegate_publications_received_total",
                "Publications this node took from Redis, valid or not",
            ),
            api_publications: counter(
                &r,
                "livegate_api_publications_total",
                "Requests to POST /api/v1/publish that passed authentication, valid or not",
            ),
            publications_dropped: DroppedPublications(counter_vec(
                &r,
                "livegate_publications_dropped_total",
                "Publications dropped before delivery, by reason",
                "reason",
            )),
            deliveries: counter(
                &r,
                "livegate_deliveries_total",
                "Publications emitted to sockets, counted once per socket",
            ),
            publish_to_emit,
            emit_failures: counter(
                &r,
                "livegate_emit_failures_total",
                "Emits where at least one socket missed the publication (its queue was full or closed)",
            ),
            idle_disconnects: counter(
                &r,
                "livegate_idle_disconnects_total",
                "Sockets disconnected by the application idle timeout",
            ),
            slow_consumer_disconnects: counter(
                &r,
                "livegate_slow_consumer_disconnects_total",
                "Sockets closed at a heartbeat: no pong, or their outbound queue still full",
            ),
            redis_disconnects: counter(
                &r,
                "livegate_redis_disconnects_total",
                "Times the node lost its Redis connection",
            ),
            resubscriptions: counter(
                &r,
                "livegate_redis_resubscriptions_total",
                "Project channels subscribed again after a Redis (re)connection",
            ),
            drained_connections: counter(
                &r,
                "livegate_drained_connections_total",
                "TCP connections closed by the graceful drain",
            ),
            connected_sockets: gauge_vec(
                &r,
                "livegate_connected_sockets",
                "Socket.IO sockets connected to this node, by namespace",
                "namespace",
            ),
            subscriptions: gauge_vec(
                &r,
                "livegate_subscriptions",
                "Subscriptions held by this node's sockets, by channel",
                "channel",
            ),
            redis_link_up: gauge(
                &r,
                "livegate_redis_link_up",
                "1 when both Redis connections are up and every subscription is restored (Redis engine only)",
            ),
            ready: gauge(&r, "livegate_ready", "1 when /readyz answers 200"),
            draining: gauge(
                &r,
                "livegate_draining",
                "1 once the node is shutting down and draining its connections",
            ),
            open_connections: gauge(
                &r,
                "livegate_open_connections",
                "Open TCP connections (HTTP, polling and websocket)",
            ),
            registry: r,
        }
    }

    /// Counts a handshake by its result.
    pub fn handshake(&self, rejected: Option<ConnectErrorCode>) {
        match rejected {
            None => self.handshakes.with_label_values(&["accepted"]).inc(),
            Some(code) => self.handshakes.with_label_values(&[code.as_str()]).inc(),
        }
    }

    /// Handshakes with this result so far (`accepted` or a code).
    pub fn handshakes(&self, result: &str) -> u64 {
        self.handshakes.with_label_values(&[result]).get()
    }

    pub fn inc(counter: &impl Counter, n: u64) {
        counter.add(n);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_with_its_labels() {
        let m = Metrics::new();
        m.handshake(None);
        m.handshake(Some(ConnectErrorCode::TokenExpired));
        Metrics::inc(&m.publications_dropped.reason("invalid_json"), 2);
        Metrics::inc(&m.publications_dropped, 1);
        Metrics::inc(&m.deliveries, 3);
        m.publish_to_emit.observe(0.002);
        m.subscriptions.with_label_values(&["targets"]).set(4);
        let text = m.render();
        for needle in [
            "livegate_handshakes_total{result=\"accepted\"} 1",
            "livegate_handshakes_total{result=\"token_expired\"} 1",
            "livegate_publications_dropped_total{reason=\"invalid_json\"} 2",
            "livegate_publications_dropped_total{reason=\"unspecified\"} 1",
            "livegate_deliveries_total 3",
            "livegate_publish_to_emit_seconds_bucket{le=\"0.0032\"} 1",
            "livegate_publish_to_emit_seconds_count 1",
            "livegate_subscriptions{channel=\"targets\"} 4",
            "livegate_build_info{version=",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        #[cfg(target_os = "linux")]
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert_eq!(m.handshakes("accepted"), 1);
    }
}
