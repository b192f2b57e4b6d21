//! Session policy (docs/behaviour.md §7) beside the operations: ending many sessions at once (one
//! user's, or everyone's) in small batches, and the rule for new passwords. The per-user session
//! limit joins it here.

use crate::domain::{EndReason, Password, UserId};
use crate::service::{Result, ServiceError, SessionService};
use crate::store::sessions::{self, Scope};
use crate::store::users;

/// Sessions ended per transaction: small enough that ending a million never holds the write
/// lock long enough to stall validateSession (the same size as the expiry removal's batches).
const END_BATCH: i64 = super::expiry::EXPIRED_BATCH;

impl SessionService {
    /// Ends every session of one user with `reason`; returns how many. An unknown user is an
    /// error, so that a mistyped name is not taken for a user with no sessions.
    pub fn end_sessions_of_user(&self, user_id: &UserId, reason: EndReason) -> Result<usize> {
        if users::find(&mut *self.conn()?, user_id.as_str())?.is_none() {
            return Err(crate::service::admin::no_user(user_id));
        }
        let ended = self.end_in_batches(Scope::User(user_id.as_str()), reason)?;
        log::info!("ended {ended} sessions of {user_id}: {}", reason.as_str());
        Ok(ended)
    }

    /// Ends every stored session of every user with `reason`; returns how many.
    pub fn end_all_sessions(&self, reason: EndReason) -> Result<usize> {
        let ended = self.end_in_batches(Scope::All, reason)?;
        log::info!("ended all {ended} sessions: {}", reason.as_str());
        Ok(ended)
    }

    /// Refuses a new password shorter than the minimum, counted in characters: a user who
    /// types eight accented letters has typed eight, whatever UTF-8 makes of them.
    pub(crate) fn check_new_password(&self, password: &Password) -> Result<()> {
        let min = self.settings.password_min_length;
        if password.expose().chars().count() < min {
            return Err(ServiceError::invalid(format!(
                "a new password must be at least {min} characters"
            )));
        }
        Ok(())
    }

    /// One batch per transaction, a breath between them, each batch starting after the last
    /// ID the one before it ended (see `store::sessions::end_batch`).
    fn end_in_batches(&self, scope: Scope<'_>, reason: EndReason) -> Result<usize> {
        let mut conn = self.conn()?;
        // The history keeps the last activity the sessions really had, renewals held here
        // included.
        self.store_pending_on(&mut conn)?;
        let mut after: Option<String> = None;
        let mut total = 0;
        loop {
            let (next, ended) = sessions::end_batch(
                &mut conn,
                scope,
                after.as_deref(),
                END_BATCH,
                reason.as_str(),
                self.now(),
            )?;
            total += ended;
            match next {
                Some(key) => after = Some(key),
                None => break,
            }
            std::thread::sleep(super::expiry::BATCH_PAUSE);
        }
        if total > 0 {
            // Refused here before this answers; other instances follow the log.
            self.catch_up_revocations();
        }
        self.telemetry.session_ended(reason.as_str(), total as u64);
        log::info!(
            target: crate::telemetry::SECURITY,
            event = "sessions_ended",
            reason = reason.as_str(),
            user = match scope {
                Scope::User(u) => u,
                Scope::All => "*",
            },
            count = total;
            "{total} sessions ended"
        );
        Ok(total)
    }
}
