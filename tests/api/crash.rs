//! `kill -9` under load (docs/reliability.md, "kill -9"): the real binary serves getSession and
//! validateSession from several client threads, is killed with SIGKILL in the middle, and is
//! started again on the same database. Every session whose getSession answer reached a client
//! must still be valid: an acknowledged session is committed before it is answered. Both
//! backends (`SESSIOND_TEST_BACKEND`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sessiond::domain::Backend;

use crate::cli::Site;
use crate::helpers::*;

const PW: &str = "pw-secret-1";
const ROUNDS: usize = 3;
const LOGIN_THREADS: usize = 3;
const VALIDATE_THREADS: usize = 2;
/// Logins acknowledged in a round before the kill (the load runs until then, at most `PATIENCE`).
const LOGINS_PER_ROUND: usize = 8;
const PATIENCE: Duration = Duration::from_secs(60);

/// The text of one element of a SOAP answer, found without a parser: the load threads must not
/// panic on half an answer cut by the kill.
fn element<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let start = body.find(&format!(":{name}>"))? + name.len() + 2;
    let end = start + body[start..].find('<')?;
    Some(&body[start..end])
}

#[test]
fn a_server_killed_with_sigkill_under_load_loses_no_session_whose_answer_was_received() {
    let db = TestDb::new();
    let url = match db.url.backend {
        Backend::Sqlite => format!("sqlite://{}", db.url.target),
        Backend::Postgres => db.url.target.clone(),
    };
    let site = Site::bare()
        .with("DATABASE_URL", &url)
        .with("SESSIOND_BIND", "127.0.0.1:0");
    site.add_user("alice", PW);
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();

    for round in 0..ROUNDS {
        let mut server = site.serve();
        let at_start = acknowledged.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let cut_off = Arc::new(AtomicUsize::new(0));
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let call = {
            let (client, url) = (client.clone(), server.url.clone());
            move |op: &str, fields: &[(&str, &str)]| {
                client
                    .post(&url)
                    .header("Content-Type", "text/xml; charset=utf-8")
                    .body(envelope11(&operation(op, fields)))
                    .send()
                    .and_then(|r| Ok((r.status().as_u16(), r.text()?)))
            }
        };
        let mut threads = Vec::new();
        for _ in 0..LOGIN_THREADS {
            let (call, stop, cut_off, acked) = (
                call.clone(),
                stop.clone(),
                cut_off.clone(),
                acknowledged.clone(),
            );
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match call("getSession", &[("userId", "alice"), ("password", PW)]) {
                        Ok((200, body)) => {
                            let id = element(&body, "sessionId").expect("a session ID");
                            acked.lock().unwrap().push(id.to_owned());
                        }
                        Ok((status, body)) => panic!("getSession: {status} {body}"),
                        Err(_) => {
                            cut_off.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            }));
        }
        for t in 0..VALIDATE_THREADS {
            let (call, stop, cut_off, acked) = (
                call.clone(),
                stop.clone(),
                cut_off.clone(),
                acknowledged.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut n = t;
                while !stop.load(Ordering::SeqCst) {
                    let id = {
                        let acked = acked.lock().unwrap();
                        if acked.is_empty() {
                            None
                        } else {
                            n += 1;
                            Some(acked[n % acked.len()].clone())
                        }
                    };
                    let Some(id) = id else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    match call("validateSession", &[("sessionId", &id)]) {
                        Ok((200, body)) => {
                            assert_eq!(element(&body, "valid"), Some("true"), "{id}: {body}")
                        }
                        Ok((status, body)) => panic!("validateSession: {status} {body}"),
                        Err(_) => {
                            cut_off.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            }));
        }
        let started = std::time::Instant::now();
        while acknowledged.lock().unwrap().len() - at_start < LOGINS_PER_ROUND
            && started.elapsed() < PATIENCE
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A different moment in the requests' life each round.
        std::thread::sleep(Duration::from_millis(7 * round as u64));
        let before = acknowledged.lock().unwrap().len();
        server.stop(); // SIGKILL, while the clients are calling
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join()
                .expect("no client saw a wrong answer before the kill");
        }
        assert!(
            cut_off.load(Ordering::SeqCst) > 0,
            "round {round}: no client was calling when the server was killed"
        );
        assert!(
            before - at_start >= LOGINS_PER_ROUND,
            "round {round}: too few logins under load ({})",
            before - at_start
        );

        let server = site.serve();
        let acked = acknowledged.lock().unwrap().clone();
        eprintln!(
            "round {round}: {} sessions acknowledged in all, {} calls cut by the kill",
            acked.len(),
            cut_off.load(Ordering::SeqCst)
        );
        let lost: Vec<&String> = acked.iter().filter(|id| !server.validate(id)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged sessions lost after kill -9",
            lost.len(),
            acked.len()
        );
    }
}

/// docs/behaviour.md §3: kill -9 loses at most one activity lag of renewals. A session is
/// renewed for 4 s under a 6 s timeout and a 500 ms lag, the server is killed with SIGKILL a
/// second after the last renewal, and started again: 4.5 s after that renewal the session is
/// still valid, which it could only be if the renewals were stored (from its login alone it
/// expired 2.5 s before). Both backends.
#[test]
fn kill_9_loses_at_most_one_activity_lag_of_renewals() {
    let db = TestDb::new();
    let url = match db.url.backend {
        Backend::Sqlite => format!("sqlite://{}", db.url.target),
        Backend::Postgres => db.url.target.clone(),
    };
    let site = Site::bare()
        .with("DATABASE_URL", &url)
        .with("SESSIOND_BIND", "127.0.0.1:0")
        .with("SESSIOND_SESSION_TIMEOUT", "6s")
        .with("SESSIOND_ACTIVITY_LAG", "500ms");
    site.add_user("alice", PW);
    let mut server = site.serve();
    let id = server.get_session("alice", PW);
    let login = std::time::Instant::now();
    while login.elapsed() < Duration::from_secs(4) {
        assert!(server.validate(&id));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.validate(&id));
    let last = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    server.stop(); // SIGKILL: nothing pending is stored on the way out
    let server = site.serve();
    let check = last + Duration::from_millis(4500);
    std::thread::sleep(check.saturating_duration_since(std::time::Instant::now()));
    assert!(
        login.elapsed() > Duration::from_secs(6),
        "the check must come after the login alone would have expired"
    );
    assert!(
        server.validate(&id),
        "renewals older than one lag were lost with the kill"
    );
}
