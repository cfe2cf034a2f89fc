//! Names that are safe to print and to create (issue 13 §3,
//! `docs/FORMAT.md` §5.2, §6.2, §6.8): what the writer refuses, what the
//! reader rejects, how the CLI prints what is allowed, and what the
//! extractor does with names the target cannot hold.
#![cfg(feature = "write")]

use sft::error::{FormatProblem, Region};
use sft::write::PackageBuilder;
use sft::{Error, Package, WriteOptions};

use crate::common::patch::Patch;

/// Names that break one rule of §6.2 each, all as long as `"abcd"` so a
/// patched package keeps its layout.
const BAD: [&str; 12] = [
    "a\x1bbc", "a\x07bc", "a\rbc", "a\nbc", "a\x7fbc", "a<bc", "ab?c", "ab|c", "abc.", "abc ",
    "COM1", "NUL.",
];

fn package(path: &str) -> Vec<u8> {
    PackageBuilder::new(WriteOptions::default().name("names"))
        .add_bytes(path, b"payload".to_vec())
        .expect("valid path")
        .write_to_vec()
        .expect("write")
}

#[test]
fn writer_refuses_each_class_naming_the_rule() {
    let cases: [(&str, &str); 9] = [
        ("dir/a\x1b[2Jb", "control character"),
        ("bell\x07", "control character"),
        ("a<b", "one of"),
        ("a?b", "one of"),
        ("dir./x", "ends with `.` or a space"),
        ("x ", "ends with `.` or a space"),
        ("lib/CON", "Windows device name"),
        ("Com1.txt", "Windows device name"),
        ("aux .log", "Windows device name"),
    ];
    for (path, why) in cases {
        let mut b = PackageBuilder::new(WriteOptions::default());
        let err = b.add_bytes(path, b"x".to_vec()).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{path:?}: {err}");
        assert!(err.to_string().contains(why), "{path:?}: {err}");
    }
    let long = "x".repeat(256);
    let err = PackageBuilder::new(WriteOptions::default())
        .add_bytes(&long, b"x".to_vec())
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("longer than 255 bytes"), "{err}");
    // What stays allowed.
    for ok in [
        "CONSOLE",
        "COM10",
        "con_x.txt",
        " lead",
        ".hidden",
        "ü\u{202e}x",
    ] {
        PackageBuilder::new(WriteOptions::default())
            .add_bytes(ok, b"x".to_vec())
            .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
}

#[test]
fn writer_refuses_a_package_name_with_controls() {
    for name in ["evil\x1b]0;title\x07", "two\nlines", "del\x7f"] {
        let err = PackageBuilder::new(WriteOptions::default().name(name))
            .add_bytes("a", b"x".to_vec())
            .unwrap()
            .write_to_vec()
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{name:?}: {err}");
    }
}

#[test]
fn reader_rejects_each_class_as_bad_path() {
    let good = package("abcd");
    Package::parse(&good).unwrap().verify().unwrap();
    for bad in BAD {
        let mut p = Patch::new(&good);
        let r = p.entry_path_range(0);
        assert_eq!(r.len(), 4);
        p.0[r].copy_from_slice(bad.as_bytes());
        p.fix_entry_crc(0).fix_all();
        let pkg = Package::parse(&p.0).expect("open checks no entry");
        let err = pkg.entry_at(0).map(|_| ()).unwrap_err();
        match err {
            Error::Format(f) => {
                assert_eq!(f.region, Region::Entry(0), "{bad:?}");
                assert_eq!(f.problem, FormatProblem::BadPath, "{bad:?}");
            }
            other => panic!("{bad:?}: {other}"),
        }
        assert!(pkg.verify().is_err(), "{bad:?}");
    }
}

#[test]
fn reader_rejects_a_package_name_with_controls_at_open() {
    let good = package("abcd");
    let meta = {
        let p = Patch::new(&good);
        p.section_of(1)
    };
    let at = meta.offset as usize;
    let p = Patch::new(&good);
    let (off, len) = (p.u32(at + 72) as usize, p.u32(at + 76) as usize);
    assert_eq!(&good[at + off..at + off + len], b"names");
    let mut p = Patch::new(&good);
    p.0[at + off + 2] = 0x1b;
    p.fix_all();
    match Package::parse(&p.0).map(|_| ()).unwrap_err() {
        Error::Format(f) => {
            assert_eq!(f.region, Region::Metadata);
            assert_eq!(f.offset, (at + off) as u64);
            assert!(
                matches!(
                    f.problem,
                    FormatProblem::BadValue {
                        field: "name",
                        value: 0x1b
                    }
                ),
                "{f:?}"
            );
        }
        other => panic!("{other}"),
    }
}

#[cfg(feature = "cli")]
mod cli {
    use std::path::Path;
    use std::process::Output;

    use sft::WriteOptions;
    use sft::write::PackageBuilder;

    use crate::common::cli::sft;

    fn stdout(o: &Output) -> String {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout.clone()).unwrap()
    }

    fn raw_controls(bytes: &[u8]) -> bool {
        let s = String::from_utf8_lossy(bytes);
        s.chars()
            .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
    }

    #[test]
    fn info_and_ls_escape_what_they_print() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("p.sft");
        PackageBuilder::new(
            WriteOptions::default()
                .name("Bidi\u{202e}gnp.exe")
                .comment("line one\r\nline two\x1b[2J\x07"),
        )
        .add_bytes("doc\u{202e}fdp.exe", b"x".to_vec())
        .unwrap()
        .write_to_path(&pkg)
        .unwrap();
        let p = pkg.to_str().unwrap();
        let info = sft(&["info", p]);
        assert!(
            !raw_controls(&info.stdout),
            "{:?}",
            String::from_utf8_lossy(&info.stdout)
        );
        let info = stdout(&info);
        assert!(info.contains("Bidi\\u{202e}gnp.exe"), "{info}");
        assert!(
            info.contains("line one\\x0d\\x0aline two\\x1b[2J\\x07"),
            "{info}"
        );
        // JSON keeps the exact string, escaped by JSON itself.
        let json = stdout(&sft(&["info", "--json", p]));
        assert!(!raw_controls(json.as_bytes()), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["comment"], "line one\r\nline two\x1b[2J\x07");
        for args in [&["ls", p][..], &["ls", "-l", p][..]] {
            let out = sft(args);
            assert!(!raw_controls(&out.stdout), "{args:?}");
            assert!(stdout(&out).contains("doc\\u{202e}fdp.exe"), "{args:?}");
        }
    }

    #[test]
    fn pack_refuses_a_tree_with_an_unportable_name() {
        for (name, why) in [
            ("CON", "Windows device name"),
            ("trailing.", "ends with `.`"),
            ("a?b", "one of"),
            ("esc\x1bname", "control character"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let tree = dir.path().join("tree");
            std::fs::create_dir_all(tree.join("sub")).unwrap();
            std::fs::write(tree.join("sub").join(name), b"x").unwrap();
            let out_pkg = dir.path().join("out.sft");
            let o = sft(&[
                "pack",
                tree.to_str().unwrap(),
                "-o",
                out_pkg.to_str().unwrap(),
            ]);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name:?}: {err}");
            assert!(err.contains(why), "{name:?}: {err}");
            assert!(!out_pkg.exists(), "{name:?}");
        }
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out
    }

    /// A valid 4000-byte path under a target directory goes past Linux'
    /// PATH_MAX (4096): the extractor stops with an error naming the entry,
    /// leaves no temporary file and no file of that name.
    #[test]
    fn extract_stops_cleanly_at_a_name_the_target_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("long.sft");
        let comp = "d".repeat(199);
        let long: String = (0..20).map(|_| comp.as_str()).collect::<Vec<_>>().join("/");
        assert!(long.len() <= 4096 && sft::format::is_valid_path(&long));
        PackageBuilder::new(WriteOptions::default())
            .add_bytes("a-first.txt", b"first".to_vec())
            .unwrap()
            .add_bytes(&format!("{long}/f"), b"deep".to_vec())
            .unwrap()
            .write_to_path(&pkg)
            .unwrap();
        let out_dir = dir.path().join("o".repeat(120));
        let o = sft(&["extract", pkg.to_str().unwrap(), out_dir.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("File name too long"), "{err}");
        assert!(err.contains(&comp), "the error names the entry: {err}");
        let left = files_under(&out_dir);
        assert!(
            !left.iter().any(|f| f.contains("sft-part") || f == "f"),
            "{left:?}"
        );
    }

    /// Two paths that differ only in case are both extracted where the
    /// target tells them apart (this machine's file systems do).
    #[test]
    fn extract_keeps_case_pairs_on_a_case_sensitive_target() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("case.sft");
        PackageBuilder::new(WriteOptions::default())
            .add_bytes("Read.me", b"upper".to_vec())
            .unwrap()
            .add_bytes("read.me", b"lower".to_vec())
            .unwrap()
            .write_to_path(&pkg)
            .unwrap();
        let out = dir.path().join("out");
        let o = sft(&["extract", pkg.to_str().unwrap(), out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(std::fs::read(out.join("Read.me")).unwrap(), b"upper");
        assert_eq!(std::fs::read(out.join("read.me")).unwrap(), b"lower");
        // The probe leaves nothing behind.
        assert_eq!(files_under(&out).len(), 2, "{:?}", files_under(&out));
    }
}
