"""The schema: how tables and views are rendered (``render``) and today's schema (``current``).

The history that leads here is in :mod:`sessionscope.store.migrations`, one frozen module per
version.
"""

from sessionscope.store.schema.render import EngineProfile, Migration, Table, View

__all__ = ["EngineProfile", "Migration", "Table", "View"]
