//! The streaming core's tests: one binary, several modules.
//!
//! - `common`: a deterministic test package, `ChunkedSource` (1-byte and
//!   seeded short reads, out-of-order chunks), `FlakySource` (corrupt
//!   bytes, transient failures, dropped connections) and a checking sink.
//! - `oracle`: proptest of the scheduler against a naive
//!   sort-by-(class, offset) reference.
//! - `session`: the session and driver over hostile sources: chunking,
//!   corruption, retries, pre-emption, launch-ready, determinism, resume.
//! - `file`: the file (and mmap) transport end to end.
//! - `retry`: retries with the time passed in (back-off, window).
//! - `pipelined`: the driver's pipelined mode (reader and check threads)
//!   against the original bytes, with damaged and failing reads.

pub(crate) mod common;
#[cfg(feature = "file")]
mod file;
mod oracle;
#[cfg(feature = "write")]
mod pipelined;
#[cfg(feature = "write")]
mod retry;
#[cfg(feature = "write")]
mod session;
