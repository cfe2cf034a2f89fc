//! `sft serve [--http ADDR] [--rtsp ADDR] [--rtsps ADDR] --content DIR
//! [--tls-cert FILE --tls-key FILE]`: the built-in content server (HTTP or
//! HTTPS) and streaming server (RTSP, RTSPS; `docs/RTSP.md`) over one
//! content root.
//!
//! Stdout gets one line per listener, `listening on http://ADDR` (or
//! `https://`) first, then `listening on rtsp://ADDR` and
//! `listening on rtsps://ADDR`, with the ports actually bound, so scripts
//! can pass port 0 and read them.
//!
//! `--config FILE` reads the same settings from TOML (see [`FileConfig`]);
//! flags on the command line override the file.
//! SIGINT and SIGTERM shut the server down gracefully: the listener closes,
//! requests in flight finish (for at most `--shutdown-grace` seconds).

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use sft::serve::http::{AccessLog, Server, ServerConfig, tls_config_from_pem};
use sft::serve::rtsp;

use crate::util::UsageError;

/// The `--config` file: every key optional, unknown keys refused.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http: Option<String>,
    rtsp: Option<String>,
    rtsps: Option<String>,
    content: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    access_log: Option<PathBuf>,
    no_access_log: Option<bool>,
    max_connections: Option<usize>,
    max_sessions: Option<usize>,
    idle_timeout: Option<u64>,
    header_timeout: Option<u64>,
    session_timeout: Option<u64>,
    background_nice: Option<i32>,
    shutdown_grace: Option<u64>,
    /// `quiet` turns the access log off; `info` (the default) keeps it.
    log_level: Option<String>,
}

/// Command-line flags over the config file over the defaults.
fn merge(args: &ServeArgs) -> anyhow::Result<ServeArgs> {
    let file = match &args.config {
        None => FileConfig::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config `{}`", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .map_err(|e| UsageError(format!("sft serve: config `{}`: {e}", path.display())))?
        }
    };
    let quiet = match file.log_level.as_deref() {
        None | Some("info" | "debug" | "warn" | "error") => false,
        Some("quiet" | "off") => true,
        Some(other) => {
            return Err(UsageError(format!(
                "sft serve: config: log_level `{other}` (use quiet, error, warn, info or debug)"
            ))
            .into());
        }
    };
    if let Some(n) = file.background_nice
        && !(0..=19).contains(&n)
    {
        return Err(UsageError(format!(
            "sft serve: config: background_nice {n} (use 0 to 19)"
        ))
        .into());
    }
    Ok(ServeArgs {
        config: None,
        http: args.http.clone().or(file.http),
        rtsp: args.rtsp.clone().or(file.rtsp),
        rtsps: args.rtsps.clone().or(file.rtsps),
        content: args.content.clone().or(file.content),
        tls_cert: args.tls_cert.clone().or(file.tls_cert),
        tls_key: args.tls_key.clone().or(file.tls_key),
        access_log: args.access_log.clone().or(file.access_log),
        no_access_log: args.no_access_log || file.no_access_log.unwrap_or(false) || quiet,
        max_connections: Some(args.max_connections.or(file.max_connections).unwrap_or(256)),
        idle_timeout: Some(args.idle_timeout.or(file.idle_timeout).unwrap_or(30)),
        header_timeout: Some(args.header_timeout.or(file.header_timeout).unwrap_or(10)),
        shutdown_grace: Some(args.shutdown_grace.or(file.shutdown_grace).unwrap_or(10)),
        max_sessions: Some(args.max_sessions.or(file.max_sessions).unwrap_or(256)),
        session_timeout: Some(args.session_timeout.or(file.session_timeout).unwrap_or(60)),
        background_nice: args.background_nice.or(file.background_nice),
    })
}

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let merged = merge(args)?;
    let args = &merged;
    let max_connections = args.max_connections.unwrap_or(256);
    let idle_timeout = args.idle_timeout.unwrap_or(30);
    let header_timeout = args.header_timeout.unwrap_or(10);
    let shutdown_grace = args.shutdown_grace.unwrap_or(10);
    let max_sessions = args.max_sessions.unwrap_or(256);
    let session_timeout = args.session_timeout.unwrap_or(60);
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
            .max_connections(max_connections)
            .idle_timeout(Duration::from_secs(idle_timeout.max(1)))
            .header_timeout(Duration::from_secs(header_timeout.max(1)))
            .shutdown_grace(Duration::from_secs(shutdown_grace));
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
            .max_connections(max_connections)
            .max_sessions(max_sessions)
            .idle_timeout(Duration::from_secs(idle_timeout.max(1)))
            .request_timeout(Duration::from_secs(header_timeout.max(1)))
            .session_timeout(Duration::from_secs(session_timeout.max(1)))
            .background_nice(args.background_nice.unwrap_or(10))
            .shutdown_grace(Duration::from_secs(shutdown_grace));
        if secure && let Some(t) = &tls {
            config = config.tls(Arc::clone(t));
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
    let finished = |h: &Option<sft::serve::http::ServerHandle>, r: &[rtsp::ServerHandle]| {
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
