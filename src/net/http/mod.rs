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

use ureq::http::{HeaderMap, HeaderValue, Response, header};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::{Agent, Body};

use crate::proto::http_multipart::{ByteRangesParser, ContentRange, MIN_BUFFER, Step};
use crate::proto::http_multipart::{byteranges_boundary, parse_content_range};
pub(crate) mod bulk;
use crate::error::Error;
use crate::io::{ChunkSink, RangeSource};
use crate::net::tls;
use crate::stream::{TransportError, TransportErrorKind};
use bulk as raw;
use bulk::HeadError;

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

/// Credentials, never shown.
#[derive(Clone, PartialEq, Eq)]
enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { .. } => f.write_str("Basic(<redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    fn header(&self) -> Result<HeaderValue, Error> {
        let text = match self {
            Credentials::Basic { user, password } => {
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
            }
            Credentials::Bearer(token) => format!("Bearer {token}"),
        };
        let mut v = HeaderValue::from_str(&text).map_err(|_| {
            Error::InvalidInput(String::from(
                "http credentials contain characters not allowed in a header",
            ))
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Options for [`HttpSource::open`]: timeouts, retries, TLS roots,
/// credentials, request shaping. By-value builder; the defaults suit a
/// LAN or CDN.
///
/// ```
/// use std::time::Duration;
/// use sft::net::http::HttpOptions;
///
/// let opts = HttpOptions::default()
///     .connect_timeout(Duration::from_secs(5))
///     .read_timeout(Duration::from_secs(20))
///     .max_attempts(4)
///     .bearer_token("s3cr3t")
///     .user_agent("my-launcher/1.0")
///     .max_ranges_per_request(8);
/// // Secrets never show in Debug output.
/// assert!(!format!("{opts:?}").contains("s3cr3t"));
/// assert_eq!(opts.get_max_attempts(), 4);
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    connect_timeout: Duration,
    read_timeout: Duration,
    max_attempts: u32,
    retry_backoff: Duration,
    ca_file: Option<PathBuf>,
    tls: Option<Arc<rustls::ClientConfig>>,
    credentials: Option<Credentials>,
    env_credentials: bool,
    user_agent: String,
    max_ranges: usize,
    buffer_size: usize,
}

impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .field("ca_file", &self.ca_file)
            .field("tls", &self.tls.as_ref().map(|_| "caller's ClientConfig"))
            .field("credentials", &self.credentials)
            .field("env_credentials", &self.env_credentials)
            .field("user_agent", &self.user_agent)
            .field("max_ranges_per_request", &self.max_ranges)
            .field("buffer_size", &self.buffer_size)
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_attempts: 1,
            retry_backoff: Duration::from_millis(200),
            ca_file: None,
            tls: None,
            credentials: None,
            env_credentials: false,
            user_agent: format!("sft/{}", env!("CARGO_PKG_VERSION")),
            max_ranges: 16,
            buffer_size: 256 * 1024,
        }
    }
}

impl HttpOptions {
    /// The defaults: 10 s connect timeout, 30 s read timeout, 1 attempt
    /// (retrying is the stream session's: `SessionConfig::retry`), system
    /// roots, credentials from the URL (the
    /// environment only with [`HttpOptions::env_credentials`]), 16 ranges
    /// per request, a 256 KiB buffer.
    ///
    /// ```
    /// use sft::net::http::HttpOptions;
    /// assert_eq!(HttpOptions::new().get_max_attempts(), 1);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Time allowed to connect (TCP and TLS handshake).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().connect_timeout(Duration::from_secs(3));
    /// ```
    #[must_use]
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for each read (or write) on the connection: a server
    /// silent for longer is a [`TransportErrorKind::Timeout`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().read_timeout(Duration::from_secs(60));
    /// ```
    #[must_use]
    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    /// Attempts per request on retryable failures without progress
    /// (default and at least 1, which disables retrying here: a stream
    /// session retries the source within its window,
    /// [`SessionConfig::retry`](crate::stream::SessionConfig::retry), so
    /// retries here would multiply with its; raise it for a source read
    /// without a session).
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// assert_eq!(HttpOptions::new().max_attempts(0).get_max_attempts(), 1);
    /// ```
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The configured attempts per request.
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// assert_eq!(HttpOptions::new().max_attempts(5).get_max_attempts(), 5);
    /// ```
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The first retry's delay; each further retry doubles it (up to 30
    /// times the base), each scaled by a random factor in [0.5, 1].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().retry_backoff(Duration::from_millis(50));
    /// ```
    #[must_use]
    pub fn retry_backoff(mut self, t: Duration) -> Self {
        self.retry_backoff = t;
        self
    }

    /// Trust the CA certificates in this PEM file instead of the system
    /// roots (for HTTPS with a private CA). A self-signed server
    /// certificate given here exactly is accepted even when it is marked as
    /// a CA (pinning, `docs/HTTP.md` "Client TLS").
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().ca_file("/etc/sft/ca.pem");
    /// ```
    #[must_use]
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Send HTTP basic credentials.
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().basic_auth("alice", "hunter2");
    /// assert!(!format!("{o:?}").contains("hunter2"));
    /// ```
    #[must_use]
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Basic {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Send a bearer token.
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().bearer_token("t0ken");
    /// assert!(!format!("{o:?}").contains("t0ken"));
    /// ```
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Some(Credentials::Bearer(token.into()));
        self
    }

    /// Whether [`HttpSource::open`] may read credentials from
    /// `SFT_HTTP_USER` / `SFT_HTTP_PASSWORD` / `SFT_HTTP_TOKEN` when none
    /// are configured or in the URL (default: no: a library reads the
    /// process environment only when its caller asks; the `sft` binary
    /// does).
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().env_credentials(false);
    /// ```
    #[must_use]
    pub fn env_credentials(mut self, on: bool) -> Self {
        self.env_credentials = on;
        self
    }

    /// TLS for `https://` with the caller's own rustls configuration (its
    /// roots, client certificate, ALPN, key log...), instead of the system
    /// roots or [`HttpOptions::ca_file`]; it wins over a CA file. Plain
    /// `http://` is unaffected.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.extend(webpki_roots_or_yours());
    /// # fn webpki_roots_or_yours() -> Vec<rustls_pki_types::TrustAnchor<'static>> { Vec::new() }
    /// let config = rustls::ClientConfig::builder_with_provider(Arc::new(
    ///     rustls::crypto::ring::default_provider(),
    /// ))
    /// .with_safe_default_protocol_versions()
    /// .expect("TLS 1.2 and 1.3")
    /// .with_root_certificates(roots)
    /// .with_no_client_auth();
    /// let o = sft::net::http::HttpOptions::new().tls_config(Arc::new(config));
    /// # let _ = o;
    /// ```
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// The `User-Agent` header (default `sft/VERSION`).
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().user_agent("launcher/2");
    /// ```
    #[must_use]
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Most ranges in one multi-range request, 1 to 64 (default 16); 1
    /// sends one range per request.
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().max_ranges_per_request(1);
    /// ```
    #[must_use]
    pub fn max_ranges_per_request(mut self, n: usize) -> Self {
        self.max_ranges = n.clamp(1, 64);
        self
    }

    /// The receive buffer each `read_ranges` call uses (and the `ureq`
    /// input buffer), 4 KiB to 16 MiB (default 256 KiB).
    ///
    /// ```
    /// # use sft::net::http::HttpOptions;
    /// let o = HttpOptions::new().buffer_size(1 << 20);
    /// ```
    #[must_use]
    pub fn buffer_size(mut self, n: usize) -> Self {
        self.buffer_size = n.clamp(MIN_BUFFER.max(4096), 16 << 20);
        self
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

/// The body of a `200` being spooled: from `ureq`, or from the bulk path.
type SpoolBody = Box<dyn Read + Send>;

/// The spool of a server that ignores `Range`.
struct Spool {
    file: File,
    /// Bytes `0..written` are in the file.
    written: u64,
    /// The response being read, and how many of its leading bytes are
    /// already in the file (a re-sent `200` body starts at 0).
    body: Option<(SpoolBody, u64)>,
}

/// The anonymous spool file: created exclusively in the temp dir and
/// unlinked at once (on Unix the open file lives on without a name).
fn spool_file() -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let mut last = io::Error::other("no spool file name available");
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(
            ".sft-http-spool-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        match o.open(&path) {
            Ok(f) => {
                // Where unlinking an open file fails (Windows), the file
                // stays until the temp dir is cleaned.
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// An HTTP or HTTPS URL serving one package, as a [`RangeSource`]; see
/// the [module docs](self) for how it reads, validates and retries.
///
/// ```
/// use sft::stream::{SessionConfig, StreamSession};
/// use sft::io::{drive, RangeSource};
/// use sft::net::http::{HttpOptions, HttpSource};
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// # let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
/// #     .add_bytes("app.exe", vec![7u8; 100_000])?
/// #     .write_to_vec()?;
/// # let url = sft::net::http::doc_server::serve(package.clone())?;
/// // `url` is something like "http://127.0.0.1:PORT/app.sft".
/// let source = HttpSource::open(&url, &HttpOptions::default())?;
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// let report = drive::drive(&mut session, &source, &mut copy)?;
/// assert!(report.complete);
/// assert_eq!(copy, package);
/// assert!(source.endpoint().ends_with("/app.sft"));
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
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

fn ureq_kind(e: &ureq::Error) -> TransportErrorKind {
    use ureq::Error as U;
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
    /// # fn main() -> sft::Result<()> {
    /// # let url = sft::net::http::doc_server::serve(b"0123456789".to_vec())?;
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
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a URL that is not `http(s)://host…`,
    /// unusable credentials or CA file; [`Error::Transport`] if the
    /// server cannot be reached or refuses (see the module docs for the
    /// mapping of statuses to kinds).
    pub fn open(url: &str, options: &HttpOptions) -> Result<HttpSource, Error> {
        let parsed = parse_url(url)?;
        let credentials = match (&options.credentials, &parsed.user) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(user)) => Some(Credentials::Basic {
                user: user.clone(),
                password: parsed.password.clone().unwrap_or_default(),
            }),
            (None, None) if options.env_credentials => env_credentials(),
            (None, None) => None,
        };
        let auth = credentials.map(|c| c.header()).transpose()?;
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
                Err(e) if e.is_retryable() && failures + 1 < source.max_attempts => {
                    failures += 1;
                    source.pause(failures);
                }
                Err(e) => return Err(Error::Transport(e)),
            }
        }
    }

    /// What the source did so far.
    ///
    /// ```
    /// # use sft::net::http::{HttpOptions, HttpSource};
    /// # fn main() -> sft::Result<()> {
    /// # let url = sft::net::http::doc_server::serve(vec![1u8; 1000])?;
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert_eq!(source.stats().requests, 1); // the HEAD
    /// # Ok(()) }
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
    /// # fn main() -> sft::Result<()> {
    /// # let url = sft::net::http::doc_server::serve(vec![1u8; 10])?;
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert_eq!(source.etag(), Some("\"doc-10\""));
    /// # Ok(()) }
    /// ```
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The package's `Last-Modified` as the server first sent it, if any.
    ///
    /// ```
    /// # use sft::net::http::{HttpOptions, HttpSource};
    /// # fn main() -> sft::Result<()> {
    /// # let url = sft::net::http::doc_server::serve(vec![1u8; 10])?;
    /// let source = HttpSource::open(&url, &HttpOptions::default())?;
    /// assert_eq!(source.last_modified(), None); // the example server sends none
    /// # Ok(()) }
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

    fn ureq_error(&self, e: ureq::Error, what: &str) -> TransportError {
        let mut context = self.context(what);
        if let Some(hint) = tls::ureq_hint(&e) {
            context = format!("{context} ({hint})");
        }
        TransportError::new(ureq_kind(&e), context).with_source(e)
    }

    fn body_error(&self, e: io::Error, what: &str) -> TransportError {
        self.ureq_error(ureq::Error::from(e), what)
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

    /// One request for the wants of `group` not yet done.
    fn fetch_group(
        &self,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<Outcome, TransportError> {
        let spec = range_header(group);
        let open: Vec<Want> = group.iter().copied().filter(|w| !w.done()).collect();
        let multi = open.len() > 1;
        let lo = open.iter().map(|w| w.next).min().unwrap_or(0);
        let hi = open.iter().map(|w| w.end).max().unwrap_or(0);
        let what = if multi {
            format!("GET {} ranges in {lo}..{hi}", open.len())
        } else {
            format!("GET bytes {lo}..{hi}")
        };
        if !multi && self.raw_enabled() {
            if let RawOpen::Body(conn) = self.raw_open(lo, hi, &what)? {
                return self.raw_read(conn, lo, hi, group, buf, sink, &what);
            }
            if self.spooling.load(Ordering::Relaxed) {
                // A `200`: now being spooled, served from there.
                return Ok(Outcome::Again);
            }
        }
        let resp = self.send(false, Some(&spec), true, &what)?;
        let code = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let h = &parts.headers;
        match code {
            206 => {
                self.check_same(h, false, &what)?;
                let boundary = match header_str(h, header::CONTENT_TYPE) {
                    Some(ct) => byteranges_boundary(ct.as_bytes())
                        .map_err(|e| {
                            self.error(TransportErrorKind::Protocol, &format!("{what}: {e}"))
                        })?
                        .map(<[u8]>::to_vec),
                    None => None,
                };
                if let Some(boundary) = boundary {
                    return self.read_multipart(body, &boundary, group, buf, sink, &what);
                }
                let cr = header_str(h, header::CONTENT_RANGE).ok_or_else(|| {
                    self.error(
                        TransportErrorKind::Protocol,
                        &format!("{what}: 206 without Content-Range"),
                    )
                })?;
                let bad = |detail: String| {
                    self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"))
                };
                let (first, last, complete) = match parse_content_range(cr.as_bytes()) {
                    Ok(ContentRange::Satisfied {
                        first,
                        last,
                        complete,
                    }) => (first, last, complete),
                    _ => return Err(bad(format!("malformed Content-Range `{cr}`"))),
                };
                self.check_complete(complete, &what, cr, &bad)?;
                let end = last + 1;
                let exact = first == lo && end == hi;
                if !(exact || multi && first <= lo && end >= hi) {
                    return Err(bad(format!(
                        "Content-Range `{cr}` is not the range asked for"
                    )));
                }
                if let Some(n) = content_length(h)
                    && n != end - first
                {
                    return Err(bad(format!(
                        "Content-Length {n} disagrees with Content-Range `{cr}`"
                    )));
                }
                if multi {
                    let asked: u64 = open.iter().map(|w| w.end - w.next).sum();
                    if end - first > asked.saturating_mul(2) {
                        // Coalesced over wide gaps: cheaper one by one.
                        self.multi_range.store(false, Ordering::Relaxed);
                    }
                }
                self.read_single(body, first, end, group, buf, sink, &what)
            }
            200 => {
                self.check_same(h, true, &what)?;
                if multi {
                    // Same version, but no multi-range support (S3).
                    self.multi_range.store(false, Ordering::Relaxed);
                    return Ok(Outcome::Again);
                }
                Ok(Outcome::Spool(Box::new(body.into_reader())))
            }
            416 => Err(self
                .unsatisfied_error(header_str(h, header::CONTENT_RANGE), &what)
                .with_range(lo..hi)),
            _ => Err(self.status_error(code, &what).with_range(lo..hi)),
        }
    }

    /// A single-part 206 with bytes `first..end`.
    #[allow(clippy::too_many_arguments)]
    fn read_single(
        &self,
        body: Body,
        first: u64,
        end: u64,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        let mut reader = body.into_reader();
        let mut at = first;
        while at < end {
            if group.iter().all(Want::done) {
                // The rest was not asked for (a coalescing server).
                return Ok(Outcome::Done);
            }
            let want = (end - at).min(buf.len() as u64) as usize;
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(self
                        .error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: body ended at {at}"),
                        )
                        .with_range(at..end));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.body_error(e, what).with_range(at..end)),
            };
            self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
            if deliver(group, at, &buf[..n], sink).is_break() {
                return Ok(Outcome::Break);
            }
            at += n as u64;
        }
        // One more read sees the end, which returns the connection to the pool.
        match reader.read(&mut buf[..1]) {
            Ok(0) => {}
            Ok(_) => {
                return Err(self.error(
                    TransportErrorKind::Protocol,
                    &format!("{what}: body longer than its Content-Range"),
                ));
            }
            Err(_) => {} // Everything asked for arrived; the connection is just not reused.
        }
        if !group.iter().all(Want::done) {
            return Err(self.error(
                TransportErrorKind::Protocol,
                &format!("{what}: bytes missing from the response"),
            ));
        }
        Ok(Outcome::Done)
    }

    /// A `multipart/byteranges` 206.
    fn read_multipart(
        &self,
        body: Body,
        boundary: &[u8],
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        let bad =
            |detail: String| self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"));
        let mut parser = ByteRangesParser::new(boundary).map_err(|e| bad(e.to_string()))?;
        let mut reader = body.into_reader();
        let (mut start, mut filled) = (0usize, 0usize);
        let mut at = 0u64;
        loop {
            let (used, step) = parser
                .feed(&buf[start..filled])
                .map_err(|e| bad(e.to_string()))?;
            match step {
                Step::Part(p) => {
                    start += used;
                    match p.complete {
                        Some(c) if c == self.len => {}
                        Some(c) => {
                            return Err(self.error(
                                TransportErrorKind::Changed,
                                &format!("{what}: the package is now {c} bytes, was {}", self.len),
                            ));
                        }
                        None => {
                            return Err(bad(String::from("a part's Content-Range has no length")));
                        }
                    }
                    let r = p.range();
                    if !group
                        .iter()
                        .any(|w| !w.done() && w.next < r.end && r.start < w.end)
                    {
                        return Err(bad(format!(
                            "part {}..{} was not asked for",
                            r.start, r.end
                        )));
                    }
                    at = r.start;
                }
                Step::Data(d) => {
                    start += used;
                    let off = at;
                    at += d.len() as u64;
                    if deliver(group, off, d, sink).is_break() {
                        return Ok(Outcome::Break);
                    }
                }
                Step::Done => break,
                Step::NeedMore => {
                    start += used;
                    buf.copy_within(start..filled, 0);
                    filled -= start;
                    start = 0;
                    let n = loop {
                        match reader.read(&mut buf[filled..]) {
                            Ok(n) => break n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(self.body_error(e, what)),
                        }
                    };
                    if n == 0 {
                        return Err(self.error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: multipart body ended early"),
                        ));
                    }
                    self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    filled += n;
                }
            }
        }
        // Drain a short epilogue so the connection can be reused.
        let mut drained = 0usize;
        while drained <= MAX_DRAIN {
            match reader.read(buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
        if let Some(w) = group.iter().find(|w| !w.done()) {
            return Err(bad(format!(
                "the server left out bytes {}..{}",
                w.next, w.end
            )));
        }
        Ok(Outcome::Done)
    }

    /// Read some more of the spooled response into the file, delivering
    /// what `want_end`-bounded wants need via `on_bytes`.
    fn advance(
        &self,
        s: &mut Spool,
        buf: &mut [u8],
        on_bytes: &mut dyn FnMut(u64, &[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, TransportError> {
        let what = "spooling the whole body";
        if s.body.is_none() {
            // Continue where the file ends.
            let spec = format!("bytes={}-", s.written);
            let resp = self.send(false, Some(&spec), true, what)?;
            let code = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let h = &parts.headers;
            match code {
                206 => {
                    self.check_same(h, false, what)?;
                    let ok = matches!(
                        header_str(h, header::CONTENT_RANGE).map(|v| parse_content_range(v.as_bytes())),
                        Some(Ok(ContentRange::Satisfied { first, last, complete: Some(c) }))
                            if first == s.written && last + 1 == self.len && c == self.len
                    );
                    if !ok {
                        return Err(self.error(
                            TransportErrorKind::Protocol,
                            &format!("{what}: unexpected Content-Range"),
                        ));
                    }
                    s.body = Some((Box::new(body.into_reader()), s.written));
                }
                200 => {
                    self.check_same(h, true, what)?;
                    s.body = Some((Box::new(body.into_reader()), 0));
                }
                _ => return Err(self.status_error(code, what)),
            }
        }
        let Some((reader, pos)) = s.body.as_mut() else {
            return Ok(ControlFlow::Continue(()));
        };
        let n = loop {
            match reader.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    s.body = None;
                    return Err(self.body_error(e, what));
                }
            }
        };
        self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
        if n == 0 {
            s.body = None;
            if self.len != u64::MAX && s.written < self.len {
                return Err(self.error(
                    TransportErrorKind::ConnectionLost,
                    &format!("{what}: body ended at {}", s.written),
                ));
            }
            return Ok(ControlFlow::Continue(()));
        }
        let chunk_at = *pos;
        *pos += n as u64;
        // Skip bytes the file already holds (a re-sent 200 body).
        let skip = s.written.saturating_sub(chunk_at).min(n as u64) as usize;
        let fresh = &buf[skip..n];
        if fresh.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        let fresh_at = chunk_at + skip as u64;
        if fresh_at + fresh.len() as u64 > self.len {
            s.body = None;
            return Err(self.error(
                TransportErrorKind::Changed,
                &format!("{what}: the body is longer than {} bytes", self.len),
            ));
        }
        let io_err = |e: io::Error| {
            self.error(TransportErrorKind::Io, "writing the spool file")
                .with_source(e)
        };
        s.file.seek(SeekFrom::Start(fresh_at)).map_err(io_err)?;
        s.file.write_all(fresh).map_err(io_err)?;
        s.written = fresh_at + fresh.len() as u64;
        if s.written == self.len {
            // Reach the end so the connection returns to the pool.
            if let Some((mut reader, _)) = s.body.take() {
                let _ = reader.read(&mut [0u8; 1]);
            }
        }
        Ok(on_bytes(fresh_at, fresh))
    }

    /// Serve `wants` in spool mode.
    fn serve_spool(
        &self,
        wants: &mut [Want],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut guard = lock(&self.spool);
        let Some(s) = guard.as_mut() else {
            return Err(self.error(TransportErrorKind::Other, "spool missing"));
        };
        let mut buf = self.take_buffer();
        let result = self.serve_spool_locked(s, wants, &mut buf, sink);
        self.put_buffer(buf);
        result
    }

    fn serve_spool_locked(
        &self,
        s: &mut Spool,
        wants: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        for w in wants.iter_mut() {
            // From the file.
            while !w.done() && w.next < s.written {
                let n = (w.end.min(s.written) - w.next).min(buf.len() as u64) as usize;
                let io_err = |e: io::Error| {
                    self.error(TransportErrorKind::Io, "reading the spool file")
                        .with_source(e)
                };
                s.file.seek(SeekFrom::Start(w.next)).map_err(io_err)?;
                s.file.read_exact(&mut buf[..n]).map_err(io_err)?;
                let at = w.next;
                w.next += n as u64;
                if sink(at, &buf[..n]).is_break() {
                    return Ok(());
                }
            }
            // From the network, through the file.
            let mut failures = 0u32;
            while !w.done() {
                let before = s.written;
                let one = core::slice::from_mut(&mut *w);
                let mut on_bytes = |at: u64, data: &[u8]| deliver(one, at, data, sink);
                match self.advance(s, buf, &mut on_bytes) {
                    Ok(ControlFlow::Break(())) => return Ok(()),
                    Ok(ControlFlow::Continue(())) => {}
                    Err(e) if e.is_retryable() => {
                        if s.written > before {
                            failures = 0;
                        }
                        failures += 1;
                        if failures >= self.max_attempts {
                            return Err(e);
                        }
                        self.pause(failures);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn start_spool(&self, body: SpoolBody) -> Result<(), TransportError> {
        let mut guard = lock(&self.spool);
        if guard.is_none() {
            let file = spool_file().map_err(|e| {
                self.error(TransportErrorKind::Io, "creating the spool file")
                    .with_source(e)
            })?;
            *guard = Some(Spool {
                file,
                written: 0,
                body: Some((body, 0)),
            });
        }
        self.spooling.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn fetch_all(
        &self,
        wants: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut first = 0usize;
        loop {
            while first < wants.len() && wants[first].done() {
                first += 1;
            }
            if first == wants.len() {
                return Ok(());
            }
            if self.spooling.load(Ordering::Relaxed) {
                return self.serve_spool(&mut wants[first..], sink);
            }
            let limit = if self.multi_range.load(Ordering::Relaxed) {
                self.max_ranges
            } else {
                1
            };
            let (mut end, mut count, mut header_len) = (first, 0usize, 6usize);
            while end < wants.len() && count < limit {
                if !wants[end].done() {
                    let l = spec_len(&wants[end]) + 1;
                    if count > 0 && header_len + l > MAX_RANGE_HEADER {
                        break;
                    }
                    header_len += l;
                    count += 1;
                }
                end += 1;
            }
            let group = &mut wants[first..end];
            let mut failures = 0u32;
            loop {
                let before: u64 = group.iter().map(|w| w.next).sum();
                match self.fetch_group(group, buf, sink) {
                    Ok(Outcome::Done) | Ok(Outcome::Again) => break,
                    Ok(Outcome::Break) => return Ok(()),
                    Ok(Outcome::Spool(body)) => {
                        self.start_spool(body)?;
                        break;
                    }
                    Err(e) if e.is_retryable() => {
                        let after: u64 = group.iter().map(|w| w.next).sum();
                        if after > before {
                            failures = 0;
                        }
                        failures += 1;
                        if failures >= self.max_attempts {
                            return Err(e);
                        }
                        self.pause(failures);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// What [`HttpSource::raw_open`] got.
enum RawOpen {
    /// A `206` for exactly the bytes asked for; the body follows.
    Body(RawBody),
    /// Not for the bulk path (it is off from now on): ask through `ureq`.
    Fallback,
}

/// A `200` body on the bulk path, read by the spool: `left` bytes (or to
/// the end of the connection).
struct RawSpool {
    conn: raw::Conn,
    left: Option<u64>,
}

impl Read for RawSpool {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = match self.left {
            Some(0) => return Ok(0),
            Some(n) => n.min(buf.len() as u64) as usize,
            None => buf.len(),
        };
        let n = self.conn.read_body(&mut buf[..want])?;
        if let Some(left) = &mut self.left {
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed inside the body",
                ));
            }
            *left -= n as u64;
        }
        Ok(n)
    }
}

/// A response body being read on the bulk path: bytes `at..end` are
/// still to come.
struct RawBody {
    conn: raw::Conn,
    close: bool,
    at: u64,
    end: u64,
}

impl HttpSource {
    /// True while single-range requests take the bulk path.
    fn raw_enabled(&self) -> bool {
        self.raw.is_some()
            && self.raw_on.load(Ordering::Relaxed)
            && !self.spooling.load(Ordering::Relaxed)
    }

    /// Stop using the bulk path (the server needs what `ureq` does).
    fn raw_off(&self) {
        self.raw_on.store(false, Ordering::Relaxed);
        lock(&self.raw_idle).clear();
    }

    fn io_error(&self, e: io::Error, what: &str) -> TransportError {
        TransportError::new(io_kind(&e), self.context(what)).with_source(e)
    }

    /// The `HEAD` of [`Self::probe`] on the bulk path (so its connection
    /// is the one the first `GET` reuses): true if it answered `200` with
    /// a length; false (and the bulk path off) for anything else, which
    /// `ureq` then asks again.
    fn raw_probe(&mut self) -> Result<bool, TransportError> {
        let Some(target) = &self.raw else {
            return Ok(false);
        };
        let mut conn = target.connect().map_err(|e| self.io_error(e, "HEAD"))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let head = match conn.exchange(&target.head_request()) {
            Ok(h) => h,
            Err(HeadError::Io(e)) => return Err(self.io_error(e, "HEAD")),
            Err(HeadError::Closed | HeadError::Bad(_)) => {
                self.raw_off();
                return Ok(false);
            }
        };
        match (head.status, head.content_length) {
            (200, Some(len)) => {
                self.learn_fields(head.etag.as_deref(), head.last_modified.as_deref());
                self.len = len;
                if !head.close {
                    // A HEAD response has no body.
                    conn.reused = true;
                    lock(&self.raw_idle).push(conn);
                }
                Ok(true)
            }
            (404 | 410 | 401 | 407, _) => Err(self.status_error(head.status, "HEAD")),
            (c, _) if c == 408 || c == 429 || c >= 500 && c != 501 => {
                Err(self.status_error(c, "HEAD"))
            }
            _ => {
                self.raw_off();
                Ok(false)
            }
        }
    }

    /// Ask for bytes `first..end` (not empty) on the bulk path and check
    /// the response head as strictly as [`Self::fetch_group`] does: a
    /// `206` with the validators of the first response, a
    /// `Content-Range` of exactly the range asked for and the known
    /// length, and a `Content-Length` to match. A different version is
    /// [`TransportErrorKind::Changed`]; statuses map as everywhere; a
    /// redirect, a `200` of the same version (a server ignoring `Range`),
    /// a chunked, multipart or length-less `206` turn the bulk path off
    /// and are asked again through `ureq`.
    fn raw_open(&self, first: u64, end: u64, what: &str) -> Result<RawOpen, TransportError> {
        let Some(target) = &self.raw else {
            return Ok(RawOpen::Fallback);
        };
        let request = target.request(first, end - 1, self.if_range.as_deref());
        let bad = |detail: String| {
            self.error(TransportErrorKind::Protocol, &format!("{what}: {detail}"))
                .with_range(first..end)
        };
        let (mut conn, head) = loop {
            let pooled = lock(&self.raw_idle).pop();
            let fresh = pooled.is_none();
            let mut conn = match pooled {
                Some(c) => c,
                None => target.connect().map_err(|e| self.io_error(e, what))?,
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            match conn.exchange(&request) {
                Ok(head) => break (conn, head),
                // A kept-alive connection the server closed while idle.
                Err(HeadError::Closed | HeadError::Io(_)) if !fresh => continue,
                Err(HeadError::Closed) => {
                    return Err(self
                        .error(
                            TransportErrorKind::ConnectionLost,
                            &format!("{what}: the connection closed before a response"),
                        )
                        .with_range(first..end));
                }
                Err(HeadError::Io(e)) => return Err(self.io_error(e, what).with_range(first..end)),
                Err(HeadError::Bad(detail)) => return Err(bad(detail)),
            }
        };
        let (etag, lm) = (head.etag.as_deref(), head.last_modified.as_deref());
        match head.status {
            206 => self.check_validators(etag, lm, None, false, what)?,
            200 => {
                self.check_validators(etag, lm, head.content_length, true, what)?;
                self.raw_off();
                if head.transfer_encoding {
                    return Ok(RawOpen::Fallback);
                }
                // The server ignores `Range`: this body is the package;
                // spool it rather than ask again.
                let body = RawSpool {
                    conn,
                    left: head.content_length,
                };
                self.start_spool(Box::new(body))?;
                return Ok(RawOpen::Fallback);
            }
            416 => {
                return Err(self
                    .unsatisfied_error(head.content_range.as_deref(), what)
                    .with_range(first..end));
            }
            300..=399 => {
                self.raw_off();
                return Ok(RawOpen::Fallback);
            }
            code => return Err(self.status_error(code, what).with_range(first..end)),
        }
        let multipart = head.content_type.as_deref().is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        });
        if head.transfer_encoding || multipart || head.content_length.is_none() {
            self.raw_off();
            return Ok(RawOpen::Fallback);
        }
        let Some(cr) = head.content_range.as_deref() else {
            return Err(bad(String::from("206 without Content-Range")));
        };
        match parse_content_range(cr.as_bytes()) {
            Ok(ContentRange::Satisfied {
                first: f,
                last,
                complete,
            }) => {
                self.check_complete(complete, what, cr, &bad)?;
                if f != first || last.checked_add(1) != Some(end) {
                    return Err(bad(format!(
                        "Content-Range `{cr}` is not the range asked for"
                    )));
                }
            }
            _ => return Err(bad(format!("malformed Content-Range `{cr}`"))),
        }
        if head.content_length != Some(end - first) {
            return Err(bad(format!(
                "Content-Length {:?} disagrees with Content-Range `{cr}`",
                head.content_length
            )));
        }
        conn.reused = false;
        Ok(RawOpen::Body(RawBody {
            conn,
            close: head.close,
            at: first,
            end,
        }))
    }

    /// Read the next bytes of `body` into `buf` (at most what is left):
    /// the count, never 0.
    fn raw_next(
        &self,
        body: &mut RawBody,
        buf: &mut [u8],
        what: &str,
    ) -> Result<usize, TransportError> {
        let want = (body.end - body.at).min(buf.len() as u64) as usize;
        match body.conn.read_body(&mut buf[..want]) {
            Ok(0) => Err(self
                .error(
                    TransportErrorKind::ConnectionLost,
                    &format!("{what}: body ended at {}", body.at),
                )
                .with_range(body.at..body.end)),
            Ok(n) => {
                self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                body.at += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.io_error(e, what).with_range(body.at..body.end)),
        }
    }

    /// A body read to its end: keep its connection for the next request.
    fn raw_done(&self, body: RawBody) {
        if body.at == body.end && !body.close {
            let mut conn = body.conn;
            conn.reused = true;
            let mut idle = lock(&self.raw_idle);
            if idle.len() < 4 {
                idle.push(conn);
            }
        }
    }

    /// [`Self::read_single`] on the bulk path.
    #[allow(clippy::too_many_arguments)]
    fn raw_read(
        &self,
        mut body: RawBody,
        first: u64,
        end: u64,
        group: &mut [Want],
        buf: &mut [u8],
        sink: &mut ChunkSink<'_>,
        what: &str,
    ) -> Result<Outcome, TransportError> {
        debug_assert_eq!((body.at, body.end), (first, end));
        while body.at < body.end {
            if group.iter().all(Want::done) {
                return Ok(Outcome::Done);
            }
            let at = body.at;
            let n = self.raw_next(&mut body, buf, what)?;
            if deliver(group, at, &buf[..n], sink).is_break() {
                return Ok(Outcome::Break);
            }
        }
        self.raw_done(body);
        if !group.iter().all(Want::done) {
            return Err(self.error(
                TransportErrorKind::Protocol,
                &format!("{what}: bytes missing from the response"),
            ));
        }
        Ok(Outcome::Done)
    }

    /// Fill `buf` with the package's bytes at `at` on the bulk path,
    /// continuing the response in `stream` when it is at `at`; a new `GET`
    /// asks for `at..until` (`until` at least the end of `buf`: the end of
    /// the range a driver announced). Each `GET` carries `If-Range`, so a
    /// package replaced between two requests is noticed. Retryable
    /// failures are retried as [`HttpSource`] retries (backoff, at most
    /// [`HttpOptions::max_attempts`] without progress), asking only for
    /// what has not arrived. When the server turns out to need `ureq` (see
    /// [`HttpSource::raw_open`]), the rest is read through `ureq`.
    ///
    /// # Errors
    /// As [`RangeSource::read_ranges`]: a retryable error only after the
    /// attempts ran out; [`TransportErrorKind::Changed`] at once.
    fn bulk_read_exact_at(
        &self,
        stream: &mut BulkStream,
        at: u64,
        buf: &mut [u8],
        until: u64,
    ) -> Result<(), TransportError> {
        let end = at.saturating_add(buf.len() as u64);
        let until = until.clamp(end, self.len.max(end));
        if end > self.len {
            return Err(self
                .error(
                    TransportErrorKind::RangeNotSatisfiable,
                    &format!("the package is {} bytes", self.len),
                )
                .with_range(at..end));
        }
        let mut got = 0usize;
        let mut failures = 0u32;
        while got < buf.len() {
            let pos = at + got as u64;
            if stream.body.as_ref().is_none_or(|b| b.at != pos) {
                stream.body = None;
                if !self.raw_enabled() {
                    return self.plain_read_exact_at(pos, &mut buf[got..]);
                }
                let what = format!("GET bytes {pos}..{until}");
                match self.raw_open(pos, until, &what) {
                    Ok(RawOpen::Body(b)) => stream.body = Some(b),
                    Ok(RawOpen::Fallback) => continue,
                    Err(e) if e.is_retryable() && failures + 1 < self.max_attempts => {
                        failures += 1;
                        self.pause(failures);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(body) = stream.body.as_mut() else {
                continue;
            };
            let what = format!("GET bytes {pos}..{}", body.end);
            match self.raw_next(body, &mut buf[got..], &what) {
                Ok(n) => {
                    got += n;
                    failures = 0;
                    if body.at == body.end
                        && let Some(b) = stream.body.take()
                    {
                        self.raw_done(b);
                    }
                }
                Err(e) => {
                    stream.body = None;
                    if e.is_retryable() && failures + 1 < self.max_attempts {
                        failures += 1;
                        self.pause(failures);
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// [`RangeSource::read_exact_at`] through `read_ranges` (`ureq`, or
    /// one bulk `GET` per call).
    fn plain_read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self.read_at(at, &mut buf[done..])?;
            if n == 0 {
                return Err(self
                    .error(
                        TransportErrorKind::RangeNotSatisfiable,
                        &format!("the package ends at {at}"),
                    )
                    .with_range(offset..offset + buf.len() as u64));
            }
            done += n;
        }
        Ok(())
    }
}

fn env_credentials() -> Option<Credentials> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = get("SFT_HTTP_TOKEN") {
        return Some(Credentials::Bearer(token));
    }
    get("SFT_HTTP_USER").map(|user| Credentials::Basic {
        user,
        password: get("SFT_HTTP_PASSWORD").unwrap_or_default(),
    })
}

fn roots(options: &HttpOptions, https: bool) -> Result<RootCerts, Error> {
    if let Some(path) = &options.ca_file {
        return ca_file_roots(path);
    }
    if !https {
        // Only a redirect could need TLS: the bundled web PKI roots.
        return Ok(RootCerts::WebPki);
    }
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        // No system store: fall back to the bundled Mozilla roots.
        return Ok(RootCerts::WebPki);
    }
    Ok(RootCerts::from(certs))
}

/// The agent: ureq's own connectors, or, with a CA file, TCP (through a
/// CONNECT proxy when one is configured) and TLS with
/// [`tls::client_config`], which also accepts a server certificate given
/// exactly in the CA file (pinning, `docs/HTTP.md`).
fn new_agent(
    config: ureq::config::Config,
    ca_file: Option<&Path>,
    custom: Option<Arc<rustls::ClientConfig>>,
) -> Result<Agent, Error> {
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
    let tls = match (custom, ca_file) {
        (Some(tls), _) => tls,
        (None, Some(path)) => {
            let certs = tls::ca_file_certs(path).map_err(Error::InvalidInput)?;
            tls::client_config(Some(&certs)).map_err(Error::InvalidInput)?
        }
        (None, None) => return Ok(Agent::new_with_config(config)),
    };
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(tls::PinnedTlsConnector { config: tls });
    Ok(Agent::with_parts(
        config,
        connector,
        ureq::unversioned::resolver::DefaultResolver::default(),
    ))
}

fn ca_file_roots(path: &Path) -> Result<RootCerts, Error> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bad = |detail: String| Error::InvalidInput(format!("CA file {}: {detail}", path.display()));
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for c in iter {
        let c = c.map_err(|e| bad(e.to_string()))?;
        certs.push(Certificate::from_der(c.as_ref()).to_owned());
    }
    if certs.is_empty() {
        return Err(bad(String::from("no certificates")));
    }
    Ok(RootCerts::from(certs))
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

/// A tiny single-threaded HTTP/1.1 server for the documentation
/// examples: `HEAD`, `GET` and single `Range: bytes=a-b` requests for one
/// body, with an `ETag`. Not part of the API.
#[doc(hidden)]
pub mod doc_server {
    use std::io::{self, BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};

    /// Serve `body` on 127.0.0.1 in a background thread; returns its URL.
    ///
    /// # Errors
    /// If the listener cannot be bound.
    pub fn serve(body: Vec<u8>) -> io::Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}/app.sft", listener.local_addr()?);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let body = body.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, &body);
                });
            }
        });
        Ok(url)
    }

    fn handle(conn: TcpStream, body: &[u8]) -> io::Result<()> {
        let mut reader = BufReader::new(conn.try_clone()?);
        let mut out = conn;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let head = line.starts_with("HEAD");
            let mut range = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h)? == 0 {
                    return Ok(());
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some(v) = h
                    .strip_prefix("Range: bytes=")
                    .or_else(|| h.strip_prefix("range: bytes="))
                {
                    let mut it = v.splitn(2, '-').map(|n| n.trim().parse::<usize>().ok());
                    if let (Some(Some(a)), Some(Some(b))) = (it.next(), it.next()) {
                        range = Some((a, b.min(body.len().saturating_sub(1))));
                    }
                }
            }
            let etag = format!("\"doc-{}\"", body.len());
            let (status, part, extra) = match range {
                Some((a, b)) if a <= b && b < body.len() => (
                    "206 Partial Content",
                    &body[a..=b],
                    format!("Content-Range: bytes {a}-{b}/{}\r\n", body.len()),
                ),
                _ => ("200 OK", body, String::new()),
            };
            write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n{extra}\r\n",
                part.len()
            )?;
            if !head {
                out.write_all(part)?;
            }
            out.flush()?;
        }
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
