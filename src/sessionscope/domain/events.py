"""Event kinds and their validated shapes.

An incoming event is a JSON object. Its shape is declared once, in ``domain.event_input``, as
one input struct per kind (``_PlayerIn`` ...), tagged by ``kind``: msgspec checks types,
lengths, ranges, required and unknown fields in C while it decodes; here :func:`_finish`
applies the rules a type cannot say (normalisation, allowed ``type`` values, addresses, time
bounds) and builds the immutable :class:`Event`. Three entry points share that definition:

- :func:`decode_batch` turns request bytes (a JSON array, one object, or NDJSON) into events in
  one pass: the whole batch is decoded at once, and only a batch with a problem is decoded again
  event by event to name every problem (each field alone against its declared type, then
  every rule: all the problems of an event, not the first);
- :func:`validate_batch` does the same for objects already in memory (the simulator, the CLI);
- :func:`decode_columns`, for a large batch of valid events (the ingest workers): the same
  structs and rules, the times checked for the whole batch at once, and the events as columns
  (:class:`EventColumns`) instead of an :class:`Event` each; any other body is left to
  :func:`decode_batch`.

A batch is all or nothing: callers store events only when the problem list is empty.

Common fields: ``id`` (optional), ``kind``, ``time`` (RFC 3339 or epoch milliseconds), ``type``,
``duration_ms`` (optional integer >= 0). Every kind adds its own fields (see ``KIND_FIELDS``);
fields that are not known for the kind are rejected so typos do not silently lose data.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import numpy as np
import numpy.typing as npt

from sessionscope.domain.event_input import (
    _IN_TYPES,
    _MANY,
    _ONE,
    _RAWS,
    _AnyIn,
    _AwareTime,
    _ChannelIn,
    _DesktopIn,
    _EndpointIn,
    _In,
    _Invalid,
    _Invalids,
    _PlayerIn,
    _problem,
    _time_message,
)
from sessionscope.domain.event_model import (
    _CHANNEL_CODE,
    _EPOCH,
    _MIN_TIME,
    _ZERO,
    CHANNEL_LEVELS,
    DESKTOP_TYPES,
    ENDPOINT_TYPES,
    KINDS,
    MAX_FUTURE,
    PLAYER_TYPES,
    VIDEO_TYPES,
    BatchSyntaxError,
    Event,
    EventColumns,
    Problem,
    derive_id,
    epoch_ms,
    format_time,
)
from sessionscope.domain.timerange import MAX_EPOCH_MS

__all__ = [
    "CHANNEL_LEVELS",
    "DESKTOP_TYPES",
    "ENDPOINT_TYPES",
    "KINDS",
    "MAX_FUTURE",
    "PLAYER_TYPES",
    "VIDEO_TYPES",
    "BatchSyntaxError",
    "Event",
    "EventColumns",
    "Problem",
    "decode_batch",
    "decode_columns",
    "derive_id",
    "epoch_ms",
    "format_time",
    "parse_time",
    "validate_batch",
    "validate_event",
]

# ------------------------------------------------------------------------------ rules


def parse_time(value: object, field: str = "time") -> datetime:
    """Parse RFC 3339 text or epoch milliseconds into an aware UTC datetime."""
    try:
        decoded: datetime | float = msgspec.convert(value, _AwareTime | float)
    except msgspec.ValidationError as exc:
        raise _Invalid(field, _time_message(str(exc))) from None
    return _time(decoded, field)


def _time(value: datetime | float, field: str = "time") -> datetime:
    # Once per event of every batch: the usual cases first (measured: each branch skipped
    # here saves a few hundred nanoseconds an event).
    if isinstance(value, datetime):
        if value.tzinfo is UTC or value.utcoffset() == _ZERO:
            return value
        return value.astimezone(UTC)
    if math.isnan(value) or value < 0 or value > MAX_EPOCH_MS:
        raise _Invalid(field, "epoch milliseconds out of range")
    if value.is_integer():  # whole milliseconds: exact, in integers
        seconds, ms = divmod(int(value), 1000)
        return _EPOCH + timedelta(0, seconds, ms * 1000)
    return _EPOCH + timedelta(milliseconds=value)


def _required(value: str, name: str, bad: list[_Invalid]) -> str:
    if not value.strip():
        bad.append(_Invalid(name, "must not be empty"))
    return value


def _video_time(value: float | str | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, float):
        if value != value or value < 0:
            raise _Invalid("video_time", "must be a number of seconds >= 0")
        return value
    m = _VIDEO_TIME.match(value.strip())
    if m:
        if m.group("h") is not None:
            return int(m["h"]) * 3600 + int(m["m"]) * 60 + float(m["s"])
        return float(m["plain"])
    raise _Invalid("video_time", "must be seconds >= 0 or 'HH:MM:SS'")


_VIDEO_TIME = re.compile(
    r"^(?:(?P<h>\d+):(?P<m>[0-5]?\d):(?P<s>[0-5]?\d(?:\.\d+)?)|(?P<plain>\d+(?:\.\d+)?))$"
)


def _check_ip(value: str, name: str, bad: list[_Invalid]) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        bad.append(_Invalid(name, "must be an IPv4 or IPv6 address"))


#: Optional player fields kept as sent when present (absent ones are left out of ``attrs``, so
#: the derived id of an event that does not carry a field does not depend on the field).
_PLAYER_DETAIL = (
    "browser",
    "ip",
    "screen",
    "lang",
    "page",
    "isp",
    "nation",
    "media",
    "address",
    "player_name",
    "player_version",
    "error_code",
    "error_message",
)


def _player(e: _PlayerIn, bad: list[_Invalid]) -> tuple[str, str, dict[str, Any]]:
    if e.type not in PLAYER_TYPES:
        bad.append(_Invalid("type", f"unknown player action type {e.type!r}"))
    video_type = e.video_type.upper()
    if video_type not in VIDEO_TYPES:
        bad.append(_Invalid("video_type", "must be VOD or LIVE"))
    try:
        video_time = _video_time(e.video_time)
    except _Invalid as exc:
        bad.append(exc)
        video_time = 0.0
    attrs: dict[str, Any] = {
        "origin": e.origin or "",
        "os": e.os or "",
        "device": _required(e.device, "device", bad),
        "video_type": video_type,
        "video_time": video_time,
    }
    for name in _PLAYER_DETAIL:
        value = getattr(e, name)
        if value is not None:
            attrs[name] = value
    if attrs.get("ip"):
        _check_ip(attrs["ip"], "ip", bad)
    session = _required(e.session, "session", bad)
    try:
        user = _uuid_text(e.user)
    except _Invalid as exc:
        bad.append(exc)
        user = e.user
    return session, user, attrs


@functools.lru_cache(maxsize=16384)
def _uuid_text(value: str) -> str:
    # Users repeat across the events of a session: their normal form is worked out once.
    try:
        return str(UUID(value))
    except ValueError:
        raise _Invalid("user", "must be a uuid") from None


def _channel(e: _ChannelIn, bad: list[_Invalid]) -> tuple[str, str, dict[str, Any]]:
    if not _CHANNEL_CODE.match(e.type):
        bad.append(_Invalid("type", "must be an upper-case event code such as PUBLISH_START"))
    level = e.level.upper()
    if level not in CHANNEL_LEVELS:
        bad.append(_Invalid("level", "must be INFO or ERROR"))
    attrs = {"level": level, "description": e.description or ""}
    return _required(e.channel, "channel", bad), "", attrs


def _desktop(e: _DesktopIn, bad: list[_Invalid]) -> tuple[str, str, dict[str, Any]]:
    if e.type not in DESKTOP_TYPES:
        bad.append(_Invalid("type", "must be login, activity or logout"))
    attrs: dict[str, Any] = {
        "user_name": e.user_name or "",
        "client_guid": e.client_guid or "",
        "client_name": e.client_name or "",
    }
    # Written out, not a loop over the names: this runs for every desktop event.
    app, title, url = e.app, e.title, e.url
    if app is not None:
        attrs["app"] = app
    if title is not None:
        attrs["title"] = title
    if url is not None:
        attrs["url"] = url
    if e.type != "activity":
        for name in ("app", "title", "url"):
            if name in attrs:
                bad.append(_Invalid(name, "is only allowed on activity events"))
    return str(e.session), str(e.user_id), attrs


def _endpoint(e: _EndpointIn, bad: list[_Invalid]) -> tuple[str, str, dict[str, Any]]:
    if e.type not in ENDPOINT_TYPES:
        bad.append(_Invalid("type", "must be page"))
    session = _required(e.session, "session", bad)
    agent_id = _required(e.agent_id, "agent_id", bad)
    protocol = e.protocol.lower()
    if protocol not in ("http", "https"):
        bad.append(_Invalid("protocol", "must be http or https"))
    _check_ip(e.source_addr, "source_addr", bad)
    attrs: dict[str, Any] = {
        "visited_site": _required(e.visited_site, "visited_site", bad).lower(),
        "protocol": protocol,
        "port": e.port,
        "source_addr": e.source_addr,
        "org_name": e.org_name or "",
        "page_id": _required(e.page_id, "page_id", bad),
        "title": e.title or "",
        "on_content_load_ms": e.on_content_load_ms,
        "on_load_ms": e.on_load_ms,
        "response_code": e.response_code,
    }
    return session, agent_id, attrs


_RULES: dict[type[_In], Callable[[Any, list[_Invalid]], tuple[str, str, dict[str, Any]]]] = {
    _PlayerIn: _player,
    _ChannelIn: _channel,
    _DesktopIn: _desktop,
    _EndpointIn: _endpoint,
}
_KIND_OF: dict[type[_In], str] = {t: k for k, t in _IN_TYPES.items()}


def _finish(e: _In, now: datetime) -> Event:
    """Apply the rules a type cannot say and build the event; raise :class:`_Invalids` with
    every rule it breaks."""
    cls = type(e)
    kind = _KIND_OF[cls]
    bad: list[_Invalid] = []
    try:
        time = _time(e.time)
    except _Invalid as exc:
        bad.append(exc)
        time = _MIN_TIME
    if time < _MIN_TIME:
        bad.append(_Invalid("time", "is before 2000-01-01"))
    elif time > now + MAX_FUTURE:
        bad.append(_Invalid("time", "is more than a day in the future"))
    session, user, attrs = _RULES[cls](e, bad)
    if bad:
        raise _Invalids(bad)
    event_id = e.id
    if event_id is None:
        event_id = derive_id(kind, time, e.type, session, user, e.duration_ms, attrs)
    return Event(
        id=event_id,
        kind=kind,
        time=time,
        type=e.type,
        session=session,
        user=user,
        duration_ms=e.duration_ms,
        attrs=attrs,
    )


def _finish_all(
    decoded: Sequence[_In | _Invalids], now: datetime
) -> tuple[list[Event], list[Problem]]:
    events: list[Event] = []
    problems: list[Problem] = []
    for index, item in enumerate(decoded):
        if isinstance(item, _Invalids):
            problems.extend(Problem(index, p.field, p.message) for p in item.problems)
            continue
        try:
            events.append(_finish(item, now))
        except _Invalids as exc:
            problems.extend(Problem(index, p.field, p.message) for p in exc.problems)
    return (events, problems) if not problems else ([], problems)


def _convert_one(obj: object, now: datetime) -> _In | _Invalids:
    try:
        item: _In = msgspec.convert(obj, _AnyIn)
        return item
    except msgspec.ValidationError:
        return _Invalids(_every_problem(obj, now))


def _decode_one(raw: bytes, now: datetime) -> _In | _Invalids:
    try:
        item: _In = _ONE.decode(raw)
        return item
    except msgspec.ValidationError:
        return _Invalids(_every_problem(msgspec.json.decode(raw), now))


def _every_problem(obj: object, now: datetime) -> list[_Invalid]:
    """Every problem of an event that has one: the slow path, a field at a time.

    Each field is checked against its declared type alone; then the event, with a stand-in
    for each field that failed, goes through the rules (their problems on fields already
    named are left out)."""
    if not isinstance(obj, dict):
        return [_Invalid("", "each event must be a JSON object")]
    kind = obj.get("kind")
    cls = _IN_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return [_Invalid("kind", f"must be one of {', '.join(KINDS)}")]
    found = [
        _Invalid(name, f"is not a field of {kind} events")
        for name in obj
        if name != "kind" and name not in cls.__struct_fields__
    ]
    patched: dict[str, Any] = {"kind": kind}
    for field in msgspec.structs.fields(cls):
        if field.name not in obj:
            if field.required:
                found.append(_Invalid(field.name, "is required"))
                patched[field.name] = _stand_in(cls, field.name)
            continue
        try:
            msgspec.convert({field.name: obj[field.name]}, _field_shape(cls, field.name))
            patched[field.name] = obj[field.name]
        except msgspec.ValidationError as exc:
            found.append(_problem(exc, kind))
            if field.required:
                patched[field.name] = _stand_in(cls, field.name)
    named = {p.field for p in found}
    try:
        _finish(msgspec.convert(patched, _AnyIn), now)
    except _Invalids as exc:
        found.extend(p for p in exc.problems if p.field not in named)
    except msgspec.ValidationError:  # pragma: no cover - every field was checked alone
        pass
    return found or [_Invalid("", "is not a valid event")]


@functools.cache
def _field_shape(cls: type[_In], name: str) -> type[msgspec.Struct]:
    """A struct of the one field ``name`` of ``cls``, with its declared type."""
    (field,) = (f for f in msgspec.structs.fields(cls) if f.name == name)
    return msgspec.defstruct(f"_{cls.__name__}_{name}", [(name, field.type)])


#: Values tried, in order, as a stand-in for a required field that is missing or wrong.
_STAND_INS: tuple[object, ...] = ("x", 1, 100, 1.0e12, 0)


@functools.cache
def _stand_in(cls: type[_In], name: str) -> object:
    shape = _field_shape(cls, name)
    for value in _STAND_INS:
        try:
            msgspec.convert({name: value}, shape)
        except msgspec.ValidationError:
            continue
        return value
    raise AssertionError(f"no stand-in for {cls.__name__}.{name}")  # pragma: no cover


# ------------------------------------------------------------------------------ entry points


def validate_event(obj: object, *, now: datetime) -> Event:
    """Validate one event object; raise ``ValueError`` with ``(field, message)`` on failure."""
    item = _convert_one(obj, now)
    try:
        if isinstance(item, _Invalids):
            raise item
        return _finish(item, now)
    except _Invalids as exc:
        first = exc.problems[0]
        raise ValueError(first.field, first.message) from None


def validate_batch(
    items: Sequence[object], *, now: datetime | None = None
) -> tuple[list[Event], list[Problem]]:
    """Validate every event of a batch; return the events, or every problem found."""
    moment = now or datetime.now(UTC)
    try:
        decoded: list[Any] = msgspec.convert(items, list[_AnyIn])
    except msgspec.ValidationError:
        decoded = [_convert_one(obj, moment) for obj in items]
    return _finish_all(decoded, moment)


def decode_batch(
    data: bytes, *, ndjson: bool, now: datetime | None = None
) -> tuple[list[Event], list[Problem]]:
    """Decode and validate a body: a JSON array, one JSON object, or (``ndjson``) NDJSON.

    Returns the events, or every problem found (``index`` counts events, blank lines
    skipped). Raises :class:`BatchSyntaxError` when the body is not JSON or not NDJSON.
    """
    try:
        return _decode_batch(data, ndjson=ndjson, now=now)
    except RecursionError:  # msgspec's decoders recurse: [[[[...]]]] would be a 500
        raise BatchSyntaxError("body is not valid JSON: it is nested too deeply") from None


def _decode_batch(
    data: bytes, *, ndjson: bool, now: datetime | None
) -> tuple[list[Event], list[Problem]]:
    moment = now or datetime.now(UTC)
    if ndjson:
        try:
            decoded: list[Any] = _ONE.decode_lines(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            decoded = _ndjson_slowly(data, moment)
        return _finish_all(decoded, moment)
    head = data.lstrip()[:1]
    if head == b"{":
        try:
            return _finish_all([_ONE.decode(data)], moment)
        except msgspec.ValidationError:
            return _finish_all([_decode_one(data, moment)], moment)
        except msgspec.DecodeError as exc:
            raise BatchSyntaxError(f"body is not valid JSON: {exc}") from None
    if head == b"[":
        try:
            return _finish_all(_MANY.decode(data), moment)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        try:
            raws = _RAWS.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise BatchSyntaxError(f"body is not valid JSON: {exc}") from None
        return _finish_all([_decode_one(bytes(r), moment) for r in raws], moment)
    try:
        msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BatchSyntaxError(f"body is not valid JSON: {exc}") from None
    raise BatchSyntaxError("body must be a JSON object, a JSON array or NDJSON")


def decode_columns(
    data: bytes, *, ndjson: bool, least: int, now: datetime | None = None
) -> EventColumns | None:
    """The events of a body (a JSON array, or NDJSON) as columns, when it holds at least
    ``least`` events, every one valid, and their times are all RFC 3339 or all whole epoch
    milliseconds: the usual large batch. ``None`` for any other body; ``decode_batch`` then
    gives its answer (its events, or every problem, or the syntax error).

    The rules are ``decode_batch``'s: the same input structs, decoded the same way, and the
    same rules of each kind, event by event. Only the times are checked for the whole batch
    at once, and no :class:`Event` is built: about 40% less work for a batch of thousands
    (measured in docs/performance.md)."""
    try:
        if ndjson:
            decoded: list[Any] = _ONE.decode_lines(data)
        elif data.lstrip()[:1] == b"[":
            decoded = _MANY.decode(data)
        else:
            return None
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None
    if not decoded or len(decoded) < least:
        return None
    return _finish_columns(decoded, now or datetime.now(UTC))


_US = timedelta(microseconds=1)
_MIN_US = (_MIN_TIME - _EPOCH) // _US
_FUTURE_US = MAX_FUTURE // _US


def _finish_columns(decoded: list[_In], now: datetime) -> EventColumns | None:
    """``_finish`` for a whole batch, as columns; ``None`` at the first problem."""
    raw = [e.time for e in decoded]
    times_us = _times_us(raw)
    if times_us is None:
        return None
    if int(times_us.min()) < _MIN_US or int(times_us.max()) > (now - _EPOCH) // _US + _FUTURE_US:
        return None
    bad: list[_Invalid] = []
    kind_of, rules = _KIND_OF, _RULES
    ruled = [rules[type(e)](e, bad) for e in decoded]
    if bad:
        return None
    kinds = [kind_of[type(e)] for e in decoded]
    sessions = [r[0] for r in ruled]
    users = [r[1] for r in ruled]
    attrs = [r[2] for r in ruled]
    ids: list[Any] = [e.id for e in decoded]
    types = [e.type for e in decoded]
    durations = [e.duration_ms for e in decoded]
    if None in ids:
        for i, event_id in enumerate(ids):
            if event_id is None:
                time = _time(raw[i])
                ids[i] = derive_id(
                    kinds[i], time, types[i], sessions[i], users[i], durations[i], attrs[i]
                )
    return EventColumns(kinds, ids, times_us // 1000, types, sessions, users, durations, attrs)


def _times_us(raw: list[datetime | float]) -> npt.NDArray[np.int64] | None:
    """The times of a batch in epoch microseconds when all are whole epoch milliseconds or all
    RFC 3339 (aware datetimes, any offset); ``None`` for a mix, or another number."""
    if type(raw[0]) is float:
        if not all(type(t) is float for t in raw):
            return None
        ms = np.array(raw, dtype=np.float64)
        if not (ms.min() >= 0 and ms.max() <= MAX_EPOCH_MS):  # NaN fails both
            return None
        whole = ms.astype(np.int64)
        if not np.array_equal(whole, ms):
            return None
        return whole * 1000
    times = [t for t in raw if type(t) is datetime]
    if len(times) < len(raw):
        return None
    return np.array([(t - _EPOCH) // _US for t in times], dtype=np.int64)


def _ndjson_slowly(data: bytes, now: datetime) -> list[Any]:
    """Decode NDJSON line by line: every bad line is named (syntax) or kept as a problem."""
    decoded: list[Any] = []
    syntax: list[Problem] = []
    for lineno, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        try:
            decoded.append(_ONE.decode(line))
        except msgspec.ValidationError:
            decoded.append(_decode_one(line, now))
        except msgspec.DecodeError as exc:
            syntax.append(Problem(len(decoded) + len(syntax), "", f"line {lineno + 1}: {exc}"))
    if syntax:
        raise BatchSyntaxError("body is not valid NDJSON", syntax)
    return decoded
