//! Test sources, sinks and packages for the streaming tests.
#![allow(dead_code)]

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sft::io::{ChunkSink, RangeSource};
use sft::stream::{BlockSink, TransportError, TransportErrorKind, VerifiedBlock};
use sft::{BlockId, Error};

/// A small xorshift generator: deterministic, no dependencies.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

pub use crate::common::bytes as noise;

pub fn text(len: usize) -> Vec<u8> {
    b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// A package with 4 KiB blocks, stored (noise) and zlib (text) blocks in
/// both feature blocks: FB1 = app.exe + lib.dll, FB2 = the rest.
#[cfg(feature = "write")]
pub fn package() -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K4)
            .name("Stream")
            .created(1_700_000_000, 0),
    );
    b.add_bytes("app.exe", noise(1, 40_000)).unwrap();
    b.add_bytes("lib.dll", text(30_000)).unwrap();
    b.add_bytes("data/big.bin", noise(2, 100_000)).unwrap();
    b.add_bytes("data/doc.txt", text(50_000)).unwrap();
    b.launch_list(parse_launch_list("app.exe\nlib.dll\n").unwrap());
    b.write_to_vec().unwrap()
}

pub struct Layout {
    pub prologue_len: u64,
    pub fb1_stored_len: u64,
    pub blocks: u32,
    pub fb1_blocks: u32,
}

pub fn layout(pkg: &[u8]) -> Layout {
    let h = sft::format::Header::parse(pkg).unwrap();
    Layout {
        prologue_len: h.prologue_len,
        fb1_stored_len: h.fb1_stored_len,
        blocks: h.block_count,
        fb1_blocks: h.fb1_block_count,
    }
}

/// Serves `data` in short reads (1 byte, or seeded random lengths), and
/// delivers the chunks of a `read_ranges` call in shuffled order.
pub struct ChunkedSource {
    pub data: Vec<u8>,
    /// 0: random lengths in 1..=max; otherwise every read is this long.
    pub fixed: usize,
    pub max: usize,
    pub shuffle: bool,
    rng: AtomicU64,
    pub delivered: AtomicU64,
}

impl ChunkedSource {
    pub fn one_byte(data: Vec<u8>) -> Self {
        Self::new(data, 1, 1, false, 1)
    }
    pub fn random(data: Vec<u8>, seed: u64, max: usize, shuffle: bool) -> Self {
        Self::new(data, 0, max, shuffle, seed)
    }
    fn new(data: Vec<u8>, fixed: usize, max: usize, shuffle: bool, seed: u64) -> Self {
        ChunkedSource {
            data,
            fixed,
            max: max.max(1),
            shuffle,
            rng: AtomicU64::new(seed | 1),
            delivered: AtomicU64::new(0),
        }
    }
    fn step(&self) -> usize {
        if self.fixed > 0 {
            return self.fixed;
        }
        let mut r = Rng(self.rng.load(Ordering::Relaxed));
        let n = 1 + r.below(self.max as u64) as usize;
        self.rng.store(r.0, Ordering::Relaxed);
        n
    }
}

impl RangeSource for ChunkedSource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.data.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        let n = self.step().min(buf.len());
        let n = (self.data.len() as u64)
            .saturating_sub(offset)
            .min(n as u64) as usize;
        buf[..n].copy_from_slice(&self.data[offset as usize..offset as usize + n]);
        self.delivered.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let mut chunks: Vec<(u64, Vec<u8>)> = Vec::new();
        for r in ranges {
            let mut at = r.start;
            while at < r.end {
                let mut buf = vec![0u8; (r.end - at) as usize];
                let n = self.read_at(at, &mut buf)?;
                if n == 0 {
                    return Err(TransportError::new(
                        TransportErrorKind::RangeNotSatisfiable,
                        "chunked",
                    ));
                }
                chunks.push((at, buf[..n].to_vec()));
                at += n as u64;
            }
        }
        if self.shuffle {
            let mut r = Rng(self.rng.load(Ordering::Relaxed));
            for i in (1..chunks.len()).rev() {
                chunks.swap(i, r.below(i as u64 + 1) as usize);
            }
            self.rng.store(r.0, Ordering::Relaxed);
        }
        for (at, bytes) in chunks {
            if sink(at, &bytes).is_break() {
                break;
            }
        }
        Ok(())
    }
    fn endpoint(&self) -> String {
        "chunked://test".into()
    }
}

/// A fault to inject into a [`FlakySource`].
#[derive(Debug, Clone)]
pub enum Fault {
    /// Flip the byte at this absolute offset in the next `times` deliveries
    /// of it (`u32::MAX`: always).
    Corrupt { at: u64, times: u32 },
    /// Fail `read_ranges` call number `call` (0-based) before any data,
    /// with this kind.
    FailCall { call: u64, kind: TransportErrorKind },
    /// Fail every call from `from` on.
    FailFrom { from: u64, kind: TransportErrorKind },
    /// In call number `call`, deliver half of the first range then drop
    /// the connection.
    DropMidway { call: u64 },
}

/// A source that injects faults and records every range it was asked for.
pub struct FlakySource {
    pub data: Vec<u8>,
    faults: Mutex<Vec<Fault>>,
    pub calls: Mutex<Vec<Vec<Range<u64>>>>,
    pub delivered: AtomicU64,
}

impl FlakySource {
    pub fn new(data: Vec<u8>, faults: Vec<Fault>) -> Self {
        FlakySource {
            data,
            faults: Mutex::new(faults),
            calls: Mutex::new(Vec::new()),
            delivered: AtomicU64::new(0),
        }
    }
    pub fn requested(&self) -> Vec<Range<u64>> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

impl RangeSource for FlakySource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.data.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.data.as_slice().read_at(offset, buf)
    }
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(ranges.to_vec());
            calls.len() as u64 - 1
        };
        let mut faults = self.faults.lock().unwrap();
        let mut drop_midway = false;
        for f in faults.iter() {
            match *f {
                Fault::FailCall { call: c, kind } if c == call => {
                    return Err(
                        TransportError::new(kind, "flaky://test").with_range(ranges[0].clone())
                    );
                }
                Fault::FailFrom { from, kind } if call >= from => {
                    return Err(
                        TransportError::new(kind, "flaky://test").with_range(ranges[0].clone())
                    );
                }
                Fault::DropMidway { call: c } if c == call => drop_midway = true,
                _ => {}
            }
        }
        for (i, r) in ranges.iter().enumerate() {
            let mut bytes = self.data[r.start as usize..r.end as usize].to_vec();
            for f in faults.iter_mut() {
                if let Fault::Corrupt { at, times } = f
                    && r.contains(at)
                    && *times > 0
                {
                    bytes[(*at - r.start) as usize] ^= 0x40;
                    if *times != u32::MAX {
                        *times -= 1;
                    }
                }
            }
            if drop_midway && i == 0 {
                let half = bytes.len() / 2;
                self.delivered.fetch_add(half as u64, Ordering::Relaxed);
                let _ = sink(r.start, &bytes[..half]);
                return Err(TransportError::new(
                    TransportErrorKind::ConnectionLost,
                    "flaky://test",
                )
                .with_range(r.clone()));
            }
            self.delivered
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            if sink(r.start, &bytes).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }
    fn endpoint(&self) -> String {
        "flaky://test".into()
    }
}

/// A sink that rebuilds the package and checks every accepted block
/// against the original bytes: corrupted data is never accepted.
pub struct CheckingSink<'a> {
    pub original: &'a [u8],
    pub image: Vec<u8>,
    pub accepted: Vec<BlockId>,
}

impl<'a> CheckingSink<'a> {
    pub fn new(original: &'a [u8]) -> Self {
        CheckingSink {
            original,
            image: Vec::new(),
            accepted: Vec::new(),
        }
    }
}

impl BlockSink for CheckingSink<'_> {
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
        assert_eq!(
            bytes,
            &self.original[..bytes.len()],
            "prologue accepted with bad bytes"
        );
        self.image.prologue(bytes)
    }
    fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
        let r = b.info.stored_range();
        assert_eq!(
            b.stored,
            &self.original[r.start as usize..r.end as usize],
            "{} accepted corrupt",
            b.info.id
        );
        assert_eq!(b.decoded.len(), b.info.raw_len as usize);
        self.accepted.push(b.info.id);
        self.image.block(b)
    }
}
