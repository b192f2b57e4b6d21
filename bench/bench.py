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
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BACKEND_NAMES, BenchError, CASES, REPO, log
from seeding import PostgresDb
from cases import Run
from report import cpu_busy, git_commit, machine, report


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
