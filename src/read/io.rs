//! [`FileReader`]: `std::io::Read + Seek` over one file of a package.

use std::io::{self, Read, Seek, SeekFrom};

use super::{Entry, Package, ReadState};

/// A `Read + Seek` view of one file, from [`Package::reader`].
///
/// Keeps the last decoded block, so reads of any size decode (and verify)
/// each block once while moving forward.
///
/// ```
/// # fn main() -> sft::Result<()> {
/// use std::io::{Read, Seek, SeekFrom};
/// let bytes = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("data.bin", (0..=255u8).cycle().take(200_000).collect::<Vec<u8>>())?
///     .write_to_vec()?;
/// let pkg = sft::Package::parse(&bytes)?;
/// let mut r = pkg.reader(pkg.entry("data.bin")?)?;
/// r.seek(SeekFrom::Start(70_000))?;
/// let mut buf = [0u8; 4];
/// r.read_exact(&mut buf)?;
/// assert_eq!(buf, [(70_000 % 256) as u8, 113, 114, 115]);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FileReader<'data> {
    pkg: Package<'data>,
    entry: Entry<'data>,
    pos: u64,
    state: ReadState<'data>,
}

impl<'data> FileReader<'data> {
    pub(crate) fn new(pkg: Package<'data>, entry: Entry<'data>) -> Self {
        FileReader {
            pkg,
            entry,
            pos: 0,
            state: ReadState::default(),
        }
    }

    /// Switch to another file of the same package, at position 0, keeping
    /// the last decoded block (so small files sharing a block are decoded
    /// once when read in storage order).
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a directory.
    pub fn reopen(&mut self, entry: Entry<'data>) -> crate::Result<()> {
        entry.require_file()?;
        self.entry = entry;
        self.pos = 0;
        Ok(())
    }

    /// The entry being read.
    pub fn entry(&self) -> &Entry<'data> {
        &self.entry
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .pkg
            .read_at_with(&self.entry, self.pos, buf, &mut self.state)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for FileReader<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.pos = super::seek_position(self.pos, self.entry.size(), pos)?;
        Ok(self.pos)
    }
}
