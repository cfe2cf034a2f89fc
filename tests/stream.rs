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

#[path = "stream/common.rs"]
mod common;
#[cfg(feature = "file")]
#[path = "stream/file.rs"]
mod file;
#[path = "stream/oracle.rs"]
mod oracle;
#[cfg(feature = "write")]
#[path = "stream/pipelined.rs"]
mod pipelined;
#[cfg(feature = "write")]
#[path = "stream/retry.rs"]
mod retry;
#[cfg(feature = "write")]
#[path = "stream/session.rs"]
mod session;
