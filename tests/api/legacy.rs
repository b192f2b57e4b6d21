//! The eight legacy operations, as a SOAP 1.1 client calls them.

use sessiond::domain::Right;

use crate::helpers::*;

#[test]
fn get_session_returns_an_id_that_validates() {
    let app = spawn_app();
    app.add_user("alice", "pw-alice", None, &[]);
    let id = app.get_session("alice", "pw-alice");
    assert!(id.len() >= 22 && id.len() <= 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert!(app.validate(&id));
}

#[test]
fn each_session_gets_a_new_id() {
    let app = spawn_app();
    app.add_user("alice", "pw", None, &[]);
    let a = app.get_session("alice", "pw");
    let b = app.get_session("alice", "pw");
    assert_ne!(a, b);
}
