//! Reader benchmarks: open cost against file count, look-ups, random and
//! sequential reads (stored and zlib), and full verification.
//!
//! Every input is generated in-process from fixed seeds, so runs compare.
//! Needs the `write` feature to build inputs (`mmap` adds the mapped-open
//! benches): run with `cargo bench --bench read --all-features`.
//!
//! Sized for a 2-core machine: the whole file runs in about a minute.

#[cfg(feature = "write")]
#[path = "common/gen.rs"]
mod generate;

#[cfg(feature = "write")]
mod imp {
    use std::hint::black_box;
    use std::io::Read;
    use std::sync::OnceLock;
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion, Throughput};
    use sft::write::{Compression, PackageBuilder};
    use sft::{BlockId, Package, WriteOptions};

    use super::generate::{Rng, text, tree};

    pub(crate) fn pack(files: &[(String, Vec<u8>)], compression: Compression) -> Vec<u8> {
        let mut b = PackageBuilder::new(
            WriteOptions::default()
                .name("bench")
                .created(1_700_000_000, 0)
                .compression(compression),
        );
        for (p, d) in files {
            b.add_bytes(p, d.clone()).expect("add");
        }
        b.write_to_vec().expect("write")
    }

    struct Inputs {
        /// 10 files, and 100,000 files: the open-cost pair.
        small: Vec<u8>,
        huge: Vec<u8>,
        /// Paths of the huge package, shuffled, for look-ups.
        huge_paths: Vec<String>,
        /// ~2,000 files, ~24 MiB, stored and zlib 6.
        tree_stored: Vec<u8>,
        tree_zlib: Vec<u8>,
        /// One 32 MiB file, stored and zlib 6, for random reads.
        big_stored: Vec<u8>,
        big_zlib: Vec<u8>,
    }

    fn inputs() -> &'static Inputs {
        static INPUTS: OnceLock<Inputs> = OnceLock::new();
        INPUTS.get_or_init(|| {
            let small = pack(&tree(1, 10, 100, 20_000), Compression::Zlib(6));
            let many = tree(2, 100_000, 0, 256);
            let huge = pack(&many, Compression::Zlib(6));
            let mut huge_paths: Vec<String> = many.into_iter().map(|(p, _)| p).collect();
            let mut rng = Rng::new(3);
            for i in (1..huge_paths.len()).rev() {
                huge_paths.swap(i, rng.below(i as u64 + 1) as usize);
            }
            huge_paths.truncate(4096);
            let files = tree(4, 2_000, 64, 64 << 10);
            let tree_stored = pack(&files, Compression::None);
            let tree_zlib = pack(&files, Compression::Zlib(6));
            let mut rng = Rng::new(5);
            let big = vec![("big.bin".to_owned(), text(&mut rng, 32 << 20))];
            let big_stored = pack(&big, Compression::None);
            let big_zlib = pack(&big, Compression::Zlib(6));
            Inputs {
                small,
                huge,
                huge_paths,
                tree_stored,
                tree_zlib,
                big_stored,
                big_zlib,
            }
        })
    }

    fn logical_len(bytes: &[u8]) -> u64 {
        Package::parse(bytes)
            .expect("parse")
            .metadata()
            .package_size()
    }

    /// Open cost: `Package::parse` (and `MappedPackage::open`) of a
    /// 10-file and a 100,000-file package. Must not depend on file count.
    pub(crate) fn open(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("open");
        for (name, bytes) in [("10_files", &inp.small), ("100k_files", &inp.huge)] {
            let n = Package::parse(bytes).expect("parse").entry_count();
            assert!(n >= 10, "{name}: {n} entries");
            g.bench_with_input(BenchmarkId::new("parse", name), bytes, |b, bytes| {
                b.iter(|| {
                    Package::parse(black_box(bytes))
                        .expect("parse")
                        .entry_count()
                })
            });
            // A streaming client's open: the prologue alone, every section
            // CRC-checked (linear in the prologue, by design).
            let len = sft::format::Header::parse(bytes)
                .expect("header")
                .prologue_len as usize;
            g.bench_with_input(
                BenchmarkId::new("prologue_parse", name),
                &bytes[..len],
                |b, prologue| {
                    b.iter(|| {
                        sft::read::Prologue::parse(black_box(prologue))
                            .expect("prologue")
                            .entry_count()
                    })
                },
            );
        }
        #[cfg(feature = "mmap")]
        {
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, bytes) in [("10_files", &inp.small), ("100k_files", &inp.huge)] {
                let path = dir.path().join(format!("{name}.sft"));
                std::fs::write(&path, bytes).expect("write package");
                g.bench_with_input(BenchmarkId::new("mmap_open", name), &path, |b, path| {
                    b.iter(|| {
                        // SAFETY: the file is ours and unchanged while mapped.
                        let m = unsafe { sft::MappedPackage::open(black_box(path)) }.expect("open");
                        m.package().entry_count()
                    })
                });
            }
        }
        g.finish();
    }

    /// Entry look-up by path (binary search over CRC-checked records) and
    /// block index access, in the 100,000-file package.
    pub(crate) fn lookup(c: &mut Criterion) {
        let inp = inputs();
        let pkg = Package::parse(&inp.huge).expect("parse");
        let mut g = c.benchmark_group("lookup");
        let mut i = 0usize;
        g.bench_function("find_path/100k_files", |b| {
            b.iter(|| {
                i = (i + 1) % inp.huge_paths.len();
                pkg.find(black_box(&inp.huge_paths[i]))
                    .expect("find")
                    .expect("present")
                    .size()
            })
        });
        g.bench_function("find_missing/100k_files", |b| {
            b.iter(|| {
                pkg.find(black_box("lib000/mod0000/nope.py"))
                    .expect("find")
                    .is_none()
            })
        });
        let n = pkg.entry_count();
        let mut rng = Rng::new(6);
        g.bench_function("entry_at/100k_files", |b| {
            b.iter(|| pkg.entry_at(black_box(rng.below(n))).expect("entry").size())
        });
        let big = Package::parse(&inp.big_zlib).expect("parse");
        let index = big.index();
        let blocks = u64::from(index.len());
        let mut rng = Rng::new(7);
        g.bench_function("index_get", |b| {
            b.iter(|| {
                index
                    .get(black_box(BlockId(rng.below(blocks) as u32)))
                    .expect("get")
                    .stored_len
            })
        });
        let len = index.logical_len();
        g.bench_function("index_locate", |b| {
            b.iter(|| index.locate(black_box(rng.below(len))))
        });
        g.finish();
    }

    /// 4 KiB reads at random offsets of a 32 MiB file: each decodes (and
    /// CRC-checks) the block it falls in, as a streaming client would.
    pub(crate) fn random_read(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("random_read_4k");
        g.throughput(Throughput::Bytes(4096));
        for (name, bytes) in [("stored", &inp.big_stored), ("zlib6", &inp.big_zlib)] {
            let pkg = Package::parse(bytes).expect("parse");
            let entry = pkg.entry("big.bin").expect("entry");
            let size = entry.size() - 4096;
            let mut rng = Rng::new(8);
            let mut buf = vec![0u8; 4096];
            g.bench_function(name, |b| {
                b.iter(|| {
                    pkg.read_at(&entry, black_box(rng.below(size)), &mut buf)
                        .expect("read")
                })
            });
        }
        g.finish();
    }

    /// Every file of a ~2,000-file tree read start to end, through
    /// `Package::chunks` (zero-copy for stored blocks; each block's CRC is
    /// checked, so every byte is read), through block-level calls with a
    /// block cache shared between files, and through `FileReader` (64 KiB
    /// `read` calls into a buffer: one copy).
    pub(crate) fn sequential(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("sequential");
        g.sample_size(10);
        for (name, bytes) in [("stored", &inp.tree_stored), ("zlib6", &inp.tree_zlib)] {
            let pkg = Package::parse(bytes).expect("parse");
            g.throughput(Throughput::Bytes(logical_len(bytes)));
            g.bench_function(BenchmarkId::new("chunks", name), |b| {
                b.iter(|| {
                    let mut total = 0usize;
                    for e in pkg.entries() {
                        let e = e.expect("entry");
                        if e.is_file() {
                            for chunk in pkg.chunks(&e) {
                                total += black_box(&*chunk.expect("chunk")).len();
                            }
                        }
                    }
                    total
                })
            });
            // One iterator moved from file to file: each shared block is
            // checked (and inflated) once.
            g.bench_function(BenchmarkId::new("chunks_restart", name), |b| {
                b.iter(|| {
                    let mut total = 0usize;
                    let mut chunks: Option<sft::read::Chunks<'_>> = None;
                    for e in pkg.entries() {
                        let e = e.expect("entry");
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
                        for chunk in c.by_ref() {
                            total += black_box(&*chunk.expect("chunk")).len();
                        }
                    }
                    total
                })
            });
            // The same stream from block-level calls with one block cache
            // kept across files: each block checked and decoded once. The
            // gap to `chunks` is what a cache shared between files saves.
            g.bench_function(BenchmarkId::new("blocks_shared_cache", name), |b| {
                b.iter(|| {
                    let index = pkg.index();
                    let mut last: Option<(BlockId, std::borrow::Cow<'_, [u8]>)> = None;
                    let mut total = 0usize;
                    for e in pkg.entries() {
                        let e = e.expect("entry");
                        for x in e.extents() {
                            let (mut at, end) = (x.logical_offset, x.logical_offset + x.length);
                            while at < end {
                                let (id, within) = index.locate(at).expect("locate");
                                if last.as_ref().is_none_or(|(l, _)| *l != id) {
                                    let d = pkg.block(id).and_then(|b| b.decode()).expect("block");
                                    last = Some((id, d));
                                }
                                let data = &last.as_ref().expect("cached").1;
                                let n = ((data.len() - within as usize) as u64).min(end - at);
                                let piece = &data[within as usize..within as usize + n as usize];
                                total += black_box(piece).len();
                                at += n;
                            }
                        }
                    }
                    total
                })
            });
            let mut buf = vec![0u8; 64 << 10];
            g.bench_function(BenchmarkId::new("file_reader", name), |b| {
                b.iter(|| {
                    let mut total = 0usize;
                    for e in pkg.entries() {
                        let e = e.expect("entry");
                        if e.is_file() {
                            let mut r = pkg.reader(e).expect("reader");
                            loop {
                                let n = r.read(&mut buf).expect("read");
                                if n == 0 {
                                    break;
                                }
                                total += black_box(&buf[..n]).len();
                            }
                        }
                    }
                    total
                })
            });
        }
        g.finish();
    }

    /// `Package::verify`: every section, entry, record and block (CRC and
    /// decode) on all cores.
    pub(crate) fn verify(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("verify");
        g.sample_size(10);
        for (name, bytes) in [("stored", &inp.tree_stored), ("zlib6", &inp.tree_zlib)] {
            let pkg = Package::parse(bytes).expect("parse");
            g.throughput(Throughput::Bytes(logical_len(bytes)));
            g.bench_function(name, |b| b.iter(|| pkg.verify().expect("verify").blocks));
        }
        g.finish();
    }

    /// The storage check a package's first block-data access runs once
    /// (`Package::check_storage`: every 32-byte block record and rules
    /// 63–65), on a fresh `Package` each time: 65,536 stored 4 KiB blocks
    /// (256 MiB), and the ~2,000-file tree. Throughput is in blocks.
    pub(crate) fn storage_check(c: &mut Criterion) {
        use sft::write::BlockSize;
        static MANY: OnceLock<Vec<u8>> = OnceLock::new();
        let many = MANY.get_or_init(|| {
            let mut b = PackageBuilder::new(
                WriteOptions::default()
                    .name("bench")
                    .created(1_700_000_000, 0)
                    .block_size(BlockSize::K4)
                    .compression(Compression::None),
            );
            b.add_bytes("zeros.bin", vec![0u8; 256 << 20]).expect("add");
            b.write_to_vec().expect("write")
        });
        let inp = inputs();
        let mut g = c.benchmark_group("storage_check");
        for (name, bytes) in [("65536_blocks", many), ("tree_zlib", &inp.tree_zlib)] {
            let blocks = Package::parse(bytes).expect("parse").index().len();
            g.throughput(Throughput::Elements(blocks.into()));
            g.bench_function(name, |b| {
                b.iter(|| {
                    let pkg = Package::parse(black_box(bytes)).expect("parse");
                    pkg.check_storage().expect("storage")
                })
            });
        }
        g.finish();
    }

    /// What checking a block costs, per stored byte of the ~2,000-file
    /// tree's zlib blocks: CRC-32 (every reader), BLAKE3 (format v1.1's
    /// block hash, docs/FORMAT.md §8a), SHA-256 (the alternative), and
    /// reading each block (CRC, BLAKE3 and decode: what a reader does
    /// anyway) of the same data packed zlib and zstd. Throughput is in stored bytes of the zlib blocks, so the
    /// rows compare.
    pub(crate) fn hash(c: &mut Criterion) {
        use sha2::Digest;
        let inp = inputs();
        let zpkg = Package::parse(&inp.tree_zlib).expect("parse");
        let blocks: Vec<Vec<u8>> = zpkg
            .index()
            .ids()
            .map(|id| zpkg.block(id).expect("block").stored().to_vec())
            .collect();
        let total: u64 = blocks.iter().map(|b| b.len() as u64).sum();
        let zstd_bytes = {
            let files: Vec<(String, Vec<u8>)> = zpkg
                .entries()
                .map(|e| e.expect("entry"))
                .filter(|e| !e.is_dir())
                .map(|e| (e.path().to_owned(), zpkg.read_file(&e).expect("read")))
                .collect();
            pack(&files, Compression::Zstd(19))
        };
        let zs = Package::parse(&zstd_bytes).expect("parse");
        let mut g = c.benchmark_group("hash");
        g.throughput(Throughput::Bytes(total));
        g.bench_function("crc32", |b| {
            b.iter(|| {
                blocks
                    .iter()
                    .map(|x| crc32fast::hash(black_box(x)))
                    .fold(0, |a, c| a ^ c)
            })
        });
        g.bench_function("blake3", |b| {
            b.iter(|| {
                blocks
                    .iter()
                    .map(|x| blake3::hash(black_box(x)).as_bytes()[0])
                    .fold(0, |a, c| a ^ c)
            })
        });
        g.bench_function("sha256", |b| {
            b.iter(|| {
                blocks
                    .iter()
                    .map(|x| sha2::Sha256::digest(black_box(x))[0])
                    .fold(0, |a, c| a ^ c)
            })
        });
        g.bench_function("read_block_zlib", |b| {
            b.iter(|| {
                zpkg.index()
                    .ids()
                    .map(|id| zpkg.read_block(id).expect("read").len())
                    .sum::<usize>()
            })
        });
        g.bench_function("read_block_zstd", |b| {
            b.iter(|| {
                zs.index()
                    .ids()
                    .map(|id| zs.read_block(id).expect("read").len())
                    .sum::<usize>()
            })
        });
        g.finish();
    }

    pub(crate) fn config() -> Criterion {
        Criterion::default()
            .sample_size(30)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }
}

#[cfg(feature = "write")]
criterion::criterion_group! {
    name = benches;
    config = imp::config();
    targets = imp::open, imp::lookup, imp::random_read, imp::sequential, imp::verify,
        imp::storage_check, imp::hash
}
#[cfg(feature = "write")]
criterion::criterion_main!(benches);

#[cfg(not(feature = "write"))]
fn main() {
    eprintln!("benches/read.rs needs the `write` feature (and `mmap`): use --all-features");
}
