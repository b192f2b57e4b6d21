//! Argon2id password hashing, with a bound on how many hashes run at once.
//!
//! Argon2 is slow and memory-hungry on purpose (19 MiB, ~2 passes per hash with the default
//! parameters). Unbounded, a flood of logins would take every core and starve validateSession;
//! so at most `concurrency` hashes run at a time and the rest wait their turn.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::domain::Password;

/// A counting semaphore for blocking threads. std has none, and tokio's needs an async caller;
/// the service is synchronous and runs on blocking threads, so this is ten lines of our own.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Permits {
    fn acquire(&self, wait: Duration) -> Option<PermitGuard<'_>> {
        let free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let (mut free, timeout) = self
            .freed
            .wait_timeout_while(free, wait, |n| *n == 0)
            .unwrap_or_else(|e| e.into_inner());
        if timeout.timed_out() && *free == 0 {
            return None;
        }
        *free -= 1;
        Some(PermitGuard(self))
    }
}

struct PermitGuard<'a>(&'a Permits);

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks waiting")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

pub struct Passwords {
    argon: Argon2<'static>,
    permits: Permits,
    wait: Duration,
    /// Checked against when the user does not exist, so that costs what a wrong password does.
    dummy_hash: String,
}

impl Passwords {
    pub fn new(concurrency: usize, wait: Duration) -> Result<Self, HashError> {
        let argon = Argon2::default();
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"no user has this password", &salt)
            .map_err(|e| HashError::Failed(e.to_string()))?
            .to_string();
        Ok(Self {
            argon,
            permits: Permits {
                free: Mutex::new(concurrency.max(1)),
                freed: Condvar::new(),
            },
            wait,
            dummy_hash,
        })
    }

    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        let _permit = self.permits.acquire(self.wait).ok_or(HashError::Busy)?;
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// Checks a password against a stored PHC string; `None` for the stored hash checks against
    /// a dummy so an unknown user takes as long as a wrong password.
    pub fn verify(&self, stored: Option<&str>, password: &Password) -> Result<bool, HashError> {
        let _permit = self.permits.acquire(self.wait).ok_or(HashError::Busy)?;
        let hash = PasswordHash::new(stored.unwrap_or(&self.dummy_hash))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let ok = self
            .argon
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok();
        Ok(ok && stored.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let p = Passwords::new(1, Duration::from_secs(5)).unwrap();
        let hash = p.hash(&Password::new("s3cret".into())).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(p
            .verify(Some(&hash), &Password::new("s3cret".into()))
            .unwrap());
        assert!(!p
            .verify(Some(&hash), &Password::new("S3cret".into()))
            .unwrap());
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        let p = Passwords::new(1, Duration::from_secs(5)).unwrap();
        assert!(!p
            .verify(None, &Password::new("no user has this password".into()))
            .unwrap());
    }
}
