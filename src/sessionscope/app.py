"""``create_app(settings) -> ASGI app``. Nothing is created at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from sessionscope import __version__, dashboard, registry, sdk
from sessionscope.api import admin, docs, metrics, native
from sessionscope.api.attempts import AttemptLimit, FailedAttempts
from sessionscope.api.context import AppContext
from sessionscope.api.cors import CrossOrigin
from sessionscope.api.errors import install_error_handlers
from sessionscope.api.guard import ConnectionGuard
from sessionscope.api.headers import SecurityHeaders
from sessionscope.api.hotpath import IngestHotPath
from sessionscope.api.limits import BodyLimit, BodyRefusals, RefusalBudget, RefusedBodies
from sessionscope.api.readafterwrite import ReadAfterWrite
from sessionscope.config import Settings
from sessionscope.heap import freeze_startup_objects
from sessionscope.ingest import Ingestor, open_ingestor
from sessionscope.logs import install_redaction
from sessionscope.management import admin_token, forget_server, record_server
from sessionscope.service import SessionService
from sessionscope.store.clickhouse import ClickHouseStore, open_store

__all__ = ["SessionscopeApp", "create_app"]

log = logging.getLogger("sessionscope")


class SessionscopeApp(FastAPI):
    """The FastAPI app, with the ingest hot path in front of its middleware stack (and, once
    that is built, in front of FastAPI's and Starlette's own handling of each request, which
    reads the environment for telemetry settings every time)."""

    def build_middleware_stack(self) -> ASGIApp:
        return IngestHotPath(super().build_middleware_stack(), self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.middleware_stack
        if self.root_path:  # as FastAPI does
            scope["root_path"] = self.root_path
        if isinstance(hot, IngestHotPath) and hot.serves(scope):
            scope["app"] = self  # as Starlette does
            await hot.serve(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    store: ClickHouseStore | None = None,
    ingestor: Ingestor | None = None,
    *,
    record_address: bool = False,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the app. With ``store`` (and ``ingestor``) given, the caller owns them; otherwise
    the lifespan opens (and migrates) the store the settings name, opens the data directory's
    ingest journal (loading what it still holds before the first request), and closes both on
    shutdown. ``record_address``: while it runs, say in the data directory where it listens
    (``server.json``, for the CLI's management commands: ``management.record_server``).
    ``freeze_heap``: once started, leave what start-up built out of garbage collection
    (``heap.freeze_startup_objects``: for the server's process)."""

    # Credentials may ride in URLs (a callback URL with an API key, a sign-in link): keep them
    # out of the access log. Again at startup, once the server has configured its logging.
    install_redaction()
    # One table of refused credentials per app: the middleware and the dashboard's sign-in.
    attempts = FailedAttempts(settings.auth_failure_limit, settings.auth_failure_window_s)
    # And of refused bodies: the middleware and the ingest hot path.
    body_refusals = BodyRefusals(
        FailedAttempts(
            settings.body_refusal_limit, settings.body_refusal_window_s, what="request bodies"
        ),
        budget=RefusalBudget(settings.refusal_budget_per_s),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_redaction()
        st = open_store(settings) if store is None else store
        ing = open_ingestor(settings, st) if ingestor is None else ingestor
        app.state.ctx = AppContext(
            settings,
            st,
            SessionService(st),
            ing,
            admin_token(settings.data_dir),
            attempts,
            body_refusals,
        )
        if record_address:
            record_server(settings.data_dir, settings.host, settings.port)
        if freeze_heap:
            freeze_startup_objects()
        try:
            yield
        finally:
            if record_address:
                forget_server(settings.data_dir)
            if ingestor is None:
                ing.close()  # loads what was acknowledged first
            if store is None:
                st.close()

    app = SessionscopeApp(
        title="sessionscope",
        version=__version__,
        description="Session analytics: collect events, build sessions, serve them.",
        lifespan=lifespan,
        # Served from the package's own copy of Swagger UI (no CDN): see ``api.docs``.
        docs_url=None,
        redoc_url=None,
    )
    if store is not None and ingestor is not None:
        # Usable without running the lifespan (e.g. in-process clients that skip it).
        app.state.ctx = AppContext(
            settings,
            store,
            SessionService(store),
            ingestor,
            admin_token(settings.data_dir),
            attempts,
            body_refusals,
        )
    # What the HTTP protocol of ``serve`` decides before the app (``api.server.uvicorn_options``),
    # with the app's refused bodies; ``/metrics`` counts what it refused.
    app.state.connection_guard = ConnectionGuard(settings, body_refusals)
    install_error_handlers(app)
    app.add_middleware(ReadAfterWrite)
    # No body past the largest any route takes (a gzip body of the ingest limit).
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_request_bytes,
        timeout_s=settings.body_timeout_s,  # 2 minutes by default
    )
    # Preflights are answered before the routes (ingest and the SDK only).
    app.add_middleware(CrossOrigin)
    # Credential guessing: past the limit of 401s, an address's new credentials get a 429
    # here, before any route (or body) is read.
    app.add_middleware(AttemptLimit, attempts=attempts)
    # Resource abuse: an address whose bodies keep being refused (413, 408) is slowed down.
    app.add_middleware(RefusedBodies, refusals=body_refusals)
    app.add_middleware(SecurityHeaders)
    # Outermost: every answer is counted and timed (a read's time includes its wait for the
    # loader).
    metrics.install(app, log_json=settings.log_format == "json")
    native.install(app)
    admin.install(app)
    # Each vendor-compatible API (as registered by `compat`) and the dashboard:
    # `install(app)` adds its routes and registers its error shape.
    for vendor in registry.vendors():
        vendor.install(app)
    dashboard.install(app)
    sdk.install(app)
    docs.install(app)
    return app
