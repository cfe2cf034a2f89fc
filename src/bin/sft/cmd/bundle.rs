//! `sft bundle create --manifest M [--with-sft] [--sft PATH] -o APP.sftb`,
//! `sft bundle ls APP.sftb`, `sft bundle unpack APP.sftb DIR`; and the
//! first version's flag forms (`--manifest … -o`, `--list`, `--unpack`).

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;

use anyhow::Context;
use sft::bundle::{Bundle, BundleOptions, write_bundle};

use crate::escape::Safe;
use crate::util::UsageError;

pub(crate) fn run(args: &BundleArgs) -> anyhow::Result<()> {
    // Each subcommand is the flag form it names.
    let flags;
    let args = match &args.command {
        None => args,
        Some(BundleCommand::Create {
            manifest,
            with_sft,
            sft,
            output,
        }) => {
            flags = BundleArgs {
                command: None,
                manifest: Some(manifest.clone()),
                with_sft: *with_sft,
                sft: sft.clone(),
                output: Some(output.clone()),
                list: None,
                unpack: None,
            };
            &flags
        }
        Some(BundleCommand::Ls { bundle }) => {
            flags = BundleArgs {
                command: None,
                manifest: None,
                with_sft: false,
                sft: None,
                output: None,
                list: Some(bundle.clone()),
                unpack: None,
            };
            &flags
        }
        Some(BundleCommand::Unpack { bundle, dir }) => {
            flags = BundleArgs {
                command: None,
                manifest: None,
                with_sft: false,
                sft: None,
                output: None,
                list: None,
                unpack: Some(vec![bundle.clone(), dir.clone()]),
            };
            &flags
        }
    };
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
