"""Serving and migrating the store."""

from __future__ import annotations

from typing import Annotated

import typer

from sessionscope.commands.common import (
    DataDir,
    console,
    opened_store,
    settings_for,
)

__all__ = ["migrate", "serve"]


# ---------------------------------------------------------------------------- server


def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL users reach.")] = None,
) -> None:
    """Serve the API and dashboard."""
    import uvicorn

    from sessionscope.app import create_app

    settings = settings_for(data_dir, host=host, port=port, public_url=public_url)
    # Opened here, not in the app's lifespan: a data directory in use fails in one line.
    with opened_store(settings) as store:
        asgi = create_app(settings, store=store)
        uvicorn.run(
            asgi,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
        )


def migrate(data_dir: DataDir = None) -> None:
    """Apply pending schema migrations (also done at every start)."""
    with opened_store(settings_for(data_dir), migrate=False) as store:
        applied = store.migrate()
        for name in applied:
            console.print(f"applied {name}")
        console.print(f"schema at version {max(store.applied_migrations(), default=0)}")
