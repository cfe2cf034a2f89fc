//! The built-in HTTP/HTTPS content server (`sft serve --http`): the "IIS"
//! streaming method of App-V 4.x, for packages and their side files.
//!
//! It serves the regular files under one directory, read-only:
//!
//! - `GET` and `HEAD`; `Range` with one range (206 and `Content-Range`),
//!   several (206 `multipart/byteranges`) or none satisfiable (416 with
//!   `Content-Range: bytes */len`), as decided by [`crate::proto::http_range`];
//!   `Accept-Ranges: bytes`;
//! - a strong `ETag` (inode, length, modification time in nanoseconds) and
//!   `Last-Modified`; `If-Range` (an entity tag or a date: on a mismatch the
//!   whole file is sent with 200), `If-None-Match` / `If-Modified-Since`
//!   (304), `If-Match` / `If-Unmodified-Since` (412);
//! - content types: `.sft` `application/octet-stream`, `.osd` and `.xml`
//!   `text/xml`, `.ico` `image/x-icon`, anything else
//!   `application/octet-stream`;
//! - path safety: the percent-decoded path may not contain `..`, NUL or
//!   `\`; the file is resolved with `canonicalize` and must lie under the
//!   canonical content root, so symbolic links cannot lead out of it;
//!   directories are never listed (403);
//! - bounds: concurrent connections (over the limit: 503 and close), request
//!   head size (431), header count (431), time to receive a request head
//!   (408), keep-alive idle time, write stalls; one thread per connection,
//!   so a stalled client holds only its own thread;
//! - HTTP/1.1 keep-alive and pipelining, `Connection: close`, HTTP/1.0;
//!   request bodies (which `GET` and `HEAD` do not use) of up to 64 KiB are
//!   read and dropped, larger ones get 413, `Transfer-Encoding` gets 400;
//! - bodies go out through a per-connection buffer of up to 256 KiB
//!   (`pread`, then one large socket or TLS write per chunk), with
//!   `TCP_NODELAY`; TLS is rustls with the `ring` provider;
//! - an access log in common log format plus the duration in seconds; it
//!   names the method, path and status, never a header or a query string
//!   (presigned URLs carry credentials in their queries);
//! - graceful shutdown: [`ShutdownHandle::shutdown`] stops the listener,
//!   lets requests in flight finish and waits for them up to
//!   [`ServerConfig::shutdown_grace`].
//!
//! ```
//! use sft::serve::http::{Server, ServerConfig};
//! use std::io::{Read, Write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("app.osd"), b"<SOFTPKG/>")?;
//! let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
//!
//! let mut s = std::net::TcpStream::connect(server.local_addr())?;
//! s.write_all(b"GET /app.osd HTTP/1.1\r\nHost: x\r\nRange: bytes=1-7\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! s.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 206 Partial Content\r\n"));
//! assert!(answer.contains("\r\nContent-Range: bytes 1-7/10\r\n"));
//! assert!(answer.contains("\r\nContent-Type: text/xml\r\n"));
//! assert!(answer.ends_with("\r\n\r\nSOFTPKG"));
//! server.shutdown()?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::proto::http_range::{self as range, ContentRangeValue, RangeLimits, Resolution};
use crate::serve::handler::{Handler, Request, Response};
use crate::serve::{self, Lifecycle};
pub use crate::serve::{ServerHandle, ShutdownHandle};

/// The most header fields [`ServerConfig::max_headers`] may allow.
///
/// ```
/// use sft::serve::http::{MAX_HEADERS_LIMIT, ServerConfig};
///
/// let c = ServerConfig::new(".").max_headers(MAX_HEADERS_LIMIT);
/// # let _ = c;
/// ```
pub const MAX_HEADERS_LIMIT: usize = 256;

/// Request bodies up to this size are read and dropped; larger ones get 413.
const MAX_DISCARD_BODY: u64 = 64 * 1024;
/// How often a blocked read wakes up to look at the shutdown flag.
const POLL_SLICE: Duration = Duration::from_millis(500);
/// The largest body buffer of a connection.
const COPY_BUF: usize = 256 * 1024;

/// Where access-log lines go: any writer, shared by all connections; one
/// `write_all` per line.
///
/// ```
/// use sft::serve::http::AccessLog;
///
/// let log = AccessLog::new(std::io::sink());
/// let to_stderr = AccessLog::stderr();
/// # let _ = (log, to_stderr);
/// ```
#[derive(Clone)]
pub struct AccessLog(Arc<Mutex<Box<dyn Write + Send>>>);

impl AccessLog {
    /// Log to `w`.
    ///
    /// ```
    /// use sft::serve::http::{AccessLog, ServerConfig};
    ///
    /// let c = ServerConfig::new(".").access_log(AccessLog::new(Vec::new()));
    /// # let _ = c;
    /// ```
    pub fn new(w: impl Write + Send + 'static) -> Self {
        AccessLog(Arc::new(Mutex::new(Box::new(w))))
    }

    /// Log to standard error.
    ///
    /// ```
    /// use sft::serve::http::{AccessLog, ServerConfig};
    ///
    /// let c = ServerConfig::new(".").access_log(AccessLog::stderr());
    /// # let _ = c;
    /// ```
    pub fn stderr() -> Self {
        AccessLog::new(io::stderr())
    }

    /// Append to the file at `path`, creating it if needed.
    ///
    /// ```
    /// use sft::serve::http::AccessLog;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = AccessLog::file(&dir.path().join("access.log"))?;
    /// # let _ = log;
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn file(path: &Path) -> Result<Self, Error> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening access log `{}`", path.display()), e))?;
        Ok(AccessLog::new(f))
    }

    fn write_line(&self, line: &str) {
        // A poisoned lock only means another thread panicked mid-line.
        let mut w = match self.0.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        let _ = w.write_all(line.as_bytes());
        let _ = w.flush();
    }
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessLog")
    }
}

/// What the server serves and its limits. By-value setters.
///
/// ```
/// use sft::serve::http::ServerConfig;
/// use std::time::Duration;
///
/// let config = ServerConfig::new("/srv/packages")
///     .max_connections(64)
///     .idle_timeout(Duration::from_secs(10));
/// assert_eq!(config.get_max_connections(), 64);
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    root: PathBuf,
    max_connections: usize,
    max_header_bytes: usize,
    max_headers: usize,
    max_ranges: usize,
    header_timeout: Duration,
    idle_timeout: Duration,
    write_timeout: Duration,
    shutdown_grace: Duration,
    tls: Option<Arc<rustls::ServerConfig>>,
    access_log: Option<AccessLog>,
    handler: Option<Arc<dyn Handler>>,
    max_body: usize,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("root", &self.root)
            .field("max_connections", &self.max_connections)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("max_ranges", &self.max_ranges)
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls.is_some())
            .field("access_log", &self.access_log.is_some())
            .field("handler", &self.handler.is_some())
            .field("max_body", &self.max_body)
            .finish()
    }
}

impl ServerConfig {
    /// Serve the files under `root`, plain HTTP, no access log, with the
    /// default limits: 256 connections, 16 KiB request heads of at most 100
    /// fields, 32 ranges per request, 10 s to send a request head, 30 s
    /// keep-alive idle time, 30 s write stalls, 10 s shutdown grace.
    ///
    /// ```
    /// use sft::serve::http::ServerConfig;
    ///
    /// assert_eq!(ServerConfig::new("content").get_max_connections(), 256);
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ServerConfig {
            root: root.into(),
            max_connections: 256,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_ranges: range::DEFAULT_MAX_RANGES,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            access_log: None,
            handler: None,
            max_body: 1024 * 1024,
        }
    }

    /// At most `n` connections at once (at least 1); others get 503
    /// (plain HTTP) or are closed (HTTPS).
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// assert_eq!(ServerConfig::new(".").max_connections(8).get_max_connections(), 8);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The connection limit.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// assert_eq!(ServerConfig::new(".").max_connections(0).get_max_connections(), 1);
    /// ```
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// The largest request head in bytes (request line and headers; at
    /// least 1 KiB); larger ones get 431.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").max_header_bytes(8192);
    /// ```
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n.max(1024);
        self
    }

    /// The most header fields in a request (1 to [`MAX_HEADERS_LIMIT`]);
    /// more get 431.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").max_headers(32);
    /// ```
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n.clamp(1, MAX_HEADERS_LIMIT);
        self
    }

    /// The most ranges in one `Range` header (at least 1); a header with
    /// more is ignored and the whole file is sent, as nginx does.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").max_ranges(8);
    /// ```
    pub fn max_ranges(mut self, n: usize) -> Self {
        self.max_ranges = n.max(1);
        self
    }

    /// Time a client has to send a whole request head, counted from its
    /// first byte (and, on a new connection, from the accept).
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").header_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn header_timeout(mut self, t: Duration) -> Self {
        self.header_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long a kept-alive connection may wait for its next request.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").idle_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long one write may stall (a client that stops reading).
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").write_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long a shutdown waits for requests in flight.
    ///
    /// ```
    /// # use sft::serve::http::ServerConfig;
    /// let c = ServerConfig::new(".").shutdown_grace(std::time::Duration::from_secs(2));
    /// ```
    pub fn shutdown_grace(mut self, t: Duration) -> Self {
        self.shutdown_grace = t;
        self
    }

    /// Serve HTTPS with this rustls configuration (see
    /// [`tls_config_from_pem`]).
    ///
    /// ```no_run
    /// use sft::serve::http::{ServerConfig, tls_config_from_pem};
    /// use std::path::Path;
    ///
    /// let tls = tls_config_from_pem(Path::new("cert.pem"), Path::new("key.pem"))?;
    /// let c = ServerConfig::new("content").tls(tls);
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Write one access-log line per request to `log`.
    ///
    /// ```
    /// # use sft::serve::http::{AccessLog, ServerConfig};
    /// let c = ServerConfig::new(".").access_log(AccessLog::stderr());
    /// ```
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// Put `handler` in front of the file server: it sees every request
    /// first, with its body read (at most [`ServerConfig::max_body`]
    /// bytes; larger bodies get 413), and answers it or leaves it to the
    /// file server. See [`crate::serve::handler`].
    pub fn handler(mut self, handler: Arc<dyn Handler>) -> Self {
        self.handler = Some(handler);
        self
    }

    /// The largest request body read for a [`Handler`] (default 1 MiB).
    pub fn max_body(mut self, n: usize) -> Self {
        self.max_body = n;
        self
    }
}

/// A rustls server configuration from PEM files: a certificate chain
/// (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1). Uses the
/// `ring` provider, TLS 1.2 and 1.3, ALPN `http/1.1`.
///
/// ```
/// use sft::serve::http::tls_config_from_pem;
/// use std::path::Path;
///
/// let err = tls_config_from_pem(Path::new("/nonexistent/cert.pem"), Path::new("/nonexistent/key.pem"));
/// assert!(err.is_err());
/// ```
pub fn tls_config_from_pem(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls_pki_types::pem::{self, PemObject};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let pem_err = |path: &Path, what: &str, e: pem::Error| match e {
        pem::Error::Io(io) => Error::io(format!("reading {what} `{}`", path.display()), io),
        other => Error::invalid(format!("{what} `{}`: {other}", path.display())),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, "certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, "certificate", e))?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "certificate `{}`: no certificate found",
            cert.display()
        )));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, "private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            Error::invalid(format!(
                "certificate `{}` with key `{}`: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// State shared by the accept loop, the connections and the handles.
struct Shared {
    config: ServerConfig,
    /// Canonical content root.
    root: PathBuf,
    life: Arc<Lifecycle>,
    boundary_seq: AtomicU64,
    random: RandomState,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.life.stopping()
    }
}

/// A bound, not yet running server.
///
/// ```
/// use sft::serve::http::{Server, ServerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
/// assert!(server.local_addr().port() != 0);
/// let stop = server.shutdown_handle();
/// let thread = std::thread::spawn(move || server.run());
/// stop.shutdown();
/// thread.join().unwrap()?;
/// # Ok::<(), sft::Error>(())
/// ```
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Server {
    /// Check the content root (it must be a directory) and bind `addr`
    /// (port 0 picks a free port; see [`Server::local_addr`]).
    ///
    /// ```
    /// use sft::serve::http::{Server, ServerConfig};
    ///
    /// let missing = Server::bind("127.0.0.1:0", ServerConfig::new("/nonexistent/dir"));
    /// assert!(missing.is_err());
    /// ```
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> Result<Server, Error> {
        let root = serve::content_root(&config.root)?;
        let (listener, addr) = serve::bind(addr, "the HTTP listener")?;
        Ok(Server {
            listener,
            addr,
            shared: Arc::new(Shared {
                config,
                root,
                life: Arc::new(Lifecycle::new(addr)),
                boundary_seq: AtomicU64::new(0),
                random: RandomState::new(),
            }),
        })
    }

    /// The address actually bound.
    ///
    /// ```
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// assert!(server.local_addr().ip().is_loopback());
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops [`Server::run`] from any thread.
    ///
    /// ```
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// let handle = server.shutdown_handle();
    /// handle.shutdown();
    /// server.run()?; // returns at once: shutdown was requested
    /// assert!(handle.is_shutdown());
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(Arc::clone(&self.shared.life))
    }

    /// Accept and serve connections on this thread until a shutdown is
    /// requested, then wait for connections in flight (at most the
    /// shutdown grace) and return.
    ///
    /// ```
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// let stop = server.shutdown_handle();
    /// std::thread::spawn(move || { std::thread::sleep(std::time::Duration::from_millis(50)); stop.shutdown() });
    /// server.run()?;
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn run(self) -> Result<(), Error> {
        let shared = self.shared;
        let grace = shared.config.shutdown_grace;
        serve::accept_loop(self.listener, &shared.life, grace, |stream, peer| {
            admit(&shared, stream, peer);
        });
        Ok(())
    }

    /// Run the server on a thread of its own.
    ///
    /// ```
    /// # use sft::serve::http::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// println!("listening on http://{}", handle.local_addr());
    /// handle.shutdown()?;
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn spawn(self) -> Result<ServerHandle, Error> {
        let (addr, stop) = (self.addr, self.shutdown_handle());
        serve::spawn("HTTP server", "sft-http-accept", addr, stop, move || {
            self.run()
        })
    }
}

use crate::io::pos::read_at;

/// Decrements the active count when a connection ends.
fn admit(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let plain = shared.config.tls.is_none();
    let conn_shared = Arc::clone(shared);
    serve::admit(
        &shared.life,
        shared.config.max_connections,
        std::thread::Builder::new().name("sft-http-conn".into()),
        stream,
        |stream| {
            if plain {
                reject_busy(stream);
            }
        },
        move |stream| serve_connection(&conn_shared, stream, peer),
    );
}

/// Over the connection limit: a 503 written without ever blocking the
/// accept loop, then close.
fn reject_busy(stream: TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    // Drain what the client already sent, so closing does not reset the
    // connection before it reads the answer.
    for _ in 0..4 {
        match (&stream).read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    let _ = (&stream).write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 24\r\n\
          Retry-After: 1\r\nConnection: close\r\n\r\n503 Service Unavailable\n",
    );
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// A connection, plain or TLS.
type Conn = crate::io::conn::Conn<rustls::ServerConnection>;

/// The connection's input buffer: bytes `..len` are received, not yet
/// consumed.
struct InBuf {
    data: Box<[u8]>,
    len: usize,
}

impl InBuf {
    fn filled(&self) -> &[u8] {
        self.data.get(..self.len).unwrap_or_default()
    }

    /// Drop the first `n` bytes (a finished request), keeping what follows
    /// (a pipelined one).
    fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.data.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// Per-connection I/O state that outlives one request.
struct Io {
    conn: Conn,
    read_timeout: Option<Duration>,
    /// Response head scratch.
    head: Vec<u8>,
    /// Body buffer for TLS (allocated on first use).
    copy_buf: Vec<u8>,
    /// Body bytes sent for the current request.
    sent: u64,
}

impl Io {
    fn set_read_timeout(&mut self, t: Duration) {
        if self.read_timeout != Some(t) {
            let _ = self.conn.tcp().set_read_timeout(Some(t));
            self.read_timeout = Some(t);
        }
    }

    fn write_head(&mut self) -> io::Result<()> {
        self.conn.write_all(&self.head)?;
        if let Conn::Tls(_) = self.conn {
            // Nothing is buffered on the plain socket; rustls sends as it
            // goes, flush pushes what is left.
            self.conn.flush()?;
        }
        Ok(())
    }

    /// Send bytes `range` of `file`.
    ///
    /// On a plain socket on Linux, with `sendfile(2)` (through rustix): the
    /// kernel sends straight from the page cache, as nginx does. Over TLS
    /// (and elsewhere), through a buffer of up to [`COPY_BUF`] bytes, reused
    /// for the whole connection: one `pread` and one large write per chunk.
    /// (The standard library does not turn `io::copy` from a file into a
    /// socket into `sendfile`.)
    fn send_file(&mut self, file: &File, range: Range<u64>) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Conn::Plain(sock) = &self.conn {
            // Full segments while the body goes out (nginx's tcp_nopush);
            // uncorking at the end pushes the last partial one.
            let _ = rustix::net::sockopt::set_tcp_cork(sock, true);
            let result = serve::sendfile_all(sock, file, range, &mut self.sent);
            let _ = rustix::net::sockopt::set_tcp_cork(sock, false);
            return result;
        }
        let want = range.end.saturating_sub(range.start);
        let size = usize::try_from(want).unwrap_or(usize::MAX).min(COPY_BUF);
        if self.copy_buf.len() < size {
            self.copy_buf.resize(size, 0);
        }
        let mut at = range.start;
        while at < range.end {
            let chunk = usize::try_from(range.end - at)
                .unwrap_or(usize::MAX)
                .min(self.copy_buf.len());
            let buf = self.copy_buf.get_mut(..chunk).unwrap_or_default();
            let n = read_at(file, buf, at)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file shrank while being sent",
                ));
            }
            self.conn.write_all(buf.get(..n).unwrap_or_default())?;
            self.sent += n as u64;
            at += n as u64;
        }
        if let Conn::Tls(tls) = &mut self.conn {
            tls.flush()?;
        }
        Ok(())
    }

    /// Send a small in-memory body.
    fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.write_all(bytes)?;
        self.sent += bytes.len() as u64;
        Ok(())
    }
}

enum Head {
    /// A complete head of this many bytes is at the start of the buffer.
    Ready(usize),
    /// The peer closed, the connection failed, or it stayed idle too long,
    /// or the server is stopping: close quietly.
    Close,
    /// Part of a head arrived, then nothing within the head timeout.
    TimedOut,
    /// The head does not fit in the buffer.
    TooLarge,
}

/// Position just past the blank line ending a head in `buf`, looking from
/// `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = buf
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let nl = i + off;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Read a request head; `idle_deadline` is when a connection that has sent
/// nothing of it is closed (the first head: the head timeout from the
/// accept; later ones: the keep-alive idle timeout).
fn read_head(shared: &Shared, io: &mut Io, inb: &mut InBuf, idle_deadline: Instant) -> Head {
    let cfg = &shared.config;
    let mut scanned = 0;
    let mut head_deadline = None;
    loop {
        // Empty lines before a request line are ignored (RFC 9112 §2.2).
        let blank = inb
            .filled()
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if blank > 0 {
            inb.consume(blank);
            scanned = 0;
        }
        if inb.len > 0 {
            if let Some(end) = head_end(inb.filled(), scanned) {
                return Head::Ready(end);
            }
            scanned = inb.len.saturating_sub(2);
            if inb.len >= cfg.max_header_bytes || inb.len >= inb.data.len() {
                return Head::TooLarge;
            }
            if head_deadline.is_none() {
                head_deadline = Some(Instant::now() + cfg.header_timeout);
            }
        }
        let deadline = head_deadline.unwrap_or(idle_deadline);
        let now = Instant::now();
        if now >= deadline {
            return if inb.len > 0 {
                Head::TimedOut
            } else {
                Head::Close
            };
        }
        if inb.len == 0 && shared.stopping() {
            return Head::Close;
        }
        io.set_read_timeout((deadline - now).min(POLL_SLICE));
        let spare = inb
            .data
            .get_mut(inb.len..cfg.max_header_bytes.min(inb.data.len()))
            .unwrap_or_default();
        match io.conn.read(spare) {
            Ok(0) => return Head::Close,
            Ok(n) => inb.len += n,
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => {}
                _ => return Head::Close,
            },
        }
    }
}

fn serve_connection(shared: &Shared, tcp: TcpStream, peer: SocketAddr) {
    let cfg = &shared.config;
    let accepted = Instant::now();
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(cfg.write_timeout));
    let conn = match &cfg.tls {
        None => Conn::Plain(tcp),
        Some(tls) => match rustls::ServerConnection::new(Arc::clone(tls)) {
            Ok(c) => {
                let mut s = Box::new(rustls::StreamOwned::new(c, tcp));
                // The handshake counts against the first head's timeout.
                if serve::tls_handshake(&mut s, accepted + cfg.header_timeout, &shared.life)
                    .is_err()
                {
                    // No response of ours to protect: close at once.
                    let _ = s.sock.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Conn::Tls(s)
            }
            Err(_) => return,
        },
    };
    let mut io = Io {
        conn,
        read_timeout: None,
        head: Vec::with_capacity(1024),
        copy_buf: Vec::new(),
        sent: 0,
    };
    let mut inb = InBuf {
        data: vec![0u8; cfg.max_header_bytes].into_boxed_slice(),
        len: 0,
    };
    let mut log_line = String::new();
    let mut first = true;
    loop {
        let idle_deadline = if first {
            accepted + cfg.header_timeout
        } else {
            Instant::now() + cfg.idle_timeout
        };
        let head_len = match read_head(shared, &mut io, &mut inb, idle_deadline) {
            Head::Ready(n) => n,
            Head::Close => break,
            Head::TimedOut => {
                let started = Instant::now();
                let r = simple_response(&mut io, 408, false, false, "", false);
                log_access(shared, &mut log_line, peer, None, 408, io.sent, started);
                let _ = r;
                break;
            }
            Head::TooLarge => {
                let started = Instant::now();
                let r = simple_response(&mut io, 431, false, false, "", false);
                log_access(shared, &mut log_line, peer, None, 431, io.sent, started);
                let _ = r;
                break;
            }
        };
        first = false;
        let started = Instant::now();
        io.sent = 0;
        let (outcome, consumed) = handle_request(shared, &mut io, &inb, head_len, peer);
        log_access(
            shared,
            &mut log_line,
            peer,
            outcome
                .line
                .as_ref()
                .map(|(m, p, v)| (m.as_str(), p.as_str(), *v)),
            outcome.status,
            io.sent,
            started,
        );
        if !outcome.keep_alive || shared.stopping() {
            break;
        }
        inb.consume(consumed);
    }
    if let Conn::Tls(tls) = &mut io.conn {
        tls.conn.send_close_notify();
        let _ = tls.conn.complete_io(&mut tls.sock);
    }
    lingering_close(io.conn.tcp());
}

/// Longest a closing connection's input is read and dropped.
const LINGER_MAX: Duration = Duration::from_secs(1);

/// Close the sending side, then read and drop what the client still sends
/// (briefly), so that closing with unread input does not reset the
/// connection and destroy the last response before the client reads it.
fn lingering_close(tcp: &TcpStream) {
    let _ = tcp.shutdown(std::net::Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut budget: usize = 64 * 1024;
    // Bounded in time too: a client trickling a byte at a time must not
    // hold the connection for 64 KiB of trickle.
    let deadline = Instant::now() + LINGER_MAX;
    while budget > 0 && Instant::now() < deadline {
        match (&*tcp).read(&mut sink) {
            Ok(n) if n > 0 => budget = budget.saturating_sub(n),
            _ => break,
        }
    }
}

/// What happened to one request, for the loop and the log.
struct Outcome {
    status: u16,
    keep_alive: bool,
    /// Method, path (no query) and minor HTTP version, for the log.
    line: Option<(String, String, u8)>,
}

/// The request fields the server looks at.
#[derive(Default)]
struct Fields<'a> {
    hosts: usize,
    range: Option<&'a [u8]>,
    ranges: usize,
    if_range: Option<&'a [u8]>,
    if_match: Option<&'a [u8]>,
    if_none_match: Option<&'a [u8]>,
    if_modified_since: Option<&'a [u8]>,
    if_unmodified_since: Option<&'a [u8]>,
    close: bool,
    keep_alive: bool,
    content_length: Option<u64>,
    bad_length: bool,
    transfer_encoding: bool,
}

fn collect_fields<'a>(headers: &[httparse::Header<'a>]) -> Fields<'a> {
    let mut f = Fields::default();
    for h in headers {
        let name = h.name;
        let v = h.value;
        if name.eq_ignore_ascii_case("host") {
            f.hosts += 1;
        } else if name.eq_ignore_ascii_case("range") {
            f.range = Some(v);
            f.ranges += 1;
        } else if name.eq_ignore_ascii_case("if-range") {
            f.if_range = Some(v);
        } else if name.eq_ignore_ascii_case("if-match") {
            f.if_match = Some(v);
        } else if name.eq_ignore_ascii_case("if-none-match") {
            f.if_none_match = Some(v);
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            f.if_modified_since = Some(v);
        } else if name.eq_ignore_ascii_case("if-unmodified-since") {
            f.if_unmodified_since = Some(v);
        } else if name.eq_ignore_ascii_case("connection") {
            for token in v.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    f.close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    f.keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match parse_u64(v.trim_ascii()) {
                Some(n) if f.content_length.is_none_or(|m| m == n) => f.content_length = Some(n),
                _ => f.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            f.transfer_encoding = true;
        }
    }
    f
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Parse and answer the request whose head is `inb[..head_len]`. Returns
/// the outcome and how many buffered bytes it used (head and body).
fn handle_request(
    shared: &Shared,
    io: &mut Io,
    inb: &InBuf,
    head_len: usize,
    peer: SocketAddr,
) -> (Outcome, usize) {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS_LIMIT];
    let slots = shared.config.max_headers.min(MAX_HEADERS_LIMIT);
    let headers = storage.get_mut(..slots).unwrap_or_default();
    let mut req = httparse::Request::new(headers);
    let buf = inb.filled();
    let fail = |io: &mut Io, status: u16| {
        let _ = simple_response(io, status, false, false, "", false);
        (
            Outcome {
                status,
                keep_alive: false,
                line: None,
            },
            head_len,
        )
    };
    let parsed_len = match req.parse(buf.get(..head_len).unwrap_or_default()) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return fail(io, 400),
        Err(httparse::Error::TooManyHeaders) => return fail(io, 431),
        Err(_) => return fail(io, 400),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return fail(io, 400);
    };
    let fields = collect_fields(req.headers);
    let path_only = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let line = Some((method.to_owned(), path_only, version));
    let mut keep_alive = if version >= 1 {
        !fields.close
    } else {
        fields.keep_alive && !fields.close
    };
    let http10 = version == 0;
    let done = |status: u16, keep_alive: bool, consumed: usize| {
        (
            Outcome {
                status,
                keep_alive,
                line: line.clone(),
            },
            consumed,
        )
    };

    let body_len = fields.content_length.unwrap_or(0);
    let is_get = method == "GET";
    let is_head = method == "HEAD";

    // Message framing first: a body we cannot delimit ends the connection.
    if fields.transfer_encoding || fields.bad_length || (version >= 1 && fields.hosts != 1) {
        let _ = simple_response(io, 400, false, http10, "", is_head);
        return done(400, false, parsed_len);
    }
    let buffered = (inb.len - parsed_len) as u64;
    let from_buf = body_len.min(buffered);
    let consumed = parsed_len + from_buf as usize;
    let mut body_read = false;
    if let Some(handler) = &shared.config.handler {
        if body_len > shared.config.max_body as u64 {
            let _ = simple_response(io, 413, false, http10, "", is_head);
            return done(413, false, parsed_len);
        }
        let mut body = inb
            .filled()
            .get(parsed_len..consumed)
            .unwrap_or_default()
            .to_vec();
        if body_len > from_buf && !read_body(shared, io, &mut body, body_len) {
            return done(400, false, consumed);
        }
        body_read = true;
        let req = Request {
            method,
            target,
            headers: req.headers,
            body: &body,
            peer,
            tls: matches!(io.conn, Conn::Tls(_)),
        };
        if let Some(resp) = handler.handle(&req) {
            if shared.stopping() {
                keep_alive = false;
            }
            let status = match send_response(io, &resp, keep_alive, http10, is_head) {
                Ok(()) => resp.status,
                Err(_) => {
                    keep_alive = false;
                    resp.status
                }
            };
            return done(status, keep_alive, consumed);
        }
    }
    if !is_get && !is_head {
        let keep = keep_alive && (body_len == 0 || body_read);
        let _ = simple_response(io, 405, keep, http10, "Allow: GET, HEAD\r\n", false);
        return done(405, keep, if body_read { consumed } else { parsed_len });
    }
    if !body_read {
        if body_len > MAX_DISCARD_BODY {
            let _ = simple_response(io, 413, false, http10, "", is_head);
            return done(413, false, parsed_len);
        }
        // Drop the body: what is buffered, then the rest from the socket.
        if body_len > from_buf && !discard(shared, io, body_len - from_buf) {
            return done(400, false, consumed);
        }
    }
    if shared.stopping() {
        keep_alive = false;
    }

    let status = match serve_file(shared, io, is_head, target, &fields, keep_alive, http10) {
        Ok(s) => s,
        Err(Failed(s)) => {
            keep_alive = false;
            s
        }
    };
    done(status, keep_alive, consumed)
}

/// Read the rest of a body into `body` until it holds `len` bytes (within
/// the head timeout).
fn read_body(shared: &Shared, io: &mut Io, body: &mut Vec<u8>, len: u64) -> bool {
    let have = body.len() as u64;
    receive(shared, io, len.saturating_sub(have), |chunk| {
        body.extend_from_slice(chunk);
    })
}

/// Send a [`Handler`]'s answer.
fn send_response(
    io: &mut Io,
    resp: &Response,
    keep_alive: bool,
    http10: bool,
    is_head: bool,
) -> io::Result<()> {
    start_head(&mut io.head, resp.status, keep_alive, http10);
    for (name, value) in &resp.headers {
        let _ = write!(io.head, "{name}: {value}\r\n");
    }
    let no_body = matches!(resp.status, 100..=199 | 204 | 304);
    if !no_body {
        let _ = write!(io.head, "Content-Length: {}\r\n", resp.body.len());
    }
    end_head(&mut io.head);
    io.write_head()?;
    if !no_body && !is_head {
        io.send_bytes(&resp.body)?;
    }
    io.conn.flush()
}

/// Read and drop `n` body bytes (within the head timeout).
fn discard(shared: &Shared, io: &mut Io, n: u64) -> bool {
    receive(shared, io, n, |_| {})
}

/// Receive `n` more body bytes (within the head timeout), handing each
/// chunk to `take`; false if the peer closed, failed or ran out of time.
fn receive(shared: &Shared, io: &mut Io, mut n: u64, mut take: impl FnMut(&[u8])) -> bool {
    let deadline = Instant::now() + shared.config.header_timeout;
    let mut chunk = [0u8; 8192];
    while n > 0 {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        io.set_read_timeout((deadline - now).min(POLL_SLICE));
        let want = usize::try_from(n).unwrap_or(usize::MAX).min(chunk.len());
        match io.conn.read(chunk.get_mut(..want).unwrap_or_default()) {
            Ok(0) => return false,
            Ok(k) => {
                take(chunk.get(..k).unwrap_or_default());
                n -= k as u64;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The connection broke mid-response (status as logged).
struct Failed(u16);

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathError {
    /// Malformed: bad percent-encoding, NUL, backslash, not UTF-8, not
    /// origin-form.
    Bad,
    /// Traversal, the root itself, a directory, outside the root.
    Forbidden,
    /// No such file.
    NotFound,
}

impl PathError {
    fn status(self) -> u16 {
        match self {
            PathError::Bad => 400,
            PathError::Forbidden => 403,
            PathError::NotFound => 404,
        }
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The relative file path a request target names, checked: percent-decoded,
/// no NUL, no backslash, no `..`, every component a plain name; and whether
/// the target is in directory form (its last segment empty or `.`: `/a/`,
/// `/a/.`), which a regular file never answers (nginx: 404).
fn target_to_relative(target: &str) -> Result<(PathBuf, bool), PathError> {
    // Absolute-form (`http://host/path`) carries the path after the authority.
    let mut t = target;
    for scheme in ["http://", "https://"] {
        if t.len() >= scheme.len()
            && t.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        {
            let rest = t.get(scheme.len()..).unwrap_or_default();
            t = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/");
        }
    }
    let path = t.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return Err(PathError::Bad);
    }
    let raw = path.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hi = raw.get(i + 1).copied().and_then(hex_val);
            let lo = raw.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(h), Some(l)) => decoded.push(h << 4 | l),
                _ => return Err(PathError::Bad),
            }
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Err(PathError::Bad);
    }
    let text = String::from_utf8(decoded).map_err(|_| PathError::Bad)?;
    let mut rel = PathBuf::new();
    for seg in text.split('/') {
        if seg.is_empty() || seg == "." {
            continue;
        }
        if seg == ".." {
            return Err(PathError::Forbidden);
        }
        let mut comps = Path::new(seg).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => rel.push(seg),
            _ => return Err(PathError::Forbidden),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(PathError::Forbidden);
    }
    let dir_form = text
        .rsplit('/')
        .next()
        .is_some_and(|s| s.is_empty() || s == ".");
    Ok((rel, dir_form))
}

/// Resolve a target to an open regular file under the canonical root.
fn open_target(root: &Path, target: &str) -> Result<(File, std::fs::Metadata, PathBuf), PathError> {
    let (rel, dir_form) = target_to_relative(target)?;
    let full = root.join(&rel);
    let canon = full.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => PathError::Forbidden,
        _ => PathError::NotFound,
    })?;
    if !canon.starts_with(root) {
        return Err(PathError::Forbidden);
    }
    let file = File::open(&canon).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PathError::NotFound,
        _ => PathError::Forbidden,
    })?;
    let meta = file.metadata().map_err(|_| PathError::NotFound)?;
    if !meta.is_file() {
        return Err(PathError::Forbidden);
    }
    if dir_form {
        // `/pkg.sft/`: a file has no directory form (a component after a
        // regular file, `/pkg.sft/x`, fails in `canonicalize` above).
        return Err(PathError::NotFound);
    }
    Ok((file, meta, canon))
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if ext.eq_ignore_ascii_case("osd") || ext.eq_ignore_ascii_case("xml") {
        "text/xml"
    } else if ext.eq_ignore_ascii_case("ico") {
        "image/x-icon"
    } else {
        "application/octet-stream"
    }
}

/// A file's validators.
struct Validators {
    etag: String,
    mtime_secs: u64,
}

fn validators(meta: &std::fs::Metadata) -> Validators {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let nanos = mtime.as_nanos();
    #[cfg(unix)]
    let etag = {
        use std::os::unix::fs::MetadataExt;
        format!("\"{:x}-{:x}-{:x}\"", meta.ino(), meta.len(), nanos)
    };
    #[cfg(not(unix))]
    let etag = format!("\"{:x}-{:x}\"", meta.len(), nanos);
    Validators {
        etag,
        mtime_secs: mtime.as_secs(),
    }
}

/// Entity tags in a list field (`"a", W/"b"`); `*` yields `Star`.
enum TagList<'a> {
    Star,
    Tags(&'a [u8]),
}

fn tag_list(v: &[u8]) -> TagList<'_> {
    if v.trim_ascii() == b"*" {
        TagList::Star
    } else {
        TagList::Tags(v)
    }
}

/// Whether `list` holds `etag` (strong: weak tags never match; weak: the
/// `W/` prefix is ignored).
fn tag_matches(list: &[u8], etag: &str, weak: bool) -> bool {
    let mut rest = list;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start();
        }
        if rest.is_empty() {
            return false;
        }
        let is_weak = rest.starts_with(b"W/");
        if is_weak {
            rest = rest.get(2..).unwrap_or_default();
        }
        if !rest.starts_with(b"\"") {
            return false;
        }
        let Some(close) = rest
            .get(1..)
            .and_then(|r| r.iter().position(|&b| b == b'"'))
        else {
            return false;
        };
        let tag = rest.get(..close + 2).unwrap_or_default();
        if tag == etag.as_bytes() && (weak || !is_weak) {
            return true;
        }
        rest = rest.get(close + 2..).unwrap_or_default();
    }
}

fn serve_file(
    shared: &Shared,
    io: &mut Io,
    is_head: bool,
    target: &str,
    f: &Fields<'_>,
    keep_alive: bool,
    http10: bool,
) -> Result<u16, Failed> {
    let (file, meta, path) = match open_target(&shared.root, target) {
        Ok(x) => x,
        Err(e) => {
            let status = e.status();
            let r = simple_response(io, status, keep_alive && status != 400, http10, "", is_head);
            return match r {
                Ok(()) if status == 400 => Err(Failed(400)),
                r => finish(r, status),
            };
        }
    };
    let len = meta.len();
    let v = validators(&meta);
    let ctype = content_type(&path);

    // Preconditions, in RFC 9110 §13.2.2 order.
    let precondition_failed = match f.if_match {
        Some(m) => match tag_list(m) {
            TagList::Star => false,
            TagList::Tags(t) => !tag_matches(t, &v.etag, false),
        },
        None => f
            .if_unmodified_since
            .and_then(parse_http_date)
            .is_some_and(|d| v.mtime_secs > d),
    };
    if precondition_failed {
        return finish(
            simple_response(io, 412, keep_alive, http10, "", is_head),
            412,
        );
    }
    let not_modified = match f.if_none_match {
        Some(m) => match tag_list(m) {
            TagList::Star => true,
            TagList::Tags(t) => tag_matches(t, &v.etag, true),
        },
        None => f
            .if_modified_since
            .and_then(parse_http_date)
            .is_some_and(|d| v.mtime_secs <= d),
    };
    if not_modified {
        start_head(&mut io.head, 304, keep_alive, http10);
        push_validators(&mut io.head, &v);
        end_head(&mut io.head);
        return finish(io.write_head(), 304);
    }

    // Range applies to GET only, and only if If-Range (when present) holds.
    let mut resolution = Resolution::Full;
    if let (false, Some(value)) = (is_head, f.range) {
        let if_range_ok = match f.if_range {
            None => true,
            Some(ir) => {
                let ir = ir.trim_ascii();
                if ir.starts_with(b"\"") || ir.starts_with(b"W/") {
                    tag_matches(ir, &v.etag, false) && !ir.starts_with(b"W/")
                } else {
                    parse_http_date(ir) == Some(v.mtime_secs)
                }
            }
        };
        if if_range_ok {
            resolution = if f.ranges > 1 {
                Resolution::Unsatisfiable
            } else {
                range::resolve_header(
                    value,
                    len,
                    RangeLimits::default().max_ranges(shared.config.max_ranges),
                )
            };
        }
    }

    match resolution {
        Resolution::Full => {
            start_head(&mut io.head, 200, keep_alive, http10);
            push_entity_headers(&mut io.head, ctype, len, &v);
            end_head(&mut io.head);
            let r = io.write_head().and_then(|()| {
                if is_head || len == 0 {
                    Ok(())
                } else {
                    io.send_file(&file, 0..len)
                }
            });
            finish(r, 200)
        }
        Resolution::Unsatisfiable => {
            let extra = format!(
                "Content-Range: {}\r\n",
                ContentRangeValue::Unsatisfied { complete_len: len }
            );
            finish(
                simple_response(io, 416, keep_alive, http10, &extra, false),
                416,
            )
        }
        Resolution::Partial(ranges) => match ranges.as_slice() {
            [one] => {
                start_head(&mut io.head, 206, keep_alive, http10);
                push_entity_headers(&mut io.head, ctype, one.end - one.start, &v);
                let _ = write!(
                    io.head,
                    "Content-Range: {}\r\n",
                    ContentRangeValue::satisfied(one, len)
                );
                end_head(&mut io.head);
                let r = io
                    .write_head()
                    .and_then(|()| io.send_file(&file, one.clone()));
                finish(r, 206)
            }
            many => {
                let r = send_multipart(shared, io, &file, many, len, ctype, &v, keep_alive, http10);
                finish(r, 206)
            }
        },
    }
}

/// Map a write result to the status to log; a failed write closes.
fn finish(r: io::Result<()>, status: u16) -> Result<u16, Failed> {
    match r {
        Ok(()) => Ok(status),
        Err(_) => Err(Failed(status)),
    }
}

#[allow(clippy::too_many_arguments)]
fn send_multipart(
    shared: &Shared,
    io: &mut Io,
    file: &File,
    ranges: &[Range<u64>],
    len: u64,
    ctype: &str,
    v: &Validators,
    keep_alive: bool,
    http10: bool,
) -> io::Result<()> {
    let boundary = make_boundary(shared);
    // Part headers, back to back, with their end offsets.
    let mut parts = Vec::with_capacity(ranges.len() * 96);
    let mut ends = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        let sep = if i == 0 { "" } else { "\r\n" };
        let _ = write!(
            parts,
            "{sep}--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: {}\r\n\r\n",
            ContentRangeValue::satisfied(r, len)
        );
        ends.push(parts.len());
    }
    let closing = format!("\r\n--{boundary}--\r\n");
    let body_len = parts.len() as u64
        + ranges.iter().map(|r| r.end - r.start).sum::<u64>()
        + closing.len() as u64;

    start_head(&mut io.head, 206, keep_alive, http10);
    let _ = write!(
        io.head,
        "Content-Type: multipart/byteranges; boundary={boundary}\r\nContent-Length: {body_len}\r\nAccept-Ranges: bytes\r\n"
    );
    push_validators(&mut io.head, v);
    end_head(&mut io.head);
    io.write_head()?;
    let mut start = 0;
    for (r, &end) in ranges.iter().zip(&ends) {
        io.send_bytes(parts.get(start..end).unwrap_or_default())?;
        start = end;
        io.send_file(file, r.clone())?;
    }
    io.send_bytes(closing.as_bytes())?;
    io.conn.flush()
}

fn make_boundary(shared: &Shared) -> String {
    let n = shared.boundary_seq.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut h = shared.random.build_hasher();
    h.write_u64(n);
    h.write_u64(nanos);
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    format!("sft-{a:016x}{b:016x}")
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        409 => "Conflict",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn start_head(out: &mut Vec<u8>, status: u16, keep_alive: bool, http10: bool) {
    out.clear();
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nServer: sft/{}\r\nDate: {}\r\n",
        reason(status),
        env!("CARGO_PKG_VERSION"),
        HttpDate(now_secs())
    );
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

fn push_validators(out: &mut Vec<u8>, v: &Validators) {
    let _ = write!(
        out,
        "ETag: {}\r\nLast-Modified: {}\r\n",
        v.etag,
        HttpDate(v.mtime_secs)
    );
}

fn push_entity_headers(out: &mut Vec<u8>, ctype: &str, content_len: u64, v: &Validators) {
    let _ = write!(
        out,
        "Content-Type: {ctype}\r\nContent-Length: {content_len}\r\nAccept-Ranges: bytes\r\n"
    );
    push_validators(out, v);
}

fn end_head(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// A short text/plain answer (`<status> <reason>\n`).
fn simple_response(
    io: &mut Io,
    status: u16,
    keep_alive: bool,
    http10: bool,
    extra: &str,
    is_head: bool,
) -> io::Result<()> {
    start_head(&mut io.head, status, keep_alive, http10);
    let body_len = 3 + 1 + reason(status).len() + 1;
    let _ = write!(
        io.head,
        "{extra}Content-Type: text/plain\r\nContent-Length: {body_len}\r\n\r\n"
    );
    if !is_head {
        let _ = writeln!(io.head, "{status} {}", reason(status));
        io.sent += body_len as u64;
    }
    io.write_head()?;
    io.conn.flush()
}

fn log_access(
    shared: &Shared,
    line: &mut String,
    peer: SocketAddr,
    request: Option<(&str, &str, u8)>,
    status: u16,
    sent: u64,
    started: Instant,
) {
    use fmt::Write as _;
    let Some(log) = &shared.config.access_log else {
        return;
    };
    line.clear();
    let _ = write!(line, "{} - - [{}] \"", peer.ip(), ClfDate(now_secs()));
    match request {
        Some((method, path, version)) => {
            push_escaped(line, method);
            line.push(' ');
            push_escaped(line, path);
            let _ = write!(line, " HTTP/1.{version}");
        }
        None => line.push('-'),
    }
    let _ = writeln!(
        line,
        "\" {status} {sent} {:.3}",
        started.elapsed().as_secs_f64()
    );
    log.write_line(line);
}

/// Printable ASCII as is, the rest (and `"`, `\`) as `\xNN`.
fn push_escaped(out: &mut String, s: &str) {
    use fmt::Write as _;
    for b in s.bytes() {
        if (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

// ---- dates -------------------------------------------------------------

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    weekday: &'static str,
    year: i64,
    month: &'static str,
    day: u32,
    h: u64,
    m: u64,
    s: u64,
}

fn parts(secs: u64) -> Parts {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Parts {
        weekday: DAYS.get((days % 7) as usize).copied().unwrap_or("Thu"),
        year,
        month: MONTHS.get(month as usize - 1).copied().unwrap_or("Jan"),
        day,
        h: rem / 3600,
        m: rem / 60 % 60,
        s: rem % 60,
    }
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) of Unix seconds.
struct HttpDate(u64);

impl fmt::Display for HttpDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = parts(self.0);
        write!(
            f,
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            p.weekday, p.day, p.month, p.year, p.h, p.m, p.s
        )
    }
}

/// Common log format date (`10/Oct/2000:13:55:36 +0000`).
struct ClfDate(u64);

impl fmt::Display for ClfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = parts(self.0);
        write!(
            f,
            "{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000",
            p.day, p.month, p.year, p.h, p.m, p.s
        )
    }
}

/// Unix seconds of an IMF-fixdate; `None` for anything else (obsolete
/// formats included: the server then ignores the condition, or for
/// `If-Range` sends the whole file).
fn parse_http_date(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.len() != 29 {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    let num = |r: Range<usize>| -> Option<u64> { parse_u64(s.get(r)?.as_bytes()) };
    let bytes = s.as_bytes();
    let fixed = [
        (3, b','),
        (4, b' '),
        (7, b' '),
        (11, b' '),
        (16, b' '),
        (19, b':'),
        (22, b':'),
        (25, b' '),
    ];
    if !fixed.iter().all(|&(i, c)| bytes.get(i) == Some(&c)) || s.get(26..)? != "GMT" {
        return None;
    }
    if !DAYS.contains(&s.get(0..3)?) {
        return None;
    }
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|&m| Some(m) == s.get(8..11))? as u32 + 1;
    let year = num(12..16)?;
    let (h, m, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month, day as u32);
    u64::try_from(days)
        .ok()?
        .checked_mul(86_400)?
        .checked_add(h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(
            HttpDate(784_111_777).to_string(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(HttpDate(0).to_string(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            ClfDate(971_186_136).to_string(),
            "10/Oct/2000:13:55:36 +0000"
        );
        assert_eq!(
            parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        for t in [
            0u64,
            951_782_400,
            1_709_210_096,
            4_102_444_800,
            253_402_300_799,
        ] {
            assert_eq!(
                parse_http_date(HttpDate(t).to_string().as_bytes()),
                Some(t),
                "{t}"
            );
        }
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_http_date(b"Sun, 36 Nov 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn targets() {
        let ok = |t: &str| target_to_relative(t).map(|p| p.0.to_string_lossy().into_owned());
        let dir = |t: &str| target_to_relative(t).map(|p| p.1);
        assert_eq!(dir("/a/b.sft"), Ok(false));
        assert_eq!(dir("/a/b.sft/"), Ok(true));
        assert_eq!(dir("/a/b.sft/."), Ok(true));
        assert_eq!(dir("/a/b.sft%2f"), Ok(true));
        assert_eq!(dir("/a/b.sft/?x=/"), Ok(true));
        assert_eq!(dir("/a/b.sft?x=/"), Ok(false));
        assert_eq!(ok("/a/b.sft").as_deref(), Ok("a/b.sft"));
        assert_eq!(ok("/a%20b.sft?x=1").as_deref(), Ok("a b.sft"));
        assert_eq!(ok("http://host:80/x//./y").as_deref(), Ok("x/y"));
        assert_eq!(ok("/../etc/passwd"), Err(PathError::Forbidden));
        assert_eq!(ok("/%2e%2e/etc/passwd"), Err(PathError::Forbidden));
        assert_eq!(ok("/a%2f..%2f..%2fb"), Err(PathError::Forbidden));
        assert_eq!(ok("/a%00b"), Err(PathError::Bad));
        assert_eq!(ok("/a%5cb"), Err(PathError::Bad));
        assert_eq!(ok("/a\\b"), Err(PathError::Bad));
        assert_eq!(ok("/a%zz"), Err(PathError::Bad));
        assert_eq!(ok("/a%2"), Err(PathError::Bad));
        assert_eq!(ok("/%ff"), Err(PathError::Bad));
        assert_eq!(ok("a"), Err(PathError::Bad));
        assert_eq!(ok("*"), Err(PathError::Bad));
        assert_eq!(ok("/"), Err(PathError::Forbidden));
    }

    #[test]
    fn etags() {
        let e = "\"1-2-3\"";
        assert!(tag_matches(b"\"1-2-3\"", e, false));
        assert!(tag_matches(b"\"x\", \"1-2-3\"", e, false));
        assert!(!tag_matches(b"W/\"1-2-3\"", e, false));
        assert!(tag_matches(b"W/\"1-2-3\"", e, true));
        assert!(!tag_matches(b"\"1-2-3", e, true));
        assert!(!tag_matches(b"", e, true));
    }

    #[test]
    fn head_end_finds_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }
}
