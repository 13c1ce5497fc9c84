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
  statement can run again, so a version cut short is applied again whole at the next start;
- on a store other servers may write (a ClickHouse server, not the embedded engine, which one
  process holds), applies a version that drops a materialized view (:func:`offline`: the
  rebuilds of versions 3 to 5, the view changes of 2 and 6) only when told the other servers
  are stopped, and not while events are still arriving (:class:`MigrationRefused`): while a
  view is gone, the events another server stores never reach its table, and a session would
  miss them for good. ``sessionscope migrate`` tells it so; a server starting does not.
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
from sessionscope.store.schema.render import EngineProfile, Migration, Table

if TYPE_CHECKING:
    from sessionscope.store.engine import Engine

__all__ = [
    "LOCK_TABLE",
    "MIGRATIONS",
    "MIGRATIONS_TABLE",
    "QUIET_S",
    "MigrationLocked",
    "MigrationRefused",
    "applied",
    "migrate",
    "offline",
]

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


#: ``sessionscope migrate`` applies an offline version to a shared store only once no event has
#: been stored for this long (a server still ingesting is not stopped).
QUIET_S = 60.0

#: Where an offline version's refusal sends the operator.
_STOP_STEP = (
    "stop every sessionscope server that uses this ClickHouse store, run "
    "`sessionscope migrate` (with the same SESSIONSCOPE_CLICKHOUSE_URL), then start them again"
)


class MigrationLocked(Exception):
    """Another migration held the lock for longer than the runner waited."""


class MigrationRefused(Exception):
    """A version that needs every other server stopped, asked of a shared store while they may
    run; nothing of it was applied."""


def offline(migration: Migration, profile: EngineProfile) -> bool:
    """Whether the version drops a materialized view (and makes it again): while it is gone,
    events inserted into ``events`` do not reach the view's table, so no other server may
    insert meanwhile."""
    return any(
        " ".join(sql.split()).upper().startswith("DROP VIEW")
        for sql in migration.statements(profile)
    )


def _stored_ago_s(engine: Engine) -> float | None:
    """Seconds since the newest event was stored, by the store's clock (None: no events)."""
    rows = engine.query(
        "SELECT count(), toFloat64(now64(3)) - toFloat64(max(ingested_at)) FROM events"
    )
    return float(rows[0][1]) if rows and int(rows[0][0]) else None


def _check_offline(
    engine: Engine, pending: Sequence[Migration], servers_stopped: bool, quiet_s: float
) -> None:
    """Refuse the offline versions of ``pending`` on a shared store (see the module's doc)."""
    names = [f"{m.version} ({m.name})" for m in pending if offline(m, engine.profile)]
    if engine.exclusive or not names:
        return
    what = f"schema version {', '.join(names)} rebuilds session tables"
    if not servers_stopped:
        raise MigrationRefused(
            f"{what}: events other servers store meanwhile would be missing from sessions, "
            f"so it is not applied while they may run; {_STOP_STEP}"
        )
    ago = _stored_ago_s(engine) if quiet_s > 0 else None
    if ago is not None and ago < quiet_s:
        raise MigrationRefused(
            f"{what}, and an event was stored {max(ago, 0):.0f} s ago: a sessionscope server "
            f"still writes to this store. Stop it; `sessionscope migrate` applies the version "
            f"once nothing has been stored for {quiet_s:.0f} s"
        )


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


def migrate(
    engine: Engine,
    migrations: Sequence[Migration],
    *,
    wait_s: float = 600.0,
    servers_stopped: bool = True,
    quiet_s: float = 0.0,
) -> list[str]:
    """Apply the pending ``migrations`` in order, under the lock; return the names applied.

    On a shared store, ``servers_stopped`` says every other server is stopped (else an offline
    version is refused), and ``quiet_s`` how long no event must have been stored before an
    offline version applies (0: not checked)."""
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
            _check_offline(engine, pending, servers_stopped, quiet_s)
            for migration in pending:
                for sql in migration.statements(engine.profile):
                    engine.command(sql)
                _record(engine, [migration])
        return [f"{m.version:04d} {m.name}" for m in pending]
