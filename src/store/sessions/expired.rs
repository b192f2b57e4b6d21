//! Removing expired sessions in batches, each recorded in the history at its deadline.

use super::*;

/// Rows per multi-row history insert: 11 columns each stays far below SQLite's variable limit.
pub(super) const HISTORY_INSERT_CHUNK: usize = 500;

/// `(column, session_id) > (instant, id)`: rows after a key in an index on (column, session_id).
/// A `column` qualified by its table (`sessions.created_at`) qualifies the ID alike, for joins.
/// Written as a row value because both databases then seek straight to the key; the same test
/// spelled with OR made PostgreSQL walk the index from its start (and, with a million expired
/// sessions sharing one instant, every batch re-read all the deleted ones).
pub(super) fn after_key(
    column: &'static str,
    instant: NaiveDateTime,
    id: &str,
) -> diesel::expression::SqlLiteral<
    diesel::sql_types::Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryFragment<crate::store::MultiBackend>,
> {
    let table = column.split_once('.').map_or("", |(t, _)| t);
    let dot = if table.is_empty() { "" } else { "." };
    diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("({column}, {table}{dot}session_id) > ("))
        .bind::<diesel::sql_types::Timestamp, _>(instant)
        .sql(", ")
        .bind::<diesel::sql_types::Text, _>(id.to_owned())
        .sql(")")
}

/// Which expiry a removal pass looks for, and so which index it walks.
#[derive(Debug, Clone, Copy)]
pub enum Expiry {
    /// Idle since before the instant: walks (last_activity, session_id).
    Idle(NaiveDateTime),
    /// Created before the instant (the absolute lifetime): walks (created_at, session_id).
    Lifetime(NaiveDateTime),
}

/// Where a removal pass has got to: the key of the last session it selected.
pub type ExpiryKey = (NaiveDateTime, String);

/// How long a session lives: `idle` after its last activity, and at most `max` after its
/// creation when an absolute lifetime is set. Its end is the earlier of the two.
#[derive(Debug, Clone, Copy)]
pub struct Lifespan {
    pub idle: chrono::Duration,
    pub max: Option<chrono::Duration>,
}

impl Lifespan {
    /// When a session created at `created_at` and last active at `last_activity` expires.
    pub fn end_of(&self, created_at: NaiveDateTime, last_activity: NaiveDateTime) -> NaiveDateTime {
        let idle_end = last_activity + self.idle;
        match self.max {
            Some(max) => idle_end.min(created_at + max),
            None => idle_end,
        }
    }
}

/// Ends up to `limit` expired sessions, recording each with reason `reason` and its expiration
/// time by `lifespan` as its end time, starting after `after` in the pass's index order.
/// Returns the key to start the next batch after (`None`: nothing was left) and how many this
/// call ended (fewer than selected when another instance ended some first).
///
/// On PostgreSQL the rows never leave the database: one statement locks the batch
/// (`FOR UPDATE SKIP LOCKED`, so removals running at once on several instances, or a login's
/// removal beside the background one, take different rows instead of waiting on each other),
/// deletes it and inserts its history. The last activity recorded is the stored one, so the
/// caller stores its pending renewals first and takes the cutoff from before that store: a
/// session this instance renewed since was alive at the cutoff and is not selected, so no
/// renewal still held in memory can belong to a removed row. On SQLite, which allows no DELETE
/// in a WITH, the batch is read, deleted with `RETURNING` and recorded with its `latest`
/// activity, in one write transaction.
///
/// Walking the index from the last key, rather than from its start each time, matters on
/// PostgreSQL: deleted rows stay in the index until vacuum, and a million of them made every
/// batch re-read all the earlier ones.
pub fn end_expired_batch(
    conn: &mut DbConnection,
    expiry: Expiry,
    after: Option<&ExpiryKey>,
    limit: i64,
    reason: &str,
    lifespan: Lifespan,
    latest: impl LatestActivity,
) -> QueryResult<(Option<ExpiryKey>, usize)> {
    match conn {
        DbConnection::Postgres(c) => {
            end_expired_batch_postgres(c, expiry, after, limit, reason, lifespan)
        }
        DbConnection::Sqlite(c) => {
            end_expired_batch_sqlite(c, expiry, after, limit, reason, lifespan, latest)
        }
    }
}

pub(super) fn end_expired_batch_postgres(
    c: &mut diesel::PgConnection,
    expiry: Expiry,
    after: Option<&ExpiryKey>,
    limit: i64,
    reason: &str,
    lifespan: Lifespan,
) -> QueryResult<(Option<ExpiryKey>, usize)> {
    let (column, table, cutoff) = match expiry {
        Expiry::Idle(cutoff) => ("last_activity", "session_activity", cutoff),
        Expiry::Lifetime(cutoff) => ("created_at", "sessions", cutoff),
    };
    let mut q = PgMove::default();
    let mut conditions = vec![format!("{column} < {}", q.arg(PgArg::Time(cutoff)))];
    if let Some((at, id)) = after {
        conditions.push(format!(
            "({column}, session_id) > ({}, {})",
            q.arg(PgArg::Time(*at)),
            q.arg(PgArg::Text(id.clone()))
        ));
    }
    let pick = format!(
        "SELECT session_id, {column} AS at FROM {table} WHERE {}
         ORDER BY {column}, session_id LIMIT {} FOR UPDATE SKIP LOCKED",
        conditions.join(" AND "),
        q.arg(PgArg::Int(limit)),
    );
    let idle_end = format!(
        "last_activity + {} * interval '1 microsecond'",
        q.arg(PgArg::Int(micros(lifespan.idle)))
    );
    let ended_at = match lifespan.max {
        Some(max) => format!(
            "LEAST({idle_end}, created_at + {} * interval '1 microsecond')",
            q.arg(PgArg::Int(micros(max)))
        ),
        None => idle_end,
    };
    let moved = q.run(c, &pick, "at DESC, session_id DESC", &ended_at, reason)?;
    let next = match (moved.picked == limit, moved.last_at, moved.last_id) {
        (true, Some(at), Some(id)) => Some((at, id)),
        _ => None,
    };
    Ok((next, moved.ended as usize))
}

/// A duration in whole microseconds, PostgreSQL's resolution; the settings' ranges keep it far
/// from the limit.
pub(super) fn micros(d: chrono::Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

pub(super) fn end_expired_batch_sqlite(
    c: &mut diesel::SqliteConnection,
    expiry: Expiry,
    after: Option<&ExpiryKey>,
    limit: i64,
    reason: &str,
    lifespan: Lifespan,
    latest: impl LatestActivity,
) -> QueryResult<(Option<ExpiryKey>, usize)> {
    c.write_transaction(|c| {
        let keys: Vec<(NaiveDateTime, String)> = match expiry {
            Expiry::Idle(cutoff) => {
                let mut q = session_activity::table
                    .select((
                        session_activity::last_activity,
                        session_activity::session_id,
                    ))
                    .filter(session_activity::last_activity.lt(cutoff))
                    .order((
                        session_activity::last_activity,
                        session_activity::session_id,
                    ))
                    .limit(limit)
                    .into_boxed();
                if let Some((t, id)) = after {
                    q = q.filter(after_key("last_activity", *t, id));
                }
                q.load(c)?
            }
            Expiry::Lifetime(cutoff) => {
                let mut q = sessions::table
                    .select((sessions::created_at, sessions::session_id))
                    .filter(sessions::created_at.lt(cutoff))
                    .order((sessions::created_at, sessions::session_id))
                    .limit(limit)
                    .into_boxed();
                if let Some((t, id)) = after {
                    q = q.filter(after_key("created_at", *t, id));
                }
                q.load(c)?
            }
        };
        let Some(last) = keys.last().cloned() else {
            return Ok((None, 0));
        };
        let ids: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
        let rows = take_sqlite(c, &ids)?;
        let ended = rows.len();
        let records: Vec<HistoryRow> = rows
            .into_iter()
            .map(|r| {
                let r = with_latest(r, &latest);
                let at = lifespan.end_of(r.record.created_at, r.last_activity);
                history_of(r, at, reason)
            })
            .collect();
        for chunk in records.chunks(HISTORY_INSERT_CHUNK) {
            diesel::insert_into(session_history::table)
                .values(chunk)
                .execute(c)?;
        }
        let next = (keys.len() as i64 == limit).then_some(last);
        Ok((next, ended))
    })
}
