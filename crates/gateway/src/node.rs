//! What every handler of this node shares: configuration, engine, counters and the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::room_members::RoomMembers;

pub struct Node {
    pub config: Config,
    pub engine: Arc<dyn Engine>,
    pub metrics: Arc<Metrics>,
    /// Sockets per subscription room, on this node.
    pub members: Arc<RoomMembers>,
    /// Set when shutdown begins: `/readyz` fails from then on.
    draining: AtomicBool,
}

impl Node {
    pub fn new(config: Config, engine: Arc<dyn Engine>, metrics: Arc<Metrics>) -> Self {
        Node {
            config,
            engine,
            metrics,
            members: Arc::default(),
            draining: AtomicBool::new(false),
        }
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun: new handshakes are refused and connections are being drained.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Ready to take connections: not draining, and the engine can do its job.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst) && self.engine.is_ready()
    }
}

/// Milliseconds on a monotonic clock that starts with the process: idle bookkeeping.
pub fn monotonic_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock milliseconds since the epoch, for `emitted_at` and `pong.timestamp`.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
