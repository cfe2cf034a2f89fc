//! RTSP/RTSPS (RFC 2326 over TCP, interleaved RTP frames): the client
//! transport ([`client`], feature `rtsp`) and the streaming server
//! ([`server`], feature `rtsp-server`), sharing the I/O-free message and
//! frame code in [`proto`]; the protocol is specified in `docs/RTSP.md`.

#[cfg(feature = "rtsp")]
pub mod client;

pub mod proto;

#[cfg(feature = "rtsp-server")]
pub mod server;
