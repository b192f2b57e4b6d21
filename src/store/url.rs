//! Where the sessions live: `DATABASE_URL` parsed into a backend and its target. The backend is
//! chosen by the URL scheme, never by trial (SQLite would accept any string as a file name).

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
    /// file path, or PostgreSQL's user, host, port and database (the URL without its password
    /// and its parameters, which may hold one too).
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("SQLite {}", self.target),
            Backend::Postgres => match url::Url::parse(&self.target) {
                Ok(u) => {
                    let user = match u.username() {
                        "" => String::new(),
                        user => format!("{user}@"),
                    };
                    let host = u.host_str().unwrap_or("");
                    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                    let db = u.path().trim_start_matches('/');
                    format!("PostgreSQL {user}{host}{port}/{db}")
                }
                Err(_) => "PostgreSQL (a URL that does not parse)".to_owned(),
            },
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
}
