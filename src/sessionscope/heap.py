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
"""

from __future__ import annotations

import gc

import pyarrow as pa

__all__ = ["arrow_on_system_allocator", "freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Collect what is garbage now, then leave every object alive now out of later
    collections. For a process once it is ready to serve (not for tests, whose processes
    build and drop many apps)."""
    gc.collect()
    gc.freeze()


def arrow_on_system_allocator() -> None:
    """Allocate Arrow's buffers from now on with the C library's allocator (``malloc``)."""
    pa.set_memory_pool(pa.system_memory_pool())
