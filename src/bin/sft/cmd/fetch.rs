//! `sft fetch SOURCE -o OUT.sft [--launch-only] [--cache-dir DIR]`:
//! stream a package into a local file, resumably. SOURCE may also be an
//! OSD file (`*.osd`) or a manifest (`*.xml`): its CODEBASE is resolved
//! (variables, ApplicationSourceRoot, OverrideURL, SFTPATH) first.

#[allow(unused_imports)]
use crate::args::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use sft::fetch::cache::{CacheOptions, CachePaths};
use sft::fetch::{FetchOptions, fetch, fetch_spec, open_source_with};
use sft::io::shaped::ShapedSource;
use sft::publish::{Manifest, SourceRoots, expand_vars, resolve_codebase};
use sft::redact_url;
use sft::stream::{Event, TransportErrorKind};

use crate::escape::Safe;
use crate::util::{UsageError, name_once, progress_bar, short};

/// What kind of descriptor a source is, by its extension.
fn descriptor_kind(source: &str) -> Option<&'static str> {
    if source.contains("://") {
        return None;
    }
    let lower = source.to_ascii_lowercase();
    if lower.ends_with(".osd") {
        Some("osd")
    } else if lower.ends_with(".xml") {
        Some("manifest")
    } else {
        None
    }
}

/// The error of a failed fetch of `source`: it names the source once
/// (redacted: no credentials, no query string), and says "run again"
/// only when a rerun can fix it (a timeout, a dropped connection, a
/// source that kept changing, a full disk), not for a missing source,
/// refused access, a bad certificate or something that is not a package.
fn fetch_error(e: sft::Error, source: &str, args: &FetchArgs, started: bool) -> anyhow::Error {
    let shown = redact_url(source);
    let hint = if !rerun_may_fix(&e) {
        ""
    } else if started
        && CachePaths::for_output(&args.output, args.cache_dir.as_deref())
            .data
            .exists()
    {
        " (run again to resume)"
    } else {
        " (run again to retry)"
    };
    let e = name_once(e, super::source_args::file_name(&shown), || {
        format!("cannot fetch `{shown}`")
    });
    if hint.is_empty() {
        e
    } else {
        anyhow::anyhow!("{}{hint}", crate::util::chain_text(&e))
    }
}

/// Whether running the same fetch again may succeed.
fn rerun_may_fix(e: &sft::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        sft::Error::Transport(t) => t.is_retryable() || t.kind() == TransportErrorKind::Changed,
        sft::Error::Io { source, .. } => !matches!(
            source.kind(),
            K::NotFound
                | K::PermissionDenied
                | K::IsADirectory
                | K::NotADirectory
                | K::InvalidInput
                | K::InvalidData
                | K::Unsupported
                | K::ReadOnlyFilesystem
        ),
        _ => false,
    }
}

/// The package source an OSD or manifest names, resolved.
fn resolve_descriptor(source: &str, args: &DescriptorArgs, kind: &str) -> anyhow::Result<String> {
    let path = Path::new(source);
    let dir = std::path::absolute(path)
        .with_context(|| format!("cannot resolve `{}`", path.display()))?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mime = dir.to_string_lossy().into_owned();
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| (name == "SFT_MIME_SOURCE").then(|| mime.clone()))
    };
    let href = if kind == "osd" {
        osd_href(path)?
    } else {
        let bytes = super::osd::read_bounded(path)?;
        let m = Manifest::parse(&bytes)
            .with_context(|| format!("cannot parse manifest `{}`", path.display()))?;
        match m.package.as_ref().and_then(|p| p.href.clone()) {
            Some(h) => h,
            None => {
                let osd = m
                    .apps
                    .items
                    .iter()
                    .find_map(|a| a.osd.clone())
                    .with_context(|| {
                        format!(
                            "manifest `{}` has neither a PACKAGE HREF nor an APP with an OSD",
                            path.display()
                        )
                    })?;
                let osd = expand_vars(&osd, env)?;
                if osd.contains("://") {
                    anyhow::bail!(
                        "the manifest's OSD `{osd}` is not a local file; only local OSDs are read"
                    );
                }
                osd_href(Path::new(&osd))?
            }
        }
    };
    let roots = SourceRoots {
        application_source_root: args.application_source_root.clone(),
        override_url: args.override_url.clone(),
        sftpath: args.sftpath.clone(),
    };
    let resolved = resolve_codebase(&href, &roots, env)
        .with_context(|| format!("cannot resolve the CODEBASE of `{}`", path.display()))?;
    // A relative package path is relative to the descriptor.
    if !resolved.contains("://") && Path::new(&resolved).is_relative() {
        return Ok(dir.join(&resolved).to_string_lossy().into_owned());
    }
    Ok(resolved)
}

fn osd_href(path: &Path) -> anyhow::Result<String> {
    let osd = super::osd::read_osd(path)?;
    osd.codebase()
        .and_then(|c| c.href.clone())
        .with_context(|| format!("OSD `{}` has no CODEBASE HREF", path.display()))
}

/// `options` with the trust policy the flags ask for: `--trusted-key`
/// (signature required, from `--signature` or SOURCE.minisig) and
/// `--content-id`.
fn with_trust(
    options: FetchOptions,
    args: &FetchArgs,
    source: &str,
) -> anyhow::Result<FetchOptions> {
    use sft::sign::{TrustPolicy, TrustedKey};
    if args.trusted_key.is_empty() && args.content_id.is_none() {
        return Ok(options);
    }
    let want = args
        .content_id
        .as_deref()
        .map(|s| {
            s.parse::<sft::ContentId>()
                .map_err(|e| UsageError(format!("--content-id `{s}`: {e}")))
        })
        .transpose()?;
    if args.trusted_key.is_empty() {
        return Ok(options.trust(TrustPolicy::permissive().expect_content(want), None));
    }
    let keys = args
        .trusted_key
        .iter()
        .map(TrustedKey::from_file)
        .collect::<Result<Vec<_>, _>>()?;
    let at = args
        .signature
        .clone()
        .unwrap_or_else(|| sft::fetch::signature_location(source));
    let sig = sft::fetch::read_signature(&at, &args.remote.options())
        .with_context(|| format!("cannot read the signature `{}`", redact_url(&at)))?;
    Ok(options.trust(TrustPolicy::require(keys).expect_content(want), sig))
}

/// Print a dry run's plan.
fn print_plan(p: &sft::fetch::delta::DeltaPlan, args: &FetchArgs) -> anyhow::Result<()> {
    if args.json {
        let v = serde_json::json!({
            "content_id": p.content_id.map(|c| c.to_string()),
            "total_blocks": p.total_blocks,
            "package_bytes": p.package_bytes,
            "prologue_bytes": p.prologue_bytes,
            "resumed_blocks": p.resumed_blocks,
            "resumed_bytes": p.resumed_bytes,
            "reused_blocks": p.reused_blocks,
            "reused_bytes": p.reused_bytes,
            "fetch_blocks": p.fetch_blocks,
            "fetch_bytes": p.fetch_bytes,
            "transfer_bytes": p.transfer_bytes,
        });
        out!("{v}")?;
        return Ok(());
    }
    if let Some(id) = p.content_id {
        out!("content id: {id}")?;
    }
    out!(
        "package: {} blocks, {} ({} bytes)",
        p.total_blocks,
        short(p.package_bytes),
        p.package_bytes
    )?;
    if p.resumed_blocks > 0 {
        out!(
            "cached: {} blocks ({}) from an interrupted fetch",
            p.resumed_blocks,
            short(p.resumed_bytes)
        )?;
    }
    if args.base.is_some() {
        out!(
            "from the base: {} blocks ({})",
            p.reused_blocks,
            short(p.reused_bytes)
        )?;
    }
    out!(
        "to fetch: {} blocks ({}) and the prologue: {} bytes in all",
        p.fetch_blocks,
        short(p.fetch_bytes),
        p.transfer_bytes
    )?;
    Ok(())
}

/// The package an OSD or manifest `source` names (`Some`), or `None` for
/// a source that is a package itself (then the descriptor flags are a
/// usage error).
pub(crate) fn resolve_source(source: &str, d: &DescriptorArgs) -> anyhow::Result<Option<String>> {
    match descriptor_kind(source) {
        Some(kind) => resolve_descriptor(source, d, kind).map(Some),
        None if d.application_source_root.is_some()
            || d.override_url.is_some()
            || d.sftpath.is_some() =>
        {
            Err(UsageError(
                "--application-source-root, --override-url and --sftpath need an .osd or manifest (.xml) source".into(),
            )
            .into())
        }
        None => Ok(None),
    }
}

pub(crate) fn run(args: &FetchArgs) -> anyhow::Result<()> {
    if args.output.as_os_str().is_empty() {
        return Err(UsageError("-o OUT.sft must not be empty".into()).into());
    }
    let source = match resolve_source(&args.source, &args.descriptor)? {
        Some(s) => {
            out!("source: {}", Safe(&redact_url(&s)))?;
            s
        }
        None => args.source.clone(),
    };
    let rtt = Duration::from_millis(args.simulate_rtt.unwrap_or(0));
    let sources = args.remote.options();
    // Without --simulate-rtt: fetch_spec (a local file takes the fast
    // path, paced by --limit-rate if given; URLs their transport, started
    // over if the source changes mid-stream). The link simulation reads
    // through a ShapedSource.
    let simulated = if rtt.is_zero() {
        None
    } else {
        // The link is one ShapedSource: its rate and its round trip.
        let source = open_source_with(&source, &args.remote.options().limit_rate(0))
            .map_err(|e| fetch_error(e, &source, args, false))?;
        Some(ShapedSource::new(
            source,
            args.remote.limit_rate.unwrap_or(0),
            rtt,
        ))
    };
    let bar = Arc::new(Mutex::new(None));
    let bar_cb = Arc::clone(&bar);
    let mut options = FetchOptions::default()
        .launch_only(args.launch_only)
        .session(args.remote.session().decode_blocks(!args.crc_only))
        .cache(CacheOptions::default().sync(!args.no_fsync))
        .sources(sources)
        .on_event(move |e| {
            let Ok(mut slot) = bar_cb.lock() else { return };
            match e {
                Event::Progress(p) => {
                    if slot.is_none() {
                        *slot = Some(progress_bar(p.total_bytes, "fetching"));
                    }
                    if let Some(Some(b)) = slot.as_ref() {
                        b.set_position(p.bytes);
                    }
                }
                Event::LaunchReady => {
                    if let Some(Some(b)) = slot.as_ref() {
                        b.println("launch-ready: FB1 cached");
                        b.set_prefix("launchable");
                    }
                }
                Event::Refetch { .. } | Event::Retry { .. } => {
                    if let Some(line) = crate::util::warning_for(e) {
                        match slot.as_ref() {
                            Some(Some(b)) => b.println(line),
                            _ => eprintln!("{line}"),
                        }
                    }
                }
                _ => {}
            }
        });
    if let Some(dir) = &args.cache_dir {
        options = options.cache_dir(dir);
    }
    if let Some(base) = &args.base {
        options = options.base(base).base_checked(args.base_checked);
    }
    options = with_trust(options, args, &source)?;
    if args.dry_run {
        let plan = sft::fetch::plan_spec(&source, &args.output, &options)
            .map_err(|e| fetch_error(e, &source, args, false))?;
        return print_plan(&plan, args);
    }
    let result = match &simulated {
        None => fetch_spec(&source, &args.output, options),
        Some(source) => fetch(source, &args.output, options),
    };
    if let Ok(mut slot) = bar.lock()
        && let Some(Some(b)) = slot.take()
    {
        b.finish_and_clear();
    }
    let report = result.map_err(|e| fetch_error(e, &source, args, true))?;
    let secs = |d: Duration| format!("{:.3} s", d.as_secs_f64());
    if report.blocks_reused > 0 {
        out!(
            "reused: {} of {} blocks ({}) copied from the base",
            report.blocks_reused,
            report.total_blocks,
            short(report.bytes_reused)
        )?;
    }
    if report.blocks_resumed > 0 {
        out!(
            "resumed: {} of {} blocks ({}) were cached",
            report.blocks_resumed,
            report.total_blocks,
            short(report.bytes_resumed)
        )?;
    }
    out!(
        "transferred: {} ({} bytes), {} blocks",
        short(report.bytes_transferred),
        report.bytes_transferred,
        report.blocks_fetched
    )?;
    match report.launch_ready {
        Some(t) => out!("time to launch-ready: {}", secs(t)),
        None => out!("time to launch-ready: not reached"),
    }?;
    out!("total time: {}", secs(report.total))?;
    if report.complete {
        out!("complete: {}", Safe(&args.output.display().to_string()))?;
    } else {
        out!(
            "launch-ready only: cached in `{}`; run without --launch-only to finish",
            report.cache.data.display()
        )?;
    }
    Ok(())
}
