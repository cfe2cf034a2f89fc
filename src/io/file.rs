//! File transport: [`FileSource`] serves a package file with positional
//! reads (no shared cursor, so one source serves many threads), and, with
//! feature `mmap`, `MappedSource` serves a memory-mapped package.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::io::RangeSource;
use crate::stream::{TransportError, TransportErrorKind};

/// A package file read with positional reads (`pread` on Unix,
/// `seek_read` on Windows, a locked cursor elsewhere).
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// use sft::stream::{SessionConfig, StreamSession};
/// use sft::io::{drive, RangeSource};
/// use sft::io::file::FileSource;
///
/// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let path = dir.path().join("app.sft");
/// sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("app.exe", vec![5u8; 100_000])?
///     .write_to_path(&path)?;
///
/// let source = FileSource::open(&path)?;
/// let mut session = StreamSession::new(SessionConfig::default());
/// let mut copy = Vec::new();
/// drive::drive(&mut session, &source, &mut copy)?;
/// assert_eq!(copy, std::fs::read(&path).map_err(|e| sft::Error::io("read", e))?);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct FileSource {
    #[cfg(any(unix, windows))]
    file: File,
    #[cfg(not(any(unix, windows)))]
    file: std::sync::Mutex<File>,
    path: PathBuf,
    /// The file's length when it was opened (0 if unknown): a read inside
    /// it that finds the end sooner means the file was cut since.
    len_at_open: u64,
}

impl FileSource {
    /// Open the file at `path` for reading.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path; [`Error::InvalidInput`] if it is not
    /// a regular file (a directory, say: see
    /// [`open_regular`](super::open_regular)).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = super::open_regular(path)?;
        Ok(Self::from_file(file, path))
    }

    /// Wrap an open file; `path` names it in errors.
    pub fn from_file(file: File, path: impl Into<PathBuf>) -> Self {
        let len_at_open = file.metadata().map_or(0, |m| m.len());
        FileSource {
            len_at_open,
            #[cfg(any(unix, windows))]
            file,
            #[cfg(not(any(unix, windows)))]
            file: std::sync::Mutex::new(file),
            path: path.into(),
        }
    }

    /// The path given at open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `e`, met reading `range` of this file, as a transport error.
    pub(crate) fn error(
        &self,
        e: io::Error,
        range: Option<core::ops::Range<u64>>,
    ) -> TransportError {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => TransportErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => TransportErrorKind::PermissionDenied,
            io::ErrorKind::TimedOut => TransportErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof => TransportErrorKind::RangeNotSatisfiable,
            _ => TransportErrorKind::Io,
        };
        let t = TransportError::new(kind, self.path.display().to_string()).with_source(e);
        match range {
            Some(r) => t.with_range(r),
            None => t,
        }
    }

    #[cfg(unix)]
    fn pread(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    #[cfg(windows)]
    fn pread(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(&self.file, buf, offset)
    }

    #[cfg(not(any(unix, windows)))]
    fn pread(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = self
            .file
            .lock()
            .map_err(|_| io::Error::other("file lock poisoned"))?;
        f.seek(SeekFrom::Start(offset))?;
        f.read(buf)
    }
}

impl RangeSource for FileSource {
    fn len(&self) -> Result<u64, TransportError> {
        #[cfg(any(unix, windows))]
        let meta = self.file.metadata();
        #[cfg(not(any(unix, windows)))]
        let meta = self
            .file
            .lock()
            .map_err(|_| io::Error::other("file lock poisoned"))
            .and_then(|f| f.metadata());
        meta.map(|m| m.len()).map_err(|e| self.error(e, None))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        loop {
            match self.pread(offset, buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(e, Some(offset..offset + buf.len() as u64))),
            }
        }
    }

    /// As the default, except that a file found shorter than it was when
    /// opened fails with [`TransportErrorKind::Changed`] (it was cut or
    /// replaced during the read), not as a range past its end.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        let mut done = 0usize;
        let end = offset.saturating_add(buf.len() as u64);
        while done < buf.len() {
            let at = offset + done as u64;
            let n = self.read_at(at, &mut buf[done..])?;
            if n == 0 {
                let (kind, what) = if end <= self.len_at_open {
                    (
                        TransportErrorKind::Changed,
                        format!("now ends at {at}, before {end} (changed during the read)"),
                    )
                } else {
                    (
                        TransportErrorKind::RangeNotSatisfiable,
                        format!("ends at {at}"),
                    )
                };
                return Err(
                    TransportError::new(kind, format!("{}: {what}", self.path.display()))
                        .with_range(offset..end),
                );
            }
            done += n;
        }
        Ok(())
    }

    /// True: `pread` in pieces is the best way to read a file.
    fn streaming_reads(&self) -> bool {
        true
    }

    /// Large requests, many in flight: a local file has no round trip, and
    /// long requests keep copies going while a checkpoint syncs the cache.
    fn preferred_limits(&self) -> Option<crate::stream::SchedulerLimits> {
        Some(crate::stream::SchedulerLimits {
            max_request_bytes: 8 << 20,
            fb1_request_bytes: 8 << 20,
            max_in_flight_requests: 8,
            max_in_flight_bytes: 64 << 20,
        })
    }

    fn endpoint(&self) -> String {
        self.path.display().to_string()
    }
}

/// A memory-mapped package served without copying: chunks handed to the
/// session are slices of the map.
#[cfg(feature = "mmap")]
#[derive(Debug)]
pub struct MappedSource {
    map: crate::MappedPackage,
    name: String,
}

#[cfg(feature = "mmap")]
impl MappedSource {
    /// Serve an already mapped package; `name` names it in errors.
    pub fn new(map: crate::MappedPackage, name: impl Into<String>) -> Self {
        MappedSource {
            map,
            name: name.into(),
        }
    }

    /// The mapped package.
    pub fn get_ref(&self) -> &crate::MappedPackage {
        &self.map
    }

    /// The mapped package back.
    pub fn into_inner(self) -> crate::MappedPackage {
        self.map
    }
}

#[cfg(feature = "mmap")]
impl RangeSource for MappedSource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.map.package().as_bytes().len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.map.package().as_bytes().read_at(offset, buf)
    }
    fn read_ranges(
        &self,
        ranges: &[core::ops::Range<u64>],
        sink: &mut crate::io::ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        self.map
            .package()
            .as_bytes()
            .read_ranges(ranges, sink)
            .map_err(|e| e.summary(&self.name))
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self.map.package().as_bytes())
    }
    fn endpoint(&self) -> String {
        self.name.clone()
    }
}
