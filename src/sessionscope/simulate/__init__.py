"""Realistic synthetic traffic for all four event kinds, seeded and pure.

:func:`simulate` yields JSON-ready event objects in exactly the input shape that
:func:`~sessionscope.domain.events.validate_batch` accepts, grouped by session (player sessions,
channels, desktop sessions, endpoint sessions), for the span ``[start, end]`` of a
:class:`SimulationConfig`. Nothing here does I/O: the CLI posts or stores what it yields.

Determinism: every kind draws from its own ``random.Random`` seeded from the config's seed and
the kind's name, so the same config always gives the same events, and leaving a kind out does
not change the others. Event ids are ``sim-<seed>-<kind letter><counter>``, so a seed makes
the same ids on every run: the CLI draws a new seed (:func:`fresh_seed`) unless one is given.

Times are handled as integer epoch milliseconds and formatted by hand (RFC 3339, UTC,
milliseconds), which keeps generation at well over 100,000 events a second. Sessions that would
run past ``end`` simply stop there: nothing is ever stamped after ``end`` or before ``start``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

from sessionscope.simulate.channel import channel_events
from sessionscope.simulate.common import EPOCH, ONE_MS
from sessionscope.simulate.config import SimulationConfig, fresh_seed
from sessionscope.simulate.desktop import desktop_events
from sessionscope.simulate.endpoint import endpoint_events
from sessionscope.simulate.player import player_events

__all__ = ["SimulationConfig", "fresh_seed", "simulate", "simulate_batches"]


def simulate(config: SimulationConfig) -> Iterator[dict[str, Any]]:
    """Yield event dicts for the configured span, grouped by session, deterministic for a seed."""
    # Ceil the start and floor the end so every millisecond stamp lies inside [start, end].
    lo = -((EPOCH - config.start) // ONE_MS)
    hi = (config.end - EPOCH) // ONE_MS
    for kind in config.kinds:
        rng = random.Random(f"sessionscope.simulate:{config.seed}:{kind}")
        yield from _GENERATORS[kind](config, rng, lo, hi)


def simulate_batches(
    config: SimulationConfig, batch_size: int = 1000
) -> Iterator[list[dict[str, Any]]]:
    """Yield the events of :func:`simulate` in lists of at most ``batch_size``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    events = simulate(config)
    while batch := list(itertools.islice(events, batch_size)):
        yield batch


_GENERATORS: dict[
    str, Callable[[SimulationConfig, random.Random, int, int], Iterator[dict[str, Any]]]
] = {
    "player": player_events,
    "channel": channel_events,
    "desktop": desktop_events,
    "endpoint": endpoint_events,
}
