//! Graceful drain: on SIGTERM, move this node's clients to other nodes without losing them.
//!
//! A stock Socket.IO client reconnects by itself after a *transport* close, never after a
//! server-side namespace disconnect, and socketioxide has no public way to close one socket's
//! Engine.IO transport. So the drain works one level down, on TCP connections:
//!
//! - [`DrainListener`] wraps the node's `TcpListener` (it is what `axum::serve` accepts from). It
//!   sets `TCP_NODELAY` on every accepted stream (Nagle + delayed ACK would add ~40 ms to each
//!   handshake) and registers it in the [`DrainRegistry`] with its own [`DrainSwitch`].
//! - [`DrainableStream`] is the stream hyper reads and writes, websocket upgrades included. Once
//!   its switch is thrown, every read and write fails, and a read or write parked on the socket
//!   is woken to fail too. The hot path costs one atomic load per call: the stream registers
//!   its waker only when the socket itself would block. hyper (or tungstenite, on an upgraded
//!   websocket) then drops the connection: the Engine.IO socket sees a transport error, and the
//!   client sees `transport close`/`transport error` and reconnects, through the load balancer,
//!   to a node that is still ready.
//! - [`drain`] throws the registry's switches in batches spread over the drain window, so the
//!   other nodes get a steady trickle of reconnections rather than a thundering herd. It stops
//!   early once no Socket.IO socket is left on the node.
//!
//! The whole shutdown order is in [`crate::server`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use livegate_protocol::SOCKET_IO_PATH;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;

/// When and how the node drains its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainSettings {
    /// How long the drain may take, from SIGTERM to the last connection closed.
    pub window: Duration,
    /// In how many batches the connections are closed over the window.
    pub batches: u32,
}

impl DrainSettings {
    /// The pause between two batches.
    pub fn interval(&self) -> Duration {
        self.window / self.batches.max(1)
    }
}

/// What closes one connection: a flag its stream checks on every call, and the wakers of a read
/// and a write parked on the socket, woken when the flag is set.
#[derive(Debug, Default)]
pub struct DrainSwitch {
    closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl DrainSwitch {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Parks `cx` on the switch after the socket said `Pending`; `true` if the switch was thrown
    /// meanwhile (checked after registering, so a close in between is never missed).
    fn park(&self, waker: &AtomicWaker, cx: &Context<'_>) -> bool {
        waker.register(cx.waker());
        self.is_closed()
    }
}

/// Every open TCP connection of the node, each with the switch that closes it.
#[derive(Debug, Default)]
pub struct DrainRegistry {
    state: Mutex<RegistryState>,
    next_id: AtomicU64,
    /// Connections closed by the drain so far.
    closed_by_drain: AtomicU64,
}

#[derive(Debug, Default)]
struct RegistryState {
    open: HashMap<u64, Arc<DrainSwitch>>,
    /// Set by [`DrainRegistry::close_all`]: a connection accepted from then on is closed at once.
    closing: bool,
}

impl DrainRegistry {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> MutexGuard<'_, RegistryState> {
        // Critical sections are single map operations: a poisoned lock still guards a consistent map.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection; it leaves the registry when the returned guard is dropped.
    fn register(self: &Arc<Self>) -> (Arc<DrainSwitch>, Registration) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let switch = Arc::new(DrainSwitch::default());
        let mut state = self.state();
        if state.closing {
            switch.close();
        } else {
            state.open.insert(id, switch.clone());
        }
        let registration = Registration {
            id,
            registry: Arc::downgrade(self),
        };
        (switch, registration)
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.state().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections closed by the drain since the process started.
    pub fn closed_by_drain(&self) -> u64 {
        self.closed_by_drain.load(Ordering::Relaxed)
    }

    /// Closes up to `n` open connections; returns how many.
    pub fn close_some(&self, n: usize) -> usize {
        let switches: Vec<Arc<DrainSwitch>> = {
            let mut state = self.state();
            let ids: Vec<u64> = state.open.keys().copied().take(n).collect();
            ids.iter().filter_map(|id| state.open.remove(id)).collect()
        };
        for switch in &switches {
            switch.close();
        }
        self.closed_by_drain
            .fetch_add(switches.len() as u64, Ordering::Relaxed);
        switches.len()
    }

    /// Closes every open connection, and every one accepted from now on.
    pub fn close_all(&self) -> usize {
        self.state().closing = true;
        self.close_some(usize::MAX)
    }
}

/// Takes a connection out of the registry when it is gone.
#[derive(Debug)]
struct Registration {
    id: u64,
    registry: std::sync::Weak<DrainRegistry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.state().open.remove(&self.id);
        }
    }
}

// === impl DrainListener ===

/// The node's listener: accepts TCP connections, sets `TCP_NODELAY` and registers each one.
pub struct DrainListener {
    inner: TcpListener,
    registry: Arc<DrainRegistry>,
}

impl DrainListener {
    pub fn new(inner: TcpListener, registry: Arc<DrainRegistry>) -> Self {
        DrainListener { inner, registry }
    }
}

impl axum::serve::Listener for DrainListener {
    type Io = DrainableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let (switch, registration) = self.registry.register();
        let stream = DrainableStream {
            inner: tcp,
            switch,
            _registration: registration,
        };
        (stream, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

// === impl DrainableStream ===

/// A TCP stream whose reads and writes fail once the drain closes it.
pub struct DrainableStream {
    inner: TcpStream,
    switch: Arc<DrainSwitch>,
    _registration: Registration,
}

fn drained() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed by the drain: the node is shutting down",
    )
}

impl DrainableStream {
    /// Runs one I/O call unless the switch is thrown; a call that would block parks its task on
    /// `waker` too, so the drain can wake it to fail.
    fn guarded<T>(
        &mut self,
        cx: &mut Context<'_>,
        waker: fn(&DrainSwitch) -> &AtomicWaker,
        call: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.switch.is_closed() {
            return Poll::Ready(Err(drained()));
        }
        match call(Pin::new(&mut self.inner), cx) {
            Poll::Pending if self.switch.park(waker(&self.switch), cx) => {
                Poll::Ready(Err(drained()))
            }
            other => other,
        }
    }
}

impl AsyncRead for DrainableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.guarded(cx, |s| &s.reader, |inner, cx| inner.poll_read(cx, buf))
    }
}

impl AsyncWrite for DrainableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.guarded(cx, |s| &s.writer, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.guarded(
            cx,
            |s| &s.writer,
            |inner, cx| inner.poll_write_vectored(cx, bufs),
        )
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guarded(cx, |s| &s.writer, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

// === the drain ===

/// HTTP middleware: while draining, a request that would open a new Engine.IO session (the
/// Socket.IO path without a `sid`) is answered 503, so a stock client treats it as a transport
/// failure and retries (another node, through the load balancer). Requests of sessions already
/// open pass, so they are closed by the batches, not all at once.
pub async fn refuse_new_sessions(
    State(node): State<Arc<Node>>,
    request: Request,
    next: Next,
) -> Response {
    if node.is_draining() && opens_a_session(request.uri()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "1")],
            "unavailable: this node is shutting down\n",
        )
            .into_response();
    }
    next.run(request).await
}

fn opens_a_session(uri: &axum::http::Uri) -> bool {
    let on_socket_io = uri
        .path()
        .strip_prefix(SOCKET_IO_PATH.trim_end_matches('/'))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let has_sid = uri
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("sid=")));
    on_socket_io && !has_sid
}

/// How often the drain checks, between two batches, whether any socket is left.
const SOCKET_POLL: Duration = Duration::from_millis(100);

/// Closes the registry's connections in `settings.batches` batches spread over
/// `settings.window`, then every connection still open. `sockets_left` says how many Socket.IO
/// sockets the node still holds: once it is zero the rest is closed at once, without waiting
/// out the window. Returns how many connections the drain closed.
pub async fn drain(
    registry: &DrainRegistry,
    settings: DrainSettings,
    sockets_left: impl Fn() -> usize,
) -> usize {
    let batches = settings.batches.max(1) as usize;
    let interval = settings.interval();
    let mut closed = 0;
    for batch in 0..batches {
        if sockets_left() == 0 {
            break;
        }
        let open = registry.len();
        let left = batches - batch;
        let n = open.div_ceil(left);
        closed += registry.close_some(n);
        tracing::info!(
            batch = batch + 1,
            of = batches,
            closed = n,
            open = open - n.min(open),
            "drain: closed a batch of connections"
        );
        if batch + 1 < batches {
            // Wait for the next batch, but stop waiting as soon as the last socket is gone.
            let next = tokio::time::Instant::now() + interval;
            while tokio::time::Instant::now() < next && sockets_left() > 0 {
                tokio::time::sleep_until(next.min(tokio::time::Instant::now() + SOCKET_POLL)).await;
            }
        }
    }
    closed + registry.close_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(listener: &mut DrainListener) -> (TcpStream, DrainableStream) {
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let (client, (server, _)) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect to our own listener"), server)
    }

    async fn listener() -> (DrainListener, Arc<DrainRegistry>) {
        let tcp = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let registry = DrainRegistry::new();
        (DrainListener::new(tcp, registry.clone()), registry)
    }

    #[test]
    fn only_requests_that_open_a_session_are_refused() {
        let opens = |uri: &str| opens_a_session(&uri.parse().expect("test uri"));
        let base = SOCKET_IO_PATH.trim_end_matches('/');
        assert!(opens(&format!("{base}/?EIO=4&transport=websocket")));
        assert!(opens(&format!("{base}/?EIO=4&transport=polling&t=x")));
        assert!(!opens(&format!("{base}/?EIO=4&transport=polling&sid=abc")));
        assert!(!opens("/readyz"));
        assert!(!opens("/api/v1/publish"));
        assert!(!opens(&format!("{base}x/?EIO=4")));
    }

    #[tokio::test]
    async fn a_parked_read_fails_when_the_drain_closes_its_connection() {
        let (mut listener, registry) = listener().await;
        let (mut client, mut server) = pair(&mut listener).await;
        assert!(server.inner.nodelay().expect("nodelay readable"));
        assert_eq!(registry.len(), 1);

        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let first = server.read(&mut buf).await.map(|n| buf[..n].to_vec());
            let _ = first_tx.send(first);
            server.read(&mut buf).await.map_err(|e| e.kind())
        });
        client.write_all(b"ping").await.expect("write");
        let first = first_rx.await.expect("reader sends its first read");
        assert_eq!(first.expect("first read"), b"ping".to_vec());
        // The reader is now parked on an idle socket when the drain closes it.
        assert_eq!(registry.close_some(10), 1);
        let second = reader.await.expect("reader task");
        assert_eq!(second, Err(io::ErrorKind::ConnectionAborted));
        // The stream was dropped with the task: the registry is empty, the client sees EOF.
        assert!(registry.is_empty());
        let mut buf = [0u8; 4];
        assert_eq!(client.read(&mut buf).await.expect("client read"), 0);
    }

    #[tokio::test]
    async fn a_write_parked_on_a_full_socket_fails_when_the_drain_closes_it() {
        let (mut listener, registry) = listener().await;
        let (_client, mut server) = pair(&mut listener).await;
        let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(async move {
            // The client never reads: the socket buffers fill until a write would block.
            let chunk = vec![0u8; 64 * 1024];
            let would_block = Duration::from_millis(200);
            while let Ok(written) =
                tokio::time::timeout(would_block, server.write_all(&chunk)).await
            {
                if let Err(e) = written {
                    return e.kind();
                }
            }
            // On this single-threaded runtime the write below parks before the test goes on.
            let _ = blocked_tx.send(());
            match server.write_all(&chunk).await {
                Ok(()) => io::ErrorKind::Other,
                Err(e) => e.kind(),
            }
        });
        blocked_rx
            .await
            .expect("the writer blocks on a full socket");
        assert_eq!(registry.close_some(1), 1);
        // Without the wake-up the parked write would wait forever: bound it.
        let kind = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("the parked write is woken by the drain")
            .expect("writer task");
        assert_eq!(kind, io::ErrorKind::ConnectionAborted);
    }

    #[tokio::test]
    async fn connections_accepted_after_close_all_are_closed_at_once() {
        let (mut listener, registry) = listener().await;
        assert_eq!(registry.close_all(), 0);
        let (_client, mut server) = pair(&mut listener).await;
        let mut buf = [0u8; 4];
        let err = server.read(&mut buf).await.expect_err("closed stream");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(registry.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_spreads_connections_over_its_batches() {
        let (mut listener, registry) = listener().await;
        let mut streams = Vec::new();
        for _ in 0..10 {
            streams.push(pair(&mut listener).await);
        }
        let settings = DrainSettings {
            window: Duration::from_secs(4),
            batches: 4,
        };
        let started = tokio::time::Instant::now();
        let closed = drain(&registry, settings, || 1).await;
        assert_eq!(closed, 10);
        // Four batches, three pauses of a second between them.
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(registry.closed_by_drain(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn the_drain_stops_waiting_once_no_socket_is_left() {
        let (mut listener, registry) = listener().await;
        let _streams = [pair(&mut listener).await, pair(&mut listener).await];
        let settings = DrainSettings {
            window: Duration::from_secs(60),
            batches: 6,
        };
        let started = tokio::time::Instant::now();
        assert_eq!(drain(&registry, settings, || 0).await, 2);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
