//! Upgrades: databases written by an earlier release (`tests/fixtures/upgrade/`, see its README)
//! are migrated by this one, at start and with `sessiond migrate`, and keep every user, session
//! and history record: every active session validates and belongs to its user, every user logs
//! in with its password, every ended session reads back from the history with why it ended.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sessiond::domain::{Backend, DatabaseUrl};

use crate::cli::Site;
use crate::helpers::*;

/// Every pair of fixtures in the folder: each release adds one, older ones stay.
fn fixtures() -> Vec<String> {
    let dir = fixture_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sqlite3").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no upgrade fixtures in {}",
        dir.display()
    );
    names
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

/// `role id` per line.
fn ids(file: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(fixture_dir().join(file))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (role, id) = l.split_once(' ')?;
            Some((role.to_owned(), id.trim().to_owned()))
        })
        .collect()
}

const USERS: [(&str, &str); 5] = [
    ("root", "root-pass-1"),
    ("deptadmin", "deptadmin-pass-1"),
    ("updater", "updater-pass-1"),
    ("viewer", "viewer-pass-1"),
    ("plain", "plain-pass-1"),
];

/// The user each active session of the fixtures belongs to, and the reason each ended one ended.
fn owner(role: &str) -> &str {
    match role {
        "clientless" => "plain",
        user => user,
    }
}

/// A server on an upgraded database: the fixtures' sessions were made with the default
/// timeout, so it serves with the longest one.
fn serve(url: &DatabaseUrl) -> TestApp {
    let url = url.clone();
    spawn_app_on(TestDb::sqlite(), None, move |c| {
        c.database = url;
        c.session_timeout = Duration::from_secs(365 * 24 * 3600);
    })
}

fn migrate_with_the_cli(url: &DatabaseUrl, target: &str) {
    let site = Site::new().with("DATABASE_URL", target);
    let out = site
        .command(&["migrate"])
        .output()
        .expect("the binary runs");
    assert!(
        out.status.success(),
        "sessiond migrate on {}: {}",
        url.describe(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything the previous release wrote is there and works.
fn assert_everything_kept(app: &TestApp, ids: &[(String, String)]) {
    let root = &ids
        .iter()
        .find(|(r, _)| r == "root")
        .expect("a root session")
        .1;
    for (role, id) in ids {
        let r = app.call(
            "getSessionInfo",
            &[("sessionId", root), ("targetSessionId", id)],
        );
        r.assert_ok();
        match role.as_str() {
            "closed" | "deleted" => {
                assert_eq!(
                    r.value("endReason").as_deref(),
                    Some(role.as_str()),
                    "{role}"
                );
                assert!(!app.validate(id), "the ended session {role} is valid");
            }
            active => {
                assert_eq!(
                    r.value("userId").as_deref(),
                    Some(owner(active)),
                    "{active}"
                );
                assert!(app.validate(id), "the session of {active} was lost");
            }
        }
    }
    for (user, password) in USERS {
        app.get_session(user, password);
    }
    // Rights kept: root may end another's session; plain may not.
    let plain = app.get_session("plain", "plain-pass-1");
    let other = app.get_session("viewer", "viewer-pass-1");
    app.call(
        "deleteSessionId",
        &[("sessionId", &plain), ("targetSessionId", &other)],
    )
    .assert_fault("ACCESS_DENIED");
    app.call(
        "deleteSessionId",
        &[("sessionId", root), ("targetSessionId", &other)],
    )
    .assert_ok();
}

#[test]
fn an_sqlite_database_of_the_previous_release_is_migrated_at_start_and_by_migrate() {
    for name in fixtures() {
        let ids = ids(&format!("{name}.ids"));
        for by_cli in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("sessiond.db");
            std::fs::copy(fixture_dir().join(format!("{name}.sqlite3")), &file).unwrap();
            let target = format!("sqlite://{}", file.display());
            let url = DatabaseUrl::parse(&target).unwrap();
            if by_cli {
                migrate_with_the_cli(&url, &target);
            }
            let app = serve(&url);
            assert_eq!(app.get("/readyz").status, 200, "{name}: migrations pending");
            assert_everything_kept(&app, &ids);
        }
    }
}

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn a_postgresql_database_of_the_previous_release_is_migrated_at_start_and_by_migrate() {
    for name in fixtures() {
        let ids = ids(&format!("{name}.pg.ids"));
        for by_cli in [false, true] {
            let db = TestDb::new();
            assert_eq!(
                db.url.backend,
                Backend::Postgres,
                "run it with SESSIOND_TEST_BACKEND=postgres"
            );
            let out = std::process::Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(fixture_dir().join(format!("{name}.pg.sql")))
                .arg(&db.url.target)
                .output()
                .expect("psql runs");
            assert!(
                out.status.success(),
                "restoring {name}.pg.sql: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if by_cli {
                migrate_with_the_cli(&db.url, &db.url.target);
            }
            let app = serve(&db.url);
            assert_eq!(app.get("/readyz").status, 200, "{name}: migrations pending");
            assert_everything_kept(&app, &ids);
            drop(app);
            drop(db);
        }
    }
}
