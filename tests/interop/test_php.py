"""Interoperability: PHP SoapClient (ext-soap) against the served WSDL of a real `sessiond serve`.

The checks live in php/session_client.php; this wrapper creates the users, starts the server
and runs the script for SOAP 1.1 (`?wsdl`) and SOAP 1.2 (`?wsdl=soap12`, soap_version SOAP_1_2).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "php" / "session_client.php"
PHP = shutil.which("php")


def _php_has_soap() -> bool:
    if not PHP:
        return False
    out = subprocess.run([PHP, "-m"], capture_output=True, text=True, timeout=30).stdout
    return any(line.strip().lower() == "soap" for line in out.splitlines())


pytestmark = pytest.mark.skipif(
    not _php_has_soap(),
    reason="needs php with the soap extension (Debian: apt-get install php-cli php-soap)")

VERSIONS = {"1.1": "wsdl11", "1.2": "wsdl12"}


@pytest.fixture(params=sorted(VERSIONS), ids=lambda v: "soap" + v.replace(".", ""))
def soap_version(request) -> str:
    return request.param


# As in test_zeep.py: raise on a machine too loaded for a 2 s session timeout.
EXPIRY_TIMEOUT = os.environ.get("SESSIOND_TEST_EXPIRY_TIMEOUT", "2s")
EXPIRY_SECONDS = re.fullmatch(r"(\d+(?:\.\d+)?)s", EXPIRY_TIMEOUT).group(1)


def run_php(server, version: str, scenario: str, roles: dict, extra=()) -> str:
    wsdl = getattr(server, VERSIONS[version])
    args = [PHP, str(SCRIPT), wsdl, version, scenario]
    args += [f"{role}={user}:{password}" for role, (user, password) in roles.items()]
    args += list(extra)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    output = proc.stdout + (("\n[stderr]\n" + proc.stderr) if proc.stderr.strip() else "")
    failed = [line for line in proc.stdout.splitlines() if line.startswith("not ok")]
    assert proc.returncode == 0 and not failed, (
        f"php {scenario} (SOAP {version}) exited {proc.returncode}; failed checks:\n"
        + "\n".join(failed) + f"\n\nfull output:\n{output}")
    summary = re.search(r"^# passed (\d+) failed (\d+)$", proc.stdout, re.M)
    assert summary, f"no summary line in:\n{output}"
    assert summary.group(2) == "0"
    return proc.stdout


def assert_checks(output: str, minimum: int, required: list[str]):
    passed = int(re.search(r"^# passed (\d+)", output, re.M).group(1))
    assert passed >= minimum, f"only {passed} checks ran (expected >= {minimum}):\n{output}"
    lines = set(output.splitlines())
    missing = [r for r in required if f"ok - {r}" not in lines]
    assert not missing, f"checks that did not report ok: {missing}\n{output}"


def test_php_basic(sessiond, soap_version):
    roles = {
        "alice": ("alice", "s3cret wörd:x"),
        "viewer": ("viewer", "viewer-pw"),
        "updater": ("updater", "updater-pw"),
        "admin": ("admin", "admin-pw"),
        "deptadmin": ("deptadmin", "deptadmin-pw"),
        "plain": ("plain", "plain-pw"),
    }
    sessiond.add_user("alice", roles["alice"][1])
    sessiond.add_user("viewer", roles["viewer"][1], rights=["ViewSessionRight"])
    sessiond.add_user("updater", roles["updater"][1], rights=["UpdateSessionRight"])
    sessiond.add_user("admin", roles["admin"][1], rights=["AdministratorRight"])
    sessiond.add_user("deptadmin", roles["deptadmin"][1], department="sales",
                      rights=["AdministratorRight"])
    sessiond.add_user("plain", roles["plain"][1])
    server = sessiond.serve()

    out = run_php(server, soap_version, "basic", roles)
    assert_checks(out, minimum=120, required=[
        "validateSession(getSession session) is true",
        "validateSession(unknown) is false",
        "getSession with a wrong password gives AUTHENTICATION_FAILED",
        "getSession for an unknown user gives AUTHENTICATION_FAILED",
        "unknown user and wrong password give the same message",
        "listActiveSessionIds (getSession caller): creation order, then one nil element",
        "listActiveSessionIds (getBWSession caller): no nil element",
        "getExpiredSessionIds empty (getSession caller): exactly one nil element",
        "getExpiredSessionIds empty (getBWSession caller): no element",
        "listActiveSessionIds without a right: ACCESS_DENIED",
        "deleteSessionId by deptadmin: ACCESS_DENIED",
        "deleteSessionId by updater answers deleteSessionIdResponse",
        "target invalid after deleteSessionId by admin",
        "deleteSessionId of an unknown session: SESSION_NOT_FOUND (updater)",
        "deleteExpiredSessionIds with nothing expired returns 0",
        "deleteExpiredSessionIds by a viewer: ACCESS_DENIED",
        "deleteSessionId with an unknown session: INVALID_SESSION",
        "closeSession(live) is true",
        "validateSession after close is false",
        "closeSession(unknown) is false",
        f"listActiveSessionIds: SOAP {soap_version} protocol",
    ])


@pytest.mark.parametrize("session_timeout", [EXPIRY_TIMEOUT])
def test_php_expiry(sessiond, soap_version):
    roles = {"updater": ("updater", "updater-pw"), "alice": ("alice", "alice-pw")}
    sessiond.add_user("updater", roles["updater"][1], rights=["UpdateSessionRight"])
    sessiond.add_user("alice", roles["alice"][1])
    server = sessiond.serve()

    out = run_php(server, soap_version, "expiry", roles, [f"timeout={EXPIRY_SECONDS}"])
    assert_checks(out, minimum=40, required=[
        "a session renewed by validateSession stays valid past the timeout",
        "expired session: validateSession is false",
        "expired caller session: INVALID_SESSION",
        "expired sessions listed, then nil",
        "expired sessions listed (bw caller), no nil",
        "deleteExpiredSessionIds returns the count (2)",
        "after deleteExpiredSessionIds: one nil element",
        "after deleteExpiredSessionIds (bw caller): no element",
        "getSession removed the expired sessions",
    ])


def test_php_lockout(sessiond, soap_version):
    roles = {"alice": ("alice", "alice-pw"), "bob": ("bob", "bob-pw-1")}
    sessiond.add_user("alice", roles["alice"][1])
    sessiond.add_user("bob", roles["bob"][1])
    server = sessiond.serve()

    out = run_php(server, soap_version, "lockout", roles)
    assert_checks(out, minimum=10, required=[
        "wrong password #5: AUTHENTICATION_FAILED",
        "right password after 5 failures: ACCOUNT_LOCKED",
        "getBWSession with the right password after 5 failures: ACCOUNT_LOCKED",
        "another user is not locked",
    ])


# The extended operations (startSession … closeClientlessSession).

LOCATION = "interop-node-a"


def test_php_extended(sessiond, soap_version):
    roles = {
        "alice": ("alice", "s3cret wörd:x"),
        "bob": ("bob", "bob-pw-1"),
        "carol": ("carol", "carol-pw"),
        "viewer": ("viewer", "viewer-pw"),
        "updater": ("updater", "updater-pw"),
        "admin": ("admin", "admin-pw"),
        "admin2": ("admin2", "admin2-pw"),
        "deptadmin": ("deptadmin", "deptadmin-pw"),
        "plain": ("plain", "plain-pw"),
        "dave": ("dave", "dave-pw-1"),
    }
    rights = {"viewer": ["ViewSessionRight"], "updater": ["UpdateSessionRight"],
              "admin": ["AdministratorRight"], "admin2": ["AdministratorRight"],
              "deptadmin": ["AdministratorRight"]}
    for role, (user, password) in roles.items():
        sessiond.add_user(user, password, department="sales" if role == "deptadmin" else None,
                          rights=rights.get(role, ()))
    sessiond.cli(["user", "disable", "dave"])
    server = sessiond.serve(SESSIOND_LOCATION=LOCATION)

    out = run_php(server, soap_version, "extended", roles, [f"location={LOCATION}"])
    assert_checks(out, minimum=200, required=[
        "startSession with clientType and clientName: the SessionInfo",
        "startSession without the optionals: clientType standard, clientName nil",
        "startSession with a wrong password: AUTHENTICATION_FAILED",
        "getCurrentSession describes the caller, isCurrent true",
        "extendSession returns now + 30 min as an xs:dateTime string",
        "extendSession moves the expiration time",
        "getSessions (view right, no filter): every session in creation order, then nil",
        "getSessions: SessionInfo of the alice erp session",
        "getSessions filterUserId and filterClientType",
        'getSessions {"offset":1,"limit":2}: that page of the order, then nil',
        "getSessions offset -1: INVALID_REQUEST",
        "getSessions (getBWSession caller): no nil element",
        "getSessions empty (getBWSession caller): no element",
        "getSessions without a view right: own sessions only",
        "getSessions filterUserId naming another user without a view right: ACCESS_DENIED",
        "getSessions (startSession clientType bw caller): no nil element",
        "getSessionInfo of another user's session by deptadmin",
        "getSessionInfo of another user's session without a view right: ACCESS_DENIED",
        "getSessionUser of another user's session without a view right: ACCESS_DENIED",
        "closed session: endReason closed, endTime",
        "deleted session: endReason deleted, endTime",
        "ended sessions are not listed by getSessions",
        "confirmId with a wrong password is false (no fault)",
        "confirmId: 4 failures then the right password is true",
        "getSession after five wrong confirmIds: ACCOUNT_LOCKED",
        "clientless session: clientType clientless, createdBy the opener",
        "openClientlessSession by deptadmin: ACCESS_DENIED",
        "openClientlessSession for a disabled user: INVALID_REQUEST",
        "closeClientlessSession by alice (not the opener): ACCESS_DENIED",
        "closeClientlessSession by another admin without department is true",
        "closed clientless session: endReason closed",
        "closeClientlessSession of an unknown session is false",
        "closeClientlessSession of a session that is not clientless: INVALID_REQUEST",
        f"getSessions: SOAP {soap_version} protocol",
    ])

    # Change users through the CLI on the server's database, then check what the server says.
    sids = dict(re.findall(r"^# sid (\w+) (\S+)$", out, re.M))
    assert set(sids) == {"viewer", "admin", "clientless", "carol1", "carol2"}, out
    sessiond.cli(["user", "disable", "carol"])
    sessiond.cli(["user", "revoke", "admin", "AdministratorRight"])
    out = run_php(server, soap_version, "after_cli",
                  {k: roles[k] for k in ("carol", "admin")},
                  [f"sid.{name}={sid}" for name, sid in sids.items()])
    assert_checks(out, minimum=15, required=[
        "disabled user's session (carol1): endReason user-disabled",
        "disabled user's session (carol2): endReason user-disabled",
        "getSessionUser of a disabled user's session (carol2)",
        "getCurrentSession of a disabled user's session: INVALID_SESSION",
        "startSession of a disabled user: AUTHENTICATION_FAILED",
        "openClientlessSession after losing AdministratorRight: ACCESS_DENIED",
        "the opener closes its clientless session after losing the right",
    ])


@pytest.mark.parametrize("session_timeout", [EXPIRY_TIMEOUT])
def test_php_extended_expiry(sessiond, soap_version):
    roles = {"viewer": ("viewer", "viewer-pw"), "alice": ("alice", "alice-pw")}
    sessiond.add_user("viewer", roles["viewer"][1], rights=["ViewSessionRight"])
    sessiond.add_user("alice", roles["alice"][1])
    server = sessiond.serve()

    out = run_php(server, soap_version, "extended_expiry", roles, [f"timeout={EXPIRY_SECONDS}"])
    assert_checks(out, minimum=30, required=[
        "sessions renewed by extendSession, getCurrentSession, getSessions, getSessionUser, "
        "getSessionInfo or confirmId alone stay valid past the timeout",
        "extendSession of an expired session: INVALID_SESSION",
        "extendSession did not revive the expired session",
        "extendSession renewed lastActivityTime",
        "getSessions: the expired session is not listed",
        "getSessions includeExpired: the expired session is listed",
        "removed expired session: endReason expired",
        "removed expired session: endTime is its expiration time, not the removal time",
        "getSessionUser of a removed expired session",
    ])
