//! The servers (feature `http-server`: `sft serve --http`; feature
//! `rtsp-server`: `sft serve --rtsp`) and what they share: the accept loop,
//! admission limits, connection counters, TLS handshakes with a deadline,
//! the content root and the handles that stop a server.
//!
//! Servers sit beside `crate::net`, not on it: they use the core, `io`
//! and `proto` tiers only.

#[cfg(feature = "http-server")]
pub mod handler;
#[cfg(feature = "http-server")]
pub mod http;
#[cfg(feature = "rtsp-server")]
pub mod rtsp;

use crate::Error;
use core::fmt;
use std::io;
use std::net::ToSocketAddrs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Decides whether a client may have a content path: the Management
/// Server's entitlement check, put in front of a server's content with
/// `serve::rtsp::ServerConfig::gate` (feature `rtsp-server`).
pub trait Gate: Send + Sync + 'static {
    /// `Ok(())` to serve `path` (the URL's path, still percent-encoded) to
    /// the client at `peer` that presented `authorization` (the
    /// `Authorization` header's value, if any) over TLS or not; else the
    /// status to answer: 401 (a challenge is added), 403, 404, 429, 500.
    fn check(
        &self,
        path: &str,
        authorization: Option<&[u8]>,
        peer: SocketAddr,
        tls: bool,
    ) -> Result<(), u16>;
}

/// A server's run state: the shutdown flag, the address that wakes its
/// accept loop, and its connection and session counters.
pub(crate) struct Lifecycle {
    shutdown: AtomicBool,
    wake_addr: SocketAddr,
    /// Connections being served.
    pub(crate) connections: AtomicUsize,
    /// Streaming sessions (RTSP); always 0 for HTTP.
    pub(crate) sessions: AtomicUsize,
}

impl Lifecycle {
    /// For a listener bound to `addr` (an unspecified address is woken
    /// through loopback).
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let wake_ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Lifecycle {
            shutdown: AtomicBool::new(false),
            wake_addr: SocketAddr::new(wake_ip, addr.port()),
            connections: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
        }
    }

    /// Whether a shutdown was requested.
    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Request a shutdown (idempotent) and wake the accept loop.
    fn stop(&self) {
        if !self.shutdown.swap(true, Ordering::AcqRel) {
            // The accept loop blocks in accept(2): a connection wakes it.
            let _ = TcpStream::connect_timeout(&self.wake_addr, Duration::from_secs(1));
        }
    }
}

/// Longest a handshake read blocks before the deadline and the shutdown
/// flag are looked at again.
const HANDSHAKE_SLICE: Duration = Duration::from_millis(250);

/// Complete a server-side TLS handshake by `deadline` (the servers' head
/// timeout counted from the accept), one bounded read at a time: a
/// client that sends nothing, or trickles a byte at a time, is cut off
/// at the deadline. (rustls' `complete_io`, which a first read on a
/// `StreamOwned` runs, keeps reading for as long as bytes come.)
///
/// # Errors
/// The deadline passed or a shutdown was requested (`TimedOut`), the
/// peer closed (`UnexpectedEof`), TLS failed (`InvalidData`, after the
/// alert is sent), or the socket failed.
pub(crate) fn tls_handshake(
    tls: &mut rustls::StreamOwned<rustls::ServerConnection, TcpStream>,
    deadline: Instant,
    life: &Lifecycle,
) -> io::Result<()> {
    let previous = tls.sock.read_timeout()?;
    let result = handshake_until(&mut tls.conn, &mut tls.sock, deadline, life);
    let _ = tls.sock.set_read_timeout(previous);
    result
}

fn handshake_until(
    conn: &mut rustls::ServerConnection,
    sock: &mut TcpStream,
    deadline: Instant,
    life: &Lifecycle,
) -> io::Result<()> {
    loop {
        while conn.wants_write() {
            conn.write_tls(sock)?;
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline || life.stopping() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake not complete within the head timeout",
            ));
        }
        sock.set_read_timeout(Some((deadline - now).min(HANDSHAKE_SLICE)))?;
        match conn.read_tls(sock) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // Best effort: the alert rustls queued.
                    while conn.wants_write() && conn.write_tls(sock).is_ok() {}
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Decrements a counter when dropped.
pub(crate) struct CountGuard<'a>(pub(crate) &'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A server's content root, canonical; it must be a directory.
pub(crate) fn content_root(root: &Path) -> Result<PathBuf, Error> {
    let canonical = root
        .canonicalize()
        .map_err(|e| Error::io(format!("opening content directory `{}`", root.display()), e))?;
    if !canonical.is_dir() {
        return Err(Error::invalid(format!(
            "content root `{}` is not a directory",
            root.display()
        )));
    }
    Ok(canonical)
}

/// Bind a listener; `what` names it in errors ("the RTSP listener").
pub(crate) fn bind(
    addr: impl ToSocketAddrs,
    what: &str,
) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr).map_err(|e| Error::io(format!("binding {what}"), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io(format!("reading the address of {what}"), e))?;
    Ok((listener, local))
}

/// Accept connections and hand each to `admit` until a shutdown is
/// requested; then close the listener and wait (at most `grace`) for
/// the connections to end.
pub(crate) fn accept_loop(
    listener: TcpListener,
    life: &Lifecycle,
    grace: Duration,
    mut admit: impl FnMut(TcpStream, SocketAddr),
) {
    while !life.stopping() {
        match listener.accept() {
            Ok((stream, peer)) => {
                if life.stopping() {
                    break;
                }
                admit(stream, peer);
            }
            Err(e) => match e.kind() {
                io::ErrorKind::Interrupted
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::WouldBlock => {}
                // Out of file descriptors or memory: back off.
                _ => std::thread::sleep(Duration::from_millis(50)),
            },
        }
    }
    drop(listener);
    let deadline = Instant::now() + grace;
    while life.connections.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Serve an accepted connection on a thread of its own, counted in
/// `life.connections` while it runs; over `max_connections` (or if no
/// thread can be started) it goes to `reject` instead.
pub(crate) fn admit(
    life: &Arc<Lifecycle>,
    max_connections: usize,
    thread: std::thread::Builder,
    stream: TcpStream,
    reject: impl FnOnce(TcpStream),
    serve: impl FnOnce(TcpStream) + Send + 'static,
) {
    let before = life.connections.fetch_add(1, Ordering::AcqRel);
    if before >= max_connections {
        life.connections.fetch_sub(1, Ordering::AcqRel);
        reject(stream);
        return;
    }
    let counted = Arc::clone(life);
    let spawned = thread.spawn(move || {
        let _guard = CountGuard(&counted.connections);
        serve(stream);
    });
    if spawned.is_err() {
        // The closure never ran: no guard to decrement.
        life.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `run` (a server's accept loop) on a thread named `thread_name`.
pub(crate) fn spawn(
    what: &'static str,
    thread_name: &str,
    addr: SocketAddr,
    stop: ShutdownHandle,
    run: impl FnOnce() -> Result<(), Error> + Send + 'static,
) -> Result<ServerHandle, Error> {
    let thread = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(run)
        .map_err(|e| Error::io(format!("starting the {what} thread"), e))?;
    Ok(ServerHandle {
        addr,
        what,
        stop,
        thread: Some(thread),
    })
}

/// Stops a server: the listener closes, requests in flight finish.
/// Cheap to clone, usable from any thread.
///
/// ```
/// # #[cfg(feature = "http-server")] {
/// # use sft::serve::http::{Server, ServerConfig};
/// # let dir = tempfile::tempdir()?;
/// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
/// let stop = server.shutdown_handle();
/// assert!(!stop.is_shutdown());
/// stop.shutdown();
/// assert!(stop.is_shutdown());
/// # }
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    life: Arc<Lifecycle>,
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}

impl ShutdownHandle {
    pub(crate) fn new(life: Arc<Lifecycle>) -> Self {
        ShutdownHandle { life }
    }

    /// Request a shutdown (idempotent) and wake the accept loop.
    ///
    /// ```
    /// # #[cfg(feature = "rtsp-server")] {
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// let stop = server.shutdown_handle();
    /// stop.shutdown();
    /// stop.shutdown(); // again: no effect
    /// server.join()?;
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.life.stop();
    }

    /// Whether a shutdown was requested.
    ///
    /// ```
    /// # #[cfg(feature = "http-server")] {
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// assert!(!server.shutdown_handle().is_shutdown());
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.life.stopping()
    }

    /// Connections being served right now.
    ///
    /// ```
    /// # #[cfg(feature = "http-server")] {
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// assert_eq!(server.shutdown_handle().active_connections(), 0);
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn active_connections(&self) -> usize {
        self.life.connections.load(Ordering::Acquire)
    }

    /// Streaming sessions open right now (RTSP `SETUP` without
    /// `TEARDOWN` or timeout); always 0 for the HTTP server.
    ///
    /// ```
    /// # #[cfg(feature = "rtsp-server")] {
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// assert_eq!(server.shutdown_handle().active_sessions(), 0);
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn active_sessions(&self) -> usize {
        self.life.sessions.load(Ordering::Acquire)
    }
}

/// A server running on its own thread (`Server::spawn` of either
/// server). Dropping it shuts the server down and waits for it.
///
/// ```
/// # #[cfg(feature = "http-server")] {
/// # use sft::serve::http::{Server, ServerConfig};
/// # let dir = tempfile::tempdir()?;
/// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
/// let addr = handle.local_addr();
/// let stop = handle.shutdown_handle();
/// stop.shutdown();
/// handle.join()?;
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// # }
/// # Ok::<(), sft::Error>(())
/// ```
pub struct ServerHandle {
    addr: SocketAddr,
    what: &'static str,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("what", &self.what)
            .field("addr", &self.addr)
            .finish()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    ///
    /// ```
    /// # #[cfg(feature = "http-server")] {
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// assert!(std::net::TcpStream::connect(handle.local_addr()).is_ok());
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to request the shutdown from elsewhere.
    ///
    /// ```
    /// # #[cfg(feature = "rtsp-server")] {
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// let stop = handle.shutdown_handle();
    /// std::thread::spawn(move || stop.shutdown());
    /// handle.join()?;
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// Whether the server thread has ended.
    ///
    /// ```
    /// # #[cfg(feature = "http-server")] {
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// assert!(!handle.is_finished());
    /// handle.shutdown()?;
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Shut down and wait: the listener closes at once, connections in
    /// flight get up to the shutdown grace to finish.
    ///
    /// # Errors
    /// The server thread panicked.
    ///
    /// ```
    /// # #[cfg(feature = "rtsp-server")] {
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// let addr = handle.local_addr();
    /// handle.shutdown()?;
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop.shutdown();
        self.wait()
    }

    /// Wait for the server to end (after a shutdown requested
    /// elsewhere).
    ///
    /// # Errors
    /// The server thread panicked.
    ///
    /// ```
    /// # #[cfg(feature = "http-server")] {
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// handle.shutdown_handle().shutdown();
    /// handle.join()?;
    /// # }
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn join(mut self) -> Result<(), Error> {
        self.wait()
    }

    fn wait(&mut self) -> Result<(), Error> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(Error::io(
                    format!("{} thread", self.what),
                    io::Error::other("the accept loop panicked"),
                ))
            }),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop.shutdown();
            let _ = self.wait();
        }
    }
}

/// Bytes per `sendfile(2)` call (nginx's `sendfile_max_chunk`).
#[cfg(target_os = "linux")]
const SENDFILE_CHUNK: usize = 2 << 20;

/// `sendfile(2)` all of `range` of `file` to the plain socket `sock`: the
/// kernel sends straight from the page cache, with no copy through user
/// space. Counts what went out in `sent`.
#[cfg(target_os = "linux")]
pub(crate) fn sendfile_all(
    sock: &TcpStream,
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    sent: &mut u64,
) -> io::Result<()> {
    let mut at = range.start;
    while at < range.end {
        let chunk = usize::try_from(range.end - at)
            .unwrap_or(usize::MAX)
            .min(SENDFILE_CHUNK);
        let n = match rustix::fs::sendfile(sock, file, Some(&mut at), chunk) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while being sent",
            ));
        }
        *sent += n as u64;
    }
    Ok(())
}

/// Write all of `head` to the plain socket `sock` with `MSG_MORE`: the
/// kernel holds it back to go out in one segment with what follows (a
/// [`sendfile_all`] of the body), instead of a small segment of its own.
#[cfg(all(target_os = "linux", feature = "rtsp-server"))]
pub(crate) fn send_more(sock: &TcpStream, mut head: &[u8]) -> io::Result<()> {
    while !head.is_empty() {
        match rustix::net::send(sock, head, rustix::net::SendFlags::MORE) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => head = head.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(())
}
