//! The `sessions` table: stored sessions, active and expired-but-not-yet-removed.
//!
//! Ending a session moves its row to `session_history` in the same transaction, with
//! `DELETE … RETURNING`, so a session ended by two instances at once is ended (and recorded)
//! exactly once.
//!
//! A session's last activity lives in `session_activity`, a narrow table of its own, since it
//! is the one value written all the time (the background store of renewals): there a renewal
//! rewrites a short row and the one index expiry walks, not the wide row and every index of
//! `sessions`. Its row goes with the session's (a cascading foreign key). [`SessionRow`]
//! reads it through a join, beside the session's [`SessionRecord`] (`record.rs`: the one type
//! that lists a session's columns).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::history::HistoryRow;
use super::schema::{session_activity, session_history, sessions};
use super::{on_backend, DbConnection, WriteTransaction};

mod ending;
mod expired;
mod pg_move;
mod record;

use ending::*;
pub use ending::{end, end_all_of_user, end_batch, LatestActivity, Scope};
use expired::*;
pub use expired::{end_expired_batch, Expiry, ExpiryKey, Lifespan};
use pg_move::*;
pub(crate) use record::record_columns;
pub use record::SessionRecord;

/// A stored session: its record, selected from `sessions` joined with `session_activity`, and
/// its last activity. Inserted into `sessions` without the last activity, which [`insert`]
/// writes to `session_activity`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    #[diesel(embed)]
    pub record: SessionRecord,
    #[diesel(select_expression = session_activity::last_activity, skip_insertion)]
    pub last_activity: NaiveDateTime,
}

/// The removed rows of both tables, joined again by ID. A session without an activity row
/// (none is written without one) counts as last active at its creation.
pub(super) fn rejoin(
    stored: Vec<SessionRecord>,
    activity: Vec<(String, NaiveDateTime)>,
) -> Vec<SessionRow> {
    let activity: std::collections::HashMap<String, NaiveDateTime> = activity.into_iter().collect();
    stored
        .into_iter()
        .map(|record| SessionRow {
            last_activity: activity
                .get(&record.session_id)
                .copied()
                .unwrap_or(record.created_at),
            record,
        })
        .collect()
}

/// Removes the sessions `ids` from both tables, in the caller's write transaction; returns
/// those that were there.
pub(super) fn take_sqlite(
    c: &mut diesel::SqliteConnection,
    ids: &[&str],
) -> QueryResult<Vec<SessionRow>> {
    let activity: Vec<(String, NaiveDateTime)> =
        diesel::delete(session_activity::table.filter(session_activity::session_id.eq_any(ids)))
            .returning((
                session_activity::session_id,
                session_activity::last_activity,
            ))
            .get_results(c)?;
    let stored: Vec<SessionRecord> =
        diesel::delete(sessions::table.filter(sessions::session_id.eq_any(ids)))
            .returning(SessionRecord::as_returning())
            .get_results(c)?;
    Ok(rejoin(stored, activity))
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

/// Stores a new session: its row and its last activity, in one transaction.
pub fn insert(conn: &mut DbConnection, row: &SessionRow) -> QueryResult<()> {
    conn.write_transaction(|conn| {
        diesel::insert_into(sessions::table)
            .values(row)
            .execute(conn)?;
        diesel::insert_into(session_activity::table)
            .values((
                session_activity::session_id.eq(&row.record.session_id),
                session_activity::last_activity.eq(row.last_activity),
            ))
            .execute(conn)
            .map(drop)
    })
}

/// A user's active sessions, least recently active first (ties: oldest, then by ID).
pub(super) fn active_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    cutoffs: Cutoffs,
) -> QueryResult<Vec<String>> {
    let mut q = sessions::table
        .inner_join(session_activity::table)
        .filter(sessions::user_id.eq(user_id))
        .filter(session_activity::last_activity.ge(cutoffs.idle))
        .select(sessions::session_id)
        .order((
            session_activity::last_activity,
            sessions::created_at,
            sessions::session_id,
        ))
        .into_boxed();
    if let Some(life) = cutoffs.lifetime {
        q = q.filter(sessions::created_at.ge(life));
    }
    q.load(conn)
}

/// The hot path of validateSession: a primary-key read in each table of the two instants
/// expiry needs.
/// Run on the concrete connection: there diesel reuses the prepared statement, while through
/// the multi-backend wrapper SQLite compiled the SQL again on every call.
pub fn find_times(
    conn: &mut DbConnection,
    session_id: &str,
) -> QueryResult<Option<(NaiveDateTime, NaiveDateTime)>> {
    // No LIMIT: a primary key matches one row at most, and a bound LIMIT made SQLite
    // re-prepare the statement on every step.
    on_backend!(conn, |c| sessions::table
        .inner_join(session_activity::table)
        .filter(sessions::session_id.eq(session_id))
        .select((sessions::created_at, session_activity::last_activity))
        .get_result(c)
        .optional())
}

pub fn find(conn: &mut DbConnection, session_id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .inner_join(session_activity::table)
        .filter(sessions::session_id.eq(session_id))
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
        .inner_join(session_activity::table)
        .select(SessionRow::as_select())
        .order((sessions::created_at, sessions::session_id))
        .into_boxed();
    match (state, cutoffs.lifetime) {
        (State::Any, _) => {}
        (State::Active, None) => q = q.filter(session_activity::last_activity.ge(cutoffs.idle)),
        (State::Active, Some(life)) => {
            q = q
                .filter(session_activity::last_activity.ge(cutoffs.idle))
                .filter(sessions::created_at.ge(life))
        }
        (State::Expired, None) => q = q.filter(session_activity::last_activity.lt(cutoffs.idle)),
        (State::Expired, Some(life)) => {
            q = q.filter(
                session_activity::last_activity
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
        q = q.filter(after_key("sessions.created_at", created, id));
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

/// PostgreSQL's statement for a chunk of renewals: `$1` the IDs (sorted), `$2` their instants.
/// Its plan must find each row through the primary key, never read the table whole: a
/// nested loop over the arrays, in their order, so rows are locked in ID order too (see
/// [`store_activity`]). The planner, costing a thousand probes against a seq scan of a small
/// table, preferred the scan; [`PG_STORE_SETTINGS`] rules that out for this transaction.
const PG_STORE_ACTIVITY: &str = "UPDATE session_activity AS s SET last_activity = v.at \
     FROM unnest($1::text[], $2::timestamp[]) AS v(id, at) \
     WHERE s.session_id = v.id COLLATE \"C\" AND s.last_activity < v.at";

/// Transaction-local planner settings for [`PG_STORE_ACTIVITY`].
const PG_STORE_SETTINGS: &str = "SET LOCAL enable_seqscan = off; \
     SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
     SET LOCAL enable_bitmapscan = off";

/// SQLite's statement for up to 10,000 renewals: one bound JSON array of `[id, instant]` pairs,
/// so the statement is prepared once per 10,000, not once per renewal (diesel caches no statement
/// whose text it did not build, and re-preparing was a fifth of the flush's time). The
/// instants are written as diesel writes them, so the text comparison is the same.
const SQLITE_STORE_ACTIVITY: &str = "UPDATE session_activity \
     SET last_activity = r.value ->> 1 FROM json_each(?) AS r \
     WHERE session_activity.session_id = r.value ->> 0 \
     AND session_activity.last_activity < r.value ->> 1";

/// The instant as diesel stores it in SQLite (`%F %T%.f`).
fn sqlite_instant(at: NaiveDateTime) -> String {
    at.format("%F %T%.f").to_string()
}

/// Renewals per statement on SQLite: a JSON text of under a megabyte, so that a flush of a
/// hundred thousand renewals does not hold one of many megabytes (and the server's RSS with
/// it); preparing the statement once per 10,000 costs nothing measurable.
const SQLITE_RENEWALS_PER_STATEMENT: usize = 10_000;

/// The JSON array [`SQLITE_STORE_ACTIVITY`] binds, serialized straight from the pairs (no
/// intermediate JSON tree).
fn sqlite_renewals(renewals: &[(String, NaiveDateTime)]) -> String {
    let pairs: Vec<(&str, String)> = renewals
        .iter()
        .map(|(id, at)| (id.as_str(), sqlite_instant(*at)))
        .collect();
    serde_json::to_string(&pairs).expect("strings always serialize")
}

/// Stores renewed activity in one transaction, never backwards (another instance may have
/// stored a later time). `renewals` come sorted by ID, and rows are locked in that order, so two
/// instances' stores (or a store and a removal) wait on each other rather than deadlock.
///
/// SQLite: one statement per 10,000 renewals (see [`SQLITE_STORE_ACTIVITY`]). PostgreSQL: one
/// statement per 1,000 sessions (see [`PG_STORE_ACTIVITY`]), since one per session was a round
/// trip each: at 10k sessions renewed every second that was 10k round trips a second, in a
/// backend on the same CPUs as the load.
pub fn store_activity(
    conn: &mut DbConnection,
    renewals: &[(String, NaiveDateTime)],
) -> QueryResult<()> {
    use diesel::connection::SimpleConnection;
    if renewals.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Postgres(c) => c.write_transaction(|c| {
            use diesel::sql_types::{Array, Text, Timestamp};
            c.batch_execute(PG_STORE_SETTINGS)?;
            for chunk in renewals.chunks(RENEWALS_PER_STATEMENT) {
                let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
                let ats: Vec<NaiveDateTime> = chunk.iter().map(|&(_, at)| at).collect();
                diesel::sql_query(PG_STORE_ACTIVITY)
                    .bind::<Array<Text>, _>(&ids)
                    .bind::<Array<Timestamp>, _>(&ats)
                    .execute(c)?;
            }
            Ok(())
        }),
        DbConnection::Sqlite(c) => c.write_transaction(|c| {
            for chunk in renewals.chunks(SQLITE_RENEWALS_PER_STATEMENT) {
                diesel::sql_query(SQLITE_STORE_ACTIVITY)
                    .bind::<diesel::sql_types::Text, _>(sqlite_renewals(chunk))
                    .execute(c)?;
            }
            Ok(())
        }),
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

/// The plan of [`store_activity`]'s statement for `renewals`, one line per node, as the
/// database would run it now: for the tests and the benchmark, which check that a chunk
/// finds its rows through the primary key. Nothing is written.
pub fn store_activity_plan(
    conn: &mut DbConnection,
    renewals: &[(String, NaiveDateTime)],
) -> QueryResult<Vec<String>> {
    use diesel::connection::SimpleConnection;
    match conn {
        DbConnection::Postgres(c) => c.transaction(|c| {
            use diesel::sql_types::{Array, Text, Timestamp};
            c.batch_execute(PG_STORE_SETTINGS)?;
            let chunk = &renewals[..renewals.len().min(RENEWALS_PER_STATEMENT)];
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let ats: Vec<NaiveDateTime> = chunk.iter().map(|&(_, at)| at).collect();
            let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN {PG_STORE_ACTIVITY}"))
                .bind::<Array<Text>, _>(&ids)
                .bind::<Array<Timestamp>, _>(&ats)
                .load(c)?;
            Ok(lines.into_iter().map(|l| l.line).collect())
        }),
        DbConnection::Sqlite(c) => {
            let lines: Vec<SqlitePlanLine> =
                diesel::sql_query(format!("EXPLAIN QUERY PLAN {SQLITE_STORE_ACTIVITY}"))
                    .bind::<diesel::sql_types::Text, _>(sqlite_renewals(renewals))
                    .load(c)?;
            Ok(lines.into_iter().map(|l| l.detail).collect())
        }
    }
}

/// How many sessions are active: what the active-session gauge shows. A count over the
/// `last_activity` index, run by a background task every few seconds, never per scrape.
pub fn count_active(conn: &mut DbConnection, cutoffs: Cutoffs) -> QueryResult<i64> {
    match cutoffs.lifetime {
        None => session_activity::table
            .filter(session_activity::last_activity.ge(cutoffs.idle))
            .count()
            .get_result(conn),
        Some(life) => sessions::table
            .inner_join(session_activity::table)
            .filter(session_activity::last_activity.ge(cutoffs.idle))
            .filter(sessions::created_at.ge(life))
            .count()
            .get_result(conn),
    }
}
