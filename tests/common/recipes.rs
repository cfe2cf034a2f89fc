//! Recipes for the committed fixtures: the valid packages (what they
//! contain and how they are written) and the hostile variants derived from
//! `valid/multi-block.sft` (each with the error a reader must report).

use super::patch::{self, Patch};
use super::{noise, text};

/// A valid fixture: contents and writer options.
#[derive(Debug, Clone)]
pub struct Valid {
    pub file: &'static str,
    /// Files (path, contents).
    pub files: Vec<(&'static str, Vec<u8>)>,
    /// Explicit empty directories.
    pub dirs: Vec<&'static str>,
    pub block_size: u32,
    /// zlib level, or `None` for stored blocks.
    pub level: Option<u32>,
    pub full_load: bool,
    pub launch: &'static str,
    /// Derived from another fixture by adding an unknown optional section.
    pub unknown_section_of: Option<&'static str>,
    /// Format v1.1: the block hash section (the v1.0 fixtures have none).
    pub hashes: bool,
    /// zstd (codec 2) at `level` instead of zlib.
    pub zstd: bool,
}

/// Body of the unknown optional section (kind 100, flags 0).
pub const UNKNOWN_KIND: u32 = 100;
pub const UNKNOWN_BODY: &[u8] = b"a section from a future minor version";

pub fn valid() -> Vec<Valid> {
    let base = Valid {
        file: "",
        files: vec![],
        dirs: vec![],
        block_size: 65536,
        level: Some(6),
        full_load: false,
        launch: "",
        unknown_section_of: None,
        hashes: false,
        zstd: false,
    };
    vec![
        Valid {
            file: "minimal.sft",
            files: vec![("hello.txt", b"hello, world\n".to_vec())],
            ..base.clone()
        },
        Valid {
            file: "empty.sft",
            ..base.clone()
        },
        // Base of every malformed fixture: FB1 and FB2, zlib and stored
        // blocks (noise does not shrink), 4 KiB blocks, nested directories,
        // an empty file, an empty directory, a non-ASCII name and a
        // two-byte top-level name (`zz`, rewritten to `..` by a recipe).
        Valid {
            file: "multi-block.sft",
            files: vec![
                ("bin/app.exe", text(20_000)),
                ("bin/lib.dll", noise(7, 9_000)),
                ("data/empty.txt", vec![]),
                ("docs/ü.txt", text(3_000)),
                ("zz", b"z\n".to_vec()),
            ],
            dirs: vec!["cache"],
            block_size: 4096,
            level: Some(6),
            launch: "bin/app.exe\nbin/lib.dll:0:5000\n",
            ..base.clone()
        },
        Valid {
            file: "stored-only.sft",
            files: vec![
                ("a/b/c.bin", noise(3, 6_000)),
                ("a/d.txt", text(2_500)),
                ("e", vec![]),
                ("日本/語.txt", text(700)),
            ],
            dirs: vec!["empty-dir"],
            block_size: 4096,
            level: None,
            launch: "a/d.txt:100:1000\na/b/c.bin:4000:200\na/d.txt:0:1\n",
            ..base.clone()
        },
        Valid {
            file: "fb1-only.sft",
            files: vec![
                ("app/main.exe", text(40_000)),
                ("app/res.bin", noise(9, 5_000)),
            ],
            block_size: 16384,
            level: Some(9),
            full_load: true,
            ..base.clone()
        },
        // Format v1.1: block hashes (kind 6), FB1 and FB2, zlib and
        // stored blocks.
        Valid {
            file: "hashed.sft",
            files: vec![
                ("bin/app.exe", text(20_000)),
                ("bin/lib.dll", noise(11, 9_000)),
                ("readme.txt", text(1_000)),
            ],
            block_size: 4096,
            launch: "bin/app.exe\n",
            hashes: true,
            ..base.clone()
        },
        // Format v1.1: zstd blocks (codec 2) with block hashes.
        Valid {
            file: "zstd.sft",
            files: vec![
                ("app/main.exe", text(40_000)),
                ("app/res.bin", noise(13, 5_000)),
            ],
            block_size: 16384,
            level: Some(19),
            launch: "app/main.exe:0:10000\n",
            hashes: true,
            zstd: true,
            ..base.clone()
        },
        Valid {
            file: "unknown-optional-section.sft",
            files: vec![("hello.txt", b"hello, world\n".to_vec())],
            unknown_section_of: Some("minimal.sft"),
            ..base
        },
    ]
}

impl Valid {
    /// Every entry the package must hold: (path, is_dir, contents), sorted.
    pub fn expected_entries(&self) -> Vec<(String, bool, Vec<u8>)> {
        let mut all = std::collections::BTreeMap::new();
        let parents = |p: &str, all: &mut std::collections::BTreeMap<String, _>| {
            let mut at = 0;
            while let Some(i) = p[at..].find('/') {
                all.entry(p[..at + i].to_owned()).or_insert((true, vec![]));
                at += i + 1;
            }
        };
        for (p, c) in &self.files {
            parents(p, &mut all);
            all.insert(p.to_string(), (false, c.clone()));
        }
        for d in &self.dirs {
            parents(d, &mut all);
            all.insert(d.to_string(), (true, vec![]));
        }
        all.into_iter().map(|(p, (d, c))| (p, d, c)).collect()
    }

    /// Write the package as the fixture generator does.
    #[cfg(feature = "write")]
    pub fn build(&self) -> Vec<u8> {
        use sft::WriteOptions;
        use sft::read::Attributes;
        use sft::write::{BlockSize, Compression, PackageBuilder, parse_launch_list};
        let opts = WriteOptions::default()
            .name(self.file.trim_end_matches(".sft"))
            .comment("sft test fixture")
            .version(3)
            .block_size(BlockSize::from_bytes(self.block_size.into()).unwrap())
            .compression(match self.level {
                None => Compression::None,
                Some(l) if self.zstd => Compression::Zstd(l as i32),
                Some(l) => Compression::Zlib(l),
            })
            .block_hashes(self.hashes)
            .full_load(self.full_load)
            .created(1_700_000_000, 123)
            .threads(1);
        let mut b = PackageBuilder::new(opts);
        for (i, (p, c)) in self.files.iter().enumerate() {
            let attrs = Attributes::from_bits(if p.ends_with(".exe") { 1 << 2 } else { 0 });
            b.add_bytes_with(p, c.clone(), (1_650_000_000 + i as i64, 42), attrs)
                .unwrap();
        }
        for d in &self.dirs {
            b.add_dir(d, (1_600_000_000, 0)).unwrap();
        }
        b.launch_list(parse_launch_list(self.launch).unwrap());
        b.write_to_vec().unwrap()
    }
}

/// A malformed fixture: file name, how it is made from the base, and the
/// error (as [`super::describe`] renders it) a reader must report.
#[derive(Debug, Clone, Copy)]
pub struct Bad {
    pub file: &'static str,
    pub expect: &'static str,
    pub problem: &'static str,
    pub make: fn(&[u8]) -> Vec<u8>,
    /// Bytes depend on the zlib backend, so only the error is compared.
    pub backend_dependent: bool,
}

const fn bad(
    file: &'static str,
    expect: &'static str,
    problem: &'static str,
    make: fn(&[u8]) -> Vec<u8>,
) -> Bad {
    Bad {
        file,
        expect,
        problem,
        make,
        backend_dependent: false,
    }
}

fn with(base: &[u8], f: impl FnOnce(&mut Patch)) -> Vec<u8> {
    let mut p = Patch::new(base);
    f(&mut p);
    p.0
}

fn edit_section(p: &mut Patch, kind: u32, f: impl FnOnce(&mut patch::Sec)) {
    let i = p.find_section(kind);
    let mut s = p.section(i);
    f(&mut s);
    p.set_section(i, s);
}

/// zlib stream of 256 KiB of zeros: a few hundred bytes that inflate to
/// 64 times a 4 KiB block.
#[cfg(feature = "deflate")]
pub fn bomb() -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 256 * 1024]).unwrap();
    z.finish().unwrap()
}

pub fn malformed() -> Vec<Bad> {
    use patch::*;
    vec![
        bad(
            "bad-magic.sft",
            "Format Header BadMagic",
            "magic byte 1 `S` -> `s`",
            |b| with(b, |p| p.0[1] ^= 0x20),
        ),
        bad(
            "major-version-2.sft",
            "Unsupported MajorVersion(2)",
            "major version 2 (header CRC fixed)",
            |b| {
                with(b, |p| {
                    p.set_u16(H_MAJOR, 2).fix_header_crc();
                })
            },
        ),
        bad(
            "header-crc.sft",
            "Integrity Header CrcMismatch",
            "header CRC flipped",
            |b| with(b, |p| p.0[H_CRC] ^= 0xff),
        ),
        bad(
            "header-len-small.sft",
            "Format Header BadValue(header_len)",
            "header_len 64 (< 128)",
            |b| {
                with(b, |p| {
                    p.set_u32(H_HEADER_LEN, 64).fix_header_crc();
                })
            },
        ),
        bad(
            "truncated-header.sft",
            "Format Header Truncated",
            "first 100 bytes only",
            |b| b[..100].to_vec(),
        ),
        bad(
            "prologue-past-eof.sft",
            "Format Header Truncated",
            "prologue_len beyond the end of the file (header CRC fixed)",
            |b| {
                with(b, |p| {
                    let past = p.0.len() as u64 + 4096;
                    p.set_u64(H_PROLOGUE_LEN, past).fix_header_crc();
                })
            },
        ),
        bad(
            "section-table-crc.sft",
            "Integrity SectionTable CrcMismatch",
            "section table CRC flipped (header CRC fixed)",
            |b| {
                with(b, |p| {
                    let v = p.u32(H_TABLE_CRC);
                    p.set_u32(H_TABLE_CRC, v ^ 1).fix_header_crc();
                })
            },
        ),
        bad(
            "section-out-of-bounds.sft",
            "Format Section(4) OutOfBounds(section offset)",
            "names section length 2^40",
            |b| {
                with(b, |p| {
                    edit_section(p, NAMES, |s| s.length = 1 << 40);
                    p.fix_table_crc().fix_header_crc();
                })
            },
        ),
        bad(
            "sections-overlap.sft",
            "Format SectionTable Overlap",
            "entries section starts 8 bytes inside the metadata section",
            |b| {
                with(b, |p| {
                    edit_section(p, ENTRIES, |s| s.offset -= 8);
                    p.fix_all();
                })
            },
        ),
        bad(
            "section-duplicate.sft",
            "Format SectionTable DuplicateSection(1)",
            "names section relabelled as a second metadata section",
            |b| {
                with(b, |p| {
                    edit_section(p, NAMES, |s| s.kind = METADATA);
                    p.fix_all();
                })
            },
        ),
        bad(
            "section-missing.sft",
            "Format SectionTable MissingSection(4)",
            "names section relabelled as unknown optional kind 100",
            |b| {
                with(b, |p| {
                    edit_section(p, NAMES, |s| {
                        s.kind = 100;
                        s.flags = 0;
                    });
                    p.fix_all();
                })
            },
        ),
        bad(
            "section-unknown-required.sft",
            "Unsupported RequiredSection(100)",
            "names section relabelled as unknown REQUIRED kind 100",
            |b| {
                with(b, |p| {
                    edit_section(p, NAMES, |s| {
                        s.kind = 100;
                        s.flags = 1;
                    });
                    p.fix_all();
                })
            },
        ),
        bad(
            "entry-dotdot.sft",
            "Format Entry(8) BadPath",
            "path of entry 8 `zz` rewritten to `..`, every CRC fixed",
            |b| {
                with(b, |p| {
                    let r = p.entry_path_range(8);
                    assert_eq!(&p.0[r.clone()], b"zz");
                    p.0[r].copy_from_slice(b"..");
                    p.fix_entry_crc(8).fix_all();
                })
            },
        ),
        bad(
            "entry-name-escape.sft",
            "Format Entry(8) BadPath",
            "path of entry 8 `zz` rewritten to ESC `[` (a terminal control sequence, §6.2 rule 5), every CRC fixed",
            |b| {
                with(b, |p| {
                    let r = p.entry_path_range(8);
                    assert_eq!(&p.0[r.clone()], b"zz");
                    p.0[r].copy_from_slice(b"\x1b[");
                    p.fix_entry_crc(8).fix_all();
                })
            },
        ),
        bad(
            "entry-trailing-dot.sft",
            "Format Entry(8) BadPath",
            "path of entry 8 `zz` rewritten to `z.` (Windows strips the dot, §6.2 rule 6), every CRC fixed",
            |b| {
                with(b, |p| {
                    let r = p.entry_path_range(8);
                    assert_eq!(&p.0[r.clone()], b"zz");
                    p.0[r].copy_from_slice(b"z.");
                    p.fix_entry_crc(8).fix_all();
                })
            },
        ),
        bad(
            "entries-unsorted.sft",
            "Format Entry(2) NotSorted",
            "entry records 1 and 2 swapped, every CRC fixed",
            |b| {
                with(b, |p| {
                    let (a, c) = (p.entry_at(1), p.entry_at(2));
                    let len = c - a;
                    let first = p.0[a..c].to_vec();
                    p.0.copy_within(c..c + len, a);
                    p.0[c..c + len].copy_from_slice(&first);
                    p.fix_all();
                })
            },
        ),
        bad(
            "block-outside-data.sft",
            "Format BlockRecord(0) OutOfBounds(stored_offset)",
            "block 0 stored_offset at the end of the file, every CRC fixed",
            |b| {
                with(b, |p| {
                    let at = p.block_record_at(0);
                    let end = p.0.len() as u64;
                    p.set_u64(at, end).fix_block_record_crc(0).fix_all();
                })
            },
        ),
        bad(
            "block-crc.sft",
            "Integrity Block(1) CrcMismatch",
            "block 1 data CRC flipped in its record, record CRC fixed",
            |b| {
                with(b, |p| {
                    let at = p.block_record_at(1) + 16;
                    let v = p.u32(at);
                    p.set_u32(at, v ^ 0x8000_0000)
                        .fix_block_record_crc(1)
                        .fix_all();
                })
            },
        ),
        bad(
            "block-data-flipped.sft",
            "Integrity Block(0) CrcMismatch",
            "one byte of block 0's stored data flipped",
            |b| {
                with(b, |p| {
                    let at = p.u64(p.block_record_at(0)) as usize + 10;
                    p.0[at] ^= 0x40;
                })
            },
        ),
        Bad {
            backend_dependent: true,
            ..bad(
                "zlib-bomb.sft",
                "Integrity Block(8) Overlong|SizeMismatch|Inflate",
                "last block replaced by a zlib stream of 256 KiB of zeros (raw_len 2906), CRCs fixed",
                |b| {
                    #[cfg(feature = "deflate")]
                    {
                        with(b, |p| {
                            p.replace_last_block(&bomb(), 1);
                        })
                    }
                    #[cfg(not(feature = "deflate"))]
                    {
                        let _ = b;
                        unreachable!("needs feature deflate")
                    }
                },
            )
        },
        bad(
            "codec-7.sft",
            "Unsupported Codec { block: 0, codec: 7 }",
            "block 0 codec id 7, record CRC fixed",
            |b| {
                with(b, |p| {
                    let at = p.block_record_at(0);
                    p.0[at + 20] = 7;
                    p.fix_block_record_crc(0).fix_all();
                })
            },
        ),
        bad(
            "blocks-aliased.sft",
            "Format BlockRecord(1) Inconsistent(stored_offset)",
            "block record 1 points at block 0's stored bytes (length, CRC, codec copied), record CRC fixed",
            |b| {
                with(b, |p| {
                    let (a, c) = (p.block_record_at(0), p.block_record_at(1));
                    let rec0 = p.0[a..a + 21].to_vec();
                    p.0[c..c + 12].copy_from_slice(&rec0[..12]);
                    p.0[c + 16..c + 21].copy_from_slice(&rec0[16..21]);
                    p.fix_block_record_crc(1).fix_all();
                })
            },
        ),
        bad(
            "blocks-overlap.sft",
            "Format BlockRecord(1) Inconsistent(stored_offset)",
            "block 1 starts 3 bytes early, inside block 0, with the CRC of what it now covers",
            |b| {
                with(b, |p| {
                    let at = p.block_record_at(1);
                    let off = p.u64(at) - 3;
                    let len = p.u32(at + 8) as usize;
                    let crc = crc32fast::hash(&p.0[off as usize..off as usize + len]);
                    p.set_u64(at, off).set_u32(at + 16, crc);
                    p.fix_block_record_crc(1).fix_all();
                })
            },
        ),
        bad(
            "extents-shared.sft",
            "Format Entry(2) Inconsistent(extent_first)",
            "entry 2 `bin/lib.dll` given entry 1's extent record and size, every CRC fixed",
            |b| {
                with(b, |p| {
                    let (e1, e2) = (p.entry_at(1), p.entry_at(2));
                    let (size, first) = (p.u64(e1 + 16), p.u64(e1 + 40));
                    p.set_u64(e2 + 16, size).set_u64(e2 + 40, first);
                    p.fix_entry_crc(2).fix_all();
                })
            },
        ),
        bad(
            "entries-duplicate.sft",
            "Format Entry(6) NotSorted",
            "directory entry 6 `docs` renamed `data`, a second entry of that path, every CRC fixed",
            |b| {
                with(b, |p| {
                    let r = p.entry_path_range(6);
                    p.0[r].copy_from_slice(b"data");
                    p.fix_entry_crc(6).fix_all();
                })
            },
        ),
        bad(
            "parent-missing.sft",
            "Format Entry(5) MissingParent",
            "directory entry 4 `data` renamed `daTa`: `data/empty.txt` has no parent, every CRC fixed",
            |b| {
                with(b, |p| {
                    let r = p.entry_path_range(4);
                    p.0[r].copy_from_slice(b"daTa");
                    p.fix_entry_crc(4).fix_all();
                })
            },
        ),
        bad(
            "section-crc-names.sft",
            "Integrity Section(4) CrcMismatch",
            "names section CRC flipped in the table (table and header CRCs fixed)",
            |b| {
                with(b, |p| {
                    edit_section(p, patch::NAMES, |s| s.crc ^= 1);
                    p.fix_table_crc().fix_header_crc();
                })
            },
        ),
        bad(
            "trailing-garbage.sft",
            "Format Data Inconsistent(package length)",
            "16 bytes appended",
            |b| {
                let mut v = b.to_vec();
                v.extend_from_slice(b"GARBAGE!GARBAGE!");
                v
            },
        ),
    ]
}

/// The expectations table as committed in `fixtures/malformed/EXPECTED.txt`.
pub fn expected_txt() -> String {
    let mut s = String::from(
        "# Malformed fixtures, derived from ../valid/multi-block.sft by\n\
         # tests/common/recipes.rs (regenerate: SFT_BLESS=1 cargo test --all-features\n\
         # --test integration -- fixtures). Columns: file, kind, region, problem\n\
         # (first error of parse -> verify -> read everything), then what was done.\n",
    );
    for b in malformed() {
        let mut parts = b.expect.splitn(3, ' ');
        let kind = parts.next().unwrap();
        let (region, problem) = if kind == "Unsupported" {
            ("-", b.expect["Unsupported ".len()..].to_owned())
        } else {
            (parts.next().unwrap(), parts.next().unwrap().to_owned())
        };
        s.push_str(&format!(
            "{:<30}{:<13}{:<16}{:<44}# {}\n",
            b.file, kind, region, problem, b.problem
        ));
    }
    s
}
