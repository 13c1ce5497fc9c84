"""Storage: one ClickHouseStore over clickhouse-connect (embedded chDB or a server)."""

from sessionscope.store.clickhouse import ClickHouseStore, open_store
from sessionscope.store.engine import StoreError

__all__ = ["ClickHouseStore", "StoreError", "open_store"]
