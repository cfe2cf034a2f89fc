//! `RtspSource` (`sft::net::rtsp`) against our RTSP server, on
//! loopback only: full streams through `sft::io::drive::drive`,
//! pipelined fetches, a proxy that drops the connection mid-stream, RTSPS
//! with a CA file, active upgrade seen from the client.
#![cfg(all(feature = "rtsp", feature = "rtsp-server"))]
#![allow(clippy::single_range_in_vec_init)]

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sft::Guid;
use sft::io::{RangeSource, drive};
use sft::net::rtsp::{RtspOptions, RtspSource, is_rtsp_url};
use sft::serve::rtsp::{Server, ServerConfig, ServerHandle};
use sft::stream::{Event, SessionConfig, StreamSession, TransportErrorKind};

use common::served::Fixture;

fn package(len: usize, version: u32) -> Vec<u8> {
    common::served::package(
        "rtsp-client-test",
        Guid([0x3C; 16]),
        version,
        "lib/rest.bin",
        (2, 5),
        len,
    )
}

fn fixture(len: usize) -> Fixture {
    common::served::fixture(package(len, 1), "app.sft")
}

fn start(config: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn()
        .unwrap()
}

fn opts() -> RtspOptions {
    RtspOptions::default().timeout(Duration::from_secs(20))
}

/// Stream the whole package through a session; the copy and the events.
fn stream_all(src: &RtspSource) -> (Vec<u8>, Vec<String>) {
    let mut session = StreamSession::new(SessionConfig::default().max_request_bytes(256 * 1024));
    let mut copy = Vec::new();
    let mut events = Vec::new();
    drive::drive_with(&mut session, src, &mut copy, &mut |e| {
        if matches!(e, Event::LaunchReady | Event::Complete) {
            events.push(format!("{e:?}"));
        }
    })
    .unwrap();
    (copy, events)
}

#[test]
fn full_fetch_through_the_session_is_byte_identical() {
    let f = fixture(3_000_000);
    let server = start(ServerConfig::new(&f.root));
    let url = format!("rtsp://{}/app.sft", server.local_addr());
    assert!(is_rtsp_url(&url));
    let src = RtspSource::open(&url, &opts()).unwrap();
    assert_eq!(src.len().unwrap(), f.pkg.len() as u64);
    assert_eq!(src.package_version(), 1);
    let (copy, events) = stream_all(&src);
    assert_eq!(events, ["LaunchReady", "Complete"]);
    assert!(copy == f.pkg, "streamed copy differs");
    assert_eq!(src.reconnects(), 0);
    server.shutdown().unwrap();
}

#[test]
fn pipelined_ranges_arrive_once_each_in_any_order() {
    let f = fixture(1_000_000);
    let server = start(ServerConfig::new(&f.root));
    let src = RtspSource::open(
        &format!("rtsp://{}/app.sft", server.local_addr()),
        &opts().pipeline_depth(3),
    )
    .unwrap();
    // 300 small ranges: 5 requests of 64, 3 in flight.
    let ranges: Vec<_> = (0..300u64).map(|i| i * 3000..i * 3000 + 1000).collect();
    let mut seen = vec![0u8; f.pkg.len()];
    let mut count = vec![0u32; f.pkg.len()];
    src.read_ranges(&ranges, &mut |at, data| {
        for (i, b) in data.iter().enumerate() {
            seen[at as usize + i] = *b;
            count[at as usize + i] += 1;
        }
        ControlFlow::Continue(())
    })
    .unwrap();
    for r in &ranges {
        let (s, e) = (r.start as usize, r.end as usize);
        assert_eq!(&seen[s..e], &f.pkg[s..e]);
        assert!(count[s..e].iter().all(|&c| c == 1));
    }
    let mut one = [0u8; 10];
    src.read_exact_at(5, &mut one).unwrap();
    assert_eq!(&one, &f.pkg[5..15]);
    let e = src
        .read_ranges(&[0..f.pkg.len() as u64 + 1], &mut |_, _| {
            ControlFlow::Continue(())
        })
        .unwrap_err();
    assert_eq!(e.kind(), TransportErrorKind::RangeNotSatisfiable);
    server.shutdown().unwrap();
}

/// A TCP proxy that records what clients send, for counting requests.
fn recording_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = Arc::clone(&sent);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let server = TcpStream::connect(upstream).unwrap();
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_r.read(&mut buf) {
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                    if n == 0 || s_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_w.shutdown(Shutdown::Both);
            });
            let (mut s_r, mut c_w) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_r, &mut c_w);
                let _ = c_w.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, sent)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn will_read_then_reads_in_order_make_one_fetch_and_other_reads_still_work() {
    let f = fixture(3_000_000);
    let server = start(ServerConfig::new(&f.root));
    let (proxy, sent) = recording_proxy(server.local_addr());
    let src = RtspSource::open(&format!("rtsp://{proxy}/app.sft"), &opts()).unwrap();
    let len = src.len().unwrap();
    let fetches = || count(&sent.lock().unwrap(), b"SET_PARAMETER ");
    assert_eq!(fetches(), 0);

    // The whole package in pieces that match no packet boundary.
    src.will_read(0..len);
    let mut copy = vec![0u8; f.pkg.len()];
    for piece in copy.chunks_mut(100_003).enumerate() {
        let (i, buf) = piece;
        src.read_exact_at((i * 100_003) as u64, buf).unwrap();
    }
    assert!(copy == f.pkg, "streamed copy differs");
    assert_eq!(fetches(), 1, "one fetch for the planned range");

    // A read that does not follow the plan is still served, by a fetch
    // of its own: first a short abandoned stream (drained), then a long
    // one (the connection is dropped and made again).
    for left_over in [200_000u64, 2_500_000] {
        let start = len - left_over - 10_000;
        src.will_read(start..len);
        let mut first = vec![0u8; 10_000];
        src.read_exact_at(start, &mut first).unwrap();
        assert_eq!(first, f.pkg[start as usize..start as usize + 10_000]);
        let mut other = [0u8; 5000];
        src.read_exact_at(1000, &mut other).unwrap();
        assert_eq!(&other[..], &f.pkg[1000..6000]);
        let mut tail = [0u8; 100];
        src.read_exact_at(len - 100, &mut tail).unwrap();
        assert_eq!(&tail[..], &f.pkg[f.pkg.len() - 100..]);
    }
    assert_eq!(src.reconnects(), 0, "no failure on the way");
    server.shutdown().unwrap();
}

/// A TCP proxy that cuts each of the first `cuts` connections after the
/// server has sent `after` bytes on it.
fn cutting_proxy(upstream: SocketAddr, after: usize, cuts: usize) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let conns = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if stop2.load(Ordering::Relaxed) {
                break;
            }
            let Ok(client) = client else { continue };
            let n = conns.fetch_add(1, Ordering::SeqCst);
            let limit = if n < cuts { after } else { usize::MAX };
            let server = TcpStream::connect(upstream).unwrap();
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_r.read(&mut buf) {
                    if n == 0 || s_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_w.shutdown(Shutdown::Both);
            });
            let (mut s_r, mut c_w) = (server, client);
            std::thread::spawn(move || {
                let mut sent = 0usize;
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_r.read(&mut buf) {
                    let n = n.min(limit - sent);
                    if n == 0 || c_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                }
                let _ = c_w.shutdown(Shutdown::Both);
                let _ = s_r.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, stop)
}

#[test]
fn resumes_after_dropped_connections_byte_identical() {
    let f = fixture(4_000_000);
    let server = start(ServerConfig::new(&f.root));
    // The first connection dies after ~1.5 MB, the second after ~1.5 MB
    // more of its own; then the stream completes.
    let (proxy, stop) = cutting_proxy(server.local_addr(), 1_500_000, 2);
    let src =
        RtspSource::open(&format!("rtsp://{proxy}/app.sft"), &opts().max_attempts(5)).unwrap();
    let (copy, events) = stream_all(&src);
    assert_eq!(events, ["LaunchReady", "Complete"]);
    assert!(copy == f.pkg, "resumed copy differs");
    assert!(src.reconnects() >= 2, "reconnects: {}", src.reconnects());
    stop.store(true, Ordering::Relaxed);
    server.shutdown().unwrap();
}

#[test]
fn rtsps_with_a_ca_file() {
    let f = fixture(1_200_000);
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca = f.root.parent().unwrap().join("ca.pem");
    std::fs::write(&ca, ck.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    let server = start(ServerConfig::new(&f.root).tls(Arc::new(tls)));
    let port = server.local_addr().port();
    let url = format!("rtsps://localhost:{port}/app.sft");
    let src = RtspSource::open(&url, &opts().ca_file(&ca)).unwrap();
    let (copy, _) = stream_all(&src);
    assert!(copy == f.pkg);
    // Without the CA (system roots only) the handshake fails, at once:
    // a refused certificate is not retried.
    let t = std::time::Instant::now();
    let err = RtspSource::open(&url, &opts().max_attempts(4)).unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.to_string().contains("not signed by a trusted CA"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    server.shutdown().unwrap();
}

#[test]
fn missing_package_is_not_found_and_upgrade_is_visible() {
    let f = fixture(500_000);
    let server = start(
        ServerConfig::new(&f.root)
            .rescan_interval(Duration::ZERO)
            .settle_time(Duration::ZERO),
    );
    let addr = server.local_addr();
    let err = RtspSource::open(&format!("rtsp://{addr}/nope.sft"), &opts()).unwrap_err();
    assert_eq!(err.kind(), TransportErrorKind::NotFound);
    let src = RtspSource::open(&format!("rtsp://{addr}/app.sft"), &opts()).unwrap();
    assert_eq!(src.latest_version().unwrap(), 1);
    let v2 = package(600_000, 2);
    std::fs::write(f.root.join("app_2.sft"), &v2).unwrap();
    assert_eq!(src.latest_version().unwrap(), 2);
    // The open source still streams version 1; a new one gets version 2.
    assert!(stream_all(&src).0 == f.pkg);
    let src2 = RtspSource::open(&format!("rtsp://{addr}/app.sft"), &opts()).unwrap();
    assert_eq!(src2.package_version(), 2);
    assert!(stream_all(&src2).0 == v2);
    server.shutdown().unwrap();
}

/// A TCP proxy that flips one byte (XOR 0xFF) of what the server sends on
/// the first connection: the byte `delta` after the first `$` (the first
/// interleaved frame: the prologue's first fetch), or with `delta` None
/// the byte at stream offset 5 (the status line of DESCRIBE's answer).
/// Later connections pass everything through. The count of flips.
fn flipping_proxy(upstream: SocketAddr, delta: Option<usize>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let flips = Arc::new(AtomicUsize::new(0));
    let flips2 = Arc::clone(&flips);
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(upstream) else {
                continue;
            };
            let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(k) = c_r.read(&mut buf) {
                    if k == 0 || s_w.write_all(&buf[..k]).is_err() {
                        break;
                    }
                }
                let _ = s_w.shutdown(Shutdown::Both);
            });
            let flips = Arc::clone(&flips2);
            let (mut s_r, mut c_w) = (server, client);
            std::thread::spawn(move || {
                let mut seen = 0usize;
                let mut target = if n == 0 {
                    delta.map_or(Some(5), |_| None)
                } else {
                    None
                };
                let mut waiting_dollar = n == 0 && delta.is_some();
                let mut buf = [0u8; 16384];
                while let Ok(k) = s_r.read(&mut buf) {
                    if k == 0 {
                        break;
                    }
                    if waiting_dollar && let Some(i) = buf[..k].iter().position(|&b| b == b'$') {
                        target = Some(seen + i + delta.unwrap_or(0));
                        waiting_dollar = false;
                    }
                    if let Some(t) = target
                        && (seen..seen + k).contains(&t)
                    {
                        buf[t - seen] ^= 0xFF;
                        flips.fetch_add(1, Ordering::SeqCst);
                        target = None;
                    }
                    seen += k;
                    if c_w.write_all(&buf[..k]).is_err() {
                        break;
                    }
                }
                let _ = c_w.shutdown(Shutdown::Both);
                let _ = s_r.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, flips)
}

/// One flipped byte in the RTSP framing while the prologue is read (or in
/// the answer to DESCRIBE) makes the client reconnect and finish the
/// stream byte for byte, within the attempt budget and without a stall
/// longer than its timeout (it failed at once with a protocol error, or
/// stalled then failed).
#[test]
fn a_flipped_byte_in_the_framing_is_recovered_by_reconnecting() {
    let f = fixture(1_000_000);
    let server = start(ServerConfig::new(&f.root));
    // None: the DESCRIBE status line; then the `$`, the channel, both
    // length bytes, the RTP version byte, the RTP sequence number, the
    // payload offset, the tag and the flags of the first data frame.
    let cases = [
        None,
        Some(0),
        Some(1),
        Some(2),
        Some(3),
        Some(4),
        Some(6),
        Some(20),
        Some(27),
        Some(28),
    ];
    for delta in cases {
        let (proxy, flips) = flipping_proxy(server.local_addr(), delta);
        let t = std::time::Instant::now();
        let src = RtspSource::open(
            &format!("rtsp://{proxy}/app.sft"),
            // The transport's own reconnects (opt-in; a session retries
            // the stream by default, but opening is the transport's).
            &RtspOptions::default()
                .timeout(Duration::from_secs(2))
                .max_attempts(4),
        )
        .unwrap_or_else(|e| panic!("flip at {delta:?}: open: {e}"));
        let mut session =
            StreamSession::new(SessionConfig::default().max_request_bytes(256 * 1024));
        let mut copy = Vec::new();
        drive::drive(&mut session, &src, &mut copy)
            .unwrap_or_else(|e| panic!("flip at {delta:?}: {e}"));
        assert!(copy == f.pkg, "flip at {delta:?}: the copy differs");
        assert_eq!(flips.load(Ordering::SeqCst), 1, "flip at {delta:?}");
        // These break the framing or the packet header for certain (the
        // others may land where the client does not look, e.g. the
        // sequence number).
        if matches!(delta, Some(0 | 4 | 20 | 27)) {
            assert!(src.reconnects() >= 1, "flip at {delta:?}: no reconnect");
        }
        // At most one stall of the 2 s timeout, plus back-off.
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "flip at {delta:?}: {:?}",
            t.elapsed()
        );
    }
    server.shutdown().unwrap();
}

/// `openssl req -x509 -newkey … -subj /CN=localhost [-addext SAN]` into
/// `dir`: (cert.pem, key.pem). OpenSSL 3 marks it `CA:TRUE`.
fn openssl_self_signed(
    dir: &std::path::Path,
    name: &str,
    san: Option<&str>,
) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let mut cmd = std::process::Command::new("openssl");
    cmd.args([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
    ])
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    if let Some(san) = san {
        cmd.args(["-addext", &format!("subjectAltName={san}")]);
    }
    match cmd.output() {
        Ok(o) if o.status.success() => Some((cert, key)),
        Ok(o) => panic!("openssl req failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) if std::env::var_os("SFT_REQUIRE_SERVERS").is_none() => {
            eprintln!("SKIPPED: openssl not installed");
            None
        }
        Err(e) => panic!("openssl: {e}"),
    }
}

fn tls_from_pem(cert: &std::path::Path, key: &std::path::Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap(),
    )
}

/// The everyday self-signed certificate (`openssl req -x509`, CA:TRUE,
/// with or without subjectAltName) given with `--ca-file` is pinned and
/// the stream works (it was refused: CaUsedAsEndEntity); another
/// self-signed certificate in the CA file is refused at once with a hint
/// that says how to make a proper one.
#[test]
fn rtsps_pins_an_openssl_self_signed_certificate() {
    let f = fixture(600_000);
    let dir = f.root.parent().unwrap().to_path_buf();
    for (i, san) in [
        Some("DNS:localhost,IP:127.0.0.1"),
        None,
        Some("DNS:localhost"),
    ]
    .into_iter()
    .enumerate()
    {
        let Some((cert, key)) = openssl_self_signed(&dir, &format!("server-{i}"), san) else {
            return;
        };
        let (other, _) = openssl_self_signed(&dir, &format!("other-{i}"), san).unwrap();
        let server = start(ServerConfig::new(&f.root).tls(tls_from_pem(&cert, &key)));
        let port = server.local_addr().port();
        let hosts: &[&str] = if i == 2 {
            &["localhost"]
        } else {
            &["localhost", "127.0.0.1"]
        };
        for host in hosts {
            let url = format!("rtsps://{host}:{port}/app.sft");
            let src = RtspSource::open(&url, &opts().ca_file(&cert))
                .unwrap_or_else(|e| panic!("san {san:?}, {host}: {e}"));
            assert!(stream_all(&src).0 == f.pkg);
            let t = std::time::Instant::now();
            let err = RtspSource::open(&url, &opts().ca_file(&other)).unwrap_err();
            assert!(!err.is_retryable(), "{err}");
            let text = err.to_string();
            assert!(
                text.contains("CA:FALSE") && text.contains("--ca-file"),
                "{text}"
            );
            assert!(t.elapsed() < Duration::from_secs(5));
        }
        if i == 2 {
            // Pinned, but reached by a name its subjectAltName lacks.
            let url = format!("rtsps://127.0.0.1:{port}/app.sft");
            let err = RtspSource::open(&url, &opts().ca_file(&cert)).unwrap_err();
            assert!(err.to_string().contains("does not name the host"), "{err}");
        }
        server.shutdown().unwrap();
    }
}
