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

mod app;
mod proto;
#[cfg(feature = "bundle")]
pub use app::bundle;
#[cfg(feature = "client")]
pub use app::client_records;
#[cfg(feature = "msi")]
pub use app::msi;
#[cfg(feature = "publish")]
pub use app::{osd, refresh};
#[cfg(feature = "http")]
pub use proto::http_head;
#[cfg(any(feature = "rtsp", feature = "rtsp-server"))]
pub use proto::rtsp_frame;
#[cfg(feature = "http-parse")]
pub use proto::{http_multipart, http_range};

use crate::format::{BlockId, Codec, FeatureBlock};
use crate::index::BlockInfo;
use crate::read::{Block, Decoder, Package, Prologue};

/// Most bytes any valid package of `len` bytes can decode to: a zlib
/// stream inflates at most 1032:1 (RFC 1951's longest match, 258 bytes,
/// from under 2 bits), and every block also costs a 32-byte record.
/// A package of zeros at 64 KiB blocks reaches about 500:1.
pub fn amplification_bound(len: usize) -> u64 {
    1032 * len as u64
}

/// Parse arbitrary bytes and exercise every read path: walk entries, look
/// each up by path, read every file (whole, by chunks, at offsets), read
/// every block, extract in memory, and verify. Must never panic.
///
/// Oracles:
/// - a single-file read that succeeds passed the storage check
///   ([`Package::check_storage`]: no aliased or overlapping block
///   records), returned exactly the file's size, and no more than
///   [`amplification_bound`] of the input;
/// - extraction ([`extract_in_memory`]: what [`crate::extract::extract`]
///   checks, then every file read) succeeds exactly when
///   [`Package::verify`] does, and writes no more than
///   [`amplification_bound`] of the input;
/// - [`Package::count_entries`] agrees with walking the entries;
/// - if [`Package::verify`] passes, every file must read without error,
///   and whole-file reads, chunks and `read_at` must agree.
pub fn parse_and_walk(data: &[u8]) {
    let Ok(pkg) = Package::parse(data) else {
        return;
    };
    let bound = amplification_bound(data.len());
    let _ = pkg.metadata();
    let index = pkg.index();
    for id in index.ids().take(4096) {
        let _ = pkg.read_block(id);
    }
    let (mut files, mut dirs, mut walked) = (0u64, 0u64, true);
    for e in pkg.entries().take(4096) {
        let Ok(e) = e else {
            walked = false;
            break;
        };
        let _ = pkg.find(e.path());
        if e.is_file() {
            files += 1;
            if let Ok(bytes) = pkg.read_file(&e) {
                assert!(
                    pkg.check_storage().is_ok(),
                    "a file read from block records that fail the storage check"
                );
                assert_eq!(bytes.len() as u64, e.size(), "read_file length");
                assert!(
                    bytes.len() as u64 <= bound,
                    "a {}-byte package read a {}-byte file",
                    data.len(),
                    bytes.len()
                );
            }
            let mut buf = [0u8; 97];
            let _ = pkg.read_at(&e, e.size() / 2, &mut buf);
            for c in pkg.chunks(&e).take(64) {
                let _ = c;
            }
        } else {
            dirs += 1;
        }
    }
    if walked
        && pkg.entry_count() <= 4096
        && let Ok(c) = pkg.prologue().count_entries()
    {
        assert_eq!((c.files, c.directories), (files, dirs), "count_entries");
    }
    let _ = pkg.find("a/b");
    let extracted = extract_in_memory(&pkg);
    let verified = pkg.verify();
    match (&extracted, &verified) {
        (Ok(n), Ok(_)) => assert!(
            *n <= bound,
            "a {}-byte package extracts to {n} bytes",
            data.len()
        ),
        (Ok(_), Err(e)) => panic!("extraction succeeds on a package verify rejects: {e}"),
        (Err(e), Ok(_)) => panic!("extraction fails on a verified package: {e}"),
        (Err(_), Err(_)) => {}
    }
    if verified.is_err() {
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

/// What [`crate::extract::extract`] does, in memory and without a file
/// system: [`Package::verify_structure`], then every file read through
/// one [`crate::read::Chunks`] (each block checked as it is used).
/// Returns the bytes that extraction would write.
///
/// # Errors
/// As [`Package::verify_structure`] and the reads.
pub fn extract_in_memory(pkg: &Package<'_>) -> crate::Result<u64> {
    pkg.verify_structure()?;
    let mut total = 0u64;
    let mut chunks: Option<crate::read::Chunks<'_>> = None;
    for e in pkg.entries() {
        let e = e?;
        if !e.is_file() {
            continue;
        }
        let c = match &mut chunks {
            Some(c) => {
                c.restart(&e);
                c
            }
            None => chunks.insert(pkg.chunks(&e)),
        };
        let mut n = 0u64;
        for piece in c.by_ref() {
            n += piece?.len() as u64;
        }
        if n != e.size() {
            return Err(crate::Error::invalid(format!(
                "`{}`: read {n} of {} bytes",
                e.path(),
                e.size()
            )));
        }
        total += n;
    }
    Ok(total)
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
    let codec = match data[0] % 3 {
        0 => Codec::Stored,
        1 => Codec::Zlib,
        _ => Codec::Zstd,
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
        hash: (data[0] & 0x80 != 0).then(|| *blake3::hash(stored).as_bytes()),
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
                #[cfg(feature = "zstd")]
                if codec == Codec::Zstd {
                    // The frame really decodes to these bytes.
                    let check = zstd::bulk::decompress(stored, raw_len as usize + 1);
                    assert_eq!(check.ok().as_deref(), Some(&d[..]));
                }
                #[cfg(feature = "deflate")]
                if codec == Codec::Zlib {
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

/// Fuzz target `dsft`: a differential package's header. Must never
/// panic; a header that parses encodes back to the same 128 bytes.
#[cfg(feature = "file")]
pub fn dsft(data: &[u8]) {
    use crate::fetch::delta::{DSFT_HEADER_LEN, DsftHeader};
    if let Ok(h) = DsftHeader::parse(data) {
        assert_eq!(h.encode()[..], data[..DSFT_HEADER_LEN]);
        assert!(h.prologue_len <= h.package_len);
        assert!(h.carried_blocks <= h.block_count);
    }
}

/// Fuzz target `sign_text`: key and signature files (minisign's text
/// formats, read by `sft::sign`). Must never panic.
#[cfg(feature = "sign")]
pub fn sign_text(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(sig) = crate::sign::Signature::from_text(text) {
        assert!(sig.as_text().len() as u64 <= crate::sign::MAX_KEY_FILE_LEN);
        let _ = sig.trusted_comment();
        let _ = sig.key_id();
    }
    if let Ok(k) = crate::sign::TrustedKey::from_text(text) {
        assert_eq!(k.id().len(), 16);
    }
    let _ = crate::sign::SigningKey::from_text(text, None);
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

/// A tiny deterministic byte cursor for the stream targets: reads past the
/// end give zeros, so every input decodes to something and an exhausted
/// input drives a run to its end by the default choices.
struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Cursor { data, at: 0 }
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.u8()) % from.len()]
    }
    fn exhausted(&self) -> bool {
        self.at >= self.data.len()
    }
}

pub use sched_ops::scheduler_ops;

mod sched_ops {
    use super::Cursor;
    use crate::format::FeatureBlock;
    use crate::stream::{Batch, BlockState, Priority, Scheduler, SchedulerLimits};

    /// The naive model of one block the real scheduler is checked against.
    #[derive(Debug, Clone, Copy)]
    struct Shadow {
        offset: u64,
        len: u32,
        fb: FeatureBlock,
        state: BlockState,
        class: Option<Priority>,
        failures: u32,
    }

    /// A request handed out by `poll` and not yet closed: which of its
    /// blocks the (simulated) session has finished with, as the session's
    /// `finished` flags.
    struct Outstanding {
        batch: Batch,
        done: Vec<bool>,
    }

    fn queue_of(p: Priority) -> usize {
        match p {
            Priority::Prologue | Priority::Demand => 0,
            Priority::Fb1 => 1,
            Priority::Fb2 => 2,
        }
    }

    fn class_of(fb: FeatureBlock) -> Priority {
        match fb {
            FeatureBlock::Fb1 => Priority::Fb1,
            FeatureBlock::Fb2 => Priority::Fb2,
        }
    }

    struct Harness {
        s: Scheduler,
        model: Vec<Shadow>,
        limits: SchedulerLimits,
        max_attempts: u32,
        out: Vec<Outstanding>,
        /// Blocks taken with `begin` (bytes at hand, no request).
        begun: Vec<u32>,
    }

    impl Harness {
        fn enqueue(&mut self, id: u32, class: Priority) -> bool {
            let Some(m) = self.model.get_mut(id as usize) else {
                return false;
            };
            m.class = Some(m.class.map_or(class, |c| c.min(class)));
            match m.state {
                BlockState::Absent | BlockState::Queued => {
                    m.state = BlockState::Queued;
                    true
                }
                _ => false,
            }
        }

        fn requeue(&mut self, id: u32) {
            let m = &mut self.model[id as usize];
            if matches!(m.state, BlockState::InFlight | BlockState::Failed) {
                m.state = BlockState::Absent;
                let class = m.class.unwrap_or(class_of(m.fb));
                self.enqueue(id, class);
            }
        }

        fn fail(&mut self, id: u32) -> u32 {
            let m = &mut self.model[id as usize];
            m.failures += 1;
            let n = m.failures;
            if n >= self.max_attempts.max(1) {
                m.state = BlockState::Failed;
            } else {
                self.requeue(id);
            }
            n
        }

        fn mark_present(&mut self, id: u32) {
            if let Some(m) = self.model.get_mut(id as usize) {
                m.state = BlockState::Present;
            }
        }

        /// The batch a naive scheduler serves: sort everything queued by
        /// (queue, offset, id), take the first, extend it with the next
        /// ids while they are queued in the same queue, stored right
        /// after, and fit the class's request size.
        fn oracle_poll(&self) -> Option<Batch> {
            let req = self.out.len() as u32;
            let bytes: u64 = self
                .out
                .iter()
                .map(|o| o.batch.range.end - o.batch.range.start)
                .sum();
            if req >= self.limits.max_in_flight_requests.max(1)
                || (req > 0 && bytes >= self.limits.max_in_flight_bytes)
            {
                return None;
            }
            let (q, _, first) = self
                .model
                .iter()
                .enumerate()
                .filter(|(_, m)| m.state == BlockState::Queued)
                .map(|(id, m)| (queue_of(m.class.expect("queued has a class")), m.offset, id))
                .min()?;
            let priority = [Priority::Demand, Priority::Fb1, Priority::Fb2][q];
            let cap = if priority == Priority::Fb1 {
                self.limits.fb1_request_bytes
            } else {
                self.limits.max_request_bytes
            };
            let start = self.model[first].offset;
            let mut end = start + u64::from(self.model[first].len);
            let mut last = first + 1;
            while let Some(m) = self.model.get(last) {
                let same = m.state == BlockState::Queued
                    && m.class.map(queue_of) == Some(q)
                    && m.offset == end;
                if !same || (end - start) + u64::from(m.len) > cap {
                    break;
                }
                end += u64::from(m.len);
                last += 1;
            }
            Some(Batch {
                blocks: first as u32..last as u32,
                range: start..end,
                priority,
            })
        }

        fn poll(&mut self) {
            let before: Vec<BlockState> = self.model.iter().map(|m| m.state).collect();
            let want = self.oracle_poll();
            let got = self.s.poll();
            assert_eq!(got, want, "poll disagrees with the naive oracle");
            let Some(b) = got else { return };
            // Independent checks of the batch itself.
            assert!(b.blocks.start < b.blocks.end, "empty batch");
            let mut at = b.range.start;
            let mut total = 0u64;
            for id in b.blocks.clone() {
                let m = self.model[id as usize];
                assert_eq!(
                    before[id as usize],
                    BlockState::Queued,
                    "block {id} polled while not queued"
                );
                assert_eq!(m.offset, at, "batch not contiguous at block {id}");
                assert_eq!(
                    m.class.map(queue_of),
                    Some(queue_of(b.priority)),
                    "mixed classes"
                );
                assert_eq!(self.s.state(id), Some(BlockState::InFlight));
                at += u64::from(m.len);
                total += u64::from(m.len);
                self.model[id as usize].state = BlockState::InFlight;
            }
            assert_eq!(at, b.range.end);
            let cap = if b.priority == Priority::Fb1 {
                self.limits.fb1_request_bytes
            } else {
                self.limits.max_request_bytes
            };
            assert!(
                total <= cap || b.blocks.len() == 1,
                "batch over its size cap"
            );
            let n = b.blocks.len();
            self.out.push(Outstanding {
                batch: b,
                done: vec![false; n],
            });
        }

        /// Finish block `j` of outstanding request `k` the way the session
        /// does: verified (0), failed its check (1), refused by the sink (2).
        fn finish(&mut self, k: usize, j: usize, how: u8) {
            let Some(o) = self.out.get_mut(k) else { return };
            let Some(done) = o.done.get_mut(j) else {
                return;
            };
            if *done {
                return;
            }
            *done = true;
            let id = o.batch.blocks.start + j as u32;
            self.finish_block(id, how);
        }

        fn finish_block(&mut self, id: u32, how: u8) {
            assert_eq!(self.s.state(id), Some(BlockState::InFlight));
            match how % 3 {
                0 => {
                    self.s.block_present(id);
                    self.mark_present(id);
                }
                1 => {
                    let n = self.s.block_failed(id, self.max_attempts);
                    assert_eq!(n, self.fail(id));
                }
                _ => {
                    self.s.requeue(id);
                    self.requeue(id);
                }
            }
        }

        /// Close request `k`: `how` 0 only once every block is finished
        /// (the session's `left == 0`), 1 as `cancel`, 2 as a retryable
        /// `on_failure`.
        fn close(&mut self, k: usize, how: u8) {
            if k >= self.out.len() {
                return;
            }
            if how.is_multiple_of(3) && self.out[k].done.iter().any(|d| !d) {
                return;
            }
            let o = self.out.remove(k);
            self.s.request_done(o.batch.range.end - o.batch.range.start);
            for (j, done) in o.done.iter().enumerate() {
                if !done {
                    let id = o.batch.blocks.start + j as u32;
                    self.finish_block(id, if how % 3 == 1 { 2 } else { 1 });
                }
            }
        }

        fn states(&self) -> (Vec<Option<BlockState>>, bool, u32, u64, u32) {
            let s = &self.s;
            (
                (0..s.len()).map(|id| s.state(id)).collect(),
                s.has_queued(),
                s.in_flight_requests(),
                s.in_flight_bytes(),
                s.present_blocks(),
            )
        }

        fn check(&self) {
            let s = &self.s;
            let req = self.out.len() as u32;
            let bytes: u64 = self
                .out
                .iter()
                .map(|o| o.batch.range.end - o.batch.range.start)
                .sum();
            assert_eq!(s.in_flight_requests(), req, "in-flight request count");
            assert_eq!(s.in_flight_bytes(), bytes, "in-flight bytes");
            assert!(req <= self.limits.max_in_flight_requests.max(1));
            // Bytes may pass the limit by one request at most: each request
            // started while the ones before it were under the limit.
            let largest = self
                .out
                .iter()
                .map(|o| o.batch.range.end - o.batch.range.start)
                .max()
                .unwrap_or(0);
            assert!(
                req <= 1 || bytes - largest < self.limits.max_in_flight_bytes,
                "in-flight bytes {bytes} over the limit by more than one request"
            );
            let mut present = 0u32;
            let mut present_bytes = 0u64;
            let mut queued = false;
            let mut unfinished = vec![0u32; self.model.len()];
            for o in &self.out {
                for (j, d) in o.done.iter().enumerate() {
                    if !d {
                        unfinished[o.batch.blocks.start as usize + j] += 1;
                    }
                }
            }
            for &id in &self.begun {
                unfinished[id as usize] += 1;
            }
            for (id, m) in self.model.iter().enumerate() {
                let st = s.state(id as u32);
                assert_eq!(st, Some(m.state), "block {id} state");
                assert_eq!(s.failures(id as u32), m.failures, "block {id} failures");
                // Every in-flight block belongs to exactly one unfinished
                // request (or `begin`), and only in-flight blocks do.
                let expect = u32::from(m.state == BlockState::InFlight);
                assert_eq!(
                    unfinished[id], expect,
                    "block {id} in flight {expect} but held {} times",
                    unfinished[id]
                );
                if m.state == BlockState::Present {
                    present += 1;
                    present_bytes += u64::from(m.len);
                }
                queued |= m.state == BlockState::Queued;
            }
            assert_eq!(s.present_blocks(), present);
            assert_eq!(s.present_bytes(), present_bytes);
            assert_eq!(s.has_queued(), queued);
        }
    }

    /// Decode a block layout, limits and a sequence of operations from
    /// `data` and apply them to a [`Scheduler`] and a naive model of it,
    /// checking after every operation that they agree and that the
    /// scheduler's invariants hold. Panics on a broken invariant.
    pub fn scheduler_ops(data: &[u8]) {
        let mut c = Cursor::new(data);
        let n = usize::from(c.u16()) % 513;
        let fb1 = usize::from(c.u16()) % (n + 1);
        let limits = SchedulerLimits {
            max_request_bytes: c.pick(&[1 << 20, 0, 1, 100, 4096, 65536, 200_000, u64::MAX]),
            fb1_request_bytes: c.pick(&[u64::MAX, 0, 1, 100, 4096, 65536, 200_000, 1 << 20]),
            max_in_flight_requests: u32::from(c.u8() % 6),
            max_in_flight_bytes: c.pick(&[8 << 20, 0, 1, 1000, 65536, 300_000, u64::MAX]),
        };
        let max_attempts = u32::from(c.u8() % 5);
        let mut offset = u64::from(c.u16());
        let uniform = c.u8();
        let mut model = Vec::with_capacity(n);
        for id in 0..n {
            let b = if uniform & 1 == 1 {
                uniform >> 1
            } else {
                c.u8()
            };
            let len = [1u32, 10, 100, 1000, 4096, 16384, 65536, 0][usize::from(b & 7)]
                + u32::from((b >> 3) & 7) * 37;
            offset += u64::from(b >> 7) * 3; // an occasional gap
            let fb = if id < fb1 {
                FeatureBlock::Fb1
            } else {
                FeatureBlock::Fb2
            };
            model.push(Shadow {
                offset,
                len,
                fb,
                state: BlockState::Absent,
                class: None,
                failures: 0,
            });
            offset += u64::from(len);
        }
        let s = Scheduler::new(model.iter().map(|m| (m.offset, m.len, m.fb)), limits);
        assert_eq!(s.len() as usize, n);
        let mut h = Harness {
            s,
            model,
            limits,
            max_attempts,
            out: Vec::new(),
            begun: Vec::new(),
        };
        h.check();
        let id_of = |c: &mut Cursor<'_>| u32::from(c.u16()) % (n as u32 + 2);
        let mut ops = 0;
        while !c.exhausted() && ops < 4096 {
            ops += 1;
            match c.u8() % 14 {
                0 => {
                    let fb2 = c.u8() & 1 == 1;
                    h.s.queue_all(fb2);
                    for id in 0..n as u32 {
                        let fb = h.model[id as usize].fb;
                        if fb == FeatureBlock::Fb1 || fb2 {
                            h.enqueue(id, class_of(fb));
                        }
                    }
                }
                1 => {
                    let id = id_of(&mut c);
                    let was = h.s.state(id);
                    let before = h.states();
                    let r = h.s.demand(id);
                    assert_eq!(r, h.enqueue(id, Priority::Demand), "demand({id}) result");
                    if matches!(was, None | Some(BlockState::Present)) {
                        // Nothing observable changes.
                        assert!(!r, "demand({id}) of a {was:?} block queued it");
                        assert!(
                            before == h.states(),
                            "demand({id}) of a {was:?} block changed states"
                        );
                    }
                }
                2 | 3 => h.poll(),
                4..=6 => {
                    let k = usize::from(c.u8());
                    let j = usize::from(c.u16());
                    let how = c.u8();
                    let len = h.out.len();
                    if len > 0 {
                        let k = k % len;
                        let j = j % h.out[k].done.len();
                        h.finish(k, j, how);
                    }
                }
                7 | 8 => {
                    let k = usize::from(c.u8());
                    let how = c.u8();
                    if !h.out.is_empty() {
                        h.close(k % h.out.len(), how);
                    }
                }
                9 => {
                    // As the session: a cache hit never touches a block in flight.
                    let id = id_of(&mut c);
                    if h.s.state(id) != Some(BlockState::InFlight) {
                        h.s.mark_present(id);
                        h.mark_present(id);
                    }
                }
                10 => {
                    let id = id_of(&mut c);
                    let was = h.s.state(id);
                    let r = h.s.begin(id);
                    assert_eq!(
                        r,
                        matches!(was, Some(BlockState::Absent | BlockState::Queued))
                    );
                    if r {
                        h.model[id as usize].state = BlockState::InFlight;
                        h.begun.push(id);
                    }
                }
                11 => {
                    let how = c.u8();
                    let k = usize::from(c.u8());
                    if !h.begun.is_empty() {
                        let id = h.begun.swap_remove(k % h.begun.len());
                        h.finish_block(id, how);
                    }
                }
                12 => {
                    let a = id_of(&mut c);
                    let b = id_of(&mut c);
                    for id in a.min(b)..a.max(b).min(a.min(b) + 64) {
                        let r = h.s.demand(id);
                        assert_eq!(r, h.enqueue(id, Priority::Demand));
                    }
                }
                _ => {
                    // Requeue or fail a block the session holds no request
                    // for: the scheduler must ignore it unless in flight.
                    let id = id_of(&mut c);
                    if !matches!(h.s.state(id), Some(BlockState::InFlight) | None) {
                        let before = format!("{:?}", h.s.state(id));
                        h.s.requeue(id);
                        if h.model[id as usize].state == BlockState::Failed {
                            h.requeue(id);
                        } else {
                            assert_eq!(before, format!("{:?}", h.s.state(id)));
                        }
                    }
                }
            }
            h.check();
        }
        // Drain: serve everything that is wanted; the scheduler must hand
        // out every queued block and end with nothing queued.
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 4 * n + 16, "scheduler does not drain");
            h.poll();
            h.check();
            if h.out.is_empty() {
                while let Some(id) = h.begun.pop() {
                    h.finish_block(id, 0);
                    h.check();
                }
                assert!(!h.s.has_queued(), "blocks queued but nothing polled");
                break;
            }
            if h.s.has_queued() && h.oracle_poll().is_some() {
                continue;
            }
            let k = h.out.len() - 1;
            for j in 0..h.out[k].done.len() {
                h.finish(k, j, 0);
            }
            h.close(k, 0);
            h.check();
        }
        for m in &h.model {
            assert!(matches!(
                m.state,
                BlockState::Absent | BlockState::Present | BlockState::Failed
            ));
        }
    }
}

pub use stream_io::session_bytes;
#[cfg(feature = "write")]
pub use stream_io::stream_chunks;

mod stream_io {
    #[cfg(feature = "write")]
    use super::Cursor;
    #[cfg(feature = "write")]
    use crate::BlockId;
    use crate::error::Error;
    use crate::read::Package;
    use crate::stream::{
        BlockSink, Event, SessionConfig, StreamSession, TransportError, TransportErrorKind,
        VerifiedBlock,
    };
    #[cfg(feature = "write")]
    use crate::stream::{BlockState, RequestId};

    /// A sink that checks every block the session accepts against the
    /// original package (its record, stored and decoded bytes) and
    /// rebuilds the image with the `Vec<u8>` sink. Panics on any accepted
    /// corruption or on a block accepted twice.
    #[cfg(feature = "write")]
    struct CheckSink<'a> {
        image: Vec<u8>,
        pkg: Package<'a>,
        orig: &'a [u8],
        accepted: Vec<bool>,
        decode: bool,
    }

    #[cfg(feature = "write")]
    impl BlockSink for CheckSink<'_> {
        fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
            let plen = self.pkg.header().prologue_len as usize;
            assert_eq!(bytes.len(), plen, "prologue length");
            if let Some(at) = (0..plen).find(|&i| bytes[i] != self.orig[i]) {
                let p = crate::read::Prologue::parse(&self.orig[..plen]).expect("original");
                panic!(
                    "corrupted prologue accepted: byte {at} is {:#04x}, not {:#04x} \
                     (prologue_len {plen}, section table at {}; verify of the package with \
                     it: {:?})",
                    bytes[at],
                    self.orig[at],
                    p.header().section_table_offset,
                    {
                        let mut whole = self.orig.to_vec();
                        whole[..plen].copy_from_slice(bytes);
                        crate::read::Package::parse(&whole)
                            .and_then(|p| p.verify().map(|_| ()))
                            .map_err(|e| e.to_string())
                    },
                );
            }
            self.image.prologue(bytes)
        }

        fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
            let id = b.info.id;
            let want = self.pkg.index().get(id).expect("block of the original");
            assert_eq!(b.info, want, "block {} record", id.0);
            let r = want.stored_range();
            assert!(
                b.stored == &self.orig[r.start as usize..r.end as usize],
                "corrupted block {} accepted",
                id.0
            );
            let decoded = self.pkg.read_block(id).expect("original block decodes");
            if self.decode || want.codec == crate::Codec::Stored {
                assert!(b.decoded == &decoded[..], "block {} decoded bytes", id.0);
            } else {
                assert!(b.decoded.is_empty());
            }
            let seen = &mut self.accepted[id.0 as usize];
            assert!(!*seen, "block {} accepted twice", id.0);
            *seen = true;
            self.image.block(b)
        }
    }

    /// Build a small package from the first bytes of `data`.
    #[cfg(feature = "write")]
    fn package(c: &mut Cursor<'_>) -> Vec<u8> {
        use crate::WriteOptions;
        use crate::write::{BlockSize, Compression, LaunchItem, PackageBuilder};
        let flags = c.u8();
        let block_size =
            [BlockSize::K4, BlockSize::K4, BlockSize::K16, BlockSize::K64][usize::from(flags & 3)];
        let compression = if flags & 4 == 0 {
            Compression::Zlib(u32::from(flags >> 4) % 10)
        } else {
            Compression::None
        };
        let opts = WriteOptions::default()
            .name("stream")
            .block_size(block_size)
            .compression(compression)
            .full_load(flags & 8 != 0)
            .created(1_600_000_000, 0)
            .threads(1);
        let mut b = PackageBuilder::new(opts);
        let mut sizes = Vec::new();
        for i in 0..1 + c.u8() % 3 {
            let size = match c.u8() % 4 {
                0 => usize::from(c.u8()),
                1 => usize::from(c.u16()) % 20_000,
                2 => 4096 * usize::from(c.u8() % 6),
                _ => 0,
            };
            let (pattern, seed) = (c.u8(), c.u8());
            let path = format!("d{}/f{i}", i % 2);
            b.add_bytes(&path, super::model::content(pattern, seed, size))
                .expect("distinct valid paths");
            sizes.push((path, size as u64));
        }
        let mut launch = Vec::new();
        for _ in 0..c.u8() % 3 {
            let (path, size) = sizes[usize::from(c.u8()) % sizes.len()].clone();
            let range = if c.u8() & 1 == 0 {
                None
            } else {
                let off = u64::from(c.u16()) % (size + 1);
                Some((off, u64::from(c.u16()) % (size - off + 1)))
            };
            launch.push(LaunchItem { path, range });
        }
        b.launch_list(launch);
        b.write_to_vec().expect("write a small package")
    }

    /// Build a small package from the first bytes of `data`, then stream
    /// it through a [`StreamSession`] driven by the rest: each request's
    /// range is cut into chunks of input-chosen sizes, delivered in an
    /// input-chosen order (sometimes twice, sometimes with a byte
    /// flipped), with retryable transport failures, cancels and demands
    /// mixed in. The run must end, within a bounded number of steps,
    /// either complete with a byte-identical image or failed — and failed
    /// only if something was damaged or failed. Panics otherwise.
    #[cfg(feature = "write")]
    pub fn stream_chunks(data: &[u8]) {
        let mut c = Cursor::new(data);
        let orig = package(&mut c);
        let pkg = Package::parse(&orig).expect("parse the written package");
        let blocks = pkg.index().len();
        let logical = pkg.index().logical_len();
        let decode = c.u8() & 1 == 0;
        let launch_only = c.u8() % 4 == 1;
        let initial_read = c.pick(&[65536, 0, 128, 300, 4096, 20_000]);
        let cfg = SessionConfig::default()
            .initial_read(initial_read)
            .max_request_bytes(c.pick(&[1 << 20, 1, 4096, 10_000, 40_000]))
            .fb1_request_bytes(c.pick(&[u64::MAX, 1, 4096, 10_000]))
            .max_in_flight_requests(u32::from(c.u8() % 5))
            .max_in_flight_bytes(c.pick(&[8 << 20, 0, 1, 5000, 30_000]))
            .max_attempts(u32::from(c.u8() % 8))
            .launch_only(launch_only)
            .decode_blocks(decode);
        let mut s = StreamSession::new(cfg);
        // Without the length the first read is `initial_read` bytes, which
        // a package shorter than that cannot serve (a driver learns the
        // length from the short read; the session documents that only a
        // length given before the first request clamps it).
        if c.u8() & 1 == 0 || (orig.len() as u64) < initial_read.max(128) {
            s.on_source_len(orig.len() as u64);
        }
        let mut sink = CheckSink {
            image: Vec::new(),
            pkg,
            orig: &orig,
            accepted: vec![false; blocks as usize],
            decode,
        };
        // Chunks not yet delivered: (request, start, end).
        let mut pending: Vec<(RequestId, u64, u64)> = Vec::new();
        let mut damaged = false;
        let mut ready = Vec::new();
        let mut demanded_all = false;
        let mut outcome = None;
        let limit = 20 * data.len() + 10_000;
        let mut steps = 0;
        while outcome.is_none() {
            steps += 1;
            assert!(steps < limit, "stream did not finish in {limit} steps");
            while let Some(req) = s.poll_fetch() {
                assert!(req.range.end <= orig.len() as u64, "request past the end");
                let mut at = req.range.start;
                while at < req.range.end {
                    let n = c.pick(&[u64::MAX, 1, 7, 100, 1000, 4096, 5000, u64::MAX]);
                    let end = at.saturating_add(n).min(req.range.end);
                    pending.push((req.id, at, end));
                    at = end;
                }
                if req.range.is_empty() {
                    pending.push((req.id, at, at));
                }
            }
            while let Some(e) = s.poll_event() {
                match e {
                    Event::BlockReady(id) => ready.push(id.0),
                    Event::Complete => outcome = Some(Ok(())),
                    Event::Failed(e) => outcome = Some(Err(e)),
                    _ => {}
                }
            }
            if outcome.is_some() {
                break;
            }
            if pending.is_empty() {
                // Nothing asked for: a launch-only stream waits for demands.
                assert!(
                    s.prologue().is_some() && !demanded_all,
                    "session stalled: nothing in flight, nothing asked for, not complete"
                );
                demanded_all = true;
                for id in 0..blocks {
                    s.request_block(BlockId(id)).expect("id in range");
                }
                continue;
            }
            let op = c.u8();
            let idx = usize::from(c.u8()) % pending.len();
            match op % 16 {
                0..=10 => {
                    let (id, a, b) = if op.is_multiple_of(16) {
                        pending.remove(0)
                    } else if op % 16 == 10 {
                        pending[idx] // delivered again later
                    } else {
                        pending.remove(idx)
                    };
                    let mut bytes = orig[a as usize..b as usize].to_vec();
                    if op % 16 == 9 && !bytes.is_empty() {
                        let at = usize::from(c.u16()) % bytes.len();
                        bytes[at] ^= c.u8().max(1);
                        damaged = true;
                    }
                    let live = s.is_in_flight(id);
                    let r = s.on_data(id, a, &bytes, &mut sink);
                    if live {
                        r.expect("on_data of an in-flight request");
                    } else if !s.is_failed() && !s.is_complete() {
                        assert!(r.is_err(), "data for a finished request accepted");
                    }
                }
                11 | 12 => {
                    let id = pending[idx].0;
                    pending.retain(|p| p.0 != id);
                    if op % 16 == 11 {
                        let kind = c.pick(&[
                            TransportErrorKind::Timeout,
                            TransportErrorKind::ConnectionLost,
                            TransportErrorKind::Io,
                        ]);
                        s.on_failure(id, &TransportError::new(kind, "injected"));
                        damaged = true;
                    } else {
                        s.cancel(id);
                    }
                }
                13 => {
                    let id = u32::from(c.u16()) % (blocks + 1);
                    let r = s.request_block(BlockId(id));
                    assert_eq!(r.is_ok(), s.prologue().is_some() && id < blocks);
                }
                14 => {
                    let a = u64::from(c.u16()) * 3 % (logical + 2);
                    let b = a + u64::from(c.u16());
                    let r = s.request_range(a..b);
                    if s.prologue().is_some() && b <= logical {
                        r.expect("request_range within the package");
                    }
                }
                _ => {
                    // Reverse order: the newest chunk first.
                    let (id, a, b) = pending.pop().expect("non-empty");
                    let live = s.is_in_flight(id);
                    let r = s.on_data(id, a, &orig[a as usize..b as usize], &mut sink);
                    if live {
                        r.expect("on_data of an in-flight request");
                    }
                }
            }
        }
        match outcome.expect("loop ends with an outcome") {
            Ok(()) => {
                assert!(s.is_complete() && s.is_launch_ready());
                assert!(
                    sink.image == orig,
                    "completed image differs from the package"
                );
                assert!(
                    sink.accepted.iter().all(|&a| a),
                    "complete with blocks missing"
                );
                ready.sort_unstable();
                assert!(
                    ready == (0..blocks).collect::<Vec<_>>(),
                    "BlockReady events"
                );
                for id in 0..blocks {
                    assert_eq!(s.block_state(BlockId(id)), Some(BlockState::Present));
                }
            }
            Err(e) => {
                assert!(s.is_failed());
                assert!(damaged, "stream failed with nothing damaged: {e}");
                assert!(s.poll_fetch().is_none(), "failed session asks for more");
            }
        }
        for id in ready {
            assert!(
                sink.accepted[id as usize],
                "BlockReady({id}) never given to the sink"
            );
        }
    }

    /// Checks blocks the session accepts from an arbitrary source: they
    /// must be the source's own bytes. Keeps nothing.
    struct SourceSink<'a> {
        data: &'a [u8],
        blocks: u64,
    }

    impl BlockSink for SourceSink<'_> {
        fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
            assert!(
                self.data.get(..bytes.len()) == Some(bytes),
                "prologue differs from the source"
            );
            Ok(())
        }

        fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
            let r = b.info.stored_range();
            let got = usize::try_from(r.start)
                .ok()
                .zip(usize::try_from(r.end).ok())
                .and_then(|(s, e)| self.data.get(s..e));
            assert!(
                got == Some(b.stored),
                "block {} differs from the source",
                b.info.id.0
            );
            assert_eq!(b.stored.len(), b.info.stored_len as usize);
            self.blocks += 1;
            Ok(())
        }
    }

    /// Stream arbitrary bytes as a package: the session must reject or
    /// accept them without panicking, within its allocation caps (a small
    /// `max_prologue_bytes`), asking only for ranges it may ask for, and
    /// handing the sink nothing but the source's bytes. A run that
    /// completes must describe a package [`Package::parse`] accepts, and
    /// a run that delivers any block one whose block records pass
    /// [`crate::BlockIndex::check_storage`].
    pub fn session_bytes(data: &[u8]) {
        let h = data
            .iter()
            .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let cfg = SessionConfig::default()
            .max_prologue_bytes(64 << 10)
            .initial_read([128, 1000, 4096, 65536][(h & 3) as usize])
            .max_request_bytes([1 << 20, 4096, 1][(h >> 2) as usize % 3])
            .max_attempts(2);
        let tell_len = h & 32 == 0;
        let mut s = StreamSession::new(cfg);
        if tell_len {
            s.on_source_len(data.len() as u64);
        }
        let mut sink = SourceSink { data, blocks: 0 };
        let len = data.len() as u64;
        let mut complete = false;
        for _ in 0..100_000 {
            let Some(req) = s.poll_fetch() else { break };
            assert!(req.range.start <= req.range.end);
            if tell_len {
                assert!(
                    req.range.end <= len,
                    "request {:?} past the source's {len} bytes",
                    req.range
                );
            }
            let end = req.range.end.min(len);
            if req.range.start < end {
                let bytes = &data[req.range.start as usize..end as usize];
                // Two chunks, the second first, to exercise reassembly.
                let mid = bytes.len() / 2;
                let (a, b) = bytes.split_at(mid);
                let r = s.on_data(req.id, req.range.start + mid as u64, b, &mut sink);
                r.expect("on_data within the request");
                if s.is_in_flight(req.id) {
                    s.on_data(req.id, req.range.start, a, &mut sink)
                        .expect("on_data within the request");
                }
            }
            if s.is_in_flight(req.id) {
                let kind = if h & 64 == 0 {
                    TransportErrorKind::RangeNotSatisfiable
                } else {
                    TransportErrorKind::Timeout
                };
                s.on_failure(req.id, &TransportError::new(kind, "source ends"));
            }
            while let Some(e) = s.poll_event() {
                complete |= matches!(e, Event::Complete);
            }
        }
        if complete && tell_len {
            assert!(
                Package::parse(data).is_ok(),
                "stream completed over an unparseable package"
            );
        }
        // Blocks are split and merged by adjacency: none may reach the
        // sink unless every record and the storage layout were checked.
        if sink.blocks > 0 {
            let storage =
                crate::read::Prologue::parse(data).and_then(|p| p.index().check_storage());
            assert!(
                storage.is_ok(),
                "blocks delivered from records that fail the storage check: {storage:?}"
            );
        }
    }
}
