//! Connections and descriptors: each worker's connection cap, under the process's descriptor
//! limit (its soft value raised to the hard one first).

use super::*;

/// actix's per-worker connection cap, from the descriptor limit (raised first): room for the
/// database and files is kept aside, the rest shared among the workers.
pub(super) fn connections_per_worker(config: &Config) -> usize {
    let limit = raise_descriptor_limit();
    let reserved =
        RESERVED_DESCRIPTORS + DESCRIPTORS_PER_DB_CONNECTION * u64::from(config.db_pool_size);
    let workers = config.workers.max(1) as u64;
    let per_worker = limit.saturating_sub(reserved) / workers;
    usize::try_from(per_worker)
        .unwrap_or(usize::MAX)
        .clamp(1, ACTIX_MAX_CONNECTIONS)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit in force.
/// Hand-written: two libc calls, no crate needed for them.
pub(super) fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            } else {
                log::warn!(
                    "could not raise the open-file limit from {} to {}",
                    limit.rlim_cur,
                    limit.rlim_max
                );
            }
        }
    }
    // RLIM_INFINITY is u64::MAX: nothing to cap against then but actix's own default.
    limit.rlim_cur
}
