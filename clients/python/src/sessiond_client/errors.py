"""The errors a sessiond call can raise: one class per fault code, under SessiondError.

The server puts `<sessionServiceFault><code>CODE</code><message>text</message>
</sessionServiceFault>` (contract namespace) in the detail of every fault it raises; the code
picks the class here.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "SessiondError",
    "AuthenticationFailed",
    "AccountLocked",
    "InvalidSession",
    "AccessDenied",
    "SessionNotFound",
    "InvalidRequest",
    "ServiceUnavailable",
    "SessionLimitReached",
    "InternalError",
    "TransportError",
    "error_for_code",
]


class SessiondError(Exception):
    """A call to sessiond failed. `code` is the fault code (`AUTHENTICATION_FAILED`, ...),
    `message` the server's text.

    A fault without sessiond's detail (a protocol-level fault such as VersionMismatch) is a
    plain SessiondError whose code is the SOAP fault code (`soap:Client`, `soap:Server`)."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class AuthenticationFailed(SessiondError):
    """Unknown user, wrong password or disabled user (the server does not say which)."""


class AccountLocked(SessiondError):
    """Too many failed password checks in a row; the lock lifts after its duration."""


class InvalidSession(SessiondError):
    """The caller's session is unknown, ended or expired."""


class AccessDenied(SessiondError):
    """The session's user lacks the right for the operation."""


class SessionNotFound(SessiondError):
    """The target session of the operation does not exist."""


class InvalidRequest(SessiondError):
    """The request was malformed or named something that cannot be used."""


class ServiceUnavailable(SessiondError):
    """The server could not reach its database, or was too busy; retrying later may work."""


class SessionLimitReached(SessiondError):
    """The user already has as many active sessions as the server allows."""


class InternalError(SessiondError):
    """The server failed; its log has the cause."""


class TransportError(SessiondError):
    """No SOAP answer: the connection failed, timed out, or the HTTP answer was not SOAP.

    Not a server fault code; `code` is always `TRANSPORT_ERROR`."""

    CODE = "TRANSPORT_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(self.CODE, message)


_BY_CODE: Dict[str, Type[SessiondError]] = {
    "AUTHENTICATION_FAILED": AuthenticationFailed,
    "ACCOUNT_LOCKED": AccountLocked,
    "INVALID_SESSION": InvalidSession,
    "ACCESS_DENIED": AccessDenied,
    "SESSION_NOT_FOUND": SessionNotFound,
    "INVALID_REQUEST": InvalidRequest,
    "SERVICE_UNAVAILABLE": ServiceUnavailable,
    "SESSION_LIMIT_REACHED": SessionLimitReached,
    "INTERNAL_ERROR": InternalError,
}


def error_for_code(code: str, message: Optional[str]) -> SessiondError:
    """The exception for a fault code; an unknown code gives a plain SessiondError."""
    cls = _BY_CODE.get(code, SessiondError)
    return cls(code, message or "")
