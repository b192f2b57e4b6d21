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

pub mod console;
pub mod ends;
pub mod history;
pub mod schema;
pub mod sessions;
pub mod url;
pub mod users;

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
/// `BEGIN IMMEDIATE` waits for the lock instead. Inside another write transaction it is a
/// savepoint, so that one query function may call another within its own transaction (the
/// login's insert ends the session it evicts with [`sessions::end`]).
pub(crate) trait WriteTransaction: Connection {
    fn write_transaction<T, F>(&mut self, f: F) -> QueryResult<T>
    where
        F: FnOnce(&mut Self) -> QueryResult<T>;
}

fn in_transaction(conn: &mut diesel::SqliteConnection) -> QueryResult<bool> {
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
                match <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(self)
                {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
                    Err(rollback) => Err(rollback),
                }
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

pub type Pool = r2d2::Pool<Manager>;
pub type Conn = PooledConnection<Manager>;

/// A pooled connection and what the pool needs to judge it before it is used again. Derefs to
/// the [`DbConnection`] every query takes.
pub struct Pooled {
    conn: DbConnection,
    /// SQLite: the file (device, inode) this connection opened, to notice that the path now
    /// names another file or none (deleted, moved away): such a connection would go on
    /// answering from, and writing to, a file nobody will ever open again.
    file: Option<(u64, u64)>,
    /// SQLite opened the file read-only (it was not writable then) and stays so for the life of
    /// the connection: it serves one checkout and is dropped, so that writes resume as soon as
    /// the file is writable again.
    read_only: bool,
}

impl Deref for Pooled {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// Whether this process may write the file now, by access(2): opening and closing the file to
/// find out would drop the POSIX locks SQLite holds on it (closing any descriptor of a file
/// releases all of the process's locks on it).
fn writable(path: &str) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: access only reads the NUL-terminated path, which lives across the call.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK) == 0 }
}

/// Whether a file that SQLite opened read-only could now be opened read-write: the database
/// file and the -wal and -shm files beside it. SQLite makes those two with the database file's
/// mode, so when they were made while it was read-only they are given its mode now, as SQLite
/// would have; otherwise every new connection would stay read-only through them.
fn writable_again(target: &str) -> bool {
    let Ok(db) = std::fs::metadata(target) else {
        return false;
    };
    if !writable(target) {
        return false;
    }
    let mode = std::fs::Permissions::from_mode(db.permissions().mode() & 0o700);
    [format!("{target}-wal"), format!("{target}-shm")]
        .iter()
        .filter(|f| Path::new(f).exists())
        .all(|f| writable(f) || (std::fs::set_permissions(f, mode.clone()).is_ok() && writable(f)))
}

fn file_id(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The SQLite URI for a file path that opens it read-write and never creates it
/// (`mode=rw`; diesel opens with SQLITE_OPEN_URI). Hand-written: a path needs only the three
/// characters that end or escape a URI path escaped. A target that is already a URI or the
/// in-memory name is taken as given.
fn sqlite_open_uri(path: &str) -> String {
    if path.starts_with("file:") || path == ":memory:" {
        return path.to_owned();
    }
    let mut uri = String::with_capacity(path.len() + 16);
    uri.push_str("file:");
    for ch in path.chars() {
        match ch {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?mode=rw");
    uri
}

/// Opens connections of the backend the URL names, with SQLite's per-connection settings.
#[derive(Debug, Clone)]
pub struct Manager {
    database: DatabaseUrl,
    busy_timeout: Duration,
    /// Set while connecting fails: the cause is logged once per outage, not per request.
    down: Arc<AtomicBool>,
    /// Set while SQLite opens the file read-only; logged once too.
    read_only: Arc<AtomicBool>,
}

impl Manager {
    fn report_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            log::error!("{why}; calls answer SERVICE_UNAVAILABLE until it is back");
        }
    }

    fn report_up(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            log::info!("the database is reachable again");
        }
    }

    fn connect_sqlite(&self) -> Result<Pooled, r2d2::Error> {
        let path = &self.database.target;
        let mut conn = match diesel::SqliteConnection::establish(&sqlite_open_uri(path)) {
            Ok(conn) => conn,
            Err(e) => {
                if Path::new(path).exists() {
                    self.report_down(&format!("cannot open the database file {path}: {e}"));
                } else {
                    self.report_down(&format!("the database file {path} is missing"));
                }
                return Err(r2d2::Error::ConnectionError(e));
            }
        };
        let file = file_id(path);
        // Whether SQLite fell back to read-only (the file was not writable): a write that
        // matches no row asks for the write transaction and nothing else. BEGIN IMMEDIATE
        // cannot tell, SQLite makes it a read transaction on a read-only file. No busy wait:
        // a busy answer means another writer holds the lock, so the file is writable.
        conn.batch_execute("PRAGMA busy_timeout = 0")
            .map_err(r2d2::Error::QueryError)?;
        let read_only = match conn.batch_execute("DELETE FROM sessions WHERE 0") {
            Err(e) => is_read_only(&e),
            Ok(()) => false,
        };
        if read_only {
            if !self.read_only.swap(true, Ordering::SeqCst) {
                log::error!(
                    "the database file {path} is not writable; writes answer \
                     SERVICE_UNAVAILABLE until it is"
                );
            }
        } else if self.read_only.swap(false, Ordering::SeqCst) {
            log::info!("the database file {path} is writable again");
        }
        // WAL lets readers (validateSession) go on while one writer writes; NORMAL sync is
        // safe with WAL and spares an fsync per commit.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            self.busy_timeout.as_millis()
        ))
        .map_err(r2d2::Error::QueryError)?;
        self.report_up();
        Ok(Pooled {
            conn: DbConnection::Sqlite(conn),
            file,
            read_only,
        })
    }

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
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        match self.database.backend {
            Backend::Postgres => match diesel::PgConnection::establish(&self.postgres_url()) {
                Ok(conn) => {
                    self.report_up();
                    Ok(Pooled {
                        conn: DbConnection::Postgres(conn),
                        file: None,
                        read_only: false,
                    })
                }
                Err(e) => {
                    self.report_down(&format!("cannot connect to PostgreSQL: {e}"));
                    Err(r2d2::Error::ConnectionError(e))
                }
            },
            Backend::Sqlite => self.connect_sqlite(),
        }
    }

    /// On checkout, SQLite only (see [`Store::new`]): the path still names the file this
    /// connection opened. One `stat`, no query.
    fn is_valid(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        match self.database.backend {
            Backend::Sqlite
                if conn.file.is_none() || file_id(&self.database.target) != conn.file =>
            {
                Err(r2d2::Error::ConnectionError(
                    diesel::ConnectionError::BadConnection(
                        "the database file was removed or replaced".into(),
                    ),
                ))
            }
            // Writable again: a fresh connection will open it read-write.
            Backend::Sqlite if conn.read_only && writable_again(&self.database.target) => Err(
                r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                    "the database file is writable again".into(),
                )),
            ),
            Backend::Sqlite => Ok(()),
            Backend::Postgres => conn.conn.ping().map_err(r2d2::Error::QueryError),
        }
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.read_only || conn.conn.is_broken()
    }
}

/// The pool and which backend it talks to.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    /// For SQLite the file path; for PostgreSQL the URL (never logged: it may hold a password).
    target: String,
    /// Callers in `conn()` right now: r2d2 counts connections but not who waits for one.
    waiting: Arc<AtomicUsize>,
    /// For connections outside the pool (the revocation reader's).
    manager: Manager,
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
            down: Arc::new(AtomicBool::new(false)),
            read_only: Arc::new(AtomicBool::new(false)),
        };
        let own = manager.clone();
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(timeout)
            // On PostgreSQL a check-out test is a round trip per request; broken connections
            // are caught by `has_broken` after a failed query instead. On SQLite it is one
            // `stat` of the file, and a connection to a deleted file must not answer at all.
            .test_on_check_out(database.backend == Backend::Sqlite)
            // The manager logs a failing connect once per outage; r2d2 would log every retry.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(manager);
        Self {
            pool,
            backend: database.backend,
            waiting: Arc::default(),
            target: database.target.clone(),
            manager: own,
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
        ends::Feed::new(pooled.conn, &self.target, pooled.file).map_err(r2d2::Error::QueryError)
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
    pub fn migrate(&self) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
        if self.backend == Backend::Sqlite {
            prepare_sqlite_file(&self.target)?;
        }
        let mut conn = self.conn()?;
        let applied = match &mut **conn {
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
                || is_read_only(error)
                || message.contains("server closed the connection")
                || message.contains("terminating connection")
                || message.contains("connection")
        }
        _ => false,
    }
}

/// Failing to get a connection from the pool: the database is down or every connection is busy.
pub use diesel::r2d2::PoolError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_path_opens_as_a_read_write_uri_that_never_creates_the_file() {
        assert_eq!(
            sqlite_open_uri("/var/lib/s.db"),
            "file:/var/lib/s.db?mode=rw"
        );
        assert_eq!(sqlite_open_uri("s.db"), "file:s.db?mode=rw");
        assert_eq!(
            sqlite_open_uri("/d/a?b#c%d.db"),
            "file:/d/a%3fb%23c%25d.db?mode=rw"
        );
        assert_eq!(sqlite_open_uri("file:x.db?mode=ro"), "file:x.db?mode=ro");
    }
}
