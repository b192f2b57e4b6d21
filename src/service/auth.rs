//! Who is calling and what they may do: the caller's session and user, the rights of
//! docs/behaviour.md §2, password checks with the lock-out, and the one login gate.
//!
//! The gate is the only bound on password checks in flight and on how long a login waits for
//! its turn (`login_wait`). The HTTP layer takes a turn before it takes a blocking thread, so
//! the logins of a flood wait on no thread at all; the hashing threads behind the gate
//! (`passwords.rs`) then never see more than the gate lets through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{chrono_duration, Result, ServiceError, SessionService};
use crate::domain::{ClientType, Password, SessionId, UserId};
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, Reservation, UserRow};
use crate::store::DbConnection;
use crate::telemetry::{LoginResult, SECURITY};

/// Why a password check failed, as the log says it; the client is told only
/// AUTHENTICATION_FAILED or ACCOUNT_LOCKED.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    UnknownUser,
    WrongPassword,
    Disabled,
    Locked,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::WrongPassword => "wrong_password",
            Refusal::Disabled => "disabled",
            Refusal::Locked => "locked",
        }
    }
}

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
        ClientType::is_bw(&self.session.client_type)
    }
}

/// Bounds the password checks in flight and how long a login waits for its turn.
pub struct LoginGate {
    permits: Arc<Semaphore>,
    wait: Duration,
}

/// A login's turn at the password check; the next login may go when it is dropped.
pub struct LoginTurn(#[allow(dead_code)] OwnedSemaphorePermit);

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
            sessions::find_with_user(conn, id.as_str())?.ok_or(ServiceError::InvalidSession)?;
        let now = self.now();
        let alive = !user.disabled
            && self
                .cache
                .renew_if(&session.session_id, session.last_activity, now, |last| {
                    !self.is_expired(now, session.created_at, last)
                });
        if !alive {
            return Err(ServiceError::InvalidSession);
        }
        session.last_activity = now;
        Ok(Caller { session, user })
    }

    /// Checks a user's password with the lock-out rules; the user on success.
    ///
    /// Every name gets the same answers in the same order at the same cost. Each check is
    /// reserved before its hash (a user's in its row, shared by every instance; a name that is
    /// no user's in memory, see `lockout.rs`): with the threshold of checks in flight or failed,
    /// the next waits for their outcome (a success opens the count again, a failure starts the
    /// lock and it gets `AccountLocked`), so checks sent at once cannot overshoot it, and a
    /// lock refuses before any hash. An unknown name, a disabled user and a wrong password then
    /// cost the same Argon2 check and fail alike. A user ID or password that could belong to no
    /// one (`None`) costs a hash too. Every check is counted and a failure logged with its real
    /// cause; `host` is the caller's address when there is one.
    pub(crate) fn check_password(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        host: Option<&str>,
    ) -> Result<UserRow> {
        let refusal = match self.verify_password(user_id, password)? {
            Ok(user) => {
                self.telemetry.login(LoginResult::Ok);
                return Ok(user);
            }
            Err(refusal) => refusal,
        };
        log::warn!(
            target: SECURITY,
            event = "login_failed",
            user = user_id.map_or("-", |u| u.as_str()),
            reason = refusal.as_str(),
            host = host.unwrap_or("-");
            "login failed"
        );
        if let Refusal::Locked = refusal {
            self.telemetry.login(LoginResult::Locked);
            Err(ServiceError::AccountLocked)
        } else {
            self.telemetry.login(LoginResult::Failed);
            Err(ServiceError::AuthenticationFailed)
        }
    }

    /// The check itself: the user, or why not (the outer `Result` is for the store failing).
    fn verify_password(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
    ) -> Result<std::result::Result<UserRow, Refusal>> {
        let Some(name) = user_id else {
            // No user can have this name, so no user's answers can be told from its.
            self.passwords.verify(None, password)?;
            return Ok(Err(Refusal::UnknownUser));
        };
        let threshold = self.settings.lockout_threshold;
        let (user, count) = self.reserve_check(name, threshold)?;
        let cause = match &user {
            None => Refusal::UnknownUser,
            Some(u) if u.disabled => Refusal::Disabled,
            Some(_) => Refusal::WrongPassword,
        };
        let Some(count) = count else {
            return Ok(Err(Refusal::Locked));
        };
        // The connection is back in the pool while Argon2 runs.
        let matches = self
            .passwords
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)?;
        match user {
            Some(user) if matches && !user.disabled => {
                if threshold > 0 {
                    users::clear_failures(&mut *self.conn()?, &user.user_id)?;
                }
                Ok(Ok(user))
            }
            user => {
                if threshold > 0 && count >= threshold {
                    let until = self.now() + chrono_duration(self.settings.lockout_duration);
                    // Run for an unknown name too (it changes no row), to cost the same.
                    let stored =
                        users::record_failure(&mut *self.conn()?, name.as_str(), threshold, until)?;
                    let locked = match user {
                        Some(_) => stored,
                        None => self
                            .unknown_names
                            .record_failure(name.as_str(), threshold, until),
                    };
                    if locked {
                        log::warn!(
                            target: SECURITY,
                            event = "lockout",
                            user = name.as_str(),
                            until:% = until.format("%Y-%m-%dT%H:%M:%SZ");
                            "user locked out after {threshold} failed password checks"
                        );
                    }
                }
                Ok(Err(cause))
            }
        }
    }

    /// The user (if any) and the reserved check's count, `None` for a lock in force; waits, at
    /// most the login wait, while the count is full. With no lock-out, nothing is counted.
    fn reserve_check(
        &self,
        name: &UserId,
        threshold: u32,
    ) -> Result<(Option<UserRow>, Option<u32>)> {
        if threshold == 0 {
            return Ok((users::find(&mut *self.conn()?, name.as_str())?, Some(0)));
        }
        let deadline = Instant::now() + self.settings.login_wait;
        loop {
            let now = self.now();
            let full_until = now + chrono_duration(FULL_MARK);
            // A fresh connection each time: none is held while waiting.
            let stored = users::reserve_check(
                &mut *self.conn()?,
                name.as_str(),
                threshold,
                now,
                full_until,
            )?;
            let (user, reservation) = match stored {
                Some((user, r)) => (Some(user), r),
                None => (
                    None,
                    self.unknown_names
                        .reserve(name.as_str(), threshold, now, full_until),
                ),
            };
            match reservation {
                Reservation::Granted(n) => return Ok((user, Some(n))),
                Reservation::Locked => return Ok((user, None)),
                Reservation::Full if Instant::now() >= deadline => {
                    return Err(ServiceError::LoginsBusy)
                }
                Reservation::Full => std::thread::sleep(FULL_POLL),
            }
        }
    }
}

/// How long a full count holds further checks back when the checks that filled it never
/// finish (a crash mid-hash): far longer than a check takes, short enough not to lock anyone.
const FULL_MARK: Duration = Duration::from_secs(60);
/// How often a check waiting on a full count asks again.
const FULL_POLL: Duration = Duration::from_millis(10);

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
