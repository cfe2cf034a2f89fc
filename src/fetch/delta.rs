//! Delta fetches: a new version of a package built from the blocks an
//! earlier version already holds (`sft fetch NEW --base OLD`).
//!
//! A v1.1 package records the BLAKE3 hash of every block's stored bytes
//! (`docs/FORMAT.md` §8a). A client that holds version N (any local
//! package file, or the finished output of an earlier fetch) and fetches
//! version N+1 copies every block whose hash it already has from N,
//! checked against N+1's record (CRC-32 and hash) before it counts, and
//! fetches only the rest. The exact bytes to fetch are known from N+1's
//! prologue alone: [`DeltaPlan`].
//!
//! How many blocks two versions share depends on how N+1 was packed:
//! `sft pack --like N.sft` lays out unchanged files and runs of bytes so
//! that they fill whole blocks of the same content as in N (`docs/DELTA.md`).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::format::{ContentId, HASH_LEN};
use crate::index::BlockInfo;
use crate::read::{Block, Decoder, Prologue};

/// An earlier version's blocks, by the BLAKE3 hash of their stored bytes.
#[derive(Debug)]
pub struct Base {
    path: PathBuf,
    file: File,
    content_id: ContentId,
    by_hash: HashMap<[u8; HASH_LEN], BlockInfo>,
    blocks: u32,
}

impl Base {
    /// Open a local package as a base: read its prologue and index its
    /// blocks by hash. A v1.1 base is indexed from its prologue alone; a
    /// v1.0 base (no hash section) has each block read and hashed, once.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; the package's own errors for a base
    /// that is not a valid package (its blocks are checked when used).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let io = |what: &'static str| {
            move |e: std::io::Error| Error::io(format!("{what} base `{}`", path.display()), e)
        };
        let file = File::open(path).map_err(io("opening"))?;
        let source =
            crate::io::file::FileSource::from_file(file.try_clone().map_err(io("opening"))?, path);
        let probe = super::probe::probe_source(&source).map_err(|e| match e {
            Error::Io { context, source } => Error::Io {
                context: format!("{context} (base `{}`)", path.display()),
                source,
            },
            other => other,
        })?;
        let prologue = probe.prologue()?;
        let index = prologue.index();
        let records = index.checked_records()?;
        let mut by_hash = HashMap::with_capacity(records.len());
        let mut buf = Vec::new();
        for info in records {
            let hash = match info.hash {
                Some(h) => h,
                None => {
                    crate::fetch::cache::read_stored(&file, &info, &mut buf)?;
                    *blake3::hash(&buf).as_bytes()
                }
            };
            by_hash.entry(hash).or_insert(info);
        }
        Ok(Base {
            path: path.to_owned(),
            file,
            content_id: prologue.content_id(),
            by_hash,
            blocks: index.len(),
        })
    }

    /// The base's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The base's content identity.
    pub fn content_id(&self) -> ContentId {
        self.content_id
    }

    /// Blocks in the base.
    pub fn block_count(&self) -> u32 {
        self.blocks
    }

    /// Whether the base holds a block with these stored bytes' hash.
    pub fn has(&self, hash: &[u8; HASH_LEN]) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Read the base's copy of the block that `new` describes (a block of
    /// the new version) into `buf`, and check it against `new`'s record:
    /// CRC-32 and hash and, with `decoder`, that it decodes to its length.
    /// `Ok(false)` if the base has no such block or its copy fails a
    /// check (a damaged base: the block is fetched instead).
    ///
    /// # Errors
    /// [`Error::Io`] if the base cannot be read.
    pub fn copy_into(
        &self,
        new: &BlockInfo,
        buf: &mut Vec<u8>,
        decoder: Option<(&mut Decoder, &mut Vec<u8>)>,
    ) -> Result<bool, Error> {
        let Some(hash) = &new.hash else {
            return Ok(false);
        };
        let Some(old) = self.by_hash.get(hash) else {
            return Ok(false);
        };
        if old.stored_len != new.stored_len {
            return Ok(false);
        }
        crate::fetch::cache::read_stored(&self.file, old, buf)?;
        let Ok(block) = Block::new(*new, buf) else {
            return Ok(false);
        };
        if block.verify().is_err() {
            return Ok(false);
        }
        if let Some((d, out)) = decoder
            && d.decode_into(&block, out).is_err()
        {
            return Ok(false);
        }
        Ok(true)
    }
}

impl Base {
    /// Copy into `cache` every block it lacks that the base holds, each
    /// checked against the cache's record of it (CRC-32, hash and, with
    /// `decode`, that it decodes to its length) on every core, and mark
    /// them present in `session`. Returns the blocks and stored bytes
    /// copied.
    ///
    /// # Errors
    /// [`Error::Io`] reading the base or writing the cache.
    pub(crate) fn copy_missing(
        &self,
        cache: &mut super::cache::Cache,
        session: &mut crate::stream::StreamSession,
        decode: bool,
    ) -> Result<(u32, u64), Error> {
        use crate::stream::{BlockSink, VerifiedBlock};
        let todo: Vec<BlockInfo> = cache
            .blocks()
            .iter()
            .filter(|b| !cache.is_present(b.id) && b.hash.is_some_and(|h| self.has(&h)))
            .copied()
            .collect();
        if todo.is_empty() {
            return Ok((0, 0));
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(todo.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) =
            std::sync::mpsc::sync_channel::<Result<(BlockInfo, Vec<u8>), Error>>(4 * threads);
        let (mut count, mut bytes) = (0u32, 0u64);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let tx = tx.clone();
                let (todo, next) = (&todo, &next);
                scope.spawn(move || {
                    let (mut decoder, mut out) = (Decoder::new(), Vec::new());
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(info) = todo.get(i) else { return };
                        let mut buf = Vec::new();
                        let dec = decode.then_some((&mut decoder, &mut out));
                        let r = self.copy_into(info, &mut buf, dec).map(|ok| (ok, buf));
                        let msg = match r {
                            Ok((true, buf)) => Ok((*info, buf)),
                            // Damaged in the base: fetched instead.
                            Ok((false, _)) => continue,
                            Err(e) => Err(e),
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            for msg in rx {
                let (info, buf) = msg?;
                let decoded: &[u8] = if info.codec == crate::Codec::Stored {
                    &buf
                } else {
                    &[]
                };
                cache.block(&VerifiedBlock {
                    info,
                    stored: &buf,
                    decoded,
                })?;
                session.mark_present(info.id)?;
                count += 1;
                bytes += u64::from(info.stored_len);
            }
            Ok::<(), Error>(())
        })?;
        Ok((count, bytes))
    }
}

/// What a fetch of a package will move, known from its prologue alone
/// (`sft fetch --dry-run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeltaPlan {
    /// The new package's content identity (if it has block hashes).
    pub content_id: Option<ContentId>,
    /// Blocks in the new package.
    pub total_blocks: u32,
    /// Bytes of the whole new package.
    pub package_bytes: u64,
    /// Bytes of its prologue (fetched first, whatever else).
    pub prologue_bytes: u64,
    /// Blocks already in the local cache of an interrupted fetch.
    pub resumed_blocks: u32,
    /// Their stored bytes.
    pub resumed_bytes: u64,
    /// Blocks the base holds (copied, not fetched).
    pub reused_blocks: u32,
    /// Their stored bytes.
    pub reused_bytes: u64,
    /// Blocks to fetch.
    pub fetch_blocks: u32,
    /// Their stored bytes.
    pub fetch_bytes: u64,
    /// Bytes the source will deliver: the prologue (or, on a resume, the
    /// 128-byte identity check) and the blocks to fetch.
    pub transfer_bytes: u64,
}

impl DeltaPlan {
    /// The plan for `prologue` (the new version) given a base and the
    /// blocks a cache already holds (`present`).
    pub fn new(
        prologue: &Prologue<'_>,
        base: Option<&Base>,
        present: &dyn Fn(u32) -> bool,
        resuming: bool,
    ) -> Result<Self, Error> {
        let index = prologue.index();
        let h = prologue.header();
        let mut p = DeltaPlan {
            content_id: prologue.has_block_hashes().then(|| prologue.content_id()),
            total_blocks: index.len(),
            package_bytes: h.prologue_len + h.data_len,
            prologue_bytes: h.prologue_len,
            ..DeltaPlan::default()
        };
        for info in index.checked_records()? {
            let n = u64::from(info.stored_len);
            if present(info.id.0) {
                p.resumed_blocks += 1;
                p.resumed_bytes += n;
            } else if let (Some(b), Some(hash)) = (base, &info.hash)
                && b.has(hash)
            {
                p.reused_blocks += 1;
                p.reused_bytes += n;
            } else {
                p.fetch_blocks += 1;
                p.fetch_bytes += n;
            }
        }
        let head = if resuming {
            crate::format::HEADER_LEN as u64
        } else {
            h.prologue_len
        };
        p.transfer_bytes = head + p.fetch_bytes;
        Ok(p)
    }
}

/// The magic bytes of a differential package (`.dsft`).
pub const DSFT_MAGIC: [u8; 8] = *b"\x89DSFT\r\n\x1a";
/// Length of a DSFT header.
pub const DSFT_HEADER_LEN: usize = 128;

/// The header of a differential package (`docs/DELTA.md`): which base it
/// applies to, which package it rebuilds, and how much follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DsftHeader {
    /// The content identity of the version it applies to.
    pub base: ContentId,
    /// The content identity of the version it rebuilds.
    pub target: ContentId,
    /// Length of the new prologue, which follows the header.
    pub prologue_len: u64,
    /// Length of the new package.
    pub package_len: u64,
    /// Blocks in the new package.
    pub block_count: u32,
    /// Blocks carried in the payload (those the base does not have).
    pub carried_blocks: u32,
    /// Bytes of the payload (their stored bytes, back to back).
    pub payload_len: u64,
}

impl DsftHeader {
    /// Parse and check a DSFT header (its first [`DSFT_HEADER_LEN`] bytes):
    /// magic, version, CRC, and lengths that add up without overflow.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the problem.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        use byteorder::{ByteOrder, LittleEndian as LE};
        let bad = |why: &str| Error::invalid(format!("not a usable DSFT: {why}"));
        let b = b
            .get(..DSFT_HEADER_LEN)
            .ok_or_else(|| bad("shorter than its 128-byte header"))?;
        if b[..8] != DSFT_MAGIC {
            return Err(bad("bad magic"));
        }
        if LE::read_u16(&b[8..]) != 1 {
            return Err(bad("unknown version"));
        }
        if crc32fast::hash(&b[..124]) != LE::read_u32(&b[124..]) {
            return Err(bad("header CRC mismatch"));
        }
        // Version 1 has one header length and no flags: anything else is
        // not a header this reader can write back the same.
        if LE::read_u32(&b[12..]) != DSFT_HEADER_LEN as u32
            || b[10..12] != [0, 0]
            || b[112..124].iter().any(|&x| x != 0)
        {
            return Err(bad(
                "a header length or reserved bytes that version 1 does not have",
            ));
        }
        let id = |at: usize| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(&b[at..at + HASH_LEN]);
            ContentId(h)
        };
        let h = DsftHeader {
            base: id(16),
            target: id(48),
            prologue_len: LE::read_u64(&b[80..]),
            package_len: LE::read_u64(&b[88..]),
            block_count: LE::read_u32(&b[96..]),
            carried_blocks: LE::read_u32(&b[100..]),
            payload_len: LE::read_u64(&b[104..]),
        };
        if h.carried_blocks > h.block_count
            || h.prologue_len > super::probe::MAX_PROLOGUE_BYTES
            || h.prologue_len > h.package_len
            || h.payload_len > h.package_len - h.prologue_len
        {
            return Err(bad("lengths that do not add up"));
        }
        Ok(h)
    }

    /// Encode as 128 bytes.
    pub fn encode(&self) -> [u8; DSFT_HEADER_LEN] {
        use byteorder::{ByteOrder, LittleEndian as LE};
        let mut b = [0u8; DSFT_HEADER_LEN];
        b[..8].copy_from_slice(&DSFT_MAGIC);
        LE::write_u16(&mut b[8..], 1);
        LE::write_u32(&mut b[12..], DSFT_HEADER_LEN as u32);
        b[16..48].copy_from_slice(&self.base.0);
        b[48..80].copy_from_slice(&self.target.0);
        LE::write_u64(&mut b[80..], self.prologue_len);
        LE::write_u64(&mut b[88..], self.package_len);
        LE::write_u32(&mut b[96..], self.block_count);
        LE::write_u32(&mut b[100..], self.carried_blocks);
        LE::write_u64(&mut b[104..], self.payload_len);
        let crc = crc32fast::hash(&b[..124]);
        LE::write_u32(&mut b[124..], crc);
        b
    }
}

/// A temporary file beside `out`, renamed over it by [`Staged::commit`],
/// removed if dropped first.
struct Staged {
    tmp: PathBuf,
    out: PathBuf,
    file: Option<std::io::BufWriter<File>>,
}

impl Staged {
    fn create(out: &Path) -> Result<Self, Error> {
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp)
            .map_err(|e| Error::io(format!("creating `{}`", tmp.display()), e))?;
        Ok(Staged {
            tmp,
            out: out.to_owned(),
            file: Some(std::io::BufWriter::new(file)),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        use std::io::Write;
        match self.file.as_mut() {
            Some(f) => f
                .write_all(bytes)
                .map_err(|e| Error::io(format!("writing `{}`", self.tmp.display()), e)),
            None => Err(Error::invalid("write after commit")),
        }
    }

    /// Flush and sync; then `check` the finished temporary file; then
    /// rename it over the output.
    fn commit(mut self, check: impl FnOnce(&Path) -> Result<(), Error>) -> Result<(), Error> {
        let io = |what: &str, p: &Path| {
            let c = format!("{what} `{}`", p.display());
            move |e| Error::io(c, e)
        };
        let f = self
            .file
            .take()
            .ok_or_else(|| Error::invalid("committed twice"))?;
        let f = f
            .into_inner()
            .map_err(|e| Error::io(format!("writing `{}`", self.tmp.display()), e.into_error()))?;
        f.sync_all().map_err(io("syncing", &self.tmp))?;
        drop(f);
        check(&self.tmp)?;
        std::fs::rename(&self.tmp, &self.out).map_err(io("renaming", &self.tmp))?;
        let dir = self.out.parent().filter(|p| !p.as_os_str().is_empty());
        crate::io::atomic::sync_dir(dir.unwrap_or(Path::new(".")))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// What [`diff`] or [`patch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiffReport {
    /// Blocks of the new version.
    pub blocks: u32,
    /// Blocks carried in the DSFT (the base lacks them).
    pub carried_blocks: u32,
    /// Their stored bytes.
    pub carried_bytes: u64,
    /// Bytes of the DSFT file.
    pub dsft_bytes: u64,
    /// Bytes of the new package.
    pub package_bytes: u64,
}

fn open_local(path: &Path) -> Result<(File, super::probe::Probe), Error> {
    let file =
        File::open(path).map_err(|e| Error::io(format!("opening `{}`", path.display()), e))?;
    let source = crate::io::file::FileSource::from_file(
        file.try_clone()
            .map_err(|e| Error::io(format!("opening `{}`", path.display()), e))?,
        path,
    );
    let probe = super::probe::probe_source(&source)?;
    Ok((file, probe))
}

/// Write the differential package of `new` against `old` to `out`
/// (atomically): `new`'s prologue and the stored bytes of every block of
/// `new` whose hash `old` lacks. Both must be v1.1 packages (block
/// hashes); App-V's DSFTs likewise applied between two versions only.
///
/// # Errors
/// [`Error::InvalidInput`] if `new` has no block hashes; [`Error::Io`];
/// a block of `new` that fails its checks.
pub fn diff(old: &Path, new: &Path, out: &Path) -> Result<DiffReport, Error> {
    let base = Base::open(old)?;
    let (file, probe) = open_local(new)?;
    let prologue = probe.prologue()?;
    if !prologue.has_block_hashes() {
        return Err(Error::invalid(format!(
            "`{}` has no block hashes (a v1.0 package): pack it again to diff it",
            new.display()
        )));
    }
    let records = prologue.index().checked_records()?;
    let carried: Vec<&BlockInfo> = records
        .iter()
        .filter(|b| b.hash.is_none_or(|h| !base.has(&h)))
        .collect();
    let payload_len: u64 = carried.iter().map(|b| u64::from(b.stored_len)).sum();
    let h = DsftHeader {
        base: base.content_id(),
        target: prologue.content_id(),
        prologue_len: prologue.header().prologue_len,
        package_len: probe.package_len(),
        block_count: records.len() as u32,
        carried_blocks: carried.len() as u32,
        payload_len,
    };
    let mut staged = Staged::create(out)?;
    staged.write(&h.encode())?;
    staged.write(probe.as_bytes())?;
    let mut buf = Vec::new();
    for info in &carried {
        crate::fetch::cache::read_stored(&file, info, &mut buf)?;
        Block::new(**info, &buf)?.verify()?;
        staged.write(&buf)?;
    }
    staged.commit(|_| Ok(()))?;
    Ok(DiffReport {
        blocks: h.block_count,
        carried_blocks: h.carried_blocks,
        carried_bytes: payload_len,
        dsft_bytes: DSFT_HEADER_LEN as u64 + h.prologue_len + payload_len,
        package_bytes: h.package_len,
    })
}

/// Rebuild the new version from `old` and the differential package
/// `dsft`, into `out` (atomically, and only once the whole result passes
/// full verification): byte-identical to the package `diff` was given.
///
/// # Errors
/// [`Error::InvalidInput`] for a DSFT made against another base (naming
/// both identities), a damaged or truncated DSFT, or a base block that
/// fails its check; [`Error::Io`].
pub fn patch(old: &Path, dsft: &Path, out: &Path) -> Result<DiffReport, Error> {
    use std::io::Read;
    let base = Base::open(old)?;
    let io = |what: &'static str| {
        move |e: std::io::Error| Error::io(format!("{what} `{}`", dsft.display()), e)
    };
    let f = File::open(dsft).map_err(io("opening"))?;
    let len = f.metadata().map_err(io("reading"))?.len();
    let mut r = std::io::BufReader::new(f);
    let mut head = [0u8; DSFT_HEADER_LEN];
    r.read_exact(&mut head)
        .map_err(|_| Error::invalid(format!("`{}` is not a DSFT: too short", dsft.display())))?;
    let h = DsftHeader::parse(&head)?;
    if h.base != base.content_id() {
        return Err(Error::invalid(format!(
            "`{}` applies to {}, but `{}` is {}",
            dsft.display(),
            h.base,
            old.display(),
            base.content_id()
        )));
    }
    let expected = DSFT_HEADER_LEN as u64 + h.prologue_len + h.payload_len;
    if len != expected {
        return Err(Error::invalid(format!(
            "`{}` is {len} bytes, its header says {expected}",
            dsft.display()
        )));
    }
    // Bounded by MAX_PROLOGUE_BYTES (DsftHeader::parse) and by the file.
    let mut pro = vec![0u8; h.prologue_len as usize];
    r.read_exact(&mut pro).map_err(io("reading"))?;
    if ContentId::of_prologue(&pro) != h.target {
        return Err(Error::invalid(format!(
            "`{}`: its prologue is not {} (damaged)",
            dsft.display(),
            h.target
        )));
    }
    let prologue = Prologue::parse(&pro)?;
    if !prologue.has_block_hashes() || prologue.index().len() != h.block_count {
        return Err(Error::invalid(format!(
            "`{}`: its prologue does not match its header",
            dsft.display()
        )));
    }
    let records = prologue.index().checked_records()?;
    if prologue.header().prologue_len + prologue.header().data_len != h.package_len {
        return Err(Error::invalid(format!(
            "`{}`: its prologue does not match its header",
            dsft.display()
        )));
    }
    let mut staged = Staged::create(out)?;
    staged.write(&pro)?;
    let (mut buf, mut carried, mut carried_bytes) = (Vec::new(), 0u32, 0u64);
    for info in &records {
        let have = info.hash.is_some_and(|hh| base.has(&hh));
        if have {
            if !base.copy_into(info, &mut buf, None)? {
                return Err(Error::invalid(format!(
                    "{} of `{}` fails its check: the base is damaged",
                    info.id,
                    old.display()
                )));
            }
        } else {
            carried += 1;
            carried_bytes += u64::from(info.stored_len);
            if carried > h.carried_blocks || carried_bytes > h.payload_len {
                return Err(Error::invalid(format!(
                    "`{}` carries fewer blocks than the base lacks",
                    dsft.display()
                )));
            }
            buf.resize(info.stored_len as usize, 0);
            r.read_exact(&mut buf).map_err(io("reading"))?;
            Block::new(*info, &buf)?.verify().map_err(|e| {
                Error::invalid(format!(
                    "`{}`: a carried block is damaged: {e}",
                    dsft.display()
                ))
            })?;
        }
        staged.write(&buf)?;
    }
    if carried != h.carried_blocks || carried_bytes != h.payload_len {
        return Err(Error::invalid(format!(
            "`{}` carries {} blocks, the base lacks {carried}",
            dsft.display(),
            h.carried_blocks
        )));
    }
    staged.commit(|tmp| {
        crate::io::package_file::PackageFile::open(tmp)?.verify()?;
        Ok(())
    })?;
    Ok(DiffReport {
        blocks: h.block_count,
        carried_blocks: carried,
        carried_bytes,
        dsft_bytes: len,
        package_bytes: h.package_len,
    })
}
