"""Desktop session measurement: clipping, idle and productive time, split per hour (pure core)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope.domain.events import Event
from sessionscope.domain.sessions import (
    DesktopSession,
    Period,
    activity_by_user,
    desktop_session,
    merge_periods,
    productive_periods,
    split_by_step,
)
from sessionscope.domain.timerange import floor_time

T0 = datetime(2025, 10, 10, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MS = timedelta(milliseconds=1)


def ev(kind: str, at: datetime, session: int = 1, user: int = 7, name: str = "alice") -> Event:
    return Event(
        id=f"{session}-{kind}-{at.isoformat()}",
        kind="desktop",
        time=at,
        type=kind,
        session=str(session),
        user=str(user),
        attrs={"user_name": name, "client_guid": "g", "client_name": "c"},
    )


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def session_of(
    offsets_min: list[float], *, session: int = 1, user: int = 7, name: str = "alice"
) -> list[Event]:
    """A login, activity at each offset, and a logout at the last one."""
    times = [T0 + minutes(m) for m in offsets_min]
    kinds = ["login"] + ["activity"] * (len(times) - 2) + ["logout"]
    return [ev(k, t, session, user, name) for k, t in zip(kinds, times, strict=True)]


def test_duration_is_exact_to_the_millisecond() -> None:
    # 1.005 s as float seconds * 1000 is 1004.999...; durations must not lose that millisecond.
    events = [ev("login", T0), ev("logout", T0 + timedelta(milliseconds=1005))]
    s = desktop_session(events)
    assert s is not None and s.duration_ms == 1005 and s.productive_ms == 1005


def test_gap_equal_to_the_timeout_is_productive() -> None:
    s = desktop_session(session_of([0, 15, 31, 32]), idle_timeout=minutes(15))
    assert s is not None
    assert (s.duration_ms, s.idle_ms, s.productive_ms) == (32 * 60_000, 16 * 60_000, 16 * 60_000)


def test_productive_periods_are_the_span_minus_the_gaps() -> None:
    s = desktop_session(session_of([0, 5, 25, 30, 60]), idle_timeout=minutes(15))
    assert s is not None
    assert productive_periods(s) == (
        Period(T0, T0 + minutes(5)),
        Period(T0 + minutes(25), T0 + minutes(30)),
    )
    assert s.productive_ms == 10 * 60_000


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        ([], {}),
        ([Period(T0, T0)], {}),
        ([Period(T0, None)], {}),
        ([Period(T0 + minutes(50), T0 + minutes(70))], {T0: 600_000, T0 + HOUR: 600_000}),
        (
            [Period(T0 - minutes(30), T0 + HOUR * 2 + minutes(1))],
            {T0 - HOUR: 1_800_000, T0: 3_600_000, T0 + HOUR: 3_600_000, T0 + 2 * HOUR: 60_000},
        ),
        (
            [Period(T0, T0 + minutes(1)), Period(T0 + minutes(2), T0 + minutes(3))],
            {T0: 120_000},
        ),
    ],
)
def test_split_by_step(periods: list[Period], expected: dict[datetime, int]) -> None:
    assert split_by_step(periods, HOUR) == expected


def test_activity_by_user_sums_sessions_per_user_and_hour() -> None:
    bob = session_of([50, 55, 70, 100, 105, 106], session=1, user=8, name="bob")
    bob2 = session_of([80, 81.5, 82.5], session=2, user=8, name="bob")
    alice = session_of([0, 10], session=3, user=7, name="alice")
    sessions = [desktop_session(e) for e in (bob, bob2, alice)]
    rows = activity_by_user([s for s in sessions if s is not None], HOUR)
    got = [(r.bucket, r.user_name, r.active_ms / 60_000) for r in rows]
    assert got == [
        (T0, "alice", 10),
        (T0, "bob", 10),
        (T0 + HOUR, "bob", 10 + 6 + 2.5),
    ]


def test_activity_by_user_merges_concurrent_sessions_of_a_user() -> None:
    # alice on two machines from 10:00 to 11:00, both active all along: 60 minutes, not 120
    # (nor 115 from adding up); bob, whose session overlaps hers, is counted on his own.
    one = session_of([0, 10, 20, 30, 40, 50, 60], session=1)
    two = session_of([0, 5, 15, 25, 35, 45, 55, 60], session=2)
    late = session_of([30, 70], session=3)  # overlaps the others, then 10 minutes past 11:00
    bob = session_of([30, 40], session=4, user=8, name="bob")
    sessions = [desktop_session(e, idle_timeout=minutes(45)) for e in (one, two, late, bob)]
    rows = activity_by_user([s for s in sessions if s is not None], HOUR)
    got = [(r.bucket, r.user_name, r.active_ms / 60_000) for r in rows]
    assert got == [(T0, "alice", 60), (T0, "bob", 10), (T0 + HOUR, "alice", 10)]


def test_merge_periods() -> None:
    p = [
        Period(T0 + minutes(30), T0 + minutes(40)),
        Period(T0, T0 + minutes(10)),
        Period(T0 + minutes(5), T0 + minutes(20)),
        Period(T0 + minutes(20), T0 + minutes(25)),  # touches the one before: merged
        Period(T0 + minutes(32), T0 + minutes(35)),  # inside another
        Period(T0 + minutes(50), None),  # open: skipped
    ]
    assert merge_periods(p) == (
        Period(T0, T0 + minutes(25)),
        Period(T0 + minutes(30), T0 + minutes(40)),
    )
    assert merge_periods([]) == ()


def test_activity_by_user_takes_the_latest_name() -> None:
    old = desktop_session(session_of([0, 5], session=1, user=9, name="old"))
    new = desktop_session(session_of([10, 12], session=2, user=9, name="new"))
    assert old is not None and new is not None
    rows = activity_by_user([new, old], HOUR)
    assert [(r.user_id, r.user_name, r.active_ms) for r in rows] == [(9, "new", 420_000)]


# ------------------------------------------------------------------------------ properties

offsets = st.lists(st.integers(min_value=0, max_value=3 * 86_400_000), min_size=1, max_size=12)
bound = st.none() | st.integers(min_value=-86_400_000, max_value=4 * 86_400_000)
timeouts = st.sampled_from([timedelta(minutes=1), timedelta(minutes=15), timedelta(hours=2)])


def build(points: list[int], open_: bool) -> list[Event]:
    times = sorted(T0 + p * MS for p in points)
    kinds = ["login"] + ["activity"] * (len(times) - 1)
    if not open_ and len(times) > 1:
        kinds[-1] = "logout"
    return [ev(k, t) for k, t in zip(kinds, times, strict=True)]


def check_figures(s: DesktopSession) -> None:
    assert s.duration_ms == s.idle_ms + s.productive_ms
    assert 0 <= s.idle_ms <= s.duration_ms
    assert s.duration_ms == (s.end - s.start) // MS


def brute_force(
    times: list[datetime], start: datetime | None, end: datetime | None, timeout: timedelta
) -> tuple[int, int, int]:
    """Duration, idle and productive ms, classifying each stretch of time on its own.

    The timeline is cut at every activity point and bound; a stretch counts when activity
    points inside the window lie on both sides of it, and is idle when the nearest of them on
    each side are more than ``timeout`` apart. Nothing here sums gaps or subtracts.
    """
    inside = [t for t in times if (start is None or t >= start) and (end is None or t <= end)]
    cuts = sorted({*times, *(b for b in (start, end) if b is not None)})
    idle = productive = 0
    for a, b in itertools.pairwise(cuts):
        mid = a + (b - a) / 2
        before = [t for t in inside if t <= mid]
        after = [t for t in inside if t >= mid]
        if not before or not after:
            continue
        if min(after) - max(before) > timeout:
            idle += (b - a) // MS
        else:
            productive += (b - a) // MS
    return idle + productive, idle, productive


@settings(max_examples=300, deadline=None)
@given(points=offsets, open_=st.booleans(), lo=bound, hi=bound, timeout=timeouts)
def test_clipping_never_lengthens_and_figures_add_up(
    points: list[int], open_: bool, lo: int | None, hi: int | None, timeout: timedelta
) -> None:
    events = build(points, open_)
    start = T0 + lo * MS if lo is not None else None
    end = T0 + hi * MS if hi is not None else None
    whole = desktop_session(events, idle_timeout=timeout)
    clipped = desktop_session(events, idle_timeout=timeout, start=start, end=end)
    assert whole is not None
    check_figures(whole)
    times = [e.time for e in events]
    assert (whole.duration_ms, whole.idle_ms, whole.productive_ms) == brute_force(
        times, None, None, timeout
    )
    inside = [
        e.time
        for e in events
        if (start is None or e.time >= start) and (end is None or e.time <= end)
    ]
    overlaps = (end is None or times[0] <= end) and (start is None or times[-1] >= start)
    overlaps = overlaps and (start is None or end is None or start <= end)
    if clipped is None:
        assert not overlaps
        return
    assert overlaps
    check_figures(clipped)
    # Every figure as the independent model has it (productive time too, not as a difference).
    assert (clipped.duration_ms, clipped.idle_ms, clipped.productive_ms) == brute_force(
        times, start, end, timeout
    )
    if inside:
        assert (clipped.start, clipped.end) == (inside[0], inside[-1])
    else:  # open throughout the window, no activity in it: listed, nothing measured
        assert (clipped.start, clipped.end, clipped.duration_ms) == (start, start, 0)
    assert clipped.duration_ms <= whole.duration_ms
    assert clipped.idle_ms <= whole.idle_ms
    assert clipped.productive_ms <= whole.productive_ms
    assert (clipped.login, clipped.logout) == (whole.login, whole.logout)
    buckets = split_by_step(productive_periods(clipped), HOUR)
    assert sum(buckets.values()) == clipped.productive_ms
    assert all(0 < v <= 3_600_000 for v in buckets.values())
    if start is not None:
        assert all(b >= start - HOUR for b in buckets)


def union_ms_per_hour(periods: list[Period]) -> dict[datetime, int]:
    """Milliseconds per hour covered by at least one period, by cutting at every end point."""
    ends = {t for p in periods if p.end is not None for t in (p.start, p.end)}
    hours = []
    if ends:
        hour = floor_time(min(ends), HOUR)
        while hour <= max(ends):
            hours.append(hour)
            hour += HOUR
    cuts = sorted({*ends, *hours})
    out: dict[datetime, int] = {}
    for a, b in itertools.pairwise(cuts):
        mid = a + (b - a) / 2
        if any(p.end is not None and p.start <= mid <= p.end for p in periods):
            hour = floor_time(a, HOUR)
            out[hour] = out.get(hour, 0) + (b - a) // MS
    return out


user_sessions = st.lists(
    st.tuples(st.sampled_from([7, 8]), offsets, st.booleans()), min_size=1, max_size=6
)


@settings(max_examples=200, deadline=None)
@given(spec=user_sessions, lo=bound, hi=bound, timeout=timeouts)
def test_activity_is_at_most_an_hour_per_user_hour(
    spec: list[tuple[int, list[int], bool]], lo: int | None, hi: int | None, timeout: timedelta
) -> None:
    start = T0 + lo * MS if lo is not None else None
    end = T0 + hi * MS if hi is not None else None
    sessions: list[DesktopSession] = []
    for sid, (user, points, open_) in enumerate(spec):
        events = [ev(e.type, e.time, sid, user, f"user-{user}") for e in build(points, open_)]
        s = desktop_session(events, idle_timeout=timeout, start=start, end=end)
        if s is not None:
            sessions.append(s)
    rows = activity_by_user(sessions, HOUR)
    got = {(r.user_id, r.bucket): r.active_ms for r in rows}
    assert all(0 < ms <= 3_600_000 for ms in got.values())
    for user in {s.user_id for s in sessions}:
        own = [s for s in sessions if s.user_id == user]
        periods = [p for s in own for p in productive_periods(s)]
        # The union of the user's productive time, hour by hour, measured independently.
        want = union_ms_per_hour(periods)
        assert {b: v for (u, b), v in got.items() if u == user} == {
            b: v for b, v in want.items() if v > 0
        }
        # Sessions that never overlap add up, exactly as each one alone.
        ordered = sorted(periods, key=lambda p: p.start)
        if all(a.end is not None and a.end < b.start for a, b in itertools.pairwise(ordered)):
            summed: dict[datetime, int] = {}
            for s in own:
                for bucket, v in split_by_step(productive_periods(s), HOUR).items():
                    summed[bucket] = summed.get(bucket, 0) + v
            assert {b: v for (u, b), v in got.items() if u == user} == summed
