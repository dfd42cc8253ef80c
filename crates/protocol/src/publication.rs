//! Publications: what publishers send (CONTRACT §5), validated against the schema of their event
//! before anything reaches a socket.
//!
//! A publication is one JSON object: the client-visible body plus `event` (its name) and
//! optionally `event_id`. [`Publication::parse`] checks the fields the contract lists (present,
//! of the right type), reduces `payment_method` to its allow-list, writes `project_id` in lower
//! case, and works out the [`Route`]: which subscribers may receive it. Fields beyond those
//! listed are forwarded untouched (forward compatibility).

use std::fmt;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::channel::Channel;
use crate::event::EventName;
use crate::field_error::FieldError;
use crate::payment_method;
use crate::payment_request::PaymentRequestStatus;
use crate::target::{PLATFORMS, TARGET_KINDS};

/// The longest `event_id` a publisher may choose.
pub const MAX_EVENT_ID_LEN: usize = 128;

const UPDATE_TYPES: [&str; 2] = ["created", "completed"];
const REQUEST_TYPES: [&str; 2] = ["balance", "invoice"];

/// A validated publication.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub event: EventName,
    pub project_id: Uuid,
    /// The publisher's own id, kept as sent; the gateway assigns one when absent.
    pub event_id: Option<String>,
    /// The client-visible body: everything but `event` and `event_id`.
    pub body: Map<String, Value>,
    pub route: Route,
}

/// Who may receive a publication, within its project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Every subscriber of a whole-project channel.
    Channel(Channel),
    /// Subscribers of one payment request, by either of its ids.
    PaymentRequest {
        payment_request_id: Option<Uuid>,
        provider_payment_id: Option<String>,
    },
}

/// Why a publication was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicationError {
    NotJson,
    NotAnObject,
    /// Field-level failures, each naming its field.
    Invalid(Vec<FieldError>),
}

impl PublicationError {
    /// A short label, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PublicationError::NotJson => "not_json",
            PublicationError::NotAnObject => "not_an_object",
            PublicationError::Invalid(_) => "invalid_fields",
        }
    }

    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            PublicationError::NotJson => vec![FieldError::new("", "not valid JSON")],
            PublicationError::NotAnObject => vec![FieldError::new("", "expected a JSON object")],
            PublicationError::Invalid(errors) => errors.clone(),
        }
    }
}

impl fmt::Display for PublicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self
            .field_errors()
            .iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        write!(f, "invalid publication: {errors}")
    }
}

impl std::error::Error for PublicationError {}

impl Publication {
    /// Parses and validates the raw bytes of a publication.
    pub fn parse(bytes: &[u8]) -> Result<Publication, PublicationError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| PublicationError::NotJson)?;
        Publication::from_value(value)
    }

    /// Validates an already decoded publication.
    pub fn from_value(value: Value) -> Result<Publication, PublicationError> {
        let Value::Object(mut body) = value else {
            return Err(PublicationError::NotAnObject);
        };
        let mut errors = Vec::new();
        let event = match body.remove("event") {
            Some(Value::String(name)) => match name.parse::<EventName>() {
                Ok(e) => Some(e),
                Err(_) => {
                    errors.push(FieldError::new("event", format!("unknown event {name:?}")));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new("event", "must be a string"));
                None
            }
            None => {
                errors.push(FieldError::new("event", "is required"));
                None
            }
        };
        let event_id = take_event_id(&mut body, &mut errors);
        let mut check = Check {
            obj: &body,
            pointer: String::new(),
            errors: &mut errors,
        };
        let project_id = check.uuid("project_id");
        let route = event.and_then(|e| {
            check.channel(e.channel());
            validate_body(e, &mut check)
        });
        match (event, project_id, route) {
            (Some(event), Some(project_id), Some(route)) if errors.is_empty() => {
                body.insert("project_id".into(), Value::String(project_id.to_string()));
                if let Some(Value::Object(pm)) = body.get("payment_method") {
                    let clean = payment_method::sanitize(pm);
                    body.insert("payment_method".into(), Value::Object(clean));
                }
                Ok(Publication {
                    event,
                    project_id,
                    event_id,
                    body,
                    route,
                })
            }
            _ => Err(PublicationError::Invalid(errors)),
        }
    }

    /// The payload a client receives: the body plus `event_id` and `emitted_at`.
    pub fn envelope(&self, event_id: &str, emitted_at: i64) -> Map<String, Value> {
        let mut payload = self.body.clone();
        payload.insert("event_id".into(), Value::String(event_id.to_owned()));
        payload.insert("emitted_at".into(), Value::from(emitted_at));
        payload
    }

    /// The publication as JSON again, with `event` (and `event_id` if set): what goes on the bus.
    pub fn to_json(&self) -> Value {
        let mut obj = self.body.clone();
        obj.insert(
            "event".into(),
            Value::String(self.event.as_str().to_owned()),
        );
        if let Some(id) = &self.event_id {
            obj.insert("event_id".into(), Value::String(id.clone()));
        }
        Value::Object(obj)
    }

    /// Completes the ids of a `subscription.closed` (from the registry): both the body and the route.
    pub fn fill_payment_ids(
        &mut self,
        payment_request_id: Option<Uuid>,
        provider_payment_id: Option<String>,
    ) {
        let Route::PaymentRequest {
            payment_request_id: pr,
            provider_payment_id: pp,
        } = &mut self.route
        else {
            return;
        };
        if pr.is_none()
            && let Some(id) = payment_request_id
        {
            *pr = Some(id);
            self.body
                .insert("payment_request_id".into(), Value::String(id.to_string()));
        }
        if pp.is_none()
            && let Some(id) = provider_payment_id
        {
            *pp = Some(id.clone());
            self.body
                .insert("provider_payment_id".into(), Value::String(id));
        }
    }

    /// The status a `subscription.closed` or `payment-request.updated` carries, if any.
    pub fn payment_request_status(&self) -> Option<PaymentRequestStatus> {
        let status = match self.event {
            EventName::SubscriptionClosed => self.body.get("status"),
            EventName::PaymentRequestUpdated => self
                .body
                .get("payment_request")
                .and_then(|pr| pr.get("status")),
            _ => None,
        }?;
        status.as_str()?.parse().ok()
    }
}

/// Takes the publisher's optional `event_id` out of a publication (live or chat), checking it.
pub(crate) fn take_event_id(
    obj: &mut Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.remove("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_EVENT_ID_LEN => Some(id),
        Some(_) => {
            errors.push(FieldError::new(
                "event_id",
                "must be a string of 1 to 128 characters",
            ));
            None
        }
    }
}

/// The per-event schema; returns the route when the body fits.
fn validate_body(event: EventName, c: &mut Check<'_>) -> Option<Route> {
    match event {
        EventName::TargetAdded
        | EventName::TargetEnabled
        | EventName::TargetDisabled
        | EventName::TargetUpdated => {
            c.one_of("platform", &PLATFORMS);
            c.nested("target", validate_target);
            Some(Route::Channel(Channel::Targets))
        }
        EventName::TargetRemoved => {
            c.one_of("platform", &PLATFORMS);
            c.uuid("target_id");
            c.one_of("kind", &TARGET_KINDS);
            c.string("external_id");
            Some(Route::Channel(Channel::Targets))
        }
        EventName::PaymentMethodAdded => {
            c.nested("payment_method", |m| {
                m.string("payment_method_id");
                m.optional_string("merchant_account_id");
                m.optional_string("label");
                m.optional_string("user_id");
                m.optional_object("metadata");
            });
            Some(Route::Channel(Channel::PaymentMethods))
        }
        EventName::PaymentMethodRemoved => {
            c.string("payment_method_id");
            c.optional_string("user_id");
            Some(Route::Channel(Channel::PaymentMethods))
        }
        EventName::PaymentRequestUpdated => {
            c.one_of("update_type", &UPDATE_TYPES);
            let mut route = None;
            c.nested("payment_request", |pr| {
                let id = pr.uuid("payment_request_id");
                let provider = pr.optional_string("provider_payment_id");
                pr.one_of("status", &status_names());
                pr.one_of("request_type", &REQUEST_TYPES);
                pr.decimal("amount");
                pr.optional_decimal("gross_amount");
                pr.string("currency");
                for field in [
                    "merchant_account_id",
                    "user_id",
                    "provider",
                    "created_at",
                    "updated_at",
                    "settled_at",
                ] {
                    pr.optional_string(field);
                }
                route = id.map(|id| Route::PaymentRequest {
                    payment_request_id: Some(id),
                    provider_payment_id: provider,
                });
            });
            route
        }
        EventName::SubscriptionClosed => {
            let id = c.optional_uuid("payment_request_id");
            let provider = c.optional_string("provider_payment_id");
            c.one_of("status", &status_names());
            if id.is_none() && provider.is_none() && c.is_clean("payment_request_id") {
                c.fail(
                    "payment_request_id",
                    "one of payment_request_id or provider_payment_id is required",
                );
            }
            Some(Route::PaymentRequest {
                payment_request_id: id,
                provider_payment_id: provider,
            })
        }
    }
}

fn validate_target(t: &mut Check<'_>) {
    t.uuid("target_id");
    t.string("target_name");
    t.one_of("platform", &PLATFORMS);
    t.one_of("kind", &TARGET_KINDS);
    t.string("external_id");
    t.boolean("is_enabled");
    t.optional_uuid("parent_target_id");
    t.optional_integer("plan_count");
    t.optional_integer("participant_count");
}

fn status_names() -> [&'static str; 6] {
    PaymentRequestStatus::ALL.map(PaymentRequestStatus::as_str)
}

/// Checks fields of one JSON object, collecting every failure under its JSON pointer.
struct Check<'a> {
    obj: &'a Map<String, Value>,
    /// The pointer of `obj` itself (empty at the top level).
    pointer: String,
    errors: &'a mut Vec<FieldError>,
}

impl Check<'_> {
    fn path(&self, field: &str) -> String {
        if self.pointer.is_empty() {
            field.to_owned()
        } else {
            format!("{}/{}", self.pointer, field)
        }
    }

    fn fail(&mut self, field: &str, why: impl Into<String>) {
        let path = self.path(field);
        self.errors.push(FieldError::new(path, why));
    }

    fn is_clean(&self, field: &str) -> bool {
        let path = self.path(field);
        !self.errors.iter().any(|e| e.field == path)
    }

    /// A required field: `Some` when present and not null.
    fn required(&mut self, field: &str) -> Option<&Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                self.fail(field, "is required");
                None
            }
            Some(v) => Some(v),
        }
    }

    fn string(&mut self, field: &str) -> Option<String> {
        match self.required(field)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    fn optional_string(&mut self, field: &str) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.fail(field, "must be a string or null");
                None
            }
        }
    }

    fn uuid(&mut self, field: &str) -> Option<Uuid> {
        let s = self.string(field)?;
        let parsed = Uuid::parse_str(&s).ok();
        if parsed.is_none() {
            self.fail(field, "must be a UUID");
        }
        parsed
    }

    fn optional_uuid(&mut self, field: &str) -> Option<Uuid> {
        let s = self.optional_string(field)?;
        let parsed = Uuid::parse_str(&s).ok();
        if parsed.is_none() {
            self.fail(field, "must be a UUID or null");
        }
        parsed
    }

    fn boolean(&mut self, field: &str) {
        if let Some(v) = self.required(field)
            && !v.is_boolean()
        {
            self.fail(field, "must be a boolean");
        }
    }

    fn optional_integer(&mut self, field: &str) {
        match self.obj.get(field) {
            None | Some(Value::Null) => {}
            Some(v) if v.is_i64() || v.is_u64() => {}
            Some(_) => self.fail(field, "must be an integer or null"),
        }
    }

    fn optional_object(&mut self, field: &str) {
        match self.obj.get(field) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => self.fail(field, "must be an object or null"),
        }
    }

    fn one_of(&mut self, field: &str, allowed: &[&str]) {
        if let Some(s) = self.string(field)
            && !allowed.contains(&s.as_str())
        {
            self.fail(field, format!("must be one of {}", allowed.join(", ")));
        }
    }

    fn decimal(&mut self, field: &str) {
        if let Some(s) = self.string(field)
            && !is_decimal(&s)
        {
            self.fail(field, "must be a decimal string");
        }
    }

    fn optional_decimal(&mut self, field: &str) {
        if let Some(s) = self.optional_string(field)
            && !is_decimal(&s)
        {
            self.fail(field, "must be a decimal string or null");
        }
    }

    fn channel(&mut self, expected: Channel) {
        if let Some(s) = self.string("channel")
            && s != expected.as_str()
        {
            self.fail(
                "channel",
                format!("must be {:?} for this event", expected.as_str()),
            );
        }
    }

    /// Checks a required nested object with `f`, under its pointer.
    fn nested(&mut self, field: &str, f: impl FnOnce(&mut Check<'_>)) {
        let path = format!("/{}", self.path(field).trim_start_matches('/'));
        match self.obj.get(field) {
            Some(Value::Object(inner)) => {
                let mut check = Check {
                    obj: inner,
                    pointer: path,
                    errors: self.errors,
                };
                f(&mut check);
            }
            None | Some(Value::Null) => self.fail(field, "is required"),
            Some(_) => self.fail(field, "must be an object"),
        }
    }
}

/// `-?digits(.digits)?`: how money travels (a string, never a float).
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const P: &str = "93425026-6bb8-4f81-a75d-63f538e1a123";
    const PR: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    const T: &str = "1f2e3d4c-5b6a-7e8f-9a0b-1c2d3e4f5a6b";

    fn target() -> Value {
        json!({"target_id": T, "target_name": "My Server", "platform": "discord", "kind": "guild",
               "external_id": "123", "is_enabled": true, "parent_target_id": null,
               "plan_count": 0, "participant_count": 0})
    }

    fn payment_request() -> Value {
        json!({"payment_request_id": PR, "provider_payment_id": "pi_1", "status": "pending",
               "request_type": "invoice", "amount": "10.50", "currency": "USD",
               "merchant_account_id": "ma", "user_id": "u", "provider": "stripe",
               "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
               "settled_at": null})
    }

    fn valid(event: &str) -> Value {
        match event {
            "target.added" | "target.enabled" | "target.disabled" | "target.updated" => json!({
                "event": event, "channel": "targets", "project_id": P, "platform": "discord",
                "target": target()}),
            "target.removed" => json!({"event": event, "channel": "targets", "project_id": P,
                "platform": "telegram", "target_id": T, "kind": "channel", "external_id": "-100"}),
            "payment-method.added" => json!({"event": event, "channel": "payment-methods",
                "project_id": P, "payment_method": {"payment_method_id": "pm_1", "label": "Visa",
                "merchant_account_id": "ma", "user_id": "u", "metadata": {"last4": "4242"}}}),
            "payment-method.removed" => json!({"event": event, "channel": "payment-methods",
                "project_id": P, "payment_method_id": "pm_1", "user_id": "u"}),
            "payment-request.updated" => json!({"event": event, "channel": "payment-requests",
                "project_id": P, "update_type": "created", "payment_request": payment_request()}),
            "subscription.closed" => json!({"event": event, "channel": "payment-requests",
                "project_id": P, "payment_request_id": PR, "provider_payment_id": "pi_1",
                "status": "completed"}),
            other => panic!("no fixture for {other}"),
        }
    }

    fn invalid_fields(v: Value) -> Vec<String> {
        match Publication::from_value(v) {
            Err(PublicationError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected field errors, got {other:?}"),
        }
    }

    fn with(mut v: Value, pointer: &str, value: Option<Value>) -> Value {
        let (parent, field) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        if let Some(Value::Object(obj)) = v.pointer_mut(parent) {
            match value {
                Some(x) => obj.insert(field.to_owned(), x),
                None => obj.remove(field),
            };
        }
        v
    }

    #[test]
    fn every_event_has_a_valid_fixture() {
        for e in EventName::ALL {
            let p = Publication::from_value(valid(e.as_str()));
            assert!(p.is_ok(), "{e}: {p:?}");
            let p = p.unwrap_or_else(|_| unreachable!());
            assert_eq!(p.event, e);
            assert!(!p.body.contains_key("event"));
        }
    }

    #[test]
    fn not_json_and_not_objects() {
        assert_eq!(Publication::parse(b"{nope"), Err(PublicationError::NotJson));
        assert_eq!(
            Publication::parse(b"[1]"),
            Err(PublicationError::NotAnObject)
        );
        assert_eq!(
            Publication::parse(b"\"x\""),
            Err(PublicationError::NotAnObject)
        );
    }

    #[test]
    fn event_must_be_known() {
        assert_eq!(
            invalid_fields(json!({"channel":"targets","project_id":P})),
            ["event"]
        );
        assert_eq!(
            invalid_fields(json!({"event":"target.exploded","channel":"targets","project_id":P})),
            ["event"]
        );
        assert_eq!(
            invalid_fields(with(valid("target.added"), "/event", Some(json!(1)))),
            ["event"]
        );
    }

    #[test]
    fn common_fields() {
        let v = valid("target.added");
        assert_eq!(
            invalid_fields(with(v.clone(), "/project_id", None)),
            ["project_id"]
        );
        assert_eq!(
            invalid_fields(with(v.clone(), "/project_id", Some(json!("p1")))),
            ["project_id"]
        );
        assert_eq!(
            invalid_fields(with(v.clone(), "/channel", Some(json!("payment-methods")))),
            ["channel"]
        );
        assert_eq!(
            invalid_fields(with(v.clone(), "/channel", None)),
            ["channel"]
        );
        assert_eq!(
            invalid_fields(with(v, "/event_id", Some(json!(5)))),
            ["event_id"]
        );
    }

    #[test]
    fn target_fields_are_checked_one_by_one() {
        let cases = [
            ("/target/target_id", json!("x"), "/target/target_id"),
            ("/target/target_name", json!(1), "/target/target_name"),
            ("/target/platform", json!("slack"), "/target/platform"),
            ("/target/kind", json!("server"), "/target/kind"),
            ("/target/external_id", json!(123), "/target/external_id"),
            ("/target/is_enabled", json!("yes"), "/target/is_enabled"),
            (
                "/target/parent_target_id",
                json!("nope"),
                "/target/parent_target_id",
            ),
            ("/target/plan_count", json!(1.5), "/target/plan_count"),
            (
                "/target/participant_count",
                json!("2"),
                "/target/participant_count",
            ),
            ("/platform", json!("slack"), "platform"),
            ("/target", json!([]), "target"),
        ];
        for event in [
            "target.added",
            "target.enabled",
            "target.disabled",
            "target.updated",
        ] {
            for (pointer, bad, field) in &cases {
                let v = with(valid(event), pointer, Some(bad.clone()));
                assert_eq!(invalid_fields(v), [*field], "{event} {pointer}");
            }
        }
        let v = with(valid("target.added"), "/target/plan_count", None);
        assert!(Publication::from_value(v).is_ok(), "counts are optional");
    }

    #[test]
    fn target_removed_fields() {
        for (field, bad) in [
            ("target_id", json!("x")),
            ("kind", json!("x")),
            ("external_id", json!(1)),
        ] {
            let v = with(valid("target.removed"), &format!("/{field}"), Some(bad));
            assert_eq!(invalid_fields(v), [field]);
        }
    }

    #[test]
    fn payment_method_fields_and_allow_list() {
        let v = with(
            valid("payment-method.added"),
            "/payment_method/payment_method_id",
            None,
        );
        assert_eq!(invalid_fields(v), ["/payment_method/payment_method_id"]);
        let v = with(
            valid("payment-method.added"),
            "/payment_method/metadata",
            Some(json!("x")),
        );
        assert_eq!(invalid_fields(v), ["/payment_method/metadata"]);
        let v = with(
            valid("payment-method.added"),
            "/payment_method/provider_token",
            Some(json!("tok_live")),
        );
        let p = Publication::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.body["payment_method"].get("provider_token"), None);
        assert_eq!(
            p.body["payment_method"]["metadata"],
            json!({"last4": "4242"})
        );
        let v = with(
            valid("payment-method.removed"),
            "/payment_method_id",
            Some(json!(1)),
        );
        assert_eq!(invalid_fields(v), ["payment_method_id"]);
    }

    #[test]
    fn payment_request_fields() {
        let cases = [
            ("/update_type", json!("settled"), "update_type"),
            (
                "/payment_request/payment_request_id",
                json!("x"),
                "/payment_request/payment_request_id",
            ),
            (
                "/payment_request/status",
                json!("done"),
                "/payment_request/status",
            ),
            (
                "/payment_request/request_type",
                json!("gift"),
                "/payment_request/request_type",
            ),
            (
                "/payment_request/amount",
                json!(10.5),
                "/payment_request/amount",
            ),
            (
                "/payment_request/amount",
                json!("ten"),
                "/payment_request/amount",
            ),
            (
                "/payment_request/gross_amount",
                json!("1.2.3"),
                "/payment_request/gross_amount",
            ),
            (
                "/payment_request/currency",
                json!(null),
                "/payment_request/currency",
            ),
            (
                "/payment_request/provider_payment_id",
                json!(5),
                "/payment_request/provider_payment_id",
            ),
            (
                "/payment_request/settled_at",
                json!(5),
                "/payment_request/settled_at",
            ),
        ];
        for (pointer, bad, field) in cases {
            let v = with(valid("payment-request.updated"), pointer, Some(bad));
            assert_eq!(invalid_fields(v), [field], "{pointer}");
        }
    }

    #[test]
    fn payment_request_routes_by_both_ids() {
        let p = Publication::from_value(valid("payment-request.updated"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            p.route,
            Route::PaymentRequest {
                payment_request_id: Uuid::parse_str(PR).ok(),
                provider_payment_id: Some("pi_1".into())
            }
        );
        assert_eq!(
            p.payment_request_status(),
            Some(PaymentRequestStatus::Pending)
        );
    }

    #[test]
    fn subscription_closed_needs_one_id_and_a_status() {
        let v = with(
            with(valid("subscription.closed"), "/payment_request_id", None),
            "/provider_payment_id",
            None,
        );
        assert_eq!(invalid_fields(v), ["payment_request_id"]);
        let v = with(valid("subscription.closed"), "/status", Some(json!("gone")));
        assert_eq!(invalid_fields(v), ["status"]);
        let v = with(valid("subscription.closed"), "/provider_payment_id", None);
        let mut p = Publication::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        p.fill_payment_ids(None, Some("pi_9".into()));
        assert_eq!(p.body.get("provider_payment_id"), Some(&json!("pi_9")));
        assert_eq!(
            p.route,
            Route::PaymentRequest {
                payment_request_id: Uuid::parse_str(PR).ok(),
                provider_payment_id: Some("pi_9".into())
            }
        );
    }

    #[test]
    fn project_id_is_lower_cased_and_extra_fields_forwarded() {
        let v = with(
            valid("target.added"),
            "/project_id",
            Some(json!(P.to_uppercase())),
        );
        let v = with(v, "/future_field", Some(json!({"x": 1})));
        let p = Publication::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.body["project_id"], json!(P));
        assert_eq!(p.body["future_field"], json!({"x": 1}));
    }

    #[test]
    fn envelope_adds_id_and_time_and_keeps_event_id() {
        let v = with(valid("target.added"), "/event_id", Some(json!("evt-1")));
        let p = Publication::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.event_id.as_deref(), Some("evt-1"));
        let env = p.envelope("evt-1", 42);
        assert_eq!(env["event_id"], json!("evt-1"));
        assert_eq!(env["emitted_at"], json!(42));
        assert!(env.get("event").is_none());
        assert_eq!(p.to_json()["event"], json!("target.added"));
        assert_eq!(p.to_json()["event_id"], json!("evt-1"));
    }

    #[test]
    fn decimals() {
        for ok in ["0", "10", "10.50", "-3.2"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", ".5", "5.", "1e3", "ten", "1.2.3", "-"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }
}
