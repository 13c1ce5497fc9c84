"""What a long-running process built at start-up is left out of garbage collection.

Python's collector walks every tracked object of the oldest generation in a full collection.
A server holds about 150,000 of them once started (the web framework, the engine's client,
Arrow, the routes), nearly all alive for good, and a full collection of them took 80-90 ms
here: every thread, the event loop included, waits meanwhile, so an answer that happens to
be under way takes that much longer. Under sustained ingest that came every 10-20 s. Frozen
(``gc.freeze``), they are not walked again; what requests allocate is collected as before.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Collect what is garbage now, then leave every object alive now out of later
    collections. For a process once it is ready to serve (not for tests, whose processes
    build and drop many apps)."""
    gc.collect()
    gc.freeze()
