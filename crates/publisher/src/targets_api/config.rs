//! The configuration of the `livegate-targets` binary: flags and `LIVEGATE_TARGETS_*`
//! environment variables, with documented defaults, validated once into typed values.
//!
//! The key flags mirror the gateway's (`--jwt-hmac-secret`, `--jwt-public-key-file`,
//! `--jwks-file`, `--jwt-algorithms`, `--jwt-issuer`, `--jwt-audience`, `--jwt-leeway`): give this
//! service the same values as the gateway, so the same user tokens work on both.
//! [`TargetsArgs::validate`] reports every bad value at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use livegate_auth::{KeySource, SeveralKeySources, TokenVerifier, VerifierSettings};
use livegate_protocol::RedisNames;

use super::auth::ApiKeys;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "livegate-targets",
    version,
    about = "The targets REST API on Redis: stores targets and publishes their live events"
)]
pub struct TargetsArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_LISTEN",
        default_value = "127.0.0.1:8090"
    )]
    pub listen: String,

    /// Redis URL (`redis://host:6379`, `redis-cluster://host:7000` for a cluster): where targets
    /// are stored and events published.
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    pub redis_url: String,

    /// Prefix of every Redis key and channel (the gateways' `LIVEGATE_REDIS_PREFIX`).
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_REDIS_PREFIX",
        default_value = "livegate"
    )]
    pub redis_prefix: String,

    /// Publish with `SPUBLISH` (Redis Cluster with sharded pub/sub on the gateways).
    #[arg(long, env = "LIVEGATE_TARGETS_REDIS_SHARDED", default_value_t = false)]
    pub redis_sharded: bool,

    /// Timeout of each Redis command.
    #[arg(long, env = "LIVEGATE_TARGETS_REDIS_TIMEOUT", default_value = "2s")]
    pub redis_timeout: String,

    /// Shared secret for HS256/HS384/HS512 user tokens.
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_HMAC_SECRET", hide_env_values = true)]
    pub jwt_hmac_secret: Option<String>,

    /// PEM public key (RSA, EC P-256 or Ed25519) for RS256/ES256/EdDSA user tokens.
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<PathBuf>,

    /// JWKS document (a file); the key is chosen by the token's `kid`.
    #[arg(long, env = "LIVEGATE_TARGETS_JWKS_FILE")]
    pub jwks_file: Option<PathBuf>,

    /// JWKS document (an http or https URL), fetched as the gateway's `LIVEGATE_JWKS_URL`.
    #[arg(long, env = "LIVEGATE_TARGETS_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Accepted token algorithms, comma separated (default: the key's family, as the gateway).
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_ALGORITHMS", value_delimiter = ',')]
    pub jwt_algorithms: Vec<String>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Clock leeway for `exp` and `nbf`.
    #[arg(long, env = "LIVEGATE_TARGETS_JWT_LEEWAY", default_value = "30s")]
    pub jwt_leeway: String,

    /// Per-project API keys, `project_uuid=key`, comma separated (keys of at least 16 characters).
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Refuse user tokens whose session is revoked (`{prefix}:revoked-session:{sid}` exists).
    #[arg(
        long,
        env = "LIVEGATE_TARGETS_CHECK_REVOCATIONS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub check_revocations: bool,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "LIVEGATE_TARGETS_LOG", default_value = "info")]
    pub log: String,
}

/// The validated configuration.
#[derive(Clone)]
pub struct TargetsConfig {
    pub listen: SocketAddr,
    pub redis_url: String,
    pub names: RedisNames,
    pub sharded: bool,
    pub redis_timeout: Duration,
    /// `None` when only API keys are accepted.
    pub verifier: Option<TokenVerifier>,
    pub api_keys: ApiKeys,
    pub check_revocations: bool,
}

impl std::fmt::Debug for TargetsConfig {
    /// The Redis URL may hold a password and the keys are secrets: neither is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetsConfig")
            .field("listen", &self.listen)
            .field("names", &self.names)
            .field("sharded", &self.sharded)
            .field("verifier", &self.verifier)
            .field("api_keys_for", &self.api_keys)
            .field("check_revocations", &self.check_revocations)
            .finish_non_exhaustive()
    }
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  {}", .0.join("\n  "))]
pub struct ConfigError(pub Vec<String>);

impl TargetsArgs {
    pub fn validate(&self) -> Result<TargetsConfig, ConfigError> {
        let mut errors = Vec::new();
        let listen = self.listen.parse::<SocketAddr>().map_err(|_| {
            errors.push(format!(
                "LIVEGATE_TARGETS_LISTEN: {:?} is not an address like 127.0.0.1:8090",
                self.listen
            ))
        });
        let mut duration = |name: &str, value: &str| {
            humantime::parse_duration(value)
                .map_err(|e| errors.push(format!("{name}: {value:?} is not a duration ({e})")))
                .unwrap_or_default()
        };
        let redis_timeout = duration("LIVEGATE_TARGETS_REDIS_TIMEOUT", &self.redis_timeout);
        let leeway = duration("LIVEGATE_TARGETS_JWT_LEEWAY", &self.jwt_leeway);
        if redis_timeout < Duration::from_millis(50) {
            errors.push("LIVEGATE_TARGETS_REDIS_TIMEOUT: must be at least 50ms".to_owned());
        }
        if fred::prelude::Config::from_url(&self.redis_url).is_err() {
            errors.push("LIVEGATE_TARGETS_REDIS_URL: not a Redis URL".to_owned());
        }
        if self.redis_prefix.is_empty() {
            errors.push("LIVEGATE_TARGETS_REDIS_PREFIX: must not be empty".to_owned());
        }
        let api_keys = ApiKeys::parse(&self.api_keys).unwrap_or_else(|bad| {
            errors.extend(
                bad.into_iter()
                    .map(|e| format!("LIVEGATE_TARGETS_API_KEYS: {e}")),
            );
            ApiKeys::default()
        });

        let source = KeySource::select(
            self.jwt_hmac_secret.as_deref(),
            self.jwt_public_key_file.as_deref(),
            self.jwks_file.as_deref(),
            self.jwks_url.as_deref(),
        )
        .unwrap_or_else(|SeveralKeySources| {
            errors.push(
                "set at most one of LIVEGATE_TARGETS_JWT_HMAC_SECRET, \
                 LIVEGATE_TARGETS_JWT_PUBLIC_KEY_FILE, LIVEGATE_TARGETS_JWKS_FILE, \
                 LIVEGATE_TARGETS_JWKS_URL"
                    .to_owned(),
            );
            None
        });
        let verifier = source.and_then(|source| {
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
        if verifier.is_none() && api_keys.is_empty() && errors.is_empty() {
            errors.push(
                "no credentials would be accepted: set a token key (LIVEGATE_TARGETS_JWT_HMAC_SECRET, \
                 LIVEGATE_TARGETS_JWT_PUBLIC_KEY_FILE, LIVEGATE_TARGETS_JWKS_FILE or \
                 LIVEGATE_TARGETS_JWKS_URL) and/or \
                 LIVEGATE_TARGETS_API_KEYS"
                    .to_owned(),
            );
        }
        match listen {
            Ok(listen) if errors.is_empty() => Ok(TargetsConfig {
                listen,
                redis_url: self.redis_url.clone(),
                names: RedisNames::new(self.redis_prefix.clone()),
                sharded: self.redis_sharded,
                redis_timeout,
                verifier,
                api_keys,
                check_revocations: self.check_revocations,
            }),
            _ => Err(ConfigError(errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> TargetsArgs {
        let mut all = vec!["livegate-targets"];
        all.extend_from_slice(argv);
        TargetsArgs::try_parse_from(all).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_secret_or_keys_is_enough() {
        let c = args(&["--jwt-hmac-secret", "s"])
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.verifier.is_some() && c.api_keys.is_empty() && c.check_revocations);
        let c = args(&[
            "--api-keys",
            "11111111-1111-4111-8111-111111111111=0123456789abcdef",
            "--check-revocations",
            "false",
        ])
        .validate()
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.verifier.is_none() && !c.api_keys.is_empty() && !c.check_revocations);
        assert!(!format!("{c:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let e = args(&[
            "--listen",
            "nowhere",
            "--redis-timeout",
            "soon",
            "--api-keys",
            "x=y",
            "--jwt-hmac-secret",
            "s",
            "--jwks-file",
            "/nope",
        ])
        .validate()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        for needle in [
            "LIVEGATE_TARGETS_LISTEN",
            "LIVEGATE_TARGETS_REDIS_TIMEOUT",
            "LIVEGATE_TARGETS_API_KEYS",
            "at most one of",
        ] {
            assert!(e.contains(needle), "{needle} missing from {e}");
        }
        let none = args(&[]).validate().err().map(|e| e.to_string());
        assert!(none.unwrap_or_default().contains("no credentials"));
    }
}
