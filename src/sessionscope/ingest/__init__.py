"""The write path: request bytes -> validated events (``pipeline``) -> the durable ingest
journal (``journal``), loaded into the store behind it (``ingestor``)."""

from __future__ import annotations

from sessionscope.config import Settings
from sessionscope.ingest.ingestor import Ingestor, IngestTuning, Overloaded
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["IngestTuning", "Ingestor", "Overloaded", "open_ingestor"]


def open_ingestor(settings: Settings, store: ClickHouseStore) -> Ingestor:
    """The data directory's ingest journal for ``store``, started (what it still held is in
    the store when this returns); shared within this process, closed by each user."""
    tuning = IngestTuning(
        max_pending_events=settings.journal_max_events,
        block_events=settings.journal_block_events,
        linger_s=settings.journal_linger_ms / 1000,
        max_lag_s=settings.journal_max_lag_ms / 1000,
        decode_processes=settings.decode_processes,
    )
    return Ingestor.open(store, settings.data_dir / "journal", tuning)
