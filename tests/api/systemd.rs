//! What `contrib/systemd/sessiond.service` relies on from the binary: with `Type=notify`, serve
//! sends READY=1 to `NOTIFY_SOCKET` once it is migrated and listening, not before.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sessiond");

#[test]
fn serve_tells_the_notify_socket_it_is_ready_once_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("SESSIOND_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    let mut child = cmd
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("SESSIOND_BIND", "127.0.0.1:0")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut message = [0u8; 256];
    let received = socket.recv(&mut message);
    let stderr = child.stderr.take().unwrap();
    // Once READY has come, the listening line has been written: reading up to it never waits.
    let listening = received.is_ok().then(|| {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                let at = line.find("listening on http://")?;
                let authority = line[at + "listening on http://".len()..]
                    .split('/')
                    .next()?;
                authority.parse::<std::net::SocketAddr>().ok()
            })
    });
    let connected = listening
        .flatten()
        .map(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    let _ = child.kill();
    let _ = child.wait();

    let n = received.expect("a message on NOTIFY_SOCKET");
    let text = String::from_utf8_lossy(&message[..n]);
    assert!(text.lines().any(|l| l == "READY=1"), "{text}");
    assert_eq!(connected, Some(true), "listening when READY=1 arrived");
}
