//! The `users` table: credentials, rights, department, lock-out state.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::users;
use super::{on_backend, DbConnection, WriteTransaction};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub user_id: String,
    pub password_hash: String,
    pub department: Option<String>,
    pub disabled: bool,
    pub admin_right: bool,
    pub update_right: bool,
    pub view_right: bool,
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
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

/// Counts one failed password check and locks the user at `threshold` failures, in one
/// transaction so that instances sharing the database share the count. True when this failure
/// locked the user.
pub fn record_failure(
    conn: &mut DbConnection,
    user_id: &str,
    threshold: u32,
    lock_until: NaiveDateTime,
) -> QueryResult<bool> {
    let threshold = i32::try_from(threshold).unwrap_or(i32::MAX);
    on_backend!(conn, |c| c.write_transaction(|c| {
        diesel::update(users::table.find(user_id))
            .set(users::failed_logins.eq(users::failed_logins + 1))
            .execute(c)?;
        let mut locked = 0;
        if threshold > 0 {
            locked = diesel::update(
                users::table
                    .find(user_id)
                    .filter(users::failed_logins.ge(threshold)),
            )
            .set((
                users::failed_logins.eq(0),
                users::locked_until.eq(Some(lock_until)),
            ))
            .execute(c)?;
        }
        Ok(locked > 0)
    }))
}

/// A successful check: forget earlier failures and any lock that has run out.
pub fn clear_failures(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(drop)
}
