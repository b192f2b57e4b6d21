//! The `sessions` table: stored sessions, active and expired-but-not-yet-removed.
//!
//! Ending a session moves its row to `session_history` in the same transaction, with
//! `DELETE … RETURNING`, so a session ended by two instances at once is ended (and recorded)
//! exactly once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::history::HistoryRow;
use super::schema::{session_history, sessions};
use super::{on_backend, DbConnection, WriteTransaction};

mod ending;
mod expired;
mod pg_move;

use ending::*;
pub use ending::{end, end_all_of_user, end_batch, LatestActivity, Scope};
use expired::*;
pub use expired::{end_expired_batch, Expiry, ExpiryKey, Lifespan};
use pg_move::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub session_id: String,
    pub user_id: String,
    pub client_type: String,
    pub client_name: Option<String>,
    pub host: Option<String>,
    pub location: String,
    pub created_at: NaiveDateTime,
    pub last_activity: NaiveDateTime,
    pub created_by: Option<String>,
}

/// The instants before which a session counts as expired: idle since before `idle`, or created
/// before `lifetime` when an absolute lifetime is set.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub idle: NaiveDateTime,
    pub lifetime: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    Expired,
    Any,
}

/// A listing's filters; absent ones match anything.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub client_type: Option<String>,
}

/// Which page of a listing: after a (creation time, ID) key, or from an offset, at most `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page<'a> {
    pub after: Option<(NaiveDateTime, &'a str)>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
}

pub fn insert(conn: &mut DbConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

/// A user's active sessions, least recently active first (ties: oldest, then by ID).
pub(super) fn active_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    cutoffs: Cutoffs,
) -> QueryResult<Vec<String>> {
    let mut q = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::last_activity.ge(cutoffs.idle))
        .select(sessions::session_id)
        .order((
            sessions::last_activity,
            sessions::created_at,
            sessions::session_id,
        ))
        .into_boxed();
    if let Some(life) = cutoffs.lifetime {
        q = q.filter(sessions::created_at.ge(life));
    }
    q.load(conn)
}

/// The hot path of validateSession: one primary-key read of the two instants expiry needs.
/// Run on the concrete connection: there diesel reuses the prepared statement, while through
/// the multi-backend wrapper SQLite compiled the SQL again on every call.
pub fn find_times(
    conn: &mut DbConnection,
    session_id: &str,
) -> QueryResult<Option<(NaiveDateTime, NaiveDateTime)>> {
    // No LIMIT: a primary key matches one row at most, and a bound LIMIT made SQLite
    // re-prepare the statement on every step.
    on_backend!(conn, |c| sessions::table
        .find(session_id)
        .select((sessions::created_at, sessions::last_activity))
        .get_result(c)
        .optional())
}

pub fn find(conn: &mut DbConnection, session_id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .find(session_id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

/// Sessions in (creation time, ID) order: the order of every array result.
pub fn list(
    conn: &mut DbConnection,
    state: State,
    cutoffs: Cutoffs,
    filters: &Filters,
    page: Page<'_>,
) -> QueryResult<Vec<SessionRow>> {
    let mut q = sessions::table
        .select(SessionRow::as_select())
        .order((sessions::created_at, sessions::session_id))
        .into_boxed();
    match (state, cutoffs.lifetime) {
        (State::Any, _) => {}
        (State::Active, None) => q = q.filter(sessions::last_activity.ge(cutoffs.idle)),
        (State::Active, Some(life)) => {
            q = q
                .filter(sessions::last_activity.ge(cutoffs.idle))
                .filter(sessions::created_at.ge(life))
        }
        (State::Expired, None) => q = q.filter(sessions::last_activity.lt(cutoffs.idle)),
        (State::Expired, Some(life)) => {
            q = q.filter(
                sessions::last_activity
                    .lt(cutoffs.idle)
                    .or(sessions::created_at.lt(life)),
            )
        }
    }
    if let Some(id) = &filters.session_id {
        q = q.filter(sessions::session_id.eq(id));
    }
    if let Some(user) = &filters.user_id {
        q = q.filter(sessions::user_id.eq(user));
    }
    if let Some(kind) = &filters.client_type {
        q = q.filter(sessions::client_type.eq(kind));
    }
    if let Some((created, id)) = page.after {
        q = q.filter(after_key("created_at", created, id));
    }
    if let Some(offset) = page.offset {
        q = q.offset(offset);
    }
    if let Some(limit) = page.limit {
        q = q.limit(limit);
    } else if page.offset.is_some() {
        // SQLite accepts OFFSET only after a LIMIT; i64::MAX rows is no limit on either backend.
        q = q.limit(i64::MAX);
    }
    q.load(conn)
}

/// Renewals per statement on PostgreSQL: two bound arrays, far below any limit.
const RENEWALS_PER_STATEMENT: usize = 1_000;

/// Stores renewed activity in one transaction, never backwards (another instance may have
/// stored a later time). `renewals` come sorted by ID, and rows are locked in that order, so two
/// instances' stores (or a store and a removal) wait on each other rather than deadlock.
///
/// SQLite: one statement per session, in-process. PostgreSQL: a statement per 1,000 sessions
/// (`UPDATE … FROM unnest($1, $2)`, after locking the rows in ID order), since one per session
/// was a round trip each: at 10k sessions renewed every second that was 10k round trips a
/// second, in a backend on the same CPUs as the load.
pub fn store_activity(
    conn: &mut DbConnection,
    renewals: &[(String, NaiveDateTime)],
) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(c) => c.write_transaction(|c| {
            use diesel::sql_types::{Array, Text, Timestamp};
            for chunk in renewals.chunks(RENEWALS_PER_STATEMENT) {
                let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
                let ats: Vec<NaiveDateTime> = chunk.iter().map(|&(_, at)| at).collect();
                diesel::sql_query(
                    "SELECT 1 FROM sessions WHERE session_id = ANY($1) \
                     ORDER BY session_id COLLATE \"C\" FOR NO KEY UPDATE",
                )
                .bind::<Array<Text>, _>(&ids)
                .execute(c)?;
                diesel::sql_query(
                    "UPDATE sessions AS s SET last_activity = v.at \
                     FROM unnest($1, $2) AS v(id, at) \
                     WHERE s.session_id = v.id AND s.last_activity < v.at",
                )
                .bind::<Array<Text>, _>(&ids)
                .bind::<Array<Timestamp>, _>(&ats)
                .execute(c)?;
            }
            Ok(())
        }),
        DbConnection::Sqlite(c) => c.write_transaction(|c| {
            for (id, at) in renewals {
                diesel::update(
                    sessions::table
                        .find(id)
                        .filter(sessions::last_activity.lt(at)),
                )
                .set(sessions::last_activity.eq(at))
                .execute(c)?;
            }
            Ok(())
        }),
    }
}

/// How many sessions are active: what the active-session gauge shows. A count over the
/// `last_activity` index, run by a background task every few seconds, never per scrape.
pub fn count_active(conn: &mut DbConnection, cutoffs: Cutoffs) -> QueryResult<i64> {
    let mut q = sessions::table
        .filter(sessions::last_activity.ge(cutoffs.idle))
        .into_boxed();
    if let Some(life) = cutoffs.lifetime {
        q = q.filter(sessions::created_at.ge(life));
    }
    q.count().get_result(conn)
}
