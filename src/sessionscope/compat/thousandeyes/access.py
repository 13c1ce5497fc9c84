"""Who may ask: users (HTTP Basic or bearer tokens), account groups, rate limits per
organisation."""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from sessionscope.api.auth import key_grant
from sessionscope.api.context import AppContext
from sessionscope.api.errors import ApiError
from sessionscope.api.metrics import note_project
from sessionscope.compat.thousandeyes.constants import _AID, _STATE_HEADERS, RATE_LIMIT
from sessionscope.compat.thousandeyes.formats import _bad, _unauthorized
from sessionscope.domain.accounts import Project, User, allows
from sessionscope.security import split_api_key

# ------------------------------------------------------------------------------ rate limit


@dataclass(frozen=True, slots=True)
class RateDecision:
    """One request's place in its organisation's window."""

    allowed: bool
    limit: int
    remaining: int
    #: Epoch seconds when the window rolls over.
    reset: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Organization-Rate-Limit-Limit": str(self.limit),
            "X-Organization-Rate-Limit-Remaining": str(self.remaining),
            "X-Organization-Rate-Limit-Reset": str(self.reset),
        }


class OrganizationRateLimiter:
    """Fixed windows per key: a window opens at a key's first request (its whole second) and
    lasts a minute.

    State is in this process: with several servers behind a load balancer, each server
    limits on its own.
    """

    def __init__(self, clock: Callable[[], float] = time.time, window_s: float = 60.0) -> None:
        self._clock = clock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    def hit(self, key: tuple[str, str], limit: int) -> RateDecision:
        """Count one request of ``key``; say whether it is within ``limit`` for the window."""
        with self._lock:
            now = self._clock()
            # A window opens at the whole second of its first request, so its reset (epoch
            # seconds) is at most a window after any answer's ``Date`` (whole seconds too).
            opened = float(math.floor(now))
            start, count = self._windows.get(key, (opened, 0))
            if now >= start + self._window_s:
                start, count = opened, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 10_000:
                self._prune(now)
        reset = math.ceil(start + self._window_s)
        return RateDecision(count <= limit, limit, max(0, limit - count), reset)

    def _prune(self, now: float) -> None:
        expired = [k for k, (s, _) in self._windows.items() if now >= s + self._window_s]
        for k in expired:
            del self._windows[k]


def _limiter(request: Request) -> OrganizationRateLimiter:
    limiter = getattr(request.app.state, "thousandeyes_limiter", None)
    if not isinstance(limiter, OrganizationRateLimiter):
        limiter = OrganizationRateLimiter()
        request.app.state.thousandeyes_limiter = limiter
    return limiter


def _count(request: Request, ctx: AppContext, key: tuple[str, str]) -> None:
    """Count the request against ``key``; keep the headers for the answer; 429 beyond."""
    decision = _limiter(request).hit(key, ctx.settings.vendor(RATE_LIMIT))
    setattr(request.state, _STATE_HEADERS, decision.headers())
    if not decision.allowed:
        wait = max(1, decision.reset - int(time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit of {decision.limit} requests a minute exceeded for the organization; "
            f"retry after X-Organization-Rate-Limit-Reset ({decision.reset})",
            headers={"Retry-After": str(wait)},
        )


# ------------------------------------------------------------------------------ auth

_MAKE_USER = "sessionscope users create EMAIL --project NAME"


def _user(request: Request, ctx: AppContext) -> User | None:
    """The user of the request's credentials; None when absent; 401 when malformed."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("Authorization: Basic credentials are not base64") from None
        email, sep, token = decoded.partition(":")
        if not sep or not email or not token:
            raise _unauthorized("Authorization: Basic credentials must be email:token")
        return ctx.store.verify_user(email, token) or _key_user(ctx, token)
    if scheme.lower() == "bearer":
        return ctx.store.user_by_token(credentials) or _key_user(ctx, credentials)
    return None


def _key_user(ctx: AppContext, token: str) -> User | None:
    """A project API key given as the token is no ThousandEyes credential (users are): an
    ``ingest`` key, which may not read anywhere, gets the 403 of a key outside its scope (as
    in every API family); a key that may read gets a 401 saying what to use instead. None when
    the token is not a live API key.

    Users' tokens never look like API keys, so only a token shaped like one is looked up.
    """
    if split_api_key(token.strip()) is None:
        return None
    grant = key_grant(ctx, token)
    if grant is None:
        return None
    if not allows(grant.scope, "read"):
        raise ApiError(
            403,
            "forbidden",
            f"this API key has scope {grant.scope!r}: it cannot read; the ThousandEyes API "
            f"takes a user's email and token (make one with: {_MAKE_USER})",
        )
    raise _unauthorized(
        "Authorization: a project API key is not a ThousandEyes credential; use a user's "
        f"email and token (make one with: {_MAKE_USER})"
    )


def _organization_key(ctx: AppContext, user: User, project: Project | None) -> tuple[str, str]:
    """The budget a request of ``user`` about ``project`` counts against.

    It is the organisation of the account group asked about, so that every user and every
    account group of one organisation share one budget; a project without an organisation is
    an organisation of its own, named after the project (as ``projects list`` shows it).
    Without an account group (``aid`` refused, or an unknown path) the user's default account
    group's organisation pays, never the one a refused ``aid`` names.
    """
    if project is None:
        project = ctx.store.get_project(user.project_ids[0]) if user.project_ids else None
    if project is None:
        return ("user", user.email)
    return ("organization", project.organization or project.name)


def _authenticate(request: Request, ctx: AppContext) -> User:
    """Authenticate the request; a failed attempt is counted against the client's address.

    A successful one is counted by :func:`_authorize` once its account group is known.
    """
    try:
        user = _user(request, ctx)
    except ApiError:
        _count(request, ctx, ("address", request.client.host if request.client else ""))
        raise
    if user is None:
        _count(request, ctx, ("address", request.client.host if request.client else ""))
        if request.headers.get("authorization", "").strip():
            raise _unauthorized(
                "Authorization: the email and token (or bearer token) are not valid"
            )
        raise _unauthorized(
            "Authorization: required, as HTTP Basic email:token or 'Bearer <token>' "
            f"(make a token with: {_MAKE_USER})"
        )
    return user


def _authorize(
    request: Request, ctx: AppContext, user: User, aid: Callable[[], str | None]
) -> Project:
    """Resolve the account group (``aid()``), then count the request against its organisation.

    When ``aid()`` or the account group is refused, the request still counts, against the
    user's default account group, and the refusal carries the rate-limit headers.
    """
    try:
        project = _account_group(ctx, user, aid())
    except ApiError:
        _count(request, ctx, _organization_key(ctx, user, None))
        raise
    _count(request, ctx, _organization_key(ctx, user, project))
    note_project(request, project.id)
    return project


def _account_group(ctx: AppContext, user: User, aid: str | None) -> Project:
    """The project ``aid`` names (400 when invalid, 403 when not the user's), or the default."""
    if aid is None or not aid.strip():
        project_id = user.project_ids[0] if user.project_ids else 0
        project = ctx.store.get_project(project_id) if project_id else None
        if project is None:
            raise ApiError(403, "forbidden", "aid: the user has no account group")
        return project
    text = aid.strip()
    if not _AID.fullmatch(text):
        raise _bad("aid", f"must be the numeric id of an account group, not {text[:20]!r}")
    project_id = int(text)
    project = ctx.store.get_project(project_id) if project_id < 2**32 else None
    if project is None:
        raise _bad("aid", f"there is no account group {project_id}")
    if project_id not in user.project_ids:
        raise ApiError(
            403, "forbidden", f"aid: the user is not assigned to account group {project_id}"
        )
    return project
