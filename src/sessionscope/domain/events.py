"""Event kinds and their validated shapes.

An incoming event is a JSON object. :func:`validate_batch` turns a list of such objects into
immutable :class:`Event` values, or into a list of :class:`Problem` naming each bad field. A batch
is all or nothing: callers store events only when the problem list is empty.

Common fields: ``id`` (optional), ``kind``, ``time`` (RFC 3339 or epoch milliseconds), ``type``,
``duration_ms`` (optional integer >= 0). Every kind adds its own fields (see ``KIND_FIELDS``);
fields that are not known for the kind are rejected so typos do not silently lose data.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = [
    "CHANNEL_LEVELS",
    "DESKTOP_TYPES",
    "ENDPOINT_TYPES",
    "KINDS",
    "MAX_FUTURE",
    "PLAYER_TYPES",
    "VIDEO_TYPES",
    "Event",
    "Problem",
    "derive_id",
    "epoch_ms",
    "format_time",
    "parse_time",
    "validate_batch",
    "validate_event",
]

KINDS: tuple[str, ...] = ("player", "channel", "desktop", "endpoint")
PLAYER_TYPES: frozenset[str] = frozenset(
    {
        "player_start",
        "startup",
        "playing",
        "paused",
        "seeking",
        "rebuffering",
        "ended",
        "error",
        "next_track",
        "prev_track",
    }
)
VIDEO_TYPES: frozenset[str] = frozenset({"VOD", "LIVE"})
CHANNEL_LEVELS: frozenset[str] = frozenset({"INFO", "ERROR"})
DESKTOP_TYPES: frozenset[str] = frozenset({"login", "activity", "logout"})
ENDPOINT_TYPES: frozenset[str] = frozenset({"page"})
#: Events stamped further than this in the future are rejected (clock skew allowance).
MAX_FUTURE = timedelta(days=1)
_MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_INT32_MAX = 2_147_483_647
_MAX_STR = 2048
_CHANNEL_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_COMMON = frozenset({"id", "kind", "time", "type", "duration_ms"})
_RFC3339_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?$")
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one event of a batch."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class Event:
    """A validated event.

    ``session`` is the kind's grouping key: the player's client session id, the channel id,
    the desktop session number (as text) or the endpoint agent's session key. ``user`` is the
    player's user uuid, the desktop ``user_id`` (as text), the endpoint ``agent_id``, and empty
    for channels. ``attrs`` holds the remaining kind-specific fields, already normalised.
    """

    id: str
    kind: str
    time: datetime
    type: str
    session: str
    user: str = ""
    duration_ms: int | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def time_ms(self) -> int:
        return epoch_ms(self.time)

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def as_dict(self) -> dict[str, Any]:
        """Return the event in its public JSON shape (the shape it was sent in)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "time": format_time(self.time),
            "type": self.type,
        }
        if self.duration_ms is not None:
            out["duration_ms"] = self.duration_ms
        out.update(_identity_fields(self))
        out.update(self.attrs)
        return out


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def epoch_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    return (t - _EPOCH) // _MS


def format_time(t: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with milliseconds."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _identity_fields(e: Event) -> dict[str, Any]:
    if e.kind == "player":
        return {"session": e.session, "user": e.user}
    if e.kind == "channel":
        return {"channel": e.session}
    if e.kind == "desktop":
        return {"session": int(e.session), "user_id": int(e.user)}
    return {"session": e.session, "agent_id": e.user}


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_time(value: object, field: str = "time") -> datetime:
    """Parse RFC 3339 text or epoch milliseconds into an aware UTC datetime."""
    if isinstance(value, bool):
        raise _Invalid(field, "must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, int | float):
        if value != value or value < 0 or value > 253402300799999:
            raise _Invalid(field, "epoch milliseconds out of range")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if not _RFC3339.match(text):
            if _RFC3339_NAIVE.match(text):
                raise _Invalid(field, "must carry a UTC offset, e.g. 'Z' (RFC 3339)")
            raise _Invalid(field, f"not an RFC 3339 time: {value[:64]!r}")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise _Invalid(field, f"not an RFC 3339 time: {value[:64]!r}") from None
        return parsed.astimezone(UTC)
    raise _Invalid(field, "must be an RFC 3339 string or epoch milliseconds")


def _str(obj: Mapping[str, Any], name: str, *, required: bool = True, max_len: int = 256) -> str:
    value = obj.get(name)
    if value is None:
        if required:
            raise _Invalid(name, "is required")
        return ""
    if not isinstance(value, str):
        raise _Invalid(name, "must be a string")
    if required and not value.strip():
        raise _Invalid(name, "must not be empty")
    if len(value) > max_len:
        raise _Invalid(name, f"must be at most {max_len} characters")
    return value


def _int(
    obj: Mapping[str, Any],
    name: str,
    *,
    lo: int,
    hi: int,
    required: bool = True,
) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise _Invalid(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _Invalid(name, "must be an integer")
    if value < lo or value > hi:
        raise _Invalid(name, f"must be between {lo} and {hi}")
    return value


def _video_time(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        raise _Invalid("video_time", "must be a number of seconds")
    if isinstance(value, int | float):
        if value != value or value < 0:
            raise _Invalid("video_time", "must be a number of seconds >= 0")
        return float(value)
    if isinstance(value, str):
        m = _VIDEO_TIME.match(value.strip())
        if m:
            if m.group("h") is not None:
                return int(m["h"]) * 3600 + int(m["m"]) * 60 + float(m["s"])
            return float(m["plain"])
    raise _Invalid("video_time", "must be seconds >= 0 or 'HH:MM:SS'")


_VIDEO_TIME = re.compile(
    r"^(?:(?P<h>\d+):(?P<m>[0-5]?\d):(?P<s>[0-5]?\d(?:\.\d+)?)|(?P<plain>\d+(?:\.\d+)?))$"
)


def _player(obj: Mapping[str, Any], etype: str) -> tuple[str, str, dict[str, Any]]:
    if etype not in PLAYER_TYPES:
        raise _Invalid("type", f"unknown player action type {etype!r}")
    session = _str(obj, "session")
    user = _str(obj, "user")
    try:
        user = str(uuidlib.UUID(user))
    except ValueError:
        raise _Invalid("user", "must be a uuid") from None
    video_type = _str(obj, "video_type", max_len=8).upper()
    if video_type not in VIDEO_TYPES:
        raise _Invalid("video_type", "must be VOD or LIVE")
    attrs: dict[str, Any] = {
        "origin": _str(obj, "origin", required=False),
        "os": _str(obj, "os", required=False),
        "device": _str(obj, "device", max_len=32),
        "video_type": video_type,
        "video_time": _video_time(obj.get("video_time")),
    }
    for name in _PLAYER_DETAIL:
        if name in obj and obj[name] is not None:
            attrs[name] = _str(obj, name, required=False, max_len=_MAX_STR)
    if attrs.get("ip"):
        _check_ip(attrs["ip"], "ip")
    return session, user, attrs


_PLAYER_DETAIL = ("browser", "ip", "screen", "lang", "page", "isp", "nation", "media")


def _check_ip(value: str, name: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _Invalid(name, "must be an IPv4 or IPv6 address") from None


def _channel(obj: Mapping[str, Any], etype: str) -> tuple[str, str, dict[str, Any]]:
    if not _CHANNEL_CODE.match(etype):
        raise _Invalid("type", "must be an upper-case event code such as PUBLISH_START")
    channel = _str(obj, "channel")
    level = obj.get("level", "INFO")
    if not isinstance(level, str) or level.upper() not in CHANNEL_LEVELS:
        raise _Invalid("level", "must be INFO or ERROR")
    return (
        channel,
        "",
        {
            "level": level.upper(),
            "description": _str(obj, "description", required=False, max_len=_MAX_STR),
        },
    )


def _desktop(obj: Mapping[str, Any], etype: str) -> tuple[str, str, dict[str, Any]]:
    if etype not in DESKTOP_TYPES:
        raise _Invalid("type", "must be login, activity or logout")
    session = _int(obj, "session", lo=1, hi=_INT32_MAX)
    user_id = _int(obj, "user_id", lo=0, hi=_INT32_MAX)
    attrs: dict[str, Any] = {
        "user_name": _str(obj, "user_name", required=False),
        "client_guid": _str(obj, "client_guid", required=False),
        "client_name": _str(obj, "client_name", required=False),
    }
    for name in ("app", "title", "url"):
        if obj.get(name) is not None:
            if etype != "activity":
                raise _Invalid(name, "is only allowed on activity events")
            attrs[name] = _str(obj, name, required=False, max_len=_MAX_STR)
    return str(session), str(user_id), attrs


def _endpoint(obj: Mapping[str, Any], etype: str) -> tuple[str, str, dict[str, Any]]:
    if etype not in ENDPOINT_TYPES:
        raise _Invalid("type", "must be page")
    session = _str(obj, "session")
    agent_id = _str(obj, "agent_id")
    protocol = _str(obj, "protocol", max_len=16).lower()
    if protocol not in ("http", "https"):
        raise _Invalid("protocol", "must be http or https")
    source_addr = _str(obj, "source_addr", max_len=64)
    _check_ip(source_addr, "source_addr")
    attrs: dict[str, Any] = {
        "visited_site": _str(obj, "visited_site").lower(),
        "protocol": protocol,
        "port": _int(obj, "port", lo=1, hi=65535),
        "source_addr": source_addr,
        "org_name": _str(obj, "org_name", required=False),
        "page_id": _str(obj, "page_id", max_len=64),
        "title": _str(obj, "title", required=False, max_len=_MAX_STR),
        "on_content_load_ms": _int(obj, "on_content_load_ms", lo=0, hi=_INT32_MAX, required=False),
        "on_load_ms": _int(obj, "on_load_ms", lo=0, hi=_INT32_MAX),
        "response_code": _int(obj, "response_code", lo=100, hi=599),
    }
    return session, agent_id, attrs


_KIND_PARSERS: dict[str, Callable[[Mapping[str, Any], str], tuple[str, str, dict[str, Any]]]] = {
    "player": _player,
    "channel": _channel,
    "desktop": _desktop,
    "endpoint": _endpoint,
}

#: Fields each kind accepts besides the common ones.
KIND_FIELDS: dict[str, frozenset[str]] = {
    "player": frozenset(
        {"session", "user", "origin", "os", "device", "video_type", "video_time", *_PLAYER_DETAIL}
    ),
    "channel": frozenset({"channel", "level", "description"}),
    "desktop": frozenset(
        {"session", "user_id", "user_name", "client_guid", "client_name", "app", "title", "url"}
    ),
    "endpoint": frozenset(
        {
            "session",
            "agent_id",
            "visited_site",
            "protocol",
            "port",
            "source_addr",
            "org_name",
            "page_id",
            "title",
            "on_content_load_ms",
            "on_load_ms",
            "response_code",
        }
    ),
}


def derive_id(
    kind: str,
    time: datetime,
    etype: str,
    session: str,
    user: str,
    duration_ms: int | None,
    attrs: Mapping[str, Any],
) -> str:
    """Return a deterministic id for an event sent without one (same content, same id)."""
    canonical = orjson.dumps(
        [kind, epoch_ms(time), etype, session, user, duration_ms, attrs],
        option=orjson.OPT_SORT_KEYS,
    )
    return "d-" + hashlib.sha256(canonical).hexdigest()[:32]


def validate_event(obj: object, *, now: datetime) -> Event:
    """Validate one event object; raise ``ValueError`` with ``(field, message)`` on failure."""
    try:
        return _validate(obj, now)
    except _Invalid as exc:
        raise ValueError(exc.field, exc.message) from None


def _validate(obj: object, now: datetime) -> Event:
    if not isinstance(obj, dict):
        raise _Invalid("", "each event must be a JSON object")
    kind = obj.get("kind")
    if kind is None:
        raise _Invalid("kind", "is required")
    if kind not in _KIND_PARSERS:
        raise _Invalid("kind", f"must be one of {', '.join(KINDS)}")
    unknown = obj.keys() - _COMMON - KIND_FIELDS[kind]
    if unknown:
        raise _Invalid(sorted(unknown)[0], f"is not a field of {kind} events")
    if "time" not in obj:
        raise _Invalid("time", "is required")
    time = parse_time(obj["time"])
    if time < _MIN_TIME:
        raise _Invalid("time", "is before 2000-01-01")
    if time > now + MAX_FUTURE:
        raise _Invalid("time", "is more than a day in the future")
    etype = obj.get("type")
    if not isinstance(etype, str) or not etype:
        raise _Invalid("type", "is required and must be a string")
    duration_ms = _int(obj, "duration_ms", lo=0, hi=2**53, required=False)
    session, user, attrs = _KIND_PARSERS[kind](obj, etype)
    raw_id = obj.get("id")
    if raw_id is None:
        event_id = derive_id(kind, time, etype, session, user, duration_ms, attrs)
    elif not isinstance(raw_id, str) or not raw_id or len(raw_id) > 128:
        raise _Invalid("id", "must be a string of 1 to 128 characters")
    else:
        event_id = raw_id
    return Event(
        id=event_id,
        kind=kind,
        time=time,
        type=etype,
        session=session,
        user=user,
        duration_ms=duration_ms,
        attrs=attrs,
    )


def validate_batch(
    items: Sequence[object], *, now: datetime | None = None
) -> tuple[list[Event], list[Problem]]:
    """Validate every event of a batch; return the events, or every problem found."""
    moment = now or datetime.now(UTC)
    events: list[Event] = []
    problems: list[Problem] = []
    for index, obj in enumerate(items):
        try:
            events.append(_validate(obj, moment))
        except _Invalid as exc:
            problems.append(Problem(index, exc.field, exc.message))
    return (events, problems) if not problems else ([], problems)
