//! [`RangeSource`]: "a place that serves byte ranges of a package", the one
//! trait every transport implements, and [`TransportError`], the error it
//! returns.
//!
//! # The rules a source follows
//!
//! - **Short reads are allowed.** [`RangeSource::read_at`] may fill less
//!   than the whole buffer; it returns 0 only at the end of the source.
//!   Callers that need the whole range use [`RangeSource::read_exact_at`].
//! - **Vectored requests.** [`RangeSource::read_ranges`] is handed every
//!   range the session wants at once so that transports that can pipeline
//!   (RTSP) or send multi-range requests (HTTP `Range: bytes=a-b,c-d`) do
//!   so. Its chunks may arrive **in any order and in any size**, but each
//!   requested byte is delivered **at most once**, and a chunk never spans
//!   bytes outside the requested ranges. The default implementation loops
//!   over `read_at`, in order.
//! - **Errors say whether to retry.** [`TransportError::is_retryable`] is
//!   true for failures a new attempt may cure (timeouts, dropped
//!   connections, transient I/O); the session re-requests the affected
//!   blocks a bounded number of times. Everything else (not found, denied,
//!   range not satisfiable, protocol violations, a source that changed
//!   under us) ends the stream.
//! - **Sources do not interpret bytes.** No CRC, inflate or scheduling
//!   logic lives in a source; the session checks every block it receives.

use core::ops::{ControlFlow, Range};
use std::sync::Arc;

pub use crate::error::{TransportError, TransportErrorKind};

/// The callback [`RangeSource::read_ranges`] delivers chunks to: the
/// absolute offset of the chunk and its bytes. Returning
/// [`ControlFlow::Break`] asks the source to stop at once; it then returns
/// `Ok(())` without reading further (the caller knows why it stopped).
pub type ChunkSink<'a> = dyn FnMut(u64, &[u8]) -> ControlFlow<()> + 'a;

/// A place that serves byte ranges of one package: a file, a memory
/// buffer, an HTTP URL, an RTSP session, an SMB share.
///
/// Synchronous, `Send + Sync` (a source is shared by reader threads), and
/// free of any knowledge of the format: see the [module docs](self) for
/// the rules on short reads, ordering and errors.
///
/// Implementing it takes two methods:
///
/// ```
/// use sft::stream::{TransportError, TransportErrorKind};
/// use sft::io::RangeSource;
///
/// /// A source serving a package that is all zero bytes, for the example.
/// struct Zeros(u64);
///
/// impl RangeSource for Zeros {
///     fn len(&self) -> Result<u64, TransportError> {
///         Ok(self.0)
///     }
///     fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
///         let n = self.0.saturating_sub(offset).min(buf.len() as u64) as usize;
///         buf[..n].fill(0);
///         Ok(n)
///     }
/// }
///
/// let mut buf = [1u8; 8];
/// Zeros(100).read_exact_at(96, &mut buf[..4]).unwrap();
/// assert_eq!(buf[..4], [0; 4]);
/// let e = Zeros(100).read_exact_at(96, &mut buf).unwrap_err();
/// assert_eq!(e.kind(), TransportErrorKind::RangeNotSatisfiable);
/// ```
pub trait RangeSource: Send + Sync {
    /// The total length of the source in bytes.
    ///
    /// # Errors
    /// As the transport reports it.
    fn len(&self) -> Result<u64, TransportError>;

    /// True if the source has no bytes.
    ///
    /// # Errors
    /// As [`RangeSource::len`].
    fn is_empty(&self) -> Result<bool, TransportError> {
        Ok(self.len()? == 0)
    }

    /// Read bytes starting at `offset` into `buf`; returns how many were
    /// read, which may be fewer than `buf.len()` (a short read) and is 0
    /// only at or past the end of the source.
    ///
    /// # Errors
    /// As the transport reports it; see [`TransportError::is_retryable`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError>;

    /// Fill all of `buf` from `offset`, looping over short reads.
    ///
    /// # Errors
    /// [`TransportErrorKind::RangeNotSatisfiable`] if the source ends
    /// first; otherwise as [`RangeSource::read_at`].
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self.read_at(at, &mut buf[done..])?;
            if n == 0 {
                return Err(TransportError::new(
                    TransportErrorKind::RangeNotSatisfiable,
                    format!("{}: source ends at {at}", self.endpoint()),
                )
                .with_range(offset..offset + buf.len() as u64));
            }
            done += n;
        }
        Ok(())
    }

    /// Read several ranges, delivering bytes to `sink` as they arrive.
    ///
    /// Chunks may come in any order and size, each requested byte at most
    /// once, each chunk inside one requested range. The default reads the
    /// ranges in order through [`RangeSource::read_at`] in pieces of at
    /// most 256 KiB; transports that can pipeline or send one multi-range
    /// request override it. A source that ends inside a range fails with
    /// [`TransportErrorKind::RangeNotSatisfiable`].
    ///
    /// # Errors
    /// The first transport error; chunks delivered before it stay valid.
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        const PIECE: u64 = 256 * 1024;
        let longest = ranges
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .max()
            .unwrap_or(0)
            .min(PIECE);
        let mut buf = vec![0u8; longest as usize];
        for r in ranges {
            let mut at = r.start;
            while at < r.end {
                let want = (r.end - at).min(PIECE) as usize;
                let n = self.read_at(at, &mut buf[..want])?;
                if n == 0 {
                    return Err(TransportError::new(
                        TransportErrorKind::RangeNotSatisfiable,
                        format!("{}: source ends at {at}", self.endpoint()),
                    )
                    .with_range(r.clone()));
                }
                let n = n.min(want);
                if sink(at, &buf[..n]).is_break() {
                    return Ok(());
                }
                at += n as u64;
            }
        }
        Ok(())
    }

    /// Advice from a driver: the next reads will be
    /// [`RangeSource::read_exact_at`] calls walking `range` in order, in
    /// pieces. A transport may open one streaming response for the whole
    /// range (one `GET` with a `Range` header, one RTSP `PLAY`) and serve
    /// those reads from it instead of a round trip per piece; reads outside
    /// the advised range, or out of order, must still work (they may cost
    /// a new request). The default ignores the advice.
    fn will_read(&self, range: Range<u64>) {
        let _ = range;
    }

    /// Whether in-order [`RangeSource::read_exact_at`] calls after
    /// [`RangeSource::will_read`] are this source's best way to read a
    /// long range: true for a local file (`pread`) and for transports that
    /// serve the advised range as one streaming response (an `http://`
    /// `GET`, an RTSP fetch). Drivers then read requests in pieces on a
    /// reader thread, straight into their buffers, while other threads
    /// check and store the pieces before. The default is `false`: a
    /// driver asks for each batch of requests with
    /// [`RangeSource::read_ranges`], which batching transports (multi-range
    /// requests, several reads in flight) serve best.
    fn streaming_reads(&self) -> bool {
        false
    }

    /// The request sizes this source works best with, if they differ from
    /// the session's defaults: a local file wants large pieces and many in
    /// flight, a remote server fewer and longer requests. Drivers apply
    /// them only when the caller left the defaults in place.
    fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
        None
    }

    /// The source's bytes, if it holds them all in memory (a slice, a
    /// memory map), so drivers can skip copying. `None` for anything else.
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }

    /// A human-readable name of the endpoint (a path, a URL) for error
    /// messages. Defaults to the implementing type's name.
    fn endpoint(&self) -> String {
        String::from(core::any::type_name::<Self>())
    }
}

/// Copy out of an in-memory source.
fn slice_read_at(data: &[u8], offset: u64, buf: &mut [u8]) -> usize {
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    let Some(avail) = data.get(start..) else {
        return 0;
    };
    let n = avail.len().min(buf.len());
    buf[..n].copy_from_slice(&avail[..n]);
    n
}

/// Deliver sub-slices of an in-memory source without copying.
fn slice_read_ranges(
    data: &[u8],
    ranges: &[Range<u64>],
    sink: &mut ChunkSink<'_>,
) -> Result<(), TransportError> {
    for r in ranges {
        let len = data.len() as u64;
        if r.start > r.end || r.end > len {
            return Err(TransportError::new(
                TransportErrorKind::RangeNotSatisfiable,
                format!("memory: source is {len} bytes"),
            )
            .with_range(r.clone()));
        }
        // In bounds: r.end <= data.len().
        let bytes = &data[r.start as usize..r.end as usize];
        if !bytes.is_empty() && sink(r.start, bytes).is_break() {
            return Ok(());
        }
    }
    Ok(())
}

impl RangeSource for [u8] {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(<[u8]>::len(self) as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        Ok(slice_read_at(self, offset, buf))
    }
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        slice_read_ranges(self, ranges, sink)
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
    fn endpoint(&self) -> String {
        String::from("memory")
    }
}

impl RangeSource for Vec<u8> {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.as_slice().len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        Ok(slice_read_at(self, offset, buf))
    }
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        slice_read_ranges(self, ranges, sink)
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
    fn endpoint(&self) -> String {
        String::from("memory")
    }
}

macro_rules! forward_range_source {
    ($($t:ty),*) => {$(
        impl<T: RangeSource + ?Sized> RangeSource for $t {
            fn len(&self) -> Result<u64, TransportError> {
                (**self).len()
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
                (**self).read_at(offset, buf)
            }
            fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
                (**self).read_exact_at(offset, buf)
            }
            fn read_ranges(
                &self,
                ranges: &[Range<u64>],
                sink: &mut ChunkSink<'_>,
            ) -> Result<(), TransportError> {
                (**self).read_ranges(ranges, sink)
            }
            fn will_read(&self, range: Range<u64>) {
                (**self).will_read(range)
            }
            fn streaming_reads(&self) -> bool {
                (**self).streaming_reads()
            }
            fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
                (**self).preferred_limits()
            }
            fn as_bytes(&self) -> Option<&[u8]> {
                (**self).as_bytes()
            }
            fn endpoint(&self) -> String {
                (**self).endpoint()
            }
        }
    )*};
}

forward_range_source!(&T, Box<T>, Arc<T>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_reads_and_ranges() {
        let data: Vec<u8> = (0..=255).collect();
        let mut buf = [0u8; 4];
        assert_eq!(data.read_at(254, &mut buf).unwrap(), 2);
        assert_eq!(data.read_at(300, &mut buf).unwrap(), 0);
        let mut got = Vec::new();
        let arc: Arc<[u8]> = data.clone().into();
        arc.read_ranges(&[10..12, 0..1], &mut |off, b| {
            got.push((off, b.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(got, [(10, vec![10, 11]), (0, vec![0])]);
        let e = data
            .read_ranges(core::slice::from_ref(&(250..260)), &mut |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap_err();
        assert_eq!(e.kind(), TransportErrorKind::RangeNotSatisfiable);
        assert!(!e.is_retryable());
    }

    #[test]
    fn default_read_ranges_loops_over_short_reads() {
        struct OneByte(Vec<u8>);
        impl RangeSource for OneByte {
            fn len(&self) -> Result<u64, TransportError> {
                Ok(self.0.len() as u64)
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
                let n = buf.len().min(1);
                Ok(slice_read_at(&self.0, offset, &mut buf[..n]))
            }
        }
        let src = OneByte((0..10).collect());
        let mut got = Vec::new();
        src.read_ranges(&[2..5, 8..10], &mut |off, b| {
            got.extend(b.iter().map(|&x| (off, x)));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(got, [(2, 2), (3, 3), (4, 4), (8, 8), (9, 9)]);
        let e = src
            .read_ranges(core::slice::from_ref(&(8..12)), &mut |_, _| {
                ControlFlow::Continue(())
            })
            .unwrap_err();
        assert_eq!(e.range(), Some(8..12));
        assert!(e.to_string().contains("source ends at 10"), "{e}");
    }

    #[test]
    fn retryable_kinds() {
        for k in [
            TransportErrorKind::Timeout,
            TransportErrorKind::ConnectionLost,
            TransportErrorKind::Io,
        ] {
            assert!(k.is_retryable());
        }
        for k in [
            TransportErrorKind::NotFound,
            TransportErrorKind::Changed,
            TransportErrorKind::Protocol,
            TransportErrorKind::RangeNotSatisfiable,
        ] {
            assert!(!k.is_retryable());
        }
    }
}
