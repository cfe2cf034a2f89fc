//! Streaming core benchmarks: the scheduler over 10k–100k blocks, and a
//! whole session over an in-memory source (CRC + inflate and CRC only).
//! Real numbers are taken by hand (`cargo bench --bench stream`); see
//! docs/BENCHMARKS-STREAM.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sft::FeatureBlock;
use sft::io::drive;
use sft::stream::{NullSink, Scheduler, SchedulerLimits, SessionConfig, StreamSession};

fn scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    for n in [10_000u32, 100_000] {
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(format!("serve_{n}_blocks_with_demands"), |b| {
            b.iter(|| {
                let blocks = (0..n).map(|i| {
                    let fb = if i < n / 10 {
                        FeatureBlock::Fb1
                    } else {
                        FeatureBlock::Fb2
                    };
                    (1000 + 65_536 * u64::from(i), 65_536u32, fb)
                });
                let mut s = Scheduler::new(blocks, SchedulerLimits::default());
                s.queue_all(true);
                let mut served = 0u32;
                let mut k = 0u32;
                while let Some(batch) = s.poll() {
                    // A demand fault every few requests, far ahead.
                    k = k.wrapping_add(7919);
                    s.demand(k % n);
                    for id in batch.blocks.clone() {
                        s.block_present(id);
                        served += 1;
                    }
                    s.request_done(batch.range.end - batch.range.start);
                }
                served
            })
        });
    }
    g.finish();
}

fn session(c: &mut Criterion) {
    use sft::write::{BlockSize, PackageBuilder};
    let mut data = Vec::new();
    let mut x = 1u64;
    for i in 0..16 << 20 {
        if i % 2 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        data.push(if i % 131_072 < 65_536 {
            x as u8
        } else {
            b"text "[i % 5]
        });
    }
    let package = PackageBuilder::new(sft::WriteOptions::default().block_size(BlockSize::K64))
        .add_bytes("data.bin", data)
        .and_then(|b| b.write_to_vec())
        .unwrap_or_default();
    let mut g = c.benchmark_group("session");
    g.throughput(Throughput::Bytes(package.len() as u64));
    g.sample_size(10);
    for (name, decode) in [("memory_crc_and_inflate", true), ("memory_crc_only", false)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut s = StreamSession::new(SessionConfig::default().decode_blocks(decode));
                drive::drive(&mut s, &package, &mut NullSink).map(|r| r.bytes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, scheduler, session);
criterion_main!(benches);
