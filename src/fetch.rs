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

use core::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheOptions, CachePaths};
use crate::error::Error;
use crate::format::HEADER_LEN;
use crate::stream::{
    Event, RangeSource, SessionConfig, StreamSession, TransportError, TransportErrorKind, blocking,
};

/// A callback for [`Event`]s.
pub type EventCallback = Box<dyn FnMut(&Event) + Send>;

/// Options of [`fetch`], set by value.
#[derive(Default)]
pub struct FetchOptions {
    launch_only: bool,
    cache_dir: Option<PathBuf>,
    session: SessionConfig,
    cache: CacheOptions,
    on_event: Option<EventCallback>,
}

impl fmt::Debug for FetchOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchOptions")
            .field("launch_only", &self.launch_only)
            .field("cache_dir", &self.cache_dir)
            .field("session", &self.session)
            .field("cache", &self.cache)
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
    let start = Instant::now();
    let paths = CachePaths::for_output(out, options.cache_dir.as_deref());
    let mut cache = Cache::open(paths.clone(), options.cache)?;
    let config = options.session.launch_only(options.launch_only);
    let mut transferred = 0u64;
    let mut session = None;
    if let Some(prologue) = cache.resume_prologue() {
        if same_package(source, prologue, &mut transferred)? {
            if let Ok(mut s) = StreamSession::with_prologue(config, prologue.to_vec()) {
                for id in cache.present_blocks() {
                    s.mark_present(id)?;
                }
                session = Some(s);
            }
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
    let mut callback = options.on_event.take();
    if resumed {
        if let Some(f) = callback.as_mut() {
            f(&Event::Progress(session.progress()));
        }
    }
    let result = blocking::drive_with(&mut session, source, &mut cache, &mut |e| {
        match e {
            Event::LaunchReady => launch_ready = Some(start.elapsed()),
            Event::BlockReady(_) => fetched += 1,
            _ => {}
        }
        if let Some(f) = callback.as_mut() {
            f(e);
        }
    });
    let report = result?;
    transferred += report.bytes;
    let progress = session.progress();
    let complete = report.complete;
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

/// Open the source named by `spec`: a path, or a `file://` URL. Other
/// schemes (`http(s)://`, `rtsp(s)://`, `smb://`) are recognised and
/// refused clearly until their transports are built in.
///
/// ```
/// use sft::fetch::open_source;
/// let e = open_source("gopher://example.com/app.sft").err().unwrap();
/// assert!(e.to_string().contains("unsupported scheme `gopher`"), "{e}");
/// let e = open_source("https://example.com/app.sft").err().unwrap();
/// assert!(e.to_string().contains("built without `http` support"), "{e}");
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for an unknown or unsupported scheme; as
/// [`FileSource::open`](crate::transport::file::FileSource::open) for
/// paths.
pub fn open_source(spec: &str) -> Result<Box<dyn RangeSource>, Error> {
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
            return open_file(&path);
        }
        "http" | "https" => "http",
        "rtsp" | "rtsps" => "rtsp",
        "smb" => "smb",
        other => {
            return Err(Error::invalid(format!(
                "unsupported scheme `{other}` in `{spec}` (expected a path, file://, http(s)://, rtsp(s)://, smb://)"
            )));
        }
    };
    Err(Error::Transport(TransportError::new(
        TransportErrorKind::Protocol,
        format!("`{spec}`: this sft was built without `{transport}` support"),
    )))
}

#[cfg(feature = "file")]
fn open_file(path: &str) -> Result<Box<dyn RangeSource>, Error> {
    Ok(Box::new(crate::transport::file::FileSource::open(path)?))
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
    let path = if let Some(p) = rest.strip_prefix("localhost/") {
        format!("/{p}")
    } else if rest.starts_with('/') {
        rest.to_owned()
    } else {
        return Err(Error::invalid(format!(
            "file://{rest}: only local files (file:///path or file://localhost/path) are supported"
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
    String::from_utf8(out).map_err(|_| Error::invalid(format!("file://{rest}: not UTF-8")))
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
