"""Dashboard pages over HTTP: error pages, empty states, permalinks, long lists, live channels,
and the sign-in link ``sessionscope demo`` prints."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from tests.conftest import Tenant
from tests.dashboard.conftest import OTHER_ENDPOINT, Dash
from tests.factories import channel, desktop, endpoint

from sessionscope.config import Settings
from sessionscope.dashboard.window import RANGES
from sessionscope.domain.events import KINDS, validate_batch
from sessionscope.domain.timerange import parse_instant
from sessionscope.service import SessionService
from sessionscope.store.clickhouse import ClickHouseStore


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def sign_in(client: httpx.Client, key: str) -> None:
    assert client.post("/login", data={"api_key": key, "next": "/"}).status_code == 303


def load(store: ClickHouseStore, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    valid, problems = validate_batch(events, now=datetime.now(UTC) + timedelta(minutes=1))
    assert not problems, problems[:3]
    store.insert_events(tenant.project.id, valid)


def spec(page: str, chart: str) -> dict[str, Any]:
    found = re.search(
        rf'<script type="application/json" id="chart-{chart}-spec">(.*?)</script>', page
    )
    assert found, chart
    return cast(dict[str, Any], json.loads(found.group(1)))


def example_of(page: str) -> str:
    """The JSON body of the curl example an empty state shows."""
    found = re.search(r"-d '(\{.*?\})'", html.unescape(page), re.S)
    assert found, "no example event on the page"
    return found.group(1)


def post(client: httpx.Client, tenant: Tenant, body: str) -> None:
    r = client.post(
        "/api/v1/events",
        content=body,
        headers={**tenant.auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


# ------------------------------------------------------------------------------- errors


def test_errors_of_the_overview_are_html_pages(client: httpx.Client, dash: Dash) -> None:
    r = client.post("/")  # no such method, signed in or not
    assert r.status_code == 405 and "text/html" in r.headers["content-type"]
    assert "<h1>405" in r.text
    sign_in(client, dash.main_key)
    for params in (
        {"range": "custom", "from": "99999999999999999"},
        {"range": "custom", "from": "2025-10-10", "to": "99999999999999999"},
        {"range": "forever"},
    ):
        r = client.get("/", params=params)
        assert r.status_code >= 400, params
        assert "text/html" in r.headers["content-type"] and "<html" in r.text, params
    # Paths no family claims keep the native JSON error shape.
    r = client.get("/no-such-page")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# ------------------------------------------------------------------------------- empty states


def test_the_overview_example_event_shows_up_in_every_range(
    client: httpx.Client, tenant: Tenant
) -> None:
    sign_in(client, tenant.api_key)
    page = client.get("/").text
    assert "No events yet" in page
    body = example_of(page)
    sent = parse_instant(json.loads(body)["time"], "time")
    assert abs(datetime.now(UTC) - sent) < timedelta(minutes=2)
    post(client, tenant, body)
    for key in RANGES:
        r = client.get("/", params={"range": key})
        assert 'data-kind="player"' in r.text, key
        assert "<dt>Sessions</dt><dd>1</dd>" in r.text, key


@pytest.mark.parametrize("kind", KINDS)
def test_the_explorer_says_what_to_send_for_a_kind_without_events(
    client: httpx.Client, tenant: Tenant, kind: str
) -> None:
    sign_in(client, tenant.api_key)
    r = client.get("/sessions", params={"kind": kind})
    assert r.status_code == 200
    assert f"No {kind} events yet" in r.text and "No sessions match" not in r.text
    assert "/api/v1/events" in r.text and 'href="/readme#sending-events"' in r.text
    post(client, tenant, example_of(r.text))
    listed = client.get("/sessions", params={"kind": kind}).text
    assert "events yet" not in listed
    assert len(re.findall(rf'href="/sessions/{kind}/[^"]+"', listed)) == 1
    # A filter that leaves nothing keeps saying so.
    empty = client.get("/sessions", params={"kind": kind, "from": "2001-01-01", "to": "2001-01-02"})
    assert "No sessions match" in empty.text and "events yet" not in empty.text


def test_channel_events_without_a_publish_period(
    client: httpx.Client, store: ClickHouseStore, tenant: Tenant
) -> None:
    load(store, tenant, [channel("ONAIR_START", at=datetime.now(UTC) - timedelta(minutes=5))])
    sign_in(client, tenant.api_key)
    r = client.get("/sessions", params={"kind": "channel"})
    assert "No channel sessions yet" in r.text and "PUBLISH_START" in r.text


# ------------------------------------------------------------------------------- explorer


def test_explorer_filters_are_labelled_and_aliases_refused(
    client: httpx.Client, dash: Dash
) -> None:
    sign_in(client, dash.main_key)
    page = client.get("/sessions", params={"kind": "endpoint"}).text
    assert '<label for="f-domain">Domain</label>' in page and 'name="user"' not in page
    assert 'placeholder="user uuid"' in client.get("/sessions", params={"kind": "player"}).text
    for kind in ("desktop", "endpoint"):
        bad = client.get("/sessions", params={"kind": kind, "user": "7"})
        assert bad.status_code == 400, kind
        assert f"parameter user: is not a filter of {kind}" in bad.text


# ------------------------------------------------------------------------------- permalinks


def test_a_permalink_switches_to_its_project(
    client: httpx.Client, store: ClickHouseStore, dash: Dash, settings: Settings
) -> None:
    email = f"permalink-{dash.main.id}-{dash.other.id}@example.com"
    token = store.create_user(email, [dash.main.id, dash.other.id])
    r = client.post("/login", data={"email": email, "token": token})
    assert r.status_code == 303  # signed in to the first project: main
    listing = client.get(
        "/v6/endpoint-data/user-sessions.json",
        params={"aid": str(dash.other.id), "window": "1d"},
        auth=(email, token),
    )
    assert listing.status_code == 200, listing.text
    links = [s["permalink"] for s in listing.json()["userSessions"]]
    link = f"{settings.base_url}/projects/{dash.other.id}/sessions/endpoint/{OTHER_ENDPOINT}"
    assert link in links
    r = client.get(link)
    assert r.status_code == 303 and r.headers["location"] == f"/sessions/endpoint/{OTHER_ENDPOINT}"
    page = client.get(r.headers["location"])
    assert page.status_code == 200 and f"Endpoint session {OTHER_ENDPOINT}" in page.text
    assert f'<option value="{dash.other.id}" selected>' in page.text  # switched
    # A permalink of the current project only opens the session.
    r = client.get(f"/projects/{dash.other.id}/sessions/endpoint/{OTHER_ENDPOINT}")
    assert r.status_code == 303 and "set-cookie" not in r.headers


def test_a_permalink_never_opens_another_tenants_session(client: httpx.Client, dash: Dash) -> None:
    sign_in(client, dash.main_key)  # an API key grants its own project only
    for path in (
        f"/projects/{dash.other.id}/sessions/endpoint/{OTHER_ENDPOINT}",
        f"/projects/{dash.main.id}/sessions/endpoint/{OTHER_ENDPOINT}",
        f"/projects/nope/sessions/endpoint/{OTHER_ENDPOINT}",
    ):
        r = client.get(path)
        assert r.status_code == 404 and "text/html" in r.headers["content-type"], path
        assert "set-cookie" not in r.headers
    assert dash.main.name in client.get("/").text
    base = str(client.base_url).rstrip("/")
    signed_out = httpx.get(f"{base}/projects/{dash.other.id}/sessions/endpoint/x", timeout=30)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/login")


# ------------------------------------------------------------------------------- long lists


def test_long_lists_are_capped_with_a_note(
    client: httpx.Client, store: ClickHouseStore, tenant: Tenant
) -> None:
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for i in range(1, 21):
        events += [
            desktop("login", at=now - timedelta(minutes=40), session=i, user_id=i),
            desktop("activity", at=now - timedelta(minutes=40 - i), session=i, user_id=i),
            endpoint(at=now - timedelta(minutes=10), session=f"e{i}", visited_site=f"s{i}.example"),
        ]
    for i in range(14):
        events.append(channel(at=now - timedelta(minutes=50, seconds=i), channel=f"ch-{i:02d}"))
    events.append(channel(at=now - timedelta(hours=3), channel="ch-quiet"))
    load(store, tenant, events)
    sign_in(client, tenant.api_key)
    page = client.get("/", params={"range": "24h"}).text
    assert len(spec(page, "desktop-users")["labels"]) == 15
    assert "Showing 15 of 20 users (most time first)" in page
    assert len(spec(page, "endpoint-sites")["labels"]) == 15
    assert "Showing 15 of 20 sites (worst first)" in page
    rows = spec(page, "channel-periods")["rows"]
    assert len(rows) == 12 and "Showing 12 of 15 channels active in the range" in page
    # Live means a PUBLISH_START without a later PUBLISH_END; a quiet one says for how long.
    assert "● Live, no events for 3 h" in page
    assert page.count("<td>● Live</td>") == 14


# ------------------------------------------------------------------------------- channels


class _CountingStore:
    """The real store, counting the events its ``events`` reads return."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.read = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def events(self, *args: Any, **kwargs: Any) -> Any:
        found = self.store.events(*args, **kwargs)
        self.read += len(found)
        return found


def test_channel_periods_of_a_window_read_only_what_they_show(
    store: ClickHouseStore, tenant: Tenant
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    old = [
        channel("PUBLISH_START", at=now - 10 * day + timedelta(minutes=m), channel="a")
        if m == 0
        else channel(
            "RTMP_MAIN_STREAM_ENABLED", at=now - 10 * day + timedelta(minutes=m), channel="a"
        )
        for m in range(40)
    ]
    load(
        store,
        tenant,
        [
            *old,
            channel("PUBLISH_END", at=now - 9 * day, channel="a"),
            channel("PUBLISH_START", at=now - 2 * day, channel="a"),  # still open
            channel("ONAIR_START", at=now - day, channel="a"),
            channel("PUBLISH_START", at=now - 5 * day, channel="b"),
            channel("PUBLISH_END", at=now - 4 * day, channel="b"),  # ended before the window
            channel("PUBLISH_START", at=now - timedelta(hours=1), channel="b"),
            channel("PUBLISH_END", at=now - timedelta(minutes=30), channel="b"),
            # Open at the window's start for three days, ended inside it.
            channel("PUBLISH_START", at=now - 3 * day, channel="c"),
            channel("PUBLISH_END", at=now - timedelta(hours=1), channel="c"),
            # Open at the window's start, then restarted inside it (and still live).
            channel("PUBLISH_START", at=now - timedelta(hours=5), channel="d"),
            channel("PUBLISH_START", at=now - timedelta(hours=2), channel="d"),
        ],
    )
    counting = _CountingStore(store)
    service = SessionService(cast(ClickHouseStore, counting))
    start = now - timedelta(hours=3)
    found = service.channel_sessions(tenant.project, start=start, end=now)
    assert [(s.channel, s.start, s.end) for s in found] == [
        ("c", now - 3 * day, now - timedelta(hours=1)),
        ("a", now - 2 * day, None),
        ("d", now - timedelta(hours=5), now - timedelta(hours=2)),
        ("d", now - timedelta(hours=2), None),
        ("b", now - timedelta(hours=1), now - timedelta(minutes=30)),
    ]
    assert [r.start for r in found[1].recordings] == [now - day]
    bounded = counting.read
    counting.read = 0
    everything = service.channel_sessions(tenant.project, end=now)
    assert bounded <= counting.read - len(old)  # the old period was not read
    assert [s.key for s in everything if s.end is None or s.end >= start] == [s.key for s in found]


@pytest.mark.parametrize("hours", [1, 24, 24 * 7])
def test_bounded_channel_periods_match_the_whole_history(
    store: ClickHouseStore, dash: Dash, hours: int
) -> None:
    service = SessionService(store)
    start = dash.end - timedelta(hours=hours)
    found = service.channel_sessions(dash.main, start=start, end=dash.end)
    everything = service.channel_sessions(dash.main, end=dash.end)
    assert found == [s for s in everything if s.end is None or s.end >= start]
    assert found


# ------------------------------------------------------------------------------- demo, readme


def test_the_demo_sign_in_link_signs_in(
    client: httpx.Client, settings: Settings, dash: Dash
) -> None:
    from sessionscope.cli import console, print_demo_help

    with console.capture() as captured:
        print_demo_help(settings, {"api_key": dash.main_key, "project_id": dash.main.id})
    found = re.search(r"(https?://\S+/login\?token=\S+)", captured.get())
    assert found, captured.get()
    r = client.get(found.group(1))
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and dash.main.name in page.text


def test_the_readme_page_names_its_screenshot(client: httpx.Client, dash: Dash) -> None:
    sign_in(client, dash.main_key)
    page = client.get("/readme").text
    assert 'id="dashboard"' in page and "Screenshot in the repository" in page


# ------------------------------------------------------------------------------- charts


def test_overview_charts_that_need_their_own_axes_and_rows(
    client: httpx.Client, dash: Dash
) -> None:
    sign_in(client, dash.main_key)
    page = client.get("/", params={"range": "24h"}).text
    # Rebuffering (a fraction of a percent) is not drawn against error rates (up to 100 %).
    rebuffer, errors = spec(page, "player-rebuffer"), spec(page, "player-errors")
    assert [d["label"] for d in rebuffer["datasets"]] == ["Rebuffer ratio (%)"]
    assert [d["label"] for d in errors["datasets"]] == ["Error rate (%)"]
    assert spec(page, "desktop-active")["y"]["integer"] is True
    # Long or wide charts take a row of their own (no gap beside a short one).
    for chart in ("player-playing", "channel-periods", "desktop-users"):
        assert f'<figure class="chart wide" id="chart-{chart}-figure">' in page, chart
    periods = spec(page, "channel-periods")
    styles = {d["label"]: d["style"] for d in periods["datasets"]}
    assert styles == {"Publishing": "", "Recording": "striped", "ERROR event": "cross"}


def test_a_player_timeline_writes_durations_and_crosses_errors(
    client: httpx.Client, store: ClickHouseStore, dash: Dash
) -> None:
    found = [
        s
        for s in SessionService(store).player_sessions(dash.main, limit=2000)
        if s.metrics.errors and s.metrics.playing_ms
    ]
    assert found, "the simulation has player sessions with errors"
    sign_in(client, dash.main_key)
    page = client.get(f"/sessions/player/{found[0].session}").text
    layers = {d["label"]: d for d in spec(page, "session-timeline")["datasets"]}
    assert layers["error"]["style"] == "cross"
    assert all(
        re.fullmatch(r"[0-9.]+ (ms|s)|[0-9]+ (min|h).*", p["text"])
        for p in layers["playing"]["data"]
    )
