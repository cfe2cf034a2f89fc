//! Windows Installer files (feature `msi`): the sequencer's MSI, in both
//! of App-V's ESD forms, written and read natively. `docs/MSI.md` lists
//! every table, property and custom action.
//!
//! - [`write_msi`] collects what [`super::write_bundle`] collects (the
//!   manifest, every OSD and icon it references and, stand-alone, the SFT;
//!   each checked) and writes a Windows Installer database: summary
//!   information, the standard tables, one embedded cabinet (`sft.cab`:
//!   descriptors MSZIP-compressed, the SFT stored, its blocks being
//!   compressed already), the properties `MODE`, `OVERRIDEURL` and `LOAD`,
//!   product and upgrade codes derived from the package GUID and version,
//!   and custom actions that run `sft client install` with rollback. The
//!   same inputs give the same bytes.
//! - [`MsiPackage::open`] reads such a file, or any installer database
//!   that carries an App-V manifest and the files it names (one built by
//!   `wixl`, say): the Compound File through the `cfb` crate in its strict
//!   mode, the tables through this module's own bounded reader (`db`; the
//!   `msi` crate, which writes them, panics on some hostile tables), the
//!   cabinet through the `cab` crate. Every path is built from the
//!   `Directory` table and checked (no `..`, separators or drive letters in
//!   a name); every size is checked against the `File` table and the
//!   kind's limit before anything is allocated; every descriptor the
//!   manifest names is read and checked as [`super::Bundle::open`] checks
//!   it (and against its BLAKE3 in `SftFileHash`, when the MSI has that
//!   table); the SFT's header and prologue are checked at once, its bytes
//!   as it is extracted.
//!
//! ```
//! # fn main() -> sft::Result<()> {
//! use sft::bundle::msi::{MsiOptions, MsiPackage, write_msi};
//! let dir = std::env::temp_dir().join(format!("msi-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|e| sft::Error::io("mkdir", e))?;
//! let w = |p: &str, b: &[u8]| std::fs::write(dir.join(p), b).map_err(|e| sft::Error::io(p, e));
//! w("Editor.osd", br#"<SOFTPKG NAME="Editor"><IMPLEMENTATION><CODEBASE HREF="rtsp://srv/e.sft"/></IMPLEMENTATION></SOFTPKG>"#)?;
//! w("e.ico", &sft::publish::tiny_icon())?;
//! w("Editor_manifest.xml", br#"<MANIFEST><PACKAGE GUID="0f2e3a4b-5c6d-4e7f-8091-a2b3c4d5e6f7" NAME="Editor" VERSION="3"/>
//!     <APPLIST><APP NAME="Editor" OSD="%SFT_MIME_SOURCE%/Editor.osd" ICON="%SFT_MIME_SOURCE%/e.ico"/></APPLIST></MANIFEST>"#)?;
//!
//! let out = dir.join("Editor.msi");
//! let summary = write_msi(&dir.join("Editor_manifest.xml"), &MsiOptions::default(), &out)?;
//! assert_eq!(summary.product_version, "0.0.3");
//!
//! let m = MsiPackage::open(&out)?;
//! assert_eq!(m.properties().mode.as_deref(), Some("STREAMING"));
//! assert_eq!(m.read("e.ico")?, sft::publish::tiny_icon());
//! assert!(!m.has_sft());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use msi::{Column, Insert, Package, PackageType, Value};

mod cabinet;
mod db;
use uuid::Uuid;

use super::container::name_problem;
use super::{
    BundleOptions, Cleanup, EntryKind, atomic_write, check_refs, check_sft_bytes, collect, io_at,
    match_package, ref_name, sync_dir, temp_beside,
};
use crate::error::Error;
use crate::publish::{Manifest, Osd, validate_icon};

/// The 8 bytes a Compound File Binary (and so every MSI) starts with.
pub const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
/// The embedded cabinet's stream name (`Media.Cabinet` is `#sft.cab`).
pub const CABINET: &str = "sft.cab";
/// Largest SFT a stand-alone MSI carries: a cabinet file's size is 32
/// bits and Windows Installer packages stop at 2 GiB.
pub const MAX_MSI_SFT: u64 = (2 << 30) - (64 << 20);
/// Most rows read from any one table (Windows Installer's own limit).
pub const MAX_ROWS: usize = db::MAX_ROWS;
/// Deepest `Directory` nesting followed.
pub const MAX_DIR_DEPTH: usize = 64;
/// Longest identifier (a table key) read: the SDK's `s72`.
const MAX_IDENTIFIER: usize = 72;

/// `MODE`: how the package is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `STANDALONE`: the MSI carries the SFT; installing puts it in the
    /// store (no server).
    Standalone,
    /// `STREAMING`: the SFT stays on a server; the client loads it from
    /// `OVERRIDEURL`, else the manifest's `HREF`.
    Streaming,
}

impl Mode {
    /// The property value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Standalone => "STANDALONE",
            Mode::Streaming => "STREAMING",
        }
    }

    /// Parse a property value (case-insensitive).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the value.
    pub fn parse(v: &str) -> Result<Mode, Error> {
        match v.trim().to_ascii_uppercase().as_str() {
            "STANDALONE" | "STAND-ALONE" => Ok(Mode::Standalone),
            "STREAMING" => Ok(Mode::Streaming),
            _ => Err(Error::invalid(format!(
                "MODE `{v}`: expected STANDALONE or STREAMING"
            ))),
        }
    }
}

/// Parse a `LOAD` value: `TRUE`/`1`/`YES` or `FALSE`/`0`/`NO`
/// (case-insensitive); empty is false, as an unset property.
///
/// # Errors
/// [`Error::InvalidInput`] naming the value.
pub fn parse_load(v: &str) -> Result<bool, Error> {
    match v.trim().to_ascii_uppercase().as_str() {
        "TRUE" | "1" | "YES" => Ok(true),
        "FALSE" | "0" | "NO" | "" => Ok(false),
        _ => Err(Error::invalid(format!(
            "LOAD `{v}`: expected TRUE or FALSE"
        ))),
    }
}

/// What [`write_msi`] builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsiOptions {
    /// Carry the SFT (a stand-alone MSI, `MODE=STANDALONE`); as
    /// [`BundleOptions::with_sft`].
    pub with_sft: bool,
    /// The SFT to carry; `None` resolves it from the manifest. Setting it
    /// implies `with_sft`.
    pub sft: Option<PathBuf>,
    /// The default `OVERRIDEURL` (`--sft-url`): where clients load the SFT
    /// from. `None`: the property is not set and the manifest's `HREF`
    /// applies.
    pub sft_url: Option<String>,
    /// The default `LOAD`: load the package when it is installed.
    pub load: bool,
    /// `Manufacturer` (default `sft`).
    pub manufacturer: Option<String>,
    /// `SFTCLIENT`, the client program the custom actions run (default
    /// `sft.exe`, found on `PATH`).
    pub client: Option<String>,
}

/// What [`write_msi`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsiSummary {
    /// `ProductCode`, `{…}` form.
    pub product_code: String,
    /// `UpgradeCode`, `{…}` form.
    pub upgrade_code: String,
    /// The package code (summary information revision number), `{…}` form.
    pub package_code: String,
    /// `ProductVersion`.
    pub product_version: String,
    /// `MODE`.
    pub mode: Mode,
    /// Files in the cabinet (manifest, OSDs, icons, SFT).
    pub files: usize,
    /// The MSI's size in bytes.
    pub bytes: u64,
    /// The SFT's size, if the MSI carries it.
    pub sft_bytes: Option<u64>,
}

/// The `{XXXXXXXX-…}` form Windows Installer writes GUIDs in.
fn braced(u: &Uuid) -> String {
    format!("{{{}}}", u.hyphenated().to_string().to_ascii_uppercase())
}

/// The namespace every sft MSI code is derived in (a UUID v5 of
/// `urn:sft:msi` in the URL namespace).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:sft:msi")
}

/// `UpgradeCode` of a package: the same for every version, so a new
/// version's MSI finds and replaces the old one.
pub fn upgrade_code(package_guid: &crate::format::guid::Guid) -> String {
    braced(&Uuid::new_v5(
        &namespace(),
        format!("upgrade:{package_guid}").as_bytes(),
    ))
}

/// `ProductCode` of one version of a package (its GUID and
/// `ProductVersion`).
pub fn product_code(package_guid: &crate::format::guid::Guid, product_version: &str) -> String {
    braced(&Uuid::new_v5(
        &namespace(),
        format!("product:{package_guid}:{product_version}").as_bytes(),
    ))
}

/// `ProductVersion` of a manifest's `PACKAGE VERSION`: an integer `n`
/// (App-V's version number, one more at each save) becomes
/// `n>>24 . (n>>16)&255 . n&65535`, so a larger number is always a later
/// version; a dotted `a.b.c[.d]` (a ≤ 255, b ≤ 255, c ≤ 65535) is kept as
/// `a.b.c`. No version is `0.0.1`.
///
/// ```
/// use sft::bundle::msi::product_version;
/// assert_eq!(product_version(Some("3")).unwrap(), "0.0.3");
/// assert_eq!(product_version(Some("70000")).unwrap(), "0.1.4464");
/// assert_eq!(product_version(Some("4.6.2.1")).unwrap(), "4.6.2");
/// assert!(product_version(Some("4.6.x")).is_err());
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] for anything else.
pub fn product_version(version: Option<&str>) -> Result<String, Error> {
    let v = version.map(str::trim).filter(|v| !v.is_empty());
    let Some(v) = v else {
        return Ok("0.0.1".into());
    };
    if let Ok(n) = v.parse::<u32>() {
        return Ok(format!("{}.{}.{}", n >> 24, (n >> 16) & 0xff, n & 0xffff));
    }
    let parts: Vec<&str> = v.split('.').collect();
    let bad = || {
        Error::invalid(format!(
            "PACKAGE VERSION `{v}` is neither a number nor a.b.c[.d] with a, b <= 255 and c <= 65535"
        ))
    };
    if !(3..=4).contains(&parts.len()) {
        return Err(bad());
    }
    let nums = parts
        .iter()
        .map(|p| p.parse::<u32>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    if nums[0] > 255 || nums[1] > 255 || nums[2] > 65535 || nums.get(3).is_some_and(|d| *d > 65535)
    {
        return Err(bad());
    }
    Ok(format!("{}.{}.{}", nums[0], nums[1], nums[2]))
}

/// Characters Windows refuses in a file or folder name.
const WINDOWS_BAD: &[char] = &['<', '>', '"', '|', '?', '*', ':', '\\', '/'];

/// Why `c` cannot be a file or folder name inside an MSI, if it cannot.
fn component_problem(c: &str) -> Option<&'static str> {
    if c.is_empty() || c == "." || c == ".." {
        return Some("an empty, `.` or `..` name");
    }
    if c.len() > 255 {
        return Some("a name longer than 255 bytes");
    }
    if c.chars()
        .any(|ch| ch.is_control() || WINDOWS_BAD.contains(&ch))
    {
        return Some("a control character or one of < > \" | ? * : \\ / in a name");
    }
    if c.ends_with('.') || c.ends_with(' ') {
        return Some("a name ending in a dot or a space");
    }
    let stem = c
        .split('.')
        .next()
        .unwrap_or(c)
        .trim_end()
        .to_ascii_uppercase();
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        return Some("a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)");
    }
    None
}

/// A table column the way the Windows SDK's schema declares it: name,
/// category (`None`: an integer), string length (0: unlimited; for an
/// integer, 2 or 4 bytes), nullable, localizable.
struct Col(&'static str, Option<msi::Category>, usize, bool, bool);

impl Col {
    fn build(&self, key: bool) -> Column {
        let Col(name, cat, len, null, loc) = *self;
        let mut b = Column::build(name);
        if key {
            b = b.primary_key();
        }
        if null {
            b = b.nullable();
        }
        if loc {
            b = b.localizable();
        }
        match cat {
            None if len == 2 => b.int16(),
            None => b.int32(),
            Some(c) => b.category(c).string(len),
        }
    }
}

/// Every table [`write_msi`] creates, with its columns (the first `keys`
/// columns are the primary key), as the Windows SDK's `schema.msi` has
/// them (`SftFileHash` is sft's own).
fn schema() -> Vec<(&'static str, usize, Vec<Col>)> {
    use msi::Category as C;
    let id = |n, l| Col(n, Some(C::Identifier), l, false, false);
    let id_null = |n, l| Col(n, Some(C::Identifier), l, true, false);
    let i2 = |n| Col(n, None, 2, false, false);
    let i2_null = |n| Col(n, None, 2, true, false);
    let i4 = |n| Col(n, None, 4, false, false);
    let i4_null = |n| Col(n, None, 4, true, false);
    let seq = || {
        vec![
            id("Action", 72),
            Col("Condition", Some(C::Condition), 255, true, false),
            i2_null("Sequence"),
        ]
    };
    vec![
        (
            "Property",
            1,
            vec![
                id("Property", 72),
                Col("Value", Some(C::Text), 0, false, true),
            ],
        ),
        (
            "Directory",
            1,
            vec![
                id("Directory", 72),
                id_null("Directory_Parent", 72),
                Col("DefaultDir", Some(C::DefaultDir), 255, false, true),
            ],
        ),
        (
            "Component",
            1,
            vec![
                id("Component", 72),
                Col("ComponentId", Some(C::Guid), 38, true, false),
                id("Directory_", 72),
                i2("Attributes"),
                Col("Condition", Some(C::Condition), 255, true, false),
                id_null("KeyPath", 72),
            ],
        ),
        (
            "Feature",
            1,
            vec![
                id("Feature", 38),
                id_null("Feature_Parent", 38),
                Col("Title", Some(C::Text), 64, true, true),
                Col("Description", Some(C::Text), 255, true, true),
                i2_null("Display"),
                i2("Level"),
                id_null("Directory_", 72),
                i2("Attributes"),
            ],
        ),
        (
            "FeatureComponents",
            2,
            vec![id("Feature_", 38), id("Component_", 72)],
        ),
        (
            "File",
            1,
            vec![
                id("File", 72),
                id("Component_", 72),
                Col("FileName", Some(C::Filename), 255, false, true),
                i4("FileSize"),
                Col("Version", Some(C::Version), 72, true, false),
                Col("Language", Some(C::Language), 20, true, false),
                i2_null("Attributes"),
                i4("Sequence"),
            ],
        ),
        (
            "Media",
            1,
            vec![
                i2("DiskId"),
                i4("LastSequence"),
                Col("DiskPrompt", Some(C::Text), 64, true, true),
                Col("Cabinet", Some(C::Cabinet), 255, true, false),
                Col("VolumeLabel", Some(C::Text), 32, true, false),
                id_null("Source", 72),
            ],
        ),
        (
            "CustomAction",
            1,
            vec![
                id("Action", 72),
                i2("Type"),
                Col("Source", Some(C::CustomSource), 72, true, false),
                Col("Target", Some(C::Formatted), 255, true, false),
                i4_null("ExtendedType"),
            ],
        ),
        (
            "Upgrade",
            5,
            vec![
                Col("UpgradeCode", Some(C::Guid), 38, false, false),
                Col("VersionMin", Some(C::Text), 20, true, false),
                Col("VersionMax", Some(C::Text), 20, true, false),
                Col("Language", Some(C::Language), 255, true, false),
                i4("Attributes"),
                Col("Remove", Some(C::Formatted), 255, true, false),
                Col("ActionProperty", Some(C::UpperCase), 72, false, false),
            ],
        ),
        (
            "LaunchCondition",
            1,
            vec![
                Col("Condition", Some(C::Condition), 255, false, false),
                Col("Description", Some(C::Formatted), 255, false, true),
            ],
        ),
        ("InstallExecuteSequence", 1, seq()),
        ("InstallUISequence", 1, seq()),
        ("AdminExecuteSequence", 1, seq()),
        ("AdminUISequence", 1, seq()),
        ("AdvtExecuteSequence", 1, seq()),
        (
            "SftFileHash",
            1,
            vec![
                id("File_", 72),
                Col("Hash", Some(C::Text), 80, false, false),
            ],
        ),
    ]
}

/// Custom action type bits (Windows Installer): an EXE whose path is a
/// property's value (50), run from the install script (deferred, 0x400)
/// in the system context (0x800); rollback (0x100) and commit (0x200)
/// variants.
const CA_EXE_PROPERTY: i32 = 50;
const CA_IN_SCRIPT: i32 = 0x400;
const CA_NO_IMPERSONATE: i32 = 0x800;
const CA_ROLLBACK: i32 = 0x100;
const CA_COMMIT: i32 = 0x200;

/// The condition under which the install actions run: install or repair,
/// not removal.
const COND_INSTALL: &str = "NOT REMOVE~=\"ALL\"";
/// Removal that is not part of an upgrade (an upgrade replaces the
/// package in place; the new version's install does it).
const COND_UNINSTALL: &str = "REMOVE~=\"ALL\" AND NOT UPGRADINGPRODUCTCODE";

/// One row of a sequence table: action, condition, sequence number.
type SequenceRow = (&'static str, Option<&'static str>, i32);

/// The sequence tables: (action, condition, sequence), the standard
/// actions as `wixl` and WiX schedule them, plus sft's custom actions
/// (docs/MSI.md §3, §5).
const SEQUENCES: [(&str, &[SequenceRow]); 5] = [
    (
        "InstallExecuteSequence",
        &[
            ("FindRelatedProducts", None, 25),
            ("LaunchConditions", None, 100),
            ("ValidateProductID", None, 700),
            ("CostInitialize", None, 800),
            ("FileCost", None, 900),
            ("CostFinalize", None, 1000),
            ("MigrateFeatureStates", None, 1200),
            ("InstallValidate", None, 1400),
            ("InstallInitialize", None, 1500),
            ("RemoveExistingProducts", None, 1501),
            ("ProcessComponents", None, 1600),
            ("UnpublishFeatures", None, 1800),
            ("SftUninstall", Some(COND_UNINSTALL), 1900),
            ("RemoveFiles", None, 3500),
            ("InstallFiles", None, 4000),
            ("RegisterUser", None, 6000),
            ("RegisterProduct", None, 6100),
            ("PublishFeatures", None, 6300),
            ("PublishProduct", None, 6400),
            ("SftInstallRollback", Some(COND_INSTALL), 6500),
            ("SftInstall", Some(COND_INSTALL), 6501),
            ("SftInstallCommit", Some(COND_INSTALL), 6502),
            ("InstallFinalize", None, 6600),
        ],
    ),
    (
        "InstallUISequence",
        &[
            ("FindRelatedProducts", None, 25),
            ("LaunchConditions", None, 100),
            ("ValidateProductID", None, 700),
            ("CostInitialize", None, 800),
            ("FileCost", None, 900),
            ("CostFinalize", None, 1000),
            ("MigrateFeatureStates", None, 1200),
            ("ExecuteAction", None, 1300),
        ],
    ),
    (
        "AdminExecuteSequence",
        &[
            ("CostInitialize", None, 800),
            ("FileCost", None, 900),
            ("CostFinalize", None, 1000),
            ("InstallValidate", None, 1400),
            ("InstallInitialize", None, 1500),
            ("InstallAdminPackage", None, 3900),
            ("InstallFiles", None, 4000),
            ("InstallFinalize", None, 6600),
        ],
    ),
    (
        "AdminUISequence",
        &[
            ("CostInitialize", None, 800),
            ("FileCost", None, 900),
            ("CostFinalize", None, 1000),
            ("ExecuteAction", None, 1300),
        ],
    ),
    (
        "AdvtExecuteSequence",
        &[
            ("CostInitialize", None, 800),
            ("CostFinalize", None, 1000),
            ("InstallValidate", None, 1400),
            ("InstallInitialize", None, 1500),
            ("PublishFeatures", None, 6300),
            ("PublishProduct", None, 6400),
            ("InstallFinalize", None, 6600),
        ],
    ),
];

/// Write a Windows Installer file of the manifest at `manifest` (see the
/// module docs and `docs/MSI.md`), atomically: a temporary file beside
/// `out`, synced and renamed; on any error nothing is left.
///
/// # Errors
/// As [`super::write_bundle`] for the inputs; [`Error::InvalidInput`] for
/// a manifest without a `PACKAGE GUID`, a `PACKAGE VERSION` that cannot be
/// a `ProductVersion`, an SFT larger than [`MAX_MSI_SFT`], or names
/// Windows cannot hold; [`Error::Io`] naming `out`.
pub fn write_msi(manifest: &Path, options: &MsiOptions, out: &Path) -> crate::Result<MsiSummary> {
    let c = collect(
        manifest,
        &BundleOptions {
            with_sft: options.with_sft || options.sft.is_some(),
            sft: options.sft.clone(),
        },
    )?;
    c.refuse_output(out)?;
    let mdisplay = manifest.display();
    let pkg = c.manifest.package.clone().unwrap_or_default();
    let guid: crate::format::guid::Guid = pkg
        .guid
        .as_deref()
        .filter(|g| !g.trim().is_empty())
        .ok_or_else(|| {
            Error::invalid(format!(
                "manifest `{mdisplay}` names no PACKAGE GUID; an MSI's product and upgrade codes are derived from it"
            ))
        })?
        .parse()
        .map_err(|e| Error::invalid(format!("manifest `{mdisplay}`: PACKAGE GUID: {e}")))?;
    let version = product_version(pkg.version.as_deref())
        .map_err(|e| Error::invalid(format!("manifest `{mdisplay}`: {e}")))?;
    if let Some((_, path, len)) = &c.sft
        && *len > MAX_MSI_SFT
    {
        return Err(Error::invalid(format!(
            "`{}` is {len} bytes; a stand-alone MSI carries at most {MAX_MSI_SFT} (a cabinet's sizes are 32-bit and Windows Installer stops at 2 GiB); publish it with --sft-url instead",
            path.display()
        )));
    }
    let mode = if c.sft.is_some() {
        Mode::Standalone
    } else {
        Mode::Streaming
    };
    let name = pkg
        .name
        .clone()
        .filter(|n| component_problem(n.trim()).is_none() && !n.trim().is_empty())
        .map_or_else(|| guid.to_string(), |n| n.trim().to_owned());

    // The files, manifest first, then by name; the SFT last.
    let mut items = vec![Item {
        key: "Manifest".into(),
        rel: c.mname.clone(),
        bytes: Some(&c.mbytes),
        sft: None,
    }];
    let (mut osds, mut icons) = (0, 0);
    for (rel, (kind, bytes, _)) in &c.files {
        let key = match kind {
            EntryKind::Osd => {
                osds += 1;
                format!("Osd_{osds}")
            }
            _ => {
                icons += 1;
                format!("Icon_{icons}")
            }
        };
        items.push(Item {
            key,
            rel: rel.clone(),
            bytes: Some(bytes),
            sft: None,
        });
    }
    if let Some((rel, path, len)) = &c.sft {
        items.push(Item {
            key: "Sft".into(),
            rel: rel.clone(),
            bytes: None,
            sft: Some((path, *len)),
        });
    }
    for it in &items {
        for comp in it.rel.split('/') {
            if let Some(p) = component_problem(comp) {
                return Err(Error::invalid(format!(
                    "`{}`: Windows cannot hold {p} (`{comp}`)",
                    it.rel
                )));
            }
        }
    }

    let upgrade = upgrade_code(&guid);
    let product = product_code(&guid, &version);
    let client = options.client.clone().unwrap_or_else(|| "sft.exe".into());
    let manufacturer = options.manufacturer.clone().unwrap_or_else(|| "sft".into());

    // Directories: TARGETDIR > ProgramFilesFolder > sft > INSTALLDIR
    // (the package name) > the manifest's subfolders.
    let mut dirs: BTreeMap<String, String> = BTreeMap::new(); // rel dir -> Directory key
    dirs.insert(String::new(), "INSTALLDIR".into());
    let mut dir_rows: Vec<Vec<Value>> = vec![
        vec!["TARGETDIR".into(), Value::Null, "SourceDir".into()],
        vec!["ProgramFilesFolder".into(), "TARGETDIR".into(), ".".into()],
        vec!["SFTDIR".into(), "ProgramFilesFolder".into(), "sft".into()],
        vec!["INSTALLDIR".into(), "SFTDIR".into(), name.clone().into()],
    ];
    for it in &items {
        let parts: Vec<&str> = it.rel.split('/').collect();
        for depth in 1..parts.len() {
            let rel = parts[..depth].join("/");
            if dirs.contains_key(&rel) {
                continue;
            }
            let parent = dirs[&parts[..depth - 1].join("/")].clone();
            let key = format!("Dir_{}", dirs.len());
            dir_rows.push(vec![
                key.clone().into(),
                parent.into(),
                parts[depth - 1].into(),
            ]);
            dirs.insert(rel, key);
        }
    }
    // One component per folder; its key path is its first file.
    let dir_of = |rel: &str| -> String {
        match rel.rsplit_once('/') {
            Some((d, _)) => d.to_owned(),
            None => String::new(),
        }
    };
    let mut comps: BTreeMap<String, (String, String)> = BTreeMap::new(); // dir -> (component, keypath file)
    for it in &items {
        let d = dir_of(&it.rel);
        let n = comps.len();
        comps
            .entry(d)
            .or_insert_with(|| (format!("Comp_{n}"), it.key.clone()));
    }

    // Every file's hash and size first (the package code and the
    // SftFileHash table need them before the cabinet is written, last).
    // Items are in cabinet order: descriptors, then the SFT.
    let mut hashes: Vec<(String, String)> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    for it in &items {
        let (h, n) = match (it.bytes, it.sft) {
            (Some(b), _) => (blake3::hash(b), b.len() as u64),
            (None, Some((path, len))) => (hash_file(path, len)?, len),
            (None, None) => (blake3::hash(b""), 0),
        };
        hashes.push((it.key.clone(), format!("blake3:{}", h.to_hex())));
        sizes.push(n);
    }
    let ioe = |what: &'static str| {
        let o = out.display().to_string();
        move |e: std::io::Error| Error::io(format!("{what} `{o}`"), e)
    };
    // The tables are built in memory, then copied compactly into the
    // output (the msi crate rewrites a table's stream at each change, and
    // a compound file never shrinks in place), then the cabinet is
    // appended: the file holds no free sectors, so any cut of it loses
    // data a reader needs.
    let mut db = Package::create(PackageType::Installer, Cursor::new(Vec::new()))
        .map_err(ioe("creating"))?;
    for (table, keys, cols) in schema() {
        let columns = cols
            .iter()
            .enumerate()
            .map(|(i, c)| c.build(i < keys))
            .collect();
        db.create_table(table, columns)
            .map_err(ioe("creating a table in"))?;
    }
    // The package code names these exact bytes: derived from everything
    // that went in, so the same inputs give the same file.
    let package_code = {
        let mut h = blake3::Hasher::new();
        h.update(product.as_bytes());
        for (k, v) in &hashes {
            h.update(k.as_bytes());
            h.update(v.as_bytes());
        }
        for o in [&options.sft_url, &options.manufacturer, &options.client] {
            h.update(o.as_deref().unwrap_or("\u{0}").as_bytes());
            h.update(b"\x00");
        }
        h.update(&[u8::from(options.load)]);
        braced(&Uuid::new_v5(
            &namespace(),
            format!("package:{}", h.finalize().to_hex()).as_bytes(),
        ))
    };

    let ins = |db: &mut Package<Cursor<Vec<u8>>>, table: &str, rows: Vec<Vec<Value>>| {
        db.insert_rows(Insert::into(table).rows(rows)).map_err(|e| {
            Error::io(
                format!("writing the {table} table of `{}`", out.display()),
                e,
            )
        })
    };
    let mut props: Vec<(&str, String)> = vec![
        ("ProductCode", product.clone()),
        ("ProductName", name.clone()),
        ("ProductVersion", version.clone()),
        ("ProductLanguage", "1033".into()),
        ("Manufacturer", manufacturer.clone()),
        ("UpgradeCode", upgrade.clone()),
        ("ALLUSERS", "1".into()),
        ("ARPNOMODIFY", "1".into()),
        ("MODE", mode.as_str().into()),
        ("LOAD", if options.load { "TRUE" } else { "FALSE" }.into()),
        ("SFTCLIENT", client),
        ("SFTPACKAGEGUID", guid.to_string()),
        ("SFTMANIFEST", "Manifest".into()),
        (
            "SecureCustomProperties",
            "SFTUPGRADEFOUND;SFTNEWERFOUND".into(),
        ),
    ];
    if let Some(u) = options.sft_url.as_deref().filter(|u| !u.trim().is_empty()) {
        props.push(("OVERRIDEURL", u.to_owned()));
    }
    ins(
        &mut db,
        "Property",
        props
            .into_iter()
            .map(|(k, v)| vec![k.into(), v.into()])
            .collect(),
    )?;
    ins(&mut db, "Directory", dir_rows)?;
    ins(
        &mut db,
        "Component",
        comps
            .iter()
            .map(|(d, (comp, keypath))| {
                let id = Uuid::new_v5(&namespace(), format!("component:{upgrade}:{d}").as_bytes());
                vec![
                    comp.clone().into(),
                    braced(&id).into(),
                    dirs[d].clone().into(),
                    0.into(),
                    Value::Null,
                    keypath.clone().into(),
                ]
            })
            .collect(),
    )?;
    ins(
        &mut db,
        "Feature",
        vec![vec![
            "Complete".into(),
            Value::Null,
            name.clone().into(),
            "The virtual application package".into(),
            1.into(),
            1.into(),
            "INSTALLDIR".into(),
            0.into(),
        ]],
    )?;
    ins(
        &mut db,
        "FeatureComponents",
        comps
            .values()
            .map(|(comp, _)| vec!["Complete".into(), comp.clone().into()])
            .collect(),
    )?;
    // `items`, `sizes` and `hashes` are in cabinet order: a file's
    // Sequence is its place there.
    let mut file_rows = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let leaf = it.rel.rsplit('/').next().unwrap_or(&it.rel);
        let size = i32::try_from(sizes[i]).map_err(|_| {
            Error::invalid(format!("`{}` is too large for an MSI File row", it.rel))
        })?;
        file_rows.push(vec![
            it.key.clone().into(),
            comps[&dir_of(&it.rel)].0.clone().into(),
            leaf.into(),
            size.into(),
            Value::Null,
            Value::Null,
            512.into(), // msidbFileAttributesVital
            (i as i32 + 1).into(),
        ]);
    }
    ins(&mut db, "File", file_rows)?;
    ins(
        &mut db,
        "Media",
        vec![vec![
            1.into(),
            (hashes.len() as i32).into(),
            Value::Null,
            format!("#{CABINET}").into(),
            Value::Null,
            Value::Null,
        ]],
    )?;
    ins(
        &mut db,
        "SftFileHash",
        hashes
            .iter()
            .map(|(k, h)| vec![k.clone().into(), h.clone().into()])
            .collect(),
    )?;
    // `sft client install` gets the MSI and the properties as msiexec
    // has them; an empty value is an unset property.
    let install_args = "client install \"[OriginalDatabase]\" --global \"MODE=[MODE]\" \"OVERRIDEURL=[OVERRIDEURL]\" \"LOAD=[LOAD]\"";
    let deferred = CA_EXE_PROPERTY | CA_IN_SCRIPT | CA_NO_IMPERSONATE;
    ins(
        &mut db,
        "CustomAction",
        vec![
            vec![
                "SftInstall".into(),
                deferred.into(),
                "SFTCLIENT".into(),
                format!("{install_args} --keep-rollback").into(),
                Value::Null,
            ],
            vec![
                "SftInstallRollback".into(),
                (deferred | CA_ROLLBACK).into(),
                "SFTCLIENT".into(),
                "client install \"[OriginalDatabase]\" --global --rollback".into(),
                Value::Null,
            ],
            vec![
                "SftInstallCommit".into(),
                (deferred | CA_COMMIT).into(),
                "SFTCLIENT".into(),
                "client install \"[OriginalDatabase]\" --global --commit".into(),
                Value::Null,
            ],
            vec![
                "SftUninstall".into(),
                deferred.into(),
                "SFTCLIENT".into(),
                "client delete-package \"[SFTPACKAGEGUID]\"".into(),
                Value::Null,
            ],
        ],
    )?;
    ins(
        &mut db,
        "Upgrade",
        vec![
            // Older versions of this package: removed by the upgrade.
            vec![
                upgrade.clone().into(),
                Value::Null,
                version.clone().into(),
                Value::Null,
                1.into(), // migrate feature states; VersionMax exclusive
                Value::Null,
                "SFTUPGRADEFOUND".into(),
            ],
            // A newer version: detected only, and refused below.
            vec![
                upgrade.clone().into(),
                version.clone().into(),
                Value::Null,
                Value::Null,
                2.into(), // only detect; VersionMin exclusive
                Value::Null,
                "SFTNEWERFOUND".into(),
            ],
        ],
    )?;
    ins(
        &mut db,
        "LaunchCondition",
        vec![vec![
            "NOT SFTNEWERFOUND".into(),
            "A newer version of this package is already installed.".into(),
        ]],
    )?;
    for (table, actions) in SEQUENCES {
        ins(
            &mut db,
            table,
            actions
                .iter()
                .map(|(a, c, n)| vec![(*a).into(), c.map_or(Value::Null, Value::from), (*n).into()])
                .collect(),
        )?;
    }
    {
        let si = db.summary_info_mut();
        si.set_title("Installation Database");
        si.set_subject(name.clone());
        si.set_author(manufacturer.clone());
        si.set_keywords(&["Installer".to_owned(), "App-V".to_owned(), "sft".to_owned()]);
        si.set_comments(format!(
            "Publishes the virtual application package {name} ({guid}) in an sft client store; MODE={}.",
            mode.as_str()
        ));
        si.set_arch("Intel");
        si.set_languages(&[msi::LanguageId::from_tag("en-US")]);
        si.set_uuid(
            Uuid::parse_str(package_code.trim_matches(['{', '}']))
                .map_err(|e| Error::invalid(format!("package code: {e}")))?,
        );
        si.set_page_count(200);
        si.set_word_count(2);
        si.set_doc_security(2);
        si.set_creating_application(format!("sft {}", env!("CARGO_PKG_VERSION")));
        si.clear_creation_time();
        si.clear_last_save_time();
    }
    db.flush().map_err(ioe("writing"))?;
    let tables = db.into_inner().map_err(ioe("writing"))?;

    let (tmp_dir, tmp) = temp_beside(out)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_at("creating a temporary file for", out))?;
    let mut guard = Cleanup {
        path: Some(tmp.clone()),
        dir: false,
    };
    let file = compact_v3(tables, file).map_err(ioe("writing"))?;
    let mut db = Package::open(file).map_err(ioe("reopening"))?;
    write_cabinet(&mut db, &items, &hashes, out)?;
    let file = db.into_inner().map_err(ioe("writing"))?;
    file.sync_all().map_err(ioe("syncing"))?;
    let bytes = file.metadata().map_err(ioe("reading"))?.len();
    drop(file);
    std::fs::rename(&tmp, out).map_err(io_at("renaming into place", out))?;
    guard.path = None;
    sync_dir(&tmp_dir);
    Ok(MsiSummary {
        product_code: product,
        upgrade_code: upgrade,
        package_code,
        product_version: version,
        mode,
        files: items.len(),
        bytes,
        sft_bytes: c.sft.as_ref().map(|s| s.2),
    })
}

/// One file [`write_msi`] puts in the cabinet: its File key, its path
/// relative to the manifest's folder, and its bytes (a descriptor) or its
/// file and length (the SFT).
struct Item<'a> {
    key: String,
    rel: String,
    bytes: Option<&'a [u8]>,
    sft: Option<(&'a Path, u64)>,
}

/// Copy the compound file in `from` into `to` as a version 3 file
/// (512-byte sectors, what Windows Installer and WiX write; the `msi`
/// crate creates version 4), holding only what its streams need (as
/// `cfb`'s `copy_to`, which keeps the version).
fn compact_v3(from: Cursor<Vec<u8>>, to: File) -> std::io::Result<File> {
    let mut src = cfb::CompoundFile::open(from)?;
    let mut copy = cfb::CompoundFile::create_with_version(cfb::Version::V3, to)?;
    let entries: Vec<cfb::Entry> = src.walk().collect();
    for e in &entries {
        if e.is_stream() {
            let mut r = src.open_stream(e.path())?;
            let mut w = copy.create_stream(e.path())?;
            std::io::copy(&mut r, &mut w)?;
        } else if !e.is_root() {
            copy.create_storage(e.path())?;
        }
    }
    for e in &entries {
        if !e.is_stream() {
            copy.set_storage_clsid(e.path(), *e.clsid())?;
        }
    }
    copy.flush()?;
    Ok(copy.into_inner())
}

/// BLAKE3 of the first `len` bytes of `path`, which must have them.
fn hash_file(path: &Path, len: u64) -> Result<blake3::Hash, Error> {
    let mut h = blake3::Hasher::new();
    copy_file(path, len, &mut |b| {
        h.update(b);
        Ok(())
    })?;
    Ok(h.finalize())
}

/// Pass the first `len` bytes of `path` to `sink` in 1 MiB pieces.
fn copy_file(
    path: &Path,
    len: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut src = File::open(path).map_err(io_at("opening", path))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = src.read(&mut buf[..want]).map_err(io_at("reading", path))?;
        if got == 0 {
            return Err(Error::invalid(format!(
                "`{}` shrank while it was read into the MSI",
                path.display()
            )));
        }
        sink(&buf[..got])?;
        left -= got as u64;
    }
    Ok(())
}

/// Write the cabinet stream: the descriptors in an MSZIP folder, the SFT
/// stored in a folder of its own (its blocks are compressed already),
/// each named by its File key, in `items` order (their Sequence). Each
/// file's bytes must still hash to `hashes` (an input changed since:
/// an error).
fn write_cabinet(
    db: &mut Package<File>,
    items: &[Item<'_>],
    hashes: &[(String, String)],
    out: &Path,
) -> Result<(), Error> {
    let ioe =
        |e: std::io::Error| Error::io(format!("writing the cabinet of `{}`", out.display()), e);
    let mut cb = cab::CabinetBuilder::new();
    // A fixed time: the same inputs give the same bytes.
    let stamp = time::PrimitiveDateTime::new(
        time::Date::from_calendar_date(2000, time::Month::January, 1)
            .map_err(|e| Error::invalid(format!("cabinet date: {e}")))?,
        time::Time::MIDNIGHT,
    );
    {
        let f = cb.add_folder(cab::CompressionType::MsZip);
        for it in items.iter().filter(|i| i.sft.is_none()) {
            f.add_file(it.key.clone()).set_datetime(stamp);
        }
    }
    if let Some(it) = items.iter().find(|i| i.sft.is_some()) {
        cb.add_folder(cab::CompressionType::None)
            .add_file(it.key.clone())
            .set_datetime(stamp);
    }
    let stream = db.write_stream(CABINET).map_err(ioe)?;
    let mut cw = cb.build(stream).map_err(ioe)?;
    let mut k = 0;
    while let Some(mut fw) = cw.next_file().map_err(ioe)? {
        let (it, (_, want)) = (&items[k], &hashes[k]);
        k += 1;
        let mut h = blake3::Hasher::new();
        if let Some(b) = it.bytes {
            fw.write_all(b).map_err(ioe)?;
            h.update(b);
        } else if let Some((path, len)) = it.sft {
            copy_file(path, len, &mut |b| {
                h.update(b);
                fw.write_all(b).map_err(ioe)
            })?;
        }
        if format!("blake3:{}", h.finalize().to_hex()) != *want {
            return Err(Error::invalid(format!(
                "`{}` changed while the MSI was written",
                it.rel
            )));
        }
    }
    cw.finish().map_err(ioe)?;
    Ok(())
}

/// The properties of an MSI that an install uses (`Property` table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsiProperties {
    /// `ProductCode`.
    pub product_code: Option<String>,
    /// `ProductName`.
    pub product_name: Option<String>,
    /// `ProductVersion`.
    pub product_version: Option<String>,
    /// `UpgradeCode`.
    pub upgrade_code: Option<String>,
    /// `MODE` as written (default: `STANDALONE` if the MSI carries an
    /// SFT, else `STREAMING`).
    pub mode: Option<String>,
    /// `OVERRIDEURL`.
    pub override_url: Option<String>,
    /// `LOAD` as written.
    pub load: Option<String>,
}

/// One file of an MSI that belongs to the package.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsiEntry {
    /// Its path relative to the manifest's folder, `/`-separated (as a
    /// bundle entry's name).
    pub name: String,
    /// What it holds.
    pub kind: EntryKind,
    /// Its size (`File.FileSize`, equal to the cabinet's).
    pub len: u64,
    /// Its `File` table key (its name in the cabinet).
    pub key: String,
}

/// What the reader holds: a file, or bytes (fuzzing, tests).
#[derive(Debug)]
enum Src {
    File(File),
    Mem(Cursor<Vec<u8>>),
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Src::File(f) => f.read(buf),
            Src::Mem(c) => c.read(buf),
        }
    }
}

impl Seek for Src {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match self {
            Src::File(f) => f.seek(pos),
            Src::Mem(c) => c.seek(pos),
        }
    }
}

/// An opened, fully checked Windows Installer file carrying an App-V
/// package's publishing files (see the module docs).
pub struct MsiPackage {
    db: RefCell<db::Db<Src>>,
    /// Each cabinet's files and sizes, once its structure has been checked.
    cabinets: RefCell<HashMap<String, HashMap<String, u32>>>,
    what: String,
    props: MsiProperties,
    entries: Vec<MsiEntry>,
    /// File key → (cabinet stream, expected BLAKE3).
    where_: HashMap<String, (String, Option<[u8; 32]>)>,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
}

impl std::fmt::Debug for MsiPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsiPackage")
            .field("what", &self.what)
            .field("props", &self.props)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// True if `head` starts like a Compound File (an MSI, or any other OLE
/// file).
pub fn is_cfb(head: &[u8]) -> bool {
    head.starts_with(&CFB_MAGIC)
}

/// One `File` row, as read.
struct FileRow {
    key: String,
    component: String,
    name: String,
    size: i64,
    sequence: i64,
}

impl MsiPackage {
    /// Open and check an MSI (see the module docs): every descriptor read
    /// and checked, the SFT's header and prologue checked (its blocks are
    /// checked when it is extracted, or by [`MsiPackage::check_sft`]).
    /// Memory stays linear in the file's tables plus one descriptor.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such file; [`Error::Msi`]
    /// naming the file and what is wrong for a damaged MSI, one that is
    /// not an installer database, or one that carries no App-V package
    /// (no manifest, a file it names missing or invalid, an unsafe path,
    /// sizes that disagree); [`Error::Io`].
    pub fn open(path: &Path) -> crate::Result<MsiPackage> {
        let f = super::open_input(path, "MSI")?;
        MsiPackage::from_src(Src::File(f), path.display().to_string())
    }

    /// [`MsiPackage::open`] on bytes in memory (`what` names them in
    /// errors).
    ///
    /// # Errors
    /// As [`MsiPackage::open`].
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> crate::Result<MsiPackage> {
        MsiPackage::from_src(Src::Mem(Cursor::new(bytes)), what.to_owned())
    }

    fn from_src(mut src: Src, what: String) -> crate::Result<MsiPackage> {
        let bad = |m: String| Error::Msi(format!("`{what}`: {m}"));
        let mut head = [0u8; 8];
        let n = read_up_to(&mut src, &mut head)
            .map_err(|e| Error::io(format!("reading `{what}`"), e))?;
        if !is_cfb(&head[..n]) {
            return Err(bad(
                "not a Windows Installer file (it does not start with the Compound File signature)"
                    .into(),
            ));
        }
        src.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("reading `{what}`"), e))?;
        // The container checked strictly first (a whole number of
        // sectors; header, DIFAT and FAT counts, chains), then read as a
        // database.
        let len = src
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("reading `{what}`"), e))?;
        src.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io(format!("reading `{what}`"), e))?;
        let comp = cfb::OpenOptions::new()
            .strict()
            .open_with(src)
            .map_err(|e| bad(format!("not a valid Compound File: {e}")))?;
        let sector = comp.version().sector_len() as u64;
        if len % sector != 0 {
            return Err(bad(format!(
                "truncated or padded: {len} bytes is not a whole number of {sector}-byte sectors"
            )));
        }
        let mut db = db::Db::open(comp).map_err(&bad)?;
        let props = read_properties(&mut db).map_err(&bad)?;
        let dirs = read_directories(&mut db).map_err(&bad)?;
        let comps = read_pairs(&mut db, "Component", "Component", "Directory_").map_err(&bad)?;
        let files = read_files(&mut db).map_err(&bad)?;
        let media = read_media(&mut db).map_err(&bad)?;
        let declared = read_hashes(&mut db).map_err(&bad)?;
        let manifest_key = read_pairs(&mut db, "Property", "Property", "Value")
            .map_err(&bad)?
            .remove("SFTMANIFEST");

        // Every file's folder, as path components from the root (each
        // folder's path built once).
        let mut folders: HashMap<&str, std::rc::Rc<Vec<String>>> = HashMap::new();
        let mut paths: HashMap<&str, std::rc::Rc<Vec<String>>> = HashMap::new();
        for f in &files {
            let dir = comps.get(&f.component).ok_or_else(|| {
                bad(format!(
                    "file `{}` belongs to component `{}`, which the Component table lacks",
                    f.key, f.component
                ))
            })?;
            let folder = match folders.get(dir.as_str()) {
                Some(p) => std::rc::Rc::clone(p),
                None => {
                    let p = std::rc::Rc::new(dir_path(&dirs, dir).map_err(&bad)?);
                    folders.insert(dir, std::rc::Rc::clone(&p));
                    p
                }
            };
            paths.insert(&f.key, folder);
        }
        // The manifest: SFTMANIFEST, else the one `*_manifest.xml`, else
        // the one `.xml`.
        let lname = |f: &FileRow| f.name.to_ascii_lowercase();
        let candidates: Vec<&FileRow> = match manifest_key.as_deref() {
            Some(k) => files.iter().filter(|f| f.key == k).collect(),
            None => {
                let m: Vec<&FileRow> = files
                    .iter()
                    .filter(|f| lname(f).ends_with("_manifest.xml"))
                    .collect();
                if m.is_empty() {
                    files
                        .iter()
                        .filter(|f| lname(f).ends_with(".xml"))
                        .collect()
                } else {
                    m
                }
            }
        };
        let mrow = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(bad(
                    "it carries no App-V package: no manifest (`NAME_manifest.xml`) in its File table"
                        .into(),
                ));
            }
            many => {
                return Err(bad(format!(
                    "it carries {} manifests ({}); an MSI publishes one package",
                    many.len(),
                    many.iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let mfolder = paths[mrow.key.as_str()].clone();
        // Relative names under the manifest's folder.
        let mut by_rel: BTreeMap<String, &FileRow> = BTreeMap::new();
        for f in &files {
            let folder = &paths[f.key.as_str()];
            let Some(rest) = folder.strip_prefix(mfolder.as_slice()) else {
                continue;
            };
            let mut parts = rest.to_vec();
            parts.push(f.name.clone());
            let rel = parts.join("/");
            if let Some(p) = name_problem(&rel) {
                return Err(bad(format!(
                    "file `{}` has an unsafe path `{rel}` ({p})",
                    f.key
                )));
            }
            if by_rel.insert(rel.clone(), f).is_some() {
                return Err(bad(format!("two files install as `{rel}`")));
            }
        }

        let mut pkg = MsiPackage {
            db: RefCell::new(db),
            cabinets: RefCell::new(HashMap::new()),
            what: what.clone(),
            props,
            entries: Vec::new(),
            where_: HashMap::new(),
            manifest: Manifest::default(),
            manifest_bytes: Vec::new(),
        };
        let locate = |f: &FileRow| -> Result<(String, Option<[u8; 32]>), Error> {
            let cab = media
                .iter()
                .find(|(last, _)| f.sequence <= *last)
                .map(|(_, c)| c.clone())
                .ok_or_else(|| {
                    bad(format!(
                        "file `{}` (Sequence {}) is on no Media row",
                        f.key, f.sequence
                    ))
                })?;
            let cab = cab.ok_or_else(|| {
                bad(format!(
                    "file `{}` is not in an embedded cabinet (`#NAME` in the Media table); external cabinets and uncompressed sources are not read",
                    f.key
                ))
            })?;
            Ok((cab, declared.get(&f.key).copied()))
        };
        let add =
            |pkg: &mut MsiPackage, rel: &str, f: &FileRow, kind: EntryKind| -> Result<(), Error> {
                let len = u64::try_from(f.size).map_err(|_| {
                    bad(format!(
                        "file `{}` has a negative FileSize {}",
                        f.key, f.size
                    ))
                })?;
                if len > kind.max_len() && kind != EntryKind::Sft {
                    return Err(bad(format!(
                        "{kind} `{rel}` is {len} bytes, more than the {} allowed",
                        kind.max_len()
                    )));
                }
                pkg.where_.insert(f.key.clone(), locate(f)?);
                pkg.entries.push(MsiEntry {
                    name: rel.to_owned(),
                    kind,
                    len,
                    key: f.key.clone(),
                });
                Ok(())
            };
        let mrel = mrow.name.clone();
        add(&mut pkg, &mrel, mrow, EntryKind::Manifest)?;
        let mbytes = pkg.read_entry(0)?;
        let manifest = Manifest::parse(&mbytes)
            .map_err(|e| bad(format!("its manifest `{mrel}` does not parse: {e}")))?;
        // The files the manifest names, as a bundle holds them.
        let mut kinds: BTreeMap<String, EntryKind> = BTreeMap::new();
        kinds.insert(mrel.clone(), EntryKind::Manifest);
        for app in crate::bundle::manifest_ref_values(&manifest) {
            if let Ok(n) = ref_name(&app.0) {
                kinds.entry(n).or_insert(app.1);
            }
        }
        check_refs(&manifest, "the MSI", |n| {
            by_rel
                .contains_key(n)
                .then(|| kinds.get(n).copied())
                .flatten()
        })
        .map_err(|m| bad(format!("its manifest's {m}")))?;
        for (rel, kind) in &kinds {
            if *kind == EntryKind::Manifest {
                continue;
            }
            let f = by_rel[rel.as_str()];
            add(&mut pkg, rel, f, *kind)?;
        }
        let sfts: Vec<(&String, &&FileRow)> = by_rel
            .iter()
            .filter(|(r, _)| r.to_ascii_lowercase().ends_with(".sft") && !kinds.contains_key(*r))
            .collect();
        match sfts.as_slice() {
            [] => {}
            [(rel, f)] => add(&mut pkg, rel, f, EntryKind::Sft)?,
            many => {
                return Err(bad(format!(
                    "it carries {} SFT files ({}); a stand-alone MSI carries one",
                    many.len(),
                    many.iter()
                        .map(|(r, _)| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        // Read and check every entry now (descriptors parsed, icons
        // validated, the SFT streamed and its prologue checked).
        for i in 1..pkg.entries.len() {
            let e = pkg.entries[i].clone();
            match e.kind {
                EntryKind::Osd => {
                    let b = pkg.read_entry(i)?;
                    Osd::parse(&b)
                        .map_err(|err| bad(format!("OSD `{}` does not parse: {err}", e.name)))?;
                }
                EntryKind::Icon => {
                    let b = pkg.read_entry(i)?;
                    validate_icon(&b)
                        .map_err(|err| bad(format!("`{}` is not a valid icon: {err}", e.name)))?;
                }
                EntryKind::Sft => {
                    // Its header, then its prologue (bounded), read and
                    // checked; its blocks are checked when it is extracted
                    // (its hash; and an install verifies every block).
                    let prologue = {
                        let head = pkg.read_prefix(i, crate::format::HEADER_LEN as u64)?;
                        crate::format::Header::parse(&head)
                            .map(|h| h.prologue_len.min(super::MAX_SFT_PROLOGUE))
                            .map_err(|err| bad(format!("`{}` is not a valid SFT: {err}", e.name)))?
                    };
                    let head = pkg.read_prefix(i, prologue)?;
                    let guids = check_sft_bytes(e.len, &head)
                        .map_err(|err| bad(format!("`{}` is not a valid SFT: {err}", e.name)))?;
                    match_package(&manifest, guids, e.len).map_err(|m| {
                        bad(format!("`{}` does not belong to the manifest: {m}", e.name))
                    })?;
                }
                EntryKind::Manifest => {}
            }
        }
        pkg.manifest = manifest;
        pkg.manifest_bytes = mbytes;
        Ok(pkg)
    }

    /// Copy entry `i` out of its cabinet through `sink` in pieces, checking
    /// its size against the File table (before and after) and its BLAKE3
    /// when the MSI declares one.
    fn copy_entry(
        &self,
        i: usize,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.copy_entry_upto(i, u64::MAX, sink)
    }

    /// The first `max` bytes of entry `i` (all of it, if shorter), its
    /// sizes checked (its hash only when it is read whole).
    fn read_prefix(&self, i: usize, max: u64) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        self.copy_entry_upto(i, max, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// [`MsiPackage::copy_entry`] of at most the first `max` bytes.
    fn copy_entry_upto(
        &self,
        i: usize,
        max: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let e = &self.entries[i];
        let upto = e.len.min(max);
        let bad = |m: String| Error::Msi(format!("`{}`: {m}", self.what));
        let (cabname, hash) = &self.where_[&e.key];
        let mut db = self.db.borrow_mut();
        let mut stream = db
            .stream(cabname)
            .map_err(|err| bad(format!("cabinet `{cabname}`: {err}")))?;
        // The cabinet's structure checked once, before the `cab` crate
        // reads it.
        let size = {
            let mut checked = self.cabinets.borrow_mut();
            if !checked.contains_key(cabname) {
                let len = stream.len();
                let files = cabinet::check(&mut stream, len).map_err(|err| {
                    bad(format!("cabinet `{cabname}` is not a valid cabinet: {err}"))
                })?;
                checked.insert(cabname.clone(), files);
            }
            checked[cabname].get(&e.key).copied().ok_or_else(|| {
                bad(format!(
                    "cabinet `{cabname}` has no file `{}` ({})",
                    e.key, e.name
                ))
            })?
        };
        if u64::from(size) != e.len {
            return Err(bad(format!(
                "`{}`: the cabinet says {size} bytes, the File table {}",
                e.name, e.len
            )));
        }
        stream
            .seek(SeekFrom::Start(0))
            .map_err(|err| bad(format!("cabinet `{cabname}`: {err}")))?;
        let mut cabinet = cab::Cabinet::new(stream)
            .map_err(|err| bad(format!("cabinet `{cabname}` is not a valid cabinet: {err}")))?;
        let mut r = cabinet
            .read_file(&e.key)
            .map_err(|err| bad(format!("cabinet `{cabname}`, `{}`: {err}", e.name)))?;
        let mut h = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut done = 0u64;
        while done < upto {
            let want = buf
                .len()
                .min(usize::try_from(upto - done).unwrap_or(usize::MAX));
            let n = r.read(&mut buf[..want]).map_err(|err| {
                bad(format!(
                    "cabinet `{cabname}`, `{}` at byte {done}: {err}",
                    e.name
                ))
            })?;
            if n == 0 {
                return Err(bad(format!(
                    "cabinet `{cabname}`: `{}` ends at byte {done} of {}",
                    e.name, e.len
                )));
            }
            h.update(&buf[..n]);
            sink(&buf[..n])?;
            done += n as u64;
        }
        if let Some(want) = hash
            && upto == e.len
            && h.finalize().as_bytes() != want
        {
            return Err(bad(format!(
                "`{}` does not match its BLAKE3 in the SftFileHash table",
                e.name
            )));
        }
        Ok(())
    }

    fn read_entry(&self, i: usize) -> Result<Vec<u8>, Error> {
        // Grown as checked bytes arrive (at most the kind's limit, checked
        // when the entry was added): the File table's size is a claim.
        let mut out = Vec::new();
        self.copy_entry(i, &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// The properties an install uses.
    pub fn properties(&self) -> &MsiProperties {
        &self.props
    }

    /// `MODE`: as written, else stand-alone if the MSI carries the SFT.
    ///
    /// # Errors
    /// [`Error::Msi`] for a `MODE` that is neither.
    pub fn mode(&self) -> crate::Result<Mode> {
        match self.props.mode.as_deref().filter(|m| !m.trim().is_empty()) {
            Some(m) => Mode::parse(m).map_err(|e| Error::Msi(format!("`{}`: {e}", self.what))),
            None if self.has_sft() => Ok(Mode::Standalone),
            None => Ok(Mode::Streaming),
        }
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's bytes.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The package's files: the manifest first, then the OSDs and icons it
    /// names, then the SFT if the MSI carries one.
    pub fn entries(&self) -> &[MsiEntry] {
        &self.entries
    }

    /// True if the MSI carries the SFT.
    pub fn has_sft(&self) -> bool {
        self.entries.iter().any(|e| e.kind == EntryKind::Sft)
    }

    /// The SFT entry, if any.
    pub fn sft_entry(&self) -> Option<&MsiEntry> {
        self.entries.iter().find(|e| e.kind == EntryKind::Sft)
    }

    /// Read a manifest, OSD or icon by its name (relative to the
    /// manifest's folder), checked again.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::InvalidInput`] for the SFT;
    /// [`Error::Msi`] if its bytes changed.
    pub fn read(&self, name: &str) -> crate::Result<Vec<u8>> {
        let i = self
            .entries
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| Error::NotFound(format!("MSI `{}` has no file `{name}`", self.what)))?;
        if self.entries[i].kind == EntryKind::Sft {
            return Err(Error::invalid(format!(
                "MSI `{}`: `{name}` is the SFT; extract it to a file instead",
                self.what
            )));
        }
        self.read_entry(i)
    }

    /// Read the SFT through and check it (its sizes, the cabinet's
    /// checksums and, when declared, its BLAKE3), writing nothing: what
    /// [`MsiPackage::open`] leaves to extraction. Ok without an SFT.
    ///
    /// # Errors
    /// [`Error::Msi`] naming what does not match.
    pub fn check_sft(&self) -> crate::Result<()> {
        match self.entries.iter().position(|e| e.kind == EntryKind::Sft) {
            Some(i) => self.copy_entry(i, &mut |_| Ok(())),
            None => Ok(()),
        }
    }

    /// Copy the SFT to `out` atomically, checked while copying; on any
    /// error nothing is left at `out`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the MSI carries no SFT; [`Error::Msi`];
    /// [`Error::Io`] naming `out`.
    pub fn extract_sft(&self, out: &Path) -> crate::Result<()> {
        let i = self
            .entries
            .iter()
            .position(|e| e.kind == EntryKind::Sft)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "MSI `{}` carries no SFT (it publishes a package that streams from a server)",
                    self.what
                ))
            })?;
        atomic_write(out, |w| {
            self.copy_entry(i, &mut |b| w.write_all(b).map_err(io_at("writing", out)))
        })
    }

    /// Write the manifest, OSDs and icons (not the SFT) under `dir` (absent
    /// or an empty folder) at their names, the layout
    /// `%SFT_MIME_SOURCE%/…` expects, each checked again as it is copied,
    /// and return the manifest's path there. All or nothing: written into
    /// a temporary folder beside `dir`, synced and renamed.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `dir` exists and is not an empty folder;
    /// [`Error::Msi`]; [`Error::Io`].
    pub fn unpack_descriptors(&self, dir: &Path) -> crate::Result<PathBuf> {
        let files: Vec<(usize, &str)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind != EntryKind::Sft)
            .map(|(i, e)| (i, e.name.as_str()))
            .collect();
        super::unpack_into(dir, &files, &mut |i, w, target| {
            self.copy_entry(i, &mut |b| w.write_all(b).map_err(io_at("writing", target)))
        })?;
        Ok(dir.join(&self.entries[0].name))
    }
}

/// Read into `buf` until it is full or the reader ends; the count read.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The database an MSI is read through.
type Database = db::Db<Src>;

/// `key column → value column` of a table (rows with either null are
/// skipped).
fn read_pairs(
    db: &mut Database,
    table: &str,
    key: &str,
    value: &str,
) -> Result<HashMap<String, String>, String> {
    let rows = db.rows(table)?;
    let mut out = HashMap::new();
    for i in 0..rows.len() {
        if let (Some(k), Some(v)) = (rows.str(i, key)?, rows.str(i, value)?) {
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn read_properties(db: &mut Database) -> Result<MsiProperties, String> {
    let p = read_pairs(db, "Property", "Property", "Value")?;
    let get = |k: &str| p.get(k).cloned().filter(|v| !v.is_empty());
    Ok(MsiProperties {
        product_code: get("ProductCode"),
        product_name: get("ProductName"),
        product_version: get("ProductVersion"),
        upgrade_code: get("UpgradeCode"),
        mode: get("MODE"),
        override_url: get("OVERRIDEURL"),
        load: get("LOAD"),
    })
}

/// Directory key → (parent, this folder's name or `None` for `.` and the
/// root).
type Dirs = HashMap<String, (Option<String>, Option<String>)>;

fn read_directories(db: &mut Database) -> Result<Dirs, String> {
    let rows = db.rows("Directory")?;
    let mut out = Dirs::new();
    for i in 0..rows.len() {
        let key = rows
            .str(i, "Directory")?
            .ok_or("a Directory row without a key")?;
        let parent = rows.str(i, "Directory_Parent")?.filter(|p| *p != key);
        if key.len() > MAX_IDENTIFIER || parent.as_ref().is_some_and(|p| p.len() > MAX_IDENTIFIER) {
            return Err("the Directory table has an identifier longer than 72 bytes".into());
        }
        let default = rows.str(i, "DefaultDir")?.unwrap_or_default();
        // DefaultDir is `target[:source]`, each `short|long` or one name.
        let target = default.split(':').next().unwrap_or("");
        let long = target.rsplit('|').next().unwrap_or("");
        let name = if parent.is_none() || long == "." || long.is_empty() {
            None
        } else {
            if let Some(p) = component_problem(long) {
                return Err(format!("folder `{key}` has an unsafe name `{long}` ({p})"));
            }
            Some(long.to_owned())
        };
        out.insert(key, (parent, name));
    }
    Ok(out)
}

/// The folder names from the root down to `dir`: at most
/// [`MAX_DIR_DEPTH`] deep and [`super::MAX_NAME_LEN`] bytes long.
fn dir_path(dirs: &Dirs, dir: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut bytes = 0;
    let mut at = dir.to_owned();
    for _ in 0..MAX_DIR_DEPTH {
        let (parent, name) = dirs
            .get(&at)
            .ok_or_else(|| format!("folder `{at}` is not in the Directory table"))?;
        if let Some(n) = name {
            bytes += n.len() + 1;
            if bytes > super::MAX_NAME_LEN {
                return Err(format!(
                    "folder `{dir}`'s path is longer than {} bytes",
                    super::MAX_NAME_LEN
                ));
            }
            names.push(n.clone());
        }
        match parent {
            Some(p) => at.clone_from(p),
            None => {
                names.reverse();
                return Ok(names);
            }
        }
    }
    Err(format!(
        "folder `{dir}` is nested more than {MAX_DIR_DEPTH} deep (or its parents loop)"
    ))
}

fn read_files(db: &mut Database) -> Result<Vec<FileRow>, String> {
    let rows = db.rows("File")?;
    let mut out = Vec::new();
    for i in 0..rows.len() {
        let key = rows.str(i, "File")?.ok_or("a File row without a key")?;
        let component = rows
            .str(i, "Component_")?
            .ok_or_else(|| format!("file `{key}` has no component"))?;
        for id in [&key, &component] {
            if id.len() > MAX_IDENTIFIER {
                return Err(format!(
                    "the File table has an identifier of {} bytes",
                    id.len()
                ));
            }
        }
        let fname = rows
            .str(i, "FileName")?
            .ok_or_else(|| format!("file `{key}` has no FileName"))?;
        let long = fname.rsplit('|').next().unwrap_or("").to_owned();
        if let Some(p) = component_problem(&long) {
            return Err(format!("file `{key}` has an unsafe name `{long}` ({p})"));
        }
        let size = rows
            .int(i, "FileSize")?
            .ok_or_else(|| format!("file `{key}` has no FileSize"))?;
        let sequence = rows
            .int(i, "Sequence")?
            .ok_or_else(|| format!("file `{key}` has no Sequence"))?;
        out.push(FileRow {
            key,
            component,
            name: long,
            size,
            sequence,
        });
    }
    Ok(out)
}

/// Media rows by `LastSequence`, ascending: (last sequence, embedded
/// cabinet stream if `#NAME`).
fn read_media(db: &mut Database) -> Result<Vec<(i64, Option<String>)>, String> {
    let rows = db.rows("Media")?;
    let mut out = Vec::new();
    for i in 0..rows.len() {
        let last = rows.int(i, "LastSequence")?.unwrap_or(0);
        let cab = rows
            .str(i, "Cabinet")?
            .and_then(|c| c.strip_prefix('#').map(str::to_owned));
        out.push((last, cab));
    }
    out.sort_by_key(|m| m.0);
    Ok(out)
}

/// `SftFileHash`: File key → BLAKE3 (absent table: none).
fn read_hashes(db: &mut Database) -> Result<HashMap<String, [u8; 32]>, String> {
    let mut out = HashMap::new();
    for (k, v) in read_pairs(db, "SftFileHash", "File_", "Hash")? {
        let hex = v
            .strip_prefix("blake3:")
            .ok_or_else(|| format!("SftFileHash of `{k}` is not `blake3:HEX`"))?;
        let h = blake3::Hash::from_hex(hex).map_err(|e| format!("SftFileHash of `{k}`: {e}"))?;
        out.insert(k, *h.as_bytes());
    }
    Ok(out)
}
