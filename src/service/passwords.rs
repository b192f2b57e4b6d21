//! Argon2id password hashing on a few dedicated threads.
//!
//! Argon2 is slow and memory-hungry on purpose (19 MiB and ~2 passes per hash with the default
//! parameters). Unbounded, a flood of logins would take every core and starve validateSession.
//! So hashes run on `concurrency` threads of their own, fed by a bounded queue; a caller waits
//! at most `wait` for its turn. Running them on their own threads also bounds memory: the
//! allocator keeps each hashing thread's 19 MiB for reuse, and with hashes spread over every
//! request thread that came to gigabytes under a login flood (seen in the benchmark).

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::domain::Password;

/// Logins that may wait for a hashing thread; beyond that they are refused at once.
const QUEUE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many password checks waiting")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(Password),
    Verify(Option<String>, Password),
}

enum Done {
    Hashed(Result<String, HashError>),
    Verified(Result<bool, HashError>),
}

struct Job {
    work: Work,
    /// Past this the caller has given up: skip the work.
    deadline: Instant,
    reply: mpsc::Sender<Done>,
}

/// What the hashing threads share: the algorithm and the dummy hash.
struct Hasher {
    argon: Argon2<'static>,
    /// Checked against when the user does not exist, so that costs what a wrong password does.
    dummy_hash: String,
}

impl Hasher {
    fn hash(&self, password: &Password) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    fn verify(&self, stored: Option<&str>, password: &Password) -> Result<bool, HashError> {
        let hash = PasswordHash::new(stored.unwrap_or(&self.dummy_hash))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let ok = self
            .argon
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok();
        Ok(ok && stored.is_some())
    }

    fn serve(&self, jobs: &Mutex<Receiver<Job>>) {
        loop {
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            // The sender is gone: the service was dropped.
            let Ok(job) = job else { return };
            if Instant::now() > job.deadline {
                continue;
            }
            let done = match job.work {
                Work::Hash(p) => Done::Hashed(self.hash(&p)),
                Work::Verify(stored, p) => Done::Verified(self.verify(stored.as_deref(), &p)),
            };
            let _ = job.reply.send(done);
        }
    }
}

pub struct Passwords {
    jobs: SyncSender<Job>,
    wait: Duration,
}

impl Passwords {
    pub fn new(concurrency: usize, wait: Duration) -> Result<Self, HashError> {
        let argon = Argon2::default();
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(b"no user has this password", &salt)
            .map_err(|e| HashError::Failed(e.to_string()))?
            .to_string();
        let hasher = Arc::new(Hasher { argon, dummy_hash });
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..concurrency.max(1) {
            let (hasher, rx) = (hasher.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("sessiond-hash-{n}"))
                .spawn(move || hasher.serve(&rx))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Self { jobs: tx, wait })
    }

    fn run(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            work,
            deadline: Instant::now() + self.wait,
            reply,
        };
        self.jobs.try_send(job).map_err(|_| HashError::Busy)?;
        answer.recv_timeout(self.wait).map_err(|_| HashError::Busy)
    }

    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        match self.run(Work::Hash(password.clone()))? {
            Done::Hashed(result) => result,
            Done::Verified(_) => Err(HashError::Failed("mismatched answer".into())),
        }
    }

    /// Checks a password against a stored PHC string; `None` for the stored hash checks against
    /// a dummy so an unknown user takes as long as a wrong password.
    pub fn verify(&self, stored: Option<&str>, password: &Password) -> Result<bool, HashError> {
        match self.run(Work::Verify(stored.map(str::to_owned), password.clone()))? {
            Done::Verified(result) => result,
            Done::Hashed(_) => Err(HashError::Failed("mismatched answer".into())),
        }
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
    fn a_full_queue_is_busy_not_a_hang() {
        // No time to wait at all: the answer cannot come in time.
        let p = Passwords::new(1, Duration::ZERO).unwrap();
        assert!(matches!(
            p.verify(None, &Password::new("x".into())),
            Err(HashError::Busy)
        ));
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        let p = Passwords::new(1, Duration::from_secs(5)).unwrap();
        assert!(!p
            .verify(None, &Password::new("no user has this password".into()))
            .unwrap());
    }
}
