"""Dashboard over HTTP: sign-in and its cookie, isolation between projects, pages and errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from tests.conftest import Tenant
from tests.dashboard.conftest import (
    OTHER_CHANNEL,
    OTHER_DESKTOP,
    OTHER_ENDPOINT,
    OTHER_FILTERS,
    OTHER_MARKS,
    OTHER_PLAYER,
    Dash,
)

from sessionscope.config import Settings
from sessionscope.dashboard.auth import COOKIE, sign_in_link
from sessionscope.domain.events import KINDS
from sessionscope.store.clickhouse import ClickHouseStore


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    return client.post("/login", data={"api_key": key, "next": "/"})


@pytest.fixture
def main(client: httpx.Client, dash: Dash) -> httpx.Client:
    assert sign_in(client, dash.main_key).status_code == 303
    return client


def session_links(html: str) -> list[str]:
    return re.findall(r'href="(/sessions/[a-z]+/[^"]+)"', html)


# ------------------------------------------------------------------------------- sign-in


def test_pages_redirect_to_sign_in(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = client.get("/sessions", params={"kind": "desktop"})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote("/sessions?kind=desktop", safe="")
    r = client.get("/login")
    assert r.status_code == 200 and 'name="api_key"' in r.text


def test_sign_in_sets_a_signed_http_only_cookie(client: httpx.Client, dash: Dash) -> None:
    bad = sign_in(client, "ssk_000000000000_nope")
    assert bad.status_code == 401 and "not valid" in bad.text
    assert COOKIE not in client.cookies
    r = client.post("/login", data={"api_key": dash.main_key, "next": "/sessions?kind=channel"})
    assert r.status_code == 303 and r.headers["location"] == "/sessions?kind=channel"
    cookie = r.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert dash.main_key not in cookie  # only the key's id is kept
    page = client.get("/")
    assert page.status_code == 200 and dash.main.name in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # A tampered cookie is no sign-in at all.
    value = client.cookies[COOKIE]
    client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/").status_code == 303
    assert client.get("/sessions").headers["location"].startswith("/login")


def test_next_only_goes_to_this_site(client: httpx.Client, dash: Dash) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        r = client.post("/login", data={"api_key": dash.main_key, "next": target})
        assert r.headers["location"] == "/"


def test_cross_site_form_posts_are_refused(client: httpx.Client, dash: Dash) -> None:
    r = client.post(
        "/login", data={"api_key": dash.main_key}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    r = client.post(
        "/login",
        data={"api_key": dash.main_key},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert r.status_code == 303


def test_sign_out(main: httpx.Client) -> None:
    r = main.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert COOKIE not in main.cookies
    assert main.get("/").status_code == 303


def test_sign_in_link(client: httpx.Client, settings: Settings, dash: Dash) -> None:
    link = sign_in_link(settings, dash.main.id)
    assert link.startswith(settings.base_url + "/login?token=")
    r = client.get(link)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert dash.main.name in client.get("/").text
    client.cookies.clear()
    bad = client.get("/login", params={"token": link.rsplit("=", 1)[1] + "x"})
    assert bad.status_code == 400 and "not valid" in bad.text


def test_user_sign_in_and_project_switch(
    client: httpx.Client, store: ClickHouseStore, dash: Dash, tenant: Tenant
) -> None:
    email = f"viewer-{dash.main.id}-{tenant.project.id}@example.com"
    token = store.create_user(email, [dash.main.id, dash.other.id])
    wrong = client.post("/login", data={"email": email, "token": token + "x"})
    assert wrong.status_code == 401
    assert client.post("/login", data={"email": email.upper(), "token": token}).status_code == 303
    page = client.get("/sessions", params={"kind": "player"}).text
    assert 'name="project_id"' in page and dash.other.name in page
    assert OTHER_PLAYER not in page
    # Not one of the user's projects: refused.
    r = client.post("/switch-project", data={"project_id": str(tenant.project.id)})
    assert r.status_code == 400 and "project_id" in r.text
    r = client.post("/switch-project", data={"project_id": str(dash.other.id)})
    assert r.status_code == 303
    assert OTHER_PLAYER in client.get("/sessions", params={"kind": "player"}).text
    # The user loses the project: the sign-in no longer grants it.
    store.create_user(email, [dash.main.id])
    assert client.get("/").status_code == 303


# ------------------------------------------------------------------------------- isolation


def test_another_projects_sessions_never_appear(main: httpx.Client, dash: Dash) -> None:
    pages = [main.get("/", params={"range": r}).text for r in ("24h", "7d")]
    for kind in KINDS:
        pages.append(main.get("/sessions", params={"kind": kind}).text)
    for html in pages:
        assert not any(mark in html for mark in OTHER_MARKS)
    for kind, key in (
        ("player", OTHER_PLAYER),
        ("endpoint", OTHER_ENDPOINT),
        ("desktop", str(OTHER_DESKTOP)),
    ):
        r = main.get(f"/sessions/{kind}/{key}")
        assert r.status_code == 404 and "text/html" in r.headers["content-type"]
        assert key in r.text  # says which session was not found
    # The channel explorer lists the project's own publish periods, never the other's.
    channel_links = session_links(main.get("/sessions", params={"kind": "channel"}).text)
    assert channel_links and not [s for s in channel_links if OTHER_CHANNEL in s]
    # Filtering for the other project's values finds nothing either.
    for kind, name, value in OTHER_FILTERS:
        r = main.get("/sessions", params={"kind": kind, name: value})
        assert r.status_code == 200 and "No sessions match" in r.text, (kind, name)


def test_the_isolation_checks_would_see_a_leak(client: httpx.Client, dash: Dash) -> None:
    """The marks and filters the isolation test looks for do find the other project's
    sessions where they belong: a leak would not go unnoticed."""
    assert sign_in(client, dash.other_key).status_code == 303
    channel_links = session_links(client.get("/sessions", params={"kind": "channel"}).text)
    assert [s for s in channel_links if OTHER_CHANNEL in s]
    for kind, name, value in OTHER_FILTERS:
        r = client.get("/sessions", params={"kind": kind, name: value})
        assert r.status_code == 200 and "No sessions match" not in r.text, (kind, name)
        assert any(mark in r.text for mark in OTHER_MARKS), (kind, name)
    overview = client.get("/", params={"range": "24h"}).text
    assert any(mark in overview for mark in OTHER_MARKS)


# ------------------------------------------------------------------------------- pages


def test_overview_has_a_section_per_kind(main: httpx.Client) -> None:
    r = main.get("/", params={"range": "7d"})
    assert r.status_code == 200
    for kind in KINDS:
        assert f'data-kind="{kind}"' in r.text
    assert "7 points, one per day; the last one is still in progress" in r.text
    assert "12 points, one per 5 minutes" in main.get("/", params={"range": "1h"}).text
    custom = main.get(
        "/", params={"range": "custom", "from": "2025-10-10T09:00", "to": "2025-10-10T12:00"}
    )
    assert custom.status_code == 200
    assert "2025-10-10 09:00 to 2025-10-10 12:00 UTC (3 h)" in custom.text
    assert "36 points, one per 5 minutes." in custom.text


def test_overview_bad_range_is_a_400_naming_it(main: httpx.Client) -> None:
    r = main.get("/", params={"range": "forever"})
    assert r.status_code == 400 and "range: must be one of" in r.text
    r = main.get("/", params={"range": "custom", "from": "yesterday"})
    assert r.status_code == 400 and "from:" in r.text
    r = main.get("/", params={"range": "custom", "from": "2025-10-10", "to": "2025-10-09"})
    assert r.status_code == 400 and "to: must be after from" in r.text


def test_empty_project_says_what_to_send(client: httpx.Client, tenant: Tenant) -> None:
    assert sign_in(client, tenant.api_key).status_code == 303
    r = client.get("/")
    assert r.status_code == 200 and "No events yet" in r.text
    assert "/api/v1/events" in r.text and 'href="/readme#sending-events"' in r.text
    readme = client.get("/readme")
    assert readme.status_code == 200 and 'id="sending-events"' in readme.text


def test_explorer_filters_and_pages(main: httpx.Client) -> None:
    r = main.get("/sessions", params={"kind": "player", "device": "Mobile"})
    assert r.status_code == 200
    rows = re.findall(r"<tr>(.*?)</tr>", r.text, re.S)[1:]
    assert rows and all("<td>Mobile</td>" in row for row in rows)
    first = main.get("/sessions", params={"kind": "player"})
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt is not None
    second = main.get(nxt.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert not set(session_links(first.text)) & set(session_links(second.text))
    bad = main.get("/sessions", params={"kind": "player", "colour": "red"})
    assert bad.status_code == 400 and "parameter colour: is not a filter of player" in bad.text
    bad = main.get("/sessions", params={"kind": "player", "cursor": "nope"})
    assert bad.status_code == 400 and "parameter cursor" in bad.text
    bad = main.get("/sessions", params={"kind": "video"})
    assert bad.status_code == 400 and "parameter kind" in bad.text


@pytest.mark.parametrize("kind", KINDS)
def test_session_page_of_each_kind(main: httpx.Client, kind: str) -> None:
    listing = main.get("/sessions", params={"kind": kind}).text
    links = session_links(listing)
    assert links, f"no {kind} sessions listed"
    r = main.get(links[0].replace("&amp;", "&"))
    assert r.status_code == 200
    assert 'data-chart="chart-session-' in r.text and 'id="events-table"' in r.text


def test_api_and_docs_are_not_shadowed(main: httpx.Client) -> None:
    r = main.get("/api/v1/sessions", params={"kind": "player"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert main.get("/healthz").json()["status"] == "ok"
    assert main.get("/docs").status_code == 200
    assert "/sessions" not in main.get("/openapi.json").json()["paths"]
    missing = main.get("/sessions/player/no-such-session")
    assert missing.status_code == 404 and "<html" in missing.text
    assert main.get("/sessions/video/x").status_code == 404


def test_static_files_are_served_with_the_chart_library(client: httpx.Client) -> None:
    js = client.get("/static/chart.umd.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "Chart.js v4" in js.text[:200]
    assert "MIT License" in client.get("/static/chart.js.LICENSE.md").text
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
