"""Projects, their API keys and users: the values every layer passes around."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SCOPES", "ApiKey", "KeyGrant", "Project", "User", "allows", "iso"]

#: What a key may do: ``ingest`` only sends events, ``read`` only reads, ``full`` both.
SCOPES: tuple[str, ...] = ("ingest", "read", "full")


def allows(scope: str, need: str) -> bool:
    """Whether a key of ``scope`` may do ``need`` (``ingest`` or ``read``)."""
    return scope == "full" or scope == need


def iso(t: datetime) -> str:
    """RFC 3339 in UTC, to the millisecond, with a ``Z``."""
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its events, sessions and settings belong to it."""

    id: int
    name: str
    created_at: datetime
    idle_timeout_s: int = 900
    apdex_threshold_ms: int = 2000
    organization: str = ""
    #: Sign-in links (and the sign-ins made with them) of an older generation are refused.
    signin_generation: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "idle_timeout_s": self.idle_timeout_s,
            "apdex_threshold_ms": self.apdex_threshold_ms,
            "organization": self.organization or self.name,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key of a project (its secret is never kept in clear): ``kind`` ``api`` (a bearer API
    key) or a signing-key kind a vendor registers (``registry.KeyKind``: an access key /
    secret key pair, the access key its id)."""

    key_id: str
    project_id: int
    kind: str
    name: str
    created_at: datetime
    scope: str = "full"
    revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "kind": self.kind,
            "name": self.name,
            "scope": self.scope,
            "created": iso(self.created_at),
            "revoked": self.revoked,
        }


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a live key grants: its project, its scope, and its id."""

    project: Project
    scope: str
    key_id: str


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in with an email and token, with access to some projects."""

    email: str
    project_ids: tuple[int, ...]
    organization: str
    created_at: datetime | None = None
    revoked: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "project_ids": list(self.project_ids),
            "created": iso(self.created_at) if self.created_at is not None else None,
            "revoked": self.revoked,
        }
