//! Building a running server from a [`Config`]: the store (migrated), the first-start admin,
//! the service, the background tasks, and the HTTP server on a bound listener. Tests bind
//! port 0 and ask [`Application::port`] which one they got.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::console::{self, ConsoleSettings};
use crate::http::{self, AppState};
use crate::service::clock::{Clock, SystemClock};
use crate::service::{NewAdmin, ServiceError, SessionService, Settings};
use crate::store::Store;

/// How often ended sessions past the retention period are purged from the history.
const HISTORY_PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Threads per HTTP worker for database work. Every thread keeps the memory it once used, so a
/// burst of long listings on hundreds of threads stayed resident at hundreds of MiB; logins,
/// which wait long, are held back before they take one (see `service::auth::LoginGate`).
const BLOCKING_THREADS_PER_WORKER: usize = 16;
/// Shortest interval for storing renewed activity, whatever the lag setting.
const MIN_ACTIVITY_FLUSH: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot migrate the database: {0}")]
    Migrate(String),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the admin password to {path}: {source}")]
    AdminFile {
        path: String,
        source: std::io::Error,
    },
}

/// The store and the service for a config: what `serve` and every CLI verb start from.
pub fn open_service(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<SessionService, StartupError> {
    let store = Store::new(&config.database, config.db_pool_size, config.db_timeout);
    store
        .migrate()
        .map_err(|e| StartupError::Migrate(e.to_string()))?;
    Ok(SessionService::new(store, clock, service_settings(config))?)
}

/// The service's own settings, out of the config: the service never reads the config itself.
pub fn service_settings(c: &Config) -> Settings {
    Settings {
        session_timeout: c.session_timeout,
        session_max_lifetime: c.session_max_lifetime,
        location: c.location.clone(),
        lockout_threshold: c.lockout_threshold,
        lockout_duration: c.lockout_duration,
        history_retention: c.history_retention,
        hash_concurrency: c.hash_concurrency,
        login_wait: c.login_wait,
        page_rows: i64::from(c.list_page_size),
    }
}

pub struct Application {
    server: Server,
    port: u16,
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
        let setup = config.clone();
        let service = web::block(move || -> Result<_, StartupError> {
            let service = open_service(&setup, clock)?;
            if let Some(admin) = service.ensure_admin()? {
                announce_admin(&admin, &setup.admin_password_file)?;
            }
            Ok(service)
        })
        .await
        .map_err(|e| StartupError::Migrate(e.to_string()))??;
        let service = Arc::new(service);

        let listener = TcpListener::bind(config.bind).map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?;
        let state = web::Data::new(AppState {
            service: service.clone(),
            public_url: config.public_url.clone(),
            max_body_size: config.max_body_size,
            trusted_proxies: config.trusted_proxies.clone(),
            inline_validate: service.validate_is_cheap(),
        });
        let paths: Vec<String> = config.endpoint_paths().map(str::to_owned).collect();
        let routes_paths = paths.clone();
        // On the SOAP listener for now; on the admin listener once SESSIOND_ADMIN_BIND exists.
        let console = config.console_path.clone().map(|path| ConsoleSettings {
            path,
            service: service.clone(),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(http::routes(routes_paths.clone()))
                .configure(console::config(console.clone()))
        })
        .workers(config.workers)
        .worker_max_blocking_threads(BLOCKING_THREADS_PER_WORKER)
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: config.bind,
            source,
        })?
        .run();

        spawn_background(&service, &config);
        for path in &paths {
            log::info!(
                "sessiond listening on http://{local}{path} (database: {:?}, location: {})",
                config.database.backend,
                config.location
            );
        }
        Ok(Self {
            server,
            port: local.port(),
            service,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        let result = self.server.await;
        let service = self.service.clone();
        match web::block(move || service.store_pending_activity()).await {
            Ok(Ok(())) => log::info!("stored pending activity; stopped"),
            Ok(Err(e)) => log::error!("could not store pending activity at shutdown: {e}"),
            Err(e) => log::error!("could not store pending activity at shutdown: {e}"),
        }
        result
    }
}

/// The periodic work: storing renewed activity, the optional sweep of expired sessions, and the
/// history purge. Each runs on a blocking thread and only logs its failures: the database may
/// be away for a while, and the next tick tries again.
fn spawn_background(service: &Arc<SessionService>, config: &Config) {
    let every = config.activity_lag.max(MIN_ACTIVITY_FLUSH);
    spawn_every(service, every, "store activity", |s| {
        s.store_pending_activity().map(drop)
    });
    if let Some(every) = config.sweep_interval {
        spawn_every(service, every, "sweep expired sessions", |s| {
            s.remove_expired().map(drop)
        });
    }
    spawn_every(service, HISTORY_PURGE_INTERVAL, "purge history", |s| {
        s.purge_history().map(|n| {
            if n > 0 {
                log::info!("purged {n} history records past retention");
            }
        })
    });
}

fn spawn_every(
    service: &Arc<SessionService>,
    every: Duration,
    what: &'static str,
    task: fn(&SessionService) -> Result<(), ServiceError>,
) {
    let service = service.clone();
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let s = service.clone();
            match web::block(move || task(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!("{what}: {e}"),
                Err(e) => log::warn!("{what}: {e}"),
            }
        }
    });
}

/// Shows the first-start password once in the log and writes it to a file only its owner reads.
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
        "no users yet: created '{}' with AdministratorRight and password {} (shown once; also in {})",
        admin.user_id,
        admin.password.expose(),
        path.display()
    );
    Ok(())
}
