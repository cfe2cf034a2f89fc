//! Writing packages: [`PackageBuilder`] collects files (from a directory
//! tree or through the API), plans the layout (FB1 from a launch list,
//! then FB2), compresses blocks on all cores and writes the package
//! atomically.
//!
//! Output is deterministic: the same inputs and options give the same
//! bytes (for one flate2 backend: zlib streams differ between backends).

mod encode;
mod launch;
mod like;
mod options;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[cfg(feature = "mount")]
pub(crate) use launch::take_uncovered;
pub use launch::{LaunchItem, merge_launch_lists, parse_launch_list};
pub use options::{BlockSize, Compression, WriteOptions};

use crate::error::Error;
use crate::format::path_problem;
use crate::read::Attributes;

/// Where a file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    Bytes(Arc<[u8]>),
    Path(PathBuf),
}

#[derive(Debug, Clone)]
pub(crate) struct InputEntry {
    pub(crate) dir: bool,
    pub(crate) source: Option<Source>,
    pub(crate) size: u64,
    pub(crate) mtime: (i64, u32),
    pub(crate) attrs: Attributes,
    pub(crate) short_name: Option<String>,
    /// Parent directory created implicitly (takes the package time).
    pub(crate) implicit: bool,
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteReport {
    /// Files and directories written.
    pub entries: u64,
    /// Blocks written.
    pub blocks: u32,
    /// Blocks in FB1.
    pub fb1_blocks: u32,
    /// Uncompressed bytes of all files.
    pub package_size: u64,
    /// Uncompressed bytes of FB1.
    pub launch_size: u64,
    /// Bytes of the whole package file.
    pub stored_size: u64,
}

/// Progress callback: called with logical bytes encoded since the last call.
pub type ProgressFn = dyn Fn(u64) + Send + Sync;

/// Builds a package from files added through the API or from a directory.
///
/// ```
/// # fn main() -> sft::Result<()> {
/// use sft::write::{PackageBuilder, parse_launch_list};
/// use sft::{Package, WriteOptions, FeatureBlock};
///
/// let mut b = PackageBuilder::new(WriteOptions::default().name("Editor"));
/// b.add_bytes("editor.exe", vec![1u8; 300_000])?;
/// b.add_bytes("help/manual.pdf", vec![2u8; 500_000])?;
/// // Launching touches the exe and the first 64 KiB of nothing else.
/// b.launch_list(parse_launch_list("editor.exe\n")?);
/// let bytes = b.write_to_vec()?;
///
/// let pkg = Package::parse(&bytes)?;
/// assert_eq!(pkg.metadata().launch_size(), 300_000);
/// assert_eq!(pkg.index().feature_block_of(sft::BlockId(0)), FeatureBlock::Fb1);
/// # Ok(()) }
/// ```
pub struct PackageBuilder {
    options: WriteOptions,
    entries: BTreeMap<String, InputEntry>,
    /// One launch list, or several to merge ([`merge_launch_lists`]).
    launch: Vec<Vec<LaunchItem>>,
    progress: Option<Box<ProgressFn>>,
    like: Option<like::Like>,
}

impl core::fmt::Debug for PackageBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PackageBuilder")
            .field("options", &self.options)
            .field("entries", &self.entries.len())
            .field("launch", &self.launch.iter().map(Vec::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

fn check_path(path: &str) -> Result<String, Error> {
    let p = path.trim_matches('/');
    if let Some(why) = path_problem(p) {
        return Err(Error::invalid(format!(
            "`{path}` is not a valid package path: {why} (docs/FORMAT.md §6.2)"
        )));
    }
    Ok(p.to_owned())
}

impl PackageBuilder {
    /// A builder with the given options and no files.
    pub fn new(options: WriteOptions) -> Self {
        PackageBuilder {
            options,
            entries: BTreeMap::new(),
            launch: Vec::new(),
            progress: None,
            like: None,
        }
    }

    /// Lay the package out like `old` (an earlier version's package
    /// bytes): every run of block-size bytes equal to a whole block of
    /// `old` fills one block of the new package, so a delta fetch or a
    /// DSFT does not move it again (`sft pack --like`, docs/DELTA.md).
    /// The new package must use `old`'s block size, and the same codec
    /// and level for the blocks' stored bytes to be equal.
    ///
    /// # Errors
    /// `old`'s own errors if it is not a valid package or a block fails
    /// its check (every block is read and decoded).
    pub fn like(&mut self, old: &[u8]) -> Result<&mut Self, Error> {
        self.like = Some(std::sync::Arc::new(like::LikeIndex::from_package(old)?));
        Ok(self)
    }

    /// The options.
    pub fn options(&self) -> &WriteOptions {
        &self.options
    }

    /// Number of entries added so far (including implicit parents).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn insert(&mut self, path: &str, entry: InputEntry) -> Result<&mut Self, Error> {
        let path = check_path(path)?;
        // Parents become directories; a file cannot be a parent.
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            match self.entries.get(parent) {
                Some(e) if !e.dir => {
                    return Err(Error::invalid(format!(
                        "`{path}`: parent `{parent}` is a file"
                    )));
                }
                Some(_) => {}
                None => {
                    self.entries.insert(
                        parent.to_owned(),
                        InputEntry {
                            dir: true,
                            source: None,
                            size: 0,
                            mtime: (0, 0),
                            attrs: Attributes::default(),
                            short_name: None,
                            implicit: true,
                        },
                    );
                }
            }
            at += i + 1;
        }
        match self.entries.get(&path) {
            Some(old) if old.dir && entry.dir && old.implicit => {}
            Some(old) if !(old.dir && old.implicit && entry.dir) => {
                return Err(Error::invalid(format!("`{path}` added twice")));
            }
            _ => {}
        }
        self.entries.insert(path, entry);
        Ok(self)
    }

    /// Add a file from memory with modification time 0 and no attributes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an invalid or duplicate path.
    pub fn add_bytes(
        &mut self,
        path: &str,
        data: impl Into<Arc<[u8]>>,
    ) -> Result<&mut Self, Error> {
        self.add_bytes_with(path, data, (0, 0), Attributes::default())
    }

    /// Add a file from memory with a modification time and attributes.
    ///
    /// # Errors
    /// As [`PackageBuilder::add_bytes`].
    pub fn add_bytes_with(
        &mut self,
        path: &str,
        data: impl Into<Arc<[u8]>>,
        mtime: (i64, u32),
        attrs: Attributes,
    ) -> Result<&mut Self, Error> {
        let data: Arc<[u8]> = data.into();
        self.insert(
            path,
            InputEntry {
                dir: false,
                size: data.len() as u64,
                source: Some(Source::Bytes(data)),
                mtime: (mtime.0, mtime.1.min(999_999_999)),
                attrs,
                short_name: None,
                implicit: false,
            },
        )
    }

    /// Add an empty directory.
    ///
    /// # Errors
    /// As [`PackageBuilder::add_bytes`].
    pub fn add_dir(&mut self, path: &str, mtime: (i64, u32)) -> Result<&mut Self, Error> {
        self.insert(
            path,
            InputEntry {
                dir: true,
                source: None,
                size: 0,
                mtime: (mtime.0, mtime.1.min(999_999_999)),
                attrs: Attributes::default(),
                short_name: None,
                implicit: false,
            },
        )
    }

    /// Record an 8.3 short name for an entry already added.
    ///
    /// # Errors
    /// [`Error::NotFound`] if the path was not added; [`Error::InvalidInput`]
    /// if `short` is not a plain name of at most 12 bytes.
    pub fn set_short_name(&mut self, path: &str, short: &str) -> Result<&mut Self, Error> {
        if !is_short_name(short) {
            return Err(Error::invalid(format!(
                "`{short}` is not an 8.3 name (1-8 characters, optionally `.` and 1-3 more; ASCII letters, digits and `!#$%&'()-@^_`{{}}~`)"
            )));
        }
        let p = check_path(path)?;
        let e = self
            .entries
            .get_mut(&p)
            .ok_or_else(|| Error::NotFound(format!("`{p}` was not added")))?;
        e.short_name = Some(short.to_owned());
        Ok(self)
    }

    /// Add one file from the file system under `path`, reading it while
    /// the package is written. Symlinks and special files are refused.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be examined; [`Error::InvalidInput`]
    /// for a symlink, special file, or invalid path.
    pub fn add_file(&mut self, path: &str, fs_path: impl AsRef<Path>) -> Result<&mut Self, Error> {
        let fs_path = fs_path.as_ref();
        let md = std::fs::symlink_metadata(fs_path)
            .map_err(|e| Error::io(format!("examining `{}`", fs_path.display()), e))?;
        refuse_special(fs_path, &md)?;
        if md.is_dir() {
            return Err(Error::invalid(format!(
                "`{}` is a directory; use add_tree",
                fs_path.display()
            )));
        }
        self.insert(
            path,
            InputEntry {
                dir: false,
                size: md.len(),
                source: Some(Source::Path(fs_path.to_owned())),
                mtime: mtime_of(&md),
                attrs: attrs_of(&md),
                short_name: None,
                implicit: false,
            },
        )
    }

    /// Add everything under directory `root` (which itself becomes the
    /// package root). Symlinks and special files are refused, never
    /// followed.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path that could not be read;
    /// [`Error::InvalidInput`] for a symlink, special file, or a name that
    /// is not valid UTF-8 or breaks the path rules.
    pub fn add_tree(&mut self, root: impl AsRef<Path>) -> Result<&mut Self, Error> {
        let root = root.as_ref();
        let md = std::fs::metadata(root)
            .map_err(|e| Error::io(format!("reading directory `{}`", root.display()), e))?;
        if !md.is_dir() {
            return Err(Error::invalid(format!(
                "`{}` is not a directory",
                root.display()
            )));
        }
        let mut stack = vec![(root.to_path_buf(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let rd = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(format!("reading directory `{}`", dir.display()), e))?;
            for item in rd {
                let item = item
                    .map_err(|e| Error::io(format!("reading directory `{}`", dir.display()), e))?;
                let fs_path = item.path();
                let name = item.file_name();
                let name = name.to_str().ok_or_else(|| {
                    Error::invalid(format!("`{}`: name is not valid UTF-8", fs_path.display()))
                })?;
                let path = if prefix.is_empty() {
                    name.to_owned()
                } else {
                    format!("{prefix}/{name}")
                };
                let md = std::fs::symlink_metadata(&fs_path)
                    .map_err(|e| Error::io(format!("examining `{}`", fs_path.display()), e))?;
                refuse_special(&fs_path, &md)?;
                if md.is_dir() {
                    self.add_dir(&path, mtime_of(&md))?;
                    stack.push((fs_path, path));
                } else {
                    self.add_file(&path, &fs_path)?;
                }
            }
        }
        Ok(self)
    }

    /// Set the launch list: the file ranges that go into FB1, in launch
    /// order. Ignored when the options ask for a full load.
    pub fn launch_list(&mut self, items: Vec<LaunchItem>) -> &mut Self {
        self.launch = vec![items];
        self
    }

    /// Set several launch lists (launch profiles, or traces recorded on
    /// several clients): FB1 holds all of them, in the order
    /// [`merge_launch_lists`] gives. One list is as
    /// [`PackageBuilder::launch_list`].
    pub fn launch_lists(&mut self, lists: Vec<Vec<LaunchItem>>) -> &mut Self {
        self.launch = lists;
        self
    }

    /// The launch list the plan is built from: the one list, or the lists
    /// merged.
    fn launch(&self) -> std::borrow::Cow<'_, [LaunchItem]> {
        match self.launch.as_slice() {
            [] => std::borrow::Cow::Borrowed(&[]),
            [one] => std::borrow::Cow::Borrowed(one),
            lists => std::borrow::Cow::Owned(merge_launch_lists(lists, |p| {
                self.entries.get(p).filter(|e| !e.dir).map(|e| e.size)
            })),
        }
    }

    /// Set a progress callback, called from worker threads with the
    /// logical bytes encoded since its last call.
    pub fn on_progress(&mut self, f: impl Fn(u64) + Send + Sync + 'static) -> &mut Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Total uncompressed bytes of the files added.
    pub fn total_size(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// Write the package to an in-memory buffer.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad launch list or a package beyond
    /// the format's limits; [`Error::Io`] if an input file cannot be read.
    pub fn write_to_vec(&self) -> Result<Vec<u8>, Error> {
        let plan = plan::Plan::build(
            &self.options,
            &self.entries,
            &self.launch(),
            self.like.as_deref(),
        )?;
        let mut cur = std::io::Cursor::new(Vec::new());
        encode::write(
            &plan,
            &self.options,
            &mut cur,
            false,
            self.progress.as_deref(),
        )?;
        Ok(cur.into_inner())
    }

    /// Write the package to `path` atomically: into a temporary file in the
    /// same directory, synced, then renamed over `path` (and the directory
    /// synced), so a crash never leaves a partial file under the name.
    /// All-zero stored blocks become holes, so sparse inputs stay sparse.
    ///
    /// # Errors
    /// As [`PackageBuilder::write_to_vec`], plus [`Error::Io`] naming the
    /// output path.
    pub fn write_to_path(&self, path: impl AsRef<Path>) -> Result<WriteReport, Error> {
        let path = path.as_ref();
        let plan = plan::Plan::build(
            &self.options,
            &self.entries,
            &self.launch(),
            self.like.as_deref(),
        )?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let io = |what: &str, e| Error::io(format!("{what} `{}`", path.display()), e);
        let mut builder = tempfile::Builder::new();
        builder.prefix(".sft-").suffix(".tmp");
        // tempfile creates 0600 files; a package is a public artifact like
        // a zip or tar: 0666 before the umask, as any new file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp = builder
            .tempfile_in(&dir)
            .map_err(|e| io("creating a temporary file for", e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let report = encode::write(&plan, &self.options, &mut w, true, self.progress.as_deref())?;
        drop(w);
        tmp.as_file().sync_all().map_err(|e| io("syncing", e))?;
        tmp.persist(path)
            .map_err(|e| io("renaming into place", e.error))?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(&dir) {
            // Make the rename durable; failure here does not lose data.
            let _ = d.sync_all();
        }
        Ok(report)
    }
}

/// An MS-DOS 8.3 name: 1–8 characters, optionally a dot and 1–3 more,
/// from the characters FAT allows in short names.
fn is_short_name(s: &str) -> bool {
    let ok = |part: &str, max: usize| {
        !part.is_empty()
            && part.len() <= max
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~".contains(&b))
    };
    match s.split_once('.') {
        Some((base, ext)) => ok(base, 8) && ok(ext, 3),
        None => ok(s, 8),
    }
}

fn refuse_special(path: &Path, md: &std::fs::Metadata) -> Result<(), Error> {
    let ft = md.file_type();
    if ft.is_symlink() {
        return Err(Error::invalid(format!(
            "refusing symlink `{}`: symlinks are not followed or stored",
            path.display()
        )));
    }
    if !ft.is_file() && !ft.is_dir() {
        return Err(Error::invalid(format!(
            "refusing special file `{}` (device, FIFO or socket)",
            path.display()
        )));
    }
    Ok(())
}

fn mtime_of(md: &std::fs::Metadata) -> (i64, u32) {
    use std::time::UNIX_EPOCH;
    match md.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    (secs, 0)
                } else {
                    (secs - 1, 1_000_000_000 - d.subsec_nanos())
                }
            }
        },
        Err(_) => (0, 0),
    }
}

fn attrs_of(md: &std::fs::Metadata) -> Attributes {
    let mut a = Attributes {
        read_only: md.permissions().readonly(),
        ..Attributes::default()
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        a.executable = md.permissions().mode() & 0o111 != 0;
    }
    a
}
