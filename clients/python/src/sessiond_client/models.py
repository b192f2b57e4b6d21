"""Plain data for what the service returns: the contract's Session and SessionInfo types as
frozen dataclasses with snake_case fields and timezone-aware (UTC) datetimes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, List, Optional

__all__ = ["SessionSummary", "SessionInfo"]


def utc(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    """`value` in UTC with `datetime.timezone.utc` as its tzinfo.

    zeep gives aware datetimes with isodate's own tzinfo; a value without an offset (the
    contract's times are UTC) is taken as UTC rather than left naive."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _required_utc(value: Optional[dt.datetime], field: str) -> dt.datetime:
    out = utc(value)
    if out is None:
        raise ValueError(f"the server sent no {field}")
    return out


@dataclass(frozen=True)
class SessionSummary:
    """One session of listActiveSessionIds / getExpiredSessionIds (the contract's `Session`)."""

    session_id: str
    user_id: str
    client_type: str
    host: Optional[str]
    creation_time: dt.datetime
    last_activity_time: dt.datetime
    expiration_time: dt.datetime

    @classmethod
    def from_soap(cls, obj: Any) -> "SessionSummary":
        return cls(
            session_id=obj.sessionId,
            user_id=obj.userId,
            client_type=obj.clientType,
            host=obj.host,
            creation_time=_required_utc(obj.creationTime, "creationTime"),
            last_activity_time=_required_utc(obj.lastActivityTime, "lastActivityTime"),
            expiration_time=_required_utc(obj.expirationTime, "expirationTime"),
        )


@dataclass(frozen=True)
class SessionInfo:
    """A session's details (the contract's `SessionInfo`); `end_time` and `end_reason` are set
    for an ended session, `created_by` for a clientless one."""

    session_id: str
    user_id: str
    client_type: str
    client_name: Optional[str]
    host: Optional[str]
    location: str
    creation_time: dt.datetime
    last_activity_time: dt.datetime
    expiration_time: dt.datetime
    end_time: Optional[dt.datetime]
    end_reason: Optional[str]
    created_by: Optional[str]
    is_current: bool
    is_remote: bool

    @property
    def ended(self) -> bool:
        return self.end_time is not None

    @classmethod
    def from_soap(cls, obj: Any) -> "SessionInfo":
        return cls(
            session_id=obj.sessionId,
            user_id=obj.userId,
            client_type=obj.clientType,
            client_name=obj.clientName,
            host=obj.host,
            location=obj.location,
            creation_time=_required_utc(obj.creationTime, "creationTime"),
            last_activity_time=_required_utc(obj.lastActivityTime, "lastActivityTime"),
            expiration_time=_required_utc(obj.expirationTime, "expirationTime"),
            end_time=utc(obj.endTime),
            end_reason=obj.endReason,
            created_by=obj.createdBy,
            is_current=bool(obj.isCurrent),
            is_remote=bool(obj.isRemote),
        )


def without_nil(items: Optional[List[Any]]) -> List[Any]:
    """An array result without its nil elements.

    Every caller that is not a getBWSession session gets one `<session xsi:nil="true"/>` at the
    end of each array (an empty result is that one element); zeep decodes it as None or as an
    object whose fields are all None. A real element always has a sessionId."""
    return [s for s in (items or []) if s is not None and s.sessionId is not None]
