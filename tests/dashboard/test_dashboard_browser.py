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
from sessionscope.service import SessionQuery, SessionService
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

# For each chart on the page, read from its Chart.js object: how many values it holds
# (``points``), how many of them are more than zero (``nonzero``: a bar's length, a span's
# duration; a timeline mark counts), and how many were drawn as something visible
# (``drawn``: a bar at least a pixel long, a line point off the zero line, a mark inside the
# plot). Axes, labels and a flat line at zero count for none of them. For time axes,
# ``edges`` is how far the axis' first and last instants are from the plot's sides.
_CHARTS_JS = """
() => Array.from(document.querySelectorAll('canvas[data-chart]')).map((c) => {
  const chart = Chart.getChart(c);
  const out = {
    id: c.id,
    section: c.closest('section') ? c.closest('section').id : '',
    points: 0, nonzero: 0, drawn: 0, edges: null, integerTicks: null,
  };
  if (!chart) { return out; }
  const area = chart.chartArea;
  const y = chart.scales.y;
  const zero = y && y.type === 'linear' ? y.getPixelForValue(0) : null;
  chart.data.datasets.forEach((d, i) => {
    const meta = chart.getDatasetMeta(i);
    const horizontal = (d.indexAxis || chart.options.indexAxis) === 'y';
    d.data.forEach((v, j) => {
      if (v === null || v === undefined) { return; }
      out.points += 1;
      const size = typeof v === 'number' ? v : (Array.isArray(v.x) ? v.x[1] - v.x[0] : 1);
      if (size > 0) { out.nonzero += 1; }
      const el = meta.data[j];
      if (!el) { return; }
      const p = el.getProps(['x', 'y', 'base'], true);
      if (el.constructor.id === 'bar') {
        if (Math.abs((horizontal ? p.x : p.y) - p.base) >= 1) { out.drawn += 1; }
      } else if (d.type === 'scatter') {
        if (p.x >= area.left && p.x <= area.right && p.y >= area.top && p.y <= area.bottom) {
          out.drawn += 1;
        }
      } else if (zero !== null && Math.abs(p.y - zero) >= 1) {
        out.drawn += 1;
      }
    });
  });
  const x = chart.scales.x;
  if (x && x.type === 'linear' && chart.options.scales.x.min !== undefined) {
    out.edges = [x.getPixelForValue(x.min) - area.left, area.right - x.getPixelForValue(x.max)];
  }
  if (y && y.type === 'linear') {
    out.integerTicks = y.ticks.every((t) => Number.isInteger(t.value));
  }
  return out;
})
"""

# The bars of one dataset of a chart, and how many of them show that dataset's stripes on
# the canvas (dark orange pixels: red high, blue low), i.e. are not painted over.
_STRIPES_JS = """
([id, label]) => {
  const c = document.getElementById(id);
  const chart = Chart.getChart(c);
  const i = chart.data.datasets.findIndex((d) => d.label === label);
  const ctx = c.getContext('2d');
  const r = window.devicePixelRatio || 1;
  let shown = 0;
  const bars = chart.getDatasetMeta(i).data;
  bars.forEach((el) => {
    const p = el.getProps(['x', 'y', 'base', 'height'], true);
    const x0 = Math.round(Math.min(p.x, p.base) * r), x1 = Math.round(Math.max(p.x, p.base) * r);
    const y0 = Math.round((p.y - p.height / 2) * r), y1 = Math.round((p.y + p.height / 2) * r);
    if (x1 - x0 < 2 || y1 - y0 < 2) { return; }
    const px = ctx.getImageData(x0, y0, x1 - x0, y1 - y0).data;
    for (let k = 0; k < px.length; k += 4) {
      if (px[k] > 150 && px[k + 2] < 100) { shown += 1; return; }
    }
  });
  return { bars: bars.length, shown: shown };
}
"""

# Dark pixels in the band just above a chart's plot area (where reference-line labels go),
# and inside the plot area's first row of bars.
_LABEL_BAND_JS = """
(id) => {
  const c = document.getElementById(id);
  const chart = Chart.getChart(c);
  const a = chart.chartArea;
  const r = window.devicePixelRatio || 1;
  const px = c.getContext('2d').getImageData(
    Math.round(a.left * r), Math.round((a.top - 18) * r),
    Math.round((a.right - a.left) * r), Math.round(16 * r)).data;
  let dark = 0;
  for (let k = 0; k < px.length; k += 4) {
    if (px[k + 3] > 200 && px[k] < 90 && px[k + 1] < 90 && px[k + 2] < 90) { dark += 1; }
  }
  return { dark: dark, legend: chart.options.plugins.legend.position };
}
"""


def check_charts(charts: list[dict[str, Any]]) -> None:
    """Every chart holds values that are not all zero and drew them; time axes span exactly
    their range."""
    assert charts
    for c in charts:
        assert c["points"] > 0 and c["nonzero"] > 0, c
        assert c["drawn"] > 0, c
        if c["edges"] is not None:
            assert all(abs(e) <= 1 for e in c["edges"]), c


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
    check_charts(charts)
    by_id = {c["id"]: c for c in charts}
    # Counts of users and sessions have whole-number axes.
    assert by_id["chart-desktop-active"]["integerTicks"] is True
    assert by_id["chart-player-sessions"]["integerTicks"] is True
    # Recording periods are drawn over the publish periods that hold them, not under.
    recordings = page.evaluate(_STRIPES_JS, ["chart-channel-periods", "Recording"])
    assert recordings["bars"] > 0 and recordings["shown"] == recordings["bars"], recordings
    # ERROR events are red crosses (not a colour shared with other series).
    marks = page.evaluate(
        """() => Chart.getChart(document.getElementById('chart-channel-periods')).data.datasets
            .filter((d) => d.label === 'ERROR event')
            .map((d) => [d.pointStyle, d.backgroundColor])"""
    )
    assert marks == [["crossRot", "#C0102A"]], marks
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
    assert len(charts) == 1, charts
    check_charts(charts)
    assert page.locator("#events-table tbody tr").count() > 0


@pytest.mark.parametrize("kind", ["channel", "desktop", "endpoint"])
def test_session_timelines(page: Any, dash: Dash, kind: str) -> None:
    sign_in(page, dash.main_key)
    page.goto(f"/sessions?kind={kind}")
    page.locator("#sessions-table tbody tr td a").first.click()
    page.wait_for_url(re.compile(rf"/sessions/{kind}/"))
    page.wait_for_load_state("load")
    charts = page.evaluate(_CHARTS_JS)
    check_charts(charts)
    if kind == "endpoint":
        # The threshold lines' labels sit above the bars, the legend below them.
        band = page.evaluate(_LABEL_BAND_JS, "chart-session-pages")
        assert band["dark"] > 20 and band["legend"] == "bottom", band


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


def _sessions(store: ClickHouseStore, dash: Dash, kind: str) -> list[Any]:
    query = SessionQuery(kind, None, None, {}, 1000, None)
    return list(SessionService(store).list_sessions(dash.main, query).sessions)


def test_a_long_desktop_session_stays_a_readable_height(
    page: Any, dash: Dash, store: ClickHouseStore, tmp_path: Path
) -> None:
    """Consecutive activity of one app is one row (it was a row per event: 3,765 px for one
    session of the demo), which opens to list its events."""
    service = SessionService(store)
    counts: dict[str, int] = {}
    for s in _sessions(store, dash, "desktop"):
        found = service.get_session(dash.main, "desktop", str(s.session))
        assert found is not None
        counts[str(s.session)] = len(found[1])
    key = max(counts, key=lambda k: counts[k])
    events = counts[key]
    assert events > 100  # a working day of activity every few minutes
    sign_in(page, dash.main_key)
    page.goto(f"/sessions/desktop/{key}")
    page.wait_for_load_state("load")
    shot(page, tmp_path / "desktop-session.png")
    rows = page.locator("#events-table > tbody > tr")
    height = page.evaluate("document.documentElement.scrollHeight")
    assert rows.count() * 2 <= events, (rows.count(), events)
    assert height < 3000, (height, rows.count(), events)
    # Every event is still there, in its row's details.
    runs = page.locator("#events-table details.run")
    counted = page.eval_on_selector_all(
        "#events-table > tbody > tr",
        "rows => rows.map(r => Number((r.cells[1].textContent.split('×')[1] || '1').trim()))",
    )
    assert sum(counted) == events
    assert runs.count() > 0
    row = page.locator("#events-table > tbody > tr:has(details.run)").first
    listed = row.locator("details.run li")
    assert not listed.first.is_visible()  # closed until asked
    row.locator("details.run summary").click()
    assert listed.first.is_visible()
    assert row.locator("td").nth(1).inner_text() == f"activity × {listed.count()}"


# Where each error mark of the session timeline is drawn: the label of the row nearest to it.
_ERROR_ROWS_JS = """
() => {
  const chart = Chart.getChart(document.getElementById('chart-session-timeline'));
  const y = chart.scales.y;
  const ticks = y.ticks.map((t, i) => [chart.data.labels[t.value], y.getPixelForTick(i)]);
  const legend = chart.legend.legendItems.map((item) => item.text);
  const out = [];
  chart.data.datasets.forEach((d, i) => {
    if (d.label !== 'error') { return; }
    chart.getDatasetMeta(i).data.forEach((el) => {
      const at = el.getProps(['y'], true).y;
      out.push(ticks.reduce((a, b) => (Math.abs(b[1] - at) < Math.abs(a[1] - at) ? b : a))[0]);
    });
  });
  return { rows: out, legend: legend };
}
"""


def test_a_player_error_is_on_the_row_its_legend_names(
    page: Any, dash: Dash, store: ClickHouseStore
) -> None:
    failed = [s for s in _sessions(store, dash, "player") if s.metrics.errors]
    assert failed
    sign_in(page, dash.main_key)
    page.goto(f"/sessions/player/{failed[0].session}")
    page.wait_for_load_state("load")
    drawn = page.evaluate(_ERROR_ROWS_JS)
    assert "error" in drawn["legend"]
    assert drawn["rows"] and set(drawn["rows"]) == {"error"}, drawn


_CUT_PLACEHOLDERS_JS = """
() => Array.from(document.querySelectorAll('form.filters input[placeholder]')).filter((el) => {
  const style = getComputedStyle(el);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = style.font;
  const room = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return ctx.measureText(el.placeholder).width > room || el.scrollWidth > el.clientWidth;
}).map((el) => el.id + ': ' + el.placeholder)
"""


def test_explorer_placeholders_are_whole(page: Any, dash: Dash) -> None:
    sign_in(page, dash.main_key)
    for kind in KINDS:
        page.goto(f"/sessions?kind={kind}")
        assert page.locator("form.filters input[placeholder]").count() >= 3
        assert page.evaluate(_CUT_PLACEHOLDERS_JS) == [], kind
