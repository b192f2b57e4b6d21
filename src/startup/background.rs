//! The periodic work of a serving instance, each on a blocking thread.

use super::*;

/// The periodic work: storing renewed activity, the optional sweep of expired sessions, the
/// directory sync, and the history purge. Each runs on a blocking thread and only logs its failures: the database may
/// be away for a while, and the next tick tries again.
pub(super) fn spawn_background(
    service: &Arc<SessionService>,
    config: &Config,
    telemetry: &Arc<Telemetry>,
) {
    let every = config.activity_lag.max(MIN_ACTIVITY_FLUSH);
    spawn_every(service, every, "store activity", |s| {
        s.store_pending_activity().map(drop)
    });
    follow_revocations(service, config.revocation_lag);
    if let Some(every) = config.sweep_interval {
        spawn_every(service, every, "sweep expired sessions", |s| {
            s.remove_expired().map(drop)
        });
    }
    actix_web::rt::spawn(async {
        let mut ticks = actix_web::rt::time::interval(MEMORY_RETURN_INTERVAL);
        loop {
            ticks.tick().await;
            // Off the worker: trimming walks the allocator's arenas.
            let _ = web::block(http::return_freed_memory).await;
        }
    });
    let gauge = telemetry.clone();
    // Migrated and about to listen: ready, until a check says otherwise.
    gauge.metrics.ready.set(1);
    // Counted at once, then every refresh: a gauge of 0 for the first interval after a start
    // would tell a dashboard that every session was lost.
    spawn_every_from_start(
        service,
        ACTIVE_SESSIONS_REFRESH,
        "count active sessions",
        move |s| {
            // Readiness too, so that `sessiond_ready` holds without anyone polling /readyz.
            gauge.metrics.ready.set(i64::from(s.readiness().is_ok()));
            gauge.metrics.active_sessions.set(s.count_active()?);
            Ok(())
        },
    );
    if let Some(directory) = service.directory_settings() {
        spawn_every(service, directory.sync_interval, "directory sync", |s| {
            s.sync_directory()
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

/// The revocation reader (see `service::revocation`): a thread of its own, not a turn on the
/// shared blocking threads. There, under a saturating load, its read queued behind the very
/// database reads that its lateness causes (a hit needs a read begun within the lag), and on
/// PostgreSQL 6 % of single-session validates fell back to the database, with a p99 of 340 ms.
/// It holds the service only during a turn, and ends once the service is gone; a lost
/// connection is opened again after a pause of one lag.
fn follow_revocations(service: &Arc<SessionService>, lag: Duration) {
    let service = Arc::downgrade(service);
    let spawned = std::thread::Builder::new()
        .name("sessiond-revocations".into())
        .spawn(move || {
            let mut feed = None;
            while let Some(s) = service.upgrade() {
                feed = match feed.take().or_else(|| s.revocation_feed()) {
                    Some(mut f) => s.follow_revocations_once(&mut f, lag).then_some(f),
                    None => None,
                };
                drop(s);
                if feed.is_none() {
                    std::thread::sleep(lag);
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the revocation reader (the cache stays unused): {e}");
    }
}

fn spawn_every(
    service: &Arc<SessionService>,
    every: Duration,
    what: &'static str,
    task: impl Fn(&SessionService) -> Result<(), ServiceError> + Clone + Send + 'static,
) {
    spawn_ticking(service, every, what, false, task)
}

/// As [`spawn_every`], with the first run at once rather than one interval in.
fn spawn_every_from_start(
    service: &Arc<SessionService>,
    every: Duration,
    what: &'static str,
    task: impl Fn(&SessionService) -> Result<(), ServiceError> + Clone + Send + 'static,
) {
    spawn_ticking(service, every, what, true, task)
}

fn spawn_ticking(
    service: &Arc<SessionService>,
    every: Duration,
    what: &'static str,
    at_once: bool,
    task: impl Fn(&SessionService) -> Result<(), ServiceError> + Clone + Send + 'static,
) {
    let service = service.clone();
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        if !at_once {
            ticks.tick().await;
        }
        loop {
            ticks.tick().await;
            let s = service.clone();
            let task = task.clone();
            match web::block(move || task(&s)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::warn!("{what}: {e}"),
                Err(e) => log::warn!("{what}: {e}"),
            }
        }
    });
}
