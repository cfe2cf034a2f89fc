//! The crate's one public error type and its inspectable parts.
//!
//! Design (see `STYLE.md` §3.7): one [`Error`] enum in every public
//! signature, grouped by what a caller does about it, with cheap `Copy` leaf
//! errors ([`FormatError`], [`IntegrityError`]) that carry *where* and *what*
//! as values, not formatted strings. [`Error::kind`] gives a stable
//! [`ErrorKind`] to match on; the enum itself is `#[non_exhaustive]`.

use core::fmt;

use crate::format::BlockId;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

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
            IntegrityProblem::Inflate => f.write_str("corrupt zlib stream"),
            IntegrityProblem::Overlong { limit } => {
                write!(f, "decodes to more than the recorded {limit} bytes")
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

/// What kind of failure a [`TransportError`] is; drives retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The package does not exist at the source.
    NotFound,
    /// The source refuses access.
    PermissionDenied,
    /// Credentials are missing or rejected.
    Authentication,
    /// The requested range lies (partly) outside the source.
    RangeNotSatisfiable,
    /// The source did not answer in time (retryable).
    Timeout,
    /// The connection dropped mid-transfer (retryable).
    ConnectionLost,
    /// The peer broke the protocol (malformed response, wrong range…).
    Protocol,
    /// A local or remote I/O error (retryable).
    Io,
    /// The source was replaced mid-stream (length, ETag or version changed).
    Changed,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// True if a new attempt may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            TransportErrorKind::Timeout
                | TransportErrorKind::ConnectionLost
                | TransportErrorKind::Io
        )
    }

    fn describe(self) -> &'static str {
        match self {
            TransportErrorKind::NotFound => "not found",
            TransportErrorKind::PermissionDenied => "permission denied",
            TransportErrorKind::Authentication => "authentication failed",
            TransportErrorKind::RangeNotSatisfiable => "range not satisfiable",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::ConnectionLost => "connection lost",
            TransportErrorKind::Protocol => "protocol error",
            TransportErrorKind::Io => "i/o error",
            TransportErrorKind::Changed => "source changed during the transfer",
            TransportErrorKind::Other => "transport error",
        }
    }
}

impl core::fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failure of a [`crate::io::RangeSource`]: a kind to decide on, the endpoint and
/// what was being done, and the transport's own error as `source()`.
///
/// One struct for every transport, so its shape never depends on cargo
/// features; each adapter converts its private error into it.
///
/// ```
/// use sft::error::{TransportError, TransportErrorKind};
///
/// let e = TransportError::new(TransportErrorKind::Timeout, "http://example.test/app.sft")
///     .with_range(0..4096);
/// assert!(e.is_retryable());
/// assert_eq!(e.to_string(), "http://example.test/app.sft: bytes 0..4096: timed out");
/// ```
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    context: String,
    range: Option<core::ops::Range<u64>>,
    source: Option<Box<dyn core::error::Error + Send + Sync + 'static>>,
}

impl TransportError {
    /// A new error of `kind`; `context` names the endpoint (a path or URL)
    /// and, if useful, what was being done.
    pub fn new(kind: TransportErrorKind, context: impl Into<String>) -> Self {
        TransportError {
            kind,
            context: context.into(),
            range: None,
            source: None,
        }
    }

    /// Attach the byte range being read.
    #[must_use]
    pub fn with_range(mut self, range: core::ops::Range<u64>) -> Self {
        self.range = Some(range);
        self
    }

    /// Attach the underlying error, exposed through `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl core::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The endpoint and what was being done.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The byte range being read, if known.
    pub fn range(&self) -> Option<core::ops::Range<u64>> {
        self.range.clone()
    }

    /// True if a new attempt may succeed (see [`TransportErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// A copy without the boxed source (which need not be `Clone`): same
    /// kind, context and range, plus `extra` appended to the context.
    pub fn summary(&self, extra: &str) -> TransportError {
        let context = if extra.is_empty() {
            self.context.clone()
        } else {
            format!("{}: {extra}", self.context)
        };
        TransportError {
            kind: self.kind,
            context,
            range: self.range.clone(),
            source: None,
        }
    }
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        if let Some(r) = &self.range {
            write!(f, "bytes {}..{}: ", r.start, r.end)?;
        }
        f.write_str(self.kind.describe())
    }
}

impl core::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn core::error::Error + 'static))
    }
}

/// A coarse classification of [`Error`], stable across versions, for
/// callers that decide what to do (retry, report corruption, fix input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The package is malformed.
    Format,
    /// Stored data fails a checksum or decodes wrongly.
    Integrity,
    /// Valid, but needs a newer or differently built reader.
    Unsupported,
    /// A path or item does not exist.
    NotFound,
    /// The caller passed something invalid (options, paths, launch lists).
    InvalidInput,
    /// An operating-system I/O error.
    Io,
    /// A transport failed (network, server, remote file).
    Transport,
    /// The client store refused an operation; see [`Error::store_problem`].
    Store,
    /// A bundle (`.sftb`) is malformed or damaged.
    Bundle,
}

/// Why the client store refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreProblem {
    /// A record with that name or GUID already exists.
    Exists,
    /// The package is locked in the cache (`lock`), so it cannot be unloaded or evicted.
    Locked,
    /// The package is in use by a running process.
    InUse,
    /// The cache limit cannot be met: nothing more can be evicted.
    Full,
    /// The store's records are damaged or from a newer version.
    Damaged,
    /// The operation does not apply in the package's current state
    /// (publishing a package that was never added, say).
    State,
}

impl core::fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            StoreProblem::Exists => "already exists",
            StoreProblem::Locked => "locked",
            StoreProblem::InUse => "in use",
            StoreProblem::Full => "cache full",
            StoreProblem::Damaged => "records damaged",
            StoreProblem::State => "wrong state",
        })
    }
}

/// The error type of every fallible function in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The package is malformed. (The message includes the
    /// [`FormatError`]; it is not repeated as a `source()`.)
    #[error("malformed package: {0}")]
    Format(FormatError),
    /// Stored data is damaged; never returned as data. (The message
    /// includes the [`IntegrityError`]; it is not repeated as a
    /// `source()`.)
    #[error("corrupt package: {0}")]
    Integrity(IntegrityError),
    /// Outside what this build supports.
    #[error("unsupported: {0}")]
    Unsupported(Unsupported),
    /// A path inside a package, or an input path, does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Invalid input from the caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A transport failed; see [`TransportError::kind`] and its `source()`.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A block kept failing its checks when fetched from a source.
    #[error("{block} from {endpoint}: still damaged after {attempts} attempts: {last}")]
    Exhausted {
        /// The block.
        block: BlockId,
        /// The source it was fetched from (path or URL).
        endpoint: String,
        /// How many times it was fetched.
        attempts: u32,
        /// The last failed check (in the message, so not a `source()`).
        last: IntegrityError,
    },
    /// The client store refused an operation.
    #[error("client store: {problem}: {message}")]
    Store {
        /// The inspectable reason.
        problem: StoreProblem,
        /// What and where, for people.
        message: String,
    },
    /// A bundle (`.sftb`) is malformed or damaged.
    #[error("bad bundle: {0}")]
    Bundle(String),
    /// An I/O error, with what was being done and to which path.
    #[cfg(feature = "std")]
    #[error("{context}")]
    Io {
        /// What was being done, naming the path ("reading `a/b.txt`").
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Format(_) => ErrorKind::Format,
            Error::Integrity(_) => ErrorKind::Integrity,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Transport(_) => ErrorKind::Transport,
            Error::Exhausted { .. } => ErrorKind::Integrity,
            Error::Store { .. } => ErrorKind::Store,
            Error::Bundle(_) => ErrorKind::Bundle,
            #[cfg(feature = "std")]
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// The format error, if this is one.
    pub fn as_format(&self) -> Option<&FormatError> {
        match self {
            Error::Format(e) => Some(e),
            _ => None,
        }
    }

    /// The integrity error, if this is one.
    pub fn as_integrity(&self) -> Option<&IntegrityError> {
        match self {
            Error::Integrity(e) => Some(e),
            _ => None,
        }
    }

    /// The store problem, if this is a client-store refusal.
    pub fn store_problem(&self) -> Option<StoreProblem> {
        match self {
            Error::Store { problem, .. } => Some(*problem),
            _ => None,
        }
    }

    /// A client-store refusal.
    pub fn store(problem: StoreProblem, message: impl Into<String>) -> Self {
        Error::Store {
            problem,
            message: message.into(),
        }
    }

    /// Wrap an I/O error with context naming what and where.
    #[cfg(feature = "std")]
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        Error::Format(e)
    }
}

impl From<IntegrityError> for Error {
    fn from(e: IntegrityError) -> Self {
        Error::Integrity(e)
    }
}

impl From<Unsupported> for Error {
    fn from(u: Unsupported) -> Self {
        Error::Unsupported(u)
    }
}

/// Unwraps an [`Error`] that travelled inside an `io::Error` (through a
/// [`crate::read::FileReader`], say); wraps any other I/O error.
#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let kind = e.kind();
            if let Some(inner) = e.into_inner()
                && let Ok(ours) = inner.downcast::<Error>()
            {
                return *ours;
            }
            return Error::io("i/o error", std::io::Error::from(kind));
        }
        Error::io("i/o error", e)
    }
}

#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            ErrorKind::Format | ErrorKind::Integrity => K::InvalidData,
            ErrorKind::Transport => match &e {
                Error::Transport(t) => match t.kind() {
                    TransportErrorKind::NotFound => K::NotFound,
                    TransportErrorKind::PermissionDenied | TransportErrorKind::Authentication => {
                        K::PermissionDenied
                    }
                    TransportErrorKind::Timeout => K::TimedOut,
                    TransportErrorKind::ConnectionLost => K::ConnectionAborted,
                    TransportErrorKind::RangeNotSatisfiable => K::UnexpectedEof,
                    TransportErrorKind::Protocol | TransportErrorKind::Changed => K::InvalidData,
                    _ => K::Other,
                },
                _ => K::Other,
            },
            ErrorKind::Unsupported => K::Unsupported,
            ErrorKind::Store => K::Other,
            ErrorKind::Bundle => K::InvalidData,
            ErrorKind::NotFound => K::NotFound,
            ErrorKind::InvalidInput => K::InvalidInput,
            ErrorKind::Io => match &e {
                Error::Io { source, .. } => source.kind(),
                _ => K::Other,
            },
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_region_offset_and_values() {
        let e = Error::from(IntegrityError::new(
            Region::Block(17),
            4096,
            IntegrityProblem::CrcMismatch {
                expected: 0xdead_beef,
                actual: 0x1234_5678,
            },
        ));
        assert_eq!(
            e.to_string(),
            "corrupt package: block 17 at offset 4096: crc mismatch: expected 0xdeadbeef, got 0x12345678"
        );
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert_eq!(e.as_integrity().and_then(|i| i.block()), Some(BlockId(17)));
    }

    #[test]
    fn io_error_conversion_maps_kind() {
        let e = Error::from(FormatError::new(Region::Header, 0, FormatProblem::BadMagic));
        let io: std::io::Error = e.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
    }
}
