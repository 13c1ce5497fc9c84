"""The event model: kinds and their constants, the validated :class:`Event`, a batch's
:class:`Problem`, and the id derived from an event's content. Validation is in
:mod:`sessionscope.domain.events`, which re-exports all of this."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from sessionscope.domain.timerange import utc_clock

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
    "derive_id",
    "epoch_ms",
    "format_time",
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
_CHANNEL_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_ZERO = timedelta(0)


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with one event of a batch."""

    index: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "message": self.message}


class BatchSyntaxError(ValueError):
    """The body is not JSON (or not NDJSON): ``message`` says why, ``problems`` which lines."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class Event(msgspec.Struct, frozen=True, kw_only=True):
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
    attrs: Mapping[str, Any] = msgspec.field(default_factory=dict)

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


@dataclass(frozen=True, slots=True)
class EventColumns:
    """Valid events as columns, in order: what an :class:`Event` holds, a list per field
    (``domain.events.decode_columns``: a large batch becomes the store's columns without an
    object per event). ``times_ms``: whole epoch milliseconds (int64), as the store keeps
    them (a time's microseconds cut off)."""

    kinds: list[str]
    ids: list[str]
    times_ms: npt.NDArray[np.int64]
    types: list[str]
    sessions: list[str]
    users: list[str]
    durations_ms: list[int | None]
    attrs: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.ids)


def epoch_ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exactly (no float rounding)."""
    return (t - _EPOCH) // _MS


def format_time(t: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with milliseconds."""
    return f"{utc_clock(t)}.{t.microsecond // 1000:03d}Z"


def _identity_fields(e: Event) -> dict[str, Any]:
    if e.kind == "player":
        return {"session": e.session, "user": e.user}
    if e.kind == "channel":
        return {"channel": e.session}
    if e.kind == "desktop":
        return {"session": int(e.session), "user_id": int(e.user)}
    return {"session": e.session, "agent_id": e.user}


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
