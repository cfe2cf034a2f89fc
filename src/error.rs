//! The crate's one public error type and its inspectable parts.
//!
//! Design (see `STYLE.md` §3.7): one [`Error`] enum in every public
//! signature, grouped by what a caller does about it, with cheap `Copy` leaf
//! errors ([`FormatError`], [`IntegrityError`]) that carry *where* and *what*
//! as values, not formatted strings. [`Error::kind`] gives a stable
//! [`ErrorKind`] to match on; the enum itself is `#[non_exhaustive]`.

#[allow(unused_imports)]
use crate::prelude::*;

use crate::format::BlockId;
pub use crate::format::errors::{
    Fault, FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region, Unsupported,
};

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

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

/// A failure of a `RangeSource` (`sft::io`): a kind to decide on, the endpoint and
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
    /// A Windows Installer file (`.msi`) is malformed, damaged or foreign.
    Msi,
    /// The Management Server refused; see [`Error::manage_problem`].
    Manage,
    /// A trust policy refused a package (unsigned, wrongly signed, or not
    /// the content publishing named); see [`Error::Trust`].
    Trust,
}

/// Why a trust policy refused a package (see [`Error::Trust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TrustProblem {
    /// The policy requires a signature and the package has none.
    Unsigned,
    /// A signature is there but does not verify under any trusted key
    /// (wrong key, or the prologue changed since it was signed).
    BadSignature,
    /// The package has no block hash section (a v1.0 package): a
    /// signature over its prologue would not bind its blocks.
    NoHashes,
    /// The package is not the content that publishing (an OSD, the
    /// manifest, the Management Server) or the caller named.
    WrongContent,
    /// A key or signature file is malformed.
    Malformed,
}

impl core::fmt::Display for TrustProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            TrustProblem::Unsigned => "unsigned",
            TrustProblem::BadSignature => "bad signature",
            TrustProblem::NoHashes => "no block hashes",
            TrustProblem::WrongContent => "wrong content",
            TrustProblem::Malformed => "malformed key or signature",
        })
    }
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

/// Why the Management Server refused (see [`Error::Manage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ManageProblem {
    /// A user, group or package of that name already exists.
    Exists,
    /// No such user, group, package or grant.
    Unknown,
    /// The credentials are missing or wrong, or too many attempts failed.
    Unauthenticated,
    /// The user may not do this (not entitled, not an administrator).
    Denied,
    /// No licence is free for the package.
    NoLicence,
    /// The database failed or holds what this version cannot use.
    Database,
}

impl core::fmt::Display for ManageProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ManageProblem::Exists => "already exists",
            ManageProblem::Unknown => "unknown",
            ManageProblem::Unauthenticated => "not authenticated",
            ManageProblem::Denied => "denied",
            ManageProblem::NoLicence => "no licence free",
            ManageProblem::Database => "database",
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
    /// A Windows Installer file (`.msi`) is malformed or damaged, or
    /// carries no App-V package.
    #[error("bad Windows Installer file: {0}")]
    Msi(String),
    /// The Management Server refused an operation, or its database
    /// failed.
    #[error("management server: {problem}: {message}")]
    Manage {
        /// The inspectable reason.
        problem: ManageProblem,
        /// What and where, for people (never a secret).
        message: String,
    },
    /// A trust policy refused the package, or a key or signature is
    /// unusable.
    #[error("trust: {problem}: {message}")]
    Trust {
        /// The inspectable reason.
        problem: TrustProblem,
        /// What and where, for people.
        message: String,
    },
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
            Error::Msi(_) => ErrorKind::Msi,
            Error::Manage { .. } => ErrorKind::Manage,
            Error::Trust { .. } => ErrorKind::Trust,
            #[cfg(feature = "std")]
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// A trust policy's refusal.
    pub fn trust(problem: TrustProblem, message: impl Into<String>) -> Self {
        Error::Trust {
            problem,
            message: message.into(),
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

    /// The Management Server's reason, if this is one of its refusals.
    pub fn manage_problem(&self) -> Option<ManageProblem> {
        match self {
            Error::Manage { problem, .. } => Some(*problem),
            _ => None,
        }
    }

    /// A Management Server refusal.
    pub fn manage(problem: ManageProblem, message: impl Into<String>) -> Self {
        Error::Manage {
            problem,
            message: message.into(),
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

impl From<crate::format::guid::ParseGuidError> for Error {
    fn from(e: crate::format::guid::ParseGuidError) -> Self {
        Error::InvalidInput(e.to_string())
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        match f {
            Fault::Format(e) => Error::Format(e),
            Fault::Integrity(e) => Error::Integrity(e),
            Fault::Unsupported(u) => Error::Unsupported(u),
        }
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
            ErrorKind::Store | ErrorKind::Manage => K::Other,
            ErrorKind::Trust => K::PermissionDenied,
            ErrorKind::Bundle | ErrorKind::Msi => K::InvalidData,
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
