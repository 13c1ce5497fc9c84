"""Acknowledge from the journal; load the store behind it, each block exactly once.

The write path of every server and command (native ingest, receivers, ``ingest FILE``,
``simulate``, ``demo``)::

    submit(project, events)  -> deduplicate -> journal append (group commit, fsync) -> answer
    loader thread            -> journal records, in order, as blocks -> store.write_tables

**Acknowledgement.** ``submit`` returns ``(accepted, duplicates)`` once the accepted events are
in the journal and fsynced. One writer thread appends every batch queued meanwhile in one
commit (group commit), so concurrent requests share one fsync. Deduplication happens there, in
queue order: an id is a duplicate when an earlier batch of the group has it, when it waits in
the journal (``pending``: ids acknowledged, not yet loaded, in memory), or when it is stored
(``store.stored_among``: on the embedded store a filter of stored ids rules out new ids
without asking the engine). Only accepted events reach the journal, once each.

**Loading.** The loader reads records in order, up to ``block_events`` events, records the
block's range in the journal (durably), and writes it with the deduplication token
``<journal id>-<first>-<last>``. The events table and every view's table remember their last
blocks' tokens (schema v7), so after a failure or a crash at any point the same block written
again (same records, same token) adds nothing where it arrived and the rest where it did not.
Only then are its records deleted. An id leaves ``pending`` only once its block is stored, so
at any moment an acknowledged id is pending, stored, or both.

**Reads** call ``barrier()`` first: it waits until everything acknowledged before it is loaded
(asking an idle loader to write at once). **Backpressure**: past ``max_pending_events``
waiting in the journal, or more than ``max_lag_s`` of loading at the loader's speed, ``submit``
refuses with :class:`Overloaded` (HTTP 503, Retry-After);
a full disk refuses with :class:`~sessionscope.ingest.journal.DiskFull`. Nothing acknowledged
is dropped: what the loader has not written at exit is written at the next start, before
anything is read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sessionscope.domain.events import Event
from sessionscope.ingest.decoders import Decoders
from sessionscope.ingest.journal import Journal, JournalError
from sessionscope.ingest.loader import Loader
from sessionscope.ingest.records import Batch, IngestCounts, finish_all
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.idfilter import id_hashes

__all__ = ["Batch", "IngestTuning", "Ingestor", "Overloaded", "StoreUnavailable"]

log = logging.getLogger("sessionscope")

#: Journals opened with ``Ingestor.open`` in this process, by directory.
_OPEN: dict[Path, Ingestor] = {}
_OPEN_LOCK = threading.Lock()


#: Batches of at most this many bytes (encoded) may be committed by the event loop itself.
LOOP_COMMIT_BYTES = 64 * 1024
#: An event loop's commit that took longer than this (a slow disk) hands the next ones to
#: the writer thread for ``LOOP_COMMIT_PAUSE_S``.
LOOP_COMMIT_SLOW_S = 0.01
LOOP_COMMIT_PAUSE_S = 5.0
#: Commits of one batch each in a row after which the event loop commits small batches.
ALONE_COMMITS = 3


class StoreUnavailable(JournalError):
    """The store could not be asked which ids it holds (nothing was journaled)."""


class Overloaded(Exception):
    """The loader is behind: the journal holds as many events as it may."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class IngestTuning:
    """How the journal and the loader behave (see ``Settings``)."""

    #: Events acknowledged and not loaded at most; past it ``submit`` refuses (503).
    max_pending_events: int = 1_000_000
    #: The most events one block of the loader holds.
    block_events: int = 50_000
    #: How long the loader lets a small block gather events when nothing waits for it.
    linger_s: float = 0.5
    #: How long a read waits at most for the loader before it is refused (503).
    read_wait_s: float = 30.0
    #: The most loading the journal may hold, in seconds at the loader's recent speed: past
    #: it ``submit`` refuses (503), so reads wait about this long at most under overload.
    max_lag_s: float = 3.0
    #: Worker processes decoding large bodies for the event loop (``ingest.decoders``); 0:
    #: threads of this process.
    decode_processes: int = 0
    #: Large bodies done less than this apart are one burst, which the loader lets pass before
    #: it starts a block (``Ingestor.decoding``).
    burst_gap_s: float = 0.05


class Ingestor(Loader):
    """The journal of a data directory, its writer and its loader, for one store."""

    def __init__(
        self, store: ClickHouseStore, directory: Path, tuning: IngestTuning | None = None
    ) -> None:
        self.store = store
        self.tuning = tuning or IngestTuning()
        self.journal = Journal(directory)
        # One lock; the writer, the loader and readers each wait on their own condition, so
        # an append wakes the loader only when it has something to do.
        self._lock = threading.Lock()
        self._to_write = threading.Condition(self._lock)
        self._to_load = threading.Condition(self._lock)
        self._loaded_cv = threading.Condition(self._lock)
        self._queue: list[Batch] = []
        #: A write of the journal is under way (the writer's or the event loop's: one at once,
        #: so that each looks for duplicates among everything written before it).
        self._writing = False
        #: Small batches of the event loop waiting for its own commit (``_commit_on_loop``),
        #: and when that commit may run again after a slow one.
        self._on_loop: list[Batch] = []
        self._loop_commits_from = 0.0
        #: The last commits in a row that held one batch each.
        self._alone = 0
        #: Ids acknowledged and not yet loaded, per project.
        self._pending: dict[int, set[str]] = {}
        self._pending_events = 0
        #: The ids of each record acknowledged by this process, by seq, until it is loaded.
        self._record_ids: dict[int, list[str]] = {}
        records, events, last = self.journal.pending()
        self._pending_events = events
        self._acked = last
        self._loaded = 0 if records else last
        self._since: float | None = time.monotonic() if records else None
        self._flush = False
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self.last_error: str | None = None
        self._users = 1  # see ``open``
        #: Events the journal held at the start (loaded by ``start``).
        self.replayed_events = 0
        #: What the last block cost: events, decoding, writing (columns and insert), in all.
        self.last_block: dict[str, int] = {}
        #: Events per second the loader writes (a moving average over its blocks).
        self._load_rate = 0.0
        self.blocks_loaded = 0
        self.events_loaded = 0
        self.counts = IngestCounts()
        #: Where large bodies are decoded (``ingest_async``); started on first use.
        self.decoders = Decoders(self.tuning.decode_processes, hashed=store.exclusive)
        #: Large bodies being decoded, and when the last one was done (``decoding``).
        self._decoding = 0
        self._decoded_at = 0.0

    # ------------------------------------------------------------------ life cycle

    def start(self) -> Ingestor:
        """Load what the journal still holds (before anything is read), then start the writer
        and the loader."""
        self._replay()
        for target, name in ((self._write_loop, "ingest-writer"), (self._load_loop, "loader")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @classmethod
    def open(
        cls, store: ClickHouseStore, directory: Path, tuning: IngestTuning | None = None
    ) -> Ingestor:
        """The journal of ``directory``, started; shared by the users of one process (a
        journal has one writer): each ``open`` is matched by a ``close``."""
        key = directory.resolve()
        with _OPEN_LOCK:
            ingestor = _OPEN.get(key)
            if ingestor is None:
                ingestor = _OPEN[key] = cls(store, directory, tuning)
                try:
                    ingestor.start()
                except BaseException:
                    del _OPEN[key]
                    ingestor.journal.close()
                    raise
            else:
                ingestor._users += 1
            return ingestor

    def close(self, timeout_s: float = 60.0) -> None:
        """Load what is acknowledged (for ``timeout_s`` at most: the rest stays in the journal
        for the next start). The last user of an ``open`` journal (or the owner of one made
        directly) also stops the threads and closes the journal."""
        with _OPEN_LOCK:
            self._users -= 1
            last = self._users == 0
            key = self.journal.directory.resolve()
            if last and _OPEN.get(key) is self:
                del _OPEN[key]
        if not last:
            self.barrier(timeout_s)
            return
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._stopping = True
            for cond in (self._to_write, self._to_load, self._loaded_cv):
                cond.notify_all()
            # The loop's commit under way.
            self._to_write.wait_for(lambda: not self._writing, deadline - time.monotonic())
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        self.decoders.close()
        self.journal.close()

    def _replay(self) -> None:
        """Write every record the journal holds: first a block cut short, as it was."""
        replayed = 0
        block = self.journal.block()
        if block is not None:
            records = self.journal.read_range(*block)
            if records:
                log.info("ingest journal: loading block %s-%s again", *block)
                self._load(records, begun=True)
                replayed += sum(r.count for r in records)
        while True:
            records = self.journal.read(self._loaded, self.tuning.block_events)
            if not records:
                break
            self._load(records, begun=False)
            replayed += sum(r.count for r in records)
        if replayed:
            log.info("ingest journal: loaded %d events acknowledged before the start", replayed)
        self.replayed_events = replayed

    # ------------------------------------------------------------------ acknowledging

    def submit(self, project_id: int, events: Sequence[Event]) -> tuple[int, int]:
        """Journal the events not seen before; return ``(accepted, duplicates)`` once durable.

        Raises :class:`Overloaded` when the journal is full, ``DiskFull`` when its disk is,
        ``JournalError`` when it cannot be written.
        """
        if not events:
            return 0, 0
        batch = self.prepare(project_id, events)
        batch.done = done = threading.Event()
        self._enqueue(batch)
        done.wait()
        if batch.error is not None:
            raise batch.error
        return batch.result

    def prepare(self, project_id: int, events: Sequence[Event]) -> Batch:
        """A batch ready for ``submit_prepared`` (its ids hashed and its events encoded: for a
        large batch, do this in a worker thread rather than on the event loop)."""
        return Batch(project_id, events, self.store.exclusive)

    async def submit_prepared(self, batch: Batch) -> tuple[int, int]:
        """``submit`` for the event loop: it waits for the journal without holding a thread.

        While batches come one at a time (the last ``ALONE_COMMITS`` commits held one each), a
        small batch is committed by the event loop itself (``_commit_on_loop``); the rest go
        to the writer thread."""
        if not batch.ids:
            return 0, 0
        loop = asyncio.get_running_loop()
        batch.future = loop.create_future()
        if (
            self._alone >= ALONE_COMMITS
            and batch.hashes is not None
            and len(batch.body) <= LOOP_COMMIT_BYTES
        ):
            if self._stopping:
                raise Overloaded("the server is shutting down", 5)
            self._on_loop.append(batch)
            if len(self._on_loop) == 1:
                loop.call_soon(self._commit_on_loop)
        else:
            self._enqueue(batch)
        return await batch.future

    def _commit_on_loop(self) -> None:
        """Commit the small batches of the event loop's last turn, on the event loop.

        A client sending one event at a time waits for two thread wake-ups when the writer
        thread commits: the writer's, then the loop's for the answer. With nothing else to
        serve, the loop may as well commit itself, blocked for one ``fdatasync`` (about
        0.2 ms here). Under concurrent requests it must not: blocked, it serves nobody, and
        at 8 clients that measured no faster than the writer (docs/performance.md); the
        first commit of several batches sends the next ones back to the writer. It hands the
        batches to the writer also when its commit could wait: a write of the journal under
        way or queued, ids the id filter cannot rule out (the store would be asked), or a
        commit of the loop that took over ``LOOP_COMMIT_SLOW_S`` lately (a slow disk must not
        stall every request)."""
        group, self._on_loop = self._on_loop, []
        if not group:
            return
        with self._lock:
            free = (
                not self._queue
                and not self._writing
                and not self._stopping
                and time.monotonic() >= self._loop_commits_from
            )
            if free:
                self._writing = True
        written = False
        if free:
            try:
                began = time.monotonic()
                written = self._write_group(group, on_loop=True)
                if written and time.monotonic() - began > LOOP_COMMIT_SLOW_S:
                    self._loop_commits_from = time.monotonic() + LOOP_COMMIT_PAUSE_S
            finally:
                with self._lock:
                    self._writing = False
                    if self._queue or self._stopping:
                        self._to_write.notify_all()
        if written:
            return
        with self._lock:
            stopping = self._stopping  # then the writer is stopping too
            if not stopping:
                self._queue.extend(b for b in group if not b.finished)
                self._to_write.notify()
        if stopping:
            finish_all(group, Overloaded("the server is shutting down", 5))

    def _enqueue(self, batch: Batch) -> None:
        with self._lock:
            if self._stopping:
                raise Overloaded("the server is shutting down", 5)
            self._queue.append(batch)
            self._to_write.notify()

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue or self._writing:
                    if self._stopping and not self._queue:
                        return
                    self._to_write.wait()
                group, self._queue = self._queue, []
                self._writing = True
            try:
                self._write_group(group)
            finally:
                with self._lock:
                    self._writing = False
                    if self._stopping:  # ``close`` waits for the writes under way
                        self._to_write.notify_all()

    def _write_group(self, group: list[Batch], *, on_loop: bool = False) -> bool:
        """``_write``, each batch failing with what it raises."""
        try:
            return self._write(group, on_loop=on_loop)
        except (Overloaded, JournalError) as exc:  # each batch of the group fails with it
            finish_all(group, exc)
        except Exception as exc:  # the store could not be asked for duplicates
            log.error("ingest: %s: %s", type(exc).__name__, str(exc)[:300])
            refused = StoreUnavailable(f"the store could not be reached: {str(exc)[:200]}")
            finish_all(group, refused)
        return True

    def _write(self, group: list[Batch], *, on_loop: bool = False) -> bool:
        """Deduplicate the group in queue order, append what is new in one commit, answer.

        ``on_loop``: the event loop's commit (``_commit_on_loop``), which waits for nothing:
        False, having answered only the batches refused for the bound, when the store would
        have to be asked which ids it holds (the id filter cannot rule them all out) or
        another write of the journal is under way."""
        limit = self._bound()
        with self._lock:
            pending = self._pending_events
        room = limit - pending
        admitted: list[Batch] = []
        for batch in group:
            # A batch larger than the whole bound still goes in when nothing waits.
            if len(batch.ids) > room and pending > 0:
                batch.finish(self._overloaded(pending))
                continue
            room -= len(batch.ids)
            pending += len(batch.ids)
            admitted.append(batch)
        # The group's ids already acknowledged: waiting in the journal, or stored (one look
        # per project). An id leaves the pending ids only once it is stored, so checking
        # them first misses none.
        stored: dict[int, set[str]] = {}
        for project_id in {b.project_id for b in admitted}:
            mine = [b for b in admitted if b.project_id == project_id]
            ids = [i for b in mine for i in b.ids]
            with self._lock:
                waiting = self._pending.get(project_id)
                found = waiting.intersection(ids) if waiting else set()
            hashes = None
            if all(b.hashes is not None for b in mine):
                hashes = (
                    mine[0].hashes if len(mine) == 1 else np.concatenate([b.hashes for b in mine])
                )
            if not on_loop:
                found |= self.store.stored_among(project_id, ids, hashes)
            elif not self.store.none_stored(project_id, hashes):
                return False  # the writer asks the store
            stored[project_id] = found
        appends: list[tuple[int, int, bytes]] = []
        kept: list[tuple[Batch, list[str]]] = []
        for batch in admitted:
            seen = stored[batch.project_id]
            if seen.isdisjoint(batch.ids) and len(set(batch.ids)) == len(batch.ids):
                fresh = batch.ids  # the usual case: all new, in sets not loops
                seen.update(fresh)
                body = batch.body
            else:
                keep = []
                for event_id in batch.ids:
                    keep.append(event_id not in seen)
                    seen.add(event_id)
                fresh = [i for i, k in zip(batch.ids, keep, strict=True) if k]
                body = batch.subset(keep) if fresh else b""
            batch.result = (len(fresh), len(batch.ids) - len(fresh))
            if fresh:
                appends.append((batch.project_id, len(fresh), body))
                kept.append((batch, fresh))
        # Durable when it returns.
        if not appends:
            seqs: list[int] = []
        elif on_loop:
            written = self.journal.try_append(appends)
            if written is None:  # the loader's write is under way: the writer waits for it
                return False
            seqs = written
        else:
            seqs = self.journal.append(appends)
        self._alone = self._alone + 1 if len(group) == 1 else 0
        if seqs:
            with self._lock:
                for (_, ids), seq in zip(kept, seqs, strict=True):
                    self._record_ids[seq] = ids
                    self._pending_events += len(ids)
                self._acked = max(self._acked, seqs[-1])  # reads from now on wait for them
                if self._since is None:  # the loader starts counting its linger
                    self._since = time.monotonic()
                    self._to_load.notify()
                elif self._pending_events >= self.tuning.block_events:
                    self._to_load.notify()
        self.counts.add(sum(b.result[0] for b in admitted), sum(b.result[1] for b in admitted))
        finish_all(admitted)
        if not seqs:
            return True
        # After the answer (about 3 ms less of it for 10,000 events): only this thread looks
        # for duplicates, and it does so again only once these ids are pending and in the
        # id filter. In the filter before they can leave the pending ids (once loaded): a
        # resend then finds them "maybe stored" and asks the store.
        known = self.store.id_filter()
        if known is not None:
            for batch, ids in kept:
                hashes = batch.hashes if ids is batch.ids else None
                known.add(batch.project_id, id_hashes(ids) if hashes is None else hashes)
        with self._lock:
            for (batch, ids), seq in zip(kept, seqs, strict=True):
                if seq in self._record_ids:  # else loaded meanwhile: stored, not pending
                    self._pending.setdefault(batch.project_id, set()).update(ids)
        return True

    def _overloaded(self, pending: int) -> Overloaded:
        # Retry after a second: room opens as soon as the block being written is in.
        rate = self._load_rate or 1.0
        return Overloaded(
            f"the ingest journal holds {pending:,} events not yet loaded (about "
            f"{pending / rate:.0f} s of loading); retry shortly",
            1,
        )

    def refuse_if_full(self) -> None:
        """Raise :class:`Overloaded` when the journal is at its bound already, before the
        caller spends work decoding a batch that would be refused."""
        pending = self._pending_events
        if pending and pending >= self._bound():
            raise self._overloaded(pending)

    def _lag_s(self) -> float:
        since = self._since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def status(self) -> dict[str, Any]:
        """What the journal holds and how far the loader is (for ``/healthz``)."""
        with self._lock:
            return {
                "pending_events": self._pending_events,
                "acknowledged_seq": self._acked,
                "loaded_seq": self._loaded,
                "loader_lag_s": round(self._lag_s(), 3),
                "loader_events_per_s": round(self._load_rate),
                "bound_events": self._bound(),
                "last_block": self.last_block,
                "blocks_loaded": self.blocks_loaded,
                "events_loaded": self.events_loaded,
                "last_error": self.last_error,
            }
