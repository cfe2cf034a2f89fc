//! `sft bundle --manifest M [--with-sft] [--sft PATH] -o APP.sftb`, and
//! `sft bundle --list APP.sftb` / `sft bundle --unpack APP.sftb DIR`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use sft::bundle::{Bundle, BundleOptions, write_bundle};

use crate::escape::Safe;
use crate::util::UsageError;

/// `sft bundle`.
#[derive(Debug, clap::Args)]
pub(crate) struct BundleArgs {
    /// The manifest to bundle (with every OSD and icon it references under
    /// %SFT_MIME_SOURCE%, its folder).
    #[arg(long, value_name = "M")]
    pub manifest: Option<PathBuf>,
    /// Also carry the SFT (a stand-alone bundle), found through the
    /// manifest's PACKAGE HREF (or the first APP's OSD CODEBASE HREF) as a
    /// local file.
    #[arg(long)]
    pub with_sft: bool,
    /// The SFT to carry, instead of the one the manifest names (implies
    /// --with-sft).
    #[arg(long, value_name = "PATH")]
    pub sft: Option<PathBuf>,
    /// The bundle to write.
    #[arg(short = 'o', long = "output", value_name = "APP.sftb")]
    pub output: Option<PathBuf>,
    /// Check a bundle and list its entries (kind, bytes, CRC-32, offset, name).
    #[arg(long, value_name = "APP.sftb", conflicts_with_all = ["manifest", "with_sft", "sft", "output", "unpack"])]
    pub list: Option<PathBuf>,
    /// Check a bundle and unpack it into DIR (absent or empty), in the
    /// layout the manifest expects; prints the manifest's path there.
    #[arg(long, num_args = 2, value_names = ["APP.sftb", "DIR"], conflicts_with_all = ["manifest", "with_sft", "sft", "output"])]
    pub unpack: Option<Vec<PathBuf>>,
}

pub(crate) fn run(args: &BundleArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.list {
        let b = Bundle::open(path)?;
        for e in b.entries() {
            writeln!(
                out,
                "{:<8} {:>12} {:08x} {:>12} {}",
                e.kind.to_string(),
                e.len,
                e.crc32,
                e.offset,
                Safe(&e.name)
            )?;
        }
        return Ok(());
    }
    if let Some(v) = &args.unpack {
        let (src, dir) = match v.as_slice() {
            [s, d] => (s, d),
            _ => return Err(UsageError("--unpack takes APP.sftb DIR".into()).into()),
        };
        let b = Bundle::open(src)?;
        let m = b
            .unpack(dir)
            .with_context(|| format!("cannot unpack `{}`", src.display()))?;
        writeln!(
            out,
            "unpacked {} entries into `{}`: manifest `{}`",
            b.entries().len(),
            dir.display(),
            m.display()
        )?;
        return Ok(());
    }
    let Some(manifest) = &args.manifest else {
        return Err(UsageError(
            "sft bundle needs --manifest M -o APP.sftb (or --list APP.sftb, --unpack APP.sftb DIR)"
                .into(),
        )
        .into());
    };
    let Some(output) = args.output.as_ref().filter(|o| !o.as_os_str().is_empty()) else {
        return Err(UsageError("sft bundle --manifest needs -o APP.sftb".into()).into());
    };
    let options = BundleOptions {
        with_sft: args.with_sft || args.sft.is_some(),
        sft: args.sft.clone(),
    };
    let s = write_bundle(manifest, &options, output)?;
    match s.sft_bytes {
        Some(n) => writeln!(
            out,
            "bundled {} entries into `{}`: {} bytes, SFT {n} bytes (stand-alone)",
            s.entries,
            output.display(),
            s.bytes
        )?,
        None => writeln!(
            out,
            "bundled {} entries into `{}`: {} bytes, no SFT",
            s.entries,
            output.display(),
            s.bytes
        )?,
    }
    Ok(())
}
