//! The log as an operator ships it: `SESSIOND_LOG_FORMAT=json` gives one JSON object a line,
//! with the fixed fields, and never a password or a whole session ID.

use super::{Server, Site};

#[test]
fn json_log_lines_parse_and_hold_no_password_or_whole_session_id() {
    const PASSWORD: &str = "Kx9-correct-horse-battery";
    let site = Site::new()
        .with("SESSIOND_LOG_FORMAT", "json")
        .with("RUST_LOG", "debug");
    site.add_user("alice", PASSWORD);
    let mut server = Server::start(site.command(&["serve"]));
    let id = server.get_session("alice", PASSWORD);
    assert!(server.validate(&id));
    server
        .try_get_session("alice", "Wrong-password-77")
        .assert_fault("AUTHENTICATION_FAILED");
    server
        .try_get_session("nobody", PASSWORD)
        .assert_fault("AUTHENTICATION_FAILED");
    server
        .call("closeSession", &[("sessionId", &id)])
        .assert_ok();
    let log = server.stop();

    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["ts", "level", "target", "msg"] {
            assert!(v[field].is_string(), "no {field}: {line}");
        }
        assert!(!line.contains(PASSWORD), "a password in the log: {line}");
        assert!(!line.contains("Wrong-password-77"), "a password: {line}");
        assert!(!line.contains(&id), "a whole session ID in the log: {line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("listening on http://")),
        "{log}"
    );
}
