//! HTTP/HTTPS: the range client ([`client`], feature `http`) and the
//! built-in content server ([`server`], feature `http-server`), with the
//! pure, I/O-free helpers they share: `Range` / `Content-Range` syntax
//! ([`range`]) and `multipart/byteranges` bodies ([`multipart`]).

pub mod multipart;
pub mod range;

#[cfg(feature = "http")]
pub mod client;

#[cfg(feature = "http")]
pub(crate) mod raw;

#[cfg(feature = "http-server")]
pub mod server;
