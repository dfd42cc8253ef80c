//! The chat namespace's wire model (seed 002): event types, topics (`global`, `channel:{id}`,
//! `user:{id}`), client actions, and chat publications validated per event type.
//!
//! Chat reuses the live-updates rules: the same handshake, the same `error` codes and `meta`,
//! the same publication format (`event` plus the body, here `{project_id, data}`), the same
//! Redis project channel. Clients receive `{type, timestamp, data, event_id}`.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::action::ActionError;
use crate::error_code::ErrorCode;
use crate::field_error::FieldError;
use crate::message::ErrorMeta;
use crate::publication::{PublicationError, take_event_id};

/// The Socket.IO namespace of the chat events.
pub const CHAT_NAMESPACE: &str = "/chat";

/// The chat event types of seed 002.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatEvent {
    ChannelMessage,
    MessageUpdated,
    MessageDeleted,
    MessageReply,
    MemberJoined,
    MemberLeft,
    MemberRoleUpdated,
    UserBanned,
    UserUnbanned,
    UserKicked,
    ChannelCreated,
    ChannelUpdated,
    ChannelDeleted,
    UserTyping,
}

impl ChatEvent {
    pub const ALL: [ChatEvent; 14] = [
        ChatEvent::ChannelMessage,
        ChatEvent::MessageUpdated,
        ChatEvent::MessageDeleted,
        ChatEvent::MessageReply,
        ChatEvent::MemberJoined,
        ChatEvent::MemberLeft,
        ChatEvent::MemberRoleUpdated,
        ChatEvent::UserBanned,
        ChatEvent::UserUnbanned,
        ChatEvent::UserKicked,
        ChatEvent::ChannelCreated,
        ChatEvent::ChannelUpdated,
        ChatEvent::ChannelDeleted,
        ChatEvent::UserTyping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChatEvent::ChannelMessage => "channel_message",
            ChatEvent::MessageUpdated => "message_updated",
            ChatEvent::MessageDeleted => "message_deleted",
            ChatEvent::MessageReply => "message_reply",
            ChatEvent::MemberJoined => "member_joined",
            ChatEvent::MemberLeft => "member_left",
            ChatEvent::MemberRoleUpdated => "member_role_updated",
            ChatEvent::UserBanned => "user_banned",
            ChatEvent::UserUnbanned => "user_unbanned",
            ChatEvent::UserKicked => "user_kicked",
            ChatEvent::ChannelCreated => "channel_created",
            ChatEvent::ChannelUpdated => "channel_updated",
            ChatEvent::ChannelDeleted => "channel_deleted",
            ChatEvent::UserTyping => "user_typing",
        }
    }

    /// Moderation events go to the channel and to the user concerned.
    pub fn is_moderation(self) -> bool {
        matches!(
            self,
            ChatEvent::UserBanned | ChatEvent::UserUnbanned | ChatEvent::UserKicked
        )
    }
}

impl fmt::Display for ChatEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChatEvent {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChatEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or(())
    }
}

/// What a chat subscription is held under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChatTopic {
    Global,
    Channel(Uuid),
    User(String),
}

impl ChatTopic {
    /// The wire name (`global`, `channel:{id}`, `user:{id}`).
    pub fn name(&self) -> String {
        match self {
            ChatTopic::Global => "global".to_owned(),
            ChatTopic::Channel(id) => format!("channel:{id}"),
            ChatTopic::User(id) => format!("user:{id}"),
        }
    }
}

/// A chat client action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatAction {
    /// `channel` is echoed exactly as sent.
    Subscribe {
        topic: ChatTopic,
        channel: String,
    },
    Unsubscribe {
        topic: ChatTopic,
        channel: String,
    },
    Ping {
        timestamp: Option<i64>,
    },
    Typing {
        channel_id: Uuid,
        is_typing: bool,
    },
}

fn invalid(field: &str, why: &str, meta: Option<(&str, &str)>) -> ActionError {
    ActionError {
        code: ErrorCode::InvalidPayload,
        message: format!(
            "invalid payload: {}",
            if field.is_empty() {
                why.to_owned()
            } else {
                format!("{field}: {why}")
            }
        ),
        meta: ErrorMeta {
            channel: meta.map(|(c, _)| c.to_owned()),
            action: meta.map(|(_, a)| a.to_owned()),
            errors: Some(vec![FieldError::new(field, why)]),
        },
    }
}

impl ChatAction {
    /// Parses one `message` frame of the chat namespace (same unwrapping rules as live updates).
    pub fn parse(frame: &Value) -> Result<ChatAction, ActionError> {
        let unwrapped;
        let frame = match frame {
            Value::String(text) => {
                unwrapped = serde_json::from_str::<Value>(text)
                    .map_err(|_| invalid("", "not valid JSON", None))?;
                &unwrapped
            }
            other => other,
        };
        let Value::Object(obj) = frame else {
            return Err(invalid("", "expected a JSON object", None));
        };
        let action = match obj.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(invalid("action", "must be a string", None)),
            None => return Err(invalid("action", "is required", None)),
        };
        match action {
            "ping" => match crate::Action::parse(frame)? {
                crate::Action::Ping { timestamp } => Ok(ChatAction::Ping { timestamp }),
                _ => Err(invalid("action", "must be ping", None)),
            },
            "subscribe" | "unsubscribe" => {
                let channel = match obj.get("channel") {
                    Some(Value::String(c)) => c.clone(),
                    Some(_) => return Err(invalid("channel", "must be a string", None)),
                    None => return Err(invalid("channel", "is required", None)),
                };
                let topic = parse_topic(&channel, action)?;
                Ok(if action == "subscribe" {
                    ChatAction::Subscribe { topic, channel }
                } else {
                    ChatAction::Unsubscribe { topic, channel }
                })
            }
            "typing" => {
                let channel_id = obj.get("channel_id").and_then(Value::as_str);
                let meta_channel = channel_id.map(|c| format!("channel:{c}"));
                let meta = meta_channel.as_deref().map(|c| (c, "typing"));
                let channel_id = channel_id
                    .and_then(|c| Uuid::parse_str(c).ok())
                    .ok_or_else(|| invalid("channel_id", "must be a UUID string", meta))?;
                let is_typing = obj
                    .get("is_typing")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| invalid("is_typing", "must be a boolean", meta))?;
                Ok(ChatAction::Typing {
                    channel_id,
                    is_typing,
                })
            }
            other => Err(ActionError::unsupported_action(obj, other)),
        }
    }
}

fn parse_topic(channel: &str, action: &str) -> Result<ChatTopic, ActionError> {
    let meta = Some((channel, action));
    if channel == "global" {
        return Ok(ChatTopic::Global);
    }
    if let Some(id) = channel.strip_prefix("channel:") {
        return Uuid::parse_str(id)
            .map(ChatTopic::Channel)
            .map_err(|_| invalid("channel", "channel:{id} needs a UUID", meta));
    }
    if let Some(id) = channel.strip_prefix("user:") {
        if id.is_empty() {
            return Err(invalid("channel", "user:{id} needs a user id", meta));
        }
        return Ok(ChatTopic::User(id.to_owned()));
    }
    Err(ActionError {
        code: ErrorCode::UnsupportedChannel,
        message: format!(
            "unsupported channel {channel:?}: use global, channel:{{id}} or user:{{id}}"
        ),
        meta: ErrorMeta {
            channel: Some(channel.to_owned()),
            action: Some(action.to_owned()),
            errors: None,
        },
    })
}

/// A validated chat publication.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPublication {
    pub event: ChatEvent,
    pub project_id: Uuid,
    pub event_id: Option<String>,
    pub data: Map<String, Value>,
    /// The chat channel the event concerns (every type but `channel_created` routes by it).
    pub channel_id: Uuid,
    /// For moderation and membership events: the user concerned.
    pub user_id: Option<String>,
    /// A connection that must not receive it (the sender of a client `typing`).
    pub origin_connection: Option<String>,
}

impl ChatPublication {
    pub fn from_value(value: Value) -> Result<ChatPublication, PublicationError> {
        let Value::Object(mut obj) = value else {
            return Err(PublicationError::NotAnObject);
        };
        let mut errors = Vec::new();
        let event = match obj
            .get("event")
            .and_then(Value::as_str)
            .map(str::parse::<ChatEvent>)
        {
            Some(Ok(e)) => Some(e),
            _ => {
                errors.push(FieldError::new("event", "must be a chat event type"));
                None
            }
        };
        let project_id = obj
            .get("project_id")
            .and_then(Value::as_str)
            .and_then(|p| Uuid::parse_str(p).ok());
        if project_id.is_none() {
            errors.push(FieldError::new("project_id", "must be a UUID"));
        }
        let event_id = take_event_id(&mut obj, &mut errors);
        let origin_connection = obj
            .get("origin_connection")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let data = match obj.remove("data") {
            Some(Value::Object(data)) => data,
            _ => {
                errors.push(FieldError::new("data", "must be an object"));
                Map::new()
            }
        };
        let mut check = DataCheck {
            data: &data,
            errors: &mut errors,
        };
        let channel_id = check.uuid("channel_id");
        let mut user_id = None;
        if let Some(event) = event {
            use ChatEvent::*;
            match event {
                ChannelMessage | MessageReply => {
                    check.uuid("message_id");
                    user_id = check.string("user_id");
                    check.optional_string("username");
                    check.text("content");
                    if event == MessageReply {
                        check.uuid("parent_message_id");
                    }
                }
                MessageUpdated => {
                    check.uuid("message_id");
                    check.text("content");
                }
                MessageDeleted => {
                    check.uuid("message_id");
                }
                MemberJoined | MemberLeft => {
                    user_id = check.string("user_id");
                    check.optional_string("username");
                }
                MemberRoleUpdated => {
                    user_id = check.string("user_id");
                    check.optional_string("username");
                    check.text("new_role");
                }
                UserBanned | UserUnbanned => {
                    user_id = check.string("user_id");
                    check.text("motive");
                }
                UserKicked => {
                    user_id = check.string("user_id");
                }
                ChannelCreated => {
                    check.text("channel_name");
                }
                ChannelUpdated | ChannelDeleted => {}
                UserTyping => {
                    user_id = check.string("user_id");
                    check.optional_string("username");
                    check.boolean("is_typing");
                }
            }
        }
        match (event, project_id, channel_id) {
            (Some(event), Some(project_id), Some(channel_id)) if errors.is_empty() => {
                Ok(ChatPublication {
                    event,
                    project_id,
                    event_id,
                    data,
                    channel_id,
                    user_id,
                    origin_connection,
                })
            }
            _ => Err(PublicationError::Invalid(errors)),
        }
    }

    /// The publication as JSON again (what goes on the bus).
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert(
            "event".into(),
            Value::String(self.event.as_str().to_owned()),
        );
        obj.insert(
            "project_id".into(),
            Value::String(self.project_id.to_string()),
        );
        obj.insert("data".into(), Value::Object(self.data.clone()));
        if let Some(id) = &self.event_id {
            obj.insert("event_id".into(), Value::String(id.clone()));
        }
        if let Some(origin) = &self.origin_connection {
            obj.insert("origin_connection".into(), Value::String(origin.clone()));
        }
        Value::Object(obj)
    }

    /// Where it goes: each topic with the data that topic's subscribers see.
    pub fn deliveries(&self) -> Vec<(ChatTopic, Map<String, Value>)> {
        match self.event {
            ChatEvent::ChannelCreated => vec![(ChatTopic::Global, self.data.clone())],
            e if e.is_moderation() => {
                let mut out = vec![(ChatTopic::Channel(self.channel_id), self.data.clone())];
                if let Some(user) = &self.user_id {
                    let mut personal = self.data.clone();
                    personal.remove("user_id");
                    out.push((ChatTopic::User(user.clone()), personal));
                }
                out
            }
            _ => vec![(ChatTopic::Channel(self.channel_id), self.data.clone())],
        }
    }

    /// The client payload: `{type, timestamp, data, event_id}`.
    pub fn envelope(&self, data: Map<String, Value>, timestamp: String, event_id: &str) -> Value {
        let mut obj = Map::new();
        obj.insert("type".into(), Value::String(self.event.as_str().to_owned()));
        obj.insert("timestamp".into(), Value::String(timestamp));
        obj.insert("data".into(), Value::Object(data));
        obj.insert("event_id".into(), Value::String(event_id.to_owned()));
        Value::Object(obj)
    }
}

/// Formats ms since the epoch as ISO 8601 UTC with milliseconds (`2025-01-15T10:30:00.000Z`).
pub fn iso_timestamp(ms: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

struct DataCheck<'a> {
    data: &'a Map<String, Value>,
    errors: &'a mut Vec<FieldError>,
}

impl DataCheck<'_> {
    fn fail(&mut self, field: &str, why: &str) {
        self.errors
            .push(FieldError::new(format!("/data/{field}"), why));
    }

    /// A user id: a non-empty string.
    fn string(&mut self, field: &str) -> Option<String> {
        match self.data.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => {
                self.fail(field, "must be a non-empty string");
                None
            }
        }
    }

    /// Free text (content, motive, role, name): any string, empty included.
    fn text(&mut self, field: &str) {
        if !self.data.get(field).is_some_and(Value::is_string) {
            self.fail(field, "must be a string");
        }
    }

    fn optional_string(&mut self, field: &str) {
        if !matches!(
            self.data.get(field),
            None | Some(Value::Null) | Some(Value::String(_))
        ) {
            self.fail(field, "must be a string or null");
        }
    }

    fn uuid(&mut self, field: &str) -> Option<Uuid> {
        let id = self
            .data
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        if id.is_none() {
            self.fail(field, "must be a UUID");
        }
        id
    }

    fn boolean(&mut self, field: &str) {
        if !self.data.get(field).is_some_and(Value::is_boolean) {
            self.fail(field, "must be a boolean");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const P: &str = "93425026-6bb8-4f81-a75d-63f538e1a123";
    const C: &str = "1f2e3d4c-5b6a-7e8f-9a0b-1c2d3e4f5a6b";
    const M: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    fn data(event: ChatEvent) -> Value {
        use ChatEvent::*;
        match event {
            ChannelMessage => {
                json!({"channel_id":C,"message_id":M,"user_id":"u1","username":null,"content":"hi"})
            }
            MessageUpdated => json!({"channel_id":C,"message_id":M,"content":"hi!"}),
            MessageDeleted => json!({"channel_id":C,"message_id":M}),
            MessageReply => {
                json!({"channel_id":C,"message_id":M,"parent_message_id":M,"user_id":"u1","content":"re"})
            }
            MemberJoined | MemberLeft => json!({"channel_id":C,"user_id":"u1","username":"Ann"}),
            MemberRoleUpdated => json!({"channel_id":C,"user_id":"u1","new_role":"admin"}),
            UserBanned | UserUnbanned => json!({"channel_id":C,"user_id":"u1","motive":"spam"}),
            UserKicked => json!({"channel_id":C,"user_id":"u1"}),
            ChannelCreated => json!({"channel_id":C,"channel_name":"general"}),
            ChannelUpdated => json!({"channel_id":C,"topic":"new"}),
            ChannelDeleted => json!({"channel_id":C}),
            UserTyping => json!({"channel_id":C,"user_id":"u1","username":"Ann","is_typing":true}),
        }
    }

    fn publication(event: ChatEvent) -> Value {
        json!({"event": event.as_str(), "project_id": P, "data": data(event)})
    }

    #[test]
    fn every_event_validates_and_routes() {
        for e in ChatEvent::ALL {
            let p = ChatPublication::from_value(publication(e))
                .unwrap_or_else(|err| panic!("{e}: {err}"));
            let topics: Vec<String> = p.deliveries().iter().map(|(t, _)| t.name()).collect();
            let expected: Vec<String> = if e == ChatEvent::ChannelCreated {
                vec!["global".into()]
            } else if e.is_moderation() {
                vec![format!("channel:{C}"), "user:u1".into()]
            } else {
                vec![format!("channel:{C}")]
            };
            assert_eq!(topics, expected, "{e}");
        }
    }

    #[test]
    fn the_user_copy_of_moderation_omits_user_id() {
        let p = ChatPublication::from_value(publication(ChatEvent::UserBanned))
            .unwrap_or_else(|e| panic!("{e}"));
        let d = p.deliveries();
        assert_eq!(d[0].1.get("user_id"), Some(&json!("u1")));
        assert_eq!(d[1].1.get("user_id"), None);
        assert_eq!(d[1].1.get("motive"), Some(&json!("spam")));
    }

    #[test]
    fn fields_are_checked() {
        let cases = [
            (ChatEvent::ChannelMessage, "message_id", json!("x")),
            (ChatEvent::ChannelMessage, "content", json!(5)),
            (ChatEvent::MessageReply, "parent_message_id", json!(null)),
            (ChatEvent::MemberRoleUpdated, "new_role", json!(null)),
            (ChatEvent::UserBanned, "motive", json!(1)),
            (ChatEvent::ChannelCreated, "channel_name", json!(7)),
            (ChatEvent::UserTyping, "is_typing", json!("yes")),
            (ChatEvent::ChannelDeleted, "channel_id", json!("nope")),
            (ChatEvent::MemberJoined, "username", json!(3)),
        ];
        for (event, field, bad) in cases {
            let mut v = publication(event);
            v["data"][field] = bad;
            match ChatPublication::from_value(v) {
                Err(PublicationError::Invalid(errors)) => {
                    assert_eq!(
                        errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                        [format!("/data/{field}")],
                        "{event}"
                    )
                }
                other => panic!("{event}/{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn topics_parse() {
        let sub = |c: &str| ChatAction::parse(&json!({"action":"subscribe","channel":c}));
        assert!(matches!(
            sub("global"),
            Ok(ChatAction::Subscribe {
                topic: ChatTopic::Global,
                ..
            })
        ));
        assert!(matches!(
            sub(&format!("channel:{C}")),
            Ok(ChatAction::Subscribe {
                topic: ChatTopic::Channel(_),
                ..
            })
        ));
        assert!(matches!(
            sub("user:abc"),
            Ok(ChatAction::Subscribe {
                topic: ChatTopic::User(_),
                ..
            })
        ));
        assert_eq!(
            sub("channel:x").err().map(|e| e.code),
            Some(ErrorCode::InvalidPayload)
        );
        assert_eq!(
            sub("user:").err().map(|e| e.code),
            Some(ErrorCode::InvalidPayload)
        );
        assert_eq!(
            sub("room:1").err().map(|e| e.code),
            Some(ErrorCode::UnsupportedChannel)
        );
        let typing =
            ChatAction::parse(&json!({"action":"typing","channel_id":C,"is_typing":false}));
        assert!(matches!(
            typing,
            Ok(ChatAction::Typing {
                is_typing: false,
                ..
            })
        ));
        let bad = ChatAction::parse(&json!({"action":"typing","channel_id":C}));
        assert_eq!(bad.err().map(|e| e.code), Some(ErrorCode::InvalidPayload));
    }

    #[test]
    fn timestamps_are_iso_8601_utc_with_millis() {
        assert_eq!(iso_timestamp(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_timestamp(1_736_937_000_000), "2025-01-15T10:30:00.000Z");
        assert_eq!(iso_timestamp(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_timestamp(-5), "1970-01-01T00:00:00.000Z");
    }
}
