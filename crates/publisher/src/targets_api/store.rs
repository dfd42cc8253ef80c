//! Where targets live: the [`TargetStore`] contract, an in-memory store (the embedded setup) and
//! a Redis store (one hash per project).
//!
//! # Redis layout
//! | name | what |
//! |---|---|
//! | `{prefix}:targets:{project_id}` | hash: field = `target_id`, value = the target's JSON snapshot |
//!
//! Writes are atomic read-modify-write without locks held in Redis: an update reads the
//! snapshots (`HMGET`), computes the new ones in Rust, and commits with a Lua compare-and-set
//! that writes only if every snapshot is still byte-for-byte what was read. A concurrent writer
//! that got in first makes the commit fail; the update is then recomputed from the fresh
//! snapshots. So no update is ever lost, and `before` is always exactly the state replaced:
//! the event derived from it is the true one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use fred::interfaces::{HashesInterface, LuaInterface};
use fred::prelude::Client;
use livegate_protocol::RedisNames;
use livegate_protocol::target::Target;
use uuid::Uuid;

use super::model::TargetPatch;

/// One stored change: the snapshot replaced and the one written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub before: Target,
    pub after: Target,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("target {0} already exists")]
    Exists(Uuid),
    #[error("no such target: {0:?}")]
    NotFound(Vec<Uuid>),
    #[error("the stored target {field} in {key} is not a valid target")]
    Corrupt { key: String, field: String },
    #[error("redis command on {key} failed")]
    Redis {
        key: String,
        #[source]
        source: fred::error::Error,
    },
    #[error("{key} kept changing under {attempts} attempts to update it")]
    Contended { key: String, attempts: u32 },
}

/// The storage contract of the targets API.
///
/// - Every method is about one project; projects never see each other's targets.
/// - [`TargetStore::update`] is all or nothing: either every named target exists and every
///   patch is applied from one consistent set of snapshots, or nothing is written.
/// - No update is lost under concurrency, in one process or across processes sharing a
///   backend; each returned [`Change::before`] is exactly the snapshot that was replaced.
pub trait TargetStore: Send + Sync + 'static {
    /// Every target of the project, in no particular order.
    fn list(&self, project: Uuid) -> impl Future<Output = Result<Vec<Target>, StoreError>> + Send;

    fn get(
        &self,
        project: Uuid,
        target: Uuid,
    ) -> impl Future<Output = Result<Option<Target>, StoreError>> + Send;

    /// Stores a new target; [`StoreError::Exists`] if its id is taken.
    fn create(
        &self,
        project: Uuid,
        target: &Target,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Applies each patch to its target, atomically. [`StoreError::NotFound`] lists the ids
    /// that do not exist (nothing is written then). Returns one [`Change`] per edit, in order,
    /// no-ops included (`before == after`).
    fn update(
        &self,
        project: Uuid,
        edits: &[(Uuid, TargetPatch)],
    ) -> impl Future<Output = Result<Vec<Change>, StoreError>> + Send;

    /// Removes a target; returns the snapshot removed, or `None` if there was none.
    fn delete(
        &self,
        project: Uuid,
        target: Uuid,
    ) -> impl Future<Output = Result<Option<Target>, StoreError>> + Send;
}

// === impl MemoryStore ===

/// Targets in process memory, for the embedded setup: gone when the process stops.
#[derive(Debug, Default)]
pub struct MemoryStore {
    projects: Mutex<HashMap<Uuid, HashMap<Uuid, Target>>>,
}

impl MemoryStore {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Uuid, HashMap<Uuid, Target>>) -> R) -> R {
        // Every write below is computed fully before it touches the map, so a panic elsewhere
        // cannot leave a project half-updated: a poisoned lock is still consistent.
        let mut guard = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }
}

impl TargetStore for MemoryStore {
    async fn list(&self, project: Uuid) -> Result<Vec<Target>, StoreError> {
        Ok(self.with(|p| {
            p.get(&project)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        }))
    }

    async fn get(&self, project: Uuid, target: Uuid) -> Result<Option<Target>, StoreError> {
        Ok(self.with(|p| p.get(&project).and_then(|t| t.get(&target)).cloned()))
    }

    async fn create(&self, project: Uuid, target: &Target) -> Result<(), StoreError> {
        self.with(|p| {
            let targets = p.entry(project).or_default();
            if targets.contains_key(&target.target_id) {
                return Err(StoreError::Exists(target.target_id));
            }
            targets.insert(target.target_id, target.clone());
            Ok(())
        })
    }

    async fn update(
        &self,
        project: Uuid,
        edits: &[(Uuid, TargetPatch)],
    ) -> Result<Vec<Change>, StoreError> {
        self.with(|p| {
            let empty = HashMap::new();
            let current = p.get(&project).unwrap_or(&empty);
            let befores: Vec<Option<&Target>> =
                edits.iter().map(|(id, _)| current.get(id)).collect();
            let changes = apply_all(edits, &befores)?;
            let targets = p.entry(project).or_default();
            for change in &changes {
                targets.insert(change.after.target_id, change.after.clone());
            }
            Ok(changes)
        })
    }

    async fn delete(&self, project: Uuid, target: Uuid) -> Result<Option<Target>, StoreError> {
        Ok(self.with(|p| p.get_mut(&project).and_then(|t| t.remove(&target))))
    }
}

/// The changes `edits` make to `befores` (one per edit, same order), or the ids not found.
fn apply_all(
    edits: &[(Uuid, TargetPatch)],
    befores: &[Option<&Target>],
) -> Result<Vec<Change>, StoreError> {
    let missing: Vec<Uuid> = edits
        .iter()
        .zip(befores)
        .filter(|(_, b)| b.is_none())
        .map(|((id, _), _)| *id)
        .collect();
    if !missing.is_empty() {
        return Err(StoreError::NotFound(missing));
    }
    Ok(edits
        .iter()
        .zip(befores.iter().flatten())
        .map(|((_, patch), before)| Change {
            before: (*before).clone(),
            after: patch.apply(before),
        })
        .collect())
}

// === impl RedisStore ===

/// Commits an update only if every snapshot is still what was read.
/// KEYS[1] = the project's hash; ARGV = (target_id, expected JSON, new JSON) triples.
/// Returns 1 when written, 0 when a snapshot changed meanwhile (nothing written).
const COMPARE_AND_SET: &str = r"
for i = 1, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
for i = 1, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
end
return 1
";

/// Removes a field and returns what it held (nil if nothing).
const TAKE: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then redis.call('HDEL', KEYS[1], ARGV[1]) end
return v
";

/// How often an update is recomputed when concurrent writers keep winning, before giving up
/// with [`StoreError::Contended`] (a 503: the client may retry).
pub const MAX_UPDATE_ATTEMPTS: u32 = 100;

/// Targets in Redis, one hash per project (see the module docs).
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
    names: RedisNames,
}

impl RedisStore {
    /// `client` must be connected (or connecting); keys go under the names' prefix.
    pub fn new(client: Client, names: &RedisNames) -> Self {
        RedisStore {
            client,
            names: names.clone(),
        }
    }

    /// `{prefix}:targets:{project_id}`, the project id in lower case.
    pub fn key(&self, project: Uuid) -> String {
        self.names.targets(project)
    }

    fn parse(key: &str, field: &str, raw: &str) -> Result<Target, StoreError> {
        serde_json::from_str(raw).map_err(|_| StoreError::Corrupt {
            key: key.to_owned(),
            field: field.to_owned(),
        })
    }

    fn encode(target: &Target) -> String {
        serde_json::to_string(target).expect("a Target always serializes: plain fields")
    }
}

impl TargetStore for RedisStore {
    async fn list(&self, project: Uuid) -> Result<Vec<Target>, StoreError> {
        let key = self.key(project);
        let all: HashMap<String, String> =
            self.client.hgetall(&key).await.map_err(redis_error(&key))?;
        all.iter()
            .map(|(field, raw)| Self::parse(&key, field, raw))
            .collect()
    }

    async fn get(&self, project: Uuid, target: Uuid) -> Result<Option<Target>, StoreError> {
        let key = self.key(project);
        let field = target.to_string();
        let raw: Option<String> = self
            .client
            .hget(&key, &field)
            .await
            .map_err(redis_error(&key))?;
        raw.map(|r| Self::parse(&key, &field, &r)).transpose()
    }

    async fn create(&self, project: Uuid, target: &Target) -> Result<(), StoreError> {
        let key = self.key(project);
        let created: bool = self
            .client
            .hsetnx(&key, target.target_id.to_string(), Self::encode(target))
            .await
            .map_err(redis_error(&key))?;
        if created {
            Ok(())
        } else {
            Err(StoreError::Exists(target.target_id))
        }
    }

    async fn update(
        &self,
        project: Uuid,
        edits: &[(Uuid, TargetPatch)],
    ) -> Result<Vec<Change>, StoreError> {
        let key = self.key(project);
        let fields: Vec<String> = edits.iter().map(|(id, _)| id.to_string()).collect();
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            let raws: Vec<Option<String>> = self
                .client
                .hmget(&key, fields.clone())
                .await
                .map_err(redis_error(&key))?;
            let befores = raws
                .iter()
                .zip(&fields)
                .map(|(raw, field)| {
                    raw.as_deref()
                        .map(|r| Self::parse(&key, field, r))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let changes = apply_all(
                edits,
                &befores.iter().map(Option::as_ref).collect::<Vec<_>>(),
            )?;
            if changes.iter().all(|c| c.before == c.after) {
                // Nothing to write; the snapshots came from one atomic HMGET.
                return Ok(changes);
            }
            let mut args = Vec::with_capacity(fields.len() * 3);
            for ((field, raw), change) in fields.iter().zip(&raws).zip(&changes) {
                args.push(field.clone());
                args.push(raw.clone().unwrap_or_default());
                args.push(Self::encode(&change.after));
            }
            let written: i64 = self
                .client
                .eval(COMPARE_AND_SET, vec![key.clone()], args)
                .await
                .map_err(redis_error(&key))?;
            if written == 1 {
                return Ok(changes);
            }
            // Someone else wrote first: back off a little (more each time), then recompute.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)))).await;
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_UPDATE_ATTEMPTS,
        })
    }

    async fn delete(&self, project: Uuid, target: Uuid) -> Result<Option<Target>, StoreError> {
        let key = self.key(project);
        let field = target.to_string();
        let raw: Option<String> = self
            .client
            .eval(TAKE, vec![key.clone()], vec![field.clone()])
            .await
            .map_err(redis_error(&key))?;
        raw.map(|r| Self::parse(&key, &field, &r)).transpose()
    }
}

fn redis_error(key: &str) -> impl FnOnce(fred::error::Error) -> StoreError + '_ {
    move |source| StoreError::Redis {
        key: key.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use livegate_protocol::target::{Platform, TargetKind};

    use super::*;

    fn target(n: u128) -> Target {
        Target {
            target_id: Uuid::from_u128(n),
            target_name: format!("target {n}"),
            platform: Platform::Discord,
            kind: TargetKind::Role,
            external_id: n.to_string(),
            is_enabled: true,
            parent_target_id: None,
            plan_count: Some(0),
            participant_count: None,
        }
    }

    fn rename(name: &str) -> TargetPatch {
        TargetPatch {
            target_name: Some(name.into()),
            ..TargetPatch::default()
        }
    }

    fn disable() -> TargetPatch {
        TargetPatch {
            is_enabled: Some(false),
            ..TargetPatch::default()
        }
    }

    /// The contract, run against any store.
    async fn contract(store: &impl TargetStore) {
        let p = Uuid::new_v4();
        let other = Uuid::new_v4();
        store
            .create(p, &target(1))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        store
            .create(p, &target(2))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            store.create(p, &target(1)).await,
            Err(StoreError::Exists(_))
        ));
        assert_eq!(store.list(other).await.map(|l| l.len()).ok(), Some(0));
        assert_eq!(store.get(other, target(1).target_id).await.ok(), Some(None));
        assert_eq!(store.list(p).await.map(|l| l.len()).ok(), Some(2));

        let changes = store
            .update(
                p,
                &[
                    (target(1).target_id, rename("one")),
                    (target(2).target_id, TargetPatch::default()),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(changes[0].before, target(1));
        assert_eq!(changes[0].after.target_name, "one");
        assert_eq!(changes[1].before, changes[1].after);

        // All or nothing: one unknown id, nothing written.
        let unknown = Uuid::from_u128(99);
        match store
            .update(p, &[(target(2).target_id, disable()), (unknown, disable())])
            .await
        {
            Err(StoreError::NotFound(ids)) => assert_eq!(ids, vec![unknown]),
            other => panic!("{other:?}"),
        }
        let two = store.get(p, target(2).target_id).await.ok().flatten();
        assert_eq!(two.map(|t| t.is_enabled), Some(true));

        assert_eq!(
            store.delete(p, target(2).target_id).await.ok().flatten(),
            Some(target(2))
        );
        assert_eq!(store.delete(p, target(2).target_id).await.ok(), Some(None));
        assert_eq!(store.list(p).await.map(|l| l.len()).ok(), Some(1));
    }

    /// 50 concurrent updates, each to a different field or target, from `stores` in turn:
    /// every one must be in the final state.
    async fn no_lost_updates<S: TargetStore>(stores: Vec<Arc<S>>) {
        let p = Uuid::new_v4();
        for n in 1..=5 {
            stores[0]
                .create(p, &target(n))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut tasks = Vec::new();
        for i in 0..50u128 {
            let store = stores[i as usize % stores.len()].clone();
            let id = target(i % 5 + 1).target_id;
            let patch = match i / 5 {
                0 => disable(),
                1 => rename(&format!("renamed {}", i % 5 + 1)),
                2 => TargetPatch {
                    plan_count: Some(Some(7)),
                    ..TargetPatch::default()
                },
                3 => TargetPatch {
                    participant_count: Some(Some(9)),
                    ..TargetPatch::default()
                },
                4 => TargetPatch {
                    external_id: Some("ext".into()),
                    ..TargetPatch::default()
                },
                5 => TargetPatch {
                    kind: Some(TargetKind::Channel),
                    ..TargetPatch::default()
                },
                6 => TargetPatch {
                    parent_target_id: Some(Some(Uuid::from_u128(77))),
                    ..TargetPatch::default()
                },
                // The last rounds repeat no-ops, racing the writes above.
                _ => TargetPatch::default(),
            };
            tasks.push(tokio::spawn(async move {
                store.update(p, &[(id, patch)]).await.map(|_| ())
            }));
        }
        for t in tasks {
            t.await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        for n in 1..=5 {
            let t = stores[0]
                .get(p, target(n).target_id)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("target {n} gone"));
            assert!(!t.is_enabled, "{t:?}");
            assert_eq!(t.target_name, format!("renamed {n}"));
            assert_eq!((t.plan_count, t.participant_count), (Some(7), Some(9)));
            assert_eq!(t.external_id, "ext");
            assert_eq!(t.kind, TargetKind::Channel);
            assert_eq!(t.parent_target_id, Some(Uuid::from_u128(77)));
        }
    }

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        contract(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn memory_store_loses_no_concurrent_update() {
        no_lost_updates(vec![Arc::new(MemoryStore::default())]).await;
    }

    #[tokio::test]
    async fn redis_store_keeps_the_contract_and_loses_no_update() {
        let Some(server) = redis_server::RedisServer::start() else {
            eprintln!("skipped: no redis-server on PATH");
            return;
        };
        let names = RedisNames::new(format!("t{}", Uuid::new_v4().simple()));
        let mut stores = Vec::new();
        // Two clients: two "processes" racing on the same hash, so the compare-and-set retries.
        for _ in 0..2 {
            let client = crate::redis::connect(&server.url(), Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            stores.push(Arc::new(RedisStore::new(client, &names)));
        }
        contract(stores[0].as_ref()).await;
        no_lost_updates(stores.clone()).await;
        let raw: HashMap<String, String> = stores[0]
            .client
            .hgetall(stores[0].key(Uuid::nil()))
            .await
            .unwrap_or_default();
        assert!(raw.is_empty());
    }

    /// A throwaway `redis-server` on a free port, killed on drop (like redis-rs's `redis-test`).
    mod redis_server {
        use std::net::TcpListener;
        use std::process::{Child, Command, Stdio};
        use std::time::{Duration, Instant};

        pub struct RedisServer {
            child: Child,
            port: u16,
        }

        impl RedisServer {
            /// `None` when `redis-server` is not installed.
            pub fn start() -> Option<RedisServer> {
                let port = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .ok()?;
                let child = Command::new("redis-server")
                    .args([
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                    ])
                    .args(["--appendonly", "no"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()?;
                let server = RedisServer { child, port };
                let deadline = Instant::now() + Duration::from_secs(10);
                while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                    assert!(
                        Instant::now() < deadline,
                        "redis-server did not listen within 10s"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Some(server)
            }

            pub fn url(&self) -> String {
                format!("redis://127.0.0.1:{}", self.port)
            }
        }

        impl Drop for RedisServer {
            fn drop(&mut self) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}
