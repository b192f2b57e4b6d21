//! Renewed activity not yet stored: the reason validateSession costs no write.
//!
//! A valid call records "seen now" here, in memory ([`ActivityLog::renew_if`]). A background task stores what is pending
//! every `activity_lag` in one transaction, and so does anything that judges expiry from the
//! database in bulk (listings, removal of expired sessions) and a graceful shutdown. Single
//! lookups combine the stored time with what is pending here, so this instance never sees a
//! session older than it is; other instances see it at most one lag late (SPEC 3).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::NaiveDateTime;

#[derive(Default)]
pub struct ActivityLog {
    pending: Mutex<HashMap<String, NaiveDateTime>>,
}

impl ActivityLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, NaiveDateTime>> {
        // A panic while holding this lock cannot leave the map half-written; keep serving.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renews a session at `now` if `alive` holds for its latest activity (the later of
    /// `stored` and any pending one); one lock for the check and the renewal. False when dead.
    pub fn renew_if(
        &self,
        session_id: &str,
        stored: NaiveDateTime,
        now: NaiveDateTime,
        alive: impl FnOnce(NaiveDateTime) -> bool,
    ) -> bool {
        let mut pending = self.lock();
        match pending.get_mut(session_id) {
            Some(t) => {
                if !alive((*t).max(stored)) {
                    return false;
                }
                *t = (*t).max(now);
            }
            None => {
                if !alive(stored) {
                    return false;
                }
                pending.insert(session_id.to_owned(), now);
            }
        }
        true
    }

    /// The later of the stored last activity and any pending one.
    pub fn latest(&self, session_id: &str, stored: NaiveDateTime) -> NaiveDateTime {
        self.lock()
            .get(session_id)
            .map_or(stored, |&t| t.max(stored))
    }

    pub fn forget(&self, session_id: &str) {
        self.lock().remove(session_id);
    }

    pub fn take(&self) -> Vec<(String, NaiveDateTime)> {
        self.lock().drain().collect()
    }

    /// Puts back renewals whose store failed, keeping any later ones recorded meanwhile.
    pub fn restore(&self, renewals: Vec<(String, NaiveDateTime)>) {
        let mut pending = self.lock();
        for (id, at) in renewals {
            let t = pending.entry(id).or_insert(at);
            *t = (*t).max(at);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, s)
            .unwrap()
    }

    #[test]
    fn latest_never_goes_backwards() {
        let log = ActivityLog::default();
        assert!(log.renew_if("a", at(0), at(5), |_| true));
        assert!(log.renew_if("a", at(0), at(3), |_| true));
        assert_eq!(log.latest("a", at(1)), at(5));
        assert_eq!(log.latest("a", at(9)), at(9));
        assert_eq!(log.latest("b", at(2)), at(2));
    }

    #[test]
    fn renew_if_renews_only_what_is_alive() {
        let log = ActivityLog::default();
        assert!(!log.renew_if("a", at(1), at(9), |last| last > at(5)));
        assert!(log.is_empty());
        assert!(log.renew_if("a", at(6), at(9), |last| last > at(5)));
        assert_eq!(log.latest("a", at(0)), at(9));
        // The pending time counts: a stale stored value does not kill a renewed session.
        assert!(log.renew_if("a", at(1), at(10), |last| last > at(5)));
        assert_eq!(log.latest("a", at(0)), at(10));
    }

    #[test]
    fn a_failed_store_puts_renewals_back_without_losing_newer_ones() {
        let log = ActivityLog::default();
        log.renew_if("a", at(0), at(5), |_| true);
        let taken = log.take();
        assert!(log.is_empty());
        log.renew_if("a", at(0), at(7), |_| true);
        log.restore(taken);
        assert_eq!(log.latest("a", at(0)), at(7));
    }
}
