"""The loader of the ingest journal: blocks into the store behind the acknowledgements, reads
waiting for it, and the journal's bound by its speed (see :mod:`sessionscope.ingest.ingestor`,
whose :class:`~sessionscope.ingest.ingestor.Ingestor` this is a part of)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sessionscope.ingest.journal import Journal, Record
from sessionscope.ingest.records import tables

if TYPE_CHECKING:
    from sessionscope.ingest.ingestor import IngestTuning
    from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["Loader"]

log = logging.getLogger("sessionscope")


class Loader:
    """The loader's side of an ``Ingestor``: its thread (``_load_loop``), what holds it back
    (``decoding``), and what waits for it (``barrier``, the bound)."""

    store: ClickHouseStore
    tuning: IngestTuning
    journal: Journal
    _lock: threading.Lock
    _to_load: threading.Condition
    _loaded_cv: threading.Condition
    _pending: dict[int, set[str]]
    _pending_events: int
    _record_ids: dict[int, list[str]]
    #: The last seq acknowledged, and the last loaded.
    _acked: int
    _loaded: int
    #: When the oldest event not loaded was acknowledged (None: none waits).
    _since: float | None
    #: A read asked the loader to load at once.
    _flush: bool
    _stopping: bool
    last_error: str | None
    last_block: dict[str, int]
    _load_rate: float
    blocks_loaded: int
    events_loaded: int
    _decoding: int
    _decoded_at: float

    def _load_loop(self) -> None:
        backoff = 0.5
        while True:
            with self._lock:
                while True:
                    if self._pending_events <= 0 or self._acked <= self._loaded:
                        if self._stopping:
                            return
                        self._flush = False
                        self._to_load.wait()
                        continue
                    now = time.monotonic()
                    waited = now - (self._since or now)
                    full = self._pending_events >= self.tuning.block_events
                    if (
                        self._flush
                        or self._stopping
                        or waited >= self.tuning.linger_s
                        or (
                            full
                            and (
                                not self._bursting(now)
                                or self._pending_events >= self._burst_most()
                            )
                        )
                    ):
                        break
                    wait = self.tuning.linger_s - waited
                    self._to_load.wait(min(wait, self.tuning.burst_gap_s) if full else wait)
                # Only what the writer has counted: a commit it has not registered yet would
                # be loaded here and then counted as pending for ever.
                acked = self._acked
            try:
                block = self.journal.block()
                if block is not None:  # a block that failed: the same records again
                    self._load(self.journal.read_range(*block), begun=True)
                else:
                    records = self.journal.read(self._loaded, self.tuning.block_events, acked)
                    if records:
                        self._load(records, begun=False)
                backoff = 0.5
                self.last_error = None
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.error("ingest loader: %s (retrying in %.1f s)", self.last_error, backoff)
                with self._lock:
                    if self._stopping:
                        return  # the journal keeps the block for the next start
                    self._to_load.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    @contextlib.contextmanager
    def decoding(self) -> Iterator[None]:
        """Around the decoding of a large body (on the event loop: ``ingest_async``).

        Decoding large bodies and loading a block compete for the same cores, and only the
        decoding keeps a client waiting (a read that waits for the loader makes it load at
        once). So while large bodies keep coming (``burst_gap_s`` apart at most), a full
        block is left to gather, up to the linger or two blocks' worth of events (and a block
        short of the bound: ``_burst_most``), whichever comes first. Measured in
        docs/performance.md: in bursts of five 10,000-event batches, the batch during which
        the loader started its insert took 86 ms instead of about 57 ms (medians of ten
        runs); left to gather, 58 ms."""
        self._decoding += 1
        try:
            yield
        finally:
            self._decoding -= 1
            self._decoded_at = time.monotonic()

    def _burst_most(self) -> int:
        """The most events a burst leaves waiting: two blocks, and a block less than the bound
        (a burst that held a block back must not push its own batches into refusals)."""
        block = self.tuning.block_events
        return min(2 * block, self._bound() - block)

    def _bursting(self, now: float) -> bool:
        """Whether large bodies are arriving (``decoding``)."""
        return self._decoding > 0 or now - self._decoded_at < self.tuning.burst_gap_s

    def _load(self, records: list[Record], *, begun: bool) -> None:
        """Write records as one block (``begun``: their range is recorded already)."""
        first, last = records[0].seq, records[-1].seq
        began = time.monotonic()
        if not begun:
            self.journal.begin_block(first, last)
        blocks = tables(records)
        decoded = time.monotonic()
        # The writer put acknowledged ids in the id filter; records from before this start
        # are loaded before anything is acknowledged (their ids are added here).
        replay = any(r.seq not in self._record_ids for r in records)
        token = f"{self.journal.id}-{first}-{last}"
        columns_s, insert_s = self.store.write_tables(blocks, token, remember_ids=replay)
        written = time.monotonic()
        self.journal.end_block(last)
        count = sum(r.count for r in records)
        with self._lock:
            for r in records:
                ids = self._record_ids.pop(r.seq, None)
                waiting = self._pending.get(r.project_id)
                if ids is not None and waiting is not None:
                    waiting.difference_update(ids)
                    if not waiting:
                        del self._pending[r.project_id]
            self._pending_events = max(0, self._pending_events - count)
            self._loaded = max(self._loaded, last)
            self._since = time.monotonic() if self._acked > self._loaded else None
            self._loaded_cv.notify_all()
        self.blocks_loaded += 1
        self.events_loaded += count
        self.last_block = {
            "events": count,
            "decode_ms": round((decoded - began) * 1000),
            "columns_ms": round(columns_s * 1000),
            "insert_ms": round(insert_s * 1000),
            "write_ms": round((written - decoded) * 1000),
            "total_ms": round((time.monotonic() - began) * 1000),
        }
        if count >= 1000:  # the loader's speed, from blocks large enough to say it
            rate = count / max(time.monotonic() - began, 1e-3)
            self._load_rate = rate if not self._load_rate else 0.7 * self._load_rate + 0.3 * rate
        if self.blocks_loaded % 16 == 0:
            self.journal.checkpoint()

    # ------------------------------------------------------------------ reads and the bound

    def caught_up(self) -> bool:
        """Whether everything acknowledged is loaded (no need to wait before a read)."""
        return self._loaded >= self._acked

    def barrier(self, timeout_s: float | None = None) -> bool:
        """Wait until everything acknowledged before this call is in the store; False when
        that took longer than ``timeout_s`` (default ``read_wait_s``)."""
        with self._lock:
            target = self._acked
            if self._loaded >= target:
                return True
            self._flush = True
            self._to_load.notify()
            return self._loaded_cv.wait_for(
                lambda: self._loaded >= target,
                self.tuning.read_wait_s if timeout_s is None else timeout_s,
            )

    def _bound(self) -> int:
        """How many events may wait in the journal: ``max_pending_events``, and no more than
        the loader writes in ``max_lag_s`` at its recent speed (a read waits for what is
        pending, so this bounds how long a read waits under a load the store cannot keep up
        with), but never under three blocks: one being loaded, one a burst of large bodies
        may hold back (``decoding``), one of room."""
        limit = self.tuning.max_pending_events
        if self._load_rate:
            by_time = int(self._load_rate * self.tuning.max_lag_s)
            limit = min(limit, max(by_time, 3 * self.tuning.block_events))
        return limit
