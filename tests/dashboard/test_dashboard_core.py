"""The core aggregates the dashboard reads: range totals, breakdowns, current viewers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import Tenant
from tests.factories import BASE, channel, desktop, endpoint, minutes, player

from sessionscope.dashboard import format as fmt
from sessionscope.domain.events import validate_batch
from sessionscope.service import SessionService
from sessionscope.store.clickhouse import ClickHouseStore

OTHER_USER = "11111111-2222-4333-8444-555555555555"
LO, HI = BASE - timedelta(hours=1), BASE + timedelta(hours=3)


def load(store: ClickHouseStore, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    valid, problems = validate_batch(events, now=datetime.now(UTC))
    assert not problems, problems
    store.insert_events(tenant.project.id, valid)


def test_player_totals_are_over_the_whole_range(store: ClickHouseStore, tenant: Tenant) -> None:
    # Two sessions by two users, a 5-minute series would split them into two buckets.
    load(
        store,
        tenant,
        [
            player("startup", session="a", duration_ms=300),
            player("playing", at=BASE + minutes(1), session="a", duration_ms=60_000),
            player("rebuffering", at=BASE + minutes(2), session="a", duration_ms=20_000),
            player("startup", at=BASE + minutes(7), session="b", user=OTHER_USER, duration_ms=900),
            player("error", at=BASE + minutes(8), session="b", user=OTHER_USER),
        ],
    )
    svc = SessionService(store)
    totals = svc.totals(tenant.project, "player", LO, HI)
    assert totals["sessions"] == 2
    assert totals["viewers"] == 2
    assert totals["playing_time"] == 60_000
    assert totals["rebuffer_ratio"] == 0.25
    assert totals["error_rate"] == 0.5
    assert totals["startup_p95"] == 900
    # Only what happened inside the range counts.
    assert svc.totals(tenant.project, "player", BASE + minutes(5), HI)["viewers"] == 1
    assert svc.current_viewers(tenant.project, BASE + minutes(9)) == 1
    assert svc.current_viewers(tenant.project, BASE + minutes(30)) == 0
    assert svc.event_kinds(tenant.project) == ["player"]


def test_desktop_breakdown_per_user_and_hour(store: ClickHouseStore, tenant: Tenant) -> None:
    load(
        store,
        tenant,
        [
            desktop("login", at=BASE, session=1),
            desktop("activity", at=BASE + minutes(5), session=1),
            desktop("activity", at=BASE + minutes(40), session=1),  # 35 min gap: idle
            desktop("login", at=BASE, session=2, user_id=8, user_name="bob"),
            desktop("activity", at=BASE + minutes(90), session=2, user_id=8, user_name="bob"),
        ],
    )
    svc = SessionService(store)
    breakdown = svc.desktop_breakdown(tenant.project, LO, HI)
    users = breakdown["user"]
    assert [(u["user"], u["user_name"], u["productive_ms"], u["idle_ms"]) for u in users] == [
        (7, "alice", 5 * 60_000, 35 * 60_000),
        (8, "bob", 0, 90 * 60_000),
    ]
    hours = breakdown["hour"]
    assert [(h["hour"], h["active_users"], h["idle_ms"]) for h in hours] == [
        (9, 2, 35 * 60_000),
        (10, 1, 90 * 60_000),
    ]
    totals = svc.totals(tenant.project, "desktop", LO, HI)
    assert totals == {
        "active_users": 2,
        "idle_time": 125 * 60_000,
        "productive_time": 5 * 60_000,
    }
    # The overview's single query says the same as the three reads.
    for step in (timedelta(minutes=5), timedelta(hours=1)):
        series, with_totals = svc.timeseries_with_totals(tenant.project, "desktop", LO, HI, step)
        assert with_totals == totals
        assert svc.desktop_overview(tenant.project, LO, HI, step) == (series, totals, breakdown)


def test_endpoint_sites_and_slowest_pages(store: ClickHouseStore, tenant: Tenant) -> None:
    load(
        store,
        tenant,
        [
            endpoint(session="e1", page_id="p1", on_load_ms=500),
            endpoint(
                at=BASE + minutes(1), session="e1", page_id="p2", on_load_ms=9000, title="Slow"
            ),
            endpoint(session="e2", page_id="p1", visited_site="other.com", on_load_ms=3000),
        ],
    )
    svc = SessionService(store)
    sites = svc.endpoint_sites(tenant.project, LO, HI)
    # example.com: one session of pages scored 1 and 0; other.com: one page scored 0.5.
    assert sites == [
        {"site": "example.com", "sessions": 1, "pages": 2, "experience_score": 0.5},
        {"site": "other.com", "sessions": 1, "pages": 1, "experience_score": 0.5},
    ]
    slow = svc.slowest_pages(tenant.project, LO, HI, limit=2)
    assert [(p["site"], p["title"], p["on_load_p50_ms"], p["slowest_session"]) for p in slow] == [
        ("example.com", "Slow", 9000, "e1"),
        ("other.com", "Home", 3000, "e2"),
    ]
    totals = svc.totals(tenant.project, "endpoint", LO, HI)
    assert (totals["sessions"], totals["pages"], totals["experience_score"]) == (2, 3, 0.5)
    # The overview's single query says the same as the separate reads.
    for step in (timedelta(minutes=5), timedelta(hours=1)):
        series, with_totals = svc.timeseries_with_totals(tenant.project, "endpoint", LO, HI, step)
        assert with_totals == totals
        assert svc.endpoint_overview(tenant.project, LO, HI, step, slowest=2) == (
            series,
            totals,
            sites,
            slow,
        )
        assert svc.endpoint_overview(tenant.project, LO, HI, step, slowest=1)[3] == slow[:1]


def test_channel_totals_and_users(store: ClickHouseStore, tenant: Tenant) -> None:
    load(
        store,
        tenant,
        [
            channel("PUBLISH_START"),
            channel("PUBLISH_OVER_THRESHOLD", at=BASE + minutes(3), level="ERROR"),
            channel("PUBLISH_END", at=BASE + minutes(30)),
        ],
    )
    totals = SessionService(store).totals(tenant.project, "channel", LO, HI)
    assert totals == {"events": 3, "errors": 1}
    store.create_user("Dash@Example.com", [tenant.project.id])
    user = store.get_user("dash@example.com")
    assert user is not None and user.project_ids == (tenant.project.id,)
    assert store.get_user("nobody@example.com") is None


def test_series_with_totals_match_the_buckets(store: ClickHouseStore, tenant: Tenant) -> None:
    load(
        store,
        tenant,
        [
            player("startup", session="a", duration_ms=300),
            player("playing", at=BASE + minutes(1), session="a", duration_ms=60_000),
            player("startup", at=BASE + minutes(7), session="b", user=OTHER_USER, duration_ms=900),
            endpoint(session="e1", page_id="p1", on_load_ms=500),
            endpoint(at=BASE + minutes(9), session="e2", page_id="p1", on_load_ms=9000),
        ],
    )
    svc = SessionService(store)
    step = timedelta(minutes=5)
    for kind in ("player", "endpoint", "desktop", "channel"):
        points, totals = svc.timeseries_with_totals(tenant.project, kind, LO, HI, step)
        assert points == svc.timeseries(tenant.project, kind, LO, HI, step)
        assert totals == svc.totals(tenant.project, kind, LO, HI)
    # Nothing in the range: zeros, never NaN.
    empty = BASE + timedelta(days=30)
    for kind in ("player", "endpoint", "desktop", "channel"):
        _, totals = svc.timeseries_with_totals(tenant.project, kind, empty, empty + step, step)
        assert all(v == 0 for v in totals.values()), (kind, totals)


@settings(max_examples=300)
@given(st.datetimes(datetime(1970, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC)))
def test_bucket_names_are_the_strftime_ones(t: datetime) -> None:
    # The labels are written by hand for speed; they must say what strftime would (over the
    # instants the core accepts: four-digit years).
    five = timedelta(minutes=5)
    assert fmt.bucket_label(t, five) == t.strftime("%H:%M")
    assert fmt.bucket_title(t, five) == t.strftime("%Y-%m-%d %H:%M UTC")
    assert fmt.bucket_label(t, timedelta(days=1)) == t.strftime("%b %d")


def test_channel_activity_reads_the_window_once_and_agrees_with_the_core(
    store: ClickHouseStore, tenant: Tenant
) -> None:
    # One period open since before the window, one inside it, ERROR events in and out.
    load(
        store,
        tenant,
        [
            channel("PUBLISH_START", at=LO - timedelta(hours=2), channel="early"),
            channel("STREAM_ERROR", at=LO - minutes(5), channel="early", level="ERROR"),
            channel("STREAM_ERROR", at=BASE, channel="early", level="ERROR"),
            channel("PUBLISH_END", at=BASE + minutes(10), channel="early"),
            channel("PUBLISH_START", at=BASE + minutes(20), channel="late"),
            channel("RECORD_START", at=BASE + minutes(21), channel="late"),
            channel("STREAM_ERROR", at=BASE + minutes(22), channel="late", level="ERROR"),
        ],
    )
    svc = SessionService(store)
    activity = svc.channel_activity(tenant.project, LO, HI)
    assert activity.periods == svc.channel_sessions(tenant.project, start=LO, end=HI)
    assert [p.channel for p in activity.periods] == ["early", "late"]
    totals = svc.totals(tenant.project, "channel", LO, HI)
    errors = [e for e in activity.events if e.attrs.get("level") == "ERROR"]
    assert (len(activity.events), len(errors)) == (totals["events"], totals["errors"]) == (5, 2)
    assert [c["channel"] for c in activity.channels] == ["early", "late"]


def test_channel_activity_agrees_with_the_core_for_periods_opened_long_before(
    store: ClickHouseStore, tenant: Tenant
) -> None:
    # The window's read reaches a day back: periods begun earlier, and edges exactly at the
    # window's start, are found as the core's own reads find them.
    day = timedelta(days=1)
    load(
        store,
        tenant,
        [
            # Live since three days before the window, then off and on again inside it.
            channel("PUBLISH_START", at=LO - 3 * day, channel="long"),
            channel("STREAM_ERROR", at=LO - 2 * day, channel="long", level="ERROR"),
            channel("PUBLISH_END", at=LO + minutes(30), channel="long"),
            channel("PUBLISH_START", at=LO + minutes(40), channel="long"),
            # Begun hours before the window and still going.
            channel("PUBLISH_START", at=LO - timedelta(hours=5), channel="day"),
            channel("RECORD_START", at=LO - timedelta(hours=4), channel="day"),
            channel("PUBLISH_END", at=LO + minutes(50), channel="day"),
            channel("PUBLISH_START", at=LO + minutes(55), channel="day"),
            # Ended exactly at the window's start, and one begun exactly there.
            channel("PUBLISH_START", at=LO - timedelta(hours=1), channel="edge"),
            channel("PUBLISH_END", at=LO, channel="edge"),
            channel("PUBLISH_START", at=LO, channel="at"),
            channel("PUBLISH_END", at=LO + minutes(1), channel="at"),
            channel("PUBLISH_START", at=LO + minutes(2), channel="at"),
        ],
    )
    svc = SessionService(store)
    activity = svc.channel_activity(tenant.project, LO, HI)
    assert activity.periods == svc.channel_sessions(tenant.project, start=LO, end=HI)
    starts = {(p.channel, p.start) for p in activity.periods}
    assert {("long", LO - 3 * day), ("day", LO - timedelta(hours=5))} <= starts
    assert ("at", LO) in starts
    assert all(e.time >= LO for e in activity.events)
