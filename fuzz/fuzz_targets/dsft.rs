#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sft::fuzzing::dsft(data));
