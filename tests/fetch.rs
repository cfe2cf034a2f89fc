//! `sft::fetch`, the cache and `StreamingPackage` over hostile sources, and
//! `sft fetch` killed with SIGKILL and resumed.
//!
//! - `common` (shared with tests/stream.rs): `FlakySource` (corrupt
//!   bytes, failed calls, dropped connections), `ChunkedSource` (short,
//!   shuffled reads), test packages.
//! - `lib`: the library API: corruption never accepted, resume counts,
//!   launch-ready timing, demand pre-emption, the read API.
//! - `local`: `fetch_file`, the local fast path (in-kernel copies checked
//!   in place): identical output, corruption never accepted, resume.
//! - `exit`: the real binary's exit status: empty, truncated, changing
//!   and directory sources, a full disk, `pack` into a missing directory.
//! - `kill`: the real binary, killed at seeded random points (a local
//!   source, so the fast path, paced by `--limit-rate`).
#![cfg(feature = "write")]

#[path = "stream/common.rs"]
mod common;
#[cfg(all(feature = "cli", unix))]
#[path = "fetch/exit.rs"]
mod exit;
#[cfg(all(feature = "cli", unix))]
#[path = "fetch/kill.rs"]
mod kill;
#[path = "fetch/lib.rs"]
mod lib;
#[cfg(feature = "file")]
#[path = "fetch/local.rs"]
mod local;
