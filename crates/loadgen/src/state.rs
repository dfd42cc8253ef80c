//! The run's shared state. The load generator is single-threaded (one `LocalSet` on a
//! current-thread runtime), so counters are `Cell`s and the ledger a `RefCell`: no atomics and
//! no locks on the delivery path.
//!
//! The ledger has one slot per publication, indexed by its sequence number: when it was sent,
//! how many connections were subscribed to its project and channel at that moment (`expected`),
//! how many distinct connections got it, and how many copies came twice. Loss is
//! `expected - unique`, counted per step once its drain is over.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use jsonwebtoken::EncodingKey;

use crate::config::{Args, Plan};
use crate::sio::{EventIds, Framing, SystemFinders};

/// A slot of a publication that no step measures (warm-up).
pub const UNMEASURED: u32 = u32::MAX;

pub struct Slot {
    pub expected: u32,
    pub unique: u32,
    pub dups: u32,
    pub step: u32,
    pub failed: bool,
}

#[derive(Default)]
pub struct Ledger {
    pub slots: RefCell<Vec<Slot>>,
}

/// What a connection's duplicate window says about an arrival.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrival {
    New,
    Duplicate,
    /// Older than the window (64 rounds behind the newest): counted as new, flagged.
    Stale,
}

/// One connection's memory of the rounds it has seen: the newest, and a bitmap of the 64 before
/// it (the anti-replay window of IPsec). Rounds are dense per project, so a gap is a loss and a
/// set bit is a duplicate.
#[derive(Default)]
pub struct Seen {
    newest: u64,
    bits: u64,
    any: bool,
}

impl Seen {
    pub fn insert(&mut self, round: u64) -> Arrival {
        if !self.any {
            *self = Seen {
                newest: round,
                bits: 1,
                any: true,
            };
            return Arrival::New;
        }
        if round > self.newest {
            let shift = round - self.newest;
            self.bits = if shift >= 64 { 0 } else { self.bits << shift };
            self.bits |= 1;
            self.newest = round;
            return Arrival::New;
        }
        let behind = self.newest - round;
        if behind >= 64 {
            return Arrival::Stale;
        }
        let bit = 1u64 << behind;
        if self.bits & bit != 0 {
            Arrival::Duplicate
        } else {
            self.bits |= bit;
            Arrival::New
        }
    }
}

#[derive(Default)]
pub struct Counters {
    /// Connection attempts started (churn: every reconnect too).
    pub attempts: Cell<u64>,
    /// Connections that got `ready`.
    pub ready: Cell<u64>,
    /// Connections past their handshake: subscribed, or failed before (not churn).
    pub settled: Cell<u64>,
    /// Connections currently subscribed to their whole set.
    pub subscribed: Cell<u64>,
    /// Handshakes completed up to the subscribed state (churn counts every cycle).
    pub handshakes: Cell<u64>,
    /// Subscribed connections the server closed or dropped.
    pub disconnected: Cell<u64>,
    pub failures: RefCell<BTreeMap<String, u64>>,
    /// Distinct deliveries matched to a publication.
    pub deliveries: Cell<u64>,
    pub duplicates: Cell<u64>,
    pub stale: Cell<u64>,
    /// Deliveries for a project or channel the connection did not subscribe to.
    pub misrouted: Cell<u64>,
    /// Broadcasts without one of this run's event ids.
    pub unmatched: Cell<u64>,
    pub publications: Cell<u64>,
    pub publish_errors: Cell<u64>,
    /// Redis answered that no server received a publication.
    pub publish_unheard: Cell<u64>,
}

impl Counters {
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get() + n);
    }

    pub fn fail(&self, reason: impl Into<String>) {
        *self.failures.borrow_mut().entry(reason.into()).or_default() += 1;
    }

    pub fn failed_total(&self) -> u64 {
        self.failures.borrow().values().sum()
    }
}

/// Everything the connection tasks, the publisher and the reporter share.
pub struct Shared {
    pub args: Args,
    pub plan: Plan,
    pub framing: Framing,
    pub systems: SystemFinders,
    pub ids: EventIds,
    pub jwt_key: EncodingKey,
    pub ledger: Ledger,
    pub counters: Counters,
    /// Subscribed connections per project and channel: a publication's expected recipients.
    pub subs: RefCell<Vec<[u32; 2]>>,
    /// Latency of every delivery since the last progress line.
    pub tick_latency: RefCell<Histogram<u64>>,
    /// Latency per step, of publications sent in its measured window.
    pub step_latency: RefCell<Vec<Histogram<u64>>>,
    /// Connect start → `ready`, and → every subscribe acknowledged (µs).
    pub to_ready: RefCell<Histogram<u64>>,
    pub to_subscribed: RefCell<Histogram<u64>>,
    /// Churn: stop reconnecting.
    pub stop: Cell<bool>,
    /// What the run is doing now, for the progress line and the phase file.
    pub phase: RefCell<String>,
}

/// What one connection knows to judge an arrival.
pub struct Receiver {
    pub project: usize,
    pub set: u8,
    pub seen: Seen,
}

impl Shared {
    pub fn new(args: Args, plan: Plan, run: u32) -> Shared {
        let projects = args.projects;
        Shared {
            framing: Framing::new(&args.namespace),
            systems: SystemFinders::default(),
            ids: EventIds::new(run),
            jwt_key: EncodingKey::from_secret(args.jwt_secret.as_bytes()),
            ledger: Ledger::default(),
            counters: Counters::default(),
            subs: RefCell::new(vec![[0; 2]; projects]),
            tick_latency: RefCell::new(histogram()),
            step_latency: RefCell::new(Vec::new()),
            to_ready: RefCell::new(histogram()),
            to_subscribed: RefCell::new(histogram()),
            stop: Cell::new(false),
            phase: RefCell::new(String::new()),
            args,
            plan,
        }
    }

    /// A broadcast arrived on a connection: match it, judge it, time it. The hot path.
    pub fn on_event(&self, rx: &mut Receiver, body: &[u8]) {
        let c = &self.counters;
        let Some((seq, sent_us)) = self.ids.find(body) else {
            Counters::add(&c.unmatched, 1);
            return;
        };
        let (project, channel) = self.plan.route_of(seq, self.args.projects);
        if project != rx.project || rx.set & (1 << channel) == 0 {
            Counters::add(&c.misrouted, 1);
            return;
        }
        let arrival = rx.seen.insert(seq / self.args.projects as u64);
        let mut slots = self.ledger.slots.borrow_mut();
        let slot = slots.get_mut(seq as usize);
        match arrival {
            Arrival::Duplicate => {
                Counters::add(&c.duplicates, 1);
                if let Some(s) = slot {
                    s.dups += 1;
                }
                return;
            }
            Arrival::Stale => Counters::add(&c.stale, 1),
            Arrival::New => {}
        }
        Counters::add(&c.deliveries, 1);
        let latency = now_us().saturating_sub(sent_us).max(1);
        self.tick_latency.borrow_mut().saturating_record(latency);
        if let Some(s) = slot {
            s.unique += 1;
            if s.step != UNMEASURED
                && let Some(h) = self.step_latency.borrow_mut().get_mut(s.step as usize)
            {
                h.saturating_record(latency);
            }
        }
    }

    /// A connection holds its whole channel set: it now counts as a recipient.
    pub fn on_subscribed(&self, project: usize, set: u8) {
        let mut subs = self.subs.borrow_mut();
        for (c, n) in subs[project].iter_mut().enumerate() {
            if set & (1 << c) != 0 {
                *n += 1;
            }
        }
        Counters::add(&self.counters.subscribed, 1);
    }

    pub fn on_unsubscribed(&self, project: usize, set: u8) {
        let mut subs = self.subs.borrow_mut();
        for (c, n) in subs[project].iter_mut().enumerate() {
            if set & (1 << c) != 0 {
                *n = n.saturating_sub(1);
            }
        }
        let s = &self.counters.subscribed;
        s.set(s.get().saturating_sub(1));
    }
}

/// Latency histograms in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_tells_new_from_duplicate() {
        let mut s = Seen::default();
        assert_eq!(s.insert(10), Arrival::New);
        assert_eq!(s.insert(10), Arrival::Duplicate);
        assert_eq!(s.insert(12), Arrival::New);
        assert_eq!(s.insert(11), Arrival::New);
        assert_eq!(s.insert(11), Arrival::Duplicate);
        assert_eq!(s.insert(200), Arrival::New);
        assert_eq!(s.insert(12), Arrival::Stale);
        assert_eq!(s.insert(137), Arrival::New);
        assert_eq!(s.insert(137), Arrival::Duplicate);
    }
}
