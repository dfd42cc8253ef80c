//! The answer to one chat action of a `/chat` socket (`subscribe`/`unsubscribe`/`ping`, answered
//! in order as in [`crate::session`]), and turns a member's `typing` into a `user_typing`
//! publication for the channel's other subscribers. Errors use the live-updates codes and `meta`
//! rules.
//!
//! Typing is rate-limited per socket: a bucket of [`TYPING_BURST`] refilled at
//! [`TYPING_PER_SECOND`]; extra typing actions are dropped silently (they are ephemeral).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use livegate_protocol::chat::{ChatAction, ChatEvent, ChatPublication, ChatTopic};
use livegate_protocol::{AnyPublication, ErrorCode, ErrorMeta, SystemMessage};
use serde_json::{Map, Value, json};
use socketioxide::extract::SocketRef;
use uuid::Uuid;

use crate::engine::EngineError;
use crate::node::{Node, now_ms};
use crate::rooms;
use crate::session::{Admission, LEASE_UNAVAILABLE, REGISTRY_UNAVAILABLE, Session};

/// Typing actions a socket may send at once.
pub const TYPING_BURST: f64 = 2.0;
/// Typing actions a socket may send per second, sustained.
pub const TYPING_PER_SECOND: f64 = 2.0;

/// A token bucket for one socket's typing actions.
#[derive(Debug)]
pub struct TypingBucket(Mutex<Bucket>);

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Default for TypingBucket {
    fn default() -> Self {
        TypingBucket(Mutex::new(Bucket {
            tokens: TYPING_BURST,
            refilled: Instant::now(),
        }))
    }
}

impl TypingBucket {
    fn take(&self) -> bool {
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed = now.duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * TYPING_PER_SECOND).min(TYPING_BURST);
        b.refilled = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub async fn answer(
    socket: SocketRef,
    session: Arc<Session>,
    node: Arc<Node>,
    typing: Arc<TypingBucket>,
    frame: Value,
) {
    let Some(reply) = handle(&socket, &session, &node, &typing, frame).await else {
        return;
    };
    if let Err(e) = socket.emit("message", &reply) {
        tracing::debug!(error = %e, "could not answer an action");
    }
}

fn error(code: ErrorCode, message: impl Into<String>, channel: &str, action: &str) -> Value {
    json!(SystemMessage::error(
        code,
        message,
        ErrorMeta {
            channel: Some(channel.to_owned()),
            action: Some(action.to_owned()),
            errors: None,
        },
    ))
}

fn ack(event: &str, channel: &str, project_id: Uuid) -> Value {
    json!({"event": event, "channel": channel, "project_id": project_id})
}

async fn handle(
    socket: &SocketRef,
    session: &Session,
    node: &Node,
    typing: &TypingBucket,
    frame: Value,
) -> Option<Value> {
    let action = match ChatAction::parse(&frame) {
        Ok(a) => a,
        Err(e) => return Some(json!(SystemMessage::from(e))),
    };
    match action {
        ChatAction::Ping { timestamp } => Some(json!(SystemMessage::Pong {
            timestamp: now_ms(),
            received_timestamp: timestamp,
        })),
        ChatAction::Subscribe { topic, channel } => {
            Some(subscribe(socket, session, node, topic, &channel).await)
        }
        ChatAction::Unsubscribe { topic, channel } => {
            session.leave(socket, &rooms::for_chat_topic(session.project_id(), &topic));
            Some(ack("unsubscribed", &channel, session.project_id()))
        }
        ChatAction::Typing {
            channel_id,
            is_typing,
        } => typing_action(session, node, typing, channel_id, is_typing).await,
    }
}

/// Whether the socket's user may hear a topic.
async fn authorized(
    session: &Session,
    node: &Node,
    topic: &ChatTopic,
) -> Result<bool, EngineError> {
    match topic {
        ChatTopic::Global => Ok(true),
        ChatTopic::User(user) => Ok(*user == session.identity.claims.sub),
        ChatTopic::Channel(id) => {
            node.engine
                .is_chat_member(session.project_id(), *id, &session.identity.claims.sub)
                .await
        }
    }
}

async fn subscribe(
    socket: &SocketRef,
    session: &Session,
    node: &Node,
    topic: ChatTopic,
    channel: &str,
) -> Value {
    const ACTION: &str = "subscribe";
    let project_id = session.project_id();
    let room = rooms::for_chat_topic(project_id, &topic);
    match session.admission(&room, node.config.max_subscriptions) {
        Admission::AlreadyHeld => return ack("subscribed", channel, project_id),
        Admission::LimitReached(message) => {
            return error(ErrorCode::SubscriptionFailed, message, channel, ACTION);
        }
        Admission::Open => {}
    }
    match authorized(session, node, &topic).await {
        Ok(true) => {}
        Ok(false) => {
            return error(
                ErrorCode::Forbidden,
                format!("{channel} is not yours to hear"),
                channel,
                ACTION,
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "membership lookup failed");
            return error(
                ErrorCode::SubscriptionFailed,
                REGISTRY_UNAVAILABLE,
                channel,
                ACTION,
            );
        }
    }
    let Ok(lease) = session.lease_if_needed(node).await else {
        return error(
            ErrorCode::SubscriptionFailed,
            LEASE_UNAVAILABLE,
            channel,
            ACTION,
        );
    };
    session.join(socket, room, lease);
    ack("subscribed", channel, project_id)
}

async fn typing_action(
    session: &Session,
    node: &Node,
    bucket: &TypingBucket,
    channel_id: Uuid,
    is_typing: bool,
) -> Option<Value> {
    let channel = ChatTopic::Channel(channel_id).name();
    let claims = &session.identity.claims;
    match node
        .engine
        .is_chat_member(session.project_id(), channel_id, &claims.sub)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return Some(error(
                ErrorCode::Forbidden,
                "only members of the channel may type in it",
                &channel,
                "typing",
            ));
        }
        Err(e) => {
            tracing::warn!(error = %e, "membership lookup failed: typing dropped");
            return None;
        }
    }
    if !bucket.take() {
        tracing::debug!("typing rate limit: dropped");
        return None;
    }
    let mut data = Map::new();
    data.insert("channel_id".into(), json!(channel_id));
    data.insert("user_id".into(), json!(claims.sub));
    data.insert(
        "username".into(),
        json!(claims.name.clone().unwrap_or_else(|| claims.sub.clone())),
    );
    data.insert("is_typing".into(), json!(is_typing));
    let publication = ChatPublication {
        event: ChatEvent::UserTyping,
        project_id: session.project_id(),
        event_id: Some(Uuid::new_v4().to_string()),
        data,
        channel_id,
        user_id: Some(claims.sub.clone()),
        origin_connection: Some(session.connection_id.to_string()),
    };
    if let Err(e) = node.engine.publish(AnyPublication::Chat(publication)).await {
        tracing::warn!(error = %e, "typing could not be published");
    }
    None
}
