//! The node's counters: plain atomics, cheap on the hot path. They are logged at shutdown and
//! are the source the Prometheus exporter reads.

use std::sync::atomic::{AtomicU64, Ordering};

use livegate_protocol::ConnectErrorCode;

#[derive(Debug, Default)]
pub struct Metrics {
    pub handshakes_accepted: AtomicU64,
    pub handshakes_rejected: AtomicU64,
    pub publications_received: AtomicU64,
    pub publications_dropped: AtomicU64,
    pub deliveries: AtomicU64,
    pub idle_disconnects: AtomicU64,
    pub emit_failures: AtomicU64,
    pub redis_disconnects: AtomicU64,
    pub resubscriptions: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
}

impl Metrics {
    pub fn handshake(&self, rejected: Option<ConnectErrorCode>) {
        let counter = match rejected {
            None => &self.handshakes_accepted,
            Some(_) => &self.handshakes_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
