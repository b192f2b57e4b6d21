//! Lock-out counts for names that are no user's, so that probing a name cannot tell whether it
//! exists: an unknown name is counted, reserved before its (dummy) hash and locked exactly as a
//! user's row is by `store::users::reserve_check`, only in memory.
//!
//! Memory is bounded: the most recently tried [`CAPACITY`] names are kept (an LRU), which an
//! attacker can only defeat by trying that many other names between two probes of one, each
//! costing a full Argon2 check. The counts are per instance and lost on restart; a user's are
//! in the database and shared.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use chrono::NaiveDateTime;
use lru::LruCache;

use crate::store::users::Reservation;

/// Names remembered: at most ~64 characters each, so a few MiB when full.
pub const CAPACITY: usize = 65_536;

#[derive(Debug, Clone, Copy, Default)]
struct Count {
    checks: u32,
    locked_until: Option<NaiveDateTime>,
}

pub struct UnknownNames {
    names: Mutex<LruCache<String, Count>>,
}

impl Default for UnknownNames {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl UnknownNames {
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            names: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn names(&self) -> std::sync::MutexGuard<'_, LruCache<String, Count>> {
        // A panic while holding the lock cannot leave a count half-written; keep serving.
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves one check for `name`, with the states and answers of a user's row in
    /// `store::users::reserve_check`.
    pub fn reserve(
        &self,
        name: &str,
        threshold: u32,
        now: NaiveDateTime,
        full_until: NaiveDateTime,
    ) -> Reservation {
        let mut names = self.names();
        let count = names.get_or_insert_mut(name.to_owned(), Count::default);
        match count.locked_until {
            Some(until) if until > now => {
                return if count.checks >= threshold {
                    Reservation::Full
                } else {
                    Reservation::Locked
                };
            }
            Some(_) => {
                count.checks = 1;
                count.locked_until = None;
            }
            None => count.checks = count.checks.saturating_add(1),
        }
        if count.checks >= threshold {
            count.locked_until = Some(full_until);
        }
        Reservation::Granted(count.checks)
    }

    /// A failed check: a full count becomes a lock until `lock_until`; true when this started it.
    pub fn record_failure(&self, name: &str, threshold: u32, lock_until: NaiveDateTime) -> bool {
        let mut names = self.names();
        match names.get_mut(name) {
            Some(count) if count.checks >= threshold => {
                count.checks = 0;
                count.locked_until = Some(lock_until);
                true
            }
            _ => false,
        }
    }

    /// Gives back a reserved check that never ran to an answer: one fewer, and a count it had
    /// filled opens again; a lock in force stays.
    pub fn give_back(&self, name: &str, threshold: u32) {
        let mut names = self.names();
        if let Some(count) = names.get_mut(name) {
            if count.checks == 0 {
                return;
            }
            if count.checks >= threshold {
                count.locked_until = None;
            }
            count.checks -= 1;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.names().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate};

    fn t(minutes: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + Duration::minutes(minutes)
    }

    #[test]
    fn the_threshold_of_checks_fills_the_count_and_a_failure_then_locks_the_name() {
        use Reservation::*;
        let names = UnknownNames::default();
        let counts: Vec<_> = (0..6).map(|_| names.reserve("x", 5, t(0), t(1))).collect();
        assert_eq!(
            counts,
            [
                Granted(1),
                Granted(2),
                Granted(3),
                Granted(4),
                Granted(5),
                Full
            ]
        );
        assert!(names.record_failure("x", 5, t(15)));
        assert!(
            !names.record_failure("x", 5, t(15)),
            "one lock per full count"
        );
        assert_eq!(names.reserve("x", 5, t(14), t(15)), Locked);
        assert_eq!(
            names.reserve("x", 5, t(15), t(16)),
            Granted(1),
            "until is exclusive"
        );
        assert_eq!(names.reserve("other", 5, t(15), t(16)), Granted(1));
    }

    #[test]
    fn a_full_count_whose_checks_never_finished_opens_again_after_its_mark() {
        let names = UnknownNames::default();
        for _ in 0..5 {
            names.reserve("x", 5, t(0), t(1));
        }
        assert_eq!(names.reserve("x", 5, t(0), t(1)), Reservation::Full);
        assert_eq!(names.reserve("x", 5, t(1), t(2)), Reservation::Granted(1));
    }

    #[test]
    fn a_check_given_back_is_as_if_never_made() {
        let names = UnknownNames::default();
        for _ in 0..5 {
            names.reserve("x", 5, t(0), t(1));
        }
        assert_eq!(names.reserve("x", 5, t(0), t(1)), Reservation::Full);
        names.give_back("x", 5);
        assert_eq!(names.reserve("x", 5, t(0), t(1)), Reservation::Granted(5));
        // A lock in force is not lifted by a check given back.
        assert!(names.record_failure("x", 5, t(15)));
        names.give_back("x", 5);
        assert_eq!(names.reserve("x", 5, t(1), t(2)), Reservation::Locked);
    }

    #[test]
    fn only_the_most_recently_tried_names_are_kept() {
        let names = UnknownNames::with_capacity(3);
        for name in ["a", "b", "c", "d"] {
            names.reserve(name, 5, t(0), t(15));
        }
        assert_eq!(names.len(), 3);
        // "a" was the least recently tried: forgotten, it starts again at one.
        assert_eq!(names.reserve("a", 5, t(0), t(15)), Reservation::Granted(1));
        assert_eq!(names.reserve("d", 5, t(0), t(15)), Reservation::Granted(2));
    }
}
