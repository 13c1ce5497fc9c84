"""The one store: ClickHouse through clickhouse-connect, embedded (chDB) or a server/cluster.

:class:`ClickHouseStore` is composed of one part per concern, each in its own module:

- :mod:`~sessionscope.store.engine`: clients, queries, commands, insert settings, migrations;
- :mod:`~sessionscope.store.accounts`: projects, keys and users;
- :mod:`~sessionscope.store.events`: event reads and the kinds stored;
- :mod:`~sessionscope.store.writes`: the writer (deduplicated blocks, id filter, session starts);
- :mod:`~sessionscope.store.sessions`: session aggregates, one spec per kind;
- :mod:`~sessionscope.store.series`: time series and breakdowns over a range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect

from sessionscope.config import Settings
from sessionscope.security import SecretBox
from sessionscope.store.accounts import Accounts
from sessionscope.store.engine import StoreError
from sessionscope.store.schema import EngineProfile
from sessionscope.store.series import Series
from sessionscope.store.sessions import SessionReads
from sessionscope.store.writes import Writes, columns_table, event_table

__all__ = ["ClickHouseStore", "columns_table", "event_table", "open_store"]


class ClickHouseStore(Accounts, Writes, SessionReads, Series):
    """Events, session aggregates, projects and credentials in ClickHouse."""


def open_store(settings: Settings, *, migrate: bool = True) -> ClickHouseStore:
    """Open the store the settings name (embedded by default) and apply migrations."""
    if not settings.secret_key:
        raise StoreError("settings.secret_key is empty (load settings with load_settings)")
    box = SecretBox(settings.secret_key)
    profile = EngineProfile(cluster=settings.clickhouse_cluster, fsync=settings.fsync_inserts)
    if settings.embedded:
        path = Path(settings.data_dir) / "clickhouse"
        path.mkdir(parents=True, exist_ok=True)

        def connect() -> Any:
            return clickhouse_connect.get_client(interface="chdb", path=str(path))

    else:
        url = settings.clickhouse_url

        def connect() -> Any:
            return clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)

    store = ClickHouseStore(connect, profile, box, exclusive=settings.embedded)
    if migrate:
        # Starting: other servers may run on a shared store, so a version that rebuilds a
        # view's table is left to `sessionscope migrate` (MigrationRefused says so).
        store.migrate(servers_stopped=settings.embedded)
    return store
