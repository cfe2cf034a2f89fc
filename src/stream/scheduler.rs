//! [`Scheduler`]: which blocks to fetch next, as a pure data structure.
//!
//! Each block is *absent* (not wanted yet), *queued* in a [`Priority`]
//! class, *in flight*, *present*, or *failed* (gave up). [`Scheduler::poll`]
//! serves the best queued block — lowest `(class, stored offset, id)`,
//! where classes order [`Priority::Demand`] (a read waiting on the block,
//! App-V's out-of-sequence request) before [`Priority::Fb1`] (launch)
//! before [`Priority::Fb2`] (background) — and extends it with the
//! following blocks of the same class whose stored bytes are adjacent, up
//! to the class's request size. No hashing, no clock: the same calls give
//! the same answers.
//!
//! Back-pressure: `poll` returns `None` while `max_in_flight_requests`
//! requests are out, or while the bytes in flight reach
//! `max_in_flight_bytes`. A request is started whenever the bytes in flight
//! are *below* the limit, so they may exceed it by at most one request:
//! this keeps one block larger than the limit from stalling the stream.
//!
//! ```
//! use sft::FeatureBlock;
//! use sft::stream::{Priority, Scheduler, SchedulerLimits};
//!
//! // Four 100-byte blocks stored back to back from offset 1000; two in FB1.
//! let blocks = (0..4u64).map(|i| {
//!     let fb = if i < 2 { FeatureBlock::Fb1 } else { FeatureBlock::Fb2 };
//!     (1000 + 100 * i, 100, fb)
//! });
//! let mut s = Scheduler::new(blocks, SchedulerLimits::default());
//! s.queue_all(true);
//! s.demand(3);
//! let first = s.poll().unwrap();
//! assert_eq!((first.priority, first.blocks.clone()), (Priority::Demand, 3..4));
//! let second = s.poll().unwrap();
//! assert_eq!((second.priority, second.range.clone()), (Priority::Fb1, 1000..1200));
//! ```

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::collections::BTreeSet;
use core::ops::Range;

use crate::format::FeatureBlock;

/// A request's priority class; lower sorts first and is served first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// The package prologue (header, directory, index): always first.
    Prologue,
    /// A read is waiting on these blocks (a stream fault).
    Demand,
    /// Feature block 1: needed to launch.
    Fb1,
    /// Feature block 2: background prefetch.
    Fb2,
}

impl Priority {
    fn queue(self) -> usize {
        match self {
            Priority::Prologue | Priority::Demand => 0,
            Priority::Fb1 => 1,
            Priority::Fb2 => 2,
        }
    }

    fn of(fb: FeatureBlock) -> Self {
        match fb {
            FeatureBlock::Fb1 => Priority::Fb1,
            FeatureBlock::Fb2 => Priority::Fb2,
        }
    }
}

/// Limits on what the scheduler hands out; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerLimits {
    /// Largest request for demand and FB2 blocks, in stored bytes (a
    /// single block larger than this is still requested, alone).
    pub max_request_bytes: u64,
    /// Largest request for FB1 blocks; unlimited by default, so FB1 is
    /// fetched as one request.
    pub fb1_request_bytes: u64,
    /// Most requests in flight at once (at least 1 is used).
    pub max_in_flight_requests: u32,
    /// Bytes in flight at which new requests stop.
    pub max_in_flight_bytes: u64,
}

impl Default for SchedulerLimits {
    fn default() -> Self {
        SchedulerLimits {
            max_request_bytes: 1 << 20,
            fb1_request_bytes: u64::MAX,
            max_in_flight_requests: 4,
            max_in_flight_bytes: 8 << 20,
        }
    }
}

/// One request chosen by [`Scheduler::poll`]: consecutive blocks with
/// adjacent stored bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Block ids, consecutive.
    pub blocks: Range<u32>,
    /// Their stored bytes, contiguous.
    pub range: Range<u64>,
    /// The class they were served from.
    pub priority: Priority,
}

/// The state of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Not wanted yet (FB2 of a launch-only stream).
    Absent,
    /// Waiting in a queue.
    Queued,
    /// Part of a request in flight.
    InFlight,
    /// Verified and handed to the sink.
    Present,
    /// Given up on.
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    len: u32,
    state: BlockState,
    /// The best class this block was asked for; `None` while not wanted.
    class: Option<Priority>,
    feature_block: FeatureBlock,
    failures: u32,
}

/// Per-block states and the three priority queues; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Scheduler {
    slots: Vec<Slot>,
    /// Queued blocks per class, keyed by (stored offset, id).
    queues: [BTreeSet<(u64, u32)>; 3],
    limits: SchedulerLimits,
    in_flight_requests: u32,
    in_flight_bytes: u64,
    present: u32,
    present_bytes: u64,
}

impl Scheduler {
    /// A scheduler over blocks given as `(stored offset, stored length,
    /// feature block)` in id order; all start absent.
    pub fn new(
        blocks: impl IntoIterator<Item = (u64, u32, FeatureBlock)>,
        limits: SchedulerLimits,
    ) -> Self {
        let slots = blocks
            .into_iter()
            .map(|(offset, len, feature_block)| Slot {
                offset,
                len,
                state: BlockState::Absent,
                class: None,
                feature_block,
                failures: 0,
            })
            .collect();
        Scheduler {
            slots,
            queues: Default::default(),
            limits,
            in_flight_requests: 0,
            in_flight_bytes: 0,
            present: 0,
            present_bytes: 0,
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> u32 {
        self.slots.len() as u32
    }

    /// True if there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The limits in use.
    pub fn limits(&self) -> &SchedulerLimits {
        &self.limits
    }

    /// Block `id`'s state; `None` if out of range.
    pub fn state(&self, id: u32) -> Option<BlockState> {
        self.slots.get(id as usize).map(|s| s.state)
    }

    /// How many times block `id` has failed.
    pub fn failures(&self, id: u32) -> u32 {
        self.slots.get(id as usize).map_or(0, |s| s.failures)
    }

    /// Blocks present.
    pub fn present_blocks(&self) -> u32 {
        self.present
    }

    /// Stored bytes of the blocks present.
    pub fn present_bytes(&self) -> u64 {
        self.present_bytes
    }

    /// Requests in flight.
    pub fn in_flight_requests(&self) -> u32 {
        self.in_flight_requests
    }

    /// Stored bytes in flight.
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight_bytes
    }

    /// The class [`Scheduler::poll`] would serve next, if any block is
    /// queued.
    pub fn next_priority(&self) -> Option<Priority> {
        let qi = self.queues.iter().position(|q| !q.is_empty())?;
        Some([Priority::Demand, Priority::Fb1, Priority::Fb2][qi])
    }

    /// True if any block is queued.
    pub fn has_queued(&self) -> bool {
        self.queues.iter().any(|q| !q.is_empty())
    }

    fn enqueue(&mut self, id: u32, class: Priority) -> bool {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return false;
        };
        let class = slot.class.map_or(class, |c| c.min(class));
        match slot.state {
            BlockState::Present | BlockState::InFlight | BlockState::Failed => {
                slot.class = Some(class);
                false
            }
            BlockState::Queued => {
                if let Some(old) = slot.class {
                    self.queues[old.queue()].remove(&(slot.offset, id));
                }
                slot.class = Some(class);
                self.queues[class.queue()].insert((slot.offset, id));
                true
            }
            BlockState::Absent => {
                slot.state = BlockState::Queued;
                slot.class = Some(class);
                self.queues[class.queue()].insert((slot.offset, id));
                true
            }
        }
    }

    /// Queue every absent block in its feature block's class; FB2 only if
    /// `include_fb2`.
    pub fn queue_all(&mut self, include_fb2: bool) {
        for id in 0..self.len() {
            let fb = self.slots[id as usize].feature_block;
            if fb == FeatureBlock::Fb1 || include_fb2 {
                self.enqueue(id, Priority::of(fb));
            }
        }
    }

    /// A read waits on block `id`: queue it in the demand class (or raise
    /// it there). Returns true if it is now queued; false if it is already
    /// in flight, present, failed, or out of range — a demand never
    /// refetches a block in flight.
    pub fn demand(&mut self, id: u32) -> bool {
        self.enqueue(id, Priority::Demand)
    }

    /// Block `id` is present already (resume from a cache).
    pub fn mark_present(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        match slot.state {
            BlockState::Present => return,
            BlockState::Queued => {
                if let Some(c) = slot.class {
                    self.queues[c.queue()].remove(&(slot.offset, id));
                }
            }
            _ => {}
        }
        slot.state = BlockState::Present;
        self.present += 1;
        self.present_bytes += u64::from(slot.len);
    }

    /// Take absent or queued block `id` out of the queues and mark it in
    /// flight without starting a request (its bytes are already at hand).
    /// Returns false if it is in flight, present or failed already.
    pub fn begin(&mut self, id: u32) -> bool {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return false;
        };
        match slot.state {
            BlockState::Absent => {}
            BlockState::Queued => {
                if let Some(c) = slot.class {
                    self.queues[c.queue()].remove(&(slot.offset, id));
                }
            }
            _ => return false,
        }
        slot.state = BlockState::InFlight;
        true
    }

    /// The next request, or `None` if nothing is queued or a limit holds.
    #[must_use]
    pub fn poll(&mut self) -> Option<Batch> {
        if self.in_flight_requests >= self.limits.max_in_flight_requests.max(1)
            || (self.in_flight_requests > 0
                && self.in_flight_bytes >= self.limits.max_in_flight_bytes)
        {
            return None;
        }
        let (qi, &(offset, first)) = self
            .queues
            .iter()
            .enumerate()
            .find_map(|(i, q)| q.first().map(|k| (i, k)))?;
        let priority = [Priority::Demand, Priority::Fb1, Priority::Fb2][qi];
        let cap = if priority == Priority::Fb1 {
            self.limits.fb1_request_bytes
        } else {
            self.limits.max_request_bytes
        };
        let mut end_id = first;
        let mut end = offset;
        let mut total = 0u64;
        loop {
            let slot = self.slots[end_id as usize];
            let len = u64::from(slot.len);
            if end_id != first
                && (slot.offset != end
                    || total + len > cap
                    || !self.queues[qi].contains(&(slot.offset, end_id)))
            {
                break;
            }
            self.queues[qi].remove(&(slot.offset, end_id));
            self.slots[end_id as usize].state = BlockState::InFlight;
            total += len;
            end = slot.offset + len;
            end_id += 1;
            if end_id as usize >= self.slots.len() {
                break;
            }
        }
        self.in_flight_requests += 1;
        self.in_flight_bytes += total;
        Some(Batch {
            blocks: first..end_id,
            range: offset..end,
            priority,
        })
    }

    /// A request handed out by [`Scheduler::poll`] ended (completed or
    /// failed); `bytes` is its range's length.
    pub fn request_done(&mut self, bytes: u64) {
        self.in_flight_requests = self.in_flight_requests.saturating_sub(1);
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
    }

    /// In-flight block `id` arrived and was verified.
    pub fn block_present(&mut self, id: u32) {
        if self.state(id) == Some(BlockState::InFlight) {
            self.mark_present(id);
        }
    }

    /// In-flight block `id` failed (bad data or a transport failure):
    /// count the failure and queue it again in its class unless it has
    /// failed `max_attempts` times, in which case it is marked failed.
    /// Returns the failure count.
    pub fn block_failed(&mut self, id: u32, max_attempts: u32) -> u32 {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return 0;
        };
        slot.failures += 1;
        let n = slot.failures;
        if n >= max_attempts.max(1) {
            slot.state = BlockState::Failed;
        } else {
            self.requeue(id);
        }
        n
    }

    /// Put in-flight block `id` back in its queue without counting a
    /// failure (the caller's sink refused it).
    pub fn requeue(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        if matches!(slot.state, BlockState::InFlight | BlockState::Failed) {
            slot.state = BlockState::Absent;
            let class = slot.class.unwrap_or(Priority::of(slot.feature_block));
            self.enqueue(id, class);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(n: u64, fb1: u64, limits: SchedulerLimits) -> Scheduler {
        Scheduler::new(
            (0..n).map(|i| {
                let fb = if i < fb1 {
                    FeatureBlock::Fb1
                } else {
                    FeatureBlock::Fb2
                };
                (100 + 10 * i, 10, fb)
            }),
            limits,
        )
    }

    #[test]
    fn fb1_one_request_then_fb2_split() {
        let limits = SchedulerLimits {
            max_request_bytes: 25,
            ..SchedulerLimits::default()
        };
        let mut s = sched(8, 5, limits);
        s.queue_all(true);
        let b = s.poll().unwrap();
        assert_eq!((b.blocks, b.range), (0..5, 100..150));
        assert_eq!(s.poll().unwrap().blocks, 5..7);
        assert_eq!(s.poll().unwrap().blocks, 7..8);
        assert_eq!(s.poll(), None);
        assert_eq!(s.in_flight_requests(), 3);
    }

    #[test]
    fn limits_apply_back_pressure() {
        let limits = SchedulerLimits {
            max_request_bytes: 10,
            max_in_flight_requests: 2,
            max_in_flight_bytes: 15,
            ..SchedulerLimits::default()
        };
        let mut s = sched(6, 0, limits);
        s.queue_all(true);
        assert_eq!(s.poll().unwrap().blocks, 0..1);
        assert_eq!(s.poll().unwrap().blocks, 1..2);
        assert_eq!(s.poll(), None); // 2 requests
        s.request_done(10);
        s.block_present(0);
        // One request and 10 bytes in flight, under both limits.
        assert_eq!(s.poll().unwrap().blocks, 2..3);
        assert_eq!(s.poll(), None);
        s.request_done(10);
        s.request_done(10);
        let limits = SchedulerLimits {
            max_in_flight_bytes: 15,
            max_request_bytes: 20,
            ..SchedulerLimits::default()
        };
        let mut s = sched(6, 0, limits);
        s.queue_all(true);
        assert_eq!(s.poll().unwrap().blocks, 0..2); // 20 bytes: may overshoot once
        assert_eq!(s.poll(), None);
    }

    #[test]
    fn demand_does_not_refetch_in_flight_and_failures_requeue() {
        let mut s = sched(3, 3, SchedulerLimits::default());
        s.queue_all(false);
        let b = s.poll().unwrap();
        assert_eq!(b.blocks, 0..3);
        assert!(!s.demand(1));
        assert_eq!(s.poll(), None);
        s.request_done(30);
        s.block_present(0);
        s.block_present(2);
        assert_eq!(s.block_failed(1, 2), 1);
        assert_eq!(s.state(1), Some(BlockState::Queued));
        assert_eq!(s.poll().unwrap().blocks, 1..2);
        assert_eq!(s.block_failed(1, 2), 2);
        assert_eq!(s.state(1), Some(BlockState::Failed));
        assert_eq!(s.present_blocks(), 2);
    }
}
