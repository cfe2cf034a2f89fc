//! Stream every file of a package through the reader, as fast as it goes.
//!
//! ```text
//! cargo run --release --features cli --example read_all -- PKG [--sink stdout|touch] [-v]
//! ```
//!
//! The package is memory-mapped ([`sft::MappedPackage`]), every entry is
//! visited in path order and every file streamed through
//! [`sft::Package::chunks`]: each block's CRC-32 is checked before its
//! bytes are yielded (stored blocks are zero-copy slices of the map; zlib
//! blocks are inflated once).
//!
//! Sinks (what is done with the bytes):
//! - `stdout` (default): the concatenated file data is written to standard
//!   output with vectored writes of up to 256 KiB, straight from the map
//!   (no copy). With `> /dev/null` this is the honest peer of
//!   `cat PKG > /dev/null`: `cat` copies every byte out of the page cache,
//!   this reads every byte once (for its CRC) and issues the same kind of
//!   writes. `| wc -c` gives the total file size.
//! - `touch`: no output; every byte is folded into a checksum (read once
//!   more after the CRC), printed with `-v`.
//!
//! `-v` prints files, bytes, time and throughput to standard error.

#[cfg(feature = "mmap")]
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("read_all: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "mmap")]
fn run() -> Result<(), Box<dyn std::error::Error>> {
    use std::io::{IoSlice, Write};
    use std::time::Instant;

    const FLUSH_AT: usize = 256 << 10;
    const MAX_SLICES: usize = 512;

    let mut path = None;
    let mut sink = "stdout".to_owned();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sink" => sink = args.next().ok_or("--sink needs stdout or touch")?,
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => {
                eprintln!("usage: read_all PKG [--sink stdout|touch] [-v]");
                return Ok(());
            }
            _ if path.is_none() => path = Some(a),
            _ => return Err(format!("unexpected argument `{a}`").into()),
        }
    }
    let path = path.ok_or("usage: read_all PKG [--sink stdout|touch] [-v]")?;
    let to_stdout = match sink.as_str() {
        "stdout" => true,
        "touch" => false,
        other => return Err(format!("unknown sink `{other}`").into()),
    };

    let start = Instant::now();
    // SAFETY: benchmark input; nothing modifies the package while it runs.
    let mapped = unsafe { sft::MappedPackage::open(&path)? };
    mapped.advise_sequential();
    let pkg = mapped.package();

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut pending: Vec<sft::read::Chunk<'_>> = Vec::with_capacity(MAX_SLICES);
    let mut pending_len = 0usize;
    let flush = |pending: &mut Vec<sft::read::Chunk<'_>>,
                 out: &mut std::io::StdoutLock<'_>|
     -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = pending.iter().map(|c| IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = out.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        pending.clear();
        Ok(())
    };

    let (mut files, mut bytes, mut fold) = (0u64, 0u64, 0u64);
    for entry in pkg.entries() {
        let entry = entry?;
        if !entry.is_file() {
            continue;
        }
        files += 1;
        for chunk in pkg.chunks(&entry) {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            if to_stdout {
                pending_len += chunk.len();
                pending.push(chunk);
                if pending_len >= FLUSH_AT || pending.len() == MAX_SLICES {
                    flush(&mut pending, &mut out)?;
                    pending_len = 0;
                }
            } else {
                fold = fold_bytes(fold, &chunk);
            }
        }
    }
    if to_stdout {
        flush(&mut pending, &mut out)?;
        out.flush()?;
    }
    let secs = start.elapsed().as_secs_f64();
    if verbose {
        eprintln!(
            "read_all: {files} files, {bytes} bytes in {secs:.3} s ({:.0} MiB/s), sink {sink}{}",
            bytes as f64 / secs / (1024.0 * 1024.0),
            if to_stdout {
                String::new()
            } else {
                format!(", fold {fold:016x}")
            }
        );
    }
    Ok(())
}

/// Fold every byte into a checksum, eight at a time, so the optimizer
/// cannot skip reading them.
#[cfg(feature = "mmap")]
fn fold_bytes(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        acc = acc.rotate_left(5) ^ u64::from_le_bytes(b);
    }
    for &b in words.remainder() {
        acc = acc.rotate_left(5) ^ u64::from(b);
    }
    std::hint::black_box(acc)
}

#[cfg(not(feature = "mmap"))]
fn main() {
    eprintln!("read_all needs the `mmap` feature: --features cli (or mmap)");
    std::process::exit(2);
}
