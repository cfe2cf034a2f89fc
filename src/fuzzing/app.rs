//! The application formats' fuzz entry points (targets `osd`, `bundle`,
//! `msi`, `client_records`).

#[cfg(feature = "publish")]
/// Fuzzing entry point (not a stable API): parse `data` as an OSD, a
/// manifest and a bare element tree; whatever parses must write out and
/// parse back, and a second round trip must change nothing. Panics exactly
/// when it finds a bug.
pub fn osd(data: &[u8]) {
    #[allow(clippy::wildcard_imports)]
    use crate::publish::*;
    let limits = Limits::default();
    if let Ok(osd) = Osd::parse(data) {
        let x1 = osd.to_xml();
        let o2 = Osd::parse(x1.as_bytes()).expect("a written OSD parses");
        let x2 = o2.to_xml();
        let o3 = Osd::parse(x2.as_bytes()).expect("a rewritten OSD parses");
        assert_eq!(o3, o2, "OSD round trip is not stable");
        assert_eq!(o3.to_xml(), x2);
    }
    if let Ok(m) = Manifest::parse(data) {
        let x1 = m.to_xml();
        let m2 = Manifest::parse(x1.as_bytes()).expect("a written manifest parses");
        let m3 = Manifest::parse(m2.to_xml().as_bytes()).expect("a rewritten manifest parses");
        assert_eq!(m3, m2, "manifest round trip is not stable");
    }
    if let Ok(text) = decode(data, &limits)
        && let Ok(e) = Element::parse(&text, &limits)
    {
        let e2 = Element::parse(&e.to_xml(), &limits).expect("a written tree parses");
        let e3 = Element::parse(&e2.to_xml(), &limits).expect("a rewritten tree parses");
        assert_eq!(e3, e2, "tree round trip is not stable");
    }
}

#[cfg(feature = "publish")]
/// Fuzzing entry point (not a stable API): parse `data` as a publishing
/// refresh answer and as a usage report (what a Management Server and
/// its clients take from each other); whatever parses must write out and
/// parse back equal. Panics exactly when it finds a bug.
pub fn refresh(data: &[u8]) {
    use crate::publish::{Limits, PublishingAnswer, UsageReport};
    if let Ok(a) = PublishingAnswer::parse(data) {
        let back = PublishingAnswer::parse(a.to_xml().as_bytes()).expect("a written answer parses");
        assert_eq!(back, a, "answer round trip");
    }
    if let Ok(r) = UsageReport::parse_with(data, &Limits::default()) {
        let back = UsageReport::parse_with(r.to_xml().as_bytes(), &Limits::default())
            .expect("a written report parses");
        assert_eq!(back, r, "report round trip");
    }
}

#[cfg(feature = "bundle")]
/// Fuzzing entry point (not a stable API): open `data` as a bundle through
/// the same code as [`crate::bundle::Bundle::open`]; never panics on bad input. If it
/// opens, every entry must read back with its recorded length, the
/// container reader must agree, and re-encoding the entries must give
/// `data` byte for byte (the layout is canonical; only `version_minor` is
/// free). The same again with every CRC rewritten to match, so mutations
/// reach the rules behind the checksums. Panics exactly when it finds a
/// bug.
pub fn bundle(data: &[u8]) {
    fuzz_one(data);
    // Again with every checksum made to match, so mutations reach the
    // rules behind the CRCs.
    let mut fixed = data.to_vec();
    crate::bundle::container::fix_checksums(&mut fixed);
    if fixed != data {
        fuzz_one(&fixed);
    }
}

#[cfg(feature = "msi")]
/// Fuzzing entry point (not a stable API): open `data` as a Windows
/// Installer file through the same code as
/// [`crate::bundle::msi::MsiPackage::open`]; never panics on bad input.
/// If it opens, the manifest comes first, every descriptor reads back
/// with its recorded length (checked again), the SFT's full check and its
/// extraction agree (extracted with its recorded length, or refused
/// leaving nothing), and `MODE` is one of its values or an error. Panics
/// exactly when it finds a bug.
pub fn msi(data: &[u8]) {
    use crate::bundle::EntryKind;
    use crate::bundle::msi::MsiPackage;
    let Ok(m) = MsiPackage::from_bytes(data.to_vec(), "fuzz input") else {
        return;
    };
    assert_eq!(m.entries()[0].kind, EntryKind::Manifest);
    assert_eq!(
        m.read(&m.entries()[0].name).expect("the manifest reads"),
        m.manifest_bytes()
    );
    for e in m.entries() {
        if e.kind == EntryKind::Sft {
            // Its blocks are checked when it is read through: the check
            // and the extraction agree, and a refused extraction leaves
            // nothing.
            let dir = std::env::temp_dir().join(format!("sft-fuzz-msi-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let out = dir.join("x.sft");
            let checked = m.check_sft();
            let extracted = m.extract_sft(&out);
            let len = std::fs::metadata(&out).map(|x| x.len()).ok();
            let _ = std::fs::remove_dir_all(&dir);
            assert_eq!(
                checked.is_ok(),
                extracted.is_ok(),
                "check_sft and extract_sft disagree"
            );
            match extracted {
                Ok(()) => assert_eq!(len, Some(e.len), "the SFT's extracted length"),
                Err(_) => assert_eq!(len, None, "a refused extraction left a file"),
            }
        } else {
            let b = m.read(&e.name).expect("a checked entry reads");
            assert_eq!(b.len() as u64, e.len);
        }
    }
    let _ = m.mode();
}

#[cfg(feature = "client")]
/// Fuzzing entry point (not a stable API): parse `data` as records; if
/// they parse, they must serialize and parse back equal. Panics exactly
/// when it finds a bug.
pub fn client_records(data: &[u8]) {
    #[allow(clippy::wildcard_imports)]
    use crate::client::*;
    if let Ok(r) = Records::parse(data) {
        let json = match r.to_json() {
            Ok(j) => j,
            Err(e) => panic!("records that parsed do not serialize: {e}"),
        };
        match Records::parse(&json) {
            Ok(back) => assert_eq!(back, r, "records changed through a round trip"),
            Err(e) => panic!("serialized records do not parse: {e}"),
        }
    }
}

#[cfg(feature = "bundle")]
fn fuzz_one(data: &[u8]) {
    #[allow(clippy::wildcard_imports)]
    use crate::bundle::*;
    let raw = decode_entries(data);
    let Ok(b) = Bundle::from_source(
        crate::bundle::container::Source::Mem(data.to_vec()),
        "fuzz input".into(),
    ) else {
        return;
    };
    let raw = raw.expect("the container reader accepts what Bundle accepts");
    assert_eq!(raw.len(), b.entries().len());
    assert_eq!(b.entries()[0].kind, EntryKind::Manifest);
    assert_eq!(b.manifest_bytes(), raw[0].1.as_slice());
    for ((e, bytes), be) in raw.iter().zip(b.entries()) {
        assert_eq!(e, be);
        assert_eq!(bytes.len() as u64, e.len);
        if e.kind != EntryKind::Sft {
            assert_eq!(&b.read(&e.name).expect("a checked entry reads"), bytes);
        }
    }
    assert_eq!(
        b.has_sft(),
        b.entries().iter().any(|e| e.kind == EntryKind::Sft)
    );
    let again = encode_entries(
        &raw.into_iter()
            .map(|(e, d)| (e.name, e.kind, d))
            .collect::<Vec<_>>(),
    )
    .expect("accepted entries re-encode");
    // Canonical but for version_minor, which a reader accepts as found.
    let mut again = again;
    container::set_minor(&mut again, [data[10], data[11]]);
    assert_eq!(again, data, "the layout is canonical");
}
