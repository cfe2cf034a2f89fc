//! Writer benchmarks: packing a generated tree in memory and from the
//! file system (stored vs zlib 6), and block encoding per block size.
//!
//! Inputs are generated in-process from fixed seeds. Needs the `write`
//! feature: run with `cargo bench --bench pack --all-features` (with
//! `fast-zlib`, as the CLI, flate2 uses zlib-rs; without it miniz_oxide).
//!
//! Sized for a 2-core machine: the whole file runs in about a minute.

#[cfg(feature = "write")]
mod imp {
    use std::hint::black_box;
    use std::sync::{Arc, OnceLock};
    use std::time::Duration;

    use criterion::{BenchmarkId, Criterion, Throughput};
    use sft::WriteOptions;
    use sft::write::{BlockSize, Compression, PackageBuilder};

    /// splitmix64: tiny, fast and reproducible.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    const WORDS: &[&str] = &[
        "def",
        "self",
        "return",
        "import",
        "from",
        "class",
        "if",
        "else",
        "for",
        "in",
        "None",
        "True",
        "False",
        "raise",
        "try",
        "except",
        "with",
        "as",
        "lambda",
        "yield",
        "value",
        "result",
        "name",
        "path",
        "data",
        "index",
        "buffer",
        "offset",
        "length",
        "config",
        "os",
        "sys",
        "re",
        "list",
        "dict",
        "len",
        "range",
        "print",
        "assert",
        "not",
        "and",
        "or",
        "is",
        "while",
        "pass",
        "args",
        "kwargs",
        "__init__",
        "encoding",
        "stream",
        "error",
        "module",
        "object",
        "str",
        "int",
        "bytes",
        "0",
        "1",
        "\"utf-8\"",
        "# TODO",
    ];
    const PUNCT: &[&str] = &[" ", " ", " ", ", ", "(", "): ", ".", " = ", "[", "]"];

    /// Source-code-like text: compresses about 4:1 with zlib 6.
    pub(crate) fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        while out.len() < len {
            for _ in 0..rng.below(4) {
                out.extend_from_slice(b"    ");
            }
            for _ in 0..3 + rng.below(8) {
                out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
                out.extend_from_slice(PUNCT[rng.below(PUNCT.len() as u64) as usize].as_bytes());
            }
            out.push(b'\n');
        }
        out.truncate(len);
        out
    }

    /// Bytecode-like data: short repeats mixed with noise, about 2:1.
    pub(crate) fn binary(rng: &mut Rng, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            if out.len() > 64 && rng.below(2) == 0 {
                let back = 1 + rng.below(64) as usize;
                let n = 3 + rng.below(12) as usize;
                for _ in 0..n {
                    out.push(out[out.len() - back]);
                }
            } else {
                out.push(rng.below(96) as u8);
            }
        }
        out.truncate(len);
        out
    }

    /// A tree of `files` files (paths, contents) with log-uniform sizes in
    /// `min..max` bytes, 70% text, 30% binary, ~40 files per directory.
    pub(crate) fn tree(seed: u64, files: usize, min: u64, max: u64) -> Vec<(String, Vec<u8>)> {
        let mut rng = Rng::new(seed);
        let (lmin, lmax) = ((min.max(1) as f64).ln(), (max as f64).ln());
        (0..files)
            .map(|i| {
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                let size = (lmin + u * (lmax - lmin)).exp() as usize;
                let size = if min == 0 { size - 1 } else { size };
                let dir = i / 40;
                let path = format!("lib{:03}/mod{:04}/file{i:06}.py", dir / 50, dir);
                let data = if rng.below(10) < 7 {
                    text(&mut rng, size)
                } else {
                    binary(&mut rng, size)
                };
                (path, data)
            })
            .collect()
    }

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
