//! The eight legacy operations, as a SOAP 1.1 client calls them: results, every fault code
//! each can give, rights, lock-out, and the nil-terminated arrays with the `bw` exception.

use sessiond::domain::Right;

use crate::helpers::*;

const PW: &str = "correct horse";

fn sid(id: &str) -> [(&str, &str); 1] {
    [("sessionId", id)]
}

#[test]
fn get_session_returns_an_id_that_validates() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    assert!(id.len() >= 22 && id.len() <= 64, "{id}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(app.validate(&id));
}

#[test]
fn each_session_gets_a_new_id() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    assert_ne!(app.get_session("alice", PW), app.get_session("alice", PW));
}

#[test]
fn a_wrong_password_and_an_unknown_user_fail_alike() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let wrong = app.call("getSession", &[("userId", "alice"), ("password", "nope")]);
    let unknown = app.call("getSession", &[("userId", "mallory"), ("password", "nope")]);
    for r in [&wrong, &unknown] {
        assert_eq!(r.status, 500);
        assert_eq!(r.soap_fault().as_deref(), Some("Client"));
        r.assert_fault("AUTHENTICATION_FAILED");
    }
    assert_eq!(wrong.value("faultstring"), unknown.value("faultstring"));
    assert_eq!(wrong.value("message"), unknown.value("message"));
}

#[test]
fn a_user_id_no_user_can_have_fails_like_an_unknown_user() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let unknown = app.call("getSession", &[("userId", "mallory"), ("password", PW)]);
    unknown.assert_fault("AUTHENTICATION_FAILED");
    // Whitespace and control characters: IDs that `user add` refuses.
    for id in ["alice bob", "alice\u{a0}", "a\tb", " alice"] {
        let r = app.call("getSession", &[("userId", id), ("password", PW)]);
        assert_eq!(r.status, 500, "{id:?}: {}", r.body);
        r.assert_fault("AUTHENTICATION_FAILED");
        assert_eq!(r.value("message"), unknown.value("message"), "{id:?}");
    }
    // The server keeps serving.
    assert!(app.validate(&app.get_session("alice", PW)));
}

#[test]
fn a_disabled_user_cannot_log_in_and_gets_the_same_fault() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.service.disable_user(&as_user_id("alice")).unwrap();
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("AUTHENTICATION_FAILED");
    app.call("getBWSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("AUTHENTICATION_FAILED");
}

#[test]
fn five_failed_checks_lock_the_user_even_with_the_right_password() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("alice", PW, None, &[]);
    for _ in 0..5 {
        app.call("getSession", &[("userId", "alice"), ("password", "bad")])
            .assert_fault("AUTHENTICATION_FAILED");
    }
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("ACCOUNT_LOCKED");
    app.call("getBWSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("ACCOUNT_LOCKED");
    // Fifteen minutes later the lock has run out.
    app.clock()
        .advance(std::time::Duration::from_secs(15 * 60 + 1));
    let r = app.call("getSession", &[("userId", "alice"), ("password", PW)]);
    r.assert_ok();
    assert!(r.value("sessionId").is_some(), "{}", r.body);
}

#[test]
fn a_success_resets_the_failure_count() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    // Eight failures in all, never five in a row: without the reset the fifth would lock.
    for _ in 0..2 {
        for _ in 0..4 {
            app.call("getSession", &[("userId", "alice"), ("password", "bad")])
                .assert_fault("AUTHENTICATION_FAILED");
        }
        let r = app.call("getSession", &[("userId", "alice"), ("password", PW)]);
        r.assert_ok();
        assert!(r.value("sessionId").is_some(), "{}", r.body);
    }
    // And the count starts again from there: four more failures still do not lock.
    for _ in 0..4 {
        app.call("getSession", &[("userId", "alice"), ("password", "bad")])
            .assert_fault("AUTHENTICATION_FAILED");
    }
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_ok();
}

#[test]
fn the_lockout_threshold_is_configurable() {
    let app = spawn_app_with(|c| c.lockout_threshold = 2);
    app.add_user("alice", PW, None, &[]);
    for _ in 0..2 {
        app.call("getSession", &[("userId", "alice"), ("password", "bad")]);
    }
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("ACCOUNT_LOCKED");
}

#[test]
fn close_session_is_true_for_a_stored_session_and_false_after() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    let r = app.call("closeSession", &sid(&id));
    r.assert_ok();
    assert_eq!(r.value("closed").as_deref(), Some("true"));
    assert!(!app.validate(&id));
    let again = app.call("closeSession", &sid(&id));
    assert_eq!(again.value("closed").as_deref(), Some("false"));
}

#[test]
fn close_session_is_false_for_an_unknown_id() {
    let app = spawn_app();
    for id in ["unknown-session-id", "not a valid id!", ""] {
        let r = app.call("closeSession", &sid(id));
        r.assert_ok();
        assert_eq!(r.value("closed").as_deref(), Some("false"), "{id}");
    }
}

#[test]
fn validate_session_is_false_for_unknown_and_malformed_ids() {
    let app = spawn_app();
    for id in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x y",
        "",
        &"a".repeat(200),
    ] {
        assert!(!app.validate(id), "{id}");
    }
}

#[test]
fn delete_session_id_needs_the_update_right() {
    let app = spawn_app();
    app.add_user("victim", PW, None, &[]);
    app.add_user("nobody", PW, None, &[]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    app.add_user("deptadmin", PW, Some("sales"), &[Right::Administrator]);
    for user in ["nobody", "viewer", "deptadmin"] {
        let target = app.get_session("victim", PW);
        let caller = app.get_session(user, PW);
        app.call(
            "deleteSessionId",
            &[("sessionId", &caller), ("targetSessionId", &target)],
        )
        .assert_fault("ACCESS_DENIED");
        assert!(app.validate(&target), "{user} must not have ended it");
    }
}

#[test]
fn delete_session_id_ends_the_target_for_updaters_and_admins_without_department() {
    let app = spawn_app();
    app.add_user("victim", PW, None, &[]);
    app.add_user("updater", PW, Some("ops"), &[Right::UpdateSession]);
    app.add_user("root", PW, None, &[Right::Administrator]);
    for user in ["updater", "root"] {
        let target = app.get_session("victim", PW);
        let caller = app.get_session(user, PW);
        let r = app.call(
            "deleteSessionId",
            &[("sessionId", &caller), ("targetSessionId", &target)],
        );
        r.assert_ok();
        assert!(r
            .doc()
            .descendants()
            .any(|n| n.has_tag_name((NS, "deleteSessionIdResponse"))));
        assert!(!app.validate(&target));
        let info = app.service.session_info(&as_session_id(&target)).unwrap();
        assert_eq!(info.end_reason.as_deref(), Some("deleted"));
    }
}

#[test]
fn delete_session_id_of_an_unknown_target_is_session_not_found() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    let caller = app.get_session("root", PW);
    for target in ["no-such-session", "bad id"] {
        app.call(
            "deleteSessionId",
            &[("sessionId", &caller), ("targetSessionId", target)],
        )
        .assert_fault("SESSION_NOT_FOUND");
    }
}

#[test]
fn every_session_operation_with_an_unknown_caller_is_invalid_session() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let target = app.get_session("alice", PW);
    for op in [
        "deleteExpiredSessionIds",
        "getExpiredSessionIds",
        "listActiveSessionIds",
    ] {
        app.call(op, &sid("no-such-session"))
            .assert_fault("INVALID_SESSION");
    }
    app.call(
        "deleteSessionId",
        &[("sessionId", "nope"), ("targetSessionId", &target)],
    )
    .assert_fault("INVALID_SESSION");
}

#[test]
fn lists_and_removal_need_their_rights() {
    let app = spawn_app();
    app.add_user("nobody", PW, None, &[]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let nobody = app.get_session("nobody", PW);
    let viewer = app.get_session("viewer", PW);
    for op in [
        "getExpiredSessionIds",
        "listActiveSessionIds",
        "deleteExpiredSessionIds",
    ] {
        app.call(op, &sid(&nobody)).assert_fault("ACCESS_DENIED");
    }
    app.call("listActiveSessionIds", &sid(&viewer)).assert_ok();
    app.call("getExpiredSessionIds", &sid(&viewer)).assert_ok();
    app.call("deleteExpiredSessionIds", &sid(&viewer))
        .assert_fault("ACCESS_DENIED");
}

#[test]
fn list_active_session_ids_is_ordered_and_ends_with_one_nil() {
    let app = spawn_app();
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    app.add_user("alice", PW, None, &[]);
    let first = app.get_session("alice", PW);
    let second = app.get_session("alice", PW);
    let caller = app.get_session("viewer", PW);
    let r = app.call("listActiveSessionIds", &sid(&caller));
    r.assert_ok();
    assert_eq!(
        r.sessions(),
        vec![Some(first), Some(second), Some(caller), None]
    );
    // Each element is a full Session: the caller's address and all three times.
    assert_eq!(r.values("host")[0], "127.0.0.1");
    assert_eq!(r.values("userId")[0], "alice");
    assert_eq!(r.values("clientType")[0], "standard");
    assert!(r.values("expirationTime")[0].ends_with('Z'));
}

#[test]
fn a_bw_session_gets_arrays_without_the_nil() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let bw = app.get_bw_session("viewer", PW);
    let r = app.call("listActiveSessionIds", &sid(&bw));
    assert_eq!(r.sessions(), vec![Some(bw.clone())]);
    assert_eq!(r.values("clientType"), vec!["bw"]);
    // An empty result has no element at all.
    let r = app.call("getExpiredSessionIds", &sid(&bw));
    r.assert_ok();
    assert_eq!(r.sessions(), Vec::<Option<String>>::new());
}

#[test]
fn an_empty_result_is_one_nil_element_for_a_standard_session() {
    let app = spawn_app();
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let id = app.get_session("viewer", PW);
    let r = app.call("getExpiredSessionIds", &sid(&id));
    r.assert_ok();
    assert_eq!(r.sessions(), vec![None]);
}

#[test]
fn expired_sessions_are_listed_until_removed_and_removal_counts_them() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("alice", PW, None, &[]);
    app.add_user("updater", PW, None, &[Right::UpdateSession]);
    let old1 = app.get_session("alice", PW);
    let old2 = app.get_session("alice", PW);
    // The caller logs in before the others expire (a login removes expired sessions).
    app.clock().advance(std::time::Duration::from_secs(20 * 60));
    let caller = app.get_session("updater", PW);
    app.clock().advance(std::time::Duration::from_secs(11 * 60));
    // Both were created at one instant on this clock: the ID orders them.
    let mut expired = [old1.clone(), old2.clone()];
    expired.sort();
    let r = app.call("getExpiredSessionIds", &sid(&caller));
    assert_eq!(
        r.sessions(),
        vec![Some(expired[0].clone()), Some(expired[1].clone()), None]
    );
    let r = app.call("listActiveSessionIds", &sid(&caller));
    assert_eq!(r.sessions(), vec![Some(caller.clone()), None]);
    assert!(!app.validate(&old1), "an expired session is never valid");
    let r = app.call("deleteExpiredSessionIds", &sid(&caller));
    r.assert_ok();
    assert_eq!(r.value("deletedCount").as_deref(), Some("2"));
    let r = app.call("getExpiredSessionIds", &sid(&caller));
    assert_eq!(r.sessions(), vec![None]);
    let info = app.service.session_info(&as_session_id(&old1)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("expired"));
    let r = app.call("deleteExpiredSessionIds", &sid(&caller));
    assert_eq!(r.value("deletedCount").as_deref(), Some("0"));
}

#[test]
fn every_login_removes_all_expired_sessions() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("alice", PW, None, &[Right::ViewSession]);
    let old = app.get_session("alice", PW);
    app.clock().advance(std::time::Duration::from_secs(31 * 60));
    let fresh = app.get_bw_session("alice", PW);
    let r = app.call("getExpiredSessionIds", &sid(&fresh));
    assert_eq!(r.sessions(), Vec::<Option<String>>::new());
    let info = app.service.session_info(&as_session_id(&old)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("expired"));
    // Its end time is when it expired, not when it was removed.
    assert_eq!(info.ended_at, Some(info.expires_at));
}
