//! [`Store`]: the verbs of `sft client`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::inspect::{CacheState, inspect};
use super::lock::{self, Held, Mode};
use super::records::{
    self, AppRecord, AutoLoad, AutoLoadTarget, FileTypeRecord, PackageRecord, Records, Settings,
    ShortcutRecord,
};
use crate::error::{Error, StoreProblem};
use crate::fetch::cache::CachePaths;
use crate::fetch::{EventCallback, FetchOptions, FetchReport, SourceOptions};
use crate::format::guid::Guid;
use crate::publish::{Manifest, Osd, SourceRoots, expand_vars, resolve_codebase, validate_icon};

/// Largest manifest or OSD read (as the publishing code's limit).
const MAX_DESCRIPTOR_BYTES: u64 = 4 << 20;

/// Share of the cache limit locked packages may take (App-V's
/// `MaxPercentToLockInCache`).
pub const MAX_PERCENT_TO_LOCK: u64 = 90;

const RECORDS: &str = "records.json";
const RECORDS_LOCK: &str = "records.lock";
pub(super) const PACKAGES: &str = "packages";
pub(super) const LOAD_LOCK: &str = "load.lock";
pub(super) const INUSE_LOCK: &str = "inuse.lock";
/// Where a package is mounted outside the store (`sft client mount`).
pub(super) const MOUNT_RECORD: &str = "mount-point";
pub(super) const PUBLISH_DIR: &str = "publish";

/// A client package store: a folder holding the records and the packages'
/// data; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    user: String,
}

/// Options of [`Store::add_package`] and [`Store::configure_package`];
/// `None` leaves a setting as it is (or at its default for a new package).
#[derive(Debug, Clone, Default)]
pub struct PackageOptions {
    /// OverrideURL (`Some("")` clears it).
    pub override_url: Option<String>,
    /// For all users (add only; a package once global stays global).
    pub global: bool,
    /// Autoload triggers (an empty list is "never").
    pub autoload: Option<Vec<AutoLoad>>,
    /// Autoload target.
    pub autoload_target: Option<AutoLoadTarget>,
}

/// Options of [`Store::load_package`].
#[derive(Default)]
pub struct LoadOptions {
    /// Load from this SFT instead of the configured source (App-V's
    /// `/SFTPATH`).
    pub sft_path: Option<String>,
    /// Stop once the package can launch (FB1 cached).
    pub launch_only: bool,
    /// Bytes per second, 0 unlimited.
    pub limit_rate: u64,
    /// How long a source that is down or restarting is retried
    /// ([`FetchOptions::retry_for`]); `None`: the default window.
    pub retry_for: Option<std::time::Duration>,
    /// How URL sources are opened.
    pub sources: SourceOptions,
    /// Streaming events (progress, launch-ready, complete).
    pub on_event: Option<EventCallback>,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("sft_path", &self.sft_path.as_deref().map(crate::redact_url))
            .field("launch_only", &self.launch_only)
            .field("limit_rate", &self.limit_rate)
            .field("retry_for", &self.retry_for)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Store::load_package`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadReport {
    /// The source loaded from (credentials included; redact before
    /// printing).
    pub source: String,
    /// The fetch, or `None` if the package was already cached as asked.
    pub fetch: Option<FetchReport>,
    /// Packages unloaded to make room, least recently used first.
    pub evicted: Vec<String>,
    /// The package's cache state afterwards.
    pub state: CacheState,
}

/// Whether [`Store::add_package`] created or updated a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    /// A new record.
    Added,
    /// The record existed; its configuration was updated.
    Updated,
}

/// A package as `query packages` reports it (stable JSON field names;
/// see `docs/CLIENT.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PackageStatus {
    /// Package GUID.
    pub guid: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Version GUID.
    pub version_guid: Option<String>,
    /// The source of the last load, else where a load would stream from
    /// (null if that cannot be resolved), as
    /// [`redact_url`](crate::redact_url) shows it: no
    /// credentials, no query string.
    pub source: Option<String>,
    /// TotalSize: bytes of the package (from its data, else the manifest).
    pub total_size: Option<u64>,
    /// CachedSize: bytes present.
    pub cached_size: u64,
    /// Percent cached, 0–100.
    pub cached_percent: u8,
    /// LaunchSize: prologue and FB1 bytes (once the prologue is cached).
    pub launch_size: Option<u64>,
    /// CachedLaunchSize.
    pub cached_launch_size: u64,
    /// Bytes a load would still fetch, exactly: 0 when loaded; for a load
    /// under way (its prologue cached), the blocks neither cached nor held
    /// by an earlier version in the store, plus the 128-byte identity
    /// check; `None` until the prologue is known
    /// ([`Store::plan_load`] reads it from the source).
    pub fetch_bytes: Option<u64>,
    /// Every block cached.
    pub loaded: bool,
    /// Pinned in the cache.
    pub locked: bool,
    /// Some process holds it in use.
    pub in_use: bool,
    /// Some process is loading it.
    pub loading: bool,
    /// Added for all users.
    pub global: bool,
    /// Published for the querying user (or globally).
    pub published: bool,
    /// Published for all users.
    pub published_global: bool,
    /// Users it is published for.
    pub published_users: Vec<String>,
    /// OverrideURL.
    pub override_url: Option<String>,
    /// Autoload triggers.
    pub autoload: Vec<AutoLoad>,
    /// Autoload target.
    pub autoload_target: AutoLoadTarget,
    /// Unix time in ms of the last load or run.
    pub last_used_ms: Option<u64>,
    /// The manifest.
    pub manifest: String,
    /// Its applications' names.
    pub apps: Vec<String>,
}

/// An application as `query apps` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AppStatus {
    /// Name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Its package's name.
    pub package: String,
    /// Its package's GUID.
    pub package_guid: String,
    /// Published for the querying user (or globally).
    pub published: bool,
    /// The store's copy of its OSD, once published.
    pub osd: Option<String>,
    /// The store's copy of its icon, once published.
    pub icon: Option<String>,
    /// Shortcuts.
    pub shortcuts: Vec<ShortcutRecord>,
    /// File type associations.
    pub file_types: Vec<FileTypeRecord>,
    /// Its package can launch (FB1 cached).
    pub launch_ready: bool,
}

/// A package held in use ([`Store::use_package`]): while it lives, the
/// package cannot be unloaded, deleted or evicted, by this process or any
/// other.
#[derive(Debug)]
pub struct InUse {
    _lock: Held,
    name: String,
    sft: PathBuf,
}

impl InUse {
    /// The package's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Where its SFT is (or will be, once loaded completely).
    pub fn sft_path(&self) -> &Path {
        &self.sft
    }
}

/// The right to stream a package into the store's cache while it is
/// mounted ([`Store::lease_stream`]). While it lives the package is in
/// use (never unloaded, deleted or evicted) and no other process loads
/// or mounts it: the cache has one writer.
#[derive(Debug)]
pub struct StreamLease {
    _load: Held,
    in_use: Option<InUse>,
    sole: Option<Held>,
    inuse_lock: PathBuf,
    /// [`StreamLease::mount_at`] wrote the mount record.
    recorded: bool,
    sft: PathBuf,
    source: String,
    cache: Option<CachePaths>,
    mount_point: PathBuf,
}

impl StreamLease {
    /// Where to stream from: the package's resolved source, or the
    /// store's own complete copy.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The store's cache of the package, to stream into (resumed, and
    /// resumable by `load_package`); `None` when the store holds the
    /// package complete and [`StreamLease::source`] is that file.
    pub fn cache(&self) -> Option<&CachePaths> {
        self.cache.as_ref()
    }
    /// The package's mount point under the store (created; a stale mount
    /// may be left on it, for the mounter to clear).
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }
    /// Where the package's SFT is (or will be, once loaded completely).
    pub fn sft_path(&self) -> &Path {
        &self.sft
    }
    /// Mount somewhere else than under the store (`sft client mount NAME
    /// DIR`): recorded, so [`Store::mount_point`] (and a `client run` of
    /// the package meanwhile) finds it; forgotten when the lease drops.
    ///
    /// # Errors
    /// [`Error::Io`] writing the record.
    pub fn mount_at(&mut self, dir: &Path) -> Result<(), Error> {
        let dir = std::path::absolute(dir)
            .map_err(|e| Error::io(format!("resolving `{}`", dir.display()), e))?;
        let record = self.mount_record();
        crate::io::atomic::write(&record, dir.to_string_lossy().as_bytes())?;
        self.mount_point = dir;
        self.recorded = true;
        Ok(())
    }

    fn mount_record(&self) -> PathBuf {
        self.inuse_lock.with_file_name(MOUNT_RECORD)
    }

    /// Wait until no other process holds the package in use (commands
    /// running from this lease's mount, which took
    /// [`Store::use_package`]), then hold it alone: a process that asks
    /// for it now waits until the lease is dropped. Call before
    /// unmounting, so no command loses its files.
    ///
    /// # Errors
    /// [`Error::Io`] from the lock.
    pub fn wait_sole_user(&mut self) -> Result<(), Error> {
        if self.sole.is_none() {
            // Our own shared hold would block the exclusive one. The load
            // lock keeps evictions out meanwhile.
            self.in_use = None;
            self.sole = Some(lock::lock(&self.inuse_lock, Mode::Exclusive)?);
        }
        Ok(())
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        if self.recorded {
            let _ = fs::remove_file(self.mount_record());
        }
    }
}

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn read_bounded(path: &Path, what: &str, max: u64) -> Result<Vec<u8>, Error> {
    let file = fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot open {what} `{}`", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {what} `{}`", path.display()), e))?
        .len();
    if len > max {
        return Err(Error::invalid(format!(
            "{what} `{}` is {len} bytes, more than the {max} allowed",
            path.display()
        )));
    }
    let mut v = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, max + 1), &mut v)
        .map_err(|e| Error::io(format!("reading {what} `{}`", path.display()), e))?;
    if v.len() as u64 > max {
        return Err(Error::invalid(format!(
            "{what} `{}` is more than the {max} bytes allowed",
            path.display()
        )));
    }
    Ok(v)
}

/// Add `path`'s name to an error's message.
fn about(path: &Path, what: &str, e: Error) -> Error {
    match e {
        Error::InvalidInput(m) => Error::invalid(format!("{what} `{}`: {m}", path.display())),
        other => other,
    }
}

/// A file name from an application name: letters, digits, space, `-`,
/// `_`, `.`, others as `_`; never empty, never starting with a dot.
fn file_stem(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    s = s.trim().trim_start_matches('.').to_owned();
    if s.is_empty() { "app".to_owned() } else { s }
}

/// A complete package file in the package folder `dir` other than `out`
/// (an earlier version): the base of a delta load. The newest one if
/// there are several.
fn earlier_version(dir: &Path, out: &Path) -> Option<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p == out || p.extension().is_none_or(|x| x != "sft") {
            continue;
        }
        let Ok(md) = e.metadata() else { continue };
        let t = md.modified().unwrap_or(std::time::UNIX_EPOCH);
        if md.is_file() && best.as_ref().is_none_or(|(bt, _)| t > *bt) {
            best = Some((t, p));
        }
    }
    best.map(|(_, p)| p)
}

/// A manifest read, checked and turned into records, before the store is
/// touched.
struct Prepared {
    guid: Guid,
    version_guid: Option<String>,
    version: Option<String>,
    href: Option<String>,
    size: Option<u64>,
    content_id: Option<String>,
    mime_source: String,
    manifest_abs: PathBuf,
    manifest_bytes: Vec<u8>,
    apps: Vec<AppRecord>,
    /// Per app: local OSD path and local icon path, where given.
    files: Vec<(Option<PathBuf>, Option<PathBuf>)>,
}

impl Prepared {
    fn read(manifest: &Path) -> Result<Prepared, Error> {
        let abs = std::path::absolute(manifest)
            .map_err(|e| Error::io(format!("resolving `{}`", manifest.display()), e))?;
        let bytes = read_bounded(&abs, "manifest", MAX_DESCRIPTOR_BYTES)?;
        let m = Manifest::parse(&bytes).map_err(|e| about(&abs, "manifest", e))?;
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        let mime = dir.to_string_lossy().into_owned();
        let env = |name: &str| {
            if name == "SFT_MIME_SOURCE" {
                Some(mime.clone())
            } else {
                std::env::var(name).ok()
            }
        };
        let local = |loc: &str| -> Result<Option<PathBuf>, Error> {
            let s = expand_vars(loc, env).map_err(|e| about(&abs, "manifest", e))?;
            if s.contains("://") {
                return Ok(None);
            }
            let p = Path::new(&s);
            Ok(Some(if p.is_relative() {
                dir.join(p)
            } else {
                p.to_path_buf()
            }))
        };
        let mut apps = Vec::new();
        let mut files = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, a) in m.apps.items.iter().enumerate() {
            let name = a
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .unwrap_or_else(|| format!("app{}", i + 1));
            if !names.insert(name.to_lowercase()) {
                return Err(Error::invalid(format!(
                    "manifest `{}`: application `{name}` is listed twice",
                    abs.display()
                )));
            }
            let shortcuts = a
                .shortcuts
                .as_ref()
                .map(|l| {
                    l.items
                        .iter()
                        .map(|s| ShortcutRecord {
                            location: s.location.clone(),
                            filename: s.filename.clone(),
                            display: s.display.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let file_types = a
                .file_types
                .as_ref()
                .map(|l| {
                    l.items
                        .iter()
                        .map(|t| FileTypeRecord {
                            extension: t.extension.clone(),
                            progid: t.progid.clone(),
                            description: t.description.clone(),
                            content_type: t.content_type.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let osd = match &a.osd {
                Some(o) => local(o)?,
                None => None,
            };
            let icon = match &a.icon {
                Some(o) => local(o)?,
                None => None,
            };
            files.push((osd, icon));
            apps.push(AppRecord {
                name,
                version: a.version.clone(),
                osd: None,
                icon: None,
                shortcuts,
                file_types,
            });
        }
        let pkg = m.package.clone().unwrap_or_default();
        let mut guid = match &pkg.guid {
            Some(g) => Some(
                g.parse::<Guid>()
                    .map_err(|e| about(&abs, "manifest", e.into()))?,
            ),
            None => None,
        };
        let mut href = pkg.href.clone().filter(|h| !h.trim().is_empty());
        let mut size = pkg.size;
        let mut content_id = pkg.content_id.clone();
        if guid.is_none() || href.is_none() || content_id.is_none() {
            // The first application's OSD names the package.
            if let Some(osd_path) = files.iter().find_map(|(o, _)| o.clone()) {
                let osd = Osd::parse(&read_bounded(&osd_path, "OSD", MAX_DESCRIPTOR_BYTES)?)
                    .map_err(|e| about(&osd_path, "OSD", e))?;
                if let Some(cb) = osd.codebase() {
                    if guid.is_none() {
                        guid = cb.package_guid().map_err(|e| about(&osd_path, "OSD", e))?;
                    }
                    if href.is_none() {
                        href = cb.href.clone();
                    }
                    size = size.or(cb.size);
                    content_id = content_id.or(cb.content_id.clone());
                }
            }
        }
        let guid = guid.ok_or_else(|| {
            Error::invalid(format!(
                "manifest `{}` names no package GUID (neither PACKAGE GUID nor an OSD CODEBASE GUID)",
                abs.display()
            ))
        })?;
        let version_guid = match &pkg.version_guid {
            Some(v) => Some(
                v.parse::<Guid>()
                    .map_err(|e| about(&abs, "manifest", e.into()))?
                    .to_string(),
            ),
            None => None,
        };
        if let Some(c) = &content_id {
            c.parse::<crate::ContentId>().map_err(|e| {
                Error::invalid(format!(
                    "manifest `{}`: CONTENTID `{c}`: {e}",
                    abs.display()
                ))
            })?;
        }
        Ok(Prepared {
            guid,
            version_guid,
            version: pkg.version.clone(),
            href,
            size,
            content_id,
            mime_source: mime,
            manifest_abs: abs,
            manifest_bytes: bytes,
            apps,
            files,
        })
    }
}

/// A file publishing copies: its path in the package folder and bytes.
type Copied = Option<(String, Vec<u8>)>;

/// The files publishing copies into the store, read and checked.
struct PublishFiles {
    manifest: Vec<u8>,
    /// Per app: (relative path, bytes) of its OSD and icon.
    per_app: Vec<(Copied, Copied)>,
}

impl PublishFiles {
    fn read(p: &Prepared) -> Result<PublishFiles, Error> {
        let mut per_app = Vec::new();
        for (app, (osd, icon)) in p.apps.iter().zip(&p.files) {
            let stem = file_stem(&app.name);
            let osd = match osd {
                Some(path) => {
                    let b = read_bounded(path, "OSD", MAX_DESCRIPTOR_BYTES)?;
                    Osd::parse(&b).map_err(|e| about(path, "OSD", e))?;
                    Some((format!("{PUBLISH_DIR}/osd/{stem}.osd"), b))
                }
                None => None,
            };
            let icon = match icon {
                Some(path) => {
                    let b = read_bounded(path, "icon", crate::publish::MAX_ICON_BYTES as u64)?;
                    validate_icon(&b).map_err(|e| about(path, "icon", e))?;
                    Some((format!("{PUBLISH_DIR}/icons/{stem}.ico"), b))
                }
                None => None,
            };
            per_app.push((osd, icon));
        }
        Ok(PublishFiles {
            manifest: p.manifest_bytes.clone(),
            per_app,
        })
    }
}

impl Store {
    /// Open (creating if needed) the store in `dir`; the records are read
    /// once to check them.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
    /// let store = sft::client::Store::open(dir.path())?;
    /// assert!(store.query_packages()?.is_empty());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the folder cannot be created; `Error::Store` with
    /// [`StoreProblem::Damaged`] for damaged or newer records.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, Error> {
        let dir = dir.into();
        fs::create_dir_all(dir.join(PACKAGES))
            .map_err(|e| Error::io(format!("creating the store `{}`", dir.display()), e))?;
        let store = Store {
            dir,
            user: current_user(),
        };
        store.records()?;
        Ok(store)
    }

    /// The default store folder: `$SFT_CLIENT_STORE`, else
    /// `$XDG_DATA_HOME/sft/client`, else `~/.local/share/sft/client`.
    pub fn default_dir() -> Option<PathBuf> {
        let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
        if let Some(d) = var("SFT_CLIENT_STORE") {
            return Some(PathBuf::from(d));
        }
        if let Some(d) = var("XDG_DATA_HOME") {
            return Some(PathBuf::from(d).join("sft/client"));
        }
        var("HOME").map(|h| PathBuf::from(h).join(".local/share/sft/client"))
    }

    /// Act as `user` for per-user publishing (default: `$USER`, else the
    /// uid).
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user per-user publishing acts for.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn records_path(&self) -> PathBuf {
        self.dir.join(RECORDS)
    }

    pub(super) fn package_dir(&self, guid: &Guid) -> PathBuf {
        self.dir.join(PACKAGES).join(guid.to_string())
    }

    pub(super) fn sft_path(&self, rec: &PackageRecord) -> Result<PathBuf, Error> {
        Ok(self.package_dir(&rec.guid()?).join(rec.sft_file_name()))
    }

    /// The records, read under a shared lock.
    ///
    /// # Errors
    /// `Error::Store` with [`StoreProblem::Damaged`]; [`Error::Io`].
    pub fn records(&self) -> Result<Records, Error> {
        Ok(self.read_shared()?.1)
    }

    /// The records and the shared lock they were read under. Queries keep
    /// it while they probe the in-use and load locks, so their probes
    /// never overlap an unload, delete or eviction (those run under the
    /// exclusive lock) and cannot make one see a package as busy.
    fn read_shared(&self) -> Result<(Held, Records), Error> {
        let l = lock::lock(&self.dir.join(RECORDS_LOCK), Mode::Shared)?;
        let r = records::read(&self.records_path())?;
        Ok((l, r))
    }

    /// Read-modify-write under the exclusive records lock; `f`'s error
    /// leaves the records as they were.
    pub(super) fn update<T>(
        &self,
        f: impl FnOnce(&mut Records) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _l = lock::lock(&self.dir.join(RECORDS_LOCK), Mode::Exclusive)?;
        records::remove_stale_temps(&self.dir, RECORDS);
        let mut r = records::read(&self.records_path())?;
        let before = r.clone();
        let out = f(&mut r)?;
        if r != before {
            records::write_atomic(&self.records_path(), &r.to_json()?, true)?;
        }
        Ok(out)
    }

    /// The store-wide settings.
    ///
    /// # Errors
    /// As [`Store::records`].
    pub fn settings(&self) -> Result<Settings, Error> {
        Ok(self.records()?.settings)
    }

    /// Change the store-wide settings: `cache_limit` (`Some(None)`:
    /// unlimited) and `application_source_root` (`Some(None)`: none).
    ///
    /// # Errors
    /// As [`Store::records`]; [`Error::InvalidInput`] for a malformed
    /// ApplicationSourceRoot.
    pub fn configure_store(
        &self,
        cache_limit: Option<Option<u64>>,
        application_source_root: Option<Option<String>>,
    ) -> Result<Settings, Error> {
        if let Some(Some(root)) = &application_source_root {
            let roots = SourceRoots {
                application_source_root: Some(root.clone()),
                ..SourceRoots::default()
            };
            resolve_codebase("rtsp://check/x.sft", &roots, |_| None).map_err(|e| {
                Error::invalid(format!(
                    "ApplicationSourceRoot `{}`: {e}",
                    crate::redact_url(root)
                ))
            })?;
        }
        self.update(|r| {
            if let Some(l) = cache_limit {
                r.settings.cache_limit = l;
            }
            if let Some(a) = application_source_root {
                r.settings.application_source_root = a.filter(|s| !s.trim().is_empty());
            }
            Ok(r.settings.clone())
        })
    }

    /// Set the store's trust policy: with keys, every load requires a
    /// signature by one of them (the source's `.minisig`), checked before
    /// any block is used; with none, signatures are not required.
    ///
    /// # Errors
    /// As [`Store::records`].
    pub fn set_trusted_keys(&self, keys: &[crate::sign::TrustedKey]) -> Result<Settings, Error> {
        let texts = keys
            .iter()
            .map(crate::sign::TrustedKey::to_text)
            .collect::<Result<Vec<_>, _>>()?;
        self.update(|r| {
            r.settings.trusted_keys = texts;
            Ok(r.settings.clone())
        })
    }

    /// `SFTMIME ADD PACKAGE`: record the package `manifest` describes
    /// under `name`, or update the configuration of the package of that
    /// name. The manifest (and, if it has no `PACKAGE HREF`/`GUID`, its
    /// first OSD) is read and checked before anything changes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] or [`Error::Io`] for a bad manifest;
    /// `Error::Store` with [`StoreProblem::Exists`] if `name` is another
    /// package, or the package is already recorded under another name.
    pub fn add_package(
        &self,
        name: &str,
        manifest: &Path,
        options: &PackageOptions,
    ) -> Result<AddOutcome, Error> {
        check_name(name)?;
        let p = Prepared::read(manifest)?;
        let guid = p.guid.to_string();
        self.update(|r| {
            if let Some(other) = r.packages.iter().find(|x| x.matches(&guid) && !x.matches(name)) {
                return Err(Error::store(
                    StoreProblem::Exists,
                    format!(
                        "package {guid} is already in the store as `{}`; use that name",
                        other.name
                    ),
                ));
            }
            let outcome = match r.find_mut(name) {
                Some(rec) => {
                    if rec.guid()? != p.guid {
                        return Err(Error::store(
                            StoreProblem::Exists,
                            format!(
                                "package `{name}` is in the store with GUID {}, but `{}` describes {guid}; delete-package it first or use another name",
                                rec.guid,
                                p.manifest_abs.display()
                            ),
                        ));
                    }
                    apply_manifest(rec, &p);
                    apply_options(rec, options);
                    rec.global |= options.global;
                    AddOutcome::Updated
                }
                None => {
                    let mut rec = PackageRecord {
                        name: name.trim().to_owned(),
                        guid: guid.clone(),
                        version_guid: None,
                        version: None,
                        manifest: String::new(),
                        href: None,
                        mime_source: String::new(),
                        size: None,
                        content_id: None,
                        source_validator: None,
                        override_url: None,
                        global: options.global,
                        autoload: vec![AutoLoad::Launch, AutoLoad::Login],
                        autoload_target: AutoLoadTarget::default(),
                        published_global: false,
                        published_users: Vec::new(),
                        locked: false,
                        source: None,
                        last_used: 0,
                        last_used_ms: 0,
                        added_ms: now_ms(),
                        apps: Vec::new(),
                    };
                    apply_manifest(&mut rec, &p);
                    apply_options(&mut rec, options);
                    r.packages.push(rec);
                    AddOutcome::Added
                }
            };
            Ok(outcome)
        })
    }

    /// `SFTMIME CONFIGURE PACKAGE`: change the manifest, OverrideURL or
    /// autoload settings of a recorded package.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown package; as
    /// [`Store::add_package`] for a bad manifest or one of another
    /// package.
    pub fn configure_package(
        &self,
        name: &str,
        manifest: Option<&Path>,
        options: &PackageOptions,
    ) -> Result<(), Error> {
        let p = manifest.map(Prepared::read).transpose()?;
        self.update(|r| {
            let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
            if let Some(p) = &p {
                same_package(rec, p)?;
                apply_manifest(rec, p);
            }
            apply_options(rec, options);
            rec.global |= options.global;
            Ok(())
        })
    }

    /// `SFTMIME PUBLISH PACKAGE`: publish a recorded package for this
    /// user (or, `global`, for all): its manifest, OSDs and icons are
    /// read, checked and copied into the store, and its shortcuts and file
    /// type associations recorded.
    ///
    /// # Errors
    /// `Error::Store` with [`StoreProblem::State`] if the package was
    /// never added; [`Error::InvalidInput`]/[`Error::Io`] for bad
    /// descriptors (nothing changes).
    pub fn publish_package(&self, name: &str, manifest: &Path, global: bool) -> Result<(), Error> {
        let p = Prepared::read(manifest)?;
        let files = PublishFiles::read(&p)?;
        let rec = self.records()?.find(name).cloned().ok_or_else(|| {
            Error::store(
                StoreProblem::State,
                format!("package `{name}` was never added; run `sft client add-package {name} --manifest …` first"),
            )
        })?;
        same_package(&rec, &p)?;
        let dir = self.package_dir(&p.guid);
        self.write_publish_files(&dir, &files)?;
        let user = self.user.clone();
        self.update(|r| {
            let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
            apply_manifest(rec, &p);
            for (app, (osd, icon)) in rec.apps.iter_mut().zip(&files.per_app) {
                app.osd = osd.as_ref().map(|(rel, _)| rel.clone());
                app.icon = icon.as_ref().map(|(rel, _)| rel.clone());
            }
            if global {
                rec.published_global = true;
            } else if !rec.published_users.contains(&user) {
                rec.published_users.push(user.clone());
            }
            Ok(())
        })
    }

    fn write_publish_files(&self, dir: &Path, files: &PublishFiles) -> Result<(), Error> {
        let write = |rel: &str, bytes: &[u8]| -> Result<(), Error> {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                create_dir(parent)?;
            }
            records::write_atomic(&path, bytes, false)
        };
        write(&format!("{PUBLISH_DIR}/manifest.xml"), &files.manifest)?;
        for (osd, icon) in &files.per_app {
            for (rel, bytes) in osd.iter().chain(icon.iter()) {
                write(rel, bytes)?;
            }
        }
        Ok(())
    }

    /// `SFTMIME UNPUBLISH PACKAGE`: unpublish for this user (or, `global`,
    /// for all users). Returns false if it was not published in that
    /// scope.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown package.
    pub fn unpublish_package(&self, name: &str, global: bool) -> Result<bool, Error> {
        let user = self.user.clone();
        self.update(|r| {
            let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
            if global {
                Ok(std::mem::replace(&mut rec.published_global, false))
            } else {
                let before = rec.published_users.len();
                rec.published_users.retain(|u| *u != user);
                Ok(rec.published_users.len() != before)
            }
        })
    }

    /// `SFTMIME LOCK APP`: pin the package in the cache. Locked packages
    /// take at most [`MAX_PERCENT_TO_LOCK`] % of a cache limit.
    ///
    /// # Errors
    /// [`Error::NotFound`]; `Error::Store` with [`StoreProblem::Full`] if
    /// locking would pass that share.
    pub fn lock_package(&self, name: &str) -> Result<(), Error> {
        self.update(|r| {
            let limit = r.settings.cache_limit;
            let rec = r.find(name).ok_or_else(|| not_added(name))?.clone();
            if rec.locked {
                return Ok(());
            }
            if let Some(limit) = limit {
                let mut locked = self.footprint_or_size(&rec);
                for p in r.packages.iter().filter(|p| p.locked) {
                    locked = locked.saturating_add(self.footprint_or_size(p));
                }
                let max = limit / 100 * MAX_PERCENT_TO_LOCK
                    + limit % 100 * MAX_PERCENT_TO_LOCK / 100;
                if locked > max {
                    return Err(Error::store(
                        StoreProblem::Full,
                        format!(
                            "locking `{}` would pin {locked} bytes, more than {MAX_PERCENT_TO_LOCK}% of the {limit}-byte cache limit ({max} bytes); unlock another package or raise the limit",
                            rec.name
                        ),
                    ));
                }
            }
            if let Some(rec) = r.find_mut(name) {
                rec.locked = true;
            }
            Ok(())
        })
    }

    /// `SFTMIME UNLOCK APP`: unpin the package.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn unlock_package(&self, name: &str) -> Result<(), Error> {
        self.update(|r| {
            r.find_mut(name).ok_or_else(|| not_added(name))?.locked = false;
            Ok(())
        })
    }

    /// Size a package takes or will take: its data's total, else the
    /// manifest's `SIZE`, else 0.
    fn footprint_or_size(&self, rec: &PackageRecord) -> u64 {
        let s = self.state(rec);
        s.total.or(rec.size).unwrap_or(s.cached)
    }

    /// Bytes a package's data takes against the limit: its whole size
    /// once any of it is cached (partial files are laid out at full size).
    fn footprint(&self, rec: &PackageRecord) -> u64 {
        let s = self.state(rec);
        if s.has_data {
            s.total.or(rec.size).unwrap_or(s.cached)
        } else {
            0
        }
    }

    fn state(&self, rec: &PackageRecord) -> CacheState {
        match self.sft_path(rec) {
            Ok(p) => inspect(&p),
            Err(_) => CacheState::default(),
        }
    }

    /// Where a load of `rec` streams from: `sft_path`, else OverrideURL,
    /// else the `HREF` with ApplicationSourceRoot.
    fn resolve_source(
        &self,
        rec: &PackageRecord,
        settings: &Settings,
        sft_path: Option<&str>,
    ) -> Result<String, Error> {
        let roots = SourceRoots {
            application_source_root: settings.application_source_root.clone(),
            override_url: rec.override_url.clone(),
            sftpath: sft_path.map(str::to_owned),
        };
        let mime = rec.mime_source.clone();
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .or_else(|| (name == "SFT_MIME_SOURCE").then(|| mime.clone()))
        };
        let href = rec.href.clone().unwrap_or_default();
        let resolved = resolve_codebase(&href, &roots, env).map_err(|e| {
            Error::invalid(format!(
                "cannot resolve where package `{}` is: {e}; set --override-url or pass --sft-path",
                rec.name
            ))
        })?;
        if !resolved.contains("://")
            && sft_path.is_none()
            && Path::new(&resolved).is_relative()
            && !rec.mime_source.is_empty()
        {
            return Ok(Path::new(&rec.mime_source)
                .join(&resolved)
                .to_string_lossy()
                .into_owned());
        }
        Ok(resolved)
    }

    /// Make room for `need` bytes of package `key` under `limit`,
    /// unloading least-recently-used packages that are neither locked nor
    /// in use. Called with the records lock held.
    pub(super) fn make_room(
        &self,
        r: &Records,
        key: &str,
        need: u64,
        limit: u64,
    ) -> Result<Vec<String>, Error> {
        let name = r.find(key).map(|p| p.name.clone()).unwrap_or_default();
        if need > limit {
            return Err(Error::store(
                StoreProblem::Full,
                format!(
                    "package `{name}` needs {need} bytes, more than the whole cache limit of {limit} bytes; raise it with `sft client configure-store --cache-limit`"
                ),
            ));
        }
        let others: Vec<&PackageRecord> = r.packages.iter().filter(|p| !p.matches(key)).collect();
        let mut used: u64 = others
            .iter()
            .map(|p| self.footprint(p))
            .fold(0, u64::saturating_add);
        if used.saturating_add(need) <= limit {
            return Ok(Vec::new());
        }
        let mut candidates: Vec<&PackageRecord> = others
            .iter()
            .copied()
            .filter(|p| self.footprint(p) > 0)
            .collect();
        candidates.sort_by_key(|p| (p.last_used, p.added_ms));
        let (mut evicted, mut locked, mut busy) = (Vec::new(), Vec::new(), Vec::new());
        for p in candidates {
            if used.saturating_add(need) <= limit {
                break;
            }
            if p.locked {
                locked.push(p.name.clone());
                continue;
            }
            let fp = self.footprint(p);
            match self.remove_data(p) {
                Ok(()) => {
                    used = used.saturating_sub(fp);
                    evicted.push(p.name.clone());
                }
                Err(e) if e.store_problem() == Some(StoreProblem::InUse) => {
                    busy.push(p.name.clone());
                }
                Err(e) => return Err(e),
            }
        }
        if used.saturating_add(need) > limit {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_owned()
                } else {
                    v.join(", ")
                }
            };
            return Err(Error::store(
                StoreProblem::Full,
                format!(
                    "package `{name}` needs {need} bytes, but only {} of the {limit}-byte cache limit can be freed (other packages keep {used} bytes; locked: {}; in use: {}; unloaded to make room: {}); unlock or unload packages, or raise the limit",
                    limit.saturating_sub(used),
                    list(&locked),
                    list(&busy),
                    list(&evicted)
                ),
            ));
        }
        Ok(evicted)
    }

    /// Remove a package's data (finished and partial files), if no one is
    /// loading or using it.
    fn remove_data(&self, rec: &PackageRecord) -> Result<(), Error> {
        let dir = self.package_dir(&rec.guid()?);
        let _locks = self.exclusive_package_locks(rec, &dir)?;
        self.remove_files(rec)
    }

    /// Remove a package's data files (the caller holds its locks).
    fn remove_files(&self, rec: &PackageRecord) -> Result<(), Error> {
        let dir = self.package_dir(&rec.guid()?);
        let out = dir.join(rec.sft_file_name());
        let cache = CachePaths::for_output(&out, None);
        let mut files = vec![out.clone(), cache.data, cache.bitmap];
        // Data of an earlier version of the package (its manifest named
        // another version GUID) goes too.
        if let Ok(rd) = fs::read_dir(&dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".sft")
                    || n.ends_with(".sft.partial")
                    || n.ends_with(".sft.partial.blocks")
                {
                    files.push(e.path());
                }
            }
        }
        for f in &files {
            match fs::remove_file(f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing `{}`", f.display()), e)),
            }
        }
        if dir.exists() {
            records::sync_dir(&dir)?;
        }
        Ok(())
    }

    fn exclusive_package_locks(
        &self,
        rec: &PackageRecord,
        dir: &Path,
    ) -> Result<(Option<Held>, Option<Held>), Error> {
        if !dir.exists() {
            return Ok((None, None));
        }
        let load = lock::try_exclusive(&dir.join(LOAD_LOCK))?.ok_or_else(|| {
            Error::store(
                StoreProblem::InUse,
                format!("package `{}` is being loaded by another process", rec.name),
            )
        })?;
        let inuse = lock::try_exclusive(&dir.join(INUSE_LOCK))?.ok_or_else(|| {
            Error::store(
                StoreProblem::InUse,
                format!(
                    "package `{}` is in use (a process holds it, e.g. `sft client run`); try again when it ends",
                    rec.name
                ),
            )
        })?;
        Ok((Some(load), Some(inuse)))
    }

    /// The record of package `name` and its data directory, created if
    /// missing.
    fn record_and_dir(&self, name: &str) -> Result<(PackageRecord, PathBuf), Error> {
        let rec = self
            .records()?
            .find(name)
            .cloned()
            .ok_or_else(|| not_added(name))?;
        let dir = self.package_dir(&rec.guid()?);
        create_dir(&dir)?;
        Ok((rec, dir))
    }

    /// `SFTMIME LOAD PACKAGE`: stream the whole package (or, with
    /// [`LoadOptions::launch_only`], FB1) into the store, synchronously,
    /// resuming what an interrupted load left; makes room first (see the
    /// module docs on the cache limit).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown package; `Error::Store` with
    /// [`StoreProblem::Full`] if it cannot fit; the fetch's errors (the
    /// partial data stays for a resume).
    pub fn load_package(&self, name: &str, options: LoadOptions) -> Result<LoadReport, Error> {
        let (_, dir) = self.record_and_dir(name)?;
        let held = lock::lock(&dir.join(LOAD_LOCK), Mode::Exclusive)?;
        self.load_held(name, options, held)
    }

    /// As [`Store::load_package`], without waiting: `Ok(None)` when
    /// another process loads the package or serves its mount (a
    /// background load after `client run` must not wait for, or block, a
    /// mount that waits for the command's process to let go).
    ///
    /// # Errors
    /// As [`Store::load_package`].
    pub fn try_load_package(
        &self,
        name: &str,
        options: LoadOptions,
    ) -> Result<Option<LoadReport>, Error> {
        let (_, dir) = self.record_and_dir(name)?;
        let Some(held) = lock::try_exclusive(&dir.join(LOAD_LOCK))? else {
            return Ok(None);
        };
        self.load_held(name, options, held).map(Some)
    }

    /// The load itself, with the package's load lock held.
    fn load_held(
        &self,
        name: &str,
        options: LoadOptions,
        _load: Held,
    ) -> Result<LoadReport, Error> {
        let (_, dir) = self.record_and_dir(name)?;
        let (rec, source, evicted, trusted) = self.update(|r| {
            let rec = r.find(name).cloned().ok_or_else(|| not_added(name))?;
            let trusted = r.settings.trusted_keys.clone();
            let source = self.resolve_source(&rec, &r.settings, options.sft_path.as_deref())?;
            let mut evicted = Vec::new();
            if let Some(limit) = r.settings.cache_limit {
                let state = self.state(&rec);
                let need = match state.total.or(rec.size) {
                    Some(n) if options.sft_path.is_none() => n,
                    _ => source_len(&source, &options.sources)?,
                };
                evicted = self.make_room(r, name, need, limit)?;
            }
            Ok((rec, source, evicted, trusted))
        })?;
        let mut out = dir.join(rec.sft_file_name());
        let mut before = inspect(&out);
        // HTTP active upgrade: a cached package whose http(s) source now
        // has another validator and another package moves to it now (a
        // launch loads through here), with the cached version as the
        // base of a delta fetch.
        // A package whose publishing pins its content (CONTENTID) moves
        // only to a version signed by a key the store trusts, and only
        // upwards; without trusted keys it changes only by publishing.
        let validator = self.http_validator(&source, &options.sources);
        let mut upgraded_to = None;
        if (before.complete || before.launch_ready())
            && (rec.content_id.is_none() || !trusted.is_empty())
            && let Some(v) = &validator
            && rec.source_validator.as_deref().is_some_and(|old| old != v)
            && let Some((new_name, id)) =
                self.upgraded_version(&rec, &source, &options.sources, &out)?
        {
            out = dir.join(new_name);
            before = inspect(&out);
            upgraded_to = Some(id);
        }
        let done = if options.launch_only {
            before.launch_ready()
        } else {
            before.complete
        };
        let fetch = if done {
            None
        } else {
            let mut fo = FetchOptions::default()
                .launch_only(options.launch_only)
                .limit_rate(options.limit_rate)
                .sources(self.source_options_for(&source, options.sources.clone()));
            if let Some(window) = options.retry_for {
                fo = fo.retry_for(window);
            }
            if let Some(cb) = options.on_event {
                fo = fo.on_event(cb);
            }
            // An earlier version of this package in the store: the blocks
            // it shares with this one are copied, not fetched.
            // The store's files were checked block by block (decoded) as
            // they arrived: copies from them are checked by CRC and hash.
            if let Some(base) = earlier_version(&dir, &out) {
                fo = fo.base(base).base_checked(true);
            }
            let mut pinned = rec.clone();
            if upgraded_to.is_some() {
                // The upgrade is checked by signature, not by the pin.
                pinned.content_id = None;
            }
            fo = self.trust_options(fo, &pinned, &source, &trusted, &options.sources)?;
            let report = crate::fetch::fetch_spec(&source, &out, fo)
                .map_err(|e| load_error(&rec.name, &source, e))?;
            Some(report)
        };
        let state = inspect(&out);
        if state.complete {
            // The upgrade is in place: earlier versions' files go (a
            // process still using one keeps its open file).
            while let Some(old) = earlier_version(&dir, &out) {
                if fs::remove_file(&old).is_err() {
                    break;
                }
            }
        }
        let src = source.clone();
        let loaded_as = out.file_name().map(|n| n.to_string_lossy().into_owned());
        self.update(|r| {
            let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
            rec.source = Some(src);
            if validator.is_some() {
                rec.source_validator = validator.clone();
            }
            if let (Some(id), Some(_)) = (upgraded_to, &rec.content_id) {
                rec.content_id = Some(id.to_string());
            }
            // After an HTTP active upgrade the record names the new
            // version, whose file this is.
            if let Some(n) = &loaded_as
                && let Some(v) = n.strip_suffix(".sft")
                && v.parse::<Guid>().is_ok()
                && rec.sft_file_name() != *n
            {
                rec.version_guid = Some(v.to_owned());
            }
            rec.last_used_ms = now_ms();
            let t = r.tick();
            if let Some(rec) = r.find_mut(name) {
                rec.last_used = t;
            }
            Ok(())
        })?;
        Ok(LoadReport {
            source,
            fetch,
            evicted,
            state,
        })
    }

    /// The validator (`ETag`, else `Last-Modified`) of an http(s)
    /// `source` now, if it is one and answers; `None` otherwise (other
    /// transports, or the server is down: the cached package launches).
    #[cfg_attr(not(feature = "http"), allow(unused_variables))]
    fn http_validator(
        &self,
        source: &str,
        sources: &crate::fetch::SourceOptions,
    ) -> Option<String> {
        #[cfg(feature = "http")]
        {
            let lower = source.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return None;
            }
            let o = self.source_options_for(source, sources.clone());
            let s = crate::net::http::HttpSource::open(source, o.http_options()).ok()?;
            s.etag()
                .map(|e| format!("etag {e}"))
                .or_else(|| s.last_modified().map(|m| format!("last-modified {m}")))
        }
        #[cfg(not(feature = "http"))]
        None
    }

    /// After `source`'s validator changed: the file name of the version it
    /// serves now, if that is another package than the one cached at
    /// `out` (`None`: the same content, only its validator changed).
    fn upgraded_version(
        &self,
        rec: &PackageRecord,
        source: &str,
        sources: &crate::fetch::SourceOptions,
        out: &Path,
    ) -> Result<Option<(String, crate::ContentId)>, Error> {
        let probe =
            crate::fetch::probe::probe(source, &self.source_options_for(source, sources.clone()))
                .map_err(|e| load_error(&rec.name, source, e))?;
        let new = probe.prologue()?;
        let cached = crate::io::package_file::PackageFile::open(out).ok();
        let cached_id = cached.as_ref().map(|p| p.prologue().content_id());
        if cached_id == Some(new.content_id()) {
            return Ok(None);
        }
        // Only upwards: an older version served again is not an upgrade.
        if let Some(c) = &cached
            && new.metadata().version() <= c.prologue().metadata().version()
        {
            return Ok(None);
        }
        let m = new.metadata();
        if m.package_guid().to_string() != rec.guid {
            return Err(Error::invalid(format!(
                "package `{}`: {} now serves another package (GUID {}), not an upgrade",
                rec.name,
                crate::redact_url(source),
                m.package_guid()
            )));
        }
        let name = format!("{}.sft", m.version_guid());
        let id = new.content_id();
        Ok((out.file_name().is_none_or(|n| n.to_string_lossy() != name)).then_some((name, id)))
    }

    /// `fo` with the store's trust policy for package `rec` from `source`:
    /// the trusted keys (a signature required, read from the source's
    /// `.minisig`) and the content identity publishing named.
    fn trust_options(
        &self,
        fo: FetchOptions,
        rec: &PackageRecord,
        source: &str,
        trusted: &[String],
        sources: &crate::fetch::SourceOptions,
    ) -> Result<FetchOptions, Error> {
        use crate::sign::{TrustPolicy, TrustedKey};
        let want = match &rec.content_id {
            Some(c) => Some(c.parse::<crate::ContentId>().map_err(|e| {
                Error::invalid(format!("package `{}`: CONTENTID `{c}`: {e}", rec.name))
            })?),
            None => None,
        };
        if trusted.is_empty() {
            return Ok(match want {
                Some(_) => fo.trust(TrustPolicy::permissive().expect_content(want), None),
                None => fo,
            });
        }
        let keys = trusted
            .iter()
            .map(|k| TrustedKey::from_text(k))
            .collect::<Result<Vec<_>, _>>()?;
        let at = crate::fetch::signature_location(source);
        let sig =
            crate::fetch::read_signature(&at, &self.source_options_for(source, sources.clone()))?;
        Ok(fo.trust(TrustPolicy::require(keys).expect_content(want), sig))
    }

    /// What a load of package `name` would move, exactly, fetching only
    /// its prologue (checked against the store's trust policy): blocks
    /// cached by an interrupted load, blocks an earlier version in the
    /// store holds, and the bytes left to fetch (`load-package --dry-run`).
    ///
    /// # Errors
    /// As [`Store::load_package`], but nothing is stored.
    pub fn plan_load(
        &self,
        name: &str,
        options: LoadOptions,
    ) -> Result<crate::fetch::delta::DeltaPlan, Error> {
        let r = self.records()?;
        let rec = r.find(name).cloned().ok_or_else(|| not_added(name))?;
        let source = self.resolve_source(&rec, &r.settings, options.sft_path.as_deref())?;
        let dir = self.package_dir(&rec.guid()?);
        let out = dir.join(rec.sft_file_name());
        let mut fo = FetchOptions::default()
            .sources(self.source_options_for(&source, options.sources.clone()));
        // The cached version is the base of an upgrade (the source now
        // serves another version), as a load would use it.
        let cached = out.exists().then(|| out.clone());
        if let Some(base) = earlier_version(&dir, &out).or(cached) {
            fo = fo.base(base);
        }
        // As a load would: a cached package whose source serves a new
        // version is upgraded under the trusted keys, not the pin.
        let mut pinned = rec.clone();
        if out.exists() && !r.settings.trusted_keys.is_empty() {
            pinned.content_id = None;
        }
        fo = self.trust_options(
            fo,
            &pinned,
            &source,
            &r.settings.trusted_keys,
            &options.sources,
        )?;
        crate::fetch::plan_spec(&source, &out, &fo).map_err(|e| load_error(&rec.name, &source, e))
    }

    /// The exact bytes a load of `rec` (its folder `dir`) would still
    /// fetch, if a load is under way (its prologue is cached).
    fn pending_bytes(&self, dir: &Path, rec: &PackageRecord) -> Option<u64> {
        let out = dir.join(rec.sft_file_name());
        let paths = CachePaths::for_output(&out, None);
        let file = fs::File::open(&paths.data).ok()?;
        let len = file.metadata().ok()?.len();
        // Bounded by the file's own length (a sparse cache file holds it).
        let pro = super::inspect::read_prologue(&file, len)?;
        let prologue = crate::read::Prologue::parse(&pro).ok()?;
        let bits = crate::fetch::cache::Cache::peek(&paths, &prologue).ok()??;
        let base = earlier_version(dir, &out).and_then(|b| crate::fetch::delta::Base::open(b).ok());
        let plan = crate::fetch::delta::DeltaPlan::new(
            &prologue,
            base.as_ref(),
            &|i| bits.get(i as usize).copied().unwrap_or(false),
            true,
        )
        .ok()?;
        Some(plan.transfer_bytes)
    }

    /// `SFTMIME UNLOAD PACKAGE`: remove the package's data; its records
    /// (and publishing) stay.
    ///
    /// # Errors
    /// [`Error::NotFound`]; `Error::Store` with [`StoreProblem::Locked`]
    /// or [`StoreProblem::InUse`].
    pub fn unload_package(&self, name: &str) -> Result<(), Error> {
        self.update(|r| {
            let rec = r.find(name).ok_or_else(|| not_added(name))?;
            if rec.locked {
                return Err(locked_error(rec));
            }
            self.remove_data(rec)
        })
    }

    /// `SFTMIME DELETE PACKAGE`: remove the package's data, published
    /// files and records, for every user.
    ///
    /// # Errors
    /// As [`Store::unload_package`].
    pub fn delete_package(&self, name: &str) -> Result<(), Error> {
        self.update(|r| {
            let rec = r.find(name).ok_or_else(|| not_added(name))?.clone();
            if rec.locked {
                return Err(locked_error(&rec));
            }
            let dir = self.package_dir(&rec.guid()?);
            {
                let _locks = self.exclusive_package_locks(&rec, &dir)?;
                self.remove_files(&rec)?;
                // A mount left by a killed `sft client run` (the locks
                // above prove its process is gone) would stop the removal.
                let mnt = dir.join("mnt");
                if crate::io::mountpoint::is_mount_point(&mnt) {
                    crate::io::mountpoint::unmount(&mnt, true)?;
                }
                if dir.exists() {
                    // Data first, then the folder, then the record: a
                    // crash in between leaves an unloaded package.
                    fs::remove_dir_all(&dir)
                        .map_err(|e| Error::io(format!("removing `{}`", dir.display()), e))?;
                }
            }
            r.packages.retain(|p| !p.matches(&rec.guid));
            Ok(())
        })
    }

    /// Hold the package in use (the `sft client run` launcher's lock):
    /// until the guard drops, no process can unload, delete or evict it.
    /// Updates its last-used time.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Io`].
    pub fn use_package(&self, name: &str) -> Result<InUse, Error> {
        let (rec, dir) = self.record_and_dir(name)?;
        let held = lock::lock(&dir.join(INUSE_LOCK), Mode::Shared)?;
        self.update(|r| {
            let t = r.tick();
            let rec = r.find_mut(name).ok_or_else(|| not_added(name))?;
            rec.last_used = t;
            rec.last_used_ms = now_ms();
            Ok(())
        })?;
        Ok(InUse {
            _lock: held,
            name: rec.name.clone(),
            sft: dir.join(rec.sft_file_name()),
        })
    }

    /// Take the right to stream package `name` for a mount (`sft client
    /// run`, `sft client mount`): the package held in use, its load lock
    /// held, where to stream it from and into, and its mount point
    /// (`<package dir>/mnt`). `Ok(None)` when another process holds the
    /// load lock (a load, or a mount of the package, is running).
    ///
    /// # Errors
    /// [`Error::NotFound`]; the package's source cannot be resolved
    /// ([`Error::InvalidInput`]); [`Error::Io`].
    pub fn lease_stream(&self, name: &str) -> Result<Option<StreamLease>, Error> {
        let in_use = self.use_package(name)?;
        let (rec, dir) = self.record_and_dir(name)?;
        let Some(load) = lock::try_exclusive(&dir.join(LOAD_LOCK))? else {
            return Ok(None);
        };
        // A record left by a `client mount` that was killed: its mount is
        // gone with the lock it held.
        let _ = fs::remove_file(dir.join(MOUNT_RECORD));
        let out = dir.join(rec.sft_file_name());
        let (source, cache) = if inspect(&out).complete && out.is_file() {
            (out.to_string_lossy().into_owned(), None)
        } else {
            let settings = self.records()?.settings;
            let source = self.resolve_source(&rec, &settings, None)?;
            (source, Some(CachePaths::for_output(&out, None)))
        };
        let mount_point = dir.join("mnt");
        // A stale mount left there exists (EEXIST) but cannot be looked
        // at; the mounter clears it.
        match fs::create_dir(&mount_point) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::io(
                    format!("creating `{}`", mount_point.display()),
                    e,
                ));
            }
            _ => {}
        }
        Ok(Some(StreamLease {
            _load: load,
            sft: in_use.sft_path().to_path_buf(),
            in_use: Some(in_use),
            sole: None,
            inuse_lock: dir.join(INUSE_LOCK),
            recorded: false,
            source,
            cache,
            mount_point,
        }))
    }

    /// The mount point of package `name`: where `sft client mount` put it
    /// while that runs, else the one under the store, whether or not it
    /// is mounted.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn mount_point(&self, name: &str) -> Result<PathBuf, Error> {
        let r = self.records()?;
        let rec = r.find(name).ok_or_else(|| not_added(name))?;
        let dir = self.package_dir(&rec.guid()?);
        // Where `sft client mount NAME DIR` mounted it, while it holds the
        // package's load lock (a killed one left its record behind).
        if let Ok(p) = fs::read_to_string(dir.join(MOUNT_RECORD))
            && !p.is_empty()
            && lock::is_held(&dir.join(LOAD_LOCK))
        {
            return Ok(PathBuf::from(p));
        }
        Ok(dir.join("mnt"))
    }

    /// The state of one package's cache.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub fn cache_state(&self, name: &str) -> Result<CacheState, Error> {
        let r = self.records()?;
        let rec = r.find(name).ok_or_else(|| not_added(name))?;
        Ok(self.state(rec))
    }

    /// `SFTMIME QUERY OBJ:PACKAGE`: every package, with its cache state.
    ///
    /// # Errors
    /// As [`Store::records`].
    pub fn query_packages(&self) -> Result<Vec<PackageStatus>, Error> {
        let (_shared, r) = self.read_shared()?;
        Ok(r.packages
            .iter()
            .map(|p| {
                let s = self.state(p);
                let dir = p.guid().map(|g| self.package_dir(&g)).unwrap_or_default();
                PackageStatus {
                    guid: p.guid.clone(),
                    name: p.name.clone(),
                    version: p.version.clone(),
                    version_guid: p.version_guid.clone(),
                    source: p
                        .source
                        .clone()
                        .or_else(|| self.resolve_source(p, &r.settings, None).ok())
                        .map(|s| crate::redact_url(&s)),
                    total_size: s.total.or(p.size),
                    cached_size: s.cached,
                    cached_percent: s.percent(),
                    launch_size: s.launch,
                    cached_launch_size: s.cached_launch,
                    fetch_bytes: if s.complete {
                        Some(0)
                    } else {
                        p.guid()
                            .ok()
                            .and_then(|g| self.pending_bytes(&self.package_dir(&g), p))
                    },
                    loaded: s.complete,
                    locked: p.locked,
                    in_use: lock::is_held(&dir.join(INUSE_LOCK)),
                    loading: lock::is_held(&dir.join(LOAD_LOCK)),
                    global: p.global,
                    published: p.is_published_for(&self.user),
                    published_global: p.published_global,
                    published_users: p.published_users.clone(),
                    override_url: p.override_url.clone(),
                    autoload: p.autoload.clone(),
                    autoload_target: p.autoload_target,
                    last_used_ms: (p.last_used_ms > 0).then_some(p.last_used_ms),
                    manifest: p.manifest.clone(),
                    apps: p.apps.iter().map(|a| a.name.clone()).collect(),
                }
            })
            .collect())
    }

    /// `SFTMIME QUERY OBJ:APP`: every application of every package.
    ///
    /// # Errors
    /// As [`Store::records`].
    pub fn query_apps(&self) -> Result<Vec<AppStatus>, Error> {
        let (_shared, r) = self.read_shared()?;
        let mut out = Vec::new();
        for p in &r.packages {
            let ready = self.state(p).launch_ready();
            let dir = p.guid().map(|g| self.package_dir(&g)).unwrap_or_default();
            let abs = |rel: &Option<String>| {
                rel.as_ref()
                    .map(|r| dir.join(r).to_string_lossy().into_owned())
            };
            for a in &p.apps {
                out.push(AppStatus {
                    name: a.name.clone(),
                    version: a.version.clone(),
                    package: p.name.clone(),
                    package_guid: p.guid.clone(),
                    published: p.is_published_for(&self.user),
                    osd: abs(&a.osd),
                    icon: abs(&a.icon),
                    shortcuts: a.shortcuts.clone(),
                    file_types: a.file_types.clone(),
                    launch_ready: ready,
                });
            }
        }
        Ok(out)
    }
}

fn source_len(source: &str, sources: &SourceOptions) -> Result<u64, Error> {
    if let Some(p) = crate::fetch::local_path(source)? {
        return fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| Error::io(format!("reading `{p}`"), e));
    }
    let s = crate::fetch::open_source_with(source, sources)?;
    Ok(s.len()?)
}

/// `e`, met loading `name` from `source`, naming both (the source
/// redacted). A source that is not a package (empty, truncated, bad
/// magic, damaged prologue) is the caller's input: [`Error::InvalidInput`].
fn load_error(name: &str, source: &str, e: Error) -> Error {
    let shown = crate::redact_url(source);
    let from = |m: &str| {
        if m.contains(&shown) {
            format!("loading `{name}`: {m}")
        } else {
            format!("loading `{name}` from `{shown}`: {m}")
        }
    };
    match e {
        Error::InvalidInput(m) => Error::invalid(from(&m)),
        e @ (Error::Format(_) | Error::Integrity(_) | Error::Unsupported(_)) => {
            Error::invalid(from(&e.to_string()))
        }
        Error::NotFound(m) => Error::NotFound(format!("loading `{name}`: {m}")),
        other => other,
    }
}

fn locked_error(rec: &PackageRecord) -> Error {
    Error::store(
        StoreProblem::Locked,
        format!(
            "package `{}` is locked in the cache; `sft client unlock {}` first",
            rec.name, rec.name
        ),
    )
}

/// `fs::create_dir_all`, naming the directory in the error.
pub(super) fn create_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating `{}`", dir.display()), e))
}

/// Fails unless manifest `p` describes the package of `rec`.
fn same_package(rec: &PackageRecord, p: &Prepared) -> Result<(), Error> {
    if rec.guid()? != p.guid {
        return Err(Error::store(
            StoreProblem::Exists,
            format!(
                "`{}` describes package {}, not `{}` ({})",
                p.manifest_abs.display(),
                p.guid,
                rec.name,
                rec.guid
            ),
        ));
    }
    Ok(())
}

pub(super) fn not_added(name: &str) -> Error {
    Error::NotFound(format!(
        "package `{name}` is not in the store (add it with `sft client add-package {name} --manifest FILE`)"
    ))
}

pub(super) fn check_name(name: &str) -> Result<(), Error> {
    let t = name.trim();
    if t.is_empty() || t.len() > 256 || t.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "`{name}` is not a package name (1 to 256 characters, no control characters)"
        )));
    }
    if t.parse::<Guid>().is_ok() {
        return Err(Error::invalid(format!(
            "`{name}` looks like a GUID; packages are found by name or GUID, so a name cannot be one"
        )));
    }
    Ok(())
}

fn apply_manifest(rec: &mut PackageRecord, p: &Prepared) {
    rec.version_guid = p.version_guid.clone();
    rec.version = p.version.clone();
    rec.manifest = p.manifest_abs.to_string_lossy().into_owned();
    rec.href = p.href.clone();
    rec.mime_source = p.mime_source.clone();
    rec.size = p.size;
    rec.content_id = p.content_id.clone();
    let old = std::mem::take(&mut rec.apps);
    rec.apps = p
        .apps
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if let Some(o) = old.iter().find(|o| o.name == a.name) {
                a.osd = o.osd.clone();
                a.icon = o.icon.clone();
            }
            a
        })
        .collect();
}

fn apply_options(rec: &mut PackageRecord, o: &PackageOptions) {
    if let Some(u) = &o.override_url {
        rec.override_url = Some(u.trim().to_owned()).filter(|u| !u.is_empty());
    }
    if let Some(a) = &o.autoload {
        let mut v: Vec<AutoLoad> = Vec::new();
        for x in a {
            if !v.contains(x) {
                v.push(*x);
            }
        }
        rec.autoload = v;
    }
    if let Some(t) = o.autoload_target {
        rec.autoload_target = t;
    }
}

/// `$USER`, `$USERNAME`, else `uid:N` (Unix), else `unknown`.
fn current_user() -> String {
    for v in ["USER", "USERNAME", "LOGNAME"] {
        if let Ok(u) = std::env::var(v)
            && !u.trim().is_empty()
        {
            return u;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = fs::metadata("/proc/self") {
            return format!("uid:{}", m.uid());
        }
    }
    "unknown".to_owned()
}
