//! The database, through diesel only: the connection type for both backends, the pool, the
//! embedded migrations, and one query module per table family.
//!
//! Queries return `QueryResult`; deciding what a failure means to a client is the service's job.
//!
//! The SQLite file is created only by [`Store::migrate`] (the first start), owner-only; pool
//! connections open it read-write without create, so a file deleted while serving is an outage
//! (logged once, naming the path), never a new empty database. A pooled connection whose file
//! was removed or replaced, or which SQLite opened read-only, is dropped rather than reused.
//! Most queries are written once against [`DbConnection`] (diesel's `MultiConnection`). The few
//! that need a backend's own features (RETURNING, SQLite's `BEGIN IMMEDIATE`) are written once
//! too, and expanded per backend by [`on_backend!`].
//!
//! Here: the connection type, [`Store`] (the pool, a checked-out connection, readiness).
//! Beside it: `migrate` (the embedded migrations, the first start's SQLite file), `errors`
//! (what a failed query means: unavailable or not), `pool`, `watchdog` and `transaction`
//! (how connections are made, watched and written through), and the query modules.

pub mod accounts;
mod backup;
pub mod console;
pub mod ends;
pub mod history;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod users;

mod errors;
mod migrate;
mod pool;
mod transaction;
mod watchdog;
use errors::is_read_only;
pub use errors::{is_disk_full, is_unavailable};
pub use migrate::MigrateError;
use migrate::{versions, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
pub use pool::{Manager, Pooled};
pub(crate) use transaction::WriteTransaction;

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, PooledConnection, R2D2Connection};

pub use crate::domain::{Backend, DatabaseUrl};

pub use diesel::result::Error as QueryError;

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

pub type Pool = r2d2::Pool<Manager>;

/// How long a call waits for a connection while the link to the database is known silent.
const SILENT_LINK_WAIT: Duration = Duration::from_millis(100);

/// A connection checked out of the pool. On PostgreSQL it is under the watchdog's eye while
/// out: silent for the database timeout, it is shut and then dropped by the pool.
pub struct Conn {
    // Declared first, dropped first: the watch ends before the connection goes back.
    _armed: Option<watchdog::Armed>,
    conn: PooledConnection<Manager>,
}

impl Deref for Conn {
    type Target = Pooled;
    fn deref(&self) -> &Pooled {
        &self.conn
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Pooled {
        &mut self.conn
    }
}

/// The pool and which backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The pool's manager, for the start's own first connection (see [`Store::migrate`]) and
    /// the revocation reader's (see [`Store::revocation_feed`]).
    manager: Manager,
    backend: Backend,
    /// For SQLite the file path; for PostgreSQL the URL (never logged: it may hold a password).
    target: String,
    /// Callers in `conn()` right now: r2d2 counts connections but not who waits for one.
    waiting: Arc<AtomicUsize>,
    /// The database timeout: the longest any wait on the database may take.
    timeout: Duration,
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
    /// SQLite: the database file is gone (deleted or moved away while serving).
    #[error("the database file {0} is missing")]
    FileMissing(String),
}

impl Store {
    /// Builds the pool without connecting: a database that is down at start is reported by the
    /// first query, and the pool recovers by itself when it is back.
    pub fn new(database: &DatabaseUrl, pool_size: u32, timeout: Duration) -> Self {
        let manager = Manager {
            database: database.clone(),
            busy_timeout: timeout,
            down: Arc::new(AtomicBool::new(false)),
            read_only: Arc::new(AtomicBool::new(false)),
            link: Arc::default(),
            connecting: Arc::default(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            // No round trip (see `Manager::is_valid`): on SQLite one `stat` of the file (a
            // connection to a deleted file must not answer at all), on PostgreSQL two atomic
            // reads (a connection shut by the watchdog or older than a failover).
            .test_on_check_out(true)
            // The manager logs a failing connect once per outage; r2d2 would log every retry.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager.clone());
        Self {
            pool,
            manager,
            backend: database.backend,
            waiting: Arc::default(),
            target: database.target.clone(),
            timeout,
        }
    }

    /// True when a read is a call into this process (SQLite), not a network round trip.
    pub fn reads_in_process(&self) -> bool {
        self.backend == Backend::Sqlite
    }

    /// A connection, waiting at most the database timeout for one, in slices of
    /// [`SILENT_LINK_WAIT`]: once the link is known silent (a connection went unanswered and
    /// none was made since) the wait ends with the slice. A call that already waited elsewhere
    /// (a login for its turn, behind logins held by the silent link) must not wait the whole
    /// timeout again. The pool still tries to connect meanwhile, so the service is back as
    /// soon as the link is.
    pub fn conn(&self) -> Result<Conn, r2d2::PoolError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let conn = loop {
            let left = self.timeout.saturating_sub(started.elapsed());
            let slice = left.min(SILENT_LINK_WAIT);
            match self.pool.get_timeout(slice) {
                Ok(conn) => break Ok(conn),
                Err(e) if left <= slice || self.manager.link.is_silent() => break Err(e),
                Err(_) => {}
            }
        };
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let conn = conn?;
        pool::using(&self.manager.link);
        let armed = conn.watch(self.timeout);
        Ok(Conn {
            _armed: armed,
            conn,
        })
    }

    /// A connection of its own for the revocation reader, outside the pool: on PostgreSQL it
    /// holds a LISTEN for as long as it lives.
    pub fn revocation_feed(&self) -> Result<ends::Feed, r2d2::Error> {
        let pooled = self.manager.connect()?;
        // Like the pool, never keep a connection SQLite opened read-only: held open, it kept
        // writers on other connections failing after the file was writable again.
        if pooled.read_only {
            return Err(r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection("the database file is read-only".into()),
            ));
        }
        ends::Feed::new(pooled, &self.target, self.timeout).map_err(r2d2::Error::QueryError)
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
        let is_file = !(self.target.starts_with("file:") || self.target == ":memory:");
        if self.backend == Backend::Sqlite && is_file && pool::file_id(&self.target).is_none() {
            return Err(NotReady::FileMissing(self.target.clone()));
        }
        // Bounded: the checkout by the pool's timeout, the read by the watchdog.
        let mut conn = self
            .conn()
            .map_err(|e| NotReady::Unreachable(e.to_string()))?;
        let expected: Vec<String> = match &**conn {
            DbConnection::Postgres(_) => versions::<diesel::pg::Pg>(&POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(_) => versions::<diesel::sqlite::Sqlite>(&SQLITE_MIGRATIONS),
        };
        let applied: Vec<Applied> =
            diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                .load(&mut **conn)
                .map_err(|e| NotReady::Unreachable(e.to_string()))?;
        let applied: HashSet<String> = applied.into_iter().map(|a| a.version).collect();
        let missing = expected.iter().filter(|v| !applied.contains(*v)).count();
        if missing > 0 {
            return Err(NotReady::MigrationsPending(missing));
        }
        Ok(())
    }
}

/// Failing to get a connection from the pool: the database is down or every connection is busy.
pub use diesel::r2d2::PoolError;
