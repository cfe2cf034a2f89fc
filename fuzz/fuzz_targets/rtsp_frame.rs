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

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::rtsp_frame(data);
});
