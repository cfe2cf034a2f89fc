//! Format 1.1: block hashes, content identity, signatures, zstd, delta
//! fetches and DSFTs (docs/DELTA.md, docs/SIGNING.md).

use std::path::Path;

use proptest::prelude::*;
use sft::fetch::delta::{Base, DeltaPlan};
use sft::fetch::{FetchOptions, fetch};
use sft::sign::{SigningKey, TrustPolicy};
use sft::write::{BlockSize, Compression, PackageBuilder};
use sft::{Error, ErrorKind, Package, TrustProblem, WriteOptions};

use crate::common::{bytes, text};

type Tree = Vec<(String, Vec<u8>)>;

fn pack(tree: &Tree, opts: WriteOptions, like: Option<&[u8]>) -> Vec<u8> {
    let mut b = PackageBuilder::new(opts);
    for (p, d) in tree {
        b.add_bytes(p, d.clone()).unwrap();
    }
    if let Some(old) = like {
        b.like(old).unwrap();
    }
    b.write_to_vec().unwrap()
}

fn opts() -> WriteOptions {
    WriteOptions::default()
        .name("app")
        .block_size(BlockSize::K4)
        .created(1, 0)
}

fn files_of(pkg: &Package<'_>) -> Tree {
    pkg.entries()
        .map(|e| e.unwrap())
        .filter(|e| !e.is_dir())
        .map(|e| (e.path().to_owned(), pkg.read_file(&e).unwrap()))
        .collect()
}

/// One edit of a tree.
#[derive(Debug, Clone)]
enum Edit {
    /// Insert bytes into file `i` at a fraction of its length.
    Insert(usize, u16, Vec<u8>),
    /// Overwrite bytes in file `i`.
    Overwrite(usize, u16, Vec<u8>),
    /// Remove file `i`.
    Remove(usize),
    /// Add a new file.
    Add(String, Vec<u8>),
}

fn apply(tree: &mut Tree, e: &Edit) {
    match e {
        Edit::Insert(i, at, b) | Edit::Overwrite(i, at, b) if !tree.is_empty() => {
            let n = tree.len();
            let f = &mut tree[i % n].1;
            let at = (*at as usize * f.len()) / 65536;
            if matches!(e, Edit::Insert(..)) {
                f.splice(at..at, b.iter().copied());
            } else {
                let end = (at + b.len()).min(f.len());
                f.splice(at..end, b.iter().copied());
            }
        }
        Edit::Remove(i) if !tree.is_empty() => {
            let n = tree.len();
            tree.remove(i % n);
        }
        Edit::Add(name, b) if !tree.iter().any(|(p, _)| p == name) => {
            tree.push((name.clone(), b.clone()));
        }
        _ => {}
    }
}

fn tree_strategy() -> impl Strategy<Value = Tree> {
    prop::collection::vec((0u32..40, 0usize..40_000, any::<bool>()), 1..8).prop_map(|v| {
        let mut seen = std::collections::BTreeSet::new();
        v.into_iter()
            .filter(|(n, ..)| seen.insert(*n))
            .map(|(n, len, t)| {
                let data = if t {
                    text(len)
                } else {
                    bytes(u64::from(n) + 7, len)
                };
                (format!("d{}/f{n}.bin", n % 3), data)
            })
            .collect()
    })
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (
            any::<usize>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 1..3000)
        )
            .prop_map(|(i, a, b)| Edit::Insert(i, a, b)),
        (
            any::<usize>(),
            any::<u16>(),
            prop::collection::vec(any::<u8>(), 1..3000)
        )
            .prop_map(|(i, a, b)| Edit::Overwrite(i, a, b)),
        any::<usize>().prop_map(Edit::Remove),
        (0u32..1000, 0usize..20_000)
            .prop_map(|(n, len)| Edit::Add(format!("new/n{n}.txt"), text(len))),
    ]
}

fn write(dir: &Path, name: &str, b: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b).unwrap();
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any tree, any edit script: the new version packed `--like` the old
    /// one reads back as the edited tree; a delta fetch with the old one
    /// as base gives exactly the new package, verified, and moves exactly
    /// the bytes its plan announced.
    #[test]
    fn delta_fetch_is_exact(tree in tree_strategy(),
                            edits in prop::collection::vec(edit_strategy(), 0..6),
                            zstd in any::<bool>()) {
        let o = if zstd { opts().compression(Compression::Zstd(3)) } else { opts() };
        let old = pack(&tree, o.clone(), None);
        let mut new_tree = tree.clone();
        for e in &edits {
            apply(&mut new_tree, e);
        }
        let new = pack(&new_tree, o, Some(&old));
        let pkg = Package::parse(&new).unwrap();
        pkg.verify().unwrap();
        let mut want = new_tree.clone();
        want.sort();
        let mut got = files_of(&pkg);
        got.sort();
        prop_assert_eq!(got, want);

        let dir = tempfile::tempdir().unwrap();
        let base = write(dir.path(), "old.sft", &old);
        let plan = DeltaPlan::new(&pkg.prologue(), Some(&Base::open(&base).unwrap()), &|_| false, false).unwrap();
        let out = dir.path().join("new.sft");
        let r = fetch(&new, &out, FetchOptions::default().base(&base)).unwrap();
        prop_assert!(r.complete);
        prop_assert_eq!(std::fs::read(&out).unwrap(), new.clone());
        prop_assert_eq!(r.bytes_transferred, plan.transfer_bytes);
        prop_assert_eq!(r.blocks_reused, plan.reused_blocks);
        prop_assert_eq!(plan.fetch_blocks + plan.reused_blocks, plan.total_blocks);

        // The App-V form: diff and patch rebuild the same bytes.
        let newp = write(dir.path(), "n.sft", &new);
        let d = dir.path().join("n.dsft");
        sft::fetch::delta::diff(&base, &newp, &d).unwrap();
        let rebuilt = dir.path().join("r.sft");
        sft::fetch::delta::patch(&base, &d, &rebuilt).unwrap();
        prop_assert_eq!(std::fs::read(&rebuilt).unwrap(), new);
    }
}

/// A new version with one changed file in the middle: packed --like, all
/// but the blocks of that file are reused.
#[test]
fn like_keeps_unchanged_blocks() {
    let tree: Tree = (0..20)
        .map(|i| {
            (
                format!("lib/m{i:02}.bin"),
                bytes(i, 50_000 + 1000 * i as usize),
            )
        })
        .collect();
    let old = pack(&tree, opts(), None);
    let mut t2 = tree.clone();
    t2[7].1.splice(100..100, b"patched".iter().copied());
    let plain = pack(&t2, opts(), None);
    let like = pack(&t2, opts(), Some(&old));
    let dir = tempfile::tempdir().unwrap();
    let base = Base::open(write(dir.path(), "old.sft", &old)).unwrap();
    let plan = |b: &[u8]| {
        DeltaPlan::new(
            &Package::parse(b).unwrap().prologue(),
            Some(&base),
            &|_| false,
            false,
        )
        .unwrap()
    };
    let (p, l) = (plan(&plain), plan(&like));
    // The changed file is 57 KB: at most its blocks and two neighbours.
    assert!(l.fetch_bytes < 80_000, "{l:?}");
    assert!(p.fetch_bytes > 5 * l.fetch_bytes, "plain {p:?} like {l:?}");
}

fn flip(b: &[u8], i: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[i] ^= 0x41;
    v
}

/// Every single-byte change of a signed package, in its prologue or in
/// any block, is refused by a fetch under a policy that requires the
/// signature; the untouched package passes.
#[test]
fn every_byte_of_a_signed_package_is_bound() {
    let tree: Tree = vec![
        ("a.txt".into(), text(9000)),
        ("b.bin".into(), bytes(3, 7000)),
    ];
    let pkg = pack(&tree, opts(), None);
    let p = Package::parse(&pkg).unwrap();
    let (key, public) = SigningKey::generate().unwrap();
    let sig = key.sign(&p.prologue()).unwrap();
    let policy = || TrustPolicy::require(vec![public.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.sft");
    let ok = fetch(
        &pkg,
        &out,
        FetchOptions::default().trust(policy(), Some(sig.clone())),
    )
    .unwrap();
    assert!(ok.complete);
    let attempts = sft::stream::SessionConfig::default().max_attempts(1);
    for i in 0..pkg.len() {
        let bad = flip(&pkg, i);
        let _ = std::fs::remove_file(&out);
        let r = fetch(
            &bad,
            &out,
            FetchOptions::default()
                .session(attempts)
                .trust(policy(), Some(sig.clone())),
        );
        assert!(r.is_err(), "byte {i} changed and the fetch passed");
        assert!(!out.exists(), "byte {i}: an output was written");
    }
}

#[test]
fn old_signatures_unsigned_and_wrong_content_are_refused() {
    let tree: Tree = vec![("a.txt".into(), text(20_000))];
    let v1 = pack(&tree, opts().version(1), None);
    let v2 = pack(&tree, opts().version(2), None);
    let (key, public) = SigningKey::generate().unwrap();
    let sig1 = key.sign(&Package::parse(&v1).unwrap().prologue()).unwrap();
    let p2 = Package::parse(&v2).unwrap();
    let policy = TrustPolicy::require(vec![public]);
    let kind = |r: Result<sft::sign::Trust, Error>| match r {
        Err(Error::Trust { problem, .. }) => problem,
        other => panic!("expected a trust error, got {other:?}"),
    };
    // An old signature over a new prologue.
    assert_eq!(
        kind(policy.check(&p2.prologue(), Some(&sig1))),
        TrustProblem::BadSignature
    );
    assert_eq!(
        kind(policy.check(&p2.prologue(), None)),
        TrustProblem::Unsigned
    );
    // A swapped package: the content identity publishing named is v1's.
    let want = Package::parse(&v1).unwrap().content_id();
    let p = TrustPolicy::permissive().expect_content(Some(want));
    assert_eq!(
        kind(p.check(&p2.prologue(), None)),
        TrustProblem::WrongContent
    );
    // A refused fetch leaves nothing behind.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.sft");
    let e = fetch(&v2, &out, FetchOptions::default().trust(policy, Some(sig1))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trust);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Data that still matches its CRCs but not the signed hashes: a block
/// rewritten with a valid CRC (as an attacker can) is refused.
#[test]
fn a_block_with_a_forged_crc_fails_its_hash() {
    let tree: Tree = vec![("a.bin".into(), bytes(9, 12_000))];
    let pkg = pack(&tree, opts().compression(Compression::None), None);
    let p = Package::parse(&pkg).unwrap();
    let info = p.index().get(sft::BlockId(1)).unwrap();
    let mut pt = crate::common::patch::Patch::new(&pkg);
    let r = info.stored_range();
    pt.0[r.start as usize] ^= 1;
    // Forge the record's CRC so that only the hash can tell.
    let crc = crc32fast::hash(&pt.0[r.start as usize..r.end as usize]);
    let at = pt.block_record_at(1);
    pt.set_u32(at + 16, crc);
    pt.fix_block_record_crc(1).fix_all();
    let forged = Package::parse(&pt.0).unwrap();
    let e = forged.verify().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("blake3 mismatch"), "{e}");
    let e = forged
        .read_file(&forged.entry("a.bin").unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("blake3 mismatch"), "{e}");
}

#[test]
fn hash_sections_that_lie_are_refused() {
    let tree: Tree = vec![("a.bin".into(), bytes(5, 30_000))];
    let pkg = pack(&tree, opts(), None);
    let p = Package::parse(&pkg).unwrap();
    let plen = p.header().prologue_len as usize;
    // The hash section is the last one: its header record starts
    // (blocks + 1) * 32 bytes before the prologue's end.
    let n = p.index().len() as usize;
    let at = plen - (n + 1) * 32;
    assert_eq!(&pkg[at..at + 4], &1u32.to_le_bytes());
    for (off, v) in [(8usize, n as u32 + 1), (8, 0), (4, 16), (8, u32::MAX)] {
        let mut bad = pkg.clone();
        bad[at + off..at + off + 4].copy_from_slice(&v.to_le_bytes());
        let mut pt = crate::common::patch::Patch::new(&bad);
        pt.fix_all();
        let e = Package::parse(&pt.0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Format, "{off}={v}: {e}");
    }
}

#[test]
fn a_dsft_for_another_base_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t1: Tree = vec![("a.txt".into(), text(50_000))];
    let mut t2 = t1.clone();
    t2[0].1.extend_from_slice(b"more");
    let mut t3 = t1.clone();
    t3[0].1.insert(0, b'x');
    let (a, b, c) = (
        write(dir.path(), "a.sft", &pack(&t1, opts(), None)),
        write(dir.path(), "b.sft", &pack(&t2, opts(), None)),
        write(dir.path(), "c.sft", &pack(&t3, opts(), None)),
    );
    let d = dir.path().join("b.dsft");
    sft::fetch::delta::diff(&a, &b, &d).unwrap();
    let out = dir.path().join("out.sft");
    let e = sft::fetch::delta::patch(&c, &d, &out).unwrap_err();
    assert!(e.to_string().contains("applies to"), "{e}");
    assert!(!out.exists());
    // A truncated or damaged DSFT: refused, nothing written.
    let full = std::fs::read(&d).unwrap();
    for cut in [0, 10, 127, 128, full.len() / 2, full.len() - 1] {
        let t = write(dir.path(), "t.dsft", &full[..cut]);
        assert!(sft::fetch::delta::patch(&a, &t, &out).is_err(), "cut {cut}");
        assert!(!out.exists());
    }
    for i in (0..full.len()).step_by(97) {
        let t = write(dir.path(), "t.dsft", &flip(&full, i));
        if sft::fetch::delta::patch(&a, &t, &out).is_ok() {
            panic!("byte {i} of the DSFT changed and the patch passed");
        }
        assert!(!out.exists());
    }
}

#[test]
fn zstd_round_trips_and_bad_frames_are_integrity_errors() {
    let tree: Tree = vec![
        ("t.txt".into(), text(300_000)),
        ("b.bin".into(), bytes(1, 70_000)),
    ];
    let z = pack(&tree, opts().compression(Compression::Zstd(19)), None);
    let g = pack(&tree, opts(), None);
    assert!(z.len() < g.len(), "zstd {} zlib {}", z.len(), g.len());
    let p = Package::parse(&z).unwrap();
    p.verify().unwrap();
    assert_eq!(files_of(&p).len(), 2);
    assert_eq!(p.read_file(&p.entry("t.txt").unwrap()).unwrap(), tree[0].1);
    // Every byte of every zstd block changed (CRC and hash fixed up by
    // rebuilding the package around it is not possible: so flip and
    // decode without the CRC, through the decoder directly).
    let info = p
        .index()
        .ids()
        .map(|id| p.index().get(id).unwrap())
        .find(|b| b.codec == sft::Codec::Zstd)
        .expect("a zstd block");
    let stored = &z[info.stored_range().start as usize..info.stored_range().end as usize];
    for i in 0..stored.len() {
        let mut s = stored.to_vec();
        s[i] ^= 0xff;
        let mut i2 = info;
        i2.crc = crc32fast::hash(&s);
        i2.hash = None;
        let r = sft::Block::new(i2, &s).unwrap().decode();
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::Integrity, "byte {i}: {e}");
        }
    }
}

/// Debian's minisign verifies our signatures (over the prologue bytes),
/// and refuses one over a changed prologue.
#[test]
fn minisign_verifies_our_signatures() {
    if !crate::common::have("minisign", "-v") {
        return;
    }
    let pkg = pack(&vec![("a.txt".into(), text(70_000))], opts(), None);
    let p = Package::parse(&pkg).unwrap();
    let (key, public) = SigningKey::generate().unwrap();
    let sig = key.sign(&p.prologue()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plen = p.header().prologue_len as usize;
    let pro = write(dir.path(), "p.bin", &pkg[..plen]);
    let pk = write(dir.path(), "k.pub", public.to_text().unwrap().as_bytes());
    let sg = write(dir.path(), "p.bin.minisig", sig.as_text().as_bytes());
    let run = |m: &Path| {
        std::process::Command::new("minisign")
            .arg("-V")
            .arg("-p")
            .arg(&pk)
            .arg("-x")
            .arg(&sg)
            .arg("-m")
            .arg(m)
            .output()
            .unwrap()
    };
    let ok = run(&pro);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&p.content_id().to_string()));
    let bad = write(dir.path(), "q.bin", &flip(&pkg[..plen], plen / 2));
    assert!(!run(&bad).status.success());
}

/// Hostile lengths allocate nothing they claim: a DSFT header that names a
/// 64 MiB prologue (a valid header, a short file) and a hash section that
/// claims more hashes than the package has blocks are refused before any
/// large allocation.
#[test]
fn hostile_lengths_are_refused_with_bounded_memory() {
    use sft::fetch::delta::{DsftHeader, patch};
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "a.sft",
        &pack(&vec![("a.txt".into(), text(9000))], opts(), None),
    );
    let id = Package::parse(&std::fs::read(&old).unwrap())
        .unwrap()
        .content_id();
    let mut h = [0u8; 128];
    h[..8].copy_from_slice(b"\x89DSFT\r\n\x1a");
    h[8] = 1;
    h[12] = 128;
    h[16..48].copy_from_slice(&id.0);
    h[80..88].copy_from_slice(&(64u64 << 20).to_le_bytes());
    h[88..96].copy_from_slice(&(64u64 << 20).to_le_bytes());
    let crc = crc32fast::hash(&h[..124]);
    h[124..].copy_from_slice(&crc.to_le_bytes());
    assert!(DsftHeader::parse(&h).is_ok());
    let d = write(dir.path(), "big.dsft", &h);
    crate::common::alloc::reset();
    let e = patch(&old, &d, &dir.path().join("out.sft")).unwrap_err();
    assert!(
        crate::common::alloc::largest() < 1 << 20,
        "{}",
        crate::common::alloc::largest()
    );
    assert!(e.to_string().contains("header says"), "{e}");

    let pkg = pack(&vec![("a.bin".into(), bytes(5, 30_000))], opts(), None);
    let n = Package::parse(&pkg).unwrap().index().len() as usize;
    let plen = Package::parse(&pkg).unwrap().header().prologue_len as usize;
    let mut bad = pkg.clone();
    let at = plen - (n + 1) * 32;
    bad[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut pt = crate::common::patch::Patch::new(&bad);
    pt.fix_all();
    crate::common::alloc::reset();
    assert!(Package::parse(&pt.0).is_err());
    assert!(sft::read::Prologue::parse(&pt.0).is_err());
    assert!(
        crate::common::alloc::largest() < 1 << 16,
        "{}",
        crate::common::alloc::largest()
    );
}
