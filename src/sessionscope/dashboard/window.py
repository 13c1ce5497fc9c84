"""The time window a dashboard page shows: preset and custom ranges; links to pages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.charts import (
    TimeAxis,
)
from sessionscope.domain.timerange import (
    TimeRangeError,
    auto_interval,
    floor_time,
    parse_instant,
)

__all__ = [
    "DEFAULT_RANGE",
    "MAX_SPAN",
    "RANGES",
    "Window",
    "explorer_url",
    "form_value",
    "parse_window",
    "session_url",
    "utc_now",
]


#: The preset ranges of the range picker, ending now.
RANGES: dict[str, tuple[str, timedelta]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
}
DEFAULT_RANGE = "24h"
#: Longest custom range (daily points: about 400 of them).
MAX_SPAN = timedelta(days=400)


@dataclass(frozen=True, slots=True)
class Window:
    """The time window shown: data from ``start`` to ``end`` (both inclusive, UTC), charted
    in ``step`` buckets aligned to the epoch (5-minute marks, or midnight UTC).

    ``until`` is the upper bound people read: now while the window is ``live`` (``end`` is
    now too), else the custom ``to``, left out (``end`` is the millisecond before it). A
    preset is the last ``span / step`` points, the current (incomplete) one included, so
    ``start`` is on a bucket boundary; a custom ``from`` is kept as given, so its first
    bucket may be partial. ``note`` says how the window differs from what was asked.
    """

    key: str
    start: datetime
    end: datetime
    step: timedelta
    until: datetime
    live: bool
    note: str = ""
    #: The custom ``to`` asked for (exclusive), when it was in the future and cut at now.
    asked: datetime | None = None

    @property
    def label(self) -> str:
        if self.key in RANGES:
            return RANGES[self.key][0]
        return f"{fmt.instant(self.start)} to {fmt.instant(self.until)} UTC"

    @property
    def step_label(self) -> str:
        return "day" if self.step >= timedelta(days=1) else "5 minutes"

    @property
    def span(self) -> str:
        """What the window covers, in words: ``2025-10-10 09:00 to 10:00 UTC (1 h)``."""
        length = fmt.duration((self.until - self.start).total_seconds() * 1000)
        return f"{fmt.instant(self.start)} to {fmt.instant(self.until)} UTC ({length})"

    @property
    def points(self) -> str:
        """The chart points in words, saying which ones the window covers only in part."""
        times = self.buckets()
        parts = []
        if self.start > times[0]:
            parts.append(f"the first covers only from {self.start:%H:%M}")
        if self.until < times[-1] + self.step:
            if self.live:
                parts.append("the last one is still in progress")
            else:
                parts.append(f"the last covers only up to {self.until:%H:%M}")
        text = f"{len(times)} points, one per {self.step_label}"
        if parts:
            text += "; " + " and ".join(parts) + " (drawn hollow, on a dotted line)"
        return text

    def buckets(self) -> list[datetime]:
        """The starts of the chart's buckets, oldest first (those the series have)."""
        out: list[datetime] = []
        t = floor_time(self.start, self.step)
        while t <= self.end:
            out.append(t)
            t += self.step
        return out

    def axis(self, times: Sequence[datetime]) -> TimeAxis:
        """The chart axis of the window's buckets ``times``."""
        return TimeAxis(times, self.step, self.start, self.until, self.live)


def parse_window(range_: str | None, from_: str | None, to: str | None, now: datetime) -> Window:
    """Read the range picker's parameters; raise ``TimeRangeError`` naming a bad one."""
    key = range_ or ("custom" if from_ else DEFAULT_RANGE)
    if key in RANGES:
        span = RANGES[key][1]
        step = auto_interval(span)
        start = floor_time(now, step) + step - span
        return Window(key, start, now, step, now, live=True)
    if key != "custom":
        raise TimeRangeError("range", f"must be one of {', '.join(RANGES)} or custom")
    if not from_:
        raise TimeRangeError("from", "is required for a custom range")
    start = parse_instant(from_, "from")
    if start >= now:
        raise TimeRangeError("from", "is in the future: nothing has happened there yet")
    until = _until(to) if to else now
    if until <= start:
        raise TimeRangeError("to", "must be after from")
    note, asked = "", None
    if until > now:
        when = f"{fmt.instant(until)} UTC"
        if to and _DATE_ONLY.match(to.strip()):
            when = f"the end of {to.strip()} (UTC)"
        note = f"The range ends at {when}, in the future: shown up to now."
        until, asked = now, until
    if until - start > MAX_SPAN:
        raise TimeRangeError("from", f"the range may span at most {MAX_SPAN.days} days")
    live = until == now
    end = now if live else until - timedelta(milliseconds=1)
    step = auto_interval(until - start)
    return Window("custom", start, end, step, until, live, note, asked)


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def form_value(t: datetime) -> str:
    """An instant as the range form's ``datetime-local`` inputs write it (UTC)."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S" if t.second else "%Y-%m-%dT%H:%M")


def _until(to: str) -> datetime:
    """A custom ``to`` as an exclusive bound: a bare date means the end of that day."""
    at = parse_instant(to, "to")
    last = parse_instant(to, "to", end_of_day=True)
    return last + timedelta(milliseconds=1) if last != at else at


def session_url(kind: str, key: str) -> str:
    """Path of a session's page."""
    return f"/sessions/{kind}/{quote(key, safe='')}"


def explorer_url(kind: str, **filters: str) -> str:
    """Path of the explorer for a kind with filters."""
    return "/sessions?" + urlencode({"kind": kind, **filters})


def utc_now() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)
