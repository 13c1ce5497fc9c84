"""ThousandEyes API v6, endpoint user sessions: a drop-in compatible API.

``GET``/``POST /v6/endpoint-data/user-sessions`` (also with ``.json`` and ``.xml``) lists the
endpoint sessions of an account group (a project) in a time range, page by page, filtered by a
``searchFilters`` body; ``GET /v6/endpoint-data/user-sessions/{userSessionId}`` answers one
session with its pages. Users authenticate with HTTP Basic ``email:token`` or a bearer token
(``sessionscope users create``); requests are rate limited per organisation.

This package only translates: it parses ThousandEyes' parameters, asks the session service for
endpoint sessions (metrics, scores and orgName rules live in the core), and shapes the answers
and errors the way ThousandEyes does, in JSON or XML. Decisions taken where the vendor is silent
are listed in ``docs/compat/thousandeyes.md``.

Modules: ``constants``, ``formats`` (JSON, XML, errors), ``access`` (users, account groups,
rate limits), ``params``, ``shapes`` and ``routes``.
"""

from __future__ import annotations

from fastapi import FastAPI

from sessionscope.api.errors import register_error_shape
from sessionscope.compat.thousandeyes.access import OrganizationRateLimiter, RateDecision
from sessionscope.compat.thousandeyes.constants import (
    DOMAIN_FILTER,
    FILTER_KEYS,
    PAGE_SIZE,
    PREFIX,
    RATE_LIMIT,
)
from sessionscope.compat.thousandeyes.demo import DEMO
from sessionscope.compat.thousandeyes.formats import thousandeyes_error
from sessionscope.compat.thousandeyes.routes import router
from sessionscope.compat.thousandeyes.shapes import round_id, user_session_id
from sessionscope.registry import Vendor

__all__ = [
    "DEMO",
    "DOMAIN_FILTER",
    "FILTER_KEYS",
    "PAGE_SIZE",
    "PREFIX",
    "RATE_LIMIT",
    "VENDOR",
    "OrganizationRateLimiter",
    "RateDecision",
    "install",
    "round_id",
    "router",
    "thousandeyes_error",
    "user_session_id",
]


def install(app: FastAPI) -> None:
    """Add the ThousandEyes routes to ``app`` and shape their errors the ThousandEyes way."""
    app.state.thousandeyes_limiter = OrganizationRateLimiter()
    app.include_router(router)
    register_error_shape(PREFIX, thousandeyes_error)


#: What this API adds to the core (registered by ``compat/__init__``): its rate-limit setting,
#: the ``domain`` filter, its part of the demo.
VENDOR = Vendor(
    "thousandeyes",
    install,
    settings=(RATE_LIMIT,),
    filters=(DOMAIN_FILTER,),
    demo=DEMO,
)
