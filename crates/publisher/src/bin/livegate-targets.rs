//! `livegate-targets`: the targets REST API on Redis. Parse flags, set up logging, serve until
//! SIGTERM or Ctrl-C. Bad configuration exits with 64.
//!
//! ```text
//! LIVEGATE_TARGETS_JWT_HMAC_SECRET=… LIVEGATE_TARGETS_REDIS_URL=redis://127.0.0.1:6379 livegate-targets
//! ```

use std::process::ExitCode;

use clap::Parser;
use livegate_publisher::targets_api::config::TargetsArgs;
use livegate_publisher::targets_api::server;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const EXIT_CONFIG: u8 = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let args = TargetsArgs::parse();
    let filter = EnvFilter::try_new(&args.log).unwrap_or_else(|e| {
        eprintln!("LIVEGATE_TARGETS_LOG: {e}; using \"info\"");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let config = match args.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    match server::serve(config, listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let cause = std::error::Error::source(&e).map(ToString::to_string);
            tracing::error!(error = %e, ?cause, "livegate-targets stopped");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
