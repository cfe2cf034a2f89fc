//! The local cache: the client's store of a package being streamed.
//!
//! A [`Cache`] is two files:
//!
//! - **the data file** (`OUT.sft.partial`): the package laid out at its
//!   final size (`set_len`, so a sparse file on file systems that have
//!   them), the prologue at offset 0 and each block's stored bytes at its
//!   stored offset. Once every block is present it is byte-identical to
//!   the source package.
//! - **the presence bitmap** (`OUT.sft.partial.blocks`): one bit per block,
//!   behind a header naming the package it belongs to.
//!
//! # The bitmap file
//!
//! ```text
//!   0  8  magic "SFTCACHE"
//!   8  4  version (1)
//!  12  4  block count
//!  16  8  package length
//!  24 16  version GUID
//!  40  4  CRC-32 of the prologue
//!  44  4  reserved (0)
//!  48  n  bitmap, ceil(block count / 8) bytes, bit i of byte i/8 = block i
//!  48+n 4 CRC-32 of bytes 0..48+n
//! ```
//! All integers little-endian. A bitmap whose magic, version, CRC or
//! package identity (version GUID, package length, prologue CRC, block
//! count) does not match the data file's prologue is stale: it is
//! discarded and the package is fetched from scratch.
//!
//! # Durability: a block is marked present only after its data is durable
//!
//! The bitmap is rewritten whole (write a temporary file, `fsync` it,
//! `rename` it over the old one), so a crash leaves either the old or the
//! new bitmap, never a torn one. The temporary file is written over a
//! spare of the bitmap's size that the previous checkpoint left, so a
//! disk that fills up during a fetch can still take the last bitmap: the
//! blocks written before the disk filled are kept for the resume (no
//! empty `.tmp` is left behind). Before each rewrite the data file is
//! `fdatasync`ed, so every bit the new bitmap sets covers bytes already on
//! disk. Rewrites are **batched** ([`CacheOptions::checkpoint_bytes`],
//! [`CacheOptions::checkpoint_interval`]) rather than done per block: a
//! rename and two syncs per 64 KiB block would cap throughput at the
//! disk's sync rate, while a checkpoint every 64 MiB or 0.5 s costs a few
//! syncs per fetch and loses at most that much work to a crash. An
//! append-only journal would checkpoint more cheaply but would still need
//! a data sync per checkpoint, and would need compaction; a bitmap of a
//! 1 GiB package with 64 KiB blocks is 2 KiB, so rewriting it is cheap.
//!
//! # Resuming: present blocks are re-verified eagerly
//!
//! [`Cache::open`] of an existing cache reads the prologue back from the
//! data file (it is CRC-checked by [`Prologue::parse`]), checks the
//! bitmap's identity against it, then reads every block the bitmap marks
//! present and checks its CRC-32 **before** reporting it present: a block
//! damaged on disk (or written by a run that was killed between its write
//! and a checkpoint that never happened) is dropped and fetched again.
//! This costs one sequential read of what is already cached, at disk
//! speed, and means every block the cache reports is verified, whether it
//! arrived in this run (checked by the session on arrival) or an earlier
//! one, so nothing downstream has to check again.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use sft::fetch::cache::{Cache, CacheOptions, CachePaths};
//! use sft::stream::{SessionConfig, StreamSession};
//! use sft::io::drive;
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![1u8; 300_000])?
//!     .write_to_vec()?;
//! let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
//! let out = dir.path().join("app.sft");
//! let mut cache = Cache::open(CachePaths::for_output(&out, None), CacheOptions::default())?;
//! assert!(cache.resume_prologue().is_none()); // nothing cached yet
//! let mut session = StreamSession::new(SessionConfig::default());
//! drive::drive(&mut session, &package, &mut cache)?;
//! cache.finish(&out)?; // verify, sync, rename atomically, drop the bitmap
//! assert_eq!(std::fs::read(&out).map_err(|e| sft::Error::io("read", e))?, package);
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, FormatError, FormatProblem, Region};
use crate::format::{BlockId, HEADER_LEN, Header};
use crate::index::BlockInfo;
use crate::read::{Block, Prologue};
use crate::stream::{BlockSink, VerifiedBlock};

const MAGIC: &[u8; 8] = b"SFTCACHE";
const VERSION: u32 = 1;
const BITMAP_HEADER: usize = 48;

/// Where a cache's two files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePaths {
    /// The data file (the package being assembled).
    pub data: PathBuf,
    /// The presence bitmap.
    pub bitmap: PathBuf,
}

impl CachePaths {
    /// The cache for output `out`: `OUT.partial` and `OUT.partial.blocks`
    /// beside it, or in `cache_dir` when given.
    ///
    /// ```
    /// use std::path::Path;
    /// use sft::fetch::cache::CachePaths;
    /// let p = CachePaths::for_output(Path::new("/srv/app.sft"), None);
    /// assert_eq!(p.data, Path::new("/srv/app.sft.partial"));
    /// assert_eq!(p.bitmap, Path::new("/srv/app.sft.partial.blocks"));
    /// let p = CachePaths::for_output(Path::new("app.sft"), Some(Path::new("/var/cache")));
    /// assert_eq!(p.data, Path::new("/var/cache/app.sft.partial"));
    /// ```
    pub fn for_output(out: &Path, cache_dir: Option<&Path>) -> Self {
        let mut name = out
            .file_name()
            .map_or_else(|| "package.sft".into(), |n| n.to_os_string());
        name.push(".partial");
        let data = match cache_dir {
            Some(d) => d.join(&name),
            None => out.with_file_name(&name),
        };
        Self::beside(data)
    }

    /// A data file and its bitmap, `<data>.blocks`.
    pub fn beside(data: PathBuf) -> Self {
        let mut b = data.clone().into_os_string();
        b.push(".blocks");
        CachePaths {
            data,
            bitmap: PathBuf::from(b),
        }
    }
}

/// When a [`Cache`] checkpoints (sync the data, persist the bitmap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheOptions {
    checkpoint_bytes: u64,
    checkpoint_interval: Duration,
    sync: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            checkpoint_bytes: 64 << 20,
            checkpoint_interval: Duration::from_millis(500),
            sync: true,
        }
    }
}

impl CacheOptions {
    /// Checkpoint after this many bytes of new blocks (default 64 MiB).
    pub fn checkpoint_bytes(mut self, n: u64) -> Self {
        self.checkpoint_bytes = n.max(1);
        self
    }
    /// Checkpoint when this long has passed since the last one and new
    /// blocks arrived (default 0.5 s).
    pub fn checkpoint_interval(mut self, d: Duration) -> Self {
        self.checkpoint_interval = d;
        self
    }
    /// `fdatasync` the data file before each checkpoint and before the
    /// final rename (default true). Off, a crash of the *machine* (not of
    /// the process: `kill -9` loses nothing the kernel holds) may leave
    /// blocks marked present that never reached the disk; they are caught
    /// by the re-verification on resume, so off is still safe, only
    /// wasteful after a power loss.
    ///
    /// ```
    /// use sft::fetch::cache::CacheOptions;
    /// let o = CacheOptions::default().sync(false);
    /// assert!(!o.is_syncing());
    /// ```
    pub fn sync(mut self, on: bool) -> Self {
        self.sync = on;
        self
    }
    /// See [`CacheOptions::sync`].
    pub fn is_syncing(&self) -> bool {
        self.sync
    }
}

/// What identifies the package a bitmap belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    block_count: u32,
    package_len: u64,
    version_guid: [u8; 16],
    prologue_crc: u32,
}

impl Identity {
    fn of(prologue: &Prologue<'_>) -> Self {
        let h = prologue.header();
        Identity {
            block_count: h.block_count,
            package_len: h.package_len(),
            version_guid: prologue.metadata().version_guid().0,
            prologue_crc: crc32fast::hash(prologue.as_bytes()),
        }
    }
}

/// The package being assembled: a [`BlockSink`] writing to the data file,
/// with a persistent presence bitmap; see the [module docs](self).
#[derive(Debug)]
pub struct Cache {
    paths: CachePaths,
    options: CacheOptions,
    file: File,
    prologue: Vec<u8>,
    identity: Option<Identity>,
    table: Vec<BlockInfo>,
    /// Bits of blocks written (in memory).
    present: Vec<u8>,
    present_count: u32,
    /// Blocks written since the last checkpoint.
    dirty_bytes: u64,
    dirty_blocks: u32,
    last_checkpoint: Instant,
    resumed_blocks: u32,
    resumed_bytes: u64,
    resumable: bool,
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let context = format!("{what} `{}`", path.display());
    move |e| Error::io(context, e)
}

/// Fill `buf` from `offset` of `file` ([`crate::io::pos`]).
pub(crate) fn pread_exact(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    crate::io::pos::read_exact_at(file, buf, offset)
}

/// Write all of `buf` at `offset` of `file` ([`crate::io::pos`]).
pub(crate) fn pwrite_all(file: &File, offset: u64, buf: &[u8]) -> io::Result<()> {
    crate::io::pos::write_all_at(file, buf, offset)
}

/// Read block `info`'s stored bytes from `file` into `buf` and check
/// its CRC.
pub(crate) fn read_stored(file: &File, info: &BlockInfo, buf: &mut Vec<u8>) -> Result<(), Error> {
    buf.resize(info.stored_len as usize, 0);
    pread_exact(file, info.stored_offset, buf)
        .map_err(|e| Error::io(format!("reading {} from the cache", info.id), e))?;
    Block::new(*info, buf)?.verify()
}

impl Cache {
    /// Open the cache at `paths`, creating the data file if needed. If it
    /// holds a package with a valid bitmap, the cache resumes: see
    /// [`Cache::resume_prologue`] and [`Cache::present_blocks`] (every
    /// block reported present was re-verified here). Anything else — no
    /// bitmap, a stale or damaged one, a damaged prologue — starts over
    /// with an empty data file.
    ///
    /// # Errors
    /// [`Error::Io`] if the files cannot be created or read.
    pub fn open(paths: CachePaths, options: CacheOptions) -> Result<Self, Error> {
        if let Some(parent) = paths.data.parent()
            && !parent.as_os_str().is_empty()
        {
            fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&paths.data)
            .map_err(io_err("opening", &paths.data))?;
        let mut cache = Cache {
            paths,
            options,
            file,
            prologue: Vec::new(),
            identity: None,
            table: Vec::new(),
            present: Vec::new(),
            present_count: 0,
            dirty_bytes: 0,
            dirty_blocks: 0,
            last_checkpoint: Instant::now(),
            resumed_blocks: 0,
            resumed_bytes: 0,
            resumable: false,
        };
        if !cache.try_resume()? {
            cache.discard()?;
        }
        Ok(cache)
    }

    /// The blocks recorded present by the cache files at `paths`, if they
    /// hold the package whose prologue is `prologue`; `None` if there is
    /// no such cache. Reads only: nothing is created, changed or
    /// re-verified (a block that fails its re-check when the fetch resumes
    /// is fetched again).
    ///
    /// # Errors
    /// [`Error::Io`] if the files exist but cannot be read.
    pub fn peek(paths: &CachePaths, p: &Prologue<'_>) -> Result<Option<Vec<bool>>, Error> {
        let prologue = p.as_bytes();
        let Ok(bitmap) = fs::read(&paths.bitmap) else {
            return Ok(None);
        };
        let Some((identity, bits)) = parse_bitmap(&bitmap) else {
            return Ok(None);
        };
        if Identity::of(p) != identity {
            return Ok(None);
        }
        let Ok(file) = File::open(&paths.data) else {
            return Ok(None);
        };
        let mut cached = vec![0u8; prologue.len()];
        if pread_exact(&file, 0, &mut cached).is_err() || cached != prologue {
            return Ok(None);
        }
        let n = identity.block_count as usize;
        Ok(Some(
            (0..n).map(|i| bits[i / 8] & (1 << (i % 8)) != 0).collect(),
        ))
    }

    /// Try to pick up where an earlier run stopped; false if there is
    /// nothing (valid) to resume.
    fn try_resume(&mut self) -> Result<bool, Error> {
        let Ok(bitmap) = fs::read(&self.paths.bitmap) else {
            return Ok(false);
        };
        let Some((identity, bits)) = parse_bitmap(&bitmap) else {
            return Ok(false);
        };
        let len = self
            .file
            .metadata()
            .map_err(io_err("reading", &self.paths.data))?
            .len();
        if len != identity.package_len || len < HEADER_LEN as u64 {
            return Ok(false);
        }
        let mut head = vec![0u8; HEADER_LEN];
        if pread_exact(&self.file, 0, &mut head).is_err() {
            return Ok(false);
        }
        let Ok(header) = Header::parse(&head) else {
            return Ok(false);
        };
        let Ok(plen) = usize::try_from(header.prologue_len) else {
            return Ok(false);
        };
        if header.prologue_len > len {
            return Ok(false);
        }
        let mut prologue = vec![0u8; plen];
        if pread_exact(&self.file, 0, &mut prologue).is_err() {
            return Ok(false);
        }
        let table = match Prologue::parse(&prologue) {
            Ok(p) if Identity::of(&p) == identity => {
                let index = p.index();
                match index
                    .ids()
                    .map(|id| index.get(id))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(t) => t,
                    Err(_) => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        // Eager re-verification of every block marked present.
        let mut present = vec![0u8; bits.len()];
        let mut buf = Vec::new();
        let (mut count, mut bytes) = (0u32, 0u64);
        for info in &table {
            let i = info.id.0 as usize;
            if bits[i / 8] & (1 << (i % 8)) == 0 {
                continue;
            }
            if read_stored(&self.file, info, &mut buf).is_ok() {
                present[i / 8] |= 1 << (i % 8);
                count += 1;
                bytes += u64::from(info.stored_len);
            }
        }
        self.prologue = prologue;
        self.identity = Some(identity);
        self.table = table;
        self.present = present;
        self.present_count = count;
        self.resumed_blocks = count;
        self.resumed_bytes = bytes;
        self.resumable = true;
        Ok(true)
    }

    /// Forget everything cached: an empty data file, no bitmap. Used when
    /// the source turns out to hold another package.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn discard(&mut self) -> Result<(), Error> {
        self.remove_spare();
        match fs::remove_file(&self.paths.bitmap) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &self.paths.bitmap)(e)),
        }
        // Not if it is empty already (a new cache): on ext4, truncating a
        // file to 0 marks it to have all its data flushed when it is
        // closed (`auto_da_alloc`), which would add a writeback of the
        // whole package to every fetch, even with syncing off.
        let len = self
            .file
            .metadata()
            .map_err(io_err("reading", &self.paths.data))?
            .len();
        if len > 0 {
            self.file
                .set_len(0)
                .map_err(io_err("truncating", &self.paths.data))?;
        }
        self.prologue.clear();
        self.identity = None;
        self.table.clear();
        self.present.clear();
        self.present_count = 0;
        self.dirty_bytes = 0;
        self.dirty_blocks = 0;
        self.resumed_blocks = 0;
        self.resumed_bytes = 0;
        self.resumable = false;
        Ok(())
    }

    /// The cache's paths.
    pub fn paths(&self) -> &CachePaths {
        &self.paths
    }

    /// The prologue of the package being resumed, if the cache holds one
    /// (give it to [`crate::stream::StreamSession::with_prologue`]).
    pub fn resume_prologue(&self) -> Option<&[u8]> {
        self.resumable.then_some(self.prologue.as_slice())
    }

    /// The prologue, once known (resumed, or received in this run).
    pub fn prologue(&self) -> Option<&[u8]> {
        self.identity.map(|_| self.prologue.as_slice())
    }

    /// The blocks present (verified), in id order.
    pub fn present_blocks(&self) -> impl Iterator<Item = BlockId> + '_ {
        (0..self.table.len() as u32)
            .filter(|&i| self.is_present(BlockId(i)))
            .map(BlockId)
    }

    /// True if block `id` is present.
    pub fn is_present(&self, id: BlockId) -> bool {
        let i = id.0 as usize;
        self.present
            .get(i / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    /// Number of blocks present.
    pub fn present_count(&self) -> u32 {
        self.present_count
    }

    /// Blocks and stored bytes found present (and re-verified) at open.
    pub fn resumed(&self) -> (u32, u64) {
        (self.resumed_blocks, self.resumed_bytes)
    }

    /// The data file, for reading blocks back.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The block records, once the prologue is known.
    pub fn blocks(&self) -> &[BlockInfo] {
        &self.table
    }

    /// True once every block is present.
    pub fn is_complete(&self) -> bool {
        self.identity.is_some() && self.present_count as usize == self.table.len()
    }

    /// Make every block written so far durable and record it in the
    /// bitmap: `fdatasync` the data file, then atomically replace the
    /// bitmap (temporary file, `fsync`, `rename`). A no-op before the
    /// prologue is known.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn checkpoint(&mut self) -> Result<(), Error> {
        let Some(identity) = self.identity else {
            return Ok(());
        };
        if self.options.sync {
            self.file
                .sync_data()
                .map_err(io_err("syncing", &self.paths.data))?;
        }
        let bytes = encode_bitmap(&identity, &self.present);
        let tmp = self.spare_path();
        let written = (|| {
            // Over the spare left by the last checkpoint, in place: its
            // blocks are already allocated, so this works on a full disk.
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&tmp)
                .map_err(io_err("creating", &tmp))?;
            f.write_all(&bytes).map_err(io_err("writing", &tmp))?;
            f.set_len(bytes.len() as u64)
                .map_err(io_err("writing", &tmp))?;
            if self.options.sync {
                f.sync_all().map_err(io_err("syncing", &tmp))?;
            }
            fs::rename(&tmp, &self.paths.bitmap).map_err(io_err("renaming", &tmp))
        })();
        if let Err(e) = written {
            // No half-written debris (a 0-byte `.tmp` on a full disk).
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        // The spare for the next checkpoint, while there is room: if the
        // disk fills before then, the bitmap can still be written.
        if fs::write(&tmp, &bytes).is_err() {
            let _ = fs::remove_file(&tmp);
        }
        self.dirty_bytes = 0;
        self.dirty_blocks = 0;
        self.last_checkpoint = Instant::now();
        Ok(())
    }

    /// `<bitmap>.tmp`: the next bitmap is written here and renamed over
    /// the bitmap; between checkpoints it is kept as a spare of the
    /// bitmap's size (see [`Cache::checkpoint`]), removed when the cache
    /// is finished, discarded or dropped.
    fn spare_path(&self) -> PathBuf {
        let mut tmp = self.paths.bitmap.clone().into_os_string();
        tmp.push(".tmp");
        PathBuf::from(tmp)
    }

    fn remove_spare(&self) {
        let _ = fs::remove_file(self.spare_path());
    }

    fn maybe_checkpoint(&mut self) -> Result<(), Error> {
        if self.dirty_blocks > 0
            && (self.dirty_bytes >= self.options.checkpoint_bytes
                || self.last_checkpoint.elapsed() >= self.options.checkpoint_interval)
        {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Check the finished package and move it to `out` atomically: every
    /// block must be present; the prologue is read back and parsed (all
    /// its CRCs), the file length checked, the data synced, then the data
    /// file renamed to `out` (copied then renamed if `out` is on another
    /// file system) and the bitmap removed. Blocks need no second check:
    /// each was verified on arrival or, for resumed ones, at open.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if blocks are missing; as
    /// [`Prologue::parse`] if the prologue on disk is damaged;
    /// [`Error::Io`].
    pub fn finish(mut self, out: &Path) -> Result<(), Error> {
        let Some(identity) = self.identity else {
            return Err(Error::invalid("the cache holds no package yet"));
        };
        if !self.is_complete() {
            return Err(Error::invalid(format!(
                "the cache holds {} of {} blocks",
                self.present_count,
                self.table.len()
            )));
        }
        let mut prologue = vec![0u8; self.prologue.len()];
        pread_exact(&self.file, 0, &mut prologue).map_err(io_err("reading", &self.paths.data))?;
        let p = Prologue::parse(&prologue)?;
        let len = self
            .file
            .metadata()
            .map_err(io_err("reading", &self.paths.data))?
            .len();
        if Identity::of(&p) != identity || len != identity.package_len {
            return Err(FormatError::new(
                Region::Data,
                0,
                FormatProblem::Inconsistent {
                    field: "package length",
                    expected: identity.package_len,
                    found: len,
                },
            )
            .into());
        }
        if self.options.sync {
            self.file
                .sync_data()
                .map_err(io_err("syncing", &self.paths.data))?;
        }
        move_into_place(&self.paths.data, out, self.options.sync)?;
        self.remove_spare();
        match fs::remove_file(&self.paths.bitmap) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &self.paths.bitmap)(e)),
        }?;
        self.identity = None;
        Ok(())
    }
}

/// Rename `from` to `to`; across file systems, copy to a temporary file
/// beside `to` and rename that.
fn move_into_place(from: &Path, to: &Path, sync: bool) -> Result<(), Error> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    let mut tmp = to.to_path_buf().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::copy(from, &tmp).map_err(io_err("copying to", &tmp))?;
    if sync {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err("syncing", &tmp))?;
    }
    fs::rename(&tmp, to).map_err(io_err("renaming", &tmp))?;
    fs::remove_file(from).map_err(io_err("removing", from))
}

fn encode_bitmap(id: &Identity, bits: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(BITMAP_HEADER + bits.len() + 4);
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&id.block_count.to_le_bytes());
    v.extend_from_slice(&id.package_len.to_le_bytes());
    v.extend_from_slice(&id.version_guid);
    v.extend_from_slice(&id.prologue_crc.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(bits);
    let crc = crc32fast::hash(&v);
    v.extend_from_slice(&crc.to_le_bytes());
    v
}

fn parse_bitmap(b: &[u8]) -> Option<(Identity, Vec<u8>)> {
    let u32_at = |at: usize| {
        b.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
    };
    if b.len() < BITMAP_HEADER + 4 || b.get(..8)? != MAGIC || u32_at(8)? != VERSION {
        return None;
    }
    let body = b.len() - 4;
    if crc32fast::hash(&b[..body]) != u32_at(body)? {
        return None;
    }
    let block_count = u32_at(12)?;
    let package_len = u64::from_le_bytes(b.get(16..24)?.try_into().ok()?);
    let version_guid: [u8; 16] = b.get(24..40)?.try_into().ok()?;
    let prologue_crc = u32_at(40)?;
    let nbytes = (block_count as usize).div_ceil(8);
    if body - BITMAP_HEADER != nbytes {
        return None;
    }
    Some((
        Identity {
            block_count,
            package_len,
            version_guid,
            prologue_crc,
        },
        b[BITMAP_HEADER..body].to_vec(),
    ))
}

impl BlockSink for Cache {
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let p = Prologue::parse(bytes)?;
        let identity = Identity::of(&p);
        let index = p.index();
        let table = index
            .ids()
            .map(|id| index.get(id))
            .collect::<Result<Vec<_>, _>>()?;
        if self.identity.is_some_and(|old| old != identity) {
            self.discard()?;
        }
        self.file
            .set_len(identity.package_len)
            .map_err(io_err("sizing", &self.paths.data))?;
        pwrite_all(&self.file, 0, bytes).map_err(io_err("writing", &self.paths.data))?;
        if self.identity != Some(identity) {
            self.present = vec![0u8; (identity.block_count as usize).div_ceil(8)];
            self.present_count = 0;
        }
        self.prologue = bytes.to_vec();
        self.table = table;
        self.identity = Some(identity);
        // The bitmap exists from now on: a killed run resumes with the
        // prologue instead of fetching it again.
        self.checkpoint()
    }

    fn block(&mut self, block: &VerifiedBlock<'_>) -> Result<(), Error> {
        self.check_known(block)?;
        pwrite_all(&self.file, block.info.stored_offset, block.stored)
            .map_err(io_err("writing", &self.paths.data))?;
        self.record(block)
    }

    /// The run in one write, then each block recorded. If the write fails
    /// (a full disk), the blocks that fit are written one by one and
    /// recorded before the error is returned, so a resume keeps them.
    fn block_run(&mut self, stored: &[u8], blocks: &[BlockInfo]) -> Result<(), Error> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(());
        };
        let span = last.stored_range().end - first.stored_offset;
        if self.identity.is_none()
            || last.id.0 as usize >= self.table.len()
            || span != stored.len() as u64
        {
            return Err(Error::invalid(format!(
                "blocks {}..={} do not match the cached package",
                first.id.0, last.id.0
            )));
        }
        if let Err(e) = pwrite_all(&self.file, first.stored_offset, stored) {
            // A full disk, say: keep the whole blocks that still fit,
            // written one by one, for the resume.
            let mut at = 0usize;
            for info in blocks {
                let end = at + info.stored_len as usize;
                if pwrite_all(&self.file, info.stored_offset, &stored[at..end]).is_err() {
                    break;
                }
                self.record_id(info.id.0 as usize, u64::from(info.stored_len));
                at = end;
            }
            return Err(io_err("writing", &self.paths.data)(e));
        }
        for info in blocks {
            self.record_id(info.id.0 as usize, u64::from(info.stored_len));
        }
        self.maybe_checkpoint()
    }

    fn needs_decoded(&self) -> bool {
        false
    }
}

impl Cache {
    /// Check that `block` belongs to the package being cached.
    fn check_known(&self, block: &VerifiedBlock<'_>) -> Result<(), Error> {
        if self.identity.is_none() || block.info.id.0 as usize >= self.table.len() {
            return Err(Error::invalid(format!(
                "{} arrived before the prologue",
                block.info.id
            )));
        }
        Ok(())
    }

    /// Mark `block` (already in the data file) present in memory; it
    /// reaches the bitmap file at the next checkpoint, after a data sync.
    fn record(&mut self, block: &VerifiedBlock<'_>) -> Result<(), Error> {
        self.record_id(block.info.id.0 as usize, block.stored.len() as u64);
        self.maybe_checkpoint()
    }

    /// Mark block `i` (`len` stored bytes) present in memory.
    fn record_id(&mut self, i: usize, len: u64) {
        if self.present[i / 8] & (1 << (i % 8)) == 0 {
            self.present[i / 8] |= 1 << (i % 8);
            self.present_count += 1;
        }
        self.dirty_bytes += len;
        self.dirty_blocks += 1;
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        // Best effort: keep what arrived since the last checkpoint (on a
        // full disk too: the bitmap goes over the spare, in place).
        if self.identity.is_some() && self.dirty_blocks > 0 {
            let _ = self.checkpoint();
        }
        self.remove_spare();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_round_trip_and_damage() {
        let id = Identity {
            block_count: 13,
            package_len: 1234,
            version_guid: [7; 16],
            prologue_crc: 99,
        };
        let bits = vec![0b1010_1010, 0b1];
        let enc = encode_bitmap(&id, &bits);
        assert_eq!(parse_bitmap(&enc), Some((id, bits)));
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 1;
            assert_eq!(parse_bitmap(&bad), None, "byte {i}");
        }
        assert_eq!(parse_bitmap(&enc[..enc.len() - 1]), None);
    }
}
