//! The subscriptions one socket holds, by the room each joined (room names are unique per
//! subscription key and project-scoped, see `rooms.rs`), and the project lease that keeps
//! publications flowing while at least one is held. Every change is mirrored in the node's
//! [`RoomMembers`].

use std::collections::HashSet;
use std::sync::Arc;

use crate::engine::ProjectLease;
use crate::room_members::RoomMembers;

#[derive(Debug)]
pub struct Subscriptions {
    rooms: HashSet<String>,
    members: Arc<RoomMembers>,
    lease: Option<ProjectLease>,
    /// Set once the socket is gone: nothing may be added after.
    closed: bool,
}

impl Subscriptions {
    pub fn new(members: Arc<RoomMembers>) -> Self {
        Subscriptions {
            rooms: HashSet::new(),
            members,
            lease: None,
            closed: false,
        }
    }

    pub fn contains(&self, room: &str) -> bool {
        self.rooms.contains(room)
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
    pub fn insert(&mut self, room: String, lease: Option<ProjectLease>) -> bool {
        if self.closed {
            return false;
        }
        if self.lease.is_none() {
            self.lease = lease;
        }
        if !self.rooms.contains(&room) {
            self.members.joined(&room);
            self.rooms.insert(room);
        }
        true
    }

    /// Forgets a subscription; the last one releases the lease. `true` if it was held.
    pub fn remove(&mut self, room: &str) -> bool {
        let held = self.rooms.remove(room);
        if held {
            self.members.left(room);
        }
        if self.rooms.is_empty() {
            self.lease = None;
        }
        held
    }

    /// Forgets everything (the socket is gone) and releases the lease.
    pub fn close(&mut self) {
        self.closed = true;
        for room in self.rooms.drain() {
            self.members.left(&room);
        }
        self.lease = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_held_once_and_removed_once() {
        let members = Arc::new(RoomMembers::default());
        let mut s = Subscriptions::new(members.clone());
        assert!(s.insert("r1".into(), None));
        assert!(s.insert("r1".into(), None));
        assert_eq!(s.len(), 1);
        assert_eq!(members.count("r1"), 1);
        assert!(s.remove("r1"));
        assert!(!s.remove("r1"));
        assert!(s.is_empty());
        assert_eq!(members.count("r1"), 0);
    }

    #[test]
    fn closing_leaves_every_room_and_nothing_is_added_after() {
        let members = Arc::new(RoomMembers::default());
        let mut s = Subscriptions::new(members.clone());
        assert!(s.insert("r1".into(), None));
        assert!(s.insert("r2".into(), None));
        s.close();
        assert_eq!((members.count("r1"), members.count("r2")), (0, 0));
        assert!(!s.insert("r".into(), None));
        assert!(s.is_empty());
        assert_eq!(members.count("r"), 0);
    }
}
