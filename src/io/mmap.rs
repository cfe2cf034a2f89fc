//! Memory-mapped packages: the one module allowed to use `unsafe`.
#![allow(unsafe_code)]

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::Error;
use crate::format::layout::Layout;
use crate::read::Package;

/// A package file mapped into memory, read without copying.
///
/// ```
/// # fn main() -> sft::Result<()> {
/// let dir = tempfile::tempdir().map_err(|e| sft::Error::io("tempdir", e))?;
/// let path = dir.path().join("demo.sft");
/// sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("a.txt", b"mapped".to_vec())?
///     .write_to_path(&path)?;
/// // SAFETY: the file is ours and nothing modifies it while mapped.
/// let mapped = unsafe { sft::MappedPackage::open(&path)? };
/// let pkg = mapped.package();
/// assert_eq!(pkg.read_file(&pkg.entry("a.txt")?)?, b"mapped");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MappedPackage {
    map: Mmap,
    layout: Layout,
}

impl MappedPackage {
    /// Map and parse the package at `path`.
    ///
    /// # Safety
    /// The caller promises that the file is not modified or truncated while
    /// the map lives. Another process shrinking the file makes reads fault
    /// (SIGBUS); changing it in place makes data change under the reader,
    /// which CRC checks catch for blocks already being decoded but not in
    /// general. Tools that accept this risk, as ripgrep does, call this;
    /// others read the file into memory and use [`Package::parse`].
    ///
    /// # Errors
    /// [`Error::Io`] naming the path if it cannot be opened or mapped;
    /// otherwise as [`Package::parse`].
    pub unsafe fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = super::open_regular(path)?;
        // SAFETY: the caller upholds this function's contract that the file
        // is neither modified nor truncated while mapped.
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::io(format!("mapping `{}`", path.display()), e))?;
        let layout = Package::parse(&map)?.layout();
        Ok(MappedPackage { map, layout })
    }

    /// The parsed package, borrowing the map.
    pub fn package(&self) -> Package<'_> {
        Package::from_layout(&self.map, self.layout)
    }

    /// Advise the kernel that the whole file will be read in order.
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        {
            let _ = self.map.advise(memmap2::Advice::Sequential);
        }
    }
}

/// Any file mapped read-only: the building block for zero-copy reads of
/// files that are not (yet) whole packages, such as a cache file being
/// filled, whose bytes are checked in place.
///
/// ```
/// # fn main() -> sft::Result<()> {
/// use std::io::Write;
/// let mut f = tempfile::tempfile().map_err(|e| sft::Error::io("tempfile", e))?;
/// f.write_all(b"in place").map_err(|e| sft::Error::io("write", e))?;
/// // SAFETY: the file is private to this example and not truncated while mapped.
/// let map = unsafe { sft::io::mmap::MappedFile::map(&f)? };
/// assert_eq!(map.as_bytes(), b"in place");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    /// Map the whole of `file` (its length now) read-only.
    ///
    /// # Safety
    /// The caller promises that the file is not truncated below its
    /// current length while the map lives (that would make reads fault
    /// with SIGBUS), and that no range is written while bytes of it read
    /// through the map are in use. Writing *other* ranges through other
    /// handles is how the map is meant to be used: it shares the page
    /// cache, so bytes checked through it are the bytes in the file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be mapped.
    pub unsafe fn map(file: &File) -> Result<Self, Error> {
        // SAFETY: the caller upholds the contract above: the file keeps at
        // least its current length while mapped.
        let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io("mapping a file", e))?;
        Ok(MappedFile { map })
    }

    /// The mapped bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }

    /// Tell the kernel the mapped range will be read soon.
    pub fn will_need(&self, offset: usize, len: usize) {
        #[cfg(unix)]
        {
            let _ = self
                .map
                .advise_range(memmap2::Advice::WillNeed, offset, len);
        }
    }
}
