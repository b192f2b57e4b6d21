//! The directory (LDAP or Active Directory) as an authority on passwords: search with the
//! service account, then a simple bind as the entry found, then the groups that give rights.
//!
//! The client is `ldap3` (async, rustls with ring) on a small runtime of its own, so the rest
//! of sessiond stays blocking code: a caller hands a job to that runtime and waits for its
//! answer, with no database connection held (see `identity`). Every connect and every
//! operation is bounded by the directory timeout; the URLs are tried in order and one that
//! failed is skipped for a while (`connect.rs`), so a dead or frozen directory costs one login
//! a timeout and the following ones nothing until it is tried again.
//!
//! The submodules: `connect` (URLs, TLS, the pool of searching connections), `membership`
//! (groups compared as DNs, nesting).

mod connect;
mod membership;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{ldap_escape, Scope, SearchEntry};

use crate::domain::Right;
use crate::telemetry::Telemetry;
use connect::Servers;

/// The directory's settings, handed in by whoever builds the service (startup, from the
/// config): the service never reads the config itself.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// `ldap://` or `ldaps://` URLs, tried in order.
    pub urls: Vec<String>,
    pub starttls: bool,
    /// PEM file of the CAs to trust; `None`: the system's.
    pub ca_file: Option<PathBuf>,
    /// The service account and its password; `None`: anonymous search.
    pub bind: Option<(String, String)>,
    pub user_base: String,
    /// With `{user}` where the escaped user ID goes.
    pub user_filter: String,
    pub department_attribute: Option<String>,
    pub admin_groups: Vec<String>,
    pub update_groups: Vec<String>,
    pub view_groups: Vec<String>,
    pub nested_groups: bool,
    /// Connecting, and each operation.
    pub timeout: Duration,
    /// How often directory users with live sessions are checked again.
    pub sync_interval: Duration,
}

impl DirectorySettings {
    /// The URLs that send passwords in clear (plain `ldap://` without StartTLS), for the start
    /// line and `directory check` to warn about.
    pub fn clear_text_urls(&self) -> Vec<&str> {
        if self.starttls {
            return Vec::new();
        }
        self.urls
            .iter()
            .filter(|u| u.to_ascii_lowercase().starts_with("ldap://"))
            .map(String::as_str)
            .collect()
    }
}

/// Why the directory could not answer: the login is `SERVICE_UNAVAILABLE`, never counted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// No server answered in time, or none could be reached.
    #[error("directory unreachable: {0}")]
    Unreachable(String),
    /// A server answered with an error that is not about the user (the service account
    /// refused, the user base missing, a server busy).
    #[error("directory error: {0}")]
    Failed(String),
}

/// A user's entry as read: what sessiond stores of a directory user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub department: Option<String>,
    /// The configured groups the entry is a member of.
    pub groups: Vec<String>,
    pub rights: Vec<Right>,
    /// Disabled there (Active Directory: `userAccountControl` bit 2; 389/Red Hat:
    /// `nsAccountLock`).
    pub disabled: bool,
    /// Locked there (OpenLDAP: `pwdAccountLockedTime`; Active Directory: the lockout flag of
    /// `msDS-User-Account-Control-Computed`).
    pub locked: bool,
}

/// What a search for a user ID came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    NoEntry,
    /// More than one entry matched: the filter is too loose, and none is taken.
    Several(usize),
    One(Entry),
}

/// The answer to "is this the password of this user ID".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted(Entry),
    NoEntry,
    Several(usize),
    DisabledThere(Entry),
    LockedThere(Entry),
    WrongPassword(Entry),
}

/// The attributes read with a user's entry besides the department.
const STATE_ATTRIBUTES: &[&str] = &[
    "memberOf",
    "userAccountControl",
    "msDS-User-Account-Control-Computed",
    "pwdAccountLockedTime",
    "nsAccountLock",
];
/// Active Directory's `userAccountControl` flag for a disabled account.
const ACCOUNTDISABLE: u32 = 2;
/// Active Directory's flag for a locked account, in the computed
/// `msDS-User-Account-Control-Computed` (`lockoutTime` stays set after the lock has run out
/// until the next logon, so it cannot be read alone).
const UF_LOCKOUT: u32 = 0x10;

/// The directory: its settings, its servers and the runtime its client runs on.
pub struct Directory {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    settings: DirectorySettings,
    servers: Servers,
    telemetry: Arc<Telemetry>,
}

impl Directory {
    /// Reads the CA file (if any) and starts the client's runtime; connects to nothing yet.
    pub fn new(settings: DirectorySettings, telemetry: Arc<Telemetry>) -> Result<Self, String> {
        let servers = Servers::new(&settings)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sessiond-ldap")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the directory client: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                servers,
                telemetry,
            }),
            runtime: Some(runtime),
        })
    }

    pub fn settings(&self) -> &DirectorySettings {
        &self.inner.settings
    }

    /// Runs a job on the client's runtime and waits for it, on the caller's own thread. The
    /// job bounds itself (every step has the timeout), so the wait ends.
    fn run<T, F>(&self, job: impl FnOnce(Arc<Inner>) -> F) -> Result<T, DirectoryError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, DirectoryError>> + Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| DirectoryError::Failed("the directory client has stopped".into()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let future = job(self.inner.clone());
        runtime.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv()
            .map_err(|_| DirectoryError::Failed("the directory client has stopped".into()))?
    }

    /// Search-then-bind: the entry for `user_id`, then a bind as it with `password`. A
    /// disabled or locked entry is refused before the bind, so the log can say why.
    pub fn check(&self, user_id: &str, password: &str) -> Result<Answer, DirectoryError> {
        let (user_id, password) = (user_id.to_owned(), password.to_owned());
        self.run(move |inner| async move {
            let entry = match inner.find(&user_id).await? {
                Found::NoEntry => return Ok(Answer::NoEntry),
                Found::Several(n) => return Ok(Answer::Several(n)),
                Found::One(entry) => entry,
            };
            if entry.disabled {
                return Ok(Answer::DisabledThere(entry));
            }
            if entry.locked {
                return Ok(Answer::LockedThere(entry));
            }
            if inner
                .servers
                .user_bind(&inner, &entry.dn, &password)
                .await?
            {
                Ok(Answer::Accepted(entry))
            } else {
                Ok(Answer::WrongPassword(entry))
            }
        })
    }

    /// The entry for `user_id`, as a login would find it: for the sync and `directory check`.
    pub fn find(&self, user_id: &str) -> Result<Found, DirectoryError> {
        let user_id = user_id.to_owned();
        self.run(move |inner| async move { inner.find(&user_id).await })
    }
}

impl Drop for Directory {
    fn drop(&mut self) {
        // Without waiting: the service may be dropped on an async thread, where a runtime
        // may not block.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Inner {
    /// Counts one directory request by operation and result, with its latency.
    fn observe<T>(&self, operation: &str, started: Instant, result: &Result<T, DirectoryError>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(DirectoryError::Unreachable(_)) => "unreachable",
            Err(DirectoryError::Failed(_)) => "error",
        };
        self.count(operation, outcome, started);
    }

    fn count(&self, operation: &str, outcome: &str, started: Instant) {
        let m = &self.telemetry.metrics;
        m.directory_requests_total
            .with_label_values(&[operation, outcome])
            .inc();
        m.directory_request_duration_seconds
            .with_label_values(&[operation])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The search of a login: the filter with the escaped ID, under the user base.
    async fn find(&self, user_id: &str) -> Result<Found, DirectoryError> {
        let s = &self.settings;
        // RFC 4515: `*`, `(`, `)`, `\` and NUL escaped, so the ID is a value and nothing more.
        let filter = s.user_filter.replace("{user}", &ldap_escape(user_id));
        let mut attributes: Vec<&str> = STATE_ATTRIBUTES.to_vec();
        if let Some(department) = &s.department_attribute {
            attributes.push(department);
        }
        let mut ticket = self.servers.searcher(self).await?;
        let started = Instant::now();
        let found = ticket
            .search(self, &s.user_base, Scope::Subtree, &filter, &attributes, 2)
            .await;
        self.observe("search", started, &found);
        let entries = found?;
        let entry = match entries.len() {
            0 => return Ok(Found::NoEntry),
            1 => entries.into_iter().next().expect("one entry"),
            n => return Ok(Found::Several(n)),
        };
        let department = s
            .department_attribute
            .as_deref()
            .and_then(|a| first(&entry, a))
            .map(str::to_owned);
        let (disabled, locked) = state_of(&entry);
        let groups = membership::groups_of(self, &mut ticket, &entry).await?;
        ticket.give_back();
        let rights = Right::ALL
            .into_iter()
            .filter(|right| {
                let granting = match right {
                    Right::Administrator => &s.admin_groups,
                    Right::UpdateSession => &s.update_groups,
                    Right::ViewSession => &s.view_groups,
                };
                granting
                    .iter()
                    .any(|g| groups.iter().any(|m| membership::same_dn(g, m)))
            })
            .collect();
        Ok(Found::One(Entry {
            dn: entry.dn,
            department,
            groups,
            rights,
            disabled,
            locked,
        }))
    }
}

/// Whether an entry is disabled, and whether it is locked, in the directory's own terms.
fn state_of(entry: &SearchEntry) -> (bool, bool) {
    let flags = |attribute| {
        first(entry, attribute)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    let disabled = flags("userAccountControl") & ACCOUNTDISABLE != 0
        || first(entry, "nsAccountLock").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let locked = first(entry, "pwdAccountLockedTime").is_some()
        || flags("msDS-User-Account-Control-Computed") & UF_LOCKOUT != 0;
    (disabled, locked)
}

/// The first value of an attribute, its name compared as LDAP does (case-insensitively).
fn first<'a>(entry: &'a SearchEntry, attribute: &'a str) -> Option<&'a str> {
    values(entry, attribute).next()
}

fn values<'a>(entry: &'a SearchEntry, attribute: &'a str) -> impl Iterator<Item = &'a str> {
    entry
        .attrs
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, v)| v.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[(&str, &str)]) -> SearchEntry {
        SearchEntry {
            dn: "uid=x,dc=example,dc=org".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                .collect(),
            bin_attrs: Default::default(),
        }
    }

    #[test]
    fn active_directory_flags_say_disabled_and_locked() {
        assert_eq!(
            state_of(&entry(&[("userAccountControl", "512")])),
            (false, false)
        );
        assert_eq!(
            state_of(&entry(&[("userAccountControl", "514")])),
            (true, false)
        );
        assert_eq!(
            state_of(&entry(&[("msDS-User-Account-Control-Computed", "16")])),
            (false, true)
        );
        // A lockoutTime left from a lock that has run out locks no one.
        assert_eq!(
            state_of(&entry(&[("lockoutTime", "133000000000000000")])),
            (false, false)
        );
    }

    #[test]
    fn openldap_and_389_attributes_say_locked_and_disabled() {
        assert_eq!(
            state_of(&entry(&[("pwdAccountLockedTime", "20261207010000Z")])),
            (false, true)
        );
        assert_eq!(
            state_of(&entry(&[("nsAccountLock", "TRUE")])),
            (true, false)
        );
        assert_eq!(
            state_of(&entry(&[("useraccountcontrol", "2")])),
            (true, false)
        );
    }
}
