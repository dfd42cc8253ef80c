//! Every Redis key and channel name livegate uses, built in one place (CONTRACT §5).
//!
//! | name | what |
//! |---|---|
//! | `{prefix}:project:{project_id}` | pub/sub channel of one project's publications |
//! | `{prefix}:control` | pub/sub channel of cluster-wide commands (`session.revoked`) |
//! | `{prefix}:revoked-session:{sid}` | string, present while a session is revoked |
//! | `{prefix}:payment-request:{payment_request_id}` | JSON `{project_id, provider_payment_id, status}` |
//! | `{prefix}:provider-payment:{provider_payment_id}` | JSON `{project_id, payment_request_id}` |
//! | `{prefix}:targets:{project_id}` | hash of a project's targets: `target_id` → JSON snapshot (targets API) |
//! | `{prefix}:chat-members:{project_id}:{channel_id}` | set of the user ids of one chat channel |

use uuid::Uuid;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "livegate";

/// Builds the Redis names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisNames {
    prefix: String,
}

impl Default for RedisNames {
    fn default() -> Self {
        RedisNames::new(DEFAULT_PREFIX)
    }
}

impl RedisNames {
    pub fn new(prefix: impl Into<String>) -> Self {
        RedisNames {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Project ids are always written in lower case (the hyphenated form of [`Uuid`]).
    pub fn project_channel(&self, project_id: Uuid) -> String {
        format!("{}:project:{}", self.prefix, project_id)
    }

    /// The project a project channel name belongs to, if it is one under this prefix.
    pub fn project_of_channel(&self, channel: &str) -> Option<Uuid> {
        let rest = channel
            .strip_prefix(&self.prefix)?
            .strip_prefix(":project:")?;
        Uuid::parse_str(rest).ok()
    }

    pub fn control_channel(&self) -> String {
        format!("{}:control", self.prefix)
    }

    pub fn revoked_session(&self, sid: &str) -> String {
        format!("{}:revoked-session:{}", self.prefix, sid)
    }

    pub fn payment_request(&self, payment_request_id: Uuid) -> String {
        format!("{}:payment-request:{}", self.prefix, payment_request_id)
    }

    pub fn targets(&self, project_id: Uuid) -> String {
        format!("{}:targets:{}", self.prefix, project_id)
    }

    pub fn chat_members(&self, project_id: Uuid, channel_id: Uuid) -> String {
        format!("{}:chat-members:{}:{}", self.prefix, project_id, channel_id)
    }

    pub fn provider_payment(&self, provider_payment_id: &str) -> String {
        format!("{}:provider-payment:{}", self.prefix, provider_payment_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let n = RedisNames::default();
        let p = Uuid::parse_str("93425026-6BB8-4F81-A75D-63F538E1A123").expect("uuid");
        assert_eq!(
            n.project_channel(p),
            "livegate:project:93425026-6bb8-4f81-a75d-63f538e1a123"
        );
        assert_eq!(n.project_of_channel(&n.project_channel(p)), Some(p));
        assert_eq!(n.project_of_channel("other:project:x"), None);
        assert_eq!(n.control_channel(), "livegate:control");
        assert_eq!(n.revoked_session("s1"), "livegate:revoked-session:s1");
        assert_eq!(
            RedisNames::new("lg").payment_request(Uuid::nil()),
            "lg:payment-request:00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(n.provider_payment("pi_1"), "livegate:provider-payment:pi_1");
    }
}
