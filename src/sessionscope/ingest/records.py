"""What the ingest journal holds and how batches reach it.

- A journal record's body (:func:`encode`): a batch of 64 events or more as the events table's
  Arrow columns (an Arrow IPC stream, or several back to back, its buffers compressed with
  LZ4; built by the acknowledging thread or a decoding process, so the loader turns it into
  its block without work per event in Python), a smaller one as msgpack;
- :func:`tables`: records back into the loader's tables;
- :class:`Batch`: a batch on its way to the journal, and its outcome;
- :class:`IngestCounts`: what ingest answered (for ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa

from sessionscope.domain.events import Event, EventColumns
from sessionscope.ingest.journal import Record
from sessionscope.store.clickhouse import columns_table, event_table
from sessionscope.store.idfilter import id_hashes

__all__ = [
    "ARROW_MIN_EVENTS",
    "Batch",
    "IngestCounts",
    "concat",
    "encode",
    "encode_columns",
    "finish_all",
    "is_arrow",
    "tables",
]

_encode_events = msgspec.msgpack.Encoder().encode
_decode_events = msgspec.msgpack.Decoder(list[Event]).decode

#: Batches of at least this many events are journaled as the events table's Arrow columns
#: (built by the acknowledging thread), smaller ones as msgpack (cheaper for one event): the
#: loader then turns a large batch into its block without work per event in Python, where it
#: would compete for the interpreter with the requests.
ARROW_MIN_EVENTS = 64


#: Before an Arrow IPC stream in a record: 8 bytes, so that the stream's buffers keep the
#: 8-byte alignment Arrow expects when read in place.
_ARROW = b"ARROWIPC"


def encode(project_id: int, events: Sequence[Event]) -> bytes:
    """A journal record's body: ``ARROWIPC`` + an Arrow IPC stream, or ``M`` + msgpack."""
    if len(events) < ARROW_MIN_EVENTS:
        return b"M" + _encode_events(events)
    return _ipc(event_table(project_id, events))


def encode_columns(project_id: int, columns: EventColumns) -> bytes:
    """``encode`` of a batch of ``ARROW_MIN_EVENTS`` events or more decoded as columns."""
    assert len(columns) >= ARROW_MIN_EVENTS
    return _ipc(columns_table(project_id, columns))


#: LZ4 makes a record about six times smaller (the events' JSON details repeat) for about
#: 0.1 µs an event: less to write and fsync before the answer (about 11 ms less for a batch of
#: 10,000 events here), to send back from a decoding process, and to read for the loader.
#: Records of earlier versions, not compressed, are read the same way.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    body: bytes = _ARROW + sink.getvalue().to_pybytes()
    return body


def is_arrow(body: bytes) -> bool:
    """Whether a record's body holds Arrow columns (``concat`` joins those in place)."""
    return body[: len(_ARROW)] == _ARROW


def concat(project_id: int, bodies: Sequence[bytes]) -> bytes:
    """One journal record's body holding the events of ``bodies`` (of one project), in order:
    Arrow streams back to back after one ``ARROWIPC`` (nothing decoded or encoded again)."""
    if all(is_arrow(body) for body in bodies):
        return _ARROW + b"".join(memoryview(body)[len(_ARROW) :] for body in bodies)
    parts = [t for _, t in tables([Record(0, project_id, 0, body) for body in bodies])]
    return _ipc(pa.concat_tables(parts))


def _table(project_id: int, body: bytes) -> pa.Table:
    """The events of one record's body as ``event_table`` columns."""
    ((_, table),) = tables([Record(0, project_id, 0, body)])
    return table


def tables(records: Sequence[Record]) -> list[tuple[int, pa.Table]]:
    """The events of journal records as ``event_table`` columns, in order: an Arrow record is
    read in place (its buffers decompressed); a run of small (msgpack) records of one project
    becomes one table (a table per single event would cost the loader more than the
    events)."""
    out: list[tuple[int, pa.Table]] = []
    run: list[Event] = []
    run_project = 0
    for record in records:
        arrow = record.body[: len(_ARROW)] == _ARROW
        if run and (arrow or record.project_id != run_project):
            out.append((run_project, event_table(run_project, run)))
            run = []
        if arrow:
            out.append((record.project_id, _read_streams(record.body)))
        else:
            run_project = record.project_id
            run.extend(_decode_events(record.body[1:]))
    if run:
        out.append((run_project, event_table(run_project, run)))
    return out


def _read_streams(body: bytes) -> pa.Table:
    """The table of an Arrow record: one IPC stream, or several back to back (``concat``)."""
    source = pa.BufferReader(pa.py_buffer(body).slice(len(_ARROW)))
    size = len(body) - len(_ARROW)
    parts = [pa.ipc.open_stream(source).read_all()]
    while source.tell() < size:
        parts.append(pa.ipc.open_stream(source).read_all())
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


class IngestCounts:
    """What ingest answered since the start (for ``/metrics``): events accepted and found
    duplicate, and batches refused, by reason (the error code of the answer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[str, int] = {}

    def add(self, accepted: int, duplicates: int) -> None:
        with self._lock:
            self.accepted += accepted
            self.duplicates += duplicates

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def snapshot(self) -> tuple[int, int, dict[str, int]]:
        with self._lock:
            return self.accepted, self.duplicates, dict(self.refused)


class Batch:
    """A batch on its way to the journal (see ``Ingestor.prepare``), and what became of it."""

    __slots__ = (
        "body",
        "done",
        "error",
        "events",
        "finished",
        "future",
        "hashes",
        "ids",
        "project_id",
        "result",
    )

    def __init__(
        self,
        project_id: int,
        events: Sequence[Event] | None,
        hashed: bool,
        future: asyncio.Future[tuple[int, int]] | None = None,
        *,
        encoded: tuple[list[str], bytes] | None = None,
    ) -> None:
        self.project_id = project_id
        #: Set for a batch submitted from the event loop (``submit_prepared``).
        self.future = future
        #: The events (``None`` for a batch prepared in a worker process: see ``encoded``).
        self.events = events
        if encoded is not None:
            self.ids, self.body = encoded
        else:
            assert events is not None
            self.ids = [e.id for e in events]
            # Encoded by the caller's thread; encoded again by the writer only if it drops
            # some.
            self.body = encode(project_id, events)
        # Always in this process: Python's string hash differs from one process to another.
        self.hashes = id_hashes(self.ids) if hashed else None
        self.finished = False
        #: Set for a batch submitted from a thread (``submit``), which waits on it.
        self.done: threading.Event | None = None
        self.result = (0, 0)
        self.error: BaseException | None = None

    @classmethod
    def encoded(cls, project_id: int, ids: list[str], hashed: bool, body: bytes) -> Batch:
        """A batch whose events were decoded and encoded elsewhere (a worker process): its
        ids and its journal record's body."""
        return cls(project_id, None, hashed, encoded=(ids, body))

    def subset(self, keep: Sequence[bool]) -> bytes:
        """The journal record of the events ``keep`` marks (the rest were duplicates)."""
        if self.events is not None:
            return encode(self.project_id, [e for e, k in zip(self.events, keep, strict=True) if k])
        return _ipc(_table(self.project_id, self.body).filter(pa.array(keep, pa.bool_())))

    def finish(self, error: BaseException | None = None) -> None:
        """Record the outcome (``result`` or ``error``) and wake the submitter."""
        finish_all([self], error)


def finish_all(batches: Sequence[Batch], error: BaseException | None = None) -> None:
    """Record the outcome of each batch (its ``result``, or ``error``) and wake its submitter:
    the batches of one event loop with one wake-up of that loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
    for batch in batches:
        if batch.finished:
            continue
        batch.finished = True
        if error is not None:
            batch.error = error
        if batch.done is not None:
            batch.done.set()
        future = batch.future
        if future is not None:
            by_loop.setdefault(future.get_loop(), []).append((future, batch.result, batch.error))
    running = asyncio._get_running_loop()
    for loop, outcomes in by_loop.items():
        if loop is running:  # the event loop's own commit: no wake-up to send
            _settle_all(outcomes)
            continue
        # The loop may be gone (a server shutting down): nobody waits for the answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle_all, outcomes)


def _settle_all(outcomes: list[tuple[Any, ...]]) -> None:
    for future, result, error in outcomes:
        _settle(future, result, error)


def _settle(
    future: asyncio.Future[tuple[int, int]],
    result: tuple[int, int],
    error: BaseException | None,
) -> None:
    if future.done():  # the request went away meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
