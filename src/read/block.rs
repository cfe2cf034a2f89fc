//! [`Block`]: one block's stored bytes with its record, and the single
//! decode path (CRC check, then inflate with an exact size cap) used for
//! blocks from a mapped package and from a streamed buffer alike.

#[allow(unused_imports)]
use crate::prelude::*;

use alloc::borrow::Cow;

use crate::error::{Error, IntegrityError, IntegrityProblem, Region};
use crate::format::Codec;
use crate::index::BlockInfo;

/// A block: its validated record and its stored bytes, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Block<'data> {
    info: BlockInfo,
    stored: &'data [u8],
}

impl<'data> Block<'data> {
    /// Pair a record with the stored bytes it describes. The bytes are not
    /// checked here; [`Block::verify`] and [`Block::decode`] check them.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `stored` is not `info.stored_len` long, or
    /// if the record's lengths exceed the largest block size (64 KiB), which
    /// bounds what decoding may allocate.
    pub fn new(info: BlockInfo, stored: &'data [u8]) -> Result<Self, Error> {
        let max = crate::format::BLOCK_SIZES[crate::format::BLOCK_SIZES.len() - 1];
        if info.raw_len > max || info.stored_len > max {
            return Err(Error::invalid(format!(
                "{}: record lengths {}/{} exceed the largest block size {max}",
                info.id, info.stored_len, info.raw_len
            )));
        }
        if stored.len() as u64 != u64::from(info.stored_len) {
            return Err(Error::invalid(format!(
                "{}: {} stored bytes given, record says {}",
                info.id,
                stored.len(),
                info.stored_len
            )));
        }
        Ok(Block { info, stored })
    }

    /// The block's record.
    pub fn info(&self) -> &BlockInfo {
        &self.info
    }

    /// The stored (possibly compressed) bytes, unchecked.
    pub fn stored(&self) -> &'data [u8] {
        self.stored
    }

    /// Check the stored bytes against the record's CRC-32 and, in a v1.1
    /// package with block hashes ([`BlockInfo::hash`]), against their
    /// BLAKE3 hash: the check that binds a block to a signed prologue.
    ///
    /// # Errors
    /// [`Error::Integrity`] with both CRCs, or both hashes' first bytes,
    /// on mismatch.
    pub fn verify(&self) -> Result<(), Error> {
        let actual = crc32fast::hash(self.stored);
        if actual != self.info.crc {
            return Err(IntegrityError::new(
                Region::Block(self.info.id.0),
                self.info.stored_offset,
                IntegrityProblem::CrcMismatch {
                    expected: self.info.crc,
                    actual,
                },
            )
            .into());
        }
        if let Some(expected) = &self.info.hash {
            check_hash(&self.info, self.stored, expected)?;
        }
        Ok(())
    }

    /// Verify and decode: stored blocks are returned borrowed (zero-copy),
    /// zlib blocks inflated into a new buffer of exactly `raw_len` bytes.
    ///
    /// # Errors
    /// [`Error::Integrity`] if the CRC fails or the stream does not inflate
    /// to exactly `raw_len` bytes; [`Error::Unsupported`] if this build has
    /// no inflater (feature `deflate` off).
    pub fn decode(&self) -> Result<Cow<'data, [u8]>, Error> {
        self.verify()?;
        match self.info.codec {
            Codec::Stored => Ok(Cow::Borrowed(self.stored)),
            _ => {
                let mut out = Vec::new();
                Decoder::new().inflate(&self.info, self.stored, &mut out)?;
                Ok(Cow::Owned(out))
            }
        }
    }
}

/// Check `stored` (block `info`'s stored bytes) against the BLAKE3 hash
/// `expected`.
///
/// # Errors
/// [`Error::Integrity`] ([`IntegrityProblem::HashMismatch`]) on mismatch.
pub(crate) fn check_hash(
    info: &BlockInfo,
    stored: &[u8],
    expected: &[u8; crate::format::HASH_LEN],
) -> Result<(), Error> {
    let actual = blake3::hash(stored);
    if actual.as_bytes() != expected {
        let prefix = |h: &[u8]| {
            let mut p = [0u8; 8];
            p.copy_from_slice(&h[..8]);
            p
        };
        return Err(IntegrityError::new(
            Region::Block(info.id.0),
            info.stored_offset,
            IntegrityProblem::HashMismatch {
                expected: prefix(expected),
                actual: prefix(actual.as_bytes()),
            },
        )
        .into());
    }
    Ok(())
}

/// A reusable block decoder: keeps its inflate state between blocks so
/// hot loops allocate nothing per block.
#[derive(Debug, Default)]
pub struct Decoder {
    #[cfg(feature = "deflate")]
    z: Option<flate2::Decompress>,
    #[cfg(feature = "zstd")]
    zs: Option<ZstdDecoder>,
}

/// A reused zstd decompression context (the C library's own state).
#[cfg(feature = "zstd")]
struct ZstdDecoder(zstd::zstd_safe::DCtx<'static>);

#[cfg(feature = "zstd")]
impl core::fmt::Debug for ZstdDecoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ZstdDecoder")
    }
}

impl Decoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verify `block` and decode it into `out` (cleared first).
    ///
    /// # Errors
    /// As [`Block::decode`].
    pub fn decode_into(&mut self, block: &Block<'_>, out: &mut Vec<u8>) -> Result<(), Error> {
        block.verify()?;
        match block.info.codec {
            Codec::Stored => {
                out.clear();
                out.extend_from_slice(block.stored);
                Ok(())
            }
            _ => self.inflate(&block.info, block.stored, out),
        }
    }

    /// Inflate already-verified stored bytes into `out` (cleared first),
    /// requiring exactly `info.raw_len` bytes of output and the whole input
    /// consumed. Output is capped at `raw_len` (at most 64 KiB), so no
    /// input can make it allocate more.
    ///
    /// # Errors
    /// [`Error::Integrity`] on a corrupt stream or wrong size.
    pub(crate) fn inflate(
        &mut self,
        info: &BlockInfo,
        stored: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        out.clear();
        match info.codec {
            Codec::Stored => {
                out.extend_from_slice(stored);
                Ok(())
            }
            #[cfg(feature = "deflate")]
            Codec::Zlib => {
                use flate2::{Decompress, FlushDecompress, Status};
                let region = Region::Block(info.id.0);
                let corrupt =
                    |problem| Error::from(IntegrityError::new(region, info.stored_offset, problem));
                let raw = info.raw_len as usize;
                // Inflate into a slice of exactly `raw` bytes: the cap is
                // the slice, whatever capacity `out` kept from earlier use.
                out.resize(raw, 0);
                let z = self.z.get_or_insert_with(|| Decompress::new(true));
                z.reset(true);
                let result = z.decompress(stored, out, FlushDecompress::Finish);
                let produced = z.total_out();
                let consumed = z.total_in();
                let status = match result {
                    Ok(s) => s,
                    Err(_) => {
                        out.clear();
                        return Err(corrupt(IntegrityProblem::Inflate));
                    }
                };
                if status != Status::StreamEnd {
                    out.clear();
                    // Output full but the stream goes on: too long.
                    return Err(corrupt(if produced == raw as u64 {
                        IntegrityProblem::Overlong { limit: raw as u64 }
                    } else {
                        IntegrityProblem::Inflate
                    }));
                }
                if produced != raw as u64 || consumed != stored.len() as u64 {
                    out.clear();
                    return Err(corrupt(IntegrityProblem::SizeMismatch {
                        expected: raw as u64,
                        actual: produced,
                    }));
                }
                Ok(())
            }
            #[cfg(feature = "zstd")]
            Codec::Zstd => {
                use zstd::zstd_safe;
                let region = Region::Block(info.id.0);
                let corrupt =
                    |problem| Error::from(IntegrityError::new(region, info.stored_offset, problem));
                let raw = info.raw_len as usize;
                // Exactly one frame, which must declare its content size:
                // the decoder then writes straight into `out` (no window
                // buffer of the frame's choosing), capped by its length.
                match zstd_safe::find_frame_compressed_size(stored) {
                    Ok(n) if n == stored.len() => {}
                    Ok(n) => {
                        return Err(corrupt(IntegrityProblem::SizeMismatch {
                            expected: stored.len() as u64,
                            actual: n as u64,
                        }));
                    }
                    Err(_) => return Err(corrupt(IntegrityProblem::Inflate)),
                }
                match zstd_safe::get_frame_content_size(stored) {
                    Ok(Some(n)) if n == raw as u64 => {}
                    Ok(Some(n)) if n > raw as u64 => {
                        return Err(corrupt(IntegrityProblem::Overlong { limit: raw as u64 }));
                    }
                    Ok(Some(n)) => {
                        return Err(corrupt(IntegrityProblem::SizeMismatch {
                            expected: raw as u64,
                            actual: n,
                        }));
                    }
                    _ => return Err(corrupt(IntegrityProblem::Inflate)),
                }
                out.resize(raw, 0);
                let z = self
                    .zs
                    .get_or_insert_with(|| ZstdDecoder(zstd_safe::DCtx::create()));
                match z.0.decompress(&mut out[..], stored) {
                    Ok(n) if n == raw => Ok(()),
                    Ok(n) => {
                        out.clear();
                        Err(corrupt(IntegrityProblem::SizeMismatch {
                            expected: raw as u64,
                            actual: n as u64,
                        }))
                    }
                    Err(_) => {
                        out.clear();
                        Err(corrupt(IntegrityProblem::Inflate))
                    }
                }
            }
            #[allow(unreachable_patterns)]
            other => Err(crate::error::Unsupported::Codec {
                block: info.id.0,
                codec: other.id(),
            }
            .into()),
        }
    }
}

/// Whether [`BlockBuffer::load`] checks the stored bytes' CRC-32.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crc {
    /// Check it: the bytes come straight from a file or a transport.
    Check,
    /// The bytes were checked when they were stored (a stream's cache
    /// checks every block before it reports it present): decode only.
    AlreadyChecked,
}

/// One block read into owned buffers, decoded, and kept between reads:
/// the block cache of readers whose blocks come from a file or a
/// transport rather than a borrowed slice (`sft::io::package_file`, the
/// streaming package). Asking again for the block it holds costs nothing,
/// so small sequential reads decode each block once.
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub(crate) struct BlockBuffer {
    id: Option<crate::format::BlockId>,
    stored: Vec<u8>,
    data: Vec<u8>,
    decoder: Decoder,
}

#[cfg(feature = "std")]
impl BlockBuffer {
    /// The block held, decoded, if any.
    pub(crate) fn holds(&self) -> Option<crate::format::BlockId> {
        self.id
    }

    /// Block `info` decoded (`info.raw_len` bytes): the one held, or read
    /// by `fill` (handed a buffer of exactly `info.stored_len` bytes),
    /// then CRC-checked as `crc` says and decoded through the one decode
    /// path (an inflate capped at, and required to produce, `raw_len`).
    /// On any error nothing is held.
    ///
    /// # Errors
    /// What `fill` returns; as [`Block::new`], [`Block::verify`] and
    /// [`Block::decode`].
    pub(crate) fn load(
        &mut self,
        info: &BlockInfo,
        crc: Crc,
        fill: impl FnOnce(&mut [u8]) -> Result<(), Error>,
    ) -> Result<&[u8], Error> {
        if self.id != Some(info.id) {
            self.id = None;
            let max = crate::format::BLOCK_SIZES[crate::format::BLOCK_SIZES.len() - 1];
            if info.stored_len > max {
                // Block::new says so, before anything is allocated.
                Block::new(*info, &[])?;
            }
            self.stored.resize(info.stored_len as usize, 0);
            fill(&mut self.stored)?;
            let block = Block::new(*info, &self.stored)?;
            if crc == Crc::Check {
                block.verify()?;
            }
            match info.codec {
                Codec::Stored => core::mem::swap(&mut self.stored, &mut self.data),
                _ => self.decoder.inflate(info, &self.stored, &mut self.data)?,
            }
            self.id = Some(info.id);
        }
        Ok(&self.data)
    }
}
