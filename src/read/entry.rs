//! Directory entries: [`Entry`] views validated against their own CRC.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::error::{Error, FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region};
use crate::format::layout::Layout;
use crate::format::{
    ATTR_EXECUTABLE, ATTR_HIDDEN, ATTR_READ_ONLY, ATTR_SYSTEM, ENTRY_RECORD_LEN, EXTENT_RECORD_LEN,
    EntryKind, EntryRecord, ExtentRecord, Fields, crc32_parts, is_valid_path, slice_at,
};
use crate::read::Package;

/// File attributes kept in a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub struct Attributes {
    /// Read-only.
    pub read_only: bool,
    /// Hidden.
    pub hidden: bool,
    /// Executable (restored as the Unix `x` bits on extract).
    pub executable: bool,
    /// Windows system file.
    pub system: bool,
}

impl Attributes {
    /// Decode the attribute byte; unknown bits are ignored.
    pub fn from_bits(b: u8) -> Self {
        Attributes {
            read_only: b & ATTR_READ_ONLY != 0,
            hidden: b & ATTR_HIDDEN != 0,
            executable: b & ATTR_EXECUTABLE != 0,
            system: b & ATTR_SYSTEM != 0,
        }
    }
    /// Encode as the attribute byte.
    pub fn bits(&self) -> u8 {
        (u8::from(self.read_only) * ATTR_READ_ONLY)
            | (u8::from(self.hidden) * ATTR_HIDDEN)
            | (u8::from(self.executable) * ATTR_EXECUTABLE)
            | (u8::from(self.system) * ATTR_SYSTEM)
    }
}

/// One file or directory in a package, borrowing its path and extents.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'data> {
    number: u64,
    rec: EntryRecord,
    kind: EntryKind,
    path: &'data str,
    short_name: Option<&'data str>,
    extents: Extents<'data>,
}

impl<'data> Entry<'data> {
    /// Position in path order (0-based).
    pub fn number(&self) -> u64 {
        self.number
    }
    /// Path relative to the package root, `/`-separated.
    pub fn path(&self) -> &'data str {
        self.path
    }
    /// Last path component.
    pub fn name(&self) -> &'data str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
    /// Parent directory's path (`""` at the top level).
    pub fn parent(&self) -> &'data str {
        self.path.rsplit_once('/').map_or("", |(p, _)| p)
    }
    /// The 8.3 short name, if recorded.
    pub fn short_name(&self) -> Option<&'data str> {
        self.short_name
    }
    /// File or directory.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }
    /// Size in bytes (0 for directories).
    pub fn size(&self) -> u64 {
        self.rec.size
    }
    /// Modification time: seconds and nanoseconds since the Unix epoch.
    pub fn modified(&self) -> (i64, u32) {
        (self.rec.mtime_secs, self.rec.mtime_nanos)
    }
    /// Modification time as a `SystemTime`.
    #[cfg(feature = "std")]
    pub fn modified_time(&self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        let (s, n) = self.modified();
        if s >= 0 {
            UNIX_EPOCH + Duration::new(s.unsigned_abs(), n)
        } else {
            UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::from_nanos(n.into())
        }
    }
    /// Attributes.
    pub fn attributes(&self) -> Attributes {
        Attributes::from_bits(self.rec.attributes)
    }
    /// The raw record.
    pub fn record(&self) -> &EntryRecord {
        &self.rec
    }
    /// The file's extents in file order.
    pub fn extents(&self) -> Extents<'data> {
        self.extents
    }

    pub(crate) fn require_file(&self) -> Result<(), Error> {
        if self.is_file() {
            Ok(())
        } else {
            Err(Error::invalid(format!("`{}` is a directory", self.path)))
        }
    }

    /// The extent holding file offset `pos`, by binary search.
    pub(crate) fn extent_for(&self, pos: u64) -> Option<ExtentRecord> {
        let (mut lo, mut hi) = (0usize, self.extents.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.extents.get(mid)?;
            if pos < e.file_offset {
                hi = mid;
            } else if pos >= e.file_offset + e.length {
                lo = mid + 1;
            } else {
                return Some(e);
            }
        }
        None
    }

    /// Where file offset `pos` is in the package's logical bytes, and how
    /// many bytes of its extent follow it (from `pos`).
    pub(crate) fn logical_at(&self, pos: u64) -> Option<(u64, u64)> {
        let ext = self.extent_for(pos)?;
        let within = pos - ext.file_offset;
        Some((ext.logical_offset + within, ext.length - within))
    }
}

/// Iterator over an entry's extents, yielding records parsed from the
/// mapped bytes (validated when the entry was loaded).
#[derive(Debug, Clone, Copy)]
pub struct Extents<'data> {
    bytes: &'data [u8],
    stride: usize,
    pos: usize,
}

impl<'data> Extents<'data> {
    pub(crate) fn empty() -> Self {
        Extents {
            bytes: &[],
            stride: EXTENT_RECORD_LEN,
            pos: 0,
        }
    }
    /// Total number of extents (not only those remaining).
    pub fn len(&self) -> usize {
        self.bytes.len() / self.stride
    }
    /// True if the entry has no extents (directories, empty files).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// Extent number `i`.
    pub fn get(&self, i: usize) -> Option<ExtentRecord> {
        let rec = self.bytes.get(i * self.stride..(i + 1) * self.stride)?;
        Some(ExtentRecord::parse(Fields(rec)))
    }
}

impl Iterator for Extents<'_> {
    type Item = ExtentRecord;
    fn next(&mut self) -> Option<ExtentRecord> {
        let e = self.get(self.pos)?;
        self.pos += 1;
        Some(e)
    }
}

/// Iterator over all entries in path order, from [`Package::entries`].
///
/// Besides each entry's own checks, it applies rules 58 and 58a
/// (`docs/FORMAT.md` §12.9) in O(1) per entry: paths strictly ascending,
/// and an entry's extent records start at or after the end of the last
/// earlier entry's extent records, so no two entries share extent records
/// and walking every entry costs time linear in the package.
#[derive(Debug, Clone)]
pub struct Entries<'data> {
    pkg: Package<'data>,
    next: u64,
    end: u64,
    /// Rule 58a over the entries seen so far.
    runs: ExtentRuns,
    /// The previous entry's path (rule 58).
    prev: Option<&'data str>,
}

impl<'data> Entries<'data> {
    pub(crate) fn new(pkg: Package<'data>) -> Self {
        Entries {
            end: pkg.entry_count(),
            pkg,
            next: 0,
            runs: ExtentRuns::default(),
            prev: None,
        }
    }
}

impl<'data> Iterator for Entries<'data> {
    type Item = Result<Entry<'data>, Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let r = self.pkg.entry_at(self.next).and_then(|e| {
            let fmt = |problem| {
                Error::Format(FormatError::new(
                    Region::Entry(e.number),
                    self.pkg.layout.entry_offset(e.number),
                    problem,
                ))
            };
            if self.prev.is_some_and(|p| p.as_bytes() >= e.path.as_bytes()) {
                return Err(fmt(FormatProblem::NotSorted));
            }
            self.prev = Some(e.path);
            self.runs
                .admit(e.rec.extent_first, u64::from(e.rec.extent_count))
                .map_err(fmt)?;
            Ok(e)
        });
        // Stop after an error: later records may be just as damaged.
        self.next = if r.is_ok() { self.next + 1 } else { self.end };
        Some(r)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (0, Some(n))
    }
}

/// Rule 58a (`docs/FORMAT.md` §12.9), entry by entry in path order: each
/// entry's extent run starts at or after the end of the last earlier
/// entry's run, so no two entries share extent records.
#[derive(Debug, Clone, Copy, Default)]
struct ExtentRuns {
    /// End of the extent run of the last entry with extents.
    end: u64,
}

impl ExtentRuns {
    /// Admit the next entry's run (`count` records from `first`; rule 35
    /// has bounded it by the extents section, so it cannot overflow).
    fn admit(&mut self, first: u64, count: u64) -> Result<(), FormatProblem> {
        if count == 0 {
            return Ok(());
        }
        if first < self.end {
            return Err(FormatProblem::Inconsistent {
                field: "extent_first",
                expected: self.end,
                found: first,
            });
        }
        self.end = first + count;
        Ok(())
    }
}

/// Rule 45a (`docs/FORMAT.md` §12.5): no two extents of one file share a
/// logical byte. Returns the extent (its position in the entry) that,
/// sorted by (`logical_offset`, position), starts before the previous one
/// ends. O(k) when the logical offsets grow with the file offsets (every
/// file the reference writer makes but one split across FB1 and FB2),
/// O(k log k) with k entries of memory otherwise.
fn logical_overlap(extents: Extents<'_>) -> Option<usize> {
    let mut end = 0u64;
    let mut ordered = true;
    for e in extents {
        if e.logical_offset < end {
            ordered = false;
            break;
        }
        end = e.logical_offset + e.length;
    }
    if ordered {
        return None;
    }
    let mut spans: Vec<(u64, usize, u64)> = extents
        .enumerate()
        .map(|(j, e)| (e.logical_offset, j, e.length))
        .collect();
    spans.sort_unstable();
    spans
        .windows(2)
        .find(|w| w[0].0 + w[0].2 > w[1].0)
        .map(|w| w[1].1)
}

/// Load and validate entry `n`: record CRC (covering record, path, short
/// name and extents), then every rule of `docs/FORMAT.md` §6 that can be
/// checked from the entry alone.
pub(crate) fn load<'d>(data: &'d [u8], layout: &Layout, n: u64) -> Result<Entry<'d>, Error> {
    let span = layout.entries;
    if n >= span.count() {
        return Err(Error::invalid(format!(
            "entry {n} out of range ({} entries)",
            span.count()
        )));
    }
    let region = Region::Entry(n);
    let at = span.offset + n * span.stride;
    let rec_bytes = slice_at(data, at, span.stride, region, 0)?;
    let rec = EntryRecord::parse(Fields(rec_bytes));
    let fmt = |problem| Error::Format(FormatError::new(region, at, problem));

    let names = layout.names;
    let name_total = u64::from(rec.name_len) + u64::from(rec.short_len);
    if rec
        .name_off
        .checked_add(name_total)
        .is_none_or(|e| e > names.len)
    {
        return Err(fmt(FormatProblem::OutOfBounds {
            field: "name_off",
            start: rec.name_off,
            len: name_total,
            limit: names.len,
        }));
    }
    let name_bytes = slice_at(
        data,
        names.offset + rec.name_off,
        name_total,
        Region::Names,
        0,
    )?;
    let ext_span = layout.extents;
    let ext_count = u64::from(rec.extent_count);
    if rec
        .extent_first
        .checked_add(ext_count)
        .is_none_or(|e| e > ext_span.count())
    {
        return Err(fmt(FormatProblem::OutOfBounds {
            field: "extent_first",
            start: rec.extent_first,
            len: ext_count,
            limit: ext_span.count(),
        }));
    }
    let ext_bytes = slice_at(
        data,
        ext_span.offset + rec.extent_first * ext_span.stride,
        ext_count * ext_span.stride,
        Region::Extent(rec.extent_first),
        0,
    )?;
    let covered = rec_bytes.get(..ENTRY_RECORD_LEN - 4).unwrap_or(rec_bytes);
    let extra = rec_bytes.get(ENTRY_RECORD_LEN..).unwrap_or(&[]);
    let actual = crc32_parts(&[covered, extra, name_bytes, ext_bytes]);
    if actual != rec.crc {
        return Err(IntegrityError::new(
            region,
            at,
            IntegrityProblem::CrcMismatch {
                expected: rec.crc,
                actual,
            },
        )
        .into());
    }

    let bad = |field, value: u64| fmt(FormatProblem::BadValue { field, value });
    let kind = EntryKind::from_u8(rec.kind).ok_or_else(|| bad("kind", rec.kind.into()))?;
    // Unknown attribute bits are ignored: a later minor version may
    // define them (docs/FORMAT.md §6.5).
    if rec.mtime_nanos >= 1_000_000_000 {
        return Err(bad("mtime_nanos", rec.mtime_nanos.into()));
    }
    let (path_b, short_b) = name_bytes.split_at(rec.name_len as usize);
    let path = core::str::from_utf8(path_b).map_err(|_| fmt(FormatProblem::NotUtf8))?;
    if !is_valid_path(path) {
        return Err(fmt(FormatProblem::BadPath));
    }
    let short_name = if short_b.is_empty() {
        None
    } else {
        let s = core::str::from_utf8(short_b).map_err(|_| fmt(FormatProblem::NotUtf8))?;
        if s.len() > 12 || !is_valid_path(s) || s.contains('/') {
            return Err(fmt(FormatProblem::BadPath));
        }
        Some(s)
    };
    let extents = Extents {
        bytes: ext_bytes,
        stride: ext_span.stride as usize,
        pos: 0,
    };
    match kind {
        EntryKind::Directory => {
            if rec.size != 0 {
                return Err(bad("size", rec.size));
            }
            if rec.extent_count != 0 {
                return Err(bad("extent_count", rec.extent_count.into()));
            }
        }
        EntryKind::File => {
            // Extents must tile 0..size in order, each non-empty and inside
            // the logical stream.
            let logical_len = layout.meta.package_size;
            let mut next = 0u64;
            for (i, e) in extents.enumerate() {
                let eregion = Region::Extent(rec.extent_first + i as u64);
                let eat = ext_span.offset + (rec.extent_first + i as u64) * ext_span.stride;
                if e.file_offset != next || e.length == 0 {
                    return Err(Error::Format(FormatError::new(
                        eregion,
                        eat,
                        FormatProblem::Inconsistent {
                            field: "file_offset",
                            expected: next,
                            found: e.file_offset,
                        },
                    )));
                }
                if e.logical_offset
                    .checked_add(e.length)
                    .is_none_or(|end| end > logical_len)
                {
                    return Err(Error::Format(FormatError::new(
                        eregion,
                        eat,
                        FormatProblem::OutOfBounds {
                            field: "logical_offset",
                            start: e.logical_offset,
                            len: e.length,
                            limit: logical_len,
                        },
                    )));
                }
                next = e.file_offset + e.length;
            }
            if next != rec.size {
                return Err(fmt(FormatProblem::Inconsistent {
                    field: "size",
                    expected: next,
                    found: rec.size,
                }));
            }
            if let Some(j) = logical_overlap(extents) {
                let i = rec.extent_first + j as u64;
                return Err(Error::Format(FormatError::new(
                    Region::Extent(i),
                    ext_span.offset + i * ext_span.stride,
                    FormatProblem::Overlap,
                )));
            }
        }
    }
    Ok(Entry {
        number: n,
        rec,
        kind,
        path,
        short_name,
        extents,
    })
}

/// How many files and directories a package has, from
/// [`crate::Prologue::count_entries`] or [`Package::count_entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EntryCounts {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub directories: u64,
}

/// Count files and directories in O(entries): one CRC over the entries
/// section (rule 57 for it), then from each record's fields, which that
/// CRC covers: its extent run inside the extents section (rule 35), its
/// kind (rule 37) and that its extent run is not shared (rule 58a).
/// No entry CRC, name or extent record is read.
pub(crate) fn count(data: &[u8], layout: &Layout) -> Result<EntryCounts, Error> {
    let span = layout.entries;
    let region = Region::Section(crate::format::SectionKind::Entries as u32);
    let bytes =
        crate::format::layout::checked_section(data, span.offset, span.len, span.crc, region)?;
    let ext_records = layout.extents.count();
    let mut counts = EntryCounts::default();
    let mut runs = ExtentRuns::default();
    for (n, rec) in bytes.chunks_exact(span.stride as usize).enumerate() {
        let n = n as u64;
        let rec = EntryRecord::parse(Fields(rec));
        let at = layout.entry_offset(n);
        let fmt = |problem| Error::Format(FormatError::new(Region::Entry(n), at, problem));
        let count = u64::from(rec.extent_count);
        if rec
            .extent_first
            .checked_add(count)
            .is_none_or(|e| e > ext_records)
        {
            return Err(fmt(FormatProblem::OutOfBounds {
                field: "extent_first",
                start: rec.extent_first,
                len: count,
                limit: ext_records,
            }));
        }
        match EntryKind::from_u8(rec.kind) {
            Some(EntryKind::File) => counts.files += 1,
            Some(EntryKind::Directory) => counts.directories += 1,
            None => {
                return Err(fmt(FormatProblem::BadValue {
                    field: "kind",
                    value: rec.kind.into(),
                }));
            }
        }
        runs.admit(rec.extent_first, count).map_err(fmt)?;
    }
    Ok(counts)
}
