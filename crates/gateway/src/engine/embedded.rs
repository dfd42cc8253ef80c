//! The embedded engine: one node, no external service. Publications go straight to this node's
//! delivery task; registries and revocations live in memory and die with the process.
//!
//! The registries are written from the publications themselves (what the publisher library does
//! against Redis), so `POST /api/v1/publish` is all a publisher needs. Entries are never evicted:
//! this engine is for development and single-node setups, not for millions of requests.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use livegate_protocol::chat::{ChatEvent, ChatPublication};
use livegate_protocol::payment_request::{PaymentRequestRecord, ProviderPaymentRecord};
use livegate_protocol::{AnyPublication, Publication, Route};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{DELIVERY_QUEUE, Deliveries, Delivery, Engine, EngineError};

pub struct EmbeddedEngine {
    deliveries: mpsc::Sender<Delivery>,
    registry: RwLock<Registry>,
}

#[derive(Default)]
struct Registry {
    payment_requests: HashMap<Uuid, PaymentRequestRecord>,
    provider_payments: HashMap<String, ProviderPaymentRecord>,
    /// sid → when the revocation lapses.
    revoked: HashMap<String, Instant>,
    /// (project, chat channel) → member user ids.
    chat_members: HashMap<(Uuid, Uuid), HashSet<String>>,
}

impl EmbeddedEngine {
    pub fn new() -> (Self, Deliveries) {
        let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
        let engine = EmbeddedEngine {
            deliveries: tx,
            registry: RwLock::new(Registry::default()),
        };
        (engine, rx)
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the maps half-written (each write is one
        // insert), so a poisoned lock is still consistent.
        self.registry.read().unwrap_or_else(|p| p.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.registry.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The chat membership a publication implies (what the publisher library keeps in Redis).
    fn record_membership(&self, p: &ChatPublication) {
        let key = (p.project_id, p.channel_id);
        let mut reg = self.registry_mut();
        match (p.event, &p.user_id) {
            (ChatEvent::MemberJoined, Some(user)) => {
                reg.chat_members
                    .entry(key)
                    .or_default()
                    .insert(user.clone());
            }
            (ChatEvent::MemberLeft | ChatEvent::UserKicked | ChatEvent::UserBanned, Some(user)) => {
                if let Some(members) = reg.chat_members.get_mut(&key) {
                    members.remove(user);
                }
            }
            (ChatEvent::ChannelDeleted, _) => {
                reg.chat_members.remove(&key);
            }
            _ => {}
        }
    }

    /// What the publisher library writes to Redis before publishing, done in memory.
    fn record(&self, p: &Publication) {
        let Route::PaymentRequest {
            payment_request_id,
            provider_payment_id,
        } = &p.route
        else {
            return;
        };
        let Some(status) = p.payment_request_status() else {
            return;
        };
        let mut reg = self.registry_mut();
        let id = payment_request_id.or_else(|| {
            provider_payment_id
                .as_ref()
                .and_then(|pp| reg.provider_payments.get(pp))
                .map(|r| r.payment_request_id)
        });
        let Some(id) = id else { return };
        let known_provider = reg
            .payment_requests
            .get(&id)
            .and_then(|r| r.provider_payment_id.clone());
        let provider = provider_payment_id.clone().or(known_provider);
        reg.payment_requests.insert(
            id,
            PaymentRequestRecord {
                project_id: p.project_id,
                provider_payment_id: provider.clone(),
                status,
            },
        );
        if let Some(pp) = provider {
            reg.provider_payments.insert(
                pp,
                ProviderPaymentRecord {
                    project_id: p.project_id,
                    payment_request_id: id,
                },
            );
        }
    }
}

#[async_trait]
impl Engine for EmbeddedEngine {
    async fn publish(&self, publication: AnyPublication) -> Result<(), EngineError> {
        match &publication {
            AnyPublication::Live(p) => self.record(p),
            AnyPublication::Chat(p) => self.record_membership(p),
        }
        let (delivered, done) = oneshot::channel();
        self.deliveries
            .send(Delivery::Publication {
                publication: Box::new(publication),
                delivered: Some(delivered),
                received: Instant::now(),
            })
            .await
            .map_err(|_| EngineError::Unavailable("the delivery task has stopped".into()))?;
        // Read-your-writes on one node: answer once local sockets have it.
        done.await
            .map_err(|_| EngineError::Unavailable("the delivery task has stopped".into()))
    }

    async fn acquire_project(&self, _project_id: Uuid) -> Result<(), EngineError> {
        Ok(())
    }

    fn release_project(&self, _project_id: Uuid) {}

    async fn payment_request(&self, id: Uuid) -> Result<Option<PaymentRequestRecord>, EngineError> {
        Ok(self.registry().payment_requests.get(&id).cloned())
    }

    async fn provider_payment(
        &self,
        id: &str,
    ) -> Result<Option<ProviderPaymentRecord>, EngineError> {
        Ok(self.registry().provider_payments.get(id).cloned())
    }

    async fn is_chat_member(
        &self,
        project_id: Uuid,
        channel_id: Uuid,
        user_id: &str,
    ) -> Result<bool, EngineError> {
        Ok(self
            .registry()
            .chat_members
            .get(&(project_id, channel_id))
            .is_some_and(|m| m.contains(user_id)))
    }

    async fn is_session_revoked(&self, sid: &str) -> Result<bool, EngineError> {
        Ok(self
            .registry()
            .revoked
            .get(sid)
            .is_some_and(|until| *until > Instant::now()))
    }

    async fn revoke_session(
        &self,
        sid: &str,
        reason: &str,
        ttl: Duration,
    ) -> Result<(), EngineError> {
        {
            let mut reg = self.registry_mut();
            let now = Instant::now();
            reg.revoked.retain(|_, until| *until > now);
            reg.revoked.insert(sid.to_owned(), now + ttl);
        }
        self.deliveries
            .send(Delivery::SessionRevoked {
                sid: sid.to_owned(),
                reason: reason.to_owned(),
            })
            .await
            .map_err(|_| EngineError::Unavailable("the delivery task has stopped".into()))
    }

    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use livegate_protocol::payment_request::PaymentRequestStatus;
    use serde_json::json;

    use super::*;

    const P: &str = "93425026-6bb8-4f81-a75d-63f538e1a123";
    const PR: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn updated(status: &str) -> Publication {
        Publication::from_value(
            json!({"event":"payment-request.updated","channel":"payment-requests",
            "project_id":P,"update_type":"created","payment_request":{"payment_request_id":PR,
            "provider_payment_id":"pi_1","status":status,"request_type":"invoice","amount":"1.00",
            "currency":"USD"}}),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn publications_write_the_registry_then_deliver() {
        let (engine, mut rx) = EmbeddedEngine::new();
        // Stands in for the delivery task: acknowledges each publication.
        let delivery_task = tokio::spawn(async move {
            let mut delivered = 0;
            while let Some(d) = rx.recv().await {
                if let Delivery::Publication {
                    delivered: Some(ack),
                    ..
                } = d
                {
                    let _ = ack.send(());
                    delivered += 1;
                }
                if delivered == 2 {
                    break;
                }
            }
            delivered
        });
        engine
            .publish(updated("pending").into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let id = Uuid::parse_str(PR).unwrap_or_default();
        let rec = engine.payment_request(id).await.ok().flatten();
        assert_eq!(rec.map(|r| r.status), Some(PaymentRequestStatus::Pending));
        let pp = engine.provider_payment("pi_1").await.ok().flatten();
        assert_eq!(pp.map(|r| r.payment_request_id), Some(id));

        let closed = Publication::from_value(
            json!({"event":"subscription.closed","channel":"payment-requests",
            "project_id":P,"provider_payment_id":"pi_1","status":"expired"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        engine
            .publish(closed.into())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let rec = engine.payment_request(id).await.ok().flatten();
        assert_eq!(rec.map(|r| r.status), Some(PaymentRequestStatus::Expired));
        assert_eq!(delivery_task.await.ok(), Some(2));
    }

    #[tokio::test]
    async fn revocations_expire() {
        let (engine, mut rx) = EmbeddedEngine::new();
        engine
            .revoke_session("s1", "logout", Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.is_session_revoked("s1").await.ok(), Some(true));
        assert_eq!(engine.is_session_revoked("s2").await.ok(), Some(false));
        assert!(matches!(
            rx.recv().await,
            Some(Delivery::SessionRevoked { .. })
        ));
        engine
            .revoke_session("s3", "logout", Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(engine.is_session_revoked("s3").await.ok(), Some(false));
    }
}
