//! Idle expiry and renewal (docs/behaviour.md §3), on a clock the test moves, and once on the real
//! clock.

use std::time::Duration;

use sessiond::domain::Right;

use crate::helpers::*;

const PW: &str = "pw";
const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn validate_session_renews_activity_so_a_used_session_lives_on() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    app.clock().advance(29 * MINUTE);
    assert!(app.validate(&id));
    app.clock().advance(29 * MINUTE);
    assert!(app.validate(&id), "renewed 29 minutes ago");
    app.clock().advance(30 * MINUTE + Duration::from_secs(1));
    assert!(!app.validate(&id), "idle for more than the timeout");
}

#[test]
fn an_expired_session_is_never_revived() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let id = app.get_session("viewer", PW);
    app.clock().advance(31 * MINUTE);
    assert!(!app.validate(&id));
    app.call("listActiveSessionIds", &[("sessionId", &id)])
        .assert_fault("INVALID_SESSION");
    assert!(!app.validate(&id), "a refused call must not renew it");
}

#[test]
fn the_expiry_instant_is_last_activity_plus_the_timeout_exactly() {
    let app = spawn_app_with_clock(|c| c.session_timeout = Duration::from_secs(90));
    app.add_user("alice", PW, None, &[]);
    let a = app.get_session("alice", PW);
    let b = app.get_session("alice", PW);
    app.clock().advance(Duration::from_secs(90));
    assert!(
        app.validate(&a),
        "at last activity + timeout it is not yet expired"
    );
    app.clock().advance(Duration::from_millis(1));
    assert!(!app.validate(&b), "a millisecond later it is");
}

#[test]
fn every_authenticated_call_renews_the_callers_session() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let id = app.get_session("viewer", PW);
    app.clock().advance(20 * MINUTE);
    app.call("getExpiredSessionIds", &[("sessionId", &id)])
        .assert_ok();
    app.clock().advance(20 * MINUTE);
    let r = app.call("listActiveSessionIds", &[("sessionId", &id)]);
    assert_eq!(r.sessions(), vec![Some(id.clone()), None]);
}

#[test]
fn an_absolute_lifetime_caps_a_busy_session() {
    let app = spawn_app_with_clock(|c| c.session_max_lifetime = Some(60 * MINUTE));
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    for _ in 0..5 {
        app.clock().advance(10 * MINUTE);
        assert!(app.validate(&id));
    }
    app.clock().advance(10 * MINUTE + Duration::from_secs(1));
    assert!(
        !app.validate(&id),
        "past its lifetime although used a minute ago"
    );
}

#[test]
fn a_graceful_shutdown_stores_pending_renewals() {
    // A lag of a tenth of the timeout: no periodic store happens during this test, so only the
    // shutdown can have stored the renewal.
    let lag = |c: &mut sessiond::config::Config| c.activity_lag = 3 * MINUTE;
    let app = spawn_app_with_clock(lag);
    let clock = app.clock.clone().unwrap();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    clock.advance(20 * MINUTE);
    assert!(app.validate(&id));
    let db = app.shutdown();
    clock.advance(20 * MINUTE);
    // 40 minutes after login but 20 after the renewal: still valid on the new instance.
    let app = spawn_app_on(db, Some(clock), lag);
    assert!(app.validate(&id));
}

#[test]
fn sessions_expire_on_the_real_clock_with_a_short_timeout() {
    // Margins for a loaded 2-core CI machine: a call may wait a while for a thread, so the kept
    // session is used every 500 ms against a 2 s timeout (1.5 s to spare) and the idle one is
    // judged after 3 s (1 s past its deadline).
    let app = spawn_app_with(|c| c.session_timeout = Duration::from_secs(2));
    app.add_user("alice", PW, None, &[]);
    let kept = app.get_session("alice", PW);
    let idle = app.get_session("alice", PW);
    let start = std::time::Instant::now();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            app.validate(&kept),
            "used every 500 ms, {:?} in",
            start.elapsed()
        );
    }
    assert!(!app.validate(&idle), "idle for 3 s with a 2 s timeout");
}

#[test]
fn sessions_past_their_lifetime_are_removed_with_their_end_at_the_cap() {
    let app = spawn_app_with_clock(|c| c.session_max_lifetime = Some(60 * MINUTE));
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let busy = app.get_session("alice", PW);
    app.clock().advance(20 * MINUTE);
    assert!(app.validate(&busy));
    app.clock().advance(15 * MINUTE);
    let remover = app.get_session("root", PW);
    for _ in 0..2 {
        app.clock().advance(9 * MINUTE);
        assert!(app.validate(&busy) && app.validate(&remover));
    }
    // 61 minutes old, used 8 minutes ago: past its lifetime only.
    app.clock().advance(8 * MINUTE);
    let r = app.call("deleteExpiredSessionIds", &[("sessionId", &remover)]);
    assert_eq!(r.value("deletedCount").as_deref(), Some("1"));
    let info = app.service.session_info(&as_session_id(&busy)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("expired"));
    assert_eq!(
        info.ended_at,
        Some(info.record.created_at + chrono::Duration::minutes(60))
    );
}

/// Stores `n` sessions of `user` straight into the database, IDs `old-00000001` and on, last
/// active 2 hours ago less `i % 1500` ms (so a batch boundary falls inside a run of equal
/// instants): more expired sessions than one removal batch, without thousands of logins.
fn seed_expired(app: &TestApp, user: &str, n: u32) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use sessiond::domain::Backend;
    match app.db.url.backend {
        Backend::Postgres => diesel::PgConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(&format!(
                "INSERT INTO sessions (session_id, user_id, client_type, location, created_at) \
                 SELECT 'old-' || lpad(g::text, 8, '0'), '{user}', 'standard', \
                 'test-instance', t - interval '1 hour' FROM generate_series(1, {n}) AS g, \
                 LATERAL (SELECT now() AT TIME ZONE 'utc' - interval '2 hours' \
                 - (g % 1500) * interval '1 millisecond' AS t) AS at; \
                 INSERT INTO session_activity (session_id, last_activity) \
                 SELECT session_id, created_at + interval '1 hour' FROM sessions \
                 WHERE session_id LIKE 'old-%'"
            )),
        Backend::Sqlite => diesel::SqliteConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(&format!(
                "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}), \
                 t(i, at) AS (SELECT i, strftime('%Y-%m-%d %H:%M:%f', 'now', '-2 hours', \
                 '-' || ((i % 1500) / 1000.0) || ' seconds') FROM g) \
                 INSERT INTO sessions (session_id, user_id, client_type, location, created_at) \
                 SELECT 'old-' || printf('%08d', i), '{user}', 'standard', \
                 'test-instance', strftime('%Y-%m-%d %H:%M:%f', at, '-1 hours') FROM t; \
                 INSERT INTO session_activity (session_id, last_activity) \
                 SELECT session_id, strftime('%Y-%m-%d %H:%M:%f', created_at, '+1 hours') \
                 FROM sessions WHERE session_id LIKE 'old-%'"
            )),
    }
    .unwrap();
}

#[derive(diesel::QueryableByName)]
struct Recorded {
    #[diesel(sql_type = diesel::sql_types::Text)]
    session_id: String,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    last_activity: chrono::NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    ended_at: chrono::NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::Text)]
    end_reason: String,
}

fn history_of_seeded(app: &TestApp) -> Vec<Recorded> {
    use diesel::{Connection, RunQueryDsl};
    use sessiond::domain::Backend;
    let sql = "SELECT session_id, last_activity, ended_at, end_reason FROM session_history \
               WHERE session_id LIKE 'old-%' ORDER BY session_id";
    match app.db.url.backend {
        Backend::Postgres => diesel::sql_query(sql)
            .load(&mut diesel::PgConnection::establish(&app.db.url.target).unwrap()),
        Backend::Sqlite => diesel::sql_query(sql)
            .load(&mut diesel::SqliteConnection::establish(&app.db.url.target).unwrap()),
    }
    .unwrap()
}

#[test]
fn a_removal_of_thousands_of_expired_sessions_records_each_once_as_expired_at_its_deadline() {
    // Two full removal batches of 2000 and a partial one, on either backend (on PostgreSQL
    // the batches are moved into the history by one statement each).
    const N: u32 = 4_500;
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let root = app.get_session("root", PW);
    let live = app.get_session("alice", PW);
    seed_expired(&app, "alice", N);

    let r = app.call("deleteExpiredSessionIds", &[("sessionId", &root)]);
    r.assert_ok();
    assert_eq!(r.value("deletedCount"), Some(N.to_string()));

    let recorded = history_of_seeded(&app);
    assert_eq!(recorded.len(), N as usize, "each recorded exactly once");
    for (i, rec) in recorded.iter().enumerate() {
        assert_eq!(rec.session_id, format!("old-{:08}", i + 1));
        assert_eq!(rec.end_reason, "expired", "{}", rec.session_id);
        assert_eq!(
            rec.ended_at,
            rec.last_activity + chrono::Duration::minutes(30),
            "{}: ended at its deadline (the default 30 min timeout)",
            rec.session_id
        );
    }
    assert!(!app.validate("old-00000001"));
    assert!(
        app.validate(&live) && app.validate(&root),
        "the live ones stay"
    );
    let again = app.call("deleteExpiredSessionIds", &[("sessionId", &root)]);
    assert_eq!(again.value("deletedCount").as_deref(), Some("0"));
}

#[test]
fn two_instances_removing_the_same_expired_sessions_at_once_end_each_exactly_once() {
    // On PostgreSQL each instance's batches lock the rows they take and skip those the other
    // holds; on SQLite the write lock takes the batches one after another. Either way the two
    // counts add up and each session is recorded once.
    const N: u32 = 4_500;
    let a = spawn_app();
    a.add_user("root", PW, None, &[Right::Administrator]);
    a.add_user("alice", PW, None, &[]);
    let b = spawn_app_on(a.db.clone(), None, |_| {});
    let on_a = a.get_session("root", PW);
    let on_b = b.get_session("root", PW);
    for round in 0..3 {
        seed_expired(&a, "alice", N);
        let counts: Vec<u32> = std::thread::scope(|s| {
            let ta = s.spawn(|| a.call("deleteExpiredSessionIds", &[("sessionId", &on_a)]));
            let tb = s.spawn(|| b.call("deleteExpiredSessionIds", &[("sessionId", &on_b)]));
            [ta.join().unwrap(), tb.join().unwrap()]
                .iter()
                .map(|r| r.value("deletedCount").unwrap().parse().unwrap())
                .collect()
        });
        assert_eq!(counts.iter().sum::<u32>(), N, "round {round}: {counts:?}");
        assert_eq!(history_of_seeded(&a).len(), N as usize, "round {round}");
        // The next round seeds the same IDs again: clear this round's records.
        clear_seeded_history(&a);
    }
}

fn clear_seeded_history(app: &TestApp) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use sessiond::domain::Backend;
    let sql = "DELETE FROM session_history WHERE session_id LIKE 'old-%'";
    match app.db.url.backend {
        Backend::Postgres => diesel::PgConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(sql),
        Backend::Sqlite => diesel::SqliteConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(sql),
    }
    .unwrap();
}
