//! Hostile packages with every CRC valid: the shapes of issue 13 §2.
//! Every reader that returns or writes data refuses them, with the rule's
//! error, before it returns or writes anything: `extract` (library and
//! CLI), single-file reads, the streaming session, `verify`, `ls -l` and
//! `info`.
//!
//! Each shape is built from a writer-made package with the patcher in
//! `tests/common/patch.rs` (which recomputes every CRC the edit touches).

use sft::error::{FormatError, FormatProblem, IntegrityError, IntegrityProblem, Region};
use sft::io::drive;
use sft::stream::{SessionConfig, StreamSession};
use sft::write::{BlockSize, Compression, PackageBuilder};
use sft::{Error, Package, WriteOptions};

use crate::common::noise;
use crate::common::patch::*;

fn build(bs: BlockSize, comp: Compression, files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = PackageBuilder::new(
        WriteOptions::default()
            .block_size(bs)
            .compression(comp)
            .created(1_700_000_000, 0)
            .threads(1),
    );
    for (p, c) in files {
        b.add_bytes_with(p, c.clone(), (1_650_000_000, 0), Default::default())
            .unwrap();
    }
    b.write_to_vec().unwrap()
}

/// The format problem of `e` at `region`, or a panic naming `e`.
fn format(e: &Error) -> (Region, FormatProblem) {
    match e {
        Error::Format(FormatError {
            region, problem, ..
        }) => (*region, *problem),
        other => panic!("expected a format error, got {other}"),
    }
}

fn stored_offset_error(id: u32, expected: u64, found: u64) -> (Region, FormatProblem) {
    (
        Region::BlockRecord(id),
        FormatProblem::Inconsistent {
            field: "stored_offset",
            expected,
            found,
        },
    )
}

/// Every reader that returns or writes data fails on `bytes` with `want`
/// (as `check` judges the error), and nothing is written or returned:
/// `verify`, `verify_structure`, `extract`, `read_file`, `read_at`,
/// `chunks`, `reader` of every file.
fn every_reader_refuses(bytes: &[u8], check: &dyn Fn(&Error)) {
    let pkg = Package::parse(bytes).expect("the hostile package opens");
    check(&pkg.verify().unwrap_err());
    check(&pkg.verify_structure().unwrap_err());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let e = sft::extract::extract(&pkg, &out, &Default::default()).unwrap_err();
    check(&e);
    assert!(!out.exists(), "extract created its target before refusing");
    check(&sft::fuzzing::extract_in_memory(&pkg).unwrap_err());
}

/// Single-file reads of `path` fail with `check`'s error on a fresh
/// `Package` each (so the first access is the one that checks).
fn file_reads_refuse(bytes: &[u8], path: &str, check: &dyn Fn(&Error)) {
    let fresh = || Package::parse(bytes).unwrap();
    let pkg = fresh();
    let e = pkg.entry(path).unwrap();
    check(&pkg.read_file(&e).unwrap_err());
    let pkg = fresh();
    let mut buf = [0u8; 100];
    check(&pkg.read_at(&e, 0, &mut buf).unwrap_err());
    let pkg = fresh();
    check(&pkg.chunks(&e).next().unwrap().unwrap_err());
    let pkg = fresh();
    check(&pkg.reader(e).unwrap_err());
    let pkg = fresh();
    check(&pkg.read_block(sft::BlockId(0)).unwrap_err());
    // The outcome is remembered: a second read reports it again.
    check(&pkg.read_file(&e).unwrap_err());
    check(&pkg.check_storage().unwrap_err());
}

/// `n` blocks of `bs` stored zeros (identical bytes, identical CRCs),
/// then every block record pointed at the stored bytes of block 0, and
/// the data region cut to those bytes.
fn aliased_of(bs: BlockSize, n: usize) -> Vec<u8> {
    let len = bs.bytes() as usize;
    let base = build(bs, Compression::None, &[("zeros.bin", vec![0u8; n * len])]);
    let mut p = Patch::new(&base);
    let first = p.u64(p.block_record_at(0));
    for id in 1..p.block_count() {
        let at = p.block_record_at(id);
        p.set_u64(at, first).fix_block_record_crc(id);
    }
    p.0.truncate(first as usize + len);
    p.set_u64(H_DATA_LEN, len as u64).fix_all();
    p.0
}

/// 64 blocks of 64 KiB (4 MiB) from a ~70 KB package.
fn aliased() -> Vec<u8> {
    aliased_of(BlockSize::K64, 64)
}

#[test]
fn aliased_block_records_are_refused_by_every_reader() {
    let bytes = aliased();
    let pkg = Package::parse(&bytes).unwrap();
    let logical = pkg.metadata().package_size();
    assert_eq!(logical, 64 * 65_536);
    // 2048:1 would be the yield; a package of zeros yields ~500:1.
    assert!(logical > 50 * bytes.len() as u64);
    let plen = pkg.header().prologue_len;
    let want = stored_offset_error(1, plen + 65_536, plen);
    let check = |e: &Error| assert_eq!(format(e), want, "{e}");
    every_reader_refuses(&bytes, &check);
    file_reads_refuse(&bytes, "zeros.bin", &check);
}

#[test]
fn overlapping_block_records_are_refused_not_read_as_other_bytes() {
    // Three stored 4 KiB blocks of noise; block 1 is moved 100 bytes into
    // block 0, with the CRC of the bytes it now covers.
    let bytes = overlapping();
    let p = Patch::new(&bytes);
    let b0 = p.u64(p.block_record_at(0));
    let want = stored_offset_error(1, b0 + 4096, b0 + 100);
    let check = |e: &Error| assert_eq!(format(e), want, "{e}");
    every_reader_refuses(&bytes, &check);
    file_reads_refuse(&bytes, "n.bin", &check);
    // On today's main extraction wrote block 0's bytes 100.. as the file's
    // bytes 4096..: now nothing is written at all (checked above).
}

/// Three stored 4 KiB blocks of noise; block 1 moved 100 bytes into block
/// 0, with the CRC of the bytes it now covers.
fn overlapping() -> Vec<u8> {
    let mut p = Patch::new(&build(
        BlockSize::K4,
        Compression::None,
        &[("n.bin", noise(11, 3 * 4096))],
    ));
    let b0 = p.u64(p.block_record_at(0));
    let at = p.block_record_at(1);
    let moved = b0 + 100;
    let crc = crc32fast::hash(&p.0[moved as usize..moved as usize + 4096]);
    p.set_u64(at, moved)
        .set_u32(at + 16, crc)
        .fix_block_record_crc(1);
    p.fix_all();
    p.0
}

#[test]
fn a_gap_in_the_data_region_is_refused() {
    // 16 bytes of junk between blocks 0 and 1; later records shifted.
    let mut p = Patch::new(&build(
        BlockSize::K4,
        Compression::None,
        &[("n.bin", noise(12, 3 * 4096))],
    ));
    let b0 = p.u64(p.block_record_at(0));
    let end0 = (b0 + 4096) as usize;
    p.0.splice(end0..end0, [0xAAu8; 16]);
    for id in 1..p.block_count() {
        let at = p.block_record_at(id);
        let off = p.u64(at);
        p.set_u64(at, off + 16).fix_block_record_crc(id);
    }
    let data_len = p.u64(H_DATA_LEN);
    p.set_u64(H_DATA_LEN, data_len + 16).fix_all();
    let want = stored_offset_error(1, b0 + 4096, b0 + 4096 + 16);
    let check = |e: &Error| assert_eq!(format(e), want, "{e}");
    every_reader_refuses(&p.0, &check);
    file_reads_refuse(&p.0, "n.bin", &check);
}

/// A two-file package `a`, `b` (one-byte names) with entry `n`'s path
/// byte replaced by `to`.
fn renamed(files: &[(&str, Vec<u8>)], renames: &[(u64, &[u8])]) -> Vec<u8> {
    let mut p = Patch::new(&build(BlockSize::K4, Compression::Zlib(6), files));
    for &(n, to) in renames {
        let r = p.entry_path_range(n);
        assert_eq!(r.len(), to.len());
        p.0[r].copy_from_slice(to);
        p.fix_entry_crc(n);
    }
    p.fix_all();
    p.0
}

fn entry_error(bytes: &[u8], n: u64, problem: FormatProblem) {
    let check = |e: &Error| assert_eq!(format(e), (Region::Entry(n), problem), "{e}");
    every_reader_refuses(bytes, &check);
}

#[test]
fn duplicate_entries_are_refused() {
    let bytes = renamed(
        &[("a", b"first".to_vec()), ("b", b"second".to_vec())],
        &[(1, b"a")],
    );
    entry_error(&bytes, 1, FormatProblem::NotSorted);
}

#[test]
fn unsorted_entries_are_refused() {
    let bytes = renamed(
        &[("a", b"first".to_vec()), ("b", b"second".to_vec())],
        &[(0, b"b"), (1, b"a")],
    );
    entry_error(&bytes, 1, FormatProblem::NotSorted);
}

#[test]
fn missing_parents_are_refused() {
    // Entries `a` (dir), `a/x`, `b`: the directory renamed `0`.
    let bytes = renamed(
        &[("a/x", b"x".to_vec()), ("b", b"b".to_vec())],
        &[(0, b"0")],
    );
    entry_error(&bytes, 1, FormatProblem::MissingParent);
}

#[test]
fn bad_section_crcs_are_refused() {
    let mut p = Patch::new(&build(
        BlockSize::K4,
        Compression::Zlib(6),
        &[("a", b"a".to_vec())],
    ));
    let i = p.find_section(NAMES);
    let mut s = p.section(i);
    s.crc ^= 1;
    p.set_section(i, s).fix_table_crc().fix_header_crc();
    let check = |e: &Error| match e {
        Error::Integrity(IntegrityError {
            region: Region::Section(4),
            problem: IntegrityProblem::CrcMismatch { .. },
            ..
        }) => {}
        other => panic!("expected the names section CRC error, got {other}"),
    };
    every_reader_refuses(&p.0, &check);
}

/// Replace the body of the section of `kind`, shifting what follows it
/// (later sections, the data region and every block record's
/// `stored_offset`), and fix every CRC but the entries' own.
fn replace_section(p: &mut Patch, kind: u32, body: &[u8]) {
    let i = p.find_section(kind);
    let s = p.section(i);
    let (start, end) = (s.offset as usize, (s.offset + s.length) as usize);
    let delta = body.len() as i64 - s.length as i64;
    p.0.splice(start..end, body.iter().copied());
    for j in 0..p.section_count() {
        let mut t = p.section(j);
        if j == i {
            t.length = body.len() as u64;
        } else if t.offset > s.offset {
            t.offset = t.offset.checked_add_signed(delta).unwrap();
        }
        p.set_section(j, t);
    }
    let plen = p.u64(H_PROLOGUE_LEN);
    p.set_u64(H_PROLOGUE_LEN, plen.checked_add_signed(delta).unwrap());
    for id in 0..p.block_count() {
        let at = p.block_record_at(id);
        let off = p.u64(at);
        p.set_u64(at, off.checked_add_signed(delta).unwrap())
            .fix_block_record_crc(id);
    }
}

/// Entry records, names and extents for `n` files whose extent runs are
/// given by `runs` (first, count, size), written over a package holding
/// one file of `logical` bytes; every entry CRC computed with CRC
/// combination, so building costs O(n + extents), not O(n × extents).
fn with_directory(
    base: Vec<u8>,
    names: &[String],
    extents: &[(u64, u64, u64)],
    runs: &[(u64, u32, u64)],
) -> Vec<u8> {
    let mut p = Patch::new(&base);
    let mut pool = Vec::new();
    let mut recs = Vec::new();
    for (name, &(first, count, size)) in names.iter().zip(runs) {
        let mut r = [0u8; 64];
        r[0..8].copy_from_slice(&(pool.len() as u64).to_le_bytes());
        r[8..12].copy_from_slice(&(name.len() as u32).to_le_bytes());
        r[14] = 1; // file
        r[16..24].copy_from_slice(&size.to_le_bytes());
        r[24..32].copy_from_slice(&1_650_000_000i64.to_le_bytes());
        r[36..40].copy_from_slice(&count.to_le_bytes());
        r[40..48].copy_from_slice(&first.to_le_bytes());
        pool.extend_from_slice(name.as_bytes());
        recs.push(r);
    }
    let mut ext = Vec::with_capacity(extents.len() * 24);
    for &(f, l, n) in extents {
        ext.extend_from_slice(&f.to_le_bytes());
        ext.extend_from_slice(&l.to_le_bytes());
        ext.extend_from_slice(&n.to_le_bytes());
    }
    // CRC of every distinct run, once.
    let mut run_crcs = std::collections::HashMap::new();
    let mut entries = Vec::with_capacity(recs.len() * 64);
    for (i, mut r) in recs.into_iter().enumerate() {
        let (first, count, _) = runs[i];
        let run = run_crcs.entry((first, count)).or_insert_with(|| {
            let mut h = crc32fast::Hasher::new();
            h.update(&ext[first as usize * 24..(first as usize + count as usize) * 24]);
            h
        });
        let mut h = crc32fast::Hasher::new();
        h.update(&r[..60]);
        h.update(names[i].as_bytes());
        h.combine(run);
        r[60..64].copy_from_slice(&h.finalize().to_le_bytes());
        entries.extend_from_slice(&r);
    }
    replace_section(&mut p, ENTRIES, &entries);
    replace_section(&mut p, EXTENTS, &ext);
    replace_section(&mut p, NAMES, &pool);
    p.fix_all();
    p.0
}

/// The shape: `n` file entries all pointing at the same `k`
/// extent records (1 byte each, tiling `0..k` of a `k`-byte stream), so
/// each entry alone is valid. n = 16,384 and k = 65,536 make a 2.7 MB
/// package with every CRC valid.
pub fn shared_extents(n: usize, k: u64) -> Vec<u8> {
    let base = build(
        BlockSize::K64,
        Compression::Zlib(6),
        &[("f", vec![7u8; k as usize])],
    );
    let names: Vec<String> = (0..n).map(|i| format!("f{i:05}")).collect();
    let extents: Vec<_> = (0..k).map(|j| (j, j, 1)).collect();
    let runs = vec![(0, k as u32, k); n];
    with_directory(base, &names, &extents, &runs)
}

fn shared_extents_error(e: &Error) {
    shared_extents_error_at(e, 4096);
}

/// Rule 58a at entry 1, whose run starts at 0 where entry 0's `k` end.
fn shared_extents_error_at(e: &Error, k: u64) {
    assert_eq!(
        format(e),
        (
            Region::Entry(1),
            FormatProblem::Inconsistent {
                field: "extent_first",
                expected: k,
                found: 0,
            }
        ),
        "{e}"
    );
}

#[test]
fn shared_extent_records_are_refused_at_the_second_entry() {
    let bytes = shared_extents(64, 4096);
    let pkg = Package::parse(&bytes).unwrap();
    // Each entry is valid on its own...
    for n in 0..64 {
        let e = pkg.entry_at(n).unwrap();
        assert_eq!((e.size(), e.extents().len()), (4096, 4096));
    }
    // ...but walking them in order stops at entry 1, as do counting,
    // verification and extraction.
    let mut it = pkg.entries();
    assert!(it.next().unwrap().is_ok());
    shared_extents_error(&it.next().unwrap().unwrap_err());
    assert!(it.next().is_none());
    shared_extents_error(&pkg.prologue().count_entries().unwrap_err());
    every_reader_refuses(&bytes, &shared_extents_error);
}

/// One file of `k` extents, each the whole `len`-byte logical stream.
fn one_file_overlapping(bs: BlockSize, k: u64) -> Vec<u8> {
    let len = u64::from(bs.bytes());
    let base = build(bs, Compression::Zlib(6), &[("f", vec![7u8; len as usize])]);
    let extents: Vec<_> = (0..k).map(|j| (j * len, 0, len)).collect();
    with_directory(base, &["f".to_owned()], &extents, &[(0, k as u32, k * len)])
}

/// Small hostile packages (every CRC valid) for the fuzz corpora: aliased,
/// overlapping and shared-extent shapes.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hostile-aliased-blocks", aliased_of(BlockSize::K4, 8)),
        ("hostile-overlapping-blocks", overlapping()),
        ("hostile-shared-extents", shared_extents(8, 16)),
        (
            "hostile-file-extents-overlap",
            one_file_overlapping(BlockSize::K4, 8),
        ),
    ]
}

#[test]
fn extents_overlapping_within_one_file_are_refused_on_load() {
    // One file of 64 extents, each the whole 64 KiB logical stream: it
    // would read as 4 MiB from one block.
    let bytes = one_file_overlapping(BlockSize::K64, 64);
    let pkg = Package::parse(&bytes).unwrap();
    let ext_at = Patch::new(&bytes).section_of(EXTENTS).offset;
    let e = pkg.entry_at(0).unwrap_err();
    match e {
        Error::Format(FormatError {
            region: Region::Extent(1),
            offset,
            problem: FormatProblem::Overlap,
        }) => assert_eq!(offset, ext_at + 24),
        other => panic!("expected an extent overlap, got {other}"),
    }
    assert!(pkg.entry("f").is_err());
    // Logical offsets that do not grow with file offsets are fine as long
    // as they do not overlap (a file with its middle part in FB1).
    let base = build(
        BlockSize::K64,
        Compression::Zlib(6),
        &[("f", noise(5, 3000))],
    );
    let extents = [(0, 1000, 1000), (1000, 0, 1000), (2000, 2000, 1000)];
    let bytes = with_directory(base.clone(), &["f".to_owned()], &extents, &[(0, 3, 3000)]);
    let pkg = Package::parse(&bytes).unwrap();
    pkg.verify().unwrap();
    let want = noise(5, 3000);
    let got = pkg.read_file(&pkg.entry("f").unwrap()).unwrap();
    assert_eq!(&got[..1000], &want[1000..2000]);
    assert_eq!(&got[1000..2000], &want[..1000]);
    // The same with two extents sharing logical bytes 1000..1500 is
    // refused. Sorted by logical offset, extent 1 (500..1500) comes first
    // and extent 0 (1000..2000) starts before it ends: extent 0 is named.
    let extents = [(0, 1000, 1000), (1000, 500, 1000), (2000, 2000, 1000)];
    let bytes = with_directory(base, &["f".to_owned()], &extents, &[(0, 3, 3000)]);
    let e = Package::parse(&bytes).unwrap().entry("f").unwrap_err();
    assert_eq!(
        format(&e),
        (Region::Extent(0), FormatProblem::Overlap),
        "{e}"
    );
}

#[test]
fn streaming_sessions_check_the_storage_layout_before_trusting_adjacency() {
    for bytes in [aliased(), overlapping()] {
        let pkg = Package::parse(&bytes).unwrap();
        let plen = pkg.header().prologue_len;
        let want = format(&pkg.verify().unwrap_err());
        assert!(matches!(want.0, Region::BlockRecord(1)), "{want:?}");
        // A session resuming from a cached prologue refuses it at once...
        let prologue = bytes[..plen as usize].to_vec();
        let e = StreamSession::with_prologue(SessionConfig::default(), prologue).unwrap_err();
        assert_eq!(format(&e), want, "{e}");
        // ...and one streaming from the bytes fails before its sink is
        // given anything (not even the prologue).
        let mut session = StreamSession::new(SessionConfig::default());
        let mut copy = Vec::new();
        let e = drive::drive(&mut session, &bytes, &mut copy).unwrap_err();
        assert_eq!(format(&e), want, "{e}");
        assert!(copy.is_empty(), "{} bytes written", copy.len());
    }
}

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use crate::common::cli::sft;
    use std::process::Command;

    /// Run `sft ARGS` with its address space capped at 1 GiB (`ulimit
    /// -v`): a command that tried to allocate in proportion to
    /// entries × extents aborts instead of succeeding.
    fn sft_capped(args: &[&str]) -> std::process::Output {
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_sft"))
            .args(args)
            .output()
            .unwrap()
    }

    fn fails_naming(out: &std::process::Output, what: &[&str]) {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "stderr: {err}");
        for w in what {
            assert!(err.contains(w), "`{w}` not in: {err}");
        }
    }

    #[test]
    fn every_command_refuses_shared_extent_records_at_entry_1() {
        // The audit's package: 16,384 entries × the same 65,536 extents.
        let bytes = shared_extents(16_384, 65_536);
        assert!(bytes.len() < 3_000_000, "{} bytes", bytes.len());
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path().join("shared.sft");
        std::fs::write(&pkg, &bytes).unwrap();
        let p = pkg.to_str().unwrap();
        let out_dir = tmp.path().join("out");
        let o = out_dir.to_str().unwrap();
        let what = ["entry 1", "extent_first", "expected 65536, found 0"];
        for args in [
            &["verify", p][..],
            &["extract", p, o],
            &["ls", "-l", p],
            &["ls", p],
            &["info", "--json", p],
            &["info", p],
        ] {
            let out = sft_capped(args);
            fails_naming(&out, &what);
            assert!(
                out.stdout.len() < 200,
                "{args:?} printed {} bytes",
                out.stdout.len()
            );
        }
        assert!(!out_dir.exists());
    }

    #[test]
    fn extract_and_cat_refuse_aliased_blocks() {
        let bytes = aliased();
        let tmp = tempfile::tempdir().unwrap();
        let pkg = tmp.path().join("aliased.sft");
        std::fs::write(&pkg, &bytes).unwrap();
        let p = pkg.to_str().unwrap();
        let out_dir = tmp.path().join("out");
        let what = ["block index record 1", "stored_offset"];
        let out = sft(&["extract", p, out_dir.to_str().unwrap()]);
        fails_naming(&out, &what);
        assert!(!out_dir.exists());
        let out = sft(&["cat", p, "zeros.bin"]);
        fails_naming(&out, &what);
        assert!(out.stdout.is_empty());
        fails_naming(&sft(&["verify", p]), &what);
    }
}

#[test]
fn entries_without_extents_may_put_extent_first_anywhere() {
    // Rule 58a binds only entries with extents: a directory's or an empty
    // file's `extent_first` may be anything up to the record count (§6.1).
    let bytes = crate::common::read_fixture("valid/multi-block.sft");
    let mut p = Patch::new(&bytes);
    let ext = p.section_of(EXTENTS);
    let records = ext.length / u64::from(ext.record_size);
    // Entry 3 is the directory `cache`, entry 5 the empty `data/empty.txt`.
    for (n, first) in [(3, 0), (5, records)] {
        let at = p.entry_at(n);
        assert_eq!(p.u32(at + 36), 0, "entry {n} has no extents");
        p.set_u64(at + 40, first).fix_entry_crc(n);
    }
    p.fix_all();
    let pkg = Package::parse(&p.0).unwrap();
    pkg.verify().unwrap();
    let c = pkg.prologue().count_entries().unwrap();
    assert_eq!((c.files, c.directories), (5, 4));
    sft::fuzzing::extract_in_memory(&pkg).unwrap();
}

#[test]
fn the_audit_shared_extent_package_is_refused_with_little_memory() {
    // 16,384 entries × the same 65,536 extent records, 2.7 MB: today's
    // verify asked for 1.6 GiB in one allocation (entries × extents
    // spans). Now every reader stops at entry 1, having allocated about
    // one entry's extents.
    let bytes = shared_extents(16_384, 65_536);
    let pkg = Package::parse(&bytes).unwrap();
    let bound = 4 << 20;
    let runs: [(&str, &dyn Fn() -> Error); 4] = [
        ("verify", &|| pkg.verify().unwrap_err()),
        ("extract", &|| {
            sft::fuzzing::extract_in_memory(&pkg).unwrap_err()
        }),
        ("count_entries", &|| {
            pkg.prologue().count_entries().unwrap_err()
        }),
        ("entries", &|| pkg.entries().find_map(Result::err).unwrap()),
    ];
    for (what, run) in runs {
        crate::common::alloc::reset();
        let e = run();
        let largest = crate::common::alloc::largest();
        shared_extents_error_at(&e, 65_536);
        assert!(largest < bound, "{what}: largest allocation {largest} B");
    }
}
