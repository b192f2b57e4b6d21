//! The process's signals: SIGINT and SIGTERM stop gracefully, SIGHUP reloads the TLS pair.

use super::*;

// ----- SIGINT, SIGTERM: stop gracefully -----

/// The first SIGINT or SIGTERM stops accepting and lets requests in flight finish (up to
/// [`SHUTDOWN_TIMEOUT_SECS`]); a second one stops at once.
pub(super) fn stop_on_signals(server: actix_web::dev::ServerHandle) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::signal::unix::{signal, SignalKind};
    let stopping = Arc::new(AtomicBool::new(false));
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
    ] {
        let mut signals = match signal(kind) {
            Ok(signals) => signals,
            Err(e) => {
                log::warn!("cannot listen for {name}, so no graceful stop on it: {e}");
                continue;
            }
        };
        let (server, stopping) = (server.clone(), stopping.clone());
        actix_web::rt::spawn(async move {
            while signals.recv().await.is_some() {
                if !stopping.swap(true, Ordering::SeqCst) {
                    log::info!(
                        "{name} received: stopping gracefully (requests in flight get up to \
                         {SHUTDOWN_TIMEOUT_SECS} s; another signal stops at once)"
                    );
                    // Not awaited: the stop completes when the server's own future does.
                    actix_web::rt::spawn(server.clone().stop(true));
                } else {
                    log::warn!("{name} received again: stopping now");
                    actix_web::rt::spawn(server.clone().stop(false));
                }
            }
        });
    }
}

// ----- SIGHUP: reload the TLS certificate -----

/// Reads the certificate and key again on every SIGHUP; the server keeps running whatever the
/// outcome, with the old pair when the new one is bad. Without TLS a SIGHUP (systemd's reload)
/// is only logged, rather than ending the process as it would by default.
pub(super) fn reload_on_sighup(certificates: Option<Arc<Certificates>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(e) => {
            log::warn!("cannot listen for SIGHUP, so no certificate reload: {e}");
            return;
        }
    };
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(certificates) = certificates.clone() else {
                log::info!("SIGHUP: no TLS certificate configured, nothing to reload");
                continue;
            };
            match web::block(move || {
                let outcome = certificates.reload();
                (certificates, outcome)
            })
            .await
            {
                Ok((certificates, Ok(summary))) => {
                    log_certificate(certificates.cert_path(), &summary, "SIGHUP: now serving")
                }
                Ok((_, Err(e))) => {
                    log::warn!("SIGHUP: {e}; still serving the previous certificate")
                }
                Err(e) => log::warn!(
                    "SIGHUP: reload failed ({e}); still serving the previous certificate"
                ),
            }
        }
    });
}

pub(super) fn log_certificate(path: &Path, summary: &CertSummary, what: &str) {
    if summary.expired {
        log::warn!(
            "{what} the TLS certificate from {} ({summary}), which has EXPIRED",
            path.display()
        );
    } else {
        log::info!(
            "{what} the TLS certificate from {} ({summary})",
            path.display()
        );
    }
}
