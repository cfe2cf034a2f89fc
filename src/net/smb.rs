//! The SMB2/3 file-server transport: [`SmbSource`] serves a package on a
//! Windows or Samba file share as a [`RangeSource`] (feature `smb`), the
//! App-V 4.x "file server" streaming method.
//!
//! # Where
//!
//! [`SmbSource::open`] accepts the forms OSD `CODEBASE` HREFs use:
//!
//! - `smb://[user@]host[:port]/share/dir/app.sft` (`user` may be
//!   `DOMAIN;user`; components may be percent-encoded);
//! - UNC `\\host\share\dir\app.sft`;
//! - `file://\\host\share\dir\app.sft`.
//!
//! [`is_smb_spec`] tells those apart from paths and other URLs.
//!
//! # How it reads
//!
//! One SMB connection (the pure-Rust `smb` crate, synchronous, with
//! signing) per source: session setup, tree connect to the share, one
//! read-only handle on the file. Reads are positional SMB2 `READ`s of up to
//! [`SmbOptions::read_size`] bytes (1 MiB by default), capped by the
//! server's negotiated maximum read size. [`RangeSource::read_ranges`]
//! cuts the requested ranges into such pieces and keeps up to
//! [`SmbOptions::max_reads_in_flight`] of them outstanding at once on the
//! one handle (each from its own thread; the crate multiplexes requests on
//! the connection by message id), delivering chunks as they complete, in
//! any order, each byte once.
//!
//! The `smb` and `smb-transport` crates (0.12.1) are built from
//! `vendor/` with small fixes (`vendor/README.md`): `TCP_NODELAY` and one
//! write per request (without them every request waited about 40 ms for
//! a delayed ACK, and a fetch ran at 0.05 x `smbclient`'s speed); a
//! message is received whole even across the worker's 100 ms polling
//! timeout; closing a connection no longer waits for that timeout; and
//! credits granted by interim (`STATUS_PENDING`) responses are counted
//! (Samba answers many reads that way, and without it the credits ran out
//! and the next read waited forever).
//!
//! # Errors and reconnection
//!
//! NTSTATUS codes map to kinds: `ACCESS_DENIED` is
//! [`PermissionDenied`](TransportErrorKind::PermissionDenied) with a
//! message naming the share and the path; `LOGON_FAILURE` (and the other
//! account failures) [`Authentication`](TransportErrorKind::Authentication);
//! `OBJECT_NAME_NOT_FOUND`, `OBJECT_PATH_NOT_FOUND` and `BAD_NETWORK_NAME`
//! [`NotFound`](TransportErrorKind::NotFound). A refused or dropped
//! connection, an expired session or a closed handle is
//! [`ConnectionLost`](TransportErrorKind::ConnectionLost) (retryable): the
//! source drops the connection, waits (exponential backoff), connects,
//! authenticates and opens the file again, checks that its length is
//! unchanged ([`Changed`](TransportErrorKind::Changed) otherwise) and
//! resumes with the bytes not yet delivered, up to
//! [`SmbOptions::max_attempts`] attempts without progress.
//!
//! # Credentials
//!
//! The user comes from [`SmbOptions::user`], else the spec's `user@`,
//! else a credentials file ([`SmbOptions::credentials_file`], in
//! smbclient's `-A` format: `username = …`, `password = …`,
//! `domain = …`), else `SFT_SMB_USER`; the password from
//! [`SmbOptions::password`], else the file, else `SFT_SMB_PASSWORD`; the
//! domain likewise (`SFT_SMB_DOMAIN`). They are handed to NTLM only:
//! never logged, never in an error message or [`RangeSource::endpoint`]
//! (which shows `smb://host[:port]/share/path`), and redacted by the
//! `Debug` impls.

use core::fmt;
use core::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::Duration;

use smb::{Client, ClientConfig, File, FileAccessMask, FileCreateArgs, GetLen, Resource, UncPath};

use crate::error::Error;
use crate::io::{ChunkSink, RangeSource};
use crate::stream::{TransportError, TransportErrorKind};

/// The default SMB port.
const DEFAULT_PORT: u16 = 445;
/// Read size used when the server does not say its maximum.
const FALLBACK_MAX_READ: usize = 64 * 1024;
/// SMB2 credits the client asks the server to keep granting: each 64 KiB
/// of a request costs one, so 8 reads of 1 MiB in flight need 128.
const CREDITS: u16 = 512;

/// True if `s` names a file on an SMB share: `smb://…` (scheme in any
/// case), a UNC path `\\host\share\…`, or `file://\\host\share\…`.
///
/// ```
/// use sft::net::smb::is_smb_spec;
///
/// assert!(is_smb_spec("smb://fs01/content/app.sft"));
/// assert!(is_smb_spec(r"\\fs01\content\app.sft"));
/// assert!(is_smb_spec(r"file://\\fs01\content\app.sft"));
/// assert!(!is_smb_spec("/srv/app.sft"));
/// assert!(!is_smb_spec("https://cdn.example/app.sft"));
/// ```
pub fn is_smb_spec(s: &str) -> bool {
    smb_scheme_rest(s).is_some() || unc_rest(s).is_some()
}

fn smb_scheme_rest(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    (b.len() >= 6 && b[..6].eq_ignore_ascii_case(b"smb://")).then(|| &s[6..])
}

fn unc_rest(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let s = if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"file://") {
        &s[7..]
    } else {
        s
    };
    s.strip_prefix(r"\\")
}

/// A parsed location: host, port, share, path inside the share, and the
/// user named in the spec (if any).
#[derive(Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: Option<u16>,
    share: String,
    /// Path inside the share, `\`-separated, no leading separator.
    path: String,
    user: Option<String>,
    password: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("share", &self.share)
            .field("path", &self.path)
            .field("user", &self.user.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn bad_spec(detail: &str) -> Error {
    Error::InvalidInput(format!("SMB location: {detail}"))
}

fn parse_spec(spec: &str) -> Result<Target, Error> {
    let (authority, rest, url) = if let Some(rest) = smb_scheme_rest(spec) {
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (authority.to_owned(), path.to_owned(), true)
    } else if let Some(rest) = unc_rest(spec) {
        let (authority, path) = rest.split_once(['\\', '/']).unwrap_or((rest, ""));
        (authority.to_owned(), path.to_owned(), false)
    } else {
        return Err(bad_spec(
            "expected smb://host/share/path, \\\\host\\share\\path or file://\\\\host\\share\\path",
        ));
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) if url => (Some(u), h),
        _ => (None, authority.as_str()),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(u)), None),
        },
    };
    let (host, port) = split_host_port(hostport)?;
    if host.is_empty() {
        return Err(bad_spec("no host"));
    }
    let mut parts = rest
        .split(['/', '\\'])
        .filter(|p| !p.is_empty())
        .map(|p| if url { percent_decode(p) } else { p.to_owned() });
    let share = parts.next().ok_or_else(|| bad_spec("no share name"))?;
    let path: Vec<String> = parts.collect();
    if path.is_empty() {
        return Err(bad_spec("no file path after the share name"));
    }
    if path.iter().any(|p| p == "." || p == "..") {
        return Err(bad_spec("`.` and `..` are not allowed in the path"));
    }
    Ok(Target {
        host,
        port,
        share,
        path: path.join("\\"),
        user: user.filter(|u| !u.is_empty()),
        password,
    })
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), Error> {
    let port_of = |p: &str| {
        p.parse::<u16>()
            .map(Some)
            .map_err(|_| bad_spec("bad port number"))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| bad_spec("unclosed `[` in host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => None,
            None => return Err(bad_spec("junk after `]` in host")),
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_owned(), port_of(p)?)),
        None => Ok((s.to_owned(), None)),
    }
}

/// Options for [`SmbSource::open`]: port, credentials, timeouts, read
/// size and concurrency, retries. By-value builder; credentials are never
/// shown by `Debug`.
///
/// ```
/// use std::time::Duration;
/// use sft::net::smb::SmbOptions;
///
/// let opts = SmbOptions::default()
///     .port(4455)
///     .user("alice")
///     .password("s3cret")
///     .domain("CORP")
///     .timeout(Duration::from_secs(10))
///     .max_reads_in_flight(8);
/// let shown = format!("{opts:?}");
/// assert!(!shown.contains("s3cret") && !shown.contains("alice"));
/// assert_eq!(opts.get_max_reads_in_flight(), 8);
/// ```
#[derive(Clone)]
pub struct SmbOptions {
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    domain: Option<String>,
    credentials_file: Option<PathBuf>,
    env_credentials: bool,
    timeout: Duration,
    read_size: usize,
    in_flight: usize,
    max_attempts: u32,
    retry_backoff: Duration,
}

impl fmt::Debug for SmbOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("SmbOptions")
            .field("port", &self.port)
            .field("user", &hide(&self.user))
            .field("password", &hide(&self.password))
            .field("domain", &hide(&self.domain))
            .field("credentials_file", &self.credentials_file)
            .field("env_credentials", &self.env_credentials)
            .field("timeout", &self.timeout)
            .field("read_size", &self.read_size)
            .field("in_flight", &self.in_flight)
            .field("max_attempts", &self.max_attempts)
            .field("retry_backoff", &self.retry_backoff)
            .finish()
    }
}

impl Default for SmbOptions {
    fn default() -> Self {
        SmbOptions {
            port: None,
            user: None,
            password: None,
            domain: None,
            credentials_file: None,
            env_credentials: false,
            timeout: Duration::from_secs(30),
            read_size: 1024 * 1024,
            in_flight: 8,
            max_attempts: 1,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

impl SmbOptions {
    /// The defaults: port 445 (unless the spec names one), credentials
    /// from the spec and the environment, 30 s timeout, 1 MiB reads, 8 in
    /// flight, 1 attempt (retrying is the stream session's:
    /// `SessionConfig::retry`).
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new();
    /// assert_eq!(opts.get_read_size(), 1024 * 1024);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The TCP port, overriding the one in the spec (default 445).
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().port(4455);
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The user name (`user`, `DOMAIN\user` or `user@realm`); overrides
    /// the spec, the credentials file and `SFT_SMB_USER`.
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().user("alice");
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The password; overrides the credentials file and
    /// `SFT_SMB_PASSWORD`.
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().password("s3cret");
    /// assert!(!format!("{opts:?}").contains("s3cret"));
    /// ```
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The NTLM domain; overrides the credentials file and
    /// `SFT_SMB_DOMAIN`.
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().domain("CORP");
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// A credentials file in smbclient's `-A` format (`username = …`,
    /// `password = …`, `domain = …`; `#` and `;` start comments), read at
    /// [`SmbSource::open`].
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().credentials_file("/etc/sft/smb.cred");
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Whether to read `SFT_SMB_USER`, `SFT_SMB_PASSWORD` and
    /// `SFT_SMB_DOMAIN` when the flags, the URL and the credentials file
    /// leave a part open (default false: a library reads the process
    /// environment only when its caller asks; the `sft` binary does).
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().env_credentials(true);
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn env_credentials(mut self, on: bool) -> Self {
        self.env_credentials = on;
        self
    }

    /// The timeout for connecting and for each request (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = sft::net::smb::SmbOptions::new().timeout(Duration::from_secs(5));
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The largest single read in bytes (default 1 MiB; between 4 KiB and
    /// 8 MiB, and capped by the server's maximum read size). Larger reads
    /// were not faster against Samba: the data of a read reaches the
    /// session only once the whole read has arrived.
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().read_size(256 * 1024);
    /// assert_eq!(opts.get_read_size(), 256 * 1024);
    /// ```
    #[must_use]
    pub fn read_size(mut self, n: usize) -> Self {
        self.read_size = n.clamp(4096, 8 * 1024 * 1024);
        self
    }

    /// The read size set by [`SmbOptions::read_size`].
    ///
    /// ```
    /// assert_eq!(sft::net::smb::SmbOptions::new().get_read_size(), 1 << 20);
    /// ```
    pub fn get_read_size(&self) -> usize {
        self.read_size
    }

    /// How many reads [`RangeSource::read_ranges`] keeps outstanding at
    /// once (default 8; 1 reads sequentially).
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().max_reads_in_flight(1);
    /// assert_eq!(opts.get_max_reads_in_flight(), 1);
    /// ```
    #[must_use]
    pub fn max_reads_in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.clamp(1, 64);
        self
    }

    /// The value set by [`SmbOptions::max_reads_in_flight`].
    ///
    /// ```
    /// assert_eq!(sft::net::smb::SmbOptions::new().get_max_reads_in_flight(), 8);
    /// ```
    pub fn get_max_reads_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Attempts per read (and for connecting) before a retryable failure
    /// is returned; counting restarts after progress (default 1, at
    /// least 1: a stream session retries the source within its window,
    /// [`SessionConfig::retry`](crate::stream::SessionConfig::retry), so
    /// retries here would multiply with its).
    ///
    /// ```
    /// let opts = sft::net::smb::SmbOptions::new().max_attempts(2);
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The first pause before a retry, doubled each time (default 200 ms).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = sft::net::smb::SmbOptions::new().retry_backoff(Duration::from_millis(50));
    /// # let _ = opts;
    /// ```
    #[must_use]
    pub fn retry_backoff(mut self, t: Duration) -> Self {
        self.retry_backoff = t;
        self
    }
}

/// Credentials, never shown.
#[derive(Clone)]
struct Credentials {
    /// `DOMAIN\user` or `user`.
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

#[derive(Default)]
struct FileCredentials {
    user: Option<String>,
    password: Option<String>,
    domain: Option<String>,
}

fn read_credentials_file(path: &Path) -> Result<FileCredentials, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("SMB credentials file {}", path.display()), e))?;
    let mut out = FileCredentials::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = Some(v.trim().to_owned());
        match k.trim().to_ascii_lowercase().as_str() {
            "username" | "user" => out.user = v,
            "password" => out.password = v,
            "domain" | "workgroup" => out.domain = v,
            _ => {}
        }
    }
    Ok(out)
}

fn credentials(target: &Target, options: &SmbOptions) -> Result<Credentials, Error> {
    let file = match &options.credentials_file {
        Some(p) => read_credentials_file(p)?,
        None => FileCredentials::default(),
    };
    let env = |k: &str| {
        options
            .env_credentials
            .then(|| std::env::var(k).ok())
            .flatten()
            .filter(|v| !v.is_empty())
    };
    // A spec user of the form `DOMAIN;user` (the smb URL convention).
    let (spec_domain, spec_user) = match target.user.as_deref().map(|u| u.split_once(';')) {
        Some(Some((d, u))) => (Some(d.to_owned()), Some(u.to_owned())),
        Some(None) => (None, target.user.clone()),
        None => (None, None),
    };
    let user = options
        .user
        .clone()
        .or(spec_user)
        .or(file.user)
        .or_else(|| env("SFT_SMB_USER"))
        .ok_or_else(|| {
            Error::InvalidInput(String::from(
                "SMB: no user name (give smb://user@host/…, a credentials file or SFT_SMB_USER)",
            ))
        })?;
    let password = options
        .password
        .clone()
        .or_else(|| target.password.clone())
        .or(file.password)
        .or_else(|| env("SFT_SMB_PASSWORD"))
        .unwrap_or_default();
    let domain = options
        .domain
        .clone()
        .or(spec_domain)
        .or(file.domain)
        .or_else(|| env("SFT_SMB_DOMAIN"));
    let user = match domain {
        Some(d) if !user.contains('\\') && !user.contains('@') => format!("{d}\\{user}"),
        _ => user,
    };
    Ok(Credentials { user, password })
}

/// One live connection: the client (connection, session, tree) and the
/// open file.
struct Conn {
    // Field order: the file handle goes before the client.
    file: File,
    _client: Client,
    max_read: usize,
}

/// Counters of an [`SmbSource`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmbStats {
    /// Connections made (1 after [`SmbSource::open`], one more per
    /// reconnection).
    pub connects: u64,
    /// SMB2 `READ` requests that returned data.
    pub reads: u64,
    /// Bytes those reads returned.
    pub bytes: u64,
}

/// A package on an SMB share, read with SMB2/3 `READ`s on one connection
/// that is re-established after a drop. See the [module docs](self).
///
/// ```no_run
/// # fn main() -> sft::Result<()> {
/// use sft::io::RangeSource;
/// use sft::net::smb::{SmbOptions, SmbSource};
///
/// let opts = SmbOptions::default().password("Passw0rd!");
/// let src = SmbSource::open("smb://smbtest@127.0.0.1:4455/share/app.sft", &opts)?;
/// let mut header = [0u8; 128];
/// src.read_exact_at(0, &mut header)?;
/// println!("{} is {} bytes", src.endpoint(), src.len()?);
/// # Ok(()) }
/// ```
pub struct SmbSource {
    target: Target,
    credentials: Credentials,
    shown: String,
    port: u16,
    timeout: Duration,
    read_size: usize,
    in_flight: usize,
    max_attempts: u32,
    retry_backoff: Duration,
    len: u64,
    conn: Mutex<Option<Arc<Conn>>>,
    connects: AtomicU64,
    reads: AtomicU64,
    bytes: AtomicU64,
}

impl fmt::Debug for SmbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmbSource")
            .field("endpoint", &self.shown)
            .field("credentials", &self.credentials)
            .field("len", &self.len)
            .field("read_size", &self.read_size)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// NTSTATUS values this module maps.
mod status {
    pub(super) const ACCESS_DENIED: u32 = 0xC000_0022;
    pub(super) const NO_SUCH_FILE: u32 = 0xC000_000F;
    pub(super) const OBJECT_NAME_INVALID: u32 = 0xC000_0033;
    pub(super) const OBJECT_NAME_NOT_FOUND: u32 = 0xC000_0034;
    pub(super) const OBJECT_PATH_NOT_FOUND: u32 = 0xC000_003A;
    pub(super) const LOGON_FAILURE: u32 = 0xC000_006D;
    pub(super) const ACCOUNT_RESTRICTION: u32 = 0xC000_006E;
    pub(super) const INVALID_LOGON_HOURS: u32 = 0xC000_006F;
    pub(super) const PASSWORD_EXPIRED: u32 = 0xC000_0071;
    pub(super) const ACCOUNT_DISABLED: u32 = 0xC000_0072;
    pub(super) const ACCOUNT_LOCKED_OUT: u32 = 0xC000_0234;
    pub(super) const INSUFFICIENT_RESOURCES: u32 = 0xC000_009A;
    pub(super) const IO_TIMEOUT: u32 = 0xC000_00B5;
    pub(super) const NETWORK_NAME_DELETED: u32 = 0xC000_00C9;
    pub(super) const BAD_NETWORK_NAME: u32 = 0xC000_00CC;
    pub(super) const FILE_CLOSED: u32 = 0xC000_0128;
    pub(super) const LOCAL_DISCONNECT: u32 = 0xC000_013B;
    pub(super) const REMOTE_DISCONNECT: u32 = 0xC000_013C;
    pub(super) const USER_SESSION_DELETED: u32 = 0xC000_0203;
    pub(super) const CONNECTION_DISCONNECTED: u32 = 0xC000_020C;
    pub(super) const NETWORK_SESSION_EXPIRED: u32 = 0xC000_035C;
}

fn status_kind(s: u32) -> TransportErrorKind {
    use TransportErrorKind as K;
    use status::*;
    match s {
        ACCESS_DENIED => K::PermissionDenied,
        LOGON_FAILURE | ACCOUNT_RESTRICTION | INVALID_LOGON_HOURS | PASSWORD_EXPIRED
        | ACCOUNT_DISABLED | ACCOUNT_LOCKED_OUT => K::Authentication,
        NO_SUCH_FILE
        | OBJECT_NAME_INVALID
        | OBJECT_NAME_NOT_FOUND
        | OBJECT_PATH_NOT_FOUND
        | BAD_NETWORK_NAME => K::NotFound,
        IO_TIMEOUT => K::Timeout,
        INSUFFICIENT_RESOURCES => K::Io,
        NETWORK_NAME_DELETED
        | FILE_CLOSED
        | LOCAL_DISCONNECT
        | REMOTE_DISCONNECT
        | USER_SESSION_DELETED
        | CONNECTION_DISCONNECTED
        | NETWORK_SESSION_EXPIRED => K::ConnectionLost,
        _ => K::Protocol,
    }
}

fn error_kind(e: &smb::Error) -> TransportErrorKind {
    use TransportErrorKind as K;
    use smb::Error as E;
    use smb::transport::TransportError as T;
    match e {
        E::ReceivedErrorMessage(s, _) | E::UnexpectedMessageStatus(s) => status_kind(*s),
        E::OperationTimeout(..) | E::TransportError(T::Timeout(_)) => K::Timeout,
        E::TransportError(T::InvalidAddress(_)) => K::NotFound,
        E::IoError(_)
        | E::ConnectionStopped
        | E::TransportError(_)
        | E::ChannelRecvError(_)
        | E::Cancelled(_)
        | E::NotFound(_) => K::ConnectionLost,
        E::SspiError(_) => K::Authentication,
        // An incoming message that fails its signature check (or cannot
        // be decrypted): the connection's stream is not to be trusted, so
        // it is dropped and made again, as a damaged block is re-fetched
        // (rarely seen during session set-up under load).
        E::TranformFailed(t) if !t.outgoing => K::ConnectionLost,
        _ => K::Protocol,
    }
}

/// Every SMB message arrives in a fresh heap buffer (one per `READ`
/// response, plus the crate's copy of its data). glibc's malloc serves
/// blocks of 128 KiB and more with `mmap` and gives freed memory back to
/// the kernel soon after, so each response costs page faults and zeroed
/// pages: a third of a fetch's CPU time in `perf`. Freeing one large
/// `mmap`ed block raises glibc's thresholds for the whole process (its
/// documented "dynamic mmap threshold", up to 32 MiB; the trim threshold
/// to twice that), after which responses reuse heap memory. Costs one
/// `mmap`/`munmap` pair (no page is touched); other allocators ignore it.
fn warm_allocator() {
    drop(std::hint::black_box(Vec::<u8>::with_capacity(24 << 20)));
}

/// Display of the source: `smb://host[:port]/share/path`, no user.
fn shown(t: &Target, port: u16) -> String {
    let host = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.clone()
    };
    let port = if port == DEFAULT_PORT {
        String::new()
    } else {
        format!(":{port}")
    };
    format!(
        "smb://{host}{port}/{}/{}",
        t.share,
        t.path.replace('\\', "/")
    )
}

impl SmbSource {
    /// Connect, authenticate, open the file read-only and learn its
    /// length. `spec` is `smb://[user@]host[:port]/share/path`,
    /// `\\host\share\path` or `file://\\host\share\path`.
    ///
    /// ```no_run
    /// # fn main() -> sft::Result<()> {
    /// use sft::net::smb::{SmbOptions, SmbSource};
    ///
    /// // User and password from SFT_SMB_USER / SFT_SMB_PASSWORD.
    /// let src = SmbSource::open(r"\\fs01\content\apps\word.sft", &SmbOptions::default())?;
    /// # let _ = src;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad spec or missing user;
    /// [`Error::Transport`] with kind
    /// [`Authentication`](TransportErrorKind::Authentication),
    /// [`PermissionDenied`](TransportErrorKind::PermissionDenied),
    /// [`NotFound`](TransportErrorKind::NotFound) or, after the retries,
    /// a retryable kind if the server cannot be reached.
    pub fn open(spec: &str, options: &SmbOptions) -> Result<SmbSource, Error> {
        let target = parse_spec(spec)?;
        let credentials = credentials(&target, options)?;
        warm_allocator();
        let port = options.port.or(target.port).unwrap_or(DEFAULT_PORT);
        let src = SmbSource {
            shown: shown(&target, port),
            target,
            credentials,
            port,
            timeout: options.timeout,
            read_size: options.read_size,
            in_flight: options.in_flight,
            max_attempts: options.max_attempts,
            retry_backoff: options.retry_backoff,
            len: 0,
            conn: Mutex::new(None),
            connects: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        };
        let (conn, len) = src.with_retry(|| src.connect())?;
        let mut src = src;
        src.len = len;
        *lock(&src.conn) = Some(conn);
        Ok(src)
    }

    /// Counters: connections made, reads, bytes.
    ///
    /// ```no_run
    /// # fn main() -> sft::Result<()> {
    /// use sft::net::smb::{SmbOptions, SmbSource};
    /// let src = SmbSource::open("smb://u@fs01/share/app.sft", &SmbOptions::default())?;
    /// assert_eq!(src.stats().connects, 1);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> SmbStats {
        SmbStats {
            connects: self.connects.load(Ordering::Relaxed),
            reads: self.reads.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// The largest read this source sends: [`SmbOptions::read_size`]
    /// capped by the server's maximum read size.
    ///
    /// ```no_run
    /// # fn main() -> sft::Result<()> {
    /// use sft::net::smb::{SmbOptions, SmbSource};
    /// let src = SmbSource::open("smb://u@fs01/share/app.sft", &SmbOptions::default())?;
    /// assert!(src.read_size() <= 8 << 20);
    /// # Ok(()) }
    /// ```
    pub fn read_size(&self) -> usize {
        lock(&self.conn)
            .as_ref()
            .map_or(self.read_size, |c| c.max_read)
    }

    fn error(&self, kind: TransportErrorKind, doing: &str) -> TransportError {
        let context = match kind {
            TransportErrorKind::PermissionDenied => format!(
                "{}: {doing}: access denied to share \\\\{}\\{} path \\{}",
                self.shown, self.target.host, self.target.share, self.target.path
            ),
            TransportErrorKind::NotFound => format!(
                "{}: {doing}: no file \\{} on share \\\\{}\\{}",
                self.shown, self.target.path, self.target.host, self.target.share
            ),
            _ => format!("{}: {doing}", self.shown),
        };
        TransportError::new(kind, context)
    }

    fn smb_error(&self, e: smb::Error, doing: &str) -> TransportError {
        self.error(error_kind(&e), doing).with_source(e)
    }

    fn connect(&self) -> Result<(Arc<Conn>, u64), TransportError> {
        let mut cfg = ClientConfig {
            dfs: false,
            ..ClientConfig::default()
        };
        cfg.connection.port = Some(self.port);
        cfg.connection.timeout = Some(self.timeout);
        // Enough credits for every read in flight (a 1 MiB read costs 16).
        cfg.connection.credits_backlog = Some(CREDITS);
        let client = Client::new(cfg);
        let server = &self.target.host;
        let unc = format!(r"\\{server}\{}", self.target.share);
        let share =
            UncPath::from_str(&unc).map_err(|e| self.smb_error(e, "parsing the share name"))?;
        client
            .share_connect(
                &share,
                &self.credentials.user,
                self.credentials.password.clone(),
            )
            .map_err(|e| self.smb_error(e, "connecting to the share"))?;
        let args =
            FileCreateArgs::make_open_existing(FileAccessMask::new().with_generic_read(true));
        let resource = client
            .create_file(&share.with_path(&self.target.path), &args)
            .map_err(|e| self.smb_error(e, "opening the file"))?;
        let file = match resource {
            Resource::File(f) => f,
            _ => {
                return Err(self.error(
                    TransportErrorKind::NotFound,
                    "opening the file (not a file)",
                ));
            }
        };
        let len = file
            .get_len()
            .map_err(|e| self.smb_error(e, "reading the file's length"))?;
        let server_max = client
            .get_connection(server)
            .ok()
            .and_then(|c| c.conn_info().map(|i| i.negotiation.max_read_size as usize))
            .filter(|&m| m > 0)
            .unwrap_or(FALLBACK_MAX_READ);
        self.connects.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            file,
            _client: client,
            max_read: self.read_size.min(server_max),
        };
        Ok((Arc::new(conn), len))
    }

    /// Run `op`, retrying retryable failures with backoff.
    fn with_retry<T>(
        &self,
        mut op: impl FnMut() -> Result<T, TransportError>,
    ) -> Result<T, TransportError> {
        let mut failures = 0u32;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && failures + 1 < self.max_attempts => {
                    failures += 1;
                    let pause = self
                        .retry_backoff
                        .saturating_mul(1u32 << (failures - 1).min(8));
                    std::thread::sleep(pause);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The live connection, reconnecting if there is none.
    fn conn(&self) -> Result<Arc<Conn>, TransportError> {
        let mut guard = lock(&self.conn);
        if let Some(c) = guard.as_ref() {
            return Ok(Arc::clone(c));
        }
        let (conn, len) = self.connect()?;
        if len != self.len {
            return Err(self.error(
                TransportErrorKind::Changed,
                &format!("the file is now {len} bytes, was {}", self.len),
            ));
        }
        *guard = Some(Arc::clone(&conn));
        Ok(conn)
    }

    /// Forget `dead` (if it is still the current connection) and let it
    /// go on a background thread: closing the handle, tree and session of
    /// a dead connection waits for the request timeout, which the reader
    /// should not.
    fn drop_conn(&self, dead: Arc<Conn>) {
        {
            let mut guard = lock(&self.conn);
            if guard.as_ref().is_some_and(|c| Arc::ptr_eq(c, &dead)) {
                *guard = None;
            }
        }
        let spawned = std::thread::Builder::new()
            .name(String::from("sft-smb-close"))
            .spawn(move || drop(dead));
        // Without a thread, drop it here (slow, still correct).
        drop(spawned);
    }

    /// One `READ` of up to the connection's maximum, reconnecting and
    /// retrying retryable failures. Returns 0 only at the end.
    fn read_once(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        let data = self.read_owned(offset, buf.len())?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    /// One read of at most `len` bytes at `offset` (at most the
    /// connection's largest read), retried on a new connection as
    /// configured; the bytes are the read response's own buffer (no copy).
    fn read_owned(&self, offset: u64, len: usize) -> Result<Vec<u8>, TransportError> {
        let want = self.len.saturating_sub(offset).min(len as u64) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        self.with_retry(|| {
            let conn = self.conn()?;
            let n = want.min(conn.max_read);
            match conn.file.read_block_owned(n, offset, None, false) {
                Ok(data) => {
                    self.reads.fetch_add(1, Ordering::Relaxed);
                    self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    Ok(data)
                }
                Err(e) => {
                    self.drop_conn(conn);
                    Err(self
                        .error(TransportErrorKind::ConnectionLost, "reading")
                        .with_range(offset..offset + n as u64)
                        .with_source(e))
                }
            }
        })
    }

    fn ends_early(&self, at: u64, r: &Range<u64>) -> TransportError {
        self.error(
            TransportErrorKind::RangeNotSatisfiable,
            &format!("the file ends at {at}"),
        )
        .with_range(r.clone())
    }

    fn read_sequential(
        &self,
        pieces: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let longest = pieces.iter().map(|r| r.end - r.start).max().unwrap_or(0);
        let mut buf = vec![0u8; longest as usize];
        for r in pieces {
            let mut at = r.start;
            while at < r.end {
                let want = (r.end - at) as usize;
                let n = self.read_once(at, &mut buf[..want])?;
                if n == 0 {
                    return Err(self.ends_early(at, r));
                }
                if sink(at, &buf[..n]).is_break() {
                    return Ok(());
                }
                at += n as u64;
            }
        }
        Ok(())
    }

    fn read_parallel(
        &self,
        pieces: &[Range<u64>],
        workers: usize,
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        type Msg = Result<(u64, Vec<u8>), TransportError>;
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::sync_channel::<Msg>(workers);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(r) = pieces.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            return;
                        };
                        let mut at = r.start;
                        while at < r.end && !stop.load(Ordering::Relaxed) {
                            let want = (r.end - at) as usize;
                            let msg = match self.read_owned(at, want) {
                                Ok(buf) if buf.is_empty() => Err(self.ends_early(at, r)),
                                other => other.map(|buf| (at, buf)),
                            };
                            let failed = msg.is_err();
                            if let Ok((_, b)) = &msg {
                                at += b.len() as u64;
                            }
                            if tx.send(msg).is_err() || failed {
                                return;
                            }
                        }
                    }
                });
            }
            drop(tx);
            let mut result = Ok(());
            for msg in rx.iter() {
                match msg {
                    Ok((at, buf)) => {
                        if sink(at, &buf).is_break() {
                            break;
                        }
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            // Unblocks workers waiting to send; they see `stop` and end.
            drop(rx);
            result
        })
    }
}

impl RangeSource for SmbSource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.read_once(offset, buf)
    }

    /// Larger requests than the default (16 MiB each, 64 MiB in flight):
    /// each is split into `READ`s of [`SmbOptions::read_size`] with
    /// several outstanding, and a batch of requests ends with a wait for
    /// its slowest read, so fewer, larger batches keep the connection busy
    /// (measured with `scripts/bench-smb.sh`).
    fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
        Some(crate::stream::SchedulerLimits {
            max_request_bytes: 16 << 20,
            max_in_flight_bytes: 64 << 20,
            ..crate::stream::SchedulerLimits::default()
        })
    }

    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let piece = self.read_size() as u64;
        let mut pieces: Vec<Range<u64>> = Vec::new();
        for r in ranges {
            if r.start > r.end || r.end > self.len {
                return Err(self
                    .error(
                        TransportErrorKind::RangeNotSatisfiable,
                        &format!("the file is {} bytes", self.len),
                    )
                    .with_range(r.clone()));
            }
            let mut at = r.start;
            while at < r.end {
                let end = r.end.min(at + piece);
                pieces.push(at..end);
                at = end;
            }
        }
        let workers = self.in_flight.min(pieces.len());
        if workers <= 1 {
            self.read_sequential(&pieces, sink)
        } else {
            self.read_parallel(&pieces, workers, sink)
        }
    }

    fn endpoint(&self) -> String {
        self.shown.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let t = parse_spec("SMB://DOM;al%20ice@[::1]:4455/Share/a%2Fb/c.sft?x#y").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.port, Some(4455));
        assert_eq!(t.share, "Share");
        assert_eq!(t.path, "a/b\\c.sft");
        assert_eq!(t.user.as_deref(), Some("DOM;al ice"));
        assert_eq!(shown(&t, 4455), "smb://[::1]:4455/Share/a/b/c.sft");
        let t = parse_spec(r"\\fs01\content\apps\w.sft").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fs01", None));
        assert_eq!(
            (t.share.as_str(), t.path.as_str()),
            ("content", "apps\\w.sft")
        );
        assert_eq!(shown(&t, 445), "smb://fs01/content/apps/w.sft");
        let u = parse_spec(r"file://\\fs01\content\apps\w.sft").unwrap();
        assert_eq!(u, t);
        let p = parse_spec("smb://u:pw@h/s/f").unwrap();
        assert_eq!(p.password.as_deref(), Some("pw"));
        assert!(!format!("{p:?}").contains("pw"));
        for bad in [
            "smb://h/share",
            "smb:///s/f",
            r"\\h",
            "smb://h:99999/s/f",
            "smb://h/s/../f",
            "/local/f",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_order_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cred");
        std::fs::write(
            &path,
            "# comment\nusername = fileuser\npassword = filepw\ndomain = FD\n",
        )
        .unwrap();
        let t = parse_spec("smb://h/s/f").unwrap();
        let o = SmbOptions::new()
            .env_credentials(false)
            .credentials_file(&path);
        let c = credentials(&t, &o).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("FD\\fileuser", "filepw")
        );
        assert_eq!(format!("{c:?}"), "Credentials(<redacted>)");
        let t = parse_spec("smb://D2;urluser@h/s/f").unwrap();
        let c = credentials(&t, &o.clone().password("optpw")).unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("D2\\urluser", "optpw")
        );
        let none = SmbOptions::new().env_credentials(false);
        assert!(credentials(&parse_spec("smb://h/s/f").unwrap(), &none).is_err());
    }

    #[test]
    fn status_mapping() {
        use TransportErrorKind as K;
        assert_eq!(status_kind(status::ACCESS_DENIED), K::PermissionDenied);
        assert_eq!(status_kind(status::LOGON_FAILURE), K::Authentication);
        assert_eq!(status_kind(status::OBJECT_NAME_NOT_FOUND), K::NotFound);
        assert_eq!(status_kind(status::BAD_NETWORK_NAME), K::NotFound);
        assert!(status_kind(status::NETWORK_SESSION_EXPIRED).is_retryable());
        assert!(error_kind(&smb::Error::ConnectionStopped).is_retryable());
        assert!(!status_kind(status::ACCESS_DENIED).is_retryable());
    }
}
