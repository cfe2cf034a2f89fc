//! The I/O tier: the [`RangeSource`] contract every transport implements,
//! the one driver that runs a [`StreamSession`](crate::StreamSession) over
//! a source ([`drive`]), and the local adapters: positional file reads,
//! memory maps (the only `unsafe`), rate shaping and pipelining.
//!
//! ```text
//!   RangeSource ──bytes──▶ drive ──on_data──▶ StreamSession ──▶ BlockSink
//!   (transport)  ◀─ranges── (the one loop) ◀─poll_fetch─  (no I/O)   (cache, memory)
//! ```
//!
//! Everything here depends on the core tiers only; network protocols live
//! in `sft::net` (clients) and `sft::serve` (servers).

pub mod atomic;
pub mod drive;
pub mod source;

#[cfg(any(feature = "http-server", feature = "rtsp", feature = "rtsp-server"))]
pub(crate) mod conn;

#[cfg(feature = "file")]
pub mod file;

#[cfg(feature = "mmap")]
pub mod mmap;
pub mod mountpoint;

pub mod package_file;
pub mod pipelined;
pub mod pos;
pub mod shaped;

pub use source::{ChunkSink, RangeSource, TransportError, TransportErrorKind};

/// Open `path` for reading as a package file: it must be a regular file
/// (or a link to one). A directory, FIFO, socket or device is refused at
/// once with an error that says what it is (`` `x` is a directory ``),
/// instead of failing later with a confusing read or map error (a
/// directory reads as `EISDIR`, maps as "No such device") that a fetch
/// would retry.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let e = sft::io::open_regular(dir.path()).unwrap_err();
/// assert!(e.to_string().ends_with("is a directory, not a package file"), "{e}");
/// ```
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) naming the path when the open fails;
/// [`Error::InvalidInput`](crate::Error::InvalidInput) naming it when it
/// is not a regular file.
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File, crate::Error> {
    // A "path" may be a URL given where a file was expected.
    let shown = crate::redact_url(&path.display().to_string());
    let file =
        std::fs::File::open(path).map_err(|e| crate::Error::io(format!("opening `{shown}`"), e))?;
    let meta = file
        .metadata()
        .map_err(|e| crate::Error::io(format!("reading `{shown}`"), e))?;
    if meta.is_file() {
        return Ok(file);
    }
    let what = if meta.is_dir() {
        "a directory"
    } else {
        special_kind(&meta)
    };
    Err(crate::Error::InvalidInput(format!(
        "`{shown}` is {what}, not a package file"
    )))
}

/// What a non-regular, non-directory file is, for [`open_regular`].
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    let _ = meta;
    "not a regular file"
}

/// [`Workers`](crate::read::Workers) on scoped OS threads: what the I/O
/// tier lends the core for parallel checks (`Package::verify_with`).
#[derive(Debug, Clone, Copy)]
pub struct Threads(pub usize);

impl Threads {
    /// As many threads as the machine has cores.
    pub fn available() -> Self {
        Threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl crate::read::Workers for Threads {
    fn run(&self, max_useful: u64, job: &(dyn Fn() + Sync)) {
        let n = (self.0 as u64).min(max_useful).max(1);
        if n == 1 {
            return job();
        }
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(job);
            }
        });
    }
}
