//! What the admin console (docs/behaviour.md §8) sees and does, on behalf of a signed-in console
//! user.
//!
//! Sign-in is the password check and lock-out of getSession, and a console sign-in is an
//! ordinary session of client type `console`: listed, expiring and ended like any other, and
//! checked on every page by the same `authenticate` as a SOAP call. Rights follow docs/behaviour.md
//! §2 and are checked here, not only by hiding buttons: an action without its right is refused with
//! `AccessDenied` and logged with the console user. Every action is logged with who did it.
//!
//! Reads are pages and bounded counts (see `store::console`), so the console stays as fast at a
//! million sessions as at ten.

use chrono::NaiveDateTime;

pub mod login_stats;

use super::logins::auth::Caller;
use super::{CallContext, Result, ServiceError, SessionService, SessionView};
use crate::domain::{
    redact, ClientType, Department, EndReason, Password, Right, SessionId, UserId,
};
use crate::store::console::{self as queries, Grouping};
use crate::store::sessions::State;
use crate::store::users::{self, UserRow};
use crate::telemetry::SECURITY;
use login_stats::MinuteCount;

pub use crate::store::console::{Direction, HistoryFilters, Key, Seek, SessionFilters, SortKey};

/// The client type of a console sign-in.
pub const CONSOLE_CLIENT_TYPE: &str = "console";
/// Counts stop here; past it the console says "more than 10,000".
pub const COUNT_BOUND: i64 = 10_000;
/// Distinct client types or locations the overview lists at most.
const GROUPS_SHOWN: i64 = 20;
/// Ended sessions on the overview and on a session's page.
const RECENT_SHOWN: i64 = 10;

/// A signed-in console user and what it may do (docs/behaviour.md §2).
#[derive(Debug, Clone)]
pub struct ConsoleUser {
    pub user_id: String,
    session_id: String,
    /// The CSRF token of this console session's forms.
    csrf: String,
    /// Update right, or admin without department: end sessions, remove expired ones.
    pub can_end: bool,
    /// Admin without department: manage users.
    pub can_manage_users: bool,
}

impl ConsoleUser {
    fn of(caller: &Caller, csrf: String) -> Self {
        Self {
            user_id: caller.user.user_id.clone(),
            session_id: caller.session.record.session_id.clone(),
            csrf,
            can_end: caller.can_update(),
            can_manage_users: caller.is_admin_without_department(),
        }
    }

    /// The console session's ID (the cookie's value); never log it whole.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The CSRF token its forms carry: an HMAC of the session ID under the instances' shared
    /// secret, so nothing a listing shows computes it.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// True when `given` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, given: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        given.is_some_and(|g| bool::from(self.csrf.as_bytes().ct_eq(g.as_bytes())))
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
    /// `local` or `directory` (whose password, rights and department are read-only here).
    pub source: String,
    pub dn: Option<String>,
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

    /// The change's name in a security event's `action` field.
    fn action(&self) -> &'static str {
        match self {
            UserChange::Disable => "disable",
            UserChange::Enable => "enable",
            UserChange::Unlock => "unlock",
            UserChange::Grant(_) => "grant",
            UserChange::Revoke(_) => "revoke",
            UserChange::SetPassword(_) => "password",
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

mod actions;

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
