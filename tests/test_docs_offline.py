"""``/docs`` works offline: Swagger UI comes from the package, the page references nothing
outside this server, and every asset it names loads."""

from __future__ import annotations

import re

import httpx


def test_docs_reference_only_local_assets_and_they_load(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    html = page.text
    assert "SwaggerUIBundle" in html
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    assert urls, html
    remote = [u for u in urls if not u.startswith("/") or u.startswith("//")]
    assert not remote, f"/docs references other hosts: {remote}"
    assert not re.search(r"https?://", html), "an absolute URL in /docs"
    types = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}
    for url in urls:
        got = http.get(url)
        assert got.status_code == 200, url
        for suffix, kind in types.items():
            if url.endswith(suffix):
                assert kind in got.headers["content-type"], (url, got.headers["content-type"])
    bundle = http.get("/docs/assets/swagger-ui-bundle.js")
    assert len(bundle.content) > 100_000  # the real bundle, not a stub
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_redoc_sends_to_docs(http: httpx.Client) -> None:
    got = http.get("/redoc", follow_redirects=False)
    assert got.status_code in (302, 307) and got.headers["location"] == "/docs"


def test_docs_assets_do_not_serve_outside_their_directory(http: httpx.Client) -> None:
    for path in ("/docs/assets/../../app.py", "/docs/assets/%2e%2e/%2e%2e/etc/passwd"):
        assert http.get(path).status_code == 404
