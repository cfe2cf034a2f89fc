//! Entry points for fuzz targets, the corpus replay test and the property
//! tests. Not part of the stable API.
//!
//! Each `fuzz/fuzz_targets/<name>.rs` is a one-liner calling the function
//! of the same name here, so `tests/fuzz_corpus.rs` and
//! `tests/regressions.rs` replay every corpus file and crash on stable.
//! The functions panic exactly when they find a bug: an accepted
//! corruption, a read that disagrees with another read, a write that does
//! not read back.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use crate::format::{BlockId, Codec, FeatureBlock};
use crate::index::BlockInfo;
use crate::read::{Block, Decoder, Package, Prologue};

/// Parse arbitrary bytes and exercise every read path: walk entries, look
/// each up by path, read every file (whole, by chunks, at offsets), read
/// every block, and verify. Must never panic.
///
/// One oracle: if [`Package::verify`] passes, every file must read
/// without error, and whole-file reads, chunks and `read_at` must agree.
pub fn parse_and_walk(data: &[u8]) {
    let Ok(pkg) = Package::parse(data) else {
        return;
    };
    let _ = pkg.metadata();
    let index = pkg.index();
    for id in index.ids().take(4096) {
        let _ = pkg.read_block(id);
    }
    for e in pkg.entries().take(4096) {
        let Ok(e) = e else { break };
        let _ = pkg.find(e.path());
        if e.is_file() {
            let _ = pkg.read_file(&e);
            let mut buf = [0u8; 97];
            let _ = pkg.read_at(&e, e.size() / 2, &mut buf);
            for c in pkg.chunks(&e).take(64) {
                let _ = c;
            }
        }
    }
    let _ = pkg.find("a/b");
    if pkg.verify().is_err() {
        return;
    }
    // A verified package reads back consistently through every path.
    for e in pkg.entries().take(4096) {
        let e = e.expect("entry of a verified package");
        let found = pkg.find(e.path()).expect("find in a verified package");
        assert_eq!(found.map(|f| f.number()), Some(e.number()));
        if !e.is_file() || e.size() > 1 << 22 {
            continue;
        }
        let whole = pkg.read_file(&e).expect("read of a verified package");
        assert_eq!(whole.len() as u64, e.size());
        let mut joined = Vec::with_capacity(whole.len());
        for c in pkg.chunks(&e) {
            joined.extend_from_slice(&c.expect("chunk of a verified package"));
        }
        assert_eq!(joined, whole, "chunks disagree with read_file");
        let mid = e.size() / 3;
        let mut buf = vec![0u8; 5000];
        let n = pkg.read_at(&e, mid, &mut buf).expect("read_at");
        assert_eq!(&buf[..n], &whole[mid as usize..(mid as usize + n)]);
        assert_eq!(n as u64, (e.size() - mid).min(5000));
    }
}

/// Parse a prologue (header, section table, metadata) from arbitrary
/// bytes and run every look-up that needs no block data. Must never panic.
pub fn prologue(data: &[u8]) {
    let Ok(p) = Prologue::parse(data) else {
        return;
    };
    assert_eq!(p.as_bytes().len() as u64, p.header().prologue_len);
    let _ = p.metadata();
    let index = p.index();
    let logical = index.logical_len();
    for id in index.ids().take(4096) {
        let range = index.logical_range(id).expect("id in range");
        assert!(range.start <= range.end && range.end <= logical);
        if range.start < range.end {
            assert_eq!(index.locate(range.start), Some((id, 0)));
        }
        if let Ok(info) = index.get(id) {
            assert_eq!(info.logical_range(), range);
            assert_eq!(info.feature_block, index.feature_block_of(id));
        }
    }
    for probe in [
        0,
        1,
        logical / 2,
        logical.saturating_sub(1),
        logical,
        u64::MAX,
    ] {
        if let Some((id, within)) = index.locate(probe) {
            assert!(id.0 < index.len() && within < index.block_size());
        } else {
            assert!(probe >= logical);
        }
        let _ = index.blocks_for_range(probe..probe.saturating_add(70_000));
    }
    let n = p.entry_count().min(4096);
    for i in 0..n {
        if let Ok(e) = p.entry_at(i) {
            let _ = p.find(e.path());
            for x in e.extents().take(64) {
                let _ = index.blocks_for_range(x.logical_offset..x.logical_offset + x.length);
            }
        }
    }
    for e in p.entries().take(4096) {
        if e.is_err() {
            break;
        }
    }
    let _ = p.find("");
    let _ = p.find("a/b");
}

/// Decode one block from arbitrary record fields and stored bytes through
/// the public [`Block`]/[`Decoder`] API. Layout of `data`: codec selector,
/// `raw_len` (u32, reduced to at most 64 KiB as the index guarantees),
/// CRC mode, CRC, then the stored bytes. Must never panic, never return
/// data of the wrong length, and never allocate more than `raw_len` for
/// the output.
pub fn block(data: &[u8]) {
    if data.len() < 10 {
        return;
    }
    let codec = if data[0] & 1 == 0 {
        Codec::Stored
    } else {
        Codec::Zlib
    };
    let raw_len = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) % (65536 + 1);
    let stored = &data[10..];
    let crc = if data[5] & 1 == 0 {
        crc32fast::hash(stored)
    } else {
        u32::from_le_bytes([data[6], data[7], data[8], data[9]])
    };
    let info = BlockInfo {
        id: BlockId(u32::from(data[5] >> 1)),
        stored_offset: 4096,
        stored_len: stored.len() as u32,
        raw_len,
        crc,
        codec,
        feature_block: FeatureBlock::Fb2,
        logical_offset: 0,
    };
    let Ok(block) = Block::new(info, stored) else {
        panic!("Block::new rejected matching lengths");
    };
    let crc_ok = crc32fast::hash(stored) == crc;
    let decoded = block.decode();
    if !crc_ok {
        assert!(decoded.is_err(), "bad CRC accepted");
    }
    let mut out = Vec::new();
    let mut dec = Decoder::new();
    let r = dec.decode_into(&block, &mut out);
    assert_eq!(
        r.is_ok(),
        decoded.is_ok(),
        "decode and decode_into disagree"
    );
    match codec {
        Codec::Stored => {
            if let Ok(d) = &decoded {
                assert_eq!(&d[..], stored);
                assert_eq!(out, stored);
            }
        }
        _ => {
            assert!(
                // Vec's smallest allocation is 8 bytes.
                out.capacity() <= (raw_len as usize).max(8),
                "output buffer grew to {} for raw_len {raw_len}",
                out.capacity()
            );
            if let Ok(d) = &decoded {
                assert_eq!(d.len(), raw_len as usize);
                assert_eq!(&d[..], &out[..]);
                #[cfg(feature = "deflate")]
                {
                    // The stream really inflates to these bytes.
                    use std::io::Read;
                    let mut check = Vec::new();
                    let mut z = flate2::read::ZlibDecoder::new(stored);
                    let n = (&mut z)
                        .take(u64::from(raw_len) + 1)
                        .read_to_end(&mut check);
                    assert!(n.is_ok());
                    assert_eq!(check, &d[..]);
                }
            }
        }
    }
    // A reused decoder gives the same answer on a second block.
    let r2 = dec.decode_into(&block, &mut out);
    assert_eq!(r2.is_ok(), decoded.is_ok());
}

/// Parse a launch list from arbitrary text. Accepted items must have valid
/// paths and survive a write-out and re-parse unchanged.
#[cfg(feature = "write")]
pub fn launch_list(data: &[u8]) {
    use crate::write::parse_launch_list;
    let text = String::from_utf8_lossy(data);
    let Ok(items) = parse_launch_list(&text) else {
        return;
    };
    let mut again = String::new();
    for it in &items {
        assert!(crate::format::is_valid_path(&it.path), "{:?}", it.path);
        // Slashes around the path keep leading `#` and spaces intact.
        match it.range {
            None => again.push_str(&format!("/{}/\n", it.path)),
            Some((o, l)) => again.push_str(&format!("/{}/:{o}:{l}\n", it.path)),
        }
    }
    let reparsed = parse_launch_list(&again).expect("re-parse of a written launch list");
    assert_eq!(reparsed, items);
}

#[cfg(feature = "write")]
pub use model::{Model, check_model, model_from_bytes, round_trip};

#[cfg(feature = "write")]
mod model {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::{Read, Seek, SeekFrom};

    use crate::format::FeatureBlock;
    use crate::read::Package;
    use crate::write::{BlockSize, Compression, LaunchItem, PackageBuilder};
    use crate::{BlockId, WriteOptions};

    /// A package to write: the input of a round trip.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Model {
        /// Files in insertion order: path and contents.
        pub files: Vec<(String, Vec<u8>)>,
        /// Explicit (possibly empty) directories.
        pub dirs: Vec<String>,
        /// Block size.
        pub block_size: BlockSize,
        /// Compression.
        pub compression: Compression,
        /// Full load (everything in FB1).
        pub full_load: bool,
        /// Launch list.
        pub launch: Vec<LaunchItem>,
        /// Package name.
        pub name: String,
        /// Package version.
        pub version: u32,
    }

    /// A tiny deterministic byte source: reads past the end give zeros.
    struct Src<'a>(&'a [u8], usize);

    impl Src<'_> {
        fn u8(&mut self) -> u8 {
            let b = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
            b
        }
        fn u16(&mut self) -> u16 {
            u16::from_le_bytes([self.u8(), self.u8()])
        }
    }

    const NAMES: [&str; 10] = [
        "a",
        "b",
        "dir",
        "ü",
        "ñame.txt",
        "日本",
        "x.dll",
        "sp ace",
        "Z",
        "ab",
    ];

    /// Fill `size` bytes in one of a few patterns (zeros, a constant, pseudo
    /// random, repeating text) from `seed`.
    pub(crate) fn content(pattern: u8, seed: u8, size: usize) -> Vec<u8> {
        match pattern % 4 {
            0 => vec![0; size],
            1 => vec![seed; size],
            2 => {
                let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
                (0..size)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        (x >> 24) as u8
                    })
                    .collect()
            }
            _ => b"The quick brown fox jumps over the lazy dog. "
                .iter()
                .cycle()
                .skip(usize::from(seed))
                .take(size)
                .copied()
                .collect(),
        }
    }

    /// Interpret bytes deterministically as a package model. Every input
    /// gives some model; total file data stays under 1 MiB.
    pub fn model_from_bytes(data: &[u8]) -> Model {
        let mut s = Src(data, 0);
        let flags = s.u8();
        let block_size = [
            BlockSize::K4,
            BlockSize::K16,
            BlockSize::K32,
            BlockSize::K64,
        ][usize::from(flags & 3)];
        let level = u32::from((flags >> 2) & 15);
        let compression = if level <= 9 {
            Compression::Zlib(level)
        } else {
            Compression::None
        };
        let full_load = flags & 0x40 != 0;
        let path = |s: &mut Src<'_>| {
            let depth = 1 + usize::from(s.u8() % 3);
            (0..depth)
                .map(|_| NAMES[usize::from(s.u8()) % NAMES.len()])
                .collect::<Vec<_>>()
                .join("/")
        };
        let mut files = Vec::new();
        let mut budget = 1usize << 20;
        for _ in 0..s.u8() % 9 {
            let p = path(&mut s);
            let size = match s.u8() % 4 {
                0 => 0,
                1 => usize::from(s.u8()),
                2 => usize::from(s.u16()),
                _ => usize::from(s.u16()) * 4 + usize::from(s.u8()),
            }
            .min(budget);
            budget -= size;
            let pattern = s.u8();
            let seed = s.u8();
            files.push((p, content(pattern, seed, size)));
        }
        let dirs = (0..s.u8() % 3).map(|_| path(&mut s)).collect();
        let mut launch = Vec::new();
        if !files.is_empty() {
            for _ in 0..s.u8() % 6 {
                let (p, c) = &files[usize::from(s.u8()) % files.len()];
                let size = c.len() as u64;
                let range = if s.u8() & 1 == 0 {
                    None
                } else {
                    let off = u64::from(s.u16()) % (size + 1);
                    let len = u64::from(s.u16()) % (size - off + 1);
                    Some((off, len))
                };
                launch.push(LaunchItem {
                    path: p.clone(),
                    range,
                });
            }
        }
        Model {
            files,
            dirs,
            block_size,
            compression,
            full_load,
            launch,
            name: "fuzz".into(),
            version: 1,
        }
    }

    /// Fuzz entry: bytes → model → write → read back, asserting equality.
    pub fn round_trip(data: &[u8]) {
        let m = model_from_bytes(data);
        let seed = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        check_model(&m, seed);
    }

    /// Files and directories the builder accepted, in model order.
    struct Accepted {
        files: BTreeMap<String, Vec<u8>>,
        dirs: BTreeSet<String>,
        launch: Vec<LaunchItem>,
    }

    fn builder(m: &Model) -> (PackageBuilder, Accepted) {
        let opts = WriteOptions::default()
            .name(m.name.clone())
            .version(m.version)
            .block_size(m.block_size)
            .compression(m.compression)
            .full_load(m.full_load)
            .created(1_600_000_000, 5)
            .threads(2);
        let mut b = PackageBuilder::new(opts);
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let parents = |p: &str, dirs: &mut BTreeSet<String>| {
            let mut at = 0;
            while let Some(i) = p[at..].find('/') {
                dirs.insert(p[..at + i].to_owned());
                at += i + 1;
            }
        };
        for (p, c) in &m.files {
            if b.add_bytes(p, c.clone()).is_ok() {
                parents(p, &mut dirs);
                files.insert(p.clone(), c.clone());
            }
        }
        for d in &m.dirs {
            if b.add_dir(d, (7, 0)).is_ok() {
                parents(d, &mut dirs);
                dirs.insert(d.clone());
            }
        }
        let launch: Vec<LaunchItem> = m
            .launch
            .iter()
            .filter(|it| {
                // Duplicate paths in the model: ranges drawn over a
                // rejected duplicate may not fit the accepted file.
                files.get(&it.path).is_some_and(|c: &Vec<u8>| {
                    it.range.is_none_or(|(o, l)| o + l <= c.len() as u64)
                })
            })
            .cloned()
            .collect();
        b.launch_list(launch.clone());
        (
            b,
            Accepted {
                files,
                dirs,
                launch,
            },
        )
    }

    /// Next value of a xorshift generator.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// Write `m`, read it back through every API and check it against the
    /// model: contents (read_file, chunks, read_at and a `Read + Seek`
    /// reader at offsets drawn from `seed`), the tree, metadata, the FB1
    /// layout implied by the launch list, determinism and `verify`.
    /// Panics on any mismatch.
    pub fn check_model(m: &Model, seed: u64) {
        let (b, acc) = builder(m);
        let bytes = b.write_to_vec().expect("write_to_vec");
        let again = builder(m).0.write_to_vec().expect("second write");
        assert!(bytes == again, "same input gave different bytes");

        let pkg = Package::parse(&bytes).expect("parse");
        let report = pkg.verify().expect("verify");
        let mut rng = seed | 1;

        // Tree.
        let mut want: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
        for d in &acc.dirs {
            want.insert(d, None);
        }
        for (p, c) in &acc.files {
            want.insert(p, Some(c));
        }
        let mut got = Vec::new();
        for e in pkg.entries() {
            got.push(e.expect("entry"));
        }
        assert_eq!(report.entries, got.len() as u64);
        let got_paths: Vec<&str> = got.iter().map(|e| e.path()).collect();
        let want_paths: Vec<&str> = want.keys().copied().collect();
        assert_eq!(got_paths, want_paths);

        let bs = u64::from(m.block_size.bytes());
        let meta = pkg.metadata();
        let total: u64 = acc.files.values().map(|c| c.len() as u64).sum();
        assert_eq!(meta.package_size(), total);
        assert_eq!(report.logical_bytes, total);
        assert_eq!(meta.name(), m.name);
        assert_eq!(meta.version(), m.version);
        assert_eq!(meta.created(), (1_600_000_000, 5));
        assert_eq!(pkg.block_size() as u64, bs);

        // Launch coverage from the model: union of ranges per file.
        let mut cover: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        if m.full_load {
            for (p, c) in &acc.files {
                cover.insert(p, vec![(0, c.len() as u64)]);
            }
        } else {
            for it in &acc.launch {
                let size = acc.files[&it.path].len() as u64;
                let (s, e) = it.range.map_or((0, size), |(o, l)| (o, o + l));
                if s < e {
                    cover.entry(&it.path).or_default().push((s, e));
                }
            }
        }
        let covered = |p: &str, x: u64| {
            cover
                .get(p)
                .is_some_and(|rs| rs.iter().any(|&(s, e)| s <= x && x < e))
        };
        let mut launch_size = 0u64;
        for (p, c) in &acc.files {
            launch_size += (0..c.len() as u64).filter(|&x| covered(p, x)).count() as u64;
        }
        assert_eq!(meta.launch_size(), launch_size, "launch_size");
        let index = pkg.index();
        assert_eq!(u64::from(index.fb1_len()), launch_size.div_ceil(bs));
        assert_eq!(
            u64::from(index.len()),
            launch_size.div_ceil(bs) + (total - launch_size).div_ceil(bs)
        );
        for id in index.ids() {
            let info = index.get(id).expect("block record");
            let fb = if id.0 < index.fb1_len() {
                FeatureBlock::Fb1
            } else {
                FeatureBlock::Fb2
            };
            assert_eq!(info.feature_block, fb);
            assert!(u64::from(info.raw_len) <= bs && info.raw_len > 0);
            if m.compression == Compression::None {
                assert_eq!(info.codec, crate::Codec::Stored);
            }
        }
        if launch_size > 0 {
            let last = index.get(BlockId(index.fb1_len() - 1)).expect("fb1 block");
            assert_eq!(last.logical_range().end, launch_size);
        }

        for e in &got {
            let Some(Some(c)) = want.get(e.path()) else {
                assert!(e.is_dir(), "{} should be a directory", e.path());
                assert_eq!(e.size(), 0);
                continue;
            };
            assert!(e.is_file());
            assert_eq!(e.size(), c.len() as u64);
            // Extents: launch bytes map below launch_size, others above.
            // Sample every byte of small files and a stride of big ones.
            let step = (c.len() / 2048).max(1);
            for x in e.extents() {
                let mut f = x.file_offset;
                while f < x.file_offset + x.length {
                    let logical = x.logical_offset + (f - x.file_offset);
                    assert_eq!(
                        logical < launch_size,
                        covered(e.path(), f),
                        "{} byte {f} at logical {logical}, launch_size {launch_size}",
                        e.path()
                    );
                    f += step as u64;
                }
            }
            assert_eq!(&pkg.read_file(e).expect("read_file")[..], &c[..]);
            let mut joined = Vec::new();
            for ch in pkg.chunks(e) {
                joined.extend_from_slice(&ch.expect("chunk"));
            }
            assert!(joined == *c, "chunks differ for {}", e.path());
            let size = c.len() as u64;
            for _ in 0..4 {
                let off = next(&mut rng) % (size + 2);
                let len = (next(&mut rng) % (2 * bs + 3)) as usize;
                let mut buf = vec![0xA5; len];
                let n = pkg.read_at(e, off, &mut buf).expect("read_at");
                let lo = off.min(size) as usize;
                let hi = (off + len as u64).min(size) as usize;
                assert_eq!(n, hi - lo);
                assert_eq!(&buf[..n], &c[lo..hi]);
            }
            let mut r = pkg.reader(*e).expect("reader");
            let mut all = Vec::new();
            r.read_to_end(&mut all).expect("read_to_end");
            assert!(all == *c);
            for _ in 0..6 {
                let pos = match next(&mut rng) % 3 {
                    0 => r.seek(SeekFrom::Start(next(&mut rng) % (size + 2))),
                    1 => r.seek(SeekFrom::End(-((next(&mut rng) % (size + 1)) as i64))),
                    _ => r.seek(SeekFrom::Current((next(&mut rng) % 1000) as i64)),
                }
                .expect("seek");
                let len = (next(&mut rng) % (bs + 100)) as usize;
                let mut buf = vec![0; len];
                let mut n = 0;
                while n < len {
                    match r.read(&mut buf[n..]).expect("read") {
                        0 => break,
                        k => n += k,
                    }
                }
                let lo = pos.min(size) as usize;
                let hi = (pos + len as u64).min(size) as usize;
                assert_eq!(&buf[..n], &c[lo..hi]);
                assert_eq!(r.stream_position().expect("position"), pos + n as u64);
            }
        }
    }
}
