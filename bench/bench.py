#!/usr/bin/env python3
"""sessiond benchmark: the release server on SQLite and PostgreSQL, loaded by wrk on loopback.

Run it through scripts/bench (which builds the release binary with the bench-baseline feature
and makes sure wrk is installed); bench/README.md says what each case means.

For each backend: a fresh database, `sessiond migrate`, a user `bench` with the view and update
rights, `sessiond serve` on a free port; then one wrk run per case (64 connections by default),
each answer checked by bench/soap.lua. Every case is reported as requests/s, p50, p99 and max
latency, the server's peak RSS during the case, and its ratio to the baseline measured in the same
run (POST /bench/baseline: a fixed validateSession answer, no XML parsing, no database).
A case with any error (non-200 answer, a body without the expected element, a socket error or
timeout) FAILS: a benchmark of faults is worthless. --scale adds the 1-million-session cases.

Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LUA = REPO / "bench" / "soap.lua"
NS = "urn:sessiond:session:1"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ENDPOINT = "/services/SessionService"
BASELINE = "/bench/baseline"
USER, PASSWORD = "bench", "bench-password"  # at least SESSIOND_PASSWORD_MIN_LENGTH (8)
SESSION_TIMEOUT = "30m"

VALID_TRUE = "<tns:valid>true</tns:valid>"
LIST_END = '<tns:session xsi:nil="true"/></tns:listActiveSessionIdsResponse>'
SESSION_ID_ELEMENT = "<tns:sessionId>"

# Targets (issue 5 and the SPEC): what the report checks.
RATIO_TARGET = {"sqlite": 0.6, "postgres": 0.4}  # validate_one, validate_10k vs baseline
P99_TARGET_MS = 5.0  # validate_one, validate_10k
PEAK_RSS_TARGET_MIB = 64.0  # every normal case
LIST_GROWTH_TARGET_MIB = 32.0  # listActiveSessionIds over 100k active sessions
DELETE_TARGET_S = 60.0  # deleteExpiredSessionIds over 1M expired sessions
STALL_S = 1.0  # no validateSession may wait longer during that delete
# Issue 12's targets.
NGINX_RATIO_TARGET = {"sqlite": 0.75, "postgres": 0.7}  # validate req/s vs nginx's fixed answer
NGINX_P99_FACTOR = 1.5  # validate p99 at most this times nginx's p99
RSS_100K_TARGET_MIB = 48.0  # server RSS after 100k distinct sessions were validated
REVOCATION_P99_TARGET_MS = 50.0  # PostgreSQL, an end on another instance
REVOCATION_MAX_TARGET_MS = 100.0  # both backends
DELETE_STALL_TARGET_MS = 100.0  # no validateSession slower during the 1M removal

CASES = ("baseline", "nginx", "validate_one", "validate_10k", "validate_100k", "list_active_1k",
         "get_session", "revocation")
VALID_FALSE = "<tns:valid>false</tns:valid>"
BACKEND_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

# urllib without any proxy from the environment: everything here is loopback.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def utc_text(seconds_ago=0.0):
    """A UTC instant as both backends store it: `2026-11-21 10:05:07.042`."""
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def envelope(op, inner):
    return (
        f'<soap:Envelope xmlns:soap="{SOAP11}"><soap:Body>'
        f'<{op} xmlns="{NS}">{inner}</{op}>'
        "</soap:Body></soap:Envelope>"
    )


def soap_action(op):
    return f'"{NS}/{op}"'


def validate_body(session_id):
    return envelope("validateSession", f"<sessionId>{session_id}</sessionId>")


def settle():
    """Waits until the renewals of a finished validate run are stored (every second, SESSIOND_
    ACTIVITY_LAG) before the bench changes the same rows behind the server's back."""
    time.sleep(2.5)


def seeded_id(prefix, i):
    return f"{prefix}{i:08d}"


# ----- the databases -------------------------------------------------------------------------

SEED_COLUMNS = "session_id, user_id, client_type, location, created_at, last_activity"
# Seeded sessions: 'bench' + 8 digits, 13 characters; getSession's IDs are 43 characters.
SEEDED = "session_id LIKE 'bench%' AND length(session_id) = 13"


class SqliteDb:
    kind = "sqlite"

    def __init__(self, workdir):
        self.path = Path(workdir) / "bench.db"
        self.url = f"sqlite://{self.path}"
        self._conn = None

    def create(self):
        pass

    def drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def conn(self):
        if self._conn is None:
            # The server holds the file in WAL mode; wait for its write lock rather than fail.
            self._conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 60000")
        return self._conn

    def execute(self, sql, params=()):
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            n = c.execute(sql, params).rowcount
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return n

    def scalar(self, sql, params=()):
        return self.conn().execute(sql, params).fetchone()[0]

    @staticmethod
    def minus_ms(at, n):
        """SQL for the instant `at` (a literal) minus `n` (an SQL expression) milliseconds."""
        return f"strftime('%Y-%m-%d %H:%M:%f', '{at}', printf('%.3f seconds', -({n}) * 0.001))"

    def seed(self, prefix, first, count, at):
        """Sessions prefix00000001… straight into the table, 100k rows per transaction; session
        number i was created, and last active, (i mod 100,000) milliseconds before `at`: at most
        100 s apart, so that they all stay active through a long run."""
        chunk = 100_000
        i = first
        end = first + count
        when = self.minus_ms(at, "i % 100000")
        while i < end:
            last = min(i + chunk, end) - 1
            self.execute(
                f"WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                f"INSERT INTO sessions ({SEED_COLUMNS}) "
                f"SELECT ? || printf('%08d', i), 'bench', 'standard', 'bench', {when}, {when} FROM n",
                (i, last, prefix),
            )
            i = last + 1

    def after_bulk_change(self):
        pass


class PostgresDb:
    kind = "postgres"

    def __init__(self, host, port, user):
        self.host, self.port, self.user = host, port, user
        self.name = f"sessiond_bench_{os.getpid()}_{random.randrange(16**6):06x}"
        self.url = f"postgres://{user}@{host}:{port}/{self.name}"
        self.created = False

    def psql(self, sql, database=None):
        cmd = [
            "psql", "-h", self.host, "-p", str(self.port), "-U", self.user,
            "-d", database or self.name, "-v", "ON_ERROR_STOP=1", "-Atq", "-c", sql,
        ]
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise BenchError(f"psql failed ({sql[:80]}…): {p.stderr.strip()}")
        return p.stdout.strip()

    def create(self):
        self.psql(f"CREATE DATABASE {self.name}", database="postgres")
        self.created = True

    def drop(self):
        if self.created:
            self.psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", database="postgres")
            self.created = False

    @staticmethod
    def _inline(sql, params):
        # Parameters here are our own IDs and timestamps; quote them as literals.
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, sql
        out = parts[0]
        for value, rest in zip(params, parts[1:]):
            out += (str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'")
            out += rest
        return out

    def execute(self, sql, params=()):
        # The server stores renewed activity in one transaction a second, row by row; a bulk
        # change of the same rows may deadlock with it, and PostgreSQL then aborts one of the two.
        for attempt in range(5):
            try:
                return self.psql(self._inline(sql, params) + ";")
            except BenchError as e:
                if "deadlock detected" not in str(e) or attempt == 4:
                    raise
                log(f"postgres: deadlock with the server's activity flush, retrying: {sql[:60]}")
                time.sleep(1)

    def scalar(self, sql, params=()):
        return int(self.psql(self._inline(sql, params)))

    @staticmethod
    def minus_ms(at, n):
        """SQL for the instant `at` (a literal) minus `n` (an SQL expression) milliseconds."""
        return f"(TIMESTAMP '{at}' - ({n}) * INTERVAL '1 millisecond')"

    def seed(self, prefix, first, count, at):
        """As SqliteDb.seed, in one INSERT … SELECT over generate_series."""
        last = first + count - 1
        when = self.minus_ms(at, "i % 100000")
        self.psql(
            f"INSERT INTO sessions ({SEED_COLUMNS}) "
            f"SELECT '{prefix}' || lpad(i::text, 8, '0'), 'bench', 'standard', 'bench', "
            f"{when}, {when} FROM generate_series({first}, {last}) AS i"
        )

    def after_bulk_change(self):
        # What autovacuum does on its own shortly after a bulk change: fresh planner statistics
        # and no dead rows left from it, i.e. the steady state a long-running service sees.
        self.psql("VACUUM ANALYZE sessions")


# ----- the server ----------------------------------------------------------------------------


class Server:
    """`sessiond serve` on a free port, its log kept, its memory read from /proc."""

    def __init__(self, binary, env, cwd):
        self.binary, self.env, self.cwd = binary, env, cwd
        self.proc = None
        self.port = None
        self.lines = []
        self._listening = threading.Event()

    def start(self):
        self.proc = subprocess.Popen(
            [str(self.binary), "serve"], env=self.env, cwd=self.cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.time() + 60
        while not self._listening.wait(0.1):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise BenchError("the server did not start:\n" + "".join(self.lines[-20:]))
        return self

    def _read(self):
        pattern = re.compile(r"listening on http://127\.0\.0\.1:(\d+)" + re.escape(ENDPOINT))
        for line in self.proc.stdout:
            self.lines.append(line)
            m = pattern.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._listening.set()

    def mark(self):
        return len(self.lines)

    def pids(self):
        return [self.proc.pid]

    def problems_since(self, mark):
        """Log lines above info since `mark` (RUST_LOG=warn shows only those, and startup's)."""
        return [l.rstrip() for l in self.lines[mark:] if " INFO " not in l]

    def check_alive(self):
        code = self.proc.poll()
        if code is not None:
            how = f"signal {-code}" if code < 0 else f"status {code}"
            raise BenchError(
                f"the server exited ({how}) during the run; its last lines:\n"
                + "".join(self.lines[-15:])
            )

    def status(self):
        out = {}
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("VmRSS", "VmHWM"):
                        out[key] = int(value.split()[0]) / 1024.0  # kB -> MiB
        except OSError:
            pass
        if "VmRSS" not in out:  # gone, or a zombie
            self.check_alive()
            raise BenchError(f"cannot read the server's memory from /proc/{self.proc.pid}/status")
        return out

    def rss_mib(self):
        return self.status()["VmRSS"]

    def reset_peak(self):
        """Resets VmHWM to the current RSS."""
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    def wait_idle(self, limit=120.0):
        """Waits until the server has finished what a load left behind (wrk stops sending, but
        queued requests, getSession's Argon2 hashes above all, still run): until it uses under a
        tenth of a CPU over two half-second windows in a row. Returns the seconds waited."""
        t0 = time.perf_counter()
        quiet = 0
        while quiet < 2 and time.perf_counter() - t0 < limit:
            c0 = self.cpu_seconds()
            time.sleep(0.5)
            quiet = quiet + 1 if self.cpu_seconds() - c0 < 0.05 else 0
        return time.perf_counter() - t0

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchError("the server did not stop within 30 s of SIGTERM")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx on a free loopback port answering every request with one fixed body: the ceiling of
    what any HTTP server answers on this machine, beside the actix `baseline`. It gets as many
    worker processes as the server under test has workers (SESSIOND_WORKERS, default the CPU
    count), so both have the same number of event loops on the same cores."""

    BINARIES = ("nginx", "/usr/sbin/nginx")

    @classmethod
    def find(cls):
        for b in cls.BINARIES:
            path = shutil.which(b)
            if path:
                return path
        return None

    def __init__(self, binary, workdir, body, workers):
        if "$" in body:
            raise BenchError("the fixed answer holds a '$', which nginx's return would expand")
        self.binary, self.dir, self.workers = binary, Path(workdir) / "nginx", workers
        self.body = body.replace("\\", "\\\\").replace("'", "\\'")
        self.proc = None
        self.port = None

    def start(self):
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        d = self.dir
        conf = d / "nginx.conf"
        conf.write_text(f"""worker_processes {self.workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    # sessiond closes no keep-alive connection after N requests; nor does this.
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            default_type "text/xml; charset=utf-8";
            return 200 '{self.body}';
        }}
    }}
}}
""")
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(d), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.time() + 15
        while True:
            try:
                with HTTP.open(urllib.request.Request(self.url("/"), data=b"x"), timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                self.stop()
                raise BenchError(f"nginx did not start: {err.strip()} "
                                 f"{(d / 'error.log').read_text() if (d / 'error.log').exists() else ''}")
            time.sleep(0.1)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def pids(self):
        pids = [self.proc.pid]
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        return pids

    def mark(self):
        return 0

    def problems_since(self, mark):
        return []

    def status(self):
        out = {"VmRSS": 0.0, "VmHWM": 0.0}
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        key, _, value = line.partition(":")
                        if key in out:
                            out[key] += int(value.split()[0]) / 1024.0
            except OSError:
                pass
        return out

    def reset_peak(self):
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def cpu_seconds(self):
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / os.sysconf("SC_CLK_TCK")

    wait_idle = Server.wait_idle

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def percentile(sorted_values, q):
    """Nearest rank: the smallest value with at least q of them at or below it."""
    if not sorted_values:
        return None
    import math
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


class OthersCpu:
    """CPU time used by processes other than the bench's own (this script, the server, wrk,
    psql, and PostgreSQL's processes serving the bench database or the whole cluster) over an
    interval: on a shared machine, the figures of a case during which other work ran are noisy.
    Processes that start and end within the interval count only when their parent reaps them."""

    def __init__(self, server_pid, dbname=None, extra=()):
        self.ours = {os.getpid(), server_pid, *extra}
        self.dbname = dbname
        self.tick = os.sysconf("SC_CLK_TCK")
        self.start = self.snapshot()
        self.t0 = time.perf_counter()

    def is_ours(self, pid, comm):
        if pid in self.ours or comm in ("wrk", "psql"):
            return True
        if comm == "postgres":
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    title = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                return True
            # Backends name their database in their title; other databases' backends are not ours.
            m = re.match(r"postgres: (?:\S+: )?\S+ (\S+) [^ ]+\(\d+\)", title)
            return not m or m.group(1) == self.dbname
        return False

    def snapshot(self):
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            # utime + stime, and cutime + cstime (the time of reaped children)
            own = int(fields[11]) + int(fields[12])
            out[int(entry)] = (comm, own, own + int(fields[13]) + int(fields[14]))
        return out

    def share(self):
        """Their CPU as a share of all the machine's CPUs."""
        end = self.snapshot()
        elapsed = time.perf_counter() - self.t0
        used = 0
        for pid, (comm, own, total) in end.items():
            if self.is_ours(pid, comm):
                continue
            before = self.start.get(pid)
            if before and before[0] == comm:
                used += total - before[2]
            else:
                used += own  # new: only its own time (what it reaped may predate the interval)
        ncpu = len(os.sched_getaffinity(0))
        return min(1.0, max(0.0, used / self.tick / max(elapsed, 1e-6) / ncpu))


class RssSampler:
    """Samples the server's VmRSS every 20 ms on a thread."""

    def __init__(self, server, every=0.02):
        self.server, self.every = server, every
        self.before = server.rss_mib()
        self.max = self.before
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.max = max(self.max, self.server.rss_mib())
                self.samples += 1
            except (OSError, BenchError):
                return
            self._stop.wait(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.max = max(self.max, self.server.rss_mib())


def soap_call(server, op, inner, timeout=60, path=ENDPOINT):
    data = envelope(op, inner).encode()
    req = urllib.request.Request(
        server.url(path), data=data, method="POST",
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": soap_action(op)},
    )
    try:
        with HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def expect_call(server, op, inner, needle, timeout=60):
    status, body = soap_call(server, op, inner, timeout)
    text = body.decode("utf-8", "replace")
    if status != 200 or needle not in text:
        raise BenchError(f"{op}: HTTP {status}, expected {needle!r}: {text[:500]}")
    return text


# ----- wrk -----------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(out):
    """wrk's own summary plus the BENCHRESULT line of bench/soap.lua."""
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    if m:
        r["wrk_mean_ms"], r["wrk_max_ms"] = to_ms(m.group(1)), to_ms(m.group(3))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        r[f"wrk_p{pct}_ms"] = to_ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    r["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"^BENCHRESULT (.*)$", out, re.M)
    if not m:
        raise BenchError("wrk printed no BENCHRESULT line:\n" + out)
    fields = dict(kv.split("=", 1) for kv in m.group(1).split())
    lua = {k: float(v) if "." in v else int(v) for k, v in fields.items()}
    r["lua"] = lua
    r["requests"] = lua["requests"]
    r["p50_ms"] = lua["p50_us"] / 1000
    r["p99_ms"] = lua["p99_us"] / 1000
    r["p999_ms"] = lua["p999_us"] / 1000
    r["max_ms"] = lua["max_us"] / 1000
    if r["rps"] is None and lua["duration_us"]:
        r["rps"] = lua["requests"] * 1e6 / lua["duration_us"]
    m = re.search(r"^BENCHSAMPLE (.*)$", out, re.M)
    r["bad_sample"] = m.group(1) if m else None
    r["errors"] = (
        lua["bad_status"] + lua["bad_body"] + lua["err_connect"] + lua["err_read"]
        + lua["err_write"] + lua["err_timeout"]
    )
    # wrk's own count of the same (non-2xx, socket errors and timeouts), in case they differ.
    r["errors"] = max(r["errors"], r["non_2xx"] + r["socket_errors"])
    return r


class Wrk:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = Path(workdir)
        self.n = 0

    def command(self, server, path, body, expect, action, ids, duration, timeout):
        self.n += 1
        body_file = self.workdir / f"body{self.n}.xml"
        body_file.write_text(body)
        ids_file = ""
        if ids is not None:
            ids_file = self.workdir / f"ids{self.n}.txt"
            ids_file.write_text("\n".join(ids) + "\n")
        return [
            "wrk", "-t", str(self.args.threads), "-c", str(self.args.connections),
            "-d", f"{duration}s", "--latency", "--timeout", timeout, "-s", str(LUA),
            server.url(path), "--", expect, str(body_file), action, str(ids_file),
        ]

    def run(self, server, path, body, expect, action, ids=None, duration=None, timeout="10s"):
        cmd = self.command(server, path, body, expect, action, ids, duration or self.args.duration, timeout)
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"wrk failed ({p.returncode}): {p.stderr}{p.stdout}")
        r = parse_wrk(p.stdout)
        r["wrk_output"] = p.stdout
        return r

    def start(self, server, path, body, expect, action, ids=None, duration=600, timeout="30s"):
        cmd = self.command(server, path, body, expect, action, ids, duration, timeout)
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def finish(proc):
        proc.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise BenchError(f"wrk failed ({proc.returncode}): {err}{out}")
        r = parse_wrk(out)
        r["wrk_output"] = out
        return r


# ----- the cases -----------------------------------------------------------------------------


class Run:
    """One backend: database, user, server, cases."""

    def __init__(self, kind, args, binary, workdir):
        self.kind, self.args, self.binary = kind, args, binary
        self.workdir = Path(workdir)
        self.db = SqliteDb(workdir) if kind == "sqlite" else PostgresDb(args.pg_host, args.pg_port, args.pg_user)
        self.wrk = Wrk(args, workdir)
        self.server = None
        self.sid = None
        self.cases = []
        self.scale = None
        self.problems = []
        self.revocation = None
        self.nginx_skipped = None
        self.server_log = []  # the server's log lines above info, all of the run

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_") and k != "DATABASE_URL"}
        env.update(
            DATABASE_URL=self.db.url,
            SESSIOND_BIND="127.0.0.1:0",
            SESSIOND_LOCATION="bench",
            SESSIOND_SESSION_TIMEOUT=SESSION_TIMEOUT,
            SESSIOND_ADMIN_PASSWORD_FILE=str(self.workdir / "admin-password.txt"),
            RUST_LOG="warn,sessiond::startup=info",
        )
        env.update(kv.split("=", 1) for kv in self.args.server_env)
        return env

    def cli(self, *argv, stdin=None):
        p = subprocess.run(
            [str(self.binary), *argv], env=self.env(), cwd=self.workdir,
            input=stdin, capture_output=True, text=True,
        )
        if p.returncode != 0:
            raise BenchError(f"sessiond {' '.join(argv)} failed: {p.stderr.strip()}")

    def setup(self):
        log(f"{self.kind}: fresh database {self.db.url}")
        self.db.create()
        self.cli("migrate")
        self.cli("user", "add", USER, "--password-stdin", stdin=f"{PASSWORD}\n")
        self.cli("user", "grant", USER, "ViewSessionRight")
        self.cli("user", "grant", USER, "UpdateSessionRight")
        self.server = Server(self.binary, self.env(), self.workdir).start()
        log(f"{self.kind}: server pid {self.server.proc.pid} on port {self.server.port}")
        text = expect_call(
            self.server, "getSession", f"<userId>{USER}</userId><password>{PASSWORD}</password>",
            SESSION_ID_ELEMENT,
        )
        self.sid = re.search(r"<tns:sessionId>([^<]+)</tns:sessionId>", text).group(1)

    def teardown(self):
        try:
            if self.server is not None:
                if self.server.proc.poll() is not None:
                    self.problems.append(
                        f"the server had exited with status {self.server.proc.returncode} before "
                        f"the bench stopped it; its last lines: "
                        + " | ".join(l.rstrip() for l in self.server.lines[-10:])
                    )
                code = self.server.stop()
                if code not in (0, None):
                    self.problems.append(f"the server exited with status {code} on SIGTERM")
                self.server_log += self.server.problems_since(0)
        finally:
            self.db.drop()

    def case(self, name, path, body, expect, action, ids=None, warmup=True, timeout="10s", server=None):
        log(f"{self.kind}: {name}")
        server = server or self.server
        server.wait_idle()
        if warmup and self.args.warmup > 0:
            self.wrk.run(server, path, body, expect, action, ids, duration=self.args.warmup, timeout=timeout)
            server.wait_idle()
        self.wait_for_quiet()
        mark = server.mark()
        server.reset_peak()
        cpu0 = server.cpu_seconds()
        others = OthersCpu(server.proc.pid, getattr(self.db, "name", None), server.pids())
        r = self.wrk.run(server, path, body, expect, action, ids, timeout=timeout)
        # The requests still queued when wrk stops are part of the case.
        drain = server.wait_idle()
        st = server.status()
        r.update(
            case=name,
            peak_rss_mib=st["VmHWM"],
            rss_after_mib=st["VmRSS"],
            server_cpu_s=server.cpu_seconds() - cpu0,
            drain_s=drain,
            others_cpu=others.share(),
            server_log=server.problems_since(mark),
        )
        r["failed"] = r["errors"] > 0 or r["lua"]["ok"] == 0
        if r["failed"]:
            log(f"{self.kind}: {name} FAILED: {r['errors']} errors; first bad answer: {r['bad_sample']}")
        self.cases.append(r)
        return r

    def wait_for_quiet(self):
        """With --wait-quiet N: waits up to N seconds for other processes to leave the CPUs
        alone (under 5% of them over 3 s) before a measurement."""
        deadline = time.perf_counter() + self.args.wait_quiet
        told = False
        while time.perf_counter() < deadline:
            probe = OthersCpu(self.server.proc.pid, getattr(self.db, "name", None))
            time.sleep(3)
            share = probe.share()
            if share < 0.05:
                return
            if not told:
                log(f"{self.kind}: other processes use {share:.0%} of the CPUs; waiting for quiet")
                told = True

    def normal_cases(self):
        sid = self.sid
        want = self.args.cases
        vbody = validate_body(sid)
        va = soap_action("validateSession")
        if "baseline" in want:
            self.case("baseline", BASELINE, vbody, VALID_TRUE, va)
        if "nginx" in want:
            self.nginx_case(vbody, va)
        if "validate_one" in want:
            expect_call(self.server, "validateSession", f"<sessionId>{sid}</sessionId>", VALID_TRUE)
            self.case("validate_one", ENDPOINT, vbody, VALID_TRUE, va)
        if "validate_10k" in want:
            self.db.seed("bench", 1, 10_000, utc_text())
            ids = [seeded_id("bench", i) for i in range(1, 10_001)]
            random.Random(10).shuffle(ids)
            self.case("validate_10k", ENDPOINT, validate_body("{ID}"), VALID_TRUE, va, ids=ids)
            settle()
            self.db.execute(f"DELETE FROM sessions WHERE {SEEDED}")
        if "validate_100k" in want:
            self.validate_100k(va)
        if "list_active_1k" in want:
            # Exactly 1000 active sessions: the bench session and 999 seeded ones.
            self.db.seed("bench", 1, 999, utc_text())
            self.db.after_bulk_change()
            active = self.db.scalar("SELECT count(*) FROM sessions")
            if active != 1000:
                raise BenchError(f"expected 1000 stored sessions before list_active_1k, found {active}")
            self.check_list(1000)
            self.case(
                "list_active_1k", ENDPOINT,
                envelope("listActiveSessionIds", f"<sessionId>{sid}</sessionId>"),
                LIST_END, soap_action("listActiveSessionIds"),
            )
        if "get_session" in want:
            self.case(
                "get_session", ENDPOINT,
                envelope("getSession", f"<userId>{USER}</userId><password>{PASSWORD}</password>"),
                SESSION_ID_ELEMENT, soap_action("getSession"), timeout="30s",
            )
        if "revocation" in want:
            self.revocation_case()

    def nginx_case(self, vbody, va):
        binary = Nginx.find()
        if binary is None:
            log(f"{self.kind}: nginx is not installed; no nginx case")
            self.nginx_skipped = "nginx is not installed"
            return
        # The answer the server gives to validateSession on the bench session, byte for byte.
        status, answer = soap_call(self.server, "validateSession", f"<sessionId>{self.sid}</sessionId>")
        answer = answer.decode("utf-8", "replace")
        if status != 200 or VALID_TRUE not in answer:
            raise BenchError(f"validateSession on the bench session: HTTP {status}: {answer[:300]!r}")
        workers = dict(kv.split("=", 1) for kv in self.args.server_env).get("SESSIOND_WORKERS")
        workers = int(workers) if workers else len(os.sched_getaffinity(0))
        nginx = Nginx(binary, self.workdir, answer, workers).start()
        try:
            r = self.case("nginx", ENDPOINT, vbody, VALID_TRUE, va, server=nginx)
            r["nginx_workers"] = workers
            r["response_bytes"] = len(answer.encode())
        finally:
            nginx.stop()

    def validate_100k(self, va):
        """validateSession on 100,000 distinct sessions; first every one of them is validated
        once (so a cache holds them all), then the wrk case; the server's RSS is read after
        both."""
        n = 100_000
        self.db.seed("bench", 1, n, utc_text())
        self.db.after_bulk_change()
        ids = [seeded_id("bench", i) for i in range(1, n + 1)]
        log(f"{self.kind}: validate_100k: validating each of the {n:,} sessions once")
        t0 = time.perf_counter()
        self.validate_each(ids)
        primed_s = time.perf_counter() - t0
        self.server.wait_idle()
        rss_primed = self.server.rss_mib()
        random.Random(100).shuffle(ids)
        r = self.case("validate_100k", ENDPOINT, validate_body("{ID}"), VALID_TRUE, va, ids=ids)
        r.update(rss_after_100k_validated_mib=rss_primed, prime_s=primed_s)
        settle()
        self.db.execute(f"DELETE FROM sessions WHERE {SEEDED}")

    def validate_each(self, ids, threads=8):
        """validateSession on every ID once, on keep-alive connections from a few threads;
        every answer must be valid."""
        import http.client
        chunks = [ids[i::threads] for i in range(threads)]
        failures = []

        def work(chunk):
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
            headers = {"Content-Type": "text/xml; charset=utf-8",
                       "SOAPAction": soap_action("validateSession")}
            try:
                for sid in chunk:
                    conn.request("POST", ENDPOINT, validate_body(sid), headers)
                    resp = conn.getresponse()
                    body = resp.read().decode(errors="replace")
                    if resp.status != 200 or VALID_TRUE not in body:
                        failures.append(f"{sid}: HTTP {resp.status}: {body[:200]}")
                        return
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"{type(e).__name__}: {e}")
            finally:
                conn.close()

        workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if failures:
            raise BenchError(f"validateSession on the seeded sessions: {failures[0]}")

    def revocation_case(self):
        """An end on another writer, then validateSession here until false, N times: on
        PostgreSQL closeSession on a second instance A while B (self.server) has seen the session
        valid; on SQLite `sessiond sessions delete ID` from the CLI while the server serves.
        The time from A's answer (the CLI's exit) to B's first false."""
        rounds = self.args.revocation_rounds
        log(f"{self.kind}: revocation: {rounds} rounds")
        self.db.seed("revoke", 1, rounds, utc_text())
        self.db.after_bulk_change()
        other = None
        if self.kind == "postgres":
            env = self.env()
            env["SESSIOND_LOCATION"] = "bench-a"
            other = Server(self.binary, env, self.workdir).start()
            log(f"{self.kind}: revocation: instance A pid {other.proc.pid} on port {other.port}")
        lags, polls = [], []
        try:
            for i in range(1, rounds + 1):
                sid = seeded_id("revoke", i)
                inner = f"<sessionId>{sid}</sessionId>"
                expect_call(self.server, "validateSession", inner, VALID_TRUE)
                if other is not None:
                    expect_call(other, "closeSession", inner, "closeSessionResponse")
                else:
                    self.cli("sessions", "delete", sid)
                t0 = time.perf_counter()
                n = 0
                while True:
                    n += 1
                    status, body = soap_call(self.server, "validateSession", inner)
                    body = body.decode("utf-8", "replace")
                    if status == 200 and VALID_FALSE in body:
                        break
                    if status != 200 or VALID_TRUE not in body:
                        raise BenchError(f"revocation: validateSession: HTTP {status}: {body[:300]!r}")
                    if time.perf_counter() - t0 > 10:
                        raise BenchError(f"revocation: {sid} still valid on B 10 s after its end")
                lags.append((time.perf_counter() - t0) * 1000)
                polls.append(n)
        finally:
            if other is not None:
                code = other.stop()
                if code not in (0, None):
                    self.problems.append(f"instance A exited with status {code} on SIGTERM")
                self.server_log += [f"A: {l}" for l in other.problems_since(0)]
        lags.sort()
        self.revocation = {
            "rounds": rounds,
            "how": "closeSession on instance A, validateSession on B" if other is not None
                   else "`sessiond sessions delete ID` from the CLI, validateSession on the server",
            "p50_ms": percentile(lags, 0.5), "p99_ms": percentile(lags, 0.99), "max_ms": lags[-1],
            "mean_polls": sum(polls) / len(polls),
        }
        self.db.execute("DELETE FROM sessions WHERE session_id LIKE 'revoke%'")

    def check_list(self, expected, timeout=60):
        """One listActiveSessionIds over HTTP: well-formed, `expected` sessions then one nil."""
        t0 = time.perf_counter()
        status, body = soap_call(
            self.server, "listActiveSessionIds", f"<sessionId>{self.sid}</sessionId>", timeout,
        )
        elapsed = time.perf_counter() - t0
        if status != 200:
            raise BenchError(f"listActiveSessionIds: HTTP {status}: {body[:500]!r}")
        root = ET.fromstring(body)
        resp = root.find(f"{{{SOAP11}}}Body/{{{NS}}}listActiveSessionIdsResponse")
        if resp is None:
            raise BenchError(f"listActiveSessionIds: no response element: {body[:500]!r}")
        items = resp.findall(f"{{{NS}}}session")
        nil = [i.get(f"{{{XSI}}}nil") == "true" for i in items]
        if len(items) != expected + 1 or not nil[-1] or any(nil[:-1]):
            raise BenchError(
                f"listActiveSessionIds: {len(items)} session elements ({sum(nil)} nil), "
                f"expected {expected} then one nil"
            )
        return elapsed, len(body)

    # ----- --scale ----------------------------------------------------------------------------

    def restart(self):
        """A new server process on the same database: the scale cases measure memory growth,
        which memory the earlier cases left allocated (getSession's Argon2 blocks) would hide."""
        code = self.server.stop()
        if code != 0:
            self.problems.append(f"the server exited with status {code} on SIGTERM")
        self.server_log += self.server.problems_since(0)
        self.server = Server(self.binary, self.env(), self.workdir).start()
        log(f"{self.kind}: restarted the server: pid {self.server.proc.pid} on port {self.server.port}")

    def scale_cases(self, small_validate):
        s = self.scale = {}
        self.restart()
        server = self.server
        sid = self.sid
        va = soap_action("validateSession")

        total = self.args.scale_count
        listed = total // 10
        s["count"], s["listed"] = total, listed
        # listActiveSessionIds over N/10 (100k) active sessions: the bench session and the rest
        # seeded.
        log(f"{self.kind}: scale: seeding {listed:,} active sessions")
        self.db.execute("DELETE FROM sessions WHERE session_id <> ?", (sid,))
        t0 = time.perf_counter()
        self.db.seed("bench", 1, listed - 1, utc_text())
        self.db.after_bulk_change()
        s["seed_100k_s"] = time.perf_counter() - t0
        calls = []
        for i in range(3):
            log(f"{self.kind}: scale: list_active_100k call {i + 1}")
            time.sleep(1.5)
            self.wait_for_quiet()
            server.reset_peak()
            with RssSampler(server) as rss:
                elapsed, size = self.check_list(listed, timeout=300)
            hwm = server.status()["VmHWM"]
            calls.append({
                "duration_s": elapsed, "response_bytes": size,
                "rss_before_mib": rss.before, "rss_max_sampled_mib": rss.max,
                "growth_sampled_mib": rss.max - rss.before,
                "growth_hwm_mib": hwm - rss.before, "rss_after_mib": server.rss_mib(),
                "samples": rss.samples,
            })
        s["list_active_100k"] = calls

        # validateSession on 10k distinct IDs among 1M stored sessions.
        log(f"{self.kind}: scale: seeding up to {total:,} active sessions")
        t0 = time.perf_counter()
        self.db.seed("bench", listed, total - listed + 1, utc_text())
        self.db.after_bulk_change()
        s["seed_900k_s"] = time.perf_counter() - t0
        active = self.db.scalar(f"SELECT count(*) FROM sessions WHERE {SEEDED}")
        if active != total:
            raise BenchError(f"expected {total:,} seeded sessions, found {active}")
        ids = [seeded_id("bench", i) for i in random.Random(1).sample(range(1, total + 1), min(10_000, total))]
        r = self.case("validate_10k_of_1m", ENDPOINT, validate_body("{ID}"), VALID_TRUE, va, ids=ids)
        r["ratio_to_small_store"] = r["rps"] / small_validate["rps"] if small_validate else None
        s["validate_10k_of_1m"] = r

        # deleteExpiredSessionIds over 1M expired sessions, under a validateSession load on
        # 1000 active ones.
        log(f"{self.kind}: scale: expiring {total:,} sessions")
        settle()
        # Session i was last active 2 h + i ms ago (the oldest 2 h 17 min ago), and created then.
        two_hours_ago = utc_text(2 * 3600)
        number = "CAST(substr(session_id, 6) AS INTEGER)"
        when = self.db.minus_ms(two_hours_ago, number)
        for _ in range(5):
            self.db.execute(f"UPDATE sessions SET created_at = {when}, last_activity = {when} WHERE {SEEDED}")
            time.sleep(1.5)
            still = self.db.scalar(
                f"SELECT count(*) FROM sessions WHERE {SEEDED} AND last_activity > ?", (two_hours_ago,)
            )
            if still == 0:
                break
        else:
            raise BenchError("seeded sessions keep being renewed after the validate run")
        self.db.seed("live", 1, 1000, utc_text())
        self.db.after_bulk_change()
        expired = self.db.scalar("SELECT count(*) FROM sessions WHERE last_activity <= ?", (two_hours_ago,))
        live = [seeded_id("live", i) for i in range(1, 1001)]
        random.Random(2).shuffle(live)
        expect_call(server, "validateSession", f"<sessionId>{sid}</sessionId>", VALID_TRUE)
        log(f"{self.kind}: scale: deleteExpiredSessionIds over {expired} expired sessions under load")
        self.wait_for_quiet()
        mark = server.mark()
        load = self.wrk.start(server, ENDPOINT, validate_body("{ID}"), VALID_TRUE, va, ids=live)
        try:
            time.sleep(1.0)
            server.reset_peak()
            others = OthersCpu(server.proc.pid, getattr(self.db, "name", None))
            with RssSampler(server) as rss:
                t0 = time.perf_counter()
                text = expect_call(
                    server, "deleteExpiredSessionIds", f"<sessionId>{sid}</sessionId>",
                    "<tns:deletedCount>", timeout=900,
                )
                elapsed = time.perf_counter() - t0
            others_share = others.share()
            time.sleep(1.0)
        finally:
            wr = Wrk.finish(load)
        deleted = int(re.search(r"<tns:deletedCount>(\d+)<", text).group(1))
        remaining = self.db.scalar("SELECT count(*) FROM sessions")
        history = self.db.scalar("SELECT count(*) FROM session_history WHERE end_reason = 'expired'")
        wr.update(case="validate_during_delete", server_log=server.problems_since(mark))
        wr["failed"] = wr["errors"] > 0 or wr["lua"]["ok"] == 0
        s["delete_expired_1m"] = {
            "expired_before": expired, "duration_s": elapsed, "deleted_count": deleted,
            "remaining_sessions": remaining, "history_expired": history,
            "rss_before_mib": rss.before, "growth_sampled_mib": rss.max - rss.before,
            "peak_rss_mib": server.status()["VmHWM"],
            "others_cpu": others_share,
            "load": wr,
        }
        if wr["failed"]:
            log(f"{self.kind}: validate load during the delete FAILED: {wr['errors']} errors; {wr['bad_sample']}")
        if deleted != expired or remaining != 1001:
            self.problems.append(
                f"deleteExpiredSessionIds: deletedCount {deleted}, {expired} were expired, "
                f"{remaining} sessions left (expected 1001)"
            )


# ----- the report ----------------------------------------------------------------------------


def fmt_ms(ms):
    if ms is None:
        return "–"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"


def fmt_rps(x):
    return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:,.1f}")


def fmt_ratio(x):
    if x is None:
        return "–"
    return f"{x:.2f}" if x >= 0.1 else f"{x:.2g}"


def cpu_per_request(c):
    """The server's CPU time per answered request, in µs (requests still queued when wrk
    stopped are included in the time, not in the count: a slight overestimate)."""
    if not c.get("requests"):
        return "–"
    us = c["server_cpu_s"] / c["requests"] * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def git_commit():
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return {
        "nproc": nproc, "cpu": model, "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg": load,
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0].split(" Copyright")[0] if (wrk.stdout + wrk.stderr) else "?",
    }


def cpu_busy(seconds=2.0):
    """The share of all CPUs busy over `seconds` (from /proc/stat), before the bench starts."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v), idle
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
        return 1.0 - (i1 - i0) / max(1, t1 - t0)
    except (OSError, ValueError):
        return None


def check(results, line, ok):
    results.append((ok, line))


def report(meta, runs):
    out = []
    p = out.append
    p("# sessiond benchmark")
    p("")
    p(f"- date: {meta['date']}")
    p(f"- commit: {meta['commit']}; binary: {meta['binary']}")
    m = meta["machine"]
    busy = meta.get("cpu_busy_before")
    p(f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['kernel']}; before the "
      f"run: {'?' if busy is None else f'{busy:.0%}'} of the CPUs busy, load average {m['loadavg']}")
    p(f"- load: {m['wrk']}, {meta['threads']} threads, {meta['connections']} connections, "
      f"{meta['duration']} s per case (after {meta['warmup']} s of warm-up), on loopback; wrk, the "
      f"server and PostgreSQL share the machine's CPUs")
    if meta.get("postgres"):
        p(f"- PostgreSQL: {meta['postgres']}")
    p(f"- command: `{meta['command']}`")
    if meta.get("server_env"):
        p(f"- server settings: {', '.join(meta['server_env'])} (others at their defaults)")
    busy = meta.get("cpu_busy_before")
    if busy is not None and busy > 0.15:
        p(f"- **warning: the machine was busy when the run started ({busy:.0%} of the CPUs in use "
          f"by other processes): they compete with the server, wrk and PostgreSQL, and the figures, "
          f"tail latencies above all, are noisy**")
    checks = []
    for run in runs:
        name = BACKEND_NAMES[run["backend"]]
        p("")
        p(f"## {name}")
        p("")
        if run.get("error"):
            p(f"**FAILED: {run['error']}**")
        cases = run["cases"]
        base = next((c for c in cases if c["case"] == "baseline" and not c["failed"]), None)
        if cases:
            p("| case | req/s | p50 | p99 | max | peak RSS MiB | RSS after MiB | ratio to baseline | server CPU µs/req | errors | others' CPU |")
            p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in cases:
            ratio = c["rps"] / base["rps"] if base and c["rps"] else None
            c["ratio_to_baseline"] = ratio
            label = c["case"] + (" **FAILED**" if c["failed"] else "")
            p(f"| {label} | {fmt_rps(c['rps'])} | {fmt_ms(c['p50_ms'])} | {fmt_ms(c['p99_ms'])} | "
              f"{fmt_ms(c['max_ms'])} | {c['peak_rss_mib']:.1f} | {c['rss_after_mib']:.1f} | "
              f"{fmt_ratio(ratio)} | {cpu_per_request(c)} | {c['errors']} | "
              f"{c['others_cpu']:.0%} |")
        if cases:
            p("")
            p("server CPU µs/req: the server process's CPU time (all threads) per request, "
              "PostgreSQL's not included. others' CPU: the share of the machine's CPUs that "
              "processes other than the bench's (server, wrk, PostgreSQL serving the bench "
              "database) used during the case.")
            noisy = [c["case"] for c in cases if c["others_cpu"] > 0.05]
            if noisy:
                p(f"**Noisy: other work took over 5% of the CPUs during {', '.join(noisy)}; "
                  f"run again on a quiet machine before quoting these.**")
        for c in cases:
            if c["failed"]:
                p("")
                p(f"**{c['case']} FAILED**: {c['errors']} errors (non-200: {c['lua']['bad_status']}, "
                  f"body without the expected element: {c['lua']['bad_body']}, socket: "
                  f"{c['lua']['err_connect'] + c['lua']['err_read'] + c['lua']['err_write']}, "
                  f"timeouts: {c['lua']['err_timeout']}); first bad answer: `{c['bad_sample']}`")
        ng = next((c for c in cases if c["case"] == "nginx" and not c["failed"]), None)
        if ng:
            p("")
            p(f"nginx: {ng['nginx_workers']} worker processes (as many as the server's workers), "
              f"answering every request with the server's own {ng['response_bytes']}-byte "
              f"validateSession answer. Against it:")
            p("")
            p("| case | req/s ÷ nginx | p99 ÷ nginx p99 |")
            p("|---|---:|---:|")
            for c in cases:
                if c["case"].startswith("validate_") and not c["failed"]:
                    c["ratio_to_nginx"] = c["rps"] / ng["rps"] if ng["rps"] else None
                    c["p99_to_nginx"] = c["p99_ms"] / ng["p99_ms"] if ng["p99_ms"] else None
                    p(f"| {c['case']} | {fmt_ratio(c['ratio_to_nginx'])} | {fmt_ratio(c['p99_to_nginx'])} |")
                    if c["case"] in ("validate_one", "validate_10k"):
                        goal = NGINX_RATIO_TARGET[run["backend"]]
                        r = c["ratio_to_nginx"]
                        check(checks, f"{name} {c['case']}: {fmt_ratio(r)} × nginx req/s ≥ {goal}",
                              r is not None and r >= goal)
                        q = c["p99_to_nginx"]
                        check(checks, f"{name} {c['case']}: p99 {fmt_ratio(q)} × nginx p99 ≤ {NGINX_P99_FACTOR}",
                              q is not None and q <= NGINX_P99_FACTOR)
        elif run.get("nginx_skipped"):
            p("")
            p(f"No nginx case: {run['nginx_skipped']}.")
        v100 = next((c for c in cases if c["case"] == "validate_100k"), None)
        if v100:
            p("")
            p(f"validate_100k: server RSS {v100['rss_after_100k_validated_mib']:.1f} MiB once each of "
              f"the 100,000 sessions was validated ({v100['prime_s']:.1f} s), "
              f"{v100['rss_after_mib']:.1f} MiB after the case")
            check(checks, f"{name} validate_100k: RSS {v100['rss_after_100k_validated_mib']:.1f} MiB with "
                  f"100k validated < {RSS_100K_TARGET_MIB:g} MiB",
                  v100["rss_after_100k_validated_mib"] < RSS_100K_TARGET_MIB)
        rv = run.get("revocation")
        if rv:
            p("")
            p(f"revocation ({rv['how']}; {rv['rounds']} rounds, time from the end to the first "
              f"false): p50 {fmt_ms(rv['p50_ms'])}, p99 {fmt_ms(rv['p99_ms'])}, max "
              f"{fmt_ms(rv['max_ms'])}; {rv['mean_polls']:.2f} validate calls per round on average")
            if run["backend"] == "postgres":
                check(checks, f"{name} revocation: p99 {fmt_ms(rv['p99_ms'])} < {REVOCATION_P99_TARGET_MS:g} ms",
                      rv["p99_ms"] < REVOCATION_P99_TARGET_MS)
            check(checks, f"{name} revocation: max {fmt_ms(rv['max_ms'])} ≤ {REVOCATION_MAX_TARGET_MS:g} ms",
                  rv["max_ms"] <= REVOCATION_MAX_TARGET_MS)
        target = RATIO_TARGET[run["backend"]]
        normal = [c for c in cases if c["case"] in
                  ("baseline", "validate_one", "validate_10k", "list_active_1k", "get_session")]
        for c in normal:
            if c["case"] in ("validate_one", "validate_10k"):
                r = c.get("ratio_to_baseline")
                check(checks, f"{name} {c['case']}: ratio to baseline {'–' if r is None else f'{r:.2f}'} ≥ {target}",
                      r is not None and r >= target and not c["failed"])
                check(checks, f"{name} {c['case']}: p99 {fmt_ms(c['p99_ms'])} < {P99_TARGET_MS:g} ms",
                      c["p99_ms"] < P99_TARGET_MS and not c["failed"])
            check(checks, f"{name} {c['case']}: peak RSS {c['peak_rss_mib']:.1f} MiB < {PEAK_RSS_TARGET_MIB:g} MiB",
                  c["peak_rss_mib"] < PEAK_RSS_TARGET_MIB)
        for c in cases:
            check(checks, f"{name} {c['case']}: no errors", not c["failed"])
        s = run.get("scale")
        if s:
            p("")
            p(f"### {name}, --scale")
            p("")
            v = s.get("validate_10k_of_1m")
            small = next((c for c in cases if c["case"] == "validate_10k"), None)
            if v:
                p(f"- validateSession on 10k distinct IDs among {s.get('count', 1_000_000):,} stored sessions: "
                  f"{fmt_rps(v['rps'])} req/s, p50 {fmt_ms(v['p50_ms'])}, p99 {fmt_ms(v['p99_ms'])}, "
                  f"max {fmt_ms(v['max_ms'])}, peak RSS {v['peak_rss_mib']:.1f} MiB; "
                  + (f"{v['ratio_to_small_store']:.2f} × the small-store validate_10k "
                     f"({fmt_rps(small['rps'])} req/s), " if v.get("ratio_to_small_store") and small else "")
                  + f"{v['ratio_to_baseline']:.2f} × baseline; others' CPU {v['others_cpu']:.0%}"
                  + (" **FAILED**" if v["failed"] else ""))
            calls = s.get("list_active_100k")
            if calls:
                p(f"- listActiveSessionIds over {s.get('listed', 100_000):,} active sessions "
                  f"({calls[0]['response_bytes'] / 1048576:.1f} MiB response, well-formed, {s.get('listed', 100_000):,} "
                  f"sessions + the nil):")
                p("")
                p("  | call | duration | RSS before MiB | growth (sampled every 20 ms) MiB | growth (VmHWM) MiB | RSS after MiB |")
                p("  |---|---:|---:|---:|---:|---:|")
                for i, c in enumerate(calls, 1):
                    p(f"  | {i} | {c['duration_s']:.2f} s | {c['rss_before_mib']:.1f} | "
                      f"{c['growth_sampled_mib']:.1f} | {c['growth_hwm_mib']:.1f} | {c['rss_after_mib']:.1f} |")
                p("")
                worst = max(max(c["growth_sampled_mib"], c["growth_hwm_mib"]) for c in calls)
                check(checks, f"{name} listActiveSessionIds over {s.get('listed', 100_000):,}: RSS growth {worst:.1f} MiB "
                      f"< {LIST_GROWTH_TARGET_MIB:g} MiB", worst < LIST_GROWTH_TARGET_MIB)
            d = s.get("delete_expired_1m")
            if d:
                w = d["load"]
                stalled = w["max_ms"] > STALL_S * 1000 or w["lua"]["err_timeout"] > 0
                p(f"- deleteExpiredSessionIds over {d['expired_before']:,} expired sessions: "
                  f"{d['duration_s']:.1f} s, deletedCount {d['deleted_count']:,}, "
                  f"{d['remaining_sessions']:,} sessions left; server RSS growth during it "
                  f"{d['growth_sampled_mib']:.1f} MiB (peak {d['peak_rss_mib']:.1f} MiB); "
                  f"others' CPU during it {d['others_cpu']:.0%}")
                p(f"- the concurrent validateSession load on 1000 active sessions "
                  f"({w['requests']:,} requests over the delete ± 1 s): {fmt_rps(w['rps'])} req/s, "
                  f"p50 {fmt_ms(w['p50_ms'])}, p99 {fmt_ms(w['p99_ms'])}, max {fmt_ms(w['max_ms'])}; "
                  f"stall over {STALL_S:g} s: {'YES' if stalled else 'no'}; errors: {w['errors']}"
                  + (f" **FAILED**: first bad answer `{w['bad_sample']}`" if w["failed"] else ""))
                check(checks, f"{name} deleteExpiredSessionIds over {d['expired_before']:,}: "
                      f"{d['duration_s']:.1f} s < {DELETE_TARGET_S:g} s", d["duration_s"] < DELETE_TARGET_S)
                check(checks, f"{name} validateSession during the delete: max {fmt_ms(w['max_ms'])} "
                      f"≤ {DELETE_STALL_TARGET_MS:g} ms (issue 12)", w["max_ms"] <= DELETE_STALL_TARGET_MS)
                check(checks, f"{name} deleteExpiredSessionIds: deletedCount {d['deleted_count']:,} = "
                      f"{d['expired_before']:,} expired",
                      d["deleted_count"] == d["expired_before"] and d["remaining_sessions"] == 1001)
                check(checks, f"{name} validateSession during the delete: max {fmt_ms(w['max_ms'])}, "
                      f"no stall over {STALL_S:g} s, no errors", not stalled and not w["failed"])
        logs = run.get("problems", []) + run.get("server_log", [])
        p("")
        if logs:
            p(f"Server warnings/errors ({len(logs)}):")
            p("")
            for l in logs[:20]:
                p(f"    {l}")
            if len(logs) > 20:
                p(f"    … {len(logs) - 20} more (see --json)")
        else:
            p("The server logged no warning or error.")
    p("")
    p("## Targets")
    p("")
    for ok, line in checks:
        p(f"- {'pass' if ok else '**FAIL**'}: {line}")
    return "\n".join(out), checks


def find_binary(args):
    if args.binary:
        return Path(args.binary)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "release" / "sessiond"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    ap.add_argument("--duration", type=int, default=10, help="seconds per case (default 10)")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up before each case (default 1)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--scale", action="store_true", help="also the 1-million-session cases")
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated, a subset of {','.join(CASES)} (default: all)")
    ap.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for the server, e.g. SESSIOND_DB_POOL_SIZE=16 (repeatable; "
                         "the server otherwise gets no SESSIOND_* from the environment)")
    ap.add_argument("--wait-quiet", type=int, default=0, metavar="SECONDS",
                    help="before each measurement, wait up to this long for other processes to "
                         "leave the CPUs alone (default 0: measure at once)")
    ap.add_argument("--json", metavar="OUT", help="write every figure to this JSON file")
    ap.add_argument("--binary", help="sessiond binary (default: $CARGO_TARGET_DIR or target, /release/sessiond)")
    ap.add_argument("--commit", help="what the report gives as the commit measured (default: the "
                    "repository's HEAD, noting uncommitted changes); for a --binary built elsewhere")
    ap.add_argument("--pg-host", default="127.0.0.1")
    ap.add_argument("--pg-port", type=int, default=5432)
    ap.add_argument("--pg-user", default="postgres")
    ap.add_argument("--scale-count", type=int, default=1_000_000, metavar="N",
                    help="stored sessions of the --scale cases (default 1000000; the listing "
                         "case uses N/10); smaller only to try the cases out")
    ap.add_argument("--revocation-rounds", type=int, default=1000, metavar="N",
                    help="ends the revocation case measures (default 1000)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (SQLite file, wrk inputs)")
    args = ap.parse_args()
    # On SIGTERM, unwind like on Ctrl-C: stop the server, drop the database, remove the files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in args.cases:
        if c not in CASES:
            ap.error(f"unknown case {c!r} ({', '.join(CASES)})")
    for kv in args.server_env:
        if "=" not in kv:
            ap.error(f"--server-env wants NAME=VALUE, not {kv!r}")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in BACKEND_NAMES:
            ap.error(f"unknown backend {b!r} (sqlite, postgres)")
    binary = find_binary(args)
    if not binary.exists():
        sys.exit(f"bench: {binary} not found; build it with "
                 f"`cargo build --release --features bench-baseline` (scripts/bench does)")
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk not found (apt-get install wrk)")
    if not os.path.exists("/proc/self/clear_refs"):
        sys.exit("bench: needs Linux /proc (clear_refs, VmHWM) to measure the server's peak RSS")

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": args.commit or git_commit(),
        "machine": machine(),
        "command": shlex.join(os.environ.get("BENCH_COMMAND", "python3 bench/bench.py").split() + sys.argv[1:]),
        "duration": args.duration, "warmup": args.warmup,
        "connections": args.connections, "threads": args.threads,
        "binary": str(binary), "scale": args.scale, "server_env": args.server_env,
        "cpu_busy_before": cpu_busy(),
    }
    if "postgres" in backends:
        try:
            meta["postgres"] = PostgresDb(args.pg_host, args.pg_port, args.pg_user).psql(
                "SHOW server_version", database="postgres")
        except BenchError as e:
            meta["postgres"] = f"unreachable: {e}"

    runs = []
    for kind in backends:
        workdir = tempfile.mkdtemp(prefix=f"sessiond-bench-{kind}-")
        run = Run(kind, args, binary, workdir)
        record = {"backend": kind, "workdir": workdir}
        try:
            run.setup()
            run.normal_cases()
            if args.scale:
                small = next((c for c in run.cases if c["case"] == "validate_10k" and not c["failed"]), None)
                run.scale_cases(small)
        except Exception as e:  # noqa: BLE001 - any failure fails this backend, the report still prints
            if run.server is not None and run.server.proc.poll() is not None and not isinstance(e, BenchError):
                try:
                    run.server.check_alive()
                except BenchError as dead:
                    e = dead
            record["error"] = f"{type(e).__name__}: {e}"
            log(f"{kind}: FAILED: {e}")
        finally:
            try:
                run.teardown()
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                run.problems.append(f"teardown: {e}")
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        # The scale validate case is reported in the scale section, not the main table.
        record["cases"] = [c for c in run.cases if c["case"] != "validate_10k_of_1m"]
        if run.scale is not None:
            v = run.scale.get("validate_10k_of_1m")
            base = next((c for c in run.cases if c["case"] == "baseline" and not c["failed"]), None)
            if v is not None:
                v["ratio_to_baseline"] = v["rps"] / base["rps"] if base else float("nan")
        record["scale"] = run.scale
        record["revocation"] = run.revocation
        record["nginx_skipped"] = run.nginx_skipped
        record["problems"] = run.problems
        record["server_log"] = run.server_log
        runs.append(record)

    text, checks = report(meta, runs)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "runs": runs,
                       "targets": [{"ok": ok, "check": line} for ok, line in checks]}, f, indent=2)
    failed = [r["backend"] for r in runs if r.get("error")]
    failed += [f"{r['backend']} {c['case']}" for r in runs for c in r["cases"] if c["failed"]]
    for r in runs:
        s = r.get("scale") or {}
        for key in ("validate_10k_of_1m",):
            if s.get(key) and s[key]["failed"]:
                failed.append(f"{r['backend']} {key}")
        if s.get("delete_expired_1m") and s["delete_expired_1m"]["load"]["failed"]:
            failed.append(f"{r['backend']} validate_during_delete")
    missed = [line for ok, line in checks if not ok]
    print("")
    if failed:
        print(f"BENCHMARK FAILED: errors in {', '.join(failed)}; these figures measure faults, not the service.")
        sys.exit(1)
    print(f"{len(checks) - len(missed)}/{len(checks)} targets met.")


if __name__ == "__main__":
    main()
