"""The web dashboard: overview charts, session explorer, session pages, sign-in.

``install(app)`` adds its pages at ``/`` (and its static files at ``/static``); see ``routes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["install"]


def install(app: FastAPI) -> None:
    """Add the dashboard's routes, static files and HTML error pages to the app."""
    from sessionscope.dashboard.routes import install as install_routes

    install_routes(app)
