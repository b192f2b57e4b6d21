//! The values of settings that rooms other than `config` take as they are: where the sessions
//! live (`DATABASE_URL` parsed into a backend and its target, for `store`) and how the log is
//! written (for `telemetry`). They live here, a leaf, so that `config` reads them without
//! depending on the rooms that use them. The backend is chosen by the URL scheme, never by trial
//! (SQLite would accept any string as a file name).

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
        // `sqlite:PATH`, as sqlx's and diesel's documentation write it: the path, not a file
        // named `sqlite:PATH` (which a bare path would otherwise be).
        if let Some(path) = url.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("sqlite: needs a file path (sqlite://PATH or sqlite:PATH)".into());
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

    /// The database as the log and error messages name it, never with a password: the SQLite
    /// file path, or PostgreSQL's user, every host (with its port when given) and database
    /// (the URL without its password and its parameters, which may hold one too).
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("SQLite {}", self.target),
            Backend::Postgres => {
                let parts = PostgresParts::of(&self.target);
                let user = match parts.user {
                    "" => String::new(),
                    user => format!("{user}@"),
                };
                format!(
                    "PostgreSQL {user}{}/{}",
                    parts.hosts.join(","),
                    parts.database
                )
            }
        }
    }

    /// The TCP ports of the PostgreSQL hosts the URL names (libpq's 5432 when none is given):
    /// how the store tells its own database sockets from the others of the process.
    pub fn postgres_ports(&self) -> Vec<u16> {
        let parts = PostgresParts::of(&self.target);
        let default = query_param(&self.target, "port")
            .and_then(|p| p.split(',').next()?.parse().ok())
            .unwrap_or(5432);
        let mut ports: Vec<u16> = parts
            .hosts
            .iter()
            .map(|h| port_of(h).unwrap_or(default))
            .collect();
        if ports.is_empty() {
            ports.push(default);
        }
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

/// The pieces of a PostgreSQL URL that may be shown. Hand-split: the `url` crate takes one host
/// only, and libpq's URLs may list several (`postgres://u@h1:5432,h2:5432/db`).
struct PostgresParts<'a> {
    user: &'a str,
    hosts: Vec<&'a str>,
    database: &'a str,
}

impl<'a> PostgresParts<'a> {
    fn of(url: &'a str) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostlist) = authority.rsplit_once('@').unwrap_or(("", authority));
        let user = userinfo.split(':').next().unwrap_or("");
        let hosts = hostlist.split(',').filter(|h| !h.is_empty()).collect();
        Self {
            user,
            hosts,
            database,
        }
    }
}

/// The port of `host:port` or `[v6]:port`, if it says one.
fn port_of(host: &str) -> Option<u16> {
    let after = match host.rfind(']') {
        Some(i) => &host[i + 1..],
        None => host,
    };
    after.rsplit_once(':')?.1.parse().ok()
}

/// A query parameter's value as written (not percent-decoded).
fn query_param<'a>(url: &'a str, key: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// How log records are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-12-01T10:00:00.123Z INFO target: message key=value …`
    #[default]
    Text,
    /// One JSON object a line: `ts`, `level`, `target`, `msg`, then the record's fields.
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("'{other}' is not a log format (text or json)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_pick_the_backend_by_scheme() {
        let pg = DatabaseUrl::parse("postgres://u@h/db").unwrap();
        assert_eq!(pg.backend, Backend::Postgres);
        let lite = DatabaseUrl::parse("sqlite:///var/lib/s.db").unwrap();
        assert_eq!(
            (lite.backend, lite.target.as_str()),
            (Backend::Sqlite, "/var/lib/s.db")
        );
        assert_eq!(DatabaseUrl::parse("s.db").unwrap().backend, Backend::Sqlite);
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
        assert!(DatabaseUrl::parse("  ").is_err());
    }

    #[test]
    fn sqlite_colon_path_is_the_path_not_a_file_named_after_the_url() {
        let lite = DatabaseUrl::parse("sqlite:sessiond.db").unwrap();
        assert_eq!(
            (lite.backend, lite.target.as_str()),
            (Backend::Sqlite, "sessiond.db")
        );
        let abs = DatabaseUrl::parse("sqlite:/var/lib/sessiond/s.db").unwrap();
        assert_eq!(abs.target, "/var/lib/sessiond/s.db");
        let err = DatabaseUrl::parse("sqlite:").unwrap_err();
        assert!(err.contains("sqlite://PATH or sqlite:PATH"), "{err}");
    }

    #[test]
    fn a_database_is_described_without_its_password() {
        let pg = DatabaseUrl::parse("postgres://app:s3cret@db.example:6432/sessions?password=x2")
            .unwrap();
        assert_eq!(pg.describe(), "PostgreSQL app@db.example:6432/sessions");
        let bare = DatabaseUrl::parse("postgresql://localhost/s").unwrap();
        assert_eq!(bare.describe(), "PostgreSQL localhost/s");
        let lite = DatabaseUrl::parse("sqlite:///var/lib/s.db").unwrap();
        assert_eq!(lite.describe(), "SQLite /var/lib/s.db");
    }

    #[test]
    fn several_postgres_hosts_are_all_named_and_their_ports_known() {
        let pg = DatabaseUrl::parse(
            "postgres://app:pw@h1:5433,h2,[::1]:6000/s?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(pg.describe(), "PostgreSQL app@h1:5433,h2,[::1]:6000/s");
        assert_eq!(pg.postgres_ports(), vec![5432, 5433, 6000]);
        let one = DatabaseUrl::parse("postgres://h/s?port=7000").unwrap();
        assert_eq!(one.postgres_ports(), vec![7000]);
    }
}
