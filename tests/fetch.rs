//! `sft::fetch`, the cache and `StreamingPackage` over hostile sources, and
//! `sft fetch` killed with SIGKILL and resumed.
//!
//! - `common` (shared with tests/stream.rs): `FlakySource` (corrupt
//!   bytes, failed calls, dropped connections), `ChunkedSource` (short,
//!   shuffled reads), test packages.
//! - `lib`: the library API: corruption never accepted, resume counts,
//!   launch-ready timing, demand pre-emption, the read API.
//! - `kill`: the real binary, killed at seeded random points.
#![cfg(feature = "write")]

#[path = "stream/common.rs"]
mod common;
#[cfg(all(feature = "cli", unix))]
#[path = "fetch/kill.rs"]
mod kill;
#[path = "fetch/lib.rs"]
mod lib;
