//! Reading just a remote package's prologue (header, sections, directory),
//! for `sft info` and `sft ls` of a URL.
//!
//! [`probe`] opens any source [`open_source_with`] knows (`smb://` and UNC
//! paths, `http(s)://`, `rtsp(s)://`, local paths), reads the fixed
//! header, learns the prologue's length from it, checks that length
//! against the source's and a limit before allocating anything, reads
//! exactly the rest of the prologue, and validates it all
//! ([`Prologue::parse`] checks every section's CRC). No block data is
//! read: [`Probe::bytes_read`] says how much was.
//!
//! ```
//! # #[cfg(feature = "write")]
//! # fn main() -> sft::Result<()> {
//! use sft::fetch::probe::probe_source;
//!
//! let package = sft::write::PackageBuilder::new(sft::WriteOptions::default().name("Demo"))
//!     .add_bytes("app.exe", vec![7u8; 300_000])?
//!     .write_to_vec()?;
//! let p = probe_source(&package)?;
//! let prologue = p.prologue()?;
//! assert_eq!(prologue.metadata().name(), "Demo");
//! assert_eq!(p.bytes_read(), prologue.header().prologue_len);
//! assert_eq!(p.package_len(), package.len() as u64);
//! # Ok(()) }
//! # #[cfg(not(feature = "write"))]
//! # fn main() {}
//! ```

use crate::error::Error;
use crate::fetch::{SourceOptions, open_source_with};
use crate::io::RangeSource;
use crate::read::Prologue;

/// The largest prologue [`probe`] reads (256 MiB, the stream session's
/// default limit): a cap on what a hostile header can make it allocate.
pub const MAX_PROLOGUE_BYTES: u64 = crate::io::package_file::DEFAULT_MAX_PROLOGUE_BYTES;

/// A package's prologue read from a source on its own, with where it came
/// from and how many bytes reading it took.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("a.txt", b"hello".to_vec())?
///     .write_to_vec()?;
/// let p = sft::fetch::probe::probe_source(&package)?;
/// let names: Vec<String> = p
///     .prologue()?
///     .entries()
///     .map(|e| e.map(|e| e.path().to_owned()))
///     .collect::<sft::Result<_>>()?;
/// assert_eq!(names, ["a.txt"]);
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone)]
pub struct Probe {
    bytes: Vec<u8>,
    /// What [`Prologue::parse`] validated, so views cost nothing.
    layout: crate::format::layout::Layout,
    package_len: u64,
    bytes_read: u64,
    endpoint: String,
}

impl Probe {
    /// The validated prologue: header, metadata, directory entries and
    /// block index (see [`Prologue`]).
    ///
    /// # Errors
    /// None: the bytes were validated by [`probe`] (the `Result` is kept
    /// for callers written against it); the view is O(1).
    pub fn prologue(&self) -> Result<Prologue<'_>, Error> {
        Ok(Prologue::from_checked(&self.bytes, self.layout))
    }

    /// The prologue's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole package's length in bytes (prologue and data), as the
    /// header states it and the source confirmed.
    pub fn package_len(&self) -> u64 {
        self.package_len
    }

    /// Bytes read from the source: the prologue's length, nothing more.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The source, for messages ([`RangeSource::endpoint`]: no
    /// credentials).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// Open `spec` with `options` and read its prologue; see the
/// [module docs](self).
///
/// ```no_run
/// # fn main() -> sft::Result<()> {
/// use sft::fetch::SourceOptions;
///
/// let p = sft::fetch::probe::probe("https://cdn.example/apps/word.sft", &SourceOptions::default())?;
/// println!("{} ({} bytes)", p.prologue()?.metadata().name(), p.package_len());
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`open_source_with`]; as [`probe_source`].
pub fn probe(spec: &str, options: &SourceOptions) -> Result<Probe, Error> {
    let source = open_source_with(spec, options)?;
    probe_source(&*source)
}

/// Read the prologue of the package `source` serves: the header, then
/// exactly the rest of the prologue, validated.
///
/// ```
/// # #[cfg(feature = "write")]
/// # fn main() -> sft::Result<()> {
/// let package = sft::write::PackageBuilder::new(sft::WriteOptions::default())
///     .add_bytes("a.bin", vec![1u8; 100_000])?
///     .write_to_vec()?;
/// // A truncated copy: the header says more than the source holds.
/// let cut = package[..package.len() - 10].to_vec();
/// assert!(sft::fetch::probe::probe_source(&cut).is_err());
/// # Ok(()) }
/// # #[cfg(not(feature = "write"))]
/// # fn main() {}
/// ```
///
/// # Errors
/// [`Error::Transport`] if reading fails; [`Error::Format`],
/// [`Error::Integrity`] or [`Error::Unsupported`] for a header or
/// prologue that does not validate, a header that does not fit in
/// the source, or a package length other than the source's;
/// [`Error::InvalidInput`] for a prologue over [`MAX_PROLOGUE_BYTES`].
pub fn probe_source(source: &dyn RangeSource) -> Result<Probe, Error> {
    let raw = crate::io::package_file::read_prologue(source, MAX_PROLOGUE_BYTES)?;
    let layout = Prologue::parse(&raw.bytes)?.layout();
    Ok(Probe {
        layout,
        bytes: raw.bytes,
        package_len: raw.package_len,
        bytes_read: raw.bytes_read,
        endpoint: source.endpoint(),
    })
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;
    use crate::format::{HEADER_LEN, Header};

    fn package() -> Vec<u8> {
        let mut b = crate::write::PackageBuilder::new(crate::WriteOptions::default().name("P"));
        b.add_bytes("dir/a.bin", vec![3u8; 200_000]).unwrap();
        b.add_bytes("b.txt", b"hello".to_vec()).unwrap();
        b.write_to_vec().unwrap()
    }

    #[test]
    fn reads_exactly_the_prologue() {
        let pkg = package();
        let p = probe_source(&pkg).unwrap();
        let plen = Header::parse(&pkg).unwrap().prologue_len;
        assert_eq!(p.bytes_read(), plen);
        assert_eq!(p.as_bytes(), &pkg[..plen as usize]);
        assert_eq!(p.package_len(), pkg.len() as u64);
        assert_eq!(p.prologue().unwrap().entry_count(), 3);
    }

    #[test]
    fn bad_sources_are_errors_not_panics() {
        let pkg = package();
        // Too short for a header, truncated, too long.
        assert!(probe_source(&pkg[..100].to_vec()).is_err());
        assert!(probe_source(&pkg[..pkg.len() - 1].to_vec()).is_err());
        let mut long = pkg.clone();
        long.push(0);
        assert!(probe_source(&long).is_err());
        // A damaged prologue byte (past the header) fails its CRC.
        let mut bad = pkg.clone();
        bad[200] ^= 0xff;
        assert!(probe_source(&bad).is_err());
        // Every single-byte corruption of the header: an error or the
        // same package, never a panic.
        for i in 0..HEADER_LEN {
            let mut h = pkg.clone();
            h[i] ^= 0x5a;
            let _ = probe_source(&h);
        }
    }
}
