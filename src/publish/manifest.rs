//! The package manifest: this crate's documented XML listing a package's
//! applications with their OSD and icon locations, shortcuts and file type
//! associations, in the spirit of App-V's `APPLIST` (whose exact names
//! Microsoft never published). The format is specified in
//! `docs/PUBLISHING.md`.

use super::model::{Build, Extra, List, Take};
use super::osd::{Shortcut, read_shortcut, write_shortcut};
use super::xml::{Element, Limits, decode};
use crate::error::Error;

/// A manifest: the package and its applications.
///
/// ```
/// use sft::publish::Manifest;
/// let m = Manifest::parse(br#"<?xml version="1.0" encoding="UTF-8"?>
/// <MANIFEST>
///   <PACKAGE NAME="Editor" GUID="6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11" HREF="rtsp://server/editor.sft"/>
///   <APPLIST>
///     <APP NAME="Editor" VERSION="2" OSD="%SFT_MIME_SOURCE%/Editor.osd" ICON="%SFT_MIME_SOURCE%/Editor Icons/editor.ico">
///       <FILETYPELIST><FILETYPE EXTENSION="txt" DESCRIPTION="Text"/></FILETYPELIST>
///     </APP>
///   </APPLIST>
/// </MANIFEST>"#)?;
/// assert_eq!(m.apps.items[0].osd.as_deref(), Some("%SFT_MIME_SOURCE%/Editor.osd"));
/// assert_eq!(m.apps.items[0].file_types.as_ref().unwrap().items[0].extension.as_deref(), Some("txt"));
/// assert_eq!(Manifest::parse(m.to_xml().as_bytes())?, m);
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// `PACKAGE`: the package all applications belong to.
    pub package: Option<ManifestPackage>,
    /// `APPLIST`: the applications.
    pub apps: List<App>,
    /// Unknown attributes and children of `MANIFEST`.
    pub extra: Extra,
}

/// `PACKAGE` in a manifest.
///
/// ```
/// let p = sft::publish::ManifestPackage { name: Some("Editor".into()), ..Default::default() };
/// assert_eq!(p.name.as_deref(), Some("Editor"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestPackage {
    /// `NAME`.
    pub name: Option<String>,
    /// `GUID`: the package GUID.
    pub guid: Option<String>,
    /// `VERSIONGUID`: the package version GUID.
    pub version_guid: Option<String>,
    /// `VERSION`: the package version number.
    pub version: Option<String>,
    /// `HREF`: where the SFT is (the same forms as an OSD `CODEBASE HREF`).
    pub href: Option<String>,
    /// `SIZE`: the SFT file's size in bytes.
    pub size: Option<u64>,
    /// `CONTENTID`: the package's content identity (`blake3:…`, format
    /// v1.1; an sft extension): a client refuses another package.
    pub content_id: Option<String>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `APP`: one application.
///
/// ```
/// let a = sft::publish::App { name: Some("Editor".into()), ..Default::default() };
/// assert!(a.shortcuts.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct App {
    /// `NAME` (as the OSD's `SOFTPKG NAME`).
    pub name: Option<String>,
    /// `VERSION` (as the OSD's `SOFTPKG VERSION`).
    pub version: Option<String>,
    /// `OSD`: the OSD's location, usually `%SFT_MIME_SOURCE%/NAME.osd`.
    pub osd: Option<String>,
    /// `ICON`: the icon's location, usually under `%SFT_MIME_SOURCE%`.
    pub icon: Option<String>,
    /// `SHORTCUTLIST`.
    pub shortcuts: Option<List<Shortcut>>,
    /// `FILETYPELIST`.
    pub file_types: Option<List<FileType>>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `FILETYPE`: a file type association.
///
/// ```
/// let f = sft::publish::FileType { extension: Some("txt".into()), ..Default::default() };
/// assert_eq!(f.extension.as_deref(), Some("txt"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileType {
    /// `EXTENSION`, without the dot.
    pub extension: Option<String>,
    /// `PROGID`.
    pub progid: Option<String>,
    /// `DESCRIPTION`.
    pub description: Option<String>,
    /// `CONTENTTYPE` (MIME type).
    pub content_type: Option<String>,
    /// `ICON`.
    pub icon: Option<String>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl Manifest {
    /// Parse a manifest (UTF-8, or UTF-16 with a BOM) with the default
    /// [`Limits`].
    ///
    /// ```
    /// let e = sft::publish::Manifest::parse(b"<SOFTPKG/>").unwrap_err();
    /// assert!(e.to_string().contains("not a manifest"), "{e}");
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the line and column for malformed or
    /// hostile XML, a root other than `MANIFEST`, or a bad `SIZE`.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, Error> {
        Manifest::parse_with(bytes, &Limits::default())
    }

    /// As [`Manifest::parse`] with explicit limits.
    ///
    /// ```
    /// use sft::publish::{Limits, Manifest};
    /// let m = Manifest::parse_with(b"<MANIFEST/>", &Limits::default())?;
    /// assert!(m.apps.items.is_empty());
    /// # Ok::<(), sft::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Manifest::parse`].
    pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Manifest, Error> {
        let text = decode(bytes, limits)?;
        Manifest::from_element(Element::parse(&text, limits)?)
    }

    /// The typed model of a parsed `MANIFEST` element.
    ///
    /// ```
    /// use sft::publish::{Element, Manifest};
    /// let e = Element::parse("<MANIFEST><APPLIST><APP NAME='A'/></APPLIST></MANIFEST>", &Default::default())?;
    /// assert_eq!(Manifest::from_element(e)?.apps.items.len(), 1);
    /// # Ok::<(), sft::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Manifest::parse`], without the XML errors.
    pub fn from_element(root: Element) -> Result<Manifest, Error> {
        if !root.is_named("MANIFEST") {
            return Err(Error::invalid(format!(
                "not a manifest: the root element is `{}`, not MANIFEST",
                root.name
            )));
        }
        super::model::refuse_case_duplicates(&root)?;
        let mut t = Take::new(root);
        let package = match t.child("PACKAGE") {
            Some(e) => {
                let mut p = Take::new(e);
                Some(ManifestPackage {
                    name: p.attr("NAME"),
                    guid: p.attr("GUID"),
                    version_guid: p.attr("VERSIONGUID"),
                    version: p.attr("VERSION"),
                    href: p.attr("HREF"),
                    size: p.num_attr("SIZE")?,
                    content_id: p.attr("CONTENTID"),
                    extra: p.finish(),
                })
            }
            None => None,
        };
        let apps = match t.child("APPLIST") {
            Some(e) => List::read(e, "APP", read_app)?,
            None => List::default(),
        };
        Ok(Manifest {
            package,
            apps,
            extra: t.finish(),
        })
    }

    /// The `MANIFEST` element for this model.
    ///
    /// ```
    /// let m = sft::publish::Manifest::default();
    /// assert_eq!(m.to_element().name, "MANIFEST");
    /// ```
    pub fn to_element(&self) -> Element {
        Build::new("MANIFEST")
            .child(self.package.as_ref().map(|p| {
                Build::new("PACKAGE")
                    .attr("NAME", p.name.as_deref())
                    .attr("GUID", p.guid.as_deref())
                    .attr("VERSIONGUID", p.version_guid.as_deref())
                    .attr("VERSION", p.version.as_deref())
                    .attr("HREF", p.href.as_deref())
                    .num_attr("SIZE", p.size)
                    .attr("CONTENTID", p.content_id.as_deref())
                    .extra(&p.extra)
            }))
            .child(Some(self.apps.write("APPLIST", write_app)))
            .extra(&self.extra)
    }

    /// The manifest as a UTF-8 document.
    ///
    /// ```
    /// let xml = sft::publish::Manifest::default().to_xml();
    /// assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MANIFEST>"));
    /// ```
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        s.push_str(&self.to_element().to_xml());
        s
    }
}

fn read_app(e: Element) -> Result<App, Error> {
    let mut t = Take::new(e);
    Ok(App {
        name: t.attr("NAME"),
        version: t.attr("VERSION"),
        osd: t.attr("OSD"),
        icon: t.attr("ICON"),
        shortcuts: t
            .child("SHORTCUTLIST")
            .map(|e| List::read(e, "SHORTCUT", read_shortcut))
            .transpose()?,
        file_types: t
            .child("FILETYPELIST")
            .map(|e| {
                List::read(e, "FILETYPE", |e| {
                    let mut f = Take::new(e);
                    Ok(FileType {
                        extension: f.attr("EXTENSION"),
                        progid: f.attr("PROGID"),
                        description: f.attr("DESCRIPTION"),
                        content_type: f.attr("CONTENTTYPE"),
                        icon: f.attr("ICON"),
                        extra: f.finish(),
                    })
                })
            })
            .transpose()?,
        extra: t.finish(),
    })
}

fn write_app(a: &App) -> Element {
    Build::new("APP")
        .attr("NAME", a.name.as_deref())
        .attr("VERSION", a.version.as_deref())
        .attr("OSD", a.osd.as_deref())
        .attr("ICON", a.icon.as_deref())
        .child(
            a.shortcuts
                .as_ref()
                .map(|l| l.write("SHORTCUTLIST", write_shortcut)),
        )
        .child(a.file_types.as_ref().map(|l| {
            l.write("FILETYPELIST", |f| {
                Build::new("FILETYPE")
                    .attr("EXTENSION", f.extension.as_deref())
                    .attr("PROGID", f.progid.as_deref())
                    .attr("DESCRIPTION", f.description.as_deref())
                    .attr("CONTENTTYPE", f.content_type.as_deref())
                    .attr("ICON", f.icon.as_deref())
                    .extra(&f.extra)
            })
        }))
        .extra(&a.extra)
}
