//! The HTTP/HTTPS range client: [`HttpSource`] serves a package at an
//! `http://` or `https://` URL as a [`RangeSource`] (feature `http`).
//!
//! # How it reads
//!
//! - [`HttpSource::open`] learns the length and a validator with a `HEAD`
//!   request; if `HEAD` is refused (some S3 presigned URLs are signed for
//!   `GET` only and answer `HEAD` with 403), it asks for `Range: bytes=0-0`
//!   instead.
//! - [`RangeSource::read_ranges`] sends `Range` requests on kept-alive,
//!   pooled connections (one `ureq` agent per source). Adjacent ranges are
//!   merged; up to [`HttpOptions::max_ranges_per_request`] ranges go in one
//!   request (`Range: bytes=a-b,c-d`) and come back as a
//!   `multipart/byteranges` body, parsed as it streams by
//!   [`multipart`](crate::proto::http_multipart). A server that answers a multi-range
//!   request with one part covering them all is accepted; one that answers
//!   it with `200` and the whole body (S3 does) is asked one range per
//!   request from then on.
//! - On plain `http://`, single-range requests (and the opening `HEAD`)
//!   take a **bulk path** instead of `ureq`: our own kept-alive
//!   `TcpStream`, a strict and bounded response-head parser, and bodies
//!   received straight into the caller's buffer, with the same checks as
//!   below. HTTPS, multi-range requests, and a server that redirects,
//!   answers chunked or multipart, or ignores `Range` go through `ureq`
//!   (the bulk path is then off for the source). `docs/HTTP.md` has the
//!   details; [`crate::fetch::fetch_spec`] reads whole packages through it.
//! - Bytes go to the sink as they arrive, through one reusable buffer of
//!   [`HttpOptions::buffer_size`] bytes: a response is never held in
//!   memory as a whole. [`ControlFlow::Break`] from the sink stops at once
//!   (the connection is then closed rather than drained).
//! - Every `206` is checked strictly: its `Content-Range` must be exactly
//!   the range asked for (or, for a multi-range request, cover them) and
//!   state the known total length, and each multipart part must lie within
//!   what was asked. A mismatch in the total length is
//!   [`TransportErrorKind::Changed`]; any other mismatch is
//!   [`TransportErrorKind::Protocol`].
//!
//! # A server that ignores `Range`
//!
//! A server that answers a range request with `200` and the whole body
//! (and the same validator, so it is not a new version) still works, and
//! the body is downloaded once: the source switches to *spool* mode. The
//! one `200` response is kept open and read on demand, each byte copied
//! into an anonymous temporary file (created in [`std::env::temp_dir`]
//! and unlinked at once on Unix, so nothing is left behind) while the
//! requested ranges are delivered as they pass; later reads of earlier
//! bytes are served from the file. If that response breaks off, the next
//! read asks for the rest with a `Range` request (and if the server again
//! answers `200`, skips what the file already holds).
//!
//! # Validators and changed packages
//!
//! The first response's strong `ETag` (or, without one, its
//! `Last-Modified`) is the package's version. Every range request carries
//! it in `If-Range`, so a server holding a different version answers
//! `200` with the new body instead of mixing bytes of two versions; every
//! response's `ETag`, `Last-Modified` and length are compared with the
//! first. A different version is reported as
//! [`TransportErrorKind::Changed`], never retried here: the caller (the
//! fetch layer) starts over on the new version. A `200` carrying the *same*
//! validator and length is a server that does not do ranges (or not
//! multi-range ones), handled as above, not a change. Without any
//! validator only a change of length can be detected.
//!
//! # Errors, timeouts and retries
//!
//! Statuses map to kinds: 404/410 [`NotFound`](TransportErrorKind::NotFound),
//! 401/407 [`Authentication`](TransportErrorKind::Authentication), 403
//! [`PermissionDenied`](TransportErrorKind::PermissionDenied), 416
//! [`RangeNotSatisfiable`](TransportErrorKind::RangeNotSatisfiable), 408
//! [`Timeout`](TransportErrorKind::Timeout), 429 and 5xx
//! [`Io`](TransportErrorKind::Io) (retryable), anything else
//! [`Protocol`](TransportErrorKind::Protocol). Timeouts and dropped
//! connections are retryable. Retrying is the stream session's
//! (`SessionConfig::retry`: back-off within a total window), so by default
//! a request is tried once here; with [`HttpOptions::max_attempts`] above
//! 1 (for a source read without a session) a retryable failure is retried
//! here too, with exponential backoff and jitter, asking only for the
//! bytes not yet delivered.
//!
//! # Credentials and secrets
//!
//! Basic credentials come from the URL's `user:password@`, from
//! [`HttpOptions::basic_auth`], or from the environment variables
//! `SFT_HTTP_USER` / `SFT_HTTP_PASSWORD`; a bearer token from
//! [`HttpOptions::bearer_token`] or `SFT_HTTP_TOKEN` (explicit options
//! first, then the URL, then the environment). They are sent only as an
//! `Authorization` header marked sensitive, never written into a message:
//! [`RangeSource::endpoint`] and every error show the URL without its
//! user information and with its query string elided (a presigned URL's
//! query is a credential too), and the `Debug` impls redact them. The
//! URL itself, query string included, is sent byte for byte as given
//! (presigned URLs must not be re-encoded).

use core::fmt;
use core::ops::{ControlFlow, Range};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::ureq::http::{HeaderMap, HeaderValue, Response, header};
use ::ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ::ureq::{Agent, Body};

use crate::proto::http_multipart::{ByteRangesParser, ContentRange, MIN_BUFFER, Step};
use crate::proto::http_multipart::{byteranges_boundary, parse_content_range};
pub(crate) mod bulk;
mod exchange;
mod options;
mod spool;
mod ureq;
use crate::error::Error;
use crate::io::{ChunkSink, RangeSource};
use crate::net::tls;
use crate::stream::{TransportError, TransportErrorKind};
use bulk as raw;
use bulk::{RawBody, RawOpen};
pub use exchange::{Exchanged, exchange};
pub use options::HttpOptions;
use options::*;
use spool::*;

/// The longest `Range` header value sent; more ranges go in another
/// request (servers commonly allow 8 KiB per header line).
const MAX_RANGE_HEADER: usize = 4000;
/// The longest epilogue read after a multipart body to keep the
/// connection; anything longer closes it.
const MAX_DRAIN: usize = 64 * 1024;

/// True if `s` is an `http://` or `https://` URL (scheme in any case).
///
/// ```
/// use sft::net::http::is_http_url;
///
/// assert!(is_http_url("https://cdn.example/app.sft"));
/// assert!(is_http_url("HTTP://10.0.0.1:8080/app.sft"));
/// assert!(!is_http_url("file:///srv/app.sft"));
/// assert!(!is_http_url("app.sft"));
/// ```
pub fn is_http_url(s: &str) -> bool {
    scheme_len(s).is_some()
}

/// Length of `http://` or `https://` at the start of `s`.
fn scheme_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        Some(7)
    } else if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        Some(8)
    } else {
        None
    }
}

/// The pieces of a URL this client needs.
struct ParsedUrl {
    /// Sent: no user information, no fragment, the rest byte for byte.
    send: String,
    /// Shown: no user information, query elided.
    shown: String,
    user: Option<String>,
    password: Option<String>,
    https: bool,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `Authorization` value for a request to `parsed`: the options'
/// credentials, else the URL's `user:password@`, else (if enabled) the
/// environment's.
fn authorization(
    options: &HttpOptions,
    parsed: &ParsedUrl,
) -> Result<Option<::ureq::http::HeaderValue>, Error> {
    let credentials = match (&options.credentials, &parsed.user) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(user)) => Some(Credentials::Basic {
            user: user.clone(),
            password: parsed.password.clone().unwrap_or_default(),
        }),
        (None, None) if options.env_credentials => env_credentials(),
        (None, None) => None,
    };
    credentials.map(|c| c.header()).transpose()
}

fn parse_url(url: &str) -> Result<ParsedUrl, Error> {
    let skip = scheme_len(url)
        .ok_or_else(|| Error::InvalidInput(String::from("not an http:// or https:// URL")))?;
    let https = skip == 8;
    let scheme = if https { "https://" } else { "http://" };
    let rest = &url[skip..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(Error::InvalidInput(format!("{scheme}: URL without a host")));
    }
    let mut tail = &rest[auth_end..];
    if let Some(hash) = tail.find('#') {
        tail = &tail[..hash];
    }
    let mut send = String::with_capacity(url.len());
    send.push_str(scheme);
    send.push_str(host);
    if !tail.starts_with('/') {
        send.push('/');
    }
    send.push_str(tail);
    let shown = crate::redact_url(&send);
    let (user, password) = match userinfo {
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(ui)), None),
        },
        None => (None, None),
    };
    Ok(ParsedUrl {
        send,
        shown,
        user,
        password,
        https,
    })
}

/// Counters of what a source did, for tests and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HttpStats {
    /// Requests sent (HEAD and GET, retries included).
    pub requests: u64,
    /// Response body bytes received (including bytes not delivered, such
    /// as multipart headers or skipped spool bytes).
    pub body_bytes: u64,
    /// Retryable failures retried inside the source.
    pub retries: u64,
    /// True once the server was found to ignore `Range` and the source
    /// serves from its spool.
    pub spooling: bool,
    /// True while multi-range requests are used.
    pub multi_range: bool,
}

/// One requested range: `start..end`, delivered up to `next`.
#[derive(Debug, Clone, Copy)]
struct Want {
    next: u64,
    end: u64,
}

impl Want {
    fn done(&self) -> bool {
        self.next >= self.end
    }
}

/// Deliver the parts of `data` (bytes at `offset`) that continue a want.
fn deliver(
    wants: &mut [Want],
    offset: u64,
    data: &[u8],
    sink: &mut ChunkSink<'_>,
) -> ControlFlow<()> {
    let end = offset + data.len() as u64;
    for w in wants.iter_mut() {
        if w.done() || w.next < offset || w.next >= end {
            continue;
        }
        let stop = w.end.min(end);
        // offset <= w.next < stop <= end, so both are within data.
        let piece = &data[(w.next - offset) as usize..(stop - offset) as usize];
        let at = w.next;
        w.next = stop;
        sink(at, piece)?;
    }
    ControlFlow::Continue(())
}

/// What one request achieved.
enum Outcome {
    /// Everything asked for was delivered.
    Done,
    /// The sink said stop.
    Break,
    /// Ask again, regrouped (multi-range turned off).
    Again,
    /// The server ignores `Range`: this `200` body is the whole package.
    Spool(SpoolBody),
}

/// An HTTP or HTTPS URL serving one package, as a [`RangeSource`]; see
/// the [module docs](self) for how it reads, validates and retries.
///
/// ```
/// use sft::stream::{SessionConfig, StreamSession};
/// use sft::io::{drive, RangeSource};
/// use sft::net::http::{HttpOptions, HttpSource};
/// # #[cfg(all(feature = "write", feature = "http-server"))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
/// #     .add_bytes("app.exe", vec![7u8; 100_000])?
/// #     .write_to_vec()?;
/// # let dir = tempfile::tempdir()?;
/// # std::fs::write(dir.path().join("app.sft"), &package)?;
/// # let config = sft::serve::http::ServerConfig::new(dir.path());
/// # let server = sft::serve::http::Server::bind("127.0.0.1:0", config)?;
/// # let url = format!("http://{}/app.sft", server.local_addr());
/// # std::thread::spawn(move || server.run());
/// // `url` is something like "http://127.0.0.1:PORT/app.sft".
/// let source = HttpSource::open(&url, &HttpOptions::default())?;
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// let report = drive::drive(&mut session, &source, &mut copy)?;
/// assert!(report.complete);
/// assert_eq!(copy, package);
/// assert!(source.endpoint().ends_with("/app.sft"));
/// # Ok(()) }
/// # #[cfg(not(all(feature = "write", feature = "http-server")))]
/// # fn main() {}
/// ```
pub struct HttpSource {
    agent: Agent,
    url: String,
    shown: String,
    auth: Option<HeaderValue>,
    len: u64,
    etag: Option<String>,
    last_modified: Option<String>,
    if_range: Option<String>,
    max_attempts: u32,
    backoff: Duration,
    max_ranges: usize,
    buffer_size: usize,
    multi_range: AtomicBool,
    spooling: AtomicBool,
    spool: Mutex<Option<Spool>>,
    buffers: Mutex<Vec<Box<[u8]>>>,
    requests: AtomicU64,
    body_bytes: AtomicU64,
    retries: AtomicU64,
    jitter: AtomicU64,
    /// The bulk path (plain `http://` only): where to connect, whether it
    /// is still in use, and its idle kept-alive connections.
    raw: Option<raw::Target>,
    raw_on: AtomicBool,
    raw_idle: Mutex<Vec<raw::Conn>>,
    /// The bulk path's in-order reads ([`RangeSource::will_read`]).
    stream: Mutex<BulkStream>,
}

/// The range a driver announced and the response serving it.
#[derive(Default)]
struct BulkStream {
    planned: Option<Range<u64>>,
    body: Option<RawBody>,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("endpoint", &self.shown)
            .field("len", &self.len)
            .field("etag", &self.etag)
            .field("last_modified", &self.last_modified)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    header_str(h, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok())
}

/// The opaque tag of an ETag, without a `W/` prefix.
fn opaque(etag: &str) -> &str {
    etag.strip_prefix("W/").unwrap_or(etag)
}

fn status_kind(code: u16) -> TransportErrorKind {
    match code {
        404 | 410 => TransportErrorKind::NotFound,
        401 | 407 => TransportErrorKind::Authentication,
        403 => TransportErrorKind::PermissionDenied,
        416 => TransportErrorKind::RangeNotSatisfiable,
        408 => TransportErrorKind::Timeout,
        429 | 500..=599 => TransportErrorKind::Io,
        _ => TransportErrorKind::Protocol,
    }
}

fn io_kind(e: &io::Error) -> TransportErrorKind {
    use io::ErrorKind as K;
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return TransportErrorKind::Other;
    }
    match e.kind() {
        K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
        K::ConnectionReset
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::UnexpectedEof
        | K::NotConnected => TransportErrorKind::ConnectionLost,
        K::InvalidData => TransportErrorKind::Protocol,
        _ => TransportErrorKind::Io,
    }
}

fn ureq_kind(e: &::ureq::Error) -> TransportErrorKind {
    use ::ureq::Error as U;
    match e {
        U::Timeout(_) => TransportErrorKind::Timeout,
        U::Io(io) => io_kind(io),
        U::HostNotFound | U::ConnectionFailed => TransportErrorKind::Io,
        U::StatusCode(code) => status_kind(*code),
        U::Protocol(_)
        | U::LargeResponseHeader(..)
        | U::TooManyRedirects
        | U::RedirectFailed
        | U::BodyStalled => TransportErrorKind::Protocol,
        _ => TransportErrorKind::Other,
    }
}

/// `bytes=a-b,c-d` for the wants not yet done.
fn range_header(group: &[Want]) -> String {
    let mut s = String::from("bytes=");
    for w in group.iter().filter(|w| !w.done()) {
        if s.len() > 6 {
            s.push(',');
        }
        s.push_str(&format!("{}-{}", w.next, w.end - 1));
    }
    s
}

fn spec_len(w: &Want) -> usize {
    fn digits(mut n: u64) -> usize {
        let mut d = 1;
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d
    }
    digits(w.next) + digits(w.end.saturating_sub(1)) + 1
}

impl HttpSource {
    /// Open `url`: build the client (TLS roots, credentials, timeouts)
    /// and learn the package's length and validator with a `HEAD` (or, if
    /// `HEAD` is refused, a `GET` of `bytes=0-0`), retrying retryable
    /// failures.
    ///
    /// ```
    /// use sft::stream::TransportErrorKind;
    /// use sft::io::RangeSource;
    /// use sft::net::http::{HttpOptions, HttpSource};
    /// # #[cfg(feature = "http-server")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("app.sft"), b"0123456789")?;
    /// # let config = sft::serve::http::ServerConfig::new(dir.path());
    /// # let server = sft::serve::http::Server::bind("127.0.0.1:0", config)?;
    /// # let url = format!("http://{}/app.sft", server.local_addr());
    /// # std::thread::spawn(move || server.run());
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert_eq!(source.len()?, 10);
    /// let mut buf = [0u8; 4];
    /// source.read_exact_at(3, &mut buf)?;
    /// assert_eq!(&buf, b"3456");
    ///
    /// // Nothing listens on port 9 of the loopback interface.
    /// let opts = HttpOptions::default().max_attempts(1);
    /// let err = HttpSource::open("http://user:pw@127.0.0.1:9/app.sft", &opts).unwrap_err();
    /// assert!(!err.to_string().contains("pw"));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "http-server"))]
    /// # fn main() {}
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a URL that is not `http(s)://host…`,
    /// unusable credentials or CA file; [`Error::Transport`] if the
    /// server cannot be reached or refuses (see the module docs for the
    /// mapping of statuses to kinds).
    pub fn open(url: &str, options: &HttpOptions) -> Result<HttpSource, Error> {
        let parsed = parse_url(url)?;
        let auth = authorization(options, &parsed)?;
        let roots = roots(options, parsed.https)?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_per_write(Some(options.read_timeout))
            .user_agent(options.user_agent.as_str())
            .accept_encoding("identity")
            .input_buffer_size(options.buffer_size.max(128 * 1024))
            .max_idle_connections_per_host(8)
            .tls_config(tls)
            .build();
        let raw = if parsed.https {
            None
        } else {
            let mut fixed = format!("User-Agent: {}\r\n", options.user_agent);
            let auth_ok = match &auth {
                Some(a) => match a.to_str() {
                    Ok(v) => {
                        fixed.push_str(&format!("Authorization: {v}\r\n"));
                        true
                    }
                    Err(_) => false,
                },
                None => true,
            };
            let ua_ok = options
                .user_agent
                .bytes()
                .all(|b| b == b' ' || b.is_ascii_graphic());
            (auth_ok && ua_ok)
                .then(|| {
                    raw::Target::new(
                        &parsed.send,
                        fixed,
                        options.connect_timeout,
                        options.read_timeout,
                    )
                })
                .flatten()
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        let agent = new_agent(config, options.ca_file.as_deref(), options.tls.clone())?;
        let mut source = HttpSource {
            agent,
            url: parsed.send,
            shown: parsed.shown,
            auth,
            len: 0,
            etag: None,
            last_modified: None,
            if_range: None,
            max_attempts: options.max_attempts,
            backoff: options.retry_backoff,
            max_ranges: options.max_ranges,
            buffer_size: options.buffer_size,
            multi_range: AtomicBool::new(options.max_ranges > 1),
            spooling: AtomicBool::new(false),
            spool: Mutex::new(None),
            buffers: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            body_bytes: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            jitter: AtomicU64::new(seed | 1),
            raw_on: AtomicBool::new(raw.is_some()),
            raw,
            raw_idle: Mutex::new(Vec::new()),
            stream: Mutex::new(BulkStream::default()),
        };
        let mut failures = 0u32;
        loop {
            match source.probe() {
                Ok(()) => return Ok(source),
                Err(e) if source.retry_after(&mut failures, false, &e) => {}
                Err(e) => return Err(Error::Transport(e)),
            }
        }
    }

    /// What the source did so far.
    ///
    /// ```
    /// # use sft::net::http::{HttpOptions, HttpSource};
    /// # #[cfg(feature = "http-server")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("app.sft"), vec![1u8; 1000])?;
    /// # let config = sft::serve::http::ServerConfig::new(dir.path());
    /// # let server = sft::serve::http::Server::bind("127.0.0.1:0", config)?;
    /// # let url = format!("http://{}/app.sft", server.local_addr());
    /// # std::thread::spawn(move || server.run());
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert_eq!(source.stats().requests, 1); // the HEAD
    /// # Ok(()) }
    /// # #[cfg(not(feature = "http-server"))]
    /// # fn main() {}
    /// ```
    pub fn stats(&self) -> HttpStats {
        HttpStats {
            requests: self.requests.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            spooling: self.spooling.load(Ordering::Relaxed),
            multi_range: self.multi_range.load(Ordering::Relaxed),
        }
    }

    /// The package's `ETag` as the server first sent it, if any.
    ///
    /// ```
    /// # use sft::net::http::{HttpOptions, HttpSource};
    /// # #[cfg(feature = "http-server")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("app.sft"), vec![1u8; 10])?;
    /// # let config = sft::serve::http::ServerConfig::new(dir.path());
    /// # let server = sft::serve::http::Server::bind("127.0.0.1:0", config)?;
    /// # let url = format!("http://{}/app.sft", server.local_addr());
    /// # std::thread::spawn(move || server.run());
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert!(source.etag().is_some_and(|e| e.starts_with('"')));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "http-server"))]
    /// # fn main() {}
    /// ```
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The package's `Last-Modified` as the server first sent it, if any.
    ///
    /// ```
    /// # use sft::net::http::{HttpOptions, HttpSource};
    /// # #[cfg(feature = "http-server")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # std::fs::write(dir.path().join("app.sft"), vec![1u8; 10])?;
    /// # let config = sft::serve::http::ServerConfig::new(dir.path());
    /// # let server = sft::serve::http::Server::bind("127.0.0.1:0", config)?;
    /// # let url = format!("http://{}/app.sft", server.local_addr());
    /// # std::thread::spawn(move || server.run());
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert!(source.last_modified().is_some()); // `sft serve` sends one
    /// # Ok(()) }
    /// # #[cfg(not(feature = "http-server"))]
    /// # fn main() {}
    /// ```
    pub fn last_modified(&self) -> Option<&str> {
        self.last_modified.as_deref()
    }

    fn context(&self, what: &str) -> String {
        format!("{}: {what}", self.shown)
    }

    /// A `Content-Range`'s complete length must be the package's: another
    /// length means the package changed ([`TransportErrorKind::Changed`]),
    /// none at all is a protocol error (`bad`).
    fn check_complete(
        &self,
        complete: Option<u64>,
        what: &str,
        cr: &str,
        bad: &dyn Fn(String) -> TransportError,
    ) -> Result<(), TransportError> {
        match complete {
            Some(c) if c == self.len => Ok(()),
            Some(c) => Err(self.error(
                TransportErrorKind::Changed,
                &format!("{what}: the package is now {c} bytes, was {}", self.len),
            )),
            None => Err(bad(format!("Content-Range `{cr}` without the length"))),
        }
    }

    fn error(&self, kind: TransportErrorKind, what: &str) -> TransportError {
        TransportError::new(kind, self.context(what))
    }

    fn ureq_error(&self, e: ::ureq::Error, what: &str) -> TransportError {
        let mut context = self.context(what);
        if let Some(hint) = tls::ureq_hint(&e) {
            context = format!("{context} ({hint})");
        }
        TransportError::new(ureq_kind(&e), context).with_source(e)
    }

    fn body_error(&self, e: io::Error, what: &str) -> TransportError {
        self.ureq_error(::ureq::Error::from(e), what)
    }

    fn status_error(&self, code: u16, what: &str) -> TransportError {
        self.error(status_kind(code), &format!("{what}: HTTP {code}"))
    }

    /// The error for a `416`: [`TransportErrorKind::Changed`] if its
    /// `Content-Range: bytes */N` names another length than the
    /// package's (it was replaced), else the status error.
    fn unsatisfied_error(&self, content_range: Option<&str>, what: &str) -> TransportError {
        if let Some(Ok(ContentRange::Unsatisfied { complete })) =
            content_range.map(|v| parse_content_range(v.as_bytes()))
            && complete != self.len
        {
            return self.error(
                TransportErrorKind::Changed,
                &format!(
                    "{what}: the package is now {complete} bytes, was {}",
                    self.len
                ),
            );
        }
        self.status_error(416, what)
    }

    /// The one retry rule of both back ends: after a failure `e` (with
    /// `progress` since the last one resetting the count), true if it is
    /// worth another attempt here (retryable, attempts left: see
    /// [`HttpOptions::max_attempts`]), after the pause; false to return
    /// it to the caller (the stream session retries).
    fn retry_after(&self, failures: &mut u32, progress: bool, e: &TransportError) -> bool {
        if progress {
            *failures = 0;
        }
        if !e.is_retryable() || *failures + 1 >= self.max_attempts {
            return false;
        }
        *failures += 1;
        self.pause(*failures);
        true
    }

    /// Sleep before retry number `failures` (1-based).
    fn pause(&self, failures: u32) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        let exp = 1u32 << failures.saturating_sub(1).min(5);
        let base = self.backoff.saturating_mul(exp);
        // splitmix64 step for the jitter.
        let mut z = self
            .jitter
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let factor = 0.5 + (z >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        std::thread::sleep(base.mul_f64(factor));
    }

    fn send(
        &self,
        head: bool,
        range: Option<&str>,
        if_range: bool,
        what: &str,
    ) -> Result<Response<Body>, TransportError> {
        let mut req = if head {
            self.agent.head(self.url.as_str())
        } else {
            self.agent.get(self.url.as_str())
        };
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        if if_range && let Some(v) = &self.if_range {
            req = req.header(header::IF_RANGE, v.as_str());
        }
        if let Some(a) = &self.auth {
            req = req.header(header::AUTHORIZATION, a.clone());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        req.call().map_err(|e| self.ureq_error(e, what))
    }

    /// Record the validators of the first response.
    fn learn(&mut self, h: &HeaderMap) {
        self.learn_fields(
            header_str(h, header::ETAG),
            header_str(h, header::LAST_MODIFIED),
        );
    }

    fn learn_fields(&mut self, etag: Option<&str>, last_modified: Option<&str>) {
        self.etag = etag.map(String::from);
        self.last_modified = last_modified.map(String::from);
        self.if_range = match &self.etag {
            Some(e) if !e.starts_with("W/") => Some(e.clone()),
            _ => self.last_modified.clone(),
        };
    }

    /// A response's validators against the first ones. `full`: a `200`,
    /// which must carry them to count as the same version.
    fn check_same(&self, h: &HeaderMap, full: bool, what: &str) -> Result<(), TransportError> {
        self.check_validators(
            header_str(h, header::ETAG),
            header_str(h, header::LAST_MODIFIED),
            content_length(h),
            full,
            what,
        )
    }

    /// As [`Self::check_same`], on the fields themselves.
    fn check_validators(
        &self,
        etag: Option<&str>,
        last_modified: Option<&str>,
        length: Option<u64>,
        full: bool,
        what: &str,
    ) -> Result<(), TransportError> {
        let changed = |detail: &str| {
            Err(self.error(
                TransportErrorKind::Changed,
                &format!("{what}: {detail} (the package was replaced on the server)"),
            ))
        };
        if let Some(ours) = &self.etag {
            match etag {
                Some(theirs) if opaque(theirs) == opaque(ours) => {}
                Some(theirs) => return changed(&format!("ETag {theirs} instead of {ours}")),
                None if full => return changed("response without the ETag"),
                None => {}
            }
        } else if let Some(ours) = &self.last_modified {
            match last_modified {
                Some(theirs) if theirs == ours => {}
                Some(theirs) => {
                    return changed(&format!("Last-Modified {theirs} instead of {ours}"));
                }
                None if full => return changed("response without Last-Modified"),
                None => {}
            }
        }
        if full
            && let Some(n) = length
            && n != self.len
        {
            return changed(&format!("{n} bytes instead of {}", self.len));
        }
        Ok(())
    }

    /// Learn length and validator: HEAD, or GET bytes=0-0 if HEAD is refused.
    fn probe(&mut self) -> Result<(), TransportError> {
        if self.raw_enabled() && self.raw_probe()? {
            return Ok(());
        }
        let resp = self.send(true, None, false, "HEAD")?;
        let code = resp.status().as_u16();
        match code {
            200 => {
                if let Some(len) = content_length(resp.headers()) {
                    self.learn(resp.headers());
                    self.len = len;
                    return Ok(());
                }
            }
            404 | 410 | 401 | 407 => return Err(self.status_error(code, "HEAD")),
            c if c == 408 || c == 429 || c >= 500 && c != 501 => {
                return Err(self.status_error(code, "HEAD"));
            }
            _ => {}
        }
        // HEAD refused or without a length: one byte by GET.
        let what = "GET bytes=0-0";
        let resp = self.send(false, Some("bytes=0-0"), false, what)?;
        let code = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let h = &parts.headers;
        match code {
            206 => {
                let cr = header_str(h, header::CONTENT_RANGE).ok_or_else(|| {
                    self.error(TransportErrorKind::Protocol, "206 without Content-Range")
                })?;
                match parse_content_range(cr.as_bytes()) {
                    Ok(ContentRange::Satisfied {
                        first: 0,
                        last: 0,
                        complete: Some(len),
                    }) => {
                        self.learn(h);
                        self.len = len;
                        let mut one = [0u8; 2];
                        let mut reader = body.into_reader();
                        // Read the byte and the end, so the connection is reused.
                        let mut got = 0;
                        loop {
                            match reader.read(&mut one[got.min(1)..]) {
                                Ok(0) => break,
                                Ok(n) => got += n,
                                Err(e) => return Err(self.body_error(e, what)),
                            }
                            if got > 1 {
                                return Err(self.error(
                                    TransportErrorKind::Protocol,
                                    &format!("{what}: body longer than its Content-Range"),
                                ));
                            }
                        }
                        self.body_bytes.fetch_add(got as u64, Ordering::Relaxed);
                        Ok(())
                    }
                    _ => Err(self.error(
                        TransportErrorKind::Protocol,
                        &format!("{what}: unexpected Content-Range `{cr}`"),
                    )),
                }
            }
            416 => {
                // An empty package: `bytes */0`.
                match header_str(h, header::CONTENT_RANGE)
                    .map(|v| parse_content_range(v.as_bytes()))
                {
                    Some(Ok(ContentRange::Unsatisfied { complete: 0 })) => {
                        self.learn(h);
                        self.len = 0;
                        Ok(())
                    }
                    _ => Err(self.status_error(code, what)),
                }
            }
            200 => {
                // The server ignores Range: this body is the package.
                self.learn(h);
                let file = spool_file().map_err(|e| {
                    self.error(TransportErrorKind::Io, "creating the spool file")
                        .with_source(e)
                })?;
                let mut spool = Spool {
                    file,
                    written: 0,
                    body: Some((Box::new(body.into_reader()), 0)),
                };
                if let Some(len) = content_length(h) {
                    self.len = len;
                } else {
                    // No length: spool it all now to learn it.
                    self.len = u64::MAX;
                    let mut buf = vec![0u8; self.buffer_size];
                    while spool.body.is_some() {
                        let _ = self
                            .advance(&mut spool, &mut buf, &mut |_, _| ControlFlow::Continue(()))?;
                    }
                    self.len = spool.written;
                }
                *lock(&self.spool) = Some(spool);
                self.spooling.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(self.status_error(code, what)),
        }
    }

    fn take_buffer(&self) -> Box<[u8]> {
        lock(&self.buffers)
            .pop()
            .unwrap_or_else(|| vec![0u8; self.buffer_size].into_boxed_slice())
    }

    fn put_buffer(&self, buf: Box<[u8]>) {
        let mut pool = lock(&self.buffers);
        if pool.len() < 4 {
            pool.push(buf);
        }
    }
}

impl RangeSource for HttpSource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let end = self.len.min(offset.saturating_add(buf.len() as u64));
        let mut got = 0usize;
        self.read_ranges(core::slice::from_ref(&(offset..end)), &mut |at, data| {
            let from = (at - offset) as usize;
            if let Some(dst) = buf.get_mut(from..from + data.len()) {
                dst.copy_from_slice(data);
                got = got.max(from + data.len());
            }
            ControlFlow::Continue(())
        })?;
        Ok(got)
    }

    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut wants: Vec<Want> = Vec::with_capacity(ranges.len());
        for r in ranges {
            if r.start > r.end || r.end > self.len {
                return Err(self
                    .error(
                        TransportErrorKind::RangeNotSatisfiable,
                        &format!("the package is {} bytes", self.len),
                    )
                    .with_range(r.clone()));
            }
            if r.start == r.end {
                continue;
            }
            match wants.last_mut() {
                // Adjacent ranges in order become one.
                Some(last) if last.end == r.start => last.end = r.end,
                _ => wants.push(Want {
                    next: r.start,
                    end: r.end,
                }),
            }
        }
        if wants.is_empty() {
            return Ok(());
        }
        if self.spooling.load(Ordering::Relaxed) {
            return self.serve_spool(&mut wants, sink);
        }
        let mut buf = self.take_buffer();
        let result = self.fetch_all(&mut wants, &mut buf, sink);
        self.put_buffer(buf);
        result
    }

    /// Remember `range`: on the bulk path (plain `http://`), the first
    /// [`RangeSource::read_exact_at`] at its start sends one `GET` for all
    /// of it, and reads that follow in order are served from that response
    /// straight into their buffers (one request for the range, no copy).
    fn will_read(&self, range: Range<u64>) {
        if self.raw_enabled() && range.start < range.end && range.end <= self.len {
            lock(&self.stream).planned = Some(range);
        }
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        if buf.is_empty() {
            return Ok(());
        }
        if !self.raw_enabled() {
            return self.plain_read_exact_at(offset, buf);
        }
        let end = offset.saturating_add(buf.len() as u64);
        let mut stream = lock(&self.stream);
        let until = match &stream.planned {
            Some(p) if p.start <= offset && end <= p.end => p.end,
            _ => end,
        };
        let result = self.bulk_read_exact_at(&mut stream, offset, buf, until);
        if result.is_err() {
            stream.body = None;
        }
        result
    }

    /// True on the bulk path (plain `http://`): see
    /// [`RangeSource::will_read`].
    fn streaming_reads(&self) -> bool {
        self.raw_enabled()
    }

    /// On the bulk path, long requests (64 MiB, 4 in flight): each is one
    /// `GET` with `If-Range`, so fewer, longer ones keep the stream
    /// flowing; FB1 still comes first.
    fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
        self.raw_enabled()
            .then_some(crate::stream::SchedulerLimits {
                max_request_bytes: 64 << 20,
                fb1_request_bytes: 64 << 20,
                max_in_flight_requests: 4,
                max_in_flight_bytes: 256 << 20,
            })
    }

    fn endpoint(&self) -> String {
        self.shown.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p =
            parse_url("HTTPS://al%40ice:p%3Ass@Host:8443/a/b.sft?X-Amz-Signature=ab%2Fcd&x=1#frag")
                .unwrap();
        assert_eq!(
            p.send,
            "https://Host:8443/a/b.sft?X-Amz-Signature=ab%2Fcd&x=1"
        );
        assert_eq!(p.shown, "https://Host:8443/a/b.sft?…");
        assert_eq!(p.user.as_deref(), Some("al@ice"));
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        assert!(p.https);
        let p = parse_url("http://h?q=1").unwrap();
        assert_eq!(p.send, "http://h/?q=1");
        assert_eq!(p.shown, "http://h/?…");
        assert!(parse_url("http:///x").is_err());
        assert!(parse_url("ftp://h/x").is_err());
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz%"), "A%zz%");
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn ranges_and_delivery() {
        let wants = [Want { next: 0, end: 10 }, Want { next: 20, end: 21 }];
        assert_eq!(range_header(&wants), "bytes=0-9,20-20");
        assert_eq!(spec_len(&wants[0]), "0-9".len());
        let mut wants = wants;
        let got = std::cell::RefCell::new(Vec::new());
        let mut sink = |at: u64, d: &[u8]| {
            got.borrow_mut().push((at, d.to_vec()));
            ControlFlow::Continue(())
        };
        let data: Vec<u8> = (0..30).collect();
        let _ = deliver(&mut wants, 5, &data[5..25], &mut sink);
        // The first want had not reached 5: nothing for it; the second got its byte.
        assert_eq!(*got.borrow(), [(20, vec![20])]);
        let _ = deliver(&mut wants, 0, &data[0..30], &mut sink);
        assert_eq!(got.borrow()[1], (0, (0..10).collect::<Vec<u8>>()));
        assert!(wants.iter().all(Want::done));
    }

    #[test]
    fn status_kinds() {
        use TransportErrorKind as K;
        assert_eq!(status_kind(404), K::NotFound);
        assert_eq!(status_kind(410), K::NotFound);
        assert_eq!(status_kind(401), K::Authentication);
        assert_eq!(status_kind(403), K::PermissionDenied);
        assert_eq!(status_kind(416), K::RangeNotSatisfiable);
        assert!(status_kind(503).is_retryable());
        assert!(status_kind(429).is_retryable());
        assert_eq!(status_kind(302), K::Protocol);
    }
}
