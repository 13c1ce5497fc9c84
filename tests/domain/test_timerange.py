"""Time parameters, bounds, intervals and span labels (domain.timerange): pure, no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope.domain.timerange import (
    MAX_INSTANT,
    MIN_INSTANT,
    TimeRangeError,
    auto_interval,
    floor_time,
    parse_instant,
    span_label,
    utc_clock,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ------------------------------------------------------------------------------ parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-10-10", utc(2025, 10, 10)),
        ("2025-10-10 09:54", utc(2025, 10, 10, 9, 54)),
        ("2025-10-10 09:54:38", utc(2025, 10, 10, 9, 54, 38)),
        ("2025-10-10T09:54:38Z", utc(2025, 10, 10, 9, 54, 38)),
        ("2025-10-10T18:54:38+09:00", utc(2025, 10, 10, 9, 54, 38)),
        ("  2025-10-10T09:54:38.250z ", utc(2025, 10, 10, 9, 54, 38, 250000)),
        # Epoch milliseconds: ten digits or more, exact to the millisecond.
        ("1755591346586", utc(2025, 8, 19, 8, 15, 46, 586000)),
        ("0000000000", MIN_INSTANT),
        ("1000000000", utc(1970, 1, 12, 13, 46, 40)),
    ],
)
def test_accepted_forms(text: str, expected: datetime) -> None:
    got = parse_instant(text, "p")
    assert got == expected and got.tzinfo is UTC


def test_a_bare_date_at_the_end_of_its_day() -> None:
    assert parse_instant("2025-10-10", "p", end_of_day=True) == utc(
        2025, 10, 10, 23, 59, 59, 999000
    )
    # Only bare dates: a time is taken as written.
    assert parse_instant("2025-10-10 10:00", "p", end_of_day=True) == utc(2025, 10, 10, 10)


@pytest.mark.parametrize(
    "text",
    [
        # Past what a datetime holds (once OSError / ValueError / OverflowError, a 500).
        "99999999999999999999",
        "99999999999999999",
        "9" * 5000,
        "0001-01-01",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31",
        "9999-12-31T23:59:59-01:00",
        "0002-01-01 23:55:00",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T08:59:59+09:00",
        "9999-01-01",
        "253370764800000",
    ],
)
def test_out_of_range_instants_are_refused(text: str) -> None:
    with pytest.raises(TimeRangeError) as info:
        parse_instant(text, "startDate")
    assert info.value.param == "startDate"
    assert "1970-01-01" in info.value.message and "9998-12-31" in info.value.message
    assert len(info.value.message) < 120  # the value is echoed, but cut


@pytest.mark.parametrize(
    "text",
    [
        "\u00b2" * 10,  # str.isdigit() is True, int() raises
        "\u0661" * 13,  # Arabic-Indic digits: int() reads them
        "\uff11" * 13,  # full-width digits
        "\u0662\u0660\u0662\u0665-\u0661\u0660-\u0661\u0660",
        "2025-10-10T\u0661\u0660:00:00",
        "\u00b2",
        "",
        "   ",
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "-1755591346586",
        "+1755591346586",
        "1755591346586.5",
    ],
)
def test_unreadable_text_is_refused(text: str) -> None:
    with pytest.raises(TimeRangeError) as info:
        parse_instant(text, "endDate")
    assert info.value.param == "endDate"
    assert str(info.value).startswith("endDate: ")


def test_the_bounds_are_inclusive() -> None:
    assert parse_instant("1970-01-01T00:00:00Z", "p") == MIN_INSTANT
    assert parse_instant("1970-01-01T09:00:00+09:00", "p") == MIN_INSTANT
    last = parse_instant("9998-12-31", "p", end_of_day=True)
    assert last == utc(9998, 12, 31, 23, 59, 59, 999000) <= MAX_INSTANT
    assert parse_instant("253370764799999", "p") == last
    assert parse_instant("9998-12-31T23:59:59.999999Z", "p") == MAX_INSTANT


@given(st.text(max_size=40))
def test_any_text_is_an_instant_in_bounds_or_a_time_range_error(text: str) -> None:
    try:
        got = parse_instant(text, "p")
    except TimeRangeError as exc:
        assert exc.param == "p"
    else:
        assert got.utcoffset() == timedelta(0) and MIN_INSTANT <= got <= MAX_INSTANT


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_any_iso_time_is_an_instant_in_bounds_or_refused(t: datetime) -> None:
    for text in (t.isoformat(), t.date().isoformat(), f"{t.isoformat()}+14:00"):
        try:
            got = parse_instant(text, "p", end_of_day=True)
        except TimeRangeError as exc:
            assert "1970-01-01" in exc.message  # readable, so refused only for its range
        else:
            assert MIN_INSTANT <= got <= MAX_INSTANT
            # What callers compute from an instant stays representable and formats as 4 digits.
            assert len(f"{(got + timedelta(days=1)):%Y}") == 4
            assert (got - timedelta(days=1)).year >= 1969


# ------------------------------------------------------------------------------ intervals


def test_auto_interval() -> None:
    assert auto_interval(timedelta(days=1)) == timedelta(minutes=5)
    assert auto_interval(timedelta(days=1, milliseconds=1)) == timedelta(days=1)


def test_floor_time_is_epoch_aligned() -> None:
    t = utc(2026, 11, 29, 23, 0)
    assert floor_time(t, timedelta(days=1)) == utc(2026, 11, 29)
    assert floor_time(t + timedelta(minutes=7), timedelta(minutes=5)) == utc(2026, 11, 29, 23, 5)
    assert floor_time(MAX_INSTANT, timedelta(days=1)) == utc(9998, 12, 31)


# ------------------------------------------------------------------------------ span labels


@pytest.mark.parametrize(
    ("span", "label"),
    [
        # Exact, in the largest unit that divides the span, while under 100 of it.
        (timedelta(days=1), "1d"),
        (timedelta(days=7), "7d"),
        (timedelta(days=365), "365d"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=25), "25h"),
        (timedelta(hours=36), "36h"),
        (timedelta(hours=99), "99h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(minutes=1), "1m"),
        (timedelta(seconds=45), "45s"),
        # Anything else: rounded to the largest unit the span holds twice.
        (timedelta(days=1, seconds=1), "1d"),  # was 1440m
        (timedelta(hours=25, seconds=10), "25h"),  # was 1500m
        (timedelta(days=2, seconds=-1), "2d"),  # was 2880m
        (timedelta(days=1, minutes=1), "1d"),
        (timedelta(days=1, milliseconds=999), "1d"),
        (timedelta(hours=100), "4d"),
        (timedelta(days=7, hours=14), "8d"),
        (timedelta(days=7, hours=14, minutes=5, seconds=3), "8d"),
        (timedelta(days=2, hours=11, seconds=1), "2d"),
        (timedelta(minutes=150), "3h"),
        (timedelta(hours=2, minutes=29, seconds=59), "2h"),
        (timedelta(hours=1, seconds=1), "1h"),
        (timedelta(seconds=119), "119s"),
        (timedelta(seconds=121), "2m"),
        (timedelta(milliseconds=400), "0s"),
        (timedelta(0), "0s"),
    ],
)
def test_span_label(span: timedelta, label: str) -> None:
    assert span_label(span) == label


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@given(st.integers(min_value=1, max_value=400 * 86400))
def test_a_span_label_is_close_to_the_span(seconds: int) -> None:
    label = span_label(timedelta(seconds=seconds))
    match = re.fullmatch(r"([1-9][0-9]*)([dhms])", label)
    assert match is not None, label
    shown = int(match[1]) * _UNITS[match[2]]
    # At most half of the rounding unit off, which is at most a quarter of the span (the span
    # holds the unit at least twice); exact when a unit takes fewer than 100 of it.
    assert abs(shown - seconds) <= seconds / 4
    if any(seconds % u == 0 and seconds // u < 100 for u in _UNITS.values()):
        assert shown == seconds


@settings(max_examples=300)
@given(
    st.datetimes(
        datetime(1970, 1, 2), datetime(9998, 12, 30), timezones=st.timezones(no_cache=False)
    ),
    st.sampled_from(["T", " "]),
)
def test_utc_clock_says_what_strftime_says(t: datetime, sep: str) -> None:
    assert utc_clock(t, sep) == t.astimezone(UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S")
