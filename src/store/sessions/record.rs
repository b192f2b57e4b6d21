//! A session's own values, written out once: [`SessionRecord`] is the `sessions` table's row,
//! and the first columns of the session's `session_history` record. [`super::SessionRow`] and
//! [`crate::store::history::HistoryRow`] embed it beside what only they have (the last
//! activity, when and why it ended), the service's view carries it to the encoders, and the
//! PostgreSQL statement that moves sessions into the history reads its column list from here.
//!
//! A new column of `sessions` is: a migration per backend (both tables), both `table!`s in
//! `schema.rs`, a field here and its name in [`record_columns!`], and the encoders that show it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::store::schema::{session_history, sessions};

/// The columns of a [`SessionRecord`] in `$table` (`sessions` or `session_history`), in the
/// order of its fields: `Queryable` reads them by position.
macro_rules! record_columns {
    ($table:ident) => {
        (
            $table::session_id,
            $table::user_id,
            $table::client_type,
            $table::client_name,
            $table::host,
            $table::location,
            $table::created_at,
            $table::created_by,
        )
    };
}
pub(crate) use record_columns;

/// One session as stored: every column of `sessions`. Its last activity is not here: it lives
/// in `session_activity`, and the rows that need it carry it beside.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = sessions)]
#[diesel(table_name = session_history)]
pub struct SessionRecord {
    pub session_id: String,
    pub user_id: String,
    pub client_type: String,
    pub client_name: Option<String>,
    pub host: Option<String>,
    pub location: String,
    pub created_at: NaiveDateTime,
    pub created_by: Option<String>,
}

/// Selected from `sessions` (a history row selects the same names from its own table; see
/// `HistoryRow`). Written by hand rather than derived: the derive allows one table, and the
/// insert above needs two.
impl<DB: diesel::backend::Backend> Selectable<DB> for SessionRecord {
    type SelectExpression = record_columns!(sessions);

    fn construct_selection() -> Self::SelectExpression {
        record_columns!(sessions)
    }
}

/// The record's columns as PostgreSQL SQL (`"session_id", "user_id", …`), unqualified, for
/// statements diesel does not build: rendered once from [`record_columns!`], so they follow
/// the record.
pub(crate) fn pg_column_list() -> &'static str {
    use diesel::query_builder::{QueryBuilder, QueryFragment};
    static LIST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        let mut out = diesel::pg::PgQueryBuilder::default();
        record_columns!(sessions)
            .to_sql(&mut out, &diesel::pg::Pg)
            .expect("a column list always renders");
        out.finish().replace("\"sessions\".", "")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_is_every_column_of_sessions_and_its_list_is_unqualified() {
        use diesel::query_builder::{QueryBuilder, QueryFragment};
        let mut all = diesel::pg::PgQueryBuilder::default();
        sessions::all_columns
            .to_sql(&mut all, &diesel::pg::Pg)
            .unwrap();
        assert_eq!(pg_column_list(), all.finish().replace("\"sessions\".", ""));
        assert!(pg_column_list().starts_with("\"session_id\", \"user_id\""));
    }
}
