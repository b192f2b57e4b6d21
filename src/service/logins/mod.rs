//! Logins and callers: the operations that check a password (getSession, getBWSession,
//! startSession, confirmId) and those with which an administrator opens and closes a session
//! for someone else (the clientless ones). Beside them: `auth` (who is calling, their rights,
//! the one login gate) and `opening` (a new session within its user's cap). Whether a password
//! is right is asked of `service::identity`.

pub(crate) mod auth;
mod opening;

use crate::domain::{ClientName, ClientType, EndReason, Password, SessionId, UserId};
use crate::service::{CallContext, Result, ServiceError, SessionService, SessionView};
use crate::store::{sessions, users};
use crate::telemetry::SECURITY;

impl SessionService {
    pub fn get_session(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        self.open_with_password(user_id, password, ClientType::standard(), None, ctx)
    }

    pub fn get_bw_session(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        self.open_with_password(user_id, password, ClientType::bw(), None, ctx)
    }

    pub fn start_session(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        client_type: Option<ClientType>,
        client_name: Option<ClientName>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        let client_type = client_type.unwrap_or_else(ClientType::standard);
        self.open_with_password(user_id, password, client_type, client_name, ctx)
    }

    /// Re-checks the password of the session's user; a wrong one counts toward the lock-out.
    pub fn confirm_id(
        &self,
        session_id: Option<&SessionId>,
        password: Option<&Password>,
    ) -> Result<bool> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        let user_id = UserId::parse(&caller.user.user_id).ok();
        match self.check_password(user_id.as_ref(), password, None) {
            Ok(_) => Ok(true),
            Err(ServiceError::AuthenticationFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn open_clientless_session(
        &self,
        session_id: Option<&SessionId>,
        user_id: Option<&UserId>,
        client_name: Option<ClientName>,
        ctx: &CallContext,
    ) -> Result<SessionId> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        if !caller.is_admin_without_department() {
            return Err(ServiceError::AccessDenied);
        }
        let no_user = || match user_id {
            Some(u) => ServiceError::invalid(format!("no enabled user '{u}'")),
            None => ServiceError::invalid("no enabled user with that userId"),
        };
        let user_id = user_id.ok_or_else(no_user)?;
        let user = users::find(&mut conn, user_id.as_str())?.ok_or_else(no_user)?;
        if user.disabled {
            return Err(no_user());
        }
        drop(conn);
        let (id, row) = self.new_session(
            &user.user_id,
            ClientType::clientless(),
            client_name,
            ctx,
            Some(caller.user.user_id.clone()),
        )?;
        if !self.store_session(&row)? {
            return Err(no_user());
        }
        log::info!(
            target: SECURITY,
            event = "clientless_opened",
            user = row.record.user_id.as_str(),
            actor = caller.user.user_id.as_str(),
            session:% = id;
            "clientless session opened"
        );
        Ok(id)
    }

    pub fn close_clientless_session(
        &self,
        session_id: Option<&SessionId>,
        target: Option<&SessionId>,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        let Some(target) = target else {
            return Ok(false);
        };
        let target = self.target(target)?;
        let Some(row) = sessions::find(&mut conn, target.as_str())? else {
            return Ok(false);
        };
        if row.record.client_type != ClientType::CLIENTLESS {
            return Err(ServiceError::invalid(
                "the target is not a clientless session",
            ));
        }
        let opener = row.record.created_by.as_deref() == Some(caller.user.user_id.as_str());
        if !opener && !caller.is_admin_without_department() {
            return Err(ServiceError::AccessDenied);
        }
        self.end(&mut conn, &target, EndReason::Closed)
    }
}
