//! Typed constructors for every publication. Each returns a validated [`Publication`], so a
//! mistake is caught here rather than dropped by the gateways.

use livegate_protocol::chat::{ChatEvent, ChatPublication};
use livegate_protocol::payment_request::PaymentRequestStatus;
use livegate_protocol::publication::PublicationError;
use livegate_protocol::target::{Target, transition};
use livegate_protocol::{Channel, EventName, Publication};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// `update_type` of `payment-request.updated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateType {
    Created,
    Completed,
}

impl UpdateType {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateType::Created => "created",
            UpdateType::Completed => "completed",
        }
    }
}

fn build(
    event: EventName,
    project_id: Uuid,
    fields: Value,
) -> Result<Publication, PublicationError> {
    let mut body = Map::new();
    body.insert("event".into(), json!(event.as_str()));
    body.insert("channel".into(), json!(event.channel().as_str()));
    body.insert("project_id".into(), json!(project_id));
    if let Value::Object(extra) = fields {
        body.extend(extra);
    }
    Publication::from_value(Value::Object(body))
}

/// The event a stored target change derives (CONTRACT §4), or `None` for a no-op.
pub fn target_change(
    project_id: Uuid,
    before: Option<&Target>,
    after: Option<&Target>,
) -> Result<Option<Publication>, PublicationError> {
    transition(before, after)
        .map(|change| Publication::from_value(Value::Object(change.publication(project_id))))
        .transpose()
}

/// `payment-method.added`; `payment_method` is reduced to its allow-list by validation.
pub fn payment_method_added(
    project_id: Uuid,
    payment_method: Value,
) -> Result<Publication, PublicationError> {
    build(
        EventName::PaymentMethodAdded,
        project_id,
        json!({ "payment_method": payment_method }),
    )
}

/// `payment-method.removed`.
pub fn payment_method_removed(
    project_id: Uuid,
    payment_method_id: &str,
    user_id: Option<&str>,
) -> Result<Publication, PublicationError> {
    let mut fields = json!({ "payment_method_id": payment_method_id });
    if let (Some(user), Some(obj)) = (user_id, fields.as_object_mut()) {
        obj.insert("user_id".into(), json!(user));
    }
    build(EventName::PaymentMethodRemoved, project_id, fields)
}

/// `payment-request.updated` with the REST snapshot of the request.
pub fn payment_request_updated(
    project_id: Uuid,
    update_type: UpdateType,
    payment_request: Value,
) -> Result<Publication, PublicationError> {
    build(
        EventName::PaymentRequestUpdated,
        project_id,
        json!({ "update_type": update_type.as_str(), "payment_request": payment_request }),
    )
}

/// `subscription.closed`: ends the request's subscriptions on every node.
pub fn subscription_closed(
    project_id: Uuid,
    payment_request_id: Option<Uuid>,
    provider_payment_id: Option<String>,
    status: PaymentRequestStatus,
) -> Result<Publication, PublicationError> {
    build(
        EventName::SubscriptionClosed,
        project_id,
        json!({
            "payment_request_id": payment_request_id,
            "provider_payment_id": provider_payment_id,
            "status": status.as_str(),
        }),
    )
}

/// A chat publication (the `/chat` namespace, seed 002): `data` is the event's body.
pub fn chat(
    project_id: Uuid,
    event: ChatEvent,
    data: Value,
) -> Result<ChatPublication, PublicationError> {
    ChatPublication::from_value(
        json!({"event": event.as_str(), "project_id": project_id, "data": data}),
    )
}

/// The channel a publication travels on, for callers that route by channel.
pub fn channel_of(publication: &Publication) -> Channel {
    publication.event.channel()
}

#[cfg(test)]
mod tests {
    use livegate_protocol::target::{Platform, TargetKind};

    use super::*;

    fn target(enabled: bool, name: &str) -> Target {
        Target {
            target_id: Uuid::from_u128(1),
            target_name: name.into(),
            platform: Platform::Telegram,
            kind: TargetKind::Group,
            external_id: "-100".into(),
            is_enabled: enabled,
            parent_target_id: None,
            plan_count: None,
            participant_count: None,
        }
    }

    #[test]
    fn target_pairs_become_their_one_event() {
        let p = Uuid::from_u128(9);
        let on = target(true, "a");
        let off = target(false, "b");
        let e = |b: Option<&Target>, a: Option<&Target>| {
            target_change(p, b, a).ok().flatten().map(|x| x.event)
        };
        assert_eq!(e(None, Some(&on)), Some(EventName::TargetAdded));
        assert_eq!(e(Some(&on), Some(&off)), Some(EventName::TargetDisabled));
        assert_eq!(
            e(Some(&on), Some(&target(true, "c"))),
            Some(EventName::TargetUpdated)
        );
        assert_eq!(e(Some(&on), Some(&on)), None);
        assert_eq!(e(Some(&on), None), Some(EventName::TargetRemoved));
    }

    #[test]
    fn builders_validate() {
        let p = Uuid::from_u128(9);
        assert!(payment_method_added(p, json!({"payment_method_id": "pm", "token": "x"})).is_ok());
        assert!(payment_method_added(p, json!({"label": "no id"})).is_err());
        assert!(payment_method_removed(p, "pm", Some("u")).is_ok());
        assert!(subscription_closed(p, None, None, PaymentRequestStatus::Completed).is_err());
        assert!(
            subscription_closed(p, None, Some("pi".into()), PaymentRequestStatus::Failed).is_ok()
        );
        let pr = json!({"payment_request_id": Uuid::from_u128(3), "provider_payment_id": null,
            "status": "completed", "request_type": "balance", "amount": "5", "currency": "EUR"});
        assert!(payment_request_updated(p, UpdateType::Completed, pr).is_ok());
        let channel = Uuid::from_u128(4);
        assert!(
            chat(
                p,
                ChatEvent::MemberJoined,
                json!({"channel_id": channel, "user_id": "u1"})
            )
            .is_ok()
        );
        assert!(chat(p, ChatEvent::MemberJoined, json!({"channel_id": channel})).is_err());
    }
}
