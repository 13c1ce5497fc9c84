"""The dashboard's documentation keeps up with it: the README section, its screenshot, and
docs/dashboard.md naming every page and every path with HTML error pages."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from fastapi.routing import APIRoute

from sessionscope.dashboard.routes import PREFIXES, router

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "dashboard.md").read_text(encoding="utf-8")
SCREENSHOT = ROOT / "docs" / "img" / "overview.png"


def readme_section(title: str) -> str:
    found = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert found, f"README has no '## {title}' section"
    return found.group(1)


def test_the_readme_has_a_dashboard_section_with_the_overview_screenshot() -> None:
    section = readme_section("Dashboard")
    assert "make demo" in section and "sign-in link" in section
    assert "](docs/dashboard.md)" in section
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", section)
    assert "docs/img/overview.png" in [src for _, src in images], images
    assert all(alt.strip() for alt, _ in images)  # every image says what it shows


def test_the_overview_screenshot_is_a_whole_page_and_small() -> None:
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    # 1280 wide; the whole overview, all four sections, is far taller than one screen.
    assert width == 1280 and height > 3 * 900, (width, height)
    assert len(data) < 600 * 1024, len(data)


def test_the_guide_names_every_page_and_every_html_error_path() -> None:
    assert "draft" not in GUIDE.lower()
    assert "](img/overview.png)" in GUIDE
    for route in router.routes:
        assert isinstance(route, APIRoute)
        if "GET" in route.methods:
            path = route.path.replace(":path}", "}")
            assert f"`{path}" in GUIDE, f"docs/dashboard.md does not name {path}"
    for prefix in ("/", *PREFIXES):
        assert f"`{prefix}`" in GUIDE, f"docs/dashboard.md does not list {prefix} errors"
