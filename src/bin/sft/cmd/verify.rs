//! `sft verify PKG|URL`: a local package, or one streamed from a URL
//! (http(s)://, rtsp(s)://, smb:// or UNC).

#[allow(unused_imports)]
use crate::args::*;
use anyhow::Context;
use std::io::Write;

use crate::args::VerifyArgs;
use crate::util::{Loaded, progress_bar};

/// Run `sft verify`.
pub fn run(a: &VerifyArgs, no_mmap: bool) -> anyhow::Result<()> {
    let path = match super::source_args::classify(&a.package)? {
        super::source_args::Spec::Remote(spec) => {
            anyhow::ensure!(
                a.key.is_empty(),
                "--key checks a local package; for a URL, `sft fetch --trusted-key` checks the signature before any block"
            );
            return verify_remote(spec, &a.remote);
        }
        super::source_args::Spec::Local(path) => path,
    };
    let loaded = Loaded::open(&path, no_mmap)?;
    loaded.advise_sequential();
    let pkg = loaded.package()?;
    if !a.key.is_empty() {
        let keys = a
            .key
            .iter()
            .map(sft::sign::TrustedKey::from_file)
            .collect::<Result<Vec<_>, _>>()?;
        let at = a
            .signature
            .clone()
            .unwrap_or_else(|| format!("{}.minisig", path.display()));
        let sig = sft::sign::Signature::from_file(&at)
            .with_context(|| format!("`{}` has no usable signature", path.display()))?;
        let trust = sft::sign::TrustPolicy::require(keys)
            .check(&pkg.prologue(), Some(&sig))
            .with_context(|| format!("`{}` failed verification", path.display()))?;
        if let sft::sign::Trust::Signed { key_id, content_id } = trust {
            writeln!(
                std::io::stdout().lock(),
                "signature: good, key {key_id}, {content_id}"
            )?;
        }
    }
    let bar = progress_bar(pkg.header().data_len, "verifying");
    let inc = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let result = pkg.verify_with(&inc, &sft::io::Threads::available());
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = result.with_context(|| format!("`{}` failed verification", path.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "OK: {} entries, {} blocks, {} bytes verified",
        report.entries,
        report.blocks,
        report.logical_bytes
    )?;
    Ok(())
}

/// Stream the package at `spec` (an http(s)://, rtsp(s)://, smb:// ... URL)
/// through the streaming core and check everything, storing nothing: the
/// prologue's CRCs when it is parsed, then every block's CRC and inflate.
fn verify_remote(spec: &str, remote: &crate::args::SourceArgs) -> anyhow::Result<()> {
    use sft::fetch::verify_spec;
    use sft::stream::Event;

    let mut bar = None;
    let result = verify_spec(spec, &remote.options(), remote.session(), &mut |e| {
        if let Some(line) = crate::util::warning_for(e) {
            eprintln!("{line}");
        }
        if let Event::Progress(p) = e {
            let b = bar.get_or_insert_with(|| progress_bar(p.total_bytes, "verifying"));
            if let Some(b) = b {
                b.set_position(p.bytes);
            }
        }
    });
    if let Some(Some(b)) = bar {
        b.finish_and_clear();
    }
    let shown = sft::redact_url(spec);
    let (report, session) = result.map_err(|e| {
        // The error names the source once: its own, or this context's.
        let e = anyhow::Error::from(e);
        if format!("{e:#}").contains(super::source_args::file_name(&shown)) {
            e.context("failed verification")
        } else {
            e.context(format!("`{shown}` failed verification"))
        }
    })?;
    anyhow::ensure!(report.complete, "`{shown}`: the stream ended early");
    let entries = session.prologue().map_or(0, |p| p.entry_count());
    let progress = session.progress();
    writeln!(
        std::io::stdout().lock(),
        "OK: {} entries, {} blocks, {} bytes verified (streamed)",
        entries,
        progress.total_blocks,
        progress.total_bytes
    )?;
    Ok(())
}
