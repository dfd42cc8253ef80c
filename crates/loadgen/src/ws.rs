//! A minimal websocket client: the HTTP upgrade, an incremental frame reader over one growable
//! buffer, and masked text/pong/close frames for the few packets a client sends.
//!
//! Why not tokio-tungstenite: a load generator must cost much less per delivery than the server
//! it measures. Frames from a server are unmasked, so reading them is a length check and a slice
//! into the connection's one buffer, with no allocation and no copy per frame. The frames we
//! send (Engine.IO pongs, the Socket.IO CONNECT, a few subscribes) are rare, so they may allocate.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Websocket opcodes (RFC 6455 §5.2).
pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// No server frame of this protocol comes near this; past it the peer is broken.
const MAX_FRAME: usize = 16 << 20;

/// Opens a TCP connection from `source` (port chosen by the kernel) to `target`.
///
/// Binding before connecting is what spreads connections over 127.0.0.x: each source address
/// has its own range of ephemeral ports towards one destination.
pub async fn connect_tcp(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends the HTTP/1.1 upgrade request and reads the `101` answer. Bytes the server sent after
/// the header (often the Engine.IO OPEN packet) stay in `reader`.
pub async fn upgrade(
    stream: &mut TcpStream,
    reader: &mut FrameReader,
    host: &str,
    path_and_query: &str,
    extra_headers: &str,
) -> Result<(), UpgradeError> {
    // The key is a fixed valid nonce: servers check its form, not its freshness.
    let request = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    loop {
        if let Some(end) = memchr::memmem::find(reader.pending(), b"\r\n\r\n") {
            let head = &reader.pending()[..end];
            let ok = head.starts_with(b"HTTP/1.1 101");
            if !ok {
                let line_end = memchr::memchr(b'\r', head).unwrap_or(head.len());
                let status = String::from_utf8_lossy(&head[..line_end]).into_owned();
                return Err(UpgradeError::Refused(status));
            }
            reader.consume(end + 4);
            return Ok(());
        }
        if reader.pending().len() > 16 * 1024 {
            return Err(UpgradeError::Refused("response header too long".into()));
        }
        if reader.fill(stream).await? == 0 {
            return Err(UpgradeError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

#[derive(Debug)]
pub enum UpgradeError {
    Io(io::Error),
    /// The server answered something other than `101 Switching Protocols` (the status line).
    Refused(String),
}

impl From<io::Error> for UpgradeError {
    fn from(e: io::Error) -> Self {
        UpgradeError::Io(e)
    }
}

/// Reads websocket frames out of one buffer that grows only for a frame larger than it.
pub struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// A frame the reader cannot accept.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A fragmented message: servers of this protocol never fragment text this small.
    Fragmented,
    TooLarge,
}

impl FrameReader {
    pub fn with_capacity(capacity: usize) -> Self {
        FrameReader {
            buf: vec![0; capacity.max(64)],
            start: 0,
            end: 0,
        }
    }

    /// Bytes received and not yet consumed.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The payload of a frame returned by [`FrameReader::next_frame`], valid until the next fill.
    pub fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Reads once from `stream`; `Ok(0)` at end of stream.
    pub async fn fill(&mut self, stream: &mut TcpStream) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = self.buf.len() * 2;
                self.buf.resize(len, 0);
            }
        }
        let n = stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame in the buffer: its opcode and where its payload is.
    pub fn next_frame(&mut self) -> Result<Option<(u8, Range<usize>)>, FrameError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (avail[0], avail[1]);
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0f;
        let masked = b1 & 0x80 != 0;
        let (len, mut header) = match b1 & 0x7f {
            126 => {
                if avail.len() < 4 {
                    return Ok(None);
                }
                (u16::from_be_bytes([avail[2], avail[3]]) as usize, 4)
            }
            127 => {
                if avail.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&avail[2..10]);
                let len = u64::from_be_bytes(b);
                (usize::try_from(len).unwrap_or(usize::MAX), 10)
            }
            n => (n as usize, 2),
        };
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge);
        }
        let mask_at = header;
        if masked {
            header += 4;
        }
        let total = header + len;
        if avail.len() < total {
            return Ok(None);
        }
        if !fin || opcode == OP_CONTINUATION {
            return Err(FrameError::Fragmented);
        }
        let at = self.start;
        let range = at + header..at + total;
        if masked {
            let key = [
                self.buf[at + mask_at],
                self.buf[at + mask_at + 1],
                self.buf[at + mask_at + 2],
                self.buf[at + mask_at + 3],
            ];
            for (i, b) in self.buf[range.clone()].iter_mut().enumerate() {
                *b ^= key[i & 3];
            }
        }
        self.start += total;
        Ok(Some((opcode, range)))
    }

    #[cfg(test)]
    fn is_drained(&self) -> bool {
        self.start == self.end
    }
}

/// Encodes one client frame (clients must mask, RFC 6455 §5.3).
pub fn encode_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

pub async fn send(
    stream: &mut TcpStream,
    opcode: u8,
    payload: &[u8],
    mask: [u8; 4],
) -> io::Result<()> {
    stream.write_all(&encode_frame(opcode, payload, mask)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = encode_frame(opcode, payload, [0; 4]);
        // Turn the client frame into a server one: clear the mask bit and drop the key.
        f[1] &= 0x7f;
        let key_at = match payload.len() {
            n if n < 126 => 2,
            n if n <= u16::MAX as usize => 4,
            _ => 10,
        };
        f.drain(key_at..key_at + 4);
        f
    }

    fn reader_with(bytes: &[u8]) -> FrameReader {
        let mut r = FrameReader::with_capacity(bytes.len().max(64));
        r.buf[..bytes.len()].copy_from_slice(bytes);
        r.end = bytes.len();
        r
    }

    #[test]
    fn reads_frames_of_each_length_form() {
        for len in [0usize, 5, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = server_frame(OP_TEXT, &payload);
            let mut r = reader_with(&bytes);
            let (op, range) = r.next_frame().expect("frame").expect("complete");
            assert_eq!(op, OP_TEXT);
            assert_eq!(r.payload(range), &payload[..], "len {len}");
            assert!(r.is_drained());
        }
    }

    #[test]
    fn waits_for_a_partial_frame() {
        let bytes = server_frame(OP_TEXT, b"42/ns,[\"x\",{}]");
        let mut r = reader_with(&bytes[..bytes.len() - 3]);
        assert_eq!(r.next_frame(), Ok(None));
    }

    #[test]
    fn reads_back_to_back_frames_and_unmasks() {
        let mut bytes = server_frame(OP_TEXT, b"2");
        bytes.extend(encode_frame(OP_TEXT, b"hello", [1, 2, 3, 4]));
        let mut r = reader_with(&bytes);
        let (_, a) = r.next_frame().expect("ok").expect("first");
        assert_eq!(r.payload(a), b"2");
        let (_, b) = r.next_frame().expect("ok").expect("second");
        assert_eq!(r.payload(b), b"hello");
        assert_eq!(r.next_frame(), Ok(None));
    }

    #[test]
    fn refuses_fragments() {
        let mut bytes = server_frame(OP_TEXT, b"abc");
        bytes[0] &= 0x7f;
        assert_eq!(
            reader_with(&bytes).next_frame(),
            Err(FrameError::Fragmented)
        );
    }
}
