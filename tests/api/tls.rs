//! HTTPS (docs/behaviour.md §6): the real binary serving certificates made here by a CA of the
//! test's own, spoken to by curl and by reqwest over rustls trusting only that CA; plain HTTP and
//! TLS 1.1 refused; SIGHUP swapping the certificate under running calls, and keeping the old one
//! when the new files are bad. The server is a process of its own, so the signal reaches only it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::helpers::{envelope11, operation, Reply, TestDb, PATH};

const BIN: &str = env!("CARGO_BIN_EXE_sessiond");
/// How long `serve` may take to listen, or to log a reload, before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);
const LISTENING: &str = "listening on https://";
const RELOADED: &str = "SIGHUP: now serving";
const KEPT: &str = "still serving the previous certificate";
/// Reloads in a row under the running calls of the reload test.
const REPEAT_RELOADS: usize = 5;
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";

/// A certificate authority of the test's own.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate for 127.0.0.1 and localhost: the PEM chain (leaf, then CA), its key.
struct Leaf {
    chain_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "sessiond test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { ca }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn leaf(&self, common_name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.ca.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// A database with one user, a CA, and the certificate files `serve` is pointed at.
struct Site {
    db: Arc<TestDb>,
    pki: Pki,
    first: Leaf,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Site {
    fn new() -> Self {
        let db = TestDb::new();
        let dir = db.dir.path().to_owned();
        let pki = Pki::new();
        let first = pki.leaf("first.test");
        let site = Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            db,
            pki,
            first,
        };
        std::fs::write(&site.ca_file, site.pki.ca_pem()).unwrap();
        site.install(&site.first);
        let mut add = site.command(&["user", "add", USER, "--password-stdin"]);
        let mut child = add
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "user add: {out:?}");
        site
    }

    /// Puts a pair in place as certbot does: each file written beside and renamed over.
    fn install(&self, leaf: &Leaf) {
        self.install_files(&leaf.chain_pem, &leaf.key_pem);
    }

    fn install_files(&self, chain_pem: &str, key_pem: &str) {
        for (path, text) in [(&self.cert_file, chain_pem), (&self.key_file, key_pem)] {
            let next = path.with_extension("next");
            std::fs::write(&next, text).unwrap();
            std::fs::rename(&next, path).unwrap();
        }
    }

    fn database_url(&self) -> String {
        match self.db.url.backend {
            sessiond::domain::Backend::Sqlite => format!("sqlite://{}", self.db.url.target),
            sessiond::domain::Backend::Postgres => self.db.url.target.clone(),
        }
    }

    /// The binary with this site's settings and nothing from the environment running the tests.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("SESSIOND_") || name == "DATABASE_URL" || name == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(self.db.dir.path())
            .args(args)
            .env("DATABASE_URL", self.database_url())
            .env("SESSIOND_BIND", "127.0.0.1:0")
            .env("SESSIOND_WORKERS", "2")
            .env("SESSIOND_TLS_CERT", &self.cert_file)
            .env("SESSIOND_TLS_KEY", &self.key_file);
        cmd
    }

    fn serve(&self) -> Server {
        Server::start(self.command(&["serve"]))
    }

    /// A client trusting only this site's CA. `fresh` makes every call a new connection with a
    /// full handshake (no TLS session resumption, which would skip the certificate).
    fn client(&self, fresh: bool) -> reqwest::blocking::Client {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.pki.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut builder = reqwest::blocking::Client::builder();
        if fresh {
            tls.resumption = rustls::client::Resumption::disabled();
            builder = builder.pool_max_idle_per_host(0);
        }
        builder
            .use_preconfigured_tls(tls)
            .tls_info(true)
            .timeout(PATIENCE)
            .build()
            .unwrap()
    }

    /// curl trusting the CA file, with these extra arguments, on `url`.
    fn curl(&self, extra: &[&str], url: &str) -> Output {
        Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(&self.ca_file)
            .args(extra)
            .arg(url)
            .output()
            .expect("curl runs")
    }

    /// A SOAP 1.1 call by curl; the reply as a client sees it.
    fn curl_call(&self, server: &Server, op: &str, fields: &[(&str, &str)]) -> Reply {
        let out = self.curl(
            &[
                "-H",
                "Content-Type: text/xml; charset=utf-8",
                "--data-binary",
                &envelope11(&operation(op, fields)),
                "-w",
                "\n%{http_code}",
            ],
            &server.url(),
        );
        assert!(out.status.success(), "curl: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        Reply {
            status: status.parse().unwrap(),
            content_type: String::new(),
            body: body.to_owned(),
        }
    }
}

/// A running `sessiond serve` over HTTPS, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the binary runs");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find(LISTENING) {
                        let authority = line[at + LISTENING.len()..].split('/').next();
                        let port = authority.and_then(|a| a.rsplit(':').next()?.parse().ok());
                        let _ = tx.send(port);
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let port = match rx.recv_timeout(PATIENCE) {
            Ok(Some(port)) => port,
            _ => {
                let _ = child.kill();
                panic!(
                    "serve did not log '{LISTENING}…'; its log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self { child, port, log }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}{PATH}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn hang_up(&self) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(rc, 0, "SIGHUP sent");
    }

    /// Waits until the log holds `what` once more than `seen` times.
    fn wait_for_log(&self, what: &str, seen: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.log().matches(what).count() <= seen {
            assert!(
                Instant::now() < deadline,
                "no '{what}' in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGHUP, then the log line that tells how the reload went.
    fn reload_and_wait(&self, outcome: &str) {
        let seen = self.log().matches(outcome).count();
        self.hang_up();
        self.wait_for_log(outcome, seen);
    }
}

/// A SOAP 1.1 call by reqwest: the reply, and the certificate the server showed on that
/// connection.
fn call(
    client: &reqwest::blocking::Client,
    server: &Server,
    op: &str,
    fields: &[(&str, &str)],
) -> Result<(Reply, Vec<u8>), reqwest::Error> {
    let resp = client
        .post(server.url())
        .header("Content-Type", "text/xml; charset=utf-8")
        .body(envelope11(&operation(op, fields)))
        .send()?;
    let peer = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS connection shows its certificate")
        .to_vec();
    Ok((Reply::from(resp), peer))
}

fn login(client: &reqwest::blocking::Client, server: &Server) -> String {
    let (reply, _) = call(
        client,
        server,
        "getSession",
        &[("userId", USER), ("password", PASSWORD)],
    )
    .unwrap();
    reply.assert_ok();
    reply.value("sessionId").expect("a session ID")
}

fn validate(client: &reqwest::blocking::Client, server: &Server, id: &str) -> (bool, Vec<u8>) {
    let (reply, peer) = call(client, server, "validateSession", &[("sessionId", id)]).unwrap();
    reply.assert_ok();
    (reply.value("valid").as_deref() == Some("true"), peer)
}

/// The certificate a new connection is shown.
fn served_certificate(site: &Site, server: &Server, id: &str) -> Vec<u8> {
    let (valid, peer) = validate(&site.client(true), server, id);
    assert!(valid);
    peer
}

#[test]
fn curl_trusting_the_ca_gets_and_validates_a_session_over_https() {
    let site = Site::new();
    let server = site.serve();
    let login = site.curl_call(
        &server,
        "getSession",
        &[("userId", USER), ("password", PASSWORD)],
    );
    login.assert_ok();
    let id = login.value("sessionId").expect("a session ID");
    let check = site.curl_call(&server, "validateSession", &[("sessionId", &id)]);
    check.assert_ok();
    assert_eq!(check.value("valid").as_deref(), Some("true"));
}

#[test]
fn tls_1_2_and_tls_1_3_are_both_spoken() {
    let site = Site::new();
    let server = site.serve();
    let wsdl = format!("{}?wsdl", server.url());
    for (args, version) in [
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
        (&["--tlsv1.3"][..], "TLSv1.3"),
    ] {
        let mut args = args.to_vec();
        args.extend(["-v", "-o", "/dev/null"]);
        let out = site.curl(&args, &wsdl);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert!(
            log.contains(&format!("SSL connection using {version}")),
            "{log}"
        );
    }
}

#[test]
fn a_client_that_speaks_at_most_tls_1_1_is_refused_by_the_server() {
    let site = Site::new();
    let server = site.serve();
    // SECLEVEL=0 lets curl's OpenSSL offer TLS 1.0/1.1 at all, so the refusal is the server's:
    // it answers the hello with an alert.
    let out = site.curl(
        &[
            "--tlsv1",
            "--tls-max",
            "1.1",
            "--ciphers",
            "DEFAULT@SECLEVEL=0",
        ],
        &format!("{}?wsdl", server.url()),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "TLS 1.1 was accepted");
    assert!(err.contains("alert"), "not refused by the server: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_rust_client_trusting_the_ca_gets_validates_and_closes_a_session() {
    let site = Site::new();
    let server = site.serve();
    let client = site.client(false);
    let id = login(&client, &server);
    let (valid, peer) = validate(&client, &server, &id);
    assert!(valid);
    assert_eq!(peer, site.first.der, "the configured certificate is served");
    let (closed, _) = call(&client, &server, "closeSession", &[("sessionId", &id)]).unwrap();
    closed.assert_ok();
    assert_eq!(closed.value("closed").as_deref(), Some("true"));
    assert!(!validate(&client, &server, &id).0);
}

#[test]
fn the_served_wsdl_address_says_https() {
    let site = Site::new();
    let server = site.serve();
    let wsdl = site
        .client(false)
        .get(format!("{}?wsdl", server.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let doc = roxmltree::Document::parse(&wsdl).unwrap();
    let address = doc
        .descendants()
        .find(|n| n.tag_name().name() == "address")
        .and_then(|n| n.attribute("location"))
        .expect("a soap:address");
    assert_eq!(address, server.url());
}

#[test]
fn plain_http_to_the_tls_listener_gets_no_soap_answer() {
    let site = Site::new();
    let server = site.serve();
    let body = envelope11(&operation(
        "getSession",
        &[("userId", USER), ("password", PASSWORD)],
    ));
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    // The server closes the connection; a reset is as good an answer as any.
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(!text.starts_with("HTTP/"), "an HTTP answer: {text}");
    assert!(!text.contains("sessionId"), "a SOAP answer: {text}");
    // And the listener goes on serving TLS.
    login(&site.client(true), &server);
}

#[test]
fn sighup_serves_a_new_certificate_with_no_failed_call_of_a_running_validate_loop() {
    let site = Site::new();
    let server = site.serve();
    let id = login(&site.client(false), &server);
    // Several reloads in a row, each under running calls; the last one's certificate stays.
    let renewals: Vec<Leaf> = (1..=REPEAT_RELOADS)
        .map(|n| site.pki.leaf(&format!("renewal-{n}.test")))
        .collect();
    let last = renewals.last().unwrap();

    // Two loops: one on a kept-alive connection opened before the reload, one opening a new
    // connection (a new handshake) for every call.
    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<String>::new());
    let calls = AtomicUsize::new(0);
    // The new-connection loop's own count: it is the slower one (a handshake a call), and each
    // reload must be followed by some of its calls, or its last peer may predate the last one.
    let fresh_calls = AtomicUsize::new(0);
    let peers: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let loops: Vec<_> = [false, true]
            .into_iter()
            .map(|fresh| {
                let client = site.client(fresh);
                let (stop, failures, calls, server, id) = (&stop, &failures, &calls, &server, &id);
                let fresh_calls = &fresh_calls;
                scope.spawn(move || {
                    let mut last_peer = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let outcome =
                            call(&client, server, "validateSession", &[("sessionId", id)])
                                .map_err(|e| e.to_string())
                                .and_then(|(reply, peer)| {
                                    last_peer = peer;
                                    match (reply.status, reply.value("valid")) {
                                        (200, Some(v)) if v == "true" => Ok(()),
                                        _ => Err(format!("{} {}", reply.status, reply.body)),
                                    }
                                });
                        calls.fetch_add(1, Ordering::Relaxed);
                        if fresh {
                            fresh_calls.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Err(e) = outcome {
                            failures.lock().unwrap().push(e);
                        }
                    }
                    last_peer
                })
            })
            .collect();

        let settle = || {
            let start = calls.load(Ordering::Relaxed);
            let fresh_start = fresh_calls.load(Ordering::Relaxed);
            let deadline = Instant::now() + PATIENCE;
            while (calls.load(Ordering::Relaxed) < start + 50
                || fresh_calls.load(Ordering::Relaxed) < fresh_start + 3)
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        settle();
        for leaf in &renewals {
            site.install(leaf);
            server.reload_and_wait(RELOADED);
            settle();
        }
        stop.store(true, Ordering::Relaxed);
        loops.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} calls failed, the first: {}",
        failures.len(),
        calls.load(Ordering::Relaxed),
        failures[0]
    );
    assert!(calls.load(Ordering::Relaxed) >= 50 * (REPEAT_RELOADS + 1));
    assert_eq!(
        peers[0], site.first.der,
        "the kept-alive connection is the one opened before the reload"
    );
    assert_eq!(
        peers[1], last.der,
        "new connections get the new certificate"
    );
    assert_eq!(served_certificate(&site, &server, &id), last.der);
    let last_name = format!("CN=renewal-{REPEAT_RELOADS}.test");
    assert!(server.log().contains(&format!("subject '{last_name}'")));

    // curl sees it too.
    let out = site.curl(
        &["-v", "-o", "/dev/null"],
        &format!("{}?wsdl", server.url()),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains(&last_name), "{log}");
}

#[test]
fn a_bad_or_mismatched_pair_on_sighup_keeps_the_old_certificate_and_the_server_answering() {
    let site = Site::new();
    let server = site.serve();
    let client = site.client(false);
    let id = login(&client, &server);
    let second = site.pki.leaf("second.test");

    site.install_files(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n",
        &second.key_pem,
    );
    server.reload_and_wait(KEPT);
    assert_eq!(served_certificate(&site, &server, &id), site.first.der);

    // A good certificate with another certificate's key.
    site.install_files(&second.chain_pem, &site.first.key_pem);
    server.reload_and_wait(KEPT);
    assert!(
        server.log().contains("is not the key of the certificate"),
        "{}",
        server.log()
    );
    assert_eq!(served_certificate(&site, &server, &id), site.first.der);

    std::fs::remove_file(&site.key_file).unwrap();
    server.reload_and_wait(KEPT);
    assert_eq!(served_certificate(&site, &server, &id), site.first.der);
    assert!(validate(&client, &server, &id).0);
    assert!(!server.log().contains(RELOADED));
}

#[test]
fn a_missing_certificate_file_stops_the_start_naming_it() {
    let site = Site::new();
    let missing = site.db.dir.path().join("no-such-cert.pem");
    let out = site
        .command(&["serve"])
        .env("SESSIOND_TLS_CERT", &missing)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("No such file"),
        "{err}"
    );
    assert!(!err.contains(LISTENING), "{err}");
}

#[test]
fn a_key_file_that_holds_no_key_stops_the_start_naming_it() {
    let site = Site::new();
    std::fs::write(&site.key_file, site.pki.ca_pem()).unwrap();
    let out = site
        .command(&["serve"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&site.key_file.display().to_string()) && err.contains("no private key"),
        "{err}"
    );
}
