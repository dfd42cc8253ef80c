//! Broadcast event names (the string a client passes to `socket.on(...)`) and their channels.

use std::fmt;
use std::str::FromStr;

use crate::channel::Channel;

/// Every broadcast event of the live-updates namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    TargetAdded,
    TargetRemoved,
    TargetEnabled,
    TargetDisabled,
    TargetUpdated,
    PaymentMethodAdded,
    PaymentMethodRemoved,
    PaymentRequestUpdated,
    SubscriptionClosed,
}

impl EventName {
    pub const ALL: [EventName; 9] = [
        EventName::TargetAdded,
        EventName::TargetRemoved,
        EventName::TargetEnabled,
        EventName::TargetDisabled,
        EventName::TargetUpdated,
        EventName::PaymentMethodAdded,
        EventName::PaymentMethodRemoved,
        EventName::PaymentRequestUpdated,
        EventName::SubscriptionClosed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::TargetAdded => "target.added",
            EventName::TargetRemoved => "target.removed",
            EventName::TargetEnabled => "target.enabled",
            EventName::TargetDisabled => "target.disabled",
            EventName::TargetUpdated => "target.updated",
            EventName::PaymentMethodAdded => "payment-method.added",
            EventName::PaymentMethodRemoved => "payment-method.removed",
            EventName::PaymentRequestUpdated => "payment-request.updated",
            EventName::SubscriptionClosed => "subscription.closed",
        }
    }

    /// The channel whose subscribers receive the event.
    pub fn channel(self) -> Channel {
        match self {
            EventName::TargetAdded
            | EventName::TargetRemoved
            | EventName::TargetEnabled
            | EventName::TargetDisabled
            | EventName::TargetUpdated => Channel::Targets,
            EventName::PaymentMethodAdded | EventName::PaymentMethodRemoved => {
                Channel::PaymentMethods
            }
            EventName::PaymentRequestUpdated | EventName::SubscriptionClosed => {
                Channel::PaymentRequests
            }
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name matched no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event {0:?}")]
pub struct UnknownEvent(pub String);

impl FromStr for EventName {
    type Err = UnknownEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventName::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_map_to_channels() {
        for e in EventName::ALL {
            assert_eq!(e.as_str().parse::<EventName>(), Ok(e));
            let prefix = match e.channel() {
                Channel::Targets => "target.",
                Channel::PaymentMethods => "payment-method.",
                Channel::PaymentRequests => {
                    if e == EventName::SubscriptionClosed {
                        "subscription."
                    } else {
                        "payment-request."
                    }
                }
            };
            assert!(e.as_str().starts_with(prefix), "{e}");
        }
        assert!("target.renamed".parse::<EventName>().is_err());
    }
}
