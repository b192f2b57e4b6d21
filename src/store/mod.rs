//! The database, through diesel only: the connection type for both backends, the pool, the
//! embedded migrations, and one query module per table family.
//!
//! Queries return `QueryResult`; deciding what a failure means to a client is the service's job.
//! Most queries are written once against [`DbConnection`] (diesel's `MultiConnection`). The few
//! that need a backend's own features (RETURNING, SQLite's `BEGIN IMMEDIATE`) are written once
//! too, and expanded per backend by [`on_backend!`].

pub mod console;
pub mod history;
pub mod schema;
pub mod sessions;
pub mod url;
pub mod users;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, PooledConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use url::{Backend, DatabaseUrl};

pub use diesel::result::Error as QueryError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend. The variant is chosen by the URL scheme in [`Manager`],
/// never by trial (SQLite would accept any string as a file name).
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend: the body is
/// compiled once per backend, so it may use what only the concrete types offer.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Postgres($c) => $body,
            $crate::store::DbConnection::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// A transaction that takes the write lock up front. On SQLite a deferred transaction that
/// reads before it writes fails at once with SQLITE_BUSY when another writer got there first;
/// `BEGIN IMMEDIATE` waits for the lock instead.
pub(crate) trait WriteTransaction: Connection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>;
}

impl WriteTransaction for diesel::SqliteConnection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>,
    {
        self.immediate_transaction(f)
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

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = PooledConnection<Manager>;

/// Opens connections of the backend the URL names, with SQLite's per-connection settings.
#[derive(Debug, Clone)]
pub struct Manager {
    database: DatabaseUrl,
    busy_timeout: Duration,
}

impl Manager {
    /// The URL with libpq's timeouts set from the database timeout, unless the URL sets them:
    /// a server that is down or unreachable then costs a bounded wait, never a hung request.
    fn postgres_url(&self) -> String {
        let url = &self.database.target;
        let secs = self.busy_timeout.as_secs().max(1);
        let params = [
            ("connect_timeout", secs.to_string()),
            ("tcp_user_timeout", (secs * 1000).to_string()),
            ("keepalives_idle", secs.to_string()),
            ("keepalives_interval", "1".to_owned()),
            ("keepalives_count", "3".to_owned()),
        ];
        let mut out = url.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (key, value) in params {
            if !url.contains(&format!("{key}=")) {
                out.push(sep);
                out.push_str(&format!("{key}={value}"));
                sep = '&';
            }
        }
        out
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match self.database.backend {
            Backend::Postgres => diesel::PgConnection::establish(&self.postgres_url())
                .map(DbConnection::Postgres)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&self.database.target)
                    .map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers (validateSession) go on while one writer writes; NORMAL sync is
                // safe with WAL and spares an fsync per commit.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// The pool and which backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
}

impl Store {
    /// Builds the pool without connecting: a database that is down at start is reported by the
    /// first query, and the pool recovers by itself when it is back.
    pub fn new(database: &DatabaseUrl, pool_size: u32, timeout: Duration) -> Self {
        let manager = Manager {
            database: database.clone(),
            busy_timeout: timeout,
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            // A check-out test is a round trip per request; broken connections are caught by
            // `has_broken` after a failed query instead.
            .test_on_check_out(false)
            .build_unchecked(manager);
        Self {
            pool,
            backend: database.backend,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when a read is a call into this process (SQLite), not a network round trip.
    pub fn reads_in_process(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    pub fn conn(&self) -> Result<Conn, r2d2::PoolError> {
        self.pool.get()
    }

    /// Applies the embedded migrations that have not run yet; returns how many ran.
    pub fn migrate(&self) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = self.conn()?;
        let applied = match &mut *conn {
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS)?.len(),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS)?.len(),
        };
        Ok(applied)
    }
}

/// True when the error means the database cannot be reached, as opposed to a bad query.
pub fn is_unavailable(error: &QueryError) -> bool {
    use diesel::result::DatabaseErrorKind;
    match error {
        QueryError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        QueryError::DatabaseError(_, info) => {
            let message = info.message();
            // SQLite: the file is locked past busy_timeout or cannot be opened; PostgreSQL: the
            // server went away mid-query.
            message.contains("database is locked")
                || message.contains("unable to open")
                || message.contains("server closed the connection")
                || message.contains("terminating connection")
                || message.contains("connection")
        }
        _ => false,
    }
}

/// Failing to get a connection from the pool: the database is down or every connection is busy.
pub use diesel::r2d2::PoolError;
