//! The database, through diesel only: the connection type for both backends, the pool, the
//! embedded migrations, and one query module per table family.
//!
//! Queries return `QueryResult`; deciding what a failure means to a client is the service's job.
//! Most queries are written once against [`DbConnection`] (diesel's `MultiConnection`). The few
//! that need a backend's own features (RETURNING, SQLite's `BEGIN IMMEDIATE`) are written once
//! too, and expanded per backend by [`on_backend!`].

pub mod history;
pub mod schema;
pub mod sessions;
pub mod url;
pub mod users;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
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
    /// Callers in `conn()` right now: r2d2 counts connections but not who waits for one.
    waiting: Arc<AtomicUsize>,
}

/// The pool's state for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolStatus {
    pub in_use: u32,
    pub idle: u32,
    pub waiting: usize,
}

/// Why the store cannot serve: what `/readyz` reports.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("database unreachable: {0}")]
    Unreachable(String),
    #[error("database migrations pending: {0} not applied")]
    MigrationsPending(usize),
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
            waiting: Arc::default(),
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
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let conn = self.pool.get();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        conn
    }

    pub fn pool_status(&self) -> PoolStatus {
        let state = self.pool.state();
        PoolStatus {
            in_use: state.connections.saturating_sub(state.idle_connections),
            idle: state.idle_connections,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    /// The database answers (within the pool's timeout, which is the database timeout) and
    /// every embedded migration is applied. One read of the migrations table, no write: cheap
    /// enough for a load balancer's probe every second.
    pub fn check_ready(&self) -> Result<(), NotReady> {
        #[derive(QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        let mut conn = self
            .conn()
            .map_err(|e| NotReady::Unreachable(e.to_string()))?;
        let expected: Vec<String> = match &*conn {
            DbConnection::Postgres(_) => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
        };
        let applied: Vec<Applied> =
            diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                .load(&mut *conn)
                .map_err(|e| NotReady::Unreachable(e.to_string()))?;
        let applied: HashSet<String> = applied.into_iter().map(|a| a.version).collect();
        let missing = expected.iter().filter(|v| !applied.contains(*v)).count();
        if missing > 0 {
            return Err(NotReady::MigrationsPending(missing));
        }
        Ok(())
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

/// The versions of the embedded migrations, as diesel records them once applied.
fn versions<DB: diesel::backend::Backend>(source: &impl MigrationSource<DB>) -> Vec<String> {
    source
        .migrations()
        .map(|list| {
            list.iter()
                .map(|m| m.name().version().to_string())
                .collect()
        })
        .unwrap_or_default()
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
