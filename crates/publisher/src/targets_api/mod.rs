//! The targets REST service (CONTRACT §6, seed 001): manage a project's bot targets, and publish
//! the one live event each stored change derives (CONTRACT §4).
//!
//! - `GET    /v2/projects/{project_id}/targets?limit=50&offset=0`: list (sorted by name, then id;
//!   `limit` 1–200, default 50; `total` = every target of the project)
//! - `POST   /v2/projects/{project_id}/targets`: create (201; `target_id` optional) → `target.added`
//! - `PATCH  /v2/projects/{project_id}/targets`: bulk update, an array of
//!   `{target_id, is_enabled?, target_name?}`, at most 100, all or nothing → one event per changed
//!   target
//! - `GET    /v2/projects/{project_id}/targets/{target_id}`: one target
//! - `PATCH  /v2/projects/{project_id}/targets/{target_id}`: partial update of `target_name`,
//!   `is_enabled`, `kind`, `external_id`, `parent_target_id`, `plan_count`, `participant_count`
//!   → `target.enabled`/`target.disabled` if `is_enabled` flipped, else `target.updated` if
//!   anything changed, else nothing
//! - `DELETE /v2/projects/{project_id}/targets/{target_id}`: 204 → `target.removed`
//!
//! Every answer is an envelope ([`envelope`]); failures map to statuses in [`api_error`].
//! Credentials are checked in [`auth`], bodies in [`model`]; targets live in a [`store`]
//! (in memory, or one Redis hash per project) and events leave through any
//! [`crate::Publisher`].
//!
//! # Ordering
//! Changes to one project are serialized in this process (a per-project lock held from the
//! read to the publish), so its events leave in the order the changes were stored. Several
//! processes sharing one Redis never lose an update (the store's compare-and-set), but two of
//! them changing the same target at the same moment may publish in either order; clients
//! reconcile with a REST fetch after a reconnect (seed 000).
//!
//! A change that is stored but whose event cannot be published still answers 2xx (the change
//! stands), with a `message` saying so; the failure is logged.

pub mod api_error;
pub mod auth;
pub mod config;
pub mod envelope;
pub mod model;
pub mod routes;
pub mod server;
pub mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

pub use auth::{ApiKeys, Authenticator, RedisRevocations, RevocationCheck};
pub use routes::router;
pub use store::{MemoryStore, RedisStore, TargetStore};

/// Largest request body accepted, in bytes (a full bulk PATCH is far below it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The service: where targets are stored, how events leave, who may call.
pub struct TargetsApi<S, P> {
    store: S,
    publisher: P,
    auth: Authenticator,
    locks: ProjectLocks,
}

impl<S, P> TargetsApi<S, P> {
    pub fn new(store: S, publisher: P, auth: Authenticator) -> Self {
        TargetsApi {
            store,
            publisher,
            auth,
            locks: ProjectLocks::default(),
        }
    }
}

/// One async lock per project, so that a project's changes are stored and published in order.
#[derive(Default)]
struct ProjectLocks {
    locks: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

/// Past this many idle entries, unused locks are dropped on the next acquisition.
const IDLE_LOCKS_KEPT: usize = 1024;

impl ProjectLocks {
    async fn lock(&self, project: Uuid) -> OwnedMutexGuard<()> {
        let lock = {
            // Only map operations happen under this lock; a poisoned one is still consistent.
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > IDLE_LOCKS_KEPT {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(project).or_default().clone()
        };
        lock.lock_owned().await
    }
}
