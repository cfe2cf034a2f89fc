//! End-to-end tests of the `sft` binary.
#![cfg(feature = "cli")]
#![cfg(unix)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SFT: &str = env!("CARGO_BIN_EXE_sft");

fn sft(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(SFT);
    for a in args {
        c.arg(a);
    }
    c.env_remove("SOURCE_DATE_EPOCH");
    c.output().expect("run sft")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "sft failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Deterministic varied bytes.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 16 == 0 { x as u8 } else { (i / 5) as u8 }
        })
        .collect()
}

/// A generated file: content, mtime, executable.
struct Gen {
    data: Vec<u8>,
    mtime: SystemTime,
    exec: bool,
}

/// Write a tree of `small` small files, a large file and an empty file
/// under `root`, with distinct mtimes and some executables.
fn gen_tree(root: &Path, small: usize) -> BTreeMap<String, Gen> {
    let mut files = BTreeMap::new();
    for i in 0..small {
        let path = format!(
            "dir{}/sub{}/file-with-a-longer-name-{i:05}.txt",
            i % 10,
            i % 3
        );
        files.insert(path, data(i as u64, (i * 53) % 3000));
    }
    files.insert("bin/app.exe".to_owned(), data(7777, 400_000));
    files.insert("bin/app.dll".to_owned(), data(8888, 150_000));
    files.insert("empty.txt".to_owned(), Vec::new());
    let mut out = BTreeMap::new();
    for (i, (path, bytes)) in files.into_iter().enumerate() {
        let p = root.join(&path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, &bytes).expect("write");
        let exec = path.starts_with("bin/") || i % 11 == 0;
        let mode = if exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let mtime =
            UNIX_EPOCH + Duration::new(1_600_000_000 + i as u64 * 61, (i as u32 % 1000) * 1000);
        File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
        out.insert(
            path,
            Gen {
                data: bytes,
                mtime,
                exec,
            },
        );
    }
    out
}

fn json(pkg: &Path) -> serde_json::Value {
    let out = ok(&sft(&[&"info", &pkg, &"--json"]));
    serde_json::from_str(&out).expect("info --json is JSON")
}

fn check_extracted(dir: &Path, files: &BTreeMap<String, Gen>) {
    for (path, g) in files {
        let p = dir.join(path);
        let got = std::fs::read(&p).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(got == g.data, "{path}: content differs");
        let md = std::fs::metadata(&p).expect("metadata");
        assert_eq!(md.modified().expect("mtime"), g.mtime, "{path}: mtime");
        assert_eq!(
            md.permissions().mode() & 0o111 != 0,
            g.exec,
            "{path}: executable bit"
        );
    }
    // Nothing else but the expected files (and their directories).
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                count += 1;
            }
        }
    }
    assert_eq!(
        count,
        files.len(),
        "unexpected extra files in {}",
        dir.display()
    );
}

#[test]
fn round_trip_pack_info_ls_cat_extract_verify() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("MyApp");
    let files = gen_tree(&src, 1500);
    let pkg = tmp.path().join("myapp.sft");
    let out = ok(&sft(&[
        &"pack",
        &src,
        &"-o",
        &pkg,
        &"--comment",
        &"test build",
    ]));
    assert!(out.contains("1503 files"), "{out}");

    let v = json(&pkg);
    let total: u64 = files.values().map(|g| g.data.len() as u64).sum();
    assert_eq!(v["name"], "MyApp");
    assert_eq!(v["comment"], "test build");
    assert_eq!(v["files"].as_u64(), Some(files.len() as u64));
    assert_eq!(v["package_size"].as_u64(), Some(total));
    assert_eq!(
        v["stored_size"].as_u64(),
        Some(std::fs::metadata(&pkg).expect("md").len())
    );
    assert_eq!(v["block_size"].as_u64(), Some(65536));
    assert_eq!(v["compression"], "zlib");
    assert_eq!(v["launch_size"].as_u64(), Some(0));
    assert_eq!(v["fb1_blocks"].as_u64(), Some(0));
    assert_eq!(v["blocks"].as_u64(), Some(total.div_ceil(65536)));
    // dir0..dir9, each with sub0..sub2, and bin.
    assert_eq!(v["directories"].as_u64(), Some(10 + 30 + 1));
    let text = ok(&sft(&[&"info", &pkg]));
    assert!(text.contains("Name:") && text.contains("MyApp"), "{text}");

    let ls = ok(&sft(&[&"ls", &pkg]));
    let listed: Vec<&str> = ls.lines().collect();
    for path in files.keys() {
        assert!(listed.contains(&path.as_str()), "{path} not listed");
    }
    assert!(listed.contains(&"bin/"));
    assert!(listed.contains(&"dir3/sub1/"));
    assert_eq!(listed.len(), files.len() + 41);

    for path in [
        "bin/app.exe",
        "dir4/sub1/file-with-a-longer-name-00004.txt",
        "empty.txt",
    ] {
        let out = sft(&[&"cat", &pkg, &path]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(out.stdout == files[path].data, "cat {path}");
    }
    let missing = sft(&[&"cat", &pkg, &"no/such/file"]);
    assert_eq!(code(&missing), 1);
    assert!(
        stderr(&missing).contains("no/such/file"),
        "{}",
        stderr(&missing)
    );

    let dest = tmp.path().join("out/nested");
    let out = ok(&sft(&[&"extract", &pkg, &dest]));
    assert!(out.contains("1503 files"), "{out}");
    check_extracted(&dest, &files);

    let out = ok(&sft(&[&"verify", &pkg]));
    assert_eq!(
        out.trim(),
        format!(
            "OK: {} entries, {} blocks, {total} bytes verified",
            files.len() + 41,
            total.div_ceil(65536)
        )
    );

    // --no-mmap reads the same package.
    let out = ok(&sft(&[&"--no-mmap", &"verify", &pkg]));
    assert!(out.starts_with("OK:"), "{out}");
    let again = tmp.path().join("again");
    ok(&sft(&[&"extract", &"--no-mmap", &pkg, &again]));
    check_extracted(&again, &files);
}

#[test]
fn block_sizes_and_compression() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("tree");
    let files = gen_tree(&src, 120);
    let total: u64 = files.values().map(|g| g.data.len() as u64).sum();
    for (bs, bytes) in [
        ("4k", 4096u64),
        ("16k", 16384),
        ("32k", 32768),
        ("64k", 65536),
    ] {
        let (mut stored_none, mut stored_zlib) = (0, 0);
        for comp in ["zlib", "none"] {
            let pkg = tmp.path().join(format!("t-{bs}-{comp}.sft"));
            ok(&sft(&[
                &"pack",
                &src,
                &"-o",
                &pkg,
                &"--block-size",
                &bs,
                &"--compression",
                &comp,
            ]));
            let v = json(&pkg);
            assert_eq!(v["block_size"].as_u64(), Some(bytes));
            assert_eq!(v["blocks"].as_u64(), Some(total.div_ceil(bytes)));
            let stored = v["stored_size"].as_u64().expect("stored_size");
            if comp == "none" {
                assert_eq!(v["compression"], "none");
                assert!(stored > total, "stored {stored} <= package {total}");
                stored_none = stored;
            } else {
                assert_eq!(v["compression"], "zlib");
                assert!(
                    stored < total / 2,
                    "zlib did not shrink: {stored} vs {total}"
                );
                stored_zlib = stored;
            }
            let dest = tmp.path().join(format!("x-{bs}-{comp}"));
            ok(&sft(&[&"extract", &pkg, &dest]));
            check_extracted(&dest, &files);
            assert!(ok(&sft(&[&"verify", &pkg])).starts_with("OK:"));
        }
        assert!(
            stored_zlib < stored_none,
            "{bs}: {stored_zlib} >= {stored_none}"
        );
    }
    // Level 0..9 accepted; level with no compression is a usage error.
    let pkg = tmp.path().join("l9.sft");
    ok(&sft(&[&"pack", &src, &"-o", &pkg, &"--level", &"9"]));
    let out = sft(&[
        &"pack",
        &src,
        &"-o",
        &pkg,
        &"--compression",
        &"none",
        &"--level",
        &"3",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

/// Parse `ls -l` into path → feature-block column.
fn feature_blocks(pkg: &Path) -> BTreeMap<String, String> {
    let out = ok(&sft(&[&"ls", &"-l", &pkg]));
    out.lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "{l}");
            (cols[5].to_owned(), cols[4].to_owned())
        })
        .collect()
}

#[test]
fn launch_list_and_full_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("app");
    let files = gen_tree(&src, 30);
    let list = tmp.path().join("app.launch");
    std::fs::write(
        &list,
        "# launch\nbin/app.dll:0:65536\ndir1/sub1/file-with-a-longer-name-00001.txt\n",
    )
    .expect("write list");
    let pkg = tmp.path().join("app.sft");
    ok(&sft(&[
        &"pack",
        &src,
        &"-o",
        &pkg,
        &"--launch-list",
        &list,
        &"--block-size",
        &"16k",
    ]));
    let fb = feature_blocks(&pkg);
    assert_eq!(fb["bin/app.dll"], "FB1+FB2");
    assert_eq!(fb["dir1/sub1/file-with-a-longer-name-00001.txt"], "FB1");
    assert_eq!(fb["bin/app.exe"], "FB2");
    assert_eq!(fb["bin/"], "-");
    let v = json(&pkg);
    let small = files["dir1/sub1/file-with-a-longer-name-00001.txt"]
        .data
        .len() as u64;
    assert_eq!(v["launch_size"].as_u64(), Some(65536 + small));
    assert_eq!(
        v["fb1_blocks"].as_u64(),
        Some((65536 + small).div_ceil(16384))
    );

    // The library agrees: the launch-listed bytes are in FB1 blocks.
    let bytes = std::fs::read(&pkg).expect("read");
    let p = sft::Package::parse(&bytes).expect("parse");
    let e = p
        .entry("dir1/sub1/file-with-a-longer-name-00001.txt")
        .expect("entry");
    for x in e.extents() {
        assert!(x.logical_offset + x.length <= p.metadata().launch_size());
    }

    // The executable bit shows in the attribute flags.
    let long = ok(&sft(&[&"ls", &"-l", &pkg]));
    let exe = long
        .lines()
        .find(|l| l.ends_with(" bin/app.exe"))
        .expect("exe line");
    assert!(exe.contains("--x-"), "{exe}");

    let full = tmp.path().join("full.sft");
    ok(&sft(&[&"pack", &src, &"-o", &full, &"--full-load"]));
    let v = json(&full);
    assert_eq!(v["launch_size"], v["package_size"]);
    assert_eq!(v["fb1_blocks"], v["blocks"]);
    for (path, fb) in feature_blocks(&full) {
        let empty = path.ends_with('/') || files[&path].data.is_empty();
        assert_eq!(fb, if empty { "-" } else { "FB1" }, "{path}");
    }

    // --launch-list and --full-load together: usage error.
    let out = sft(&[
        &"pack",
        &src,
        &"-o",
        &full,
        &"--full-load",
        &"--launch-list",
        &list,
    ]);
    assert_eq!(code(&out), 2);
}

#[test]
fn metadata_flags_and_source_date_epoch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    gen_tree(&src, 3);
    let pkg = tmp.path().join("m.sft");
    let out = Command::new(SFT)
        .args([
            "pack",
            "--name",
            "Office",
            "--version",
            "7",
            "--root",
            "OFFICE.1",
        ])
        .args([
            "--package-guid",
            "{6f9c0cd2-6b31-4a5e-9d34-6f7b2f0d4e11}",
            "--threads",
            "1",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&pkg)
        .env("SOURCE_DATE_EPOCH", "951782400")
        .output()
        .expect("run");
    ok(&out);
    let v = json(&pkg);
    assert_eq!(v["name"], "Office");
    assert_eq!(v["version"].as_u64(), Some(7));
    assert_eq!(v["root"], "OFFICE.1");
    assert_eq!(v["package_guid"], "6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11");
    assert_eq!(v["created"], "2000-02-29T00:00:00Z");
    assert_eq!(v["created_unix"].as_i64(), Some(951_782_400));
}

#[test]
fn exit_codes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    gen_tree(&src, 50);
    let pkg = tmp.path().join("p.sft");
    ok(&sft(&[
        &"pack",
        &src,
        &"-o",
        &pkg,
        &"--compression",
        &"none",
    ]));

    // Usage errors: 2.
    for args in [
        vec!["pack", "x", "-o", "y.sft", "--block-size", "3k"],
        vec!["pack", "x", "-o", "y.sft", "--level", "10"],
        vec!["info"],
        vec!["frobnicate"],
    ] {
        let out = Command::new(SFT).args(&args).output().expect("run");
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    // --help for each subcommand: 0.
    for sub in ["pack", "info", "ls", "cat", "extract", "verify"] {
        let out = Command::new(SFT)
            .args([sub, "--help"])
            .output()
            .expect("run");
        assert_eq!(code(&out), 0, "{sub} --help");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }

    // Missing package: 1, message names it.
    let missing = tmp.path().join("nope.sft");
    for sub in ["info", "ls", "verify"] {
        let out = sft(&[&sub, &missing]);
        assert_eq!(code(&out), 1);
        let err = stderr(&out);
        assert!(
            err.starts_with("sft: error: ") && err.contains("nope.sft"),
            "{err}"
        );
    }

    // Corrupted data region: 1 for verify, cat and extract; nothing bad written.
    let mut bytes = std::fs::read(&pkg).expect("read");
    let prologue = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    let at = prologue + (bytes.len() - prologue) / 2;
    bytes[at] ^= 0x55;
    let bad = tmp.path().join("bad.sft");
    std::fs::write(&bad, &bytes).expect("write");
    let out = sft(&[&"verify", &bad]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("crc mismatch"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let dest = tmp.path().join("bad-out");
    let out = sft(&[&"extract", &bad, &dest]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    // Whatever got extracted is intact; no temporary files remain.
    let good = std::fs::read(&pkg).expect("read");
    let p = sft::Package::parse(&good).expect("parse");
    for e in p.entries() {
        let e = e.expect("entry");
        let target = dest.join(e.path());
        if e.is_file() && target.exists() {
            assert!(
                std::fs::read(&target).expect("read") == p.read_file(&e).expect("data"),
                "{}",
                e.path()
            );
        }
    }
    assert!(
        !walk(&dest)
            .iter()
            .any(|p| p.to_string_lossy().contains(".sft-part-"))
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.expect("entry").path();
        if std::fs::symlink_metadata(&p).expect("md").is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Rename the entry with path `from` to `to` (same length) in a package's
/// bytes, fixing every CRC that covers it: each entry record's CRC, the
/// names and entries section CRCs, the section table CRC and the header CRC.
fn patch_path(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let header_len = u32_at(bytes, 12) as usize;
    let sections = u32_at(bytes, 44) as usize;
    let table = u64_at(bytes, 48) as usize;
    // kind -> (table entry offset, section offset, length, stride)
    let mut sec = BTreeMap::new();
    for i in 0..sections {
        let at = table + i * 32;
        sec.insert(
            u32_at(bytes, at),
            (
                at,
                u64_at(bytes, at + 8) as usize,
                u64_at(bytes, at + 16) as usize,
                u32_at(bytes, at + 24) as usize,
            ),
        );
    }
    let (_, ent_off, ent_len, ent_stride) = sec[&2];
    let (_, ext_off, _, ext_stride) = sec[&3];
    let (_, names_off, _, _) = sec[&4];
    let mut found = false;
    for n in 0..ent_len / ent_stride {
        let r = ent_off + n * ent_stride;
        let name_at = names_off + u64_at(bytes, r) as usize;
        let name_len = u32_at(bytes, r + 8) as usize;
        if &bytes[name_at..name_at + name_len] == from.as_bytes() {
            bytes[name_at..name_at + name_len].copy_from_slice(to.as_bytes());
            found = true;
        }
    }
    assert!(found, "{from} not in the package");
    // Every entry CRC (names may share pool bytes).
    for n in 0..ent_len / ent_stride {
        let r = ent_off + n * ent_stride;
        let name_at = names_off + u64_at(bytes, r) as usize;
        let names_len = u32_at(bytes, r + 8) as usize
            + usize::from(u16::from_le_bytes([bytes[r + 12], bytes[r + 13]]));
        let ext_count = u32_at(bytes, r + 36) as usize;
        let ext_first = u64_at(bytes, r + 40) as usize;
        let ext = ext_off + ext_first * ext_stride;
        let c = crc(&[
            &bytes[r..r + 60],
            &bytes[r + 64..r + ent_stride],
            &bytes[name_at..name_at + names_len],
            &bytes[ext..ext + ext_count * ext_stride],
        ]);
        bytes[r + 60..r + 64].copy_from_slice(&c.to_le_bytes());
    }
    for kind in [2u32, 4] {
        let (at, off, len, _) = sec[&kind];
        let c = crc(&[&bytes[off..off + len]]);
        bytes[at + 28..at + 32].copy_from_slice(&c.to_le_bytes());
    }
    let c = crc(&[&bytes[table..table + sections * 32]]);
    bytes[64..68].copy_from_slice(&c.to_le_bytes());
    let c = crc(&[&bytes[..header_len - 4]]);
    bytes[header_len - 4..header_len].copy_from_slice(&c.to_le_bytes());
}

#[test]
fn extract_refuses_path_traversal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("aa")).expect("mkdir");
    std::fs::write(src.join("aa/evil"), b"pwned").expect("write");
    std::fs::write(src.join("ok.txt"), b"fine").expect("write");
    let pkg = tmp.path().join("p.sft");
    ok(&sft(&[&"pack", &src, &"-o", &pkg]));
    let mut bytes = std::fs::read(&pkg).expect("read");
    patch_path(&mut bytes, "aa/evil", "../evil");
    let evil = tmp.path().join("evil.sft");
    std::fs::write(&evil, &bytes).expect("write");
    // The patch is well-formed apart from the path: the header and
    // section table still check out, so the package opens.
    assert!(sft::Package::parse(&bytes).is_ok());
    let out = sft(&[&"ls", &evil]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));

    let jail = tmp.path().join("jail");
    let dest = jail.join("inner");
    let out = sft(&[&"extract", &evil, &dest]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("sft: error: "), "{err}");
    // Refused for its path, not for a checksum: the patch kept every CRC right.
    assert!(
        err.contains("path breaks the path rules") && !err.contains("crc"),
        "{err}"
    );
    assert!(!jail.join("evil").exists());
    assert!(!tmp.path().join("evil").exists());
    assert!(
        !dest.join("ok.txt").exists()
            || std::fs::read(dest.join("ok.txt")).expect("read") == b"fine"
    );
}

#[test]
fn extract_does_not_follow_symlinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("evil")).expect("mkdir");
    std::fs::write(src.join("evil/passwd"), b"root::0:0").expect("write");
    let pkg = tmp.path().join("p.sft");
    ok(&sft(&[&"pack", &src, &"-o", &pkg]));

    let outside = tmp.path().join("etc");
    std::fs::create_dir(&outside).expect("mkdir");
    let dest = tmp.path().join("dest");
    std::fs::create_dir(&dest).expect("mkdir");
    std::os::unix::fs::symlink(&outside, dest.join("evil")).expect("symlink");
    let out = sft(&[&"extract", &pkg, &dest]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("symlink") && err.contains("evil"), "{err}");
    assert!(!outside.join("passwd").exists());
    assert!(walk(&outside).is_empty());
}

#[test]
fn pack_refuses_symlinks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("a.txt"), b"a").expect("write");
    std::os::unix::fs::symlink("/etc/passwd", src.join("sub/link")).expect("symlink");
    let pkg = tmp.path().join("p.sft");
    let out = sft(&[&"pack", &src, &"-o", &pkg]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("sub/link") && err.contains("symlink"), "{err}");
    assert!(!pkg.exists());
}

#[test]
fn broken_pipe_exits_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    for i in 0..4000 {
        let p = src.join(format!(
            "d{}/a-fairly-long-file-name-to-fill-the-pipe-{i:05}.txt",
            i % 10
        ));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"x").expect("write");
    }
    let pkg = tmp.path().join("big.sft");
    ok(&sft(&[&"pack", &src, &"-o", &pkg]));
    let mut child = Command::new(SFT)
        .arg("ls")
        .arg(&pkg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).expect("read");
    assert_eq!(first, "d0/\n");
    // The reader is gone: sft must see EPIPE, stay quiet and exit 0.
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

/// Commands that print a report after their work (`fetch`, `client`)
/// into a stdout whose reader is already gone: no panic, the work done,
/// exit 0 (the reader's choice, as for `ls`).
#[test]
fn a_closed_stdout_after_the_work_is_a_quiet_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let pkg = tmp.path().join("sample.sft");
    ok(&sft(&[&"pack", &root.join("sample-app"), &"-o", &pkg]));
    let copy = tmp.path().join("copy.sft");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(SFT)
        .arg("fetch")
        .arg(&pkg)
        .arg("-o")
        .arg(&copy)
        .stdout(writer)
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&copy).expect("the fetch's output"),
        std::fs::read(&pkg).expect("pkg")
    );
}

#[test]
fn sample_app_fixture_packs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let tmp = tempfile::tempdir().expect("tempdir");
    let pkg = tmp.path().join("sample.sft");
    ok(&sft(&[
        &"pack",
        &root.join("sample-app"),
        &"-o",
        &pkg,
        &"--launch-list",
        &root.join("sample-app.launch"),
    ]));
    let fb = feature_blocks(&pkg);
    assert_eq!(fb["bin/app.exe"], "FB1");
    assert_eq!(fb["bin/app.dll"], "FB1+FB2");
    assert_eq!(fb["config/app.ini"], "FB1");
    assert_eq!(fb["docs/README.txt"], "FB2");
    let dest = tmp.path().join("x");
    ok(&sft(&[&"extract", &pkg, &dest]));
    let md = std::fs::metadata(dest.join("bin/app.exe")).expect("md");
    assert!(md.permissions().mode() & 0o111 != 0);
    let orig = std::fs::read(root.join("sample-app/bin/app.exe")).expect("read");
    assert!(std::fs::read(dest.join("bin/app.exe")).expect("read") == orig);
}

/// Every command's error names its subject once (issue 13: "cannot open
/// package `x`: reading `x`: …" said it twice), on one line, escaped.
#[test]
fn errors_name_their_subject_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let junk = d.join("junk-pkg.sft");
    std::fs::write(&junk, data(3, 5000)).expect("write");
    let empty = d.join("empty-pkg.sft");
    std::fs::write(&empty, b"").expect("write");
    let dir = d.join("dir-pkg.sft");
    std::fs::create_dir(&dir).expect("mkdir");
    let missing = d.join("missing-pkg.sft");
    let file = d.join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let out = s(&d.join("out.sft"));
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    for (pkg, name) in [
        (&junk, "junk-pkg.sft"),
        (&empty, "empty-pkg.sft"),
        (&dir, "dir-pkg.sft"),
        (&missing, "missing-pkg.sft"),
    ] {
        let p = s(pkg);
        for mmap in [&[][..], &["--no-mmap"][..]] {
            let pre: Vec<String> = mmap.iter().map(|a| (*a).to_owned()).collect();
            for args in [
                vec!["info".to_owned(), p.clone()],
                vec!["ls".to_owned(), "-l".to_owned(), p.clone()],
                vec!["cat".to_owned(), p.clone(), "a.txt".to_owned()],
                vec!["extract".to_owned(), p.clone(), s(&d.join("x"))],
                vec!["verify".to_owned(), p.clone()],
            ] {
                cases.push(([pre.clone(), args].concat(), name));
            }
        }
        cases.push((
            vec!["fetch".into(), p.clone(), "-o".into(), out.clone()],
            name,
        ));
        cases.push((
            vec![
                "fetch".into(),
                format!("file://{p}"),
                "-o".into(),
                out.clone(),
            ],
            name,
        ));
    }
    cases.push((
        vec!["pack".into(), s(&missing), "-o".into(), out.clone()],
        "missing-pkg.sft",
    ));
    cases.push((
        vec!["pack".into(), s(d), "-o".into(), s(&file.join("x.sft"))],
        "plain-file",
    ));
    cases.push((
        vec!["osd".into(), "show".into(), s(&missing)],
        "missing-pkg.sft",
    ));
    cases.push((
        vec!["bundle".into(), "--list".into(), s(&missing)],
        "missing-pkg.sft",
    ));
    for (args, name) in &cases {
        let o = Command::new(SFT).args(args).output().expect("run");
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{args:?}: {err}");
        assert!(err.starts_with("sft: error: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches(name).count(), 1, "{args:?}: {err}");
        if *name == "dir-pkg.sft" {
            assert!(err.contains("is a directory"), "{args:?}: {err}");
        }
    }
    // Control characters in a name reach the terminal escaped.
    let evil = d.join("evil\x1b[2J\x07.sft");
    let o = sft(&[&"info", &evil]);
    let err = stderr(&o);
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("evil\\x1b[2J\\x07.sft"), "{err:?}");
}
