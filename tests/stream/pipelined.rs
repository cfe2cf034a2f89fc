//! The driver's pipelined mode (`Driver::pipelined`): a reader thread
//! reading pieces after `will_read`, check threads, in-order delivery;
//! against the sequential mode and the original bytes, with damaged and
//! failing reads.

use std::ops::Range;
use std::sync::Mutex;

use sft::io::RangeSource;
use sft::io::drive::Driver;
use sft::stream::{
    BlockSink, Event, SessionConfig, StreamSession, TransportError, TransportErrorKind,
    VerifiedBlock,
};
use sft::{Error, ErrorKind};

use super::common::package;

/// Every block record of `pkg`.
fn infos(pkg: &[u8]) -> Vec<sft::BlockInfo> {
    let p = sft::Package::parse(pkg).unwrap();
    let index = p.index();
    index.ids().map(|id| index.get(id).unwrap()).collect()
}

/// A source read in pieces: records the announced ranges and the reads,
/// corrupts the byte at `corrupt` in the first `times` reads that cover
/// it, and fails the `fail`-th read (0-based) once.
struct PieceSource {
    data: Vec<u8>,
    corrupt: Option<u64>,
    times: Mutex<u32>,
    fail: Option<usize>,
    announced: Mutex<Vec<Range<u64>>>,
    reads: Mutex<Vec<Range<u64>>>,
}

impl PieceSource {
    fn new(data: Vec<u8>) -> Self {
        PieceSource {
            data,
            corrupt: None,
            times: Mutex::new(0),
            fail: None,
            announced: Mutex::new(Vec::new()),
            reads: Mutex::new(Vec::new()),
        }
    }
}

impl RangeSource for PieceSource {
    fn len(&self) -> Result<u64, TransportError> {
        Ok(self.data.len() as u64)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        self.data.as_slice().read_at(offset, buf)
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), TransportError> {
        let range = offset..offset + buf.len() as u64;
        let n = {
            let mut reads = self.reads.lock().unwrap();
            reads.push(range.clone());
            reads.len() - 1
        };
        if self.fail == Some(n) {
            return Err(
                TransportError::new(TransportErrorKind::ConnectionLost, "piece://test")
                    .with_range(range),
            );
        }
        self.data.as_slice().read_exact_at(offset, buf)?;
        if let Some(at) = self.corrupt
            && range.contains(&at)
        {
            let mut times = self.times.lock().unwrap();
            if *times > 0 {
                *times -= 1;
                buf[(at - offset) as usize] ^= 0x40;
            }
        }
        Ok(())
    }
    fn will_read(&self, range: Range<u64>) {
        self.announced.lock().unwrap().push(range);
    }
    fn streaming_reads(&self) -> bool {
        true
    }
    fn endpoint(&self) -> String {
        "piece://test".into()
    }
}

/// Rebuilds the package, asserting that every block handed over holds
/// the original bytes; keeps stored bytes only (so check threads run).
struct StoredSink<'a> {
    original: &'a [u8],
    image: Vec<u8>,
    blocks: Vec<u32>,
}

impl BlockSink for StoredSink<'_> {
    fn prologue(&mut self, bytes: &[u8]) -> Result<(), Error> {
        assert_eq!(bytes, &self.original[..bytes.len()]);
        self.image.prologue(bytes)
    }
    fn block(&mut self, b: &VerifiedBlock<'_>) -> Result<(), Error> {
        let r = b.info.stored_range();
        assert_eq!(
            b.stored,
            &self.original[r.start as usize..r.end as usize],
            "{} handed over damaged",
            b.info.id
        );
        self.blocks.push(b.info.id.0);
        self.image.block(b)
    }
    fn needs_decoded(&self) -> bool {
        false
    }
}

fn run(
    source: &PieceSource,
    threads: usize,
    piece: u64,
    config: SessionConfig,
) -> (
    Result<sft::io::drive::DriveReport, Error>,
    StoredSink<'_>,
    Vec<String>,
) {
    let mut session = StreamSession::new(config.max_request_bytes(64 * 1024));
    let mut sink = StoredSink {
        original: &source.data,
        image: Vec::new(),
        blocks: Vec::new(),
    };
    let mut events = Vec::new();
    let result = Driver::new(source)
        .check_threads(threads)
        .pieces(piece, 4)
        .run(&mut session, &mut sink, &mut |e| {
            events.push(match e {
                Event::BlockReady(_) | Event::Progress(_) => String::new(),
                Event::Refetch { block, .. } => format!("Refetch {}", block.0),
                other => format!("{other:?}"),
            });
        });
    events.retain(|e| !e.is_empty());
    (result, sink, events)
}

#[test]
fn pipelined_copies_exactly_with_any_threads_and_pieces() {
    let pkg = package();
    let blocks = infos(&pkg).len();
    for threads in [0, 1, 2, 3] {
        for piece in [1, 4096, 10_000, 1 << 20] {
            let source = PieceSource::new(pkg.clone());
            let driver = Driver::new(&source);
            assert!(driver.is_pipelined());
            let (result, sink, events) = run(&source, threads, piece, SessionConfig::default());
            let report = result.unwrap();
            assert!(report.complete && report.launch_ready, "{threads}/{piece}");
            assert!(sink.image == pkg, "{threads}/{piece}: image differs");
            let mut seen = sink.blocks.clone();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), blocks, "{threads}/{piece}: every block once");
            assert_eq!(
                sink.blocks.len(),
                blocks,
                "{threads}/{piece}: no block twice"
            );
            let at = |name: &str| events.iter().position(|e| e == name).unwrap();
            assert!(at("PrologueReady") < at("LaunchReady"), "{events:?}");
            assert!(at("LaunchReady") < at("Complete"), "{events:?}");
            // Every read lies inside a range announced before it, in order.
            let announced = source.announced.lock().unwrap().clone();
            for r in source.reads.lock().unwrap().iter() {
                assert!(
                    announced
                        .iter()
                        .any(|a| a.start <= r.start && r.end <= a.end),
                    "{r:?} was not announced"
                );
            }
            // Everything once (the first read may take the start of the
            // blocks with the prologue, and they are not read again).
            assert!(report.bytes >= pkg.len() as u64, "{threads}/{piece}");
        }
    }
}

#[test]
fn a_block_damaged_once_is_fetched_again_and_never_handed_over() {
    let pkg = package();
    let all = infos(&pkg);
    // A zlib block and a stored one.
    let mut targets = Vec::new();
    for codec in [sft::Codec::Zlib, sft::Codec::Stored] {
        let b = all
            .iter()
            .rfind(|b| b.codec == codec)
            .unwrap_or_else(|| panic!("no {codec:?} block"));
        targets.push(b.stored_offset + u64::from(b.stored_len) / 2);
    }
    for at in targets {
        for threads in [0, 2] {
            let mut source = PieceSource::new(pkg.clone());
            source.corrupt = Some(at);
            *source.times.lock().unwrap() = 1;
            let (result, sink, events) = run(&source, threads, 10_000, SessionConfig::default());
            assert!(result.unwrap().complete);
            assert!(sink.image == pkg);
            assert_eq!(
                events.iter().filter(|e| e.starts_with("Refetch")).count(),
                1,
                "{events:?}"
            );
        }
    }
}

#[test]
fn a_block_that_stays_damaged_ends_the_stream_with_its_number() {
    let pkg = package();
    let all = infos(&pkg);
    let b = all.iter().rfind(|b| b.codec == sft::Codec::Zlib).unwrap();
    let mut source = PieceSource::new(pkg.clone());
    source.corrupt = Some(b.stored_offset);
    *source.times.lock().unwrap() = u32::MAX;
    let (result, sink, _) = run(&source, 2, 10_000, SessionConfig::default().max_attempts(3));
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    match &e {
        Error::Exhausted {
            block, attempts, ..
        } => {
            assert_eq!(*block, b.id);
            assert_eq!(*attempts, 3);
        }
        other => panic!("{other}"),
    }
    assert!(!sink.blocks.contains(&b.id.0));
}

#[test]
fn a_failed_read_is_retried_and_the_copy_is_exact() {
    let pkg = package();
    for fail in [0, 1, 3] {
        let mut source = PieceSource::new(pkg.clone());
        source.fail = Some(fail);
        let (result, sink, _) = run(&source, 2, 10_000, SessionConfig::default());
        let report = result.unwrap();
        assert!(report.complete, "read {fail}");
        assert_eq!(report.transport_failures, 1, "read {fail}");
        assert!(sink.image == pkg, "read {fail}");
    }
}

#[test]
fn crc_only_sessions_catch_damage_in_the_pipeline() {
    let pkg = package();
    let mut source = PieceSource::new(pkg.clone());
    let all = infos(&pkg);
    let b = all.iter().rfind(|b| b.codec == sft::Codec::Stored).unwrap();
    source.corrupt = Some(b.stored_offset);
    *source.times.lock().unwrap() = 1;
    let (result, sink, events) = run(
        &source,
        2,
        4096,
        SessionConfig::default().decode_blocks(false),
    );
    assert!(result.unwrap().complete);
    assert!(sink.image == pkg);
    assert!(
        events.iter().any(|e| e == &format!("Refetch {}", b.id.0)),
        "{events:?}"
    );
}
