//! A silent link to PostgreSQL (PostgreSQL only): a proxy between the server and the database
//! that stops moving bytes, with no reset, as a cut cable, a frozen server or a firewall that
//! drops packets would. Every call ends within the database timeout plus one second with
//! SERVICE_UNAVAILABLE, `/readyz` says 503 within the same bound, and the service comes back by
//! itself when the link does.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond::domain::{Backend, DatabaseUrl};

use crate::helpers::*;

/// Forwards connections to an upstream address; frozen, it moves no byte in either direction
/// and connects no new client upstream, but resets nothing: the kernel goes on accepting and
/// acknowledging, so neither side's TCP notices anything.
pub struct FreezingProxy {
    pub port: u16,
    frozen: Arc<AtomicBool>,
}

impl FreezingProxy {
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let (f, upstream) = (frozen.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (f, upstream) = (f.clone(), upstream.clone());
                std::thread::spawn(move || {
                    thaw(&f);
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        let _ = client.shutdown(Shutdown::Both);
                        return;
                    };
                    pump(
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        f.clone(),
                    );
                    pump(server, client, f);
                });
            }
        });
        Self { port, frozen }
    }

    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::SeqCst);
    }
}

fn thaw(frozen: &AtomicBool) {
    while frozen.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            thaw(&frozen);
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The database timeout of these tests, and the bound on every wait: that plus one second.
const DB_TIMEOUT: Duration = Duration::from_secs(2);
const BOUND: Duration = Duration::from_secs(3);

#[test]
#[ignore = "needs PostgreSQL: SESSIOND_TEST_BACKEND=postgres cargo test --test api -- --ignored"]
fn a_silent_link_bounds_every_call_and_readyz_and_the_service_comes_back_by_itself() {
    let db = TestDb::new();
    assert_eq!(
        db.url.backend,
        Backend::Postgres,
        "this test freezes a PostgreSQL link: run it with SESSIOND_TEST_BACKEND=postgres"
    );
    let proxy = FreezingProxy::start("127.0.0.1:5432");
    let name = db.url.target.rsplit('/').next().unwrap().to_owned();
    let through_proxy = DatabaseUrl::parse(&format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        proxy.port
    ))
    .unwrap();
    let app = Arc::new(spawn_app_on(db, None, |c| {
        c.database = through_proxy;
        c.db_timeout = DB_TIMEOUT;
    }));
    app.add_user("alice", "pw", None, &[]);
    let ids: Vec<String> = (0..16).map(|_| app.get_session("alice", "pw")).collect();
    // Idle connections in the pool, as a serving instance has: a call landing on one of
    // them is the case that waited with no deadline.
    let warm: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let app = app.clone();
            std::thread::spawn(move || {
                app.call("getCurrentSession", &[("sessionId", &id)])
                    .assert_ok();
            })
        })
        .collect();
    warm.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(app.get("/readyz").status, 200);

    proxy.freeze();
    let frozen_at = Instant::now();
    // 16 at once: 12 ends (a write, never answered from memory) and 4 logins.
    let calls: Vec<_> = ids
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, id)| {
            let app = app.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let r = if i < 12 {
                    app.call("closeSession", &[("sessionId", &id)])
                } else {
                    app.call("getSession", &[("userId", "alice"), ("password", "pw")])
                };
                (started.elapsed(), r)
            })
        })
        .collect();
    // The first probe after the cut, beside them (it waited 120 s and more before).
    let probe = {
        let app = app.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            (app.get("/readyz").status, started.elapsed())
        })
    };
    let mut slowest = Duration::ZERO;
    for call in calls {
        let (took, r) = call.join().unwrap();
        assert_eq!(r.status, 500, "{}", r.body);
        r.assert_fault("SERVICE_UNAVAILABLE");
        assert!(took < BOUND, "a call took {took:?} over a silent link");
        slowest = slowest.max(took);
    }
    let (status, first_probe) = probe.join().unwrap();
    assert_eq!(status, 503);
    assert!(first_probe < BOUND, "the first readyz took {first_probe:?}");
    let started = Instant::now();
    let ready = app.get("/readyz");
    let readyz_took = started.elapsed();
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(readyz_took < BOUND, "readyz took {readyz_took:?}");
    // Again, now that every pooled connection is gone: a new one cannot be made either.
    let started = Instant::now();
    let r = app.call("getSession", &[("userId", "alice"), ("password", "pw")]);
    r.assert_fault("SERVICE_UNAVAILABLE");
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    let frozen_for = frozen_at.elapsed();

    proxy.thaw();
    let thawed = Instant::now();
    let back = loop {
        let r = app.call("getSession", &[("userId", "alice"), ("password", "pw")]);
        if r.status == 200 {
            break thawed.elapsed();
        }
        r.assert_fault("SERVICE_UNAVAILABLE");
        assert!(
            thawed.elapsed() < Duration::from_secs(15),
            "not back after 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(app.get("/readyz").status, 200);
    // A session logged in after the link returned is served as usual.
    let id = app.get_session("alice", "pw");
    assert!(app.validate(&id));
    eprintln!(
        "silent link: slowest call {slowest:?}, first readyz {first_probe:?}, next readyz \
         {readyz_took:?}, frozen {frozen_for:?}, back {back:?} after the link returned"
    );
}
