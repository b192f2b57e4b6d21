//! Database outage (PostgreSQL only): calls fail fast with SERVICE_UNAVAILABLE and the service
//! comes back by itself. The database link runs through a TCP proxy the test can cut.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sessiond::domain::{Backend, DatabaseUrl};

use crate::helpers::*;

/// Forwards connections to an upstream address until cut; while cut, every connection (open or
/// new) is closed at once, as a stopped server's would be.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (d, o, upstream) = (down.clone(), open.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut list = o.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Self { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn calls_fail_fast_while_the_database_is_down_and_recover_by_themselves() {
    let db = TestDb::new();
    assert_eq!(
        db.url.backend,
        Backend::Postgres,
        "this test cuts a PostgreSQL link: run it with SESSIOND_TEST_BACKEND=postgres"
    );
    let proxy = Proxy::start("127.0.0.1:5432");
    let name = db.url.target.rsplit('/').next().unwrap().to_owned();
    let through_proxy = DatabaseUrl::parse(&format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        proxy.port
    ))
    .unwrap();
    let app = spawn_app_on(db, None, |c| {
        c.database = through_proxy;
        c.db_timeout = Duration::from_secs(2);
    });
    app.add_user("alice", "pw", None, &[]);
    let id = app.get_session("alice", "pw");
    assert!(app.validate(&id));

    proxy.cut();
    // A session seen valid is answered from memory until the revocation reader finds the
    // database gone (within the revocation lag), which empties the cache.
    let deadline = Instant::now() + REVOCATION_PATIENCE;
    while app.call("validateSession", &[("sessionId", &id)]).status != 500 {
        assert!(Instant::now() < deadline, "still answered from memory");
        std::thread::sleep(Duration::from_millis(10));
    }
    for (op, fields) in [
        ("validateSession", vec![("sessionId", id.as_str())]),
        ("getSession", vec![("userId", "alice"), ("password", "pw")]),
        ("closeSession", vec![("sessionId", id.as_str())]),
    ] {
        let started = Instant::now();
        let r = app.call(op, &fields);
        let took = started.elapsed();
        assert_eq!(r.status, 500, "{op}: {}", r.body);
        assert_eq!(r.soap_fault().as_deref(), Some("Server"), "{op}");
        r.assert_fault("SERVICE_UNAVAILABLE");
        assert!(took < Duration::from_secs(5), "{op} took {took:?}");
        let r = app.call12(op, &fields);
        assert_eq!(r.status, 500);
        assert_eq!(r.soap_fault().as_deref(), Some("Receiver"));
    }
    // What needs no database goes on.
    assert_eq!(app.get(&format!("{PATH}?wsdl")).status, 200);

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.call("validateSession", &[("sessionId", &id)]);
        if r.status == 200 {
            assert_eq!(r.value("valid").as_deref(), Some("true"));
            break;
        }
        assert!(Instant::now() < deadline, "not back after 15 s: {}", r.body);
        std::thread::sleep(Duration::from_millis(250));
    }
    app.get_session("alice", "pw");
}

#[test]
fn readyz_is_503_with_the_reason_while_the_database_is_down_and_200_after() {
    let db = TestDb::new();
    if db.url.backend != Backend::Postgres {
        eprintln!("outage test runs with SESSIOND_TEST_BACKEND=postgres; skipped on SQLite");
        return;
    }
    let proxy = Proxy::start("127.0.0.1:5432");
    let name = db.url.target.rsplit('/').next().unwrap().to_owned();
    let through_proxy = DatabaseUrl::parse(&format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        proxy.port
    ))
    .unwrap();
    let app = spawn_app_on(db, None, |c| {
        c.database = through_proxy;
        c.db_timeout = Duration::from_secs(1);
    });
    let probe = |path: &str| {
        let resp = reqwest::blocking::get(format!("{}{path}", app.base)).unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    assert_eq!(probe("/readyz"), (200, "ready\n".into()));

    proxy.cut();
    let started = Instant::now();
    let (status, body) = probe("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database unreachable"), "{body}");
    assert!(
        !body.contains("5432") && !body.contains("postgres"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Liveness does not touch the database.
    assert_eq!(probe("/healthz"), (200, "ok\n".into()));

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = probe("/readyz");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready 15 s after: {body}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
