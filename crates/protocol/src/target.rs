//! Target snapshots and the transition rule (CONTRACT §4, seed 000): given the stored snapshot
//! before and after one change, exactly one event or none.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::channel::Channel;
use crate::event::EventName;

/// The platform a target lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Discord,
    Telegram,
}

/// What kind of place a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    Guild,
    Group,
    Channel,
    Role,
}

pub const PLATFORMS: [&str; 2] = ["discord", "telegram"];
pub const TARGET_KINDS: [&str; 4] = ["guild", "group", "channel", "role"];

/// The full snapshot of one target, as stored and as sent in `target` payloads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub target_id: Uuid,
    pub target_name: String,
    pub platform: Platform,
    pub kind: TargetKind,
    pub external_id: String,
    pub is_enabled: bool,
    pub parent_target_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_count: Option<i64>,
}

/// The one event a stored change derives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetChange {
    Added(Target),
    /// Carries the snapshot before deletion: the event names its id, kind and external id.
    Removed(Target),
    Enabled(Target),
    Disabled(Target),
    Updated(Target),
}

/// Derives the event for one change: created → added; deleted → removed; `is_enabled` flipped →
/// enabled/disabled (even when other fields changed too); else any change among the metadata
/// fields → updated; no change → `None`.
pub fn transition(before: Option<&Target>, after: Option<&Target>) -> Option<TargetChange> {
    match (before, after) {
        (None, None) => None,
        (None, Some(created)) => Some(TargetChange::Added(created.clone())),
        (Some(deleted), None) => Some(TargetChange::Removed(deleted.clone())),
        (Some(old), Some(new)) if old.is_enabled != new.is_enabled => Some(if new.is_enabled {
            TargetChange::Enabled(new.clone())
        } else {
            TargetChange::Disabled(new.clone())
        }),
        (Some(old), Some(new)) if metadata_changed(old, new) => {
            Some(TargetChange::Updated(new.clone()))
        }
        (Some(_), Some(_)) => None,
    }
}

fn metadata_changed(old: &Target, new: &Target) -> bool {
    old.target_name != new.target_name
        || old.kind != new.kind
        || old.external_id != new.external_id
        || old.parent_target_id != new.parent_target_id
        || old.plan_count != new.plan_count
        || old.participant_count != new.participant_count
}

impl TargetChange {
    pub fn event(&self) -> EventName {
        match self {
            TargetChange::Added(_) => EventName::TargetAdded,
            TargetChange::Removed(_) => EventName::TargetRemoved,
            TargetChange::Enabled(_) => EventName::TargetEnabled,
            TargetChange::Disabled(_) => EventName::TargetDisabled,
            TargetChange::Updated(_) => EventName::TargetUpdated,
        }
    }

    pub fn target(&self) -> &Target {
        match self {
            TargetChange::Added(t)
            | TargetChange::Removed(t)
            | TargetChange::Enabled(t)
            | TargetChange::Disabled(t)
            | TargetChange::Updated(t) => t,
        }
    }

    /// The publication (with its `event` field) a publisher sends for this change.
    pub fn publication(&self, project_id: Uuid) -> Map<String, Value> {
        let t = self.target();
        let mut body = json!({
            "event": self.event().as_str(),
            "channel": Channel::Targets.as_str(),
            "project_id": project_id,
            "platform": t.platform,
        });
        if let Value::Object(map) = &mut body {
            match self {
                TargetChange::Removed(t) => {
                    map.insert("target_id".into(), json!(t.target_id));
                    map.insert("kind".into(), json!(t.kind));
                    map.insert("external_id".into(), json!(t.external_id));
                }
                _ => {
                    map.insert("target".into(), json!(t));
                }
            }
        }
        match body {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Target {
        Target {
            target_id: Uuid::from_u128(1),
            target_name: "My Server".into(),
            platform: Platform::Discord,
            kind: TargetKind::Guild,
            external_id: "123".into(),
            is_enabled: true,
            parent_target_id: None,
            plan_count: Some(0),
            participant_count: Some(0),
        }
    }

    fn event_of(before: Option<&Target>, after: Option<&Target>) -> Option<EventName> {
        transition(before, after).map(|c| c.event())
    }

    #[test]
    fn create_and_delete() {
        let t = base();
        assert_eq!(event_of(None, Some(&t)), Some(EventName::TargetAdded));
        assert_eq!(event_of(Some(&t), None), Some(EventName::TargetRemoved));
        assert_eq!(event_of(None, None), None);
    }

    #[test]
    fn no_change_is_no_event() {
        let t = base();
        assert_eq!(event_of(Some(&t), Some(&t.clone())), None);
    }

    #[test]
    fn each_metadata_field_is_an_update() {
        let t = base();
        type Edit = (&'static str, fn(&mut Target));
        let edits: [Edit; 6] = [
            ("target_name", |t| t.target_name = "Renamed".into()),
            ("kind", |t| t.kind = TargetKind::Role),
            ("external_id", |t| t.external_id = "456".into()),
            ("parent_target_id", |t| {
                t.parent_target_id = Some(Uuid::from_u128(9))
            }),
            ("plan_count", |t| t.plan_count = Some(3)),
            ("participant_count", |t| t.participant_count = Some(142)),
        ];
        for (field, edit) in edits {
            let mut after = t.clone();
            edit(&mut after);
            assert_eq!(
                transition(Some(&t), Some(&after)),
                Some(TargetChange::Updated(after.clone())),
                "{field}"
            );
        }
    }

    #[test]
    fn absent_counts_compare_as_values() {
        let t = base();
        let mut after = t.clone();
        after.plan_count = None;
        assert_eq!(
            event_of(Some(&t), Some(&after)),
            Some(EventName::TargetUpdated)
        );
    }

    #[test]
    fn platform_alone_is_not_a_listed_change() {
        let t = base();
        let mut after = t.clone();
        after.platform = Platform::Telegram;
        assert_eq!(event_of(Some(&t), Some(&after)), None);
    }

    #[test]
    fn enable_and_disable() {
        let mut off = base();
        off.is_enabled = false;
        let on = base();
        assert_eq!(
            event_of(Some(&off), Some(&on)),
            Some(EventName::TargetEnabled)
        );
        assert_eq!(
            event_of(Some(&on), Some(&off)),
            Some(EventName::TargetDisabled)
        );
    }

    #[test]
    fn combined_update_is_only_the_flip_with_new_metadata() {
        let on = base();
        let mut after = on.clone();
        after.is_enabled = false;
        after.target_name = "Maintenance".into();
        after.plan_count = Some(7);
        assert_eq!(
            transition(Some(&on), Some(&after)),
            Some(TargetChange::Disabled(after.clone()))
        );
    }

    #[test]
    fn publications_follow_seed_000() {
        let p = Uuid::from_u128(7);
        let t = base();
        let added = TargetChange::Added(t.clone()).publication(p);
        assert_eq!(added.get("event"), Some(&json!("target.added")));
        assert_eq!(added.get("channel"), Some(&json!("targets")));
        assert_eq!(added.get("platform"), Some(&json!("discord")));
        assert_eq!(added.get("target"), Some(&json!(t)));
        let removed = TargetChange::Removed(t.clone()).publication(p);
        assert_eq!(removed.get("target"), None);
        assert_eq!(removed.get("target_id"), Some(&json!(t.target_id)));
        assert_eq!(removed.get("kind"), Some(&json!("guild")));
        assert_eq!(removed.get("external_id"), Some(&json!("123")));
    }

    #[test]
    fn snapshots_without_counts_omit_them() {
        let mut t = base();
        t.plan_count = None;
        t.participant_count = None;
        let v = json!(t);
        assert!(v.get("plan_count").is_none());
        assert_eq!(v.get("parent_target_id"), Some(&Value::Null));
    }
}
