//! `RtspSource` (`sft::transport::rtsp::client`) against our RTSP server, on
//! loopback only: full streams through `sft::stream::blocking::drive`,
//! pipelined fetches, a proxy that drops the connection mid-stream, RTSPS
//! with a CA file, active upgrade seen from the client.
#![cfg(all(feature = "rtsp", feature = "rtsp-server"))]
#![allow(clippy::single_range_in_vec_init)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sft::Guid;
use sft::stream::{Event, RangeSource, SessionConfig, StreamSession, TransportErrorKind, blocking};
use sft::transport::rtsp::client::{RtspOptions, RtspSource, is_rtsp_url};
use sft::transport::rtsp::server::{Server, ServerConfig, ServerHandle};

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
    blocking::drive_with(&mut session, src, &mut copy, &mut |e| {
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
