//! Fixed-size records of SFT v1, each mirroring one table of
//! `docs/FORMAT.md` field by field.

#[allow(unused_imports)]
use crate::prelude::*;

use super::errors::{
    Fault, FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region, Unsupported,
};
use super::{
    BLOCK_RECORD_LEN, BLOCK_SIZES, ENTRY_RECORD_LEN, EXTENT_RECORD_LEN, Fields, HASH_RECORD_LEN,
    HEADER_LEN, MAGIC, MAX_SECTIONS, METADATA_FIXED_LEN, SECTION_ENTRY_LEN, VERSION_MAJOR,
    crc32_parts, put_i64, put_u16, put_u32, put_u64,
};

/// The fixed-size header at offset 0 (`docs/FORMAT.md` §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Header {
    /// Major format version (1).
    pub major: u16,
    /// Minor format version; readers accept any.
    pub minor: u16,
    /// Length of the header in bytes (at least 128).
    pub header_len: u32,
    /// Bytes from offset 0 to the start of the data region.
    pub prologue_len: u64,
    /// Length of the data region; the package is `prologue_len + data_len` bytes.
    pub data_len: u64,
    /// Block size: 4096, 16384, 32768 or 65536.
    pub block_size: u32,
    /// Number of blocks in the index.
    pub block_count: u32,
    /// Blocks `0..fb1_block_count` form feature block 1.
    pub fb1_block_count: u32,
    /// Number of entries in the section table.
    pub section_count: u32,
    /// Absolute offset of the section table.
    pub section_table_offset: u64,
    /// Stored bytes of FB1: FB1 occupies `prologue_len..prologue_len + fb1_stored_len`.
    pub fb1_stored_len: u64,
    /// CRC-32 of the section table bytes.
    pub section_table_crc: u32,
    /// Reserved flags; written as 0, ignored by v1 readers.
    pub flags: u32,
}

impl Header {
    /// Parse and check the header at the start of `data`.
    ///
    /// Checks, in order: length, magic, major version, `header_len`, the
    /// header CRC, then field ranges (block size, section count, layout).
    ///
    /// # Errors
    /// [`Fault::Format`] naming the field, [`Fault::Integrity`] for a CRC
    /// mismatch, [`Fault::Unsupported`] for a major version other than 1.
    pub fn parse(data: &[u8]) -> Result<Header, Fault> {
        let fmt = |p| Fault::Format(FormatError::new(Region::Header, 0, p));
        if data.len() < HEADER_LEN {
            return Err(fmt(FormatProblem::Truncated {
                needed: HEADER_LEN as u64,
                available: data.len() as u64,
            }));
        }
        let f = Fields(&data[..HEADER_LEN]);
        if f.bytes::<8>(0) != MAGIC {
            return Err(fmt(FormatProblem::BadMagic));
        }
        let major = f.u16(8);
        if major != VERSION_MAJOR {
            return Err(Unsupported::MajorVersion(major).into());
        }
        let header_len = f.u32(12);
        if (header_len as usize) < HEADER_LEN || header_len % 8 != 0 {
            return Err(fmt(FormatProblem::BadValue {
                field: "header_len",
                value: header_len.into(),
            }));
        }
        if data.len() < header_len as usize {
            return Err(fmt(FormatProblem::Truncated {
                needed: header_len.into(),
                available: data.len() as u64,
            }));
        }
        let hl = header_len as usize;
        let stored_crc = Fields(&data[..hl]).u32(hl - 4);
        let actual = crc32_parts(&[&data[..hl - 4]]);
        if stored_crc != actual {
            return Err(IntegrityError::new(
                Region::Header,
                0,
                IntegrityProblem::CrcMismatch {
                    expected: stored_crc,
                    actual,
                },
            )
            .into());
        }
        let h = Header {
            major,
            minor: f.u16(10),
            header_len,
            prologue_len: f.u64(16),
            data_len: f.u64(24),
            block_size: f.u32(32),
            block_count: f.u32(36),
            fb1_block_count: f.u32(40),
            section_count: f.u32(44),
            section_table_offset: f.u64(48),
            fb1_stored_len: f.u64(56),
            section_table_crc: f.u32(64),
            flags: f.u32(68),
        };
        h.check().map_err(fmt)?;
        Ok(h)
    }

    fn check(&self) -> Result<(), FormatProblem> {
        let bad = |field, value: u64| Err(FormatProblem::BadValue { field, value });
        if !BLOCK_SIZES.contains(&self.block_size) {
            return bad("block_size", self.block_size.into());
        }
        if self.section_count > MAX_SECTIONS {
            return bad("section_count", self.section_count.into());
        }
        if self.fb1_block_count > self.block_count {
            return bad("fb1_block_count", self.fb1_block_count.into());
        }
        if self.prologue_len < u64::from(self.header_len) {
            return bad("prologue_len", self.prologue_len);
        }
        if self.prologue_len.checked_add(self.data_len).is_none() {
            return bad("data_len", self.data_len);
        }
        if self.fb1_stored_len > self.data_len {
            return bad("fb1_stored_len", self.fb1_stored_len);
        }
        let table_len = u64::from(self.section_count) * SECTION_ENTRY_LEN as u64;
        if self.section_table_offset != u64::from(self.header_len)
            || self.section_table_offset + table_len > self.prologue_len
        {
            return Err(FormatProblem::OutOfBounds {
                field: "section_table_offset",
                start: self.section_table_offset,
                len: table_len,
                limit: self.prologue_len,
            });
        }
        Ok(())
    }

    /// Total package length in bytes.
    pub fn package_len(&self) -> u64 {
        self.prologue_len + self.data_len
    }

    /// Length of the section table in bytes.
    pub fn section_table_len(&self) -> u64 {
        u64::from(self.section_count) * SECTION_ENTRY_LEN as u64
    }

    /// Encode as the 128-byte v1 header, computing the header CRC.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        put_u16(&mut b, 8, self.major);
        put_u16(&mut b, 10, self.minor);
        put_u32(&mut b, 12, HEADER_LEN as u32);
        put_u64(&mut b, 16, self.prologue_len);
        put_u64(&mut b, 24, self.data_len);
        put_u32(&mut b, 32, self.block_size);
        put_u32(&mut b, 36, self.block_count);
        put_u32(&mut b, 40, self.fb1_block_count);
        put_u32(&mut b, 44, self.section_count);
        put_u64(&mut b, 48, self.section_table_offset);
        put_u64(&mut b, 56, self.fb1_stored_len);
        put_u32(&mut b, 64, self.section_table_crc);
        put_u32(&mut b, 68, self.flags);
        let crc = crc32_parts(&[&b[..HEADER_LEN - 4]]);
        put_u32(&mut b, HEADER_LEN - 4, crc);
        b
    }
}

/// Section kinds defined in v1 (`docs/FORMAT.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SectionKind {
    /// 1: package metadata.
    Metadata = 1,
    /// 2: directory entry records.
    Entries = 2,
    /// 3: extent records.
    Extents = 3,
    /// 4: the name pool.
    Names = 4,
    /// 5: the block index.
    BlockIndex = 5,
    /// 6: block hashes (format v1.1, `docs/FORMAT.md` §8a): a BLAKE3 hash
    /// of every block's stored bytes. Optional: written without the
    /// REQUIRED flag, so a v1.0 reader skips it.
    BlockHashes = 6,
}

impl SectionKind {
    /// The five kinds every package has, in the order a writer lays them
    /// out (a v1.1 writer adds [`SectionKind::BlockHashes`] after them).
    pub const ALL: [SectionKind; 5] = [
        SectionKind::Metadata,
        SectionKind::Entries,
        SectionKind::Extents,
        SectionKind::Names,
        SectionKind::BlockIndex,
    ];

    /// Decode a kind number; unknown kinds give `None`.
    pub fn from_u32(v: u32) -> Option<Self> {
        if v == SectionKind::BlockHashes as u32 {
            return Some(SectionKind::BlockHashes);
        }
        Self::ALL.into_iter().find(|k| *k as u32 == v)
    }

    /// Record size a v1 writer uses for this section (0: not a record array).
    pub fn record_len(self) -> u32 {
        match self {
            SectionKind::Metadata | SectionKind::Names => 0,
            SectionKind::Entries => ENTRY_RECORD_LEN as u32,
            SectionKind::Extents => EXTENT_RECORD_LEN as u32,
            SectionKind::BlockIndex => BLOCK_RECORD_LEN as u32,
            SectionKind::BlockHashes => HASH_RECORD_LEN as u32,
        }
    }
}

/// The header record (record 0) of the block hash section
/// (`docs/FORMAT.md` §8a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSectionHeader {
    /// Hash algorithm: [`HASH_ALGORITHM_BLAKE3`](super::HASH_ALGORITHM_BLAKE3) is the only one defined.
    pub algorithm: u32,
    /// Bytes per hash: 32 for BLAKE3.
    pub hash_len: u32,
    /// Number of hashes: MUST equal the header's `block_count`.
    pub block_count: u32,
}

impl HashSectionHeader {
    /// Parse from the first bytes of record 0 (at least 12 bytes).
    pub(crate) fn parse(f: Fields<'_>) -> Self {
        HashSectionHeader {
            algorithm: f.u32(0),
            hash_len: f.u32(4),
            block_count: f.u32(8),
        }
    }

    /// Encode as one 32-byte record (bytes 12..32 reserved, zero).
    pub fn encode(&self) -> [u8; HASH_RECORD_LEN] {
        let mut b = [0u8; HASH_RECORD_LEN];
        put_u32(&mut b, 0, self.algorithm);
        put_u32(&mut b, 4, self.hash_len);
        put_u32(&mut b, 8, self.block_count);
        b
    }
}

/// One section table entry (`docs/FORMAT.md` §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionEntry {
    /// Section kind number.
    pub kind: u32,
    /// Flags; bit 0 = required.
    pub flags: u32,
    /// Absolute offset of the section.
    pub offset: u64,
    /// Length of the section in bytes.
    pub length: u64,
    /// Stride of its records (0 if it is not a record array).
    pub record_size: u32,
    /// CRC-32 of the section's bytes.
    pub crc: u32,
}

impl SectionEntry {
    /// Parse from exactly [`SECTION_ENTRY_LEN`] bytes.
    pub(crate) fn parse(f: Fields<'_>) -> Self {
        SectionEntry {
            kind: f.u32(0),
            flags: f.u32(4),
            offset: f.u64(8),
            length: f.u64(16),
            record_size: f.u32(24),
            crc: f.u32(28),
        }
    }

    /// Encode as 32 bytes.
    pub fn encode(&self) -> [u8; SECTION_ENTRY_LEN] {
        let mut b = [0u8; SECTION_ENTRY_LEN];
        put_u32(&mut b, 0, self.kind);
        put_u32(&mut b, 4, self.flags);
        put_u64(&mut b, 8, self.offset);
        put_u64(&mut b, 16, self.length);
        put_u32(&mut b, 24, self.record_size);
        put_u32(&mut b, 28, self.crc);
        b
    }
}

/// The fixed part of the metadata section (`docs/FORMAT.md` §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataRecord {
    /// Length of the fixed part (at least 128); strings follow it.
    pub fixed_len: u32,
    /// Package version number (App-V's "Package Version").
    pub version: u32,
    /// Package GUID, RFC 4122 byte order.
    pub package_guid: [u8; 16],
    /// Package version GUID, RFC 4122 byte order.
    pub version_guid: [u8; 16],
    /// Creation time, seconds since the Unix epoch.
    pub created_secs: i64,
    /// Creation time, nanoseconds (< 1e9).
    pub created_nanos: u32,
    /// Launch size: uncompressed bytes of FB1.
    pub launch_size: u64,
    /// Package size: uncompressed bytes of all file data.
    pub package_size: u64,
    /// Package name: (offset from section start, length).
    pub name: (u32, u32),
    /// Root directory name.
    pub root: (u32, u32),
    /// Comment (the OSD ABSTRACT).
    pub comment: (u32, u32),
}

impl MetadataRecord {
    pub(crate) fn parse(f: Fields<'_>) -> Self {
        MetadataRecord {
            fixed_len: f.u32(0),
            version: f.u32(4),
            package_guid: f.bytes::<16>(8),
            version_guid: f.bytes::<16>(24),
            created_secs: f.i64(40),
            created_nanos: f.u32(48),
            launch_size: f.u64(56),
            package_size: f.u64(64),
            name: (f.u32(72), f.u32(76)),
            root: (f.u32(80), f.u32(84)),
            comment: (f.u32(88), f.u32(92)),
        }
    }

    /// Encode the 128-byte fixed part.
    pub fn encode(&self) -> [u8; METADATA_FIXED_LEN] {
        let mut b = [0u8; METADATA_FIXED_LEN];
        put_u32(&mut b, 0, METADATA_FIXED_LEN as u32);
        put_u32(&mut b, 4, self.version);
        b[8..24].copy_from_slice(&self.package_guid);
        b[24..40].copy_from_slice(&self.version_guid);
        put_i64(&mut b, 40, self.created_secs);
        put_u32(&mut b, 48, self.created_nanos);
        put_u64(&mut b, 56, self.launch_size);
        put_u64(&mut b, 64, self.package_size);
        for (at, (o, l)) in [(72, self.name), (80, self.root), (88, self.comment)] {
            put_u32(&mut b, at, o);
            put_u32(&mut b, at + 4, l);
        }
        b
    }
}

/// Kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// 1: a regular file.
    File,
    /// 2: a directory.
    Directory,
}

impl EntryKind {
    /// Decode the on-disk byte.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(EntryKind::File),
            2 => Some(EntryKind::Directory),
            _ => None,
        }
    }
    /// The on-disk byte.
    pub fn id(self) -> u8 {
        match self {
            EntryKind::File => 1,
            EntryKind::Directory => 2,
        }
    }
}

/// One directory entry record (`docs/FORMAT.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryRecord {
    /// Offset of the path in the name pool.
    pub name_off: u64,
    /// Length of the path in bytes.
    pub name_len: u32,
    /// Length of the 8.3 short name that follows the path (0: none).
    pub short_len: u16,
    /// Entry kind byte (1 file, 2 directory).
    pub kind: u8,
    /// Attribute bits (`ATTR_*`).
    pub attributes: u8,
    /// File size in bytes (0 for directories).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime_secs: i64,
    /// Modification time, nanoseconds (< 1e9).
    pub mtime_nanos: u32,
    /// Number of extents.
    pub extent_count: u32,
    /// Index of the first extent in the extent section.
    pub extent_first: u64,
    /// CRC-32 over record bytes 0..60, the path, the short name and the extents.
    pub crc: u32,
}

impl EntryRecord {
    pub(crate) fn parse(f: Fields<'_>) -> Self {
        EntryRecord {
            name_off: f.u64(0),
            name_len: f.u32(8),
            short_len: f.u16(12),
            kind: f.u8(14),
            attributes: f.u8(15),
            size: f.u64(16),
            mtime_secs: f.i64(24),
            mtime_nanos: f.u32(32),
            extent_count: f.u32(36),
            extent_first: f.u64(40),
            crc: f.u32(60),
        }
    }

    /// Encode as 64 bytes; `crc` is written as given.
    pub fn encode(&self) -> [u8; ENTRY_RECORD_LEN] {
        let mut b = [0u8; ENTRY_RECORD_LEN];
        put_u64(&mut b, 0, self.name_off);
        put_u32(&mut b, 8, self.name_len);
        put_u16(&mut b, 12, self.short_len);
        b[14] = self.kind;
        b[15] = self.attributes;
        put_u64(&mut b, 16, self.size);
        put_i64(&mut b, 24, self.mtime_secs);
        put_u32(&mut b, 32, self.mtime_nanos);
        put_u32(&mut b, 36, self.extent_count);
        put_u64(&mut b, 40, self.extent_first);
        put_u32(&mut b, 60, self.crc);
        b
    }
}

/// One extent: `length` bytes of a file at `file_offset` live at
/// `logical_offset` in the package's logical (uncompressed) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtentRecord {
    /// Offset in the file.
    pub file_offset: u64,
    /// Offset in the logical stream.
    pub logical_offset: u64,
    /// Length in bytes (> 0).
    pub length: u64,
}

impl ExtentRecord {
    pub(crate) fn parse(f: Fields<'_>) -> Self {
        ExtentRecord {
            file_offset: f.u64(0),
            logical_offset: f.u64(8),
            length: f.u64(16),
        }
    }

    /// Encode as 24 bytes.
    pub fn encode(&self) -> [u8; EXTENT_RECORD_LEN] {
        let mut b = [0u8; EXTENT_RECORD_LEN];
        put_u64(&mut b, 0, self.file_offset);
        put_u64(&mut b, 8, self.logical_offset);
        put_u64(&mut b, 16, self.length);
        b
    }
}

/// One block index record (`docs/FORMAT.md` §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockRecord {
    /// Absolute offset of the stored bytes.
    pub stored_offset: u64,
    /// Length of the stored bytes.
    pub stored_len: u32,
    /// Length of the block's data after decoding.
    pub raw_len: u32,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
    /// Codec id (0 stored, 1 zlib).
    pub codec: u8,
    /// Feature block (1 or 2).
    pub feature_block: u8,
}

impl BlockRecord {
    /// Parse a record, checking its own CRC (bytes 28..32, over bytes
    /// 0..28 and any bytes past 32 when the section's stride is larger).
    ///
    /// # Errors
    /// [`IntegrityError`] if the record CRC does not match.
    pub(crate) fn parse_checked(
        rec: &[u8],
        id: u32,
        offset: u64,
    ) -> Result<BlockRecord, IntegrityError> {
        let f = Fields(rec);
        let expected = f.u32(28);
        let actual = crc32_parts(&[rec.get(..28).unwrap_or(rec), rec.get(32..).unwrap_or(&[])]);
        if expected != actual {
            return Err(IntegrityError::new(
                Region::BlockRecord(id),
                offset,
                IntegrityProblem::CrcMismatch { expected, actual },
            ));
        }
        Ok(BlockRecord {
            stored_offset: f.u64(0),
            stored_len: f.u32(8),
            raw_len: f.u32(12),
            crc: f.u32(16),
            codec: f.u8(20),
            feature_block: f.u8(21),
        })
    }

    /// Encode as 32 bytes, computing the record CRC.
    pub fn encode(&self) -> [u8; BLOCK_RECORD_LEN] {
        let mut b = [0u8; BLOCK_RECORD_LEN];
        put_u64(&mut b, 0, self.stored_offset);
        put_u32(&mut b, 8, self.stored_len);
        put_u32(&mut b, 12, self.raw_len);
        put_u32(&mut b, 16, self.crc);
        b[20] = self.codec;
        b[21] = self.feature_block;
        let crc = crc32_parts(&[&b[..28]]);
        put_u32(&mut b, 28, crc);
        b
    }
}
