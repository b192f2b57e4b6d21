//! Session policy (docs/behaviour.md §7) as an operator and a client meet it: `sessions end --user`
//! and `--all`, `user passwd` ending the user's sessions, the password minimum, and the end
//! reasons `deleted` and `password-changed` as getSessionInfo shows them over SOAP.
//!
//! The server runs in the test (on SQLite or, with SESSIOND_TEST_BACKEND=postgres, on
//! PostgreSQL) and the verbs are the real binary on the same database, as an administrator's
//! script runs them beside a running `serve`.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sessiond::config::Config;
use sessiond::domain::{Backend, EndReason, Password, Right};

use crate::helpers::{
    as_session_id, as_user_id, spawn_app, spawn_app_with, spawn_app_with_clock, TestApp,
};

const BIN: &str = env!("CARGO_BIN_EXE_sessiond");
const PW: &str = "pw-policy-1";
/// How long another writer's ending may take to reach a running server (docs/behaviour.md §3: the
/// revocation lag is at most 1 s), with room for a loaded machine.
const REVOCATION_PATIENCE: Duration = Duration::from_secs(3);

/// Runs `sessiond ARGS` on the app's database with only the settings given here, `stdin`
/// written to it; what it printed, and whether it succeeded.
pub(crate) fn sessiond(app: &TestApp, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let url = match app.db.url.backend {
        Backend::Sqlite => format!("sqlite://{}", app.db.url.target),
        Backend::Postgres => app.db.url.target.clone(),
    };
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SESSIOND_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .current_dir(app.db.dir.path())
        .args(args)
        .env("DATABASE_URL", url)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // A verb that fails before reading closes the pipe; that is its business.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn succeeded(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn failed(out: Output) -> String {
    assert!(!out.status.success(), "succeeded: {}", stdout(&out));
    stderr(&out)
}

/// Whether the server refuses the session within the revocation lag.
fn refused_soon(app: &TestApp, id: &str) -> bool {
    let deadline = Instant::now() + REVOCATION_PATIENCE;
    while app.validate(id) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The endReason getSessionInfo gives `viewer_session` for `target`.
fn end_reason(app: &TestApp, viewer_session: &str, target: &str) -> Option<String> {
    let r = app.call(
        "getSessionInfo",
        &[("sessionId", viewer_session), ("targetSessionId", target)],
    );
    r.assert_ok();
    r.value("endReason").filter(|v| !v.is_empty())
}

// ----- sessions end --user / --all -----

#[test]
fn sessions_end_user_ends_every_session_of_that_user_only_prints_the_count_and_records_each_as_deleted(
) {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.add_user("bob", PW, None, &[]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let alice: Vec<String> = (0..3).map(|_| app.get_session("alice", PW)).collect();
    let bob = app.get_bw_session("bob", PW);
    let viewer = app.get_session("viewer", PW);

    let out = succeeded(sessiond(
        &app,
        &["sessions", "end", "--user", "alice"],
        &[],
        "",
    ));
    assert!(out.contains("ended 3 sessions of alice"), "{out}");

    for id in &alice {
        assert!(refused_soon(&app, id), "alice's session is still valid");
        app.call("getCurrentSession", &[("sessionId", id)])
            .assert_fault("INVALID_SESSION");
        assert_eq!(end_reason(&app, &viewer, id).as_deref(), Some("deleted"));
    }
    assert!(app.validate(&bob));
    assert_eq!(end_reason(&app, &viewer, &bob), None);
    // Nothing of alice's is left to end.
    let again = succeeded(sessiond(
        &app,
        &["sessions", "end", "--user", "alice"],
        &[],
        "",
    ));
    assert!(again.contains("ended 0 sessions of alice"), "{again}");
}

/// Stores `n` sessions of `user` straight into the database, IDs `seed-00000001` and on: the
/// way to have more sessions than a batch without thousands of logins.
fn seed_sessions(app: &TestApp, user: &str, n: u32) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let sql = match app.db.url.backend {
        Backend::Postgres => format!(
            "INSERT INTO sessions (session_id, user_id, client_type, location, created_at) \
             SELECT 'seed-' || lpad(g::text, 8, '0'), '{user}', 'standard', \
             'test-instance', now() AT TIME ZONE 'utc' FROM generate_series(1, {n}) AS g; \
             INSERT INTO session_activity (session_id, last_activity) \
             SELECT session_id, created_at FROM sessions WHERE session_id LIKE 'seed-%'"
        ),
        Backend::Sqlite => format!(
            "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) \
             INSERT INTO sessions (session_id, user_id, client_type, location, created_at) \
             SELECT 'seed-' || printf('%08d', i), '{user}', 'standard', \
             'test-instance', strftime('%Y-%m-%d %H:%M:%f', 'now') FROM g; \
             INSERT INTO session_activity (session_id, last_activity) \
             SELECT session_id, created_at FROM sessions WHERE session_id LIKE 'seed-%'"
        ),
    };
    match app.db.url.backend {
        Backend::Postgres => diesel::PgConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(&sql),
        Backend::Sqlite => diesel::SqliteConnection::establish(&app.db.url.target)
            .unwrap()
            .batch_execute(&sql),
    }
    .unwrap();
}

#[test]
fn sessions_end_user_walks_past_one_batch_and_ends_them_all() {
    let app = spawn_app();
    app.add_user("root", PW, None, &[Right::Administrator]);
    app.add_user("alice", PW, None, &[]);
    let root = app.get_session("root", PW);
    // Two full batches of 2000, one of a single session, and a session of alice's that a
    // client holds.
    seed_sessions(&app, "alice", 4000);
    let held = app.get_session("alice", PW);
    assert!(app.validate("seed-00004000"));

    let out = succeeded(sessiond(
        &app,
        &["sessions", "end", "--user", "alice"],
        &[],
        "",
    ));
    assert!(out.contains("ended 4001 sessions of alice"), "{out}");
    let r = app.call("listActiveSessionIds", &[("sessionId", &root)]);
    r.assert_ok();
    let active: Vec<_> = r.sessions().into_iter().flatten().collect();
    assert_eq!(
        active,
        std::slice::from_ref(&root),
        "only root's own session is left"
    );
    for id in [
        "seed-00000001",
        "seed-00002000",
        "seed-00002001",
        "seed-00004000",
        &held,
    ] {
        assert_eq!(
            end_reason(&app, &root, id).as_deref(),
            Some("deleted"),
            "{id}"
        );
    }
}

#[test]
fn sessions_end_all_without_yes_is_refused_naming_the_flag_and_ends_nothing() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);

    let err = failed(sessiond(&app, &["sessions", "end", "--all"], &[], ""));
    assert!(err.contains("--yes"), "{err}");
    assert!(app.validate(&id));
    // Neither --user with --yes, nor no choice at all, is taken for --all.
    failed(sessiond(
        &app,
        &["sessions", "end", "--user", "alice", "--yes"],
        &[],
        "",
    ));
    failed(sessiond(&app, &["sessions", "end"], &[], ""));
    assert!(app.validate(&id));
}

#[test]
fn sessions_end_all_with_yes_ends_every_session_prints_the_count_and_records_each_as_deleted() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let mut ids: Vec<String> = (0..3).map(|_| app.get_session("alice", PW)).collect();
    ids.push(app.get_bw_session("viewer", PW));

    let out = succeeded(sessiond(
        &app,
        &["sessions", "end", "--all", "--yes"],
        &[],
        "",
    ));
    assert!(out.contains("ended 4 sessions"), "{out}");

    for id in &ids {
        assert!(refused_soon(&app, id), "a session is still valid");
    }
    // A new login works, and sees each old session ended as deleted.
    let viewer = app.get_session("viewer", PW);
    for id in &ids {
        assert_eq!(end_reason(&app, &viewer, id).as_deref(), Some("deleted"));
    }
}

#[test]
fn ending_a_users_sessions_through_the_service_refuses_them_at_once_on_that_instance() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    assert!(app.validate(&id));
    let ended = app
        .service
        .end_sessions_of_user(&as_user_id("alice"), EndReason::Deleted)
        .unwrap();
    assert_eq!(ended, 1);
    assert!(!app.validate(&id));
    assert!(app
        .service
        .end_sessions_of_user(&as_user_id("ghost"), EndReason::Deleted)
        .is_err());
}

#[test]
fn sessions_end_user_of_an_unknown_user_fails_naming_it() {
    let app = spawn_app();
    let err = failed(sessiond(
        &app,
        &["sessions", "end", "--user", "ghost"],
        &[],
        "",
    ));
    assert!(err.contains("ghost"), "{err}");
}

// ----- a password change ends the user's sessions -----

#[test]
fn user_passwd_ends_the_users_sessions_with_reason_password_changed() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    app.add_user("viewer", PW, None, &[Right::ViewSession]);
    let alice = [
        app.get_session("alice", PW),
        app.get_bw_session("alice", PW),
    ];
    let viewer = app.get_session("viewer", PW);

    let out = succeeded(sessiond(
        &app,
        &["user", "passwd", "alice", "--password-stdin"],
        &[],
        "pw-policy-2\n",
    ));
    assert!(out.contains("ended 2 sessions"), "{out}");

    for id in &alice {
        assert!(refused_soon(&app, id), "a session survived the change");
        assert_eq!(
            end_reason(&app, &viewer, id).as_deref(),
            Some("password-changed")
        );
        let info = succeeded(sessiond(&app, &["sessions", "info", "--", id], &[], ""));
        assert!(
            info.lines()
                .any(|l| l.starts_with("end reason:") && l.ends_with("password-changed")),
            "{info}"
        );
    }
    assert!(app.validate(&viewer), "another user's session is kept");
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("AUTHENTICATION_FAILED");
    assert!(app.validate(&app.get_session("alice", "pw-policy-2")));
}

#[test]
fn user_passwd_with_keep_sessions_keeps_them_and_still_changes_the_password() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);

    let out = succeeded(sessiond(
        &app,
        &[
            "user",
            "passwd",
            "alice",
            "--password-stdin",
            "--keep-sessions",
        ],
        &[],
        "pw-policy-2\n",
    ));
    assert!(out.contains("kept"), "{out}");

    assert!(app.validate(&id));
    app.call("getSession", &[("userId", "alice"), ("password", PW)])
        .assert_fault("AUTHENTICATION_FAILED");
    app.get_session("alice", "pw-policy-2");
}

#[test]
fn the_service_set_password_ends_sessions_unless_told_to_keep_them() {
    let app = spawn_app();
    app.add_user("alice", PW, None, &[]);
    let alice = as_user_id("alice");
    let kept = app.get_session("alice", PW);
    let new = Password::parse("pw-policy-2".into()).unwrap();
    assert_eq!(app.service.set_password(&alice, &new, true).unwrap(), 0);
    assert!(app.validate(&kept));
    assert_eq!(app.service.set_password(&alice, &new, false).unwrap(), 1);
    assert!(!app.validate(&kept));
}

#[test]
fn password_changed_records_are_purged_after_the_retention_period() {
    let app = spawn_app_with_clock(|c| c.history_retention = Duration::from_secs(3600));
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    let new = Password::parse("pw-policy-2".into()).unwrap();
    app.service
        .set_password(&as_user_id("alice"), &new, false)
        .unwrap();
    let info = app.service.session_info(&as_session_id(&id)).unwrap();
    assert_eq!(info.end_reason.as_deref(), Some("password-changed"));
    app.clock().advance(Duration::from_secs(2 * 3600));
    assert_eq!(app.service.purge_history().unwrap(), 1);
    assert!(app.service.session_info(&as_session_id(&id)).is_err());
}

// ----- the password minimum -----

#[test]
fn user_add_and_passwd_refuse_a_password_shorter_than_the_minimum_naming_it() {
    let app = spawn_app();
    // The default minimum, 8: seven characters are refused, eight accepted.
    let err = failed(sessiond(
        &app,
        &["user", "add", "alice", "--password-stdin"],
        &[],
        "1234567\n",
    ));
    assert!(err.contains("at least 8 characters"), "{err}");
    succeeded(sessiond(
        &app,
        &["user", "add", "alice", "--password-stdin"],
        &[],
        "12345678\n",
    ));
    let err = failed(sessiond(
        &app,
        &["user", "passwd", "alice", "--password-stdin"],
        &[],
        "short\n",
    ));
    assert!(err.contains("at least 8 characters"), "{err}");
    app.get_session("alice", "12345678");

    // A minimum of 12 set by the operator.
    let twelve = [("SESSIOND_PASSWORD_MIN_LENGTH", "12")];
    let err = failed(sessiond(
        &app,
        &["user", "passwd", "alice", "--password-stdin"],
        &twelve,
        "12345678901\n",
    ));
    assert!(err.contains("at least 12 characters"), "{err}");
    succeeded(sessiond(
        &app,
        &["user", "passwd", "alice", "--password-stdin"],
        &twelve,
        "123456789012\n",
    ));
}

#[test]
fn the_password_minimum_counts_characters_not_bytes() {
    let app = spawn_app();
    // Seven two-byte letters are 14 bytes but seven characters: too short.
    let err = failed(sessiond(
        &app,
        &["user", "add", "alice", "--password-stdin"],
        &[],
        "ééééééé\n",
    ));
    assert!(err.contains("at least 8 characters"), "{err}");
    succeeded(sessiond(
        &app,
        &["user", "add", "alice", "--password-stdin"],
        &[],
        "éééééééé\n",
    ));
    app.get_session("alice", "éééééééé");
}

#[test]
fn a_user_whose_short_password_was_stored_before_the_minimum_still_logs_in() {
    let app = spawn_app_with(|c| c.password_min_length = Config::default().password_min_length);
    // Stored while the minimum was 1, as by a release before it existed.
    succeeded(sessiond(
        &app,
        &["user", "add", "alice", "--password-stdin"],
        &[("SESSIOND_PASSWORD_MIN_LENGTH", "1")],
        "pw\n",
    ));
    assert!(app.validate(&app.get_session("alice", "pw")));
}

#[test]
fn the_first_admins_random_password_is_at_least_the_minimum() {
    let app = spawn_app_with(|c| c.password_min_length = 40);
    let file = app.db.dir.path().join("admin-password.txt");
    let password = std::fs::read_to_string(file).unwrap().trim().to_owned();
    assert!(password.chars().count() >= 40, "{password:?} is short");
    assert!(app.validate(&app.get_session("admin", &password)));
}
