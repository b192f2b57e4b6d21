"""The report: the figures as Markdown tables, each checked against bench/targets.toml."""

import os
import platform
import subprocess
import time

from common import (
    MANY,
    STORAGE,
    BACKEND_NAMES,
    DELETE_STALL_TARGET_MS,
    DELETE_TARGET_S,
    LIST_GROWTH_TARGET_MIB,
    NGINX_P99_FACTOR,
    NGINX_RATIO_TARGET,
    P99_TARGET_MS,
    PEAK_RSS_TARGET_MIB,
    RATIO_TARGET,
    REPO,
    REVOCATION_MAX_TARGET_MS,
    REVOCATION_P99_TARGET_MS,
    RSS_100K_TARGET_MIB,
    STALL_S,
)


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


def fmt_num(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def many_sessions(run, name, cases, p, checks):
    """Issue 23: the validate cases beside one another, what the server counted during each
    (cache misses, the renewals it stored and their cost), and the targets on them."""
    validates = [c for c in cases if c["case"].startswith("validate_") and "cache_misses" in c]
    if not validates:
        return
    p("")
    p("| case | distinct sessions | req/s ÷ validate_one | cache misses | renewals stored | "
      "flush CPU µs/renewal (server) | flush wall ms/1000 | reader late |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|")
    one = next((c for c in validates if c["case"] == "validate_one" and not c["failed"]), None)
    for c in validates:
        c["ratio_to_one"] = c["rps"] / one["rps"] if one and one["rps"] else None
        p(f"| {c['case']} | {c['distinct_ids']:,} | {fmt_ratio(c['ratio_to_one'])} | "
          f"{c['cache_misses']:,.0f} | {c['flushed_rows']:,.0f} | "
          f"{fmt_num(c['flush_cpu_us_per_renewal'])} | {fmt_num(c['flush_ms_per_1000'])} | "
          f"{c['revocation_reader_late']:.0f} |")
    p("")
    p("flush CPU: the CPU time the server's threads spent storing renewals (on PostgreSQL the "
      "server's part only; the database's is in its backend); flush wall: the time those "
      "stores took, per 1,000 renewals. reader late: revocation log reads that came later "
      "than the lag.")
    for c in validates:
        if c["case"] in ("validate_10k", "validate_100k") and not c["failed"]:
            r = c["ratio_to_one"]
            goal = MANY["ratio_to_one"]
            check(checks, f"{name} {c['case']}: {fmt_ratio(r)} × validate_one req/s ≥ {goal} (issue 23)",
                  r is not None and r >= goal)
            if run["backend"] == "sqlite":
                us = c["flush_cpu_us_per_renewal"]
                most = STORAGE["sqlite_cpu_us_per_renewal"]
                check(checks, f"{name} {c['case']}: {fmt_num(us)} µs of server CPU a stored renewal "
                      f"≤ {most:g} µs (issue 23)", us is not None and us <= most)
            else:
                ms = c["flush_ms_per_1000"]
                most = STORAGE["postgres_ms_per_1000"]
                check(checks, f"{name} {c['case']}: {fmt_num(ms)} ms a batch of 1,000 renewals "
                      f"≤ {most:g} ms (issue 23)", ms is not None and ms <= most)
        if c["case"] == "validate_10k" and not c["failed"]:
            most = c["distinct_ids"] * MANY["misses_factor"]
            check(checks, f"{name} validate_10k: {c['cache_misses']:,.0f} cache misses ≤ "
                  f"{most:,.0f} (distinct sessions + 1 %, issue 23)", c["cache_misses"] <= most)


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
            one = next((c for c in cases if c["case"] == "validate_one" and not c["failed"]), None)
            if one:
                r = one.get("ratio_to_nginx")
                goal = MANY["one_to_nginx"]
                check(checks, f"{name} validate_one: {fmt_ratio(r)} × nginx req/s ≥ {goal} (issue 23)",
                      r is not None and r >= goal)
        elif run.get("nginx_skipped"):
            p("")
            p(f"No nginx case: {run['nginx_skipped']}.")
        many_sessions(run, name, cases, p, checks)
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
