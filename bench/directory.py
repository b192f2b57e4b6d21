#!/usr/bin/env python3
"""Directory logins against a local slapd: the targets of docs/performance.md "Directory logins".

  python3 bench/directory.py [--binary target/release/sessiond] [--rounds 200] [--concurrency 50]

Starts a slapd of its own (a generated cn=config with the memberof overlay, `slapadd -n0`, then
`ldapadd` of users and one admin group) on a free loopback port, a sessiond on an SQLite file
in a temporary directory with local users beside it, and measures:

1. the median of sequential logins, local (Argon2id) and directory (search + groups + bind);
2. `--concurrency` directory logins at once: errors and the slowest;
3. `--concurrency` local logins at once, with the directory answering, then frozen (SIGSTOP)
   while directory logins wait on it: the local logins' latency must not change.

Needs Debian's slapd and ldap-utils, and Python 3 (standard library only). Everything it
starts is stopped at the end.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SUFFIX = "dc=example,dc=org"
ADMIN_DN = "cn=admin," + SUFFIX
ADMIN_PW = "bench-admin-pw"
PEOPLE = "ou=people," + SUFFIX
ADMINS = "cn=admins,ou=groups," + SUFFIX
NS = "urn:sessiond:session:1"
USERS = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_ldif(root):
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid

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
olcRootPW: {ADMIN_PW}
olcDbDirectory: {root}/data
olcAccess: {{0}}to attrs=userPassword by self read by anonymous auth by * none
olcAccess: {{1}}to * by * read

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
"""


def data_ldif():
    out = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Bench\ndc: example\n",
           f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
           f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n"]
    for n in range(USERS):
        out.append(f"dn: uid=dir{n},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: dir{n}\n"
                   f"cn: dir{n}\nsn: dir{n}\nuserPassword: dir-pw-{n}\n")
    members = "".join(f"member: uid=dir{n},{PEOPLE}\n" for n in range(0, USERS, 2))
    out.append(f"dn: {ADMINS}\nobjectClass: groupOfNames\ncn: admins\n{members}")
    return "\n".join(out)


def envelope(user, password):
    return (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<s:getSession xmlns:s="{NS}"><s:userId>{user}</s:userId>'
            f'<s:password>{password}</s:password></s:getSession></soap:Body></soap:Envelope>')


def login(url, user, password):
    """(seconds, fault code or None)."""
    req = urllib.request.Request(url, data=envelope(user, password).encode(),
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            fault = None
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        fault = body.split("<tns:code>")[1].split("<")[0] if "<tns:code>" in body else str(e.code)
    except Exception as e:  # a refused or dropped connection is an error too
        fault = type(e).__name__
    return time.perf_counter() - started, fault


def at_once(url, creds):
    results = [None] * len(creds)
    gate = threading.Barrier(len(creds))

    def one(i, user, password):
        gate.wait()
        results[i] = login(url, user, password)

    threads = [threading.Thread(target=one, args=(i, u, p)) for i, (u, p) in enumerate(creds)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "sessiond"))
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--control", action="store_true",
                    help="run the second local burst without freezing the directory (a yardstick)")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    procs = []
    with tempfile.TemporaryDirectory() as root:
        try:
            os.mkdir(f"{root}/data")
            os.mkdir(f"{root}/slapd.d")
            with open(f"{root}/config.ldif", "w") as f:
                f.write(config_ldif(root))
            subprocess.run(["/usr/sbin/slapadd", "-n0", "-F", f"{root}/slapd.d", "-l",
                            f"{root}/config.ldif"], check=True, stdout=subprocess.DEVNULL)
            lport = free_port()
            slapd = subprocess.Popen(["/usr/sbin/slapd", "-F", f"{root}/slapd.d", "-h",
                                      f"ldap://127.0.0.1:{lport}/", "-d", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(slapd)
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", lport), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            subprocess.run(["ldapadd", "-x", "-H", f"ldap://127.0.0.1:{lport}", "-D", ADMIN_DN,
                            "-w", ADMIN_PW], input=data_ldif().encode(), check=True,
                           stdout=subprocess.DEVNULL)
            with open(f"{root}/bind-pw", "w") as f:
                f.write(ADMIN_PW + "\n")
            port = free_port()
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("SESSIOND_") and k != "DATABASE_URL"}
            env.update({
                "DATABASE_URL": f"sqlite://{root}/s.db",
                "SESSIOND_BIND": f"127.0.0.1:{port}",
                "SESSIOND_ADMIN_PASSWORD_FILE": f"{root}/admin-pw",
                "SESSIOND_LDAP_URL": f"ldap://127.0.0.1:{lport}",
                "SESSIOND_LDAP_BIND_DN": ADMIN_DN,
                "SESSIOND_LDAP_BIND_PASSWORD_FILE": f"{root}/bind-pw",
                "SESSIOND_LDAP_USER_BASE": PEOPLE,
                "SESSIOND_LDAP_ADMIN_GROUPS": ADMINS,
                "SESSIOND_LDAP_TIMEOUT": "2s",
                "SESSIOND_LOCKOUT_THRESHOLD": "0",
                # 50 Argon2 checks at once queue for seconds on two cores: wait for them all.
                "SESSIOND_LOGIN_WAIT": "60s",
                "RUST_LOG": "error",
            })
            subprocess.run([binary, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
            for n in range(USERS):
                subprocess.run([binary, "user", "add", f"local{n}", "--password-stdin"],
                               input=f"local-pw-{n}\n".encode(), env=env, check=True,
                               stdout=subprocess.DEVNULL)
            server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            procs.append(server)
            url = f"http://127.0.0.1:{port}/services/SessionService"
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                    break
                except Exception:
                    time.sleep(0.05)
            # Warm both paths (the searching pool, the hashing threads).
            login(url, "local0", "local-pw-0")
            login(url, "dir0", "dir-pw-0")

            local = [login(url, f"local{i % USERS}", f"local-pw-{i % USERS}")
                     for i in range(args.rounds)]
            direct = [login(url, f"dir{i % USERS}", f"dir-pw-{i % USERS}")
                      for i in range(args.rounds)]
            assert all(f is None for _, f in local + direct), "a sequential login failed"
            local_med = statistics.median(t for t, _ in local)
            dir_med = statistics.median(t for t, _ in direct)

            c = args.concurrency
            burst = at_once(url, [(f"dir{i % USERS}", f"dir-pw-{i % USERS}") for i in range(c)])
            burst_errors = sum(1 for _, f in burst if f is not None)
            burst_max = max(t for t, _ in burst)

            local_creds = [(f"local{i % USERS}", f"local-pw-{i % USERS}") for i in range(c)]
            normal = at_once(url, local_creds)
            if not args.control:
                os.kill(slapd.pid, signal.SIGSTOP)
            # Directory logins waiting on the frozen directory while the local ones run.
            waiting = [threading.Thread(target=login, args=(url, f"dir{i}", f"dir-pw-{i}"))
                       for i in range(0 if args.control else 10)]
            for t in waiting:
                t.start()
            time.sleep(0.1)
            frozen = at_once(url, local_creds)
            for t in waiting:
                t.join()
            os.kill(slapd.pid, signal.SIGCONT)

            def summary(results):
                times = sorted(t for t, _ in results)
                errors = sorted({f for _, f in results if f is not None})
                count = sum(1 for _, f in results if f is not None)
                return statistics.median(times), times[-1], f"{count} {' '.join(errors)}".strip()

            n_med, n_max, n_err = summary(normal)
            f_med, f_max, f_err = summary(frozen)
            print(f"| measure | figure | target |")
            print(f"|---|---|---|")
            print(f"| local login, median of {args.rounds} | {ms(local_med)} | |")
            print(f"| directory login, median of {args.rounds} | {ms(dir_med)} | |")
            print(f"| directory login over local login, at the median | "
                  f"{ms(dir_med - local_med)} | at most 5 ms |")
            print(f"| {c} directory logins at once: errors, slowest | {burst_errors}, "
                  f"{ms(burst_max)} | 0, at most 1 s |")
            print(f"| {c} local logins at once: median, slowest, errors | {ms(n_med)}, "
                  f"{ms(n_max)}, {n_err} | |")
            second = ("again, directory answering (--control)" if args.control else
                      "again, directory frozen, 10 directory logins waiting")
            print(f"| {c} local logins at once {second} | "
                  f"{ms(f_med)}, {ms(f_max)}, {f_err} | as above |")
        finally:
            for p in reversed(procs):
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    sys.exit(main())
