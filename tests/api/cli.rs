//! The `sessiond` command line as an administrator's script runs it (docs/behaviour.md §5): the
//! real binary, each test in its own temporary working directory with its own SQLite file, the
//! admin verbs checked by what they print and by what a SOAP client then sees of a running `serve`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sessiond::domain::Backend;

use crate::helpers::{envelope11, operation, Reply, TestDb};

const BIN: &str = env!("CARGO_BIN_EXE_sessiond");
/// How long a verb, or `serve` until it listens, may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(30);
/// The stderr line `serve` prints once it accepts connections.
const LISTENING: &str = "listening on http://";

/// A temporary working directory and the settings every command there runs with.
pub(crate) struct Site {
    pub(crate) dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Site {
    /// Its own SQLite file, and port 0 so that `serve` never takes a port another test wants.
    pub(crate) fn new() -> Self {
        let site = Self::bare();
        let url = format!("sqlite://{}", site.path().join("s.db").display());
        site.with("DATABASE_URL", &url)
            .with("SESSIOND_BIND", "127.0.0.1:0")
    }

    /// No setting at all: what an administrator gets who just runs the binary.
    pub(crate) fn bare() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// Sets (or replaces) an environment variable for every command run here.
    pub(crate) fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Another site value with the same directory's settings, to run one command differently.
    fn clone_env(&self) -> SiteView<'_> {
        SiteView {
            site: self,
            env: self.env.clone(),
        }
    }

    fn without(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_of(Path::new(BIN), args)
    }

    /// [`Site::command`] with another copy of the binary.
    pub(crate) fn command_of(&self, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        // Nothing from the environment running the tests: only what the test sets.
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("SESSIOND_")
                || name == "DATABASE_URL"
                || name.starts_with("RUST_LOG")
            {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(self.path())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    /// A verb with this text written to its standard input (then closed).
    fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_with(args, Some(stdin))
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the binary runs");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            // A verb that fails before reading closes the pipe; that is its business.
            let _ = pipe.write_all(text.as_bytes());
        }
        finish(child, &args.join(" "))
    }

    /// `user add USER --password-stdin`, which must succeed.
    pub(crate) fn add_user(&self, user: &str, password: &str) {
        self.run_stdin(
            &["user", "add", user, "--password-stdin"],
            &format!("{password}\n"),
        )
        .succeeded();
    }

    /// `user list`, as one row per user.
    fn users(&self) -> Vec<UserRow> {
        let out = self.run(&["user", "list"]);
        out.succeeded();
        let mut lines = out.stdout.lines();
        let header = lines.next().unwrap_or_default();
        assert!(header.starts_with("USER"), "no header: {}", out.stdout);
        lines
            .map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                assert!(cols.len() >= 3, "a short row in user list: {line:?}");
                UserRow {
                    user: cols[0].to_owned(),
                    department: cols[1].to_owned(),
                    state: cols[2].to_owned(),
                    rights: cols
                        .get(3)
                        .filter(|r| **r != "-")
                        .map(|r| r.split(',').map(str::to_owned).collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    fn user(&self, user: &str) -> UserRow {
        let users = self.users();
        users
            .iter()
            .find(|u| u.user == user)
            .cloned()
            .unwrap_or_else(|| panic!("{user} is not in user list: {users:?}"))
    }

    /// The first column of `sessions list-active` / `list-expired`: the session IDs.
    fn session_ids(&self, verb: &str) -> Vec<String> {
        let out = self.run(&["sessions", verb]);
        out.succeeded();
        let mut lines = out.stdout.lines();
        assert!(
            lines.next().is_some_and(|h| h.starts_with("SESSION")),
            "no header: {}",
            out.stdout
        );
        lines
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// `sessions info -- ID` as `label: value` pairs. The `--` because one ID in 64 starts
    /// with `-` (see `the_session_verbs_take_an_id_that_starts_with_a_hyphen`).
    fn info(&self, session_id: &str) -> HashMap<String, String> {
        let out = self.run(&["sessions", "info", "--", session_id]);
        out.succeeded();
        labelled(&out.stdout)
    }

    /// `sessions delete -- ID`.
    fn delete(&self, session_id: &str) -> Output {
        self.run(&["sessions", "delete", "--", session_id])
    }

    pub(crate) fn serve(&self) -> Server {
        Server::start(self.command(&["serve"]))
    }
}

/// A site's directory with settings of its own, for one command.
struct SiteView<'a> {
    site: &'a Site,
    env: Vec<(String, String)>,
}

impl SiteView<'_> {
    fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.site.command(args);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        finish(cmd.spawn().expect("the binary runs"), &args.join(" "))
    }
}

/// `label: value` lines as a map.
fn labelled(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[derive(Debug, Clone)]
struct UserRow {
    user: String,
    department: String,
    state: String,
    rights: Vec<String>,
}

/// What a script sees of one finished command.
pub(crate) struct Output {
    what: String,
    status: ExitStatus,
    stdout: String,
    pub(crate) stderr: String,
}

impl Output {
    pub(crate) fn succeeded(&self) -> &Self {
        assert!(
            self.status.success(),
            "`sessiond {}` failed: {self}",
            self.what
        );
        self
    }

    /// A non-zero exit with a message on stderr that contains each of `words`.
    fn failed_naming(&self, words: &[&str]) -> &Self {
        assert!(
            !self.status.success(),
            "`sessiond {}` succeeded: {self}",
            self.what
        );
        assert!(
            !self.stderr.trim().is_empty(),
            "`sessiond {}` failed silently: {self}",
            self.what
        );
        for word in words {
            assert!(
                self.stderr.contains(word),
                "`sessiond {}` does not name {word:?}: {self}",
                self.what
            );
        }
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn finish(mut child: Child, what: &str) -> Output {
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!("`sessiond {what}` did not finish within {PATIENCE:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    };
    Output {
        what: what.to_owned(),
        status,
        stdout,
        stderr,
    }
}

/// A running `sessiond serve`, killed when dropped, so that a failed assertion leaves nothing
/// behind.
pub(crate) struct Server {
    pub(crate) child: Child,
    /// The endpoint URL from the log line `listening on …`.
    pub(crate) url: String,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    client: reqwest::blocking::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn start(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the binary runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find(LISTENING) {
                        let url = line[at + "listening on ".len()..].split_whitespace().next();
                        let _ = tx.send(url.unwrap_or_default().to_owned());
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let mut server = Server {
            child,
            url: String::new(),
            log,
            reader: Some(reader),
            client: reqwest::blocking::Client::builder()
                .timeout(PATIENCE)
                .build()
                .unwrap(),
        };
        match rx.recv_timeout(PATIENCE) {
            Ok(url) => server.url = url,
            Err(_) => {
                let log = server.stop();
                panic!("serve did not start listening; its log:\n{log}");
            }
        }
        server
    }

    pub(crate) fn port(&self) -> u16 {
        let authority = self
            .url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        authority
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {}", self.url))
    }

    /// Kills the server and returns everything it logged.
    pub(crate) fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` and waits (within [`PATIENCE`]) for the server to exit by itself: how it
    /// exited and everything it logged.
    fn signal_and_wait(&mut self, signal: libc::c_int) -> (ExitStatus, String) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal to our own child, still unreaped (not yet waited).
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let log = self.stop();
                panic!("serve did not exit within {PATIENCE:?} of signal {signal}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status, self.log())
    }

    /// A SOAP 1.1 call of `op` with these child elements.
    pub(crate) fn call(&self, op: &str, fields: &[(&str, &str)]) -> Reply {
        let resp = self
            .client
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(envelope11(&operation(op, fields)))
            .send()
            .expect("the server answers");
        Reply::from(resp)
    }

    pub(crate) fn try_get_session(&self, user: &str, password: &str) -> Reply {
        self.call("getSession", &[("userId", user), ("password", password)])
    }

    pub(crate) fn get_session(&self, user: &str, password: &str) -> String {
        let r = self.try_get_session(user, password);
        r.assert_ok();
        r.value("sessionId").expect("a session ID")
    }

    pub(crate) fn validate(&self, session_id: &str) -> bool {
        let r = self.call("validateSession", &[("sessionId", session_id)]);
        r.assert_ok();
        r.value("valid").expect("a valid element") == "true"
    }
}

/// Two different ports nobody listens on right now.
fn two_free_ports() -> (u16, u16) {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

// ----- users -----

#[test]
fn user_add_reads_the_password_from_stdin_and_user_list_shows_the_department_and_granted_right() {
    let site = Site::new();
    let added = site.run_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--department",
            "Sales",
        ],
        "pw-alice-3141\n",
    );
    added.succeeded();
    assert!(added.stdout.contains("alice"), "{added}");
    assert!(
        !added.stdout.contains("pw-alice-3141") && !added.stderr.contains("pw-alice-3141"),
        "{added}"
    );
    site.run(&["user", "grant", "alice", "ViewSessionRight"])
        .succeeded();

    let alice = site.user("alice");
    assert_eq!(alice.department, "Sales");
    assert_eq!(alice.state, "enabled");
    assert_eq!(alice.rights, ["ViewSessionRight"]);
}

#[test]
fn a_user_added_without_department_or_rights_is_listed_with_neither() {
    let site = Site::new();
    site.add_user("bob", "pw-bob-1");
    let bob = site.user("bob");
    assert_eq!(bob.department, "-");
    assert!(bob.rights.is_empty(), "{bob:?}");
}

#[test]
fn revoke_takes_back_one_right_and_leaves_the_others() {
    let site = Site::new();
    site.add_user("bob", "pw-bob-1");
    site.run(&["user", "grant", "bob", "UpdateSessionRight"])
        .succeeded();
    site.run(&["user", "grant", "bob", "ViewSessionRight"])
        .succeeded();
    assert_eq!(
        site.user("bob").rights,
        ["UpdateSessionRight", "ViewSessionRight"]
    );

    site.run(&["user", "revoke", "bob", "ViewSessionRight"])
        .succeeded();
    assert_eq!(site.user("bob").rights, ["UpdateSessionRight"]);
}

#[test]
fn revoking_a_right_the_user_does_not_hold_fails_saying_so_and_changes_nothing() {
    let site = Site::new();
    site.add_user("bob", "pw-bob-1");
    site.run(&["user", "grant", "bob", "UpdateSessionRight"])
        .succeeded();
    let out = site.run(&["user", "revoke", "bob", "AdministratorRight"]);
    out.failed_naming(&["bob", "does not hold", "AdministratorRight"]);
    assert!(out.stdout.is_empty(), "{out}");
    assert!(!out.stderr.contains("user_revoke"), "audited: {out}");
    assert_eq!(site.user("bob").rights, ["UpdateSessionRight"]);
    // Revoked once, the second revoke has nothing to take.
    site.run(&["user", "revoke", "bob", "UpdateSessionRight"])
        .succeeded();
    site.run(&["user", "revoke", "bob", "UpdateSessionRight"])
        .failed_naming(&["does not hold"]);
}

#[test]
fn granting_a_right_already_held_says_so_and_succeeds() {
    let site = Site::new();
    site.add_user("bob", "pw-bob-1");
    site.run(&["user", "grant", "bob", "ViewSessionRight"])
        .succeeded();
    let out = site.run(&["user", "grant", "bob", "ViewSessionRight"]);
    out.succeeded();
    assert!(out.stdout.contains("already holds"), "{out}");
    assert_eq!(site.user("bob").rights, ["ViewSessionRight"]);
}

#[test]
fn user_ids_with_whitespace_or_control_characters_are_refused_before_anything_is_made() {
    let site = Site::new();
    for id in [
        "alice bob",
        " alice",
        "alice\t",
        "al\u{1b}[2Jice",
        "a\u{a0}b",
    ] {
        let out = site.run_stdin(&["user", "add", id, "--password-stdin"], "pw-xyz-12\n");
        out.failed_naming(&["not a valid user ID"]);
        // Named with escapes: an escape sequence in an ID is not sent to the terminal.
        assert!(!out.stderr.contains('\u{1b}'), "{out}");
    }
    site.run(&["user", "grant", "a b", "ViewSessionRight"])
        .failed_naming(&["whitespace"]);
    site.run(&["user", "delete", "a b"])
        .failed_naming(&["whitespace"]);
    assert!(
        !site.path().join("s.db").exists(),
        "a refused argument made the database"
    );
    assert!(site.users().is_empty());
}

#[test]
fn set_department_sets_a_department_and_without_one_clears_it() {
    let site = Site::new();
    site.add_user("carol", "pw-carol");
    site.run(&["user", "set-department", "carol", "Ops"])
        .succeeded();
    assert_eq!(site.user("carol").department, "Ops");

    site.run(&["user", "set-department", "carol"]).succeeded();
    assert_eq!(site.user("carol").department, "-");
}

#[test]
fn disable_and_enable_show_in_user_list() {
    let site = Site::new();
    site.add_user("dave", "pw-dave-1");
    site.run(&["user", "disable", "dave"]).succeeded();
    assert_eq!(site.user("dave").state, "disabled");
    site.run(&["user", "enable", "dave"]).succeeded();
    assert_eq!(site.user("dave").state, "enabled");
}

#[test]
fn passwd_sets_a_password_that_works_and_the_old_one_no_longer_does() {
    let site = Site::new();
    // One line is the password: what follows it is not part of it.
    site.run_stdin(
        &["user", "add", "alice", "--password-stdin"],
        "old-pw-2718\nnot part of it\n",
    )
    .succeeded();
    let server = site.serve();
    server.get_session("alice", "old-pw-2718");

    let changed = site.run_stdin(
        &["user", "passwd", "alice", "--password-stdin"],
        "new-pw-1618\n",
    );
    changed.succeeded();
    assert!(
        !changed.stdout.contains("new-pw-1618") && !changed.stderr.contains("new-pw-1618"),
        "{changed}"
    );

    server.get_session("alice", "new-pw-1618");
    server
        .try_get_session("alice", "old-pw-2718")
        .assert_fault("AUTHENTICATION_FAILED");
}

// ----- what the user verbs refuse -----

#[test]
fn the_password_is_never_an_argument() {
    let site = Site::new();
    site.run(&["user", "add", "alice"])
        .failed_naming(&["--password-stdin"]);
    site.run(&["user", "add", "alice", "secret-pw"])
        .failed_naming(&[]);
    site.run(&["user", "passwd", "alice"])
        .failed_naming(&["--password-stdin"]);
    site.run(&["user", "add", "--password", "secret-pw", "alice"])
        .failed_naming(&["--password"]);
    assert!(site.users().iter().all(|u| u.user != "alice"));
}

#[test]
fn user_add_with_no_password_on_stdin_fails() {
    let site = Site::new();
    for stdin in ["", "\n"] {
        site.run_stdin(&["user", "add", "alice", "--password-stdin"], stdin)
            .failed_naming(&["password"]);
    }
    assert!(site.users().iter().all(|u| u.user != "alice"));
}

#[test]
fn adding_an_existing_user_fails_naming_it() {
    let site = Site::new();
    site.add_user("alice", "pw-alice-1");
    site.run_stdin(
        &["user", "add", "alice", "--password-stdin"],
        "pw-alice-2\n",
    )
    .failed_naming(&["alice"]);
}

#[test]
fn an_unknown_right_fails_naming_it() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    site.run(&["user", "grant", "alice", "RootRight"])
        .failed_naming(&["RootRight"]);
    site.run(&["user", "revoke", "alice", "SuperRight"])
        .failed_naming(&["SuperRight"]);
    assert!(site.user("alice").rights.is_empty());
}

#[test]
fn verbs_on_an_unknown_user_fail_naming_it() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    let verbs: &[&[&str]] = &[
        &["user", "grant", "ghost", "ViewSessionRight"],
        &["user", "revoke", "ghost", "ViewSessionRight"],
        &["user", "set-department", "ghost", "Ops"],
        &["user", "set-department", "ghost"],
        &["user", "disable", "ghost"],
        &["user", "enable", "ghost"],
        &["user", "delete", "ghost"],
    ];
    for args in verbs {
        site.run(args).failed_naming(&["ghost"]);
    }
    site.run_stdin(
        &["user", "passwd", "ghost", "--password-stdin"],
        "pw-ghost\n",
    )
    .failed_naming(&["ghost"]);
    let names: Vec<String> = site.users().into_iter().map(|u| u.user).collect();
    assert_eq!(names, ["alice"]);
}

#[test]
fn session_verbs_on_an_unknown_session_fail_with_a_message() {
    let site = Site::new();
    site.run(&["sessions", "info", "no-such-session-0000000000000"])
        .failed_naming(&[]);
    site.run(&["sessions", "delete", "no-such-session-0000000000000"])
        .failed_naming(&[]);
}

// ----- migrate -----

#[test]
fn migrate_creates_the_database_and_may_run_twice() {
    let site = Site::new();
    let db = site.path().join("s.db");
    assert!(!db.exists());
    site.run(&["migrate"]).succeeded();
    assert!(db.exists(), "no database file after migrate");
    site.run(&["migrate"]).succeeded();
    assert!(site.users().is_empty());
}

/// The newest migration of this release undone on `db`, as if an older release had made it:
/// its `down.sql` run and its row removed. Returns its version as diesel records it.
fn undo_newest_migration(db: &TestDb) -> String {
    let tree = match db.url.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(tree);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let newest = names.last().expect("a migration");
    let down = std::fs::read_to_string(dir.join(newest).join("down.sql")).unwrap();
    let version = newest.split('_').next().unwrap().replace('-', "");
    let sql =
        format!("{down}\nDELETE FROM __diesel_schema_migrations WHERE version = '{version}';");
    with_connection(db, |conn| conn.batch_execute(&sql).unwrap());
    version
}

/// The versions of the migrations `db` has applied.
fn applied_migrations(db: &TestDb) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let mut out = Vec::new();
    with_connection(db, |conn| {
        let rows: Vec<Applied> = conn.load("SELECT version FROM __diesel_schema_migrations");
        out = rows.into_iter().map(|a| a.version).collect();
    });
    out
}

/// A connection of the test's own to `db`, on either backend.
enum Conn {
    Sqlite(diesel::SqliteConnection),
    Postgres(diesel::PgConnection),
}

impl Conn {
    fn batch_execute(&mut self, sql: &str) -> diesel::QueryResult<()> {
        use diesel::connection::SimpleConnection;
        match self {
            Conn::Sqlite(c) => c.batch_execute(sql),
            Conn::Postgres(c) => c.batch_execute(sql),
        }
    }

    fn load<T>(&mut self, sql: &str) -> Vec<T>
    where
        T: diesel::QueryableByName<diesel::sqlite::Sqlite>
            + diesel::QueryableByName<diesel::pg::Pg>
            + 'static,
    {
        use diesel::RunQueryDsl;
        match self {
            Conn::Sqlite(c) => diesel::sql_query(sql).load(c).unwrap(),
            Conn::Postgres(c) => diesel::sql_query(sql).load(c).unwrap(),
        }
    }
}

fn with_connection(db: &TestDb, f: impl FnOnce(&mut Conn)) {
    use diesel::Connection;
    let mut conn = match db.url.backend {
        Backend::Sqlite => {
            Conn::Sqlite(diesel::SqliteConnection::establish(&db.url.target).unwrap())
        }
        Backend::Postgres => {
            Conn::Postgres(diesel::PgConnection::establish(&db.url.target).unwrap())
        }
    };
    f(&mut conn);
}

fn site_on(db: &TestDb) -> Site {
    let url = match db.url.backend {
        Backend::Sqlite => format!("sqlite://{}", db.url.target),
        Backend::Postgres => db.url.target.clone(),
    };
    Site::new().with("DATABASE_URL", &url)
}

#[test]
fn verbs_refuse_a_database_whose_migrations_are_behind_saying_to_run_migrate_and_change_nothing() {
    let db = TestDb::new();
    let site = site_on(&db);
    site.add_user("alice", "pw-behind-1");
    let version = undo_newest_migration(&db);
    let verbs: [&[&str]; 4] = [
        &["user", "list"],
        &["user", "grant", "alice", "ViewSessionRight"],
        &["sessions", "list-active"],
        &["sessions", "delete-expired"],
    ];
    for args in verbs {
        site.run(args).failed_naming(&["sessiond migrate"]);
        assert!(
            !applied_migrations(&db).contains(&version),
            "{args:?} migrated the database"
        );
    }
    site.run(&["migrate"]).succeeded();
    assert!(applied_migrations(&db).contains(&version));
    let users = site.users();
    assert_eq!(users.len(), 1, "alice kept through the upgrade");
    assert!(
        users[0].rights.is_empty(),
        "the refused grant changed nothing"
    );
}

#[test]
fn a_verb_that_writes_makes_a_fresh_database_current_before_the_first_serve() {
    let db = TestDb::new();
    let site = site_on(&db);
    site.add_user("alice", "pw-fresh-1");
    assert_eq!(site.users().len(), 1);
    let applied = applied_migrations(&db);
    let mut server = site.serve();
    let id = server.get_session("alice", "pw-fresh-1");
    assert!(server.validate(&id));
    server.stop();
    assert_eq!(
        applied_migrations(&db),
        applied,
        "serve found nothing left to migrate"
    );
}

// ----- a start that fails: at once, in one line, leaving nothing behind -----

/// How long a start that cannot open its database may take: far under the pool's timeout,
/// which these tests set to [`LONG_DB_TIMEOUT`], so that waiting for the pool would fail them.
const AT_ONCE: Duration = Duration::from_secs(10);
const LONG_DB_TIMEOUT: &str = "40s";

/// Runs `args` and checks that it failed within [`AT_ONCE`] with one line on stderr.
fn fails_at_once_in_one_line(site: &Site, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = site.run(args);
    let took = started.elapsed();
    assert!(took < AT_ONCE, "`{}` took {took:?}: {out}", args.join(" "));
    assert!(!out.status.success(), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "not one line: {out}");
    assert!(!out.stderr.contains("ERROR"), "{out}");
    out
}

#[test]
fn a_port_that_is_taken_stops_the_start_naming_it_and_leaves_no_database_admin_or_password_file() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let site = Site::new().with("SESSIOND_BIND", &addr);
    let out = site.run(&["serve"]);
    out.failed_naming(&[&addr, "cannot listen"]);
    assert!(!site.path().join("s.db").exists(), "a database file: {out}");
    assert!(
        !site.path().join("sessiond-admin-password.txt").exists(),
        "a password file: {out}"
    );
    let left: Vec<_> = std::fs::read_dir(site.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{out}");
    assert!(
        !out.stderr.contains("no users yet"),
        "an admin was made: {out}"
    );
}

#[test]
fn a_tls_certificate_that_cannot_be_read_stops_the_start_naming_it_and_leaves_nothing() {
    let site = Site::new();
    let cert = site.path().join("missing-cert.pem");
    let key = site.path().join("missing-key.pem");
    let site = site
        .with("SESSIOND_TLS_CERT", cert.to_str().unwrap())
        .with("SESSIOND_TLS_KEY", key.to_str().unwrap());
    let out = site.run(&["serve"]);
    out.failed_naming(&["missing-cert.pem"]);
    let left: Vec<_> = std::fs::read_dir(site.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{out}");
}

#[test]
fn a_taken_admin_port_stops_the_start_before_the_database_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let site = Site::new().with("SESSIOND_ADMIN_BIND", &addr);
    let out = site.run(&["serve"]);
    out.failed_naming(&[&addr]);
    let left: Vec<_> = std::fs::read_dir(site.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{out}");
}

#[test]
fn a_sqlite_file_in_a_directory_that_does_not_exist_is_one_line_naming_it_at_once() {
    let site = Site::new().with("SESSIOND_DB_TIMEOUT", LONG_DB_TIMEOUT);
    let path = site.path().join("no-such-dir").join("s.db");
    let site = site.with("DATABASE_URL", &format!("sqlite://{}", path.display()));
    for args in [&["serve"][..], &["user", "list"], &["migrate"]] {
        let out = fails_at_once_in_one_line(&site, args);
        out.failed_naming(&[path.to_str().unwrap(), "No such file or directory"]);
    }
    assert!(!site.path().join("sessiond-admin-password.txt").exists());
}

#[test]
fn a_sqlite_path_that_is_a_directory_is_one_line_naming_it_at_once() {
    let site = Site::new().with("SESSIOND_DB_TIMEOUT", LONG_DB_TIMEOUT);
    let path = site.path().join("a-dir");
    std::fs::create_dir(&path).unwrap();
    let site = site.with("DATABASE_URL", &format!("sqlite://{}", path.display()));
    for args in [&["serve"][..], &["user", "list"]] {
        let out = fails_at_once_in_one_line(&site, args);
        out.failed_naming(&[path.to_str().unwrap(), "directory"]);
    }
}

#[test]
fn a_postgresql_server_that_is_not_there_is_one_line_at_once_without_the_password() {
    // A port nobody listens on: connection refused, no PostgreSQL server needed.
    let (port, _) = two_free_ports();
    let site = Site::new()
        .with("SESSIOND_DB_TIMEOUT", LONG_DB_TIMEOUT)
        .with(
            "DATABASE_URL",
            &format!("postgres://app:Secret-pw-31@127.0.0.1:{port}/sessions"),
        );
    for args in [&["serve"][..], &["user", "list"]] {
        let out = fails_at_once_in_one_line(&site, args);
        out.failed_naming(&[
            &format!("app@127.0.0.1:{port}/sessions"),
            "Connection refused",
        ]);
        assert!(!out.stderr.contains("Secret-pw-31"), "{out}");
    }
}

/// The local PostgreSQL server of the PostgreSQL runs (SESSIOND_TEST_PG), as host:port.
fn test_pg_host() -> String {
    let url = std::env::var("SESSIOND_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    rest.rsplit('@')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned()
}

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn a_postgresql_database_or_role_that_is_not_there_is_one_line_at_once_without_the_password() {
    let host = test_pg_host();
    for (url, words) in [
        (
            format!("postgres://postgres:Secret-pw-32@{host}/no_such_db_sessiond"),
            r#"database "no_such_db_sessiond" does not exist"#,
        ),
        (
            format!("postgres://no_such_role_sessiond:Secret-pw-32@{host}/postgres"),
            r#"role "no_such_role_sessiond" does not exist"#,
        ),
    ] {
        let site = Site::new()
            .with("SESSIOND_DB_TIMEOUT", LONG_DB_TIMEOUT)
            .with("DATABASE_URL", &url);
        for args in [&["serve"][..], &["user", "list"]] {
            let out = fails_at_once_in_one_line(&site, args);
            out.failed_naming(&[words, &host]);
            assert!(!out.stderr.contains("Secret-pw-32"), "{out}");
        }
    }
}

// ----- the log of a running server -----

#[test]
fn the_start_line_names_the_sqlite_file() {
    let site = Site::new();
    let mut server = site.serve();
    let log = server.stop();
    let db = site.path().join("s.db");
    let line = log.lines().find(|l| l.contains(LISTENING)).unwrap();
    assert!(
        line.contains(&format!("database: SQLite {}", db.display())),
        "{line}"
    );
}

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn the_start_line_names_the_postgresql_host_and_database_but_not_the_password() {
    let db = crate::helpers::TestDb::new();
    assert_eq!(
        db.url.backend,
        sessiond::store::Backend::Postgres,
        "run it with SESSIOND_TEST_BACKEND=postgres"
    );
    let name = db.url.target.rsplit('/').next().unwrap().to_owned();
    let host = test_pg_host();
    // The test server trusts every local login: any password will do, and must not show.
    let url = format!("postgres://postgres:Secret-pw-33@{host}/{name}");
    let site = Site::new().with("DATABASE_URL", &url);
    let mut server = site.serve();
    let log = server.stop();
    let line = log.lines().find(|l| l.contains(LISTENING)).unwrap();
    assert!(
        line.contains(&format!("database: PostgreSQL postgres@{host}/{name}")),
        "{line}"
    );
    assert!(!log.contains("Secret-pw-33"), "{log}");
}

#[test]
fn sigint_and_sigterm_stop_serve_gracefully_saying_so_with_exit_status_0() {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let site = Site::new();
        let mut server = site.serve();
        let (status, log) = server.signal_and_wait(signal);
        assert!(status.success(), "{name}: {status}\n{log}");
        assert!(
            log.contains(&format!("{name} received: stopping gracefully")),
            "{name}:\n{log}"
        );
        assert!(!log.contains("forced shutdown"), "{name}:\n{log}");
        assert!(log.contains("stopped"), "{name}:\n{log}");
    }
}

// ----- settings -----

#[test]
fn a_session_timeout_that_is_not_a_duration_stops_the_start_naming_it() {
    let site = Site::new().with("SESSIOND_SESSION_TIMEOUT", "soon");
    site.run(&["serve"])
        .failed_naming(&["SESSIOND_SESSION_TIMEOUT"]);
}

#[test]
fn a_bind_address_without_a_port_stops_the_start_naming_it() {
    let site = Site::new().with("SESSIOND_BIND", "nowhere");
    site.run(&["serve"]).failed_naming(&["SESSIOND_BIND"]);
}

#[test]
fn a_database_url_of_another_kind_stops_the_start_and_every_verb_naming_it() {
    let site = Site::new().with("DATABASE_URL", "mysql://x");
    site.run(&["serve"]).failed_naming(&["DATABASE_URL"]);
    site.run(&["migrate"]).failed_naming(&["DATABASE_URL"]);
    site.run(&["user", "list"]).failed_naming(&["DATABASE_URL"]);
}

#[test]
fn a_bad_value_in_the_config_file_given_with_dash_dash_config_names_the_key_and_the_file() {
    let site = Site::new();
    site.file("settings-a.toml", "session_timeout = \"soon\"\n");
    site.run(&["serve", "--config", "settings-a.toml"])
        .failed_naming(&["session_timeout", "settings-a.toml"]);
    site.run(&["--config", "settings-a.toml", "user", "list"])
        .failed_naming(&["session_timeout", "settings-a.toml"]);
}

#[test]
fn a_bad_value_in_the_config_file_named_by_sessiond_config_names_the_key_and_the_file() {
    let site = Site::new();
    let file = site.file("settings-b.toml", "bind = \"nowhere\"\n");
    let site = site
        .with("SESSIOND_CONFIG", file.to_str().unwrap())
        // The environment would win over the file's bad value; leave the file alone here.
        .without("SESSIOND_BIND");
    site.run(&["serve"])
        .failed_naming(&["bind", "settings-b.toml"]);
}

#[test]
fn an_unknown_key_in_the_config_file_stops_the_start_naming_it() {
    let site = Site::new();
    site.file("settings-c.toml", "sesion_timeout = \"10m\"\n");
    site.run(&["serve", "--config", "settings-c.toml"])
        .failed_naming(&["sesion_timeout", "settings-c.toml"]);
}

#[test]
fn a_config_file_that_does_not_exist_stops_the_start_naming_it() {
    let site = Site::new();
    site.run(&["serve", "--config", "missing.toml"])
        .failed_naming(&["missing.toml"]);
}

#[test]
fn a_session_timeout_of_a_million_years_stops_list_active_naming_it_and_its_range_without_a_panic()
{
    let site = Site::new().with("SESSIOND_SESSION_TIMEOUT", "1000000y");
    let out = site.run(&["sessions", "list-active"]);
    out.failed_naming(&["SESSIOND_SESSION_TIMEOUT", "1s to 365d"]);
    // A panic exits with 101 and says "panicked"; a refused setting is an ordinary failure.
    assert_eq!(out.status.code(), Some(1), "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
}

#[test]
fn a_session_timeout_that_is_not_a_duration_is_explained_in_plain_words() {
    let site = Site::new().with("SESSIOND_SESSION_TIMEOUT", "abc");
    let out = site.run(&["serve"]);
    out.failed_naming(&["SESSIOND_SESSION_TIMEOUT: 'abc' is not a duration like 30m or 90s"]);
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
}

#[test]
fn a_number_out_of_its_range_stops_every_verb_naming_the_setting_and_the_range() {
    let site = Site::new().with("SESSIOND_DB_POOL_SIZE", "0");
    site.run(&["serve"])
        .failed_naming(&["SESSIOND_DB_POOL_SIZE", "1 to 1000"]);
    site.run(&["user", "list"])
        .failed_naming(&["SESSIOND_DB_POOL_SIZE", "1 to 1000"]);
}

#[test]
fn an_activity_lag_over_a_tenth_of_the_timeout_is_said_to_be_capped_in_the_log_at_start() {
    let site = Site::new().with("SESSIOND_ACTIVITY_LAG", "10m");
    let server = site.serve();
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("SESSIOND_ACTIVITY_LAG"))
        .unwrap_or_else(|| panic!("the cap is not in the log:\n{log}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("capped at 3m"), "{line}");
}

#[test]
fn help_lists_database_url_and_every_setting_with_its_default_for_sessiond_and_serve() {
    let site = Site::bare();
    for args in [&["--help"][..], &["serve", "--help"]] {
        let out = site.run(args);
        out.succeeded();
        for s in sessiond::config::SETTINGS {
            let line = out
                .stdout
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", s.env)))
                .unwrap_or_else(|| panic!("{} is not in `{}`: {out}", s.env, args.join(" ")));
            assert!(
                line.contains(&format!("[default: {}]", s.default)),
                "{line}"
            );
        }
        assert!(out.stdout.contains("DATABASE_URL "), "{out}");
        assert!(out.stdout.contains("SESSIOND_LOGIN_WAIT "), "{out}");
    }
}

/// The lines of one section (`Commands:`, `Arguments:`, `Options:`) of clap's help.
fn help_section<'a>(help: &'a str, title: &str) -> Vec<&'a str> {
    help.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect()
}

#[test]
fn every_argument_and_option_of_every_verb_has_a_description() {
    let site = Site::bare();
    let mut todo = vec![Vec::<String>::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = site.run(&args);
        out.succeeded();
        for title in ["Arguments:", "Options:"] {
            for line in help_section(&out.stdout, title) {
                // "  <USER>  The new user's ID": a name, two spaces or more, then words.
                let parts = line.split("  ").filter(|p| !p.trim().is_empty()).count();
                assert!(
                    parts >= 2,
                    "`{}` has no description: {line:?}",
                    args.join(" ")
                );
                seen += 1;
            }
        }
        for line in help_section(&out.stdout, "Commands:") {
            let verb = line.split_whitespace().next().unwrap();
            if verb != "help" {
                todo.push(path.iter().cloned().chain([verb.to_owned()]).collect());
            }
        }
    }
    // sessiond, user, sessions and their verbs: at least --help on each of ~20 screens.
    assert!(seen > 40, "only {seen} arguments and options seen");
}

#[test]
fn version_prints_the_version_and_the_commit() {
    let out = Site::bare().run(&["--version"]);
    out.succeeded();
    let line = out.stdout.trim();
    let expected = format!("sessiond {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&expected), "{line}");
    let commit = line[expected.len()..].trim_end_matches(')');
    // "unknown" when built without git, as from a tarball.
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
}

#[test]
fn sessiond_toml_in_the_working_directory_is_read_without_being_named() {
    let site = Site::new();
    site.file("sessiond.toml", "session_timeout = \"soon\"\n");
    site.run(&["user", "list"])
        .failed_naming(&["session_timeout", "sessiond.toml"]);
}

#[test]
fn the_environment_wins_over_the_config_file() {
    let site = Site::new();
    let (file_port, env_port) = two_free_ports();
    let file = site.file(
        "sessiond-settings.toml",
        &format!("bind = \"127.0.0.1:{file_port}\"\nlocation = \"from-the-file\"\n"),
    );
    let site = site
        .with("SESSIOND_CONFIG", file.to_str().unwrap())
        .with("SESSIOND_BIND", &format!("127.0.0.1:{env_port}"));
    site.add_user("alice", "pw-alice");
    let server = site.serve();
    assert_eq!(
        server.port(),
        env_port,
        "listening on {} (the file said {file_port})",
        server.url
    );

    // What only the file sets still applies, to serve and to the verbs alike.
    let id = server.get_session("alice", "pw-alice");
    assert_eq!(site.info(&id)["location"], "from-the-file");
}

// ----- serve and the first start -----

#[test]
fn serve_without_any_configuration_listens_on_8080_with_sqlite_in_the_working_directory() {
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        eprintln!(
            "note: port 8080 is in use on this machine; the default-configuration test did not run"
        );
        return;
    }
    let site = Site::bare();
    let mut server = site.serve();
    assert_eq!(server.url, "http://127.0.0.1:8080/services/SessionService");
    assert!(
        site.path().join("sessiond.db").exists(),
        "no SQLite file in the working directory"
    );

    let file = site.path().join("sessiond-admin-password.txt");
    let password = std::fs::read_to_string(&file).expect("the admin password file");
    let password = password.trim();
    assert!(!password.is_empty());
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(
        !server.log().contains(password),
        "the password is in the log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("sessiond-admin-password.txt"),
        "the log does not say where the password is:\n{}",
        server.log()
    );
    let id = server.get_session("admin", password);
    assert!(server.validate(&id));
    server.stop();
}

#[test]
fn the_first_start_creates_admin_once_with_a_password_only_its_owner_can_read() {
    let site = Site::new();
    let file = site.path().join("first-admin.txt");
    let site = site.with("SESSIOND_ADMIN_PASSWORD_FILE", file.to_str().unwrap());

    let mut server = site.serve();
    let password = std::fs::read_to_string(&file).expect("the admin password file");
    let password = password.trim().to_owned();
    assert!(
        password.len() >= 16,
        "a short random password: {password:?}"
    );
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!site.path().join("sessiond-admin-password.txt").exists());
    server.get_session("admin", &password);
    let first_log = server.stop();
    assert!(
        !first_log.contains(&password),
        "the password is in the log:\n{first_log}"
    );
    assert!(
        first_log.contains(file.to_str().unwrap()),
        "the log does not say where the password is:\n{first_log}"
    );

    let admin = site.user("admin");
    assert_eq!(
        (admin.department.as_str(), admin.rights.as_slice()),
        ("-", &["AdministratorRight".to_owned()][..])
    );

    let modified = file.metadata().unwrap().modified().unwrap();
    let mut server = site.serve();
    server.get_session("admin", &password);
    let second_log = server.stop();
    assert!(
        !second_log.contains(&password),
        "shown again:\n{second_log}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    assert_eq!(file.metadata().unwrap().modified().unwrap(), modified);
    assert_eq!(site.users().len(), 1);
}

#[test]
fn no_admin_is_created_when_a_user_exists() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    let mut server = site.serve();
    server.get_session("alice", "pw-alice");
    server.stop();
    assert!(!site.path().join("sessiond-admin-password.txt").exists());
    let names: Vec<String> = site.users().into_iter().map(|u| u.user).collect();
    assert_eq!(names, ["alice"]);
}

// ----- the session verbs against a running server -----

#[test]
fn a_session_opened_over_http_is_listed_described_and_deleted_by_the_session_verbs() {
    let site = Site::new().with("SESSIOND_LOCATION", "cli-test");
    site.add_user("alice", "pw-alice");
    let server = site.serve();
    let id = server.get_session("alice", "pw-alice");

    let out = site.run(&["sessions", "list-active"]);
    out.succeeded();
    let row: Vec<&str> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&id.as_str()))
        .unwrap_or_else(|| panic!("{id} not listed: {out}"));
    assert_eq!(&row[1..3], ["alice", "standard"]);

    let info = site.info(&id);
    assert_eq!(info["session"], id);
    assert_eq!(info["user"], "alice");
    assert_eq!(info["client type"], "standard");
    assert_eq!(info["location"], "cli-test");
    assert_eq!(info["end reason"], "-");

    site.delete(&id).succeeded();
    assert!(!server.validate(&id));
    assert!(!site.session_ids("list-active").contains(&id));
    let info = site.info(&id);
    assert_eq!(info["end reason"], "deleted");
    assert_ne!(info["ended"], "-");
    site.delete(&id).failed_naming(&[]);
}

/// A running server and a session on it whose ID starts with `-`. One URL-safe ID in 64 does;
/// clientless sessions cost no password hash, so asking for a few hundred is quick.
fn session_starting_with_a_hyphen(site: &Site) -> (Server, String) {
    site.add_user("root", "pw-root-1");
    site.run(&["user", "grant", "root", "AdministratorRight"])
        .succeeded();
    site.add_user("alice", "pw-alice");
    let server = site.serve();
    let admin = server.get_session("root", "pw-root-1");
    let id = (0..2000)
        .find_map(|_| {
            let r = server.call(
                "openClientlessSession",
                &[("sessionId", &admin), ("userId", "alice")],
            );
            r.assert_ok();
            r.value("clientlessSessionId")
                .filter(|id| id.starts_with('-'))
        })
        .expect("an ID starting with '-' in 2000 sessions");
    (server, id)
}

#[test]
fn the_session_verbs_take_an_id_that_starts_with_a_hyphen() {
    let site = Site::new();
    let (server, id) = session_starting_with_a_hyphen(&site);

    let out = site.run(&["sessions", "info", &id]);
    out.succeeded();
    assert_eq!(labelled(&out.stdout)["session"], id);
    site.run(&["sessions", "delete", &id]).succeeded();
    assert!(!server.validate(&id));
}

#[test]
fn the_session_verbs_take_an_id_that_starts_with_a_hyphen_after_a_double_dash() {
    let site = Site::new();
    let (server, id) = session_starting_with_a_hyphen(&site);
    assert!(site.session_ids("list-active").contains(&id));
    assert_eq!(site.info(&id)["client type"], "clientless");
    site.delete(&id).succeeded();
    assert!(!server.validate(&id));
    assert_eq!(site.info(&id)["end reason"], "deleted");
}

#[test]
fn expired_sessions_are_listed_and_removed_by_the_session_verbs() {
    // Two seconds, not one: the checks before the sleep must finish while it is still active.
    let site = Site::new().with("SESSIOND_SESSION_TIMEOUT", "2s");
    site.add_user("alice", "pw-alice");
    let server = site.serve();
    let id = server.get_session("alice", "pw-alice");
    assert_eq!(site.session_ids("list-active"), [id.as_str()]);
    assert!(site.session_ids("list-expired").is_empty());

    std::thread::sleep(Duration::from_millis(2500));
    assert!(site.session_ids("list-active").is_empty());
    assert_eq!(site.session_ids("list-expired"), [id.as_str()]);

    let removed = site.run(&["sessions", "delete-expired"]);
    removed.succeeded();
    assert!(
        removed.stdout.contains(" 1 "),
        "says how many it removed: {removed}"
    );
    assert!(site.session_ids("list-expired").is_empty());
    assert_eq!(site.info(&id)["end reason"], "expired");
    assert!(!server.validate(&id));
}

// ----- --password-stdin on a terminal -----

/// A verb run as an operator runs it at a terminal: a pseudo-terminal is its standard input
/// and its controlling terminal (/dev/tty), standard output and error are piped apart.
struct Terminal {
    child: Child,
    /// The slave side, kept open here to read its echo flag (and so that reading the master
    /// never ends early).
    slave: std::os::fd::OwnedFd,
    master: std::fs::File,
    /// Everything the terminal showed: prompts, and the echo of what was typed, if any.
    shown: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Terminal {
    fn run(site: &Site, args: &[&str]) -> Self {
        use std::os::fd::{FromRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors it opened into the two ints we pass.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are ours and open, each owned once from here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = site.command(args);
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid and ioctl are async-signal-safe, as a pre_exec hook must be. The
        // child leads a new session whose controlling terminal is its standard input.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("the binary runs");
        let master = std::fs::File::from(master);
        let shown = Arc::new(Mutex::new(String::new()));
        let reader = {
            let (mut master, shown) = (master.try_clone().unwrap(), shown.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                // Ends with EIO once no slave descriptor is open any more.
                while let Ok(n @ 1..) = master.read(&mut buf) {
                    shown
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        };
        Self {
            child,
            slave,
            master,
            shown,
            reader: Some(reader),
        }
    }

    /// Waits until the terminal shows `prompt` (again: `count` times in all) and no longer
    /// echoes, then types `line` and Enter.
    fn answer(&mut self, prompt: &str, count: usize, line: &str) {
        use std::os::fd::AsRawFd;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let seen = self.shown.lock().unwrap().matches(prompt).count() >= count;
            // SAFETY: tcgetattr writes the terminal's settings into the struct we pass.
            let echo = unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                assert_eq!(libc::tcgetattr(self.slave.as_raw_fd(), &mut t), 0);
                t.c_lflag & libc::ECHO != 0
            };
            if seen && !echo {
                break;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("exited {status} before asking {prompt:?}: {}", self.shown());
            }
            assert!(
                Instant::now() < deadline,
                "no {prompt:?} with echo off within {PATIENCE:?}; the terminal showed {:?}",
                self.shown()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.master
            .write_all(format!("{line}\r").as_bytes())
            .unwrap();
    }

    fn shown(&self) -> String {
        self.shown.lock().unwrap().clone()
    }

    /// Waits for the verb to exit: what it printed, and what the terminal showed.
    fn finish(self, what: &str) -> (Output, String) {
        let Terminal {
            child,
            slave,
            shown,
            reader,
            ..
        } = self;
        let out = finish(child, what);
        drop(slave);
        if let Some(reader) = reader {
            reader.join().unwrap();
        }
        let shown = shown.lock().unwrap().clone();
        (out, shown)
    }
}

#[test]
fn password_stdin_on_a_terminal_asks_twice_without_echo_for_user_add_and_passwd() {
    let site = Site::new();
    let typed = "Typed-pw-4711";
    let mut term = Terminal::run(&site, &["user", "add", "alice", "--password-stdin"]);
    term.answer("Password for alice: ", 1, typed);
    term.answer("again: ", 1, typed);
    let (out, shown) = term.finish("user add alice --password-stdin (terminal)");
    out.succeeded();
    assert!(out.stdout.contains("added user alice"), "{out}");
    assert!(!shown.contains(typed), "echoed: {shown:?}");

    let server = site.serve();
    server.get_session("alice", typed);

    let renewed = "Typed-pw-0815";
    let mut term = Terminal::run(&site, &["user", "passwd", "alice", "--password-stdin"]);
    term.answer("Password for alice: ", 1, renewed);
    term.answer("again: ", 1, renewed);
    let (out, shown) = term.finish("user passwd alice --password-stdin (terminal)");
    out.succeeded();
    assert!(!shown.contains(renewed), "echoed: {shown:?}");
    server.get_session("alice", renewed);
    server
        .try_get_session("alice", typed)
        .assert_fault("AUTHENTICATION_FAILED");
}

#[test]
fn two_different_passwords_typed_on_a_terminal_change_nothing() {
    let site = Site::new();
    let mut term = Terminal::run(&site, &["user", "add", "alice", "--password-stdin"]);
    term.answer("Password for alice: ", 1, "Typed-pw-1111");
    term.answer("again: ", 1, "Typed-pw-2222");
    let (out, _) = term.finish("user add alice (mismatch)");
    out.failed_naming(&["differ", "nothing changed"]);
    assert!(site.users().is_empty(), "a user was added");

    site.add_user("bob", "Piped-pw-bob");
    let mut term = Terminal::run(&site, &["user", "passwd", "bob", "--password-stdin"]);
    term.answer("Password for bob: ", 1, "Typed-pw-3333");
    term.answer("again: ", 1, "Typed-pw-4444");
    let (out, _) = term.finish("user passwd bob (mismatch)");
    out.failed_naming(&["differ"]);
    let server = site.serve();
    server.get_session("bob", "Piped-pw-bob");
}

#[test]
fn user_delete_ends_that_users_sessions_into_the_history_and_removes_the_user() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    site.add_user("bob", "pw-bob-1");
    let server = site.serve();
    let (a1, a2) = (
        server.get_session("alice", "pw-alice"),
        server.get_session("alice", "pw-alice"),
    );
    let b = server.get_session("bob", "pw-bob-1");

    let out = site.run(&["user", "delete", "alice"]);
    out.succeeded();
    assert_eq!(
        out.stdout.trim(),
        "deleted user alice; ended 2 sessions",
        "{out}"
    );
    assert!(out.stderr.contains("user_delete"), "not audited: {out}");
    assert!(!server.validate(&a1));
    assert!(!server.validate(&a2));
    assert!(server.validate(&b), "another user's session survives");
    for id in [&a1, &a2] {
        let info = site.info(id);
        assert_eq!(info["end reason"], "deleted");
        assert_eq!(info["user"], "alice");
    }
    let names: Vec<String> = site.users().into_iter().map(|u| u.user).collect();
    assert_eq!(names, ["bob"]);
    server
        .try_get_session("alice", "pw-alice")
        .assert_fault("AUTHENTICATION_FAILED");
    site.run(&["user", "delete", "alice"])
        .failed_naming(&["alice"]);

    // The ID is free again: a new alice has a new password and nothing of the old one.
    site.add_user("alice", "pw-alice-2");
    assert!(site.user("alice").rights.is_empty());
    server.get_session("alice", "pw-alice-2");
}

#[test]
fn user_delete_of_a_user_without_sessions_says_none_ended() {
    let site = Site::new();
    site.add_user("carol", "pw-carol");
    let out = site.run(&["user", "delete", "carol"]);
    out.succeeded();
    assert!(out.stdout.contains("ended 0 sessions"), "{out}");
    assert!(site.users().is_empty());
}

#[test]
fn list_active_prints_times_in_the_utc_iso_8601_form_of_sessions_info() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    let server = site.serve();
    let id = server.get_session("alice", "pw-alice");
    let out = site.run(&["sessions", "list-active"]);
    out.succeeded();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not listed: {out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let info = site.info(&id);
    assert_eq!(cols[3], info["created"], "{row}");
    assert_eq!(cols[4], info["expires"], "{row}");
    for t in [cols[3], cols[4]] {
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
            "not UTC ISO 8601: {t}"
        );
    }
}

#[test]
fn user_disable_ends_that_users_sessions_and_refuses_new_ones_until_enabled() {
    let site = Site::new();
    site.add_user("alice", "pw-alice");
    site.add_user("bob", "pw-bob-1");
    let server = site.serve();
    let (a1, a2) = (
        server.get_session("alice", "pw-alice"),
        server.get_session("alice", "pw-alice"),
    );
    let b = server.get_session("bob", "pw-bob-1");

    let out = site.run(&["user", "disable", "alice"]);
    out.succeeded();
    assert!(
        out.stdout.contains('2'),
        "says how many sessions it ended: {out}"
    );
    assert!(!server.validate(&a1));
    assert!(!server.validate(&a2));
    assert!(server.validate(&b), "another user's session survives");
    assert_eq!(site.info(&a1)["end reason"], "user-disabled");
    assert_eq!(site.info(&a2)["end reason"], "user-disabled");
    server
        .try_get_session("alice", "pw-alice")
        .assert_fault("AUTHENTICATION_FAILED");

    site.run(&["user", "enable", "alice"]).succeeded();
    server.get_session("alice", "pw-alice");
}

#[test]
fn the_server_log_holds_no_password_and_no_whole_session_id() {
    let site = Site::new();
    let (good, wrong, ghost) = ("Good-pw-7fQ2x", "Wrong-pw-9xZk", "Ghost-pw-4kPq");
    site.add_user("alice", good);
    let mut server = site.serve();
    let first = server.get_session("alice", good);
    assert!(server.validate(&first));
    server
        .try_get_session("alice", wrong)
        .assert_fault("AUTHENTICATION_FAILED");
    server
        .try_get_session("ghost", ghost)
        .assert_fault("AUTHENTICATION_FAILED");
    let r = server.call("closeSession", &[("sessionId", &first)]);
    r.assert_ok();
    let second = server.get_session("alice", good);
    let r = server.call(
        "deleteSessionId",
        &[("sessionId", &second), ("targetSessionId", &second)],
    );
    r.assert_fault("ACCESS_DENIED");
    let log = server.stop();

    assert!(log.contains(LISTENING), "the log was not captured:\n{log}");
    for secret in [good, wrong, ghost, first.as_str(), second.as_str()] {
        assert!(!log.contains(secret), "the log shows {secret}:\n{log}");
    }
}

// ----- the operator's kit: config check, misspelt variables, unlock, quiet verbs -----

#[test]
fn config_check_prints_every_setting_with_its_source_and_masks_the_database_password() {
    let site = Site::bare()
        .with(
            "DATABASE_URL",
            "postgres://app:Pg-s3cret@127.0.0.1:1/sessions?sslmode=disable",
        )
        .with("SESSIOND_WORKERS", "3");
    let file = site.file("s.toml", "session_timeout = \"45m\"\nworkers = 2\n");
    let out = site.run(&["--config", file.to_str().unwrap(), "config", "check"]);
    out.succeeded();
    let line = |var: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("{var} not listed: {out}"))
            .to_owned()
    };
    let timeout = line("SESSIOND_SESSION_TIMEOUT");
    assert!(
        timeout.contains("45m") && timeout.contains("file"),
        "{timeout}"
    );
    let workers = line("SESSIOND_WORKERS");
    assert!(
        workers.contains(" 3 ") && workers.ends_with("environment SESSIOND_WORKERS"),
        "{workers}"
    );
    assert!(line("SESSIOND_KEEPALIVE").ends_with("default"), "{out}");
    let db = line("DATABASE_URL");
    assert!(
        db.contains("app:") && db.contains("127.0.0.1:1/sessions"),
        "{db}"
    );
    assert!(
        !out.stdout.contains("Pg-s3cret") && !out.stderr.contains("Pg-s3cret"),
        "{out}"
    );
    assert!(out.stdout.contains("settings ok"), "{out}");
    // Nothing was started or opened: no server to reach, no file made beside the config.
    let made: Vec<_> = std::fs::read_dir(site.path()).unwrap().collect();
    assert_eq!(made.len(), 1, "{made:?}");
}

#[test]
fn config_check_exits_non_zero_naming_a_bad_setting() {
    let site = Site::bare().with("SESSIOND_SESSION_TIMEOUT", "soon");
    site.run(&["config", "check"])
        .failed_naming(&["SESSIOND_SESSION_TIMEOUT", "'soon'"]);
    let site = Site::bare();
    let file = site.file("s.toml", "sesion_timeout = \"5m\"\n");
    site.run(&["--config", file.to_str().unwrap(), "config", "check"])
        .failed_naming(&["sesion_timeout", "did you mean session_timeout"]);
}

#[test]
fn a_misspelt_variable_is_a_warning_naming_the_nearest_setting_in_a_verb_and_in_config_check() {
    let site = Site::new().with("SESSIOND_SESION_TIMEOUT", "5m");
    let hint = "SESSIOND_SESION_TIMEOUT is not a setting and is ignored (did you mean SESSIOND_SESSION_TIMEOUT?)";
    let list = site.run(&["user", "list"]);
    list.succeeded();
    assert!(list.stderr.contains(hint), "{list}");
    let check = site.run(&["config", "check"]);
    check.succeeded();
    assert!(
        check.stdout.contains(&format!("warning: {hint}")),
        "{check}"
    );
    let mut server = site.serve();
    let log = server.stop();
    assert!(log.contains(hint), "{log}");
}

#[test]
fn database_url_sqlite_colon_path_opens_that_path_not_a_file_named_after_the_url() {
    let site = Site::bare().with("DATABASE_URL", "sqlite:sessiond.db");
    site.run(&["migrate"]).succeeded();
    assert!(site.path().join("sessiond.db").exists());
    assert!(!site.path().join("sqlite:sessiond.db").exists());
    site.add_user("alice", "pw-alice-1");
    // The same database, named the other way.
    let other = Site {
        dir: tempfile::tempdir().unwrap(),
        env: Vec::new(),
    }
    .with(
        "DATABASE_URL",
        &format!("sqlite://{}", site.path().join("sessiond.db").display()),
    );
    assert_eq!(other.user("alice").state, "enabled");
}

#[test]
fn user_unlock_lifts_a_lock_out_and_the_password_works_again() {
    let site = Site::new().with("SESSIOND_LOCKOUT_THRESHOLD", "2");
    site.add_user("bob", "pw-bob-1234");
    let server = site.serve();
    for _ in 0..2 {
        server
            .try_get_session("bob", "wrong")
            .assert_fault("AUTHENTICATION_FAILED");
    }
    server
        .try_get_session("bob", "pw-bob-1234")
        .assert_fault("ACCOUNT_LOCKED");
    assert_eq!(site.user("bob").state, "locked");

    let out = site
        .clone_env()
        .with("RUST_LOG", "warn,sessiond::security=info")
        .with("SESSIOND_LOG_FORMAT", "json")
        .run(&["user", "unlock", "bob"]);
    out.succeeded();
    assert_eq!(out.stdout.trim(), "unlocked bob");
    let event = out
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "admin")
        .unwrap_or_else(|| panic!("no admin event: {out}"));
    assert_eq!(
        (event["action"].as_str(), event["user"].as_str()),
        (Some("user_unlock"), Some("bob"))
    );
    assert_eq!(site.user("bob").state, "enabled");
    server.get_session("bob", "pw-bob-1234");

    let again = site.run(&["user", "unlock", "bob"]);
    again.succeeded();
    assert_eq!(again.stdout.trim(), "bob was not locked");
    site.run(&["user", "unlock", "nobody"])
        .failed_naming(&["nobody"]);
}

#[test]
fn verbs_print_no_info_lines_by_default() {
    let site = Site::new();
    for (args, stdin) in [
        (&["migrate"][..], None),
        (
            &["user", "add", "carol", "--password-stdin"][..],
            Some("pw-carol-1\n"),
        ),
        (&["user", "grant", "carol", "ViewSessionRight"][..], None),
        (&["user", "disable", "carol"][..], None),
        (&["user", "list"][..], None),
        (&["sessions", "delete-expired"][..], None),
    ] {
        let out = site.run_with(args, stdin);
        out.succeeded();
        // Only the security events (who did what) are INFO lines a verb logs by default.
        let chatter: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("INFO") && !l.contains("sessiond::security"))
            .collect();
        assert!(
            chatter.is_empty(),
            "`sessiond {}` printed INFO lines other than security events: {chatter:?}",
            args.join(" ")
        );
    }
}

#[test]
fn one_ended_session_is_said_in_the_singular() {
    let site = Site::new();
    site.add_user("alice", "pw-alice-1");
    let server = site.serve();
    server.get_session("alice", "pw-alice-1");
    let out = site.run(&["sessions", "end", "--user", "alice"]);
    out.succeeded();
    assert_eq!(out.stdout.trim(), "ended 1 session of alice");
    server.get_session("alice", "pw-alice-1");
    server.get_session("alice", "pw-alice-1");
    let out = site.run(&["user", "disable", "alice"]);
    out.succeeded();
    assert_eq!(out.stdout.trim(), "disabled alice; ended 2 sessions");
}
