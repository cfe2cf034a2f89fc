//! The transports and servers against real peers, one test binary:
//! nginx, Samba's smbd, curl, ffprobe and GStreamer, and our own servers
//! driven by their clients (each module skips loudly when its peer is
//! missing; `SFT_REQUIRE_SERVERS=1` makes a missing peer a failure).
//!
//! - `http_client`: `HttpSource` (ureq and bulk paths) against nginx and
//!   misbehaving raw servers; `sft fetch http://` killed and resumed.
//! - `http_server`: `sft serve --http` against curl and the client.
//! - `rtsp_client`, `rtsp_server`: the RTSP client and server, ffprobe and
//!   GStreamer as third-party clients.
//! - `smb`: `SmbSource` against smbd.
//! - `probe`: `sft info`/`ls` of URLs (only the prologue is read).
//! - `mount`: a package mounted with FUSE, read and run from by real
//!   programs (feature `mount`, root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "peers/http_client.rs"]
mod http_client;
#[path = "peers/http_server.rs"]
mod http_server;
#[cfg(feature = "mount")]
#[path = "peers/mount.rs"]
mod mount;
#[path = "peers/probe.rs"]
mod probe;
#[path = "peers/rtsp_client.rs"]
mod rtsp_client;
#[path = "peers/rtsp_server.rs"]
mod rtsp_server;
#[path = "peers/smb.rs"]
mod smb;
