//! `PackageFile` / `SourcePackage`: a package read lazily with positional
//! reads, against `Package::parse` of the same bytes.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use sft::error::{FormatProblem, Region};
use sft::io::RangeSource;
use sft::stream::TransportError;
use sft::write::{BlockSize, Compression, PackageBuilder};
use sft::{BlockId, Error, ErrorKind, Package, PackageFile, SourcePackage, WriteOptions};

use crate::common::patch::{H_CRC, H_PROLOGUE_LEN, Patch};
use crate::common::{alloc, noise, text};

/// A package of several files: empty, tiny, text that compresses, noise
/// that does not, one spanning many blocks, in nested directories.
fn package(block: BlockSize, compression: Compression) -> Vec<u8> {
    PackageBuilder::new(
        WriteOptions::default()
            .name("Lazy")
            .block_size(block)
            .compression(compression),
    )
    .add_bytes("a/empty.txt", Vec::new())
    .unwrap()
    .add_bytes("a/one.bin", vec![42])
    .unwrap()
    .add_bytes("a/b/text.txt", text(150_000))
    .unwrap()
    .add_bytes("a/b/noise.bin", noise(7, 70_001))
    .unwrap()
    .add_bytes("big.bin", noise(9, 300_000))
    .unwrap()
    .add_bytes("z.txt", b"last".to_vec())
    .unwrap()
    .write_to_vec()
    .unwrap()
}

fn on_disk(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sft");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

const SHAPES: [(BlockSize, Compression); 4] = [
    (BlockSize::K4, Compression::None),
    (BlockSize::K4, Compression::Zlib(6)),
    (BlockSize::K16, Compression::Zlib(1)),
    (BlockSize::K64, Compression::Zlib(9)),
];

#[test]
fn every_file_matches_package_parse() {
    for (block, compression) in SHAPES {
        let bytes = package(block, compression);
        let (_dir, path) = on_disk(&bytes);
        let mem = Package::parse(&bytes).unwrap();
        let file = PackageFile::open(&path).unwrap();
        let source = SourcePackage::new(bytes.clone()).unwrap();
        assert_eq!(file.metadata(), mem.metadata());
        assert_eq!(file.entry_count(), mem.entry_count());
        let mut files = 0;
        for (e, (f, s)) in mem.entries().zip(file.entries().zip(source.entries())) {
            let (e, f, s) = (e.unwrap(), f.unwrap(), s.unwrap());
            assert_eq!((f.path(), f.size()), (e.path(), e.size()));
            assert_eq!((s.path(), s.size()), (e.path(), e.size()));
            let looked_up = file.entry(e.path()).unwrap();
            assert_eq!(looked_up.number(), e.number());
            if e.is_dir() {
                assert_eq!(
                    file.read_file(&f).unwrap_err().kind(),
                    ErrorKind::InvalidInput
                );
                assert!(file.reader(f).is_err());
                continue;
            }
            let want = mem.read_file(&e).unwrap();
            assert_eq!(file.read_file(&f).unwrap(), want, "{}", e.path());
            assert_eq!(source.read_file(&s).unwrap(), want, "{}", e.path());
            let mut via_reader = Vec::new();
            file.reader(f)
                .unwrap()
                .read_to_end(&mut via_reader)
                .unwrap();
            assert_eq!(via_reader, want, "{}", e.path());
            files += 1;
        }
        assert_eq!(files, 6);
        assert_eq!(file.entry("nope").unwrap_err().kind(), ErrorKind::NotFound);
        for id in mem.index().ids() {
            assert_eq!(file.read_block(id).unwrap(), &*mem.read_block(id).unwrap());
        }
        let want = mem.verify().unwrap();
        assert_eq!(file.verify().unwrap(), want);
        assert_eq!(
            file.verify_with(&|_| {}, &sft::io::Threads(3)).unwrap(),
            want
        );
    }
}

/// Where block `id`'s stored bytes start.
fn stored_offset(bytes: &[u8], id: u32) -> usize {
    Package::parse(bytes)
        .unwrap()
        .index()
        .get(BlockId(id))
        .unwrap()
        .stored_offset as usize
}

fn damaged_block(e: &Error) -> Option<u32> {
    match e.as_integrity()?.region {
        Region::Block(n) => Some(n),
        _ => None,
    }
}

#[test]
fn a_damaged_block_is_an_integrity_error_naming_it() {
    for (block, compression) in SHAPES {
        let mut bytes = package(block, compression);
        // A block in the middle of big.bin, and the one after it.
        let (bad, later, bad_start) = {
            let pkg = Package::parse(&bytes).unwrap();
            let big = pkg.entry("big.bin").unwrap();
            let bs = u64::from(pkg.block_size());
            let first = big.extents().next().unwrap().logical_offset;
            let (bad, _) = pkg.index().locate(first + bs * 3 / 2 + 1).unwrap();
            let (later, _) = pkg.index().locate(first + bs * 5 / 2 + 1).unwrap();
            let start = pkg.index().get(bad).unwrap().logical_offset - first;
            (bad, later, start)
        };
        for id in [bad.0, later.0] {
            let at = stored_offset(&bytes, id) + 1;
            bytes[at] ^= 0x40;
        }
        let (_dir, path) = on_disk(&bytes);
        let file = PackageFile::open(&path).unwrap();
        let entry = file.entry("big.bin").unwrap();

        let e = file.read_file(&entry).map(|v| v.len()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert_eq!(damaged_block(&e), Some(bad.0), "{e}");
        assert!(e.to_string().contains(&format!("block {}", bad.0)), "{e}");
        let e = file.read_block(bad).map(|v| v.len()).unwrap_err();
        assert_eq!(damaged_block(&e), Some(bad.0), "{e}");

        // The reader hands over everything before the block, then fails:
        // none of the damaged block's bytes come out.
        let mut r = file.reader(entry).unwrap();
        let mut before = vec![0u8; bad_start as usize];
        r.read_exact(&mut before).unwrap();
        assert_eq!(before, noise(9, 300_000)[..bad_start as usize]);
        let mut buf = [0u8; 100];
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        let mut one = [0u8; 1];
        assert!(file.read_at(&entry, bad_start + 5, &mut one).is_err());

        // Every other file reads; verification names the first bad block,
        // whatever the number of workers.
        assert_eq!(
            file.read_file(&file.entry("z.txt").unwrap()).unwrap(),
            b"last"
        );
        for workers in [1, 2, 4] {
            let e = file
                .verify_with(&|_| {}, &sft::io::Threads(workers))
                .unwrap_err();
            assert_eq!(damaged_block(&e), Some(bad.0), "{workers} workers: {e}");
        }
    }
}

#[test]
fn truncated_or_overlong_files_fail_at_open_without_a_large_allocation() {
    let bytes = package(BlockSize::K16, Compression::Zlib(6));
    let plen = Patch::new(&bytes).u64(H_PROLOGUE_LEN);
    let cut = |len: usize| {
        let (dir, path) = on_disk(&bytes[..len]);
        alloc::reset();
        let e = PackageFile::open(&path).unwrap_err();
        assert!(alloc::largest() < 64 << 10, "{len}: {}", alloc::largest());
        drop(dir);
        e
    };
    for len in [
        0,
        10,
        127,
        plen as usize - 1,
        plen as usize,
        bytes.len() - 1,
    ] {
        let e = cut(len);
        assert_eq!(e.kind(), ErrorKind::Format, "{len}: {e}");
        let f = e.as_format().unwrap();
        assert!(
            matches!(f.problem, FormatProblem::Truncated { .. }),
            "{len}: {e}"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"tail");
    let (_dir, path) = on_disk(&longer);
    let e = PackageFile::open(&path).unwrap_err();
    assert!(
        matches!(
            e.as_format().map(|f| &f.problem),
            Some(FormatProblem::Inconsistent {
                field: "package length",
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn a_huge_declared_prologue_is_refused_before_it_is_allocated() {
    let bytes = package(BlockSize::K4, Compression::None);
    let real = Patch::new(&bytes).u64(H_PROLOGUE_LEN);
    // Over the limit, and under it but longer than the file.
    for plen in [1u64 << 40, 200 << 20] {
        let mut p = Patch::new(&bytes);
        p.set_u64(H_PROLOGUE_LEN, plen);
        p.fix_header_crc();
        assert_ne!(p.u32(H_CRC), Patch::new(&bytes).u32(H_CRC));
        let (_dir, path) = on_disk(&p.0);
        alloc::reset();
        let e = PackageFile::open(&path).unwrap_err();
        assert!(alloc::largest() < 64 << 10, "{plen}: {}", alloc::largest());
        if plen > sft::io::package_file::DEFAULT_MAX_PROLOGUE_BYTES {
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert!(e.to_string().contains("exceeds the limit"), "{e}");
        } else {
            assert_eq!(e.kind(), ErrorKind::Format, "{e}");
        }
    }
    // A caller's own limit, below the real prologue.
    let e = SourcePackage::with_max_prologue(bytes.clone(), real - 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(SourcePackage::with_max_prologue(bytes, real).is_ok());
}

/// A source that counts the reads it serves.
struct Counted {
    bytes: Vec<u8>,
    reads: AtomicUsize,
}

impl RangeSource for Counted {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.bytes.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.bytes.read_at(offset, buf)
    }
}

/// xorshift: deterministic offsets and lengths.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn the_reader_seeks_anywhere_and_decodes_each_block_once() {
    for (block, compression) in SHAPES {
        let bytes = package(block, compression);
        let mem = Package::parse(&bytes).unwrap();
        let pkg = SourcePackage::new(Counted {
            bytes: bytes.clone(),
            reads: AtomicUsize::new(0),
        })
        .unwrap();
        for name in ["big.bin", "a/b/text.txt", "a/one.bin"] {
            let want = mem.read_file(&mem.entry(name).unwrap()).unwrap();
            let entry = pkg.entry(name).unwrap();
            let mut r = pkg.reader(entry).unwrap();
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ want.len() as u64;
            let mut pos = 0u64;
            for _ in 0..200 {
                let len = want.len() as u64;
                pos = match next(&mut x) % 3 {
                    0 => r.seek(SeekFrom::Start(next(&mut x) % (len + 10))).unwrap(),
                    1 => {
                        let back = (next(&mut x) % (len + 1)) as i64;
                        r.seek(SeekFrom::End(-back)).unwrap()
                    }
                    _ => {
                        let d = (next(&mut x) % 20_000) as i64 - 10_000;
                        let d = d.max(-(pos as i64));
                        r.seek(SeekFrom::Current(d)).unwrap()
                    }
                };
                let mut buf = vec![0u8; (next(&mut x) % 70_000) as usize];
                let n = r.read(&mut buf).unwrap();
                let start = (pos as usize).min(want.len());
                let end = (start + buf.len()).min(want.len());
                assert_eq!(&buf[..n], &want[start..start + n], "{name} at {pos}");
                assert!(n > 0 || start == end, "{name}: empty read at {pos}");
                pos += n as u64;
            }
            assert!(r.seek(SeekFrom::Current(-(pos as i64) - 1)).is_err());

            // Small sequential reads: one source read per block touched.
            let blocks: Range<u32> = {
                let ext = entry.extents().next().unwrap();
                mem.index()
                    .blocks_for_range(ext.logical_offset..ext.logical_offset + ext.length)
            };
            pkg.source().reads.store(0, Ordering::Relaxed);
            let mut r = pkg.reader(entry).unwrap();
            let mut all = Vec::new();
            let mut small = [0u8; 100];
            loop {
                let n = r.read(&mut small).unwrap();
                if n == 0 {
                    break;
                }
                all.extend_from_slice(&small[..n]);
            }
            assert_eq!(all, want, "{name}");
            assert_eq!(
                pkg.source().reads.load(Ordering::Relaxed),
                blocks.len(),
                "{name}: {blocks:?}"
            );
        }
    }
}
