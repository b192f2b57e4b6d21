//! The admin console's reads: keyset pages of stored and ended sessions in every order the
//! console offers, counts that stop at a bound, and the distinct values of a grouping column.
//!
//! Every query here is meant to touch a page's worth of index entries, whatever the table
//! holds: a page seeks to its key in an index that leads with the filter and goes on in the
//! page order (the console's migration adds them), a count stops at its bound, and distinct
//! values are found by skipping through an index, one seek per value.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable, Text, Timestamp};

use super::history::HistoryRow;
use super::schema::{session_activity, session_history, sessions};
use super::sessions::{Cutoffs, SessionRow, State};
use super::{DbConnection, MultiBackend};

/// The instant a sessions page is ordered by (then the ID, for ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Created,
    LastActivity,
}

impl SortKey {
    fn column(self) -> &'static str {
        match self {
            SortKey::Created => "sessions.created_at",
            SortKey::LastActivity => "session_activity.last_activity",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ascending,
    Descending,
}

/// A row's place in its order: the instant it is sorted by and its ID.
pub type Key = (NaiveDateTime, String);

/// Which page: the first, the one after a key (next), or the one before it (previous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seek {
    First,
    After(Key),
    Before(Key),
}

/// The filters of the sessions page; absent ones match anything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilters {
    pub user_id: Option<String>,
    pub client_type: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SessionQuery {
    pub state: State,
    pub cutoffs: Cutoffs,
    pub filters: SessionFilters,
    pub sort: SortKey,
    pub direction: Direction,
    /// At most a few thousand sessions are in `state` (the bounded count said so): then it is
    /// cheaper to find them by last activity and sort them than to walk the creation order.
    pub few: bool,
}

impl SessionFilters {
    fn any(&self) -> bool {
        self.user_id.is_some() || self.client_type.is_some() || self.location.is_some()
    }
}

/// How SQLite is steered to the right index. Its planner has no statistics on a fresh file
/// and, given a range on last activity and an equality on a filter, picked the range: to find
/// ten thousand `bw` sessions it read every session in the last half hour. A unary `+` makes a
/// term unusable for an index (SQLite's documented way to hint), so the state test and, for a
/// few sessions, the sort key are written with one. PostgreSQL keeps statistics and is told
/// nothing.
#[derive(Debug, Clone, Copy)]
struct Hints {
    /// Test the state without an index: a filter's index is the one to walk.
    state: &'static str,
    /// Sort without an index: the state's range on last activity is the one to walk.
    order: &'static str,
}

fn hints(conn: &DbConnection, query: &SessionQuery) -> Hints {
    let sqlite = matches!(conn, DbConnection::Sqlite(_));
    let plus = |on: bool| if sqlite && on { "+" } else { "" };
    Hints {
        state: plus(query.filters.any()),
        order: plus(
            query.few
                && query.state != State::Any
                && query.sort == SortKey::Created
                && !query.filters.any(),
        ),
    }
}

/// The filters of the history page.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilters {
    pub user_id: Option<String>,
    pub end_reason: Option<String>,
}

/// A column the overview groups sessions by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    ClientType,
    Location,
}

impl Grouping {
    fn column(self) -> &'static str {
        match self {
            Grouping::ClientType => "client_type",
            Grouping::Location => "location",
        }
    }
}

/// `(column, session_id) <op> (instant, id)`, as a row value so that both databases seek
/// straight to the key in an index on (…, column, session_id); see `sessions::after_key` for
/// why not an OR. A `column` qualified by its table qualifies the ID alike.
fn key_test(
    column: &'static str,
    greater: bool,
    key: &Key,
) -> diesel::expression::SqlLiteral<
    Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryFragment<MultiBackend>,
> {
    let op = if greater { ">" } else { "<" };
    let table = column.split_once('.').map_or("", |(t, _)| t);
    let dot = if table.is_empty() { "" } else { "." };
    diesel::dsl::sql::<Bool>(&format!("({column}, {table}{dot}session_id) {op} ("))
        .bind::<Timestamp, _>(key.0)
        .sql(", ")
        .bind::<Text, _>(key.1.clone())
        .sql(")")
}

/// `{p}last_activity <op> ?`, `p` a hint or nothing.
fn instant_test(
    p: &str,
    column: &str,
    op: &str,
    at: NaiveDateTime,
) -> diesel::expression::SqlLiteral<
    Bool,
    impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
        + diesel::query_builder::QueryFragment<MultiBackend>,
> {
    diesel::dsl::sql::<Bool>(&format!("{p}{column} {op} "))
        .bind::<Timestamp, _>(at)
        .sql("")
}

/// The tables a sessions query reads: a session and its last activity.
type Joined = diesel::dsl::InnerJoinQuerySource<sessions::table, session_activity::table>;
/// One condition of a sessions query.
type Condition<'a> = Box<dyn BoxableExpression<Joined, MultiBackend, SqlType = Bool> + 'a>;

/// The state and filter conditions of a sessions query, to apply to a query of any selection.
fn conditions<'a>(query: &'a SessionQuery, hints: Hints) -> Vec<Condition<'a>> {
    let cut = query.cutoffs;
    let p = hints.state;
    let at = "session_activity.last_activity";
    let created = "sessions.created_at";
    let mut all: Vec<Condition<'a>> = Vec::new();
    match (query.state, cut.lifetime) {
        (State::Any, _) => {}
        (State::Active, None) => all.push(Box::new(instant_test(p, at, ">=", cut.idle))),
        (State::Active, Some(life)) => {
            all.push(Box::new(instant_test(p, at, ">=", cut.idle)));
            all.push(Box::new(instant_test(p, created, ">=", life)));
        }
        (State::Expired, None) => all.push(Box::new(instant_test(p, at, "<", cut.idle))),
        (State::Expired, Some(life)) => all.push(Box::new(
            instant_test(p, at, "<", cut.idle).or(instant_test(p, created, "<", life)),
        )),
    }
    if let Some(user) = &query.filters.user_id {
        all.push(Box::new(sessions::user_id.eq(user)));
    }
    if let Some(kind) = &query.filters.client_type {
        all.push(Box::new(sessions::client_type.eq(kind)));
    }
    if let Some(location) = &query.filters.location {
        all.push(Box::new(sessions::location.eq(location)));
    }
    all
}

/// One page of stored sessions, at most `limit`, in the query's order whichever way `seek`
/// went: a previous page is read backwards from its key and turned round here.
///
/// The page's IDs are found first and its rows read by ID after: the first query reads only
/// columns a filter's index holds, so rows it passes over (expired ones, on a page of active
/// sessions) cost an index entry each, never a read of the table.
pub fn sessions_page(
    conn: &mut DbConnection,
    query: &SessionQuery,
    seek: &Seek,
    limit: i64,
) -> QueryResult<Vec<SessionRow>> {
    let ascending = query.direction == Direction::Ascending;
    // Reading backwards (a previous page) flips the order and the key test.
    let (forward, key) = match seek {
        Seek::First => (true, None),
        Seek::After(k) => (true, Some(k)),
        Seek::Before(k) => (false, Some(k)),
    };
    let up = ascending == forward;
    let hints = hints(conn, query);
    let mut q = sessions::table
        .inner_join(session_activity::table)
        .select(sessions::session_id)
        .into_boxed();
    for c in conditions(query, hints) {
        q = q.filter(c);
    }
    if !hints.order.is_empty() {
        // The hinted order: the same (created_at, session_id) key, written so that no index
        // serves it.
        let p = hints.order;
        let (op, dir) = if up { (">", "ASC") } else { ("<", "DESC") };
        if let Some(k) = key {
            q = q.filter(
                diesel::dsl::sql::<Bool>(&format!(
                    "({p}sessions.created_at, {p}sessions.session_id) {op} ("
                ))
                .bind::<Timestamp, _>(k.0)
                .sql(", ")
                .bind::<Text, _>(k.1.clone())
                .sql(")"),
            );
        }
        let order = format!("{p}sessions.created_at {dir}, {p}sessions.session_id {dir}");
        q = q.order(diesel::dsl::sql::<Timestamp>(&order));
    } else {
        if let Some(k) = key {
            q = q.filter(key_test(query.sort.column(), up, k));
        }
        q = match (query.sort, up) {
            (SortKey::Created, true) => {
                q.order((sessions::created_at.asc(), sessions::session_id.asc()))
            }
            (SortKey::Created, false) => {
                q.order((sessions::created_at.desc(), sessions::session_id.desc()))
            }
            (SortKey::LastActivity, true) => q.order((
                session_activity::last_activity.asc(),
                sessions::session_id.asc(),
            )),
            (SortKey::LastActivity, false) => q.order((
                session_activity::last_activity.desc(),
                sessions::session_id.desc(),
            )),
        };
    }
    let mut ids: Vec<String> = q.limit(limit).load(conn)?;
    if !forward {
        ids.reverse();
    }
    let mut rows: Vec<SessionRow> = sessions::table
        .inner_join(session_activity::table)
        .filter(sessions::session_id.eq_any(&ids))
        .select(SessionRow::as_select())
        .load(conn)?;
    // Back into the page's order; a session ended between the two reads is simply not shown.
    let place: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    rows.sort_by_key(|r| place.get(r.record.session_id.as_str()).copied());
    Ok(rows)
}

/// How many stored sessions match, counting no further than `bound`: the console shows "more
/// than …" past it rather than have every page load count a million rows.
pub fn count_sessions(
    conn: &mut DbConnection,
    query: &SessionQuery,
    bound: i64,
) -> QueryResult<i64> {
    let hints = hints(conn, query);
    let mut q = sessions::table
        .inner_join(session_activity::table)
        .select(diesel::dsl::sql::<Integer>("1"))
        .into_boxed();
    for c in conditions(query, hints) {
        q = q.filter(c);
    }
    if query.filters.any() {
        // A filter's index runs in creation order. Active sessions are mostly the recent
        // ones and expired ones the old: walking from the end where they are reaches the
        // bound before the rest, instead of after it.
        q = match query.state {
            State::Active => q.order((sessions::created_at.desc(), sessions::session_id.desc())),
            _ => q.order((sessions::created_at.asc(), sessions::session_id.asc())),
        };
    }
    // The rows are a constant each; what is sent back is as small as a count.
    let ones: Vec<i32> = q.limit(bound).load(conn)?;
    Ok(ones.len() as i64)
}

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// The distinct values of a column among stored sessions, in order, at most `max`: one index
/// seek per value (a recursive "next value after this one"), never a scan of the table.
pub fn distinct_values(
    conn: &mut DbConnection,
    grouping: Grouping,
    max: i64,
) -> QueryResult<Vec<String>> {
    let c = grouping.column();
    let sql = format!(
        "WITH RECURSIVE v(value) AS ( \
           SELECT MIN({c}) FROM sessions \
           UNION ALL \
           SELECT (SELECT MIN({c}) FROM sessions WHERE {c} > v.value) FROM v \
           WHERE v.value IS NOT NULL \
         ) SELECT value FROM v WHERE value IS NOT NULL LIMIT {max}"
    );
    let rows: Vec<Value> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.into_iter().filter_map(|v| v.value).collect())
}

/// One page of ended sessions, newest first (end time, then ID), at most `limit`.
pub fn history_page(
    conn: &mut DbConnection,
    filters: &HistoryFilters,
    seek: &Seek,
    limit: i64,
) -> QueryResult<Vec<HistoryRow>> {
    let mut q = session_history::table
        .select(HistoryRow::as_select())
        .into_boxed();
    if let Some(user) = &filters.user_id {
        q = q.filter(session_history::user_id.eq(user));
    }
    if let Some(reason) = &filters.end_reason {
        q = q.filter(session_history::end_reason.eq(reason));
    }
    let forward = !matches!(seek, Seek::Before(_));
    match seek {
        Seek::First => {}
        // Newest first: the next page holds older records, the previous one newer.
        Seek::After(k) => q = q.filter(key_test("ended_at", false, k)),
        Seek::Before(k) => q = q.filter(key_test("ended_at", true, k)),
    }
    q = if forward {
        q.order((
            session_history::ended_at.desc(),
            session_history::session_id.desc(),
        ))
    } else {
        q.order((
            session_history::ended_at.asc(),
            session_history::session_id.asc(),
        ))
    };
    let mut rows: Vec<HistoryRow> = q.limit(limit).load(conn)?;
    if !forward {
        rows.reverse();
    }
    Ok(rows)
}
