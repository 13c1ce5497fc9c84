"""What every route needs: settings, the store, the session service and the ingest journal,
built once per app."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request

from sessionscope.api.attempts import FailedAttempts
from sessionscope.api.limits import BodyRefusals
from sessionscope.config import Settings
from sessionscope.ingest.ingestor import Ingestor
from sessionscope.service import SessionService
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["AppContext", "get_ctx"]


@dataclass(slots=True)
class AppContext:
    settings: Settings
    store: ClickHouseStore
    service: SessionService
    #: The write path: every route that stores events goes through it.
    ingestor: Ingestor
    #: The management API's credential (``management.admin_token``); empty: refused.
    admin_token: str = ""
    #: Refused credentials per client address (the dashboard's sign-in asks it directly).
    attempts: FailedAttempts = field(default_factory=lambda: FailedAttempts(0, 60))
    #: Refused bodies per client address (the ingest hot path asks it directly).
    body_refusals: BodyRefusals = field(default_factory=lambda: BodyRefusals(FailedAttempts(0, 60)))


async def get_ctx(request: Request) -> AppContext:
    """Dependency: the app's context (set up by the lifespan in ``app.create_app``); async, so
    FastAPI runs it on the event loop rather than in a worker thread."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx
