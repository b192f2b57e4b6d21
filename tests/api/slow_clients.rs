//! Slow and stalled clients (docs/behaviour.md §6, slow clients), over raw sockets: a request
//! whose headers or body do not arrive within SESSIOND_CLIENT_TIMEOUT is dropped, a crowd of them
//! past the descriptor limit does not keep a new client out, and the memory their bodies took
//! is given back once they are gone. The last two run the binary as its own process, so its
//! descriptor limit and resident memory are its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::cli::{Server, Site};
use crate::helpers::{spawn_app_with, PATH};

/// Opens a connection and sends a POST's headers announcing `length` bytes, then `send` of
/// them, and no more.
fn stall(port: u16, length: usize, send: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("a connection");
    write!(
        s,
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .unwrap();
    s.write_all(&vec![b' '; send]).unwrap();
    s
}

/// Reads until the server closes the connection (or `patience` passes): what it sent, and
/// when it closed.
fn until_closed(mut s: TcpStream, patience: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    s.set_read_timeout(Some(patience)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), None),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        Some(started.elapsed()),
    )
}

#[test]
fn a_client_that_stalls_after_its_post_headers_is_dropped_within_the_client_timeout() {
    let app = spawn_app_with(|c| c.client_timeout = Duration::from_secs(1));
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let (answer, closed) = until_closed(stall(port, 100, 0), Duration::from_secs(8));
    let closed = closed.expect("the server closed the connection");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // And a body that stops halfway is treated the same.
    let (answer, closed) = until_closed(stall(port, 100, 40), Duration::from_secs(8));
    assert!(closed.expect("closed") < Duration::from_millis(2500));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Other clients were served all along.
    assert_eq!(app.get(&format!("{PATH}?wsdl")).status, 200);
}

#[test]
fn a_client_that_stalls_inside_its_headers_is_dropped_within_the_client_timeout() {
    let app = spawn_app_with(|c| c.client_timeout = Duration::from_secs(1));
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow:").unwrap();
    let (_, closed) = until_closed(s, Duration::from_secs(8));
    let closed = closed.expect("the server closed the connection");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );
}

/// `serve` in its own process with this open-file limit (soft and hard).
fn serve_with_descriptor_limit(site: &Site, limit: u64) -> Server {
    let mut cmd = site.command(&["serve"]);
    // SAFETY: setrlimit is async-signal-safe and touches nothing but the child's limit.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Server::start(cmd)
}

#[test]
fn stalled_clients_past_the_descriptor_limit_do_not_keep_a_new_client_out() {
    const LIMIT: u64 = 256;
    const STALLED: usize = 300;
    let site = Site::new()
        .with("SESSIOND_CLIENT_TIMEOUT", "1s")
        .with("SESSIOND_WORKERS", "2");
    site.add_user("alice", "pw-secret-1");
    let server = serve_with_descriptor_limit(&site, LIMIT);
    let id = server.get_session("alice", "pw-secret-1");
    let port = server.port();

    let crowd: Vec<TcpStream> = (0..STALLED).map(|_| stall(port, 100, 0)).collect();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let answer = client
        .post(&server.url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(crate::helpers::envelope11(&crate::helpers::operation(
            "validateSession",
            &[("sessionId", &id)],
        )))
        .send()
        .expect("the new client is answered despite the stalled crowd");
    assert_eq!(answer.status().as_u16(), 200);
    assert!(answer
        .text()
        .unwrap()
        .contains("<tns:valid>true</tns:valid>"));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(crowd);
    assert!(server.validate(&id));
}

/// The resident set of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

#[test]
fn memory_taken_by_400_stalled_one_mebibyte_bodies_is_given_back_after_they_leave() {
    const CLIENTS: usize = 400;
    const LENGTH: usize = 1024 * 1024;
    const SENT: usize = 1_000_000;
    let site = Site::new()
        .with("SESSIOND_CLIENT_TIMEOUT", "30s")
        .with("SESSIOND_WORKERS", "2");
    site.add_user("alice", "pw-secret-1");
    let server = Server::start(site.command(&["serve"]));
    let id = server.get_session("alice", "pw-secret-1");
    assert!(server.validate(&id));
    let pid = server.child.id();
    let start = rss_kib(pid);

    let crowd: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| stall(server.port(), LENGTH, SENT))
        .collect();
    // Wait until the server holds what was sent (most of 400 MB), to know the test loaded it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut peak = start;
    while peak < start + 300 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        peak = peak.max(rss_kib(pid));
    }
    assert!(
        peak >= start + 300 * 1024,
        "the bodies never reached the server: {start} -> {peak} KiB"
    );

    drop(crowd);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut now = rss_kib(pid);
    while now > start + 64 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        now = rss_kib(pid);
    }
    assert!(
        now <= start + 64 * 1024,
        "resident memory: {start} KiB at start, {peak} KiB with the bodies, {now} KiB after they left"
    );
    assert!(server.validate(&id));
}
