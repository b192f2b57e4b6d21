//! The store under faults of its own (issue 9, items 3, 4, 10, 11): a SQLite file made
//! read-only or deleted under a running server, the modes of the files SQLite makes, and the
//! last activity an ended session keeps in its history.
//!
//! The SQLite faults are SQLite's own, so those tests run on SQLite whatever backend the run is
//! for (as `TestDb::sqlite()` and `cli.rs` do); the history test runs on both.

use std::time::Duration;

use chrono::NaiveDateTime;
use sessiond::domain::Right;

use crate::helpers::*;

const PW: &str = "pw";
const MINUTE: Duration = Duration::from_secs(60);
const WIRE_TIME: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

fn wire_time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, WIRE_TIME)
        .unwrap_or_else(|e| panic!("not a wire time ({e}): {text}"))
}

/// A field of the one session in a getSessionInfo answer.
fn info_field(r: &Reply, name: &str) -> Option<String> {
    let doc = r.doc();
    let node = doc
        .descendants()
        .find(|n| n.has_tag_name((NS, "session")))?
        .children()
        .find(|n| n.has_tag_name((NS, name)))?;
    Some(node.text().unwrap_or("").to_owned())
}

// ----- item 11: the last activity an ended session keeps -----

#[test]
fn a_closed_deleted_or_disabled_session_keeps_the_last_activity_its_client_was_told() {
    // A long lag: the renewals are still pending (in memory only) when the sessions end.
    let app = spawn_app_with_clock(|c| c.activity_lag = Duration::from_secs(3600));
    app.add_user(
        "viewer",
        PW,
        None,
        &[Right::ViewSession, Right::UpdateSession],
    );
    app.add_user("alice", PW, None, &[]);
    app.add_user("carol", PW, None, &[]);
    let closed = app.get_session("alice", PW);
    let deleted = app.get_session("alice", PW);
    let disabled = app.get_session("carol", PW);
    app.clock().advance(20 * MINUTE);
    let me = app.get_session("viewer", PW);
    let mut told = Vec::new();
    for id in [&closed, &deleted, &disabled] {
        let r = app.call("extendSession", &[("sessionId", id)]);
        r.assert_ok();
        told.push(wire_time(&r.value("expirationTime").unwrap()));
    }
    app.clock().advance(MINUTE);

    app.call("closeSession", &[("sessionId", &closed)])
        .assert_ok();
    app.call(
        "deleteSessionId",
        &[("sessionId", &me), ("targetSessionId", &deleted)],
    )
    .assert_ok();
    app.service.disable_user(&as_user_id("carol")).unwrap();

    for ((id, reason), expires) in [
        (&closed, "closed"),
        (&deleted, "deleted"),
        (&disabled, "user-disabled"),
    ]
    .into_iter()
    .zip(told)
    {
        let r = app.call(
            "getSessionInfo",
            &[("sessionId", &me), ("targetSessionId", id)],
        );
        r.assert_ok();
        assert_eq!(info_field(&r, "endReason").as_deref(), Some(reason));
        let last = wire_time(&info_field(&r, "lastActivityTime").unwrap());
        assert_eq!(
            last,
            expires - chrono::Duration::minutes(30),
            "{reason}: the history's last activity is the extendSession the client was answered"
        );
        assert_eq!(
            wire_time(&info_field(&r, "expirationTime").unwrap()),
            expires,
            "{reason}"
        );
    }
}

#[test]
fn a_session_removed_as_expired_keeps_the_last_activity_it_was_renewed_at() {
    let app = spawn_app_with_clock(|c| c.activity_lag = Duration::from_secs(3600));
    app.add_user(
        "viewer",
        PW,
        None,
        &[Right::ViewSession, Right::UpdateSession],
    );
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    app.clock().advance(20 * MINUTE);
    let r = app.call("extendSession", &[("sessionId", &id)]);
    let expires = wire_time(&r.value("expirationTime").unwrap());
    app.clock().advance(31 * MINUTE);
    let me = app.get_session("viewer", PW);
    app.call("deleteExpiredSessionIds", &[("sessionId", &me)])
        .assert_ok();
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", &me), ("targetSessionId", &id)],
    );
    r.assert_ok();
    assert_eq!(info_field(&r, "endReason").as_deref(), Some("expired"));
    assert_eq!(
        wire_time(&info_field(&r, "lastActivityTime").unwrap()),
        expires - chrono::Duration::minutes(30)
    );
    assert_eq!(wire_time(&info_field(&r, "endTime").unwrap()), expires);
}
