//! [`HttpOptions`] and what they turn into: credentials, TLS roots and
//! the `ureq` agent.

use super::*;

/// Credentials, never shown.
#[derive(Clone, PartialEq, Eq)]
pub(super) enum Credentials {
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
    pub(super) fn header(&self) -> Result<HeaderValue, Error> {
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

pub(super) fn base64(input: &[u8]) -> String {
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
    pub(super) connect_timeout: Duration,
    pub(super) read_timeout: Duration,
    pub(super) max_attempts: u32,
    pub(super) retry_backoff: Duration,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    pub(super) credentials: Option<Credentials>,
    pub(super) env_credentials: bool,
    pub(super) user_agent: String,
    pub(super) max_ranges: usize,
    pub(super) buffer_size: usize,
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

pub(super) fn env_credentials() -> Option<Credentials> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = get("SFT_HTTP_TOKEN") {
        return Some(Credentials::Bearer(token));
    }
    get("SFT_HTTP_USER").map(|user| Credentials::Basic {
        user,
        password: get("SFT_HTTP_PASSWORD").unwrap_or_default(),
    })
}

pub(super) fn roots(options: &HttpOptions, https: bool) -> Result<RootCerts, Error> {
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
pub(super) fn new_agent(
    config: ::ureq::config::Config,
    ca_file: Option<&Path>,
    custom: Option<Arc<rustls::ClientConfig>>,
) -> Result<Agent, Error> {
    use ::ureq::unversioned::transport::{ConnectProxyConnector, Connector, TcpConnector};
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
        ::ureq::unversioned::resolver::DefaultResolver::default(),
    ))
}

pub(super) fn ca_file_roots(path: &Path) -> Result<RootCerts, Error> {
    let certs = tls::ca_file_certs(path).map_err(Error::InvalidInput)?;
    Ok(RootCerts::from(
        certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect::<Vec<_>>(),
    ))
}
