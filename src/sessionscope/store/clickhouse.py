"""The one store: ClickHouse through clickhouse-connect, embedded (chDB) or a server/cluster.

All SQL of the project lives here. Times cross the driver as epoch milliseconds so the host's
timezone never matters; Python sees aware UTC datetimes only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time as _time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sessionscope.config import Settings
from sessionscope.domain.events import KINDS, Event, epoch_ms
from sessionscope.domain.sessions import (
    PLAYER_ERROR_TYPES,
    PLAYER_PLAYING_TYPES,
    PLAYER_REBUFFER_TYPES,
    PLAYER_START_TYPES,
)
from sessionscope.security import (
    SecretBox,
    hash_secret,
    new_api_key,
    new_token,
    split_api_key,
    verify_secret,
)
from sessionscope.store.idfilter import Hashes, IdFilter, id_hashes
from sessionscope.store.schema import (
    MIGRATIONS,
    MIGRATIONS_TABLE,
    PLAYER_TYPES_V5,
    EngineProfile,
)
from sessionscope.store.sessionstarts import KEY_SEPARATOR, SessionStarts, session_key

log = logging.getLogger("sessionscope")


__all__ = [
    "ApiKey",
    "ClickHouseStore",
    "Project",
    "StoreError",
    "User",
    "event_table",
    "ms",
    "open_store",
    "to_dt",
]


class StoreError(Exception):
    """Base of store errors (bad names, conflicts)."""


def ms(t: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return epoch_ms(t)


def to_dt(value: int) -> datetime:
    """Aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    created_at: datetime
    idle_timeout_s: int = 900
    apdex_threshold_ms: int = 2000
    organization: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "idle_timeout_s": self.idle_timeout_s,
            "apdex_threshold_ms": self.apdex_threshold_ms,
            "organization": self.organization or self.name,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    project_id: int
    kind: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    email: str
    project_ids: tuple[int, ...]
    organization: str


_EVENT_SELECT = (
    "kind, session, id, toUnixTimestamp64Milli(time) AS t, type, duration_ms, user, data"
)


def _row_to_event(row: Sequence[Any]) -> Event:
    kind, session, eid, t, etype, duration, user, data = row
    return Event(
        id=eid,
        kind=kind,
        time=to_dt(t),
        type=etype,
        session=session,
        user=user,
        duration_ms=duration,
        attrs=orjson.loads(data) if data else {},
    )


class _LoadStopped(Exception):
    """A background load stopped because the store is closing."""


#: Threads for ``query_all``: queries of one request that the engine can run side by side.
_READS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-read")

_TS_MS = pa.timestamp("ms", tz="UTC")


def event_table(project_id: int, events: Sequence[Event]) -> pa.Table:
    """The rows of ``events`` as the columns of the events table (``seq`` is added later).

    One pass per column (comprehensions, and Arrow converting the datetimes): the loader
    builds a table of tens of thousands of rows per block.
    """
    attrs = [e.attrs for e in events]
    string = pa.string()
    dumps = orjson.dumps
    # Times to the millisecond, as ``epoch_ms`` (towards the past: all are after 2000).
    times = pa.array([e.time for e in events], pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "project_id": pa.array(np.full(len(events), project_id, dtype=np.uint32)),
            "kind": pa.array([e.kind for e in events], string),
            "session": pa.array([e.session for e in events], string),
            "id": pa.array([e.id for e in events], string),
            "time": times.cast(_TS_MS, safe=False),
            "type": pa.array([e.type for e in events], string),
            "duration_ms": pa.array([e.duration_ms for e in events], pa.uint64()),
            "user": pa.array([e.user for e in events], string),
            "device": pa.array([a.get("device", "") for a in attrs], string),
            "video_type": pa.array([a.get("video_type", "") for a in attrs], string),
            "level": pa.array([a.get("level", "") for a in attrs], string),
            "site": pa.array([a.get("visited_site", "") for a in attrs], string),
            "data": pa.array([dumps(a) for a in attrs], pa.binary()),
        }
    )


def _session_keys(table: pa.Table) -> pa.Array:
    """Each row's ``session_key`` (written by Arrow, as ``session_key`` writes it)."""
    return pc.binary_join_element_wise(table.column("kind"), table.column("session"), KEY_SEPARATOR)


def _earliest_by_session(rows: pa.Array, table: pa.Table) -> tuple[list[str], list[int]]:
    """The sessions of an insert (``rows``: each row's session key) and the earliest time
    (ms) of each."""
    grouped = (
        pa.table({"key": rows, "time": table.column("time")})
        .group_by("key", use_threads=False)
        .aggregate([("time", "min")])
    )
    return grouped.column("key").to_pylist(), grouped.column("time_min").cast(
        pa.int64()
    ).to_pylist()


def _starts_column(rows: pa.Array, keys: list[str], opens: list[bool]) -> pa.Array:
    """``events.starts`` for each row (``rows``: its session key): 1 where the insert may hold
    its session's start."""
    if all(opens):
        return pa.array(np.ones(len(rows), dtype=np.uint8))
    if not any(opens):
        return pa.array(np.zeros(len(rows), dtype=np.uint8))
    opening = pa.array([k for k, o in zip(keys, opens, strict=True) if o], pa.string())
    return pc.cast(pc.is_in(rows, value_set=opening), pa.uint8())


class ClickHouseStore:
    """Events, session aggregates, projects and credentials in ClickHouse."""

    def __init__(
        self, connect: Any, profile: EngineProfile, box: SecretBox, *, exclusive: bool = False
    ) -> None:
        """``exclusive``: this process is the only writer of the store (the embedded engine),
        so it may remember which event ids it stored (see :mod:`sessionscope.store.idfilter`).
        """
        self._connect = connect
        self.exclusive = exclusive
        self._id_filter: IdFilter | None = None
        self._starts: dict[int, SessionStarts] = {}
        self.profile = profile
        self._box = box
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._ingest_locks: dict[int, threading.Lock] = {}
        self._meta_lock = threading.Lock()
        #: The threads that fill the id filter and the session starts from the store, and the
        #: flag that stops them: ``close`` joins them before it closes the engine's
        #: connections (a thread still in the embedded engine when the process exits crashes
        #: it: a segmentation fault in the engine's background pool).
        self._loaders: list[threading.Thread] = []
        self._closing = threading.Event()
        #: Session pages aggregate only the sessions past a bound (see ``session_rows``) once a
        #: project has this many rows in the kind's aggregate; below, aggregating all is as fast.
        self.bounded_page_min_rows = 5_000
        self._row_counts: dict[tuple[str, int], tuple[float, int]] = {}
        self._key_cache: dict[str, tuple[float, int]] = {}
        self._key_id_cache: dict[str, tuple[float, int | None]] = {}
        #: Projects by id, kept for ``_cache_s``: every request looks its project up. An
        #: exclusive store sees every change (it makes them), so it keeps them until then.
        self._project_cache: dict[int, tuple[float, Project]] = {}
        #: Kinds with stored events by project (see ``event_kinds``): (read again after, kinds);
        #: and those of the inserts this process made.
        self._kinds: dict[int, tuple[float, frozenset[str]]] = {}
        self._inserted_kinds: dict[int, frozenset[str]] = {}
        self._cache_s = 3600.0 if exclusive else 5.0
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

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop the background loads (within ``timeout_s``), then close every connection. The
        store may be used again afterwards (it connects again)."""
        self._closing.set()
        with self._meta_lock:
            loaders, self._loaders = self._loaders, []
        deadline = _time.monotonic() + timeout_s
        for thread in loaders:
            thread.join(max(0.0, deadline - _time.monotonic()))
        with self._meta_lock:
            # A load cut short is made again at the next use (an unready filter is not used).
            if self._id_filter is not None and not self._id_filter.ready:
                self._id_filter = None
            self._starts = {p: s for p, s in self._starts.items() if s.ready}
            if not any(t.is_alive() for t in loaders):
                self._closing.clear()
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
        rows = self.query("SELECT version FROM schema_migrations FINAL ORDER BY version")
        return [int(r[0]) for r in rows]

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the names applied."""
        for sql in MIGRATIONS_TABLE.create(self.profile):
            self.command(sql)
        done = set(self.applied_migrations())
        applied: list[str] = []
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for sql in migration.statements(self.profile):
                self.command(sql)
            self.client.insert(
                "schema_migrations",
                [[migration.version, migration.name, datetime.now(UTC)]],
                column_names=["version", "name", "applied_at"],
                settings=self.insert_settings,
            )
            applied.append(f"{migration.version:04d} {migration.name}")
        return applied

    # ---------------------------------------------------------------- projects

    def create_project(self, name: str, organization: str = "") -> Project:
        name = name.strip()
        if not name or len(name) > 100:
            raise StoreError("project name must be 1 to 100 characters")
        with self._meta_lock:
            if self.get_project_by_name(name) is not None:
                raise StoreError(f"project {name!r} already exists")
            rows = self.query("SELECT max(id) FROM projects FINAL")
            new_id = int(rows[0][0] or 0) + 1
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # stored in ms
            project = Project(new_id, name, now, organization=organization)
            self._write_project(project)
        return project

    def _write_project(self, p: Project) -> None:
        self.client.insert(
            "projects",
            [
                [
                    p.id,
                    p.name,
                    p.created_at,
                    p.idle_timeout_s,
                    p.apdex_threshold_ms,
                    p.organization,
                    _time.time_ns(),
                ]
            ],
            column_names=[
                "id",
                "name",
                "created_at",
                "idle_timeout_s",
                "apdex_threshold_ms",
                "organization",
                "version",
            ],
            settings=self.insert_settings,
        )
        self._project_cache.pop(p.id, None)

    def update_project(
        self,
        project: Project,
        *,
        idle_timeout_s: int | None = None,
        apdex_threshold_ms: int | None = None,
        organization: str | None = None,
    ) -> Project:
        """Change a project's settings; return the updated project."""
        updated = Project(
            project.id,
            project.name,
            project.created_at,
            idle_timeout_s if idle_timeout_s is not None else project.idle_timeout_s,
            apdex_threshold_ms if apdex_threshold_ms is not None else project.apdex_threshold_ms,
            organization if organization is not None else project.organization,
        )
        self._write_project(updated)
        return updated

    _PROJECT_SELECT = (
        "SELECT id, name, toUnixTimestamp64Milli(created_at), idle_timeout_s, "
        "apdex_threshold_ms, organization FROM projects FINAL"
    )

    @staticmethod
    def _project(row: Sequence[Any]) -> Project:
        return Project(int(row[0]), row[1], to_dt(row[2]), int(row[3]), int(row[4]), row[5])

    def list_projects(self) -> list[Project]:
        return [self._project(r) for r in self.query(self._PROJECT_SELECT + " ORDER BY id")]

    def get_project(self, project_id: int) -> Project | None:
        now = _time.monotonic()
        cached = self._project_cache.get(project_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = self.query(self._PROJECT_SELECT + " WHERE id = {id:UInt32}", {"id": project_id})
        if not rows:
            return None
        project = self._project(rows[0])
        self._project_cache[project_id] = (now + self._cache_s, project)
        return project

    def get_project_by_name(self, name: str) -> Project | None:
        rows = self.query(self._PROJECT_SELECT + " WHERE name = {n:String}", {"n": name})
        return self._project(rows[0]) if rows else None

    # ---------------------------------------------------------------- credentials

    def _write_key(
        self, key_id: str, project_id: int, kind: str, secret_hash: str, secret_enc: str, name: str
    ) -> None:
        self.client.insert(
            "api_keys",
            [[key_id, project_id, kind, secret_hash, secret_enc, name, datetime.now(UTC), 0, 1]],
            column_names=[
                "key_id",
                "project_id",
                "kind",
                "secret_hash",
                "secret_enc",
                "name",
                "created_at",
                "revoked",
                "version",
            ],
            settings=self.insert_settings,
        )

    def create_api_key(self, project_id: int, name: str = "") -> str:
        """Create a project API key; return it (the only time it is seen in clear)."""
        key_id, secret, full = new_api_key()
        self._write_key(key_id, project_id, "api", hash_secret(secret), "", name)
        return full

    def create_signing_key(self, project_id: int, name: str = "") -> tuple[str, str]:
        """Create an access key / secret key pair for HMAC-signed requests (NAVER Cloud)."""
        access_key = new_token(15).replace("-", "A").replace("_", "B")[:20].upper()
        secret = new_token(30)
        self._write_key(access_key, project_id, "ncp", "", self._box.seal(secret), name)
        return access_key, secret

    def list_keys(self, project_id: int) -> list[ApiKey]:
        rows = self.query(
            "SELECT key_id, project_id, kind, name, toUnixTimestamp64Milli(created_at) "
            "FROM api_keys FINAL WHERE project_id = {p:UInt32} AND revoked = 0 "
            "ORDER BY created_at",
            {"p": project_id},
        )
        return [ApiKey(r[0], int(r[1]), r[2], r[3], to_dt(r[4])) for r in rows]

    def remembered_api_key(self, full_key: str) -> Project | None:
        """The project of an API key ``verify_api_key`` accepted lately, from memory alone
        (None: not remembered; ask ``verify_api_key``). For callers that must not block."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached is None or cached[0] <= now:
            return None
        project = self._project_cache.get(cached[1])
        return project[1] if project is not None and project[0] > now else None

    def verify_api_key(self, full_key: str) -> Project | None:
        """Return the project of a valid API key, or None."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached and cached[0] > now:
            return self.get_project(cached[1])
        parts = split_api_key(full_key)
        if parts is None:
            return None
        key_id, secret = parts
        rows = self.query(
            "SELECT project_id, secret_hash FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'api' AND revoked = 0",
            {"k": key_id},
        )
        if not rows or not verify_secret(secret, rows[0][1]):
            return None
        self._key_cache[full_key] = (now + 30.0, int(rows[0][0]))
        return self.get_project(int(rows[0][0]))

    def api_key_project(self, key_id: str) -> int | None:
        """The project of a live API key by its id (no secret: for a sign-in made with the
        key, checked at every page), or None; remembered as long as ``verify_api_key``'s."""
        now = _time.monotonic()
        cached = self._key_id_cache.get(key_id)
        if cached and cached[0] > now:
            return cached[1]
        rows = self.query(
            "SELECT project_id FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'api' AND revoked = 0",
            {"k": key_id},
        )
        found = int(rows[0][0]) if rows else None
        self._key_id_cache[key_id] = (now + 30.0, found)
        return found

    def signing_secret(self, access_key: str) -> tuple[int, str] | None:
        """Return ``(project_id, secret)`` for an access key, or None."""
        rows = self.query(
            "SELECT project_id, secret_enc FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'ncp' AND revoked = 0",
            {"k": access_key},
        )
        if not rows:
            return None
        secret = self._box.open(rows[0][1])
        return (int(rows[0][0]), secret) if secret is not None else None

    def create_user(self, email: str, project_ids: Sequence[int], organization: str = "") -> str:
        """Create (or replace) a user with access to projects; return the new API token."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise StoreError("email must look like name@example.com")
        if not project_ids:
            raise StoreError("a user needs at least one project")
        token = new_token(24)
        self.client.insert(
            "users",
            [
                [
                    email,
                    hash_secret(token),
                    list(project_ids),
                    organization,
                    datetime.now(UTC),
                    _time.time_ns(),
                ]
            ],
            column_names=[
                "email",
                "token_hash",
                "project_ids",
                "organization",
                "created_at",
                "version",
            ],
            settings=self.insert_settings,
        )
        return token

    def verify_user(self, email: str, token: str) -> User | None:
        rows = self.query(
            "SELECT email, token_hash, project_ids, organization FROM users FINAL "
            "WHERE email = {e:String}",
            {"e": email.strip().lower()},
        )
        if not rows or not verify_secret(token, rows[0][1]):
            return None
        return User(rows[0][0], tuple(int(x) for x in rows[0][2]), rows[0][3])

    def user_by_token(self, token: str) -> User | None:
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL "
            "WHERE token_hash = {h:String}",
            {"h": hash_secret(token)},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None

    def get_user(self, email: str) -> User | None:
        """The user with this email (no token check), or None."""
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL WHERE email = {e:String}",
            {"e": email.strip().lower()},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None

    # ---------------------------------------------------------------- events

    def _ingest_lock(self, project_id: int) -> threading.Lock:
        with self._meta_lock:
            lock = self._ingest_locks.get(project_id)
            if lock is None:
                lock = self._ingest_locks[project_id] = threading.Lock()
            return lock

    def insert_events(self, project_id: int, events: Sequence[Event]) -> tuple[int, int]:
        """Store events not stored before, now; return ``(accepted, duplicates)``.

        The direct, synchronous write, for tests and the benchmark's store builder: servers
        and commands acknowledge from the ingest journal (``sessionscope.ingest``) and load
        the store behind it with ``write_events``. Deduplication is by ``(project, id)``
        (stored ids, and repeats inside the batch), under a per-project lock; the block's
        deduplication token is derived from its ids, so a retry of an insert that failed
        partway adds nothing to the tables it reached.
        """
        if not events:
            return 0, 0
        with self._ingest_lock(project_id):
            ids = [e.id for e in events]
            known = self.id_filter()
            seen = self.stored_among(project_id, ids, id_hashes(ids) if known else None)
            fresh = []
            for e in events:
                if e.id not in seen:
                    seen.add(e.id)
                    fresh.append(e)
            if fresh:
                digest = hashlib.sha256(f"{project_id}:".encode())
                digest.update("\x1f".join(e.id for e in fresh).encode())
                self.write_events([(project_id, fresh)], f"direct-{digest.hexdigest()}")
        return len(fresh), len(events) - len(fresh)

    def stored_among(self, project_id: int, ids: Sequence[str], hashes: Hashes | None) -> set[str]:
        """The ids among ``ids`` that are stored (exactly). ``hashes``: their ``id_hashes``,
        for an exclusive store's filter to rule most of them out without asking the engine."""
        known = self.id_filter()
        if known is None or not known.ready or hashes is None:
            return self._existing_ids(project_id, list(set(ids)))
        maybe = known.maybe_stored(project_id, hashes)
        if not maybe.any():
            return set()
        candidates = {i for i, m in zip(ids, maybe.tolist(), strict=True) if m}
        return self._existing_ids(project_id, list(candidates))

    def write_events(self, batches: Sequence[tuple[int, Sequence[Event]]], token: str) -> None:
        """Insert deduplicated events of one or more projects as one block (see
        ``write_tables``), remembering their ids in the id filter first."""
        by_project: dict[int, list[Event]] = {}
        for project_id, events in batches:
            by_project.setdefault(project_id, []).extend(events)
        tables = [(p, event_table(p, events)) for p, events in by_project.items() if events]
        self.write_tables(tables, token, remember_ids=True)

    def write_tables(
        self, tables: Sequence[tuple[int, pa.Table]], token: str, *, remember_ids: bool
    ) -> tuple[float, float]:
        """Insert deduplicated events (``event_table`` columns) of one or more projects as one
        block.

        ``token`` is the block's deduplication token (``insert_deduplication_token``): the
        events table and every view's table remember the tokens of their last blocks
        (schema v7), so writing the same token again, after a failure or a crash at any point
        of the insert, adds nothing where the block arrived and the rest where it did not.
        On an exclusive store the rows of sessions the block cannot start are marked
        (``events.starts = 0``, see :mod:`sessionscope.store.sessionstarts`).
        ``remember_ids``: add the ids to the id filter before the insert (the ingest journal's
        writer does so itself when it acknowledges them). Returns the seconds spent building
        the block's columns and inserting it.
        """
        began = _time.monotonic()
        by_project: dict[int, list[pa.Table]] = {}
        for project_id, part in tables:
            if part.num_rows:
                by_project.setdefault(project_id, []).append(part)
        parts: list[pa.Table] = []
        recorded: list[tuple[SessionStarts, list[str], list[int]]] = []
        for project_id, mine in by_project.items():
            table = pa.concat_tables(mine) if len(mine) > 1 else mine[0]
            starts = self._session_starts(project_id)
            if starts is not None:
                rows = _session_keys(table)
                keys, earliest = _earliest_by_session(rows, table)
                table = table.append_column(
                    "starts", _starts_column(rows, keys, starts.may_start(keys, earliest))
                )
                recorded.append((starts, keys, earliest))
            known = self.id_filter() if remember_ids else None
            if known is not None:
                # Before the insert: should it fail halfway, its ids are "maybe stored"
                # (looked up next time), never "surely new".
                known.add(project_id, id_hashes(table.column("id").to_pylist()))
            parts.append(table)
        if not parts:
            return 0.0, 0.0
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        table = table.append_column("seq", pa.array(np.arange(table.num_rows, dtype=np.uint32)))
        # One Arrow chunk, so one block for the engine: a block written again is cut into
        # parts (and so into deduplication tokens) the same way however its events arrived.
        table = table.combine_chunks()
        settings = {
            **self.insert_settings,
            # The views of the events table run side by side (one insert feeds six of them).
            "parallel_view_processing": 1,
            "insert_deduplicate": 1,
            "insert_deduplication_token": token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
        }
        built = _time.monotonic()
        self.client.insert_arrow("events", table, settings=settings)
        inserted = _time.monotonic()
        for project_id in by_project:
            self._stored_kinds(project_id, table)
        for starts, keys, earliest in recorded:  # once stored: a failed insert starts nothing
            starts.record(keys, earliest)
        return built - began, inserted - built

    def _stored_kinds(self, project_id: int, table: pa.Table) -> None:
        """Remember the kinds of an insert (see ``event_kinds``): on an exclusive store this
        process makes every insert, so the kinds read once and these are all there are; on a
        shared one, another server's new kind shows once the kinds are read again."""
        known = self._inserted_kinds.get(project_id, frozenset())
        if len(known) < len(KINDS):
            rows = table.filter(
                pc.equal(table.column("project_id"), pa.scalar(project_id, pa.uint32()))
            )
            kinds = frozenset(str(k) for k in pc.unique(rows.column("kind")).to_pylist())
            self._inserted_kinds[project_id] = known | kinds

    def id_filter(self) -> IdFilter | None:
        """The filter of stored ids of every project (exclusive stores only): made at first
        use and filled from the store in the background. Every writer adds what it writes
        before it writes it (``write_events``), so the load (of what was stored before the
        filter was made) and the writers together miss nothing."""
        if not self.exclusive:
            return None
        with self._meta_lock:
            known = self._id_filter
            if known is None:
                known = self._id_filter = IdFilter()
                self._start_loader(self._load_id_filter, (known,), "id-filter")
        return known

    def _session_starts(self, project_id: int) -> SessionStarts | None:
        """When the project's stored sessions started (exclusive stores only): made at first
        use and filled from the store in the background. ``write_events`` records each block's
        sessions once it is stored, so the load (of what was stored before) and the writer
        together miss nothing; a session not known yet only costs an extra index row."""
        if not self.exclusive:
            return None
        with self._meta_lock:
            starts = self._starts.get(project_id)
            if starts is None:
                starts = self._starts[project_id] = SessionStarts()
                self._start_loader(
                    self._load_session_starts, (project_id, starts), f"session-starts-{project_id}"
                )
        return starts

    def _start_loader(self, target: Any, args: tuple[Any, ...], name: str) -> None:
        """Start a background load (under ``_meta_lock``); ``close`` stops and joins it."""
        self._loaders = [t for t in self._loaders if t.is_alive()]
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._loaders.append(thread)
        thread.start()

    def _check_closing(self) -> None:
        """Between the blocks of a background load: stop it once the store is closing."""
        if self._closing.is_set():
            raise _LoadStopped

    def _load_session_starts(self, project_id: int, starts: SessionStarts) -> None:
        def blocks() -> Iterator[tuple[list[str], list[int]]]:
            self._check_closing()
            with self.client.query_column_block_stream(
                "SELECT kind, session, toUnixTimestamp64Milli(min(t)) FROM session_index "
                "WHERE project_id = {p:UInt32} AND edge = 1 GROUP BY kind, session",
                parameters={"p": project_id},
            ) as stream:
                for kinds, sessions, times in stream:
                    self._check_closing()
                    keys = [session_key(k, s) for k, s in zip(kinds, sessions, strict=True)]
                    yield keys, [int(t) for t in times]

        try:
            starts.load(blocks())
        except _LoadStopped:  # not ready: made again at the next use
            pass
        except Exception:  # every insert marks its sessions as starting meanwhile
            log.exception("could not load the session starts of project %s", project_id)

    def _load_id_filter(self, known: IdFilter) -> None:
        def blocks() -> Iterator[tuple[list[int], list[str]]]:
            self._check_closing()
            with self.client.query_column_block_stream(
                "SELECT project_id, id FROM event_ids"
            ) as stream:
                for projects, ids in stream:
                    self._check_closing()
                    yield list(projects), list(ids)

        try:
            known.load(blocks())
        except _LoadStopped:  # not ready: made again at the next use
            pass
        except Exception:  # the store answers by lookups meanwhile; a later start tries again
            log.exception("could not load the stored event ids")

    def _existing_ids(self, project_id: int, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows = self.query(
                "SELECT DISTINCT id FROM event_ids WHERE project_id = {p:UInt32} "
                "AND id IN {ids:Array(String)}",
                {"p": project_id, "ids": chunk},
            )
            found.update(r[0] for r in rows)
        return found

    def count_events(self, project_id: int, kind: str | None = None) -> int:
        """Count distinct stored events of a project (idempotent over duplicates)."""
        rows = self.query(
            "SELECT uniqExact(id) FROM event_ids WHERE project_id = {p:UInt32}"
            + (" AND kind = {k:String}" if kind else ""),
            {"p": project_id, "k": kind or ""},
        )
        return int(rows[0][0])

    def session_events(
        self, project_id: int, kind: str, sessions: Iterable[str]
    ) -> dict[str, list[Event]]:
        """Return the events of the given sessions (grouping keys), each in time order."""
        keys = list(dict.fromkeys(sessions))
        out: dict[str, list[Event]] = {k: [] for k in keys}
        if not keys:
            return out
        rows = self.query(
            f"SELECT {_EVENT_SELECT} FROM events WHERE project_id = {{p:UInt32}} "
            "AND kind = {k:String} AND session IN {s:Array(String)} "
            "ORDER BY session, time, ingested_at, seq, id LIMIT 1 BY session, id",
            {"p": project_id, "k": kind, "s": keys},
        )
        for row in rows:
            out[row[1]].append(_row_to_event(row))
        return out

    def events(
        self,
        project_id: int,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        level: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Event]:
        """Return events of a kind, filtered by time (inclusive), sessions, types and level."""
        where, params = self._event_filter(project_id, kind, start, end, sessions, types, level)
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT {_EVENT_SELECT} FROM events WHERE {where} "
            f"ORDER BY time {order}, ingested_at {order}, seq {order}, id {order} LIMIT 1 BY id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        return [_row_to_event(r) for r in self.query(sql, params)]

    def count_matching_events(
        self,
        project_id: int,
        kind: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        sessions: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
        level: str | None = None,
    ) -> int:
        where, params = self._event_filter(project_id, kind, start, end, sessions, types, level)
        return int(self.query(f"SELECT uniqExact(id) FROM events WHERE {where}", params)[0][0])

    @staticmethod
    def _event_filter(
        project_id: int,
        kind: str,
        start: datetime | None,
        end: datetime | None,
        sessions: Sequence[str] | None,
        types: Sequence[str] | None,
        level: str | None,
    ) -> tuple[str, dict[str, Any]]:
        clauses = ["project_id = {p:UInt32}", "kind = {k:String}"]
        params: dict[str, Any] = {"p": project_id, "k": kind}
        if start is not None:
            clauses.append("time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')")
            params["lo"] = ms(start)
        if end is not None:
            clauses.append("time <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')")
            params["hi"] = ms(end)
        if sessions is not None:
            clauses.append("session IN {s:Array(String)}")
            params["s"] = list(sessions)
        if types is not None:
            clauses.append("type IN {t:Array(String)}")
            params["t"] = list(types)
        if level is not None:
            clauses.append("level = {lv:String}")
            params["lv"] = level
        return " AND ".join(clauses), params

    def channels(self, project_id: int) -> list[dict[str, Any]]:
        """Per-channel summary from the channel aggregate."""
        rows = self.query(
            "SELECT channel, toUnixTimestamp64Milli(min(first)), "
            "toUnixTimestamp64Milli(max(last)), "
            "toUnixTimestamp64Milli(max(last_publish_start)), "
            "toUnixTimestamp64Milli(max(last_publish_end)), "
            "uniqExactIfMerge(errors), uniqExactMerge(events) "
            "FROM channel_stats WHERE project_id = {p:UInt32} GROUP BY channel ORDER BY channel",
            {"p": project_id},
        )
        return [
            {
                "channel": r[0],
                "first": to_dt(r[1]),
                "last": to_dt(r[2]),
                "live": r[3] > 0 and r[3] > r[4],
                "last_publish_start": to_dt(r[3]) if r[3] else None,
                "errors": int(r[5]),
                "events": int(r[6]),
            }
            for r in rows
        ]

    # ---------------------------------------------------------------- session aggregates

    def session_rows(
        self,
        kind: str,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        before: tuple[datetime, str] | None = None,
        limit: int | None = 100,
        sessions: Sequence[str] | None = None,
        oldest_first: bool = False,
        started_within: bool = False,
        ended_within: bool = False,
        order_by: str = "start",
    ) -> list[dict[str, Any]]:
        """List session aggregates of a kind (player, desktop, endpoint), newest start first.

        A session matches ``[start, end]`` when it overlaps it (or, with ``started_within``, when
        it started inside it; with ``ended_within``, when its last event is inside it).
        ``filters`` are exact matches on aggregate columns (any of the values). ``order_by`` is
        ``"start"`` (first event) or ``"end"`` (last event); ``before`` is a keyset cursor
        ``(that time, session)``.
        """
        if order_by not in ("start", "end"):
            raise StoreError("order_by must be 'start' or 'end'")
        ocol = "e" if order_by == "end" else "s"
        spec = _AGGREGATES[kind]
        having: list[str] = []
        params: dict[str, Any] = {"p": project_id, "k": kind}
        # Bounds on the order column in the direction of travel: the session index can apply
        # them too (the rows that bound a page, below).
        ahead: list[str] = []
        travel = ">=" if oldest_first else "<="
        if end is not None:
            hcol = "e" if ended_within else "s"
            having.append(f"{hcol} <= fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')")
            params["hi"] = ms(end)
            if hcol == ocol and not oldest_first:
                ahead.append(f"t {travel} fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')")
        if start is not None:
            col = "s" if started_within else "e"
            having.append(f"{col} >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
            params["lo"] = ms(start)
            if col == ocol and oldest_first:
                ahead.append(f"t {travel} fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
        having_filters = bool(filters)
        for i, (name, values) in enumerate((filters or {}).items()):
            column = spec.filters[name]
            having.append(_filter_clause(name, column, f"f{i}"))
            params[f"f{i}"] = [str(v) for v in values]
        if before is not None:
            op = ">" if oldest_first else "<"
            having.append(
                f"({ocol}, skey) {op} "
                "(fromUnixTimestamp64Milli({cs:Int64}, 'UTC'), {ck:String})"
            )
            params["cs"] = ms(before[0])
            params["ck"] = before[1]
            # Strictly past the cursor in the index too: the cursor's own session, whose row
            # the previous page read, is not among the rows that bound this page.
            ahead.append(
                f"(t, session) {op} (fromUnixTimestamp64Milli({{cs:Int64}}, 'UTC'), {{ck:String}})"
            )
        where = "project_id = {p:UInt32}"
        if sessions is not None:
            where += f" AND session IN {{ss:Array({spec.key_type})}}"
            params["ss"] = [spec.cast(s) for s in sessions]
        order = "ASC" if oldest_first else "DESC"

        def page(candidates: str | None, region: str | None) -> list[tuple[Any, ...]]:
            bounded_where = (
                where if candidates is None else f"{where} AND session IN ({candidates})"
            )
            bounded_having = [*having, region] if region else having
            sql = (
                f"SELECT {spec.select}, min(start) AS s, max(end) AS e, "
                f"toString(session) AS skey{spec.filter_select} FROM {spec.table} "
                f"WHERE {bounded_where} GROUP BY session"
                + (f" HAVING {' AND '.join(bounded_having)}" if bounded_having else "")
                + f" ORDER BY {ocol} {order}, skey {order}"
                + (f" LIMIT {int(limit)}" if limit is not None else "")
            )
            return self.query(sql, params)

        found: list[tuple[Any, ...]] | None = None
        if (
            limit is not None
            and sessions is None
            and self._aggregate_rows(spec.table, project_id) >= self.bounded_page_min_rows
        ):
            # Picking one page would aggregate every session of the project. Read the session
            # index in order instead, and aggregate only the sessions it names near the top.
            edge = 2 if order_by == "end" else 1
            cast = "toUInt32(session)" if spec.key_type == "UInt32" else "session"
            idx = f"project_id = {{p:UInt32}} AND kind = {{k:String}} AND edge = {edge}"
            idx += "".join(f" AND {bound}" for bound in ahead)
            # A filter keeps only some of the sessions the index names: start deeper. Without
            # one, an exclusive store's index holds about one start row per session (see
            # ``_session_starts``), so the first ``limit`` rows usually name the whole page;
            # but a session still going on has an end row from each recent insert of it.
            if having_filters:
                depths: tuple[int, ...] = (32, 256)
            elif self.exclusive and order_by == "start":
                depths = (1, 4, 32, 256)
            else:
                depths = (4, 32, 256)
            for depth in depths:
                rank = depth * max(1, int(limit))
                bound = self._index_bound(idx, params, oldest_first, rank)
                if bound is None:  # the index holds fewer rows: its sessions are all there are
                    found = page(f"SELECT {cast} FROM session_index WHERE {idx}", None)
                    break
                # From the bound row B on, every session's representative row (its first row
                # for starts, its last for ends) was read, so that region of the order is
                # complete; B's own session is in it when B is its representative row.
                params["bt"], params["bk"] = bound
                b_row = "(fromUnixTimestamp64Milli({bt:Int64}, 'UTC'), {bk:String})"
                tail = f"(t, session) {'<=' if oldest_first else '>='} {b_row}"
                region = f"({ocol}, skey) {'<=' if oldest_first else '>='} {b_row}"
                candidate = page(f"SELECT {cast} FROM session_index WHERE {idx} AND {tail}", region)
                if len(candidate) >= limit:
                    found = candidate
                    break
        rows = [spec.decode(r) for r in (found if found is not None else page(None, None))]
        rows.sort(key=lambda r: (r[order_by], r["session"]), reverse=not oldest_first)
        return rows

    def _index_bound(
        self, where: str, params: Mapping[str, Any], ascending: bool, depth: int
    ) -> tuple[int, str] | None:
        """The ``depth``-th row ``(t ms, session)`` of the session index in order, or None
        when fewer rows match."""
        order = "ASC" if ascending else "DESC"
        rows = self.query(
            f"SELECT toUnixTimestamp64Milli(t), session FROM session_index WHERE {where} "
            f"ORDER BY t {order}, session {order} LIMIT 1 OFFSET {int(depth) - 1}",
            params,
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def _aggregate_rows(self, table: str, project_id: int) -> int:
        """Rows of a project in an aggregate table, counted at most once a minute."""
        if self.bounded_page_min_rows <= 0:  # always bounded: no need to count
            return 0
        now = _time.monotonic()
        cached = self._row_counts.get((table, project_id))
        if cached is None or cached[0] < now:
            rows = self.query(
                f"SELECT count() FROM {table} WHERE project_id = {{p:UInt32}}", {"p": project_id}
            )
            cached = self._row_counts[(table, project_id)] = (now + 60.0, int(rows[0][0]))
        return cached[1]

    def count_sessions(
        self,
        kind: str,
        project_id: int,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        started_within: bool = False,
    ) -> int:
        spec = _AGGREGATES[kind]
        having: list[str] = []
        params: dict[str, Any] = {"p": project_id}
        if end is not None:
            having.append("s <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')")
            params["hi"] = ms(end)
        if start is not None:
            col = "s" if started_within else "e"
            having.append(f"{col} >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')")
            params["lo"] = ms(start)
        for i, (name, values) in enumerate((filters or {}).items()):
            having.append(_filter_clause(name, spec.filters[name], f"f{i}"))
            params[f"f{i}"] = [str(v) for v in values]
        sql = (
            f"SELECT count() FROM (SELECT session, min(start) AS s, max(end) AS e"
            f"{spec.filter_select} FROM {spec.table} WHERE project_id = {{p:UInt32}} "
            "GROUP BY session" + (f" HAVING {' AND '.join(having)}" if having else "") + ")"
        )
        return int(self.query(sql, params)[0][0])

    def iter_session_rows(
        self, kind: str, project_id: int, batch: int = 5000, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Yield every matching session aggregate, newest first, in keyset batches."""
        before: tuple[datetime, str] | None = None
        while True:
            rows = self.session_rows(kind, project_id, before=before, limit=batch, **kwargs)
            yield from rows
            if len(rows) < batch:
                return
            before = (rows[-1][kwargs.get("order_by", "start")], str(rows[-1]["session"]))

    # ---------------------------------------------------------------- time series

    # Each series method returns {bucket start in epoch ms: {metric: value}}. Buckets are
    # toStartOfInterval(time, step) in UTC; empty buckets are absent (the service fills them).
    # With ``total``, key 0 also holds every metric over the whole range ``[lo, hi]``.

    @staticmethod
    def _group_by_bucket(total: bool) -> str:
        return " GROUP BY GROUPING SETS ((b), ())" if total else " GROUP BY b"

    @staticmethod
    def _range_params(project_id: int, lo: datetime, hi: datetime, step_s: int) -> dict[str, Any]:
        return {"p": project_id, "lo": ms(lo), "hi": ms(hi), "step": step_s}

    _IN_RANGE = (
        "time >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND time <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
    )
    _BUCKET = "toUnixTimestamp(toStartOfInterval({col}, toIntervalSecond({{step:UInt32}}))) * 1000"

    def player_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        start_types: Sequence[str],
        playing_types: Sequence[str],
        rebuffer_types: Sequence[str],
        error_types: Sequence[str],
        filters: Mapping[str, Sequence[str]] | None = None,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Player metrics per bucket.

        Session metrics (sessions, startup quantiles, error rate) count sessions in the bucket
        of their start; activity metrics (viewers, playing time, rebuffer ratio) use the events
        that happened in each bucket. ``filters`` (``device``, ``video_type``, ``user``: any of
        the values) apply to the session aggregate and to each event respectively.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params.update({"pl": list(playing_types), "rb": list(rebuffer_types)})
        spec = _AGGREGATES["player"]
        session_having, event_where = "", ""
        for i, (name, values) in enumerate((filters or {}).items()):
            if name not in spec.filters:
                raise StoreError(f"unknown player filter {name!r}")
            session_having += f" AND {spec.filters[name]} IN {{f{i}:Array(String)}}"
            event_where += f" AND {_PLAYER_EVENT_COLUMNS[name]} IN {{f{i}:Array(String)}}"
            params[f"f{i}"] = [str(v) for v in values]
        session_sql = (
            "SELECT " + self._BUCKET.format(col="s") + " AS b, count(), "
            "quantileExact(0.5)(startup), quantileExact(0.95)(startup), countIf(err) "
            # Only sessions with an aggregate row starting in the range can start there (the
            # row holding a session's first event is one): a cheap scan of the aggregate finds
            # them, and only their rows are summed.
            f"FROM (SELECT session, min(start) AS s, {_player_sum('d', start_types)} AS startup, "
            f"{_player_sum('n', error_types)} > 0 AS err"
            + (spec.filter_select if session_having else "")
            + " FROM player_sessions WHERE project_id = {p:UInt32} "
            "AND session IN (SELECT session FROM player_sessions WHERE project_id = {p:UInt32} "
            "AND start >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
            "AND start <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')) GROUP BY session "
            "HAVING s >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
            "AND s <= fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
            + session_having
            + ")"
            + self._group_by_bucket(total)
        )
        event_sql = (
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(user), "
            "sumIf(ifNull(duration_ms, 0), type IN {pl:Array(String)}), "
            "sumIf(ifNull(duration_ms, 0), type IN {rb:Array(String)}) "
            "FROM events WHERE project_id = {p:UInt32} AND kind = 'player' AND "
            + self._IN_RANGE
            + event_where
            + self._group_by_bucket(total)
        )
        by_session, by_event = self.query_all([(session_sql, params), (event_sql, params)])
        out: dict[int, dict[str, float]] = {}
        for b, n, p50, p95, errs in by_session:
            out.setdefault(int(b), {}).update(
                {
                    "sessions": int(n),
                    "startup_p50": float(p50),
                    "startup_p95": float(p95),
                    "error_rate": round(errs / n, 4) if n else 0.0,
                }
            )
        for b, viewers, playing, rebuffer in by_event:
            watched = playing + rebuffer
            out.setdefault(int(b), {}).update(
                {
                    "viewers": int(viewers),
                    "playing_time": int(playing),
                    "rebuffer_ratio": round(rebuffer / watched, 4) if watched else 0.0,
                }
            )
        return out

    def player_activity(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[int, dict[str, float]]:
        """Distinct player sessions with an event in each bucket (events inside ``[lo, hi]``).

        ``filters`` (``device``, ``video_type``, ``user``: any of the values) apply to each event.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        where = ""
        for i, (name, values) in enumerate((filters or {}).items()):
            if name not in _PLAYER_EVENT_COLUMNS:
                raise StoreError(f"unknown player filter {name!r}")
            where += f" AND {_PLAYER_EVENT_COLUMNS[name]} IN {{f{i}:Array(String)}}"
            params[f"f{i}"] = [str(v) for v in values]
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(session) "
            "FROM events WHERE project_id = {p:UInt32} AND kind = 'player' AND "
            + self._IN_RANGE
            + where
            + " GROUP BY b",
            params,
        )
        return {int(b): {"players": int(n)} for b, n in rows}

    def desktop_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        idle_timeout_ms: int,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Idle and productive time per bucket.

        The same rule as ``domain.sessions.desktop_session``: the time between consecutive
        activity points of a session is idle when longer than the timeout, productive otherwise.
        A gap is counted in the bucket of the activity that ends it.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params["idle"] = idle_timeout_ms
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(user), "
            "sumIf(gap, gap > {idle:UInt64}), sumIf(gap, gap <= {idle:UInt64}) FROM ("
            "SELECT time, user, if(prev = toDateTime64(0, 3, 'UTC'), 0, "
            "toUInt64(toUnixTimestamp64Milli(time) - toUnixTimestamp64Milli(prev))) AS gap "
            "FROM (SELECT time, user, lagInFrame(time, 1, toDateTime64(0, 3, 'UTC')) "
            "OVER (PARTITION BY session ORDER BY time, id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
            " AS prev FROM (SELECT session, time, id, user FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'desktop' AND "
            + self._IN_RANGE
            + " LIMIT 1 BY id)))"
            + self._group_by_bucket(total),
            params,
        )
        return {
            int(b): {"active_users": int(u), "idle_time": int(i), "productive_time": int(pr)}
            for b, u, i, pr in rows
        }

    def endpoint_series(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        threshold_ms: int,
        total: bool = False,
    ) -> dict[int, dict[str, float]]:
        """Sessions, pages and mean experience score per bucket of the session's first page.

        Page and session scores follow ``domain.sessions.page_score`` / ``experience_score``.
        """
        params = self._range_params(project_id, lo, hi, step_s)
        params["t"] = threshold_ms
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="s") + " AS b, count(), sum(pages), "
            "avgOrDefault(score) FROM (SELECT session, min(pt) AS s, count() AS pages, "
            f"{_SESSION_SCORE} AS score FROM (SELECT session, page, min(time) AS pt, "
            "argMin(if(code >= 400 OR onload IS NULL, 0, if(onload <= {t:UInt32}, 1, "
            "if(onload <= 4 * {t:UInt32}, 0.5, 0))), time) AS ps FROM ("
            "SELECT session, time, JSONExtractString(data, 'page_id') AS page, "
            "JSONExtractUInt(data, 'response_code') AS code, "
            "JSONExtract(data, 'on_load_ms', 'Nullable(UInt32)') AS onload FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'endpoint' AND "
            + self._IN_RANGE
            + ") GROUP BY session, page) GROUP BY session)"
            + self._group_by_bucket(total),
            params,
        )
        return {
            int(b): {"sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            for b, n, pg, sc in rows
        }

    def channel_series(
        self, project_id: int, lo: datetime, hi: datetime, step_s: int, *, total: bool = False
    ) -> dict[int, dict[str, float]]:
        params = self._range_params(project_id, lo, hi, step_s)
        rows = self.query(
            "SELECT " + self._BUCKET.format(col="time") + " AS b, uniqExact(id), "
            "uniqExactIf(id, level = 'ERROR') FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'channel' AND "
            + self._IN_RANGE
            + self._group_by_bucket(total),
            params,
        )
        return {int(b): {"events": int(n), "errors": int(e)} for b, n, e in rows}

    #: A series step so long that every instant before 2106 falls in bucket 0: the series
    #: methods called with it return the whole range ``[lo, hi]`` as one bucket keyed 0.
    WHOLE_RANGE_STEP_S = 4_294_967_295

    # ---------------------------------------------------------------- breakdowns

    def distinct_users(self, project_id: int, kind: str, lo: datetime, hi: datetime) -> int:
        """Distinct ``user`` values of a kind's events in ``[lo, hi]``."""
        rows = self.query(
            "SELECT uniqExact(user) FROM events WHERE project_id = {p:UInt32} "
            "AND kind = {k:String} AND " + self._IN_RANGE,
            {"p": project_id, "k": kind, "lo": ms(lo), "hi": ms(hi)},
        )
        return int(rows[0][0])

    def event_kinds(self, project_id: int) -> list[str]:
        """Kinds of which the project has at least one stored event."""
        # Every page of the dashboard asks, and finding them reads a column of every stored
        # event. A kind once stored stays (nothing deletes events), so what was read is kept,
        # and read again after a while only while some kind is missing; the kinds of this
        # process's own inserts are added as they are made (``_stored_kinds``).
        cached = self._kinds.get(project_id)
        if cached is None or (cached[0] < _time.monotonic() and len(cached[1]) < len(KINDS)):
            rows = self.query(
                "SELECT DISTINCT kind FROM event_ids WHERE project_id = {p:UInt32}",
                {"p": project_id},
            )
            cached = (_time.monotonic() + self._cache_s, frozenset(str(r[0]) for r in rows))
            self._kinds[project_id] = cached
        return sorted(cached[1] | self._inserted_kinds.get(project_id, frozenset()))

    def desktop_breakdown(
        self, project_id: int, lo: datetime, hi: datetime, *, idle_timeout_ms: int
    ) -> dict[str, list[dict[str, Any]]]:
        """Active users, idle and productive time over ``[lo, hi]`` per user and per UTC hour.

        Returns ``{"user": [...], "hour": [...]}``: rows keyed ``user`` (the user id, with the
        user's latest ``user_name``) and ``hour`` (0-23). The gap rule is the one of
        ``desktop_series``: a gap between consecutive activity points longer than the timeout
        is idle, shorter is productive, and counts for the user and hour of the activity that
        ends it.
        """
        return self.desktop_overview(project_id, lo, hi, None, idle_timeout_ms=idle_timeout_ms)[1]

    def desktop_overview(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int | None,
        *,
        idle_timeout_ms: int,
    ) -> tuple[dict[int, dict[str, float]], dict[str, list[dict[str, Any]]]]:
        """``desktop_series`` (with the totals, at bucket 0; one bucket without ``step_s``) and
        ``desktop_breakdown`` over ``[lo, hi]`` from one computation of the gaps."""
        # Grouping sets: per user, per hour, per bucket (one bucket without a step) and over the
        # range. grouping(b, user, h) has a bit set for each key a row's set leaves out.
        sets = "(user), (h), (b), ()"
        rows = self.query(
            "SELECT grouping(b, user, h) AS g, b, user, h, uniqExact(user), "
            "sumIf(gap, gap > {idle:UInt64}), sumIf(gap, gap <= {idle:UInt64}), "
            "argMaxIf(name, time, name != '') FROM ("
            "SELECT time, user, name, toHour(time) AS h, "
            + (self._BUCKET.format(col="time") if step_s is not None else "0")
            + " AS b, if(prev = toDateTime64(0, 3, 'UTC'), 0, "
            "toUInt64(toUnixTimestamp64Milli(time) - toUnixTimestamp64Milli(prev))) AS gap "
            "FROM (SELECT time, user, name, lagInFrame(time, 1, toDateTime64(0, 3, 'UTC')) "
            "OVER (PARTITION BY session ORDER BY time, id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
            " AS prev FROM (SELECT session, time, id, user, "
            "JSONExtractString(data, 'user_name') AS name FROM events "
            "WHERE project_id = {p:UInt32} AND kind = 'desktop' AND "
            + self._IN_RANGE
            + f" LIMIT 1 BY id))) GROUP BY GROUPING SETS ({sets}) ORDER BY g, user, h, b",
            {
                "p": project_id,
                "lo": ms(lo),
                "hi": ms(hi),
                "idle": idle_timeout_ms,
                "step": step_s or 0,
            },
        )
        series: dict[int, dict[str, float]] = {}
        out: dict[str, list[dict[str, Any]]] = {"user": [], "hour": []}
        for g, b, user, hour, users, idle, productive, name in rows:
            if g in (0b011, 0b111):  # per bucket; over the range (as bucket 0)
                series[int(b) if g == 0b011 else 0] = {
                    "active_users": int(users),
                    "idle_time": int(idle),
                    "productive_time": int(productive),
                }
                continue
            by = "user" if g == 0b101 else "hour"
            out[by].append(
                {
                    by: int(user) if by == "user" else int(hour),
                    "user_name": str(name) if by == "user" else "",
                    "active_users": int(users),
                    "idle_ms": int(idle),
                    "productive_ms": int(productive),
                }
            )
        out["user"].sort(key=lambda r: r["user"])
        return series, out

    # One row per page view (its first event) with the page score of ``endpoint_series``.
    _ENDPOINT_PAGES = (
        "SELECT session, page, min(time) AS pt, argMin(st, time) AS site, "
        "argMin(ti, time) AS title, argMin(ol, time) AS onload, "
        "argMin(if(rc >= 400 OR ol IS NULL, 0, if(ol <= {t:UInt32}, 1, "
        "if(ol <= 4 * {t:UInt32}, 0.5, 0))), time) AS ps FROM ("
        "SELECT session, time, site AS st, JSONExtractString(data, 'page_id') AS page, "
        "JSONExtractString(data, 'title') AS ti, "
        "JSONExtractUInt(data, 'response_code') AS rc, "
        "JSONExtract(data, 'on_load_ms', 'Nullable(UInt32)') AS ol FROM events "
        "WHERE project_id = {p:UInt32} AND kind = 'endpoint' AND "
        + _IN_RANGE
        + ") GROUP BY session, page"
    )

    def endpoint_sites(
        self, project_id: int, lo: datetime, hi: datetime, *, threshold_ms: int
    ) -> list[dict[str, Any]]:
        """Sessions, pages and mean experience score per visited site, worst score first.

        Sessions and scores as in ``endpoint_series`` (pages loaded inside ``[lo, hi]``, one
        score per page, a session's score the mean of its pages', a site's the mean of its
        sessions').
        """
        rows = self.query(
            "SELECT site, count(), sum(pages), avg(score) FROM (SELECT session, "
            f"argMin(site, pt) AS site, count() AS pages, {_SESSION_SCORE} AS score FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY session) GROUP BY site ORDER BY avg(score), site",
            {"p": project_id, "lo": ms(lo), "hi": ms(hi), "t": threshold_ms},
        )
        return [
            {"site": s, "sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            for s, n, pg, sc in rows
        ]

    def endpoint_overview(
        self,
        project_id: int,
        lo: datetime,
        hi: datetime,
        step_s: int,
        *,
        threshold_ms: int,
        slowest: int = 10,
    ) -> tuple[dict[int, dict[str, float]], list[dict[str, Any]], list[dict[str, Any]]]:
        """``endpoint_series`` (with the totals, at bucket 0), ``endpoint_sites`` and the
        ``slowest`` first rows of ``slowest_pages`` over ``[lo, hi]``, from one pass over the
        range's pages."""
        params = self._range_params(project_id, lo, hi, step_s)
        params["t"] = threshold_ms
        # Each session's pages ride along with its figures, and are spread out again (one row
        # per page, ``n`` its place): session figures count a session's first row only, page
        # figures every row. grouping(b, ss, site, title) has a bit set for each key the
        # row's set leaves out: 0b0111 per bucket, 0b1111 the range, 0b1011 per session site,
        # 0b1100 per page site and title.
        rows = self.query(
            "SELECT grouping(b, ss, site, title) AS g, b, ss, site, title, countIf(n = 1), "
            "sumIf(pages, n = 1), avgOrDefaultIf(score, n = 1), count(), "
            "quantileExact(0.5)(onload), max(onload), round(avg(ps), 3), "
            "argMax(session, onload) FROM (SELECT session, b, ss, pages, score, n, "
            "p.1 AS site, p.2 AS title, p.3 AS onload, p.4 AS ps FROM (SELECT session, "
            + self._BUCKET.format(col="s")
            + " AS b, ss, pages, score, pgs FROM (SELECT session, min(pt) AS s, "
            f"argMin(site, pt) AS ss, count() AS pages, {_SESSION_SCORE} AS score, "
            "groupArray((site, title, onload, ps)) AS pgs FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY session)) ARRAY JOIN pgs AS p, arrayEnumerate(pgs) AS n) "
            "GROUP BY GROUPING SETS ((b), (), (ss), (site, title))",
            params,
        )
        series: dict[int, dict[str, float]] = {}
        sites: list[tuple[float, str, dict[str, Any]]] = []
        pages: list[dict[str, Any]] = []
        for g, b, ss, site, title, n, pg, sc, loads, p50, worst, score, session in rows:
            figures = {"sessions": int(n), "pages": int(pg), "experience_score": round(sc, 3)}
            if g in (0b0111, 0b1111):  # per bucket; over the range (as bucket 0)
                series[int(b) if g == 0b0111 else 0] = figures
            elif g == 0b1011:
                sites.append((sc, ss, {"site": ss, **figures}))
            else:
                pages.append(_slow_page(site, title, loads, p50, worst, score, session))
        sites.sort(key=lambda x: (x[0], x[1]))  # worst score first, as endpoint_sites
        pages.sort(key=lambda r: (-r["on_load_p50_ms"], r["site"], r["title"]))
        return series, [row for _, _, row in sites], pages[:slowest]

    def slowest_pages(
        self, project_id: int, lo: datetime, hi: datetime, *, threshold_ms: int, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Pages (site and title) loaded in ``[lo, hi]``, slowest median onLoad first.

        Each page view counts once (its first event). Rows carry the number of loads, median
        and slowest onLoad in ms, mean page score, and the session of the slowest load.
        """
        rows = self.query(
            "SELECT site, title, count(), quantileExact(0.5)(onload), max(onload), "
            "round(avg(ps), 3), argMax(session, onload) FROM ("
            + self._ENDPOINT_PAGES
            + ") GROUP BY site, title ORDER BY quantileExact(0.5)(onload) DESC, site, title "
            f"LIMIT {int(limit)}",
            {"p": project_id, "lo": ms(lo), "hi": ms(hi), "t": threshold_ms},
        )
        return [_slow_page(*row) for row in rows]


def _slow_page(
    site: str, title: str, loads: int, p50: int, worst: int, score: float, session: str
) -> dict[str, Any]:
    """A row of ``slowest_pages``."""
    return {
        "site": site,
        "title": title,
        "loads": int(loads),
        "on_load_p50_ms": int(p50),
        "on_load_max_ms": int(worst),
        "score": float(score),
        "slowest_session": session,
    }


#: A session's experience score from its pages' scores ``ps`` (0, 0.5 or 1): their mean rounded
#: half up to 2 decimals, in integers so that it is exact (``EndpointSession.experience_score``).
_SESSION_SCORE = "intDiv(100 * sum(toUInt64(ps * 2)) + count(), 2 * count()) / 100"


@dataclass(frozen=True, slots=True)
class _Aggregate:
    table: str
    select: str
    filters: dict[str, str]
    filter_select: str
    key_type: str
    decode: Any
    cast: Any


def _player_type_column(prefix: str, action: str) -> str:
    """The aggregate's sum column of a player action type (``d_`` durations, ``n_`` counts)."""
    if action not in PLAYER_TYPES_V5:
        raise StoreError(f"no player aggregate column for action type {action!r}")
    return f"{prefix}_{action}"


def _player_sum(prefix: str, actions: Iterable[str]) -> str:
    """SQL summing the aggregate's columns of ``actions`` over a session's rows."""
    found = [f"sum({_player_type_column(prefix, a)})" for a in actions]
    return " + ".join(found) if found else "toUInt64(0)"


#: The per-type sums a player session's metrics are derived from (``player_metrics_from_sums``):
#: the durations of the types of the start, rebuffering and playing metrics, the counts of the
#: error types. Only these columns are read.
_PLAYER_DURATION_TYPES = tuple(
    dict.fromkeys(PLAYER_START_TYPES + PLAYER_REBUFFER_TYPES + PLAYER_PLAYING_TYPES)
)
_PLAYER_COUNT_TYPES = PLAYER_ERROR_TYPES


def _decode_player(r: Sequence[Any]) -> dict[str, Any]:
    n = len(_PLAYER_DURATION_TYPES)
    return {
        "session": r[0],
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "user": r[3],
        "origin": r[4],
        "os": r[5],
        "device": r[6],
        "video_type": r[7],
        "events": int(r[8]),
        "durations": {t: int(v) for t, v in zip(_PLAYER_DURATION_TYPES, r[9 : 9 + n], strict=True)},
        "counts": {t: int(v) for t, v in zip(_PLAYER_COUNT_TYPES, r[9 + n :], strict=False)},
    }


def _decode_desktop(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "session": str(r[0]),
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "login": to_dt(r[3]) if r[3] < 9_000_000_000_000 else None,
        "logout": to_dt(r[4]) if r[4] > 0 else None,
        "user_id": int(r[5]),
        "user_name": r[6],
        "client_guid": r[7],
        "client_name": r[8],
        "events": int(r[9]),
    }


def _decode_endpoint(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "session": r[0],
        "start": to_dt(r[1]),
        "end": to_dt(r[2]),
        "agent_id": r[3],
        "visited_site": r[4],
        "protocol": r[5],
        "port": int(r[6]),
        "source_addr": r[7],
        "org_name": r[8],
        "committed": to_dt(r[9]),
        "pages": int(r[10]),
        "events": int(r[11]),
    }


_M = "toUnixTimestamp64Milli"
_AGGREGATES: dict[str, _Aggregate] = {
    "player": _Aggregate(
        "player_sessions",
        f"session, {_M}(min(start)), {_M}(max(end)), max(user), max(origin), max(os), "
        "max(device), max(video_type), sum(events), "
        + ", ".join(f"sum({_player_type_column('d', t)})" for t in _PLAYER_DURATION_TYPES)
        + "".join(f", sum({_player_type_column('n', t)})" for t in _PLAYER_COUNT_TYPES),
        {"device": "dv", "video_type": "vt", "user": "u"},
        ", max(device) AS dv, max(video_type) AS vt, max(user) AS u",
        "String",
        _decode_player,
        str,
    ),
    "desktop": _Aggregate(
        "desktop_sessions",
        f"session, {_M}(min(start)), {_M}(max(end)), {_M}(min(login)), {_M}(max(logout)), "
        "max(user_id), max(user_name), max(client_guid), max(client_name), sum(events)",
        {"user_id": "toString(uid)", "user": "toString(uid)"},
        ", max(user_id) AS uid",
        "UInt32",
        _decode_desktop,
        int,
    ),
    "endpoint": _Aggregate(
        "endpoint_sessions",
        # The first page's values are the least (time, id, values...) tuple (schema v4).
        f"session, {_M}(min(start)), {_M}(max(end)), tupleElement(min(first), 3), "
        "tupleElement(min(first), 4), tupleElement(min(first), 5), tupleElement(min(first), 6), "
        "tupleElement(min(first), 7), tupleElement(min(first_org), 3), "
        f"{_M}(max(committed)), length(groupUniqArrayArray(pages)), sum(events)",
        {
            "agent_id": "ag",
            "visited_site": "vs",
            "protocol": "pr",
            "port": "toString(po)",
            "source_addr": "sa",
            "user": "ag",
            "domain": "vs",
        },
        ", tupleElement(min(first), 3) AS ag, tupleElement(min(first), 4) AS vs, "
        "tupleElement(min(first), 5) AS pr, tupleElement(min(first), 6) AS po, "
        "tupleElement(min(first), 7) AS sa",
        "String",
        _decode_endpoint,
        str,
    ),
}

#: Filters that match a site and its subdomains (``example.com`` matches ``www.example.com``)
#: instead of exact values; case-insensitive.
_DOMAIN_FILTERS: frozenset[str] = frozenset({"domain"})


def _filter_clause(name: str, column: str, param: str) -> str:
    """The HAVING clause of one session filter: the column matches any of the values."""
    if name in _DOMAIN_FILTERS:
        return (
            f"arrayExists(d -> {column} = lower(d) OR endsWith({column}, concat('.', lower(d))), "
            f"{{{param}:Array(String)}})"
        )
    return f"{column} IN {{{param}:Array(String)}}"


#: Player filters as columns of the events table (the aggregate's are in ``_AGGREGATES``).
_PLAYER_EVENT_COLUMNS = {"device": "device", "video_type": "video_type", "user": "user"}

#: Filters each aggregate kind accepts (names of the native API).
SESSION_FILTERS: dict[str, tuple[str, ...]] = {k: tuple(v.filters) for k, v in _AGGREGATES.items()}


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
        store.migrate()
    return store
