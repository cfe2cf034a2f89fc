//! `sft cat PKG PATH`.

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;

use anyhow::{Context, bail};

use crate::args::CatArgs;
use crate::util::Loaded;

/// Run `sft cat`: stream the file's blocks to stdout without copying
/// stored blocks.
pub fn run(a: &CatArgs, no_mmap: bool) -> anyhow::Result<()> {
    let path = match super::source_args::classify(&a.package)? {
        super::source_args::Spec::Remote(spec) => return cat_remote(a, spec),
        super::source_args::Spec::Local(path) => path,
    };
    let loaded = Loaded::open(&path, no_mmap)?;
    let pkg = loaded.package()?;
    let entry = pkg.entry(&a.path).with_context(|| {
        format!(
            "cannot read `{}` from `{}`",
            a.path,
            sft::redact_url(&a.package.to_string_lossy())
        )
    })?;
    if entry.is_dir() {
        bail!("cannot read `{}`: it is a directory", a.path);
    }
    let mut out = std::io::stdout().lock();
    for chunk in pkg.chunks(&entry) {
        let chunk = chunk.with_context(|| format!("cannot read `{}`", a.path))?;
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}

/// `sft cat URL PATH`: stream the package into a temporary cache and
/// read the file through it; a read waits for (and demands) the blocks
/// it touches, each checked before it is used.
fn cat_remote(a: &CatArgs, spec: &str) -> anyhow::Result<()> {
    use std::sync::Arc;

    use sft::fetch::cache::CachePaths;
    use sft::fetch::streaming::{StreamingOptions, StreamingPackage};

    let shown = sft::redact_url(spec);
    let source = sft::fetch::open_source_with(spec, &a.remote.options())
        .with_context(|| format!("cannot open `{shown}`"))?;
    let dir = tempfile::Builder::new()
        .prefix(".sft-cat-")
        .tempdir()
        .context("cannot create a temporary cache directory")?;
    let paths = CachePaths::beside(dir.path().join("package.sft"));
    let options = StreamingOptions::default().session(a.remote.session().launch_only(true));
    let pkg = StreamingPackage::open(Arc::from(source), paths, options)
        .with_context(|| format!("cannot stream `{shown}`"))?;
    let entry = pkg
        .entry(&a.path)
        .with_context(|| format!("cannot read `{}` from `{shown}`", a.path))?;
    if entry.is_dir() {
        bail!("cannot read `{}`: it is a directory", a.path);
    }
    let mut reader = pkg
        .reader(entry)
        .with_context(|| format!("cannot read `{}`", a.path))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut reader, &mut out)
        .with_context(|| format!("cannot read `{}` from `{shown}`", a.path))?;
    out.flush()?;
    drop(out);
    // Stop the background stream; its failure after the file was read
    // whole does not change what was written.
    let _ = pkg.close();
    Ok(())
}
