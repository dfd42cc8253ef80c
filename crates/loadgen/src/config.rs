//! Command-line flags, and the plan they describe: which connection goes where, subscribed to
//! what, and which publication goes to which project and channel.
//!
//! The publication schedule is a pure function of the sequence number (project `seq % P`,
//! channel from the round `seq / P`), so every connection can tell whether an event was meant for
//! it, and count a delivery to the wrong project or channel.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// The development secret of `livegate serve --dev`, the default here so `--dev` nodes just work.
pub const DEV_JWT_SECRET: &str = "livegate-dev-secret-do-not-use-in-production";
pub const DEV_PUBLISH_KEY: &str = "livegate-dev-publish-key";

#[derive(Debug, Clone, Parser, Serialize)]
#[command(
    name = "livegate-loadgen",
    version,
    about = "Load generator for livegate and other Socket.IO v4 servers of the same protocol",
    long_about = "Opens N websocket connections (Engine.IO v4 / Socket.IO v5), authenticates each with an \
HS256 token it mints, subscribes them to a channel mix over P projects, publishes at target rates \
through Redis or HTTP with its own event ids, and reports deliveries/s, loss, duplicates and \
publish-to-client latency. A live progress line goes to stderr, the JSON report to stdout and --report."
)]
pub struct Args {
    /// Server base URL(s), `http://host:port`; each project's connections alternate over them.
    #[arg(long = "url", required = true, value_delimiter = ',')]
    pub urls: Vec<String>,

    /// Engine.IO path.
    #[arg(long, default_value = "/v2/live-updates/socket.io/")]
    pub path: String,

    /// Socket.IO namespace.
    #[arg(long, default_value = "/v2/live-updates")]
    pub namespace: String,

    /// Engine.IO transport of every connection: websocket, or HTTP long-polling only (two TCP
    /// connections per client: one waiting GET, one for POSTs).
    #[arg(long, value_enum, default_value_t = Transport::Websocket)]
    pub transport: Transport,

    /// Connections to open (each holds one file descriptor here and one on the server).
    #[arg(long, short = 'n', default_value_t = 100)]
    pub connections: usize,

    /// Projects the connections are spread over (connection i belongs to project i % P).
    #[arg(long, default_value_t = 1)]
    pub projects: usize,

    /// Channel sets, comma separated, channels of one set joined by `+`; connection i subscribes
    /// to set (i / P) % sets. `none` is an empty set (connected, not subscribed).
    #[arg(long, default_value = "targets+payment-methods")]
    pub mix: String,

    /// Source addresses 127.0.0.1 ..= 127.0.0.N, one per connection round-robin (bound before
    /// connect), to pass the per-address ephemeral port limit. 0: let the kernel choose.
    #[arg(long, default_value_t = 8)]
    pub source_addrs: u8,

    /// An extra HTTP header on every Engine.IO request, `Name: value` (repeatable): what a
    /// browser adds (cookies, user agent), to measure what it costs the server.
    #[arg(long = "header")]
    pub headers: Vec<String>,

    /// HS256 secret the server verifies user tokens with.
    #[arg(long, env = "LOADGEN_JWT_SECRET", default_value = DEV_JWT_SECRET, hide_default_value = true, hide_env_values = true)]
    #[serde(skip)]
    pub jwt_secret: String,

    /// Ramp-up: connections are started evenly over this time (0: as fast as allowed).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub ramp_up: Duration,

    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Give up on a connection that is not subscribed after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub handshake_timeout: Duration,

    /// How publications are sent.
    #[arg(long, value_enum, default_value = "redis")]
    pub publish: PublishVia,

    /// Redis URL for `--publish redis`.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Prefix of the Redis channels (`{prefix}:project:{id}`).
    #[arg(long, default_value = "livegate")]
    pub redis_prefix: String,

    /// Base URL of the HTTP publish API (default: the first --url).
    #[arg(long)]
    pub publish_url: Option<String>,

    /// Bearer key of the publish API.
    #[arg(long, env = "LOADGEN_PUBLISH_KEY", default_value = DEV_PUBLISH_KEY, hide_default_value = true, hide_env_values = true)]
    #[serde(skip)]
    pub publish_key: String,

    /// HTTP publish requests in flight at once.
    #[arg(long, default_value_t = 64)]
    pub http_concurrency: usize,

    /// Publications per second (all projects together). Several values, comma separated, run
    /// one step each, in order. 0 holds the connections idle for the step.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub rate: Vec<f64>,

    /// Per step: publish this long before measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub warmup: Duration,

    /// Per step: the measured steady state.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub duration: Duration,

    /// Per step: wait this long after publishing stops for late deliveries.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub drain: Duration,

    /// Stop after the first step that is not clean: a delivery lost or duplicated, a connection
    /// dropped, p99 over --max-p99, or fewer than 97 % of the owed deliveries arriving in the window.
    #[arg(long)]
    pub stop_on_fail: bool,

    /// A step whose p99 exceeds this is not clean.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub max_p99: Duration,

    /// Extra bytes per publication (a `pad` field the server forwards unchanged).
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,

    /// Handshake churn: every connection closes once subscribed and reconnects, until the end.
    #[arg(long)]
    pub churn: bool,

    /// Record CPU time and RSS of these processes (the servers) at each phase boundary.
    #[arg(long, value_delimiter = ',')]
    pub watch_pid: Vec<u32>,

    /// Also write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// Write the current phase to this file (for scripts that sample around phases).
    #[arg(long)]
    pub phase_file: Option<PathBuf>,

    /// Instance number when several load generators share a run (keeps users and sessions apart).
    #[arg(long, default_value_t = 0)]
    pub instance: u32,

    /// Exit with status 1 if any step lost, duplicated or misrouted a delivery, or a connection failed.
    #[arg(long)]
    pub fail_on_loss: bool,

    /// Batch arrivals: the load generator polls its sockets at most once per this interval
    /// instead of waking for each message, which cuts its CPU per delivery several times over at
    /// a cost of at most this much added to measured latencies. 0 wakes per message.
    #[arg(long, default_value = "200us", value_parser = humantime::parse_duration)]
    #[serde(serialize_with = "secs")]
    pub batch_interval: Duration,

    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Polling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishVia {
    /// `PUBLISH {prefix}:project:{id}` on Redis.
    Redis,
    /// `POST /api/v1/publish` (the embedded engine).
    Http,
}

/// The channels a connection can subscribe to, as bits of a set.
pub const CHANNELS: [&str; 2] = ["targets", "payment-methods"];

/// A target server, resolved once.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` for the Host header.
    pub host: String,
}

/// Everything derived from the flags, checked once.
#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub path_and_query: String,
    /// Channel sets as bit masks over [`CHANNELS`].
    pub sets: Vec<u8>,
    /// Channels some connection subscribes to, in [`CHANNELS`] order: what gets published.
    pub published_channels: Vec<u8>,
    pub sources: Vec<IpAddr>,
    pub publish_url: String,
    /// `--header` lines, each ending in CRLF, ready to go into a request head.
    pub extra_headers: String,
}

impl Plan {
    pub fn from_args(a: &Args) -> Result<Plan, String> {
        let mut errors = Vec::new();
        let targets: Vec<Target> = a
            .urls
            .iter()
            .filter_map(|u| match parse_target(u) {
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(e);
                    None
                }
            })
            .collect();
        if a.connections == 0 {
            errors.push("--connections must be at least 1".into());
        }
        if a.projects == 0 {
            errors.push("--projects must be at least 1".into());
        }
        if a.connect_concurrency == 0 || a.http_concurrency == 0 {
            errors.push("concurrency limits must be at least 1".into());
        }
        if a.rate.iter().any(|r| !r.is_finite() || *r < 0.0) {
            errors.push("--rate values must be finite and not negative".into());
        }
        if a.duration.is_zero() {
            errors.push("--duration must not be zero".into());
        }
        let mut sets = Vec::new();
        for set in a.mix.split(',') {
            let mut mask = 0u8;
            for ch in set
                .split('+')
                .map(str::trim)
                .filter(|c| !c.is_empty() && *c != "none")
            {
                match CHANNELS.iter().position(|c| *c == ch) {
                    Some(i) => mask |= 1 << i,
                    None => errors.push(format!(
                        "--mix: unknown channel {ch:?} (known: {})",
                        CHANNELS.join(", ")
                    )),
                }
            }
            sets.push(mask);
        }
        let union = sets.iter().fold(0u8, |a, b| a | b);
        let published_channels: Vec<u8> = (0..CHANNELS.len() as u8)
            .filter(|i| union & (1 << i) != 0)
            .collect();
        if published_channels.is_empty() && a.rate.iter().any(|r| *r > 0.0) {
            errors.push("--rate > 0 needs a --mix that subscribes to some channel".into());
        }
        let sources = (1..=a.source_addrs)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        let publish_url = a
            .publish_url
            .clone()
            .or_else(|| a.urls.first().cloned())
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let mut extra_headers = String::new();
        for header in &a.headers {
            match header.split_once(':') {
                Some((name, value))
                    if !name.trim().is_empty() && !header.contains(['\r', '\n']) =>
                {
                    extra_headers.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
                }
                _ => errors.push(format!("--header {header:?}: expected `Name: value`")),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("\n"));
        }
        Ok(Plan {
            extra_headers,
            targets,
            path_and_query: format!("{}?EIO=4&transport=websocket", a.path),
            sets,
            published_channels,
            sources,
            publish_url,
        })
    }

    /// Project of connection `i`.
    pub fn project_of(&self, i: usize, projects: usize) -> usize {
        i % projects
    }

    /// Channel set of connection `i`: spread inside each project, so every project gets the mix.
    pub fn set_of(&self, i: usize, projects: usize) -> u8 {
        self.sets[(i / projects) % self.sets.len()]
    }

    /// The project and channel publication `seq` is scheduled for.
    pub fn route_of(&self, seq: u64, projects: usize) -> (usize, u8) {
        let p = (seq % projects as u64) as usize;
        let round = seq / projects as u64;
        let c = self.published_channels[(round % self.published_channels.len() as u64) as usize];
        (p, c)
    }
}

/// `http://host:port[/]` → address and Host header. Only plain HTTP on this machine.
fn parse_target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("--url {url:?}: only http:// URLs are supported"))?;
    let host = rest.split('/').next().unwrap_or_default().to_string();
    let with_port = if host.contains(':') {
        host.clone()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("--url {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url:?}: no address"))?;
    Ok(Target { addr, host })
}

/// The project id of project index `p`: a fixed, valid, lower-case UUID.
pub fn project_uuid(p: usize) -> String {
    format!("10adc0de-0000-4000-8000-{p:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["livegate-loadgen", "--url", "http://127.0.0.1:8080"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn extra_headers_become_request_lines_and_bad_ones_are_refused() {
        let plan = Plan::from_args(&args(&[
            "--header",
            "Cookie: a=1; b=2",
            "--header",
            "X-Y:z",
        ]))
        .expect("plan");
        assert_eq!(plan.extra_headers, "Cookie: a=1; b=2\r\nX-Y: z\r\n");
        for bad in ["no colon", ": no name"] {
            assert!(Plan::from_args(&args(&["--header", bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_the_mix_and_routes_publications() {
        let a = args(&[
            "--mix",
            "targets,payment-methods,targets+payment-methods",
            "--projects",
            "3",
        ]);
        let plan = Plan::from_args(&a).expect("plan");
        assert_eq!(plan.sets, vec![0b01, 0b10, 0b11]);
        assert_eq!(plan.published_channels, vec![0, 1]);
        // project = seq % 3, channel alternates per round.
        assert_eq!(plan.route_of(0, 3), (0, 0));
        assert_eq!(plan.route_of(4, 3), (1, 1));
        assert_eq!(plan.route_of(6, 3), (0, 0));
        // connections 0..3 are project 0..3 with set 0; 3..6 set 1.
        assert_eq!(plan.set_of(4, 3), 0b10);
        assert_eq!(plan.project_of(4, 3), 1);
    }

    #[test]
    fn refuses_bad_flags_all_at_once() {
        let a = args(&["--mix", "chat", "--projects", "0", "--rate", "5"]);
        let err = Plan::from_args(&a).expect_err("bad flags");
        assert!(err.contains("unknown channel"), "{err}");
        assert!(err.contains("--projects"), "{err}");
    }

    #[test]
    fn project_ids_are_uuids() {
        assert_eq!(project_uuid(255), "10adc0de-0000-4000-8000-0000000000ff");
    }
}
