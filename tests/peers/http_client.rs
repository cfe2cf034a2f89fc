//! The HTTP client transport (`HttpSource`) against real servers on
//! 127.0.0.1: nginx (plain, `max_ranges 0`, HTTPS with an rcgen CA, basic
//! auth), tiny raw TCP servers for dropped connections and stalls, and
//! moto's S3 server with a presigned URL.
//!
//! A missing server binary skips its test with a loud `SKIPPED:` line on
//! stderr, unless `SFT_REQUIRE_SERVERS=1`, which makes it a failure (CI).
#![cfg(feature = "http")]
// One-range slices are intended: `read_ranges` takes a list.
#![allow(clippy::single_range_in_vec_init)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sft::Error;
use sft::io::{ChunkSink, RangeSource, drive};
use sft::net::http::{HttpOptions, HttpSource, is_http_url};
use sft::stream::{SessionConfig, StreamSession, TransportError, TransportErrorKind};

// ---------------------------------------------------------------- helpers

use crate::common::bytes as noise;

/// A package of a few MiB: FB1 = app.exe + lib.dll (launch list), FB2 the rest.
fn package() -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K16)
            .name("Http")
            .created(1_700_000_000, 0),
    );
    b.add_bytes("app.exe", noise(1, 400_000)).unwrap();
    b.add_bytes("lib.dll", noise(2, 200_000)).unwrap();
    b.add_bytes("data/big.bin", noise(3, 2_500_000)).unwrap();
    let text: Vec<u8> = b"all work and no play; "
        .iter()
        .copied()
        .cycle()
        .take(300_000)
        .collect();
    b.add_bytes("data/doc.txt", text).unwrap();
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
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The binary, or `None` after a loud skip notice (a failure when
/// `SFT_REQUIRE_SERVERS=1`).
fn require(name: &str, what: &str) -> Option<PathBuf> {
    let found = find_binary(name);
    if found.is_none() {
        if std::env::var("SFT_REQUIRE_SERVERS").as_deref() == Ok("1") {
            panic!("{name} not installed but SFT_REQUIRE_SERVERS=1 ({what})");
        }
        eprintln!("SKIPPED: {name} not installed ({what})");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "server did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn opts() -> HttpOptions {
    HttpOptions::default()
        .env_credentials(false)
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .retry_backoff(Duration::from_millis(20))
}

fn transport_kind(e: &Error) -> Option<TransportErrorKind> {
    match e {
        Error::Transport(t) => Some(t.kind()),
        _ => None,
    }
}

/// Everything an error says, its source chain included.
fn full_text(e: &dyn std::error::Error) -> String {
    let mut s = format!("{e} / {e:?}");
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(&format!(" / {inner} / {inner:?}"));
        cur = inner.source();
    }
    s
}

/// Read `ranges` through `src`, checking the delivery rules (inside the
/// ranges, each byte at most once), and return the bytes per range.
fn read_all(src: &dyn RangeSource, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>, TransportError> {
    let mut out: Vec<Vec<u8>> = ranges
        .iter()
        .map(|r| vec![0u8; (r.end - r.start) as usize])
        .collect();
    let mut seen: Vec<Vec<bool>> = ranges
        .iter()
        .map(|r| vec![false; (r.end - r.start) as usize])
        .collect();
    src.read_ranges(ranges, &mut |at, data| {
        let mut at = at;
        let mut rest = data;
        while !rest.is_empty() {
            let i = ranges
                .iter()
                .position(|r| r.start <= at && at < r.end)
                .unwrap_or_else(|| panic!("byte {at} was not requested"));
            let r = &ranges[i];
            let n = ((r.end - at) as usize).min(rest.len());
            let from = (at - r.start) as usize;
            for s in &mut seen[i][from..from + n] {
                assert!(!*s, "byte delivered twice");
                *s = true;
            }
            out[i][from..from + n].copy_from_slice(&rest[..n]);
            at += n as u64;
            rest = &rest[n..];
        }
        ControlFlow::Continue(())
    })?;
    for (i, s) in seen.iter().enumerate() {
        assert!(s.iter().all(|&b| b), "range {:?} incomplete", ranges[i]);
    }
    Ok(out)
}

/// Records the ranges of every `read_ranges` call.
struct Recording<'a> {
    inner: &'a HttpSource,
    calls: Mutex<Vec<Vec<Range<u64>>>>,
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
        self.calls.lock().unwrap().push(ranges.to_vec());
        self.inner.read_ranges(ranges, sink)
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}

/// Drive a whole fetch through the streaming core into memory.
fn drive(src: &dyn RangeSource) -> Result<Vec<u8>, Error> {
    drive_with(src, SessionConfig::default())
}

fn drive_with(src: &dyn RangeSource, config: SessionConfig) -> Result<Vec<u8>, Error> {
    let mut session = StreamSession::new(config);
    let mut copy = Vec::new();
    let report = drive::drive(&mut session, src, &mut copy)?;
    assert!(report.complete);
    Ok(copy)
}

// ------------------------------------------------------------------ nginx

/// An nginx started for one test, on a free loopback port, killed on drop.
pub(crate) struct Nginx {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    scheme: &'static str,
}

struct NginxSetup {
    tls: Option<(String, String)>,
    htpasswd: Option<String>,
}

impl Nginx {
    fn start(setup: NginxSetup) -> Option<Nginx> {
        let bin = require("nginx", "apt-get install -y nginx")?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["www/norange", "www/private", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let port = free_port();
        let (listen, ssl, scheme) = match &setup.tls {
            Some((cert, key)) => {
                std::fs::write(d.join("cert.pem"), cert).unwrap();
                std::fs::write(d.join("key.pem"), key).unwrap();
                (
                    format!("127.0.0.1:{port} ssl"),
                    format!(
                        "ssl_certificate {0}/cert.pem; ssl_certificate_key {0}/key.pem;",
                        d.display()
                    ),
                    "https",
                )
            }
            None => (format!("127.0.0.1:{port}"), String::new(), "http"),
        };
        if let Some(h) = &setup.htpasswd {
            std::fs::write(d.join("htpasswd"), h).unwrap();
        }
        let conf = format!(
            r#"
master_process off;
events {{ worker_connections 128; }}
http {{
    log_format ranges '$request_method|$request_uri|$status|$http_range|$http_if_range|$body_bytes_sent';
    access_log {d}/access.log ranges;
    client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
    types {{ application/octet-stream sft; }}
    default_type application/octet-stream;
    keepalive_requests 10000;
    server {{
        listen {listen};
        {ssl}
        root {d}/www;
        location /norange/ {{ max_ranges 0; }}
        location /private/ {{ auth_basic "sft"; auth_basic_user_file {d}/htpasswd; }}
    }}
}}
"#,
            d = d.display()
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let log = d.join("error.log");
        let mut child = Command::new(bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(&log)
            .arg("-g")
            .arg(format!("daemon off; pid {}/nginx.pid;", d.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child, &log);
        Some(Nginx {
            dir,
            port,
            child,
            scheme,
        })
    }

    pub(crate) fn plain() -> Option<Nginx> {
        Nginx::start(NginxSetup {
            tls: None,
            htpasswd: None,
        })
    }

    /// Put `bytes` at `path` (under the web root), atomically.
    pub(crate) fn put(&self, path: &str, bytes: &[u8]) {
        let dest = self.dir.path().join("www").join(path);
        let tmp = dest.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &dest).unwrap();
    }

    /// Stop serving (kill the process), as a server that dies.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}/{path}", self.scheme, self.port)
    }

    /// Access-log lines: method, request URI, status, Range, If-Range, body bytes.
    fn log(&self) -> Vec<LogLine> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split('|').collect();
                LogLine {
                    method: f[0].to_string(),
                    uri: f[1].to_string(),
                    status: f[2].parse().unwrap(),
                    range: f[3].to_string(),
                    if_range: f[4].replace("\\x22", "\""),
                    bytes: f[5].parse().unwrap(),
                }
            })
            .collect()
    }

    /// The access log once it has at least `n` lines (nginx logs a
    /// request just after its last byte is sent, which can be a moment
    /// after the client has it).
    fn log_at_least(&self, n: usize) -> Vec<LogLine> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.len() >= n || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
#[allow(dead_code)]
struct LogLine {
    method: String,
    uri: String,
    status: u16,
    range: String,
    if_range: String,
    bytes: u64,
}

// ------------------------------------------------------------------ tests

#[test]
fn url_detection() {
    assert!(is_http_url("http://a/b"));
    assert!(is_http_url("HTTPS://a/b"));
    assert!(!is_http_url("file:///a"));
    assert!(!is_http_url("/srv/http://x"));
}

#[test]
fn full_fetch_is_identical_and_fb1_comes_first() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let src = HttpSource::open(&ngx.url("app.sft"), &opts()).unwrap();
    assert_eq!(src.len().unwrap(), pkg.len() as u64);
    assert!(src.etag().is_some_and(|e| e.starts_with('"')));
    let rec = Recording {
        inner: &src,
        calls: Mutex::new(Vec::new()),
    };
    // Small requests, one at a time, so the order is visible.
    let config = SessionConfig::default()
        .max_request_bytes(256 << 10)
        .max_in_flight_requests(1);
    let copy = drive_with(&rec, config).unwrap();
    assert!(copy == pkg, "fetched bytes differ");

    // Order: after the prologue, every FB1 byte is asked for before any FB2 byte.
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
    assert!(
        last_fb1 < first_fb2,
        "FB2 asked for before the end of FB1: {asked:?}"
    );

    // nginx saw the same order, every GET a 206 with If-Range.
    let log = ngx.log_at_least(src.stats().requests as usize);
    assert_eq!(log[0].method, "HEAD");
    let gets: Vec<&LogLine> = log.iter().filter(|l| l.method == "GET").collect();
    assert!(gets.iter().all(|l| l.status == 206), "{gets:?}");
    for l in &gets {
        assert_eq!(l.if_range, src.etag().unwrap(), "{gets:?}");
    }
    let starts: Vec<u64> = gets
        .iter()
        .map(|l| {
            l.range
                .trim_start_matches("bytes=")
                .split('-')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    // The first GET is the initial read (the prologue and the start of
    // FB1, stored right after it); the rest of FB1 is asked for next, and
    // the requests then move forward through FB2: every FB1 byte was
    // requested before any FB2 byte.
    assert_eq!(starts[0], 0);
    assert!(starts[1] < fb1_end, "{gets:?}");
    assert!(starts[1..].windows(2).all(|w| w[0] < w[1]), "{starts:?}");
    let fb1_requests = starts.iter().filter(|&&s| s < fb1_end).count();
    assert!(fb1_requests >= 2, "{starts:?}");
    // Nothing downloaded twice: body bytes sum to the package (plus a
    // prologue read that may overlap).
    let sent: u64 = gets.iter().map(|l| l.bytes).sum();
    assert!(
        sent < pkg.len() as u64 + 300_000,
        "{sent} bytes for {}",
        pkg.len()
    );
    // Kept-alive connections: far fewer connections than requests is not
    // visible in the log, but the source's own counters match the log.
    assert_eq!(src.stats().requests as usize, log.len());
}

#[test]
fn multi_range_requests_are_used_and_split() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let src = HttpSource::open(&ngx.url("app.sft"), &opts().max_ranges_per_request(16)).unwrap();
    // 40 separate ranges, out of order, of odd sizes.
    let mut ranges: Vec<Range<u64>> = (0..40u64)
        .map(|i| {
            let start = (i * 7919 * 97) % (pkg.len() as u64 - 5000);
            start..start + 1 + (i * 131) % 4000
        })
        .collect();
    ranges.sort_by_key(|r| std::cmp::Reverse(r.start));
    ranges.dedup_by(|a, b| a.start < b.end && b.start < a.end);
    let got = read_all(&src, &ranges).unwrap();
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(g[..], pkg[r.start as usize..r.end as usize]);
    }
    let log = ngx.log_at_least(4);
    let gets: Vec<&LogLine> = log.iter().filter(|l| l.method == "GET").collect();
    // 40 ranges at most 16 per request: 3 requests, all multipart 206s.
    assert_eq!(gets.len(), ranges.len().div_ceil(16), "{gets:?}");
    assert!(gets.iter().all(|l| l.status == 206));
    assert_eq!(gets[0].range.matches(',').count(), 15);
    assert!(src.stats().multi_range);

    // Adjacent ranges are merged into one.
    let before = ngx.log_at_least(4).len();
    let got = read_all(&src, &[1000..2000, 2000..3000, 3000..3500]).unwrap();
    assert_eq!(got.concat(), pkg[1000..3500]);
    let log = ngx.log_at_least(before + 1);
    assert_eq!(log.len(), before + 1);
    assert_eq!(log[before].range, "bytes=1000-3499");

    // read_at and read_exact_at go through the same path.
    let mut buf = vec![0u8; 70_000];
    src.read_exact_at(12_345, &mut buf).unwrap();
    assert_eq!(buf[..], pkg[12_345..82_345]);
    assert_eq!(src.read_at(pkg.len() as u64, &mut buf).unwrap(), 0);
    // Past the end: refused without a request.
    let e = read_all(&src, &[pkg.len() as u64 - 1..pkg.len() as u64 + 1]).unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::RangeNotSatisfiable);
}

#[test]
fn server_ignoring_ranges_downloads_the_body_once() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("norange/app.sft", &pkg);
    // nginx with `max_ranges 0` really answers a Range request with 200.
    let src = HttpSource::open(&ngx.url("norange/app.sft"), &opts()).unwrap();
    let copy = drive(&src).unwrap();
    assert!(copy == pkg, "fetched bytes differ");
    let stats = src.stats();
    assert!(stats.spooling);
    // Later reads anywhere come from the spool, not the network.
    let got = read_all(&src, &[5..10, 1_000_000..1_000_100, 0..3]).unwrap();
    assert_eq!(got[1], pkg[1_000_000..1_000_100]);
    let log = ngx.log_at_least(2);
    let gets: Vec<&LogLine> = log.iter().filter(|l| l.method == "GET").collect();
    assert_eq!(gets.len(), 1, "{log:?}");
    assert_eq!(gets[0].status, 200);
    assert!(!gets[0].range.is_empty(), "a Range header was sent");
    assert_eq!(gets[0].bytes, pkg.len() as u64);
    assert_eq!(src.stats().body_bytes, pkg.len() as u64);
    assert_eq!(src.stats().requests, 2); // HEAD + one GET
}

#[test]
fn package_replaced_mid_stream_is_changed() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let src = HttpSource::open(&ngx.url("app.sft"), &opts()).unwrap();
    let got = read_all(&src, &[0..4096]).unwrap();
    assert_eq!(got[0], pkg[..4096]);
    // A new version (another length, so another nginx ETag even within
    // the same second).
    let mut v2 = pkg.clone();
    v2.extend_from_slice(&[0u8; 100]);
    ngx.put("app.sft", &v2);
    let e = read_all(&src, &[4096..8192]).unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::Changed, "{e}");
    assert!(!e.is_retryable());
    // nginx answered the stale If-Range with 200: the body was not read.
    let last = ngx.log_at_least(3).pop().unwrap();
    assert_eq!(last.status, 200);

    // Through the streaming core the fetch fails with Changed too.
    ngx.put("app.sft", &pkg);
    let src = HttpSource::open(&ngx.url("app.sft"), &opts()).unwrap();
    let replaced = AtomicUsize::new(0);
    struct Replacing<'a> {
        inner: &'a HttpSource,
        ngx: &'a Nginx,
        v2: &'a [u8],
        calls: &'a AtomicUsize,
    }
    impl RangeSource for Replacing<'_> {
        fn len(&self) -> Result<u64, TransportError> {
            self.inner.len()
        }
        fn read_at(&self, o: u64, b: &mut [u8]) -> Result<usize, TransportError> {
            self.inner.read_at(o, b)
        }
        fn read_ranges(
            &self,
            r: &[Range<u64>],
            s: &mut ChunkSink<'_>,
        ) -> Result<(), TransportError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
                self.ngx.put("app.sft", self.v2);
            }
            self.inner.read_ranges(r, s)
        }
    }
    let result = drive(&Replacing {
        inner: &src,
        ngx: &ngx,
        v2: &v2,
        calls: &replaced,
    });
    let calls = replaced.load(Ordering::SeqCst);
    let Err(e) = result else {
        panic!("the fetch succeeded after {calls} calls: {:?}", ngx.log());
    };
    assert_eq!(transport_kind(&e), Some(TransportErrorKind::Changed), "{e}");
}

#[test]
fn https_with_a_generated_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sft test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let Some(ngx) = Nginx::start(NginxSetup {
        tls: Some((server_cert.pem(), server_key.serialize_pem())),
        htpasswd: None,
    }) else {
        return;
    };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let ca_file = ngx.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let url = ngx.url("app.sft");
    assert!(url.starts_with("https://"));
    let src = HttpSource::open(&url, &opts().ca_file(&ca_file)).unwrap();
    let copy = drive(&src).unwrap();
    assert!(copy == pkg, "fetched bytes differ");

    // The caller's own rustls configuration: trusting the CA works, an
    // empty trust store is refused (and wins over a good CA file).
    let config = |trust: bool| {
        let mut roots = rustls::RootCertStore::empty();
        if trust {
            roots.add(ca_cert.der().clone()).unwrap();
        }
        std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    };
    let src = HttpSource::open(&url, &opts().tls_config(config(true))).unwrap();
    assert!(drive(&src).unwrap() == pkg, "fetched bytes differ");
    let e = HttpSource::open(
        &url,
        &opts()
            .ca_file(&ca_file)
            .tls_config(config(false))
            .max_attempts(1),
    )
    .unwrap_err();
    assert!(
        !transport_kind(&e).unwrap().is_retryable(),
        "{}",
        full_text(&e)
    );

    // Without the CA the certificate is refused, at once (not retried).
    let t = Instant::now();
    let e = HttpSource::open(&url, &opts().max_attempts(3)).unwrap_err();
    let kind = transport_kind(&e).unwrap();
    assert!(!kind.is_retryable(), "{kind:?}: {}", full_text(&e));
    assert!(t.elapsed() < Duration::from_secs(5));
    // A CA file without certificates is an input error.
    std::fs::write(&ca_file, "not a pem").unwrap();
    let e = HttpSource::open(&url, &opts().ca_file(&ca_file)).unwrap_err();
    assert_eq!(e.kind(), sft::ErrorKind::InvalidInput, "{e}");
}

/// `openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost
/// [-addext subjectAltName=…]`: (cert PEM, key PEM). OpenSSL 3 marks it
/// `CA:TRUE`, the everyday self-signed certificate.
fn openssl_self_signed(dir: &Path, name: &str, san: Option<&str>) -> Option<(String, String)> {
    require("openssl", "self-signed certificates")?;
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let mut cmd = Command::new("openssl");
    cmd.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    ])
    .args(["-subj", "/CN=localhost", "-keyout"])
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((
        std::fs::read_to_string(cert).unwrap(),
        std::fs::read_to_string(key).unwrap(),
    ))
}

/// The everyday self-signed certificate (`openssl req -x509`, CA:TRUE)
/// that nginx serves, given with `--ca-file`, is pinned and the fetch works
/// (it was refused with CaUsedAsEndEntity where `curl --cacert` accepts
/// it); with and without subjectAltName. Another self-signed certificate
/// in the CA file is refused at once, with a hint on how to make a proper
/// one.
#[test]
fn https_pins_an_openssl_self_signed_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, san) in [Some("DNS:localhost,IP:127.0.0.1"), None]
        .into_iter()
        .enumerate()
    {
        let Some((cert, key)) = openssl_self_signed(tmp.path(), &format!("server-{i}"), san) else {
            return;
        };
        let (other, _) = openssl_self_signed(tmp.path(), &format!("other-{i}"), san).unwrap();
        let Some(ngx) = Nginx::start(NginxSetup {
            tls: Some((cert.clone(), key)),
            htpasswd: None,
        }) else {
            return;
        };
        let pkg = package();
        ngx.put("app.sft", &pkg);
        let pinned = ngx.dir.path().join("pinned.pem");
        std::fs::write(&pinned, &cert).unwrap();
        let wrong = ngx.dir.path().join("wrong.pem");
        std::fs::write(&wrong, &other).unwrap();
        for url in [
            ngx.url("app.sft"),
            ngx.url("app.sft").replace("127.0.0.1", "localhost"),
        ] {
            assert!(url.starts_with("https://"), "{url}");
            let src = HttpSource::open(&url, &opts().ca_file(&pinned))
                .unwrap_or_else(|e| panic!("{url}, SAN {san:?}: {}", full_text(&e)));
            let copy = drive(&src).unwrap();
            assert!(copy == pkg, "fetched bytes differ");
            let t = Instant::now();
            let e = HttpSource::open(&url, &opts().ca_file(&wrong).max_attempts(3)).unwrap_err();
            let kind = transport_kind(&e).unwrap();
            assert!(!kind.is_retryable(), "{kind:?}: {}", full_text(&e));
            let text = e.to_string();
            assert!(
                text.contains("CA:FALSE") && text.contains("--ca-file"),
                "{text}"
            );
            assert!(t.elapsed() < Duration::from_secs(5));
        }
    }
}

#[test]
fn basic_auth_works_and_never_shows_the_password() {
    const PASSWORD: &str = "pa55-w0rd-XyZ";
    let Some(ngx) = Nginx::start(NginxSetup {
        tls: None,
        htpasswd: Some(format!("alice:{{PLAIN}}{PASSWORD}\n")),
    }) else {
        return;
    };
    let pkg = package();
    ngx.put("private/app.sft", &pkg);
    let plain = ngx.url("private/app.sft");
    let with_user = plain.replacen("://", &format!("://alice:{PASSWORD}@"), 1);

    // Credentials in the URL.
    let src = HttpSource::open(&with_user, &opts()).unwrap();
    assert!(!src.endpoint().contains(PASSWORD) && !src.endpoint().contains("alice"));
    assert!(!format!("{src:?}").contains(PASSWORD));
    let copy = drive(&src).unwrap();
    assert!(copy == pkg);

    // Credentials in the options.
    let src = HttpSource::open(&plain, &opts().basic_auth("alice", PASSWORD)).unwrap();
    assert_eq!(read_all(&src, &[0..100]).unwrap()[0], pkg[..100]);

    // Wrong or missing credentials: Authentication, password nowhere.
    let wrong = plain.replacen("://", &format!("://alice:{PASSWORD}-not@"), 1);
    for url in [wrong.as_str(), plain.as_str()] {
        let e = HttpSource::open(url, &opts()).unwrap_err();
        assert_eq!(
            transport_kind(&e),
            Some(TransportErrorKind::Authentication),
            "{e}"
        );
        let text = full_text(&e);
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(text.contains("/private/app.sft"), "{text}");
    }
    // A connection error also hides it.
    let e = HttpSource::open(
        &format!("http://alice:{PASSWORD}@127.0.0.1:{}/x.sft", free_port()),
        &opts().max_attempts(1),
    )
    .unwrap_err();
    assert!(!full_text(&e).contains(PASSWORD), "{}", full_text(&e));
}

#[test]
fn missing_package_is_not_found() {
    let Some(ngx) = Nginx::plain() else { return };
    let e = HttpSource::open(&ngx.url("nope.sft"), &opts()).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::NotFound),
        "{e}"
    );
    // Not retried: one HEAD.
    assert_eq!(ngx.log_at_least(1).len(), 1);
}

#[test]
fn presigned_query_is_sent_byte_for_byte() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request\
                 &X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
                 &X-Amz-Signature=0a1B%2b%3D%3d~._-&b=a+b&empty=&z=%7e";
    let url = format!("{}?{query}", ngx.url("app.sft"));
    let src = HttpSource::open(&url, &opts()).unwrap();
    assert!(!src.endpoint().contains("Signature"), "{}", src.endpoint());
    let got = read_all(&src, &[10..20, 500_000..500_010]).unwrap();
    assert_eq!(got[1], pkg[500_000..500_010]);
    let log = ngx.log_at_least(2);
    assert_eq!(log.len(), 2);
    for l in &log {
        assert_eq!(l.uri, format!("/app.sft?{query}"));
    }
}

/// A raw HTTP server: HEAD gives the length; the first GET sends half of
/// its body and closes; later GETs are answered properly. Records the
/// Range header of each GET.
fn flaky_server(body: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.sft", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        let gets = AtomicUsize::new(0);
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut out = conn;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let head = line.starts_with("HEAD");
                let mut range = String::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 {
                        break;
                    }
                    let h = h.trim_end().to_string();
                    if h.is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = v.to_string();
                    }
                }
                if head {
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"v1\"\r\n\r\n",
                        body.len()
                    );
                    continue;
                }
                seen2.lock().unwrap().push(range.clone());
                let (a, b) = range.split_once('-').unwrap();
                let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                let part = &body[a..=b];
                let _ = write!(
                    out,
                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{}\r\nETag: \"v1\"\r\n\r\n",
                    part.len(),
                    body.len()
                );
                if gets.fetch_add(1, Ordering::SeqCst) == 0 {
                    let _ = out.write_all(&part[..part.len() / 2]);
                    let _ = out.flush();
                    break; // drop the connection mid-body
                }
                let _ = out.write_all(part);
            }
        }
    });
    (url, seen)
}

#[test]
fn connection_dropped_mid_body_is_retried_from_where_it_stopped() {
    let body = noise(9, 1_000_000);
    let (url, seen) = flaky_server(body.clone());
    // The transport's own retries (opt-in; a session retries by default).
    let src = HttpSource::open(&url, &opts().max_attempts(3)).unwrap();
    let got = read_all(&src, &[100_000..900_000]).unwrap();
    assert!(got[0] == body[100_000..900_000]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "100000-899999");
    // The retry asks only for what had not arrived.
    let resumed: u64 = seen[1].split('-').next().unwrap().parse().unwrap();
    assert!(resumed > 100_000 && resumed <= 500_000, "{seen:?}");
    assert_eq!(src.stats().retries, 1);
}

#[test]
fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.sft", listener.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = Arc::clone(&held);
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            held2.lock().unwrap().push(c); // accept, never answer
        }
    });
    let t = Instant::now();
    let e = HttpSource::open(
        &url,
        &opts()
            .read_timeout(Duration::from_millis(300))
            .max_attempts(2),
    )
    .unwrap_err();
    assert_eq!(transport_kind(&e), Some(TransportErrorKind::Timeout), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(held.lock().unwrap().len(), 2, "one attempt and one retry");
}

// ------------------------------------------------------------------- S3

struct Moto {
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn s3_presigned_url_through_moto() {
    let Some(moto) = require("moto_server", "pip install 'moto[server]' boto3") else {
        return;
    };
    // The Python next to moto_server has boto3 (a venv), else python3.
    let python = moto
        .parent()
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .or_else(|| find_binary("python3"))
        .expect("python3");
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("moto.log");
    let mut child = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("moto.err")).unwrap())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child, &log);
    let _moto = Moto { child };

    let pkg = package();
    let file = dir.path().join("app.sft");
    std::fs::write(&file, &pkg).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3-presign.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["packages", "apps/app.sft"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "s3-presign.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(url.contains("X-Amz-Signature="), "{url}");

    // HEAD is not signed by a GET presigned URL (403): open falls back
    // to a one-byte GET.
    let src = HttpSource::open(&url, &opts()).unwrap();
    assert_eq!(src.len().unwrap(), pkg.len() as u64);
    let copy = drive(&src).unwrap();
    assert!(copy == pkg, "fetched bytes differ");
    // S3 answers multi-range requests with the whole object (200): the
    // source then asks one range per request, and the bytes are right.
    let ranges = [10..20, 300_000..300_500, 2_000_000..2_000_001];
    let got = read_all(&src, &ranges).unwrap();
    for (r, g) in ranges.iter().zip(&got) {
        assert_eq!(g[..], pkg[r.start as usize..r.end as usize]);
    }
    let stats = src.stats();
    assert!(!stats.spooling);
    assert!(!stats.multi_range, "{stats:?}");
    // Without its query (the signature) the object is refused: moto
    // does not check signatures, but it does refuse unsigned requests.
    let unsigned = url.split('?').next().unwrap();
    let e = HttpSource::open(unsigned, &opts()).unwrap_err();
    assert_eq!(
        transport_kind(&e),
        Some(TransportErrorKind::PermissionDenied),
        "{e}"
    );
}

// ------------------------------------------------------------ throughput

/// `sft::fetch::fetch_spec` over HTTP: the package is replaced on the
/// server right after launch-ready; the fetch notices (If-Range, ETag),
/// starts over, and ends with exactly the new version, never a mix.
#[test]
fn fetch_spec_starts_over_on_a_replaced_package() {
    use sft::fetch::{FetchOptions, fetch_spec};
    let Some(ngx) = Nginx::plain() else { return };
    let v1 = package();
    // Another package: other content, other length, other GUIDs.
    let v2 = {
        let mut b = sft::write::PackageBuilder::new(
            sft::WriteOptions::default()
                .block_size(sft::write::BlockSize::K16)
                .name("Http v2")
                .created(1_700_000_100, 0),
        );
        b.add_bytes("app.exe", noise(11, 450_000)).unwrap();
        b.add_bytes("data/big.bin", noise(13, 2_000_000)).unwrap();
        b.launch_list(sft::write::parse_launch_list("app.exe\n").unwrap());
        b.write_to_vec().unwrap()
    };
    assert_ne!(v1.len(), v2.len());
    ngx.put("app.sft", &v1);
    let dest = ngx.dir.path().join("www").join("app.sft");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.sft");
    let (v2c, replaced) = (v2.clone(), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::clone(&replaced);
    let options = FetchOptions::default()
        // Small requests: many are left after launch-ready.
        .session(SessionConfig::default().max_request_bytes(64 * 1024))
        .on_event(move |e| {
            if matches!(e, sft::stream::Event::LaunchReady)
                && seen.fetch_add(1, Ordering::SeqCst) == 0
            {
                let tmp = dest.with_extension("tmp");
                std::fs::write(&tmp, &v2c).unwrap();
                std::fs::rename(&tmp, &dest).unwrap();
            }
        });
    let report = fetch_spec(&ngx.url("app.sft"), &out, options).unwrap();
    assert!(report.complete);
    // Launch-ready fired once per version.
    assert_eq!(replaced.load(Ordering::SeqCst), 2);
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == v2,
        "the result is not the new version ({} bytes)",
        got.len()
    );
    sft::Package::parse(&got).unwrap().verify().unwrap();
    // nginx answered a stale If-Range with the whole new body (200).
    assert!(
        ngx.log()
            .iter()
            .any(|l| l.status == 200 && l.method == "GET")
    );
}

/// A package overwritten in place mid-fetch (`cp new old`: truncated,
/// then written): the restart after "changed" lands while the file is
/// empty; the fetch backs off and starts over once it is a package
/// again, ending with exactly the new version. Left empty, the fetch
/// fails (never a success without the output).
#[test]
fn fetch_spec_waits_for_a_package_overwritten_in_place() {
    use sft::fetch::{FetchOptions, fetch_spec};
    let Some(ngx) = Nginx::plain() else { return };
    let v1 = package();
    let v2 = {
        let mut b = sft::write::PackageBuilder::new(
            sft::WriteOptions::default()
                .block_size(sft::write::BlockSize::K16)
                .name("Http v2")
                .created(1_700_000_100, 0),
        );
        b.add_bytes("app.exe", noise(21, 450_000)).unwrap();
        b.add_bytes("data/big.bin", noise(23, 1_000_000)).unwrap();
        b.launch_list(sft::write::parse_launch_list("app.exe\n").unwrap());
        b.write_to_vec().unwrap()
    };
    let dest = ngx.dir.path().join("www").join("app.sft");
    for refill in [true, false] {
        ngx.put("app.sft", &v1);
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("out.sft");
        let emptied = Arc::new(Mutex::new(None::<usize>));
        let (flag, d) = (Arc::clone(&emptied), dest.clone());
        let ngx_log = ngx.dir.path().join("access.log");
        let options = FetchOptions::default()
            .session(SessionConfig::default().max_request_bytes(64 * 1024))
            .on_event(move |e| {
                let mut f = flag.lock().unwrap();
                if matches!(e, sft::stream::Event::LaunchReady) && f.is_none() {
                    // Truncated in place: the first step of `cp new old`.
                    std::fs::write(&d, b"").unwrap();
                    let lines = std::fs::read_to_string(&ngx_log).unwrap_or_default();
                    *f = Some(lines.lines().count());
                }
            });
        let writer = refill.then(|| {
            let (flag, d, v2) = (Arc::clone(&emptied), dest.clone(), v2.clone());
            let ngx = &ngx;
            move || {
                // Once the fetch has seen the empty file (a request after
                // the truncation answered with no body), finish the copy.
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    let from = *flag.lock().unwrap();
                    if let Some(from) = from
                        && ngx
                            .log()
                            .iter()
                            .skip(from)
                            .any(|l| l.bytes == 0 || l.status == 416)
                    {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "the fetch never saw the empty file"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::fs::write(&d, &v2).unwrap();
            }
        });
        let result = std::thread::scope(|scope| {
            let w = writer.map(|w| scope.spawn(w));
            let r = fetch_spec(&ngx.url("app.sft"), &out, options);
            if let Some(w) = w {
                w.join().unwrap();
            }
            r
        });
        if refill {
            let report = result.unwrap();
            assert!(report.complete);
            let got = std::fs::read(&out).unwrap();
            assert!(got == v2, "not the new version ({} bytes)", got.len());
            sft::Package::parse(&got).unwrap().verify().unwrap();
        } else {
            let e = result.unwrap_err();
            assert_eq!(transport_kind(&e), Some(TransportErrorKind::Changed), "{e}");
            assert!(e.to_string().contains("still changing"), "{e}");
            assert!(!out.exists());
        }
    }
}

/// `sft fetch` of an empty, truncated or not-a-package file from nginx:
/// status 1, the file named once, no output, no "run again".
#[cfg(feature = "cli")]
#[test]
fn sft_fetch_of_an_empty_or_broken_file_fails() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    let (prologue, _) = layout(&pkg);
    ngx.put("empty.sft", b"");
    ngx.put("header.sft", &pkg[..100]);
    ngx.put("prologue.sft", &pkg[..prologue as usize]);
    ngx.put("short.sft", &pkg[..pkg.len() - 1000]);
    ngx.put("junk.sft", &noise(7, 20_000));
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "empty.sft",
        "header.sft",
        "prologue.sft",
        "short.sft",
        "junk.sft",
    ] {
        for extra in [&[][..], &["--launch-only"][..]] {
            let out = dir.path().join("out.sft");
            let o = Command::new(env!("CARGO_BIN_EXE_sft"))
                .args(["fetch", &ngx.url(name), "-o"])
                .arg(&out)
                .args(extra)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name}: {err}");
            assert_eq!(err.matches(name).count(), 1, "{name}: {err}");
            assert!(!err.contains("run again"), "{name}: {err}");
            assert!(
                !String::from_utf8_lossy(&o.stdout).contains("launch-ready only"),
                "{name}"
            );
            assert!(
                std::fs::read_dir(dir.path()).unwrap().next().is_none(),
                "{name}: output left"
            );
        }
    }
}

/// `sft verify URL` streams a package from nginx and checks it without
/// storing it; a package with one damaged byte in a block fails, naming
/// the block.
#[cfg(feature = "cli")]
#[test]
fn sft_verify_streams_a_remote_package() {
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("good.sft", &pkg);
    let mut bad = pkg.clone();
    let last = bad.len() - 1000;
    bad[last] ^= 0x40;
    ngx.put("bad.sft", &bad);
    let run = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_sft"))
            .args(["verify", &ngx.url(name)])
            .output()
            .unwrap()
    };
    let ok = run("good.sft");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.starts_with("OK: ") && stdout.contains("(streamed)"),
        "{stdout}"
    );
    let no = run("bad.sft");
    let stderr = String::from_utf8_lossy(&no.stderr);
    assert_eq!(no.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("failed verification") && stderr.contains("block"),
        "{stderr}"
    );
}

// ------------------------------------------------- the bulk path of fetch

/// How [`range_server`] misbehaves.
#[derive(Debug, Clone, Copy, Default)]
struct Misbehave {
    /// Flip the byte at `corrupt_at` in this many GETs that cover it.
    corrupt: usize,
    corrupt_at: u64,
    /// Send only half of the body, then close, in this many GETs.
    short: usize,
}

/// A raw HTTP/1.1 server for one body: `HEAD`, and `GET` with one
/// `Range: bytes=a-b` (206), on kept-alive connections, one thread per
/// connection, misbehaving as told; while `slow` is set it pauses
/// every 64 KiB (40 ms). Records each GET's range.
fn range_server(
    body: Vec<u8>,
    m: Misbehave,
    slow: Arc<std::sync::atomic::AtomicBool>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/app.sft", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let total = body.len();
    let body = Arc::new(body);
    let (corrupted, shortened) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let (body, seen, slow) = (Arc::clone(&body), Arc::clone(&seen2), Arc::clone(&slow));
            let (corrupted, shortened) = (Arc::clone(&corrupted), Arc::clone(&shortened));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut out = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let head = line.starts_with("HEAD");
                    let mut range = String::new();
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end().to_ascii_lowercase();
                        if h.is_empty() {
                            break;
                        }
                        if let Some(v) = h.strip_prefix("range: bytes=") {
                            range = v.to_string();
                        }
                    }
                    if head {
                        let _ = write!(
                            out,
                            "HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nETag: \"v1\"\r\n\r\n"
                        );
                        continue;
                    }
                    seen.lock().unwrap().push(range.clone());
                    let (a, b) = range.split_once('-').unwrap();
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    let mut part = body[a..=b].to_vec();
                    let at = m.corrupt_at as usize;
                    if (a..=b).contains(&at) && corrupted.fetch_add(1, Ordering::SeqCst) < m.corrupt
                    {
                        part[at - a] ^= 0x5a;
                    }
                    let _ = write!(
                        out,
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{}\r\nETag: \"v1\"\r\n\r\n",
                        part.len(),
                        total
                    );
                    let send = if shortened.fetch_add(1, Ordering::SeqCst) < m.short {
                        part.len() / 2
                    } else {
                        part.len()
                    };
                    for chunk in part[..send].chunks(64 * 1024) {
                        if out.write_all(chunk).is_err() {
                            return;
                        }
                        if slow.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(40));
                        }
                    }
                    if send < part.len() {
                        return; // close mid-body
                    }
                }
            });
        }
    });
    (url, seen)
}

fn not_slow() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// `fetch_spec` of an `http://` URL from nginx takes the bulk path: the
/// file is byte-identical, every FB1 block is ready before any FB2 block,
/// every GET is a 206 with If-Range, and nothing is downloaded twice.
#[test]
fn bulk_fetch_from_nginx_is_identical_and_fb1_first() {
    use sft::fetch::{FetchOptions, fetch_spec};
    use sft::stream::Event;
    let Some(ngx) = Nginx::plain() else { return };
    let pkg = package();
    ngx.put("app.sft", &pkg);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.sft");
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&events);
    let options = FetchOptions::default().on_event(move |e| match e {
        Event::BlockReady(id) => log.lock().unwrap().push(Some(id.0)),
        Event::LaunchReady => log.lock().unwrap().push(None),
        _ => {}
    });
    let report = fetch_spec(&ngx.url("app.sft"), &out, options).unwrap();
    assert!(report.complete);
    assert!(std::fs::read(&out).unwrap() == pkg, "fetched bytes differ");
    assert_eq!(report.blocks_fetched, report.total_blocks);
    // The blocks ready before launch-ready are the FB1 blocks, 0..k.
    let events = events.lock().unwrap().clone();
    let k = events.iter().position(Option::is_none).unwrap();
    let mut fb1: Vec<u32> = events[..k].iter().map(|e| e.unwrap()).collect();
    fb1.sort_unstable();
    assert!(k > 1 && k < report.total_blocks as usize, "{k}");
    assert_eq!(fb1, (0..k as u32).collect::<Vec<_>>());
    let log = ngx.log_at_least(3);
    let gets: Vec<&LogLine> = log.iter().filter(|l| l.method == "GET").collect();
    // Large requests on the bulk path: the prologue, FB1, FB2.
    assert!(!gets.is_empty() && gets.len() <= 4, "{gets:?}");
    assert!(
        gets.iter()
            .all(|l| l.status == 206 && l.if_range.starts_with('"')),
        "{gets:?}"
    );
    let sent: u64 = gets.iter().map(|l| l.bytes).sum();
    assert!(
        sent < pkg.len() as u64 + 300_000,
        "{sent} bytes for {}",
        pkg.len()
    );
}

/// A block corrupted in transit is fetched again and the result is
/// right; a block the server always corrupts fails the fetch (the
/// exhausted block named), and no output is written.
#[test]
fn bulk_fetch_refetches_a_corrupted_block_and_never_keeps_bad_data() {
    use sft::fetch::{FetchOptions, fetch_spec};
    let pkg = package();
    let corrupt_at = pkg.len() as u64 - 50_000; // in an FB2 block
    let dir = tempfile::tempdir().unwrap();

    let once = Misbehave {
        corrupt: 1,
        corrupt_at,
        short: 0,
    };
    let (url, seen) = range_server(pkg.clone(), once, not_slow());
    let out = dir.path().join("once.sft");
    let report = fetch_spec(&url, &out, FetchOptions::default()).unwrap();
    assert!(report.complete);
    assert!(std::fs::read(&out).unwrap() == pkg);
    // The damaged block was asked for again, by itself or with others.
    let seen = seen.lock().unwrap().clone();
    let covering = seen
        .iter()
        .filter(|r| {
            let (a, b) = r.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            (a..=b).contains(&corrupt_at)
        })
        .count();
    assert_eq!(covering, 2, "{seen:?}");

    let always = Misbehave {
        corrupt: usize::MAX,
        ..once
    };
    let (url, _) = range_server(pkg.clone(), always, not_slow());
    let out = dir.path().join("always.sft");
    let e = fetch_spec(&url, &out, FetchOptions::default()).unwrap_err();
    assert_eq!(e.kind(), sft::ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("block"), "{e}");
    assert!(!out.exists());
}

/// A body cut short is asked for again from where it stopped; the
/// result is identical.
#[test]
fn bulk_fetch_recovers_from_a_short_body() {
    use sft::fetch::{FetchOptions, fetch_spec};
    let pkg = package();
    let m = Misbehave {
        short: 2,
        ..Misbehave::default()
    };
    let (url, seen) = range_server(pkg.clone(), m, not_slow());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.sft");
    let report = fetch_spec(&url, &out, FetchOptions::default()).unwrap();
    assert!(report.complete);
    assert!(std::fs::read(&out).unwrap() == pkg);
    assert!(
        seen.lock().unwrap().len() >= 3,
        "{:?}",
        seen.lock().unwrap()
    );
}

/// `sft fetch http://...` killed with SIGKILL mid-stream, several times,
/// then run again: only the missing blocks are fetched and the result
/// is identical and verifies.
#[cfg(feature = "cli")]
#[test]
fn bulk_fetch_killed_then_resumed_fetches_only_missing_blocks() {
    let pkg = package();
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (url, _) = range_server(pkg.clone(), Misbehave::default(), Arc::clone(&slow));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.sft");
    let cache = dir.path().join("cache");
    let sft = env!("CARGO_BIN_EXE_sft");
    let mut kills = 0;
    // A full run takes about 2 s against the slow server (40 ms per
    // 64 KiB); each run is killed right after its first checkpoint (the
    // bitmap's bytes change when one records blocks, about every 0.5 s),
    // so two runs leave progress to resume and the package unfinished.
    for _ in 0..2 {
        let mut child = Command::new(sft)
            .args(["fetch", &url, "-o"])
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let bitmap = sft::fetch::cache::CachePaths::for_output(&out, Some(&cache)).bitmap;
        let before = std::fs::read(&bitmap).ok();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none()
            && std::fs::read(&bitmap).ok() == before
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5)); // polling, not synchronisation
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills > 0, "nothing was interrupted");
    assert!(!out.exists());
    slow.store(false, Ordering::SeqCst);
    let o = Command::new(sft)
        .args(["fetch", &url, "-o"])
        .arg(&out)
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("resumed: "), "{stdout}");
    let transferred: u64 = stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("transferred: ")?;
            rest.split('(').nth(1)?.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no transferred line in {stdout}"));
    assert!(transferred < pkg.len() as u64, "{stdout}");
    assert!(std::fs::read(&out).unwrap() == pkg);
    sft::Package::parse(&pkg).unwrap().verify().unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

/// A long range cut short by the server is asked again from where it
/// stopped, on the bulk path (a server handling each connection on its
/// own thread); the bytes delivered are exactly the body.
#[test]
fn long_range_cut_short_is_resumed_where_it_stopped() {
    let body = noise(21, 3_000_000);
    let m = Misbehave {
        short: 1,
        ..Misbehave::default()
    };
    let (url, seen) = range_server(body.clone(), m, not_slow());
    // The transport's own retries (opt-in; a session retries by default).
    let src = HttpSource::open(&url, &opts().max_attempts(3)).unwrap();
    let got = read_all(&src, &[10..2_900_000]).unwrap();
    assert!(got[0] == body[10..2_900_000]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], "10-2899999");
    let resumed: u64 = seen[1].split('-').next().unwrap().parse().unwrap();
    assert!(resumed > 10 && resumed <= 1_450_010, "{seen:?}");
}
