//! The driver: the one loop in the library that runs a
//! [`StreamSession`] over a [`RangeSource`], in one of two modes.
//!
//! - **Sequential** (any source): each turn it takes every request
//!   [`StreamSession::poll_fetch`] hands out while the in-flight limits
//!   allow, asks the source for all of them in one
//!   [`RangeSource::read_ranges`] call (so multi-range and pipelining
//!   transports batch them), routes each chunk to its request with
//!   [`StreamSession::on_data`], and reports transport errors and short
//!   deliveries with [`StreamSession::on_failure`]. Demands from a reader
//!   ([`Control`]) pre-empt the batch between chunks.
//! - **Pipelined** (sources whose [`RangeSource::streaming_reads`] is
//!   true: a local file, an `http://` server, an RTSP server): a reader
//!   thread announces each request ([`RangeSource::will_read`]) and reads
//!   it in pieces of whole blocks ([`RangeSource::read_exact_at`])
//!   straight into recycled buffers; check threads inflate the compressed
//!   blocks of each piece (when the sink keeps stored bytes only,
//!   [`BlockSink::needs_decoded`]); this thread hands the pieces, in
//!   order, to the session, which checks every CRC and gives each block to
//!   the sink ([`StreamSession::on_checked_data`]). So receiving,
//!   inflating and storing run on every core at once, and the bytes
//!   checked are the bytes stored.
//!
//! [`Driver`] picks the mode ([`Driver::pipelined`] overrides it);
//! [`drive`], [`drive_with`] and [`drive_with_control`] are shorthands.
//! Retrying is the session's decision in both modes: retryable errors put
//! the blocks back in the queue, each block at most
//! [`SessionConfig::max_attempts`](crate::stream::SessionConfig::max_attempts)
//! times, so the loop needs no retry logic of its own and always ends.
//!
//! Async users write the same loop over the same session
//! (`examples/custom_transport.rs`).

use core::ops::{ControlFlow, Range};

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};

use super::source::{RangeSource, TransportError, TransportErrorKind};
use crate::error::Error;
use crate::format::{BlockId, Codec};
use crate::index::BlockInfo;
use crate::read::{Block, Decoder};
use crate::stream::scheduler::{BlockState, Priority};
use crate::stream::session::{BlockSink, Event, RequestId, StreamSession};

/// What a [`drive`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DriveReport {
    /// `read_ranges` calls made.
    pub calls: u64,
    /// Requests served (or attempted).
    pub requests: u64,
    /// Bytes delivered by the source.
    pub bytes: u64,
    /// Transport failures seen (each retried or fatal).
    pub transport_failures: u64,
    /// Requests made for blocks a reader was waiting on (App-V's
    /// out-of-sequence requests: [`Priority::Demand`]), counted in
    /// `requests` too.
    pub demand_requests: u64,
    /// Stored bytes those requests asked for.
    pub demand_bytes: u64,
    /// Every FB1 block is present.
    pub launch_ready: bool,
    /// Every block is present.
    pub complete: bool,
}

impl DriveReport {
    fn count_demand(&mut self, req: &crate::stream::FetchRequest) {
        self.demand_requests += 1;
        self.demand_bytes += req.range.end - req.range.start;
    }
}

/// Run `session` over `source` until it is complete, idle (a launch-only
/// stream after FB1), or failed; verified data goes to `sink`.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::stream::{SessionConfig, StreamSession};
/// use sft::io::drive;
///
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![9u8; 300_000])?
///     .write_to_vec()?;
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// let report = drive::drive(&mut session, &package, &mut copy)?;
/// assert!(report.complete);
/// assert_eq!(copy, package);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// The stream's failure ([`Event::Failed`]) or the sink's error.
pub fn drive(
    session: &mut StreamSession,
    source: &dyn RangeSource,
    sink: &mut dyn BlockSink,
) -> Result<DriveReport, Error> {
    Driver::new(source).run(session, sink, &mut |_| {})
}

/// As [`drive`], calling `on_event` with every event (progress bars,
/// launch-ready notices) as it happens; the [`Event::Failed`] event is
/// passed too before its error is returned.
///
/// # Errors
/// As [`drive`].
pub fn drive_with(
    session: &mut StreamSession,
    source: &dyn RangeSource,
    sink: &mut dyn BlockSink,
    on_event: &mut dyn FnMut(&Event),
) -> Result<DriveReport, Error> {
    Driver::new(source).run(session, sink, on_event)
}

/// A message to a [`drive_with_control`] loop from another thread: a
/// reader waiting on data, or a request to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// A read waits on this block ([`StreamSession::request_block`]).
    Block(BlockId),
    /// A read waits on these logical bytes
    /// ([`StreamSession::request_range`]).
    Range(Range<u64>),
    /// Stop at the next chunk: requests in flight are cancelled (their
    /// blocks stay queued for a later run) and the driver returns `Ok`.
    Stop,
}

/// As [`drive_with`], taking demands from `control` while it runs: the
/// loop for a package being read while it streams.
///
/// Demands are applied between chunks, not only between batches: when a
/// demand arrives for a block that is neither present nor in flight, the
/// current `read_ranges` call is interrupted (its completed blocks are
/// kept, the rest of its requests cancelled and queued again), so the
/// demanded block is the very next request: a read waits for at most one
/// chunk of prefetch. When the session has nothing left to fetch (a
/// launch-only stream after FB1) the loop blocks on `control` until a
/// demand arrives; it returns when the stream completes, fails, gets
/// [`Control::Stop`], or every sender is dropped.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use std::sync::mpsc;
/// use sft::BlockId;
/// use sft::io::drive::{self, Control};
/// use sft::stream::{SessionConfig, StreamSession};
///
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![9u8; 300_000])?
///     .write_to_vec()?;
/// // Launch-only: after FB1 the loop idles until a demand comes in.
/// let mut session = StreamSession::new(SessionConfig::default().launch_only(true));
/// let (tx, rx) = mpsc::channel();
/// tx.send(Control::Block(BlockId(0))).ok();
/// drop(tx); // no more demands: the loop ends once idle
/// let mut copy = Vec::new();
/// let report = drive::drive_with_control(&mut session, &package, &mut copy, &mut |_| {}, &rx)?;
/// assert!(report.launch_ready);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// As [`drive`].
pub fn drive_with_control(
    session: &mut StreamSession,
    source: &dyn RangeSource,
    sink: &mut dyn BlockSink,
    on_event: &mut dyn FnMut(&Event),
    control: &Receiver<Control>,
) -> Result<DriveReport, Error> {
    Driver::new(source)
        .control(control)
        .run(session, sink, on_event)
}

/// The driver, configured: the source, the mode, the check threads, and
/// optionally a channel of demands. See the [module docs](self).
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::io::drive::Driver;
/// use sft::stream::{SessionConfig, StreamSession};
///
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![1u8; 500_000])?
///     .write_to_vec()?;
/// // Pipelined with two check threads, whatever the source prefers.
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// let report = Driver::new(&package)
///     .pipelined(true)
///     .check_threads(2)
///     .run(&mut session, &mut copy, &mut |_| {})?;
/// assert!(report.complete);
/// assert_eq!(copy, package);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
pub struct Driver<'a> {
    source: &'a dyn RangeSource,
    control: Option<&'a Receiver<Control>>,
    pipelined: Option<bool>,
    check_threads: Option<usize>,
    piece_bytes: u64,
    depth: usize,
}

impl core::fmt::Debug for Driver<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Driver")
            .field("source", &self.source.endpoint())
            .field("control", &self.control.is_some())
            .field("pipelined", &self.pipelined)
            .field("check_threads", &self.check_threads)
            .field("piece_bytes", &self.piece_bytes)
            .field("depth", &self.depth)
            .finish()
    }
}

/// Pieces read ahead by the pipelined reader: each is one buffer.
const DEPTH: usize = 8;
/// The pipelined reader's pieces: whole blocks, up to this many bytes.
const PIECE: u64 = 512 * 1024;

impl<'a> Driver<'a> {
    /// A driver over `source`, in the mode it prefers
    /// ([`RangeSource::streaming_reads`]), with one check thread per core.
    pub fn new(source: &'a dyn RangeSource) -> Self {
        Driver {
            source,
            control: None,
            pipelined: None,
            check_threads: None,
            piece_bytes: PIECE,
            depth: DEPTH,
        }
    }

    /// Run pipelined (`true`) or sequential (`false`), whatever the
    /// source prefers. A driver with [`Driver::control`] always runs
    /// sequentially: demands pre-empt it between chunks.
    #[must_use]
    pub fn pipelined(mut self, on: bool) -> Self {
        self.pipelined = Some(on);
        self
    }

    /// Threads that check blocks (CRC-32, and that compressed blocks
    /// inflate when the session decodes), in pipelined mode (default: one
    /// per core, [`std::thread::available_parallelism`]); `0` leaves every
    /// check to the session on the driver's thread. They are used only
    /// when the sink does not need the decoded bytes
    /// ([`BlockSink::needs_decoded`]).
    #[must_use]
    pub fn check_threads(mut self, n: usize) -> Self {
        self.check_threads = Some(n);
        self
    }

    /// The pipelined reader's piece size (whole blocks, at least one;
    /// default 512 KiB) and how many pieces it reads ahead (default 8):
    /// memory in flight is about `bytes × depth`.
    #[must_use]
    pub fn pieces(mut self, bytes: u64, depth: usize) -> Self {
        self.piece_bytes = bytes.max(1);
        self.depth = depth.max(1);
        self
    }

    /// Take demands from `control` while running (see
    /// [`drive_with_control`]).
    #[must_use]
    pub fn control(mut self, control: &'a Receiver<Control>) -> Self {
        self.control = Some(control);
        self
    }

    /// Whether [`Driver::run`] will run pipelined.
    pub fn is_pipelined(&self) -> bool {
        self.control.is_none()
            && self
                .pipelined
                .unwrap_or_else(|| self.source.streaming_reads())
    }

    /// Run `session` until it is complete, idle (a launch-only stream
    /// after FB1, with no demands to wait for), stopped, or failed;
    /// verified data goes to `sink`, every event to `on_event` as it
    /// happens (the [`Event::Failed`] event too, before its error is
    /// returned).
    ///
    /// # Errors
    /// The stream's failure ([`Event::Failed`]) or the sink's error; the
    /// session is left consistent (requests in flight are cancelled and
    /// their blocks queued again) for a later run.
    pub fn run(
        &self,
        session: &mut StreamSession,
        sink: &mut dyn BlockSink,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<DriveReport, Error> {
        if self.is_pipelined() {
            let threads = if !sink.needs_decoded() {
                self.check_threads.unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, core::num::NonZeroUsize::get)
                })
            } else {
                0
            };
            pipelined(self, session, sink, on_event, threads)
        } else {
            run(session, self.source, sink, on_event, self.control)
        }
    }
}

/// What applying control messages asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    Nothing,
    /// A demand needs a block that is not on its way.
    Preempt,
    Stop,
}

/// Apply one control message; demands are kept in `applied` so they can
/// be applied again after a pre-empted batch is cancelled.
fn apply(session: &mut StreamSession, msg: Control, applied: &mut Vec<Control>) -> Apply {
    let missing = |s: &StreamSession, id: u32| {
        !matches!(
            s.block_state(BlockId(id)),
            Some(BlockState::Present | BlockState::Failed) | None
        )
    };
    match msg {
        Control::Stop => Apply::Stop,
        // Invalid demands (before the prologue, out of range) are the
        // reader's to report; the stream goes on.
        Control::Block(id) => {
            if session.request_block(id).is_ok() && missing(session, id.0) {
                applied.push(Control::Block(id));
                Apply::Preempt
            } else {
                Apply::Nothing
            }
        }
        Control::Range(r) => {
            if session.request_range(r.clone()).is_err() {
                return Apply::Nothing;
            }
            let ids = session.blocks_for_logical(r.clone());
            if ids.into_iter().any(|id| missing(session, id)) {
                applied.push(Control::Range(r));
                Apply::Preempt
            } else {
                Apply::Nothing
            }
        }
    }
}

/// Apply every queued control message without blocking.
fn drain(
    session: &mut StreamSession,
    control: Option<&Receiver<Control>>,
    applied: &mut Vec<Control>,
) -> Apply {
    let mut out = Apply::Nothing;
    let Some(rx) = control else {
        return out;
    };
    while let Ok(msg) = rx.try_recv() {
        match apply(session, msg, applied) {
            Apply::Stop => return Apply::Stop,
            Apply::Preempt => out = Apply::Preempt,
            Apply::Nothing => {}
        }
    }
    out
}

/// The time for [`StreamSession::handle_timeout`]: since the first call
/// in this process (monotonic, one origin for every driver).
pub(crate) fn now() -> core::time::Duration {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH.get_or_init(std::time::Instant::now).elapsed()
}

/// Give the session the time; if it waits to retry the source, how long
/// is left.
fn tick(session: &mut StreamSession) -> Option<core::time::Duration> {
    let t = now();
    session.handle_timeout(t);
    session.poll_timeout().map(|at| at.saturating_sub(t))
}

/// Hand queued events to `on_event`; the failure, if one was queued.
pub(crate) fn pump(session: &mut StreamSession, on_event: &mut dyn FnMut(&Event)) -> Option<Error> {
    while let Some(event) = session.poll_event() {
        on_event(&event);
        if let Event::Failed(e) = event {
            return Some(e);
        }
    }
    None
}

/// Start a drive: name the source in the session's errors and tell it the
/// source's length. Shared by every driver loop.
pub(crate) fn start(
    session: &mut StreamSession,
    source: &dyn RangeSource,
) -> Result<DriveReport, Error> {
    let mut report = DriveReport::default();
    if session.endpoint().is_empty() {
        session.set_endpoint(source.endpoint());
    }
    match source.len() {
        Ok(len) => session.on_source_len(len),
        Err(e) if !e.is_retryable() => return Err(transport_to_error(e)),
        // The length is an optimisation; the reads will retry.
        Err(_) => report.transport_failures += 1,
    }
    Ok(report)
}

fn run(
    session: &mut StreamSession,
    source: &dyn RangeSource,
    sink: &mut dyn BlockSink,
    on_event: &mut dyn FnMut(&Event),
    control: Option<&Receiver<Control>>,
) -> Result<DriveReport, Error> {
    let mut report = start(session, source)?;
    let mut batch = Vec::new();
    let mut ranges: Vec<Range<u64>> = Vec::new();
    let mut applied = Vec::new();
    loop {
        if let Some(e) = pump(session, on_event) {
            return Err(e);
        }
        if session.is_complete() {
            break;
        }
        applied.clear();
        if drain(session, control, &mut applied) == Apply::Stop {
            break;
        }
        let wait = tick(session);
        batch.clear();
        while let Some(req) = session.poll_fetch() {
            batch.push(req);
        }
        if batch.is_empty() {
            if session.is_failed() {
                break;
            }
            if let Some(wait) = wait {
                // Backing off before a retry: a demand may come meanwhile.
                match control.map(|rx| rx.recv_timeout(wait)) {
                    Some(Ok(msg)) => {
                        if apply(session, msg, &mut applied) == Apply::Stop {
                            break;
                        }
                    }
                    Some(Err(_)) => {}
                    None => std::thread::sleep(wait),
                }
                continue;
            }
            // Idle: wait for a demand, if anyone can send one.
            let Some(rx) = control else { break };
            match rx.recv() {
                Ok(msg) => {
                    if apply(session, msg, &mut applied) == Apply::Stop {
                        break;
                    }
                    continue;
                }
                Err(_) => break,
            }
        }
        ranges.clear();
        ranges.extend(batch.iter().map(|r| r.range.clone()));
        report.calls += 1;
        report.requests += batch.len() as u64;
        for req in batch.iter().filter(|r| r.priority == Priority::Demand) {
            report.count_demand(req);
        }
        let mut local: Option<Error> = None;
        let mut violation: Option<TransportError> = None;
        let mut interrupted = false;
        let mut stopping = false;
        let mut failed: Option<Error> = None;
        let result = source.read_ranges(&ranges, &mut |offset, bytes| {
            let (mut at, mut rest) = (offset, bytes);
            while !rest.is_empty() {
                let Some(req) = batch
                    .iter()
                    .find(|r| r.range.start <= at && at < r.range.end)
                else {
                    violation = Some(
                        TransportError::new(
                            TransportErrorKind::Protocol,
                            format!(
                                "{}: delivered bytes that were not requested",
                                source.endpoint()
                            ),
                        )
                        .with_range(at..at + rest.len() as u64),
                    );
                    return ControlFlow::Break(());
                };
                let n = (req.range.end - at).min(rest.len() as u64) as usize;
                if let Err(e) = session.on_data(req.id, at, &rest[..n], sink) {
                    local = Some(e);
                    return ControlFlow::Break(());
                }
                report.bytes += n as u64;
                at += n as u64;
                rest = &rest[n..];
            }
            // Events as they happen (launch-ready mid-batch), not after.
            if let Some(e) = pump(session, on_event) {
                failed = Some(e);
                return ControlFlow::Break(());
            }
            if session.is_failed() || session.is_complete() {
                return ControlFlow::Break(());
            }
            match drain(session, control, &mut applied) {
                Apply::Nothing => ControlFlow::Continue(()),
                Apply::Preempt => {
                    interrupted = true;
                    ControlFlow::Break(())
                }
                Apply::Stop => {
                    (interrupted, stopping) = (true, true);
                    ControlFlow::Break(())
                }
            }
        });
        if let Some(e) = local {
            // Leave the session consistent for a later run.
            for req in &batch {
                session.cancel(req.id);
            }
            return Err(e);
        }
        if let Some(e) = failed {
            return Err(e);
        }
        if interrupted && violation.is_none() {
            // Pre-empted (or stopped): what did not arrive is queued
            // again, then the demands are applied once more, so blocks
            // that were in flight move to the demand class.
            for req in &batch {
                session.cancel(req.id);
            }
            if stopping {
                break;
            }
            for msg in applied.drain(..) {
                apply(session, msg, &mut Vec::new());
            }
            continue;
        }
        let failure = match (result, violation) {
            (_, Some(v)) => Some(v),
            (Err(e), None) => Some(e),
            (Ok(()), None) => None,
        };
        if failure.is_some() {
            report.transport_failures += 1;
            session.handle_timeout(now());
        }
        for req in &batch {
            if !session.is_in_flight(req.id) {
                continue;
            }
            match &failure {
                Some(e) => session.on_failure(req.id, e),
                None if session.is_failed() || session.is_complete() => {}
                None => session.on_failure(
                    req.id,
                    &TransportError::new(
                        TransportErrorKind::Protocol,
                        format!(
                            "{}: delivered fewer bytes than requested",
                            source.endpoint()
                        ),
                    )
                    .with_range(req.range.clone()),
                ),
            }
        }
    }
    report.launch_ready = session.is_launch_ready();
    report.complete = session.is_complete();
    Ok(report)
}

pub(crate) fn transport_to_error(e: TransportError) -> Error {
    Error::Transport(e)
}

/// A piece read by the pipelined reader: bytes `at..` of request `id`.
struct Piece {
    seq: u64,
    id: RequestId,
    at: u64,
    buf: Vec<u8>,
    /// The blocks in it, for the check threads (empty if none check).
    blocks: Vec<BlockInfo>,
    /// A check thread found every block in `blocks` sound.
    checked: bool,
}

/// What reaches the driver's thread, numbered in reading order.
enum Got {
    Piece(Piece),
    /// Request `id` failed; no more pieces of it follow.
    Failed {
        seq: u64,
        id: RequestId,
        error: TransportError,
    },
}

impl Got {
    fn seq(&self) -> u64 {
        match self {
            Got::Piece(p) => p.seq,
            Got::Failed { seq, .. } => *seq,
        }
    }
}

/// A request for the reader: its range, and its pieces with the blocks
/// each holds (empty when no check thread checks them).
struct Job {
    id: RequestId,
    range: Range<u64>,
    pieces: Vec<(Range<u64>, Vec<BlockInfo>)>,
}

/// Cut a request into pieces of whole blocks, at least one block and at
/// most `step` bytes each (a single larger block is a piece of its own);
/// a prologue request (no blocks) is one piece.
fn cut(session: &StreamSession, req: &crate::stream::FetchRequest, step: u64, check: bool) -> Job {
    let mut pieces = Vec::new();
    let mut at = req.range.start;
    let mut next = req.blocks.start;
    while at < req.range.end {
        let start = at;
        let mut end = start;
        let mut blocks = Vec::new();
        while next < req.blocks.end {
            let Some(info) = session.block_info(BlockId(next)) else {
                break;
            };
            let r = info.stored_range();
            if end > start && r.end - start > step {
                break;
            }
            end = r.end.min(req.range.end);
            if check {
                blocks.push(*info);
            }
            next += 1;
        }
        if end <= start {
            end = req.range.end;
        }
        pieces.push((start..end, blocks));
        at = end;
    }
    Job {
        id: req.id,
        range: req.range.clone(),
        pieces,
    }
}

/// Check every block of `p.blocks` from the piece's bytes as the session
/// does: its CRC-32, and (`decode`) that a compressed block inflates to
/// exactly its size. False at the first that fails (the session then
/// checks the piece itself, and reports what it finds).
fn sound(p: &Piece, decode: bool, decoder: &mut Decoder, scratch: &mut Vec<u8>) -> bool {
    p.blocks.iter().all(|info| {
        let r = info.stored_range();
        let (Some(s), Some(e)) = (r.start.checked_sub(p.at), r.end.checked_sub(p.at)) else {
            return false;
        };
        let Some(stored) = p.buf.get(s as usize..e as usize) else {
            return false;
        };
        Block::new(*info, stored).and_then(|b| b.verify()).is_ok()
            && (!decode
                || info.codec == Codec::Stored
                || decoder.inflate(info, stored, scratch).is_ok())
    })
}

/// The pipelined mode: see the [module docs](self).
fn pipelined(
    driver: &Driver<'_>,
    session: &mut StreamSession,
    sink: &mut dyn BlockSink,
    on_event: &mut dyn FnMut(&Event),
    check_threads: usize,
) -> Result<DriveReport, Error> {
    let source = driver.source;
    let decode = session.config().is_decoding_blocks();
    let mut report = start(session, source)?;
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (got_tx, got_rx) = mpsc::channel::<Got>();
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    // The buffers are the pipeline's tokens: the reader waits for a free
    // one, so at most `depth` pieces are anywhere between the stages.
    for _ in 0..driver.depth {
        let _ = free_tx.send(Vec::new());
    }
    let (check_tx, check_rx) = mpsc::sync_channel::<Piece>(driver.depth);
    let check_rx = Arc::new(Mutex::new(check_rx));
    let mut outstanding: Vec<RequestId> = Vec::new();
    let result = std::thread::scope(|scope| {
        for _ in 0..check_threads {
            let (rx, tx) = (Arc::clone(&check_rx), got_tx.clone());
            scope.spawn(move || {
                let (mut decoder, mut scratch) = (Decoder::new(), Vec::new());
                loop {
                    let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok(mut p) = next else { return };
                    p.checked = sound(&p, decode, &mut decoder, &mut scratch);
                    if tx.send(Got::Piece(p)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(check_rx);
        let reader_got = got_tx.clone();
        let check_tx = (check_threads > 0).then_some(check_tx);
        scope.spawn(move || read_pieces(source, &job_rx, &free_rx, &reader_got, check_tx.as_ref()));
        drop(got_tx);
        // Owning the channel ends: returning drops them, which stops the
        // reader and the check threads (the scope then joins them).
        let (job_tx, got_rx, free_tx) = (job_tx, got_rx, free_tx);
        let result = deliver_pieces(
            driver,
            session,
            sink,
            on_event,
            &mut report,
            &job_tx,
            &got_rx,
            &free_tx,
            &mut outstanding,
            check_threads > 0,
        );
        drop((job_tx, got_rx, free_tx));
        result
    });
    if result.is_err() {
        // Leave the session consistent for a later run.
        for id in outstanding {
            session.cancel(id);
        }
    }
    result?;
    report.launch_ready = session.is_launch_ready();
    report.complete = session.is_complete();
    Ok(report)
}

/// The reader thread: each job's pieces, in order, into free buffers.
fn read_pieces(
    source: &dyn RangeSource,
    jobs: &Receiver<Job>,
    free: &Receiver<Vec<u8>>,
    got: &mpsc::Sender<Got>,
    check: Option<&mpsc::SyncSender<Piece>>,
) {
    let mut seq = 0u64;
    for job in jobs {
        source.will_read(job.range.clone());
        for (range, blocks) in job.pieces {
            let Ok(mut buf) = free.recv() else { return };
            let Ok(len) = usize::try_from(range.end - range.start) else {
                return;
            };
            buf.resize(len, 0);
            seq += 1;
            if let Err(error) = source.read_exact_at(range.start, &mut buf) {
                let _ = got.send(Got::Failed {
                    seq,
                    id: job.id,
                    error,
                });
                // The buffer goes back to the pool through the driver.
                drop(buf);
                break;
            }
            let piece = Piece {
                seq,
                id: job.id,
                at: range.start,
                buf,
                checked: false,
                blocks,
            };
            let sent = match check {
                Some(check) if !piece.blocks.is_empty() => check.send(piece).is_ok(),
                _ => got.send(Got::Piece(piece)).is_ok(),
            };
            if !sent {
                return;
            }
        }
    }
}

/// The driver's thread in pipelined mode: hand out requests, take the
/// pieces back in reading order, give them to the session.
#[allow(clippy::too_many_arguments)]
fn deliver_pieces(
    driver: &Driver<'_>,
    session: &mut StreamSession,
    sink: &mut dyn BlockSink,
    on_event: &mut dyn FnMut(&Event),
    report: &mut DriveReport,
    jobs: &mpsc::Sender<Job>,
    got: &Receiver<Got>,
    free: &mpsc::Sender<Vec<u8>>,
    outstanding: &mut Vec<RequestId>,
    check: bool,
) -> Result<(), Error> {
    let stopped = || Error::invalid("the reader thread stopped");
    let mut next_seq = 1u64;
    let mut early: BTreeMap<u64, Got> = BTreeMap::new();
    loop {
        if let Some(e) = pump(session, on_event) {
            return Err(e);
        }
        if session.is_complete() || session.is_failed() {
            return Ok(());
        }
        let wait = tick(session);
        while let Some(req) = session.poll_fetch() {
            report.calls += 1;
            report.requests += 1;
            if req.priority == Priority::Demand {
                report.count_demand(&req);
            }
            let job = cut(session, &req, driver.piece_bytes, check);
            jobs.send(job).map_err(|_| stopped())?;
            outstanding.push(req.id);
        }
        if outstanding.is_empty() {
            match wait {
                // Backing off before a retry.
                Some(wait) => {
                    std::thread::sleep(wait);
                    continue;
                }
                // Idle: a launch-only stream after FB1.
                None => return Ok(()),
            }
        }
        // The next piece in reading order (check threads may finish out
        // of order).
        let next = match early.remove(&next_seq) {
            Some(g) => g,
            None => loop {
                let g = got.recv().map_err(|_| stopped())?;
                if g.seq() == next_seq {
                    break g;
                }
                early.insert(g.seq(), g);
            },
        };
        next_seq += 1;
        match next {
            Got::Piece(p) => {
                report.bytes += p.buf.len() as u64;
                let result = if p.checked {
                    session.on_checked_data(p.id, p.at, &p.buf, sink)
                } else {
                    session.on_data(p.id, p.at, &p.buf, sink)
                };
                let _ = free.send(p.buf);
                result?;
                if !session.is_in_flight(p.id) {
                    outstanding.retain(|&o| o != p.id);
                }
            }
            Got::Failed { id, error, .. } => {
                let _ = free.send(Vec::new());
                report.transport_failures += 1;
                if session.is_in_flight(id) {
                    session.handle_timeout(now());
                    session.on_failure(id, &error);
                }
                outstanding.retain(|&o| o != id);
            }
        }
    }
}
