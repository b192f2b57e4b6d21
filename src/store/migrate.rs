//! The schema: the embedded migrations of both backends, applied by `serve` and `migrate`, or
//! only to a fresh database by the other verbs; the first start's SQLite file.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use diesel::migration::MigrationSource;
use diesel::r2d2;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::{Backend, DbConnection, Store};

pub(super) const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub(super) const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

impl Store {
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
pub(super) fn versions<DB: diesel::backend::Backend>(
    source: &impl MigrationSource<DB>,
) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
