//! The sans-IO streaming core: stream a package from any
//! `io::RangeSource`, prologue first, then FB1, then FB2, demands pre-empting prefetch, every
//! block checked before it counts.
//!
//! ```text
//!   RangeSource ──bytes──▶ io::drive ──on_data──▶ StreamSession ──▶ BlockSink
//!   (transport)  ◀─ranges── (the one loop)  ◀─poll_fetch─  (no I/O)     (cache, memory)
//!                                            ◀─poll_event─  Scheduler
//! ```
//!
//! - [`TransportError`]: what a transport reports (the `RangeSource`
//!   trait itself lives in the I/O tier, `sft::io`).
//! - [`scheduler`]: which blocks to fetch next ([`Scheduler`]), a pure
//!   data structure with priority classes Demand > FB1 > FB2.
//! - [`session`]: the state machine ([`StreamSession`]): no I/O, no clock,
//!   no threads; the same inputs give the same request sequence. Time is
//!   passed in ([`StreamSession::handle_timeout`], as quinn-proto does).
//! - [`retry`]: the retry policy ([`RetryPolicy`]: back-off within a total
//!   window).
//! - `sft::io::drive` (I/O tier): the driver that runs a session over
//!   a source.
//!
//! ```
//! # #[cfg(all(feature = "write", feature = "std"))]
//! # fn main() -> sft::Result<()> {
//! use sft::stream::{Event, SessionConfig, StreamSession};
//! use sft::io::drive;
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![1u8; 500_000])?
//!     .write_to_vec()?;
//!
//! let mut session = StreamSession::new(SessionConfig::default().max_request_bytes(128 * 1024));
//! let mut copy = Vec::new();
//! let mut events = Vec::new();
//! drive::drive_with(&mut session, &package, &mut copy, &mut |e| {
//!     if matches!(e, Event::LaunchReady | Event::Complete) {
//!         events.push(format!("{e:?}"));
//!     }
//! })?;
//! assert_eq!(events, ["LaunchReady", "Complete"]);
//! assert_eq!(copy, package); // byte-identical
//! # Ok(()) }
//! # #[cfg(not(all(feature = "write", feature = "std")))]
//! # fn main() {}
//! ```

pub mod retry;
pub mod scheduler;
pub mod session;

pub use crate::error::{TransportError, TransportErrorKind};
pub use retry::{Backoff, RetryPolicy};
pub use scheduler::{Batch, BlockState, Priority, Scheduler, SchedulerLimits};
pub use session::{
    BlockSink, Event, FetchRequest, NullSink, Progress, RequestId, SessionConfig, StreamSession,
    VerifiedBlock,
};
