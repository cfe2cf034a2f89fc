//! `.sftb` bundles: write → open → read/extract/unpack round trips on a
//! package published by `sft pack --publish`; every single-byte
//! corruption, truncation and appended garbage refused with an error
//! naming the region; bad manifests refused with nothing written; a
//! proptest round trip through the container layer; the CLI.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

#[cfg(feature = "msi")]
mod msi;

use std::path::{Path, PathBuf};

use common::cli::{pack_sample, sft};
use proptest::prelude::*;
use sft::ErrorKind;
use sft::bundle::{Bundle, BundleOptions, EntryKind, decode_entries, encode_entries, write_bundle};

/// A package packed and published into `tmp/pub` with two apps, one with
/// an icon; returns the manifest path.
fn published(tmp: &Path) -> PathBuf {
    let publ = tmp.join("pub");
    std::fs::create_dir_all(&publ).unwrap();
    let icon = tmp.join("app.ico");
    std::fs::write(&icon, sft::publish::tiny_icon()).unwrap();
    let out = pack_sample(&publ.join("sample.sft"), &publ, &icon, &[]);
    assert!(out.status.success(), "{out:?}");
    publ.join("Sample_manifest.xml")
}

/// Names of the files in `dir` (to show nothing was left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn bundle_open_read_extract_unpack_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let publ = manifest.parent().unwrap();
    let small = tmp.path().join("small.sftb");
    let full = tmp.path().join("full.sftb");

    let s = write_bundle(&manifest, &BundleOptions::default(), &small).unwrap();
    assert_eq!(s.entries, 4, "manifest, 2 OSDs, 1 icon");
    assert_eq!(s.sft_bytes, None);
    assert_eq!(s.bytes, std::fs::metadata(&small).unwrap().len());
    let s = write_bundle(&manifest, &BundleOptions::with_sft(None), &full).unwrap();
    let sft_len = std::fs::metadata(publ.join("sample.sft")).unwrap().len();
    assert_eq!(s.entries, 5);
    assert_eq!(s.sft_bytes, Some(sft_len));

    // Deterministic: the same inputs give the same bytes.
    let again = tmp.path().join("again.sftb");
    write_bundle(&manifest, &BundleOptions::with_sft(None), &again).unwrap();
    assert_eq!(
        std::fs::read(&full).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let b = Bundle::open(&full).unwrap();
    let names: Vec<(&str, EntryKind)> = b
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
    assert!(b.has_sft());
    let sft_entry = b.sft_entry().unwrap();
    assert_eq!(sft_entry.offset % 4096, 0, "the SFT is page-aligned");
    assert_eq!(sft_entry.len, sft_len);
    assert_eq!(b.manifest_bytes(), std::fs::read(&manifest).unwrap());
    assert_eq!(b.manifest().apps.items.len(), 2);
    for e in &b.entries()[..4] {
        assert_eq!(e.offset % 8, 0);
        assert_eq!(
            b.read(&e.name).unwrap(),
            std::fs::read(publ.join(&e.name)).unwrap(),
            "{}",
            e.name
        );
    }
    assert_eq!(b.read("nope.osd").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        b.read("sample.sft").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let out = tmp.path().join("x/extracted.sft");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    b.extract_sft(&out).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(publ.join("sample.sft")).unwrap()
    );
    assert_eq!(listing(out.parent().unwrap()), ["extracted.sft"]);

    let dir = tmp.path().join("unpacked");
    let m = b.unpack(&dir).unwrap();
    assert_eq!(m, dir.join("Sample_manifest.xml"));
    for e in b.entries() {
        assert_eq!(
            std::fs::read(dir.join(&e.name)).unwrap(),
            std::fs::read(publ.join(&e.name)).unwrap(),
            "{}",
            e.name
        );
    }
    // The unpacked manifest works as --manifest and gives the same bundle.
    let re = tmp.path().join("re.sftb");
    write_bundle(&m, &BundleOptions::default(), &re).unwrap();
    assert_eq!(std::fs::read(&re).unwrap(), std::fs::read(&small).unwrap());
    let re = tmp.path().join("re-full.sftb");
    write_bundle(
        &m,
        &BundleOptions::with_sft(Some(dir.join("sample.sft"))),
        &re,
    )
    .unwrap();
    assert_eq!(std::fs::read(&re).unwrap(), std::fs::read(&full).unwrap());

    // Unpacking refuses a non-empty folder and changes nothing there.
    let e = b.unpack(&dir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // An empty folder is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    b.unpack(&empty).unwrap();
    assert_eq!(listing(&empty).len(), 5, "4 files and the icons folder");

    let small_b = Bundle::open(&small).unwrap();
    assert!(!small_b.has_sft());
    let e = small_b
        .extract_sft(&tmp.path().join("none.sft"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!tmp.path().join("none.sft").exists());

    // The fuzz entry point's invariants hold on real bundles.
    sft::fuzzing::bundle(&std::fs::read(&small).unwrap());
    sft::fuzzing::bundle(&std::fs::read(&full).unwrap());
}

/// The region a byte at `off` belongs to, as error messages name it.
fn region_of(b: &Bundle, file_len: u64, off: u64) -> String {
    let es = b.entries();
    let data_offset = es[0].offset;
    if off < 64 {
        return "header".into();
    }
    if off < data_offset {
        return "table of contents".into();
    }
    if off >= file_len - 16 {
        return "trailer".into();
    }
    for (i, e) in es.iter().enumerate() {
        if off >= e.offset && off < e.offset + e.len {
            return format!("entry {i} `{}`", e.name);
        }
        let next = es.get(i + 1).map_or(file_len - 16, |n| n.offset);
        if off >= e.offset + e.len && off < next {
            return format!("padding after entry {i} `{}`", e.name);
        }
    }
    unreachable!("offset {off} in no region")
}

fn assert_refused(path: &Path, want_region: &str, what: &str) {
    match Bundle::open(path) {
        Ok(_) => panic!("{what}: a damaged bundle opened"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Bundle, "{what}: {e}");
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "{what}: {msg} does not name the file"
            );
            assert!(
                msg.contains(&format!(": {want_region} at offset")),
                "{what}: `{msg}` does not name {want_region}"
            );
        }
    }
}

#[test]
fn every_single_byte_corruption_is_refused_naming_the_region() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let good = tmp.path().join("good.sftb");
    write_bundle(&manifest, &BundleOptions::default(), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let b = Bundle::open(&good).unwrap();
    let bad = tmp.path().join("bad.sftb");
    for off in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut v = bytes.clone();
            v[off] ^= flip;
            std::fs::write(&bad, &v).unwrap();
            let want = region_of(&b, bytes.len() as u64, off as u64);
            assert_refused(&bad, &want, &format!("byte {off} ^ 0x{flip:02x}"));
        }
    }
}

#[test]
fn corruption_in_a_stand_alone_bundle_names_the_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let good = tmp.path().join("good.sftb");
    write_bundle(&manifest, &BundleOptions::with_sft(None), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let b = Bundle::open(&good).unwrap();
    let sft_e = b.sft_entry().unwrap().clone();
    let bad = tmp.path().join("bad.sftb");
    let mut offsets: Vec<u64> = (0..bytes.len() as u64).step_by(997).collect();
    for e in b.entries() {
        offsets.extend([e.offset, e.offset + e.len - 1, e.offset + e.len / 2]);
    }
    offsets.extend([sft_e.offset - 1, bytes.len() as u64 - 1]);
    for off in offsets {
        let mut v = bytes.clone();
        v[off as usize] ^= 0x20;
        std::fs::write(&bad, &v).unwrap();
        let want = region_of(&b, bytes.len() as u64, off);
        assert_refused(&bad, &want, &format!("byte {off}"));
    }
}

#[test]
fn truncation_and_appended_garbage_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let good = tmp.path().join("good.sftb");
    write_bundle(&manifest, &BundleOptions::with_sft(None), &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = tmp.path().join("bad.sftb");
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(509).collect();
    cuts.extend([
        0,
        1,
        63,
        64,
        65,
        bytes.len() - 17,
        bytes.len() - 16,
        bytes.len() - 1,
    ]);
    for cut in cuts {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let e = Bundle::open(&bad)
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} opened"));
        assert_eq!(e.kind(), ErrorKind::Bundle, "cut {cut}: {e}");
        assert!(e.to_string().contains("truncated"), "cut {cut}: {e}");
    }
    for extra in [1usize, 16, 4096] {
        let mut v = bytes.clone();
        v.extend(std::iter::repeat_n(0u8, extra));
        std::fs::write(&bad, &v).unwrap();
        let e = Bundle::open(&bad).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Bundle, "{e}");
        assert!(
            e.to_string()
                .contains(&format!("{extra} bytes of trailing garbage")),
            "{e}"
        );
    }
    // Not a bundle at all.
    std::fs::write(&bad, vec![0u8; 4096]).unwrap();
    assert!(
        Bundle::open(&bad)
            .unwrap_err()
            .to_string()
            .contains("bad magic")
    );
}

#[test]
fn damage_after_open_is_caught_on_read_extract_and_unpack_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let path = tmp.path().join("b.sftb");
    write_bundle(&manifest, &BundleOptions::with_sft(None), &path).unwrap();
    let b = Bundle::open(&path).unwrap();
    let osd = b.entries()[1].clone();
    let sft_e = b.sft_entry().unwrap().clone();
    // Damage the file in place (same inode, so the open handle sees it).
    let mut v = std::fs::read(&path).unwrap();
    v[osd.offset as usize + 3] ^= 1;
    v[(sft_e.offset + sft_e.len - 5) as usize] ^= 1;
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(&v).unwrap();
    }
    let e = b.read(&osd.name).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bundle);
    assert!(e.to_string().contains("entry 1 `Sample App.osd`"), "{e}");
    assert!(e.to_string().contains("crc mismatch"), "{e}");

    // extract_sft over an existing file leaves it as it was.
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let target = out.join("app.sft");
    std::fs::write(&target, b"previous").unwrap();
    let e = b.extract_sft(&target).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bundle);
    assert!(e.to_string().contains("entry 4 `sample.sft`"), "{e}");
    assert!(
        e.to_string().contains(&format!("offset {}", sft_e.offset)),
        "{e}"
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"previous");
    assert_eq!(listing(&out), ["app.sft"], "no temporary file left");

    let e = b.unpack(&out.join("dir")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bundle);
    assert_eq!(
        listing(&out),
        ["app.sft"],
        "nothing unpacked, no temporary folder"
    );
}

/// A publish folder whose manifest is `manifest` (text), with one OSD and
/// one icon present.
fn folder_with(tmp: &Path, manifest: &str) -> PathBuf {
    let d = tmp.join("m");
    std::fs::create_dir_all(d.join("icons")).unwrap();
    std::fs::write(
        d.join("App.osd"),
        r#"<SOFTPKG NAME="App"><IMPLEMENTATION><CODEBASE HREF="rtsp://srv/app.sft"/></IMPLEMENTATION></SOFTPKG>"#,
    )
    .unwrap();
    std::fs::write(d.join("icons/app.ico"), sft::publish::tiny_icon()).unwrap();
    std::fs::write(d.join("notes.txt"), "not an icon").unwrap();
    std::fs::write(d.join("m.xml"), manifest).unwrap();
    d.join("m.xml")
}

fn app(osd: &str, icon: &str) -> String {
    format!(
        r#"<MANIFEST><APPLIST><APP NAME="App" OSD="{osd}" ICON="{icon}"/></APPLIST></MANIFEST>"#
    )
}

#[test]
fn bad_manifests_give_clear_errors_and_write_nothing() {
    let cases: Vec<(String, ErrorKind, &[&str])> = vec![
        (
            app(
                "%SFT_MIME_SOURCE%/Missing.osd",
                "%SFT_MIME_SOURCE%/icons/app.ico",
            ),
            ErrorKind::NotFound,
            &["Missing.osd", "APP OSD of app `App`", "does not exist"],
        ),
        (
            app(
                "%SFT_MIME_SOURCE%/App.osd",
                "%SFT_MIME_SOURCE%/icons/gone.ico",
            ),
            ErrorKind::NotFound,
            &["gone.ico", "APP ICON of app `App`"],
        ),
        (
            app(
                "%SFT_MIME_SOURCE%/../App.osd",
                "%SFT_MIME_SOURCE%/icons/app.ico",
            ),
            ErrorKind::InvalidInput,
            &["APP OSD", "`..`"],
        ),
        (
            app(
                "http://example.com/App.osd",
                "%SFT_MIME_SOURCE%/icons/app.ico",
            ),
            ErrorKind::InvalidInput,
            &["http://example.com/App.osd", "is a URL"],
        ),
        (
            app("%SFT_MIME_SOURCE%/App.osd", "/etc/passwd"),
            ErrorKind::InvalidInput,
            &["APP ICON", "absolute"],
        ),
        (
            app("%SFT_MIME_SOURCE%/App.osd", "C:\\icons\\app.ico"),
            ErrorKind::InvalidInput,
            &["APP ICON", "drive"],
        ),
        (
            app("%OTHER%/App.osd", "%SFT_MIME_SOURCE%/icons/app.ico"),
            ErrorKind::InvalidInput,
            &["environment variable"],
        ),
        (
            app("%SFT_MIME_SOURCE%/App.osd", "%SFT_MIME_SOURCE%/notes.txt"),
            ErrorKind::InvalidInput,
            &["notes.txt", "not a valid .ico"],
        ),
        (
            app(
                "%SFT_MIME_SOURCE%/icons/app.ico",
                "%SFT_MIME_SOURCE%/icons/app.ico",
            ),
            ErrorKind::InvalidInput,
            &["app.ico", "APP OSD"],
        ),
        (
            "<MANIFEST><APPLIST>".into(),
            ErrorKind::InvalidInput,
            &["m.xml", "line"],
        ),
        (
            "<SOFTPKG/>".into(),
            ErrorKind::InvalidInput,
            &["not a manifest"],
        ),
    ];
    for (i, (text, kind, needles)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let m = folder_with(tmp.path(), &text);
        let out = tmp.path().join("out.sftb");
        let before = listing(tmp.path());
        let e = write_bundle(&m, &BundleOptions::default(), &out).unwrap_err();
        assert_eq!(e.kind(), kind, "case {i}: {e}");
        for n in needles {
            assert!(e.to_string().contains(n), "case {i}: `{e}` lacks `{n}`");
        }
        assert_eq!(listing(tmp.path()), before, "case {i}: output left behind");
    }
}

#[test]
fn sft_problems_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let publ = manifest.parent().unwrap().to_path_buf();
    let out = tmp.path().join("out.sftb");

    // The manifest's GUID is not the package's.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let m = sft::publish::Manifest::parse(text.as_bytes()).unwrap();
    let guid = m.package.as_ref().unwrap().guid.clone().unwrap();
    let other = "11111111-2222-3333-4444-555555555555";
    std::fs::write(&manifest, text.replace(&guid, other)).unwrap();
    let e = write_bundle(&manifest, &BundleOptions::with_sft(None), &out).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string().contains(other) && e.to_string().contains(&guid),
        "{e}"
    );
    assert!(!out.exists());
    // Without the SFT the same manifest bundles fine.
    write_bundle(&manifest, &BundleOptions::default(), &out).unwrap();
    std::fs::remove_file(&out).unwrap();
    std::fs::write(&manifest, &text).unwrap();

    // Not an SFT.
    let fake = tmp.path().join("fake.sft");
    std::fs::write(&fake, vec![7u8; 1000]).unwrap();
    let e = write_bundle(
        &manifest,
        &BundleOptions::with_sft(Some(fake.clone())),
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a valid SFT"), "{e}");
    assert!(!out.exists());

    // Missing SFT named by the HREF.
    std::fs::rename(publ.join("sample.sft"), tmp.path().join("moved.sft")).unwrap();
    let e = write_bundle(&manifest, &BundleOptions::with_sft(None), &out).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("PACKAGE HREF"), "{e}");
    assert!(e.to_string().contains("sample.sft"), "{e}");
    // An explicit SFT outside the folder is stored under its file name.
    write_bundle(
        &manifest,
        &BundleOptions::with_sft(Some(tmp.path().join("moved.sft"))),
        &out,
    )
    .unwrap();
    let b = Bundle::open(&out).unwrap();
    assert_eq!(b.sft_entry().unwrap().name, "moved.sft");
    std::fs::remove_file(&out).unwrap();

    // An HREF that is a URL cannot be bundled without --sft.
    std::fs::write(
        &manifest,
        text.replace(
            &format!("file://{}", publ.join("sample.sft").display()),
            "rtsp://%SFT_SOFTGRIDSERVER%:554/sample.sft",
        ),
    )
    .unwrap();
    let e = write_bundle(&manifest, &BundleOptions::with_sft(None), &out).unwrap_err();
    assert!(e.to_string().contains("PACKAGE HREF"), "{e}");
    assert!(!out.exists());
    assert!(!listing(tmp.path()).iter().any(|n| n.contains("sftb-tmp")));
}

#[test]
fn cli_bundle_list_unpack_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let out = tmp.path().join("app.sftb");
    let o = sft(&[
        "bundle",
        "--manifest",
        manifest.to_str().unwrap(),
        "--with-sft",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("bundled 5 entries into"), "{stdout}");
    assert!(stdout.contains("(stand-alone)"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);

    let o = sft(&["bundle", "--list", out.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 5);
    assert!(
        stdout.lines().last().unwrap().ends_with("sample.sft"),
        "{stdout}"
    );

    let dir = tmp.path().join("un");
    let o = sft(&[
        "bundle",
        "--unpack",
        out.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(dir.join("Sample Icons/app.ico").is_file());

    // Usage errors exit 2; damage exits 1 naming the entry.
    let o = sft(&["bundle", "--manifest", manifest.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let mut v = std::fs::read(&out).unwrap();
    let b = Bundle::open(&out).unwrap();
    let e = &b.entries()[2];
    v[e.offset as usize] ^= 0xff;
    std::fs::write(&out, &v).unwrap();
    let o = sft(&["bundle", "--list", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("entry 2 `{}`", e.name)), "{err}");
    assert!(err.contains("crc mismatch"), "{err}");
}

/// `sft bundle create|ls|unpack` do what the flag forms do (which keep
/// working: see above), byte for byte.
#[test]
fn cli_bundle_subcommands_match_the_flag_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = published(tmp.path());
    let (a, b) = (tmp.path().join("a.sftb"), tmp.path().join("b.sftb"));
    let m = manifest.to_str().unwrap();
    let o = sft(&[
        "bundle",
        "--manifest",
        m,
        "--with-sft",
        "-o",
        a.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    let o = sft(&[
        "bundle",
        "create",
        "--manifest",
        m,
        "--with-sft",
        "-o",
        b.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap());
    let flags = sft(&["bundle", "--list", a.to_str().unwrap()]);
    let sub = sft(&["bundle", "ls", b.to_str().unwrap()]);
    assert!(sub.status.success(), "{sub:?}");
    assert_eq!(flags.stdout, sub.stdout);
    let dir = tmp.path().join("un");
    let o = sft(&[
        "bundle",
        "unpack",
        b.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(dir.join("Sample Icons/app.ico").is_file());
    // A subcommand with the old flags is a usage error.
    let o = sft(&["bundle", "ls", b.to_str().unwrap(), "--with-sft"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// An entry for the container layer: name, kind, data.
type RawEntry = (String, EntryKind, Vec<u8>);

fn arb_name() -> impl Strategy<Value = String> {
    proptest::collection::vec("[A-Za-z0-9 _.-]{1,12}", 1..4)
        .prop_map(|parts| parts.join("/"))
        .prop_filter("safe", |n| n.split('/').all(|c| c != "." && c != ".."))
}

fn arb_entries() -> impl Strategy<Value = Vec<RawEntry>> {
    (
        proptest::collection::vec(
            (
                arb_name(),
                prop_oneof![Just(EntryKind::Osd), Just(EntryKind::Icon)],
                proptest::collection::vec(any::<u8>(), 0..300),
            ),
            0..12,
        ),
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..9000)),
    )
        .prop_map(|(mid, manifest, sft)| {
            let mut all = vec![("m.xml".to_owned(), EntryKind::Manifest, manifest)];
            all.extend(mid);
            if let Some(s) = sft {
                all.push(("pkg/app.sft".to_owned(), EntryKind::Sft, s));
            }
            // Keep names unique ignoring case, and no file that is also a folder.
            let mut seen = std::collections::HashSet::new();
            let names: Vec<String> = all.iter().map(|e| e.0.to_ascii_lowercase()).collect();
            all.into_iter()
                .enumerate()
                .filter(|(i, e)| {
                    let l = e.0.to_ascii_lowercase();
                    let dir_clash = names.iter().any(|n| n.starts_with(&format!("{l}/")))
                        || names
                            .iter()
                            .enumerate()
                            .any(|(j, n)| j != *i && l.starts_with(&format!("{n}/")));
                    (*i == 0 || !dir_clash) && seen.insert(l)
                })
                .map(|(_, e)| e)
                .collect::<Vec<_>>()
        })
        .prop_filter("manifest kept", |v| {
            let names: Vec<String> = v.iter().map(|e| e.0.to_ascii_lowercase()).collect();
            v[0].1 == EntryKind::Manifest
                && names
                    .iter()
                    .all(|n| !names.iter().any(|m| m.starts_with(&format!("{n}/"))))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(64)
    ))]

    #[test]
    fn container_round_trip(entries in arb_entries(), flip in any::<prop::sample::Index>()) {
        let bytes = encode_entries(&entries).unwrap();
        let back = decode_entries(&bytes).unwrap();
        prop_assert_eq!(back.len(), entries.len());
        for ((e, data), (name, kind, want)) in back.iter().zip(&entries) {
            prop_assert_eq!(&e.name, name);
            prop_assert_eq!(e.kind, *kind);
            prop_assert_eq!(data, want);
            prop_assert_eq!(e.len, want.len() as u64);
            prop_assert_eq!(e.offset % if *kind == EntryKind::Sft { 4096 } else { 8 }, 0);
        }
        // Canonical: re-encoding what was read gives the same bytes.
        let again: Vec<_> = back.into_iter().map(|(e, d)| (e.name, e.kind, d)).collect();
        prop_assert_eq!(encode_entries(&again).unwrap(), bytes.clone());
        // Any single flipped byte is refused.
        let mut bad = bytes.clone();
        let i = flip.index(bad.len());
        bad[i] ^= 0x40;
        let e = decode_entries(&bad).unwrap_err();
        prop_assert_eq!(e.kind(), ErrorKind::Bundle);
        // The full reader never panics on it either.
        sft::fuzzing::bundle(&bad);
    }

    #[test]
    fn unsafe_names_are_refused(bad in prop_oneof![
        Just("../x".to_owned()), Just("/abs".to_owned()), Just("a\\b".to_owned()),
        Just("c:x".to_owned()), Just("a//b".to_owned()), Just("a/./b".to_owned()),
        Just("nul\0".to_owned()), Just(String::new()), Just("x".repeat(1025)),
        "[a-z]{1,5}/\\.\\.(/[a-z]{1,5})?",
    ]) {
        let entries = vec![
            ("m.xml".to_owned(), EntryKind::Manifest, vec![1]),
            (bad.clone(), EntryKind::Osd, vec![2]),
        ];
        let e = encode_entries(&entries).unwrap_err();
        prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}

#[test]
fn structural_rules_of_the_container() {
    let m = (
        "m.xml".to_owned(),
        EntryKind::Manifest,
        b"<MANIFEST/>".to_vec(),
    );
    let osd = |n: &str| (n.to_owned(), EntryKind::Osd, vec![1, 2, 3]);
    let sftv = |n: &str| (n.to_owned(), EntryKind::Sft, vec![0; 10]);
    let bad: Vec<(&str, Vec<RawEntry>)> = vec![
        ("no entries", vec![]),
        ("manifest not first", vec![osd("a.osd"), m.clone()]),
        (
            "two manifests",
            vec![m.clone(), ("n.xml".into(), EntryKind::Manifest, vec![])],
        ),
        ("sft not last", vec![m.clone(), sftv("a.sft"), osd("b.osd")]),
        ("two sfts", vec![m.clone(), sftv("a.sft"), sftv("b.sft")]),
        (
            "case duplicate",
            vec![m.clone(), osd("A.osd"), osd("a.OSD")],
        ),
        (
            "file is a folder",
            vec![m.clone(), osd("a"), osd("a/b.osd")],
        ),
        (
            "oversized icon",
            vec![
                m.clone(),
                (
                    "i.ico".into(),
                    EntryKind::Icon,
                    vec![0; sft::publish::MAX_ICON_BYTES + 1],
                ),
            ],
        ),
    ];
    for (what, entries) in bad {
        let e = encode_entries(&entries).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
    }
    // A valid container with a manifest that means nothing opens in the
    // container layer but not as a Bundle.
    let bytes = encode_entries(&[m.clone(), osd("a.osd")]).unwrap();
    assert_eq!(decode_entries(&bytes).unwrap().len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.sftb");
    std::fs::write(&p, &bytes).unwrap();
    let e = Bundle::open(&p).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Bundle);
    assert!(e.to_string().contains("entry 1 `a.osd`"), "{e}");
    assert!(e.to_string().contains("OSD does not parse"), "{e}");
    // A manifest naming an OSD the bundle lacks.
    let m2 = (
        "m.xml".to_owned(),
        EntryKind::Manifest,
        br#"<MANIFEST><APPLIST><APP NAME="A" OSD="%SFT_MIME_SOURCE%/A.osd"/></APPLIST></MANIFEST>"#
            .to_vec(),
    );
    std::fs::write(&p, encode_entries(&[m2]).unwrap()).unwrap();
    let e = Bundle::open(&p).unwrap_err();
    assert!(e.to_string().contains("names no osd entry"), "{e}");
}

/// Committed fixtures (fuzz seeds and regressions) never panic the reader.
#[test]
fn fixtures_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bundle");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    for f in rd {
        let p = f.unwrap().path();
        sft::fuzzing::bundle(&std::fs::read(&p).unwrap());
    }
}
