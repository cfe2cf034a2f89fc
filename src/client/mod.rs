//! The client package store: the records and cache of `sft client`.
//!
//! A [`Store`] is a folder an ESD system (or a person) drives with verbs
//! modelled on App-V 4.x's `SFTMIME` (`docs/CLIENT.md` maps each one):
//! add, configure, publish, unpublish, load, unload, lock, unlock, delete
//! and query packages, plus [`Store::use_package`], the launcher's
//! in-use lock.
//!
//! ```text
//! STORE/
//!   records.json            the records (atomically replaced JSON)
//!   records.lock            flock: shared for reads, exclusive for updates
//!   packages/GUID/
//!     VERSIONGUID.sft       the package, once fully loaded
//!     VERSIONGUID.sft.partial, .partial.blocks
//!                           the streaming core's cache while loading
//!     load.lock             held exclusively while a load runs
//!     inuse.lock            held shared while the package is in use
//!     publish/manifest.xml, publish/osd/APP.osd, publish/icons/APP.ico
//!                           copies made at publish
//! ```
//!
//! **What is cached is never recorded**: it is read from the package
//! files (the finished SFT, or the partial file and its presence bitmap),
//! so a `kill -9` at any point leaves records and data that agree, and a
//! load resumes with only the missing blocks.
//!
//! **Cache limit**: before a load, least-recently-used packages (last
//! load or run) that are neither locked nor in use are unloaded until the
//! new one fits; if it cannot, the load fails with
//! [`StoreProblem::Full`](crate::StoreProblem::Full) naming what is locked
//! and in use.
//!
//! ```
//! # fn main() -> sft::Result<()> {
//! use sft::client::{PackageOptions, Store};
//! let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
//! let store = Store::open(dir.path().join("store"))?;
//! let manifest = dir.path().join("m.xml");
//! std::fs::write(&manifest, r#"<MANIFEST><PACKAGE NAME="Demo"
//!     GUID="6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11" HREF="http://example.com/demo.sft"/>
//!     <APPLIST><APP NAME="Demo App"/></APPLIST></MANIFEST>"#)
//!     .map_err(|e| sft::Error::io("write", e))?;
//! store.add_package("Demo", &manifest, &PackageOptions::default())?;
//! let q = store.query_packages()?;
//! assert_eq!(q[0].name, "Demo");
//! assert_eq!(q[0].cached_percent, 0);
//! assert_eq!(q[0].source.as_deref(), Some("http://example.com/demo.sft"));
//! # Ok(()) }
//! ```

mod inspect;
mod install;
mod lock;
mod records;
mod servers;
mod store;

pub use inspect::CacheState;
pub use install::{InstallOptions, Installable};
pub use records::{
    AppRecord, AutoLoad, AutoLoadTarget, FORMAT_VERSION, FileTypeRecord, MAX_RECORDS_BYTES,
    PackageRecord, Records, Settings, ShortcutRecord, TEST_PAUSE_ENV,
};
#[cfg(feature = "http")]
pub use servers::{Launch, login};
pub use servers::{MAX_ANSWER_BYTES, RefreshReport, ServerRecord};
pub use store::{
    AddOutcome, AppStatus, InUse, LoadOptions, LoadReport, MAX_PERCENT_TO_LOCK, PackageOptions,
    PackageStatus, Store, StreamLease,
};
