//! [`Pipelined`]: a [`RangeSource`] adapter that receives on a second
//! thread while the caller's sink checks and writes what already arrived.
//!
//! A network source's [`RangeSource::read_ranges`] hands each chunk to the
//! sink on the thread that receives it, so receiving waits while the
//! session checks the block's CRC and the cache writes it. `Pipelined`
//! runs the inner source's `read_ranges` on a scoped worker thread that
//! copies chunks into recycled buffers (up to `depth` of them, `buffer`
//! bytes each, in flight), and delivers them to the sink on the calling
//! thread: receiving and checking overlap, on two cores.
//!
//! The rules of [`RangeSource`] hold unchanged: chunks arrive in the
//! inner source's order, each byte at most once; a sink that breaks stops
//! the worker at its next chunk; the inner source's error is returned
//! after the chunks received before it. Batches smaller than one buffer
//! are read directly, without a thread.

use core::ops::{ControlFlow, Range};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use crate::io::{ChunkSink, RangeSource};
use crate::stream::TransportError;

/// A [`RangeSource`] that reads its inner source on a worker thread; see
/// the [module docs](self).
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::stream::{SessionConfig, StreamSession};
/// use sft::io::drive;
/// use sft::io::pipelined::Pipelined;
///
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![7u8; 3_000_000])?
///     .write_to_vec()?;
/// let source = Pipelined::new(package.clone());
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// assert!(drive::drive(&mut session, &source, &mut copy)?.complete);
/// assert_eq!(copy, package);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct Pipelined<S> {
    inner: S,
    buffer: usize,
    depth: usize,
}

/// From the worker: a filled buffer, or the end of its `read_ranges`.
enum Msg {
    Data(u64, Vec<u8>),
    Done(Result<(), TransportError>),
}

impl<S: RangeSource> Pipelined<S> {
    /// Wrap `inner` with 256 KiB buffers, 8 in flight.
    pub fn new(inner: S) -> Self {
        Pipelined {
            inner,
            buffer: 256 * 1024,
            depth: 8,
        }
    }

    /// Use `depth` buffers of `bytes` each (at least 4 KiB and 2).
    ///
    /// ```
    /// use sft::io::pipelined::Pipelined;
    /// let p = Pipelined::new(vec![0u8; 10]).buffers(1 << 20, 4);
    /// assert_eq!(p.get_ref().len(), 10);
    /// ```
    #[must_use]
    pub fn buffers(mut self, bytes: usize, depth: usize) -> Self {
        self.buffer = bytes.max(4096);
        self.depth = depth.max(2);
        self
    }

    /// The inner source.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwrap the inner source.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: RangeSource> RangeSource for Pipelined<S> {
    fn len(&self) -> Result<u64, TransportError> {
        self.inner.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.inner.read_at(offset, buf)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        self.inner.as_bytes()
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        if total <= self.buffer as u64 || self.inner.as_bytes().is_some() {
            return self.inner.read_ranges(ranges, sink);
        }
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::sync_channel::<Msg>(self.depth);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        std::thread::scope(|scope| {
            let stop = &stop;
            let inner = &self.inner;
            let cap = self.buffer;
            scope.spawn(move || {
                // The buffer being filled: its start offset and bytes.
                let mut cur: Option<(u64, Vec<u8>)> = None;
                let fresh = |free_rx: &mpsc::Receiver<Vec<u8>>| {
                    let mut b = free_rx.try_recv().unwrap_or_default();
                    b.clear();
                    b.reserve(cap);
                    b
                };
                let mut dead = false;
                let result = inner.read_ranges(ranges, &mut |offset, mut bytes| {
                    let mut at = offset;
                    while !bytes.is_empty() {
                        if stop.load(Ordering::Relaxed) {
                            return ControlFlow::Break(());
                        }
                        // Flush a buffer that is full or not contiguous.
                        if let Some((start, b)) = &cur
                            && (b.len() >= cap || start + b.len() as u64 != at)
                            && let Some((s, b)) = cur.take()
                            && tx.send(Msg::Data(s, b)).is_err()
                        {
                            dead = true;
                            return ControlFlow::Break(());
                        }
                        let (_, b) = cur.get_or_insert_with(|| (at, fresh(&free_rx)));
                        let n = (cap - b.len()).min(bytes.len());
                        b.extend_from_slice(&bytes[..n]);
                        bytes = &bytes[n..];
                        at += n as u64;
                    }
                    ControlFlow::Continue(())
                });
                if !dead {
                    if let Some((s, b)) = cur.take()
                        && (result.is_ok() || !b.is_empty())
                    {
                        let _ = tx.send(Msg::Data(s, b));
                    }
                    let _ = tx.send(Msg::Done(result));
                }
            });
            let mut stopped = false;
            let mut result = Ok(());
            for msg in rx {
                match msg {
                    Msg::Data(offset, buf) => {
                        if !stopped && sink(offset, &buf).is_break() {
                            // Stop the worker; drain what it already sent.
                            stopped = true;
                            stop.store(true, Ordering::Relaxed);
                        }
                        let _ = free_tx.send(buf);
                    }
                    Msg::Done(r) => {
                        result = r;
                        break;
                    }
                }
            }
            if stopped { Ok(()) } else { result }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::TransportErrorKind;

    /// Serves `data` through `read_at` only (no `as_bytes`), in pieces of
    /// at most `piece` bytes, failing at `fail_at` if set.
    struct Slow {
        data: Vec<u8>,
        piece: usize,
        fail_at: Option<u64>,
    }

    impl RangeSource for Slow {
        fn len(&self) -> Result<u64, TransportError> {
            Ok(self.data.len() as u64)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
            if self.fail_at.is_some_and(|f| offset >= f) {
                return Err(TransportError::new(
                    TransportErrorKind::ConnectionLost,
                    "test",
                ));
            }
            let start = (offset as usize).min(self.data.len());
            let mut n = buf.len().min(self.piece).min(self.data.len() - start);
            if let Some(f) = self.fail_at {
                n = n.min((f - offset) as usize);
            }
            buf[..n].copy_from_slice(&self.data[start..start + n]);
            Ok(n)
        }
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    type Chunks = Vec<(u64, Vec<u8>)>;

    fn collect(
        src: &dyn RangeSource,
        ranges: &[Range<u64>],
        stop_after: Option<usize>,
    ) -> (Chunks, Result<(), TransportError>) {
        let mut got = Vec::new();
        let mut seen = 0usize;
        let r = src.read_ranges(ranges, &mut |o, b| {
            got.push((o, b.to_vec()));
            seen += b.len();
            match stop_after {
                Some(n) if seen >= n => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        });
        (got, r)
    }

    /// The bytes of each range, reassembled from the chunks.
    fn flatten(chunks: &[(u64, Vec<u8>)]) -> Vec<(u64, u8)> {
        let mut v: Vec<(u64, u8)> = chunks
            .iter()
            .flat_map(|(o, b)| b.iter().enumerate().map(move |(i, &x)| (o + i as u64, x)))
            .collect();
        v.sort_by_key(|p| p.0);
        v
    }

    #[test]
    fn same_bytes_as_the_inner_source() {
        let d = data(3_000_000);
        for piece in [1000, 65_536, 1 << 20] {
            let ranges = [
                0..10,
                100..1_500_000,
                1_500_000..1_500_001,
                2_000_000..3_000_000,
            ];
            let direct = Slow {
                data: d.clone(),
                piece,
                fail_at: None,
            };
            let (a, ra) = collect(&direct, &ranges, None);
            let piped = Pipelined::new(Slow {
                data: d.clone(),
                piece,
                fail_at: None,
            })
            .buffers(64 * 1024, 3);
            let (b, rb) = collect(&piped, &ranges, None);
            assert!(ra.is_ok() && rb.is_ok());
            assert_eq!(flatten(&a), flatten(&b));
            // No byte twice, none outside the ranges.
            let f = flatten(&b);
            assert!(f.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(f.iter().all(|(o, _)| ranges.iter().any(|r| r.contains(o))));
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn a_break_stops_the_worker() {
        let d = data(4_000_000);
        let piped = Pipelined::new(Slow {
            data: d,
            piece: 4096,
            fail_at: None,
        })
        .buffers(8192, 2);
        let (got, r) = collect(&piped, &[0..4_000_000], Some(100_000));
        assert!(r.is_ok());
        let n: usize = got.iter().map(|(_, b)| b.len()).sum();
        assert!(
            (100_000..200_000).contains(&n),
            "delivered {n} bytes after the break"
        );
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn errors_come_after_the_bytes_before_them() {
        let d = data(2_000_000);
        let piped = Pipelined::new(Slow {
            data: d.clone(),
            piece: 10_000,
            fail_at: Some(1_234_567),
        })
        .buffers(100_000, 4);
        let (got, r) = collect(&piped, &[0..2_000_000], None);
        assert_eq!(
            r.map_err(|e| e.kind()),
            Err(TransportErrorKind::ConnectionLost)
        );
        let f = flatten(&got);
        assert_eq!(f.len(), 1_234_567);
        assert!(f.iter().all(|&(o, x)| d[o as usize] == x));
    }
}
