"""The load: wrk with bench/soap.lua, its output parsed into figures."""

import re
import signal
import subprocess
from pathlib import Path

from common import BenchError, LUA


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
