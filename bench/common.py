"""The benchmark's shared names: where things are, the SOAP requests it sends, the targets
(read from bench/targets.toml), and the small helpers every job uses."""

import datetime
import sys
import time
import tomllib
import urllib.request
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

# The targets the report checks, from bench/targets.toml (see there what each one is).
with open(REPO / "bench" / "targets.toml", "rb") as _f:
    TARGETS = tomllib.load(_f)
RATIO_TARGET = TARGETS["baseline"]["ratio"]
P99_TARGET_MS = TARGETS["baseline"]["p99_ms"]
PEAK_RSS_TARGET_MIB = TARGETS["memory"]["peak_rss_mib"]
LIST_GROWTH_TARGET_MIB = TARGETS["memory"]["list_growth_mib"]
RSS_100K_TARGET_MIB = TARGETS["memory"]["rss_100k_mib"]
DELETE_TARGET_S = TARGETS["scale"]["delete_s"]
STALL_S = TARGETS["scale"]["stall_s"]
DELETE_STALL_TARGET_MS = TARGETS["scale"]["delete_stall_ms"]
NGINX_RATIO_TARGET = TARGETS["nginx"]["ratio"]
NGINX_P99_FACTOR = TARGETS["nginx"]["p99_factor"]
REVOCATION_P99_TARGET_MS = TARGETS["revocation"]["p99_ms"]
REVOCATION_MAX_TARGET_MS = TARGETS["revocation"]["max_ms"]
MANY = TARGETS["many_sessions"]
STORAGE = TARGETS["storage"]

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
