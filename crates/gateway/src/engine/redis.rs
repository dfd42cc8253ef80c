//! The Redis engine: any number of nodes on one Redis (or Redis Cluster with sharded pub/sub).
//!
//! # How does it work?
//! - One subscriber connection carries every subscription of the node: `{prefix}:control` always,
//!   and `{prefix}:project:{id}` while the node holds at least one subscribed socket of that
//!   project. The first [`Engine::acquire_project`] sends `SUBSCRIBE` and resolves once Redis
//!   confirmed it; the last release unsubscribes after a short grace (no churn when a client
//!   reconnects). Sharded mode uses `SSUBSCRIBE`/`SUNSUBSCRIBE` instead.
//! - Each message is parsed and validated once, checked against the project its channel names,
//!   and handed to the delivery task. A message that does not fit is dropped, logged, counted.
//! - After any (re)connection, every channel still needed is subscribed again, in batches: fred's
//!   own resubscription is not relied upon. Until that is done the node is not ready.
//! - Registries and revocations are read with a command timeout, and publishing over HTTP goes
//!   through the publisher library, exactly as an external publisher would.
//!
//! Redis names: see [`livegate_protocol::redis_names`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fred::interfaces::{ClientLike, EventInterface, KeysInterface, PubsubInterface, SetsInterface};
use fred::prelude::{Builder, Client, Config as FredConfig, ReconnectPolicy};
use livegate_protocol::payment_request::{PaymentRequestRecord, ProviderPaymentRecord};
use livegate_protocol::{AnyPublication, RedisNames};
use livegate_publisher::{Publisher, RedisPublisher};
use serde::Deserialize;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use super::{DELIVERY_QUEUE, Deliveries, Delivery, Engine, EngineError};
use crate::metrics::Metrics;

/// Publications fred may buffer for the message task before it lags (and counts the loss).
const MESSAGE_BUFFER: usize = 8192;

/// Channels per `SUBSCRIBE` when resubscribing after a reconnect (classic pub/sub).
const RESUBSCRIBE_BATCH: usize = 200;

/// Settings of the Redis engine.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub names: RedisNames,
    pub sharded: bool,
    /// Timeout of every command (registry reads, subscribe confirmations).
    pub command_timeout: Duration,
    /// How long a project stays subscribed after its last socket left.
    pub unsubscribe_grace: Duration,
    /// Largest publication accepted from the bus.
    pub max_publication_bytes: usize,
}

pub struct RedisEngine {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RedisSettings,
    commands: Client,
    subscriber: Client,
    publisher: RedisPublisher,
    deliveries: mpsc::Sender<Delivery>,
    metrics: Arc<Metrics>,
    interest: Mutex<HashMap<Uuid, Interest>>,
    /// True once, after the latest (re)connection, every needed channel is subscribed again.
    subscriptions_restored: AtomicBool,
    /// Bumped by every (re)connection: an older restore attempt gives way to a newer one.
    restore_generation: AtomicU64,
}

/// One project's subscription on this node.
struct Interest {
    /// Sockets' leases on the project.
    holders: usize,
    /// Whether Redis confirmed the subscription; the lock orders subscribe/unsubscribe.
    subscribed: Arc<tokio::sync::Mutex<bool>>,
}

#[derive(Deserialize)]
struct ControlMessage {
    #[serde(rename = "type")]
    kind: String,
    sid: Option<String>,
    reason: Option<String>,
}

fn unavailable(e: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(e.to_string())
}

impl RedisEngine {
    /// Builds the clients and starts connecting in the background: a node whose Redis is down
    /// starts anyway, unready, and recovers when Redis appears.
    pub fn start(
        settings: RedisSettings,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, Deliveries), EngineError> {
        let mut config = FredConfig::from_url(&settings.url).map_err(unavailable)?;
        config.fail_fast = false;
        let build = |config: FredConfig| {
            Builder::from_config(config)
                .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
                .with_performance_config(|p| {
                    p.default_command_timeout = settings.command_timeout;
                    // fred's pub/sub stream holds 32 messages by default: a node starved of CPU
                    // for a moment lost whole publications (bench run 3). Lagging is still counted.
                    p.broadcast_channel_capacity = MESSAGE_BUFFER;
                })
                .with_connection_config(|c| {
                    c.connection_timeout = settings.command_timeout.max(Duration::from_secs(1));
                    c.max_command_attempts = 1;
                })
                .build()
                .map_err(unavailable)
        };
        let commands = build(config.clone())?;
        let subscriber = build(config)?;
        let publisher =
            RedisPublisher::new(commands.clone(), settings.names.clone(), settings.sharded);
        let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
        let inner = Arc::new(Inner {
            settings,
            commands,
            subscriber,
            publisher,
            deliveries: tx,
            metrics,
            interest: Mutex::new(HashMap::new()),
            subscriptions_restored: AtomicBool::new(false),
            restore_generation: AtomicU64::new(0),
        });
        inner.spawn_tasks();
        Ok((RedisEngine { inner }, rx))
    }
}

impl Inner {
    fn interest(&self) -> MutexGuard<'_, HashMap<Uuid, Interest>> {
        // Critical sections are plain map updates; a poisoned lock still holds consistent data.
        self.interest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn_tasks(self: &Arc<Self>) {
        // Listeners first, so the first connection's event is not missed.
        let mut messages = self.subscriber.message_rx();
        let mut reconnects = self.subscriber.reconnect_rx();
        let mut errors = self.subscriber.error_rx();
        // The connection tasks run (and reconnect) in the background; their handles are not needed.
        drop(self.commands.connect());
        drop(self.subscriber.connect());

        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match messages.recv().await {
                    Ok(message) => me.on_message(&message.channel, message.value).await,
                    Err(RecvError::Lagged(n)) => {
                        Metrics::inc(&me.metrics.publications_dropped.reason("lagged"), n);
                        tracing::warn!(
                            lost = n,
                            "the Redis message stream lagged: publications lost"
                        );
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match reconnects.recv().await {
                    Ok(server) => {
                        tracing::info!(%server, "connected to Redis: restoring subscriptions");
                        me.restore_subscriptions().await;
                    }
                    Err(RecvError::Lagged(_)) => me.restore_subscriptions().await,
                    Err(RecvError::Closed) => return,
                }
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match errors.recv().await {
                    Ok((error, _)) => {
                        if me.subscriptions_restored.swap(false, Ordering::SeqCst) {
                            Metrics::inc(&me.metrics.redis_disconnects, 1);
                        }
                        tracing::warn!(%error, "Redis connection lost: the node is not ready");
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }

    /// Subscribes the control channel and every project still needed, retrying with backoff
    /// until it succeeds or a newer (re)connection takes over; only then is the node ready.
    async fn restore_subscriptions(&self) {
        let generation = self.restore_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.subscriptions_restored.store(false, Ordering::SeqCst);
        let mut delay = Duration::from_millis(100);
        loop {
            match self.resubscribe_all().await {
                Ok(projects) => {
                    if self.restore_generation.load(Ordering::SeqCst) == generation {
                        Metrics::inc(&self.metrics.resubscriptions, projects as u64);
                        self.subscriptions_restored.store(true, Ordering::SeqCst);
                        tracing::info!(projects, "subscriptions restored: the node is ready");
                    }
                    return;
                }
                Err(e) => {
                    if self.restore_generation.load(Ordering::SeqCst) != generation {
                        return;
                    }
                    tracing::warn!(error = %e, retry_in = ?delay, "resubscribing failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One pass over every needed channel. Classic pub/sub takes them in batches; sharded
    /// pub/sub one by one, since one `SSUBSCRIBE` may only name channels of a single slot.
    async fn resubscribe_all(&self) -> Result<usize, EngineError> {
        let mut channels = vec![self.settings.names.control_channel()];
        let projects: Vec<Uuid> = self.interest().keys().copied().collect();
        channels.extend(
            projects
                .iter()
                .map(|p| self.settings.names.project_channel(*p)),
        );
        let batch = if self.settings.sharded {
            1
        } else {
            RESUBSCRIBE_BATCH
        };
        for chunk in channels.chunks(batch) {
            self.subscribe(chunk.to_vec()).await?;
        }
        Ok(projects.len())
    }

    async fn subscribe(&self, channels: Vec<String>) -> Result<(), EngineError> {
        let sent = async {
            if self.settings.sharded {
                self.subscriber.ssubscribe(channels).await
            } else {
                self.subscriber.subscribe(channels).await
            }
        };
        match tokio::time::timeout(self.settings.command_timeout, sent).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("SUBSCRIBE was not confirmed in time")),
        }
    }

    async fn unsubscribe(&self, channel: String) -> Result<(), EngineError> {
        let sent = async {
            if self.settings.sharded {
                self.subscriber.sunsubscribe(channel).await
            } else {
                self.subscriber.unsubscribe(channel).await
            }
        };
        match tokio::time::timeout(self.settings.command_timeout, sent).await {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(unavailable("UNSUBSCRIBE was not confirmed in time")),
        }
    }

    async fn on_message(&self, channel: &str, value: fred::types::Value) {
        let Some(bytes) = value
            .as_bytes()
            .map(<[u8]>::to_vec)
            .or_else(|| value.as_string().map(String::into_bytes))
        else {
            self.drop_publication(channel, "not_text", "the message is not text");
            return;
        };
        if channel == self.settings.names.control_channel() {
            self.on_control(&bytes).await;
            return;
        }
        let Some(project_id) = self.settings.names.project_of_channel(channel) else {
            return;
        };
        Metrics::inc(&self.metrics.publications_received, 1);
        let received = Instant::now();
        if bytes.len() > self.settings.max_publication_bytes {
            self.drop_publication(
                channel,
                "oversized",
                "the publication is larger than the limit",
            );
            return;
        }
        let publication = match AnyPublication::parse(&bytes) {
            Ok(p) => p,
            Err(e) => {
                self.drop_publication(channel, e.reason(), &e.to_string());
                return;
            }
        };
        if publication.project_id() != project_id {
            self.drop_publication(
                channel,
                "project_mismatch",
                "project_id does not match the channel",
            );
            return;
        }
        if self
            .deliveries
            .send(Delivery::Publication {
                publication: Box::new(publication),
                delivered: None,
                received,
            })
            .await
            .is_err()
        {
            tracing::debug!("the delivery task has stopped");
        }
    }

    fn drop_publication(&self, channel: &str, reason: &str, detail: &str) {
        Metrics::inc(&self.metrics.publications_dropped.reason(reason), 1);
        tracing::warn!(channel, reason, detail, "dropped an invalid publication");
    }

    async fn on_control(&self, bytes: &[u8]) {
        match serde_json::from_slice::<ControlMessage>(bytes) {
            Ok(ControlMessage {
                kind,
                sid: Some(sid),
                reason,
            }) if kind == "session.revoked" && !sid.is_empty() => {
                let reason = reason.unwrap_or_else(|| "revoked".to_owned());
                let _ = self
                    .deliveries
                    .send(Delivery::SessionRevoked { sid, reason })
                    .await;
            }
            _ => tracing::warn!("ignored an unknown control message"),
        }
    }

    async fn acquire(self: &Arc<Self>, project_id: Uuid) -> Result<(), EngineError> {
        let subscribed = {
            let mut interest = self.interest();
            let entry = interest.entry(project_id).or_insert_with(|| Interest {
                holders: 0,
                subscribed: Arc::new(tokio::sync::Mutex::new(false)),
            });
            entry.holders += 1;
            entry.subscribed.clone()
        };
        let mut is_subscribed = subscribed.lock().await;
        if *is_subscribed {
            return Ok(());
        }
        match self
            .subscribe(vec![self.settings.names.project_channel(project_id)])
            .await
        {
            Ok(()) => {
                *is_subscribed = true;
                tracing::debug!(%project_id, "subscribed to the project's channel");
                Ok(())
            }
            Err(e) => {
                drop(is_subscribed);
                self.release(project_id);
                Err(e)
            }
        }
    }

    fn release(self: &Arc<Self>, project_id: Uuid) {
        let last = {
            let mut interest = self.interest();
            match interest.get_mut(&project_id) {
                Some(entry) => {
                    entry.holders = entry.holders.saturating_sub(1);
                    entry.holders == 0
                }
                None => false,
            }
        };
        if !last {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(me.settings.unsubscribe_grace).await;
            let Some(subscribed) = me
                .interest()
                .get(&project_id)
                .filter(|e| e.holders == 0)
                .map(|e| e.subscribed.clone())
            else {
                return;
            };
            // Held across the UNSUBSCRIBE: a new holder waits for it, then subscribes again.
            let mut is_subscribed = subscribed.lock().await;
            if me
                .interest()
                .get(&project_id)
                .is_some_and(|e| e.holders > 0)
            {
                return;
            }
            if *is_subscribed {
                match me
                    .unsubscribe(me.settings.names.project_channel(project_id))
                    .await
                {
                    Ok(()) => *is_subscribed = false,
                    Err(e) => {
                        tracing::warn!(%project_id, error = %e, "UNSUBSCRIBE failed; the next reconnect drops it")
                    }
                }
            }
            let mut interest = me.interest();
            if interest.get(&project_id).is_some_and(|e| e.holders == 0) {
                interest.remove(&project_id);
                tracing::debug!(%project_id, "unsubscribed from the project's channel");
            }
        });
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> Result<Option<T>, EngineError> {
        let raw: Option<String> = self.commands.get(&key).await.map_err(unavailable)?;
        match raw {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| unavailable(format!("the registry entry {key} is not valid JSON"))),
        }
    }
}

#[async_trait]
impl Engine for RedisEngine {
    async fn publish(&self, publication: AnyPublication) -> Result<(), EngineError> {
        let publication = match publication {
            AnyPublication::Live(p) => p,
            AnyPublication::Chat(p) => {
                return self
                    .inner
                    .publisher
                    .publish_chat(p)
                    .await
                    .map(|_| ())
                    .map_err(unavailable);
            }
        };
        self.inner
            .publisher
            .publish(publication)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn acquire_project(&self, project_id: Uuid) -> Result<(), EngineError> {
        self.inner.acquire(project_id).await
    }

    fn release_project(&self, project_id: Uuid) {
        self.inner.release(project_id);
    }

    async fn payment_request(&self, id: Uuid) -> Result<Option<PaymentRequestRecord>, EngineError> {
        self.inner
            .get_json(self.inner.settings.names.payment_request(id))
            .await
    }

    async fn provider_payment(
        &self,
        id: &str,
    ) -> Result<Option<ProviderPaymentRecord>, EngineError> {
        self.inner
            .get_json(self.inner.settings.names.provider_payment(id))
            .await
    }

    async fn is_chat_member(
        &self,
        project_id: Uuid,
        channel_id: Uuid,
        user_id: &str,
    ) -> Result<bool, EngineError> {
        let key = self
            .inner
            .settings
            .names
            .chat_members(project_id, channel_id);
        self.inner
            .commands
            .sismember(&key, user_id)
            .await
            .map_err(unavailable)
    }

    async fn is_session_revoked(&self, sid: &str) -> Result<bool, EngineError> {
        let n: i64 = self
            .inner
            .commands
            .exists(self.inner.settings.names.revoked_session(sid))
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn revoke_session(
        &self,
        sid: &str,
        reason: &str,
        ttl: Duration,
    ) -> Result<(), EngineError> {
        self.inner
            .publisher
            .revoke_session(sid, reason, ttl)
            .await
            .map_err(unavailable)
    }

    fn is_ready(&self) -> bool {
        self.inner.commands.is_connected()
            && self.inner.subscriber.is_connected()
            && self.inner.subscriptions_restored.load(Ordering::SeqCst)
    }
}
