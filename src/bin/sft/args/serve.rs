//! The arguments of `sft serve`.

#[allow(unused_imports)]
use super::*;

/// `sft serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Read settings from this TOML file (keys: http, rtsp, rtsps, content,
    /// tls_cert, tls_key, access_log, no_access_log, max_connections,
    /// max_sessions, idle_timeout, header_timeout, session_timeout,
    /// background_nice, shutdown_grace, log_level); flags given on the
    /// command line win.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve HTTP (HTTPS with --tls-cert and --tls-key) on this address,
    /// e.g. 0.0.0.0:8080 or 127.0.0.1:0 (any free port).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

    /// Stream packages over RTSP on this address (App-V's default port is
    /// 554), e.g. 0.0.0.0:554 or 127.0.0.1:0.
    #[arg(long, value_name = "ADDR")]
    pub rtsp: Option<String>,

    /// Stream packages over RTSPS (RTSP over TLS; App-V's default port is
    /// 322) on this address; needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR")]
    pub rtsps: Option<String>,

    /// Directory whose files are served (no listings; nothing outside it).
    #[arg(long, value_name = "DIR")]
    pub content: Option<PathBuf>,

    /// PEM certificate chain for HTTPS (leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Append the access log to FILE instead of standard error.
    #[arg(long, value_name = "FILE", conflicts_with = "no_access_log")]
    pub access_log: Option<PathBuf>,

    /// Do not write an access log.
    #[arg(long)]
    pub no_access_log: bool,

    /// Most connections served at once; more get 503 (default 256).
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Seconds a kept-alive connection may wait for its next request (default 30).
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,

    /// Seconds a client has to send a request's headers (default 10).
    #[arg(long, value_name = "SECS")]
    pub header_timeout: Option<u64>,

    /// Seconds a shutdown waits for requests in flight (default 10).
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,

    /// RTSP: most sessions at once (more SETUPs get 503) (default 256).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// RTSP: seconds a session may stay silent while nothing is sent (default 60).
    #[arg(long, value_name = "SECS")]
    pub session_timeout: Option<u64>,

    /// RTSP: how much lower (in nice steps, 0 to 19) the CPU priority of a
    /// connection streaming its background is, so requests and
    /// out-of-sequence fetches get the CPU first on a busy server
    /// (Linux; default 10, 0 turns it off).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=19))]
    pub background_nice: Option<i32>,
}
