//! The operations and the rules of SPEC 2 to 4: authentication and lock-out, rights, expiry
//! and renewal, history. No XML and no HTTP here: callers hand in strings and get back plain
//! values or a [`ServiceError`] kind they can act on.
//!
//! Everything here blocks (database, Argon2); the HTTP layer runs it on blocking threads.
//!
//! Error policy: a database failure is logged here, once, with its cause; the caller only gets
//! `Unavailable` (cannot reach the database) or `Internal` (anything else), never the text.

pub mod activity;
mod admin;
pub mod clock;
pub mod console;
pub mod login_stats;
pub mod passwords;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::config::Config;
use crate::domain::{ClientType, EndReason, Password, SessionId, UserId};
use crate::store::history::{self, HistoryRow};
use crate::store::sessions::{self, Cutoffs, SessionRow, State};
use crate::store::users::{self, UserRow};
use crate::store::{self, Conn, DbConnection, Store};

use activity::ActivityLog;
pub use admin::{NewAdmin, UserSummary};
use clock::Clock;
use passwords::{HashError, Passwords};

/// Expired sessions ended per transaction: small enough that a removal of a million never
/// holds the write lock long enough to stall validateSession.
const EXPIRED_BATCH: i64 = 2_000;
/// Pause between those transactions, so other writers get the lock in between.
const BATCH_PAUSE: Duration = Duration::from_millis(2);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("the account is locked after too many failed password checks")]
    AccountLocked,
    #[error("the session is unknown, ended or expired")]
    InvalidSession,
    #[error("the session's user lacks the right for this operation")]
    AccessDenied,
    #[error("no such session")]
    SessionNotFound,
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the session store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl From<store::QueryError> for ServiceError {
    fn from(e: store::QueryError) -> Self {
        if store::is_unavailable(&e) {
            log::error!("database unavailable: {e}");
            ServiceError::Unavailable
        } else {
            log::error!("database error: {e}");
            ServiceError::Internal
        }
    }
}

impl From<store::PoolError> for ServiceError {
    fn from(e: store::PoolError) -> Self {
        log::error!("no database connection: {e}");
        ServiceError::Unavailable
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        log::error!("{e}");
        match e {
            HashError::Busy => ServiceError::Unavailable,
            HashError::Failed(_) => ServiceError::Internal,
        }
    }
}

/// The rules' parameters, from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub session_timeout: Duration,
    pub session_max_lifetime: Option<Duration>,
    pub location: String,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub history_retention: Duration,
    pub hash_concurrency: usize,
    pub hash_wait: Duration,
    /// Rows per page of an array result: a listing of 100k sessions is read and sent a page
    /// at a time, never held whole.
    pub page_rows: i64,
}

impl Settings {
    pub fn from_config(c: &Config) -> Self {
        Self {
            session_timeout: c.session_timeout,
            session_max_lifetime: c.session_max_lifetime,
            location: c.location.clone(),
            lockout_threshold: c.lockout_threshold,
            lockout_duration: c.lockout_duration,
            history_retention: c.history_retention,
            hash_concurrency: c.hash_concurrency,
            hash_wait: c.db_timeout,
            page_rows: i64::from(c.list_page_size),
        }
    }
}

/// What the transport knows about a call that the rules need.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The caller's address.
    pub host: Option<String>,
}

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
    /// Whether the array ends with a nil element (every caller but a `bw` one).
    pub nil_terminated: bool,
}

impl SessionPages {
    /// True once a page came back short: there is nothing more to read.
    pub fn is_done(&self) -> bool {
        self.done
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

/// The authenticated caller of an operation: its session (activity already renewed) and user.
struct Caller {
    session: SessionRow,
    user: UserRow,
}

impl Caller {
    fn is_admin_without_department(&self) -> bool {
        self.user.admin_right && self.user.department.is_none()
    }

    /// deleteSessionId, deleteExpiredSessionIds.
    fn can_update(&self) -> bool {
        self.user.update_right || self.is_admin_without_department()
    }

    /// Listings, and other users' sessions.
    fn can_view(&self) -> bool {
        self.user.view_right || self.user.update_right || self.user.admin_right
    }

    fn is_bw(&self) -> bool {
        ClientType::is_bw(&self.session.client_type)
    }
}

pub struct SessionService {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Settings,
    activity: ActivityLog,
    passwords: Passwords,
    login_counts: login_stats::LoginStats,
}

impl SessionService {
    pub fn new(store: Store, clock: Arc<dyn Clock>, settings: Settings) -> Result<Self> {
        let passwords = Passwords::new(settings.hash_concurrency, settings.hash_wait)?;
        Ok(Self {
            store,
            clock,
            settings,
            activity: ActivityLog::default(),
            passwords,
            login_counts: Default::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn conn(&self) -> Result<Conn> {
        Ok(self.store.conn()?)
    }

    fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    fn cutoffs(&self, now: NaiveDateTime) -> Cutoffs {
        Cutoffs {
            idle: now - chrono_duration(self.settings.session_timeout),
            lifetime: self
                .settings
                .session_max_lifetime
                .map(|l| now - chrono_duration(l)),
        }
    }

    /// Last activity + timeout, capped by the absolute lifetime when one is set.
    fn expires_at(&self, created: NaiveDateTime, last_activity: NaiveDateTime) -> NaiveDateTime {
        let idle_end = last_activity + chrono_duration(self.settings.session_timeout);
        match self.settings.session_max_lifetime {
            Some(l) => idle_end.min(created + chrono_duration(l)),
            None => idle_end,
        }
    }

    fn is_expired(&self, now: NaiveDateTime, created: NaiveDateTime, last: NaiveDateTime) -> bool {
        now > self.expires_at(created, last)
    }

    fn view(&self, row: SessionRow, caller: Option<&str>) -> SessionView {
        let last_activity = self.activity.latest(&row.session_id, row.last_activity);
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

    fn view_ended(&self, row: HistoryRow, caller: Option<&str>) -> SessionView {
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

    /// The caller's session must be stored, unexpired and its user enabled; renews it.
    fn authenticate(&self, conn: &mut DbConnection, session_id: &str) -> Result<Caller> {
        let id = SessionId::parse(session_id).map_err(|_| ServiceError::InvalidSession)?;
        let (mut session, user) =
            sessions::find_with_user(conn, id.as_str())?.ok_or(ServiceError::InvalidSession)?;
        let now = self.now();
        let alive = !user.disabled
            && self
                .activity
                .renew_if(&session.session_id, session.last_activity, now, |last| {
                    !self.is_expired(now, session.created_at, last)
                });
        if !alive {
            return Err(ServiceError::InvalidSession);
        }
        session.last_activity = now;
        Ok(Caller { session, user })
    }

    // ----- the legacy operations -----

    pub fn get_session(
        &self,
        user_id: &str,
        password: &Password,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        self.open_with_password(user_id, password, ClientType::standard(), None, ctx)
    }

    pub fn get_bw_session(
        &self,
        user_id: &str,
        password: &Password,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        self.open_with_password(user_id, password, ClientType::bw(), None, ctx)
    }

    /// `true` when a stored session was removed; an unknown ID is `false`, not a fault.
    pub fn close_session(&self, session_id: &str) -> Result<bool> {
        let Ok(id) = SessionId::parse(session_id) else {
            return Ok(false);
        };
        let mut conn = self.conn()?;
        self.end(&mut conn, &id, EndReason::Closed)
    }

    /// The hot path: one primary-key read, no write. Renewal goes to the activity log.
    pub fn validate_session(&self, session_id: &str) -> Result<bool> {
        let Ok(id) = SessionId::parse(session_id) else {
            return Ok(false);
        };
        let Some((created, stored)) = sessions::find_times(&mut *self.conn()?, id.as_str())? else {
            return Ok(false);
        };
        let now = self.now();
        Ok(self.activity.renew_if(id.as_str(), stored, now, |last| {
            !self.is_expired(now, created, last)
        }))
    }

    pub fn delete_session_id(&self, session_id: &str, target: &str) -> Result<()> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        if !caller.can_update() {
            return Err(ServiceError::AccessDenied);
        }
        let target = SessionId::parse(target).map_err(|_| ServiceError::SessionNotFound)?;
        if self.end(&mut conn, &target, EndReason::Deleted)? {
            Ok(())
        } else {
            Err(ServiceError::SessionNotFound)
        }
    }

    pub fn delete_expired_session_ids(&self, session_id: &str) -> Result<usize> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        if !caller.can_update() {
            return Err(ServiceError::AccessDenied);
        }
        self.remove_expired()
    }

    pub fn get_expired_session_ids(&self, session_id: &str) -> Result<SessionPages> {
        self.legacy_list(session_id, State::Expired)
    }

    pub fn list_active_session_ids(&self, session_id: &str) -> Result<SessionPages> {
        self.legacy_list(session_id, State::Active)
    }

    fn legacy_list(&self, session_id: &str, state: State) -> Result<SessionPages> {
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

    // ----- the extended operations -----

    pub fn start_session(
        &self,
        user_id: &str,
        password: &Password,
        client_type: Option<&str>,
        client_name: Option<&str>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        let client_type = match client_type {
            Some(t) => {
                ClientType::parse(t).map_err(|e| ServiceError::InvalidRequest(e.to_string()))?
            }
            None => ClientType::standard(),
        };
        let client_name = client_name.map(check_client_name).transpose()?;
        self.open_with_password(user_id, password, client_type, client_name, ctx)
    }

    pub fn get_sessions(&self, session_id: &str, filter: &SessionFilter) -> Result<SessionPages> {
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
        let filters = sessions::Filters {
            session_id: filter.session_id.clone(),
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
        pages.after = rows.last().map(|r| (r.created_at, r.session_id.clone()));
        Ok(rows
            .into_iter()
            .map(|r| self.view(r, Some(&pages.caller)))
            .collect())
    }

    pub fn get_session_info(&self, session_id: &str, target: &str) -> Result<SessionView> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        let view = self.find_any(&mut conn, target, &caller.session.session_id)?;
        if view.user_id != caller.user.user_id && !caller.can_view() {
            return Err(ServiceError::AccessDenied);
        }
        Ok(view)
    }

    pub fn get_session_user(&self, session_id: &str, target: &str) -> Result<String> {
        self.get_session_info(session_id, target).map(|v| v.user_id)
    }

    pub fn get_current_session(&self, session_id: &str) -> Result<SessionView> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        let current = caller.session.session_id.clone();
        Ok(self.view(caller.session, Some(&current)))
    }

    /// A keep-alive: renews and returns the new expiration time. Never revives an ended session.
    pub fn extend_session(&self, session_id: &str) -> Result<NaiveDateTime> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        Ok(self.expires_at(caller.session.created_at, caller.session.last_activity))
    }

    /// Re-checks the password of the session's user; a wrong one counts toward the lock-out.
    pub fn confirm_id(&self, session_id: &str, password: &Password) -> Result<bool> {
        let caller = self.authenticate(&mut *self.conn()?, session_id)?;
        match self.check_password(&caller.user.user_id, password) {
            Ok(_) => Ok(true),
            Err(ServiceError::AuthenticationFailed) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn open_clientless_session(
        &self,
        session_id: &str,
        user_id: &str,
        client_name: Option<&str>,
        ctx: &CallContext,
    ) -> Result<String> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        if !caller.is_admin_without_department() {
            return Err(ServiceError::AccessDenied);
        }
        let no_user = || ServiceError::InvalidRequest(format!("no enabled user '{user_id}'"));
        let user_id = UserId::parse(user_id).map_err(|_| no_user())?;
        let user = users::find(&mut conn, user_id.as_str())?.ok_or_else(no_user)?;
        if user.disabled {
            return Err(no_user());
        }
        let client_name = client_name.map(check_client_name).transpose()?;
        let row = self.new_session(
            &user.user_id,
            ClientType::clientless(),
            client_name,
            ctx,
            Some(caller.user.user_id.clone()),
        )?;
        sessions::insert(&mut conn, &row)?;
        log::info!(
            "clientless session {} opened for {} by {}",
            crate::domain::redact(&row.session_id),
            row.user_id,
            caller.user.user_id
        );
        Ok(row.session_id)
    }

    pub fn close_clientless_session(&self, session_id: &str, target: &str) -> Result<bool> {
        let mut conn = self.conn()?;
        let caller = self.authenticate(&mut conn, session_id)?;
        let Ok(target) = SessionId::parse(target) else {
            return Ok(false);
        };
        let Some(row) = sessions::find(&mut conn, target.as_str())? else {
            return Ok(false);
        };
        if row.client_type != ClientType::CLIENTLESS {
            return Err(ServiceError::InvalidRequest(
                "the target is not a clientless session".into(),
            ));
        }
        let opener = row.created_by.as_deref() == Some(caller.user.user_id.as_str());
        if !opener && !caller.is_admin_without_department() {
            return Err(ServiceError::AccessDenied);
        }
        self.end(&mut conn, &target, EndReason::Closed)
    }

    // ----- maintenance, also run by the background tasks and the CLI -----

    /// Stores the renewals this instance holds in memory.
    pub fn store_pending_activity(&self) -> Result<()> {
        if self.activity.is_empty() {
            return Ok(());
        }
        self.store_pending_on(&mut *self.conn()?)
    }

    fn store_pending_on(&self, conn: &mut DbConnection) -> Result<()> {
        let mut renewals = self.activity.take();
        // Rows are locked in ID order, as any other writer would meet them: two instances
        // storing overlapping renewals cannot deadlock on each other.
        renewals.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if renewals.is_empty() {
            return Ok(());
        }
        let stored = sessions::store_activity(conn, &renewals);
        if stored.is_err() {
            self.activity.restore(renewals);
        }
        Ok(stored?)
    }

    /// Ends every expired session (reason `expired`, end time its expiration time); returns
    /// how many this call ended.
    pub fn remove_expired(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        self.store_pending_on(&mut conn)?;
        let cutoffs = self.cutoffs(self.now());
        let mut passes = vec![sessions::Expiry::Idle(cutoffs.idle)];
        passes.extend(cutoffs.lifetime.map(sessions::Expiry::Lifetime));
        let mut total = 0;
        for expiry in passes {
            let mut after = None;
            loop {
                let (next, ended) = sessions::end_expired_batch(
                    &mut conn,
                    expiry,
                    after.as_ref(),
                    EXPIRED_BATCH,
                    EndReason::Expired.as_str(),
                    |row| self.expires_at(row.created_at, row.last_activity),
                )?;
                total += ended;
                match next {
                    Some(key) => after = Some(key),
                    None => break,
                }
                // A breath between batches: SQLite hands the write lock to no one in
                // particular, and back-to-back batches kept the activity store and logins
                // waiting past the busy timeout during a million-row removal.
                std::thread::sleep(BATCH_PAUSE);
            }
        }
        if total > 0 {
            log::info!("removed {total} expired sessions");
        }
        Ok(total)
    }

    /// Drops history records older than the retention period.
    pub fn purge_history(&self) -> Result<usize> {
        let cutoff = self.now() - chrono_duration(self.settings.history_retention);
        Ok(history::purge_ended_before(&mut *self.conn()?, cutoff)?)
    }

    // ----- shared steps -----

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
        pages.caller = caller.session.session_id.clone();
        pages.nil_terminated = !caller.is_bw();
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
            nil_terminated: false,
        }
    }

    /// A session by ID, stored or ended.
    fn find_any(&self, conn: &mut DbConnection, target: &str, caller: &str) -> Result<SessionView> {
        let id = SessionId::parse(target).map_err(|_| ServiceError::SessionNotFound)?;
        if let Some(row) = sessions::find(conn, id.as_str())? {
            return Ok(self.view(row, Some(caller)));
        }
        match history::find(conn, id.as_str())? {
            Some(row) => Ok(self.view_ended(row, Some(caller))),
            None => Err(ServiceError::SessionNotFound),
        }
    }

    fn end(&self, conn: &mut DbConnection, id: &SessionId, reason: EndReason) -> Result<bool> {
        self.activity.forget(id.as_str());
        let ended = sessions::end(conn, id.as_str(), reason.as_str(), self.now())?;
        if let Some(record) = &ended {
            log::info!(
                "session {id} of {} ended: {}",
                record.user_id,
                reason.as_str()
            );
        }
        Ok(ended.is_some())
    }

    /// Checks a user's password with the lock-out rules; the user on success.
    fn check_password(&self, user_id: &str, password: &Password) -> Result<UserRow> {
        let user = match UserId::parse(user_id) {
            Ok(id) => users::find(&mut *self.conn()?, id.as_str())?,
            Err(_) => None,
        };
        // The connection is back in the pool while Argon2 runs.
        let matches = self
            .passwords
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)?;
        let Some(user) = user else {
            return Err(ServiceError::AuthenticationFailed);
        };
        if user.disabled {
            return Err(ServiceError::AuthenticationFailed);
        }
        let now = self.now();
        if user.locked_until.is_some_and(|until| until > now) {
            return Err(ServiceError::AccountLocked);
        }
        let mut conn = self.conn()?;
        if !matches {
            let lock_until = now + chrono_duration(self.settings.lockout_duration);
            users::record_failure(
                &mut conn,
                &user.user_id,
                self.settings.lockout_threshold,
                lock_until,
            )?;
            log::warn!("failed password check for user {}", user.user_id);
            return Err(ServiceError::AuthenticationFailed);
        }
        if user.failed_logins > 0 || user.locked_until.is_some() {
            users::clear_failures(&mut conn, &user.user_id)?;
        }
        Ok(user)
    }

    fn open_with_password(
        &self,
        user_id: &str,
        password: &Password,
        client_type: ClientType,
        client_name: Option<String>,
        ctx: &CallContext,
    ) -> Result<SessionView> {
        let checked = self.check_password(user_id, password);
        self.login_counts.record(self.now(), checked.is_ok());
        let user = checked?;
        // The legacy server removed every expired session on each login; clients rely on it.
        self.remove_expired()?;
        let row = self.new_session(&user.user_id, client_type, client_name, ctx, None)?;
        sessions::insert(&mut *self.conn()?, &row)?;
        log::info!(
            "session {} opened for {} ({})",
            crate::domain::redact(&row.session_id),
            row.user_id,
            row.client_type
        );
        let current = row.session_id.clone();
        Ok(self.view(row, Some(&current)))
    }

    fn new_session(
        &self,
        user_id: &str,
        client_type: ClientType,
        client_name: Option<String>,
        ctx: &CallContext,
        created_by: Option<String>,
    ) -> Result<SessionRow> {
        let id = SessionId::generate().map_err(|e| {
            log::error!("{e}");
            ServiceError::Internal
        })?;
        let now = self.now();
        Ok(SessionRow {
            session_id: id.as_str().to_owned(),
            user_id: user_id.to_owned(),
            client_type: client_type.as_str().to_owned(),
            client_name,
            host: ctx.host.clone(),
            location: self.settings.location.clone(),
            created_at: now,
            last_activity: now,
            created_by,
        })
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn check_client_name(name: &str) -> Result<String> {
    if name.chars().count() > 256 || name.chars().any(char::is_control) {
        return Err(ServiceError::InvalidRequest(
            "clientName must be at most 256 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn non_negative(name: &str, value: Option<i32>) -> Result<Option<i64>> {
    match value {
        Some(v) if v < 0 => Err(ServiceError::InvalidRequest(format!(
            "{name} must not be negative"
        ))),
        v => Ok(v.map(i64::from)),
    }
}
