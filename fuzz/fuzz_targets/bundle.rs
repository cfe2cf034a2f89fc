//! Fuzz the `.sftb` bundle reader (`sft::bundle`): arbitrary bytes never
//! panic and never allocate beyond the reader's limits; a bundle that opens
//! has every entry's checksum verified. Needs sft's `bundle` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::bundle(data);
});
