//! Settings: defaults, then an optional TOML file, then the environment, which wins. The file
//! (the one given, else `SESSIOND_CONFIG`, else `./sessiond.toml` if present) and the
//! environment are merged into one TOML table, which serde reads once into a struct that refuses
//! unknown keys; each value is then checked against its range. Errors name the variable, or the
//! key and the file, the value came from.
//!
//! Every setting is declared once, in [`config_settings!`](crate::config_settings): the
//! [`Config`] fields, their defaults, reading, ranges, [`SETTINGS`] (which `sessiond --help`
//! prints) and this list all come from it. The TOML key is the variable in lower case without
//! `SESSIOND_`; durations are written like `90s`, `30m`, `2h`, `30d`.
//! How a value is read and checked lives in `read`; how the settings are printed in `text`;
//! the tests of it all in `tests`.
//!
#![doc = crate::config_settings!(crate::config_doc_list)]

mod read;
mod text;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{DatabaseUrl, LimitPolicy, ListedIds, LogFormat};
use read::*;
pub use text::{example, help, is_secret, mask};
use text::{in_words, show_duration, show_value};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sessiond.db";
pub const DEFAULT_CONFIG_FILE: &str = "sessiond.toml";
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_ACTIVITY_LAG: Duration = Duration::from_secs(1);
pub const DEFAULT_REVOCATION_LAG: Duration = Duration::from_millis(100);
pub const DEFAULT_CACHE_CAPACITY: usize = 200_000;
pub const DEFAULT_ENDPOINT_PATH: &str = "/services/SessionService";
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;
pub const DEFAULT_LIST_PAGE_SIZE: u32 = 500;
pub const DEFAULT_LOCKOUT_THRESHOLD: u32 = 5;
pub const DEFAULT_LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_PASSWORD_MIN_LENGTH: usize = 8;
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Enough connections for the concurrency a busy instance sees (64 clients in the benchmark):
/// with 8, PostgreSQL validate calls queued for a connection for up to 5.6 s and `32` cut that
/// to 227 ms with 18 % more req/s (docs/performance.md). Connections open only when used
/// (`min_idle` 0), so a quiet instance holds few; several PostgreSQL instances must keep
/// instances × pool size under `max_connections` (100 by default).
pub const DEFAULT_DB_POOL_SIZE: u32 = 32;
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_LOGIN_WAIT: Duration = Duration::from_secs(5);
pub const DEFAULT_ADMIN_PASSWORD_FILE: &str = "sessiond-admin-password.txt";
pub const DEFAULT_LOCATION: &str = "sessiond";
pub const DEFAULT_CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(60);
/// A year: what browsers are told to remember HTTPS for the console.
pub const DEFAULT_CONSOLE_HSTS: Duration = Duration::from_secs(365 * 24 * 3600);
pub const DEFAULT_CONSOLE_PATH: &str = "/admin/";
pub const DEFAULT_LDAP_USER_FILTER: &str = "(uid={user})";
pub const DEFAULT_LDAP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_LDAP_SYNC_INTERVAL: Duration = Duration::from_secs(5 * 60);

const ENV_PREFIX: &str = "SESSIOND_";
/// The variable naming the TOML file; not a setting itself.
pub const CONFIG_FILE_VAR: &str = "SESSIOND_CONFIG";

/// The one list of settings. Each row: the meaning (one line), the [`Config`] field, its type and
/// default; the TOML key, the variable, the default as `--help` shows it; how it is read
/// ([`Text`], [`Number`], [`Dur`], [`OptionalDur`], [`List`]), its range if it has one, and the
/// function that turns what was read into the field's type.
///
/// It hands the rows to the macro named in its argument, so the same rows make the struct (here)
/// and the module's documentation (which must be built before any item of the module exists).
#[doc(hidden)]
#[macro_export]
macro_rules! config_settings {
    ($($then:tt)*) => { $($then)*! {
        /// sqlite://PATH or postgres://user@host/db; a bare path is SQLite
        database: DatabaseUrl = DatabaseUrl::parse(DEFAULT_DATABASE_URL).expect("default URL");
            key "database_url", env "DATABASE_URL", shown "sqlite://sessiond.db",
            read Text, then database_url;
        /// address:port to listen on (port 0: any free port)
        bind: SocketAddr = DEFAULT_BIND.parse().expect("default bind address");
            key "bind", env "SESSIOND_BIND", shown "127.0.0.1:8080",
            read Text, then bind_address;
        /// idle timeout: a session unused this long expires
        session_timeout: Duration = DEFAULT_SESSION_TIMEOUT;
            key "session_timeout", env "SESSIOND_SESSION_TIMEOUT", shown "30m",
            read Dur, within "1s" to "365d", then duration;
        /// absolute cap on a session's life however busy, or off
        session_max_lifetime: Option<Duration> = None;
            key "session_max_lifetime", env "SESSIOND_SESSION_MAX_LIFETIME", shown "off",
            read OptionalDur, within "1s" to "3650d", then optional_duration;
        /// how far stored last activity may trail the real one; at most a tenth of the timeout
        activity_lag: Duration = DEFAULT_ACTIVITY_LAG;
            key "activity_lag", env "SESSIOND_ACTIVITY_LAG", shown "1s",
            read Dur, within "0s" to "1h", then duration;
        /// how soon a session ended elsewhere (another instance, the CLI) is refused here
        revocation_lag: Duration = DEFAULT_REVOCATION_LAG;
            key "revocation_lag", env "SESSIOND_REVOCATION_LAG", shown "100ms",
            read Dur, within "10ms" to "1s", then duration;
        /// sessions held in memory to answer validateSession without the database
        cache_capacity: usize = DEFAULT_CACHE_CAPACITY;
            key "cache_capacity", env "SESSIOND_CACHE_CAPACITY", shown "200000",
            read Number, within "1" to "100000000", then number;
        /// this instance's name, stored with the sessions it creates
        location: String = default_location();
            key "location", env "SESSIOND_LOCATION", shown "host name",
            read Text, then name;
        /// base URL clients reach us by, used in the served WSDL
        public_url: Option<String> = None;
            key "public_url", env "SESSIOND_PUBLIC_URL", shown "none",
            read Text, then public_url;
        /// where SOAP and the WSDL are served
        endpoint_path: String = DEFAULT_ENDPOINT_PATH.to_owned();
            key "endpoint_path", env "SESSIOND_ENDPOINT_PATH", shown "/services/SessionService",
            read Text, then url_path;
        /// more paths serving the same, comma-separated
        endpoint_aliases: Vec<String> = Vec::new();
            key "endpoint_aliases", env "SESSIOND_ENDPOINT_ALIASES", shown "none",
            read List, then url_paths;
        /// largest request body in bytes
        max_body_size: usize = DEFAULT_MAX_BODY_SIZE;
            key "max_body_size", env "SESSIOND_MAX_BODY_SIZE", shown "1048576",
            read Number, within "1024" to "1073741824", then number;
        /// sessions read per page of an array result (longer ones stream)
        list_page_size: u32 = DEFAULT_LIST_PAGE_SIZE;
            key "list_page_size", env "SESSIOND_LIST_PAGE_SIZE", shown "500",
            read Number, within "1" to "100000", then number;
        /// failed password checks in a row that lock a user (0: never)
        lockout_threshold: u32 = DEFAULT_LOCKOUT_THRESHOLD;
            key "lockout_threshold", env "SESSIOND_LOCKOUT_THRESHOLD", shown "5",
            read Number, within "0" to "1000", then number;
        /// how long a lock-out lasts
        lockout_duration: Duration = DEFAULT_LOCKOUT_DURATION;
            key "lockout_duration", env "SESSIOND_LOCKOUT_DURATION", shown "15m",
            read Dur, within "1s" to "365d", then duration;
        /// most active sessions one user may have, or off
        max_sessions_per_user: Option<u32> = None;
            key "max_sessions_per_user", env "SESSIOND_MAX_SESSIONS_PER_USER", shown "off",
            read OptionalNumber, within "1" to "1000000", then optional_number;
        /// at the cap: deny (SESSION_LIMIT_REACHED) or evict-oldest (the least recently active ends)
        session_limit_policy: LimitPolicy = LimitPolicy::Deny;
            key "session_limit_policy", env "SESSIOND_SESSION_LIMIT_POLICY", shown "deny",
            read Text, then limit_policy;
        /// what listings show of a session: legacy (its ID, a bearer secret) or handles (a handle that authenticates nothing)
        listed_ids: ListedIds = ListedIds::Legacy;
            key "listed_ids", env "SESSIOND_LISTED_IDS", shown "legacy",
            read Text, then listed_ids;
        /// fewest characters a new password may have (older ones still work)
        password_min_length: usize = DEFAULT_PASSWORD_MIN_LENGTH;
            key "password_min_length", env "SESSIOND_PASSWORD_MIN_LENGTH", shown "8",
            read Number, within "1" to "1024", then number;
        /// how long ended sessions stay in the history
        history_retention: Duration = DEFAULT_HISTORY_RETENTION;
            key "history_retention", env "SESSIOND_HISTORY_RETENTION", shown "30d",
            read Dur, within "0s" to "3650d", then duration;
        /// periodic removal of expired sessions, or off (every login removes some too)
        sweep_interval: Option<Duration> = None;
            key "sweep_interval", env "SESSIOND_SWEEP_INTERVAL", shown "off",
            read OptionalDur, within "1s" to "7d", then optional_duration;
        /// database connections
        db_pool_size: u32 = DEFAULT_DB_POOL_SIZE;
            key "db_pool_size", env "SESSIOND_DB_POOL_SIZE", shown "32",
            read Number, within "1" to "1000", then number;
        /// longest wait for a database connection before SERVICE_UNAVAILABLE
        db_timeout: Duration = DEFAULT_DB_TIMEOUT;
            key "db_timeout", env "SESSIOND_DB_TIMEOUT", shown "5s",
            read Dur, within "1ms" to "10m", then duration;
        /// how long a login waits for its turn at the password check before SERVICE_UNAVAILABLE
        login_wait: Duration = DEFAULT_LOGIN_WAIT;
            key "login_wait", env "SESSIOND_LOGIN_WAIT", shown "5s",
            read Dur, within "0s" to "10m", then duration;
        /// password hashes computed at once (Argon2 is slow on purpose)
        hash_concurrency: usize = (cpus() / 2).max(1);
            key "hash_concurrency", env "SESSIOND_HASH_CONCURRENCY", shown "half the cores",
            read Number, within "1" to "1024", then number;
        /// where the first start writes the admin password (mode 0600)
        admin_password_file: PathBuf = PathBuf::from(DEFAULT_ADMIN_PASSWORD_FILE);
            key "admin_password_file", env "SESSIOND_ADMIN_PASSWORD_FILE",
            shown "sessiond-admin-password.txt",
            read Text, then file_path;
        /// proxy addresses whose X-Forwarded-For gives the caller's host, comma-separated
        trusted_proxies: Vec<IpAddr> = Vec::new();
            key "trusted_proxies", env "SESSIOND_TRUSTED_PROXIES", shown "none",
            read List, then ip_addresses;
        /// HTTP worker threads
        workers: usize = cpus();
            key "workers", env "SESSIOND_WORKERS", shown "cores",
            read Number, within "1" to "1024", then number;
        /// address:port for health, metrics and the console, off the SOAP listener (none: on it)
        admin_bind: Option<SocketAddr> = None;
            key "admin_bind", env "SESSIOND_ADMIN_BIND", shown "none",
            read Text, then optional_bind_address;
        /// log format: text, or json (one object a line)
        log_format: LogFormat = LogFormat::Text;
            key "log_format", env "SESSIOND_LOG_FORMAT", shown "text",
            read Text, then log_format;
        /// how long a request's headers, and then its body, may take to arrive (actix: 5s, headers only)
        client_timeout: Duration = DEFAULT_CLIENT_TIMEOUT;
            key "client_timeout", env "SESSIOND_CLIENT_TIMEOUT", shown "10s",
            read Dur, within "100ms" to "10m", then duration;
        /// how long an idle keep-alive connection stays open (actix: 5s)
        keepalive: Duration = DEFAULT_KEEPALIVE;
            key "keepalive", env "SESSIOND_KEEPALIVE", shown "60s",
            read Dur, within "1s" to "1h", then duration;
        /// PEM certificate chain, leaf first: with it the listener speaks HTTPS only; SIGHUP rereads it
        tls_cert: Option<PathBuf> = None;
            key "tls_cert", env "SESSIOND_TLS_CERT", shown "none",
            read Text, then optional_file_path;
        /// the certificate's PEM private key (unencrypted); both TLS settings or neither
        tls_key: Option<PathBuf> = None;
            key "tls_key", env "SESSIOND_TLS_KEY", shown "none",
            read Text, then optional_file_path;
        /// Strict-Transport-Security max-age on SOAP answers over TLS, or off
        soap_hsts: Option<Duration> = None;
            key "soap_hsts", env "SESSIOND_SOAP_HSTS", shown "off",
            read OptionalDur, within "1s" to "3650d", then optional_duration;
        /// Strict-Transport-Security max-age on console pages over TLS, or off
        console_hsts: Option<Duration> = Some(DEFAULT_CONSOLE_HSTS);
            key "console_hsts", env "SESSIOND_CONSOLE_HSTS", shown "365d",
            read OptionalDur, within "1s" to "3650d", then optional_duration;
        /// where the admin console is served (a path), or off
        console_path: Option<String> = Some(DEFAULT_CONSOLE_PATH.to_owned());
            key "console_path", env "SESSIOND_CONSOLE_PATH", shown "/admin/",
            read Text, then console_path;
        /// directory URLs (ldap:// or ldaps://), space-separated, tried in order (none: no directory)
        ldap_url: Vec<String> = Vec::new();
            key "ldap_url", env "SESSIOND_LDAP_URL", shown "none",
            read Words, then ldap_urls;
        /// upgrade ldap:// connections with StartTLS before anything is sent
        ldap_starttls: bool = false;
            key "ldap_starttls", env "SESSIOND_LDAP_STARTTLS", shown "false",
            read Flag, then flag;
        /// PEM file of the CAs trusted for ldaps:// and StartTLS (none: the system's)
        ldap_ca_file: Option<PathBuf> = None;
            key "ldap_ca_file", env "SESSIOND_LDAP_CA_FILE", shown "none",
            read Text, then optional_file_or_none;
        /// the directory's service account that searches (none: anonymous search)
        ldap_bind_dn: Option<String> = None;
            key "ldap_bind_dn", env "SESSIOND_LDAP_BIND_DN", shown "none",
            read Text, then optional_text;
        /// file whose first line is the service account's password
        ldap_bind_password_file: Option<PathBuf> = None;
            key "ldap_bind_password_file", env "SESSIOND_LDAP_BIND_PASSWORD_FILE", shown "none",
            read Text, then optional_file_or_none;
        /// where directory users are searched (subtree)
        ldap_user_base: Option<String> = None;
            key "ldap_user_base", env "SESSIOND_LDAP_USER_BASE", shown "none",
            read Text, then optional_text;
        /// the search filter; {user} is the user ID, escaped (Active Directory: (sAMAccountName={user}))
        ldap_user_filter: String = DEFAULT_LDAP_USER_FILTER.to_owned();
            key "ldap_user_filter", env "SESSIOND_LDAP_USER_FILTER", shown "(uid={user})",
            read Text, then user_filter;
        /// the attribute whose first value is a directory user's department (none: no department)
        ldap_department_attribute: Option<String> = None;
            key "ldap_department_attribute", env "SESSIOND_LDAP_DEPARTMENT_ATTRIBUTE", shown "none",
            read Text, then optional_text;
        /// group DNs, separated by ;, whose members hold AdministratorRight
        ldap_admin_groups: Vec<String> = Vec::new();
            key "ldap_admin_groups", env "SESSIOND_LDAP_ADMIN_GROUPS", shown "none",
            read Dns, then dns;
        /// group DNs, separated by ;, whose members hold UpdateSessionRight
        ldap_update_groups: Vec<String> = Vec::new();
            key "ldap_update_groups", env "SESSIOND_LDAP_UPDATE_GROUPS", shown "none",
            read Dns, then dns;
        /// group DNs, separated by ;, whose members hold ViewSessionRight
        ldap_view_groups: Vec<String> = Vec::new();
            key "ldap_view_groups", env "SESSIOND_LDAP_VIEW_GROUPS", shown "none",
            read Dns, then dns;
        /// membership through groups of groups counts too
        ldap_nested_groups: bool = false;
            key "ldap_nested_groups", env "SESSIOND_LDAP_NESTED_GROUPS", shown "false",
            read Flag, then flag;
        /// longest wait for the directory: connecting, and each operation
        ldap_timeout: Duration = DEFAULT_LDAP_TIMEOUT;
            key "ldap_timeout", env "SESSIOND_LDAP_TIMEOUT", shown "5s",
            read Dur, within "10ms" to "5m", then duration;
        /// how often directory users with live sessions are checked again
        ldap_sync_interval: Duration = DEFAULT_LDAP_SYNC_INTERVAL;
            key "ldap_sync_interval", env "SESSIOND_LDAP_SYNC_INTERVAL", shown "5m",
            read Dur, within "1s" to "7d", then duration;
    } };
}

/// The module documentation's list, from the rows of [`config_settings!`].
#[doc(hidden)]
#[macro_export]
macro_rules! config_doc_list {
    ($(
        #[doc = $meaning:literal]
        $field:ident: $ty:ty = $default:expr;
            key $key:literal, env $env:literal, shown $shown:literal,
            read $read:ident $(, within $lo:literal to $hi:literal)?, then $then:ident;
    )*) => {
        concat!($(
            "- `", $env, "` (`", $key, "`, default ", $shown,
            $(", ", $lo, " to ", $hi,)? "):", $meaning, "\n",
        )*)
    };
}

macro_rules! range {
    () => {
        None
    };
    ($lo:literal, $hi:literal) => {
        Some(($lo, $hi))
    };
}

macro_rules! define_settings {
    ($(
        #[doc = $meaning:literal]
        $field:ident: $ty:ty = $default:expr;
            key $key:literal, env $env:literal, shown $shown:literal,
            read $read:ident $(, within $lo:literal to $hi:literal)?, then $then:ident;
    )*) => {
        /// The settings, checked. Build one with [`Config::load`] or [`Config::from_sources`];
        /// tests start from [`Config::default`] and change fields.
        #[derive(Debug, Clone)]
        pub struct Config {
            $(#[doc = $meaning] pub $field: $ty,)*
            /// What was changed from what was asked (a capped value), for the log at start.
            pub notices: Vec<String>,
        }

        impl Default for Config {
            fn default() -> Self {
                Self { $($field: $default,)* notices: Vec::new() }
            }
        }

        /// What serde reads from the merged table: every setting optional, nothing else allowed.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            $(#[serde(rename = $key, default)] $field: Option<$read>,)*
        }

        /// Every setting, for `--help` and the environment.
        pub const SETTINGS: &[Setting] = &[$(Setting {
            key: $key,
            env: $env,
            default: $shown,
            range: range!($($lo, $hi)?),
            meaning: $meaning,
        },)*];

        impl Config {
            /// Each field's value as Rust prints it, by key: what `config check` adds to a
            /// default given in words ("cores (2)").
            fn debug_value(&self, key: &str) -> Option<String> {
                $(if key == $key {
                    return Some(format!("{:?}", self.$field));
                })*
                None
            }

            /// Sets every field that `raw` holds, checked; `origin` names where a key came from.
            fn apply(&mut self, raw: Raw, origin: impl Fn(&str) -> String) -> Result<(), ConfigError> {
                $(if let Some(value) = raw.$field {
                    let invalid = |message| ConfigError::Invalid { setting: origin($key), message };
                    $(value.within($lo, $hi).map_err(invalid)?;)?
                    self.$field = $then(value).map_err(invalid)?;
                })*
                Ok(())
            }
        }
    };
}

crate::config_settings!(define_settings);

/// One setting as `--help` lists it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The TOML key.
    pub key: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// The default as shown to people.
    pub default: &'static str,
    /// The smallest and largest value allowed, as written in a setting.
    pub range: Option<(&'static str, &'static str)>,
    /// One line, as written after `///` in the table (so with a leading space).
    pub meaning: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The host name, so instances are told apart in `location` without any setting.
fn default_location() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_LOCATION.to_owned())
}

/// Where a setting's effective value came from, as `config check` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The TOML file, by its path.
    File(PathBuf),
    /// The environment, by the variable.
    Environment(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Environment(var) => write!(f, "environment {var}"),
        }
    }
}

/// One setting as `config check` prints it: its value as given (secrets masked) or its default
/// as `--help` shows it, and where it came from.
#[derive(Debug, Clone)]
pub struct Effective {
    pub setting: &'static Setting,
    pub value: String,
    pub source: Source,
}

/// What `config check` reports: the file read (if any), every setting, and the config itself
/// with its notices (capped values, misspelt variables).
#[derive(Debug)]
pub struct Checked {
    pub file: Option<PathBuf>,
    pub settings: Vec<Effective>,
    pub config: Config,
}

impl Config {
    /// Reads the file (the given one, `SESSIOND_CONFIG`, or `./sessiond.toml` if it exists) and
    /// the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::check(file).map(|checked| checked.config)
    }

    /// What [`Config::load`] reads, with each setting's value and source: `serve` and
    /// `config check` go through this one function, so the check sees what `serve` would.
    pub fn check(file: Option<&Path>) -> Result<Checked, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match file {
            Some(path) => Some(path.to_owned()),
            None => match env.get(CONFIG_FILE_VAR) {
                Some(path) => Some(PathBuf::from(path)),
                None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
            },
        };
        let text = match &file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let sources = file.as_deref().zip(text.as_deref());
        let (config, settings) = Self::read_sources(sources, &env, true)?;
        Ok(Checked {
            file,
            settings,
            config,
        })
    }

    /// Builds a config from a TOML file's path and text and an environment map: `load` without
    /// the I/O. Other variables in `env` are ignored, but a `SESSIOND_*` one that is no setting
    /// leaves a notice naming the nearest setting.
    pub fn from_sources(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        Self::read_sources(file, env, false).map(|(config, _)| config)
    }

    /// The config, and with `explain` each setting's value and source (for `config check`).
    fn read_sources(
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        explain: bool,
    ) -> Result<(Self, Vec<Effective>), ConfigError> {
        let mut table = toml::Table::new();
        let mut origins: HashMap<String, String> = HashMap::new();
        let mut sources: HashMap<String, Source> = HashMap::new();
        if let Some((path, text)) = file {
            table = text.parse::<toml::Table>().map_err(|e| ConfigError::File {
                path: path.to_owned(),
                message: e.message().to_owned() + &line_of(text, e.span()),
            })?;
            for key in table.keys() {
                origins.insert(key.clone(), format!("{key} in {}", path.display()));
                sources.insert(key.clone(), Source::File(path.to_owned()));
            }
            // `[ldap]` holds the directory's settings without their `ldap_` prefix.
            if let Some(toml::Value::Table(ldap)) = table.remove("ldap") {
                origins.remove("ldap");
                sources.remove("ldap");
                for (key, value) in ldap {
                    let flat = format!("ldap_{key}");
                    origins.insert(flat.clone(), format!("ldap.{key} in {}", path.display()));
                    sources.insert(flat.clone(), Source::File(path.to_owned()));
                    table.insert(flat, value);
                }
            }
        }
        // Environment values are strings; every reader below also accepts a string, so the
        // merged table needs no knowledge of each setting's type.
        for s in SETTINGS {
            if let Some(text) = env.get(s.env) {
                table.insert(s.key.to_owned(), toml::Value::String(text.clone()));
                origins.insert(s.key.to_owned(), s.env.to_owned());
                sources.insert(s.key.to_owned(), Source::Environment(s.env.to_owned()));
            }
        }
        let effective = SETTINGS
            .iter()
            .map(|s| match (table.get(s.key), sources.get(s.key)) {
                (Some(value), Some(source)) => Effective {
                    setting: s,
                    value: mask(s.key, &show_value(value)),
                    source: source.clone(),
                },
                _ => Effective {
                    setting: s,
                    value: s.default.to_owned(),
                    source: Source::Default,
                },
            })
            .collect();
        let raw: Raw =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                let message = if SETTINGS.iter().any(|s| s.key == key) {
                    e.inner().message().to_owned()
                } else {
                    // serde's message lists all the keys; the nearest one helps more.
                    not_a_setting(&key)
                };
                // Only the file can hold a key that is not a setting, and it named them all.
                let setting = origins.get(&key).cloned().unwrap_or(key);
                ConfigError::Invalid { setting, message }
            })?;
        let mut config = Config::default();
        let origin = |key: &str| {
            origins
                .get(key)
                .cloned()
                .unwrap_or_else(|| env_name(key).to_owned())
        };
        config.apply(raw, origin)?;
        config.check_tls_pair(&origin)?;
        config.check_directory()?;
        config.cap_activity_lag(
            &origin("activity_lag"),
            origins.contains_key("activity_lag"),
        );
        config.notices.extend(unknown_variables(env));
        let mut effective: Vec<Effective> = effective;
        let explained = effective.iter_mut().filter(|e| e.source == Source::Default);
        for e in explained.filter(|_| explain) {
            if let Some(value) = in_words(e.setting).then(|| config.debug_value(e.setting.key)) {
                let value = value.unwrap_or_default();
                let value = value.trim_matches('"');
                if !matches!(value, "" | "None" | "[]") {
                    e.value = format!("{} ({value})", e.setting.default);
                }
            }
        }
        Ok((config, effective))
    }

    /// TLS needs both the certificate and its key; one alone names the missing one.
    fn check_tls_pair(&self, origin: &impl Fn(&str) -> String) -> Result<(), ConfigError> {
        let (missing, given) = match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => ("tls_key", "tls_cert"),
            (None, Some(_)) => ("tls_cert", "tls_key"),
            _ => return Ok(()),
        };
        Err(ConfigError::Invalid {
            setting: env_name(missing),
            message: format!("not set, but {} is: TLS needs both", origin(given)),
        })
    }

    /// A directory needs somewhere to search, and a service account's password with its DN.
    fn check_directory(&self) -> Result<(), ConfigError> {
        if self.ldap_url.is_empty() {
            return Ok(());
        }
        let missing = |setting: &str, message: &str| ConfigError::Invalid {
            setting: env_name(setting),
            message: message.to_owned(),
        };
        if self.ldap_user_base.is_none() {
            return Err(missing(
                "ldap_user_base",
                "not set, but SESSIOND_LDAP_URL is: the directory needs a base to search users in",
            ));
        }
        if self.ldap_bind_dn.is_some() != self.ldap_bind_password_file.is_some() {
            return Err(missing(
                "ldap_bind_password_file",
                "the service account needs both SESSIOND_LDAP_BIND_DN and its password file",
            ));
        }
        Ok(())
    }

    /// docs/behaviour.md §3: the lag is never more than a tenth of the timeout, whatever was asked;
    /// said in the log so that nobody wonders why their setting seems ignored.
    fn cap_activity_lag(&mut self, origin: &str, asked: bool) {
        let cap = self.session_timeout / 10;
        if self.activity_lag > cap {
            let what = if asked {
                format!("{origin} ({})", show_duration(self.activity_lag))
            } else {
                format!(
                    "the default activity lag ({})",
                    show_duration(self.activity_lag)
                )
            };
            self.notices.push(format!(
                "{what} is capped at {}, a tenth of the session timeout ({})",
                show_duration(cap),
                show_duration(self.session_timeout)
            ));
            self.activity_lag = cap;
        }
    }

    /// The endpoint path first, then its aliases.
    pub fn endpoint_paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.endpoint_path.as_str())
            .chain(self.endpoint_aliases.iter().map(|s| s.as_str()))
    }
}

/// The environment variable for a TOML key: `DATABASE_URL` is the one without our prefix.
pub fn env_name(key: &str) -> String {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .map(|s| s.env.to_owned())
        .unwrap_or_else(|| format!("{ENV_PREFIX}{}", key.to_ascii_uppercase()))
}

/// For a key that is no setting, the setting it was probably meant to be.
fn not_a_setting(key: &str) -> String {
    let nearest = SETTINGS
        .iter()
        .map(|s| (strsim::levenshtein(key, s.key), s.key))
        .min()
        .filter(|(distance, _)| *distance <= 3);
    match nearest {
        Some((_, known)) => format!("not a setting (did you mean {known}?)"),
        None => "not a setting (sessiond --help lists them)".to_owned(),
    }
}

/// Variables the test harness and the build set, which share our prefix but are no settings.
const NOT_SETTINGS: &[&str] = &[CONFIG_FILE_VAR, "SESSIOND_BIN", "SESSIOND_COMMIT"];

/// A notice for each `SESSIOND_*` variable that is no setting: a misspelt one would otherwise
/// be silently ignored, and the setting it meant left at its default.
fn unknown_variables(env: &HashMap<String, String>) -> Vec<String> {
    let mut unknown: Vec<&String> = env
        .keys()
        .filter(|var| var.starts_with(ENV_PREFIX))
        .filter(|var| !var.starts_with("SESSIOND_TEST_") && !NOT_SETTINGS.contains(&var.as_str()))
        .filter(|var| !SETTINGS.iter().any(|s| s.env == var.as_str()))
        .collect();
    unknown.sort();
    unknown
        .into_iter()
        .map(|var| {
            let nearest = SETTINGS
                .iter()
                .map(|s| (strsim::levenshtein(var, s.env), s.env))
                .min()
                .filter(|(distance, _)| *distance <= 3);
            match nearest {
                Some((_, known)) => {
                    format!("{var} is not a setting and is ignored (did you mean {known}?)")
                }
                None => {
                    format!("{var} is not a setting and is ignored (sessiond --help lists them)")
                }
            }
        })
        .collect()
}

/// " (line N)" for a TOML syntax error, so the message points into the file.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| {
        // Bytes, not a str slice: a span off a char boundary must not panic (the fuzzer's text).
        let before = &text.as_bytes()[..s.start.min(text.len())];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        format!(" (line {line})")
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;
