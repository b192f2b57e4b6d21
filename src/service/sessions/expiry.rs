//! When sessions expire, and what happens to them then: deadlines (idle timeout, absolute
//! lifetime), storing the pending renewals that expiry in bulk is judged on, removal of the
//! expired in small batches, and the purge of old history.

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::domain::EndReason;
use crate::service::{chrono_duration, Result, SessionService};
use crate::store::history;
use crate::store::sessions::{self, Cutoffs};
use crate::store::DbConnection;
use crate::telemetry::SECURITY;

/// Expired sessions ended per transaction: small enough that a removal of a million never
/// holds the write lock long enough to stall validateSession.
pub(super) const EXPIRED_BATCH: i64 = 2_000;
/// Pause between those transactions, so other writers get the lock in between.
pub(super) const BATCH_PAUSE: Duration = Duration::from_millis(2);

impl SessionService {
    pub(crate) fn cutoffs(&self, now: NaiveDateTime) -> Cutoffs {
        Cutoffs {
            idle: now - chrono_duration(self.settings.session_timeout),
            lifetime: self
                .settings
                .session_max_lifetime
                .map(|l| now - chrono_duration(l)),
        }
    }

    /// How long sessions live under the current settings.
    pub(crate) fn lifespan(&self) -> sessions::Lifespan {
        sessions::Lifespan {
            idle: chrono_duration(self.settings.session_timeout),
            max: self.settings.session_max_lifetime.map(chrono_duration),
        }
    }

    /// Last activity + timeout, capped by the absolute lifetime when one is set.
    pub(crate) fn expires_at(
        &self,
        created: NaiveDateTime,
        last_activity: NaiveDateTime,
    ) -> NaiveDateTime {
        self.lifespan().end_of(created, last_activity)
    }

    pub(crate) fn is_expired(
        &self,
        now: NaiveDateTime,
        created: NaiveDateTime,
        last: NaiveDateTime,
    ) -> bool {
        now > self.expires_at(created, last)
    }

    /// Stores the renewals this instance holds in memory.
    pub fn store_pending_activity(&self) -> Result<()> {
        if !self.cache.has_pending() {
            return Ok(());
        }
        self.store_pending_on(&mut *self.conn()?)
    }

    pub(crate) fn store_pending_on(&self, conn: &mut DbConnection) -> Result<()> {
        let mut renewals = self.cache.take();
        // Rows are locked in ID order, as any other writer would meet them: two instances
        // storing overlapping renewals cannot deadlock on each other.
        renewals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if renewals.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let cpu = crate::telemetry::thread_cpu_time();
        let rows = renewals.len();
        let stored = sessions::store_activity(conn, &renewals);
        if stored.is_err() {
            self.telemetry.metrics.activity_flush_failures_total.inc();
            self.cache.restore(renewals);
        } else {
            let cpu = crate::telemetry::thread_cpu_time().saturating_sub(cpu);
            self.telemetry
                .activity_flushed(rows, started.elapsed(), cpu);
        }
        Ok(stored?)
    }

    /// Ends every expired session (reason `expired`, end time its expiration time); returns
    /// how many this call ended.
    pub fn remove_expired(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        // The cutoff is taken before the pending renewals are stored: a session renewed here
        // after that was still alive at the cutoff, so none the pass removes has a renewal
        // still held in memory (the PostgreSQL batch records the stored last activity; see
        // `store::sessions::end_expired_batch`).
        let cutoffs = self.cutoffs(self.now());
        self.store_pending_on(&mut conn)?;
        let mut passes = vec![sessions::Expiry::Idle(cutoffs.idle)];
        passes.extend(cutoffs.lifetime.map(sessions::Expiry::Lifetime));
        let mut total = 0;
        for expiry in passes {
            let mut after = None;
            loop {
                let (next, ended) = sessions::end_expired_batch(
                    &mut conn,
                    expiry,
                    after.as_ref(),
                    EXPIRED_BATCH,
                    EndReason::Expired.as_str(),
                    self.lifespan(),
                    self.latest_activity(),
                )?;
                total += ended;
                match next {
                    Some(key) => after = Some(key),
                    None => break,
                }
                // A breath between batches: SQLite hands the write lock to no one in
                // particular, and back-to-back batches kept the activity store and logins
                // waiting past the busy timeout during a million-row removal.
                std::thread::sleep(BATCH_PAUSE);
            }
        }
        if total > 0 {
            // Refused here before this answers; other instances follow the log.
            self.catch_up_revocations();
            self.telemetry
                .session_ended(EndReason::Expired.as_str(), total as u64);
            // One line for the pass, not one per session: a mass expiry is millions of them.
            log::info!(
                target: SECURITY,
                event = "sessions_ended",
                reason = EndReason::Expired.as_str(),
                count = total;
                "removed {total} expired sessions"
            );
        }
        Ok(total)
    }

    /// Drops history records older than the retention period.
    pub fn purge_history(&self) -> Result<usize> {
        let cutoff = self.now() - chrono_duration(self.settings.history_retention);
        Ok(history::purge_ended_before(&mut *self.conn()?, cutoff)?)
    }
}
