//! Open cost against file count: `Package::parse` and
//! `MappedPackage::open` of a 10-file and a 100,000-file package.
//!
//! ```text
//! cargo run --release --features cli --example open_cost [-- SMALL.sft LARGE.sft | --keep DIR]
//! ```
//!
//! Without package arguments the packages are generated (fixed content,
//! in a temporary directory, or in DIR with `--keep DIR`). Each open is
//! timed in batches; batches of all packages alternate and the median
//! per-open time is kept, so machine noise hits all alike. A third
//! package, 10 files padded to the large one's byte size, separates the
//! file count from the size of the mapping: `MappedPackage::open` of any
//! package over 64 KiB pays for the kernel's fault-around (16 pages mapped
//! on the first touch, unmapped and TLB-flushed at `munmap`), whatever its
//! file count. The last lines are machine-readable:
//!
//! ```text
//! ratio_mmap_open_same_size=0.98
//! ratio_parse=0.98
//! ratio_mmap_open=1.65
//! ```
//!
//! The target is a ratio of at most 2 (opening is O(1) in file count).

#[cfg(all(feature = "write", feature = "mmap"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use std::hint::black_box;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use sft::write::{Compression, PackageBuilder};
    use sft::{MappedPackage, Package, WriteOptions};

    /// `files` small files; with `pad_to`, stored and padded so the
    /// package has about that many bytes.
    fn generate(
        dir: &Path,
        files: usize,
        pad_to: Option<u64>,
    ) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let compression = if pad_to.is_some() {
            Compression::None
        } else {
            Compression::Zlib(6)
        };
        let mut b = PackageBuilder::new(
            WriteOptions::default()
                .name("open-cost")
                .created(1_700_000_000, 0)
                .compression(compression),
        );
        for i in 0..files {
            let dirno = i / 40;
            let path = format!("lib{:03}/mod{:04}/file{i:06}.py", dirno / 50, dirno);
            let mut body = format!("# file {i}\nimport os\nVALUE = {}\n", i * 7919 % 100_003);
            if let Some(total) = pad_to {
                let want = usize::try_from(total / files as u64)?;
                while body.len() < want {
                    body.push_str("pass  # padding to reach the byte size of the large package\n");
                }
            }
            b.add_bytes(&path, body.into_bytes())?;
        }
        let name = match pad_to {
            None => format!("{files}.sft"),
            Some(_) => format!("{files}-padded.sft"),
        };
        let path = dir.join(name);
        b.write_to_path(&path)?;
        Ok(path)
    }

    /// Median of per-call times measured batch by batch.
    fn median(samples: &mut [f64]) -> f64 {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    }

    fn generate_all(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
        let small = generate(dir, 10, None)?;
        let large = generate(dir, 100_000, None)?;
        let padded = generate(dir, 10, Some(std::fs::metadata(&large)?.len()))?;
        Ok(vec![small, large, padded])
    }

    let args: Vec<String> = std::env::args().skip(1).collect();
    let tmp;
    let paths = match args.as_slice() {
        [] => {
            tmp = tempfile::tempdir()?;
            generate_all(tmp.path())?
        }
        [k, dir] if k == "--keep" => {
            std::fs::create_dir_all(dir)?;
            generate_all(Path::new(dir))?
        }
        [a, b] => vec![PathBuf::from(a), PathBuf::from(b)],
        _ => return Err("usage: open_cost [SMALL.sft LARGE.sft | --keep DIR]".into()),
    };
    let labels = ["small", "large", "small_padded"];
    let bytes: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;

    const ROUNDS: usize = 21;
    const PARSE_BATCH: u32 = 20_000;
    const MAP_BATCH: u32 = 2_000;
    let mut parse = vec![Vec::new(); paths.len()];
    let mut map = vec![Vec::new(); paths.len()];
    for _ in 0..ROUNDS {
        for (k, b) in bytes.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..PARSE_BATCH {
                black_box(Package::parse(black_box(b))?.entry_count());
            }
            parse[k].push(t.elapsed().as_secs_f64() / f64::from(PARSE_BATCH));
        }
        for (k, path) in paths.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..MAP_BATCH {
                // SAFETY: our own files, unchanged while mapped.
                let m = unsafe { MappedPackage::open(black_box(path))? };
                black_box(m.package().entry_count());
            }
            map[k].push(t.elapsed().as_secs_f64() / f64::from(MAP_BATCH));
        }
    }
    let p: Vec<f64> = parse.iter_mut().map(|s| median(s)).collect();
    let m: Vec<f64> = map.iter_mut().map(|s| median(s)).collect();
    for (k, path) in paths.iter().enumerate() {
        println!(
            "{:<12} {:>7} entries {:>10} bytes  parse {:>8.1} ns  mmap_open {:>8.1} ns  ({})",
            labels[k],
            Package::parse(&bytes[k])?.entry_count(),
            bytes[k].len(),
            p[k] * 1e9,
            m[k] * 1e9,
            path.display()
        );
    }
    if paths.len() == 3 {
        // Same byte size, 10 vs 100,000 files: isolates the file count
        // from the page-fault cost of a larger mapping.
        println!("ratio_mmap_open_same_size={:.2}", m[1] / m[2]);
    }
    println!("ratio_parse={:.2}", p[1] / p[0]);
    println!("ratio_mmap_open={:.2}", m[1] / m[0]);
    Ok(())
}

#[cfg(not(all(feature = "write", feature = "mmap")))]
fn main() {
    eprintln!("open_cost needs the `write` and `mmap` features: --features cli");
    std::process::exit(2);
}
