//! Whatever travels on a project's bus channel: a live-updates [`Publication`] or a
//! [`ChatPublication`], told apart by the `event` name.

use serde_json::Value;
use uuid::Uuid;

use crate::chat::{ChatEvent, ChatPublication};
use crate::publication::{Publication, PublicationError};

#[derive(Debug, Clone, PartialEq)]
pub enum AnyPublication {
    Live(Publication),
    Chat(ChatPublication),
}

impl AnyPublication {
    pub fn parse(bytes: &[u8]) -> Result<AnyPublication, PublicationError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| PublicationError::NotJson)?;
        AnyPublication::from_value(value)
    }

    pub fn from_value(value: Value) -> Result<AnyPublication, PublicationError> {
        let is_chat = value
            .get("event")
            .and_then(Value::as_str)
            .is_some_and(|e| e.parse::<ChatEvent>().is_ok());
        if is_chat {
            ChatPublication::from_value(value).map(AnyPublication::Chat)
        } else {
            Publication::from_value(value).map(AnyPublication::Live)
        }
    }

    pub fn project_id(&self) -> Uuid {
        match self {
            AnyPublication::Live(p) => p.project_id,
            AnyPublication::Chat(p) => p.project_id,
        }
    }

    pub fn event_name(&self) -> &'static str {
        match self {
            AnyPublication::Live(p) => p.event.as_str(),
            AnyPublication::Chat(p) => p.event.as_str(),
        }
    }

    pub fn event_id_mut(&mut self) -> &mut Option<String> {
        match self {
            AnyPublication::Live(p) => &mut p.event_id,
            AnyPublication::Chat(p) => &mut p.event_id,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            AnyPublication::Live(p) => p.to_json(),
            AnyPublication::Chat(p) => p.to_json(),
        }
    }
}

impl From<Publication> for AnyPublication {
    fn from(p: Publication) -> Self {
        AnyPublication::Live(p)
    }
}

impl From<ChatPublication> for AnyPublication {
    fn from(p: ChatPublication) -> Self {
        AnyPublication::Chat(p)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn dispatches_on_the_event_name() {
        let p = "93425026-6bb8-4f81-a75d-63f538e1a123";
        let chat = AnyPublication::from_value(json!({"event":"channel_deleted","project_id":p,
            "data":{"channel_id":"1f2e3d4c-5b6a-7e8f-9a0b-1c2d3e4f5a6b"}}));
        assert!(matches!(chat, Ok(AnyPublication::Chat(_))));
        let live = AnyPublication::from_value(
            json!({"event":"payment-method.removed","channel":"payment-methods",
            "project_id":p,"payment_method_id":"pm"}),
        );
        assert!(matches!(live, Ok(AnyPublication::Live(_))));
        assert!(matches!(
            AnyPublication::from_value(json!({"event":"nope"})),
            Err(PublicationError::Invalid(_))
        ));
        assert_eq!(AnyPublication::parse(b"{"), Err(PublicationError::NotJson));
    }
}
