//! The retry policy of a stream, sans-IO: exponential back-off within a
//! total window, with time passed in by the caller (a [`Duration`] since
//! any fixed origin; the core has no clock).
//!
//! A [`StreamSession`](super::StreamSession) given the time
//! ([`StreamSession::handle_timeout`](super::StreamSession::handle_timeout))
//! retries a source that fails in a retryable way (a connection lost or
//! refused, a time-out: a server that is down or restarting) after
//! [`RetryPolicy::initial`], doubling up to [`RetryPolicy::max`], for as
//! long as [`RetryPolicy::window`] since the outage began; any byte that
//! arrives ends the outage. A source that answers "not found" or "range
//! not satisfiable" (a missing package or block) fails at once. The fetch
//! layer applies the same policy to opening a source.
//!
//! ```
//! use core::time::Duration;
//! use sft::stream::{Backoff, RetryPolicy};
//!
//! let policy = RetryPolicy::default().window(Duration::from_secs(2));
//! let mut outage = Backoff::default();
//! let s = Duration::from_secs;
//! // The first failure at t = 10 s: retry after 100 ms.
//! assert_eq!(outage.failed(s(10), &policy), Some(s(10) + Duration::from_millis(100)));
//! assert_eq!(outage.failed(s(10), &policy), Some(s(10) + Duration::from_millis(200)));
//! // The last retry is at the end of the window; after it, give up.
//! assert_eq!(outage.failed(Duration::from_millis(11_900), &policy), Some(s(12)));
//! assert_eq!(outage.failed(s(12), &policy), None);
//! // Progress ends the outage.
//! outage.succeeded();
//! assert_eq!(outage.failures(), 0);
//! ```

use core::time::Duration;

/// How long and how often a stream retries a failing source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    window: Duration,
    initial: Duration,
    max: Duration,
}

impl Default for RetryPolicy {
    /// A 60 s window (a server restart, a short network outage), the
    /// first retry after 100 ms, pauses doubling up to 5 s.
    fn default() -> Self {
        RetryPolicy {
            window: Duration::from_secs(60),
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// How long an outage is retried, from its first failure (`0`: no
    /// retries).
    #[must_use]
    pub fn window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }

    /// The first pause (doubled after each further failure) and the
    /// longest.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial = initial;
        self.max = max.max(initial);
        self
    }

    /// See [`RetryPolicy::window`].
    pub fn get_window(&self) -> Duration {
        self.window
    }

    /// The first pause.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The longest pause.
    pub fn max(&self) -> Duration {
        self.max
    }
}

/// An outage being retried: when it began and how many attempts failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    since: Option<Duration>,
    failures: u32,
}

impl Backoff {
    /// An attempt failed at `now`: when to try again, or `None` when the
    /// window since the outage began is spent.
    pub fn failed(&mut self, now: Duration, policy: &RetryPolicy) -> Option<Duration> {
        let since = *self.since.get_or_insert(now);
        self.failures = self.failures.saturating_add(1);
        let end = since.saturating_add(policy.window);
        if now >= end {
            return None;
        }
        let shift = (self.failures - 1).min(20);
        let pause = policy.initial.saturating_mul(1u32 << shift).min(policy.max);
        Some(now.saturating_add(pause).min(end))
    }

    /// Data arrived: the outage is over.
    pub fn succeeded(&mut self) {
        *self = Backoff::default();
    }

    /// Failed attempts in this outage.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long the outage has lasted at `now` (zero if none).
    pub fn elapsed(&self, now: Duration) -> Duration {
        self.since.map_or(Duration::ZERO, |s| now.saturating_sub(s))
    }
}
