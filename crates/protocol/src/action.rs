//! Client actions: a frame from the `message` event parsed into an [`Action`], or the exact
//! error the contract prescribes for it.
//!
//! The order of checks decides which error a bad frame gets, so it is written down here:
//! 1. the frame must be JSON (a string holding JSON is unwrapped once) and an object;
//! 2. `action` must be a string, and one of `subscribe`, `unsubscribe`, `ping`;
//! 3. `ping`: `timestamp`, when present and not null, must be an integer;
//! 4. `subscribe`/`unsubscribe`: `channel` must be a string naming a known channel;
//! 5. `payment-requests` takes exactly one of `payment_request_id` (UUID) or
//!    `provider_payment_id` (1–255 chars); the other channels ignore both.
//!
//! Errors raised before the channel is known (1–4 up to `channel`'s type) carry no
//! `meta.channel`/`meta.action`; those raised after carry both. Unknown fields are ignored.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::MAX_PROVIDER_PAYMENT_ID_LEN;
use crate::channel::{Channel, SubscriptionKey};
use crate::error_code::ErrorCode;
use crate::field_error::FieldError;
use crate::message::ErrorMeta;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Subscribe(SubscriptionRequest),
    Unsubscribe(SubscriptionRequest),
    /// `timestamp` is echoed back as `received_timestamp`.
    Ping {
        timestamp: Option<i64>,
    },
}

/// A `subscribe`/`unsubscribe` with its key and the ids to echo in the acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub key: SubscriptionKey,
    /// Echoed as `payment_request_id`: exactly what the client sent (any UUID spelling), or
    /// `None` where it does not apply. The key holds the parsed id.
    pub payment_request_id: Option<String>,
    /// Echoed as `provider_payment_id`: what the client sent, or `None` where it does not apply.
    pub provider_payment_id: Option<String>,
}

impl SubscriptionRequest {
    pub fn channel(&self) -> Channel {
        self.key.channel()
    }
}

/// A frame the gateway cannot act on, as the `error` message it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    pub code: ErrorCode,
    pub message: String,
    pub meta: ErrorMeta,
}

impl ActionError {
    /// An action name this namespace does not know: `meta.action` and, if sent, `meta.channel`.
    pub(crate) fn unsupported_action(obj: &Map<String, Value>, action: &str) -> Self {
        ActionError {
            code: ErrorCode::UnsupportedAction,
            message: format!("unsupported action {action:?}"),
            meta: ErrorMeta {
                channel: obj
                    .get("channel")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                action: Some(action.to_owned()),
                errors: None,
            },
        }
    }

    /// An `invalid_payload` raised before the channel is known: no `meta.channel`/`meta.action`.
    fn invalid_frame(field: &str, why: &str) -> Self {
        ActionError {
            code: ErrorCode::InvalidPayload,
            message: format!("invalid payload: {}", describe(field, why)),
            meta: ErrorMeta {
                errors: Some(vec![FieldError::new(field, why)]),
                ..ErrorMeta::default()
            },
        }
    }

    /// An `invalid_payload` raised once the channel is known: carries `meta.channel`/`meta.action`.
    fn invalid_in_channel(channel: Channel, action: &str, errors: Vec<FieldError>) -> Self {
        let summary = errors
            .iter()
            .map(|e| describe(&e.field, &e.message))
            .collect::<Vec<_>>()
            .join("; ");
        ActionError {
            code: ErrorCode::InvalidPayload,
            message: format!("invalid payload: {summary}"),
            meta: ErrorMeta {
                channel: Some(channel.as_str().to_owned()),
                action: Some(action.to_owned()),
                errors: Some(errors),
            },
        }
    }
}

fn describe(field: &str, why: &str) -> String {
    if field.is_empty() {
        why.to_owned()
    } else {
        format!("{field}: {why}")
    }
}

impl Action {
    /// Parses one `message` frame. `frame` is the first argument of the event as decoded JSON.
    pub fn parse(frame: &Value) -> Result<Action, ActionError> {
        let unwrapped;
        let frame = match frame {
            Value::String(text) => {
                unwrapped = serde_json::from_str::<Value>(text)
                    .map_err(|_| ActionError::invalid_frame("", "not valid JSON"))?;
                &unwrapped
            }
            other => other,
        };
        let Value::Object(obj) = frame else {
            return Err(ActionError::invalid_frame("", "expected a JSON object"));
        };
        let action = match obj.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(ActionError::invalid_frame("action", "must be a string")),
            None => return Err(ActionError::invalid_frame("action", "is required")),
        };
        match action {
            "ping" => parse_ping(obj),
            "subscribe" => parse_subscription(obj, action).map(Action::Subscribe),
            "unsubscribe" => parse_subscription(obj, action).map(Action::Unsubscribe),
            other => Err(ActionError::unsupported_action(obj, other)),
        }
    }
}

fn parse_ping(obj: &Map<String, Value>) -> Result<Action, ActionError> {
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(t) => Some(t),
            None => {
                return Err(ActionError::invalid_frame(
                    "timestamp",
                    "must be an integer",
                ));
            }
        },
        Some(_) => {
            return Err(ActionError::invalid_frame(
                "timestamp",
                "must be an integer",
            ));
        }
    };
    Ok(Action::Ping { timestamp })
}

fn parse_subscription(
    obj: &Map<String, Value>,
    action: &str,
) -> Result<SubscriptionRequest, ActionError> {
    let name = match obj.get("channel") {
        Some(Value::String(c)) => c,
        Some(_) => return Err(ActionError::invalid_frame("channel", "must be a string")),
        None => return Err(ActionError::invalid_frame("channel", "is required")),
    };
    let Ok(channel) = name.parse::<Channel>() else {
        return Err(ActionError {
            code: ErrorCode::UnsupportedChannel,
            message: format!("unsupported channel {name:?}"),
            meta: ErrorMeta {
                channel: Some(name.clone()),
                action: Some(action.to_owned()),
                errors: None,
            },
        });
    };
    let key = match channel {
        Channel::Targets => SubscriptionKey::Targets,
        Channel::PaymentMethods => SubscriptionKey::PaymentMethods,
        Channel::PaymentRequests => payment_request_key(obj)
            .map_err(|errors| ActionError::invalid_in_channel(channel, action, errors))?,
    };
    let (payment_request_id, provider_payment_id) = match &key {
        SubscriptionKey::PaymentRequest(_) => (
            obj.get("payment_request_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
            None,
        ),
        SubscriptionKey::ProviderPayment(id) => (None, Some(id.clone())),
        SubscriptionKey::Targets | SubscriptionKey::PaymentMethods => (None, None),
    };
    Ok(SubscriptionRequest {
        key,
        payment_request_id,
        provider_payment_id,
    })
}

/// Exactly one of the two ids, each well-formed. A JSON `null` counts as absent.
fn payment_request_key(obj: &Map<String, Value>) -> Result<SubscriptionKey, Vec<FieldError>> {
    let present = |name: &str| obj.get(name).filter(|v| !v.is_null());
    match (
        present("payment_request_id"),
        present("provider_payment_id"),
    ) {
        (None, None) => Err(vec![FieldError::new(
            "payment_request_id",
            "exactly one of payment_request_id or provider_payment_id is required",
        )]),
        (Some(_), Some(_)) => Err(vec![
            FieldError::new(
                "payment_request_id",
                "exactly one of payment_request_id or provider_payment_id may be sent",
            ),
            FieldError::new(
                "provider_payment_id",
                "exactly one of payment_request_id or provider_payment_id may be sent",
            ),
        ]),
        (Some(id), None) => id
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(SubscriptionKey::PaymentRequest)
            .ok_or_else(|| {
                vec![FieldError::new(
                    "payment_request_id",
                    "must be a UUID string",
                )]
            }),
        (None, Some(id)) => match id.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_PROVIDER_PAYMENT_ID_LEN => {
                Ok(SubscriptionKey::ProviderPayment(s.to_owned()))
            }
            _ => Err(vec![FieldError::new(
                "provider_payment_id",
                "must be a string of 1 to 255 characters",
            )]),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PR: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn err(frame: Value) -> ActionError {
        match Action::parse(&frame) {
            Err(e) => e,
            Ok(a) => panic!("expected an error for {frame}, got {a:?}"),
        }
    }

    fn fields(e: &ActionError) -> Vec<&str> {
        e.meta
            .errors
            .iter()
            .flatten()
            .map(|f| f.field.as_str())
            .collect()
    }

    #[test]
    fn subscribe_to_whole_project_channels() {
        for (name, key) in [
            ("targets", SubscriptionKey::Targets),
            ("payment-methods", SubscriptionKey::PaymentMethods),
        ] {
            let a = Action::parse(&json!({"action":"subscribe","channel":name}));
            assert_eq!(
                a,
                Ok(Action::Subscribe(SubscriptionRequest {
                    key,
                    payment_request_id: None,
                    provider_payment_id: None
                }))
            );
        }
    }

    #[test]
    fn ids_sent_with_a_whole_project_channel_are_ignored() {
        let a = Action::parse(
            &json!({"action":"subscribe","channel":"targets","payment_request_id":PR,"provider_payment_id":"x"}),
        );
        assert_eq!(
            a,
            Ok(Action::Subscribe(SubscriptionRequest {
                key: SubscriptionKey::Targets,
                payment_request_id: None,
                provider_payment_id: None
            }))
        );
    }

    #[test]
    fn subscribe_by_payment_request_id_or_provider_id() {
        let id = Uuid::parse_str(PR).expect("valid test uuid");
        assert_eq!(
            Action::parse(
                &json!({"action":"subscribe","channel":"payment-requests","payment_request_id":PR})
            ),
            Ok(Action::Subscribe(SubscriptionRequest {
                key: SubscriptionKey::PaymentRequest(id),
                payment_request_id: Some(PR.to_owned()),
                provider_payment_id: None
            }))
        );
        assert_eq!(
            Action::parse(
                &json!({"action":"unsubscribe","channel":"payment-requests","provider_payment_id":"pi_123"})
            ),
            Ok(Action::Unsubscribe(SubscriptionRequest {
                key: SubscriptionKey::ProviderPayment("pi_123".into()),
                payment_request_id: None,
                provider_payment_id: Some("pi_123".into())
            }))
        );
    }

    #[test]
    fn upper_case_payment_request_ids_are_accepted_and_echoed_as_sent() {
        let a = Action::parse(
            &json!({"action":"subscribe","channel":"payment-requests","payment_request_id":PR.to_uppercase()}),
        );
        let Ok(Action::Subscribe(req)) = a else {
            panic!("{a:?}")
        };
        assert_eq!(req.payment_request_id, Some(PR.to_uppercase()));
        assert_eq!(
            req.key,
            SubscriptionKey::PaymentRequest(Uuid::parse_str(PR).unwrap_or_default())
        );
    }

    #[test]
    fn a_string_holding_json_is_unwrapped_once() {
        let a = Action::parse(&json!("{\"action\":\"ping\",\"timestamp\":5}"));
        assert_eq!(a, Ok(Action::Ping { timestamp: Some(5) }));
        let e = err(json!("\"{\\\"action\\\":\\\"ping\\\"}\""));
        assert_eq!(e.code, ErrorCode::InvalidPayload);
    }

    #[test]
    fn not_json_is_invalid_payload_without_channel_meta() {
        let e = err(json!("{not json"));
        assert_eq!(e.code, ErrorCode::InvalidPayload);
        assert_eq!(
            e.meta.errors,
            Some(vec![FieldError::new("", "not valid JSON")])
        );
        assert_eq!(e.meta.channel, None);
        assert_eq!(e.meta.action, None);
    }

    #[test]
    fn non_objects_are_invalid_payload() {
        for frame in [
            json!(1),
            json!(null),
            json!([1, 2]),
            json!(true),
            json!("42"),
        ] {
            let e = err(frame);
            assert_eq!(e.code, ErrorCode::InvalidPayload);
            assert_eq!(fields(&e), vec![""]);
        }
    }

    #[test]
    fn action_must_be_a_known_string() {
        assert_eq!(fields(&err(json!({}))), vec!["action"]);
        assert_eq!(fields(&err(json!({"action": 3}))), vec!["action"]);
        let e = err(json!({"action":"publish","channel":"targets"}));
        assert_eq!(e.code, ErrorCode::UnsupportedAction);
        assert_eq!(e.meta.action.as_deref(), Some("publish"));
        assert_eq!(e.meta.channel.as_deref(), Some("targets"));
        assert_eq!(e.meta.errors, None);
    }

    #[test]
    fn channel_must_be_a_known_string() {
        let e = err(json!({"action":"subscribe"}));
        assert_eq!(
            (e.code, fields(&e)),
            (ErrorCode::InvalidPayload, vec!["channel"])
        );
        assert_eq!(e.meta.channel, None);
        let e = err(json!({"action":"subscribe","channel":7}));
        assert_eq!(
            (e.code, fields(&e)),
            (ErrorCode::InvalidPayload, vec!["channel"])
        );
        let e = err(json!({"action":"unsubscribe","channel":"chat"}));
        assert_eq!(e.code, ErrorCode::UnsupportedChannel);
        assert_eq!(e.meta.channel.as_deref(), Some("chat"));
        assert_eq!(e.meta.action.as_deref(), Some("unsubscribe"));
    }

    #[test]
    fn payment_requests_need_exactly_one_well_formed_id() {
        let cases = [
            (json!({}), vec!["payment_request_id"]),
            (
                json!({"payment_request_id": PR, "provider_payment_id": "pi"}),
                vec!["payment_request_id", "provider_payment_id"],
            ),
            (
                json!({"payment_request_id": "nope"}),
                vec!["payment_request_id"],
            ),
            (json!({"payment_request_id": 5}), vec!["payment_request_id"]),
            (
                json!({"provider_payment_id": ""}),
                vec!["provider_payment_id"],
            ),
            (
                json!({"provider_payment_id": "x".repeat(256)}),
                vec!["provider_payment_id"],
            ),
            (
                json!({"provider_payment_id": 12}),
                vec!["provider_payment_id"],
            ),
        ];
        for (ids, expected) in cases {
            let mut frame = json!({"action":"subscribe","channel":"payment-requests"});
            if let (Some(f), Some(extra)) = (frame.as_object_mut(), ids.as_object()) {
                f.extend(extra.clone());
            }
            let e = err(frame.clone());
            assert_eq!(e.code, ErrorCode::InvalidPayload, "{frame}");
            assert_eq!(fields(&e), expected, "{frame}");
            assert_eq!(e.meta.channel.as_deref(), Some("payment-requests"));
            assert_eq!(e.meta.action.as_deref(), Some("subscribe"));
        }
        let ok = Action::parse(
            &json!({"action":"subscribe","channel":"payment-requests","provider_payment_id":"x".repeat(255)}),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn ping_timestamp_is_optional_but_integral() {
        assert_eq!(
            Action::parse(&json!({"action":"ping"})),
            Ok(Action::Ping { timestamp: None })
        );
        assert_eq!(
            Action::parse(&json!({"action":"ping","timestamp":null})),
            Ok(Action::Ping { timestamp: None })
        );
        assert_eq!(
            Action::parse(&json!({"action":"ping","timestamp":1700000000000_i64})),
            Ok(Action::Ping {
                timestamp: Some(1_700_000_000_000)
            })
        );
        for bad in [
            json!("1"),
            json!(1.5),
            json!(true),
            json!({}),
            json!(u64::MAX),
        ] {
            let e = err(json!({"action":"ping","timestamp":bad}));
            assert_eq!(
                (e.code, fields(&e)),
                (ErrorCode::InvalidPayload, vec!["timestamp"])
            );
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let a = Action::parse(&json!({"action":"ping","extra":{"deep":[1,2,3]}}));
        assert_eq!(a, Ok(Action::Ping { timestamp: None }));
    }
}
