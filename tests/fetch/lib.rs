use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sft::fetch::cache::{Cache, CacheOptions, CachePaths};
use sft::fetch::streaming::{StreamingOptions, StreamingPackage};
use sft::fetch::{FetchOptions, fetch, open_source};
use sft::io::RangeSource;
use sft::io::shaped::ShapedSource;
use sft::stream::{Event, SessionConfig, TransportErrorKind};
use sft::{BlockId, ErrorKind, Package};

use super::common::{ChunkedSource, Fault, FlakySource, layout, noise, package, text};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn verify_file(path: &std::path::Path, original: &[u8]) {
    let got = std::fs::read(path).unwrap();
    assert!(got == original, "fetched file differs from the source");
    Package::parse(&got).unwrap().verify().unwrap();
}

#[test]
fn corrupt_bytes_are_refetched_and_never_written() {
    let pkg = package();
    let l = layout(&pkg);
    // Corrupt a byte in the prologue, in FB1 and in FB2, twice each.
    let faults = [40, l.prologue_len + 10, pkg.len() as u64 - 100]
        .into_iter()
        .map(|at| Fault::Corrupt { at, times: 2 })
        .collect();
    let src = FlakySource::new(pkg.clone(), faults);
    let dir = tmp();
    let out = dir.path().join("o.sft");
    let r = fetch(&src, &out, FetchOptions::default()).unwrap();
    assert!(r.complete);
    verify_file(&out, &pkg);
    assert!(!r.cache.data.exists() && !r.cache.bitmap.exists());
}

#[test]
fn a_block_that_stays_corrupt_fails_naming_block_and_source() {
    let pkg = package();
    let l = layout(&pkg);
    let at = l.prologue_len + l.fb1_stored_len + 5;
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::Corrupt {
            at,
            times: u32::MAX,
        }],
    );
    let dir = tmp();
    let out = dir.path().join("o.sft");
    let e = fetch(
        &src,
        &out,
        FetchOptions::default().session(SessionConfig::default().max_attempts(3)),
    )
    .unwrap_err();
    match &e {
        sft::Error::Exhausted {
            endpoint, attempts, ..
        } => {
            assert_eq!(endpoint, "flaky://test");
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert!(!out.exists());
    // What did arrive is cached, and all of it is correct.
    let cache = Cache::open(CachePaths::for_output(&out, None), CacheOptions::default()).unwrap();
    assert!(cache.present_count() > 0);
    let data = std::fs::read(&cache.paths().data).unwrap();
    for id in cache.present_blocks() {
        let r = cache.blocks()[id.0 as usize].stored_range();
        assert_eq!(
            data[r.start as usize..r.end as usize],
            pkg[r.start as usize..r.end as usize]
        );
    }
}

#[test]
fn short_reads_shuffled_chunks_dropped_connections_and_latency() {
    let pkg = package();
    let dir = tmp();
    let out = dir.path().join("a.sft");
    let src = ChunkedSource::random(pkg.clone(), 7, 3000, true);
    fetch(&src, &out, FetchOptions::default()).unwrap();
    verify_file(&out, &pkg);

    let flaky = FlakySource::new(
        pkg.clone(),
        vec![
            Fault::DropMidway { call: 1 },
            Fault::FailCall {
                call: 3,
                kind: TransportErrorKind::Timeout,
            },
            Fault::DropMidway { call: 4 },
        ],
    );
    let shaped = ShapedSource::new(flaky, 50_000_000, Duration::from_millis(2)).chunk(1000);
    let out = dir.path().join("b.sft");
    fetch(
        &shaped,
        &out,
        FetchOptions::default().session(SessionConfig::default().max_request_bytes(16 * 1024)),
    )
    .unwrap();
    verify_file(&out, &pkg);
}

#[test]
fn a_resumed_fetch_transfers_only_the_missing_blocks() {
    let pkg = package();
    let l = layout(&pkg);
    let dir = tmp();
    let out = dir.path().join("o.sft");
    // Die for good after a few requests.
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 4,
            kind: TransportErrorKind::NotFound,
        }],
    );
    let small = SessionConfig::default()
        .max_request_bytes(8 * 1024)
        .fb1_request_bytes(8 * 1024)
        .max_in_flight_requests(1);
    let e = fetch(&src, &out, FetchOptions::default().session(small)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    let first = src.delivered();

    let src = FlakySource::new(pkg.clone(), vec![]);
    let r = fetch(&src, &out, FetchOptions::default().session(small)).unwrap();
    assert!(r.complete);
    verify_file(&out, &pkg);
    assert!(r.blocks_resumed > 0, "{r:?}");
    assert_eq!(r.blocks_resumed + r.blocks_fetched, l.blocks);
    // Exactly: the 128-byte identity check plus the missing blocks.
    let missing = pkg.len() as u64 - l.prologue_len - r.bytes_resumed;
    // (`delivered` counts range reads; the identity check is a read_at.)
    assert_eq!(src.delivered(), missing, "{r:?}");
    assert_eq!(r.bytes_transferred, 128 + missing);
    assert!(first + src.delivered() < 2 * pkg.len() as u64);

    // A third run with nothing cached for this output starts over, and a
    // cache for another package is discarded, not trusted.
    let other = {
        use sft::write::PackageBuilder;
        PackageBuilder::new(sft::WriteOptions::default().name("Other"))
            .add_bytes("x", noise(9, 50_000))
            .unwrap()
            .write_to_vec()
            .unwrap()
    };
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 3,
            kind: TransportErrorKind::NotFound,
        }],
    );
    let out2 = dir.path().join("p.sft");
    fetch(&src, &out2, FetchOptions::default().session(small)).unwrap_err();
    let r = fetch(&other, &out2, FetchOptions::default()).unwrap();
    assert_eq!(r.blocks_resumed, 0);
    verify_file(&out2, &other);
}

#[test]
fn damaged_cached_blocks_are_caught_on_resume() {
    let pkg = package();
    let dir = tmp();
    let out = dir.path().join("o.sft");
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 3,
            kind: TransportErrorKind::NotFound,
        }],
    );
    let small = SessionConfig::default()
        .max_request_bytes(8 * 1024)
        .fb1_request_bytes(8 * 1024)
        .max_in_flight_requests(1);
    fetch(&src, &out, FetchOptions::default().session(small)).unwrap_err();
    let paths = CachePaths::for_output(&out, None);
    let (victim, n_before) = {
        let c = Cache::open(paths.clone(), CacheOptions::default()).unwrap();
        let id = c.present_blocks().last().unwrap();
        (c.blocks()[id.0 as usize], c.present_count())
    };
    // Flip a byte of a cached block on disk (as a crash or bad disk might).
    let mut data = std::fs::read(&paths.data).unwrap();
    data[victim.stored_offset as usize] ^= 0xff;
    std::fs::write(&paths.data, &data).unwrap();
    let c = Cache::open(paths.clone(), CacheOptions::default()).unwrap();
    assert_eq!(c.present_count(), n_before - 1);
    assert!(!c.is_present(victim.id));
    drop(c);
    let r = fetch(&pkg, &out, FetchOptions::default()).unwrap();
    assert_eq!(r.blocks_resumed, n_before - 1);
    verify_file(&out, &pkg);
    // A damaged bitmap is discarded: start over, still correct.
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 3,
            kind: TransportErrorKind::NotFound,
        }],
    );
    std::fs::remove_file(&out).unwrap();
    fetch(&src, &out, FetchOptions::default().session(small)).unwrap_err();
    let mut b = std::fs::read(&paths.bitmap).unwrap();
    let last = b.len() - 5;
    b[last] ^= 1;
    std::fs::write(&paths.bitmap, &b).unwrap();
    let r = fetch(&pkg, &out, FetchOptions::default()).unwrap();
    assert_eq!(r.blocks_resumed, 0);
    verify_file(&out, &pkg);
}

/// Counts bytes as the source delivers them.
struct Counting<S> {
    inner: S,
    delivered: AtomicU64,
}

impl<S: RangeSource> RangeSource for Counting<S> {
    fn len(&self) -> Result<u64, sft::stream::TransportError> {
        self.inner.len()
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> Result<usize, sft::stream::TransportError> {
        let n = self.inner.read_at(o, b)?;
        self.delivered.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
    fn read_ranges(
        &self,
        ranges: &[std::ops::Range<u64>],
        sink: &mut sft::io::ChunkSink<'_>,
    ) -> Result<(), sft::stream::TransportError> {
        self.inner.read_ranges(ranges, &mut |o, b| {
            self.delivered.fetch_add(b.len() as u64, Ordering::SeqCst);
            sink(o, b)
        })
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}

#[test]
fn launch_ready_fires_after_exactly_the_prologue_and_fb1() {
    let pkg = package();
    let l = layout(&pkg);
    assert!(l.fb1_blocks > 0 && l.fb1_blocks < l.blocks);
    let src = Arc::new(Counting {
        inner: pkg.clone(),
        delivered: AtomicU64::new(0),
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (log, counter) = (Arc::clone(&seen), Arc::clone(&src));
    let dir = tmp();
    let out = dir.path().join("o.sft");
    let mut last = None;
    let r = fetch(
        &*src,
        &out,
        FetchOptions::default()
            // A first read of just the header, so no FB1 byte comes early.
            .session(SessionConfig::default().initial_read(128))
            .on_event(move |e| match e {
                Event::Progress(p) => last = Some(*p),
                Event::LaunchReady => log.lock().unwrap().push((
                    counter.delivered.load(Ordering::SeqCst),
                    last.map(|p| p.bytes),
                )),
                _ => {}
            }),
    )
    .unwrap();
    let at = seen.lock().unwrap().clone();
    let exact = l.prologue_len + l.fb1_stored_len;
    assert_eq!(at, [(exact, Some(exact))]);
    assert!(r.launch_ready.unwrap() <= r.total);
    verify_file(&out, &pkg);
}

/// A package whose FB2 is large: 4 KiB blocks of noise.
fn big_fb2() -> Vec<u8> {
    use sft::write::{BlockSize, PackageBuilder, parse_launch_list};
    let mut b = PackageBuilder::new(
        sft::WriteOptions::default()
            .block_size(BlockSize::K4)
            .name("Big"),
    );
    b.add_bytes("app.exe", noise(3, 20_000)).unwrap();
    b.add_bytes("z/last.bin", noise(4, 1_500_000)).unwrap();
    b.add_bytes("m/doc.txt", text(200_000)).unwrap();
    b.launch_list(parse_launch_list("app.exe\n").unwrap());
    b.write_to_vec().unwrap()
}

#[test]
fn a_demand_read_of_an_fb2_block_preempts_the_background_queue() {
    let pkg = big_fb2();
    let rate = 1_000_000u64; // 1 MB/s: the whole package takes ~1.6 s
    let full = Duration::from_secs_f64(pkg.len() as f64 / rate as f64);
    let src: Arc<dyn RangeSource> =
        Arc::new(ShapedSource::new(pkg.clone(), rate, Duration::from_millis(5)).chunk(8 * 1024));
    let dir = tmp();
    let paths = CachePaths::for_output(&dir.path().join("o.sft"), None);
    let t0 = Instant::now();
    let sp = StreamingPackage::open(src, paths, StreamingOptions::default()).unwrap();
    let local = Package::parse(&pkg).unwrap();
    // The last bytes of the last-stored file: the end of the FB2 queue.
    let e = sp.entry("z/last.bin").unwrap();
    let mut buf = vec![0u8; 1000];
    let t1 = Instant::now();
    let n = sp.read_at(&e, e.size() - 1000, &mut buf).unwrap();
    let demand = t1.elapsed();
    assert_eq!(n, 1000);
    let le = local.entry("z/last.bin").unwrap();
    let mut want = vec![0u8; 1000];
    local.read_at(&le, le.size() - 1000, &mut want).unwrap();
    assert_eq!(buf, want);
    assert!(
        demand < full / 8,
        "demand took {demand:?}, the full transfer {full:?}"
    );
    sp.wait_complete().unwrap();
    let total = t0.elapsed();
    assert!(total >= full.mul_f64(0.9), "{total:?} vs {full:?}");
    eprintln!("demand read {demand:?}; full stream {total:?}");
}

#[test]
fn streaming_package_reads_like_a_local_package_and_resumes() {
    let pkg = package();
    let local = Package::parse(&pkg).unwrap();
    let dir = tmp();
    let paths = CachePaths::for_output(&dir.path().join("o.sft"), None);
    // Launch-only: FB2 comes only on demand.
    let sp = StreamingPackage::open(
        Arc::new(pkg.clone()),
        paths.clone(),
        StreamingOptions::default().session(SessionConfig::default().launch_only(true)),
    )
    .unwrap();
    sp.wait_launch_ready().unwrap();
    let names: Vec<String> = sp
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().to_owned())
        .collect();
    let want: Vec<String> = local
        .entries()
        .map(|e| e.unwrap().path().to_owned())
        .collect();
    assert_eq!(names, want);
    let doc = sp.entry("data/doc.txt").unwrap();
    let ldoc = local.entry("data/doc.txt").unwrap();
    assert_eq!(sp.read_file(&doc).unwrap(), local.read_file(&ldoc).unwrap());
    let mut r = sp.reader(sp.entry("data/big.bin").unwrap()).unwrap();
    r.seek(SeekFrom::End(-10)).unwrap();
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    let lbig = local
        .read_file(&local.entry("data/big.bin").unwrap())
        .unwrap();
    assert_eq!(tail, lbig[lbig.len() - 10..]);
    assert!(sp.read_block(BlockId(u32::MAX)).is_err());
    assert!(sp.entry("nope").is_err());
    let had = (0..sp.block_count())
        .filter(|&i| sp.is_present(BlockId(i)))
        .count() as u32;
    sp.close().unwrap();

    // Reopen: what is cached is not fetched again.
    let src = Arc::new(Counting {
        inner: pkg.clone(),
        delivered: AtomicU64::new(0),
    });
    let sp = StreamingPackage::open(
        Arc::clone(&src) as Arc<dyn RangeSource>,
        paths,
        StreamingOptions::default(),
    )
    .unwrap();
    sp.wait_complete().unwrap();
    for e in local.entries() {
        let e = e.unwrap();
        if e.is_file() {
            let s = sp.entry(e.path()).unwrap();
            assert_eq!(sp.read_file(&s).unwrap(), local.read_file(&e).unwrap());
        }
    }
    let l = layout(&pkg);
    assert!(had > l.fb1_blocks);
    assert!(src.delivered.load(Ordering::SeqCst) < pkg.len() as u64 - l.prologue_len);
}

#[test]
fn a_failed_stream_fails_waiting_readers() {
    let pkg = package();
    let l = layout(&pkg);
    let src = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 2,
            kind: TransportErrorKind::NotFound,
        }],
    );
    let dir = tmp();
    let paths = CachePaths::for_output(&dir.path().join("o.sft"), None);
    let sp = StreamingPackage::open(
        Arc::new(src),
        paths,
        StreamingOptions::default()
            .session(
                SessionConfig::default()
                    .initial_read(128)
                    .max_request_bytes(4096)
                    .max_in_flight_requests(1),
            )
            .timeout(Duration::from_secs(20)),
    )
    .unwrap();
    let e = sp.wait_block(BlockId(l.blocks - 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport, "{e}");
    assert!(e.to_string().contains("stream failed"), "{e}");
    assert!(sp.close().is_err());
}

#[test]
fn sources_by_name() {
    let pkg = package();
    let dir = tmp();
    let p = dir.path().join("src.sft");
    std::fs::write(&p, &pkg).unwrap();
    for spec in [p.display().to_string(), format!("file://{}", p.display())] {
        let s = open_source(&spec).unwrap();
        assert_eq!(s.len().unwrap(), pkg.len() as u64);
    }
    let mut refused = vec![
        ("ftp://h/x.sft", "unsupported scheme `ftp`"),
        ("file://otherhost/x.sft", "only local files"),
    ];
    // Schemes whose transport this build lacks are named as such.
    if cfg!(not(feature = "rtsp")) {
        refused.push(("rtsp://h/x.sft", "built without `rtsp` support"));
    }
    if cfg!(not(feature = "smb")) {
        refused.push(("smb://h/s/x.sft", "built without `smb` support"));
    }
    if cfg!(not(feature = "http")) {
        refused.push(("http://h/x.sft", "built without `http` support"));
    }
    for (spec, msg) in refused {
        let e = open_source(spec).err().unwrap();
        assert!(e.to_string().contains(msg), "{spec}: {e}");
    }
    assert_eq!(
        open_source(&dir.path().join("missing").display().to_string())
            .err()
            .unwrap()
            .kind(),
        ErrorKind::Io
    );
}

/// `fetch_spec` over our RTSP server (in-process, loopback), then resumed
/// after an interruption: byte-identical and verified; the resumed run
/// transfers only the missing blocks.
#[cfg(all(feature = "rtsp", feature = "rtsp-server"))]
#[test]
fn fetch_spec_over_rtsp_completes_and_resumes() {
    use sft::fetch::fetch_spec;
    use sft::serve::rtsp::{Server, ServerConfig};
    let pkg = package();
    let root = tmp();
    std::fs::write(root.path().join("app.sft"), &pkg).unwrap();
    let server = Server::bind("127.0.0.1:0", ServerConfig::new(root.path()))
        .unwrap()
        .spawn()
        .unwrap();
    let url = format!("rtsp://{}/app.sft", server.local_addr());
    let dir = tmp();
    let out = dir.path().join("o.sft");
    // First run: launch-only (prologue and FB1), then the rest.
    let first = fetch_spec(&url, &out, FetchOptions::default().launch_only(true)).unwrap();
    assert!(!first.complete && first.launch_ready.is_some());
    let second = fetch_spec(&url, &out, FetchOptions::default()).unwrap();
    assert!(second.complete);
    assert!(second.blocks_resumed > 0, "{second:?}");
    assert!(
        second.bytes_transferred < pkg.len() as u64,
        "the resumed run fetched everything again: {second:?}"
    );
    verify_file(&out, &pkg);
    server.shutdown().unwrap();
}

/// A file of 64 MiB of zeros (a package of ~100 KB) whose first block is
/// damaged, read whole through a streaming package: an error, and the
/// buffer never grew to the size the prologue declares.
#[test]
fn a_streamed_file_is_not_allocated_at_its_declared_size() {
    use sft::write::PackageBuilder;
    let mut b = PackageBuilder::new(sft::WriteOptions::default().name("Zeros"));
    b.add_bytes("zeros.bin", vec![0u8; 64 << 20]).unwrap();
    let mut bytes = b.write_to_vec().unwrap();
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    let first = Package::parse(&bytes)
        .unwrap()
        .index()
        .get(BlockId(0))
        .unwrap();
    bytes[first.stored_offset as usize + 3] ^= 0x55;
    let dir = tmp();
    let paths = CachePaths::for_output(&dir.path().join("o.sft"), None);
    let src: Arc<dyn RangeSource> = Arc::new(bytes);
    let sp = StreamingPackage::open(src, paths, StreamingOptions::default()).unwrap();
    let e = sp.entry("zeros.bin").unwrap();
    assert_eq!(e.size(), 64 << 20);
    crate::common::alloc::reset();
    let err = sp.read_file(&e).unwrap_err();
    let largest = crate::common::alloc::largest();
    assert!(err.to_string().contains("still damaged"), "{err}");
    assert!(largest < 8 << 20, "largest allocation {largest} B");
}
