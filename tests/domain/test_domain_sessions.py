"""The pure session definitions: property tests, clipping tables and known discrepancies.

Everything here builds :class:`Event` values directly and calls the functions of
``sessionscope.domain.sessions``; no store, no server.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope.domain.events import Event
from sessionscope.domain.sessions import (
    DEFAULT_APDEX_THRESHOLD_MS,
    DEFAULT_IDLE_TIMEOUT,
    ChannelSession,
    DesktopSession,
    channel_sessions,
    desktop_session,
    endpoint_session,
    idle_gaps,
    page_score,
    player_metrics,
    player_metrics_from_sums,
)

T0 = datetime(2025, 10, 10, 9, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
PROPS = settings(max_examples=150, deadline=None)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(delta: timedelta) -> int:
    """Exact whole milliseconds of a timedelta (integer arithmetic, no float)."""
    return delta // MS


# --------------------------------------------------------------------------------------------
# event builders


def desktop_event(etype: str, t: datetime, i: int, **attrs: Any) -> Event:
    base = {"user_name": "alice", "client_guid": "g-1", "client_name": "ws-01"}
    base.update(attrs)
    return Event(
        id=f"d{i:04d}",
        kind="desktop",
        time=t,
        type=etype,
        session="42",
        user="7",
        attrs=base,
    )


def desktop_events(offsets_s: list[float], *, logout: bool = True) -> list[Event]:
    """login at the first offset (seconds), activities between, logout at the last."""
    return desktop_events_at([at(off) for off in offsets_s], logout=logout)


def desktop_events_at(times: list[datetime], *, logout: bool = True) -> list[Event]:
    """login at the first time, activities between, logout at the last (when ``logout``)."""
    out = []
    for i, t in enumerate(times):
        if i == 0:
            etype = "login"
        elif logout and i == len(times) - 1:
            etype = "logout"
        else:
            etype = "activity"
        out.append(desktop_event(etype, t, i))
    return out


def channel_event(etype: str, t: datetime, i: int, level: str = "INFO") -> Event:
    return Event(
        id=f"c{i:04d}",
        kind="channel",
        time=t,
        type=etype,
        session="ls-1",
        attrs={"level": level, "description": ""},
    )


def player_event(etype: str, duration_ms: int | None, i: int) -> Event:
    return Event(
        id=f"p{i:04d}",
        kind="player",
        time=at(i),
        type=etype,
        session="ps-1",
        user="ad5aea06-fb78-41c7-b2ad-716b685e32db",
        duration_ms=duration_ms,
        attrs={"device": "PC", "video_type": "VOD", "video_time": 0.0},
    )


def page_event(
    page_id: str, t: datetime, i: int, *, on_load: int, code: int = 200, **attrs: Any
) -> Event:
    base: dict[str, Any] = {
        "visited_site": "example.com",
        "protocol": "https",
        "port": 443,
        "source_addr": "84.255.241.1",
        "org_name": "",
        "page_id": page_id,
        "title": f"page {page_id}",
        "on_content_load_ms": None,
        "on_load_ms": on_load,
        "response_code": code,
    }
    base.update(attrs)
    return Event(
        id=f"e{i:04d}",
        kind="endpoint",
        time=t,
        type="page",
        session="es-1",
        user="agent-1",
        attrs=base,
    )


# --------------------------------------------------------------------------------------------
# desktop: properties

# Millisecond offsets (events carry millisecond times); spans up to 6 h, timeouts up to 1 h.
HOURS6 = 6 * 3600 * 1000
offsets_strategy = st.lists(st.integers(0, HOURS6), min_size=1, max_size=25).map(sorted)
timeout_strategy = st.integers(0, 3600 * 1000).map(lambda k: k * MS)
bound_strategy = st.none() | st.integers(-600_000, HOURS6 + 600_000)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime | None, datetime | None]:
    a, b = draw(bound_strategy), draw(bound_strategy)
    if a is not None and b is not None and a > b:
        a, b = b, a
    return (T0 + a * MS if a is not None else None, T0 + b * MS if b is not None else None)


def check_shape(s: DesktopSession, timeout: timedelta) -> None:
    assert s.start <= s.end
    assert s.duration_ms == ms(s.end - s.start)
    assert s.duration_ms == s.idle_ms + s.productive_ms
    assert s.idle_ms >= 0
    assert s.productive_ms >= 0
    assert s.idle_ms == sum(ms(g.end - g.start) for g in s.gaps if g.end is not None)
    previous_end = s.start
    for g in s.gaps:
        assert g.end is not None
        assert previous_end <= g.start < g.end <= s.end
        assert g.end - g.start > timeout
        previous_end = g.end


@PROPS
@given(offsets_strategy, st.booleans(), timeout_strategy)
def test_desktop_unclipped_invariants(offsets: list[int], logout: bool, timeout: timedelta) -> None:
    times = [T0 + k * MS for k in offsets]
    events = desktop_events_at(times, logout=logout and len(offsets) > 1)
    s = desktop_session(events, idle_timeout=timeout)
    assert s is not None
    check_shape(s, timeout)
    assert s.start == s.login == times[0]
    assert s.end == times[-1]
    assert s.logout == (times[-1] if logout and len(offsets) > 1 else None)
    assert (s.session, s.user_id, s.user_name) == (42, 7, "alice")
    assert list(s.gaps) == idle_gaps([e.time for e in events], timeout)


@PROPS
@given(offsets_strategy, st.booleans(), timeout_strategy, windows())
def test_desktop_clipped_invariants(
    offsets: list[int],
    logout: bool,
    timeout: timedelta,
    window: tuple[datetime | None, datetime | None],
) -> None:
    lo, hi = window
    times = [T0 + k * MS for k in offsets]
    events = desktop_events_at(times, logout=logout and len(offsets) > 1)
    full = desktop_session(events, idle_timeout=timeout)
    clipped = desktop_session(events, idle_timeout=timeout, start=lo, end=hi)
    assert full is not None
    inside = [
        e.time for e in events if (lo is None or e.time >= lo) and (hi is None or e.time <= hi)
    ]
    overlaps = (hi is None or times[0] <= hi) and (lo is None or times[-1] >= lo)
    if not overlaps:
        assert clipped is None
        return
    assert clipped is not None
    check_shape(clipped, timeout)
    if not inside:
        # open throughout the window without activity in it: listed, an empty span at lo
        assert (clipped.start, clipped.end, clipped.idle_ms, clipped.gaps) == (lo, lo, 0, ())
        assert (clipped.login, clipped.logout) == (full.login, full.logout)
        return
    # the measured span runs from the first to the last activity inside the window
    assert (clipped.start, clipped.end) == (inside[0], inside[-1])
    assert lo is None or clipped.start >= lo
    assert hi is None or clipped.end <= hi
    assert full.start <= clipped.start <= clipped.end <= full.end
    assert clipped.duration_ms <= full.duration_ms
    assert clipped.idle_ms <= full.idle_ms
    assert set(clipped.gaps) <= set(full.gaps)
    # login/logout are the session's own, whatever the window
    assert (clipped.login, clipped.logout) == (full.login, full.logout)


@PROPS
@given(st.lists(st.integers(0, 10**7), max_size=30), st.integers(0, 10**6))
def test_idle_gaps_are_ordered_disjoint_and_longer_than_the_timeout(
    offsets_ms: list[int], timeout_ms: int
) -> None:
    times = [T0 + k * MS for k in offsets_ms]
    timeout = timeout_ms * MS
    gaps = idle_gaps(times, timeout)
    ordered = sorted(times)
    previous = ordered[0] if ordered else T0
    for g in gaps:
        assert g.end is not None
        assert previous <= g.start and g.end - g.start > timeout
        previous = g.end
    # every long gap between consecutive points is reported, no other
    expected = [(a, b) for a, b in itertools.pairwise(ordered) if b - a > timeout]
    assert [(g.start, g.end) for g in gaps] == expected


# --------------------------------------------------------------------------------------------
# desktop: clipping table

MIN = 60.0
# login 09:00, activity 09:05, 09:10, idle until 09:40, activity 09:40, 09:45, logout 09:50
SESSION = [0, 5 * MIN, 10 * MIN, 40 * MIN, 45 * MIN, 50 * MIN]
IDLE = 30 * 60_000  # the 09:10 -> 09:40 gap, longer than 15 min


@pytest.mark.parametrize(
    ("case", "offsets", "logout", "window", "expected"),
    [
        ("unclipped", SESSION, True, (None, None), (0, 50 * MIN, IDLE)),
        ("inside the window", SESSION, True, (-MIN, 60 * MIN), (0, 50 * MIN, IDLE)),
        ("window equals the span", SESSION, True, (0, 50 * MIN), (0, 50 * MIN, IDLE)),
        ("starts before the window", SESSION, True, (3 * MIN, None), (5 * MIN, 50 * MIN, IDLE)),
        ("ends after the window", SESSION, True, (None, 47 * MIN), (0, 45 * MIN, IDLE)),
        ("spans the window", SESSION, True, (4 * MIN, 46 * MIN), (5 * MIN, 45 * MIN, IDLE)),
        # the 09:10 -> 09:40 gap straddles the start bound: measured from 09:40, no idle
        ("gap straddles start", SESSION, True, (20 * MIN, None), (40 * MIN, 50 * MIN, 0)),
        # ... and the end bound: measured up to 09:10, no idle
        ("gap straddles end", SESSION, True, (None, 30 * MIN), (0, 10 * MIN, 0)),
        ("gap straddles both", SESSION, True, (7 * MIN, 42 * MIN), (10 * MIN, 40 * MIN, IDLE)),
        ("before the window", SESSION, True, (51 * MIN, 90 * MIN), None),
        ("after the window", SESSION, True, (-90 * MIN, -MIN), None),
        # logged in before the window and active again after it: listed, nothing measured
        ("no activity inside", SESSION, True, (15 * MIN, 35 * MIN), (15 * MIN, 15 * MIN, 0)),
        ("touches start bound", SESSION, True, (50 * MIN, None), (50 * MIN, 50 * MIN, 0)),
        ("touches end bound", SESSION, True, (None, 0), (0, 0, 0)),
        ("open, unclipped", SESSION, False, (None, None), (0, 50 * MIN, IDLE)),
        ("open, end inside", SESSION, False, (None, 42 * MIN), (0, 40 * MIN, IDLE)),
        ("open, end after", SESSION, False, (None, 5 * 60 * MIN), (0, 50 * MIN, IDLE)),
        ("open, start after", SESSION, False, (51 * MIN, None), None),
    ],
)
def test_desktop_clipping(
    case: str,
    offsets: list[float],
    logout: bool,
    window: tuple[float | None, float | None],
    expected: tuple[float, float, int] | None,
) -> None:
    lo, hi = window
    s = desktop_session(
        desktop_events(offsets, logout=logout),
        start=at(lo) if lo is not None else None,
        end=at(hi) if hi is not None else None,
    )
    if expected is None:
        assert s is None, case
        return
    assert s is not None, case
    start, end, idle = expected
    assert (s.start, s.end, s.idle_ms) == (at(start), at(end), idle), case
    assert s.productive_ms == ms(s.end - s.start) - idle
    assert s.login == at(0)
    assert s.logout == (at(50 * MIN) if logout else None)


def test_desktop_default_idle_timeout_is_15_minutes_and_whole_gap_counts() -> None:
    assert timedelta(minutes=15) == DEFAULT_IDLE_TIMEOUT
    exactly = desktop_session(desktop_events([0, 15 * MIN]))
    over = desktop_session(desktop_events([0, 15 * MIN + 1]))
    assert exactly is not None and over is not None
    assert exactly.idle_ms == 0 and exactly.productive_ms == 15 * 60_000
    assert over.idle_ms == over.duration_ms == 15 * 60_000 + 1000
    assert over.productive_ms == 0


def test_desktop_identity_is_from_the_last_event_that_names_a_user() -> None:
    events = desktop_events([0, 60, 120])
    events[1] = desktop_event("activity", at(60), 1, user_name="bob", client_name="ws-02")
    events[2] = desktop_event("logout", at(120), 2, user_name="", client_name="")
    s = desktop_session(events)
    assert s is not None
    assert (s.user_name, s.client_name) == ("bob", "ws-02")


def test_desktop_without_events_is_none() -> None:
    assert desktop_session([]) is None


# --------------------------------------------------------------------------------------------
# desktop and channel: known discrepancies


def test_desktop_durations_are_exact_in_ms() -> None:
    # Float arithmetic (int(total_seconds() * 1000)) turns this 2048006 ms span into 2048005
    # while both idle gaps sum to 2048006, i.e. -1 ms of productive time.
    events = [
        desktop_event("login", T0, 0),
        desktop_event("activity", T0 + 900_001 * MS, 1),
        desktop_event("logout", T0 + 2_048_006 * MS, 2),
    ]
    s = desktop_session(events)
    assert s is not None
    assert (s.duration_ms, s.idle_ms, s.productive_ms) == (2_048_006, 2_048_006, 0)


def test_desktop_unclipped_span_covers_every_activity_point() -> None:
    # Login and logout are activity points like any other: a stray event outside them
    # stretches the measured span (docs/metrics.md), while login/logout stay as reported.
    events = [
        desktop_event("activity", at(-60), 0),
        desktop_event("login", at(0), 1),
        desktop_event("activity", at(60), 2),
        desktop_event("logout", at(120), 3),
        desktop_event("activity", at(180), 4),
    ]
    s = desktop_session(events)
    assert s is not None
    assert (s.start, s.end) == (at(-60), at(180))
    assert (s.login, s.logout) == (at(0), at(120))


def test_channel_duration_is_exact_in_ms() -> None:
    events = [
        channel_event("PUBLISH_START", T0, 0),
        channel_event("PUBLISH_END", T0 + 2_048_006 * MS, 1),
    ]
    (s,) = channel_sessions(events)
    assert s.duration_ms(T0) == 2_048_006


# --------------------------------------------------------------------------------------------
# channel

CHANNEL_TYPES = [
    "PUBLISH_START",
    "PUBLISH_END",
    "ONAIR_START",
    "ONAIR_END",
    "STREAM_RESERVE",
    "THUMBNAIL_CREATE",
]
channel_strategy = st.lists(
    st.tuples(
        st.integers(0, 500),
        st.sampled_from(CHANNEL_TYPES),
        st.sampled_from(["INFO", "INFO", "ERROR"]),
    ),
    max_size=40,
)


@PROPS
@given(channel_strategy)
def test_channel_periods(spec: list[tuple[int, str, str]]) -> None:
    events = [channel_event(t, at(off), i, level) for i, (off, t, level) in enumerate(spec)]
    sessions = channel_sessions(events)

    # one period per PUBLISH_START (a restart opens a new one), but a start sent again in the
    # millisecond its open period began is the same start
    starts = [s for s in sessions for e in s.events if e.type == "PUBLISH_START"]
    assert len(starts) == sum(1 for e in events if e.type == "PUBLISH_START")
    assert len({s.key for s in sessions}) == len(sessions)  # every key names one period
    # ordered, never overlapping; only the last one may still be live
    for a, b in itertools.pairwise(sessions):
        assert a.end is not None
        assert a.start <= a.end <= b.start
    for s in sessions:
        check_channel_period(s)

    # every event is in exactly one period or none
    owners: dict[str, list[ChannelSession]] = defaultdict(list)
    for s in sessions:
        for e in s.events:
            owners[e.id].append(s)
    assert all(len(v) == 1 for v in owners.values())
    assert set(owners) <= {e.id for e in events}
    for e in events:
        for s in sessions:
            strictly_inside = s.start < e.time and (s.end is None or e.time < s.end)
            if strictly_inside:
                assert owners[e.id] == [s]


def check_channel_period(s: ChannelSession) -> None:
    assert s.events[0].type == "PUBLISH_START" and s.events[0].time == s.start
    assert s.live == (s.end is None)
    assert all(e.time == s.start for e in s.events if e.type == "PUBLISH_START")
    for e in s.events:
        assert s.start <= e.time and (s.end is None or e.time <= s.end)
    assert s.errors == tuple(e for e in s.events if e.attrs["level"] == "ERROR")
    previous = s.start
    for r in s.recordings:
        assert previous <= r.start
        if r.end is None:
            assert s.end is None and r is s.recordings[-1]
        else:
            assert r.start <= r.end
            assert s.end is None or r.end <= s.end
            previous = r.end
    assert len(s.recordings) <= sum(1 for e in s.events if e.type == "ONAIR_START")
    base = f"ls-1@{ms(s.start - datetime(1970, 1, 1, tzinfo=UTC))}"
    assert s.key == (base if s.seq == 1 else f"{base}~{s.seq}")


def test_channel_example() -> None:
    names = [
        (0, "STREAM_RESERVE"),  # before any publish: in no period
        (10, "PUBLISH_START"),
        (20, "ONAIR_START"),
        (30, "ONAIR_END"),
        (40, "ONAIR_START"),
        (50, "PUBLISH_START"),  # restart: closes the first period (and its recording) at 50
        (60, "PUBLISH_END"),
        (70, "THUMBNAIL_CREATE"),  # after the end: in no period
        (80, "PUBLISH_START"),  # still live
        (90, "ONAIR_START"),
    ]
    events = [channel_event(t, at(off), i) for i, (off, t) in enumerate(names)]
    events.append(channel_event("PUBLISH_OVER_THRESHOLD", at(55), 99, level="ERROR"))
    first, second, third = channel_sessions(events)
    assert (first.start, first.end) == (at(10), at(50))
    assert [(r.start, r.end) for r in first.recordings] == [(at(20), at(30)), (at(40), at(50))]
    assert (second.start, second.end, second.recordings) == (at(50), at(60), ())
    assert [e.type for e in second.errors] == ["PUBLISH_OVER_THRESHOLD"]
    assert (third.start, third.end, third.live) == (at(80), None, True)
    assert [(r.start, r.end) for r in third.recordings] == [(at(90), None)]
    assert third.duration_ms(at(100)) == 20_000
    assert first.duration_ms(at(100)) == 40_000
    assigned = {e.id for s in (first, second, third) for e in s.events}
    assert {"c0000", "c0007"}.isdisjoint(assigned)


# --------------------------------------------------------------------------------------------
# player

PLAYER_TYPES = [
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
]
player_strategy = st.lists(
    st.tuples(st.sampled_from(PLAYER_TYPES), st.none() | st.integers(0, 10**7)), max_size=40
)


@PROPS
@given(player_strategy)
def test_player_metrics(spec: list[tuple[str, int | None]]) -> None:
    events = [player_event(t, d, i) for i, (t, d) in enumerate(spec)]
    durations: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for t, d in spec:
        durations[t] += d or 0
        counts[t] += 1
    m = player_metrics(events)
    assert m == player_metrics_from_sums(durations, counts)
    assert m.player_start_ms == durations["player_start"]
    assert m.video_start_ms == durations["startup"]
    assert m.total_start_ms == m.player_start_ms + m.video_start_ms
    assert m.rebuffering_ms == durations["rebuffering"]
    assert m.playing_ms == durations["playing"]
    assert m.errors == counts["error"]
    assert m.is_error == (counts["error"] > 0)
    assert 0.0 <= m.rebuffer_ratio <= 1.0
    watched = m.rebuffering_ms + m.playing_ms
    assert m.rebuffer_ratio == (m.rebuffering_ms / watched if watched else 0.0)


def test_player_metrics_example() -> None:
    spec = [
        ("player_start", 400),
        ("startup", 2000),
        ("playing", 30_057),
        ("rebuffering", 195),
        ("playing", 214_567),
        ("paused", 5000),
        ("error", None),
    ]
    m = player_metrics([player_event(t, d, i) for i, (t, d) in enumerate(spec)])
    assert (m.player_start_ms, m.video_start_ms, m.total_start_ms) == (400, 2000, 2400)
    assert (m.rebuffering_ms, m.playing_ms, m.errors, m.is_error) == (195, 244_624, 1, True)
    assert m.rebuffer_ratio == 195 / (195 + 244_624)
    assert player_metrics([]).rebuffer_ratio == 0.0


# --------------------------------------------------------------------------------------------
# endpoint


@pytest.mark.parametrize(
    ("on_load", "code", "threshold", "score"),
    [
        (0, 200, 2000, 1.0),
        (2000, 200, 2000, 1.0),  # exactly T
        (2001, 200, 2000, 0.5),  # just over T
        (8000, 200, 2000, 0.5),  # exactly 4T
        (8001, 200, 2000, 0.0),  # over 4T
        (100, 399, 2000, 1.0),
        (100, 400, 2000, 0.0),  # HTTP error
        (100, 404, 2000, 0.0),
        (100, 500, 2000, 0.0),
        (100, 301, 2000, 1.0),
        (None, 200, 2000, 0.0),  # no onLoad
        (500, 200, 500, 1.0),
        (501, 200, 500, 0.5),
        (2000, 200, 500, 0.5),
        (2001, 200, 500, 0.0),
    ],
)
def test_page_score(on_load: int | None, code: int, threshold: int, score: float) -> None:
    assert page_score(on_load, code, threshold) == score


pages_strategy = st.lists(
    st.tuples(
        st.sampled_from(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"]),
        st.integers(0, 600),
        st.integers(0, 50_000),
        st.sampled_from([200, 200, 200, 301, 399, 400, 404, 500]),
    ),
    min_size=1,
    max_size=30,
)


@PROPS
@given(pages_strategy, st.integers(1, 10_000))
def test_endpoint_experience_score(spec: list[tuple[str, int, int, int]], threshold: int) -> None:
    events = [
        page_event(pid, at(off), i, on_load=load, code=code)
        for i, (pid, off, load, code) in enumerate(spec)
    ]
    s = endpoint_session(events, threshold_ms=threshold)
    assert s is not None
    score = s.experience_score
    assert 0.0 <= score <= 1.0
    assert round(score, 2) == score
    # one page per page_id: the earliest event of that page_id (ties by event id)
    first: dict[str, Event] = {}
    for e in sorted(events, key=lambda e: (e.time, e.id)):
        first.setdefault(e.attrs["page_id"], e)
    assert [p.page_id for p in s.pages] == list(first)
    assert s.number_of_pages == len(first)
    scores = [
        page_score(e.attrs["on_load_ms"], e.attrs["response_code"], threshold)
        for e in first.values()
    ]
    assert [p.score for p in s.pages] == scores
    # the mean rounded half up to 2 decimals, computed exactly
    mean = Fraction(sum(Fraction(x) for x in scores), len(scores))
    assert score == float(math.floor(mean * 100 + Fraction(1, 2)) / Fraction(100))
    assert s.date == min(e.time for e in events) == s.pages[0].time
    assert s.last == max(e.time for e in events)


def test_endpoint_example() -> None:
    events = [
        page_event("p1", at(0), 0, on_load=1500),  # 1
        page_event("p2", at(10), 1, on_load=3000),  # 0.5
        page_event("p3", at(20), 2, on_load=9000, org_name="ACME"),  # 0
        page_event("p1", at(30), 3, on_load=99_999),  # same page again: ignored
    ]
    s = endpoint_session(events)
    assert s is not None
    assert DEFAULT_APDEX_THRESHOLD_MS == 2000
    assert s.number_of_pages == 3
    assert s.experience_score == 0.5
    assert (s.date, s.last, s.org_name) == (at(0), at(30), "ACME")
    assert endpoint_session(events, threshold_ms=3000).experience_score == 0.83
    assert endpoint_session([]) is None


@pytest.mark.parametrize(
    ("good", "tolerating", "pages", "score"),
    [
        (1, 0, 8, 0.13),  # 0.125: half up, where Python's round() gives 0.12 (half to even)
        (0, 5, 8, 0.31),  # 0.3125
        (5, 0, 8, 0.63),  # 0.625: round() gives 0.62
        (2, 1, 4, 0.63),  # 0.625 again
        (3, 0, 8, 0.38),  # 0.375
        (1, 0, 3, 0.33),
        (2, 0, 3, 0.67),
        (0, 0, 2, 0.0),
        (2, 0, 2, 1.0),
    ],
)
def test_endpoint_score_rounds_half_up(
    good: int, tolerating: int, pages: int, score: float
) -> None:
    loads = [0] * good + [5000] * tolerating + [99_999] * (pages - good - tolerating)
    events = [page_event(f"p{i}", at(i), i, on_load=load) for i, load in enumerate(loads)]
    s = endpoint_session(events)
    assert s is not None
    assert s.experience_score == score


def test_a_start_sent_twice_in_one_millisecond_is_one_period() -> None:
    t = at(0)
    starts = [channel_event("PUBLISH_START", t, i) for i in range(3)]
    (period,) = channel_sessions(starts)
    assert period.live and period.key == f"ls-1@{int(t.timestamp() * 1000)}"


def test_periods_begun_in_one_millisecond_have_distinct_keys() -> None:
    t = at(0)
    events = [
        channel_event("PUBLISH_START", t, 0),
        channel_event("PUBLISH_END", t, 1),
        channel_event("PUBLISH_START", t, 2),
    ]
    first, second = channel_sessions(events)
    assert (first.live, second.live) == (False, True)
    assert first.key.endswith(str(int(t.timestamp() * 1000)))
    assert second.key == f"{first.key}~2"
