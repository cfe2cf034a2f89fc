//! RTSP against HTTP, both from the crate's own servers on loopback, with
//! the crate's own clients (`RtspSource`, `HttpSource`) driven by the one
//! driver (`io::drive`) as `sft fetch --crc-only` drives them, the blocks
//! checked and dropped: one client, and 8 clients at once. The package is
//! a source-like tree (70% text, 30% bytecode-like), packed with the
//! defaults (zlib) and stored. Ratios between the `rtsp` and `http` lines
//! of one run are the figure; the bound is RTSP >= 1.0 x HTTP
//! (scripts/bench-rtsp.sh (d) measures the same with the real `sft fetch`
//! processes as clients).
//!
//! `cargo bench --features rtsp,rtsp-server,http,http-server,write --bench rtsp_bulk`

#[path = "common/gen.rs"]
mod generator;

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::io::{RangeSource, drive};
use sft::net::http::{HttpOptions, HttpSource};
use sft::net::rtsp::{RtspOptions, RtspSource};
use sft::stream::{NullSink, SessionConfig, StreamSession};
use sft::write::{Compression, PackageBuilder};

/// Fetch the whole package from `source` as `sft fetch --crc-only` does.
fn fetch(source: &dyn RangeSource) -> u64 {
    let mut s = StreamSession::new(SessionConfig::default().decode_blocks(false));
    let report = drive::drive(&mut s, source, &mut NullSink).expect("fetch");
    assert!(report.complete);
    report.bytes
}

/// `clients` fetches at once, each from its own source; the bytes moved.
fn fetch_all(clients: u64, open: &(dyn Fn() -> Box<dyn RangeSource> + Sync)) -> u64 {
    std::thread::scope(|s| {
        let all: Vec<_> = (0..clients).map(|_| s.spawn(|| fetch(&*open()))).collect();
        all.into_iter().map(|t| t.join().expect("client")).sum()
    })
}

fn pack(dir: &Path, name: &str, compression: Compression) -> u64 {
    let mut b = PackageBuilder::new(sft::WriteOptions::default().compression(compression));
    for (path, data) in generator::tree(7, 2_000, 1_000, 200_000) {
        b.add_bytes(&path, data).expect("add");
    }
    let bytes = b.write_to_vec().expect("pack");
    std::fs::write(dir.join(name), &bytes).expect("write");
    bytes.len() as u64
}

fn bulk(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sizes = [
        ("zlib", pack(dir.path(), "zlib.sft", Compression::Zlib(6))),
        ("stored", pack(dir.path(), "stored.sft", Compression::None)),
    ];
    for (name, len) in sizes {
        eprintln!("{name} package: {len} bytes");
    }
    if let Ok(keep) = std::env::var("SFT_BENCH_KEEP") {
        for (name, _) in sizes {
            let _ = std::fs::copy(
                dir.path().join(format!("{name}.sft")),
                Path::new(&keep).join(format!("{name}.sft")),
            );
        }
    }
    let rtsp = sft::serve::rtsp::Server::bind(
        "127.0.0.1:0",
        sft::serve::rtsp::ServerConfig::new(dir.path()),
    )
    .expect("rtsp server")
    .spawn()
    .expect("spawn");
    let http = sft::serve::http::Server::bind(
        "127.0.0.1:0",
        sft::serve::http::ServerConfig::new(dir.path()),
    )
    .expect("http server")
    .spawn()
    .expect("spawn");
    let (r, h) = (rtsp.local_addr(), http.local_addr());
    let mut g = c.benchmark_group("bulk");
    g.sample_size(10);
    for (name, len) in sizes {
        let rtsp_url = format!("rtsp://{r}/{name}.sft");
        let http_url = format!("http://{h}/{name}.sft");
        for clients in [1u64, 8] {
            g.throughput(Throughput::Bytes(len * clients));
            let open_rtsp = || -> Box<dyn RangeSource> {
                Box::new(RtspSource::open(&rtsp_url, &RtspOptions::default()).expect("open rtsp"))
            };
            let open_http = || -> Box<dyn RangeSource> {
                Box::new(HttpSource::open(&http_url, &HttpOptions::default()).expect("open http"))
            };
            g.bench_function(format!("rtsp_{name}_{clients}_clients"), |b| {
                b.iter(|| fetch_all(clients, &open_rtsp))
            });
            g.bench_function(format!("http_{name}_{clients}_clients"), |b| {
                b.iter(|| fetch_all(clients, &open_http))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
