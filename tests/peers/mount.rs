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
    pkg: Arc<StreamingPackage>,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn mount(pkg: Vec<u8>) -> Mounted {
    mount_source(Arc::new(pkg), StreamingOptions::default())
}

/// `src` streamed with `options` into a temporary cache and mounted on a
/// temporary folder.
fn mount_source(src: Arc<dyn RangeSource>, options: StreamingOptions) -> Mounted {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let paths = CachePaths::for_output(&tmp.path().join("cache.sft"), None);
    let pkg = Arc::new(StreamingPackage::open(src, paths, options).unwrap());
    let fs = PackageFs::new(Arc::clone(&pkg), 0, 0).unwrap();
    let session = sft::mount::spawn(fs, &dir, "test.sft").unwrap();
    Mounted {
        session,
        pkg,
        dir,
        _tmp: tmp,
    }
}

/// The first block of file `path` in package `pkg`.
fn first_block(pkg: &[u8], path: &str) -> sft::index::BlockInfo {
    let local = sft::Package::parse(pkg).unwrap();
    let e = local.entry(path).unwrap();
    let first = e.extents().get(0).unwrap();
    let (id, _) = local.index().locate(first.logical_offset).unwrap();
    local.index().get(id).unwrap()
}

/// A package written to a temporary folder, with an empty cache folder
/// and mount point beside it.
#[cfg(feature = "cli")]
struct OnDisk {
    tmp: tempfile::TempDir,
    pkg: PathBuf,
    cache: PathBuf,
    dir: PathBuf,
}

#[cfg(feature = "cli")]
fn on_disk(bytes: &[u8]) -> OnDisk {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = tmp.path().join("app.sft");
    std::fs::write(&pkg, bytes).unwrap();
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    OnDisk {
        tmp,
        pkg,
        cache,
        dir,
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
    let info = first_block(&pkg, "data/big.bin");
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
    let OnDisk { tmp, pkg, dir, .. } = on_disk(&pack(&files));
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
    let bytes = pack(&files);
    let OnDisk {
        tmp,
        pkg,
        cache,
        dir,
    } = on_disk(&bytes);
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

/// A source that records the ranges asked of it, in order.
struct Counting {
    data: Vec<u8>,
    asked: std::sync::Mutex<Vec<std::ops::Range<u64>>>,
}

impl RangeSource for Counting {
    fn len(&self) -> Result<u64, sft::io::TransportError> {
        Ok(self.data.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, sft::io::TransportError> {
        self.data.read_at(offset, buf)
    }
    fn read_ranges(
        &self,
        ranges: &[std::ops::Range<u64>],
        sink: &mut sft::io::ChunkSink<'_>,
    ) -> Result<(), sft::io::TransportError> {
        self.asked.lock().unwrap().extend(ranges.iter().cloned());
        self.data.read_ranges(ranges, sink)
    }
}

/// Demand reads pre-empt: with the background paced to 64 KiB/s, a read of
/// the last block of a 12 MiB FB2 file (which the background would reach
/// after about 3 minutes) is served by the next request: counted in
/// requests and bytes asked of the source, not in wall time.
#[test]
fn a_read_of_the_last_block_preempts_a_throttled_background() {
    if !can_mount() {
        return;
    }
    let big = noise(9, 12 << 20);
    let mut b = PackageBuilder::new(sft::WriteOptions::default().name("Preempt"));
    b.add_bytes("app.exe", text(100_000)).unwrap();
    b.add_bytes("data/big.bin", big.clone()).unwrap();
    b.launch_list(sft::write::parse_launch_list("app.exe\n").unwrap());
    let pkg = b.write_to_vec().unwrap();
    let parsed = sft::Package::parse(&pkg).unwrap();
    let last_block = parsed.index().len() - 1;
    let last = parsed.index().get(sft::BlockId(last_block)).unwrap();
    let prologue = parsed.header().prologue_len;
    let fb1 = parsed.metadata().launch_size();
    let src = Arc::new(Counting {
        data: pkg,
        asked: Default::default(),
    });
    let rate = 64 * 1024;
    let options = StreamingOptions::default().session(
        sft::stream::SessionConfig::default()
            .background_rate(Some(rate))
            .max_request_bytes(256 * 1024),
    );
    let m = mount_source(Arc::clone(&src) as Arc<dyn RangeSource>, options);
    m.pkg.wait_launch_ready().unwrap();
    let dir = &m.dir;
    // The last 4 KiB of the big file, through the kernel.
    let mut f = std::fs::File::open(dir.join("data/big.bin")).unwrap();
    let mut tail = vec![0u8; 4096];
    use std::io::{Read, Seek, SeekFrom};
    f.seek(SeekFrom::Start(big.len() as u64 - 4096)).unwrap();
    f.read_exact(&mut tail).unwrap();
    assert_eq!(tail, big[big.len() - 4096..]);
    let asked = src.asked.lock().unwrap().clone();
    // The request that brought the last block, and everything before it.
    let at = asked
        .iter()
        .position(|r| r.start <= last.stored_offset && last.stored_offset < r.end)
        .unwrap_or_else(|| panic!("the last block was never asked for: {asked:?}"));
    let before: u64 = asked[..at].iter().map(|r| r.end - r.start).sum();
    let fb2_before = before.saturating_sub(prologue + fb1);
    // Before the demand: the prologue, FB1 and at most a few paced FB2
    // requests (one per 256 KiB / 64 KiB/s = 4 s), far from the 12 MiB
    // the background would have had to move first.
    assert!(
        at <= 6 && fb2_before <= 1 << 20,
        "{at} requests, {fb2_before} FB2 bytes before the demand: {asked:?}"
    );
    drop(f);
    let Mounted { session, pkg, .. } = m;
    session.unmount().unwrap();
    let report = Arc::try_unwrap(pkg).unwrap().close().unwrap();
    assert!(report.demand_requests >= 1, "{report:?}");
    assert!(
        report.bytes < (big.len() / 4) as u64,
        "the background was not paced: {report:?}"
    );
}

/// Wait for a line containing `what` on `err` (a child's stderr); the
/// lines before it.
#[cfg(feature = "cli")]
fn wait_line(err: &mut impl std::io::BufRead, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "no `{what}` before the end: {seen:?}");
        if line.contains(what) {
            return seen;
        }
        seen.push(line);
    }
}

/// "moved N bytes (…) in R requests, D on demand (B bytes)" → (N, D).
#[cfg(feature = "cli")]
fn moved(text: &str) -> (u64, u64) {
    let line = text
        .lines()
        .find(|l| l.contains(" moved "))
        .unwrap_or_else(|| panic!("no `moved` line in {text}"));
    let num = |after: &str| -> u64 {
        let i = line.find(after).unwrap() + after.len();
        line[i..].split(' ').next().unwrap().parse().unwrap()
    };
    let demand = line.split(", ").nth(1).unwrap().split(' ').next().unwrap();
    (num("moved "), demand.parse().unwrap())
}

/// Write `files` under `root`, with the executable bit where asked.
#[cfg(feature = "cli")]
fn write_tree(root: &Path, files: &[(&str, Vec<u8>, bool)]) {
    use std::os::unix::fs::PermissionsExt;
    for (path, data, exec) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        if *exec {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// Mount `pkg` with `--background none`, wait for FB1, run `launch` from
/// the mount, unmount: (bytes moved, demand requests) and the output.
#[cfg(feature = "cli")]
fn launch_from_mount(pkg: &Path, dir: &Path, launch: &str) -> ((u64, u64), String) {
    let (mut child, mut err) = sft_mount(pkg, dir, &["--background".as_ref(), "none".as_ref()]);
    wait_line(&mut err, "FB1 resident");
    let out = Command::new("sh")
        .args(["-c", launch])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("unmount")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    (
        moved(&rest),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Launch recording end to end: `sft trace` records a launch, `sft pack
/// --launch-trace` makes it FB1, and the same launch from a fresh mount
/// (FB1 resident, nothing else streamed) makes zero demand fetches; the
/// package packed without the trace makes some (the count can fail).
#[cfg(feature = "cli")]
#[test]
fn a_recorded_trace_as_fb1_makes_the_launch_need_no_demand_fetch() {
    if !can_mount() || !crate::common::have("python3", "--version") {
        return;
    }
    let files = tree();
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    write_tree(&app, &files);
    let sft = env!("CARGO_BIN_EXE_sft");
    let launch = "./bin/run.sh && head -c 5000 data/text.txt | wc -c && \
                  python3 -c 'import sys; sys.path.insert(0, \"lib\"); import app.core; print(app.core.answer())'";
    let trace = tmp.path().join("launch.trace");
    let out = Command::new(sft)
        .arg("trace")
        .arg(&app)
        .arg("-o")
        .arg(&trace)
        .args(["--", "sh", "-c", launch])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let items = sft::write::parse_launch_list(&text).unwrap();
    let paths: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
    // In order of first touch; the big file, never read, is not there.
    assert_eq!(paths.first(), Some(&"bin/run.sh"), "{text}");
    assert!(
        paths.contains(&"lib/app/core.py") && !paths.contains(&"data/big.bin"),
        "{text}"
    );
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let mut outputs = Vec::new();
    for (name, with_trace) in [("traced.sft", true), ("plain.sft", false)] {
        let pkg = tmp.path().join(name);
        let mut cmd = Command::new(sft);
        cmd.arg("pack").arg(&app).arg("-o").arg(&pkg);
        if with_trace {
            cmd.arg("--launch-trace").arg(&trace);
        }
        assert!(cmd.output().unwrap().status.success());
        let ((bytes, demands), stdout) = launch_from_mount(&pkg, &dir, launch);
        let len = std::fs::metadata(&pkg).unwrap().len();
        if with_trace {
            assert_eq!(demands, 0, "demand fetches beyond the traced FB1");
            assert!(bytes < len / 2, "{bytes} of {len} moved");
        } else {
            assert!(demands > 0, "without FB1 the launch must demand blocks");
        }
        outputs.push(stdout);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(
        outputs[0].contains("5000") && outputs[0].contains("42"),
        "{}",
        outputs[0]
    );
}

/// kill -9 of `sft mount` leaves a stale mount ("transport endpoint is not
/// connected"): the next `sft mount` on the folder clears it, resumes the
/// cache (moves less than the package) and serves every file intact.
#[cfg(feature = "cli")]
#[test]
fn a_killed_mount_is_cleared_and_the_next_mount_resumes() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let bytes = pack(&files);
    let OnDisk {
        tmp: _tmp,
        pkg,
        cache,
        dir,
    } = on_disk(&bytes);
    let (mut child, _err) = sft_mount(
        &pkg,
        &dir,
        &[
            "--cache-dir".as_ref(),
            cache.as_os_str(),
            "--limit-rate".as_ref(),
            "512k".as_ref(),
        ],
    );
    // Wait until some blocks are durable (a bitmap checkpoint).
    let bitmap = cache.join("app.sft.partial.blocks");
    let t = std::time::Instant::now();
    while !bitmap.exists() {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "no checkpoint"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Used before the kill: the kernel has the root's attributes cached,
    // so `stat` of the dead mount may still answer.
    assert!(std::fs::read_dir(&dir).unwrap().count() > 0);
    assert!(std::fs::metadata(dir.join("bin/run.sh")).is_ok());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stale = std::fs::read_dir(&dir).unwrap_err();
    assert_eq!(stale.raw_os_error(), Some(107), "{stale}"); // ENOTCONN
    let mut child = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("mount")
        .arg(&pkg)
        .arg(&dir)
        .arg("--cache-dir")
        .arg(&cache)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let before = wait_line(&mut err, "mounted on");
    assert!(
        before.iter().any(|l| l.contains("cleared a stale mount")),
        "{before:?}"
    );
    for (path, data, _) in &files {
        assert_eq!(&std::fs::read(dir.join(path)).unwrap(), data, "{path}");
    }
    let status = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("unmount")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let (moved_bytes, _) = moved(&rest);
    assert!(
        moved_bytes < bytes.len() as u64,
        "resumed: moved {moved_bytes} of {}",
        bytes.len()
    );
}

/// A source that dies: reads of blocks not yet fetched fail with EIO once
/// the retry window has passed (never other bytes, never a hang), and
/// `sft mount` then exits non-zero, saying the stream failed.
#[cfg(feature = "cli")]
#[test]
fn a_killed_server_gives_eio_after_the_retry_window() {
    if !can_mount() {
        return;
    }
    let Some(mut nginx) = crate::http_client::Nginx::plain() else {
        return;
    };
    let files = tree();
    nginx.put("app.sft", &pack(&files));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let url = nginx.url("app.sft");
    let (mut child, mut err) = sft_mount(
        Path::new(&url),
        &dir,
        &[
            "--background".as_ref(),
            "none".as_ref(),
            "--retry-for".as_ref(),
            "2s".as_ref(),
        ],
    );
    assert_eq!(std::fs::read(dir.join("bin/run.sh")).unwrap(), files[0].1);
    nginx.kill();
    let t = std::time::Instant::now();
    let e = std::fs::read(dir.join("data/big.bin")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(5), "{e}"); // EIO
    // Not before the window: the stream retried the dead server first.
    assert!(t.elapsed() >= std::time::Duration::from_millis(1500));
    // The stream has failed: another block never fetched is EIO at once.
    assert_eq!(
        std::fs::read(dir.join("lib/app/core.py"))
            .unwrap_err()
            .raw_os_error(),
        Some(5)
    );
    let status = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("unmount")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(!status.success(), "exit 0 after the stream failed: {rest}");
    assert!(rest.contains("stream under the mount failed"), "{rest}");
    assert!(!mounted(&dir));
}

/// The machine's Python standard library as a package: every regular
/// file under `lib/pythonX.Y` but the test suite, site packages and
/// caches.
#[cfg(feature = "cli")]
fn python_package(out: &Path) -> Option<String> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .ok()?;
    let stdlib = PathBuf::from(String::from_utf8(o.stdout).ok()?.trim());
    let ver = stdlib.file_name()?.to_str()?.to_owned();
    let mut b = PackageBuilder::new(sft::WriteOptions::default().name("Python"));
    let skip = [
        "test",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "idlelib",
        "tkinter",
        "turtledemo",
    ];
    let mut stack = vec![stdlib.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if meta.is_dir() && !skip.contains(&name.as_str()) {
                stack.push(p);
            } else if meta.is_file() {
                let rel = p
                    .strip_prefix(&stdlib)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                // Names the package format refuses are not needed here.
                let _ = b.add_file(&format!("lib/{ver}/{rel}"), &p);
            }
        }
    }
    b.write_to_path(out).unwrap();
    Some(ver)
}

/// Run a script importing several standard modules with `PYTHONHOME=home`;
/// its output, with `home` replaced by `HOME`.
#[cfg(feature = "cli")]
fn run_python(home: &Path) -> String {
    let script = r#"
import json, re, collections, decimal, fractions, textwrap, datetime, hashlib, statistics, pathlib, sys
c = collections.Counter(re.findall(r"\w+", "the quick brown fox jumps over the lazy dog the end"))
d = decimal.Decimal(1) / decimal.Decimal(7)
print(json.dumps({"top": c.most_common(2), "seventh": str(d), "f": str(fractions.Fraction(3, 12))}))
print(textwrap.fill("streamed " * 12, 30))
print(datetime.date(2026, 12, 5).isoformat(), statistics.mean([1, 2, 3, 4]))
print(hashlib.sha256(b"sft").hexdigest())
print(pathlib.Path(json.__file__).relative_to(sys.prefix))
"#;
    let out = Command::new("python3")
        .args(["-S", "-c", script])
        .env("PYTHONHOME", home)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python3 with PYTHONHOME={}: {}",
        home.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(&home.display().to_string(), "HOME")
}

/// A real interpreter from a mount: the machine's Python runs a script
/// importing a dozen standard modules (pure Python and compiled
/// extensions) with its standard library streamed from a mount, the
/// package served by nginx and by our RTSP server; its output is exactly
/// that of the same interpreter on the extracted tree.
#[cfg(all(feature = "cli", feature = "rtsp-server"))]
#[test]
fn python_runs_its_standard_library_from_a_mount_over_http_and_rtsp() {
    if !can_mount() || !crate::common::have("python3", "--version") {
        return;
    }
    let Some(nginx) = crate::http_client::Nginx::plain() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let content = tmp.path().join("content");
    std::fs::create_dir(&content).unwrap();
    let pkg = content.join("python.sft");
    let Some(ver) = python_package(&pkg) else {
        panic!("python3 did not say where its standard library is");
    };
    // The reference: the same interpreter on the extracted tree.
    let tree = tmp.path().join("tree");
    let out = Command::new(env!("CARGO_BIN_EXE_sft"))
        .arg("extract")
        .arg(&pkg)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = run_python(&tree);
    assert!(
        expected.contains(&format!("lib/{ver}/json/__init__.py")),
        "{expected}"
    );
    nginx.put("python.sft", &std::fs::read(&pkg).unwrap());
    let rtsp = sft::serve::rtsp::Server::bind(
        "127.0.0.1:0",
        sft::serve::rtsp::ServerConfig::new(&content),
    )
    .unwrap()
    .spawn()
    .unwrap();
    let urls = [
        nginx.url("python.sft"),
        format!("rtsp://{}/python.sft", rtsp.local_addr()),
    ];
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    for url in &urls {
        let (mut child, _err) = sft_mount(Path::new(url), &dir, &[]);
        assert_eq!(run_python(&dir), expected, "{url}");
        let status = Command::new(env!("CARGO_BIN_EXE_sft"))
            .arg("unmount")
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(child.wait().unwrap().success(), "{url}");
    }
    rtsp.shutdown().unwrap();
}

/// A source whose first delivery of one byte is damaged (on the wire),
/// and that counts how often that byte was asked for.
struct FlipOnce {
    data: Vec<u8>,
    at: u64,
    asked: std::sync::atomic::AtomicUsize,
}

impl RangeSource for FlipOnce {
    fn len(&self) -> Result<u64, sft::io::TransportError> {
        Ok(self.data.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, sft::io::TransportError> {
        self.data.read_at(offset, buf)
    }
    fn read_ranges(
        &self,
        ranges: &[std::ops::Range<u64>],
        sink: &mut sft::io::ChunkSink<'_>,
    ) -> Result<(), sft::io::TransportError> {
        use std::sync::atomic::Ordering;
        for r in ranges {
            let mut bytes = self.data[r.start as usize..r.end as usize].to_vec();
            if r.contains(&self.at) && self.asked.fetch_add(1, Ordering::SeqCst) == 0 {
                bytes[(self.at - r.start) as usize] ^= 0x40;
            }
            if sink(r.start, &bytes).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// A block damaged on the wire once is fetched again, and the reader gets
/// the right bytes: the damaged copy never reaches it.
#[test]
fn a_block_damaged_on_the_wire_is_fetched_again_never_returned() {
    if !can_mount() {
        return;
    }
    let files = tree();
    let pkg = pack(&files);
    let info = first_block(&pkg, "data/big.bin");
    let src = Arc::new(FlipOnce {
        data: pkg.clone(),
        at: info.stored_offset + 7,
        asked: Default::default(),
    });
    let m = mount_source(
        Arc::clone(&src) as Arc<dyn RangeSource>,
        StreamingOptions::default(),
    );
    assert_eq!(
        std::fs::read(m.dir.join("data/big.bin")).unwrap(),
        files[3].1
    );
    assert!(
        src.asked.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the damaged block was not fetched again"
    );
    m.session.unmount().unwrap();
}
