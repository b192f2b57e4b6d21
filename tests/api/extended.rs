//! The nine extended operations, the rights matrix of docs/behaviour.md §2, and the session
//! history.

use std::time::Duration;

use sessiond::domain::Right;

use crate::helpers::*;

const PW: &str = "pw";
const MINUTE: Duration = Duration::from_secs(60);

fn info_field(r: &Reply, name: &str) -> Option<String> {
    let doc = r.doc();
    let node = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "session")))?
        .children()
        .find(|n| n.has_tag_name((NS, name)))?;
    if node.attribute(("http://www.w3.org/2001/XMLSchema-instance", "nil")) == Some("true") {
        return None;
    }
    Some(node.text().unwrap_or("").to_owned())
}

#[test]
fn start_session_returns_the_session_info_with_client_type_and_name() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let r = app.call(
        "startSession",
        &[
            ("userId", "alice"),
            ("password", PW),
            ("clientType", "mes"),
            ("clientName", "Line 4 terminal"),
        ],
    );
    r.assert_ok();
    let id = info_field(&r, "sessionId").unwrap();
    assert!(app.validate(&id));
    assert_eq!(info_field(&r, "userId").as_deref(), Some("alice"));
    assert_eq!(info_field(&r, "clientType").as_deref(), Some("mes"));
    assert_eq!(
        info_field(&r, "clientName").as_deref(),
        Some("Line 4 terminal")
    );
    assert_eq!(info_field(&r, "host").as_deref(), Some("127.0.0.1"));
    assert_eq!(info_field(&r, "location").as_deref(), Some("test-instance"));
    assert_eq!(info_field(&r, "endTime"), None);
    assert_eq!(info_field(&r, "endReason"), None);
    assert_eq!(info_field(&r, "createdBy"), None);
    assert_eq!(info_field(&r, "isCurrent").as_deref(), Some("true"));
    assert_eq!(info_field(&r, "isRemote").as_deref(), Some("false"));
    // Without a client type it is a standard session.
    let r = app.call("startSession", &[("userId", "alice"), ("password", PW)]);
    assert_eq!(info_field(&r, "clientType").as_deref(), Some("standard"));
    assert_eq!(info_field(&r, "clientName"), None);
}

#[test]
fn start_session_checks_the_password_like_get_session() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.call("startSession", &[("userId", "alice"), ("password", "bad")])
        .assert_fault("AUTHENTICATION_FAILED");
    app.call(
        "startSession",
        &[("userId", "alice"), ("password", PW), ("clientType", "")],
    )
    .assert_fault("INVALID_REQUEST");
}

#[test]
fn get_sessions_applies_every_filter_and_pages() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    app.add_user("alice", PW, None, &[]);
    app.add_user("bob", PW, None, &[]);
    let start = |user: &str, kind: &str| {
        let r = app.call(
            "startSession",
            &[("userId", user), ("password", PW), ("clientType", kind)],
        );
        info_field(&r, "sessionId").unwrap()
    };
    let a1 = start("alice", "mes");
    let old = start("bob", "erp");
    app.clock().advance(20 * MINUTE);
    let a2 = start("alice", "erp");
    let b1 = start("bob", "mes");
    let me = app.get_session("viewer", PW);
    app.clock().advance(11 * MINUTE);
    assert!(app.validate(&a2) && app.validate(&b1) && app.validate(&me));
    let ids = |fields: &[(&str, &str)]| {
        let mut all = vec![("sessionId", me.as_str())];
        all.extend_from_slice(fields);
        let r = app.call("getSessions", &all);
        r.assert_ok();
        r.sessions()
    };
    // a2, b1 and me share a creation instant on this clock: the ID orders them.
    let mut same_instant = vec![a2.clone(), b1.clone(), me.clone()];
    same_instant.sort();
    let expected: Vec<_> = same_instant
        .iter()
        .cloned()
        .map(Some)
        .chain([None])
        .collect();
    assert_eq!(ids(&[]), expected);
    assert_eq!(
        ids(&[("filterUserId", "alice")]),
        vec![Some(a2.clone()), None]
    );
    assert_eq!(
        ids(&[("filterClientType", "mes")]),
        vec![Some(b1.clone()), None]
    );
    assert_eq!(
        ids(&[("filterSessionId", &b1)]),
        vec![Some(b1.clone()), None]
    );
    let mut earlier = [a1.clone(), old.clone()];
    earlier.sort();
    let all: Vec<_> = earlier
        .iter()
        .chain(&same_instant)
        .cloned()
        .map(Some)
        .chain([None])
        .collect();
    assert_eq!(ids(&[("includeExpired", "true")]), all);
    assert_eq!(
        ids(&[
            ("includeExpired", "1"),
            ("filterUserId", "bob"),
            ("filterClientType", "erp")
        ]),
        vec![Some(old.clone()), None]
    );
    let page = |i: usize| vec![Some(same_instant[i].clone()), None];
    assert_eq!(ids(&[("offset", "1"), ("limit", "1")]), page(1));
    assert_eq!(ids(&[("offset", "2")]), page(2));
    assert_eq!(ids(&[("limit", "0")]), vec![None]);
    app.call("getSessions", &[("sessionId", &me), ("limit", "-1")])
        .assert_fault("INVALID_REQUEST");
    app.call(
        "getSessions",
        &[("sessionId", &me), ("includeExpired", "maybe")],
    )
    .assert_fault("INVALID_REQUEST");
    let r = app.call(
        "getSessions",
        &[("sessionId", &me), ("filterSessionId", &me)],
    );
    assert_eq!(info_field(&r, "isCurrent").as_deref(), Some("true"));
}

#[test]
fn get_sessions_without_a_view_right_shows_the_callers_own_sessions_only() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.add_user("bob", PW, None, &[]);
    let a = app.get_session("alice", PW);
    let _b = app.get_session("bob", PW);
    let r = app.call("getSessions", &[("sessionId", &a)]);
    assert_eq!(r.sessions(), vec![Some(a.clone()), None]);
    app.call("getSessions", &[("sessionId", &a), ("filterUserId", "bob")])
        .assert_fault("ACCESS_DENIED");
}

#[test]
fn a_bw_caller_gets_get_sessions_without_the_nil() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let bw = app.get_bw_session("alice", PW);
    let r = app.call("getSessions", &[("sessionId", &bw)]);
    assert_eq!(r.sessions(), vec![Some(bw.clone())]);
    let r = app.call(
        "getSessions",
        &[("sessionId", &bw), ("filterClientType", "none")],
    );
    r.assert_ok();
    assert!(r.sessions().is_empty());
}

#[test]
fn get_session_info_and_user_find_ended_sessions_with_why_they_ended() {
    let app = spawn_app();
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    app.add_user("alice", PW, None, &[]);
    let me = app.get_session("viewer", PW);
    let target = app.get_session("alice", PW);
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", &me), ("targetSessionId", &target)],
    );
    r.assert_ok();
    assert_eq!(info_field(&r, "userId").as_deref(), Some("alice"));
    assert_eq!(info_field(&r, "isCurrent").as_deref(), Some("false"));
    assert_eq!(info_field(&r, "endTime"), None);
    app.call("closeSession", &[("sessionId", &target)])
        .assert_ok();
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", &me), ("targetSessionId", &target)],
    );
    r.assert_ok();
    assert_eq!(info_field(&r, "endReason").as_deref(), Some("closed"));
    let end = info_field(&r, "endTime").unwrap();
    assert!(end.ends_with('Z') && end >= info_field(&r, "creationTime").unwrap());
    let r = app.call(
        "getSessionUser",
        &[("sessionId", &me), ("targetSessionId", &target)],
    );
    assert_eq!(r.value("userId").as_deref(), Some("alice"));
    for op in ["getSessionInfo", "getSessionUser"] {
        app.call(
            op,
            &[("sessionId", &me), ("targetSessionId", "never-existed")],
        )
        .assert_fault("SESSION_NOT_FOUND");
    }
}

#[test]
fn every_way_a_session_ends_leaves_one_history_record() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let expired = app.get_session("alice", PW);
    app.clock().advance(31 * MINUTE);
    let root = app.get_session("root", PW); // removes `expired`
    let closed = app.get_session("alice", PW);
    let deleted = app.get_session("alice", PW);
    app.call("closeSession", &[("sessionId", &closed)])
        .assert_ok();
    app.call(
        "deleteSessionId",
        &[("sessionId", &root), ("targetSessionId", &deleted)],
    )
    .assert_ok();
    let disabled = app.get_session("alice", PW);
    app.service.disable_user(&as_user_id("alice")).unwrap();
    for (id, reason) in [
        (&expired, "expired"),
        (&closed, "closed"),
        (&deleted, "deleted"),
        (&disabled, "user-disabled"),
    ] {
        let r = app.call(
            "getSessionInfo",
            &[("sessionId", &root), ("targetSessionId", id)],
        );
        r.assert_ok();
        assert_eq!(info_field(&r, "endReason").as_deref(), Some(reason));
        assert!(!app.validate(id));
    }
    // Closing an ended session again changes nothing.
    let r = app.call("closeSession", &[("sessionId", &closed)]);
    assert_eq!(r.value("closed").as_deref(), Some("false"));
}

#[test]
fn history_is_kept_for_the_retention_period_only() {
    let app = spawn_app_with_clock(|c| c.history_retention = Duration::from_secs(24 * 3600));
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    app.call("closeSession", &[("sessionId", &id)]).assert_ok();
    app.clock().advance(23 * 60 * MINUTE);
    assert_eq!(app.service.purge_history().unwrap(), 0);
    assert!(app.service.session_info(&as_session_id(&id)).is_ok());
    app.clock().advance(2 * 60 * MINUTE);
    assert_eq!(app.service.purge_history().unwrap(), 1);
    assert!(app.service.session_info(&as_session_id(&id)).is_err());
}

#[test]
fn get_current_session_describes_the_callers_session() {
    let app = spawn_app();
    app.add_user("alice", PW, Some("sales"), &[]);
    let id = app.get_bw_session("alice", PW);
    let r = app.call("getCurrentSession", &[("sessionId", &id)]);
    r.assert_ok();
    assert_eq!(info_field(&r, "sessionId"), Some(id));
    assert_eq!(info_field(&r, "clientType").as_deref(), Some("bw"));
    assert_eq!(info_field(&r, "isCurrent").as_deref(), Some("true"));
    app.call("getCurrentSession", &[("sessionId", "gone")])
        .assert_fault("INVALID_SESSION");
}

#[test]
fn extend_session_renews_and_returns_the_new_expiration_time() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    app.clock().advance(25 * MINUTE);
    let r = app.call("extendSession", &[("sessionId", &id)]);
    r.assert_ok();
    let expires = r.value("expirationTime").unwrap();
    let expected = app
        .service
        .session_info(&as_session_id(&id))
        .unwrap()
        .last_activity
        + chrono::Duration::minutes(30);
    assert_eq!(
        expires,
        expected.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    );
    app.clock().advance(25 * MINUTE);
    assert!(app.validate(&id), "extended 25 minutes ago");
    app.clock().advance(31 * MINUTE);
    app.call("extendSession", &[("sessionId", &id)])
        .assert_fault("INVALID_SESSION");
    assert!(!app.validate(&id), "never revived");
    app.call("extendSession", &[("sessionId", "unknown")])
        .assert_fault("INVALID_SESSION");
}

#[test]
fn confirm_id_checks_the_password_and_failures_count_toward_the_lockout() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    let r = app.call("confirmId", &[("sessionId", &id), ("password", PW)]);
    assert_eq!(r.value("confirmed").as_deref(), Some("true"));
    for _ in 0..5 {
        let r = app.call("confirmId", &[("sessionId", &id), ("password", "bad")]);
        assert_eq!(r.value("confirmed").as_deref(), Some("false"));
    }
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("ACCOUNT_LOCKED");
    app.call("confirmId", &[("sessionId", &id), ("password", PW)])
        .assert_fault("ACCOUNT_LOCKED");
}

#[test]
fn clientless_sessions_are_opened_for_enabled_users_and_record_the_opener() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    app.add_user("ghost", PW, None, &[]);
    app.service.disable_user(&as_user_id("ghost")).unwrap();
    let root = app.get_session("root", PW);
    let r = app.call(
        "openClientlessSession",
        &[
            ("sessionId", &root),
            ("userId", "alice"),
            ("clientName", "nightly batch"),
        ],
    );
    r.assert_ok();
    let cl = r.value("clientlessSessionId").unwrap();
    assert!(app.validate(&cl));
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", &root), ("targetSessionId", &cl)],
    );
    assert_eq!(info_field(&r, "userId").as_deref(), Some("alice"));
    assert_eq!(info_field(&r, "clientType").as_deref(), Some("clientless"));
    assert_eq!(
        info_field(&r, "clientName").as_deref(),
        Some("nightly batch")
    );
    assert_eq!(info_field(&r, "createdBy").as_deref(), Some("root"));
    for user in ["nobody", "ghost"] {
        app.call(
            "openClientlessSession",
            &[("sessionId", &root), ("userId", user)],
        )
        .assert_fault("INVALID_REQUEST");
    }
    let r = app.call(
        "closeClientlessSession",
        &[("sessionId", &root), ("clientlessSessionId", &cl)],
    );
    assert_eq!(r.value("closed").as_deref(), Some("true"));
    assert!(!app.validate(&cl));
    let r = app.call(
        "closeClientlessSession",
        &[("sessionId", &root), ("clientlessSessionId", &cl)],
    );
    assert_eq!(r.value("closed").as_deref(), Some("false"));
    let normal = app.get_session("alice", PW);
    app.call(
        "closeClientlessSession",
        &[("sessionId", &root), ("clientlessSessionId", &normal)],
    )
    .assert_fault("INVALID_REQUEST");
    let info = app.service.session_info(&as_session_id(&cl)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("closed"));
}

#[test]
fn the_opener_may_close_its_clientless_session_after_losing_the_admin_right() {
    let app = spawn_app();
    app.add_user("opener", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let opener = app.get_session("opener", PW);
    let r = app.call(
        "openClientlessSession",
        &[("sessionId", &opener), ("userId", "alice")],
    );
    let cl = r.value("clientlessSessionId").unwrap();
    app.service
        .set_right(&as_user_id("opener"), Right::Administrator, false)
        .unwrap();
    let r = app.call(
        "closeClientlessSession",
        &[("sessionId", &opener), ("clientlessSessionId", &cl)],
    );
    assert_eq!(r.value("closed").as_deref(), Some("true"));
}

#[test]
fn is_remote_is_true_for_sessions_another_instance_created() {
    let a = spawn_app();
    a.add_user("viewer", PW, None, &[Right::ViewSession]);
    let b = spawn_app_on(a.db.clone(), None, |c| c.location = "other-instance".into());
    let on_a = a.get_session("viewer", PW);
    let on_b = b.get_session("viewer", PW);
    assert!(
        b.validate(&on_a) && a.validate(&on_b),
        "one service over one database"
    );
    let r = a.call(
        "getSessionInfo",
        &[("sessionId", &on_a), ("targetSessionId", &on_b)],
    );
    assert_eq!(
        info_field(&r, "location").as_deref(),
        Some("other-instance")
    );
    assert_eq!(info_field(&r, "isRemote").as_deref(), Some("true"));
    let r = b.call(
        "getSessionInfo",
        &[("sessionId", &on_b), ("targetSessionId", &on_b)],
    );
    assert_eq!(info_field(&r, "isRemote").as_deref(), Some("false"));
    assert_eq!(info_field(&r, "isCurrent").as_deref(), Some("true"));
}

#[test]
fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let start = |app: &TestApp| {
        let body = envelope11(&operation(
            "startSession",
            &[("userId", "alice"), ("password", PW)],
        ));
        let r = app.post(
            "text/xml",
            &[("X-Forwarded-For", "203.0.113.7, 198.51.100.2")],
            body,
        );
        r.assert_ok();
        info_field(&r, "host")
    };
    let untrusted = spawn_app();
    untrusted.add_user("alice", PW, None, &[]);
    assert_eq!(start(&untrusted).as_deref(), Some("127.0.0.1"));
    let trusted = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    trusted.add_user("alice", PW, None, &[]);
    assert_eq!(start(&trusted).as_deref(), Some("198.51.100.2"));
}

/// Who calls, in the matrix's column order.
const CALLERS: [&str; 6] = ["none", "view", "update", "dept-admin", "root", "own"];

/// Allowed (true) or ACCESS_DENIED (false) for each caller; the target belongs to `target`,
/// and `own` is a rightless session of that same user.
#[rustfmt::skip]
const MATRIX: &[(&str, [bool; 6])] = &[
    //                         none   view   update dept-a root   own
    ("deleteSessionId",         [false, false, true,  false, true,  false]),
    ("deleteExpiredSessionIds", [false, false, true,  false, true,  false]),
    ("getExpiredSessionIds",    [false, true,  true,  true,  true,  false]),
    ("listActiveSessionIds",    [false, true,  true,  true,  true,  false]),
    ("getSessions",             [false, true,  true,  true,  true,  true]),
    ("getSessionInfo",          [false, true,  true,  true,  true,  true]),
    ("getSessionUser",          [false, true,  true,  true,  true,  true]),
    ("getCurrentSession",       [true,  true,  true,  true,  true,  true]),
    ("extendSession",           [true,  true,  true,  true,  true,  true]),
    ("confirmId",               [true,  true,  true,  true,  true,  true]),
    ("validateSession",         [true,  true,  true,  true,  true,  true]),
    ("closeSession",            [true,  true,  true,  true,  true,  true]),
    ("openClientlessSession",   [false, false, false, false, true,  false]),
    ("closeClientlessSession",  [false, false, false, false, true,  false]),
];

#[test]
fn the_rights_matrix_holds_for_every_operation() {
    let app = spawn_app();
    app.add_user("none", PW, None, &[]);
    app.add_user("view", PW, None, &[Right::ViewSession]);
    app.add_user("update", PW, Some("ops"), &[Right::UpdateSession]);
    app.add_user("dept-admin", PW, Some("sales"), &[Right::Administrator]);
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("target", PW, None, &[]);
    app.add_user("opener", PW, None, &[Right::Administrator]);
    let opener = app.get_session("opener", PW);
    for (op, row) in MATRIX {
        for (caller_kind, allowed) in CALLERS.iter().zip(row) {
            let caller = match *caller_kind {
                "own" => app.get_session("target", PW),
                user => app.get_session(user, PW),
            };
            let target = match *op {
                "closeClientlessSession" => app
                    .call(
                        "openClientlessSession",
                        &[("sessionId", &opener), ("userId", "target")],
                    )
                    .value("clientlessSessionId")
                    .unwrap(),
                _ => app.get_session("target", PW),
            };
            let r = match *op {
                "deleteSessionId" | "getSessionInfo" | "getSessionUser" => {
                    app.call(op, &[("sessionId", &caller), ("targetSessionId", &target)])
                }
                "getSessions" => {
                    app.call(op, &[("sessionId", &caller), ("filterUserId", "target")])
                }
                "confirmId" => app.call(op, &[("sessionId", &caller), ("password", PW)]),
                "openClientlessSession" => {
                    app.call(op, &[("sessionId", &caller), ("userId", "target")])
                }
                "closeClientlessSession" => app.call(
                    op,
                    &[("sessionId", &caller), ("clientlessSessionId", &target)],
                ),
                _ => app.call(op, &[("sessionId", &caller)]),
            };
            if *allowed {
                assert_eq!(
                    r.status, 200,
                    "{op} by {caller_kind} must be allowed: {}",
                    r.body
                );
            } else {
                assert_eq!(
                    r.fault_code().as_deref(),
                    Some("ACCESS_DENIED"),
                    "{op} by {caller_kind} must be denied: {}",
                    r.body
                );
            }
        }
    }
}

/// A listing longer than a page is streamed a page at a time; clients see one array.
#[test]
fn long_array_results_stream_in_pages_and_stay_whole_and_ordered() {
    let app = spawn_app_with(|c| c.list_page_size = 7);
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let root = app.get_session("root", PW);
    let mut all = vec![root.clone()];
    for _ in 0..30 {
        // Arrays are in (creation time, ID) order: a few milliseconds apart, creation order is
        // the array's order (two opened in the same instant would be in ID order instead).
        std::thread::sleep(std::time::Duration::from_millis(3));
        let r = app.call(
            "openClientlessSession",
            &[("sessionId", &root), ("userId", "alice")],
        );
        all.push(r.value("clientlessSessionId").unwrap());
    }
    let expected: Vec<_> = all.iter().cloned().map(Some).chain([None]).collect();
    let r = app.call("listActiveSessionIds", &[("sessionId", &root)]);
    r.assert_ok();
    assert_eq!(r.sessions(), expected);
    let r = app.call12("getSessions", &[("sessionId", &root)]);
    r.assert_ok();
    assert!(r.content_type.starts_with("application/soap+xml"));
    assert_eq!(r.sessions(), expected);
    // Offset and limit across page boundaries.
    let r = app.call(
        "getSessions",
        &[("sessionId", &root), ("offset", "5"), ("limit", "16")],
    );
    let page: Vec<_> = all[5..21].iter().cloned().map(Some).chain([None]).collect();
    assert_eq!(r.sessions(), page);
    // A bw caller's long list has no nil at its end.
    let bw = app.get_bw_session("root", PW);
    let r = app.call("listActiveSessionIds", &[("sessionId", &bw)]);
    assert_eq!(r.sessions().len(), all.len() + 1);
    assert!(r.sessions().iter().all(Option::is_some));
}
