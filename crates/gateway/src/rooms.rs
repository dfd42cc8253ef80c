//! Every Socket.IO room name, built here and nowhere else. Channel rooms always start with the
//! project id, so no emit to a room can cross projects.

use livegate_protocol::chat::ChatTopic;
use livegate_protocol::{Route, SubscriptionKey};
use uuid::Uuid;

/// The room one subscription joins.
pub fn for_key(project_id: Uuid, key: &SubscriptionKey) -> String {
    match key {
        SubscriptionKey::Targets => format!("{project_id}:targets"),
        SubscriptionKey::PaymentMethods => format!("{project_id}:payment-methods"),
        SubscriptionKey::PaymentRequest(id) => format!("{project_id}:pr:{id}"),
        SubscriptionKey::ProviderPayment(id) => format!("{project_id}:pp:{id}"),
    }
}

/// The subscription keys a route reaches (one or two).
pub fn keys_for_route(route: &Route) -> Vec<SubscriptionKey> {
    match route {
        Route::Channel(channel) => match channel {
            livegate_protocol::Channel::Targets => vec![SubscriptionKey::Targets],
            livegate_protocol::Channel::PaymentMethods => vec![SubscriptionKey::PaymentMethods],
            livegate_protocol::Channel::PaymentRequests => vec![],
        },
        Route::PaymentRequest {
            payment_request_id,
            provider_payment_id,
        } => payment_request_id
            .map(SubscriptionKey::PaymentRequest)
            .into_iter()
            .chain(
                provider_payment_id
                    .clone()
                    .map(SubscriptionKey::ProviderPayment),
            )
            .collect(),
    }
}

/// The room of one chat topic (`global`, `channel:{id}`, `user:{id}`) within a project.
pub fn for_chat_topic(project_id: Uuid, topic: &ChatTopic) -> String {
    format!("{project_id}:chat:{}", topic.name())
}

/// One connection alone (to leave the sender out of a broadcast).
pub fn for_connection(connection_id: Uuid) -> String {
    format!("connection:{connection_id}")
}

/// Every socket of one session (`sid`), whatever its project: revocation is per session.
pub fn for_session(sid: &str) -> String {
    format!("session:{sid}")
}

/// What a subscription room is for, as the `channel` label of the `livegate_subscriptions`
/// gauge: the channel name, or `chat`.
pub fn subscription_label(room: &str) -> &'static str {
    let kind = room.split_once(':').map_or("", |(_, rest)| rest);
    match kind.split_once(':').map_or(kind, |(head, _)| head) {
        "targets" => "targets",
        "payment-methods" => "payment-methods",
        "pr" | "pp" => "payment-requests",
        "chat" => "chat",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use livegate_protocol::Channel;

    use super::*;

    #[test]
    fn rooms_are_project_scoped() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        for key in [
            SubscriptionKey::Targets,
            SubscriptionKey::PaymentMethods,
            SubscriptionKey::PaymentRequest(Uuid::from_u128(3)),
            SubscriptionKey::ProviderPayment("pi".into()),
        ] {
            assert!(for_key(a, &key).starts_with(&a.to_string()));
            assert_ne!(for_key(a, &key), for_key(b, &key));
        }
    }

    #[test]
    fn routes_reach_both_ids() {
        let id = Uuid::from_u128(3);
        let keys = keys_for_route(&Route::PaymentRequest {
            payment_request_id: Some(id),
            provider_payment_id: Some("pi".into()),
        });
        assert_eq!(
            keys,
            vec![
                SubscriptionKey::PaymentRequest(id),
                SubscriptionKey::ProviderPayment("pi".into())
            ]
        );
        assert_eq!(
            keys_for_route(&Route::Channel(Channel::Targets)),
            vec![SubscriptionKey::Targets]
        );
    }
}
