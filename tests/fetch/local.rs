//! The local fast path (`fetch_file`): in-kernel copies into the cache
//! file, each block checked there.

use std::sync::{Arc, Mutex};

use sft::fetch::cache::{Cache, CacheOptions, CachePaths};
use sft::fetch::{FetchOptions, fetch, fetch_file};
use sft::io::file::FileSource;
use sft::stream::{Event, SessionConfig, TransportErrorKind};
use sft::{BlockId, Package};

use super::common::{Fault, FlakySource, layout, package};

fn write_source(dir: &std::path::Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join("src.sft");
    std::fs::write(&p, bytes).unwrap();
    p
}

fn verify_file(path: &std::path::Path, original: &[u8]) {
    let got = std::fs::read(path).unwrap();
    assert!(got == original, "fetched file differs from the source");
    Package::parse(&got).unwrap().verify().unwrap();
}

/// Small requests, several in flight: many copies pipelined with checks.
fn small() -> SessionConfig {
    SessionConfig::default()
        .max_request_bytes(8 * 1024)
        .fb1_request_bytes(8 * 1024)
        .max_in_flight_requests(3)
}

#[test]
fn a_fast_path_fetch_is_identical_verified_and_reports_like_fetch() {
    let pkg = package();
    let l = layout(&pkg);
    let dir = tempfile::tempdir().unwrap();
    let src = write_source(dir.path(), &pkg);
    for (name, session) in [
        ("default", SessionConfig::default()),
        ("small", small()),
        ("crc-only", small().decode_blocks(false)),
    ] {
        let out = dir.path().join(format!("{name}.sft"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let options = FetchOptions::default()
            .session(session)
            .on_event(move |e| match e {
                Event::LaunchReady => log.lock().unwrap().push("LaunchReady"),
                Event::Complete => log.lock().unwrap().push("Complete"),
                _ => {}
            });
        let r = fetch_file(&FileSource::open(&src).unwrap(), &out, options).unwrap();
        assert!(r.complete, "{name}");
        // As much as through any source (a block the first read cut
        // short is fetched whole again).
        let generic = fetch(
            &pkg,
            &dir.path().join("generic.sft"),
            FetchOptions::default(),
        )
        .unwrap()
        .bytes_transferred;
        assert_eq!(r.bytes_transferred, generic, "{name}");
        assert_eq!(r.blocks_fetched, l.blocks, "{name}");
        assert_eq!(r.blocks_resumed, 0, "{name}");
        assert!(r.launch_ready.is_some(), "{name}");
        assert_eq!(*seen.lock().unwrap(), ["LaunchReady", "Complete"], "{name}");
        verify_file(&out, &pkg);
        assert!(!r.cache.data.exists() && !r.cache.bitmap.exists());
    }
}

#[test]
fn a_corrupted_source_block_is_never_accepted_and_resume_fetches_only_the_rest() {
    let pkg = package();
    let l = layout(&pkg);
    let dir = tempfile::tempdir().unwrap();
    // Damage an FB2 block near the end (past the first 64 KiB read, so
    // it arrives through an in-kernel copy).
    let at = pkg.len() as u64 - 100;
    let mut bad = pkg.clone();
    bad[at as usize] ^= 0x40;
    let src = write_source(dir.path(), &bad);
    let out = dir.path().join("o.sft");
    let options = || FetchOptions::default().session(small().max_attempts(3));
    let e = fetch_file(&FileSource::open(&src).unwrap(), &out, options()).unwrap_err();
    let sft::Error::Exhausted {
        block,
        endpoint,
        attempts,
        ..
    } = &e
    else {
        panic!("expected Exhausted, got {e:?}");
    };
    assert_eq!(*attempts, 3);
    assert_eq!(endpoint, &src.display().to_string());
    assert!(e.to_string().contains(&block.to_string()), "{e}");
    assert!(!out.exists());

    // The failed block is the damaged one; it is not present, and every
    // block that is present holds the right bytes.
    let cache = Cache::open(CachePaths::for_output(&out, None), CacheOptions::default()).unwrap();
    let damaged = cache
        .blocks()
        .iter()
        .find(|b| b.stored_range().contains(&at))
        .unwrap()
        .id;
    assert_eq!(*block, damaged);
    assert!(!cache.is_present(damaged));
    assert!(cache.present_count() > l.fb1_blocks);
    let data = std::fs::read(&cache.paths().data).unwrap();
    let present: Vec<BlockId> = cache.present_blocks().collect();
    for id in &present {
        let r = cache.blocks()[id.0 as usize].stored_range();
        assert_eq!(
            data[r.start as usize..r.end as usize],
            pkg[r.start as usize..r.end as usize],
            "{id}"
        );
    }
    drop(cache);

    // Repaired source: the resume copies only the missing blocks.
    std::fs::write(&src, &pkg).unwrap();
    let r = fetch_file(&FileSource::open(&src).unwrap(), &out, options()).unwrap();
    assert!(r.complete);
    assert_eq!(r.blocks_resumed as usize, present.len());
    assert_eq!(r.blocks_resumed + r.blocks_fetched, l.blocks);
    let missing = pkg.len() as u64 - l.prologue_len - r.bytes_resumed;
    assert_eq!(r.bytes_transferred, 128 + missing, "{r:?}");
    verify_file(&out, &pkg);
}

#[test]
fn launch_only_then_the_rest_and_resume_across_paths() {
    let pkg = package();
    let l = layout(&pkg);
    let dir = tempfile::tempdir().unwrap();
    let src = write_source(dir.path(), &pkg);
    let out = dir.path().join("o.sft");
    let r = fetch_file(
        &FileSource::open(&src).unwrap(),
        &out,
        FetchOptions::default().session(small()).launch_only(true),
    )
    .unwrap();
    assert!(!r.complete && r.launch_ready.is_some());
    assert!(!out.exists());
    assert!(r.blocks_fetched >= l.fb1_blocks);
    let r = fetch_file(
        &FileSource::open(&src).unwrap(),
        &out,
        FetchOptions::default(),
    )
    .unwrap();
    assert!(r.complete);
    assert!(r.blocks_resumed >= l.fb1_blocks);
    let missing = pkg.len() as u64 - l.prologue_len - r.bytes_resumed;
    assert_eq!(r.bytes_transferred, 128 + missing, "{r:?}");
    verify_file(&out, &pkg);

    // A partial generic fetch, finished by the fast path.
    let out = dir.path().join("p.sft");
    let flaky = FlakySource::new(
        pkg.clone(),
        vec![Fault::FailFrom {
            from: 4,
            kind: TransportErrorKind::NotFound,
        }],
    );
    fetch(&flaky, &out, FetchOptions::default().session(small())).unwrap_err();
    let r = fetch_file(
        &FileSource::open(&src).unwrap(),
        &out,
        FetchOptions::default(),
    )
    .unwrap();
    assert!(r.complete && r.blocks_resumed > 0, "{r:?}");
    let missing = pkg.len() as u64 - l.prologue_len - r.bytes_resumed;
    assert_eq!(r.bytes_transferred, 128 + missing, "{r:?}");
    verify_file(&out, &pkg);
}

#[test]
fn a_rate_limit_paces_the_copies() {
    let pkg = package();
    let dir = tempfile::tempdir().unwrap();
    let src = write_source(dir.path(), &pkg);
    let out = dir.path().join("o.sft");
    let rate = 1 << 20;
    let r = fetch_file(
        &FileSource::open(&src).unwrap(),
        &out,
        FetchOptions::default().limit_rate(rate),
    )
    .unwrap();
    assert!(r.complete);
    // Everything after the first 64 KiB read is paced.
    let paced = pkg.len() as f64 - 65536.0;
    let least = paced / rate as f64 * 0.8;
    assert!(r.total.as_secs_f64() >= least, "{r:?}");
    verify_file(&out, &pkg);
}
