//! The SQLite file and its disk: `sessiond backup` of a serving database, a full disk, and a
//! database file deleted while serving. SQLite only, whatever SESSIOND_TEST_BACKEND says.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiond::domain::DatabaseUrl;

use crate::cli::Site;
use crate::helpers::*;

fn sqlite_app(path: &Path) -> TestApp {
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    spawn_app_on(TestDb::sqlite(), None, |c| c.database = url)
}

fn backup(db: &Path, args: &[&str]) -> std::process::Output {
    let site = Site::new().with("DATABASE_URL", &format!("sqlite://{}", db.display()));
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    site.command(&all).output().expect("the binary runs")
}

#[test]
fn a_backup_taken_under_load_serves_every_session_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let app = Arc::new(sqlite_app(&db));
    app.add_user("alice", "pw", None, &[]);
    let before: Vec<String> = (0..20).map(|_| app.get_session("alice", "pw")).collect();
    // Logins, validates and ends go on while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let during = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (app, stop, during) = (app.clone(), stop.clone(), during.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let id = app.get_session("alice", "pw");
                    assert!(app.validate(&id));
                    during.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let copy = dir.path().join("copy.db");
    let started = Instant::now();
    let out = backup(&db, &[copy.to_str().unwrap()]);
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("copy.db"));
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy holds password hashes: owner-only");
    assert!(
        !during.lock().unwrap().is_empty(),
        "no load ran during the backup"
    );

    // Never over an existing file unless told.
    let refused = backup(&db, &[copy.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = backup(&db, &[copy.to_str().unwrap(), "--force"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );

    // A server on the copy serves every session the copy held: all from before the backup.
    let from_copy = sqlite_app(&copy);
    for id in &before {
        assert!(
            from_copy.validate(id),
            "a session of the copy is not served"
        );
    }
    from_copy.get_session("alice", "pw");
    eprintln!(
        "backup under load: {took:?}, {} logins during it",
        during.lock().unwrap().len()
    );
}

#[test]
fn a_backup_of_postgresql_points_to_pg_dump() {
    let site = Site::new().with("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none");
    let out = site
        .command(&["backup", "x.db"])
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
}

/// A small tmpfs of the test's own, unmounted when dropped; `None` where mounting is not
/// allowed (not root, or no CAP_SYS_ADMIN in a container).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        out.status.success().then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .output();
    }
}

/// Fills the file system of `dir` until a write fails: the filler file's path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    for chunk in [64 * 1024, 4096, 512, 1] {
        let block = vec![0u8; chunk];
        while f.write_all(&block).is_ok() {}
    }
    let _ = f.sync_all();
    filler
}

#[test]
fn a_full_disk_answers_service_unavailable_keeps_what_was_acknowledged_and_recovers() {
    let Some(disk) = Tmpfs::mount("4m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)");
        return;
    };
    let db = disk.path().join("sessiond.db");
    let app = sqlite_app(&db);
    app.add_user("alice", "pw", None, &[]);
    let mut acknowledged: Vec<String> = (0..10).map(|_| app.get_session("alice", "pw")).collect();
    let cached = acknowledged[0].clone();
    assert!(app.validate(&cached));

    let filler = fill(disk.path());
    // SQLite reuses the space its WAL already holds: writes fail once that is used up.
    let mut failed = None;
    for _ in 0..5000 {
        let r = app.call("getSession", &[("userId", "alice"), ("password", "pw")]);
        if r.status == 200 {
            acknowledged.push(r.value("sessionId").unwrap());
            continue;
        }
        failed = Some(r);
        break;
    }
    let failed = failed.expect("no write failed on a full disk");
    failed.assert_fault("SERVICE_UNAVAILABLE");
    let full_at = Instant::now();
    // Cached validations go on.
    for _ in 0..20 {
        assert!(app.validate(&cached));
    }
    app.call("getSession", &[("userId", "alice"), ("password", "pw")])
        .assert_fault("SERVICE_UNAVAILABLE");

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let back = loop {
        let r = app.call("getSession", &[("userId", "alice"), ("password", "pw")]);
        if r.status == 200 {
            acknowledged.push(r.value("sessionId").unwrap());
            break freed.elapsed();
        }
        r.assert_fault("SERVICE_UNAVAILABLE");
        assert!(
            freed.elapsed() < Duration::from_secs(10),
            "not back 10 s after"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    for id in &acknowledged {
        assert!(app.validate(id), "an acknowledged session was lost");
    }
    let app_db = app.shutdown();
    drop(app_db);
    // The file is intact.
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let mut conn = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    let check: Check = diesel::sql_query("PRAGMA integrity_check")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(check.integrity_check, "ok");
    eprintln!(
        "full disk: {} sessions acknowledged, none lost; unavailable for writes {:?}, \
         back {back:?} after space returned",
        acknowledged.len(),
        freed - full_at
    );
}

#[test]
fn a_deleted_database_file_answers_one_way_and_is_reported_by_readyz() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessiond.db");
    let app = sqlite_app(&db);
    app.add_user("alice", "pw", None, &[]);
    let id = app.get_session("alice", "pw");
    assert!(app.validate(&id));

    std::fs::remove_file(&db).unwrap();
    // Until the reader notices (within the revocation lag) the cache may still vouch; from the
    // first refusal on, every answer is the same.
    let started = Instant::now();
    let mut answers = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        let r = app.call("validateSession", &[("sessionId", &id)]);
        answers.push(match r.status {
            200 => r.value("valid").unwrap(),
            _ => r.fault_code().unwrap_or_else(|| r.body.clone()),
        });
        std::thread::sleep(Duration::from_millis(10));
    }
    let first_refusal = answers
        .iter()
        .position(|a| a != "true")
        .expect("the session was still valid 3 s after its database file was deleted");
    assert!(
        answers[first_refusal..]
            .iter()
            .all(|a| a == "SERVICE_UNAVAILABLE"),
        "answers changed by turns: {answers:?}"
    );
    let ready = app.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(
        ready.body.contains("missing") && ready.body.contains("sessiond.db"),
        "{}",
        ready.body
    );
}
