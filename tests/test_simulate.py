"""The simulator: valid, deterministic, bounded, and realistic enough to demo and benchmark."""

from __future__ import annotations

import itertools
import re
import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionscope.domain.events import KINDS, Event, validate_batch
from sessionscope.domain.sessions import (
    DEFAULT_IDLE_TIMEOUT,
    channel_sessions,
    endpoint_session,
    idle_gaps,
    player_metrics,
)
from sessionscope.simulate import SimulationConfig, simulate, simulate_batches

# A Friday afternoon (UTC), with sub-millisecond noise to exercise the bounds.
END = datetime(2025, 10, 10, 15, 30, 12, 345678, tzinfo=UTC)
CONFIG = SimulationConfig(seed=7, start=END - timedelta(days=2), end=END, players=400)


@pytest.fixture(scope="module")
def raw() -> list[dict[str, Any]]:
    return list(simulate(CONFIG))


@pytest.fixture(scope="module")
def events(raw: list[dict[str, Any]]) -> list[Event]:
    valid, problems = validate_batch(raw, now=CONFIG.end)
    assert problems == []
    return valid


def by_session(events: list[Event], kind: str) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == kind:
            out[e.session].append(e)
    return out


# --------------------------------------------------------------------------------------------
# shape, bounds, determinism


def test_every_batch_validates() -> None:
    batches = list(simulate_batches(CONFIG, batch_size=1000))
    assert batches and all(0 < len(b) <= 1000 for b in batches)
    for batch in batches:
        _, problems = validate_batch(batch, now=CONFIG.end)
        assert problems == []


def test_batches_are_the_stream_in_order(raw: list[dict[str, Any]]) -> None:
    batches = list(simulate_batches(CONFIG, batch_size=777))
    assert all(len(b) == 777 for b in batches[:-1])
    assert list(itertools.chain.from_iterable(batches)) == raw
    with pytest.raises(ValueError):
        next(simulate_batches(CONFIG, batch_size=0))


def test_all_kinds_present(events: list[Event]) -> None:
    assert {e.kind for e in events} == set(KINDS)


def test_times_inside_span_and_rfc3339_millis(
    raw: list[dict[str, Any]], events: list[Event]
) -> None:
    pattern = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
    assert all(pattern.match(e["time"]) for e in raw)
    assert all(CONFIG.start <= e.time <= CONFIG.end for e in events)


def test_ids_explicit_and_unique(raw: list[dict[str, Any]]) -> None:
    ids = [e["id"] for e in raw]
    assert all(isinstance(i, str) and i.startswith("sim-7-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_grouped_by_session_and_ordered_in_time(events: list[Event]) -> None:
    finished: set[tuple[str, str]] = set()
    current: tuple[str, str] | None = None
    last: dict[tuple[str, str], datetime] = {}
    for e in events:
        key = (e.kind, e.session)
        if key != current:
            assert key not in finished, f"session {key} is split"
            if current is not None:
                finished.add(current)
            current = key
        assert e.time >= last.get(key, e.time)
        last[key] = e.time


def test_same_seed_same_events_other_seed_differs(raw: list[dict[str, Any]]) -> None:
    assert list(simulate(CONFIG)) == raw
    other = list(simulate(SimulationConfig(seed=8, start=CONFIG.start, end=CONFIG.end)))
    assert other != raw
    assert {e["id"] for e in other}.isdisjoint({e["id"] for e in raw})


def test_leaving_out_a_kind_does_not_change_the_others(raw: list[dict[str, Any]]) -> None:
    only = SimulationConfig(
        seed=7, start=CONFIG.start, end=CONFIG.end, players=400, kinds=("desktop", "channel")
    )
    got = list(simulate(only))
    expected = [e for e in raw if e["kind"] == "desktop"] + [
        e for e in raw if e["kind"] == "channel"
    ]
    assert got == expected


@pytest.mark.parametrize(
    "kw",
    [
        {"start": datetime(2025, 1, 1), "end": datetime(2025, 1, 2)},
        {"start": END, "end": END},
        {"start": END, "end": END - timedelta(hours=1)},
        {"start": END - timedelta(days=1), "end": END, "players": -1},
        {"start": END - timedelta(days=1), "end": END, "kinds": ("player", "video")},
        {"start": END - timedelta(days=1), "end": END, "kinds": ("player", "player")},
    ],
)
def test_bad_config_is_rejected(kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**kw)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    span_s=st.integers(min_value=1, max_value=4 * 86_400),
    players=st.integers(min_value=0, max_value=30),
    channels=st.integers(min_value=0, max_value=3),
    desktop_users=st.integers(min_value=0, max_value=3),
    endpoint_agents=st.integers(min_value=0, max_value=3),
)
def test_any_small_config_is_valid_and_bounded(
    seed: int, span_s: int, players: int, channels: int, desktop_users: int, endpoint_agents: int
) -> None:
    start = datetime(2025, 3, 14, 23, 59, 59, 999_500, tzinfo=UTC)
    end = start + timedelta(seconds=span_s)
    config = SimulationConfig(
        seed=seed,
        start=start,
        end=end,
        players=players,
        channels=channels,
        desktop_users=desktop_users,
        endpoint_agents=endpoint_agents,
    )
    raw = list(simulate(config))
    events, problems = validate_batch(raw, now=end)
    assert problems == []
    assert all(start <= e.time <= end for e in events)
    assert len({e.id for e in events}) == len(events)
    # Every desktop user and endpoint agent shows up, whatever the span.
    assert len({e.user for e in events if e.kind == "desktop"}) == desktop_users
    assert len({e.user for e in events if e.kind == "endpoint"}) == endpoint_agents
    assert len({e.session for e in events if e.kind == "channel"}) == channels


# --------------------------------------------------------------------------------------------
# realism per kind


def test_player_sessions_look_real(events: list[Event]) -> None:
    sessions = by_session(events, "player")
    assert 350 <= len(sessions) <= 400  # a few start too close to `end` to report anything
    users = {e.user for e in events if e.kind == "player"}
    assert 1 < len(users) < len(sessions)
    startups = [e.duration_ms or 0 for e in events if e.type == "startup"]
    assert 300 <= statistics.median(startups) <= 3000
    assert max(startups) > 3000  # a long tail
    metrics = [player_metrics(es) for es in sessions.values()]
    rebuffered = sum(m.rebuffering_ms > 0 for m in metrics) / len(metrics)
    errors = sum(m.is_error for m in metrics) / len(metrics)
    ended = sum(any(e.type == "ended" for e in es) for es in sessions.values()) / len(sessions)
    assert 0.05 <= rebuffered <= 0.3
    assert 0 < errors < 0.1
    assert ended > 0.7
    for es in sessions.values():
        assert es[0].type == "player_start"
        assert {"browser", "ip", "screen", "lang", "nation"} <= es[0].attrs.keys()
        assert es[0].attrs["os"] and es[0].attrs["device"] in ("PC", "Mobile")
        assert len({(e.user, e.attrs["video_type"], e.attrs["origin"]) for e in es}) == 1
    playing = [e.duration_ms or 0 for e in events if e.type == "playing"]
    assert max(playing) <= 60_200
    assert sum(59_900 <= d <= 60_200 for d in playing) > len(playing) / 2
    assert {"paused", "seeking"} <= {e.type for e in events if e.kind == "player"}


def test_video_time_advances_with_playback(events: list[Event]) -> None:
    for es in by_session(events, "player").values():
        vt = 0.0
        for e in es:
            if e.type == "playing":
                assert e.attrs["video_time"] >= vt
            vt = e.attrs["video_time"]


def test_a_channel_is_live_at_end_and_errors_occur(events: list[Event]) -> None:
    channels = by_session(events, "channel")
    assert len(channels) == 3
    periods = [p for es in channels.values() for p in channel_sessions(es)]
    assert any(p.live for p in periods)
    assert sum(not p.live for p in periods) >= 5
    assert any(p.recordings for p in periods)
    assert any(p.errors for p in periods)
    for cid, es in channels.items():
        assert re.match(r"^ls-\d{14}-[A-Za-z]{5}$", cid)
        assert es[0].type == "STREAM_RESERVE"
        assert all(e.attrs["description"] for e in es)
    ends = [e for es in channels.values() for e in es if e.type == "PUBLISH_END"]
    assert all(e.attrs["description"].endswith("channel publishing has ended.") for e in ends)


def test_desktop_sessions_have_idle_gaps_and_some_stay_open(events: list[Event]) -> None:
    sessions = by_session(events, "desktop")
    numbers = [int(s) for s in sessions]
    assert all(1 <= n <= 2_147_483_647 for n in numbers)
    users = {es[0].user for es in sessions.values()}
    assert len(users) == CONFIG.desktop_users
    with_gaps = [
        s for s, es in sessions.items() if idle_gaps([e.time for e in es], DEFAULT_IDLE_TIMEOUT)
    ]
    assert len(with_gaps) >= len(sessions) // 3
    open_sessions = [s for s, es in sessions.items() if es[-1].type != "logout"]
    assert open_sessions
    for es in sessions.values():
        assert es[0].type == "login"
        assert all(e.type == "activity" for e in es[1:-1])
        assert len({e.user for e in es}) == 1
    assert any("app" in e.attrs for e in events if e.kind == "desktop")


def test_endpoint_pages_are_consistent(events: list[Event]) -> None:
    sessions = by_session(events, "endpoint")
    assert len({es[0].user for es in sessions.values()}) == CONFIG.endpoint_agents
    loads: list[int] = []
    codes: list[int] = []
    for es in sessions.values():
        s = endpoint_session(es)
        assert s is not None
        assert 1 <= s.number_of_pages == len(es) <= 8
        assert (s.protocol, s.port) in (("https", 443), ("http", 80))
        for p in s.pages:
            assert re.match(r"^[A-Za-z0-9]{8}$", p.page_id)
            assert p.on_load_ms is not None and p.on_content_load_ms is not None
            assert p.on_load_ms >= p.on_content_load_ms
            loads.append(p.on_load_ms)
            codes.append(p.response_code)
        assert len({e.attrs["source_addr"] for e in es}) == 1
    assert 1000 <= statistics.median(loads) <= 2500
    assert max(loads) > 8000
    assert codes.count(200) / len(codes) > 0.8
    assert any(c >= 400 for c in codes)


def test_long_span_scales_per_day() -> None:
    end = datetime(2025, 10, 31, 18, 0, tzinfo=UTC)
    config = SimulationConfig(
        seed=3,
        start=end - timedelta(days=30),
        end=end,
        players=0,
        channels=0,
        desktop_users=3,
        endpoint_agents=2,
    )
    events, problems = validate_batch(list(simulate(config)), now=end)
    assert problems == []
    desktop = by_session(events, "desktop")
    assert 3 * 17 <= len(desktop) <= 3 * 23  # one per working day (~21 in 30 days), some off
    endpoint = by_session(events, "endpoint")
    assert 2 * 30 * 5 <= len(endpoint) <= 2 * 30 * 15
