//! What a failed query means: the database cannot serve now (unreachable, read-only, locked,
//! its disk full), as opposed to a bad query. The service turns these into the kinds a caller
//! acts on.

use super::{pool, QueryError};

/// SQLite refused a write because the connection or file is read-only (SQLITE_READONLY and its
/// extended codes, e.g. the file moved or deleted under the connection).
pub(super) fn is_read_only(error: &QueryError) -> bool {
    match error {
        QueryError::DatabaseError(_, info) => info.message().contains("readonly database"),
        _ => false,
    }
}

/// True when the error means the database cannot serve now, as opposed to a bad query: it
/// cannot be reached, it does not take writes (a read-only PostgreSQL server, SQLSTATE 25006),
/// or (SQLite) the file is locked, gone or its disk full.
///
/// A lost PostgreSQL connection or a read-only server also condemns every connection open now
/// (see [`pool::drop_all_connections`]): the others lead to the same server.
pub fn is_unavailable(error: &QueryError) -> bool {
    use diesel::result::DatabaseErrorKind;
    let error = commit_error(error);
    let QueryError::DatabaseError(kind, info) = error else {
        return false;
    };
    let message = info.message();
    // SQLite: the file is locked past busy_timeout, cannot be opened, is read-only or its disk
    // is full (SQLITE_FULL: nothing was written, the transaction rolled back, the file is
    // intact).
    if message.contains("database is locked")
        || message.contains("unable to open")
        || is_read_only(error)
    {
        return true;
    }
    if is_disk_full(error) {
        return true;
    }
    // PostgreSQL: the server went away mid-query, or is a standby or a fenced primary now.
    let lost = matches!(
        kind,
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::ReadOnlyTransaction
    ) || message.contains("server closed the connection")
        || message.contains("terminating connection")
        || message.contains("read-only transaction")
        || message.contains("connection");
    if lost {
        pool::drop_all_connections();
    }
    lost
}

/// The error of a failed commit rather than that of the rollback after it: the commit's says
/// why (a full disk, a lost server).
fn commit_error(error: &QueryError) -> &QueryError {
    match error {
        QueryError::RollbackErrorOnCommit { commit_error, .. } => commit_error,
        e => e,
    }
}

/// SQLite could not write because the disk (or the file system's quota) is full.
pub fn is_disk_full(error: &QueryError) -> bool {
    match commit_error(error) {
        QueryError::DatabaseError(_, info) => info.message().contains("database or disk is full"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(kind: diesel::result::DatabaseErrorKind, message: &str) -> QueryError {
        QueryError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_read_only_server_a_lost_connection_and_a_full_disk_are_unavailable_not_internal() {
        use diesel::result::DatabaseErrorKind as Kind;
        let read_only = db_error(
            Kind::ReadOnlyTransaction,
            "cannot execute INSERT in a read-only transaction",
        );
        assert!(is_unavailable(&read_only));
        assert!(is_unavailable(&db_error(
            Kind::ClosedConnection,
            "server closed the connection unexpectedly"
        )));
        let full = db_error(Kind::Unknown, "database or disk is full");
        assert!(is_disk_full(&full) && is_unavailable(&full));
        // Also when the commit failed and the rollback after it did too.
        let on_commit = QueryError::RollbackErrorOnCommit {
            rollback_error: Box::new(db_error(Kind::Unknown, "no transaction is active")),
            commit_error: Box::new(full),
        };
        assert!(is_disk_full(&on_commit) && is_unavailable(&on_commit));
        assert!(!is_unavailable(&db_error(
            Kind::UniqueViolation,
            "UNIQUE constraint failed: users.user_id"
        )));
    }
}
