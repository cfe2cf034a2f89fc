//! [`Package::verify`]: check every byte of a package.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region};
use crate::format::{BlockId, Fields, SECTION_ENTRY_LEN, SectionEntry, crc32_parts, slice_at};
use crate::read::{Decoder, Package};

/// What [`Package::verify`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Sections whose CRC was checked.
    pub sections: u32,
    /// Directory entries checked.
    pub entries: u64,
    /// Blocks checked (CRC and decode).
    pub blocks: u32,
    /// Stored bytes checked in the data region.
    pub stored_bytes: u64,
    /// Logical bytes decoded.
    pub logical_bytes: u64,
}

impl<'data> Package<'data> {
    /// Verify the whole package: every section CRC, every entry (order,
    /// parents, extents tiling the logical stream exactly once), every
    /// block record (contiguous storage, FB1 first) and every block's data
    /// (CRC, then decode to the exact size). Blocks are checked on all
    /// cores.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let mut bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("a.txt", b"some text".to_vec())?
    ///     .write_to_vec()?;
    /// assert!(sft::Package::parse(&bytes)?.verify().is_ok());
    /// let last = bytes.len() - 1;
    /// bytes[last] ^= 1; // damage the data region
    /// let err = sft::Package::parse(&bytes)?.verify().unwrap_err();
    /// assert_eq!(err.kind(), sft::ErrorKind::Integrity);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The first problem found, as [`Error::Format`] or [`Error::Integrity`].
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.verify_with(&|_| {})
    }

    /// [`Package::verify`], calling `progress` with stored bytes checked
    /// since the last call (from any thread).
    ///
    /// # Errors
    /// As [`Package::verify`].
    pub fn verify_with(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<VerifyReport, Error> {
        let sections = self.verify_sections()?;
        let entries = self.verify_entries()?;
        let stored_bytes = self.verify_block_layout()?;
        let logical_bytes = self.verify_block_data(progress)?;
        Ok(VerifyReport {
            sections,
            entries,
            blocks: self.index().len(),
            stored_bytes,
            logical_bytes,
        })
    }

    fn verify_sections(&self) -> Result<u32, Error> {
        verify_sections(self.data, self.header())
    }

    fn verify_entries(&self) -> Result<u64, Error> {
        let total = self.metadata().package_size();
        let mut spans: Vec<(u64, u64, u64)> = Vec::new();
        let mut prev: Option<crate::read::Entry<'data>> = None;
        let mut count = 0;
        for e in self.entries() {
            let e = e?;
            let at = self.layout.entry_offset(e.number());
            let fmt = |p| Error::Format(FormatError::new(Region::Entry(e.number()), at, p));
            if let Some(p) = &prev
                && p.path().as_bytes() >= e.path().as_bytes()
            {
                return Err(fmt(FormatProblem::NotSorted));
            }
            let parent = e.parent();
            if !parent.is_empty() && !self.find(parent)?.is_some_and(|p| p.is_dir()) {
                return Err(fmt(FormatProblem::MissingParent));
            }
            for x in e.extents() {
                spans.push((x.logical_offset, x.length, e.number()));
            }
            prev = Some(e);
            count += 1;
        }
        // Extents must cover the logical stream exactly once.
        spans.sort_unstable();
        let mut next = 0u64;
        for (off, len, n) in spans {
            if off != next {
                return Err(Error::Format(FormatError::new(
                    Region::Entry(n),
                    self.layout.entry_offset(n),
                    if off < next {
                        FormatProblem::Overlap
                    } else {
                        FormatProblem::Inconsistent {
                            field: "logical_offset",
                            expected: next,
                            found: off,
                        }
                    },
                )));
            }
            next = off + len;
        }
        if next != total {
            return Err(Error::Format(FormatError::new(
                Region::Metadata,
                self.layout.metadata.offset,
                FormatProblem::Inconsistent {
                    field: "package_size",
                    expected: next,
                    found: total,
                },
            )));
        }
        Ok(count)
    }

    /// Records must store blocks back to back from the data start, FB1
    /// first, filling the data region exactly.
    fn verify_block_layout(&self) -> Result<u64, Error> {
        let index = self.index();
        let h = self.header();
        let mut next = h.prologue_len;
        for id in index.ids() {
            let b = index.get(id)?;
            if b.stored_offset != next {
                return Err(Error::Format(FormatError::new(
                    Region::BlockRecord(id.0),
                    self.layout.block_record_offset(id.0),
                    FormatProblem::Inconsistent {
                        field: "stored_offset",
                        expected: next,
                        found: b.stored_offset,
                    },
                )));
            }
            next += u64::from(b.stored_len);
            if id.0 + 1 == index.fb1_len() && next - h.prologue_len != h.fb1_stored_len {
                return Err(Error::Format(FormatError::new(
                    Region::Header,
                    0,
                    FormatProblem::Inconsistent {
                        field: "fb1_stored_len",
                        expected: next - h.prologue_len,
                        found: h.fb1_stored_len,
                    },
                )));
            }
        }
        if index.fb1_len() == 0 && h.fb1_stored_len != 0 {
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
        if next != h.package_len() {
            return Err(Error::Format(FormatError::new(
                Region::Data,
                h.prologue_len,
                FormatProblem::Inconsistent {
                    field: "data_len",
                    expected: next - h.prologue_len,
                    found: h.data_len,
                },
            )));
        }
        Ok(h.data_len)
    }

    /// CRC and decode every block, in parallel; report the first failure
    /// by block number so results do not depend on thread timing.
    fn verify_block_data(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<u64, Error> {
        let index = self.index();
        let n = index.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(n.div_ceil(64).max(1) as usize);
        let next = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let logical = AtomicU64::new(0);
        const BATCH: u64 = 64;
        let first_error: std::sync::Mutex<Option<(u32, Error)>> = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut dec = Decoder::new();
                    let mut out = Vec::new();
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return;
                        }
                        let start = next.fetch_add(BATCH, Ordering::Relaxed);
                        if start >= u64::from(n) {
                            return;
                        }
                        let end = (start + BATCH).min(u64::from(n));
                        let mut stored = 0u64;
                        for i in start..end {
                            let id = BlockId(i as u32);
                            let r = self.block(id).and_then(|b| {
                                dec.decode_into(&b, &mut out)?;
                                Ok(b.info().stored_len)
                            });
                            match r {
                                Ok(len) => {
                                    stored += u64::from(len);
                                    logical.fetch_add(out.len() as u64, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    let mut slot =
                                        first_error.lock().unwrap_or_else(|p| p.into_inner());
                                    if slot.as_ref().is_none_or(|(b, _)| id.0 < *b) {
                                        *slot = Some((id.0, e));
                                    }
                                    return;
                                }
                            }
                        }
                        progress(stored);
                    }
                });
            }
        });
        let err = first_error.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some((_, e)) = err {
            return Err(e);
        }
        Ok(logical.into_inner())
    }
}

/// Check the CRC of every section listed in the section table (known or
/// not) against the bytes in `data`, which must hold the whole prologue.
pub(crate) fn verify_sections(data: &[u8], h: &crate::format::Header) -> Result<u32, Error> {
    let table = slice_at(
        data,
        h.section_table_offset,
        h.section_table_len(),
        Region::SectionTable,
        0,
    )?;
    let mut n = 0;
    for rec in table.chunks_exact(SECTION_ENTRY_LEN) {
        let s = SectionEntry::parse(Fields(rec));
        let bytes = slice_at(data, s.offset, s.length, Region::Section(s.kind), 0)?;
        let actual = crc32_parts(&[bytes]);
        if actual != s.crc {
            return Err(IntegrityError::new(
                Region::Section(s.kind),
                s.offset,
                IntegrityProblem::CrcMismatch {
                    expected: s.crc,
                    actual,
                },
            )
            .into());
        }
        n += 1;
    }
    Ok(n)
}
