//! The Redis backend: `PUBLISH {prefix}:project:{id}` (classic) or `SPUBLISH` (sharded, for Redis
//! Cluster), with the payment-request registries written first.
//!
//! On classic pub/sub the registry writes and the publish are one `MULTI`/`EXEC`, so a gateway
//! that reads the registry after receiving the event never sees an older state. On a cluster the
//! keys and the channel live in different slots, so the writes go first, then the `SPUBLISH`.

use std::time::Duration;

use fred::interfaces::{
    ClientLike, KeysInterface, PubsubInterface, SetsInterface, TransactionInterface,
};
use fred::prelude::Client;
use fred::types::Expiration;
use livegate_protocol::chat::{ChatEvent, ChatPublication};
use livegate_protocol::payment_request::{PaymentRequestRecord, ProviderPaymentRecord};
use livegate_protocol::{EventName, Publication, RedisNames, Route};
use serde_json::json;

use crate::{Error, Publisher, ensure_chat_event_id, ensure_event_id};

/// How long registry entries live by default: well past any payment request's life.
pub const DEFAULT_REGISTRY_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Publishes through Redis with a connected fred client.
#[derive(Clone)]
pub struct RedisPublisher {
    client: Client,
    names: RedisNames,
    sharded: bool,
    registry_ttl: Duration,
}

impl RedisPublisher {
    /// `client` must be connected (or connecting); `sharded` selects `SPUBLISH`.
    pub fn new(client: Client, names: RedisNames, sharded: bool) -> Self {
        RedisPublisher {
            client,
            names,
            sharded,
            registry_ttl: DEFAULT_REGISTRY_TTL,
        }
    }

    pub fn with_registry_ttl(mut self, ttl: Duration) -> Self {
        self.registry_ttl = ttl;
        self
    }

    pub fn names(&self) -> &RedisNames {
        &self.names
    }

    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, Error> {
        let raw: Option<String> = self.client.get(key).await.map_err(redis_error(key))?;
        raw.map(|text| {
            serde_json::from_str(&text).map_err(|_| Error::CorruptRegistry {
                key: key.to_owned(),
            })
        })
        .transpose()
    }

    /// The registry entries a payment-request publication implies: (key, JSON) pairs.
    async fn registry_writes(&self, p: &Publication) -> Result<Vec<(String, String)>, Error> {
        let Route::PaymentRequest {
            payment_request_id,
            provider_payment_id,
        } = &p.route
        else {
            return Ok(vec![]);
        };
        let Some(status) = p.payment_request_status() else {
            return Ok(vec![]);
        };
        let mut id = *payment_request_id;
        let mut provider = provider_payment_id.clone();
        if let (None, Some(pp)) = (id, &provider) {
            let rec: Option<ProviderPaymentRecord> =
                self.read_json(&self.names.provider_payment(pp)).await?;
            id = rec.map(|r| r.payment_request_id);
        }
        let Some(id) = id else { return Ok(vec![]) };
        if provider.is_none() && p.event == EventName::SubscriptionClosed {
            let rec: Option<PaymentRequestRecord> =
                self.read_json(&self.names.payment_request(id)).await?;
            provider = rec.and_then(|r| r.provider_payment_id);
        }
        let mut writes = vec![(
            self.names.payment_request(id),
            json!(PaymentRequestRecord {
                project_id: p.project_id,
                provider_payment_id: provider.clone(),
                status,
            })
            .to_string(),
        )];
        if let Some(pp) = provider {
            writes.push((
                self.names.provider_payment(&pp),
                json!(ProviderPaymentRecord {
                    project_id: p.project_id,
                    payment_request_id: id,
                })
                .to_string(),
            ));
        }
        Ok(writes)
    }

    fn expiration(&self) -> Option<Expiration> {
        Some(Expiration::EX(
            i64::try_from(self.registry_ttl.as_secs())
                .unwrap_or(i64::MAX)
                .max(1),
        ))
    }
}

impl Publisher for RedisPublisher {
    async fn publish(&self, mut publication: Publication) -> Result<String, Error> {
        let event_id = ensure_event_id(&mut publication);
        let channel = self.names.project_channel(publication.project_id);
        let payload = publication.to_json().to_string();
        let writes = self.registry_writes(&publication).await?;
        if self.sharded {
            for (key, value) in writes {
                let () = self
                    .client
                    .set(&key, value, self.expiration(), None, false)
                    .await
                    .map_err(redis_error(&key))?;
            }
            let _: i64 = self
                .client
                .spublish(&channel, payload)
                .await
                .map_err(redis_error(&channel))?;
        } else if writes.is_empty() {
            let _: i64 = self
                .client
                .publish(&channel, payload)
                .await
                .map_err(redis_error(&channel))?;
        } else {
            let trx = self.client.multi();
            for (key, value) in writes {
                let () = trx
                    .set(&key, value, self.expiration(), None, false)
                    .await
                    .map_err(redis_error(&key))?;
            }
            let () = trx
                .publish(&channel, payload)
                .await
                .map_err(redis_error(&channel))?;
            let _: fred::types::Value = trx.exec(true).await.map_err(redis_error(&channel))?;
        }
        Ok(event_id)
    }

    async fn publish_chat(&self, mut publication: ChatPublication) -> Result<String, Error> {
        let event_id = ensure_chat_event_id(&mut publication);
        let channel = self.names.project_channel(publication.project_id);
        let members = self
            .names
            .chat_members(publication.project_id, publication.channel_id);
        let payload = publication.to_json().to_string();
        // Membership changes travel with the event: one MULTI on classic pub/sub; on a cluster
        // the set and the channel live in different slots, so the write goes first.
        if self.sharded {
            write_membership(&self.client, &publication, &members)
                .await
                .map_err(redis_error(&members))?;
            let _: i64 = self
                .client
                .spublish(&channel, payload)
                .await
                .map_err(redis_error(&channel))?;
        } else {
            let trx = self.client.multi();
            write_membership(&trx, &publication, &members)
                .await
                .map_err(redis_error(&members))?;
            let () = trx
                .publish(&channel, payload)
                .await
                .map_err(redis_error(&channel))?;
            let _: fred::types::Value = trx.exec(true).await.map_err(redis_error(&channel))?;
        }
        Ok(event_id)
    }

    async fn revoke_session(&self, sid: &str, reason: &str, ttl: Duration) -> Result<(), Error> {
        let key = self.names.revoked_session(sid);
        let seconds = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        let () = self
            .client
            .set(&key, reason, Some(Expiration::EX(seconds)), None, false)
            .await
            .map_err(redis_error(&key))?;
        let control = self.names.control_channel();
        let message = json!({"type": "session.revoked", "sid": sid, "reason": reason}).to_string();
        let _: i64 = if self.sharded {
            self.client.spublish(&control, message).await
        } else {
            self.client.publish(&control, message).await
        }
        .map_err(redis_error(&control))?;
        Ok(())
    }
}

/// Connects a fred client for publishing (`redis://…`, or `redis-cluster://…` for a cluster).
pub async fn connect(url: &str, command_timeout: Duration) -> Result<Client, Error> {
    let config = fred::prelude::Config::from_url(url).map_err(redis_error(url))?;
    let client = fred::prelude::Builder::from_config(config)
        .with_performance_config(|p| p.default_command_timeout = command_timeout)
        .build()
        .map_err(redis_error(url))?;
    client.init().await.map_err(redis_error(url))?;
    Ok(client)
}

/// The chat membership change a publication implies, on a client or inside a transaction.
async fn write_membership<C>(
    client: &C,
    p: &ChatPublication,
    members: &str,
) -> Result<(), fred::error::Error>
where
    C: SetsInterface + KeysInterface + Sync,
{
    let user = p.user_id.clone().unwrap_or_default();
    match p.event {
        ChatEvent::MemberJoined => client.sadd(members, user).await,
        ChatEvent::MemberLeft | ChatEvent::UserKicked | ChatEvent::UserBanned => {
            client.srem(members, user).await
        }
        ChatEvent::ChannelDeleted => client.del(members).await,
        _ => Ok(()),
    }
}

/// Wraps a fred error with the key or channel it was about.
fn redis_error(key: &str) -> impl FnOnce(fred::error::Error) -> Error + '_ {
    move |source| Error::Redis {
        key: key.to_owned(),
        source,
    }
}
