//! Chat publications to `/chat` sockets: one emit per topic room (the moderation events go to
//! the channel with `user_id` and to the user without it), the sender of a `typing` left out;
//! then a ban or kick ends that user's channel subscription and `channel_deleted` ends all.

use std::sync::Arc;

use livegate_protocol::chat::{
    CHAT_NAMESPACE, ChatEvent, ChatPublication, ChatTopic, iso_timestamp,
};
use socketioxide::SocketIo;
use uuid::Uuid;

use crate::node::{Node, now_ms};
use crate::rooms;
use crate::session::Session;

/// Emits a chat publication; `true` when some socket of this node received it.
pub async fn deliver(io: &SocketIo, _node: &Node, p: ChatPublication) -> bool {
    let Some(ns) = io.of(CHAT_NAMESPACE) else {
        return false;
    };
    let event_id = p
        .event_id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().to_string());
    let timestamp = iso_timestamp(now_ms());
    let origin = p
        .origin_connection
        .as_deref()
        .and_then(|c| Uuid::parse_str(c).ok())
        .map(rooms::for_connection);
    let mut delivered = false;
    for (topic, data) in p.deliveries() {
        let room = rooms::for_chat_topic(p.project_id, &topic);
        let mut target = ns.clone().local().to(room);
        if let Some(origin) = &origin {
            target = target.except(origin.clone());
        }
        if target.clone().sockets().is_empty() {
            continue;
        }
        delivered = true;
        let payload = p.envelope(data, timestamp.clone(), &event_id);
        if let Err(e) = target.emit(p.event.as_str(), &payload).await {
            tracing::warn!(event = %p.event, %event_id, error = %e, "some chat sockets missed an event");
        }
    }
    let channel_room = rooms::for_chat_topic(p.project_id, &ChatTopic::Channel(p.channel_id));
    let leaving = match p.event {
        ChatEvent::UserBanned | ChatEvent::UserKicked => p.user_id.clone(),
        ChatEvent::ChannelDeleted => Some(String::new()),
        _ => None,
    };
    if let Some(user) = leaving {
        for socket in ns.clone().local().to(channel_room.clone()).sockets() {
            let Some(session) = socket.extensions.get::<Arc<Session>>() else {
                continue;
            };
            if !user.is_empty() && session.identity.claims.sub != user {
                continue;
            }
            session.leave(&socket, &channel_room);
        }
    }
    delivered
}
