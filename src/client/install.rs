//! [`Store::install_bundle`]: `sft client install APP.sftb|APP.msi`, all or
//! nothing, with the rollback journal an MSI's custom actions use.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inspect::inspect;
use super::lock::{self, Mode};
use super::records::{self, PackageRecord};
use super::store::{
    INUSE_LOCK, LOAD_LOCK, LoadOptions, LoadReport, MOUNT_RECORD, PUBLISH_DIR, PackageOptions,
    Store, check_name, create_dir, not_added, now_ms,
};
use crate::bundle::msi::{self, MsiPackage};
use crate::bundle::{Bundle, EntryKind};
use crate::error::{Error, StoreProblem};
use crate::format::guid::Guid;
use crate::publish::Manifest;

/// Where the unpacked descriptors of an installed package live, in its
/// folder.
const BUNDLE_DIR: &str = "bundle";
/// The store's folder of rollback journals, one per package GUID.
const ROLLBACK_DIR: &str = "rollback";
/// A journal's state file.
const JOURNAL_STATE: &str = "state.json";

/// What `sft client install` takes: a `.sftb` bundle or a Windows
/// Installer file, told apart by their first bytes.
#[derive(Debug)]
pub enum Installable {
    /// A `.sftb` bundle.
    Bundle(Box<Bundle>),
    /// A Windows Installer file.
    Msi(Box<MsiPackage>),
}

impl Installable {
    /// Open and check `path` in full: a bundle, or an MSI (Compound File
    /// signature).
    ///
    /// # Errors
    /// As [`Bundle::open`] and [`MsiPackage::open`].
    pub fn open(path: &Path) -> Result<Installable, Error> {
        let mut head = [0u8; 8];
        let mut f = crate::bundle::open_input(path, "file")?;
        let n = msi::read_up_to(&mut f, &mut head)
            .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?;
        if msi::is_cfb(&head[..n]) {
            Ok(Installable::Msi(Box::new(MsiPackage::open(path)?)))
        } else if crate::bundle::is_bundle(&head[..n]) {
            Ok(Installable::Bundle(Box::new(Bundle::open(path)?)))
        } else {
            Err(Error::Bundle(format!(
                "`{}` is neither a bundle (.sftb) nor a Windows Installer file (.msi): it starts with neither's signature",
                path.display()
            )))
        }
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        match self {
            Installable::Bundle(b) => b.manifest(),
            Installable::Msi(m) => m.manifest(),
        }
    }

    /// The manifest's `PACKAGE GUID` (`path` names the file in errors).
    ///
    /// # Errors
    /// [`Error::Bundle`] if the manifest names none or a malformed one.
    pub fn package_guid(&self, path: &Path) -> Result<Guid, Error> {
        self.manifest()
            .package
            .as_ref()
            .and_then(|p| p.guid.as_deref())
            .ok_or_else(|| {
                Error::Bundle(format!(
                    "`{}`: its manifest names no PACKAGE GUID",
                    path.display()
                ))
            })?
            .parse()
            .map_err(|e| Error::Bundle(format!("`{}`: {e}", path.display())))
    }

    /// True if the file carries the SFT.
    pub fn has_sft(&self) -> bool {
        match self {
            Installable::Bundle(b) => b.has_sft(),
            Installable::Msi(m) => m.has_sft(),
        }
    }

    fn sft_len(&self) -> Option<u64> {
        match self {
            Installable::Bundle(b) => b.sft_entry().map(|e| e.len),
            Installable::Msi(m) => m.sft_entry().map(|e| e.len),
        }
    }

    fn extract_sft(&self, out: &Path) -> Result<(), Error> {
        match self {
            Installable::Bundle(b) => b.extract_sft(out),
            Installable::Msi(m) => m.extract_sft(out),
        }
    }

    fn unpack_descriptors(&self, dir: &Path) -> Result<PathBuf, Error> {
        match self {
            Installable::Bundle(b) => b.unpack_filtered(dir, |k| k != EntryKind::Sft),
            Installable::Msi(m) => m.unpack_descriptors(dir),
        }
    }

    /// The file's defaults for what the command line may override:
    /// `(MODE, OVERRIDEURL, LOAD)`. A bundle: stand-alone if it carries
    /// the SFT, no OverrideURL, no load.
    ///
    /// # Errors
    /// [`Error::Msi`] for an MSI whose `MODE` or `LOAD` is neither of
    /// its values.
    pub fn defaults(&self) -> Result<(msi::Mode, Option<String>, bool), Error> {
        match self {
            Installable::Bundle(b) => Ok((
                if b.has_sft() {
                    msi::Mode::Standalone
                } else {
                    msi::Mode::Streaming
                },
                None,
                false,
            )),
            Installable::Msi(m) => {
                let p = m.properties();
                let load = msi::parse_load(p.load.as_deref().unwrap_or(""))
                    .map_err(|e| Error::Msi(format!("its properties: {e}")))?;
                Ok((m.mode()?, p.override_url.clone(), load))
            }
        }
    }
}

/// Options of [`Store::install_bundle`]: what `msiexec` takes as
/// `PROPERTY=VALUE` (and the store's own).
#[derive(Debug, Clone, Default)]
pub struct InstallOptions {
    /// The package's name in the store (default: the manifest's `PACKAGE
    /// NAME`).
    pub name: Option<String>,
    /// OverrideURL (`OVERRIDEURL`; default: the MSI's property; empty:
    /// none, whatever the MSI says).
    pub override_url: Option<String>,
    /// For all users.
    pub global: bool,
    /// `MODE` (default: the MSI's property; a bundle is stand-alone if it
    /// carries the SFT). Streaming ignores a carried SFT.
    pub mode: Option<msi::Mode>,
    /// `LOAD` (default: the MSI's property; a bundle does not load unless
    /// asked).
    pub load: Option<bool>,
    /// Keep the rollback journal after a successful install, for
    /// [`Store::rollback_install`] or [`Store::commit_install`] (an MSI's
    /// rollback and commit custom actions). Without it the journal goes
    /// as soon as the install succeeds.
    pub keep_rollback: bool,
}

/// The state before an install, kept in `STORE/rollback/GUID/`.
#[derive(Debug, Serialize, Deserialize)]
struct JournalState {
    /// The file installed.
    source: String,
    /// The package's record before, and its index in the records.
    record: Option<(usize, PackageRecord)>,
    /// Whether the package's folder existed.
    had_dir: bool,
    /// The names in the package's folder before.
    names: Vec<String>,
    /// Which of the descriptor folders were copied into the journal.
    saved: Vec<String>,
    /// Complete data files (`*.sft`) hard-linked into the journal's
    /// `data/`: a load of a new version removes the earlier version's.
    #[serde(default)]
    data: Vec<String>,
    /// The records' use clock.
    clock: u64,
    /// The install finished: the journal is kept only for `--rollback`.
    /// A journal left unfinished is a crashed install's, put back before
    /// the next install of the package journals anything.
    #[serde(default)]
    done: bool,
}

/// The folders an install replaces and a rollback restores.
const SAVED_DIRS: [&str; 2] = [BUNDLE_DIR, PUBLISH_DIR];
/// The journal's folder of hard links to the package's data files.
const JOURNAL_DATA: &str = "data";

/// Names in a package's folder a rollback never removes: the lock files
/// other processes hold, and a mount (a running `sft client run`).
fn kept_by_rollback(name: &str) -> bool {
    name.ends_with(".lock") || name == "mnt" || name == MOUNT_RECORD
}

/// A package data file (complete or partial).
fn is_data(name: &str) -> bool {
    name.ends_with(".sft")
        || name.ends_with(".sft.partial")
        || name.ends_with(".sft.partial.blocks")
}

impl Store {
    fn journal_dir(&self, guid: &Guid) -> PathBuf {
        self.dir().join(ROLLBACK_DIR).join(guid.to_string())
    }

    fn read_journal(&self, guid: &Guid) -> Result<Option<JournalState>, Error> {
        let state_path = self.journal_dir(guid).join(JOURNAL_STATE);
        let bytes = match fs::read(&state_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading `{}`", state_path.display()), e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::store(
                StoreProblem::Damaged,
                format!("rollback journal `{}`: {e}", state_path.display()),
            )
        })
    }

    fn write_journal(&self, guid: &Guid, state: &JournalState) -> Result<(), Error> {
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::invalid(format!("rollback journal: {e}")))?;
        records::write_atomic(&self.journal_dir(guid).join(JOURNAL_STATE), &json, false)
    }

    /// Record the state of package `guid` before an install of `source`;
    /// the caller holds the package's load lock. `had_dir`: whether its
    /// folder existed before the install made it.
    fn begin_journal(&self, guid: &Guid, source: &Path, had_dir: bool) -> Result<(), Error> {
        // A crashed install's journal puts the package back first; a
        // finished one is dropped (its install is kept).
        if let Some(old) = self.read_journal(guid)?
            && !old.done
        {
            self.restore_locked(guid, old)?;
        }
        let j = self.journal_dir(guid);
        if j.exists() {
            fs::remove_dir_all(&j)
                .map_err(|e| Error::io(format!("removing `{}`", j.display()), e))?;
        }
        create_dir(&j)?;
        let r = self.records()?;
        let record = r
            .packages
            .iter()
            .position(|p| p.matches(&guid.to_string()))
            .map(|i| (i, r.packages[i].clone()));
        let dir = self.package_dir(guid);
        let mut names = Vec::new();
        let mut saved = Vec::new();
        let mut data = Vec::new();
        if had_dir {
            for e in fs::read_dir(&dir)
                .map_err(|e| Error::io(format!("reading `{}`", dir.display()), e))?
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".sft") && e.file_type().is_ok_and(|t| t.is_file()) {
                    create_dir(&j.join(JOURNAL_DATA))?;
                    // A hard link costs nothing; a file system without
                    // them gets a copy.
                    let to = j.join(JOURNAL_DATA).join(&n);
                    fs::hard_link(e.path(), &to)
                        .or_else(|_| fs::copy(e.path(), &to).map(|_| ()))
                        .map_err(|err| {
                            Error::io(
                                format!("keeping `{}` in the journal", e.path().display()),
                                err,
                            )
                        })?;
                    data.push(n.clone());
                }
                names.push(n);
            }
            for sub in SAVED_DIRS {
                let from = dir.join(sub);
                if from.is_dir() {
                    copy_tree(&from, &j.join(sub))?;
                    saved.push(sub.to_owned());
                }
            }
        }
        let state = JournalState {
            clock: r.clock,
            source: source.display().to_string(),
            record,
            had_dir,
            names,
            saved,
            data,
            done: false,
        };
        records::sync_dir(&j)?;
        self.write_journal(guid, &state)
    }

    /// Put package `guid` back as its journal recorded it, then drop the
    /// journal. False if there is no journal.
    fn restore_journal(&self, guid: &Guid) -> Result<bool, Error> {
        let Some(state) = self.read_journal(guid)? else {
            return Ok(false);
        };
        let dir = self.package_dir(guid);
        let _load = if dir.exists() {
            Some(lock::lock(&dir.join(LOAD_LOCK), Mode::Exclusive)?)
        } else {
            None
        };
        self.restore_locked(guid, state)?;
        Ok(true)
    }

    /// [`Store::restore_journal`] with the package's load lock held (or
    /// no package folder). Data files are removed only if no process has
    /// the package in use; lock files and mounts are never touched.
    fn restore_locked(&self, guid: &Guid, state: JournalState) -> Result<(), Error> {
        let j = self.journal_dir(guid);
        let key = guid.to_string();
        let dir = self.package_dir(guid);
        if dir.exists() {
            let inuse = lock::try_exclusive(&dir.join(INUSE_LOCK))?;
            for e in fs::read_dir(&dir)
                .map_err(|e| Error::io(format!("reading `{}`", dir.display()), e))?
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                let replaced = SAVED_DIRS.contains(&n.as_str());
                let added = !state.names.contains(&n);
                if kept_by_rollback(&n) || !(replaced || added) || (is_data(&n) && inuse.is_none())
                {
                    continue;
                }
                remove_any(&e.path())?;
            }
            for sub in &state.saved {
                let to = dir.join(sub);
                fs::rename(j.join(sub), &to)
                    .map_err(|e| Error::io(format!("restoring `{}`", to.display()), e))?;
            }
            // Data a load of another version removed comes back.
            for n in &state.data {
                let to = dir.join(n);
                if !to.exists() {
                    fs::rename(j.join(JOURNAL_DATA).join(n), &to)
                        .map_err(|e| Error::io(format!("restoring `{}`", to.display()), e))?;
                }
            }
            if !state.had_dir && inuse.is_some() {
                // As delete-package: the folder goes, locks held.
                fs::remove_dir_all(&dir)
                    .map_err(|e| Error::io(format!("removing `{}`", dir.display()), e))?;
            } else {
                records::sync_dir(&dir)?;
            }
        }
        self.update(|r| {
            let at = r.packages.iter().position(|p| p.matches(&key));
            if let Some(i) = at {
                r.packages.remove(i);
            }
            if let Some((i, rec)) = &state.record {
                let i = (*i).min(r.packages.len());
                r.packages.insert(i, rec.clone());
            }
            // The use clock goes back too, unless a use since needs it.
            let used = r.packages.iter().map(|p| p.last_used).max().unwrap_or(0);
            r.clock = state.clock.max(used);
            Ok(())
        })?;
        self.drop_journal(guid)?;
        Ok(())
    }

    fn drop_journal(&self, guid: &Guid) -> Result<bool, Error> {
        let j = self.journal_dir(guid);
        match fs::remove_dir_all(&j) {
            Ok(()) => {
                // The journals' folder goes when it is empty.
                let _ = fs::remove_dir(self.dir().join(ROLLBACK_DIR));
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("removing `{}`", j.display()), e)),
        }
    }

    /// Mark the journal of a finished install: kept for `--rollback`, or
    /// dropped (a journal that cannot be removed is marked finished, so it
    /// is never mistaken for a crashed install's).
    fn finish_journal(&self, guid: &Guid, keep: bool) -> Result<(), Error> {
        if let Some(mut state) = self.read_journal(guid)? {
            state.done = true;
            self.write_journal(guid, &state)?;
        }
        if !keep {
            let _ = self.drop_journal(guid);
        }
        Ok(())
    }

    /// Install a bundle (`.sftb`) or a Windows Installer file (`.msi`): add
    /// and publish the package it carries in one step (App-V's MSI with
    /// `MODE`, `OVERRIDEURL`, `LOAD`). Stand-alone, the carried SFT is put
    /// in place as the package's data (checked in full first); streaming,
    /// the package is loaded from `OVERRIDEURL` or the manifest's `HREF`
    /// if `LOAD` says so, with `load`'s options (default ones if `None`).
    /// Returns the package's name (the manifest's `PACKAGE NAME`, else its
    /// GUID) and the load's report.
    ///
    /// All or nothing: the package's record, descriptors and data are
    /// journaled first, and any failure (a bad file, a load that fails)
    /// puts them back as they were. With
    /// [`InstallOptions::keep_rollback`] the journal stays for
    /// [`Store::rollback_install`] or [`Store::commit_install`].
    ///
    /// # Errors
    /// [`Error::Bundle`] or [`Error::Msi`] for a bad bundle or MSI
    /// (nothing changes); as
    /// [`Store::add_package`], [`Store::publish_package`] and
    /// [`Store::load_package`].
    pub fn install_bundle(
        &self,
        path: &Path,
        options: &InstallOptions,
        load: Option<LoadOptions>,
    ) -> Result<(String, Option<LoadReport>), Error> {
        let b = Installable::open(path)?;
        let (mode0, url0, load0) = b.defaults()?;
        let mode = options.mode.unwrap_or(mode0);
        // An empty OVERRIDEURL unsets the file's.
        let override_url = match options.override_url.as_deref() {
            Some(u) if u.trim().is_empty() => None,
            Some(u) => Some(u.to_owned()),
            None => url0,
        };
        let want_load = options.load.unwrap_or(load0);
        if mode == msi::Mode::Standalone && !b.has_sft() {
            return Err(Error::invalid(format!(
                "`{}`: MODE=STANDALONE, but it carries no SFT; install it with MODE=STREAMING",
                path.display()
            )));
        }
        let pkg = b.manifest().package.clone().unwrap_or_default();
        let guid = b.package_guid(path)?;
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
        let had_dir = dir.is_dir();
        create_dir(&dir)?;
        {
            // Journaled with the load lock held: no load of the package
            // changes its folder meanwhile.
            let _load = lock::lock(&dir.join(LOAD_LOCK), Mode::Exclusive)?;
            self.begin_journal(&guid, path, had_dir)?;
        }
        let ctx = Install {
            b: &b,
            path,
            guid: &guid,
            name: &name,
            options,
            override_url,
            standalone: mode == msi::Mode::Standalone,
        };
        match self.install_steps(&ctx, want_load, load) {
            Ok(v) => {
                self.finish_journal(&guid, options.keep_rollback)?;
                Ok(v)
            }
            Err(e) => {
                if let Err(re) = self.restore_journal(&guid) {
                    return Err(Error::store(
                        StoreProblem::Damaged,
                        format!(
                            "installing `{}` failed ({e}), and putting package {guid} back failed too ({re}); its journal is in `{}`",
                            path.display(),
                            self.journal_dir(&guid).display()
                        ),
                    ));
                }
                Err(e)
            }
        }
    }

    fn install_steps(
        &self,
        c: &Install<'_>,
        want_load: bool,
        load: Option<LoadOptions>,
    ) -> Result<(String, Option<LoadReport>), Error> {
        let name = c.name;
        let dir = self.package_dir(c.guid);
        create_dir(&dir)?;
        {
            // One install or load of this package at a time.
            let _load = lock::lock(&dir.join(LOAD_LOCK), Mode::Exclusive)?;
            let unpack_dir = dir.join(BUNDLE_DIR);
            // Unpack beside, then swap in: a failed unpack leaves nothing.
            // Staging folders of killed installs go first.
            if let Ok(rd) = fs::read_dir(&dir) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if n.starts_with(".bundle.tmp-") || n.starts_with(".install-") {
                        let _ = remove_any(&e.path());
                    }
                }
            }
            let staging = dir.join(format!(".bundle.tmp-{}", std::process::id()));
            let unpacked = c.b.unpack_descriptors(&staging)?;
            let rel = unpacked
                .strip_prefix(&staging)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| PathBuf::from("manifest.xml"));
            if unpack_dir.exists() {
                fs::remove_dir_all(&unpack_dir)
                    .map_err(|e| Error::io(format!("removing `{}`", unpack_dir.display()), e))?;
            }
            fs::rename(&staging, &unpack_dir)
                .map_err(|e| Error::io(format!("renaming `{}`", staging.display()), e))?;
            let manifest = unpack_dir.join(rel);
            let popts = PackageOptions {
                override_url: c.override_url.clone(),
                global: c.options.global,
                ..PackageOptions::default()
            };
            self.add_package(name, &manifest, &popts)?;
            self.publish_package(name, &manifest, c.options.global)?;
            if c.standalone {
                let rec = self
                    .records()?
                    .find(name)
                    .cloned()
                    .ok_or_else(|| not_added(name))?;
                let out = self.sft_path(&rec)?;
                if !inspect(&out).complete {
                    // Extracted and checked in full beside, as a load
                    // checks every block (the store holds only packages
                    // that verify: a later version's delta load copies
                    // from them), before room is made for it.
                    let staged = dir.join(format!(".install-{}.sft", std::process::id()));
                    c.b.extract_sft(&staged)?;
                    let checked =
                        crate::io::package_file::PackageFile::open(&staged).and_then(|p| {
                            p.verify_with(&|_| {}, &crate::io::Threads::available())
                                .map(|_| ())
                        });
                    if let Err(e) = checked {
                        let _ = fs::remove_file(&staged);
                        return Err(e);
                    }
                    let need = c.b.sft_len().unwrap_or(rec.size.unwrap_or(0));
                    let room = self.update(|r| {
                        if let Some(limit) = r.settings.cache_limit {
                            self.make_room(r, name, need, limit)?;
                        }
                        Ok(())
                    });
                    if let Err(e) = room {
                        let _ = fs::remove_file(&staged);
                        return Err(e);
                    }
                    fs::rename(&staged, &out)
                        .map_err(|e| Error::io(format!("renaming into `{}`", out.display()), e))?;
                    records::sync_dir(&dir)?;
                }
                self.update(|r| {
                    let t = r.tick();
                    let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
                    rec.last_used = t;
                    rec.last_used_ms = now_ms();
                    rec.source = Some(c.path.display().to_string());
                    Ok(())
                })?;
                return Ok((name.to_owned(), None));
            }
        }
        let report = if want_load {
            Some(self.load_package(name, load.unwrap_or_default())?)
        } else {
            None
        };
        Ok((name.to_owned(), report))
    }

    /// Undo the last install of `path` that kept its journal
    /// ([`InstallOptions::keep_rollback`]): the package's record,
    /// descriptors and new data go back to what they were before it (an
    /// MSI's rollback custom action). Returns the package's GUID, or
    /// `None` if no journal was kept.
    ///
    /// # Errors
    /// As [`Installable::open`]; [`Error::Io`].
    pub fn rollback_install(&self, path: &Path) -> Result<Option<Guid>, Error> {
        let guid = installed_guid(path)?;
        Ok(self.restore_journal(&guid)?.then_some(guid))
    }

    /// Keep the last install of `path` for good: drop its journal (an MSI's
    /// commit custom action). Returns false if there was none.
    ///
    /// # Errors
    /// As [`Installable::open`]; [`Error::Io`].
    pub fn commit_install(&self, path: &Path) -> Result<bool, Error> {
        let guid = installed_guid(path)?;
        self.drop_journal(&guid)
    }
}

/// What one install works with.
struct Install<'a> {
    b: &'a Installable,
    path: &'a Path,
    guid: &'a Guid,
    name: &'a str,
    options: &'a InstallOptions,
    override_url: Option<String>,
    standalone: bool,
}

/// The package GUID of the bundle or MSI at `path`.
fn installed_guid(path: &Path) -> Result<Guid, Error> {
    Installable::open(path)?.package_guid(path)
}

/// Remove a file or a folder tree.
fn remove_any(p: &Path) -> Result<(), Error> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|e| Error::io(format!("removing `{}`", p.display()), e))
}

/// Copy a folder of regular files and folders (the store's own
/// descriptors); anything else is skipped.
fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    create_dir(to)?;
    for e in fs::read_dir(from)
        .map_err(|e| Error::io(format!("reading `{}`", from.display()), e))?
        .flatten()
    {
        let t = e
            .file_type()
            .map_err(|err| Error::io(format!("reading `{}`", e.path().display()), err))?;
        let dest = to.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else if t.is_file() {
            fs::copy(e.path(), &dest)
                .and_then(|_| fs::File::open(&dest)?.sync_all())
                .map_err(|err| Error::io(format!("copying `{}`", e.path().display()), err))?;
        }
    }
    Ok(())
}
