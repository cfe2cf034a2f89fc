//! The HTTP `Range` request header (RFC 9110 §14): parsing, resolution
//! against a representation's length, and `Content-Range` formatting.
//!
//! Pure functions, no I/O, no clock. The server uses them to answer
//! `Range: bytes=...` requests; a client can use [`format_range_header`] to
//! ask for several ranges in one request. (Parsing `Content-Range` response
//! values lives with the `multipart/byteranges` reader in
//! [`super::http_multipart`].)
//!
//! What the parser accepts, per RFC 9110 §14.1.1 and §14.2:
//!
//! - `bytes=first-last`, `bytes=first-` and `bytes=-suffix`, comma separated,
//!   with optional whitespace around commas and empty list elements ignored;
//!   the unit is case-insensitive;
//! - numbers too large for `u64` saturate (a position past any real length
//!   is simply unsatisfiable, a huge suffix means "the whole thing");
//! - another unit (`items=0-4`) is not an error: the header is to be ignored
//!   ([`Parsed::OtherUnit`]).
//!
//! The policy [`resolve_header`] applies, which the built-in server follows
//! (it matches nginx's):
//!
//! | header                                      | answer |
//! |---------------------------------------------|--------|
//! | absent, another unit, longer than [`MAX_HEADER_LEN`] or more than the range limit | 200, whole body |
//! | malformed `bytes=` set (`bytes=5-1`, `bytes=x`) | 416 |
//! | no range overlaps the representation        | 416 (`Content-Range: bytes */len`) |
//! | otherwise                                   | 206: the satisfiable ranges, overlapping and adjacent ones merged |
//!
//! ```
//! use sft::proto::http_range::{resolve_header, Resolution, RangeLimits};
//!
//! let r = resolve_header(b"bytes=0-99, 50-149, -10", 1000, RangeLimits::default());
//! assert_eq!(r, Resolution::Partial(vec![0..150, 990..1000]));
//! assert_eq!(resolve_header(b"bytes=2000-", 1000, RangeLimits::default()), Resolution::Unsatisfiable);
//! assert_eq!(resolve_header(b"items=0-1", 1000, RangeLimits::default()), Resolution::Full);
//! ```

use core::fmt;
use core::ops::Range;

/// The most ranges a header may carry before [`resolve_header`] ignores it
/// (the default of [`RangeLimits::max_ranges`]).
///
/// ```
/// use sft::proto::http_range::{DEFAULT_MAX_RANGES, RangeLimits};
///
/// assert_eq!(RangeLimits::default().get_max_ranges(), DEFAULT_MAX_RANGES);
/// ```
pub const DEFAULT_MAX_RANGES: usize = 32;

/// The longest `Range` value (in bytes) [`parse`] looks at; longer values
/// are refused with [`RangeError::TooLong`].
///
/// ```
/// use sft::proto::http_range::{parse, RangeError, MAX_HEADER_LEN};
///
/// let long = vec![b' '; MAX_HEADER_LEN + 1];
/// assert!(matches!(parse(&long, 32), Err(RangeError::TooLong { .. })));
/// ```
pub const MAX_HEADER_LEN: usize = 4096;

/// One `range-spec` of a `bytes=` range set, as written by the client.
///
/// ```
/// use sft::proto::http_range::RangeSpec;
///
/// assert_eq!(RangeSpec::Suffix { len: 10 }.resolve(100), Some(90..100));
/// assert_eq!(RangeSpec::FromTo { first: 5, last: 500 }.resolve(100), Some(5..100));
/// assert_eq!(RangeSpec::From { first: 100 }.resolve(100), None);
/// assert_eq!(RangeSpec::FromTo { first: 0, last: 9 }.to_string(), "0-9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeSpec {
    /// `first-last`: bytes `first..=last` (`last` may lie past the end).
    FromTo {
        /// First byte position.
        first: u64,
        /// Last byte position, inclusive; never below `first`.
        last: u64,
    },
    /// `first-`: from `first` to the end.
    From {
        /// First byte position.
        first: u64,
    },
    /// `-len`: the last `len` bytes.
    Suffix {
        /// How many bytes from the end.
        len: u64,
    },
}

impl RangeSpec {
    /// The absolute half-open range this spec selects in a representation
    /// of `complete_len` bytes, or `None` if it is unsatisfiable (starts at
    /// or past the end, or is an empty suffix).
    ///
    /// ```
    /// use sft::proto::http_range::RangeSpec;
    ///
    /// assert_eq!(RangeSpec::From { first: 10 }.resolve(15), Some(10..15));
    /// assert_eq!(RangeSpec::Suffix { len: 0 }.resolve(15), None);
    /// assert_eq!(RangeSpec::Suffix { len: 99 }.resolve(15), Some(0..15));
    /// ```
    pub fn resolve(self, complete_len: u64) -> Option<Range<u64>> {
        match self {
            RangeSpec::FromTo { first, last } => {
                if first >= complete_len || last < first {
                    return None;
                }
                Some(first..last.saturating_add(1).min(complete_len))
            }
            RangeSpec::From { first } => (first < complete_len).then_some(first..complete_len),
            RangeSpec::Suffix { len } => {
                if len == 0 || complete_len == 0 {
                    return None;
                }
                Some(complete_len.saturating_sub(len)..complete_len)
            }
        }
    }
}

impl fmt::Display for RangeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeSpec::FromTo { first, last } => write!(f, "{first}-{last}"),
            RangeSpec::From { first } => write!(f, "{first}-"),
            RangeSpec::Suffix { len } => write!(f, "-{len}"),
        }
    }
}

/// Why a `Range` value was refused by [`parse`].
///
/// ```
/// use sft::proto::http_range::{parse, RangeError};
///
/// assert!(matches!(parse(b"bytes=9-1", 32), Err(RangeError::Syntax { .. })));
/// assert_eq!(parse(b"bytes=0-0,1-1,2-2", 2), Err(RangeError::TooMany { limit: 2 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeError {
    /// The value is longer than [`MAX_HEADER_LEN`].
    TooLong {
        /// The value's length.
        len: usize,
    },
    /// More range specs than the limit.
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// The `bytes=` set is malformed (bad character, `last < first`, no
    /// range at all…).
    Syntax {
        /// Byte offset in the value where parsing failed.
        at: usize,
    },
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RangeError::TooLong { len } => {
                write!(f, "Range header of {len} bytes (limit {MAX_HEADER_LEN})")
            }
            RangeError::TooMany { limit } => write!(f, "more than {limit} ranges"),
            RangeError::Syntax { at } => write!(f, "malformed Range header at byte {at}"),
        }
    }
}

impl core::error::Error for RangeError {}

/// A parsed `Range` value.
///
/// ```
/// use sft::proto::http_range::{parse, Parsed, RangeSpec};
///
/// assert_eq!(parse(b"bytes=-5", 32), Ok(Parsed::Bytes(vec![RangeSpec::Suffix { len: 5 }])));
/// assert_eq!(parse(b"pages=1-2", 32), Ok(Parsed::OtherUnit));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A `bytes=` range set: at least one spec, in the client's order.
    Bytes(Vec<RangeSpec>),
    /// A unit other than `bytes`: the header must be ignored.
    OtherUnit,
}

/// Parse a `Range` header value, allowing at most `max_ranges` specs.
///
/// Never panics; reads at most [`MAX_HEADER_LEN`] bytes.
///
/// ```
/// use sft::proto::http_range::{parse, Parsed, RangeSpec};
///
/// let Parsed::Bytes(specs) = parse(b"Bytes=0-1 , ,7-", 32)? else { unreachable!() };
/// assert_eq!(specs, [RangeSpec::FromTo { first: 0, last: 1 }, RangeSpec::From { first: 7 }]);
/// # Ok::<(), sft::proto::http_range::RangeError>(())
/// ```
pub fn parse(value: &[u8], max_ranges: usize) -> Result<Parsed, RangeError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(RangeError::TooLong { len: value.len() });
    }
    let mut p = Cursor { s: value, i: 0 };
    p.skip_ows();
    let unit_start = p.i;
    while p.peek().is_some_and(is_tchar) {
        p.i += 1;
    }
    let unit = value.get(unit_start..p.i).unwrap_or_default();
    if unit.is_empty() {
        return Err(RangeError::Syntax { at: p.i });
    }
    if p.peek() != Some(b'=') {
        return Err(RangeError::Syntax { at: p.i });
    }
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return Ok(Parsed::OtherUnit);
    }
    p.i += 1;
    let mut specs = Vec::new();
    loop {
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => {
                // An empty list element (RFC 9110 §5.6.1.2): ignored.
                p.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let spec_at = p.i;
        let spec = if p.peek() == Some(b'-') {
            p.i += 1;
            let len = p.number().ok_or(RangeError::Syntax { at: p.i })?;
            RangeSpec::Suffix { len }
        } else {
            let first = p.number().ok_or(RangeError::Syntax { at: p.i })?;
            if p.peek() != Some(b'-') {
                return Err(RangeError::Syntax { at: p.i });
            }
            p.i += 1;
            match p.number() {
                Some(last) if last < first => return Err(RangeError::Syntax { at: spec_at }),
                Some(last) => RangeSpec::FromTo { first, last },
                None => RangeSpec::From { first },
            }
        };
        if specs.len() >= max_ranges {
            return Err(RangeError::TooMany { limit: max_ranges });
        }
        specs.push(spec);
        p.skip_ows();
        match p.peek() {
            None => break,
            Some(b',') => p.i += 1,
            Some(_) => return Err(RangeError::Syntax { at: p.i }),
        }
    }
    if specs.is_empty() {
        return Err(RangeError::Syntax { at: p.i });
    }
    Ok(Parsed::Bytes(specs))
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `1*DIGIT`, saturating at `u64::MAX`; `None` if there is no digit.
    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Limits applied by [`resolve_header`].
///
/// ```
/// use sft::proto::http_range::{resolve_header, RangeLimits, Resolution};
///
/// let one = RangeLimits::default().max_ranges(1);
/// assert_eq!(resolve_header(b"bytes=0-0,5-5", 10, one), Resolution::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeLimits {
    max_ranges: usize,
}

impl Default for RangeLimits {
    fn default() -> Self {
        RangeLimits {
            max_ranges: DEFAULT_MAX_RANGES,
        }
    }
}

impl RangeLimits {
    /// At most `n` range specs per header (default [`DEFAULT_MAX_RANGES`]);
    /// a header with more is ignored (answered with the whole body).
    ///
    /// ```
    /// # use sft::proto::http_range::RangeLimits;
    /// assert_eq!(RangeLimits::default().max_ranges(0).get_max_ranges(), 1);
    /// ```
    pub fn max_ranges(mut self, n: usize) -> Self {
        self.max_ranges = n.max(1);
        self
    }

    /// The range-count limit.
    ///
    /// ```
    /// # use sft::proto::http_range::RangeLimits;
    /// assert_eq!(RangeLimits::default().max_ranges(4).get_max_ranges(), 4);
    /// ```
    pub fn get_max_ranges(&self) -> usize {
        self.max_ranges
    }
}

/// How to answer a request, given its `Range` header and the
/// representation's length.
///
/// ```
/// use sft::proto::http_range::{resolve, RangeSpec, Resolution};
///
/// assert_eq!(resolve(&[RangeSpec::Suffix { len: 4 }], 10), Resolution::Partial(vec![6..10]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// 200: send the whole representation.
    Full,
    /// 206: these absolute, non-empty, non-overlapping, non-adjacent ranges
    /// (one: a single-part response; several: `multipart/byteranges`).
    Partial(Vec<Range<u64>>),
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Resolve parsed specs against `complete_len`: drop the unsatisfiable
/// ones, then merge overlapping and adjacent ones.
///
/// Ranges keep the client's order when they are already ascending and
/// disjoint; otherwise they come back sorted and merged (RFC 9110 §14.2
/// allows both). A zero-length representation has no satisfiable range
/// except a non-empty suffix, for which the whole (empty) body is sent.
///
/// ```
/// use sft::proto::http_range::{resolve, RangeSpec, Resolution};
///
/// let specs = [
///     RangeSpec::FromTo { first: 10, last: 19 },
///     RangeSpec::FromTo { first: 0, last: 9 },
///     RangeSpec::From { first: 1000 },
/// ];
/// assert_eq!(resolve(&specs, 100), Resolution::Partial(vec![0..20]));
/// ```
pub fn resolve(specs: &[RangeSpec], complete_len: u64) -> Resolution {
    if complete_len == 0 {
        let any_suffix = specs
            .iter()
            .any(|s| matches!(s, RangeSpec::Suffix { len } if *len > 0));
        return if any_suffix {
            Resolution::Full
        } else {
            Resolution::Unsatisfiable
        };
    }
    let mut out: Vec<Range<u64>> = specs
        .iter()
        .filter_map(|s| s.resolve(complete_len))
        .collect();
    if out.is_empty() {
        return Resolution::Unsatisfiable;
    }
    let in_order = out.windows(2).all(|w| match w {
        [a, b] => a.end < b.start,
        _ => true,
    });
    if !in_order {
        out = sort_and_merge(out, true);
    }
    Resolution::Partial(out)
}

/// Sort ranges by start and merge those that overlap (and, with
/// `adjacent`, those that touch): the result covers the same bytes, each
/// once. O(n log n). The HTTP server merges overlapping and adjacent
/// `Range` specs with it; the RTSP server merges overlapping `x-Sft-Range`
/// and `x-Sft-Fetch` ranges (`docs/RTSP.md` §5).
///
/// ```
/// use sft::proto::http_range::sort_and_merge;
///
/// assert_eq!(sort_and_merge(vec![10..20, 0..10, 5..6, 30..40], true), vec![0..20, 30..40]);
/// assert_eq!(sort_and_merge(vec![10..20, 0..10, 5..6, 30..40], false), vec![0..10, 10..20, 30..40]);
/// ```
pub fn sort_and_merge(mut ranges: Vec<Range<u64>>, adjacent: bool) -> Vec<Range<u64>> {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start < last.end || (adjacent && r.start == last.end) => {
                last.end = last.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    merged
}

/// Parse and resolve a `Range` value under `limits`; see the module docs
/// for the policy. (A missing header is [`Resolution::Full`]; callers
/// handle that case themselves.)
///
/// ```
/// use sft::proto::http_range::{resolve_header, RangeLimits, Resolution};
///
/// let lim = RangeLimits::default();
/// assert_eq!(resolve_header(b"bytes=-3", 10, lim), Resolution::Partial(vec![7..10]));
/// assert_eq!(resolve_header(b"bytes=oops", 10, lim), Resolution::Unsatisfiable);
/// ```
pub fn resolve_header(value: &[u8], complete_len: u64, limits: RangeLimits) -> Resolution {
    match parse(value, limits.max_ranges) {
        Ok(Parsed::Bytes(specs)) => resolve(&specs, complete_len),
        Ok(Parsed::OtherUnit) => Resolution::Full,
        Err(RangeError::TooLong { .. } | RangeError::TooMany { .. }) => Resolution::Full,
        Err(RangeError::Syntax { .. }) => Resolution::Unsatisfiable,
    }
}

/// A `Content-Range` value to send, formatted by `Display`.
///
/// ```
/// use sft::proto::http_range::ContentRangeValue;
///
/// assert_eq!(ContentRangeValue::satisfied(&(0..500), 1234).to_string(), "bytes 0-499/1234");
/// assert_eq!(ContentRangeValue::Unsatisfied { complete_len: 1234 }.to_string(), "bytes */1234");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRangeValue {
    /// `bytes first-last/complete_len` (206 responses and parts).
    Satisfied {
        /// First byte position.
        first: u64,
        /// Last byte position, inclusive.
        last: u64,
        /// The representation's length.
        complete_len: u64,
    },
    /// `bytes */complete_len` (416 responses).
    Unsatisfied {
        /// The representation's length.
        complete_len: u64,
    },
}

impl ContentRangeValue {
    /// The value for the half-open, non-empty `range` (an empty range is
    /// shown as its first byte).
    ///
    /// ```
    /// use sft::proto::http_range::ContentRangeValue;
    ///
    /// assert_eq!(ContentRangeValue::satisfied(&(9..10), 10).to_string(), "bytes 9-9/10");
    /// ```
    pub fn satisfied(range: &Range<u64>, complete_len: u64) -> Self {
        ContentRangeValue::Satisfied {
            first: range.start,
            last: range.end.saturating_sub(1).max(range.start),
            complete_len,
        }
    }
}

impl fmt::Display for ContentRangeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ContentRangeValue::Satisfied {
                first,
                last,
                complete_len,
            } => write!(f, "bytes {first}-{last}/{complete_len}"),
            ContentRangeValue::Unsatisfied { complete_len } => {
                write!(f, "bytes */{complete_len}")
            }
        }
    }
}

/// A `Range` request value (`bytes=a-b,c-d`) for half-open ranges; empty
/// ranges are skipped. Returns `None` if no range is left.
///
/// ```
/// use sft::proto::http_range::format_range_header;
///
/// assert_eq!(format_range_header(&[0..100, 200..201]).as_deref(), Some("bytes=0-99,200-200"));
/// assert_eq!(format_range_header(&[5..5]), None);
/// ```
pub fn format_range_header(ranges: &[Range<u64>]) -> Option<String> {
    use core::fmt::Write as _;
    let mut s = String::from("bytes=");
    let mut any = false;
    for r in ranges.iter().filter(|r| r.start < r.end) {
        if any {
            s.push(',');
        }
        any = true;
        let _ = write!(s, "{}-{}", r.start, r.end - 1);
    }
    any.then_some(s)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // one-range results are the point
mod tests {
    use super::*;

    fn specs(v: &str) -> Vec<RangeSpec> {
        match parse(v.as_bytes(), 32) {
            Ok(Parsed::Bytes(s)) => s,
            other => panic!("{v}: {other:?}"),
        }
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!(
            specs("bytes=0-499"),
            [RangeSpec::FromTo {
                first: 0,
                last: 499
            }]
        );
        assert_eq!(specs("bytes=9500-"), [RangeSpec::From { first: 9500 }]);
        assert_eq!(specs("bytes=-500"), [RangeSpec::Suffix { len: 500 }]);
        assert_eq!(
            specs(" BYTES=0-0,\t-1 ,, 5-"),
            [
                RangeSpec::FromTo { first: 0, last: 0 },
                RangeSpec::Suffix { len: 1 },
                RangeSpec::From { first: 5 }
            ]
        );
        assert_eq!(
            specs("bytes=99999999999999999999999-"),
            [RangeSpec::From { first: u64::MAX }]
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes=-",
            "bytes=5",
            "bytes=a-b",
            "bytes=5-4",
            "bytes=1-2-3",
            "bytes=--1",
            "bytes=1 -2",
            "bytes =1-2",
            "=1-2",
            "bytes=0-1;x",
            "bytes=+1-2",
        ] {
            assert!(
                matches!(parse(bad.as_bytes(), 32), Err(RangeError::Syntax { .. })),
                "{bad:?}: {:?}",
                parse(bad.as_bytes(), 32)
            );
        }
        assert_eq!(parse(b"none=", 32), Ok(Parsed::OtherUnit));
    }

    #[test]
    fn limits() {
        let many = format!("bytes={}", vec!["0-0"; 33].join(","));
        assert_eq!(
            parse(many.as_bytes(), 32),
            Err(RangeError::TooMany { limit: 32 })
        );
        assert_eq!(
            resolve_header(many.as_bytes(), 10, RangeLimits::default()),
            Resolution::Full
        );
        let long = format!("bytes=0-0{}", " ".repeat(MAX_HEADER_LEN));
        assert_eq!(
            resolve_header(long.as_bytes(), 10, RangeLimits::default()),
            Resolution::Full
        );
    }

    #[test]
    fn resolution() {
        let lim = RangeLimits::default();
        assert_eq!(
            resolve_header(b"bytes=0-0", 1, lim),
            Resolution::Partial(vec![0..1])
        );
        assert_eq!(
            resolve_header(b"bytes=1-", 1, lim),
            Resolution::Unsatisfiable
        );
        assert_eq!(
            resolve_header(b"bytes=-0", 10, lim),
            Resolution::Unsatisfiable
        );
        assert_eq!(
            resolve_header(b"bytes=0-", 0, lim),
            Resolution::Unsatisfiable
        );
        assert_eq!(resolve_header(b"bytes=-1", 0, lim), Resolution::Full);
        assert_eq!(
            resolve_header(b"bytes=0-1,4-5,20-30", 10, lim),
            Resolution::Partial(vec![0..2, 4..6])
        );
        // Adjacent ranges merge; an unordered set comes back sorted.
        assert_eq!(
            resolve_header(b"bytes=6-7,0-1,2-3", 10, lim),
            Resolution::Partial(vec![0..4, 6..8])
        );
        // Many overlapping ranges collapse into one.
        let overlap = format!("bytes={}", vec!["0-"; 32].join(","));
        assert_eq!(
            resolve_header(overlap.as_bytes(), 10, lim),
            Resolution::Partial(vec![0..10])
        );
        assert_eq!(
            resolve_header(b"bytes=5-18446744073709551615", 10, lim),
            Resolution::Partial(vec![5..10])
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(
            ContentRangeValue::satisfied(&(10..20), 30).to_string(),
            "bytes 10-19/30"
        );
        assert_eq!(
            format_range_header(&[0..1, 3..3, 5..10]).as_deref(),
            Some("bytes=0-0,5-9")
        );
        for s in [
            RangeSpec::FromTo { first: 3, last: 7 },
            RangeSpec::From { first: 3 },
            RangeSpec::Suffix { len: 3 },
        ] {
            assert_eq!(specs(&format!("bytes={s}")), [s]);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_resolves_in_bounds(value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), len in 0u64..64) {
            check(&value, len);
        }

        #[test]
        fn well_formed_sets_resolve(raw in proptest::collection::vec((0u64..80, 0u64..80, 0u8..3), 1..8), len in 0u64..64) {
            let text = raw.iter().map(|&(a, b, k)| match k {
                0 => format!("{}-{}", a.min(b), a.max(b)),
                1 => format!("{a}-"),
                _ => format!("-{b}"),
            }).collect::<Vec<_>>().join(",");
            let value = format!("bytes={text}");
            let Ok(Parsed::Bytes(specs)) = parse(value.as_bytes(), 32) else { panic!("{value}") };
            proptest::prop_assert_eq!(specs.len(), raw.len());
            check(value.as_bytes(), len);
            // Oracle: the union of selected bytes equals the union of the specs.
            if let Resolution::Partial(ranges) = resolve(&specs, len) {
                for b in 0..len {
                    let want = specs.iter().any(|s| s.resolve(len).is_some_and(|r| r.contains(&b)));
                    let got = ranges.iter().any(|r| r.contains(&b));
                    proptest::prop_assert_eq!(want, got);
                }
            }
        }
    }

    fn check(value: &[u8], len: u64) {
        if let Resolution::Partial(ranges) = resolve_header(value, len, RangeLimits::default()) {
            assert!(!ranges.is_empty());
            for r in &ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} in {len}");
            }
            for (i, a) in ranges.iter().enumerate() {
                for b in ranges.iter().skip(i + 1) {
                    assert!(a.end < b.start || b.end < a.start, "{ranges:?}");
                }
            }
        }
    }
}
