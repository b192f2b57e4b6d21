//! A session as clients see it, stored (active or expired) or ended, with its expiration time
//! and pending renewals already applied.

use chrono::NaiveDateTime;

use super::{Result, ServiceError, SessionService};
use crate::domain::SessionId;
use crate::store::history::{self, HistoryRow};
use crate::store::sessions::{self, SessionRow};
use crate::store::DbConnection;

/// One session as clients see it: stored (active or expired) or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session_id: String,
    pub user_id: String,
    pub client_type: String,
    pub client_name: Option<String>,
    pub host: Option<String>,
    pub location: String,
    pub created_at: NaiveDateTime,
    pub last_activity: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub end_reason: Option<String>,
    pub created_by: Option<String>,
    pub is_current: bool,
    pub is_remote: bool,
}

impl SessionService {
    pub(crate) fn view(&self, row: SessionRow, caller: Option<&str>) -> SessionView {
        let last_activity = self.cache.latest(&row.session_id, row.last_activity);
        SessionView {
            is_current: caller == Some(row.session_id.as_str()),
            is_remote: row.location != self.settings.location,
            expires_at: self.expires_at(row.created_at, last_activity),
            session_id: row.session_id,
            user_id: row.user_id,
            client_type: row.client_type,
            client_name: row.client_name,
            host: row.host,
            location: row.location,
            created_at: row.created_at,
            last_activity,
            ended_at: None,
            end_reason: None,
            created_by: row.created_by,
        }
    }

    pub(crate) fn view_ended(&self, row: HistoryRow, caller: Option<&str>) -> SessionView {
        SessionView {
            is_current: caller == Some(row.session_id.as_str()),
            is_remote: row.location != self.settings.location,
            expires_at: self.expires_at(row.created_at, row.last_activity),
            session_id: row.session_id,
            user_id: row.user_id,
            client_type: row.client_type,
            client_name: row.client_name,
            host: row.host,
            location: row.location,
            created_at: row.created_at,
            last_activity: row.last_activity,
            ended_at: Some(row.ended_at),
            end_reason: Some(row.end_reason),
            created_by: row.created_by,
        }
    }

    /// A session by ID, stored or ended.
    pub(crate) fn find_any(
        &self,
        conn: &mut DbConnection,
        target: Option<&SessionId>,
        caller: &str,
    ) -> Result<SessionView> {
        let id = self.target(target.ok_or(ServiceError::SessionNotFound)?)?;
        if let Some(row) = sessions::find(conn, id.as_str())? {
            return Ok(self.view(row, Some(caller)));
        }
        match history::find(conn, id.as_str())? {
            Some(row) => Ok(self.view_ended(row, Some(caller))),
            None => Err(ServiceError::SessionNotFound),
        }
    }
}
