//! Panic-free little-endian field access over borrowed bytes.
//!
//! Every accessor checks its bounds and returns a [`FormatError`] naming the
//! region and absolute offset instead of panicking. Callers pass the
//! absolute offset of the slice start so that errors point into the file.

#[allow(unused_imports)]
use crate::prelude::*;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::errors::{FormatError, FormatProblem, Region};

/// Borrow `len` bytes at `start` from `data`, or say where it falls short.
///
/// `base` is the absolute file offset of `data[0]`, used only in errors.
pub(crate) fn slice_at(
    data: &[u8],
    start: u64,
    len: u64,
    region: Region,
    base: u64,
) -> Result<&[u8], FormatError> {
    let avail = data.len() as u64;
    let end = start.checked_add(len);
    match end {
        Some(end) if end <= avail => {
            // Both fit in usize because they are <= data.len().
            Ok(&data[start as usize..end as usize])
        }
        _ => Err(FormatError::new(
            region,
            base.saturating_add(start),
            FormatProblem::Truncated {
                needed: len,
                available: avail.saturating_sub(start),
            },
        )),
    }
}

/// A fixed-size record whose length has been checked: field reads at
/// constant offsets inside it cannot go out of bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Fields<'a> {
    /// Little-endian u16 at `at`. Panics only on a programming error (an
    /// offset beyond the record size, which the constants in this module
    /// rule out); callers construct `Fields` from slices of the full record
    /// size.
    #[inline]
    pub(crate) fn u16(&self, at: usize) -> u16 {
        self.0.get(at..at + 2).map_or(0, LE::read_u16)
    }
    #[inline]
    pub(crate) fn u32(&self, at: usize) -> u32 {
        self.0.get(at..at + 4).map_or(0, LE::read_u32)
    }
    #[inline]
    pub(crate) fn u64(&self, at: usize) -> u64 {
        self.0.get(at..at + 8).map_or(0, LE::read_u64)
    }
    #[inline]
    pub(crate) fn i64(&self, at: usize) -> i64 {
        self.0.get(at..at + 8).map_or(0, LE::read_i64)
    }
    #[inline]
    pub(crate) fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }
    #[inline]
    pub(crate) fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.0.get(at..at + N) {
            out.copy_from_slice(s);
        }
        out
    }
}

/// CRC-32 (IEEE, as zlib and `crc32fast`) of the concatenation of `parts`.
pub(crate) fn crc32_parts(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Write helpers for encoders: little-endian into a fixed buffer.
pub(crate) fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    LE::write_u16(&mut buf[at..at + 2], v);
}
pub(crate) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    LE::write_u32(&mut buf[at..at + 4], v);
}
pub(crate) fn put_u64(buf: &mut [u8], at: usize, v: u64) {
    LE::write_u64(&mut buf[at..at + 8], v);
}
pub(crate) fn put_i64(buf: &mut [u8], at: usize, v: i64) {
    LE::write_i64(&mut buf[at..at + 8], v);
}
