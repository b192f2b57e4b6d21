//! Argon2id password hashing on a few dedicated threads.
//!
//! Argon2 is slow and memory-hungry on purpose (19 MiB and ~2 passes per hash with the default
//! parameters). Unbounded, a flood of logins would take every core and starve validateSession.
//! So hashes run on `concurrency` threads of their own, fed by a queue. Running them on their
//! own threads also bounds memory: the allocator keeps each hashing thread's 19 MiB for reuse,
//! and with hashes spread over every request thread that came to gigabytes under a login flood
//! (seen in the benchmark).
//!
//! How many wait, and for how long, is not decided here: the login gate in `auth.rs` lets only
//! a few password checks at a time reach this queue, so it never holds more than those.
//! Which hash is checked, and what the answer means, is decided in `identity`.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::domain::Password;

/// Room in the queue. The gate admits fewer logins than this, and the CLI hashes one at a time.
const QUEUE: usize = 256;

/// A password no one can have: what a check with an unparseable password hashes, to cost what
/// any other check does.
const NO_ONES_PASSWORD: &str = "no user has this password";

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(Password),
    Verify(Option<String>, Option<Password>),
}

enum Done {
    Hashed(Result<String, HashError>),
    Verified(Result<bool, HashError>),
}

struct Job {
    work: Work,
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

    fn verify(&self, stored: Option<&str>, password: Option<&Password>) -> Result<bool, HashError> {
        let hash = PasswordHash::new(stored.unwrap_or(&self.dummy_hash))
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let given = password.map_or(NO_ONES_PASSWORD, Password::expose);
        let ok = self.argon.verify_password(given.as_bytes(), &hash).is_ok();
        Ok(ok && stored.is_some() && password.is_some())
    }

    fn serve(&self, jobs: &Mutex<Receiver<Job>>) {
        loop {
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            // The sender is gone: the service was dropped.
            let Ok(job) = job else { return };
            let done = match job.work {
                Work::Hash(p) => Done::Hashed(self.hash(&p)),
                Work::Verify(stored, p) => {
                    Done::Verified(self.verify(stored.as_deref(), p.as_ref()))
                }
            };
            let _ = job.reply.send(done);
        }
    }
}

pub struct Passwords {
    jobs: SyncSender<Job>,
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let argon = Argon2::default();
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon
            .hash_password(NO_ONES_PASSWORD.as_bytes(), &salt)
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
        Ok(Self { jobs: tx })
    }

    fn run(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = mpsc::channel();
        let gone = || HashError::Failed("the hashing threads are gone".into());
        self.jobs.send(Job { work, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())
    }

    pub fn hash(&self, password: &Password) -> Result<String, HashError> {
        match self.run(Work::Hash(password.clone()))? {
            Done::Hashed(result) => result,
            Done::Verified(_) => Err(HashError::Failed("mismatched answer".into())),
        }
    }

    /// Checks a password against a stored PHC string. `None` for the stored hash (no such user)
    /// or for the password (one no one can have) checks against a dummy and is false, so it
    /// takes as long as a wrong password.
    pub fn verify(
        &self,
        stored: Option<&str>,
        password: Option<&Password>,
    ) -> Result<bool, HashError> {
        let work = Work::Verify(stored.map(str::to_owned), password.cloned());
        match self.run(work)? {
            Done::Verified(result) => result,
            Done::Hashed(_) => Err(HashError::Failed("mismatched answer".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s.into()).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let p = Passwords::new(1).unwrap();
        let hash = p.hash(&pw("s3cret")).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(p.verify(Some(&hash), Some(&pw("s3cret"))).unwrap());
        assert!(!p.verify(Some(&hash), Some(&pw("S3cret"))).unwrap());
    }

    #[test]
    fn an_unknown_user_never_verifies() {
        let p = Passwords::new(1).unwrap();
        assert!(!p.verify(None, Some(&pw(NO_ONES_PASSWORD))).unwrap());
    }

    #[test]
    fn a_password_no_one_can_have_never_verifies() {
        let p = Passwords::new(1).unwrap();
        let hash = p.hash(&pw("s3cret")).unwrap();
        assert!(!p.verify(Some(&hash), None).unwrap());
    }
}
