//! Writer benchmarks: packing a generated tree in memory and from the
//! file system (stored vs zlib 6), and block encoding per block size.
//!
//! Inputs are generated in-process from fixed seeds. Needs the `write`
//! feature: run with `cargo bench --bench pack --all-features` (with
//! `fast-zlib`, as the CLI, flate2 uses zlib-rs; without it miniz_oxide).
//!
//! Sized for a 2-core machine: the whole file runs in about a minute.

#[cfg(feature = "write")]
#[path = "common/gen.rs"]
mod generate;

#[cfg(feature = "write")]
mod imp {
    use std::hint::black_box;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion, Throughput};
    use sft::WriteOptions;
    use sft::write::{BlockSize, Compression, PackageBuilder};

    use super::generate::{Rng, text, tree};

    struct Inputs {
        /// ~1,500 files, ~16 MiB: sizes and mix like a source tree.
        files: Vec<(String, Arc<[u8]>)>,
        total: u64,
        /// The same tree on disk, for the path-based (CLI) writer.
        dir: tempfile::TempDir,
        /// One 4 MiB file of text for per-block-size encoding.
        blob: Arc<[u8]>,
    }

    fn inputs() -> &'static Inputs {
        static INPUTS: OnceLock<Inputs> = OnceLock::new();
        INPUTS.get_or_init(|| {
            let files: Vec<(String, Arc<[u8]>)> = tree(11, 1_500, 64, 48 << 10)
                .into_iter()
                .map(|(p, d)| (p, d.into()))
                .collect();
            let total = files.iter().map(|(_, d)| d.len() as u64).sum();
            let dir = tempfile::tempdir().expect("tempdir");
            for (p, d) in &files {
                let path = dir.path().join(p);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, d).expect("write input");
            }
            let mut rng = Rng::new(12);
            let blob = text(&mut rng, 4 << 20).into();
            Inputs {
                files,
                total,
                dir,
                blob,
            }
        })
    }

    fn options(compression: Compression) -> WriteOptions {
        WriteOptions::default()
            .name("bench")
            .created(1_700_000_000, 0)
            .compression(compression)
    }

    const CODECS: [(&str, Compression); 2] = [
        ("stored", Compression::None),
        ("zlib6", Compression::Zlib(6)),
    ];

    /// Whole-tree packing, all cores: from memory (`add_bytes`, measures
    /// planning + encoding + emission) and from disk (`add_tree` and
    /// `write_to_path`: directory walk, pread, atomic write with fsync).
    pub(crate) fn pack_tree(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("pack_tree");
        g.sample_size(10);
        g.throughput(Throughput::Bytes(inp.total));
        for (name, comp) in CODECS {
            g.bench_function(BenchmarkId::new("memory", name), |b| {
                b.iter(|| {
                    let mut pb = PackageBuilder::new(options(comp));
                    for (p, d) in &inp.files {
                        pb.add_bytes(p, d.clone()).expect("add");
                    }
                    pb.write_to_vec().expect("write").len()
                })
            });
        }
        let out = tempfile::tempdir().expect("tempdir");
        let dest = out.path().join("tree.sft");
        for (name, comp) in CODECS {
            g.bench_function(BenchmarkId::new("files", name), |b| {
                b.iter(|| {
                    let mut pb = PackageBuilder::new(options(comp));
                    pb.add_tree(inp.dir.path()).expect("add_tree");
                    pb.write_to_path(&dest).expect("write").stored_size
                })
            });
        }
        g.finish();
    }

    /// Block encoding per block size on one thread: a 4 MiB text file cut
    /// into 4/16/32/64 KiB blocks, each read, compressed and CRC-checked.
    pub(crate) fn encode_block(c: &mut Criterion) {
        let inp = inputs();
        let mut g = c.benchmark_group("encode_1_thread");
        g.sample_size(10);
        g.throughput(Throughput::Bytes(inp.blob.len() as u64));
        for (name, comp) in CODECS {
            for bs in [
                BlockSize::K4,
                BlockSize::K16,
                BlockSize::K32,
                BlockSize::K64,
            ] {
                let id = BenchmarkId::new(name, format!("{}k", bs.bytes() / 1024));
                g.bench_function(id, |b| {
                    b.iter(|| {
                        let mut pb = PackageBuilder::new(options(comp).block_size(bs).threads(1));
                        pb.add_bytes("blob.txt", black_box(inp.blob.clone()))
                            .expect("add");
                        pb.write_to_vec().expect("write").len()
                    })
                });
            }
        }
        g.finish();
    }

    pub(crate) fn config() -> Criterion {
        Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }
}

#[cfg(feature = "write")]
criterion::criterion_group! {
    name = benches;
    config = imp::config();
    targets = imp::pack_tree, imp::encode_block
}
#[cfg(feature = "write")]
criterion::criterion_main!(benches);

#[cfg(not(feature = "write"))]
fn main() {
    eprintln!("benches/pack.rs needs the `write` feature: use --all-features");
}
