//! Write transactions that take the lock up front, on either backend.

use super::*;

/// A transaction that takes the write lock up front. On SQLite a deferred transaction that
/// reads before it writes fails at once with SQLITE_BUSY when another writer got there first;
/// `BEGIN IMMEDIATE` waits for the lock instead. Inside another write transaction it is a
/// savepoint, so that one query function may call another within its own transaction (the
/// login's insert ends the session it evicts with [`sessions::end`]).
pub(crate) trait WriteTransaction: Connection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>;
}

pub(super) fn in_transaction(conn: &mut diesel::SqliteConnection) -> QueryResult<bool> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some())
}

impl WriteTransaction for diesel::SqliteConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>,
    {
        if in_transaction(self)? {
            self.transaction(f)
        } else {
            self.immediate_transaction(f)
        }
    }
}

/// The same on the connection of either backend, for a transaction made of query functions
/// that each take a [`DbConnection`]. diesel's `MultiConnection` has no `BEGIN IMMEDIATE` of
/// its own, so on SQLite this begins one on the inner connection (whose transaction state the
/// wrapper shares) and then commits or rolls back as diesel's `transaction` would.
impl WriteTransaction for DbConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let began = match self {
            DbConnection::Sqlite(c) => {
                let outermost = !in_transaction(c)?;
                if outermost {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                }
                outermost
            }
            DbConnection::Postgres(_) => false,
        };
        if !began {
            return self.transaction(f);
        }
        match f(self) {
            Ok(value) => {
                <DbConnection as TransactionManager<DbConnection>>::commit_transaction(self)?;
                Ok(value)
            }
            Err(e) => {
                // The statement's error says why, not the rollback's: after SQLITE_FULL (and
                // some I/O errors) SQLite has already rolled back, and ROLLBACK then fails with
                // "no transaction is active", which would hide a full disk as an internal error.
                if let Err(rollback) =
                    <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(self)
                {
                    log::debug!("rollback after a failed write: {rollback}");
                }
                Err(e)
            }
        }
    }
}

impl WriteTransaction for diesel::PgConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>,
    {
        self.transaction(f)
    }
}
