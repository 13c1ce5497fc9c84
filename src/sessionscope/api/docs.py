"""``/docs``: Swagger UI served from the package (the ``swagger-ui-bundle-v2`` wheel), so the
API documentation works without internet access; FastAPI's default loads it from a CDN.

``/docs/assets/<file>`` serves the Swagger UI distribution's files; the page references
nothing else (its Content-Security-Policy allows only this server).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["ASSETS", "install"]

#: Where the page loads its assets from.
ASSETS = "/docs/assets"

#: Swagger UI runs one inline script (its start-up call, written by FastAPI) and inline styles.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets (the app is made with ``docs_url=None``); ``/redoc``
    (which needs a CDN) sends to ``/docs``."""
    assert app.openapi_url is not None
    openapi_url = app.openapi_url
    title = f"{app.title} - API documentation"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
        page.headers["Content-Security-Policy"] = _CSP
        page.headers["X-Content-Type-Options"] = "nosniff"
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> RedirectResponse:
        return RedirectResponse("/docs")

    app.mount(ASSETS, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")
