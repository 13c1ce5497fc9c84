"""Time ranges, chart intervals and instants given as text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "INTERVALS",
    "MAX_WINDOW",
    "TimeRange",
    "TimeRangeError",
    "auto_interval",
    "floor_time",
    "parse_instant",
    "parse_interval",
    "parse_window",
    "span_label",
]


class TimeRangeError(ValueError):
    """A time parameter could not be understood; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """An inclusive range of instants, both aware UTC."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def contains(self, t: datetime) -> bool:
        return self.start <= t <= self.end


def parse_instant(text: str, param: str, *, end_of_day: bool = False) -> datetime:
    """Parse ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]``, ISO 8601 / RFC 3339 or epoch ms.

    Values without an offset are UTC. A bare date is its midnight, or with ``end_of_day`` the
    last millisecond of that day.
    """
    value = text.strip()
    if not value:
        raise TimeRangeError(param, "is empty")
    if value.isdigit() and len(value) >= 10:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    if _DATE_ONLY.match(value):
        try:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            raise TimeRangeError(param, f"is not a valid date: {value[:40]!r}") from None
        return day + timedelta(days=1, milliseconds=-1) if end_of_day else day
    candidate = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise TimeRangeError(
            param,
            f"is not a date or time (use YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or ISO 8601): "
            f"{value[:40]!r}",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def auto_interval(span: timedelta) -> timedelta:
    """The chart interval rule: 5-minute points up to a 1-day span, 1-day points beyond."""
    return INTERVALS["5m"] if span <= timedelta(days=1) else INTERVALS["1d"]


def parse_interval(text: str | None, span: timedelta) -> timedelta:
    """Parse ``auto`` (default), ``1m``, ``5m``, ``1h`` or ``1d``."""
    if text is None or text == "auto":
        return auto_interval(span)
    if text not in INTERVALS:
        raise TimeRangeError("interval", "must be auto, 1m, 5m, 1h or 1d")
    return INTERVALS[text]


_WINDOW = re.compile(r"^([0-9]+)([smhdw]?)$")
_WINDOW_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: The longest window accepted (longer ones reach before any stored event anyway).
MAX_WINDOW = timedelta(days=36500)


def parse_window(text: str, param: str = "window") -> timedelta:
    """Parse a window length ``<n>[smhdw]`` (no unit means seconds), e.g. ``90``, ``15m``, ``2w``.

    The window must be longer than zero and at most :data:`MAX_WINDOW`.
    """
    match = _WINDOW.match(text.strip())
    if match is None:
        raise TimeRangeError(
            param, f"must be a number with an optional unit s, m, h, d or w, not {text[:40]!r}"
        )
    seconds = int(match.group(1)) * _WINDOW_UNITS[match.group(2)]
    if seconds <= 0:
        raise TimeRangeError(param, "must be longer than zero")
    if seconds > MAX_WINDOW.total_seconds():
        raise TimeRangeError(param, f"must be at most {MAX_WINDOW.days} days")
    return timedelta(seconds=seconds)


def floor_time(t: datetime, step: timedelta) -> datetime:
    """Floor an instant to a multiple of ``step`` since the epoch (UTC)."""
    seconds = int(step.total_seconds())
    epoch = int(t.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)


def span_label(span: timedelta) -> str:
    """Short label of a span, e.g. ``1h``, ``1d``, ``7d``, ``90m``."""
    seconds = int(span.total_seconds())
    if (seconds >= 86400 and seconds % 86400 == 0) or seconds >= 2 * 86400:
        return f"{round(seconds / 86400)}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds >= 60:
        return f"{round(seconds / 60)}m"
    return f"{seconds}s"
