"""Time ranges, chart intervals and instants given as text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = [
    "INTERVALS",
    "MAX_EPOCH_MS",
    "MAX_INSTANT",
    "MAX_WINDOW",
    "MIN_INSTANT",
    "TimeRange",
    "TimeRangeError",
    "auto_interval",
    "floor_time",
    "parse_instant",
    "parse_interval",
    "parse_window",
    "span_label",
    "utc_clock",
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

#: The earliest and the latest instant a time parameter may name (both inclusive): the Unix
#: epoch, and the end of 9998. What is computed from an accepted instant (a default span of a
#: day before it, buckets of up to a day after it) then stays inside what ``datetime`` holds,
#: and every year formats as four digits. Events themselves are never older than 2000.
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

# ASCII digits only: ``\d`` and ``str.isdigit`` also take "²" or Arabic-Indic digits.
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EPOCH_MS = re.compile(r"[0-9]{10,}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``MAX_INSTANT`` in epoch milliseconds (``MIN_INSTANT`` is 0).
MAX_EPOCH_MS = (MAX_INSTANT - _EPOCH) // timedelta(milliseconds=1)
_BOUNDS = f"{MIN_INSTANT:%Y-%m-%d} to {MAX_INSTANT:%Y-%m-%d} (UTC)"


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
    last millisecond of that day. Epoch milliseconds are 10 or more ASCII digits. The instant
    must lie in ``[MIN_INSTANT, MAX_INSTANT]``; anything else, or anything unreadable, raises
    :class:`TimeRangeError` naming ``param``.
    """
    value = text.strip()
    if not value:
        raise TimeRangeError(param, "is empty")
    if _EPOCH_MS.fullmatch(value):
        # Compared as text first: int() of a huge string is slow, then refused anyway.
        if len(value) > len(str(MAX_EPOCH_MS)) or int(value) > MAX_EPOCH_MS:
            raise _out_of_range(param, value)
        return _EPOCH + timedelta(milliseconds=int(value))
    if _DATE_ONLY.fullmatch(value):
        try:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            raise TimeRangeError(param, f"is not a valid date: {value[:40]!r}") from None
        return _bounded(
            day + timedelta(days=1, milliseconds=-1) if end_of_day else day, param, value
        )
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
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise _out_of_range(param, value) from None
    return _bounded(utc, param, value)


def _bounded(t: datetime, param: str, text: str) -> datetime:
    if not MIN_INSTANT <= t <= MAX_INSTANT:
        raise _out_of_range(param, text)
    return t


def _out_of_range(param: str, text: str) -> TimeRangeError:
    return TimeRangeError(param, f"must be from {_BOUNDS}, not {text[:40]!r}")


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
    # Integer arithmetic: a float timestamp rounds up across a bucket edge near year 9999.
    seconds = int(step.total_seconds())
    epoch = (t - _EPOCH) // timedelta(seconds=1)
    return _EPOCH + timedelta(seconds=epoch - epoch % seconds)


_LABEL_UNITS: tuple[tuple[str, int], ...] = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
#: An exact label has fewer than this many of its unit (days excepted); longer ones are rounded.
_EXACT_BELOW = 100


def span_label(span: timedelta) -> str:
    """Short label of a span, e.g. ``1h``, ``1d``, ``7d``, ``90m``, ``45s``.

    The span is taken to the nearest second and written in the largest unit (d, h, m, s) that
    divides it, when that takes fewer than 100 of the unit (or the unit is days): ``1d``,
    ``25h``, ``36h``, ``90m``, ``45s``. Any other span is rounded (half up) to the largest unit
    it holds at least twice (days from 2 days, hours from 2 hours, minutes from 2 minutes, else
    seconds) and written the same way: 1 day + 1 s is ``1d``, 2 days - 1 s is ``2d``,
    7 days 14 h is ``8d``, 150 min is ``3h``, 119 s is ``119s``. A label is never more than a
    quarter of the span off.
    """
    seconds = max(0, round(span.total_seconds()))
    name, size = _largest_unit(seconds)
    if seconds // size < _EXACT_BELOW or name == "d":
        return f"{seconds // size}{name}"
    unit = next(size for _, size in _LABEL_UNITS if seconds >= 2 * size or size == 1)
    rounded = (seconds + unit // 2) // unit * unit
    name, size = _largest_unit(rounded)
    return f"{rounded // size}{name}"


def _largest_unit(seconds: int) -> tuple[str, int]:
    """The largest label unit that divides ``seconds`` (seconds for 0)."""
    return next((n, u) for n, u in _LABEL_UNITS if (seconds >= u and seconds % u == 0) or u == 1)


def utc_clock(t: datetime, sep: str = "T") -> str:
    """``2000-01-23T04:56:07``: an instant in UTC to the second, ``sep`` between date and time.

    Written out rather than with ``strftime``: several times faster (the vendor APIs format
    thousands of instants a response), and the year always has four digits.
    """
    u = t.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}{sep}{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
