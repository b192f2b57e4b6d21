//! Ending sessions into the history: one, all of a user's, or a batch of a user's or everyone's.

use super::*;

/// The history record of an ended session. `row.last_activity` must already be the last
/// activity the session really had (the caller's `latest`), not only what was stored: renewals
/// pending in memory belong in the record (docs/behaviour.md §3).
pub(super) fn history_of(row: SessionRow, ended_at: NaiveDateTime, reason: &str) -> HistoryRow {
    HistoryRow {
        record: row.record,
        last_activity: row.last_activity,
        ended_at,
        end_reason: reason.to_owned(),
    }
}

/// The last activity a removed row really had: the stored one, or a later one the caller holds
/// in memory. Every end takes one, so that no end path records less than the client was told.
pub trait LatestActivity: Fn(&SessionRow) -> NaiveDateTime {}
impl<F: Fn(&SessionRow) -> NaiveDateTime> LatestActivity for F {}

pub(super) fn with_latest(mut row: SessionRow, latest: &impl LatestActivity) -> SessionRow {
    row.last_activity = latest(&row).max(row.last_activity);
    row
}

/// Ends one session: removes it and records why. `None` when no such session was stored.
pub fn end(
    conn: &mut DbConnection,
    session_id: &str,
    reason: &str,
    ended_at: NaiveDateTime,
    latest: impl LatestActivity,
) -> QueryResult<Option<HistoryRow>> {
    on_backend!(conn, |c| c.write_transaction(|c| {
        let at: Option<NaiveDateTime> = diesel::delete(session_activity::table.find(session_id))
            .returning(session_activity::last_activity)
            .get_result(c)
            .optional()?;
        let stored: Option<SessionRecord> = diesel::delete(sessions::table.find(session_id))
            .returning(SessionRecord::as_returning())
            .get_result(c)
            .optional()?;
        let Some(record) = stored else {
            return Ok(None);
        };
        let last_activity = at.unwrap_or(record.created_at);
        let row = with_latest(
            SessionRow {
                record,
                last_activity,
            },
            &latest,
        );
        let record = history_of(row, ended_at, reason);
        diesel::insert_into(session_history::table)
            .values(&record)
            .execute(c)?;
        Ok(Some(record))
    }))
}

/// Ends every session of a user (a disabled user); returns how many.
pub fn end_all_of_user(
    conn: &mut DbConnection,
    user_id: &str,
    reason: &str,
    ended_at: NaiveDateTime,
    latest: impl LatestActivity,
) -> QueryResult<usize> {
    on_backend!(conn, |c| c.write_transaction(|c| {
        let of_user = sessions::table
            .filter(sessions::user_id.eq(user_id))
            .select(sessions::session_id);
        let activity: Vec<(String, NaiveDateTime)> = diesel::delete(
            session_activity::table.filter(session_activity::session_id.eq_any(of_user)),
        )
        .returning((
            session_activity::session_id,
            session_activity::last_activity,
        ))
        .get_results(c)?;
        let stored: Vec<SessionRecord> =
            diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
                .returning(SessionRecord::as_returning())
                .get_results(c)?;
        let rows = rejoin(stored, activity);
        let records: Vec<HistoryRow> = rows
            .into_iter()
            .map(|r| history_of(with_latest(r, &latest), ended_at, reason))
            .collect();
        for chunk in records.chunks(HISTORY_INSERT_CHUNK) {
            diesel::insert_into(session_history::table)
                .values(chunk)
                .execute(c)?;
        }
        Ok(records.len())
    }))
}

/// Which sessions a bulk end takes: one user's, or everyone's.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    User(&'a str),
    All,
}

/// Ends up to `limit` sessions of `scope` in one transaction, the next after `after` in ID
/// order, each recorded with `reason` and `ended_at`. Returns the key to start the next batch
/// after (`None`: nothing was left) and how many this call ended (fewer than it picked when
/// another writer ended some first).
///
/// On PostgreSQL the rows never leave the database: one statement deletes them and inserts
/// their history (`WITH moved AS (DELETE … RETURNING …) INSERT …`); on SQLite, which allows no
/// DELETE in a WITH, the key range is read, deleted with `RETURNING` and recorded in one
/// transaction that holds the write lock. Both walk an index in ID order from the last key,
/// for the reason [`end_expired_batch`] gives.
pub fn end_batch(
    conn: &mut DbConnection,
    scope: Scope<'_>,
    after: Option<&str>,
    limit: i64,
    reason: &str,
    ended_at: NaiveDateTime,
) -> QueryResult<(Option<String>, usize)> {
    match conn {
        DbConnection::Postgres(c) => end_batch_postgres(c, scope, after, limit, reason, ended_at),
        DbConnection::Sqlite(c) => end_batch_sqlite(c, scope, after, limit, reason, ended_at),
    }
}

pub(super) fn end_batch_postgres(
    c: &mut diesel::PgConnection,
    scope: Scope<'_>,
    after: Option<&str>,
    limit: i64,
    reason: &str,
    ended_at: NaiveDateTime,
) -> QueryResult<(Option<String>, usize)> {
    let mut q = PgMove::default();
    let mut conditions = Vec::new();
    if let Scope::User(user) = scope {
        conditions.push(format!("user_id = {}", q.arg(PgArg::Text(user.to_owned()))));
    }
    if let Some(key) = after {
        conditions.push(format!(
            "session_id > {}",
            q.arg(PgArg::Text(key.to_owned()))
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let pick = format!(
        "SELECT session_id, NULL::timestamp AS at FROM sessions {filter}
         ORDER BY session_id LIMIT {}",
        q.arg(PgArg::Int(limit))
    );
    let ended_at = q.arg(PgArg::Time(ended_at));
    let moved = q.run(c, &pick, "session_id DESC", &ended_at, reason)?;
    let next = (moved.picked == limit).then_some(moved.last_id).flatten();
    Ok((next, moved.ended as usize))
}

pub(super) fn end_batch_sqlite(
    c: &mut diesel::SqliteConnection,
    scope: Scope<'_>,
    after: Option<&str>,
    limit: i64,
    reason: &str,
    ended_at: NaiveDateTime,
) -> QueryResult<(Option<String>, usize)> {
    use diesel::dsl::sql;
    use diesel::sql_types::Bool;
    use diesel::sqlite::Sqlite;

    type Condition<'a> = Box<dyn BoxableExpression<sessions::table, Sqlite, SqlType = Bool> + 'a>;
    // The batch is the key range (after, upto]: with the write lock held, the three statements
    // below see the same rows.
    let range = |upto: Option<&str>| -> Condition<'_> {
        let mut cond: Condition<'_> = Box::new(sql::<Bool>("1 = 1"));
        if let Scope::User(user) = scope {
            cond = Box::new(cond.and(sessions::user_id.eq(user.to_owned())));
        }
        if let Some(key) = after {
            cond = Box::new(cond.and(sessions::session_id.gt(key.to_owned())));
        }
        if let Some(key) = upto {
            cond = Box::new(cond.and(sessions::session_id.le(key.to_owned())));
        }
        cond
    };
    c.write_transaction(|c| {
        // The `limit`-th key from here, if there are that many: the batch's upper end.
        let upto: Option<String> = sessions::table
            .select(sessions::session_id)
            .filter(range(None))
            .order(sessions::session_id)
            .offset(limit - 1)
            .limit(1)
            .get_result(c)
            .optional()?;
        let ids: Vec<String> = sessions::table
            .select(sessions::session_id)
            .filter(range(upto.as_deref()))
            .load(c)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let records: Vec<HistoryRow> = take_sqlite(c, &ids)?
            .into_iter()
            .map(|r| history_of(r, ended_at, reason))
            .collect();
        for chunk in records.chunks(HISTORY_INSERT_CHUNK) {
            diesel::insert_into(session_history::table)
                .values(chunk)
                .execute(c)?;
        }
        Ok((upto, records.len()))
    })
}
