"""Storage: one ClickHouseStore over clickhouse-connect (embedded chDB or a server)."""

from sessionscope.store.clickhouse import ClickHouseStore, Project, StoreError, User, open_store

__all__ = ["ClickHouseStore", "Project", "StoreError", "User", "open_store"]
