//! [`Store::install_bundle`]: `sft client install APP.sftb`.

use std::fs;
use std::path::{Path, PathBuf};

use super::inspect::inspect;
use super::lock::{self, Mode};
use super::store::{
    LOAD_LOCK, LoadOptions, LoadReport, PackageOptions, Store, check_name, create_dir, not_added,
    now_ms,
};
use crate::error::{Error, StoreProblem};
use crate::format::guid::Guid;

impl Store {
    /// Install a bundle (`.sftb`): add and publish the package it
    /// carries in one step (App-V's MSI with `MODE`, `OVERRIDEURL`,
    /// `LOAD`). A stand-alone bundle's SFT is put in place as the
    /// package's data; otherwise `load` streams it from the bundle's
    /// `HREF` or `override_url`. Returns the package's name (the
    /// manifest's `PACKAGE NAME`, else its GUID).
    ///
    /// # Errors
    /// [`Error::Bundle`] for a bad bundle (nothing changes); as
    /// [`Store::add_package`], [`Store::publish_package`] and
    /// [`Store::load_package`].
    pub fn install_bundle(
        &self,
        bundle: &Path,
        options: &InstallOptions,
        load: Option<LoadOptions>,
    ) -> Result<(String, Option<LoadReport>), Error> {
        let b = crate::bundle::Bundle::open(bundle)?;
        let m = b.manifest();
        let pkg = m.package.clone().unwrap_or_default();
        let guid: Guid = pkg
            .guid
            .as_deref()
            .ok_or_else(|| {
                Error::Bundle(format!(
                    "`{}`: its manifest names no PACKAGE GUID",
                    bundle.display()
                ))
            })?
            .parse()
            .map_err(|e| Error::Bundle(format!("`{}`: {e}", bundle.display())))?;
        let name = options
            .name
            .clone()
            .or_else(|| pkg.name.clone().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| guid.to_string());
        check_name(&name)?;
        // Conflicts are found before anything is written.
        {
            let r = self.records()?;
            if let Some(other) = r.find(&guid.to_string()) {
                if !other.matches(&name) {
                    return Err(Error::store(
                        StoreProblem::Exists,
                        format!(
                            "package {guid} is already in the store as `{}`; install with --name {}",
                            other.name, other.name
                        ),
                    ));
                }
            } else if let Some(other) = r.find(&name) {
                return Err(Error::store(
                    StoreProblem::Exists,
                    format!(
                        "`{name}` is another package in the store ({}); install with another --name",
                        other.guid
                    ),
                ));
            }
        }
        let dir = self.package_dir(&guid);
        create_dir(&dir)?;
        {
            // One install or load of this package at a time.
            let _load = lock::lock(&dir.join(LOAD_LOCK), Mode::Exclusive)?;
            let unpack_dir = dir.join("bundle");
            // Unpack beside, then swap in: a failed unpack leaves nothing.
            // Staging folders of killed installs go first.
            if let Ok(rd) = fs::read_dir(&dir) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().starts_with(".bundle.tmp-") {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
            let staging = dir.join(format!(".bundle.tmp-{}", std::process::id()));
            create_dir(&staging)?;
            let unpacked = match b.unpack(&staging) {
                Ok(m) => m,
                Err(e) => {
                    let _ = fs::remove_dir_all(&staging);
                    return Err(e);
                }
            };
            let rel = unpacked
                .strip_prefix(&staging)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| PathBuf::from("manifest.xml"));
            let _ = fs::remove_dir_all(&unpack_dir);
            fs::rename(&staging, &unpack_dir)
                .map_err(|e| Error::io(format!("renaming `{}`", staging.display()), e))?;
            let manifest = unpack_dir.join(rel);
            let popts = PackageOptions {
                override_url: options.override_url.clone(),
                global: options.global,
                ..PackageOptions::default()
            };
            self.add_package(&name, &manifest, &popts)?;
            self.publish_package(&name, &manifest, options.global)?;
            if b.has_sft() {
                let rec = self
                    .records()?
                    .find(&name)
                    .cloned()
                    .ok_or_else(|| not_added(&name))?;
                let out = self.sft_path(&rec)?;
                if !inspect(&out).complete {
                    let need = b.sft_entry().map_or(rec.size.unwrap_or(0), |e| e.len);
                    self.update(|r| {
                        if let Some(limit) = r.settings.cache_limit {
                            self.make_room(r, &name, need, limit)?;
                        }
                        Ok(())
                    })?;
                    b.extract_sft(&out)?;
                    // Checked in full, as a load checks every block: the
                    // store holds only packages that verify (a later
                    // version's delta load copies from them on that
                    // basis).
                    let checked = crate::io::package_file::PackageFile::open(&out)
                        .and_then(|p| p.verify().map(|_| ()));
                    if let Err(e) = checked {
                        let _ = fs::remove_file(&out);
                        return Err(e);
                    }
                }
                self.update(|r| {
                    let t = r.tick();
                    let rec = r.find_mut(&name).ok_or_else(|| not_added(&name))?;
                    rec.last_used = t;
                    rec.last_used_ms = now_ms();
                    rec.source = Some(bundle.display().to_string());
                    Ok(())
                })?;
                return Ok((name, None));
            }
        }
        let report = match load {
            Some(l) => Some(self.load_package(&name, l)?),
            None => None,
        };
        Ok((name, report))
    }
}

/// Options of [`Store::install_bundle`].
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The package's name in the store (default: the manifest's `PACKAGE
    /// NAME`).
    pub name: Option<String>,
    /// OverrideURL (App-V's MSI `OVERRIDEURL`).
    pub override_url: Option<String>,
    /// For all users.
    pub global: bool,
}
