//! The protocol tier: pure codecs for the wire formats the clients and
//! servers speak (HTTP `Range` / `Content-Range`, `multipart/byteranges`,
//! RTSP framing and packet headers). No I/O of any kind; every parser here
//! has a fuzz target whose corpus `cargo test` replays.

#[cfg(feature = "http")]
pub mod http_head;
#[cfg(feature = "http-parse")]
pub mod http_multipart;
#[cfg(feature = "http-parse")]
pub mod http_range;
#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
pub mod rtsp;
