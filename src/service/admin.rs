//! What the administrator's command line does, on the database directly: users and their
//! rights, and the session verbs. The same rules as the SOAP operations (hashing, ending a
//! session into the history), so a script and a client see one service.

use base64::Engine;

use super::{Result, ServiceError, SessionService, SessionView};
use crate::domain::{lookalike, Department, EndReason, Password, Right, SessionId, UserId};
use crate::store::accounts;
use crate::store::users::{self, UserRow};
use crate::telemetry::SECURITY;

/// The user the first start creates.
const ADMIN: &str = "admin";
/// Length of its random password, in URL-safe base64 characters (6 bits each).
const ADMIN_PASSWORD_CHARS: usize = 24;

/// The account the first start creates, and its one-time password.
pub struct NewAdmin {
    pub user_id: String,
    pub password: Password,
}

/// A user as `user list` shows it.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub user_id: String,
    pub department: Option<String>,
    pub disabled: bool,
    pub locked: bool,
    pub rights: Vec<Right>,
    /// `local` or `directory`.
    pub source: String,
    /// A directory user's entry.
    pub dn: Option<String>,
}

pub(in crate::service) fn no_user(user_id: &UserId) -> ServiceError {
    ServiceError::InvalidRequest(format!("no user '{user_id}'"))
}

fn rights_of(u: &UserRow) -> Vec<Right> {
    Right::ALL
        .into_iter()
        .filter(|r| match r {
            Right::Administrator => u.admin_right,
            Right::UpdateSession => u.update_right,
            Right::ViewSession => u.view_right,
        })
        .collect()
}

impl SessionService {
    /// A directory user's password, rights and department are the directory's: changing them
    /// here is refused with a message saying so. An unknown user is `no_user`.
    fn refuse_if_directory_owned(&self, user_id: &UserId, what: &str) -> Result<()> {
        match users::find(&mut *self.conn()?, user_id.as_str())? {
            None => Err(no_user(user_id)),
            Some(u) if u.source == users::DIRECTORY => Err(ServiceError::invalid(format!(
                "{user_id} is a directory user: its {what} comes from the directory \
                 ({}); change it there",
                u.dn.as_deref().unwrap_or("no DN stored")
            ))),
            Some(_) => Ok(()),
        }
    }

    pub fn add_user(
        &self,
        user_id: &UserId,
        password: &Password,
        department: Option<&Department>,
    ) -> Result<()> {
        self.check_new_password(password)?;
        if users::find(&mut *self.conn()?, user_id.as_str())?.is_some() {
            return Err(ServiceError::invalid(format!(
                "user '{user_id}' already exists"
            )));
        }
        // Logins compare IDs exactly; this keeps an operator from being fooled by two users
        // whose IDs look the same.
        if let Some(why) = lookalike::suspicious(user_id.as_str()) {
            return Err(ServiceError::invalid(format!(
                "user ID '{}' {why}",
                user_id.as_str().escape_default()
            )));
        }
        let skeleton = lookalike::skeleton(user_id.as_str());
        if let Some(other) = users::ids(&mut *self.conn()?)?
            .into_iter()
            .find(|other| lookalike::skeleton(other) == skeleton)
        {
            return Err(ServiceError::invalid(format!(
                "user ID '{user_id}' looks like the existing user '{other}' (they differ only \
                 in case, width or Unicode compatibility form)"
            )));
        }
        let hash = self.passwords.hash(password)?;
        let row = UserRow {
            user_id: user_id.as_str().to_owned(),
            password_hash: Some(hash),
            department: department.map(|d| d.as_str().to_owned()),
            disabled: false,
            admin_right: false,
            update_right: false,
            view_right: false,
            failed_logins: 0,
            locked_until: None,
            created_at: self.now(),
            source: users::LOCAL.to_owned(),
            dn: None,
        };
        users::insert(&mut *self.conn()?, &row)?;
        Ok(())
    }

    /// Sets a new password and lifts any lock; unless `keep_sessions`, then ends the user's
    /// sessions (reason `password-changed`), so whoever held the old password holds nothing.
    /// Returns how many sessions it ended. The CLI's `user passwd` and the console both come
    /// here.
    pub fn set_password(
        &self,
        user_id: &UserId,
        password: &Password,
        keep_sessions: bool,
    ) -> Result<usize> {
        self.check_new_password(password)?;
        self.refuse_if_directory_owned(user_id, "password")?;
        let hash = self.passwords.hash(password)?;
        if users::set_password(&mut *self.conn()?, user_id.as_str(), &hash)? == 0 {
            return Err(no_user(user_id));
        }
        // After the new hash is stored, so a login with the old password fails from now on.
        // (One whose check against the old hash was already under way as the hash changed may
        // still store its session after the sessions are ended here.)
        if keep_sessions {
            return Ok(0);
        }
        self.end_sessions_of_user(user_id, EndReason::PasswordChanged)
    }

    /// Disables a user and ends all of its sessions (reason `user-disabled`); returns how many.
    /// One transaction behind the user's row lock: no login in flight can leave it a session.
    pub fn disable_user(&self, user_id: &UserId) -> Result<usize> {
        let ended = accounts::disable(
            &mut *self.conn()?,
            user_id.as_str(),
            EndReason::UserDisabled.as_str(),
            self.now(),
            self.latest_activity(),
        )?
        .ok_or_else(|| no_user(user_id))?;
        self.catch_up_revocations();
        self.telemetry
            .session_ended(EndReason::UserDisabled.as_str(), ended as u64);
        log::info!(
            target: SECURITY,
            event = "sessions_ended",
            reason = EndReason::UserDisabled.as_str(),
            user = user_id.as_str(),
            count = ended;
            "user disabled; {ended} sessions ended"
        );
        Ok(ended)
    }

    /// Lifts a user's lock-out and forgets its failed checks, the password unchanged (the CLI's
    /// `user unlock` and the console's Unlock). True when there was a lock or a failed check to
    /// forget, false when the user was already clear.
    pub fn unlock_user(&self, user_id: &UserId) -> Result<bool> {
        let mut conn = self.conn()?;
        let user = users::find(&mut conn, user_id.as_str())?.ok_or_else(|| no_user(user_id))?;
        let locked = user.locked_until.is_some_and(|until| until > self.now());
        if !locked && user.failed_logins == 0 {
            return Ok(false);
        }
        users::clear_failures(&mut conn, user_id.as_str())?;
        Ok(true)
    }

    pub fn enable_user(&self, user_id: &UserId) -> Result<()> {
        match users::set_disabled(&mut *self.conn()?, user_id.as_str(), false)? {
            0 => Err(no_user(user_id)),
            _ => Ok(()),
        }
    }

    pub fn set_right(&self, user_id: &UserId, right: Right, held: bool) -> Result<()> {
        self.change_right(user_id, right, held).map(drop)
    }

    /// Gives (`held`) or takes a right; returns whether that changed anything, false when the
    /// user already held it, or did not hold it, as asked.
    pub fn change_right(&self, user_id: &UserId, right: Right, held: bool) -> Result<bool> {
        self.refuse_if_directory_owned(user_id, "rights")?;
        let mut conn = self.conn()?;
        let user = users::find(&mut conn, user_id.as_str())?.ok_or_else(|| no_user(user_id))?;
        let (mut admin, mut update, mut view) =
            (user.admin_right, user.update_right, user.view_right);
        let slot = match right {
            Right::Administrator => &mut admin,
            Right::UpdateSession => &mut update,
            Right::ViewSession => &mut view,
        };
        if *slot == held {
            return Ok(false);
        }
        *slot = held;
        users::set_rights(&mut conn, user_id.as_str(), admin, update, view)?;
        Ok(true)
    }

    /// Deletes a user after ending all of its sessions (reason `deleted`, each into the
    /// history, as `disable_user` does); returns how many ended. One write transaction behind
    /// the user's row lock, so no login in flight can leave it a session. The history keeps
    /// the ended sessions with the user's ID until the retention period is over.
    pub fn delete_user(&self, user_id: &UserId) -> Result<usize> {
        let ended = accounts::delete(
            &mut *self.conn()?,
            user_id.as_str(),
            EndReason::Deleted.as_str(),
            self.now(),
            self.latest_activity(),
        )?
        .ok_or_else(|| no_user(user_id))?;
        self.catch_up_revocations();
        self.telemetry
            .session_ended(EndReason::Deleted.as_str(), ended as u64);
        log::info!(
            target: SECURITY,
            event = "sessions_ended",
            reason = EndReason::Deleted.as_str(),
            user = user_id.as_str(),
            count = ended;
            "user deleted; {ended} sessions ended"
        );
        Ok(ended)
    }

    pub fn set_department(&self, user_id: &UserId, department: Option<&Department>) -> Result<()> {
        self.refuse_if_directory_owned(user_id, "department")?;
        let department = department.map(Department::as_str);
        match users::set_department(&mut *self.conn()?, user_id.as_str(), department)? {
            0 => Err(no_user(user_id)),
            _ => Ok(()),
        }
    }

    pub fn list_users(&self) -> Result<Vec<UserSummary>> {
        let now = self.now();
        Ok(users::list(&mut *self.conn()?)?
            .into_iter()
            .map(|u| UserSummary {
                rights: rights_of(&u),
                locked: u.locked_until.is_some_and(|t| t > now),
                user_id: u.user_id,
                department: u.department,
                disabled: u.disabled,
                source: u.source,
                dn: u.dn,
            })
            .collect())
    }

    /// Ends one session (reason `deleted`); `SessionNotFound` if it is not stored.
    pub fn delete_session(&self, session_id: &SessionId) -> Result<()> {
        let id = self.target(session_id)?;
        if self.end(&mut *self.conn()?, &id, EndReason::Deleted)? {
            Ok(())
        } else {
            Err(ServiceError::SessionNotFound)
        }
    }

    /// A session's details, ended ones included.
    pub fn session_info(&self, session_id: &SessionId) -> Result<SessionView> {
        self.find_any(&mut *self.conn()?, Some(session_id), "")
    }

    /// On a database with no user at all, creates `admin` with AdministratorRight and a random
    /// password, and returns it so the caller can show it once. `None` when users exist.
    pub fn ensure_admin(&self) -> Result<Option<NewAdmin>> {
        if users::count(&mut *self.conn()?)? > 0 {
            return Ok(None);
        }
        // 24 characters (144 bits), or as many as the minimum asks for if it asks for more.
        let length = ADMIN_PASSWORD_CHARS.max(self.settings.password_min_length);
        let mut bytes = vec![0u8; (length * 3).div_ceil(4)];
        getrandom::fill(&mut bytes)
            .map_err(|e| ServiceError::internal(format!("the random source failed: {e}")))?;
        let mut text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        text.truncate(length);
        let password = Password::parse(text).map_err(ServiceError::internal)?;
        let admin = UserId::parse(ADMIN).map_err(ServiceError::internal)?;
        match self.add_user(&admin, &password, None) {
            Ok(()) => {}
            // Another instance on the same database created it first.
            Err(ServiceError::InvalidRequest(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        self.set_right(&admin, Right::Administrator, true)?;
        Ok(Some(NewAdmin {
            user_id: ADMIN.into(),
            password,
        }))
    }
}
