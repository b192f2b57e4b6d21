//! The operations and the rules of docs/behaviour.md §§2 to 4, with typed doors: callers hand in
//! domain values parsed at the edge and get back plain values or a [`ServiceError`] kind. No XML
//! and no HTTP here, and no configuration: the [`Settings`] are handed in.
//!
//! Everything here blocks (database, Argon2); the HTTP layer runs it on blocking threads,
//! except what [`SessionService::validate_is_cheap`] says may run inline.
//!
//! The rooms: `error` (the kinds and what is logged vs shown), `auth` (callers, rights,
//! the login gate), `identity` (who a user is and whether a password is right: lock-out,
//! Argon2id, the directory), `listing` (filters, pages), `expiry`
//! (deadlines, pending activity, removal, history purge), `cache` (sessions seen valid and
//! their renewals, in memory), `revocation` (following the log of ended sessions),
//! `policy` (ending many sessions at once, the
//! rule for new passwords), `view` (a session as clients see it), `admin` (the
//! CLI's verbs), `console` (what the admin console sees and does), `login_stats` (logins per
//! minute for its chart), `clock`.

mod admin;
pub mod auth;
pub mod cache;
pub mod clock;
pub mod console;
mod error;
mod expiry;
mod handles;
mod health;
pub mod identity;
mod listing;
pub mod login_stats;
mod opening;
mod policy;
mod revocation;
mod view;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::domain::{
    redact, ClientName, ClientType, EndReason, LimitPolicy, ListedIds, Password, SessionId, UserId,
};
use crate::store::accounts::{self, Opened};
use crate::store::sessions::{self, SessionRecord, SessionRow};
use crate::store::users;
use crate::store::{Conn, DbConnection, Store};
use crate::telemetry::{Telemetry, SECURITY};

pub use admin::{NewAdmin, UserSummary};
use auth::LoginGate;
pub use auth::LoginTurn;
use cache::SessionCache;
use clock::Clock;
pub use error::{Result, ServiceError};
use identity::local::Passwords;
use identity::lockout::UnknownNames;
pub use listing::{ArrayDialect, SessionFilter, SessionPages};
pub use view::SessionView;

/// The rules' parameters, handed in by whoever builds the service (startup, from the config).
#[derive(Debug, Clone)]
pub struct Settings {
    pub session_timeout: Duration,
    pub session_max_lifetime: Option<Duration>,
    pub location: String,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    /// Fewest characters (not bytes) a new password may have; stored ones are not judged.
    pub password_min_length: usize,
    pub history_retention: Duration,
    /// Hashing threads; the login gate lets twice as many checks in, to keep them fed.
    pub hash_concurrency: usize,
    /// How long a login waits for its turn at the password check.
    pub login_wait: Duration,
    /// Rows per page of an array result: a listing of 100k sessions is read and sent a page
    /// at a time, never held whole.
    pub page_rows: i64,
    /// Most active sessions one user may have (docs/behaviour.md §7); `None`: no cap.
    pub max_sessions_per_user: Option<u32>,
    /// What a login does when its user is at the cap.
    pub session_limit_policy: LimitPolicy,
    /// Sessions held in memory (see `cache`).
    pub cache_capacity: usize,
    /// What listings and details show of a session: its ID or a handle (see `handles`).
    pub listed_ids: ListedIds,
    /// Where users not in the users table are looked up; `None`: local users only.
    pub directory: Option<identity::directory::DirectorySettings>,
}

/// What the transport knows about a call that the rules need.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// The caller's address.
    pub host: Option<String>,
}

pub struct SessionService {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// Sessions seen valid and the renewals not yet stored.
    cache: SessionCache,
    /// Where the revocation reader is in the log of ended sessions.
    revocations: std::sync::Mutex<revocation::Position>,
    passwords: Passwords,
    logins: LoginGate,
    /// Where logins, ended sessions and activity flushes are counted.
    telemetry: Arc<Telemetry>,
    unknown_names: UnknownNames,
    login_counts: login_stats::LoginStats,
    /// The keys of listed handles and console CSRF tokens, read from the database when first
    /// needed (a start with the database down still serves what needs none).
    keys: std::sync::OnceLock<Arc<handles::Keys>>,
    /// The directory, when one is configured.
    directory: Option<identity::directory::Directory>,
}

impl SessionService {
    /// The directory's settings, when one is configured: startup names it in the log and
    /// schedules its sync.
    pub fn directory_settings(&self) -> Option<&identity::directory::DirectorySettings> {
        self.settings.directory.as_ref()
    }

    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        settings: Settings,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self> {
        let passwords = Passwords::new(settings.hash_concurrency)?;
        // Enough checks in flight to keep the hashing threads fed, and no more.
        let logins = LoginGate::new(settings.hash_concurrency.max(1) * 2, settings.login_wait);
        let directory = match &settings.directory {
            Some(d) => Some(
                identity::directory::Directory::new(d.clone(), telemetry.clone())
                    .map_err(|e| ServiceError::invalid(format!("directory: {e}")))?,
            ),
            None => None,
        };
        Ok(Self {
            directory,
            store,
            clock,
            cache: SessionCache::new(settings.cache_capacity),
            settings,
            revocations: Default::default(),
            passwords,
            logins,
            telemetry,
            unknown_names: UnknownNames::default(),
            login_counts: Default::default(),
            keys: std::sync::OnceLock::new(),
        })
    }

    /// The metrics this service counts into, for the HTTP layer to count requests beside.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.telemetry.clone()
    }

    /// Sessions held in memory now (seen valid, or with a renewal to store).
    pub fn cached_sessions(&self) -> usize {
        self.cache.len()
    }

    /// Whether validateSession is cheap enough to answer on the caller's own (async) thread:
    /// true when the store reads in-process (SQLite, microseconds); false when a read is a
    /// network round trip that would hold up everything else on that thread.
    pub fn validate_is_cheap(&self) -> bool {
        self.store.reads_in_process()
    }

    fn conn(&self) -> Result<Conn> {
        Ok(self.store.conn()?)
    }

    fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    /// The shared keys, made and stored by the first instance that needs them.
    fn keys(&self) -> Result<Arc<handles::Keys>> {
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

    // ----- the legacy operations -----

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

    // ----- the extended operations -----

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

    // ----- shared steps -----

    fn end(&self, conn: &mut DbConnection, id: &SessionId, reason: EndReason) -> Result<bool> {
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

    /// What every end path records as a session's last activity: the stored one or the later
    /// renewal still pending here (docs/behaviour.md §3: the history shows what the client was last
    /// told).
    pub(crate) fn latest_activity(&self) -> impl Fn(&SessionRow) -> NaiveDateTime + '_ {
        |row| self.cache.latest(&row.record.session_id, row.last_activity)
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}
