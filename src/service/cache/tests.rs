use super::*;
use chrono::NaiveDate;

fn at(s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, s)
        .unwrap()
}

fn followed(capacity: usize) -> SessionCache {
    let cache = SessionCache::new(capacity);
    cache.followed(Instant::now(), Duration::from_secs(3600));
    cache
}

#[test]
fn latest_never_goes_backwards() {
    let log = SessionCache::default();
    assert!(log.renew_if("a", at(0), at(5), |_| true));
    assert!(log.renew_if("a", at(0), at(3), |_| true));
    assert_eq!(log.latest("a", at(1)), at(5));
    assert_eq!(log.latest("a", at(9)), at(9));
    assert_eq!(log.latest("b", at(2)), at(2));
}

#[test]
fn renew_if_renews_only_what_is_alive() {
    let log = SessionCache::default();
    assert!(!log.renew_if("a", at(1), at(9), |last| last > at(5)));
    assert!(log.is_empty());
    assert!(log.renew_if("a", at(6), at(9), |last| last > at(5)));
    assert_eq!(log.latest("a", at(0)), at(9));
    // The pending time counts: a stale stored value does not kill a renewed session.
    assert!(log.renew_if("a", at(1), at(10), |last| last > at(5)));
    assert_eq!(log.latest("a", at(0)), at(10));
}

#[test]
fn a_failed_store_puts_renewals_back_without_losing_newer_ones() {
    let log = SessionCache::default();
    log.renew_if("a", at(0), at(5), |_| true);
    let taken = log.take();
    assert_eq!(taken, vec![("a".to_owned(), at(5))]);
    assert!(!log.has_pending());
    log.renew_if("a", at(0), at(7), |_| true);
    log.restore(taken);
    assert_eq!(log.latest("a", at(0)), at(7));
    assert_eq!(log.take(), vec![("a".to_owned(), at(7))]);
    assert!(log.take().is_empty(), "a flush takes each renewal once");
}

#[test]
fn a_hit_needs_a_vouched_entry_and_a_live_session() {
    let cache = followed(10);
    assert!(!cache.hit("a", at(1), |_, _| true), "unknown");
    cache.renew_if("a", at(0), at(1), |_| true);
    assert!(
        !cache.hit("a", at(2), |_, _| true),
        "renewed only: not vouched"
    );
    let epoch = cache.epoch();
    assert!(cache.admit("a", epoch, at(0), at(1), at(2), |_| true));
    assert!(cache.hit("a", at(3), |created, last| {
        created == at(0) && last == at(2)
    }));
    assert_eq!(cache.latest("a", at(0)), at(3), "the hit renewed it");
    assert!(
        !cache.hit("a", at(4), |_, _| false),
        "looks expired: no verdict"
    );
}

#[test]
fn a_revocation_between_the_read_and_the_insert_keeps_the_session_out() {
    let cache = followed(10);
    // The miss takes the epoch, then reads the row (valid)...
    let epoch = cache.epoch();
    // ...meanwhile the session ends and its revocation is processed...
    cache.revoke(["a"]);
    // ...then the miss answers from its read, but vouches for nothing.
    assert!(cache.admit("a", epoch, at(0), at(1), at(2), |_| true));
    assert!(!cache.hit("a", at(3), |_, _| true));
    // A fresh read after the revocation may vouch again.
    let epoch = cache.epoch();
    assert!(cache.admit("b", epoch, at(0), at(1), at(2), |_| true));
    assert!(cache.hit("b", at(3), |_, _| true));
}

#[test]
fn nothing_is_vouched_for_unless_the_log_is_followed() {
    let cache = SessionCache::new(10);
    let epoch = cache.epoch();
    assert!(cache.admit("a", epoch, at(0), at(1), at(2), |_| true));
    assert!(!cache.hit("a", at(3), |_, _| true));
    cache.followed(Instant::now(), Duration::from_secs(3600));
    let epoch = cache.epoch();
    assert!(cache.admit("a", epoch, at(0), at(1), at(2), |_| true));
    assert!(cache.hit("a", at(3), |_, _| true));
    // Losing the log clears: pending renewals stay to be stored, nothing is vouched for.
    assert!(cache.unfollowed());
    assert!(!cache.hit("a", at(4), |_, _| true));
    assert_eq!(cache.take(), vec![("a".to_owned(), at(3))]);
}

#[test]
fn no_hit_once_the_last_read_of_the_log_is_older_than_the_lag() {
    let cache = SessionCache::new(10);
    cache.followed(Instant::now(), Duration::from_secs(3600));
    assert!(cache.admit("a", cache.epoch(), at(0), at(1), at(2), |_| true));
    assert!(cache.hit("a", at(3), |_, _| true));
    // A reader stuck since a read that started long ago (a dead network, no error yet).
    cache.followed(
        Instant::now() - Duration::from_secs(2),
        Duration::from_secs(1),
    );
    assert!(!cache.is_following());
    assert!(
        !cache.hit("a", at(4), |_, _| true),
        "answered on a stale log"
    );
    // Its next good read brings the answers back.
    cache.followed(Instant::now(), Duration::from_secs(3600));
    assert!(cache.hit("a", at(5), |_, _| true));
}

#[test]
fn a_full_cache_stays_within_its_capacity_after_a_flush() {
    let cache = followed(10);
    for i in 0..100 {
        let id = format!("s{i}");
        assert!(cache.admit(&id, cache.epoch(), at(0), at(0), at(1), |_| true));
    }
    // Every entry holds a renewal: none may be dropped before it is stored.
    assert_eq!(cache.take().len(), 100);
    assert!(cache.len() <= 10, "{} entries", cache.len());
    for i in 100..200 {
        let id = format!("s{i}");
        cache.admit(&id, cache.epoch(), at(0), at(0), at(1), |_| true);
        cache.take();
        assert!(cache.len() <= 10, "{} entries", cache.len());
    }
}

#[test]
fn a_large_cache_is_sharded_within_its_capacity() {
    let cache = followed(SHARDS * 16);
    assert_eq!(cache.shards.len(), SHARDS);
    for i in 0..SHARDS * 64 {
        cache.admit(&format!("s{i}"), cache.epoch(), at(0), at(0), at(1), |_| {
            true
        });
    }
    cache.take();
    assert!(cache.len() <= SHARDS * 16);
}

#[test]
fn a_miss_waits_for_a_late_reader_only_while_it_is_late_by_less_than_a_lag() {
    // Long enough that a loaded machine's scheduling cannot pass for a wait, or end one.
    let lag = Duration::from_secs(1);
    let quick = Duration::from_millis(300);
    // Never followed: no wait.
    let cache = SessionCache::new(10);
    let t = Instant::now();
    assert!(!cache.await_following());
    assert!(t.elapsed() < quick);
    // Fresh: at once.
    cache.followed(Instant::now(), lag);
    assert!(cache.await_following());
    // Late by a little: the next good read, made on another thread, ends the wait.
    cache.followed(Instant::now() - lag - Duration::from_millis(10), lag);
    assert!(!cache.is_following());
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(40));
            cache.followed(Instant::now(), lag);
        });
        assert!(cache.await_following());
    });
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(35) && waited < lag,
        "{waited:?}"
    );
    // Late by a little, and no read comes: false after at most a lag.
    cache.followed(Instant::now() - lag - Duration::from_millis(10), lag);
    let t = Instant::now();
    assert!(!cache.await_following());
    assert!(
        t.elapsed() >= lag - Duration::from_millis(20),
        "{:?}",
        t.elapsed()
    );
    // Late by more than a lag (a reader stuck on a lost link): no wait.
    cache.followed(Instant::now() - 3 * lag, lag);
    let t = Instant::now();
    assert!(!cache.await_following());
    assert!(t.elapsed() < quick);
    // Unfollowed: no wait, and a wait under way ends at once.
    cache.followed(Instant::now() - lag - Duration::from_millis(10), lag);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            cache.unfollowed();
        });
        assert!(!cache.await_following());
    });
    assert!(t.elapsed() < quick, "{:?}", t.elapsed());
    assert!(!cache.await_following());
}

#[test]
fn only_a_vouched_entry_is_worth_waiting_for() {
    let cache = followed(10);
    assert!(!cache.vouches_for("a"));
    assert!(cache.renew_if("a", at(0), at(1), |_| true));
    assert!(!cache.vouches_for("a"), "renewed, not vouched");
    let epoch = cache.epoch();
    assert!(cache.admit("b", epoch, at(0), at(1), at(2), |_| true));
    assert!(cache.vouches_for("b"));
}
