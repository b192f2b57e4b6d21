//! Opening a session: the password login of getSession, getBWSession and startSession, and
//! storing a new session within its user's cap (docs/behaviour.md §7).

use crate::domain::{
    redact, ClientName, ClientType, EndReason, LimitPolicy, Password, SessionId, UserId,
};
use crate::service::{CallContext, Result, ServiceError, SessionService, SessionView};
use crate::store::accounts::{self, Opened};
use crate::store::sessions::{SessionRecord, SessionRow};
use crate::telemetry::SECURITY;

impl SessionService {
    pub(in crate::service) fn open_with_password(
        &self,
        user_id: Option<&UserId>,
        password: Option<&Password>,
        client_type: ClientType,
        client_name: Option<ClientName>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        let checked = self.check_password(user_id, password, ctx.host.as_deref());
        self.login_counts.record(self.now(), checked.is_ok());
        let user = checked?;
        // The legacy server removed every expired session on each login; clients rely on it.
        self.remove_expired()?;
        let (id, row) = self.new_session(&user.user_id, client_type, client_name, ctx, None)?;
        if !self.store_session(&row)? {
            log::warn!(
                "login of {} refused: disabled meanwhile",
                row.record.user_id
            );
            return Err(ServiceError::AuthenticationFailed);
        }
        log::info!(
            target: SECURITY,
            event = "login",
            user = row.record.user_id.as_str(),
            client_type = row.record.client_type.as_str(),
            host = row.record.host.as_deref().unwrap_or("-"),
            source = user.source.as_str(),
            session:% = id;
            "login succeeded"
        );
        Ok(self.view(row, Some(id.as_str())))
    }

    /// Stores a new session if its user is still there and enabled (false if not), within the
    /// per-user cap: ending the least recently active sessions to make room, or refusing with
    /// `SessionLimitReached`, as the policy says. One write transaction behind the user's row
    /// lock (see `accounts::open`), so the count is exact under concurrent logins on every
    /// instance, and no session outlives a disable that was in flight.
    ///
    /// Active is judged by the stored last activity after this instance's pending renewals are
    /// stored, the same on every instance and what listActiveSessionIds shows; another
    /// instance's renewals are at most the activity lag late.
    pub(in crate::service) fn store_session(&self, row: &SessionRow) -> Result<bool> {
        let now = self.now();
        let cap = self
            .settings
            .max_sessions_per_user
            .map(|max| accounts::Cap {
                max,
                cutoffs: self.cutoffs(now),
                evict: match self.settings.session_limit_policy {
                    LimitPolicy::Deny => None,
                    LimitPolicy::EvictOldest => Some((EndReason::Evicted.as_str(), now)),
                },
            });
        let mut conn = self.conn()?;
        if cap.is_some() {
            self.store_pending_on(&mut conn)?;
        }
        match accounts::open(&mut conn, row, cap, self.latest_activity())? {
            Opened::Stored { evicted } => {
                self.telemetry.session_opened();
                self.cache
                    .revoke(evicted.iter().map(|r| r.record.session_id.as_str()));
                for ended in evicted {
                    self.telemetry.session_ended(EndReason::Evicted.as_str(), 1);
                    log::info!(
                        target: SECURITY,
                        event = "session_ended",
                        session = redact(&ended.record.session_id).as_str(),
                        user = ended.record.user_id.as_str(),
                        reason = EndReason::Evicted.as_str();
                        "session ended"
                    );
                }
                Ok(true)
            }
            Opened::NoEnabledUser => Ok(false),
            Opened::CapReached => {
                log::warn!(
                    "login of {} refused: {} active sessions already",
                    row.record.user_id,
                    cap.map_or(0, |c| c.max)
                );
                Err(ServiceError::SessionLimitReached)
            }
        }
    }

    pub(in crate::service) fn new_session(
        &self,
        user_id: &str,
        client_type: ClientType,
        client_name: Option<ClientName>,
        ctx: &CallContext,
        created_by: Option<String>,
    ) -> Result<(SessionId, SessionRow)> {
        let id = SessionId::generate().map_err(ServiceError::internal)?;
        let now = self.now();
        let row = SessionRow {
            record: SessionRecord {
                session_id: id.as_str().to_owned(),
                user_id: user_id.to_owned(),
                client_type: client_type.as_str().to_owned(),
                client_name: client_name.map(ClientName::into_string),
                host: ctx.host.clone(),
                location: self.settings.location.clone(),
                created_at: now,
                created_by,
            },
            last_activity: now,
        };
        Ok((id, row))
    }
}
