//! The store under faults of its own (docs/reliability.md): a SQLite file made
//! read-only or deleted under a running server, the modes of the files SQLite makes, and the
//! last activity an ended session keeps in its history.
//!
//! The SQLite faults are SQLite's own, so those tests run on SQLite whatever backend the run is
//! for (as `TestDb::sqlite()` and `cli.rs` do); the history test runs on both.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::NaiveDateTime;
use sessiond::domain::Right;

use crate::cli::{Server, Site};
use crate::helpers::*;

const PW: &str = "pw-secret-1";
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

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The database file and the WAL and shared-memory files beside it.
fn database_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", db.display()));
    [db.to_owned(), with("-wal"), with("-shm")]
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

// ----- item 10: file modes -----

#[test]
fn the_sqlite_database_and_its_wal_and_shm_files_are_created_readable_by_their_owner_only() {
    let db = TestDb::sqlite();
    let path = PathBuf::from(&db.url.target);
    let app = spawn_app_on(db, None, |_| {});
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    assert!(app.validate(&id));
    for file in database_files(&path) {
        assert!(file.exists(), "{} is there while serving", file.display());
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_sqlite_database_others_could_read_is_made_owner_only_at_start() {
    let db = TestDb::sqlite();
    let path = PathBuf::from(&db.url.target);
    let app = spawn_app_on(db, None, |_| {});
    app.add_user("alice", PW, None, &[]);
    let id = app.get_session("alice", PW);
    let db = app.shutdown();
    for file in database_files(&path) {
        if file.exists() {
            set_mode(&file, 0o644);
        }
    }
    let app = spawn_app_on(db, None, |_| {});
    assert!(app.validate(&id), "the same database, still working");
    for file in database_files(&path) {
        if file.exists() {
            assert_eq!(mode_of(&file), 0o600, "{}", file.display());
        }
    }
}

// ----- items 3 and 4: the file made read-only or deleted under a running server -----

/// The uid `serve` runs as in the read-only test: root writes to a 0444 file regardless, so
/// when the tests run as root the server is started as `nobody` (who owns the site then).
const NOBODY: u32 = 65534;

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// Gives the site and its files to the user `serve` runs as, and returns the command.
fn serve_as_file_owner(site: &Site) -> Command {
    let mut cmd = site.command(&["serve"]);
    if running_as_root() {
        use std::os::unix::process::CommandExt;
        for entry in std::fs::read_dir(site.path()).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        std::os::unix::fs::chown(site.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        // `nobody` may not reach cargo's binary: a checkout under a 0700 directory (mktemp -d)
        // is closed to it. A copy in the site, which it owns now, it can run.
        let bin = Path::new(env!("CARGO_BIN_EXE_sessiond"));
        let reachable = bin
            .ancestors()
            .skip(1)
            .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        if !reachable {
            let copy = site.path().join("sessiond-bin");
            std::fs::copy(bin, &copy).unwrap();
            cmd = site.command_of(&copy, &["serve"]);
        }
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd
}

#[test]
fn a_sqlite_file_read_only_at_start_is_service_unavailable_and_writes_resume_once_it_is_writable() {
    let site = Site::new().with("SESSIOND_DB_TIMEOUT", "500ms");
    site.add_user("alice", PW);
    let db = site.path().join("s.db");
    let mut server = Server::start(serve_as_file_owner(&site));
    let id = server.get_session("alice", PW);
    server.stop();
    // A verb's clean exit checkpoints and removes the -wal and -shm files: the next server
    // makes them while the file is read-only, with its mode then.
    site.add_user("bob", PW);
    assert!(!database_files(&db)[2].exists(), "no -shm file left");

    set_mode(&db, 0o400);
    let mut server = Server::start(serve_as_file_owner(&site));
    for _ in 0..3 {
        let r = server.try_get_session("alice", PW);
        assert_eq!(r.status, 500, "{}", r.body);
        r.assert_fault("SERVICE_UNAVAILABLE");
        let r = server.call("closeSession", &[("sessionId", &id)]);
        r.assert_fault("SERVICE_UNAVAILABLE");
    }

    set_mode(&db, 0o600);
    for _ in 0..3 {
        let fresh = server.get_session("alice", PW);
        assert!(server.validate(&fresh));
        let r = server.call("closeSession", &[("sessionId", &fresh)]);
        r.assert_ok();
        assert_eq!(r.value("closed").as_deref(), Some("true"), "{}", r.body);
    }
    let r = server.call("closeSession", &[("sessionId", &id)]);
    assert_eq!(r.value("closed").as_deref(), Some("true"), "{}", r.body);
    let log = server.stop();
    assert!(!log.contains("INTERNAL"), "{log}");
}

#[test]
fn a_sqlite_file_gone_from_its_path_while_serving_is_service_unavailable_naming_it_once_and_never_recreated(
) {
    let site = Site::new().with("SESSIOND_DB_TIMEOUT", "300ms");
    site.add_user("alice", PW);
    let db = site.path().join("s.db");
    let mut server = site.serve();
    let id = server.get_session("alice", PW);
    assert!(server.validate(&id));

    let moved = site.path().join("moved-away.db");
    std::fs::rename(&db, &moved).unwrap();
    // The session was seen valid: it is answered from memory until the revocation reader
    // finds the file gone (within the revocation lag, 100 ms), which clears the cache.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while server
        .call("validateSession", &[("sessionId", id.as_str())])
        .status
        != 500
    {
        assert!(
            std::time::Instant::now() < deadline,
            "still answered from memory"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for round in 0..6 {
        for (op, fields) in [
            ("validateSession", vec![("sessionId", id.as_str())]),
            ("getSession", vec![("userId", "alice"), ("password", PW)]),
        ] {
            let r = server.call(op, &fields);
            assert_eq!(r.status, 500, "{op} in round {round}: {}", r.body);
            r.assert_fault("SERVICE_UNAVAILABLE");
        }
        assert!(
            !db.exists(),
            "round {round}: the server made a new database"
        );
    }
    let log = server.log();
    let naming: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&db.display().to_string()) && l.contains("missing"))
        .collect();
    assert_eq!(
        naming.len(),
        1,
        "one line per outage naming the path:\n{log}"
    );

    // Put back, the same file serves again: the session is still there.
    std::fs::rename(&moved, &db).unwrap();
    assert!(server.validate(&id));
    server.get_session("alice", PW);
    server.stop();
}
