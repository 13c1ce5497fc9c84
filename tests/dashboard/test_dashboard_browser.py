"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright.

Install the browser with ``apt-get install chromium`` (``.ci/run`` does); without it these tests
are skipped. Screenshots of the overview and of a session page are saved under each test's
``tmp_path`` (kept by pytest after a failure; the path is printed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.dashboard.conftest import OTHER_CHANNEL, OTHER_MARKS, OTHER_PLAYER, Dash

from sessionscope.domain.events import KINDS

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium: "
        "apt-get update && apt-get install -y chromium",
    ),
]

# For each chart on the page: how many data points its Chart.js object holds, and how many
# pixels of its canvas were painted.
_CHARTS_JS = """
() => Array.from(document.querySelectorAll('canvas[data-chart]')).map((c) => {
  const chart = Chart.getChart(c);
  let points = 0;
  if (chart) {
    chart.data.datasets.forEach((d) => d.data.forEach((v) => { if (v !== null) points += 1; }));
  }
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let painted = 0;
  for (let i = 3; i < px.length; i += 4) { if (px[i] !== 0) painted += 1; }
  return {
    id: c.id,
    section: c.closest('section') ? c.closest('section').id : '',
    points: points,
    painted: painted,
    visible: chart ? chart.getDatasetMeta(0).data.length : 0,
  };
})
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def problems() -> list[str]:
    """Script errors and console errors of the test's page (none are expected)."""
    return []


@pytest.fixture
def page(browser: Any, base_url: str, problems: list[str]) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert not problems, problems


def sign_in(page: Any, key: str) -> None:
    page.goto("/")
    assert page.url.endswith("/login")
    page.fill("#api_key", key)
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def shot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_overview_draws_every_section(page: Any, dash: Dash, tmp_path: Path) -> None:
    sign_in(page, dash.main_key)
    page.select_option("#range", "7d")  # a preset submits the range form by itself
    page.wait_for_url(re.compile(r"range=7d"))
    page.wait_for_load_state("load")
    shot(page, tmp_path / "overview.png")
    charts = page.evaluate(_CHARTS_JS)
    sections = {c["section"] for c in charts}
    assert sections == set(KINDS), charts
    for c in charts:
        assert c["points"] > 0, c
        assert c["visible"] > 0, c
        assert c["painted"] > 500, c  # the canvas has axes, labels and data on it
    for kind in KINDS:
        assert page.locator(f"section#{kind} .kpi").count() >= 4
    # Live channels are named with their state in words, not only by colour.
    assert page.locator("section#channel td", has_text="Live").count() >= 1
    # Each chart has its numbers as a table too.
    first = page.locator("section#player details").first
    first.locator("summary").click()
    assert first.locator("tbody tr").count() >= 7
    html = page.content()
    assert not any(mark in html for mark in OTHER_MARKS)


def test_explorer_filters_and_opens_a_session(page: Any, dash: Dash, tmp_path: Path) -> None:
    sign_in(page, dash.main_key)
    page.click("header nav >> text=Sessions")
    page.wait_for_url(re.compile(r"/sessions"))
    all_rows = page.locator("#sessions-table tbody tr").count()
    assert all_rows > 0
    page.fill("#f-device", "Mobile")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"device=Mobile"))
    rows = page.locator("#sessions-table tbody tr")
    assert rows.count() > 0
    devices = page.eval_on_selector_all(
        "#sessions-table tbody tr", "rows => rows.map(r => r.cells[3].textContent.trim())"
    )
    assert set(devices) == {"Mobile"}
    key = rows.first.locator("td a").first.inner_text()
    rows.first.locator("td a").first.click()
    page.wait_for_url(re.compile(r"/sessions/player/"))
    page.wait_for_load_state("load")
    assert key in page.locator("h1").inner_text()
    shot(page, tmp_path / "session.png")
    charts = page.evaluate(_CHARTS_JS)
    assert len(charts) == 1 and charts[0]["points"] > 0 and charts[0]["painted"] > 500, charts
    assert page.locator("#events-table tbody tr").count() > 0


@pytest.mark.parametrize("kind", ["channel", "desktop", "endpoint"])
def test_session_timelines(page: Any, dash: Dash, kind: str) -> None:
    sign_in(page, dash.main_key)
    page.goto(f"/sessions?kind={kind}")
    page.locator("#sessions-table tbody tr td a").first.click()
    page.wait_for_url(re.compile(rf"/sessions/{kind}/"))
    page.wait_for_load_state("load")
    charts = page.evaluate(_CHARTS_JS)
    assert charts and all(c["points"] > 0 and c["painted"] > 500 for c in charts), charts


def test_another_projects_sessions_never_appear(page: Any, dash: Dash, problems: list[str]) -> None:
    sign_in(page, dash.main_key)
    for kind in KINDS:
        page.goto(f"/sessions?kind={kind}")
        html = page.content()
        assert not any(mark in html for mark in OTHER_MARKS), kind
    response = page.goto(f"/sessions/player/{OTHER_PLAYER}")
    assert response is not None and response.status == 404
    assert "Not found" in page.locator("h1").inner_text()
    problems[:] = [p for p in problems if "status of 404" not in p]  # that one was expected
    response = page.goto(f"/sessions?kind=channel&channel={OTHER_CHANNEL}")
    assert response is not None and response.status == 200
    assert page.locator("#sessions-table").count() == 0
    assert "No sessions match" in page.content()
