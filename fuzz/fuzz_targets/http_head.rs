//! Fuzz the HTTP client's response-head parser (the bulk path of
//! `sft fetch http://`): never panics, accepted heads are sane. Needs
//! sft's `http` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::http_head(data);
});
