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
mod xml;

pub use codebase::{SourceRoots, apply_source_root, expand_vars, resolve_codebase, to_source};
pub use icon::{IconInfo, MAX_ICON_BYTES, tiny_icon, validate_icon};
pub use manifest::{App, FileType, Manifest, ManifestPackage};
pub use model::{Extra, List, Text};
pub use osd::{
    Codebase, Dependency, Environment, Implementation, Os, Osd, PackageRef, Policy, Script,
    ScriptBody, ScriptEvent, Shortcut, Timing, Value, VirtualEnv, Vm,
};
pub use xml::{Attribute, Element, Limits, Node, decode};

/// Fuzzing entry point (not a stable API): parse `data` as an OSD, a
/// manifest and a bare element tree; whatever parses must write out and
/// parse back, and a second round trip must change nothing. Panics exactly
/// when it finds a bug.
#[doc(hidden)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
pub fn fuzz_osd_and_manifest(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(osd) = Osd::parse(data) {
        let x1 = osd.to_xml();
        let o2 = Osd::parse(x1.as_bytes()).expect("a written OSD parses");
        let x2 = o2.to_xml();
        let o3 = Osd::parse(x2.as_bytes()).expect("a rewritten OSD parses");
        assert_eq!(o3, o2, "OSD round trip is not stable");
        assert_eq!(o3.to_xml(), x2);
    }
    if let Ok(m) = Manifest::parse(data) {
        let x1 = m.to_xml();
        let m2 = Manifest::parse(x1.as_bytes()).expect("a written manifest parses");
        let m3 = Manifest::parse(m2.to_xml().as_bytes()).expect("a rewritten manifest parses");
        assert_eq!(m3, m2, "manifest round trip is not stable");
    }
    if let Ok(text) = decode(data, &limits)
        && let Ok(e) = Element::parse(&text, &limits)
    {
        let e2 = Element::parse(&e.to_xml(), &limits).expect("a written tree parses");
        let e3 = Element::parse(&e2.to_xml(), &limits).expect("a rewritten tree parses");
        assert_eq!(e3, e2, "tree round trip is not stable");
    }
}
