//! One socket's life on this node: the handshake's success (`ready`), its actions, its
//! subscriptions and its idleness.
//!
//! Handlers are registered synchronously inside the connect handler, so no frame sent right
//! after the CONNECT can slip past them. The `message` handler does no work itself: it stamps the
//! idle clock and queues the frame ([`queue`]); a task, started when the queue stops being
//! empty and ended when it is empty again, answers every action in the order it was sent
//! ([`actions`]).

pub mod actions;
pub mod idle;
pub mod queue;
pub mod subscriptions;

use std::future::{Future, Ready, ready};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use livegate_protocol::{Channel, SystemMessage};
use serde_json::Value;
use socketioxide::extract::{Extension, SocketRef, State, TryData};
use socketioxide::socket::DisconnectReason;
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::Identity;
use crate::engine::{EngineError, ProjectLease};
use crate::metrics::Metrics;
use crate::node::{Node, monotonic_ms};
use crate::rooms;
use queue::{ActionQueue, Pushed};
use subscriptions::Subscriptions;

/// Frames one socket may have waiting to be answered: room for a reconnecting client to
/// pipeline a subscribe for every subscription it may hold, twice over. Past it, it is flooding.
pub fn action_queue_capacity(max_subscriptions: usize) -> usize {
    max_subscriptions.saturating_mul(2).saturating_add(64)
}

/// What [`Session::admission`] says of a subscribe.
pub enum Admission {
    /// Held already: acknowledge it again, change nothing.
    AlreadyHeld,
    /// Refused with `subscription_failed` and this message.
    LimitReached(String),
    Open,
}

/// The message of a `subscription_failed` when the registry cannot be read.
pub const REGISTRY_UNAVAILABLE: &str = "the registry is unavailable; retry later";
/// The message of a `subscription_failed` when the node cannot receive the project's events.
pub const LEASE_UNAVAILABLE: &str = "cannot receive this project's events right now; retry later";

/// The state of one connected socket, kept in its extensions.
pub struct Session {
    pub connection_id: Uuid,
    pub identity: Identity,
    last_activity_ms: AtomicU64,
    subscriptions: Mutex<Subscriptions>,
    actions: ActionQueue,
    pub span: tracing::Span,
}

impl Session {
    pub fn project_id(&self) -> Uuid {
        self.identity.project_id
    }

    /// Any client packet resets the idle clock.
    pub fn touch(&self) {
        self.last_activity_ms
            .store(monotonic_ms(), Ordering::Relaxed);
    }

    pub fn idle_for_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_activity_ms.load(Ordering::Relaxed))
    }

    pub fn subscriptions(&self) -> MutexGuard<'_, Subscriptions> {
        // Every critical section is a few map operations with no await and no panic path, so a
        // poisoned lock still guards consistent data.
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a subscribe to `room` may go on: the one rule both namespaces apply before any
    /// lookup (an already held subscription is acknowledged again; past `limit`, refused).
    pub fn admission(&self, room: &str, limit: usize) -> Admission {
        let subs = self.subscriptions();
        if subs.contains(room) {
            Admission::AlreadyHeld
        } else if subs.len() >= limit {
            Admission::LimitReached(format!(
                "subscription limit reached: a connection may hold at most {limit} subscriptions"
            ))
        } else {
            Admission::Open
        }
    }

    /// The project lease a new subscription needs: `None` when the socket holds one already,
    /// else a fresh one, acquired once this node receives the project's publications.
    pub async fn lease_if_needed(&self, node: &Node) -> Result<Option<ProjectLease>, EngineError> {
        if self.subscriptions().has_lease() {
            return Ok(None);
        }
        let lease = ProjectLease::acquire(node.engine.clone(), self.project_id()).await;
        if let Err(e) = &lease {
            tracing::warn!(error = %e, "cannot receive the project's publications");
        }
        lease.map(Some)
    }

    /// Records a subscription and joins its room; `false` once the socket is gone.
    pub fn join(&self, socket: &SocketRef, room: String, lease: Option<ProjectLease>) -> bool {
        if !self.subscriptions().insert(room.clone(), lease) {
            return false;
        }
        socket.join(room);
        true
    }

    /// Ends a subscription, if held, and leaves its room.
    pub fn leave(&self, socket: &SocketRef, room: &str) {
        if self.subscriptions().remove(room) {
            socket.leave(room.to_owned());
        }
    }

    /// The socket is gone: drop its pending actions and every subscription.
    fn close(&self) {
        self.actions.close();
        self.subscriptions().close();
    }
}

/// Whether the token's permissions allow a channel under the node's configuration.
pub fn permitted(node: &Node, permissions: &[String], channel: Channel) -> bool {
    match node.config.channel_permissions.get(&channel) {
        None => true,
        Some(required) => permissions.iter().any(|p| p == required || p == "all"),
    }
}

/// The connect handler of `/v2/live-updates`: runs once the middleware accepted the handshake.
pub fn on_connect(
    socket: SocketRef,
    State(node): State<Arc<Node>>,
    Extension(identity): Extension<Identity>,
) -> Ready<()> {
    let channels = node
        .config
        .channels
        .iter()
        .copied()
        .filter(|c| permitted(&node, &identity.claims.permissions, *c))
        .collect::<Vec<_>>();
    start(
        socket,
        node,
        identity,
        move |connection_id| SystemMessage::Ready {
            connection_id,
            channels,
        },
        actions::answer,
    )
}

/// Opens a session on an accepted socket, for any namespace: registers the handlers, joins the
/// session room and sends the namespace's `ready`. `answer` answers one action frame; frames are
/// answered one at a time, in order.
pub fn start<R, A, Fut>(
    socket: SocketRef,
    node: Arc<Node>,
    identity: Identity,
    ready_message: impl FnOnce(Uuid) -> R,
    answer: A,
) -> Ready<()>
where
    R: serde::Serialize,
    A: Fn(SocketRef, Arc<Session>, Arc<Node>, Value) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let connection_id = Uuid::new_v4();
    let span = tracing::info_span!(
        "socket",
        connection_id = %connection_id,
        project_id = %identity.project_id,
        user_id = %identity.claims.sub,
        ns = %socket.ns(),
    );
    let session = Arc::new(Session {
        connection_id,
        identity,
        last_activity_ms: AtomicU64::new(monotonic_ms()),
        subscriptions: Mutex::new(Subscriptions::new(node.members.clone())),
        actions: ActionQueue::new(action_queue_capacity(node.config.max_subscriptions)),
        span: span.clone(),
    });
    socket.extensions.insert(session.clone());
    socket.join(rooms::for_session(&session.identity.claims.sid));

    let on_message = session.clone();
    let message_node = node.clone();
    socket.on(
        "message",
        move |socket: SocketRef, TryData(frame): TryData<Value>| {
            on_message.touch();
            match on_message.actions.push(frame.unwrap_or(Value::Null)) {
                Pushed::StartWorker => {
                    let span = on_message.span.clone();
                    let answering = answer_actions(
                        socket,
                        on_message.clone(),
                        message_node.clone(),
                        answer.clone(),
                    );
                    tokio::spawn(answering.instrument(span));
                }
                Pushed::Full => {
                    let _enter = on_message.span.enter();
                    tracing::warn!("action queue full: disconnecting a flooding client");
                    let _ = socket.disconnect();
                }
                Pushed::Queued | Pushed::Closed => {}
            }
            ready(())
        },
    );
    let on_other = session.clone();
    socket.on_fallback(move |_: SocketRef| {
        on_other.touch();
        ready(())
    });
    let on_close = session.clone();
    let metrics = node.metrics.clone();
    socket.on_disconnect(move |reason: DisconnectReason| {
        on_close.close();
        let _enter = on_close.span.enter();
        if matches!(reason, DisconnectReason::HeartbeatTimeout) {
            // A full outbound queue at ping time is reported as a heartbeat timeout.
            Metrics::inc(&metrics.slow_consumer_disconnects, 1);
            tracing::warn!(
                ?reason,
                "disconnected: no pong, or outbound queue full (slow consumer)"
            );
        } else {
            tracing::info!(?reason, "disconnected");
        }
        ready(())
    });

    {
        let _enter = span.enter();
        tracing::info!(sid = %session.identity.claims.sid, "connected");
    }
    if let Err(e) = socket.emit("message", &ready_message(connection_id)) {
        let _enter = span.enter();
        tracing::debug!(error = %e, "could not send ready");
    }
    ready(())
}

/// Answers the socket's queued frames in order, and ends when none is left.
async fn answer_actions<A, Fut>(
    socket: SocketRef,
    session: Arc<Session>,
    node: Arc<Node>,
    answer: A,
) where
    A: Fn(SocketRef, Arc<Session>, Arc<Node>, Value) -> Fut,
    Fut: Future<Output = ()>,
{
    while let Some(frame) = session.actions.next() {
        answer(socket.clone(), session.clone(), node.clone(), frame).await;
    }
}
