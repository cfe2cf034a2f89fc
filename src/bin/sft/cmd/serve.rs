//! `sft serve --http ADDR --content DIR [--tls-cert FILE --tls-key FILE]`:
//! the built-in content server.
//!
//! The first line on stdout is `listening on http://ADDR` (or `https://`)
//! with the port actually bound, so scripts can pass port 0 and read it.
//! SIGINT and SIGTERM shut the server down gracefully: the listener closes,
//! requests in flight finish (for at most `--shutdown-grace` seconds).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::transport::http::server::{AccessLog, Server, ServerConfig, tls_config_from_pem};

use crate::util::UsageError;

/// `sft serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Serve HTTP (HTTPS with --tls-cert and --tls-key) on this address,
    /// e.g. 0.0.0.0:8080 or 127.0.0.1:0 (any free port).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

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
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let Some(addr) = args.http.as_deref() else {
        return Err(UsageError("sft serve: --http ADDR is required".into()).into());
    };
    let Some(content) = &args.content else {
        return Err(UsageError("sft serve: --content DIR is required".into()).into());
    };
    let mut config = ServerConfig::new(content)
        .max_connections(args.max_connections)
        .idle_timeout(Duration::from_secs(args.idle_timeout.max(1)))
        .header_timeout(Duration::from_secs(args.header_timeout.max(1)))
        .shutdown_grace(Duration::from_secs(args.shutdown_grace));
    let scheme = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            config = config.tls(tls_config_from_pem(cert, key)?);
            "https"
        }
        (None, None) => "http",
        _ => {
            return Err(
                UsageError("sft serve: --tls-cert and --tls-key go together".into()).into(),
            );
        }
    };
    if !args.no_access_log {
        config = config.access_log(match &args.access_log {
            Some(path) => AccessLog::file(path)?,
            None => AccessLog::stderr(),
        });
    }

    // Register the signals before binding, so no signal is missed once the
    // address is announced.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("registering the shutdown signal handlers")?;
    }

    let server = Server::bind(addr, config).with_context(|| format!("sft serve on {addr}"))?;
    let local = server.local_addr();
    let handle = server.spawn()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {scheme}://{local}")?;
        out.flush()?;
    }
    while !stop.load(Ordering::Relaxed) && !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!("sft serve: shutting down");
    }
    handle.shutdown()?;
    Ok(())
}
