//! Publishing at a target rate, through Redis (`PUBLISH {prefix}:project:{id}`, pipelined by
//! fred) or the HTTP publish API, each publication carrying its own event id with its send time.
//!
//! The pacing is a token bucket on a 1–10 ms tick: after `t` seconds, `rate * t` publications
//! are due, so a late tick catches up instead of lowering the rate; the achieved rate is
//! reported beside the target.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::interfaces::{ClientLike, PubsubInterface};
use fred::prelude::{Builder, Client, Config};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::config::{Args, CHANNELS, PublishVia, project_uuid};
use crate::state::{Counters, Shared, Slot, now_us};

/// One publication for the sending thread: where it goes and its body (stamped already).
struct Job {
    seq: u64,
    channel: String,
    body: String,
}

/// What the sending thread reports back.
enum Report {
    Failed {
        seq: u64,
        error: String,
    },
    /// Redis answered that no server was subscribed to the channel.
    Unheard,
}

/// The main thread's handle. Sending happens on a thread of its own, so the batching of
/// arrivals (`--batch-interval`) never delays a publication between its time stamp and its
/// write to Redis or the HTTP API.
pub struct Publisher {
    jobs: mpsc::UnboundedSender<Job>,
}

enum Backend {
    Redis(Client),
    Http {
        client: reqwest::Client,
        url: String,
        key: String,
        gate: Arc<Semaphore>,
    },
}

impl Publisher {
    /// Starts the sending thread and connects its backend; fails if it cannot.
    pub async fn connect(shared: &Rc<Shared>) -> Result<Publisher, String> {
        let (jobs, mut job_rx) = mpsc::unbounded_channel::<Job>();
        let (report_tx, mut reports) = mpsc::unbounded_channel::<Report>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let args = shared.args.clone();
        let publish_url = shared.plan.publish_url.clone();
        std::thread::Builder::new()
            .name("publisher".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("publisher runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let backend = match Backend::connect(&args, &publish_url).await {
                        Ok(b) => Arc::new(b),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Some(job) = job_rx.recv().await {
                        let backend = backend.clone();
                        let report_tx = report_tx.clone();
                        tokio::spawn(async move {
                            let report = match backend.send(job.channel, job.body).await {
                                Ok(true) => return,
                                Ok(false) => Report::Unheard,
                                Err(error) => Report::Failed {
                                    seq: job.seq,
                                    error,
                                },
                            };
                            let _ = report_tx.send(report);
                        });
                    }
                });
            })
            .map_err(|e| format!("publisher thread: {e}"))?;
        ready_rx
            .await
            .map_err(|_| "the publisher thread stopped".to_string())??;
        let shared = shared.clone();
        tokio::task::spawn_local(async move {
            while let Some(report) = reports.recv().await {
                let c = &shared.counters;
                match report {
                    Report::Unheard => Counters::add(&c.publish_unheard, 1),
                    Report::Failed { seq, error } => {
                        Counters::add(&c.publish_errors, 1);
                        if let Some(s) = shared.ledger.slots.borrow_mut().get_mut(seq as usize) {
                            s.failed = true;
                        }
                        if c.publish_errors.get() <= 3 {
                            eprintln!("publish failed: {error}");
                        }
                    }
                }
            }
        });
        Ok(Publisher { jobs })
    }

    /// Publishes at `rate` per second for `length`, tagging each slot with `step`.
    pub async fn run(&self, shared: &Shared, rate: f64, length: Duration, step: u32) {
        if rate <= 0.0 {
            tokio::time::sleep(length).await;
            return;
        }
        let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 0.010));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let start = Instant::now();
        let end = start + length;
        let mut sent: u64 = 0;
        loop {
            tick.tick().await;
            let now = Instant::now();
            if now >= end {
                return;
            }
            let due = (rate * (now - start).as_secs_f64()) as u64 + 1;
            while sent < due {
                self.publish_one(shared, step);
                sent += 1;
            }
        }
    }

    fn publish_one(&self, shared: &Shared, step: u32) {
        let mut slots = shared.ledger.slots.borrow_mut();
        let seq = slots.len() as u64;
        let (project, channel) = shared.plan.route_of(seq, shared.args.projects);
        let expected = shared.subs.borrow()[project][channel as usize];
        slots.push(Slot {
            expected,
            unique: 0,
            dups: 0,
            step,
            failed: false,
        });
        drop(slots);
        Counters::add(&shared.counters.publications, 1);
        let sent_us = now_us();
        let body = publication(shared, seq, sent_us, project, channel);
        let job = Job {
            seq,
            channel: format!(
                "{}:project:{}",
                shared.args.redis_prefix,
                project_uuid(project)
            ),
            body,
        };
        if self.jobs.send(job).is_err() {
            Counters::add(&shared.counters.publish_errors, 1);
        }
    }
}

impl Backend {
    async fn connect(a: &Args, publish_url: &str) -> Result<Backend, String> {
        match a.publish {
            PublishVia::Redis => {
                let config = Config::from_url(&a.redis_url)
                    .map_err(|e| format!("--redis-url {}: {e}", a.redis_url))?;
                let client = Builder::from_config(config)
                    .build()
                    .map_err(|e| format!("redis client: {e}"))?;
                client
                    .init()
                    .await
                    .map_err(|e| format!("cannot connect to Redis at {}: {e}", a.redis_url))?;
                Ok(Backend::Redis(client))
            }
            PublishVia::Http => {
                let client = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(a.http_concurrency)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("http client: {e}"))?;
                Ok(Backend::Http {
                    client,
                    url: format!("{publish_url}/api/v1/publish"),
                    key: a.publish_key.clone(),
                    gate: Arc::new(Semaphore::new(a.http_concurrency)),
                })
            }
        }
    }

    /// Sends one publication; `Ok(false)` when Redis says no server heard it.
    async fn send(&self, channel: String, body: String) -> Result<bool, String> {
        match self {
            Backend::Redis(client) => {
                let heard: i64 = client
                    .publish(channel, body)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(heard > 0)
            }
            Backend::Http {
                client,
                url,
                key,
                gate,
            } => {
                let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
                let response = client
                    .post(url)
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                if status.as_u16() == 202 {
                    Ok(true)
                } else {
                    let text = response.text().await.unwrap_or_default();
                    Err(format!("HTTP {status}: {text}"))
                }
            }
        }
    }
}

/// The publication for `seq`: `target.updated` on `targets`, `payment-method.removed` on
/// `payment-methods`; both pass the gateway's validation, both are small.
fn publication(shared: &Shared, seq: u64, sent_us: u64, project: usize, channel: u8) -> String {
    let id = shared.ids.format(seq, sent_us);
    let project = project_uuid(project);
    let pad = if shared.args.pad_bytes > 0 {
        format!(",\"pad\":\"{}\"", "x".repeat(shared.args.pad_bytes))
    } else {
        String::new()
    };
    match CHANNELS[channel as usize] {
        "targets" => format!(
            "{{\"event\":\"target.updated\",\"event_id\":\"{id}\",\"channel\":\"targets\",\"project_id\":\"{project}\",\
             \"platform\":\"discord\",\"target\":{{\"target_id\":\"1f2e3d4c-5b6a-4e8f-9a0b-1c2d3e4f5a6b\",\
             \"target_name\":\"Load test\",\"platform\":\"discord\",\"kind\":\"guild\",\"external_id\":\"{seq}\",\
             \"is_enabled\":true,\"parent_target_id\":null,\"plan_count\":3,\"participant_count\":142}}{pad}}}"
        ),
        _ => format!(
            "{{\"event\":\"payment-method.removed\",\"event_id\":\"{id}\",\"channel\":\"payment-methods\",\
             \"project_id\":\"{project}\",\"payment_method_id\":\"pm_{seq}\",\"user_id\":\"u_loadgen\"{pad}}}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Plan;
    use clap::Parser;

    #[test]
    fn publications_are_json_with_our_id() {
        let args = Args::parse_from(["lg", "--url", "http://127.0.0.1:1", "--pad-bytes", "5"]);
        let plan = Plan::from_args(&args).expect("plan");
        let shared = Shared::new(args, plan, 7);
        for ch in 0..2u8 {
            let body = publication(&shared, 3, 99, 0, ch);
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["channel"], CHANNELS[ch as usize]);
            assert_eq!(v["pad"], "xxxxx");
            let id = v["event_id"].as_str().expect("id");
            let frame = format!("[\"e\",{{\"event_id\":\"{id}\"}}]");
            assert_eq!(shared.ids.find(frame.as_bytes()), Some((3, 99)));
        }
    }
}
