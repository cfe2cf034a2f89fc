//! Stream every file of a package through the reader, as fast as it goes.
//!
//! ```text
//! cargo run --release --features cli --example read_all -- PKG [--sink stdout|touch] [--mode chunks|chunks-per-file|blocks] [-v]
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
//! Modes (how files are read):
//! - `chunks` (default): one `Package::chunks` iterator, moved from file to
//!   file with `Chunks::restart`, so a block shared by several small files
//!   is CRC-checked (and, if zlib, inflated) once.
//! - `chunks-per-file`: a new `Package::chunks(&entry)` for each file. Each
//!   starts with an empty block cache, so a shared block is checked once
//!   per file (what `-v` counts).
//! - `blocks`: the same stream built from public block-level calls
//!   (`BlockIndex::locate`, `Package::block`, `Block::decode`) with one
//!   cache kept across files, so every block is checked and decoded once.
//!   This is what `chunks` would cost with a cache shared between files.
//!
//! `-v` prints files, bytes, time and throughput to standard error, and
//! how many (file, block) visits the chunks mode makes against the number
//! of blocks (computed in a separate, untimed pass).

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
    use std::borrow::Cow;
    use std::io::Write;
    use std::rc::Rc;
    use std::time::Instant;

    let mut path = None;
    let mut sink_name = "stdout".to_owned();
    let mut verbose = false;
    let mut blocks_mode = false;
    let mut per_file = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--sink" => sink_name = args.next().ok_or("--sink needs stdout or touch")?,
            "-v" | "--verbose" => verbose = true,
            "--mode" => {
                (blocks_mode, per_file) = match args.next().as_deref() {
                    Some("chunks") => (false, false),
                    Some("chunks-per-file") => (false, true),
                    Some("blocks") => (true, false),
                    _ => return Err("--mode needs chunks, chunks-per-file or blocks".into()),
                }
            }
            "-h" | "--help" => {
                eprintln!(
                    "usage: read_all PKG [--sink stdout|touch] [--mode chunks|chunks-per-file|blocks] [-v]"
                );
                return Ok(());
            }
            _ if path.is_none() => path = Some(a),
            _ => return Err(format!("unexpected argument `{a}`").into()),
        }
    }
    let path = path.ok_or("usage: read_all PKG [--sink stdout|touch] [-v]")?;
    let to_stdout = match sink_name.as_str() {
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
    let mut sink = Sink {
        out: stdout.lock(),
        to_stdout,
        pending: Vec::with_capacity(MAX_SLICES),
        pending_len: 0,
        bytes: 0,
        fold: 0,
    };
    let mut files = 0u64;
    let index = pkg.index();
    // blocks mode: the last block decoded, kept across files.
    let mut last: Option<(sft::BlockId, Rc<Cow<'_, [u8]>>)> = None;
    // chunks mode: one iterator moved from file to file.
    let mut shared: Option<sft::read::Chunks<'_>> = None;
    for entry in pkg.entries() {
        let entry = entry?;
        if !entry.is_file() {
            continue;
        }
        files += 1;
        if per_file {
            for chunk in pkg.chunks(&entry) {
                sink.push(Piece::Chunk(chunk?))?;
            }
            continue;
        }
        if !blocks_mode {
            let chunks = match &mut shared {
                Some(c) => {
                    c.restart(&entry);
                    c
                }
                None => shared.insert(pkg.chunks(&entry)),
            };
            for chunk in chunks.by_ref() {
                sink.push(Piece::Chunk(chunk?))?;
            }
            continue;
        }
        for ext in entry.extents() {
            let (mut at, end) = (ext.logical_offset, ext.logical_offset + ext.length);
            while at < end {
                let (id, within) = index.locate(at).ok_or("extent beyond the data")?;
                let data = match &last {
                    Some((lid, d)) if *lid == id => Rc::clone(d),
                    _ => {
                        let d = Rc::new(pkg.block(id)?.decode()?);
                        last = Some((id, Rc::clone(&d)));
                        d
                    }
                };
                let start = within as usize;
                let n = ((data.len() - start) as u64).min(end - at) as usize;
                sink.push(Piece::Block(data, start..start + n))?;
                at += n as u64;
            }
        }
    }
    sink.flush()?;
    sink.out.flush()?;
    let (bytes, fold) = (sink.bytes, sink.fold);
    let secs = start.elapsed().as_secs_f64();
    if verbose {
        // Untimed: how often chunks-per-file mode checks a block.
        let (mut visits, mut visited_bytes) = (0u64, 0u64);
        for entry in pkg.entries() {
            for ext in entry?.extents() {
                let ids =
                    index.blocks_for_range(ext.logical_offset..ext.logical_offset + ext.length);
                for id in ids {
                    visits += 1;
                    visited_bytes += u64::from(index.get(sft::BlockId(id))?.stored_len);
                }
            }
        }
        let stored: u64 = pkg.header().data_len;
        eprintln!(
            "read_all: {} blocks ({stored} stored bytes); chunks-per-file mode visits {visits} (file, block) pairs, \
             checking {visited_bytes} stored bytes ({:.2}x the data)",
            index.len(),
            visited_bytes as f64 / stored.max(1) as f64
        );
        eprintln!(
            "read_all: {files} files, {bytes} bytes in {secs:.3} s ({:.0} MiB/s), sink {sink_name}, mode {}{}",
            bytes as f64 / secs / (1024.0 * 1024.0),
            if blocks_mode {
                "blocks"
            } else if per_file {
                "chunks-per-file"
            } else {
                "chunks"
            },
            if to_stdout {
                String::new()
            } else {
                format!(", fold {fold:016x}")
            }
        );
    }
    Ok(())
}

/// A piece of file data: a reader chunk, or a range of a decoded block.
#[cfg(feature = "mmap")]
enum Piece<'a> {
    Chunk(sft::read::Chunk<'a>),
    Block(
        std::rc::Rc<std::borrow::Cow<'a, [u8]>>,
        std::ops::Range<usize>,
    ),
}

#[cfg(feature = "mmap")]
impl std::ops::Deref for Piece<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Piece::Chunk(c) => c,
            Piece::Block(b, r) => &b[r.clone()],
        }
    }
}

#[cfg(feature = "mmap")]
const FLUSH_AT: usize = 256 << 10;
#[cfg(feature = "mmap")]
const MAX_SLICES: usize = 512;

/// Where the bytes go: gathered into vectored writes of up to 256 KiB to
/// standard output, or folded into a checksum.
#[cfg(feature = "mmap")]
struct Sink<'a, W: std::io::Write> {
    out: W,
    to_stdout: bool,
    pending: Vec<Piece<'a>>,
    pending_len: usize,
    bytes: u64,
    fold: u64,
}

#[cfg(feature = "mmap")]
impl<'a, W: std::io::Write> Sink<'a, W> {
    fn push(&mut self, piece: Piece<'a>) -> std::io::Result<()> {
        self.bytes += piece.len() as u64;
        if !self.to_stdout {
            self.fold = fold_bytes(self.fold, &piece);
            return Ok(());
        }
        self.pending_len += piece.len();
        self.pending.push(piece);
        if self.pending_len >= FLUSH_AT || self.pending.len() == MAX_SLICES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        use std::io::IoSlice;
        let mut slices: Vec<IoSlice<'_>> = self.pending.iter().map(|c| IoSlice::new(c)).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = self.out.write_vectored(rest)?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        self.pending.clear();
        self.pending_len = 0;
        Ok(())
    }
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
