//! A session as clients see it, stored (active or expired) or ended, with its expiration time
//! and pending renewals already applied.

use chrono::NaiveDateTime;

use super::{Result, ServiceError, SessionService};
use crate::domain::SessionId;
use crate::store::history::{self, HistoryRow};
use crate::store::sessions::{self, SessionRecord, SessionRow};
use crate::store::DbConnection;

/// One session as clients see it: stored (active or expired) or ended. Its stored values are
/// the store's [`SessionRecord`] as read (the encoders take their fields from it); the rest is
/// what this instance knows or works out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// As stored; listings and details may show a handle in place of its ID (see `shown`).
    pub record: SessionRecord,
    /// The stored last activity, or a later renewal still pending here.
    pub last_activity: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// When and why it ended: `None` for a stored session.
    pub ended_at: Option<NaiveDateTime>,
    pub end_reason: Option<String>,
    /// Whether it is the caller's own session.
    pub is_current: bool,
    /// Whether another location opened it.
    pub is_remote: bool,
}

impl SessionService {
    pub(crate) fn view(&self, row: SessionRow, caller: Option<&str>) -> SessionView {
        let last_activity = self.cache.latest(&row.record.session_id, row.last_activity);
        self.view_of(row.record, last_activity, None, caller)
    }

    pub(crate) fn view_ended(&self, row: HistoryRow, caller: Option<&str>) -> SessionView {
        let ended = Some((row.ended_at, row.end_reason));
        self.view_of(row.record, row.last_activity, ended, caller)
    }

    fn view_of(
        &self,
        record: SessionRecord,
        last_activity: NaiveDateTime,
        ended: Option<(NaiveDateTime, String)>,
        caller: Option<&str>,
    ) -> SessionView {
        let (ended_at, end_reason) = ended.unzip();
        SessionView {
            is_current: caller == Some(record.session_id.as_str()),
            is_remote: record.location != self.settings.location,
            expires_at: self.expires_at(record.created_at, last_activity),
            record,
            last_activity,
            ended_at,
            end_reason,
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
