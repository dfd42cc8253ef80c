//! livegate-gateway: a stateless Socket.IO node that delivers live updates.
//!
//! A client connects to the `/v2/live-updates` namespace with a user JWT and a project id
//! ([`auth`]), receives `ready`, and subscribes to channels ([`session`]). Publishers publish
//! into the [`engine`] (over HTTP here, or through Redis); the engine hands every publication
//! for a project this node holds to the [`delivery`] task, which emits it to the matching,
//! always project-scoped, rooms ([`rooms`]) of local sockets, once per socket.
//!
//! # Where to look
//! - [`config`]: every flag and `LIVEGATE_*` variable, validated at startup; [`config_file`] the TOML file under them.
//! - [`server`]: how the pieces are wired, and the shutdown order; [`drain`] the graceful drain.
//! - [`auth`]: handshake checks and their `connect_error` codes; `livegate-auth` for JWTs.
//! - [`session`]: `ready`, actions answered in order, subscriptions, the idle sweeper.
//! - [`engine`]: the engine contract; [`engine::embedded`] the in-process engine.
//! - [`delivery`]: publication → rooms → sockets; `subscription.closed`; revocations;
//!   [`room_members`] the sockets each room holds.
//! - [`chat`]: the `/chat` namespace (seed 002) on the same machinery.
//! - [`http`]: `/healthz`, `/readyz`, `POST /api/v1/publish`, `POST /api/v1/revoke`.

pub mod auth;
pub mod chat;
pub mod config;
pub mod config_file;
pub mod delivery;
pub mod dev_token;
pub mod drain;
pub mod engine;
pub mod http;
pub mod metrics;
pub mod node;
pub mod room_members;
pub mod rooms;
pub mod server;
pub mod session;
pub mod telemetry;

pub use server::run;
