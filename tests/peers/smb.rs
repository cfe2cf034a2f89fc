//! The SMB transport (`SmbSource`) against a real Samba smbd started by
//! each test on 127.0.0.1, on a free high port, with a private config and
//! password database in a temporary directory (killed on drop).
//!
//! A missing `smbd` skips the tests with a loud `SKIPPED:` line on
//! stderr, unless `SFT_REQUIRE_SERVERS=1`, which makes it a failure (CI).
#![cfg(feature = "smb")]
// One-range slices are intended: `read_ranges` takes a list.
#![allow(clippy::single_range_in_vec_init)]

use std::net::{TcpListener, TcpStream};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sft::fetch::{FetchOptions, fetch};
use sft::io::{ChunkSink, RangeSource, drive};
use sft::net::smb::{SmbOptions, SmbSource, is_smb_spec};
use sft::stream::{SessionConfig, StreamSession, TransportError, TransportErrorKind};
use sft::{Error, ErrorKind};

const USER: &str = "sftsmbtest";
const PASSWORD: &str = "Passw0rd!";

// ---------------------------------------------------------------- helpers

use crate::common::bytes as noise;

/// A package of a few MiB: FB1 = app.exe + lib.dll (launch list), FB2 the rest.
fn package() -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K16)
            .name("Smb")
            .created(1_700_000_000, 0),
    );
    b.add_bytes("app.exe", noise(1, 400_000)).unwrap();
    b.add_bytes("lib.dll", noise(2, 200_000)).unwrap();
    b.add_bytes("data/big.bin", noise(3, 2_500_000)).unwrap();
    b.launch_list(parse_launch_list("app.exe\nlib.dll\n").unwrap());
    b.write_to_vec().unwrap()
}

/// (prologue length, FB1 stored length).
fn layout(pkg: &[u8]) -> (u64, u64) {
    let h = sft::format::Header::parse(pkg).unwrap();
    (h.prologue_len, h.fb1_stored_len)
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    // A high port: bind, read, release.
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn opts() -> SmbOptions {
    SmbOptions::default()
        .password(PASSWORD)
        .env_credentials(false)
        .timeout(Duration::from_secs(10))
        .max_attempts(3)
        .retry_backoff(Duration::from_millis(50))
}

/// Serialises `useradd`/`smbpasswd` across the tests of this binary.
static USERS: Mutex<()> = Mutex::new(());

/// An smbd started for one test, on a free loopback port, killed on drop.
struct Samba {
    dir: tempfile::TempDir,
    port: u16,
    smbd: PathBuf,
    child: Option<Child>,
}

impl Samba {
    fn start() -> Option<Samba> {
        let Some(smbd) = find_binary("smbd") else {
            if std::env::var("SFT_REQUIRE_SERVERS").as_deref() == Ok("1") {
                panic!("smbd not installed but SFT_REQUIRE_SERVERS=1 (apt-get install samba)");
            }
            eprintln!("SKIPPED: smbd not installed (apt-get install -y samba smbclient)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // smbd reads the share as the SMB user: the tree must be traversable.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in [
            "lock", "state", "cache", "pid", "private", "ncalrpc", "log", "share", "secret",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
            std::fs::set_permissions(d.join(sub), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let port = free_port();
        let d = d.display();
        let conf = format!(
            "[global]
   server role = standalone server
   interfaces = 127.0.0.1
   bind interfaces only = yes
   smb ports = {port}
   disable netbios = yes
   lock directory = {d}/lock
   state directory = {d}/state
   cache directory = {d}/cache
   pid directory = {d}/pid
   private dir = {d}/private
   ncalrpc dir = {d}/ncalrpc
   binddns dir = {d}/private
   log file = {d}/log/log.%m
   logging = file
   passdb backend = tdbsam:{d}/private/passdb.tdb
   map to guest = never
   load printers = no
   printing = bsd
   printcap name = /dev/null
   disable spoolss = yes
   usershare path =
[share]
   path = {d}/share
   read only = yes
   valid users = {USER}
[secret]
   path = {d}/secret
   read only = yes
   valid users = nobodyelse
"
        );
        std::fs::write(dir.path().join("smb.conf"), conf).unwrap();
        {
            let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
            let exists = Command::new("id")
                .arg(USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !exists {
                let st = Command::new("useradd")
                    .args(["-M", "-s", "/usr/sbin/nologin", USER])
                    .status()
                    .unwrap();
                assert!(st.success(), "useradd {USER} failed");
            }
            let mut p = Command::new("smbpasswd")
                .arg("-c")
                .arg(dir.path().join("smb.conf"))
                .args(["-s", "-a", USER])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            use std::io::Write;
            p.stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n{PASSWORD}\n").as_bytes())
                .unwrap();
            assert!(p.wait().unwrap().success(), "smbpasswd failed");
        }
        let mut s = Samba {
            dir,
            port,
            smbd,
            child: None,
        };
        s.spawn();
        Some(s)
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let out = std::fs::File::create(d.join("smbd.out")).unwrap();
        let child = Command::new(&self.smbd)
            .args(["--foreground", "--no-process-group", "--debug-stdout"])
            .arg(format!("--configfile={}", d.join("smb.conf").display()))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "smbd exited with {st}: {}",
                    std::fs::read_to_string(d.join("smbd.out")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("smbd did not listen on {}", self.port);
    }

    /// SIGKILL smbd and the per-connection children it forked.
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        for kid in children_of(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &kid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = child.kill();
        let _ = child.wait();
        // Wait until the port is closed.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL the per-connection children only: clients see their
    /// connection drop, the server stays up.
    fn drop_connections(&self) {
        if let Some(child) = &self.child {
            for kid in children_of(child.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &kid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn put(&self, rel: &str, bytes: &[u8], mode: u32) {
        let p = self.dir.path().join(rel);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn spec(&self, share: &str, name: &str) -> String {
        format!("smb://{USER}@127.0.0.1:{}/{share}/{name}", self.port)
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ..."; comm may hold spaces: split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(n);
        }
    }
    out
}

/// Records the ranges of every call; runs `hook` with the call number
/// before each `read_ranges`.
struct Recording<'a> {
    inner: &'a dyn RangeSource,
    calls: Mutex<Vec<Vec<Range<u64>>>>,
    n: AtomicUsize,
    hook: Box<dyn Fn(usize) + Send + Sync + 'a>,
}

impl<'a> Recording<'a> {
    fn new(inner: &'a dyn RangeSource) -> Self {
        Self::with_hook(inner, |_| {})
    }
    fn with_hook(inner: &'a dyn RangeSource, hook: impl Fn(usize) + Send + Sync + 'a) -> Self {
        Recording {
            inner,
            calls: Mutex::new(Vec::new()),
            n: AtomicUsize::new(0),
            hook: Box::new(hook),
        }
    }
}

impl RangeSource for Recording<'_> {
    fn len(&self) -> Result<u64, TransportError> {
        self.inner.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.calls
            .lock()
            .unwrap()
            .push(vec![offset..offset + buf.len() as u64]);
        self.inner.read_at(offset, buf)
    }
    fn read_ranges(
        &self,
        ranges: &[Range<u64>],
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), TransportError> {
        (self.hook)(self.n.fetch_add(1, Ordering::Relaxed));
        self.calls.lock().unwrap().push(ranges.to_vec());
        self.inner.read_ranges(ranges, sink)
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}

fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".partial"))
        .collect()
}

fn transport_kind(e: &Error) -> Option<TransportErrorKind> {
    match e {
        Error::Transport(t) => Some(t.kind()),
        _ => None,
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn specs_are_recognised() {
    assert!(is_smb_spec("smb://h/s/a.sft"));
    assert!(is_smb_spec(r"\\h\s\a.sft"));
    assert!(is_smb_spec(r"file://\\h\s\a.sft"));
    assert!(!is_smb_spec("http://h/s/a.sft"));
    let e = SmbSource::open("smb://h/only-share", &opts()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[test]
fn fetched_package_is_identical_and_fb1_comes_first() {
    let Some(smb) = Samba::start() else { return };
    let pkg = package();
    smb.put("share/app.sft", &pkg, 0o644);
    // Small reads and several in flight, to exercise the parallel path.
    let src = SmbSource::open(&smb.spec("share", "app.sft"), &opts().read_size(64 * 1024)).unwrap();
    assert_eq!(src.len().unwrap(), pkg.len() as u64);
    assert_eq!(
        src.endpoint(),
        format!("smb://127.0.0.1:{}/share/app.sft", smb.port)
    );
    assert!(!format!("{src:?}").contains(PASSWORD));
    let rec = Recording::new(&src);
    let config = SessionConfig::default()
        .max_request_bytes(256 << 10)
        .max_in_flight_requests(1);
    let mut session = StreamSession::new(config);
    let mut copy = Vec::new();
    let report = drive::drive(&mut session, &rec, &mut copy).unwrap();
    assert!(report.complete);
    assert!(copy == pkg, "fetched bytes differ");

    let (prologue, fb1) = layout(&pkg);
    let fb1_end = prologue + fb1;
    let asked: Vec<Range<u64>> = rec
        .calls
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .cloned()
        .collect();
    let first_fb2 = asked.iter().position(|r| r.end > fb1_end).unwrap();
    let last_fb1 = asked
        .iter()
        .rposition(|r| r.start < fb1_end && r.end > prologue)
        .unwrap();
    assert!(last_fb1 < first_fb2, "FB2 before the end of FB1: {asked:?}");
    let st = src.stats();
    assert_eq!(st.connects, 1, "{st:?}");
    assert!(st.bytes >= pkg.len() as u64, "{st:?}");

    // The other spec forms reach the same file; the whole file in one
    // call with 1 MiB reads is identical too.
    for spec in [
        String::from(r"\\127.0.0.1\share\app.sft"),
        String::from(r"file://\\127.0.0.1\share\app.sft"),
    ] {
        let o = opts().port(smb.port).user(USER);
        let s = SmbSource::open(&spec, &o).unwrap();
        let mut all = vec![0u8; pkg.len()];
        let mut seen = 0usize;
        s.read_ranges(&[0..pkg.len() as u64], &mut |at, d| {
            all[at as usize..at as usize + d.len()].copy_from_slice(d);
            seen += d.len();
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, pkg.len());
        assert!(all == pkg, "{spec}: bytes differ");
    }
}

#[test]
fn denied_share_or_file_is_permission_denied_naming_share_and_path() {
    let Some(smb) = Samba::start() else { return };
    let pkg = package();
    smb.put("secret/app.sft", &pkg, 0o644);
    // A root-owned 0600 file: smbd opens it as the SMB user.
    smb.put("share/locked.sft", &pkg, 0o600);

    // Denied by the share's ACL (`valid users`), at tree connect.
    let e = SmbSource::open(&smb.spec("secret", "app.sft"), &opts()).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::PermissionDenied),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("secret") && msg.contains("app.sft"), "{msg}");
    assert!(msg.contains("access denied"), "{msg}");
    assert!(!msg.contains(PASSWORD), "{msg}");

    // Denied at open time, through fetch: nothing is left in the cache.
    let e = SmbSource::open(&smb.spec("share", "locked.sft"), &opts()).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::PermissionDenied),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("share") && msg.contains("locked.sft"), "{msg}");

    // Through fetch: denied at reconnection.
    let (e, out_dir) = denied_mid_fetch(&smb, &pkg);
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::PermissionDenied),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("share") && msg.contains("later.sft"), "{msg}");
    assert!(!out_dir.path().join("later.sft").exists());
}

/// A source opened while its file was readable, whose connection then
/// drops and whose reconnection is denied (the file is now 0600), fetched
/// with `fetch`: returns the error and the output directory.
fn denied_mid_fetch(smb: &Samba, pkg: &[u8]) -> (Error, tempfile::TempDir) {
    smb.put("share/later.sft", pkg, 0o644);
    let src = SmbSource::open(&smb.spec("share", "later.sft"), &opts()).unwrap();
    let path = smb.dir.path().join("share/later.sft");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    smb.drop_connections();
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("later.sft");
    let e = fetch(&src, &out, FetchOptions::default()).unwrap_err();
    (e, out_dir)
}

#[test]
fn denied_fetch_leaves_nothing_in_the_cache() {
    let Some(smb) = Samba::start() else { return };
    let (e, out_dir) = denied_mid_fetch(&smb, &package());
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::PermissionDenied),
        "{e}"
    );
    let left = partial_files(out_dir.path());
    assert!(left.is_empty(), "left in the cache: {left:?}");
}

#[test]
fn missing_file_and_wrong_password() {
    let Some(smb) = Samba::start() else { return };
    let e = SmbSource::open(&smb.spec("share", "nope.sft"), &opts()).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::NotFound),
        "{e}"
    );
    assert!(e.to_string().contains("nope.sft"), "{e}");

    let wrong = "Wr0ng-pass";
    let started = Instant::now();
    let e = SmbSource::open(&smb.spec("share", "app.sft"), &opts().password(wrong)).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::Authentication),
        "{e}"
    );
    // Not retried: an authentication failure is final.
    assert!(started.elapsed() < Duration::from_secs(5));
    let msg = format!("{e} {e:?}");
    assert!(!msg.contains(wrong), "{msg}");
    assert!(msg.contains("authentication failed"), "{msg}");
}

#[test]
fn smbd_killed_mid_stream_then_fetch_resumes_only_what_was_missing() {
    let Some(smb) = Samba::start() else { return };
    let pkg = package();
    smb.put("share/app.sft", &pkg, 0o644);
    let smb = Arc::new(Mutex::new(smb));
    let spec = smb.lock().unwrap().spec("share", "app.sft");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("app.sft");
    let small = SessionConfig::default()
        .max_request_bytes(64 * 1024)
        .fb1_request_bytes(64 * 1024)
        .max_in_flight_requests(1);

    // First run: smbd dies after a few requests; the fetch fails. (A read
    // in flight when the server dies is noticed only at the request
    // timeout: the `smb` crate does not fail pending requests when the
    // socket closes. Hence a short one here.)
    let src = SmbSource::open(&spec, &opts().timeout(Duration::from_secs(2))).unwrap();
    let killer = Arc::clone(&smb);
    let rec = Recording::with_hook(&src, move |n| {
        if n == 6 {
            killer.lock().unwrap().kill();
        }
    });
    // A short retry window: smbd stays down.
    let e = fetch(
        &rec,
        &out,
        FetchOptions::default()
            .session(small)
            .retry_for(Duration::from_millis(500)),
    )
    .unwrap_err();
    assert!(
        matches!(
            transport_kind(&e),
            Some(TransportErrorKind::ConnectionLost | TransportErrorKind::Io)
        ),
        "{e}"
    );
    assert!(src.stats().connects == 1);
    assert!(!out.exists());
    assert!(!partial_files(out_dir.path()).is_empty(), "no cache kept");
    drop(rec);

    // The same source reconnects once smbd is back.
    smb.lock().unwrap().spawn();
    let mut buf = [0u8; 4096];
    src.read_exact_at(100_000, &mut buf).unwrap();
    assert_eq!(buf[..], pkg[100_000..104_096]);
    assert_eq!(src.stats().connects, 2);

    // Second run resumes from the cache with only the missing blocks.
    let r = fetch(&src, &out, FetchOptions::default().session(small)).unwrap();
    assert!(r.complete);
    assert!(std::fs::read(&out).unwrap() == pkg, "resumed copy differs");
    assert!(r.blocks_resumed > 0, "{r:?}");
    let (prologue, _) = layout(&pkg);
    let missing = pkg.len() as u64 - prologue - r.bytes_resumed;
    assert_eq!(r.bytes_transferred, 128 + missing, "{r:?}");
    assert!(r.bytes_transferred < pkg.len() as u64, "{r:?}");
    assert!(partial_files(out_dir.path()).is_empty());
}

/// Reads of 8 MiB, several in flight: Samba answers them with interim
/// `STATUS_PENDING` responses that carry the credits (the vendored `smb`
/// crate's fix; before it the second 8 MiB read waited forever).
#[test]
fn large_reads_in_flight_complete() {
    let Some(smb) = Samba::start() else { return };
    let data = noise(11, 40 << 20);
    smb.put("share/big.bin", &data, 0o644);
    let spec = smb.spec("share", "big.bin");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let src =
            SmbSource::open(&spec, &opts().read_size(8 << 20).max_reads_in_flight(4)).unwrap();
        assert_eq!(src.read_size(), 8 << 20);
        let mut copy = vec![0u8; 40 << 20];
        let mut seen = 0usize;
        let r = src.read_ranges(&[0..40 << 20], &mut |at, d| {
            copy[at as usize..at as usize + d.len()].copy_from_slice(d);
            seen += d.len();
            std::ops::ControlFlow::Continue(())
        });
        // Twice: the credits of the first round must have come back.
        let again = src.read_ranges(&[0..40 << 20], &mut |_, _| {
            std::ops::ControlFlow::Continue(())
        });
        let _ = tx.send((
            r.map_err(|e| e.to_string()),
            again.map_err(|e| e.to_string()),
            seen,
            copy,
        ));
    });
    let (r, again, seen, copy) = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("8 MiB reads did not complete in 120 s (credits lost?)");
    r.unwrap();
    again.unwrap();
    assert_eq!(seen, data.len());
    assert!(copy == data, "bytes differ");
}

/// `sft::fetch::probe` over SMB reads the header and the rest of the prologue,
/// nothing more: the source's own byte counter says so.
#[test]
fn probe_reads_only_the_prologue() {
    let Some(smb) = Samba::start() else { return };
    let pkg = package();
    smb.put("share/app.sft", &pkg, 0o644);
    let (prologue, _) = layout(&pkg);
    let src = SmbSource::open(&smb.spec("share", "app.sft"), &opts()).unwrap();
    let p = sft::fetch::probe::probe_source(&src).unwrap();
    assert_eq!(p.bytes_read(), prologue);
    assert_eq!(src.stats().bytes, prologue, "{:?}", src.stats());
    assert_eq!(p.as_bytes(), &pkg[..prologue as usize]);
    assert_eq!(p.package_len(), pkg.len() as u64);
    let pro = p.prologue().unwrap();
    assert_eq!(pro.metadata().name(), "Smb");
    assert!(pro.find("data/big.bin").unwrap().is_some());

    // Through open_source_with, as `sft info URL` does.
    let options = sft::fetch::SourceOptions::default().smb(opts());
    let p = sft::fetch::probe::probe(&smb.spec("share", "app.sft"), &options).unwrap();
    assert_eq!(p.bytes_read(), prologue);
    assert_eq!(
        p.endpoint(),
        format!("smb://127.0.0.1:{}/share/app.sft", smb.port)
    );
}

/// The CLI: `--smb-user`, `--smb-domain`, `--smb-credentials` on fetch,
/// verify, info and ls; the password never printed.
#[cfg(feature = "cli")]
mod cli {
    use super::*;

    const SFT: &str = env!("CARGO_BIN_EXE_sft");

    /// `sft ARGS` with no SFT_SMB_* from the environment, except `env`.
    fn sft(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut c = Command::new(SFT);
        c.args(args)
            .env_remove("SFT_SMB_USER")
            .env_remove("SFT_SMB_PASSWORD")
            .env_remove("SFT_SMB_DOMAIN");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn text(o: &std::process::Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    fn cred_file(dir: &Path, user: &str, password: &str) -> PathBuf {
        let p = dir.join("cred");
        std::fs::write(&p, format!("username = {user}\npassword = {password}\n")).unwrap();
        p
    }

    #[test]
    fn credential_flags_fetch_verify_info_ls() {
        let Some(smb) = Samba::start() else { return };
        let pkg = package();
        smb.put("share/app.sft", &pkg, 0o644);
        let dir = tempfile::tempdir().unwrap();
        let cred = cred_file(dir.path(), USER, PASSWORD);
        let cred = cred.to_str().unwrap();
        // No user in the URL: it comes from the flags.
        let url = format!("smb://127.0.0.1:{}/share/app.sft", smb.port);
        let mut outputs = Vec::new();

        let out = dir.path().join("a.sft");
        let o = sft(
            &[
                "fetch",
                &url,
                "-o",
                out.to_str().unwrap(),
                "--smb-credentials",
                cred,
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(std::fs::read(&out).unwrap() == pkg, "fetched copy differs");
        outputs.push(text(&o));

        // --smb-user, with the password from SFT_SMB_PASSWORD.
        let out2 = dir.path().join("b.sft");
        let o = sft(
            &[
                "fetch",
                &url,
                "-o",
                out2.to_str().unwrap(),
                "--smb-user",
                USER,
            ],
            &[("SFT_SMB_PASSWORD", PASSWORD)],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(std::fs::read(&out2).unwrap() == pkg);
        outputs.push(text(&o));

        // A domain given by flag reaches NTLM (Samba accepts its own
        // workgroup name or any domain for a local account).
        let o = sft(
            &[
                "verify",
                &url,
                "--smb-credentials",
                cred,
                "--smb-domain",
                "WORKGROUP",
            ],
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("OK:"), "{}", text(&o));
        outputs.push(text(&o));

        // info and ls of the URL print what they print for the local copy.
        let local = out.to_str().unwrap();
        for args in [
            vec!["info"],
            vec!["info", "--json"],
            vec!["ls"],
            vec!["ls", "-l"],
        ] {
            let mut remote_args = args.clone();
            remote_args.extend([url.as_str(), "--smb-credentials", cred]);
            let r = sft(&remote_args, &[]);
            assert!(r.status.success(), "{args:?}: {}", text(&r));
            let mut local_args = args.clone();
            local_args.push(local);
            let l = sft(&local_args, &[]);
            assert!(l.status.success(), "{}", text(&l));
            assert_eq!(
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&l.stdout),
                "{args:?}"
            );
            outputs.push(text(&r));
        }
        for t in &outputs {
            assert!(!t.contains(PASSWORD), "password printed: {t}");
        }
    }

    /// An empty, truncated or not-a-package file on the share: status 1,
    /// the file named once, no output, no "run again"; a password in the
    /// URL is never printed, by failing or succeeding commands.
    #[test]
    fn empty_or_broken_files_fail_and_url_passwords_are_never_printed() {
        let Some(smb) = Samba::start() else { return };
        let pkg = package();
        smb.put("share/app.sft", &pkg, 0o644);
        smb.put("share/empty.sft", b"", 0o644);
        smb.put("share/short.sft", &pkg[..pkg.len() / 2], 0o644);
        smb.put("share/junk.sft", &noise(5, 10_000), 0o644);
        let dir = tempfile::tempdir().unwrap();
        let with_pw = |name: &str| {
            format!(
                "smb://DOM;{USER}:{PASSWORD}@127.0.0.1:{}/share/{name}",
                smb.port
            )
        };
        for name in ["empty.sft", "short.sft", "junk.sft"] {
            let out = dir.path().join(format!("{name}.out"));
            for launch_only in [false, true] {
                let mut args = vec!["fetch".to_owned(), with_pw(name), "-o".to_owned()];
                args.push(out.to_str().unwrap().to_owned());
                if launch_only {
                    args.push("--launch-only".to_owned());
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let o = sft(&args, &[]);
                let t = text(&o);
                assert_eq!(o.status.code(), Some(1), "{name}: {t}");
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(err.matches(name).count(), 1, "{name}: {err}");
                assert!(!err.contains("run again"), "{name}: {err}");
                assert!(!t.contains("launch-ready only"), "{name}: {t}");
                assert!(!t.contains(PASSWORD), "{name}: password printed: {t}");
                assert!(!out.exists(), "{name}");
                assert!(partial_files(dir.path()).is_empty(), "{name}");
            }
        }
        // Succeeding commands with the password in the URL.
        let url = with_pw("app.sft");
        let out = dir.path().join("ok.sft");
        for args in [
            vec!["fetch", &url, "-o", out.to_str().unwrap()],
            vec!["info", &url],
            vec!["info", "--json", &url],
            vec!["ls", "-l", &url],
            vec!["verify", &url],
        ] {
            let o = sft(&args, &[]);
            let t = text(&o);
            assert!(o.status.success(), "{args:?}: {t}");
            assert!(!t.contains(PASSWORD), "{args:?}: password printed: {t}");
        }
        assert!(std::fs::read(&out).unwrap() == pkg);
        // And failing ones: a missing file, a denied share.
        for url in [
            with_pw("nope.sft"),
            with_pw("app.sft").replace("/share/", "/secret/"),
        ] {
            let o = sft(&["fetch", &url, "-o", out.to_str().unwrap()], &[]);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(1), "{t}");
            assert!(!t.contains(PASSWORD), "password printed: {t}");
            assert!(!t.contains("run again"), "{t}");
        }
    }

    #[test]
    fn wrong_password_in_credentials_file_is_an_authentication_error() {
        let Some(smb) = Samba::start() else { return };
        smb.put("share/app.sft", &package(), 0o644);
        let dir = tempfile::tempdir().unwrap();
        let wrong = "Wr0ng-from-file";
        let cred = cred_file(dir.path(), USER, wrong);
        let url = format!("smb://127.0.0.1:{}/share/app.sft", smb.port);
        let out = dir.path().join("a.sft");
        for args in [
            vec!["fetch", &url, "-o", out.to_str().unwrap()],
            vec!["info", &url],
            vec!["ls", &url],
            vec!["verify", &url],
        ] {
            let mut args = args.clone();
            args.extend(["--smb-credentials", cred.to_str().unwrap()]);
            let o = sft(&args, &[]);
            let t = text(&o);
            assert!(!o.status.success(), "{args:?}: {t}");
            assert!(t.contains("authentication failed"), "{args:?}: {t}");
            assert!(!t.contains(wrong), "{args:?}: password printed: {t}");
        }
        assert!(!out.exists());
        assert!(partial_files(dir.path()).is_empty());
    }
}
