//! [`StreamSession`]: the sans-IO state machine that streams one package.
//!
//! The session never reads, sleeps or spawns. It tells its driver which
//! byte range to fetch next ([`StreamSession::poll_fetch`]), is handed the
//! bytes that arrive ([`StreamSession::on_data`]) or the failure
//! ([`StreamSession::on_failure`]), takes demands from readers
//! ([`StreamSession::request_block`], [`StreamSession::request_range`]) and
//! reports what happened ([`StreamSession::poll_event`]). The same calls
//! give the same request sequence, every time.
//!
//! # The order of requests
//!
//! 1. **The prologue.** The session first asks for
//!    `0..max(128, initial_read)` (64 KiB by default, clamped to the
//!    source's length when the driver has reported it through
//!    [`StreamSession::on_source_len`]). That holds the header, which gives
//!    `prologue_len`; if the prologue is longer than the first read, one
//!    more request fetches the rest. The prologue is then validated with
//!    [`Prologue::parse`] and every block record is checked, with the
//!    storage layout ([`crate::BlockIndex::check_storage`]: blocks back to
//!    back in id order, which FB1's one request and merged requests rely
//!    on). Bytes of the
//!    first read past the prologue are not wasted: every whole block among
//!    them is verified and accepted.
//! 2. **FB1 as one request** (by default; its own size limit is
//!    [`SessionConfig::fb1_request_bytes`]): FB1 is contiguous at the start
//!    of the data region, so launching costs two round trips.
//! 3. **Then by priority** (see [`super::scheduler`]): demanded blocks
//!    first, then what is left of FB1, then FB2 in stored order, adjacent
//!    blocks merged into requests of up to
//!    [`SessionConfig::max_request_bytes`].
//!
//! # Where verified bytes go: [`BlockSink`]
//!
//! Each block that completes is checked with the crate's one decode path
//! (CRC-32 of the stored bytes, then inflate with an exact size cap, as
//! [`crate::Block::decode`] does) before it is handed to the caller's
//! [`BlockSink`], passed to [`StreamSession::on_data`], together with its
//! record, its stored bytes and its decoded bytes. Only after the sink
//! returns `Ok` is the block marked present and [`Event::BlockReady`]
//! queued. This design rather than a `take_block` queue because:
//!
//! - **no extra copies**: when a chunk holds a whole block (the usual case:
//!   transports read large ranges), the stored bytes given to the sink are
//!   a sub-slice of the driver's receive buffer. A cache writes them at
//!   [`BlockInfo::stored_offset`] of a sparse file and the result is
//!   byte-identical to the package; only blocks split across chunks are
//!   assembled in a buffer first;
//! - **bounded memory**: the session keeps no verified block, so a caller
//!   that never collects blocks cannot make it grow;
//! - **durability before presence**: the cache can make the block durable
//!   inside [`BlockSink::block`]; if it fails, the block is not marked
//!   present and is queued again.
//!
//! # Failures
//!
//! Methods return `Err` only for misuse (an unknown request id, bytes
//! outside a request) and for errors of the caller's own sink. Failures of
//! the stream itself — a malformed prologue, a block that failed its check
//! [`SessionConfig::max_attempts`] times, a transport error that is not
//! retryable or kept recurring — are reported once, as [`Event::Failed`];
//! after that the session asks for nothing more.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use sft::stream::{Event, SessionConfig, StreamSession};
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
//!     .add_bytes("app.exe", vec![3u8; 200_000])?
//!     .write_to_vec()?;
//!
//! // A hand-written driver: serve every request from memory, whole.
//! let mut session = StreamSession::new(SessionConfig::default().initial_read(4096));
//! session.on_source_len(package.len() as u64); // clamps the first read
//! let mut copy = Vec::new(); // `Vec<u8>` is a sink that rebuilds the package
//! let mut launch_ready = false;
//! while let Some(req) = session.poll_fetch() {
//!     let bytes = &package[req.range.start as usize..req.range.end as usize];
//!     session.on_data(req.id, req.range.start, bytes, &mut copy)?;
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             Event::LaunchReady => launch_ready = true,
//!             Event::Failed(e) => return Err(e),
//!             _ => {}
//!         }
//!     }
//! }
//! assert!(launch_ready && session.is_complete());
//! assert_eq!(copy, package);
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::{BTreeMap, VecDeque};
use core::fmt;
use core::ops::Range;

use super::retry::{Backoff, RetryPolicy};
use super::scheduler::{BlockState, Priority, Scheduler, SchedulerLimits};
use crate::error::TransportError;
use crate::error::{Error, ErrorKind, FormatError, FormatProblem, Region};
use crate::format::{BlockId, Codec, HEADER_LEN, Header};
use crate::index::BlockInfo;
use crate::read::{Block, Decoder, Prologue};

/// Identifies one request handed out by [`StreamSession::poll_fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request {}", self.0)
    }
}

/// A byte range the session wants fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a fetch request must be served or failed"]
pub struct FetchRequest {
    /// The id to pass back to [`StreamSession::on_data`] and
    /// [`StreamSession::on_failure`].
    pub id: RequestId,
    /// Absolute byte range of the package to fetch.
    pub range: Range<u64>,
    /// Why: the prologue, a demand, FB1 or FB2.
    pub priority: Priority,
    /// Ids of the blocks in the range (empty for the prologue).
    pub blocks: Range<u32>,
}

/// Counters carried by [`Event::Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the package present: the prologue and the stored bytes of
    /// present blocks.
    pub bytes: u64,
    /// Blocks present.
    pub blocks: u32,
    /// Bytes of the whole package.
    pub total_bytes: u64,
    /// Blocks in the package.
    pub total_blocks: u32,
}

/// What happened, from [`StreamSession::poll_event`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// The prologue arrived and is valid: entries and the block index can
    /// be read through [`StreamSession::prologue`].
    PrologueReady,
    /// A block was verified and handed to the sink.
    BlockReady(BlockId),
    /// Progress counters, after the prologue and after each delivery that
    /// completed blocks.
    Progress(Progress),
    /// Every FB1 block is present: the application can launch (App-V's
    /// CachedLaunchSize = LaunchSize).
    LaunchReady,
    /// Every block is present.
    Complete,
    /// A block arrived damaged (its check failed) and will be fetched
    /// again: `attempt` failures so far, at most
    /// [`SessionConfig::max_attempts`] before the stream fails.
    Refetch {
        /// The block.
        block: BlockId,
        /// Failed fetches of it so far (1 after the first).
        attempt: u32,
        /// What its check found.
        damage: crate::error::IntegrityError,
    },
    /// The source failed in a retryable way (a connection lost or
    /// refused, a time-out) and is retried after `wait`; see
    /// [`SessionConfig::retry`].
    Retry {
        /// The pause before the next attempt.
        wait: core::time::Duration,
        /// Failed attempts in this outage so far.
        failures: u32,
        /// The last failure.
        error: TransportError,
    },
    /// The stream failed; the session asks for nothing more.
    Failed(Error),
}

/// A block that passed its checks, as handed to a [`BlockSink`].
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBlock<'a> {
    /// The block's record.
    pub info: BlockInfo,
    /// Its stored bytes (to be written at `info.stored_offset`).
    pub stored: &'a [u8],
    /// Its decoded bytes (`info.raw_len` long; the same slice as `stored`
    /// for stored blocks). Empty for zlib blocks when the session was
    /// configured with [`SessionConfig::decode_blocks`]`(false)`.
    pub decoded: &'a [u8],
}

/// Where a session puts what it verified; see the [module docs](self) for
/// why the session pushes blocks rather than keeping them.
pub trait BlockSink {
    /// The validated prologue (bytes `0..prologue_len`).
    ///
    /// # Errors
    /// The sink's own; returned from [`StreamSession::on_data`].
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error>;

    /// A verified block. The block is marked present only if this returns
    /// `Ok`.
    ///
    /// # Errors
    /// The sink's own; returned from [`StreamSession::on_data`], and the
    /// block is queued again.
    fn block(&mut self, block: &VerifiedBlock<'_>) -> Result<(), Error>;

    /// Several blocks checked by the driver
    /// ([`StreamSession::on_checked_data`]) handed over at once: `stored`
    /// holds their stored bytes back to back, from `blocks[0]`'s stored
    /// offset. They are marked present only if this returns `Ok` (all
    /// queued again otherwise). The default hands each to
    /// [`BlockSink::block`] (with `decoded` empty for compressed blocks); a
    /// sink that writes a file can write the run in one call.
    ///
    /// # Errors
    /// The sink's own.
    fn block_run(&mut self, stored: &[u8], blocks: &[BlockInfo]) -> Result<(), Error> {
        let mut at = 0usize;
        for info in blocks {
            let end = at + info.stored_len as usize;
            let Some(bytes) = stored.get(at..end) else {
                return Err(Error::invalid(format!(
                    "{}: the run ends before the block",
                    info.id
                )));
            };
            let decoded: &[u8] = if info.codec == Codec::Stored {
                bytes
            } else {
                &[]
            };
            self.block(&VerifiedBlock {
                info: *info,
                stored: bytes,
                decoded,
            })?;
            at = end;
        }
        Ok(())
    }

    /// Whether this sink reads [`VerifiedBlock::decoded`]. A sink that
    /// keeps stored bytes only (a cache, a copy of the package) says
    /// `false`, which lets a driver check that compressed blocks inflate on
    /// other threads ([`StreamSession::on_checked_data`]) and hand them
    /// over with `decoded` empty. The default is `true`.
    fn needs_decoded(&self) -> bool {
        true
    }
}

/// A sink that keeps nothing (for counting, or when blocks are consumed
/// through events only).
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl BlockSink for NullSink {
    fn prologue(&mut self, _: &[u8]) -> Result<(), Error> {
        Ok(())
    }
    fn block(&mut self, _: &VerifiedBlock<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn needs_decoded(&self) -> bool {
        false
    }
}

/// Rebuilds the package image in memory: the prologue at 0 and each
/// block's stored bytes at its stored offset (zero-filled gaps until every
/// block is present).
impl BlockSink for Vec<u8> {
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
        put_at(self, 0, bytes)
    }
    fn block(&mut self, block: &VerifiedBlock<'_>) -> Result<(), Error> {
        put_at(self, block.info.stored_offset, block.stored)
    }
    fn needs_decoded(&self) -> bool {
        false
    }
}

fn put_at(v: &mut Vec<u8>, offset: u64, bytes: &[u8]) -> Result<(), Error> {
    let start = usize::try_from(offset)
        .map_err(|_| Error::invalid(format!("offset {offset} does not fit in memory")))?;
    let end = start + bytes.len();
    if v.len() < end {
        v.resize(end, 0);
    }
    v[start..end].copy_from_slice(bytes);
    Ok(())
}

/// Options of a [`StreamSession`], set by value.
///
/// ```
/// use sft::stream::SessionConfig;
/// let c = SessionConfig::default().max_request_bytes(256 * 1024).launch_only(true);
/// assert!(c.is_launch_only());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    limits: SchedulerLimits,
    max_attempts: u32,
    launch_only: bool,
    background_rate: Option<u64>,
    initial_read: u64,
    max_prologue_bytes: u64,
    decode_blocks: bool,
    retry: RetryPolicy,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            limits: SchedulerLimits::default(),
            max_attempts: 4,
            launch_only: false,
            background_rate: None,
            initial_read: 64 * 1024,
            max_prologue_bytes: 256 << 20,
            decode_blocks: true,
            retry: RetryPolicy::default(),
        }
    }
}

impl SessionConfig {
    /// Largest request for demand and FB2 blocks (default 1 MiB).
    pub fn max_request_bytes(mut self, n: u64) -> Self {
        self.limits.max_request_bytes = n;
        self
    }
    /// Largest request for FB1 blocks (default unlimited: one request).
    pub fn fb1_request_bytes(mut self, n: u64) -> Self {
        self.limits.fb1_request_bytes = n;
        self
    }
    /// Most requests in flight (default 4).
    pub fn max_in_flight_requests(mut self, n: u32) -> Self {
        self.limits.max_in_flight_requests = n;
        self
    }
    /// Bytes in flight at which new requests stop (default 8 MiB).
    pub fn max_in_flight_bytes(mut self, n: u64) -> Self {
        self.limits.max_in_flight_bytes = n;
        self
    }
    /// Failures of one block after which the stream fails (default 4):
    /// damaged data always counts; retryable transport errors count only
    /// for a session that is not given the time (see
    /// [`SessionConfig::retry`]).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// How a session that is given the time
    /// ([`StreamSession::handle_timeout`]) retries a source that fails in
    /// a retryable way: back-off within a total window (default
    /// [`RetryPolicy::default`]: 60 s). Drivers in `sft::io::drive` give
    /// the time.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }
    /// Shorthand: [`SessionConfig::retry`] with this window.
    pub fn retry_for(mut self, window: core::time::Duration) -> Self {
        self.retry = self.retry.window(window);
        self
    }
    /// See [`SessionConfig::retry`].
    pub fn get_retry(&self) -> RetryPolicy {
        self.retry
    }
    /// Stop after FB1: FB2 blocks are fetched only on demand.
    pub fn launch_only(mut self, on: bool) -> Self {
        self.launch_only = on;
        self
    }
    /// Pace background prefetch (FB2 blocks no read is waiting on) to at
    /// most `bytes_per_second` on average; `None` (the default) or `0`:
    /// as fast as the source goes. The prologue, FB1 and demands are never
    /// held back. Pacing needs the time
    /// ([`StreamSession::handle_timeout`], as every driver gives it):
    /// while an FB2 request waits for its turn,
    /// [`StreamSession::poll_fetch`] hands out nothing and
    /// [`StreamSession::poll_timeout`] says until when.
    ///
    /// ```
    /// use sft::stream::SessionConfig;
    /// let c = SessionConfig::default().background_rate(Some(250_000));
    /// assert_eq!(c.get_background_rate(), Some(250_000));
    /// ```
    pub fn background_rate(mut self, bytes_per_second: Option<u64>) -> Self {
        self.background_rate = bytes_per_second.filter(|&r| r > 0);
        self
    }
    /// See [`SessionConfig::background_rate`].
    pub fn get_background_rate(&self) -> Option<u64> {
        self.background_rate
    }
    /// Size of the first request, which must hold the header and should
    /// hold the whole prologue (default 64 KiB; at least 128 is used).
    pub fn initial_read(mut self, n: u64) -> Self {
        self.initial_read = n;
        self
    }
    /// Largest prologue accepted (default 256 MiB), a cap on the memory a
    /// hostile header can make the session allocate.
    pub fn max_prologue_bytes(mut self, n: u64) -> Self {
        self.max_prologue_bytes = n;
        self
    }
    /// Inflate zlib blocks on arrival (default true): the CRC-32 of the
    /// stored bytes is always checked; inflating also checks that the
    /// block decodes to exactly its `raw_len`. With `false` (a cache that
    /// stores blocks as they are and decodes them when read, where the
    /// size is checked again), [`VerifiedBlock::decoded`] is empty for
    /// zlib blocks, and arriving blocks cost only a CRC.
    ///
    /// ```
    /// use sft::stream::SessionConfig;
    /// assert!(!SessionConfig::default().decode_blocks(false).is_decoding_blocks());
    /// ```
    pub fn decode_blocks(mut self, on: bool) -> Self {
        self.decode_blocks = on;
        self
    }
    /// See [`SessionConfig::decode_blocks`].
    pub fn is_decoding_blocks(&self) -> bool {
        self.decode_blocks
    }
    /// The scheduler limits.
    pub fn limits(&self) -> SchedulerLimits {
        self.limits
    }
    /// See [`SessionConfig::max_attempts`].
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }
    /// See [`SessionConfig::launch_only`].
    pub fn is_launch_only(&self) -> bool {
        self.launch_only
    }
}

/// Sorted, disjoint, merged byte ranges.
#[derive(Debug, Clone, Default)]
struct Coverage(Vec<Range<u64>>);

impl Coverage {
    fn insert(&mut self, r: Range<u64>) {
        if r.start >= r.end {
            return;
        }
        // Fast path: in-order delivery extends the last range.
        if let Some(last) = self.0.last_mut() {
            if r.start >= last.start && r.start <= last.end {
                last.end = last.end.max(r.end);
                return;
            }
            if r.start > last.end {
                self.0.push(r);
                return;
            }
        }
        let mut start = r.start;
        let mut end = r.end;
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for x in self.0.drain(..) {
            if x.end < start {
                out.push(x);
            } else if x.start > end {
                if !placed {
                    out.push(start..end);
                    placed = true;
                }
                out.push(x);
            } else {
                start = start.min(x.start);
                end = end.max(x.end);
            }
        }
        if !placed {
            out.push(start..end);
        }
        self.0 = out;
    }

    /// First byte in `0..n` not covered, if any.
    fn first_gap(&self, n: u64) -> Option<u64> {
        match self.0.first() {
            Some(r) if r.start == 0 => (r.end < n).then_some(r.end),
            _ => (n > 0).then_some(0),
        }
    }
}

#[derive(Debug)]
struct Partial {
    buf: Vec<u8>,
    cov: Coverage,
}

#[derive(Debug)]
enum ReqKind {
    Prologue,
    Blocks {
        first: u32,
        finished: Vec<bool>,
        left: u32,
        partial: BTreeMap<u32, Partial>,
    },
}

#[derive(Debug)]
struct Req {
    range: Range<u64>,
    kind: ReqKind,
}

/// The sans-IO streaming state machine; see the [module docs](self).
#[derive(Debug)]
pub struct StreamSession {
    config: SessionConfig,
    endpoint: String,
    next_id: u64,
    source_len: Option<u64>,
    // Prologue phase.
    prologue: Vec<u8>,
    prologue_cov: Coverage,
    prologue_target: u64,
    prologue_failures: u32,
    prologue_in_flight: bool,
    ready: bool,
    // Block phase.
    table: Vec<BlockInfo>,
    fb1_len: u32,
    fb1_present: u32,
    total_bytes: u64,
    sched: Scheduler,
    pending_present: Vec<BlockId>,
    requests: BTreeMap<u64, Req>,
    decoder: Decoder,
    scratch: Vec<u8>,
    /// Set during [`StreamSession::on_checked_data`]: whole blocks of the
    /// chunk were inflated by the caller.
    prechecked: bool,
    /// The time last given ([`StreamSession::handle_timeout`]); `None`:
    /// never, and retries count per block as before.
    now: Option<core::time::Duration>,
    /// The outage being retried, and when the next attempt may start.
    outage: Backoff,
    retry_at: Option<core::time::Duration>,
    /// With a background rate: when the next FB2 request may start.
    background_at: Option<core::time::Duration>,
    events: VecDeque<Event>,
    launch_ready: bool,
    complete: bool,
    failed: bool,
}

impl StreamSession {
    /// A session that starts by asking for the prologue.
    pub fn new(config: SessionConfig) -> Self {
        StreamSession {
            config,
            endpoint: String::new(),
            next_id: 0,
            source_len: None,
            prologue: Vec::new(),
            prologue_cov: Coverage::default(),
            prologue_target: config.initial_read.max(HEADER_LEN as u64),
            prologue_failures: 0,
            prologue_in_flight: false,
            ready: false,
            table: Vec::new(),
            fb1_len: 0,
            fb1_present: 0,
            total_bytes: 0,
            sched: Scheduler::new(core::iter::empty(), config.limits),
            pending_present: Vec::new(),
            requests: BTreeMap::new(),
            decoder: Decoder::new(),
            prechecked: false,
            now: None,
            outage: Backoff::default(),
            retry_at: None,
            background_at: None,
            scratch: Vec::new(),
            events: VecDeque::new(),
            launch_ready: false,
            complete: false,
            failed: false,
        }
    }

    /// A session resuming with a prologue the caller already holds (from
    /// a cache): no prologue request is made, and the sink is not given
    /// it again. Bytes past `prologue_len` are ignored. Mark the blocks the
    /// cache holds with [`StreamSession::mark_present`].
    ///
    /// # Errors
    /// As [`Prologue::parse`] for invalid bytes.
    pub fn with_prologue(config: SessionConfig, mut prologue: Vec<u8>) -> Result<Self, Error> {
        // Bytes past the prologue are ignored: nothing here would write
        // them anywhere, so they must not count as present blocks.
        if let Ok(h) = Header::parse(&prologue)
            && let Ok(plen) = usize::try_from(h.prologue_len)
        {
            prologue.truncate(plen);
        }
        let mut s = Self::new(config);
        let n = prologue.len() as u64;
        s.prologue_target = n;
        s.prologue = prologue;
        s.prologue_cov.insert(0..n);
        s.prologue_failures = s.config.max_attempts;
        s.advance_prologue(&mut NullSink)?;
        if s.failed {
            while let Some(e) = s.events.pop_back() {
                if let Event::Failed(e) = e {
                    return Err(e);
                }
            }
        }
        if !s.ready {
            return Err(FormatError::new(
                Region::Header,
                0,
                FormatProblem::Truncated {
                    needed: s.prologue_target,
                    available: n,
                },
            )
            .into());
        }
        Ok(s)
    }

    /// Name the source (a path, a URL) for errors: a block that keeps
    /// failing its checks fails the stream with [`Error::Exhausted`]
    /// naming the block and this endpoint. Drivers set it from
    /// `io::RangeSource::endpoint`; it is a
    /// label only, the session does no I/O.
    pub fn set_endpoint(&mut self, endpoint: impl Into<String>) {
        self.endpoint = endpoint.into();
    }

    /// The endpoint set with [`StreamSession::set_endpoint`] (empty if
    /// none).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The source's length, when the driver learns it (file size, HTTP
    /// `Content-Range`). Before the first request, it clamps the prologue
    /// guess; once the header is known, a length other than the package's
    /// fails the stream (a truncated or different source).
    pub fn on_source_len(&mut self, len: u64) {
        self.source_len = Some(len);
        if self.ready {
            let expected = self.total_bytes;
            self.check_len(expected);
        } else if !self.prologue_in_flight && self.prologue_cov.0.is_empty() {
            self.prologue_target = self.prologue_target.min(len);
        }
    }

    fn check_len(&mut self, expected: u64) -> bool {
        let Some(len) = self.source_len else {
            return true;
        };
        if len == expected {
            return true;
        }
        let problem = if len < expected {
            FormatProblem::Truncated {
                needed: expected,
                available: len,
            }
        } else {
            FormatProblem::Inconsistent {
                field: "package length",
                expected,
                found: len,
            }
        };
        self.fail(FormatError::new(Region::Data, 0, problem).into());
        false
    }

    /// The next range to fetch, or `None` if nothing is wanted now (the
    /// prologue or a limit is awaited, or the stream is finished).
    #[must_use = "a fetch request must be served or failed"]
    pub fn poll_fetch(&mut self) -> Option<FetchRequest> {
        if self.failed || self.complete || self.retry_at.is_some() {
            return None;
        }
        if !self.ready {
            if self.prologue_in_flight {
                return None;
            }
            let gap = self.prologue_cov.first_gap(self.prologue_target)?;
            let range = gap..self.prologue_target;
            self.prologue_in_flight = true;
            return Some(self.issue(range, Priority::Prologue, ReqKind::Prologue, 0..0));
        }
        if self.background_wait().is_some() {
            return None;
        }
        let batch = self.sched.poll()?;
        if batch.priority == Priority::Fb2
            && let (Some(rate), Some(now)) = (self.config.background_rate, self.now)
        {
            // The next FB2 request starts once this one's bytes have had
            // their time at the rate; idle time earns no burst.
            let len = batch.range.end - batch.range.start;
            let start = self.background_at.map_or(now, |at| at.max(now));
            let secs = len as f64 / rate as f64;
            self.background_at = Some(start + core::time::Duration::from_secs_f64(secs));
        }
        let n = batch.blocks.end - batch.blocks.start;
        let kind = ReqKind::Blocks {
            first: batch.blocks.start,
            finished: vec![false; n as usize],
            left: n,
            partial: BTreeMap::new(),
        };
        Some(self.issue(batch.range, batch.priority, kind, batch.blocks))
    }

    fn issue(
        &mut self,
        range: Range<u64>,
        priority: Priority,
        kind: ReqKind,
        blocks: Range<u32>,
    ) -> FetchRequest {
        let id = self.next_id;
        self.next_id += 1;
        self.requests.insert(
            id,
            Req {
                range: range.clone(),
                kind,
            },
        );
        FetchRequest {
            id: RequestId(id),
            range,
            priority,
            blocks,
        }
    }

    /// Bytes arrived for request `id`, starting at absolute `offset`.
    /// Chunks may be partial and out of order; each completed block is
    /// verified and handed to `sink`.
    ///
    /// Data for a request the session dropped because the stream failed
    /// or completed is ignored.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown request or bytes outside its
    /// range; otherwise the sink's error (the block is queued again).
    pub fn on_data(
        &mut self,
        id: RequestId,
        offset: u64,
        bytes: &[u8],
        sink: &mut dyn BlockSink,
    ) -> Result<(), Error> {
        if self.failed || self.complete {
            return Ok(());
        }
        let Some(mut req) = self.requests.remove(&id.0) else {
            return Err(Error::invalid(format!("{id} is not in flight")));
        };
        if !bytes.is_empty() {
            self.outage.succeeded();
        }
        let end = offset.checked_add(bytes.len() as u64);
        if offset < req.range.start || end.is_none_or(|e| e > req.range.end) {
            let range = req.range.clone();
            self.requests.insert(id.0, req);
            return Err(Error::invalid(format!(
                "{id}: {} bytes at {offset} lie outside {}..{}",
                bytes.len(),
                range.start,
                range.end
            )));
        }
        if matches!(req.kind, ReqKind::Prologue) {
            put_at(&mut self.prologue, offset, bytes)?;
            self.prologue_cov
                .insert(offset..offset + bytes.len() as u64);
            if self.prologue_cov.first_gap(self.prologue_target).is_none() {
                self.prologue_in_flight = false;
                return self.advance_prologue(sink);
            }
            self.requests.insert(id.0, req);
            return Ok(());
        }
        let before = self.sched.present_blocks();
        let result = match self
            .prechecked
            .then(|| self.whole_run(&req, offset, bytes.len() as u64))
            .flatten()
        {
            Some(run) => self.deliver_run(&mut req, run, bytes, sink),
            None => self.deliver(&mut req, offset, bytes, sink),
        };
        let done = matches!(req.kind, ReqKind::Blocks { left: 0, .. });
        if done {
            self.sched.request_done(req.range.end - req.range.start);
        } else if !self.failed {
            self.requests.insert(id.0, req);
        }
        if self.sched.present_blocks() != before {
            self.push_progress();
        }
        self.check_milestones();
        result
    }

    /// As [`on_data`](Self::on_data), for bytes whose **whole blocks the
    /// caller has already checked** as the session would (on other
    /// threads, say): each block's CRC-32 with
    /// [`Block::verify`](crate::read::Block::verify) and, if the session
    /// decodes blocks, that a compressed block inflates to exactly its
    /// `raw_len` ([`Decoder::decode_into`](crate::read::Decoder::decode_into)).
    /// The session does not check blocks that lie whole in `bytes` again,
    /// and hands them to the sink with [`VerifiedBlock::decoded`] empty
    /// for compressed blocks. Blocks completed from pieces of several calls
    /// are checked in full, as by `on_data`. Only for sinks whose
    /// [`BlockSink::needs_decoded`] is `false`; the driver in
    /// `sft::io::drive` uses it to check on every core.
    ///
    /// The caller vouches for those checks: a block passed here that would
    /// fail them is recorded as present.
    ///
    /// # Errors
    /// As [`on_data`](Self::on_data).
    pub fn on_checked_data(
        &mut self,
        id: RequestId,
        offset: u64,
        bytes: &[u8],
        sink: &mut dyn BlockSink,
    ) -> Result<(), Error> {
        self.prechecked = true;
        let result = self.on_data(id, offset, bytes, sink);
        self.prechecked = false;
        result
    }

    /// Hand a run of whole blocks checked by the caller to the sink at
    /// once ([`BlockSink::block_run`]); all are present if it succeeds, all
    /// queued again if it fails.
    fn deliver_run(
        &mut self,
        req: &mut Req,
        run: Range<usize>,
        bytes: &[u8],
        sink: &mut dyn BlockSink,
    ) -> Result<(), Error> {
        let ReqKind::Blocks {
            first,
            finished,
            left,
            ..
        } = &mut req.kind
        else {
            return Ok(());
        };
        for id in run.clone() {
            finished[id - *first as usize] = true;
            *left -= 1;
        }
        if let Err(e) = sink.block_run(bytes, &self.table[run.clone()]) {
            for id in run {
                self.sched.requeue(id as u32);
            }
            return Err(e);
        }
        for id in run {
            self.block_done(id as u32);
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        req: &mut Req,
        offset: u64,
        bytes: &[u8],
        sink: &mut dyn BlockSink,
    ) -> Result<(), Error> {
        let ReqKind::Blocks {
            first,
            finished,
            left,
            partial,
        } = &mut req.kind
        else {
            return Ok(());
        };
        let first = *first;
        let range = first as usize..first as usize + finished.len();
        let chunk_end = offset + bytes.len() as u64;
        let mut pos = offset;
        while pos < chunk_end && !self.failed {
            let blocks = &self.table[range.clone()];
            let i = blocks
                .partition_point(|b| b.stored_offset <= pos)
                .saturating_sub(1);
            let info = blocks[i];
            let (s, e) = (
                info.stored_offset,
                info.stored_offset + u64::from(info.stored_len),
            );
            let piece_end = e.min(chunk_end);
            if pos < s || piece_end <= pos {
                // Not inside any block (cannot happen for a valid request).
                return Err(Error::invalid(format!(
                    "byte {pos} is in no requested block"
                )));
            }
            let piece = &bytes[(pos - offset) as usize..(piece_end - offset) as usize];
            let id = first + i as u32;
            if !finished[i] {
                let whole = pos == s && piece_end == e && !partial.contains_key(&id);
                if whole {
                    finished[i] = true;
                    *left -= 1;
                    let prechecked = self.prechecked;
                    self.complete_block(id, piece, sink, prechecked)?;
                } else {
                    let p = partial.entry(id).or_insert_with(|| Partial {
                        buf: vec![0; info.stored_len as usize],
                        cov: Coverage::default(),
                    });
                    let at = (pos - s) as usize;
                    p.buf[at..at + piece.len()].copy_from_slice(piece);
                    p.cov.insert(pos - s..piece_end - s);
                    if p.cov.first_gap(u64::from(info.stored_len)).is_none() {
                        finished[i] = true;
                        *left -= 1;
                        if let Some(p) = partial.remove(&id) {
                            self.complete_block(id, &p.buf, sink, false)?;
                        }
                    }
                }
            }
            pos = piece_end;
        }
        Ok(())
    }

    /// Verify one block and hand it to the sink; `prechecked`: the caller
    /// has checked it ([`StreamSession::on_checked_data`]).
    fn complete_block(
        &mut self,
        id: u32,
        stored: &[u8],
        sink: &mut dyn BlockSink,
        prechecked: bool,
    ) -> Result<(), Error> {
        let info = self.table[id as usize];
        let checked = Block::new(info, stored).and_then(|b| {
            if !prechecked {
                b.verify()?;
            }
            if info.codec != Codec::Stored {
                if self.config.decode_blocks && !prechecked {
                    self.decoder.inflate(&info, stored, &mut self.scratch)?;
                } else {
                    self.scratch.clear();
                }
            }
            Ok(())
        });
        match checked {
            Ok(()) => {
                let decoded: &[u8] = if info.codec == Codec::Stored {
                    stored
                } else {
                    &self.scratch
                };
                if let Err(e) = sink.block(&VerifiedBlock {
                    info,
                    stored,
                    decoded,
                }) {
                    self.sched.requeue(id);
                    return Err(e);
                }
                self.block_done(id);
            }
            Err(e) if e.kind() == ErrorKind::Integrity => {
                let attempts = self.sched.block_failed(id, self.config.max_attempts);
                if self.sched.state(id) != Some(BlockState::Failed)
                    && let Error::Integrity(damage) = &e
                {
                    self.events.push_back(Event::Refetch {
                        block: BlockId(id),
                        attempt: attempts,
                        damage: *damage,
                    });
                }
                if self.sched.state(id) == Some(BlockState::Failed) {
                    let e = match e {
                        Error::Integrity(last) => Error::Exhausted {
                            block: BlockId(id),
                            endpoint: if self.endpoint.is_empty() {
                                String::from("(unnamed source)")
                            } else {
                                self.endpoint.clone()
                            },
                            attempts,
                            last,
                        },
                        other => other,
                    };
                    self.fail(e);
                }
            }
            Err(e) => self.fail(e),
        }
        Ok(())
    }

    /// Block `id` is in the sink: record it present.
    fn block_done(&mut self, id: u32) {
        self.sched.block_present(id);
        if id < self.fb1_len {
            self.fb1_present += 1;
        }
        self.events.push_back(Event::BlockReady(BlockId(id)));
    }

    /// The blocks of a chunk handed to [`StreamSession::on_checked_data`],
    /// if it holds exactly whole blocks of the request, none of them begun:
    /// their index range in `self.table`.
    fn whole_run(&self, req: &Req, offset: u64, len: u64) -> Option<Range<usize>> {
        let ReqKind::Blocks {
            first,
            finished,
            partial,
            ..
        } = &req.kind
        else {
            return None;
        };
        let blocks = &self.table[*first as usize..*first as usize + finished.len()];
        let i = blocks.partition_point(|b| b.stored_offset < offset);
        let end = offset.checked_add(len)?;
        let mut j = i;
        let mut at = offset;
        while at < end {
            let b = blocks.get(j)?;
            if b.stored_offset != at || finished[j] || partial.contains_key(&(*first + j as u32)) {
                return None;
            }
            at = b.stored_range().end;
            j += 1;
        }
        (at == end && j > i).then(|| *first as usize + i..*first as usize + j)
    }

    /// Request `id` failed. Retryable errors queue its unfinished blocks
    /// again (each failure counts against [`SessionConfig::max_attempts`]);
    /// others fail the stream. Unknown ids are ignored.
    pub fn on_failure(&mut self, id: RequestId, error: &TransportError) {
        if self.failed || self.complete {
            return;
        }
        let Some(req) = self.requests.remove(&id.0) else {
            return;
        };
        if let Some(now) = self.now
            && error.is_retryable()
        {
            // Given the time: the request's blocks are queued again
            // without counting against them, and the source is retried
            // after a pause, within the window.
            let what = match req.kind {
                ReqKind::Prologue => {
                    self.prologue_in_flight = false;
                    String::from("the prologue")
                }
                ReqKind::Blocks {
                    first, finished, ..
                } => {
                    self.sched.request_done(req.range.end - req.range.start);
                    let mut waiting = None;
                    for (i, done) in finished.iter().enumerate() {
                        if !*done {
                            self.sched.requeue(first + i as u32);
                            waiting.get_or_insert(first + i as u32);
                        }
                    }
                    waiting.map_or_else(String::new, |b| format!("block {b}"))
                }
            };
            if self.retry_at.is_some() {
                // Already waiting: one outage, one count.
                return;
            }
            match self.outage.failed(now, &self.config.retry) {
                Some(at) => {
                    self.retry_at = Some(at);
                    self.events.push_back(Event::Retry {
                        wait: at.saturating_sub(now),
                        failures: self.outage.failures(),
                        error: error.summary(""),
                    });
                }
                None => {
                    let (n, secs) = (
                        self.outage.failures(),
                        self.outage.elapsed(now).as_secs_f64(),
                    );
                    self.fail(Error::Transport(error.summary(&format!(
                        "{what}: still failing after {secs:.1} s and {n} attempts (the retry window is {:.1} s)",
                        self.config.retry.get_window().as_secs_f64()
                    ))));
                }
            }
            return;
        }
        match req.kind {
            ReqKind::Prologue => {
                self.prologue_in_flight = false;
                self.prologue_failures += 1;
                if !error.is_retryable() || self.prologue_failures >= self.config.max_attempts {
                    let n = self.prologue_failures;
                    self.fail(Error::Transport(
                        error.summary(&format!("fetching the prologue failed ({n} attempts)")),
                    ));
                }
            }
            ReqKind::Blocks {
                first, finished, ..
            } => {
                self.sched.request_done(req.range.end - req.range.start);
                for (i, done) in finished.iter().enumerate() {
                    if *done {
                        continue;
                    }
                    let block = first + i as u32;
                    if !error.is_retryable() {
                        self.fail(Error::Transport(
                            error.summary(&format!("fetching block {block}")),
                        ));
                        return;
                    }
                    let n = self.sched.block_failed(block, self.config.max_attempts);
                    if self.sched.state(block) == Some(BlockState::Failed) {
                        self.fail(Error::Transport(
                            error.summary(&format!("block {block} failed {n} times")),
                        ));
                        return;
                    }
                }
            }
        }
    }

    /// The time is `now` (a [`Duration`](core::time::Duration) since any
    /// fixed origin, the same for every call): a session given the time
    /// retries a failing source with back-off within a window
    /// ([`SessionConfig::retry`]) instead of counting retryable failures
    /// against blocks. While it waits, [`StreamSession::poll_fetch`] hands
    /// out nothing and [`StreamSession::poll_timeout`] says until when;
    /// call this again then. [`StreamSession::on_failure`] takes the time
    /// of the last call.
    pub fn handle_timeout(&mut self, now: core::time::Duration) {
        self.now = Some(now);
        if self.retry_at.is_some_and(|at| at <= now) {
            self.retry_at = None;
        }
    }

    /// When the session next needs [`StreamSession::handle_timeout`]: the
    /// end of a back-off pause, if it is waiting to retry a source.
    pub fn poll_timeout(&self) -> Option<core::time::Duration> {
        if self.failed || self.complete {
            return None;
        }
        match (self.retry_at, self.background_wait()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// With a [background rate](SessionConfig::background_rate): when the
    /// next FB2 request may start, if FB2 is what is queued next and its
    /// turn is still to come.
    fn background_wait(&self) -> Option<core::time::Duration> {
        let now = self.now?;
        self.config.background_rate?;
        let at = self.background_at.filter(|&at| at > now)?;
        (self.sched.next_priority() == Some(Priority::Fb2)).then_some(at)
    }

    /// Give up on request `id` without counting a failure (the driver is
    /// shutting down, or its sink failed): its unfinished blocks go back
    /// to their queues and a prologue request will be made again. Unknown
    /// ids are ignored.
    pub fn cancel(&mut self, id: RequestId) {
        let Some(req) = self.requests.remove(&id.0) else {
            return;
        };
        match req.kind {
            ReqKind::Prologue => self.prologue_in_flight = false,
            ReqKind::Blocks {
                first, finished, ..
            } => {
                self.sched.request_done(req.range.end - req.range.start);
                for (i, done) in finished.iter().enumerate() {
                    if !*done {
                        self.sched.requeue(first + i as u32);
                    }
                }
            }
        }
    }

    /// A read waits on block `id` (a stream fault): fetch it before any
    /// prefetch. No-op if it is present or already in flight.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before the prologue is known or for an id
    /// out of range.
    pub fn request_block(&mut self, id: BlockId) -> Result<(), Error> {
        if !self.ready {
            return Err(Error::invalid(
                "block requested before the prologue is known",
            ));
        }
        if id.0 >= self.sched.len() {
            return Err(Error::invalid(format!(
                "{id} out of range ({} blocks)",
                self.sched.len()
            )));
        }
        self.sched.demand(id.0);
        Ok(())
    }

    /// A read waits on logical bytes `range` (offsets in the package's
    /// logical stream, as in [`crate::Entry`] extents): demand every block
    /// they touch, in order.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] before the prologue is known or for a range
    /// past the end of the package.
    pub fn request_range(&mut self, range: Range<u64>) -> Result<(), Error> {
        if !self.ready {
            return Err(Error::invalid(
                "range requested before the prologue is known",
            ));
        }
        if range.start >= range.end {
            return Ok(());
        }
        let logical_end = self.table.last().map_or(0, |b| b.logical_range().end);
        if range.end > logical_end {
            return Err(Error::invalid(format!(
                "logical range {}..{} exceeds the package's {logical_end} bytes",
                range.start, range.end
            )));
        }
        // Logical offsets are increasing in id order: FB1 then FB2.
        let first = self
            .table
            .partition_point(|b| b.logical_offset + u64::from(b.raw_len) <= range.start);
        let end = self.table.partition_point(|b| b.logical_offset < range.end);
        for id in first..end {
            self.sched.demand(id as u32);
        }
        Ok(())
    }

    /// Block `id` is present already (the cache holds it): it will not be
    /// fetched. May be called before the prologue arrives; ids are checked
    /// then, and an id out of range fails the stream.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an id out of range once the prologue is
    /// known.
    pub fn mark_present(&mut self, id: BlockId) -> Result<(), Error> {
        if !self.ready {
            self.pending_present.push(id);
            return Ok(());
        }
        if id.0 >= self.sched.len() {
            return Err(Error::invalid(format!(
                "{id} out of range ({} blocks)",
                self.sched.len()
            )));
        }
        if self.sched.state(id.0) == Some(BlockState::InFlight) {
            // Its request will deliver it; the duplicate is harmless.
            return Ok(());
        }
        if self.sched.state(id.0) != Some(BlockState::Present) {
            self.sched.mark_present(id.0);
            if id.0 < self.fb1_len {
                self.fb1_present += 1;
            }
        }
        self.check_milestones();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The validated prologue, once [`Event::PrologueReady`] has fired.
    pub fn prologue(&self) -> Option<Prologue<'_>> {
        if !self.ready {
            return None;
        }
        Prologue::parse(&self.prologue).ok()
    }

    /// Block `id`'s validated record, once the prologue is known.
    pub fn block_info(&self, id: BlockId) -> Option<&BlockInfo> {
        self.table.get(id.0 as usize)
    }

    /// Number of blocks (0 until the prologue is known).
    pub fn block_count(&self) -> u32 {
        self.table.len() as u32
    }

    /// Block `id`'s scheduling state (`None` out of range or before the
    /// prologue is known).
    pub fn block_state(&self, id: BlockId) -> Option<BlockState> {
        self.sched.state(id.0)
    }

    /// The ids of the blocks holding logical bytes `range` (empty before
    /// the prologue is known).
    pub fn blocks_for_logical(&self, range: Range<u64>) -> Range<u32> {
        if range.start >= range.end {
            return 0..0;
        }
        let first = self
            .table
            .partition_point(|b| b.logical_offset + u64::from(b.raw_len) <= range.start);
        let end = self.table.partition_point(|b| b.logical_offset < range.end);
        first as u32..(end.max(first)) as u32
    }

    /// True if block `id` is present.
    pub fn is_present(&self, id: BlockId) -> bool {
        self.sched.state(id.0) == Some(BlockState::Present)
    }

    /// Current progress counters (zero totals until the prologue is known).
    pub fn progress(&self) -> Progress {
        Progress {
            bytes: if self.ready {
                self.prologue_len() + self.sched.present_bytes()
            } else {
                0
            },
            blocks: self.sched.present_blocks(),
            total_bytes: self.total_bytes,
            total_blocks: self.block_count(),
        }
    }

    fn prologue_len(&self) -> u64 {
        self.prologue.len() as u64
    }

    /// Requests handed out and not yet completed or failed.
    pub fn in_flight_requests(&self) -> usize {
        self.requests.len()
    }

    /// True if request `id` is still in flight.
    pub fn is_in_flight(&self, id: RequestId) -> bool {
        self.requests.contains_key(&id.0)
    }

    /// True once every FB1 block is present.
    pub fn is_launch_ready(&self) -> bool {
        self.launch_ready
    }

    /// True once every block is present.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// True once the stream has failed.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn fail(&mut self, e: Error) {
        if !self.failed {
            self.failed = true;
            self.requests.clear();
            self.events.push_back(Event::Failed(e));
        }
    }

    fn push_progress(&mut self) {
        let p = self.progress();
        self.events.push_back(Event::Progress(p));
    }

    fn check_milestones(&mut self) {
        if !self.ready || self.failed {
            return;
        }
        if !self.launch_ready && self.fb1_present >= self.fb1_len {
            self.launch_ready = true;
            self.events.push_back(Event::LaunchReady);
        }
        if !self.complete && self.sched.present_blocks() == self.sched.len() {
            self.complete = true;
            self.requests.clear();
            self.events.push_back(Event::Complete);
        }
    }

    /// A prologue problem: retry damaged bytes, fail on anything else.
    fn prologue_error(&mut self, e: Error) {
        self.prologue_failures += 1;
        if e.kind() == ErrorKind::Integrity && self.prologue_failures < self.config.max_attempts {
            self.prologue_cov = Coverage::default();
        } else {
            self.fail(e);
        }
    }

    /// All of `0..prologue_target` is here: parse what we can.
    fn advance_prologue(&mut self, sink: &mut dyn BlockSink) -> Result<(), Error> {
        let header = match Header::parse(&self.prologue) {
            Ok(h) => h,
            Err(e) => {
                self.prologue_error(e.into());
                return Ok(());
            }
        };
        if !self.check_len(header.package_len()) {
            return Ok(());
        }
        let plen = header.prologue_len;
        if plen > self.config.max_prologue_bytes {
            self.fail(Error::invalid(format!(
                "prologue of {plen} bytes exceeds the limit of {} (max_prologue_bytes)",
                self.config.max_prologue_bytes
            )));
            return Ok(());
        }
        if plen > self.prologue.len() as u64 {
            // One more request for the rest (see poll_fetch).
            self.prologue_target = plen;
            return Ok(());
        }
        // Every record, and that the records store the blocks back to
        // back (rule 63): splitting FB1 and merging adjacent blocks into
        // one request trust exactly that.
        let table = match Prologue::parse(&self.prologue).and_then(|p| p.index().checked_records())
        {
            Ok(t) => t,
            Err(e) => {
                self.prologue_error(e);
                return Ok(());
            }
        };
        // Past this point the prologue is valid.
        let extra = self.prologue.split_off(plen as usize);
        if let Err(e) = sink.prologue(&self.prologue) {
            // Start over: the next poll asks for the prologue again.
            self.prologue.clear();
            self.prologue_cov = Coverage::default();
            return Err(e);
        }
        self.fb1_len = header.fb1_block_count;
        self.total_bytes = header.package_len();
        self.sched = Scheduler::new(
            table
                .iter()
                .map(|b| (b.stored_offset, b.stored_len, b.feature_block)),
            self.config.limits,
        );
        self.table = table;
        self.ready = true;
        self.events.push_back(Event::PrologueReady);
        for id in core::mem::take(&mut self.pending_present) {
            if let Err(e) = self.mark_present(id) {
                self.fail(e);
                return Ok(());
            }
        }
        // Whole blocks that came with the first read (a partial one is
        // dropped: requests are whole blocks).
        let mut result = Ok(());
        let extra_end = plen + extra.len() as u64;
        for id in 0..self.table.len() {
            let info = self.table[id];
            let r = info.stored_range();
            if r.start < plen || r.end > extra_end {
                break;
            }
            if self.sched.state(id as u32) != Some(BlockState::Absent) {
                continue;
            }
            let stored = &extra[(r.start - plen) as usize..(r.end - plen) as usize];
            if Block::new(info, stored).and_then(|b| b.verify()).is_ok()
                && self.sched.begin(id as u32)
                && let Err(e) = self.complete_block(id as u32, stored, sink, false)
            {
                result = Err(e);
                break;
            }
        }
        self.sched.queue_all(!self.config.launch_only);
        self.push_progress();
        self.check_milestones();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_merges() {
        let mut c = Coverage::default();
        c.insert(5..10);
        c.insert(0..2);
        assert_eq!(c.first_gap(10), Some(2));
        c.insert(2..5);
        assert_eq!(c.first_gap(10), None);
        assert_eq!(c.0.first(), Some(&(0..10)));
        c.insert(12..14);
        c.insert(9..12);
        assert_eq!((c.0.len(), c.0.first()), (1, Some(&(0..14))));
    }
}
