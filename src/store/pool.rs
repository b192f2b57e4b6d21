//! Connections and the pool's judgement of them: how a connection of either backend is opened
//! (SQLite's per-connection settings, read-write without create), and when a pooled one is
//! dropped instead of reused (its file removed or replaced, opened read-only, broken).

use super::*;

/// A pooled connection and what the pool needs to judge it before it is used again. Derefs to
/// the [`DbConnection`] every query takes.
pub struct Pooled {
    pub(super) conn: DbConnection,
    /// SQLite: the file (device, inode) this connection opened, to notice that the path now
    /// names another file or none (deleted, moved away): such a connection would go on
    /// answering from, and writing to, a file nobody will ever open again.
    pub(super) file: Option<(u64, u64)>,
    /// SQLite opened the file read-only (it was not writable then) and stays so for the life of
    /// the connection: it serves one checkout and is dropped, so that writes resume as soon as
    /// the file is writable again.
    pub(super) read_only: bool,
    /// PostgreSQL: the socket libpq opened, for the watchdog (see [`super::watchdog`]).
    pub(super) fd: Option<std::os::fd::RawFd>,
    /// Set by the watchdog when it shut the socket: the connection is never used again.
    pub(super) killed: Arc<AtomicBool>,
    /// Its pool's link, and the link's epoch when it was opened: a connection older than a
    /// silence of the link or a failover is dropped.
    pub(super) link: Arc<watchdog::Link>,
    pub(super) link_epoch: u64,
}

impl Pooled {
    /// Puts the connection under the watchdog until the result is dropped (PostgreSQL).
    pub(super) fn watch(&self, limit: Duration) -> Option<watchdog::Armed> {
        self.fd
            .map(|fd| watchdog::arm(fd, limit, self.killed.clone(), self.link.clone()))
    }

    /// Shut by the watchdog, or older than a failover or a silence of its link: never used
    /// again.
    pub(super) fn condemned(&self) -> bool {
        self.killed.load(Ordering::SeqCst) || self.link_epoch < self.link.epoch()
    }
}

thread_local! {
    /// The link of the pool this thread last took a connection from: the one whose
    /// connection failed when a query's error is judged (see [`drop_all_connections`]).
    static LAST_LINK: std::cell::RefCell<std::sync::Weak<watchdog::Link>> =
        const { std::cell::RefCell::new(std::sync::Weak::new()) };
}

/// Remembers the pool this thread now uses a connection of.
pub(super) fn using(link: &Arc<watchdog::Link>) {
    LAST_LINK.with(|l| *l.borrow_mut() = Arc::downgrade(link));
}

/// Every connection of the pool this thread last used is dropped at its next checkout or
/// return, and its revocation reader reconnects: a query found the server read-only (SQLSTATE
/// 25006, a demoted or fenced primary) or the connection lost, and after a failover the pool
/// holds connections to a server that is gone or no longer takes writes, each of which would
/// fail one call before it is found out. Dropping a sound one costs a reconnect.
pub(super) fn drop_all_connections() {
    LAST_LINK.with(|l| {
        if let Some(link) = l.borrow().upgrade() {
            link.condemn();
        }
    });
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
pub(super) fn writable(path: &str) -> bool {
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
pub(super) fn writable_again(target: &str) -> bool {
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

pub(super) fn file_id(path: &str) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The SQLite URI for a file path that opens it read-write and never creates it
/// (`mode=rw`; diesel opens with SQLITE_OPEN_URI). Hand-written: a path needs only the three
/// characters that end or escape a URI path escaped. A target that is already a URI or the
/// in-memory name is taken as given.
pub(super) fn sqlite_open_uri(path: &str) -> String {
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
    pub(super) database: DatabaseUrl,
    pub(super) busy_timeout: Duration,
    /// Set while connecting fails: the cause is logged once per outage, not per request.
    pub(super) down: Arc<AtomicBool>,
    /// Set while SQLite opens the file read-only; logged once too.
    pub(super) read_only: Arc<AtomicBool>,
    /// PostgreSQL: whether the link went silent (see [`watchdog::Link`]).
    pub(super) link: Arc<watchdog::Link>,
    /// PostgreSQL: one connect at a time, so the watchdog can tell which socket is whose.
    pub(super) connecting: Arc<std::sync::Mutex<()>>,
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

    /// Opens a SQLite connection, logging nothing about a failure (see [`Manager::connect`]).
    fn open_sqlite(&self) -> Result<Pooled, r2d2::Error> {
        let path = &self.database.target;
        let mut conn = diesel::SqliteConnection::establish(&sqlite_open_uri(path))
            .map_err(r2d2::Error::ConnectionError)?;
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
        Ok(Pooled {
            conn: DbConnection::Sqlite(conn),
            file,
            read_only,
            fd: None,
            killed: Arc::default(),
            link: self.link.clone(),
            link_epoch: self.link.epoch(),
        })
    }

    /// A new connection of the URL's backend, logging nothing about a failure: the pool's
    /// [`Manager::connect`] logs it once per outage, the start ([`Store::migrate`]) says it in
    /// one line.
    pub(super) fn open(&self) -> Result<Pooled, r2d2::Error> {
        match self.database.backend {
            Backend::Postgres => {
                let link_epoch = self.link.epoch();
                let url = self.postgres_url();
                let (made, fd) =
                    watchdog::new_socket(&self.database.postgres_ports(), &self.connecting, || {
                        diesel::PgConnection::establish(&url)
                    });
                made.map(|conn| Pooled {
                    conn: DbConnection::Postgres(conn),
                    file: None,
                    read_only: false,
                    fd,
                    killed: Arc::default(),
                    link: self.link.clone(),
                    link_epoch,
                })
                .map_err(r2d2::Error::ConnectionError)
            }
            Backend::Sqlite => self.open_sqlite(),
        }
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

    /// A connection for the pool. A failure to connect is logged once per outage.
    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        match self.open() {
            Ok(conn) => {
                self.report_up();
                self.link.answered();
                Ok(conn)
            }
            Err(e) => {
                if let r2d2::Error::ConnectionError(_) = &e {
                    let path = &self.database.target;
                    self.report_down(&match self.database.backend {
                        Backend::Postgres => format!("cannot connect to PostgreSQL: {e}"),
                        Backend::Sqlite if Path::new(path).exists() => {
                            format!("cannot open the database file {path}: {e}")
                        }
                        Backend::Sqlite => format!("the database file {path} is missing"),
                    });
                }
                Err(e)
            }
        }
    }

    /// On checkout, with no query: on SQLite the path still names the file this connection
    /// opened (one `stat`); on PostgreSQL the connection was not shut by the watchdog and is
    /// not older than a failover (two atomic reads: cheap enough for every request, where a
    /// `SELECT 1` would be a round trip and pass on a read-only server anyway).
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
            Backend::Postgres if conn.condemned() => Err(r2d2::Error::ConnectionError(
                diesel::ConnectionError::BadConnection(
                    "the connection timed out or its server failed over".into(),
                ),
            )),
            Backend::Postgres => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.read_only || conn.condemned() || conn.conn.is_broken()
    }
}

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
