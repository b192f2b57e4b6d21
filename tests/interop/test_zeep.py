"""Interoperability: Python zeep against the served WSDL of a real `sessiond serve`.

Every test runs over SOAP 1.1 (port SessionServiceSoap of `?wsdl`) and SOAP 1.2
(port SessionServiceSoap12 of `?wsdl=soap12`). Each call is also checked at the
protocol level: HTTP status, response Content-Type and envelope namespace match
the SOAP version of the request.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree
from zeep import xsd
from zeep.exceptions import Fault

REPO_ROOT = Path(__file__).resolve().parents[2]
TNS = "urn:sessiond:session:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"

# >= 128 bits, URL-safe, at most 64 characters (docs/behaviour.md §3).
SESSION_ID_RE = re.compile(r"^[A-Za-z0-9_~.\-]{22,64}$")

VERSIONS = {
    "soap11": dict(wsdl_attr="wsdl11", port="SessionServiceSoap", env_ns=SOAP11_ENV,
                   content_type="text/xml"),
    "soap12": dict(wsdl_attr="wsdl12", port="SessionServiceSoap12", env_ns=SOAP12_ENV,
                   content_type="application/soap+xml"),
}


class RecordingTransport(zeep.Transport):
    """zeep transport that keeps the last HTTP exchange for protocol checks."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_request_headers = None
        self.last_request_body = None
        self.last_response = None

    def post(self, address, message, headers):
        self.last_request_headers = dict(headers)
        self.last_request_body = message
        response = super().post(address, message, headers)
        self.last_response = response
        return response


def local(qname_text: str) -> str:
    return (qname_text or "").strip().split(":")[-1]


class SessionClient:
    """A zeep client bound to one port of the served WSDL, plus checking helpers."""

    def __init__(self, server, version: str):
        self.version = version
        self.v = VERSIONS[version]
        self.server = server
        self.transport = RecordingTransport(timeout=30, operation_timeout=30)
        self.wsdl_url = getattr(server, self.v["wsdl_attr"])
        self.client = zeep.Client(self.wsdl_url, transport=self.transport)
        self.service = self.client.bind("SessionService", self.v["port"])

    # -- protocol checks -------------------------------------------------------
    def _response_doc(self):
        resp = self.transport.last_response
        assert resp is not None, "no HTTP response recorded"
        return etree.fromstring(resp.content)

    def _check_protocol(self, op: str, fault: bool):
        req_ct = self.transport.last_request_headers.get("Content-Type", "")
        assert req_ct.startswith(self.v["content_type"]), \
            f"zeep sent {req_ct!r}: the test did not use {self.version}"
        resp = self.transport.last_response
        ct = resp.headers.get("Content-Type", "")
        assert ct.split(";")[0].strip().lower() == self.v["content_type"], \
            f"{op}: {self.version} request answered with Content-Type {ct!r}"
        doc = self._response_doc()
        assert doc.tag == f"{{{self.v['env_ns']}}}Envelope", \
            f"{op}: {self.version} request answered with envelope {doc.tag}"
        if not fault:
            assert resp.status_code == 200, f"{op}: HTTP {resp.status_code} for a success"
            return
        if self.version == "soap11":
            assert resp.status_code == 500, f"{op}: SOAP 1.1 fault with HTTP {resp.status_code}"
            code = doc.findtext(f"{{{SOAP11_ENV}}}Body/{{{SOAP11_ENV}}}Fault/faultcode")
            assert local(code) in ("Client", "Server"), f"{op}: faultcode {code!r}"
        else:
            code = doc.findtext(
                f"{{{SOAP12_ENV}}}Body/{{{SOAP12_ENV}}}Fault/{{{SOAP12_ENV}}}Code/{{{SOAP12_ENV}}}Value")
            assert local(code) in ("Sender", "Receiver"), f"{op}: fault Code/Value {code!r}"
            want = 400 if local(code) == "Sender" else 500
            assert resp.status_code == want, \
                f"{op}: SOAP 1.2 {local(code)} fault with HTTP {resp.status_code}, expected {want}"

    # -- calls -----------------------------------------------------------------
    def call(self, op: str, **kwargs):
        try:
            result = getattr(self.service, op)(**kwargs)
        except Fault as exc:
            code = fault_code(exc)
            raise AssertionError(f"{op}({kwargs}) raised fault {code}: {exc.message}") from exc
        self._check_protocol(op, fault=False)
        return result

    def fault(self, expected_code: str, op: str, **kwargs) -> Fault:
        with pytest.raises(Fault) as info:
            result = getattr(self.service, op)(**kwargs)
            # Only reached when no fault came back.
            pytest.fail(f"{op}({kwargs}) returned {result!r}, expected fault {expected_code}")
        self._check_protocol(op, fault=True)
        exc = info.value
        assert fault_code(exc) == expected_code, \
            f"{op}({kwargs}): fault code {fault_code(exc)!r} ({exc.message!r}), expected {expected_code}"
        return exc

    # -- shortcuts ---------------------------------------------------------------
    def login(self, user: str, password: str = "secret-pw") -> str:
        sid = self.call("getSession", userId=user, password=password)
        assert isinstance(sid, str) and SESSION_ID_RE.match(sid), f"bad session ID {sid!r}"
        return sid

    def login_bw(self, user: str, password: str = "secret-pw") -> str:
        sid = self.call("getBWSession", userId=user, password=password)
        assert isinstance(sid, str) and SESSION_ID_RE.match(sid), f"bad session ID {sid!r}"
        return sid

    def validate(self, sid: str) -> bool:
        valid = self.call("validateSession", sessionId=sid)
        assert isinstance(valid, bool), f"validateSession returned {valid!r}"
        return valid

    def array(self, op: str, caller: str, **params):
        """Call an array operation; return (zeep's list, the raw XML elements as IDs/None).

        Both views are returned as lists of sessionId or None (nil element). `params` are the
        operation's other parts (getSessions' filters)."""
        result = self.call(op, sessionId=caller, **params)
        # zeep 4.x decodes <session xsi:nil="true"/> of a complex type as an object whose
        # fields are all None (not as None): both count as nil here.
        zeep_ids = [None if s is None else s.sessionId for s in (result or [])]
        body = self._response_doc().find(f"{{{self.v['env_ns']}}}Body")
        wrapper = body[0]
        assert wrapper.tag == f"{{{TNS}}}{op}Response", f"wrapper element {wrapper.tag}"
        raw = []
        for child in wrapper:
            if not isinstance(child.tag, str):  # comments
                continue
            assert child.tag == f"{{{TNS}}}session", f"{op}: unexpected child {child.tag}"
            if child.get(f"{{{XSI}}}nil") in ("true", "1"):
                assert len(child) == 0, f"{op}: nil element with content"
                raw.append(None)
            else:
                raw.append(child.findtext(f"{{{TNS}}}sessionId"))
        assert zeep_ids == raw, f"{op}: zeep decoded {zeep_ids}, XML had {raw}"
        sessions = [None if sid is None else obj for obj, sid in zip(result or [], raw)]
        return sessions, raw

    def assert_array(self, op: str, caller: str, created_ids, bw: bool, **params):
        """The array holds exactly `created_ids` (given in the order the test created them),
        ordered by creationTime then sessionId, followed by one nil element unless bw.

        The order is computed from the creationTime values the server returned (so a server
        storing whole seconds is judged by its ID tie-break), and those values must agree
        with the order in which the sessions were really created."""
        result, raw = self.array(op, caller, **params)
        kind = "getBWSession" if bw else "getSession"
        sessions = [s for s in result if s is not None]
        created = {s.sessionId: as_utc(s.creationTime) for s in sessions}
        in_creation_order = [created[i] for i in created_ids if i in created]
        assert in_creation_order == sorted(in_creation_order), \
            f"{op}: creationTime values {in_creation_order} contradict the creation order"
        ordered = sorted(created_ids, key=lambda i: (created.get(i, dt.datetime.min.replace(
            tzinfo=dt.timezone.utc)), i))
        expected = ordered + ([] if bw else [None])
        assert raw == expected, \
            f"{op}{params or ''} for a {kind} caller: got {raw}, expected {expected}"
        return sessions


def fault_code(exc: Fault):
    """The CODE of <tns:sessionServiceFault><tns:code>CODE</tns:code>… in the fault detail."""
    detail = exc.detail
    if detail is None or isinstance(detail, (str, bytes)):
        return None
    el = detail.find(f"{{{TNS}}}sessionServiceFault")
    if el is None:
        return None
    return el.findtext(f"{{{TNS}}}code")


def fault_message(exc: Fault):
    el = exc.detail.find(f"{{{TNS}}}sessionServiceFault")
    return el.findtext(f"{{{TNS}}}message")


@pytest.fixture(params=sorted(VERSIONS))
def soap(request) -> str:
    return request.param


def connect(server, soap) -> SessionClient:
    return SessionClient(server, soap)


def as_utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


# ==============================================================================
# getSession / getBWSession / validateSession
# ==============================================================================

def test_get_session_and_validate(sessiond, soap):
    sessiond.add_user("alice", "s3cret pass")
    c = connect(sessiond.serve(), soap)

    s1 = c.login("alice", "s3cret pass")
    s2 = c.login("alice", "s3cret pass")
    bw = c.login_bw("alice", "s3cret pass")
    assert len({s1, s2, bw}) == 3, "session IDs must be unique"

    assert c.validate(s1) is True
    assert c.validate(s2) is True
    assert c.validate(bw) is True
    assert c.validate("no-such-session-0123456789abcdef") is False


def test_authentication_failed(sessiond, soap):
    sessiond.add_user("alice", "secret-pw")
    c = connect(sessiond.serve(), soap)

    wrong = c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    unknown = c.fault("AUTHENTICATION_FAILED", "getSession", userId="nobody", password="secret-pw")
    c.fault("AUTHENTICATION_FAILED", "getBWSession", userId="alice", password="wrong")
    c.fault("AUTHENTICATION_FAILED", "getBWSession", userId="nobody", password="secret-pw")
    # Case matters: user IDs are not case-folded into a different account's password check.
    c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="SECRET-PW")

    # No user enumeration: same message for an unknown user and a wrong password.
    assert fault_message(wrong) == fault_message(unknown)
    assert wrong.message == unknown.message

    # The failures did not lock or break the account.
    assert c.validate(c.login("alice", "secret-pw")) is True


# ==============================================================================
# closeSession
# ==============================================================================

def test_close_session(sessiond, soap):
    sessiond.add_user("alice", rights=["ViewSessionRight"])
    c = connect(sessiond.serve(), soap)

    s = c.login("alice")
    other = c.login("alice")
    assert c.validate(s) is True

    assert c.call("closeSession", sessionId=s) is True
    assert c.validate(s) is False
    # A closed session is unknown: closing it again gives false, no fault.
    assert c.call("closeSession", sessionId=s) is False
    assert c.call("closeSession", sessionId="no-such-session-0123456789abcdef") is False
    # It can no longer authenticate calls.
    c.fault("INVALID_SESSION", "listActiveSessionIds", sessionId=s)
    # Other sessions of the same user are untouched.
    assert c.validate(other) is True
    c.assert_array("listActiveSessionIds", other, [other], bw=False)

    bw = c.login_bw("alice")
    assert c.call("closeSession", sessionId=bw) is True
    assert c.validate(bw) is False


# ==============================================================================
# listActiveSessionIds / getExpiredSessionIds: the array rule
# ==============================================================================

def test_arrays_for_standard_session_end_with_nil(sessiond, soap):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("alice")
    server = sessiond.serve()
    c = connect(server, soap)

    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    v = c.login("viewer")
    a = c.login("alice")
    b = c.login_bw("alice")

    # Ordered by creation time, then one nil element.
    sessions = c.assert_array("listActiveSessionIds", v, [v, a, b], bw=False)
    after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)
    by_id = {s.sessionId: s for s in sessions}
    assert by_id[v].userId == "viewer"
    assert by_id[a].userId == "alice"
    assert by_id[b].userId == "alice"
    assert by_id[v].clientType == "standard"
    assert by_id[a].clientType == "standard"
    assert by_id[b].clientType == "bw"
    for s in sessions:
        assert s.host == "127.0.0.1", f"host of {s.sessionId}: {s.host!r}"
        created, last, expires = (as_utc(s.creationTime), as_utc(s.lastActivityTime),
                                  as_utc(s.expirationTime))
        assert before <= created <= after, f"creationTime {s.creationTime}"
        assert created <= last <= after, f"lastActivityTime {s.lastActivityTime}"
        # expiration = last activity + timeout (30 minutes here)
        delta = (expires - last).total_seconds()
        assert abs(delta - 1800) <= 2, f"expirationTime - lastActivityTime = {delta}s"

    # Nothing expired: exactly one nil element.
    c.assert_array("getExpiredSessionIds", v, [], bw=False)

    # A closed session is no longer listed.
    assert c.call("closeSession", sessionId=a) is True
    c.assert_array("listActiveSessionIds", v, [v, b], bw=False)


def test_arrays_for_bw_session_have_no_nil(sessiond, soap):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("alice")
    c = connect(sessiond.serve(), soap)

    a = c.login("alice")
    vbw = c.login_bw("viewer")
    b = c.login_bw("alice")

    sessions = c.assert_array("listActiveSessionIds", vbw, [a, vbw, b], bw=True)
    by_id = {s.sessionId: (s.userId, s.clientType) for s in sessions}
    assert by_id == {a: ("alice", "standard"), vbw: ("viewer", "bw"), b: ("alice", "bw")}

    # Empty result for a bw caller: no element at all.
    result, raw = c.array("getExpiredSessionIds", vbw)
    assert raw == [] and result == [], f"expected no element, got {raw}"

    # The same user's standard session still gets the nil element.
    v = c.login("viewer")
    c.assert_array("listActiveSessionIds", v, [a, vbw, b, v], bw=False)
    c.assert_array("getExpiredSessionIds", v, [], bw=False)


# ==============================================================================
# Rights
# ==============================================================================

def _rights_users(sessiond):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("updater", rights=["UpdateSessionRight"])
    sessiond.add_user("admin", rights=["AdministratorRight"])
    sessiond.add_user("deptadmin", department="sales", rights=["AdministratorRight"])
    sessiond.add_user("plain")
    sessiond.add_user("plaindept", department="sales")


def test_view_right_needed_for_lists(sessiond, soap):
    _rights_users(sessiond)
    c = connect(sessiond.serve(), soap)

    allowed = {u: c.login(u) for u in ("viewer", "updater", "admin", "deptadmin")}
    denied = {u: c.login(u) for u in ("plain", "plaindept")}
    everyone = list(allowed.values()) + list(denied.values())

    for user, sid in allowed.items():
        c.assert_array("listActiveSessionIds", sid, everyone, bw=False)
        c.assert_array("getExpiredSessionIds", sid, [], bw=False)
    for user, sid in denied.items():
        c.fault("ACCESS_DENIED", "listActiveSessionIds", sessionId=sid)
        c.fault("ACCESS_DENIED", "getExpiredSessionIds", sessionId=sid)
        # The same for a bw session of that user.
        bw = c.login_bw(user)
        c.fault("ACCESS_DENIED", "listActiveSessionIds", sessionId=bw)
        # A denied call does not end the caller's session.
        assert c.validate(sid) is True


def test_delete_session_id_rights(sessiond, soap):
    _rights_users(sessiond)
    sessiond.add_user("alice")
    c = connect(sessiond.serve(), soap)

    target = c.login("alice")
    for user in ("viewer", "deptadmin", "plain", "plaindept"):
        caller = c.login(user)
        c.fault("ACCESS_DENIED", "deleteSessionId", sessionId=caller, targetSessionId=target)
        assert c.validate(target) is True, f"{user} was denied but the target is gone"

    for user in ("updater", "admin"):
        caller = c.login(user)
        target = c.login("alice")
        result = c.call("deleteSessionId", sessionId=caller, targetSessionId=target)
        assert result is None
        body = c._response_doc().find(f"{{{c.v['env_ns']}}}Body")
        assert body[0].tag == f"{{{TNS}}}deleteSessionIdResponse" and len(body[0]) == 0
        assert c.validate(target) is False, f"{user}: target still valid after deleteSessionId"
        assert target not in c.array("listActiveSessionIds", caller)[1]
        # Already deleted / never existed: SESSION_NOT_FOUND.
        c.fault("SESSION_NOT_FOUND", "deleteSessionId", sessionId=caller, targetSessionId=target)
        c.fault("SESSION_NOT_FOUND", "deleteSessionId", sessionId=caller,
                targetSessionId="no-such-session-0123456789abcdef")
        assert c.validate(caller) is True

    # A bw session with the right works too.
    caller = c.login_bw("updater")
    target = c.login("alice")
    c.call("deleteSessionId", sessionId=caller, targetSessionId=target)
    assert c.validate(target) is False


def test_delete_expired_session_ids_rights(sessiond, soap):
    _rights_users(sessiond)
    c = connect(sessiond.serve(), soap)

    for user in ("updater", "admin"):
        sid = c.login(user)
        count = c.call("deleteExpiredSessionIds", sessionId=sid)
        assert count == 0, f"{user}: deleteExpiredSessionIds returned {count!r}"
    for user in ("viewer", "deptadmin", "plain", "plaindept"):
        sid = c.login(user)
        c.fault("ACCESS_DENIED", "deleteExpiredSessionIds", sessionId=sid)


def test_unknown_caller_session_is_invalid_session(sessiond, soap):
    sessiond.add_user("updater", rights=["UpdateSessionRight", "ViewSessionRight"])
    c = connect(sessiond.serve(), soap)
    target = c.login("updater")
    bogus = "no-such-session-0123456789abcdef"

    c.fault("INVALID_SESSION", "listActiveSessionIds", sessionId=bogus)
    c.fault("INVALID_SESSION", "getExpiredSessionIds", sessionId=bogus)
    c.fault("INVALID_SESSION", "deleteExpiredSessionIds", sessionId=bogus)
    c.fault("INVALID_SESSION", "deleteSessionId", sessionId=bogus, targetSessionId=target)
    assert c.validate(target) is True


# ==============================================================================
# Expiry (SESSIOND_SESSION_TIMEOUT=2s)
# ==============================================================================

# The expiry tests use SESSIOND_SESSION_TIMEOUT=2s; on a machine too loaded for that
# (an Argon2 login taking most of the timeout), raise it: SESSIOND_TEST_EXPIRY_TIMEOUT=5s.
EXPIRY_TIMEOUT = os.environ.get("SESSIOND_TEST_EXPIRY_TIMEOUT", "2s")
EXPIRY_SECONDS = float(re.fullmatch(r"(\d+(?:\.\d+)?)s", EXPIRY_TIMEOUT).group(1))


class KeepAlive:
    """Sessions renewed (validateSession) often enough never to expire.

    Tracks when each was last renewed, so that a session found expired is reported either
    as a server bug (renewed well within the timeout) or as a machine too slow for it."""

    def __init__(self, c: SessionClient, timeout: float):
        self.c = c
        self.timeout = timeout
        self.interval = min(0.5, timeout / 4)
        self.last: dict[str, float] = {}
        self.renewers: dict = {}

    def add(self, sid: str, renew=None) -> str:
        """Keep `sid` alive from now on (call right after it was created or used). `renew`
        (sid -> still valid?) is how; validateSession by default."""
        self.last[sid] = time.monotonic()
        self.renewers[sid] = renew or self.c.validate
        return sid

    def drop(self, sid: str):
        del self.last[sid]
        del self.renewers[sid]

    def renew(self):
        for sid in list(self.last):
            gap = time.monotonic() - self.last[sid]
            valid = self.renewers[sid](sid)
            if not valid:
                if gap < 0.75 * self.timeout:
                    pytest.fail(f"session expired although renewed {gap:.2f}s earlier "
                                f"(timeout {self.timeout}s)")
                pytest.fail(f"machine too slow for this test: {gap:.2f}s passed between two "
                            f"renewals with a {self.timeout}s timeout (a login took that long); "
                            f"set SESSIOND_TEST_EXPIRY_TIMEOUT higher, e.g. 5s")
            self.last[sid] = time.monotonic()

    def wait(self, seconds: float):
        """Sleep `seconds`, renewing the kept sessions every `interval`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(self.interval, max(0.0, end - time.monotonic())))
            self.renew()

    def login(self, login, user: str) -> str:
        """Log in (an Argon2 hash: may be slow) and renew the kept sessions right after."""
        sid = login(user)
        self.renew()
        return sid


@pytest.mark.parametrize("session_timeout", [EXPIRY_TIMEOUT])
def test_expiry(sessiond, soap):
    sessiond.add_user("updater", rights=["UpdateSessionRight"])
    sessiond.add_user("alice")
    c = connect(sessiond.serve(), soap)
    timeout = EXPIRY_SECONDS
    keep = KeepAlive(c, timeout)

    admin = keep.add(c.login("updater"))
    admin_bw = keep.add(keep.login(c.login_bw, "updater"))
    s1 = keep.add(keep.login(c.login, "alice"))
    s2 = keep.login(c.login_bw, "alice")

    # Activity renews: s1 stays valid past the timeout while it is used.
    keep.wait(timeout * 1.25)
    keep.drop(s1)

    # Let s1 and s2 expire (idle longer than the timeout), keeping the admin sessions alive.
    keep.wait(timeout * 1.5)

    # An expired session is never revived, and validateSession does not remove it.
    assert c.validate(s1) is False
    assert c.validate(s2) is False
    assert c.validate(s1) is False
    c.fault("INVALID_SESSION", "listActiveSessionIds", sessionId=s1)
    keep.renew()

    # Still stored: listed as expired (creation order), not as active.
    expired = c.assert_array("getExpiredSessionIds", admin, [s1, s2], bw=False)
    assert {s.sessionId: (s.userId, s.clientType) for s in expired} == \
        {s1: ("alice", "standard"), s2: ("alice", "bw")}
    for s in expired:
        assert as_utc(s.expirationTime) <= dt.datetime.now(dt.timezone.utc)
    c.assert_array("getExpiredSessionIds", admin_bw, [s1, s2], bw=True)
    c.assert_array("listActiveSessionIds", admin, [admin, admin_bw], bw=False)
    c.assert_array("listActiveSessionIds", admin_bw, [admin, admin_bw], bw=True)

    # deleteExpiredSessionIds removes them and returns their count.
    assert c.call("deleteExpiredSessionIds", sessionId=admin) == 2
    c.assert_array("getExpiredSessionIds", admin, [], bw=False)
    result, raw = c.array("getExpiredSessionIds", admin_bw)
    assert raw == [], f"empty result for a bw caller must have no element, got {raw}"
    assert c.call("deleteExpiredSessionIds", sessionId=admin_bw) == 0
    assert c.call("closeSession", sessionId=s1) is False  # gone for good

    # A new getSession removes all expired sessions.
    keep.renew()
    s3 = keep.login(c.login, "alice")
    keep.wait(timeout * 1.5)
    c.assert_array("getExpiredSessionIds", admin, [s3], bw=False)
    s4 = keep.login(c.login_bw, "alice")
    c.assert_array("getExpiredSessionIds", admin, [], bw=False)
    c.assert_array("listActiveSessionIds", admin, [admin, admin_bw, s4], bw=False)
    assert c.call("deleteExpiredSessionIds", sessionId=admin) == 0
    assert c.validate(s3) is False


# ==============================================================================
# Lock-out
# ==============================================================================

def test_lockout_after_five_failures(sessiond, soap):
    sessiond.add_user("alice", "secret-pw")
    sessiond.add_user("bob", "secret-pw")
    c = connect(sessiond.serve(), soap)

    c.login("alice")  # an earlier success does not matter: 5 consecutive failures lock
    for i in range(5):
        op = "getSession" if i % 2 == 0 else "getBWSession"
        c.fault("AUTHENTICATION_FAILED", op, userId="alice", password=f"wrong-{i}")
    c.fault("ACCOUNT_LOCKED", "getSession", userId="alice", password="secret-pw")
    c.fault("ACCOUNT_LOCKED", "getBWSession", userId="alice", password="secret-pw")
    # Other users are not affected.
    assert c.validate(c.login("bob", "secret-pw")) is True


def test_success_resets_failure_count(sessiond, soap):
    sessiond.add_user("alice", "secret-pw")
    c = connect(sessiond.serve(), soap)

    for _ in range(4):
        c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    c.login("alice", "secret-pw")
    for _ in range(4):
        c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    # 4 + 4 failures, but not 5 consecutive ones: not locked.
    assert c.validate(c.login_bw("alice", "secret-pw")) is True


# ==============================================================================
# The served WSDL (what zeep and PHP bind to)
# ==============================================================================

def _addresses(doc):
    out = []
    for port in doc.iter(f"{{{WSDL_NS}}}port"):
        for addr in port:
            if addr.tag in (f"{{{WSDL_SOAP11}}}address", f"{{{WSDL_SOAP12}}}address"):
                out.append((port.get("name"), addr.tag.split("}")[0][1:], addr.get("location")))
    return out


def _shape(el):
    """Element tree without comments, whitespace and soap:address locations."""
    if not isinstance(el.tag, str):
        return None
    attrs = {k: v for k, v in el.attrib.items() if k != "location"}
    kids = [s for s in (_shape(ch) for ch in el) if s is not None]
    text = (el.text or "").strip()
    return (el.tag, tuple(sorted(attrs.items())), text, tuple(kids))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_served_wsdl(sessiond, host):
    server = sessiond.serve()
    endpoint = f"http://{host}:{server.port}/services/SessionService"
    repo_wsdl = REPO_ROOT / "wsdl"

    cases = [("?wsdl", "SessionService.wsdl"), ("?WSDL", "SessionService.wsdl"),
             ("?wsdl=soap12", "SessionService-soap12.wsdl")]
    for query, fname in cases:
        resp = requests.get(endpoint + query, timeout=30)
        assert resp.status_code == 200, f"GET {query}: HTTP {resp.status_code}"
        doc = etree.fromstring(resp.content)
        addrs = _addresses(doc)
        if fname == "SessionService.wsdl":
            assert addrs == [("SessionServiceSoap", WSDL_SOAP11, endpoint)], addrs
            assert WSDL_SOAP12.encode() not in resp.content, f"{query} mentions SOAP 1.2"
        else:
            assert addrs == [("SessionServiceSoap", WSDL_SOAP11, endpoint),
                             ("SessionServiceSoap12", WSDL_SOAP12, endpoint)], addrs
        # Apart from the address, the served WSDL is the contract.
        contract = etree.parse(str(repo_wsdl / fname)).getroot()
        assert _shape(doc) == _shape(contract), f"served {query} differs from wsdl/{fname}"

    # zeep binds to the rewritten address.
    for version in VERSIONS:
        wsdl = endpoint + ("?wsdl" if version == "soap11" else "?wsdl=soap12")
        client = zeep.Client(wsdl)
        proxy = client.bind("SessionService", VERSIONS[version]["port"])
        assert proxy._binding_options["address"] == endpoint


def test_soap11_port_of_the_soap12_description(sessiond):
    """?wsdl=soap12 describes both bindings: its SOAP 1.1 port works as well."""
    sessiond.add_user("alice", rights=["ViewSessionRight"])
    server = sessiond.serve()
    c = SessionClient(server, "soap11")
    c.client = zeep.Client(server.wsdl12, transport=c.transport)
    c.service = c.client.bind("SessionService", "SessionServiceSoap")
    assert c.service._binding_options["address"] == server.endpoint
    sid = c.login("alice")
    assert c.validate(sid) is True
    c.assert_array("listActiveSessionIds", sid, [sid], bw=False)
    c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")


# ==============================================================================
# The extended operations: startSession, getSessions, getSessionInfo, getSessionUser,
# getCurrentSession, extendSession, confirmId, openClientlessSession, closeClientlessSession
# ==============================================================================

# SESSIOND_LOCATION of the servers these tests start: every session they create carries it.
LOCATION = "interop-node-a"
OTHER_LOCATION = "interop-node-b"
BOGUS = "no-such-session-0123456789abcdef"

# The contract's SessionInfo: element order, and which elements may be nil.
SESSION_INFO_FIELDS = [
    "sessionId", "userId", "clientType", "clientName", "host", "location", "creationTime",
    "lastActivityTime", "expirationTime", "endTime", "endReason", "createdBy", "isCurrent",
    "isRemote",
]
SESSION_INFO_NILLABLE = {"clientName", "host", "endTime", "endReason", "createdBy"}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def window(slack: float = 3.0):
    """(now - slack, a function giving now + slack): bounds for a time the server sets
    between the two calls."""
    lo = now_utc() - dt.timedelta(seconds=slack)
    return lo, lambda: now_utc() + dt.timedelta(seconds=slack)


def raw_session_infos(c: SessionClient, op: str):
    """The <session> elements of the last response (op's wrapper), each as {field: text or None
    for nil}, or None for a nil <session>. Checks every SessionInfo against the contract: all
    fourteen elements, in order, qualified, and nil only where the schema allows it."""
    body = c._response_doc().find(f"{{{c.v['env_ns']}}}Body")
    wrapper = body[0]
    assert wrapper.tag == f"{{{TNS}}}{op}Response", f"wrapper element {wrapper.tag}"
    out = []
    for child in wrapper:
        if not isinstance(child.tag, str):
            continue
        assert child.tag == f"{{{TNS}}}session", f"{op}: unexpected child {child.tag}"
        if child.get(f"{{{XSI}}}nil") in ("true", "1"):
            out.append(None)
            continue
        fields = [el for el in child if isinstance(el.tag, str)]
        names = [etree.QName(el).localname for el in fields]
        assert names == SESSION_INFO_FIELDS, f"{op}: SessionInfo elements {names}"
        info = {}
        for el in fields:
            name = etree.QName(el).localname
            assert etree.QName(el).namespace == TNS, f"{op}: {name} not in {TNS}"
            if el.get(f"{{{XSI}}}nil") in ("true", "1"):
                assert name in SESSION_INFO_NILLABLE, f"{op}: {name} sent nil, not nillable"
                assert len(el) == 0 and not (el.text or "").strip(), f"{op}: nil {name} with content"
                info[name] = None
            else:
                info[name] = el.text or ""
        out.append(info)
    return out


def info_call(c: SessionClient, op: str, **kwargs):
    """An operation answering one SessionInfo (startSession, getSessionInfo,
    getCurrentSession): zeep's object, checked against the XML on the wire."""
    info = c.call(op, **kwargs)
    raw = raw_session_infos(c, op)
    assert len(raw) == 1 and raw[0] is not None, f"{op}: expected one SessionInfo, XML had {raw}"
    assert info is not None and info.sessionId == raw[0]["sessionId"], f"{op} decoded {info!r}"
    for name in SESSION_INFO_NILLABLE:
        assert (getattr(info, name) is None) == (raw[0][name] is None), \
            f"{op}: {name} decoded {getattr(info, name)!r}, XML had {raw[0][name]!r}"
    return info


def check_info(info, *, user_id: str, client_type: str, is_current: bool,
               session_id=None, client_name=None, created_by=None, location=LOCATION,
               is_remote=False, created=None, timeout: float = 1800, live: bool = True):
    """One SessionInfo as zeep decoded it. `created`: (low, high) bounds of creationTime.
    `live`: endTime and endReason nil (an ended session is checked by the caller)."""
    what = f"SessionInfo {info.sessionId!r}"
    assert isinstance(info.sessionId, str) and SESSION_ID_RE.match(info.sessionId), what
    if session_id is not None:
        assert info.sessionId == session_id, f"{what}: expected {session_id}"
    assert info.userId == user_id, f"{what}: userId {info.userId!r}"
    assert info.clientType == client_type, f"{what}: clientType {info.clientType!r}"
    assert info.clientName == client_name, f"{what}: clientName {info.clientName!r}"
    assert info.host == "127.0.0.1", f"{what}: host {info.host!r}"
    assert info.location == location, f"{what}: location {info.location!r}"
    for name in ("creationTime", "lastActivityTime", "expirationTime"):
        assert isinstance(getattr(info, name), dt.datetime), \
            f"{what}: {name} decoded as {getattr(info, name)!r}"
    creation, last, expires = (as_utc(info.creationTime), as_utc(info.lastActivityTime),
                               as_utc(info.expirationTime))
    if created is not None:
        lo, hi = created
        assert lo <= creation <= hi, f"{what}: creationTime {creation} outside [{lo}, {hi}]"
    assert creation <= last, f"{what}: lastActivityTime {last} before creationTime {creation}"
    delta = (expires - last).total_seconds()
    assert abs(delta - timeout) <= 1, f"{what}: expirationTime - lastActivityTime = {delta}s"
    if live:
        assert info.endTime is None, f"{what}: endTime {info.endTime!r} for a live session"
        assert info.endReason is None, f"{what}: endReason {info.endReason!r} for a live session"
    assert info.createdBy == created_by, f"{what}: createdBy {info.createdBy!r}"
    assert info.isCurrent is is_current, f"{what}: isCurrent {info.isCurrent!r}"
    assert info.isRemote is is_remote, f"{what}: isRemote {info.isRemote!r}"


def check_ended(info, reason: str, ended):
    """An ended session: endReason, and endTime a datetime within `ended` (low, high)."""
    what = f"SessionInfo {info.sessionId!r}"
    assert info.endReason == reason, f"{what}: endReason {info.endReason!r}, expected {reason}"
    assert isinstance(info.endTime, dt.datetime), f"{what}: endTime {info.endTime!r}"
    lo, hi = ended
    assert lo <= as_utc(info.endTime) <= hi, f"{what}: endTime {info.endTime} outside [{lo}, {hi}]"
    assert info.isCurrent is False


def start(c: SessionClient, user: str, password: str = "secret-pw", **optionals):
    """startSession; returns the SessionInfo (checked against the wire)."""
    info = info_call(c, "startSession", userId=user, password=password, **optionals)
    assert SESSION_ID_RE.match(info.sessionId), f"bad session ID {info.sessionId!r}"
    return info


def sessions_call(c: SessionClient, caller: str, **filters):
    """getSessions: (zeep's SessionInfo objects without the nil ones, the IDs on the wire
    with None for a nil element); every SessionInfo is checked against the contract."""
    result, raw = c.array("getSessions", caller, **filters)
    infos = raw_session_infos(c, "getSessions")
    assert [None if i is None else i["sessionId"] for i in infos] == raw
    return [s for s in result if s is not None], raw


def sent_nil(c: SessionClient, *names: str):
    """The last request carried each of `names` as an xsi:nil element (zeep.xsd.Nil)."""
    doc = etree.fromstring(c.transport.last_request_body)
    for name in names:
        els = [el for el in doc.iter() if isinstance(el.tag, str)
               and etree.QName(el).localname == name]
        assert len(els) == 1 and els[0].get(f"{{{XSI}}}nil") == "true", \
            f"zeep did not send {name} as xsi:nil: {etree.tostring(doc)!r}"


def test_start_session(sessiond, soap):
    sessiond.add_user("alice", "s3cret pass")
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    server = sessiond.serve(SESSIOND_LOCATION=LOCATION)
    c = connect(server, soap)

    lo, hi = window()
    erp = start(c, "alice", "s3cret pass", clientType="erp", clientName="SAP ERP – Produktion")
    check_info(erp, user_id="alice", client_type="erp", client_name="SAP ERP – Produktion",
               is_current=True, created=(lo, hi()))
    assert c.validate(erp.sessionId) is True

    # Absent optionals: client type standard, no client name.
    plain = start(c, "alice", "s3cret pass")
    check_info(plain, user_id="alice", client_type="standard", is_current=True,
               created=(lo, hi()))
    # The same sent as xsi:nil (docs/behaviour.md §1: a nil optional is absent).
    nil = start(c, "alice", "s3cret pass", clientType=xsd.Nil, clientName=xsd.Nil)
    sent_nil(c, "clientType", "clientName")
    check_info(nil, user_id="alice", client_type="standard", is_current=True,
               created=(lo, hi()))
    assert len({erp.sessionId, plain.sessionId, nil.sessionId}) == 3
    assert as_utc(erp.creationTime) <= as_utc(plain.creationTime) <= as_utc(nil.creationTime)

    # The caller's own session described by getCurrentSession: the same record.
    current = info_call(c, "getCurrentSession", sessionId=erp.sessionId)
    check_info(current, session_id=erp.sessionId, user_id="alice", client_type="erp",
               client_name="SAP ERP – Produktion", is_current=True, created=(lo, hi()))
    assert as_utc(current.creationTime) == as_utc(erp.creationTime)
    assert as_utc(current.lastActivityTime) >= as_utc(erp.lastActivityTime)

    # Password checked like getSession: one message for a wrong password and an unknown user.
    wrong = c.fault("AUTHENTICATION_FAILED", "startSession", userId="alice", password="wrong",
                    clientType="erp")
    unknown = c.fault("AUTHENTICATION_FAILED", "startSession", userId="nobody",
                      password="s3cret pass")
    legacy = c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    assert fault_message(wrong) == fault_message(unknown) == fault_message(legacy)

    # A second instance on the same database, with another location: isRemote.
    c2 = connect(sessiond.serve(SESSIOND_LOCATION=OTHER_LOCATION), soap)
    there = start(c2, "viewer", clientName="node b")
    check_info(there, user_id="viewer", client_type="standard", client_name="node b",
               location=OTHER_LOCATION, is_current=True, created=(lo, hi()))
    remote = info_call(c2, "getSessionInfo", sessionId=there.sessionId,
                       targetSessionId=erp.sessionId)
    check_info(remote, session_id=erp.sessionId, user_id="alice", client_type="erp",
               client_name="SAP ERP – Produktion", is_current=False, is_remote=True)
    back = info_call(c, "getSessionInfo", sessionId=there.sessionId,
                     targetSessionId=there.sessionId)
    check_info(back, session_id=there.sessionId, user_id="viewer", client_type="standard",
               client_name="node b", location=OTHER_LOCATION, is_current=True, is_remote=True)


def test_get_current_session_and_extend_session(sessiond, soap):
    sessiond.add_user("alice")
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)

    lo, hi = window()
    s = c.login("alice")
    bw = c.login_bw("alice")
    first = info_call(c, "getCurrentSession", sessionId=s)
    check_info(first, session_id=s, user_id="alice", client_type="standard", is_current=True,
               created=(lo, hi()))
    check_info(info_call(c, "getCurrentSession", sessionId=bw), session_id=bw, user_id="alice",
               client_type="bw", is_current=True, created=(lo, hi()))

    # extendSession renews and returns the new expiration time: now + 30 minutes.
    time.sleep(0.6)
    before = now_utc()
    expires = c.call("extendSession", sessionId=s)
    after = now_utc()
    assert isinstance(expires, dt.datetime), f"extendSession returned {expires!r}"
    expires = as_utc(expires)
    timeout = dt.timedelta(minutes=30)
    assert before + timeout - dt.timedelta(seconds=1) <= expires <= after + timeout + \
        dt.timedelta(seconds=1), f"extendSession: {expires}, called at {before}"
    assert expires - as_utc(first.expirationTime) >= dt.timedelta(seconds=0.5), \
        f"extendSession did not move the expiration ({first.expirationTime} -> {expires})"
    again = info_call(c, "getCurrentSession", sessionId=s)
    assert as_utc(again.lastActivityTime) >= expires - timeout, \
        f"lastActivityTime {again.lastActivityTime} after extendSession to {expires}"
    assert as_utc(again.expirationTime) >= expires
    assert as_utc(again.creationTime) == as_utc(first.creationTime)
    assert isinstance(c.call("extendSession", sessionId=bw), dt.datetime)

    # Unknown and ended sessions: INVALID_SESSION, and nothing is revived.
    for op in ("getCurrentSession", "extendSession"):
        c.fault("INVALID_SESSION", op, sessionId=BOGUS)
    assert c.call("closeSession", sessionId=s) is True
    for op in ("extendSession", "getCurrentSession", "extendSession"):
        c.fault("INVALID_SESSION", op, sessionId=s)
    assert c.validate(s) is False
    assert c.call("closeSession", sessionId=s) is False
    assert c.validate(bw) is True


def test_get_sessions_filters_and_paging(sessiond, soap):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("alice")
    sessiond.add_user("bob")
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)

    lo, hi = window()
    v = c.login("viewer")
    a1 = c.login("alice")
    a2 = start(c, "alice", clientType="erp", clientName="SAP").sessionId
    b1 = c.login("bob")
    vbw = c.login_bw("viewer")
    everyone = [v, a1, a2, b1, vbw]

    # No filter: every active session, creation order, then nil; each described in full.
    listed = c.assert_array("getSessions", v, everyone, bw=False)
    by_id = {s.sessionId: s for s in listed}
    expect = {v: ("viewer", "standard", None), a1: ("alice", "standard", None),
              a2: ("alice", "erp", "SAP"), b1: ("bob", "standard", None),
              vbw: ("viewer", "bw", None)}
    for sid, (user, kind, name) in expect.items():
        check_info(by_id[sid], session_id=sid, user_id=user, client_type=kind, client_name=name,
                   is_current=(sid == v), created=(lo, hi()))
    ordered = [s.sessionId for s in listed]

    # Each filter, and their combinations (all must match).
    c.assert_array("getSessions", v, [a1, a2], bw=False, filterUserId="alice")
    c.assert_array("getSessions", v, [a2], bw=False, filterClientType="erp")
    c.assert_array("getSessions", v, [b1], bw=False, filterSessionId=b1)
    c.assert_array("getSessions", v, [a1], bw=False, filterUserId="alice",
                   filterClientType="standard")
    c.assert_array("getSessions", v, [v, vbw], bw=False, filterUserId="viewer")
    c.assert_array("getSessions", v, [], bw=False, filterUserId="bob", filterSessionId=a1)
    c.assert_array("getSessions", v, [], bw=False, filterUserId="nobody")
    c.assert_array("getSessions", v, everyone, bw=False, includeExpired=False)

    # offset / limit page through the same order.
    for offset, limit in ((1, 2), (0, 1), (4, None), (None, 3), (0, 0), (9, None), (2, 100)):
        params = {k: x for k, x in (("offset", offset), ("limit", limit)) if x is not None}
        _, raw = sessions_call(c, v, **params)
        start_at = offset or 0
        page = ordered[start_at:] if limit is None else ordered[start_at:start_at + limit]
        assert raw == page + [None], f"getSessions{params}: {raw}, expected {page} then nil"
    c.fault("INVALID_REQUEST", "getSessions", sessionId=v, offset=-1)
    c.fault("INVALID_REQUEST", "getSessions", sessionId=v, limit=-1)

    # Optionals sent as xsi:nil are absent: no filter at all.
    _, raw = sessions_call(c, v, filterSessionId=xsd.Nil, filterUserId=xsd.Nil,
                           filterClientType=xsd.Nil, includeExpired=xsd.Nil,
                           offset=xsd.Nil, limit=xsd.Nil)
    sent_nil(c, "filterSessionId", "filterUserId", "filterClientType", "includeExpired",
             "offset", "limit")
    assert raw == ordered + [None], f"getSessions with nil optionals: {raw}"

    # A getBWSession caller: no nil element; an empty result has no element at all.
    bw_listed = c.assert_array("getSessions", vbw, everyone, bw=True)
    assert [s.sessionId for s in bw_listed if s.isCurrent] == [vbw]
    result, raw = sessions_call(c, vbw, filterUserId="nobody")
    assert raw == [] and result == [], f"empty getSessions for a bw caller: {raw}"
    _, raw = sessions_call(c, vbw, offset=1, limit=2)
    assert raw == ordered[1:3], f"getSessions page for a bw caller: {raw}, expected {ordered[1:3]}"

    # Without a view right: the caller's own user's sessions only.
    c.assert_array("getSessions", a1, [a1, a2], bw=False)
    c.assert_array("getSessions", a1, [a1, a2], bw=False, filterUserId="alice")
    c.assert_array("getSessions", a1, [a2], bw=False, filterClientType="erp")
    c.assert_array("getSessions", a1, [], bw=False, filterSessionId=b1)
    c.assert_array("getSessions", a1, [a1, a2], bw=False, filterUserId=xsd.Nil)
    c.fault("ACCESS_DENIED", "getSessions", sessionId=a1, filterUserId="bob")
    c.fault("ACCESS_DENIED", "getSessions", sessionId=b1, filterUserId="viewer")
    assert c.validate(a1) is True

    # A session startSession made with client type "bw" is a bw caller too.
    a3 = start(c, "alice", clientType="bw").sessionId
    c.assert_array("getSessions", a3, [a1, a2, a3], bw=True)
    c.assert_array("getSessions", a1, [a1, a2, a3], bw=False)

    # Closed sessions are gone from the list; an unknown caller is INVALID_SESSION.
    assert c.call("closeSession", sessionId=a2) is True
    c.assert_array("getSessions", v, [v, a1, b1, vbw, a3], bw=False, includeExpired=True)
    c.fault("INVALID_SESSION", "getSessions", sessionId=BOGUS)
    c.fault("INVALID_SESSION", "getSessions", sessionId=a2)


def test_get_session_info_and_user_rights(sessiond, soap):
    _rights_users(sessiond)
    sessiond.add_user("alice")
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)

    lo, hi = window()
    a = start(c, "alice", clientName="alice's client").sessionId

    # A view right (any of the three, department or not) shows other users' sessions.
    for user in ("viewer", "updater", "admin", "deptadmin"):
        sid = c.login(user)
        info = info_call(c, "getSessionInfo", sessionId=sid, targetSessionId=a)
        check_info(info, session_id=a, user_id="alice", client_type="standard",
                   client_name="alice's client", is_current=False, created=(lo, hi()))
        assert c.call("getSessionUser", sessionId=sid, targetSessionId=a) == "alice"
        c.assert_array("getSessions", sid, [a], bw=False, filterUserId="alice")
        c.fault("SESSION_NOT_FOUND", "getSessionInfo", sessionId=sid, targetSessionId=BOGUS)
        c.fault("SESSION_NOT_FOUND", "getSessionUser", sessionId=sid, targetSessionId=BOGUS)

    # Without one: only the caller's own user's sessions.
    for user in ("plain", "plaindept"):
        sid = c.login(user)
        other = c.login_bw(user)
        c.fault("ACCESS_DENIED", "getSessionInfo", sessionId=sid, targetSessionId=a)
        c.fault("ACCESS_DENIED", "getSessionUser", sessionId=sid, targetSessionId=a)
        c.fault("ACCESS_DENIED", "getSessions", sessionId=sid, filterUserId="alice")
        own = info_call(c, "getSessionInfo", sessionId=sid, targetSessionId=sid)
        check_info(own, session_id=sid, user_id=user, client_type="standard", is_current=True)
        mine = info_call(c, "getSessionInfo", sessionId=sid, targetSessionId=other)
        check_info(mine, session_id=other, user_id=user, client_type="bw", is_current=False)
        assert c.call("getSessionUser", sessionId=sid, targetSessionId=other) == user
        assert c.call("getSessionUser", sessionId=other, targetSessionId=sid) == user
        assert c.validate(sid) is True, f"{user}: a denied call ended the caller's session"

    for op in ("getSessionInfo", "getSessionUser"):
        c.fault("INVALID_SESSION", op, sessionId=BOGUS, targetSessionId=a)
    assert c.validate(a) is True


def test_ended_sessions_in_history(sessiond, soap):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("updater", rights=["UpdateSessionRight"])
    sessiond.add_user("alice")
    sessiond.add_user("carol", "carol-pw")
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)

    lo, hi = window()
    v = c.login("viewer")
    u = c.login("updater")
    a = c.login("alice")
    closed = start(c, "alice", clientType="erp", clientName="closing").sessionId
    deleted = c.login_bw("alice")
    c1 = c.login("carol", "carol-pw")
    c2 = start(c, "carol", "carol-pw", clientName="carol 2").sessionId

    # closed (closeSession), deleted (deleteSessionId), user-disabled (`sessiond user disable`).
    t0 = now_utc() - dt.timedelta(seconds=1)
    assert c.call("closeSession", sessionId=closed) is True
    c.call("deleteSessionId", sessionId=u, targetSessionId=deleted)
    sessiond.cli(["user", "disable", "carol"])
    t1 = now_utc() + dt.timedelta(seconds=1)

    cases = [(closed, "alice", "erp", "closing", "closed"),
             (deleted, "alice", "bw", None, "deleted"),
             (c1, "carol", "standard", None, "user-disabled"),
             (c2, "carol", "standard", "carol 2", "user-disabled")]
    for sid, user, kind, name, reason in cases:
        info = info_call(c, "getSessionInfo", sessionId=v, targetSessionId=sid)
        check_info(info, session_id=sid, user_id=user, client_type=kind, client_name=name,
                   is_current=False, created=(lo, hi()), live=False)
        check_ended(info, reason, (t0, t1))
        assert c.call("getSessionUser", sessionId=v, targetSessionId=sid) == user
        assert c.validate(sid) is False

    # Ended sessions are no longer listed, expired ones included or not.
    c.assert_array("getSessions", v, [v, u, a], bw=False, includeExpired=True)
    # A disabled user's sessions cannot call; the user cannot start a new one.
    c.fault("INVALID_SESSION", "getCurrentSession", sessionId=c1)
    c.fault("INVALID_SESSION", "extendSession", sessionId=c2)
    c.fault("AUTHENTICATION_FAILED", "startSession", userId="carol", password="carol-pw")

    # The owner sees its own ended sessions without a view right, not other users'.
    mine = info_call(c, "getSessionInfo", sessionId=a, targetSessionId=closed)
    check_ended(mine, "closed", (t0, t1))
    assert c.call("getSessionUser", sessionId=a, targetSessionId=deleted) == "alice"
    c.fault("ACCESS_DENIED", "getSessionInfo", sessionId=a, targetSessionId=c1)
    c.fault("ACCESS_DENIED", "getSessionUser", sessionId=a, targetSessionId=c2)


def _extend_renewer(c: SessionClient, timeout: float):
    """A KeepAlive renewer using extendSession, checking the expiration time it returns."""
    def renew(sid: str) -> bool:
        try:
            expires = c.service.extendSession(sessionId=sid)
        except Fault as exc:
            if fault_code(exc) == "INVALID_SESSION":
                return False
            raise
        c._check_protocol("extendSession", fault=False)
        gap = (as_utc(expires) - now_utc()).total_seconds() - timeout
        assert abs(gap) <= 1, f"extendSession returned {expires}: now + timeout {gap:+.3f}s"
        return True
    return renew


def _call_renewer(c: SessionClient, op: str, **params):
    """A KeepAlive renewer calling `op` with the session as caller (docs/behaviour.md §3: every
    call a valid session authenticates renews it). A parameter given as SELF is the session ID itself."""
    def renew(sid: str) -> bool:
        kwargs = {k: sid if x is SELF else x for k, x in params.items()}
        try:
            result = getattr(c.service, op)(sessionId=sid, **kwargs)
        except Fault as exc:
            if fault_code(exc) == "INVALID_SESSION":
                return False
            raise
        c._check_protocol(op, fault=False)
        if op == "confirmId":
            assert result is True, f"confirmId with the right password: {result!r}"
        return True
    return renew


SELF = object()


@pytest.mark.parametrize("session_timeout", [EXPIRY_TIMEOUT])
def test_extended_operations_and_expiry(sessiond, soap):
    sessiond.add_user("viewer", rights=["ViewSessionRight"])
    sessiond.add_user("alice")
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)
    timeout = EXPIRY_SECONDS
    keep = KeepAlive(c, timeout)

    v = keep.add(c.login("viewer"))
    ext = start(c, "alice", clientName="kept alive by extendSession").sessionId
    keep.add(ext, renew=_extend_renewer(c, timeout))
    keep.renew()
    # Sessions kept alive by other extended operations alone.
    others = []
    for op, params in (("getCurrentSession", {}), ("getSessions", {}),
                       ("getSessionUser", {"targetSessionId": SELF}),
                       ("getSessionInfo", {"targetSessionId": SELF}),
                       ("confirmId", {"password": "secret-pw"})):
        sid = keep.login(c.login, "alice")
        others.append(keep.add(sid, renew=_call_renewer(c, op, **params)))
    idle = start(c, "alice", clientType="batch").sessionId
    keep.renew()
    idle_info = info_call(c, "getSessionInfo", sessionId=v, targetSessionId=idle)

    # idle expires; ext lives on extendSession alone, the others on their operation.
    keep.wait(timeout * 1.5)
    c.fault("INVALID_SESSION", "extendSession", sessionId=idle)
    c.fault("INVALID_SESSION", "getCurrentSession", sessionId=idle)
    c.fault("INVALID_SESSION", "confirmId", sessionId=idle, password="secret-pw")
    c.fault("INVALID_SESSION", "extendSession", sessionId=idle)
    assert c.validate(idle) is False, "extendSession revived an expired session"
    keep.renew()

    ext_info = info_call(c, "getSessionInfo", sessionId=v, targetSessionId=ext)
    check_info(ext_info, session_id=ext, user_id="alice", client_type="standard",
               client_name="kept alive by extendSession", is_current=False, timeout=timeout)
    assert (as_utc(ext_info.lastActivityTime) - as_utc(ext_info.creationTime)).total_seconds() \
        >= timeout, f"extendSession did not renew lastActivityTime: {ext_info}"

    # getSessions: active only, unless includeExpired.
    c.assert_array("getSessions", v, [v, ext, *others], bw=False)
    c.assert_array("getSessions", v, [v, ext, *others], bw=False, includeExpired=False)
    listed = c.assert_array("getSessions", v, [v, ext, *others, idle], bw=False,
                            includeExpired=True)
    stored = {s.sessionId: s for s in listed}[idle]
    check_info(stored, session_id=idle, user_id="alice", client_type="batch", is_current=False,
               timeout=timeout)
    assert as_utc(stored.expirationTime) < now_utc()
    c.assert_array("getSessions", v, [idle], bw=False, includeExpired=True,
                   filterClientType="batch")
    # Without a view right: the caller's own user's sessions, expired ones included.
    c.assert_array("getSessions", others[0], [ext, *others, idle], bw=False,
                   includeExpired=True)
    keep.renew()

    # startSession, like getSession, removes expired sessions: idle is then in the history,
    # ended "expired" at its expiration time (README: not at its removal).
    removed_at = now_utc()
    fresh = keep.login(lambda user: start(c, user).sessionId, "alice")
    info = info_call(c, "getSessionInfo", sessionId=v, targetSessionId=idle)
    check_info(info, session_id=idle, user_id="alice", client_type="batch", is_current=False,
               timeout=timeout, live=False)
    assert info.endReason == "expired", f"endReason {info.endReason!r}"
    assert isinstance(info.endTime, dt.datetime), f"endTime {info.endTime!r}"
    assert abs((as_utc(info.endTime) - as_utc(info.expirationTime)).total_seconds()) <= 0.001, \
        f"endTime {info.endTime} is not the expiration time {info.expirationTime}"
    assert as_utc(info.endTime) < removed_at - dt.timedelta(seconds=0.5), \
        f"endTime {info.endTime}: the removal time ({removed_at}), not the expiration"
    assert as_utc(info.creationTime) == as_utc(idle_info.creationTime)
    assert c.call("getSessionUser", sessionId=v, targetSessionId=idle) == "alice"
    c.assert_array("getSessions", v, [v, ext, *others, fresh], bw=False, includeExpired=True)
    keep.renew()


def test_confirm_id_and_lockout(sessiond, soap):
    sessiond.add_user("alice", "secret-pw")
    sessiond.add_user("bob", "bob-pw-1")
    sessiond.add_user("carol", "carol-pw")
    c = connect(sessiond.serve(), soap)

    a = c.login("alice", "secret-pw")
    bw = c.login_bw("alice", "secret-pw")
    assert c.call("confirmId", sessionId=a, password="secret-pw") is True
    assert c.call("confirmId", sessionId=bw, password="secret-pw") is True
    # A wrong password is false, not a fault; passwords are exact.
    assert c.call("confirmId", sessionId=a, password="wrong") is False
    assert c.call("confirmId", sessionId=a, password="SECRET-PW") is False
    assert c.call("confirmId", sessionId=a, password="secret ") is False
    c.fault("INVALID_SESSION", "confirmId", sessionId=BOGUS, password="secret-pw")

    # A success resets the count: 3 + 4 failures around one success do not lock.
    assert c.call("confirmId", sessionId=a, password="secret-pw") is True
    for _ in range(4):
        assert c.call("confirmId", sessionId=a, password="wrong") is False
    assert c.call("confirmId", sessionId=a, password="secret-pw") is True
    assert c.validate(c.login("alice", "secret-pw")) is True

    # Five wrong confirmIds in a row lock the user.
    for i in range(5):
        assert c.call("confirmId", sessionId=a, password=f"wrong-{i}") is False
    c.fault("ACCOUNT_LOCKED", "getSession", userId="alice", password="secret-pw")
    c.fault("ACCOUNT_LOCKED", "startSession", userId="alice", password="secret-pw")
    # The right password does not confirm a locked user either.
    try:
        confirmed = c.service.confirmId(sessionId=a, password="secret-pw")
    except Fault as exc:
        assert fault_code(exc) == "ACCOUNT_LOCKED", f"confirmId while locked: {fault_code(exc)}"
    else:
        assert confirmed is False, "confirmId while locked returned true"

    # Failures of getSession, startSession and confirmId add up.
    b = c.login("bob", "bob-pw-1")
    c.fault("AUTHENTICATION_FAILED", "getSession", userId="bob", password="x1")
    c.fault("AUTHENTICATION_FAILED", "startSession", userId="bob", password="x2",
            clientType="erp")
    c.fault("AUTHENTICATION_FAILED", "getBWSession", userId="bob", password="x3")
    c.fault("AUTHENTICATION_FAILED", "startSession", userId="bob", password="x4")
    assert c.call("confirmId", sessionId=b, password="x5") is False
    c.fault("ACCOUNT_LOCKED", "startSession", userId="bob", password="bob-pw-1")
    c.fault("ACCOUNT_LOCKED", "getBWSession", userId="bob", password="bob-pw-1")

    # Others are not affected.
    carol = start(c, "carol", "carol-pw")
    assert c.call("confirmId", sessionId=carol.sessionId, password="carol-pw") is True


def test_clientless_sessions(sessiond, soap):
    _rights_users(sessiond)
    sessiond.add_user("admin2", rights=["AdministratorRight"])
    sessiond.add_user("alice")
    sessiond.add_user("dave")
    sessiond.cli(["user", "disable", "dave"])
    c = connect(sessiond.serve(SESSIOND_LOCATION=LOCATION), soap)

    lo, hi = window()
    adm = c.login("admin")
    cl = c.call("openClientlessSession", sessionId=adm, userId="alice", clientName="nightly batch")
    assert isinstance(cl, str) and SESSION_ID_RE.match(cl), f"clientless session ID {cl!r}"
    cl2 = c.call("openClientlessSession", sessionId=adm, userId="alice")
    cl3 = c.call("openClientlessSession", sessionId=adm, userId="alice", clientName=xsd.Nil)
    sent_nil(c, "clientName")
    assert len({cl, cl2, cl3}) == 3
    for sid in (cl, cl2, cl3):
        assert c.validate(sid) is True

    info = info_call(c, "getSessionInfo", sessionId=adm, targetSessionId=cl)
    check_info(info, session_id=cl, user_id="alice", client_type="clientless",
               client_name="nightly batch", created_by="admin", is_current=False,
               created=(lo, hi()))
    for sid in (cl2, cl3):
        check_info(info_call(c, "getSessionInfo", sessionId=adm, targetSessionId=sid),
                   session_id=sid, user_id="alice", client_type="clientless",
                   created_by="admin", is_current=False, created=(lo, hi()))
    # The clientless session is the user's: it can call, and describes itself.
    check_info(info_call(c, "getCurrentSession", sessionId=cl), session_id=cl,
               user_id="alice", client_type="clientless", client_name="nightly batch",
               created_by="admin", is_current=True)
    assert c.call("getSessionUser", sessionId=adm, targetSessionId=cl) == "alice"
    listed = c.assert_array("getSessions", adm, [cl, cl2, cl3], bw=False,
                            filterClientType="clientless")
    assert {s.createdBy for s in listed} == {"admin"}

    # Only an admin without department may open one.
    others = {u: c.login(u) for u in ("deptadmin", "viewer", "updater", "plain", "alice")}
    for user, sid in others.items():
        c.fault("ACCESS_DENIED", "openClientlessSession", sessionId=sid, userId="alice")
    c.fault("INVALID_SESSION", "openClientlessSession", sessionId=BOGUS, userId="alice")
    # Unknown or disabled user: INVALID_REQUEST.
    c.fault("INVALID_REQUEST", "openClientlessSession", sessionId=adm, userId="nobody")
    c.fault("INVALID_REQUEST", "openClientlessSession", sessionId=adm, userId="dave")
    c.assert_array("getSessions", adm, [cl, cl2, cl3], bw=False, filterClientType="clientless")

    # Closing: the opener or an admin without department; nobody else, the session's own
    # user included.
    for user, sid in others.items():
        c.fault("ACCESS_DENIED", "closeClientlessSession", sessionId=sid, clientlessSessionId=cl)
    c.fault("ACCESS_DENIED", "closeClientlessSession", sessionId=cl2, clientlessSessionId=cl)
    assert c.validate(cl) is True, "a denied closeClientlessSession ended the session"
    c.fault("INVALID_SESSION", "closeClientlessSession", sessionId=BOGUS, clientlessSessionId=cl)

    t0 = now_utc() - dt.timedelta(seconds=1)
    adm2 = c.login("admin2")
    assert c.call("closeClientlessSession", sessionId=adm2, clientlessSessionId=cl2) is True
    assert c.call("closeClientlessSession", sessionId=adm, clientlessSessionId=cl) is True
    t1 = now_utc() + dt.timedelta(seconds=1)
    for sid, name in ((cl, "nightly batch"), (cl2, None)):
        assert c.validate(sid) is False
        ended = info_call(c, "getSessionInfo", sessionId=adm, targetSessionId=sid)
        check_info(ended, session_id=sid, user_id="alice", client_type="clientless",
                   client_name=name, created_by="admin", is_current=False, live=False)
        check_ended(ended, "closed", (t0, t1))
    # Already closed or unknown: closed=false, no fault.
    assert c.call("closeClientlessSession", sessionId=adm, clientlessSessionId=cl) is False
    assert c.call("closeClientlessSession", sessionId=adm, clientlessSessionId=BOGUS) is False
    # Not a clientless session: INVALID_REQUEST, and it stays open.
    c.fault("INVALID_REQUEST", "closeClientlessSession", sessionId=adm,
            clientlessSessionId=others["alice"])
    assert c.validate(others["alice"]) is True

    # The opener may close its session even after losing the right (README).
    sessiond.cli(["user", "revoke", "admin", "AdministratorRight"])
    c.fault("ACCESS_DENIED", "openClientlessSession", sessionId=adm, userId="alice")
    assert c.call("closeClientlessSession", sessionId=adm, clientlessSessionId=cl3) is True
    assert c.validate(cl3) is False
