//! The `session_history` table: ended sessions, with when and why they ended.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::session_history;
use super::sessions::{record_columns, SessionRecord};
use super::DbConnection;

/// An ended session: its record as it was stored, the last activity it really had, and when
/// and why it ended.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_history)]
pub struct HistoryRow {
    #[diesel(
        embed,
        select_expression = record_columns!(session_history),
        select_expression_type = record_columns!(session_history)
    )]
    pub record: SessionRecord,
    pub last_activity: NaiveDateTime,
    pub ended_at: NaiveDateTime,
    pub end_reason: String,
}

pub fn find(conn: &mut DbConnection, session_id: &str) -> QueryResult<Option<HistoryRow>> {
    session_history::table
        .find(session_id)
        .select(HistoryRow::as_select())
        .first(conn)
        .optional()
}

/// Drops records that ended before `cutoff`; returns how many.
pub fn purge_ended_before(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(session_history::table.filter(session_history::ended_at.lt(cutoff)))
        .execute(conn)
}
