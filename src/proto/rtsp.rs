//! The I/O-free part of the RTSP protocol shared by the client and the
//! server (`docs/RTSP.md`): splitting a byte stream into RTSP messages
//! (parsed by `rtsp-types`) and interleaved `$` frames, the RTP packet and
//! sft payload headers, and the `x-Sft-Range` / `x-Sft-Fetch` byte-range
//! lists.
//!
//! Everything here is panic-free on any input and allocates at most what the
//! input holds, within [`Limits`]; the fuzz target `rtsp_frame` runs
//! [`decode`] (whole and in pieces), [`PacketHeader::parse`] and
//! [`parse_ranges`] over arbitrary bytes.
//!
//! ```
//! use sft::proto::rtsp::{decode, Frame, Limits};
//!
//! let input = b"OPTIONS * RTSP/1.0\r\nCSeq: 7\r\n\r\n$\x01\x00\x02hi";
//! let (frame, used) = decode(input, &Limits::default())?.expect("complete");
//! assert!(matches!(frame, Frame::Request(_)));
//! let (frame, _) = decode(&input[used..], &Limits::default())?.expect("complete");
//! assert!(matches!(frame, Frame::Data { channel: 1, payload: b"hi" }));
//! # Ok::<(), sft::proto::rtsp::DecodeError>(())
//! ```

use core::fmt;
use core::ops::Range;

use rtsp_types::{Message, Request, Response};

/// The RTP payload type of sft data (dynamic, announced by `a=rtpmap`).
pub const PAYLOAD_TYPE: u8 = 96;
/// Length of the fixed RTP header (no CSRC, no extension).
pub const RTP_HEADER_LEN: usize = 12;
/// Length of the sft payload header after the RTP header.
pub const SFT_HEADER_LEN: usize = 16;
/// Length of everything before a packet's data: the `$` frame header, the
/// RTP header and the sft payload header.
pub const PACKET_PREFIX_LEN: usize = 4 + RTP_HEADER_LEN + SFT_HEADER_LEN;
/// Most data bytes one packet may carry (a frame's length is 16 bits).
pub const MAX_PACKET_DATA: usize = 65_535 - RTP_HEADER_LEN - SFT_HEADER_LEN - 8;
/// Data bytes per packet the server sends: 65,440, so that a whole frame
/// (65,472 bytes with its prefix) fits one TCP segment on loopback (MSS
/// 65,483) and each packet leaves as one segment, not a full one and a
/// sliver. (It was 60 KiB: 6% more packets, each a system call or two.)
pub const SERVER_PACKET_DATA: usize = 64 * 1024 - 96;
/// Most ranges one `x-Sft-Range` or `x-Sft-Fetch` header may list.
pub const MAX_RANGES_PER_HEADER: usize = 256;
/// Payload flag: the packet ends a range.
pub const FLAG_LAST_OF_RANGE: u8 = 1;
/// Payload flag: the packet ends its fetch (or the background stream).
pub const FLAG_END: u8 = 2;

/// Size limits for [`decode`].
///
/// ```
/// use sft::proto::rtsp::Limits;
///
/// let l = Limits::default();
/// assert_eq!((l.max_head, l.max_body), (16 * 1024, 64 * 1024));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message head (start line and header fields) in bytes.
    pub max_head: usize,
    /// Largest message body in bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head: 16 * 1024,
            max_body: 64 * 1024,
        }
    }
}

/// Why [`decode`] refused its input.
///
/// ```
/// use sft::proto::rtsp::{decode, DecodeError, Limits};
///
/// assert_eq!(decode(b"\x00\x01garbage\r\n\r\n", &Limits::default()).err(), Some(DecodeError::Malformed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not an RTSP message nor an interleaved frame.
    Malformed,
    /// The head is longer than [`Limits::max_head`].
    HeadTooLarge,
    /// `Content-Length` is larger than [`Limits::max_body`].
    BodyTooLarge,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Malformed => "malformed RTSP message",
            DecodeError::HeadTooLarge => "RTSP message head too large",
            DecodeError::BodyTooLarge => "RTSP message body too large",
        })
    }
}

impl core::error::Error for DecodeError {}

/// One item of an RTSP connection's byte stream.
///
/// ```
/// use sft::proto::rtsp::{decode, Frame, Limits};
///
/// let (f, n) = decode(b"$\x00\x00\x01x", &Limits::default())?.expect("complete");
/// assert_eq!(n, 5);
/// assert!(matches!(f, Frame::Data { channel: 0, payload: b"x" }));
/// # Ok::<(), sft::proto::rtsp::DecodeError>(())
/// ```
#[derive(Debug)]
pub enum Frame<'a> {
    /// An interleaved binary frame (RFC 2326 §10.12).
    Data {
        /// The channel.
        channel: u8,
        /// The frame's bytes (an RTP or RTCP packet).
        payload: &'a [u8],
    },
    /// An RTSP request.
    Request(Request<Vec<u8>>),
    /// An RTSP response.
    Response(Response<Vec<u8>>),
}

/// Position just past the blank line ending a message head.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match (buf.get(nl + 1), buf.get(nl + 2)) {
            (Some(b'\n'), _) => return Some(nl + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// The `Content-Length` of a complete head, for the size check before the
/// body is waited for (the message itself is parsed by `rtsp-types`).
fn content_length(head: &[u8]) -> Result<usize, DecodeError> {
    let mut len = 0usize;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        if !name.trim_ascii().eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let v = value.get(1..).unwrap_or_default().trim_ascii();
        if v.is_empty() || v.len() > 12 || !v.iter().all(u8::is_ascii_digit) {
            return Err(DecodeError::Malformed);
        }
        len = v
            .iter()
            .fold(0usize, |acc, &d| acc * 10 + usize::from(d - b'0'));
    }
    Ok(len)
}

/// Decode the next item at the start of `buf`: `Ok(None)` if more bytes are
/// needed, else the item and how many bytes it used. Blank lines before a
/// message are skipped (counted as used, with the message).
///
/// Interleaved frames are split here (their 4-byte prefix is all there is
/// to them); requests and responses are parsed by `rtsp-types` once their
/// head and body are complete and within `limits`.
///
/// # Errors
/// [`DecodeError`]: the connection cannot continue.
///
/// ```
/// use sft::proto::rtsp::{decode, DecodeError, Limits};
///
/// let l = Limits { max_head: 64, max_body: 4 };
/// assert!(decode(b"OPTIONS * RTSP/1.0\r\nCSeq: 1", &l)?.is_none()); // more needed
/// assert_eq!(decode(&[b'A'; 100], &l).err(), Some(DecodeError::HeadTooLarge));
/// let big = b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 5\r\n\r\n";
/// assert_eq!(decode(big, &l).err(), Some(DecodeError::BodyTooLarge));
/// # Ok::<(), DecodeError>(())
/// ```
pub fn decode<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(Frame<'a>, usize)>, DecodeError> {
    let skip = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let Some(rest) = buf.get(skip..) else {
        return Ok(None);
    };
    match rest.first() {
        None => return Ok(None),
        Some(b'$') => {
            let Some(&[_, channel, hi, lo]) = rest.get(..4) else {
                return Ok(None);
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            return Ok(rest
                .get(4..4 + len)
                .map(|payload| (Frame::Data { channel, payload }, skip + 4 + len)));
        }
        Some(b) if !b.is_ascii_alphabetic() => return Err(DecodeError::Malformed),
        Some(_) => {}
    }
    let Some(head) = head_end(rest) else {
        return if rest.len() > limits.max_head {
            Err(DecodeError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    if head > limits.max_head {
        return Err(DecodeError::HeadTooLarge);
    }
    let body = content_length(rest.get(..head).unwrap_or_default())?;
    if body > limits.max_body {
        return Err(DecodeError::BodyTooLarge);
    }
    let Some(whole) = rest.get(..head + body) else {
        return Ok(None);
    };
    match Message::<Vec<u8>>::parse(whole) {
        Ok((Message::Request(r), used)) => Ok(Some((Frame::Request(r), skip + used))),
        Ok((Message::Response(r), used)) => Ok(Some((Frame::Response(r), skip + used))),
        // Incomplete although head and body are all here: not a message.
        Ok((Message::Data(_), _)) | Err(_) => Err(DecodeError::Malformed),
    }
}

/// The RTP header and sft payload header of one data packet (see
/// `docs/RTSP.md` §5.3).
///
/// ```
/// use sft::proto::rtsp::{PacketHeader, RTP_HEADER_LEN, SFT_HEADER_LEN};
///
/// let h = PacketHeader { seq: 9, timestamp: 100, ssrc: 7, marker: true, offset: 1 << 33, tag: 5, flags: 3 };
/// let mut packet = h.encode().to_vec();
/// packet.extend_from_slice(b"data");
/// let (back, data) = PacketHeader::parse(&packet).expect("valid");
/// assert_eq!((back, data), (h, &b"data"[..]));
/// assert_eq!(h.encode().len(), RTP_HEADER_LEN + SFT_HEADER_LEN);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// RTP sequence number.
    pub seq: u16,
    /// RTP timestamp (1 kHz since SETUP).
    pub timestamp: u32,
    /// RTP synchronisation source.
    pub ssrc: u32,
    /// RTP marker bit: the packet ends a range.
    pub marker: bool,
    /// Absolute package offset of the data's first byte.
    pub offset: u64,
    /// 0 for the background stream, else the CSeq of the fetch.
    pub tag: u32,
    /// [`FLAG_LAST_OF_RANGE`], [`FLAG_END`].
    pub flags: u8,
}

impl PacketHeader {
    /// The 28 header bytes.
    ///
    /// ```
    /// # use sft::proto::rtsp::PacketHeader;
    /// let h = PacketHeader { seq: 1, timestamp: 0, ssrc: 0, marker: false, offset: 0, tag: 0, flags: 0 };
    /// assert_eq!(h.encode()[..2], [0x80, 96]);
    /// ```
    pub fn encode(&self) -> [u8; RTP_HEADER_LEN + SFT_HEADER_LEN] {
        let mut out = [0u8; RTP_HEADER_LEN + SFT_HEADER_LEN];
        out[0] = 0x80;
        out[1] = PAYLOAD_TYPE | if self.marker { 0x80 } else { 0 };
        out[2..4].copy_from_slice(&self.seq.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out[12..20].copy_from_slice(&self.offset.to_be_bytes());
        out[20..24].copy_from_slice(&self.tag.to_be_bytes());
        out[24] = self.flags;
        out
    }

    /// Split an RTP packet into its headers and data; `None` if it is not
    /// an sft data packet (wrong RTP version or payload type, too short,
    /// CSRCs, extension or padding).
    ///
    /// ```
    /// # use sft::proto::rtsp::PacketHeader;
    /// assert!(PacketHeader::parse(&[0x80, 96, 0, 1]).is_none());
    /// ```
    pub fn parse(packet: &[u8]) -> Option<(PacketHeader, &[u8])> {
        let head = packet.get(..RTP_HEADER_LEN + SFT_HEADER_LEN)?;
        let data = packet.get(RTP_HEADER_LEN + SFT_HEADER_LEN..)?;
        let b = |r: Range<usize>| head.get(r).unwrap_or_default();
        let be32 = |r: Range<usize>| {
            let s = b(r);
            s.try_into().map(u32::from_be_bytes).unwrap_or(0)
        };
        let first = *head.first()?;
        let second = *head.get(1)?;
        // Version 2, no padding, no extension, no CSRC.
        if first != 0x80 || second & 0x7f != PAYLOAD_TYPE {
            return None;
        }
        Some((
            PacketHeader {
                seq: b(2..4).try_into().map(u16::from_be_bytes).unwrap_or(0),
                timestamp: be32(4..8),
                ssrc: be32(8..12),
                marker: second & 0x80 != 0,
                offset: b(12..20).try_into().map(u64::from_be_bytes).unwrap_or(0),
                tag: be32(20..24),
                flags: *head.get(24)?,
            },
            data,
        ))
    }
}

/// Why a byte-range list was refused.
///
/// ```
/// use sft::proto::rtsp::{parse_ranges, RangeListError};
///
/// assert_eq!(parse_ranges("bytes=5-2", 10), Err(RangeListError::Invalid));
/// assert_eq!(parse_ranges("bytes=0-10", 10), Err(RangeListError::Unsatisfiable));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeListError {
    /// Syntax error, or more than [`MAX_RANGES_PER_HEADER`] ranges (400).
    Invalid,
    /// A range reaches past the package (457).
    Unsatisfiable,
}

impl fmt::Display for RangeListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeListError::Invalid => "malformed byte-range list",
            RangeListError::Unsatisfiable => "byte range outside the package",
        })
    }
}

impl core::error::Error for RangeListError {}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parse `bytes=a-b,c-` (inclusive, as in HTTP) or `none` against a
/// package of `len` bytes into half-open ranges, in the order given.
///
/// # Errors
/// [`RangeListError`].
///
/// ```
/// use sft::proto::rtsp::parse_ranges;
///
/// assert_eq!(parse_ranges("bytes=0-9, 20-", 30)?, vec![0..10, 20..30]);
/// assert_eq!(parse_ranges("none", 30)?, vec![]);
/// # Ok::<(), sft::proto::rtsp::RangeListError>(())
/// ```
pub fn parse_ranges(value: &str, len: u64) -> Result<Vec<Range<u64>>, RangeListError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let list = value
        .strip_prefix("bytes=")
        .ok_or(RangeListError::Invalid)?;
    let mut out = Vec::new();
    for spec in list.split(',') {
        if out.len() >= MAX_RANGES_PER_HEADER {
            return Err(RangeListError::Invalid);
        }
        let (a, b) = spec.split_once('-').ok_or(RangeListError::Invalid)?;
        let start = parse_u64(a).ok_or(RangeListError::Invalid)?;
        let end = if b.trim().is_empty() {
            len
        } else {
            let last = parse_u64(b).ok_or(RangeListError::Invalid)?;
            if last < start {
                return Err(RangeListError::Invalid);
            }
            last.checked_add(1).ok_or(RangeListError::Unsatisfiable)?
        };
        if start >= len || end > len {
            return Err(RangeListError::Unsatisfiable);
        }
        out.push(start..end);
    }
    Ok(out)
}

/// Format half-open ranges as a `bytes=` list (empty ranges are skipped;
/// no ranges at all gives `none`).
///
/// ```
/// use sft::proto::rtsp::format_ranges;
///
/// assert_eq!(format_ranges(&[0..10, 5..5, 20..21]), "bytes=0-9,20-20");
/// assert_eq!(format_ranges(&[]), "none");
/// ```
pub fn format_ranges(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .filter(|r| r.end > r.start)
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        format!("bytes={}", parts.join(","))
    }
}

/// The reason phrase of the status codes this protocol uses (RFC 2326
/// §7.1.1; `rtsp-types` would write `200 Ok`).
///
/// ```
/// assert_eq!(sft::proto::rtsp::reason(454), "Session Not Found");
/// ```
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        451 => "Parameter Not Understood",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        457 => "Invalid Range",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version not supported",
        551 => "Option not supported",
        _ => "Unknown",
    }
}
