//! Idle expiry and renewal (SPEC 3), on a clock the test moves, and once on the real clock.

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
        Some(info.created_at + chrono::Duration::minutes(60))
    );
}
