//! Array results: getSessions' filters, the legacy lists, and reading them in keyset pages.
//!
//! A listing is opened once (rights checked, pending renewals stored, "now" fixed) and then
//! read a page at a time in (creation time, ID) order, each page starting after the last key
//! of the one before, so a listing of 100k sessions is never held whole.

use chrono::NaiveDateTime;

use crate::domain::SessionId;
use crate::service::logins::auth::Caller;
use crate::service::{Result, ServiceError, SessionService, SessionView};
use crate::store::sessions::{self, Cutoffs, State};
use crate::store::DbConnection;

/// How an array result must end for the caller who asked: the `bw` clients (TIBCO
/// BusinessWorks) choke on the trailing nil element every other caller gets (docs/behaviour.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayDialect {
    Standard,
    Bw,
}

/// An array result being read, page by page, with [`SessionService::next_page`]. Its filters,
/// rights and "now" were settled when it was opened; pages follow the (creation time, ID) order.
#[derive(Debug, Clone)]
pub struct SessionPages {
    state: State,
    cutoffs: Cutoffs,
    filters: sessions::Filters,
    caller: String,
    after: Option<(NaiveDateTime, String)>,
    offset: Option<i64>,
    remaining: Option<i64>,
    done: bool,
    dialect: ArrayDialect,
}

impl SessionPages {
    /// True once a page came back short: there is nothing more to read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The caller's dialect, which decides how the array ends.
    pub fn dialect(&self) -> ArrayDialect {
        self.dialect
    }
}

/// getSessions' filters; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub client_type: Option<String>,
    pub include_expired: bool,
    pub offset: Option<i32>,
    pub limit: Option<i32>,
}

impl SessionService {
    pub fn get_expired_session_ids(&self, session_id: Option<&SessionId>) -> Result<SessionPages> {
        self.legacy_list(session_id, State::Expired)
    }

    pub fn list_active_session_ids(&self, session_id: Option<&SessionId>) -> Result<SessionPages> {
        self.legacy_list(session_id, State::Active)
    }

    fn legacy_list(&self, session_id: Option<&SessionId>, state: State) -> Result<SessionPages> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        if !caller.can_view() {
            return Err(ServiceError::AccessDenied);
        }
        self.open_pages(
            &mut conn,
            &caller,
            state,
            sessions::Filters::default(),
            None,
            None,
        )
    }

    pub fn get_sessions(
        &self,
        session_id: Option<&SessionId>,
        filter: &SessionFilter,
    ) -> Result<SessionPages> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        let offset = non_negative("offset", filter.offset)?;
        let limit = non_negative("limit", filter.limit)?;
        let mut user_id = filter.user_id.clone();
        if !caller.can_view() {
            // Without a view right a caller sees its own user's sessions only.
            match &user_id {
                Some(u) if *u != caller.user.user_id => return Err(ServiceError::AccessDenied),
                _ => user_id = Some(caller.user.user_id.clone()),
            }
        }
        // A filter by session may name it by handle, like a target.
        let session_id = match filter.session_id.as_deref().map(SessionId::parse) {
            Some(Ok(id)) => Some(self.target(&id)?.as_str().to_owned()),
            _ => filter.session_id.clone(),
        };
        let filters = sessions::Filters {
            session_id,
            user_id,
            client_type: filter.client_type.clone(),
        };
        let state = if filter.include_expired {
            State::Any
        } else {
            State::Active
        };
        self.open_pages(&mut conn, &caller, state, filters, offset, limit)
    }

    /// The next page of an array result; empty when there is no more.
    pub fn next_page(&self, pages: &mut SessionPages) -> Result<Vec<SessionView>> {
        let rows = self.settings.page_rows;
        let limit = pages.remaining.map_or(rows, |r| r.min(rows));
        if pages.done || limit == 0 {
            pages.done = true;
            return Ok(Vec::new());
        }
        let page = sessions::Page {
            after: pages.after.as_ref().map(|(t, id)| (*t, id.as_str())),
            offset: pages.offset.take(),
            limit: Some(limit),
        };
        let rows = sessions::list(
            &mut *self.conn()?,
            pages.state,
            pages.cutoffs,
            &pages.filters,
            page,
        )?;
        let fetched = rows.len() as i64;
        pages.done = fetched < limit;
        if let Some(r) = &mut pages.remaining {
            *r -= fetched;
        }
        pages.after = rows
            .last()
            .map(|r| (r.record.created_at, r.record.session_id.clone()));
        rows.into_iter()
            .map(|r| self.shown(self.view(r, Some(&pages.caller))))
            .collect()
    }

    /// Every stored session that is active (or expired), oldest first, read page by page:
    /// `each` gets one page at a time.
    pub fn list_sessions(&self, expired: bool, mut each: impl FnMut(&[SessionView])) -> Result<()> {
        self.store_pending_activity()?;
        let state = if expired {
            State::Expired
        } else {
            State::Active
        };
        let mut pages = self.pages(state, sessions::Filters::default(), None, None);
        while !pages.is_done() {
            each(&self.next_page(&mut pages)?);
        }
        Ok(())
    }

    /// Opens an array result for `caller` (rights already checked).
    fn open_pages(
        &self,
        conn: &mut DbConnection,
        caller: &Caller,
        state: State,
        filters: sessions::Filters,
        offset: Option<i64>,
        limit: Option<i64>,
    ) -> Result<SessionPages> {
        // Listings judge expiry in the database, so it must hold our renewals first.
        self.store_pending_on(conn)?;
        let mut pages = self.pages(state, filters, offset, limit);
        pages.caller = caller.session.record.session_id.clone();
        pages.dialect = if caller.is_bw() {
            ArrayDialect::Bw
        } else {
            ArrayDialect::Standard
        };
        Ok(pages)
    }

    /// An array result as of now, on behalf of no session.
    fn pages(
        &self,
        state: State,
        filters: sessions::Filters,
        offset: Option<i64>,
        limit: Option<i64>,
    ) -> SessionPages {
        SessionPages {
            state,
            cutoffs: self.cutoffs(self.now()),
            filters,
            caller: String::new(),
            after: None,
            offset,
            remaining: limit,
            done: false,
            // The CLI's listings are printed, not sent: the dialect does not matter there.
            dialect: ArrayDialect::Bw,
        }
    }
}

fn non_negative(name: &str, value: Option<i32>) -> Result<Option<i64>> {
    match value {
        Some(v) if v < 0 => Err(ServiceError::invalid(format!(
            "{name} must not be negative"
        ))),
        v => Ok(v.map(i64::from)),
    }
}
