//! Time, given to the service rather than read from the system, so expiry tests need not sleep.

use std::sync::Mutex;

use chrono::{NaiveDateTime, Timelike};

pub trait Clock: Send + Sync {
    /// Now, in UTC, to the millisecond: the precision the contract's dateTimes carry.
    fn now(&self) -> NaiveDateTime;
}

fn to_millis(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> NaiveDateTime {
        to_millis(chrono::Utc::now().naive_utc())
    }
}

/// A clock that moves only when told to; for tests.
pub struct ManualClock(Mutex<NaiveDateTime>);

impl ManualClock {
    pub fn new(start: NaiveDateTime) -> Self {
        Self(Mutex::new(to_millis(start)))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.0.lock().expect("clock lock");
        *now += chrono::Duration::from_std(by).expect("duration in range");
    }
}

impl Clock for ManualClock {
    fn now(&self) -> NaiveDateTime {
        *self.0.lock().expect("clock lock")
    }
}
