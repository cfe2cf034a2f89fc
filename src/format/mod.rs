//! The raw on-disk layout of SFT v1: constants, field offsets and
//! fixed-size record types, with parsing and encoding of each.
//!
//! This layer does no I/O and allocates nothing; its errors are the small
//! `Copy` [`FormatError`](crate::error::FormatError). `docs/FORMAT.md` is the normative specification;
//! the constants here are its tables in code, and each record type's docs
//! name the table it mirrors.
//!
//! ```text
//! offset 0                                         prologue_len          file end
//! | header | section table | metadata | entries | extents | names | index | FB1 blocks | FB2 blocks |
//! '------------------------ prologue --------------------------------------'------ data region ------'
//! ```

#[allow(unused_imports)]
use crate::prelude::*;

mod bytes;
pub mod errors;
pub mod guid;
pub(crate) mod layout;
mod records;

pub(crate) use bytes::{Fields, crc32_parts, put_i64, put_u16, put_u32, put_u64, slice_at};
pub use records::{
    BlockRecord, EntryKind, EntryRecord, ExtentRecord, HashSectionHeader, Header, MetadataRecord,
    SectionEntry, SectionKind,
};

use core::fmt;

/// The eight magic bytes at offset 0: `\x89 S F T \r \n \x1a \n`.
///
/// Like PNG's, the high first byte and the CR LF / SUB / LF tail detect
/// 7-bit transfers and newline translation.
pub const MAGIC: [u8; 8] = *b"\x89SFT\r\n\x1a\n";
/// The major version this crate reads and writes. Readers reject others.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this crate writes when a package has a block hash
/// section (v1.1, `docs/FORMAT.md` §8a); packages without one are written
/// as v1.0. Readers accept any minor.
pub const VERSION_MINOR: u16 = 1;
/// The minor version of a package with only the v1.0 sections.
pub const VERSION_MINOR_1_0: u16 = 0;
/// Length of one block hash (BLAKE3-256) in the block hash section.
pub const HASH_LEN: usize = 32;
/// The hash algorithm id of BLAKE3-256 in the block hash section (§8a).
pub const HASH_ALGORITHM_BLAKE3: u32 = 1;
/// Record size of the block hash section: its header record and each hash.
pub const HASH_RECORD_LEN: usize = 32;
/// Size of the v1 header in bytes; `header_len` may be larger in later minors.
pub const HEADER_LEN: usize = 128;
/// Size of one section table entry.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Fixed part of the metadata section in v1.
pub const METADATA_FIXED_LEN: usize = 128;
/// Size of one v1 directory entry record.
pub const ENTRY_RECORD_LEN: usize = 64;
/// Size of one extent record.
pub const EXTENT_RECORD_LEN: usize = 24;
/// Size of one v1 block index record.
pub const BLOCK_RECORD_LEN: usize = 32;
/// The most sections a table may list (a cap against hostile input).
pub const MAX_SECTIONS: u32 = 64;
/// The allowed block sizes: 4, 16, 32 and 64 KiB.
pub const BLOCK_SIZES: [u32; 4] = [4096, 16384, 32768, 65536];
/// Largest record stride a section may declare.
pub const MAX_RECORD_LEN: u32 = 4096;
/// Largest path length in bytes accepted in a directory entry.
pub const MAX_PATH_LEN: u32 = 4096;
/// Largest metadata section accepted (fixed part plus strings).
pub const MAX_METADATA_LEN: u64 = 1 << 20;

/// Section flag bit 0: a reader that does not know this section's kind
/// must refuse the package. Clear: the reader skips the section.
pub const SECTION_FLAG_REQUIRED: u32 = 1;

/// Entry attribute bit: read-only.
pub const ATTR_READ_ONLY: u8 = 1 << 0;
/// Entry attribute bit: hidden.
pub const ATTR_HIDDEN: u8 = 1 << 1;
/// Entry attribute bit: executable (restored as the Unix `x` bits).
pub const ATTR_EXECUTABLE: u8 = 1 << 2;
/// Entry attribute bit: system file (Windows `FILE_ATTRIBUTE_SYSTEM`).
pub const ATTR_SYSTEM: u8 = 1 << 3;
/// All attribute bits defined in v1.
pub const ATTR_ALL: u8 = ATTR_READ_ONLY | ATTR_HIDDEN | ATTR_EXECUTABLE | ATTR_SYSTEM;

/// A block's number: its position in the block index, which is also its
/// order in the data region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockId(pub u32);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {}", self.0)
    }
}

/// A package's content identity (format v1.1, `docs/FORMAT.md` §8a): the
/// BLAKE3 hash of its whole prologue. The prologue holds every block's
/// record and, in a v1.1 package, every block's BLAKE3 hash, so equal
/// identities mean equal packages byte for byte (for packages with a
/// block hash section; a v1.0 package's blocks are bound only by CRC-32).
/// Written `blake3:` and 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; HASH_LEN]);

impl ContentId {
    /// The identity of the prologue bytes `prologue` (exactly
    /// `prologue_len` bytes).
    pub fn of_prologue(prologue: &[u8]) -> Self {
        ContentId(*blake3::hash(prologue).as_bytes())
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("blake3:")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for ContentId {
    type Err = ContentIdError;
    /// Parse `blake3:` and 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, ContentIdError> {
        let hex = s.trim().strip_prefix("blake3:").ok_or(ContentIdError)?;
        if hex.len() != 2 * HASH_LEN || !hex.is_ascii() {
            return Err(ContentIdError);
        }
        let mut out = [0u8; HASH_LEN];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| ContentIdError)?;
        }
        Ok(ContentId(out))
    }
}

/// A string that is not `blake3:` followed by 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentIdError;

impl fmt::Display for ContentIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content identity is `blake3:` and 64 hex digits")
    }
}

impl core::error::Error for ContentIdError {}

/// Which feature block a block belongs to.
///
/// FB1 (primary) is what an application needs to launch and is stored as
/// one contiguous run at the front of the data region; FB2 (secondary) is
/// everything else, streamed on demand and in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeatureBlock {
    /// Feature block 1: launch-critical.
    Fb1 = 1,
    /// Feature block 2: the rest.
    Fb2 = 2,
}

impl FeatureBlock {
    /// Decode the on-disk byte (1 or 2).
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(FeatureBlock::Fb1),
            2 => Some(FeatureBlock::Fb2),
            _ => None,
        }
    }
}

impl fmt::Display for FeatureBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureBlock::Fb1 => f.write_str("FB1"),
            FeatureBlock::Fb2 => f.write_str("FB2"),
        }
    }
}

/// How a block's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// Codec 0: the stored bytes are the data.
    Stored,
    /// Codec 1: an RFC 1950 zlib stream that inflates to the data.
    Zlib,
    /// Codec 2: one Zstandard frame (RFC 8878) that decodes to the data
    /// (format v1.1; feature `zstd` to read or write it).
    Zstd,
}

impl Codec {
    /// Decode a codec id; unknown ids give `None`.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Codec::Stored),
            1 => Some(Codec::Zlib),
            2 => Some(Codec::Zstd),
            _ => None,
        }
    }
    /// The on-disk id.
    pub fn id(self) -> u8 {
        match self {
            Codec::Stored => 0,
            Codec::Zlib => 1,
            Codec::Zstd => 2,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::Stored => f.write_str("stored"),
            Codec::Zlib => f.write_str("zlib"),
            Codec::Zstd => f.write_str("zstd"),
        }
    }
}

/// Longest path component in bytes (`docs/FORMAT.md` §6.2): the common
/// file-name limit (`NAME_MAX` on Unix, 255 UTF-16 units on Windows).
pub const MAX_COMPONENT_LEN: usize = 255;

/// Windows device names (`docs/FORMAT.md` §6.2): a component whose part
/// before the first `.`, less trailing spaces, is one of these (in any
/// ASCII case) names a device on Windows, not a file.
pub const RESERVED_NAMES: [&str; 32] = [
    "CON",
    "PRN",
    "AUX",
    "NUL",
    "CONIN$",
    "CONOUT$",
    "COM0",
    "COM1",
    "COM2",
    "COM3",
    "COM4",
    "COM5",
    "COM6",
    "COM7",
    "COM8",
    "COM9",
    "COM\u{b9}",
    "COM\u{b2}",
    "COM\u{b3}",
    "LPT0",
    "LPT1",
    "LPT2",
    "LPT3",
    "LPT4",
    "LPT5",
    "LPT6",
    "LPT7",
    "LPT8",
    "LPT9",
    "LPT\u{b9}",
    "LPT\u{b2}",
    "LPT\u{b3}",
];

/// Bytes a path component must not contain (`docs/FORMAT.md` §6.2): the
/// C0 controls and DEL, and the characters Windows file names cannot hold.
fn is_forbidden_byte(b: u8) -> bool {
    is_control_byte(b) || b"\\/:<>\"|?*".contains(&b)
}

/// A C0 control or DEL: what no name in a package may hold (path
/// components, §6.2; the package name, rule 30b).
pub(crate) fn is_control_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Why `path` breaks the v1 path rules (`docs/FORMAT.md` §6.2), or `None`
/// when it is valid. The reason is a fixed phrase that names the rule,
/// never the path's bytes, so it is safe to print.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.len() > MAX_PATH_LEN as usize {
        return Some("longer than 4096 bytes");
    }
    path.split('/').find_map(component_problem)
}

/// Why `c` is not a valid path component (`docs/FORMAT.md` §6.2), or
/// `None` when it is one.
pub fn component_problem(c: &str) -> Option<&'static str> {
    if c.is_empty() {
        return Some("empty component (leading, trailing or double `/`)");
    }
    if c == "." || c == ".." {
        return Some("`.` or `..` component");
    }
    if c.len() > MAX_COMPONENT_LEN {
        return Some("component longer than 255 bytes");
    }
    if c.bytes().any(is_control_byte) {
        return Some("control character");
    }
    if c.bytes().any(is_forbidden_byte) {
        return Some("one of `\\ : < > \" | ? *`");
    }
    if c.ends_with(['.', ' ']) {
        return Some("component ends with `.` or a space");
    }
    let base = c.split('.').next().unwrap_or(c).trim_end_matches(' ');
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(base)) {
        return Some("Windows device name (CON, NUL, COM1, ...)");
    }
    None
}

/// Check a path against the v1 path rules (`docs/FORMAT.md` §6.2):
/// non-empty components of at most 255 bytes separated by single `/`
/// (so no leading or trailing `/`), at most 4096 bytes in all, no `.` or
/// `..` component, no control character (U+0000–U+001F, U+007F) and none
/// of `\ : < > " | ? *`, no component ending in `.` or a space, and no
/// Windows device name (`CON`, `NUL.txt`, `com1`, ...).
pub fn is_valid_path(path: &str) -> bool {
    path_problem(path).is_none()
}

/// Number of blocks a feature block of `raw_len` logical bytes is cut into.
pub fn blocks_for(raw_len: u64, block_size: u32) -> u64 {
    raw_len.div_ceil(u64::from(block_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        for ok in [
            "a",
            "a/b",
            "VFS/CSIDL_WINDOWS/x.dll",
            "ü/ñ",
            "a b/c.d",
            " lead",
            "CONSOLE",
            "COM10",
            "xCON",
            "con_x.txt",
            ".hidden",
            &"x".repeat(255),
        ] {
            assert!(is_valid_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            ".",
            "a/./b",
            "..",
            "a/../b",
            "a\\b",
            "c:x",
            "a\0b",
            "a\x1b[2J",
            "bell\x07",
            "cr\r",
            "lf\n/x",
            "del\x7f",
            "a<b",
            "a>b",
            "a\"b",
            "a|b",
            "a?b",
            "a*b",
            "trail.",
            "trail ",
            "d./x",
            "CON",
            "con",
            "nul.txt",
            "Com1",
            "LPT9.tar.gz",
            "aux .x",
            "COM\u{b9}",
            "CONIN$",
            "x/PRN",
        ] {
            assert!(!is_valid_path(bad), "{bad:?}");
        }
        assert!(!is_valid_path(&"x".repeat(256)));
        assert!(!is_valid_path(&["y"; 2049].join("/")));
        assert_eq!(
            path_problem("a/CON"),
            Some("Windows device name (CON, NUL, COM1, ...)")
        );
        assert_eq!(path_problem("ok/fine.txt"), None);
    }

    #[test]
    fn block_counts() {
        assert_eq!(blocks_for(0, 4096), 0);
        assert_eq!(blocks_for(1, 4096), 1);
        assert_eq!(blocks_for(4096, 4096), 1);
        assert_eq!(blocks_for(4097, 4096), 2);
        assert_eq!(blocks_for(u64::MAX, 65536), (u64::MAX >> 16) + 1);
    }
}
