//! Reading the valid fixtures through every public API.

use std::io::{Read, Seek, SeekFrom};

use sft::read::Prologue;
use sft::{BlockId, ErrorKind, FeatureBlock, Package};

use crate::common::read_fixture;
use crate::common::recipes;

const ALL: [&str; 8] = [
    "minimal.sft",
    "hashed.sft",
    "zstd.sft",
    "empty.sft",
    "multi-block.sft",
    "stored-only.sft",
    "fb1-only.sft",
    "unknown-optional-section.sft",
];

#[test]
fn prologue_supports_lookups_without_data() {
    for f in ALL {
        let bytes = read_fixture(&format!("valid/{f}"));
        let pkg = Package::parse(&bytes).unwrap();
        let len = pkg.header().prologue_len as usize;
        let pro = Prologue::parse(&bytes[..len]).unwrap();
        assert_eq!(pro.as_bytes(), &bytes[..len]);
        assert_eq!(pro.entry_count(), pkg.entry_count());
        assert_eq!(pro.metadata(), pkg.metadata());
        assert_eq!(pro.index().len(), pkg.index().len());
        for e in pkg.entries() {
            let e = e.unwrap();
            let p = pro.find(e.path()).unwrap().unwrap();
            assert_eq!((p.number(), p.size()), (e.number(), e.size()));
        }
        for id in pkg.index().ids() {
            assert_eq!(pro.index().get(id).unwrap(), pkg.index().get(id).unwrap());
        }
    }
}

/// Whether this build decodes fixture `f`'s blocks (zstd.sft needs the
/// `zstd` feature; without it, reading its data is `Unsupported::Codec`,
/// as a v1.0 reader reports codec 2: `zstd_without_the_feature`).
fn decodable(f: &str) -> bool {
    cfg!(feature = "zstd") || f != "zstd.sft"
}

#[test]
#[cfg(not(feature = "zstd"))]
fn zstd_without_the_feature_is_unsupported_not_corrupt() {
    let bytes = read_fixture("valid/zstd.sft");
    let pkg = Package::parse(&bytes).unwrap();
    pkg.verify_structure().unwrap();
    let e = pkg.verify().unwrap_err();
    assert_eq!(e.kind(), sft::ErrorKind::Unsupported, "{e}");
}

#[test]
fn block_index_is_consistent() {
    for f in ALL.into_iter().filter(|f| decodable(f)) {
        let bytes = read_fixture(&format!("valid/{f}"));
        let pkg = Package::parse(&bytes).unwrap();
        let index = pkg.index();
        let mut logical = 0;
        let mut stored = pkg.header().prologue_len;
        for id in index.ids() {
            let b = index.get(id).unwrap();
            assert_eq!(b.logical_range().start, logical, "{f} {id}");
            assert_eq!(b.stored_offset, stored, "{f} {id}");
            assert_eq!(index.locate(logical), Some((id, 0)));
            let fb = if id.0 < index.fb1_len() {
                FeatureBlock::Fb1
            } else {
                FeatureBlock::Fb2
            };
            assert_eq!(b.feature_block, fb);
            let data = pkg.read_block(id).unwrap();
            assert_eq!(data.len() as u32, b.raw_len);
            logical += u64::from(b.raw_len);
            stored += u64::from(b.stored_len);
        }
        assert_eq!(logical, index.logical_len());
        assert_eq!(stored, bytes.len() as u64);
        assert_eq!(index.locate(logical), None);
        assert_eq!(
            index.get(BlockId(index.len())).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

#[test]
fn lookups_and_misuse() {
    let bytes = read_fixture("valid/multi-block.sft");
    let pkg = Package::parse(&bytes).unwrap();
    assert!(pkg.find("nope").unwrap().is_none());
    assert!(pkg.find("bin/app").unwrap().is_none());
    assert_eq!(pkg.entry("nope").unwrap_err().kind(), ErrorKind::NotFound);
    let dir = pkg.entry("bin").unwrap();
    assert!(dir.is_dir());
    assert_eq!(
        pkg.read_file(&dir).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(pkg.reader(dir).unwrap_err().kind(), ErrorKind::InvalidInput);
    // Leading and trailing slashes are ignored.
    assert_eq!(pkg.entry("/docs/ü.txt/").unwrap().path(), "docs/ü.txt");
    let e = pkg.entry("data/empty.txt").unwrap();
    assert_eq!(pkg.read_file(&e).unwrap(), b"");
    assert_eq!(pkg.chunks(&e).count(), 0);
    let e = pkg.entry("bin/lib.dll").unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(pkg.read_at(&e, 9_000, &mut buf).unwrap(), 0);
    assert_eq!(pkg.read_at(&e, u64::MAX, &mut buf).unwrap(), 0);
    assert_eq!(pkg.read_at(&e, 8_995, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], &crate::common::noise(7, 9_000)[8_995..]);
    // 0..5000 ends FB1 and 5000.. starts FB2: contiguous in the logical
    // stream, so one extent spanning both feature blocks.
    assert_eq!(e.extents().len(), 1);
    let x = e.extents().next().unwrap();
    assert_eq!((x.logical_offset, x.length), (20_000, 9_000));
    let ids = pkg.index().blocks_for_range(20_000..29_000);
    assert_eq!(ids, 4..8);
    assert_eq!(pkg.index().fb1_len(), 7);
}

#[test]
fn file_reader_reads_and_seeks() {
    let bytes = read_fixture("valid/multi-block.sft");
    let pkg = Package::parse(&bytes).unwrap();
    let want = crate::common::text(20_000);
    let mut r = pkg.reader(pkg.entry("bin/app.exe").unwrap()).unwrap();
    let mut all = Vec::new();
    r.read_to_end(&mut all).unwrap();
    assert_eq!(all, want);
    assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), 19_990);
    let mut buf = [0u8; 64];
    assert_eq!(r.read(&mut buf).unwrap(), 10);
    assert_eq!(&buf[..10], &want[19_990..]);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    assert!(r.seek(SeekFrom::Current(-30_000)).is_err());
    assert_eq!(r.seek(SeekFrom::Start(50_000)).unwrap(), 50_000);
    assert_eq!(r.read(&mut buf).unwrap(), 0);
    r.seek(SeekFrom::Start(4090)).unwrap();
    r.read_exact(&mut buf).unwrap(); // across a block boundary
    assert_eq!(&buf[..], &want[4090..4154]);
}

#[test]
fn stored_chunks_are_zero_copy() {
    let bytes = read_fixture("valid/stored-only.sft");
    let pkg = Package::parse(&bytes).unwrap();
    let e = pkg.entry("a/b/c.bin").unwrap();
    let range = bytes.as_ptr_range();
    for c in pkg.chunks(&e) {
        let c = c.unwrap();
        let b = c.borrowed().expect("stored blocks are borrowed");
        assert!(range.contains(&b.as_ptr()));
    }
}

#[test]
fn valid_recipes_cover_the_api_surface() {
    // Every fixture listed here is in the recipe list and vice versa.
    let mut names: Vec<&str> = recipes::valid().iter().map(|v| v.file).collect();
    names.sort();
    let mut all = ALL.to_vec();
    all.sort();
    assert_eq!(names, all);
}
