"""How a long-running process keeps its memory: what it built at start-up is left out of
garbage collection, and a decoding process keeps the memory Arrow frees.

Python's collector walks every tracked object of the oldest generation in a full collection.
A server holds about 150,000 of them once started (the web framework, the engine's client,
Arrow, the routes), nearly all alive for good, and a full collection of them took 80-90 ms
here: every thread, the event loop included, waits meanwhile, so an answer that happens to
be under way takes that much longer. Under sustained ingest that came every 10-20 s. Frozen
(``gc.freeze``), they are not walked again; what requests allocate is collected as before.

Arrow's own allocator (mimalloc, its default) hands freed memory back to the system within
milliseconds, so each batch's columns were built in fresh pages that the kernel zeroes first:
about 13 ms of kernel time for every 5,000 events a decoding process encoded, a third of its
work (measured with ``perf`` and the processes' own counters, docs/performance.md). On the
C library's allocator, which keeps what it freed for the next batch, that went to about 2 ms.

The C library keeps what the server's threads freed, too: after a burst of ingest or a read
over the whole store, about 22 MB of free heap stayed resident in the server at 10M events
(measured with ``malloc_trim`` called from outside, docs/performance.md). :class:`QuietTrim`
hands it back once the process goes quiet after work; under steady work it does nothing.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable

import pyarrow as pa

__all__ = ["QuietTrim", "arrow_on_system_allocator", "freeze_startup_objects", "trim_free_heap"]


def freeze_startup_objects() -> None:
    """Collect what is garbage now, then leave every object alive now out of later
    collections. For a process once it is ready to serve (not for tests, whose processes
    build and drop many apps)."""
    gc.collect()
    gc.freeze()


def arrow_on_system_allocator() -> None:
    """Allocate Arrow's buffers from now on with the C library's allocator (``malloc``)."""
    pa.set_memory_pool(pa.system_memory_pool())


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc only
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def trim_free_heap() -> bool:
    """Hand the C library's free heap back to the system (``malloc_trim(0)``; ctypes releases
    the interpreter lock meanwhile). False where the C library has no such call."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class QuietTrim:
    """A thread that trims the free heap (:func:`trim_free_heap`) once the process goes quiet
    after work: at most once per burst, never while it works.

    Every ``every_s`` it reads the process's CPU time (every thread's, the engine's included).
    An interval that used at most ``quiet_share`` of it is quiet; the first quiet interval after
    at least ``work_s`` of CPU since the last trim trims."""

    def __init__(
        self,
        every_s: float = 2.0,
        quiet_share: float = 0.05,
        work_s: float = 0.2,
        *,
        cpu: Callable[[], float] = time.process_time,
        trim: Callable[[], bool] = trim_free_heap,
    ) -> None:
        self.every_s = every_s
        self.quiet_share = quiet_share
        self.work_s = work_s
        self._cpu = cpu
        self._trim = trim
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = 0.0
        self._work = 0.0
        #: Trims done (``/metrics`` does not show it; tests and benchmarks read it).
        self.trims = 0

    def start(self) -> None:
        self._last = self._cpu()
        self._thread = threading.Thread(target=self._run, name="heap-trim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def tick(self) -> None:
        """One interval's decision (the thread calls it every ``every_s``)."""
        now = self._cpu()
        used, self._last = now - self._last, now
        if used > self.quiet_share * self.every_s:
            self._work += used
        elif self._work >= self.work_s:
            self._work = 0.0
            if self._trim():
                self.trims += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.tick()
