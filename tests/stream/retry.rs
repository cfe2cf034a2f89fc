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

/// Deliver request `r` whole from `pkg`.
fn serve(s: &mut StreamSession, pkg: &[u8], r: &sft::stream::FetchRequest) {
    let bytes = &pkg[r.range.start as usize..r.range.end as usize];
    s.on_data(r.id, r.range.start, bytes, &mut NullSink)
        .unwrap();
}

#[test]
fn background_rate_paces_fb2_only_and_never_a_demand() {
    use sft::stream::Priority;
    let pkg = package();
    let rate = 16 * 1024; // bytes per second: a 16 KiB request per second
    let mut s = StreamSession::new(
        SessionConfig::default()
            .background_rate(Some(rate))
            .max_request_bytes(16 * 1024)
            .max_in_flight_requests(1),
    );
    s.handle_timeout(ms(0));
    s.on_source_len(pkg.len() as u64);
    // Prologue and FB1 go as fast as they are served, at t = 0.
    while !s.is_launch_ready() {
        let r = s.poll_fetch().expect("prologue and FB1 are never held");
        assert_ne!(r.priority, Priority::Fb2);
        serve(&mut s, &pkg, &r);
    }
    let mut now = ms(0);
    let mut fb2_starts = Vec::new();
    let mut fb2_bytes = 0u64;
    let mut demanded = false;
    while !s.is_complete() {
        let Some(r) = s.poll_fetch() else {
            let at = s.poll_timeout().expect("a paced session says when");
            assert!(at > now, "a wait in the future, not a spin");
            if !demanded {
                // A demand for the last block while FB2 waits its turn:
                // served at once, not paced.
                let last = sft::format::BlockId(s.block_count() - 1);
                s.request_block(last).unwrap();
                let r = s.poll_fetch().expect("a demand is not paced");
                assert_eq!(r.priority, Priority::Demand);
                assert!(r.blocks.contains(&last.0));
                serve(&mut s, &pkg, &r);
                demanded = true;
                continue;
            }
            now = at;
            s.handle_timeout(now);
            continue;
        };
        assert_eq!(r.priority, Priority::Fb2);
        fb2_starts.push(now);
        // Bytes issued so far cannot exceed what the rate allows by more
        // than the request just started.
        let len = r.range.end - r.range.start;
        assert!(
            fb2_bytes as f64 <= rate as f64 * now.as_secs_f64() + 1.0,
            "{fb2_bytes} B before {now:?} at {rate} B/s"
        );
        fb2_bytes += len;
        serve(&mut s, &pkg, &r);
    }
    assert!(demanded);
    assert!(fb2_starts.len() >= 4, "{fb2_starts:?}");
    // Paced: the last FB2 request started about (bytes before it) / rate
    // after the first.
    let span = fb2_starts.last().unwrap().as_secs_f64();
    assert!(span >= 2.0, "FB2 was not paced: {fb2_starts:?}");
}

#[test]
fn without_a_rate_or_the_time_fb2_is_not_paced() {
    let pkg = package();
    for config in [
        SessionConfig::default(),
        // A rate without the time given: nothing to pace against.
        SessionConfig::default().background_rate(Some(1)),
    ] {
        let mut s = StreamSession::new(config.max_request_bytes(16 * 1024));
        s.on_source_len(pkg.len() as u64);
        let mut n = 0;
        while !s.is_complete() {
            let r = s.poll_fetch().expect("never held back");
            serve(&mut s, &pkg, &r);
            n += 1;
        }
        assert!(n > 4);
        assert_eq!(s.poll_timeout(), None);
    }
}
