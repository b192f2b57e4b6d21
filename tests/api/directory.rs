//! Directory users against a real slapd (`slapd.rs`): search-then-bind, escaping, groups
//! compared as DNs, nesting, departments, local users first, outages (stopped, frozen,
//! failover), TLS, the sync and `directory check`.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sessiond::config::Config;
use sessiond::domain::Right;

use crate::cli::{Server, Site};
use crate::helpers::*;
use crate::slapd::*;

/// The directory timeout of these tests: short, so the outage tests are quick.
const TIMEOUT: Duration = Duration::from_millis(800);
/// How long an answer bounded by the timeout may take at most on a loaded machine.
const BOUNDED: Duration = Duration::from_secs(4);

fn with_directory(c: &mut Config, slapd: &Slapd) {
    c.ldap_url = vec![slapd.url()];
    c.ldap_bind_dn = Some(ADMIN_DN.into());
    c.ldap_bind_password_file = Some(slapd.password_file.clone());
    c.ldap_user_base = Some(PEOPLE.into());
    c.ldap_department_attribute = Some("departmentNumber".into());
    c.ldap_admin_groups = vec![ADMINS.into()];
    c.ldap_update_groups = vec![PARENT.into(), UPDATERS.into()];
    c.ldap_view_groups = vec![VIEWERS.into()];
    c.ldap_timeout = TIMEOUT;
}

fn directory_app(slapd: &Slapd) -> TestApp {
    spawn_app_with(|c| with_directory(c, slapd))
}

fn login(app: &TestApp, user: &str, password: &str) -> Reply {
    app.call("getSession", &[("userId", user), ("password", password)])
}

fn dir_login(app: &TestApp, user: &str) -> String {
    app.get_session(user, &password_of(user))
}

fn user_row(app: &TestApp, user: &str) -> sessiond::service::UserSummary {
    app.service
        .list_users()
        .unwrap()
        .into_iter()
        .find(|u| u.user_id == user)
        .unwrap_or_else(|| panic!("{user} is not stored"))
}

fn scrape(app: &TestApp) -> String {
    reqwest::blocking::get(format!("{}/metrics", app.base))
        .unwrap()
        .text()
        .unwrap()
}

#[test]
fn a_directory_user_logs_in_and_is_stored_with_its_dn_rights_and_no_hash() {
    let app = directory_app(Slapd::shared());
    let id = dir_login(&app, "alice");
    assert!(app.validate(&id));
    let alice = user_row(&app, "alice");
    assert_eq!(alice.source, "directory");
    assert_eq!(alice.dn.as_deref(), Some(dn_of("alice").as_str()));
    assert_eq!(alice.rights, vec![Right::Administrator]);
    assert_eq!(alice.department, None);
    // An admin without department from the directory may list everyone's sessions.
    app.call("listActiveSessionIds", &[("sessionId", &id)])
        .assert_ok();
    let metrics = scrape(&app);
    assert!(
        metrics
            .contains("sessiond_directory_requests_total{operation=\"user_bind\",result=\"ok\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_wrong_directory_password_fails_and_counts_toward_the_lockout() {
    let slapd = Slapd::shared();
    let app = spawn_app_with(|c| {
        with_directory(c, slapd);
        c.lockout_threshold = 2;
    });
    login(&app, "henry", "wrong").assert_fault("AUTHENTICATION_FAILED");
    login(&app, "henry", "wrong").assert_fault("AUTHENTICATION_FAILED");
    // Locked in sessiond: refused before the directory is asked, even with the right password.
    login(&app, "henry", &password_of("henry")).assert_fault("ACCOUNT_LOCKED");
}

#[test]
fn an_unknown_user_and_two_entries_for_one_id_fail_alike() {
    let app = directory_app(Slapd::shared());
    login(&app, "nobody", "whatever").assert_fault("AUTHENTICATION_FAILED");
    login(&app, "twin", "twin-pw").assert_fault("AUTHENTICATION_FAILED");
}

#[test]
fn filter_characters_in_the_user_id_are_escaped_and_find_no_one() {
    let app = directory_app(Slapd::shared());
    for id in ["*", "x)(uid=*", "alice)(|(uid=*", "al*"] {
        login(&app, id, &password_of("alice")).assert_fault("AUTHENTICATION_FAILED");
    }
}

#[test]
fn an_empty_password_is_refused_without_asking_the_directory() {
    let app = directory_app(Slapd::shared());
    login(&app, "alice", "").assert_fault("AUTHENTICATION_FAILED");
    let metrics = scrape(&app);
    assert!(!metrics.contains("operation=\"user_bind\""), "{metrics}");
}

#[test]
fn a_group_named_like_an_admin_group_elsewhere_grants_nothing() {
    let app = directory_app(Slapd::shared());
    let id = dir_login(&app, "dave");
    assert!(user_row(&app, "dave").rights.is_empty());
    app.call("listActiveSessionIds", &[("sessionId", &id)])
        .assert_fault("ACCESS_DENIED");
}

#[test]
fn membership_by_unique_member_grants_its_right() {
    let app = directory_app(Slapd::shared());
    dir_login(&app, "gina");
    assert_eq!(user_row(&app, "gina").rights, vec![Right::UpdateSession]);
}

#[test]
fn nested_groups_count_only_when_asked_for() {
    let slapd = Slapd::shared();
    let flat = directory_app(slapd);
    dir_login(&flat, "carol");
    assert!(user_row(&flat, "carol").rights.is_empty());
    let nested = spawn_app_with(|c| {
        with_directory(c, slapd);
        c.ldap_nested_groups = true;
    });
    dir_login(&nested, "carol");
    assert_eq!(
        user_row(&nested, "carol").rights,
        vec![Right::UpdateSession]
    );
}

#[test]
fn a_directory_admin_with_a_department_is_not_an_admin_without_department() {
    let app = directory_app(Slapd::shared());
    let dora = dir_login(&app, "dora");
    let row = user_row(&app, "dora");
    assert_eq!(row.department.as_deref(), Some("ops"));
    assert_eq!(row.rights, vec![Right::Administrator]);
    let reply = app.call(
        "openClientlessSession",
        &[("sessionId", &dora), ("userId", "dora")],
    );
    reply.assert_fault("ACCESS_DENIED");
    let bob = dir_login(&app, "bob");
    let user = app.call(
        "getSessionUser",
        &[("sessionId", &bob), ("targetSessionId", &bob)],
    );
    user.assert_ok();
    assert_eq!(user_row(&app, "bob").department.as_deref(), Some("sales"));
}

#[test]
fn a_local_user_with_the_same_id_wins_over_the_directory() {
    let app = directory_app(Slapd::shared());
    app.add_user("bob", "local-pw", None, &[]);
    login(&app, "bob", &password_of("bob")).assert_fault("AUTHENTICATION_FAILED");
    login(&app, "bob", "local-pw").assert_ok();
    assert_eq!(user_row(&app, "bob").source, "local");
}

#[test]
fn confirm_id_of_a_directory_user_binds_again() {
    let app = directory_app(Slapd::shared());
    let id = dir_login(&app, "alice");
    let confirm = |pw: &str| {
        let r = app.call("confirmId", &[("sessionId", &id), ("password", pw)]);
        r.assert_ok();
        r.value("confirmed")
    };
    assert_eq!(confirm("wrong").as_deref(), Some("false"));
    assert_eq!(confirm(&password_of("alice")).as_deref(), Some("true"));
}

#[test]
fn the_cli_cannot_change_what_the_directory_owns_but_disabling_wins() {
    let app = directory_app(Slapd::shared());
    let id = dir_login(&app, "alice");
    let alice = as_user_id("alice");
    let password = sessiond::domain::Password::parse("new-password".into()).unwrap();
    for refused in [
        app.service.set_password(&alice, &password, false).map(drop),
        app.service.set_right(&alice, Right::ViewSession, true),
        app.service.set_department(&alice, None),
    ] {
        let message = refused.expect_err("the directory owns it").to_string();
        assert!(message.contains("directory"), "{message}");
    }
    app.service.disable_user(&alice).unwrap();
    assert!(app.refused_within(&id, REVOCATION_PATIENCE).is_some());
    login(&app, "alice", &password_of("alice")).assert_fault("AUTHENTICATION_FAILED");
    app.service.enable_user(&alice).unwrap();
    dir_login(&app, "alice");
}

#[test]
fn a_stopped_directory_is_unavailable_counts_nothing_and_comes_back_without_a_restart() {
    let slapd = Slapd::start();
    let app = spawn_app_with(|c| {
        with_directory(c, &slapd);
        c.lockout_threshold = 1;
    });
    app.add_user("local", "local-pw", None, &[]);
    // Stored once, so the checks below are reserved in its row; and bob never, so in memory.
    dir_login(&app, "alice");
    slapd.stop();
    login(&app, "bob", &password_of("bob")).assert_fault("SERVICE_UNAVAILABLE");
    for _ in 0..3 {
        let started = Instant::now();
        login(&app, "alice", &password_of("alice")).assert_fault("SERVICE_UNAVAILABLE");
        assert!(started.elapsed() < BOUNDED, "{:?}", started.elapsed());
    }
    // Local users log in meanwhile, and readiness does not depend on the directory.
    login(&app, "local", "local-pw").assert_ok();
    let ready = reqwest::blocking::get(format!("{}/readyz", app.base)).unwrap();
    assert_eq!(ready.status(), 200);
    slapd.restart();
    // Tried again once the failed server's skip is over (the timeout, at least a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = login(&app, "alice", &password_of("alice"));
        if r.fault_code().is_none() {
            break;
        }
        // Never ACCOUNT_LOCKED: with a threshold of one, a counted outage would have locked.
        assert_eq!(r.fault_code().as_deref(), Some("SERVICE_UNAVAILABLE"));
        assert!(Instant::now() < deadline, "the directory did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
    dir_login(&app, "bob");
}

#[test]
fn a_frozen_directory_is_unavailable_within_the_timeout_and_local_logins_go_on() {
    let slapd = Slapd::start();
    let app = spawn_app_with(|c| {
        with_directory(c, &slapd);
        c.lockout_threshold = 1;
    });
    app.add_user("local", "local-pw", None, &[]);
    // A pooled searching connection exists before the freeze.
    dir_login(&app, "bob");
    slapd.freeze();
    let started = Instant::now();
    login(&app, "alice", &password_of("alice")).assert_fault("SERVICE_UNAVAILABLE");
    let took = started.elapsed();
    assert!(took >= TIMEOUT / 2 && took < BOUNDED, "{took:?}");
    let started = Instant::now();
    login(&app, "local", "local-pw").assert_ok();
    assert!(started.elapsed() < BOUNDED);
    slapd.thaw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while login(&app, "alice", &password_of("alice"))
        .fault_code()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the directory did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_next_url_is_tried_when_the_first_does_not_answer() {
    let slapd = Slapd::shared();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let app = spawn_app_with(|c| {
        with_directory(c, slapd);
        c.ldap_url = vec![format!("ldap://127.0.0.1:{dead_port}"), slapd.url()];
    });
    dir_login(&app, "alice");
    dir_login(&app, "bob");
}

#[test]
fn ldaps_and_starttls_verify_the_certificate_against_the_ca_file() {
    let slapd = Slapd::shared();
    let ldaps = spawn_app_with(|c| {
        with_directory(c, slapd);
        c.ldap_url = vec![slapd.ldaps_url()];
        c.ldap_ca_file = Some(slapd.ca_file.clone());
    });
    dir_login(&ldaps, "alice");
    let starttls = spawn_app_with(|c| {
        with_directory(c, slapd);
        c.ldap_url = vec![slapd.starttls_url()];
        c.ldap_starttls = true;
        c.ldap_ca_file = Some(slapd.ca_file.clone());
    });
    dir_login(&starttls, "alice");
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), pki().ca_pem).unwrap();
    for url in [slapd.ldaps_url(), slapd.starttls_url()] {
        let starttls = url.starts_with("ldap://");
        let refused = spawn_app_with(|c| {
            with_directory(c, slapd);
            c.ldap_url = vec![url.clone()];
            c.ldap_starttls = starttls;
            c.ldap_ca_file = Some(other_ca.path().to_owned());
        });
        login(&refused, "alice", &password_of("alice")).assert_fault("SERVICE_UNAVAILABLE");
    }
}

#[test]
fn the_sync_ends_the_sessions_of_a_deleted_user_and_drops_rights_lost_there() {
    let slapd = Slapd::start();
    let app = spawn_app_with(|c| {
        with_directory(c, &slapd);
        c.ldap_sync_interval = Duration::from_secs(1);
    });
    let erin = dir_login(&app, "erin");
    let frank = dir_login(&app, "frank");
    app.call("listActiveSessionIds", &[("sessionId", &frank)])
        .assert_ok();
    slapd.ldap("ldapdelete", &format!("{}\n", dn_of("erin")));
    slapd.ldap(
        "ldapmodify",
        &format!(
            "dn: {VIEWERS}\nchangetype: modify\ndelete: member\nmember: {}\n",
            dn_of("frank")
        ),
    );
    assert!(
        app.refused_within(&erin, Duration::from_secs(10)).is_some(),
        "erin's session outlived her entry"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.call("listActiveSessionIds", &[("sessionId", &frank)]);
        if r.fault_code().as_deref() == Some("ACCESS_DENIED") {
            break;
        }
        assert!(Instant::now() < deadline, "frank kept the view right");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Frank is still there: his session goes on without the right.
    assert!(app.validate(&frank));
}

/// A site whose commands use the directory by environment variables, as an operator sets it.
fn directory_site(slapd: &Slapd) -> Site {
    Site::new()
        .with("SESSIOND_LDAP_URL", &slapd.url())
        .with("SESSIOND_LDAP_BIND_DN", ADMIN_DN)
        .with(
            "SESSIOND_LDAP_BIND_PASSWORD_FILE",
            &slapd.password_file.display().to_string(),
        )
        .with("SESSIOND_LDAP_USER_BASE", PEOPLE)
        .with("SESSIOND_LDAP_ADMIN_GROUPS", ADMINS)
        .with("SESSIOND_LDAP_DEPARTMENT_ATTRIBUTE", "departmentNumber")
        .with("SESSIOND_LDAP_TIMEOUT", "800ms")
}

#[test]
fn directory_check_shows_the_entry_and_whether_the_bind_succeeds() {
    let slapd = Slapd::shared();
    let site = directory_site(slapd);
    let run = |args: &[&str], stdin: &str| {
        let mut child = site
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    };
    let ok = run(
        &["directory", "check", "alice", "--password-stdin"],
        &format!("{}\n", password_of("alice")),
    );
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains(&dn_of("alice")), "{out}");
    assert!(out.contains("AdministratorRight"), "{out}");
    assert!(out.contains("bind:        succeeded"), "{out}");
    assert!(out.contains("passwords travel in clear"), "{out}");
    let wrong = run(
        &["directory", "check", "alice", "--password-stdin"],
        "nope\n",
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong password"));
    let nobody = run(&["directory", "check", "nobody"], "");
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no entry"));
}

#[test]
fn a_directory_admin_signs_in_to_the_console_and_sees_directory_users_read_only() {
    let app = directory_app(Slapd::shared());
    app.add_user("local-admin", "local-pw", None, &[Right::Administrator]);
    let password = sessiond::domain::Password::parse(password_of("alice")).unwrap();
    let (me, _) = app
        .service
        .console_sign_in(
            Some(&as_user_id("alice")),
            Some(&password),
            &sessiond::service::CallContext::default(),
        )
        .expect("a directory admin signs in");
    let users = app.service.console_users(&me).unwrap();
    let alice = users.iter().find(|u| u.user_id == "alice").unwrap();
    assert_eq!(alice.source, "directory");
    assert_eq!(alice.dn.as_deref(), Some(dn_of("alice").as_str()));
    let local = users.iter().find(|u| u.user_id == "local-admin").unwrap();
    assert_eq!(local.source, "local");
}

#[test]
fn the_security_log_says_source_directory_and_the_real_cause() {
    let slapd = Slapd::start();
    let site = directory_site(&slapd).with("SESSIOND_LOG_FORMAT", "json");
    let mut server = Server::start(site.command(&["serve"]));
    server.get_session("alice", &password_of("alice"));
    server
        .try_get_session("alice", "wrong")
        .assert_fault("AUTHENTICATION_FAILED");
    server
        .try_get_session("twin", "twin-pw")
        .assert_fault("AUTHENTICATION_FAILED");
    slapd.stop();
    server
        .try_get_session("bob", &password_of("bob"))
        .assert_fault("SERVICE_UNAVAILABLE");
    let log = server.stop();
    assert!(log.contains("passwords travel in clear"), "{log}");
    let login = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "login" && v["user"] == "alice")
        .unwrap_or_else(|| panic!("no login of alice in:\n{log}"));
    assert_eq!(login["source"], "directory", "{login}");
    let failures: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "login_failed")
        .collect();
    for (user, reason) in [
        ("alice", "wrong_password"),
        ("twin", "several_entries"),
        ("bob", "directory_unreachable"),
    ] {
        let line = failures
            .iter()
            .find(|v| v["user"] == user)
            .unwrap_or_else(|| panic!("no login_failed for {user} in:\n{log}"));
        assert_eq!(line["reason"], reason, "{line}");
        assert_eq!(line["source"], "directory", "{line}");
    }
    assert!(
        !log.contains(&password_of("alice")),
        "a password in the log"
    );
}
