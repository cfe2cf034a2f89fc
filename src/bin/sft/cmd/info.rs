//! `sft info PKG|URL [--json]`: a local package, or the prologue of a
//! remote one (nothing past the prologue is read).

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;

use sft::Codec;
use sft::index::BlockIndex;

use super::source_args::Inspected;
use crate::args::InfoArgs;
use crate::escape::safe;
use crate::util::{human, ratio, rfc3339};

/// `zlib`, `zstd`, `none` or `mixed`, from the blocks' codecs (stored
/// blocks beside compressed ones of one codec do not make it mixed:
/// blocks that do not shrink are always stored).
fn compression(index: &BlockIndex<'_>) -> anyhow::Result<&'static str> {
    let (mut zlib, mut zstd) = (0u32, 0u32);
    for id in index.ids() {
        match index.get(id)?.codec {
            Codec::Stored => {}
            Codec::Zstd => zstd += 1,
            _ => zlib += 1,
        }
    }
    Ok(match (zlib, zstd) {
        (0, 0) => "none",
        (_, 0) => "zlib",
        (0, _) => "zstd",
        _ => "mixed",
    })
}

/// Run `sft info`.
pub fn run(a: &InfoArgs, no_mmap: bool) -> anyhow::Result<()> {
    let inspected = Inspected::open(&a.package, no_mmap, &a.remote)?;
    let pkg = inspected.prologue()?;
    let m = pkg.metadata();
    // O(entries + blocks) with a small constant: one CRC over the entries
    // section and a few fields per record, one CRC per 32-byte block
    // record; no entry is loaded (docs/FORMAT.md §11.2).
    let counts = pkg.count_entries()?;
    let (files, dirs) = (counts.files, counts.directories);
    let index = pkg.index();
    let comp = compression(&index)?;
    let stored = inspected.package_len();
    let (secs, nanos) = m.created();
    let created = rfc3339(secs, nanos);
    let r = ratio(stored, m.package_size());
    let h = pkg.header();
    let format = format!("{}.{}", h.major, h.minor);
    let content_id = pkg.has_block_hashes().then(|| pkg.content_id().to_string());
    let mut out = std::io::stdout().lock();
    if a.json {
        let v = serde_json::json!({
            "name": m.name(),
            "format": format,
            "content_id": content_id,
            "block_hashes": pkg.has_block_hashes(),
            "prologue_len": h.prologue_len,
            "package_guid": m.package_guid().to_string(),
            "version_guid": m.version_guid().to_string(),
            "version": m.version(),
            "root": m.root(),
            "comment": m.comment(),
            "created": created,
            "created_unix": secs,
            "block_size": pkg.header().block_size,
            "compression": comp,
            "files": files,
            "directories": dirs,
            "package_size": m.package_size(),
            "launch_size": m.launch_size(),
            "stored_size": stored,
            "ratio": r,
            "blocks": index.len(),
            "fb1_blocks": index.fb1_len(),
        });
        writeln!(out, "{}", crate::escape::json(&v)?)?;
    } else {
        let rows: [(&str, String); 19] = [
            ("Name", safe(m.name())),
            ("Format", format),
            (
                "Content ID",
                content_id.unwrap_or_else(|| "none (v1.0: no block hashes)".to_owned()),
            ),
            ("Package GUID", m.package_guid().to_string()),
            ("Version GUID", m.version_guid().to_string()),
            ("Version", m.version().to_string()),
            ("Root", safe(m.root())),
            ("Comment", safe(m.comment())),
            ("Created", created),
            ("Block size", human(u64::from(pkg.header().block_size))),
            ("Compression", comp.to_owned()),
            ("Files", files.to_string()),
            ("Directories", dirs.to_string()),
            ("Package size", human(m.package_size())),
            ("Launch size", human(m.launch_size())),
            ("Stored size", human(stored)),
            ("Ratio", format!("{r:.3}")),
            ("Blocks", index.len().to_string()),
            ("FB1 blocks", index.fb1_len().to_string()),
        ];
        for (k, v) in rows {
            writeln!(out, "{:<13} {v}", format!("{k}:"))?;
        }
    }
    out.flush()?;
    Ok(())
}
