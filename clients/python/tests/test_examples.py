"""The examples (examples/ and the package README) run against the real server and say what
they should."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from conftest import PASSWORD, REPO_ROOT
from lxml import etree

from sessiond_client import Client

EXAMPLES = REPO_ROOT / "examples"
README = Path(__file__).resolve().parents[1] / "README.md"
TNS = "urn:sessiond:session:1"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def run(args: List[str], env: Dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("SESSIOND_")}
    full.update(env)
    return subprocess.run(args, env=full, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)


def contract_operations() -> List[str]:
    doc = etree.parse(str(REPO_ROOT / "wsdl" / "SessionService.wsdl"))
    return [op.get("name") for op in doc.iterfind(f"{{{WSDL_NS}}}portType/{{{WSDL_NS}}}operation")]


def curl_answers(stdout: str) -> List[Tuple[str, str, etree._Element]]:
    """(operation, HTTP status, response wrapper element) for each call the script printed."""
    out = []
    lines = stdout.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"== (\w+) \(HTTP (\d+)\)", line)
        if m:
            body = etree.fromstring(lines[i + 1].encode()).find(f"{{{SOAP_ENV}}}Body")
            out.append((m.group(1), m.group(2), body[0]))
    return out


def text(el: etree._Element, name: str) -> str:
    return el.findtext(f".//{{{TNS}}}{name}")


def children(wrapper: etree._Element) -> List[object]:
    """An array answer's elements: the session ID, or None for a nil element."""
    return [None if c.get(XSI_NIL) == "true" else text(c, "sessionId") for c in wrapper]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_script_calls_every_operation_and_each_answer_is_right(server):
    server.add_user("admin", rights=["AdministratorRight"])
    server.add_user("alice")
    url = server.serve()
    proc = run(["bash", str(EXAMPLES / "curl" / "all-operations.sh"), url, "admin"],
               {"SESSIOND_PASSWORD": PASSWORD, "SESSIOND_CLIENTLESS_USER": "alice"})
    assert proc.returncode == 0, proc.stderr
    calls = curl_answers(proc.stdout)
    ops = [op for op, _, _ in calls]
    assert set(ops) == set(contract_operations()) and len(set(ops)) == 17
    assert all(status == "200" for _, status, _ in calls)
    for op, _, wrapper in calls:
        assert wrapper.tag == f"{{{TNS}}}{op}Response"
    by_op: Dict[str, List[etree._Element]] = {}
    for op, _, wrapper in calls:
        by_op.setdefault(op, []).append(wrapper)

    sid = text(by_op["getSession"][0], "sessionId")
    bw = text(by_op["getBWSession"][0], "sessionId")
    started = by_op["startSession"][0]
    started_id = text(started, "sessionId")
    assert (text(started, "clientType"), text(started, "clientName")) == \
        ("curl-example", "all-operations.sh")
    assert text(by_op["validateSession"][0], "valid") == "true"
    current = by_op["getCurrentSession"][0]
    assert (text(current, "sessionId"), text(current, "isCurrent")) == (sid, "true")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",
                        text(by_op["extendSession"][0], "expirationTime"))
    assert text(by_op["confirmId"][0], "confirmed") == "true"
    info = by_op["getSessionInfo"][0]
    assert (text(info, "sessionId"), text(info, "isCurrent")) == (started_id, "false")
    assert text(by_op["getSessionUser"][0], "userId") == "admin"
    # The getSession caller's array ends with a nil element; the getBWSession caller's does not.
    mine, bws = by_op["listActiveSessionIds"]
    assert children(mine) == [sid, bw, started_id, None]
    assert children(bws) == [sid, bw, started_id]
    assert children(by_op["getExpiredSessionIds"][0]) == [None]
    assert children(by_op["getSessions"][0]) == [started_id, None]
    clientless = text(by_op["openClientlessSession"][0], "clientlessSessionId")
    assert clientless
    assert text(by_op["closeClientlessSession"][0], "closed") == "true"
    assert len(by_op["deleteSessionId"][0]) == 0
    assert text(by_op["deleteExpiredSessionIds"][0], "deletedCount") == "0"
    assert [text(w, "closed") for w in by_op["closeSession"]] == ["true", "true"]

    # It left nothing open behind it.
    client = Client(url)
    assert [client.validate(s) for s in (sid, bw, started_id, clientless)] == [False] * 4
    # The password went on standard input, never into curl's arguments; the output does not
    # echo it either.
    assert PASSWORD not in proc.stdout.replace(f"<password>{PASSWORD}</password>", "")


def test_the_curl_script_stops_at_a_fault_with_its_code(server):
    server.add_user("admin", rights=["AdministratorRight"])
    url = server.serve()
    proc = run(["bash", str(EXAMPLES / "curl" / "all-operations.sh"), url, "admin"],
               {"SESSIOND_PASSWORD": "not the password"})
    assert proc.returncode == 1
    assert "getSession failed: HTTP 500, fault AUTHENTICATION_FAILED" in proc.stderr
    assert proc.stdout.count("== ") == 1


def readme_blocks() -> List[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_package_readme_examples_run_as_written(server, tmp_path):
    blocks = readme_blocks()
    assert len(blocks) == 2
    server.add_user("alice")
    server.add_user("admin", rights=["AdministratorRight"])
    url = server.serve()
    env = {"SESSIOND_URL": url, "SESSIOND_USER": "alice", "SESSIOND_PASSWORD": PASSWORD,
           "SESSIOND_ADMIN_USER": "admin", "SESSIOND_ADMIN_PASSWORD": PASSWORD}
    outputs = []
    for i, block in enumerate(blocks):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(block)
        proc = run([sys.executable, str(script)], env)
        assert proc.returncode == 0, f"README example {i + 1} failed:\n{proc.stderr}"
        outputs.append(proc.stdout)
    first, second = outputs
    assert re.search(r"^alice \(standard, nightly report\) until \d\d:\d\d:\d\d UTC$", first, re.M)
    assert "same session again: nightly report" in first
    assert "closed: INVALID_SESSION" in first
    assert "wrong password: AUTHENTICATION_FAILED - " in first
    assert "clientless: alice opened by admin" in second
    assert re.search(r"^admin standard \S+\+00:00$", second, re.M)
    assert "expired: 0" in second


def test_the_long_job_example_outlives_the_idle_timeout_on_one_session(server):
    server.add_user("alice")
    url = server.serve(SESSIOND_SESSION_TIMEOUT="3s", SESSIOND_ACTIVITY_LAG="300ms")
    # Steps longer than the timeout: without the keep-alive the second info() would fail.
    proc = run([sys.executable, str(EXAMPLES / "python" / "long_job.py"), url, "alice"],
               {"SESSIOND_PASSWORD": PASSWORD, "STEPS": "2", "STEP_SECONDS": "4"})
    assert proc.returncode == 0, proc.stderr
    assert re.findall(r"^step (\d)/2 done", proc.stdout, re.M) == ["1", "2"]
    assert "helper attached to 'long job'" in proc.stdout
    assert "session closed: True" in proc.stdout


def test_the_session_report_example_counts_active_sessions_by_user(server):
    server.add_user("admin", rights=["AdministratorRight"])
    server.add_user("alice")
    url = server.serve(SESSIOND_SESSION_TIMEOUT="3s", SESSIOND_ACTIVITY_LAG="300ms")
    client = Client(url)
    for _ in range(2):
        client.session("alice", PASSWORD).open()
    time.sleep(3.5)  # both expire
    live = client.session("alice", PASSWORD, client_name="still here").open()
    script = str(EXAMPLES / "python" / "session_report.py")
    env = {"SESSIOND_PASSWORD": PASSWORD}
    # Expired sessions are not active; and logging in removes them (the legacy rule), so the
    # report's own login leaves none to count or purge.
    proc = run([sys.executable, script, url, "admin", "--purge"], env)
    assert proc.returncode == 0, proc.stderr
    assert "2 active sessions" in proc.stdout
    assert "  admin: 1\n  alice: 1" in proc.stdout
    assert "least recently active: alice (standard)" in proc.stdout
    assert "0 expired sessions still stored\nremoved 0 expired sessions" in proc.stdout
    assert live.validate()
    denied = run([sys.executable, script, url, "alice"], env)
    assert denied.returncode == 2 and "alice may not do this" in denied.stderr


GENERATED_CLIENTS = {
    # name: (tools it needs, how to get them)
    "java": (("wsimport", "javac", "java"), "Debian: apt-get install jaxws"),
    "csharp": (("wsdl", "mcs", "mono"), "Debian: apt-get install mono-devel"),
}


@pytest.mark.parametrize("language", sorted(GENERATED_CLIENTS))
def test_a_generated_client_sees_the_trailing_null_only_for_a_getsession_session(server, language):
    tools, hint = GENERATED_CLIENTS[language]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed ({hint})")
    server.add_user("viewer", rights=["ViewSessionRight"])
    url = server.serve()
    proc = run(["bash", str(EXAMPLES / language / "run.sh"), url, "viewer"],
               {"SESSIOND_PASSWORD": PASSWORD}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 5, proc.stdout
    assert lines[:2] == ["valid: true", "getSession caller: 2 elements, last is null"]
    assert re.fullmatch(r"  viewer standard expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z",
                        lines[2]), lines[2]
    assert lines[3:] == ["getBWSession caller: 2 elements, no null", "closed: true"]
    # Both sessions it opened are closed: the CLI lists only its header line.
    assert len(server.cli(["sessions", "list-active"]).strip().splitlines()) == 1
