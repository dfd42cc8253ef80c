//! The delivery task: takes what the engine hands over, one at a time and in order, and emits it
//! to this node's sockets.
//!
//! A publication is serialized once and emitted to its rooms with `.local()` (the fan-out across
//! nodes is the engine's job). Emitting to several rooms at once dedupes sockets, so a socket
//! subscribed by both ids of one request gets one copy. A `subscription.closed` ends the matching
//! subscriptions after it is delivered; a revocation tells the session's sockets, then
//! disconnects them.

use std::sync::Arc;

use livegate_protocol::chat::CHAT_NAMESPACE;
use livegate_protocol::{AnyPublication, EventName, NAMESPACE, Publication, Route};
use serde_json::json;
use socketioxide::SocketIo;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::chat;
use crate::engine::{Deliveries, Delivery};
use crate::metrics::Metrics;
use crate::node::{Node, now_ms};
use crate::rooms;
use crate::session::Session;

pub async fn run(
    io: SocketIo,
    node: Arc<Node>,
    mut deliveries: Deliveries,
    shutdown: CancellationToken,
) {
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = deliveries.recv() => match next {
                Some(d) => d,
                None => return,
            },
        };
        match delivery {
            Delivery::Publication {
                publication,
                delivered,
                received,
            } => {
                if match *publication {
                    AnyPublication::Live(p) => deliver(&io, &node, p).await,
                    AnyPublication::Chat(p) => chat::delivery::deliver(&io, &node, p).await,
                } {
                    node.metrics
                        .publish_to_emit
                        .observe(received.elapsed().as_secs_f64());
                }
                if let Some(ack) = delivered {
                    let _ = ack.send(());
                }
            }
            Delivery::SessionRevoked { sid, reason } => revoke(&io, &sid, &reason).await,
        }
    }
}

/// Emits one publication to its rooms; `true` when at least one socket was sent it.
async fn deliver(io: &SocketIo, node: &Node, mut p: Publication) -> bool {
    if p.event == EventName::SubscriptionClosed {
        fill_ids_from_registry(node, &mut p).await;
    }
    let keys = rooms::keys_for_route(&p.route);
    let room_names: Vec<String> = keys
        .iter()
        .map(|k| rooms::for_key(p.project_id, k))
        .collect();
    let Some(ns) = io.of(NAMESPACE) else {
        return false;
    };
    if room_names.is_empty() {
        return false;
    }
    let event_id = p
        .event_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let payload = p.envelope(&event_id, now_ms());
    // The sockets themselves are needed only to end their subscriptions after a
    // `subscription.closed`, or to count the recipients of two rooms without counting a socket
    // in both twice; otherwise the room's count is enough and socketioxide walks the room once.
    let closing = p.event == EventName::SubscriptionClosed;
    let (count, sockets) = match room_names.as_slice() {
        [room] if !closing => (node.members.count(room), Vec::new()),
        _ => {
            let sockets = ns.clone().local().to(room_names.clone()).sockets();
            (sockets.len(), sockets)
        }
    };
    if count == 0 {
        return false;
    }
    Metrics::inc(&node.metrics.deliveries, count as u64);
    if let Err(e) = ns
        .local()
        .to(room_names.clone())
        .emit(p.event.as_str(), &payload)
        .await
    {
        Metrics::inc(&node.metrics.emit_failures, 1);
        tracing::warn!(event = %p.event, %event_id, error = %e, "some sockets missed a publication");
    }
    if closing {
        for socket in sockets {
            let Some(session) = socket.extensions.get::<Arc<Session>>() else {
                continue;
            };
            for room in &room_names {
                session.leave(&socket, room);
            }
        }
    }
    true
}

/// `subscription.closed` is routed by both ids; the one it lacks comes from the registry.
async fn fill_ids_from_registry(node: &Node, p: &mut Publication) {
    let Route::PaymentRequest {
        payment_request_id,
        provider_payment_id,
    } = &p.route
    else {
        return;
    };
    match (payment_request_id, provider_payment_id) {
        (Some(id), None) => {
            if let Ok(Some(rec)) = node.engine.payment_request(*id).await
                && rec.project_id == p.project_id
            {
                p.fill_payment_ids(None, rec.provider_payment_id);
            }
        }
        (None, Some(pp)) => {
            if let Ok(Some(rec)) = node.engine.provider_payment(pp).await
                && rec.project_id == p.project_id
            {
                p.fill_payment_ids(Some(rec.payment_request_id), None);
            }
        }
        _ => {}
    }
}

async fn revoke(io: &SocketIo, sid: &str, reason: &str) {
    let room = rooms::for_session(sid);
    let sockets: Vec<_> = [NAMESPACE, CHAT_NAMESPACE]
        .into_iter()
        .filter_map(|name| io.of(name))
        .flat_map(|ns| ns.local().to(room.clone()).sockets())
        .collect();
    if sockets.is_empty() {
        return;
    }
    tracing::info!(
        sid,
        sockets = sockets.len(),
        "session revoked: disconnecting its sockets"
    );
    let body = json!({ "reason": reason });
    for socket in sockets {
        let _ = socket.emit("session.revoked", &body);
        let _ = socket.disconnect();
    }
}
