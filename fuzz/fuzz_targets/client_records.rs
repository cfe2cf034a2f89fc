//! Fuzz the client store's records parser (`sft::client`): arbitrary bytes
//! never panic; records that parse serialize and parse back to the same
//! value. Needs sft's `client` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::client_records(data);
});
