//! The kinds of failure a caller of the service can act on, and the policy for their causes.
//!
//! Policy: the real cause of a failure that is ours (a database error, a hashing failure, the
//! random source) is logged here, once, where it is turned into a kind; the caller gets only
//! the kind (`Unavailable` when the database cannot be reached or logins are queued past their
//! wait, `Internal` for anything else), never the text. The kinds a client caused
//! (`InvalidRequest` and the rest) carry a message written for that client.

use super::identity::local::HashError;
use crate::store;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("authentication failed")]
    AuthenticationFailed,
    #[error("the account is locked after too many failed password checks")]
    AccountLocked,
    #[error("the session is unknown, ended or expired")]
    InvalidSession,
    #[error("the session's user lacks the right for this operation")]
    AccessDenied,
    #[error("no such session")]
    SessionNotFound,
    #[error("{0}")]
    InvalidRequest(String),
    /// The user has the most active sessions allowed and the policy refuses a new one.
    #[error("the user has the most sessions allowed; end one first")]
    SessionLimitReached,
    #[error("the service is unavailable (its database or directory); try again shortly")]
    Unavailable,
    /// More logins than the password checks can take waited past the login wait.
    #[error("too many logins at once; try again")]
    LoginsBusy,
    #[error("internal error")]
    Internal,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    /// A request the rules refuse, with a message for the client.
    pub fn invalid(message: impl ToString) -> Self {
        ServiceError::InvalidRequest(message.to_string())
    }

    /// An internal failure: its cause goes to the log, the caller sees `Internal`.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        log::error!("{cause}");
        ServiceError::Internal
    }
}

impl From<store::QueryError> for ServiceError {
    fn from(e: store::QueryError) -> Self {
        if store::is_disk_full(&e) {
            log::error!("the disk holding the database is full: writes answer SERVICE_UNAVAILABLE until there is space ({e})");
            ServiceError::Unavailable
        } else if store::is_unavailable(&e) {
            log::error!("database unavailable: {e}");
            ServiceError::Unavailable
        } else {
            log::error!("database error: {e}");
            ServiceError::Internal
        }
    }
}

impl From<store::PoolError> for ServiceError {
    fn from(e: store::PoolError) -> Self {
        log::error!("no database connection: {e}");
        ServiceError::Unavailable
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        ServiceError::internal(e)
    }
}
