//! The login path under races and probing (docs/behaviour.md §2): a login racing
//! `sessiond user disable`, the lock-out of names that never existed, and wrong passwords sent
//! all at once. Run on SQLite and, with SESSIOND_TEST_BACKEND=postgres, on PostgreSQL.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use sessiond::domain::Right;
use sessiond::store::Backend;

use crate::helpers::*;

const PW: &str = "right-password";
const WRONG: &str = "wrong-password";
const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

/// Logins queue behind two hashing threads; nothing here should be turned away as busy.
fn patient(c: &mut sessiond::config::Config) {
    c.hash_concurrency = 2;
    c.login_wait = Duration::from_secs(120);
}

/// `sessiond user disable USER` on the app's database, as an administrator runs it.
fn cli_disable(db: &TestDb, user: &str) {
    cli_user(db, "disable", user);
}

/// `sessiond user VERB USER` on the app's database, which must succeed.
fn cli_user(db: &TestDb, verb: &str, user: &str) {
    let url = match db.url.backend {
        Backend::Sqlite => format!("sqlite://{}", db.url.target),
        Backend::Postgres => db.url.target.clone(),
    };
    let out = Command::new(BIN)
        .args(["user", verb, user])
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .current_dir(db.dir.path())
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "user {verb} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn login_code(app: &TestApp, user: &str, password: &str) -> String {
    let r = app.call("getSession", &[("userId", user), ("password", password)]);
    match r.fault_code() {
        Some(code) => code,
        None => {
            r.assert_ok();
            "OK".into()
        }
    }
}

#[test]
fn a_login_racing_user_disable_leaves_the_disabled_user_no_valid_session() {
    const ROUNDS: usize = 8;
    let app = Arc::new(spawn_app_with(patient));
    app.add_user("watcher", PW, None, &[Right::ViewSession]);
    let watcher = app.get_session("watcher", PW);
    let mut leaked_rounds = Vec::new();
    for round in 0..ROUNDS {
        let user = format!("plain{round}");
        app.add_user(&user, PW, None, &[]);
        let opened = Arc::new(Mutex::new(Vec::<String>::new()));
        // Two clients log in again and again until the disable turns them away.
        let loops: Vec<_> = (0..2)
            .map(|_| {
                let (app, opened, user) = (app.clone(), opened.clone(), user.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let r = app.call("getSession", &[("userId", &user), ("password", PW)]);
                        match r.value("sessionId") {
                            Some(id) if r.status == 200 => opened.lock().unwrap().push(id),
                            _ => {
                                r.assert_fault("AUTHENTICATION_FAILED");
                                return;
                            }
                        }
                    }
                    panic!("the logins were never refused");
                })
            })
            .collect();
        while opened.lock().unwrap().len() < 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        cli_disable(&app.db, &user);
        for l in loops {
            l.join().unwrap();
        }
        // Every login has been answered and the disable has returned: nothing of the user's
        // may still work, by any operation.
        let opened = opened.lock().unwrap().clone();
        let listed: HashSet<String> = app
            .call("listActiveSessionIds", &[("sessionId", &watcher)])
            .sessions()
            .into_iter()
            .flatten()
            .collect();
        let mut leaked = 0;
        for id in &opened {
            let valid = app.validate(id);
            let current = app.call("getCurrentSession", &[("sessionId", id)]);
            let current_ok = current.fault_code().is_none();
            if valid || current_ok || listed.contains(id) {
                leaked += 1;
            }
        }
        if leaked > 0 {
            leaked_rounds.push((round, leaked, opened.len()));
        }
    }
    assert!(
        leaked_rounds.is_empty(),
        "(round, sessions still working after the disable, sessions opened): {leaked_rounds:?}"
    );
}

#[test]
fn a_login_racing_user_delete_leaves_no_session_and_fails_only_as_authentication_failed() {
    const ROUNDS: usize = 6;
    let app = Arc::new(spawn_app_with(patient));
    for round in 0..ROUNDS {
        let user = format!("leaving{round}");
        app.add_user(&user, PW, None, &[]);
        let opened = Arc::new(Mutex::new(Vec::<String>::new()));
        let loops: Vec<_> = (0..2)
            .map(|_| {
                let (app, opened, user) = (app.clone(), opened.clone(), user.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let r = app.call("getSession", &[("userId", &user), ("password", PW)]);
                        match r.value("sessionId") {
                            Some(id) if r.status == 200 => opened.lock().unwrap().push(id),
                            _ => {
                                // Never a database error from the vanished row.
                                r.assert_fault("AUTHENTICATION_FAILED");
                                return;
                            }
                        }
                    }
                    panic!("the logins were never refused");
                })
            })
            .collect();
        while opened.lock().unwrap().len() < 2 {
            std::thread::sleep(Duration::from_millis(5));
        }
        cli_user(&app.db, "delete", &user);
        for l in loops {
            l.join().unwrap();
        }
        let opened = opened.lock().unwrap().clone();
        let still: Vec<&String> = opened.iter().filter(|id| app.validate(id)).collect();
        assert!(
            still.is_empty(),
            "round {round}: {} of {} sessions valid after the delete",
            still.len(),
            opened.len()
        );
    }
}

/// What a prober sees of one name: six wrong passwords, the right one for the real user, and a
/// wrong one once the lock's time has run out.
fn probe(app: &TestApp, user: &str) -> Vec<String> {
    let mut answers: Vec<String> = (0..6).map(|_| login_code(app, user, WRONG)).collect();
    answers.push(login_code(app, user, PW));
    app.clock().advance(Duration::from_secs(15 * 60 + 1));
    answers.push(login_code(app, user, WRONG));
    answers
}

#[test]
fn a_name_that_never_existed_is_locked_out_like_a_real_user_and_a_disabled_one() {
    let app = spawn_app_with_clock(|_| {});
    app.add_user("real", PW, None, &[]);
    app.add_user("gone", PW, None, &[]);
    app.service.disable_user(&as_user_id("gone")).unwrap();
    let expected: Vec<String> = ["AUTHENTICATION_FAILED"; 5]
        .into_iter()
        .chain(["ACCOUNT_LOCKED"; 2])
        .chain(["AUTHENTICATION_FAILED"])
        .map(str::to_owned)
        .collect();
    assert_eq!(probe(&app, "real"), expected, "a real user");
    assert_eq!(probe(&app, "never-existed"), expected, "an unknown name");
    assert_eq!(probe(&app, "gone"), expected, "a disabled user");
    // The lock ran out; the real user's right password works again.
    assert_eq!(login_code(&app, "real", PW), "OK");
}

/// Sends `n` wrong passwords for `user` at once, spread over `apps`; the fault codes.
fn all_at_once(apps: &Arc<Vec<TestApp>>, user: &str, n: usize) -> Vec<String> {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (apps, barrier, user) = (apps.clone(), barrier.clone(), user.to_owned());
            std::thread::spawn(move || {
                let app = &apps[i % apps.len()];
                barrier.wait();
                login_code(app, &user, WRONG)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn count(codes: &[String], code: &str) -> usize {
    codes.iter().filter(|c| *c == code).count()
}

#[test]
fn forty_wrong_passwords_at_once_get_exactly_the_threshold_of_checks_for_any_name() {
    let apps = Arc::new(vec![spawn_app_with(|c| {
        c.hash_concurrency = 4;
        c.login_wait = Duration::from_secs(120);
    })]);
    apps[0].add_user("alice", PW, None, &[]);
    for user in ["alice", "nobody-by-this-name"] {
        let codes = all_at_once(&apps, user, 40);
        // A check that ran and failed answers AUTHENTICATION_FAILED; one refused without a
        // check answers ACCOUNT_LOCKED.
        assert_eq!(
            count(&codes, "AUTHENTICATION_FAILED"),
            5,
            "{user}: {codes:?}"
        );
        assert_eq!(count(&codes, "ACCOUNT_LOCKED"), 35, "{user}: {codes:?}");
    }
    assert_eq!(login_code(&apps[0], "alice", PW), "ACCOUNT_LOCKED");
}

#[test]
fn more_right_passwords_at_once_than_the_threshold_all_get_a_session() {
    let a = spawn_app_with(patient);
    let b = spawn_app_on(a.db.clone(), None, patient);
    a.add_user("alice", PW, None, &[]);
    let apps = Arc::new(vec![a, b]);
    let barrier = Arc::new(Barrier::new(20));
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let (apps, barrier) = (apps.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                login_code(&apps[i % 2], "alice", PW)
            })
        })
        .collect();
    let codes: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(count(&codes, "OK"), 20, "{codes:?}");
}

#[test]
fn forty_wrong_passwords_at_once_on_two_instances_get_exactly_the_threshold_of_checks() {
    let a = spawn_app_with(patient);
    let b = spawn_app_on(a.db.clone(), None, patient);
    a.add_user("alice", PW, None, &[]);
    let apps = Arc::new(vec![a, b]);
    let codes = all_at_once(&apps, "alice", 40);
    assert_eq!(count(&codes, "AUTHENTICATION_FAILED"), 5, "{codes:?}");
    assert_eq!(count(&codes, "ACCOUNT_LOCKED"), 35, "{codes:?}");
    for app in apps.iter() {
        assert_eq!(login_code(app, "alice", PW), "ACCOUNT_LOCKED");
    }
}
