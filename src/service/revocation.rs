//! Following the log of ended sessions (docs/behaviour.md §3, revocation): whoever ends a session,
//! on this instance, another one or the CLI, the trigger on `sessions` appends it to `session_ends`
//! in the same transaction. The reader reads the log from its position every half revocation lag
//! (one primary-key range read), sooner on PostgreSQL when the trigger's notification wakes it,
//! and drops what it finds from the cache. Ends made here in bulk catch up at once
//! ([`SessionService::catch_up_revocations`]), so this instance refuses them before it answers.
//!
//! The cache is fresh as soon as the log is read: the trim of old entries comes after, gives
//! up at once when the database is busy (an activity store holds SQLite's write lock) and is
//! tried again on a later turn, so the reader never waits on a flush. A read that comes more
//! than the lag after the one before left the cache answering nothing meanwhile (every
//! validate a database read): that is logged as a warning and counted
//! (`revocation_reader_late_total`).
//!
//! What it cannot be sure of clears the cache (nothing vouched for until read again): a lost
//! connection, a failed read, a gap (the log trimmed past our position), or more ends at once
//! than are worth dropping one by one.

use std::time::{Duration, Instant};

use super::SessionService;
use crate::store::ends::{self, Feed};
use crate::store::{DbConnection, QueryError};

type QueryResult<T> = std::result::Result<T, QueryError>;

/// Log entries read per query.
const READ_BATCH: i64 = 10_000;
/// More ends than this in one catch-up and the cache is cleared instead: a mass expiry or a
/// bulk end of millions is read no further.
const MOST_DROPPED: usize = 100_000;
/// How often the reader trims the log.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Where the reader is in the log; `None` until it first read the newest position.
#[derive(Default)]
pub(super) struct Position {
    seq: Option<i64>,
    trimmed_at: Option<Instant>,
    /// When the last good read of the log began: the cache is fresh until a lag after it.
    read_at: Option<Instant>,
    /// When a late read was last logged, and how many came late since (logged with the next).
    warned_at: Option<Instant>,
    late_unlogged: u64,
}

/// At most one warning of a late reader this often: on a starved machine every read may be
/// late, and the metric counts each one.
const WARN_LATE_EVERY: Duration = Duration::from_secs(10);

/// How much later than `lag` after the read begun at `previous` a read ending at `now` came;
/// `None` when it was in time.
fn lateness(previous: Option<Instant>, now: Instant, lag: Duration) -> Option<Duration> {
    let due = previous? + lag;
    (now > due).then(|| now - due)
}

impl SessionService {
    /// A connection for [`SessionService::follow_revocations_once`], outside the pool; `None`
    /// while the database cannot be reached (the store logs that once per outage).
    pub fn revocation_feed(&self) -> Option<Feed> {
        match self.store.revocation_feed() {
            Ok(feed) => Some(feed),
            Err(e) => {
                self.telemetry.metrics.revocation_read_failures_total.inc();
                log::debug!("revocation log: cannot connect: {e}");
                None
            }
        }
    }

    /// One turn of the reader: catch up with the log, trim it now and then, and wait at most
    /// half the `lag` for the next notification. False on an error: the cache was cleared, and the
    /// caller drops the feed and opens another one after a pause.
    pub fn follow_revocations_once(&self, feed: &mut Feed, lag: Duration) -> bool {
        let started = Instant::now();
        let watch = feed.watch();
        let turn = feed
            .check()
            .and_then(|()| self.read_log(feed.conn()))
            .map(|()| {
                // Fresh as soon as read: nothing below may delay the hits.
                self.cache.followed(started, lag);
                let mut pos = self.lock_position();
                let late = lateness(pos.read_at.replace(started), Instant::now(), lag);
                let trim_due = pos.trimmed_at.is_none_or(|t| t.elapsed() >= TRIM_EVERY);
                if let Some(late) = late {
                    self.telemetry.metrics.revocation_reader_late_total.inc();
                    pos.late_unlogged += 1;
                    if pos.warned_at.is_none_or(|t| t.elapsed() >= WARN_LATE_EVERY) {
                        log::warn!(
                            "revocation log read {} ms later than the revocation lag ({} ms), {} \
                             late read(s) since the last warning: the session cache answered \
                             nothing meanwhile",
                            late.as_millis(),
                            lag.as_millis(),
                            pos.late_unlogged
                        );
                        pos.warned_at = Some(Instant::now());
                        pos.late_unlogged = 0;
                    }
                }
                drop(pos);
                if trim_due {
                    // Housekeeping, a write that waits for nobody: busy, it fails at once and
                    // says nothing of what was read, so the cache stays; a later turn tries again.
                    match ends::trim(feed.conn()) {
                        Ok(_) => self.lock_position().trimmed_at = Some(Instant::now()),
                        Err(e) => log::debug!("revocation log: trim put off, database busy: {e}"),
                    }
                }
            });
        drop(watch);
        // Half the lag between reads: an end whose notification was lost (or, on SQLite, that
        // no notification announces) is read well within the lag. A read that took longer than
        // the lag left the cache stale even once done: read again at once, since calls are
        // waiting for a fresh read (`SessionCache::await_following`).
        let turn = turn.and_then(|()| {
            if self.cache.is_following() {
                feed.wait(lag / 2)
            } else {
                Ok(())
            }
        });
        if let Err(e) = &turn {
            self.telemetry.metrics.revocation_read_failures_total.inc();
            if self.cache.unfollowed() {
                log::warn!("revocation log: {e}; the session cache is cleared until it is back");
            }
        }
        turn.is_ok()
    }

    /// Drops what ended since the reader's last read, now: the ends of this instance's bulk
    /// operations (a user disabled, a password changed, expired sessions removed) are refused
    /// here before the operation answers. Clears the cache if the log cannot be read.
    pub(crate) fn catch_up_revocations(&self) {
        if !self.cache.is_following() {
            return;
        }
        let read = match self.store.conn() {
            Ok(mut conn) => self.read_log(&mut conn).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = read {
            self.telemetry.metrics.revocation_read_failures_total.inc();
            log::warn!("revocation log: {e}; the session cache is cleared");
            self.cache.clear();
        }
    }

    fn lock_position(&self) -> std::sync::MutexGuard<'_, Position> {
        self.revocations.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read_log(&self, conn: &mut DbConnection) -> QueryResult<()> {
        let mut pos = self.lock_position();
        let Some(mut last) = pos.seq else {
            pos.seq = Some(ends::newest(conn)?);
            return Ok(());
        };
        let mut dropped = 0;
        loop {
            let rows = ends::read_from(conn, last, READ_BATCH + 1)?;
            if rows.first().map(|r| r.0) != Some(last) {
                log::warn!("revocation log trimmed past this instance's position; cache cleared");
                self.cache.clear();
                pos.seq = Some(ends::newest(conn)?);
                return Ok(());
            }
            let new = &rows[1..];
            let Some(&(newest, _)) = new.last() else {
                return Ok(());
            };
            self.cache.revoke(new.iter().map(|(_, id)| id.as_str()));
            self.telemetry
                .metrics
                .revocations_received_total
                .inc_by(new.len() as u64);
            dropped += new.len();
            last = newest;
            pos.seq = Some(last);
            if (new.len() as i64) < READ_BATCH {
                return Ok(());
            }
            // A full batch: if much more is waiting (a mass expiry, a bulk end), jump to the
            // end of the log and clear rather than read it all.
            let end = ends::newest(conn)?;
            if dropped >= MOST_DROPPED || end - last > MOST_DROPPED as i64 {
                self.cache.clear();
                pos.seq = Some(end);
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_within_the_lag_of_the_one_before_is_in_time() {
        let t = Instant::now();
        let lag = Duration::from_secs(1);
        assert_eq!(lateness(Some(t), t + Duration::from_millis(999), lag), None);
        assert_eq!(lateness(Some(t), t + lag, lag), None);
    }

    #[test]
    fn a_read_past_the_lag_is_late_by_the_difference() {
        let t = Instant::now();
        let lag = Duration::from_secs(1);
        assert_eq!(
            lateness(Some(t), t + Duration::from_millis(1_500), lag),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn the_first_read_is_never_late() {
        assert_eq!(lateness(None, Instant::now(), Duration::from_secs(1)), None);
    }
}
