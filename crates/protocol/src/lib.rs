//! The livegate wire model: everything that crosses the wire, and nothing that does I/O.
//!
//! Clients speak [`Action`]s to the gateway and hear [`SystemMessage`]s and broadcast events
//! back; publishers send [`Publication`]s that the gateway validates before any socket sees them.
//! The gateway and the publisher crate both build on these types, so a shape is defined once.
//!
//! # Layout
//! - [`channel`]: the three channels and their subscription keys.
//! - [`action`]: parsing a client frame into an [`Action`], with the documented errors.
//! - [`message`]: system messages (`ready`, `subscribed`, `unsubscribed`, `pong`, `error`).
//! - [`error_code`]: the wire error codes, of actions and of handshakes.
//! - [`event`]: broadcast event names and the channel each belongs to.
//! - [`publication`]: a publisher's JSON object, validated per event, and where it is routed.
//! - [`payment_method`]: the allow-list a `payment_method` is reduced to.
//! - [`payment_request`]: statuses, terminality and the registry records.
//! - [`target`]: target snapshots and the one event a change derives.
//! - [`redis_names`]: every Redis key and channel name, in one place.
//! - [`chat`]: the `/chat` namespace's events, topics, actions and publications (seed 002).
//! - [`any_publication`]: a bus message, live-updates or chat, told apart by its `event`.

pub mod action;
pub mod any_publication;
pub mod channel;
pub mod chat;
pub mod error_code;
pub mod event;
pub mod field_error;
pub mod message;
pub mod payment_method;
pub mod payment_request;
pub mod publication;
pub mod redis_names;
pub mod target;

pub use action::{Action, ActionError, SubscriptionRequest};
pub use any_publication::AnyPublication;
pub use channel::{Channel, SubscriptionKey};
pub use error_code::{ConnectErrorCode, ErrorCode};
pub use event::EventName;
pub use field_error::FieldError;
pub use message::{ErrorMeta, SystemMessage};
pub use publication::{Publication, Route};
pub use redis_names::RedisNames;

/// The Socket.IO namespace clients connect to.
pub const NAMESPACE: &str = "/v2/live-updates";
/// The Socket.IO (Engine.IO) request path.
pub const SOCKET_IO_PATH: &str = "/v2/live-updates/socket.io";
/// The largest inbound packet, in bytes, on any transport (the CONNECT packet included).
pub const INBOUND_PACKET_CAP: usize = 4096;
/// The longest `provider_payment_id` a client may subscribe by.
pub const MAX_PROVIDER_PAYMENT_ID_LEN: usize = 255;
