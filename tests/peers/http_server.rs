//! The built-in content server (`sft::serve::http`, `sft serve`)
//! driven by the real `curl` and by raw sockets, on loopback only.
//!
//! Without `curl` the curl tests print `SKIPPED: curl not installed` and
//! pass, unless `SFT_REQUIRE_SERVERS=1` (as in CI), where they fail.
#![cfg(feature = "http-server")]

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sft::serve::http::{AccessLog, Server, ServerConfig, ServerHandle, tls_config_from_pem};

use common::noise64;

const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A content tree: `root/` served, `outside/secret.txt` beside it.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pkg: Vec<u8>,
    big: Vec<u8>,
}

const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-ROOT";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(root.join("apps/sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let pkg = noise64(1_000_003, 7);
    let big = noise64(24 << 20, 11);
    std::fs::write(root.join("apps/app.sft"), &pkg).unwrap();
    std::fs::write(
        root.join("apps/app.osd"),
        b"<?xml version=\"1.0\"?><SOFTPKG/>",
    )
    .unwrap();
    std::fs::write(root.join("apps/app.ico"), [0u8, 0, 1, 0]).unwrap();
    std::fs::write(root.join("apps/sub/listed-name.txt"), b"x").unwrap();
    std::fs::write(root.join("big.sft"), &big).unwrap();
    std::fs::write(root.join("empty.sft"), b"").unwrap();
    std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("escape.sft")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("outdir")).unwrap();
        std::os::unix::fs::symlink("apps/app.sft", root.join("inside-link.sft")).unwrap();
    }
    Fixture {
        _dir: dir,
        root,
        pkg,
        big,
    }
}

fn start(config: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn()
        .unwrap()
}

fn have_curl() -> bool {
    common::have("curl", "--version")
}

fn curl(args: &[&str]) -> Output {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `curl -D headers -o body -w %{http_code}`: (status, headers, body).
fn curl_get(url: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h");
    let b = dir.path().join("b");
    let mut args = vec![
        "-D",
        h.to_str().unwrap(),
        "-o",
        b.to_str().unwrap(),
        "-w",
        "%{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    let status = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let headers = std::fs::read_to_string(&h).unwrap_or_default();
    let body = std::fs::read(&b).unwrap_or_default();
    (status, headers, body)
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn url(h: &ServerHandle, path: &str) -> String {
    format!("http://{}{path}", h.local_addr())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Send `request`, read until the server closes: (status, head, body).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = connect(addr);
    s.write_all(request).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    split_response(&all)
}

fn split_response(all: &[u8]) -> (u16, String, Vec<u8>) {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, head, all[end + 4..].to_vec())
}

/// Read exactly one response with a Content-Length body from a kept-alive
/// connection.
fn read_one(s: &mut TcpStream, head_only: bool) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head");
        buf.push(byte[0]);
    }
    let (status, head, _) = split_response(&buf);
    let len: usize = if head_only {
        0
    } else {
        header(&head, "content-length").unwrap().parse().unwrap()
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, head, body)
}

/// Parts of a multipart/byteranges body: (Content-Range, data).
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .unwrap()
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], from: usize| {
        hay[from..]
            .windows(delim.len())
            .position(|w| w == delim.as_slice())
            .map(|p| p + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, 0).unwrap() + delim.len();
    loop {
        if body[at..].starts_with(b"--") {
            break;
        }
        assert!(body[at..].starts_with(b"\r\n"));
        let head_end = at
            + body[at..]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap();
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).into_owned();
        let data_start = head_end + 4;
        let next = find(body, data_start).unwrap();
        assert_eq!(&body[next - 2..next], b"\r\n");
        let cr = header(&head, "content-range").unwrap().to_owned();
        parts.push((cr, body[data_start..next - 2].to_vec()));
        at = next + delim.len();
    }
    parts
}

#[test]
fn full_get_head_and_content_types() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let (status, headers, body) = curl_get(&url(&h, "/apps/app.sft"), &[]);
    assert_eq!(status, 200);
    assert!(body == f.pkg, "full GET differs");
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/octet-stream")
    );
    let etag = header(&headers, "etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert!(header(&headers, "last-modified").unwrap().ends_with(" GMT"));

    // HEAD: same headers, no body.
    let out = curl(&["-I", &url(&h, "/apps/app.sft")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(header(&text, "content-length"), Some("1000003"));
    assert_eq!(header(&text, "etag"), Some(etag));

    for (path, ct) in [
        ("/apps/app.osd", "text/xml"),
        ("/apps/app.ico", "image/x-icon"),
        ("/apps/sub/listed-name.txt", "application/octet-stream"),
    ] {
        let (status, headers, _) = curl_get(&url(&h, path), &[]);
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "content-type"), Some(ct), "{path}");
    }
    let (status, headers, body) = curl_get(&url(&h, "/empty.sft"), &[]);
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&headers, "content-length"), Some("0"));
    // A symbolic link that stays inside the root is served.
    #[cfg(unix)]
    {
        let (status, _, body) = curl_get(&url(&h, "/inside-link.sft"), &[]);
        assert_eq!(status, 200);
        assert!(body == f.pkg);
    }
    h.shutdown().unwrap();
}

#[test]
fn single_suffix_and_open_ended_ranges() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let u = url(&h, "/apps/app.sft");
    let len = f.pkg.len();
    for (spec, range) in [
        ("100-199", 100..200),
        ("0-0", 0..1),
        ("999000-", 999_000..len),
        ("-4096", len - 4096..len),
        ("-99999999", 0..len),
        ("1000000-2000000", 1_000_000..len),
    ] {
        let (status, headers, body) = curl_get(&u, &["-r", spec]);
        assert_eq!(status, 206, "{spec}");
        assert_eq!(
            header(&headers, "content-range").unwrap(),
            format!("bytes {}-{}/{len}", range.start, range.end - 1),
            "{spec}"
        );
        assert!(body == f.pkg[range.clone()], "{spec}: wrong bytes");
    }
    h.shutdown().unwrap();
}

#[test]
fn multi_range_is_multipart_byteranges() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let len = f.pkg.len();
    let (status, headers, body) =
        curl_get(&url(&h, "/apps/app.sft"), &["-r", "0-99,5000-70535,-10"]);
    assert_eq!(status, 206);
    let ct = header(&headers, "content-type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    assert_eq!(
        header(&headers, "content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        body.len()
    );
    let parts = multipart_parts(ct, &body);
    let want = [0..100, 5000..70536, len - 10..len];
    assert_eq!(parts.len(), want.len());
    for ((cr, data), r) in parts.iter().zip(want) {
        assert_eq!(cr, &format!("bytes {}-{}/{len}", r.start, r.end - 1));
        assert!(data == &f.pkg[r], "{cr}: wrong bytes");
    }
    // Each part names the file's type.
    let (_, headers, body) = curl_get(&url(&h, "/apps/app.osd"), &["-r", "0-1,4-5"]);
    let ct = header(&headers, "content-type").unwrap();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(text.matches("Content-Type: text/xml").count(), 2, "{text}");
    assert_eq!(multipart_parts(ct, &body).len(), 2);
    // Overlapping and adjacent ranges are merged into one part.
    let (status, headers, body) = curl_get(&url(&h, "/apps/app.sft"), &["-r", "0-9,5-19,20-29"]);
    assert_eq!(status, 206);
    assert_eq!(
        header(&headers, "content-range"),
        Some("bytes 0-29/1000003")
    );
    assert!(body == f.pkg[..30]);
    h.shutdown().unwrap();
}

#[test]
fn if_range_and_conditional_requests() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let u = url(&h, "/apps/app.sft");
    let (_, headers, _) = curl_get(&u, &["-I"]);
    let etag = header(&headers, "etag").unwrap().to_owned();
    let lm = header(&headers, "last-modified").unwrap().to_owned();

    let if_range = |v: &str| curl_get(&u, &["-r", "10-19", "-H", &format!("If-Range: {v}")]);
    let (status, _, body) = if_range(&etag);
    assert_eq!(status, 206, "If-Range with the current ETag");
    assert!(body == f.pkg[10..20]);
    let (status, _, body) = if_range("\"some-older-version\"");
    assert_eq!(status, 200, "If-Range mismatch sends the whole file");
    assert!(body == f.pkg);
    let (status, _, _) = if_range(&format!("W/{etag}"));
    assert_eq!(status, 200, "weak tags never match If-Range");
    let (status, _, body) = if_range(&lm);
    assert_eq!(status, 206, "If-Range with Last-Modified");
    assert_eq!(body.len(), 10);
    let (status, _, body) = if_range("Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(status, 200, "If-Range with another date");
    assert_eq!(body.len(), f.pkg.len());

    let (status, _, body) = curl_get(&u, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, body) = curl_get(&u, &["-H", &format!("If-Modified-Since: {lm}")]);
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = curl_get(&u, &["-H", "If-None-Match: \"other\""]);
    assert_eq!(status, 200);
    let (status, _, _) = curl_get(&u, &["-H", "If-Match: \"other\""]);
    assert_eq!(status, 412);
    h.shutdown().unwrap();
}

#[test]
fn unsatisfiable_ranges_get_416() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    for spec in ["1000003-", "2000000-3000000", "-0"] {
        let (status, headers, _) = curl_get(&url(&h, "/apps/app.sft"), &["-r", spec]);
        assert_eq!(status, 416, "{spec}");
        assert_eq!(
            header(&headers, "content-range"),
            Some("bytes */1000003"),
            "{spec}"
        );
    }
    let (status, headers, _) = curl_get(&url(&h, "/empty.sft"), &["-r", "0-"]);
    assert_eq!(status, 416);
    assert_eq!(header(&headers, "content-range"), Some("bytes */0"));
    h.shutdown().unwrap();
}

#[test]
fn traversal_symlink_escapes_and_listings_are_refused() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let mut paths = vec![
        "/../outside/secret.txt",
        "/apps/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2E%2Foutside%2Fsecret.txt",
        "/apps/%2e%2e/%2e%2e/outside/secret.txt",
        "/..%5coutside%5csecret.txt",
        "/apps/app.sft%00.osd",
        "/",
        "/apps",
        "/apps/",
        "/apps/sub/",
    ];
    if cfg!(unix) {
        paths.extend(["/escape.sft", "/outdir/secret.txt", "/outdir/"]);
    }
    for p in paths {
        let (status, _, body) = curl_get(&url(&h, p), &["--path-as-is"]);
        assert!(matches!(status, 400 | 403 | 404), "{p}: status {status}");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("TOP-SECRET"), "{p} leaked the secret");
        assert!(!text.contains("listed-name"), "{p} listed a directory");
    }
    // Straight through a socket too (no client-side normalisation at all).
    for target in ["/../outside/secret.txt", "/apps/..\\..\\outside/secret.txt"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, _, body) = raw(h.local_addr(), req.as_bytes());
        assert!(matches!(status, 400 | 403), "{target}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("TOP-SECRET"));
    }
    h.shutdown().unwrap();
}

/// A regular file named in directory form, or with a component after it,
/// is 404 as nginx answers (it was served 200 for `/pkg.sft/`); the plain
/// name still serves the file.
#[test]
fn a_file_in_directory_form_is_not_found() {
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    for target in [
        "/apps/app.sft/",
        "/apps/app.sft/.",
        "/apps/app.sft//",
        "/apps/app.sft%2f",
        "/apps/app.sft/x",
        "/apps/app.sft/?v=1",
        "/inside-link.sft/",
    ] {
        for method in ["GET", "HEAD"] {
            let req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let (status, _, body) = raw(h.local_addr(), req.as_bytes());
            assert_eq!(status, 404, "{method} {target}");
            assert!(
                body.len() < 1000,
                "{method} {target}: {} body bytes",
                body.len()
            );
        }
    }
    let req = b"GET /apps/app.sft HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, _, body) = raw(h.local_addr(), req);
    assert_eq!(status, 200);
    assert!(body == f.pkg);
    h.shutdown().unwrap();
}

#[test]
fn https_with_a_generated_certificate() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let tls = tls_config_from_pem(&cert, &key).unwrap();
    let h = start(ServerConfig::new(&f.root).tls(tls));
    let port = h.local_addr().port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let u = format!("https://localhost:{port}/apps/app.sft");
    let ca = cert.to_str().unwrap();
    let (status, _, body) = curl_get(&u, &["--cacert", ca, "--resolve", &resolve]);
    assert_eq!(status, 200);
    assert!(body == f.pkg, "HTTPS body differs");
    let (status, headers, body) = curl_get(
        &u,
        &["--cacert", ca, "--resolve", &resolve, "-r", "0-9,-10"],
    );
    assert_eq!(status, 206);
    let parts = multipart_parts(header(&headers, "content-type").unwrap(), &body);
    assert_eq!(parts[1].1, f.pkg[f.pkg.len() - 10..]);
    // Without the CA, curl refuses the certificate: TLS really is on.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--resolve", &resolve, &u])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Bad PEM files are errors, not panics.
    assert!(tls_config_from_pem(&key, &key).is_err());
    assert!(tls_config_from_pem(&cert, &cert).is_err());
    h.shutdown().unwrap();
}

#[test]
fn sixty_four_concurrent_clients() {
    if !have_curl() {
        return;
    }
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let u = url(&h, "/big.sft");
    // curl writes to a pipe and each body is compared as it arrives: 64
    // copies of 24 MiB on disk would need 1.5 GiB of scratch space.
    let children: Vec<_> = (0..64)
        .map(|_| {
            Command::new("curl")
                .args(["-sS", "--max-time", "120", "-o", "-"])
                .arg(&u)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        let checks: Vec<_> = children
            .into_iter()
            .enumerate()
            .map(|(i, mut child)| {
                let want = &f.big;
                s.spawn(move || {
                    let mut out = child.stdout.take().unwrap();
                    let (mut at, mut buf) = (0usize, vec![0u8; 256 << 10]);
                    loop {
                        let n = out.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        assert!(
                            at + n <= want.len() && buf[..n] == want[at..at + n],
                            "client {i}: body differs at or after byte {at}"
                        );
                        at += n;
                    }
                    assert!(child.wait().unwrap().success(), "client {i}: curl failed");
                    assert_eq!(at, want.len(), "client {i}: short body");
                })
            })
            .collect();
        for c in checks {
            c.join().unwrap();
        }
    });
    h.shutdown().unwrap();
}

#[test]
fn bad_requests_get_4xx() {
    let f = fixture();
    let h = start(ServerConfig::new(&f.root).max_header_bytes(16 * 1024));
    let a = h.local_addr();
    let get = |extra: &str| {
        format!("GET /apps/app.sft HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n")
    };
    for bad_range in ["bytes=abc", "bytes=9-1", "bytes=", "bytes=1-2;3"] {
        let (status, head, _) = raw(a, get(&format!("Range: {bad_range}\r\n")).as_bytes());
        assert_eq!(status, 416, "{bad_range}");
        assert!(head.contains("Content-Range: bytes */1000003"), "{head}");
    }
    // Another unit, or too many ranges: ignored, the whole file.
    let (status, _, body) = raw(a, get("Range: items=0-1\r\n").as_bytes());
    assert_eq!((status, body.len()), (200, 1_000_003));
    let many = (0..40)
        .map(|i| format!("{}-{}", i * 10, i * 10))
        .collect::<Vec<_>>();
    let (status, _, body) = raw(
        a,
        get(&format!("Range: bytes={}\r\n", many.join(","))).as_bytes(),
    );
    assert_eq!((status, body.len()), (200, 1_000_003));

    // Overlong headers.
    let long = format!("X-Filler: {}\r\n", "a".repeat(20 * 1024));
    let (status, _, _) = raw(a, get(&long).as_bytes());
    assert_eq!(status, 431);
    let many_headers: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (status, _, _) = raw(a, get(&many_headers).as_bytes());
    assert_eq!(status, 431);

    for (req, want) in [
        (&b"garbage\r\n\r\n"[..], 400),
        (b"GET /apps/app.sft HTTP/1.1\r\n\r\n", 400), // no Host
        (
            b"GET /apps/app.sft HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            b"GET /apps/app.sft HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            b"GET /apps/app.sft HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
            400,
        ),
        (
            b"GET /apps/app.sft HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n",
            413,
        ),
        (b"GET /apps/app.sft HTTP/2.0\r\nHost: a\r\n\r\n", 400),
        (
            b"GET apps/app.sft HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            400,
        ),
        (
            b"GET /a%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            400,
        ),
    ] {
        let (status, head, _) = raw(a, req);
        assert_eq!(status, want, "{}: {head}", String::from_utf8_lossy(req));
    }
    let (status, head, _) = raw(
        a,
        b"POST /apps/app.sft HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
    // A small body on a GET is read and dropped; the next request works.
    let mut s = connect(a);
    s.write_all(b"GET /apps/app.osd HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /apps/app.osd HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    for _ in 0..2 {
        let (status, _, body) = read_one(&mut s, false);
        assert_eq!(status, 200);
        assert_eq!(body, b"<?xml version=\"1.0\"?><SOFTPKG/>");
    }
    h.shutdown().unwrap();
}

#[test]
fn keep_alive_pipelining_and_http10() {
    let f = fixture();
    let h = start(ServerConfig::new(&f.root));
    let a = h.local_addr();
    let mut s = connect(a);
    // Two pipelined requests, then a HEAD, on one connection.
    s.write_all(
        b"GET /apps/app.sft HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n\
          GET /apps/app.osd HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let (status, _, body) = read_one(&mut s, false);
    assert_eq!((status, body.as_slice()), (206, &f.pkg[..10]));
    let (status, _, body) = read_one(&mut s, false);
    assert_eq!(status, 200);
    assert_eq!(body.len(), 31);
    s.write_all(b"HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_one(&mut s, true);
    assert_eq!(status, 404);
    assert!(!head.contains("Connection: close"), "{head}");
    s.write_all(b"HEAD /apps/app.sft HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, head, _) = read_one(&mut s, true);
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close"), "{head}");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no body after HEAD, then close");

    // HTTP/1.0: closes unless asked to keep alive.
    let (status, _, body) = raw(a, b"GET /apps/app.osd HTTP/1.0\r\n\r\n");
    assert_eq!((status, body.len()), (200, 31));
    let mut s = connect(a);
    s.write_all(b"GET /apps/app.osd HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (_, head, _) = read_one(&mut s, false);
    assert!(head.contains("Connection: keep-alive"), "{head}");
    s.write_all(b"GET /apps/app.ico HTTP/1.0\r\n\r\n").unwrap();
    let (status, _, body) = read_one(&mut s, false);
    assert_eq!((status, body.len()), (200, 4));
    h.shutdown().unwrap();
}

#[test]
fn stalled_and_vanishing_clients_do_not_hurt_others() {
    let f = fixture();
    let h = start(
        ServerConfig::new(&f.root)
            .header_timeout(Duration::from_secs(1))
            .write_timeout(Duration::from_secs(2)),
    );
    let a = h.local_addr();
    let stop = h.shutdown_handle();

    // Half a request, then silence.
    let mut stalled = connect(a);
    stalled
        .write_all(b"GET /apps/app.sft HTTP/1.1\r\nHo")
        .unwrap();
    // A client that reads 64 KiB of a 24 MiB body and vanishes.
    let mut quitter = connect(a);
    quitter
        .write_all(b"GET /big.sft HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 64 * 1024];
    quitter.read_exact(&mut first).unwrap();
    drop(quitter);
    // A client that never reads a 24 MiB body (the write timeout frees it).
    let mut sleeper = connect(a);
    sleeper
        .write_all(b"GET /big.sft HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();

    // Meanwhile others are served in full.
    for _ in 0..3 {
        let (status, _, body) = raw(
            a,
            b"GET /big.sft HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert!(body == f.big);
    }

    // The stalled client gets 408 once its header time is up.
    let t = Instant::now();
    let mut answer = Vec::new();
    let _ = stalled.read_to_end(&mut answer);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        answer.starts_with(b"HTTP/1.1 408 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // A connection that sends nothing at all is closed silently.
    let mut silent = connect(a);
    let mut buf = [0u8; 16];
    assert_eq!(silent.read(&mut buf).unwrap_or(0), 0);

    // Every one of those threads ends (the sleeper through its write timeout).
    let deadline = Instant::now() + Duration::from_secs(15);
    while stop.active_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stop.active_connections(), 0);
    drop(sleeper);
    h.shutdown().unwrap();
}

/// An HTTPS client that trickles its TLS handshake (a byte every 100 ms)
/// or sends nothing is cut off at the head timeout from the accept (the
/// trickler held its slot for as long as it kept sending: rustls'
/// `complete_io` reads on while bytes come).
#[test]
fn a_trickled_tls_handshake_is_cut_off_at_the_head_timeout() {
    let f = fixture();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let timeout = Duration::from_secs(2); // room for a descheduled test thread on a loaded CI machine
    let h = start(
        ServerConfig::new(&f.root)
            .tls(tls_config_from_pem(&cert, &key).unwrap())
            .max_connections(2)
            .header_timeout(timeout),
    );
    let (a, stop) = (h.local_addr(), h.shutdown_handle());
    let started = Instant::now();
    let silent = connect(a);
    let trickler = connect(a);
    let trickling = std::thread::spawn(move || {
        let mut t = trickler;
        let mut bytes = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        bytes.resize(517, b'a');
        let begun = Instant::now();
        for b in bytes {
            if t.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        begun.elapsed()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while stop.active_connections() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stop.active_connections(), 2);
    let deadline = started + timeout + Duration::from_secs(3);
    while stop.active_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stop.active_connections(),
        0,
        "still held after {:?}",
        started.elapsed()
    );
    assert!(started.elapsed() >= timeout);
    assert!(trickling.join().unwrap() < Duration::from_secs(10));
    drop(silent);
    h.shutdown().unwrap();

    // Plain HTTP: a head trickled past the head timeout gets 408, and the
    // close that follows does not read the trickle on for 64 KiB of it.
    let h = start(ServerConfig::new(&f.root).header_timeout(timeout));
    let (a, stop) = (h.local_addr(), h.shutdown_handle());
    let started = Instant::now();
    let trickler = connect(a);
    let trickling = std::thread::spawn(move || {
        let mut t = trickler;
        let mut bytes = b"GET /apps/app.sft HTTP/1.1\r\nX-Pad: ".to_vec();
        bytes.resize(600, b'a');
        for b in bytes {
            if t.write_all(&[b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let deadline = started + timeout + Duration::from_secs(3);
    while (stop.active_connections() > 0 || started.elapsed() < timeout)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stop.active_connections(),
        0,
        "still held after {:?}",
        started.elapsed()
    );
    trickling.join().unwrap();
    h.shutdown().unwrap();
}

#[test]
fn connection_limit_answers_503() {
    let f = fixture();
    let h = start(
        ServerConfig::new(&f.root)
            .max_connections(2)
            .header_timeout(Duration::from_secs(5)),
    );
    let a = h.local_addr();
    let stop = h.shutdown_handle();
    let idle1 = connect(a);
    let idle2 = connect(a);
    let deadline = Instant::now() + Duration::from_secs(5);
    while stop.active_connections() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, head, _) = raw(a, b"GET /apps/app.osd HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status, 503, "{head}");
    drop((idle1, idle2));
    // Once they are gone, requests are served again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _, _) = raw(
            a,
            b"GET /apps/app.osd HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        );
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "still {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
    h.shutdown().unwrap();
}

#[test]
fn graceful_shutdown_finishes_requests_in_flight() {
    let f = fixture();
    let log = Arc::new(Mutex::new(Vec::new()));
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let h = start(ServerConfig::new(&f.root).access_log(AccessLog::new(Shared(Arc::clone(&log)))));
    let a = h.local_addr();
    let mut s = connect(a);
    s.write_all(b"GET /big.sft HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer hunter2\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 1024];
    let n = s.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK"));
    // An idle kept-alive connection does not hold the shutdown up.
    let mut idle = connect(a);

    let t = Instant::now();
    let stopper = std::thread::spawn(move || h.shutdown());
    // The listener is closed while the transfer is still going: wait for
    // that (a deadline, not a guess at how long the shutdown takes).
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok() {
        assert!(Instant::now() < deadline, "the listener is still open");
        std::thread::sleep(Duration::from_millis(5)); // polling, not synchronisation
    }
    let (_, _, partial) = split_response(&head[..n]);
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(
        partial.len() + rest.len(),
        f.big.len(),
        "transfer completed"
    );
    let mut buf = [0u8; 1];
    assert_eq!(
        idle.read(&mut buf).unwrap_or(0),
        0,
        "idle connection closed"
    );
    stopper.join().unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10));

    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("\"GET /big.sft HTTP/1.1\" 200 25165824 "),
        "{log}"
    );
    assert!(!log.contains("hunter2"));
}

#[cfg(feature = "cli")]
#[test]
fn sft_serve_binary() {
    use std::io::BufRead;
    if !have_curl() {
        return;
    }
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["serve", "--http", "127.0.0.1:0", "--content"])
        .arg(&f.root)
        .arg("--access-log")
        .arg(&log_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let kill_on_panic = scopeguard(child.id());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let (status, _, body) = curl_get(&format!("{base}/apps/app.sft"), &["-r", "5-14"]);
    assert_eq!(status, 206);
    assert_eq!(body, f.pkg[5..15]);

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "sft serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::mem::forget(kill_on_panic);
    assert!(status.success(), "exit status {status}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("\"GET /apps/app.sft HTTP/1.1\" 206 10 "),
        "{log}"
    );

    // Usage errors exit with 2.
    let out = Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(["serve", "--http", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Kills a child process by id if dropped (a failed assertion).
#[cfg(feature = "cli")]
fn scopeguard(pid: u32) -> impl Drop {
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
    Kill(pid)
}

/// 64 concurrent clients fetch a real package fully through our HTTP
/// client and the streaming core (`sft::fetch::fetch_spec`, every block
/// checked), from our server; every result is byte-identical and verifies.
#[cfg(all(feature = "http", feature = "write"))]
#[test]
fn sixty_four_verified_fetches() {
    use sft::fetch::{FetchOptions, fetch_spec};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let mut b = sft::write::PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(sft::write::BlockSize::K16)
            .name("Concurrent"),
    );
    b.add_bytes("app.exe", noise64(600_000, 21)).unwrap();
    // Small enough that 64 copies stay under 150 MB of scratch space.
    b.add_bytes("data/big.bin", noise64(1_000_000, 22)).unwrap();
    let text: Vec<u8> = b"streaming to many clients; "
        .iter()
        .copied()
        .cycle()
        .take(500_000)
        .collect();
    b.add_bytes("data/readme.txt", text).unwrap();
    b.launch_list(sft::write::parse_launch_list("app.exe\n").unwrap());
    let pkg = b.write_to_vec().unwrap();
    std::fs::write(root.join("app.sft"), &pkg).unwrap();
    let h = start(ServerConfig::new(&root));
    let u = url(&h, "/app.sft");
    let outs = dir.path().join("out");
    std::fs::create_dir_all(&outs).unwrap();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|i| {
                let (u, out) = (u.clone(), outs.join(format!("c{i}.sft")));
                s.spawn(move || {
                    let r = fetch_spec(&u, &out, FetchOptions::default());
                    (r.map(|r| r.complete), out)
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (r, out) in results {
        assert!(r.unwrap(), "{} incomplete", out.display());
        let got = std::fs::read(&out).unwrap();
        assert!(got == pkg, "{} differs", out.display());
        sft::Package::parse(&got).unwrap().verify().unwrap();
    }
    h.shutdown().unwrap();
}
