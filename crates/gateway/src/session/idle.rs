//! The idle sweeper: one task per node that disconnects sockets which sent no packet for the
//! idle timeout. Engine.IO pongs do not count; any Socket.IO packet from the client does.
//!
//! It ticks every timeout/4 (at least 100 ms), so a socket is disconnected at most
//! max(1 s, timeout/4) after its deadline, as the contract allows.

use std::sync::Arc;
use std::time::Duration;

use livegate_protocol::NAMESPACE;
use livegate_protocol::chat::CHAT_NAMESPACE;
use socketioxide::SocketIo;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::node::{Node, monotonic_ms};
use crate::session::Session;

pub fn sweep_period(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(100))
}

pub async fn sweep(io: SocketIo, node: Arc<Node>, shutdown: CancellationToken) {
    let timeout = node.config.idle_timeout;
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let mut ticks = tokio::time::interval(sweep_period(timeout));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = monotonic_ms();
        let sockets = [NAMESPACE, CHAT_NAMESPACE]
            .into_iter()
            .filter_map(|name| io.of(name))
            .flat_map(|ns| ns.sockets());
        for socket in sockets {
            let Some(session) = socket.extensions.get::<Arc<Session>>() else {
                continue;
            };
            if session.idle_for_ms(now) >= timeout_ms {
                let _enter = session.span.enter();
                tracing::info!(idle_timeout = ?timeout, "idle timeout: disconnecting");
                Metrics::inc(&node.metrics.idle_disconnects, 1);
                let _ = socket.disconnect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_stays_within_the_contract() {
        for secs in [1u64, 2, 10, 540] {
            let t = Duration::from_secs(secs);
            assert!(
                sweep_period(t) <= (t / 4).max(Duration::from_secs(1)),
                "{secs}s"
            );
        }
    }
}
