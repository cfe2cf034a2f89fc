//! Extracting a package into a directory: [`extract`].
//!
//! Extraction decodes every block exactly once, on all cores, and writes
//! each piece of file data straight to its place with positional writes,
//! so a package of many small files sharing a block costs one inflate per
//! block, not one per file.
//!
//! How it works:
//!
//! 0. The structure of the whole package is verified first
//!    ([`Package::verify_structure`]: section CRCs, entry order, parents,
//!    extents covering the logical stream exactly once, block records
//!    stored back to back), so nothing is written for a package that
//!    [`Package::verify`] rejects on its structure, and no package makes
//!    it write more than its logical size.
//! 1. Every entry's path is checked again, component by component (no
//!    `..`, `.`, empty, absolute, drive-letter, NUL or `\` components),
//!    even though the reader already refuses such paths.
//! 2. Directories are created serially in path order. Every directory
//!    component on the way to an entry is examined with
//!    [`std::fs::symlink_metadata`]: an existing symlink inside the target
//!    directory is refused, never followed, and so is an existing
//!    non-directory where a directory should be.
//! 3. The file data, cut into pieces (one per extent), is sorted by its
//!    place in the package's logical stream; the blocks are split into
//!    contiguous runs that worker threads take in turn. Each worker
//!    verifies and decodes its blocks in order with one reused decoder and
//!    writes each piece into a temporary file `.<name>.sft-part-<n>`
//!    (created with `create_new`, so it never opens an existing file or
//!    symlink) next to its final name.
//! 4. The thread that writes a file's last byte sets its
//!    modification time and permissions (executable → `0o755`, otherwise
//!    `0o644`; read-only clears the write bits) and renames it into place.
//!    Empty files are created the same way before the workers start.
//! 5. Directory modification times are set last, deepest first.
//!
//! On any error all workers stop, every temporary file is removed and the
//! first error is returned: a block that fails its CRC or decode never
//! reaches a file under its final name. Files completed before the error
//! stay (their data was verified), as do directories created.
//!
//! Files are not synced (`fsync`) one by one: extraction is a bulk copy
//! that can be repeated, and per-file syncs would cost more than the rest
//! of the work together. Call `sync` yourself if you need durability.
//!
//! The symlink checks guard against links that exist before or are
//! created by the package's own layout; they cannot stop another process
//! that swaps a directory for a link while the extraction runs (that would
//! need `openat`-style APIs beyond the standard library).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::format::{BlockId, Codec};
use crate::read::{Decoder, Entry, Package};

/// Progress callback for [`extract`]: called from worker threads with the
/// logical (uncompressed) bytes decoded since its last call.
pub type ExtractProgress = Arc<dyn Fn(u64) + Send + Sync>;

/// Options for [`extract`], with by-value setters.
///
/// ```
/// use sft::extract::ExtractOptions;
/// let opts = ExtractOptions::default().threads(2).overwrite(false);
/// assert_eq!(opts.get_threads(), Some(2));
/// assert!(!opts.get_overwrite());
/// ```
#[derive(Clone, Default)]
pub struct ExtractOptions {
    threads: Option<usize>,
    progress: Option<ExtractProgress>,
    no_overwrite: bool,
}

impl core::fmt::Debug for ExtractOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExtractOptions")
            .field("threads", &self.threads)
            .field("progress", &self.progress.is_some())
            .field("overwrite", &!self.no_overwrite)
            .finish()
    }
}

impl ExtractOptions {
    /// Default options: all cores, no progress callback, replace existing
    /// regular files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Worker threads (default: [`std::thread::available_parallelism`]).
    /// `0` is taken as 1.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// The thread count set, if any.
    pub fn get_threads(&self) -> Option<usize> {
        self.threads
    }

    /// Progress callback, called from worker threads with the logical
    /// bytes decoded since its last call.
    pub fn progress(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Progress callback as a shared closure (or `None` to remove it).
    pub fn progress_arc(mut self, f: Option<ExtractProgress>) -> Self {
        self.progress = f;
        self
    }

    /// Whether an existing regular file under an entry's name is replaced
    /// (the default, `true`) or makes the extraction fail before anything
    /// is written (`false`). Existing symlinks and directories in a file's
    /// place are always refused.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.no_overwrite = !yes;
        self
    }

    /// Whether existing files are replaced.
    pub fn get_overwrite(&self) -> bool {
        !self.no_overwrite
    }
}

/// What [`extract`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExtractReport {
    /// Files written.
    pub files: u64,
    /// Directory entries of the package (created or already present).
    pub dirs: u64,
    /// File bytes written.
    pub bytes: u64,
}

/// Extract every file and directory of `pkg` under `dir`, creating `dir`
/// (and its parents) if missing. See the [module docs](self) for how.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::extract::{extract, ExtractOptions};
/// use sft::{Package, WriteOptions, write::PackageBuilder};
///
/// let bytes = PackageBuilder::new(WriteOptions::default().name("Demo"))
///     .add_bytes("bin/app.exe", vec![0x90; 100_000])?
///     .add_bytes("readme.txt", b"hello".to_vec())?
///     .write_to_vec()?;
/// let pkg = Package::parse(&bytes)?;
///
/// let tmp = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let out = tmp.path().join("demo");
/// let report = extract(&pkg, &out, &ExtractOptions::default().threads(2))?;
/// assert_eq!((report.files, report.dirs, report.bytes), (2, 1, 100_005));
/// let readme = std::fs::read(out.join("readme.txt")).map_err(|e| sft::Error::io("read", e))?;
/// assert_eq!(readme, b"hello");
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// - [`Error::InvalidInput`] naming the entry for a path that would land
///   outside `dir`, an existing symlink on the way (or in a file's place),
///   an existing non-directory where a directory belongs, or an existing
///   file when [`ExtractOptions::overwrite`] is off;
/// - [`Error::Format`] / [`Error::Integrity`] for a damaged package: as
///   [`Package::verify_structure`] before anything is written (not even
///   `dir`), and for a damaged block no file with its data is left under
///   its final name;
/// - [`Error::Io`] naming the path for file system failures.
pub fn extract(
    pkg: &Package<'_>,
    dir: &Path,
    options: &ExtractOptions,
) -> Result<ExtractReport, Error> {
    // Nothing is written for a package that full verification would
    // reject on its structure; the block data is checked as it is used.
    pkg.verify_structure()?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating directory `{}`", dir.display()), e))?;
    let md = std::fs::metadata(dir)
        .map_err(|e| Error::io(format!("examining `{}`", dir.display()), e))?;
    if !md.is_dir() {
        return Err(Error::invalid(format!(
            "`{}` is not a directory",
            dir.display()
        )));
    }

    let mut plan = Planner {
        root: dir,
        known_dirs: HashSet::new(),
        file_paths: HashSet::new(),
    };
    let mut report = ExtractReport::default();
    let mut dir_times: Vec<(usize, PathBuf, Option<SystemTime>)> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();

    let mut folded: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    for entry in pkg.entries() {
        let entry = entry?;
        let comps = components(entry.path())?;
        if let Some(other) = folded.insert(entry.path().to_lowercase(), entry.path().to_owned()) {
            refuse_if_same_file(&plan, &comps, &other, entry.path())?;
        }
        if entry.is_dir() {
            plan.ensure_dirs(&entry, &comps, comps.len())?;
            report.dirs += 1;
            dir_times.push((
                comps.len(),
                plan.path_of(&comps),
                system_time(entry.modified()),
            ));
            continue;
        }
        plan.ensure_dirs(&entry, &comps, comps.len() - 1)?;
        plan.file_paths.insert(entry.path().to_owned());
        let target = plan.path_of(&comps);
        check_target(&entry, &target, !options.no_overwrite)?;
        let job_no = jobs.len();
        for x in entry.extents() {
            pieces.push(Piece {
                job: job_no,
                file_offset: x.file_offset,
                logical: x.logical_offset,
                len: x.length,
            });
        }
        jobs.push(Job::new(&entry, target, &comps));
        report.files += 1;
        report.bytes += entry.size();
    }

    // The extents tile the logical stream exactly once (checked above).
    pieces.sort_unstable_by_key(|p| p.logical);

    let ctx = Ctx {
        pkg: pkg.clone(),
        jobs: &jobs,
        pieces: &pieces,
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
        progress: options.progress.clone(),
    };

    // Empty files: no data to wait for.
    let mut result = Ok(());
    for job in jobs.iter().filter(|j| j.size == 0) {
        result = ctx.open(job).and_then(|f| ctx.finish(job, &f));
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        ctx.run_workers(options.threads);
        result = match lock(&ctx.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }
    if result.is_ok()
        && let Some(job) = jobs.iter().find(|j| !lock(&j.slot).done)
    {
        result = Err(Error::invalid(format!(
            "`{}`: the package's blocks do not hold all of its data",
            job.rel
        )));
    }
    if let Err(e) = result {
        ctx.cleanup();
        return Err(e);
    }

    // Directory times last, deepest first, so creating children does not
    // bump them again.
    dir_times.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, path, time) in dir_times {
        let Some(time) = time else { continue };
        let f = File::open(&path)
            .map_err(|e| Error::io(format!("opening directory `{}`", path.display()), e))?;
        f.set_modified(time)
            .map_err(|e| Error::io(format!("setting the time of `{}`", path.display()), e))?;
    }
    Ok(report)
}

/// One extent of one file: `len` bytes at `logical` in the package's
/// logical stream go to `file_offset` in file `job`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    job: usize,
    file_offset: u64,
    logical: u64,
    len: u64,
}

/// A file being extracted.
#[derive(Debug)]
struct Job {
    number: u64,
    rel: String,
    /// Directory holding the file (and its temporary file).
    parent: PathBuf,
    target: PathBuf,
    /// Temporary file name without its number: `.<name>.sft-part-`.
    tmp_stem: String,
    size: u64,
    mtime: Option<SystemTime>,
    read_only: bool,
    executable: bool,
    remaining: AtomicU64,
    slot: Mutex<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    file: Option<Arc<File>>,
    tmp: Option<PathBuf>,
    done: bool,
}

impl Job {
    fn new(entry: &Entry<'_>, target: PathBuf, comps: &[&str]) -> Self {
        let parent = target
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let name = comps.last().copied().unwrap_or("file");
        // Keep the temporary name within NAME_MAX (255 bytes).
        let mut cut = name.len().min(200);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let attrs = entry.attributes();
        Job {
            number: entry.number(),
            rel: entry.path().to_owned(),
            parent,
            target,
            tmp_stem: format!(".{}.sft-part-", &name[..cut]),
            size: entry.size(),
            mtime: system_time(entry.modified()),
            read_only: attrs.read_only,
            executable: attrs.executable,
            remaining: AtomicU64::new(entry.size()),
            slot: Mutex::new(Slot::default()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A package time as a `SystemTime`, or `None` if the platform cannot
/// represent it.
fn system_time((secs, nanos): (i64, u32)) -> Option<SystemTime> {
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs.unsigned_abs(), nanos.min(999_999_999)))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos.into()))
    }
}

/// Split an entry's path into components, re-checking every rule that
/// keeps it inside the target directory.
fn components(path: &str) -> Result<Vec<&str>, Error> {
    let refuse = |why: &str| {
        Err(Error::invalid(format!(
            "refusing to extract `{}`: {why}",
            path.escape_debug()
        )))
    };
    if path.is_empty() {
        return refuse("empty path");
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return refuse("absolute path");
    }
    let comps: Vec<&str> = path.split('/').collect();
    for c in &comps {
        if c.is_empty() {
            return refuse("empty path component");
        }
        if *c == "." || *c == ".." {
            return refuse("`.` or `..` component");
        }
        if c.contains('\0') {
            return refuse("NUL byte in path");
        }
        if c.contains('\\') {
            return refuse("backslash in path");
        }
        if c.contains(':') {
            return refuse("`:` in path (drive letter or stream name)");
        }
        // Whatever the platform's own parsing makes of it, it must be one
        // plain name.
        let mut pc = Path::new(c).components();
        if !matches!((pc.next(), pc.next()), (Some(Component::Normal(_)), None)) {
            return refuse("component is not a plain name");
        }
    }
    Ok(comps)
}

/// Serial planning state: which directories are known good.
struct Planner<'p> {
    root: &'p Path,
    known_dirs: HashSet<String>,
    file_paths: HashSet<String>,
}

impl Planner<'_> {
    fn path_of(&self, comps: &[&str]) -> PathBuf {
        let mut p = self.root.to_path_buf();
        p.extend(comps);
        p
    }

    /// Make sure the first `upto` components of `comps` exist as real
    /// directories (not symlinks), creating what is missing.
    fn ensure_dirs(&mut self, entry: &Entry<'_>, comps: &[&str], upto: usize) -> Result<(), Error> {
        let mut path = self.root.to_path_buf();
        let mut rel = String::new();
        for c in &comps[..upto] {
            path.push(c);
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(c);
            if self.known_dirs.contains(&rel) {
                continue;
            }
            let refuse = |why: String| {
                Err(Error::invalid(format!(
                    "refusing to extract `{}`: {why}",
                    entry.path()
                )))
            };
            if self.file_paths.contains(&rel) {
                return refuse(format!("`{rel}` is a file in the package"));
            }
            match std::fs::symlink_metadata(&path) {
                Ok(md) if md.file_type().is_symlink() => {
                    return refuse(format!(
                        "`{}` is a symlink; symlinks are never followed",
                        path.display()
                    ));
                }
                Ok(md) if md.is_dir() => {}
                Ok(_) => {
                    return refuse(format!(
                        "`{}` exists and is not a directory",
                        path.display()
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // create_dir does not follow a symlink in the last
                    // component: one appearing now fails with AlreadyExists.
                    std::fs::create_dir(&path).map_err(|e| {
                        Error::io(
                            format!(
                                "creating directory `{}` for `{}`",
                                path.display(),
                                entry.path()
                            ),
                            e,
                        )
                    })?;
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("examining `{}` for `{}`", path.display(), entry.path()),
                        e,
                    ));
                }
            }
            self.known_dirs.insert(rel.clone());
        }
        Ok(())
    }
}

/// Two package paths that differ only in case (`other`, then `path`, with
/// `comps` the components of `path`): the format allows them, but on a
/// file system that ignores case they would name one file, and the second
/// would silently replace the first. Probe the target directory with a
/// file of our own and refuse if it ignores case (`docs/FORMAT.md` §6.8).
fn refuse_if_same_file(
    plan: &Planner<'_>,
    comps: &[&str],
    other: &str,
    path: &str,
) -> Result<(), Error> {
    // The deepest directory that exists already: the root, or the
    // directories planned so far for `other` (same letters, other case).
    let mut dir = plan.root.to_path_buf();
    for c in &comps[..comps.len() - 1] {
        let next = dir.join(c);
        if !std::fs::symlink_metadata(&next).is_ok_and(|m| m.is_dir()) {
            break;
        }
        dir = next;
    }
    let probe = dir.join(format!(".sft-case-probe-{}A", std::process::id()));
    let folded = dir.join(format!(".sft-case-probe-{}a", std::process::id()));
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| Error::io(format!("probing `{}` for case", dir.display()), e))?;
    drop(created);
    let ignores_case = std::fs::symlink_metadata(&folded).is_ok();
    let _ = std::fs::remove_file(&probe);
    if ignores_case {
        return Err(Error::invalid(format!(
            "refusing to extract `{path}`: `{other}` and `{path}` differ only in case, and `{}` ignores case, so they would be one file",
            dir.display()
        )));
    }
    Ok(())
}

/// Check what is at a file's final name before anything is written.
fn check_target(entry: &Entry<'_>, target: &Path, overwrite: bool) -> Result<(), Error> {
    let refuse = |why: &str| {
        Err(Error::invalid(format!(
            "refusing to extract `{}`: `{}` {why}",
            entry.path(),
            target.display()
        )))
    };
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("examining `{}`", target.display()), e)),
        Ok(md) if md.file_type().is_symlink() => {
            refuse("is a symlink; symlinks are never followed")
        }
        Ok(md) if md.is_dir() => refuse("is a directory"),
        Ok(md) if !md.is_file() => refuse("is a special file"),
        Ok(_) if !overwrite => refuse("already exists"),
        Ok(_) => Ok(()),
    }
}

/// Shared state of one extraction's workers.
struct Ctx<'a, 'data> {
    pkg: Package<'data>,
    jobs: &'a [Job],
    pieces: &'a [Piece],
    stop: AtomicBool,
    error: Mutex<Option<Error>>,
    progress: Option<ExtractProgress>,
}

impl Ctx<'_, '_> {
    /// Open (creating on first use) the temporary file of `job`.
    fn open(&self, job: &Job) -> Result<Arc<File>, Error> {
        let mut slot = lock(&job.slot);
        if let Some(f) = &slot.file {
            return Ok(Arc::clone(f));
        }
        for k in 0..100u32 {
            let name = if k == 0 {
                format!("{}{}", job.tmp_stem, job.number)
            } else {
                format!("{}{}-{k}", job.tmp_stem, job.number)
            };
            let path = job.parent.join(name);
            let mut o = OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            match o.open(&path) {
                Ok(f) => {
                    let f = Arc::new(f);
                    slot.tmp = Some(path);
                    slot.file = Some(Arc::clone(&f));
                    return Ok(f);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("creating `{}` for `{}`", path.display(), job.rel),
                        e,
                    ));
                }
            }
        }
        Err(Error::io(
            format!("creating a temporary file for `{}`", job.rel),
            io::Error::from(io::ErrorKind::AlreadyExists),
        ))
    }

    /// All bytes are written: set time and permissions, then
    /// rename into place.
    fn finish(&self, job: &Job, f: &File) -> Result<(), Error> {
        let io = |what: &str, e| Error::io(format!("{what} `{}`", job.rel), e);
        // The file was created empty and every byte of 0..size written:
        // its length is already right, so no `set_len` call is needed.
        if let Some(t) = job.mtime {
            f.set_modified(t)
                .map_err(|e| io("setting the time of", e))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mut mode = if job.executable { 0o755 } else { 0o644 };
            if job.read_only {
                mode &= !0o222;
            }
            f.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(|e| io("setting the permissions of", e))?;
        }
        #[cfg(not(unix))]
        if job.read_only {
            let mut p = f.metadata().map_err(|e| io("examining", e))?.permissions();
            p.set_readonly(true);
            f.set_permissions(p)
                .map_err(|e| io("setting the permissions of", e))?;
        }
        let mut slot = lock(&job.slot);
        let Some(tmp) = slot.tmp.clone() else {
            return Err(Error::invalid(format!("`{}`: no temporary file", job.rel)));
        };
        // No second look at the target: `rename` replaces a symlink that
        // appeared there since planning instead of following it.
        std::fs::rename(&tmp, &job.target).map_err(|e| io("renaming into place", e))?;
        slot.tmp = None;
        slot.file = None;
        slot.done = true;
        Ok(())
    }

    fn fail(&self, e: Error) {
        self.stop.store(true, Ordering::SeqCst);
        let mut first = lock(&self.error);
        if first.is_none() {
            *first = Some(e);
        }
    }

    /// Remove every temporary file still around.
    fn cleanup(&self) {
        for job in self.jobs {
            let mut slot = lock(&job.slot);
            slot.file = None;
            if let Some(tmp) = slot.tmp.take() {
                let _ = std::fs::remove_file(tmp);
            }
        }
    }

    fn run_workers(&self, threads: Option<usize>) {
        let blocks = self.pkg.index().len() as usize;
        if blocks == 0 {
            return;
        }
        let threads = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, blocks);
        // A few runs per thread so that a thread that drew cheap blocks
        // takes another run instead of idling.
        let runs = (threads * 4).min(blocks);
        let per = blocks.div_ceil(runs);
        let next = AtomicUsize::new(0);
        let work = || {
            loop {
                let r = next.fetch_add(1, Ordering::Relaxed);
                let start = r * per;
                if start >= blocks || self.stop.load(Ordering::Relaxed) {
                    break;
                }
                let end = (start + per).min(blocks);
                // Block ids fit in u32: there are at most u32::MAX blocks.
                if let Err(e) = self.run(start as u32..end as u32) {
                    self.fail(e);
                    break;
                }
            }
        };
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
    }

    /// Decode blocks `run` in order and write their pieces.
    fn run(&self, run: core::ops::Range<u32>) -> Result<(), Error> {
        let index = self.pkg.index();
        let Some(first) = index.logical_range(BlockId(run.start)) else {
            return Ok(());
        };
        let pieces = self.pieces;
        let mut cursor = pieces.partition_point(|p| p.logical + p.len <= first.start);
        let mut decoder = Decoder::new();
        let mut buf = Vec::new();
        let mut open: Option<(usize, Arc<File>)> = None;
        for id in run {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let block = self.pkg.block(BlockId(id))?;
            block.verify()?;
            let info = *block.info();
            let data: &[u8] = if info.codec == Codec::Stored {
                block.stored()
            } else {
                decoder.inflate(&info, block.stored(), &mut buf)?;
                &buf
            };
            let range = info.logical_range();
            while let Some(p) = pieces.get(cursor) {
                if p.logical >= range.end {
                    break;
                }
                let p_end = p.logical + p.len;
                let s = p.logical.max(range.start);
                let e = p_end.min(range.end);
                if s < e {
                    let job = &self.jobs[p.job];
                    let f = match &open {
                        Some((j, f)) if *j == p.job => Arc::clone(f),
                        _ => {
                            let f = self.open(job)?;
                            open = Some((p.job, Arc::clone(&f)));
                            f
                        }
                    };
                    let bytes = &data[(s - range.start) as usize..(e - range.start) as usize];
                    crate::io::pos::write_all_at(&f, bytes, p.file_offset + (s - p.logical))
                        .map_err(|err| Error::io(format!("writing `{}`", job.rel), err))?;
                    let n = e - s;
                    if job.remaining.fetch_sub(n, Ordering::AcqRel) == n {
                        open = None;
                        self.finish(job, &f)?;
                    }
                }
                if p_end <= range.end {
                    cursor += 1;
                } else {
                    break;
                }
            }
            if let Some(cb) = &self.progress {
                cb(u64::from(info.raw_len));
            }
        }
        Ok(())
    }
}

#[cfg(all(test, unix, feature = "write"))]
mod tests {
    use super::*;
    use crate::WriteOptions;
    use crate::read::Attributes;
    use crate::write::{BlockSize, Compression, PackageBuilder};
    use std::os::unix::fs::PermissionsExt;

    /// Varied, compressible but not trivial bytes.
    fn data(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    (x & 0xff) as u8
                } else {
                    (i / 7) as u8
                }
            })
            .collect()
    }

    fn build(bs: BlockSize, comp: Compression) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
        let mut b = PackageBuilder::new(
            WriteOptions::default()
                .block_size(bs)
                .compression(comp)
                .threads(2),
        );
        let mut files = Vec::new();
        for i in 0..300u64 {
            let path = format!("d{}/sub{}/f{i}.txt", i % 7, i % 3);
            files.push((path, data(i, (i as usize * 37) % 900)));
        }
        files.push(("big/large.bin".to_owned(), data(999, 300_000)));
        files.push(("empty.txt".to_owned(), Vec::new()));
        for (i, (p, d)) in files.iter().enumerate() {
            let attrs = Attributes {
                executable: i % 5 == 0,
                ..Attributes::default()
            };
            b.add_bytes_with(p, d.clone(), (1_600_000_000 + i as i64, 123_000_000), attrs)
                .unwrap();
        }
        b.add_dir("emptydir", (1_500_000_000, 0)).unwrap();
        (b.write_to_vec().unwrap(), files)
    }

    #[test]
    fn round_trip_all_shapes() {
        for bs in [BlockSize::K4, BlockSize::K64] {
            for comp in [Compression::None, Compression::Zlib(6)] {
                let (bytes, files) = build(bs, comp);
                let pkg = Package::parse(&bytes).unwrap();
                for threads in [1, 3] {
                    let tmp = tempfile::tempdir().unwrap();
                    let out = tmp.path().join("out");
                    let decoded = Arc::new(AtomicU64::new(0));
                    let d2 = Arc::clone(&decoded);
                    let opts = ExtractOptions::default()
                        .threads(threads)
                        .progress(move |n| {
                            d2.fetch_add(n, Ordering::Relaxed);
                        });
                    let r = extract(&pkg, &out, &opts).unwrap();
                    assert_eq!(r.files, files.len() as u64);
                    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
                    assert_eq!(r.bytes, total);
                    assert_eq!(decoded.load(Ordering::Relaxed), total);
                    for (i, (p, d)) in files.iter().enumerate() {
                        let path = out.join(p);
                        assert_eq!(&std::fs::read(&path).unwrap(), d, "{p}");
                        let md = std::fs::metadata(&path).unwrap();
                        let want =
                            UNIX_EPOCH + Duration::new(1_600_000_000 + i as u64, 123_000_000);
                        assert_eq!(md.modified().unwrap(), want, "{p}");
                        let mode = md.permissions().mode() & 0o777;
                        assert_eq!(mode, if i % 5 == 0 { 0o755 } else { 0o644 }, "{p}");
                    }
                    let md = std::fs::metadata(out.join("emptydir")).unwrap();
                    assert!(md.is_dir());
                    assert_eq!(
                        md.modified().unwrap(),
                        UNIX_EPOCH + Duration::from_secs(1_500_000_000)
                    );
                    // No temporary files left behind.
                    let leftovers = walk(&out)
                        .into_iter()
                        .filter(|p| p.to_string_lossy().contains(".sft-part-"))
                        .count();
                    assert_eq!(leftovers, 0);
                }
            }
        }
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
        out
    }

    #[test]
    fn read_only_clears_write_bits() {
        let attrs = Attributes {
            read_only: true,
            executable: true,
            ..Attributes::default()
        };
        let bytes = PackageBuilder::new(WriteOptions::default())
            .add_bytes_with("ro.exe", b"x".to_vec(), (0, 0), attrs)
            .unwrap()
            .write_to_vec()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        extract(
            &Package::parse(&bytes).unwrap(),
            tmp.path(),
            &ExtractOptions::default(),
        )
        .unwrap();
        let mode = std::fs::metadata(tmp.path().join("ro.exe"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o555);
    }

    #[test]
    fn refuses_existing_symlinks() {
        let bytes = PackageBuilder::new(WriteOptions::default())
            .add_bytes("evil/passwd", b"pwned".to_vec())
            .unwrap()
            .add_bytes("link.txt", b"pwned".to_vec())
            .unwrap()
            .write_to_vec()
            .unwrap();
        let pkg = Package::parse(&bytes).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("evil")).unwrap();
        let e = extract(&pkg, tmp.path(), &ExtractOptions::default()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("`evil`") && e.to_string().contains("symlink"),
            "{e}"
        );
        assert!(!outside.path().join("passwd").exists());

        // A symlink in a file's place is refused too, not replaced or followed.
        let tmp = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join("link.txt")).unwrap();
        let e = extract(&pkg, tmp.path(), &ExtractOptions::default()).unwrap_err();
        assert!(e.to_string().contains("link.txt"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn overwrite_off_refuses_existing_files() {
        let bytes = PackageBuilder::new(WriteOptions::default())
            .add_bytes("a.txt", b"new".to_vec())
            .unwrap()
            .write_to_vec()
            .unwrap();
        let pkg = Package::parse(&bytes).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"old").unwrap();
        let opts = ExtractOptions::default().overwrite(false);
        assert!(extract(&pkg, tmp.path(), &opts).is_err());
        assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"old");
        extract(&pkg, tmp.path(), &ExtractOptions::default()).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("a.txt")).unwrap(), b"new");
    }

    #[test]
    fn corrupted_block_leaves_no_bad_file() {
        for comp in [Compression::None, Compression::Zlib(6)] {
            let mut b = PackageBuilder::new(
                WriteOptions::default()
                    .block_size(BlockSize::K4)
                    .compression(comp),
            );
            b.add_bytes("a/first.bin", data(1, 20_000)).unwrap();
            b.add_bytes("b/second.bin", data(2, 20_000)).unwrap();
            let mut bytes = b.write_to_vec().unwrap();
            let pkg = Package::parse(&bytes).unwrap();
            // Damage the last block, which holds the end of `b/second.bin`.
            let last = pkg.index().get(BlockId(pkg.index().len() - 1)).unwrap();
            let at = (last.stored_offset + u64::from(last.stored_len) / 2) as usize;
            bytes[at] ^= 0x40;
            let pkg = Package::parse(&bytes).unwrap();
            for threads in [1, 2] {
                let tmp = tempfile::tempdir().unwrap();
                let opts = ExtractOptions::default().threads(threads);
                let e = extract(&pkg, tmp.path(), &opts).unwrap_err();
                assert_eq!(e.kind(), crate::ErrorKind::Integrity, "{e}");
                assert!(!tmp.path().join("b/second.bin").exists());
                let leftovers = walk(tmp.path())
                    .into_iter()
                    .filter(|p| p.to_string_lossy().contains(".sft-part-"))
                    .count();
                assert_eq!(leftovers, 0);
                // What did get written is correct.
                if let Ok(got) = std::fs::read(tmp.path().join("a/first.bin")) {
                    assert_eq!(got, data(1, 20_000));
                }
            }
        }
    }

    #[test]
    fn refuses_bad_components() {
        for bad in [
            "", "../x", "a/../b", "..", "/abs", "a//b", "a/", "C:/x", "a\\b", "a/./b", "nul\0",
        ] {
            let e = components(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(components("a/b c/d.txt").unwrap(), ["a", "b c", "d.txt"]);
    }
}
