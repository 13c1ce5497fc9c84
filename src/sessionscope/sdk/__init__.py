"""The browser SDK, served at ``/sdk/sessionscope.js`` (classic script and ES module) and
``/sdk/sessionscope.mjs`` (named exports). Hand-written, dependency-free; see the README's
"Sending events from real sources"."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "install"]

#: The SDK's files.
STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Serve the SDK's files at ``/sdk``."""
    app.mount("/sdk", StaticFiles(packages=[("sessionscope.sdk", "static")]), name="sdk")
