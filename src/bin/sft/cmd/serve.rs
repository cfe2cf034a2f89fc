//! `sft serve [--http ADDR] [--rtsp ADDR] [--rtsps ADDR] --content DIR
//! [--tls-cert FILE --tls-key FILE]`: the built-in content server (HTTP or
//! HTTPS) and streaming server (RTSP, RTSPS; `docs/RTSP.md`) over one
//! content root.
//!
//! Stdout gets one line per listener, `listening on http://ADDR` (or
//! `https://`) first, then `listening on rtsp://ADDR` and
//! `listening on rtsps://ADDR`, with the ports actually bound, so scripts
//! can pass port 0 and read them.
//! SIGINT and SIGTERM shut the server down gracefully: the listener closes,
//! requests in flight finish (for at most `--shutdown-grace` seconds).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::transport::http::server::{AccessLog, Server, ServerConfig, tls_config_from_pem};
use sft::transport::rtsp::server as rtsp;

use crate::util::UsageError;

/// `sft serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
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

    /// Most connections served at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,

    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub idle_timeout: u64,

    /// Seconds a client has to send a request's headers.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds a shutdown waits for requests in flight.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// RTSP: most sessions at once (more SETUPs get 503).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_sessions: usize,

    /// RTSP: seconds a session may stay silent while nothing is sent.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub session_timeout: u64,
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    if args.http.is_none() && args.rtsp.is_none() && args.rtsps.is_none() {
        return Err(UsageError(
            "sft serve: give at least one of --http ADDR, --rtsp ADDR, --rtsps ADDR".into(),
        )
        .into());
    }
    let Some(content) = &args.content else {
        return Err(UsageError("sft serve: --content DIR is required".into()).into());
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config_from_pem(cert, key)?),
        (None, None) => None,
        _ => {
            return Err(
                UsageError("sft serve: --tls-cert and --tls-key go together".into()).into(),
            );
        }
    };
    if args.rtsps.is_some() && tls.is_none() {
        return Err(UsageError("sft serve: --rtsps needs --tls-cert and --tls-key".into()).into());
    }

    // Register the signals before binding, so no signal is missed once the
    // address is announced.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the shutdown signal handlers")?;
    }

    let mut lines = Vec::new();
    let mut http_handle = None;
    if let Some(addr) = args.http.as_deref() {
        let mut config = ServerConfig::new(content)
            .max_connections(args.max_connections)
            .idle_timeout(Duration::from_secs(args.idle_timeout.max(1)))
            .header_timeout(Duration::from_secs(args.header_timeout.max(1)))
            .shutdown_grace(Duration::from_secs(args.shutdown_grace));
        let scheme = match &tls {
            Some(t) => {
                config = config.tls(Arc::clone(t));
                "https"
            }
            None => "http",
        };
        if !args.no_access_log {
            config = config.access_log(match &args.access_log {
                Some(path) => AccessLog::file(path)?,
                None => AccessLog::stderr(),
            });
        }
        let server = Server::bind(addr, config).with_context(|| format!("sft serve on {addr}"))?;
        lines.push(format!("listening on {scheme}://{}", server.local_addr()));
        http_handle = Some(server.spawn()?);
    }
    let mut rtsp_handles = Vec::new();
    for (addr, secure) in [(&args.rtsp, false), (&args.rtsps, true)] {
        let Some(addr) = addr.as_deref() else {
            continue;
        };
        let mut config = rtsp::ServerConfig::new(content)
            .max_connections(args.max_connections)
            .max_sessions(args.max_sessions)
            .idle_timeout(Duration::from_secs(args.idle_timeout.max(1)))
            .request_timeout(Duration::from_secs(args.header_timeout.max(1)))
            .session_timeout(Duration::from_secs(args.session_timeout.max(1)))
            .shutdown_grace(Duration::from_secs(args.shutdown_grace));
        if secure {
            if let Some(t) = &tls {
                config = config.tls(Arc::clone(t));
            }
        }
        let server =
            rtsp::Server::bind(addr, config).with_context(|| format!("sft serve on {addr}"))?;
        let scheme = if secure { "rtsps" } else { "rtsp" };
        lines.push(format!("listening on {scheme}://{}", server.local_addr()));
        rtsp_handles.push(server.spawn()?);
    }
    {
        let mut out = std::io::stdout().lock();
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    let finished = |h: &Option<sft::transport::http::server::ServerHandle>,
                    r: &[rtsp::ServerHandle]| {
        h.as_ref().is_some_and(|h| h.is_finished()) || r.iter().any(|h| h.is_finished())
    };
    while !stop.load(Ordering::Relaxed) && !finished(&http_handle, &rtsp_handles) {
        std::thread::sleep(Duration::from_millis(100));
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("sft serve: shutting down");
    }
    for h in &rtsp_handles {
        h.shutdown_handle().shutdown();
    }
    if let Some(h) = http_handle {
        h.shutdown()?;
    }
    for h in rtsp_handles {
        h.shutdown()?;
    }
    Ok(())
}
