//! Fuzz the `Range` header parser and resolver
//! (`sft::proto::http_range`): never panics, and every resolved set
//! lies inside the representation, is non-empty, sorted or in client order,
//! and has no two ranges overlapping or touching.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::http_range(data);
});
