//! Validation of the prologue: header, section table and metadata.
//!
//! Everything here is O(number of sections): the directory and block index
//! are checked record by record when they are used (each record carries its
//! own CRC), so opening a package costs the same for 10 files as for
//! 100,000. [`crate::Package::verify`] checks every section CRC in full.

#[allow(unused_imports)]
use crate::prelude::*;

use super::errors::{
    Fault, FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region, Unsupported,
};

use crate::format::{
    BLOCK_RECORD_LEN, ENTRY_RECORD_LEN, EXTENT_RECORD_LEN, Fields, HASH_ALGORITHM_BLAKE3, HASH_LEN,
    HASH_RECORD_LEN, HashSectionHeader, Header, MAX_METADATA_LEN, MAX_RECORD_LEN, MAX_SECTIONS,
    METADATA_FIXED_LEN, MetadataRecord, SECTION_ENTRY_LEN, SECTION_FLAG_REQUIRED, SectionEntry,
    SectionKind, blocks_for, crc32_parts, slice_at,
};

/// A section's place: absolute offset, length and record stride.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) stride: u64,
    pub(crate) crc: u32,
}

impl Span {
    pub(crate) fn count(&self) -> u64 {
        self.len.checked_div(self.stride).unwrap_or(0)
    }
}

/// The validated shape of a package, computed once from its prologue.
/// `Copy` and small, so views can carry it by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) header: Header,
    pub(crate) meta: MetadataRecord,
    pub(crate) metadata: Span,
    pub(crate) entries: Span,
    pub(crate) extents: Span,
    pub(crate) names: Span,
    pub(crate) index: Span,
    /// The block hash section (v1.1, §8a) if the package has one whose
    /// algorithm this reader knows; `len == 0` otherwise. Its records
    /// `1..=block_count` are the hashes (record 0 is its header).
    pub(crate) hashes: Span,
}

fn fmt_err(region: Region, offset: u64, problem: FormatProblem) -> Fault {
    Fault::Format(FormatError::new(region, offset, problem))
}

impl Layout {
    /// Validate the prologue at the start of `data`, which must hold at
    /// least `prologue_len` bytes (more is fine: a whole package).
    pub(crate) fn parse(data: &[u8]) -> Result<Layout, Fault> {
        let header = Header::parse(data)?;
        let prologue_len = header.prologue_len;
        if (data.len() as u64) < prologue_len {
            return Err(fmt_err(
                Region::Header,
                0,
                FormatProblem::Truncated {
                    needed: prologue_len,
                    available: data.len() as u64,
                },
            ));
        }
        // In bounds: Header::parse checked table offset + len <= prologue_len <= data.len().
        let table_off = header.section_table_offset;
        let table = slice_at(
            data,
            table_off,
            header.section_table_len(),
            Region::SectionTable,
            0,
        )?;
        let actual = crc32_parts(&[table]);
        if actual != header.section_table_crc {
            return Err(IntegrityError::new(
                Region::SectionTable,
                table_off,
                IntegrityProblem::CrcMismatch {
                    expected: header.section_table_crc,
                    actual,
                },
            )
            .into());
        }

        let mut spans: [Option<Span>; 6] = [None; 6];
        // (offset, len) of every section, for the tiling check.
        let mut all = [(0u64, 0u64); MAX_SECTIONS as usize];
        let n = header.section_count as usize;
        for (i, rec) in table.chunks_exact(SECTION_ENTRY_LEN).enumerate() {
            let s = SectionEntry::parse(Fields(rec));
            let at = table_off + (i * SECTION_ENTRY_LEN) as u64;
            let region = Region::Section(s.kind);
            let end = s.offset.checked_add(s.length);
            let start_ok = s.offset >= table_off + header.section_table_len();
            if !start_ok || end.is_none_or(|e| e > prologue_len) {
                return Err(fmt_err(
                    region,
                    at,
                    FormatProblem::OutOfBounds {
                        field: "section offset",
                        start: s.offset,
                        len: s.length,
                        limit: prologue_len,
                    },
                ));
            }
            all[i] = (s.offset, s.length);
            let Some(kind) = SectionKind::from_u32(s.kind) else {
                if s.flags & SECTION_FLAG_REQUIRED != 0 {
                    return Err(Unsupported::RequiredSection(s.kind).into());
                }
                continue; // unknown optional section: skipped (still tiled below)
            };
            let slot = &mut spans[kind as usize - 1];
            if slot.is_some() {
                return Err(fmt_err(
                    Region::SectionTable,
                    at,
                    FormatProblem::DuplicateSection { kind: s.kind },
                ));
            }
            let min_stride = kind.record_len();
            let stride = u64::from(s.record_size);
            if min_stride == 0 {
                if s.record_size != 0 {
                    return Err(fmt_err(
                        region,
                        at,
                        FormatProblem::BadValue {
                            field: "record_size",
                            value: stride,
                        },
                    ));
                }
            } else if s.record_size < min_stride
                || s.record_size > MAX_RECORD_LEN
                || !s.length.is_multiple_of(stride)
            {
                return Err(fmt_err(
                    region,
                    at,
                    FormatProblem::BadValue {
                        field: "record_size",
                        value: stride,
                    },
                ));
            }
            *slot = Some(Span {
                offset: s.offset,
                len: s.length,
                stride,
                crc: s.crc,
            });
        }
        // The prologue must be tiled exactly: header, table, then sections
        // back to back, so that every byte is under some CRC.
        let sections = &mut all[..n];
        sections.sort_unstable();
        let mut cursor = table_off + header.section_table_len();
        for &(off, len) in sections.iter() {
            if off != cursor {
                return Err(fmt_err(
                    Region::SectionTable,
                    table_off,
                    if off < cursor {
                        FormatProblem::Overlap
                    } else {
                        FormatProblem::Gap
                    },
                ));
            }
            cursor = off + len;
        }
        if cursor != prologue_len {
            return Err(fmt_err(
                Region::Header,
                0,
                FormatProblem::Inconsistent {
                    field: "prologue_len",
                    expected: cursor,
                    found: prologue_len,
                },
            ));
        }
        let need = |k: SectionKind| {
            spans[k as usize - 1].ok_or_else(|| {
                fmt_err(
                    Region::SectionTable,
                    table_off,
                    FormatProblem::MissingSection { kind: k as u32 },
                )
            })
        };
        let metadata = need(SectionKind::Metadata)?;
        let entries = need(SectionKind::Entries)?;
        let extents = need(SectionKind::Extents)?;
        let names = need(SectionKind::Names)?;
        let index = need(SectionKind::BlockIndex)?;
        let hashes = match spans[SectionKind::BlockHashes as usize - 1] {
            Some(span) => Self::parse_hashes(data, span, &header)?,
            None => Span::default(),
        };
        debug_assert!(entries.stride >= ENTRY_RECORD_LEN as u64);
        debug_assert!(extents.stride >= EXTENT_RECORD_LEN as u64);
        debug_assert!(index.stride >= BLOCK_RECORD_LEN as u64);

        let meta = Self::parse_metadata(data, metadata)?;
        let layout = Layout {
            header,
            meta,
            metadata,
            entries,
            extents,
            names,
            index,
            hashes,
        };
        layout.check_counts()?;
        layout.check_boundaries(data)?;
        Ok(layout)
    }

    /// The block hash section's header record (§8a, rules 20a–20c): its
    /// hash count must be the block count and its length one header
    /// record plus one record per block. O(1): the hashes themselves are
    /// under the section CRC, checked once before any block is used
    /// ([`Layout::check_hash_section`]). A known section with an unknown
    /// algorithm is ignored (a later minor may add one), so the package
    /// reads as if it had no hashes.
    fn parse_hashes(data: &[u8], span: Span, header: &Header) -> Result<Span, Fault> {
        let region = Region::Section(SectionKind::BlockHashes as u32);
        if span.len < span.stride {
            return Err(fmt_err(
                region,
                span.offset,
                FormatProblem::Truncated {
                    needed: span.stride,
                    available: span.len,
                },
            ));
        }
        let rec = slice_at(data, span.offset, HASH_RECORD_LEN as u64, region, 0)?;
        let h = HashSectionHeader::parse(Fields(rec));
        if h.algorithm != HASH_ALGORITHM_BLAKE3 {
            return Ok(Span::default());
        }
        if h.hash_len as usize != HASH_LEN {
            return Err(fmt_err(
                region,
                span.offset + 4,
                FormatProblem::BadValue {
                    field: "hash_len",
                    value: h.hash_len.into(),
                },
            ));
        }
        if h.block_count != header.block_count {
            return Err(fmt_err(
                region,
                span.offset + 8,
                FormatProblem::Inconsistent {
                    field: "hash block_count",
                    expected: header.block_count.into(),
                    found: h.block_count.into(),
                },
            ));
        }
        if span.count() != u64::from(header.block_count) + 1 {
            return Err(fmt_err(
                region,
                span.offset,
                FormatProblem::Inconsistent {
                    field: "hash section length",
                    expected: (u64::from(header.block_count) + 1) * span.stride,
                    found: span.len,
                },
            ));
        }
        Ok(span)
    }

    /// Whether the package has a block hash section this reader knows.
    pub(crate) fn has_hashes(&self) -> bool {
        self.hashes.len != 0
    }

    /// The recorded hash of block `i` (`i < block_count`), unchecked by
    /// any CRC here: [`Layout::check_hash_section`] checks the section
    /// once before any block is used.
    pub(crate) fn block_hash(&self, data: &[u8], i: u32) -> Option<[u8; HASH_LEN]> {
        if !self.has_hashes() || i >= self.header.block_count {
            return None;
        }
        let at = self.hashes.offset + (u64::from(i) + 1) * self.hashes.stride;
        let b = data.get(usize::try_from(at).ok()?..)?.get(..HASH_LEN)?;
        let mut h = [0u8; HASH_LEN];
        h.copy_from_slice(b);
        Some(h)
    }

    /// Check the block hash section's CRC, if there is one.
    pub(crate) fn check_hash_section(&self, data: &[u8]) -> Result<(), Fault> {
        if self.has_hashes() {
            checked_section(
                data,
                self.hashes.offset,
                self.hashes.len,
                self.hashes.crc,
                Region::Section(SectionKind::BlockHashes as u32),
            )?;
        }
        Ok(())
    }

    fn parse_metadata(data: &[u8], span: Span) -> Result<MetadataRecord, Fault> {
        let region = Region::Section(SectionKind::Metadata as u32);
        if span.len < METADATA_FIXED_LEN as u64 || span.len > MAX_METADATA_LEN {
            return Err(fmt_err(
                region,
                span.offset,
                FormatProblem::BadValue {
                    field: "metadata length",
                    value: span.len,
                },
            ));
        }
        let bytes = checked_section(data, span.offset, span.len, span.crc, region)?;
        let m = MetadataRecord::parse(Fields(bytes));
        let bad = |field, value: u64| {
            fmt_err(
                Region::Metadata,
                span.offset,
                FormatProblem::BadValue { field, value },
            )
        };
        if (m.fixed_len as usize) < METADATA_FIXED_LEN || u64::from(m.fixed_len) > span.len {
            return Err(bad("fixed_len", m.fixed_len.into()));
        }
        if m.created_nanos >= 1_000_000_000 {
            return Err(bad("created_nanos", m.created_nanos.into()));
        }
        if m.launch_size > m.package_size {
            return Err(bad("launch_size", m.launch_size));
        }
        for (field, (off, len)) in [("name", m.name), ("root", m.root), ("comment", m.comment)] {
            let start = u64::from(off);
            if start < u64::from(m.fixed_len) || start + u64::from(len) > span.len {
                return Err(fmt_err(
                    Region::Metadata,
                    span.offset,
                    FormatProblem::OutOfBounds {
                        field,
                        start,
                        len: len.into(),
                        limit: span.len,
                    },
                ));
            }
            let s = &bytes[off as usize..(off + len) as usize];
            let Ok(text) = core::str::from_utf8(s) else {
                return Err(fmt_err(
                    Region::Metadata,
                    span.offset + start,
                    FormatProblem::NotUtf8,
                ));
            };
            if field == "root" && (!crate::format::is_valid_path(text) || text.contains('/')) {
                return Err(fmt_err(
                    Region::Metadata,
                    span.offset + start,
                    FormatProblem::BadPath,
                ));
            }
            if field == "name"
                && let Some(b) = text.bytes().find(|&b| crate::format::is_control_byte(b))
            {
                return Err(fmt_err(
                    Region::Metadata,
                    span.offset + start,
                    FormatProblem::BadValue {
                        field: "name",
                        value: b.into(),
                    },
                ));
            }
        }
        Ok(m)
    }

    fn check_counts(&self) -> Result<(), Fault> {
        let h = &self.header;
        let m = &self.meta;
        let inconsistent = |field, expected: u64, found: u64| {
            fmt_err(
                Region::Header,
                0,
                FormatProblem::Inconsistent {
                    field,
                    expected,
                    found,
                },
            )
        };
        if self.index.count() != u64::from(h.block_count) {
            return Err(inconsistent(
                "block_count",
                self.index.count(),
                h.block_count.into(),
            ));
        }
        let fb1 = blocks_for(m.launch_size, h.block_size);
        if fb1 != u64::from(h.fb1_block_count) {
            return Err(inconsistent(
                "fb1_block_count",
                fb1,
                h.fb1_block_count.into(),
            ));
        }
        let fb2 = blocks_for(m.package_size - m.launch_size, h.block_size);
        if fb1 + fb2 != u64::from(h.block_count) {
            return Err(inconsistent("block_count", fb1 + fb2, h.block_count.into()));
        }
        Ok(())
    }

    /// End of the stored bytes of block `i` (offset + length), from its
    /// record, whose own CRC is checked.
    fn stored_end(&self, data: &[u8], i: u32) -> Result<u64, Fault> {
        let at = self.index.offset + u64::from(i) * self.index.stride;
        let rec = slice_at(data, at, self.index.stride, Region::BlockRecord(i), 0)?;
        let r = crate::format::BlockRecord::parse_checked(rec, i, at)?;
        Ok(r.stored_offset.saturating_add(u64::from(r.stored_len)))
    }

    /// The FB1 run and the data region must end where the last FB1 block
    /// and the last block end: two record reads, O(1), so a streaming
    /// client can trust `fb1_stored_len` before fetching FB1.
    fn check_boundaries(&self, data: &[u8]) -> Result<(), Fault> {
        let h = &self.header;
        let inconsistent = |field, expected: u64, found: u64| {
            fmt_err(
                Region::Header,
                0,
                FormatProblem::Inconsistent {
                    field,
                    expected,
                    found,
                },
            )
        };
        let fb1_end = match h.fb1_block_count {
            0 => h.prologue_len,
            n => self.stored_end(data, n - 1)?,
        };
        if fb1_end != h.prologue_len + h.fb1_stored_len {
            return Err(inconsistent(
                "fb1_stored_len",
                fb1_end.saturating_sub(h.prologue_len),
                h.fb1_stored_len,
            ));
        }
        let end = match h.block_count {
            0 => h.prologue_len,
            n => self.stored_end(data, n - 1)?,
        };
        if end != h.package_len() {
            return Err(inconsistent(
                "data_len",
                end.saturating_sub(h.prologue_len),
                h.data_len,
            ));
        }
        Ok(())
    }

    /// Absolute offset of directory entry record `n`.
    pub(crate) fn entry_offset(&self, n: u64) -> u64 {
        self.entries
            .offset
            .saturating_add(n.saturating_mul(self.entries.stride))
    }

    /// Absolute offset of block index record `i`.
    pub(crate) fn block_record_offset(&self, i: u32) -> u64 {
        self.index.offset + u64::from(i) * self.index.stride
    }

    /// Absolute offset where the data region starts.
    pub(crate) fn data_start(&self) -> u64 {
        self.header.prologue_len
    }

    /// Absolute offset where the data region ends (the package length).
    pub(crate) fn data_end(&self) -> u64 {
        self.header.package_len()
    }

    /// A metadata string by its (offset, length) pair; validated at parse.
    pub(crate) fn meta_str<'d>(&self, data: &'d [u8], (off, len): (u32, u32)) -> &'d str {
        let start = self.metadata.offset as usize + off as usize;
        data.get(start..start + len as usize)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

/// The `len` bytes of a section at `offset`, after checking them against
/// the section CRC `crc` (rules 25 and 57): bounds as `slice_at`, then
/// `Integrity(region, CrcMismatch)` at `offset`.
pub(crate) fn checked_section(
    data: &[u8],
    offset: u64,
    len: u64,
    crc: u32,
    region: Region,
) -> Result<&[u8], Fault> {
    let bytes = slice_at(data, offset, len, region, 0)?;
    let actual = crc32_parts(&[bytes]);
    if actual != crc {
        return Err(IntegrityError::new(
            region,
            offset,
            IntegrityProblem::CrcMismatch {
                expected: crc,
                actual,
            },
        )
        .into());
    }
    Ok(bytes)
}
