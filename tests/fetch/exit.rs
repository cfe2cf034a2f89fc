//! `sft fetch` exits 0 only when OUT exists and verifies: an empty,
//! truncated or not-a-package source, a directory, and a source replaced
//! mid-fetch either fail clearly (naming the source once, no OUT, no
//! "run again" where a rerun cannot help) or end with the new content
//! verified. Sources: a path, `file://`, and `http://` from `sft serve`.
//! Also: disk full mid-fetch keeps what was written for the resume, and
//! `sft pack -o` into a missing directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common::{noise, text};

const SFT: &str = env!("CARGO_BIN_EXE_sft");

fn package(seed: u64) -> Vec<u8> {
    sized(seed, 600_000)
}

/// A package with `len` bytes of noise in `data/a.bin`.
fn sized(seed: u64, len: usize) -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K4)
            .name("Exit"),
    );
    b.add_bytes("app.exe", noise(seed, 200_000)).unwrap();
    b.add_bytes("data/a.bin", noise(seed + 1, len)).unwrap();
    b.add_bytes("data/b.txt", text(200_000)).unwrap();
    b.launch_list(parse_launch_list("app.exe\n").unwrap());
    b.write_to_vec().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `sft serve --http 127.0.0.1:0 --content ROOT`, killed on drop.
pub(crate) struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Serve {
    pub(crate) fn start(root: &Path, extra: &[&str]) -> Serve {
        Serve::start_on("127.0.0.1:0", root, extra)
    }

    /// As [`Serve::start`], listening on `addr`.
    pub(crate) fn start_on(addr: &str, root: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(SFT)
            .args(["serve", "--http", addr, "--content"])
            .arg(root)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Nothing named OUT or OUT.partial* is left in `dir`.
fn no_output(dir: &Path, out: &Path) {
    let name = out.file_name().unwrap().to_str().unwrap().to_owned();
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A failed command: status 1, the source's file name `name` exactly once
/// in the one error line, no launch-ready claim, and the "run again"
/// hint only if `hint`.
fn fails_naming(o: &Output, name: &str, hint: bool) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
    assert!(err.starts_with("sft: error: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(err.matches(name).count(), 1, "`{name}` once: {err}");
    assert!(!stdout(o).contains("launch-ready only"), "{}", stdout(o));
    assert_eq!(err.contains("run again"), hint, "{err}");
    err
}

fn fetch(src: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(SFT)
        .args(["fetch", src, "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn empty_truncated_and_not_a_package_sources_fail_without_output() {
    let pkg = package(1);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    std::fs::create_dir_all(root.join("dir.sft")).unwrap();
    let header = sft::format::Header::parse(&pkg).unwrap();
    let cases: [(&str, Vec<u8>); 5] = [
        ("empty.sft", Vec::new()),
        ("header-only.sft", pkg[..100].to_vec()),
        (
            "prologue-only.sft",
            pkg[..header.prologue_len as usize].to_vec(),
        ),
        ("short.sft", pkg[..pkg.len() - 5000].to_vec()),
        ("junk.sft", noise(9, 50_000)),
    ];
    for (name, bytes) in &cases {
        std::fs::write(root.join(name), bytes).unwrap();
    }
    let serve = Serve::start(&root, &["--no-access-log"]);
    let outs = dir.path().join("outs");
    std::fs::create_dir_all(&outs).unwrap();
    let mut n = 0;
    for (name, _) in &cases {
        let path = root.join(name);
        for src in [
            path.display().to_string(),
            format!("file://{}", path.display()),
            format!("{}/{name}", serve.base),
        ] {
            for extra in [&[][..], &["--launch-only"][..]] {
                n += 1;
                let out = outs.join(format!("out{n}.sft"));
                let o = fetch(&src, &out, extra);
                let err = fails_naming(&o, name, false);
                assert!(
                    !err.contains("i/o error") || !err.contains("attempts"),
                    "not retried: {err}"
                );
                no_output(&outs, &out);
            }
        }
    }
    // `sft verify URL` and `sft info URL` of the same: status 1 too.
    for (name, _) in &cases {
        for cmd in ["verify", "info"] {
            let o = Command::new(SFT)
                .args([cmd, &format!("{}/{name}", serve.base)])
                .output()
                .unwrap();
            fails_naming(&o, name, false);
        }
    }
    // A directory: said so at once, not retried.
    for src in [
        root.join("dir.sft").display().to_string(),
        format!("file://{}", root.join("dir.sft").display()),
    ] {
        let out = outs.join("dir-out.sft");
        let t = Instant::now();
        let o = fetch(&src, &out, &[]);
        let err = fails_naming(&o, "dir.sft", false);
        assert!(err.contains("is a directory"), "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
        no_output(&outs, &out);
    }
    // Every command that opens a package says the same of a directory.
    for cmd in ["info", "ls", "verify"] {
        for extra in [&[][..], &["--no-mmap"][..]] {
            let o = Command::new(SFT)
                .args(extra)
                .arg(cmd)
                .arg(root.join("dir.sft"))
                .output()
                .unwrap();
            let err = fails_naming(&o, "dir.sft", false);
            assert!(err.contains("is a directory"), "{cmd}: {err}");
        }
    }
}

/// Poll `f` every 10 ms until it holds, for at most 60 s.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(60), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The fetch has written some blocks: its bitmap exists and the data file
/// has its final size.
fn started(out: &Path) -> bool {
    let mut bitmap = out.as_os_str().to_owned();
    bitmap.push(".partial.blocks");
    PathBuf::from(bitmap).exists()
}

#[test]
fn a_source_overwritten_in_place_mid_fetch_ends_verified_or_fails() {
    let old = package(1);
    let new = package(50);
    let shorter = sized(60, 300_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    std::fs::create_dir_all(&root).unwrap();
    let serve = Serve::start(&root, &["--no-access-log"]);
    let src = root.join("app.sft");
    // (how the file is replaced, over which source)
    for (replace, over_http) in [
        ("new", true),
        ("new", false),
        ("shorter", false),
        ("empty", true),
        ("empty", false),
    ] {
        std::fs::write(&src, &old).unwrap();
        let out = dir.path().join(format!("out-{replace}-{over_http}.sft"));
        let spec = if over_http {
            format!("{}/app.sft", serve.base)
        } else {
            src.display().to_string()
        };
        // ~1 MB at 512 KiB/s: about 2 s, replaced after the first blocks.
        let child = Command::new(SFT)
            .args(["fetch", &spec, "-o"])
            .arg(&out)
            .args(["--limit-rate", "512k"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until("the first blocks", || started(&out));
        // `cp new old`: truncated in place, then written.
        let bytes: &[u8] = match replace {
            "new" => &new,
            "shorter" => &shorter,
            _ => &[],
        };
        std::fs::write(&src, bytes).unwrap();
        let o = child.wait_with_output().unwrap();
        let what = format!("{replace} over {}", if over_http { "http" } else { "path" });
        if o.status.success() {
            // Only with OUT, complete and verified: the new version (or,
            // read from a file opened before the change, the old one).
            let got = std::fs::read(&out)
                .unwrap_or_else(|e| panic!("{what}: exit 0 without OUT ({e}): {}", stdout(&o)));
            assert!(
                got == new || got == old || got == shorter,
                "{what}: mixed content"
            );
            sft::Package::parse(&got).unwrap().verify().unwrap();
            assert!(stdout(&o).contains("complete: "), "{what}: {}", stdout(&o));
            assert_ne!(replace, "empty", "{what}: an empty source cannot succeed");
        } else {
            let err = stderr(&o);
            assert_eq!(o.status.code(), Some(1), "{what}: {err}");
            assert!(
                err.starts_with("sft: error: ") && err.contains("app.sft"),
                "{what}: {err}"
            );
            assert!(!out.exists(), "{what}");
        }
        if replace != "empty" {
            // The change is seen (HTTP validators; a local file cut short,
            // or blocks failing under a header that moved) and the fetch
            // starts over after a back-off: it ends with the new version.
            let want: &[u8] = if replace == "new" { &new } else { &shorter };
            assert!(o.status.success(), "{what}: {}", stderr(&o));
            assert!(
                std::fs::read(&out).unwrap() == want,
                "{what}: not the new version"
            );
        }
        if over_http && replace == "empty" {
            let err = stderr(&o);
            assert!(err.contains("changing"), "{what}: {err}");
        }
    }
}

/// `mount -t tmpfs -o size=SIZE tmpfs DIR`, unmounted on drop; `None`
/// (after a loud notice) when not permitted, a failure when
/// `SFT_REQUIRE_SERVERS=1`.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("SFT_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "cannot mount a tmpfs but SFT_REQUIRE_SERVERS=1 (run as root)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root): disk-full resume not tested");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn transferred(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("transferred: ")?;
            rest.split('(').nth(1)?.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no transferred line in {stdout}"))
}

/// Body bytes `sft serve` logged as sent (common log format plus the
/// duration: `... "GET /x HTTP/1.1" 206 SENT SECS`).
fn served(log: &Path) -> u64 {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.rsplit(' ').nth(1)?.parse::<u64>().ok())
        .sum()
}

#[test]
fn disk_full_mid_fetch_keeps_the_written_blocks_for_the_resume() {
    let pkg = package(3);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    std::fs::create_dir_all(&root).unwrap();
    let src = root.join("src.sft");
    std::fs::write(&src, &pkg).unwrap();
    let log = dir.path().join("access.log");
    let serve = Serve::start(&root, &["--access-log", log.to_str().unwrap()]);
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "512k") else {
        return;
    };
    let out = fs.0.join("app.sft");
    // The package is bigger than the file system: the fetch fills it.
    assert!(pkg.len() > 700_000);
    let url = format!("{}/src.sft", serve.base);
    for (spec, extra) in [
        (src.to_str().unwrap(), &[][..]),
        (src.to_str().unwrap(), &["--no-fsync"][..]),
        (url.as_str(), &[][..]),
    ] {
        let o = fetch(spec, &out, extra);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("No space left on device"), "{err}");
        assert!(err.contains("run again to resume"), "{err}");
        let left: Vec<String> = std::fs::read_dir(&fs.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !left.iter().any(|n| n.ends_with(".tmp")),
            "debris: {left:?}"
        );
        assert!(!out.exists());
        // What was written is recorded: the bitmap marks blocks present.
        let cache = sft::fetch::cache::Cache::open(
            sft::fetch::cache::CachePaths::for_output(&out, None),
            sft::fetch::cache::CacheOptions::default(),
        )
        .unwrap();
        let (blocks, bytes) = cache.resumed();
        drop(cache);
        assert!(
            blocks > 20 && bytes > 200_000,
            "{spec}: {blocks} blocks, {bytes} bytes kept"
        );

        // Free space: the same files where there is room.
        let kept = dir.path().join("kept");
        std::fs::create_dir_all(&kept).unwrap();
        for e in std::fs::read_dir(&fs.0).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), kept.join(e.file_name())).unwrap();
        }
        let out2 = kept.join("app.sft");
        let before = served(&log);
        let o = fetch(spec, &out2, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        let s = stdout(&o);
        assert!(s.contains("resumed: "), "{s}");
        // Only the missing blocks (and the 128-byte identity check).
        let missing = pkg.len() as u64 - bytes;
        let sent = transferred(&s);
        assert!(
            sent <= missing + 128,
            "{spec}: transferred {sent}, {missing} missing"
        );
        if spec == url {
            // Counted by the server too (its log line follows the body).
            wait_until("the access log", || served(&log) - before >= sent);
            let by_server = served(&log) - before;
            assert!(
                by_server <= missing + 128,
                "{spec}: served {by_server}, {missing} missing"
            );
        }
        assert!(std::fs::read(&out2).unwrap() == pkg);
        for e in std::fs::read_dir(&fs.0).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        std::fs::remove_dir_all(&kept).unwrap();
    }
}

#[test]
fn pack_creates_a_missing_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello").unwrap();
    let out = dir.path().join("new/deeper/x.sft");
    let o = Command::new(SFT)
        .arg("pack")
        .arg(&tree)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    sft::Package::parse(&std::fs::read(&out).unwrap())
        .unwrap()
        .verify()
        .unwrap();
}

/// Read `child`'s stderr until a line contains `needle`; the rest is
/// drained on a thread (returned with what was read so far).
fn stderr_until(child: &mut Child, needle: &str) -> (String, std::thread::JoinHandle<String>) {
    let mut r = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            panic!("stderr ended before `{needle}`: {seen}");
        }
        seen.push_str(&line);
        if line.contains(needle) {
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut r, &mut rest).unwrap();
        rest
    });
    (seen, rest)
}

/// The server dies mid-fetch and comes back on the same port: the fetch
/// retries (a warning per pause) and finishes with the exact package.
#[test]
fn a_fetch_outlives_a_server_restart() {
    let pkg = sized(41, 1_500_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("src.sft"), &pkg).unwrap();
    let serve = Serve::start(&root, &[]);
    let addr = serve.base.strip_prefix("http://").unwrap().to_owned();
    let url = format!("{}/src.sft", serve.base);
    let out = dir.path().join("out.sft");
    let mut child = Command::new(SFT)
        .args(["fetch", &url, "-o"])
        .arg(&out)
        .args(["--limit-rate", "300k", "--retry-for", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the server once blocks have arrived (the cache's bitmap exists).
    let bitmap = sft::fetch::cache::CachePaths::for_output(&out, None).bitmap;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bitmap.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5)); // polling, not synchronisation
    }
    assert!(bitmap.exists(), "the fetch made no progress");
    drop(serve);
    // The fetch notices and backs off; then the server comes back.
    let (warned, rest) = stderr_until(&mut child, "retrying in");
    assert!(warned.contains("--retry-for"), "{warned}");
    let _serve = Serve::start_on(&addr, &root, &[]);
    let status = child.wait().unwrap();
    let rest = rest.join().unwrap();
    assert!(status.success(), "{warned}{rest}");
    assert!(std::fs::read(&out).unwrap() == pkg);
}

/// Nothing listens: the fetch retries for its window, then fails naming
/// the window; a missing package on a live server fails at once.
#[test]
fn a_server_that_stays_down_fails_after_the_retry_window() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = dir.path().join("out.sft");
    let url = format!("http://127.0.0.1:{port}/src.sft");
    let started = Instant::now();
    let o = fetch(&url, &out, &["--retry-for", "1500ms"]);
    let took = started.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("retrying in"), "{err}");
    assert!(err.contains("the retry window is 1.5 s"), "{err}");
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(!out.exists());

    let root = dir.path().join("content");
    std::fs::create_dir_all(&root).unwrap();
    let serve = Serve::start(&root, &[]);
    let started = Instant::now();
    let o = fetch(
        &format!("{}/missing.sft", serve.base),
        &out,
        &["--retry-for", "60s"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("retrying"), "{}", stderr(&o));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// `sft cat URL PATH` and `sft extract URL DIR`: any source, the same
/// bytes as from the local file; secrets in the URL never printed; no
/// temporary files left.
#[test]
fn cat_and_extract_read_a_url() {
    let pkg = package(7);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("content");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("src.sft"), &pkg).unwrap();
    let serve = Serve::start(&root, &[]);
    let url = format!("{}/src.sft", serve.base);
    let parsed = sft::Package::parse(&pkg).unwrap();
    let expected = |path: &str| parsed.read_file(&parsed.entry(path).unwrap()).unwrap();

    let o = Command::new(SFT)
        .args(["cat", &url, "data/b.txt"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout == expected("data/b.txt"));

    let out = dir.path().join("x");
    let o = Command::new(SFT)
        .args(["extract", &url])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for path in ["app.exe", "data/a.bin", "data/b.txt"] {
        assert!(
            std::fs::read(out.join(path)).unwrap() == expected(path),
            "{path}"
        );
    }
    let debris: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".sft-"))
        .collect();
    assert!(debris.is_empty(), "{debris:?}");

    // A missing package and a missing file: exit 1, the secret redacted.
    let secret = url.replace("http://", "http://user:Pl4nted@");
    for args in [
        vec!["cat", &secret, "nope.txt"],
        vec!["cat", &secret, "data"],
        vec!["extract", "--retry-for", "0"],
    ] {
        let mut c = Command::new(SFT);
        c.args(&args);
        if args[0] == "extract" {
            c.arg(secret.replace("src.sft", "missing.sft"))
                .arg(dir.path().join("y"));
        }
        let o = c.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("Pl4nted"), "{err}");
    }
    assert!(!dir.path().join("y").exists());
}
