//! The RTSP streaming server (`sft::serve::rtsp`) driven by
//! real third-party clients (ffprobe, GStreamer's rtspsrc) and by raw
//! sockets, on loopback only.
//!
//! Without `ffprobe` / `gst-launch-1.0` those tests print
//! `SKIPPED: ffprobe not installed` (or gst-launch-1.0) and pass, unless
//! `SFT_REQUIRE_SERVERS=1` (as in CI), where they fail.
#![cfg(feature = "rtsp-server")]

use crate::common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sft::Guid;
use sft::proto::rtsp as proto;
use sft::proto::rtsp::{FLAG_END, Frame, Limits, PacketHeader};
use sft::serve::rtsp::{Server, ServerConfig, ServerHandle};

use common::served::Fixture;
use common::{have, noise64};

const IO_TIMEOUT: Duration = Duration::from_secs(20);
const PKG_GUID: Guid = Guid([0x5A; 16]);

/// A package of `len` data bytes, version `version` of [`PKG_GUID`].
fn package(len: usize, version: u32) -> Vec<u8> {
    common::served::package("rtsp-test", PKG_GUID, version, "data/rest.bin", (1, 9), len)
}

/// The package as `apps/app.sft`, and `secret.sft` beside the root.
fn fixture(len: usize) -> Fixture {
    let f = common::served::fixture(package(len, 1), "apps/app.sft");
    std::fs::write(f.dir.path().join("secret.sft"), b"outside").unwrap();
    f
}

fn start(config: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0", config)
        .unwrap()
        .spawn()
        .unwrap()
}

/// Run a command with a hard time limit; (exit success, stdout+stderr).
fn run_limited(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = t1.join().unwrap() + &t2.join().unwrap();
    (status.is_some_and(|s| s.success()), text)
}

// ---------------------------------------------------------------------------
// A raw RTSP client over any stream, built on the crate's own decoder.

struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct Raw<S: Read + Write> {
    s: S,
    buf: Vec<u8>,
    cseq: u32,
    session: Option<String>,
    /// Data received: offset -> bytes (tag, bytes).
    data: Vec<(u64, u32, Vec<u8>)>,
    ends: u32,
    rtcp: usize,
}

fn raw(addr: SocketAddr) -> Raw<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    Raw::new(s)
}

impl<S: Read + Write> Raw<S> {
    fn new(s: S) -> Self {
        Raw {
            s,
            buf: Vec::new(),
            cseq: 0,
            session: None,
            data: Vec::new(),
            ends: 0,
            rtcp: 0,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.flush().unwrap();
    }

    /// Read until a response arrives; None on EOF / error.
    fn next(&mut self) -> Option<Result<Reply, ()>> {
        loop {
            match self.next_item()? {
                Ok(Some(r)) => return Some(Ok(r)),
                Ok(None) => {}
                Err(()) => return Some(Err(())),
            }
        }
    }

    /// Read until one item is complete: a response (`Some`) or a data
    /// frame (`None`); None on EOF / error.
    fn next_item(&mut self) -> Option<Result<Option<Reply>, ()>> {
        loop {
            match proto::decode(&self.buf, &Limits::default()) {
                Ok(Some((frame, used))) => {
                    let item = match frame {
                        Frame::Response(r) => {
                            let headers = r
                                .headers()
                                .map(|(n, v)| {
                                    (n.as_str().to_ascii_lowercase(), v.as_str().to_owned())
                                })
                                .collect();
                            Ok(Some(Reply {
                                status: u16::from(r.status()),
                                headers,
                                body: r.body().clone(),
                            }))
                        }
                        Frame::Data { channel, payload } => {
                            if channel % 2 == 1 {
                                self.rtcp += 1;
                            } else {
                                let (h, d) = PacketHeader::parse(payload).expect("sft packet");
                                if h.flags & FLAG_END != 0 {
                                    self.ends += 1;
                                }
                                self.data.push((h.offset, h.tag, d.to_vec()));
                            }
                            Ok(None)
                        }
                        Frame::Request(_) => Err(()),
                    };
                    self.buf.drain(..used);
                    return Some(item);
                }
                Ok(None) => {}
                Err(_) => return Some(Err(())),
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Err(e) => {
                    eprintln!("read error: {e}");
                    return None;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn request(&mut self, method: &str, url: &str, extra: &[(&str, &str)], body: &str) -> Reply {
        self.cseq += 1;
        let mut m = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        if let Some(s) = &self.session {
            m.push_str(&format!("Session: {s}\r\n"));
        }
        for (k, v) in extra {
            m.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            m.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        m.push_str("\r\n");
        m.push_str(body);
        self.send_raw(m.as_bytes());
        let r = self.next().expect("a response").expect("a valid response");
        assert_eq!(
            r.h("cseq"),
            Some(self.cseq.to_string().as_str()),
            "CSeq echoed"
        );
        r
    }

    fn setup(&mut self, url: &str) -> Reply {
        let r = self.request(
            "SETUP",
            url,
            &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")],
            "",
        );
        if r.status == 200 {
            self.session = r
                .h("session")
                .map(|s| s.split(';').next().unwrap().to_owned());
        }
        r
    }

    /// Read frames until `ends` END flags have been seen (bounded).
    fn drain_until_ends(&mut self, ends: u32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.ends < ends {
            assert!(Instant::now() < deadline, "stream did not end in time");
            match self.next_item() {
                Some(Ok(None)) => {}
                Some(Ok(Some(r))) => panic!("unexpected response {}", r.status),
                Some(Err(())) => panic!("protocol error"),
                None => panic!(
                    "connection closed early: ends {} packets {} tags {:?}",
                    self.ends,
                    self.data.len(),
                    self.data.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// The bytes received for `tag`, laid out by offset.
    fn assemble(&self, tag: Option<u32>, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        for (off, t, d) in &self.data {
            if tag.is_none_or(|x| x == *t) {
                out[*off as usize..*off as usize + d.len()].copy_from_slice(d);
            }
        }
        out
    }
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("rtsp://{addr}/{path}")
}

/// Status line of the first response on a fresh connection after `bytes`.
fn status_after(addr: SocketAddr, bytes: &[u8]) -> (Option<u16>, bool) {
    let mut c = raw(addr);
    c.send_raw(bytes);
    let status = match c.next() {
        Some(Ok(r)) => Some(r.status),
        _ => None,
    };
    // Closed afterwards?
    let closed = c.next().is_none();
    (status, closed)
}

// ---------------------------------------------------------------------------

#[test]
fn ffprobe_opens_plays_receives_and_tears_down() {
    if !have("ffprobe", "-version") {
        return;
    }
    let f = fixture(600_000);
    let server = start(ServerConfig::new(&f.root));
    let (ok, out) = run_limited(
        Command::new("ffprobe")
            .args([
                "-v",
                "debug",
                "-rtsp_transport",
                "tcp",
                "-timeout",
                "10000000",
            ])
            .args(["-show_packets", "-select_streams", "d"])
            .arg(url(server.local_addr(), "apps/app.sft")),
        Duration::from_secs(30),
    );
    assert!(ok, "ffprobe failed:\n{out}");
    let packets = out.matches("[PACKET]").count();
    let expected = f.pkg.len().div_ceil(proto::SERVER_PACKET_DATA);
    assert_eq!(packets, expected, "ffprobe output:\n{out}");
    // The session is gone once ffprobe is (TEARDOWN, then close).
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shutdown_handle().active_sessions() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.shutdown_handle().active_sessions(), 0);
    assert!(out.contains("a=x-sft-package-guid:5A5A5A5A-5A5A-5A5A-5A5A-5A5A5A5A5A5A"));
    server.shutdown().unwrap();
}

/// The RTSP exchange in rtspsrc's `GST_DEBUG=rtspsrc:6` log: each request
/// method with the status of its response (`None`: no response read).
fn rtspsrc_exchange(log: &str) -> Vec<(String, Option<u16>)> {
    let mut out: Vec<(String, Option<u16>)> = Vec::new();
    for line in log.lines().filter(|l| l.contains("print_rtsp_message")) {
        let quoted = |key: &str| {
            let rest = &line[line.find(key)? + key.len()..];
            let rest = rest.trim_start().strip_prefix('\'')?;
            Some(rest[..rest.find('\'')?].to_owned())
        };
        if let Some(m) = quoted("method:") {
            out.push((m, None));
        } else if let Some(code) = quoted("code:")
            && let Some(last) = out.last_mut().filter(|l| l.1.is_none())
        {
            last.1 = code.parse().ok();
        }
    }
    out
}

#[test]
fn gstreamer_rtspsrc_plays_to_end_of_stream() {
    if !have("gst-launch-1.0", "--version") {
        return;
    }
    let f = fixture(600_000);
    let server = start(ServerConfig::new(&f.root));
    let (ok, out) = run_limited(
        Command::new("gst-launch-1.0")
            .env("GST_DEBUG", "rtspsrc:6")
            .env("GST_DEBUG_NO_COLOR", "1")
            .arg("rtspsrc")
            .arg(format!(
                "location={}",
                url(server.local_addr(), "apps/app.sft")
            ))
            .args(["protocols=tcp", "!", "fakesink", "silent=false", "-v"]),
        Duration::from_secs(30),
    );
    let tail = |out: &str| {
        let lines: Vec<&str> = out
            .lines()
            .filter(|l| !l.contains("chain") && !l.contains("caps =") && !l.contains("rtspsrc "))
            .collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    assert!(out.contains("Got EOS"), "no EOS:\n{}", tail(&out));
    let buffers = out.matches("last-message = chain").count();
    let expected = f.pkg.len().div_ceil(proto::SERVER_PACKET_DATA);
    assert!(buffers >= expected, "{buffers} buffers < {expected}");
    // Every request rtspsrc sent was answered 200, in the standard order.
    let exchange = rtspsrc_exchange(&out);
    let methods: Vec<&str> = exchange.iter().map(|(m, _)| m.as_str()).collect();
    let core: Vec<&str> = methods.iter().copied().filter(|m| *m != "PAUSE").collect();
    assert_eq!(
        core,
        ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"],
        "{exchange:?}"
    );
    // rtspsrc 1.22 has a shutdown race of its own: going to NULL after EOS
    // queues PAUSE, then CLOSE, for its task thread; when the thread has
    // already begun sending PAUSE, CLOSE cancels it mid-send and rtspsrc
    // posts "Could not send message. (Received end-of-file)" from
    // gst_rtspsrc_try_send/gst_rtspsrc_pause, then sends TEARDOWN on the
    // same connection, which the server answers. Seen 1 run in 40 here and
    // twice in a row in CI. That failure, and only that one, is accepted.
    let pause_cancelled = exchange.iter().any(|(m, s)| m == "PAUSE" && s.is_none());
    for (m, s) in &exchange {
        assert!(
            *s == Some(200) || (m == "PAUSE" && s.is_none()),
            "{m} answered {s:?}: {exchange:?}"
        );
    }
    if !ok {
        let sites: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("../") || l.contains("gstrtspsrc.c("))
            .collect();
        let race_only = pause_cancelled
            && out.contains("ERROR: from element")
            && sites
                .iter()
                .all(|l| l.contains("gst_rtspsrc_try_send") || l.contains("gst_rtspsrc_pause"))
            && out.matches("ERROR: from element").count() == sites.len();
        assert!(race_only, "gst-launch failed:\n{}", tail(&out));
        eprintln!("note: rtspsrc cancelled its own PAUSE at shutdown (its race; accepted)");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.shutdown_handle().active_sessions() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.shutdown_handle().active_sessions(), 0);
    server.shutdown().unwrap();
}

#[test]
fn full_stream_is_byte_identical_and_fetch_jumps_the_queue() {
    let f = fixture(6_000_000);
    let server = start(ServerConfig::new(&f.root));
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    let mut c = raw(addr);
    let d = c.request("DESCRIBE", &u, &[("Accept", "application/sdp")], "");
    assert_eq!(d.status, 200);
    assert_eq!(d.h("content-type"), Some("application/sdp"));
    let sdp = String::from_utf8(d.body.clone()).unwrap();
    assert!(
        sdp.contains(&format!("a=x-sft-length:{}", f.pkg.len())),
        "{sdp}"
    );
    assert!(sdp.contains("m=application 0 RTP/AVP 96"));
    assert!(sdp.contains("a=rtpmap:96 X-SFT/1000"));
    let control = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=control:"))
        .find(|c| c.starts_with("version="))
        .unwrap()
        .to_owned();
    let s = c.setup(&format!("{u}/{control}"));
    assert_eq!(s.status, 200);
    assert!(s.h("transport").unwrap().contains("interleaved=0-1"));
    assert_eq!(s.h("x-sft-length"), Some(f.pkg.len().to_string().as_str()));
    let p = c.request("PLAY", &u, &[], "");
    assert_eq!(p.status, 200);
    // Fetch the last 64 KiB right away: it must arrive before the
    // background stream gets there.
    let len = f.pkg.len() as u64;
    let fetch = format!("bytes={}-{}", len - 65536, len - 1);
    let r = c.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", &fetch)], "");
    assert_eq!(r.status, 200);
    let fetch_tag = c.cseq;
    c.drain_until_ends(2);
    let first_fetch = c.data.iter().position(|(_, t, _)| *t == fetch_tag).unwrap();
    let last_bg = c.data.iter().rposition(|(_, t, _)| *t == 0).unwrap();
    assert!(
        first_fetch < last_bg,
        "fetch served after the background stream"
    );
    let bg_bytes: usize = c.data.iter().filter(|x| x.1 == 0).map(|x| x.2.len()).sum();
    assert_eq!(bg_bytes, f.pkg.len(), "each background byte once");
    assert_eq!(c.assemble(Some(0), f.pkg.len()), f.pkg);
    let fetched = c.assemble(Some(fetch_tag), f.pkg.len());
    assert_eq!(
        &fetched[f.pkg.len() - 65536..],
        &f.pkg[f.pkg.len() - 65536..]
    );
    let t = c.request("TEARDOWN", &u, &[], "");
    assert_eq!(t.status, 200);
    assert!(c.rtcp >= 1, "RTCP BYE after the background stream");
    server.shutdown().unwrap();
}

/// Nice values of the threads of process `pid` ("self": this one), from
/// Linux's `/proc`.
#[cfg(target_os = "linux")]
fn thread_nices(pid: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // Field 19 (nice), counted after the `(comm)` field that may hold spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        out.push(rest.split(' ').nth(16).unwrap().parse().unwrap());
    }
    out
}

#[cfg(target_os = "linux")]
#[test]
fn background_streaming_runs_at_lower_priority_fetches_do_not() {
    // 7: a value no other test's server uses (the default is 10).
    let f = fixture(8_000_000);
    let server = start(ServerConfig::new(&f.root).background_nice(7));
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    let count7 = || thread_nices("self").iter().filter(|&&n| n == 7).count();
    assert_eq!(count7(), 0);
    // A probe session without a background stream: its fetch is served
    // and its thread keeps its priority.
    let mut probe = raw(addr);
    assert_eq!(probe.setup(&u).status, 200);
    let p = probe.request("PLAY", &u, &[("x-Sft-Range", "none")], "");
    assert_eq!(p.status, 200);
    let r = probe.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", "bytes=0-65535")], "");
    assert_eq!(r.status, 200);
    probe.drain_until_ends(1);
    assert_eq!(
        count7(),
        0,
        "a fetch-only session lowered its thread's priority"
    );
    // A session streaming its background (not read, so it stays busy):
    // exactly its thread drops to nice 7.
    let mut bulk = raw(addr);
    assert_eq!(bulk.setup(&u).status, 200);
    assert_eq!(bulk.request("PLAY", &u, &[], "").status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while count7() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        count7(),
        1,
        "the streaming thread, and only it, runs at nice 7"
    );
    // The probe still gets its fetches while the other session streams.
    let r = probe.request(
        "SET_PARAMETER",
        &u,
        &[("x-Sft-Fetch", "bytes=65536-131071")],
        "",
    );
    assert_eq!(r.status, 200);
    probe.drain_until_ends(2);
    let got = probe.assemble(Some(probe.cseq), f.pkg.len());
    assert_eq!(&got[65536..131072], &f.pkg[65536..131072]);
    drop(bulk);
    server.shutdown().unwrap();
}

#[test]
fn conformance_status_codes() {
    let f = fixture(100_000);
    let server = start(
        ServerConfig::new(&f.root)
            .limits(Limits {
                max_head: 2048,
                max_body: 1024,
            })
            .max_sessions(1),
    );
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    let mut c = raw(addr);
    let o = c.request("OPTIONS", "*", &[], "");
    assert_eq!(o.status, 200);
    assert!(o.h("public").unwrap().contains("SET_PARAMETER"));
    assert_eq!(
        c.request("DESCRIBE", &url(addr, "apps/none.sft"), &[], "")
            .status,
        404
    );
    assert_eq!(
        c.request("DESCRIBE", &url(addr, "../secret.sft"), &[], "")
            .status,
        404
    );
    assert_eq!(
        c.request(
            "DESCRIBE",
            &url(addr, "apps/%2e%2e/%2e%2e/secret.sft"),
            &[],
            ""
        )
        .status,
        404
    );
    assert_eq!(c.request("ANNOUNCE", &u, &[], "").status, 501);
    assert_eq!(c.request("RECORD", &u, &[], "").status, 501);
    assert_eq!(
        c.request("PLAY", &u, &[], "").status,
        455,
        "PLAY before SETUP"
    );
    let udp = c.request(
        "SETUP",
        &u,
        &[("Transport", "RTP/AVP;unicast;client_port=5000-5001")],
        "",
    );
    assert_eq!(udp.status, 461);
    assert_eq!(c.setup(&u).status, 200);
    let good = c.session.clone();
    c.session = Some("WRONG".into());
    assert_eq!(c.request("PLAY", &u, &[], "").status, 454);
    assert_eq!(c.request("TEARDOWN", &u, &[], "").status, 454);
    c.session = good;
    assert_eq!(
        c.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", "bytes=0-1")], "")
            .status,
        455,
        "fetch before PLAY"
    );
    assert_eq!(
        c.request("PLAY", &u, &[("x-Sft-Range", "none")], "").status,
        200
    );
    assert_eq!(
        c.request(
            "SET_PARAMETER",
            &u,
            &[("x-Sft-Fetch", "bytes=0-99999999")],
            ""
        )
        .status,
        457
    );
    assert_eq!(
        c.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", "bytes=9-1")], "")
            .status,
        400
    );
    assert_eq!(
        c.request(
            "SETUP",
            &u,
            &[("Transport", "RTP/AVP/TCP;interleaved=2-3")],
            ""
        )
        .status,
        459
    );
    let g = c.request(
        "GET_PARAMETER",
        &u,
        &[("Content-Type", "text/parameters")],
        "x-sft-version\r\n",
    );
    assert_eq!(g.status, 200);
    assert_eq!(String::from_utf8_lossy(&g.body), "x-sft-version: 1\r\n");
    assert_eq!(
        c.request("GET_PARAMETER", &u, &[], "").status,
        200,
        "keep-alive"
    );
    assert_eq!(
        c.request("OPTIONS", &u, &[("Require", "play.basic")], "")
            .status,
        551
    );
    // Session limit: 1.
    let mut c2 = raw(addr);
    assert_eq!(c2.setup(&u).status, 503);
    assert_eq!(c.request("TEARDOWN", &u, &[], "").status, 200);
    c.session = None;
    assert_eq!(c2.setup(&u).status, 200, "a session is free again");
    // Version other than 1.0.
    let mut c3 = raw(addr);
    c3.send_raw(b"OPTIONS * RTSP/2.0\r\nCSeq: 5\r\n\r\n");
    assert_eq!(c3.next().unwrap().unwrap().status, 505);
    // No CSeq: 400.
    assert_eq!(
        status_after(addr, b"OPTIONS * RTSP/1.0\r\n\r\n").0,
        Some(400)
    );
    // Garbage: 400 and close.
    assert_eq!(
        status_after(addr, b"\x16\x03\x01garbage\r\n\r\n"),
        (Some(400), true)
    );
    // Oversized head and body: 413 and close.
    let big_head = format!(
        "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(4000)
    );
    assert_eq!(status_after(addr, big_head.as_bytes()), (Some(413), true));
    let big_body = "SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 100000\r\n\r\n";
    assert_eq!(status_after(addr, big_body.as_bytes()), (Some(413), true));
    server.shutdown().unwrap();
}

/// A rustls client config trusting `ca`.
fn tls_client(ca: &rcgen::Certificate) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn tls_server_config() -> (Arc<rustls::ServerConfig>, rcgen::Certificate) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .unwrap();
    (Arc::new(config), ck.cert)
}

#[test]
fn rtsps_with_generated_certificate_streams_byte_identical() {
    let f = fixture(1_000_000);
    let (tls, cert) = tls_server_config();
    let server = start(ServerConfig::new(&f.root).tls(tls));
    let addr = server.local_addr();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let conn =
        rustls::ClientConnection::new(tls_client(&cert), "localhost".try_into().unwrap()).unwrap();
    let mut c = Raw::new(rustls::StreamOwned::new(conn, tcp));
    let u = format!("rtsps://{addr}/apps/app.sft");
    assert_eq!(c.request("OPTIONS", &u, &[], "").status, 200);
    assert_eq!(c.request("DESCRIBE", &u, &[], "").status, 200);
    assert_eq!(c.setup(&u).status, 200);
    assert_eq!(c.request("PLAY", &u, &[], "").status, 200);
    c.drain_until_ends(1);
    assert_eq!(c.assemble(Some(0), f.pkg.len()), f.pkg);
    assert_eq!(c.request("TEARDOWN", &u, &[], "").status, 200);
    // A plain-text client on the TLS port gets nothing back.
    let mut plain = raw(addr);
    plain
        .s
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain.send_raw(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
    assert!(plain.next().is_none_or(|r| r.is_err()));
    server.shutdown().unwrap();
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn active_upgrade_new_sessions_get_v2_running_sessions_finish_v1() {
    let f = fixture(2_000_000);
    let server = start(
        ServerConfig::new(&f.root)
            .rescan_interval(Duration::ZERO)
            .settle_time(Duration::ZERO),
    );
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    // Client A pins version 1 and starts streaming.
    let mut a = raw(addr);
    let d = a.request("DESCRIBE", &u, &[], "");
    assert!(String::from_utf8_lossy(&d.body).contains("a=x-sft-version:1"));
    assert_eq!(a.setup(&u).status, 200);
    assert_eq!(
        a.request("PLAY", &u, &[("x-Sft-Range", "bytes=0-99999")], "")
            .status,
        200
    );
    // Version 2 appears under another name; version 1 is then replaced in place.
    let v2 = package(2_100_000, 2);
    std::fs::write(f.root.join("apps/app_2.sft"), &v2).unwrap();
    write_atomically(&f.root.join("apps/app.sft"), &package(10_000, 0));
    // A new client asking for the same file name gets version 2.
    let mut b = raw(addr);
    let d = b.request("DESCRIBE", &u, &[], "");
    assert!(String::from_utf8_lossy(&d.body).contains("a=x-sft-version:2"));
    let s = b.setup(&u);
    assert_eq!(s.status, 200);
    assert_eq!(s.h("x-sft-package-version"), Some("2"));
    assert_eq!(b.request("PLAY", &u, &[], "").status, 200);
    b.drain_until_ends(1);
    assert_eq!(b.assemble(Some(0), v2.len()), v2);
    // A finishes on version 1, byte for byte.
    let all = format!("bytes=100000-{}", f.pkg.len() - 1);
    assert_eq!(
        a.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", &all)], "")
            .status,
        200
    );
    a.drain_until_ends(2);
    assert_eq!(a.assemble(None, f.pkg.len()), f.pkg);
    let g = a.request(
        "GET_PARAMETER",
        &u,
        &[],
        "x-sft-version\r\nx-sft-latest-version\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&g.body),
        "x-sft-version: 1\r\nx-sft-latest-version: 2\r\n"
    );
    server.shutdown().unwrap();
}

/// Two files holding the same version of one package (a copy, or the
/// same version packed twice) are not upgrades of each other: each URL
/// streams its own file, whichever was written last.
#[test]
fn the_same_version_in_two_files_streams_the_file_named() {
    let f = fixture(300_000);
    let other = package(200_000, 1);
    std::fs::write(f.root.join("apps/copy.sft"), &other).unwrap();
    let server = start(
        ServerConfig::new(&f.root)
            .rescan_interval(Duration::ZERO)
            .settle_time(Duration::ZERO),
    );
    let addr = server.local_addr();
    assert_eq!(
        stream_once(addr, &url(addr, "apps/app.sft")),
        ("1".to_owned(), f.pkg.clone())
    );
    assert_eq!(
        stream_once(addr, &url(addr, "apps/copy.sft")),
        ("1".to_owned(), other)
    );
    server.shutdown().unwrap();
}

/// The `x-sft-version` a DESCRIBE of `u` offers now.
fn described_version(addr: SocketAddr, u: &str) -> String {
    let mut c = raw(addr);
    let d = c.request("DESCRIBE", u, &[], "");
    assert_eq!(d.status, 200);
    let sdp = String::from_utf8_lossy(&d.body).into_owned();
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=x-sft-version:"))
        .unwrap_or_else(|| panic!("no version in {sdp}"))
        .to_owned()
}

/// SETUP + PLAY of `u`: the package version set up and the bytes streamed.
fn stream_once(addr: SocketAddr, u: &str) -> (String, Vec<u8>) {
    let mut c = raw(addr);
    let s = c.setup(u);
    assert_eq!(s.status, 200);
    let version = s.h("x-sft-package-version").unwrap().to_owned();
    let len: usize = s.h("x-sft-length").unwrap().parse().unwrap();
    assert_eq!(c.request("PLAY", u, &[], "").status, 200);
    c.drain_until_ends(1);
    (version, c.assemble(Some(0), len))
}

/// A newer version whose prologue is on disk but whose data is still being
/// copied in is not offered: new clients keep getting the complete old
/// version (they were sent to the partial file and failed); once the copy
/// is complete it is offered, after the settle time.
#[test]
fn a_version_still_being_copied_in_is_not_offered() {
    let f = fixture(1_500_000);
    let config = ServerConfig::new(&f.root).rescan_interval(Duration::ZERO);
    let server = start(config.clone().settle_time(Duration::ZERO));
    let patient = start(config.settle_time(Duration::from_secs(3600)));
    let v2 = package(1_600_000, 2);
    let header = sft::format::Header::parse(&v2[..sft::format::HEADER_LEN]).unwrap();
    let prologue_len = header.prologue_len as usize;
    assert!(prologue_len + 1000 < v2.len());
    // The upload has written the prologue and a little data.
    let upload = f.root.join("apps/app_2.sft");
    std::fs::write(&upload, &v2[..prologue_len + 1000]).unwrap();
    for h in [&server, &patient] {
        let u = url(h.local_addr(), "apps/app.sft");
        assert_eq!(described_version(h.local_addr(), &u), "1");
        let (version, bytes) = stream_once(h.local_addr(), &u);
        assert_eq!(version, "1");
        assert!(bytes == f.pkg, "version 1 streamed whole");
        // Named directly, the partial file is not a package yet.
        let mut c = raw(h.local_addr());
        let d = c.request("DESCRIBE", &url(h.local_addr(), "apps/app_2.sft"), &[], "");
        assert_eq!(d.status, 404);
    }
    // The upload completes.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&upload)
        .unwrap();
    file.write_all(&v2[prologue_len + 1000..]).unwrap();
    file.sync_all().unwrap();
    drop(file);
    // Offered now (settle time 0), byte for byte.
    let u = url(server.local_addr(), "apps/app.sft");
    let deadline = Instant::now() + Duration::from_secs(20);
    while described_version(server.local_addr(), &u) != "2" {
        assert!(Instant::now() < deadline, "version 2 never offered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (version, bytes) = stream_once(server.local_addr(), &u);
    assert_eq!(version, "2");
    assert!(bytes == v2);
    // Complete but not settled (settle time 1 h): still version 1.
    let u = url(patient.local_addr(), "apps/app.sft");
    assert_eq!(described_version(patient.local_addr(), &u), "1");
    assert_eq!(stream_once(patient.local_addr(), &u).0, "1");
    server.shutdown().unwrap();
    patient.shutdown().unwrap();
}

/// One PLAY listing the package 256 times over (overlapping ranges)
/// streams it once; fetches are merged the same way, and a session's
/// pending fetch bytes are bounded (twice the package): of three
/// whole-package fetches sent at once the third is refused with 503.
#[test]
fn overlapping_ranges_are_sent_once_and_pending_fetch_bytes_are_bounded() {
    let f = fixture(1_000_000);
    let server = start(ServerConfig::new(&f.root));
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    let len = f.pkg.len();
    let mut c = raw(addr);
    assert_eq!(c.setup(&u).status, 200);
    let specs: Vec<String> = (0..256).map(|i| format!("{}-", i * 997)).collect();
    let play = format!("bytes={}", specs.join(","));
    assert!(play.len() < 2000);
    let r = c.request("PLAY", &u, &[("x-Sft-Range", &play)], "");
    assert_eq!(r.status, 200);
    c.drain_until_ends(1);
    let streamed: usize = c.data.iter().map(|d| d.2.len()).sum();
    assert_eq!(streamed, len, "bytes streamed for one PLAY");
    assert_eq!(c.assemble(Some(0), len), f.pkg);
    // Three fetches of 250 overlapping whole-package ranges, in one write.
    let fetch = format!("bytes={}", vec!["0-"; 250].join(","));
    let session = c.session.clone().unwrap();
    let mut burst = String::new();
    for cseq in 100..103 {
        burst.push_str(&format!(
            "SET_PARAMETER {u} RTSP/1.0\r\nCSeq: {cseq}\r\nSession: {session}\r\nx-Sft-Fetch: {fetch}\r\n\r\n"
        ));
    }
    c.send_raw(burst.as_bytes());
    let statuses: Vec<u16> = (0..3).map(|_| c.next().unwrap().unwrap().status).collect();
    assert_eq!(statuses, [200, 200, 503]);
    c.drain_until_ends(3);
    for tag in [100, 101] {
        let bytes: usize = c
            .data
            .iter()
            .filter(|d| d.1 == tag)
            .map(|d| d.2.len())
            .sum();
        assert_eq!(bytes, len, "fetch {tag}");
        assert_eq!(c.assemble(Some(tag), len), f.pkg);
    }
    assert!(
        !c.data.iter().any(|d| d.1 == 102),
        "the refused fetch sent data"
    );
    // The session still works: a small fetch after the big ones.
    let r = c.request(
        "SET_PARAMETER",
        &u,
        &[("x-Sft-Fetch", "bytes=10-19,15-29")],
        "",
    );
    assert_eq!(r.status, 200);
    let tag = c.cseq;
    c.drain_until_ends(4);
    let got: Vec<_> = c.data.iter().filter(|d| d.1 == tag).collect();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0, &got[0].2[..]), (10, &f.pkg[10..30]));
    server.shutdown().unwrap();
}

/// Poll `cond` every 20 ms until it holds; false at the deadline.
fn wait_until(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Connections that send nothing (no request, no TLS handshake) or
/// trickle a TLS handshake hold their slot only until the request timeout
/// from the accept (it was the 60 s idle timeout, or for ever for a
/// trickled handshake); then a new client is served.
#[test]
fn silent_and_trickling_connections_are_dropped_at_the_request_timeout() {
    let f = fixture(100_000);
    let timeout = Duration::from_secs(2); // room for a descheduled test thread on a loaded CI machine
    let (tls, _) = tls_server_config();
    let plain = start(
        ServerConfig::new(&f.root)
            .max_connections(4)
            .request_timeout(timeout),
    );
    let secure = start(
        ServerConfig::new(&f.root)
            .max_connections(4)
            .request_timeout(timeout)
            .tls(tls),
    );
    for server in [&plain, &secure] {
        let addr = server.local_addr();
        let stop = server.shutdown_handle();
        let started = Instant::now();
        let silent: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // The fourth trickles a TLS record (a request on the plain server),
        // a byte every 100 ms.
        let mut bytes = if server.local_addr() == plain.local_addr() {
            b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ".to_vec()
        } else {
            vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01]
        };
        bytes.resize(517, b'a');
        let trickler = TcpStream::connect(addr).unwrap();
        let trickling = std::thread::spawn(move || {
            let mut t = trickler;
            let begun = Instant::now();
            for b in bytes {
                if t.write_all(&[b]).is_err() {
                    return begun.elapsed();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            begun.elapsed()
        });
        assert!(
            wait_until(Instant::now() + Duration::from_secs(5), || {
                stop.active_connections() == 4
            }),
            "the server never counted 4 connections"
        );
        if server.local_addr() == plain.local_addr() {
            // Full: a fifth is turned away.
            let (status, _) = status_after(addr, b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n");
            assert_eq!(status, Some(503));
        }
        assert!(
            wait_until(started + timeout + Duration::from_secs(3), || stop
                .active_connections()
                == 0),
            "{} connections still held after {:?}",
            stop.active_connections(),
            started.elapsed()
        );
        assert!(started.elapsed() >= timeout);
        for mut s in silent {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut sink = [0u8; 64];
            // Closed: EOF (or a reset; a TLS alert at most before it).
            let n = s.read(&mut sink).unwrap_or(0);
            assert!(n == 0 || s.read(&mut sink).unwrap_or(0) == 0);
        }
        assert!(trickling.join().unwrap() < Duration::from_secs(10));
    }
    // Then a new client is served.
    let mut c = raw(plain.local_addr());
    assert_eq!(c.request("OPTIONS", "*", &[], "").status, 200);
    drop(c);
    plain.shutdown().unwrap();
    secure.shutdown().unwrap();
}

#[test]
fn hostile_clients_do_not_stop_a_good_one() {
    let f = fixture(8_000_000);
    let server = start(
        ServerConfig::new(&f.root)
            .request_timeout(Duration::from_millis(500))
            .write_timeout(Duration::from_secs(2)),
    );
    let addr = server.local_addr();
    let u = url(addr, "apps/app.sft");
    // Stalled mid-request, garbage, a streaming client that never reads,
    // and one that disconnects abruptly mid-stream.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled
        .write_all(b"DESCRIBE rtsp://x/apps/app.sft RTSP/1.0\r\nCSe")
        .unwrap();
    let mut garbage = TcpStream::connect(addr).unwrap();
    let _ = garbage.write_all(&noise64(100_000, 3));
    let mut sleeper = raw(addr);
    assert_eq!(sleeper.setup(&u).status, 200);
    sleeper.send_raw(
        format!(
            "PLAY {u} RTSP/1.0\r\nCSeq: 9\r\nSession: {}\r\n\r\n",
            sleeper.session.clone().unwrap()
        )
        .as_bytes(),
    );
    let mut quitter = raw(addr);
    assert_eq!(quitter.setup(&u).status, 200);
    assert_eq!(quitter.request("PLAY", &u, &[], "").status, 200);
    drop(quitter);
    // The good client streams everything.
    let started = Instant::now();
    let mut good = raw(addr);
    assert_eq!(good.setup(&u).status, 200);
    assert_eq!(good.request("PLAY", &u, &[], "").status, 200);
    good.drain_until_ends(1);
    assert_eq!(good.assemble(Some(0), f.pkg.len()), f.pkg);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The stalled client was cut off after the request timeout.
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sink = [0u8; 16];
    assert!(matches!(stalled.read(&mut sink), Ok(0) | Err(_)));
    // The write-stalled sleeper is dropped too, freeing its session.
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.shutdown_handle().active_sessions() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.shutdown_handle().active_sessions() <= 1);
    drop(sleeper);
    server.shutdown().unwrap();
}

#[test]
fn two_hundred_fifty_six_concurrent_sessions_all_byte_identical() {
    let f = fixture(400_000);
    let server = start(ServerConfig::new(&f.root).max_sessions(256));
    let addr = server.local_addr();
    let pkg = Arc::new(f.pkg.clone());
    let threads: Vec<_> = (0..256)
        .map(|_| {
            let pkg = Arc::clone(&pkg);
            std::thread::spawn(move || {
                let u = url(addr, "apps/app.sft");
                let mut c = raw(addr);
                assert_eq!(c.setup(&u).status, 200);
                assert_eq!(c.request("PLAY", &u, &[], "").status, 200);
                c.drain_until_ends(1);
                assert!(c.assemble(Some(0), pkg.len()) == *pkg);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.shutdown_handle().active_sessions() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.shutdown_handle().active_sessions(), 0);
    server.shutdown().unwrap();
}

/// `sft serve --http --rtsp` over one content root: both listening lines,
/// HTTP first, and both servers answer; usage errors exit with 2.
#[cfg(feature = "cli")]
#[test]
fn sft_serve_runs_http_and_rtsp_together() {
    use std::io::BufRead;
    let f = fixture(100_000);
    let exe = env!("CARGO_BIN_EXE_sft");
    let mut child = Command::new(exe)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--rtsp",
            "127.0.0.1:0",
            "--no-access-log",
        ])
        .arg("--content")
        .arg(&f.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let http = lines.next().unwrap().unwrap();
    let rtsp = lines.next().unwrap().unwrap();
    let http_addr: SocketAddr = http
        .strip_prefix("listening on http://")
        .unwrap()
        .parse()
        .unwrap();
    let rtsp_addr: SocketAddr = rtsp
        .strip_prefix("listening on rtsp://")
        .unwrap()
        .parse()
        .unwrap();
    let mut c = raw(rtsp_addr);
    let d = c.request("DESCRIBE", &url(rtsp_addr, "apps/app.sft"), &[], "");
    assert_eq!(d.status, 200);
    let mut h = TcpStream::connect(http_addr).unwrap();
    h.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    h.write_all(b"HEAD /apps/app.sft HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    h.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(&format!("Content-Length: {}", f.pkg.len())));
    child.kill().unwrap();
    child.wait().unwrap();
    // The same from a TOML config file; a flag overrides it.
    let cfg = f.root.parent().unwrap().join("serve.toml");
    std::fs::write(
        &cfg,
        format!(
            "rtsp = \"127.0.0.1:0\"\ncontent = {:?}\nmax_sessions = 1\nlog_level = \"quiet\"\nbackground_nice = 3\n",
            f.root.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(exe)
        .args(["serve", "--http", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines
            .next()
            .unwrap()
            .unwrap()
            .starts_with("listening on http://")
    );
    let rtsp = lines.next().unwrap().unwrap();
    let rtsp_addr: SocketAddr = rtsp
        .strip_prefix("listening on rtsp://")
        .unwrap()
        .parse()
        .unwrap();
    let u = url(rtsp_addr, "apps/app.sft");
    let mut c1 = raw(rtsp_addr);
    assert_eq!(c1.setup(&u).status, 200);
    let mut c2 = raw(rtsp_addr);
    assert_eq!(c2.setup(&u).status, 503, "max_sessions = 1 from the file");
    #[cfg(target_os = "linux")]
    {
        // background_nice = 3 from the file: the thread streaming c1's
        // background (not read, so it stays busy) runs at nice 3.
        assert_eq!(c1.request("PLAY", &u, &[], "").status, 200);
        let pid = child.id().to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !thread_nices(&pid).contains(&3) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            thread_nices(&pid).contains(&3),
            "background_nice = 3 from the file"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(&cfg, "rtsp = \"127.0.0.1:0\"\nbackground_nice = 20\n").unwrap();
    let st = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2), "background_nice out of range");
    std::fs::write(&cfg, "rtsp = \"127.0.0.1:0\"\nbogus = 1\n").unwrap();
    let st = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(2), "unknown config key");
    for args in [
        vec!["serve", "--content", "."],
        vec!["serve", "--rtsps", "127.0.0.1:0", "--content", "."],
    ] {
        let st = Command::new(exe)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(2), "{args:?}");
    }
}

// ---------------------------------------------------------------------------
// Load generator for scripts/bench-rtsp.sh (ignored: run by the script,
// which starts `sft serve --http --rtsp` and passes its addresses).

fn bench_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Minimal RTSP bulk client: SETUP, PLAY, count data bytes until the
/// background stream's END; returns the bytes received.
fn bulk_rtsp(addr: &str, path: &str, plays: usize) -> u64 {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut c = Raw::new(s);
    let u = format!("rtsp://{addr}{path}");
    assert_eq!(c.setup(&u).status, 200);
    let mut total = 0u64;
    for _ in 0..plays {
        c.cseq += 1;
        let m = format!(
            "PLAY {u} RTSP/1.0\r\nCSeq: {}\r\nSession: {}\r\n\r\n",
            c.cseq,
            c.session.clone().unwrap()
        );
        c.send_raw(m.as_bytes());
        // Lean loop: frame headers only.
        let mut buf = vec![0u8; 256 * 1024];
        let (mut have, mut pos) = (0usize, 0usize);
        // Until the END packet and the RTCP BYE right behind it.
        let (mut done, mut bye) = (false, false);
        while !(done && bye) {
            if pos > 0 && (have - pos) < 64 * 1024 + 8 {
                buf.copy_within(pos..have, 0);
                have -= pos;
                pos = 0;
            }
            let n = c.s.read(&mut buf[have..]).unwrap();
            assert!(n > 0, "server closed");
            have += n;
            loop {
                let w = &buf[pos..have];
                if w.is_empty() {
                    break;
                }
                if w[0] != b'$' {
                    // A response (to PLAY): skip its head.
                    let Some(end) = w.windows(4).position(|x| x == b"\r\n\r\n") else {
                        break;
                    };
                    pos += end + 4;
                    continue;
                }
                if w.len() < 4 {
                    break;
                }
                let len = u16::from_be_bytes([w[2], w[3]]) as usize;
                if w.len() < 4 + len {
                    break;
                }
                if w[1] % 2 == 1 {
                    bye = done;
                } else {
                    let (h, d) = PacketHeader::parse(&w[4..4 + len]).unwrap();
                    total += d.len() as u64;
                    if h.tag == 0 && h.flags & FLAG_END != 0 {
                        done = true;
                    }
                }
                pos += 4 + len;
            }
        }
        assert_eq!(pos, have, "nothing after the BYE");
    }
    total
}

fn bulk_http(addr: &str, path: &str, len: u64) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut head_done = false;
    let mut head = Vec::new();
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head_done {
            total += n as u64;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|x| x == b"\r\n\r\n") {
                head_done = true;
                total += (head.len() - end - 4) as u64;
            }
        }
    }
    assert_eq!(total, len);
    total
}

fn aggregate(clients: usize, f: impl Fn() -> u64 + Send + Sync + 'static) -> f64 {
    let f = Arc::new(f);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || f())
        })
        .collect();
    let bytes: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    bytes as f64 / started.elapsed().as_secs_f64() / (1 << 20) as f64
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "run by scripts/bench-rtsp.sh"]
fn bench_rtsp() {
    let (Some(http), Some(rtsp), Some(path), Some(len), Some(pid)) = (
        bench_env("SFT_BENCH_HTTP"),
        bench_env("SFT_BENCH_RTSP"),
        bench_env("SFT_BENCH_PATH"),
        bench_env("SFT_BENCH_LEN"),
        bench_env("SFT_BENCH_PID"),
    ) else {
        eprintln!("bench_rtsp: run through scripts/bench-rtsp.sh");
        return;
    };
    let len: u64 = len.parse().unwrap();
    let clients: usize = bench_env("SFT_BENCH_CLIENTS").map_or(64, |v| v.parse().unwrap());
    let sessions: usize = bench_env("SFT_BENCH_SESSIONS").map_or(256, |v| v.parse().unwrap());
    let runs: usize = bench_env("RUNS").map_or(3, |v| v.parse().unwrap());

    // (a) aggregate throughput, best of `runs`, interleaved.
    let (mut best_http, mut best_rtsp) = (0f64, 0f64);
    for _ in 0..runs {
        let (h, p) = (http.clone(), path.clone());
        best_http = best_http.max(aggregate(clients, move || bulk_http(&h, &p, len)));
        let (r, p) = (rtsp.clone(), path.clone());
        best_rtsp = best_rtsp.max(aggregate(clients, move || {
            let got = bulk_rtsp(&r, &p, 1);
            assert_eq!(got, len);
            got
        }));
    }
    println!(
        "aggregate, {clients} clients: http {best_http:.0} MiB/s, rtsp {best_rtsp:.0} MiB/s, ratio {:.2}",
        best_rtsp / best_http
    );

    // (c) resident memory with `sessions` sessions streaming (slow readers).
    let before = rss_kib(&pid);
    let hold = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let slow: Vec<_> = (0..sessions)
        .map(|_| {
            let (r, p, hold, opened) = (
                rtsp.clone(),
                path.clone(),
                Arc::clone(&hold),
                Arc::clone(&opened),
            );
            std::thread::spawn(move || {
                let s = TcpStream::connect(&r).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut c = Raw::new(s);
                let u = format!("rtsp://{r}{p}");
                assert_eq!(c.setup(&u).status, 200);
                c.cseq += 1;
                let m = format!(
                    "PLAY {u} RTSP/1.0\r\nCSeq: {}\r\nSession: {}\r\n\r\n",
                    c.cseq,
                    c.session.clone().unwrap()
                );
                c.send_raw(m.as_bytes());
                opened.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = vec![0u8; 32 * 1024];
                while hold.load(std::sync::atomic::Ordering::Relaxed) {
                    if c.s.read(&mut buf).unwrap_or(0) == 0 {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while opened.load(std::sync::atomic::Ordering::SeqCst) < sessions && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut peak = 0;
    for _ in 0..30 {
        peak = peak.max(rss_kib(&pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    hold.store(false, std::sync::atomic::Ordering::Relaxed);
    for t in slow {
        t.join().unwrap();
    }
    println!(
        "server RSS: {} MiB idle, {} MiB peak with {sessions} sessions streaming",
        before / 1024,
        peak / 1024
    );
}

/// Bulk clients streaming the package over and over until the file named by
/// `SFT_BENCH_STOP` exists (the script runs this in another process, at
/// normal or lowered CPU priority).
#[test]
#[ignore = "run by scripts/bench-rtsp.sh"]
fn bench_rtsp_load() {
    let (Some(rtsp), Some(path), Some(stop_file)) = (
        bench_env("SFT_BENCH_RTSP"),
        bench_env("SFT_BENCH_PATH"),
        bench_env("SFT_BENCH_STOP"),
    ) else {
        eprintln!("bench_rtsp_load: run through scripts/bench-rtsp.sh");
        return;
    };
    let clients: usize = bench_env("SFT_BENCH_CLIENTS").map_or(64, |v| v.parse().unwrap());
    let deadline = Instant::now() + Duration::from_secs(300);
    let load: Vec<_> = (0..clients)
        .map(|_| {
            let (r, p, stop) = (rtsp.clone(), path.clone(), PathBuf::from(&stop_file));
            std::thread::spawn(move || {
                while !stop.exists() && Instant::now() < deadline {
                    bulk_rtsp(&r, &p, 1);
                }
            })
        })
        .collect();
    for t in load {
        t.join().unwrap();
    }
}

/// p50/p99 of a 64 KiB out-of-sequence fetch while `bench_rtsp_load` runs.
#[test]
#[ignore = "run by scripts/bench-rtsp.sh"]
fn bench_rtsp_probe() {
    let (Some(rtsp), Some(path), Some(len)) = (
        bench_env("SFT_BENCH_RTSP"),
        bench_env("SFT_BENCH_PATH"),
        bench_env("SFT_BENCH_LEN"),
    ) else {
        eprintln!("bench_rtsp_probe: run through scripts/bench-rtsp.sh");
        return;
    };
    let len: u64 = len.parse().unwrap();
    let label = bench_env("SFT_BENCH_LABEL").unwrap_or_default();
    std::thread::sleep(Duration::from_millis(1000));
    let mut probe = {
        let s = TcpStream::connect(&rtsp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw::new(s)
    };
    let u = format!("rtsp://{rtsp}{path}");
    assert_eq!(probe.setup(&u).status, 200);
    assert_eq!(
        probe
            .request("PLAY", &u, &[("x-Sft-Range", "none")], "")
            .status,
        200
    );
    let blocks = len / 65536;
    let mut lat = Vec::new();
    for i in 0..300u64 {
        let b = (i * 7919) % blocks.max(1);
        let fetch = format!("bytes={}-{}", b * 65536, (b * 65536 + 65535).min(len - 1));
        let t = Instant::now();
        let ends = probe.ends;
        let r = probe.request("SET_PARAMETER", &u, &[("x-Sft-Fetch", &fetch)], "");
        assert_eq!(r.status, 200);
        while probe.ends == ends {
            probe.next_item().unwrap().unwrap();
        }
        lat.push(t.elapsed());
        probe.data.clear();
        std::thread::sleep(Duration::from_millis(3));
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "out-of-sequence 64 KiB fetch under load{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(50),
        pct(99),
        lat.last().unwrap().as_secs_f64() * 1e3
    );
}
