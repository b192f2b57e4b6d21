//! The per-user session cap (docs/behaviour.md §7): `SESSIOND_MAX_SESSIONS_PER_USER` with the
//! `deny` and `evict-oldest` policies, for every operation that opens a session, exact under
//! concurrent logins on two instances of one database. Run on SQLite and, with
//! SESSIOND_TEST_BACKEND=postgres, on PostgreSQL.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use sessiond::config::Config;
use sessiond::domain::{LimitPolicy, Right};

use crate::helpers::*;

const PW: &str = "pw";

fn capped(max: u32, policy: LimitPolicy) -> impl Fn(&mut Config) {
    move |c| {
        c.max_sessions_per_user = Some(max);
        c.session_limit_policy = policy;
        c.hash_concurrency = 2;
        c.login_wait = Duration::from_secs(120);
    }
}

/// The IDs of `user`'s active sessions, as an administrator's getSessions lists them.
fn active_of(app: &TestApp, admin: &str, user: &str) -> HashSet<String> {
    let r = app.call(
        "getSessions",
        &[("sessionId", admin), ("filterUserId", user)],
    );
    r.assert_ok();
    r.sessions().into_iter().flatten().collect()
}

fn end_reason(app: &TestApp, caller: &str, target: &str) -> Option<String> {
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", caller), ("targetSessionId", target)],
    );
    r.assert_ok();
    r.value("endReason").filter(|v| !v.is_empty())
}

#[test]
fn with_deny_a_login_past_the_cap_gets_a_session_limit_reached_client_fault() {
    let app = spawn_app_with(capped(2, LimitPolicy::Deny));
    app.add_user("alice", PW, None, &[]);
    let first = app.get_session("alice", PW);
    app.get_bw_session("alice", PW);

    let r = app.call("getSession", &[("userId", "alice"), ("password", PW)]);
    assert_eq!(r.status, 500);
    assert_eq!(r.soap_fault().as_deref(), Some("Client"));
    r.assert_fault("SESSION_LIMIT_REACHED");
    assert!(
        r.value("message").is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
    let r = app.call12(
        "startSession",
        &[("userId", "alice"), ("password", PW), ("clientType", "erp")],
    );
    assert_eq!(r.status, 400, "a Sender fault on SOAP 1.2");
    assert_eq!(r.soap_fault().as_deref(), Some("Sender"));
    r.assert_fault("SESSION_LIMIT_REACHED");
    app.call("getBWSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("SESSION_LIMIT_REACHED");
    // Both sessions still work; closing one makes room.
    assert!(app.validate(&first));
    app.call("closeSession", &[("sessionId", &first)])
        .assert_ok();
    app.get_session("alice", PW);
}

#[test]
fn with_deny_open_clientless_session_counts_toward_the_cap_and_is_refused_past_it() {
    let app = spawn_app_with(capped(1, LimitPolicy::Deny));
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let root = app.get_session("root", PW);
    let open = || {
        app.call(
            "openClientlessSession",
            &[("sessionId", &root), ("userId", "alice")],
        )
    };
    open().assert_ok();
    open().assert_fault("SESSION_LIMIT_REACHED");
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("SESSION_LIMIT_REACHED");
    // The cap is per user: alice at hers stops no one else's.
    app.add_user("bob", PW, None, &[]);
    app.call(
        "openClientlessSession",
        &[("sessionId", &root), ("userId", "bob")],
    )
    .assert_ok();
}

#[test]
fn with_evict_oldest_the_least_recently_active_session_ends_as_evicted() {
    let app = spawn_app_with_clock(capped(2, LimitPolicy::EvictOldest));
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let root = app.get_session("root", PW);
    let older = app.get_session("alice", PW);
    app.clock().advance(Duration::from_secs(60));
    let idle = app.get_session("alice", PW);
    app.clock().advance(Duration::from_secs(60));
    // The older session is used again, so the idle one is now the least recently active.
    assert!(app.validate(&older));
    app.clock().advance(Duration::from_secs(60));

    let newest = app.get_session("alice", PW);
    assert!(
        !app.validate(&idle),
        "refused at once on the evicting instance"
    );
    app.call("getCurrentSession", &[("sessionId", &idle)])
        .assert_fault("INVALID_SESSION");
    assert!(app.validate(&older) && app.validate(&newest));
    assert_eq!(
        active_of(&app, &root, "alice"),
        HashSet::from([older.clone(), newest.clone()])
    );
    assert_eq!(end_reason(&app, &root, &idle).as_deref(), Some("evicted"));
    // The user sees it too, on their own evicted session's record.
    assert_eq!(end_reason(&app, &newest, &idle).as_deref(), Some("evicted"));
    let info = app.service.session_info(&as_session_id(&idle)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("evicted"));

    // A clientless session opened for alice evicts in the same way.
    let r = app.call(
        "openClientlessSession",
        &[("sessionId", &root), ("userId", "alice")],
    );
    let clientless = r.value("clientlessSessionId").expect("opened");
    assert!(app.validate(&clientless));
    assert_eq!(end_reason(&app, &root, &older).as_deref(), Some("evicted"));
    assert!(app.validate(&newest));
}

#[test]
fn expired_sessions_do_not_count_toward_the_cap() {
    let app = spawn_app_with_clock(capped(1, LimitPolicy::Deny));
    app.add_user("alice", PW, None, &[]);
    let first = app.get_session("alice", PW);
    app.clock().advance(Duration::from_secs(31 * 60));
    assert!(!app.validate(&first), "the first session has expired");
    // At the cap of one, the expired session is not counted: the login is answered a session.
    let r = app.call("getSession", &[("userId", "alice"), ("password", PW)]);
    r.assert_ok();
    let second = r.value("sessionId").expect("a session ID");
    assert!(app.validate(&second));
}

/// 64 logins of one user at once, spread over two instances of one database: how many
/// succeeded, and the user's sessions still active afterwards.
fn sixty_four_at_once(policy: LimitPolicy) -> (usize, Vec<String>, HashSet<String>) {
    let a = spawn_app_with(capped(3, policy));
    let b = spawn_app_on(a.db.clone(), None, capped(3, policy));
    a.add_user("root", PW, None, &[Right::Administrator]);
    a.add_user("alice", PW, None, &[]);
    let root = a.get_session("root", PW);
    let apps = Arc::new([a, b]);
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let (apps, barrier) = (apps.clone(), barrier.clone());
            std::thread::spawn(move || {
                let app = &apps[i % 2];
                barrier.wait();
                let r = app.call("getSession", &[("userId", "alice"), ("password", PW)]);
                match r.fault_code() {
                    None => Ok(r.value("sessionId").expect("a session ID")),
                    Some(code) => Err(code),
                }
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok: Vec<String> = results.iter().filter_map(|r| r.clone().ok()).collect();
    let faults: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    let active = active_of(&apps[1], &root, "alice");
    for id in &ok {
        // Whichever instance is asked, only the listed ones are valid.
        assert_eq!(apps[0].validate(id), active.contains(id));
        assert_eq!(apps[1].validate(id), active.contains(id));
    }
    (ok.len(), faults, active)
}

#[test]
fn sixty_four_concurrent_logins_with_a_cap_of_three_and_deny_leave_exactly_three_sessions() {
    let (ok, faults, active) = sixty_four_at_once(LimitPolicy::Deny);
    assert_eq!(active.len(), 3);
    assert_eq!(ok, 3);
    assert_eq!(faults.len(), 61);
    assert!(
        faults.iter().all(|f| f == "SESSION_LIMIT_REACHED"),
        "{faults:?}"
    );
}

#[test]
fn sixty_four_concurrent_logins_with_a_cap_of_three_and_evict_oldest_leave_exactly_three() {
    let (ok, faults, active) = sixty_four_at_once(LimitPolicy::EvictOldest);
    assert_eq!(active.len(), 3);
    assert_eq!(ok, 64, "every login succeeds: {faults:?}");
}
