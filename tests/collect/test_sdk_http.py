"""The browser SDK's server side: the files, their size, CORS on ingest only, the key parameter."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from tests.conftest import Tenant

from sessionscope.sdk import STATIC

ORIGIN = {"Origin": "https://video.example.com"}


def minified_size(source: str) -> int:
    """The SDK's size without comments and whitespace (a space kept between two names): what
    a minifier leaves before it shortens names, so an upper bound of its output."""
    text = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
    text = re.sub(r"(?<=[\w$])\s+(?=[\w$])", "\0", text)
    return len(re.sub(r"\s+", "", text).replace("\0", " ").encode())


def test_sdk_is_small() -> None:
    assert minified_size((STATIC / "sessionscope.js").read_text()) < 8 * 1024


def test_sdk_is_served_to_any_origin(http: httpx.Client) -> None:
    for name in ("sessionscope.js", "sessionscope.mjs"):
        r = http.get(f"/sdk/{name}", headers=ORIGIN)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.text == (STATIC / name).read_text()


def test_ingest_preflight_is_answered(http: httpx.Client) -> None:
    r = http.options(
        "/api/v1/events",
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in r.headers


def test_cors_is_limited_to_ingest(http: httpx.Client, tenant: Tenant) -> None:
    for path in ("/api/v1/sessions?kind=player", "/api/v1/project", "/v1/sessionRecent"):
        r = http.options(path, headers={**ORIGIN, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in r.headers, path
        r = http.get(path, headers={**ORIGIN, **tenant.auth})
        assert "access-control-allow-origin" not in r.headers, path
    r = http.options(
        "/api/v1/events", headers={**ORIGIN, "Access-Control-Request-Method": "DELETE"}
    )
    assert r.status_code == 405


def _page_event(session: str) -> dict[str, object]:
    return {
        "id": f"{session}-1",
        "kind": "endpoint",
        "time": datetime.now(UTC).isoformat(),
        "type": "page",
        "session": session,
        "agent_id": "browser-1",
        "visited_site": "video.example.com",
        "protocol": "https",
        "port": 443,
        "source_addr": "0.0.0.0",
        "page_id": "p-1",
        "on_load_ms": 900,
        "response_code": 200,
    }


def test_key_as_query_parameter_on_ingest_only(http: httpx.Client, tenant: Tenant) -> None:
    body = httpx.Request("POST", "/", json=[_page_event("sdk-key-param")]).content
    r = http.post(
        "/api/v1/events",
        params={"key": tenant.api_key},
        content=body,
        headers={**ORIGIN, "Content-Type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 1, "duplicates": 0}
    assert r.headers["access-control-allow-origin"] == "*"
    again = http.post("/api/v1/events", params={"key": tenant.api_key}, content=body)
    assert again.json() == {"accepted": 0, "duplicates": 1}
    bad = http.post("/api/v1/events", params={"key": "ss_nope.nope"}, content=body, headers=ORIGIN)
    assert bad.status_code == 401
    assert bad.headers["access-control-allow-origin"] == "*"  # the page can read why
    # Reads never take a key from the URL.
    r = http.get("/api/v1/sessions", params={"kind": "endpoint", "key": tenant.api_key})
    assert r.status_code in (400, 401)
    assert http.get("/api/v1/project", params={"key": tenant.api_key}).status_code == 401
