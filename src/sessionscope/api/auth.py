"""Native API authentication: ``Authorization: Bearer <project API key>``."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError
from sessionscope.api.metrics import note_project
from sessionscope.domain.accounts import Project

__all__ = ["bearer_project", "ingest_project", "project_for_key"]


def project_for_key(ctx: AppContext, key: str | None) -> Project | None:
    """The project an API key belongs to, or None."""
    if not key:
        return None
    return ctx.store.verify_api_key(key.strip())


async def bearer_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency: the project of the request's bearer API key, or a 401.

    A key accepted lately is known from memory, on the event loop; any other is checked
    against the store in a worker thread."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Authorization header must be 'Bearer <api key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await _project(request, ctx, token)


async def ingest_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency of the ingest route only: the bearer key, or else a ``key`` query parameter.

    Browsers need the parameter: ``navigator.sendBeacon`` cannot set a header, and a request
    without one needs no CORS preflight. No other route reads a key from the URL (where it
    shows in logs and histories; the access log redacts it). When keys get scopes, this is
    the place to accept only ingest keys here."""
    if "authorization" in request.headers or "key" not in request.query_params:
        return await bearer_project(request, ctx)
    key = request.query_params["key"]
    if not key.strip():
        raise ApiError(
            401,
            "unauthorized",
            "parameter key: must be an API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await _project(request, ctx, key)


async def _project(request: Request, ctx: AppContext, token: str) -> Project:
    project = ctx.store.remembered_api_key(token.strip())
    if project is None:
        project = await run_in_threadpool(project_for_key, ctx, token)
    if project is None:
        raise ApiError(
            401, "unauthorized", "API key is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    note_project(request, project.id)
    return project
