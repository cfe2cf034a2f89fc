//! `sft verify PKG`.

use anyhow::Context;
use std::io::Write;

use crate::args::VerifyArgs;
use crate::util::{Loaded, progress_bar};

/// Run `sft verify`.
pub fn run(a: &VerifyArgs, no_mmap: bool) -> anyhow::Result<()> {
    let loaded = Loaded::open(&a.package, no_mmap)?;
    loaded.advise_sequential();
    let pkg = loaded.package()?;
    let bar = progress_bar(pkg.header().data_len, "verifying");
    let inc = |n: u64| {
        if let Some(bar) = &bar {
            bar.inc(n);
        }
    };
    let result = pkg.verify_with(&inc);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report =
        result.with_context(|| format!("`{}` failed verification", a.package.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "OK: {} entries, {} blocks, {} bytes verified",
        report.entries,
        report.blocks,
        report.logical_bytes
    )?;
    Ok(())
}
