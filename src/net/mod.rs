//! The network tier: client transports, one feature each, all behind
//! [`RangeSource`](crate::io::RangeSource): HTTP/HTTPS (`http`),
//! RTSP/RTSPS (`rtsp`) and SMB2/3 (`smb`).

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "rtsp")]
pub mod rtsp;

#[cfg(feature = "smb")]
pub mod smb;

#[cfg(any(feature = "http", feature = "rtsp"))]
pub(crate) mod tls;
