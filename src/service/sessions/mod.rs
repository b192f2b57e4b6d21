//! Sessions and listings: the operations on sessions that exist (validateSession, the hot path;
//! closing, deleting, details, keep-alive), and beside them `view` (a session as clients see
//! it, and the handles it may be shown by), `listing` (array results in keyset pages),
//! `expiry` (deadlines, pending activity, removal, history purge), `policy` (ending many
//! at once, the rule for new passwords) and `handles` (the keys of listed handles and CSRF
//! tokens).

pub(crate) mod expiry;
pub mod handles;
pub(crate) mod listing;
pub(crate) mod policy;
pub(crate) mod view;

use chrono::NaiveDateTime;

use crate::domain::{EndReason, SessionId};
use crate::service::{Result, ServiceError, SessionService, SessionView};
use crate::store::{sessions, DbConnection};
use crate::telemetry::SECURITY;

impl SessionService {
    /// `true` when a stored session was removed; an unknown ID is `false`, not a fault.
    pub fn close_session(&self, session_id: Option<&SessionId>) -> Result<bool> {
        let Some(id) = session_id else {
            return Ok(false);
        };
        self.end(&mut *self.conn()?, id, EndReason::Closed)
    }

    /// The hot path: from memory when this instance has seen the session valid (no read, no
    /// write), else one primary-key read. Renewal goes to the cache, stored every lag.
    pub fn validate_session(&self, session_id: Option<&SessionId>) -> Result<bool> {
        let Some(id) = session_id else {
            return Ok(false);
        };
        if self.validate_from_memory(id) {
            return Ok(true);
        }
        // A session vouched for, with the revocation reader a little late: wait for its read
        // rather than read the database (see `SessionCache::await_following`). Not where reads
        // are in process (SQLite): there this runs on the HTTP worker, and the read is cheaper.
        if !self.validate_is_cheap()
            && self.cache.vouches_for(id.as_str())
            && self.cache.await_following()
            && self.validate_from_memory(id)
        {
            self.telemetry.metrics.session_cache_waits_total.inc();
            return Ok(true);
        }
        self.telemetry.metrics.session_cache_misses_total.inc();
        // Before the read: a revocation processed between the read and the insert keeps the
        // session out of the cache (see `cache`).
        let epoch = self.cache.epoch();
        let Some((created, stored)) = sessions::find_times(&mut *self.conn()?, id.as_str())? else {
            return Ok(false);
        };
        let now = self.now();
        Ok(self
            .cache
            .admit(id.as_str(), epoch, created, stored, now, |last| {
                !self.is_expired(now, created, last)
            }))
    }

    /// validateSession answered from memory: true when the session was seen valid here, is
    /// not expired by the clock now, and was not revoked; renews it. False is no verdict (the
    /// database decides), so this is cheap enough for the HTTP worker itself.
    pub fn validate_from_memory(&self, id: &SessionId) -> bool {
        let now = self.now();
        let hit = self.cache.hit(id.as_str(), now, |created, last| {
            !self.is_expired(now, created, last)
        });
        if hit {
            self.telemetry.metrics.session_cache_hits_total.inc();
        }
        hit
    }

    pub fn delete_session_id(
        &self,
        session_id: Option<&SessionId>,
        target: Option<&SessionId>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        if !caller.can_update() {
            return Err(ServiceError::AccessDenied);
        }
        let target = self.target(target.ok_or(ServiceError::SessionNotFound)?)?;
        if self.end(&mut conn, &target, EndReason::Deleted)? {
            Ok(())
        } else {
            Err(ServiceError::SessionNotFound)
        }
    }

    pub fn delete_expired_session_ids(&self, session_id: Option<&SessionId>) -> Result<usize> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        if !caller.can_update() {
            return Err(ServiceError::AccessDenied);
        }
        self.remove_expired()
    }

    pub fn get_session_info(
        &self,
        session_id: Option<&SessionId>,
        target: Option<&SessionId>,
    ) -> Result<SessionView> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        let view = self.find_any(&mut conn, target, &caller.session.record.session_id)?;
        if view.record.user_id != caller.user.user_id && !caller.can_view() {
            return Err(ServiceError::AccessDenied);
        }
        self.shown(view)
    }

    pub fn get_session_user(
        &self,
        session_id: Option<&SessionId>,
        target: Option<&SessionId>,
    ) -> Result<String> {
        self.get_session_info(session_id, target)
            .map(|v| v.record.user_id)
    }

    pub fn get_current_session(&self, session_id: Option<&SessionId>) -> Result<SessionView> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        let current = caller.session.record.session_id.clone();
        Ok(self.view(caller.session, Some(&current)))
    }

    /// A keep-alive: renews and returns the new expiration time. Never revives an ended session.
    pub fn extend_session(&self, session_id: Option<&SessionId>) -> Result<NaiveDateTime> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        Ok(self.expires_at(
            caller.session.record.created_at,
            caller.session.last_activity,
        ))
    }

    /// Ends one session into the history and drops it from memory; `true` when it was stored.
    pub(crate) fn end(
        &self,
        conn: &mut DbConnection,
        id: &SessionId,
        reason: EndReason,
    ) -> Result<bool> {
        let ended = sessions::end(
            conn,
            id.as_str(),
            reason.as_str(),
            self.now(),
            self.latest_activity(),
        )?;
        // Only once the record holds it: a failed end keeps the renewal for the next try.
        self.cache.revoke([id.as_str()]);
        if let Some(history) = &ended {
            self.telemetry.session_ended(reason.as_str(), 1);
            log::info!(
                target: SECURITY,
                event = "session_ended",
                session:% = id,
                user = history.record.user_id.as_str(),
                reason = reason.as_str();
                "session ended"
            );
        }
        Ok(ended.is_some())
    }
}
