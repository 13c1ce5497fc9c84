"""Large request bodies decoded, validated and encoded in worker processes.

A server's Python runs one thread at a time (the interpreter lock). Decoding, validating and
encoding a batch of events costs about 10 µs an event, so under sustained batch ingest that
work held the lock most of the time while the second core sat half idle, and the server's
own threads (the event loop, the journal's writer, the loader) waited for it (measured in
docs/performance.md). Bodies over ``INLINE_BODY_BYTES`` go to a pool of worker processes
instead: a worker runs the very steps of :mod:`sessionscope.ingest.pipeline` (undo gzip,
decode, validate) and builds the batch's journal record and id hashes
(:func:`sessionscope.ingest.records.encode`), and the server gets back only the record, the
ids and their hashes, or the problems to refuse the batch with. Smaller bodies are decoded
in place: sending them to a process would cost more than decoding them.

Workers are started with ``spawn`` (a fork of a server running the embedded engine's threads
would not be safe), on first use. A worker that dies (killed, out of memory) breaks the
pool: the batch that was in it is decoded in a thread instead, and the next large body
starts a new pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from anyio import to_thread

from sessionscope.ingest.records import Batch, encode
from sessionscope.store.idfilter import id_hashes

__all__ = ["Decoders", "prepare_in_worker"]

log = logging.getLogger("sessionscope")


def prepare_in_worker(
    project_id: int,
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
    hashed: bool,
) -> tuple[Any, ...]:
    """In a worker: the pipeline's steps for one body. Returns ``("ok", ids, hashes, record)``
    or ``("refused", status, code, message, problems)``."""
    from sessionscope.ingest.pipeline import IngestError, decode_body, parse_events

    try:
        events = parse_events(decode_body(body, content_encoding, max_bytes), content_type)
    except IngestError as exc:
        return ("refused", exc.status, exc.code, exc.message, exc.problems)
    ids = [e.id for e in events]
    return ("ok", ids, id_hashes(ids) if hashed else None, encode(project_id, events))


def _worker_start() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the server stops its workers
    # itself (``close``), so a worker does not print a KeyboardInterrupt of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Decoders:
    """A pool of ``processes`` worker processes, started on first use."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        #: Batches decoded in worker processes so far.
        self.batches = 0

    def _executor(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed or self.processes <= 0:
                return None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_start,
                )
            return self._pool

    async def prepare(
        self,
        project_id: int,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        max_bytes: int,
        hashed: bool,
    ) -> Batch:
        """The batch of ``body`` (raises ``IngestError`` as the pipeline does)."""
        from sessionscope.ingest.pipeline import IngestError

        args = (project_id, body, content_type, content_encoding, max_bytes, hashed)
        pool = self._executor()
        if pool is None:
            out = await to_thread.run_sync(prepare_in_worker, *args)
        else:
            try:
                out = await asyncio.get_running_loop().run_in_executor(
                    pool, prepare_in_worker, *args
                )
            except BrokenProcessPool:
                self._broken(pool)
                out = await to_thread.run_sync(prepare_in_worker, *args)
        if out[0] == "refused":
            _, status, code, message, problems = out
            raise IngestError(status, code, message, problems)
        _, ids, hashes, record = out
        if pool is not None:
            self.batches += 1
        return Batch.encoded(project_id, ids, hashes, record)

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        log.warning("ingest: a decoding process ended unexpectedly; starting new ones")
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
