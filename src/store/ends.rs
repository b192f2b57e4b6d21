//! The change log of ended sessions (`session_ends`), filled by a trigger on every delete from
//! `sessions` in the deleting transaction, and read by each instance's revocation reader to
//! drop ended sessions from its cache (docs/behaviour.md §3). The reader has a connection of its
//! own ([`Store::revocation_feed`](super::Store::revocation_feed)): on PostgreSQL it LISTENs on it,
//! so that the trigger's notification wakes it at once; on SQLite it reads every lag.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::DbConnection;

/// The PostgreSQL channel the trigger notifies.
pub const CHANNEL: &str = "session_ends";
/// The reader's `application_name` on PostgreSQL, to find its connection in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "sessiond-revocations";
/// How long the log keeps an entry: far longer than any reader's lag, so that only a reader
/// stalled for that long finds a gap (and then clears its cache).
const KEEP_SECONDS: u32 = 60;

diesel::table! {
    session_ends (seq) {
        seq -> BigInt,
        session_id -> Text,
    }
}

/// The newest position in the log (the log is never empty, see the migration). On PostgreSQL,
/// an error when the server no longer takes writes (see [`read_from`]).
pub fn newest(conn: &mut DbConnection) -> QueryResult<i64> {
    match conn {
        DbConnection::Postgres(c) => {
            #[derive(QueryableByName)]
            struct Newest {
                #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
                seq: Option<i64>,
                #[diesel(sql_type = diesel::sql_types::Bool)]
                read_only: bool,
            }
            let row: Newest = diesel::sql_query(format!(
                "SELECT max(seq) AS seq, {READ_ONLY} AS read_only FROM session_ends"
            ))
            .get_result(c)?;
            if row.read_only {
                return Err(lost(NO_WRITES));
            }
            Ok(row.seq.unwrap_or(0))
        }
        DbConnection::Sqlite(_) => session_ends::table
            .select(diesel::dsl::max(session_ends::seq))
            .first::<Option<i64>>(conn)
            .map(|m| m.unwrap_or(0)),
    }
}

/// Whether the session's server refuses writes, as a column: asked with every read of the log,
/// so the reader learns that its server was demoted or fenced (the ends are then written on
/// the new primary, and a reader left here would never see them) in the same round trip.
const READ_ONLY: &str = "current_setting('transaction_read_only') = 'on'";
const NO_WRITES: &str = "the server no longer takes writes";

/// Up to `limit` entries from position `from` on, `from` itself included when it is still
/// there: the caller checks that it is, else the log was trimmed past it (a gap).
///
/// On PostgreSQL, an error when the server no longer takes writes, learnt in the same round
/// trip (every row carries it): under load each round trip of the reader waits for a CPU, and
/// a reader late by more than the lag leaves the cache answering nothing. A read that finds no
/// row (a gap) learns nothing of it; the [`newest`] read that follows a gap asks too.
pub fn read_from(
    conn: &mut DbConnection,
    from: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String)>> {
    match conn {
        DbConnection::Postgres(c) => {
            #[derive(QueryableByName)]
            struct Entry {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                seq: i64,
                #[diesel(sql_type = diesel::sql_types::Text)]
                session_id: String,
                #[diesel(sql_type = diesel::sql_types::Bool)]
                read_only: bool,
            }
            let rows: Vec<Entry> = diesel::sql_query(format!(
                "SELECT seq, session_id, {READ_ONLY} AS read_only FROM session_ends \
                 WHERE seq >= $1 ORDER BY seq LIMIT $2"
            ))
            .bind::<diesel::sql_types::BigInt, _>(from)
            .bind::<diesel::sql_types::BigInt, _>(limit)
            .load(c)?;
            if rows.first().is_some_and(|r| r.read_only) {
                return Err(lost(NO_WRITES));
            }
            Ok(rows.into_iter().map(|r| (r.seq, r.session_id)).collect())
        }
        DbConnection::Sqlite(_) => session_ends::table
            .filter(session_ends::seq.ge(from))
            .order(session_ends::seq)
            .limit(limit)
            .select((session_ends::seq, session_ends::session_id))
            .load(conn),
    }
}

#[derive(QueryableByName)]
struct BusyTimeout {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    timeout: i32,
}

/// Drops entries older than a minute by the database's clock, always keeping the newest.
///
/// Housekeeping that must never hold the reader up: it does not wait for the write lock (on
/// SQLite, behind an activity store or a removal) nor for another instance's trim (on
/// PostgreSQL). Busy, it fails at once, and the caller tries again later.
pub fn trim(conn: &mut DbConnection) -> QueryResult<usize> {
    match conn {
        DbConnection::Postgres(c) => c.transaction(|c| {
            c.batch_execute("SET LOCAL lock_timeout = '20ms'")?;
            diesel::sql_query(format!(
                "DELETE FROM session_ends WHERE ended_at < clock_timestamp() - interval \
                 '{KEEP_SECONDS} seconds' AND seq < (SELECT max(seq) FROM session_ends)"
            ))
            .execute(c)
        }),
        DbConnection::Sqlite(c) => {
            let was = diesel::sql_query("PRAGMA busy_timeout")
                .get_result::<BusyTimeout>(c)?
                .timeout;
            c.batch_execute("PRAGMA busy_timeout = 0")?;
            let trimmed = diesel::sql_query(format!(
                "DELETE FROM session_ends WHERE ended_at < datetime('now', '-{KEEP_SECONDS} \
                 seconds') AND seq < (SELECT max(seq) FROM session_ends)"
            ))
            .execute(c);
            c.batch_execute(&format!("PRAGMA busy_timeout = {was}"))?;
            trimmed
        }
    }
}

/// The revocation reader's own connection.
pub struct Feed {
    conn: super::Pooled,
    /// SQLite: the path the connection opened. A file removed or replaced goes on answering
    /// from the old one, which no writer writes any more.
    path: String,
    /// The database timeout: the longest a turn's reads may wait (see [`Feed::watch`]).
    timeout: Duration,
}

impl Feed {
    /// On PostgreSQL, listens on [`CHANNEL`] and names the connection [`APPLICATION_NAME`].
    pub(super) fn new(conn: super::Pooled, path: &str, timeout: Duration) -> QueryResult<Self> {
        let mut feed = Self {
            conn,
            path: path.to_owned(),
            timeout,
        };
        let _watch = feed.conn.watch(timeout);
        if let DbConnection::Postgres(c) = &mut feed.conn.conn {
            c.batch_execute(&format!(
                "SET application_name = '{APPLICATION_NAME}'; LISTEN {CHANNEL}"
            ))?;
        }
        Ok(feed)
    }

    pub fn conn(&mut self) -> &mut DbConnection {
        &mut self.conn.conn
    }

    /// Puts the reads of one turn under the watchdog: a silent link ends them within the
    /// database timeout. Dropped before [`Feed::wait`], which waits on purpose.
    pub fn watch(&self) -> Option<super::watchdog::Armed> {
        self.conn.watch(self.timeout)
    }

    /// An error when this connection must be given up for another: the watchdog shut it, or a
    /// failover made every connection stale. No round trip: whether its server still takes
    /// writes comes with each read of the log (see [`read_from`]).
    pub fn check(&mut self) -> QueryResult<()> {
        if self.conn.condemned() {
            return Err(lost("the connection timed out or its server failed over"));
        }
        Ok(())
    }

    /// Waits at most `timeout` for a notification (PostgreSQL) and returns early when one came;
    /// on SQLite it just sleeps. An error is a lost connection.
    ///
    /// diesel offers the notifications without blocking (`notifications_iter`, which reads what
    /// the socket holds) and no access to the socket to wait on, so this looks every
    /// [`NOTIFY_POLL`]: a non-blocking read, a few hundred a second at most, on one thread.
    pub fn wait(&mut self, timeout: Duration) -> QueryResult<()> {
        let deadline = Instant::now() + timeout;
        match &mut self.conn.conn {
            DbConnection::Postgres(c) => loop {
                let mut woke = false;
                for n in c.notifications_iter() {
                    n?;
                    woke = true;
                }
                let now = Instant::now();
                if woke || now >= deadline {
                    return Ok(());
                }
                std::thread::sleep(NOTIFY_POLL.min(deadline - now));
            },
            DbConnection::Sqlite(_) => {
                std::thread::sleep(timeout);
                let opened = self.conn.file;
                if opened.is_some() && super::pool::file_id(&self.path) == opened {
                    Ok(())
                } else {
                    Err(lost("the database file was removed or replaced"))
                }
            }
        }
    }
}

/// The error of a connection that is gone.
fn lost(why: &str) -> diesel::result::Error {
    diesel::result::Error::DatabaseError(
        diesel::result::DatabaseErrorKind::ClosedConnection,
        Box::new(why.to_owned()),
    )
}

/// How often [`Feed::wait`] looks for a notification.
pub const NOTIFY_POLL: Duration = Duration::from_millis(10);
