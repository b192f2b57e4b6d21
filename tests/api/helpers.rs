//! `spawn_app()`: the real server on a free port with its own temporary SQLite file, and a
//! client with one helper per kind of request. Each test gets its own app.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use sessiond::config::Config;
use sessiond::domain::{DatabaseUrl, Department, Password, Right, SessionId, UserId};
use sessiond::service::clock::{Clock, ManualClock, SystemClock};
use sessiond::service::SessionService;
use sessiond::startup::Application;

pub const NS: &str = "urn:sessiond:session:1";
pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
pub const PATH: &str = "/services/SessionService";
/// How long a session ended on another instance or by the CLI may still be valid here in a
/// test: the revocation lag (100 ms) with a wide margin for a loaded 2-core machine.
pub const REVOCATION_PATIENCE: Duration = Duration::from_secs(3);

/// A database of a test's own: a temporary SQLite file, or with SESSIOND_TEST_BACKEND=postgres
/// a fresh PostgreSQL database on the local server, dropped when the last app using it is gone.
pub struct TestDb {
    pub dir: tempfile::TempDir,
    pub url: DatabaseUrl,
    postgres: Option<String>,
}

/// The server the PostgreSQL runs use, a URL without a database: SESSIOND_TEST_PG, the one
/// setting the interop tests (tests/interop/conftest.py) read too.
fn postgres_server() -> String {
    let url = std::env::var("SESSIOND_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    url.trim_end_matches('/').to_owned()
}

fn postgres_admin(sql: &str) {
    use diesel::{Connection, RunQueryDsl};
    let mut conn = diesel::PgConnection::establish(&format!("{}/postgres", postgres_server()))
        .expect("the test PostgreSQL server is reachable");
    diesel::sql_query(sql).execute(&mut conn).unwrap();
}

impl TestDb {
    pub fn new() -> Arc<Self> {
        let dir = tempfile::tempdir().unwrap();
        if std::env::var("SESSIOND_TEST_BACKEND").as_deref() == Ok("postgres") {
            let name = format!("sessiond_test_{}", uuid::Uuid::new_v4().simple());
            postgres_admin(&format!("CREATE DATABASE {name}"));
            let url = DatabaseUrl::parse(&format!("{}/{name}", postgres_server())).unwrap();
            return Arc::new(Self {
                dir,
                url,
                postgres: Some(name),
            });
        }
        Self::sqlite_in(dir)
    }

    /// A temporary SQLite file whatever SESSIOND_TEST_BACKEND says: for the tests of what
    /// only SQLite can be made to do (a file locked by another process).
    pub fn sqlite() -> Arc<Self> {
        Self::sqlite_in(tempfile::tempdir().unwrap())
    }

    fn sqlite_in(dir: tempfile::TempDir) -> Arc<Self> {
        let url = DatabaseUrl::parse(&format!(
            "sqlite://{}",
            dir.path().join("sessiond.db").display()
        ))
        .unwrap();
        Arc::new(Self {
            dir,
            url,
            postgres: None,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.postgres {
            postgres_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

pub struct TestApp {
    pub base: String,
    /// `http://127.0.0.1:PORT` of the admin listener, when the config set one.
    pub admin_base: Option<String>,
    pub url: String,
    pub service: Arc<SessionService>,
    pub clock: Option<Arc<ManualClock>>,
    pub db: Arc<TestDb>,
    client: reqwest::blocking::Client,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop without waiting for the graceful period.
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would and waits until it has finished (pending activity
    /// stored). The database is handed back so a new app can use it.
    pub fn shutdown(mut self) -> Arc<TestDb> {
        let handle = self.handle.clone();
        actix_web::rt::System::new().block_on(handle.stop(true));
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.db.clone()
    }
}

/// A config for tests: port 0, the test's own database, two workers.
pub fn test_config(db: &TestDb) -> Config {
    Config {
        database: db.url.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
        workers: 2,
        admin_password_file: db.dir.path().join("admin-password.txt"),
        location: "test-instance".into(),
        // The fixtures' passwords ("pw") are older than the minimum; the tests of the minimum
        // (policy.rs) start from the default.
        password_min_length: 1,
        ..Config::default()
    }
}

pub fn spawn_app() -> TestApp {
    spawn_app_with(|_| {})
}

pub fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    start(TestDb::new(), adjust, None)
}

/// Another app on the database of an earlier one: a second instance, or a restart (see
/// [`TestApp::shutdown`]).
pub fn spawn_app_on(
    db: Arc<TestDb>,
    clock: Option<Arc<ManualClock>>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    start(db, adjust, clock)
}

/// An app whose clock moves only when the test says so.
pub fn spawn_app_with_clock(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now().naive_utc()));
    start(TestDb::new(), adjust, Some(clock))
}

fn start(
    db: Arc<TestDb>,
    adjust: impl FnOnce(&mut Config),
    clock: Option<Arc<ManualClock>>,
) -> TestApp {
    let mut config = test_config(&db);
    adjust(&mut config);
    let app_clock: Arc<dyn Clock> = match &clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let app = match Application::build_with_clock(config, app_clock).await {
                Ok(app) => app,
                Err(e) => {
                    tx.send(Err(e.to_string())).unwrap();
                    return;
                }
            };
            tx.send(Ok((
                app.port(),
                app.admin_port(),
                app.service(),
                app.handle(),
            )))
            .unwrap();
            let _ = app.run_until_stopped().await;
        })
    });
    let (port, admin_port, service, handle) = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("the app starts");
    let base = format!("http://127.0.0.1:{port}");
    TestApp {
        url: format!("{base}{PATH}"),
        admin_base: admin_port.map(|p| format!("http://127.0.0.1:{p}")),
        base,
        service,
        clock,
        db,
        thread: Some(thread),
        client: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        handle,
    }
}

/// What a client sees of a reply.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl From<reqwest::blocking::Response> for Reply {
    fn from(resp: reqwest::blocking::Response) -> Self {
        Reply {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
            body: resp.text().expect("a complete answer"),
        }
    }
}

impl Reply {
    pub fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.body)
            .unwrap_or_else(|e| panic!("not XML ({e}): {}", self.body))
    }

    /// Text of the first element with this local name.
    pub fn value(&self, local: &str) -> Option<String> {
        self.doc()
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == local)
            .map(|n| n.text().unwrap_or("").to_owned())
    }

    pub fn values(&self, local: &str) -> Vec<String> {
        self.doc()
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == local)
            .map(|n| n.text().unwrap_or("").to_owned())
            .collect()
    }

    /// The `code` of the contract's fault detail.
    pub fn fault_code(&self) -> Option<String> {
        let doc = self.doc();
        let detail = doc
            .descendants()
            .find(|n| n.has_tag_name((NS, "sessionServiceFault")))?;
        detail
            .children()
            .find(|n| n.has_tag_name((NS, "code")))
            .and_then(|n| n.text())
            .map(str::to_owned)
    }

    /// The SOAP fault code: `faultcode` (1.1) or `Code/Value` (1.2), prefix resolved away.
    pub fn soap_fault(&self) -> Option<String> {
        let doc = self.doc();
        let node = doc
            .descendants()
            .find(|n| n.tag_name().name() == "faultcode" || n.has_tag_name((SOAP12, "Value")))?;
        let text = node.text()?.trim();
        Some(text.rsplit(':').next().unwrap().to_owned())
    }

    /// The elements of an array result, in order: `None` for a nil element.
    pub fn sessions(&self) -> Vec<Option<String>> {
        let doc = self.doc();
        let response = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name().ends_with("Response"))
            .unwrap_or_else(|| panic!("no response element: {}", self.body));
        response
            .children()
            .filter(|n| n.has_tag_name((NS, "session")))
            .map(|n| {
                let nil = n.attribute(("http://www.w3.org/2001/XMLSchema-instance", "nil"));
                if nil == Some("true") {
                    None
                } else {
                    n.children()
                        .find(|c| c.has_tag_name((NS, "sessionId")))
                        .and_then(|c| c.text())
                        .map(str::to_owned)
                }
            })
            .collect()
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, 200, "{}", self.body);
        self
    }

    pub fn assert_fault(&self, code: &str) -> &Self {
        assert_eq!(self.fault_code().as_deref(), Some(code), "{}", self.body);
        self
    }
}

pub fn envelope11(inner: &str) -> String {
    format!("<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body>{inner}</soap:Body></soap:Envelope>")
}

pub fn envelope12(inner: &str) -> String {
    format!("<env:Envelope xmlns:env=\"{SOAP12}\"><env:Body>{inner}</env:Body></env:Envelope>")
}

/// `<op xmlns="urn:sessiond:session:1"><name>value</name>…</op>`, values escaped.
pub fn operation(op: &str, fields: &[(&str, &str)]) -> String {
    let mut xml = format!("<{op} xmlns=\"{NS}\">");
    for (name, value) in fields {
        let value = value.replace('&', "&amp;").replace('<', "&lt;");
        xml.push_str(&format!("<{name}>{value}</{name}>"));
    }
    xml.push_str(&format!("</{op}>"));
    xml
}

/// A session ID for the service's typed doors; the tests only pass ones the server made.
pub fn as_session_id(id: &str) -> SessionId {
    SessionId::parse(id).expect("a session ID the server made")
}

pub fn as_user_id(id: &str) -> UserId {
    UserId::parse(id).expect("a valid user ID")
}

impl TestApp {
    pub fn clock(&self) -> &ManualClock {
        self.clock.as_ref().expect("spawned with a manual clock")
    }

    pub fn add_user(&self, user: &str, password: &str, department: Option<&str>, rights: &[Right]) {
        let user = as_user_id(user);
        let department = department.map(|d| Department::parse(d).unwrap());
        self.service
            .add_user(
                &user,
                &Password::parse(password.into()).unwrap(),
                department.as_ref(),
            )
            .unwrap();
        for right in rights {
            self.service.set_right(&user, *right, true).unwrap();
        }
    }

    pub fn post(
        &self,
        content_type: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let mut req = self
            .client
            .post(&self.url)
            .header("Content-Type", content_type);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.body(body.into()).send().expect("the server answers");
        Reply::from(resp)
    }

    pub fn get(&self, path_and_query: &str) -> Reply {
        let resp = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .expect("the server answers");
        Reply::from(resp)
    }

    /// A SOAP 1.1 call of `op` with these child elements.
    pub fn call(&self, op: &str, fields: &[(&str, &str)]) -> Reply {
        self.post(
            "text/xml; charset=utf-8",
            &[],
            envelope11(&operation(op, fields)),
        )
    }

    /// The same as a SOAP 1.2 call.
    pub fn call12(&self, op: &str, fields: &[(&str, &str)]) -> Reply {
        self.post(
            "application/soap+xml; charset=utf-8",
            &[],
            envelope12(&operation(op, fields)),
        )
    }

    pub fn get_session(&self, user: &str, password: &str) -> String {
        let r = self.call("getSession", &[("userId", user), ("password", password)]);
        r.assert_ok();
        r.value("sessionId").unwrap()
    }

    pub fn get_bw_session(&self, user: &str, password: &str) -> String {
        let r = self.call("getBWSession", &[("userId", user), ("password", password)]);
        r.assert_ok();
        r.value("sessionId").unwrap()
    }

    pub fn validate(&self, session_id: &str) -> bool {
        let r = self.call("validateSession", &[("sessionId", session_id)]);
        r.assert_ok();
        r.value("valid").unwrap() == "true"
    }

    /// How long until this instance refused a session ended elsewhere (docs/behaviour.md §3: within
    /// the revocation lag), asking again and again; `None` if it still said valid after `patience`.
    pub fn refused_within(&self, session_id: &str, patience: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        loop {
            if !self.validate(session_id) {
                return Some(started.elapsed());
            }
            if started.elapsed() > patience {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
