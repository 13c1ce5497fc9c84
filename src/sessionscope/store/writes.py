"""The store's writer: events in as one deduplicated block, ids and session starts remembered.

The ingest journal's loader (:mod:`sessionscope.ingest`) calls ``write_tables``; tests and the
benchmark's store builder call ``insert_events``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from sessionscope.domain.events import KINDS, Event, EventColumns
from sessionscope.store.events import EventReads
from sessionscope.store.idfilter import Hashes, IdFilter, id_hashes
from sessionscope.store.sessionstarts import KEY_SEPARATOR, SessionStarts, session_key

log = logging.getLogger("sessionscope")

__all__ = ["Writes", "columns_table", "event_table"]


_TS_MS = pa.timestamp("ms", tz="UTC")


def event_table(project_id: int, events: Sequence[Event]) -> pa.Table:
    """The rows of ``events`` as the columns of the events table (``seq`` is added later).

    One pass per column (comprehensions, and Arrow converting the datetimes): the loader
    builds a table of tens of thousands of rows per block.
    """
    # Times to the millisecond, as ``epoch_ms`` (towards the past: all are after 2000).
    times = pa.array([e.time for e in events], pa.timestamp("us", tz="UTC"))
    return _table(
        project_id,
        kinds=[e.kind for e in events],
        sessions=[e.session for e in events],
        ids=[e.id for e in events],
        times=times.cast(_TS_MS, safe=False),
        types=[e.type for e in events],
        durations_ms=[e.duration_ms for e in events],
        users=[e.user for e in events],
        attrs=[e.attrs for e in events],
    )


def columns_table(project_id: int, columns: EventColumns) -> pa.Table:
    """``event_table`` of events decoded as columns (``domain.events.decode_columns``)."""
    return _table(
        project_id,
        kinds=columns.kinds,
        sessions=columns.sessions,
        ids=columns.ids,
        times=pa.array(columns.times_ms, _TS_MS),
        types=columns.types,
        durations_ms=columns.durations_ms,
        users=columns.users,
        attrs=columns.attrs,
    )


#: The columns of one kind's details: (column, key of the details, kind). The other kinds'
#: rules never give that key, so a batch without that kind has "" throughout.
_DETAIL_COLUMNS = (
    ("device", "device", "player"),
    ("video_type", "video_type", "player"),
    ("level", "level", "channel"),
    ("site", "visited_site", "endpoint"),
)


def _table(
    project_id: int,
    *,
    kinds: list[str],
    sessions: list[str],
    ids: list[str],
    times: pa.Array,
    types: list[str],
    durations_ms: list[int | None],
    users: list[str],
    attrs: Sequence[Mapping[str, Any]],
) -> pa.Table:
    string = pa.string()
    present = set(kinds)
    n = len(ids)
    details = {
        column: (
            pa.array([a.get(key, "") for a in attrs], string)
            if kind in present
            else pa.nulls(n, string).fill_null("")
        )
        for column, key, kind in _DETAIL_COLUMNS
    }
    return pa.table(
        {
            "project_id": pa.array(np.full(n, project_id, dtype=np.uint32)),
            "kind": pa.array(kinds, string),
            "session": pa.array(sessions, string),
            "id": pa.array(ids, string),
            "time": times,
            "type": pa.array(types, string),
            "duration_ms": pa.array(durations_ms, pa.uint64()),
            "user": pa.array(users, string),
            **details,
            "data": _binary([orjson.dumps(a) for a in attrs]),
        }
    )


def _binary(values: list[bytes]) -> pa.Array:
    """``pa.array(values, pa.binary())``, built from one joined buffer and its offsets: about
    half the time for thousands of values."""
    sizes = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] >= 1 << 31:  # past 32-bit offsets (not from one request)
        return pa.array(values, pa.binary())
    return pa.Array.from_buffers(
        pa.binary(),
        len(values),
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(values))],
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

    # ---------------------------------------------------------------- events


class _LoadStopped(Exception):
    """A background load stopped because the store is closing."""


class Writes(EventReads):
    """Inserts of events; remembers the kinds it stored for ``event_kinds``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._id_filter: IdFilter | None = None
        self._starts: dict[int, SessionStarts] = {}
        self._ingest_locks: dict[int, threading.Lock] = {}
        #: The threads that fill the id filter and the session starts from the store, and the
        #: flag that stops them: ``close`` joins them before it closes the engine's
        #: connections (a thread still in the embedded engine when the process exits crashes
        #: it: a segmentation fault in the engine's background pool).
        self._loaders: list[threading.Thread] = []
        self._closing = threading.Event()

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
        super().close()

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
        maybe = self._maybe_stored(project_id, hashes)
        if maybe is None:
            return self._existing_ids(project_id, list(set(ids)))
        if not maybe.any():
            return set()
        candidates = {i for i, m in zip(ids, maybe.tolist(), strict=True) if m}
        return self._existing_ids(project_id, list(candidates))

    def none_stored(self, project_id: int, hashes: Hashes | None) -> bool:
        """Whether the id filter rules out every id of ``hashes`` (``stored_among`` would
        then find none without asking the engine); False when it cannot tell."""
        maybe = self._maybe_stored(project_id, hashes)
        return maybe is not None and not maybe.any()

    def _maybe_stored(self, project_id: int, hashes: Hashes | None) -> Any:
        """The id filter's answer for each of ``hashes`` (a boolean array: maybe stored), or
        None when there is no filter yet (a shared store, or one still loading)."""
        known = self.id_filter()
        if known is None or not known.ready or hashes is None:
            return None
        return known.maybe_stored(project_id, hashes)

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
