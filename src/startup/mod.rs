//! Building a running server from a [`Config`]: the store (migrated), the first-start admin,
//! the service, the background tasks, and the HTTP servers on bound listeners: SOAP (HTTPS when
//! a certificate is configured, reloaded on SIGHUP), and the operator's endpoints (health,
//! metrics, the console) on `SESSIOND_ADMIN_BIND` when set, else beside SOAP. Tests bind port 0
//! and ask [`Application::port`] which one they got.
//!
//! Slow clients: actix bounds the headers (`client_request_timeout`), the SOAP endpoint the
//! body, both by `SESSIOND_CLIENT_TIMEOUT`; connections are capped below the descriptor limit
//! (its soft value raised to the hard one first), so a crowd of stalled clients makes new ones
//! wait in the listen backlog for a slot instead of failing to be accepted at all.

use std::io::{IsTerminal, Write};
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::console::{self, ConsoleSettings};
use crate::http::health::Observability;
use crate::http::{self, AppState};
use crate::service::clock::{Clock, SystemClock};
use crate::service::identity::directory::DirectorySettings;
use crate::service::{NewAdmin, ServiceError, SessionService, Settings};
use crate::store::Store;
use crate::telemetry::Telemetry;
use crate::tls::{CertSummary, Certificates, TlsError};

mod background;
mod limits;
mod signals;

use background::spawn_background;
use limits::connections_per_worker;
use signals::{log_certificate, reload_on_sighup, stop_on_signals};

/// How often ended sessions past the retention period are purged from the history.
const HISTORY_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Threads per HTTP worker for database work. Every thread keeps the memory it once used, so a
/// burst of long listings on hundreds of threads stayed resident at hundreds of MiB; logins,
/// which wait long, are held back before they take one (see `service::logins::auth::LoginGate`).
const BLOCKING_THREADS_PER_WORKER: usize = 16;
/// Shortest interval for storing renewed activity, whatever the lag setting.
const MIN_ACTIVITY_FLUSH: Duration = Duration::from_millis(10);
/// How often the active-session gauge is counted in the database: a scrape reads the last
/// count and never scans the table itself.
const ACTIVE_SESSIONS_REFRESH: Duration = Duration::from_secs(15);
/// How often memory freed by large request bodies is given back (see
/// `http::return_freed_memory`).
const MEMORY_RETURN_INTERVAL: Duration = Duration::from_secs(2);
/// Descriptors kept out of the connection cap: database connections (a SQLite connection holds
/// the file, its WAL and shared memory), the log, the admin listener and whatever else opens
/// files (migrations, the admin password file).
const RESERVED_DESCRIPTORS: u64 = 64;
const DESCRIPTORS_PER_DB_CONNECTION: u64 = 3;
/// How long a graceful stop waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// actix's own default cap per worker, kept when the descriptor limit allows more.
const ACTIX_MAX_CONNECTIONS: usize = 25_000;
/// Connections the admin listener takes at once: probes and a scraper, not a crowd.
const ADMIN_MAX_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot migrate the database: {0}")]
    Migrate(String),
    /// The database cannot be opened or migrated: the message names it and why.
    #[error("{0}")]
    Database(String),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("{0}")]
    Directory(String),
    #[error("cannot write the admin password to {path}: {source}")]
    AdminFile {
        path: String,
        source: std::io::Error,
    },
}

/// `sessiond backup`: a consistent copy of the SQLite database at `dest`, taken while the
/// service may be serving; the database is neither migrated nor changed. Returns the copy's
/// size in bytes.
pub fn backup(config: &Config, dest: &std::path::Path, force: bool) -> Result<u64, String> {
    Store::new(&config.database, 1, config.db_timeout).backup(dest, force)
}

/// The store and the service for a CLI verb: a fresh database is made current, one whose
/// migrations are behind is refused (docs/behaviour.md §5), so that `user list` never migrates
/// a schema that older instances may still be serving.
pub fn open_service(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<SessionService, StartupError> {
    let store = Store::new(&config.database, config.db_pool_size, config.db_timeout);
    store
        .migrate_if_fresh()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    service_on(store, config, clock)
}

/// The store, migrated, and the service for a config: what `serve` and `migrate` start from.
pub fn open_migrated_service(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<SessionService, StartupError> {
    let store = Store::new(&config.database, config.db_pool_size, config.db_timeout);
    store
        .migrate()
        .map_err(|e| StartupError::Database(e.to_string()))?;
    service_on(store, config, clock)
}

fn service_on(
    store: Store,
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<SessionService, StartupError> {
    let telemetry = Arc::new(http::health::telemetry());
    telemetry
        .metrics
        .db_pool_max
        .set(i64::from(config.db_pool_size));
    let mut settings = service_settings(config);
    settings.directory = directory_settings(config)?;
    Ok(SessionService::new(store, clock, settings, telemetry)?)
}

/// The directory's settings, with the service account's password read from its file (the
/// first line); `None` when no directory is configured.
pub fn directory_settings(c: &Config) -> Result<Option<DirectorySettings>, StartupError> {
    if c.ldap_url.is_empty() {
        return Ok(None);
    }
    let bind = match (&c.ldap_bind_dn, &c.ldap_bind_password_file) {
        (Some(dn), Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                StartupError::Directory(format!(
                    "SESSIOND_LDAP_BIND_PASSWORD_FILE: cannot read {}: {e}",
                    file.display()
                ))
            })?;
            let password = text.lines().next().unwrap_or_default().to_owned();
            Some((dn.clone(), password))
        }
        _ => None,
    };
    Ok(Some(DirectorySettings {
        urls: c.ldap_url.clone(),
        starttls: c.ldap_starttls,
        ca_file: c.ldap_ca_file.clone(),
        bind,
        user_base: c.ldap_user_base.clone().unwrap_or_default(),
        user_filter: c.ldap_user_filter.clone(),
        department_attribute: c.ldap_department_attribute.clone(),
        admin_groups: c.ldap_admin_groups.clone(),
        update_groups: c.ldap_update_groups.clone(),
        view_groups: c.ldap_view_groups.clone(),
        nested_groups: c.ldap_nested_groups,
        timeout: c.ldap_timeout,
        sync_interval: c.ldap_sync_interval,
    }))
}

/// The service's own settings, out of the config: the service never reads the config itself.
pub fn service_settings(c: &Config) -> Settings {
    Settings {
        session_timeout: c.session_timeout,
        session_max_lifetime: c.session_max_lifetime,
        location: c.location.clone(),
        lockout_threshold: c.lockout_threshold,
        lockout_duration: c.lockout_duration,
        password_min_length: c.password_min_length,
        history_retention: c.history_retention,
        hash_concurrency: c.hash_concurrency,
        login_wait: c.login_wait,
        page_rows: i64::from(c.list_page_size),
        max_sessions_per_user: c.max_sessions_per_user,
        session_limit_policy: c.session_limit_policy,
        listed_ids: c.listed_ids,
        cache_capacity: c.cache_capacity,
        // Read from its password file by `open_service`.
        directory: None,
    }
}

pub struct Application {
    server: Server,
    port: u16,
    admin: Option<(Server, u16)>,
    service: Arc<SessionService>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        // Before the database is touched: a bad certificate file is the likelier mistake.
        let certificates = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let (certificates, summary) = Certificates::load(cert, key)?;
                log_certificate(cert, &summary, "serving");
                Some(certificates)
            }
            _ => None,
        };
        // The listeners next, still before the database: a port that is taken leaves no
        // database file, no admin and no password file behind.
        let listener = bind(config.bind)?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let admin_listener = config.admin_bind.map(bind).transpose()?;
        let setup = config.clone();
        let service = web::block(move || -> Result<_, StartupError> {
            let service = open_migrated_service(&setup, clock)?;
            if let Some(admin) = service.ensure_admin()? {
                announce_admin(&admin, &setup.admin_password_file)?;
            }
            Ok(service)
        })
        .await
        .map_err(|e| StartupError::Migrate(e.to_string()))??;
        let service = Arc::new(service);

        let telemetry = service.telemetry();
        let state = web::Data::new(AppState {
            service: service.clone(),
            public_url: config.public_url.clone(),
            max_body_size: config.max_body_size,
            trusted_proxies: config.trusted_proxies.clone(),
            inline_validate: service.validate_is_cheap(),
            client_timeout: config.client_timeout,
            telemetry: telemetry.clone(),
        });
        // The console goes with the other operator's endpoints: on the admin listener when
        // SESSIOND_ADMIN_BIND is set, else beside SOAP.
        let console = config.console_path.clone().map(|path| ConsoleSettings {
            path,
            service: service.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            hsts: config.console_hsts,
        });
        let operator = operator_routes(
            web::Data::new(Observability {
                service: service.clone(),
                telemetry: telemetry.clone(),
            }),
            console,
        );
        let operator_on_soap = config.admin_bind.is_none();
        let paths: Vec<String> = config.endpoint_paths().map(str::to_owned).collect();
        let routes_paths = paths.clone();
        let soap_operator = operator.clone();
        // HSTS on SOAP answers only when asked for: a SOAP client ignores it, but a browser
        // that once read the WSDL would then refuse any plain-HTTP service on the same host.
        let soap_hsts = config
            .soap_hsts
            .filter(|_| certificates.is_some())
            .map(|d| format!("max-age={}", d.as_secs()));
        let server = HttpServer::new(move || {
            let hsts = soap_hsts.clone();
            App::new()
                .wrap(actix_web::middleware::Condition::new(
                    hsts.is_some(),
                    actix_web::middleware::DefaultHeaders::new().add((
                        actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                        hsts.unwrap_or_default(),
                    )),
                ))
                .app_data(state.clone())
                .configure(http::routes(routes_paths.clone()))
                .configure(|cfg| {
                    if operator_on_soap {
                        soap_operator(cfg)
                    }
                })
        })
        .workers(config.workers)
        .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
        .client_request_timeout(config.client_timeout)
        .keep_alive(config.keepalive)
        .max_connections(connections_per_worker(&config))
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // SIGINT and SIGTERM are handled in `run_until_stopped`: both stop gracefully (actix
        // itself would make SIGINT a forced shutdown).
        .disable_signals();
        let server = match &certificates {
            Some(certificates) => server.listen_rustls_0_23(listener, certificates.server_config()),
            None => server.listen(listener),
        }
        .map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?
        .run();
        // Before the first line says we listen: a signal from then on stops us gracefully.
        stop_on_signals(server.handle());
        let scheme = if certificates.is_some() {
            "https"
        } else {
            "http"
        };
        // The admin listener serves the console's sign-in and cookie: with TLS on it speaks
        // TLS too, with the same (reloaded) certificate, never the console in plain text.
        let admin_tls = certificates.as_ref().map(|c| c.server_config());
        reload_on_sighup(certificates);

        let admin = match (config.admin_bind, admin_listener) {
            (Some(addr), Some(listener)) => {
                let bound = listener
                    .local_addr()
                    .map_err(|source| StartupError::Bind { addr, source })?;
                let server = HttpServer::new(move || App::new().configure(operator.clone()))
                    .workers(1)
                    .client_request_timeout(config.client_timeout)
                    .keep_alive(config.keepalive)
                    .max_connections(ADMIN_MAX_CONNECTIONS)
                    .shutdown_timeout(5)
                    .disable_signals();
                let server = match admin_tls {
                    Some(tls) => server.listen_rustls_0_23(listener, tls),
                    None => server.listen(listener),
                }
                .map_err(|source| StartupError::Bind { addr, source })?
                .run();
                log::info!("operator endpoints (health, metrics, console) on {scheme}://{bound}");
                Some((server, bound.port()))
            }
            _ => None,
        };

        spawn_background(&service, &config, &telemetry);
        if let Some(directory) = service.directory_settings() {
            log::info!(
                "directory users from {} (search under {})",
                directory.urls.join(" "),
                directory.user_base
            );
            for url in directory.clear_text_urls() {
                log::warn!(
                    "directory {url} is plain ldap:// without StartTLS: passwords travel in clear"
                );
            }
        }
        for path in &paths {
            log::info!(
                "sessiond listening on {scheme}://{local}{path} (database: {}, location: {})",
                config.database.describe(),
                config.location
            );
        }
        Ok(Self {
            server,
            port: local.port(),
            admin,
            service,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin listener's port, when `SESSIOND_ADMIN_BIND` is set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin.as_ref().map(|(_, port)| *port)
    }

    /// Stops the server from another task or thread.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn service(&self) -> Arc<SessionService> {
        self.service.clone()
    }

    /// Serves until SIGINT/SIGTERM (or the server is stopped), then stores pending activity.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let admin = self.admin.map(|(server, _)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(admin) = admin {
            admin.stop(true).await;
        }
        let service = self.service.clone();
        match web::block(move || service.store_pending_activity()).await {
            Ok(Ok(())) => log::info!("stored pending activity; stopped"),
            Ok(Err(e)) => log::error!("could not store pending activity at shutdown: {e}"),
            Err(e) => log::error!("could not store pending activity at shutdown: {e}"),
        }
        result
    }
}

/// Everything served to operators rather than to SOAP clients, on whichever listener they are
/// given: health, metrics, and the console.
fn operator_routes(
    observability: web::Data<Observability>,
    console: Option<ConsoleSettings>,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg| {
        cfg.configure(http::health::config(observability.clone()));
        cfg.configure(console::config(console.clone()));
    }
}

fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })
}

/// Writes the first-start password to a file only its owner reads, and says in the log where it
/// is: never the password itself, which a log collector would keep for as long as the log.
fn announce_admin(admin: &NewAdmin, path: &Path) -> Result<(), StartupError> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        // `mode` applies only when the file is created; an older file gets it here.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        writeln!(file, "{}", admin.password.expose())
    };
    write().map_err(|source| StartupError::AdminFile {
        path: path.display().to_string(),
        source,
    })?;
    log::warn!(
        "no users yet: created '{}' with AdministratorRight and a random password, written to \
         {} (mode 0600, its owner only: read it with `cat {}`, then change it with \
         `sessiond user passwd {} --password-stdin`)",
        admin.user_id,
        path.display(),
        path.display(),
        admin.user_id
    );
    // docs/behaviour.md §5 shows the password once; the brief never logs one. Both hold by showing
    // it to a person at a terminal only, outside the log records: under systemd, a container or a
    // redirect, stderr is no terminal and the password stays in the file alone.
    if std::io::stderr().is_terminal() {
        eprintln!(
            "\n  {}'s first password (shown this once, not logged): {}\n",
            admin.user_id,
            admin.password.expose()
        );
    }
    Ok(())
}
