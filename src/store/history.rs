//! The `session_history` table: ended sessions, with when and why they ended.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::session_history;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_history)]
pub struct HistoryRow {
    pub session_id: String,
    pub user_id: String,
    pub client_type: String,
    pub client_name: Option<String>,
    pub host: Option<String>,
    pub location: String,
    pub created_at: NaiveDateTime,
    pub last_activity: NaiveDateTime,
    pub created_by: Option<String>,
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
