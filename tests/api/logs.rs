//! The log as an operator ships it: `SESSIOND_LOG_FORMAT=json` gives one JSON object a line,
//! with the fixed fields, and never a password or a whole session ID.

use crate::cli::{Server, Site};

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

    // The security events, with their real causes and fields.
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["target"] == "sessiond::security")
        .collect();
    let find = |event: &str, key: &str, value: &str| {
        events
            .iter()
            .find(|v| v["event"] == event && v[key] == value)
            .unwrap_or_else(|| panic!("no {event} with {key}={value} in:\n{log}"))
            .clone()
    };
    let login = find("login", "user", "alice");
    assert_eq!(login["client_type"], "standard", "{login}");
    assert_eq!(login["host"], "127.0.0.1", "{login}");
    assert_eq!(login["session"], format!("{}…", &id[..6]), "{login}");
    assert_eq!(
        find("login_failed", "reason", "wrong_password")["user"],
        "alice"
    );
    assert_eq!(
        find("login_failed", "reason", "unknown_user")["user"],
        "nobody"
    );
    assert_eq!(find("session_ended", "reason", "closed")["user"], "alice");
}

#[test]
fn an_admin_action_through_the_cli_is_logged_with_the_os_user_as_actor() {
    // A verb's default is warnings only (see cli.rs, verbs_print_no_info_lines_by_default);
    // the security events are asked for.
    let site = Site::new()
        .with("SESSIOND_LOG_FORMAT", "json")
        .with("RUST_LOG", "warn,sessiond::security=info");
    site.add_user("bob", "pw-bob-secret");
    let out = site.run(&["user", "disable", "bob"]);
    out.succeeded();
    let event = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "admin")
        .unwrap_or_else(|| panic!("no admin event on stderr:\n{}", out.stderr));
    assert_eq!(event["action"], "user_disable");
    assert_eq!(event["user"], "bob");
    let actor = event["actor"].as_str().unwrap();
    assert!(!actor.is_empty() && actor != "-", "{event}");
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        assert!(actor.starts_with("root"), "{event}");
    }
}

#[test]
fn the_fifth_wrong_password_logs_the_lockout_start() {
    let site = Site::new().with("SESSIOND_LOG_FORMAT", "json");
    site.add_user("carol", "pw-carol-secret");
    let mut server = Server::start(site.command(&["serve"]));
    for _ in 0..5 {
        server
            .try_get_session("carol", "wrong")
            .assert_fault("AUTHENTICATION_FAILED");
    }
    server
        .try_get_session("carol", "pw-carol-secret")
        .assert_fault("ACCOUNT_LOCKED");
    let log = server.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "sessiond::security")
        .collect();
    let count = |event: &str, reason: Option<&str>| {
        events
            .iter()
            .filter(|v| v["event"] == event && reason.is_none_or(|r| v["reason"] == r))
            .count()
    };
    assert_eq!(count("lockout", None), 1, "{log}");
    assert_eq!(count("login_failed", Some("wrong_password")), 5, "{log}");
    assert_eq!(count("login_failed", Some("locked")), 1, "{log}");
}

#[test]
fn console_sign_ins_and_admin_actions_are_security_events_with_the_console_user_as_actor() {
    let site = Site::new().with("SESSIOND_LOG_FORMAT", "json");
    site.add_user("dave", "pw-dave-secret");
    site.run(&["user", "grant", "dave", "AdministratorRight"])
        .succeeded();
    site.add_user("erin", "pw-erin-secret");
    let mut server = Server::start(site.command(&["serve"]));
    let base = format!("http://127.0.0.1:{}/admin/", server.port());
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(format!("{base}sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("user=dave&password=pw-dave-secret")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let cookie = crate::listed_ids::cookie_of(&resp).unwrap();
    let page = client
        .get(format!("{base}users"))
        .header("Cookie", format!("sessiond_console={cookie}"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let changed = client
        .post(format!("{base}users/change"))
        .header("Cookie", format!("sessiond_console={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={token}&user=erin&action=grant&right=ViewSessionRight"
        ))
        .send()
        .unwrap();
    assert_eq!(changed.status().as_u16(), 303);
    let added = client
        .post(format!("{base}users/add"))
        .header("Cookie", format!("sessiond_console={cookie}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}&user=frank&password=pw-frank-secret"))
        .send()
        .unwrap();
    assert_eq!(added.status().as_u16(), 303);
    let log = server.stop();
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["target"] == "sessiond::security")
        .collect();
    let sign_in = events
        .iter()
        .find(|v| v["event"] == "console_sign_in")
        .unwrap_or_else(|| panic!("no console_sign_in in:\n{log}"));
    assert_eq!(sign_in["actor"], "dave", "{sign_in}");
    assert_eq!(sign_in["user"], "dave", "{sign_in}");
    assert_eq!(sign_in["host"], "127.0.0.1", "{sign_in}");
    let grant = events
        .iter()
        .find(|v| v["event"] == "console_admin" && v["action"] == "grant")
        .unwrap_or_else(|| panic!("no console_admin grant in:\n{log}"));
    assert_eq!(grant["actor"], "dave", "{grant}");
    assert_eq!(grant["user"], "erin", "{grant}");
    let add = events
        .iter()
        .find(|v| v["event"] == "console_admin" && v["action"] == "add_user")
        .unwrap_or_else(|| panic!("no console_admin add_user in:\n{log}"));
    assert_eq!(add["actor"], "dave", "{add}");
    assert_eq!(add["user"], "frank", "{add}");
    assert!(
        !log.contains("pw-frank-secret"),
        "the new password in the log"
    );
    assert!(
        !log.contains(&cookie),
        "a whole console session ID in the log"
    );
}
