"""The input side of event validation: one msgspec struct per kind (what an incoming event may
carry: types, lengths, ranges, required and unknown fields, checked in C while decoding), the
decoders built from them, and the translation of msgspec's complaints into our problems
(:class:`_Invalid`: which field, and what is wrong with it).

``domain.events`` applies the rules a type cannot say and is the entry point; this module only
declares the shapes and words the problems.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Union

import msgspec

from sessionscope.domain.event_model import _INT32_MAX, KINDS

__all__ = [
    "KIND_FIELDS",
    "_IN_TYPES",
    "_MANY",
    "_ONE",
    "_RAWS",
    "_AnyIn",
    "_AwareTime",
    "_ChannelIn",
    "_DesktopIn",
    "_EndpointIn",
    "_In",
    "_Invalid",
    "_Invalids",
    "_PlayerIn",
    "_problem",
    "_time_message",
]

# ------------------------------------------------------------------------------ input shapes

_S64 = Annotated[str, msgspec.Meta(max_length=64)]
_S256 = Annotated[str, msgspec.Meta(max_length=256)]
_S2K = Annotated[str, msgspec.Meta(max_length=2048)]
_MS_INT = Annotated[int, msgspec.Meta(ge=0, le=_INT32_MAX)]
_AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class _In(msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", kw_only=True):
    """Fields common to every kind. Optional fields accept ``null`` as absent."""

    time: _AwareTime | float
    type: Annotated[str, msgspec.Meta(min_length=1)]
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] | None = None
    duration_ms: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None


class _PlayerIn(_In, tag="player"):
    session: _S256
    user: _S64
    device: Annotated[str, msgspec.Meta(max_length=32)]
    video_type: Annotated[str, msgspec.Meta(max_length=8)]
    origin: _S256 | None = None
    os: _S256 | None = None
    video_time: float | str | None = None
    browser: _S2K | None = None
    ip: _S2K | None = None
    screen: _S2K | None = None
    lang: _S2K | None = None
    page: _S2K | None = None
    isp: _S2K | None = None
    nation: _S2K | None = None
    media: _S2K | None = None
    address: _S2K | None = None
    player_name: _S2K | None = None
    player_version: _S2K | None = None
    error_code: _S2K | None = None
    error_message: _S2K | None = None


class _ChannelIn(_In, tag="channel"):
    channel: _S256
    level: str = "INFO"
    description: _S2K | None = None


class _DesktopIn(_In, tag="desktop"):
    session: Annotated[int, msgspec.Meta(ge=1, le=_INT32_MAX)]
    user_id: Annotated[int, msgspec.Meta(ge=0, le=_INT32_MAX)]
    user_name: _S256 | None = None
    client_guid: _S256 | None = None
    client_name: _S256 | None = None
    app: _S2K | None = None
    title: _S2K | None = None
    url: _S2K | None = None


class _EndpointIn(_In, tag="endpoint"):
    session: _S256
    agent_id: _S256
    visited_site: _S256
    protocol: Annotated[str, msgspec.Meta(max_length=16)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    source_addr: _S64
    page_id: _S64
    on_load_ms: _MS_INT
    response_code: Annotated[int, msgspec.Meta(ge=100, le=599)]
    org_name: _S256 | None = None
    title: _S2K | None = None
    on_content_load_ms: _MS_INT | None = None


_AnyIn = Union[_PlayerIn, _ChannelIn, _DesktopIn, _EndpointIn]  # noqa: UP007 - a runtime type
_IN_TYPES: dict[str, type[_In]] = {
    "player": _PlayerIn,
    "channel": _ChannelIn,
    "desktop": _DesktopIn,
    "endpoint": _EndpointIn,
}
_COMMON = frozenset(_In.__struct_fields__) | {"kind"}

#: Fields each kind accepts besides the common ones.
KIND_FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(t.__struct_fields__) - _COMMON for kind, t in _IN_TYPES.items()
}

_ONE = msgspec.json.Decoder(_AnyIn)
_MANY = msgspec.json.Decoder(list[_AnyIn])
_RAWS = msgspec.json.Decoder(list[msgspec.Raw])


# ------------------------------------------------------------------------------ problems


class _Invalid(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Invalids(Exception):
    """Every problem of one event."""

    def __init__(self, problems: list[_Invalid]) -> None:
        super().__init__(problems[0].message if problems else "")
        self.problems = problems


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?:\[\d+\])?(?:\.(?P<field>\w+))?`)?$", re.S)
_NAMED = re.compile(r"^Object (?P<what>missing required|contains unknown) field `(?P<field>\w+)`")
_EXPECTED = re.compile(r"^Expected `(?P<type>[^`]+)`(?:, got `(?P<got>\w+)`)?(?P<rest>.*)$", re.S)
_NOUNS = {"str": "a string", "int": "an integer", "float": "a number", "uuid": "a uuid"}


def _problem(exc: msgspec.ValidationError, obj_kind: object) -> _Invalid:
    """Say a msgspec validation error in our words: which field, and what is wrong with it."""
    m = _AT.match(str(exc))
    msg, name = (m["msg"], m["field"] or "") if m else (str(exc), "")
    named = _NAMED.match(msg)
    if named:
        name = named["field"]
        if named["what"] == "missing required":
            return _Invalid(name, "is required")
        kind = obj_kind if isinstance(obj_kind, str) else "these"
        return _Invalid(name, f"is not a field of {kind} events")
    if name == "kind" or msg.startswith("Invalid value"):
        return _Invalid("kind", f"must be one of {', '.join(KINDS)}")
    if name == "":
        return _Invalid("", "each event must be a JSON object")
    if name == "time":
        return _Invalid("time", _time_message(msg))
    if msg == "Invalid UUID":
        return _Invalid(name, "must be a uuid")
    exp = _EXPECTED.match(msg)
    if exp:
        if exp["got"] == "null":
            return _Invalid(name, "is required")
        rest = exp["rest"].strip()
        if rest.startswith("of length >= 1"):
            return _Invalid(name, "must not be empty")
        if rest.startswith("of length <= "):
            return _Invalid(name, f"must be at most {rest.rsplit(' ', 1)[-1]} characters")
        if rest.startswith((">=", "<=")):
            return _Invalid(name, f"must be {rest}")
        base = exp["type"].split(" | ")[0]
        return _Invalid(name, f"must be {_NOUNS.get(base, base)}")
    return _Invalid(name, msg[:1].lower() + msg[1:])


def _time_message(msg: str) -> str:
    if "timezone" in msg:
        return "must carry a UTC offset, e.g. 'Z' (RFC 3339)"
    if "RFC3339" in msg:
        return "not an RFC 3339 time"
    return "must be an RFC 3339 string or epoch milliseconds"
