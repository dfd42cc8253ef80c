//! One client connection: TCP from its source address, the websocket upgrade, the Socket.IO
//! handshake with its token, one subscribe per channel of its set, then deliveries until the run
//! ends or the server drops it. With `--churn` it closes once subscribed and starts over.
//!
//! Everything a connection reads goes through one buffer; a broadcast costs a classification by
//! its first bytes and a substring search for our event id.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio::time::timeout_at;

use crate::config::{CHANNELS, project_uuid};
use crate::sio::{Packet, System, connect_error_code};
use crate::state::{Counters, Receiver, Seen, Shared};
use crate::token;
use crate::ws::{self, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};

/// Where connection `index` goes and what it subscribes to.
pub struct Spec {
    pub index: usize,
    pub target: usize,
    pub source: Option<IpAddr>,
    pub project: usize,
    pub set: u8,
}

impl Spec {
    pub fn new(shared: &Shared, index: usize) -> Spec {
        let plan = &shared.plan;
        let projects = shared.args.projects;
        Spec {
            index,
            // Every project's connections alternate over the servers, so with two nodes each
            // publication fans out on both.
            target: (index / projects) % plan.targets.len(),
            source: (!plan.sources.is_empty()).then(|| plan.sources[index % plan.sources.len()]),
            project: plan.project_of(index, projects),
            set: plan.set_of(index, projects),
        }
    }
}

/// Why a connection ended; the key under which the report counts it.
enum End {
    /// Churn: closed on purpose once subscribed.
    Cycled,
    Failed(String),
}

/// Runs connection `spec` until the server drops it (or, churning, until the run stops).
pub async fn run(shared: Rc<Shared>, spec: Spec, gate: Arc<Semaphore>) {
    let user = format!("lg-{}-{}", shared.args.instance, spec.index);
    let project = project_uuid(spec.project);
    let token = token::mint(&shared.jwt_key, &user, &user, &project);
    let connect = shared.framing.connect(&format!(
        "{{\"token\":\"{token}\",\"project_id\":\"{project}\"}}"
    ));
    let subscribes: Vec<Vec<u8>> = CHANNELS
        .iter()
        .enumerate()
        .filter(|(i, _)| spec.set & (1 << i) != 0)
        .map(|(_, ch)| {
            shared.framing.message(&format!(
                "{{\"action\":\"subscribe\",\"channel\":\"{ch}\"}}"
            ))
        })
        .collect();
    let mask = (spec.index as u32 ^ 0x5bd1_e995)
        .wrapping_mul(0x9e37_79b9)
        .to_le_bytes();
    loop {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            return;
        };
        if shared.stop.get() {
            return;
        }
        Counters::add(&shared.counters.attempts, 1);
        let mut session = Session {
            shared: &shared,
            spec: &spec,
            mask,
            permit: Some(permit),
            subscribed: false,
        };
        let end = session.run(&connect, &subscribes).await;
        if !session.subscribed && !shared.args.churn {
            Counters::add(&shared.counters.settled, 1);
        }
        if session.subscribed && !shared.args.churn {
            shared.on_unsubscribed(spec.project, spec.set);
            Counters::add(&shared.counters.disconnected, 1);
        }
        match end {
            End::Cycled => {}
            End::Failed(reason) => shared.counters.fail(reason),
        }
        if !shared.args.churn || shared.stop.get() {
            return;
        }
    }
}

struct Session<'a> {
    shared: &'a Shared,
    spec: &'a Spec,
    mask: [u8; 4],
    /// A handshake slot, held until subscribed or failed.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    subscribed: bool,
}

impl Session<'_> {
    async fn run(&mut self, connect: &[u8], subscribes: &[Vec<u8>]) -> End {
        let shared = self.shared;
        let start = Instant::now();
        let deadline = (start + shared.args.handshake_timeout).into();
        let target = &shared.plan.targets[self.spec.target];
        let mut stream =
            match timeout_at(deadline, ws::connect_tcp(target.addr, self.spec.source)).await {
                Err(_) => return End::Failed("timeout: tcp connect".into()),
                Ok(Err(e)) => return End::Failed(format!("tcp connect: {}", e.kind())),
                Ok(Ok(s)) => s,
            };
        let mut reader = FrameReader::with_capacity(2048);
        match timeout_at(
            deadline,
            ws::upgrade(
                &mut stream,
                &mut reader,
                &target.host,
                &shared.plan.path_and_query,
            ),
        )
        .await
        {
            Err(_) => return End::Failed("timeout: websocket upgrade".into()),
            Ok(Err(ws::UpgradeError::Io(e))) => {
                return End::Failed(format!("upgrade: {}", e.kind()));
            }
            Ok(Err(ws::UpgradeError::Refused(status))) => {
                return End::Failed(format!("upgrade refused: {status}"));
            }
            Ok(Ok(())) => {}
        }
        let mut rx = Receiver {
            project: self.spec.project,
            set: self.spec.set,
            seen: Seen::default(),
        };
        let mut acks = 0usize;
        let mut ready = false;
        loop {
            loop {
                let (op, range) = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return self.lost(format!("bad frame: {e:?}")),
                };
                let payload = reader.payload(range);
                let step = match op {
                    OP_TEXT => match shared.framing.classify(payload) {
                        Packet::Event(body) => {
                            shared.on_event(&mut rx, body);
                            Step::Continue
                        }
                        Packet::Ping => Step::Send(OP_TEXT, b"3"),
                        Packet::Open => Step::Send(OP_TEXT, connect),
                        Packet::Message(m) => match shared.systems.kind(m) {
                            System::Ready => {
                                shared
                                    .to_ready
                                    .borrow_mut()
                                    .saturating_record(micros(start));
                                Counters::add(&shared.counters.ready, 1);
                                ready = true;
                                Step::Subscribe
                            }
                            System::Subscribed => {
                                acks += 1;
                                if acks == subscribes.len() {
                                    Step::Subscribed
                                } else {
                                    Step::Continue
                                }
                            }
                            System::Error => {
                                return self.lost("error reply to subscribe".into());
                            }
                            System::Other => Step::Continue,
                        },
                        Packet::ConnectError(body) => {
                            return End::Failed(format!(
                                "connect_error: {}",
                                connect_error_code(body)
                            ));
                        }
                        Packet::Disconnected => return self.lost("server disconnect".into()),
                        Packet::Close => return self.lost("engine.io close".into()),
                        Packet::Connected | Packet::Other => Step::Continue,
                    },
                    OP_PING => Step::Pong(payload.to_vec()),
                    OP_CLOSE => return self.lost("websocket close".into()),
                    _ => Step::Continue,
                };
                let result = match step {
                    Step::Continue => Ok(()),
                    Step::Send(op, data) => ws::send(&mut stream, op, data, self.mask).await,
                    Step::Pong(data) => ws::send(&mut stream, OP_PONG, &data, self.mask).await,
                    Step::Subscribe => {
                        let mut r = Ok(());
                        for s in subscribes {
                            r = ws::send(&mut stream, OP_TEXT, s, self.mask).await;
                            if r.is_err() {
                                break;
                            }
                        }
                        if r.is_ok()
                            && subscribes.is_empty()
                            && let Some(end) = self.on_subscribed(start)
                        {
                            return end;
                        }
                        r
                    }
                    Step::Subscribed => {
                        if let Some(end) = self.on_subscribed(start) {
                            return end;
                        }
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    return self.lost(format!("write: {}", e.kind()));
                }
            }
            let read = if self.subscribed {
                reader.fill(&mut stream).await
            } else {
                match timeout_at(deadline, reader.fill(&mut stream)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return End::Failed(if ready {
                            "timeout: subscribe".into()
                        } else {
                            "timeout: handshake".into()
                        });
                    }
                }
            };
            match read {
                Ok(0) => return self.lost("eof".into()),
                Ok(_) => {}
                Err(e) => return self.lost(format!("read: {}", e.kind())),
            }
        }
    }

    /// Every subscribe acknowledged. `Some` ends the session (churn).
    fn on_subscribed(&mut self, start: Instant) -> Option<End> {
        let shared = self.shared;
        shared
            .to_subscribed
            .borrow_mut()
            .saturating_record(micros(start));
        Counters::add(&shared.counters.handshakes, 1);
        self.permit = None;
        if shared.args.churn {
            return Some(End::Cycled);
        }
        self.subscribed = true;
        Counters::add(&shared.counters.settled, 1);
        shared.on_subscribed(self.spec.project, self.spec.set);
        None
    }

    /// The connection ended: a failure of the handshake, or a drop of a subscribed connection.
    fn lost(&self, why: String) -> End {
        if self.subscribed {
            End::Failed(format!("dropped after subscribe: {why}"))
        } else {
            End::Failed(format!("handshake: {why}"))
        }
    }
}

enum Step<'a> {
    Continue,
    Send(u8, &'a [u8]),
    Pong(Vec<u8>),
    Subscribe,
    Subscribed,
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().max(1) as u64
}
