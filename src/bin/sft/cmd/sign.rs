//! `sft keygen`, `sft sign`, `sft diff`, `sft patch`: signatures over a
//! package's prologue, and differential packages.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use sft::sign::SigningKey;

use crate::args::{DiffArgs, KeygenArgs, PatchArgs, SignArgs};
use crate::escape::Safe;
use crate::util::short;

/// A path as printed: escaped (a name may hold control characters).
fn shown(p: &Path) -> String {
    Safe(&p.display().to_string()).to_string()
}

/// Write `text` to a new file `path` (never over an existing one), with
/// `mode` on Unix.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, mode);
    let _ = mode;
    let mut f = o
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

/// Run `sft keygen`.
pub(crate) fn keygen(a: &KeygenArgs) -> anyhow::Result<()> {
    let public = with_suffix(&a.output, ".pub");
    for p in [&a.output, &public] {
        anyhow::ensure!(!p.exists(), "`{}` exists: not overwritten", p.display());
    }
    let (key, pk) = SigningKey::generate()?;
    write_new(&a.output, &key.to_text()?, 0o600)?;
    if let Err(e) = write_new(&public, &pk.to_text()?, 0o644) {
        let _ = std::fs::remove_file(&a.output);
        return Err(e);
    }
    out!(
        "key {}: secret key `{}`, public key `{}`",
        pk.id(),
        shown(&a.output),
        shown(&public)
    )?;
    Ok(())
}

/// Run `sft sign`.
pub(crate) fn sign(a: &SignArgs) -> anyhow::Result<()> {
    let password = std::env::var("SFT_KEY_PASSWORD").ok();
    let key = SigningKey::from_file(&a.key, password)?;
    let pkg = sft::PackageFile::open(&a.package)?;
    let prologue = pkg.prologue();
    let sig = key
        .sign(&prologue)
        .with_context(|| format!("cannot sign `{}`", a.package.display()))?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| with_suffix(&a.package, ".minisig"));
    sft::io::atomic::write(&out, sig.as_text().as_bytes())?;
    out!(
        "signed {} with key {}: `{}`",
        prologue.content_id(),
        key.public().id(),
        shown(&out)
    )?;
    Ok(())
}

/// Run `sft diff`.
pub(crate) fn diff(a: &DiffArgs) -> anyhow::Result<()> {
    let r = sft::fetch::delta::diff(&a.old, &a.new, &a.output).with_context(|| {
        format!(
            "cannot diff `{}` against `{}`",
            a.new.display(),
            a.old.display()
        )
    })?;
    out!(
        "wrote `{}`: {} ({} bytes), {} of {} blocks carried; the new package is {}",
        shown(&a.output),
        short(r.dsft_bytes),
        r.dsft_bytes,
        r.carried_blocks,
        r.blocks,
        short(r.package_bytes)
    )?;
    Ok(())
}

/// Run `sft patch`.
pub(crate) fn patch(a: &PatchArgs) -> anyhow::Result<()> {
    let r = sft::fetch::delta::patch(&a.old, &a.dsft, &a.output).with_context(|| {
        format!(
            "cannot patch `{}` with `{}`",
            a.old.display(),
            a.dsft.display()
        )
    })?;
    out!(
        "wrote `{}` ({} bytes, verified): {} of {} blocks from the DSFT",
        shown(&a.output),
        r.package_bytes,
        r.carried_blocks,
        r.blocks
    )?;
    Ok(())
}
