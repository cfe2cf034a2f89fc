//! Edit package bytes and recompute the CRCs that cover the edit, so a
//! hostile fixture fails on exactly the problem it is about, not on a
//! checksum. The chain is: entry record CRC / block record CRC → section
//! CRCs in the section table → section table CRC in the header → header
//! CRC. Offsets follow `docs/FORMAT.md` (v1, 128-byte header).

/// Header field offsets.
pub const H_MAJOR: usize = 8;
pub const H_HEADER_LEN: usize = 12;
pub const H_PROLOGUE_LEN: usize = 16;
pub const H_DATA_LEN: usize = 24;
pub const H_SECTION_COUNT: usize = 44;
pub const H_TABLE_OFF: usize = 48;
pub const H_FB1_STORED: usize = 56;
pub const H_TABLE_CRC: usize = 64;
pub const H_CRC: usize = 124;
pub const HEADER_LEN: usize = 128;
pub const SECTION_LEN: usize = 32;

/// Section kinds.
pub const METADATA: u32 = 1;
pub const ENTRIES: u32 = 2;
pub const EXTENTS: u32 = 3;
pub const NAMES: u32 = 4;
pub const INDEX: u32 = 5;

/// One section table entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sec {
    pub kind: u32,
    pub flags: u32,
    pub offset: u64,
    pub length: u64,
    pub record_size: u32,
    pub crc: u32,
}

/// A package being edited.
#[derive(Debug, Clone)]
pub struct Patch(pub Vec<u8>);

impl Patch {
    pub fn new(bytes: &[u8]) -> Self {
        Patch(bytes.to_vec())
    }

    pub fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.0[at..at + 2].try_into().unwrap())
    }
    pub fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
    }
    pub fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap())
    }
    pub fn set_u16(&mut self, at: usize, v: u16) -> &mut Self {
        self.0[at..at + 2].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn set_u32(&mut self, at: usize, v: u32) -> &mut Self {
        self.0[at..at + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn set_u64(&mut self, at: usize, v: u64) -> &mut Self {
        self.0[at..at + 8].copy_from_slice(&v.to_le_bytes());
        self
    }

    pub fn section_count(&self) -> usize {
        self.u32(H_SECTION_COUNT) as usize
    }
    fn table_off(&self) -> usize {
        self.u64(H_TABLE_OFF) as usize
    }
    /// Section table entry number `i`.
    pub fn section(&self, i: usize) -> Sec {
        let at = self.table_off() + i * SECTION_LEN;
        Sec {
            kind: self.u32(at),
            flags: self.u32(at + 4),
            offset: self.u64(at + 8),
            length: self.u64(at + 16),
            record_size: self.u32(at + 24),
            crc: self.u32(at + 28),
        }
    }
    pub fn set_section(&mut self, i: usize, s: Sec) -> &mut Self {
        let at = self.table_off() + i * SECTION_LEN;
        self.set_u32(at, s.kind)
            .set_u32(at + 4, s.flags)
            .set_u64(at + 8, s.offset)
            .set_u64(at + 16, s.length)
            .set_u32(at + 24, s.record_size)
            .set_u32(at + 28, s.crc)
    }
    /// Table position of the (first) section of `kind`.
    pub fn find_section(&self, kind: u32) -> usize {
        (0..self.section_count())
            .find(|&i| self.section(i).kind == kind)
            .unwrap_or_else(|| panic!("no section of kind {kind}"))
    }
    pub fn section_of(&self, kind: u32) -> Sec {
        self.section(self.find_section(kind))
    }

    /// Absolute offset of entry record `n`.
    pub fn entry_at(&self, n: u64) -> usize {
        let s = self.section_of(ENTRIES);
        (s.offset + n * u64::from(s.record_size)) as usize
    }
    /// Path bytes range of entry `n` (absolute).
    pub fn entry_path_range(&self, n: u64) -> std::ops::Range<usize> {
        let at = self.entry_at(n);
        let names = self.section_of(NAMES);
        let start = (names.offset + self.u64(at)) as usize;
        start..start + self.u32(at + 8) as usize
    }
    /// Recompute entry `n`'s own CRC: record bytes 0..60 (plus any bytes
    /// beyond 64 in a longer stride), its path and short name, its extents.
    pub fn fix_entry_crc(&mut self, n: u64) -> &mut Self {
        let es = self.section_of(ENTRIES);
        let stride = es.record_size as usize;
        let at = self.entry_at(n);
        let names = self.section_of(NAMES);
        let ext = self.section_of(EXTENTS);
        let name_off = (names.offset + self.u64(at)) as usize;
        let name_len = self.u32(at + 8) as usize + self.u16(at + 12) as usize;
        let ext_count = self.u32(at + 36) as usize;
        let ext_first = self.u64(at + 40) as usize;
        let ext_at = ext.offset as usize + ext_first * ext.record_size as usize;
        let ext_len = ext_count * ext.record_size as usize;
        let mut h = crc32fast::Hasher::new();
        h.update(&self.0[at..at + 60]);
        h.update(&self.0[at + 64..at + stride]);
        h.update(&self.0[name_off..name_off + name_len]);
        h.update(&self.0[ext_at..ext_at + ext_len]);
        let crc = h.finalize();
        self.set_u32(at + 60, crc)
    }

    /// Absolute offset of block record `id`.
    pub fn block_record_at(&self, id: u32) -> usize {
        let s = self.section_of(INDEX);
        (s.offset + u64::from(id) * u64::from(s.record_size)) as usize
    }
    /// Recompute block record `id`'s CRC (bytes 28..32 over 0..28).
    pub fn fix_block_record_crc(&mut self, id: u32) -> &mut Self {
        let at = self.block_record_at(id);
        let crc = crc32fast::hash(&self.0[at..at + 28]);
        self.set_u32(at + 28, crc)
    }
    pub fn block_count(&self) -> u32 {
        self.u32(36)
    }

    /// Recompute every section's CRC in the table (sections lying outside
    /// the file are left alone).
    pub fn fix_section_crcs(&mut self) -> &mut Self {
        for i in 0..self.section_count() {
            let mut s = self.section(i);
            let (o, l) = (s.offset as usize, s.length as usize);
            if let Some(bytes) = o.checked_add(l).and_then(|e| self.0.get(o..e)) {
                s.crc = crc32fast::hash(bytes);
                self.set_section(i, s);
            }
        }
        self
    }
    /// Recompute the section table CRC stored in the header.
    pub fn fix_table_crc(&mut self) -> &mut Self {
        let o = self.table_off();
        let crc = crc32fast::hash(&self.0[o..o + self.section_count() * SECTION_LEN]);
        self.set_u32(H_TABLE_CRC, crc)
    }
    /// Recompute the header CRC (last four bytes of the 128-byte header).
    pub fn fix_header_crc(&mut self) -> &mut Self {
        let crc = crc32fast::hash(&self.0[..H_CRC]);
        self.set_u32(H_CRC, crc)
    }
    /// Sections, table and header CRCs, in that order.
    pub fn fix_all(&mut self) -> &mut Self {
        self.fix_section_crcs().fix_table_crc().fix_header_crc()
    }

    /// Replace the stored bytes of the last block (so nothing moves after
    /// it), with a new codec id, fixing lengths and every CRC.
    pub fn replace_last_block(&mut self, stored: &[u8], codec: u8) -> &mut Self {
        let id = self.block_count() - 1;
        let at = self.block_record_at(id);
        let off = self.u64(at) as usize;
        self.0.truncate(off);
        self.0.extend_from_slice(stored);
        let data_len = (self.0.len() as u64) - self.u64(H_PROLOGUE_LEN);
        self.set_u32(at + 8, stored.len() as u32)
            .set_u32(at + 16, crc32fast::hash(stored));
        self.0[at + 20] = codec;
        self.set_u64(H_DATA_LEN, data_len);
        self.fix_block_record_crc(id).fix_all()
    }

    /// Append a section of `kind` with `flags` and `body` after the last
    /// section, shifting the data region (and every block record's
    /// `stored_offset`) so the result is consistent.
    pub fn add_section(&mut self, kind: u32, flags: u32, body: &[u8]) -> &mut Self {
        let n = self.section_count();
        let prologue = self.u64(H_PROLOGUE_LEN) as usize;
        let table_end = self.table_off() + n * SECTION_LEN;
        let delta = (SECTION_LEN + body.len()) as u64;
        let mut secs: Vec<Sec> = (0..n).map(|i| self.section(i)).collect();
        for s in &mut secs {
            s.offset += SECTION_LEN as u64;
        }
        secs.push(Sec {
            kind,
            flags,
            offset: (prologue + SECTION_LEN) as u64,
            length: body.len() as u64,
            record_size: 0,
            crc: crc32fast::hash(body),
        });
        let mut out = Vec::with_capacity(self.0.len() + delta as usize);
        out.extend_from_slice(&self.0[..table_end]);
        out.extend_from_slice(&[0; SECTION_LEN]);
        out.extend_from_slice(&self.0[table_end..prologue]);
        out.extend_from_slice(body);
        out.extend_from_slice(&self.0[prologue..]);
        self.0 = out;
        self.set_u32(H_SECTION_COUNT, (n + 1) as u32);
        self.set_u64(H_PROLOGUE_LEN, prologue as u64 + delta);
        for (i, s) in secs.into_iter().enumerate() {
            self.set_section(i, s);
        }
        for id in 0..self.block_count() {
            let at = self.block_record_at(id);
            let off = self.u64(at);
            self.set_u64(at, off + delta);
            self.fix_block_record_crc(id);
        }
        self.fix_all()
    }
}
