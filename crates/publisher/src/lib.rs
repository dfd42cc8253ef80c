//! livegate-publisher: what internal services use to announce state changes to live clients.
//!
//! # How to publish
//! Build a publication with [`events`] (one typed constructor per event; targets go through
//! [`events::target_change`], which derives the one event a before/after pair calls for), then
//! send it with a [`Publisher`]:
//! - [`RedisPublisher`]: `PUBLISH {prefix}:project:{id}` (or `SPUBLISH` on Redis Cluster), with
//!   the payment-request registries written in the same atomic step;
//! - [`HttpPublisher`]: `POST /api/v1/publish` on a gateway (the embedded engine has no Redis).
//!
//! Every publication gets an `event_id` here, so every gateway node stamps the same one.
//! Publishing a payment request in a terminal status also publishes `subscription.closed`
//! ([`publish_payment_request`]). [`Publisher::revoke_session`] disconnects a session
//! everywhere.
//!
//! The `livegate-publish` binary wraps this for operators and scripts.
//!
//! # The targets REST service
//! `targets_api` (cargo feature `targets-api`) is the REST API that manages a project's bot
//! targets and publishes the event each change derives, through any [`Publisher`]. The
//! `livegate-targets` binary serves it on Redis; the gateway mounts it in-process on the
//! embedded engine (`make run`).

pub mod error;
pub mod events;
pub mod http;
pub mod redis;
#[cfg(feature = "targets-api")]
pub mod targets_api;

use std::future::Future;
use std::time::Duration;

use livegate_protocol::Publication;
use livegate_protocol::chat::ChatPublication;
use livegate_protocol::payment_request::PaymentRequestStatus;
use serde_json::Value;
use uuid::Uuid;

pub use error::Error;
pub use http::HttpPublisher;
pub use redis::RedisPublisher;

/// Gives a chat publication its `event_id` if it has none, and returns the id.
pub fn ensure_chat_event_id(publication: &mut ChatPublication) -> String {
    publication
        .event_id
        .get_or_insert_with(|| Uuid::new_v4().to_string())
        .clone()
}

/// Gives a publication its `event_id` if it has none, and returns the id.
pub fn ensure_event_id(publication: &mut Publication) -> String {
    publication
        .event_id
        .get_or_insert_with(|| Uuid::new_v4().to_string())
        .clone()
}

/// A way to reach the gateways. Both backends implement it, and so does the gateway's own
/// engine (for the targets API served in-process on the embedded engine).
pub trait Publisher: Send + Sync {
    /// Publishes one validated publication; returns its `event_id`.
    fn publish(
        &self,
        publication: Publication,
    ) -> impl Future<Output = Result<String, Error>> + Send;

    /// Publishes one chat publication (the `/chat` namespace); keeps the chat membership
    /// registry up to date on the way. Returns its `event_id`.
    fn publish_chat(
        &self,
        publication: ChatPublication,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        let _ = publication;
        async {
            Err(Error::Unavailable(
                "this publisher does not carry chat events".into(),
            ))
        }
    }

    /// Revokes a session: later handshakes fail with `session_revoked`, and every node
    /// disconnects the session's sockets after sending `session.revoked {reason}`.
    fn revoke_session(
        &self,
        sid: &str,
        reason: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Publishes `payment-request.updated` and, when the status is terminal, the
/// `subscription.closed` that ends its subscriptions. Returns the event ids.
pub async fn publish_payment_request(
    publisher: &impl Publisher,
    project_id: Uuid,
    update_type: events::UpdateType,
    payment_request: Value,
) -> Result<Vec<String>, Error> {
    let updated = events::payment_request_updated(project_id, update_type, payment_request)?;
    let status = updated.payment_request_status();
    let closing = match (&updated.route, status) {
        (
            livegate_protocol::Route::PaymentRequest {
                payment_request_id: Some(id),
                provider_payment_id,
            },
            Some(status),
        ) if status.is_terminal() => Some(events::subscription_closed(
            project_id,
            Some(*id),
            provider_payment_id.clone(),
            status,
        )?),
        _ => None,
    };
    let mut ids = vec![publisher.publish(updated).await?];
    if let Some(closed) = closing {
        ids.push(publisher.publish(closed).await?);
    }
    Ok(ids)
}

/// Whether a status ends a payment request's subscriptions.
pub fn is_terminal(status: PaymentRequestStatus) -> bool {
    status.is_terminal()
}
