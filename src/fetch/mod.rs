//! Fetch a package from any [`RangeSource`] into a local file, resumably:
//! the library behind `sft fetch`.
//!
//! [`fetch`] streams the package into a [`Cache`] (a sparse data file and
//! a presence bitmap, by default `OUT.partial` and `OUT.partial.blocks`
//! beside the output), prologue first, then FB1, then FB2; each block is
//! checked before it is written. When every block is present the file is
//! checked and renamed to the output atomically. Run again after an
//! interruption (an error, Ctrl-C, `kill -9`), it fetches only the blocks
//! the cache lacks, after checking with one 128-byte read that the source
//! still holds the same package.
//!
//! [`fetch_file`] does the same for a local package file, faster: each
//! piece is read into a buffer, written to the cache file from it by a
//! writer thread, and checked by the session from the same buffer, so the
//! bytes checked are the bytes written and the checks overlap the writes.
//! `sft fetch PATH` and `sft fetch file://...` use it. [`fetch_spec`] on a
//! plain `http://` URL does the same with the roles turned round: a
//! reader thread receives each piece from the socket straight into a
//! buffer (the HTTP client's bulk path), this thread writes it to the
//! cache file and then checks it from the same buffer.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use std::sync::{Arc, Mutex};
//! use sft::fetch::{fetch, FetchOptions};
//! use sft::stream::Event;
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![1u8; 300_000])?
//!     .write_to_vec()?;
//! let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
//! let out = dir.path().join("app.sft");
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = Arc::clone(&seen);
//! let options = FetchOptions::default().on_event(move |e| {
//!     if matches!(e, Event::LaunchReady | Event::Complete) {
//!         log.lock().unwrap().push(format!("{e:?}"));
//!     }
//! });
//! let report = fetch(&package, &out, options)?;
//! assert!(report.complete);
//! assert_eq!(report.bytes_transferred, package.len() as u64);
//! assert_eq!(*seen.lock().unwrap(), ["LaunchReady", "Complete"]);
//! assert_eq!(std::fs::read(&out).map_err(|e| sft::Error::io("read", e))?, package);
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

pub mod cache;
#[cfg(feature = "std")]
pub mod probe;
pub mod streaming;

use core::fmt;
#[cfg(feature = "file")]
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fetch::cache::{Cache, CacheOptions, CachePaths};
use crate::format::HEADER_LEN;
#[cfg(feature = "file")]
use crate::io::file::FileSource;
use crate::io::{RangeSource, drive};
#[cfg(feature = "file")]
use crate::stream::SchedulerLimits;
use crate::stream::{Event, SessionConfig, StreamSession, TransportError, TransportErrorKind};

/// A callback for [`Event`]s.
pub type EventCallback = Box<dyn FnMut(&Event) + Send>;

/// Options of [`fetch`], set by value.
#[derive(Default)]
pub struct FetchOptions {
    launch_only: bool,
    cache_dir: Option<PathBuf>,
    limit_rate: Option<u64>,
    session: SessionConfig,
    cache: CacheOptions,
    sources: SourceOptions,
    on_event: Option<EventCallback>,
}

/// How [`open_source_with`] (and [`fetch_spec`]) open URL sources: the
/// options of each network transport this build has.
///
/// ```
/// use sft::fetch::SourceOptions;
/// # #[cfg(feature = "http")]
/// let o = SourceOptions::default()
///     .http(sft::net::http::HttpOptions::default().max_attempts(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    #[cfg(feature = "http")]
    http: crate::net::http::HttpOptions,
    #[cfg(feature = "rtsp")]
    rtsp: crate::net::rtsp::RtspOptions,
    #[cfg(feature = "smb")]
    smb: crate::net::smb::SmbOptions,
    pipelined: bool,
}

impl SourceOptions {
    /// Options of `smb://` and UNC sources (port, credentials, timeouts).
    #[cfg(feature = "smb")]
    #[must_use]
    pub fn smb(mut self, options: crate::net::smb::SmbOptions) -> Self {
        self.smb = options;
        self
    }

    /// Options of `rtsp://` and `rtsps://` sources (timeouts, attempts, CA
    /// file, pipeline depth).
    #[cfg(feature = "rtsp")]
    #[must_use]
    pub fn rtsp(mut self, options: crate::net::rtsp::RtspOptions) -> Self {
        self.rtsp = options;
        self
    }

    /// Receive on a second thread while the session checks and writes
    /// ([`Pipelined`](crate::io::pipelined::Pipelined)); [`fetch_spec`]
    /// applies it to URL sources. Off by default: the kernel's socket
    /// buffers already receive while the session checks, and on a 2-core
    /// machine serving itself over loopback the extra copy and thread made
    /// a 275 MB fetch from nginx slower (0.26–0.32 s against 0.20–0.21 s).
    #[must_use]
    pub fn pipelined(mut self, on: bool) -> Self {
        self.pipelined = on;
        self
    }

    /// Options of `http://` and `https://` sources (timeouts, retries, CA
    /// file, credentials).
    #[cfg(feature = "http")]
    #[must_use]
    pub fn http(mut self, options: crate::net::http::HttpOptions) -> Self {
        self.http = options;
        self
    }
}

impl fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("launch_only", &self.launch_only)
            .field("cache_dir", &self.cache_dir)
            .field("limit_rate", &self.limit_rate)
            .field("session", &self.session)
            .field("cache", &self.cache)
            .field("sources", &self.sources)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

impl FetchOptions {
    /// Stop once FB1 is cached (launch-ready); the output is written by a
    /// later run that fetches the rest.
    pub fn launch_only(mut self, on: bool) -> Self {
        self.launch_only = on;
        self
    }
    /// Keep the cache files in `dir` instead of beside the output.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
    /// Transfer at most `bytes_per_sec` bytes per second (like curl's
    /// `--limit-rate`; 0 means unlimited): [`fetch`] reads through a
    /// [`ShapedSource`](crate::io::shaped::ShapedSource),
    /// [`fetch_file`] paces its copies. With a limit, [`fetch_file`] keeps
    /// the default request sizes.
    pub fn limit_rate(mut self, bytes_per_sec: u64) -> Self {
        self.limit_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }
    /// Session options (request sizes, limits, attempts, decoding).
    pub fn session(mut self, config: SessionConfig) -> Self {
        self.session = config;
        self
    }
    /// Cache options (checkpoints, syncing).
    pub fn cache(mut self, options: CacheOptions) -> Self {
        self.cache = options;
        self
    }
    /// How URL sources are opened by [`fetch_spec`].
    pub fn sources(mut self, options: SourceOptions) -> Self {
        self.sources = options;
        self
    }
    /// Call `f` with every event: [`Event::Progress`] (bytes and blocks),
    /// [`Event::LaunchReady`], [`Event::Complete`], [`Event::Failed`], and
    /// the rest. After a resume, a first `Progress` reports what the cache
    /// already held.
    pub fn on_event(mut self, f: impl FnMut(&Event) + Send + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchReport {
    /// Bytes the source delivered in this run (including the 128-byte
    /// identity check of a resume).
    pub bytes_transferred: u64,
    /// Blocks verified and written in this run.
    pub blocks_fetched: u32,
    /// Blocks the cache already held (re-verified).
    pub blocks_resumed: u32,
    /// Stored bytes of those blocks.
    pub bytes_resumed: u64,
    /// Blocks in the package.
    pub total_blocks: u32,
    /// Bytes of the package.
    pub total_bytes: u64,
    /// Time from the start to launch-ready (FB1 cached), if reached.
    pub launch_ready: Option<Duration>,
    /// Time of the whole run.
    pub total: Duration,
    /// True if the package is complete and at the output path.
    pub complete: bool,
    /// Where the cache files are (they are gone once complete).
    pub cache: CachePaths,
}

/// Fetch the package `source` serves into `out`; see the
/// [module docs](self).
///
/// # Errors
/// The stream's failure (a transport error, [`Error::Exhausted`] for a
/// block that stayed damaged, a malformed package), or [`Error::Io`] for
/// the cache and output files. The cache keeps what arrived, for a resume.
pub fn fetch(
    source: &dyn RangeSource,
    out: &Path,
    mut options: FetchOptions,
) -> Result<FetchReport, Error> {
    match options.limit_rate {
        Some(rate) => {
            let shaped = crate::io::shaped::ShapedSource::new(source, rate, Duration::ZERO);
            fetch_inner(&shaped, Fast::None, out, &mut options)
        }
        None => fetch_inner(source, Fast::None, out, &mut options),
    }
}

/// Fetch the local package file `source` into `out`, as [`fetch`] does
/// (same cache, resume, events, launch-only and errors), through the
/// **local fast path**: each requested range is read with `pread` in
/// pieces of whole blocks (256 KiB) into recycled buffers; a writer thread
/// writes each piece to the cache file from its buffer while this thread
/// reads the next ones; once a piece is written, the session checks it
/// from the same buffer (CRC, and the inflate check unless
/// [`SessionConfig::decode_blocks`]`(false)`). So the bytes checked are
/// exactly the bytes written, a block is recorded as present only after
/// its write (and persisted as present only after a data sync), and the
/// reads and checks of one core overlap the writes of the other: with the
/// page cache warm this is as fast as `cp`, which checks nothing. A block
/// that fails is read, written and checked again.
///
/// With the default [`SchedulerLimits`], requests are made larger in this
/// mode (8 MiB, up to 64 MiB in flight, so copies go on while a checkpoint
/// syncs the cache file); limits set through
/// [`FetchOptions::session`] are kept as given.
///
/// `sft fetch PATH` and `sft fetch file://...` use this; see
/// [`local_path`].
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::fetch::{fetch_file, FetchOptions};
/// use sft::io::file::FileSource;
///
/// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let (src, out) = (dir.path().join("src.sft"), dir.path().join("out.sft"));
/// sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![3u8; 300_000])?
///     .write_to_path(&src)?;
/// let report = fetch_file(&FileSource::open(&src)?, &out, FetchOptions::default())?;
/// assert!(report.complete);
/// let read = |p| std::fs::read(p).map_err(|e| sft::Error::io("read", e));
/// assert_eq!(read(&out)?, read(&src)?);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// As [`fetch`].
#[cfg(feature = "file")]
pub fn fetch_file(
    source: &FileSource,
    out: &Path,
    mut options: FetchOptions,
) -> Result<FetchReport, Error> {
    match source.file() {
        Some(file) => fetch_inner(source, Fast::File(source, file), out, &mut options),
        None => fetch_inner(source, Fast::None, out, &mut options),
    }
}

/// How many times [`fetch_spec`] starts over on a source that changed.
pub const MAX_RESTARTS: u32 = 5;

/// The wait before the first restart of [`fetch_spec`] on a source that
/// changed; it doubles for each further restart (0.1 s, 0.2 s, … 1.6 s:
/// about 3 s in all), long enough for a server-side copy to finish.
pub const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// Fetch the package `spec` names (a path, a `file://` URL, or a URL of a
/// transport this build has, such as `http(s)://` with feature `http`)
/// into `out`: local files through [`fetch_file`], anything else through
/// [`open_source`] and [`fetch`].
///
/// A source that reports it was replaced mid-stream
/// ([`TransportErrorKind::Changed`]: an HTTP ETag or Last-Modified that
/// moved, a length that changed, a local file that got shorter than its
/// package, or blocks that keep failing their checks while the source's
/// header is no longer the one fetched) is opened again after a back-off
/// ([`RESTART_BACKOFF`], doubling) and the fetch **starts over on the new
/// version**: the cache's identity check sees a different package and
/// discards the blocks of the old one, so a result never mixes blocks of
/// two versions. A file overwritten in place is briefly empty or missing,
/// so after a change an empty, truncated, missing or not-a-package source
/// is waited for the same way. That happens at most [`MAX_RESTARTS`]
/// times; then the fetch fails with a [`TransportErrorKind::Changed`]
/// error that says what the source was last.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::fetch::{fetch_spec, FetchOptions};
///
/// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let (src, out) = (dir.path().join("src.sft"), dir.path().join("out.sft"));
/// sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![5u8; 100_000])?
///     .write_to_path(&src)?;
/// let url = format!("file://{}", src.display());
/// assert!(fetch_spec(&url, &out, FetchOptions::default())?.complete);
///
/// // An empty file is not a package: an error, and no output.
/// std::fs::write(&src, b"").map_err(|e| sft::Error::io("write", e))?;
/// std::fs::remove_file(&out).map_err(|e| sft::Error::io("remove", e))?;
/// assert!(fetch_spec(&url, &out, FetchOptions::default()).is_err());
/// assert!(!out.exists());
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// As [`open_source`] and [`fetch`]; a source still changing (or not a
/// package) after [`MAX_RESTARTS`] restarts fails with a
/// [`TransportErrorKind::Changed`] error naming the last problem.
pub fn fetch_spec(spec: &str, out: &Path, mut options: FetchOptions) -> Result<FetchReport, Error> {
    let mut restarts = 0;
    loop {
        let result = fetch_once(spec, out, &mut options);
        let Err(e) = result else {
            return result;
        };
        let changed = match &e {
            Error::Transport(t) => t.kind() == TransportErrorKind::Changed,
            // Blocks that keep failing their CRC: damage, or a source
            // rewritten in place with a package of the same length.
            Error::Exhausted { .. } => header_moved(spec, out, &options),
            _ => false,
        };
        // Right after a change, a source that is missing or not (yet) a
        // package is a copy still under way.
        let settling = restarts > 0 && not_a_package(&e);
        if !changed && !settling {
            return Err(e);
        }
        if restarts >= MAX_RESTARTS {
            let shown = crate::redact_url(spec);
            return Err(Error::Transport(
                TransportError::new(
                    TransportErrorKind::Changed,
                    format!("{shown}: still changing after {restarts} restarts (last: {e})"),
                )
                .with_source(e),
            ));
        }
        std::thread::sleep(RESTART_BACKOFF * (1 << restarts));
        restarts += 1;
    }
}

/// After a block kept failing its checks: does the source now start with
/// another header than the package being fetched (whose prologue is at the
/// start of the cache's data file)? Then it was replaced, not damaged.
fn header_moved(spec: &str, out: &Path, options: &FetchOptions) -> bool {
    let paths = CachePaths::for_output(out, options.cache_dir.as_deref());
    let mut cached = [0u8; HEADER_LEN];
    let Ok(file) = std::fs::File::open(&paths.data) else {
        return false;
    };
    if crate::fetch::cache::pread_exact(&file, 0, &mut cached).is_err() {
        return false;
    }
    let Ok(source) = open_source_with(spec, &options.sources) else {
        return false;
    };
    let mut head = [0u8; HEADER_LEN];
    source.read_exact_at(0, &mut head).is_ok() && head != cached
}

/// Whether `e` says the source is missing, too short or not a package:
/// what a source being overwritten looks like for a moment.
fn not_a_package(e: &Error) -> bool {
    match e {
        Error::Format(_) | Error::NotFound(_) => true,
        // A local file removed before its new copy is in place.
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        Error::Transport(t) => matches!(
            t.kind(),
            TransportErrorKind::NotFound | TransportErrorKind::RangeNotSatisfiable
        ),
        _ => false,
    }
}

/// One attempt of [`fetch_spec`]: a local file (opened again each time:
/// a file replaced by a rename is a new file) through the fast path, a URL
/// through its transport.
fn fetch_once(spec: &str, out: &Path, options: &mut FetchOptions) -> Result<FetchReport, Error> {
    #[cfg(feature = "file")]
    if let Some(path) = local_path(spec)? {
        let source = FileSource::open(&path)?;
        return match source.file() {
            Some(file) => fetch_inner(&source, Fast::File(&source, file), out, options),
            None => fetch_inner(&source, Fast::None, out, options),
        };
    }
    #[cfg(all(feature = "file", feature = "http"))]
    if crate::net::http::is_http_url(spec)
        && !options.sources.pipelined
        && options.limit_rate.is_none()
    {
        let source = crate::net::http::HttpSource::open(spec, &options.sources.http)?;
        let fast = if source.is_bulk() {
            Fast::Http(&source)
        } else {
            Fast::None
        };
        return fetch_inner(&source, fast, out, options);
    }
    let opened = open_source_with(spec, &options.sources)?;
    let source: Box<dyn RangeSource> = if options.sources.pipelined {
        Box::new(crate::io::pipelined::Pipelined::new(opened))
    } else {
        opened
    };
    match options.limit_rate {
        Some(rate) => {
            let shaped = crate::io::shaped::ShapedSource::new(&source, rate, Duration::ZERO);
            fetch_inner(&shaped, Fast::None, out, options)
        }
        None => fetch_inner(&source, Fast::None, out, options),
    }
}

/// Stream the package at `spec` (a URL, or a path) through the streaming
/// core and check all of it, storing nothing: the prologue's CRCs when it
/// is parsed, then every block's CRC and, unless `config` says CRC only,
/// that each compressed block inflates to its size. Returns the drive's
/// report and the session (its prologue and progress).
///
/// Over plain `http://` with the default limits this takes the HTTP
/// client's bulk path on two threads, as [`fetch_spec`] does: one
/// receives each piece into a recycled buffer while this one checks the
/// previous piece. Other sources go through [`drive::drive_with`].
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::fetch::{SourceOptions, verify_spec};
/// use sft::stream::SessionConfig;
///
/// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let path = dir.path().join("app.sft");
/// sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![7u8; 300_000])?
///     .write_to_path(&path)?;
/// let spec = path.to_str().unwrap();
/// let (report, session) =
///     verify_spec(spec, &SourceOptions::default(), SessionConfig::default(), &mut |_| {})?;
/// assert!(report.complete);
/// assert_eq!(session.progress().total_bytes, std::fs::metadata(&path).unwrap().len());
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// As [`open_source_with`]; a block that fails its checks on every
/// attempt, or a transport failure, ends the stream with that error; a
/// stream that stops short of the whole package (an empty source) is an
/// error too.
pub fn verify_spec(
    spec: &str,
    sources: &SourceOptions,
    config: SessionConfig,
    on_event: &mut dyn FnMut(&Event),
) -> Result<(drive::DriveReport, StreamSession), Error> {
    #[cfg(all(feature = "file", feature = "http"))]
    if crate::net::http::is_http_url(spec) && !sources.pipelined {
        let source = crate::net::http::HttpSource::open(spec, &sources.http)?;
        if source.is_bulk() {
            let config = if config.limits() == SchedulerLimits::default() {
                with_limits(config, http_limits())
            } else {
                config
            };
            let mut session = StreamSession::new(config);
            let report = local::drive_stream(&mut session, source.bulk(), None, on_event)?;
            return checked(report, session, &source);
        }
        let mut session = StreamSession::new(config);
        let report = drive::drive_with(
            &mut session,
            &source,
            &mut crate::stream::NullSink,
            on_event,
        )?;
        return checked(report, session, &source);
    }
    let opened = open_source_with(spec, sources)?;
    let source: Box<dyn RangeSource> = if sources.pipelined {
        Box::new(crate::io::pipelined::Pipelined::new(opened))
    } else {
        opened
    };
    let mut session = StreamSession::new(config);
    let report = drive::drive_with(
        &mut session,
        &*source,
        &mut crate::stream::NullSink,
        on_event,
    )?;
    checked(report, session, &*source)
}

/// `(report, session)` if the stream checked the whole package, else the
/// error of a stream that stopped short (an empty source, say).
fn checked(
    report: drive::DriveReport,
    session: StreamSession,
    source: &dyn RangeSource,
) -> Result<(drive::DriveReport, StreamSession), Error> {
    if report.complete {
        Ok((report, session))
    } else {
        Err(stopped_short(source, &session))
    }
}

/// `config` with the request sizes of `l`.
#[cfg(feature = "file")]
fn with_limits(config: SessionConfig, l: SchedulerLimits) -> SessionConfig {
    config
        .max_request_bytes(l.max_request_bytes)
        .fb1_request_bytes(l.fb1_request_bytes)
        .max_in_flight_requests(l.max_in_flight_requests)
        .max_in_flight_bytes(l.max_in_flight_bytes)
}

/// Request sizes of the local fast path (when the defaults are in use).
#[cfg(feature = "file")]
fn local_limits() -> SchedulerLimits {
    SchedulerLimits {
        max_request_bytes: 8 << 20,
        fb1_request_bytes: 8 << 20,
        max_in_flight_requests: 8,
        max_in_flight_bytes: 64 << 20,
    }
}

/// Request sizes of the HTTP bulk path (when the defaults are in use):
/// each request is one `GET` (with `If-Range`), so fewer, larger ones
/// keep the stream flowing; FB1 still comes first.
#[cfg(all(feature = "file", feature = "http"))]
fn http_limits() -> SchedulerLimits {
    SchedulerLimits {
        max_request_bytes: 64 << 20,
        fb1_request_bytes: 64 << 20,
        max_in_flight_requests: 4,
        max_in_flight_bytes: 256 << 20,
    }
}

/// The fast path a fetch takes, if any: see [`fetch_file`], and the
/// HTTP bulk path of [`fetch_spec`].
enum Fast<'a> {
    /// The session's requests go through [`drive::drive_with`].
    None,
    /// A local file: [`local::drive`] with `pread`.
    #[cfg(feature = "file")]
    File(&'a FileSource, &'a File),
    /// A plain `http://` source: [`local::drive`] reading the body of
    /// one long `GET` straight into its buffers.
    #[cfg(all(feature = "file", feature = "http"))]
    Http(&'a crate::net::http::HttpSource),
    #[cfg(not(feature = "file"))]
    #[allow(dead_code)]
    Never(core::marker::PhantomData<&'a ()>),
}

fn fetch_inner(
    source: &dyn RangeSource,
    local: Fast<'_>,
    out: &Path,
    options: &mut FetchOptions,
) -> Result<FetchReport, Error> {
    // The callback is lent to this run and given back for a restart.
    let mut callback = options.on_event.take();
    let result = fetch_run(source, local, out, options, &mut callback);
    options.on_event = callback;
    result
}

fn fetch_run(
    source: &dyn RangeSource,
    local: Fast<'_>,
    out: &Path,
    options: &FetchOptions,
    callback: &mut Option<EventCallback>,
) -> Result<FetchReport, Error> {
    let start = Instant::now();
    let paths = CachePaths::for_output(out, options.cache_dir.as_deref());
    let mut cache = Cache::open(paths.clone(), options.cache)?;
    #[allow(unused_mut)]
    let mut config = options.session.launch_only(options.launch_only);
    #[cfg(feature = "file")]
    if !matches!(local, Fast::None)
        && options.limit_rate.is_none()
        && config.limits() == SchedulerLimits::default()
    {
        let l = match local {
            #[cfg(feature = "http")]
            Fast::Http(_) => http_limits(),
            _ => local_limits(),
        };
        config = with_limits(config, l);
    }
    let mut transferred = 0u64;
    let mut session = None;
    if let Some(prologue) = cache.resume_prologue() {
        if same_package(source, prologue, &mut transferred)?
            && let Ok(mut s) = StreamSession::with_prologue(config, prologue.to_vec())
        {
            for id in cache.present_blocks() {
                s.mark_present(id)?;
            }
            session = Some(s);
        }
        if session.is_none() {
            cache.discard()?;
        }
    }
    let (blocks_resumed, bytes_resumed) = cache.resumed();
    let resumed = session.is_some();
    let mut session = session.unwrap_or_else(|| StreamSession::new(config));
    let mut launch_ready = None;
    let mut fetched = 0u32;
    if resumed && let Some(f) = callback.as_mut() {
        f(&Event::Progress(session.progress()));
    }
    let mut on_event = |e: &Event| {
        match e {
            Event::LaunchReady => launch_ready = Some(start.elapsed()),
            Event::BlockReady(_) => fetched += 1,
            _ => {}
        }
        if let Some(f) = callback.as_mut() {
            f(e);
        }
    };
    let result = match local {
        #[cfg(feature = "file")]
        Fast::File(source, file) => {
            let pace = local::Pace::new(options.limit_rate);
            let reader = local::Reader::File { source, file };
            local::drive(&mut session, reader, &mut cache, pace, &mut on_event)
        }
        #[cfg(all(feature = "file", feature = "http"))]
        Fast::Http(source) => {
            local::drive_stream(&mut session, source.bulk(), Some(&mut cache), &mut on_event)
        }
        _ => drive::drive_with(&mut session, source, &mut cache, &mut on_event),
    };
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            // Nothing of a package was stored (the stream failed before a
            // prologue arrived: access denied, not found...): leave no
            // cache files behind.
            if cache.prologue().is_none() {
                drop(cache);
                let _ = std::fs::remove_file(&paths.data);
                let _ = std::fs::remove_file(&paths.bitmap);
            }
            return Err(e);
        }
    };
    transferred += report.bytes;
    let progress = session.progress();
    let complete = report.complete;
    let done = complete || (options.launch_only && session.is_launch_ready());
    if !done {
        // The stream went idle short of what was asked: never a success.
        let e = stopped_short(source, &session);
        if cache.prologue().is_none() {
            drop(cache);
            let _ = std::fs::remove_file(&paths.data);
            let _ = std::fs::remove_file(&paths.bitmap);
        } else {
            cache.checkpoint()?;
        }
        return Err(e);
    }
    if complete {
        cache.finish(out)?;
    } else {
        cache.checkpoint()?;
    }
    Ok(FetchReport {
        bytes_transferred: transferred,
        blocks_fetched: fetched,
        blocks_resumed,
        bytes_resumed,
        total_blocks: progress.total_blocks,
        total_bytes: progress.total_bytes,
        launch_ready,
        total: start.elapsed(),
        complete,
        cache: paths,
    })
}

/// Why a stream that did not fail stopped before it had what was asked:
/// a source too short to hold a package header (an empty file, say), or
/// a stream that ended with blocks missing.
fn stopped_short(source: &dyn RangeSource, session: &StreamSession) -> Error {
    if session.prologue().is_none()
        && let Ok(len) = source.len()
        && len < HEADER_LEN as u64
    {
        return crate::error::FormatError::new(
            crate::error::Region::Header,
            0,
            crate::error::FormatProblem::Truncated {
                needed: HEADER_LEN as u64,
                available: len,
            },
        )
        .into();
    }
    let p = session.progress();
    Error::Transport(TransportError::new(
        TransportErrorKind::Other,
        format!(
            "{}: the stream ended with {} of {} blocks",
            source.endpoint(),
            p.blocks,
            p.total_blocks
        ),
    ))
}

/// Does `source` still serve the package whose prologue the cache holds?
/// Compares the 128-byte headers (they carry the CRC of the section
/// table, which carries the CRCs of the sections) and the lengths.
pub(crate) fn same_package(
    source: &dyn RangeSource,
    prologue: &[u8],
    transferred: &mut u64,
) -> Result<bool, Error> {
    let Some(cached) = prologue.get(..HEADER_LEN) else {
        return Ok(false);
    };
    let mut head = [0u8; HEADER_LEN];
    match source.read_exact_at(0, &mut head) {
        Ok(()) => *transferred += HEADER_LEN as u64,
        Err(e) if e.kind() == TransportErrorKind::RangeNotSatisfiable => return Ok(false),
        Err(e) => return Err(Error::Transport(e)),
    }
    if head != cached {
        return Ok(false);
    }
    let expected = crate::format::Header::parse(cached).map(|h| h.package_len());
    match (source.len(), expected) {
        (Ok(len), Ok(exp)) => Ok(len == exp),
        (Err(e), _) if !e.is_retryable() => Err(Error::Transport(e)),
        _ => Ok(true),
    }
}

/// Open the source named by `spec`: a path, a `file://` URL, an
/// `http(s)://` URL (feature `http`) or an `rtsp(s)://` URL (feature
/// `rtsp`), with default [`SourceOptions`]. Schemes whose transport this
/// build lacks (`smb://`, or the others without their feature) are
/// recognised and refused clearly.
///
/// ```
/// use sft::fetch::open_source;
/// let e = open_source("gopher://example.com/app.sft").err().unwrap();
/// assert!(e.to_string().contains("unsupported scheme `gopher`"), "{e}");
/// # #[cfg(not(feature = "smb"))]
/// # {
/// let e = open_source("smb://server/share/app.sft").err().unwrap();
/// assert!(e.to_string().contains("built without `smb` support"), "{e}");
/// # }
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for an unknown or unsupported scheme; as
/// [`FileSource::open`](crate::io::file::FileSource::open) for
/// paths.
pub fn open_source(spec: &str) -> Result<Box<dyn RangeSource>, Error> {
    open_source_with(spec, &SourceOptions::default())
}

/// As [`open_source`], with the transports' options.
///
/// # Errors
/// As [`open_source`]; a URL source's own errors when it is opened (the
/// HTTP client asks for the length and the validators at once).
pub fn open_source_with(
    spec: &str,
    options: &SourceOptions,
) -> Result<Box<dyn RangeSource>, Error> {
    let _ = options;
    if let Some(path) = local_path(spec)? {
        return open_file(&path);
    }
    #[cfg(feature = "http")]
    if crate::net::http::is_http_url(spec) {
        return Ok(Box::new(crate::net::http::HttpSource::open(
            spec,
            &options.http,
        )?));
    }
    #[cfg(feature = "smb")]
    if crate::net::smb::is_smb_spec(spec) {
        return Ok(Box::new(crate::net::smb::SmbSource::open(
            spec,
            &options.smb,
        )?));
    }
    #[cfg(feature = "rtsp")]
    if crate::net::rtsp::is_rtsp_url(spec) {
        return Ok(Box::new(crate::net::rtsp::RtspSource::open(
            spec,
            &options.rtsp,
        )?));
    }
    Err(Error::invalid(format!(
        "`{}` names no source",
        crate::redact_url(spec)
    )))
}

/// The local file named by `spec` (a path, or a `file://` URL), to open
/// with [`FileSource::open`](crate::io::file::FileSource::open) and
/// give to `fetch_file`; `None` for a URL that a built-in transport
/// serves; an error for a URL whose transport this build lacks, as in
/// [`open_source`].
///
/// ```
/// use sft::fetch::local_path;
/// assert_eq!(local_path("file:///srv/a%20b.sft").unwrap().as_deref(), Some("/srv/a b.sft"));
/// assert_eq!(local_path("app.sft").unwrap().as_deref(), Some("app.sft"));
/// # #[cfg(not(feature = "smb"))]
/// assert!(local_path("smb://server/share/app.sft").is_err());
/// # #[cfg(feature = "smb")]
/// assert_eq!(local_path(r"\\server\share\app.sft").unwrap(), None);
/// # #[cfg(feature = "http")]
/// assert_eq!(local_path("https://example.com/app.sft").unwrap(), None);
/// ```
///
/// # Errors
/// As [`open_source`] for URLs that are not `file://`.
pub fn local_path(spec: &str) -> Result<Option<String>, Error> {
    // `smb://`, UNC `\\host\share\...` and `file://\\host\...`.
    #[cfg(feature = "smb")]
    if crate::net::smb::is_smb_spec(spec) {
        return Ok(None);
    }
    let (scheme, rest) = match spec.split_once("://") {
        Some((s, r))
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => (String::new(), spec),
    };
    let transport = match scheme.as_str() {
        "" | "file" => {
            let path = if scheme.is_empty() {
                rest.to_owned()
            } else {
                file_url_path(rest)?
            };
            return Ok(Some(path));
        }
        "http" | "https" if cfg!(feature = "http") => return Ok(None),
        "http" | "https" => "http",
        "rtsp" | "rtsps" if cfg!(feature = "rtsp") => return Ok(None),
        "rtsp" | "rtsps" => "rtsp",
        "smb" if cfg!(feature = "smb") => return Ok(None),
        "smb" => "smb",
        other => {
            return Err(Error::invalid(format!(
                "unsupported scheme `{other}` in `{}` (expected a path, file://, http(s)://, rtsp(s)://, smb://)",
                crate::redact_url(spec)
            )));
        }
    };
    Err(Error::Transport(TransportError::new(
        TransportErrorKind::Protocol,
        format!(
            "`{}`: this sft was built without `{transport}` support",
            crate::redact_url(spec)
        ),
    )))
}

#[cfg(feature = "file")]
fn open_file(path: &str) -> Result<Box<dyn RangeSource>, Error> {
    Ok(Box::new(crate::io::file::FileSource::open(path)?))
}

#[cfg(not(feature = "file"))]
fn open_file(path: &str) -> Result<Box<dyn RangeSource>, Error> {
    Err(Error::invalid(format!(
        "`{path}`: this sft was built without `file` support"
    )))
}

/// The path of a `file://` URL (after the `//`): `localhost` or an empty
/// host, percent-escapes decoded.
fn file_url_path(rest: &str) -> Result<String, Error> {
    let shown = || crate::redact_url(&format!("file://{rest}"));
    let path = if let Some(p) = rest.strip_prefix("localhost/") {
        format!("/{p}")
    } else if rest.starts_with('/') {
        rest.to_owned()
    } else {
        return Err(Error::invalid(format!(
            "{}: only local files (file:///path or file://localhost/path) are supported",
            shown()
        )));
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::invalid(format!("{}: not UTF-8", shown())))
}

/// The fast path of [`fetch_file`] and of plain `http://` fetches: reads
/// (`pread` from a file, or `recv` from one long HTTP response) and
/// checks on the calling thread, writes on a writer thread.
#[cfg(feature = "file")]
mod local {
    use std::collections::VecDeque;
    use std::fs::File;
    use std::io;
    use std::ops::Range;
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use crate::error::Error;
    use crate::fetch::cache::Cache;
    use crate::format::BlockId;
    use crate::io::RangeSource;
    use crate::io::drive::{DriveReport, pump};
    use crate::io::file::FileSource;
    #[cfg(feature = "http")]
    use crate::stream::NullSink;
    use crate::stream::{
        BlockSink, Event, FetchRequest, Priority, RequestId, StreamSession, TransportError,
        TransportErrorKind,
    };

    /// Unpaced reads are made this much (in whole blocks) at a time: small
    /// enough to stay in the L2 cache between the read, the check and the
    /// write.
    const PIECE: u64 = 256 * 1024;
    /// Paced reads: this much at a time.
    const PACED_PIECE: u64 = 64 * 1024;
    /// Pieces read ahead of the writer.
    const DEPTH: usize = 8;
    /// Pieces received at a time from HTTP ([`drive_stream`]): large
    /// pieces mean fewer `pwrite` calls and larger page-cache folios.
    #[cfg(feature = "http")]
    const STREAM_PIECE: u64 = 1 << 20;
    /// Pieces received ahead of the writer.
    #[cfg(feature = "http")]
    const STREAM_DEPTH: usize = 4;

    /// The reader's rate limit, if any.
    #[derive(Debug)]
    pub(super) struct Pace {
        rate: Option<u64>,
        start: Option<Instant>,
        total: u64,
    }

    impl Pace {
        pub(super) fn new(rate: Option<u64>) -> Self {
            Pace {
                rate,
                start: None,
                total: 0,
            }
        }

        /// Wait until the next piece is due.
        fn wait(&mut self) {
            let Some(rate) = self.rate else { return };
            let start = *self.start.get_or_insert_with(Instant::now);
            let due = Duration::from_secs_f64(self.total as f64 / rate as f64);
            if let Some(wait) = (start + due).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }

    /// A request being read, piece by piece.
    #[derive(Debug)]
    struct Job {
        id: RequestId,
        /// The next byte to read.
        at: u64,
        end: u64,
        /// The first block not yet read.
        next_block: u32,
        end_block: u32,
    }

    /// Where pieces are read from.
    pub(super) enum Reader<'a> {
        /// A local file, by `pread`.
        File {
            source: &'a FileSource,
            file: &'a File,
        },
    }

    impl Reader<'_> {
        fn source(&self) -> &dyn RangeSource {
            match self {
                Reader::File { source, .. } => *source,
            }
        }

        /// Fill `buf` with the bytes of `range` (as long as `buf`).
        fn read(&mut self, range: Range<u64>, buf: &mut [u8]) -> Result<(), TransportError> {
            match self {
                Reader::File { source, file } => {
                    crate::fetch::cache::pread_exact(file, range.start, buf).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            // Its length matched the package's at the
                            // start: the file was cut or replaced since.
                            TransportError::new(
                                TransportErrorKind::Changed,
                                format!(
                                    "{}: now ends before {} (changed during the fetch)",
                                    source.endpoint(),
                                    range.end
                                ),
                            )
                            .with_range(range)
                        } else {
                            source.error(e, Some(range))
                        }
                    })
                }
            }
        }
    }

    /// What the writer thread reports for a piece: written, or how much
    /// of it is in the file and the error.
    type Written = Result<(), (usize, io::Error)>;

    /// A piece read and handed to the writer, not yet checked.
    #[derive(Debug)]
    struct Piece {
        id: RequestId,
        at: u64,
        buf: Arc<Vec<u8>>,
    }

    /// Run `session` over the local file `source` (whose handle is `file`)
    /// into `cache`, as [`crate::io::drive::drive_with`] does over
    /// any source: the same events, failures and retries.
    ///
    /// Each piece is read (`pread`) into a buffer on this thread, written
    /// to the cache file from that buffer by a writer thread, and checked
    /// by the session from the same buffer once written: the bytes checked
    /// are the bytes written, a block is recorded as present only after
    /// its write, and reading and checking the next pieces overlap the
    /// writes on the second core.
    pub(super) fn drive(
        session: &mut StreamSession,
        reader: Reader<'_>,
        cache: &mut Cache,
        mut pace: Pace,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<DriveReport, Error> {
        let mut report = crate::io::drive::start(session, reader.source())?;
        let dst = cache
            .file()
            .try_clone()
            .map_err(|e| Error::io("opening the cache file again", e))?;
        let (job_tx, job_rx) = mpsc::sync_channel::<(u64, Arc<Vec<u8>>)>(DEPTH);
        let (done_tx, done_rx) = mpsc::channel::<Written>();
        let mut jobs = VecDeque::new();
        let mut pieces = VecDeque::new();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                // In the order sent: a piece is never written while an
                // earlier write of the same bytes is under way.
                for (at, buf) in job_rx {
                    let result = crate::fetch::cache::pwrite_all(&dst, at, &buf)
                        .map_err(|e| (crate::fetch::cache::written_prefix(&dst, at, &buf), e));
                    drop(buf);
                    if done_tx.send(result).is_err() {
                        break;
                    }
                }
            });
            let mut io = Io {
                reader,
                writer: &job_tx,
                written: &done_rx,
                pool: Vec::new(),
            };
            let result = run(
                session,
                cache,
                on_event,
                &mut report,
                &mut io,
                &mut pace,
                &mut jobs,
                &mut pieces,
            );
            // Let the writer finish (the scope joins it); leave the session
            // consistent for a later run.
            drop(job_tx);
            if result.is_err() {
                let mut ids: Vec<RequestId> = jobs
                    .iter()
                    .map(|j: &Job| j.id)
                    .chain(pieces.iter().map(|p: &Piece| p.id))
                    .collect();
                ids.dedup();
                for id in ids {
                    session.cancel(id);
                }
            }
            result
        })?;
        report.launch_ready = session.is_launch_ready();
        report.complete = session.is_complete();
        Ok(report)
    }

    /// The source, the writer and the buffers.
    struct Io<'a> {
        reader: Reader<'a>,
        writer: &'a mpsc::SyncSender<(u64, Arc<Vec<u8>>)>,
        written: &'a mpsc::Receiver<Written>,
        pool: Vec<Arc<Vec<u8>>>,
    }

    impl Io<'_> {
        /// A buffer of `len` bytes, recycled if one is free.
        fn buffer(&mut self, len: usize) -> Vec<u8> {
            let mut buf = self
                .pool
                .pop()
                .and_then(|a| Arc::try_unwrap(a).ok())
                .unwrap_or_default();
            buf.resize(len, 0);
            buf
        }

        /// Wait for the writer to finish the oldest piece: `Ok(None)`
        /// once written, `Ok(Some((n, e)))` if only its first `n` bytes
        /// are in the file.
        fn wait_written(&self) -> Result<Option<(usize, io::Error)>, Error> {
            match self.written.recv() {
                Ok(Ok(())) => Ok(None),
                Ok(Err(failed)) => Ok(Some(failed)),
                Err(_) => Err(Error::invalid("the writer thread stopped")),
            }
        }
    }

    /// The next piece of `job`: whole blocks, at least one, up to `step`
    /// bytes.
    fn next_piece(session: &StreamSession, job: &mut Job, step: u64) -> Range<u64> {
        let start = job.at;
        let mut end = start;
        while job.next_block < job.end_block {
            let Some(info) = session.block_info(BlockId(job.next_block)) else {
                break;
            };
            let r = info.stored_range();
            if end > start && r.end - start > step {
                break;
            }
            end = r.end.min(job.end);
            job.next_block += 1;
        }
        if end <= start {
            end = job.end;
        }
        job.at = end;
        start..end
    }

    /// Check the oldest piece once it is written.
    fn check_oldest(
        session: &mut StreamSession,
        cache: &mut Cache,
        io: &mut Io<'_>,
        pieces: &mut VecDeque<Piece>,
    ) -> Result<(), Error> {
        let Some(p) = pieces.front() else {
            return Ok(());
        };
        if let Some((n, e)) = io.wait_written()? {
            // A failed write (a full disk): the whole blocks that did reach
            // the file are checked and recorded, so a resume keeps them.
            let _ = session.on_data(p.id, p.at, &p.buf[..n], &mut cache.in_place());
            return Err(Error::io(
                format!("writing `{}`", cache.paths().data.display()),
                e,
            ));
        }
        // On an error, `drive` cancels the request (still listed).
        session.on_data(p.id, p.at, &p.buf, &mut cache.in_place())?;
        if let Some(p) = pieces.pop_front() {
            io.pool.push(p.buf);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        session: &mut StreamSession,
        cache: &mut Cache,
        on_event: &mut dyn FnMut(&Event),
        report: &mut DriveReport,
        io: &mut Io<'_>,
        pace: &mut Pace,
        jobs: &mut VecDeque<Job>,
        pieces: &mut VecDeque<Piece>,
    ) -> Result<(), Error> {
        let step = if pace.rate.is_some() {
            PACED_PIECE
        } else {
            PIECE
        };
        loop {
            if let Some(e) = pump(session, on_event) {
                return Err(e);
            }
            if session.is_complete() {
                return Ok(());
            }
            while let Some(req) = session.poll_fetch() {
                report.calls += 1;
                report.requests += 1;
                if req.priority == Priority::Prologue {
                    // Small and first: read it and let the cache write it
                    // (and size the file) as it always does.
                    prologue(session, io.reader.source(), cache, report, &req)?;
                    if let Some(e) = pump(session, on_event) {
                        return Err(e);
                    }
                    continue;
                }
                jobs.push_back(Job {
                    id: req.id,
                    at: req.range.start,
                    end: req.range.end,
                    next_block: req.blocks.start,
                    end_block: req.blocks.end,
                });
            }
            if pieces.len() >= DEPTH || (jobs.is_empty() && !pieces.is_empty()) {
                check_oldest(session, cache, io, pieces)?;
                continue;
            }
            let Some(job) = jobs.front_mut() else {
                // Idle (a launch-only stream after FB1) or failed.
                return Ok(());
            };
            let (id, range) = (job.id, next_piece(session, job, step));
            if job.at >= job.end {
                jobs.pop_front();
            }
            let len = usize::try_from(range.end - range.start)
                .map_err(|_| Error::invalid("a piece beyond the address space"))?;
            let mut buf = io.buffer(len);
            pace.wait();
            match io.reader.read(range.clone(), &mut buf) {
                Ok(()) => {
                    pace.total += len as u64;
                    report.bytes += len as u64;
                    let buf = Arc::new(buf);
                    if io.writer.send((range.start, Arc::clone(&buf))).is_err() {
                        return Err(Error::invalid("the writer thread stopped"));
                    }
                    pieces.push_back(Piece {
                        id,
                        at: range.start,
                        buf,
                    });
                }
                Err(error) => {
                    // What was read of this request is checked first; then
                    // the request fails (and its blocks are retried).
                    while pieces.iter().any(|p| p.id == id) {
                        check_oldest(session, cache, io, pieces)?;
                    }
                    jobs.retain(|j| j.id != id);
                    report.transport_failures += 1;
                    session.on_failure(id, &error);
                }
            }
        }
    }

    /// What the reader thread of [`drive_stream`] hands over.
    #[cfg(feature = "http")]
    enum Got {
        /// Bytes of request `id` at `at`.
        Piece {
            id: RequestId,
            at: u64,
            buf: Vec<u8>,
        },
        /// Request `id` failed; no more pieces of it follow.
        Failed {
            id: RequestId,
            error: TransportError,
        },
    }

    /// A request for the reader thread: its pieces (whole blocks) and
    /// its end.
    #[cfg(feature = "http")]
    type StreamJob = (RequestId, Vec<Range<u64>>, u64);

    /// Run `session` over an `http://` source on its bulk path into
    /// `cache`, as [`drive`] does over a file, with the roles turned
    /// round: a **reader thread** receives each piece (whole blocks, up
    /// to 256 KiB) straight from the socket into a recycled buffer, which
    /// is all `curl -o /dev/null` does, while this thread writes each
    /// piece to the cache file from that buffer and then has the session
    /// check it from the same buffer (CRC, inflate check), with the bytes
    /// still in this core's cache. So the bytes checked are the bytes
    /// written, a block is recorded as present only after its write and
    /// its check, and receiving overlaps writing and checking.
    #[cfg(feature = "http")]
    pub(super) fn drive_stream(
        session: &mut StreamSession,
        bulk: crate::net::http::BulkReader<'_>,
        cache: Option<&mut Cache>,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<DriveReport, Error> {
        let source = bulk.source();
        let mut report = crate::io::drive::start(session, source)?;
        let (job_tx, job_rx) = mpsc::channel::<StreamJob>();
        let (got_tx, got_rx) = mpsc::sync_channel::<Got>(STREAM_DEPTH);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let mut outstanding: Vec<RequestId> = Vec::new();
        std::thread::scope(|scope| {
            let mut bulk = bulk;
            scope.spawn(move || {
                for (id, pieces, until) in job_rx {
                    for r in pieces {
                        let mut buf = free_rx.try_recv().unwrap_or_default();
                        // Pieces are at most PIECE plus one block long.
                        buf.resize((r.end - r.start) as usize, 0);
                        let got = match bulk.read_exact_at(r.start, &mut buf, until) {
                            Ok(()) => Got::Piece {
                                id,
                                at: r.start,
                                buf,
                            },
                            Err(error) => Got::Failed { id, error },
                        };
                        let failed = matches!(got, Got::Failed { .. });
                        if got_tx.send(got).is_err() {
                            return;
                        }
                        if failed {
                            break;
                        }
                    }
                }
            });
            let got_rx = got_rx;
            let result = stream_run(
                session,
                source,
                cache,
                on_event,
                &mut report,
                &job_tx,
                &got_rx,
                &free_tx,
                &mut outstanding,
            );
            // Stop the reader (its next send fails), which the scope joins;
            // leave the session consistent for a later run.
            drop(job_tx);
            drop(got_rx);
            if result.is_err() {
                for id in outstanding.drain(..) {
                    session.cancel(id);
                }
            }
            result
        })?;
        report.launch_ready = session.is_launch_ready();
        report.complete = session.is_complete();
        Ok(report)
    }

    #[cfg(feature = "http")]
    #[allow(clippy::too_many_arguments)]
    fn stream_run(
        session: &mut StreamSession,
        source: &dyn RangeSource,
        mut cache: Option<&mut Cache>,
        on_event: &mut dyn FnMut(&Event),
        report: &mut DriveReport,
        jobs: &mpsc::Sender<StreamJob>,
        got: &mpsc::Receiver<Got>,
        free: &mpsc::Sender<Vec<u8>>,
        outstanding: &mut Vec<RequestId>,
    ) -> Result<(), Error> {
        loop {
            if let Some(e) = pump(session, on_event) {
                return Err(e);
            }
            if session.is_complete() {
                return Ok(());
            }
            while let Some(req) = session.poll_fetch() {
                report.calls += 1;
                report.requests += 1;
                if req.priority == Priority::Prologue {
                    let sink: &mut dyn BlockSink = match cache.as_deref_mut() {
                        Some(c) => c,
                        None => &mut NullSink,
                    };
                    prologue(session, source, sink, report, &req)?;
                    if let Some(e) = pump(session, on_event) {
                        return Err(e);
                    }
                    continue;
                }
                let mut job = Job {
                    id: req.id,
                    at: req.range.start,
                    end: req.range.end,
                    next_block: req.blocks.start,
                    end_block: req.blocks.end,
                };
                let mut pieces = Vec::new();
                while job.at < job.end {
                    pieces.push(next_piece(session, &mut job, STREAM_PIECE));
                }
                if jobs.send((req.id, pieces, req.range.end)).is_err() {
                    return Err(Error::invalid("the reader thread stopped"));
                }
                outstanding.push(req.id);
            }
            if outstanding.is_empty() {
                // Idle (a launch-only stream after FB1) or failed.
                return Ok(());
            }
            match got.recv() {
                Ok(Got::Piece { id, at, buf }) => {
                    report.bytes += buf.len() as u64;
                    // On an error, `drive_stream` cancels the request.
                    match cache.as_deref_mut() {
                        Some(cache) => {
                            if let Err(e) = crate::fetch::cache::pwrite_all(cache.file(), at, &buf)
                            {
                                // Keep the whole blocks that did reach the
                                // file (a full disk): checked and recorded.
                                let n = crate::fetch::cache::written_prefix(cache.file(), at, &buf);
                                let _ = session.on_data(id, at, &buf[..n], &mut cache.in_place());
                                return Err(Error::io(
                                    format!("writing `{}`", cache.paths().data.display()),
                                    e,
                                ));
                            }
                            session.on_data(id, at, &buf, &mut cache.in_place())?;
                        }
                        None => session.on_data(id, at, &buf, &mut NullSink)?,
                    }
                    if !session.is_in_flight(id) {
                        outstanding.retain(|&o| o != id);
                    }
                    let _ = free.send(buf);
                }
                Ok(Got::Failed { id, error }) => {
                    report.transport_failures += 1;
                    session.on_failure(id, &error);
                    outstanding.retain(|&o| o != id);
                }
                Err(_) => return Err(Error::invalid("the reader thread stopped")),
            }
        }
    }

    /// Serve a prologue request with a positional read.
    fn prologue(
        session: &mut StreamSession,
        source: &dyn RangeSource,
        sink: &mut dyn BlockSink,
        report: &mut DriveReport,
        req: &FetchRequest,
    ) -> Result<(), Error> {
        let Ok(len) = usize::try_from(req.range.end - req.range.start) else {
            return Err(Error::invalid("a prologue beyond the address space"));
        };
        let mut buf = vec![0u8; len];
        match source.read_exact_at(req.range.start, &mut buf) {
            Ok(()) => {
                if let Err(e) = session.on_data(req.id, req.range.start, &buf, sink) {
                    session.cancel(req.id);
                    return Err(e);
                }
                report.bytes += len as u64;
            }
            Err(e) => {
                report.transport_failures += 1;
                session.on_failure(req.id, &e);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls() {
        assert_eq!(
            file_url_path("/a%20b/c.sft").ok().as_deref(),
            Some("/a b/c.sft")
        );
        assert_eq!(file_url_path("localhost/x").ok().as_deref(), Some("/x"));
        assert!(file_url_path("host/x").is_err());
    }
}
