"""The baseline: the raw engine doing the same work, straight through clickhouse-connect.

Runs in a process of its own on a copy of the store (see ``common.in_child``). What "the same
work" means is not written down twice: it is recorded from sessionscope itself.

- Reads: each request is served once by the real app in-process, through a store that records
  the SQL it runs; the baseline then times that SQL (and the driver reading its rows) alone.
- Writes: ``store.insert_events`` is run once with the driver's ``insert`` recorded instead of
  executed; the baseline then replays those exact inserts (same table, columns, Arrow
  data and insert settings), from as many threads as there are HTTP clients.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from common import (
    BenchConfig,
    Figure,
    brief,
    latency_figure,
    log,
    throughput_figure,
    timed_rounds,
)
from reads import AUTH_TABLES, Read, auth_headers, pages
from sessionscope.store.clickhouse import ClickHouseStore
from workload import (
    build_events,
    ingest_events,
    large_batch_events,
    many_client_events,
    single_events,
)

__all__ = ["measure_baseline"]

Query = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class InsertCall:
    """One ``client.insert`` or ``client.insert_arrow`` call as the store made it."""

    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def rows(self) -> int:
        data = self.args[1] if len(self.args) > 1 else self.kwargs.get("data")
        if self.method == "insert_arrow":
            return int((data if data is not None else self.kwargs["arrow_table"]).num_rows)
        column_oriented = self.kwargs.get("column_oriented", False)
        return len(data[0]) if column_oriented else len(data)


class _CapturingClient:
    """A driver client whose inserts are recorded, not run; everything else passes through."""

    def __init__(self, client: Any, calls: list[InsertCall]) -> None:
        self._client = client
        self._calls = calls

    def insert(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(InsertCall("insert", args, kwargs))

    def insert_arrow(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append(InsertCall("insert_arrow", args, kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class RecordingStore(ClickHouseStore):
    """The real store, recording the SQL it reads and, on request, the inserts it would make."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: list[Query] | None = None
        self.captured: list[InsertCall] | None = None

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        if self.recorded is not None:
            self.recorded.append((sql, dict(params or {})))
        return super().query(sql, params)

    @property
    def client(self) -> Any:
        real = ClickHouseStore.client.fget(self)  # type: ignore[attr-defined]
        return real if self.captured is None else _CapturingClient(real, self.captured)


def _open(data_dir: Path) -> RecordingStore:
    """Open the embedded store the way ``open_store`` does, as a :class:`RecordingStore`."""
    import clickhouse_connect

    from sessionscope.config import load_settings
    from sessionscope.security import SecretBox
    from sessionscope.store.schema import EngineProfile

    settings = load_settings(data_dir=data_dir)
    path = str(Path(settings.data_dir) / "clickhouse")

    def connect() -> Any:
        return clickhouse_connect.get_client(interface="chdb", path=path)

    profile = EngineProfile(cluster=settings.clickhouse_cluster, fsync=settings.fsync_inserts)
    store = RecordingStore(connect, profile, SecretBox(settings.secret_key))
    store.migrate()
    return store


# ------------------------------------------------------------------------------------ reads


def _run_sql(store: RecordingStore, queries: list[Query]) -> None:
    client = ClickHouseStore.client.fget(store)  # type: ignore[attr-defined]
    for sql, params in queries:
        _ = client.query(sql, parameters=params).result_rows


def _data_queries(recorded: list[Query]) -> list[Query]:
    return [q for q in recorded if not any(t in q[0] for t in AUTH_TABLES)]


def _measure_read(
    store: RecordingStore, http: Any, read: Read, headers: dict[str, str], cfg: BenchConfig
) -> Figure:
    """Record the SQL of ``read`` (per page timed) and time that SQL alone on the engine."""
    found = pages(http, read, headers)
    if isinstance(found, str):
        return Figure.missing(found)
    per_page: list[list[Query]] = []
    for params in found:
        store.recorded = []
        http.get(read.path, params=params, headers=headers)
        per_page.append(_data_queries(store.recorded))
        store.recorded = None
    steps = [functools.partial(_run_sql, store, queries) for queries in per_page]
    return latency_figure(timed_rounds(steps, cfg.samples), queries=len(per_page[0]))


def _measure_reads(
    store: RecordingStore,
    data_dir: Path,
    project_id: int,
    api_key: str,
    read_list: list[Read],
    cfg: BenchConfig,
) -> dict[str, Figure]:
    with warnings.catch_warnings():  # starlette's notice about its test client's transport
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from sessionscope.app import create_app
    from sessionscope.config import load_settings

    app = create_app(load_settings(data_dir=data_dir), store=store)
    out: dict[str, Figure] = {}
    with TestClient(app, raise_server_exceptions=False) as http:
        for read in read_list:
            headers = auth_headers(read, data_dir, project_id, api_key)
            out[read.name] = _measure_read(store, http, read, headers, cfg)
            log(f"  raw {read.name}: {brief(out[read.name])}")
    return out


# ------------------------------------------------------------------------------------ writes


def _capture_inserts(
    store: RecordingStore, project_id: int, events: list[Any], batch_size: int
) -> list[InsertCall]:
    calls: list[InsertCall] = []
    store.captured = calls
    try:
        for i in range(0, len(events), batch_size):
            store.insert_events(project_id, events[i : i + batch_size])
    finally:
        store.captured = None
    return calls


def _replay(store: RecordingStore, calls: list[InsertCall], threads: int) -> Figure:
    """Run the recorded inserts from ``threads`` threads; events/s and per-insert latency."""
    work: queue.SimpleQueue[InsertCall | None] = queue.SimpleQueue()
    for call in calls:
        work.put(call)
    for _ in range(threads):
        work.put(None)
    samples: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        client = ClickHouseStore.client.fget(store)  # type: ignore[attr-defined]
        mine: list[float] = []
        try:
            while (call := work.get()) is not None:
                start = time.perf_counter()
                getattr(client, call.method)(*call.args, **call.kwargs)
                mine.append(time.perf_counter() - start)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        with lock:
            samples.extend(mine)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    rows = sum(c.rows for c in calls)
    return throughput_figure(rows, elapsed, samples, inserts=len(calls))


def _measure_writes(
    store: RecordingStore, project_id: int, end: datetime, cfg: BenchConfig
) -> dict[str, Figure]:
    batch_events = build_events(ingest_events(cfg.ingest_events, end))
    large_events = build_events(large_batch_events(cfg.ingest_events, end))
    many = build_events(many_client_events(cfg.ingest_events, end))
    singles = build_events(single_events(cfg.single_events, end))
    # Record every insert before running any: once rows are stored, the store would skip them.
    batches = _capture_inserts(store, project_id, batch_events, cfg.batch_size)
    large = _capture_inserts(store, project_id, large_events, cfg.large_batch_size)
    many_batches = _capture_inserts(store, project_id, many, cfg.batch_size)
    ones = _capture_inserts(store, project_id, singles, 1)
    bulk = _capture_inserts(store, project_id, batch_events, 100_000)
    runs = {
        "ingest_batches": (batches, cfg.clients),
        "ingest_large_batches": (large, cfg.clients),
        "ingest_many_clients": (many_batches, cfg.many_clients),
        "ingest_single": (ones, cfg.clients),
        "ingest_bulk": (bulk, 1),
    }
    out: dict[str, Figure] = {}
    for name, (calls, threads) in runs.items():
        out[name] = _replay(store, calls, threads)
        log(f"  raw {name}: {brief(out[name])}")
    return out


# ------------------------------------------------------------------------------------ entry


def measure_baseline(
    data_dir: str,
    cfg: BenchConfig,
    end: datetime,
    project_ids: dict[str, int],
    api_keys: dict[str, str],
    read_list: list[Read],
) -> dict[str, dict[str, Any]]:
    """Measure every baseline on the store copy at ``data_dir`` (in a child process)."""
    path = Path(data_dir)
    store = _open(path)
    try:
        out = _measure_reads(store, path, project_ids["bench"], api_keys["bench"], read_list, cfg)
        out.update(_measure_writes(store, project_ids["bench-raw"], end, cfg))
        info = store.query(
            "SELECT count(), uniqExact(id) FROM events WHERE project_id = {p:UInt32}",
            {"p": project_ids["bench"]},
        )
        out["_store"] = Figure(count=int(info[0][0]), extra={"distinct": int(info[0][1])})
    finally:
        store.close()
    return {k: v.as_dict() for k, v in out.items()}
