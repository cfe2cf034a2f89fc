//! A small, bounded XML element tree: the generic layer under the typed
//! OSD and manifest models, so that elements and attributes this crate
//! does not know survive a read-write round trip.
//!
//! Parsing is strict about well-formedness (quick-xml checks it) and
//! hostile input: a document type declaration is refused outright (so no
//! entity is ever defined, let alone expanded), only the five predefined
//! entities and character references are resolved, and every size that
//! could make memory grow — input bytes, nesting depth, nodes, attribute
//! and text lengths — is checked against [`Limits`] before it is stored.
//! Errors name the line and column (1-based, columns in characters).

use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};

use crate::error::Error;

/// Bounds on what a parser accepts; every one is checked before the
/// memory it guards is allocated.
///
/// The defaults are generous for real descriptors (an OSD is a few KiB)
/// and keep the worst case of hostile input to tens of MiB.
///
/// ```
/// use sft::publish::Limits;
/// let tight = Limits { max_depth: 4, ..Limits::default() };
/// let e = sft::publish::Element::parse("<A><B><C><D><E/></D></C></B></A>", &tight).unwrap_err();
/// assert!(e.to_string().contains("nested deeper than 4"), "{e}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of input (after any UTF-16 decoding).
    pub max_input: usize,
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most nodes in total: elements, attributes, text runs and comments.
    pub max_nodes: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
    /// Longest attribute value, in bytes as written.
    pub max_attribute_len: usize,
    /// Longest text run (or comment), in bytes as written.
    pub max_text_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input: 4 << 20,
            max_depth: 64,
            max_nodes: 200_000,
            max_attributes: 256,
            max_attribute_len: 64 << 10,
            max_text_len: 1 << 20,
        }
    }
}

/// One attribute: its name and its unescaped value.
///
/// ```
/// use sft::publish::Attribute;
/// let a = Attribute::new("HREF", "rtsp://server/app.sft");
/// assert_eq!(a.name, "HREF");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The name as written.
    pub name: String,
    /// The value, entities resolved.
    pub value: String,
}

impl Attribute {
    /// An attribute.
    ///
    /// ```
    /// let a = sft::publish::Attribute::new("NAME", "Editor");
    /// assert_eq!(a.value, "Editor");
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A child of an element.
///
/// ```
/// use sft::publish::{Element, Node};
/// let e = Element::parse("<A>x<!--c--><B/></A>", &Default::default()).unwrap();
/// assert!(matches!(&e.children[0], Node::Text(t) if t == "x"));
/// assert!(matches!(&e.children[1], Node::Comment(c) if c == "c"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (entities resolved, CDATA merged in). Whitespace-only
    /// runs between child elements are not kept.
    Text(String),
    /// A comment's content.
    Comment(String),
}

/// An XML element: name, attributes in document order, children.
///
/// ```
/// use sft::publish::Element;
/// let e = Element::parse(r#"<CODEBASE HREF="a&amp;b"/>"#, &Default::default())?;
/// assert_eq!(e.attribute("href"), Some("a&b"));
/// assert_eq!(e.to_xml(), "<CODEBASE HREF=\"a&amp;b\"/>\n");
/// # Ok::<(), sft::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// The element's name as written.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<Attribute>,
    /// Children in document order.
    pub children: Vec<Node>,
    line: u32,
    column: u32,
}

impl PartialEq for Element {
    /// Equal names, attributes and children; where the element was read
    /// from does not count.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.attributes == other.attributes
            && self.children == other.children
    }
}

impl Eq for Element {}

impl Element {
    /// An empty element named `name`.
    ///
    /// ```
    /// let e = sft::publish::Element::new("OS");
    /// assert_eq!(e.to_xml(), "<OS/>\n");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ..Element::default()
        }
    }

    /// The line and column (1-based) of the element's start tag, if it was
    /// parsed; `(0, 0)` for an element built in code.
    ///
    /// ```
    /// let e = sft::publish::Element::parse("<A>\n  <B/></A>", &Default::default()).unwrap();
    /// let sft::publish::Node::Element(b) = &e.children[0] else { unreachable!() };
    /// assert_eq!(b.position(), (2, 3));
    /// ```
    pub fn position(&self) -> (u32, u32) {
        (self.line, self.column)
    }

    /// Whether this element's name is `name`, ignoring ASCII case.
    ///
    /// ```
    /// assert!(sft::publish::Element::new("SoftPkg").is_named("SOFTPKG"));
    /// ```
    pub fn is_named(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value of the first attribute called `name` (ASCII case ignored).
    ///
    /// ```
    /// let e = sft::publish::Element::parse(r#"<OS VALUE="Win7"/>"#, &Default::default()).unwrap();
    /// assert_eq!(e.attribute("VALUE"), Some("Win7"));
    /// assert_eq!(e.attribute("OTHER"), None);
    /// ```
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_str())
    }

    /// The child elements, in order.
    ///
    /// ```
    /// let e = sft::publish::Element::parse("<A><B/>t<C/></A>", &Default::default()).unwrap();
    /// assert_eq!(e.elements().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["B", "C"]);
    /// ```
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// All text children joined (comments and child elements skipped).
    ///
    /// ```
    /// let e = sft::publish::Element::parse("<T>a &lt; b</T>", &Default::default()).unwrap();
    /// assert_eq!(e.text(), "a < b");
    /// ```
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Parse a document whose root is this element. The input must already
    /// be text; see [`decode`] for bytes (BOM, UTF-16).
    ///
    /// ```
    /// use sft::publish::Element;
    /// let e = Element::parse("<A>\n<B></A>", &Default::default()).unwrap_err();
    /// assert!(e.to_string().contains("line 2"), "{e}");
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming the line
    /// and column for malformed XML, a DTD, an unknown entity, or input
    /// beyond `limits`.
    pub fn parse(text: &str, limits: &Limits) -> Result<Element, Error> {
        Parser::new(text, limits).run()
    }

    /// The element as an XML document fragment: two-space indentation for
    /// element-only content, text kept exactly, a final newline.
    ///
    /// ```
    /// let e = sft::publish::Element::parse("<A><B>x</B></A>", &Default::default()).unwrap();
    /// assert_eq!(e.to_xml(), "<A>\n  <B>x</B>\n</A>\n");
    /// ```
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        write_element(&mut out, self, 0);
        out
    }
}

/// Bytes to text: a UTF-8 BOM is dropped, UTF-16 with a BOM (either byte
/// order) is decoded; anything else must be UTF-8. Checks
/// [`Limits::max_input`] first.
///
/// ```
/// use sft::publish::{Limits, decode};
/// let utf16: Vec<u8> = [0xFF, 0xFE].into_iter()
///     .chain("<A/>".encode_utf16().flat_map(u16::to_le_bytes)).collect();
/// assert_eq!(decode(&utf16, &Limits::default())?, "<A/>");
/// # Ok::<(), sft::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`](crate::Error::InvalidInput) for input over the
/// limit or text that is not valid in its encoding.
pub fn decode<'a>(bytes: &'a [u8], limits: &Limits) -> Result<std::borrow::Cow<'a, str>, Error> {
    if bytes.len() > limits.max_input {
        return Err(Error::invalid(format!(
            "XML input of {} bytes exceeds the limit of {} bytes",
            bytes.len(),
            limits.max_input
        )));
    }
    let utf16 = |be: bool, body: &[u8]| -> Result<String, Error> {
        if !body.len().is_multiple_of(2) {
            return Err(Error::invalid(
                "UTF-16 XML input has an odd number of bytes",
            ));
        }
        let units = body.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map_err(|_| Error::invalid("UTF-16 XML input is not valid UTF-16"))
    };
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Ok(utf16(false, rest)?.into());
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Ok(utf16(true, rest)?.into());
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, Error> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.into()),
        Err(e) => {
            let (line, col) = line_col(bytes, e.valid_up_to());
            Err(Error::invalid(format!(
                "XML input is not UTF-8 (line {line}, column {col}); save it as UTF-8 or UTF-16 with a BOM"
            )))
        }
    }
}

/// 1-based line and column (in characters) of byte `pos` of `bytes`.
fn line_col(bytes: &[u8], pos: usize) -> (u32, u32) {
    let head = bytes.get(..pos).unwrap_or(bytes);
    let line = head.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = head[start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

struct Parser<'a> {
    text: &'a str,
    limits: &'a Limits,
    nodes: usize,
    stack: Vec<Element>,
    /// Text collected for the innermost open element.
    pending: String,
    root: Option<Element>,
    /// Incremental position tracking (element starts only move forward):
    /// the byte offset reached and its line and column.
    cursor: (usize, u32, u32),
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, limits: &'a Limits) -> Self {
        Parser {
            text,
            limits,
            nodes: 0,
            stack: Vec::new(),
            pending: String::new(),
            root: None,
            cursor: (0, 1, 1),
        }
    }

    /// Line and column of byte `pos`, in time proportional to the bytes
    /// since the last call (falls back to a scan if `pos` moved back).
    fn position(&mut self, pos: usize) -> (u32, u32) {
        let bytes = self.text.as_bytes();
        let pos = pos.min(bytes.len());
        let (from, mut line, mut col) = self.cursor;
        if pos < from {
            return line_col(bytes, pos);
        }
        for &b in &bytes[from..pos] {
            if b == b'\n' {
                line = line.saturating_add(1);
                col = 1;
            } else if (b & 0xC0) != 0x80 {
                col = col.saturating_add(1);
            }
        }
        self.cursor = (pos, line, col);
        (line, col)
    }

    fn err_at(&self, pos: u64, msg: impl std::fmt::Display) -> Error {
        let pos = usize::try_from(pos).unwrap_or(usize::MAX);
        let (line, col) = line_col(self.text.as_bytes(), pos);
        Error::invalid(format!("XML error at line {line}, column {col}: {msg}"))
    }

    fn count(&mut self, n: usize, pos: u64) -> Result<(), Error> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(self.err_at(
                pos,
                format_args!("more than {} nodes", self.limits.max_nodes),
            ));
        }
        Ok(())
    }

    fn run(mut self) -> Result<Element, Error> {
        if self.text.len() > self.limits.max_input {
            return Err(Error::invalid(format!(
                "XML input of {} bytes exceeds the limit of {} bytes",
                self.text.len(),
                self.limits.max_input
            )));
        }
        let mut reader = quick_xml::Reader::from_str(self.text);
        reader.config_mut().check_end_names = true;
        loop {
            let start = reader.buffer_position();
            let event = match reader.read_event() {
                Ok(e) => e,
                Err(e) => return Err(self.err_at(reader.error_position(), e)),
            };
            match event {
                Event::Decl(_) | Event::PI(_) => {}
                Event::DocType(_) => {
                    return Err(self.err_at(
                        start,
                        "document type declarations are not allowed (no DTD or entity processing)",
                    ));
                }
                Event::Start(e) => {
                    self.flush_text(start)?;
                    let el = self.open(&e, start)?;
                    self.stack.push(el);
                }
                Event::Empty(e) => {
                    self.flush_text(start)?;
                    let el = self.open(&e, start)?;
                    self.close(el, start)?;
                }
                Event::End(_) => {
                    self.flush_text(start)?;
                    let Some(el) = self.stack.pop() else {
                        return Err(self.err_at(start, "end tag without a start tag"));
                    };
                    self.close(el, start)?;
                }
                Event::Text(t) => {
                    let s = t.xml10_content().map_err(|e| self.err_at(start, e))?;
                    self.push_text(&s, start)?;
                }
                Event::CData(t) => {
                    let s = t.xml10_content().map_err(|e| self.err_at(start, e))?;
                    self.push_text(&s, start)?;
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.decode().map_err(|e| self.err_at(start, e))?;
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => s.to_owned(),
                                None => {
                                    return Err(self.err_at(
                                        start,
                                        format_args!(
                                            "unknown entity `&{name};` (only the five XML entities and character references are accepted)"
                                        ),
                                    ));
                                }
                            }
                        }
                        Err(e) => return Err(self.err_at(start, e)),
                    };
                    self.push_text(&resolved, start)?;
                }
                Event::Comment(c) => {
                    self.flush_text(start)?;
                    let s = c.decode().map_err(|e| self.err_at(start, e))?;
                    if s.len() > self.limits.max_text_len {
                        return Err(self.err_at(
                            start,
                            format_args!("comment longer than {} bytes", self.limits.max_text_len),
                        ));
                    }
                    if let Some(parent) = self.stack.last_mut() {
                        parent.children.push(Node::Comment(s.into_owned()));
                        self.count(1, start)?;
                    }
                }
                Event::Eof => {
                    let end = reader.buffer_position();
                    if let Some(open) = self.stack.last() {
                        return Err(self.err_at(
                            end,
                            format_args!("end of input inside element `{}`", open.name),
                        ));
                    }
                    return self
                        .root
                        .take()
                        .ok_or_else(|| self.err_at(end, "no root element"));
                }
            }
        }
    }

    fn push_text(&mut self, s: &str, pos: u64) -> Result<(), Error> {
        if self.stack.is_empty() {
            if s.trim().is_empty() {
                return Ok(());
            }
            return Err(self.err_at(pos, "text outside the root element"));
        }
        if self.pending.len().saturating_add(s.len()) > self.limits.max_text_len {
            return Err(self.err_at(
                pos,
                format_args!("text longer than {} bytes", self.limits.max_text_len),
            ));
        }
        self.pending.push_str(s);
        Ok(())
    }

    /// Attach collected text to the innermost open element.
    fn flush_text(&mut self, pos: u64) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let text = std::mem::take(&mut self.pending);
        if let Some(parent) = self.stack.last_mut() {
            parent.children.push(Node::Text(text));
            self.count(1, pos)?;
        }
        Ok(())
    }

    fn open(&mut self, e: &BytesStart<'_>, pos: u64) -> Result<Element, Error> {
        if self.root.is_some() {
            return Err(self.err_at(pos, "more than one root element"));
        }
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.err_at(
                pos,
                format_args!("elements nested deeper than {}", self.limits.max_depth),
            ));
        }
        let name = std::str::from_utf8(e.name().as_ref())
            .map_err(|_| self.err_at(pos, "element name is not UTF-8"))?
            .to_owned();
        if !is_xml_name(&name) {
            return Err(self.err_at(pos, format_args!("`{name}` is not an element name")));
        }
        let mut attributes = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| self.err_at(pos, err))?;
            if attributes.len() >= self.limits.max_attributes {
                return Err(self.err_at(
                    pos,
                    format_args!(
                        "element `{name}` has more than {} attributes",
                        self.limits.max_attributes
                    ),
                ));
            }
            if a.value.len() > self.limits.max_attribute_len {
                return Err(self.err_at(
                    pos,
                    format_args!(
                        "an attribute of `{name}` is longer than {} bytes",
                        self.limits.max_attribute_len
                    ),
                ));
            }
            let key = std::str::from_utf8(a.key.as_ref())
                .map_err(|_| self.err_at(pos, "attribute name is not UTF-8"))?
                .to_owned();
            if !is_xml_name(&key) {
                return Err(self.err_at(
                    pos,
                    format_args!("`{key}` is not an attribute name (in `{name}`)"),
                ));
            }
            let value = a
                .unescape_value()
                .map_err(|err| self.err_at(pos, format_args!("attribute `{key}`: {err}")))?
                .into_owned();
            attributes.push(Attribute { name: key, value });
        }
        self.count(1 + attributes.len(), pos)?;
        let (line, column) = self.position(usize::try_from(pos).unwrap_or(usize::MAX));
        Ok(Element {
            name,
            attributes,
            children: Vec::new(),
            line,
            column,
        })
    }

    fn close(&mut self, mut el: Element, pos: u64) -> Result<(), Error> {
        // Whitespace-only text between child elements is layout, not data.
        if el
            .children
            .iter()
            .any(|n| matches!(n, Node::Element(_) | Node::Comment(_)))
        {
            el.children
                .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
        }
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(Node::Element(el)),
            None => {
                if self.root.is_some() {
                    return Err(self.err_at(pos, "more than one root element"));
                }
                self.root = Some(el);
            }
        }
        Ok(())
    }
}

/// Escape an attribute value for double quotes; line breaks and tabs as
/// character references so they survive attribute-value normalisation.
pub(crate) fn escape_attr(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn escape_text(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn write_element(out: &mut String, e: &Element, level: usize) {
    indent(out, level);
    write_inline(out, e, level, true);
    out.push('\n');
}

/// Write `e` without leading indentation; `pretty` lays out element-only
/// content one child a line.
fn write_inline(out: &mut String, e: &Element, level: usize, pretty: bool) {
    out.push('<');
    out.push_str(&e.name);
    for a in &e.attributes {
        let _ = write!(out, " {}=\"", a.name);
        escape_attr(out, &a.value);
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    let has_text = e.children.iter().any(|n| matches!(n, Node::Text(_)));
    if pretty && !has_text {
        out.push('\n');
        for n in &e.children {
            match n {
                Node::Element(c) => write_element(out, c, level + 1),
                Node::Comment(c) => {
                    indent(out, level + 1);
                    write_comment(out, c);
                    out.push('\n');
                }
                Node::Text(_) => {}
            }
        }
        indent(out, level);
    } else {
        for n in &e.children {
            match n {
                Node::Element(c) => write_inline(out, c, level, false),
                Node::Comment(c) => write_comment(out, c),
                Node::Text(t) => escape_text(out, t),
            }
        }
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

fn write_comment(out: &mut String, c: &str) {
    out.push_str("<!--");
    // `--` may not appear inside a comment, nor `-` at its end.
    let mut prev_dash = false;
    for ch in c.chars() {
        if ch == '-' && prev_dash {
            out.push(' ');
        }
        prev_dash = ch == '-';
        out.push(ch);
    }
    if prev_dash {
        out.push(' ');
    }
    out.push_str("-->");
}

/// Whether `s` is an XML 1.0 `Name` (production 5): a name-start
/// character, then name characters. quick-xml splits a tag at whitespace
/// without checking the name, so `<\r/>` would otherwise become an
/// element with an empty name that cannot be written back.
fn is_xml_name(s: &str) -> bool {
    let start = |c: char| {
        c.is_ascii_alphabetic()
            || c == '_'
            || c == ':'
            || matches!(c, '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
                | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
                | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
                | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
    };
    let mut chars = s.chars();
    chars.next().is_some_and(start) && chars.all(|c| {
        start(c)
            || c.is_ascii_digit()
            || matches!(c, '-' | '.' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_errors() {
        let e = Element::parse("<A>\n <B x='1' x='2'/></A>", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("line 2, column 2"), "{e}");
        let e = Element::parse("<A></B>", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = Element::parse("<A>&foo;</A>", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("unknown entity"), "{e}");
        let e = Element::parse("<A/><B/>", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("more than one root"), "{e}");
        let e = Element::parse("", &Limits::default()).unwrap_err();
        assert!(e.to_string().contains("no root"), "{e}");
    }

    #[test]
    fn names_are_checked() {
        let l = Limits::default();
        // Found by the `osd` fuzz target: quick-xml reads `<\r\r/>` as an
        // element named "", which was written back as `</>`.
        for bad in [
            "<A><\r\r\r/></A>",
            "<A>< /></A>",
            "<1A/>",
            "<A 1x='1'/>",
            "<A -x='1'/>",
        ] {
            let e = Element::parse(bad, &l).unwrap_err();
            assert!(e.to_string().contains("is not an"), "{bad:?}: {e}");
        }
        for good in ["<A\r/>", "<_a.b-c:d x.y='1'/>", "<\u{C4}\u{3B1}1/>"] {
            let e = Element::parse(good, &l).unwrap();
            let again = Element::parse(&e.to_xml(), &l).unwrap();
            assert_eq!(again.name, e.name, "{good:?}");
        }
    }

    #[test]
    fn text_round_trip() {
        let src = "<A x=\"a&#10;b&quot;\">  <B>t &amp; &#x41;<![CDATA[<c>]]></B><!--n--></A>";
        let e = Element::parse(src, &Limits::default()).unwrap();
        assert_eq!(e.attribute("x"), Some("a\nb\""));
        let b = e.elements().next().unwrap();
        assert_eq!(b.text(), "t & A<c>");
        let again = Element::parse(&e.to_xml(), &Limits::default()).unwrap();
        assert_eq!(again, e);
    }

    #[test]
    fn comment_sanitised() {
        let mut e = Element::new("A");
        e.children.push(Node::Comment("a--b-".into()));
        let back = Element::parse(&e.to_xml(), &Limits::default()).unwrap();
        assert!(matches!(&back.children[0], Node::Comment(c) if c == "a- -b- "));
    }
}
