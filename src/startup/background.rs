//! The periodic work of a serving instance, each on a blocking thread.

use super::*;

/// The periodic work: storing renewed activity, the optional sweep of expired sessions, and the
/// history purge. Each runs on a blocking thread and only logs its failures: the database may
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
    spawn_every(
        service,
        ACTIVE_SESSIONS_REFRESH,
        "count active sessions",
        move |s| {
            gauge.metrics.active_sessions.set(s.count_active()?);
            Ok(())
        },
    );
    spawn_every(service, HISTORY_PURGE_INTERVAL, "purge history", |s| {
        s.purge_history().map(|n| {
            if n > 0 {
                log::info!("purged {n} history records past retention");
            }
        })
    });
}

/// The revocation reader (see `service::revocation`): a task for the life of the server that
/// runs each turn on a blocking thread, with its own connection moved in and out; a lost
/// connection is opened again after a pause of one lag. Dropped with the server, connection
/// and all.
fn follow_revocations(service: &Arc<SessionService>, lag: Duration) {
    let service = service.clone();
    actix_web::rt::spawn(async move {
        let mut feed = None;
        loop {
            let s = service.clone();
            let turn = web::block(move || {
                let Some(mut f) = feed.or_else(|| s.revocation_feed()) else {
                    std::thread::sleep(lag);
                    return None;
                };
                if s.follow_revocations_once(&mut f, lag) {
                    Some(f)
                } else {
                    std::thread::sleep(lag);
                    None
                }
            })
            .await;
            feed = turn.unwrap_or(None);
        }
    });
}

fn spawn_every(
    service: &Arc<SessionService>,
    every: Duration,
    what: &'static str,
    task: impl Fn(&SessionService) -> Result<(), ServiceError> + Clone + Send + 'static,
) {
    let service = service.clone();
    actix_web::rt::spawn(async move {
        let mut ticks = actix_web::rt::time::interval(every);
        ticks.tick().await;
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
