"""The browser SDK in a real browser: Debian's Chromium, headless, driven by Playwright.

The test page is served from another origin than the sessionscope server (``localhost`` and
``127.0.0.1`` differ), so every post is a cross-origin request, as on a real site. The media is a
few seconds of WAV written by the test. Skipped without ``/usr/bin/chromium``, as the
dashboard's browser tests.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import math
import re
import struct
import threading
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.compat.test_thousandeyes import make_user
from tests.conftest import Tenant, free_port

from sessionscope.store.clickhouse import ClickHouseStore

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium: "
        "apt-get update && apt-get install -y chromium",
    ),
]

#: Seconds of the test tone.
TONE_S = 5


def write_tone(path: Path, seconds: int = TONE_S) -> None:
    """A 440 Hz tone, 8 kHz mono 16-bit."""
    rate = 8000
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(rate * seconds)
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)


class _Site(http.server.SimpleHTTPRequestHandler):
    """Static files with byte ranges (a media element seeks only in what it can range over)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> Any:
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not ranged or not path.is_file():
            return super().send_head()
        data = path.read_bytes()
        first = int(ranged[1])
        last = min(int(ranged[2]) if ranged[2] else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data[first : last + 1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Another origin serving the test pages and the tone: ``(url, directory)``."""
    root = tmp_path_factory.mktemp("site")
    write_tone(root / "tone.wav")
    port = free_port()
    handler = functools.partial(_Site, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{port}", root
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert not errors, errors  # nothing the SDK does may throw into the page


def write_page(root: Path, name: str, base_url: str, body: str) -> str:
    (root / name).write_text(
        "<!doctype html><html><head><title>sdk test</title>"
        f'<script src="{base_url}/sdk/sessionscope.js"></script></head><body>{body}</body></html>'
    )
    return name


def eventually(page: Any, check: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    """Poll until ``check`` returns something truthy (the browser sends in the background).
    Waits with the page's clock: Playwright's sync API handles routes and events only then."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not there after {seconds} s")
        page.wait_for_timeout(200)


def session_events(http: httpx.Client, tenant: Tenant, sid: str) -> list[dict[str, Any]]:
    r = http.get(f"/api/v1/sessions/player/{sid}", headers=tenant.auth)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def durations(events: list[dict[str, Any]], kind: str) -> list[int]:
    return [e.get("duration_ms") or 0 for e in events if e["type"] == kind]


def test_video_session_in_native_and_vpe_apis(
    page: Any, site: tuple[str, Path], base_url: str, http: httpx.Client, tenant: Tenant
) -> None:
    url, root = site
    name = write_page(
        root,
        f"video-{tenant.project.id}.html",
        base_url,
        '<video id="v" src="tone.wav" preload="auto"></video><script>'
        f'window.tracker = Sessionscope.trackVideo(document.getElementById("v"), '
        f'{{key: "{tenant.api_key}"}});</script>',
    )
    page.goto(f"{url}/{name}")
    page.wait_for_function("document.getElementById('v').readyState >= 1")
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 1.2")
    page.evaluate("document.getElementById('v').pause()")
    page.wait_for_timeout(300)
    page.evaluate("document.getElementById('v').currentTime = 3")
    page.wait_for_function("!document.getElementById('v').seeking")
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').ended")
    sid = page.evaluate("window.tracker.session")
    user = page.evaluate("localStorage.getItem('sessionscope.user')")
    assert sid and user

    events = eventually(
        page,
        lambda: (
            [e for e in session_events(http, tenant, sid) if e["type"] == "ended"]
            and session_events(http, tenant, sid)
        ),
        "the ended event",
    )
    types = [e["type"] for e in events]
    assert types[:2] == ["player_start", "startup"], types
    assert {"playing", "paused", "seeking", "ended"} <= set(types), types
    assert types[-1] == "ended"
    assert len({e["id"] for e in events}) == len(events)
    first = events[0]
    assert first["user"] == user and first["video_type"] == "VOD" and first["device"] == "PC"
    assert first["origin"] == url and first["page"].startswith(url)
    assert first["browser"].startswith("Chrome") and first["media"].endswith("tone.wav")
    # Played about 1.2 s, then from 3 s to the end: some 3 s of 5 (wall clock, so bounds loose).
    playing = sum(durations(events, "playing"))
    assert 1500 <= playing <= 15_000, playing
    assert all(0 <= d < 15_000 for d in durations(events, "startup"))
    assert len(durations(events, "seeking")) == 1
    seek = next(e for e in events if e["type"] == "seeking")
    assert 2.9 <= seek["video_time"] <= 3.5, seek
    assert events[-1]["video_time"] == pytest.approx(TONE_S, abs=0.1)

    listed = http.get("/api/v1/sessions", params={"kind": "player"}, headers=tenant.auth).json()
    (mine,) = [s for s in listed["sessions"] if s["session"] == sid]

    vpe = {"x-api-key": tenant.api_key, "x-project-id": str(tenant.project.id)}
    recent = http.get("/v1/sessionRecent", headers=vpe)
    assert recent.status_code == 200, recent.text
    (item,) = [s for s in recent.json()["result"] if s["uuid"] == user]
    assert [log["actionType"] for log in item["sessionLog"]] == types
    assert item["device"] == "PC" and item["origin"] == url
    assert 1.5 <= item["playingTime"] <= 15, item
    assert item["isError"] is False
    assert mine["session"] == sid


def test_page_load_in_thousandeyes_api_from_an_es_module(
    page: Any,
    site: tuple[str, Path],
    base_url: str,
    http: httpx.Client,
    tenant: Tenant,
    store: ClickHouseStore,
) -> None:
    url, root = site
    name = f"page-{tenant.project.id}.html"
    (root / name).write_text(
        "<!doctype html><html><head><title>Checkout</title></head><body><p>hello</p>"
        '<script type="module">'
        f'import Sessionscope from "{base_url}/sdk/sessionscope.mjs";'
        f'Sessionscope.trackPages({{key: "{tenant.api_key}", orgName: "Example"}});'
        "</script></body></html>"
    )
    page.goto(f"{url}/{name}")
    agent = eventually(
        page, lambda: page.evaluate("localStorage.getItem('sessionscope.agent')"), "the agent id"
    )
    user = make_user(store, tenant)

    def sessions() -> list[dict[str, Any]]:
        r = http.get(
            "/v6/endpoint-data/user-sessions.json",
            params={"aid": tenant.project.id, "window": "1h"},
            auth=(user.email, user.token),
        )
        assert r.status_code == 200, r.text
        return list(r.json()["userSessions"])

    (one,) = eventually(page, sessions, "the page's user session")
    assert one["agentId"] == agent
    assert one["visitedSite"] == "localhost"
    assert one["experienceScore"] == 1.0  # a local page loads well under the 2 s threshold
    listed = http.get("/api/v1/sessions", params={"kind": "endpoint"}, headers=tenant.auth).json()[
        "sessions"
    ]
    (mine,) = listed
    detail = http.get(f"/api/v1/sessions/endpoint/{mine['session']}", headers=tenant.auth).json()
    (ev,) = detail["events"]
    assert ev["title"] == "Checkout" and ev["response_code"] == 200
    assert 0 <= ev["on_content_load_ms"] <= ev["on_load_ms"] < 15_000


def test_pagehide_sends_what_is_queued_with_a_beacon(
    page: Any, site: tuple[str, Path], base_url: str, http: httpx.Client, tenant: Tenant
) -> None:
    url, root = site
    name = write_page(
        root,
        f"beacon-{tenant.project.id}.html",
        base_url,
        '<video id="v" src="tone.wav" preload="auto"></video><script>'
        f'window.tracker = Sessionscope.trackVideo(document.getElementById("v"), '
        f'{{key: "{tenant.api_key}", flushInterval: 600000}});</script>',
    )
    page.goto(f"{url}/{name}")
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 1")
    sid = page.evaluate("window.tracker.session")
    assert session_events(http, tenant, sid) == []  # nothing sent yet: the queue waits
    page.goto("about:blank")  # pagehide: the SDK reports playing so far and sends a beacon
    events = eventually(page, lambda: session_events(http, tenant, sid), "the beacon's events")
    assert [e["type"] for e in events][:2] == ["player_start", "startup"]
    assert sum(durations(events, "playing")) >= 900


def test_a_failed_post_is_resent_with_the_same_ids(
    page: Any, site: tuple[str, Path], base_url: str, http: httpx.Client, tenant: Tenant
) -> None:
    url, root = site
    bodies: list[list[dict[str, Any]]] = []

    def route(r: Any) -> None:
        bodies.append(json.loads(r.request.post_data))
        if len(bodies) == 1:
            r.abort()  # the network fails once
        else:
            r.continue_()

    page.route(f"{base_url}/api/v1/events*", route)
    name = write_page(
        root,
        f"retry-{tenant.project.id}.html",
        base_url,
        f'<script>Sessionscope.trackPages({{key: "{tenant.api_key}"}});</script>',
    )
    page.goto(f"{url}/{name}")
    eventually(page, lambda: len(bodies) >= 2, "the retry")
    assert [e["id"] for e in bodies[1]] == [e["id"] for e in bodies[0]]
    listed = eventually(
        page,
        lambda: http.get(
            "/api/v1/sessions", params={"kind": "endpoint"}, headers=tenant.auth
        ).json()["sessions"],
        "the page",
    )
    assert len(listed) == 1 and listed[0]["pages"] == 1


def test_nothing_throws_into_the_page(page: Any, site: tuple[str, Path], base_url: str) -> None:
    url, root = site
    name = write_page(root, "bad.html", base_url, "<video id='v'></video>")
    page.goto(f"{url}/{name}")
    results = page.evaluate(
        """() => [
          Sessionscope.trackVideo(null, {key: 'k'}),
          Sessionscope.trackVideo(document.getElementById('v'), null) ? 'handle' : 'none',
          Sessionscope.trackPages(null) ? 'handle' : 'none',
          Sessionscope.trackPages({key: 'k', endpoint: 'http://127.0.0.1:9'}) ? 'handle' : 'none',
          Sessionscope.flush(),
        ]"""
    )
    assert results[0] is None and results[1:4] == ["handle", "handle", "handle"]
    page.wait_for_timeout(500)  # the failing post happens meanwhile; the fixture checks errors
