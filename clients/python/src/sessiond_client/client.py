"""The client: a zeep binding of the served WSDL, sessions as context managers, keep-alive,
reattaching by ID, and the translation of faults into the classes of `errors`."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import weakref
from types import TracebackType
from typing import Any, List, Optional, Tuple, Type, TypeVar, Union

import requests
import zeep
import zeep.exceptions
from lxml import etree

from .errors import InvalidSession, SessiondError, TransportError, error_for_code
from .models import SessionInfo, SessionSummary, utc, without_nil

__all__ = ["Client", "Session", "ClientlessSession"]

log = logging.getLogger("sessiond_client")

TNS = "urn:sessiond:session:1"
_BINDING = f"{{{TNS}}}SessionServiceSoapBinding"
_FAULT = f"{{{TNS}}}sessionServiceFault"

T = TypeVar("T")


def _short(session_id: str) -> str:
    """What a log line or repr may show of a session ID (never the whole of it)."""
    return session_id[:6] + "…"


def _translate(exc: Exception) -> SessiondError:
    """The SessiondError for what zeep or requests raised."""
    if isinstance(exc, zeep.exceptions.Fault):
        detail = exc.detail
        if detail is not None and not isinstance(detail, (str, bytes)):
            el = detail.find(_FAULT)
            if el is None:
                # Lenient about the namespace, as the server is about ours.
                el = detail.find(".//{*}sessionServiceFault")
            if el is not None:
                code = (el.findtext(f"{{{TNS}}}code") or el.findtext("{*}code") or "").strip()
                message = el.findtext(f"{{{TNS}}}message") or el.findtext("{*}message")
                if code:
                    return error_for_code(code, message if message is not None else exc.message)
        return SessiondError(exc.code or "SOAP_FAULT", exc.message or "")
    if isinstance(exc, zeep.exceptions.TransportError):
        return TransportError(f"HTTP {exc.status_code}: not a SOAP answer")
    if isinstance(exc, requests.RequestException):
        return TransportError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (etree.XMLSyntaxError, zeep.exceptions.XMLSyntaxError)):
        return TransportError(f"the answer is not XML: {exc}")
    if isinstance(exc, zeep.exceptions.Error):
        return TransportError(f"{type(exc).__name__}: {exc}")
    raise exc


class _Session(requests.Session):
    """A requests.Session whose own `verify` (a CA bundle, or False) wins over the
    REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE variables: requests lets those replace a Session's
    bundle, so a caller's explicit `verify=` would be ignored where they are set."""

    def merge_environment_settings(  # type: ignore[no-untyped-def]
        self, url, proxies, stream, verify, cert
    ):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


class _Transport(zeep.Transport):
    """zeep's transport with one requests.Session per thread.

    requests does not promise that a Session is safe to share between threads, and a Client is
    used from the keep-alive threads and from whatever threads the caller has; zeep's parsed
    WSDL is read-only after loading and is shared."""

    def __init__(self, verify: Union[bool, str], timeout: float) -> None:
        self._verify = verify
        self._local = threading.local()
        self._all: "weakref.WeakSet[requests.Session]" = weakref.WeakSet()
        self._all_lock = threading.Lock()
        super().__init__(timeout=timeout, operation_timeout=timeout)  # type: ignore[no-untyped-call]
        self._user_agent = self.session.headers["User-Agent"]

    def _adopt(self, s: requests.Session) -> requests.Session:
        s.verify = self._verify
        with self._all_lock:
            self._all.add(s)
        self._local.session = s
        return s

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._adopt(_Session())
            s.headers["User-Agent"] = self._user_agent
        return s

    @session.setter
    def session(self, value: requests.Session) -> None:
        # zeep's __init__ assigns the session it made for the constructing thread; ours takes
        # its place, so that `verify` holds there too.
        self._adopt(value if isinstance(value, _Session) else _Session())

    def close_all(self) -> None:
        with self._all_lock:
            sessions = list(self._all)
        for s in sessions:
            s.close()

    def __del__(self) -> None:
        # zeep's own __del__ closes `self.session`, which here would make a new one for the
        # thread that happens to collect the transport.
        all_sessions = getattr(self, "_all", None)
        if all_sessions is not None:
            for s in list(all_sessions):
                s.close()


class Client:
    """A connection to one sessiond endpoint.

    `url` is the endpoint (`http://host:8080/services/SessionService`); the WSDL is read from
    `url + "?wsdl"` when the Client is made. `verify` is passed to requests: True (system CAs),
    False, or the path of a CA bundle. `timeout` (seconds) bounds every HTTP exchange.
    A Client may be shared between threads."""

    def __init__(self, url: str, *, verify: Union[bool, str] = True, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        self._transport = _Transport(verify, timeout)
        try:
            self._zeep = zeep.Client(  # type: ignore[no-untyped-call]
                url + "?wsdl", transport=self._transport
            )
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised by _translate
            raise _translate(exc) from exc
        # Calls go to `url` whatever address the served WSDL names.
        self._service = self._zeep.create_service(_BINDING, url)  # type: ignore[no-untyped-call]

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the HTTP connections (sessions are not closed: use Session.close for that)."""
        self._transport.close_all()

    # -- calls ---------------------------------------------------------------------
    def call(self, operation: str, **params: Any) -> Any:
        """Calls one operation of the contract by name, with its parameters as keywords, and
        returns what zeep decoded; a fault raises its SessiondError subclass."""
        try:
            return getattr(self._service, operation)(**params)
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised by _translate
            raise _translate(exc) from exc

    # -- sessions ------------------------------------------------------------------
    def session(
        self,
        user: str,
        password: str,
        *,
        client_type: Optional[str] = None,
        client_name: Optional[str] = None,
        keep_alive: bool = False,
    ) -> "Session":
        """A session for `user`, opened when the `with` block is entered (or by .open()):
        startSession when a client type or name is given, else getSession; closed when the
        block is left, also on an exception."""
        return Session(
            self,
            _login=(user, password, client_type, client_name),
            keep_alive=keep_alive,
        )

    def attach(self, session_id: str, *, keep_alive: bool = False) -> "Session":
        """The open session `session_id` (from another process, a file, a previous run).

        Checks it with validateSession first and raises InvalidSession when it is not valid;
        never opens a new session. The returned Session is open; leaving a `with` block on it
        closes it."""
        if not self.validate(session_id):
            raise InvalidSession("INVALID_SESSION", "the session is closed, expired or unknown")
        s = Session(self, _session_id=session_id, keep_alive=keep_alive)
        s._opened(time.monotonic())
        return s

    def validate(self, session_id: str) -> bool:
        """validateSession: True when the session is open and not expired (renewing it)."""
        return bool(self.call("validateSession", sessionId=session_id))


class Session:
    """One sessiond session; see Client.session and Client.attach."""

    _NEW, _OPEN, _CLOSED = "new", "open", "closed"

    def __init__(
        self,
        client: Client,
        *,
        _login: Optional[Tuple[str, str, Optional[str], Optional[str]]] = None,
        _session_id: Optional[str] = None,
        keep_alive: bool = False,
    ) -> None:
        self._client = client
        self._login = _login
        self._id = _session_id
        self._state = self._NEW
        self._keep_alive_wanted = keep_alive
        self._keeper: Optional[_KeepAlive] = None
        self._lock = threading.Lock()
        self._pending: Optional[SessiondError] = None
        # monotonic time at which the last successful call renewing the session was sent
        self._renewed_at = 0.0
        self._idle: Optional[float] = None  # the server's idle timeout, seconds

    # -- state ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        """The session ID (pass it to attach, or to other programs)."""
        if self._id is None:
            raise RuntimeError("the session is not open yet: use `with` or .open()")
        return self._id

    @property
    def client(self) -> Client:
        return self._client

    @property
    def closed(self) -> bool:
        return self._state == self._CLOSED

    def __repr__(self) -> str:
        shown = _short(self._id) if self._id else "-"
        return f"<{type(self).__name__} {shown} {self._state}>"

    def open(self) -> "Session":
        """Opens the session (entering a `with` block does this); returns self."""
        if self._state == self._OPEN:
            return self
        if self._state == self._CLOSED:
            raise RuntimeError("the session is closed; open a new one")
        try:
            self._open()
        except BaseException:
            # Nothing to close, and the password is gone: the object is spent.
            self._state = self._CLOSED
            raise
        return self

    def _open(self) -> None:
        assert self._login is not None
        user, password, client_type, client_name = self._login
        # The password is not kept once it has been used.
        self._login = None
        sent = time.monotonic()
        if client_type is None and client_name is None:
            self._id = self._client.call("getSession", userId=user, password=password)
            info = None
        else:
            obj = self._client.call(
                "startSession",
                userId=user,
                password=password,
                clientType=client_type,
                clientName=client_name,
            )
            info = SessionInfo.from_soap(obj)
            self._id = info.session_id
        log.debug("opened session %s for %s", _short(self.id), user)
        self._opened(sent, info)

    def _opened(self, sent: float, info: Optional[SessionInfo] = None) -> None:
        self._state = self._OPEN
        self._renewed_at = sent
        if self._keep_alive_wanted:
            if info is None:
                info = self.info()
            self._idle = (info.expiration_time - info.last_activity_time).total_seconds()
            self._keeper = _KeepAlive(self)
            self._keeper.start()

    def __enter__(self: T) -> T:
        return self.open()  # type: ignore[attr-defined,no-any-return]

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc is None:
            self.close()
            return
        # The block's own exception wins; a failure to close is added to it, not raised over it.
        try:
            self.close()
        except SessiondError as close_exc:
            add_note = getattr(exc, "add_note", None)
            if add_note is not None:
                add_note(f"sessiond: while closing the session: {close_exc}")
            else:
                log.warning("while closing session %s: %s", _short(self.id), close_exc)

    # -- the keep-alive's side -----------------------------------------------------
    def _keep(self, error: SessiondError) -> None:
        with self._lock:
            self._pending = error

    def _raise_pending(self) -> None:
        with self._lock:
            error, self._pending = self._pending, None
        if error is not None:
            raise error

    def _renewing(self, operation: str, *, raise_pending: bool = True, **params: Any) -> Any:
        """Calls `operation` with this session as the caller: a kept keep-alive failure is
        raised first; a success renews the session, which the keep-alive counts from."""
        if raise_pending:
            self._raise_pending()
        sent = time.monotonic()
        result = self._client.call(operation, sessionId=self.id, **params)
        with self._lock:
            self._renewed_at = max(self._renewed_at, sent)
        return result

    # -- operations ----------------------------------------------------------------
    def validate(self) -> bool:
        """validateSession: True when the session is open and not expired."""
        self._raise_pending()
        sent = time.monotonic()
        valid = bool(self._client.call("validateSession", sessionId=self.id))
        if valid:
            with self._lock:
                self._renewed_at = max(self._renewed_at, sent)
        return valid

    def extend(self) -> dt.datetime:
        """extendSession: renews the session; returns its new expiration time (UTC)."""
        return utc(self._renewing("extendSession"))  # type: ignore[return-value]

    def info(self, session_id: Optional[str] = None) -> SessionInfo:
        """This session's details (getCurrentSession), or with `session_id` those of another
        session, ended ones included (getSessionInfo; others' sessions need a view right)."""
        if session_id is None:
            return SessionInfo.from_soap(self._renewing("getCurrentSession"))
        return SessionInfo.from_soap(
            self._renewing("getSessionInfo", targetSessionId=session_id)
        )

    def user_of(self, session_id: str) -> str:
        """getSessionUser: the user ID of a session."""
        return str(self._renewing("getSessionUser", targetSessionId=session_id))

    def confirm(self, password: str) -> bool:
        """confirmId: True when `password` is right for this session's user (a wrong one counts
        toward the lock-out)."""
        return bool(self._renewing("confirmId", password=password))

    def list_active(self) -> List[SessionSummary]:
        """listActiveSessionIds (a view right), without the legacy trailing nil."""
        result = self._renewing("listActiveSessionIds")
        return [SessionSummary.from_soap(s) for s in without_nil(result)]

    def list_expired(self) -> List[SessionSummary]:
        """getExpiredSessionIds (a view right), without the legacy trailing nil."""
        result = self._renewing("getExpiredSessionIds")
        return [SessionSummary.from_soap(s) for s in without_nil(result)]

    def sessions(
        self,
        *,
        session_id: Optional[str] = None,
        user_id: Optional[str] = None,
        client_type: Optional[str] = None,
        include_expired: Optional[bool] = None,
        offset: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[SessionInfo]:
        """getSessions: the sessions matching every filter given, without the trailing nil."""
        result = self._renewing(
            "getSessions",
            filterSessionId=session_id,
            filterUserId=user_id,
            filterClientType=client_type,
            includeExpired=include_expired,
            offset=offset,
            limit=limit,
        )
        return [SessionInfo.from_soap(s) for s in without_nil(result)]

    def delete(self, session_id: str) -> None:
        """deleteSessionId: ends another session (an update right); SessionNotFound if unknown."""
        self._renewing("deleteSessionId", targetSessionId=session_id)

    def delete_expired(self) -> int:
        """deleteExpiredSessionIds (an update right): how many expired sessions were removed."""
        return int(self._renewing("deleteExpiredSessionIds"))

    def clientless(
        self, user: str, client_name: Optional[str] = None, *, keep_alive: bool = False
    ) -> "ClientlessSession":
        """A clientless session for `user`, opened from this (administrator's) session when the
        `with` block is entered and closed with closeClientlessSession when it is left."""
        return ClientlessSession(self, user, client_name, keep_alive=keep_alive)

    def close(self) -> bool:
        """Ends the session (closeSession) and stops its keep-alive. Returns whether the server
        still had it. A keep-alive failure not yet raised is raised after closing."""
        if self._state != self._OPEN:
            self._state = self._CLOSED
            return False
        self._stop_keep_alive()
        try:
            closed = self._end()
        finally:
            self._state = self._CLOSED
        log.debug("closed session %s", _short(self.id))
        self._raise_pending()
        return closed

    def _end(self) -> bool:
        return bool(self._client.call("closeSession", sessionId=self.id))

    def _stop_keep_alive(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop()


class ClientlessSession(Session):
    """A session opened for a user by an administrator's session (openClientlessSession); it is
    a session of that user, and is closed through its opener (closeClientlessSession)."""

    def __init__(
        self, opener: Session, user: str, client_name: Optional[str], *, keep_alive: bool
    ) -> None:
        super().__init__(opener.client, keep_alive=keep_alive)
        self._opener = opener
        self._user = user
        self._client_name = client_name

    @property
    def opener(self) -> Session:
        return self._opener

    def _open(self) -> None:
        sent = time.monotonic()
        self._id = str(
            self._opener._renewing(
                "openClientlessSession", userId=self._user, clientName=self._client_name
            )
        )
        log.debug("opened clientless session %s for %s", _short(self.id), self._user)
        self._opened(sent)

    def _end(self) -> bool:
        # Closing must not be stopped by a failure the opener's keep-alive kept for it.
        closed = self._opener._renewing(
            "closeClientlessSession", raise_pending=False, clientlessSessionId=self.id
        )
        return bool(closed)


class _KeepAlive:
    """The daemon thread that calls extendSession when a third of the remaining idle time has
    passed since the session was last renewed (by it or by any other call on the session).

    A failed extend is kept on the session and raised by its next call. INVALID_SESSION ends
    the thread (nothing left to keep alive); any other failure is retried at a third of the
    time then remaining, until the session would have expired."""

    # Smallest wait between two attempts, so a failing server is not hammered.
    MIN_WAIT = 0.05

    def __init__(self, session: Session) -> None:
        self._session = session
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"sessiond-keepalive-{session.id[:6]}", daemon=True
        )

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            # At most one extend can be under way; it is bounded by the HTTP timeout.
            self._thread.join(self._session.client.timeout + 1.0)

    def _run(self) -> None:
        s = self._session
        idle = s._idle or 0.0
        if idle <= 0:
            return
        while True:
            with s._lock:
                renewed = s._renewed_at
            remaining = renewed + idle - time.monotonic()
            if remaining <= 0:
                return
            # Due once a third of the idle time has gone since the last renewal; any call on
            # the session renews it, so this is checked again after every wait.
            due_in = remaining - idle * 2 / 3
            if due_in > 0:
                if self._stop.wait(due_in):
                    return
                continue
            sent = time.monotonic()
            try:
                s._client.call("extendSession", sessionId=s.id)
            except SessiondError as exc:
                if self._stop.is_set():
                    return
                log.warning("keep-alive of session %s failed: %s", _short(s.id), exc)
                s._keep(exc)
                if isinstance(exc, InvalidSession):
                    return
                # Retried at a third of the time then left.
                left = renewed + idle - time.monotonic()
                if self._stop.wait(max(left / 3, self.MIN_WAIT)):
                    return
                continue
            with s._lock:
                s._renewed_at = max(s._renewed_at, sent)
