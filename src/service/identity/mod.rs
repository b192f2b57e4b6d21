//! Who a user is and whether a password is right: the one place that decides, for getSession,
//! getBWSession, startSession, confirmId and the console's sign-in alike.
//!
//! Around every check, written once here: the lock-out reservation (before anyone is asked),
//! the equal-cost path for names that are no user's, the login counters and the security log
//! with the real cause. Inside it, the question itself goes to the user's [`Authority`]: the
//! Argon2id hash in the users table (`local.rs`), or a directory. Adding a way to check a
//! password is a variant of [`Authority`] and its module; nothing around it changes.
//!
//! Local users come first: a user ID in the users table with source `local` is checked
//! against its hash whatever the directory holds. Any other ID, when a directory is
//! configured, is the directory's to answer; a directory user is then stored (source
//! `directory`, its DN, rights and department as read, no hash), so sessions, lock-out and
//! the console work as for anyone. A directory that cannot answer makes the login
//! `Unavailable` and gives the reserved check back: it never counts toward the lock-out.
//!
//! The submodules: `local` (Argon2id on its own threads), `lockout` (counts for names that are
//! no user's), `directory` (LDAP and Active Directory), `sync` (the directory read again
//! outside logins: the periodic sync, `directory check`).

pub mod directory;
pub mod local;
pub(super) mod lockout;
mod sync;

pub use sync::DirectoryCheck;

use std::time::{Duration, Instant};

use super::{chrono_duration, Result, ServiceError, SessionService};
use crate::domain::{Password, Right, UserId};
use crate::store::users::{self, DirectoryUser, Reservation, UserRow};
use crate::telemetry::{LoginResult, SECURITY};
use directory::{Answer, DirectoryError, Entry};

/// Why a password check failed, as the log says it; the client is told only
/// AUTHENTICATION_FAILED or ACCOUNT_LOCKED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownUser,
    WrongPassword,
    Disabled,
    Locked,
    /// The directory holds several entries for the ID: none is taken.
    SeveralEntries,
    /// Disabled in the directory.
    DisabledThere,
    /// Locked in the directory.
    LockedThere,
    /// A directory user, but no directory is configured any more.
    NoDirectory,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownUser => "unknown_user",
            Refusal::WrongPassword => "wrong_password",
            Refusal::Disabled => "disabled",
            Refusal::Locked => "locked",
            Refusal::SeveralEntries => "several_entries",
            Refusal::DisabledThere => "disabled_in_directory",
            Refusal::LockedThere => "locked_in_directory",
            Refusal::NoDirectory => "no_directory",
        }
    }
}

/// Who answers whether a password is right for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authority {
    /// The Argon2id hash in the users table; a name that is no user's is checked against a
    /// dummy hash, to cost what a wrong password does.
    Local,
    /// A search and a bind in the directory.
    Directory,
}

impl Authority {
    /// The `source=` of the security log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Authority::Local => users::LOCAL,
            Authority::Directory => users::DIRECTORY,
        }
    }
}

/// What the authority said.
enum Verdict {
    /// The password is right for this user, who may log in.
    Accepted(UserRow),
    Refused(Refusal),
    /// The authority could not answer: nothing is counted.
    Unavailable(DirectoryError),
}

impl SessionService {
    /// Checks a user's password with the lock-out rules; the user on success.
    ///
    /// Every name gets the same answers in the same order at the same cost. Each check is
    /// reserved before it runs (a user's in its row, shared by every instance; a name that is
    /// no user's in memory, see `lockout.rs`): with the threshold of checks in flight or failed,
    /// the next waits for their outcome (a success opens the count again, a failure starts the
    /// lock and it gets `AccountLocked`), so checks sent at once cannot overshoot it, and a
    /// lock refuses before any authority is asked. An unknown name, a disabled user and a wrong
    /// password then cost the same check and fail alike. A user ID or password that could
    /// belong to no one (`None`) costs a hash too. Every check is counted and a failure logged
    /// with its real cause; `host` is the caller's address when there is one.
    pub(crate) fn check_password(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        host: Option<&str>,
    ) -> Result<UserRow> {
        let (authority, refusal) = match self.verify_password(user_id, password)? {
            (_, Ok(user)) => {
                self.telemetry.login(LoginResult::Ok);
                return Ok(user);
            }
            (authority, Err(refusal)) => (authority, refusal),
        };
        log::warn!(
            target: SECURITY,
            event = "login_failed",
            user = user_id.map_or("-", |u| u.as_str()),
            reason = refusal.as_str(),
            source = authority.as_str(),
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

    /// The check itself: who answered, and the user or why not (the outer `Result` is for the
    /// store failing).
    fn verify_password(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
    ) -> Result<(Authority, std::result::Result<UserRow, Refusal>)> {
        let Some(name) = user_id else {
            // No user can have this name, so no user's answers can be told from its.
            self.passwords.verify(None, password)?;
            return Ok((Authority::Local, Err(Refusal::UnknownUser)));
        };
        let threshold = self.settings.lockout_threshold;
        let (user, count) = self.reserve_check(name, threshold)?;
        let authority = self.authority_of(user.as_ref());
        let Some(count) = count else {
            // Before anyone is asked: a lock here never locks anyone out of the directory.
            return Ok((authority, Err(Refusal::Locked)));
        };
        // No connection is held while the authority answers.
        let verdict = self.ask(authority, name, user.as_ref(), password)?;
        match verdict {
            Verdict::Unavailable(why) => {
                if threshold > 0 {
                    self.give_back_check(name, user.is_some(), threshold)?;
                }
                log::error!(
                    target: SECURITY,
                    event = "login_failed",
                    user = name.as_str(),
                    reason = "directory_unreachable",
                    source = authority.as_str();
                    "login not checked: {why}"
                );
                Err(ServiceError::Unavailable)
            }
            Verdict::Accepted(user) => {
                if threshold > 0 {
                    users::clear_failures(&mut *self.conn()?, &user.user_id)?;
                }
                Ok((authority, Ok(user)))
            }
            Verdict::Refused(cause) => {
                if threshold > 0 && count >= threshold {
                    self.start_lock(name, user.is_some(), threshold)?;
                }
                Ok((authority, Err(cause)))
            }
        }
    }

    /// Local users first; any other name is the directory's when there is one.
    fn authority_of(&self, user: Option<&UserRow>) -> Authority {
        match user {
            Some(u) if u.source == users::LOCAL => Authority::Local,
            Some(_) => Authority::Directory,
            None if self.directory.is_some() => Authority::Directory,
            None => Authority::Local,
        }
    }

    /// Asks `authority` whether `password` is the password of `name`, stored as `user`
    /// (`None`: a name that is no stored user's).
    fn ask(
        &self,
        authority: Authority,
        name: &UserId,
        user: Option<&UserRow>,
        password: Option<&Password>,
    ) -> Result<Verdict> {
        match authority {
            Authority::Directory => self.ask_directory(name, user, password),
            Authority::Local => {
                let hash = user.and_then(|u| u.password_hash.as_deref());
                let matches = self.passwords.verify(hash, password)?;
                Ok(match user {
                    None => Verdict::Refused(Refusal::UnknownUser),
                    Some(u) if u.disabled => Verdict::Refused(Refusal::Disabled),
                    Some(u) if matches => Verdict::Accepted(u.clone()),
                    Some(_) => Verdict::Refused(Refusal::WrongPassword),
                })
            }
        }
    }

    /// The directory's answer, and the stored directory user refreshed from the entry read.
    fn ask_directory(
        &self,
        name: &UserId,
        user: Option<&UserRow>,
        password: Option<&Password>,
    ) -> Result<Verdict> {
        let Some(directory) = &self.directory else {
            self.passwords.verify(None, password)?;
            return Ok(Verdict::Refused(Refusal::NoDirectory));
        };
        // An empty password would be an anonymous bind, which succeeds: refused unasked.
        let Some(password) = password.filter(|p| !p.expose().is_empty()) else {
            self.passwords.verify(None, password)?;
            return Ok(Verdict::Refused(Refusal::WrongPassword));
        };
        // The directory is asked without the login turn (which bounds the hashing threads):
        // the next login may have it while this one waits.
        crate::service::logins::auth::give_back_turn();
        let answer = match directory.check(name.as_str(), password.expose()) {
            Ok(answer) => answer,
            Err(e) => return Ok(Verdict::Unavailable(e)),
        };
        let refusal = match answer {
            Answer::NoEntry => Refusal::UnknownUser,
            Answer::Several(_) => Refusal::SeveralEntries,
            Answer::DisabledThere(_) => Refusal::DisabledThere,
            Answer::LockedThere(_) => Refusal::LockedThere,
            Answer::WrongPassword(_) if user.is_some_and(|u| u.disabled) => Refusal::Disabled,
            Answer::WrongPassword(_) => Refusal::WrongPassword,
            Answer::Accepted(entry) => match self.store_directory_user(name, &entry)? {
                Some(row) if !row.disabled => return Ok(Verdict::Accepted(row)),
                Some(_) => Refusal::Disabled,
                // A local user of that name was added meanwhile: it wins.
                None => Refusal::UnknownUser,
            },
        };
        // A refusal costs what a local one does (an Argon2 check), so the time of a failed
        // login does not tell a local user's name from a name the directory does not know.
        self.passwords.verify(None, Some(password))?;
        Ok(Verdict::Refused(refusal))
    }

    /// Stores (or refreshes) a directory user from its entry: DN, department and rights as
    /// read; the disabled flag and lock-out state stay sessiond's. `None` when the name is a
    /// local user's.
    pub(crate) fn store_directory_user(
        &self,
        name: &UserId,
        entry: &Entry,
    ) -> Result<Option<UserRow>> {
        let held = |r: Right| entry.rights.contains(&r);
        let user = DirectoryUser {
            user_id: name.as_str(),
            dn: &entry.dn,
            department: entry.department.as_deref(),
            admin_right: held(Right::Administrator),
            update_right: held(Right::UpdateSession),
            view_right: held(Right::ViewSession),
        };
        Ok(users::store_directory_user(
            &mut *self.conn()?,
            &user,
            self.now(),
        )?)
    }

    /// The directory did not answer: the reserved check is given back, as if never made.
    fn give_back_check(&self, name: &UserId, stored: bool, threshold: u32) -> Result<()> {
        if stored {
            users::give_back_check(&mut *self.conn()?, name.as_str(), threshold)?;
        } else {
            self.unknown_names.give_back(name.as_str(), threshold);
        }
        Ok(())
    }

    /// The check that filled the count failed: the lock starts, logged once.
    fn start_lock(&self, name: &UserId, stored: bool, threshold: u32) -> Result<()> {
        let until = self.now() + chrono_duration(self.settings.lockout_duration);
        // Run for an unknown name too (it changes no row), to cost the same.
        let in_row = users::record_failure(&mut *self.conn()?, name.as_str(), threshold, until)?;
        let locked = if stored {
            in_row
        } else {
            self.unknown_names
                .record_failure(name.as_str(), threshold, until)
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
        Ok(())
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
/// finish (a crash mid-check): far longer than a check takes, short enough not to lock anyone.
const FULL_MARK: Duration = Duration::from_secs(60);
/// How often a check waiting on a full count asks again.
const FULL_POLL: Duration = Duration::from_millis(10);
