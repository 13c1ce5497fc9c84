"""How a declared table or view becomes DDL for one node or for a cluster.

Every table is declared with its *family* of engine (``MergeTree``, ``ReplacingMergeTree``,
``AggregatingMergeTree``). :class:`EngineProfile` renders the family as a plain engine on one
node (the embedded engine or a single server), or, on a cluster, as a ``Replicated*`` engine on
each shard's ``<name>_local`` table behind a ``Distributed`` table named ``<name>``. Query SQL
always names ``<name>``, so it is the same everywhere.

The migrations render their SQL through this module, so what it renders is part of their
history: ``tests/store/test_store_schema.py`` pins every version's SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EngineProfile", "Migration", "Table", "View", "rebuild"]


@dataclass(frozen=True, slots=True)
class EngineProfile:
    """How table engines are rendered: single node when ``cluster`` is empty."""

    cluster: str = ""
    fsync: bool = True

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def local_name(self, name: str) -> str:
        return f"{name}_local" if self.cluster else name

    def engine(self, family: str, name: str, args: str = "") -> str:
        if not self.cluster:
            return f"{family}({args})"
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}', '{{replica}}'"
        return f"Replicated{family}({path}{', ' + args if args else ''})"

    def settings(self, extra: str = "") -> str:
        # Durable acknowledgement: fsync each inserted part and its directory before the insert
        # returns. Replicated tables get durability from the quorum instead (see the store).
        found = [extra] if extra else []
        if self.fsync and not self.cluster:
            found.insert(0, "fsync_after_insert = 1, fsync_part_directory = 1")
        return f" SETTINGS {', '.join(found)}" if found else ""


@dataclass(frozen=True, slots=True)
class Table:
    """A table declared once: ``columns`` and ``tail`` (ORDER BY, PARTITION BY ...)."""

    name: str
    family: str
    columns: str
    tail: str
    engine_args: str = ""
    sharding_key: str = "rand()"
    #: Table settings besides the profile's (``index_granularity = 256, ...``).
    settings: str = ""
    #: Settings on one node only (replicated tables have their own defaults for them).
    single_node_settings: str = ""

    def create(self, p: EngineProfile, replica_path: str = "") -> list[str]:
        """The statements creating the table (``replica_path``: the name in the replication
        path on a cluster, when not the table's own)."""
        local = p.local_name(self.name)
        engine = p.engine(self.family, replica_path or self.name, self.engine_args)
        sql = [
            f"CREATE TABLE IF NOT EXISTS {local}{p.on_cluster} ({self.columns}) "
            f"ENGINE = {engine} {self.tail}{p.settings(self._settings(p))}"
        ]
        if p.cluster:
            sql.append(
                f"CREATE TABLE IF NOT EXISTS {self.name}{p.on_cluster} AS {local} "
                f"ENGINE = Distributed({p.cluster}, currentDatabase(), {local}, "
                f"{self.sharding_key})"
            )
        return sql

    def _settings(self, p: EngineProfile) -> str:
        if p.cluster or not self.single_node_settings:
            return self.settings
        return ", ".join(s for s in (self.settings, self.single_node_settings) if s)


@dataclass(frozen=True, slots=True)
class View:
    """A materialized view from ``source`` into ``target`` (local tables on a cluster)."""

    name: str
    target: str
    select: str

    def create(self, p: EngineProfile) -> list[str]:
        # On a cluster each shard aggregates its own rows: the view reads the local events
        # table and writes the local aggregate table; reads merge through Distributed.
        select = self.select.replace("FROM events", f"FROM {p.local_name('events')}")
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.name}{p.on_cluster} "
            f"TO {p.local_name(self.target)} AS {select}"
        ]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Callable[[EngineProfile], list[str]]


def rebuild(table: Table, view: View, columns: str, version: int, p: EngineProfile) -> list[str]:
    """Replace an aggregate table by ``table`` (a new layout) filled from the events.

    The new table is built beside the old one (``<name>_v<version>``) from ``events`` with the
    view's query, swapped in, and the old one dropped. Every step can run again after an
    interruption (the fill always starts from the events), so a migration cut short is simply
    applied again at the next start.
    """
    staging = Table(
        f"{table.name}_v{version}",
        table.family,
        table.columns,
        table.tail,
        table.engine_args,
        table.sharding_key,
        table.settings,
    )
    local, staged = p.local_name(table.name), p.local_name(staging.name)
    out = [f"DROP VIEW IF EXISTS {view.name}{p.on_cluster} SYNC"]
    if p.cluster:
        out.append(f"DROP TABLE IF EXISTS {staging.name}{p.on_cluster} SYNC")
    out.append(f"DROP TABLE IF EXISTS {staged}{p.on_cluster} SYNC")
    out.extend(staging.create(p, replica_path=f"{table.name}_v{version}"))
    out.append(f"INSERT INTO {staging.name} ({columns}) {view.select}")
    out.append(f"EXCHANGE TABLES {local} AND {staged}{p.on_cluster}")
    if p.cluster:  # the Distributed tables follow the new local structure
        out.append(f"DROP TABLE IF EXISTS {staging.name}{p.on_cluster} SYNC")
        out.append(f"DROP TABLE IF EXISTS {table.name}{p.on_cluster} SYNC")
        out.extend(table.create(p)[1:])
    out.append(f"DROP TABLE IF EXISTS {staged}{p.on_cluster} SYNC")
    out.extend(view.create(p))
    return out
