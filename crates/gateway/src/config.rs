//! The node's configuration: command-line flags and `LIVEGATE_*` environment variables, with
//! documented defaults, validated once at startup into typed values.
//!
//! Environment is read here and nowhere else. A value that does not parse is an error, never a
//! warning plus the default; [`ServeArgs::validate`] reports every bad value at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use livegate_protocol::Channel;
use uuid::Uuid;

use livegate_auth::{KeySource, SeveralKeySources, TokenVerifier, VerifierSettings};
use livegate_publisher::targets_api::ApiKeys;

/// The well-known development secret `--dev` uses when no key is configured. Never use it in production.
pub const DEV_JWT_SECRET: &str = "livegate-dev-secret-do-not-use-in-production";
/// The development publish key `--dev` uses when none is configured.
pub const DEV_PUBLISH_API_KEY: &str = "livegate-dev-publish-key";
/// The project the development token is minted for.
pub const DEV_PROJECT_ID: Uuid = Uuid::from_u128(0x1111_1111_1111_4111_8111_1111_1111_1111);

#[derive(Debug, Parser)]
#[command(
    name = "livegate",
    version,
    about = "A horizontally scaled Socket.IO gateway for live updates"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway node.
    Serve(Box<ServeArgs>),
    /// Print a signed user JWT for development (like Centrifugo's `gentoken`).
    DevToken(DevTokenArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// In-process: one node, no external service (registries and revocations in memory).
    Embedded,
    /// Any number of nodes on one Redis (or Redis Cluster with `--redis-sharded`).
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `livegate serve`. Every flag has a `LIVEGATE_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (HTTP, Socket.IO and the publish API share it).
    #[arg(long, env = "LIVEGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Development mode: use a well-known JWT secret and publish key where none is configured,
    /// and print a ready-to-use token. Never in production.
    #[arg(long, env = "LIVEGATE_DEV", default_value_t = false)]
    pub dev: bool,

    /// Where publications, registries and revocations live.
    #[arg(long, env = "LIVEGATE_ENGINE", value_enum, default_value = "embedded")]
    pub engine: EngineKind,

    /// Redis URL (`redis://host:6379`, `redis-cluster://host:7000` for a cluster), with `--engine redis`.
    #[arg(
        long,
        env = "LIVEGATE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Prefix of every Redis key and channel.
    #[arg(long, env = "LIVEGATE_REDIS_PREFIX", default_value = "livegate")]
    pub redis_prefix: String,

    /// Sharded pub/sub (`SSUBSCRIBE`; publishers use `SPUBLISH`), for Redis Cluster.
    #[arg(long, env = "LIVEGATE_REDIS_SHARDED", default_value_t = false)]
    pub redis_sharded: bool,

    /// Timeout of Redis commands: registry reads, subscribe confirmations.
    #[arg(long, env = "LIVEGATE_REDIS_TIMEOUT", default_value = "1s")]
    pub redis_timeout: String,

    /// How long a project's channel stays subscribed after its last socket left (under 5s).
    #[arg(long, env = "LIVEGATE_UNSUBSCRIBE_GRACE", default_value = "2s")]
    pub unsubscribe_grace: String,

    /// Shared secret for HS256/HS384/HS512 user tokens.
    #[arg(long, env = "LIVEGATE_JWT_HMAC_SECRET", hide_env_values = true)]
    pub jwt_hmac_secret: Option<String>,

    /// PEM public key (RSA, EC P-256 or Ed25519) for RS256/ES256/EdDSA user tokens.
    #[arg(long, env = "LIVEGATE_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JWKS document (a file); the key is chosen by the token's `kid`.
    #[arg(long, env = "LIVEGATE_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// JWKS document (an http or https URL), fetched when first needed, every 5 minutes, and
    /// when a token names a `kid` it lacks (at most every 5 s); the key is chosen by `kid`.
    #[arg(long, env = "LIVEGATE_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Accepted token algorithms, comma separated (the explicit allow-list). Default: HS256,HS384,HS512
    /// with a secret; the key's own algorithm with a PEM key; RS256,ES256,EdDSA with a JWKS.
    #[arg(long, env = "LIVEGATE_JWT_ALGORITHMS", value_delimiter = ',')]
    pub jwt_algorithms: Vec<String>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "LIVEGATE_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "LIVEGATE_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock leeway for `exp` and `nbf`.
    #[arg(long, env = "LIVEGATE_JWT_LEEWAY", default_value = "30s")]
    pub jwt_leeway: String,

    /// Bearer key of `POST /api/v1/publish` and `POST /api/v1/revoke`; both are off without one.
    #[arg(long, env = "LIVEGATE_PUBLISH_API_KEY", hide_env_values = true)]
    pub publish_api_key: Option<String>,

    /// Transport heartbeat: how often the server pings.
    #[arg(long, env = "LIVEGATE_PING_INTERVAL", default_value = "25s")]
    pub ping_interval: String,

    /// Transport heartbeat: how long a pong may take before the connection is closed.
    #[arg(long, env = "LIVEGATE_PING_TIMEOUT", default_value = "30s")]
    pub ping_timeout: String,

    /// Application idle timeout: a socket that sends no packet for this long is disconnected.
    #[arg(long, env = "LIVEGATE_IDLE_TIMEOUT", default_value = "9m")]
    pub idle_timeout: String,

    /// How long an Engine.IO session may stay without a successful namespace connect.
    #[arg(long, env = "LIVEGATE_CONNECT_TIMEOUT", default_value = "5s")]
    pub connect_timeout: String,

    /// Subscriptions one socket may hold (whole-project channels count).
    #[arg(long, env = "LIVEGATE_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub max_subscriptions: usize,

    /// Channels this node serves, comma separated.
    #[arg(
        long,
        env = "LIVEGATE_CHANNELS",
        value_delimiter = ',',
        default_value = "payment-requests,targets,payment-methods"
    )]
    pub channels: Vec<String>,

    /// Permission a token needs per channel, as `channel=permission`, comma separated (none by
    /// default; the permission `all` grants every channel).
    #[arg(long, env = "LIVEGATE_CHANNEL_PERMISSIONS", value_delimiter = ',')]
    pub channel_permissions: Vec<String>,

    /// Outbound packets one socket may have queued; past it, its packets are dropped and a socket
    /// still full at the next heartbeat is closed (a slow consumer).
    #[arg(long, env = "LIVEGATE_SOCKET_BUFFER", default_value_t = 128)]
    pub socket_buffer: usize,

    /// How long `POST /api/v1/revoke` keeps a session revoked (at least the token lifetime).
    #[arg(long, env = "LIVEGATE_REVOCATION_TTL", default_value = "24h")]
    pub revocation_ttl: String,

    /// Largest publication accepted from the publish API, in bytes.
    #[arg(long, env = "LIVEGATE_MAX_PUBLICATION_BYTES", default_value_t = 65536)]
    pub max_publication_bytes: usize,

    /// Serve the targets REST API (`/v2/projects/{project_id}/targets`) in-process, with an
    /// in-memory store and this node's engine as publisher. Needs the embedded engine (on Redis,
    /// run `livegate-targets`). Default: on with `--dev` and the embedded engine.
    #[arg(long, env = "LIVEGATE_TARGETS_API", action = clap::ArgAction::Set)]
    pub targets_api: Option<bool>,

    /// Per-project API keys of the in-process targets API, `project_uuid=key`, comma separated
    /// (user tokens are accepted too).
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub targets_api_keys: Vec<String>,

    /// Graceful drain: after SIGTERM, how long closing this node's connections may take (new
    /// handshakes are refused from the start). `0s` closes them all at once.
    #[arg(long, env = "LIVEGATE_DRAIN_WINDOW", default_value = "10s")]
    pub drain_window: String,

    /// Graceful drain: in how many batches, evenly spaced over the window, connections are closed.
    #[arg(long, env = "LIVEGATE_DRAIN_BATCHES", default_value_t = 10)]
    pub drain_batches: u32,

    /// A TOML file of settings: keys are the long flag names (`redis_url = "…"` or
    /// `redis-url = "…"`). Flags win over environment variables, which win over the file.
    #[arg(long, env = "LIVEGATE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "LIVEGATE_LOG", default_value = "info")]
    pub log: String,

    /// Log line format.
    #[arg(long, env = "LIVEGATE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Flags of `livegate dev-token`.
#[derive(Debug, Clone, Args)]
pub struct DevTokenArgs {
    /// The user id (`sub`).
    #[arg(long, default_value = "dev-user")]
    pub user: String,
    /// A project the token may open sessions for; repeat for several.
    #[arg(long = "project", default_values_t = vec![DEV_PROJECT_ID])]
    pub projects: Vec<Uuid>,
    /// Session id (`sid`); random when absent.
    #[arg(long)]
    pub sid: Option<String>,
    /// Permissions (`permissions` claim), comma separated.
    #[arg(long, value_delimiter = ',')]
    pub permissions: Vec<String>,
    /// Lifetime of the token.
    #[arg(long, default_value = "24h")]
    pub ttl: String,
    /// HMAC secret to sign with; the development secret when absent.
    #[arg(long, env = "LIVEGATE_JWT_HMAC_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// The validated configuration the node runs with.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub redis: RedisConfig,
    pub dev: bool,
    pub engine: EngineKind,
    pub verifier: TokenVerifier,
    /// The HMAC secret, kept only in development mode to print a token.
    pub dev_secret: Option<String>,
    pub publish_api_key: Option<String>,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_subscriptions: usize,
    pub socket_buffer: usize,
    pub channels: Vec<Channel>,
    pub channel_permissions: BTreeMap<Channel, String>,
    pub revocation_ttl: Duration,
    pub max_publication_bytes: usize,
    /// Graceful drain on SIGTERM.
    pub drain: crate::drain::DrainSettings,
    /// `Some(api keys)` when the targets REST API is served in-process (`LIVEGATE_TARGETS_API`).
    pub targets_api: Option<ApiKeys>,
}

impl std::fmt::Debug for Config {
    /// Secrets never reach logs: the key and publish key are only said to be set.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("dev", &self.dev)
            .field("engine", &self.engine)
            .field("verifier", &self.verifier)
            .field(
                "publish_api_key",
                &self.publish_api_key.as_ref().map(|_| "<set>"),
            )
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("channels", &self.channels)
            .field("channel_permissions", &self.channel_permissions)
            .finish_non_exhaustive()
    }
}

/// The Redis engine's settings (used with `--engine redis`).
#[derive(Clone)]
pub struct RedisConfig {
    pub url: String,
    pub prefix: String,
    pub sharded: bool,
    pub timeout: Duration,
    pub unsubscribe_grace: Duration,
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

/// Parses a duration such as `9m`, `30s` or `500ms`; a bad value is reported once, as `None`.
pub fn parse_duration(name: &str, value: &str, errors: &mut Vec<String>) -> Option<Duration> {
    match humantime::parse_duration(value) {
        Ok(d) => Some(d),
        Err(e) => {
            errors.push(format!("{name}: {value:?} is not a duration ({e})"));
            None
        }
    }
}

/// Parses a duration that must be at least `min`.
fn duration_at_least(name: &str, value: &str, min: Duration, errors: &mut Vec<String>) -> Duration {
    match parse_duration(name, value, errors) {
        Some(d) if d < min => {
            errors.push(format!(
                "{name}: must be at least {}",
                humantime::format_duration(min)
            ));
            min
        }
        Some(d) => d,
        None => min,
    }
}

impl ServeArgs {
    /// Checks every value and builds the typed [`Config`], or lists every problem.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let listen = self.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            errors.push(format!(
                "LIVEGATE_LISTEN: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            ));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let ms = Duration::from_millis;
        let ping_interval = duration_at_least(
            "LIVEGATE_PING_INTERVAL",
            &self.ping_interval,
            ms(100),
            &mut errors,
        );
        let ping_timeout = duration_at_least(
            "LIVEGATE_PING_TIMEOUT",
            &self.ping_timeout,
            ms(100),
            &mut errors,
        );
        let idle_timeout = duration_at_least(
            "LIVEGATE_IDLE_TIMEOUT",
            &self.idle_timeout,
            ms(1000),
            &mut errors,
        );
        let connect_timeout = duration_at_least(
            "LIVEGATE_CONNECT_TIMEOUT",
            &self.connect_timeout,
            ms(100),
            &mut errors,
        );
        let revocation_ttl = duration_at_least(
            "LIVEGATE_REVOCATION_TTL",
            &self.revocation_ttl,
            ms(1000),
            &mut errors,
        );
        let leeway = parse_duration("LIVEGATE_JWT_LEEWAY", &self.jwt_leeway, &mut errors)
            .unwrap_or_default();
        let redis_timeout = duration_at_least(
            "LIVEGATE_REDIS_TIMEOUT",
            &self.redis_timeout,
            ms(50),
            &mut errors,
        );
        let unsubscribe_grace = parse_duration(
            "LIVEGATE_UNSUBSCRIBE_GRACE",
            &self.unsubscribe_grace,
            &mut errors,
        )
        .unwrap_or_default();
        if unsubscribe_grace >= Duration::from_secs(5) {
            errors.push(
                "LIVEGATE_UNSUBSCRIBE_GRACE: must be under 5s (the contract's bound)".to_owned(),
            );
        }
        if self.engine == EngineKind::Redis
            && fred::prelude::Config::from_url(&self.redis_url).is_err()
        {
            errors.push("LIVEGATE_REDIS_URL: not a Redis URL".to_owned());
        }
        if self.redis_prefix.is_empty() {
            errors.push("LIVEGATE_REDIS_PREFIX: must not be empty".to_owned());
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log) {
            errors.push(format!(
                "LIVEGATE_LOG: {:?} is not a log filter ({e})",
                self.log
            ));
        }
        if self.max_subscriptions == 0 {
            errors.push("LIVEGATE_MAX_SUBSCRIPTIONS: must be at least 1".to_owned());
        }
        if self.socket_buffer < 8 {
            errors.push("LIVEGATE_SOCKET_BUFFER: must be at least 8".to_owned());
        }
        let drain_window = parse_duration("LIVEGATE_DRAIN_WINDOW", &self.drain_window, &mut errors)
            .unwrap_or_default();
        if self.drain_batches == 0 {
            errors.push("LIVEGATE_DRAIN_BATCHES: must be at least 1".to_owned());
        }
        if self.max_publication_bytes < 1024 {
            errors.push("LIVEGATE_MAX_PUBLICATION_BYTES: must be at least 1024".to_owned());
        }

        let mut channels = Vec::new();
        for name in self
            .channels
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            match name.parse::<Channel>() {
                Ok(c) if !channels.contains(&c) => channels.push(c),
                Ok(_) => {}
                Err(e) => errors.push(format!("LIVEGATE_CHANNELS: {e}")),
            }
        }
        channels.sort_by_key(|c| Channel::ALL.iter().position(|x| x == c));

        let mut channel_permissions = BTreeMap::new();
        for entry in self
            .channel_permissions
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            match entry.split_once('=') {
                Some((channel, permission)) if !permission.trim().is_empty() => {
                    match channel.trim().parse::<Channel>() {
                        Ok(c) => {
                            channel_permissions.insert(c, permission.trim().to_owned());
                        }
                        Err(e) => errors.push(format!("LIVEGATE_CHANNEL_PERMISSIONS: {e}")),
                    }
                }
                _ => errors.push(format!(
                    "LIVEGATE_CHANNEL_PERMISSIONS: {entry:?} is not channel=permission"
                )),
            }
        }

        let key_source = match KeySource::select(
            self.jwt_hmac_secret.as_deref(),
            self.jwt_public_key_file.as_deref(),
            self.jwks_file.as_deref(),
            self.jwks_url.as_deref(),
        ) {
            Ok(Some(source)) => Some(source),
            Ok(None) if self.dev => Some(KeySource::Secret(DEV_JWT_SECRET.to_owned())),
            Ok(None) => {
                errors.push(
                    "no token key: set LIVEGATE_JWT_HMAC_SECRET, LIVEGATE_JWT_PUBLIC_KEY_FILE, \
                     LIVEGATE_JWKS_FILE or LIVEGATE_JWKS_URL (or --dev for a development secret)"
                        .to_owned(),
                );
                None
            }
            Err(SeveralKeySources) => {
                errors.push(
                    "set exactly one of LIVEGATE_JWT_HMAC_SECRET, LIVEGATE_JWT_PUBLIC_KEY_FILE, \
                     LIVEGATE_JWKS_FILE, LIVEGATE_JWKS_URL"
                        .to_owned(),
                );
                None
            }
        };
        let dev_token_secret = match &key_source {
            Some(KeySource::Secret(secret)) if self.dev => Some(secret.clone()),
            _ => None,
        };
        let verifier = key_source.and_then(|source| {
            let settings = VerifierSettings::from_config(
                &self.jwt_algorithms,
                self.jwt_issuer.as_deref(),
                self.jwt_audience.as_deref(),
                leeway,
            );
            TokenVerifier::new(source, settings)
                .map_err(|e| errors.push(format!("token key: {e}")))
                .ok()
        });

        let mut publish_api_key = self.publish_api_key.clone().filter(|k| !k.is_empty());
        if publish_api_key.is_none() && self.dev {
            publish_api_key = Some(DEV_PUBLISH_API_KEY.to_owned());
        }

        let targets_api = self.targets_api_config(&mut errors);

        match verifier {
            Some(verifier) if errors.is_empty() => Ok(Config {
                listen,
                redis: RedisConfig {
                    url: self.redis_url.clone(),
                    prefix: self.redis_prefix.clone(),
                    sharded: self.redis_sharded,
                    timeout: redis_timeout,
                    unsubscribe_grace,
                },
                dev: self.dev,
                engine: self.engine,
                verifier,
                dev_secret: dev_token_secret,
                publish_api_key,
                ping_interval,
                ping_timeout,
                idle_timeout,
                connect_timeout,
                max_subscriptions: self.max_subscriptions,
                socket_buffer: self.socket_buffer,
                channels,
                channel_permissions,
                revocation_ttl,
                max_publication_bytes: self.max_publication_bytes,
                drain: crate::drain::DrainSettings {
                    window: drain_window,
                    batches: self.drain_batches,
                },
                targets_api,
            }),
            _ => Err(ConfigError(errors)),
        }
    }
}

impl ServeArgs {
    /// Whether the in-process targets API is on, and its API keys. Explicitly on with the Redis
    /// engine is an error (its in-memory store would differ per node); `--dev` alone turns it
    /// on only on the embedded engine.
    fn targets_api_config(&self, errors: &mut Vec<String>) -> Option<ApiKeys> {
        let on = match (self.targets_api, self.engine) {
            (Some(true), EngineKind::Redis) => {
                errors.push(
                    "LIVEGATE_TARGETS_API: needs the embedded engine; with Redis, run \
                     livegate-targets beside the gateways"
                        .to_owned(),
                );
                false
            }
            (Some(on), _) => on,
            (None, engine) => self.dev && engine == EngineKind::Embedded,
        };
        let keys = ApiKeys::parse(&self.targets_api_keys).unwrap_or_else(|bad| {
            errors.extend(
                bad.into_iter()
                    .map(|e| format!("LIVEGATE_TARGETS_API_KEYS: {e}")),
            );
            ApiKeys::default()
        });
        on.then_some(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["livegate", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Serve(a)) => *a,
            other => panic!("unexpected parse: {other:?}"),
        }
    }

    #[test]
    fn dev_mode_fills_in_keys() {
        let c = args(&["--dev"])
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.publish_api_key.as_deref(), Some(DEV_PUBLISH_API_KEY));
        assert_eq!(c.idle_timeout, Duration::from_secs(540));
        assert_eq!(c.channels, Channel::ALL.to_vec());
        assert_eq!(c.max_subscriptions, 100);
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let e = args(&[
            "--listen",
            "nowhere",
            "--idle-timeout",
            "soon",
            "--channels",
            "chat",
            "--channel-permissions",
            "targets",
        ])
        .validate()
        .err()
        .unwrap_or_else(|| panic!("must fail"));
        let text = e.to_string();
        for needle in [
            "LIVEGATE_LISTEN",
            "LIVEGATE_IDLE_TIMEOUT",
            "LIVEGATE_CHANNELS",
            "LIVEGATE_CHANNEL_PERMISSIONS",
            "no token key",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn permissions_parse_per_channel() {
        let c = args(&[
            "--dev",
            "--channel-permissions",
            "targets=targets:read,payment-requests=payments",
        ])
        .validate()
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.channel_permissions
                .get(&Channel::Targets)
                .map(String::as_str),
            Some("targets:read")
        );
        assert_eq!(c.channel_permissions.get(&Channel::PaymentMethods), None);
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = args(&[
            "--jwt-hmac-secret",
            "s3cr3t-value",
            "--publish-api-key",
            "pk-value",
        ])
        .validate()
        .unwrap_or_else(|e| panic!("{e}"));
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cr3t-value") && !text.contains("pk-value"),
            "{text}"
        );
    }

    #[test]
    fn targets_api_follows_dev_and_needs_the_embedded_engine() {
        let on = |argv: &[&str]| args(argv).validate().map(|c| c.targets_api.is_some());
        assert_eq!(on(&["--dev"]).ok(), Some(true));
        assert_eq!(on(&["--dev", "--targets-api", "false"]).ok(), Some(false));
        assert_eq!(on(&["--jwt-hmac-secret", "s"]).ok(), Some(false));
        assert_eq!(
            on(&["--jwt-hmac-secret", "s", "--targets-api", "true"]).ok(),
            Some(true)
        );
        assert_eq!(on(&["--dev", "--engine", "redis"]).ok(), Some(false));
        let e = on(&["--dev", "--engine", "redis", "--targets-api", "true"]).err();
        assert!(e.is_some_and(|e| e.to_string().contains("LIVEGATE_TARGETS_API")));
        let e = on(&["--dev", "--targets-api-keys", "nope"]).err();
        assert!(e.is_some_and(|e| e.to_string().contains("LIVEGATE_TARGETS_API_KEYS")));
    }
}
