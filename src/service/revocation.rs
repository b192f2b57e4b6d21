//! Following the log of ended sessions (SPEC 3, revocation): whoever ends a session, on this
//! instance, another one or the CLI, the trigger on `sessions` appends it to `session_ends` in
//! the same transaction. The reader reads the log from its position every half revocation lag
//! (one primary-key range read), sooner on PostgreSQL when the trigger's notification wakes it,
//! and drops what it finds from the cache. Ends made here in bulk catch up at once
//! ([`SessionService::catch_up_revocations`]), so this instance refuses them before it answers.
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
        let turn = self.read_log(feed.conn()).map(|()| {
            let mut pos = self.lock_position();
            if pos.trimmed_at.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
                pos.trimmed_at = Some(Instant::now());
                drop(pos);
                // Housekeeping, a write: under a long write (a removal of a million on SQLite)
                // it may wait past the busy timeout. That says nothing of what was read, so it
                // does not clear the cache; the next trim tries again.
                if let Err(e) = ends::trim(feed.conn()) {
                    log::debug!("revocation log: trim failed, tried again later: {e}");
                }
            }
        });
        // Half the lag between reads: an end whose notification was lost (or, on SQLite, that
        // no notification announces) is read well within the lag.
        let turn = turn.and_then(|()| {
            self.cache.followed(started, lag);
            feed.wait(lag / 2)
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
