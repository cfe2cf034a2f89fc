//! `sft::fetch`, the cache and `StreamingPackage` over hostile sources, and
//! `sft fetch` killed with SIGKILL and resumed.
//!
//! - `common` (the streaming tests' `tests/stream/common.rs`): `FlakySource` (corrupt
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

use crate::stream::common;
#[cfg(all(feature = "cli", unix))]
mod exit;
#[cfg(all(feature = "cli", unix))]
mod kill;
mod lib;
#[cfg(feature = "file")]
mod local;
