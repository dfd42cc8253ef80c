//! A minimal Engine.IO v4 long-polling client: one keep-alive HTTP/1.1 connection for the `GET`s
//! that wait for packets, another for the `POST`s that send them, both from the connection's
//! source address. Like [`crate::ws`], hand-written so that the load generator stays cheap; the
//! servers answer with `Content-Length` bodies, which is all it reads.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ws::{UpgradeError, connect_tcp};

/// Engine.IO's packet separator in a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// The largest response accepted.
const MAX_BODY: usize = 16 << 20;

/// One polling session: `GET`s for packets, `POST`s to send.
pub struct Polling {
    get: HttpConn,
    post: HttpConn,
    /// `path?EIO=4&transport=polling`, then with `&sid=…` once the server opened the session.
    query: String,
    has_sid: bool,
}

impl Polling {
    /// `extra_headers`: whole header lines, each ending in CRLF, sent with every request.
    pub async fn connect(
        target: SocketAddr,
        source: Option<IpAddr>,
        host: &str,
        path: &str,
        extra_headers: &str,
    ) -> io::Result<Polling> {
        let get = HttpConn::connect(target, source, host, extra_headers).await?;
        let post = HttpConn::connect(target, source, host, extra_headers).await?;
        Ok(Polling {
            get,
            post,
            query: format!("{path}?EIO=4&transport=polling"),
            has_sid: false,
        })
    }

    /// Waits for the next payload (one or more packets joined by [`SEPARATOR`]). The first one
    /// is the Engine.IO OPEN packet, whose `sid` every later request carries.
    pub async fn poll(&mut self) -> Result<Vec<u8>, UpgradeError> {
        let body = self.get.request("GET", &self.query, b"").await?;
        if !self.has_sid {
            let sid = open_sid(&body)
                .ok_or_else(|| UpgradeError::Refused("no sid in the OPEN packet".into()))?;
            self.query = format!("{}&sid={sid}", self.query);
            self.has_sid = true;
        }
        Ok(body)
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &[u8]) -> Result<(), UpgradeError> {
        self.post
            .request("POST", &self.query, packet)
            .await
            .map(drop)
    }
}

/// The `sid` of an Engine.IO OPEN packet (`0{"sid":"…",…}`), the first packet of a payload.
fn open_sid(payload: &[u8]) -> Option<&str> {
    let open = payload
        .split(|b| *b == SEPARATOR)
        .next()?
        .strip_prefix(b"0")?;
    let at = memchr::memmem::find(open, b"\"sid\":\"")? + 7;
    let len = memchr::memchr(b'"', &open[at..])?;
    std::str::from_utf8(&open[at..at + len]).ok()
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
struct HttpConn {
    stream: TcpStream,
    host: String,
    extra_headers: String,
    buf: Vec<u8>,
}

impl HttpConn {
    async fn connect(
        target: SocketAddr,
        source: Option<IpAddr>,
        host: &str,
        extra_headers: &str,
    ) -> io::Result<HttpConn> {
        Ok(HttpConn {
            stream: connect_tcp(target, source).await?,
            host: host.to_owned(),
            extra_headers: extra_headers.to_owned(),
            buf: Vec::with_capacity(1024),
        })
    }

    /// Sends a request and returns the body of a `200` answer.
    async fn request(
        &mut self,
        method: &str,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, UpgradeError> {
        let head = format!(
            "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {}\r\n{}\r\n",
            self.host,
            body.len(),
            self.extra_headers
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request).await?;

        let header_end = loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break end;
            }
            if self.buf.len() > 16 * 1024 {
                return Err(UpgradeError::Refused("response header too long".into()));
            }
            self.fill().await?;
        };
        let head = &self.buf[..header_end];
        let line_end = memchr::memchr(b'\r', head).unwrap_or(head.len());
        if !head.starts_with(b"HTTP/1.1 200") {
            let status = String::from_utf8_lossy(&head[..line_end]).into_owned();
            return Err(UpgradeError::Refused(status));
        }
        let length = content_length(head)
            .ok_or_else(|| UpgradeError::Refused("response without Content-Length".into()))?;
        if length > MAX_BODY {
            return Err(UpgradeError::Refused("response body too large".into()));
        }
        let total = header_end + 4 + length;
        while self.buf.len() < total {
            self.fill().await?;
        }
        let body = self.buf[header_end + 4..total].to_vec();
        self.buf.drain(..total);
        Ok(body)
    }

    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|b| *b == b'\n').find_map(|line| {
        let line = std::str::from_utf8(line).ok()?.trim_end();
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sid_comes_from_the_open_packet() {
        let payload = b"0{\"sid\":\"abc-_1\",\"upgrades\":[],\"pingInterval\":25000}\x1e40";
        assert_eq!(open_sid(payload), Some("abc-_1"));
        assert_eq!(open_sid(b"40/ns,{\"sid\":\"x\"}"), None);
        assert_eq!(open_sid(b"0{}"), None);
    }

    #[test]
    fn content_length_is_read_case_insensitively() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH: 12\r\nx: y";
        assert_eq!(content_length(head), Some(12));
        assert_eq!(content_length(b"HTTP/1.1 200 OK\r\nx: y"), None);
    }
}
