//! `sft ls PKG|URL [-l]`: a local package, or the prologue of a remote
//! one (entries are in the prologue: no block data is read).

#[allow(unused_imports)]
use crate::args::*;
use std::io::{BufWriter, Write};

use sft::Entry;

use super::source_args::Inspected;
use crate::args::LsArgs;
use crate::escape::Safe;
use crate::util::rfc3339;

/// `FB1`, `FB2`, `FB1+FB2`, or `-` for a file without data.
fn feature_blocks(e: &Entry<'_>, launch_size: u64) -> &'static str {
    let (mut fb1, mut fb2) = (false, false);
    for x in e.extents() {
        fb1 |= x.logical_offset < launch_size;
        fb2 |= x.logical_offset + x.length > launch_size;
    }
    match (fb1, fb2) {
        (true, true) => "FB1+FB2",
        (true, false) => "FB1",
        (false, true) => "FB2",
        (false, false) => "-",
    }
}

/// Run `sft ls`.
pub fn run(a: &LsArgs, no_mmap: bool) -> anyhow::Result<()> {
    let inspected = Inspected::open(&a.package, no_mmap, &a.remote)?;
    let pkg = inspected.prologue()?;
    let launch = pkg.metadata().launch_size();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for e in pkg.entries() {
        let e = e?;
        let slash = if e.is_dir() { "/" } else { "" };
        if a.long {
            let at = e.attributes();
            let flags: String = [
                (at.read_only, 'r'),
                (at.hidden, 'h'),
                (at.executable, 'x'),
                (at.system, 's'),
            ]
            .iter()
            .map(|&(on, c)| if on { c } else { '-' })
            .collect();
            let (secs, nanos) = e.modified();
            let fb = if e.is_dir() {
                "-"
            } else {
                feature_blocks(&e, launch)
            };
            writeln!(
                out,
                "{} {:>12} {:<30} {flags} {fb:<7} {}{slash}",
                if e.is_dir() { "dir " } else { "file" },
                e.size(),
                rfc3339(secs, nanos),
                Safe(e.path())
            )?;
        } else {
            writeln!(out, "{}{slash}", Safe(e.path()))?;
        }
    }
    out.flush()?;
    Ok(())
}
