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
//! Every source goes through the one driver,
//! [`Driver`](crate::io::drive::Driver). A source that prefers streaming
//! reads (a local file, a plain `http://` server, an RTSP server) is read
//! pipelined: a reader thread reads each request in pieces of whole blocks
//! straight into recycled buffers, check threads check each piece (CRC-32,
//! and that compressed blocks inflate unless the session is CRC only), and
//! this thread has the cache write each checked piece in one `pwrite` and
//! record its blocks. So the bytes checked are the bytes written, a block
//! counts only once written, and receiving, inflating and writing use
//! every core. Other sources (SMB, which keeps several reads in flight
//! itself) are driven batch by batch.
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
#[cfg(feature = "file")]
pub mod delta;
#[cfg(feature = "std")]
pub mod probe;
pub mod streaming;

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::fetch::cache::{Cache, CacheOptions, CachePaths};
use crate::format::HEADER_LEN;
#[cfg(feature = "file")]
use crate::io::file::FileSource;
use crate::io::{RangeSource, drive};
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
    #[cfg(feature = "file")]
    base: Option<PathBuf>,
    base_checked: bool,
    #[cfg(feature = "sign")]
    trust: Option<(crate::sign::TrustPolicy, Option<crate::sign::Signature>)>,
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
    limit_rate: Option<u64>,
}

impl SourceOptions {
    /// Pace every source opened with these options to `bytes_per_sec`
    /// (0: unlimited), through a
    /// [`ShapedSource`](crate::io::shaped::ShapedSource): fetches, checks
    /// and reads alike.
    #[must_use]
    pub fn limit_rate(mut self, bytes_per_sec: u64) -> Self {
        self.limit_rate = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

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

    /// The options of `http://` and `https://` sources.
    #[cfg(feature = "http")]
    pub fn http_options(&self) -> &crate::net::http::HttpOptions {
        &self.http
    }

    /// The options of `rtsp://` and `rtsps://` sources.
    #[cfg(feature = "rtsp")]
    pub fn rtsp_options(&self) -> &crate::net::rtsp::RtspOptions {
        &self.rtsp
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
    /// Retry a source that is down or restarting for up to `window` from
    /// the start of an outage (default 60 s; `0`: fail at the first
    /// connection lost or refused): see [`SessionConfig::retry`]. Opening
    /// the source is retried within the same window.
    #[must_use]
    pub fn retry_for(mut self, window: Duration) -> Self {
        self.session = self.session.retry_for(window);
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
    /// `fetch_file` paces its copies. With a limit, `fetch_file` keeps
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
    /// An earlier version of the package (a local package file, or the
    /// output of an earlier fetch): every block whose BLAKE3 hash it holds
    /// is copied from it, checked against the new version's record, and
    /// not fetched ([`delta`]).
    #[cfg(feature = "file")]
    pub fn base(mut self, path: impl Into<PathBuf>) -> Self {
        self.base = Some(path.into());
        self
    }
    /// The base's blocks were checked in full when it was stored (it came
    /// from a fetch that decoded every block, or passed `verify`): a block
    /// copied from it is checked by CRC-32 and hash only, which prove it
    /// is those same bytes, not decoded again. The client store sets this
    /// for its own earlier versions. Default off: an arbitrary base's
    /// blocks are decoded as fetched ones are.
    pub fn base_checked(mut self, on: bool) -> Self {
        self.base_checked = on;
        self
    }
    /// Check the package against `policy` (with `signature`, the detached
    /// signature found for it) once its prologue arrives and before any
    /// block is used or stored; refused packages leave nothing behind.
    /// From then on every block is checked against its signed hash.
    #[cfg(feature = "sign")]
    pub fn trust(
        mut self,
        policy: crate::sign::TrustPolicy,
        signature: Option<crate::sign::Signature>,
    ) -> Self {
        self.trust = Some((policy, signature));
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
    /// Blocks copied from the base (`FetchOptions::base`), not fetched.
    pub blocks_reused: u32,
    /// Stored bytes of those blocks.
    pub bytes_reused: u64,
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
    fetch_paced(source, out, &mut options)
}

/// [`fetch_inner`] through a [`ShapedSource`](crate::io::shaped::ShapedSource)
/// when a rate limit is set.
fn fetch_paced(
    source: &dyn RangeSource,
    out: &Path,
    options: &mut FetchOptions,
) -> Result<FetchReport, Error> {
    match options.limit_rate {
        Some(rate) => {
            let shaped = crate::io::shaped::ShapedSource::new(source, rate, Duration::ZERO);
            fetch_inner(&shaped, out, options)
        }
        None => fetch_inner(source, out, options),
    }
}

/// Fetch the local package file `source` into `out`, as [`fetch`] does
/// (same cache, resume, events, launch-only and errors). A file is read
/// the way [`Driver`](crate::io::drive::Driver) reads every source that
/// prefers streaming reads: a reader thread `pread`s pieces of whole
/// blocks (512 KiB) into recycled buffers, check threads inflate the
/// compressed blocks of each piece, and this thread has the session check
/// every CRC and the cache write each block from the same buffer. So the
/// bytes checked are exactly the bytes written, a block is recorded as
/// present only after its write (and persisted as present only after a
/// data sync), and both cores work. A block that fails is read, written
/// and checked again.
///
/// With the default [`SchedulerLimits`], requests are made larger for a
/// file ([`RangeSource::preferred_limits`]: 8 MiB, up to 64 MiB in
/// flight, so copies go on while a checkpoint syncs the cache file);
/// limits set through [`FetchOptions::session`] are kept as given.
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
    fetch_paced(source, out, &mut options)
}

/// How many times [`fetch_spec`] starts over on a source that changed.
pub const MAX_RESTARTS: u32 = 5;

/// The wait before the first restart of [`fetch_spec`] on a source that
/// changed; it doubles for each further restart (0.1 s, 0.2 s, … 1.6 s:
/// about 3 s in all), long enough for a server-side copy to finish.
pub const RESTART_BACKOFF: Duration = Duration::from_millis(100);

/// Fetch the package `spec` names (a path, a `file://` URL, or a URL of a
/// transport this build has, such as `http(s)://` with feature `http`)
/// into `out`: local files through `fetch_file`, anything else through
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

/// One attempt of [`fetch_spec`]: the source is opened again each time
/// (a file replaced by a rename is a new file).
fn fetch_once(spec: &str, out: &Path, options: &mut FetchOptions) -> Result<FetchReport, Error> {
    let policy = options.session.get_retry();
    let mut callback = options.on_event.take();
    let opened = open_retrying(spec, &options.sources, policy, &mut |e| {
        if let Some(f) = callback.as_mut() {
            f(e);
        }
    });
    options.on_event = callback;
    fetch_paced(&*opened?, out, options)
}

/// [`open_source_with`], retried as a stream retries its source
/// ([`SessionConfig::retry`]): a server that is down or restarting
/// (connection refused or lost, a time-out) is tried again after a pause,
/// doubling, within the policy's window, each pause announced as an
/// [`Event::Retry`]; any other error (not found, permission denied, a bad
/// URL) at once. Wrapped in [`Pipelined`](crate::io::pipelined::Pipelined)
/// if `sources` asks for it.
fn open_retrying(
    spec: &str,
    sources: &SourceOptions,
    policy: crate::stream::RetryPolicy,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Box<dyn RangeSource>, Error> {
    let mut outage = crate::stream::Backoff::default();
    let opened = loop {
        match open_source_with(spec, sources) {
            Ok(s) => break s,
            Err(Error::Transport(t)) if t.is_retryable() => {
                let now = drive::now();
                let Some(at) = outage.failed(now, &policy) else {
                    let n = outage.failures();
                    return Err(Error::Transport(t.summary(&format!(
                        "still failing after {:.1} s and {n} attempts (the retry window is {:.1} s)",
                        outage.elapsed(now).as_secs_f64(),
                        policy.get_window().as_secs_f64()
                    ))));
                };
                let wait = at.saturating_sub(now);
                on_event(&Event::Retry {
                    wait,
                    failures: outage.failures(),
                    error: t.summary(""),
                });
                std::thread::sleep(wait);
            }
            Err(e) => return Err(e),
        }
    };
    Ok(if sources.pipelined {
        Box::new(crate::io::pipelined::Pipelined::new(opened))
    } else {
        opened
    })
}

/// Stream the package at `spec` (a URL, or a path) through the streaming
/// core and check all of it, storing nothing: the prologue's CRCs when it
/// is parsed, then every block's CRC and, unless `config` says CRC only,
/// that each compressed block inflates to its size. Returns the drive's
/// report and the session (its prologue and progress).
///
/// It runs the one driver ([`Driver`](crate::io::drive::Driver)) as
/// [`fetch_spec`] does, pipelined for sources that prefer streaming reads,
/// with the checks on every core and nothing stored.
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
    let source = open_retrying(spec, sources, config.get_retry(), on_event)?;
    let mut session = StreamSession::new(preferred(config, &*source));
    let report =
        drive::Driver::new(&*source).run(&mut session, &mut crate::stream::NullSink, on_event)?;
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

/// `config` with the request sizes `source` prefers
/// ([`RangeSource::preferred_limits`]) when the caller left the defaults.
fn preferred(config: SessionConfig, source: &dyn RangeSource) -> SessionConfig {
    match source.preferred_limits() {
        Some(l) if config.limits() == SchedulerLimits::default() => config
            .max_request_bytes(l.max_request_bytes)
            .fb1_request_bytes(l.fb1_request_bytes)
            .max_in_flight_requests(l.max_in_flight_requests)
            .max_in_flight_bytes(l.max_in_flight_bytes),
        _ => config,
    }
}

fn fetch_inner(
    source: &dyn RangeSource,
    out: &Path,
    options: &mut FetchOptions,
) -> Result<FetchReport, Error> {
    // The callback is lent to this run and given back for a restart.
    let mut callback = options.on_event.take();
    let result = fetch_run(source, out, options, &mut callback);
    options.on_event = callback;
    result
}

fn fetch_run(
    source: &dyn RangeSource,
    out: &Path,
    options: &FetchOptions,
    callback: &mut Option<EventCallback>,
) -> Result<FetchReport, Error> {
    let start = Instant::now();
    let paths = CachePaths::for_output(out, options.cache_dir.as_deref());
    let mut cache = Cache::open(paths.clone(), options.cache)?;
    let config = preferred(options.session.launch_only(options.launch_only), source);
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
    if session.is_some()
        && let Some(bytes) = cache.prologue()
    {
        check_trust(options, &crate::read::Prologue::parse(bytes)?)?;
    } else if options.has_base() || options.has_trust() {
        // The prologue first, on its own: checked against the trust
        // policy before anything is stored, and planned against the base.
        let checked = probe::probe_source(source).and_then(|probe| {
            check_trust(options, &probe.prologue()?)?;
            Ok(probe)
        });
        let probe = match checked {
            Ok(p) => p,
            // Refused or unreadable before anything was stored.
            Err(e) => return Err(abandon(cache, &paths, e)),
        };
        transferred += probe.bytes_read();
        crate::stream::BlockSink::prologue(&mut cache, probe.as_bytes())?;
        session = Some(StreamSession::with_prologue(
            config,
            probe.as_bytes().to_vec(),
        )?);
    }
    // Blocks an earlier version holds: copied, not fetched.
    #[cfg(feature = "file")]
    let (blocks_reused, bytes_reused) = match (&options.base, session.as_mut()) {
        (Some(path), Some(s)) => {
            let decode = config.is_decoding_blocks() && !options.base_checked;
            delta::Base::open(path)?.copy_missing(&mut cache, s, decode)?
        }
        _ => (0, 0),
    };
    #[cfg(not(feature = "file"))]
    let (blocks_reused, bytes_reused) = (0u32, 0u64);
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
    let result = drive::Driver::new(source).run(&mut session, &mut cache, &mut on_event);
    let report = match result {
        Ok(report) => report,
        // The stream failed before a prologue arrived (access denied,
        // not found...), or after.
        Err(e) => return Err(abandon(cache, &paths, e)),
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
        blocks_reused,
        bytes_reused,
        bytes_resumed,
        total_blocks: progress.total_blocks,
        total_bytes: progress.total_bytes,
        launch_ready,
        total: start.elapsed(),
        complete,
        cache: paths,
    })
}

impl FetchOptions {
    fn has_base(&self) -> bool {
        #[cfg(feature = "file")]
        {
            self.base.is_some()
        }
        #[cfg(not(feature = "file"))]
        {
            false
        }
    }

    fn has_trust(&self) -> bool {
        #[cfg(feature = "sign")]
        {
            self.trust.is_some()
        }
        #[cfg(not(feature = "sign"))]
        {
            false
        }
    }
}

/// A fetch that failed (`e`): if nothing of a package was stored yet (no
/// prologue in the cache), its cache files go; `e` is returned.
fn abandon(cache: Cache, paths: &CachePaths, e: Error) -> Error {
    if cache.prologue().is_none() {
        drop(cache);
        let _ = std::fs::remove_file(&paths.data);
        let _ = std::fs::remove_file(&paths.bitmap);
    }
    e
}

/// The trust policy's verdict on `prologue`, if the options carry one.
fn check_trust(options: &FetchOptions, prologue: &crate::read::Prologue<'_>) -> Result<(), Error> {
    #[cfg(feature = "sign")]
    if let Some((policy, sig)) = &options.trust {
        policy.check(prologue, sig.as_ref())?;
    }
    let _ = (options, prologue);
    Ok(())
}

/// Where the detached signature of the package at `spec` is by
/// convention: `spec` with `.minisig` appended (before a URL's query
/// string).
pub fn signature_location(spec: &str) -> String {
    match spec.split_once('?') {
        Some((path, query)) if spec.contains("://") => format!("{path}.minisig?{query}"),
        _ => format!("{spec}.minisig"),
    }
}

/// Read the detached signature at `spec` (a path or URL, read through the
/// same transports as packages, at most
/// [`MAX_KEY_FILE_LEN`](crate::sign::MAX_KEY_FILE_LEN) bytes); `None` if
/// there is none there.
///
/// # Errors
/// A transport or I/O error other than "not found"; a malformed signature.
#[cfg(feature = "sign")]
pub fn read_signature(
    spec: &str,
    sources: &SourceOptions,
) -> Result<Option<crate::sign::Signature>, Error> {
    let source = match open_source_with(spec, sources) {
        Ok(s) => s,
        Err(e) if not_a_package(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = source.len().map_err(Error::Transport)?;
    if len > crate::sign::MAX_KEY_FILE_LEN {
        return Err(Error::trust(
            crate::error::TrustProblem::Malformed,
            format!(
                "{}: {len} bytes is too long for a signature",
                crate::redact_url(spec)
            ),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    source
        .read_exact_at(0, &mut buf)
        .map_err(Error::Transport)?;
    let text = String::from_utf8(buf).map_err(|_| {
        Error::trust(
            crate::error::TrustProblem::Malformed,
            format!("{}: not a text file", crate::redact_url(spec)),
        )
    })?;
    crate::sign::Signature::from_text(&text).map(Some)
}

/// What fetching `spec` into `out` with `options` would move, without
/// fetching anything but the prologue: blocks the cache of an interrupted
/// fetch already holds, blocks the base ([`FetchOptions::base`]) holds,
/// and the exact bytes left to fetch (`sft fetch --dry-run`). The trust
/// policy, if any, is checked as a fetch would.
///
/// # Errors
/// As [`open_source_with`], [`probe::probe_source`] and
/// [`delta::Base::open`]; the trust policy's refusal.
#[cfg(feature = "file")]
pub fn plan_spec(
    spec: &str,
    out: &Path,
    options: &FetchOptions,
) -> Result<delta::DeltaPlan, Error> {
    let source = open_source_with(spec, &options.sources)?;
    let probe = probe::probe_source(&*source)?;
    let prologue = probe.prologue()?;
    check_trust(options, &prologue)?;
    let paths = CachePaths::for_output(out, options.cache_dir.as_deref());
    // The cache of an interrupted fetch of this same package, if any
    // (read only: a plan changes nothing).
    let cached = cache::Cache::peek(&paths, &prologue)?;
    let base = options.base.as_ref().map(delta::Base::open).transpose()?;
    delta::DeltaPlan::new(
        &prologue,
        base.as_ref(),
        &|i| {
            cached
                .as_ref()
                .is_some_and(|c| c.get(i as usize).copied().unwrap_or(false))
        },
        cached.is_some(),
    )
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
/// `FileSource::open` for
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
    let source = open_unpaced(spec, options)?;
    Ok(match options.limit_rate {
        Some(rate) => Box::new(crate::io::shaped::ShapedSource::new(
            source,
            rate,
            Duration::ZERO,
        )),
        None => source,
    })
}

/// [`open_source_with`] without the rate limit.
fn open_unpaced(spec: &str, options: &SourceOptions) -> Result<Box<dyn RangeSource>, Error> {
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
/// with `FileSource::open` and
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
