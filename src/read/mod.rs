//! Reading packages: [`Package`], a zero-copy view over a package's bytes.
//!
//! [`Package::parse`] validates the prologue (header, section table,
//! metadata) in time independent of the package's size; directory entries
//! and block records are validated, each against its own CRC, when they are
//! touched. [`Package::verify`] checks everything.

mod block;
mod entry;
#[cfg(feature = "std")]
mod io;
mod verify;

use alloc::borrow::Cow;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::prelude::*;

pub use block::{Block, Decoder};
#[cfg(feature = "std")]
pub(crate) use block::{BlockBuffer, Crc};
pub use entry::{Attributes, Entries, Entry, EntryCounts, Extents};
#[cfg(feature = "std")]
pub use io::FileReader;
#[cfg(feature = "std")]
pub(crate) use verify::{CheckScratch, check_blocks};
pub use verify::{Serial, StructureReport, VerifyReport, Workers};

use crate::error::{Error, FormatError, FormatProblem, Region};
use crate::format::guid::Guid;
use crate::format::layout::Layout;
use crate::format::{BlockId, Codec, Header, slice_at};
use crate::index::BlockIndex;

/// The prologue of a package on its own: header, metadata, directory and
/// block index, without the data region. This is what a streaming client
/// holds after its first request; it supports every look-up that needs no
/// block data.
///
/// ```
/// # fn main() -> sft::Result<()> {
/// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("a.txt", vec![1u8; 10_000])?
///     .write_to_vec()?;
/// let len = sft::format::Header::parse(&bytes)?.prologue_len as usize;
/// let pro = sft::read::Prologue::parse(&bytes[..len])?;
/// assert_eq!(pro.find("a.txt")?.map(|e| e.size()), Some(10_000));
/// assert_eq!(pro.index().len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Prologue<'data> {
    data: &'data [u8],
    layout: Layout,
}

impl<'data> Prologue<'data> {
    /// Parse a prologue: `data` must hold at least the header's
    /// `prologue_len` bytes from offset 0 (extra bytes are ignored).
    ///
    /// Unlike [`Package::parse`], which is O(1) and leaves directory and
    /// index records to be checked one by one when used, this checks the
    /// CRC of every section: a prologue is what a streaming client fetches
    /// and stores once, so all of it is checked before it is trusted (the
    /// cost is linear in bytes just received).
    ///
    /// # Errors
    /// As [`Package::parse`], and [`Error::Integrity`] naming the section
    /// whose CRC fails.
    pub fn parse(data: &'data [u8]) -> Result<Self, Error> {
        let layout = Layout::parse(data)?;
        verify::verify_sections(data, &layout.header)?;
        let len = layout.header.prologue_len as usize;
        Ok(Prologue {
            data: &data[..len],
            layout,
        })
    }

    /// A view over prologue bytes that [`Prologue::parse`] accepted
    /// before with this layout: no check is repeated (a reader that keeps
    /// the bytes and the layout gets its view back in O(1)).
    #[cfg(feature = "std")]
    pub(crate) fn from_checked(data: &'data [u8], layout: Layout) -> Self {
        Prologue { data, layout }
    }

    /// The layout [`Prologue::parse`] validated.
    #[cfg(feature = "std")]
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The structural checks of full verification on the prologue alone,
    /// as [`Package::verify_structure`]: every section CRC, every entry in
    /// order (parents, extents tiling the logical stream exactly once) and
    /// the storage layout of the block index. No block data is needed, so
    /// a reader holding only the prologue (a lazily read file, a stream)
    /// can check everything but the blocks up front.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("a/b.txt", b"text".to_vec())?
    ///     .write_to_vec()?;
    /// let len = sft::format::Header::parse(&bytes)?.prologue_len as usize;
    /// let r = sft::read::Prologue::parse(&bytes[..len])?.verify_structure()?;
    /// assert_eq!((r.entries, r.extents, r.block_records), (2, 1, 1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Package::verify_structure`].
    pub fn verify_structure(&self) -> Result<StructureReport, Error> {
        Package::from_layout(self.data, self.layout).verify_structure()
    }

    /// The prologue bytes.
    pub fn as_bytes(&self) -> &'data [u8] {
        self.data
    }

    /// The package's content identity: the BLAKE3 hash of the prologue
    /// (`docs/FORMAT.md` §8a). O(prologue length).
    pub fn content_id(&self) -> crate::format::ContentId {
        let len = self.layout.header.prologue_len as usize;
        crate::format::ContentId::of_prologue(&self.data[..len])
    }

    /// Whether the package records a BLAKE3 hash of every block (v1.1),
    /// so that its content identity binds its blocks too.
    pub fn has_block_hashes(&self) -> bool {
        self.layout.has_hashes()
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.layout.header
    }

    /// Metadata.
    pub fn metadata(&self) -> Metadata<'data> {
        Package::from_layout(self.data, self.layout).metadata()
    }

    /// The block index (records are in the prologue).
    pub fn index(&self) -> BlockIndex<'data> {
        BlockIndex::new(self.data, self.layout)
    }

    /// Number of entries.
    pub fn entry_count(&self) -> u64 {
        self.layout.entries.count()
    }

    /// Count files and directories in O(entries) with a small constant:
    /// one CRC over the entries section, then a few fields of each record
    /// (kind, extent run). Loads no entry (no entry CRC, path or extent
    /// is read), so it is much cheaper than counting with
    /// [`Prologue::entries`], which checks every entry in full.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("d/a.txt", b"a".to_vec())?
    ///     .add_bytes("d/b.txt", b"b".to_vec())?
    ///     .write_to_vec()?;
    /// let c = sft::Package::parse(&bytes)?.prologue().count_entries()?;
    /// assert_eq!((c.files, c.directories), (2, 1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Integrity`] if the entries section fails its CRC;
    /// [`Error::Format`] naming the entry for a record whose extent run
    /// is out of bounds (rule 35) or shared with an earlier entry
    /// (rule 58a), or whose kind is unknown (rule 37).
    pub fn count_entries(&self) -> Result<EntryCounts, Error> {
        entry::count(self.data, &self.layout)
    }

    /// Absolute offset of entry record `n` (for error messages).
    #[cfg(feature = "std")]
    pub(crate) fn entry_offset(&self, n: u64) -> u64 {
        self.layout.entry_offset(n)
    }

    /// Entry number `n`.
    ///
    /// # Errors
    /// As [`Package::entry_at`].
    pub fn entry_at(&self, n: u64) -> Result<Entry<'data>, Error> {
        entry::load(self.data, &self.layout, n)
    }

    /// Iterate over entries in path order.
    pub fn entries(&self) -> Entries<'data> {
        Entries::new(Package::from_layout(self.data, self.layout))
    }

    /// Look up an entry by path.
    ///
    /// # Errors
    /// As [`Package::find`].
    pub fn find(&self, path: &str) -> Result<Option<Entry<'data>>, Error> {
        Package::from_layout(self.data, self.layout).find(path)
    }
}

/// A parsed package borrowing its bytes: from a slice, a `Vec`, or a
/// memory map (`MappedPackage`, feature `mmap`).
///
/// `Package` holds only the byte slice, a small validated layout and the
/// cached outcome of its storage check; it allocates nothing at parse
/// time. It is `Clone` (cheap: no allocation) but not `Copy`, because that
/// cached outcome belongs to one value: keep one `Package` and borrow it.
///
/// # What reading a file guarantees
///
/// The first access to block data (any of [`Package::block`],
/// [`Package::read_block`], [`Package::read_file`], [`Package::read_at`],
/// [`Package::chunks`], `Package::reader` with feature `std`) checks every
/// block record and the storage layout once ([`BlockIndex::check_storage`], O(block count))
/// and remembers the outcome. So no read ever returns bytes of two blocks
/// that share stored bytes, and a read returns at most the file's size,
/// which the entry's own checks bound by the logical stream
/// (`docs/FORMAT.md` §11.2 has the table of what each reader checks).
///
/// ```
/// # fn main() -> sft::Result<()> {
/// use sft::{Package, WriteOptions, write::PackageBuilder};
///
/// let bytes = PackageBuilder::new(WriteOptions::default().name("Demo"))
///     .add_bytes("bin/app.exe", b"MZ...".to_vec())?
///     .add_bytes("readme.txt", b"hello".to_vec())?
///     .write_to_vec()?;
///
/// let pkg = Package::parse(&bytes)?;
/// assert_eq!(pkg.metadata().name(), "Demo");
/// let readme = pkg.entry("readme.txt")?;
/// assert_eq!(pkg.read_file(&readme)?, b"hello");
/// let paths: Vec<String> = pkg.entries().map(|e| e.map(|e| e.path().to_owned())).collect::<Result<_, _>>()?;
/// assert_eq!(paths, ["bin", "bin/app.exe", "readme.txt"]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Package<'data> {
    data: &'data [u8],
    layout: Layout,
    /// Outcome of [`BlockIndex::check_storage`], once run.
    storage: StorageCheck,
}

/// The remembered outcome of a package's storage check: unchecked, passed
/// or failed (a failure is found again when asked: it is rare, and the
/// check is deterministic). An atomic, so `Package` stays `Sync` without
/// `std`.
#[derive(Debug)]
struct StorageCheck(AtomicU8);

impl Default for StorageCheck {
    fn default() -> Self {
        StorageCheck(AtomicU8::new(UNCHECKED))
    }
}

const UNCHECKED: u8 = 0;
const PASSED: u8 = 1;
const FAILED: u8 = 2;

impl Clone for StorageCheck {
    fn clone(&self) -> Self {
        StorageCheck(AtomicU8::new(self.0.load(Ordering::Relaxed)))
    }
}

impl<'data> Package<'data> {
    /// Parse a whole package held in memory.
    ///
    /// # Errors
    /// [`Error::Format`], [`Error::Integrity`] or [`Error::Unsupported`]
    /// naming the region and offset of the first problem. The input length
    /// must equal the header's `prologue_len + data_len`.
    pub fn parse(data: &'data [u8]) -> Result<Self, Error> {
        let layout = Layout::parse(data)?;
        let expected = layout.header.package_len();
        if data.len() as u64 != expected {
            return Err(FormatError::new(
                Region::Data,
                layout.data_start(),
                if (data.len() as u64) < expected {
                    FormatProblem::Truncated {
                        needed: expected,
                        available: data.len() as u64,
                    }
                } else {
                    FormatProblem::Inconsistent {
                        field: "package length",
                        expected,
                        found: data.len() as u64,
                    }
                },
            )
            .into());
        }
        Ok(Package::from_layout(data, layout))
    }

    #[cfg(feature = "mmap")]
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// Rebuild from bytes already validated with this layout. Block
    /// access on a prologue-only view fails cleanly with a bounds error.
    pub(crate) fn from_layout(data: &'data [u8], layout: Layout) -> Self {
        Package {
            data,
            layout,
            storage: StorageCheck::default(),
        }
    }

    /// Check every block record and the storage layout
    /// ([`BlockIndex::check_storage`], rules 46–51 and 63–65 of
    /// `docs/FORMAT.md`) once for this value, and return the remembered
    /// outcome after that. Every block-data access calls it first, so
    /// calling it yourself only moves the cost (O(block count), about
    /// 40 ns per block: 2.7 ms for 65,536 blocks) to a time of your choice.
    ///
    /// # Errors
    /// As [`BlockIndex::check_storage`].
    pub fn check_storage(&self) -> Result<(), Error> {
        if self.storage.0.load(Ordering::Relaxed) == PASSED {
            return Ok(());
        }
        let r = self.index().check_storage();
        let state = if r.is_ok() { PASSED } else { FAILED };
        self.storage.0.store(state, Ordering::Relaxed);
        r.map(|_| ())
    }

    /// The prologue of this package.
    pub fn prologue(&self) -> Prologue<'data> {
        Prologue {
            data: &self.data[..self.layout.header.prologue_len as usize],
            layout: self.layout,
        }
    }

    /// The package's bytes.
    pub fn as_bytes(&self) -> &'data [u8] {
        self.data
    }

    /// The package's content identity: the BLAKE3 hash of the prologue
    /// (`docs/FORMAT.md` §8a). O(prologue length).
    pub fn content_id(&self) -> crate::format::ContentId {
        let len = self.layout.header.prologue_len as usize;
        crate::format::ContentId::of_prologue(&self.data[..len])
    }

    /// Whether the package records a BLAKE3 hash of every block (v1.1),
    /// so that its content identity binds its blocks too.
    pub fn has_block_hashes(&self) -> bool {
        self.layout.has_hashes()
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.layout.header
    }

    /// Package metadata: name, GUIDs, version, sizes.
    pub fn metadata(&self) -> Metadata<'data> {
        let m = &self.layout.meta;
        Metadata {
            name: self.layout.meta_str(self.data, m.name),
            root: self.layout.meta_str(self.data, m.root),
            comment: self.layout.meta_str(self.data, m.comment),
            version: m.version,
            package_guid: Guid(m.package_guid),
            version_guid: Guid(m.version_guid),
            created: (m.created_secs, m.created_nanos),
            launch_size: m.launch_size,
            package_size: m.package_size,
        }
    }

    /// The block index.
    pub fn index(&self) -> BlockIndex<'data> {
        BlockIndex::new(self.data, self.layout)
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.layout.header.block_size
    }

    /// Number of directory entries (files and directories).
    pub fn entry_count(&self) -> u64 {
        self.layout.entries.count()
    }

    /// Iterate over all entries in path order.
    pub fn entries(&self) -> Entries<'data> {
        Entries::new(Package::from_layout(self.data, self.layout))
    }

    /// Count files and directories in O(entries).
    ///
    /// # Errors
    /// As [`Prologue::count_entries`].
    pub fn count_entries(&self) -> Result<EntryCounts, Error> {
        entry::count(self.data, &self.layout)
    }

    /// Entry number `n` in path order, validated against its CRC.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `n` is out of range, otherwise as
    /// [`Package::parse`] for a damaged record.
    pub fn entry_at(&self, n: u64) -> Result<Entry<'data>, Error> {
        entry::load(self.data, &self.layout, n)
    }

    /// Look up an entry by path (`/`-separated, relative to the root) in
    /// O(log n) record reads, straight from the bytes.
    ///
    /// # Errors
    /// As [`Package::entry_at`] for a damaged record on the search path.
    pub fn find(&self, path: &str) -> Result<Option<Entry<'data>>, Error> {
        let path = path.trim_matches('/');
        let (mut lo, mut hi) = (0u64, self.entry_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.entry_at(mid)?;
            match e.path().as_bytes().cmp(path.as_bytes()) {
                core::cmp::Ordering::Less => lo = mid + 1,
                core::cmp::Ordering::Greater => hi = mid,
                core::cmp::Ordering::Equal => return Ok(Some(e)),
            }
        }
        Ok(None)
    }

    /// Look up an entry by path, failing if it does not exist.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming the path, or as [`Package::find`].
    pub fn entry(&self, path: &str) -> Result<Entry<'data>, Error> {
        self.find(path)?
            .ok_or_else(|| Error::NotFound(format!("`{path}` is not in the package")))
    }

    /// Block `id` with its stored bytes (not yet verified). The first
    /// call checks the storage layout ([`Package::check_storage`]).
    ///
    /// # Errors
    /// As [`Package::check_storage`] and [`BlockIndex::get`].
    pub fn block(&self, id: BlockId) -> Result<Block<'data>, Error> {
        self.check_storage()?;
        let info = self.index().get(id)?;
        let stored = slice_at(
            self.data,
            info.stored_offset,
            info.stored_len.into(),
            Region::Block(id.0),
            0,
        )?;
        Block::new(info, stored)
    }

    /// Read and verify block `id`, returning its decoded bytes (borrowed
    /// when stored, owned when inflated).
    ///
    /// # Errors
    /// As [`Package::block`] and [`Block::decode`].
    pub fn read_block(&self, id: BlockId) -> Result<Cow<'data, [u8]>, Error> {
        self.block(id)?.decode()
    }

    /// Read a whole file into a new buffer.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory; integrity and format errors
    /// for damaged blocks; [`Error::InvalidInput`] if the file is too large
    /// to hold in memory.
    pub fn read_file(&self, entry: &Entry<'data>) -> Result<Vec<u8>, Error> {
        entry.require_file()?;
        self.check_storage()?;
        let size = usize::try_from(entry.size())
            .map_err(|_| Error::invalid(format!("`{}` is too large for memory", entry.path())))?;
        // The size is declared, the data not yet verified: reserve at most
        // 16 MiB up front and let verified chunks grow the rest.
        let mut out = Vec::new();
        out.try_reserve_exact(size.min(1 << 24))
            .map_err(|_| Error::invalid(format!("`{}` is too large for memory", entry.path())))?;
        for chunk in self.chunks(entry) {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// Read up to `buf.len()` bytes of a file starting at `offset`; returns
    /// the number of bytes read (0 at or past the end).
    ///
    /// # Errors
    /// As [`Package::read_file`].
    pub fn read_at(
        &self,
        entry: &Entry<'data>,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, Error> {
        entry.require_file()?;
        let mut state = ReadState::default();
        self.read_at_with(entry, offset, buf, &mut state)
    }

    pub(crate) fn read_at_with(
        &self,
        entry: &Entry<'data>,
        offset: u64,
        buf: &mut [u8],
        state: &mut ReadState<'data>,
    ) -> Result<usize, Error> {
        read_file_at(
            entry,
            offset,
            buf,
            &self.index(),
            self.layout.entry_offset(entry.number()),
            &mut PackageBlocks { pkg: self, state },
        )
    }

    /// The file's data as a sequence of chunks, in file order: borrowed
    /// slices of stored blocks (zero-copy) or owned inflated blocks. Each
    /// block is verified before any of its bytes are yielded.
    pub fn chunks(&self, entry: &Entry<'data>) -> Chunks<'data> {
        // Check (or recall) the storage layout here, on this value, so
        // that the copy the chunks keep starts with the outcome.
        let _ = self.check_storage();
        Chunks {
            pkg: self.clone(),
            extents: entry.extents(),
            current: None,
            decoder: Decoder::new(),
            cache: None,
        }
    }

    /// Open a `std::io::Read + Seek` reader over one file.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory.
    #[cfg(feature = "std")]
    pub fn reader(&self, entry: Entry<'data>) -> Result<FileReader<'data>, Error> {
        entry.require_file()?;
        self.check_storage()?;
        Ok(FileReader::new(self.clone(), entry))
    }

    /// Stored bytes of all blocks compressed with `codec`.
    pub fn stored_len_by_codec(&self, codec: Codec) -> Result<u64, Error> {
        let index = self.index();
        let mut total = 0;
        for id in index.ids() {
            let b = index.get(id)?;
            if b.codec == codec {
                total += u64::from(b.stored_len);
            }
        }
        Ok(total)
    }
}

/// Where [`read_file_at`] gets verified, decoded blocks from: a mapped
/// package, or a package still streaming into a cache.
pub(crate) trait BlockProvider {
    /// Block `id`, verified and decoded (`raw_len` bytes).
    fn block(&mut self, id: BlockId) -> Result<&[u8], Error>;
}

struct PackageBlocks<'p, 'data, 's> {
    pkg: &'p Package<'data>,
    state: &'s mut ReadState<'data>,
}

impl BlockProvider for PackageBlocks<'_, '_, '_> {
    fn block(&mut self, id: BlockId) -> Result<&[u8], Error> {
        self.state.block(self.pkg, id)
    }
}

/// Read all of `entry` through `read_at` (file offset, buffer → bytes
/// read), the buffer growing at most 1 MiB ahead of the bytes read: a size
/// declared in the prologue is never allocated on trust (the lazy and the
/// streaming package's `read_file`).
#[cfg(feature = "std")]
pub(crate) fn read_whole(
    entry: &Entry<'_>,
    mut read_at: impl FnMut(u64, &mut [u8]) -> Result<usize, Error>,
) -> Result<Vec<u8>, Error> {
    const STEP: usize = 1 << 20;
    entry.require_file()?;
    let too_large = || Error::invalid(format!("`{}` is too large for memory", entry.path()));
    let size = usize::try_from(entry.size()).map_err(|_| too_large())?;
    let mut out = Vec::new();
    while out.len() < size {
        let done = out.len();
        let want = (size - done).min(STEP);
        out.try_reserve(want).map_err(|_| too_large())?;
        out.resize(done + want, 0);
        let n = read_at(done as u64, &mut out[done..])?;
        out.truncate(done + n);
        if n < want {
            break;
        }
    }
    Ok(out)
}

/// Read up to `buf.len()` bytes of `entry` at `offset`: map file offsets
/// through the extents to logical offsets, then to blocks, and copy from
/// the blocks `blocks` provides. The one read loop behind
/// [`Package::read_at`], [`FileReader`] and the streaming package's reads.
pub(crate) fn read_file_at(
    entry: &Entry<'_>,
    offset: u64,
    buf: &mut [u8],
    index: &BlockIndex<'_>,
    entry_offset: u64,
    blocks: &mut dyn BlockProvider,
) -> Result<usize, Error> {
    let mut done = 0usize;
    let size = entry.size();
    while done < buf.len() {
        let pos = offset + done as u64;
        if pos >= size {
            break;
        }
        let Some((logical, ext_left)) = entry.logical_at(pos) else {
            break;
        };
        let (id, within) = index.locate(logical).ok_or_else(|| {
            Error::Format(FormatError::new(
                Region::Entry(entry.number()),
                entry_offset,
                FormatProblem::OutOfBounds {
                    field: "logical_offset",
                    start: logical,
                    len: 1,
                    limit: index.logical_len(),
                },
            ))
        })?;
        let data = blocks.block(id)?;
        let avail = data.get(within as usize..).unwrap_or(&[]);
        if avail.is_empty() {
            break;
        }
        let n = avail
            .len()
            .min(buf.len() - done)
            .min(usize::try_from(ext_left).unwrap_or(usize::MAX));
        buf[done..done + n].copy_from_slice(&avail[..n]);
        done += n;
    }
    Ok(done)
}

/// The position a `Seek` lands on in a file of `size` bytes at `pos`.
#[cfg(feature = "std")]
pub(crate) fn seek_position(pos: u64, size: u64, to: std::io::SeekFrom) -> std::io::Result<u64> {
    use std::io::SeekFrom;
    let new = match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => size.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    new.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "seek to a negative or overflowing position",
        )
    })
}

/// One decoded block kept between reads by [`FileReader`] and
/// [`Package::read_at`], so small sequential reads decode each block once.
#[derive(Debug, Default)]
pub(crate) struct ReadState<'data> {
    id: Option<BlockId>,
    borrowed: Option<&'data [u8]>,
    owned: Vec<u8>,
    decoder: Decoder,
}

impl<'data> ReadState<'data> {
    pub(crate) fn block(&mut self, pkg: &Package<'data>, id: BlockId) -> Result<&[u8], Error> {
        if self.id != Some(id) {
            self.id = None;
            let block = pkg.block(id)?;
            block.verify()?;
            if block.info().codec == Codec::Stored {
                self.borrowed = Some(block.stored());
            } else {
                self.borrowed = None;
                self.decoder
                    .inflate(block.info(), block.stored(), &mut self.owned)?;
            }
            self.id = Some(id);
        }
        Ok(self.borrowed.unwrap_or(&self.owned))
    }
}

/// Decoded block bytes: borrowed from the package when stored, shared
/// between chunks when inflated.
#[derive(Debug, Clone)]
enum BlockData<'data> {
    Borrowed(&'data [u8]),
    Owned(alloc::sync::Arc<[u8]>),
}

impl BlockData<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            BlockData::Borrowed(b) => b,
            BlockData::Owned(b) => b,
        }
    }
}

/// A piece of file data yielded by [`Chunks`]; dereferences to `[u8]`.
#[derive(Debug, Clone)]
pub struct Chunk<'data> {
    data: BlockData<'data>,
    start: usize,
    end: usize,
}

impl<'data> Chunk<'data> {
    /// The bytes borrowed from the package, if this chunk is zero-copy.
    pub fn borrowed(&self) -> Option<&'data [u8]> {
        match self.data {
            BlockData::Borrowed(b) => Some(&b[self.start..self.end]),
            BlockData::Owned(_) => None,
        }
    }
}

impl core::ops::Deref for Chunk<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data.as_slice()[self.start..self.end]
    }
}

/// Iterator over a file's data, returned by [`Package::chunks`].
#[derive(Debug)]
pub struct Chunks<'data> {
    pkg: Package<'data>,
    extents: Extents<'data>,
    /// Remaining logical range of the current extent.
    current: Option<core::ops::Range<u64>>,
    decoder: Decoder,
    /// The last decoded (owned) block, shared by consecutive chunks.
    cache: Option<(BlockId, BlockData<'data>)>,
}

impl<'data> Chunks<'data> {
    /// Continue with another file of the same package, keeping the last
    /// verified (or inflated) block and the decoder. Reading files in
    /// storage order this way checks and decodes each block once, however
    /// many small files share it.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("a.txt", b"alpha".to_vec())?
    ///     .add_bytes("b.txt", b"beta".to_vec())?
    ///     .write_to_vec()?;
    /// let pkg = sft::Package::parse(&bytes)?;
    /// let (a, b) = (pkg.entry("a.txt")?, pkg.entry("b.txt")?);
    /// let mut chunks = pkg.chunks(&a);
    /// let mut out = Vec::new();
    /// for c in chunks.by_ref() { out.extend_from_slice(&c?); }
    /// chunks.restart(&b); // the shared block is not checked again
    /// for c in chunks.by_ref() { out.extend_from_slice(&c?); }
    /// assert_eq!(out, b"alphabeta");
    /// # Ok(()) }
    /// ```
    pub fn restart(&mut self, entry: &Entry<'data>) {
        self.extents = entry.extents();
        self.current = None;
    }
}

impl<'data> Iterator for Chunks<'data> {
    type Item = Result<Chunk<'data>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &self.current {
                Some(r) if r.start < r.end => break,
                _ => {
                    let ext = self.extents.next()?;
                    self.current = Some(ext.logical_offset..ext.logical_offset + ext.length);
                }
            }
        }
        let range = self.current.clone()?;
        let index = self.pkg.index();
        let Some((id, within)) = index.locate(range.start) else {
            self.current = None;
            return Some(Err(Error::Format(FormatError::new(
                Region::Data,
                self.pkg.layout.data_start(),
                FormatProblem::OutOfBounds {
                    field: "logical_offset",
                    start: range.start,
                    len: range.end - range.start,
                    limit: index.logical_len(),
                },
            ))));
        };
        let data = match &self.cache {
            Some((cid, d)) if *cid == id => d.clone(),
            _ => {
                let decoded = self.pkg.block(id).and_then(|b| {
                    b.verify()?;
                    if b.info().codec == Codec::Stored {
                        Ok(BlockData::Borrowed(b.stored()))
                    } else {
                        let mut out = Vec::new();
                        self.decoder.inflate(b.info(), b.stored(), &mut out)?;
                        Ok(BlockData::Owned(out.into()))
                    }
                });
                match decoded {
                    Ok(d) => {
                        self.cache = Some((id, d.clone()));
                        d
                    }
                    Err(e) => {
                        self.current = None;
                        self.extents = Extents::empty();
                        return Some(Err(e));
                    }
                }
            }
        };
        let start = within as usize;
        let n = ((data.as_slice().len() - start) as u64).min(range.end - range.start) as usize;
        self.current = Some(range.start + n as u64..range.end);
        Some(Ok(Chunk {
            data,
            start,
            end: start + n,
        }))
    }
}

/// Package metadata (`docs/FORMAT.md` §5), borrowed from the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata<'data> {
    name: &'data str,
    root: &'data str,
    comment: &'data str,
    version: u32,
    package_guid: Guid,
    version_guid: Guid,
    created: (i64, u32),
    launch_size: u64,
    package_size: u64,
}

impl<'data> Metadata<'data> {
    /// Package name.
    pub fn name(&self) -> &'data str {
        self.name
    }
    /// Root directory name (App-V's asset directory, e.g. `MYAPP.1`).
    pub fn root(&self) -> &'data str {
        self.root
    }
    /// Comment (the OSD ABSTRACT).
    pub fn comment(&self) -> &'data str {
        self.comment
    }
    /// Package version number.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Package GUID.
    pub fn package_guid(&self) -> Guid {
        self.package_guid
    }
    /// Version GUID.
    pub fn version_guid(&self) -> Guid {
        self.version_guid
    }
    /// Creation time: seconds and nanoseconds since the Unix epoch.
    pub fn created(&self) -> (i64, u32) {
        self.created
    }
    /// Launch size: uncompressed bytes of FB1.
    pub fn launch_size(&self) -> u64 {
        self.launch_size
    }
    /// Package size: uncompressed bytes of all files.
    pub fn package_size(&self) -> u64 {
        self.package_size
    }
}
