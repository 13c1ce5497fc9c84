"""Schema version 8: scoped keys, revocable users, revocable sign-in links.

Frozen: never edit a released migration; write the next version instead.
"""

from __future__ import annotations

from sessionscope.store.schema.render import EngineProfile, Migration

__all__ = ["MIGRATION"]


#: ``(table, column definition)``: each added at the end of its table; existing rows take the
#: default (keys stay ``full``, users live, sign-in links of generation 0 keep working).
COLUMNS_V8 = (
    ("api_keys", "scope LowCardinality(String) DEFAULT 'full'"),
    ("users", "revoked UInt8 DEFAULT 0"),
    ("projects", "signin_generation UInt32 DEFAULT 0"),
)


def _v8(p: EngineProfile) -> list[str]:
    """A key's scope (``ingest``, ``read`` or ``full``), a user's revocation, and a project's
    sign-in generation (a link or a link's sign-in of an older generation is refused)."""
    out: list[str] = []
    for name, column in COLUMNS_V8:
        tables = [p.local_name(name), name] if p.cluster else [p.local_name(name)]
        out.extend(
            f"ALTER TABLE {table}{p.on_cluster} ADD COLUMN IF NOT EXISTS {column}"
            for table in tables
        )
    return out


MIGRATION = Migration(8, "scoped keys, revocable users and sign-in links", _v8)
