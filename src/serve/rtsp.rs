//! The RTSP/RTSPS streaming server (`sft serve --rtsp` / `--rtsps`): the
//! open counterpart of the App-V 4.x Streaming Server, speaking the protocol
//! of `docs/RTSP.md`.
//!
//! - One thread per connection, one session per connection; limits on
//!   connections, sessions, message sizes, request, idle, session and
//!   write-stall times.
//! - Requests and responses are parsed and written by `rtsp-types`
//!   (through [`crate::proto::rtsp`]); SDP is written with `sdp-types`.
//! - Data is sent from the package file in packets of at most 65,440
//!   bytes (`sendfile(2)` on plain TCP on Linux, else `pread` into one
//!   per-session buffer), as RTP in interleaved
//!   frames; a package is never loaded into memory. Out-of-sequence fetches
//!   (`SET_PARAMETER` with `x-Sft-Fetch`) are served before the next packet
//!   of the background stream.
//! - **Active upgrade**: packages are identified by the package GUID of
//!   their prologue; the newest version in the content root wins for new
//!   sessions, sessions keep the file they opened. The content root is
//!   rescanned (cheaply: length and mtime first) on DESCRIBE and SETUP; a
//!   version is offered only once its file is complete and has settled
//!   ([`ServerConfig::settle_time`]), never while it is being copied in.
//! - RTSPS: rustls with the configuration given ([`ServerConfig::tls`]).
//!
//! ```
//! use sft::serve::rtsp::{Server, ServerConfig};
//! use std::io::{Read, Write};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
//! let mut s = std::net::TcpStream::connect(server.local_addr())?;
//! s.write_all(b"OPTIONS * RTSP/1.0\r\nCSeq: 42\r\n\r\n")?;
//! let mut answer = [0u8; 512];
//! let n = s.read(&mut answer)?;
//! let answer = String::from_utf8_lossy(&answer[..n]);
//! assert!(answer.starts_with("RTSP/1.0 200 OK\r\n"));
//! assert!(answer.contains("CSeq: 42\r\n"));
//! server.shutdown()?;
//! # Ok(()) }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use rtsp_types::headers::{self, HeaderName, Transport, Transports};
use rtsp_types::{Method, Request, Response, StatusCode, Version};

use crate::error::Error;
use crate::format::guid::Guid;
use crate::format::{BlockId, HEADER_LEN, Header};
use crate::proto::rtsp as proto;
use crate::proto::rtsp::{
    DecodeError, FLAG_END, FLAG_LAST_OF_RANGE, Frame, Limits, PACKET_PREFIX_LEN, PacketHeader,
    RangeListError, SERVER_PACKET_DATA,
};
use crate::read::Prologue;
use crate::serve::{self, CountGuard, Lifecycle};
pub use crate::serve::{ServerHandle, ShutdownHandle};

/// How often a blocked read wakes up to look at the shutdown flag.
const POLL_SLICE: Duration = Duration::from_millis(250);
/// Default nice increment of a thread streaming background packets.
const DEFAULT_BACKGROUND_NICE: i32 = 10;
/// While a session streams, its connection's input is looked at before
/// every this many data packets (about 256 KiB: a request waits that much
/// longer at most, and three packets in four go without the system call).
const INPUT_EVERY: u32 = 4;
/// Longest a background packet waits for other sessions' fetches.
const URGENT_MAX_WAIT: Duration = Duration::from_millis(2);
/// Pending fetch bytes up to which a session counts as urgent.
const URGENT_MAX_BYTES: u64 = 1 << 20;
/// Most pending fetch ranges per session.
const MAX_PENDING_RANGES: usize = 1024;
/// Most pending fetch bytes per session, as a multiple of the package
/// length (each request is merged, so one request is at most 1×).
const MAX_PENDING_PACKAGES: u64 = 2;
/// Directory depth and file count bounds of a content scan.
const MAX_SCAN_DEPTH: usize = 16;
const MAX_SCAN_FILES: usize = 100_000;
/// Largest prologue the server reads to identify a package.
const MAX_PROLOGUE: u64 = 256 * 1024 * 1024;
const PUBLIC: &str =
    "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER, TEARDOWN";

fn x_header(name: &'static str) -> HeaderName {
    HeaderName::from_static_str(name).unwrap_or(headers::SERVER)
}

/// What the server serves and its limits. By-value setters.
///
/// ```
/// use sft::serve::rtsp::ServerConfig;
/// use std::time::Duration;
///
/// let c = ServerConfig::new("/srv/content").max_sessions(64).session_timeout(Duration::from_secs(30));
/// assert_eq!(c.get_max_sessions(), 64);
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    root: PathBuf,
    max_connections: usize,
    max_sessions: usize,
    limits: Limits,
    request_timeout: Duration,
    idle_timeout: Duration,
    session_timeout: Duration,
    write_timeout: Duration,
    shutdown_grace: Duration,
    rescan_interval: Duration,
    settle_time: Duration,
    background_nice: i32,
    tls: Option<Arc<rustls::ServerConfig>>,
    gate: Option<Arc<dyn serve::Gate>>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("root", &self.root)
            .field("max_connections", &self.max_connections)
            .field("max_sessions", &self.max_sessions)
            .field("limits", &self.limits)
            .field("request_timeout", &self.request_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("session_timeout", &self.session_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("rescan_interval", &self.rescan_interval)
            .field("settle_time", &self.settle_time)
            .field("background_nice", &self.background_nice)
            .field("tls", &self.tls.is_some())
            .field("gate", &self.gate.is_some())
            .finish()
    }
}

impl ServerConfig {
    /// Serve the packages under `root` over plain RTSP with the defaults of
    /// `docs/RTSP.md` §8: 256 connections, 256 sessions, 16 KiB heads,
    /// 64 KiB bodies, 10 s to finish a request, 60 s idle and session
    /// timeouts, 30 s write stalls, 10 s shutdown grace, 2 s rescan
    /// interval, 2 s settle time, background streaming at nice +10.
    ///
    /// ```
    /// use sft::serve::rtsp::ServerConfig;
    /// assert_eq!(ServerConfig::new(".").get_max_sessions(), 256);
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ServerConfig {
            root: root.into(),
            max_connections: 256,
            max_sessions: 256,
            limits: Limits::default(),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            session_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            rescan_interval: Duration::from_secs(2),
            settle_time: Duration::from_secs(2),
            background_nice: DEFAULT_BACKGROUND_NICE,
            tls: None,
            gate: None,
        }
    }

    /// At most `n` connections (at least 1); more get 503 and are closed.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").max_connections(8);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// At most `n` sessions (at least 1); more SETUPs get 503.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// assert_eq!(ServerConfig::new(".").max_sessions(0).get_max_sessions(), 1);
    /// ```
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n.max(1);
        self
    }

    /// The session limit.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// assert_eq!(ServerConfig::new(".").max_sessions(3).get_max_sessions(), 3);
    /// ```
    pub fn get_max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Message size limits (heads at least 1 KiB).
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// use sft::proto::rtsp::Limits;
    /// let c = ServerConfig::new(".").limits(Limits { max_head: 4096, max_body: 1024 });
    /// ```
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Limits {
            max_head: limits.max_head.max(1024),
            max_body: limits.max_body,
        };
        self
    }

    /// Time a client has to complete a request once its first byte came.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").request_timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long a connection without a session may stay silent.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").idle_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn idle_timeout(mut self, t: Duration) -> Self {
        self.idle_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long a session may stay silent while nothing is being sent
    /// (announced as `Session: id;timeout=N`).
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").session_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t.max(Duration::from_secs(1));
        self
    }

    /// How long one write may stall (a client that stops reading).
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").write_timeout(std::time::Duration::from_secs(5));
    /// ```
    pub fn write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t.max(Duration::from_millis(1));
        self
    }

    /// How long a shutdown waits for connections to end.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").shutdown_grace(std::time::Duration::from_secs(1));
    /// ```
    pub fn shutdown_grace(mut self, t: Duration) -> Self {
        self.shutdown_grace = t;
        self
    }

    /// Least time between two scans of the content root.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").rescan_interval(std::time::Duration::ZERO);
    /// ```
    pub fn rescan_interval(mut self, t: Duration) -> Self {
        self.rescan_interval = t;
        self
    }

    /// How long a package file that appeared or changed after the server's
    /// first scan must stay unchanged (length and modification time, as
    /// rescans see them) before new sessions are offered it (active
    /// upgrade, `docs/RTSP.md` §6). Files that are incomplete (length not
    /// `prologue_len + data_len`) are never offered. Default 2 s.
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").settle_time(std::time::Duration::ZERO);
    /// ```
    pub fn settle_time(mut self, t: Duration) -> Self {
        self.settle_time = t;
        self
    }

    /// How much lower the CPU priority of background streaming is: a
    /// connection's thread raises its nice value by `n` (0 to 19; 0 keeps
    /// it) when it sends its first background packet, so that requests
    /// and out-of-sequence fetches, which run on threads that are not
    /// streaming, get the CPU ahead of bulk delivery when the server's
    /// cores are busy. Linux only (elsewhere ignored); a thread's nice
    /// value cannot be lowered again without privileges, and the thread
    /// ends with its connection. Default 10 (a weight of about a tenth).
    ///
    /// ```
    /// # use sft::serve::rtsp::ServerConfig;
    /// let c = ServerConfig::new(".").background_nice(0);
    /// ```
    pub fn background_nice(mut self, n: i32) -> Self {
        self.background_nice = n.clamp(0, 19);
        self
    }

    /// Serve RTSPS with this rustls configuration (its ALPN list is
    /// cleared: RTSP clients offer none). `sft serve` loads it with
    /// `sft::serve::http::tls_config_from_pem`.
    ///
    /// ```no_run
    /// # use sft::serve::rtsp::ServerConfig;
    /// # fn tls() -> std::sync::Arc<rustls::ServerConfig> { unimplemented!() }
    /// let c = ServerConfig::new("content").tls(tls());
    /// ```
    pub fn tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        let mut config = (*tls).clone();
        config.alpn_protocols.clear();
        self.tls = Some(Arc::new(config));
        self
    }

    /// Ask `gate` before a package is described or set up: a client it
    /// refuses gets its status (401 with `WWW-Authenticate: Basic`), and
    /// never a byte of the package. Clients authenticate with an
    /// `Authorization` header on each request (HTTP Basic or a bearer
    /// token, as over HTTP).
    pub fn gate(mut self, gate: Arc<dyn serve::Gate>) -> Self {
        self.gate = Some(gate);
        self
    }
}

// ---------------------------------------------------------------------------
// The catalog: what the content root holds, by package GUID.

/// What the server knows about one package file.
#[derive(Debug, Clone)]
struct PkgInfo {
    path: PathBuf,
    len: u64,
    mtime: Option<SystemTime>,
    package_guid: Guid,
    version_guid: Guid,
    version: u32,
    name: String,
    block_size: u32,
    block_count: u32,
    fb1_blocks: u32,
    prologue_len: u64,
    fb1_end: u64,
    launch_size: u64,
    package_size: u64,
    /// When the catalog first saw the file with this length and mtime;
    /// `None`: it was there, complete, at the server's first scan.
    seen: Option<Instant>,
}

/// Whether a complete package file may be offered to new sessions: it was
/// there at the server's first scan (`seen` is `None`), or the catalog has
/// seen it unchanged (length and mtime) for at least `settle`. A file
/// still being copied in keeps changing, so it stays hidden until the copy
/// has ended and settled.
fn settled(seen: Option<Instant>, now: Instant, settle: Duration) -> bool {
    seen.is_none_or(|t| now.saturating_duration_since(t) >= settle)
}

use crate::io::pos::read_exact_at;

/// Identify a package from its prologue (read in one bounded piece). Only
/// a complete package counts: its length is exactly `prologue_len +
/// data_len` (a file still being copied in is not, and costs one header
/// read), and its prologue parses.
fn read_info(file: &File, path: &Path) -> Option<PkgInfo> {
    let meta = file.metadata().ok()?;
    let len = meta.len();
    let mut head = [0u8; HEADER_LEN];
    read_exact_at(file, &mut head, 0).ok()?;
    let header = Header::parse(&head).ok()?;
    if header.prologue_len.checked_add(header.data_len) != Some(len)
        || header.prologue_len > MAX_PROLOGUE
    {
        return None;
    }
    let mut pro = vec![0u8; usize::try_from(header.prologue_len).ok()?];
    read_exact_at(file, &mut pro, 0).ok()?;
    let prologue = Prologue::parse(&pro).ok()?;
    let meta_rec = prologue.metadata();
    let index = prologue.index();
    let fb1_blocks = index.fb1_len();
    let fb1_end = match fb1_blocks.checked_sub(1) {
        Some(last) => index.get(BlockId(last)).ok()?.stored_range().end,
        None => header.prologue_len,
    };
    Some(PkgInfo {
        path: path.to_path_buf(),
        len,
        mtime: meta.modified().ok(),
        package_guid: meta_rec.package_guid(),
        version_guid: meta_rec.version_guid(),
        version: meta_rec.version(),
        name: meta_rec.name().to_owned(),
        block_size: header.block_size,
        block_count: header.block_count,
        fb1_blocks,
        prologue_len: header.prologue_len,
        fb1_end,
        launch_size: meta_rec.launch_size(),
        package_size: meta_rec.package_size(),
        seen: Some(Instant::now()),
    })
}

#[derive(Default)]
struct CatalogState {
    last_scan: Option<Instant>,
    by_path: HashMap<PathBuf, Arc<PkgInfo>>,
}

struct Catalog {
    root: PathBuf,
    interval: Duration,
    settle: Duration,
    state: Mutex<CatalogState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn same_stat(info: &PkgInfo, meta: &std::fs::Metadata) -> bool {
    info.len == meta.len() && info.mtime == meta.modified().ok()
}

impl Catalog {
    /// Walk the root (no symlinks followed), re-reading only changed files.
    fn rescan(&self, state: &mut CatalogState) {
        let first_scan = state.last_scan.is_none();
        let mut fresh = HashMap::new();
        let mut stack = vec![(self.root.clone(), 0usize)];
        let mut files = 0usize;
        while let Some((dir, depth)) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(ft) = entry.file_type() else { continue };
                let path = entry.path();
                if ft.is_dir() && depth < MAX_SCAN_DEPTH {
                    stack.push((path, depth + 1));
                    continue;
                }
                let is_sft = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("sft"));
                if !ft.is_file() || !is_sft || files >= MAX_SCAN_FILES {
                    continue;
                }
                files += 1;
                let Ok(meta) = entry.metadata() else { continue };
                if let Some(old) = state.by_path.get(&path).filter(|i| same_stat(i, &meta)) {
                    fresh.insert(path, Arc::clone(old));
                    continue;
                }
                if let Some(mut info) = File::open(&path).ok().and_then(|f| read_info(&f, &path)) {
                    if first_scan {
                        info.seen = None;
                    }
                    fresh.insert(path, Arc::new(info));
                }
            }
        }
        state.by_path = fresh;
        state.last_scan = Some(Instant::now());
    }

    fn refresh<'a>(&'a self, state: &mut MutexGuard<'a, CatalogState>) {
        if state.last_scan.is_none_or(|t| t.elapsed() >= self.interval) {
            self.rescan(state);
        }
    }

    /// The info for the file at canonical `path`, refreshed if it changed.
    fn info_for(&self, state: &mut CatalogState, path: &Path) -> Option<Arc<PkgInfo>> {
        let meta = std::fs::metadata(path).ok()?;
        if let Some(i) = state.by_path.get(path).filter(|i| same_stat(i, &meta)) {
            return Some(Arc::clone(i));
        }
        let info = Arc::new(read_info(&File::open(path).ok()?, path)?);
        state.by_path.insert(path.to_path_buf(), Arc::clone(&info));
        Some(info)
    }

    /// The newest settled version of the package at `path`, or the
    /// version `version` of it (settled or not: a client only learns a
    /// version GUID from a version that was offered).
    fn resolve(&self, path: &Path, version: Option<Guid>) -> Option<Arc<PkgInfo>> {
        let mut state = lock(&self.state);
        self.refresh(&mut state);
        let named = self.info_for(&mut state, path)?;
        let same = state
            .by_path
            .values()
            .filter(|i| i.package_guid == named.package_guid);
        match version {
            Some(v) if named.version_guid == v => Some(named),
            Some(v) => same
                .filter(|i| i.version_guid == v)
                .max_by_key(|i| i.mtime)
                .cloned(),
            // The newest settled version: another file only when its
            // version is higher (an upgrade); at the same version, the file
            // the URL names (two copies of one version, or one repacked,
            // are not upgrades of each other).
            None => {
                let now = Instant::now();
                same.filter(|i| settled(i.seen, now, self.settle))
                    .max_by_key(|i| (i.version, Arc::ptr_eq(i, &named), i.mtime))
                    .cloned()
            }
        }
    }

    /// The newest settled version of a package GUID.
    fn latest(&self, guid: Guid) -> Option<Arc<PkgInfo>> {
        let mut state = lock(&self.state);
        self.refresh(&mut state);
        let now = Instant::now();
        state
            .by_path
            .values()
            .filter(|i| i.package_guid == guid && settled(i.seen, now, self.settle))
            .max_by_key(|i| (i.version, i.mtime))
            .cloned()
    }
}

/// The canonical file a request URL's path names, checked as the HTTP
/// server checks its targets: percent-decoded, no NUL, `\` or `..`, every
/// component a plain name, inside the root.
fn resolve_path(root: &Path, url_path: &str) -> Result<PathBuf, u16> {
    let raw = url_path.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| core::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(400u16)?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    if decoded.iter().any(|&b| b == 0 || b == b'\\') {
        return Err(400);
    }
    let text = String::from_utf8(decoded).map_err(|_| 400u16)?;
    let mut rel = PathBuf::new();
    for seg in text.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut comps = Path::new(seg).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(_)), None) => rel.push(seg),
            _ => return Err(404),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(404);
    }
    let canon = root.join(rel).canonicalize().map_err(|_| 404u16)?;
    if !canon.starts_with(root) || !canon.is_file() {
        return Err(404);
    }
    Ok(canon)
}

/// A request URL's package file and optional `version=GUID` control
/// segment (other trailing control segments are ignored).
fn resolve_url(root: &Path, url_path: &str) -> Result<(PathBuf, Option<Guid>), u16> {
    match resolve_path(root, url_path) {
        Ok(p) => Ok((p, None)),
        Err(first) => {
            let trimmed = url_path.trim_end_matches('/');
            let Some((base, last)) = trimmed.rsplit_once('/') else {
                return Err(first);
            };
            let path = resolve_path(root, base)?;
            let version = match last.strip_prefix("version=") {
                Some(hex) => Some(Guid::from_hex(hex).ok_or(404u16)?),
                None => None,
            };
            Ok((path, version))
        }
    }
}

// ---------------------------------------------------------------------------
// Server, handles.

struct Shared {
    config: ServerConfig,
    catalog: Catalog,
    life: Arc<Lifecycle>,
    /// Sessions with an out-of-sequence fetch pending, server-wide.
    urgent: UrgentGate,
    seq: AtomicU64,
    random: RandomState,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.life.stopping()
    }

    fn random_u64(&self) -> u64 {
        let mut h = self.random.build_hasher();
        h.write_u64(self.seq.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    }
}

/// A bound, not yet running RTSP server.
///
/// ```
/// use sft::serve::rtsp::{Server, ServerConfig};
///
/// let dir = tempfile::tempdir()?;
/// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
/// assert!(server.local_addr().port() != 0);
/// let stop = server.shutdown_handle();
/// stop.shutdown();
/// server.run()?;
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
    /// Check the content root (a directory), scan it once and bind `addr`
    /// (port 0: any free port).
    ///
    /// # Errors
    /// The root is missing or not a directory; the address cannot be bound.
    ///
    /// ```
    /// use sft::serve::rtsp::{Server, ServerConfig};
    /// assert!(Server::bind("127.0.0.1:0", ServerConfig::new("/nonexistent")).is_err());
    /// ```
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> Result<Server, Error> {
        let root = serve::content_root(&config.root)?;
        let (listener, addr) = serve::bind(addr, "the RTSP listener")?;
        let catalog = Catalog {
            root,
            interval: config.rescan_interval,
            // A file must be seen unchanged by a rescan after it settles:
            // with rescans rarer than the settle time, the settle time
            // is stretched to the rescan interval.
            settle: config.settle_time.max(config.rescan_interval),
            state: Mutex::new(CatalogState::default()),
        };
        {
            let mut state = lock(&catalog.state);
            catalog.rescan(&mut state);
        }
        Ok(Server {
            listener,
            addr,
            shared: Arc::new(Shared {
                config,
                catalog,
                life: Arc::new(Lifecycle::new(addr)),
                urgent: UrgentGate::default(),
                seq: AtomicU64::new(0),
                random: RandomState::new(),
            }),
        })
    }

    /// The address actually bound.
    ///
    /// ```
    /// # use sft::serve::rtsp::{Server, ServerConfig};
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
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// let h = server.shutdown_handle();
    /// assert_eq!(h.active_sessions(), 0);
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(Arc::clone(&self.shared.life))
    }

    /// Accept and serve connections until a shutdown is requested, then
    /// wait for connections to end (at most the shutdown grace).
    ///
    /// # Errors
    /// None today; the signature leaves room for fatal listener errors.
    ///
    /// ```
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let server = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?;
    /// server.shutdown_handle().shutdown();
    /// server.run()?;
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn run(self) -> Result<(), Error> {
        let shared = self.shared;
        let grace = shared.config.shutdown_grace;
        serve::accept_loop(self.listener, &shared.life, grace, |stream, _peer| {
            admit(&shared, stream);
        });
        Ok(())
    }

    /// Run the server on a thread of its own.
    ///
    /// # Errors
    /// The thread cannot be started.
    ///
    /// ```
    /// # use sft::serve::rtsp::{Server, ServerConfig};
    /// # let dir = tempfile::tempdir()?;
    /// let handle = Server::bind("127.0.0.1:0", ServerConfig::new(dir.path()))?.spawn()?;
    /// println!("listening on rtsp://{}", handle.local_addr());
    /// handle.shutdown()?;
    /// # Ok::<(), sft::Error>(())
    /// ```
    pub fn spawn(self) -> Result<ServerHandle, Error> {
        let (addr, stop) = (self.addr, self.shutdown_handle());
        serve::spawn("RTSP server", "sft-rtsp-accept", addr, stop, move || {
            self.run()
        })
    }
}

// ---------------------------------------------------------------------------
// Connections.

fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let plain = shared.config.tls.is_none();
    let conn_shared = Arc::clone(shared);
    serve::admit(
        &shared.life,
        shared.config.max_connections,
        std::thread::Builder::new()
            .name("sft-rtsp-conn".into())
            .stack_size(256 * 1024),
        stream,
        |stream| {
            if plain {
                reject_busy(stream);
            }
        },
        move |stream| serve_connection(&conn_shared, stream),
    );
}

fn reject_busy(stream: TcpStream) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let mut cseq = None;
    if let Ok(n) = (&stream).read(&mut sink)
        && let Ok(Some((Frame::Request(r), _))) =
            proto::decode(sink.get(..n).unwrap_or_default(), &Limits::default())
    {
        cseq = r.header(&headers::CSEQ).map(|v| v.as_str().to_owned());
    }
    let mut out = Vec::new();
    let resp = response(503, cseq.as_deref())
        .header(headers::RETRY_AFTER, "1")
        .empty();
    let _ = resp.write(&mut out);
    let _ = (&stream).write_all(&out);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Sessions with an out-of-sequence fetch pending, server-wide; the
/// background streams of other sessions park here until there are none.
#[derive(Default)]
struct UrgentGate {
    count: AtomicUsize,
    lock: Mutex<()>,
    clear: Condvar,
}

impl UrgentGate {
    fn enter(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Under the lock, so a waiter between its check and its wait
            // cannot miss the wake-up.
            let _g = lock(&self.lock);
            self.clear.notify_all();
        }
    }

    fn pending(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Wait until no fetch is pending, at most `max`.
    fn wait_clear(&self, max: Duration) {
        let deadline = Instant::now() + max;
        let mut g = lock(&self.lock);
        while self.pending() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.clear.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// A connection, plain or TLS.
type Conn = crate::io::conn::Conn<rustls::ServerConnection>;

enum Avail {
    Data(usize),
    Nothing,
    Eof,
}

impl Conn {
    /// Read what has arrived without blocking.
    fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Avail> {
        let from_plain = |r: io::Result<usize>| match r {
            Ok(0) => Ok(Avail::Eof),
            Ok(n) => Ok(Avail::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Avail::Nothing),
            Err(e) => Err(e),
        };
        match self {
            // One `recv(MSG_DONTWAIT)`: this runs while streaming (every
            // INPUT_EVERY packets), where switching the socket to
            // non-blocking and back cost two more system calls each time.
            #[cfg(target_os = "linux")]
            Conn::Plain(s) => loop {
                match rustix::net::recv(&*s, &mut *buf, rustix::net::RecvFlags::DONTWAIT) {
                    Ok((n, _)) => break from_plain(Ok(n)),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => break from_plain(Err(io::Error::from(e))),
                }
            },
            #[cfg(not(target_os = "linux"))]
            Conn::Plain(s) => {
                s.set_nonblocking(true)?;
                let r = s.read(buf);
                s.set_nonblocking(false)?;
                from_plain(r)
            }
            Conn::Tls(s) => {
                match s.conn.reader().read(buf) {
                    Ok(0) => return Ok(Avail::Eof),
                    Ok(n) => return Ok(Avail::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                s.sock.set_nonblocking(true)?;
                let r = s.conn.read_tls(&mut s.sock);
                s.sock.set_nonblocking(false)?;
                match r {
                    Ok(0) => return Ok(Avail::Eof),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Avail::Nothing),
                    Err(e) => return Err(e),
                }
                s.conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                from_plain(s.conn.reader().read(buf))
            }
        }
    }
}

struct Fetch {
    tag: u32,
    ranges: VecDeque<Range<u64>>,
}

struct Session<'a> {
    id: String,
    file: File,
    info: Arc<PkgInfo>,
    url: String,
    channel: u8,
    ssrc: u32,
    seq: u16,
    started: Instant,
    playing: bool,
    background: VecDeque<Range<u64>>,
    fetches: VecDeque<Fetch>,
    pending_ranges: usize,
    /// Bytes of all pending fetches.
    pending_bytes: u64,
    /// Whether this session counts in [`UrgentGate`].
    urgent: bool,
    urgent_gate: &'a UrgentGate,
    _guard: CountGuard<'a>,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.urgent {
            self.urgent_gate.leave();
        }
    }
}

impl Session<'_> {
    fn has_data(&self) -> bool {
        !self.fetches.is_empty() || (self.playing && !self.background.is_empty())
    }
}

struct ConnState<'a> {
    shared: &'a Shared,
    conn: Conn,
    inb: Vec<u8>,
    out: Vec<u8>,
    packet: Vec<u8>,
    session: Option<Session<'a>>,
    last_rx: Instant,
    partial_since: Option<Instant>,
    close_after_flush: bool,
    /// Whether this thread already lowered its priority for background.
    niced: bool,
    /// Requests handled on this connection.
    requests: u64,
    /// The client's address (for the gate).
    peer: std::net::SocketAddr,
}

fn response(status: u16, cseq: Option<&str>) -> rtsp_types::ResponseBuilder {
    let mut b = Response::builder(Version::V1_0, StatusCode::from(status))
        .reason_phrase(proto::reason(status))
        .header(headers::SERVER, "sft");
    if let Some(c) = cseq {
        b = b.header(headers::CSEQ, c);
    }
    b
}

fn serve_connection(shared: &Shared, tcp: TcpStream) {
    let accepted = Instant::now();
    // Until its first request is complete (TLS handshake included), a
    // connection has the request timeout from the accept, as an HTTP
    // connection has the head timeout: a silent one does not hold a slot
    // for the idle timeout.
    let first_deadline = accepted + shared.config.request_timeout;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(shared.config.write_timeout));
    let _ = tcp.set_read_timeout(Some(POLL_SLICE));
    let Ok(peer) = tcp.peer_addr() else {
        return;
    };
    let conn = match &shared.config.tls {
        None => Conn::Plain(tcp),
        Some(tls) => match rustls::ServerConnection::new(Arc::clone(tls)) {
            Ok(c) => {
                let mut s = Box::new(rustls::StreamOwned::new(c, tcp));
                if serve::tls_handshake(&mut s, first_deadline, &shared.life).is_err() {
                    let _ = s.sock.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Conn::Tls(s)
            }
            Err(_) => return,
        },
    };
    let limits = shared.config.limits;
    let mut st = ConnState {
        shared,
        conn,
        inb: Vec::with_capacity(4096),
        out: Vec::new(),
        packet: Vec::new(),
        session: None,
        last_rx: Instant::now(),
        partial_since: None,
        close_after_flush: false,
        niced: false,
        requests: 0,
        peer,
    };
    let cap = limits.max_head + limits.max_body + 8;
    let mut chunk = vec![0u8; 16 * 1024];
    let mut packets = 0u32;
    loop {
        if shared.stopping() {
            break;
        }
        let busy = st.session.as_ref().is_some_and(Session::has_data);
        // 1. Input: never wait while there is data to send, and look only
        // every few packets then.
        let got = if busy {
            packets = packets.wrapping_add(1);
            if packets % INPUT_EVERY == 1 {
                st.conn.read_available(&mut chunk)
            } else {
                Ok(Avail::Nothing)
            }
        } else {
            packets = 0;
            match st.conn.read(&mut chunk) {
                Ok(0) => Ok(Avail::Eof),
                Ok(n) => Ok(Avail::Data(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(Avail::Nothing)
                }
                Err(e) => Err(e),
            }
        };
        match got {
            Ok(Avail::Data(n)) => {
                st.last_rx = Instant::now();
                if st.inb.len() + n > cap {
                    st.reply_error(413, None);
                    break;
                }
                st.inb.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if !st.process_input() {
                    let _ = st.flush_out();
                    break;
                }
            }
            Ok(Avail::Nothing) => {}
            Ok(Avail::Eof) | Err(_) => break,
        }
        if st.flush_out().is_err() || st.close_after_flush {
            break;
        }
        // 2. Timeouts.
        let now = Instant::now();
        if st.inb.is_empty() {
            st.partial_since = None;
        } else if st.partial_since.is_none() {
            st.partial_since = Some(now);
        }
        if st
            .partial_since
            .is_some_and(|t| now.duration_since(t) > shared.config.request_timeout)
        {
            break;
        }
        if st.requests == 0 && now >= first_deadline {
            break;
        }
        let silent = now.duration_since(st.last_rx);
        match &st.session {
            None if silent > shared.config.idle_timeout => break,
            Some(s) if !s.has_data() && silent > shared.config.session_timeout => break,
            _ => {}
        }
        // 3. One data packet.
        if st.session.as_ref().is_some_and(Session::has_data) && st.send_packet().is_err() {
            break;
        }
    }
    if let Conn::Tls(s) = &mut st.conn {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    let _ = st.conn.tcp().shutdown(std::net::Shutdown::Both);
}

/// Raise the calling thread's nice value by `n` (best effort: a failure
/// leaves the priority as it was, which only costs latency).
#[cfg(target_os = "linux")]
fn lower_thread_priority(n: i32) {
    use rustix::{process, thread};
    if n <= 0 {
        return;
    }
    let tid = Some(thread::gettid());
    if let Ok(now) = process::getpriority_process(tid) {
        let _ = process::setpriority_process(tid, (now + n).min(19));
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority(_n: i32) {}

fn header_str<'r>(req: &'r Request<Vec<u8>>, name: &HeaderName) -> Option<&'r str> {
    req.header(name).map(|v| v.as_str())
}

impl<'a> ConnState<'a> {
    fn flush_out(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.conn.write_all(&self.out)?;
            self.conn.flush()?;
            self.out.clear();
        }
        Ok(())
    }

    fn reply_error(&mut self, status: u16, cseq: Option<&str>) {
        let resp = response(status, cseq).empty();
        let _ = resp.write(&mut self.out);
        let _ = self.flush_out();
    }

    /// Handle every complete item in the input; false: close the connection.
    fn process_input(&mut self) -> bool {
        let limits = self.shared.config.limits;
        loop {
            let (req, used) = match proto::decode(&self.inb, &limits) {
                Ok(None) => return true,
                Ok(Some((Frame::Data { .. }, used))) => (None, used),
                Ok(Some((Frame::Request(r), used))) => (Some(r), used),
                // A client does not send responses: a protocol error.
                Ok(Some((Frame::Response(_), _))) | Err(DecodeError::Malformed) => {
                    self.reply_error(400, None);
                    return false;
                }
                Err(_) => {
                    self.reply_error(413, None);
                    return false;
                }
            };
            self.inb.drain(..used.min(self.inb.len()));
            if let Some(req) = req {
                self.handle(&req);
                if self.close_after_flush {
                    return false;
                }
            }
        }
    }

    fn handle(&mut self, req: &Request<Vec<u8>>) {
        self.requests += 1;
        let cseq = header_str(req, &headers::CSEQ)
            .map(str::trim)
            .filter(|c| !c.is_empty() && c.len() <= 10 && c.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned);
        let Some(cseq) = cseq else {
            self.reply_error(400, None);
            return;
        };
        let c = Some(cseq.as_str());
        if req.version() != Version::V1_0 {
            return self.send(response(505, c).empty());
        }
        if let Some(req_opt) = header_str(req, &headers::REQUIRE) {
            let resp = response(551, c)
                .header(headers::UNSUPPORTED, req_opt)
                .empty();
            return self.send(resp);
        }
        // A Session header must name this connection's session.
        let session_hdr = header_str(req, &headers::SESSION)
            .map(|s| s.split(';').next().unwrap_or_default().trim().to_owned());
        if let Some(id) = &session_hdr
            && self.session.as_ref().is_none_or(|s| &s.id != id)
        {
            return self.send(response(454, c).empty());
        }
        let tag = cseq.parse::<u32>().unwrap_or(0);
        match req.method() {
            Method::Options => {
                let resp = response(200, c).header(headers::PUBLIC, PUBLIC).empty();
                self.send(resp);
            }
            Method::Describe => self.describe(req, &cseq),
            Method::Setup => self.setup(req, &cseq),
            Method::Play | Method::Pause | Method::Teardown | Method::SetParameter
                if session_hdr.is_none() =>
            {
                let status = if self.session.is_some() { 454 } else { 455 };
                self.send(response(status, c).empty());
            }
            Method::Play => self.play(req, &cseq),
            Method::Pause => {
                if let Some(s) = &mut self.session {
                    s.playing = false;
                }
                self.send(response(200, c).empty());
            }
            Method::Teardown => {
                self.session = None;
                self.send(response(200, c).empty());
            }
            Method::SetParameter => self.set_parameter(req, &cseq, tag),
            Method::GetParameter => self.get_parameter(req, &cseq),
            _ => self.send(response(501, c).header(headers::PUBLIC, PUBLIC).empty()),
        }
    }

    fn send<B: AsRef<[u8]>>(&mut self, resp: Response<B>) {
        let _ = resp.write(&mut self.out);
    }

    fn url_path(req: &Request<Vec<u8>>) -> Option<String> {
        req.request_uri().map(|u| u.path().to_owned())
    }

    /// The gate's verdict on `path` for this request; an answer was sent
    /// if it refused.
    fn gated(&mut self, req: &Request<Vec<u8>>, path: &str, cseq: &str) -> bool {
        let Some(gate) = &self.shared.config.gate else {
            return true;
        };
        let auth = req
            .header(&headers::AUTHORIZATION)
            .map(|v| v.as_str().as_bytes().to_vec());
        let tls = matches!(self.conn, Conn::Tls(_));
        match gate.check(path, auth.as_deref(), self.peer, tls) {
            Ok(()) => true,
            Err(status) => {
                let mut r = response(status, Some(cseq));
                if status == 401 {
                    r = r.header(headers::WWW_AUTHENTICATE, "Basic realm=\"sft\"");
                }
                self.send(r.empty());
                false
            }
        }
    }

    fn describe(&mut self, req: &Request<Vec<u8>>, cseq: &str) {
        let c = Some(cseq);
        let Some(path) = Self::url_path(req) else {
            return self.send(response(400, c).empty());
        };
        if !self.gated(req, &path, cseq) {
            return;
        }
        let catalog = &self.shared.catalog;
        let found = resolve_url(&catalog.root, &path)
            .ok()
            .and_then(|(p, v)| catalog.resolve(&p, v));
        let Some(info) = found else {
            return self.send(response(404, c).empty());
        };
        let base = req
            .request_uri()
            .map(|u| {
                let s = u.as_str().to_owned();
                if s.ends_with('/') { s } else { s + "/" }
            })
            .unwrap_or_default();
        let sdp = sdp_for(&info);
        let resp = response(200, c)
            .header(headers::CONTENT_TYPE, "application/sdp")
            .header(headers::CONTENT_BASE, base)
            .build(sdp);
        self.send(resp);
    }

    fn setup(&mut self, req: &Request<Vec<u8>>, cseq: &str) {
        let c = Some(cseq);
        if self.session.is_some() {
            return self.send(response(459, c).empty());
        }
        let Some(path) = Self::url_path(req) else {
            return self.send(response(400, c).empty());
        };
        if !self.gated(req, &path, cseq) {
            return;
        }
        // Transport: RTP/AVP/TCP with interleaved channels only.
        let channel = match req.typed_header::<Transports>() {
            Ok(Some(ts)) => ts.iter().find_map(|t| match t {
                Transport::Rtp(rtp)
                    if matches!(
                        rtp.lower_transport,
                        Some(headers::transport::RtpLowerTransport::Tcp)
                    ) =>
                {
                    Some(rtp.params.interleaved.map_or(0, |(a, _)| a))
                }
                _ => None,
            }),
            Ok(None) => return self.send(response(400, c).empty()),
            Err(_) => return self.send(response(400, c).empty()),
        };
        let Some(channel) = channel else {
            return self.send(response(461, c).empty());
        };
        let catalog = &self.shared.catalog;
        let found = match resolve_url(&catalog.root, &path) {
            Ok((p, v)) => catalog.resolve(&p, v).map(|i| (i, v)),
            Err(_) => None,
        };
        let Some((mut info, wanted)) = found else {
            return self.send(response(404, c).empty());
        };
        // Pin the file: the session streams what it opened, whatever
        // happens to the content root afterwards.
        let Ok(file) = File::open(&info.path) else {
            return self.send(response(404, c).empty());
        };
        let fresh = file.metadata().is_ok_and(|m| same_stat(&info, &m));
        if !fresh {
            match read_info(&file, &info.path) {
                Some(i) if wanted.is_none_or(|v| v == i.version_guid) => info = Arc::new(i),
                _ => return self.send(response(404, c).empty()),
            }
        }
        let sessions = &self.shared.life.sessions;
        if sessions.fetch_add(1, Ordering::AcqRel) >= self.shared.config.max_sessions {
            sessions.fetch_sub(1, Ordering::AcqRel);
            return self.send(response(503, c).header(headers::RETRY_AFTER, "1").empty());
        }
        let guard = CountGuard(sessions);
        let r = self.shared.random_u64();
        let id = format!("{r:016X}");
        let ssrc = (r >> 32) as u32 ^ r as u32;
        let seq = (r >> 16) as u16;
        let timeout = self.shared.config.session_timeout.as_secs().max(1);
        let transport = format!(
            "RTP/AVP/TCP;unicast;interleaved={channel}-{};ssrc={ssrc:08X}",
            channel.wrapping_add(1)
        );
        let url = req.request_uri().map(|u| u.to_string()).unwrap_or_default();
        let resp = response(200, c)
            .header(headers::SESSION, format!("{id};timeout={timeout}"))
            .header(headers::TRANSPORT, transport)
            .header(
                x_header("x-Sft-Version-Guid"),
                info.version_guid.to_string(),
            )
            .header(x_header("x-Sft-Package-Version"), info.version.to_string())
            .header(x_header("x-Sft-Length"), info.len.to_string())
            .empty();
        self.send(resp);
        self.session = Some(Session {
            id,
            file,
            info,
            url,
            channel,
            ssrc,
            seq,
            started: Instant::now(),
            playing: false,
            background: VecDeque::new(),
            fetches: VecDeque::new(),
            pending_ranges: 0,
            pending_bytes: 0,
            urgent: false,
            urgent_gate: &self.shared.urgent,
            _guard: guard,
        });
    }

    fn play(&mut self, req: &Request<Vec<u8>>, cseq: &str) {
        let c = Some(cseq);
        let Some(s) = &mut self.session else {
            return self.send(response(455, c).empty());
        };
        let len = s.info.len;
        let ranges = match header_str(req, &x_header("x-Sft-Range")) {
            None => std::iter::once(0..len).collect(),
            Some(v) => match proto::parse_ranges(v, len) {
                Ok(r) => merge_overlapping(r),
                Err(RangeListError::Unsatisfiable) => {
                    return self.send(response(457, c).empty());
                }
                Err(_) => return self.send(response(400, c).empty()),
            },
        };
        s.background = ranges.into();
        s.playing = true;
        let rtptime = s.timestamp();
        let info = format!("url={};seq={};rtptime={rtptime}", s.url, s.seq);
        let resp = response(200, c)
            .header(headers::RANGE, "npt=0.000-")
            .header(headers::RTP_INFO, info)
            .header(headers::SESSION, s.id.clone())
            .empty();
        self.send(resp);
    }

    fn set_parameter(&mut self, req: &Request<Vec<u8>>, cseq: &str, tag: u32) {
        let c = Some(cseq);
        let Some(s) = &mut self.session else {
            return self.send(response(455, c).empty());
        };
        let Some(value) = header_str(req, &x_header("x-Sft-Fetch")) else {
            let status = if req.body().is_empty() { 200 } else { 451 };
            return self.send(response(status, c).empty());
        };
        if !s.playing {
            return self.send(response(455, c).empty());
        }
        let ranges = match proto::parse_ranges(value, s.info.len) {
            Ok(r) => merge_overlapping(r),
            Err(RangeListError::Unsatisfiable) => return self.send(response(457, c).empty()),
            Err(_) => return self.send(response(400, c).empty()),
        };
        let bytes = ranges.iter().map(|r| r.end - r.start).sum::<u64>();
        if s.pending_ranges + ranges.len() > MAX_PENDING_RANGES
            || s.pending_bytes.saturating_add(bytes) > max_pending_bytes(s.info.len)
        {
            return self.send(response(503, c).empty());
        }
        s.pending_ranges += ranges.len();
        s.pending_bytes += bytes;
        s.fetches.push_back(Fetch {
            tag: tag.max(1),
            ranges: ranges.into(),
        });
        s.sync_urgent();
        let id = s.id.clone();
        self.send(response(200, c).header(headers::SESSION, id).empty());
    }

    fn get_parameter(&mut self, req: &Request<Vec<u8>>, cseq: &str) {
        let c = Some(cseq);
        let body = String::from_utf8_lossy(req.body()).into_owned();
        if body.trim().is_empty() {
            return self.send(response(200, c).empty());
        }
        let pinned = match &self.session {
            Some(s) => Some(Arc::clone(&s.info)),
            None => {
                // Without a session the answer names a package's versions:
                // the gate decides, as for DESCRIBE.
                if let Some(path) = Self::url_path(req)
                    && !self.gated(req, &path, cseq)
                {
                    return;
                }
                let catalog = &self.shared.catalog;
                Self::url_path(req)
                    .and_then(|p| resolve_url(&catalog.root, &p).ok())
                    .and_then(|(p, v)| catalog.resolve(&p, v))
            }
        };
        let Some(pinned) = pinned else {
            return self.send(response(404, c).empty());
        };
        let latest = self
            .shared
            .catalog
            .latest(pinned.package_guid)
            .unwrap_or_else(|| Arc::clone(&pinned));
        let mut answer = String::new();
        for name in body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(16)
        {
            let value = match name.to_ascii_lowercase().as_str() {
                "x-sft-version" => pinned.version.to_string(),
                "x-sft-version-guid" => pinned.version_guid.to_string(),
                "x-sft-latest-version" => latest.version.to_string(),
                "x-sft-latest-version-guid" => latest.version_guid.to_string(),
                _ => continue,
            };
            answer.push_str(&format!("{name}: {value}\r\n"));
        }
        let resp = response(200, c)
            .header(headers::CONTENT_TYPE, "text/parameters")
            .build(answer.into_bytes());
        self.send(resp);
    }

    /// Send the next packet: a pending fetch first, else the background.
    fn send_packet(&mut self) -> io::Result<()> {
        let Some(s) = &mut self.session else {
            return Ok(());
        };
        s.sync_urgent();
        if s.fetches.is_empty() && s.urgent_gate.pending() {
            // Another session has an out-of-sequence fetch pending: hold
            // the background stream back (bounded) so the CPU and the link
            // go to that fetch first. Parked, not polling: the last fetch
            // to finish wakes everyone.
            s.urgent_gate.wait_clear(URGENT_MAX_WAIT);
        }
        let (range, tag, last_of_range, end) = if let Some(f) = s.fetches.front_mut() {
            let Some(r) = f.ranges.front_mut() else {
                s.fetches.pop_front();
                return Ok(());
            };
            let take = (r.end - r.start).min(SERVER_PACKET_DATA as u64);
            let piece = r.start..r.start + take;
            r.start += take;
            let lor = r.start >= r.end;
            let tag = f.tag;
            if lor {
                f.ranges.pop_front();
                s.pending_ranges = s.pending_ranges.saturating_sub(1);
            }
            let end = f.ranges.is_empty();
            if end {
                s.fetches.pop_front();
            }
            (piece, tag, lor, end)
        } else {
            let Some(r) = s.background.front_mut() else {
                return Ok(());
            };
            let take = (r.end - r.start).min(SERVER_PACKET_DATA as u64);
            let piece = r.start..r.start + take;
            r.start += take;
            let lor = r.start >= r.end;
            if lor {
                s.background.pop_front();
            }
            (piece, 0, lor, s.background.is_empty())
        };
        if tag == 0 && !self.niced {
            self.niced = true;
            lower_thread_priority(self.shared.config.background_nice);
        }
        if tag != 0 {
            s.pending_bytes = s.pending_bytes.saturating_sub(range.end - range.start);
        }
        if tag == 0 || s.fetches.is_empty() {
            s.sync_urgent();
        }
        let n = (range.end - range.start) as usize;
        let header = PacketHeader {
            seq: s.seq,
            timestamp: s.timestamp(),
            ssrc: s.ssrc,
            marker: last_of_range,
            offset: range.start,
            tag,
            flags: if last_of_range { FLAG_LAST_OF_RANGE } else { 0 }
                | if end { FLAG_END } else { 0 },
        };
        s.seq = s.seq.wrapping_add(1);
        let frame_len = (PACKET_PREFIX_LEN - 4 + n) as u16;
        let mut prefix = [0u8; PACKET_PREFIX_LEN];
        prefix[0] = b'$';
        prefix[1] = s.channel;
        prefix[2..4].copy_from_slice(&frame_len.to_be_bytes());
        prefix[4..].copy_from_slice(&header.encode());
        match &self.conn {
            // Plain TCP on Linux: the prefix held back with MSG_MORE, the
            // payload by sendfile(2) straight from the page cache, as the
            // HTTP server sends bodies.
            #[cfg(target_os = "linux")]
            Conn::Plain(sock) => {
                serve::send_more(sock, &prefix)?;
                let mut sent = 0;
                serve::sendfile_all(sock, &s.file, range.clone(), &mut sent)?;
            }
            _ => {
                if self.packet.len() < PACKET_PREFIX_LEN + n {
                    self.packet.resize(PACKET_PREFIX_LEN + n, 0);
                }
                let buf = self
                    .packet
                    .get_mut(..PACKET_PREFIX_LEN + n)
                    .ok_or_else(|| io::Error::other("packet buffer"))?;
                let (head, data) = buf.split_at_mut(PACKET_PREFIX_LEN);
                read_exact_at(&s.file, data, range.start)?;
                head.copy_from_slice(&prefix);
                self.conn.write_all(buf)?;
            }
        }
        if tag == 0 && end {
            // The background stream is over: RTCP sender report + BYE, so
            // media clients (ffprobe, GStreamer) see the end of stream.
            let bye = rtcp_bye(s.ssrc, header.timestamp, s.seq, range.end);
            let mut frame = vec![b'$', s.channel.wrapping_add(1), 0, bye.len() as u8];
            frame.extend_from_slice(&bye);
            self.conn.write_all(&frame)?;
        }
        if let Conn::Tls(t) = &mut self.conn {
            t.flush()?;
        }
        Ok(())
    }
}

impl Session<'_> {
    /// Count in [`UrgentGate`] while a demand-sized fetch is pending
    /// (bulk fetches, as a client streaming a whole package on demand
    /// sends, do not hold other sessions back).
    fn sync_urgent(&mut self) {
        let want = !self.fetches.is_empty() && self.pending_bytes <= URGENT_MAX_BYTES;
        if want != self.urgent {
            self.urgent = want;
            if want {
                self.urgent_gate.enter();
            } else {
                self.urgent_gate.leave();
            }
        }
    }

    fn timestamp(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }
}

/// Most fetch bytes one session may have pending for a package of `len`
/// bytes: a client never needs more than the package twice over (one bulk
/// request and on-demand ones beside it).
fn max_pending_bytes(len: u64) -> u64 {
    len.saturating_mul(MAX_PENDING_PACKAGES)
}

/// A parsed range list with overlapping ranges merged (sorted then), so a
/// request never asks for a byte twice; without overlaps the client's order
/// is kept. Adjacent ranges stay separate: each still ends with its own
/// `LAST_OF_RANGE` packet and no packet spans two ranges a client listed.
fn merge_overlapping(ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let merged = crate::proto::http_range::sort_and_merge(ranges.clone(), false);
    if merged.len() == ranges.len() {
        ranges
    } else {
        merged
    }
}

/// An RTCP compound packet: a sender report (no report blocks) and a BYE.
fn rtcp_bye(ssrc: u32, rtptime: u32, packets: u16, octets: u64) -> [u8; 36] {
    let mut p = [0u8; 36];
    p[0] = 0x80;
    p[1] = 200;
    p[3] = 6;
    p[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let ntp_secs = (now.as_secs() + 2_208_988_800) as u32;
    let ntp_frac = ((u64::from(now.subsec_nanos()) << 32) / 1_000_000_000) as u32;
    p[8..12].copy_from_slice(&ntp_secs.to_be_bytes());
    p[12..16].copy_from_slice(&ntp_frac.to_be_bytes());
    p[16..20].copy_from_slice(&rtptime.to_be_bytes());
    p[20..24].copy_from_slice(&u32::from(packets).to_be_bytes());
    p[24..28].copy_from_slice(&(octets as u32).to_be_bytes());
    p[28] = 0x81;
    p[29] = 203;
    p[31] = 1;
    p[32..36].copy_from_slice(&ssrc.to_be_bytes());
    p
}

/// The SDP of `docs/RTSP.md` §3, written by `sdp-types`.
fn sdp_for(info: &PkgInfo) -> Vec<u8> {
    use sdp_types::{Attribute, Media, Origin, Session, Time};
    let attr = |name: &str, value: String| Attribute {
        attribute: name.to_owned(),
        value: Some(value),
    };
    let vg_hex = info.version_guid.to_hex();
    let name: String = info
        .name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let session = Session {
        origin: Origin {
            username: None,
            sess_id: vg_hex.get(..16).unwrap_or("0").to_owned(),
            sess_version: u64::from(info.version),
            nettype: "IN".into(),
            addrtype: "IP4".into(),
            unicast_address: "0.0.0.0".into(),
        },
        session_name: if name.trim().is_empty() {
            "sft package".into()
        } else {
            name
        },
        session_description: None,
        uri: None,
        emails: vec![],
        phones: vec![],
        connection: None,
        bandwidths: vec![],
        times: vec![Time {
            start_time: 0,
            stop_time: 0,
            repeats: vec![],
        }],
        time_zones: vec![],
        key: None,
        attributes: vec![
            attr("control", "*".into()),
            attr("tool", "sft".into()),
            attr("x-sft-package-guid", info.package_guid.to_string()),
            attr("x-sft-version-guid", info.version_guid.to_string()),
            attr("x-sft-version", info.version.to_string()),
            attr("x-sft-length", info.len.to_string()),
            attr("x-sft-block-size", info.block_size.to_string()),
            attr("x-sft-block-count", info.block_count.to_string()),
            attr("x-sft-fb1-blocks", info.fb1_blocks.to_string()),
            attr("x-sft-prologue-length", info.prologue_len.to_string()),
            attr(
                "x-sft-fb1-range",
                format!("{}-{}", info.prologue_len, info.fb1_end),
            ),
            attr("x-sft-launch-size", info.launch_size.to_string()),
            attr("x-sft-package-size", info.package_size.to_string()),
        ],
        medias: vec![Media {
            media: "application".into(),
            port: 0,
            num_ports: None,
            proto: "RTP/AVP".into(),
            fmt: "96".into(),
            media_title: None,
            connections: vec![],
            bandwidths: vec![],
            key: None,
            attributes: vec![
                attr("rtpmap", "96 X-SFT/1000".into()),
                attr("control", format!("version={vg_hex}")),
            ],
        }],
    };
    let mut out = Vec::new();
    let _ = session.write(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_needs_the_settle_time_unchanged() {
        let t0 = Instant::now();
        let settle = Duration::from_secs(2);
        // There at the first scan: offered at once.
        assert!(settled(None, t0, settle));
        // Seen (or changed) at t0: not before t0 + settle.
        assert!(!settled(Some(t0), t0, settle));
        assert!(!settled(Some(t0), t0 + Duration::from_millis(1999), settle));
        assert!(settled(Some(t0), t0 + settle, settle));
        // A clock read before `seen` (another thread) is not settled.
        assert!(!settled(Some(t0 + settle), t0, settle));
        assert!(settled(Some(t0), t0, Duration::ZERO));
    }

    #[test]
    fn overlapping_ranges_merge_adjacent_ones_stay() {
        assert_eq!(merge_overlapping(vec![50..60, 0..10]), vec![50..60, 0..10]);
        assert_eq!(merge_overlapping(vec![0..10, 10..20]), vec![0..10, 10..20]);
        assert_eq!(merge_overlapping(vec![0..100; 256]), vec![0..100]);
        assert_eq!(
            merge_overlapping(vec![50..60, 0..55, 70..80]),
            vec![0..60, 70..80]
        );
        assert_eq!(max_pending_bytes(u64::MAX), u64::MAX);
        assert_eq!(max_pending_bytes(1000), 2000);
    }
}
