//! `sft cat PKG PATH`.

use std::io::Write;

use anyhow::{Context, bail};

use crate::args::CatArgs;
use crate::util::Loaded;

/// Run `sft cat`: stream the file's blocks to stdout without copying
/// stored blocks.
pub fn run(a: &CatArgs, no_mmap: bool) -> anyhow::Result<()> {
    let loaded = Loaded::open(&a.package, no_mmap)?;
    let pkg = loaded.package()?;
    let entry = pkg
        .entry(&a.path)
        .with_context(|| format!("cannot read `{}` from `{}`", a.path, a.package.display()))?;
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
