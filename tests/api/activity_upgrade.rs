//! The upgrade that moves last activity out of `sessions` into `session_activity`: a database
//! written by the previous release (tests/fixtures/upgrade/), migrated by this binary at start,
//! keeps every session's last activity, as getSessionInfo shows it (its last activity and its
//! expiration, a timeout after). On SQLite and, with SESSIOND_TEST_BACKEND=postgres, on
//! PostgreSQL.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::{Connection, RunQueryDsl};
use sessiond::store::Backend;

use crate::helpers::*;

const FIXTURE: &str = "wave2-07c4bd4";
const WIRE_TIME: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";
/// The fixture's sessions were made with a 30-minute timeout; a year keeps them active.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::Text)]
    session_id: String,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    last_activity: NaiveDateTime,
}

const BEFORE: &str = "SELECT session_id, last_activity FROM sessions ORDER BY session_id";

/// The previous release's database in the test's own, and each session's last activity as
/// that release stored it (read before anything migrates it).
fn restore(db: &TestDb) -> Vec<Stored> {
    match db.url.backend {
        Backend::Sqlite => {
            std::fs::copy(
                fixtures().join(format!("{FIXTURE}.sqlite3")),
                db.dir.path().join("sessiond.db"),
            )
            .unwrap();
            let mut c = diesel::SqliteConnection::establish(&db.url.target).unwrap();
            diesel::sql_query(BEFORE).load(&mut c).unwrap()
        }
        Backend::Postgres => {
            let out = Command::new("psql")
                .args(["-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(fixtures().join(format!("{FIXTURE}.pg.sql")))
                .arg(&db.url.target)
                .output()
                .expect("psql runs");
            assert!(
                out.status.success(),
                "restoring the dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut c = diesel::PgConnection::establish(&db.url.target).unwrap();
            diesel::sql_query(BEFORE).load(&mut c).unwrap()
        }
    }
}

fn wire_time(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, WIRE_TIME)
        .unwrap_or_else(|e| panic!("not a wire time ({e}): {text}"))
}

fn info_field(r: &Reply, name: &str) -> Option<String> {
    let doc = r.doc();
    let node = doc
        .descendants()
        .find(|n| n.tag_name().name() == "session")?
        .children()
        .find(|n| n.tag_name().name() == name)?;
    Some(node.text().unwrap_or("").to_owned())
}

#[test]
fn every_session_of_the_previous_release_keeps_its_last_activity_after_the_upgrade() {
    let db = TestDb::new();
    let before = restore(&db);
    assert!(before.len() >= 6, "the fixture holds its active sessions");
    let app = spawn_app_on(db, None, |c| c.session_timeout = YEAR);
    let root = app.get_session("root", "root-pass-1");
    for s in &before {
        let r = app.call(
            "getSessionInfo",
            &[("sessionId", &root), ("targetSessionId", &s.session_id)],
        );
        r.assert_ok();
        let last = wire_time(&info_field(&r, "lastActivityTime").expect("a last activity"));
        let expires = wire_time(&info_field(&r, "expirationTime").expect("an expiration"));
        let stored = s.last_activity.and_utc().timestamp_millis();
        assert_eq!(
            last.and_utc().timestamp_millis(),
            stored,
            "session {}…: the last activity the previous release stored",
            &s.session_id[..6]
        );
        assert_eq!(
            expires.and_utc().timestamp_millis(),
            stored + YEAR.as_millis() as i64,
            "session {}…: expires a timeout after that",
            &s.session_id[..6]
        );
        assert!(app.validate(&s.session_id), "still valid after the upgrade");
    }
}
