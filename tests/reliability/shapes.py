"""What an answer of each API family looks like when it is an error (see each family's
``register_error_shape``, and docs/reliability.md)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter

import httpx

from sessionscope.compat.ncp_vpe import PREFIXES as VPE_PREFIXES
from sessionscope.dashboard.routes import PREFIXES as DASHBOARD_PREFIXES

#: Answers checked in this run, by (category, family, status class): the figures of
#: docs/reliability.md (``make reliability``).
TALLY: Counter[tuple[str, str, str]] = Counter()

FAMILIES = ("native", "vpe", "livestation", "ekran", "thousandeyes", "dashboard")


def family(path: str) -> str:
    if path.startswith("/api/v2/"):
        return "livestation"
    if path.startswith(VPE_PREFIXES):
        return "vpe"
    if path.startswith("/ekranapi"):
        return "ekran"
    if path.startswith("/v6/"):
        return "thousandeyes"
    if path == "/" or path.startswith(DASHBOARD_PREFIXES):
        return "dashboard"
    return "native"


def check_answer(
    response: httpx.Response, category: str = "fuzz", allowed: tuple[int, ...] = ()
) -> None:
    """Never a 5xx (but those ``allowed``); an error is in its family's documented shape."""
    request = response.request
    TALLY[(category, family(request.url.path), f"{response.status_code // 100}xx")] += 1
    where = f"{request.method} {request.url.raw_path.decode(errors='replace')[:300]}"
    status = response.status_code
    assert status < 500 or status in allowed, f"{where}: {status} {response.text[:500]}"
    if response.status_code < 400:
        return
    kind = family(request.url.path)
    text = response.text[:500]
    if kind == "dashboard":
        assert response.headers["content-type"].startswith("text/html"), f"{where}: {text}"
        return
    if kind == "thousandeyes" and "xml" in response.headers.get("content-type", ""):
        root = ET.fromstring(response.content)
        assert root.tag == "error" and root.findtext("errorMessage"), f"{where}: {text}"
        return
    assert "json" in response.headers.get("content-type", ""), f"{where}: {text}"
    body = response.json()
    if kind == "native":
        assert set(body) == {"error"}, f"{where}: {text}"
        assert isinstance(body["error"]["code"], str) and body["error"]["message"], where
    elif kind in ("vpe", "livestation"):
        assert set(body) == {"error"} and set(body["error"]) == {"errorCode", "message"}, where
        assert body["error"]["errorCode"].isdigit() and body["error"]["message"], where
    elif kind == "ekran":
        assert {"type", "title", "status", "detail"} <= set(body), f"{where}: {text}"
        assert body["status"] == response.status_code, where
    else:
        assert set(body) == {"errorMessage"} and body["errorMessage"], f"{where}: {text}"
