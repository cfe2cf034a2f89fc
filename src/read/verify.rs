//! [`Package::verify`]: check every byte of a package.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::BTreeSet;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, FormatError, FormatProblem, Region};
use crate::format::{BlockId, Fields, SECTION_ENTRY_LEN, SectionEntry, slice_at};
use crate::read::{Decoder, Package};

/// Who runs a parallel job for the core: [`Package::verify_with`] hands
/// its block checks to `run`, which calls `job` on one or more threads
/// (each call claims work until none is left) and returns when every call
/// has returned. The core itself starts no threads; [`Serial`] runs the job
/// on the calling thread, and `sft::io::Threads` on scoped OS threads.
pub trait Workers: Sync {
    /// Run `job` on up to `max_useful` workers (more would find nothing to
    /// do) and return when all have returned.
    fn run(&self, max_useful: u64, job: &(dyn Fn() + Sync));
}

/// The calling thread as the only worker.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl Workers for Serial {
    fn run(&self, _max_useful: u64, job: &(dyn Fn() + Sync)) {
        job();
    }
}

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

/// What [`Package::verify_structure`] checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StructureReport {
    /// Sections whose CRC was checked.
    pub sections: u32,
    /// Directory entries checked.
    pub entries: u64,
    /// Extent records checked.
    pub extents: u64,
    /// Block records checked (not their data).
    pub block_records: u32,
}

impl<'data> Package<'data> {
    /// Verify the whole package: every section CRC, every entry (order,
    /// parents, extents tiling the logical stream exactly once), every
    /// block record (contiguous storage, FB1 first) and every block's data
    /// (CRC, then decode to the exact size), on the calling thread. For all
    /// cores, pass a [`Workers`] such as `sft::io::Threads` to
    /// [`Package::verify_with`].
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
        self.verify_with(&|_| {}, &Serial)
    }

    /// [`Package::verify`], with the block checks run by `workers` (the
    /// core starts no threads of its own) and `progress` called with the
    /// stored bytes checked since the last call, from any worker. The
    /// result does not depend on the number of workers or their timing:
    /// the first failure by block number is reported.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// # let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    /// #     .add_bytes("a.txt", vec![7; 300_000])?.write_to_vec()?;
    /// let pkg = sft::Package::parse(&bytes)?;
    /// let checked = std::sync::atomic::AtomicU64::new(0);
    /// let report = pkg.verify_with(
    ///     &|n| { checked.fetch_add(n, std::sync::atomic::Ordering::Relaxed); },
    ///     &sft::read::Serial,
    /// )?;
    /// assert_eq!(checked.into_inner(), report.stored_bytes);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Package::verify`].
    pub fn verify_with(
        &self,
        progress: &(dyn Fn(u64) + Sync),
        workers: &dyn Workers,
    ) -> Result<VerifyReport, Error> {
        let s = self.verify_structure()?;
        let logical_bytes = self.verify_block_data(progress, workers)?;
        Ok(VerifyReport {
            sections: s.sections,
            entries: s.entries,
            blocks: self.index().len(),
            stored_bytes: self.header().data_len,
            logical_bytes,
        })
    }

    /// The structural part of [`Package::verify`]: everything but block
    /// data (rules 57–65 of `docs/FORMAT.md`, with every entry and block
    /// record loaded under its own rules on the way). Every section CRC,
    /// every entry in order (extent runs not shared, strict path order,
    /// parents), the exactly-once tiling of the logical stream by the
    /// extents, and the storage layout of the block index.
    ///
    /// Time O(n log n) in the number of extents, memory linear in it;
    /// no block data is read. `sft::extract::extract` runs this before
    /// it writes anything. Once it passes, reading every file (each block
    /// checked as it is used) is the rest of full verification, since the
    /// files together cover every block.
    ///
    /// ```
    /// # fn main() -> sft::Result<()> {
    /// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
    ///     .add_bytes("a/b.txt", b"text".to_vec())?
    ///     .write_to_vec()?;
    /// let r = sft::Package::parse(&bytes)?.verify_structure()?;
    /// assert_eq!((r.entries, r.extents, r.block_records), (2, 1, 1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// The first problem found, as [`Error::Format`], [`Error::Integrity`]
    /// or [`Error::Unsupported`].
    pub fn verify_structure(&self) -> Result<StructureReport, Error> {
        let sections = verify_sections(self.data, self.header())?;
        let (entries, extents) = self.verify_entries()?;
        self.check_storage()?;
        Ok(StructureReport {
            sections,
            entries,
            extents,
            block_records: self.index().len(),
        })
    }

    /// Rules 58–62 over every entry (the iterator applies rules 58 and
    /// 58a).
    fn verify_entries(&self) -> Result<(u64, u64), Error> {
        let total = self.metadata().package_size();
        let mut spans: Vec<(u64, u64, u64)> = Vec::new();
        // Directories seen so far: a parent sorts before its children.
        let mut dirs: BTreeSet<&'data str> = BTreeSet::new();
        let mut count = 0;
        for e in self.entries() {
            let e = e?;
            let parent = e.parent();
            if !parent.is_empty() && !dirs.contains(parent) {
                return Err(Error::Format(FormatError::new(
                    Region::Entry(e.number()),
                    self.layout.entry_offset(e.number()),
                    FormatProblem::MissingParent,
                )));
            }
            if e.is_dir() {
                dirs.insert(e.path());
            }
            // Rule 58a keeps the runs disjoint: this grows no larger than
            // the extents section.
            for x in e.extents() {
                spans.push((x.logical_offset, x.length, e.number()));
            }
            count += 1;
        }
        let extents = spans.len() as u64;
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
        Ok((count, extents))
    }

    /// CRC and decode every block ([`check_blocks`]).
    fn verify_block_data(
        &self,
        progress: &(dyn Fn(u64) + Sync),
        workers: &dyn Workers,
    ) -> Result<u64, Error> {
        check_blocks(self.index().len(), progress, workers, &|ids, scratch| {
            let (mut stored, mut logical) = (0u64, 0u64);
            for i in ids {
                let id = BlockId(i);
                let b = self.block(id).map_err(|e| (id, e))?;
                scratch
                    .decoder
                    .decode_into(&b, &mut scratch.out)
                    .map_err(|e| (id, e))?;
                stored += u64::from(b.info().stored_len);
                logical += scratch.out.len() as u64;
            }
            Ok((stored, logical))
        })
    }
}

/// The buffers of one worker of [`check_blocks`], kept across its batches.
#[derive(Debug, Default)]
pub(crate) struct CheckScratch {
    /// The worker's decoder.
    pub(crate) decoder: Decoder,
    /// Stored bytes read for a batch (readers that copy them in, such as
    /// `sft::io::package_file`).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) stored: Vec<u8>,
    /// The last decoded block.
    pub(crate) out: Vec<u8>,
}

/// What [`check_blocks`] hands one batch of consecutive block ids to: it
/// checks them in order and returns their stored and decoded bytes, or the
/// first block that fails with its error.
pub(crate) type CheckBatch<'a> = dyn Fn(core::ops::Range<u32>, &mut CheckScratch) -> Result<(u64, u64), (BlockId, Error)>
    + Sync
    + 'a;

/// Check blocks `0..n`: batches of consecutive ids claimed by whichever
/// worker is free, each checked by `check`, with `progress` told the
/// stored bytes of every batch that passed. Returns the logical bytes
/// decoded. The first failing block by number is checked again on its own
/// (checks are deterministic) and its error returned, so the outcome does
/// not depend on the number of workers or their timing; workers share no
/// lock. The one verification loop of [`Package::verify_with`] and of
/// lazily read packages (`sft::io::package_file`).
pub(crate) fn check_blocks(
    n: u32,
    progress: &(dyn Fn(u64) + Sync),
    workers: &dyn Workers,
    check: &CheckBatch<'_>,
) -> Result<u64, Error> {
    let next = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let logical = AtomicU64::new(0);
    const BATCH: u64 = 64;
    // The lowest failing block; its error is found again afterwards.
    let first_bad = AtomicU32::new(u32::MAX);
    let job = || {
        let mut scratch = CheckScratch::default();
        loop {
            if failed.load(Ordering::Relaxed) {
                return;
            }
            let start = next.fetch_add(BATCH, Ordering::Relaxed);
            if start >= u64::from(n) {
                return;
            }
            let end = (start + BATCH).min(u64::from(n));
            match check(start as u32..end as u32, &mut scratch) {
                Ok((stored, decoded)) => {
                    logical.fetch_add(decoded, Ordering::Relaxed);
                    progress(stored);
                }
                Err((id, _)) => {
                    failed.store(true, Ordering::Relaxed);
                    first_bad.fetch_min(id.0, Ordering::Relaxed);
                    return;
                }
            }
        }
    };
    workers.run(u64::from(n).div_ceil(BATCH), &job);
    let bad = first_bad.into_inner();
    if bad != u32::MAX {
        let again = check(bad..bad + 1, &mut CheckScratch::default());
        return Err(match again {
            Err((_, e)) => e,
            Ok(_) => Error::invalid(format!(
                "{} failed its check, then passed it: the package changed during verification",
                BlockId(bad)
            )),
        });
    }
    Ok(logical.into_inner())
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
        crate::format::layout::checked_section(
            data,
            s.offset,
            s.length,
            s.crc,
            Region::Section(s.kind),
        )?;
        n += 1;
    }
    Ok(n)
}
