//! [`BlockIndex`]: O(1) access to block records straight from the mapped
//! bytes, and the mapping between the logical (uncompressed) stream and
//! blocks.
//!
//! The logical stream is the concatenation of all file data in storage
//! order. FB1 covers logical bytes `0..launch_size` and FB2 the rest; each
//! feature block is cut into `block_size` blocks of which only its last may
//! be shorter. So a block's logical range, and the block holding a logical
//! offset, are arithmetic, not a search.

#[allow(unused_imports)]
use crate::prelude::*;

use core::ops::Range;

use crate::error::{Error, FormatError, FormatProblem, Region, Unsupported};
use crate::format::layout::Layout;
use crate::format::{BlockId, BlockRecord, Codec, FeatureBlock};

/// A validated view of one block index record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// The block's number.
    pub id: BlockId,
    /// Absolute offset of its stored bytes.
    pub stored_offset: u64,
    /// Length of its stored bytes.
    pub stored_len: u32,
    /// Length after decoding.
    pub raw_len: u32,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
    /// How the bytes are stored.
    pub codec: Codec,
    /// Feature block.
    pub feature_block: FeatureBlock,
    /// Logical offset of the block's first byte.
    pub logical_offset: u64,
    /// BLAKE3 hash of the stored bytes, from the block hash section of a
    /// v1.1 package (`docs/FORMAT.md` §8a); `None` without one. When
    /// present, `Block::verify` (in `read`) checks it
    /// after the CRC.
    pub hash: Option<[u8; crate::format::HASH_LEN]>,
}

impl BlockInfo {
    /// The logical byte range this block decodes to.
    pub fn logical_range(&self) -> Range<u64> {
        self.logical_offset..self.logical_offset + u64::from(self.raw_len)
    }

    /// The stored byte range within the package.
    pub fn stored_range(&self) -> Range<u64> {
        self.stored_offset..self.stored_offset + u64::from(self.stored_len)
    }
}

/// The block index of a package: fixed-size records, looked up in O(1).
///
/// ```
/// # fn main() -> sft::Result<()> {
/// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![7u8; 100_000])?
///     .write_to_vec()?;
/// let pkg = sft::Package::parse(&bytes)?;
/// let index = pkg.index();
/// assert_eq!(index.len(), 2); // 100,000 bytes in 64 KiB blocks
/// let (id, within) = index.locate(70_000).expect("in range");
/// assert_eq!((id.0, within), (1, 70_000 - 65_536));
/// assert_eq!(index.get(id)?.logical_range(), 65_536..100_000);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BlockIndex<'data> {
    data: &'data [u8],
    layout: Layout,
}

impl<'data> BlockIndex<'data> {
    pub(crate) fn new(data: &'data [u8], layout: Layout) -> Self {
        BlockIndex { data, layout }
    }

    /// Number of blocks.
    pub fn len(&self) -> u32 {
        self.layout.header.block_count
    }

    /// True if the package has no blocks (no file data).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of FB1 blocks; they are blocks `0..fb1_len()`.
    pub fn fb1_len(&self) -> u32 {
        self.layout.header.fb1_block_count
    }

    /// Block size of the package.
    pub fn block_size(&self) -> u32 {
        self.layout.header.block_size
    }

    /// Total logical bytes (the package size).
    pub fn logical_len(&self) -> u64 {
        self.layout.meta.package_size
    }

    /// The feature block a block id belongs to, by position alone.
    pub fn feature_block_of(&self, id: BlockId) -> FeatureBlock {
        if id.0 < self.fb1_len() {
            FeatureBlock::Fb1
        } else {
            FeatureBlock::Fb2
        }
    }

    /// The logical range block `id` decodes to, computed from the header
    /// alone; `None` if `id` is out of range.
    pub fn logical_range(&self, id: BlockId) -> Option<Range<u64>> {
        let bs = u64::from(self.block_size());
        let launch = self.layout.meta.launch_size;
        let total = self.layout.meta.package_size;
        if id.0 >= self.len() {
            return None;
        }
        let i = u64::from(id.0);
        let fb1 = u64::from(self.fb1_len());
        Some(if i < fb1 {
            let s = i * bs;
            s..(s + bs).min(launch)
        } else {
            let s = launch + (i - fb1) * bs;
            s..(s + bs).min(total)
        })
    }

    /// The block holding logical byte `offset`, and the offset within it.
    pub fn locate(&self, offset: u64) -> Option<(BlockId, u32)> {
        let bs = u64::from(self.block_size());
        let launch = self.layout.meta.launch_size;
        if offset >= self.layout.meta.package_size {
            return None;
        }
        let (i, within) = if offset < launch {
            (offset / bs, offset % bs)
        } else {
            let o = offset - launch;
            (u64::from(self.fb1_len()) + o / bs, o % bs)
        };
        // i < block_count <= u32::MAX and within < block_size: both fit.
        Some((BlockId(i as u32), within as u32))
    }

    /// Read and validate block `id`'s record: its own CRC, its codec, its
    /// feature block, its lengths against the header, and that its stored
    /// bytes lie inside the data region.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an id out of range; [`Error::Integrity`]
    /// for a damaged record; [`Error::Format`] for a record that breaks the
    /// rules; [`Error::Unsupported`] for an unknown codec.
    pub fn get(&self, id: BlockId) -> Result<BlockInfo, Error> {
        let logical = self
            .logical_range(id)
            .ok_or_else(|| Error::invalid(format!("{id} out of range ({} blocks)", self.len())))?;
        let span = self.layout.index;
        let at = span.offset + u64::from(id.0) * span.stride;
        let region = Region::BlockRecord(id.0);
        // In bounds: index.len == block_count * stride, checked at parse.
        let rec = crate::format::slice_at(self.data, at, span.stride, region, 0)?;
        let r = BlockRecord::parse_checked(rec, id.0, at)?;
        let bad = |field, value: u64| {
            Error::Format(FormatError::new(
                region,
                at,
                FormatProblem::BadValue { field, value },
            ))
        };
        let codec = Codec::from_u8(r.codec).ok_or(Unsupported::Codec {
            block: id.0,
            codec: r.codec,
        })?;
        let feature_block = self.feature_block_of(id);
        if r.feature_block != feature_block as u8 {
            return Err(bad("feature_block", r.feature_block.into()));
        }
        let raw = logical.end - logical.start;
        if u64::from(r.raw_len) != raw {
            return Err(Error::Format(FormatError::new(
                region,
                at,
                FormatProblem::Inconsistent {
                    field: "raw_len",
                    expected: raw,
                    found: r.raw_len.into(),
                },
            )));
        }
        let len_ok = match codec {
            Codec::Stored => r.stored_len == r.raw_len,
            Codec::Zlib | Codec::Zstd => r.stored_len > 0 && r.stored_len < r.raw_len,
        };
        if !len_ok {
            return Err(bad("stored_len", r.stored_len.into()));
        }
        let start = self.layout.data_start();
        let end = self.layout.data_end();
        let stored_end = r.stored_offset.checked_add(u64::from(r.stored_len));
        if r.stored_offset < start || stored_end.is_none_or(|e| e > end) {
            return Err(Error::Format(FormatError::new(
                region,
                at,
                FormatProblem::OutOfBounds {
                    field: "stored_offset",
                    start: r.stored_offset,
                    len: r.stored_len.into(),
                    limit: end,
                },
            )));
        }
        Ok(BlockInfo {
            id,
            stored_offset: r.stored_offset,
            stored_len: r.stored_len,
            raw_len: r.raw_len,
            crc: r.crc,
            codec,
            feature_block,
            logical_offset: logical.start,
            hash: self.layout.block_hash(self.data, id.0),
        })
    }

    /// Whether the package records a BLAKE3 hash of every block (a v1.1
    /// block hash section, `docs/FORMAT.md` §8a).
    pub fn has_hashes(&self) -> bool {
        self.layout.has_hashes()
    }

    /// Check every block record (rules 46–51 of `docs/FORMAT.md` §12.6)
    /// and the storage layout (rules 63–65, §12.10): the records place
    /// the blocks back to back in id order from `prologue_len`, FB1 first,
    /// filling the data region exactly. So no two records share stored
    /// bytes, and every stored byte belongs to exactly one block.
    ///
    /// O(block count), reading only the 32-byte records (no block data):
    /// about 40 ns per record (2.7 ms for 65,536; `benches/read.rs`,
    /// `storage_check`). Returns the data length.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("a.bin", vec![3u8; 200_000])?
    ///     .write_to_vec()?;
    /// let pkg = sft::Package::parse(&bytes)?;
    /// assert_eq!(pkg.index().check_storage()?, pkg.header().data_len);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The first record that breaks a rule, as [`BlockIndex::get`], or
    /// [`Error::Format`] naming the record (rule 63) or the header field
    /// (rules 64, 65).
    pub fn check_storage(&self) -> Result<u64, Error> {
        let mut check = StorageCheck::new(&self.layout);
        for id in self.ids() {
            check.push(&self.get(id)?)?;
        }
        self.layout.check_hash_section(self.data)?;
        check.finish()
    }

    /// Every record, checked as by [`BlockIndex::check_storage`]: the
    /// table a streaming session schedules from.
    pub(crate) fn checked_records(&self) -> Result<Vec<BlockInfo>, Error> {
        let mut check = StorageCheck::new(&self.layout);
        let mut out = Vec::new();
        out.try_reserve_exact(self.len() as usize).map_err(|_| {
            Error::invalid(format!("{} block records do not fit in memory", self.len()))
        })?;
        for id in self.ids() {
            let info = self.get(id)?;
            check.push(&info)?;
            out.push(info);
        }
        self.layout.check_hash_section(self.data)?;
        check.finish()?;
        Ok(out)
    }

    /// Iterate over all block ids in storage order.
    pub fn ids(&self) -> impl Iterator<Item = BlockId> + use<> {
        (0..self.len()).map(BlockId)
    }

    /// Block ids whose logical ranges overlap `range`.
    pub fn blocks_for_range(&self, range: Range<u64>) -> Range<u32> {
        if range.start >= range.end {
            return 0..0;
        }
        match (self.locate(range.start), self.locate(range.end - 1)) {
            (Some((a, _)), Some((b, _))) => a.0..b.0 + 1,
            _ => 0..0,
        }
    }
}

/// The storage layout rules (`docs/FORMAT.md` §10.4, rules 63–65),
/// applied to records given one at a time in id order.
struct StorageCheck {
    layout: Layout,
    /// Where the next block must start.
    next: u64,
}

impl StorageCheck {
    fn new(layout: &Layout) -> Self {
        StorageCheck {
            layout: *layout,
            next: layout.header.prologue_len,
        }
    }

    /// Rule 63 for `b` (the next record in id order), and rule 64 once the
    /// last FB1 block is in.
    fn push(&mut self, b: &BlockInfo) -> Result<(), Error> {
        let h = &self.layout.header;
        if b.stored_offset != self.next {
            return Err(Error::Format(FormatError::new(
                Region::BlockRecord(b.id.0),
                self.layout.block_record_offset(b.id.0),
                FormatProblem::Inconsistent {
                    field: "stored_offset",
                    expected: self.next,
                    found: b.stored_offset,
                },
            )));
        }
        self.next += u64::from(b.stored_len);
        if b.id.0 + 1 == h.fb1_block_count {
            self.fb1_end()?;
        }
        Ok(())
    }

    fn fb1_end(&self) -> Result<(), Error> {
        let h = &self.layout.header;
        let fb1 = self.next - h.prologue_len;
        if fb1 != h.fb1_stored_len {
            return Err(Error::Format(FormatError::new(
                Region::Header,
                0,
                FormatProblem::Inconsistent {
                    field: "fb1_stored_len",
                    expected: fb1,
                    found: h.fb1_stored_len,
                },
            )));
        }
        Ok(())
    }

    /// Rule 64 when there is no FB1, then rule 65; the data length.
    fn finish(self) -> Result<u64, Error> {
        let h = &self.layout.header;
        if h.fb1_block_count == 0 && h.fb1_stored_len != 0 {
            return Err(Error::Format(FormatError::new(
                Region::Header,
                0,
                FormatProblem::Inconsistent {
                    field: "fb1_stored_len",
                    expected: 0,
                    found: h.fb1_stored_len,
                },
            )));
        }
        if self.next != h.package_len() {
            return Err(Error::Format(FormatError::new(
                Region::Data,
                h.prologue_len,
                FormatProblem::Inconsistent {
                    field: "data_len",
                    expected: self.next - h.prologue_len,
                    found: h.data_len,
                },
            )));
        }
        Ok(h.data_len)
    }
}
