//! What the typed models share: [`Extra`] (the unknown parts of an
//! element, kept for the round trip), [`List`], [`Text`], and the helpers
//! that take known parts out of an [`Element`] and put them back.

use super::xml::{Attribute, Element, Node};
use crate::error::Error;

/// The attributes and children of an element that its typed model does
/// not know; written back after the known ones, in their original order.
///
/// ```
/// use sft::publish::Osd;
/// let osd = Osd::parse(br#"<SOFTPKG NAME="A" X-VENDOR="1"><X-NOTE>n</X-NOTE></SOFTPKG>"#)?;
/// assert_eq!(osd.extra.attributes[0].name, "X-VENDOR");
/// assert!(osd.to_xml().contains("<X-NOTE>n</X-NOTE>"));
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// Unknown attributes.
    pub attributes: Vec<Attribute>,
    /// Unknown child elements, stray text and comments.
    pub children: Vec<Node>,
}

impl Extra {
    /// True if nothing unknown was found.
    ///
    /// ```
    /// assert!(sft::publish::Extra::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty() && self.children.is_empty()
    }
}

/// A container element (`ENVLIST`, `POLICIES`, `MGMT_SHORTCUTLIST`…): its
/// items, plus what else it held.
///
/// ```
/// use sft::publish::{List, Os};
/// let l: List<Os> = List::new(vec![Os::new("Win7")]);
/// assert_eq!(l.items.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Unknown attributes and children of the container.
    pub extra: Extra,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            items: Vec::new(),
            extra: Extra::default(),
        }
    }
}

impl<T> List<T> {
    /// A list of `items` with nothing extra.
    ///
    /// ```
    /// let l = sft::publish::List::new(vec![1, 2]);
    /// assert_eq!(l.items, [1, 2]);
    /// ```
    pub fn new(items: Vec<T>) -> Self {
        List {
            items,
            extra: Extra::default(),
        }
    }
}

/// A text-only element (`WORKINGDIR`, `TITLE`, `SCRIPTBODY`…): its text
/// and any attributes or children the model does not know.
///
/// ```
/// let t = sft::publish::Text::from("%CSIDL_SYSTEM%");
/// assert_eq!(t.value, "%CSIDL_SYSTEM%");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The text, entities resolved.
    pub value: String,
    /// Unknown attributes (such as `SCRIPTBODY LANGUAGE`) and children.
    pub extra: Extra,
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text {
            value: s.to_owned(),
            extra: Extra::default(),
        }
    }
}

impl From<String> for Text {
    fn from(value: String) -> Self {
        Text {
            value,
            extra: Extra::default(),
        }
    }
}

/// Refuse an element tree in which one element has two attributes whose
/// names differ only in ASCII case: OSD and manifest names are read
/// case-insensitively, so `GUID="a" GUId="b"` is ambiguous, and writing
/// the model back would give two `GUID` attributes, which is not XML.
pub(crate) fn refuse_case_duplicates(root: &Element) -> Result<(), Error> {
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        for (i, a) in e.attributes.iter().enumerate() {
            if e.attributes[..i]
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(&a.name))
            {
                let (line, column) = e.position();
                return Err(Error::invalid(format!(
                    "{} at line {line}, column {column}: attribute `{}` is given twice (names are case-insensitive)",
                    e.name, a.name
                )));
            }
        }
        stack.extend(e.children.iter().filter_map(|n| match n {
            Node::Element(c) => Some(c),
            _ => None,
        }));
    }
    Ok(())
}

/// Takes the known parts out of a parsed element; what is left becomes
/// [`Extra`].
pub(crate) struct Take {
    pub(crate) name: String,
    line: u32,
    column: u32,
    attributes: Vec<Attribute>,
    children: Vec<Node>,
}

impl Take {
    pub(crate) fn new(e: Element) -> Self {
        let (line, column) = e.position();
        Take {
            name: e.name,
            line,
            column,
            attributes: e.attributes,
            children: e.children,
        }
    }

    pub(crate) fn error(&self, msg: impl std::fmt::Display) -> Error {
        if self.line == 0 {
            Error::invalid(format!("{}: {msg}", self.name))
        } else {
            Error::invalid(format!(
                "{} at line {}, column {}: {msg}",
                self.name, self.line, self.column
            ))
        }
    }

    pub(crate) fn attr(&mut self, name: &str) -> Option<String> {
        let i = self
            .attributes
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(name))?;
        Some(self.attributes.remove(i).value)
    }

    pub(crate) fn bool_attr(&mut self, name: &str) -> Result<Option<bool>, Error> {
        match self.attr(name) {
            None => Ok(None),
            Some(v) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| self.error(format_args!("{name}=\"{v}\" is not TRUE or FALSE"))),
        }
    }

    pub(crate) fn num_attr<T: std::str::FromStr>(
        &mut self,
        name: &str,
    ) -> Result<Option<T>, Error> {
        match self.attr(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.error(format_args!("{name}=\"{v}\" is not a whole number"))),
        }
    }

    /// The first child element called `name`.
    pub(crate) fn child(&mut self, name: &str) -> Option<Element> {
        let i = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.is_named(name)))?;
        match self.children.remove(i) {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    /// Every child element called `name`.
    pub(crate) fn children(&mut self, name: &str) -> Vec<Element> {
        let mut out = Vec::new();
        let mut rest = Vec::with_capacity(self.children.len());
        for n in std::mem::take(&mut self.children) {
            match n {
                Node::Element(e) if e.is_named(name) => out.push(e),
                n => rest.push(n),
            }
        }
        self.children = rest;
        out
    }

    /// Every child element, whatever its name (comments and text stay).
    pub(crate) fn all_elements(&mut self) -> Vec<Element> {
        let mut out = Vec::new();
        let mut rest = Vec::new();
        for n in std::mem::take(&mut self.children) {
            match n {
                Node::Element(e) => out.push(e),
                n => rest.push(n),
            }
        }
        self.children = rest;
        out
    }

    /// The text children, taken out and joined.
    pub(crate) fn text(&mut self) -> String {
        let mut s = String::new();
        self.children.retain(|n| match n {
            Node::Text(t) => {
                s.push_str(t);
                false
            }
            _ => true,
        });
        s
    }

    pub(crate) fn finish(self) -> Extra {
        Extra {
            attributes: self.attributes,
            children: self.children,
        }
    }
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("TRUE") {
        Some(true)
    } else if v.eq_ignore_ascii_case("FALSE") {
        Some(false)
    } else {
        None
    }
}

/// Builds an element from known parts, then the extra ones.
pub(crate) struct Build(Element);

impl Build {
    pub(crate) fn new(name: &str) -> Self {
        Build(Element::new(name))
    }

    pub(crate) fn attr(mut self, name: &str, v: Option<&str>) -> Self {
        if let Some(v) = v {
            self.0.attributes.push(Attribute::new(name, v));
        }
        self
    }

    pub(crate) fn bool_attr(self, name: &str, v: Option<bool>) -> Self {
        self.attr(name, v.map(|b| if b { "TRUE" } else { "FALSE" }))
    }

    pub(crate) fn num_attr<T: ToString>(self, name: &str, v: Option<T>) -> Self {
        let s = v.map(|n| n.to_string());
        self.attr(name, s.as_deref())
    }

    pub(crate) fn child(mut self, e: Option<Element>) -> Self {
        if let Some(e) = e {
            self.0.children.push(Node::Element(e));
        }
        self
    }

    pub(crate) fn children(mut self, es: impl IntoIterator<Item = Element>) -> Self {
        self.0.children.extend(es.into_iter().map(Node::Element));
        self
    }

    pub(crate) fn text(mut self, t: &str) -> Self {
        if !t.is_empty() {
            self.0.children.push(Node::Text(t.to_owned()));
        }
        self
    }

    pub(crate) fn extra(mut self, x: &Extra) -> Element {
        self.0.attributes.extend(x.attributes.iter().cloned());
        self.0.children.extend(x.children.iter().cloned());
        self.0
    }
}

impl Text {
    pub(crate) fn read(e: Element) -> Text {
        let mut t = Take::new(e);
        let value = t.text();
        Text {
            value,
            extra: t.finish(),
        }
    }

    pub(crate) fn write(&self, name: &str) -> Element {
        Build::new(name).text(&self.value).extra(&self.extra)
    }
}

impl<T> List<T> {
    pub(crate) fn read(
        e: Element,
        item: &str,
        f: impl Fn(Element) -> Result<T, Error>,
    ) -> Result<List<T>, Error> {
        let mut t = Take::new(e);
        let items = t
            .children(item)
            .into_iter()
            .map(f)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(List {
            items,
            extra: t.finish(),
        })
    }

    pub(crate) fn write(&self, name: &str, f: impl Fn(&T) -> Element) -> Element {
        Build::new(name)
            .children(self.items.iter().map(f))
            .extra(&self.extra)
    }
}
