//! `sft::mount` against the kernel's FUSE: a package mounted from a
//! streaming source, read by real programs (`sh`, `python3`, `cmp`) and
//! compared byte for byte with the tree it was packed from. Skips loudly
//! without `/dev/fuse` or without the right to mount (root);
//! `SFT_REQUIRE_SERVERS=1` makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sft::fetch::cache::CachePaths;
use sft::fetch::streaming::{StreamingOptions, StreamingPackage};
use sft::io::RangeSource;
use sft::mount::PackageFs;
use sft::read::Attributes;
use sft::write::PackageBuilder;

use crate::common::{noise, text};

/// Whether this process may mount FUSE file systems.
fn can_mount() -> bool {
    let ok = Path::new("/dev/fuse").exists()
        && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
    if !ok {
        assert!(
            std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "FUSE is required (SFT_REQUIRE_SERVERS=1): no /dev/fuse or not root"
        );
        eprintln!("SKIPPED: FUSE mount tests need /dev/fuse and root");
    }
    ok
}

/// The files of the test tree: (path, bytes, executable).
fn tree() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        (
            "bin/run.sh",
            b"#!/bin/sh\necho \"ran from $(dirname \"$0\")\"\n".to_vec(),
            true,
        ),
        ("lib/app/__init__.py", b"".to_vec(), false),
        (
            "lib/app/core.py",
            b"def answer():\n    return sum(range(10)) - 3\n".to_vec(),
            false,
        ),
        ("data/big.bin", noise(5, 3_000_000), false),
        ("data/text.txt", text(700_000), false),
        ("data/empty", Vec::new(), false),
    ]
}

fn pack(files: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut b = PackageBuilder::new(sft::WriteOptions::default().name("MountTest"));
    for (path, data, exec) in files {
        let mut attrs = Attributes::default();
        attrs.executable = *exec;
        b.add_bytes_with(path, data.clone(), (1_700_000_000, 0), attrs)
            .unwrap();
    }
    b.write_to_vec().unwrap()
}

struct Mounted {
    session: sft::mount::Mount,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn mount(pkg: Vec<u8>) -> Mounted {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let src: Arc<dyn RangeSource> = Arc::new(pkg);
    let paths = CachePaths::for_output(&tmp.path().join("cache.sft"), None);
    let sp = StreamingPackage::open(src, paths, StreamingOptions::default()).unwrap();
    let fs = PackageFs::new(Arc::new(sp), 0, 0).unwrap();
    let session = sft::mount::spawn(fs, &dir, "test.sft").unwrap();
    Mounted {
        session,
        dir,
        _tmp: tmp,
    }
}

fn mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()))
}

#[test]
fn real_programs_run_from_a_mounted_package() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let m = mount(pack(&files));
    assert!(mounted(&m.dir));
    // Every file: its bytes, size and executable bit, read by the kernel.
    for (path, data, exec) in &files {
        let p = m.dir.join(path);
        assert_eq!(&std::fs::read(&p).unwrap(), data, "{path}");
        let meta = std::fs::metadata(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o111 != 0, *exec, "{path}");
        assert_eq!(meta.len(), data.len() as u64);
    }
    let mut names: Vec<_> = std::fs::read_dir(m.dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["big.bin", "empty", "text.txt"]);
    // A script executed from the mount, and an interpreter importing from it.
    let out = Command::new(m.dir.join("bin/run.sh")).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ran from {}", m.dir.join("bin").display())
    );
    if crate::common::have("python3", "--version") {
        let out = Command::new("python3")
            .args(["-c", "import sys; sys.path.insert(0, sys.argv[1]); import app.core; print(app.core.answer())"])
            .arg(m.dir.join("lib"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    }
    // Read-only: a write is refused.
    assert!(
        std::fs::OpenOptions::new()
            .append(true)
            .open(m.dir.join("data/text.txt"))
            .is_err()
    );
    assert!(std::fs::write(m.dir.join("new.txt"), b"x").is_err());
    let dir = m.dir.clone();
    m.session.unmount().unwrap();
    assert!(!mounted(&dir), "still mounted after unmount");
}

/// A block damaged at the source is never handed to a reader: the read of
/// its file fails (EIO), it does not return other bytes.
#[test]
fn a_damaged_block_is_an_io_error_never_data() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let mut pkg = pack(&files);
    let local = sft::Package::parse(&pkg).unwrap();
    let e = local.entry("data/big.bin").unwrap();
    let first = e.extents().get(0).unwrap();
    let (id, _) = local.index().locate(first.logical_offset).unwrap();
    let info = local.index().get(id).unwrap();
    pkg[info.stored_offset as usize + 7] ^= 0x10;
    let m = mount(pkg);
    let err = std::fs::read(m.dir.join("data/big.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "{err}"); // EIO
}

/// Start `sft mount PKG DIR ARGS…` and wait until it says it mounted; the
/// process and the rest of its stderr.
#[cfg(feature = "cli")]
fn sft_mount(
    pkg: &Path,
    dir: &Path,
    args: &[&std::ffi::OsStr],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("mount")
        .arg(pkg)
        .arg(dir)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("mounted on"), "{line}");
    assert!(mounted(dir));
    (child, err)
}

/// `sft mount` as a user runs it: the tree is there once it says
/// "mounted", equal to the files packed; SIGTERM unmounts and exits 0;
/// `sft unmount` ends a second mount the same way.
#[cfg(feature = "cli")]
#[test]
fn sft_mount_serves_until_a_signal_or_sft_unmount() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.sft");
    std::fs::write(&pkg, pack(&files)).unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let sft = env!("CARGO_BIN_EXE_sft");
    for how in ["signal", "sft unmount"] {
        let (mut child, mut err) = sft_mount(
            &pkg,
            &dir,
            &["--cache-dir".as_ref(), tmp.path().as_os_str()],
        );
        for (path, data, _) in &files {
            assert_eq!(
                &std::fs::read(dir.join(path)).unwrap(),
                data,
                "{how}: {path}"
            );
        }
        if how == "signal" {
            let ok = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        } else {
            let out = Command::new(sft).arg("unmount").arg(&dir).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        assert!(status.success(), "{how}: {rest}");
        assert!(rest.contains("unmounted"), "{how}: {rest}");
        assert!(!mounted(&dir), "{how}: still mounted");
    }
}

/// `--background none`: FB1, then only what is read. A later `sft fetch`
/// into the same cache directory resumes from the mount's cache: it moves
/// the package less what the mount fetched, and the result is the package.
#[cfg(feature = "cli")]
#[test]
fn a_mount_without_background_fetches_what_is_read_and_a_fetch_resumes_it() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.sft");
    let bytes = pack(&files);
    std::fs::write(&pkg, &bytes).unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let sft = env!("CARGO_BIN_EXE_sft");
    let (mut child, _err) = sft_mount(
        &pkg,
        &dir,
        &[
            "--background".as_ref(),
            "none".as_ref(),
            "--cache-dir".as_ref(),
            cache.as_os_str(),
        ],
    );
    // One small file (not in FB1: no launch list, FB1 is empty).
    assert_eq!(
        std::fs::read(dir.join("lib/app/core.py")).unwrap(),
        files[2].1
    );
    let out = Command::new(sft).arg("unmount").arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(child.wait().unwrap().success());
    // The fetch (the same name, so the same cache) moves the rest only.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let out = Command::new(sft)
        .arg("fetch")
        .arg(&pkg)
        .arg("-o")
        .arg(copy.join("app.sft"))
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let moved: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("transferred: "))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no transferred line in {text}"));
    assert!(
        moved > 0 && moved < bytes.len() as u64 - 1000,
        "moved {moved} of {}",
        bytes.len()
    );
    assert!(
        moved > bytes.len() as u64 / 2,
        "the mount fetched more than was read: {moved}"
    );
    assert_eq!(std::fs::read(copy.join("app.sft")).unwrap(), bytes);
}
