"""The cases of one backend: the database, the user, the server and every measurement."""

import os
import random
import re
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from common import (
    BASELINE,
    BenchError,
    ENDPOINT,
    LIST_END,
    NS,
    PASSWORD,
    SESSION_ID_ELEMENT,
    SESSION_TIMEOUT,
    SOAP11,
    USER,
    VALID_FALSE,
    VALID_TRUE,
    XSI,
    envelope,
    log,
    seeded_id,
    settle,
    soap_action,
    utc_text,
    validate_body,
)
from seeding import PostgresDb, SEEDED, SqliteDb
from server import Nginx, OthersCpu, RssSampler, Server, expect_call, percentile, soap_call
from load import Wrk


# The server's counters a case reports, as differences over the case.
COUNTERS = {
    "cache_misses": "sessiond_session_cache_misses_total",
    "cache_hits": "sessiond_session_cache_hits_total",
    "flushed_rows": "sessiond_activity_flushed_rows_total",
    "flush_cpu_us": "sessiond_activity_flush_cpu_microseconds_total",
    "flush_wall_s": "sessiond_activity_flush_duration_seconds_sum",
    "flushes": "sessiond_activity_flush_duration_seconds_count",
    "revocation_reader_late": "sessiond_revocation_reader_late_total",
}


def sessiond_counters(before, after):
    """What the server counted during a case: cache misses and hits, and what storing the
    renewals cost (CPU in the server per renewal, wall time per 1,000)."""
    d = {k: after.get(m, 0.0) - before.get(m, 0.0) for k, m in COUNTERS.items()}
    # Per renewal only over enough of them: a case of one session stores one a second.
    rows = d["flushed_rows"] if d["flushed_rows"] >= 1000 else 0
    d["flush_cpu_us_per_renewal"] = d["flush_cpu_us"] / rows if rows else None
    d["flush_ms_per_1000"] = d["flush_wall_s"] * 1e6 / rows if rows else None
    return d


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
        before = server.metrics() if isinstance(server, Server) else None
        r = self.wrk.run(server, path, body, expect, action, ids, timeout=timeout)
        # The requests still queued when wrk stops are part of the case.
        drain = server.wait_idle()
        if before is not None:
            # Let the flush that stores the case's last renewals run, then count it in.
            time.sleep(1.5)
            r.update(sessiond_counters(before, server.metrics()))
        r["distinct_ids"] = len(set(ids)) if ids else 1
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
            self.db.execute(f"UPDATE sessions SET created_at = {when} WHERE {SEEDED}")
            self.db.execute(f"UPDATE session_activity SET last_activity = {when} WHERE {SEEDED}")
            time.sleep(1.5)
            still = self.db.scalar(
                f"SELECT count(*) FROM session_activity WHERE {SEEDED} AND last_activity > ?",
                (two_hours_ago,),
            )
            if still == 0:
                break
        else:
            raise BenchError("seeded sessions keep being renewed after the validate run")
        self.db.seed("live", 1, 1000, utc_text())
        self.db.after_bulk_change()
        expired = self.db.scalar(
            "SELECT count(*) FROM session_activity WHERE last_activity <= ?", (two_hours_ago,)
        )
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
