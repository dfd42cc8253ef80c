//! Engine.IO v4 / Socket.IO v5 text framing, as much as a subscribing client needs: classify an
//! incoming packet by its first bytes, build the few packets a client sends, and find our own
//! `event_id` in a broadcast without parsing its JSON.
//!
//! Over websocket one frame carries one Engine.IO packet: `0{..}` open, `2` ping (answer `3`),
//! `1` close, `4` message. A Socket.IO packet inside a message is `<type>[<namespace>,][<ack id>]<json>`:
//! `40` connect, `41` disconnect, `42` event, `44` connect error.

use memchr::memmem::Finder;

/// What an incoming packet is, with the slices a caller needs.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Open,
    Ping,
    Close,
    /// Socket.IO CONNECT acknowledged for our namespace.
    Connected,
    /// `44`: the handshake was refused; the JSON body (`{"message":"code: why"}`).
    ConnectError(&'a [u8]),
    /// `41`: the server disconnected the socket.
    Disconnected,
    /// An event named `message` (the gateway's system messages); the JSON array.
    Message(&'a [u8]),
    /// Any other event (a broadcast); the JSON array, `["name",{..}]`.
    Event(&'a [u8]),
    /// Anything else (pong, noop, another namespace, binary, ...).
    Other,
}

/// The namespace-dependent prefixes, built once.
pub struct Framing {
    /// `/v2/live-updates,` (empty for the main namespace `/`).
    ns_prefix: Vec<u8>,
}

impl Framing {
    pub fn new(namespace: &str) -> Self {
        let ns_prefix = if namespace == "/" {
            Vec::new()
        } else {
            format!("{namespace},").into_bytes()
        };
        Framing { ns_prefix }
    }

    pub fn classify<'a>(&self, frame: &'a [u8]) -> Packet<'a> {
        match frame.first() {
            Some(b'0') => return Packet::Open,
            Some(b'1') => return Packet::Close,
            Some(b'2') => return Packet::Ping,
            Some(b'4') => {}
            _ => return Packet::Other,
        }
        let Some(&kind) = frame.get(1) else {
            return Packet::Other;
        };
        let Some(body) = frame[2..].strip_prefix(self.ns_prefix.as_slice()) else {
            return Packet::Other;
        };
        match kind {
            b'0' => Packet::Connected,
            b'1' => Packet::Disconnected,
            b'4' => Packet::ConnectError(body),
            b'2' => {
                // An optional ack id precedes the array.
                let at = body
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .unwrap_or(body.len());
                let array = &body[at..];
                if array.starts_with(b"[\"message\"") {
                    Packet::Message(array)
                } else {
                    Packet::Event(array)
                }
            }
            _ => Packet::Other,
        }
    }

    /// `40/ns,{auth}`
    pub fn connect(&self, auth_json: &str) -> Vec<u8> {
        let mut p = b"40".to_vec();
        p.extend_from_slice(&self.ns_prefix);
        p.extend_from_slice(auth_json.as_bytes());
        p
    }

    /// `42/ns,["message",{json}]`
    pub fn message(&self, json: &str) -> Vec<u8> {
        let mut p = b"42".to_vec();
        p.extend_from_slice(&self.ns_prefix);
        p.extend_from_slice(b"[\"message\",");
        p.extend_from_slice(json.as_bytes());
        p.push(b']');
        p
    }
}

/// The system message kinds a load client reacts to (`"event":"..."` inside a `message`).
#[derive(Debug, PartialEq, Eq)]
pub enum System {
    Ready,
    Subscribed,
    Error,
    Other,
}

pub struct SystemFinders {
    ready: Finder<'static>,
    subscribed: Finder<'static>,
    error: Finder<'static>,
}

impl Default for SystemFinders {
    fn default() -> Self {
        SystemFinders {
            ready: Finder::new(b"\"event\":\"ready\"").into_owned(),
            subscribed: Finder::new(b"\"event\":\"subscribed\"").into_owned(),
            error: Finder::new(b"\"event\":\"error\"").into_owned(),
        }
    }
}

impl SystemFinders {
    pub fn kind(&self, message: &[u8]) -> System {
        if self.subscribed.find(message).is_some() {
            System::Subscribed
        } else if self.ready.find(message).is_some() {
            System::Ready
        } else if self.error.find(message).is_some() {
            System::Error
        } else {
            System::Other
        }
    }
}

/// Our event ids: `lg<run>.<seq>.<send time in µs since the epoch>`. The run tag keeps a stale
/// publication from an earlier run (same Redis) from being matched.
pub struct EventIds {
    run: String,
    finder: Finder<'static>,
}

impl EventIds {
    pub fn new(run: u32) -> Self {
        let run = format!("lg{run:08x}.");
        let finder = Finder::new(format!("\"event_id\":\"{run}").as_bytes()).into_owned();
        EventIds { run, finder }
    }

    pub fn format(&self, seq: u64, sent_us: u64) -> String {
        format!("{}{seq}.{sent_us}", self.run)
    }

    /// `(seq, sent_us)` of a broadcast carrying one of our ids.
    pub fn find(&self, event: &[u8]) -> Option<(u64, u64)> {
        let at = self.finder.find(event)? + self.finder.needle().len();
        let rest = &event[at..];
        let (seq, used) = parse_u64(rest)?;
        let rest = rest.get(used..)?.strip_prefix(b".")?;
        let (sent, used) = parse_u64(rest)?;
        (rest.get(used) == Some(&b'"')).then_some((seq, sent))
    }
}

fn parse_u64(s: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    let mut n = 0;
    for &b in s.iter().take(20) {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        n += 1;
    }
    (n > 0).then_some((v, n))
}

/// The code of a `connect_error` body `{"message":"code: why"}`; `unknown` if it has none.
pub fn connect_error_code(body: &[u8]) -> String {
    let Some(at) = memchr::memmem::find(body, b"\"message\":\"") else {
        return "unknown".into();
    };
    let rest = &body[at + 11..];
    let end = rest
        .iter()
        .position(|&b| b == b':' || b == b'"')
        .unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_packets() {
        let f = Framing::new("/v2/live-updates");
        assert_eq!(f.classify(b"0{\"sid\":\"x\"}"), Packet::Open);
        assert_eq!(f.classify(b"2"), Packet::Ping);
        assert_eq!(
            f.classify(b"40/v2/live-updates,{\"sid\":\"a\"}"),
            Packet::Connected
        );
        assert_eq!(
            f.classify(b"44/v2/live-updates,{\"message\":\"invalid_token: bad\"}"),
            Packet::ConnectError(b"{\"message\":\"invalid_token: bad\"}")
        );
        assert_eq!(
            f.classify(b"42/v2/live-updates,[\"message\",{\"event\":\"ready\"}]"),
            Packet::Message(b"[\"message\",{\"event\":\"ready\"}]")
        );
        assert_eq!(
            f.classify(b"42/v2/live-updates,[\"target.added\",{}]"),
            Packet::Event(b"[\"target.added\",{}]")
        );
        assert_eq!(f.classify(b"42/chat,[\"x\",{}]"), Packet::Other);
        assert_eq!(f.classify(b"41/v2/live-updates,"), Packet::Disconnected);
        let root = Framing::new("/");
        assert_eq!(
            root.classify(b"4212[\"x\",{}]"),
            Packet::Event(b"[\"x\",{}]")
        );
    }

    #[test]
    fn builds_client_packets() {
        let f = Framing::new("/v2/live-updates");
        assert_eq!(f.connect("{\"a\":1}"), b"40/v2/live-updates,{\"a\":1}");
        assert_eq!(
            f.message("{\"action\":\"ping\"}"),
            b"42/v2/live-updates,[\"message\",{\"action\":\"ping\"}]"
        );
    }

    #[test]
    fn finds_our_event_ids_only() {
        let ids = EventIds::new(0xabc);
        let id = ids.format(42, 1_700_000_000_123_456);
        let frame = format!("[\"x\",{{\"channel\":\"targets\",\"event_id\":\"{id}\",\"z\":1}}]");
        assert_eq!(
            ids.find(frame.as_bytes()),
            Some((42, 1_700_000_000_123_456))
        );
        let other = EventIds::new(0xabd).format(42, 1);
        let frame = format!("[\"x\",{{\"event_id\":\"{other}\"}}]");
        assert_eq!(ids.find(frame.as_bytes()), None);
        assert_eq!(ids.find(b"[\"x\",{\"event_id\":\"lg00000abc.1.\"}]"), None);
    }

    #[test]
    fn reads_connect_error_codes() {
        assert_eq!(
            connect_error_code(b"{\"message\":\"token_expired: the token has expired\"}"),
            "token_expired"
        );
        assert_eq!(
            connect_error_code(b"{\"message\":\"Invalid namespace\"}"),
            "Invalid namespace"
        );
        assert_eq!(connect_error_code(b"{}"), "unknown");
    }

    #[test]
    fn classifies_system_messages() {
        let s = SystemFinders::default();
        assert_eq!(
            s.kind(b"[\"message\",{\"channels\":[],\"event\":\"ready\"}]"),
            System::Ready
        );
        assert_eq!(
            s.kind(b"[\"message\",{\"event\":\"subscribed\"}]"),
            System::Subscribed
        );
        assert_eq!(
            s.kind(b"[\"message\",{\"code\":\"forbidden\",\"event\":\"error\"}]"),
            System::Error
        );
        assert_eq!(s.kind(b"[\"message\",{\"event\":\"pong\"}]"), System::Other);
    }
}
