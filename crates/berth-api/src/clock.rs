//! The clock, behind a trait so that tests can fix time. The only place outside tests where
//! Berth's libraries read the time; everything else takes a [`Clock`].

use std::sync::Mutex;

use jiff::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that reads a fixed, settable time, and counts how often it was read.
#[derive(Debug)]
pub struct FakeClock {
    inner: Mutex<(Timestamp, u64)>,
}

impl FakeClock {
    /// A clock fixed at `t`.
    pub fn new(t: Timestamp) -> Self {
        Self {
            inner: Mutex::new((t, 0)),
        }
    }
    /// Moves the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0 = t;
    }
    /// How many times the clock was read.
    pub fn reads(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        g.0
    }
}

impl FakeClock {
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: jiff::SignedDuration) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_add(d).unwrap_or(g.0);
    }
}
