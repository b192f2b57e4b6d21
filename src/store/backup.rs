//! `sessiond backup`: a consistent copy of a live SQLite database. `VACUUM INTO` reads one
//! snapshot (a read transaction, which WAL lets run beside the server's writers) and writes it
//! as a new, compact database file; it is written beside the destination under a temporary
//! name, owner-only, and renamed over it only when complete, so a failed or interrupted backup
//! never leaves a half file under the name asked for.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::*;

impl Store {
    /// Copies the SQLite database to `dest` (refused if it exists, unless `force`); returns
    /// the copy's size in bytes. For PostgreSQL, a message pointing to `pg_dump`.
    pub fn backup(&self, dest: &Path, force: bool) -> Result<u64, String> {
        if self.backend == Backend::Postgres {
            return Err(
                "sessiond backup copies an SQLite database; for PostgreSQL use \
                        pg_dump (e.g. pg_dump -Fc -f sessiond.dump DBNAME; restore with \
                        pg_restore --clean -d DBNAME sessiond.dump)"
                    .into(),
            );
        }
        let shown = dest.display();
        if dest.exists() && !force {
            return Err(format!("{shown} exists: add --force to overwrite it"));
        }
        if dest.is_dir() {
            return Err(format!("{shown} is a directory"));
        }
        if !Path::new(&self.target).exists() {
            return Err(format!("the database file {} does not exist", self.target));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| format!("{shown} names no file"))?
            .to_string_lossy();
        let temp = dest.with_file_name(format!(".{name}.{}.partial", std::process::id()));
        let made = self.vacuum_into(&temp);
        let renamed = made.and_then(|()| {
            std::fs::rename(&temp, dest)
                .map_err(|e| format!("cannot move the copy to {shown}: {e}"))
        });
        if let Err(e) = renamed {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        std::fs::metadata(dest)
            .map(|m| m.len())
            .map_err(|e| format!("cannot read back {shown}: {e}"))
    }

    /// `VACUUM INTO` an empty owner-only file made first (SQLite would make it with the
    /// umask's mode; it accepts an existing empty file).
    fn vacuum_into(&self, temp: &Path) -> Result<(), String> {
        let shown = temp.display();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp)
            .map_err(|e| format!("cannot create {shown}: {e}"))?;
        std::fs::set_permissions(temp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot make {shown} owner-only: {e}"))?;
        let pooled = self
            .manager
            .open()
            .map_err(|e| format!("cannot open the database {}: {e}", self.target))?;
        let DbConnection::Sqlite(mut conn) = pooled.conn else {
            return Err("not an SQLite database".into());
        };
        let path = temp
            .to_str()
            .ok_or_else(|| format!("{shown} is not valid UTF-8"))?;
        conn.batch_execute("PRAGMA busy_timeout = 10000")
            .map_err(|e| e.to_string())?;
        diesel::sql_query("VACUUM INTO ?")
            .bind::<diesel::sql_types::Text, _>(path)
            .execute(&mut conn)
            .map_err(|e| format!("cannot copy the database: {e}"))?;
        Ok(())
    }
}
