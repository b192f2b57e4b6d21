//! What the admin console (SPEC 8) sees and does, on behalf of a signed-in console user.
//!
//! Sign-in is the password check and lock-out of getSession, and a console sign-in is an
//! ordinary session of client type `console`: listed, expiring and ended like any other, and
//! checked on every page by the same `authenticate` as a SOAP call. Rights follow SPEC 2 and
//! are checked here, not only by hiding buttons: an action without its right is refused with
//! `AccessDenied` and logged with the console user. Every action is logged with who did it.
//!
//! Reads are pages and bounded counts (see `store::console`), so the console stays as fast at a
//! million sessions as at ten.

use chrono::NaiveDateTime;

use super::auth::Caller;
use super::login_stats::MinuteCount;
use super::{CallContext, Result, ServiceError, SessionService, SessionView};
use crate::domain::{redact, ClientType, EndReason, Password, Right, SessionId, UserId};
use crate::store::console::{self as queries, Grouping};
use crate::store::sessions::{self, State};
use crate::store::users::{self, UserRow};

pub use crate::store::console::{Direction, HistoryFilters, Key, Seek, SessionFilters, SortKey};

/// The client type of a console sign-in.
pub const CONSOLE_CLIENT_TYPE: &str = "console";
/// Counts stop here; past it the console says "more than 10,000".
pub const COUNT_BOUND: i64 = 10_000;
/// Distinct client types or locations the overview lists at most.
const GROUPS_SHOWN: i64 = 20;
/// Ended sessions on the overview and on a session's page.
const RECENT_SHOWN: i64 = 10;

/// A signed-in console user and what it may do (SPEC 2).
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub user_id: String,
    session_id: String,
    /// Update right, or admin without department: end sessions, remove expired ones.
    pub can_end: bool,
    /// Admin without department: manage users.
    pub can_manage_users: bool,
}

impl ConsoleUser {
    fn of(caller: &Caller) -> Self {
        Self {
            user_id: caller.user.user_id.clone(),
            session_id: caller.session.session_id.clone(),
            can_end: caller.can_update(),
            can_manage_users: caller.is_admin_without_department(),
        }
    }

    /// The console session's ID (the cookie's value); never log it whole.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }
}

/// A count that stopped at [`COUNT_BOUND`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(i64),
    MoreThan(i64),
}

impl Count {
    fn of(counted: i64) -> Self {
        if counted > COUNT_BOUND {
            Count::MoreThan(COUNT_BOUND)
        } else {
            Count::Exact(counted)
        }
    }
}

pub struct Overview {
    pub active: Count,
    pub expired: Count,
    /// Active sessions by client type and by location.
    pub by_client_type: Vec<(String, Count)>,
    pub by_location: Vec<(String, Count)>,
    /// This instance's logins over the last hour, a minute each, oldest first.
    pub logins: Vec<MinuteCount>,
    pub recently_ended: Vec<SessionView>,
}

/// Which sessions the sessions page shows, and in which order.
#[derive(Debug, Clone)]
pub struct SessionsQuery {
    /// `None`: active and expired.
    pub expired: Option<bool>,
    pub filters: SessionFilters,
    pub sort: SortKey,
    pub direction: Direction,
}

impl SessionsQuery {
    /// The order a page can be read in from an index: by creation time when filtered by
    /// client type or location (the filter's index goes on in creation order), by last
    /// activity for expired sessions (the index that finds them), else as asked. Any other
    /// combination would sort or walk a million rows.
    pub fn effective_sort(&self) -> SortKey {
        let f = &self.filters;
        if f.client_type.is_some() || f.location.is_some() {
            SortKey::Created
        } else if self.expired == Some(true) {
            SortKey::LastActivity
        } else {
            self.sort
        }
    }
}

/// One page of a list, with the keys to ask for its neighbours.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Key>,
    pub previous: Option<Key>,
}

pub struct SessionsPage {
    pub page: Page<SessionView>,
    pub total: Count,
    /// The order the page is really in (see [`SessionsQuery::effective_sort`]).
    pub sort: SortKey,
}

/// A session's page: the session (stored or ended) and its user's recently ended sessions.
pub struct SessionDetail {
    pub session: SessionView,
    pub user_history: Vec<SessionView>,
}

/// A user as the users page shows it.
#[derive(Debug, Clone)]
pub struct UserState {
    pub user_id: String,
    pub department: Option<String>,
    pub disabled: bool,
    pub locked_until: Option<NaiveDateTime>,
    pub failed_logins: i32,
    pub rights: Vec<Right>,
}

/// A change the users page makes.
#[derive(Debug, Clone)]
pub enum UserChange {
    Disable,
    Enable,
    Unlock,
    Grant(Right),
    Revoke(Right),
    SetPassword(Password),
}

impl UserChange {
    fn describe(&self) -> String {
        match self {
            UserChange::Disable => "disabled".into(),
            UserChange::Enable => "enabled".into(),
            UserChange::Unlock => "unlocked".into(),
            UserChange::Grant(r) => format!("granted {r} to"),
            UserChange::Revoke(r) => format!("revoked {r} from"),
            UserChange::SetPassword(_) => "set the password of".into(),
        }
    }
}

fn has_any_right(user: &UserRow) -> bool {
    user.admin_right || user.update_right || user.view_right
}

/// Builds a page from `limit + 1` rows read in the direction `seek` went: the extra row only
/// says that there is more that way.
fn paged<R, T>(
    mut rows: Vec<R>,
    seek: &Seek,
    limit: i64,
    key: impl Fn(&R) -> Key,
    view: impl Fn(R) -> T,
) -> Page<T> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    let (next, previous) = match seek {
        Seek::Before(_) => {
            if more {
                rows.drain(..rows.len() - limit);
            }
            (
                rows.last().map(&key),
                rows.first().filter(|_| more).map(&key),
            )
        }
        Seek::First | Seek::After(_) => {
            rows.truncate(limit);
            let next = rows.last().filter(|_| more).map(&key);
            let previous = match seek {
                Seek::After(_) => rows.first().map(&key),
                _ => None,
            };
            (next, previous)
        }
    };
    Page {
        rows: rows.into_iter().map(view).collect(),
        next,
        previous,
    }
}

impl SessionService {
    /// Checks the password as getSession does (a failure counts toward the lock-out) and opens
    /// a `console` session for a user holding any right. A user without one gets the same
    /// `AuthenticationFailed` as a wrong password.
    pub fn console_sign_in(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        ctx: &CallContext,
    ) -> Result<(ConsoleUser, SessionView)> {
        let checked = self.check_password(user_id, password, ctx.host.as_deref());
        self.login_counts.record(self.now(), checked.is_ok());
        let user = checked?;
        if !has_any_right(&user) {
            log::warn!(
                "console sign-in refused for {}: the user holds no right",
                user.user_id
            );
            return Err(ServiceError::AuthenticationFailed);
        }
        let client_type = ClientType::parse(CONSOLE_CLIENT_TYPE).map_err(ServiceError::internal)?;
        let (id, row) = self.new_session(&user.user_id, client_type, None, ctx, None)?;
        sessions::insert(&mut *self.conn()?, &row)?;
        log::info!(
            "console: {} signed in, session {id} from {}",
            user.user_id,
            ctx.host.as_deref().unwrap_or("-")
        );
        let caller = Caller { session: row, user };
        let current = caller.session.session_id.clone();
        let me = ConsoleUser::of(&caller);
        Ok((me, self.view(caller.session, Some(&current))))
    }

    /// The console user of a cookie's session: validated and renewed like a SOAP caller, and
    /// only for a `console` session whose user still holds a right.
    pub fn console_user(&self, session_id: Option<&SessionId>) -> Result<ConsoleUser> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        if caller.session.client_type != CONSOLE_CLIENT_TYPE || !has_any_right(&caller.user) {
            return Err(ServiceError::InvalidSession);
        }
        Ok(ConsoleUser::of(&caller))
    }

    /// Ends the console session (reason `closed`).
    pub fn console_sign_out(&self, me: &ConsoleUser) -> Result<()> {
        let id = SessionId::parse(&me.session_id).map_err(|_| ServiceError::InvalidSession)?;
        self.end(&mut *self.conn()?, &id, EndReason::Closed)?;
        log::info!("console: {} signed out", me.user_id);
        Ok(())
    }

    fn refuse(&self, me: &ConsoleUser, what: &str) -> ServiceError {
        log::warn!(
            "console: {} (session {}) was refused {what}: lacks the right",
            me.user_id,
            redact(&me.session_id)
        );
        ServiceError::AccessDenied
    }

    fn state_of(expired: Option<bool>) -> State {
        match expired {
            None => State::Any,
            Some(false) => State::Active,
            Some(true) => State::Expired,
        }
    }

    fn count(
        &self,
        conn: &mut crate::store::DbConnection,
        query: &queries::SessionQuery,
    ) -> Result<Count> {
        Ok(Count::of(queries::count_sessions(
            conn,
            query,
            COUNT_BOUND + 1,
        )?))
    }

    pub fn console_overview(&self, _me: &ConsoleUser) -> Result<Overview> {
        let mut conn = self.conn()?;
        self.store_pending_on(&mut conn)?;
        let now = self.now();
        let query = |state, filters| queries::SessionQuery {
            state,
            cutoffs: self.cutoffs(now),
            filters,
            sort: SortKey::Created,
            direction: Direction::Ascending,
            few: false,
        };
        let active = self.count(&mut conn, &query(State::Active, SessionFilters::default()))?;
        let expired = self.count(&mut conn, &query(State::Expired, SessionFilters::default()))?;
        let mut by_client_type = Vec::new();
        for kind in queries::distinct_values(&mut conn, Grouping::ClientType, GROUPS_SHOWN)? {
            let filters = SessionFilters {
                client_type: Some(kind.clone()),
                ..SessionFilters::default()
            };
            let n = self.count(&mut conn, &query(State::Active, filters))?;
            by_client_type.push((kind, n));
        }
        let mut by_location = Vec::new();
        for place in queries::distinct_values(&mut conn, Grouping::Location, GROUPS_SHOWN)? {
            let filters = SessionFilters {
                location: Some(place.clone()),
                ..SessionFilters::default()
            };
            let n = self.count(&mut conn, &query(State::Active, filters))?;
            by_location.push((place, n));
        }
        let recently_ended = queries::history_page(
            &mut conn,
            &HistoryFilters::default(),
            &Seek::First,
            RECENT_SHOWN,
        )?
        .into_iter()
        .map(|r| self.view_ended(r, None))
        .collect();
        Ok(Overview {
            active,
            expired,
            by_client_type,
            by_location,
            logins: self.login_counts.last_hour(now),
            recently_ended,
        })
    }

    /// A page of stored sessions and their (bounded) total.
    pub fn console_sessions(
        &self,
        me: &ConsoleUser,
        query: &SessionsQuery,
        seek: &Seek,
        limit: i64,
    ) -> Result<SessionsPage> {
        let mut conn = self.conn()?;
        // Pages judge expiry, and may sort by last activity, in the database.
        self.store_pending_on(&mut conn)?;
        let sort = query.effective_sort();
        let mut q = queries::SessionQuery {
            state: Self::state_of(query.expired),
            cutoffs: self.cutoffs(self.now()),
            filters: query.filters.clone(),
            sort,
            direction: query.direction,
            few: false,
        };
        let total = self.count(&mut conn, &q)?;
        q.few = matches!(total, Count::Exact(_));
        let mut rows = queries::sessions_page(&mut conn, &q, seek, limit + 1)?;
        let mut seek = seek.clone();
        if rows.is_empty() && matches!(seek, Seek::Before(_)) {
            // Everything before the key has gone since: show the first page instead.
            seek = Seek::First;
            rows = queries::sessions_page(&mut conn, &q, &seek, limit + 1)?;
        }
        let page = paged(
            rows,
            &seek,
            limit,
            |r| {
                let at = match sort {
                    SortKey::Created => r.created_at,
                    SortKey::LastActivity => r.last_activity,
                };
                (at, r.session_id.clone())
            },
            |r| self.view(r, Some(&me.session_id)),
        );
        Ok(SessionsPage { page, total, sort })
    }

    /// A session, stored or ended, and its user's most recently ended sessions.
    pub fn console_session(
        &self,
        me: &ConsoleUser,
        session_id: Option<&SessionId>,
    ) -> Result<SessionDetail> {
        let mut conn = self.conn()?;
        let session = self.find_any(&mut conn, session_id, &me.session_id)?;
        let filters = HistoryFilters {
            user_id: Some(session.user_id.clone()),
            end_reason: None,
        };
        let user_history = queries::history_page(&mut conn, &filters, &Seek::First, RECENT_SHOWN)?
            .into_iter()
            .map(|r| self.view_ended(r, Some(&me.session_id)))
            .collect();
        Ok(SessionDetail {
            session,
            user_history,
        })
    }

    /// A page of ended sessions, newest first.
    pub fn console_history(
        &self,
        me: &ConsoleUser,
        filters: &HistoryFilters,
        seek: &Seek,
        limit: i64,
    ) -> Result<Page<SessionView>> {
        let mut conn = self.conn()?;
        let mut seek = seek.clone();
        let mut rows = queries::history_page(&mut conn, filters, &seek, limit + 1)?;
        if rows.is_empty() && matches!(seek, Seek::Before(_)) {
            seek = Seek::First;
            rows = queries::history_page(&mut conn, filters, &seek, limit + 1)?;
        }
        Ok(paged(
            rows,
            &seek,
            limit,
            |r| (r.ended_at, r.session_id.clone()),
            |r| self.view_ended(r, Some(&me.session_id)),
        ))
    }

    /// Ends one session (reason `deleted`): update right, or admin without department.
    pub fn console_end_session(
        &self,
        me: &ConsoleUser,
        session_id: Option<&SessionId>,
    ) -> Result<()> {
        if !me.can_end {
            return Err(self.refuse(me, "ending a session"));
        }
        let id = session_id.ok_or(ServiceError::SessionNotFound)?;
        if !self.end(&mut *self.conn()?, id, EndReason::Deleted)? {
            return Err(ServiceError::SessionNotFound);
        }
        log::info!("console: {} ended session {}", me.user_id, id);
        Ok(())
    }

    /// Ends every session of a user (reason `deleted`); returns how many.
    pub fn console_end_user_sessions(&self, me: &ConsoleUser, user_id: &UserId) -> Result<usize> {
        if !me.can_end {
            return Err(self.refuse(me, "ending a user's sessions"));
        }
        let ids = self.end_sessions_of_user(user_id, EndReason::Deleted)?;
        log::info!(
            "console: {} ended all {ids} sessions of {user_id} (deleted)",
            me.user_id
        );
        Ok(ids)
    }

    /// Removes every expired session; returns how many.
    pub fn console_remove_expired(&self, me: &ConsoleUser) -> Result<usize> {
        if !me.can_end {
            return Err(self.refuse(me, "removing expired sessions"));
        }
        let n = self.remove_expired()?;
        log::info!("console: {} removed {n} expired sessions", me.user_id);
        Ok(n)
    }

    /// Every user: there are few, unlike sessions.
    pub fn console_users(&self, me: &ConsoleUser) -> Result<Vec<UserState>> {
        if !me.can_manage_users {
            return Err(self.refuse(me, "the users page"));
        }
        let now = self.now();
        Ok(users::list(&mut *self.conn()?)?
            .into_iter()
            .map(|u| UserState {
                rights: Right::ALL
                    .into_iter()
                    .filter(|r| match r {
                        Right::Administrator => u.admin_right,
                        Right::UpdateSession => u.update_right,
                        Right::ViewSession => u.view_right,
                    })
                    .collect(),
                locked_until: u.locked_until.filter(|t| *t > now),
                failed_logins: u.failed_logins,
                user_id: u.user_id,
                department: u.department,
                disabled: u.disabled,
            })
            .collect())
    }

    /// One change to a user: admin without department only. The CLI's own verbs do the work,
    /// so the console and `sessiond user …` apply the same rules.
    pub fn console_change_user(
        &self,
        me: &ConsoleUser,
        user_id: &UserId,
        change: &UserChange,
    ) -> Result<()> {
        if !me.can_manage_users {
            return Err(self.refuse(me, "changing a user"));
        }
        match change {
            UserChange::Disable => {
                self.disable_user(user_id)?;
            }
            UserChange::Enable => self.enable_user(user_id)?,
            UserChange::Unlock => {
                let mut conn = self.conn()?;
                if users::find(&mut conn, user_id.as_str())?.is_none() {
                    return Err(ServiceError::invalid(format!("no user '{user_id}'")));
                }
                users::clear_failures(&mut conn, user_id.as_str())?;
            }
            UserChange::Grant(r) => self.set_right(user_id, *r, true)?,
            UserChange::Revoke(r) => self.set_right(user_id, *r, false)?,
            UserChange::SetPassword(p) => {
                // SPEC 7: a new password ends the user's sessions (reason password-changed).
                self.set_password(user_id, p, false)?;
            }
        }
        log::info!("console: {} {} {user_id}", me.user_id, change.describe());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn key(n: i64) -> Key {
        (
            DateTime::from_timestamp(n, 0).unwrap().naive_utc(),
            format!("s{n}"),
        )
    }

    #[test]
    fn a_first_page_has_a_next_key_only_when_an_extra_row_came_back() {
        let full = paged((0..4).collect(), &Seek::First, 3, |n| key(*n), |n| n);
        assert_eq!(full.rows, vec![0, 1, 2]);
        assert_eq!(full.next, Some(key(2)));
        assert_eq!(full.previous, None);
        let last = paged((0..3).collect(), &Seek::First, 3, |n| key(*n), |n| n);
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_previous_page_drops_the_extra_row_at_its_start() {
        // Read backwards and turned round: the first row is the extra one.
        let page = paged(
            (0..4).collect(),
            &Seek::Before(key(9)),
            3,
            |n| key(*n),
            |n| n,
        );
        assert_eq!(page.rows, vec![1, 2, 3]);
        assert_eq!(page.previous, Some(key(1)));
        assert_eq!(page.next, Some(key(3)));
        let start = paged(
            (0..2).collect(),
            &Seek::Before(key(9)),
            3,
            |n| key(*n),
            |n| n,
        );
        assert_eq!(start.previous, None);
    }
}
