//! The `users` table: credentials, rights, department, lock-out state. Nothing here touches
//! sessions: what spans both is in `accounts`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::{DbConnection, WriteTransaction};

pub const LOCAL: &str = "local";
pub const DIRECTORY: &str = "directory";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub user_id: String,
    /// The Argon2id hash of a local user; none for a directory user.
    pub password_hash: Option<String>,
    pub department: Option<String>,
    pub disabled: bool,
    pub admin_right: bool,
    pub update_right: bool,
    pub view_right: bool,
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    /// `local` or `directory`: where the password is checked.
    pub source: String,
    /// A directory user's entry, as last found.
    pub dn: Option<String>,
}

pub fn find(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(user_id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)
        .map(drop)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

/// Every user's ID, in order (for comparing a new ID with all of them).
pub fn ids(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    users::table
        .select(users::user_id)
        .order(users::user_id)
        .load(conn)
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<UserRow>> {
    users::table
        .order(users::user_id)
        .select(UserRow::as_select())
        .load(conn)
}

/// The number of rows changed (0: no such user) for each setter below.
pub fn set_password(conn: &mut DbConnection, user_id: &str, hash: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

pub fn set_disabled(conn: &mut DbConnection, user_id: &str, disabled: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::disabled.eq(disabled))
        .execute(conn)
}

pub fn set_department(
    conn: &mut DbConnection,
    user_id: &str,
    department: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set(users::department.eq(department))
        .execute(conn)
}

pub fn set_rights(
    conn: &mut DbConnection,
    user_id: &str,
    admin: bool,
    update: bool,
    view: bool,
) -> QueryResult<usize> {
    diesel::update(users::table.find(user_id))
        .set((
            users::admin_right.eq(admin),
            users::update_right.eq(update),
            users::view_right.eq(view),
        ))
        .execute(conn)
}

/// A directory user as last read from its entry.
#[derive(Debug, Clone)]
pub struct DirectoryUser<'a> {
    pub user_id: &'a str,
    pub dn: &'a str,
    pub department: Option<&'a str>,
    pub admin_right: bool,
    pub update_right: bool,
    pub view_right: bool,
}

/// Stores a directory user, or refreshes the one stored: DN, department and rights as read;
/// `disabled` and the lock-out state are left as they are (a disable in sessiond wins). `None`
/// when the ID is a local user's, which is never touched.
pub fn store_directory_user(
    conn: &mut DbConnection,
    user: &DirectoryUser<'_>,
    now: NaiveDateTime,
) -> QueryResult<Option<UserRow>> {
    conn.write_transaction(|conn| {
        match lock(conn, user.user_id)? {
            Some(row) if row.source != DIRECTORY => return Ok(None),
            Some(_) => {
                diesel::update(users::table.find(user.user_id))
                    .set((
                        users::dn.eq(user.dn),
                        users::department.eq(user.department),
                        users::admin_right.eq(user.admin_right),
                        users::update_right.eq(user.update_right),
                        users::view_right.eq(user.view_right),
                    ))
                    .execute(conn)?;
            }
            None => {
                diesel::insert_into(users::table)
                    .values((
                        users::user_id.eq(user.user_id),
                        users::password_hash.eq(None::<String>),
                        users::source.eq(DIRECTORY),
                        users::dn.eq(user.dn),
                        users::department.eq(user.department),
                        users::admin_right.eq(user.admin_right),
                        users::update_right.eq(user.update_right),
                        users::view_right.eq(user.view_right),
                        users::created_at.eq(now),
                    ))
                    .execute(conn)?;
            }
        }
        lock(conn, user.user_id)
    })
}

/// Gives back a check reserved by [`reserve_check`] that never ran to an answer (the directory
/// did not answer): the count goes down by one, and a row it had filled opens again. A lock
/// started meanwhile (count back at 0) is left alone.
pub fn give_back_check(conn: &mut DbConnection, user_id: &str, threshold: u32) -> QueryResult<()> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    conn.write_transaction(|conn| {
        let Some(row) = lock(conn, user_id)? else {
            return Ok(());
        };
        if row.failed_logins == 0 {
            return Ok(());
        }
        let locked_until = if row.failed_logins >= threshold {
            None
        } else {
            row.locked_until
        };
        diesel::update(users::table.find(user_id))
            .set((
                users::failed_logins.eq(row.failed_logins - 1),
                users::locked_until.eq(locked_until),
            ))
            .execute(conn)
            .map(drop)
    })
}

/// What asking for a password check came to ([`reserve_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The check may run; the count of checks since the last success, this one included.
    Granted(u32),
    /// As many checks as the threshold are in flight or failed, none finished as a lock yet:
    /// ask again shortly (their outcome decides).
    Full,
    /// A lock is in force.
    Locked,
}

/// Reserves one password check before it runs, so that checks still in flight count toward the
/// lock-out on every instance sharing the database: at most `threshold` checks run between a
/// success and a lock, however many are sent at once. The user's row (locked, so that the
/// reservations of every instance are taken one after another) with the outcome; `None` when
/// there is no such user.
///
/// The row's states: open (`locked_until` empty or past; `failed_logins` checks since the last
/// success); full (the check that reached the threshold marked `locked_until` with
/// `full_until` and `failed_logins` stays at the threshold: others wait for it); locked
/// (`record_failure` turned full into a lock: `locked_until` in the future, the count back to
/// 0). A lock or mark that has run out opens the row again with this check as the first, so
/// checks that never finished (a crash mid-hash) hold the user up for `full_until` at most.
pub fn reserve_check(
    conn: &mut DbConnection,
    user_id: &str,
    threshold: u32,
    now: NaiveDateTime,
    full_until: NaiveDateTime,
) -> QueryResult<Option<(UserRow, Reservation)>> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    conn.write_transaction(|conn| {
        let Some(row) = lock(conn, user_id)? else {
            return Ok(None);
        };
        let reservation = match row.locked_until {
            Some(until) if until > now && row.failed_logins >= threshold => Reservation::Full,
            Some(until) if until > now => Reservation::Locked,
            _ => {
                let n = match row.locked_until {
                    Some(_) => 1,
                    None => row.failed_logins.saturating_add(1),
                };
                diesel::update(users::table.find(user_id))
                    .set((
                        users::failed_logins.eq(n),
                        users::locked_until.eq((n >= threshold).then_some(full_until)),
                    ))
                    .execute(conn)?;
                Reservation::Granted(u32::try_from(n).unwrap_or(0))
            }
        };
        Ok(Some((row, reservation)))
    })
}

/// A failed check: when the row is full (see [`reserve_check`]), the lock starts, until
/// `lock_until`. True when this call started it. A row a success has opened since stays open.
pub fn record_failure(
    conn: &mut DbConnection,
    user_id: &str,
    threshold: u32,
    lock_until: NaiveDateTime,
) -> QueryResult<bool> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::failed_logins.ge(threshold)),
    )
    .set((
        users::failed_logins.eq(0),
        users::locked_until.eq(Some(lock_until)),
    ))
    .execute(conn)
    .map(|n| n > 0)
}

/// Locks the user's row until the end of the write transaction it is called in, and reads it:
/// the one serializing step per user of everything that must agree with `disabled` and with
/// the user's session count (a login's insert, disabling). PostgreSQL: `FOR NO KEY UPDATE`,
/// which waits for and blocks the other writers of the row but not the foreign-key checks of
/// session inserts. SQLite: the write transaction (`BEGIN IMMEDIATE`) already holds the
/// database's one write lock.
pub fn lock(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<UserRow>> {
    let query = users::table.find(user_id);
    match conn {
        DbConnection::Postgres(c) => query
            .select(UserRow::as_select())
            .for_no_key_update()
            .first(c)
            .optional(),
        DbConnection::Sqlite(c) => query.select(UserRow::as_select()).first(c).optional(),
    }
}

/// A successful check: the count starts again, and the row is open (a check that started during
/// a lock never gets here, so a lock this lifts is one started by checks racing this one).
pub fn clear_failures(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(drop)
}
