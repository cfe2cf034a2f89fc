//! `sft msi --manifest M -o APP.msi [--with-sft | --sft PATH | --sft-url
//! URL] [--load]` and `sft msi --list APP.msi`.

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;

use sft::bundle::msi::{MsiOptions, MsiPackage, write_msi};

use crate::escape::Safe;
use crate::util::UsageError;

pub(crate) fn run(args: &MsiArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.list {
        let m = MsiPackage::open(path)?;
        m.check_sft()?;
        let p = m.properties();
        let show =
            |v: &Option<String>| v.as_deref().map_or_else(|| "-".to_owned(), sft::redact_url);
        writeln!(out, "ProductName    {}", Safe(&show(&p.product_name)))?;
        writeln!(out, "ProductVersion {}", Safe(&show(&p.product_version)))?;
        writeln!(out, "ProductCode    {}", Safe(&show(&p.product_code)))?;
        writeln!(out, "UpgradeCode    {}", Safe(&show(&p.upgrade_code)))?;
        writeln!(out, "MODE           {}", m.mode()?.as_str())?;
        writeln!(out, "OVERRIDEURL    {}", Safe(&show(&p.override_url)))?;
        writeln!(out, "LOAD           {}", Safe(&show(&p.load)))?;
        for e in m.entries() {
            writeln!(
                out,
                "{:<8} {:>12} {:<12} {}",
                e.kind.to_string(),
                e.len,
                Safe(&e.key),
                Safe(&e.name)
            )?;
        }
        return Ok(());
    }
    let (Some(manifest), Some(output)) = (&args.manifest, &args.output) else {
        return Err(
            UsageError("sft msi needs --manifest M -o APP.msi (or --list APP.msi)".into()).into(),
        );
    };
    let options = MsiOptions {
        with_sft: args.with_sft || args.sft.is_some(),
        sft: args.sft.clone(),
        sft_url: args.sft_url.clone(),
        load: args.load,
        manufacturer: args.manufacturer.clone(),
        client: args.client.clone(),
    };
    let s = write_msi(manifest, &options, output)?;
    writeln!(
        out,
        "wrote `{}`: {} bytes, {} files, MODE={}{}, ProductVersion {}, ProductCode {}, UpgradeCode {}",
        Safe(&output.display().to_string()),
        s.bytes,
        s.files,
        s.mode.as_str(),
        s.sft_bytes
            .map_or_else(String::new, |n| format!(" (SFT {n} bytes)")),
        s.product_version,
        s.product_code,
        s.upgrade_code
    )?;
    Ok(())
}
