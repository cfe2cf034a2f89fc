//! RTSP/RTSPS (RFC 2326 over TCP, interleaved RTP frames): the client
//! transport ([`client`], feature `rtsp`) and the streaming server
//! ([`server`], feature `rtsp-server`); the protocol is specified in
//! `docs/RTSP.md`.

#[cfg(feature = "rtsp")]
pub mod client;

#[cfg(feature = "rtsp-server")]
pub mod server;
