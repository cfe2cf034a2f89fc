//! Fuzz `sft::proto::http_multipart` (needs sft feature `http` or
//! `http-server`): `Content-Range` and `Content-Type` parsing, and the
//! incremental `multipart/byteranges` parser, differentially: the same
//! body fed whole and fed in fuzzer-chosen pieces through a small buffer
//! must give the same parts, the same data and the same verdict, and data
//! handed out never exceeds what each part's `Content-Range` announced.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::http_multipart(data);
});
