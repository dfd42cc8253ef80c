//! `livegate-loadgen`: N Socket.IO websocket clients against one or more livegate nodes (or any
//! server of the same protocol, such as the Node.js peer in `bench/peers/node-socketio`), with
//! publications through Redis or HTTP, measuring delivery latency, loss and duplicates.
//!
//! Where to look:
//! - `config.rs`: flags, and the plan (which connection subscribes to what; where publication
//!   `seq` goes).
//! - `ws.rs`: the websocket client (upgrade, frame reader, masked client frames).
//! - `sio.rs`: Engine.IO/Socket.IO framing and finding our event id in a broadcast.
//! - `connection.rs`: one connection's life.
//! - `publisher.rs`: pacing and sending publications.
//! - `state.rs`: counters, the per-publication ledger, duplicate detection.
//! - `run.rs`: phases, `/proc` sampling, the progress line and the report.
//!
//! Run with: `cargo run --release -p livegate-loadgen -- --url http://127.0.0.1:8080 -n 1000 --rate 10`.

mod config;
mod connection;
mod polling;
mod procfs;
mod publisher;
mod run;
mod sio;
mod state;
mod token;
mod ws;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = config::Args::parse();
    let report_path = args.report.clone();
    let fail_on_loss = args.fail_on_loss;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    let outcome = match local.block_on(&runtime, run::run(args)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("livegate-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let text = serde_json::to_string_pretty(&outcome.report).unwrap_or_default();
    println!("{text}");
    if let Some(path) = report_path
        && let Err(e) = std::fs::write(&path, format!("{text}\n"))
    {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::from(2);
    }
    // Connection tasks still hold their sockets; dropping the runtime closes them.
    drop(local);
    drop(runtime);
    if fail_on_loss && !outcome.lossless {
        eprintln!(
            "livegate-loadgen: deliveries were lost, duplicated or misrouted, or connections failed"
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
