//! A transport of your own: implement [`sft::io::RangeSource`] (two
//! methods) and the streaming core runs over it, with every block checked.
//!
//! ```text
//! cargo run --example custom_transport --features write
//! ```
//!
//! The "transport" here is an in-memory object store that answers each
//! read with at most an odd number of bytes (as a network would), counts
//! its requests, and fails the first read of one range with a retryable
//! error (as a dropped connection would). The session asks for the
//! prologue, then FB1, then the rest; the driver passes what arrives to
//! the session, which checks every block before it reaches the sink.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use sft::io::{RangeSource, drive};
use sft::stream::{Event, SessionConfig, StreamSession, TransportError, TransportErrorKind};
use sft::write::{PackageBuilder, parse_launch_list};

/// Objects by key; every read returns at most `chunk` bytes.
struct ObjectStore {
    objects: BTreeMap<String, Vec<u8>>,
    chunk: usize,
    reads: AtomicU64,
    /// The read (by number, from 1) that fails once, as a dropped
    /// connection would; 0 once it has failed.
    flaky: Mutex<u64>,
}

/// One object of the store, as a [`RangeSource`].
struct Object<'a> {
    store: &'a ObjectStore,
    key: &'a str,
}

impl RangeSource for Object<'_> {
    fn len(&self) -> Result<u64, TransportError> {
        self.store
            .objects
            .get(self.key)
            .map(|o| o.len() as u64)
            .ok_or_else(|| TransportError::new(TransportErrorKind::NotFound, self.endpoint()))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, TransportError> {
        let n = self.store.reads.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut flaky = self.store.flaky.lock().unwrap_or_else(|p| p.into_inner());
            if *flaky == n {
                *flaky = 0;
                return Err(TransportError::new(
                    TransportErrorKind::ConnectionLost,
                    format!("{}: connection dropped at {offset}", self.endpoint()),
                ));
            }
        }
        let object =
            self.store.objects.get(self.key).ok_or_else(|| {
                TransportError::new(TransportErrorKind::NotFound, self.endpoint())
            })?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(object.len());
        let n = (object.len() - start).min(buf.len()).min(self.store.chunk);
        buf[..n].copy_from_slice(&object[start..start + n]);
        Ok(n)
    }

    fn endpoint(&self) -> String {
        format!("store://{}", self.key)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A package with a launch list: app.exe is FB1, the data is FB2.
    let text: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i} of the data file\n").into_bytes())
        .take(700_000)
        .collect();
    let mut builder = PackageBuilder::new(sft::WriteOptions::default().name("Custom"));
    builder
        .add_bytes("app.exe", vec![0x90; 200_000])?
        .add_bytes("data/lines.txt", text)?;
    builder.launch_list(parse_launch_list("app.exe\n")?);
    let package = builder.write_to_vec()?;

    let store = ObjectStore {
        objects: BTreeMap::from([("apps/custom.sft".to_owned(), package.clone())]),
        chunk: 10_007,
        reads: AtomicU64::new(0),
        flaky: Mutex::new(5),
    };
    let source = Object {
        store: &store,
        key: "apps/custom.sft",
    };

    let mut session = StreamSession::new(SessionConfig::default());
    let mut copy = Vec::new();
    let mut events = Vec::new();
    let report = drive::drive_with(&mut session, &source, &mut copy, &mut |e| {
        if matches!(e, Event::LaunchReady | Event::Complete) {
            events.push(format!("{e:?}"));
        }
    })?;

    assert!(report.complete, "the stream completed");
    assert_eq!(
        events,
        ["LaunchReady", "Complete"],
        "FB1 first, then the rest"
    );
    assert!(copy == package, "the copy is byte-identical");
    assert_eq!(
        *store.flaky.lock().unwrap_or_else(|p| p.into_inner()),
        0,
        "a read failed and was retried"
    );
    println!(
        "streamed {} bytes in {} reads of at most {} bytes (one dropped and retried)",
        copy.len(),
        store.reads.load(Ordering::Relaxed),
        store.chunk
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs() {
        super::main().expect("the example runs");
    }
}
