//! OSD (Open Software Descriptor) files: the typed model, read and write.
//!
//! Element and attribute names are matched ignoring ASCII case and written
//! in upper case, as the Sequencer writes them. Known elements are written
//! in the Sequencer's order; what the model does not know is kept in each
//! element's [`Extra`] and written after the known parts.

use super::model::{Build, Extra, List, Take, Text};
use super::xml::{Element, Limits, decode};
use crate::Guid;
use crate::error::Error;

/// An OSD file: the `SOFTPKG` root and everything under it.
///
/// ```
/// use sft::publish::Osd;
/// let osd = Osd::parse(br#"<?xml version="1.0" standalone="no"?>
/// <SOFTPKG GUID="D54C80FA-9DFF-459D-AA33-DD852C9FBFBA" NAME="Editor" VERSION="2">
///   <IMPLEMENTATION>
///     <CODEBASE HREF="rtsp://%SFT_SOFTGRIDSERVER%:554/editor.sft" PARAMETERS="&quot;a b&quot;" SIZE="6572748"/>
///     <OS VALUE="Win7"/><OS VALUE="Win764"/>
///   </IMPLEMENTATION>
/// </SOFTPKG>"#)?;
/// assert_eq!(osd.name.as_deref(), Some("Editor"));
/// let cb = osd.codebase().unwrap();
/// assert_eq!(cb.parameters.as_deref(), Some("\"a b\""));
/// assert_eq!(cb.size, Some(6_572_748));
/// assert_eq!(osd.implementation.as_ref().unwrap().os.len(), 2);
/// assert_eq!(Osd::parse(osd.to_xml().as_bytes())?, osd);
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Osd {
    /// `SOFTPKG GUID`: the application's GUID.
    pub guid: Option<String>,
    /// `SOFTPKG NAME`: the application's name.
    pub name: Option<String>,
    /// `SOFTPKG VERSION`: the application's version.
    pub version: Option<String>,
    /// `IMPLEMENTATION`.
    pub implementation: Option<Implementation>,
    /// `DEPENDENCY`.
    pub dependency: Option<Dependency>,
    /// `PACKAGE`.
    pub package: Option<PackageRef>,
    /// `TITLE`: a descriptive application name.
    pub title: Option<Text>,
    /// `ABSTRACT`: a short description (the Sequencer's Comments).
    pub abstract_text: Option<Text>,
    /// `MGMT_SHORTCUTLIST`.
    pub shortcuts: Option<List<Shortcut>>,
    /// `MGMT_FILEASSOCIATIONS`, kept as a generic tree: its inner structure
    /// (`PROGIDLIST`, `FILEEXTENSIONLIST`) is not publicly documented.
    pub file_associations: Option<Element>,
    /// Unknown attributes and children of `SOFTPKG`.
    pub extra: Extra,
}

/// `IMPLEMENTATION`: where the package is and how to run the application.
///
/// ```
/// let i = sft::publish::Implementation::default();
/// assert!(i.codebase.is_none() && i.os.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Implementation {
    /// `CODEBASE`: the package and the program to start.
    pub codebase: Option<Codebase>,
    /// `VIRTUALENV`.
    pub virtual_env: Option<VirtualEnv>,
    /// `WORKINGDIR`.
    pub working_dir: Option<Text>,
    /// `VM` (with `SUBSYSTEM`).
    pub vm: Option<Vm>,
    /// `OS` elements: the application runs on any of them (none: on all).
    pub os: Vec<Value>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `CODEBASE`: in `IMPLEMENTATION` the package and program; in
/// `DEPENDENCIES` a Dynamic Suite Composition secondary package.
///
/// ```
/// let c = sft::publish::Codebase { href: Some("rtsp://s/a.sft".into()), ..Default::default() };
/// assert_eq!(c.href.as_deref(), Some("rtsp://s/a.sft"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Codebase {
    /// `HREF`: URL or path of the SFT (see [`crate::publish::resolve_codebase`]).
    pub href: Option<String>,
    /// `GUID`: the package GUID.
    pub guid: Option<String>,
    /// `PARAMETERS`: command-line arguments.
    pub parameters: Option<String>,
    /// `FILENAME`: the program to start, e.g. `%SFT_MNT%\APP.1\app.exe`.
    pub filename: Option<String>,
    /// `SYSGUARDFILE`, e.g. `APP.1\osguard.cp`.
    pub sysguardfile: Option<String>,
    /// `SIZE` in bytes.
    pub size: Option<u64>,
    /// `CONTENTID`: the package's content identity (`blake3:…`, format
    /// v1.1): a client refuses a package with another one (an sft
    /// extension; App-V ignores unknown attributes).
    pub content_id: Option<String>,
    /// `MANDATORY` (meaningful in `DEPENDENCIES`).
    pub mandatory: Option<bool>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl Codebase {
    /// The `GUID` attribute as a [`Guid`], if present.
    ///
    /// ```
    /// let c = sft::publish::Codebase { guid: Some("{6f9c0cd2-6b31-4a5e-9d34-6f7b2f0d4e11}".into()), ..Default::default() };
    /// assert_eq!(c.package_guid()?.unwrap().to_string(), "6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11");
    /// # Ok::<(), sft::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if the attribute is not a GUID.
    pub fn package_guid(&self) -> Result<Option<Guid>, Error> {
        Ok(self.guid.as_deref().map(str::parse).transpose()?)
    }
}

/// `VIRTUALENV`: policies, environment variables, DSC dependencies.
///
/// ```
/// let v = sft::publish::VirtualEnv::default();
/// assert!(v.policies.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualEnv {
    /// `TERMINATECHILDREN`.
    pub terminate_children: Option<bool>,
    /// `POLICIES`: each child is one policy (`LOCAL_INTERACTION_ALLOWED`…).
    pub policies: Option<List<Policy>>,
    /// `ENVLIST`: `ENVIRONMENT` children.
    pub env: Option<List<Environment>>,
    /// `DEPENDENCIES`: `CODEBASE` children of secondary packages.
    pub dependencies: Option<List<Codebase>>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl VirtualEnv {
    /// The value of policy `name` (case ignored) as TRUE/FALSE, if present
    /// and boolean.
    ///
    /// ```
    /// use sft::publish::{List, Policy, VirtualEnv};
    /// let v = VirtualEnv {
    ///     policies: Some(List::new(vec![Policy::new("LOCAL_INTERACTION_ALLOWED", "TRUE")])),
    ///     ..Default::default()
    /// };
    /// assert_eq!(v.policy("local_interaction_allowed"), Some(true));
    /// ```
    pub fn policy(&self, name: &str) -> Option<bool> {
        self.policies
            .as_ref()?
            .items
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| super::model::parse_bool(&p.value))
    }
}

/// One child of `POLICIES`: the element's name and its text.
///
/// ```
/// let p = sft::publish::Policy::new("VIRTUAL_REGISTRY_PASS_THROUGH", "TRUE");
/// assert_eq!(p.name, "VIRTUAL_REGISTRY_PASS_THROUGH");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The element name.
    pub name: String,
    /// Its text, usually `TRUE` or `FALSE`.
    pub value: String,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl Policy {
    /// A policy element.
    ///
    /// ```
    /// assert_eq!(sft::publish::Policy::new("P", "TRUE").value, "TRUE");
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Policy {
            name: name.into(),
            value: value.into(),
            extra: Extra::default(),
        }
    }
}

/// `<ENVIRONMENT VARIABLE="NAME">value</ENVIRONMENT>`.
///
/// ```
/// let e = sft::publish::Environment::new("PATH", "%SFT_MNT%\\APP\\bin;%PATH%");
/// assert_eq!(e.variable.as_deref(), Some("PATH"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `VARIABLE`.
    pub variable: Option<String>,
    /// The value.
    pub value: String,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl Environment {
    /// An environment entry.
    ///
    /// ```
    /// assert_eq!(sft::publish::Environment::new("A", "1").value, "1");
    /// ```
    pub fn new(variable: impl Into<String>, value: impl Into<String>) -> Self {
        Environment {
            variable: Some(variable.into()),
            value: value.into(),
            extra: Extra::default(),
        }
    }
}

/// `VM VALUE="Win32"` with its `SUBSYSTEM VALUE="…"` child.
///
/// ```
/// let vm = sft::publish::Vm::default();
/// assert!(vm.value.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vm {
    /// `VALUE`, e.g. `Win32`.
    pub value: Option<String>,
    /// `SUBSYSTEM`, e.g. `windowed` or `console`.
    pub subsystem: Option<Value>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// An element whose one documented attribute is `VALUE` (`OS`, `SUBSYSTEM`).
///
/// ```
/// let os = sft::publish::Value::new("Win7");
/// assert_eq!(os.value.as_deref(), Some("Win7"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Value {
    /// `VALUE`.
    pub value: Option<String>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// An `OS` element.
pub type Os = Value;

impl Value {
    /// An element with this `VALUE`.
    ///
    /// ```
    /// assert_eq!(sft::publish::Os::new("WinXP").value.as_deref(), Some("WinXP"));
    /// ```
    pub fn new(value: impl Into<String>) -> Self {
        Value {
            value: Some(value.into()),
            extra: Extra::default(),
        }
    }
}

/// `DEPENDENCY`: the client version and the scripts.
///
/// ```
/// let d = sft::publish::Dependency::default();
/// assert!(d.scripts.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependency {
    /// `CLIENTVERSION VERSION`.
    pub client_version: Option<String>,
    /// Unknown attributes and children of `CLIENTVERSION`.
    pub client_version_extra: Extra,
    /// `SCRIPT` elements.
    pub scripts: Vec<Script>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `SCRIPT TIMING`.
///
/// ```
/// use sft::publish::Timing;
/// assert_eq!(Timing::parse("pre"), Timing::Pre);
/// assert_eq!(Timing::parse("LATER").as_str(), "LATER");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// `PRE`.
    Pre,
    /// `POST`.
    Post,
    /// Anything else, kept as written.
    Other(String),
}

impl Timing {
    /// From the attribute value (case ignored).
    ///
    /// ```
    /// assert_eq!(sft::publish::Timing::parse("POST"), sft::publish::Timing::Post);
    /// ```
    pub fn parse(s: &str) -> Timing {
        match s.to_ascii_uppercase().as_str() {
            "PRE" => Timing::Pre,
            "POST" => Timing::Post,
            _ => Timing::Other(s.to_owned()),
        }
    }

    /// The attribute value.
    ///
    /// ```
    /// assert_eq!(sft::publish::Timing::Pre.as_str(), "PRE");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Timing::Pre => "PRE",
            Timing::Post => "POST",
            Timing::Other(s) => s,
        }
    }
}

/// `SCRIPT EVENT`.
///
/// ```
/// use sft::publish::ScriptEvent;
/// assert_eq!(ScriptEvent::parse("launch"), ScriptEvent::Launch);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEvent {
    /// `STREAM`.
    Stream,
    /// `LAUNCH`.
    Launch,
    /// `SHUTDOWN` (only with `POST`).
    Shutdown,
    /// Anything else, kept as written.
    Other(String),
}

impl ScriptEvent {
    /// From the attribute value (case ignored).
    ///
    /// ```
    /// assert_eq!(sft::publish::ScriptEvent::parse("STREAM"), sft::publish::ScriptEvent::Stream);
    /// ```
    pub fn parse(s: &str) -> ScriptEvent {
        match s.to_ascii_uppercase().as_str() {
            "STREAM" => ScriptEvent::Stream,
            "LAUNCH" => ScriptEvent::Launch,
            "SHUTDOWN" => ScriptEvent::Shutdown,
            _ => ScriptEvent::Other(s.to_owned()),
        }
    }

    /// The attribute value.
    ///
    /// ```
    /// assert_eq!(sft::publish::ScriptEvent::Shutdown.as_str(), "SHUTDOWN");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            ScriptEvent::Stream => "STREAM",
            ScriptEvent::Launch => "LAUNCH",
            ScriptEvent::Shutdown => "SHUTDOWN",
            ScriptEvent::Other(s) => s,
        }
    }
}

/// A script's body: inline commands or a reference to a script file.
///
/// ```
/// let b = sft::publish::ScriptBody::Inline("echo hi".into());
/// assert!(matches!(b, sft::publish::ScriptBody::Inline(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptBody {
    /// `SCRIPTBODY` (its `LANGUAGE` attribute, if any, is in the extra).
    Inline(Text),
    /// `HREF`.
    Href(Text),
}

/// `SCRIPT`: a command run at a stream, launch or shutdown event.
///
/// ```
/// use sft::publish::{Script, ScriptEvent, Timing};
/// let s = Script { timing: Some(Timing::Pre), event: Some(ScriptEvent::Launch), ..Default::default() };
/// assert_eq!(s.timing, Some(Timing::Pre));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// `TIMING`.
    pub timing: Option<Timing>,
    /// `EVENT`.
    pub event: Option<ScriptEvent>,
    /// `PROTECT`: run inside the virtual environment.
    pub protect: Option<bool>,
    /// `WAIT`: the client waits for the script.
    pub wait: Option<bool>,
    /// `TIMEOUT` in seconds.
    pub timeout: Option<u64>,
    /// `SUCCESSRESULT`: the exit code meaning success.
    pub success_result: Option<i64>,
    /// `ABORTRESULT`: the exit code that aborts the launch (checked first).
    pub abort_result: Option<i64>,
    /// `SCRIPTBODY` or `HREF`.
    pub body: Option<ScriptBody>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `PACKAGE NAME="…"`.
///
/// ```
/// let p = sft::publish::PackageRef { name: Some("Editor".into()), ..Default::default() };
/// assert_eq!(p.name.as_deref(), Some("Editor"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageRef {
    /// `NAME`.
    pub name: Option<String>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

/// `SHORTCUT` (in an OSD's `MGMT_SHORTCUTLIST` and in the manifest).
///
/// ```
/// let s = sft::publish::Shortcut { display: Some("Editor".into()), ..Default::default() };
/// assert_eq!(s.display.as_deref(), Some("Editor"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shortcut {
    /// `LOCATION`, e.g. `%CSIDL_STARTMENU%\Programs`.
    pub location: Option<String>,
    /// `FILENAME`: the shortcut's file name.
    pub filename: Option<String>,
    /// `DISPLAY`: the label.
    pub display: Option<String>,
    /// `ICON`, e.g. `%SFT_MIME_SOURCE%/Editor Icons/editor.ico`.
    pub icon: Option<String>,
    /// `OVERRIDDEN`.
    pub overridden: Option<bool>,
    /// Unknown attributes and children.
    pub extra: Extra,
}

impl Osd {
    /// Parse an OSD file (UTF-8, or UTF-16 with a BOM) with the default
    /// [`Limits`].
    ///
    /// ```
    /// let e = sft::publish::Osd::parse(b"<SOFTPKG>\n<IMPLEMENTATION>\n</SOFTPKG>").unwrap_err();
    /// assert!(e.to_string().contains("line 3"), "{e}");
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the line and column for malformed or
    /// hostile XML, a root other than `SOFTPKG`, or an attribute value of
    /// the wrong type (`SIZE`, `TIMEOUT`, TRUE/FALSE flags).
    pub fn parse(bytes: &[u8]) -> Result<Osd, Error> {
        Osd::parse_with(bytes, &Limits::default())
    }

    /// As [`Osd::parse`] with explicit limits.
    ///
    /// ```
    /// use sft::publish::{Limits, Osd};
    /// let small = Limits { max_input: 10, ..Limits::default() };
    /// assert!(Osd::parse_with(b"<SOFTPKG NAME='long enough'/>", &small).is_err());
    /// ```
    ///
    /// # Errors
    /// As [`Osd::parse`].
    pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<Osd, Error> {
        let text = decode(bytes, limits)?;
        Osd::from_element(Element::parse(&text, limits)?)
    }

    /// The typed model of a parsed `SOFTPKG` element.
    ///
    /// ```
    /// use sft::publish::{Element, Osd};
    /// let e = Element::parse("<SOFTPKG NAME='A'/>", &Default::default())?;
    /// assert_eq!(Osd::from_element(e)?.name.as_deref(), Some("A"));
    /// # Ok::<(), sft::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Osd::parse`], without the XML errors.
    pub fn from_element(root: Element) -> Result<Osd, Error> {
        if !root.is_named("SOFTPKG") {
            return Err(Error::invalid(format!(
                "not an OSD: the root element is `{}`, not SOFTPKG",
                root.name
            )));
        }
        super::model::refuse_case_duplicates(&root)?;
        let mut t = Take::new(root);
        Ok(Osd {
            guid: t.attr("GUID"),
            name: t.attr("NAME"),
            version: t.attr("VERSION"),
            implementation: t.child("IMPLEMENTATION").map(read_impl).transpose()?,
            dependency: t.child("DEPENDENCY").map(read_dependency).transpose()?,
            package: t.child("PACKAGE").map(|e| {
                let mut p = Take::new(e);
                PackageRef {
                    name: p.attr("NAME"),
                    extra: p.finish(),
                }
            }),
            title: t.child("TITLE").map(Text::read),
            abstract_text: t.child("ABSTRACT").map(Text::read),
            shortcuts: t
                .child("MGMT_SHORTCUTLIST")
                .map(|e| List::read(e, "SHORTCUT", read_shortcut))
                .transpose()?,
            file_associations: t.child("MGMT_FILEASSOCIATIONS"),
            extra: t.finish(),
        })
    }

    /// The `SOFTPKG` element for this model.
    ///
    /// ```
    /// let osd = sft::publish::Osd { name: Some("A".into()), ..Default::default() };
    /// assert_eq!(osd.to_element().attribute("NAME"), Some("A"));
    /// ```
    pub fn to_element(&self) -> Element {
        Build::new("SOFTPKG")
            .attr("GUID", self.guid.as_deref())
            .attr("NAME", self.name.as_deref())
            .attr("VERSION", self.version.as_deref())
            .child(self.implementation.as_ref().map(write_impl))
            .child(self.dependency.as_ref().map(write_dependency))
            .child(self.package.as_ref().map(|p| {
                Build::new("PACKAGE")
                    .attr("NAME", p.name.as_deref())
                    .extra(&p.extra)
            }))
            .child(self.title.as_ref().map(|t| t.write("TITLE")))
            .child(self.abstract_text.as_ref().map(|t| t.write("ABSTRACT")))
            .child(
                self.shortcuts
                    .as_ref()
                    .map(|l| l.write("MGMT_SHORTCUTLIST", write_shortcut)),
            )
            .child(self.file_associations.clone())
            .extra(&self.extra)
    }

    /// The OSD as a document, as the Sequencer starts it:
    /// `<?xml version="1.0" standalone="no"?>`, UTF-8.
    ///
    /// ```
    /// let osd = sft::publish::Osd { name: Some("A&B".into()), ..Default::default() };
    /// assert_eq!(osd.to_xml(), "<?xml version=\"1.0\" standalone=\"no\"?>\n<SOFTPKG NAME=\"A&amp;B\"/>\n");
    /// ```
    pub fn to_xml(&self) -> String {
        let mut s = String::from("<?xml version=\"1.0\" standalone=\"no\"?>\n");
        s.push_str(&self.to_element().to_xml());
        s
    }

    /// The `IMPLEMENTATION/CODEBASE`, if any.
    ///
    /// ```
    /// assert!(sft::publish::Osd::default().codebase().is_none());
    /// ```
    pub fn codebase(&self) -> Option<&Codebase> {
        self.implementation.as_ref()?.codebase.as_ref()
    }
}

fn read_codebase(e: Element) -> Result<Codebase, Error> {
    let mut t = Take::new(e);
    Ok(Codebase {
        href: t.attr("HREF"),
        guid: t.attr("GUID"),
        parameters: t.attr("PARAMETERS"),
        filename: t.attr("FILENAME"),
        sysguardfile: t.attr("SYSGUARDFILE"),
        size: t.num_attr("SIZE")?,
        content_id: t.attr("CONTENTID"),
        mandatory: t.bool_attr("MANDATORY")?,
        extra: t.finish(),
    })
}

fn write_codebase(c: &Codebase) -> Element {
    Build::new("CODEBASE")
        .attr("HREF", c.href.as_deref())
        .attr("GUID", c.guid.as_deref())
        .attr("PARAMETERS", c.parameters.as_deref())
        .attr("FILENAME", c.filename.as_deref())
        .attr("SYSGUARDFILE", c.sysguardfile.as_deref())
        .num_attr("SIZE", c.size)
        .attr("CONTENTID", c.content_id.as_deref())
        .bool_attr("MANDATORY", c.mandatory)
        .extra(&c.extra)
}

fn read_value(e: Element) -> Value {
    let mut t = Take::new(e);
    Value {
        value: t.attr("VALUE"),
        extra: t.finish(),
    }
}

fn write_value(name: &str, v: &Value) -> Element {
    Build::new(name)
        .attr("VALUE", v.value.as_deref())
        .extra(&v.extra)
}

fn read_impl(e: Element) -> Result<Implementation, Error> {
    let mut t = Take::new(e);
    Ok(Implementation {
        codebase: t.child("CODEBASE").map(read_codebase).transpose()?,
        virtual_env: t.child("VIRTUALENV").map(read_venv).transpose()?,
        working_dir: t.child("WORKINGDIR").map(Text::read),
        vm: t.child("VM").map(|e| {
            let mut v = Take::new(e);
            Vm {
                value: v.attr("VALUE"),
                subsystem: v.child("SUBSYSTEM").map(read_value),
                extra: v.finish(),
            }
        }),
        os: t.children("OS").into_iter().map(read_value).collect(),
        extra: t.finish(),
    })
}

fn write_impl(i: &Implementation) -> Element {
    Build::new("IMPLEMENTATION")
        .child(i.codebase.as_ref().map(write_codebase))
        .child(i.virtual_env.as_ref().map(write_venv))
        .child(i.working_dir.as_ref().map(|t| t.write("WORKINGDIR")))
        .child(i.vm.as_ref().map(|vm| {
            Build::new("VM")
                .attr("VALUE", vm.value.as_deref())
                .child(vm.subsystem.as_ref().map(|s| write_value("SUBSYSTEM", s)))
                .extra(&vm.extra)
        }))
        .children(i.os.iter().map(|o| write_value("OS", o)))
        .extra(&i.extra)
}

fn read_venv(e: Element) -> Result<VirtualEnv, Error> {
    let mut t = Take::new(e);
    let terminate_children = t.bool_attr("TERMINATECHILDREN")?;
    let policies = t.child("POLICIES").map(|e| {
        let mut p = Take::new(e);
        let items = p
            .all_elements()
            .into_iter()
            .map(|e| {
                let mut x = Take::new(e);
                let value = x.text();
                Policy {
                    name: x.name.clone(),
                    value,
                    extra: x.finish(),
                }
            })
            .collect();
        List {
            items,
            extra: p.finish(),
        }
    });
    let env = t
        .child("ENVLIST")
        .map(|e| {
            List::read(e, "ENVIRONMENT", |e| {
                let mut x = Take::new(e);
                Ok(Environment {
                    variable: x.attr("VARIABLE"),
                    value: x.text(),
                    extra: x.finish(),
                })
            })
        })
        .transpose()?;
    let dependencies = t
        .child("DEPENDENCIES")
        .map(|e| List::read(e, "CODEBASE", read_codebase))
        .transpose()?;
    Ok(VirtualEnv {
        terminate_children,
        policies,
        env,
        dependencies,
        extra: t.finish(),
    })
}

fn write_venv(v: &VirtualEnv) -> Element {
    Build::new("VIRTUALENV")
        .bool_attr("TERMINATECHILDREN", v.terminate_children)
        .child(v.policies.as_ref().map(|l| {
            l.write("POLICIES", |p| {
                Build::new(&p.name).text(&p.value).extra(&p.extra)
            })
        }))
        .child(v.env.as_ref().map(|l| {
            l.write("ENVLIST", |e| {
                Build::new("ENVIRONMENT")
                    .attr("VARIABLE", e.variable.as_deref())
                    .text(&e.value)
                    .extra(&e.extra)
            })
        }))
        .child(
            v.dependencies
                .as_ref()
                .map(|l| l.write("DEPENDENCIES", write_codebase)),
        )
        .extra(&v.extra)
}

fn read_dependency(e: Element) -> Result<Dependency, Error> {
    let mut t = Take::new(e);
    let (client_version, client_version_extra) = match t.child("CLIENTVERSION") {
        Some(e) => {
            let mut c = Take::new(e);
            (c.attr("VERSION"), c.finish())
        }
        None => (None, Extra::default()),
    };
    let scripts = t
        .children("SCRIPT")
        .into_iter()
        .map(read_script)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Dependency {
        client_version,
        client_version_extra,
        scripts,
        extra: t.finish(),
    })
}

fn write_dependency(d: &Dependency) -> Element {
    let cv = (d.client_version.is_some() || !d.client_version_extra.is_empty()).then(|| {
        Build::new("CLIENTVERSION")
            .attr("VERSION", d.client_version.as_deref())
            .extra(&d.client_version_extra)
    });
    Build::new("DEPENDENCY")
        .child(cv)
        .children(d.scripts.iter().map(write_script))
        .extra(&d.extra)
}

fn read_script(e: Element) -> Result<Script, Error> {
    let mut t = Take::new(e);
    let body = match t.child("SCRIPTBODY") {
        Some(b) => Some(ScriptBody::Inline(Text::read(b))),
        None => t.child("HREF").map(|h| ScriptBody::Href(Text::read(h))),
    };
    Ok(Script {
        timing: t.attr("TIMING").map(|s| Timing::parse(&s)),
        event: t.attr("EVENT").map(|s| ScriptEvent::parse(&s)),
        protect: t.bool_attr("PROTECT")?,
        wait: t.bool_attr("WAIT")?,
        timeout: t.num_attr("TIMEOUT")?,
        success_result: t.num_attr("SUCCESSRESULT")?,
        abort_result: t.num_attr("ABORTRESULT")?,
        body,
        extra: t.finish(),
    })
}

fn write_script(s: &Script) -> Element {
    Build::new("SCRIPT")
        .attr("TIMING", s.timing.as_ref().map(Timing::as_str))
        .attr("EVENT", s.event.as_ref().map(ScriptEvent::as_str))
        .bool_attr("PROTECT", s.protect)
        .bool_attr("WAIT", s.wait)
        .num_attr("TIMEOUT", s.timeout)
        .num_attr("SUCCESSRESULT", s.success_result)
        .num_attr("ABORTRESULT", s.abort_result)
        .child(s.body.as_ref().map(|b| match b {
            ScriptBody::Inline(t) => t.write("SCRIPTBODY"),
            ScriptBody::Href(t) => t.write("HREF"),
        }))
        .extra(&s.extra)
}

pub(crate) fn read_shortcut(e: Element) -> Result<Shortcut, Error> {
    let mut t = Take::new(e);
    Ok(Shortcut {
        location: t.attr("LOCATION"),
        filename: t.attr("FILENAME"),
        display: t.attr("DISPLAY"),
        icon: t.attr("ICON"),
        overridden: t.bool_attr("OVERRIDDEN")?,
        extra: t.finish(),
    })
}

pub(crate) fn write_shortcut(s: &Shortcut) -> Element {
    Build::new("SHORTCUT")
        .attr("LOCATION", s.location.as_deref())
        .attr("FILENAME", s.filename.as_deref())
        .bool_attr("OVERRIDDEN", s.overridden)
        .attr("DISPLAY", s.display.as_deref())
        .attr("ICON", s.icon.as_deref())
        .extra(&s.extra)
}
