"""Export a project's stored events in the ingest format, streaming: NDJSON or Parquet.

Events are read a day at a time (per kind, in time order), so memory holds one day of one kind
at most. NDJSON lines are exactly what ``POST /api/v1/events`` and ``sessionscope ingest``
take. Parquet files have one row per event: typed ``id``, ``kind``, ``time`` (UTC,
milliseconds) and ``type`` columns to query, and ``event``, the event in the ingest format as
JSON, which ``sessionscope ingest`` reads back (kinds have different fields, so one JSON column
keeps every event exactly as sent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sessionscope.domain.events import KINDS, Event
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["FORMATS", "PARQUET_SCHEMA", "export_events", "is_parquet", "read_parquet_events"]

FORMATS = ("ndjson", "parquet")
PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("time", pa.timestamp("ms", tz="UTC")),
        ("type", pa.string()),
        ("event", pa.string()),
    ]
)
_DAY = timedelta(days=1)
_MS = timedelta(milliseconds=1)


def _span(store: ClickHouseStore, project_id: int, kind: str) -> tuple[datetime, datetime] | None:
    rows = store.query(
        "SELECT count(), min(toUnixTimestamp64Milli(time)), max(toUnixTimestamp64Milli(time)) "
        "FROM events WHERE project_id = {p:UInt32} AND kind = {k:String}",
        {"p": project_id, "k": kind},
    )
    count, first, last = rows[0]
    if not count:
        return None
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + int(first) * _MS, epoch + int(last) * _MS


def _days(
    store: ClickHouseStore,
    project_id: int,
    kinds: Sequence[str],
    start: datetime | None,
    end: datetime | None,
) -> Iterator[list[Event]]:
    """The events, a day of one kind at a time, in time order."""
    for kind in kinds:
        span = _span(store, project_id, kind)
        if span is None:
            continue
        lo = max(span[0], start) if start else span[0]
        hi = min(span[1], end) if end else span[1]
        day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
        while day <= hi:
            window_start = max(day, lo)
            window_end = min(day + _DAY - _MS, hi)
            if window_start <= window_end:
                events = store.events(project_id, kind, start=window_start, end=window_end)
                if events:
                    yield events
            day += _DAY


def export_events(
    store: ClickHouseStore,
    project_id: int,
    out: BinaryIO | Path,
    *,
    fmt: str = "ndjson",
    kinds: Sequence[str] = KINDS,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the project's events (``kinds``, in ``[start, end]``) to ``out``; return how many.

    ``out`` is an open binary file (NDJSON) or a path (either format)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    days = _days(store, project_id, kinds, start, end)
    if fmt == "parquet":
        return _write_parquet(days, out, progress)
    if isinstance(out, Path):
        with out.open("wb") as fh:
            return _write_ndjson(days, fh, progress)
    return _write_ndjson(days, out, progress)


def _write_ndjson(
    days: Iterator[list[Event]], out: BinaryIO, progress: Callable[[int], None] | None
) -> int:
    count = 0
    for events in days:
        out.write(b"".join(orjson.dumps(e.as_dict()) + b"\n" for e in events))
        count += len(events)
        if progress:
            progress(len(events))
    out.flush()
    return count


def _write_parquet(
    days: Iterator[list[Event]], out: BinaryIO | Path, progress: Callable[[int], None] | None
) -> int:
    count = 0
    sink: Any = str(out) if isinstance(out, Path) else out
    with pq.ParquetWriter(sink, PARQUET_SCHEMA, compression="zstd") as writer:
        for events in days:
            table = pa.table(
                {
                    "id": [e.id for e in events],
                    "kind": [e.kind for e in events],
                    "time": pa.array([e.time for e in events], pa.timestamp("ms", tz="UTC")),
                    "type": [e.type for e in events],
                    "event": [orjson.dumps(e.as_dict()).decode() for e in events],
                },
                schema=PARQUET_SCHEMA,
            )
            writer.write_table(table)
            count += len(events)
            if progress:
                progress(len(events))
    return count


def is_parquet(path: Path) -> bool:
    """Whether ``path`` is a Parquet file (by its magic bytes)."""
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def read_parquet_events(path: Path, batch_size: int) -> Iterator[list[Any]]:
    """The events of an exported Parquet file (its ``event`` column), in batches."""
    parquet = pq.ParquetFile(path)
    if "event" not in parquet.schema_arrow.names:
        raise ValueError(f"{path} has no 'event' column (not a sessionscope export)")
    for batch in parquet.iter_batches(batch_size=batch_size, columns=["event"]):
        yield [orjson.loads(text) for text in batch.column(0).to_pylist()]
