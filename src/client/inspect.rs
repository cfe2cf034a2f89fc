//! What a package folder holds, read without changing anything: the
//! finished SFT, or the streaming core's partial file and its presence
//! bitmap (format in [`crate::fetch::cache`]).

use std::fs::File;
use std::path::Path;

use crate::fetch::cache::CachePaths;
use crate::format::{FeatureBlock, HEADER_LEN, Header};
use crate::read::Prologue;

/// How much of a package is cached (App-V's TotalSize, CachedSize,
/// LaunchSize, CachedLaunchSize).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheState {
    /// Bytes of the package, once known from its prologue.
    pub total: Option<u64>,
    /// Bytes present: the prologue and the stored bytes of present blocks.
    pub cached: u64,
    /// Bytes needed to launch: the prologue and the FB1 blocks.
    pub launch: Option<u64>,
    /// Of those, present.
    pub cached_launch: u64,
    /// Every block present and the finished SFT in place.
    pub complete: bool,
    /// Any data at all (a partial or finished file).
    pub has_data: bool,
}

impl CacheState {
    /// True once every FB1 block is present.
    pub fn launch_ready(&self) -> bool {
        self.complete
            || self
                .launch
                .is_some_and(|l| l == self.cached_launch && l > 0)
    }

    /// Percent cached (0–100), 0 when nothing is known.
    pub fn percent(&self) -> u8 {
        match self.total {
            Some(t) if t > 0 => ((self.cached.min(t) as u128 * 100) / t as u128) as u8,
            _ => 0,
        }
    }
}

/// Read the prologue at the start of `file` (of `len` bytes).
pub(crate) fn read_prologue(file: &File, len: u64) -> Option<Vec<u8>> {
    if len < HEADER_LEN as u64 {
        return None;
    }
    let mut head = vec![0u8; HEADER_LEN];
    crate::fetch::cache::pread_exact(file, 0, &mut head).ok()?;
    let header = Header::parse(&head).ok()?;
    if header.prologue_len > len {
        return None;
    }
    let plen = usize::try_from(header.prologue_len).ok()?;
    let mut buf = vec![0u8; plen];
    crate::fetch::cache::pread_exact(file, 0, &mut buf).ok()?;
    Some(buf)
}

/// Launch and total sizes from a prologue, and the sums over the blocks
/// `present` says are there.
fn sums(prologue: &Prologue<'_>, present: impl Fn(u32) -> bool) -> Option<CacheState> {
    let index = prologue.index();
    let base = prologue.as_bytes().len() as u64;
    let (mut cached, mut launch, mut cached_launch) = (base, base, base);
    for id in index.ids() {
        let info = index.get(id).ok()?;
        let len = u64::from(info.stored_len);
        let here = present(id.0);
        if here {
            cached += len;
        }
        if info.feature_block == FeatureBlock::Fb1 {
            launch += len;
            if here {
                cached_launch += len;
            }
        }
    }
    Some(CacheState {
        total: Some(prologue.header().package_len()),
        cached,
        launch: Some(launch),
        cached_launch,
        complete: false,
        has_data: true,
    })
}

/// The state of the package whose finished file is `out`.
pub(crate) fn inspect(out: &Path) -> CacheState {
    if let Ok(file) = File::open(out) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut s = read_prologue(&file, len)
            .and_then(|p| Prologue::parse(&p).ok().and_then(|p| sums(&p, |_| true)))
            .unwrap_or(CacheState {
                total: Some(len),
                cached: len,
                launch: None,
                cached_launch: 0,
                complete: false,
                has_data: true,
            });
        s.complete = true;
        s.has_data = true;
        return s;
    }
    let paths = CachePaths::for_output(out, None);
    let Ok(file) = File::open(&paths.data) else {
        return CacheState::default();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let nothing = CacheState {
        has_data: len > 0,
        ..CacheState::default()
    };
    let Some(bits) = std::fs::read(&paths.bitmap)
        .ok()
        .and_then(|b| bitmap_bits(&b, len))
    else {
        return nothing;
    };
    let Some(prologue) = read_prologue(&file, len) else {
        return nothing;
    };
    let Ok(p) = Prologue::parse(&prologue) else {
        return nothing;
    };
    if p.header().block_count as usize > bits.len() * 8 || p.header().package_len() != len {
        return nothing;
    }
    sums(&p, |i| {
        bits.get(i as usize / 8)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    })
    .unwrap_or(nothing)
}

/// The bits of a presence bitmap file, if it is valid and for a package
/// of `len` bytes.
fn bitmap_bits(b: &[u8], len: u64) -> Option<Vec<u8>> {
    const HEAD: usize = 48;
    if b.len() < HEAD + 4 || &b[..8] != b"SFTCACHE" {
        return None;
    }
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    };
    if u32_at(8)? != 1 {
        return None;
    }
    let count = u32_at(12)? as usize;
    if u64_at(16)? != len {
        return None;
    }
    let n = count.div_ceil(8);
    if b.len() != HEAD + n + 4 {
        return None;
    }
    if crc32fast::hash(&b[..HEAD + n]) != u32_at(HEAD + n)? {
        return None;
    }
    Some(b[HEAD..HEAD + n].to_vec())
}
