//! A session as clients see it, stored (active or expired) or ended, with its expiration time
//! and pending renewals already applied.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::handles;
use crate::domain::{ListedIds, SessionId};
use crate::service::{console, Result, ServiceError, SessionService};
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

    /// The shared keys, made and stored by the first instance that needs them.
    pub(crate) fn keys(&self) -> Result<Arc<handles::Keys>> {
        if let Some(k) = self.keys.get() {
            return Ok(k.clone());
        }
        let fresh = handles::fresh_secret().map_err(ServiceError::internal)?;
        let secret =
            crate::store::secrets::get_or_make(&mut *self.conn()?, handles::SECRET_NAME, &fresh)?;
        let keys = Arc::new(handles::Keys::from_secret(secret.as_bytes()));
        Ok(self.keys.get_or_init(|| keys).clone())
    }

    /// A session as a listing or a detail shows it: a console session always by its handle
    /// (its ID signs in to the console), every session by its handle in handles mode.
    pub(crate) fn shown(&self, mut view: SessionView) -> Result<SessionView> {
        if self.settings.listed_ids == ListedIds::Handles
            || view.record.client_type == console::CONSOLE_CLIENT_TYPE
        {
            view.record.session_id = self.keys()?.handle(&view.record.session_id);
        }
        Ok(view)
    }

    /// The session a target names: the one whose handle it is, else the one whose ID it is.
    /// Both modes take both, so a script that kept IDs and one that kept handles work alike.
    pub(crate) fn target(&self, given: &SessionId) -> Result<SessionId> {
        Ok(match self.keys()?.resolve(given.as_str()) {
            Some(id) => SessionId::parse(&id).map_err(ServiceError::internal)?,
            None => given.clone(),
        })
    }

    /// A page key's ID as a link carries it (always a handle: keys are opaque to readers).
    pub(crate) fn shown_key_id(&self, id: &str) -> Result<String> {
        Ok(self.keys()?.handle(id))
    }

    /// A page key's ID back from a link.
    pub(crate) fn key_id(&self, given: &str) -> Result<String> {
        Ok(self
            .keys()?
            .resolve(given)
            .unwrap_or_else(|| given.to_owned()))
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
