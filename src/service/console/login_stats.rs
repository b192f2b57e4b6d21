//! Logins and failed logins per minute over the last hour, for the console's chart.
//!
//! Kept in memory by each instance for the logins it answered: with several instances on one
//! database each console shows its own instance's traffic. A ring of sixty one-minute slots;
//! a slot whose minute has passed out of the hour is reset when it is next written or skipped
//! when read, so nothing needs to tick.

use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime};

const MINUTES: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Minutes since the epoch of the minute this slot counts.
    minute: i64,
    ok: u32,
    failed: u32,
}

/// One minute of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinuteCount {
    /// The start of the minute.
    pub minute: NaiveDateTime,
    pub ok: u32,
    pub failed: u32,
}

#[derive(Debug)]
pub struct LoginStats {
    slots: Mutex<[Slot; MINUTES]>,
}

impl Default for LoginStats {
    fn default() -> Self {
        Self {
            slots: Mutex::new([Slot::default(); MINUTES]),
        }
    }
}

fn minute_of(at: NaiveDateTime) -> i64 {
    at.and_utc().timestamp().div_euclid(60)
}

impl LoginStats {
    /// Counts one password login (any client type) that succeeded or failed at `at`.
    pub fn record(&self, at: NaiveDateTime, ok: bool) {
        let minute = minute_of(at);
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut slots[minute.rem_euclid(MINUTES as i64) as usize];
        if slot.minute != minute {
            *slot = Slot {
                minute,
                ..Slot::default()
            };
        }
        if ok {
            slot.ok = slot.ok.saturating_add(1);
        } else {
            slot.failed = slot.failed.saturating_add(1);
        }
    }

    /// The sixty minutes up to and including the current one, oldest first.
    pub fn last_hour(&self, now: NaiveDateTime) -> Vec<MinuteCount> {
        let current = minute_of(now);
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        (current - MINUTES as i64 + 1..=current)
            .map(|minute| {
                let slot = slots[minute.rem_euclid(MINUTES as i64) as usize];
                let (ok, failed) = if slot.minute == minute {
                    (slot.ok, slot.failed)
                } else {
                    (0, 0)
                };
                MinuteCount {
                    minute: DateTime::from_timestamp(minute * 60, 0)
                        .map(|t| t.naive_utc())
                        .unwrap_or_default(),
                    ok,
                    failed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn at(minutes: i64, seconds: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_800_000_000 + minutes * 60 + seconds, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn logins_are_counted_in_the_minute_they_happened() {
        let stats = LoginStats::default();
        stats.record(at(0, 1), true);
        stats.record(at(0, 59), false);
        stats.record(at(1, 0), true);
        let hour = stats.last_hour(at(1, 30));
        assert_eq!(hour.len(), 60);
        let last = hour[59];
        let before = hour[58];
        assert_eq!((last.ok, last.failed), (1, 0));
        assert_eq!((before.ok, before.failed), (1, 1));
        assert_eq!(last.minute - before.minute, Duration::minutes(1));
    }

    #[test]
    fn minutes_older_than_an_hour_are_not_shown_or_added_to() {
        let stats = LoginStats::default();
        stats.record(at(0, 0), false);
        // Sixty minutes later the same slot counts a new minute.
        assert!(stats.last_hour(at(60, 0)).iter().all(|m| m.failed == 0));
        stats.record(at(60, 0), true);
        let hour = stats.last_hour(at(60, 0));
        assert_eq!((hour[59].ok, hour[59].failed), (1, 0));
        assert_eq!(hour.iter().map(|m| m.ok + m.failed).sum::<u32>(), 1);
    }
}
