"""The engine: clients of ClickHouse (embedded chDB or a server), query helpers, settings.

Times cross the driver as epoch milliseconds so the host's timezone never matters; Python sees
aware UTC datetimes only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from sessionscope.domain.events import epoch_ms
from sessionscope.security import SecretBox
from sessionscope.store import migrations
from sessionscope.store.migrations import MIGRATIONS
from sessionscope.store.schema import EngineProfile

__all__ = ["Engine", "StoreError", "ms", "to_dt"]


class StoreError(Exception):
    """Base of store errors (bad names, conflicts)."""


def ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return epoch_ms(t)


def to_dt(value: int) -> datetime:
    """Aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


#: Threads for ``query_all``: queries of one request that the engine can run side by side.
_READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-read")


class Engine:
    """One ClickHouse database: a client per thread, queries, commands and migrations."""

    def __init__(
        self, connect: Any, profile: EngineProfile, box: SecretBox, *, exclusive: bool = False
    ) -> None:
        """``exclusive``: this process is the only writer of the store (the embedded engine),
        so it may remember which event ids it stored (see :mod:`sessionscope.store.idfilter`).
        """
        self._connect = connect
        self.exclusive = exclusive
        self.profile = profile
        self._box = box
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        #: Guards the in-memory state of every part of the store (caches, filters, locks).
        self._meta_lock = threading.Lock()
        #: How long what is read of projects, keys and kinds is kept: an exclusive store sees
        #: every change (it makes them), so it keeps them longer; on a shared store, under 5 s,
        #: so that what another server revokes (a key, sign-in links) is refused here within 5 s.
        self._cache_s = 3600.0 if exclusive else 4.0
        self.insert_settings: dict[str, Any] = {
            # The engine enables async inserts by default; an acknowledged insert must already
            # be written, so insert synchronously and wait.
            "async_insert": 0,
            "wait_for_async_insert": 1,
        }
        if profile.cluster:
            self.insert_settings.update(
                {"insert_quorum": "auto", "distributed_foreground_insert": 1}
            )

    # ---------------------------------------------------------------- connection

    @property
    def client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._connect()
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                with contextlib.suppress(Exception):  # closing is best effort
                    client.close()
            self._clients.clear()
        self._local = threading.local()

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read query with server-side parameters; return its rows."""
        result = self.client.query(sql, parameters=dict(params or {}))
        return [tuple(r) for r in result.result_rows]

    def query_all(
        self, queries: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[list[tuple[Any, ...]]]:
        """Run read queries side by side (the engine works on each in its own thread); return
        their rows in order. For queries one request needs together."""
        if len(queries) < 2:
            return [self.query(sql, params) for sql, params in queries]
        futures = [_READS.submit(self.query, sql, params) for sql, params in queries]
        return [f.result() for f in futures]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.client.command(sql, parameters=dict(params or {}))

    # ---------------------------------------------------------------- migrations

    def applied_migrations(self) -> list[int]:
        """The schema versions applied to this store, in order."""
        return migrations.applied(self)

    def migrate(self, *, servers_stopped: bool = True, quiet_s: float = 0.0) -> list[str]:
        """Apply pending migrations in order (under the migration lock); return the names
        applied. On a shared store, a version that rebuilds a view's table applies only with
        ``servers_stopped`` and after ``quiet_s`` without a stored event
        (``migrations.MigrationRefused`` otherwise; see ``migrations.offline``)."""
        return migrations.migrate(
            self, MIGRATIONS, servers_stopped=servers_stopped, quiet_s=quiet_s
        )
