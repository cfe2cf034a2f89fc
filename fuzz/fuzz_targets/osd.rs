//! Fuzz the OSD and manifest parsers (`sft::publish`): arbitrary bytes
//! (UTF-8, UTF-16 with a BOM, or garbage) never panic, stay within the
//! parser's limits, and whatever parses writes out, parses back, and is
//! stable under a second round trip. Needs sft's `publish` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::osd(data);
});
