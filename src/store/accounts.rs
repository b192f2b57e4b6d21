//! Transactions that span users and sessions: a login storing its session behind its user's
//! row lock, disabling or deleting a user with its sessions, and reading a session with its
//! user. They live here so that `users` and `sessions` need not know each other: both are
//! leaves, and this file is the one place where their rules meet.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::history::HistoryRow;
use super::schema;
use super::sessions::{self, LatestActivity, SessionRow};
use super::users::{self, UserRow};
use super::{DbConnection, WriteTransaction};

/// A cap on one user's active sessions, applied by [`open`].
#[derive(Debug, Clone, Copy)]
pub struct Cap<'a> {
    pub max: u32,
    /// What counts as active.
    pub cutoffs: sessions::Cutoffs,
    /// With the cap reached: `None` refuses the new session; `Some((reason, at))` ends the
    /// least recently active ones (by stored last activity) to make room.
    pub evict: Option<(&'a str, NaiveDateTime)>,
}

/// What [`open`] came to.
#[derive(Debug)]
pub enum Opened {
    /// Stored; the sessions ended to make room for it, if any.
    Stored { evicted: Vec<HistoryRow> },
    /// The user is gone or disabled: nothing stored.
    NoEnabledUser,
    /// The cap is reached and says refuse: nothing stored.
    CapReached,
}

/// Stores a new session for an enabled user, within the user's cap, in one write transaction
/// that first locks the user's row ([`users::lock`]). Everything that must agree with
/// the user's `disabled` flag or session count takes that lock first, so concurrent logins of
/// one user, on any instance, are counted one after another, and a login racing a disable
/// either is ended by it or sees the user disabled.
pub fn open(
    conn: &mut DbConnection,
    row: &SessionRow,
    cap: Option<Cap<'_>>,
    latest: impl LatestActivity,
) -> QueryResult<Opened> {
    conn.write_transaction(|conn| {
        match users::lock(conn, &row.record.user_id)? {
            Some(user) if !user.disabled => {}
            _ => return Ok(Opened::NoEnabledUser),
        }
        let mut evicted = Vec::new();
        if let Some(cap) = cap {
            let active = sessions::active_of_user(conn, &row.record.user_id, cap.cutoffs)?;
            // Room for the new one: a cap lowered since may leave more than one to end.
            let over = (active.len() + 1).saturating_sub(cap.max as usize);
            if over > 0 {
                let Some((reason, at)) = cap.evict else {
                    return Ok(Opened::CapReached);
                };
                for id in active.iter().take(over) {
                    evicted.extend(sessions::end(conn, id, reason, at, &latest)?);
                }
            }
        }
        sessions::insert(conn, row)?;
        Ok(Opened::Stored { evicted })
    })
}

/// A session with its user, in one round trip: what every right check needs.
pub fn find_with_user(
    conn: &mut DbConnection,
    session_id: &str,
) -> QueryResult<Option<(SessionRow, UserRow)>> {
    schema::sessions::table
        .inner_join(schema::users::table)
        .inner_join(schema::session_activity::table)
        .filter(schema::sessions::session_id.eq(session_id))
        .select((SessionRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()
}

/// Disables a user and ends all of its sessions in one write transaction, the user's row first:
/// a login that locked the row before has committed its session, which is then ended here; one
/// that locks it after sees `disabled`. `None` when there is no such user; else how many ended.
pub fn disable(
    conn: &mut DbConnection,
    user_id: &str,
    reason: &str,
    ended_at: NaiveDateTime,
    latest: impl LatestActivity,
) -> QueryResult<Option<usize>> {
    conn.write_transaction(|conn| {
        if users::set_disabled(conn, user_id, true)? == 0 {
            return Ok(None);
        }
        sessions::end_all_of_user(conn, user_id, reason, ended_at, latest).map(Some)
    })
}

/// Deletes a user and, first, ends all of its sessions into the history, in one write
/// transaction behind the user's row lock (on PostgreSQL `FOR UPDATE`, which also holds back
/// the foreign-key checks of session inserts until the user is gone). `None` when there is no
/// such user; else how many sessions ended.
pub fn delete(
    conn: &mut DbConnection,
    user_id: &str,
    reason: &str,
    ended_at: NaiveDateTime,
    latest: impl LatestActivity,
) -> QueryResult<Option<usize>> {
    conn.write_transaction(|conn| {
        let query = schema::users::table
            .find(user_id)
            .select(schema::users::user_id);
        let found: Option<String> = match conn {
            DbConnection::Postgres(c) => query.for_update().first(c).optional()?,
            DbConnection::Sqlite(c) => query.first(c).optional()?,
        };
        if found.is_none() {
            return Ok(None);
        }
        let ended = sessions::end_all_of_user(conn, user_id, reason, ended_at, latest)?;
        diesel::delete(schema::users::table.find(user_id)).execute(conn)?;
        Ok(Some(ended))
    })
}

/// The directory users that have stored sessions: the ones the directory sync checks again.
pub fn directory_users_with_sessions(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    schema::users::table
        .filter(schema::users::source.eq(users::DIRECTORY))
        .filter(diesel::dsl::exists(
            schema::sessions::table.filter(schema::sessions::user_id.eq(schema::users::user_id)),
        ))
        .select(schema::users::user_id)
        .order(schema::users::user_id)
        .load(conn)
}
