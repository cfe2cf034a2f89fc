//! Windows Installer files through the library: write → open → read,
//! extract, unpack on the sample published by `sft pack --publish`; every
//! single-byte change of an MSI refused or read back unchanged, with the
//! largest allocation bounded; cabinets and tables whose sizes lie; the
//! `ProductVersion` mapping against an oracle.

use super::*;

use std::io::{Cursor, Read};

use sft::bundle::msi::{
    Mode, MsiOptions, MsiPackage, product_code, product_version, upgrade_code, write_msi,
};

/// Every file of `m` with its bytes (the SFT extracted).
fn contents(m: &MsiPackage, tmp: &Path) -> Vec<(String, Vec<u8>)> {
    m.entries()
        .iter()
        .map(|e| {
            let bytes = if e.kind == EntryKind::Sft {
                let out = tmp.join("x.sft");
                m.extract_sft(&out).unwrap();
                let b = std::fs::read(&out).unwrap();
                std::fs::remove_file(&out).unwrap();
                b
            } else {
                m.read(&e.name).unwrap()
            };
            (e.name.clone(), bytes)
        })
        .collect()
}

/// What `m` delivers, names aside: each file's kind and BLAKE3, sorted.
/// (A changed byte in the string pool can rename a file and still be a
/// valid MSI; what must never change unnoticed is the bytes.)
fn delivered(m: &MsiPackage, tmp: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m
        .entries()
        .iter()
        .zip(contents(m, tmp))
        .map(|(e, (_, b))| (e.kind.to_string(), blake3::hash(&b).to_hex().to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn msi_write_open_read_extract_unpack_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let publ = manifest.parent().unwrap();
    let sa = tmp.path().join("sa.msi");
    let st = tmp.path().join("st.msi");
    let s = write_msi(
        &manifest,
        &MsiOptions {
            with_sft: true,
            ..MsiOptions::default()
        },
        &sa,
    )
    .unwrap();
    assert_eq!(s.mode, Mode::Standalone);
    assert_eq!(s.files, 5);
    assert_eq!(s.bytes, std::fs::metadata(&sa).unwrap().len());
    assert_eq!(s.bytes % 512, 0, "whole 512-byte sectors");
    let st_summary = write_msi(
        &manifest,
        &MsiOptions {
            sft_url: Some("http://srv/sample.sft".into()),
            load: true,
            ..MsiOptions::default()
        },
        &st,
    )
    .unwrap();
    assert_eq!(st_summary.mode, Mode::Streaming);
    assert_eq!(st_summary.files, 4);
    assert_eq!(st_summary.product_code, s.product_code);
    assert_ne!(st_summary.package_code, s.package_code);

    let m = MsiPackage::open(&sa).unwrap();
    let names: Vec<(&str, EntryKind)> = m
        .entries()
        .iter()
        .map(|e| (e.name.as_str(), e.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("Sample_manifest.xml", EntryKind::Manifest),
            ("Sample App.osd", EntryKind::Osd),
            ("Sample Icons/app.ico", EntryKind::Icon),
            ("Spell.osd", EntryKind::Osd),
            ("sample.sft", EntryKind::Sft),
        ]
    );
    for (name, bytes) in contents(&m, tmp.path()) {
        assert_eq!(bytes, std::fs::read(publ.join(&name)).unwrap(), "{name}");
    }
    let p = m.properties();
    let g: sft::Guid = m
        .manifest()
        .package
        .as_ref()
        .unwrap()
        .guid
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        p.product_code.as_deref(),
        Some(product_code(&g, "0.0.1").as_str())
    );
    assert_eq!(p.upgrade_code.as_deref(), Some(upgrade_code(&g).as_str()));
    assert_eq!(m.mode().unwrap(), Mode::Standalone);
    let m2 = MsiPackage::open(&st).unwrap();
    assert_eq!(m2.mode().unwrap(), Mode::Streaming);
    assert_eq!(m2.properties().load.as_deref(), Some("TRUE"));
    assert_eq!(
        m2.properties().override_url.as_deref(),
        Some("http://srv/sample.sft")
    );
    assert!(!m2.has_sft());
    assert_eq!(
        m2.extract_sft(&tmp.path().join("none.sft"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert!(!tmp.path().join("none.sft").exists());

    // Unpacked: the layout the manifest expects, without the SFT.
    let dir = tmp.path().join("unpacked");
    let mpath = m.unpack_descriptors(&dir).unwrap();
    assert_eq!(mpath, dir.join("Sample_manifest.xml"));
    for e in m.entries() {
        let there = dir.join(&e.name);
        if e.kind == EntryKind::Sft {
            assert!(!there.exists());
        } else {
            assert_eq!(
                std::fs::read(&there).unwrap(),
                std::fs::read(publ.join(&e.name)).unwrap()
            );
        }
    }
    assert!(m.unpack_descriptors(&dir).is_err(), "an existing folder");

    // Deterministic, and nothing left beside the output on failure.
    let again = tmp.path().join("again.msi");
    write_msi(
        &manifest,
        &MsiOptions {
            with_sft: true,
            ..MsiOptions::default()
        },
        &again,
    )
    .unwrap();
    assert_eq!(std::fs::read(&sa).unwrap(), std::fs::read(&again).unwrap());
    let before = listing(tmp.path());
    let bad = MsiOptions {
        sft: Some(tmp.path().join("missing.sft")),
        ..MsiOptions::default()
    };
    assert!(write_msi(&manifest, &bad, &tmp.path().join("bad.msi")).is_err());
    assert_eq!(listing(tmp.path()), before);
}

/// The streaming MSI of the sample (small: every byte can be changed).
fn small_msi(tmp: &Path) -> Vec<u8> {
    let manifest = published(tmp);
    let out = tmp.join("small.msi");
    write_msi(&manifest, &MsiOptions::default(), &out).unwrap();
    std::fs::read(out).unwrap()
}

#[test]
fn every_changed_byte_is_refused_or_reads_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = small_msi(tmp.path());
    let good = MsiPackage::from_bytes(bytes.clone(), "good").unwrap();
    let want = delivered(&good, tmp.path());
    let (mut refused, mut same) = (0, 0);
    let (mut largest, mut at) = (0, 0);
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        common::alloc::reset();
        let r = MsiPackage::from_bytes(b, "changed");
        if common::alloc::largest() > largest {
            (largest, at) = (common::alloc::largest(), i);
        }
        match r {
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Msi, "byte {i}: {e}");
                refused += 1;
            }
            Ok(m) => {
                // It may still be a valid MSI (a name changed, say), but
                // what it delivers is exactly what was written.
                assert!(
                    delivered(&m, tmp.path()) == want,
                    "byte {i} changed what the MSI delivers"
                );
                same += 1;
            }
        }
    }
    eprintln!(
        "{} bytes: {refused} refused, {same} read back the same; largest allocation {largest} bytes (byte {at})",
        bytes.len()
    );
    assert!(refused > bytes.len() / 4, "{refused} refused");
    assert!(largest <= 1 << 20, "largest allocation {largest}");
    // Truncated anywhere: refused.
    for cut in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        let e = MsiPackage::from_bytes(bytes[..cut].to_vec(), "cut").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Msi, "cut at {cut}: {e}");
    }
}

/// The bytes of stream `name` of the MSI in `bytes`.
fn read_stream(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut db = ::msi::Package::open(Cursor::new(bytes.to_vec())).unwrap();
    let mut out = Vec::new();
    db.read_stream(name).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// `bytes` with stream `name` replaced and `File.FileSize` of `key` set.
fn rewrite(bytes: &[u8], stream: Option<(&str, &[u8])>, size: Option<(&str, i32)>) -> Vec<u8> {
    let mut db = ::msi::Package::open(Cursor::new(bytes.to_vec())).unwrap();
    if let Some((name, data)) = stream {
        use std::io::Write;
        db.write_stream(name).unwrap().write_all(data).unwrap();
    }
    if let Some((key, n)) = size {
        db.update_rows(
            ::msi::Update::table("File")
                .set("FileSize", ::msi::Value::Int(n))
                .with(::msi::Expr::col("File").eq(::msi::Expr::string(key))),
        )
        .unwrap();
    }
    db.into_inner().unwrap().into_inner()
}

#[test]
fn cabinets_and_tables_whose_sizes_lie_are_refused_with_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let out = tmp.path().join("sa.msi");
    write_msi(
        &manifest,
        &MsiOptions {
            with_sft: true,
            ..MsiOptions::default()
        },
        &out,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let cab = read_stream(&bytes, "sft.cab");
    // CFFILE records start at coffFiles (CFHEADER offset 16); the first
    // field is the file's uncompressed size. The files are in cabinet
    // order: Manifest, Osd_1, Icon_1, Osd_2, Sft.
    let mut at = u32::from_le_bytes(cab[16..20].try_into().unwrap()) as usize;
    let mut records = Vec::new();
    for _ in 0..5 {
        let name_end = cab[at + 16..].iter().position(|b| *b == 0).unwrap();
        records.push((
            at,
            String::from_utf8(cab[at + 16..at + 16 + name_end].to_vec()).unwrap(),
        ));
        at += 16 + name_end + 1;
    }
    let record = |key: &str| records.iter().find(|r| r.1 == key).unwrap().0;
    for (key, n, want) in [
        // The cabinet and the File table agree on a size the data lacks.
        ("Sft", i32::MAX, "lies at bytes"),
        ("Icon_1", i32::MAX, "lies at bytes"),
        ("Osd_1", 1 << 20, "lies at bytes"),
        // They disagree.
        ("Manifest", 3, "the cabinet says"),
    ] {
        let mut c = cab.clone();
        let r = record(key);
        c[r..r + 4].copy_from_slice(&(n as u32).to_le_bytes());
        let b = rewrite(
            &bytes,
            Some(("sft.cab", &c)),
            Some((key, if want == "the cabinet says" { 1 } else { n })),
        );
        common::alloc::reset();
        let e = MsiPackage::from_bytes(b, "lying").unwrap_err();
        let largest = common::alloc::largest();
        assert_eq!(e.kind(), ErrorKind::Msi, "{key}: {e}");
        assert!(e.to_string().contains(want), "{key}: `{want}` not in {e}");
        assert!(largest < 4 << 20, "{key}: largest allocation {largest}");
    }
    // Blocks: a stored block whose two sizes disagree (the `cab` crate
    // would slice past it), and a block without a checksum. The SFT's
    // folder is the second, stored; its first block follows the header.
    let folder2 = 36 + 8;
    let data = u32::from_le_bytes(cab[folder2..folder2 + 4].try_into().unwrap()) as usize;
    for (what, at, value, want) in [
        (
            "sizes",
            data + 6,
            1u16.to_le_bytes().to_vec(),
            "stored, yet",
        ),
        ("checksum", data, vec![0, 0, 0, 0], "has no checksum"),
    ] {
        let mut c = cab.clone();
        c[at..at + value.len()].copy_from_slice(&value);
        let b = rewrite(&bytes, Some(("sft.cab", &c)), None);
        let e = MsiPackage::from_bytes(b, what).unwrap_err();
        assert!(e.to_string().contains(want), "{what}: `{want}` not in {e}");
    }
    // A cabinet that is not one.
    let b = rewrite(&bytes, Some(("sft.cab", b"MSCF but not really")), None);
    let e = MsiPackage::from_bytes(b, "junk cab").unwrap_err();
    assert!(e.to_string().contains("not a valid cabinet"), "{e}");
}

/// MSI version comparison: three 8/8/16-bit fields.
fn msi_version(v: &str) -> (u32, u32, u32) {
    let p: Vec<u32> = v.split('.').map(|x| x.parse().unwrap()).collect();
    assert!(p[0] <= 255 && p[1] <= 255 && p[2] <= 65535, "{v}");
    (p[0], p[1], p[2])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A later App-V version number is always a later ProductVersion,
    /// and every one is a valid MSI version.
    #[test]
    fn product_versions_order_as_version_numbers(a in any::<u32>(), b in any::<u32>()) {
        let (va, vb) = (
            product_version(Some(&a.to_string())).unwrap(),
            product_version(Some(&b.to_string())).unwrap(),
        );
        prop_assert_eq!(msi_version(&va).cmp(&msi_version(&vb)), a.cmp(&b));
    }
}
