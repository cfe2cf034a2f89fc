//! The crate's integration tests: one binary, many modules (faster links).
//!
//! - `fixture`: generates (with `SFT_BLESS=1`) and checks `fixtures/valid`,
//!   `fixtures/malformed` (with `EXPECTED.txt`) and the fuzz seed corpora.
//! - `read`: reading the valid fixtures through every API; inflate caps.
//! - `package_file`: a package read lazily from a file or any source.
//! - `corrupt`: every single-byte flip and every truncation is caught.
//! - `round_trip`: proptest write → read equality (feature `write`).
//! - `large`: a package over 4 GiB (features `mmap` and `write`).
//! - `regressions`, `fuzz_corpus`: replay fuzz crashes and corpora on stable.
//! - `stream`: the streaming core and the driver over hostile sources.
//! - `fetch`: `sft::fetch`, the cache, `StreamingPackage`, and `sft fetch`
//!   killed and resumed.
//! - `cli`, `bundle`, `publish`: the commands and the publishing formats.
//!
//! The real peers (nginx, smbd, ffprobe, GStreamer) are in `tests/peers.rs`,
//! the client store in `tests/client.rs`.

mod bundle;
mod cli;
mod common;
mod corrupt;
#[cfg(all(feature = "write", feature = "sign", feature = "zstd"))]
mod delta;
mod fetch;
mod fixture;
mod fuzz_corpus;
#[cfg(all(feature = "mmap", feature = "write"))]
mod large;
mod names;
#[cfg(all(feature = "file", feature = "write"))]
mod package_file;
mod publish;
mod read;
mod regressions;
#[cfg(feature = "write")]
mod round_trip;
mod stream;

/// Counts the largest single allocation per thread, so tests can bound
/// what hostile input makes the reader allocate.
#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;
