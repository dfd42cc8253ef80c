//! `livegate-publish`: publish one publication, or revoke a session, from a shell.
//!
//! ```text
//! livegate-publish publish '{"event":"target.added",...}'        # Redis (LIVEGATE_REDIS_URL)
//! echo '{...}' | livegate-publish --http http://127.0.0.1:8080 --key KEY publish -
//! livegate-publish revoke --sid SESSION --reason logout
//! ```

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use livegate_protocol::{AnyPublication, RedisNames};
use livegate_publisher::{Error, HttpPublisher, Publisher, RedisPublisher, redis};

#[derive(Parser)]
#[command(
    name = "livegate-publish",
    about = "Publish livegate events or revoke sessions"
)]
struct Cli {
    /// Redis URL (`redis://…`, `redis-cluster://…`).
    #[arg(
        long,
        env = "LIVEGATE_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis_url: String,
    /// Key and channel prefix.
    #[arg(long, env = "LIVEGATE_REDIS_PREFIX", default_value = "livegate")]
    prefix: String,
    /// Use SPUBLISH (Redis Cluster, sharded pub/sub).
    #[arg(long, env = "LIVEGATE_REDIS_SHARDED", default_value_t = false)]
    sharded: bool,
    /// Publish over HTTP to this gateway instead of Redis (embedded engine).
    #[arg(long, env = "LIVEGATE_PUBLISH_URL")]
    http: Option<String>,
    /// The gateway's publish API key (with --http).
    #[arg(long, env = "LIVEGATE_PUBLISH_API_KEY", hide_env_values = true)]
    key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish one publication: a JSON object as argument, or `-` for stdin.
    Publish { json: String },
    /// Revoke a session on every node.
    Revoke {
        #[arg(long)]
        sid: String,
        #[arg(long, default_value = "logout")]
        reason: String,
        /// How long the revocation lasts (at least the token lifetime).
        #[arg(long, default_value = "24h")]
        ttl: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("livegate-publish: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    match &cli.http {
        Some(url) => {
            let publisher = HttpPublisher::new(url.clone(), cli.key.clone().unwrap_or_default());
            execute(&publisher, cli.command).await
        }
        None => {
            let client = redis::connect(&cli.redis_url, Duration::from_secs(5)).await?;
            let publisher =
                RedisPublisher::new(client, RedisNames::new(cli.prefix.clone()), cli.sharded);
            execute(&publisher, cli.command).await
        }
    }
}

async fn execute(publisher: &impl Publisher, command: Command) -> Result<(), Error> {
    match command {
        Command::Publish { json } => {
            let text = if json == "-" {
                let mut buf = String::new();
                let _ = std::io::stdin().read_to_string(&mut buf);
                buf
            } else {
                json
            };
            let event_id = match AnyPublication::parse(text.as_bytes())? {
                AnyPublication::Live(p) => publisher.publish(p).await?,
                AnyPublication::Chat(p) => publisher.publish_chat(p).await?,
            };
            println!("{event_id}");
        }
        Command::Revoke { sid, reason, ttl } => {
            let ttl = humantime::parse_duration(&ttl).unwrap_or(Duration::from_secs(24 * 3600));
            publisher.revoke_session(&sid, &reason, ttl).await?;
            println!("revoked {sid}");
        }
    }
    Ok(())
}
