//! The container layer of a bundle: bytes ↔ named, checksummed entries.
//! Header, table of contents, aligned data, trailer; limits and the layout
//! rules of `docs/BUNDLE.md`. Nothing here knows XML, icons or SFTs.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::EntryKind;
use crate::error::Error;

/// The 8 bytes every bundle starts with.
pub(crate) const MAGIC: [u8; 8] = *b"\x89SFB\r\n\x1a\n";
/// The 8 bytes the trailer starts with.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"SFTB-END";
/// Format major version this code reads and writes.
pub(crate) const VERSION_MAJOR: u16 = 1;
/// Format minor version this code writes.
pub(crate) const VERSION_MINOR: u16 = 0;
/// Length of the fixed header.
pub(crate) const HEADER_LEN: u64 = 64;
/// Length of the trailer.
pub(crate) const TRAILER_LEN: u64 = 16;
/// Fixed part of a table-of-contents record (before the name).
pub(crate) const RECORD_FIXED: u64 = 24;
/// Header flag: the bundle carries an SFT entry.
pub(crate) const FLAG_HAS_SFT: u32 = 1;
/// Alignment of every entry's data and of the trailer.
pub(crate) const ENTRY_ALIGN: u64 = 8;
/// Alignment of the SFT entry's data (a page, so it can be mapped in place).
pub(crate) const SFT_ALIGN: u64 = 4096;

/// Most entries in one bundle.
pub const MAX_ENTRIES: u32 = 4096;
/// Longest entry name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest component of an entry name, in bytes.
pub const MAX_COMPONENT_LEN: usize = 255;
/// Largest manifest or OSD entry.
pub const MAX_DESCRIPTOR_BYTES: u64 = 16 << 20;
/// Largest table of contents: every record at its longest.
pub(crate) const MAX_TOC_LEN: u64 =
    MAX_ENTRIES as u64 * align_up_const(RECORD_FIXED + MAX_NAME_LEN as u64, ENTRY_ALIGN);
/// Chunk size for streamed reads and copies.
pub(crate) const CHUNK: usize = 64 << 10;

const fn align_up_const(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// `v` rounded up to a multiple of `a`, or `None` on overflow.
pub(crate) fn align_up(v: u64, a: u64) -> Option<u64> {
    v.checked_add(a - 1).map(|x| x / a * a)
}

impl EntryKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            EntryKind::Manifest => 1,
            EntryKind::Osd => 2,
            EntryKind::Icon => 3,
            EntryKind::Sft => 4,
        }
    }

    pub(crate) fn from_code(c: u8) -> Option<EntryKind> {
        Some(match c {
            1 => EntryKind::Manifest,
            2 => EntryKind::Osd,
            3 => EntryKind::Icon,
            4 => EntryKind::Sft,
            _ => return None,
        })
    }

    /// Alignment of this kind's data.
    pub(crate) fn align(self) -> u64 {
        match self {
            EntryKind::Sft => SFT_ALIGN,
            _ => ENTRY_ALIGN,
        }
    }

    /// Largest entry of this kind.
    pub(crate) fn max_len(self) -> u64 {
        match self {
            EntryKind::Manifest | EntryKind::Osd => MAX_DESCRIPTOR_BYTES,
            EntryKind::Icon => crate::publish::MAX_ICON_BYTES as u64,
            EntryKind::Sft => u64::MAX,
        }
    }
}

/// Why `name` is not a safe relative entry name, if it is not.
///
/// Rules (docs/BUNDLE.md): 1–[`MAX_NAME_LEN`] bytes of UTF-8; components
/// separated by `/`, each 1–[`MAX_COMPONENT_LEN`] bytes, not `.` or `..`;
/// no leading `/`; no `\`, `:`, NUL or other control characters.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.len() > MAX_NAME_LEN {
        return Some("name longer than 1024 bytes");
    }
    if name.starts_with('/') {
        return Some("absolute path");
    }
    if name.contains('\\') {
        return Some("backslash in name");
    }
    if name.contains(':') {
        return Some("colon (drive letter or stream) in name");
    }
    if name.chars().any(char::is_control) {
        return Some("control character or NUL in name");
    }
    for c in name.split('/') {
        if c.is_empty() {
            return Some("empty path component");
        }
        if c == "." || c == ".." {
            return Some("`.` or `..` component");
        }
        if c.len() > MAX_COMPONENT_LEN {
            return Some("path component longer than 255 bytes");
        }
    }
    None
}

/// One entry as the table of contents records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub name: String,
    pub kind: EntryKind,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

/// Where the pieces of a bundle go, computed from names, kinds and lengths.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub toc_len: u64,
    pub data_offset: u64,
    /// Offset of each entry's data.
    pub offsets: Vec<u64>,
    pub trailer_offset: u64,
    pub file_len: u64,
}

/// Check the set of entries against the rules that do not need the data:
/// count, names, kinds, order, limits; `what` names the bundle and
/// `region(i)` the entry for messages. Returns the layout.
pub(crate) fn plan(
    entries: &[(&str, EntryKind, u64)],
    bad: &dyn Fn(Option<usize>, String) -> Error,
) -> Result<Plan, Error> {
    if entries.is_empty() {
        return Err(bad(None, "no entries (a bundle needs its manifest)".into()));
    }
    if entries.len() > MAX_ENTRIES as usize {
        return Err(bad(
            None,
            format!("{} entries, more than {MAX_ENTRIES}", entries.len()),
        ));
    }
    let mut toc_len = 0u64;
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    for (i, &(name, kind, len)) in entries.iter().enumerate() {
        if let Some(p) = name_problem(name) {
            return Err(bad(Some(i), format!("unsafe name: {p}")));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(bad(
                Some(i),
                "name repeats an earlier entry's (ignoring ASCII case)".into(),
            ));
        }
        if len > kind.max_len() {
            return Err(bad(
                Some(i),
                format!("{len} bytes, more than the {} allowed", kind.max_len()),
            ));
        }
        match kind {
            EntryKind::Manifest if i != 0 => {
                return Err(bad(
                    Some(i),
                    "a second manifest (exactly one, the first entry)".into(),
                ));
            }
            EntryKind::Sft if i + 1 != entries.len() => {
                return Err(bad(
                    Some(i),
                    "an SFT entry that is not the last entry (at most one, last)".into(),
                ));
            }
            _ if i == 0 && kind != EntryKind::Manifest => {
                return Err(bad(Some(i), "the first entry is not the manifest".into()));
            }
            _ => {}
        }
        toc_len += align_up_const(RECORD_FIXED + name.len() as u64, ENTRY_ALIGN);
    }
    // A file may not also be a folder of another entry (`a` and `a/b`).
    for (i, &(name, ..)) in entries.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        for (j, _) in lower.match_indices('/') {
            if seen.contains(&lower[..j]) {
                return Err(bad(
                    Some(i),
                    format!("its folder `{}` is also a file entry", &name[..j]),
                ));
            }
        }
    }
    let data_offset = HEADER_LEN + toc_len;
    let mut offsets = Vec::with_capacity(entries.len());
    let mut cur = data_offset;
    let overflow = || bad(None, "entry lengths overflow a 64-bit file".into());
    for &(_, kind, len) in entries {
        let off = align_up(cur, kind.align()).ok_or_else(overflow)?;
        offsets.push(off);
        cur = off.checked_add(len).ok_or_else(overflow)?;
    }
    let trailer_offset = align_up(cur, ENTRY_ALIGN).ok_or_else(overflow)?;
    let file_len = trailer_offset
        .checked_add(TRAILER_LEN)
        .ok_or_else(overflow)?;
    Ok(Plan {
        toc_len,
        data_offset,
        offsets,
        trailer_offset,
        file_len,
    })
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// The table of contents for `entries` (lengths and CRCs final).
pub(crate) fn encode_toc(entries: &[RawEntry], plan: &Plan) -> Vec<u8> {
    let mut toc = Vec::with_capacity(plan.toc_len as usize);
    for e in entries {
        let start = toc.len();
        let rec_len = align_up_const(RECORD_FIXED + e.name.len() as u64, ENTRY_ALIGN) as usize;
        toc.resize(start + rec_len, 0);
        let r = &mut toc[start..];
        put_u64(r, 0, e.offset);
        put_u64(r, 8, e.len);
        put_u32(r, 16, e.crc);
        r[20] = e.kind.code();
        r[21] = 0;
        put_u16(r, 22, e.name.len() as u16);
        r[24..24 + e.name.len()].copy_from_slice(e.name.as_bytes());
    }
    toc
}

/// The header for a bundle with this table of contents.
pub(crate) fn encode_header(entries: &[RawEntry], plan: &Plan, toc: &[u8]) -> [u8; 64] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&MAGIC);
    put_u16(&mut h, 8, VERSION_MAJOR);
    put_u16(&mut h, 10, VERSION_MINOR);
    let has_sft = entries.iter().any(|e| e.kind == EntryKind::Sft);
    put_u32(&mut h, 12, if has_sft { FLAG_HAS_SFT } else { 0 });
    put_u32(&mut h, 16, entries.len() as u32);
    put_u32(&mut h, 20, plan.toc_len as u32);
    put_u64(&mut h, 24, plan.data_offset);
    put_u64(&mut h, 32, plan.file_len);
    put_u32(&mut h, 40, crc32fast::hash(toc));
    let crc = crc32fast::hash(&h[..60]);
    put_u32(&mut h, 60, crc);
    h
}

/// The trailer of a bundle of `file_len` bytes.
pub(crate) fn encode_trailer(file_len: u64) -> [u8; 16] {
    let mut t = [0u8; TRAILER_LEN as usize];
    t[..8].copy_from_slice(&TRAILER_MAGIC);
    put_u64(&mut t, 8, file_len);
    t
}

/// What a writer copies into an entry.
#[derive(Debug)]
pub(crate) enum Content<'a> {
    /// Bytes in memory.
    Bytes(&'a [u8]),
    /// A file of the given length, streamed.
    File(&'a Path, u64),
}

impl Content<'_> {
    fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File(_, n) => *n,
        }
    }
}

/// One entry to write.
#[derive(Debug)]
pub(crate) struct WriteEntry<'a> {
    pub name: String,
    pub kind: EntryKind,
    pub content: Content<'a>,
}

/// Write a complete bundle to `w` (positioned at 0): data first with
/// CRCs computed while copying, then the table of contents and header.
/// Returns the entries as recorded and the file length.
pub(crate) fn write_container<W: Write + Seek>(
    w: &mut W,
    entries: &[WriteEntry<'_>],
    out_name: &str,
) -> Result<(Vec<RawEntry>, u64), Error> {
    let shape: Vec<(&str, EntryKind, u64)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.content.len()))
        .collect();
    let plan = plan(&shape, &|i, msg| {
        Error::invalid(match i {
            Some(i) => format!("bundle entry `{}`: {msg}", entries[i].name),
            None => format!("bundle: {msg}"),
        })
    })?;
    let io = |e| Error::io(format!("writing `{out_name}`"), e);
    let zeros = [0u8; SFT_ALIGN as usize];
    let pad = |w: &mut W, from: u64, to: u64| -> Result<(), Error> {
        let mut n = to - from;
        while n > 0 {
            let k = n.min(zeros.len() as u64) as usize;
            w.write_all(&zeros[..k]).map_err(io)?;
            n -= k as u64;
        }
        Ok(())
    };
    // Placeholder header and TOC, rewritten once the CRCs are known.
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    pad(w, 0, plan.data_offset)?;
    let mut cur = plan.data_offset;
    let mut raw = Vec::with_capacity(entries.len());
    for (e, &off) in entries.iter().zip(&plan.offsets) {
        pad(w, cur, off)?;
        let crc = match &e.content {
            Content::Bytes(b) => {
                w.write_all(b).map_err(io)?;
                crc32fast::hash(b)
            }
            Content::File(path, len) => copy_file(w, path, *len, out_name)?,
        };
        let len = e.content.len();
        raw.push(RawEntry {
            name: e.name.clone(),
            kind: e.kind,
            offset: off,
            len,
            crc,
        });
        cur = off + len;
    }
    pad(w, cur, plan.trailer_offset)?;
    w.write_all(&encode_trailer(plan.file_len)).map_err(io)?;
    let toc = encode_toc(&raw, &plan);
    let header = encode_header(&raw, &plan, &toc);
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&header).map_err(io)?;
    w.write_all(&toc).map_err(io)?;
    w.seek(SeekFrom::Start(plan.file_len)).map_err(io)?;
    Ok((raw, plan.file_len))
}

/// Copy exactly `len` bytes of `path` into `w`, returning their CRC; the
/// file must still be exactly `len` bytes long.
fn copy_file<W: Write>(w: &mut W, path: &Path, len: u64, out_name: &str) -> Result<u32, Error> {
    let mut f =
        File::open(path).map_err(|e| Error::io(format!("opening `{}`", path.display()), e))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let want = left.min(CHUNK as u64) as usize;
        let n = f
            .read(&mut buf[..want])
            .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?;
        if n == 0 {
            return Err(Error::invalid(format!(
                "`{}` shrank while it was being bundled ({} of {len} bytes read)",
                path.display(),
                len - left
            )));
        }
        h.update(&buf[..n]);
        w.write_all(&buf[..n])
            .map_err(|e| Error::io(format!("writing `{out_name}`"), e))?;
        left -= n as u64;
    }
    let extra = f
        .read(&mut buf[..1])
        .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?;
    if extra != 0 {
        return Err(Error::invalid(format!(
            "`{}` grew while it was being bundled (expected {len} bytes)",
            path.display()
        )));
    }
    Ok(h.finalize())
}

/// Positional reads over a bundle's bytes.
#[derive(Debug)]
pub(crate) enum Source {
    /// An open file and its length at open time.
    File(File, u64),
    /// Bytes in memory (fuzzing, tests).
    Mem(Vec<u8>),
}

impl Source {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Source::File(_, n) => *n,
            Source::Mem(v) => v.len() as u64,
        }
    }

    /// Fill `buf` from `offset`; the range must lie inside [`Source::len`].
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len()) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match self {
            Source::File(f, _) => crate::io::pos::read_exact_at(f, buf, offset),
            Source::Mem(v) => {
                let o = offset as usize;
                buf.copy_from_slice(&v[o..o + buf.len()]);
                Ok(())
            }
        }
    }
}

/// Messages for a bundle named `what`: `` `what`: REGION at offset N: MSG ``.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub what: String,
}

impl Ctx {
    pub(crate) fn err(&self, region: &str, offset: u64, msg: impl std::fmt::Display) -> Error {
        Error::Bundle(format!(
            "`{}`: {region} at offset {offset}: {msg}",
            self.what
        ))
    }

    pub(crate) fn entry_region(i: usize, e: &RawEntry) -> String {
        format!("entry {i} `{}`", e.name)
    }

    fn read(&self, src: &Source, region: &str, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        src.read_at(offset, buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.err(
                    region,
                    offset,
                    format!("truncated: needs {} bytes", buf.len()),
                )
            } else {
                Error::io(
                    format!("reading `{}` ({region} at offset {offset})", self.what),
                    e,
                )
            }
        })
    }
}

/// Read and check header, table of contents and trailer (not entry data):
/// every structural rule of `docs/BUNDLE.md` except CRCs of entry data
/// and zero padding, which [`check_entry`] and [`check_padding`] do.
pub(crate) fn read_layout(src: &Source, ctx: &Ctx) -> Result<(Vec<RawEntry>, Plan), Error> {
    let file_len = src.len();
    if file_len < HEADER_LEN + TRAILER_LEN {
        return Err(ctx.err(
            "header",
            0,
            format!(
                "truncated: {file_len} bytes, a bundle has at least {}",
                HEADER_LEN + TRAILER_LEN
            ),
        ));
    }
    let mut h = [0u8; HEADER_LEN as usize];
    ctx.read(src, "header", 0, &mut h)?;
    if h[..8] != MAGIC {
        return Err(ctx.err("header", 0, "not an .sftb bundle (bad magic)"));
    }
    let stored_crc = get_u32(&h, 60);
    let actual = crc32fast::hash(&h[..60]);
    if stored_crc != actual {
        return Err(ctx.err(
            "header",
            0,
            format!("crc mismatch: expected 0x{stored_crc:08x}, got 0x{actual:08x}"),
        ));
    }
    let major = get_u16(&h, 8);
    if major != VERSION_MAJOR {
        return Err(ctx.err(
            "header",
            8,
            format!("format major version {major} (this reader knows {VERSION_MAJOR})"),
        ));
    }
    let flags = get_u32(&h, 12);
    if flags & !FLAG_HAS_SFT != 0 {
        return Err(ctx.err("header", 12, format!("unknown flags 0x{flags:08x}")));
    }
    if h[44..60].iter().any(|&b| b != 0) {
        return Err(ctx.err("header", 44, "reserved bytes are not zero"));
    }
    let count = get_u32(&h, 16);
    if count == 0 || count > MAX_ENTRIES {
        return Err(ctx.err(
            "header",
            16,
            format!("entry count {count} (allowed 1..={MAX_ENTRIES})"),
        ));
    }
    let toc_len = u64::from(get_u32(&h, 20));
    if toc_len > MAX_TOC_LEN || toc_len < u64::from(count) * RECORD_FIXED || toc_len % 8 != 0 {
        return Err(ctx.err(
            "header",
            20,
            format!("table of contents length {toc_len} is impossible for {count} entries"),
        ));
    }
    let data_offset = get_u64(&h, 24);
    if data_offset != HEADER_LEN + toc_len {
        return Err(ctx.err(
            "header",
            24,
            format!(
                "data offset {data_offset}, expected {} (header + table of contents)",
                HEADER_LEN + toc_len
            ),
        ));
    }
    let recorded_len = get_u64(&h, 32);
    if recorded_len != file_len {
        return Err(ctx.err(
            "header",
            32,
            if recorded_len > file_len {
                format!("truncated: the header says {recorded_len} bytes, the file has {file_len}")
            } else {
                format!(
                    "{} bytes of trailing garbage: the header says {recorded_len} bytes, the file has {file_len}",
                    file_len - recorded_len
                )
            },
        ));
    }
    if HEADER_LEN + toc_len + TRAILER_LEN > file_len {
        return Err(ctx.err(
            "table of contents",
            HEADER_LEN,
            format!("truncated: {toc_len} bytes do not fit in a {file_len}-byte file"),
        ));
    }
    // Lengths are checked: the TOC is at most MAX_TOC_LEN and inside the file.
    let mut toc = vec![0u8; toc_len as usize];
    ctx.read(src, "table of contents", HEADER_LEN, &mut toc)?;
    let toc_crc = get_u32(&h, 40);
    let actual = crc32fast::hash(&toc);
    if toc_crc != actual {
        return Err(ctx.err(
            "table of contents",
            HEADER_LEN,
            format!("crc mismatch: expected 0x{toc_crc:08x}, got 0x{actual:08x}"),
        ));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut pos = 0usize;
    for i in 0..count as usize {
        let at = HEADER_LEN + pos as u64;
        let region = format!("table of contents record {i}");
        if toc.len() - pos < RECORD_FIXED as usize {
            return Err(ctx.err(&region, at, "truncated record"));
        }
        let r = &toc[pos..];
        let name_len = usize::from(get_u16(r, 22));
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(ctx.err(
                &region,
                at,
                format!("name length {name_len} (allowed 1..={MAX_NAME_LEN})"),
            ));
        }
        let rec_len = align_up_const(RECORD_FIXED + name_len as u64, ENTRY_ALIGN) as usize;
        if rec_len > toc.len() - pos {
            return Err(ctx.err(&region, at, "record runs past the table of contents"));
        }
        let Some(kind) = EntryKind::from_code(r[20]) else {
            return Err(ctx.err(&region, at + 20, format!("unknown entry kind {}", r[20])));
        };
        if r[21] != 0 {
            return Err(ctx.err(&region, at + 21, "reserved byte is not zero"));
        }
        let name_bytes = &r[24..24 + name_len];
        if r[24 + name_len..rec_len].iter().any(|&b| b != 0) {
            return Err(ctx.err(&region, at, "record padding is not zero"));
        }
        let Ok(name) = std::str::from_utf8(name_bytes) else {
            return Err(ctx.err(&region, at + 24, "name is not valid UTF-8"));
        };
        entries.push(RawEntry {
            name: name.to_owned(),
            kind,
            offset: get_u64(r, 0),
            len: get_u64(r, 8),
            crc: get_u32(r, 16),
        });
        pos += rec_len;
    }
    if pos != toc.len() {
        return Err(ctx.err(
            "table of contents",
            HEADER_LEN + pos as u64,
            format!("{} bytes after the last record", toc.len() - pos),
        ));
    }
    let shape: Vec<(&str, EntryKind, u64)> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.kind, e.len))
        .collect();
    let offsets_of = |i: usize| HEADER_LEN + record_start(&entries, i);
    let plan = plan(&shape, &|i, msg| match i {
        Some(i) => ctx.err(
            &format!("table of contents record {i} (`{}`)", entries[i].name),
            offsets_of(i),
            msg,
        ),
        None => ctx.err("table of contents", HEADER_LEN, msg),
    })?;
    let has_sft = entries.iter().any(|e| e.kind == EntryKind::Sft);
    if has_sft != (flags & FLAG_HAS_SFT != 0) {
        return Err(ctx.err(
            "header",
            12,
            "the has-SFT flag disagrees with the table of contents",
        ));
    }
    for (i, (e, &off)) in entries.iter().zip(&plan.offsets).enumerate() {
        if e.offset != off {
            return Err(ctx.err(
                &format!("table of contents record {i} (`{}`)", e.name),
                offsets_of(i),
                format!(
                    "data offset {} is not where the layout puts it ({off}): entries are back to back, in order, aligned",
                    e.offset
                ),
            ));
        }
    }
    if plan.file_len != file_len {
        return Err(ctx.err(
            "trailer",
            plan.trailer_offset,
            format!(
                "entries end at {}, so the file should be {} bytes, not {file_len}",
                plan.trailer_offset, plan.file_len
            ),
        ));
    }
    let mut t = [0u8; TRAILER_LEN as usize];
    ctx.read(src, "trailer", plan.trailer_offset, &mut t)?;
    if t != encode_trailer(file_len) {
        return Err(ctx.err("trailer", plan.trailer_offset, "damaged trailer"));
    }
    Ok((entries, plan))
}

fn record_start(entries: &[RawEntry], i: usize) -> u64 {
    entries[..i]
        .iter()
        .map(|e| align_up_const(RECORD_FIXED + e.name.len() as u64, ENTRY_ALIGN))
        .sum()
}

/// Stream entry `i`'s data in bounded chunks, handing each chunk to `sink`
/// and checking the CRC at the end. `sink` must not treat the data as good
/// until this returns `Ok`.
pub(crate) fn check_entry(
    src: &Source,
    ctx: &Ctx,
    i: usize,
    e: &RawEntry,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<(), Error> {
    let region = Ctx::entry_region(i, e);
    let mut buf = vec![0u8; (e.len.min(CHUNK as u64)) as usize];
    let mut h = crc32fast::Hasher::new();
    let mut done = 0u64;
    while done < e.len {
        let n = (e.len - done).min(CHUNK as u64) as usize;
        ctx.read(src, &region, e.offset + done, &mut buf[..n])?;
        h.update(&buf[..n]);
        sink(&buf[..n])?;
        done += n as u64;
    }
    let actual = h.finalize();
    if actual != e.crc {
        return Err(ctx.err(
            &region,
            e.offset,
            format!("crc mismatch: expected 0x{:08x}, got 0x{actual:08x}", e.crc),
        ));
    }
    Ok(())
}

/// Check that the bytes `from..to` (padding after entry `i`) are zero.
pub(crate) fn check_padding(
    src: &Source,
    ctx: &Ctx,
    after: &str,
    from: u64,
    to: u64,
) -> Result<(), Error> {
    if to <= from {
        return Ok(());
    }
    let region = format!("padding after {after}");
    let mut buf = vec![0u8; (to - from).min(CHUNK as u64) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(buf.len() as u64) as usize;
        ctx.read(src, &region, at, &mut buf[..n])?;
        if let Some(k) = buf[..n].iter().position(|&b| b != 0) {
            return Err(ctx.err(&region, at + k as u64, "padding byte is not zero"));
        }
        at += n as u64;
    }
    Ok(())
}

/// Set the header's `version_minor` bytes of a bundle and fix its header
/// CRC (for the fuzzing oracle: every other byte is canonical).
#[cfg(any(test, feature = "__fuzz"))]
pub(crate) fn set_minor(data: &mut [u8], minor: [u8; 2]) {
    if data.len() >= HEADER_LEN as usize {
        data[10..12].copy_from_slice(&minor);
        let crc = crc32fast::hash(&data[..60]);
        put_u32(data, 60, crc);
    }
}

/// Rewrite every CRC in `data` (entry CRCs in the TOC where the entry's
/// range lies inside `data`, then the TOC CRC and the header CRC) so that
/// arbitrary bytes get past the checksums to the rules behind them. Best
/// effort, for fuzzing; never panics.
#[cfg(any(test, feature = "__fuzz"))]
pub(crate) fn fix_checksums(data: &mut [u8]) {
    let len = data.len();
    if len < HEADER_LEN as usize {
        return;
    }
    let count = get_u32(data, 16) as usize;
    let toc_len = get_u32(data, 20) as usize;
    let toc_end = (HEADER_LEN as usize).saturating_add(toc_len);
    if toc_end <= len {
        let mut pos = HEADER_LEN as usize;
        for _ in 0..count.min(MAX_ENTRIES as usize) {
            if toc_end - pos < RECORD_FIXED as usize {
                break;
            }
            let off = get_u64(data, pos);
            let n = get_u64(data, pos + 8);
            let name_len = usize::from(get_u16(data, pos + 22));
            if let (Ok(o), Ok(n)) = (usize::try_from(off), usize::try_from(n))
                && let Some(end) = o.checked_add(n).filter(|&e| e <= len)
            {
                let crc = crc32fast::hash(&data[o..end]);
                put_u32(data, pos + 16, crc);
            }
            let rec = align_up_const(RECORD_FIXED + name_len as u64, ENTRY_ALIGN) as usize;
            pos = pos.saturating_add(rec);
            if pos > toc_end {
                break;
            }
        }
        let crc = crc32fast::hash(&data[HEADER_LEN as usize..toc_end]);
        put_u32(data, 40, crc);
    }
    let crc = crc32fast::hash(&data[..60]);
    put_u32(data, 60, crc);
}
