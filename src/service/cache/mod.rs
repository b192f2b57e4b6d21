//! The sessions this instance has seen valid, and their renewals not yet stored: the reason
//! validateSession costs neither a read nor a write (docs/behaviour.md §3).
//!
//! Per session: its creation time once the database showed it valid, the latest activity known
//! here (the stored one or a renewal), and whether that renewal is still to be stored. A hit
//! judges expiry by the clock at the call with those two instants; anything that looks expired
//! is read again from the database (another instance may have renewed it), never refused from
//! here. A background task stores what is pending every `activity_lag` in one transaction
//! ([`SessionCache::take`]), and so does anything that judges expiry from the database in bulk
//! and a graceful shutdown; single lookups combine the stored time with what is known here
//! ([`SessionCache::latest`]), so this instance never sees a session older than it is.
//!
//! Revocation: a session ended here is dropped at once ([`SessionCache::revoke`]); one ended
//! elsewhere is dropped by the revocation reader within the revocation lag. A miss reads the
//! row and then inserts, and the session may be ended and its revocation processed in
//! between: the miss takes an epoch before its read ([`SessionCache::epoch`]) and vouches for
//! the session only if no revocation came since (every revocation bumps the epoch before it
//! drops anything). While the reader does not follow the log (not started, connection lost)
//! nothing is vouched for, and losing it clears the cache.
//!
//! Hand-written rather than moka or quick_cache: a hit renews the entry in place under the
//! shard's lock (check and renewal as one step); the flush drains exactly the pending renewals,
//! which must never be evicted (they would be lost); and an eviction or a revocation must be
//! exact and immediate, where those crates evict and invalidate lazily.
//!
//! Bounded: each shard holds at most its share of the capacity of entries the flush may drop;
//! beyond that only entries with a renewal pending, which the next flush (one activity lag)
//! stores and trims back to the share. Memory is about 150 bytes an entry.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;

/// Shards of a cache large enough to share (see [`SessionCache::new`]): workers on different
/// sessions rarely meet on one lock.
const SHARDS: usize = 64;
/// Entries looked at for one to drop when a shard is full, so a full shard of pending
/// renewals does not make every insert walk it.
const EVICTION_SCAN: usize = 32;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Set when the database showed the session valid and no revocation came since: only then
    /// may a call be answered from here. `None`: a renewal to store, nothing vouched for.
    created: Option<NaiveDateTime>,
    /// The latest activity known here: the stored one when read, or a renewal.
    last: NaiveDateTime,
    /// `last` is a renewal the database does not hold yet.
    pending: bool,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    /// The IDs whose entries turned pending since the last flush (some may be gone since).
    pending: Vec<String>,
}

impl Entry {
    /// Records a renewal at `now` over the latest activity `from` (keeping a later one). True
    /// when the entry just turned pending, for the shard's list of what the flush stores.
    fn renew(&mut self, from: NaiveDateTime, now: NaiveDateTime) -> bool {
        self.last = from.max(now);
        !std::mem::replace(&mut self.pending, true)
    }
}

impl Shard {
    /// Renews `id` at `now` if `alive` holds for its latest activity (the later of `stored`
    /// and what is known here), making an entry for it when it had none (room made within
    /// `cap`). False when dead, the entry left as it was.
    fn renew_if_alive(
        &mut self,
        id: &str,
        stored: NaiveDateTime,
        now: NaiveDateTime,
        cap: usize,
        alive: impl FnOnce(NaiveDateTime) -> bool,
    ) -> bool {
        let latest = self.map.get(id).map_or(stored, |e| e.last.max(stored));
        if !alive(latest) {
            return false;
        }
        if !self.map.contains_key(id) {
            self.make_room(cap);
        }
        let e = self.map.entry(id.to_owned()).or_insert(Entry {
            created: None,
            last: latest,
            pending: false,
        });
        if e.renew(latest, now) {
            self.pending.push(id.to_owned());
        }
        true
    }

    /// Makes room for one entry if the shard holds `cap` or more: drops one with no pending
    /// renewal. If none is found the entry goes in anyway (it holds a renewal that must not be
    /// lost) and the next flush trims the shard back.
    fn make_room(&mut self, cap: usize) {
        if self.map.len() < cap {
            return;
        }
        let victim = self
            .map
            .iter()
            .take(EVICTION_SCAN)
            .find(|(_, e)| !e.pending)
            .map(|(id, _)| id.clone());
        if let Some(id) = victim {
            self.map.remove(&id);
        }
    }

    fn trim(&mut self, cap: usize) {
        if self.map.len() <= cap {
            return;
        }
        let excess = self.map.len() - cap;
        let victims: Vec<String> = self
            .map
            .iter()
            .filter(|(_, e)| !e.pending)
            .take(excess)
            .map(|(id, _)| id.clone())
            .collect();
        for id in victims {
            self.map.remove(&id);
        }
    }
}

pub struct SessionCache {
    shards: Box<[Mutex<Shard>]>,
    /// Entries per shard the flush may drop.
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
    /// Bumped by every revocation and clearing, before it drops anything.
    epoch: AtomicU64,
    /// Until when (nanoseconds after `base`) the revocation reader is known to follow the log:
    /// the start of its last good read plus the revocation lag. Only before it is anything
    /// answered or vouched for, so a reader stuck on a dead network, not only one that
    /// failed, stops the hits within the lag. 0: not followed.
    fresh_until: AtomicU64,
    /// The lag of the last good read, in nanoseconds: how long a miss may wait for the next.
    lag: AtomicU64,
    /// Signalled at each good read, for misses that wait for it ([`SessionCache::await_following`]).
    read: (Mutex<()>, Condvar),
    base: Instant,
}

impl Default for SessionCache {
    /// A cache that vouches for nothing until told it is followed; for unit tests and the CLI.
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl SessionCache {
    /// Holds about `capacity` entries (at least one). Small caches get one shard, so the
    /// bound is exact; larger ones [`SHARDS`], each with its share.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = if capacity >= SHARDS * 16 { SHARDS } else { 1 };
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_shard: capacity / shards,
            hasher: Default::default(),
            epoch: AtomicU64::new(0),
            fresh_until: AtomicU64::new(0),
            lag: AtomicU64::new(0),
            read: (Mutex::new(()), Condvar::new()),
            base: Instant::now(),
        }
    }

    fn shard(&self, id: &str) -> MutexGuard<'_, Shard> {
        let i = if self.shards.len() == 1 {
            0
        } else {
            (self.hasher.hash_one(id) as usize) % self.shards.len()
        };
        // A panic while holding this lock cannot leave the map half-written; keep serving.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn each_shard(&self) -> impl Iterator<Item = MutexGuard<'_, Shard>> {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn nanos_since_base(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The revocation reader read the whole log in a read that started at `started`: the
    /// cache may answer until `lag` after that.
    pub fn followed(&self, started: Instant, lag: Duration) {
        let until = self.nanos_since_base(started + lag).max(1);
        self.lag.store(
            u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.fresh_until.store(until, Ordering::SeqCst);
        // Under the lock: a waiter checks and sleeps under it, so none misses this.
        let _held = self.read.0.lock().unwrap_or_else(|e| e.into_inner());
        self.read.1.notify_all();
    }

    /// Waits, at most one lag, for the reader to make the cache fresh again, when it follows
    /// the log but is late (its read is under way on a busy machine); true when fresh. A miss
    /// that only lacks a fresh read waits for it instead of reading the database: under load
    /// the database reads of every caller are what makes the reader later still. False at
    /// once when the reader is not following at all or is late by more than a lag (a lost
    /// link: the database, or its error, answers).
    pub fn await_following(&self) -> bool {
        let until = self.fresh_until.load(Ordering::SeqCst);
        let lag = self.lag.load(Ordering::Relaxed);
        let now = self.nanos_since_base(Instant::now());
        if now < until {
            return true;
        }
        if until == 0 || now - until > lag {
            return false;
        }
        let deadline = Instant::now() + Duration::from_nanos(lag);
        let mut held = self.read.0.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.is_following() {
                return true;
            }
            if self.fresh_until.load(Ordering::SeqCst) == 0 {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            held = match self.read.1.wait_timeout(held, left) {
                Ok((held, _)) => held,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Whether a hit on `id` could be answered but for a fresh read of the log: it is here and
    /// vouched for.
    pub fn vouches_for(&self, id: &str) -> bool {
        self.shard(id)
            .map
            .get(id)
            .is_some_and(|e| e.created.is_some())
    }

    /// The reader lost the log: clears the cache. True if it was followed until now.
    pub fn unfollowed(&self) -> bool {
        let was = self.fresh_until.swap(0, Ordering::SeqCst) != 0;
        self.clear();
        // Waiting misses go to the database now rather than at the end of their wait.
        let _held = self.read.0.lock().unwrap_or_else(|e| e.into_inner());
        self.read.1.notify_all();
        was
    }

    /// Whether the last good read of the log is recent enough for answers from here.
    pub fn is_following(&self) -> bool {
        self.nanos_since_base(Instant::now()) < self.fresh_until.load(Ordering::SeqCst)
    }

    /// What a miss takes before its database read and hands to [`SessionCache::admit`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// A hit: the session was seen valid, and `alive(created, last)` holds for what is known
    /// here; renews it at `now`. `false` is no verdict: read the database.
    pub fn hit(
        &self,
        id: &str,
        now: NaiveDateTime,
        alive: impl FnOnce(NaiveDateTime, NaiveDateTime) -> bool,
    ) -> bool {
        if !self.is_following() {
            return false;
        }
        let mut guard = self.shard(id);
        // One lookup: the entry and the shard's pending list are borrowed apart.
        let shard = &mut *guard;
        let Some(e) = shard.map.get_mut(id) else {
            return false;
        };
        let Some(created) = e.created else {
            return false;
        };
        if !alive(created, e.last) {
            return false;
        }
        if e.renew(e.last, now) {
            shard.pending.push(id.to_owned());
        }
        true
    }

    /// A miss read the row (`created`, `stored`): renews the session at `now` if `alive` holds
    /// for its latest activity (the later of `stored` and what is known here), and vouches for
    /// it from now on if no revocation came since `epoch` was taken. False when dead.
    pub fn admit(
        &self,
        id: &str,
        epoch: u64,
        created: NaiveDateTime,
        stored: NaiveDateTime,
        now: NaiveDateTime,
        alive: impl FnOnce(NaiveDateTime) -> bool,
    ) -> bool {
        let mut shard = self.shard(id);
        // Under the shard's lock: a revocation bumps the epoch before it takes this lock, so
        // either it comes after this insert and drops it, or this sees the new epoch.
        let vouch = self.is_following() && self.epoch() == epoch;
        if !shard.renew_if_alive(id, stored, now, self.per_shard, alive) {
            // Expired: nothing to answer from here any more (a pending renewal stays stored).
            if shard.map.get(id).is_some_and(|k| !k.pending) {
                shard.map.remove(id);
            }
            return false;
        }
        if vouch {
            if let Some(e) = shard.map.get_mut(id) {
                e.created = Some(created);
            }
        }
        true
    }

    /// Renews a session at `now` if `alive` holds for its latest activity (the later of
    /// `stored` and what is known here); one lock for the check and the renewal. False when
    /// dead. Vouches for nothing: the caller-session check reads the row and user anyway.
    pub fn renew_if(
        &self,
        id: &str,
        stored: NaiveDateTime,
        now: NaiveDateTime,
        alive: impl FnOnce(NaiveDateTime) -> bool,
    ) -> bool {
        let cap = self.per_shard;
        self.shard(id).renew_if_alive(id, stored, now, cap, alive)
    }

    /// The later of the stored last activity and what is known here.
    pub fn latest(&self, id: &str, stored: NaiveDateTime) -> NaiveDateTime {
        self.shard(id)
            .map
            .get(id)
            .map_or(stored, |e| e.last.max(stored))
    }

    /// Drops sessions that ended: nothing is answered for them from here from now on.
    pub fn revoke<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for id in ids {
            self.shard(id).map.remove(id);
        }
    }

    /// Vouches for nothing any more (the revocations may have been missed); keeps the pending
    /// renewals, which are still to be stored.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for mut shard in self.each_shard() {
            shard.map.retain(|_, e| {
                e.created = None;
                e.pending
            });
        }
    }

    /// The pending renewals, for the flush; the entries stay, no longer pending, and shards
    /// over their share are trimmed back to it.
    pub fn take(&self) -> Vec<(String, NaiveDateTime)> {
        let mut out = Vec::new();
        for mut shard in self.each_shard() {
            let Shard { map, pending } = &mut *shard;
            for id in pending.drain(..) {
                if let Some(e) = map.get_mut(&id) {
                    if e.pending {
                        e.pending = false;
                        out.push((id, e.last));
                    }
                }
            }
            shard.trim(self.per_shard);
        }
        out
    }

    /// Puts back renewals whose store failed, keeping any later ones recorded meanwhile.
    pub fn restore(&self, renewals: Vec<(String, NaiveDateTime)>) {
        for (id, at) in renewals {
            // Always alive, and never refused for room: a renewal must not be lost.
            self.shard(&id)
                .renew_if_alive(&id, at, at, usize::MAX, |_| true);
        }
    }

    /// Whether any renewal waits to be stored.
    pub fn has_pending(&self) -> bool {
        self.each_shard().any(|s| !s.pending.is_empty())
    }

    /// Entries held, pending or not.
    pub fn len(&self) -> usize {
        self.each_shard().map(|s| s.map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
