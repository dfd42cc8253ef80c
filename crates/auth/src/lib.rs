//! livegate-auth — user-token verification: the key (HMAC secret, PEM public key, or a JWKS
//! document from a file or a URL with the key chosen by `kid`: [`jwks`]), the explicit
//! algorithm allow-list, and the claims rules of CONTRACT §1.
//!
//! `alg: none` never parses, and algorithm confusion is impossible: every accepted algorithm
//! belongs to the configured key's family, checked at startup.

pub mod jwks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use jwks::{JwkKeys, RemoteJwks};

/// Where the verification key comes from.
#[derive(Clone)]
pub enum KeySource {
    Secret(String),
    PemFile(PathBuf),
    JwksFile(PathBuf),
    JwksUrl(String),
}

/// Two or more key sources were configured where one is allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct SeveralKeySources;

impl KeySource {
    /// The one key source among those configured (empty values count as unset): `Ok(None)` when
    /// there is none.
    pub fn select(
        hmac_secret: Option<&str>,
        public_key_file: Option<&Path>,
        jwks_file: Option<&Path>,
        jwks_url: Option<&str>,
    ) -> Result<Option<KeySource>, SeveralKeySources> {
        let set = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        let mut sources = [
            set(hmac_secret).map(KeySource::Secret),
            public_key_file.map(|p| KeySource::PemFile(p.to_owned())),
            jwks_file.map(|p| KeySource::JwksFile(p.to_owned())),
            set(jwks_url).map(KeySource::JwksUrl),
        ]
        .into_iter()
        .flatten();
        match (sources.next(), sources.next()) {
            (one, None) => Ok(one),
            (Some(_), Some(_)) | (None, Some(_)) => Err(SeveralKeySources),
        }
    }
}

/// The knobs of token validation.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The allow-list as configured; empty means the key's default.
    pub algorithms: Vec<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
}

impl VerifierSettings {
    /// From configuration values: algorithm names are trimmed, and empty strings mean unset.
    pub fn from_config(
        algorithms: &[String],
        issuer: Option<&str>,
        audience: Option<&str>,
        leeway: Duration,
    ) -> Self {
        let set = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        VerifierSettings {
            algorithms: algorithms
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            issuer: set(issuer),
            audience: set(audience),
            leeway,
        }
    }
}

/// A key family, as far as the allow-list is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    match alg.family() {
        AlgorithmFamily::Hmac => Family::Hmac,
        AlgorithmFamily::Rsa => Family::Rsa,
        AlgorithmFamily::Ec => Family::Ec,
        AlgorithmFamily::Ed => Family::Ed,
    }
}

enum Keys {
    Single(DecodingKey),
    /// A JWKS file's keys, by `kid`.
    Jwks(Arc<JwkKeys>),
    /// A JWKS URL's keys, by `kid`, fetched when needed.
    Remote(RemoteJwks),
}

/// Verifies user tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    /// One validation per key family, each listing only the allowed algorithms of that family:
    /// jsonwebtoken refuses a validation whose algorithms do not all fit the key.
    validations: HashMap<Family, Validation>,
    /// For logs: the key kind and allow-list, never the key.
    description: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.inner.description)
    }
}

/// The claims of a valid user token.
#[derive(Debug, Clone)]
pub struct UserClaims {
    pub sub: String,
    /// A display name (`name`, else `preferred_username`), when the token carries one.
    pub name: Option<String>,
    pub sid: String,
    pub projects: Vec<Uuid>,
    pub permissions: Vec<String>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
    #[error("token_use must be \"user\"")]
    NotAUserToken,
}

/// The claims as they arrive; types that the contract leaves loose are checked by hand.
#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    sid: String,
    #[serde(default)]
    token_use: Option<Value>,
    #[serde(default)]
    projects: Option<Value>,
    #[serde(default)]
    permissions: Option<Value>,
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    preferred_username: Option<Value>,
}

impl TokenVerifier {
    /// Loads the key and checks the allow-list against it.
    pub fn new(source: KeySource, settings: VerifierSettings) -> Result<Self, String> {
        let configured = settings
            .algorithms
            .iter()
            .map(|name| {
                Algorithm::from_str(name).map_err(|_| format!("unknown algorithm {name:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (keys, algorithms, kind) = match source {
            KeySource::Secret(secret) => {
                let algs = if configured.is_empty() {
                    vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
                } else {
                    configured
                };
                require_family(&algs, &[Family::Hmac], "an HMAC secret")?;
                (
                    Keys::Single(DecodingKey::from_secret(secret.as_bytes())),
                    algs,
                    "hmac secret".to_owned(),
                )
            }
            KeySource::PemFile(path) => {
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let (key, fam) = pem_key(&pem, configured.first().copied().map(family))?;
                let algs = if configured.is_empty() {
                    vec![match fam {
                        Family::Rsa => Algorithm::RS256,
                        Family::Ec => Algorithm::ES256,
                        Family::Ed | Family::Hmac => Algorithm::EdDSA,
                    }]
                } else {
                    configured
                };
                require_family(&algs, &[fam], "this PEM key")?;
                (Keys::Single(key), algs, "pem public key".to_owned())
            }
            KeySource::JwksFile(path) => {
                let text = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let keys = JwkKeys::parse(&text, &path.display().to_string())?;
                let algs = jwks_algorithms(configured)?;
                (Keys::Jwks(Arc::new(keys)), algs, "jwks file".to_owned())
            }
            KeySource::JwksUrl(url) => {
                let remote = RemoteJwks::new(url)?;
                let algs = jwks_algorithms(configured)?;
                let kind = format!("jwks from {}", remote.url());
                (Keys::Remote(remote), algs, kind)
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        let mut required = vec!["exp", "sub"];
        if settings.issuer.is_some() {
            required.push("iss");
        }
        if settings.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        match &settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
        }
        let mut validations = HashMap::new();
        for alg in &algorithms {
            validations
                .entry(family(*alg))
                .or_insert_with(|| {
                    let mut v = validation.clone();
                    v.algorithms.clear();
                    v
                })
                .algorithms
                .push(*alg);
        }
        let description = format!("{kind}, algorithms {algorithms:?}");
        Ok(TokenVerifier {
            inner: Arc::new(Inner {
                keys,
                validations,
                description,
            }),
        })
    }

    /// Verifies signature, algorithm, time claims, issuer/audience, then the user claims. Only a
    /// JWKS URL makes this wait (for a fetch of the document: see [`jwks`]).
    pub async fn verify(&self, token: &str) -> Result<UserClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token".into()))?;
        let validation = self
            .inner
            .validations
            .get(&family(header.alg))
            .filter(|v| v.algorithms.contains(&header.alg))
            .ok_or_else(|| TokenError::Invalid("algorithm not accepted".into()))?;
        let no_kid = || TokenError::Invalid("the token names no kid".into());
        let jwks = match &self.inner.keys {
            Keys::Single(key) => return decode(token, key, validation),
            Keys::Jwks(keys) => keys.clone(),
            // Only a token that names a kid may make the node fetch the issuer's document.
            Keys::Remote(remote) => {
                remote
                    .keys_for(header.kid.as_deref().ok_or_else(no_kid)?)
                    .await
            }
        };
        let kid = header.kid.ok_or_else(no_kid)?;
        let (key, fam) = jwks
            .get(&kid)
            .ok_or_else(|| TokenError::Invalid("unknown kid".into()))?;
        if family(header.alg) != *fam {
            return Err(TokenError::Invalid("algorithm does not fit the key".into()));
        }
        decode(token, key, validation)
    }
}

/// The allow-list of a JWKS: as configured, else one algorithm of each asymmetric family.
fn jwks_algorithms(configured: Vec<Algorithm>) -> Result<Vec<Algorithm>, String> {
    let algs = if configured.is_empty() {
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    } else {
        configured
    };
    require_family(&algs, &[Family::Rsa, Family::Ec, Family::Ed], "a JWKS")?;
    Ok(algs)
}

/// Checks the signature and the registered claims, then the user claims of CONTRACT §1.
fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<UserClaims, TokenError> {
    let data =
        jsonwebtoken::decode::<RawClaims>(token, key, validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::ImmatureSignature => {
                TokenError::Invalid("the token is not valid yet".into())
            }
            ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
            ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not accepted".into()),
            ErrorKind::MissingRequiredClaim(c) => TokenError::Invalid(format!("missing claim {c}")),
            ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
            ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
            ErrorKind::Json(_) => {
                TokenError::Invalid("missing or mistyped claims (sub, sid)".into())
            }
            _ => TokenError::Invalid("malformed token".into()),
        })?;
    let claims = data.claims;
    if claims.sub.is_empty() || claims.sid.is_empty() {
        return Err(TokenError::Invalid("sub and sid must not be empty".into()));
    }
    if claims.token_use.as_ref().and_then(Value::as_str) != Some("user") {
        return Err(TokenError::NotAUserToken);
    }
    let projects = string_list(claims.projects.as_ref())
        .ok_or_else(|| TokenError::Invalid("projects must be an array of strings".into()))?
        .iter()
        .filter_map(|p| Uuid::parse_str(p).ok())
        .collect();
    let permissions = string_list(claims.permissions.as_ref())
        .ok_or_else(|| TokenError::Invalid("permissions must be an array of strings".into()))?;
    let name = [&claims.name, &claims.preferred_username]
        .into_iter()
        .find_map(|v| v.as_ref().and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_owned);
    Ok(UserClaims {
        name,
        sub: claims.sub,
        sid: claims.sid,
        projects,
        permissions,
    })
}

/// An absent or null list is empty; anything but an array of strings is `None`.
fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

fn require_family(algs: &[Algorithm], allowed: &[Family], what: &str) -> Result<(), String> {
    match algs.iter().find(|a| !allowed.contains(&family(**a))) {
        Some(bad) => Err(format!("algorithm {bad:?} cannot be verified with {what}")),
        None => Ok(()),
    }
}

/// Parses a PEM public key, as the family the allow-list names or as whichever fits.
fn pem_key(pem: &[u8], wanted: Option<Family>) -> Result<(DecodingKey, Family), String> {
    let attempts: &[Family] = match wanted {
        Some(Family::Hmac) => return Err("HMAC algorithms take a secret, not a PEM key".into()),
        Some(f) => match f {
            Family::Rsa => &[Family::Rsa],
            Family::Ec => &[Family::Ec],
            _ => &[Family::Ed],
        },
        None => &[Family::Rsa, Family::Ec, Family::Ed],
    };
    for fam in attempts {
        let key = match fam {
            Family::Rsa => DecodingKey::from_rsa_pem(pem),
            Family::Ec => DecodingKey::from_ec_pem(pem),
            Family::Ed | Family::Hmac => DecodingKey::from_ed_pem(pem),
        };
        if let Ok(key) = key {
            return Ok((key, *fam));
        }
    }
    Err("the PEM file holds no RSA, EC or Ed25519 public key of the configured algorithm".into())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "test-secret";

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(
            KeySource::Secret(SECRET.into()),
            VerifierSettings {
                algorithms: vec![],
                issuer: None,
                audience: None,
                leeway: Duration::from_secs(30),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    fn token(claims: Value, alg: Algorithm) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn good() -> Value {
        json!({"sub":"u1","sid":"s1","exp":now()+60,"token_use":"user",
               "projects":["93425026-6BB8-4F81-A75D-63F538E1A123"],"permissions":["all"]})
    }

    fn with(mut v: Value, k: &str, x: Option<Value>) -> Value {
        if let Some(o) = v.as_object_mut() {
            match x {
                Some(x) => o.insert(k.into(), x),
                None => o.remove(k),
            };
        }
        v
    }

    #[tokio::test]
    async fn accepts_a_user_token_with_each_hmac_algorithm() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let c = verifier()
                .verify(&token(good(), alg))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.sub, "u1");
            assert_eq!(c.projects.len(), 1);
        }
    }

    #[tokio::test]
    async fn classifies_each_failure() {
        let v = verifier();
        assert_eq!(
            v.verify(&token(
                with(good(), "exp", Some(json!(now() - 120))),
                Algorithm::HS256
            ))
            .await
            .err(),
            Some(TokenError::Expired)
        );
        assert!(
            v.verify(&token(
                with(good(), "exp", Some(json!(now() - 10))),
                Algorithm::HS256
            ))
            .await
            .is_ok(),
            "within leeway"
        );
        for missing in ["sub", "sid", "exp"] {
            let r = v
                .verify(&token(with(good(), missing, None), Algorithm::HS256))
                .await;
            assert!(matches!(r, Err(TokenError::Invalid(_))), "{missing}: {r:?}");
        }
        let r = v
            .verify(&token(
                with(good(), "nbf", Some(json!(now() + 600))),
                Algorithm::HS256,
            ))
            .await;
        assert!(matches!(r, Err(TokenError::Invalid(_))));
        for use_ in [
            None,
            Some(json!("api_key")),
            Some(json!("project")),
            Some(json!(1)),
        ] {
            let r = v
                .verify(&token(with(good(), "token_use", use_), Algorithm::HS256))
                .await;
            assert_eq!(r.err(), Some(TokenError::NotAUserToken));
        }
        assert!(matches!(
            v.verify("not.a.jwt").await,
            Err(TokenError::Invalid(_))
        ));
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &good(),
            &EncodingKey::from_secret(b"other"),
        )
        .unwrap_or_default();
        assert!(matches!(
            v.verify(&forged).await,
            Err(TokenError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn alg_none_is_rejected() {
        let header = base64_url(r#"{"alg":"none","typ":"JWT"}"#);
        let body = base64_url(&good().to_string());
        assert!(matches!(
            verifier().verify(&format!("{header}.{body}.")).await,
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn allow_list_must_fit_the_key() {
        let settings = VerifierSettings {
            algorithms: vec!["RS256".into()],
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
        };
        assert!(TokenVerifier::new(KeySource::Secret("s".into()), settings).is_err());
        let settings = VerifierSettings {
            algorithms: vec!["HS257".into()],
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
        };
        assert!(TokenVerifier::new(KeySource::Secret("s".into()), settings).is_err());
    }

    #[tokio::test]
    async fn narrowed_allow_list_rejects_other_hmac_algorithms() {
        let settings = VerifierSettings {
            algorithms: vec!["HS512".into()],
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
        };
        let v = TokenVerifier::new(KeySource::Secret(SECRET.into()), settings)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(v.verify(&token(good(), Algorithm::HS512)).await.is_ok());
        assert!(v.verify(&token(good(), Algorithm::HS256)).await.is_err());
    }

    #[tokio::test]
    async fn issuer_and_audience_when_configured() {
        let settings = VerifierSettings {
            algorithms: vec![],
            issuer: Some("auth".into()),
            audience: Some("live".into()),
            leeway: Duration::ZERO,
        };
        let v = TokenVerifier::new(KeySource::Secret(SECRET.into()), settings)
            .unwrap_or_else(|e| panic!("{e}"));
        let ok = with(
            with(good(), "iss", Some(json!("auth"))),
            "aud",
            Some(json!("live")),
        );
        assert!(v.verify(&token(ok.clone(), Algorithm::HS256)).await.is_ok());
        assert!(
            v.verify(&token(
                with(ok.clone(), "iss", Some(json!("evil"))),
                Algorithm::HS256
            ))
            .await
            .is_err()
        );
        assert!(
            v.verify(&token(with(ok, "aud", None), Algorithm::HS256))
                .await
                .is_err()
        );
    }

    #[test]
    fn exactly_one_key_source_is_selected() {
        let pem = Path::new("/k.pem");
        assert!(matches!(
            KeySource::select(Some("s"), None, None, None),
            Ok(Some(KeySource::Secret(s))) if s == "s"
        ));
        assert!(matches!(
            KeySource::select(Some(""), Some(pem), None, Some("")),
            Ok(Some(KeySource::PemFile(_)))
        ));
        assert!(matches!(
            KeySource::select(None, None, None, Some("https://i/jwks")),
            Ok(Some(KeySource::JwksUrl(_)))
        ));
        assert!(matches!(
            KeySource::select(Some(""), None, None, None),
            Ok(None)
        ));
        assert_eq!(
            KeySource::select(Some("s"), None, None, Some("https://i/jwks")).err(),
            Some(SeveralKeySources)
        );
        assert_eq!(
            KeySource::select(None, Some(pem), Some(pem), None).err(),
            Some(SeveralKeySources)
        );
    }

    #[test]
    fn settings_from_config_trim_and_drop_empty_values() {
        let s = VerifierSettings::from_config(
            &[" RS256".into(), "".into(), "ES256 ".into()],
            Some(""),
            Some("live"),
            Duration::from_secs(5),
        );
        assert_eq!(s.algorithms, vec!["RS256", "ES256"]);
        assert_eq!((s.issuer, s.audience.as_deref()), (None, Some("live")));
    }

    #[test]
    fn a_jwks_url_needs_an_asymmetric_allow_list() {
        let settings = |algs: &[&str]| VerifierSettings {
            algorithms: algs.iter().map(|a| (*a).to_owned()).collect(),
            issuer: None,
            audience: None,
            leeway: Duration::ZERO,
        };
        let url = || KeySource::JwksUrl("http://127.0.0.1:9/jwks.json".into());
        assert!(TokenVerifier::new(url(), settings(&["HS256"])).is_err());
        assert!(TokenVerifier::new(url(), settings(&["RS256", "EdDSA"])).is_ok());
        assert!(TokenVerifier::new(KeySource::JwksUrl("ftp://x/j".into()), settings(&[])).is_err());
    }

    fn base64_url(s: &str) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let b = s.as_bytes();
        let mut out = String::new();
        for chunk in b.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, x)| acc | (u32::from(*x) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
