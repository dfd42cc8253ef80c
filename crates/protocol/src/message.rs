//! System messages: what the gateway says on the `message` event (seed 003). Broadcast events
//! are not here; they are publications, see [`crate::publication`].

use serde::Serialize;
use uuid::Uuid;

use crate::action::{ActionError, SubscriptionRequest};
use crate::channel::Channel;
use crate::error_code::ErrorCode;
use crate::field_error::FieldError;

/// One system message, serialized with its `event` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SystemMessage {
    /// Sent once, right after the handshake.
    Ready {
        connection_id: Uuid,
        channels: Vec<Channel>,
    },
    Subscribed(SubscriptionAck),
    Unsubscribed(SubscriptionAck),
    Pong {
        /// Server time at reply, ms since epoch.
        timestamp: i64,
        /// The client's `timestamp`, or `null`.
        received_timestamp: Option<i64>,
    },
    Error {
        code: ErrorCode,
        message: String,
        meta: ErrorMeta,
    },
}

/// The body of `subscribed`/`unsubscribed`: both ids always present, `null` where they do not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionAck {
    pub channel: Channel,
    pub project_id: Uuid,
    pub payment_request_id: Option<String>,
    pub provider_payment_id: Option<String>,
}

impl SubscriptionAck {
    pub fn new(project_id: Uuid, request: &SubscriptionRequest) -> Self {
        SubscriptionAck {
            channel: request.channel(),
            project_id,
            payment_request_id: request.payment_request_id.clone(),
            provider_payment_id: request.provider_payment_id.clone(),
        }
    }
}

/// `meta` of an `error`: channel and action where the error was raised in a channel-aware path,
/// field-level `errors` for `invalid_payload`. Absent members are left out of the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ErrorMeta {
    /// Meta of an error raised for a known channel and action.
    pub fn for_action(channel: Channel, action: &str) -> Self {
        ErrorMeta {
            channel: Some(channel.as_str().to_owned()),
            action: Some(action.to_owned()),
            errors: None,
        }
    }
}

impl SystemMessage {
    /// An `error` raised in a channel-aware path (`forbidden`, `subscription_failed`, ...).
    pub fn error(code: ErrorCode, message: impl Into<String>, meta: ErrorMeta) -> Self {
        SystemMessage::Error {
            code,
            message: message.into(),
            meta,
        }
    }
}

impl From<ActionError> for SystemMessage {
    fn from(e: ActionError) -> Self {
        SystemMessage::Error {
            code: e.code,
            message: e.message,
            meta: e.meta,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::action::Action;

    #[test]
    fn ready_lists_connection_and_channels() {
        let id = Uuid::nil();
        let m = SystemMessage::Ready {
            connection_id: id,
            channels: vec![Channel::PaymentRequests, Channel::Targets],
        };
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(
                json!({"event":"ready","connection_id":id,"channels":["payment-requests","targets"]})
            )
        );
    }

    #[test]
    fn acks_carry_both_ids_even_when_null() {
        let project = Uuid::nil();
        let Ok(Action::Subscribe(req)) =
            Action::parse(&json!({"action":"subscribe","channel":"targets"}))
        else {
            panic!("subscribe parses")
        };
        let m = SystemMessage::Subscribed(SubscriptionAck::new(project, &req));
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(
                json!({"event":"subscribed","channel":"targets","project_id":project,
                "payment_request_id":null,"provider_payment_id":null})
            )
        );
        let Ok(Action::Unsubscribe(req)) = Action::parse(
            &json!({"action":"unsubscribe","channel":"payment-requests","provider_payment_id":"pi_9"}),
        ) else {
            panic!("unsubscribe parses")
        };
        let m = SystemMessage::Unsubscribed(SubscriptionAck::new(project, &req));
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(
                json!({"event":"unsubscribed","channel":"payment-requests","project_id":project,
                "payment_request_id":null,"provider_payment_id":"pi_9"})
            )
        );
    }

    #[test]
    fn pong_echoes_null_when_no_timestamp() {
        let m = SystemMessage::Pong {
            timestamp: 10,
            received_timestamp: None,
        };
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(json!({"event":"pong","timestamp":10,"received_timestamp":null}))
        );
    }

    #[test]
    fn errors_leave_absent_meta_members_out() {
        let Err(e) = Action::parse(&json!("nope{")) else {
            panic!("not json")
        };
        assert_eq!(
            serde_json::to_value(SystemMessage::from(e)).ok(),
            Some(
                json!({"event":"error","code":"invalid_payload","message":"invalid payload: not valid JSON",
                "meta":{"errors":[{"field":"","message":"not valid JSON"}]}})
            )
        );
        let m = SystemMessage::error(
            ErrorCode::Forbidden,
            "no",
            ErrorMeta::for_action(Channel::Targets, "subscribe"),
        );
        assert_eq!(
            serde_json::to_value(m).ok(),
            Some(json!({"event":"error","code":"forbidden","message":"no",
                "meta":{"channel":"targets","action":"subscribe"}}))
        );
    }
}
