//! # sft: open SFT packages and their streaming
//!
//! `sft` reads, writes and verifies **SFT packages**, the App-V 4.x style
//! unit of software distribution: an application's files cut into blocks
//! of 4, 16, 32 or 64 KiB, each stored or zlib-compressed and checksummed,
//! with the blocks needed to launch (feature block 1, FB1) stored first so
//! a client can start the application after fetching only those. The byte
//! layout is this crate's own open specification, `docs/FORMAT.md`.
//!
//! The crate is built in tiers; an import only ever points down (CI's
//! `scripts/check-layers.sh` checks it):
//!
//! ```text
//!  bin/sft   the command-line tool (argument parsing, output; no logic)
//!  ─────────────────────────────────────────────────────────────────────────
//!  app       fetch (resumable fetch, cache, StreamingPackage, probe),
//!            extract, publish, bundle, mount (FUSE over a streaming
//!            package), client (the store; the one module that ties
//!            fetch, bundle and publish together)
//!  ───────────────────────────────────────────┬─────────────────────────────
//!  net       client transports:               │ serve   the servers:
//!            http, rtsp, smb (RangeSource)    │         HTTP and RTSP (TLS,
//!                                             │         limits, accept loop)
//!  ───────────────────────────────────────────┴─────────────────────────────
//!  proto     pure wire codecs: HTTP Range / Content-Range / multipart,
//!            RTSP frames; no I/O
//!  ─────────────────────────────────────────────────────────────────────────
//!  io        RangeSource, the one driver (io::drive),  │ write  PackageBuilder:
//!            files, positional I/O, mmap (the only     │        plan, parallel
//!            `unsafe`), rate shaping, pipelining,      │        encode, atomic
//!            worker threads                            │        output
//!  ─────────────────────────────────────────────────────────────────────────
//!  core      format   raw records, constants, byte-level parsing
//!            index, read   validated zero-copy views: Package, Entry, Block
//!            stream   sans-IO session and scheduler: asks for byte ranges,
//!                     verifies what arrives
//!            (no files, sockets, threads or clocks: without the `std`
//!            feature the core builds as no_std + alloc)
//! ```
//!
//! ## Quick start
//!
//! ```
//! # fn main() -> sft::Result<()> {
//! use sft::{Package, WriteOptions, write::PackageBuilder};
//!
//! // Write a package in memory (or `write_to_path` for an atomic file).
//! let bytes = PackageBuilder::new(WriteOptions::default().name("Notepad").version(3))
//!     .add_bytes("notepad.exe", vec![0x90; 150_000])?
//!     .add_bytes("docs/readme.txt", b"read me".to_vec())?
//!     .write_to_vec()?;
//!
//! // Read it back without copying: parsing is O(1) in the number of files.
//! let pkg = Package::parse(&bytes)?;
//! assert_eq!(pkg.metadata().version(), 3);
//! let exe = pkg.entry("notepad.exe")?;
//! assert_eq!(pkg.read_file(&exe)?.len(), 150_000);
//! pkg.verify()?; // every CRC, every block
//! # Ok(()) }
//! ```
//!
//! ## Integrity
//!
//! Every byte of a package is under a CRC-32: the header, the section
//! table, each section, each directory entry and block record (on their
//! own, so lookups need not checksum the whole directory), and each stored
//! block. A block is checked before any of its bytes are returned; damaged
//! data is an [`Error::Integrity`], never data.
//!
//! ## Crate features
//!
//! - `std` (default): everything above the core. Without it the crate is
//!   `no_std` + `alloc`: [`format`](mod@format), [`index`], [`read`] and the sans-IO
//!   [`stream`] session, which touch no files, sockets, threads or clocks.
//! - `deflate` (default): zlib blocks, through flate2 (its backend is yours
//!   to choose with flate2's features).
//! - `file` (default): the file transport and [`PackageFile`], a package
//!   file read lazily with positional reads (no `unsafe`).
//! - `write` (default): [`write::PackageBuilder`].
//! - `mmap`: [`MappedPackage`], the one module with `unsafe`.
//! - `fast-zlib`: flate2's zlib-rs backend.
//! - `http-parse`: only the pure HTTP helpers (`Range`, `Content-Range`,
//!   `multipart/byteranges`) that the client and server share.
//! - `http`: HTTP/HTTPS range client ([`net::http`]), on
//!   ureq and rustls (no OpenSSL).
//! - `http-server`: the built-in content server
//!   ([`serve::http`], `sft serve --http`).
//! - `rtsp`: RTSP/RTSPS client transport; `rtsp-server`: the streaming
//!   server (`sft serve --rtsp`).
//! - `smb`: SMB2/3 client transport (`smb://`, UNC paths).
//! - `publish`: OSD files, the manifest and icons ([`publish`]).
//! - `bundle`: `.sftb` bundles of a manifest, its OSDs and icons and
//!   optionally the SFT ([`bundle`], `sft bundle`).
//! - `msi`: Windows Installer files, the sequencer's MSI in both forms
//!   (`bundle::msi`, `sft msi`, `sft client install APP.msi`).
//! - `client`: the client package store ([`client`], `sft client`; takes
//!   `bundle` and `msi`).
//! - `mount`: a package as a read-only FUSE file system while it streams
//!   ([`mount`], `sft mount`; the binary takes it with `--features
//!   cli,mount`).
//! - `cli`: the `sft` binary (with every transport, both servers,
//!   `publish`, `bundle` and `client`).
//! - `arbitrary`: `Arbitrary` impls for fuzzing.
//!
//! ## Safety
//!
//! `unsafe` appears only in `io/mmap.rs`: mapping a file is sound
//! only while no one truncates or modifies it, a promise
//! [`MappedPackage::open`] asks of its caller. [`PackageFile`] reads the
//! same file lazily with positional reads, without that promise.
//!
//! <!-- Links to items behind features that are off in this build point at
//! the list of crate features instead, so the docs of every feature set
//! build without broken links. -->
#![cfg_attr(
    not(feature = "write"),
    doc = "[`write::PackageBuilder`]: #crate-features"
)]
#![cfg_attr(not(feature = "file"), doc = "[`PackageFile`]: #crate-features")]
#![cfg_attr(not(feature = "mmap"), doc = "[`MappedPackage`]: #crate-features")]
#![cfg_attr(not(feature = "mmap"), doc = "[`MappedPackage::open`]: #safety")]
#![cfg_attr(not(feature = "http"), doc = "[`net::http`]: #crate-features")]
#![cfg_attr(not(feature = "http-server"), doc = "[`serve::http`]: #crate-features")]
#![cfg_attr(not(feature = "publish"), doc = "[`publish`]: #crate-features")]
#![cfg_attr(not(feature = "bundle"), doc = "[`bundle`]: #crate-features")]
#![cfg_attr(not(feature = "client"), doc = "[`client`]: #crate-features")]
#![cfg_attr(not(feature = "mount"), doc = "[`mount`]: #crate-features")]
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

extern crate alloc;

// core: no files, sockets, threads or clocks.
pub mod error;
pub mod format;
pub mod index;
mod prelude;
pub mod read;
mod redact;
pub mod stream;

// io: the RangeSource contract, the one driver, local adapters.
#[cfg(feature = "std")]
pub mod io;
// write: the package writer, on io.
#[cfg(feature = "write")]
pub mod write;

// proto: pure wire codecs.
#[cfg(any(feature = "http-parse", feature = "rtsp", feature = "rtsp-server"))]
pub mod proto;

// net: client transports.
#[cfg(any(feature = "http", feature = "rtsp", feature = "smb"))]
pub mod net;

// serve: the servers, beside net.
#[cfg(any(feature = "http-server", feature = "rtsp-server"))]
pub mod serve;

// app: what users run.
#[cfg(feature = "bundle")]
pub mod bundle;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "std")]
pub mod extract;
#[cfg(feature = "std")]
pub mod fetch;
#[cfg(feature = "manage")]
pub mod manage;
#[cfg(feature = "mount")]
pub mod mount;
#[cfg(feature = "publish")]
pub mod publish;
#[cfg(feature = "sign")]
pub mod sign;

#[cfg(any(test, feature = "__fuzz"))]
#[doc(hidden)]
pub mod fuzzing;

pub use error::{Error, ErrorKind, ManageProblem, Result, StoreProblem, TrustProblem};
pub use format::guid::Guid;
pub use format::{BlockId, Codec, ContentId, FeatureBlock};
pub use index::{BlockIndex, BlockInfo};
#[cfg(feature = "std")]
pub use io::RangeSource;
#[cfg(feature = "mmap")]
pub use io::mmap::MappedPackage;
#[cfg(feature = "file")]
pub use io::package_file::PackageFile;
#[cfg(feature = "std")]
pub use io::package_file::SourcePackage;
pub use read::{Block, Entry, Metadata, Package, Prologue, VerifyReport};
pub use redact::redact_url;
pub use stream::StreamSession;
#[cfg(feature = "write")]
pub use write::WriteOptions;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(all(doctest, feature = "write", feature = "file"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
