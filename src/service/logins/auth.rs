//! Who is calling and what they may do: the caller's session and user, the rights of
//! docs/behaviour.md §2, and the one login gate. Whether a password is right is `identity`'s
//! question.
//!
//! The gate is the only bound on password checks in flight and on how long a login waits for
//! its turn (`login_wait`). The HTTP layer takes a turn before it takes a blocking thread, so
//! the logins of a flood wait on no thread at all; the hashing threads behind the gate
//! (`identity/local.rs`) then never see more than the gate lets through.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::{ClientType, SessionId};
use crate::service::{Result, ServiceError, SessionService};
use crate::store::accounts;
use crate::store::sessions::SessionRow;
use crate::store::users::UserRow;
use crate::store::DbConnection;

/// The authenticated caller of an operation: its session (activity already renewed) and user.
pub(crate) struct Caller {
    pub(crate) session: SessionRow,
    pub(crate) user: UserRow,
}

impl Caller {
    pub(crate) fn is_admin_without_department(&self) -> bool {
        self.user.admin_right && self.user.department.is_none()
    }

    /// deleteSessionId, deleteExpiredSessionIds.
    pub(crate) fn can_update(&self) -> bool {
        self.user.update_right || self.is_admin_without_department()
    }

    /// Listings, and other users' sessions.
    pub(crate) fn can_view(&self) -> bool {
        self.user.view_right || self.user.update_right || self.user.admin_right
    }

    pub(crate) fn is_bw(&self) -> bool {
        ClientType::is_bw(&self.session.record.client_type)
    }
}

/// Bounds the password checks in flight and how long a login waits for its turn.
pub struct LoginGate {
    permits: Arc<Semaphore>,
    wait: Duration,
}

/// A login's turn at the password check; the next login may go when it is dropped.
pub struct LoginTurn(#[allow(dead_code)] OwnedSemaphorePermit);

thread_local! {
    /// The turn of the login running on this thread, while [`LoginTurn::hold_while`] runs it.
    static HELD: std::cell::RefCell<Option<LoginTurn>> = const { std::cell::RefCell::new(None) };
}

impl LoginTurn {
    /// Runs a login on this thread holding the turn, which the login may give back early
    /// ([`give_back_turn`]) once it knows it will not hash: a directory login waits on the
    /// directory, not on the hashing threads, and must not keep local logins out meanwhile.
    pub fn hold_while<R>(self, login: impl FnOnce() -> R) -> R {
        HELD.with(|held| *held.borrow_mut() = Some(self));
        let result = login();
        HELD.with(|held| held.borrow_mut().take());
        result
    }
}

/// Gives back the turn held on this thread, if any (see [`LoginTurn::hold_while`]).
pub(crate) fn give_back_turn() {
    HELD.with(|held| drop(held.borrow_mut().take()));
}

impl LoginGate {
    pub fn new(concurrent: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            wait,
        }
    }

    /// Waits, on no thread, at most the login wait for a turn; `LoginsBusy` past it.
    pub async fn turn(&self) -> Result<LoginTurn> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(LoginTurn(permit));
        }
        if self.wait.is_zero() {
            return Err(ServiceError::LoginsBusy);
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(LoginTurn(permit)),
            _ => Err(ServiceError::LoginsBusy),
        }
    }
}

impl SessionService {
    /// A turn at the password check, for getSession, getBWSession, startSession and confirmId;
    /// take it before taking a thread to run them on.
    pub async fn login_turn(&self) -> Result<LoginTurn> {
        self.logins.turn().await
    }

    /// The caller's session must be stored, unexpired and its user enabled; renews it. An ID
    /// that could name no session (`None`) is as invalid as one that is not stored.
    pub(crate) fn authenticate(
        &self,
        conn: &mut DbConnection,
        session_id: Option<&SessionId>,
    ) -> Result<Caller> {
        let id = session_id.ok_or(ServiceError::InvalidSession)?;
        let (mut session, user) =
            accounts::find_with_user(conn, id.as_str())?.ok_or(ServiceError::InvalidSession)?;
        let now = self.now();
        let alive = !user.disabled
            && self.cache.renew_if(
                &session.record.session_id,
                session.last_activity,
                now,
                |last| !self.is_expired(now, session.record.created_at, last),
            );
        if !alive {
            return Err(ServiceError::InvalidSession);
        }
        session.last_activity = now;
        Ok(Caller { session, user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn a_login_past_the_bound_with_no_wait_is_told_busy_at_once() {
        let gate = LoginGate::new(1, Duration::ZERO);
        let first = gate
            .turn()
            .now_or_never()
            .expect("a free turn is immediate");
        assert!(first.is_ok());
        let second = gate
            .turn()
            .now_or_never()
            .expect("no wait means no waiting");
        assert!(matches!(second, Err(ServiceError::LoginsBusy)));
        drop(first);
        let third = gate.turn().now_or_never().expect("the turn is free again");
        assert!(third.is_ok());
    }
}
