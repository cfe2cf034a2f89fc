//! Publishing descriptors (feature `publish`): OSD files, the manifest and
//! icons, and CODEBASE resolution; see `docs/PUBLISHING.md`.
//!
//! - [`Osd`]: the typed model of an App-V 4.x OSD file (`SOFTPKG`,
//!   `IMPLEMENTATION/CODEBASE`, `VIRTUALENV`, `DEPENDENCY/SCRIPT`,
//!   shortcuts…), read from the Sequencer's style of XML and written back
//!   in it; what the model does not know is kept ([`Extra`]) so it
//!   survives a round trip.
//! - [`Manifest`]: this crate's documented manifest listing a package's
//!   applications with their OSD and icon locations.
//! - [`validate_icon`]: `.ico` files checked to be real icons.
//! - [`resolve_codebase`]: an `HREF` plus the client's source settings
//!   (ApplicationSourceRoot, OverrideURL, SFTPATH) and environment to a
//!   source for [`crate::fetch::fetch_spec`].
//!
//! Parsing is bounded ([`Limits`]): no DTD or entity expansion, a nesting
//! depth limit, attribute, text and total size limits; malformed XML is an
//! error naming the line and column, never a panic.
//!
//! ```
//! use sft::publish::{Osd, SourceRoots, resolve_codebase};
//! let osd = Osd::parse(br#"<SOFTPKG NAME="Editor"><IMPLEMENTATION>
//!   <CODEBASE HREF="RTSP://%SFT_SOFTGRIDSERVER%:554/editor.sft"/></IMPLEMENTATION></SOFTPKG>"#)?;
//! let href = osd.codebase().and_then(|c| c.href.as_deref()).unwrap_or_default();
//! let roots = SourceRoots { application_source_root: Some("https://cdn.example.com/apps".into()), ..Default::default() };
//! assert_eq!(resolve_codebase(href, &roots, |_| None)?, "https://cdn.example.com/apps/editor.sft");
//! # Ok::<(), sft::Error>(())
//! ```

mod codebase;
mod icon;
mod manifest;
mod model;
mod osd;
mod refresh;
mod xml;

pub use codebase::{SourceRoots, apply_source_root, expand_vars, resolve_codebase, to_source};
pub use icon::{IconInfo, MAX_ICON_BYTES, tiny_icon, validate_icon};
pub use manifest::{App, FileType, Manifest, ManifestPackage};
pub use model::{Extra, List, Text};
pub use osd::{
    Codebase, Dependency, Environment, Implementation, Os, Osd, PackageRef, Policy, Script,
    ScriptBody, ScriptEvent, Shortcut, Timing, Value, VirtualEnv, Vm,
};
pub use refresh::{
    AppRecord, PublishedPackage, PublishingAnswer, RefreshPolicy, ReportedPackage, UsageReport,
    desktop_config, parse_rfc3339, percent_encode, rfc3339,
};
pub use xml::{Attribute, Element, Limits, Node, decode};
