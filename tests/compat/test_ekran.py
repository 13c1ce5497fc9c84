"""Ekran System compatible API: sessions (POST and GET), productivity, auth, errors, paging."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from tests.conftest import Tenant, free_port
from tests.factories import desktop
from typer.testing import CliRunner

from sessionscope.app import create_app
from sessionscope.cli import app as cli_app
from sessionscope.compat.ekran import format_date, format_timespan
from sessionscope.config import Settings
from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore, open_store

T0 = datetime(2025, 10, 10, 10, 0, tzinfo=UTC)  # window start
T1 = T0 + timedelta(hours=2)  # window end
WINDOW = {"start": "2025-10-10T10:00", "end": "2025-10-10T12:00:00"}

FULL_KEYS = [
    "duration",
    "idleTime",
    "productivityTime",
    "clientGuid",
    "clientName",
    "logoutDate",
    "loginDate",
    "sessionId",
    "userName",
    "userId",
]
SHORT_KEYS = ["clientGuid", "logoutDate", "loginDate", "sessionId", "userId"]
PRODUCTIVITY_KEYS = ["date", "totalMinutes", "userName", "timeOfDay"]
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{2}):(\d{2}):(\d{2})\.(\d{7})")


def timespan_ms(text: str) -> int:
    """Parse a .NET TimeSpan string back to milliseconds (exactly; no sub-ms ticks allowed)."""
    m = _TIMESPAN.fullmatch(text)
    assert m, text
    days, h, mi, s, ticks = (int(g or 0) for g in m.groups())
    assert ticks % 10_000 == 0, text
    assert h < 24 and mi < 60 and s < 60, text
    return (((days * 24 + h) * 60 + mi) * 60 + s) * 1000 + ticks // 10_000


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Figures:
    """What a session should show, in whole seconds, computed without the server's rules."""

    listed: bool
    duration_s: int
    idle_s: int
    productive_s: int


def brute_force(
    points: tuple[float, ...],
    start: float | None,
    end: float | None,
    timeout_min: float = 15,
) -> Figures:
    """Classify every second of the timeline on its own (points are minutes from T0).

    A second counts when activity points inside the window lie on both sides of it; it is
    idle when the nearest of them on each side are more than the timeout apart, productive
    otherwise. A session is listed when it overlaps the window (note 1 of the vendor).
    """
    listed = (end is None or points[0] <= end) and (start is None or points[-1] >= start)
    inside = [p for p in points if (start is None or p >= start) and (end is None or p <= end)]
    idle = productive = 0
    for second in range(round(min(points) * 60), round(max(points) * 60)):
        mid = (second + 0.5) / 60
        before = [p for p in inside if p <= mid]
        after = [p for p in inside if p >= mid]
        if before and after:
            if min(after) - max(before) > timeout_min:
                idle += 1
            else:
                productive += 1
    return Figures(listed, idle + productive, idle, productive)


def figures(s: dict[str, Any]) -> Figures:
    """The three figures of an answer's session, parsed back from their TimeSpan strings."""
    duration, idle, productive = (
        timespan_ms(s[k]) for k in ("duration", "idleTime", "productivityTime")
    )
    assert duration % 1000 == idle % 1000 == productive % 1000 == 0  # whole seconds here
    return Figures(True, duration // 1000, idle // 1000, productive // 1000)


def session(sid: int, *points: float, open_: bool = False, **kw: Any) -> list[dict[str, Any]]:
    """Desktop events: a login at the first offset (minutes from T0), activity, a logout last."""
    kinds = ["login"] + ["activity"] * (len(points) - 1)
    if not open_:
        kinds[-1] = "logout"
    return [desktop(k, at=at(p), session=sid, **kw) for k, p in zip(kinds, points, strict=True)]


def seed(http: httpx.Client, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    r = http.post("/api/v1/events", json=events, headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events)


def ekran(tenant: Tenant) -> dict[str, str]:
    return {"ApiKey": tenant.api_key}


def post(http: httpx.Client, tenant: Tenant, body: Any = None, **params: Any) -> dict[str, Any]:
    r = http.post("/ekranapi/sessions", json=body, params=params, headers=ekran(tenant))
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    assert list(doc) == ["sessions", "totalCount"]
    for s in doc["sessions"]:
        assert list(s) == FULL_KEYS
        # The three figures add up exactly, whatever the clipping.
        assert timespan_ms(s["duration"]) == (
            timespan_ms(s["idleTime"]) + timespan_ms(s["productivityTime"])
        )
    return doc


def by_id(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {s["sessionId"]: s for s in doc["sessions"]}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, Any] = r.json()
    assert doc["status"] == status and doc["type"].startswith("https://tools.ietf.org/")
    assert doc["title"] and doc["detail"]
    return doc


# ------------------------------------------------------------------------------ formatting


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "00:00:00.0000000"),
        (1005, "00:00:01.0050000"),
        (73_384_002, "20:23:04.0020000"),
        (86_399_999, "23:59:59.9990000"),
        (86_400_000, "1.00:00:00.0000000"),
        (93_784_500, "1.02:03:04.5000000"),
        (12 * 86_400_000 + 1, "12.00:00:00.0010000"),
    ],
)
def test_timespan_format(ms: int, text: str) -> None:
    assert format_timespan(ms) == text
    assert timespan_ms(text) == ms


def test_date_format() -> None:
    assert format_date(datetime(2000, 1, 23, 4, 56, 7, 8000, tzinfo=UTC)) == (
        "2000-01-23T04:56:07.008+00:00"
    )
    assert format_date(None) is None


# ------------------------------------------------------------------------------ selection


@dataclass(frozen=True)
class Case:
    """One session, and what the window [T0, T1] makes of it (minutes, or None: not listed)."""

    name: str
    sid: int
    points: tuple[float, ...]
    open_: bool = False
    duration: float | None = None
    idle: float | None = None


CASES = [
    Case("inside, one idle gap", 101, (10, 20, 50, 60), duration=50, idle=30),
    Case("same login as 101, higher id", 113, (10, 12), duration=2, idle=0),
    Case("login at the start, a gap equal to the timeout", 112, (0, 15, 31, 32), False, 32, 16),
    Case("starts before", 102, (-30, -20, -5, 3, 30, 40), duration=37, idle=27),
    Case("ends after", 103, (100, 110, 118, 140, 150), duration=18, idle=0),
    Case("spans the whole window", 104, (-60, 5, 10, 60, 115, 180), duration=110, idle=105),
    Case("entirely before", 105, (-120, -10)),
    Case("entirely after", 106, (130, 200)),
    Case("still open", 107, (30, 40, 45), open_=True, duration=15, idle=0),
    Case("still open, active past the end", 108, (90, 100, 130), open_=True, duration=10, idle=0),
    Case("idle gap straddling the start", 109, (-40, -30, 20, 25, 30), duration=10, idle=0),
    Case("idle gap straddling the end", 110, (100, 105, 150, 160), duration=5, idle=0),
    # Logged in before the window, next activity after it: open all through the window but not
    # used in it; listed (note 1), with nothing measured (notes 2 and 3 find no activity).
    Case("overlaps, no activity inside", 111, (-10, 130, 140), duration=0, idle=0),
    Case("idle over the whole window", 114, (-30, -20, 125, 126), duration=0, idle=0),
]
MINUTE = {"start": 0.0, "end": 120.0}


@pytest.fixture(scope="module")
def table(base_url: str, store: ClickHouseStore) -> Iterator[tuple[httpx.Client, Tenant]]:
    """One project holding every session of ``CASES``."""
    project = store.create_project(f"ekran-table-{datetime.now(UTC).timestamp()}")
    tenant = Tenant(project, store.create_api_key(project.id))
    with httpx.Client(base_url=base_url, timeout=60) as client:
        events = [e for c in CASES for e in session(c.sid, *c.points, open_=c.open_)]
        seed(client, tenant, events)
        yield client, tenant


def test_the_table_agrees_with_brute_force() -> None:
    for case in CASES:
        model = brute_force(case.points, MINUTE["start"], MINUTE["end"])
        assert model.listed == (case.duration is not None), case.name
        if case.duration is not None and case.idle is not None:
            assert (model.duration_s, model.idle_s) == (case.duration * 60, case.idle * 60)
            assert model.productive_s == (case.duration - case.idle) * 60, case.name


def test_selection_and_clipping_table(table: tuple[httpx.Client, Tenant]) -> None:
    http, tenant = table
    got = by_id(post(http, tenant, WINDOW))
    expected = {c.sid: c for c in CASES if c.duration is not None}
    assert set(got) == set(expected)
    for sid, case in expected.items():
        s = got[sid]
        assert case.duration is not None and case.idle is not None
        want = (case.duration * 60_000, case.idle * 60_000)
        assert (timespan_ms(s["duration"]), timespan_ms(s["idleTime"])) == want, case.name
        # Each figure against the independent model, productive time too (not as a difference).
        assert figures(s) == brute_force(case.points, MINUTE["start"], MINUTE["end"]), case.name
        # Dates are the session's own login and logout, not the clipped span.
        assert s["loginDate"] == format_date(at(case.points[0])), case.name
        logout = None if case.open_ else format_date(at(case.points[-1]))
        assert s["logoutDate"] == logout, case.name


@pytest.mark.parametrize(
    ("params", "excluded"),
    [
        ({}, set()),
        ({"start": "2025-10-10T10:00"}, {105}),
        ({"end": "2025-10-10T12:00"}, {106}),
        (WINDOW, {105, 106}),
        (
            {"start": "2025-10-10T10:15", "end": "2025-10-10T10:16"},
            {103, 105, 106, 107, 108, 110, 113},
        ),
    ],
    ids=["neither", "only start", "only end", "both", "a minute"],
)
def test_selection_rules(
    table: tuple[httpx.Client, Tenant], params: dict[str, str], excluded: set[int]
) -> None:
    http, tenant = table
    doc = post(http, tenant, params)
    assert {s["sessionId"] for s in doc["sessions"]} == {c.sid for c in CASES} - excluded
    assert doc["totalCount"] == len(CASES) - len(excluded)
    whole = by_id(post(http, tenant))
    for sid, s in by_id(doc).items():
        assert timespan_ms(s["duration"]) <= timespan_ms(whole[sid]["duration"])
    # Selection and every figure as the independent model has them, for these bounds too.
    bounds = [
        (datetime.fromisoformat(params[k]).replace(tzinfo=UTC) - T0) / timedelta(minutes=1)
        if k in params
        else None
        for k in ("start", "end")
    ]
    got = by_id(doc)
    for case in CASES:
        model = brute_force(case.points, *bounds)
        assert (case.sid in got) == model.listed, case.name
        if model.listed:
            assert figures(got[case.sid]) == model, case.name


def test_only_start_clips_the_start_only(table: tuple[httpx.Client, Tenant]) -> None:
    http, tenant = table
    got = by_id(post(http, tenant, {"start": "2025-10-10T10:00"}))
    assert timespan_ms(got[103]["duration"]) == 50 * 60_000  # to its logout, past T1
    assert timespan_ms(got[111]["duration"]) == 10 * 60_000  # from its activity at T0+130
    only_end = by_id(post(http, tenant, {"end": "2025-10-10T12:00"}))
    assert timespan_ms(only_end[102]["duration"]) == 70 * 60_000  # from its login, before T0
    assert timespan_ms(only_end[111]["duration"]) == 0  # nothing after its login before T1


def test_order_is_login_then_session_id(table: tuple[httpx.Client, Tenant]) -> None:
    http, tenant = table
    sessions = post(http, tenant)["sessions"]
    keys = [(s["loginDate"], s["sessionId"]) for s in sessions]
    assert keys == sorted(keys)
    ids = [s["sessionId"] for s in sessions]
    assert ids.index(101) + 1 == ids.index(113)


def test_get_short_form_lists_the_same_sessions(table: tuple[httpx.Client, Tenant]) -> None:
    http, tenant = table
    r = http.get("/ekranapi/sessions", params=WINDOW, headers=ekran(tenant))
    assert r.status_code == 200, r.text
    short = r.json()
    assert all(list(s) == SHORT_KEYS for s in short)
    full = post(http, tenant, WINDOW)["sessions"]
    assert short == [{k: s[k] for k in SHORT_KEYS} for s in full]
    assert len(http.get("/ekranapi/sessions", headers=ekran(tenant)).json()) == len(CASES)


def test_query_string_and_body_precedence(table: tuple[httpx.Client, Tenant]) -> None:
    http, tenant = table
    whole = [s["sessionId"] for s in post(http, tenant)["sessions"]]
    by_query = post(http, tenant, None, sessionCount="3", pageIndex="1")
    assert [s["sessionId"] for s in by_query["sessions"]] == whole[3:6]
    assert by_query["totalCount"] == len(CASES)
    # The JSON body wins over the query string, parameter by parameter; names ignore case.
    mixed = post(http, tenant, {"PageIndex": 2}, sessionCount="3", pageIndex="1")
    assert [s["sessionId"] for s in mixed["sessions"]] == whole[6:9]
    assert post(http, tenant, {"sessionCount": 0})["sessions"] == []
    assert post(http, tenant, {"pageIndex": 99})["sessions"] == []
    # curl -d sends form content type; the body is still read as JSON.
    r = http.post(
        "/ekranapi/sessions",
        content=b'{"sessionCount": 2}',
        headers={**ekran(tenant), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and len(r.json()["sessions"]) == 2


def test_a_session_longer_than_a_day_has_the_day_prefix(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            desktop("login", at=T0 - timedelta(days=1), session=5),
            desktop("activity", at=T0 - timedelta(days=1, minutes=-5), session=5),
            desktop("logout", at=T0 + timedelta(hours=1, minutes=3, seconds=4.5), session=5),
        ],
    )
    (s,) = post(http, tenant)["sessions"]
    assert s["duration"] == "1.01:03:04.5000000"
    assert s["idleTime"] == "1.00:58:04.5000000"
    assert s["productivityTime"] == "00:05:00.0000000"
    assert s["loginDate"] == "2025-10-09T10:00:00.000+00:00"
    assert s["logoutDate"] == "2025-10-10T11:03:04.500+00:00"
    assert (s["clientGuid"], s["clientName"], s["userName"], s["userId"]) == (
        "5d4fe546-8aff-4510-a814-f6a8ee14eff1",
        "ws-01",
        "alice",
        7,
    )


def test_paging_returns_every_session_exactly_once(http: httpx.Client, tenant: Tenant) -> None:
    events: list[dict[str, Any]] = []
    for sid in range(1, 2501):
        login = T0 + timedelta(minutes=sid // 2)  # pairs share a login: ties by session id
        events.append(desktop("login", at=login, session=sid, user_id=sid % 40))
        events.append(
            desktop("logout", at=login + timedelta(minutes=7), session=sid, user_id=sid % 40)
        )
    body = b"\n".join(orjson.dumps(e) for e in events)
    r = http.post(
        "/api/v1/events",
        content=body,
        headers={**tenant.auth, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 5000, r.text
    pages = [post(http, tenant, {"sessionCount": 1000, "pageIndex": i}) for i in range(4)]
    assert [len(p["sessions"]) for p in pages] == [1000, 1000, 500, 0]
    assert {p["totalCount"] for p in pages} == {2500}
    ids = [s["sessionId"] for p in pages for s in p["sessions"]]
    assert sorted(ids) == list(range(1, 2501))
    keys = [(s["loginDate"], s["sessionId"]) for p in pages for s in p["sessions"]]
    assert keys == sorted(keys)
    default = post(http, tenant)
    assert [s["sessionId"] for s in default["sessions"]] == ids[:1000]


# ------------------------------------------------------------------------------ productivity


def test_productivity_per_user_and_hour(http: httpx.Client, tenant: Tenant) -> None:
    seed(
        http,
        tenant,
        [
            *session(1, 50, 55, 70, 100, 105, 106, user_id=8, user_name="bob"),
            *session(2, 80, 81.5, 82.5, user_id=8, user_name="bob"),
            *session(3, 0, 10, user_id=7, user_name="alice"),
        ],
    )
    r = http.get("/ekranapi/user/getproductivity", headers=ekran(tenant))
    assert r.status_code == 200, r.text
    rows = r.json()
    assert all(list(row) == PRODUCTIVITY_KEYS for row in rows)
    assert rows == [
        {"date": "2025-10-10T00:00:00.000+00:00", "totalMinutes": 10, "userName": "alice",
         "timeOfDay": 10},
        {"date": "2025-10-10T00:00:00.000+00:00", "totalMinutes": 10, "userName": "bob",
         "timeOfDay": 10},
        {"date": "2025-10-10T00:00:00.000+00:00", "totalMinutes": 18.5, "userName": "bob",
         "timeOfDay": 11},
    ]  # fmt: skip
    # Clipped like the sessions: bob's first session starts at its first activity after 11:00.
    clipped = http.get(
        "/ekranapi/user/getproductivity",
        params={"start": "2025-10-10T11:00"},
        headers=ekran(tenant),
    ).json()
    assert [(x["userName"], x["timeOfDay"], x["totalMinutes"]) for x in clipped] == [
        ("bob", 11, 8.5)
    ]
    empty = http.get(
        "/ekranapi/user/getproductivity", params={"end": "2025-10-09"}, headers=ekran(tenant)
    )
    assert empty.status_code == 200 and empty.json() == []


def test_productivity_counts_concurrent_sessions_of_a_user_once(
    http: httpx.Client, tenant: Tenant
) -> None:
    # Alice on two machines at once, 10:00 to 11:00, active all along on both: 60 minutes, not
    # 120; bob's sessions do not overlap and add up.
    seed(
        http,
        tenant,
        [
            *session(21, 0, 10, 20, 30, 40, 50, 60, client_name="ws-01"),
            *session(22, 0, 5, 15, 25, 35, 45, 55, 60, client_name="ws-02"),
            *session(23, 50, 55, 70, client_name="ws-03"),
            *session(24, 0, 10, user_id=8, user_name="bob"),
            *session(25, 20, 30, user_id=8, user_name="bob"),
        ],
    )
    rows = http.get("/ekranapi/user/getproductivity", headers=ekran(tenant)).json()
    got = {(r["userName"], r["timeOfDay"]): r["totalMinutes"] for r in rows}
    assert got == {("alice", 10): 60, ("alice", 11): 10, ("bob", 10): 20}
    # Each session alone still has its own full figures.
    sessions = by_id(post(http, tenant))
    assert [figures(sessions[sid]).productive_s for sid in (21, 22, 23)] == [3600, 3600, 1200]


# ------------------------------------------------------------------------------ settings


@contextmanager
def restarted(settings: Settings) -> Iterator[tuple[httpx.Client, ClickHouseStore]]:
    """The app on the store opened afresh, as a server started after a CLI change has it."""
    fresh = open_store(settings)
    # The data directory's journal belongs to the session's store: this one gets its own.
    journal = Ingestor(fresh, Path(tempfile.mkdtemp()) / "journal").start()
    config = uvicorn.Config(
        create_app(settings, store=fresh, ingestor=journal),
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{config.port}", timeout=60) as client:
            yield client, fresh
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        journal.close()
        fresh.close()


def test_idle_timeout_is_a_project_setting_set_from_the_cli(
    http: httpx.Client, tenant: Tenant, settings: Settings, store: ClickHouseStore
) -> None:
    seed(http, tenant, session(9, 0, 10, 20))
    (before,) = post(http, tenant)["sessions"]
    assert (before["idleTime"], before["productivityTime"]) == (
        "00:00:00.0000000",
        "00:20:00.0000000",
    )
    # The CLI changes the embedded store while no server holds it (in this test process the
    # engine is shared, so it may run); the server started afterwards answers with the change.
    result = CliRunner().invoke(
        cli_app,
        [
            "projects",
            "set",
            tenant.project.name,
            "--idle-timeout",
            "5m",
            "--data-dir",
            str(settings.data_dir),
        ],
        env={"SESSIONSCOPE_SECRET_KEY": settings.secret_key},
    )
    assert result.exit_code == 0, result.output
    with restarted(settings) as (client, fresh):
        project = fresh.get_project(tenant.project.id)
        assert project is not None and project.idle_timeout_s == 300
        (after,) = post(client, tenant)["sessions"]
    assert (after["duration"], after["idleTime"], after["productivityTime"]) == (
        "00:20:00.0000000",
        "00:20:00.0000000",
        "00:00:00.0000000",
    )


# ------------------------------------------------------------------------------ auth, errors


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ekranapi/sessions"),
        ("GET", "/ekranapi/sessions"),
        ("GET", "/ekranapi/user/getproductivity"),
    ],
)
def test_auth(http: httpx.Client, tenant: Tenant, method: str, path: str) -> None:
    for headers in ({}, {"ApiKey": "ss_nope_nope"}, {"ApiKey": ""}, tenant.auth):
        doc = problem(http.request(method, path, headers=headers), 401)
        assert "ApiKey" in doc["detail"]
    assert http.request(method, path, headers={"apikey": tenant.api_key}).status_code == 200


@pytest.mark.parametrize(
    ("params", "body", "param"),
    [
        ({"start": "2021/04/01"}, None, "start"),
        ({"start": "2021-04-01T12:00:00Z"}, None, "start"),
        ({"start": "2021-04-01 12:00"}, None, "start"),
        ({"end": "2021-04-01T12"}, None, "end"),
        ({"end": "2021-02-30"}, None, "end"),
        ({}, {"start": 1617235200}, "start"),
        ({"start": "2021-04-02", "end": "2021-04-01"}, None, "end"),
        ({"sessionCount": "1001"}, None, "sessionCount"),
        ({}, {"sessionCount": 1001}, "sessionCount"),
        ({}, {"sessionCount": -1}, "sessionCount"),
        ({}, {"sessionCount": 1.5}, "sessionCount"),
        ({}, {"sessionCount": True}, "sessionCount"),
        ({"sessionCount": "ten"}, None, "sessionCount"),
        ({"pageIndex": "-1"}, None, "pageIndex"),
        ({}, {"pageIndex": 2**31}, "pageIndex"),
        # Digits are ASCII only (the three formats of the seed): not full width, not Arabic-Indic.
        ({"sessionCount": "５"}, None, "sessionCount"),
        ({}, {"sessionCount": "１０"}, "sessionCount"),
        ({"pageIndex": "١"}, None, "pageIndex"),
        ({"start": "２０２６-11-30"}, None, "start"),
        ({"start": "2021-04-01T1２:00"}, None, "start"),
        ({"end": "2021-04-0١"}, None, "end"),
        # Times outside 1970-01-01 .. 9998-12-31T23:59:59 (UTC).
        ({"start": "0001-01-01"}, None, "start"),
        ({"end": "1969-12-31T23:59:59"}, None, "end"),
        ({"end": "9999-12-31T23:59:59"}, None, "end"),
    ],
)
def test_bad_parameters(
    http: httpx.Client, tenant: Tenant, params: dict[str, str], body: Any, param: str
) -> None:
    r = http.post("/ekranapi/sessions", params=params, json=body, headers=ekran(tenant))
    doc = problem(r, 400)
    assert list(doc["errors"]) == [param]
    assert param in doc["detail"] and param in doc["errors"][param][0]
    if body is None and set(params) <= {"start", "end"}:
        for path in ("/ekranapi/sessions", "/ekranapi/user/getproductivity"):
            got = problem(http.get(path, params=params, headers=ekran(tenant)), 400)
            assert list(got["errors"]) == [param]


def test_the_range_of_times_is_inclusive(http: httpx.Client, tenant: Tenant) -> None:
    seed(http, tenant, session(3, 0, 10))
    widest = {"start": "1970-01-01", "end": "9998-12-31T23:59:59"}
    assert post(http, tenant, widest)["totalCount"] == 1
    for path in ("/ekranapi/sessions", "/ekranapi/user/getproductivity"):
        r = http.get(path, params=widest, headers=ekran(tenant))
        assert r.status_code == 200 and len(r.json()) == 1, r.text
    doc = problem(
        http.post("/ekranapi/sessions", params={"start": "0999-01-01"}, headers=ekran(tenant)),
        400,
    )
    assert "1970-01-01" in doc["detail"] and "9998-12-31" in doc["detail"]


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"'])
def test_bad_body(http: httpx.Client, tenant: Tenant, content: bytes) -> None:
    r = http.post("/ekranapi/sessions", content=content, headers=ekran(tenant))
    assert list(problem(r, 400)["errors"]) == ["body"]


def test_every_error_under_the_prefix_is_a_problem(http: httpx.Client, tenant: Tenant) -> None:
    problem(http.get("/ekranapi/nothing", headers=ekran(tenant)), 404)
    problem(http.put("/ekranapi/sessions", headers=ekran(tenant)), 405)
