//! The `sessions` table: stored sessions, active and expired-but-not-yet-removed.
//!
//! Ending a session moves its row to `session_history` in the same transaction, with
//! `DELETE … RETURNING`, so a session ended by two instances at once is ended (and recorded)
//! exactly once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::history::HistoryRow;
use super::schema::{session_history, sessions, users};
use super::users::UserRow;
use super::{on_backend, DbConnection, WriteTransaction};

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

/// A cap on one user's active sessions, applied by [`open`].
#[derive(Debug, Clone, Copy)]
pub struct Cap<'a> {
    pub max: u32,
    /// What counts as active.
    pub cutoffs: Cutoffs,
    /// With the cap reached: `None` refuses the new session; `Some((reason, at))` ends the
    /// least recently active ones (by stored last activity) to make room.
    pub evict: Option<(&'a str, NaiveDateTime)>,
}

/// What [`open`] came to.
#[derive(Debug)]
pub enum Opened {
    /// Stored; the sessions ended to make room for it, if any.
    Stored { evicted: Vec<HistoryRow> },
    /// The user is gone or disabled: nothing stored.
    NoEnabledUser,
    /// The cap is reached and says refuse: nothing stored.
    CapReached,
}

/// Stores a new session for an enabled user, within the user's cap, in one write transaction
/// that first locks the user's row ([`super::users::lock`]). Everything that must agree with
/// the user's `disabled` flag or session count takes that lock first, so concurrent logins of
/// one user, on any instance, are counted one after another, and a login racing a disable
/// either is ended by it or sees the user disabled.
pub fn open(
    conn: &mut DbConnection,
    row: &SessionRow,
    cap: Option<Cap<'_>>,
    latest: impl LatestActivity,
) -> QueryResult<Opened> {
    conn.write_transaction(|conn| {
        match super::users::lock(conn, &row.user_id)? {
            Some(user) if !user.disabled => {}
            _ => return Ok(Opened::NoEnabledUser),
        }
        let mut evicted = Vec::new();
        if let Some(cap) = cap {
            let active = active_of_user(conn, &row.user_id, cap.cutoffs)?;
            // Room for the new one: a cap lowered since may leave more than one to end.
            let over = (active.len() + 1).saturating_sub(cap.max as usize);
            if over > 0 {
                let Some((reason, at)) = cap.evict else {
                    return Ok(Opened::CapReached);
                };
                for id in active.iter().take(over) {
                    evicted.extend(end(conn, id, reason, at, &latest)?);
                }
            }
        }
        insert(conn, row)?;
        Ok(Opened::Stored { evicted })
    })
}

/// A user's active sessions, least recently active first (ties: oldest, then by ID).
fn active_of_user(
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

/// A session with its user, in one round trip: what every right check needs.
pub fn find_with_user(
    conn: &mut DbConnection,
    session_id: &str,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::session_id.eq(session_id))
        .select((SessionRow::as_select(), UserRow::as_select()))
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

/// Stores renewed activity: one statement per session, in one transaction, and never
/// backwards (another instance may have stored a later time).
pub fn store_activity(
    conn: &mut DbConnection,
    renewals: &[(String, NaiveDateTime)],
) -> QueryResult<()> {
    on_backend!(conn, |c| c.write_transaction(|c| {
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
    }))
}

/// The history record of an ended session. `row.last_activity` must already be the last
/// activity the session really had (the caller's `latest`), not only what was stored: renewals
/// pending in memory belong in the record (SPEC 3).
fn history_of(row: SessionRow, ended_at: NaiveDateTime, reason: &str) -> HistoryRow {
    HistoryRow {
        session_id: row.session_id,
        user_id: row.user_id,
        client_type: row.client_type,
        client_name: row.client_name,
        host: row.host,
        location: row.location,
        created_at: row.created_at,
        last_activity: row.last_activity,
        created_by: row.created_by,
        ended_at,
        end_reason: reason.to_owned(),
    }
}

/// The last activity a removed row really had: the stored one, or a later one the caller holds
/// in memory. Every end takes one, so that no end path records less than the client was told.
pub trait LatestActivity: Fn(&SessionRow) -> NaiveDateTime {}
impl<F: Fn(&SessionRow) -> NaiveDateTime> LatestActivity for F {}

fn with_latest(mut row: SessionRow, latest: &impl LatestActivity) -> SessionRow {
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
        let row = diesel::delete(sessions::table.find(session_id))
            .returning(SessionRow::as_returning())
            .get_result(c)
            .optional()?;
        let Some(row) = row else { return Ok(None) };
        let row = with_latest(row, &latest);
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
        let rows: Vec<SessionRow> =
            diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id)))
                .returning(SessionRow::as_returning())
                .get_results(c)?;
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

/// Rows per multi-row history insert: 11 columns each stays far below SQLite's variable limit.
const HISTORY_INSERT_CHUNK: usize = 500;

/// `(column, session_id) > (instant, id)`: rows after a key in an index on (column, session_id).
/// Written as a row value because both databases then seek straight to the key; the same test
/// spelled with OR made PostgreSQL walk the index from its start (and, with a million expired
/// sessions sharing one instant, every batch re-read all the deleted ones).
fn after_key(
    column: &'static str,
    instant: NaiveDateTime,
    id: &str,
) -> diesel::expression::SqlLiteral<
    diesel::sql_types::Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryFragment<super::MultiBackend>,
> {
    diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("({column}, session_id) > ("))
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

fn end_expired_batch_postgres(
    c: &mut diesel::PgConnection,
    expiry: Expiry,
    after: Option<&ExpiryKey>,
    limit: i64,
    reason: &str,
    lifespan: Lifespan,
) -> QueryResult<(Option<ExpiryKey>, usize)> {
    let (column, cutoff) = match expiry {
        Expiry::Idle(cutoff) => ("last_activity", cutoff),
        Expiry::Lifetime(cutoff) => ("created_at", cutoff),
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
        "SELECT session_id, {column} AS at FROM sessions WHERE {}
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
fn micros(d: chrono::Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

fn end_expired_batch_sqlite(
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
                let mut q = sessions::table
                    .select((sessions::last_activity, sessions::session_id))
                    .filter(sessions::last_activity.lt(cutoff))
                    .order((sessions::last_activity, sessions::session_id))
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
        let rows: Vec<SessionRow> =
            diesel::delete(sessions::table.filter(sessions::session_id.eq_any(&ids)))
                .returning(SessionRow::as_returning())
                .get_results(c)?;
        let ended = rows.len();
        let records: Vec<HistoryRow> = rows
            .into_iter()
            .map(|r| {
                let r = with_latest(r, &latest);
                let at = lifespan.end_of(r.created_at, r.last_activity);
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
/// The rows never leave the database: on PostgreSQL one statement deletes them and inserts
/// their history (`WITH moved AS (DELETE … RETURNING …) INSERT …`), on SQLite, which allows no
/// DELETE in a WITH, an INSERT … SELECT and a DELETE over the same key range in one
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

/// The columns a session and its history record share, in the order both tables list them.
const SHARED_COLUMNS: &str = "session_id, user_id, client_type, client_name, host, location, \
                              created_at, last_activity, created_by";

/// One value bound to a [`PgMove`] statement.
enum PgArg {
    Int(i64),
    Text(String),
    Time(NaiveDateTime),
}

/// A statement that moves a batch of sessions into the history on PostgreSQL, the bulk ends'
/// shared half: the caller writes the query that picks the batch, with its values bound
/// through [`PgMove::arg`] in any order (each gets its own `$n`), and [`PgMove::run`] wraps it
/// as `WITH picked AS (…), moved AS (DELETE … RETURNING …) INSERT INTO session_history …`. The
/// text differs per case (rather than `$1 IS NULL OR …`) so each case gets a plan that uses
/// its index.
#[derive(Default)]
struct PgMove {
    args: Vec<PgArg>,
}

/// What a [`PgMove`] came to: how many rows its pick selected, the last of them in the pick's
/// order, and how many it ended (fewer when another writer ended some first).
#[derive(QueryableByName)]
struct Moved {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    picked: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    last_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    last_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ended: i64,
}

impl PgMove {
    /// Binds `value`; returns its placeholder.
    fn arg(&mut self, value: PgArg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// `pick` selects `session_id` and a timestamp `at` (NULL when the order needs none);
    /// `last_first` orders `picked` so that its first row is the pick's last; `ended_at` is
    /// SQL over the moved row's columns.
    fn run(
        mut self,
        c: &mut diesel::PgConnection,
        pick: &str,
        last_first: &str,
        ended_at: &str,
        reason: &str,
    ) -> QueryResult<Moved> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        let reason = self.arg(PgArg::Text(reason.to_owned()));
        let sql = format!(
            "WITH picked AS (
                 {pick}
             ), moved AS (
                 DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM picked)
                 RETURNING {SHARED_COLUMNS}
             ), recorded AS (
                 INSERT INTO session_history ({SHARED_COLUMNS}, ended_at, end_reason)
                 SELECT {SHARED_COLUMNS}, {ended_at}, {reason} FROM moved
                 RETURNING 1
             ), last AS (
                 SELECT session_id, at FROM picked ORDER BY {last_first} LIMIT 1
             )
             SELECT (SELECT count(*) FROM picked) AS picked,
                    (SELECT session_id FROM last) AS last_id,
                    (SELECT at FROM last) AS last_at,
                    (SELECT count(*) FROM recorded) AS ended"
        );
        let mut query = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
        for arg in self.args {
            query = match arg {
                PgArg::Int(v) => query.bind::<BigInt, _>(v),
                PgArg::Text(v) => query.bind::<Text, _>(v),
                PgArg::Time(v) => query.bind::<Timestamp, _>(v),
            };
        }
        query.get_result(c)
    }
}

fn end_batch_postgres(
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

fn end_batch_sqlite(
    c: &mut diesel::SqliteConnection,
    scope: Scope<'_>,
    after: Option<&str>,
    limit: i64,
    reason: &str,
    ended_at: NaiveDateTime,
) -> QueryResult<(Option<String>, usize)> {
    use diesel::dsl::sql;
    use diesel::sql_types::{Bool, Text, Timestamp};
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
        let recorded = diesel::insert_into(session_history::table)
            .values(sessions::table.filter(range(upto.as_deref())).select((
                sessions::session_id,
                sessions::user_id,
                sessions::client_type,
                sessions::client_name,
                sessions::host,
                sessions::location,
                sessions::created_at,
                sessions::last_activity,
                sessions::created_by,
                ended_at.into_sql::<Timestamp>(),
                reason.to_owned().into_sql::<Text>(),
            )))
            .into_columns((
                session_history::session_id,
                session_history::user_id,
                session_history::client_type,
                session_history::client_name,
                session_history::host,
                session_history::location,
                session_history::created_at,
                session_history::last_activity,
                session_history::created_by,
                session_history::ended_at,
                session_history::end_reason,
            ))
            .execute(c)?;
        let deleted = diesel::delete(sessions::table.filter(range(upto.as_deref()))).execute(c)?;
        debug_assert_eq!(recorded, deleted);
        Ok((upto, deleted))
    })
}
