//! Deadlines for PostgreSQL connections in use. libpq waits on its socket with no deadline of
//! its own: over a silent link (a cut cable, a frozen server, a firewall dropping packets, no
//! reset) a query waits until the kernel gives up, which keepalives and `tcp_user_timeout` do
//! not shorten when the bytes were acknowledged by something in between (a proxy, a frozen
//! server's kernel). So every connection handed out is watched: one that has been out longer
//! than the database timeout and has received nothing for that long is shut down
//! (`shutdown(2)`, which wakes libpq's blocked read with an error), marked killed, and dropped
//! by the pool instead of reused.
//!
//! Hand-written: neither diesel nor r2d2 offers a deadline on a blocking libpq call, and
//! libpq's own timeouts cover connecting only.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the watchdog looks at the deadlines: part of the bound's one second of slack.
const TICK: Duration = Duration::from_millis(100);

struct Watch {
    fd: RawFd,
    deadline: Instant,
    limit: Duration,
    killed: Arc<AtomicBool>,
    link: Arc<Link>,
}

/// What a pool knows of its link to the database. A connection that went silent says the same
/// of the others, which lead over the same link: they are all dropped, and until a new
/// connection is made the pool does not wait the database timeout for one (see
/// `Store::conn`), so that no call waits twice.
#[derive(Debug, Default)]
pub struct Link {
    /// Connections opened before this count went silent with the link, or led to a server
    /// that failed over.
    stale_before: AtomicU64,
    silent: AtomicBool,
}

impl Link {
    pub fn epoch(&self) -> u64 {
        self.stale_before.load(Ordering::SeqCst)
    }

    pub fn is_silent(&self) -> bool {
        self.silent.load(Ordering::SeqCst)
    }

    /// A connection was made: the link answers.
    pub fn answered(&self) {
        if self.silent.swap(false, Ordering::SeqCst) {
            log::info!("the database answers again");
        }
    }

    /// Every connection open now is to be dropped (a failover).
    pub fn condemn(&self) {
        self.stale_before.fetch_add(1, Ordering::SeqCst);
    }

    fn went_silent(&self, limit: Duration) {
        self.condemn();
        if !self.silent.swap(true, Ordering::SeqCst) {
            log::error!(
                "no answer from the database for {} ms: its connections are dropped and calls \
                 answer SERVICE_UNAVAILABLE until it answers again",
                limit.as_millis()
            );
        }
    }
}

#[derive(Default)]
struct Watchdog {
    watches: Mutex<HashMap<u64, Watch>>,
    next: AtomicU64,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("sessiond-db-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(TICK);
                watchdog().look();
            });
        if let Err(e) = spawned {
            log::error!("cannot start the database watchdog (a silent link may hang calls): {e}");
        }
        Watchdog::default()
    })
}

impl Watchdog {
    fn look(&self) {
        let now = Instant::now();
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        watches.retain(|_, w| {
            if w.deadline > now {
                return true;
            }
            // Still receiving (a long answer streaming in): not silent, give it the rest.
            let quiet = quiet_for(w.fd);
            if quiet < w.limit {
                w.deadline = now + (w.limit - quiet);
                return true;
            }
            // Marked first, so that whoever wakes from the shut socket finds it marked.
            w.killed.store(true, Ordering::SeqCst);
            w.link.went_silent(w.limit);
            // SAFETY: the fd belongs to a connection that is checked out (the watch is removed,
            // under this lock, before the connection goes back or is closed), so it is open
            // and still that connection's socket.
            unsafe { libc::shutdown(w.fd, libc::SHUT_RDWR) };
            false
        });
    }
}

/// How long the socket has received nothing (TCP_INFO's `tcpi_last_data_recv`); forever when
/// the kernel cannot say, so that the deadline alone decides.
fn quiet_for(fd: RawFd) -> Duration {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes into it.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let got = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        if got != 0 {
            return Duration::MAX;
        }
        Duration::from_millis(u64::from(info.tcpi_last_data_recv))
    }
}

/// A connection under watch; the watch ends when this is dropped.
pub struct Armed(u64);

impl Drop for Armed {
    fn drop(&mut self) {
        watchdog()
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// Watches the socket `fd` from now: silent for `limit` after that, it is shut down, `killed`
/// set and the `link` told.
pub fn arm(fd: RawFd, limit: Duration, killed: Arc<AtomicBool>, link: Arc<Link>) -> Armed {
    let dog = watchdog();
    let id = dog.next.fetch_add(1, Ordering::Relaxed);
    dog.watches
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id,
            Watch {
                fd,
                deadline: Instant::now() + limit,
                limit,
                killed,
                link,
            },
        );
    Armed(id)
}

/// The socket libpq opened while `establish` ran: the one new socket whose peer port is one of
/// `ports`. `None` when it cannot be told (no /proc, or several candidates because something
/// else connected to the same port meanwhile): that connection goes unwatched and relies on
/// the kernel's keepalives. `one_at_a_time` is the pool's: its connects never see each
/// other's socket. (Not process-wide: a connect hanging on one database must not hold up
/// another's.)
pub fn new_socket<T>(
    ports: &[u16],
    one_at_a_time: &Mutex<()>,
    establish: impl FnOnce() -> T,
) -> (T, Option<RawFd>) {
    let _one = one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
    let before = sockets();
    let made = establish();
    let (Some(before), Some(after)) = (before, sockets()) else {
        return (made, None);
    };
    let mut new = after
        .into_iter()
        .filter(|fd| !before.contains(fd))
        .filter(|&fd| peer_port(fd).is_some_and(|p| ports.contains(&p)));
    match (new.next(), new.next()) {
        (Some(fd), None) => (made, Some(fd)),
        _ => (made, None),
    }
}

/// The process's socket descriptors.
fn sockets() -> Option<Vec<RawFd>> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
    )
}

/// The remote TCP port of a socket.
fn peer_port(fd: RawFd) -> Option<u16> {
    // SAFETY: sockaddr_storage is plain data large enough for any address; getpeername writes
    // at most `len` bytes into it.
    unsafe {
        let mut addr: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return None;
        }
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                let v4 = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>();
                Some(u16::from_be(v4.sin_port))
            }
            libc::AF_INET6 => {
                let v6 = &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
                Some(u16::from_be(v6.sin6_port))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_silent_socket_is_shut_down_at_its_deadline_and_its_read_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stream, fd) = new_socket(&[port], &Mutex::new(()), || {
            TcpStream::connect(("127.0.0.1", port))
        });
        let mut stream = stream.unwrap();
        let fd = fd.expect("the new socket is found");
        let _server = listener.accept().unwrap();
        let killed = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let link = Arc::new(Link::default());
        let _armed = arm(fd, Duration::from_millis(300), killed.clone(), link.clone());
        // The server never writes: without the watchdog this read would wait forever.
        let n = stream.read(&mut [0u8; 16]).unwrap_or(0);
        assert_eq!(n, 0);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1300), "{took:?}");
        assert!(killed.load(Ordering::SeqCst));
        assert!(link.is_silent() && link.epoch() == 1);
        link.answered();
        assert!(!link.is_silent());
    }

    #[test]
    fn a_watch_ended_in_time_leaves_the_socket_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _server = listener.accept().unwrap();
        use std::os::fd::AsRawFd;
        let killed = Arc::new(AtomicBool::new(false));
        drop(arm(
            stream.as_raw_fd(),
            Duration::from_millis(100),
            killed.clone(),
            Arc::default(),
        ));
        std::thread::sleep(Duration::from_millis(400));
        assert!(!killed.load(Ordering::SeqCst));
        stream.set_nonblocking(true).unwrap();
        let err = (&stream).read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "still open");
    }
}
