//! `sft extract PKG DIR`.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use sft::extract::{ExtractOptions, extract};

use crate::args::ExtractArgs;
use crate::util::{Loaded, progress_bar, short};

/// Run `sft extract`.
pub fn run(a: &ExtractArgs, no_mmap: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    let loaded = Loaded::open(&a.package, no_mmap)?;
    loaded.advise_sequential();
    let pkg = loaded.package()?;
    let mut opts = ExtractOptions::default().overwrite(!a.no_overwrite);
    if let Some(t) = a.threads {
        opts = opts.threads(t as usize);
    }
    let bar = progress_bar(pkg.metadata().package_size(), "extracting");
    if let Some(bar) = &bar {
        let bar = bar.clone();
        opts = opts.progress(move |n| bar.inc(n));
    }
    let report = extract(&pkg, &a.dir, &opts).with_context(|| {
        format!(
            "cannot extract `{}` into `{}`",
            a.package.display(),
            a.dir.display()
        )
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    writeln!(
        std::io::stdout().lock(),
        "extracted {} files, {} directories, {} into `{}` in {:.2} s",
        report.files,
        report.dirs,
        short(report.bytes),
        a.dir.display(),
        start.elapsed().as_secs_f64()
    )?;
    Ok(())
}
