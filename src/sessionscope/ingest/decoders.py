"""Large request bodies decoded, validated and encoded in worker processes.

A server's Python runs one thread at a time (the interpreter lock). Decoding, validating and
encoding a batch of events costs about 10 µs an event, so under sustained batch ingest that
work held the lock most of the time while the second core sat half idle, and the server's
own threads (the event loop, the journal's writer, the loader) waited for it (measured in
docs/performance.md). Bodies over ``INLINE_BODY_BYTES`` go to a pool of worker processes
instead: a worker runs the very steps of :mod:`sessionscope.ingest.pipeline` (undo gzip,
decode, validate) and builds the batch's journal record (a batch of valid events straight
from the decoded structs, :func:`sessionscope.domain.events.decode_columns`; any other through
events, :func:`sessionscope.ingest.records.encode`), and the server gets back only the record
and the ids, or the problems to refuse the batch with. The ids' hashes for the id filter are
computed by the server: Python's string hash is seeded per process, so a worker's hashes
would not match the server's (a resent event would pass the filter as new). Smaller bodies
are decoded in place: sending them to a process would cost more than decoding them.

Workers are started with ``spawn`` (a fork of a server running the embedded engine's threads
would not be safe), all of them on first use, and end with the server, however it ends (a
worker whose server has gone exits within ``ORPHAN_CHECK_S``). A worker that dies (killed,
out of memory) breaks the pool: the batch that was in it is decoded in a thread instead, and
the next large body starts a new pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

from anyio import to_thread

from sessionscope.heap import arrow_on_system_allocator, freeze_startup_objects
from sessionscope.ingest.records import (
    ARROW_MIN_EVENTS,
    Batch,
    concat,
    encode_columns,
    is_arrow,
)

__all__ = ["Decoders", "prepare_in_worker"]

log = logging.getLogger("sessionscope")


def prepare_in_worker(
    project_id: int,
    body: bytes | tuple[str, int],
    content_type: str | None,
    content_encoding: str | None,
    max_bytes: int,
) -> tuple[Any, ...]:
    """In a worker: the pipeline's steps for one body (its bytes, or where it is in shared
    memory: a segment's name and the body's size). Returns ``("ok", ids, record)``
    or ``("refused", status, code, message, problems)``. A batch of valid events is decoded
    straight into the record's columns when it can be (``domain.events.decode_columns``),
    else event by event, as the pipeline does (which names every problem)."""
    from sessionscope.domain.events import decode_columns
    from sessionscope.ingest.pipeline import IngestError, decode_body, is_ndjson, parse_events

    if isinstance(body, tuple):
        body = _read_slot(*body)
    try:
        data = decode_body(body, content_encoding, max_bytes)
        columns = decode_columns(data, ndjson=is_ndjson(content_type), least=ARROW_MIN_EVENTS)
        if columns is not None:
            return ("ok", columns.ids, encode_columns(project_id, columns))
        events = parse_events(data, content_type)
    except IngestError as exc:
        return ("refused", exc.status, exc.code, exc.message, exc.problems)
    batch = Batch(project_id, events, hashed=False)
    return ("ok", batch.ids, batch.body)


#: A worker's segments of shared memory, attached on first use (by name); the oldest is let go
#: past ``_ATTACHED_MOST`` (the server replaced it with a larger one).
_attached: dict[str, SharedMemory] = {}
_ATTACHED_MOST = 8


def _read_slot(name: str, size: int) -> bytes:
    """A body the server wrote in shared memory (``_Slots``), copied out."""
    segment = _attached.get(name)
    if segment is None:
        while len(_attached) >= _ATTACHED_MOST:
            _attached.pop(next(iter(_attached))).close()
        segment = _attached[name] = SharedMemory(name)
    view = segment.buf
    assert view is not None
    return bytes(view[:size])


#: Bodies of at least this many bytes (once inflated) are cut into parts, one per worker.
SPLIT_BYTES = 1 << 20

#: Where a JSON array may be cut: between two objects.
_BETWEEN = re.compile(rb"\}\s*,\s*\{")


def _inflated_size(body: bytes, content_encoding: str | None) -> int:
    """The size of ``body`` once inflated: a gzip stream ends with it (modulo 2^32; of its
    last member only, which at worst leaves a body whole)."""
    from sessionscope.ingest.pipeline import is_gzip

    if is_gzip(content_encoding) and len(body) >= 18:
        return int.from_bytes(body[-4:], "little")
    return len(body)


def split_body(
    body: bytes, content_type: str | None, content_encoding: str | None, max_bytes: int, n: int
) -> list[bytes] | None:
    """A large body cut into ``n`` bodies of whole events in order (JSON arrays and NDJSON,
    inflated), or ``None`` when it is small or neither: then it is decoded whole. A body
    whose encoding cannot be undone (gzip past ``max_bytes`` inflated, or not gzip) raises
    the pipeline's ``IngestError`` here: decoding it whole would only inflate it again, to
    the same refusal (a gzip bomb's, twice)."""
    from sessionscope.ingest.pipeline import decode_body, is_ndjson

    data = decode_body(body, content_encoding, max_bytes)
    if len(data) < SPLIT_BYTES:
        return None
    if is_ndjson(content_type):
        cuts = [0]
        for k in range(1, n):
            at = data.find(b"\n", max(cuts[-1], len(data) * k // n))
            if at < 0:
                break
            cuts.append(at + 1)
        cuts.append(len(data))
        parts = [data[a:b] for a, b in itertools.pairwise(cuts) if data[a:b].strip()]
        return parts if len(parts) > 1 else None
    if data.lstrip()[:1] != b"[":
        return None
    # Cut between two objects of the array, ``}`` ``,`` ``{``, past each n-th of the body: no
    # parsing here. A cut that is not between two events of the array (inside a string, or
    # inside a value) leaves a part that is not valid JSON (its quotes or brackets unbalanced),
    # which its worker refuses: then the body is decoded whole.
    cuts = [0]
    for k in range(1, n):
        found = _BETWEEN.search(data, max(cuts[-1], len(data) * k // n))
        if found is None:
            break
        cuts.append(found.start() + 1)
    if len(cuts) < 2:
        return None
    cuts.append(len(data))
    parts = []
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        start = a if k == 0 else data.index(b"{", a)
        parts.append((b"" if k == 0 else b"[") + data[start:b] + (b"]" if b < len(data) else b""))
    return parts


def _worker_start(server_pid: int) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the server stops its workers
    # itself (``close``), so a worker does not print a KeyboardInterrupt of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A server that ends without stopping them (killed, out of memory) leaves nothing behind.
    threading.Thread(target=_end_with, args=(server_pid,), name="orphan", daemon=True).start()
    # Everything a worker needs is imported now (by the warm-up, what it imports on first
    # use), and left out of garbage collection: a full collection walked it all again, about
    # 6 ms of each batch of 5,000 events.
    import sessionscope.ingest.pipeline  # noqa: F401

    arrow_on_system_allocator()
    with contextlib.suppress(Exception):  # a worker that could not warm up still decodes
        _warm_up()
    freeze_startup_objects()


#: The made-up batch a new worker decodes as it starts (``_warm_up``): its events, and how many
#: times it is decoded.
WARM_UP_EVENTS = 5000
WARM_UP_ROUNDS = 3


def _warm_up_body(events: int = WARM_UP_EVENTS) -> bytes:
    """A JSON array of ``events`` valid desktop events (an hour old: always in range)."""
    moment = (int(time.time()) - 3600) * 1000
    return (
        b"["
        + b",".join(
            b'{"kind":"desktop","id":"warm-up-%d","time":%d,"type":"activity","session":%d,'
            b'"user_id":7,"user_name":"warm up","client_guid":"5d4fe546-8aff-4510-a814-'
            b'f6a8ee14eff1","client_name":"warm-up","duration_ms":1000,"app":"warm.exe",'
            b'"title":"warm up %d"}' % (i, moment + i, i // 100 + 1, i)
            for i in range(events)
        )
        + b"]"
    )


def _warm_up() -> tuple[Any, ...]:
    """Decode a made-up batch ``WARM_UP_ROUNDS`` times; the last answer. A new worker took
    130-160 ms for its first half of a 10,000-event batch (the Arrow modules it imports then),
    15-25 ms for each of the next two and 9 ms from then on (docs/performance.md), its page
    faults going from 14,000 for the first half to 600 for the second and none from the
    fourth: memory its allocator had not reused yet. Here that is paid as the pool starts, by
    the first large body, which waits for the workers to start in any case; the next ones are
    decoded at full speed. Nothing of it is stored: a worker stores nothing."""
    body = _warm_up_body()
    out: tuple[Any, ...] = ()
    for _ in range(WARM_UP_ROUNDS):
        out = prepare_in_worker(0, body, "application/json", None, 2 * len(body))
    return out


def _end_with(server_pid: int) -> None:
    """End this worker once the server process that started it has gone."""
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)


#: How often a worker checks that its server is still there.
ORPHAN_CHECK_S = 0.5


def _worker_ready() -> None:
    """Nothing: sent to each worker as the pool starts, so that all of them start."""


#: Numbers the server's segments (its decoders of different stores share the process).
_segment_numbers = itertools.count(1)
#: Where POSIX shared memory lives (Linux).
_SHM = Path("/dev/shm")


class _Slots:
    """Segments of shared memory the server writes bodies into for its workers, kept and
    used again: sent through the pool's one pipe instead, the two parts of a 10,000-event
    batch (1.4 MB each) reached their workers one after the other, 5-6 ms after they were
    cut on an idle machine and up to 17 ms on a busy one; through a segment, 1.3-1.7 ms
    (measured in docs/performance.md). A segment is made once, and grows (is replaced) only for a
    larger body: a fresh segment per body cost a page fault per page, on both sides, and was
    slower than the pipe.

    At most ``most`` segments, of at most ``MAX_BYTES`` each: a body past either goes through
    the pipe. Segments are named after the server (``sessionscope-<pid>-<n>``); they are
    removed when the decoders close, and by the pool's resource tracker if the server is
    killed."""

    MAX_BYTES = 16 << 20
    _MIN_BYTES = 1 << 20

    def __init__(self, most: int) -> None:
        self.most = most
        self._free: list[SharedMemory] = []
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False

    def take(self, body: bytes) -> SharedMemory | None:
        """A segment holding ``body`` (give it back with ``give``), or ``None``."""
        size = len(body)
        if size > self.MAX_BYTES:
            return None
        with self._lock:
            if self._closed:
                return None
            segment: SharedMemory | None
            fits = [s for s in self._free if s.size >= size]
            if fits:
                segment = fits[0]
                self._free.remove(segment)
            elif self._free:  # the largest is too small: replaced by one that holds it
                small = self._free.pop()
                small.close()
                small.unlink()
                self._count -= 1
                segment = self._make(size)
            elif self._count < self.most:
                segment = self._make(size)
            else:
                return None
            if segment is None:
                return None
        view = segment.buf
        assert view is not None
        view[:size] = body
        return segment

    def _make(self, size: int) -> SharedMemory | None:
        """A new segment of at least ``size`` bytes, its memory reserved now (``None`` when it
        cannot be: no ``/dev/shm``, or it or a file size limit refuses). Written without a
        reservation, a full ``/dev/shm`` would kill the server (``SIGBUS``), not refuse."""
        capacity = max(self._MIN_BYTES, 1 << (size - 1).bit_length())
        name = f"sessionscope-{os.getpid()}-{next(_segment_numbers)}"
        path = _SHM / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return None
        try:
            os.posix_fallocate(fd, 0, capacity)
            segment = SharedMemory(name)  # known to the resource tracker from now on
        except OSError as exc:
            path.unlink(missing_ok=True)
            log.warning("ingest: no shared memory for large bodies (%s); using the pipe", exc)
            return None
        finally:
            os.close(fd)
        self._count += 1
        return segment

    def give(self, segment: SharedMemory) -> None:
        with self._lock:
            if not self._closed:
                self._free.append(segment)
                return
        segment.close()
        segment.unlink()

    def close(self) -> None:
        """Remove the free segments; those in use are removed as they are given back."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for segment in free:
            segment.close()
            segment.unlink()


class Decoders:
    """A pool of ``processes`` worker processes, started on first use. ``hashed``: the
    batches carry their ids' hashes (for the store's id filter, as ``Ingestor.prepare``)."""

    def __init__(self, processes: int, hashed: bool) -> None:
        self.processes = processes
        self.hashed = hashed
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._slots = _Slots(2 * processes)
        #: Batches decoded in worker processes so far, and those of them decoded in parts.
        self.batches = 0
        self.split_batches = 0

    def _executor(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed or self.processes <= 0:
                return None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_start,
                    initargs=(os.getpid(),),
                )
                for _ in range(self.processes):  # every worker now (one per task in flight)
                    self._pool.submit(_worker_ready)
            return self._pool

    async def prepare(
        self,
        project_id: int,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        max_bytes: int,
    ) -> Batch:
        """The batch of ``body`` (raises ``IngestError`` as the pipeline does). A body of
        ``SPLIT_BYTES`` or more is cut into a part per worker, decoded side by side."""
        from sessionscope.ingest.pipeline import IngestError

        pool = self._executor()
        if pool is None:
            args = (project_id, body, content_type, content_encoding, max_bytes)
            out = await to_thread.run_sync(prepare_in_worker, *args)
        else:
            parts = None
            if self.processes > 1 and _inflated_size(body, content_encoding) >= SPLIT_BYTES:
                parts = await to_thread.run_sync(
                    split_body, body, content_type, content_encoding, max_bytes, self.processes
                )
            if parts is not None:
                outs = await asyncio.gather(
                    *(
                        self._run(pool, project_id, part, content_type, None, max_bytes)
                        for part in parts
                    )
                )
                if all(o[0] == "ok" for o in outs):  # else decoded whole, for its exact answer
                    self.batches += 1
                    self.split_batches += 1
                    ids = [i for o in outs for i in o[1]]
                    bodies = [o[2] for o in outs]
                    if all(is_arrow(b) for b in bodies):  # joined: about 0.1 ms
                        record = concat(project_id, bodies)
                    else:  # a part re-encoded (one of fewer than 64 events)
                        record = await to_thread.run_sync(concat, project_id, bodies)
                    return Batch.encoded(project_id, ids, self.hashed, record)
            out = await self._run(pool, project_id, body, content_type, content_encoding, max_bytes)
        if out[0] == "refused":
            _, status, code, message, problems = out
            raise IngestError(status, code, message, problems)
        _, ids, record = out
        if pool is not None:
            self.batches += 1
        return Batch.encoded(project_id, ids, self.hashed, record)

    async def _run(
        self,
        pool: ProcessPoolExecutor,
        project_id: int,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        max_bytes: int,
    ) -> tuple[Any, ...]:
        """``prepare_in_worker`` of ``body`` in a worker, the body passed in shared memory
        when a segment is free (in a thread if the pool broke)."""
        rest = (content_type, content_encoding, max_bytes)
        segment = self._slots.take(body)
        try:
            where = body if segment is None else (segment.name, len(body))
            return await asyncio.get_running_loop().run_in_executor(
                pool, prepare_in_worker, project_id, where, *rest
            )
        except BrokenProcessPool:
            self._broken(pool)
        except RuntimeError:  # the pool was shut down meanwhile (the server is stopping)
            pass
        finally:
            # Given back even when the request was cancelled with its worker still reading:
            # only that worker's answer, which nobody waits for, could then be wrong.
            if segment is not None:
                self._slots.give(segment)
        return await to_thread.run_sync(prepare_in_worker, project_id, body, *rest)

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
        self._slots.close()
