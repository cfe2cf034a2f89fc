//! I/O adapters: the only layer that touches files and the network.
//!
//! Each adapter is one file behind one cargo feature.

#[cfg(feature = "mmap")]
pub mod mmap;

#[cfg(feature = "file")]
pub mod file;

#[cfg(feature = "std")]
pub mod shaped;

#[cfg(feature = "std")]
pub mod pipelined;

#[cfg(feature = "http-parse")]
pub mod http;

#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
pub mod rtsp;

#[cfg(any(feature = "http-server", feature = "rtsp", feature = "rtsp-server"))]
pub(crate) mod net;

#[cfg(any(feature = "http", feature = "rtsp"))]
pub(crate) mod tls;

#[cfg(feature = "smb")]
pub mod smb;
