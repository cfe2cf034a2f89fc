//! The blocking driver: the one loop in the library that runs a
//! [`StreamSession`] over a [`RangeSource`].
//!
//! Each turn it takes every request [`StreamSession::poll_fetch`] hands
//! out while the in-flight limits allow, asks the source for all of them
//! in one [`RangeSource::read_ranges`] call (so multi-range and pipelining
//! transports batch them), routes each chunk to its request with
//! [`StreamSession::on_data`], and reports transport errors and short
//! deliveries with [`StreamSession::on_failure`]. Retrying is the
//! session's decision: retryable errors put the blocks back in the queue,
//! each block at most [`SessionConfig::max_attempts`](crate::stream::SessionConfig::max_attempts)
//! times, so the loop needs no retry logic of its own and always ends.
//!
//! Async users write the same loop over the same session.

use core::ops::{ControlFlow, Range};

use std::sync::mpsc::Receiver;

use super::source::{RangeSource, TransportError, TransportErrorKind};
use crate::error::Error;
use crate::format::BlockId;
use crate::stream::scheduler::BlockState;
use crate::stream::session::{BlockSink, Event, StreamSession};

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
    /// Every FB1 block is present.
    pub launch_ready: bool,
    /// Every block is present.
    pub complete: bool,
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
    drive_with(session, source, sink, &mut |_| {})
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
    run(session, source, sink, on_event, None)
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
    run(session, source, sink, on_event, Some(control))
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
        batch.clear();
        while let Some(req) = session.poll_fetch() {
            batch.push(req);
        }
        if batch.is_empty() {
            // Idle: wait for a demand, if anyone can send one.
            let Some(rx) = control else { break };
            if session.is_failed() {
                break;
            }
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
