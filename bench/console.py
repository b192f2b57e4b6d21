#!/usr/bin/env python3
"""The console's sessions pages with a million stored sessions (issue 14).

    python3 bench/console.py [--backends sqlite,postgres] [--sessions 1000000] [--runs 30]
                             [--binary target/release/sessiond]

For each backend: a fresh database, `sessiond migrate`, an admin `ops` made with the CLI, 1,000
users and N sessions written straight into the tables (90 % standard, 9 % bw, 1 % clientless;
three locations; one in ten expired), then `sessiond serve` on a free loopback port, a console
sign-in, and each case fetched --runs times in a row after two unmeasured warm-up fetches. The
time is the whole request on loopback as a browser's would be (query, rendering, transfer),
so it bounds the server's time from above. Target: every sessions page under 50 ms.
Standard library only; PostgreSQL needs psql and a server where user postgres may create
databases (127.0.0.1:5432, trust auth).
"""

import argparse
import datetime
import http.cookiejar
import os
import platform
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 50.0
USERS = 1000


def log(msg):
    print(f"[console-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Session i: created (and last active) (N - i) ms before now; every tenth (i % 10 = 5) two
# hours earlier, so expired under the default 30-minute timeout.
SQLITE_SEED = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO sessions (session_id, user_id, client_type, client_name, host, location,
                      created_at, created_by)
SELECT printf('c%08d', i), 'u' || (i % {users}),
       CASE WHEN i % 100 = 1 THEN 'clientless' WHEN i % 10 = 0 THEN 'bw' ELSE 'standard' END,
       'bench', '127.0.0.1', 'site-' || (i % 3), t, NULL
FROM (SELECT i, strftime('%Y-%m-%d %H:%M:%f', 'now',
             printf('%.3f seconds', -((? - i) * 0.001 + CASE WHEN i % 10 = 5 THEN 7200 ELSE 0 END))) AS t
      FROM n)
"""
# Their last activity, in a table of its own: equal to their creation.
SQLITE_SEED_ACTIVITY = """
INSERT INTO session_activity (session_id, last_activity)
SELECT session_id, created_at FROM sessions WHERE session_id BETWEEN printf('c%08d', ?) AND printf('c%08d', ?)
"""

POSTGRES_SEED = """
INSERT INTO users (user_id, password_hash, created_at)
SELECT 'u' || g, 'x', now() AT TIME ZONE 'utc' FROM generate_series(0, {users} - 1) g;
INSERT INTO sessions (session_id, user_id, client_type, client_name, host, location,
                      created_at, created_by)
SELECT 'c' || lpad(i::text, 8, '0'), 'u' || (i % {users}),
       CASE WHEN i % 100 = 1 THEN 'clientless' WHEN i % 10 = 0 THEN 'bw' ELSE 'standard' END,
       'bench', '127.0.0.1', 'site-' || (i % 3), t, NULL
FROM (SELECT i, (now() AT TIME ZONE 'utc') - ({n} - i) * interval '1 millisecond'
             - CASE WHEN i % 10 = 5 THEN interval '2 hours' ELSE interval '0' END AS t
      FROM generate_series(1, {n}) i) s;
INSERT INTO session_activity (session_id, last_activity)
SELECT session_id, created_at FROM sessions WHERE session_id LIKE 'c%';
VACUUM ANALYZE;
"""


class Sqlite:
    name = "SQLite"

    def __init__(self, work):
        self.path = Path(work) / "console-bench.db"
        self.url = f"sqlite://{self.path}"

    def seed(self, n):
        c = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        c.execute(
            "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < ?) "
            "INSERT INTO users (user_id, password_hash, created_at) "
            "SELECT 'u' || i, 'x', strftime('%Y-%m-%d %H:%M:%f', 'now') FROM g",
            (USERS - 1,),
        )
        chunk = 100_000
        for first in range(1, n + 1, chunk):
            last = min(first + chunk - 1, n)
            c.execute("BEGIN")
            c.execute(SQLITE_SEED.format(users=USERS), (first, last, n))
            c.execute(SQLITE_SEED_ACTIVITY, (first, last))
            c.execute("COMMIT")
        c.execute("ANALYZE")
        c.close()

    def deep_key(self, offset):
        c = sqlite3.connect(self.path)
        row = c.execute(
            "SELECT created_at, session_id FROM sessions ORDER BY created_at DESC, session_id DESC "
            "LIMIT 1 OFFSET ?",
            (offset,),
        ).fetchone()
        c.close()
        return row

    def drop(self):
        pass


class Postgres:
    name = "PostgreSQL"

    def __init__(self, work):
        self.db = f"sessiond_console_bench_{os.getpid()}"
        self.url = f"postgres://postgres@127.0.0.1:5432/{self.db}"

    def psql(self, sql, db="postgres"):
        r = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1",
             "-qAt", "-c", sql],
            capture_output=True, text=True,
        )
        if r.returncode != 0:
            raise SystemExit(f"psql failed: {r.stderr}")
        return r.stdout.strip()

    def create(self):
        self.psql(f"CREATE DATABASE {self.db}")

    def seed(self, n):
        for statement in POSTGRES_SEED.format(users=USERS, n=n).split(";"):
            if statement.strip():
                self.psql(statement, self.db)

    def deep_key(self, offset):
        out = self.psql(
            "SELECT created_at, session_id FROM sessions ORDER BY created_at DESC, session_id DESC "
            f"LIMIT 1 OFFSET {offset}",
            self.db,
        )
        return tuple(out.split("|"))

    def drop(self):
        self.psql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")


def key_param(created, session_id):
    # The console's page key: TIME~ID, time as %Y-%m-%dT%H:%M:%S%.f.
    return f"{str(created).replace(' ', 'T')}~{session_id}"


def run_backend(backend, args, work):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
    port = free_port()
    env.update(
        DATABASE_URL=backend.url,
        SESSIOND_BIND=f"127.0.0.1:{port}",
        SESSIOND_ADMIN_PASSWORD_FILE=str(Path(work) / "admin-password"),
        RUST_LOG="warn",
    )

    def cli(*argv, stdin=None):
        r = subprocess.run([args.binary, *argv], env=env, input=stdin, capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise SystemExit(f"sessiond {' '.join(argv)}: {r.stderr}")

    if hasattr(backend, "create"):
        backend.create()
    cli("migrate")
    cli("user", "add", "ops", "--password-stdin", stdin="ops-password\n")
    cli("user", "grant", "ops", "AdministratorRight")
    t0 = time.time()
    backend.seed(args.sessions)
    log(f"{backend.name}: {args.sessions:,} sessions seeded in {time.time() - t0:.0f} s")
    deep = backend.deep_key(args.sessions // 2)
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/admin/"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
        for _ in range(100):
            try:
                opener.open(base + "sign-in").read()
                break
            except OSError:
                time.sleep(0.1)
        body = urllib.parse.urlencode({"user": "ops", "password": "ops-password"}).encode()
        opener.open(base + "sign-in", data=body).read()
        if not any(c.name == "sessiond_console" for c in jar):
            raise SystemExit("the console sign-in did not set its cookie")
        cases = [
            ("first page (active, newest first, 50 rows)", "sessions"),
            ("filtered page (client type bw)", "sessions?client_type=bw"),
            ("filtered page (one user)", "sessions?user=u7"),
            ("filtered page (location, oldest first)", "sessions?location=site-1&order=asc"),
            ("deep page (after the 500,000th session)",
             "sessions?" + urllib.parse.urlencode({"after": key_param(*deep)})),
            ("sorted by last activity", "sessions?sort=activity"),
            ("expired sessions", "sessions?state=expired"),
            ("active and expired, 500 rows", "sessions?state=all&size=500"),
            ("overview (counts, chart, ended)", ""),
        ]
        results = []
        for label, path in cases:
            url = base + path
            for _ in range(2):
                page = opener.open(url).read().decode()
            if "End session" not in page and path.startswith("sessions"):
                raise SystemExit(f"{label}: the page shows no session:\n{page[:2000]}")
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                opener.open(url).read()
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            total = re.search(r'id="total">([^<]*)<', page)
            results.append((label, path, statistics.median(times),
                            times[int(len(times) * 0.95) - 1], times[-1],
                            total.group(1) if total else ""))
            log(f"{backend.name}: {label}: median {results[-1][2]:.1f} ms")
        return results
    finally:
        server.terminate()
        server.wait(30)
        backend.drop()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--sessions", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--binary", default=str(
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "sessiond"))
    args = p.parse_args()
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"date {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"commit {commit}; binary {args.binary}; {args.sessions:,} sessions; "
          f"{args.runs} runs per case\n")
    failed = False
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as work:
            backend = {"sqlite": Sqlite, "postgres": Postgres}[name](work)
            results = run_backend(backend, args, work)
        print(f"### {backend.name}\n")
        print("| case | median ms | p95 ms | max ms | total shown | under 50 ms |")
        print("|---|---:|---:|---:|---|---|")
        for label, path, med, p95, mx, total in results:
            ok = med < TARGET_MS
            failed |= not ok and path.startswith("sessions")
            print(f"| {label} | {med:.1f} | {p95:.1f} | {mx:.1f} | {total} | "
                  f"{'yes' if ok else 'NO'} |")
        print()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
