"""Projects, their API keys and users: the values every layer passes around."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["ApiKey", "Project", "User"]


@dataclass(frozen=True, slots=True)
class Project:
    """A project: its events, sessions and settings belong to it."""

    id: int
    name: str
    created_at: datetime
    idle_timeout_s: int = 900
    apdex_threshold_ms: int = 2000
    organization: str = ""

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
    """A live key of a project (its secret is never kept in clear)."""

    key_id: str
    project_id: int
    kind: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in with an email and token, with access to some projects."""

    email: str
    project_ids: tuple[int, ...]
    organization: str
