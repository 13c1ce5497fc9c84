"""Schema migrations: one frozen module of SQL per version, and the runner that applies them.

A migration is never edited once released (``tests/store/test_store_schema.py`` pins the SQL
of every version); the next version is a new module, added to ``MIGRATIONS`` and to
:mod:`sessionscope.store.schema.current`.

The runner:

- takes a lock first (a table that only one server can create, see ``LOCK_TABLE``), so two
  servers starting together do not apply the same version side by side;
- creates an empty store from today's schema directly (``schema.current``), recording every
  version, and brings an older store up by replaying the versions it lacks, in order;
- records each version with one single-row insert once all its statements succeeded; every
  statement can run again, so a version cut short is applied again whole at the next start.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sessionscope.store.migrations import v001, v002, v003, v004, v005, v006, v007, v008
from sessionscope.store.schema import current
from sessionscope.store.schema.render import Migration, Table

if TYPE_CHECKING:
    from sessionscope.store.engine import Engine

__all__ = ["LOCK_TABLE", "MIGRATIONS", "MIGRATIONS_TABLE", "MigrationLocked", "applied", "migrate"]

MIGRATIONS: list[Migration] = [
    v001.MIGRATION,
    v002.MIGRATION,
    v003.MIGRATION,
    v004.MIGRATION,
    v005.MIGRATION,
    v006.MIGRATION,
    v007.MIGRATION,
    v008.MIGRATION,
]

MIGRATIONS_TABLE = Table(
    "schema_migrations",
    "ReplacingMergeTree",
    "version UInt32, name String, applied_at DateTime64(3, 'UTC')",
    "ORDER BY version",
    sharding_key="version",
)

#: Held while migrating: exists only then. Creating a table that exists fails, in one step, so
#: one server at a time holds it. A server that died while migrating leaves it behind: after
#: ``wait_s`` the runner says so (drop the table once no migration is running).
LOCK_TABLE = "schema_migrations_lock"

#: One migration at a time within this process too (threads sharing a store).
_PROCESS_LOCK = threading.Lock()


class MigrationLocked(Exception):
    """Another migration held the lock for longer than the runner waited."""


def applied(engine: Engine) -> list[int]:
    """The versions recorded in ``schema_migrations``, in order."""
    rows = engine.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
    return [int(r[0]) for r in rows]


@contextlib.contextmanager
def _locked(engine: Engine, wait_s: float) -> Iterator[None]:
    p = engine.profile
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    with _PROCESS_LOCK:
        while True:
            try:
                engine.command(
                    f"CREATE TABLE {LOCK_TABLE}{p.on_cluster} "
                    "(holder String, since DateTime64(3, 'UTC')) ENGINE = Memory"
                )
                break
            except Exception as error:
                if "already exists" not in str(error).lower():
                    raise
                if time.monotonic() > deadline:
                    raise MigrationLocked(
                        f"another migration holds {LOCK_TABLE}; if none is running (one was "
                        f"cut short), drop that table and start again"
                    ) from error
                time.sleep(0.2)
        try:
            engine.command(
                f"INSERT INTO {LOCK_TABLE} VALUES ({{h:String}}, now64(3))", {"h": holder}
            )
            yield
        finally:
            engine.command(f"DROP TABLE IF EXISTS {LOCK_TABLE}{p.on_cluster} SYNC")


def _record(engine: Engine, migrations: Sequence[Migration]) -> None:
    now = datetime.now(UTC)
    engine.client.insert(
        "schema_migrations",
        [[m.version, m.name, now] for m in migrations],
        column_names=["version", "name", "applied_at"],
        settings=engine.insert_settings,
    )


def _empty(engine: Engine) -> bool:
    """Whether the database holds none of the schema's tables (a store never migrated)."""
    names = [t.name for t in current.TABLES]
    rows = engine.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        "AND name IN {n:Array(String)}",
        {"n": names},
    )
    return int(rows[0][0]) == 0


def migrate(engine: Engine, migrations: Sequence[Migration], *, wait_s: float = 600.0) -> list[str]:
    """Apply the pending ``migrations`` in order, under the lock; return the names applied."""
    for sql in MIGRATIONS_TABLE.create(engine.profile):
        engine.command(sql)
    with _locked(engine, wait_s):
        done = set(applied(engine))
        pending = [m for m in migrations if m.version not in done]
        if not pending:
            return []
        if not done and migrations and migrations[-1].version == current.VERSION and _empty(engine):
            # A new store: today's schema at once, every version recorded in one insert.
            for sql in current.statements(engine.profile):
                engine.command(sql)
            _record(engine, pending)
        else:
            for migration in pending:
                for sql in migration.statements(engine.profile):
                    engine.command(sql)
                _record(engine, [migration])
        return [f"{m.version:04d} {m.name}" for m in pending]
