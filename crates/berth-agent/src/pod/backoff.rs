//! Restart and image-pull back-off, with the kubelet's rule: the first retry is immediate, then
//! each retry waits twice as long as the last (10 s, 20 s, 40 s ... up to a maximum), counted
//! from when the failure happened; an entry unused for twice the maximum starts over.
//!
//! Owns [`Backoff`]. Pure: the caller passes the times, nothing here sleeps or reads a clock.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;

#[derive(Clone, Copy, Debug)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

/// Back-off state per key (e.g. a container name).
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    /// Back-off starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, entry: &Entry, at: Timestamp) -> bool {
        let idle = at.duration_since(entry.last_update);
        idle.is_positive() && idle.unsigned_abs() > self.max * 2
    }

    /// How much longer a retry of `key` must wait, for a failure that happened at `failed_at`;
    /// `None` when it may be retried now.
    pub fn remaining(&self, key: &str, failed_at: Timestamp, now: Timestamp) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if self.expired(entry, failed_at) {
            return None;
        }
        let waited = now.duration_since(failed_at);
        let waited = if waited.is_negative() {
            Duration::ZERO
        } else {
            waited.unsigned_abs()
        };
        entry.delay.checked_sub(waited).filter(|d| !d.is_zero())
    }

    /// The delay `key` is at now (what a "back-off 10s" message quotes).
    pub fn current(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(self.initial, |e| e.delay)
    }

    /// Records a retry of `key` at `now`: the next failure waits longer.
    pub fn next(&mut self, key: &str, now: Timestamp) {
        let delay = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.delay * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// Forgets `key`.
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn first_retry_is_immediate_then_the_delay_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(40));
        assert_eq!(b.remaining("c", at(0), at(0)), None);
        b.next("c", at(0));
        // Fails again at 1 s: waits 10 s from then.
        assert_eq!(
            b.remaining("c", at(1), at(1)),
            Some(Duration::from_secs(10))
        );
        assert_eq!(b.remaining("c", at(1), at(8)), Some(Duration::from_secs(3)));
        assert_eq!(b.remaining("c", at(1), at(11)), None);
        b.next("c", at(11));
        assert_eq!(
            b.remaining("c", at(12), at(12)),
            Some(Duration::from_secs(20))
        );
        b.next("c", at(32));
        assert_eq!(b.current("c"), Duration::from_secs(40));
        b.next("c", at(80));
        assert_eq!(b.current("c"), Duration::from_secs(40), "capped");
    }

    #[test]
    fn a_long_quiet_period_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(40));
        b.next("c", at(0));
        b.next("c", at(10));
        assert_eq!(b.current("c"), Duration::from_secs(20));
        assert_eq!(b.remaining("c", at(200), at(200)), None);
        b.next("c", at(200));
        assert_eq!(b.current("c"), Duration::from_secs(10));
    }
}
