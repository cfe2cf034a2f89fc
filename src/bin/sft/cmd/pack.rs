//! `sft pack DIR -o OUT.sft`.

use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use sft::read::Prologue;
use sft::write::{Compression, PackageBuilder, parse_launch_list};
use sft::{WriteOptions, format::Header};

use crate::args::{CompressionArg, PackArgs};
use crate::util::{UsageError, progress_bar, ratio, short};

/// `SOURCE_DATE_EPOCH`, if set: seconds since the Unix epoch.
fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => {
            v.trim().parse::<i64>().map(Some).with_context(|| {
                format!("SOURCE_DATE_EPOCH `{v}` is not a whole number of seconds")
            })
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("SOURCE_DATE_EPOCH is not valid UTF-8"),
    }
}

fn default_name(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.or_else(|| {
        std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    });
    name.filter(|n| !n.is_empty())
        .unwrap_or_else(|| "package".to_owned())
}

/// Count the files of a written package from its prologue alone.
fn count_files(path: &Path) -> anyhow::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut head = vec![0u8; sft::format::HEADER_LEN];
    f.read_exact(&mut head)?;
    let len = usize::try_from(Header::parse(&head)?.prologue_len)?;
    let mut pro = vec![0u8; len];
    pro[..head.len()].copy_from_slice(&head);
    f.read_exact(&mut pro[head.len()..])?;
    let pro = Prologue::parse(&pro)?;
    let mut n = 0;
    for e in pro.entries() {
        if e?.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// Run `sft pack`.
pub fn run(a: &PackArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    if a.compression == CompressionArg::None && a.level.is_some() {
        return Err(UsageError("--level needs --compression zlib".to_owned()).into());
    }
    let compression = match a.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Zlib => Compression::Zlib(a.level.unwrap_or(6)),
    };
    let name = a.name.clone().unwrap_or_else(|| default_name(&a.dir));
    let mut opts = WriteOptions::default()
        .name(name)
        .block_size(a.block_size)
        .compression(compression)
        .full_load(a.full_load);
    if let Some(v) = a.package_version {
        opts = opts.version(v);
    }
    if let Some(r) = &a.root {
        opts = opts.root(r.clone());
    }
    if let Some(c) = &a.comment {
        opts = opts.comment(c.clone());
    }
    if let Some(g) = a.package_guid {
        opts = opts.package_guid(g);
    }
    if let Some(t) = a.threads {
        opts = opts.threads(t as usize);
    }
    if let Some(secs) = source_date_epoch()? {
        opts = opts.created(secs, 0);
    }

    let mut b = PackageBuilder::new(opts);
    b.add_tree(&a.dir)
        .with_context(|| format!("cannot pack `{}`", a.dir.display()))?;
    if let Some(list) = &a.launch_list {
        let text = std::fs::read_to_string(list)
            .with_context(|| format!("cannot read launch list `{}`", list.display()))?;
        let items = parse_launch_list(&text)
            .with_context(|| format!("bad launch list `{}`", list.display()))?;
        b.launch_list(items);
    }
    let bar = progress_bar(b.total_size(), "packing");
    if let Some(bar) = &bar {
        let bar = bar.clone();
        b.on_progress(move |n| bar.inc(n));
    }
    let report = b
        .write_to_path(&a.output)
        .with_context(|| format!("cannot write `{}`", a.output.display()))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let files = count_files(&a.output)
        .with_context(|| format!("cannot read back `{}`", a.output.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "packed {files} files into `{}`: package {}, stored {} (ratio {:.3}), launch {}, {} blocks ({} FB1), {:.2} s",
        a.output.display(),
        short(report.package_size),
        short(report.stored_size),
        ratio(report.stored_size, report.package_size),
        short(report.launch_size),
        report.blocks,
        report.fb1_blocks,
        start.elapsed().as_secs_f64()
    )?;
    Ok(())
}
