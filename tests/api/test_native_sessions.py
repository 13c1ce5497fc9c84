"""GET /api/v1/sessions, /api/v1/sessions/{kind}/{session} and /api/v1/timeseries."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Tenant
from tests.factories import BASE, channel, desktop, endpoint, iso, minutes, player


def seed(http: httpx.Client, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.status_code == 200, r.text


def sessions(http: httpx.Client, tenant: Tenant, **params: Any) -> httpx.Response:
    return http.get("/api/v1/sessions", params=params, headers=tenant.auth)


def test_paging_yields_each_session_exactly_once(http: httpx.Client, tenant: Tenant) -> None:
    # 60 sessions, several sharing a start time, walked 7 at a time.
    events = [
        player("startup", at=BASE + minutes(i // 3), session=f"s{i:03d}", duration_ms=100)
        for i in range(60)
    ]
    seed(http, tenant, events)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"kind": "player", "limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = sessions(http, tenant, **params).json()
        seen += [s["session"] for s in body["sessions"]]
        cursor = body["next"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"s{i:03d}" for i in range(60))
    assert len(seen) == len(set(seen))
    starts = [e["time"] for e in sorted(events, key=lambda e: e["time"], reverse=True)]
    assert seen[0] in {e["session"] for e in events if e["time"] == starts[0]}


def test_player_metrics_and_filters(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            player("player_start", session="pc", duration_ms=5),
            player("startup", session="pc", duration_ms=352),
            player("playing", at=BASE + minutes(1), session="pc", duration_ms=30057),
            player("rebuffering", at=BASE + minutes(2), session="pc", duration_ms=195),
            player("startup", session="mob", device="Mobile", video_type="LIVE", duration_ms=900),
            player(
                "error", at=BASE + minutes(1), session="mob", device="Mobile", video_type="LIVE"
            ),
        ],
    )
    body = sessions(http, tenant, kind="player").json()
    by_id = {s["session"]: s for s in body["sessions"]}
    pc = by_id["pc"]
    assert (pc["player_start_ms"], pc["video_start_ms"], pc["total_start_ms"]) == (5, 352, 357)
    assert (pc["playing_ms"], pc["rebuffering_ms"], pc["is_error"]) == (30057, 195, False)
    assert pc["rebuffer_ratio"] == round(195 / (195 + 30057), 4)
    assert by_id["mob"]["is_error"] is True
    only = sessions(http, tenant, kind="player", device="Mobile").json()["sessions"]
    assert [s["session"] for s in only] == ["mob"]
    only = sessions(http, tenant, kind="player", video_type="VOD,LIVE").json()["sessions"]
    assert len(only) == 2
    assert sessions(http, tenant, kind="player", device="TV").json()["sessions"] == []


def test_time_range_selects_overlapping_sessions(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            player(at=BASE, session="early"),
            player(at=BASE + minutes(10), session="early"),
            player(at=BASE + minutes(60), session="late"),
        ],
    )
    got = sessions(
        http,
        tenant,
        kind="player",
        **{"from": iso(BASE + minutes(5)), "to": iso(BASE + minutes(30))},
    ).json()["sessions"]
    assert [s["session"] for s in got] == ["early"]
    got = sessions(http, tenant, kind="player", **{"from": iso(BASE + minutes(11))}).json()
    assert [s["session"] for s in got["sessions"]] == ["late"]


def test_desktop_sessions_idle_time_and_clip(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            desktop("login", at=BASE, session=10),
            desktop("activity", at=BASE + minutes(5), session=10),
            desktop("activity", at=BASE + minutes(45), session=10),  # 40 min idle gap
            desktop("logout", at=BASE + minutes(50), session=10),
            desktop("login", at=BASE, session=11, user_id=8),
        ],
    )
    got = {s["session"]: s for s in sessions(http, tenant, kind="desktop").json()["sessions"]}
    s10 = got[10]
    assert s10["duration_ms"] == 50 * 60_000
    assert s10["idle_ms"] == 40 * 60_000
    assert s10["productive_ms"] == 10 * 60_000
    assert s10["logout"] == iso(BASE + minutes(50))
    assert got[11]["logout"] is None
    only = sessions(http, tenant, kind="desktop", user_id=8).json()["sessions"]
    assert [s["session"] for s in only] == [11]
    clipped = sessions(
        http,
        tenant,
        kind="desktop",
        clip="true",
        user_id=7,
        **{"from": iso(BASE + minutes(1)), "to": iso(BASE + minutes(46))},
    ).json()["sessions"]
    assert clipped[0]["start"] == iso(BASE + minutes(5))
    assert clipped[0]["end"] == iso(BASE + minutes(45))
    assert clipped[0]["idle_ms"] == clipped[0]["duration_ms"] == 40 * 60_000


def test_endpoint_and_channel_sessions(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            endpoint(session="e1", page_id="a", on_load_ms=1000),
            endpoint(at=BASE + minutes(1), session="e1", page_id="b", on_load_ms=5000),
            endpoint(at=BASE + minutes(2), session="e1", page_id="c", response_code=500),
            endpoint(session="e2", visited_site="other.org", agent_id="agent-2"),
            channel("PUBLISH_START", at=BASE),
            channel("ONAIR_START", at=BASE + minutes(1)),
            channel("PUBLISH_OVER_THRESHOLD", at=BASE + minutes(2), level="ERROR"),
            channel("ONAIR_END", at=BASE + minutes(3)),
            channel("PUBLISH_END", at=BASE + minutes(4)),
            channel("PUBLISH_START", at=BASE + minutes(10)),
        ],
    )
    got = {s["session"]: s for s in sessions(http, tenant, kind="endpoint").json()["sessions"]}
    assert got["e1"]["pages"] == 3
    assert got["e1"]["experience_score"] == 0.5  # (1 + 0.5 + 0) / 3
    only = sessions(http, tenant, kind="endpoint", visited_site="other.org").json()["sessions"]
    assert [s["session"] for s in only] == ["e2"]
    only = sessions(http, tenant, kind="endpoint", agent_id="agent-2").json()["sessions"]
    assert [s["session"] for s in only] == ["e2"]
    periods = sessions(http, tenant, kind="channel", channel="ls-1").json()["sessions"]
    assert [p["live"] for p in periods] == [True, False]
    done = periods[1]
    assert done["duration_ms"] == 4 * 60_000
    assert done["recordings"] == [{"start": iso(BASE + minutes(1)), "end": iso(BASE + minutes(3))}]
    assert done["errors"] == 1
    detail = http.get(f"/api/v1/sessions/channel/{done['session']}", headers=tenant.auth).json()
    assert [e["type"] for e in detail["events"]] == [
        "PUBLISH_START",
        "ONAIR_START",
        "PUBLISH_OVER_THRESHOLD",
        "ONAIR_END",
        "PUBLISH_END",
    ]


def test_session_detail_orders_events(http: httpx.Client, tenant: Tenant) -> None:
    # Same timestamp: arrival order decides.
    seed(
        http,
        tenant,
        [
            player("player_start", session="o", duration_ms=5),
            player("startup", session="o", duration_ms=352),
            player("playing", at=BASE + minutes(1), session="o", duration_ms=60000),
            player("ended", at=BASE + minutes(1), session="o", duration_ms=0),
        ],
    )
    body = http.get("/api/v1/sessions/player/o", headers=tenant.auth).json()
    assert [e["type"] for e in body["events"]] == ["player_start", "startup", "playing", "ended"]
    assert body["total_start_ms"] == 357
    r = http.get("/api/v1/sessions/player/nope", headers=tenant.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_other_projects_see_nothing(http: httpx.Client, tenant: Tenant, new_project: Any) -> None:
    seed(http, tenant, [player(session="mine"), desktop(session=77), endpoint(session="mine")])
    other: Tenant = new_project()
    for kind in ("player", "desktop", "endpoint", "channel"):
        assert sessions(http, other, kind=kind).json()["sessions"] == []
    assert http.get("/api/v1/sessions/player/mine", headers=other.auth).status_code == 404
    assert http.get("/api/v1/sessions/desktop/77", headers=other.auth).status_code == 404


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"kind": "robot"}, "kind"),
        ({}, "kind"),
        ({"kind": "player", "limit": 0}, "limit"),
        ({"kind": "player", "limit": 5000}, "limit"),
        ({"kind": "player", "from": "soon"}, "from"),
        ({"kind": "player", "from": "2025-10-10", "to": "2025-10-09"}, "to"),
        ({"kind": "player", "cursor": "garbage!"}, "cursor"),
        ({"kind": "player", "cursor": "WzFlMzAwLCJ4Il0"}, "cursor"),  # [1e300,"x"]
        ({"kind": "player", "cursor": "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OSwieCJd"}, "cursor"),
        ({"kind": "player", "cursor": "WzEsMl0"}, "cursor"),  # [1,2]
        ({"kind": "player", "channel": "x"}, "channel"),
        ({"kind": "desktop", "device": "PC"}, "device"),
    ],
)
def test_bad_parameters_are_400(
    http: httpx.Client, tenant: Tenant, params: dict[str, Any], needle: str
) -> None:
    r = sessions(http, tenant, **params)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_timeseries(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            player("startup", session="t1", duration_ms=1000),
            player("playing", at=BASE + minutes(2), session="t1", duration_ms=60000),
            player("rebuffering", at=BASE + minutes(3), session="t1", duration_ms=20000),
            player("startup", at=BASE + minutes(61), session="t2", duration_ms=3000),
            player(
                "error",
                at=BASE + minutes(62),
                session="t2",
                user="11111111-2222-3333-4444-555555555555",
            ),
        ],
    )
    body = http.get(
        "/api/v1/timeseries",
        params={
            "kind": "player",
            "from": iso(BASE),
            "to": iso(BASE + minutes(119)),
            "interval": "1h",
        },
        headers=tenant.auth,
    ).json()
    assert body["interval_s"] == 3600
    first, second = body["points"]
    assert first["time"] == iso(BASE)
    assert (first["sessions"], first["viewers"], first["playing_time"]) == (1, 1, 60000)
    assert first["rebuffer_ratio"] == 0.25
    assert (first["startup_p50"], first["error_rate"]) == (1000, 0)
    assert (second["sessions"], second["startup_p50"], second["error_rate"]) == (1, 3000, 1)
    one = http.get(
        "/api/v1/timeseries",
        params={"kind": "player", "metric": "viewers", "from": iso(BASE), "to": iso(BASE)},
        headers=tenant.auth,
    ).json()
    assert one["interval_s"] == 300  # auto: 5-minute points up to a day
    assert set(one["points"][0]) == {"time", "viewers"}


def test_timeseries_desktop_and_endpoint(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            desktop("login", at=BASE, session=5),
            desktop("activity", at=BASE + minutes(10), session=5),
            desktop("activity", at=BASE + minutes(40), session=5),
            endpoint(session="x", page_id="a", on_load_ms=100),
            endpoint(session="x", page_id="b", on_load_ms=100000),
        ],
    )
    params = {"from": iso(BASE), "to": iso(BASE + minutes(59)), "interval": "1h"}
    d = http.get(
        "/api/v1/timeseries", params={"kind": "desktop", **params}, headers=tenant.auth
    ).json()
    assert d["points"][0]["idle_time"] == 30 * 60_000
    assert d["points"][0]["productive_time"] == 10 * 60_000
    assert d["points"][0]["active_users"] == 1
    e = http.get(
        "/api/v1/timeseries", params={"kind": "endpoint", **params}, headers=tenant.auth
    ).json()
    assert e["points"][0]["experience_score"] == 0.5
    assert e["points"][0]["pages"] == 2


def test_channel_periods_begun_in_one_millisecond_page_and_open(
    http: httpx.Client, tenant: Tenant
) -> None:
    t = BASE + minutes(5)
    seed(
        http,
        tenant,
        [channel("PUBLISH_START", at=BASE, channel="ls-dup", id=f"dup{n}") for n in range(3)]
        + [  # in one millisecond, in id order: a restart, its end, another start
            channel("PUBLISH_START", at=t, channel="ls-dup", id="t-a"),
            channel("PUBLISH_END", at=t, channel="ls-dup", id="t-b"),
            channel("PUBLISH_START", at=t, channel="ls-dup", id="t-c"),
        ],
    )
    seen: list[str] = []
    params: dict[str, Any] = {"kind": "channel", "channel": "ls-dup", "limit": 1}
    while True:
        body = sessions(http, tenant, **params).json()
        seen += [s["session"] for s in body["sessions"]]
        if body["next"] is None:
            break
        params["cursor"] = body["next"]
    t_ms, base_ms = int(t.timestamp() * 1000), int(BASE.timestamp() * 1000)
    # The three starts sent in one millisecond at BASE are one period; the period opened and
    # closed at t and the one reopened at t are told apart.
    assert seen == [f"ls-dup@{t_ms}~2", f"ls-dup@{t_ms}", f"ls-dup@{base_ms}"]
    for key in seen:
        r = http.get(f"/api/v1/sessions/channel/{key}", headers=tenant.auth)
        assert r.status_code == 200, r.text
        assert r.json()["session"] == key
    bad = http.get(f"/api/v1/sessions/channel/ls-dup@{t_ms}~x", headers=tenant.auth)
    assert bad.status_code == 404


def test_series_and_session_scores_round_alike(http: httpx.Client, tenant: Tenant) -> None:
    # Five fast pages and three slow ones: a mean of exactly 0.625, rounded half up.
    pages = [
        endpoint(session="r", page_id=f"p{n}", on_load_ms=100 if n < 5 else 10**6) for n in range(8)
    ]
    seed(http, tenant, pages)
    (session,) = sessions(http, tenant, kind="endpoint").json()["sessions"]
    assert session["experience_score"] == 0.63
    params = {"from": iso(BASE), "to": iso(BASE + minutes(59)), "interval": "1h"}
    e = http.get(
        "/api/v1/timeseries", params={"kind": "endpoint", **params}, headers=tenant.auth
    ).json()
    assert e["points"][0]["experience_score"] == 0.63


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"kind": "player", "metric": "idle_time"}, "metric"),
        ({"kind": "player", "interval": "7m"}, "interval"),
        (
            {"kind": "player", "from": "2025-01-01", "to": "2025-12-31", "interval": "1m"},
            "interval",
        ),
    ],
)
def test_timeseries_errors(
    http: httpx.Client, tenant: Tenant, params: dict[str, Any], needle: str
) -> None:
    r = http.get("/api/v1/timeseries", params=params, headers=tenant.auth)
    assert r.status_code == 400
    assert needle in r.json()["error"]["message"]


def test_openapi_and_docs(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/v1/events", "/api/v1/sessions", "/api/v1/timeseries"} <= set(paths)
