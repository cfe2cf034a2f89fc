//! The leaf errors of the format layer: where a package is malformed
//! ([`FormatError`]), damaged ([`IntegrityError`]) or outside what this
//! build supports ([`Unsupported`]), as `Copy` values that carry *where*
//! and *what*. [`Fault`] is any one of them: what the format layer's
//! checks return. `crate::Error` wraps each (and converts from [`Fault`]),
//! so the format layer never depends on the crate-wide error type.

#[allow(unused_imports)]
use crate::prelude::*;

use core::fmt;

use super::BlockId;

/// The part of a package a [`FormatError`] or [`IntegrityError`] points at.
///
/// Every variant that names an element carries its number so that an error
/// message says exactly which record is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// The fixed-size package header at offset 0.
    Header,
    /// The section table that follows the header.
    SectionTable,
    /// A whole section, by its kind number (see [`crate::format::SectionKind`]).
    Section(u32),
    /// The metadata section's fields or strings.
    Metadata,
    /// Directory entry number `n` (in path order).
    Entry(u64),
    /// Extent record number `n`.
    Extent(u64),
    /// The string pool (names and short names).
    Names,
    /// Block index record for block `n`.
    BlockRecord(u32),
    /// The stored bytes of block `n` in the data region.
    Block(u32),
    /// The data region as a whole (its length or layout).
    Data,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Region::Header => f.write_str("header"),
            Region::SectionTable => f.write_str("section table"),
            Region::Section(kind) => write!(f, "section of kind {kind}"),
            Region::Metadata => f.write_str("metadata"),
            Region::Entry(n) => write!(f, "directory entry {n}"),
            Region::Extent(n) => write!(f, "extent {n}"),
            Region::Names => f.write_str("name pool"),
            Region::BlockRecord(n) => write!(f, "block index record {n}"),
            Region::Block(n) => write!(f, "block {n}"),
            Region::Data => f.write_str("data region"),
        }
    }
}

/// What is structurally wrong with a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatProblem {
    /// The input ends before a structure that should be there.
    Truncated {
        /// Bytes the structure needs, counted from its start.
        needed: u64,
        /// Bytes the input has from that start.
        available: u64,
    },
    /// The first eight bytes are not the SFT magic.
    BadMagic,
    /// A field holds a value the specification does not allow.
    BadValue {
        /// The field's name, as spelled in `docs/FORMAT.md`.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A range (offset, length) reaches outside its container.
    OutOfBounds {
        /// The field holding the offset, as spelled in `docs/FORMAT.md`.
        field: &'static str,
        /// Start of the range.
        start: u64,
        /// Length of the range.
        len: u64,
        /// Length of the container the range must lie inside.
        limit: u64,
    },
    /// Two things that must be equal are not (a derived size, a count…).
    Inconsistent {
        /// What was compared, as spelled in `docs/FORMAT.md`.
        field: &'static str,
        /// The value the rest of the package implies.
        expected: u64,
        /// The value found.
        found: u64,
    },
    /// A required section is missing.
    MissingSection {
        /// The missing section's kind number.
        kind: u32,
    },
    /// A section kind appears more than once.
    DuplicateSection {
        /// The repeated kind number.
        kind: u32,
    },
    /// Two sections overlap, or a section overlaps the header or table.
    Overlap,
    /// A name is not valid UTF-8.
    NotUtf8,
    /// A path breaks the path rules (empty component, `..`, `\`, NUL…).
    BadPath,
    /// Directory entries are not in strictly ascending path order.
    NotSorted,
    /// A path's parent directory has no entry of its own.
    MissingParent,
    /// Bytes between two structures that must be back to back.
    Gap,
}

impl fmt::Display for FormatProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatProblem::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            FormatProblem::BadMagic => f.write_str("not an SFT package (bad magic)"),
            FormatProblem::BadValue { field, value } => {
                write!(f, "invalid {field}: {value} (0x{value:x})")
            }
            FormatProblem::OutOfBounds {
                field,
                start,
                len,
                limit,
            } => write!(
                f,
                "{field} out of bounds: range {start}+{len} exceeds limit {limit}"
            ),
            FormatProblem::Inconsistent {
                field,
                expected,
                found,
            } => write!(
                f,
                "inconsistent {field}: expected {expected}, found {found}"
            ),
            FormatProblem::MissingSection { kind } => {
                write!(f, "required section of kind {kind} is missing")
            }
            FormatProblem::DuplicateSection { kind } => {
                write!(f, "section of kind {kind} appears more than once")
            }
            FormatProblem::Overlap => f.write_str("overlaps another structure"),
            FormatProblem::NotUtf8 => f.write_str("name is not valid UTF-8"),
            FormatProblem::BadPath => f.write_str("path breaks the path rules"),
            FormatProblem::NotSorted => f.write_str("entries are not in ascending path order"),
            FormatProblem::MissingParent => f.write_str("parent directory has no entry"),
            FormatProblem::Gap => f.write_str("unaccounted bytes before this structure"),
        }
    }
}

/// A structural problem in a package: what is wrong, in which region, at
/// which absolute byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatError {
    /// The structure that is malformed.
    pub region: Region,
    /// Absolute byte offset in the package where that structure starts.
    pub offset: u64,
    /// What is wrong.
    pub problem: FormatProblem,
}

impl FormatError {
    /// Build a format error.
    pub const fn new(region: Region, offset: u64, problem: FormatProblem) -> Self {
        FormatError {
            region,
            offset,
            problem,
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.region, self.offset, self.problem
        )
    }
}

impl core::error::Error for FormatError {}

/// What failed an integrity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityProblem {
    /// A CRC-32 does not match the bytes it covers.
    CrcMismatch {
        /// The CRC recorded in the package.
        expected: u32,
        /// The CRC of the bytes as read.
        actual: u32,
    },
    /// A block inflated to a different length than its record says.
    SizeMismatch {
        /// Length recorded in the block index.
        expected: u64,
        /// Length the codec produced.
        actual: u64,
    },
    /// The codec rejected the stored bytes (corrupt zlib stream).
    Inflate,
    /// The stream decodes to more than the record's length allows.
    Overlong {
        /// The most bytes the record allows.
        limit: u64,
    },
    /// A block's stored bytes do not have the BLAKE3 hash the block hash
    /// section records (format v1.1, `docs/FORMAT.md` §8a).
    HashMismatch {
        /// The first 8 bytes of the recorded hash.
        expected: [u8; 8],
        /// The first 8 bytes of the hash of the bytes as read.
        actual: [u8; 8],
    },
}

impl fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IntegrityProblem::CrcMismatch { expected, actual } => write!(
                f,
                "crc mismatch: expected 0x{expected:08x}, got 0x{actual:08x}"
            ),
            IntegrityProblem::SizeMismatch { expected, actual } => {
                write!(f, "size mismatch: expected {expected} bytes, got {actual}")
            }
            IntegrityProblem::Inflate => f.write_str("corrupt compressed stream"),
            IntegrityProblem::Overlong { limit } => {
                write!(f, "decodes to more than the recorded {limit} bytes")
            }
            IntegrityProblem::HashMismatch { expected, actual } => {
                f.write_str("blake3 mismatch: expected ")?;
                for b in expected {
                    write!(f, "{b:02x}")?;
                }
                f.write_str("…, got ")?;
                for b in actual {
                    write!(f, "{b:02x}")?;
                }
                f.write_str("…")
            }
        }
    }
}

/// Data that fails its checksum or decodes wrongly: the bytes are damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegrityError {
    /// The region whose check failed.
    pub region: Region,
    /// Absolute byte offset where that region starts.
    pub offset: u64,
    /// The failed check.
    pub problem: IntegrityProblem,
}

impl IntegrityError {
    /// Build an integrity error.
    pub const fn new(region: Region, offset: u64, problem: IntegrityProblem) -> Self {
        IntegrityError {
            region,
            offset,
            problem,
        }
    }

    /// The block whose data failed, if the failure is in a block's bytes.
    pub fn block(&self) -> Option<BlockId> {
        match self.region {
            Region::Block(n) => Some(BlockId(n)),
            _ => None,
        }
    }
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.region, self.offset, self.problem
        )
    }
}

impl core::error::Error for IntegrityError {}

/// Something valid but outside what this implementation supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// The package's major version is not 1.
    MajorVersion(u16),
    /// A section marked required has a kind this reader does not know.
    RequiredSection(u32),
    /// A block uses a codec this build cannot decode.
    Codec {
        /// The block.
        block: u32,
        /// Its codec id.
        codec: u8,
    },
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Unsupported::MajorVersion(v) => {
                write!(f, "package format major version {v} (this reader knows 1)")
            }
            Unsupported::RequiredSection(k) => {
                write!(f, "required section of unknown kind {k}")
            }
            Unsupported::Codec { block, codec } => {
                write!(
                    f,
                    "block {block}: codec {codec} is not supported by this build"
                )
            }
        }
    }
}

/// What a format-level check finds: any one of the leaf errors. Converts
/// into `crate::Error` with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Malformed.
    Format(FormatError),
    /// Damaged.
    Integrity(IntegrityError),
    /// Outside what this build supports.
    Unsupported(Unsupported),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Format(e) => write!(f, "malformed package: {e}"),
            Fault::Integrity(e) => write!(f, "corrupt package: {e}"),
            Fault::Unsupported(u) => write!(f, "unsupported: {u}"),
        }
    }
}

impl core::error::Error for Fault {}

impl From<FormatError> for Fault {
    fn from(e: FormatError) -> Self {
        Fault::Format(e)
    }
}

impl From<IntegrityError> for Fault {
    fn from(e: IntegrityError) -> Self {
        Fault::Integrity(e)
    }
}

impl From<Unsupported> for Fault {
    fn from(u: Unsupported) -> Self {
        Fault::Unsupported(u)
    }
}
