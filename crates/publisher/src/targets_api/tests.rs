//! The targets API through its router (axum `oneshot`, like axum's `examples/testing`), on the
//! in-memory store with a publisher that records what it is given.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use livegate_auth::{KeySource, TokenVerifier, VerifierSettings};
use livegate_protocol::{EventName, Publication};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use super::*;
use crate::{Error, Publisher};

const SECRET: &str = "targets-api-test-secret";
const API_KEY: &str = "project-key-0123456789";

#[derive(Clone, Default)]
struct Recorder {
    published: Arc<Mutex<Vec<Publication>>>,
    down: Arc<AtomicBool>,
}

impl Recorder {
    fn take(&self) -> Vec<Publication> {
        std::mem::take(&mut *self.published.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Publisher for Recorder {
    async fn publish(&self, publication: Publication) -> Result<String, Error> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("test publisher is down".into()));
        }
        self.published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(publication);
        Ok(Uuid::new_v4().to_string())
    }

    async fn revoke_session(&self, _: &str, _: &str, _: Duration) -> Result<(), Error> {
        Ok(())
    }
}

/// Sessions named `revoked` are revoked; `unknown` cannot be checked.
struct FakeRevocations;

impl RevocationCheck for FakeRevocations {
    fn is_revoked<'a>(
        &'a self,
        sid: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async move {
            match sid {
                "unknown" => Err("redis is down".into()),
                sid => Ok(sid == "revoked"),
            }
        })
    }
}

struct Harness {
    app: axum::Router,
    events: Recorder,
    project: Uuid,
    token: String,
}

fn harness() -> Harness {
    let project = Uuid::new_v4();
    let verifier = TokenVerifier::new(
        KeySource::Secret(SECRET.into()),
        VerifierSettings {
            algorithms: vec![],
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(5),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys =
        ApiKeys::parse(&[format!("{project}={API_KEY}")]).unwrap_or_else(|e| panic!("{e:?}"));
    let events = Recorder::default();
    let auth = Authenticator::new(Some(verifier), keys).with_revocations(FakeRevocations);
    let app = router(TargetsApi::new(
        MemoryStore::default(),
        events.clone(),
        auth,
    ));
    Harness {
        app,
        events,
        project,
        token: token(json!({"projects": [project]})),
    }
}

fn token(overrides: Value) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = json!({"sub": "u1", "sid": "s1", "exp": now + 600, "token_use": "user"});
    if let (Some(c), Some(o)) = (claims.as_object_mut(), overrides.as_object()) {
        c.extend(o.clone());
    }
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

struct Answer {
    status: StatusCode,
    body: Value,
    text: String,
    request_id: Option<String>,
}

impl Harness {
    fn path(&self, rest: &str) -> String {
        format!("/v2/projects/{}/targets{rest}", self.project)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(a) = auth {
            req = req.header("authorization", format!("Bearer {a}"));
        }
        let req = req
            .header("content-type", "application/json")
            .body(Body::from(body.unwrap_or("").to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
        let res = self
            .app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = res.status();
        let request_id = res
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {bytes:?}"))
        };
        Answer {
            status,
            body,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            request_id,
        }
    }

    async fn send(&self, method: &str, rest: &str, body: Value) -> Answer {
        let token = self.token.clone();
        self.call(
            method,
            &self.path(rest),
            Some(&token),
            Some(&body.to_string()),
        )
        .await
    }

    async fn create(&self, body: Value) -> Value {
        let a = self.send("POST", "", body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        a.body["data"].clone()
    }

    fn events(&self) -> Vec<EventName> {
        self.events.take().into_iter().map(|p| p.event).collect()
    }
}

fn discord(name: &str) -> Value {
    json!({"target_name": name, "platform": "discord", "kind": "guild", "external_id": "42"})
}

/// The top-level keys, in the order they were sent.
fn key_order(a: &Answer, expected: &[&str]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = expected
        .iter()
        .filter_map(|k| {
            a.text
                .find(&format!("\"{k}\":"))
                .map(|i| (i, (*k).to_owned()))
        })
        .collect();
    found.sort();
    assert_eq!(
        a.body.as_object().map(|o| o.len()),
        Some(expected.len()),
        "{}",
        a.text
    );
    found.into_iter().map(|(_, k)| k).collect()
}

fn error_code(a: &Answer) -> &str {
    a.body["error"]["code"].as_str().unwrap_or("")
}

fn error_fields(a: &Answer) -> Vec<String> {
    a.body["error"]["errors"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn envelopes_follow_seed_001() {
    let h = harness();
    let created = h.create(discord("A")).await;
    let a = h.send("GET", "", Value::Null).await;
    let path = h.path("");
    assert_eq!(a.status, StatusCode::OK);
    let order = [
        "ok",
        "request_id",
        "method",
        "path",
        "code",
        "total",
        "data",
    ];
    assert_eq!(key_order(&a, &order), order);
    assert_eq!(a.body["ok"], json!(true));
    assert_eq!(a.body["method"], json!("GET"));
    assert_eq!(a.body["path"], json!(path));
    assert_eq!(a.body["code"], json!(200));
    assert_eq!(a.body["total"], json!(1));
    assert_eq!(a.body["data"], json!([created]));
    assert_eq!(a.body["request_id"].as_str(), a.request_id.as_deref());

    let e = h
        .call("GET", &format!("{path}?limit=0"), Some(&h.token), None)
        .await;
    assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    let order = ["ok", "request_id", "method", "path", "code", "error"];
    assert_eq!(key_order(&e, &order), order);
    assert_eq!(e.body["ok"], json!(false));
    assert_eq!(e.body["code"], json!(422));
    assert_eq!(e.body["path"], json!(path), "without the query");
    assert_eq!(error_code(&e), "validation_failed");
    assert_eq!(error_fields(&e), ["limit"]);
}

#[tokio::test]
async fn credentials_are_checked_before_anything_else() {
    let h = harness();
    let path = h.path("");
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let other = Uuid::new_v4();
    let cases: Vec<(Option<String>, StatusCode, &str)> = vec![
        (None, StatusCode::UNAUTHORIZED, "auth_missing"),
        (
            Some("not-a-token".into()),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            Some(token(json!({"projects": [h.project], "exp": now - 120}))),
            StatusCode::UNAUTHORIZED,
            "token_expired",
        ),
        (
            Some(token(
                json!({"projects": [h.project], "token_use": "api_key"}),
            )),
            StatusCode::UNAUTHORIZED,
            "not_a_user_token",
        ),
        (
            Some(token(json!({"projects": [h.project], "sid": "revoked"}))),
            StatusCode::UNAUTHORIZED,
            "session_revoked",
        ),
        (
            Some(token(json!({"projects": [h.project], "sid": "unknown"}))),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
        (
            Some(token(json!({"projects": [other]}))),
            StatusCode::FORBIDDEN,
            "project_forbidden",
        ),
    ];
    for (bearer, status, code) in cases {
        // A body that is not JSON: credentials are refused before the body is read.
        let a = h
            .call("POST", &path, bearer.as_deref(), Some("{oops"))
            .await;
        assert_eq!(
            (a.status, error_code(&a)),
            (status, code),
            "{bearer:?}: {}",
            a.body
        );
    }
    let a = h.call("GET", &path, Some(API_KEY), None).await;
    assert_eq!(a.status, StatusCode::OK, "the project's API key");
    let a = h
        .call(
            "GET",
            &format!("/v2/projects/{other}/targets"),
            Some(API_KEY),
            None,
        )
        .await;
    assert_eq!(error_code(&a), "project_forbidden", "another project's key");
    let a = h
        .call(
            "GET",
            "/v2/projects/not-a-uuid/targets",
            Some(&h.token),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = h
        .call("GET", "/v2/projects/not-a-uuid/targets", Some("bad"), None)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "bad credentials first");
}

#[tokio::test]
async fn create_publishes_added_and_refuses_bad_bodies() {
    let h = harness();
    let t = h.create(discord(" Guild ")).await;
    assert_eq!(t["target_name"], json!("Guild"));
    assert_eq!(t["is_enabled"], json!(true));
    assert_eq!(t["parent_target_id"], Value::Null);
    assert_eq!(h.events(), [EventName::TargetAdded]);

    let dup = h
        .send(
            "POST",
            "",
            json!({"target_id": t["target_id"], "target_name": "x",
        "platform": "telegram", "kind": "group", "external_id": "-1"}),
        )
        .await;
    assert_eq!(
        (dup.status, error_code(&dup)),
        (StatusCode::CONFLICT, "target_exists")
    );

    let bad = h
        .send(
            "POST",
            "",
            json!({"platform": "irc", "kind": "guild", "plan_count": -2}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        error_fields(&bad),
        ["target_name", "platform", "external_id", "plan_count"]
    );

    let mut orphan = discord("child");
    orphan["parent_target_id"] = json!(Uuid::new_v4());
    let a = h.send("POST", "", orphan).await;
    assert_eq!(error_fields(&a), ["parent_target_id"]);
    let mut child = discord("child");
    child["parent_target_id"] = t["target_id"].clone();
    child["kind"] = json!("channel");
    assert_eq!(h.create(child).await["parent_target_id"], t["target_id"]);

    let token = h.token.clone();
    let a = h
        .call("POST", &h.path(""), Some(&token), Some("{\"target_name\":"))
        .await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let huge = format!("{{\"target_name\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
    let a = h.call("POST", &h.path(""), Some(&token), Some(&huge)).await;
    assert_eq!(
        (a.status, error_code(&a)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    assert_eq!(h.events(), [EventName::TargetAdded], "only the child");
}

#[tokio::test]
async fn get_list_and_pages() {
    let h = harness();
    for name in ["delta", "Alpha", "charlie", "bravo"] {
        h.create(discord(name)).await;
    }
    let page = |q: &'static str| {
        let path = format!("{}{q}", h.path(""));
        let token = h.token.clone();
        let h = &h;
        async move { h.call("GET", &path, Some(&token), None).await }
    };
    let all = page("").await;
    let names: Vec<&str> = all.body["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["target_name"].as_str())
        .collect();
    assert_eq!(names, ["Alpha", "bravo", "charlie", "delta"]);
    let p = page("?limit=2&offset=1").await;
    assert_eq!(p.body["total"], json!(4));
    assert_eq!(p.body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(p.body["data"][0]["target_name"], json!("bravo"));
    assert_eq!(page("?offset=10").await.body["data"], json!([]));
    for bad in ["?limit=201", "?limit=-1", "?offset=x"] {
        assert_eq!(
            page(bad).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }

    let id = all.body["data"][0]["target_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let one = h.send("GET", &format!("/{id}"), Value::Null).await;
    assert_eq!(one.body["data"], all.body["data"][0]);
    for missing in [Uuid::new_v4().to_string(), "nope".to_owned()] {
        let a = h.send("GET", &format!("/{missing}"), Value::Null).await;
        assert_eq!(
            (a.status, error_code(&a)),
            (StatusCode::NOT_FOUND, "not_found")
        );
    }
    let other = Harness {
        project: Uuid::new_v4(),
        ..harness()
    };
    assert_eq!(
        other.send("GET", "", Value::Null).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn patch_publishes_exactly_the_derived_event() {
    let h = harness();
    let t = h.create(discord("A")).await;
    h.events();
    let id = format!("/{}", t["target_id"].as_str().unwrap_or_default());

    let a = h
        .send("PATCH", &id, json!({"target_name": "B", "plan_count": 3}))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        (
            a.body["data"]["target_name"].clone(),
            a.body["data"]["plan_count"].clone()
        ),
        (json!("B"), json!(3))
    );
    assert_eq!(h.events(), [EventName::TargetUpdated]);

    let a = h
        .send(
            "PATCH",
            &id,
            json!({"is_enabled": false, "target_name": "C"}),
        )
        .await;
    assert_eq!(a.body["data"]["is_enabled"], json!(false));
    let events = h.events.take();
    assert_eq!(
        events.iter().map(|p| p.event).collect::<Vec<_>>(),
        [EventName::TargetDisabled],
        "combined: only the flip"
    );
    assert_eq!(
        events[0].to_json()["target"]["target_name"],
        json!("C"),
        "with the new metadata"
    );

    let a = h
        .send(
            "PATCH",
            &id,
            json!({"is_enabled": false, "target_name": "C"}),
        )
        .await;
    assert_eq!(
        (a.status, a.body["message"].clone()),
        (StatusCode::OK, json!("No change"))
    );
    assert_eq!(h.events(), [], "a no-op publishes nothing");

    let a = h.send("PATCH", &id, json!({"is_enabled": true})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(h.events(), [EventName::TargetEnabled]);

    let a = h
        .send(
            "PATCH",
            &id,
            json!({"platform": "telegram", "kind": "planet"}),
        )
        .await;
    assert_eq!(error_fields(&a), ["platform", "kind"]);
    let a = h
        .send(
            "PATCH",
            &format!("/{}", Uuid::new_v4()),
            json!({"is_enabled": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(h.events(), []);

    h.events.down.store(true, Ordering::SeqCst);
    let a = h.send("PATCH", &id, json!({"target_name": "D"})).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "stored even when the event cannot leave"
    );
    assert_eq!(
        a.body["message"],
        json!("Target updated; the live event could not be published")
    );
}

#[tokio::test]
async fn bulk_patch_is_all_or_nothing_with_one_event_per_change() {
    let h = harness();
    let a = h.create(discord("A")).await;
    let b = h.create(discord("B")).await;
    h.events();

    let ok = h
        .send(
            "PATCH",
            "",
            json!([
                {"target_id": a["target_id"], "is_enabled": false},
                {"target_id": b["target_id"], "is_enabled": true},
            ]),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["total"], json!(2));
    assert_eq!(
        ok.body["message"],
        json!("Successfully updated 2 target(s)")
    );
    assert_eq!(ok.body["data"][0]["is_enabled"], json!(false));
    assert_eq!(
        h.events(),
        [EventName::TargetDisabled],
        "B was already enabled"
    );

    let missing = Uuid::new_v4();
    let nf = h
        .send(
            "PATCH",
            "",
            json!([
                {"target_id": b["target_id"], "target_name": "renamed"},
                {"target_id": missing, "is_enabled": true},
            ]),
        )
        .await;
    assert_eq!(
        (nf.status, error_code(&nf)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(error_fields(&nf), ["/1/target_id"]);
    let still = h
        .send(
            "GET",
            &format!("/{}", b["target_id"].as_str().unwrap_or_default()),
            Value::Null,
        )
        .await;
    assert_eq!(
        still.body["data"]["target_name"],
        json!("B"),
        "nothing applied"
    );
    assert_eq!(h.events(), []);

    let bad = h
        .send(
            "PATCH",
            "",
            json!([
                {"target_id": a["target_id"], "is_enabled": "no"},
                {"target_id": a["target_id"], "kind": "role"},
            ]),
        )
        .await;
    assert_eq!(
        error_fields(&bad),
        ["/0/is_enabled", "/1/kind", "/1/target_id"]
    );

    let many: Vec<Value> = (0..101)
        .map(|_| json!({"target_id": a["target_id"]}))
        .collect();
    let big = h.send("PATCH", "", Value::Array(many)).await;
    assert_eq!(
        (big.status, error_code(&big)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_targets")
    );
    assert_eq!(h.events(), []);
}

#[tokio::test]
async fn delete_answers_204_and_publishes_removed() {
    let h = harness();
    let t = h.create(discord("A")).await;
    h.events();
    let id = format!("/{}", t["target_id"].as_str().unwrap_or_default());
    let a = h.send("DELETE", &id, Value::Null).await;
    assert_eq!(
        (a.status, a.body.clone()),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    assert!(a.request_id.is_some());
    let events = h.events.take();
    assert_eq!(events.len(), 1);
    let removed = events[0].to_json();
    assert_eq!(removed["event"], json!("target.removed"));
    assert_eq!(removed["target_id"], t["target_id"]);
    assert_eq!(removed["external_id"], json!("42"));
    let again = h.send("DELETE", &id, Value::Null).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(h.events(), []);
    let put = h.send("PUT", &id, json!({})).await;
    assert_eq!(
        (put.status, error_code(&put)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn concurrent_patches_lose_nothing_and_publish_in_store_order() {
    let h = Arc::new(harness());
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            h.create(discord(&format!("t{n}"))).await["target_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    h.events();
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let h = h.clone();
        let id = ids[i % 5].clone();
        let body = match i / 5 {
            0 => json!({"is_enabled": false}),
            1 => json!({"target_name": format!("renamed {}", i % 5)}),
            2 => json!({"plan_count": 7}),
            3 => json!({"participant_count": 9}),
            4 => json!({"external_id": "ext"}),
            5 => json!({"kind": "role"}),
            _ => json!({"plan_count": 7}),
        };
        tasks.push(tokio::spawn(async move {
            h.send("PATCH", &format!("/{id}"), body).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.ok(), Some(StatusCode::OK));
    }
    let list = h.send("GET", "", Value::Null).await;
    for t in list.body["data"].as_array().into_iter().flatten() {
        assert_eq!(t["is_enabled"], json!(false));
        assert!(
            t["target_name"]
                .as_str()
                .unwrap_or("")
                .starts_with("renamed")
        );
        assert_eq!(
            (t["plan_count"].clone(), t["participant_count"].clone()),
            (json!(7), json!(9))
        );
        assert_eq!(
            (t["external_id"].clone(), t["kind"].clone()),
            (json!("ext"), json!("role"))
        );
    }
    // Rounds 6–9 repeat plan_count = 7: no-ops, no events. Every other PATCH changed something.
    let events = h.events.take();
    assert_eq!(
        events.len(),
        30,
        "{:?}",
        events.iter().map(|e| e.event).collect::<Vec<_>>()
    );
    // Replaying the events per target ends in the stored state: they left in store order.
    for t in list.body["data"].as_array().into_iter().flatten() {
        let last = events
            .iter()
            .rev()
            .map(Publication::to_json)
            .find(|e| e["target"]["target_id"] == t["target_id"]);
        assert_eq!(last.map(|e| e["target"].clone()).as_ref(), Some(t));
    }
}
