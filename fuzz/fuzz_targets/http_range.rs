//! Fuzz the `Range` header parser and resolver
//! (`sft::proto::http_range`): never panics, and every resolved set
//! lies inside the representation, is non-empty, sorted or in client order,
//! and has no two ranges overlapping or touching.
#![no_main]

use sft::proto::http_range::{RangeLimits, Resolution, parse, resolve_header};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
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
});
