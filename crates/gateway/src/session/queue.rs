//! One socket's pending actions, in the order they arrived, and whether a task is answering
//! them. The task exists only while frames wait: most sockets send a few subscribes and then
//! nothing, so an idle socket holds an empty queue and no task at all.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;

/// What [`ActionQueue::push`] did with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued, and no task is answering: the caller must start one.
    StartWorker,
    /// Queued behind frames a running task will answer.
    Queued,
    /// Refused: the queue is full (the client is flooding).
    Full,
    /// Dropped: the socket is gone.
    Closed,
}

#[derive(Debug)]
pub struct ActionQueue {
    state: Mutex<State>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Value>,
    worker_running: bool,
    closed: bool,
}

impl ActionQueue {
    pub fn new(capacity: usize) -> Self {
        ActionQueue {
            state: Mutex::new(State::default()),
            capacity,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Critical sections are a few field updates with no panic path.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn push(&self, frame: Value) -> Pushed {
        let mut state = self.state();
        if state.closed {
            return Pushed::Closed;
        }
        if state.frames.len() >= self.capacity {
            return Pushed::Full;
        }
        state.frames.push_back(frame);
        if state.worker_running {
            Pushed::Queued
        } else {
            state.worker_running = true;
            Pushed::StartWorker
        }
    }

    /// The next frame for the running task; `None` tells it to stop (nothing left, or the socket
    /// is gone), and the next [`push`](Self::push) starts a new one.
    pub fn next(&self) -> Option<Value> {
        let mut state = self.state();
        let frame = if state.closed {
            None
        } else {
            state.frames.pop_front()
        };
        if frame.is_none() {
            state.worker_running = false;
            // An idle socket keeps no buffer.
            state.frames = VecDeque::new();
        }
        frame
    }

    /// The socket is gone: drop what waits, and refuse what comes.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_worker_at_a_time_takes_frames_in_order() {
        let q = ActionQueue::new(8);
        assert_eq!(q.push(json!(1)), Pushed::StartWorker);
        assert_eq!(q.push(json!(2)), Pushed::Queued);
        assert_eq!(q.next(), Some(json!(1)));
        assert_eq!(q.push(json!(3)), Pushed::Queued);
        assert_eq!(q.next(), Some(json!(2)));
        assert_eq!(q.next(), Some(json!(3)));
        assert_eq!(q.next(), None);
        // The worker stopped: the next frame starts another.
        assert_eq!(q.push(json!(4)), Pushed::StartWorker);
    }

    #[test]
    fn a_full_queue_refuses_and_a_closed_one_drops() {
        let q = ActionQueue::new(2);
        assert_eq!(q.push(json!(1)), Pushed::StartWorker);
        assert_eq!(q.push(json!(2)), Pushed::Queued);
        assert_eq!(q.push(json!(3)), Pushed::Full);
        q.close();
        assert_eq!(q.next(), None);
        assert_eq!(q.push(json!(4)), Pushed::Closed);
    }
}
