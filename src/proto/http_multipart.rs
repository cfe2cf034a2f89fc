//! `Content-Range` values and `multipart/byteranges` bodies: pure parsing,
//! no I/O, no allocation per byte, every malformed input a clear
//! [`MultipartError`] value (never a panic).
//!
//! - [`parse_content_range`]: a `Content-Range` response value,
//!   `bytes first-last/complete`, `bytes first-last/*` or `bytes */complete`
//!   (RFC 9110 §14.4).
//! - [`byteranges_boundary`]: the boundary of a
//!   `multipart/byteranges; boundary=…` `Content-Type`, or `None` for any
//!   other media type.
//! - [`ByteRangesParser`]: an incremental (streaming) parser of a
//!   `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1), fed
//!   whatever bytes have arrived, in the style of `httparse`: each
//!   [`ByteRangesParser::feed`] call returns how many input bytes it used
//!   and one [`Step`]. Part data is handed back as sub-slices of the input
//!   (zero-copy); the parser keeps no buffer of its own, so memory is
//!   bounded by the caller's buffer, which needs to hold at most
//!   [`MIN_BUFFER`] unconsumed bytes at a time.
//!
//! The length of each part's data is taken from its `Content-Range`
//! header, not found by searching for the boundary, so the data is never
//! scanned; the delimiter that must follow it is then checked exactly,
//! which catches a server whose body disagrees with its header.
//!
//! Limits (each exceeded limit is an error): boundary ≤ 70 bytes (RFC
//! 2046), a preamble before the first boundary ≤ [`MAX_PREAMBLE`] bytes, a
//! part-header line ≤ [`MAX_HEADER_LINE`] bytes, ≤ [`MAX_HEADER_LINES`]
//! header lines and ≤ [`MAX_PART_HEADER_BYTES`] header bytes per part.
//!
//! ```
//! use sft::proto::http_multipart::{byteranges_boundary, ByteRangesParser, Step};
//!
//! let boundary = byteranges_boundary(b"multipart/byteranges; boundary=XYZ").unwrap().unwrap();
//! let body = b"\r\n--XYZ\r\nContent-Type: application/octet-stream\r\n\
//!              Content-Range: bytes 0-2/10\r\n\r\nabc\r\n--XYZ\r\n\
//!              Content-Range: bytes 7-9/10\r\n\r\nhij\r\n--XYZ--\r\n";
//! let mut parser = ByteRangesParser::new(boundary).unwrap();
//! let (mut pos, mut got) = (0, Vec::new());
//! loop {
//!     let (used, step) = parser.feed(&body[pos..]).unwrap();
//!     pos += used;
//!     match step {
//!         Step::Part(p) => got.push((p.first, Vec::new())),
//!         Step::Data(d) => got.last_mut().unwrap().1.extend_from_slice(d),
//!         Step::Done => break,
//!         Step::NeedMore => unreachable!("the whole body was given"),
//!     }
//! }
//! assert_eq!(got, [(0, b"abc".to_vec()), (7, b"hij".to_vec())]);
//! parser.finish().unwrap();
//! ```

use core::fmt;
use core::ops::Range;

/// Longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY_LEN: usize = 70;
/// Longest part-header (or preamble) line, terminator included.
pub const MAX_HEADER_LINE: usize = 1024;
/// Most header lines in one part.
pub const MAX_HEADER_LINES: usize = 16;
/// Most header bytes in one part, terminators included.
pub const MAX_PART_HEADER_BYTES: usize = 4096;
/// Most bytes before the first boundary.
pub const MAX_PREAMBLE: usize = 1024;
/// Most transport padding (spaces and tabs) after a boundary.
const MAX_PADDING: usize = 64;
/// The most unconsumed input [`ByteRangesParser::feed`] may ask to see
/// again with more bytes after it ([`Step::NeedMore`]): a caller's buffer
/// of at least this many bytes always makes progress.
pub const MIN_BUFFER: usize = MAX_HEADER_LINE + 1;

/// Why a `Content-Range` value, a `Content-Type` or a multipart body was
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MultipartError {
    /// A `Content-Range` value is malformed (unit, digits, order, bounds).
    BadContentRange,
    /// A `multipart/byteranges` type without a `boundary` parameter.
    MissingBoundary,
    /// A boundary that is empty, longer than 70 bytes, or has characters
    /// RFC 2046 does not allow.
    BadBoundary,
    /// A `Content-Type` value that is not a valid media type.
    BadContentType,
    /// More than [`MAX_PREAMBLE`] bytes before the first boundary.
    PreambleTooLong,
    /// A header line longer than [`MAX_HEADER_LINE`].
    HeaderLineTooLong,
    /// More than [`MAX_HEADER_LINES`] header lines in a part.
    TooManyHeaders,
    /// More than [`MAX_PART_HEADER_BYTES`] of headers in a part.
    HeadersTooLarge,
    /// A part header line that is not `name: value`.
    BadHeaderLine,
    /// A part without a `Content-Range` header.
    MissingContentRange,
    /// A part with two `Content-Range` headers.
    DuplicateContentRange,
    /// The bytes after a part's data are not the boundary delimiter.
    BadDelimiter,
    /// The closing delimiter came before any part.
    NoParts,
    /// The body ended before the closing delimiter.
    Truncated,
}

impl fmt::Display for MultipartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MultipartError::BadContentRange => "malformed Content-Range",
            MultipartError::MissingBoundary => "multipart/byteranges without a boundary",
            MultipartError::BadBoundary => "invalid multipart boundary",
            MultipartError::BadContentType => "malformed Content-Type",
            MultipartError::PreambleTooLong => "multipart preamble too long",
            MultipartError::HeaderLineTooLong => "multipart part header line too long",
            MultipartError::TooManyHeaders => "too many multipart part headers",
            MultipartError::HeadersTooLarge => "multipart part headers too large",
            MultipartError::BadHeaderLine => "malformed multipart part header line",
            MultipartError::MissingContentRange => "multipart part without Content-Range",
            MultipartError::DuplicateContentRange => {
                "multipart part with two Content-Range headers"
            }
            MultipartError::BadDelimiter => "multipart part not followed by the boundary",
            MultipartError::NoParts => "multipart body without parts",
            MultipartError::Truncated => "multipart body ended early",
        })
    }
}

impl core::error::Error for MultipartError {}

/// A parsed `Content-Range` response value.
///
/// ```
/// use sft::proto::http_multipart::{parse_content_range, ContentRange};
///
/// let r = parse_content_range(b"bytes 100-199/1000").unwrap();
/// assert_eq!(r, ContentRange::Satisfied { first: 100, last: 199, complete: Some(1000) });
/// assert_eq!(r.range(), Some(100..200));
/// assert_eq!(parse_content_range(b"bytes */1000").unwrap().complete_length(), Some(1000));
/// assert!(parse_content_range(b"bytes 5-4/10").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentRange {
    /// `bytes first-last/complete`: bytes `first..=last` of a
    /// representation of `complete` bytes (`None` for `*`, unknown).
    Satisfied {
        /// First byte, inclusive.
        first: u64,
        /// Last byte, inclusive (`first <= last`, and `last < complete`).
        last: u64,
        /// The complete length, if the server said.
        complete: Option<u64>,
    },
    /// `bytes */complete`, sent with 416: no range, the complete length.
    Unsatisfied {
        /// The complete length.
        complete: u64,
    },
}

impl ContentRange {
    /// The bytes covered, as a half-open range (`None` for
    /// [`ContentRange::Unsatisfied`]).
    ///
    /// ```
    /// use sft::proto::http_multipart::ContentRange;
    /// let r = ContentRange::Satisfied { first: 0, last: 0, complete: None };
    /// assert_eq!(r.range(), Some(0..1));
    /// ```
    pub fn range(&self) -> Option<Range<u64>> {
        match *self {
            // parse_content_range guarantees last < u64::MAX.
            ContentRange::Satisfied { first, last, .. } => Some(first..last.saturating_add(1)),
            ContentRange::Unsatisfied { .. } => None,
        }
    }

    /// The complete length of the representation, if known.
    ///
    /// ```
    /// use sft::proto::http_multipart::parse_content_range;
    /// assert_eq!(parse_content_range(b"bytes 0-9/*").unwrap().complete_length(), None);
    /// assert_eq!(parse_content_range(b"bytes 0-9/10").unwrap().complete_length(), Some(10));
    /// ```
    pub fn complete_length(&self) -> Option<u64> {
        match *self {
            ContentRange::Satisfied { complete, .. } => complete,
            ContentRange::Unsatisfied { complete } => Some(complete),
        }
    }
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// A decimal number of 1 to 20 digits, no sign, no overflow.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parse a `Content-Range` response value (RFC 9110 §14.4), strictly:
/// the unit is `bytes` (any case), numbers are plain decimal without
/// overflow, `first <= last`, and `last < complete` when the complete
/// length is given. Surrounding spaces and tabs are ignored.
///
/// ```
/// use sft::proto::http_multipart::{parse_content_range, ContentRange, MultipartError};
///
/// assert_eq!(
///     parse_content_range(b" Bytes 0-0/1 ").unwrap(),
///     ContentRange::Satisfied { first: 0, last: 0, complete: Some(1) }
/// );
/// assert_eq!(parse_content_range(b"bytes 0-10/10"), Err(MultipartError::BadContentRange));
/// assert_eq!(parse_content_range(b"items 0-1/10"), Err(MultipartError::BadContentRange));
/// ```
///
/// # Errors
/// [`MultipartError::BadContentRange`] for anything else.
pub fn parse_content_range(value: &[u8]) -> Result<ContentRange, MultipartError> {
    const BAD: MultipartError = MultipartError::BadContentRange;
    let v = trim_ows(value);
    let (unit, rest) = v.split_at_checked(5).ok_or(BAD)?;
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Err(BAD);
    }
    // At least one space between the unit and the range.
    if rest.first() != Some(&b' ') {
        return Err(BAD);
    }
    let rest = trim_ows(rest);
    let slash = rest.iter().position(|&b| b == b'/').ok_or(BAD)?;
    let (range, complete) = (&rest[..slash], &rest[slash + 1..]);
    if range == b"*" {
        let complete = parse_u64(complete).ok_or(BAD)?;
        return Ok(ContentRange::Unsatisfied { complete });
    }
    let dash = range.iter().position(|&b| b == b'-').ok_or(BAD)?;
    let first = parse_u64(&range[..dash]).ok_or(BAD)?;
    let last = parse_u64(&range[dash + 1..]).ok_or(BAD)?;
    if first > last || last == u64::MAX {
        return Err(BAD);
    }
    let complete = if complete == b"*" {
        None
    } else {
        let c = parse_u64(complete).ok_or(BAD)?;
        if last >= c {
            return Err(BAD);
        }
        Some(c)
    };
    Ok(ContentRange::Satisfied {
        first,
        last,
        complete,
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 2046 `bchars`: what a boundary may contain (space, but not last).
fn is_bchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b)
}

fn check_boundary(b: &[u8]) -> Result<(), MultipartError> {
    if b.is_empty()
        || b.len() > MAX_BOUNDARY_LEN
        || !b.iter().all(|&c| is_bchar(c))
        || b.last() == Some(&b' ')
    {
        return Err(MultipartError::BadBoundary);
    }
    Ok(())
}

/// The boundary of a `multipart/byteranges` `Content-Type` value, or
/// `None` if the media type is something else (a single-part 206 carries
/// the package's own type). The type, subtype and parameter names match
/// in any case; the boundary may be a token or a quoted string.
///
/// ```
/// use sft::proto::http_multipart::byteranges_boundary;
///
/// assert_eq!(
///     byteranges_boundary(b"multipart/byteranges; boundary=00000000000000000001").unwrap(),
///     Some(&b"00000000000000000001"[..])
/// );
/// assert_eq!(
///     byteranges_boundary(b"Multipart/ByteRanges;charset=x; BOUNDARY=\"a b\"").unwrap(),
///     Some(&b"a b"[..])
/// );
/// assert_eq!(byteranges_boundary(b"application/octet-stream").unwrap(), None);
/// assert!(byteranges_boundary(b"multipart/byteranges").is_err());
/// ```
///
/// # Errors
/// [`MultipartError::BadContentType`] for a malformed value,
/// [`MultipartError::MissingBoundary`] or [`MultipartError::BadBoundary`]
/// for a `multipart/byteranges` type without a usable boundary.
pub fn byteranges_boundary(content_type: &[u8]) -> Result<Option<&[u8]>, MultipartError> {
    const BAD: MultipartError = MultipartError::BadContentType;
    let v = trim_ows(content_type);
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    let media = trim_ows(&v[..end]);
    let slash = media.iter().position(|&b| b == b'/').ok_or(BAD)?;
    let (ty, sub) = (&media[..slash], &media[slash + 1..]);
    if ty.is_empty() || sub.is_empty() || !ty.iter().chain(sub).all(|&b| is_tchar(b)) {
        return Err(BAD);
    }
    if !(ty.eq_ignore_ascii_case(b"multipart") && sub.eq_ignore_ascii_case(b"byteranges")) {
        return Ok(None);
    }
    let mut rest = &v[end..];
    let mut boundary = None;
    // Parameters: *( OWS ";" OWS [ name "=" value ] ).
    while let [b';', tail @ ..] = rest {
        let tail = trim_ows(tail);
        if tail.is_empty() {
            break;
        }
        if tail.first() == Some(&b';') {
            rest = tail;
            continue;
        }
        let eq = tail.iter().position(|&b| b == b'=').ok_or(BAD)?;
        let name = &tail[..eq];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(BAD);
        }
        let after = &tail[eq + 1..];
        let (value, next) = if let [b'"', q @ ..] = after {
            let close = q.iter().position(|&b| b == b'"').ok_or(BAD)?;
            let value = &q[..close];
            if value.contains(&b'\\') {
                // Quoted pairs cannot occur in a valid boundary (bchars
                // have no backslash), so there is nothing to unescape.
                if name.eq_ignore_ascii_case(b"boundary") {
                    return Err(MultipartError::BadBoundary);
                }
            }
            (value, &q[close + 1..])
        } else {
            let n = after.iter().position(|&b| b == b';').unwrap_or(after.len());
            let value = trim_ows(&after[..n]);
            if value.is_empty() || !value.iter().all(|&b| is_tchar(b)) {
                return Err(BAD);
            }
            (value, &after[n..])
        };
        if name.eq_ignore_ascii_case(b"boundary") {
            if boundary.is_some() {
                return Err(MultipartError::BadBoundary);
            }
            check_boundary(value)?;
            boundary = Some(value);
        }
        rest = trim_ows(next);
    }
    if !rest.is_empty() {
        return Err(BAD);
    }
    boundary.map(Some).ok_or(MultipartError::MissingBoundary)
}

/// The start of one part of a `multipart/byteranges` body: the bytes its
/// data covers (from its `Content-Range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartRange {
    /// First byte, inclusive.
    pub first: u64,
    /// Last byte, inclusive.
    pub last: u64,
    /// The complete length the part's `Content-Range` states, if any.
    pub complete: Option<u64>,
}

impl PartRange {
    /// The bytes covered, half-open.
    ///
    /// ```
    /// use sft::proto::http_multipart::PartRange;
    /// let p = PartRange { first: 10, last: 19, complete: Some(100) };
    /// assert_eq!(p.range(), 10..20);
    /// ```
    pub fn range(&self) -> Range<u64> {
        self.first..self.last.saturating_add(1)
    }
}

/// What one [`ByteRangesParser::feed`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Feed again with more bytes appended to the unconsumed ones (the
    /// unconsumed tail is then shorter than [`MIN_BUFFER`]).
    NeedMore,
    /// A new part starts; its data follows as [`Step::Data`].
    Part(PartRange),
    /// The next bytes of the current part's data, in order (a sub-slice
    /// of the input).
    Data(&'a [u8]),
    /// The closing delimiter was seen; anything after it (the epilogue)
    /// is consumed and ignored.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first boundary line.
    Preamble,
    /// In a part's header lines.
    Headers,
    /// In a part's data, `remaining` bytes to go.
    Body,
    /// Expecting `CRLF "--" boundary` after a part's data.
    Delimiter,
    /// After a boundary: `"--"` (close) or padding and CRLF (next part).
    AfterBoundary,
    /// After the close delimiter.
    Done,
}

/// The incremental `multipart/byteranges` parser; see the
/// [module docs](self) for the protocol and an example.
#[derive(Clone)]
pub struct ByteRangesParser {
    /// `"\r\n--" boundary`.
    delimiter: [u8; MAX_BOUNDARY_LEN + 4],
    delimiter_len: usize,
    state: State,
    preamble: usize,
    header_bytes: usize,
    header_lines: usize,
    part: Option<PartRange>,
    remaining: u64,
    parts: u64,
}

impl fmt::Debug for ByteRangesParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRangesParser")
            .field("state", &self.state)
            .field("parts", &self.parts)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl ByteRangesParser {
    /// A parser for a body with this boundary (as returned by
    /// [`byteranges_boundary`]).
    ///
    /// ```
    /// use sft::proto::http_multipart::ByteRangesParser;
    /// assert!(ByteRangesParser::new(b"0001").is_ok());
    /// assert!(ByteRangesParser::new(b"").is_err());
    /// ```
    ///
    /// # Errors
    /// [`MultipartError::BadBoundary`] if the boundary is not valid per
    /// RFC 2046.
    pub fn new(boundary: &[u8]) -> Result<Self, MultipartError> {
        check_boundary(boundary)?;
        let mut delimiter = [0u8; MAX_BOUNDARY_LEN + 4];
        delimiter[..4].copy_from_slice(b"\r\n--");
        delimiter[4..4 + boundary.len()].copy_from_slice(boundary);
        Ok(ByteRangesParser {
            delimiter,
            delimiter_len: 4 + boundary.len(),
            state: State::Preamble,
            preamble: 0,
            header_bytes: 0,
            header_lines: 0,
            part: None,
            remaining: 0,
            parts: 0,
        })
    }

    /// `"--" boundary`.
    fn dash_boundary(&self) -> &[u8] {
        &self.delimiter[2..self.delimiter_len]
    }

    /// True once the closing delimiter has been seen.
    ///
    /// ```
    /// use sft::proto::http_multipart::ByteRangesParser;
    /// let mut p = ByteRangesParser::new(b"b").unwrap();
    /// p.feed(b"--b\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--b--").unwrap();
    /// assert!(!p.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// How many parts have started so far.
    ///
    /// ```
    /// use sft::proto::http_multipart::ByteRangesParser;
    /// assert_eq!(ByteRangesParser::new(b"b").unwrap().parts(), 0);
    /// ```
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// Bytes of the current part's data not yet returned.
    ///
    /// ```
    /// use sft::proto::http_multipart::{ByteRangesParser, Step};
    /// let mut p = ByteRangesParser::new(b"b").unwrap();
    /// let (n, step) = p.feed(b"--b\r\nContent-Range: bytes 0-9/10\r\n\r\n").unwrap();
    /// assert!(matches!(step, Step::Part(_)));
    /// assert_eq!(p.remaining(), 10);
    /// ```
    pub fn remaining(&self) -> u64 {
        if self.state == State::Body {
            self.remaining
        } else {
            0
        }
    }

    /// Call at the end of the body: `Ok` only if the closing delimiter
    /// was seen.
    ///
    /// ```
    /// use sft::proto::http_multipart::{ByteRangesParser, MultipartError};
    /// let p = ByteRangesParser::new(b"b").unwrap();
    /// assert_eq!(p.finish(), Err(MultipartError::Truncated));
    /// ```
    ///
    /// # Errors
    /// [`MultipartError::Truncated`] otherwise.
    pub fn finish(&self) -> Result<(), MultipartError> {
        if self.is_done() {
            Ok(())
        } else {
            Err(MultipartError::Truncated)
        }
    }

    /// Parse as much of `input` as makes one step; returns the number of
    /// bytes used and the step. Call again with `input[used..]` (plus any
    /// bytes that arrived since) until [`Step::Done`]; on
    /// [`Step::NeedMore`] the unconsumed bytes must be passed again with
    /// more appended. An error is final: the parser must not be fed again.
    ///
    /// ```
    /// use sft::proto::http_multipart::{ByteRangesParser, Step};
    ///
    /// let mut p = ByteRangesParser::new(b"b").unwrap();
    /// // A header line cut in the middle: nothing can be used yet.
    /// assert_eq!(p.feed(b"--b\r\nContent-Ra").unwrap(), (5, Step::NeedMore));
    /// let (n, step) = p.feed(b"Content-Range: bytes 3-4/9\r\n\r\nxy").unwrap();
    /// assert!(matches!(step, Step::Part(r) if r.first == 3 && r.last == 4));
    /// assert_eq!(p.feed(b"xy").unwrap(), (2, Step::Data(b"xy")));
    /// ```
    ///
    /// # Errors
    /// A [`MultipartError`] naming what is wrong with the body.
    pub fn feed<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Step<'a>), MultipartError> {
        let mut pos = 0usize;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Done => return Ok((input.len(), Step::Done)),
                State::Body => {
                    if self.remaining == 0 {
                        self.state = State::Delimiter;
                        continue;
                    }
                    if rest.is_empty() {
                        return Ok((pos, Step::NeedMore));
                    }
                    let n = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    self.remaining -= n as u64;
                    return Ok((pos + n, Step::Data(&rest[..n])));
                }
                State::Delimiter => {
                    // CRLF "--" boundary, exactly: tolerating a bare LF
                    // here would let data one byte short (ending in CR)
                    // pass unnoticed.
                    let want = &self.delimiter[..self.delimiter_len];
                    let n = want.len().min(rest.len());
                    if rest[..n] != want[..n] {
                        return Err(MultipartError::BadDelimiter);
                    }
                    if n < want.len() {
                        return Ok((pos, Step::NeedMore));
                    }
                    pos += n;
                    self.state = State::AfterBoundary;
                }
                State::AfterBoundary => {
                    if rest.starts_with(b"--") {
                        if self.parts == 0 {
                            return Err(MultipartError::NoParts);
                        }
                        self.state = State::Done;
                        return Ok((input.len(), Step::Done));
                    }
                    if rest == b"-" {
                        return Ok((pos, Step::NeedMore));
                    }
                    let Some(nl) = rest.iter().take(MAX_PADDING + 2).position(|&b| b == b'\n')
                    else {
                        if rest.len() > MAX_PADDING + 1 {
                            return Err(MultipartError::BadDelimiter);
                        }
                        if !rest.iter().all(|&b| is_ows(b) || b == b'\r') {
                            return Err(MultipartError::BadDelimiter);
                        }
                        return Ok((pos, Step::NeedMore));
                    };
                    let line = strip_cr(&rest[..nl]);
                    if !line.iter().all(|&b| is_ows(b)) {
                        return Err(MultipartError::BadDelimiter);
                    }
                    pos += nl + 1;
                    self.state = State::Headers;
                    self.header_bytes = 0;
                    self.header_lines = 0;
                    self.part = None;
                }
                State::Preamble => {
                    let Some(nl) = rest.iter().take(MAX_HEADER_LINE).position(|&b| b == b'\n')
                    else {
                        if rest.len() >= MAX_HEADER_LINE {
                            return Err(MultipartError::PreambleTooLong);
                        }
                        // A boundary line with nothing after it yet may
                        // still turn out to be the close delimiter; wait.
                        return Ok((pos, Step::NeedMore));
                    };
                    let line = strip_cr(&rest[..nl]);
                    let dash = self.dash_boundary();
                    if let Some(after) = line.strip_prefix(dash) {
                        if after.starts_with(b"--") {
                            return Err(MultipartError::NoParts);
                        }
                        if !after.iter().all(|&b| is_ows(b)) {
                            return Err(MultipartError::BadDelimiter);
                        }
                        pos += nl + 1;
                        self.state = State::Headers;
                        self.header_bytes = 0;
                        self.header_lines = 0;
                        self.part = None;
                        continue;
                    }
                    self.preamble += nl + 1;
                    if self.preamble > MAX_PREAMBLE {
                        return Err(MultipartError::PreambleTooLong);
                    }
                    pos += nl + 1;
                }
                State::Headers => {
                    let Some(nl) = rest.iter().take(MAX_HEADER_LINE).position(|&b| b == b'\n')
                    else {
                        // Checked in this order so the verdict does not
                        // depend on how the input was cut.
                        let seen = rest.len().min(MAX_HEADER_LINE);
                        if self.header_bytes + seen > MAX_PART_HEADER_BYTES {
                            return Err(MultipartError::HeadersTooLarge);
                        }
                        if rest.len() >= MAX_HEADER_LINE {
                            return Err(MultipartError::HeaderLineTooLong);
                        }
                        return Ok((pos, Step::NeedMore));
                    };
                    self.header_bytes += nl + 1;
                    if self.header_bytes > MAX_PART_HEADER_BYTES {
                        return Err(MultipartError::HeadersTooLarge);
                    }
                    let line = strip_cr(&rest[..nl]);
                    pos += nl + 1;
                    if line.is_empty() {
                        let part = self.part.ok_or(MultipartError::MissingContentRange)?;
                        self.parts += 1;
                        self.remaining = part.last - part.first + 1;
                        self.state = State::Body;
                        return Ok((pos, Step::Part(part)));
                    }
                    self.header_lines += 1;
                    if self.header_lines > MAX_HEADER_LINES {
                        return Err(MultipartError::TooManyHeaders);
                    }
                    let colon = line
                        .iter()
                        .position(|&b| b == b':')
                        .ok_or(MultipartError::BadHeaderLine)?;
                    let name = &line[..colon];
                    // No obs-fold, no space before the colon.
                    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                        return Err(MultipartError::BadHeaderLine);
                    }
                    if name.eq_ignore_ascii_case(b"content-range") {
                        if self.part.is_some() {
                            return Err(MultipartError::DuplicateContentRange);
                        }
                        match parse_content_range(&line[colon + 1..])? {
                            ContentRange::Satisfied {
                                first,
                                last,
                                complete,
                            } => {
                                self.part = Some(PartRange {
                                    first,
                                    last,
                                    complete,
                                })
                            }
                            ContentRange::Unsatisfied { .. } => {
                                return Err(MultipartError::BadContentRange);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `body` in pieces of the given sizes (cycled), the way a
    /// network reader would: a buffer of unconsumed bytes plus arrivals.
    fn parse_chunked(
        boundary: &[u8],
        body: &[u8],
        sizes: &[usize],
    ) -> Result<Vec<(PartRange, Vec<u8>)>, MultipartError> {
        let mut p = ByteRangesParser::new(boundary)?;
        let mut out: Vec<(PartRange, Vec<u8>)> = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0usize;
        let mut i = 0usize;
        loop {
            let (n, step) = p.feed(&buf)?;
            let step_owned = match step {
                Step::Part(r) => {
                    out.push((r, Vec::new()));
                    None
                }
                Step::Data(d) => {
                    out.last_mut().unwrap().1.extend_from_slice(d);
                    None
                }
                Step::Done => Some(true),
                Step::NeedMore => Some(false),
            };
            buf.drain(..n);
            match step_owned {
                Some(true) => {
                    p.finish()?;
                    return Ok(out);
                }
                Some(false) => {
                    if fed == body.len() {
                        p.finish()?;
                        return Ok(out);
                    }
                    let size = sizes[i % sizes.len()].max(1);
                    i += 1;
                    let end = (fed + size).min(body.len());
                    buf.extend_from_slice(&body[fed..end]);
                    fed = end;
                }
                None => {}
            }
        }
    }

    fn nginx_body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"\r\n--00000000000000000001\r\n");
        b.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        b.extend_from_slice(b"Content-Range: bytes 0-9/1048576\r\n\r\n");
        b.extend_from_slice(b"0123456789");
        b.extend_from_slice(b"\r\n--00000000000000000001\r\n");
        b.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        b.extend_from_slice(b"Content-Range: bytes 100-109/1048576\r\n\r\n");
        b.extend_from_slice(b"abcdefghij");
        b.extend_from_slice(b"\r\n--00000000000000000001--\r\n");
        b
    }

    #[test]
    fn nginx_style_body_any_chunking() {
        let body = nginx_body();
        let expect = vec![
            (
                PartRange {
                    first: 0,
                    last: 9,
                    complete: Some(1_048_576),
                },
                b"0123456789".to_vec(),
            ),
            (
                PartRange {
                    first: 100,
                    last: 109,
                    complete: Some(1_048_576),
                },
                b"abcdefghij".to_vec(),
            ),
        ];
        for sizes in [&[1usize][..], &[2], &[3, 7], &[5, 1, 13], &[1000]] {
            assert_eq!(
                parse_chunked(b"00000000000000000001", &body, sizes).unwrap(),
                expect,
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn truncated_anywhere_is_an_error() {
        let body = nginx_body();
        for cut in 0..body.len() - 2 {
            let r = parse_chunked(b"00000000000000000001", &body[..cut], &[7]);
            assert!(r.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn wrong_length_data_is_caught_at_the_delimiter() {
        let body = nginx_body();
        let s = String::from_utf8(body).unwrap();
        let bad = s.replace("0123456789", "012345678");
        assert_eq!(
            parse_chunked(b"00000000000000000001", bad.as_bytes(), &[4]),
            Err(MultipartError::BadDelimiter)
        );
    }

    #[test]
    fn limits() {
        let mut long = b"--b\r\nX-A: ".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_HEADER_LINE + 10));
        assert_eq!(
            parse_chunked(b"b", &long, &[100]),
            Err(MultipartError::HeaderLineTooLong)
        );
        let mut many = b"--b\r\n".to_vec();
        for _ in 0..=MAX_HEADER_LINES {
            many.extend_from_slice(b"X-A: 1\r\n");
        }
        assert_eq!(
            parse_chunked(b"b", &many, &[100]),
            Err(MultipartError::TooManyHeaders)
        );
        let pre = vec![b'x'; MAX_PREAMBLE + 10];
        assert_eq!(
            parse_chunked(b"b", &pre, &[100]),
            Err(MultipartError::PreambleTooLong)
        );
        let mut pre_lines = Vec::new();
        for _ in 0..200 {
            pre_lines.extend_from_slice(b"junk\r\n");
        }
        assert_eq!(
            parse_chunked(b"b", &pre_lines, &[100]),
            Err(MultipartError::PreambleTooLong)
        );
        let mut big = b"--b\r\n".to_vec();
        for _ in 0..MAX_HEADER_LINES {
            big.extend_from_slice(b"X-A: ");
            big.extend(std::iter::repeat_n(b'a', 300));
            big.extend_from_slice(b"\r\n");
        }
        assert_eq!(
            parse_chunked(b"b", &big, &[100]),
            Err(MultipartError::HeadersTooLarge)
        );
    }

    #[test]
    fn header_errors() {
        let cases: &[(&[u8], MultipartError)] = &[
            (b"--b\r\n\r\nxx", MultipartError::MissingContentRange),
            (
                b"--b\r\nContent-Range: bytes 0-0/1\r\ncontent-range: bytes 0-0/1\r\n\r\n",
                MultipartError::DuplicateContentRange,
            ),
            (
                b"--b\r\nContent-Range: bytes */1\r\n\r\n",
                MultipartError::BadContentRange,
            ),
            (b"--b\r\nno colon\r\n\r\n", MultipartError::BadHeaderLine),
            (b"--b\r\n folded: x\r\n\r\n", MultipartError::BadHeaderLine),
            (b"--b--\r\n", MultipartError::NoParts),
            (b"--bx\r\n", MultipartError::BadDelimiter),
            (
                b"--b\r\nContent-Range: bytes 0-0/1\r\n\r\nx\r\n--b junk\r\n",
                MultipartError::BadDelimiter,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse_chunked(b"b", body, &[3]),
                Err(*want),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn lf_only_and_padding_and_epilogue() {
        let body =
            b"preamble line\n--b  \nContent-Range: bytes 5-6/7\n\nxy\r\n--b--\nepilogue junk";
        let got = parse_chunked(b"b", body, &[2]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0.range(), 5..7);
        assert_eq!(got[0].1, b"xy");
    }

    #[test]
    fn content_range_values() {
        use ContentRange::*;
        assert_eq!(
            parse_content_range(b"bytes 0-0/*"),
            Ok(Satisfied {
                first: 0,
                last: 0,
                complete: None
            })
        );
        assert_eq!(
            parse_content_range(b"bytes */0"),
            Ok(Unsatisfied { complete: 0 })
        );
        assert_eq!(
            parse_content_range(
                b"bytes 18446744073709551614-18446744073709551614/18446744073709551615"
            ),
            Ok(Satisfied {
                first: u64::MAX - 1,
                last: u64::MAX - 1,
                complete: Some(u64::MAX)
            })
        );
        for bad in [
            &b""[..],
            b"bytes",
            b"bytes ",
            b"bytes0-1/2",
            b"bytes 1-0/2",
            b"bytes 0-2/2",
            b"bytes -1-2/3",
            b"bytes +0-1/3",
            b"bytes 0-1",
            b"bytes 0-1/",
            b"bytes 0 -1/2",
            b"bytes 0-18446744073709551615/*",
            b"bytes 0-99999999999999999999/*",
            b"bytes */*",
            b"bytes 0-1/2/3",
            b"bytes \xff-1/2",
        ] {
            assert_eq!(
                parse_content_range(bad),
                Err(MultipartError::BadContentRange),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(byteranges_boundary(b"text/plain; charset=utf-8"), Ok(None));
        assert_eq!(
            byteranges_boundary(b"multipart/byteranges;boundary=ab;x=y"),
            Ok(Some(&b"ab"[..]))
        );
        assert_eq!(
            byteranges_boundary(b"multipart/byteranges; x=\"q;r\"; boundary=ab"),
            Ok(Some(&b"ab"[..]))
        );
        assert_eq!(
            byteranges_boundary(b"multipart/byteranges; charset=x"),
            Err(MultipartError::MissingBoundary)
        );
        assert_eq!(
            byteranges_boundary(b"multipart/byteranges; boundary=\"a\\b\""),
            Err(MultipartError::BadBoundary)
        );
        let long = format!("multipart/byteranges; boundary={}", "a".repeat(71));
        assert_eq!(
            byteranges_boundary(long.as_bytes()),
            Err(MultipartError::BadBoundary)
        );
        assert_eq!(
            byteranges_boundary(b"multipart/byteranges; boundary=a; boundary=b"),
            Err(MultipartError::BadBoundary)
        );
        for bad in [
            &b""[..],
            b"multipart",
            b"/x",
            b"a b/c",
            b"multipart/byteranges; =x",
        ] {
            assert_eq!(
                byteranges_boundary(bad),
                Err(MultipartError::BadContentType),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
