//! [`ShapedSource`]: an in-process link simulator wrapped around any
//! [`RangeSource`]: a bandwidth cap (token bucket) and a round-trip
//! latency per request. For benchmarks and tests (this machine's kernel
//! has no `netem`), and for `sft fetch --limit-rate`.
//!
//! The model: each [`RangeSource::read_ranges`] call is one pipelined
//! request; its first byte arrives one round trip after the call, and
//! bytes then flow at the link's rate, shared by every call (the link is
//! one token bucket). Chunks are delivered as they "arrive", in pieces of
//! at most [`ShapedSource::chunk`] bytes, so a caller sees data trickle in
//! as over a real link. Sleeping happens here, in the transport layer,
//! never in the streaming core.
//!
//! ```
//! # fn main() -> Result<(), sft::stream::TransportError> {
//! use std::time::{Duration, Instant};
//! use sft::io::RangeSource;
//! use sft::io::shaped::ShapedSource;
//!
//! let data = vec![0u8; 100_000];
//! // 1 MB/s, 10 ms round trip: 100 KB take about 0.11 s.
//! let link = ShapedSource::new(data, 1_000_000, Duration::from_millis(10));
//! let t = Instant::now();
//! let mut n = 0;
//! link.read_ranges(&[0..100_000], &mut |_, b| { n += b.len(); std::ops::ControlFlow::Continue(()) })?;
//! assert_eq!(n, 100_000);
//! assert!(t.elapsed() >= Duration::from_millis(100));
//! # Ok(()) }
//! ```

use core::ops::{ControlFlow, Range};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::io::{ChunkSink, RangeSource};
use crate::stream::TransportError;

/// A [`RangeSource`] behind a simulated link; see the [module docs](self).
#[derive(Debug)]
pub struct ShapedSource<S> {
    inner: S,
    bytes_per_sec: u64,
    rtt: Duration,
    chunk: usize,
    /// When the link is next free to carry a byte.
    link_free: Mutex<Option<Instant>>,
    /// The range announced by [`RangeSource::will_read`] and where its
    /// in-order reads got to (`None` until its first read): one request,
    /// one round trip.
    planned: Mutex<Option<(Range<u64>, Option<u64>)>>,
}

impl<S: RangeSource> ShapedSource<S> {
    /// Wrap `inner` in a link of `bytes_per_sec` (0: unlimited) and round
    /// trip `rtt`.
    pub fn new(inner: S, bytes_per_sec: u64, rtt: Duration) -> Self {
        ShapedSource {
            inner,
            bytes_per_sec,
            rtt,
            chunk: 16 * 1024,
            link_free: Mutex::new(None),
            planned: Mutex::new(None),
        }
    }

    /// Deliver in pieces of at most `n` bytes (default 16 KiB).
    pub fn chunk(mut self, n: usize) -> Self {
        self.chunk = n.max(1);
        self
    }

    /// The wrapped source.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Time for `n` bytes on this link.
    fn transfer(&self, n: u64) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64)
    }

    /// Reserve the link for `n` bytes that may not start before
    /// `earliest`; returns when they have arrived.
    fn reserve(&self, earliest: Instant, n: u64) -> Instant {
        let mut free = self
            .link_free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let start = free.map_or(earliest, |f| f.max(earliest));
        let done = start + self.transfer(n);
        *free = Some(done);
        done
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

impl<S: RangeSource> RangeSource for ShapedSource<S> {
    fn len(&self) -> Result<u64, TransportError> {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        let first = Instant::now() + self.rtt;
        let n = self.inner.read_at(offset, buf)?;
        sleep_until(self.reserve(first, n as u64));
        Ok(n)
    }

    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut earliest = Instant::now() + self.rtt;
        let chunk = self.chunk as u64;
        let mut pieces: Vec<Range<u64>> = Vec::new();
        for r in ranges {
            let mut at = r.start;
            while at < r.end {
                let end = (at + chunk).min(r.end);
                pieces.push(at..end);
                at = end;
            }
        }
        let mut stopped = false;
        for p in pieces {
            self.inner
                .read_ranges(core::slice::from_ref(&p), &mut |off, b| {
                    let arrive = self.reserve(earliest, b.len() as u64);
                    earliest = arrive;
                    sleep_until(arrive);
                    if sink(off, b).is_break() {
                        stopped = true;
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                })?;
            if stopped {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The inner source's in-order read, `chunk` bytes at a time, each
    /// delivered when the link would have carried it.
    ///
    /// After [`RangeSource::will_read`], the reads that follow its range
    /// in order are one request: the first waits a round trip, the rest
    /// only for the link (as one HTTP `GET` or RTSP fetch of the range).
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        let end = offset.saturating_add(buf.len() as u64);
        let follows = {
            let mut planned = self
                .planned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match planned.as_mut() {
                Some((r, next)) if end <= r.end && *next == Some(offset) => {
                    *next = Some(end);
                    true
                }
                Some((r, next @ None)) if offset == r.start && end <= r.end => {
                    *next = Some(end);
                    false
                }
                _ => {
                    *planned = None;
                    false
                }
            }
        };
        let mut earliest = if follows {
            Instant::now()
        } else {
            Instant::now() + self.rtt
        };
        let mut at = offset;
        for piece in buf.chunks_mut(self.chunk) {
            self.inner.read_exact_at(at, piece)?;
            earliest = self.reserve(earliest, piece.len() as u64);
            sleep_until(earliest);
            at += piece.len() as u64;
        }
        Ok(())
    }

    fn will_read(&self, range: Range<u64>) {
        *self
            .planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((range.clone(), None));
        self.inner.will_read(range);
    }

    fn streaming_reads(&self) -> bool {
        self.inner.streaming_reads()
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}

#[cfg(test)]
mod tests {
    use super::ShapedSource;
    use crate::io::RangeSource;
    use std::time::{Duration, Instant};

    /// Ten in-order reads of 4 KiB on a link of unlimited bandwidth and a
    /// 40 ms round trip: the time they take.
    fn ten_reads(announce: bool) -> Duration {
        let link = ShapedSource::new(vec![7u8; 40_960], 0, Duration::from_millis(40));
        if announce {
            link.will_read(0..40_960);
        }
        let t = Instant::now();
        let mut buf = [0u8; 4096];
        for i in 0..10u64 {
            link.read_exact_at(i * 4096, &mut buf).unwrap();
            assert_eq!(buf, [7u8; 4096]);
        }
        t.elapsed()
    }

    #[test]
    fn reads_that_follow_an_announced_range_are_one_request() {
        // Announced: one round trip for all ten (well under ten).
        let one = ten_reads(true);
        assert!(one >= Duration::from_millis(40), "{one:?}");
        assert!(one < Duration::from_millis(360), "{one:?}");
        // Not announced: a round trip each.
        let each = ten_reads(false);
        assert!(each >= Duration::from_millis(400), "{each:?}");
    }
}
