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

pub mod accounts;
mod backup;
pub mod console;
pub mod ends;
pub mod history;
pub mod schema;
pub mod secrets;
pub mod sessions;
pub mod users;

mod pool;
mod transaction;
mod watchdog;
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
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, PooledConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use crate::domain::{Backend, DatabaseUrl};

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

    /// Applies the embedded migrations that have not run yet; returns how many ran. On SQLite
    /// this is where the file is made (the first start), readable by its owner only.
    ///
    /// On a connection of its own, not the pool's: a database that cannot be opened or reached
    /// at start is one line at once ([`MigrateError::Open`]), not a wait of the pool's timeout.
    pub fn migrate(&self) -> Result<usize, MigrateError> {
        if self.backend == Backend::Sqlite {
            prepare_sqlite_file(&self.target).map_err(|e| MigrateError::Open(e.to_string()))?;
        }
        let mut conn = self.manager.open().map_err(|e| self.open_failure(&e))?;
        let applied = match &mut *conn {
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(MigrateError::Migrate)?
        .len();
        Ok(applied)
    }

    /// For the CLI's verbs, which must never change the schema of a database in use: brings a
    /// fresh database (no migration applied yet: a new SQLite file, an empty PostgreSQL
    /// database) to the current schema, so `user add` works before the first `serve`, and
    /// refuses one that has some migrations but not all ([`MigrateError::Behind`]), changing
    /// nothing. Returns how many migrations ran.
    pub fn migrate_if_fresh(&self) -> Result<usize, MigrateError> {
        if self.backend == Backend::Sqlite {
            prepare_sqlite_file(&self.target).map_err(|e| MigrateError::Open(e.to_string()))?;
        }
        let mut conn = self.manager.open().map_err(|e| self.open_failure(&e))?;
        let (applied, pending) = match &mut *conn {
            DbConnection::Postgres(c) => schema_state(c, POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => schema_state(c, SQLITE_MIGRATIONS),
        }
        .map_err(MigrateError::Migrate)?;
        if pending == 0 {
            return Ok(0);
        }
        if applied > 0 {
            return Err(MigrateError::Behind {
                database: self.manager.database.describe(),
                pending,
            });
        }
        let ran = match &mut *conn {
            DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(MigrateError::Migrate)?
        .len();
        Ok(ran)
    }

    /// Why the start's first connection failed, in one line naming the database (never the
    /// password): for SQLite the OS's reason when the file cannot be opened (SQLite says only
    /// "unable to open database file"), for PostgreSQL libpq's message on one line.
    fn open_failure(&self, error: &r2d2::Error) -> MigrateError {
        let what = self.manager.database.describe();
        let why = match self.backend {
            // Opening the file here closes it again, which would drop this process's POSIX
            // locks on it: harmless at start, where no other connection holds any.
            Backend::Sqlite => match std::fs::File::open(&self.target) {
                Err(e) => e.to_string(),
                Ok(_) if Path::new(&self.target).is_dir() => "it is a directory".to_owned(),
                Ok(_) => error.to_string(),
            },
            Backend::Postgres => one_line(&error.to_string()),
        };
        let verb = match self.backend {
            Backend::Sqlite => "open",
            Backend::Postgres => "connect to",
        };
        MigrateError::Open(format!("cannot {verb} the database {what}: {why}"))
    }
}

/// Why the start could not make the database ready.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database cannot be opened or reached: a message naming it and the cause.
    #[error("{0}")]
    Open(String),
    #[error("cannot migrate the database: {0}")]
    Migrate(Box<dyn std::error::Error + Send + Sync>),
    /// A verb met a database an earlier release left: migrating is `serve`'s or `migrate`'s.
    #[error(
        "the database {database} lacks {pending} migration(s) of this release: \
         run `sessiond migrate` first (this command changes no schema)"
    )]
    Behind { database: String, pending: usize },
}

/// How many migrations a database has applied, and how many of `source` it lacks.
fn schema_state<DB, C>(
    conn: &mut C,
    source: impl MigrationSource<DB>,
) -> diesel::migration::Result<(usize, usize)>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
{
    let applied = conn.applied_migrations()?.len();
    let pending = conn.pending_migrations(source)?.len();
    Ok((applied, pending))
}

/// libpq's multi-line message as one line: without "FATAL:", the indented hint folded in.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(|l| l.replace("FATAL:  ", "").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
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

/// The first start's SQLite file: created empty, 0600 whatever the umask, before SQLite opens
/// it; SQLite then makes the -wal and -shm files with the database file's mode. Files from an
/// earlier version that group or others could read are tightened to the owner's bits (logged);
/// the owner's own bits are kept, so a file made read-only stays so.
fn prepare_sqlite_file(target: &str) -> std::io::Result<()> {
    if target.starts_with("file:") || target == ":memory:" {
        return Ok(());
    }
    let path = Path::new(target);
    let owner_only = std::fs::Permissions::from_mode(0o600);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {
            // `mode` passes through the umask; this does not.
            std::fs::set_permissions(path, owner_only)?;
            log::info!("created the database file {target}");
            return Ok(());
        }
        // Not tightened below: a directory is no database, whatever its mode.
        Err(_) if path.is_dir() => {
            return Err(std::io::Error::other(format!(
                "cannot open the database file {target}: it is a directory"
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot create the database file {target}: {e}"),
            ))
        }
    }
    for file in [
        target.to_owned(),
        format!("{target}-wal"),
        format!("{target}-shm"),
    ] {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            continue;
        }
        let tight = std::fs::Permissions::from_mode(mode & 0o700);
        match std::fs::set_permissions(&file, tight) {
            Ok(()) => log::info!(
                "{file} was readable by others (mode {mode:04o}): now {:04o}",
                mode & 0o700
            ),
            Err(e) => log::warn!(
                "{file} is readable by others (mode {mode:04o}) and cannot be tightened: {e}"
            ),
        }
    }
    Ok(())
}

/// SQLite refused a write because the connection or file is read-only (SQLITE_READONLY and its
/// extended codes, e.g. the file moved or deleted under the connection).
fn is_read_only(error: &QueryError) -> bool {
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

/// Failing to get a connection from the pool: the database is down or every connection is busy.
pub use diesel::r2d2::PoolError;

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

    #[test]
    fn libpq_messages_are_folded_into_one_line() {
        let message =
            "connection to server at \"127.0.0.1\", port 5999 failed: Connection refused\n\
                       \tIs the server running on that host and accepting TCP/IP connections?\n";
        assert_eq!(
            one_line(message),
            "connection to server at \"127.0.0.1\", port 5999 failed: Connection refused; \
             Is the server running on that host and accepting TCP/IP connections?"
        );
        assert_eq!(
            one_line("connection to server failed: FATAL:  role \"x\" does not exist\n"),
            "connection to server failed: role \"x\" does not exist"
        );
    }
}
