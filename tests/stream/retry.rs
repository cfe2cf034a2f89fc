//! Retries in the session with the time passed in: back-off, the window,
//! progress ending an outage, and sessions never given the time counting
//! failures per block as before.

use std::time::Duration;

use sft::stream::{
    Event, NullSink, RetryPolicy, SessionConfig, StreamSession, TransportError, TransportErrorKind,
};

use super::common::package;

fn lost() -> TransportError {
    TransportError::new(TransportErrorKind::ConnectionLost, "test://down")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session past its prologue (delivered at t = 0).
fn started(pkg: &[u8], policy: RetryPolicy) -> StreamSession {
    let mut s = StreamSession::new(
        SessionConfig::default()
            .retry(policy)
            .max_request_bytes(16 * 1024)
            .max_in_flight_requests(1),
    );
    s.handle_timeout(ms(0));
    s.on_source_len(pkg.len() as u64);
    while s.prologue().is_none() {
        let r = s.poll_fetch().unwrap();
        let bytes = &pkg[r.range.start as usize..r.range.end as usize];
        s.on_data(r.id, r.range.start, bytes, &mut NullSink)
            .unwrap();
    }
    s
}

#[test]
fn failures_back_off_within_the_window_then_fail() {
    let pkg = package();
    let policy = RetryPolicy::default()
        .window(Duration::from_secs(1))
        .backoff(ms(100), ms(400));
    let mut s = started(&pkg, policy);
    let mut now = ms(0);
    let mut waits = Vec::new();
    loop {
        let r = s.poll_fetch().expect("a request after each pause");
        s.on_failure(r.id, &lost());
        while let Some(e) = s.poll_event() {
            if let Event::Retry { wait, .. } = e {
                waits.push(wait);
            }
        }
        if s.is_failed() {
            break;
        }
        // Nothing is handed out until the pause is over.
        assert!(s.poll_fetch().is_none());
        let at = s.poll_timeout().unwrap();
        s.handle_timeout(at - ms(1));
        assert!(s.poll_fetch().is_none(), "early at {at:?}");
        now = at;
        s.handle_timeout(now);
    }
    assert_eq!(
        waits[..4],
        [ms(100), ms(200), ms(400), ms(300)],
        "{waits:?}"
    );
    assert_eq!(now, ms(1000));
    // Every block is still there to fetch: none counted as failed.
    assert!(s.progress().blocks < s.progress().total_blocks);
}

#[test]
fn data_ends_the_outage() {
    let pkg = package();
    let policy = RetryPolicy::default()
        .window(ms(250))
        .backoff(ms(100), ms(100));
    let mut s = started(&pkg, policy);
    // Fail, wait, succeed, over and over for longer than the window: the
    // stream never gives up because each retry makes progress.
    let mut now = ms(0);
    while !s.is_complete() {
        let r = s.poll_fetch().unwrap();
        s.on_failure(r.id, &lost());
        assert!(!s.is_failed());
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        let r = s.poll_fetch().unwrap();
        let bytes = &pkg[r.range.start as usize..r.range.end as usize];
        s.on_data(r.id, r.range.start, bytes, &mut NullSink)
            .unwrap();
    }
    assert!(now > ms(250), "{now:?}");
}

#[test]
fn a_missing_range_fails_at_once() {
    let pkg = package();
    let mut s = started(&pkg, RetryPolicy::default());
    let r = s.poll_fetch().unwrap();
    s.on_failure(
        r.id,
        &TransportError::new(TransportErrorKind::NotFound, "test://gone"),
    );
    assert!(s.is_failed());
}

#[test]
fn without_the_time_failures_count_per_block() {
    let pkg = package();
    let mut s = StreamSession::new(SessionConfig::default().max_attempts(2));
    s.on_source_len(pkg.len() as u64);
    while s.prologue().is_none() {
        let r = s.poll_fetch().unwrap();
        let bytes = &pkg[r.range.start as usize..r.range.end as usize];
        s.on_data(r.id, r.range.start, bytes, &mut NullSink)
            .unwrap();
    }
    for _ in 0..2 {
        let r = s.poll_fetch().unwrap();
        s.on_failure(r.id, &lost());
    }
    assert!(s.is_failed());
    assert_eq!(s.poll_timeout(), None);
}
