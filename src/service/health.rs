//! What the health and metrics endpoints ask of the service: whether the store can serve, the
//! pool's state, and the number of active sessions.

use crate::store::{sessions, NotReady, PoolStatus};

use super::{Result, SessionService};

impl SessionService {
    /// `Ok` when the database answers within the database timeout and its migrations are
    /// current; otherwise the reason, in words fit for a probe's body (the cause is logged).
    pub fn readiness(&self) -> Result<(), String> {
        self.store.check_ready().map_err(|e| {
            log::warn!("not ready: {e}");
            match e {
                NotReady::Unreachable(_) => {
                    "database unreachable: no answer within the database timeout".to_owned()
                }
                pending => pending.to_string(),
            }
        })
    }

    pub fn pool_status(&self) -> PoolStatus {
        self.store.pool_status()
    }

    /// Sessions neither ended nor expired, counted in the database.
    pub fn count_active(&self) -> Result<i64> {
        let cutoffs = self.cutoffs(self.now());
        Ok(sessions::count_active(&mut *self.conn()?, cutoffs)?)
    }
}
