//! Failover (PostgreSQL only): two clusters made by the test with the machine's PostgreSQL
//! binaries, a primary and its synchronous standby, on free loopback ports in a temporary
//! directory. Two instances are given both hosts with `target_session_attrs=read-write`.
//!
//! First the primary is stopped (`-m immediate`, as a crash) and the standby promoted under a
//! login and validate load: every instance serves again within 5 s, every acknowledged session
//! is valid afterwards, no call fails with anything but SERVICE_UNAVAILABLE, and revocation
//! works across the instances after it. Then the old primary comes back as a primary of its
//! own, first in the URL, and is turned read-only (what a fenced primary does): the instances
//! move to the writable host within 5 s, again with no other fault.
//!
//! The clusters are made once and serve both steps: making them is most of the test's time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::{Connection, RunQueryDsl};
use sessiond::domain::DatabaseUrl;

use crate::helpers::*;

/// How soon every instance must serve again after a promotion or a primary turning read-only.
const BOUND: Duration = Duration::from_secs(5);

/// The newest PostgreSQL server binaries on this machine.
fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL cluster of the test's own, stopped when dropped.
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    sockets: PathBuf,
}

/// Runs a PostgreSQL binary as the `postgres` user when the test runs as root (initdb and the
/// server refuse root), else as ourselves.
fn pg_command(bin: &Path, tool: &str) -> Command {
    // SAFETY: geteuid only reads the process's user ID.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn start(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("log"));
        c.arg("-o").arg(format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.sockets.display()
        ));
        c.args(["-w", "-t", "60", "start"]);
        run(c, "pg_ctl start");
    }

    fn stop_immediately(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"]);
        run(c, "pg_ctl stop -m immediate");
    }

    fn promote(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D").arg(&self.data).args(["-w", "promote"]);
        run(c, "pg_ctl promote");
    }

    fn sql(&self, sql: &str) {
        let mut conn = diesel::PgConnection::establish(&self.url("postgres"))
            .unwrap_or_else(|e| panic!("cluster on {}: {e}", self.port));
        diesel::sql_query(sql).execute(&mut conn).unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

/// A primary and its synchronous standby, and the temporary directory they live in.
struct Pair {
    primary: Cluster,
    standby: Cluster,
    _dir: tempfile::TempDir,
}

fn make_pair(bin: &Path) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: geteuid only reads the process's user ID.
    if unsafe { libc::geteuid() } == 0 {
        let out = Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .unwrap();
        let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
    }
    let cluster = |name: &str| Cluster {
        bin: bin.to_owned(),
        data: dir.path().join(name),
        port: free_port(),
        sockets: dir.path().to_owned(),
    };
    let (primary, standby) = (cluster("primary"), cluster("standby"));
    let mut c = pg_command(bin, "initdb");
    c.arg("-D")
        .arg(&primary.data)
        .args(["-U", "postgres", "-A", "trust", "--no-sync"]);
    run(c, "initdb");
    primary.start();
    let mut c = pg_command(bin, "pg_basebackup");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &primary.port.to_string(),
        "-U",
        "postgres",
        "-D",
    ])
    .arg(&standby.data)
    .args(["-R", "-X", "stream", "--no-sync"]);
    run(c, "pg_basebackup");
    standby.start();
    // Synchronous from here on: a commit is acknowledged once the standby has it.
    primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'");
    primary.sql("SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = diesel::PgConnection::establish(&primary.url("postgres")).unwrap();
        let n: N = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_replication WHERE sync_state = 'sync'",
        )
        .get_result(&mut conn)
        .unwrap();
        if n.n == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never became synchronous"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    primary.sql("CREATE DATABASE sessiond");
    Pair {
        primary,
        standby,
        _dir: dir,
    }
}

/// What the load saw: answers, SERVICE_UNAVAILABLE faults, anything else (a failure), and the
/// sessions whose login was acknowledged.
#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    other: Mutex<Vec<String>>,
    acknowledged: Mutex<Vec<String>>,
    /// Per instance: when the last login it answered was asked, and when it was answered.
    last_ok: Mutex<Vec<Option<(Instant, Instant)>>>,
}

/// Logins and validates on every instance, from two threads each, until `stop`. `strict`: a
/// session just acknowledged must validate (with one database, or synchronous replication).
fn load(
    apps: &[Arc<TestApp>],
    seen: &Arc<Seen>,
    stop: &Arc<AtomicBool>,
    strict: bool,
) -> Vec<std::thread::JoinHandle<()>> {
    *seen.last_ok.lock().unwrap() = vec![None; apps.len()];
    let mut threads = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        for _ in 0..2 {
            let (app, seen, stop) = (app.clone(), seen.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let asked = Instant::now();
                    let r = app.call("getSession", &[("userId", "alice"), ("password", "pw")]);
                    let id = match (r.status, r.fault_code()) {
                        (200, _) => r.value("sessionId").unwrap(),
                        (_, Some(code)) if code == "SERVICE_UNAVAILABLE" => {
                            seen.unavailable.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        _ => {
                            seen.other.lock().unwrap().push(r.body);
                            continue;
                        }
                    };
                    seen.ok.fetch_add(1, Ordering::SeqCst);
                    seen.acknowledged.lock().unwrap().push(id.clone());
                    seen.last_ok.lock().unwrap()[i] = Some((asked, Instant::now()));
                    let r = app.call("validateSession", &[("sessionId", &id)]);
                    match (r.status, r.fault_code()) {
                        (200, _) if strict => {
                            assert_eq!(r.value("valid").as_deref(), Some("true"), "lost {id}")
                        }
                        (200, _) => {}
                        (_, Some(code)) if code == "SERVICE_UNAVAILABLE" => {
                            seen.unavailable.fetch_add(1, Ordering::SeqCst);
                        }
                        _ => seen.other.lock().unwrap().push(r.body),
                    }
                }
            }));
        }
    }
    threads
}

/// How long after `since` every instance answered a login asked after it, waiting at most
/// `patience`.
fn all_back_after(seen: &Seen, since: Instant, patience: Duration) -> Option<Duration> {
    loop {
        let last = seen.last_ok.lock().unwrap().clone();
        if last
            .iter()
            .all(|t| t.is_some_and(|(asked, _)| asked > since))
        {
            return last
                .iter()
                .flatten()
                .map(|(_, answered)| *answered - since)
                .max();
        }
        if since.elapsed() > patience {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn instance(url: &str) -> Arc<TestApp> {
    let url = DatabaseUrl::parse(url).unwrap();
    Arc::new(spawn_app_on(TestDb::sqlite(), None, |c| {
        c.database = url;
        c.db_timeout = Duration::from_secs(2);
    }))
}

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn instances_follow_a_promoted_standby_and_leave_a_primary_turned_read_only_within_5_s() {
    let Some(bin) = pg_bin() else {
        panic!("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin");
    };
    let pair = make_pair(&bin);
    let (a, b) = (&pair.primary, &pair.standby);
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/sessiond?target_session_attrs=read-write",
        a.port, b.port
    );
    let apps = vec![instance(&url), instance(&url)];
    apps[0].add_user("alice", "pw", None, &[]);

    // 1. The primary crashes and the standby is promoted, under load.
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(&apps, &seen, &stop, true);
    std::thread::sleep(Duration::from_secs(1));
    let crashed = Instant::now();
    a.stop_immediately();
    b.promote();
    let promoted = Instant::now();
    let back = all_back_after(&seen, promoted, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let back = back.expect("an instance did not serve again within 15 s of the promotion");
    let other = seen.other.lock().unwrap();
    assert!(
        other.is_empty(),
        "faults other than SERVICE_UNAVAILABLE: {other:?}"
    );
    assert!(back < BOUND, "back {back:?} after the promotion");
    let acknowledged = seen.acknowledged.lock().unwrap().clone();
    for id in &acknowledged {
        for app in &apps {
            assert!(app.validate(id), "an acknowledged session was lost");
        }
    }
    // Revocation follows the new primary: an end on one instance is refused on the other.
    let id = apps[0].get_session("alice", "pw");
    assert!(apps[1].validate(&id));
    apps[0]
        .call("closeSession", &[("sessionId", &id)])
        .assert_ok();
    assert!(
        apps[1].refused_within(&id, REVOCATION_PATIENCE).is_some(),
        "the other instance still accepts an ended session"
    );
    eprintln!(
        "failover: promotion {:?} after the crash; every instance back {back:?} after it; \
         {} SERVICE_UNAVAILABLE, {} answered, {} sessions acknowledged, none lost",
        promoted - crashed,
        seen.unavailable.load(Ordering::SeqCst),
        seen.ok.load(Ordering::SeqCst),
        acknowledged.len()
    );
    drop(other);
    drop(apps);

    // 2. The old primary comes back as a primary of its own, first in the URL; instances use
    // it, then it is turned read-only as a fenced primary is. (Its data stopped at the crash:
    // only logins are asked of it.)
    a.start();
    a.sql("ALTER SYSTEM RESET synchronous_standby_names");
    a.sql("SELECT pg_reload_conf()");
    let apps = vec![instance(&url), instance(&url)];
    for app in &apps {
        app.get_session("alice", "pw");
    }
    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let threads = load(&apps, &seen, &stop, false);
    std::thread::sleep(Duration::from_secs(1));
    a.sql("ALTER SYSTEM SET default_transaction_read_only = on");
    a.sql("SELECT pg_reload_conf()");
    let fenced = Instant::now();
    let back = all_back_after(&seen, fenced, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let back =
        back.expect("an instance did not serve within 15 s of its first host turning read-only");
    let other = seen.other.lock().unwrap();
    assert!(
        other.is_empty(),
        "faults other than SERVICE_UNAVAILABLE: {other:?}"
    );
    assert!(
        back < BOUND,
        "back {back:?} after the first host turned read-only"
    );
    // Served by the writable host now: a login there is a session there.
    let id = apps[0].get_session("alice", "pw");
    assert!(apps[1].validate(&id));
    eprintln!(
        "read-only first host: every instance back {back:?} after it; {} SERVICE_UNAVAILABLE, \
         {} answered",
        seen.unavailable.load(Ordering::SeqCst),
        seen.ok.load(Ordering::SeqCst)
    );
}
