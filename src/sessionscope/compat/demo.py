"""What each vendor-compatible API adds to ``sessionscope demo``: the credentials it needs in
the demo project, and the lines that show how to call it. Each vendor module declares its own
``DEMO``; the demo command asks them in the order below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sessionscope.domain.accounts import Project
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["DemoHooks", "vendors"]

#: ``creds``: the demo's credentials (``project_id``, ``api_key``, what the vendors added).
Credentials = Callable[[ClickHouseStore, Project, dict[str, Any]], None]


def _nothing(store: ClickHouseStore, project: Project, creds: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class DemoHooks:
    """A vendor's part of the demo: ``credentials`` adds (or keeps) what it needs in ``creds``;
    ``help(base_url, creds)`` returns the lines printed for it (rich markup)."""

    help: Callable[[str, dict[str, Any]], list[str]]
    credentials: Credentials = _nothing


def vendors() -> tuple[DemoHooks, ...]:
    """Every vendor's demo hooks, in the order the demo prints them."""
    from sessionscope.compat import ekran, ncp_livestation, ncp_vpe, thousandeyes

    return (ncp_livestation.DEMO, thousandeyes.DEMO, ncp_vpe.DEMO, ekran.DEMO)
