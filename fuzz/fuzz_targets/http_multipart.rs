//! Fuzz `sft::proto::http_multipart` (needs sft feature `http` or
//! `http-server`): `Content-Range` and `Content-Type` parsing, and the
//! incremental `multipart/byteranges` parser, differentially: the same
//! body fed whole and fed in fuzzer-chosen pieces through a small buffer
//! must give the same parts, the same data and the same verdict, and data
//! handed out never exceeds what each part's `Content-Range` announced.
#![no_main]

use sft::proto::http_multipart::{
    ByteRangesParser, ContentRange, MIN_BUFFER, MultipartError, PartRange, Step,
    byteranges_boundary, parse_content_range,
};

type Parts = Vec<(PartRange, Vec<u8>)>;

/// Feed `body` through a buffer of at most `cap` bytes, adding at most
/// `sizes[i]` new bytes per read (cycled), as a network reader would.
fn run(boundary: &[u8], body: &[u8], sizes: &[usize], cap: usize) -> Result<Parts, MultipartError> {
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
                assert!(data.len() as u64 <= r.last - r.first + 1, "more data than announced");
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
                let step = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1).max(1);
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

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Header values on their own.
    if let Ok(cr) = parse_content_range(data) {
        let text = match cr {
            ContentRange::Satisfied { first, last, complete } => {
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
    let Some((&blen, rest)) = data.split_first() else { return };
    let blen = usize::from(blen % 16) + 1;
    let Some((boundary, rest)) = rest.split_at_checked(blen) else { return };
    let Some((&slen, rest)) = rest.split_first() else { return };
    let Some((sizes, body)) = rest.split_at_checked(usize::from(slen % 8)) else { return };
    let whole = run(boundary, body, &[usize::MAX], body.len() + MIN_BUFFER);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
    let pieces = run(boundary, body, &sizes, MIN_BUFFER);
    assert_eq!(whole, pieces, "the verdict depends on how the body was cut");
});
