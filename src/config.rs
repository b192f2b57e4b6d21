//! Settings: defaults, then an optional TOML file, then the environment, which wins.
//!
//! Variables read (the TOML key is the same name, lower case, without `SESSIOND_`):
//! - `DATABASE_URL` (`database_url`): `sqlite://PATH` or `postgres://…`; a bare path is SQLite
//! - `SESSIOND_CONFIG`: the TOML file (also `--config`); without it `./sessiond.toml` if present
//! - `SESSIOND_BIND`: address:port to listen on
//! - `SESSIOND_SESSION_TIMEOUT`: idle timeout, a duration (`30m`, `90s`)
//! - `SESSIOND_SESSION_MAX_LIFETIME`: absolute lifetime cap, a duration or `off`
//! - `SESSIOND_ACTIVITY_LAG`: how far stored last activity may trail the real one
//! - `SESSIOND_LOCATION`: this instance's name, stored with the sessions it creates
//! - `SESSIOND_PUBLIC_URL`: base URL clients reach us by, used in the served WSDL
//! - `SESSIOND_ENDPOINT_PATH`, `SESSIOND_ENDPOINT_ALIASES`: where SOAP is served
//! - `SESSIOND_MAX_BODY_SIZE`: largest request body in bytes
//! - `SESSIOND_LIST_PAGE_SIZE`: sessions read per page of an array result (longer ones stream)
//! - `SESSIOND_LOCKOUT_THRESHOLD`, `SESSIOND_LOCKOUT_DURATION`: failed-password lock-out
//! - `SESSIOND_HISTORY_RETENTION`: how long ended sessions stay in the history
//! - `SESSIOND_SWEEP_INTERVAL`: periodic removal of expired sessions, or `off`
//! - `SESSIOND_DB_POOL_SIZE`, `SESSIOND_DB_TIMEOUT`: database connections and how long to wait
//! - `SESSIOND_HASH_CONCURRENCY`: password hashes computed at once (Argon2 is slow on purpose)
//! - `SESSIOND_ADMIN_PASSWORD_FILE`: where the first start writes the `admin` password
//! - `SESSIOND_TRUSTED_PROXIES`: proxy addresses whose X-Forwarded-For is believed
//! - `SESSIOND_WORKERS`: HTTP worker threads
//! - `SESSIOND_CONSOLE_PATH`: where the admin console is served, or `off`

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sessiond.db";
pub const DEFAULT_CONFIG_FILE: &str = "sessiond.toml";
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_ACTIVITY_LAG: Duration = Duration::from_secs(1);
pub const DEFAULT_ENDPOINT_PATH: &str = "/services/SessionService";
pub const DEFAULT_MAX_BODY_SIZE: usize = 1024 * 1024;
pub const DEFAULT_LIST_PAGE_SIZE: u32 = 500;
pub const DEFAULT_LOCKOUT_THRESHOLD: u32 = 5;
pub const DEFAULT_LOCKOUT_DURATION: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
pub const DEFAULT_DB_POOL_SIZE: u32 = 8;
pub const DEFAULT_DB_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_ADMIN_PASSWORD_FILE: &str = "sessiond-admin-password.txt";
pub const DEFAULT_LOCATION: &str = "sessiond";
pub const DEFAULT_CONSOLE_PATH: &str = "/admin/";

const ENV_PREFIX: &str = "SESSIOND_";

/// Every TOML key we know; anything else in the file is a typo and stops the start.
const KEYS: &[&str] = &[
    "database_url",
    "bind",
    "session_timeout",
    "session_max_lifetime",
    "activity_lag",
    "location",
    "public_url",
    "endpoint_path",
    "endpoint_aliases",
    "max_body_size",
    "list_page_size",
    "lockout_threshold",
    "lockout_duration",
    "history_retention",
    "sweep_interval",
    "db_pool_size",
    "db_timeout",
    "hash_concurrency",
    "admin_password_file",
    "trusted_proxies",
    "workers",
    "console_path",
];

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the sessions live, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// For SQLite the file path; for PostgreSQL the URL as given.
    pub target: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path".into());
            }
            return Ok(Self {
                backend: Backend::Sqlite,
                target: path.to_owned(),
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self {
                backend: Backend::Postgres,
                target: url.to_owned(),
            });
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(format!(
                "unsupported scheme '{scheme}' (use sqlite:// or postgres://)"
            ));
        }
        if url.is_empty() {
            return Err("empty database URL".into());
        }
        // A bare path, as diesel's own tools accept for SQLite.
        Ok(Self {
            backend: Backend::Sqlite,
            target: url.to_owned(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseUrl,
    pub bind: SocketAddr,
    pub session_timeout: Duration,
    pub session_max_lifetime: Option<Duration>,
    /// Already capped at a tenth of the timeout.
    pub activity_lag: Duration,
    pub location: String,
    pub public_url: Option<String>,
    pub endpoint_path: String,
    pub endpoint_aliases: Vec<String>,
    pub max_body_size: usize,
    pub list_page_size: u32,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub history_retention: Duration,
    pub sweep_interval: Option<Duration>,
    pub db_pool_size: u32,
    pub db_timeout: Duration,
    pub hash_concurrency: usize,
    pub admin_password_file: PathBuf,
    pub trusted_proxies: Vec<IpAddr>,
    pub workers: usize,
    /// Ends with `/`; `None`: the console is off.
    pub console_path: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            database: DatabaseUrl::parse(DEFAULT_DATABASE_URL).expect("default database URL"),
            bind: DEFAULT_BIND.parse().expect("default bind address"),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            session_max_lifetime: None,
            activity_lag: DEFAULT_ACTIVITY_LAG,
            location: default_location(),
            public_url: None,
            endpoint_path: DEFAULT_ENDPOINT_PATH.to_owned(),
            endpoint_aliases: Vec::new(),
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            list_page_size: DEFAULT_LIST_PAGE_SIZE,
            lockout_threshold: DEFAULT_LOCKOUT_THRESHOLD,
            lockout_duration: DEFAULT_LOCKOUT_DURATION,
            history_retention: DEFAULT_HISTORY_RETENTION,
            sweep_interval: None,
            db_pool_size: DEFAULT_DB_POOL_SIZE,
            db_timeout: DEFAULT_DB_TIMEOUT,
            // Half the cores at most: a flood of logins must leave room for validateSession.
            hash_concurrency: (cpus / 2).max(1),
            admin_password_file: PathBuf::from(DEFAULT_ADMIN_PASSWORD_FILE),
            trusted_proxies: Vec::new(),
            workers: cpus,
            console_path: Some(DEFAULT_CONSOLE_PATH.to_owned()),
        }
    }
}

/// The host name, so instances are told apart in `location` without any setting.
fn default_location() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_LOCATION.to_owned())
}

impl Config {
    /// Reads the file (the given one, `SESSIOND_CONFIG`, or `./sessiond.toml` if it exists) and
    /// the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        let file = match file {
            Some(path) => Some(path.to_owned()),
            None => match env.get("SESSIOND_CONFIG") {
                Some(path) => Some(PathBuf::from(path)),
                None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
            },
        };
        let table = match &file {
            Some(path) => Some((path.clone(), read_table(path)?)),
            None => None,
        };
        Self::from_sources(table, &env)
    }

    /// Builds a config from a parsed TOML table and an environment map; `load` without the I/O.
    pub fn from_sources(
        file: Option<(PathBuf, toml::Table)>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let sources = Sources::new(file, env)?;
        let mut c = Config::default();
        if let Some(v) = sources.get("database_url", DatabaseUrl::parse)? {
            c.database = v;
        }
        if let Some(v) = sources.get("bind", parse_bind)? {
            c.bind = v;
        }
        if let Some(v) = sources.get("session_timeout", parse_positive_duration)? {
            c.session_timeout = v;
        }
        if let Some(v) = sources.get("session_max_lifetime", parse_optional_duration)? {
            c.session_max_lifetime = v;
        }
        if let Some(v) = sources.get("activity_lag", parse_duration)? {
            c.activity_lag = v;
        }
        // SPEC 3: the lag is never more than a tenth of the timeout, whatever was asked.
        c.activity_lag = c.activity_lag.min(c.session_timeout / 10);
        if let Some(v) = sources.get("location", parse_name)? {
            c.location = v;
        }
        if let Some(v) = sources.get("public_url", parse_public_url)? {
            c.public_url = Some(v);
        }
        if let Some(v) = sources.get("endpoint_path", parse_path)? {
            c.endpoint_path = v;
        }
        if let Some(v) = sources.get("endpoint_aliases", |s| {
            split_list(s).map(parse_path).collect::<Result<Vec<_>, _>>()
        })? {
            c.endpoint_aliases = v;
        }
        if let Some(v) = sources.get("max_body_size", |s| parse_number::<usize>(s, 1))? {
            c.max_body_size = v;
        }
        if let Some(v) = sources.get("list_page_size", |s| parse_number::<u32>(s, 1))? {
            c.list_page_size = v;
        }
        if let Some(v) = sources.get("lockout_threshold", |s| parse_number::<u32>(s, 0))? {
            c.lockout_threshold = v;
        }
        if let Some(v) = sources.get("lockout_duration", parse_positive_duration)? {
            c.lockout_duration = v;
        }
        if let Some(v) = sources.get("history_retention", parse_duration)? {
            c.history_retention = v;
        }
        if let Some(v) = sources.get("sweep_interval", parse_optional_duration)? {
            c.sweep_interval = v;
        }
        if let Some(v) = sources.get("db_pool_size", |s| parse_number::<u32>(s, 1))? {
            c.db_pool_size = v;
        }
        if let Some(v) = sources.get("db_timeout", parse_positive_duration)? {
            c.db_timeout = v;
        }
        if let Some(v) = sources.get("hash_concurrency", |s| parse_number::<usize>(s, 1))? {
            c.hash_concurrency = v;
        }
        if let Some(v) = sources.get("admin_password_file", |s| Ok(PathBuf::from(s)))? {
            c.admin_password_file = v;
        }
        if let Some(v) = sources.get("trusted_proxies", |s| {
            split_list(s)
                .map(|p| p.parse::<IpAddr>().map_err(|e| format!("'{p}': {e}")))
                .collect::<Result<Vec<_>, _>>()
        })? {
            c.trusted_proxies = v;
        }
        if let Some(v) = sources.get("workers", |s| parse_number::<usize>(s, 1))? {
            c.workers = v;
        }
        if let Some(v) = sources.get("console_path", parse_console_path)? {
            c.console_path = v;
        }
        Ok(c)
    }

    /// The endpoint path first, then its aliases.
    pub fn endpoint_paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.endpoint_path.as_str())
            .chain(self.endpoint_aliases.iter().map(|s| s.as_str()))
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// The raw text of each setting and where it came from, so errors name the right source.
struct Sources {
    values: HashMap<&'static str, (String, String)>,
}

impl Sources {
    fn new(
        file: Option<(PathBuf, toml::Table)>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut values = HashMap::new();
        if let Some((path, table)) = file {
            for (key, value) in table {
                let Some(&known) = KEYS.iter().find(|k| **k == key) else {
                    return Err(ConfigError::File {
                        path,
                        message: format!("unknown setting '{key}'"),
                    });
                };
                let origin = format!("{known} in {}", path.display());
                let text = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::Array(items) => items
                        .iter()
                        .map(|i| match i {
                            toml::Value::String(s) => Ok(s.clone()),
                            other => Err(ConfigError::Invalid {
                                setting: origin.clone(),
                                message: format!("expected strings, found {other}"),
                            }),
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join(","),
                    other => {
                        return Err(ConfigError::Invalid {
                            setting: origin,
                            message: format!("unsupported value {other}"),
                        })
                    }
                };
                values.insert(known, (text, origin));
            }
        }
        for &key in KEYS {
            let var = env_name(key);
            if let Some(text) = env.get(&var) {
                values.insert(key, (text.clone(), var));
            }
        }
        Ok(Self { values })
    }

    fn get<T>(
        &self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some((text, origin)) => parse(text)
                .map(Some)
                .map_err(|message| ConfigError::Invalid {
                    setting: origin.clone(),
                    message,
                }),
        }
    }
}

/// The environment variable for a TOML key: `DATABASE_URL` is the one without our prefix.
pub fn env_name(key: &str) -> String {
    if key == "database_url" {
        "DATABASE_URL".to_owned()
    } else {
        format!("{ENV_PREFIX}{}", key.to_ascii_uppercase())
    }
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.trim().parse() {
        return Ok(addr);
    }
    s.trim()
        .to_socket_addrs()
        .map_err(|e| format!("'{s}' is not address:port ({e})"))?
        .next()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("'{s}' is not a duration like 30m or 90s ({e})"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

fn parse_optional_duration(s: &str) -> Result<Option<Duration>, String> {
    match s.trim() {
        "off" | "none" | "0" | "" => Ok(None),
        _ => parse_positive_duration(s).map(Some),
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display>(
    s: &str,
    min: u8,
) -> Result<T, String> {
    let n: T = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if n < T::from(min) {
        return Err(format!("must be at least {min}"));
    }
    Ok(n)
}

fn parse_name(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err("must be 1 to 64 printable characters".into());
    }
    Ok(s.to_owned())
}

fn parse_public_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.contains(char::is_whitespace) {
        return Err(format!("'{s}' is not an http:// or https:// URL"));
    }
    Ok(s.to_owned())
}

fn parse_path(s: &str) -> Result<String, String> {
    let s = s.trim();
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(format!("'{s}' is not a URL path starting with /"));
    }
    Ok(s.to_owned())
}

/// `off`, or a path; a trailing `/` is added, since the console's pages live below it.
fn parse_console_path(s: &str) -> Result<Option<String>, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let path = parse_path(s)?;
    Ok(Some(if path.ends_with('/') {
        path
    } else {
        format!("{path}/")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_any_source() {
        let c = Config::from_sources(None, &env(&[])).unwrap();
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.session_timeout, DEFAULT_SESSION_TIMEOUT);
        assert_eq!(c.database.backend, Backend::Sqlite);
        assert_eq!(c.database.target, "sessiond.db");
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let table: toml::Table = "session_timeout = \"10m\"\nlocation = \"file\""
            .parse()
            .unwrap();
        let c = Config::from_sources(
            Some(("x.toml".into(), table)),
            &env(&[("SESSIOND_SESSION_TIMEOUT", "90s")]),
        )
        .unwrap();
        assert_eq!(c.session_timeout, Duration::from_secs(90));
        assert_eq!(c.location, "file");
    }

    #[test]
    fn a_bad_value_names_the_variable() {
        let err = Config::from_sources(None, &env(&[("SESSIOND_SESSION_TIMEOUT", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SESSIOND_SESSION_TIMEOUT:"), "{err}");
        let err = Config::from_sources(None, &env(&[("DATABASE_URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("DATABASE_URL:"), "{err}");
    }

    #[test]
    fn a_bad_file_value_names_the_key_and_file() {
        let table: toml::Table = "bind = \"nowhere\"".parse().unwrap();
        let err = Config::from_sources(Some(("s.toml".into(), table)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bind in s.toml:"), "{err}");
    }

    #[test]
    fn an_unknown_file_key_stops_the_start() {
        let table: toml::Table = "sesion_timeout = \"1m\"".parse().unwrap();
        let err = Config::from_sources(Some(("s.toml".into(), table)), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sesion_timeout"), "{err}");
    }

    #[test]
    fn the_activity_lag_is_capped_at_a_tenth_of_the_timeout() {
        let c = Config::from_sources(None, &env(&[("SESSIOND_SESSION_TIMEOUT", "2s")])).unwrap();
        assert_eq!(c.activity_lag, Duration::from_millis(200));
    }

    #[test]
    fn database_urls_pick_the_backend_by_scheme() {
        let pg = DatabaseUrl::parse("postgres://u@h/db").unwrap();
        assert_eq!(pg.backend, Backend::Postgres);
        let lite = DatabaseUrl::parse("sqlite:///var/lib/s.db").unwrap();
        assert_eq!(
            (lite.backend, lite.target.as_str()),
            (Backend::Sqlite, "/var/lib/s.db")
        );
        assert!(DatabaseUrl::parse("mysql://x").is_err());
    }

    #[test]
    fn the_console_path_gets_a_trailing_slash_and_off_turns_it_off() {
        let c = Config::from_sources(None, &env(&[])).unwrap();
        assert_eq!(c.console_path.as_deref(), Some("/admin/"));
        let c = Config::from_sources(None, &env(&[("SESSIOND_CONSOLE_PATH", "/ops")])).unwrap();
        assert_eq!(c.console_path.as_deref(), Some("/ops/"));
        let c = Config::from_sources(None, &env(&[("SESSIOND_CONSOLE_PATH", "off")])).unwrap();
        assert_eq!(c.console_path, None);
        let e =
            Config::from_sources(None, &env(&[("SESSIOND_CONSOLE_PATH", "admin")])).unwrap_err();
        assert!(e.to_string().contains("console_path") || e.to_string().contains("CONSOLE_PATH"));
    }
}
