//! The installer database, read strictly and within bounds: the string
//! pool, `_Tables`, `_Columns` and the rows of the tables an install needs,
//! over the `cfb` crate's Compound File reader. The `msi` crate writes
//! the database (its own, trusted input); it is not used to read one,
//! because it panics on some hostile tables (the `msi` fuzz target found
//! an `unwrap` on a `_Validation` cell that is not a string). Every count,
//! length and reference here is checked before it is used, and every
//! allocation is bounded by the stream it comes from.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::rc::Rc;

/// Root storage class of an installer database (`.msi`).
const CLSID_INSTALLER: &str = "000c1084-0000-0000-c000-000000000046";
/// Root storage class of a patch (`.msp`).
const CLSID_PATCH: &str = "000c1086-0000-0000-c000-000000000046";
/// Root storage class of a transform (`.mst`).
const CLSID_TRANSFORM: &str = "000c1082-0000-0000-c000-000000000046";
/// `_StringPool`'s code page flag for 3-byte string references.
const LONG_STRING_REFS: u32 = 0x8000_0000;
/// Largest `_StringPool` stream read (4 bytes an entry: a million strings).
const MAX_POOL_STREAM: u64 = 4 << 20;
/// Largest `_StringData` stream read.
const MAX_STRING_DATA: u64 = 32 << 20;
/// Largest table stream read (65,536 rows of 32 two-byte cells).
const MAX_TABLE_STREAM: u64 = 4 << 20;
/// Most columns in a table (Windows Installer's own limit).
const MAX_COLUMNS: usize = 32;
/// Most rows read from any table (Windows Installer's own limit).
pub(super) const MAX_ROWS: usize = 65_536;

/// Column types, from the `_Columns` type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    I16,
    I32,
    Str,
    Binary,
}

impl ColType {
    /// The type of `_Columns.Type` bits (the `msi` crate's reading, which
    /// matches Windows Installer's: string bit 0x0800, size in the low
    /// byte, 0x0400 marking a 4-byte integer that is not binary).
    fn from_bits(bits: i32) -> Result<ColType, String> {
        const STRING: i32 = 0x800;
        const VALID: i32 = 0x100;
        const NULLABLE: i32 = 0x1000;
        const NONBINARY: i32 = 0x400;
        let size = bits & 0xff;
        if bits & !NULLABLE == STRING | VALID {
            Ok(ColType::Binary)
        } else if bits & STRING != 0 {
            Ok(ColType::Str)
        } else {
            match size {
                4 if bits & NONBINARY == 0 => Ok(ColType::I32),
                4 => Ok(ColType::Binary),
                0..=2 => Ok(ColType::I16),
                _ => Err(format!(
                    "column type {bits:#x} has an integer size of {size}"
                )),
            }
        }
    }

    fn width(self, long_refs: bool) -> usize {
        match self {
            ColType::I16 | ColType::Binary => 2,
            ColType::I32 => 4,
            ColType::Str if long_refs => 3,
            ColType::Str => 2,
        }
    }
}

/// One cell: 8 bytes, whatever it holds (a string is its pool index, so
/// a table that names one long string many times costs no more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// Null (an empty string is null too).
    Null,
    /// An integer.
    Int(i32),
    /// A string: its index in the pool.
    Str(u32),
    /// A stream column (its data lives in a stream of its own).
    Binary,
}

/// Most bytes of strings decoded from one database, all reads together:
/// a table may name one long string many times, and each read copies it.
const MAX_DECODED: u64 = 64 << 20;

/// The string pool: `_StringData` and each string's span in it, decoded
/// when a cell is read, against [`MAX_DECODED`].
struct Pool {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
    codepage: msi::CodePage,
    decoded: std::cell::Cell<u64>,
}

impl Pool {
    fn text(&self, i: u32) -> Result<String, String> {
        let (a, b) = self.spans[i as usize];
        let spent = self.decoded.get() + (b - a) as u64;
        if spent > MAX_DECODED {
            return Err(format!(
                "its tables name more than {MAX_DECODED} bytes of strings"
            ));
        }
        self.decoded.set(spent);
        Ok(self.codepage.decode(&self.data[a..b]))
    }
}

/// A table's rows, with its column names.
pub(super) struct Rows {
    table: String,
    /// The columns, in order.
    columns: Vec<String>,
    /// Row-major cells, `columns.len()` a row.
    cells: Vec<Cell>,
    pool: Rc<Pool>,
}

impl Rows {
    /// How many rows.
    pub(super) fn len(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.cells.len() / self.columns.len()
        }
    }

    fn cell(&self, row: usize, col: &str) -> Result<Cell, String> {
        let c = self
            .columns
            .iter()
            .position(|c| c == col)
            .ok_or_else(|| format!("its {} table has no {col} column", self.table))?;
        Ok(self.cells[row * self.columns.len() + c])
    }

    /// A string cell (`None` if null).
    pub(super) fn str(&self, row: usize, col: &str) -> Result<Option<String>, String> {
        match self.cell(row, col)? {
            Cell::Null => Ok(None),
            Cell::Str(i) => self.pool.text(i).map(Some),
            other => Err(format!(
                "{}.{col} holds {other:?}, not a string",
                self.table
            )),
        }
    }

    /// An integer cell (`None` if null).
    pub(super) fn int(&self, row: usize, col: &str) -> Result<Option<i64>, String> {
        match self.cell(row, col)? {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(i64::from(i))),
            other => Err(format!(
                "{}.{col} holds {other:?}, not an integer",
                self.table
            )),
        }
    }
}

/// An opened database: the container and the string pool.
pub(super) struct Db<R: Read + Seek> {
    comp: cfb::CompoundFile<R>,
    long_refs: bool,
    pool: Rc<Pool>,
    tables: HashMap<String, Vec<(String, ColType)>>,
}

/// A stream name as the database stores it (the `msi` crate's, and
/// Windows Installer's, compression of `[0-9A-Za-z._]` pairs into one
/// character; `table` streams start with U+4840).
pub(super) fn encode_name(name: &str, table: bool) -> String {
    fn b64(c: char) -> Option<u32> {
        match c {
            '0'..='9' => Some(c as u32 - '0' as u32),
            'A'..='Z' => Some(10 + c as u32 - 'A' as u32),
            'a'..='z' => Some(36 + c as u32 - 'a' as u32),
            '.' => Some(62),
            '_' => Some(63),
            _ => None,
        }
    }
    let mut out = String::new();
    if table {
        out.push('\u{4840}');
    }
    let mut it = name.chars().peekable();
    while let Some(c1) = it.next() {
        match b64(c1) {
            Some(v1) => {
                if let Some(v2) = it.peek().copied().and_then(b64) {
                    it.next();
                    out.extend(char::from_u32(0x3800 + (v2 << 6) + v1));
                } else {
                    out.extend(char::from_u32(0x4800 + v1));
                }
            }
            None => out.push(c1),
        }
    }
    out
}

impl<R: Read + Seek> Db<R> {
    /// Open the database in `comp` (checked strictly by the caller):
    /// its class, string pool, `_Tables` and `_Columns`.
    pub(super) fn open(comp: cfb::CompoundFile<R>) -> Result<Db<R>, String> {
        let clsid = comp.root_entry().clsid().hyphenated().to_string();
        match clsid.as_str() {
            CLSID_INSTALLER => {}
            CLSID_PATCH => {
                return Err("a Windows Installer patch, not an installer database".into());
            }
            CLSID_TRANSFORM => {
                return Err("a Windows Installer transform, not an installer database".into());
            }
            other => return Err(format!("not an installer database (root class {other})")),
        }
        let mut db = Db {
            comp,
            long_refs: false,
            pool: Rc::new(Pool {
                data: Vec::new(),
                spans: Vec::new(),
                codepage: msi::CodePage::default(),
                decoded: std::cell::Cell::new(0),
            }),
            tables: HashMap::new(),
        };
        db.read_pool()?;
        // The system tables' layouts are fixed.
        let s = |n: &str, t| (n.to_owned(), t);
        db.tables
            .insert("_Tables".into(), vec![s("Name", ColType::Str)]);
        db.tables.insert(
            "_Columns".into(),
            vec![
                s("Table", ColType::Str),
                s("Number", ColType::I16),
                s("Name", ColType::Str),
                s("Type", ColType::I16),
            ],
        );
        let names = db.rows("_Tables")?;
        let cols = db.rows("_Columns")?;
        let mut specs: HashMap<String, Vec<(i64, String, ColType)>> = HashMap::new();
        for i in 0..names.len() {
            if let Some(n) = names.str(i, "Name")?
                && specs.insert(n.clone(), Vec::new()).is_some()
            {
                return Err(format!("_Tables names `{n}` twice"));
            }
        }
        for i in 0..cols.len() {
            let (Some(t), Some(num), Some(name), Some(bits)) = (
                cols.str(i, "Table")?,
                cols.int(i, "Number")?,
                cols.str(i, "Name")?,
                cols.int(i, "Type")?,
            ) else {
                return Err("a _Columns row with an empty cell".into());
            };
            let Some(v) = specs.get_mut(&t) else {
                return Err(format!("_Columns names table `{t}`, which _Tables lacks"));
            };
            if v.len() == MAX_COLUMNS {
                return Err(format!("table `{t}` has more than {MAX_COLUMNS} columns"));
            }
            v.push((num, name, ColType::from_bits(bits as i32)?));
        }
        for (t, mut v) in specs {
            if t == "_Tables" || t == "_Columns" {
                continue;
            }
            v.sort_by_key(|c| c.0);
            if v.is_empty() || v.iter().enumerate().any(|(i, c)| c.0 != i as i64 + 1) {
                return Err(format!("table `{t}` does not number its columns 1..N"));
            }
            db.tables
                .insert(t, v.into_iter().map(|(_, n, ty)| (n, ty)).collect());
        }
        Ok(db)
    }

    /// The whole of stream `name` (encoded already), at most `max` bytes.
    fn read_stream(&mut self, name: &str, what: &str, max: u64) -> Result<Vec<u8>, String> {
        let mut s = self
            .comp
            .open_stream(name)
            .map_err(|e| format!("{what}: {e}"))?;
        let len = s.len();
        if len > max {
            return Err(format!("{what} is {len} bytes, more than the {max} read"));
        }
        // Grown as bytes arrive: the length is the directory's claim, and
        // the chain behind it may be shorter.
        let mut out = Vec::new();
        s.by_ref()
            .take(len)
            .read_to_end(&mut out)
            .map_err(|e| format!("{what}: {e}"))?;
        if out.len() as u64 != len {
            return Err(format!("{what} ends at byte {} of {len}", out.len()));
        }
        Ok(out)
    }

    fn read_pool(&mut self) -> Result<(), String> {
        let pool = self.read_stream(
            &encode_name("_StringPool", true),
            "_StringPool",
            MAX_POOL_STREAM,
        )?;
        let data = self.read_stream(
            &encode_name("_StringData", true),
            "_StringData",
            MAX_STRING_DATA,
        )?;
        let head: [u8; 4] = pool
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or("_StringPool is shorter than its header")?;
        let head = u32::from_le_bytes(head);
        self.long_refs = head & LONG_STRING_REFS != 0;
        let cp = (head & !LONG_STRING_REFS) as i32;
        let codepage = msi::CodePage::from_id(cp)
            .ok_or_else(|| format!("_StringPool names an unknown code page {cp}"))?;
        let mut spans = Vec::with_capacity(pool.len() / 4);
        let mut at = 4;
        let mut off = 0usize;
        let u16_at = |i: usize| pool.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        while at < pool.len() {
            let (Some(len), Some(refs)) = (u16_at(at), u16_at(at + 2)) else {
                return Err("_StringPool ends inside an entry".into());
            };
            at += 4;
            let mut len = usize::from(len);
            if len == 0 && refs > 0 {
                // A long string: its length follows.
                let b: [u8; 4] = pool
                    .get(at..at + 4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or("_StringPool ends inside a long entry")?;
                len = u32::from_le_bytes(b) as usize;
                at += 4;
            }
            let end = off
                .checked_add(len)
                .filter(|end| *end <= data.len())
                .ok_or("_StringPool's lengths pass the end of _StringData")?;
            spans.push((off, end));
            off = end;
        }
        self.pool = Rc::new(Pool {
            data,
            spans,
            codepage,
            decoded: std::cell::Cell::new(0),
        });
        Ok(())
    }

    /// The rows of `table`, or none if the database lacks it.
    pub(super) fn rows(&mut self, table: &str) -> Result<Rows, String> {
        let Some(cols) = self.tables.get(table).cloned() else {
            return Ok(Rows {
                table: table.to_owned(),
                columns: Vec::new(),
                cells: Vec::new(),
                pool: Rc::clone(&self.pool),
            });
        };
        let name = encode_name(table, true);
        let data = if self.comp.is_stream(&name) {
            self.read_stream(&name, &format!("the {table} table"), MAX_TABLE_STREAM)?
        } else {
            Vec::new()
        };
        let width: usize = cols.iter().map(|c| c.1.width(self.long_refs)).sum();
        if data.len() % width != 0 {
            return Err(format!(
                "the {table} table's {} bytes are not whole rows of {width}",
                data.len()
            ));
        }
        let n = data.len() / width;
        if n > MAX_ROWS {
            return Err(format!("the {table} table has more than {MAX_ROWS} rows"));
        }
        // Stored column by column.
        let ncols = cols.len();
        let mut cells = vec![Cell::Null; n * ncols];
        let mut at = 0;
        for (c, (cname, ty)) in cols.iter().enumerate() {
            let w = ty.width(self.long_refs);
            for row in 0..n {
                let b = &data[at..at + w];
                at += w;
                cells[row * ncols + c] = match ty {
                    ColType::I16 => match u16::from_le_bytes([b[0], b[1]]) {
                        0 => Cell::Null,
                        v => Cell::Int(i32::from((v ^ 0x8000) as i16)),
                    },
                    ColType::I32 => match u32::from_le_bytes([b[0], b[1], b[2], b[3]]) {
                        0 => Cell::Null,
                        v => Cell::Int((v ^ 0x8000_0000) as i32),
                    },
                    ColType::Binary => Cell::Binary,
                    ColType::Str => {
                        let mut r = u32::from(u16::from_le_bytes([b[0], b[1]]));
                        if self.long_refs {
                            r |= u32::from(b[2]) << 16;
                        }
                        match r {
                            0 => Cell::Null,
                            r => match self.pool.spans.get(r as usize - 1) {
                                Some((a, b)) if a == b => Cell::Null,
                                Some(_) => Cell::Str(r - 1),
                                None => {
                                    return Err(format!(
                                        "{table}.{cname} names string {r}; the pool has {}",
                                        self.pool.spans.len()
                                    ));
                                }
                            },
                        }
                    }
                };
            }
        }
        Ok(Rows {
            table: table.to_owned(),
            columns: cols.into_iter().map(|c| c.0).collect(),
            cells,
            pool: Rc::clone(&self.pool),
        })
    }

    /// Stream `name` (a plain stream, such as an embedded cabinet).
    pub(super) fn stream(&mut self, name: &str) -> std::io::Result<cfb::Stream<R>> {
        self.comp.open_stream(encode_name(name, false))
    }
}
