//! JWKS documents: the keys of one document by `kid`, read from a file once, or fetched from a
//! URL and kept fresh.
//!
//! A URL's document is fetched at the first token that needs it, again once it is older than
//! [`MAX_AGE`], and again when a token names a `kid` the document lacks (the issuer rotated its
//! keys), but at most once per [`MIN_REFETCH`] however many such tokens arrive, so a flood of
//! made-up `kid`s cannot turn into a flood of requests to the issuer. While a fetch fails the
//! last good keys stay in use; each failure is logged once per attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};

use crate::Family;

/// How long a fetched document is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// The least time between two fetches (an unknown `kid` asks for one).
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;

/// The usable keys of one JWKS document, by `kid`, each with its family.
#[derive(Default)]
pub(crate) struct JwkKeys(HashMap<String, (DecodingKey, Family)>);

impl JwkKeys {
    /// Parses a document; `origin` names it in errors. A key without a `kid` is skipped; a
    /// symmetric or unsupported key is an error (it can only be a configuration mistake).
    pub(crate) fn parse(document: &[u8], origin: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(document)
            .map_err(|e| format!("{origin} is not a JWKS document: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| format!("JWKS key {kid:?} is unusable: {e}"))?;
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Family::Rsa,
                AlgorithmParameters::EllipticCurve(_) => Family::Ec,
                AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
                AlgorithmParameters::OctetKey(_) => {
                    return Err(format!(
                        "JWKS key {kid:?} is symmetric: configure an HMAC secret instead"
                    ));
                }
                _ => return Err(format!("JWKS key {kid:?} has an unsupported key type")),
            };
            keys.insert(kid, (key, family));
        }
        if keys.is_empty() {
            return Err(format!("{origin} holds no key with a kid"));
        }
        Ok(JwkKeys(keys))
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&(DecodingKey, Family)> {
        self.0.get(kid)
    }
}

/// A JWKS document behind a URL, fetched when needed (see the module doc).
pub(crate) struct RemoteJwks {
    url: String,
    client: reqwest::Client,
    max_age: Duration,
    min_refetch: Duration,
    keys: RwLock<Arc<JwkKeys>>,
    /// When the last fetch started, successful or not; `None` before the first.
    last_attempt: Mutex<Option<Instant>>,
    /// When the keys in use were fetched.
    fetched_at: Mutex<Option<Instant>>,
    /// One fetch at a time; callers that wait for it then use its result.
    fetching: tokio::sync::Mutex<()>,
}

impl RemoteJwks {
    pub(crate) fn new(url: String) -> Result<Self, String> {
        Self::with_intervals(url, MAX_AGE, MIN_REFETCH)
    }

    fn with_intervals(
        url: String,
        max_age: Duration,
        min_refetch: Duration,
    ) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("JWKS URL {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "JWKS URL {url:?}: only http and https are supported"
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("JWKS URL {url:?}: {e}"))?;
        Ok(RemoteJwks {
            url,
            client,
            max_age,
            min_refetch,
            keys: RwLock::default(),
            last_attempt: Mutex::default(),
            fetched_at: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    fn current(&self) -> Arc<JwkKeys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fresh(&self) -> bool {
        let fetched_at = *self.fetched_at.lock().unwrap_or_else(|p| p.into_inner());
        fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }

    /// Whether a fetch may start now (none in the last `min_refetch`).
    fn may_fetch(&self) -> bool {
        let last = *self.last_attempt.lock().unwrap_or_else(|p| p.into_inner());
        last.is_none_or(|t| t.elapsed() >= self.min_refetch)
    }

    /// The keys to verify a token naming `kid` with: the current ones, fetched anew first when
    /// they are stale or lack `kid` and the rate limit allows.
    pub(crate) async fn keys_for(&self, kid: &str) -> Arc<JwkKeys> {
        let keys = self.current();
        if (keys.get(kid).is_some() && self.fresh()) || !self.may_fetch() {
            return keys;
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Whoever held the lock before may have fetched what this caller needs.
        let keys = self.current();
        if (keys.get(kid).is_some() && self.fresh()) || !self.may_fetch() {
            return keys;
        }
        *self.last_attempt.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        match self.fetch().await {
            Ok(fetched) => {
                let fetched = Arc::new(fetched);
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = fetched.clone();
                *self.fetched_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                tracing::info!(url = %self.url, "fetched the JWKS document");
                fetched
            }
            Err(e) => {
                tracing::warn!(url = %self.url, error = %e, "cannot fetch the JWKS document; keeping the last keys");
                keys
            }
        }
    }

    async fn fetch(&self) -> Result<JwkKeys, String> {
        let response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err("the document is larger than 1 MiB".into());
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err("the document is larger than 1 MiB".into());
        }
        JwkKeys::parse(&body, "the response")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Ed25519 public keys (the `x` of two OKP JWKs).
    const KEY_A: &str = "Lw5ccKOD90eBQC4gaRTwiq9llAxksHDEXUkFpw7nIWg";
    const KEY_B: &str = "6Qjbex4m_-uZRYaEqDdHO5zbiIcPaAh6cW9JurHIQ60";

    fn document(keys: &[(&str, &str)]) -> String {
        let keys: Vec<String> = keys
            .iter()
            .map(|(kid, x)| {
                format!(r#"{{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","kid":"{kid}","x":"{x}"}}"#)
            })
            .collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    /// A loopback listener and the JWKS URL it would serve.
    async fn listen() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!(
            "http://{}/jwks.json",
            listener.local_addr().expect("address")
        );
        (listener, url)
    }

    /// A one-route HTTP server: answers every request with the current status and body, and
    /// counts the requests.
    struct Issuer {
        url: String,
        answer: Arc<Mutex<(u16, String)>>,
        requests: Arc<AtomicUsize>,
    }

    impl Issuer {
        async fn start(body: String) -> Issuer {
            let (listener, url) = listen().await;
            let answer = Arc::new(Mutex::new((200, body)));
            let requests = Arc::new(AtomicUsize::new(0));
            let (a, r) = (answer.clone(), requests.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let mut buf = vec![0u8; 4096];
                    let mut read = 0;
                    while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf[read..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => read += n,
                        }
                    }
                    r.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = a.lock().expect("answer").clone();
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                }
            });
            Issuer {
                url,
                answer,
                requests,
            }
        }

        fn serve(&self, status: u16, body: String) {
            *self.answer.lock().expect("answer") = (status, body);
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn a_document_is_parsed_by_kid_and_symmetric_keys_are_refused() {
        let keys =
            JwkKeys::parse(document(&[("a", KEY_A)]).as_bytes(), "test").expect("one Ed25519 key");
        assert!(matches!(keys.get("a"), Some((_, Family::Ed))));
        assert!(keys.get("b").is_none());
        let oct = r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#;
        assert!(JwkKeys::parse(oct.as_bytes(), "test").is_err());
        assert!(JwkKeys::parse(br#"{"keys":[]}"#, "test").is_err());
        assert!(JwkKeys::parse(b"<html>", "test").is_err());
    }

    #[test]
    fn only_http_urls_are_accepted() {
        assert!(RemoteJwks::new("file:///etc/jwks.json".into()).is_err());
        assert!(RemoteJwks::new("not a url".into()).is_err());
        assert!(RemoteJwks::new("https://issuer.example/jwks.json".into()).is_ok());
    }

    #[tokio::test]
    async fn keys_are_fetched_once_then_again_for_a_new_kid_at_most_once_per_interval() {
        let issuer = Issuer::start(document(&[("a", KEY_A)])).await;
        let min_refetch = Duration::from_millis(300);
        let jwks = RemoteJwks::with_intervals(issuer.url.clone(), MAX_AGE, min_refetch)
            .expect("valid url");

        assert!(jwks.keys_for("a").await.get("a").is_some());
        assert!(jwks.keys_for("a").await.get("a").is_some());
        assert_eq!(issuer.requests(), 1, "a known kid is served from the cache");

        // The issuer rotates; a token with the new kid makes one fetch, however many arrive.
        issuer.serve(200, document(&[("a", KEY_A), ("b", KEY_B)]));
        let started = Instant::now();
        while jwks.keys_for("b").await.get("b").is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the new kid never arrived"
            );
            tokio::task::yield_now().await;
        }
        assert_eq!(issuer.requests(), 2);

        // Made-up kids: at most one fetch per interval, and the known keys stay usable.
        let started = Instant::now();
        while started.elapsed() < min_refetch * 2 {
            assert!(jwks.keys_for("made-up").await.get("made-up").is_none());
            tokio::task::yield_now().await;
        }
        let fetches = issuer.requests() - 2;
        assert!(
            (1..=3).contains(&fetches),
            "{fetches} fetches in two intervals"
        );
        assert!(jwks.keys_for("a").await.get("a").is_some());
    }

    #[tokio::test]
    async fn a_failed_fetch_keeps_the_last_keys() {
        let issuer = Issuer::start(document(&[("a", KEY_A)])).await;
        let jwks = RemoteJwks::with_intervals(issuer.url.clone(), Duration::ZERO, Duration::ZERO)
            .expect("valid url");
        assert!(jwks.keys_for("a").await.get("a").is_some());
        issuer.serve(500, "oops".into());
        // Stale (max age zero): fetched again, refused, and the last keys are kept.
        assert!(jwks.keys_for("a").await.get("a").is_some());
        issuer.serve(200, "not json".into());
        assert!(jwks.keys_for("a").await.get("a").is_some());
        assert_eq!(issuer.requests(), 3);
    }

    #[tokio::test]
    async fn an_unreachable_issuer_gives_no_keys_and_no_panic() {
        let (listener, url) = listen().await;
        drop(listener);
        let jwks = RemoteJwks::new(url).expect("valid url");
        assert!(jwks.keys_for("a").await.get("a").is_none());
    }
}
