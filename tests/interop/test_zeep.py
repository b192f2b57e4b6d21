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
from zeep.exceptions import Fault

REPO_ROOT = Path(__file__).resolve().parents[2]
TNS = "urn:sessiond:session:1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11 = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12 = "http://schemas.xmlsoap.org/wsdl/soap12/"

# >= 128 bits, URL-safe, at most 64 characters (SPEC §3).
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
    def login(self, user: str, password: str = "secret") -> str:
        sid = self.call("getSession", userId=user, password=password)
        assert isinstance(sid, str) and SESSION_ID_RE.match(sid), f"bad session ID {sid!r}"
        return sid

    def login_bw(self, user: str, password: str = "secret") -> str:
        sid = self.call("getBWSession", userId=user, password=password)
        assert isinstance(sid, str) and SESSION_ID_RE.match(sid), f"bad session ID {sid!r}"
        return sid

    def validate(self, sid: str) -> bool:
        valid = self.call("validateSession", sessionId=sid)
        assert isinstance(valid, bool), f"validateSession returned {valid!r}"
        return valid

    def array(self, op: str, caller: str):
        """Call an array operation; return (zeep's list, the raw XML elements as IDs/None).

        Both views are returned as lists of sessionId or None (nil element)."""
        result = self.call(op, sessionId=caller)
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

    def assert_array(self, op: str, caller: str, created_ids, bw: bool):
        """The array holds exactly `created_ids` (given in the order the test created them),
        ordered by creationTime then sessionId, followed by one nil element unless bw.

        The order is computed from the creationTime values the server returned (so a server
        storing whole seconds is judged by its ID tie-break), and those values must agree
        with the order in which the sessions were really created."""
        result, raw = self.array(op, caller)
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
            f"{op} for a {kind} caller: got {raw}, expected {expected}"
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
    sessiond.add_user("alice", "secret")
    c = connect(sessiond.serve(), soap)

    wrong = c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    unknown = c.fault("AUTHENTICATION_FAILED", "getSession", userId="nobody", password="secret")
    c.fault("AUTHENTICATION_FAILED", "getBWSession", userId="alice", password="wrong")
    c.fault("AUTHENTICATION_FAILED", "getBWSession", userId="nobody", password="secret")
    # Case matters: user IDs are not case-folded into a different account's password check.
    c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="SECRET")

    # No user enumeration: same message for an unknown user and a wrong password.
    assert fault_message(wrong) == fault_message(unknown)
    assert wrong.message == unknown.message

    # The failures did not lock or break the account.
    assert c.validate(c.login("alice", "secret")) is True


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

    def add(self, sid: str) -> str:
        """Keep `sid` alive from now on (call right after it was created or used)."""
        self.last[sid] = time.monotonic()
        return sid

    def drop(self, sid: str):
        del self.last[sid]

    def renew(self):
        for sid in list(self.last):
            gap = time.monotonic() - self.last[sid]
            valid = self.c.validate(sid)
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
    sessiond.add_user("alice", "secret")
    sessiond.add_user("bob", "secret")
    c = connect(sessiond.serve(), soap)

    c.login("alice")  # an earlier success does not matter: 5 consecutive failures lock
    for i in range(5):
        op = "getSession" if i % 2 == 0 else "getBWSession"
        c.fault("AUTHENTICATION_FAILED", op, userId="alice", password=f"wrong-{i}")
    c.fault("ACCOUNT_LOCKED", "getSession", userId="alice", password="secret")
    c.fault("ACCOUNT_LOCKED", "getBWSession", userId="alice", password="secret")
    # Other users are not affected.
    assert c.validate(c.login("bob", "secret")) is True


def test_success_resets_failure_count(sessiond, soap):
    sessiond.add_user("alice", "secret")
    c = connect(sessiond.serve(), soap)

    for _ in range(4):
        c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    c.login("alice", "secret")
    for _ in range(4):
        c.fault("AUTHENTICATION_FAILED", "getSession", userId="alice", password="wrong")
    # 4 + 4 failures, but not 5 consecutive ones: not locked.
    assert c.validate(c.login_bw("alice", "secret")) is True


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
