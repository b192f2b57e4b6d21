//! The operations and the rules of docs/behaviour.md §§2 to 4, with typed doors: callers hand in
//! domain values parsed at the edge and get back plain values or a [`ServiceError`] kind. No XML
//! and no HTTP here, and no configuration: the [`Settings`] are handed in.
//!
//! Everything here blocks (database, Argon2); the HTTP layer runs it on blocking threads,
//! except what [`SessionService::validate_is_cheap`] says may run inline.
//!
//! One [`SessionService`] holds the state every area shares (this file: the store, the clock,
//! the settings, the cache, the metrics); each area adds its methods to it in its own module:
//!
//! | Area | Module | What it holds |
//! |---|---|---|
//! | logins and callers | `logins/` | getSession, getBWSession, startSession, confirmId, the clientless operations; `auth` (callers, rights, the login gate), `opening` (a new session within its user's cap) |
//! | who a user is | `identity/` | whether a password is right: lock-out, the equal-cost path, Argon2id (`local`), the directory (`directory/`, `sync`) |
//! | sessions and listings | `sessions/` | validateSession (the hot path), closeSession, deleteSessionId, deleteExpiredSessionIds, getSessionInfo, getSessionUser, getCurrentSession, extendSession, ending a session; `view` (a session as clients see it, handles), `listing` (array results in pages), `expiry` (deadlines, removal, history purge), `policy` (ending many at once, new passwords), `handles` (the keys) |
//! | administration | `admin.rs` | the CLI's verbs: users, rights, sessions |
//! | console | `console/` | what the admin console sees and does; `login_stats` (its chart) |
//! | health | `health.rs` | readiness, the pool, the active-session count |
//! | the core | this file, `error`, `clock`, `cache/`, `revocation` | the shared state; the kinds a caller can act on; time; sessions seen valid and their renewals in memory; following the log of ended sessions |

mod admin;
pub mod cache;
pub mod clock;
pub mod console;
mod error;
mod health;
pub mod identity;
mod logins;
mod revocation;
mod sessions;
/// Listed handles, public for the fuzz target (fuzz/fuzz_targets/handles.rs).
pub use sessions::handles;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::domain::{LimitPolicy, ListedIds};
use crate::store::sessions::SessionRow;
use crate::store::{Conn, Store};
use crate::telemetry::Telemetry;

pub use admin::{NewAdmin, UserSummary};
use cache::SessionCache;
use clock::Clock;
pub use error::{Result, ServiceError};
use identity::local::Passwords;
use identity::lockout::UnknownNames;
use logins::auth::LoginGate;
pub use logins::auth::LoginTurn;
pub use sessions::listing::{ArrayDialect, SessionFilter, SessionPages};
pub use sessions::view::SessionView;

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
    login_counts: console::login_stats::LoginStats,
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
