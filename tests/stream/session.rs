//! The session and the blocking driver over hostile sources.

use std::ops::Range;

use proptest::prelude::*;
use sft::io::drive;
use sft::stream::{
    BlockSink, FetchRequest, NullSink, Priority, SessionConfig, StreamSession, TransportError,
    TransportErrorKind, VerifiedBlock,
};
use sft::{BlockId, Error, ErrorKind};

use super::common::{CheckingSink, ChunkedSource, Fault, FlakySource, layout, package};

fn pkg() -> &'static [u8] {
    static PKG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PKG.get_or_init(package)
}

/// Drive to the end, collecting every event's debug form.
fn run(
    config: SessionConfig,
    source: &dyn sft::io::RangeSource,
    sink: &mut dyn BlockSink,
) -> (
    Result<drive::DriveReport, Error>,
    Vec<String>,
    StreamSession,
) {
    let mut s = StreamSession::new(config);
    let mut events = Vec::new();
    let r = drive::drive_with(&mut s, source, sink, &mut |e| events.push(format!("{e:?}")));
    (r, events, s)
}

fn block_of_stored(pkg: &[u8], at: u64) -> BlockId {
    let p = sft::Package::parse(pkg).unwrap();
    let index = p.index();
    index
        .ids()
        .find(|&id| index.get(id).unwrap().stored_range().contains(&at))
        .unwrap()
}

#[test]
fn test_package_has_both_codecs_in_both_feature_blocks() {
    let p = sft::Package::parse(pkg()).unwrap();
    let index = p.index();
    let l = layout(pkg());
    assert!(
        l.fb1_blocks >= 10 && l.blocks - l.fb1_blocks >= 30,
        "{} {}",
        l.fb1_blocks,
        l.blocks
    );
    let codecs: std::collections::BTreeSet<(u8, String)> = index
        .ids()
        .map(|id| {
            let b = index.get(id).unwrap();
            (b.feature_block as u8, b.codec.to_string())
        })
        .collect();
    assert_eq!(codecs.len(), 4, "{codecs:?}");
}

#[test]
fn one_byte_reads_give_a_byte_identical_package() {
    let src = ChunkedSource::one_byte(pkg().to_vec());
    let mut sink = CheckingSink::new(pkg());
    let (r, events, s) = run(SessionConfig::default().initial_read(128), &src, &mut sink);
    let r = r.unwrap();
    assert!(r.complete && s.is_complete());
    assert_eq!(sink.image, pkg());
    assert_eq!(r.bytes, pkg().len() as u64, "every byte exactly once");
    let mut ids = sink.accepted.clone();
    ids.sort();
    assert_eq!(
        ids,
        (0..layout(pkg()).blocks).map(BlockId).collect::<Vec<_>>()
    );
    assert_eq!(events.iter().filter(|e| *e == "LaunchReady").count(), 1);
    assert_eq!(events.last().map(String::as_str), Some("Complete"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases.min(32), ..ProptestConfig::default() })]
    /// STYLE §3.10 item 4: any chunking and reordering, same blocks.
    #[test]
    fn any_chunking_and_order_gives_the_same_blocks(
        seed in any::<u64>(),
        max in 1usize..20_000,
        shuffle in any::<bool>(),
        req in 4096u64..200_000,
        in_flight in 1u32..6,
        initial in 0u64..70_000,
    ) {
        let src = ChunkedSource::random(pkg().to_vec(), seed, max, shuffle);
        let mut sink = CheckingSink::new(pkg());
        let config = SessionConfig::default()
            .max_request_bytes(req)
            .max_in_flight_requests(in_flight)
            .initial_read(initial);
        let (r, _, _) = run(config, &src, &mut sink);
        prop_assert!(r.unwrap().complete);
        prop_assert_eq!(&sink.image[..], pkg());
        prop_assert_eq!(sink.accepted.len() as u32, layout(pkg()).blocks);
    }
}

#[test]
fn corrupt_bytes_are_never_accepted_and_are_refetched() {
    let l = layout(pkg());
    // One byte in FB1, one in FB2, each corrupted on two deliveries.
    let fb1_at = l.prologue_len + 5000;
    let fb2_at = l.prologue_len + l.fb1_stored_len + 20_000;
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![
            Fault::Corrupt {
                at: fb1_at,
                times: 2,
            },
            Fault::Corrupt {
                at: fb2_at,
                times: 2,
            },
        ],
    );
    let mut sink = CheckingSink::new(pkg());
    let (r, events, s) = run(SessionConfig::default().initial_read(128), &src, &mut sink);
    assert!(r.unwrap().complete);
    assert_eq!(sink.image, pkg());
    for at in [fb1_at, fb2_at] {
        let id = block_of_stored(pkg(), at);
        // Each damaged delivery is told, with its attempt number.
        let refetches: Vec<&String> = events
            .iter()
            .filter(|e| e.starts_with(&format!("Refetch {{ block: {id:?},")))
            .collect();
        assert_eq!(refetches.len(), 2, "{events:?}");
        assert!(refetches[0].contains("attempt: 1") && refetches[1].contains("attempt: 2"));
        let info = *s.block_info(id).unwrap();
        let fetched = src.requested().iter().filter(|r| r.contains(&at)).count();
        assert_eq!(fetched, 3, "{id} fetched twice corrupt, then good");
        // The refetch asks for the bad block alone.
        assert!(src.requested().contains(&info.stored_range()));
    }
}

#[test]
fn a_block_that_stays_corrupt_fails_after_max_attempts_naming_it() {
    let l = layout(pkg());
    let at = l.prologue_len + l.fb1_stored_len + 1;
    let bad = block_of_stored(pkg(), at);
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![Fault::Corrupt {
            at,
            times: u32::MAX,
        }],
    );
    let mut sink = CheckingSink::new(pkg());
    let config = SessionConfig::default().max_attempts(3).initial_read(128);
    let (r, events, s) = run(config, &src, &mut sink);
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    match &e {
        sft::Error::Exhausted {
            block,
            endpoint,
            attempts,
            last,
        } => {
            assert_eq!(*block, bad);
            assert_eq!(endpoint, "flaky://test");
            assert_eq!(*attempts, 3);
            assert_eq!(last.block(), Some(bad));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert!(e.to_string().contains(&format!("{bad}")), "{e}");
    assert!(e.to_string().contains("flaky://test"), "{e}");
    assert!(s.is_failed() && !s.is_complete());
    assert_eq!(
        src.requested().iter().filter(|r| r.contains(&at)).count(),
        3
    );
    assert!(!sink.accepted.contains(&bad));
    assert!(events.last().unwrap().starts_with("Failed"));
}

#[test]
fn transient_failures_and_dropped_connections_are_retried() {
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![
            Fault::FailCall {
                call: 0,
                kind: TransportErrorKind::Timeout,
            },
            Fault::DropMidway { call: 2 },
            Fault::FailCall {
                call: 3,
                kind: TransportErrorKind::ConnectionLost,
            },
        ],
    );
    let mut sink = CheckingSink::new(pkg());
    let (r, _, _) = run(
        SessionConfig::default().max_request_bytes(32 * 1024),
        &src,
        &mut sink,
    );
    let r = r.unwrap();
    assert!(r.complete);
    assert_eq!(r.transport_failures, 3);
    assert_eq!(sink.image, pkg());
}

#[test]
fn persistent_failures_fail_naming_the_block_and_the_source() {
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![Fault::FailFrom {
            from: 2,
            kind: TransportErrorKind::ConnectionLost,
        }],
    );
    // The driver gives the session the time: it retries for its window.
    let config = SessionConfig::default()
        .retry(
            sft::stream::RetryPolicy::default()
                .window(std::time::Duration::from_millis(300))
                .backoff(
                    std::time::Duration::from_millis(50),
                    std::time::Duration::from_millis(50),
                ),
        )
        .initial_read(128)
        .max_in_flight_requests(1);
    let (r, _, _) = run(config, &src, &mut NullSink);
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("flaky://test")
            && msg.contains("block ")
            && msg.contains("the retry window is 0.3 s"),
        "{msg}"
    );
    // Two calls succeed, then one every 50 ms for 300 ms fails (at least
    // one retry, however late the machine wakes the driver).
    let calls = src.calls.lock().unwrap().len();
    assert!((4..=9).contains(&calls), "{calls} calls");
    // The failure is a transport error whose kind is inspectable.
    assert_eq!(e.kind(), sft::ErrorKind::Transport);
    let kind = match &e {
        sft::Error::Transport(t) => Some(t.kind()),
        _ => None,
    };
    assert_eq!(kind, Some(TransportErrorKind::ConnectionLost));
}

#[test]
fn a_fatal_transport_error_fails_at_once() {
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![Fault::FailCall {
            call: 1,
            kind: TransportErrorKind::NotFound,
        }],
    );
    let (r, _, _) = run(SessionConfig::default(), &src, &mut NullSink);
    assert!(r.unwrap_err().to_string().contains("not found"));
    assert_eq!(src.calls.lock().unwrap().len(), 2);
}

/// A hand driver serving one request at a time, fully, in order.
fn serve(s: &mut StreamSession, req: &FetchRequest, sink: &mut dyn BlockSink) {
    let bytes = &pkg()[req.range.start as usize..req.range.end as usize];
    s.on_data(req.id, req.range.start, bytes, sink).unwrap();
}

fn drain(s: &mut StreamSession) -> Vec<String> {
    std::iter::from_fn(|| s.poll_event())
        .map(|e| format!("{e:?}"))
        .collect()
}

#[test]
fn a_demand_pre_empts_fb1_and_background_requests() {
    let l = layout(pkg());
    let config = SessionConfig::default()
        .initial_read(128)
        .max_request_bytes(8192)
        .fb1_request_bytes(8192)
        .max_in_flight_requests(1);
    let mut s = StreamSession::new(config);
    s.on_source_len(pkg().len() as u64);
    let mut log: Vec<(Priority, Range<u32>)> = Vec::new();
    let last = BlockId(l.blocks - 1);
    while let Some(req) = s.poll_fetch() {
        log.push((req.priority, req.blocks.clone()));
        serve(&mut s, &req, &mut NullSink);
        // After the first FB1 request, a read faults on the last block.
        if log.iter().filter(|(p, _)| *p == Priority::Fb1).count() == 1 && !s.is_present(last) {
            s.request_block(last).unwrap();
            s.request_block(last).unwrap(); // a duplicate fault changes nothing
        }
    }
    assert!(s.is_complete());
    let pos = log
        .iter()
        .position(|(p, _)| *p == Priority::Demand)
        .unwrap();
    let first_fb1 = log.iter().position(|(p, _)| *p == Priority::Fb1).unwrap();
    assert_eq!(pos, first_fb1 + 1, "{log:?}");
    assert_eq!(log[pos].1, last.0..last.0 + 1);
    assert_eq!(
        log.iter().filter(|(_, b)| b.contains(&last.0)).count(),
        1,
        "fetched once"
    );
    // FB1 is finished before any FB2 prefetch.
    let last_fb1 = log.iter().rposition(|(p, _)| *p == Priority::Fb1).unwrap();
    let first_fb2 = log.iter().position(|(p, _)| *p == Priority::Fb2).unwrap();
    assert!(last_fb1 < first_fb2);
}

#[test]
fn a_demand_while_fb1_is_in_flight_goes_before_fb2() {
    let l = layout(pkg());
    let mut s = StreamSession::new(
        SessionConfig::default()
            .initial_read(128)
            .max_request_bytes(16 * 1024),
    );
    s.on_source_len(pkg().len() as u64);
    let mut out = Vec::new();
    while let Some(req) = s.poll_fetch() {
        let is_fb1 = req.priority == Priority::Fb1;
        if is_fb1 {
            // FB1 is one request, exactly the FB1 region.
            assert_eq!(req.range, l.prologue_len..l.prologue_len + l.fb1_stored_len);
            // FB1 in flight: a read faults on an FB2 block in the middle.
            s.request_range(200_000..200_001).unwrap();
            let next = s.poll_fetch().unwrap();
            assert_eq!(next.priority, Priority::Demand);
            out.push(next);
        }
        out.push(req);
        // Serve what is in flight, newest first.
        while let Some(r) = out.pop() {
            serve(&mut s, &r, &mut NullSink);
        }
    }
    assert!(s.is_complete());
}

#[test]
fn launch_ready_fires_exactly_when_the_last_fb1_byte_arrives() {
    let l = layout(pkg());
    let mut s = StreamSession::new(
        SessionConfig::default()
            .initial_read(128)
            .max_in_flight_requests(1),
    );
    s.on_source_len(pkg().len() as u64);
    let mut delivered = 0u64;
    let mut launch_at = None;
    let mut prologue_at = None;
    while let Some(req) = s.poll_fetch() {
        for at in req.range.clone() {
            s.on_data(
                req.id,
                at,
                &pkg()[at as usize..at as usize + 1],
                &mut NullSink,
            )
            .unwrap();
            delivered += 1;
            for e in drain(&mut s) {
                if e == "LaunchReady" {
                    assert!(launch_at.is_none());
                    launch_at = Some(delivered);
                }
                if e == "PrologueReady" {
                    prologue_at = Some(delivered);
                }
            }
        }
    }
    assert_eq!(prologue_at, Some(l.prologue_len));
    assert_eq!(launch_at, Some(l.prologue_len + l.fb1_stored_len));
    assert!(s.is_complete());
}

#[test]
fn launch_only_stops_after_fb1_and_still_serves_demands() {
    let l = layout(pkg());
    let src = FlakySource::new(pkg().to_vec(), vec![]);
    let mut sink = CheckingSink::new(pkg());
    let (r, events, mut s) = run(
        SessionConfig::default().launch_only(true).initial_read(128),
        &src,
        &mut sink,
    );
    let r = r.unwrap();
    assert!(r.launch_ready && !r.complete);
    assert_eq!(src.delivered(), l.prologue_len + l.fb1_stored_len);
    assert!(events.contains(&"LaunchReady".to_string()));
    let last = BlockId(l.blocks - 1);
    s.request_block(last).unwrap();
    let before = src.delivered();
    drive::drive(&mut s, &src, &mut sink).unwrap();
    assert!(s.is_present(last));
    assert_eq!(
        src.delivered() - before,
        u64::from(s.block_info(last).unwrap().stored_len)
    );
}

#[test]
fn resume_fetches_only_missing_blocks() {
    let l = layout(pkg());
    let p = sft::Package::parse(pkg()).unwrap();
    let index = p.index();
    // The cache holds the prologue and every third block.
    let held: Vec<BlockId> = index.ids().filter(|id| id.0 % 3 == 0).collect();
    let missing: u64 = index
        .ids()
        .filter(|id| id.0 % 3 != 0)
        .map(|id| u64::from(index.get(id).unwrap().stored_len))
        .sum();
    let mut s = StreamSession::with_prologue(
        SessionConfig::default(),
        pkg()[..l.prologue_len as usize].to_vec(),
    )
    .unwrap();
    for &id in &held {
        s.mark_present(id).unwrap();
    }
    let src = FlakySource::new(pkg().to_vec(), vec![]);
    let mut image = pkg().to_vec();
    for id in index.ids().filter(|id| id.0 % 3 != 0) {
        let r = index.get(id).unwrap().stored_range();
        image[r.start as usize..r.end as usize].fill(0);
    }
    let r = drive::drive(&mut s, &src, &mut image).unwrap();
    assert!(r.complete);
    assert_eq!(src.delivered(), missing);
    assert_eq!(image, pkg());
    // mark_present before the prologue is known works the same way.
    let mut s = StreamSession::new(SessionConfig::default().initial_read(128));
    for &id in &held {
        s.mark_present(id).unwrap();
    }
    let src = FlakySource::new(pkg().to_vec(), vec![]);
    drive::drive(&mut s, &src, &mut NullSink).unwrap();
    assert_eq!(src.delivered(), missing + l.prologue_len);
}

#[test]
fn the_same_inputs_give_the_same_request_sequence() {
    let go = || {
        let l = layout(pkg());
        let src = FlakySource::new(
            pkg().to_vec(),
            vec![
                Fault::Corrupt {
                    at: l.prologue_len + 9000,
                    times: 1,
                },
                Fault::DropMidway { call: 3 },
                Fault::FailCall {
                    call: 5,
                    kind: TransportErrorKind::Io,
                },
            ],
        );
        let config = SessionConfig::default()
            .max_request_bytes(12_000)
            .max_in_flight_requests(3);
        let (r, events, _) = run(config, &src, &mut NullSink);
        assert!(r.unwrap().complete);
        let calls = src.calls.lock().unwrap().clone();
        (calls, events)
    };
    let a = go();
    assert!(a.0.len() > 5);
    assert_eq!(a, go());
}

#[test]
fn misuse_is_an_error_and_the_prologue_is_readable() {
    let mut s = StreamSession::new(SessionConfig::default());
    assert_eq!(
        s.request_block(BlockId(0)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let req = s.poll_fetch().unwrap();
    assert_eq!(
        (req.priority, req.range.clone()),
        (Priority::Prologue, 0..65_536)
    );
    assert!(s.poll_fetch().is_none(), "one prologue request at a time");
    let e = s
        .on_data(sft::stream::RequestId(99), 0, b"x", &mut NullSink)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = s
        .on_data(req.id, 65_530, &[0; 10], &mut NullSink)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    // The package is smaller than the guess: the driver reports the
    // length; a request past it fails as "range not satisfiable".
    s.on_failure(
        req.id,
        &TransportError::new(TransportErrorKind::RangeNotSatisfiable, "memory"),
    );
    assert!(s.is_failed());
    // With the length known first, the guess is clamped.
    let mut s = StreamSession::new(SessionConfig::default());
    s.on_source_len(pkg().len() as u64);
    let mut sink = Vec::new();
    drive::drive(&mut s, &pkg().to_vec(), &mut sink).unwrap();
    let p = s.prologue().unwrap();
    assert_eq!(p.metadata().name(), "Stream");
    assert!(p.find("data/doc.txt").unwrap().is_some());
    assert_eq!(s.progress().bytes, pkg().len() as u64);
    assert!(s.is_complete() && s.is_launch_ready());
    assert!(drain(&mut s).is_empty(), "drive consumed the events");
}

#[test]
fn a_damaged_prologue_is_refetched_then_a_bad_one_fails() {
    // Corrupt a byte of the block index once: refetched, then fine.
    let l = layout(pkg());
    let src = FlakySource::new(
        pkg().to_vec(),
        vec![Fault::Corrupt {
            at: l.prologue_len - 10,
            times: 1,
        }],
    );
    let mut sink = CheckingSink::new(pkg());
    let (r, _, _) = run(SessionConfig::default(), &src, &mut sink);
    assert!(r.unwrap().complete);
    assert_eq!(sink.image, pkg());
    // Not an SFT package at all: a format error, at once.
    let junk = vec![7u8; 5000];
    let (r, _, _) = run(SessionConfig::default(), &junk, &mut NullSink);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Format);
}

/// A sink that fails once on one block: the error is returned and the
/// block is fetched again on the next run.
#[test]
fn a_failing_sink_leaves_the_block_absent() {
    struct Once(bool, Vec<u8>);
    impl BlockSink for Once {
        fn prologue(&mut self, b: &[u8]) -> Result<(), Error> {
            self.1.prologue(b)
        }
        fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
            if b.info.id == BlockId(5) && !self.0 {
                self.0 = true;
                return Err(Error::InvalidInput("disk full".into()));
            }
            self.1.block(b)
        }
    }
    let mut sink = Once(false, Vec::new());
    let mut s = StreamSession::new(SessionConfig::default());
    let e = drive::drive(&mut s, &pkg().to_vec(), &mut sink).unwrap_err();
    assert!(e.to_string().contains("disk full"));
    assert!(!s.is_present(BlockId(5)));
    // The driver cancelled the interrupted requests: a second run
    // finishes the package.
    assert_eq!(s.in_flight_requests(), 0);
    assert!(
        drive::drive(&mut s, &pkg().to_vec(), &mut sink)
            .unwrap()
            .complete
    );
    assert_eq!(sink.1, pkg());
}

#[test]
fn packages_without_fb1_or_without_blocks_are_ready_at_once() {
    use sft::write::PackageBuilder;
    for files in [0usize, 2] {
        let mut b = PackageBuilder::new(sft::WriteOptions::default().created(0, 0));
        for i in 0..files {
            b.add_bytes(&format!("f{i}"), super::common::noise(i as u64, 10_000))
                .unwrap();
        }
        let bytes = b.write_to_vec().unwrap();
        let fb1 = layout(&bytes).fb1_blocks;
        let mut s = StreamSession::new(SessionConfig::default().initial_read(128));
        let mut events = Vec::new();
        let mut copy = Vec::new();
        drive::drive_with(&mut s, &bytes, &mut copy, &mut |e| {
            if !matches!(
                e,
                sft::stream::Event::BlockReady(_) | sft::stream::Event::Progress(_)
            ) {
                events.push(format!("{e:?}"));
            }
        })
        .unwrap();
        assert_eq!(copy, bytes);
        if fb1 == 0 {
            assert_eq!(
                events[..2],
                ["PrologueReady", "LaunchReady"],
                "{files} files"
            );
        }
        assert_eq!(events.last().map(String::as_str), Some("Complete"));
        assert_eq!(events.iter().filter(|e| *e == "LaunchReady").count(), 1);
    }
}

#[test]
fn with_prologue_ignores_extra_bytes_and_a_failed_prologue_sink_starts_over() {
    let l = layout(pkg());
    let mut s = StreamSession::with_prologue(SessionConfig::default(), pkg().to_vec()).unwrap();
    assert_eq!(s.progress().blocks, 0);
    let src = FlakySource::new(pkg().to_vec(), vec![]);
    let mut image = pkg()[..l.prologue_len as usize].to_vec();
    assert!(drive::drive(&mut s, &src, &mut image).unwrap().complete);
    assert_eq!(src.delivered(), pkg().len() as u64 - l.prologue_len);
    assert_eq!(image, pkg());
    let e =
        StreamSession::with_prologue(SessionConfig::default(), pkg()[..200].to_vec()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Format);

    struct FailFirst(bool, Vec<u8>);
    impl BlockSink for FailFirst {
        fn prologue(&mut self, b: &[u8]) -> Result<(), Error> {
            if !self.0 {
                self.0 = true;
                return Err(Error::InvalidInput("no space".into()));
            }
            self.1.prologue(b)
        }
        fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
            self.1.block(b)
        }
    }
    let mut sink = FailFirst(false, Vec::new());
    let mut s = StreamSession::new(SessionConfig::default());
    assert!(drive::drive(&mut s, &pkg().to_vec(), &mut sink).is_err());
    assert!(
        drive::drive(&mut s, &pkg().to_vec(), &mut sink)
            .unwrap()
            .complete
    );
    assert_eq!(sink.1, pkg());
}
