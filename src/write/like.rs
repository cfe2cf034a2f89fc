//! Packing a new version like an old one (`sft pack --like OLD.sft`):
//! the layout that makes delta fetches small.
//!
//! A block is reused by a delta fetch when its stored bytes are equal to a
//! block the client already holds, which (for one codec and level) means
//! equal raw bytes: the same `block_size` bytes of file data. A new
//! version packed from scratch shifts every byte after its first changed
//! file, so few blocks stay equal. Here the writer first finds, in each
//! feature block's stream of file data, every run of `block_size` bytes
//! that equals a whole block of the old version (rsync's rolling checksum
//! over the new data, against a table of the old blocks' raw contents,
//! confirmed by BLAKE3), and then lays the stream out so that each such
//! run fills exactly one block: the runs first, then the rest, so the
//! blocks a client lacks are one contiguous run. Extents let a file's
//! bytes sit anywhere in
//! the logical stream, so no file needs to be contiguous, and nothing but
//! the layout changes: every file still reads back the same.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::plan::Piece;
use super::{InputEntry, Source};
use crate::error::Error;

/// The raw contents of an old version's whole blocks, by rolling checksum.
#[derive(Debug)]
pub(crate) struct LikeIndex {
    pub(crate) block_size: u32,
    /// Weak checksum → BLAKE3 hashes of the raw blocks with it.
    by_weak: HashMap<u32, Vec<[u8; 32]>>,
    /// A one-bit-per-bucket filter of weak checksums, so most positions
    /// cost one bit test rather than a hash map look-up.
    filter: Vec<u64>,
}

const FILTER_BITS: u32 = 24;

fn filter_slot(weak: u32) -> (usize, u64) {
    let h = weak.wrapping_mul(0x9E37_79B1) >> (32 - FILTER_BITS);
    ((h / 64) as usize, 1u64 << (h % 64))
}

/// rsync's rolling checksum of a window.
#[derive(Debug, Clone, Copy, Default)]
struct Rolling {
    a: u32,
    b: u32,
    len: u32,
}

impl Rolling {
    fn of(window: &[u8]) -> Self {
        let mut r = Rolling {
            len: window.len() as u32,
            ..Rolling::default()
        };
        let n = window.len() as u32;
        for (i, &x) in window.iter().enumerate() {
            r.a = r.a.wrapping_add(u32::from(x));
            r.b = r.b.wrapping_add((n - i as u32).wrapping_mul(u32::from(x)));
        }
        r
    }

    fn roll(&mut self, out: u8, inb: u8) {
        self.a = self
            .a
            .wrapping_sub(u32::from(out))
            .wrapping_add(u32::from(inb));
        self.b = self
            .b
            .wrapping_sub(self.len.wrapping_mul(u32::from(out)))
            .wrapping_add(self.a);
    }

    fn digest(&self) -> u32 {
        (self.b << 16) ^ (self.a & 0xffff) ^ (self.b >> 16)
    }
}

impl LikeIndex {
    /// Index every whole block (raw length = block size) of the package in
    /// `bytes`, each block checked and decoded.
    pub(crate) fn from_package(bytes: &[u8]) -> Result<Self, Error> {
        let pkg = crate::read::Package::parse(bytes)?;
        let block_size = pkg.block_size();
        let mut by_weak: HashMap<u32, Vec<[u8; 32]>> = HashMap::new();
        let mut filter = vec![0u64; (1usize << FILTER_BITS) / 64];
        let mut seen = HashSet::new();
        for id in pkg.index().ids() {
            let raw = pkg.read_block(id)?;
            if raw.len() != block_size as usize {
                continue;
            }
            let strong = *blake3::hash(&raw).as_bytes();
            if !seen.insert(strong) {
                continue;
            }
            let weak = Rolling::of(&raw).digest();
            let (w, bit) = filter_slot(weak);
            filter[w] |= bit;
            by_weak.entry(weak).or_default().push(strong);
        }
        Ok(LikeIndex {
            block_size,
            by_weak,
            filter,
        })
    }

    fn matches(&self, weak: u32, window: &[u8]) -> bool {
        let (w, bit) = filter_slot(weak);
        if self.filter[w] & bit == 0 {
            return false;
        }
        let Some(list) = self.by_weak.get(&weak) else {
            return false;
        };
        let strong = blake3::hash(window);
        list.iter().any(|h| h == strong.as_bytes())
    }
}

/// Reads the bytes of a run of pieces (one feature block's stream) in
/// order, a chunk at a time.
struct StreamReader<'a> {
    entries: &'a [(&'a str, &'a InputEntry)],
    pieces: &'a [Piece],
    /// Next piece and offset within it.
    at: (usize, u64),
    open: Option<(usize, std::fs::File)>,
}

impl StreamReader<'_> {
    /// Append up to `max` more bytes to `out`; 0 at the end.
    fn fill(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, Error> {
        let mut n = 0;
        while n < max && self.at.0 < self.pieces.len() {
            let p = self.pieces[self.at.0];
            let take = ((p.len - self.at.1) as usize).min(max - n);
            let start = out.len();
            out.resize(start + take, 0);
            let dst = &mut out[start..];
            let (path, input) = self.entries[p.entry];
            let off = p.file_offset + self.at.1;
            match &input.source {
                Some(Source::Bytes(b)) => {
                    dst.copy_from_slice(&b[off as usize..off as usize + take]);
                }
                Some(Source::Path(fs)) => {
                    if self.open.as_ref().is_none_or(|(i, _)| *i != p.entry) {
                        let f = std::fs::File::open(fs)
                            .map_err(|e| Error::io(format!("opening `{}`", fs.display()), e))?;
                        self.open = Some((p.entry, f));
                    }
                    if let Some((_, f)) = &self.open {
                        crate::io::pos::read_exact_at(f, dst, off).map_err(|e| {
                            Error::io(format!("reading `{}` for `{path}`", fs.display()), e)
                        })?;
                    }
                }
                None => return Err(Error::invalid(format!("`{path}` has no data source"))),
            }
            n += take;
            self.at.1 += take as u64;
            if self.at.1 == p.len {
                self.at = (self.at.0 + 1, 0);
            }
        }
        Ok(n)
    }
}

/// Positions (in the stream of `pieces`) of every run of `block_size`
/// bytes equal to a whole block of the old version, in order, not
/// overlapping.
fn find_matches(
    like: &LikeIndex,
    entries: &[(&str, &InputEntry)],
    pieces: &[Piece],
) -> Result<Vec<u64>, Error> {
    const CHUNK: usize = 1 << 20;
    let bs = like.block_size as usize;
    let mut reader = StreamReader {
        entries,
        pieces,
        at: (0, 0),
        open: None,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + bs);
    // buf[0] is stream position `base`; the window starts at buf[i].
    let (mut base, mut i) = (0u64, 0usize);
    let mut matches = Vec::new();
    let mut rolling: Option<Rolling> = None;
    loop {
        if i + bs > buf.len() {
            // Keep the bytes from the window on, read more.
            buf.drain(..i);
            base += i as u64;
            i = 0;
            if reader.fill(&mut buf, CHUNK)? == 0 && buf.len() < bs {
                break;
            }
            if buf.len() < bs {
                continue;
            }
        }
        let r = rolling.get_or_insert_with(|| Rolling::of(&buf[i..i + bs]));
        if like.matches(r.digest(), &buf[i..i + bs]) {
            matches.push(base + i as u64);
            i += bs;
            rolling = None;
        } else {
            if i + bs < buf.len() {
                r.roll(buf[i], buf[i + bs]);
            } else {
                rolling = None;
            }
            i += 1;
        }
    }
    Ok(matches)
}

/// Cut the stream of `pieces` at stream offsets `a..b` into pieces.
fn slice(pieces: &[Piece], starts: &[u64], a: u64, b: u64, out: &mut Vec<Piece>) {
    let mut k = starts.partition_point(|&s| s <= a).saturating_sub(1);
    let mut pos = a;
    while pos < b {
        let p = pieces[k];
        let within = pos - starts[k];
        let n = (p.len - within).min(b - pos);
        if n > 0 {
            out.push(Piece {
                entry: p.entry,
                file_offset: p.file_offset + within,
                len: n,
                logical: 0,
            });
        }
        pos += n;
        k += 1;
    }
}

/// The pieces of one feature block's stream (in order; their `logical`
/// fields are ignored) laid out again so that every run equal to an old
/// block fills one block: the runs first, in stream order, each exactly
/// one block, then everything else in stream order. So the blocks a
/// client that holds the old version lacks are one contiguous run at the
/// end of the feature block: a delta fetch reads them in one sequential
/// stream of requests instead of one request per gap.
pub(crate) fn relayout(
    like: &LikeIndex,
    entries: &[(&str, &InputEntry)],
    pieces: &[Piece],
) -> Result<Vec<Piece>, Error> {
    let matches = find_matches(like, entries, pieces)?;
    if matches.is_empty() {
        return Ok(pieces.to_vec());
    }
    let bs = u64::from(like.block_size);
    let mut starts = Vec::with_capacity(pieces.len());
    let mut total = 0u64;
    for p in pieces {
        starts.push(total);
        total += p.len;
    }
    let mut out = Vec::with_capacity(pieces.len() + 2 * matches.len());
    let mut rest = Vec::new();
    let mut pos = 0u64;
    for &m in &matches {
        if m > pos {
            slice(pieces, &starts, pos, m, &mut rest);
        }
        slice(pieces, &starts, m, m + bs, &mut out);
        pos = m + bs;
    }
    if pos < total {
        slice(pieces, &starts, pos, total, &mut rest);
    }
    out.append(&mut rest);
    Ok(out)
}

/// Shared handle to an old version's index.
pub(crate) type Like = Arc<LikeIndex>;
