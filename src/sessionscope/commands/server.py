"""Serving and migrating the store."""

from __future__ import annotations

from typing import Annotated

import typer

from sessionscope.commands.common import (
    DataDir,
    LogFormat,
    console,
    fail,
    opened_store,
    run_server,
    settings_for,
    stopped_by_signals,
)
from sessionscope.store.migrations import QUIET_S, MigrationRefused

__all__ = ["migrate", "serve"]


# ---------------------------------------------------------------------------- server


def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL users reach.")] = None,
    log_format: LogFormat = None,
) -> None:
    """Serve the API and dashboard."""
    settings = settings_for(
        data_dir, host=host, port=port, public_url=public_url, log_format=log_format
    )
    # Opened here, not in the app's lifespan: a data directory in use fails in one line.
    with stopped_by_signals(), opened_store(settings) as store:
        run_server(settings, store)


def migrate(data_dir: DataDir = None) -> None:
    """Apply pending schema migrations (also done at every start, except, on a shared
    ClickHouse, those that rebuild tables: run this with every server stopped)."""
    with opened_store(settings_for(data_dir), migrate=False) as store:
        try:
            # Said here, by the operator: every server is stopped. Still refused while events
            # arrive (one was forgotten).
            applied = store.migrate(servers_stopped=True, quiet_s=QUIET_S)
        except MigrationRefused as exc:
            raise fail(str(exc)) from None
        for name in applied:
            console.print(f"applied {name}")
        console.print(f"schema at version {max(store.applied_migrations(), default=0)}")
