"""Driving the servers: sessiond and nginx started, watched (CPU, RSS, log) and stopped, and one
SOAP call at a time to them."""

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from common import BenchError, ENDPOINT, HTTP, envelope, soap_action


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

    def metrics(self):
        """The server's Prometheus counters and gauges now, by name (labels kept in the name)."""
        with HTTP.open(self.url("/metrics"), timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

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
