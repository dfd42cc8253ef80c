//! One client connection: TCP from its source address, the websocket upgrade (or an Engine.IO
//! long-polling session), the Socket.IO handshake with its token, one subscribe per channel of its
//! set, then deliveries until the run ends or the server drops it. With `--churn` it closes once
//! subscribed and starts over.
//!
//! Both transports feed the same packet handling ([`Session::on_packet`]). On a websocket
//! everything a connection reads goes through one buffer; a broadcast costs a classification by
//! its first bytes and a substring search for our event id.

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::{Instant as Deadline, timeout_at};

use crate::config::{CHANNELS, Transport, project_uuid};
use crate::polling::{Polling, SEPARATOR};
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
        let start = Instant::now();
        let deadline: Deadline = (start + self.shared.args.handshake_timeout).into();
        let mut progress = Progress {
            rx: Receiver {
                project: self.spec.project,
                set: self.spec.set,
                seen: Seen::default(),
            },
            acks: 0,
            ready: false,
            start,
        };
        let target = &self.shared.plan.targets[self.spec.target];
        match self.shared.args.transport {
            Transport::Websocket => {
                let opening = ws::connect_tcp(target.addr, self.spec.source);
                let stream = match opened(timeout_at(deadline, opening).await) {
                    Ok(s) => s,
                    Err(end) => return end,
                };
                self.websocket(stream, &mut progress, deadline, connect, subscribes)
                    .await
            }
            Transport::Polling => {
                let opening = Polling::connect(
                    target.addr,
                    self.spec.source,
                    &target.host,
                    &self.shared.args.path,
                    &self.shared.plan.extra_headers,
                );
                let polling = match opened(timeout_at(deadline, opening).await) {
                    Ok(p) => p,
                    Err(end) => return end,
                };
                self.polling(polling, &mut progress, deadline, connect, subscribes)
                    .await
            }
        }
    }

    async fn websocket(
        &mut self,
        mut stream: TcpStream,
        progress: &mut Progress,
        deadline: Deadline,
        connect: &[u8],
        subscribes: &[Vec<u8>],
    ) -> End {
        let shared = self.shared;
        let target = &shared.plan.targets[self.spec.target];
        let mut reader = FrameReader::with_capacity(2048);
        match timeout_at(
            deadline,
            ws::upgrade(
                &mut stream,
                &mut reader,
                &target.host,
                &shared.plan.path_and_query,
                &shared.plan.extra_headers,
            ),
        )
        .await
        {
            Err(_) => return End::Failed("timeout: websocket upgrade".into()),
            Ok(Err(e)) => return End::Failed(format!("upgrade: {}", describe(&e))),
            Ok(Ok(())) => {}
        }
        loop {
            loop {
                let (op, range) = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return self.lost(format!("bad frame: {e:?}")),
                };
                let payload = reader.payload(range);
                let step = match op {
                    OP_TEXT => match self.on_packet(progress, payload, connect, subscribes.len()) {
                        Ok(step) => step,
                        Err(end) => return end,
                    },
                    OP_PING => match ws::send(&mut stream, OP_PONG, payload, self.mask).await {
                        Ok(()) => Step::Continue,
                        Err(e) => return self.lost(format!("write: {}", e.kind())),
                    },
                    OP_CLOSE => return self.lost("websocket close".into()),
                    _ => Step::Continue,
                };
                let mut out = Out::Websocket(&mut stream, self.mask);
                if let Err(end) = self
                    .perform(step, &mut out, subscribes, progress.start)
                    .await
                {
                    return end;
                }
            }
            let read = if self.subscribed {
                reader.fill(&mut stream).await
            } else {
                match timeout_at(deadline, reader.fill(&mut stream)).await {
                    Ok(r) => r,
                    Err(_) => return timed_out(progress.ready),
                }
            };
            match read {
                Ok(0) => return self.lost("eof".into()),
                Ok(_) => {}
                Err(e) => return self.lost(format!("read: {}", e.kind())),
            }
        }
    }

    async fn polling(
        &mut self,
        mut polling: Polling,
        progress: &mut Progress,
        deadline: Deadline,
        connect: &[u8],
        subscribes: &[Vec<u8>],
    ) -> End {
        loop {
            let polled = if self.subscribed {
                polling.poll().await
            } else {
                match timeout_at(deadline, polling.poll()).await {
                    Ok(r) => r,
                    Err(_) => return timed_out(progress.ready),
                }
            };
            let payload = match polled {
                Ok(p) => p,
                Err(e) => return self.lost(format!("poll: {}", describe(&e))),
            };
            for packet in payload.split(|b| *b == SEPARATOR) {
                let step = match self.on_packet(progress, packet, connect, subscribes.len()) {
                    Ok(step) => step,
                    Err(end) => return end,
                };
                let mut out = Out::Polling(&mut polling);
                if let Err(end) = self
                    .perform(step, &mut out, subscribes, progress.start)
                    .await
                {
                    return end;
                }
            }
        }
    }

    /// What one Engine.IO packet from the server asks of the connection; `Err` ends it.
    fn on_packet<'c>(
        &mut self,
        progress: &mut Progress,
        packet: &[u8],
        connect: &'c [u8],
        subscribes: usize,
    ) -> Result<Step<'c>, End> {
        let shared = self.shared;
        Ok(match shared.framing.classify(packet) {
            Packet::Event(body) => {
                shared.on_event(&mut progress.rx, body);
                Step::Continue
            }
            Packet::Ping => Step::Send(b"3"),
            Packet::Open => Step::Send(connect),
            Packet::Message(m) => match shared.systems.kind(m) {
                System::Ready => {
                    shared
                        .to_ready
                        .borrow_mut()
                        .saturating_record(micros(progress.start));
                    Counters::add(&shared.counters.ready, 1);
                    progress.ready = true;
                    Step::Subscribe
                }
                System::Subscribed => {
                    progress.acks += 1;
                    if progress.acks == subscribes {
                        Step::Subscribed
                    } else {
                        Step::Continue
                    }
                }
                System::Error => return Err(self.lost("error reply to subscribe".into())),
                System::Other => Step::Continue,
            },
            Packet::ConnectError(body) => {
                return Err(End::Failed(format!(
                    "connect_error: {}",
                    connect_error_code(body)
                )));
            }
            Packet::Disconnected => return Err(self.lost("server disconnect".into())),
            Packet::Close => return Err(self.lost("engine.io close".into())),
            Packet::Connected | Packet::Other => Step::Continue,
        })
    }

    /// Does what a packet asked; `Err` ends the connection (a failed write, or churn).
    async fn perform(
        &mut self,
        step: Step<'_>,
        out: &mut Out<'_>,
        subscribes: &[Vec<u8>],
        start: Instant,
    ) -> Result<(), End> {
        match step {
            Step::Continue => Ok(()),
            Step::Send(packet) => out.send(packet).await.map_err(|e| self.lost(e)),
            Step::Subscribe => {
                for s in subscribes {
                    out.send(s).await.map_err(|e| self.lost(e))?;
                }
                if subscribes.is_empty() {
                    return self.on_subscribed(start).map_or(Ok(()), Err);
                }
                Ok(())
            }
            Step::Subscribed => self.on_subscribed(start).map_or(Ok(()), Err),
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

/// Where one connection's handshake stands, and what it received.
struct Progress {
    rx: Receiver,
    acks: usize,
    ready: bool,
    start: Instant,
}

enum Step<'a> {
    Continue,
    /// Send one Engine.IO packet.
    Send(&'a [u8]),
    /// `ready` arrived: send every subscribe.
    Subscribe,
    /// Every subscribe acknowledged.
    Subscribed,
}

/// Where a connection's packets go.
enum Out<'a> {
    Websocket(&'a mut TcpStream, [u8; 4]),
    Polling(&'a mut Polling),
}

impl Out<'_> {
    /// Sends one packet; `Err` says why it could not.
    async fn send(&mut self, packet: &[u8]) -> Result<(), String> {
        match self {
            Out::Websocket(stream, mask) => ws::send(stream, OP_TEXT, packet, *mask)
                .await
                .map_err(|e| format!("write: {}", e.kind())),
            Out::Polling(polling) => polling
                .send(packet)
                .await
                .map_err(|e| format!("post: {}", describe(&e))),
        }
    }
}

/// The TCP side of a transport, opened within the handshake deadline, or why not.
fn opened<T>(attempt: Result<std::io::Result<T>, tokio::time::error::Elapsed>) -> Result<T, End> {
    match attempt {
        Err(_) => Err(End::Failed("timeout: tcp connect".into())),
        Ok(Err(e)) => Err(End::Failed(format!("tcp connect: {}", e.kind()))),
        Ok(Ok(s)) => Ok(s),
    }
}

fn timed_out(ready: bool) -> End {
    End::Failed(if ready {
        "timeout: subscribe".into()
    } else {
        "timeout: handshake".into()
    })
}

fn describe(e: &ws::UpgradeError) -> String {
    match e {
        ws::UpgradeError::Io(e) => e.kind().to_string(),
        ws::UpgradeError::Refused(status) => format!("refused: {status}"),
    }
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().max(1) as u64
}
