"""ThousandEyes' part of ``sessionscope demo``: a user for the demo project, and a few curls."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from sessionscope.domain.accounts import Project
from sessionscope.registry import DemoHooks
from sessionscope.store.clickhouse import ClickHouseStore

__all__ = ["DEMO"]


def _credentials(store: ClickHouseStore, project: Project, creds: dict[str, Any]) -> None:
    """A ThousandEyes v6 user of the demo project (kept while its token still works)."""
    user = store.verify_user(str(creds.get("te_email", "")), str(creds.get("te_token", "")))
    if user is None or project.id not in user.project_ids:
        creds["te_email"] = "demo@example.com"
        creds["te_token"] = store.create_user(creds["te_email"], [project.id])


def _help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the ThousandEyes v6 API: the demo user and a few curls."""
    email, token = creds.get("te_email"), creds.get("te_token")
    if not email or not token:
        return []
    auth = f"-u '{email}:{token}'"
    url = f"{base}/v6/endpoint-data/user-sessions"
    body = '{"searchFilters":[{"key":"domain","values":["thousandeyes.com"]}]}'
    return [
        "ThousandEyes v6 endpoint user sessions, docs/compat/thousandeyes.md:",
        f"  user: {email}  token: {token}  (account group aid={creds['project_id']})",
        f"  curl -s {auth} '{url}.json'",
        f"  curl -s {auth} '{url}.json?window=1d'",
        f"  curl -s {auth} '{url}.xml?window=2h&aid={creds['project_id']}'",
        escape(
            f"  curl -s {auth} -H 'Content-Type: application/json' -d '{body}' "
            f"'{url}.json?window=1w'"
        ),
    ]


DEMO = DemoHooks(_help, _credentials)
