//! The channels a client can subscribe to, and the key one subscription is held under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A channel of the live-updates namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    PaymentRequests,
    Targets,
    PaymentMethods,
}

impl Channel {
    /// Every channel, in the order `ready` lists them.
    pub const ALL: [Channel; 3] = [
        Channel::PaymentRequests,
        Channel::Targets,
        Channel::PaymentMethods,
    ];

    /// The wire name (`payment-requests`, `targets`, `payment-methods`).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PaymentRequests => "payment-requests",
            Channel::Targets => "targets",
            Channel::PaymentMethods => "payment-methods",
        }
    }

    /// Whether subscribing takes an identifier (`payment_request_id` / `provider_payment_id`).
    pub fn is_keyed(self) -> bool {
        match self {
            Channel::PaymentRequests => true,
            Channel::Targets | Channel::PaymentMethods => false,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire name matched no channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

/// What one subscription of a socket is held under. A socket holds each key at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriptionKey {
    /// The whole project's `targets` feed.
    Targets,
    /// The whole project's `payment-methods` feed.
    PaymentMethods,
    /// One payment request, by its id.
    PaymentRequest(Uuid),
    /// One payment request, by the provider's id for it.
    ProviderPayment(String),
}

impl SubscriptionKey {
    /// The channel the key belongs to.
    pub fn channel(&self) -> Channel {
        match self {
            SubscriptionKey::Targets => Channel::Targets,
            SubscriptionKey::PaymentMethods => Channel::PaymentMethods,
            SubscriptionKey::PaymentRequest(_) | SubscriptionKey::ProviderPayment(_) => {
                Channel::PaymentRequests
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(serde_json::to_value(c).ok(), Some(c.as_str().into()));
        }
        assert!("Targets".parse::<Channel>().is_err());
        assert!("".parse::<Channel>().is_err());
    }

    #[test]
    fn only_payment_requests_is_keyed() {
        assert!(Channel::PaymentRequests.is_keyed());
        assert!(!Channel::Targets.is_keyed());
        assert!(!Channel::PaymentMethods.is_keyed());
    }

    #[test]
    fn keys_know_their_channel() {
        assert_eq!(SubscriptionKey::Targets.channel(), Channel::Targets);
        assert_eq!(
            SubscriptionKey::PaymentMethods.channel(),
            Channel::PaymentMethods
        );
        assert_eq!(
            SubscriptionKey::PaymentRequest(Uuid::nil()).channel(),
            Channel::PaymentRequests
        );
        assert_eq!(
            SubscriptionKey::ProviderPayment("pi_1".into()).channel(),
            Channel::PaymentRequests
        );
    }
}
