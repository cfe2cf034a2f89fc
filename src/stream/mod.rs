//! The sans-IO streaming core: stream a package from any [`RangeSource`],
//! prologue first, then FB1, then FB2, demands pre-empting prefetch, every
//! block checked before it counts.
//!
//! ```text
//!   RangeSource ──bytes──▶ blocking::drive ──on_data──▶ StreamSession ──▶ BlockSink
//!   (transport)  ◀─ranges── (the one loop)  ◀─poll_fetch─  (no I/O)     (cache, memory)
//!                                            ◀─poll_event─  Scheduler
//! ```
//!
//! - [`source`]: the [`RangeSource`] trait every transport implements, and
//!   [`TransportError`].
//! - [`scheduler`]: which blocks to fetch next ([`Scheduler`]), a pure
//!   data structure with priority classes Demand > FB1 > FB2.
//! - [`session`]: the state machine ([`StreamSession`]): no I/O, no clock,
//!   no threads; the same inputs give the same request sequence.
//! - [`blocking`]: the driver that runs a session over a source.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use sft::stream::{blocking, Event, SessionConfig, StreamSession};
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![1u8; 500_000])?
//!     .write_to_vec()?;
//!
//! let mut session = StreamSession::new(SessionConfig::default().max_request_bytes(128 * 1024));
//! let mut copy = Vec::new();
//! let mut events = Vec::new();
//! blocking::drive_with(&mut session, &package, &mut copy, &mut |e| {
//!     if matches!(e, Event::LaunchReady | Event::Complete) {
//!         events.push(format!("{e:?}"));
//!     }
//! })?;
//! assert_eq!(events, ["LaunchReady", "Complete"]);
//! assert_eq!(copy, package); // byte-identical
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

pub mod blocking;
pub mod scheduler;
pub mod session;
pub mod source;

pub use scheduler::{Batch, BlockState, Priority, Scheduler, SchedulerLimits};
pub use session::{
    BlockSink, Event, FetchRequest, NullSink, Progress, RequestId, SessionConfig, StreamSession,
    VerifiedBlock,
};
pub use source::{ChunkSink, RangeSource, TransportError, TransportErrorKind};
