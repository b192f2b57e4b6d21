"""sessiond-client: a Python client for the sessiond SOAP session service, on zeep.

    from sessiond_client import Client

    client = Client("http://127.0.0.1:8080/services/SessionService")
    with client.session("alice", "s3cret", keep_alive=True) as session:
        print(session.info().expiration_time)
"""

from .client import Client, ClientlessSession, Session
from .errors import (
    AccessDenied,
    AccountLocked,
    AuthenticationFailed,
    InternalError,
    InvalidRequest,
    InvalidSession,
    ServiceUnavailable,
    SessiondError,
    SessionLimitReached,
    SessionNotFound,
    TransportError,
)
from .models import SessionInfo, SessionSummary

__all__ = [
    "Client",
    "Session",
    "ClientlessSession",
    "SessionInfo",
    "SessionSummary",
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
]
