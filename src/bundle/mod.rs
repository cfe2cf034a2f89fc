//! `.sftb` bundles (feature `bundle`): a manifest, its OSDs and icons and,
//! for stand-alone delivery, the SFT itself, in one checksummed file.
//! The byte layout is specified in `docs/BUNDLE.md`.
//!
//! - [`write_bundle`] reads a manifest, collects every OSD and icon it
//!   references under `%SFT_MIME_SOURCE%` (the manifest's folder), checks
//!   each (OSDs parse, icons are real icons, the SFT is a valid package of
//!   the manifest's GUID) and writes the bundle atomically. The same inputs
//!   give the same bytes.
//! - [`Bundle::open`] checks the header, the table of contents and every
//!   entry's CRC-32 (the SFT streamed in bounded memory, never loaded
//!   whole), then what the entries mean: the manifest and OSDs parse, the
//!   icons validate, every file the manifest names is in the bundle, the
//!   SFT's prologue is sound and its GUID is the manifest's.
//! - [`Bundle::read`], [`Bundle::extract_sft`] and [`Bundle::unpack`] check
//!   each CRC again while reading: a damaged byte is an [`Error::Bundle`]
//!   naming the file, the entry and the offset, never data.
//!
//! ```
//! # fn main() -> sft::Result<()> {
//! use sft::bundle::{Bundle, BundleOptions, EntryKind, write_bundle};
//! let dir = std::env::temp_dir().join(format!("sftb-doc-{}", std::process::id()));
//! std::fs::create_dir_all(dir.join("Editor Icons")).map_err(|e| sft::Error::io("mkdir", e))?;
//! let w = |p: &str, b: &[u8]| std::fs::write(dir.join(p), b).map_err(|e| sft::Error::io(p, e));
//! w("Editor.osd", br#"<SOFTPKG NAME="Editor"><IMPLEMENTATION><CODEBASE HREF="rtsp://srv/e.sft"/></IMPLEMENTATION></SOFTPKG>"#)?;
//! w("Editor Icons/e.ico", &sft::publish::tiny_icon())?;
//! w("Editor_manifest.xml", br#"<MANIFEST><APPLIST><APP NAME="Editor"
//!     OSD="%SFT_MIME_SOURCE%/Editor.osd" ICON="%SFT_MIME_SOURCE%/Editor Icons/e.ico"/></APPLIST></MANIFEST>"#)?;
//!
//! let out = dir.join("Editor.sftb");
//! let summary = write_bundle(&dir.join("Editor_manifest.xml"), &BundleOptions::default(), &out)?;
//! assert_eq!(summary.entries, 3);
//!
//! let b = Bundle::open(&out)?;
//! assert_eq!(b.manifest().apps.items[0].name.as_deref(), Some("Editor"));
//! assert_eq!(b.entries()[1].kind, EntryKind::Icon);
//! assert_eq!(b.read("Editor Icons/e.ico")?, sft::publish::tiny_icon());
//! assert!(!b.has_sft());
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

pub(crate) mod container;
#[cfg(feature = "msi")]
pub mod msi;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use container::{Content, Ctx, RawEntry, Source, WriteEntry};
pub use container::{MAX_COMPONENT_LEN, MAX_DESCRIPTOR_BYTES, MAX_ENTRIES, MAX_NAME_LEN};

use crate::error::Error;
use crate::format::guid::Guid;
use crate::format::{HEADER_LEN as SFT_HEADER_LEN, Header};
use crate::publish::{Manifest, Osd, expand_vars, to_source, validate_icon};
use crate::read::Prologue;

/// Largest SFT prologue (header, metadata, directory, block index) the
/// bundle code reads to check an SFT.
pub const MAX_SFT_PROLOGUE: u64 = 256 << 20;
/// Most bytes of manifest, OSDs and icons together that [`write_bundle`]
/// holds in memory.
pub const MAX_DESCRIPTOR_TOTAL: u64 = 256 << 20;

/// What [`write_bundle`] puts in a bundle besides the manifest, OSDs and icons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleOptions {
    /// Include the SFT (a stand-alone bundle).
    pub with_sft: bool,
    /// The SFT to include; `None` resolves it from the manifest's `PACKAGE
    /// HREF` (or the first `APP`'s OSD `CODEBASE HREF`) as a local file,
    /// with `%SFT_MIME_SOURCE%` = the manifest's folder. Setting it
    /// implies [`BundleOptions::with_sft`].
    pub sft: Option<PathBuf>,
}

impl BundleOptions {
    /// Options for a bundle with the SFT (`sft`: an explicit path, or
    /// `None` to resolve it from the manifest).
    ///
    /// ```
    /// let o = sft::bundle::BundleOptions::with_sft(None);
    /// assert!(o.with_sft);
    /// ```
    pub fn with_sft(sft: Option<PathBuf>) -> Self {
        BundleOptions {
            with_sft: true,
            sft,
        }
    }
}

/// What [`write_bundle`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleSummary {
    /// Entries in the bundle (manifest, OSDs, icons, SFT).
    pub entries: usize,
    /// The bundle's size in bytes.
    pub bytes: u64,
    /// The SFT entry's size, if the bundle carries the SFT.
    pub sft_bytes: Option<u64>,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EntryKind {
    /// The manifest (exactly one, the first entry).
    Manifest,
    /// An OSD file.
    Osd,
    /// An `.ico` icon.
    Icon,
    /// The SFT package (at most one, the last entry, 4096-aligned).
    Sft,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryKind::Manifest => "manifest",
            EntryKind::Osd => "osd",
            EntryKind::Icon => "icon",
            EntryKind::Sft => "sft",
        })
    }
}

/// One entry of a bundle, as its table of contents records it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BundleEntry {
    /// A safe relative path with `/` separators (no `..`, not absolute,
    /// no `\`, `:`, NUL or control characters), where [`Bundle::unpack`]
    /// puts the entry; `%SFT_MIME_SOURCE%/NAME` in the manifest.
    pub name: String,
    /// What the entry holds.
    pub kind: EntryKind,
    /// Length of the entry's data in bytes.
    pub len: u64,
    /// Absolute offset of the data in the bundle file (4096-aligned for
    /// the SFT, so it can be served or mapped in place).
    pub offset: u64,
    /// CRC-32 (IEEE, as `crc32fast`) of the data.
    pub crc32: u32,
}

/// An opened, fully checked bundle.
///
/// Holds the file open; entries are read from it on demand and checked
/// again, so a file damaged after [`Bundle::open`] still never yields bad
/// data.
#[derive(Debug)]
pub struct Bundle {
    src: Source,
    ctx: Ctx,
    raw: Vec<RawEntry>,
    entries: Vec<BundleEntry>,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
}

/// A reference from the manifest to a file the bundle must carry.
#[derive(Debug, Clone)]
struct Ref {
    /// Where it is, for messages: "APP OSD of `Editor`".
    attr: String,
    value: String,
    kind: EntryKind,
}

/// Every OSD and icon reference in a manifest, in document order.
fn manifest_refs(m: &Manifest) -> Vec<Ref> {
    let mut refs = Vec::new();
    for (i, app) in m.apps.items.iter().enumerate() {
        let who = match &app.name {
            Some(n) => format!("`{n}`"),
            None => format!("number {}", i + 1),
        };
        let mut push = |attr: String, v: &Option<String>, kind| {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                refs.push(Ref {
                    attr,
                    value: v.to_owned(),
                    kind,
                });
            }
        };
        push(format!("APP OSD of app {who}"), &app.osd, EntryKind::Osd);
        push(format!("APP ICON of app {who}"), &app.icon, EntryKind::Icon);
        if let Some(l) = &app.shortcuts {
            for s in &l.items {
                push(
                    format!("SHORTCUT ICON of app {who}"),
                    &s.icon,
                    EntryKind::Icon,
                );
            }
        }
        if let Some(l) = &app.file_types {
            for f in &l.items {
                let ext = f.extension.as_deref().unwrap_or("?");
                push(
                    format!("FILETYPE ICON (.{ext}) of app {who}"),
                    &f.icon,
                    EntryKind::Icon,
                );
            }
        }
    }
    refs
}

/// The entry name a manifest reference stands for: `%SFT_MIME_SOURCE%/PATH`
/// or a relative `PATH` (either separator), normalised to `/`, `.` and
/// empty components dropped. Anything else (a URL, an absolute or UNC
/// path, a drive, another variable, `..`) is refused with the reason.
pub(crate) fn ref_name(value: &str) -> Result<String, String> {
    const VAR: &str = "%SFT_MIME_SOURCE%";
    let v = value.trim();
    let rest = match v.get(..VAR.len()) {
        Some(p) if p.eq_ignore_ascii_case(VAR) => {
            let r = &v[VAR.len()..];
            if !(r.starts_with('/') || r.starts_with('\\')) {
                return Err("nothing after %SFT_MIME_SOURCE% names a file".into());
            }
            r
        }
        _ => {
            if v.contains("://") {
                return Err("is a URL".into());
            }
            if v.starts_with('/') || v.starts_with('\\') {
                return Err("is an absolute or UNC path".into());
            }
            if v.as_bytes().get(1) == Some(&b':') {
                return Err("is a path on a drive".into());
            }
            v
        }
    };
    if expand_vars(rest, |_| None).is_err() {
        return Err("uses an environment variable other than a leading %SFT_MIME_SOURCE%".into());
    }
    let mut parts = Vec::new();
    for c in rest.split(['/', '\\']) {
        match c {
            "" | "." => {}
            ".." => return Err("leaves the manifest's folder (`..`)".into()),
            c => parts.push(c),
        }
    }
    let name = parts.join("/");
    if let Some(p) = container::name_problem(&name) {
        return Err(format!("is not a safe relative path ({p})"));
    }
    Ok(name)
}

/// True if `head` starts with a bundle's signature.
pub fn is_bundle(head: &[u8]) -> bool {
    head.starts_with(&container::MAGIC)
}

/// Every OSD and icon reference of `m`: (value, kind), in document order.
#[cfg(feature = "msi")]
pub(crate) fn manifest_ref_values(m: &Manifest) -> Vec<(String, EntryKind)> {
    manifest_refs(m)
        .into_iter()
        .map(|r| (r.value, r.kind))
        .collect()
}

#[cfg(feature = "msi")]
/// [`check_sft`] on the first bytes of an SFT of `len` bytes (at least
/// its prologue, or all of it if shorter than [`MAX_SFT_PROLOGUE`]).
pub(crate) fn check_sft_bytes(len: u64, head: &[u8]) -> Result<(Guid, Guid), Error> {
    check_sft(len, &|off, buf| {
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| head.get(start..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    })
}

/// Every OSD and icon reference of `m` must name an entry of that kind
/// (`find`: an entry's kind by name); the message names the first that
/// does not, and `what` holds the entries ("the bundle").
pub(crate) fn check_refs(
    m: &Manifest,
    what: &str,
    find: impl Fn(&str) -> Option<EntryKind>,
) -> Result<(), String> {
    for r in manifest_refs(m) {
        let found = ref_name(&r.value).ok().and_then(|n| find(&n));
        if found != Some(r.kind) {
            return Err(format!(
                "{} `{}` names no {} entry of {what}",
                r.attr, r.value, r.kind
            ));
        }
    }
    Ok(())
}

/// What a valid SFT's prologue says: package GUID and version GUID.
pub(crate) fn check_sft(
    len: u64,
    read_at: &dyn Fn(u64, &mut [u8]) -> std::io::Result<()>,
) -> Result<(Guid, Guid), Error> {
    if len < SFT_HEADER_LEN as u64 {
        return Err(Error::invalid(format!(
            "{len} bytes, shorter than an SFT header"
        )));
    }
    let mut h = [0u8; SFT_HEADER_LEN];
    read_at(0, &mut h).map_err(|e| Error::io("reading the SFT header", e))?;
    let header = Header::parse(&h)?;
    if header.package_len() != len {
        return Err(Error::invalid(format!(
            "the SFT header says {} bytes, the file has {len}",
            header.package_len()
        )));
    }
    if header.prologue_len > MAX_SFT_PROLOGUE {
        return Err(Error::invalid(format!(
            "SFT prologue of {} bytes, more than the {MAX_SFT_PROLOGUE} this reader checks",
            header.prologue_len
        )));
    }
    // Bounded above and inside the file (prologue_len <= package_len == len).
    let mut pro = vec![0u8; header.prologue_len as usize];
    read_at(0, &mut pro).map_err(|e| Error::io("reading the SFT prologue", e))?;
    let p = Prologue::parse(&pro)?;
    let m = p.metadata();
    Ok((m.package_guid(), m.version_guid()))
}

/// Compare an SFT's GUIDs with what the manifest's `PACKAGE` says.
pub(crate) fn match_package(m: &Manifest, guids: (Guid, Guid), len: u64) -> Result<(), String> {
    let Some(p) = &m.package else { return Ok(()) };
    for (attr, want, have) in [
        ("GUID", &p.guid, guids.0),
        ("VERSIONGUID", &p.version_guid, guids.1),
    ] {
        if let Some(w) = want.as_deref().filter(|w| !w.trim().is_empty()) {
            let w: Guid = w
                .parse()
                .map_err(|e| format!("the manifest's PACKAGE {attr}: {e}"))?;
            if w != have {
                return Err(format!(
                    "the SFT's package {} is {have}, the manifest's PACKAGE {attr} is {w}",
                    if attr == "GUID" {
                        "GUID"
                    } else {
                        "version GUID"
                    }
                ));
            }
        }
    }
    if let Some(size) = p.size
        && size != len
    {
        return Err(format!(
            "the SFT is {len} bytes, the manifest's PACKAGE SIZE is {size}"
        ));
    }
    Ok(())
}

/// Write `files` (index, `/`-separated safe name) under `dir` (absent or
/// an empty folder), each through `fill`; all or nothing: into a temporary
/// folder beside `dir`, each file synced, the folder renamed into place.
pub(crate) fn unpack_into(
    dir: &Path,
    files: &[(usize, &str)],
    fill: &mut dyn FnMut(usize, &mut dyn Write, &Path) -> crate::Result<()>,
) -> crate::Result<()> {
    let exists = match std::fs::read_dir(dir) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(Error::invalid(format!(
                    "`{}` is not empty; unpack into a new or empty folder",
                    dir.display()
                )));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            if dir.exists() && !dir.is_dir() {
                return Err(Error::invalid(format!(
                    "`{}` exists and is not a folder",
                    dir.display()
                )));
            }
            return Err(Error::io(format!("reading `{}`", dir.display()), e));
        }
    };
    let (parent, tmp) = temp_beside(dir)?;
    std::fs::create_dir_all(&parent).map_err(io_at("creating", &parent))?;
    std::fs::create_dir(&tmp).map_err(io_at("creating a temporary folder for", dir))?;
    let mut guard = Cleanup {
        path: Some(tmp.clone()),
        dir: true,
    };
    for (i, name) in files {
        let mut target = tmp.clone();
        target.extend(name.split('/'));
        if let Some(p) = target.parent() {
            std::fs::create_dir_all(p).map_err(io_at("creating", p))?;
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io_at("creating", &target))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &f);
        fill(*i, &mut w, &target)?;
        w.flush().map_err(io_at("writing", &target))?;
        drop(w);
        f.sync_all().map_err(io_at("syncing", &target))?;
    }
    sync_dir(&tmp);
    if exists {
        std::fs::remove_dir(dir).map_err(io_at("replacing the empty folder", dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io_at("renaming into place", dir))?;
    guard.path = None;
    sync_dir(&parent);
    Ok(())
}

/// Open an input file: a missing one is [`Error::NotFound`] naming it as
/// `what` ("bundle", "MSI").
pub(crate) fn open_input(path: &Path, what: &str) -> crate::Result<File> {
    File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("{what} `{}`", path.display()))
        } else {
            Error::io(format!("opening `{}`", path.display()), e)
        }
    })
}

pub(crate) fn io_at(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let ctx = format!("{what} `{}`", path.display());
    move |e| Error::io(ctx, e)
}

/// The metadata of `path`, which must be a regular file: missing is
/// [`Error::NotFound`], anything else not a file is invalid input; `why`
/// names what referenced it.
fn file_metadata(path: &Path, why: &str) -> Result<std::fs::Metadata, Error> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(meta),
        Ok(_) => Err(Error::invalid(format!(
            "`{}` ({why}) is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(format!(
            "`{}` ({why}) does not exist",
            path.display()
        ))),
        Err(e) => Err(Error::io(
            format!("reading `{}` ({why})", path.display()),
            e,
        )),
    }
}

/// Read a file of at most `max` bytes; a missing file is
/// [`Error::NotFound`] naming `why` (the attribute that referenced it).
fn read_limited(path: &Path, max: u64, why: &str) -> Result<Vec<u8>, Error> {
    let meta = file_metadata(path, why)?;
    if meta.len() > max {
        return Err(Error::invalid(format!(
            "`{}` ({why}) is {} bytes, more than the {max} allowed",
            path.display(),
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(io_at("reading", path))?;
    if bytes.len() as u64 > max {
        return Err(Error::invalid(format!(
            "`{}` ({why}) grew past {max} bytes while being read",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The message of an error from a parser, with `what` in front, as
/// [`Error::InvalidInput`].
fn invalid_in(what: String, e: Error) -> Error {
    match e {
        Error::InvalidInput(m) => Error::InvalidInput(format!("{what}: {m}")),
        Error::NotFound(m) => Error::NotFound(format!("{what}: {m}")),
        other => Error::InvalidInput(format!("{what}: {other}")),
    }
}

/// Write a bundle of the manifest at `manifest`, every OSD and icon it
/// references (`APP OSD`/`ICON`, `SHORTCUT ICON`, `FILETYPE ICON`) and,
/// with [`BundleOptions::with_sft`], the SFT, to `out` — atomically
/// (a temporary file beside `out`, synced, renamed).
///
/// References must be `%SFT_MIME_SOURCE%/PATH` or a relative `PATH`, PATH
/// inside the manifest's folder (no `..`, no symlink out of it); each is
/// stored under that PATH, so [`Bundle::unpack`] recreates the layout the
/// manifest expects. OSDs must parse and icons must pass
/// [`validate_icon`]. The SFT must be a valid package (its header and
/// prologue are checked; its blocks are only CRC'd into the bundle) whose
/// package GUID, version GUID and size match the manifest's `PACKAGE`
/// attributes where present; it is stored under its path relative to the
/// manifest's folder, or its file name if it lies elsewhere. Output is
/// deterministic: entries are sorted by name, nothing depends on the time.
///
/// # Errors
/// - [`Error::InvalidInput`] for a manifest or OSD that does not parse, a
///   bad icon, a reference that is a URL, absolute, or outside the
///   manifest's folder, an invalid SFT or one that does not match the
///   manifest, or an SFT `HREF` that is not a local file — naming the file
///   and the manifest attribute;
/// - [`Error::NotFound`] naming the missing path and the attribute that
///   referenced it;
/// - [`Error::Io`] naming the path.
///
/// On any error no output file is left behind.
pub fn write_bundle(
    manifest: &Path,
    options: &BundleOptions,
    out: &Path,
) -> crate::Result<BundleSummary> {
    let c = collect(manifest, options)?;
    c.refuse_output(out)?;
    let Collected {
        mname,
        mbytes,
        files,
        sft,
        ..
    } = &c;
    let mut entries = vec![WriteEntry {
        name: mname.clone(),
        kind: EntryKind::Manifest,
        content: Content::Bytes(mbytes),
    }];
    for (name, (kind, bytes, _)) in files {
        entries.push(WriteEntry {
            name: name.clone(),
            kind: *kind,
            content: Content::Bytes(bytes),
        });
    }
    if let Some((name, path, len)) = sft {
        entries.push(WriteEntry {
            name: name.clone(),
            kind: EntryKind::Sft,
            content: Content::File(path, *len),
        });
    }
    let bytes = atomic_write(out, |w| {
        container::write_container(w, &entries, &out.display().to_string()).map(|(_, n)| n)
    })?;
    Ok(BundleSummary {
        entries: entries.len(),
        bytes,
        sft_bytes: sft.as_ref().map(|s| s.2),
    })
}

/// What a bundle or an MSI carries, read and checked from a manifest's
/// folder by [`collect`]: nothing is written yet.
pub(crate) struct Collected {
    /// The manifest's absolute path.
    pub(crate) mpath: PathBuf,
    /// The manifest's folder (`%SFT_MIME_SOURCE%`).
    pub(crate) folder: PathBuf,
    /// The manifest's file name.
    pub(crate) mname: String,
    /// The manifest's bytes.
    pub(crate) mbytes: Vec<u8>,
    /// The parsed manifest.
    #[cfg_attr(not(feature = "msi"), allow(dead_code))]
    pub(crate) manifest: Manifest,
    /// Every OSD and icon: name → (kind, bytes, the attribute naming it).
    pub(crate) files: BTreeMap<String, (EntryKind, Vec<u8>, String)>,
    /// The SFT: (name, path, length).
    pub(crate) sft: Option<(String, PathBuf, u64)>,
}

impl Collected {
    /// Refuse an output path that is one of the inputs (renaming over it
    /// would destroy it).
    pub(crate) fn refuse_output(&self, out: &Path) -> Result<(), Error> {
        if let Ok(canon_out) = std::fs::canonicalize(out) {
            let mut inputs = vec![self.mpath.clone()];
            inputs.extend(self.files.keys().map(|n| self.folder.join(n)));
            inputs.extend(self.sft.as_ref().map(|s| s.1.clone()));
            for p in inputs {
                if std::fs::canonicalize(&p).is_ok_and(|c| c == canon_out) {
                    return Err(Error::invalid(format!(
                        "the output `{}` is one of the inputs (`{}`)",
                        out.display(),
                        p.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Read and check a manifest, every OSD and icon it references and,
/// with [`BundleOptions::with_sft`], the SFT (see [`write_bundle`] for
/// the rules).
pub(crate) fn collect(manifest: &Path, options: &BundleOptions) -> crate::Result<Collected> {
    let mpath = std::path::absolute(manifest).map_err(io_at("resolving", manifest))?;
    let mdisplay = manifest.display().to_string();
    let mbytes = read_limited(&mpath, MAX_DESCRIPTOR_BYTES, "the manifest")?;
    let m =
        Manifest::parse(&mbytes).map_err(|e| invalid_in(format!("manifest `{mdisplay}`"), e))?;
    let folder = mpath.parent().map(Path::to_path_buf).unwrap_or_default();
    let canon_folder = std::fs::canonicalize(&folder).map_err(io_at("resolving", &folder))?;
    let mname = mpath
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::invalid(format!(
                "manifest `{mdisplay}`: its file name is not valid UTF-8"
            ))
        })?
        .to_owned();
    if let Some(p) = container::name_problem(&mname) {
        return Err(Error::invalid(format!(
            "manifest `{mdisplay}`: its file name cannot be a bundle entry ({p})"
        )));
    }

    // Collect and check every referenced file before writing anything.
    let mut files: BTreeMap<String, (EntryKind, Vec<u8>, String)> = BTreeMap::new();
    let mut lower: BTreeMap<String, String> = BTreeMap::new();
    lower.insert(mname.to_ascii_lowercase(), mname.clone());
    let mut total = mbytes.len() as u64;
    let mut first_osd: Option<String> = None;
    for r in manifest_refs(&m) {
        let name = ref_name(&r.value).map_err(|why| {
            Error::invalid(format!(
                "manifest `{mdisplay}`: {} `{}` {why}; a bundle carries only files in the manifest's folder, referenced as %SFT_MIME_SOURCE%/PATH",
                r.attr, r.value
            ))
        })?;
        if r.kind == EntryKind::Osd && first_osd.is_none() {
            first_osd = Some(name.clone());
        }
        if let Some((kind, _, attr)) = files.get(&name) {
            if *kind != r.kind {
                return Err(Error::invalid(format!(
                    "manifest `{mdisplay}`: `{name}` is both the {attr} and the {}",
                    r.attr
                )));
            }
            continue;
        }
        if let Some(other) = lower.get(&name.to_ascii_lowercase()) {
            return Err(Error::invalid(format!(
                "manifest `{mdisplay}`: {} `{}` differs from `{other}` only in case (bundle names must be unique ignoring case)",
                r.attr, r.value
            )));
        }
        let why = format!("{} in manifest `{mdisplay}`", r.attr);
        let path = folder.join(&name);
        let bytes = read_limited(&path, r.kind.max_len(), &why)?;
        let canon = std::fs::canonicalize(&path).map_err(io_at("resolving", &path))?;
        if !canon.starts_with(&canon_folder) {
            return Err(Error::invalid(format!(
                "`{}` ({why}) leads outside the manifest's folder (to `{}`)",
                path.display(),
                canon.display()
            )));
        }
        total += bytes.len() as u64;
        if total > MAX_DESCRIPTOR_TOTAL {
            return Err(Error::invalid(format!(
                "manifest `{mdisplay}`: its OSDs and icons exceed {MAX_DESCRIPTOR_TOTAL} bytes together"
            )));
        }
        match r.kind {
            EntryKind::Osd => {
                Osd::parse(&bytes)
                    .map_err(|e| invalid_in(format!("`{}` ({why})", path.display()), e))?;
            }
            _ => {
                validate_icon(&bytes)
                    .map_err(|e| invalid_in(format!("`{}` ({why})", path.display()), e))?;
            }
        }
        lower.insert(name.to_ascii_lowercase(), name.clone());
        files.insert(name, (r.kind, bytes, r.attr));
    }

    let sft = if options.with_sft || options.sft.is_some() {
        let (path, why) = match &options.sft {
            Some(p) => (p.clone(), "the SFT given".to_owned()),
            None => resolve_sft(
                &m,
                &folder,
                &mdisplay,
                first_osd.as_ref().and_then(|n| files.get(n)),
            )?,
        };
        let meta = file_metadata(&path, &why)?;
        let len = meta.len();
        let f = File::open(&path).map_err(io_at("opening", &path))?;
        let guids = check_sft(len, &|off, buf| crate::io::pos::read_exact_at(&f, buf, off))
            .map_err(|e| {
                Error::invalid(format!(
                    "`{}` ({why}) is not a valid SFT: {e}",
                    path.display()
                ))
            })?;
        match_package(&m, guids, len).map_err(|msg| {
            Error::invalid(format!(
                "`{}` ({why}) does not belong to manifest `{mdisplay}`: {msg}",
                path.display()
            ))
        })?;
        let canon = std::fs::canonicalize(&path).map_err(io_at("resolving", &path))?;
        let name = match canon.strip_prefix(&canon_folder) {
            Ok(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_str())
                .collect::<Option<Vec<_>>>()
                .map(|v| v.join("/")),
            Err(_) => canon
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_owned),
        }
        .ok_or_else(|| {
            Error::invalid(format!(
                "`{}`: the SFT's file name is not valid UTF-8",
                path.display()
            ))
        })?;
        if let Some(p) = container::name_problem(&name) {
            return Err(Error::invalid(format!(
                "`{}`: the SFT's name `{name}` cannot be a bundle entry ({p})",
                path.display()
            )));
        }
        if let Some(other) = lower.get(&name.to_ascii_lowercase()) {
            return Err(Error::invalid(format!(
                "`{}`: the SFT's name `{name}` clashes with the entry `{other}`",
                path.display()
            )));
        }
        Some((name, path, len))
    } else {
        None
    };

    Ok(Collected {
        mpath,
        folder,
        mname,
        mbytes,
        manifest: m,
        files,
        sft,
    })
}

/// The local SFT a manifest points at: `PACKAGE HREF`, else the first
/// `APP`'s OSD `CODEBASE HREF`, with `%SFT_MIME_SOURCE%` = `folder`.
fn resolve_sft(
    m: &Manifest,
    folder: &Path,
    mdisplay: &str,
    first_osd: Option<&(EntryKind, Vec<u8>, String)>,
) -> Result<(PathBuf, String), Error> {
    let (href, why) = match m.package.as_ref().and_then(|p| p.href.clone()) {
        Some(h) if !h.trim().is_empty() => (h, format!("PACKAGE HREF in manifest `{mdisplay}`")),
        _ => {
            let osd = first_osd
                .and_then(|(_, bytes, _)| Osd::parse(bytes).ok())
                .and_then(|o| o.codebase().and_then(|c| c.href.clone()))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "manifest `{mdisplay}` has neither a PACKAGE HREF nor an APP OSD with a CODEBASE HREF; name the SFT explicitly"
                    ))
                })?;
            (
                osd,
                format!("CODEBASE HREF of the first APP's OSD in manifest `{mdisplay}`"),
            )
        }
    };
    let mime = folder.to_string_lossy().into_owned();
    let env = |name: &str| {
        if name == "SFT_MIME_SOURCE" {
            Some(mime.clone())
        } else {
            std::env::var(name).ok()
        }
    };
    let source = expand_vars(&href, env)
        .and_then(|s| to_source(&s))
        .map_err(|e| invalid_in(format!("{why} `{}`", crate::redact_url(&href)), e))?;
    let local = match source.strip_prefix("file://") {
        Some(p) => p.to_owned(),
        None if source.contains("://") => {
            return Err(Error::invalid(format!(
                "{why} `{}` is not a local file (`{}`); name the SFT explicitly to bundle it",
                crate::redact_url(&href),
                crate::redact_url(&source)
            )));
        }
        None => source,
    };
    let p = PathBuf::from(&local);
    let p = if p.is_relative() { folder.join(p) } else { p };
    Ok((p, why))
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique name beside `target` for a temporary file or folder.
pub(crate) fn temp_beside(target: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::invalid(format!("`{}` names no file", target.display())))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        ".{}.{}-{n}.sftb-tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    Ok((dir, tmp))
}

/// Removes a temporary file or folder unless disarmed.
pub(crate) struct Cleanup {
    pub(crate) path: Option<PathBuf>,
    pub(crate) dir: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if self.dir {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        // Makes the rename durable; failure here loses no data.
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Write `target` atomically: `fill` writes a temporary file beside it,
/// which is synced and renamed over `target`; on error it is removed.
pub(crate) fn atomic_write<T>(
    target: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&File>) -> Result<T, Error>,
) -> Result<T, Error> {
    let (dir, tmp) = temp_beside(target)?;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_at("creating a temporary file for", target))?;
    let mut guard = Cleanup {
        path: Some(tmp.clone()),
        dir: false,
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, &f);
    let v = fill(&mut w)?;
    w.flush().map_err(io_at("writing", target))?;
    drop(w);
    f.sync_all().map_err(io_at("syncing", target))?;
    drop(f);
    std::fs::rename(&tmp, target).map_err(io_at("renaming into place", target))?;
    guard.path = None;
    sync_dir(&dir);
    Ok(v)
}

impl Bundle {
    /// Open and check a bundle: header, table of contents, trailer, every
    /// entry's CRC-32 (streamed in 64 KiB pieces, the SFT never loaded
    /// whole), zero padding, and what the entries mean (see the module
    /// docs).
    ///
    /// # Errors
    /// [`Error::Bundle`] naming the file, the entry (or header, table of
    /// contents, trailer) and the byte offset for any damage or rule
    /// broken; [`Error::Io`] if the file cannot be read.
    pub fn open(path: &Path) -> crate::Result<Bundle> {
        let f = open_input(path, "bundle")?;
        let len = f.metadata().map_err(io_at("reading", path))?.len();
        Bundle::from_source(Source::File(f, len), path.display().to_string())
    }

    pub(crate) fn from_source(src: Source, what: String) -> crate::Result<Bundle> {
        let ctx = Ctx { what };
        let (raw, plan) = container::read_layout(&src, &ctx)?;
        // Entries are checked one at a time and dropped (only the manifest
        // is kept), so memory stays at one descriptor (<= 16 MiB) or one
        // 64 KiB piece of the SFT.
        let mut manifest: Option<(Manifest, Vec<u8>)> = None;
        for (i, e) in raw.iter().enumerate() {
            let region = Ctx::entry_region(i, e);
            if e.kind == EntryKind::Sft {
                // Streamed, never held; its prologue is checked below.
                container::check_entry(&src, &ctx, i, e, &mut |_| Ok(()))?;
            } else {
                // Bounded by the kind's limit, checked in read_layout.
                let mut data = Vec::with_capacity(e.len as usize);
                container::check_entry(&src, &ctx, i, e, &mut |b| {
                    data.extend_from_slice(b);
                    Ok(())
                })?;
                match e.kind {
                    EntryKind::Manifest => {
                        let m = Manifest::parse(&data).map_err(|err| {
                            ctx.err(
                                &region,
                                e.offset,
                                format!("the manifest does not parse: {err}"),
                            )
                        })?;
                        manifest = Some((m, data));
                    }
                    EntryKind::Osd => {
                        Osd::parse(&data).map_err(|err| {
                            ctx.err(&region, e.offset, format!("the OSD does not parse: {err}"))
                        })?;
                    }
                    EntryKind::Icon => {
                        validate_icon(&data).map_err(|err| {
                            ctx.err(&region, e.offset, format!("not a valid icon: {err}"))
                        })?;
                    }
                    EntryKind::Sft => {}
                }
            }
            let next = plan
                .offsets
                .get(i + 1)
                .copied()
                .unwrap_or(plan.trailer_offset);
            container::check_padding(&src, &ctx, &region, e.offset + e.len, next)?;
        }
        let mregion = Ctx::entry_region(0, &raw[0]);
        // read_layout guarantees entry 0 is the manifest.
        let Some((manifest, manifest_bytes)) = manifest else {
            return Err(ctx.err(&mregion, raw[0].offset, "no manifest entry"));
        };
        check_refs(&manifest, "the bundle", |n| {
            raw.iter().find(|e| e.name == n).map(|e| e.kind)
        })
        .map_err(|msg| ctx.err(&mregion, raw[0].offset, format!("its {msg}")))?;
        if let Some((i, e)) = raw
            .iter()
            .enumerate()
            .find(|(_, e)| e.kind == EntryKind::Sft)
        {
            let base = e.offset;
            let len = e.len;
            let guids =
                check_sft(len, &|off, buf| src.read_at(base + off, buf)).map_err(|err| {
                    ctx.err(
                        &Ctx::entry_region(i, e),
                        e.offset,
                        format!("not a valid SFT: {err}"),
                    )
                })?;
            match_package(&manifest, guids, len).map_err(|msg| {
                ctx.err(
                    &Ctx::entry_region(i, e),
                    e.offset,
                    format!("does not belong to the manifest: {msg}"),
                )
            })?;
        }
        let entries = raw
            .iter()
            .map(|e| BundleEntry {
                name: e.name.clone(),
                kind: e.kind,
                len: e.len,
                offset: e.offset,
                crc32: e.crc,
            })
            .collect();
        Ok(Bundle {
            src,
            ctx,
            raw,
            entries,
            manifest,
            manifest_bytes,
        })
    }

    /// The parsed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest's bytes exactly as bundled.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The manifest's entry name (its file name when bundled).
    pub fn manifest_name(&self) -> &str {
        &self.raw[0].name
    }

    /// Every entry, in file order: the manifest first, the SFT (if any) last.
    pub fn entries(&self) -> &[BundleEntry] {
        &self.entries
    }

    /// True if the bundle carries the SFT (a stand-alone bundle).
    pub fn has_sft(&self) -> bool {
        self.sft_index().is_some()
    }

    /// The SFT entry, if any.
    pub fn sft_entry(&self) -> Option<&BundleEntry> {
        self.sft_index().map(|i| &self.entries[i])
    }

    fn sft_index(&self) -> Option<usize> {
        self.raw.iter().position(|e| e.kind == EntryKind::Sft)
    }

    /// Read a small entry (manifest, OSD or icon) by its exact name; its
    /// CRC is checked again.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is no such entry;
    /// [`Error::InvalidInput`] for the SFT entry (use
    /// [`Bundle::extract_sft`]); [`Error::Bundle`] if the bytes no longer
    /// match their CRC.
    pub fn read(&self, name: &str) -> crate::Result<Vec<u8>> {
        let Some((i, e)) = self.raw.iter().enumerate().find(|(_, e)| e.name == name) else {
            return Err(Error::NotFound(format!(
                "bundle `{}` has no entry `{name}`",
                self.ctx.what
            )));
        };
        if e.kind == EntryKind::Sft {
            return Err(Error::invalid(format!(
                "bundle `{}`: `{name}` is the SFT; extract it to a file instead",
                self.ctx.what
            )));
        }
        let mut data = Vec::with_capacity(e.len as usize);
        container::check_entry(&self.src, &self.ctx, i, e, &mut |b| {
            data.extend_from_slice(b);
            Ok(())
        })?;
        Ok(data)
    }

    /// Copy the SFT to `out` atomically (a temporary file beside it,
    /// synced, renamed), checking its CRC while copying; on a mismatch
    /// nothing is left at `out`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the bundle carries no SFT; [`Error::Bundle`]
    /// if its bytes fail their CRC; [`Error::Io`] naming `out`.
    pub fn extract_sft(&self, out: &Path) -> crate::Result<()> {
        let Some(i) = self.sft_index() else {
            return Err(Error::NotFound(format!(
                "bundle `{}` carries no SFT (it was written without the SFT)",
                self.ctx.what
            )));
        };
        let e = &self.raw[i];
        atomic_write(out, |w| {
            container::check_entry(&self.src, &self.ctx, i, e, &mut |b| {
                w.write_all(b).map_err(io_at("writing", out))
            })
        })
    }

    /// Write every entry under `dir` (absent or empty) at its name, the
    /// layout the manifest's `%SFT_MIME_SOURCE%/…` references expect, and
    /// return the manifest's path there, usable as `--manifest`. All or
    /// nothing: entries are written (CRCs checked) into a temporary folder
    /// beside `dir`, synced, and the folder is renamed to `dir`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `dir` exists and is not an empty folder;
    /// [`Error::Bundle`] if an entry fails its CRC; [`Error::Io`].
    pub fn unpack(&self, dir: &Path) -> crate::Result<PathBuf> {
        self.unpack_filtered(dir, |_| true)
    }

    /// [`Bundle::unpack`] of the entries whose kind `keep` accepts (the
    /// manifest is always written).
    pub(crate) fn unpack_filtered(
        &self,
        dir: &Path,
        keep: impl Fn(EntryKind) -> bool,
    ) -> crate::Result<PathBuf> {
        let files: Vec<(usize, &str)> = self
            .raw
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == EntryKind::Manifest || keep(e.kind))
            .map(|(i, e)| (i, e.name.as_str()))
            .collect();
        unpack_into(dir, &files, &mut |i, w, target| {
            container::check_entry(&self.src, &self.ctx, i, &self.raw[i], &mut |b| {
                w.write_all(b).map_err(io_at("writing", target))
            })
        })?;
        Ok(dir.join(&self.raw[0].name))
    }
}

/// The container layer on its own (not a stable API; for property tests
/// and tools): a bundle of these entries, in this order, with no check of
/// what they hold beyond the structural rules (one manifest first, at most
/// one SFT last, safe unique names, size limits).
///
/// # Errors
/// [`Error::InvalidInput`] for entries that break a structural rule.
#[doc(hidden)]
pub fn encode_entries(entries: &[(String, EntryKind, Vec<u8>)]) -> crate::Result<Vec<u8>> {
    let list: Vec<WriteEntry<'_>> = entries
        .iter()
        .map(|(n, k, b)| WriteEntry {
            name: n.clone(),
            kind: *k,
            content: Content::Bytes(b),
        })
        .collect();
    let mut c = std::io::Cursor::new(Vec::new());
    container::write_container(&mut c, &list, "memory")?;
    Ok(c.into_inner())
}

/// The container layer's reader on its own (not a stable API): every
/// entry with its data, all structural rules and CRCs checked, nothing
/// about the meaning of the entries.
///
/// # Errors
/// [`Error::Bundle`] as [`Bundle::open`].
#[doc(hidden)]
pub fn decode_entries(bytes: &[u8]) -> crate::Result<Vec<(BundleEntry, Vec<u8>)>> {
    let src = Source::Mem(bytes.to_vec());
    let ctx = Ctx {
        what: "memory".into(),
    };
    let (raw, plan) = container::read_layout(&src, &ctx)?;
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let mut data = Vec::new();
        container::check_entry(&src, &ctx, i, e, &mut |b| {
            data.extend_from_slice(b);
            Ok(())
        })?;
        let next = plan
            .offsets
            .get(i + 1)
            .copied()
            .unwrap_or(plan.trailer_offset);
        container::check_padding(&src, &ctx, &Ctx::entry_region(i, e), e.offset + e.len, next)?;
        out.push((
            BundleEntry {
                name: e.name.clone(),
                kind: e.kind,
                len: e.len,
                offset: e.offset,
                crc32: e.crc,
            },
            data,
        ));
    }
    Ok(out)
}
