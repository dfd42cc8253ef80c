//! The subscriptions one socket holds: each key once, with the room it joined, and the project
//! lease that keeps publications flowing while at least one is held.

use std::collections::HashMap;

use livegate_protocol::SubscriptionKey;

use crate::engine::ProjectLease;

#[derive(Debug, Default)]
pub struct Subscriptions {
    rooms: HashMap<SubscriptionKey, String>,
    lease: Option<ProjectLease>,
    /// Set once the socket is gone: nothing may be added after.
    closed: bool,
}

impl Subscriptions {
    pub fn contains(&self, key: &SubscriptionKey) -> bool {
        self.rooms.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    pub fn has_lease(&self) -> bool {
        self.lease.is_some()
    }

    /// Records a subscription. Returns `false` (and drops the lease offered) once closed.
    pub fn insert(
        &mut self,
        key: SubscriptionKey,
        room: String,
        lease: Option<ProjectLease>,
    ) -> bool {
        if self.closed {
            return false;
        }
        if self.lease.is_none() {
            self.lease = lease;
        }
        self.rooms.insert(key, room);
        true
    }

    /// Forgets a subscription; the last one releases the lease. Returns the room to leave.
    pub fn remove(&mut self, key: &SubscriptionKey) -> Option<String> {
        let room = self.rooms.remove(key);
        if self.rooms.is_empty() {
            self.lease = None;
        }
        room
    }

    /// Forgets everything (the socket is gone) and releases the lease.
    pub fn close(&mut self) {
        self.closed = true;
        self.rooms.clear();
        self.lease = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_held_once_and_removed_once() {
        let mut s = Subscriptions::default();
        assert!(s.insert(SubscriptionKey::Targets, "r1".into(), None));
        assert!(s.insert(SubscriptionKey::Targets, "r1".into(), None));
        assert_eq!(s.len(), 1);
        assert_eq!(s.remove(&SubscriptionKey::Targets), Some("r1".into()));
        assert_eq!(s.remove(&SubscriptionKey::Targets), None);
        assert!(s.is_empty());
    }

    #[test]
    fn nothing_is_added_after_close() {
        let mut s = Subscriptions::default();
        s.close();
        assert!(!s.insert(SubscriptionKey::PaymentMethods, "r".into(), None));
        assert!(s.is_empty());
    }
}
