//! The protocol codecs' fuzz entry points (targets `http_head`,
//! `http_range`, `http_multipart`, `rtsp_frame`): differential and round-trip oracles.

#[cfg(feature = "http-parse")]
use crate::proto::http_multipart::{
    ByteRangesParser, ContentRange, MIN_BUFFER, MultipartError, PartRange, Step,
    byteranges_boundary, parse_content_range,
};
#[cfg(feature = "http-parse")]
use crate::proto::http_range::{RangeLimits, Resolution, parse, resolve_header};
#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
use crate::proto::rtsp::{
    DecodeError, Frame, Limits, PacketHeader, decode, format_ranges, parse_ranges,
};

/// Fuzz the `Range` header parser and resolver: never panics, and every
/// resolved set lies inside the representation, is non-empty, and has no
/// two ranges overlapping or touching. The first 8 bytes (if any) choose
/// the representation length.
#[cfg(feature = "http-parse")]
pub fn http_range(data: &[u8]) {
    // The first 8 bytes (if any) choose the representation length.
    let (len, value) = match data.split_first_chunk::<8>() {
        Some((n, rest)) => (u64::from_le_bytes(*n) % (1 << 40), rest),
        None => (1000, data),
    };
    let _ = parse(value, 32);
    for len in [len, 0, 1] {
        if let Resolution::Partial(ranges) = resolve_header(value, len, RangeLimits::default()) {
            assert!(!ranges.is_empty());
            assert!(ranges.len() <= 32);
            for r in &ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} outside {len}");
            }
            for (i, a) in ranges.iter().enumerate() {
                for b in ranges.iter().skip(i + 1) {
                    assert!(a.end < b.start || b.end < a.start, "{ranges:?}");
                }
            }
        }
    }
}

#[cfg(feature = "http-parse")]
type Parts = Vec<(PartRange, Vec<u8>)>;

#[cfg(feature = "http-parse")]
/// Feed `body` through a buffer of at most `cap` bytes, adding at most
/// `sizes[i]` new bytes per read (cycled), as a network reader would.
fn multipart_run(
    boundary: &[u8],
    body: &[u8],
    sizes: &[usize],
    cap: usize,
) -> Result<Parts, MultipartError> {
    let mut p = ByteRangesParser::new(boundary)?;
    let mut parts: Parts = Vec::new();
    let mut buf = vec![0u8; cap];
    let (mut start, mut filled, mut fed, mut i) = (0usize, 0usize, 0usize, 0usize);
    loop {
        let (used, step) = p.feed(&buf[start..filled])?;
        assert!(used <= filled - start, "used more than given");
        match step {
            Step::Part(r) => {
                assert!(r.first <= r.last);
                parts.push((r, Vec::new()));
                start += used;
            }
            Step::Data(d) => {
                assert!(!d.is_empty() && d.len() <= used);
                let (r, data) = parts.last_mut().expect("data before any part");
                data.extend_from_slice(d);
                assert!(
                    data.len() as u64 <= r.last - r.first + 1,
                    "more data than announced"
                );
                start += used;
            }
            Step::Done => {
                p.finish()?;
                return Ok(parts);
            }
            Step::NeedMore => {
                start += used;
                buf.copy_within(start..filled, 0);
                filled -= start;
                start = 0;
                assert!(filled < MIN_BUFFER, "NeedMore with {filled} bytes pending");
                if fed == body.len() {
                    p.finish()?;
                    unreachable!("finish() accepted an unfinished body");
                }
                let step = sizes
                    .get(i % sizes.len().max(1))
                    .copied()
                    .unwrap_or(1)
                    .max(1);
                i += 1;
                let n = step.min(cap - filled).min(body.len() - fed);
                assert!(n > 0, "no room to make progress");
                buf[filled..filled + n].copy_from_slice(&body[fed..fed + n]);
                filled += n;
                fed += n;
            }
        }
    }
}

/// Fuzz `Content-Range` / `Content-Type` parsing and the incremental
/// `multipart/byteranges` parser, differentially: the same body fed whole
/// and fed in fuzzer-chosen pieces through a small buffer gives the same
/// parts, data and verdict, and data handed out never exceeds what each
/// part's `Content-Range` announced.
#[cfg(feature = "http-parse")]
pub fn http_multipart(data: &[u8]) {
    // Header values on their own.
    if let Ok(cr) = parse_content_range(data) {
        let text = match cr {
            ContentRange::Satisfied {
                first,
                last,
                complete,
            } => {
                assert!(first <= last);
                if let Some(c) = complete {
                    assert!(last < c);
                }
                let c = complete.map_or(String::from("*"), |c| c.to_string());
                format!("bytes {first}-{last}/{c}")
            }
            ContentRange::Unsatisfied { complete } => format!("bytes */{complete}"),
        };
        assert_eq!(parse_content_range(text.as_bytes()), Ok(cr));
    }
    if let Ok(Some(b)) = byteranges_boundary(data) {
        assert!(!b.is_empty() && b.len() <= 70);
        assert!(ByteRangesParser::new(b).is_ok());
    }

    // Layout: [boundary len][boundary][piece sizes len][sizes][body].
    let Some((&blen, rest)) = data.split_first() else {
        return;
    };
    let blen = usize::from(blen % 16) + 1;
    let Some((boundary, rest)) = rest.split_at_checked(blen) else {
        return;
    };
    let Some((&slen, rest)) = rest.split_first() else {
        return;
    };
    let Some((sizes, body)) = rest.split_at_checked(usize::from(slen % 8)) else {
        return;
    };
    let whole = multipart_run(boundary, body, &[usize::MAX], body.len() + MIN_BUFFER);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
    let pieces = multipart_run(boundary, body, &sizes, MIN_BUFFER);
    assert_eq!(whole, pieces, "the verdict depends on how the body was cut");
}

#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
#[derive(Debug, PartialEq)]
enum Seen {
    Data(u8, Vec<u8>),
    Request(String, Option<String>),
    Response(u16, Option<String>),
}

#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
fn rtsp_describe(f: &Frame<'_>) -> Seen {
    match f {
        Frame::Data { channel, payload } => Seen::Data(*channel, payload.to_vec()),
        Frame::Request(r) => Seen::Request(
            format!("{:?}", r.method()),
            r.headers()
                .find(|(n, _)| n.as_str().eq_ignore_ascii_case("cseq"))
                .map(|(_, v)| v.as_str().to_owned()),
        ),
        Frame::Response(r) => Seen::Response(
            u16::from(r.status()),
            r.headers()
                .find(|(n, _)| n.as_str().eq_ignore_ascii_case("cseq"))
                .map(|(_, v)| v.as_str().to_owned()),
        ),
    }
}

#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
/// Decode all of `stream`, giving the decoder `steps[i]` more bytes each
/// time it asks for more (all at once when `steps` is empty).
fn rtsp_run(stream: &[u8], steps: &[u8], limits: &Limits) -> (Vec<Seen>, Option<DecodeError>) {
    let mut items = Vec::new();
    let (mut start, mut avail, mut i) = (0usize, 0usize, 0usize);
    if steps.is_empty() {
        avail = stream.len();
    }
    loop {
        let window = &stream[start..avail];
        match decode(window, limits) {
            Ok(Some((frame, used))) => {
                assert!(
                    used > 0 && used <= window.len(),
                    "used {used} of {}",
                    window.len()
                );
                if let Frame::Data { payload, .. } = &frame
                    && let Some((h, data)) = PacketHeader::parse(payload)
                {
                    let mut again = h.encode().to_vec();
                    again.extend_from_slice(data);
                    assert_eq!(PacketHeader::parse(&again), Some((h, data)));
                }
                items.push(rtsp_describe(&frame));
                start += used;
            }
            Ok(None) => {
                if avail == stream.len() {
                    return (items, None);
                }
                let step = usize::from(steps[i % steps.len()]).max(1);
                i += 1;
                avail = (avail + step).min(stream.len());
            }
            Err(e) => return (items, Some(e)),
        }
    }
}

/// Fuzz the RTSP connection decoder (messages and interleaved `$`
/// frames), the packet header and the range lists: the same stream decoded
/// whole and from a buffer growing by fuzzer-chosen amounts gives the same
/// items and verdict; a packet header encodes back to the same bytes; a
/// parsed range list formats and parses back to itself.
#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
pub fn rtsp_frame(input: &[u8]) {
    // First byte: how many step sizes follow; then the steps; the rest is
    // the stream.
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len());
    let (steps, stream) = rest.split_at(n);
    let limits = Limits {
        max_head: 2048,
        max_body: 2048,
    };
    let whole = rtsp_run(stream, &[], &limits);
    let pieces = rtsp_run(stream, steps, &limits);
    // A head-size verdict may come earlier from a partial buffer, never a
    // different item sequence.
    match (&whole.1, &pieces.1) {
        (None, None) => assert_eq!(whole.0, pieces.0),
        _ => {
            let k = whole.0.len().min(pieces.0.len());
            assert_eq!(whole.0[..k], pieces.0[..k]);
        }
    }

    if let Ok(text) = std::str::from_utf8(stream) {
        let len = 1u64 << 40;
        if let Ok(ranges) = parse_ranges(text, len) {
            assert!(ranges.iter().all(|r| r.start < r.end && r.end <= len));
            let formatted = format_ranges(&ranges);
            assert_eq!(parse_ranges(&formatted, len).ok(), Some(ranges));
        }
    }
}

/// Parse an HTTP response head with the bulk client's strict parser
/// (`proto::http_head`), as sent and with its end added: never
/// panics; an accepted head has a three-digit status, values without
/// control characters, and parses again to the same result.
#[cfg(feature = "http")]
pub fn http_head(data: &[u8]) {
    use crate::proto::http_head::parse_head;
    let mut ended = data.to_vec();
    ended.extend_from_slice(b"\r\n\r\n");
    for input in [data, &ended[..]] {
        let Ok(head) = parse_head(input) else {
            continue;
        };
        assert!((100..=599).contains(&head.status), "{}", head.status);
        for v in [
            &head.content_range,
            &head.content_type,
            &head.etag,
            &head.last_modified,
        ]
        .into_iter()
        .flatten()
        {
            assert!(!v.bytes().any(|b| b == b'\r' || b == b'\n'), "{v:?}");
        }
        let again = parse_head(input).expect("a head that parsed parses again");
        assert_eq!(again.status, head.status);
        assert_eq!(again.content_length, head.content_length);
    }
}
