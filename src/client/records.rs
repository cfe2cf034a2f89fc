//! The store's records (`records.json`): what the client knows about its
//! packages, as JSON through serde, replaced atomically.
//!
//! What is cached is **not** recorded here: it is read from the package
//! files themselves (the finished `.sft`, or the streaming core's partial
//! file and presence bitmap), so the records can never disagree with the
//! data after a crash.

use std::fs::{self, File};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, StoreProblem};
use crate::format::guid::Guid;

/// The record format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Records files larger than this are refused as damaged (before they
/// are read into memory).
pub const MAX_RECORDS_BYTES: u64 = 64 << 20;

/// Environment variable of the crash test hook: when set, the writer
/// pauses (prints a line on stderr, then sleeps) after the temporary
/// records file is written and synced and before it is renamed over
/// `records.json`, so a test can `kill -9` the process there.
pub const TEST_PAUSE_ENV: &str = "SFT_CLIENT_TEST_PAUSE_BEFORE_RENAME";

/// All the records of a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    /// The record format ([`FORMAT_VERSION`]); newer ones are refused.
    pub format: u32,
    /// Store-wide settings.
    #[serde(default)]
    pub settings: Settings,
    /// A counter bumped on every load and run: the LRU order.
    #[serde(default)]
    pub clock: u64,
    /// The packages, in the order they were added.
    #[serde(default)]
    pub packages: Vec<PackageRecord>,
}

impl Default for Records {
    fn default() -> Self {
        Records {
            format: FORMAT_VERSION,
            settings: Settings::default(),
            clock: 0,
            packages: Vec::new(),
        }
    }
}

/// Store-wide settings (App-V's `AppFS\FileSize` and
/// `Configuration\ApplicationSourceRoot`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// The cache limit in bytes; `None` is unlimited.
    #[serde(default)]
    pub cache_limit: Option<u64>,
    /// ApplicationSourceRoot, applied to every package's `HREF`.
    #[serde(default)]
    pub application_source_root: Option<String>,
    /// The trust policy: minisign public keys (their base64 line). With
    /// any, every load requires a signature by one of them
    /// (`SOURCE.minisig`), checked before any block is used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_keys: Vec<String>,
}

/// When a package loads in the background (App-V's AutoLoadTriggers).
/// Recorded and reported; `sft client run` honours [`AutoLoad::Launch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoLoad {
    /// After a launch of one of its applications.
    Launch,
    /// After a publishing refresh (a package record added or updated).
    Refresh,
    /// At login.
    Login,
}

/// What an autoload loads (App-V's AutoLoadTarget).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoLoadTarget {
    /// Nothing.
    None,
    /// Only packages with an application that was used before (App-V's
    /// default, PREVUSED).
    #[default]
    Used,
    /// Every package.
    All,
}

/// One package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRecord {
    /// The name given to `add-package` (App-V's `PACKAGE:name`).
    pub name: String,
    /// The package GUID (from the manifest), upper case with dashes.
    pub guid: String,
    /// The version GUID, if the manifest names one.
    #[serde(default)]
    pub version_guid: Option<String>,
    /// The package version, if the manifest names one.
    #[serde(default)]
    pub version: Option<String>,
    /// The manifest it was added (or last configured) with, absolute.
    pub manifest: String,
    /// The `HREF` the package is streamed from (the manifest's `PACKAGE
    /// HREF`, else the first application's OSD `CODEBASE HREF`).
    #[serde(default)]
    pub href: Option<String>,
    /// `%SFT_MIME_SOURCE%` for the `HREF`: the manifest's folder.
    #[serde(default)]
    pub mime_source: String,
    /// Bytes of the SFT as the manifest states (`SIZE`).
    #[serde(default)]
    pub size: Option<u64>,
    /// The validator (`ETag`, else `Last-Modified`) an http(s) source
    /// had when the package was last loaded from it: a launch that finds
    /// another one checks for a new version (HTTP active upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_validator: Option<String>,
    /// The package's content identity as publishing states it
    /// (`CONTENTID`, `blake3:…`): a load refuses any other package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// OverrideURL: where the SFT is, instead of the `HREF`.
    #[serde(default)]
    pub override_url: Option<String>,
    /// Added with `--global` (for all users).
    #[serde(default)]
    pub global: bool,
    /// Background-load triggers.
    #[serde(default)]
    pub autoload: Vec<AutoLoad>,
    /// What the triggers load.
    #[serde(default)]
    pub autoload_target: AutoLoadTarget,
    /// Published for all users.
    #[serde(default)]
    pub published_global: bool,
    /// Users it is published for (not global).
    #[serde(default)]
    pub published_users: Vec<String>,
    /// Pinned in the cache (never evicted, never unloaded).
    #[serde(default)]
    pub locked: bool,
    /// The source of the last load.
    #[serde(default)]
    pub source: Option<String>,
    /// The store's [`Records::clock`] at the last load or run (0: never).
    #[serde(default)]
    pub last_used: u64,
    /// Unix time in milliseconds of the last load or run (0: never).
    #[serde(default)]
    pub last_used_ms: u64,
    /// Unix time in milliseconds the package was added.
    #[serde(default)]
    pub added_ms: u64,
    /// The applications, from the manifest.
    #[serde(default)]
    pub apps: Vec<AppRecord>,
}

impl PackageRecord {
    /// The package GUID, parsed (records are validated when read, so this
    /// holds for records from [`Records::parse`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the GUID is malformed.
    pub fn guid(&self) -> Result<Guid, Error> {
        Ok(self.guid.parse()?)
    }

    /// The file name of the package's SFT inside its folder:
    /// `VERSIONGUID.sft`, or `package.sft` without a version GUID.
    pub fn sft_file_name(&self) -> String {
        match self.version_guid.as_deref().map(str::parse::<Guid>) {
            Some(Ok(g)) => format!("{g}.sft"),
            _ => "package.sft".to_owned(),
        }
    }

    /// True if the package is published for `user` (or globally).
    pub fn is_published_for(&self, user: &str) -> bool {
        self.published_global || self.published_users.iter().any(|u| u == user)
    }

    /// True if `key` names this package: its name (ignoring case) or its
    /// GUID (with or without braces, either case).
    pub fn matches(&self, key: &str) -> bool {
        if self.name.eq_ignore_ascii_case(key.trim()) {
            return true;
        }
        match (key.parse::<Guid>(), self.guid()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// One application of a package (from the manifest; its OSD and icon are
/// copied into the store at publish).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The application's name.
    pub name: String,
    /// Its version.
    #[serde(default)]
    pub version: Option<String>,
    /// The store's copy of its OSD (relative to the package folder), once
    /// published.
    #[serde(default)]
    pub osd: Option<String>,
    /// The store's copy of its icon (relative to the package folder), once
    /// published.
    #[serde(default)]
    pub icon: Option<String>,
    /// Shortcuts the publishing records (there is no shell to create them
    /// in; they are data for whoever integrates the client).
    #[serde(default)]
    pub shortcuts: Vec<ShortcutRecord>,
    /// File type associations the publishing records.
    #[serde(default)]
    pub file_types: Vec<FileTypeRecord>,
}

/// A shortcut, as the manifest describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortcutRecord {
    /// Folder (`%CSIDL_STARTMENU%\Programs\…`).
    #[serde(default)]
    pub location: Option<String>,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
    /// Display name.
    #[serde(default)]
    pub display: Option<String>,
}

/// A file type association, as the manifest describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileTypeRecord {
    /// The extension, without a dot.
    #[serde(default)]
    pub extension: Option<String>,
    /// The ProgID.
    #[serde(default)]
    pub progid: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// The MIME content type.
    #[serde(default)]
    pub content_type: Option<String>,
}

#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

fn damaged(msg: impl std::fmt::Display) -> Error {
    Error::store(StoreProblem::Damaged, msg.to_string())
}

impl Records {
    /// Parse and validate records bytes: the format version first (a
    /// newer one is refused), then the whole document; every GUID must
    /// parse, names and GUIDs must be unique.
    ///
    /// ```
    /// use sft::client::Records;
    /// let r = Records::parse(br#"{"format":1}"#)?;
    /// assert!(r.packages.is_empty());
    /// let e = Records::parse(br#"{"format":99}"#).unwrap_err();
    /// assert_eq!(e.store_problem(), Some(sft::StoreProblem::Damaged));
    /// # Ok::<(), sft::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::Store` with [`StoreProblem::Damaged`], saying what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Records, Error> {
        if bytes.len() as u64 > MAX_RECORDS_BYTES {
            return Err(damaged(format!(
                "the records are {} bytes, more than the {MAX_RECORDS_BYTES} allowed",
                bytes.len()
            )));
        }
        let v: FormatOnly = serde_json::from_slice(bytes)
            .map_err(|e| damaged(format!("the records are not valid: {e}")))?;
        if v.format > FORMAT_VERSION {
            return Err(damaged(format!(
                "the records are format {}, written by a newer sft (this one reads up to {FORMAT_VERSION}); use that version",
                v.format
            )));
        }
        if v.format == 0 {
            return Err(damaged("the records have format 0, which never existed"));
        }
        let r: Records = serde_json::from_slice(bytes)
            .map_err(|e| damaged(format!("the records are not valid: {e}")))?;
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), Error> {
        let mut guids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for p in &self.packages {
            let g = p.guid().map_err(|_| {
                damaged(format!("package `{}` has a bad GUID `{}`", p.name, p.guid))
            })?;
            if let Some(v) = &p.version_guid {
                v.parse::<Guid>().map_err(|_| {
                    damaged(format!("package `{}` has a bad version GUID `{v}`", p.name))
                })?;
            }
            if p.name.trim().is_empty() {
                return Err(damaged("a package has an empty name"));
            }
            if !guids.insert(g) {
                return Err(damaged(format!("package GUID {g} is recorded twice")));
            }
            if !names.insert(p.name.to_lowercase()) {
                return Err(damaged(format!(
                    "package name `{}` is recorded twice",
                    p.name
                )));
            }
            for rel in p
                .apps
                .iter()
                .flat_map(|a| a.osd.iter().chain(a.icon.iter()))
            {
                if !is_safe_relative(rel) {
                    return Err(damaged(format!(
                        "package `{}` names a file outside its folder: `{rel}`",
                        p.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The records as JSON (pretty-printed, stable field names).
    ///
    /// # Errors
    /// Never in practice (serde_json fails only on non-string map keys).
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        let mut v = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::invalid(format!("cannot serialize the records: {e}")))?;
        v.push(b'\n');
        Ok(v)
    }

    /// The package `key` names (name or GUID).
    pub fn find(&self, key: &str) -> Option<&PackageRecord> {
        self.packages.iter().find(|p| p.matches(key))
    }

    /// The package `key` names, mutable.
    pub fn find_mut(&mut self, key: &str) -> Option<&mut PackageRecord> {
        self.packages.iter_mut().find(|p| p.matches(key))
    }

    /// Advance the LRU clock and return the new value.
    pub fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

/// A relative path of plain components (no `..`, no root, no prefix).
pub(crate) fn is_safe_relative(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && !rel.contains('\\')
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Read the records at `path`; a missing file is empty records.
pub(crate) fn read(path: &Path) -> Result<Records, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::default()),
        Err(e) => return Err(Error::io(format!("opening `{}`", path.display()), e)),
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?
        .len();
    if len > MAX_RECORDS_BYTES {
        return Err(damaged(format!(
            "`{}` is {len} bytes, more than the {MAX_RECORDS_BYTES} allowed",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(&file, MAX_RECORDS_BYTES + 1),
        &mut bytes,
    )
    .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?;
    Records::parse(&bytes).map_err(|e| match e {
        Error::Store { problem, message } => {
            Error::store(problem, format!("`{}`: {message}", path.display()))
        }
        other => other,
    })
}

/// Write `bytes` to `path` atomically ([`crate::io::atomic::write`]).
/// `pause_hook`: honour [`TEST_PAUSE_ENV`] before the rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], pause_hook: bool) -> Result<(), Error> {
    crate::io::atomic::write_with(path, bytes, &|tmp: &Path| {
        if pause_hook && std::env::var_os(TEST_PAUSE_ENV).is_some() {
            eprintln!(
                "sft client: test pause before rename of `{}`",
                tmp.display()
            );
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
    })
}

pub(crate) use crate::io::atomic::sync_dir;

/// Remove temporary files left by writers that were killed (call with
/// the records lock held exclusively).
pub(crate) fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}
