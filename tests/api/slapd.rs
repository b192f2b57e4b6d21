//! A real directory for the tests: Debian's `slapd` as a plain process on free loopback ports
//! in a temporary directory, configured by `slapadd -n0` of a generated cn=config (mdb, the
//! `memberof` overlay, TLS with a CA made here by rcgen), then filled by `ldapadd` with the
//! users and groups of [`DATA`]. [`Slapd::shared`] is started once per test binary; a test that
//! stops, freezes or breaks its directory starts its own with [`Slapd::start`].
//!
//! Every slapd is started by one long-lived spawner thread with `PR_SET_PDEATHSIG`, so none
//! outlives the test binary, even the shared one that is never dropped.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
const ADMIN_PASSWORD: &str = "directory-admin-pw";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=org";
pub const VIEWERS: &str = "cn=viewers,ou=groups,dc=example,dc=org";
/// Holds `cn=child` (which holds carol): carol is in it only through nesting.
pub const PARENT: &str = "cn=parent,ou=groups,dc=example,dc=org";
/// A groupOfUniqueNames: membership through `uniqueMember`.
pub const UPDATERS: &str = "cn=updaters,ou=groups,dc=example,dc=org";
const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const PATIENCE: Duration = Duration::from_secs(20);

/// The people and groups. alice: admin, no department; dora: admin with a department; bob:
/// viewer in sales; carol: in a group inside an update group; dave: in a decoy group named
/// like the admins' elsewhere; gina: an updater by uniqueMember; erin and frank: for the sync
/// tests; twin1 and twin2: two entries answering the same ID.
const DATA: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: ou=decoys,dc=example,dc=org
objectClass: organizationalUnit
ou: decoys
";

const PEOPLE_DATA: &[(&str, Option<&str>)] = &[
    ("alice", None),
    ("dora", Some("ops")),
    ("bob", Some("sales")),
    ("carol", None),
    ("dave", None),
    ("gina", None),
    ("erin", None),
    ("frank", None),
    ("henry", None),
];

const GROUPS: &str = "\
dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=people,dc=example,dc=org
member: uid=dora,ou=people,dc=example,dc=org

dn: cn=viewers,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: viewers
member: uid=bob,ou=people,dc=example,dc=org
member: uid=frank,ou=people,dc=example,dc=org

dn: cn=child,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: child
member: uid=carol,ou=people,dc=example,dc=org

dn: cn=parent,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: parent
member: cn=child,ou=groups,dc=example,dc=org

dn: cn=updaters,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: updaters
uniqueMember: uid=gina,ou=people,dc=example,dc=org

dn: cn=admins,ou=decoys,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=dave,ou=people,dc=example,dc=org

dn: ou=twins,ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: twins

dn: cn=twin1,ou=twins,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
cn: twin1
sn: T
uid: twin
userPassword: twin-pw

dn: cn=twin2,ou=twins,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
cn: twin2
sn: T
uid: twin
userPassword: twin-pw
";

/// A user's directory password.
pub fn password_of(user: &str) -> String {
    format!("{user}-dir-pw")
}

pub fn dn_of(user: &str) -> String {
    format!("uid={user},{PEOPLE}")
}

/// The test CA and the server's certificate for `localhost` and 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "sessiond directory test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: u16,
    /// The CA that signed the server's certificate.
    pub ca_file: PathBuf,
    /// The service account's password, in a file as sessiond reads it.
    pub password_file: PathBuf,
    child: Mutex<Option<Child>>,
}

static SHARED: OnceLock<Slapd> = OnceLock::new();

impl Slapd {
    /// The directory shared by the tests that only read it.
    pub fn shared() -> &'static Slapd {
        SHARED.get_or_init(Slapd::start)
    }

    /// A directory of the test's own.
    pub fn start() -> Slapd {
        // A port found free may be taken before slapd binds it (by a client's connection, or
        // another test's slapd): then slapd exits, and it is tried again on other ports.
        for _ in 0..5 {
            if let Some(slapd) = Self::try_start() {
                return slapd;
            }
        }
        panic!("slapd did not start on free ports five times");
    }

    fn try_start() -> Option<Slapd> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("data")).unwrap();
        std::fs::create_dir(root.join("slapd.d")).unwrap();
        let pki = pki();
        let write = |name: &str, text: &str| {
            let path = root.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_file = write("ca.pem", &pki.ca_pem);
        write("server.pem", &pki.cert_pem);
        write("server.key", &pki.key_pem);
        let password_file = write("bind-password", &format!("{ADMIN_PASSWORD}\n"));
        let config = write("config.ldif", &config_ldif(root));
        let status = Command::new(SLAPADD)
            .args(["-n0", "-F"])
            .arg(root.join("slapd.d"))
            .arg("-l")
            .arg(&config)
            .stdout(Stdio::null())
            .status()
            .expect("slapadd runs (apt-get install slapd)");
        assert!(status.success(), "slapadd -n0 of the test config failed");
        let slapd = Slapd {
            port: free_port(),
            tls_port: free_port(),
            dir,
            ca_file,
            password_file,
            child: Mutex::new(None),
        };
        if !slapd.run() {
            return None;
        }
        let mut data = DATA.to_owned();
        for (user, department) in PEOPLE_DATA {
            data.push_str(&format!(
                "\ndn: {}\nobjectClass: inetOrgPerson\nuid: {user}\ncn: {user}\nsn: {user}\n\
                 userPassword: {}\n",
                dn_of(user),
                password_of(user)
            ));
            if let Some(d) = department {
                data.push_str(&format!("departmentNumber: {d}\n"));
            }
        }
        data.push('\n');
        data.push_str(GROUPS);
        slapd.ldap("ldapadd", &data);
        Some(slapd)
    }

    /// Starts the process on its ports and waits until it accepts connections; false when it
    /// exited instead (its port was taken).
    fn run(&self) -> bool {
        let root = self.dir.path();
        let mut cmd = Command::new(SLAPD);
        cmd.arg("-F")
            .arg(root.join("slapd.d"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.port, self.tls_port
            ))
            // In the foreground (no fork), logging nothing.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn(cmd);
        let deadline = Instant::now() + PATIENCE;
        let exited = |child: &mut Child| child.try_wait().ok().flatten().is_some();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not start listening");
            if exited(&mut child) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Someone else may be the one listening there: ours then exits at once.
        std::thread::sleep(Duration::from_millis(150));
        if exited(&mut child) {
            return false;
        }
        *self.child.lock().unwrap() = Some(child);
        true
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// By name, for StartTLS: the certificate names `localhost`.
    pub fn starttls_url(&self) -> String {
        format!("ldap://localhost:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://localhost:{}", self.tls_port)
    }

    fn pid(&self) -> i32 {
        self.child
            .lock()
            .unwrap()
            .as_ref()
            .expect("slapd runs")
            .id() as i32
    }

    /// Stops the process (SIGTERM) and waits for it.
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // SAFETY: signals to a child of ours; a frozen one must wake to end.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
                libc::kill(child.id() as i32, libc::SIGCONT);
            }
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports with the same data.
    pub fn restart(&self) {
        assert!(self.run(), "slapd did not start again on its ports");
    }

    /// SIGSTOP: the port still accepts connections, but nothing answers.
    pub fn freeze(&self) {
        // SAFETY: a signal to a child of ours.
        unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
    }

    pub fn thaw(&self) {
        // SAFETY: a signal to a child of ours.
        unsafe { libc::kill(self.pid(), libc::SIGCONT) };
    }

    /// Runs `ldapadd`, `ldapmodify` or `ldapdelete` as the directory's admin, `input` on stdin.
    pub fn ldap(&self, tool: &str, input: &str) {
        let mut child = Command::new(tool)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldap-utils are installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.thaw_quietly();
        self.stop();
    }
}

impl Slapd {
    fn thaw_quietly(&self) {
        if let Some(child) = self.child.lock().unwrap().as_ref() {
            // SAFETY: a signal to a child of ours.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns from one thread that lives as long as the test binary: `PR_SET_PDEATHSIG` fires when
/// the spawning thread ends, so a test thread could not be it.
fn spawn(cmd: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                // SAFETY: prctl in the child between fork and exec, async-signal-safe.
                unsafe {
                    cmd.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        Ok(())
                    });
                }
                let _ = reply.send(cmd.spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner.lock().unwrap().send((cmd, tx)).unwrap();
    rx.recv()
        .unwrap()
        .expect("slapd starts (apt-get install slapd)")
}

/// cn=config: the schema, an mdb database with the admin as root, the memberof overlay, TLS.
fn config_ldif(root: &Path) -> String {
    let r = root.display();
    format!(
        "\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {r}/slapd.pid
olcTLSCACertificateFile: {r}/ca.pem
olcTLSCertificateFile: {r}/server.pem
olcTLSCertificateKeyFile: {r}/server.key

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PASSWORD}
olcDbDirectory: {r}/data
olcDbMaxSize: 16777216
olcAccess: {{0}}to attrs=userPassword by self read by anonymous auth by * none
olcAccess: {{1}}to * by * read

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
"
    )
}
