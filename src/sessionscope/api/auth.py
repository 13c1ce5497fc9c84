"""Native API authentication: ``Authorization: Bearer <project API key>``, and key scopes.

A key's scope says what it may do (``domain.accounts.allows``): ``ingest`` keys only send
events, ``read`` keys only read, ``full`` keys both. Every API family asks
:func:`project_for_key` with what the route needs; a valid key outside its scope gets a 403
(``ApiError``, shaped by the family's error formatter), an unknown or revoked one None (each
family words its own 401).
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError
from sessionscope.api.metrics import note_project
from sessionscope.domain.accounts import KeyGrant, Project, allows

__all__ = [
    "bearer_project",
    "check_scope",
    "forbidden",
    "ingest_project",
    "key_grant",
    "project_for_key",
]

_VERBS = {"ingest": "send events", "read": "read"}


def forbidden(scope: str, need: str, what: str = "API key") -> ApiError:
    """The 403 of a key used outside its scope."""
    return ApiError(
        403,
        "forbidden",
        f"this {what} has scope {scope!r}: it cannot {_VERBS.get(need, need)} "
        f"(use a key with scope {need!r} or 'full')",
    )


def check_scope(scope: str, need: str, what: str = "API key") -> None:
    """Raise the 403 unless a key of ``scope`` may do ``need``."""
    if not allows(scope, need):
        raise forbidden(scope, need, what)


def key_grant(ctx: AppContext, key: str | None) -> KeyGrant | None:
    """What an API key grants (its project and scope), or None when unknown or revoked."""
    if not key:
        return None
    return ctx.store.key_grant(key.strip())


def project_for_key(ctx: AppContext, key: str | None, need: str) -> Project | None:
    """The project of an API key that may do ``need`` (``ingest`` or ``read``); None when the
    key is not valid; a 403 when it is, outside its scope."""
    grant = key_grant(ctx, key)
    if grant is None:
        return None
    check_scope(grant.scope, need)
    return grant.project


async def bearer_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency of the native reads: the project of the request's bearer API key (a 401
    without a valid one, a 403 for an ingest key)."""
    return await _bearer(request, ctx, "read")


async def _bearer(request: Request, ctx: AppContext, need: str) -> Project:
    """The project of the bearer API key, which must allow ``need``.

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
    return await _project(request, ctx, token, need)


async def ingest_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Project:
    """Dependency of the ingest route only: the bearer key, or else a ``key`` query parameter;
    an ingest or full key (a read key gets a 403).

    Browsers need the parameter: ``navigator.sendBeacon`` cannot set a header, and a request
    without one needs no CORS preflight. No other route reads a key from the URL (where it
    shows in logs and histories; the access log redacts it)."""
    if "authorization" in request.headers or "key" not in request.query_params:
        return await _bearer(request, ctx, "ingest")
    key = request.query_params["key"]
    if not key.strip():
        raise ApiError(
            401,
            "unauthorized",
            "parameter key: must be an API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await _project(request, ctx, key, "ingest")


async def _project(request: Request, ctx: AppContext, token: str, need: str) -> Project:
    grant = ctx.store.remembered_api_key(token.strip())
    if grant is None:
        grant = await run_in_threadpool(key_grant, ctx, token)
    if grant is None:
        raise ApiError(
            401, "unauthorized", "API key is not valid", headers={"WWW-Authenticate": "Bearer"}
        )
    note_project(request, grant.project.id)
    check_scope(grant.scope, need)
    return grant.project
