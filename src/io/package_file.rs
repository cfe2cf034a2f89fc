//! `PackageFile`: a package opened from disk lazily, with positional
//! reads and no `unsafe`; [`SourcePackage`]: the same over any
//! [`RangeSource`] (a file, an HTTP URL, an SMB share...).
//!
//! Opening reads the header and the prologue (bounded: see
//! [`SourcePackage::with_max_prologue`]), checks every section CRC and
//! every block record, and keeps the parsed prologue; nothing else is
//! read. Entries and look-ups then cost no I/O, and file data is read,
//! CRC-checked and decoded block by block on demand, through the crate's
//! one decode path ([`Block`]): every block is checked as full
//! verification checks it (CRC-32, then a decode to exactly its size)
//! before any of its bytes are returned. A damaged block is an
//! [`Error::Integrity`] naming it, and none of its bytes come out.
//!
//! Where [`Package`](crate::Package) borrows the whole package (a slice
//! or a memory map), this holds only the prologue and
//! the block being read: memory is linear in the prologue, whatever the
//! package's size, and no promise about the file is asked of the caller.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use std::io::{Read, Seek, SeekFrom};
//! use sft::PackageFile;
//!
//! let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
//! let path = dir.path().join("app.sft");
//! sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("bin/app.exe", vec![7u8; 200_000])?
//!     .add_bytes("readme.txt", b"hello".to_vec())?
//!     .write_to_path(&path)?;
//!
//! let pkg = PackageFile::open(&path)?;
//! let paths: Vec<String> = pkg.entries().map(|e| e.map(|e| e.path().to_owned())).collect::<Result<_, _>>()?;
//! assert_eq!(paths, ["bin", "bin/app.exe", "readme.txt"]);
//! assert_eq!(pkg.read_file(&pkg.entry("readme.txt")?)?, b"hello");
//!
//! let mut r = pkg.reader(pkg.entry("bin/app.exe")?)?;
//! r.seek(SeekFrom::Start(150_000))?;
//! let mut buf = [0u8; 3];
//! r.read_exact(&mut buf)?;
//! assert_eq!(buf, [7, 7, 7]);
//!
//! let report = pkg.verify()?; // every block: CRC, then decode
//! assert_eq!(report.logical_bytes, 200_005);
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

use core::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{Error, FormatError, FormatProblem, Region};
use crate::format::layout::Layout;
use crate::format::{BlockId, HEADER_LEN, Header};
use crate::index::{BlockIndex, BlockInfo};
use crate::io::RangeSource;
use crate::read::{
    Block, BlockBuffer, CheckScratch, Crc, Entries, Entry, Metadata, Prologue, Serial,
    VerifyReport, Workers,
};

/// The largest prologue [`SourcePackage::new`] reads (256 MiB), as a
/// stream session's default `max_prologue_bytes`: a hostile header cannot
/// make an open allocate more.
pub const DEFAULT_MAX_PROLOGUE_BYTES: u64 = 256 << 20;

/// A package file read lazily with positional reads: see the
/// [module docs](self).
#[cfg(feature = "file")]
pub type PackageFile = SourcePackage<crate::io::file::FileSource>;

/// A package read lazily from a [`RangeSource`]: the prologue is read
/// and kept at open, blocks are read, checked and decoded on demand. See
/// the [module docs](self); `PackageFile` (feature `file`) is the file
/// case.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("a.txt", b"alpha".to_vec())?
///     .write_to_vec()?;
/// // Any RangeSource will do: here, the bytes in memory.
/// let pkg = sft::SourcePackage::new(bytes)?;
/// assert_eq!(pkg.read_file(&pkg.entry("a.txt")?)?, b"alpha");
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
pub struct SourcePackage<S> {
    source: S,
    prologue: Vec<u8>,
    layout: Layout,
    /// Every block record, checked (storage layout included) at open.
    table: Vec<BlockInfo>,
}

impl<S: RangeSource> fmt::Debug for SourcePackage<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourcePackage")
            .field("endpoint", &self.source.endpoint())
            .field("prologue_len", &self.prologue.len())
            .field("blocks", &self.table.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "file")]
impl SourcePackage<crate::io::file::FileSource> {
    /// Open the package file at `path`: read and check its header and
    /// prologue (at most [`DEFAULT_MAX_PROLOGUE_BYTES`]); nothing else.
    ///
    /// # Errors
    /// As [`FileSource::open`](crate::io::file::FileSource::open) and
    /// [`SourcePackage::new`].
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        Self::new(crate::io::file::FileSource::open(path)?)
    }
}

impl<S: RangeSource> SourcePackage<S> {
    /// Read and check the header and prologue of the package `source`
    /// serves (at most [`DEFAULT_MAX_PROLOGUE_BYTES`]).
    ///
    /// # Errors
    /// As [`SourcePackage::with_max_prologue`].
    pub fn new(source: S) -> Result<Self, Error> {
        Self::with_max_prologue(source, DEFAULT_MAX_PROLOGUE_BYTES)
    }

    /// Read and check the header and prologue of the package `source`
    /// serves, refusing a prologue over `max_prologue_bytes`. Lengths are
    /// checked against the source before anything is allocated: the
    /// header's package length must be the source's.
    ///
    /// # Errors
    /// [`Error::Transport`] if reading fails; [`Error::Format`],
    /// [`Error::Integrity`] or [`Error::Unsupported`] for a header or
    /// prologue that does not validate (a section or block record that
    /// fails its CRC, a storage layout that breaks the rules), a header
    /// that does not fit in the source, or a package length other than
    /// the source's; [`Error::InvalidInput`] for a prologue over the limit.
    pub fn with_max_prologue(source: S, max_prologue_bytes: u64) -> Result<Self, Error> {
        let prologue = read_prologue(&source, max_prologue_bytes)?.bytes;
        let (layout, table) = {
            let p = Prologue::parse(&prologue)?;
            (p.layout(), p.index().checked_records()?)
        };
        Ok(SourcePackage {
            source,
            prologue,
            layout,
            table,
        })
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The source back.
    pub fn into_source(self) -> S {
        self.source
    }

    /// The prologue, checked at open: header, metadata, entries, index.
    pub fn prologue(&self) -> Prologue<'_> {
        Prologue::from_checked(&self.prologue, self.layout)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.layout.header
    }

    /// Package metadata: name, GUIDs, version, sizes.
    pub fn metadata(&self) -> Metadata<'_> {
        self.prologue().metadata()
    }

    /// The block index.
    pub fn index(&self) -> BlockIndex<'_> {
        self.prologue().index()
    }

    /// Number of directory entries (files and directories).
    pub fn entry_count(&self) -> u64 {
        self.prologue().entry_count()
    }

    /// All entries in path order.
    pub fn entries(&self) -> Entries<'_> {
        self.prologue().entries()
    }

    /// Look up an entry by path.
    ///
    /// # Errors
    /// As [`Package::find`](crate::Package::find).
    pub fn find(&self, path: &str) -> Result<Option<Entry<'_>>, Error> {
        self.prologue().find(path)
    }

    /// Look up an entry by path, failing if it does not exist.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming the path, or as [`SourcePackage::find`].
    pub fn entry(&self, path: &str) -> Result<Entry<'_>, Error> {
        self.find(path)?
            .ok_or_else(|| Error::NotFound(format!("`{path}` is not in the package")))
    }

    /// The checked record of block `id`.
    fn info(&self, id: BlockId) -> Result<&BlockInfo, Error> {
        self.table.get(id.0 as usize).ok_or_else(|| {
            Error::invalid(format!("{id} out of range ({} blocks)", self.table.len()))
        })
    }

    /// Read block `id` into `buf` (its CRC checked and decoded by `buf`).
    fn load<'b>(&self, id: BlockId, buf: &'b mut BlockBuffer) -> Result<&'b [u8], Error> {
        let info = self.info(id)?;
        buf.load(info, Crc::Check, |stored| {
            self.source
                .read_exact_at(info.stored_offset, stored)
                .map_err(Error::Transport)
        })
    }

    /// Read, check and decode block `id`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an id out of range; [`Error::Transport`]
    /// if reading fails; [`Error::Integrity`] naming the block if its CRC
    /// fails or it does not decode to exactly its size.
    pub fn read_block(&self, id: BlockId) -> Result<Vec<u8>, Error> {
        Ok(self.load(id, &mut BlockBuffer::default())?.to_vec())
    }

    /// Read a whole file into a new buffer, block by block; the buffer
    /// grows as checked blocks arrive (at most 1 MiB ahead of them), so a
    /// size declared in the prologue is never allocated on trust.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory or a file too large for
    /// memory; as [`SourcePackage::read_block`].
    pub fn read_file(&self, entry: &Entry<'_>) -> Result<Vec<u8>, Error> {
        let mut buf = BlockBuffer::default();
        crate::read::read_whole(entry, |at, out| self.read_at_with(entry, at, out, &mut buf))
    }

    /// Read up to `buf.len()` bytes of a file from `offset`; returns how
    /// many (0 at or past the end). Only the blocks the range touches are
    /// read.
    ///
    /// # Errors
    /// As [`SourcePackage::read_file`].
    pub fn read_at(&self, entry: &Entry<'_>, offset: u64, buf: &mut [u8]) -> Result<usize, Error> {
        entry.require_file()?;
        self.read_at_with(entry, offset, buf, &mut BlockBuffer::default())
    }

    fn read_at_with(
        &self,
        entry: &Entry<'_>,
        offset: u64,
        buf: &mut [u8],
        block: &mut BlockBuffer,
    ) -> Result<usize, Error> {
        let prologue = self.prologue();
        crate::read::read_file_at(
            entry,
            offset,
            buf,
            &prologue.index(),
            prologue.entry_offset(entry.number()),
            &mut SourceBlocks { pkg: self, block },
        )
    }

    /// A `Read + Seek` reader over one file; it keeps the last decoded
    /// block, so reads of any size check and decode each block once while
    /// moving forward.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a directory.
    pub fn reader<'a>(&'a self, entry: Entry<'a>) -> Result<SourceReader<'a, S>, Error> {
        entry.require_file()?;
        Ok(SourceReader {
            pkg: self,
            entry,
            pos: 0,
            block: BlockBuffer::default(),
        })
    }

    /// Verify the whole package on the calling thread: the structure
    /// ([`Prologue::verify_structure`]), then every block's data (CRC,
    /// then decode to the exact size), as
    /// [`Package::verify`](crate::Package::verify) does.
    ///
    /// # Errors
    /// The first problem found, as [`Error::Format`] or
    /// [`Error::Integrity`]; [`Error::Transport`] if reading fails.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.verify_with(&|_| {}, &Serial)
    }

    /// [`SourcePackage::verify`] with the block checks run by `workers`
    /// (such as [`Threads`](crate::io::Threads)), `progress` told the
    /// stored bytes checked since its last call. Each worker reads runs of
    /// consecutive blocks in one read. The first failing block by number
    /// is reported, whatever the number of workers.
    ///
    /// # Errors
    /// As [`SourcePackage::verify`].
    pub fn verify_with(
        &self,
        progress: &(dyn Fn(u64) + Sync),
        workers: &dyn Workers,
    ) -> Result<VerifyReport, Error> {
        let s = self.prologue().verify_structure()?;
        let logical_bytes = crate::read::check_blocks(
            self.table.len() as u32,
            progress,
            workers,
            &|ids, scratch| self.check_run(ids, scratch),
        )?;
        Ok(VerifyReport {
            sections: s.sections,
            entries: s.entries,
            blocks: self.table.len() as u32,
            stored_bytes: self.layout.header.data_len,
            logical_bytes,
        })
    }

    /// Check blocks `ids`, read in one piece (the storage check at open
    /// proved them back to back); if that read fails, block by block, so
    /// the failure names the block it is in.
    fn check_run(
        &self,
        ids: core::ops::Range<u32>,
        scratch: &mut CheckScratch,
    ) -> Result<(u64, u64), (BlockId, Error)> {
        let infos = &self.table[ids.start as usize..ids.end as usize];
        let (Some(first), Some(last)) = (infos.first(), infos.last()) else {
            return Ok((0, 0));
        };
        let base = first.stored_offset;
        let len = last.stored_range().end - base;
        let CheckScratch {
            decoder,
            stored,
            out,
        } = scratch;
        stored.resize(len as usize, 0);
        let whole = self.source.read_exact_at(base, stored).is_ok();
        let mut logical = 0;
        for info in infos {
            let at = (info.stored_offset - base) as usize;
            let bytes = &mut stored[at..at + info.stored_len as usize];
            if !whole {
                self.source
                    .read_exact_at(info.stored_offset, bytes)
                    .map_err(|e| (info.id, Error::Transport(e)))?;
            }
            Block::new(*info, bytes)
                .and_then(|b| decoder.decode_into(&b, out))
                .map_err(|e| (info.id, e))?;
            logical += out.len() as u64;
        }
        Ok((len, logical))
    }
}

/// The blocks of a [`SourcePackage`] for the crate's one file-read loop.
struct SourceBlocks<'p, 'b, S> {
    pkg: &'p SourcePackage<S>,
    block: &'b mut BlockBuffer,
}

impl<S: RangeSource> crate::read::BlockProvider for SourceBlocks<'_, '_, S> {
    fn block(&mut self, id: BlockId) -> Result<&[u8], Error> {
        self.pkg.load(id, self.block)
    }
}

/// `Read + Seek` over one file of a [`SourcePackage`], from
/// [`SourcePackage::reader`].
pub struct SourceReader<'a, S> {
    pkg: &'a SourcePackage<S>,
    entry: Entry<'a>,
    pos: u64,
    block: BlockBuffer,
}

impl<S: RangeSource> fmt::Debug for SourceReader<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceReader")
            .field("entry", &self.entry.path())
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<'a, S> SourceReader<'a, S> {
    /// The entry being read.
    pub fn entry(&self) -> &Entry<'a> {
        &self.entry
    }
}

impl<S: RangeSource> Read for SourceReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .pkg
            .read_at_with(&self.entry, self.pos, buf, &mut self.block)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: RangeSource> Seek for SourceReader<'_, S> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = crate::read::seek_position(self.pos, self.entry.size(), pos)?;
        Ok(self.pos)
    }
}

/// A prologue read by [`read_prologue`].
#[derive(Debug)]
pub(crate) struct RawPrologue {
    /// Exactly the header's `prologue_len` bytes, not yet parsed.
    pub(crate) bytes: Vec<u8>,
    /// The package's length, the source's.
    pub(crate) package_len: u64,
    /// Bytes read from the source.
    pub(crate) bytes_read: u64,
}

/// Read the prologue of the package `source` serves: the header, then
/// exactly the rest of the prologue (not parsed beyond the header). Every
/// length is checked before it is allocated: the header against the
/// source, the prologue against `max` and the package length against the
/// source's. The one prologue read of lazily read packages and of
/// `sft::fetch::probe`.
///
/// # Errors
/// [`Error::Transport`] if reading fails; [`Error::Format`],
/// [`Error::Integrity`] or [`Error::Unsupported`] for a header that does
/// not validate or fit in the source, or a package length other than the
/// source's; [`Error::InvalidInput`] for a prologue over `max`.
pub(crate) fn read_prologue<S: RangeSource + ?Sized>(
    source: &S,
    max: u64,
) -> Result<RawPrologue, Error> {
    let source_len = source.len().map_err(Error::Transport)?;
    let mut head = [0u8; HEADER_LEN];
    if source_len < HEADER_LEN as u64 {
        return Err(truncated(HEADER_LEN as u64, source_len));
    }
    source
        .read_exact_at(0, &mut head)
        .map_err(Error::Transport)?;
    let mut bytes_read = HEADER_LEN as u64;
    // A longer header than this version's (a later minor version): its
    // length is at offset 12, checked against the source before reading.
    let header_len = u64::from(u32::from_le_bytes([head[12], head[13], head[14], head[15]]));
    let mut start = head.to_vec();
    if header_len > HEADER_LEN as u64 && header_len <= source_len.min(max) {
        start.resize(header_len as usize, 0);
        source
            .read_exact_at(HEADER_LEN as u64, &mut start[HEADER_LEN..])
            .map_err(Error::Transport)?;
        bytes_read = header_len;
    }
    let header = Header::parse(&start)?;
    let plen = header.prologue_len;
    if plen > max {
        return Err(Error::invalid(format!(
            "{}: prologue of {plen} bytes exceeds the limit of {max}",
            source.endpoint()
        )));
    }
    let package_len = header.package_len();
    if package_len != source_len {
        return Err(if package_len > source_len {
            truncated(package_len, source_len)
        } else {
            FormatError::new(
                Region::Data,
                plen,
                FormatProblem::Inconsistent {
                    field: "package length",
                    expected: package_len,
                    found: source_len,
                },
            )
            .into()
        });
    }
    // Header::parse checked prologue_len >= header_len; plen <= max and
    // <= the source's length.
    let mut bytes = start;
    let have = bytes.len();
    let plen = usize::try_from(plen).map_err(|_| {
        Error::invalid(format!("a prologue of {plen} bytes does not fit in memory"))
    })?;
    if plen > have {
        bytes.try_reserve_exact(plen - have).map_err(|_| {
            Error::invalid(format!("a prologue of {plen} bytes does not fit in memory"))
        })?;
        bytes.resize(plen, 0);
        source
            .read_exact_at(have as u64, &mut bytes[have..])
            .map_err(Error::Transport)?;
        bytes_read = plen as u64;
    }
    Ok(RawPrologue {
        bytes,
        package_len,
        bytes_read,
    })
}

fn truncated(needed: u64, available: u64) -> Error {
    FormatError::new(
        Region::Data,
        0,
        FormatProblem::Truncated { needed, available },
    )
    .into()
}
