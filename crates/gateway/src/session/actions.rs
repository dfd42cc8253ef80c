//! The answer to one action frame of a `/v2/live-updates` socket (frames are answered one at a
//! time, in the order they arrived: see [`crate::session`]); the one place where action failures
//! become wire errors (seed 003, CONTRACT §2).

use std::sync::Arc;

use livegate_protocol::message::SubscriptionAck;
use livegate_protocol::payment_request::PaymentRequestRecord;
use livegate_protocol::{
    Action, Channel, ErrorCode, ErrorMeta, EventName, SubscriptionKey, SubscriptionRequest,
    SystemMessage,
};
use serde_json::{Map, Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::engine::EngineError;
use crate::node::{Node, now_ms};
use crate::rooms;
use crate::session::{Admission, LEASE_UNAVAILABLE, REGISTRY_UNAVAILABLE, Session, permitted};

/// One thing to send back to the socket.
enum Reply {
    Message(SystemMessage),
    /// A broadcast-shaped event for this socket alone (`subscription.closed` of a request that
    /// was already terminal).
    Event(EventName, Map<String, Value>),
}

pub async fn answer(socket: SocketRef, session: Arc<Session>, node: Arc<Node>, frame: Value) {
    for reply in handle(&socket, &session, &node, frame).await {
        let sent = match &reply {
            Reply::Message(m) => socket.emit("message", m),
            Reply::Event(name, payload) => socket.emit(name.as_str(), payload),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not answer an action");
        }
    }
}

async fn handle(socket: &SocketRef, session: &Session, node: &Node, frame: Value) -> Vec<Reply> {
    let action = match Action::parse(&frame) {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(code = %e.code, message = %e.message, "refused an action");
            return vec![Reply::Message(e.into())];
        }
    };
    match action {
        Action::Ping { timestamp } => vec![Reply::Message(SystemMessage::Pong {
            timestamp: now_ms(),
            received_timestamp: timestamp,
        })],
        Action::Subscribe(req) => subscribe(socket, session, node, req).await,
        Action::Unsubscribe(req) => vec![unsubscribe(socket, session, node, req)],
    }
}

fn error(code: ErrorCode, message: impl Into<String>, channel: Channel, action: &str) -> Reply {
    Reply::Message(SystemMessage::error(
        code,
        message,
        ErrorMeta::for_action(channel, action),
    ))
}

/// A channel this node does not serve is `unsupported_channel` for this connection.
fn enabled(node: &Node, channel: Channel) -> bool {
    node.config.channels.contains(&channel)
}

async fn subscribe(
    socket: &SocketRef,
    session: &Session,
    node: &Node,
    req: SubscriptionRequest,
) -> Vec<Reply> {
    const ACTION: &str = "subscribe";
    let channel = req.channel();
    let project_id = session.project_id();
    if !enabled(node, channel) {
        return vec![error(
            ErrorCode::UnsupportedChannel,
            format!("channel {channel} is not enabled"),
            channel,
            ACTION,
        )];
    }
    if !permitted(node, &session.identity.claims.permissions, channel) {
        return vec![error(
            ErrorCode::Forbidden,
            format!("the token lacks the permission for {channel}"),
            channel,
            ACTION,
        )];
    }
    let ack = SubscriptionAck::new(project_id, &req);
    let room = rooms::for_key(project_id, &req.key);
    match session.admission(&room, node.config.max_subscriptions) {
        Admission::AlreadyHeld => return vec![Reply::Message(SystemMessage::Subscribed(ack))],
        Admission::LimitReached(message) => {
            return vec![error(
                ErrorCode::SubscriptionFailed,
                message,
                channel,
                ACTION,
            )];
        }
        Admission::Open => {}
    }

    let known = match lookup(node, &req.key).await {
        Ok(known) => known,
        Err(e) => {
            tracing::warn!(error = %e, "registry lookup failed");
            return vec![error(
                ErrorCode::SubscriptionFailed,
                REGISTRY_UNAVAILABLE,
                channel,
                ACTION,
            )];
        }
    };
    if let Some((_, record)) = &known
        && record.project_id != project_id
    {
        return vec![error(
            ErrorCode::Forbidden,
            "the payment request belongs to another project",
            channel,
            ACTION,
        )];
    }

    let Ok(lease) = session.lease_if_needed(node).await else {
        return vec![error(
            ErrorCode::SubscriptionFailed,
            LEASE_UNAVAILABLE,
            channel,
            ACTION,
        )];
    };
    if !session.join(socket, room.clone(), lease) {
        return vec![];
    }
    tracing::debug!(%room, "subscribed");
    let mut replies = vec![Reply::Message(SystemMessage::Subscribed(ack))];

    if let Some((id, record)) = known.filter(|(_, r)| r.status.is_terminal()) {
        session.leave(socket, &room);
        replies.push(Reply::Event(
            EventName::SubscriptionClosed,
            subscription_closed(project_id, id, &record),
        ));
    }
    replies
}

fn unsubscribe(
    socket: &SocketRef,
    session: &Session,
    node: &Node,
    req: SubscriptionRequest,
) -> Reply {
    let channel = req.channel();
    if !enabled(node, channel) {
        return error(
            ErrorCode::UnsupportedChannel,
            format!("channel {channel} is not enabled"),
            channel,
            "unsubscribe",
        );
    }
    session.leave(socket, &rooms::for_key(session.project_id(), &req.key));
    Reply::Message(SystemMessage::Unsubscribed(SubscriptionAck::new(
        session.project_id(),
        &req,
    )))
}

/// What the registry knows of the payment request a key names: its id and record.
async fn lookup(
    node: &Node,
    key: &SubscriptionKey,
) -> Result<Option<(Uuid, PaymentRequestRecord)>, EngineError> {
    let id = match key {
        SubscriptionKey::Targets | SubscriptionKey::PaymentMethods => return Ok(None),
        SubscriptionKey::PaymentRequest(id) => *id,
        SubscriptionKey::ProviderPayment(pp) => match node.engine.provider_payment(pp).await? {
            Some(record) => record.payment_request_id,
            None => return Ok(None),
        },
    };
    Ok(node.engine.payment_request(id).await?.map(|r| (id, r)))
}

/// The `subscription.closed` payload for a request the registry knows as terminal.
fn subscription_closed(
    project_id: Uuid,
    id: Uuid,
    record: &PaymentRequestRecord,
) -> Map<String, Value> {
    let body = json!({
        "channel": Channel::PaymentRequests.as_str(),
        "project_id": project_id,
        "payment_request_id": id,
        "provider_payment_id": record.provider_payment_id,
        "status": record.status,
        "event_id": Uuid::new_v4(),
        "emitted_at": now_ms(),
    });
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
