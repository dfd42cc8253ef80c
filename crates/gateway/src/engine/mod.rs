//! The engine contract: how publications reach this node, and where the registries and
//! revocations live. The session and delivery code only ever talk to [`Engine`].
//!
//! # Contract
//! - **Publish in.** [`Engine::publish`] takes a validated publication and makes it reach every
//!   node that holds sockets of its project, this one included. A `payment-request.updated`
//!   or `subscription.closed` updates the payment-request registry *before* it is published, so a
//!   subscriber that reads the registry after the event never sees an older state.
//! - **Publish returns** once the publication is on its way to every node; on the embedded
//!   engine, once this node has emitted it (a `202` then means "delivered to the sockets
//!   subscribed now").
//! - **Deliveries out.** Publications for projects this node has acquired, and session
//!   revocations, come out of the [`Deliveries`] receiver handed over at construction, in the order
//!   the engine received them. Delivery is at most once: a publication that arrives while a node
//!   is not subscribed is not replayed.
//! - **Project interest.** [`Engine::acquire_project`] resolves only once publications of the
//!   project flow to this node (so nothing published after `subscribed` is missed); each success
//!   is paired with one [`Engine::release_project`]. [`ProjectLease`] does the pairing.
//! - **Chat membership** (`/chat`) is kept from `member_joined`, `member_left`, `user_kicked`,
//!   `user_banned` and `channel_deleted` publications, like the payment-request registry.
//! - **Registries and revocations** are read with a short timeout; an error means "cannot tell
//!   now", and callers fail closed (`unavailable`, `subscription_failed`).

pub mod embedded;
pub mod publisher;
pub mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use livegate_protocol::AnyPublication;
use livegate_protocol::payment_request::{PaymentRequestRecord, ProviderPaymentRecord};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// What an engine hands to the node's delivery task.
#[derive(Debug)]
pub enum Delivery {
    /// A validated publication for a project this node holds sockets of. `delivered`, when set,
    /// is told once the node has emitted it to its sockets. `received` is when this node got it
    /// (publications carry no timestamp): the start of the publish→emit latency metric.
    Publication {
        publication: Box<AnyPublication>,
        delivered: Option<oneshot::Sender<()>>,
        received: std::time::Instant,
    },
    /// Every socket of this session, on every node, is told and disconnected.
    SessionRevoked { sid: String, reason: String },
}

/// The receiving end of an engine's deliveries.
pub type Deliveries = mpsc::Receiver<Delivery>;

/// How many deliveries may wait for the delivery task before publishers feel back-pressure.
pub const DELIVERY_QUEUE: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// Publishes to every node (registries first, see the contract above).
    async fn publish(&self, publication: AnyPublication) -> Result<(), EngineError>;

    /// Starts receiving the project's publications; resolves once they flow.
    async fn acquire_project(&self, project_id: Uuid) -> Result<(), EngineError>;

    /// Pairs one successful [`Engine::acquire_project`].
    fn release_project(&self, project_id: Uuid);

    async fn payment_request(&self, id: Uuid) -> Result<Option<PaymentRequestRecord>, EngineError>;

    async fn provider_payment(
        &self,
        id: &str,
    ) -> Result<Option<ProviderPaymentRecord>, EngineError>;

    async fn is_session_revoked(&self, sid: &str) -> Result<bool, EngineError>;

    /// Whether a user belongs to a chat channel of a project (the membership registry).
    async fn is_chat_member(
        &self,
        project_id: Uuid,
        channel_id: Uuid,
        user_id: &str,
    ) -> Result<bool, EngineError>;

    /// Marks the session revoked for `ttl` and tells every node to disconnect its sockets.
    async fn revoke_session(
        &self,
        sid: &str,
        reason: &str,
        ttl: Duration,
    ) -> Result<(), EngineError>;

    /// Whether the node can do its job now (`/readyz`).
    fn is_ready(&self) -> bool;
}

/// Holds one acquisition of a project; releases it when dropped.
pub struct ProjectLease {
    engine: Arc<dyn Engine>,
    project_id: Uuid,
}

impl ProjectLease {
    pub async fn acquire(engine: Arc<dyn Engine>, project_id: Uuid) -> Result<Self, EngineError> {
        engine.acquire_project(project_id).await?;
        Ok(ProjectLease { engine, project_id })
    }
}

impl Drop for ProjectLease {
    fn drop(&mut self) {
        self.engine.release_project(self.project_id);
    }
}

impl std::fmt::Debug for ProjectLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProjectLease")
            .field(&self.project_id)
            .finish()
    }
}
