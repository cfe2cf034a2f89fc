//! [`WriteOptions`]: how a package is cut, compressed and labelled.

use crate::error::Error;
use crate::format::guid::Guid;

/// Block size of a package: fixed per package, chosen at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BlockSize {
    /// 4 KiB: finest streaming granularity, largest index.
    K4,
    /// 16 KiB.
    K16,
    /// 32 KiB.
    K32,
    /// 64 KiB (default): best compression and fewest requests.
    #[default]
    K64,
}

impl BlockSize {
    /// Size in bytes.
    pub fn bytes(self) -> u32 {
        match self {
            BlockSize::K4 => 4096,
            BlockSize::K16 => 16384,
            BlockSize::K32 => 32768,
            BlockSize::K64 => 65536,
        }
    }

    /// From a size in bytes.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless 4096, 16384, 32768 or 65536.
    pub fn from_bytes(n: u64) -> Result<Self, Error> {
        match n {
            4096 => Ok(BlockSize::K4),
            16384 => Ok(BlockSize::K16),
            32768 => Ok(BlockSize::K32),
            65536 => Ok(BlockSize::K64),
            _ => Err(Error::invalid(format!(
                "block size {n}: must be 4k, 16k, 32k or 64k"
            ))),
        }
    }
}

impl core::str::FromStr for BlockSize {
    type Err = Error;
    /// Parse `4k`, `16k`, `32k`, `64k` (any case) or a byte count.
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        let n = match t.strip_suffix('k') {
            Some(k) => k.parse::<u64>().ok().map(|k| k * 1024),
            None => t.parse::<u64>().ok(),
        };
        n.ok_or_else(|| Error::invalid(format!("block size `{s}`: must be 4k, 16k, 32k or 64k")))
            .and_then(Self::from_bytes)
    }
}

/// Compression applied to each block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compression {
    /// Store every block as is (App-V's default, "Not Compressed").
    None,
    /// zlib at a level 0–9; a block that does not shrink is stored.
    Zlib(u32),
    /// Zstandard (codec 2, format v1.1) at a level 1–22 (feature `zstd`
    /// to write it); a block that does not shrink is stored. Decodes
    /// several times faster than zlib; readers need feature `zstd`.
    Zstd(i32),
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zlib(6)
    }
}

/// Options for [`crate::write::PackageBuilder`]: by-value setters.
///
/// ```
/// use sft::{WriteOptions, write::{BlockSize, Compression}};
/// let opts = WriteOptions::default()
///     .name("Office")
///     .version(2)
///     .block_size(BlockSize::K32)
///     .compression(Compression::Zlib(9));
/// assert_eq!(opts.get_block_size(), BlockSize::K32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteOptions {
    pub(crate) block_size: BlockSize,
    pub(crate) compression: Compression,
    pub(crate) name: Option<String>,
    pub(crate) root: Option<String>,
    pub(crate) comment: String,
    pub(crate) version: Option<u32>,
    pub(crate) package_guid: Option<Guid>,
    pub(crate) version_guid: Option<Guid>,
    pub(crate) created: Option<(i64, u32)>,
    pub(crate) full_load: bool,
    pub(crate) threads: Option<usize>,
    /// Leave out the block hash section (write a v1.0 package).
    pub(crate) no_block_hashes: bool,
}

impl WriteOptions {
    /// Write the block hash section (default on): a BLAKE3 hash of every
    /// block's stored bytes, which makes the package v1.1 and gives it a
    /// content identity that signatures and delta fetches build on
    /// (`docs/FORMAT.md` §8a). Off writes a v1.0 package, byte for byte
    /// what earlier versions of this crate wrote.
    pub fn block_hashes(mut self, on: bool) -> Self {
        self.no_block_hashes = !on;
        self
    }
    /// Whether the block hash section is written.
    pub fn has_block_hashes(&self) -> bool {
        !self.no_block_hashes
    }
    /// Block size (default 64 KiB).
    pub fn block_size(mut self, b: BlockSize) -> Self {
        self.block_size = b;
        self
    }
    /// The block size set.
    pub fn get_block_size(&self) -> BlockSize {
        self.block_size
    }
    /// Compression (default zlib level 6).
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    /// Package name (default `package`).
    pub fn name(mut self, n: impl Into<String>) -> Self {
        self.name = Some(n.into());
        self
    }
    /// Root directory name (default: the package name).
    pub fn root(mut self, r: impl Into<String>) -> Self {
        self.root = Some(r.into());
        self
    }
    /// Comment, published as the OSD ABSTRACT.
    pub fn comment(mut self, c: impl Into<String>) -> Self {
        self.comment = c.into();
        self
    }
    /// Package version number (default 1).
    pub fn version(mut self, v: u32) -> Self {
        self.version = Some(v);
        self
    }
    /// Package GUID (default: derived from the name, so rebuilds agree).
    pub fn package_guid(mut self, g: Guid) -> Self {
        self.package_guid = Some(g);
        self
    }
    /// Version GUID (default: derived from the package GUID, version and
    /// content, so the same input gives the same GUID).
    pub fn version_guid(mut self, g: Guid) -> Self {
        self.version_guid = Some(g);
        self
    }
    /// Creation time in seconds and nanoseconds since the Unix epoch
    /// (default: the newest modification time among the inputs, so the
    /// output is reproducible).
    pub fn created(mut self, secs: i64, nanos: u32) -> Self {
        self.created = Some((secs, nanos.min(999_999_999)));
        self
    }
    /// Put all data in FB1, like the Sequencer's `/FULLLOAD`.
    pub fn full_load(mut self, on: bool) -> Self {
        self.full_load = on;
        self
    }
    /// Worker threads for compression (default: all cores).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }
}
