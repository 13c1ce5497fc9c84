"""What every benchmark phase shares: the configuration, the figures measured, percentiles.

The runner (``run.py``) measures each thing twice, through sessionscope and straight against the
engine, and hands the pairs to ``report.py``. Phases run in separate processes (chDB allows one
engine per process), so everything here is plain data that pickles and serialises to JSON.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "BENCH_DIR",
    "DATA_DIR",
    "REPO",
    "WARMUP",
    "BenchConfig",
    "Figure",
    "brief",
    "cpu_probe_ms",
    "in_child",
    "latency_figure",
    "log",
    "percentile",
    "throughput_figure",
    "timed_rounds",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
#: Stores, work copies, logs and the last run's raw figures (gitignored).
DATA_DIR = BENCH_DIR / ".data"
#: Untimed requests (or query runs) before each read measurement, on both sides.
WARMUP = 20


def log(message: str) -> None:
    """Print a progress line (stderr stays free of figures; they go to the report)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def in_child(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``fn`` in a fresh process and return its result.

    chDB holds one engine per process, bound to the first data directory it opens; every phase
    that opens a store therefore gets a process of its own, and the runner never opens one.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def cpu_probe_ms() -> float:
    """Time a fixed pure-Python loop: how fast this (shared, virtual) machine runs right now."""
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip().replace("_", "")
    if not value:
        return default
    try:
        parsed = int(float(value))
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {value!r}") from None
    if parsed <= 0:
        raise SystemExit(f"{name} must be positive")
    return parsed


def _clamp(value: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, value))


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes of one run; ``BENCH_EVENTS`` scales everything down for a quick run."""

    #: Events in the store the read benchmarks query (the issue asks for at least 5 million).
    events: int = 5_000_000
    #: Concurrent HTTP clients (and engine threads for the baseline).
    clients: int = 4
    #: Clients of the many-clients ingest variant (a collector tier in front of the server).
    many_clients: int = 16
    #: Events per ingest batch.
    batch_size: int = 1000
    #: Events per batch of the large-batch variant (same number of events in all).
    large_batch_size: int = 10_000
    #: Events posted in batches (and bulk-inserted for the baseline).
    ingest_events: int = 200_000
    #: Single-event requests (and one-row inserts for the baseline).
    single_events: int = 1000
    #: Timed requests per read measurement (after a warm-up).
    samples: int = 300
    #: Pages followed through ``next`` per round of the cursor measurement.
    cursor_pages: int = 10

    @classmethod
    def from_env(cls) -> BenchConfig:
        """Read ``BENCH_EVENTS``, ``BENCH_CLIENTS``, ``BENCH_MANY_CLIENTS`` and ``BENCH_SAMPLES``;
        derive the rest."""
        events = _env_int("BENCH_EVENTS", 5_000_000)
        return cls(
            events=events,
            clients=_env_int("BENCH_CLIENTS", 4),
            many_clients=_env_int("BENCH_MANY_CLIENTS", 16),
            ingest_events=_clamp(events // 25 // 1000 * 1000, 20_000, 200_000),
            single_events=_clamp(events // 5000, 200, 1000),
            samples=_env_int("BENCH_SAMPLES", 300 if events >= 1_000_000 else 100),
        )

    @property
    def full_size(self) -> bool:
        return self.events >= 5_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) with linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


@dataclass(frozen=True, slots=True)
class Figure:
    """One side of one measurement: a throughput, a latency distribution, or both.

    ``available`` is False when the thing measured does not exist (yet); ``note`` says why.
    """

    available: bool = True
    count: int = 0
    seconds: float = 0.0
    events_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        return cls(**data)

    @classmethod
    def missing(cls, note: str) -> Figure:
        return cls(available=False, note=note)


def latency_figure(samples_s: Sequence[float], note: str = "", **extra: Any) -> Figure:
    """Summarise request (or query) durations in seconds as p50/p99 milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return Figure(
        count=len(ms),
        seconds=sum(samples_s),
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        note=note,
        extra=dict(extra),
    )


def throughput_figure(
    events: int, seconds: float, samples_s: Sequence[float] = (), note: str = "", **extra: Any
) -> Figure:
    """Summarise ``events`` handled in ``seconds`` wall time, with per-call latencies if any."""
    ms = [s * 1000 for s in samples_s]
    return Figure(
        count=events,
        seconds=seconds,
        events_per_s=events / seconds if seconds > 0 else None,
        p50_ms=percentile(ms, 50) if ms else None,
        p99_ms=percentile(ms, 99) if ms else None,
        note=note,
        extra=dict(extra),
    )


def timed_rounds(
    steps: Sequence[Callable[[], object]], samples: int, warmup: int = WARMUP
) -> list[float]:
    """Run the steps in turn, round after round; return the durations after the warm-up.

    Rounds repeat until about ``samples`` durations are kept, after about ``warmup`` untimed
    runs (both rounded up to whole rounds).
    """
    rounds = max(1, -(-samples // len(steps)))
    untimed = max(1, -(-warmup // len(steps)))
    out: list[float] = []
    for i in range(untimed + rounds):
        for step in steps:
            start = time.perf_counter()
            step()
            took = time.perf_counter() - start
            if i >= untimed:
                out.append(took)
    return out


def brief(f: Figure) -> str:
    """Summarise a figure on one line for progress output."""
    if not f.available:
        return f"not available ({f.note})"
    parts = []
    if f.events_per_s is not None:
        parts.append(f"{f.events_per_s:,.0f} events/s")
    if f.p50_ms is not None and f.p99_ms is not None:
        parts.append(f"p50 {f.p50_ms:.1f} ms, p99 {f.p99_ms:.1f} ms")
    return ", ".join(parts) or "-"
