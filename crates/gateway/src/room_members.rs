//! How many of this node's sockets hold each subscription room. The delivery task reads its
//! recipient count here instead of walking socketioxide's room a second time, and `/metrics`
//! gauges subscriptions per channel from it. [`crate::session::subscriptions`] is the only
//! writer: a room is counted while a socket's subscription to it is recorded.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use crate::rooms;

#[derive(Debug, Default)]
pub struct RoomMembers {
    counts: Mutex<HashMap<String, usize>>,
}

impl RoomMembers {
    fn counts(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        // Each critical section is one map operation: a poisoned lock still guards a consistent map.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn joined(&self, room: &str) {
        let mut counts = self.counts();
        match counts.get_mut(room) {
            Some(n) => *n += 1,
            None => {
                counts.insert(room.to_owned(), 1);
            }
        }
    }

    pub fn left(&self, room: &str) {
        let mut counts = self.counts();
        if let Some(n) = counts.get_mut(room) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(room);
            }
        }
    }

    /// Sockets holding `room`.
    pub fn count(&self, room: &str) -> usize {
        self.counts().get(room).copied().unwrap_or(0)
    }

    /// Subscriptions per `livegate_subscriptions` label (see [`rooms::subscription_label`]).
    pub fn by_label(&self) -> BTreeMap<&'static str, usize> {
        let mut labels = BTreeMap::new();
        for (room, n) in self.counts().iter() {
            *labels.entry(rooms::subscription_label(room)).or_default() += n;
        }
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_counted_while_held_and_forgotten_at_zero() {
        let m = RoomMembers::default();
        m.joined("p:targets");
        m.joined("p:targets");
        m.joined("p:pr:1");
        assert_eq!(m.count("p:targets"), 2);
        m.left("p:targets");
        m.left("p:targets");
        m.left("p:targets");
        assert_eq!(m.count("p:targets"), 0);
        assert_eq!(m.counts().len(), 1);
        assert_eq!(
            m.by_label().into_iter().collect::<Vec<_>>(),
            vec![("payment-requests", 1)]
        );
    }
}
