//! The targets REST API served in-process (`LIVEGATE_TARGETS_API`, on by default with `--dev` on
//! the embedded engine): `livegate_publisher::targets_api` with an in-memory store, this node's
//! engine as its publisher, and the node's own token verifier and revocations. So `make run`
//! alone gives Socket.IO and REST, and a PATCH reaches connected clients at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use livegate_publisher::targets_api::{
    ApiKeys, Authenticator, MemoryStore, RevocationCheck, TargetsApi, router as targets_router,
};

use crate::engine::Engine;
use crate::engine::publisher::EnginePublisher;
use crate::node::Node;

/// The targets API's routes, or none when it is off.
pub fn router(node: &Arc<Node>) -> Router {
    let Some(keys) = &node.config.targets_api else {
        return Router::new();
    };
    let auth = Authenticator::new(Some(node.config.verifier.clone()), ApiKeys::clone(keys))
        .with_revocations(EngineRevocations(node.engine.clone()));
    let api = TargetsApi::new(
        MemoryStore::default(),
        EnginePublisher::new(node.engine.clone()),
        auth,
    );
    targets_router(api)
}

/// Revocations as the engine knows them (the same check as the handshake's).
struct EngineRevocations(Arc<dyn Engine>);

impl RevocationCheck for EngineRevocations {
    fn is_revoked<'a>(
        &'a self,
        sid: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .is_session_revoked(sid)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
