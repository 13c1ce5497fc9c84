"""How the dashboard writes numbers, durations and times for people (times always in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = [
    "bucket_label",
    "bucket_title",
    "duration",
    "instant",
    "integer",
    "millis",
    "percent",
    "score",
    "seconds",
    "time",
]


def integer(value: float | int | None) -> str:
    """``12,345``; an em dash for no value."""
    return "—" if value is None else f"{round(value):,}"


def percent(ratio: float | None, digits: int = 2) -> str:
    """A ratio as a percentage: ``0.0123`` -> ``1.23 %``."""
    return "—" if ratio is None else f"{ratio * 100:.{digits}f} %"


def score(value: float | None) -> str:
    """An experience score between 0 and 1, two decimals."""
    return "—" if value is None else f"{value:.2f}"


def millis(value: float | int | None) -> str:
    """Milliseconds as ``850 ms`` below a second, else as seconds (``2.41 s``)."""
    if value is None:
        return "—"
    if value < 1000:
        return f"{round(value):,} ms"
    return f"{value / 1000:,.2f} s"


def seconds(value_ms: float | int | None) -> str:
    """Milliseconds written as seconds with two decimals."""
    return "—" if value_ms is None else f"{value_ms / 1000:,.2f} s"


def duration(value_ms: float | int | None) -> str:
    """A length of time: ``850 ms``, ``2.41 s``, ``12 min 05 s``, ``15 min``, ``3 h 02 min``,
    ``2 d 03 h``; a zero second unit is left out (``15 min``, not ``15 min 00 s``)."""
    if value_ms is None:
        return "—"
    total = round(value_ms / 1000)
    if value_ms < 1000:
        return f"{round(value_ms)} ms"
    if value_ms < 10_000:
        return f"{value_ms / 1000:.2f} s"
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return _units(minutes, "min", secs, "s")
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _units(hours, "h", minutes, "min")
    days, hours = divmod(hours, 24)
    return _units(days, "d", hours, "h")


def _units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big} {big_unit}" if small == 0 else f"{big} {big_unit} {small:02d} {small_unit}"


def time(t: datetime | None, *, seconds: bool = True) -> str:
    """``2025-10-10 09:05:07`` (UTC); an em dash for no time."""
    if t is None:
        return "—"
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def instant(t: datetime) -> str:
    """``2025-10-10 09:05`` on a whole minute, else with seconds (``2025-10-10 09:05:07``)."""
    t = t.astimezone(UTC)
    return time(t, seconds=bool(t.second or t.microsecond))


def bucket_label(t: datetime, step: timedelta) -> str:
    """Short axis label of a bucket: ``09:05`` for sub-day steps, ``Oct 10`` for days."""
    t = t.astimezone(UTC)
    if step < timedelta(days=1):
        return f"{t.hour:02d}:{t.minute:02d}"  # as strftime("%H:%M"), several times faster
    return t.strftime("%b %d")


def bucket_title(t: datetime, step: timedelta) -> str:
    """Full name of a bucket for tooltips and tables: ``2025-10-10 09:05 UTC`` or the day."""
    t = t.astimezone(UTC)
    if step < timedelta(days=1):
        return f"{t.year:04d}-{t.month:02d}-{t.day:02d} {t.hour:02d}:{t.minute:02d} UTC"
    return t.strftime("%Y-%m-%d (UTC day)")
