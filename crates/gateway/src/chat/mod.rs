//! The `/chat` namespace (seed 002, `docs/chat.md`): the same nodes, engines, handshake and
//! session machinery as live updates, with its own topics (`global`, `channel:{id}`,
//! `user:{id}`), membership-based authorization, client `typing` and the `{type, timestamp,
//! data}` envelope.
//!
//! - [`actions`]: the chat actions (subscribe, unsubscribe, ping, typing).
//! - [`delivery`]: chat publication → topic rooms, moderation dual delivery, subscription ends.

pub mod actions;
pub mod delivery;

use std::future::Ready;
use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::{Extension, SocketRef, State};

use crate::auth::Identity;
use crate::node::Node;
use crate::{rooms, session};

/// The connect handler of `/chat`.
pub fn on_connect(
    socket: SocketRef,
    State(node): State<Arc<Node>>,
    Extension(identity): Extension<Identity>,
) -> Ready<()> {
    let own = format!("user:{}", identity.claims.sub);
    let typing = Arc::new(actions::TypingBucket::default());
    let this_socket = socket.clone();
    let started = session::start(
        socket,
        node,
        identity,
        move |connection_id| -> Value {
            json!({
                "event": "ready",
                "connection_id": connection_id,
                "channels": ["global", "channel:{channel_id}", own],
            })
        },
        move |socket, session, node, frame| {
            actions::answer(socket, session, node, typing.clone(), frame)
        },
    );
    // Its own room, so the sender of a `typing` can be left out of its broadcast.
    if let Some(session) = this_socket.extensions.get::<Arc<session::Session>>() {
        this_socket.join(rooms::for_connection(session.connection_id));
    }
    started
}
