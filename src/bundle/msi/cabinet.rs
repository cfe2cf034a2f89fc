//! A structural check of a cabinet ([MS-CAB]) before the `cab` crate
//! reads it: header, folders, files, and every data block's header walked
//! within the stream, so each file lies inside its folder's data. The
//! `cab` crate indexes past its block list when a file starts beyond its
//! folder's end (the `msi` fuzz target found it) and slices past a stored
//! block whose sizes disagree, skips blocks without a checksum, and takes
//! LZX and Quantum folders this reader does not: only stored and MSZIP
//! folders pass, every block with its checksum, stored blocks with equal
//! sizes, and no folder that expands more than 64 times (each read
//! inflates its folder from the start).
//!
//! [MS-CAB]: https://learn.microsoft.com/previous-versions/bb417343(v=msdn.10)

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// `CFHEADER.flags`: a previous cabinet in a set.
const PREV_CABINET: u16 = 0x1;
/// `CFHEADER.flags`: a next cabinet in a set.
const NEXT_CABINET: u16 = 0x2;
/// `CFHEADER.flags`: reserve fields present.
const RESERVE_PRESENT: u16 = 0x4;
/// Largest uncompressed data block.
const MAX_BLOCK: u64 = 32 << 10;
/// Most folders and files read (a cabinet holds at most 65,535 of each).
const MAX_ITEMS: u16 = u16::MAX;

/// Every file of the cabinet in `r` (`len` bytes): name → uncompressed
/// size, each checked to lie inside its folder's data.
pub(super) fn check(r: &mut (impl Read + Seek), len: u64) -> Result<HashMap<String, u32>, String> {
    let mut h = [0u8; 36];
    read_at(r, 0, &mut h, len)?;
    if &h[..4] != b"MSCF" {
        return Err("not a cabinet (no MSCF signature)".into());
    }
    let u16_ = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_ = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let coff_files = u64::from(u32_(&h, 16));
    let (minor, major) = (h[24], h[25]);
    if (major, minor) != (1, 3) {
        return Err(format!("cabinet version {major}.{minor}, not 1.3"));
    }
    let (folders, files, flags) = (u16_(&h, 26), u16_(&h, 28), u16_(&h, 30));
    if flags & (PREV_CABINET | NEXT_CABINET) != 0 {
        return Err("a cabinet of a multi-cabinet set".into());
    }
    if folders == 0 || folders == MAX_ITEMS || files == MAX_ITEMS {
        return Err(format!("{folders} folders and {files} files"));
    }
    let mut at = 36u64;
    let (mut folder_reserve, mut data_reserve) = (0u64, 0u64);
    if flags & RESERVE_PRESENT != 0 {
        let mut r4 = [0u8; 4];
        read_at(r, at, &mut r4, len)?;
        folder_reserve = u64::from(r4[2]);
        data_reserve = u64::from(r4[3]);
        at += 4 + u64::from(u16_(&r4, 0));
    }
    // Folders: where their data starts, how many blocks, how compressed;
    // each block header walked to total its uncompressed bytes. The
    // blocks of all folders together may not take more bytes than the
    // cabinet has (folders that share blocks would multiply the walk).
    let mut totals = Vec::with_capacity(usize::from(folders));
    let mut walked = 0u64;
    for i in 0..u64::from(folders) {
        let mut f = [0u8; 8];
        read_at(r, at + i * (8 + folder_reserve), &mut f, len)?;
        let (mut off, blocks, comp) = (u64::from(u32_(&f, 0)), u16_(&f, 4), u16_(&f, 6));
        match comp & 0x000f {
            0 | 1 => {}
            2 => {
                return Err(format!(
                    "folder {i} is Quantum-compressed, which is not read"
                ));
            }
            3 => {
                return Err(format!(
                    "folder {i} is LZX-compressed, which is not read (MSZIP and stored folders are)"
                ));
            }
            t => return Err(format!("folder {i} has compression type {t}")),
        }
        let (mut total, mut packed) = (0u64, 0u64);
        for b in 0..blocks {
            let mut d = [0u8; 8];
            read_at(r, off, &mut d, len)?;
            let (sum, stored, raw) = (u32_(&d, 0), u64::from(u16_(&d, 4)), u64::from(u16_(&d, 6)));
            if raw > MAX_BLOCK || (raw == 0 && b + 1 < blocks) {
                return Err(format!(
                    "folder {i}, data block {b}: {raw} uncompressed bytes"
                ));
            }
            // A stored block's bytes are its data: the `cab` crate places
            // files by the uncompressed size and copies the stored bytes.
            if comp & 0x000f == 0 && stored != raw {
                return Err(format!(
                    "folder {i}, data block {b}: stored, yet {stored} bytes hold {raw}"
                ));
            }
            // No checksum (0) would let damage through unseen.
            if sum == 0 {
                return Err(format!("folder {i}, data block {b} has no checksum"));
            }
            let step = 8 + data_reserve + stored;
            off += step;
            walked += step;
            if off > len || walked > len {
                return Err(format!(
                    "folder {i}, data block {b} passes the cabinet's end (or folders share blocks)"
                ));
            }
            total += raw;
            packed += stored;
        }
        // Each read of a file inflates its folder from the start: a folder
        // may not expand beyond 16 MiB plus 64 times its compressed bytes
        // (real data, XML or an SFT, is far below; zeros are not).
        if total > (16 << 20) + 64 * packed {
            return Err(format!(
                "folder {i} expands {packed} bytes into {total}, more than this reader inflates"
            ));
        }
        totals.push(total);
    }
    // Files: names, folders, offsets and sizes inside the folder's data.
    let mut out = HashMap::new();
    let mut at = coff_files;
    for i in 0..files {
        let mut f = [0u8; 16];
        read_at(r, at, &mut f, len)?;
        let (size, start, folder) = (u32_(&f, 0), u64::from(u32_(&f, 4)), u16_(&f, 8));
        let mut name = Vec::new();
        let mut c = [0u8; 1];
        loop {
            read_at(r, at + 16 + name.len() as u64, &mut c, len)?;
            if c[0] == 0 {
                break;
            }
            if name.len() == 256 {
                return Err(format!("file {i}'s name is longer than 256 bytes"));
            }
            name.push(c[0]);
        }
        at += 16 + name.len() as u64 + 1;
        let name = String::from_utf8_lossy(&name).into_owned();
        let total = totals.get(usize::from(folder)).copied().ok_or_else(|| {
            format!("file `{name}` is in folder {folder}; the cabinet has {folders}")
        })?;
        if start.saturating_add(u64::from(size)) > total {
            return Err(format!(
                "file `{name}` lies at bytes {start}..{} of a folder of {total}",
                start + u64::from(size)
            ));
        }
        if out.insert(name.clone(), size).is_some() {
            return Err(format!("two files named `{name}`"));
        }
    }
    Ok(out)
}

/// Fill `buf` from offset `at` of a stream of `len` bytes.
fn read_at(r: &mut (impl Read + Seek), at: u64, buf: &mut [u8], len: u64) -> Result<(), String> {
    if at.checked_add(buf.len() as u64).is_none_or(|end| end > len) {
        return Err(format!("the cabinet ends before byte {at}"));
    }
    r.seek(SeekFrom::Start(at))
        .and_then(|_| r.read_exact(buf))
        .map_err(|e| format!("reading the cabinet at byte {at}: {e}"))
}
