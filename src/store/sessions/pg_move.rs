//! The PostgreSQL statement that moves a batch of sessions into the history in the server.

use super::*;

use super::record::pg_column_list;

/// One value bound to a [`PgMove`] statement.
pub(super) enum PgArg {
    Int(i64),
    Text(String),
    Time(NaiveDateTime),
}

/// A statement that moves a batch of sessions into the history on PostgreSQL, the bulk ends'
/// shared half: the caller writes the query that picks the batch, with its values bound
/// through [`PgMove::arg`] in any order (each gets its own `$n`), and [`PgMove::run`] wraps it
/// as `WITH picked AS (…), moved AS (DELETE … RETURNING …) INSERT INTO session_history …`,
/// the last activity taken from the batch's rows of `session_activity`, deleted beside. The
/// text differs per case (rather than `$1 IS NULL OR …`) so each case gets a plan that uses
/// its index.
#[derive(Default)]
pub(super) struct PgMove {
    pub(super) args: Vec<PgArg>,
}

/// What a [`PgMove`] came to: how many rows its pick selected, the last of them in the pick's
/// order, and how many it ended (fewer when another writer ended some first).
#[derive(QueryableByName)]
pub(super) struct Moved {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(super) picked: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub(super) last_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    pub(super) last_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(super) ended: i64,
}

impl PgMove {
    /// Binds `value`; returns its placeholder.
    pub(super) fn arg(&mut self, value: PgArg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// `pick` selects `session_id` and a timestamp `at` (NULL when the order needs none);
    /// `last_first` orders `picked` so that its first row is the pick's last; `ended_at` is
    /// SQL over the moved row's columns.
    pub(super) fn run(
        mut self,
        c: &mut diesel::PgConnection,
        pick: &str,
        last_first: &str,
        ended_at: &str,
        reason: &str,
    ) -> QueryResult<Moved> {
        use diesel::sql_types::{BigInt, Text, Timestamp};
        let reason = self.arg(PgArg::Text(reason.to_owned()));
        // The record's columns, from `sessions` into the history, with the last activity beside.
        let stored = pg_column_list();
        let shared = format!("{stored}, last_activity");
        let sql = format!(
            "WITH picked AS (
                 {pick}
             ), activity AS (
                 DELETE FROM session_activity
                 WHERE session_id IN (SELECT session_id FROM picked)
                 RETURNING session_id, last_activity
             ), gone AS (
                 DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM picked)
                 RETURNING {stored}
             ), moved AS (
                 SELECT g.*, COALESCE(a.last_activity, g.created_at) AS last_activity
                 FROM gone g LEFT JOIN activity a USING (session_id)
             ), recorded AS (
                 INSERT INTO session_history ({shared}, ended_at, end_reason)
                 SELECT {shared}, {ended_at}, {reason} FROM moved
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
