//! The run, phase by phase: connect (ramp-up, then wait for every connection to be subscribed or
//! failed), then each rate step (warm-up, measured steady state, drain), then the report.
//!
//! Around every measured window the watched server processes and this one are sampled from
//! `/proc`, so a step reports the server's CPU per delivery (or per handshake, churning) and its
//! RSS, beside the load generator's own CPU: a load generator that is near a full core measures
//! itself, and the report says so.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::{Args, Plan};
use crate::connection::{self, Spec};
use crate::procfs::{self, Sample};
use crate::publisher::Publisher;
use crate::state::{Shared, UNMEASURED, histogram, now_us};

/// A load generator above this share of its core may be measuring itself.
const SATURATED_CPU: f64 = 0.85;

/// The outcome: the JSON report, and whether every step was free of loss and failures.
pub struct Outcome {
    pub report: Value,
    pub lossless: bool,
}

pub async fn run(args: Args) -> Result<Outcome, String> {
    let plan = Plan::from_args(&args)?;
    if let Some(limit) = procfs::open_files_limit()
        && args.connections as u64 + 64 > limit
    {
        return Err(format!(
            "{} connections need {} open files, but this process may open {limit} (ulimit -n); \
             run several load generators, each under the limit",
            args.connections,
            args.connections + 64
        ));
    }
    let run_tag = (now_us() as u32) ^ std::process::id().rotate_left(16);
    let shared = Rc::new(Shared::new(args, plan, run_tag));
    let publisher = if shared.args.rate.iter().any(|r| *r > 0.0) {
        Some(Rc::new(Publisher::connect(&shared).await?))
    } else {
        None
    };
    if !shared.args.quiet {
        tokio::task::spawn_local(progress(shared.clone()));
    }
    if !shared.args.batch_interval.is_zero() {
        tokio::task::spawn_local(pace(shared.clone()));
    }
    let started = Instant::now();

    let connect = connect_phase(&shared).await;

    let mut steps = Vec::new();
    let mut lossless = connect["failed"].as_u64() == Some(0);
    for (i, &rate) in shared.args.rate.clone().iter().enumerate() {
        let step = step_phase(&shared, publisher.as_ref(), i, rate).await;
        let clean = step["clean"].as_bool() == Some(true);
        lossless &= step["lost"].as_u64() == Some(0)
            && step["duplicates"].as_u64() == Some(0)
            && step["disconnects"].as_u64() == Some(0);
        steps.push(step);
        if shared.args.stop_on_fail && !clean {
            break;
        }
    }
    shared.stop.set(true);
    set_phase(&shared, "done");
    let c = &shared.counters;
    lossless &= c.misrouted.get() == 0 && c.publish_errors.get() == 0;
    let report = json!({
        "tool": "livegate-loadgen",
        "version": env!("CARGO_PKG_VERSION"),
        "run_tag": format!("{run_tag:08x}"),
        "started_unix_ms": now_us() / 1000 - started.elapsed().as_millis() as u64,
        "args": &shared.args,
        "connect": connect,
        "steps": steps,
        "totals": {
            "attempts": c.attempts.get(),
            "handshakes": c.handshakes.get(),
            "failures": &*c.failures.borrow(),
            "deliveries": c.deliveries.get(),
            "duplicates": c.duplicates.get(),
            "stale": c.stale.get(),
            "misrouted": c.misrouted.get(),
            "unmatched": c.unmatched.get(),
            "publications": c.publications.get(),
            "publish_errors": c.publish_errors.get(),
            "publish_unheard": c.publish_unheard.get(),
            "elapsed_s": started.elapsed().as_secs_f64(),
        },
    });
    Ok(Outcome { report, lossless })
}

async fn connect_phase(shared: &Rc<Shared>) -> Value {
    let a = &shared.args;
    set_phase(shared, "connect");
    let before = Samples::take(shared);
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(a.connect_concurrency));
    let n = a.connections;
    for i in 0..n {
        if !a.ramp_up.is_zero() {
            let at = t0 + a.ramp_up.mul_f64(i as f64 / n as f64);
            tokio::time::sleep_until(at.into()).await;
        }
        tokio::task::spawn_local(connection::run(
            shared.clone(),
            Spec::new(shared, i),
            gate.clone(),
        ));
        if i % 64 == 63 {
            // Let the first connections progress while the rest are spawned.
            tokio::task::yield_now().await;
        }
    }
    let give_up = t0 + a.ramp_up + a.handshake_timeout + Duration::from_secs(2);
    if a.churn {
        // Churning connections never settle; the steps count their cycles.
        tokio::time::sleep(Duration::from_millis(200)).await;
    } else {
        while (shared.counters.settled.get() as usize) < n && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let after = Samples::take(shared);
    let c = &shared.counters;
    let handshakes = c.handshakes.get();
    json!({
        "target": n,
        "subscribed": c.subscribed.get(),
        "ready": c.ready.get(),
        "failed": c.failed_total(),
        "failures": &*c.failures.borrow(),
        "elapsed_s": elapsed,
        "connects_per_s": handshakes as f64 / elapsed,
        "to_ready_ms": latency_json(&shared.to_ready.borrow()),
        "to_subscribed_ms": latency_json(&shared.to_subscribed.borrow()),
        "loadgen": before.own.delta_json(&after.own, elapsed, handshakes, "handshake"),
        "servers": before.servers_json(&after, elapsed, handshakes, "handshake"),
    })
}

async fn step_phase(
    shared: &Rc<Shared>,
    publisher: Option<&Rc<Publisher>>,
    i: usize,
    rate: f64,
) -> Value {
    let a = &shared.args;
    shared.step_latency.borrow_mut().push(histogram());
    let publish = |length: Duration, step: u32| async move {
        match publisher {
            Some(p) if rate > 0.0 => p.run(shared, rate, length, step).await,
            _ => tokio::time::sleep(length).await,
        }
    };
    if rate > 0.0 || a.churn {
        set_phase(shared, &format!("step {i} warmup"));
        publish(a.warmup, UNMEASURED).await;
    }
    set_phase(shared, &format!("step {i} measure"));
    let c = &shared.counters;
    let (d0, h0, x0, p0) = (
        c.deliveries.get(),
        c.handshakes.get(),
        c.disconnected.get(),
        c.publications.get(),
    );
    shared.to_subscribed.borrow_mut().reset();
    let before = Samples::take(shared);
    let t0 = Instant::now();
    publish(a.duration, i as u32).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let after = Samples::take(shared);
    let (d1, h1, p1) = (c.deliveries.get(), c.handshakes.get(), c.publications.get());
    let handshake_latency = latency_json(&shared.to_subscribed.borrow());
    if rate > 0.0 {
        set_phase(shared, &format!("step {i} drain"));
        tokio::time::sleep(a.drain).await;
    }
    let disconnects = c.disconnected.get() - x0;

    // Loss and duplicates of the publications this window sent, now that late ones had time.
    let (mut pubs, mut expected, mut unique, mut dups, mut failed) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for s in shared
        .ledger
        .slots
        .borrow()
        .iter()
        .filter(|s| s.step == i as u32)
    {
        pubs += 1;
        dups += u64::from(s.dups);
        if s.failed {
            failed += 1;
            continue;
        }
        expected += u64::from(s.expected);
        unique += u64::from(s.unique.min(s.expected));
    }
    let lost = expected - unique;
    let latency = shared.step_latency.borrow()[i].clone();
    let arrivals = d1 - d0;
    let work = if a.churn { h1 - h0 } else { arrivals };
    let unit = if a.churn { "handshake" } else { "delivery" };
    let p99_us = latency.value_at_quantile(0.99);
    let loadgen = before.own.delta_json(&after.own, elapsed, work, unit);
    let saturated = loadgen["cpu_share"].as_f64().unwrap_or(0.0) > SATURATED_CPU;
    // Keeping up: what arrived in the window is close to what the window's publications owed.
    let keeping_up = arrivals as f64 >= 0.97 * expected as f64;
    let clean = lost == 0
        && dups == 0
        && failed == 0
        && disconnects == 0
        && (rate == 0.0 || (keeping_up && Duration::from_micros(p99_us) <= a.max_p99));
    json!({
        "index": i,
        "rate_target": rate,
        "publications": pubs,
        "rate_achieved": (p1 - p0) as f64 / elapsed,
        "measure_s": elapsed,
        "expected": expected,
        "delivered": unique,
        "lost": lost,
        "duplicates": dups,
        "publish_errors": failed,
        "disconnects": disconnects,
        "subscribed": c.subscribed.get(),
        "deliveries_per_s": arrivals as f64 / elapsed,
        "latency_ms": latency_json(&latency),
        "handshakes": h1 - h0,
        "handshakes_per_s": (h1 - h0) as f64 / elapsed,
        "handshake_ms": handshake_latency,
        "keeping_up": keeping_up,
        "clean": clean,
        "loadgen_saturated": saturated,
        "loadgen": loadgen,
        "servers": before.servers_json(&after, elapsed, work, unit),
    })
}

/// CPU and memory of this process and the watched ones at one instant.
struct Samples {
    own: Sample,
    servers: Vec<(u32, Option<Sample>)>,
}

impl Samples {
    fn take(shared: &Shared) -> Samples {
        Samples {
            own: procfs::sample(0).unwrap_or_default(),
            servers: shared
                .args
                .watch_pid
                .iter()
                .map(|&pid| (pid, procfs::sample(pid)))
                .collect(),
        }
    }

    fn servers_json(&self, after: &Samples, elapsed: f64, work: u64, unit: &str) -> Value {
        self.servers
            .iter()
            .zip(&after.servers)
            .map(|((pid, a), (_, b))| match (a, b) {
                (Some(a), Some(b)) => {
                    let mut v = a.delta_json(b, elapsed, work, unit);
                    v["pid"] = json!(pid);
                    v
                }
                _ => json!({ "pid": pid, "error": "process not found" }),
            })
            .collect()
    }
}

impl Sample {
    /// CPU spent between two samples, its share of one core, per unit of work; memory after.
    fn delta_json(&self, after: &Sample, elapsed: f64, work: u64, unit: &str) -> Value {
        let cpu = (after.cpu_s - self.cpu_s).max(0.0);
        let per = if work > 0 {
            cpu * 1e6 / work as f64
        } else {
            0.0
        };
        json!({
            "cpu_s": cpu,
            "cpu_share": cpu / elapsed.max(1e-9),
            format!("cpu_us_per_{unit}"): per,
            "rss_kb_before": self.rss_kb,
            "rss_kb": after.rss_kb,
            "rss_anon_kb": after.rss_anon_kb,
            "threads": after.threads,
        })
    }
}

fn latency_json(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": h.mean() / 1000.0,
    })
}

/// Batches wake-ups: sleeps the thread for `--batch-interval`, then yields, so the runtime polls
/// epoll without blocking, runs every connection that became readable meanwhile, and comes back
/// here. Without it each message arriving on an otherwise idle load generator costs a blocking
/// `epoll_wait` and a context switch; with it, one per interval.
async fn pace(shared: Rc<Shared>) {
    let interval = shared.args.batch_interval;
    while !shared.stop.get() {
        std::thread::sleep(interval);
        tokio::task::yield_now().await;
    }
}

fn set_phase(shared: &Shared, phase: &str) {
    *shared.phase.borrow_mut() = phase.to_string();
    if let Some(path) = &shared.args.phase_file
        && let Err(e) = std::fs::write(path, format!("{phase}\n"))
    {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

/// One line per second on stderr.
async fn progress(shared: Rc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let start = Instant::now();
    let mut last = Samples::take(&shared);
    let c = &shared.counters;
    let (mut d_last, mut p_last, mut h_last) =
        (c.deliveries.get(), c.publications.get(), c.handshakes.get());
    loop {
        tick.tick().await;
        if shared.stop.get() {
            return;
        }
        let now = Samples::take(&shared);
        let (d, p, h) = (c.deliveries.get(), c.publications.get(), c.handshakes.get());
        let lat = {
            let mut hist = shared.tick_latency.borrow_mut();
            let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
            let s = if hist.is_empty() {
                String::from("-")
            } else {
                format!(
                    "p50 {:.2} p99 {:.2} max {:.2} ms",
                    ms(0.5),
                    ms(0.99),
                    hist.max() as f64 / 1000.0
                )
            };
            hist.reset();
            s
        };
        let servers: Vec<String> = last
            .servers
            .iter()
            .zip(&now.servers)
            .map(|((_, a), (_, b))| match (a, b) {
                (Some(a), Some(b)) => {
                    format!("{:.0}% {}MB", (b.cpu_s - a.cpu_s) * 100.0, b.rss_kb / 1024)
                }
                _ => "gone".into(),
            })
            .collect();
        eprintln!(
            "[{:6.1}s] {:<16} {} subscribed, {} failed, {} dropped | {} hs/s | {} pub/s | {} deliv/s {} | cpu loadgen {:.0}%{}{}",
            start.elapsed().as_secs_f64(),
            shared.phase.borrow(),
            c.subscribed.get(),
            c.failed_total(),
            c.disconnected.get(),
            h - h_last,
            p - p_last,
            d - d_last,
            lat,
            (now.own.cpu_s - last.own.cpu_s) * 100.0,
            if servers.is_empty() { "" } else { " server " },
            servers.join(", "),
        );
        (d_last, p_last, h_last) = (d, p, h);
        last = now;
    }
}
