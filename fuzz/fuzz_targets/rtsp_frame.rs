//! Fuzz `sft::proto::rtsp` (needs sft feature `rtsp` or
//! `rtsp-server`): the connection decoder that splits a byte stream into
//! RTSP messages (parsed by `rtsp-types`) and interleaved `$` frames, the
//! RTP/sft packet header and the `x-Sft-Range` / `x-Sft-Fetch` range lists.
//!
//! Differential: the same stream decoded from a buffer holding all of it and
//! from a buffer that grows by fuzzer-chosen amounts (as a socket reader's
//! does) gives the same items and the same verdict; every item consumes at
//! least one byte and no more than it was given; a packet header encodes
//! back to the same bytes; a parsed range list formats and parses back to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sft::proto::rtsp::{
    DecodeError, Frame, Limits, PacketHeader, decode, format_ranges, parse_ranges,
};

#[derive(Debug, PartialEq)]
enum Seen {
    Data(u8, Vec<u8>),
    Request(String, Option<String>),
    Response(u16, Option<String>),
}

fn describe(f: &Frame<'_>) -> Seen {
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

/// Decode all of `stream`, giving the decoder `steps[i]` more bytes each
/// time it asks for more (all at once when `steps` is empty).
fn run(stream: &[u8], steps: &[u8], limits: &Limits) -> (Vec<Seen>, Option<DecodeError>) {
    let mut items = Vec::new();
    let (mut start, mut avail, mut i) = (0usize, 0usize, 0usize);
    if steps.is_empty() {
        avail = stream.len();
    }
    loop {
        let window = &stream[start..avail];
        match decode(window, limits) {
            Ok(Some((frame, used))) => {
                assert!(used > 0 && used <= window.len(), "used {used} of {}", window.len());
                if let Frame::Data { payload, .. } = &frame {
                    if let Some((h, data)) = PacketHeader::parse(payload) {
                        let mut again = h.encode().to_vec();
                        again.extend_from_slice(data);
                        assert_eq!(PacketHeader::parse(&again), Some((h, data)));
                    }
                }
                items.push(describe(&frame));
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

fuzz_target!(|input: &[u8]| {
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
    let whole = run(stream, &[], &limits);
    let pieces = run(stream, steps, &limits);
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
});
