//! The `livegate` binary: parse flags, set up logging, run. Bad configuration exits with 64.

use std::process::ExitCode;

use livegate_gateway::config::{Command, Config, DEV_PROJECT_ID, parse_duration};
use livegate_gateway::config_file::{self, CliError};
use livegate_gateway::dev_token::DevToken;
use livegate_gateway::{server, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = match config_file::parse_cli() {
        Ok(cli) => cli,
        Err(CliError::File(e)) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(CliError::Clap(e)) if e.use_stderr() => {
            // A flag or variable that does not parse is a configuration error like any other.
            let _ = e.print();
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(CliError::Clap(e)) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match cli.command {
        Command::DevToken(args) => {
            let mut errors = Vec::new();
            let ttl = parse_duration("--ttl", &args.ttl, &mut errors);
            let Some(ttl) = ttl.filter(|_| errors.is_empty()) else {
                eprintln!("{}", errors.join("\n"));
                return ExitCode::from(EXIT_CONFIG);
            };
            let token = DevToken {
                user: &args.user,
                projects: &args.projects,
                sid: args.sid.as_deref(),
                permissions: &args.permissions,
                ttl,
                secret: args.secret.as_deref(),
            };
            match token.mint() {
                Ok(t) => {
                    println!("{t}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot sign the token: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            telemetry::init(&args.log, args.log_format);
            let config = match args.validate() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "the gateway stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.listen).await?;
    if config.dev {
        print_dev_banner(&config, listener.local_addr()?);
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    server::run(config, listener, shutdown).await
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_dev_banner(config: &Config, addr: std::net::SocketAddr) {
    let Some(secret) = config.dev_secret.as_deref() else {
        println!(
            "livegate (development mode) is listening on http://{addr}: mint tokens with your own key"
        );
        return;
    };
    let token = DevToken {
        user: "dev-user",
        projects: &[DEV_PROJECT_ID],
        sid: None,
        permissions: &["all".to_owned()],
        ttl: std::time::Duration::from_secs(24 * 3600),
        secret: Some(secret),
    }
    .mint()
    .unwrap_or_else(|e| format!("<cannot sign a dev token: {e}>"));
    let key = config.publish_api_key.as_deref().unwrap_or("<none>");
    let url = format!("http://{addr}");
    let engine = config.engine;
    println!(
        r#"
livegate (development mode, {engine:?} engine) is listening on {url}

  Socket.IO   {url}/v2/live-updates   (path /v2/live-updates/socket.io/)
  project_id  {DEV_PROJECT_ID}
  dev token   {token}

  Connect:    io("{url}/v2/live-updates", {{ path: "/v2/live-updates/socket.io/",
                auth: {{ token: "<dev token>", project_id: "{DEV_PROJECT_ID}" }} }})
  Publish:    curl -X POST {url}/api/v1/publish -H 'Authorization: Bearer {key}' \
                -H 'Content-Type: application/json' -d '{{"event":"target.added","channel":"targets",
                "project_id":"{DEV_PROJECT_ID}","platform":"discord","target":{{"target_id":"1f2e3d4c-5b6a-7e8f-9a0b-1c2d3e4f5a6b",
                "target_name":"My Server","platform":"discord","kind":"guild","external_id":"123",
                "is_enabled":true,"parent_target_id":null}}}}'
"#
    );
    if config.targets_api.is_some() {
        println!(
            r#"  Admin page  {url}/   (a live table of the dev project's targets)
  Targets API {url}/v2/projects/{DEV_PROJECT_ID}/targets   (Authorization: Bearer <dev token>)
  Create:     curl -X POST {url}/v2/projects/{DEV_PROJECT_ID}/targets -H 'Authorization: Bearer <dev token>' \
                -H 'Content-Type: application/json' \
                -d '{{"target_name":"My Server","platform":"discord","kind":"guild","external_id":"123"}}'
"#
        );
    }
}
