//! Fuzz the publishing refresh protocol's documents (`sft::publish`): a
//! Management Server's answer and a client's usage report never panic,
//! stay within the parser's limits, and whatever parses writes out and
//! parses back equal. Needs sft's `publish` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::refresh(data);
});
