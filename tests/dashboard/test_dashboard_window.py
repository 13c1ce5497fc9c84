"""The overview's time window: what each range covers, and how its chart points are named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.window import RANGES, parse_window
from sessionscope.domain.timerange import TimeRangeError

NOW = datetime(2025, 10, 10, 19, 47, 12, tzinfo=UTC)
FIVE = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("key", "points", "step"),
    [("1h", 12, FIVE), ("24h", 288, FIVE), ("7d", 7, timedelta(days=1)), ("30d", 30, None)],
)
def test_a_preset_is_its_last_points_the_current_one_included(
    key: str, points: int, step: timedelta | None
) -> None:
    w = parse_window(key, None, None, NOW)
    step = step or timedelta(days=1)
    assert (w.step, w.end, w.until, w.live) == (step, NOW, NOW, True)
    buckets = w.buckets()
    assert len(buckets) == points
    # Every point is whole but the current one: none starts before the window.
    assert buckets[0] == w.start and buckets[-1] <= NOW < buckets[-1] + step
    assert RANGES[key][1] - step < NOW - w.start <= RANGES[key][1]
    assert "the last one is still in progress" in w.points


def test_last_hour_and_last_seven_days_say_what_they_cover() -> None:
    hour = parse_window("1h", None, None, NOW)
    assert hour.span == "2025-10-10 18:50 to 2025-10-10 19:47:12 UTC (57 min 12 s)"
    assert hour.points.startswith("12 points, one per 5 minutes; the last one")
    week = parse_window("7d", None, None, NOW)
    assert week.start == datetime(2025, 10, 4, tzinfo=UTC)
    assert week.points.startswith("7 points, one per day")


def test_a_custom_start_is_kept_and_its_partial_point_named() -> None:
    w = parse_window("custom", "2025-10-01T06:00", "2025-10-05T18:00", NOW)
    assert w.start == datetime(2025, 10, 1, 6, tzinfo=UTC)  # not moved back to midnight
    assert w.until == datetime(2025, 10, 5, 18, tzinfo=UTC) and not w.live
    assert w.end == w.until - timedelta(milliseconds=1)
    assert w.label == "2025-10-01 06:00 to 2025-10-05 18:00 UTC"
    assert [t.day for t in w.buckets()] == [1, 2, 3, 4, 5]
    assert "the first covers only from 06:00" in w.points
    assert "the last covers only up to 18:00" in w.points
    axis = w.axis(w.buckets())
    assert axis.partial() == [0, 4]
    assert axis.title(0) == "2025-10-01 (UTC day) (from 06:00)"
    assert axis.title(4) == "2025-10-05 (UTC day) (to 18:00)"
    assert axis.title(2) == "2025-10-03 (UTC day)"


def test_a_custom_end_on_a_point_boundary_adds_no_empty_point() -> None:
    w = parse_window("custom", "2025-10-10T09:00", "2025-10-10T12:00", NOW)
    buckets = w.buckets()
    assert len(buckets) == 36 and buckets[-1] == datetime(2025, 10, 10, 11, 55, tzinfo=UTC)
    assert w.points == "36 points, one per 5 minutes"
    day = parse_window("custom", "2025-10-08", "2025-10-08", NOW)
    assert (day.start, day.until) == (
        datetime(2025, 10, 8, tzinfo=UTC),
        datetime(2025, 10, 9, tzinfo=UTC),
    )
    assert len(day.buckets()) == 288 and day.step == FIVE


def test_a_custom_end_in_the_future_is_cut_at_now() -> None:
    w = parse_window("custom", "2025-10-09T00:00", "2025-10-20T00:00", NOW)
    assert (w.until, w.end, w.live) == (NOW, NOW, True)
    assert "2025-10-20 00:00 UTC, in the future: shown up to now" in w.note
    assert w.buckets()[-1] == datetime(2025, 10, 10, tzinfo=UTC)  # no point after today
    with pytest.raises(TimeRangeError, match="from: is in the future"):
        parse_window("custom", "2025-10-11", None, NOW)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850 ms"),
        (2_410, "2.41 s"),
        (725_000, "12 min 05 s"),
        (900_000, "15 min"),
        (3 * 3_600_000, "3 h"),
        (3 * 3_600_000 + 120_000, "3 h 02 min"),
        (2 * 86_400_000, "2 d"),
    ],
)
def test_durations_leave_out_a_zero_unit(ms: int, text: str) -> None:
    assert fmt.duration(ms) == text
