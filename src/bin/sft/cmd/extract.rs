//! `sft extract PKG DIR`.

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use sft::extract::{ExtractOptions, extract};

use crate::args::ExtractArgs;
use crate::util::{Loaded, progress_bar, short};

/// Run `sft extract`.
pub fn run(a: &ExtractArgs, no_mmap: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    // A URL is fetched (every block checked) into a temporary file beside
    // DIR first; the temporary directory goes when this returns.
    let mut _fetched = None;
    let path = match super::source_args::classify(&a.package)? {
        super::source_args::Spec::Local(path) => path,
        super::source_args::Spec::Remote(spec) => {
            let (dir, path) = fetch_to_temp(a, spec)?;
            _fetched = Some(dir);
            path
        }
    };
    let loaded = Loaded::open(&path, no_mmap)?;
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
            sft::redact_url(&a.package.to_string_lossy()),
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

/// Fetch `spec` into a new temporary directory beside `a.dir` (the same
/// file system, usually); returns the directory (removed on drop) and the
/// package's path in it.
fn fetch_to_temp(
    a: &ExtractArgs,
    spec: &str,
) -> anyhow::Result<(tempfile::TempDir, std::path::PathBuf)> {
    use sft::fetch::{FetchOptions, fetch_spec};
    let shown = sft::redact_url(spec);
    let parent = a
        .dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".sft-extract-")
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "cannot create a temporary directory in `{}`",
                parent.display()
            )
        })?;
    let out = tmp.path().join("package.sft");
    let options = FetchOptions::default()
        .session(a.remote.session())
        .sources(a.remote.options())
        .on_event(|e| {
            if let Some(line) = crate::util::warning_for(e) {
                eprintln!("{line}");
            }
        });
    fetch_spec(spec, &out, options).with_context(|| format!("cannot fetch `{shown}`"))?;
    Ok((tmp, out))
}
