"""Projects, keys and users: the ``projects``, ``keys`` and ``users`` sub-commands.

Each works on the store directly, or, while a server holds the embedded store, through that
server's management API (``commands.common.managing``): the same output either way.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from sessionscope import registry
from sessionscope.commands.common import (
    DataDir,
    JsonOut,
    ProjectName,
    console,
    managed,
    managing,
    print_json,
    settings_for,
)
from sessionscope.domain.accounts import SCOPES
from sessionscope.management import APDEX_THRESHOLD_RANGE_MS, IDLE_TIMEOUT_RANGE_S

__all__ = ["keys_app", "projects_app", "users_app"]


projects_app = typer.Typer(help="Create, list and configure projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
users_app = typer.Typer(
    help="Users with API tokens (ThousandEyes-style access, dashboard sign-in).",
    no_args_is_help=True,
)


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smh]?)", re.ASCII | re.IGNORECASE)


def duration(text: str, param: str, bounds: tuple[int, int]) -> int:
    """Whole seconds from '900', '15m', '1.5h', '90s', within ``bounds``."""
    lo, hi = bounds
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(
            f"{text[:40]!r} is not a duration: use seconds or a number with s, m or h (e.g. 15m)",
            param_hint=param,
        )
    # Decimal: exact, and no float overflow or 'inf' on absurd inputs.
    seconds = Decimal(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2].lower()]
    if seconds != seconds.to_integral_value():
        raise typer.BadParameter(f"{text!r} is not a whole number of seconds", param_hint=param)
    if not lo <= seconds <= hi:
        raise typer.BadParameter(
            f"must be from {lo} s to {hi} s (1 minute to 24 hours), not {text[:40]!r}",
            param_hint=param,
        )
    return int(seconds)


# ---------------------------------------------------------------------------- projects


@projects_app.command("create")
def projects_create(
    name: str,
    organization: Annotated[
        str | None,
        typer.Option(
            help="The organisation the project belongs to; its projects share one "
            "ThousandEyes rate limit [default: the project is its own, named after it]",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Create a project."""
    org = (organization or "").strip()
    if organization is not None and not 1 <= len(org) <= 100:
        raise typer.BadParameter("must be 1 to 100 characters", param_hint="--organization")
    with managing(settings_for(data_dir)) as m:
        project = managed(m.create_project, name, org)
    if json_out:
        print_json(project)
    else:
        console.print(f"project [bold]{project['name']}[/bold] created with id {project['id']}")


@projects_app.command("list")
def projects_list(data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List projects."""
    with managing(settings_for(data_dir)) as m:
        projects = managed(m.list_projects)
    if json_out:
        print_json(projects)
        return
    table = Table("id", "name", "organization", "idle timeout", "apdex T", "created")
    for p in projects:
        table.add_row(
            str(p["id"]),
            p["name"],
            p["organization"],
            f"{p['idle_timeout_s']}s",
            f"{p['apdex_threshold_ms']}ms",
            _minute(p["created_at"]),
        )
    console.print(table)


def _minute(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")


@projects_app.command("set")
def projects_set(
    name: str,
    idle_timeout: Annotated[
        str | None,
        typer.Option(help="Desktop idle timeout, e.g. 15m, 1h or 900 (1 minute to 24 hours)."),
    ] = None,
    apdex_threshold_ms: Annotated[
        int | None,
        typer.Option(
            help="Endpoint Apdex threshold T on onLoad, in ms (1 to 60000).",
            min=APDEX_THRESHOLD_RANGE_MS[0],
            max=APDEX_THRESHOLD_RANGE_MS[1],
        ),
    ] = None,
    organization: Annotated[
        str | None,
        typer.Option(
            help="The organisation the project belongs to (shares its rate limit); '' for none."
        ),
    ] = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Change a project's settings."""
    timeout = (
        duration(idle_timeout, "--idle-timeout", IDLE_TIMEOUT_RANGE_S)
        if idle_timeout is not None
        else None
    )
    org = organization.strip() if organization is not None else None
    if org is not None and len(org) > 100:
        raise typer.BadParameter("must be at most 100 characters", param_hint="--organization")
    with managing(settings_for(data_dir)) as m:
        project = managed(m.set_project, name, timeout, apdex_threshold_ms, org)
    if json_out:
        print_json(project)
    else:
        own = project["organization"] == project["name"]
        console.print(
            f"project {project['name']}: idle timeout {project['idle_timeout_s']}s, "
            f"apdex T {project['apdex_threshold_ms']}ms, "
            f"organization {'(none: its own)' if own else project['organization']}"
        )


@projects_app.command("revoke-links")
def projects_revoke_links(name: str, data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """Refuse every sign-in link made so far for a project, and the dashboard sign-ins made
    with them."""
    with managing(settings_for(data_dir)) as m:
        out = managed(m.revoke_links, name)
    if json_out:
        print_json(out)
    else:
        console.print(
            f"sign-in links of project {out['project']} revoked "
            f"(sign-in generation {out['signin_generation']})"
        )


# ---------------------------------------------------------------------------- keys


class KeyScope(StrEnum):
    """What a key may do (``domain.accounts.SCOPES``)."""

    ingest = "ingest"
    read = "read"
    full = "full"


assert tuple(s.value for s in KeyScope) == SCOPES

Scope = Annotated[
    KeyScope,
    typer.Option("--scope", help="ingest: only send events; read: only read; full: both."),
]


@keys_app.command("create")
def keys_create(
    project: ProjectName,
    ncp: Annotated[
        bool,
        typer.Option("--ncp", help="An access key/secret key pair for signed (NAVER Cloud) calls."),
    ] = False,
    scope: Scope = KeyScope.full,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Create an API key for a project (shown once)."""
    with managing(settings_for(data_dir)) as m:
        out = managed(m.create_key, project, registry.key_kind_for({"ncp": ncp}), name, scope.value)
    if json_out:
        print_json(out)
    else:
        for k, v in out.items():
            console.print(f"{k}: [bold]{v}[/bold]")
        console.print("[dim]Keep the key now: it is stored hashed and cannot be shown again.[/dim]")


@keys_app.command("list")
def keys_list(project: ProjectName, data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List a project's keys (ids only), revoked ones too."""
    with managing(settings_for(data_dir)) as m:
        rows = managed(m.list_keys, project)
    if json_out:
        print_json(rows)
        return
    table = Table("id", "kind", "scope", "name", "created", "revoked")
    for r in rows:
        table.add_row(
            r["id"], r["kind"], r["scope"], r["name"], r["created"], "yes" if r["revoked"] else ""
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (keys list).")],
    project: ProjectName,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Revoke a key (an API key or a NAVER access key): refused from now on."""
    with managing(settings_for(data_dir)) as m:
        key = managed(m.revoke_key, project, key_id)
    if json_out:
        print_json(key)
    else:
        console.print(f"key {key['id']} of project {project} revoked")


# ---------------------------------------------------------------------------- users


@users_app.command("create")
def users_create(
    email: str,
    project: Annotated[list[str], typer.Option("--project", "-p", help="Project (repeatable).")],
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Create a user with an API token for the given projects (account groups)."""
    with managing(settings_for(data_dir)) as m:
        out = managed(m.create_user, email, project)
    if json_out:
        print_json(out)
    else:
        console.print(f"user {out['email']} token: [bold]{out['token']}[/bold]")


@users_app.command("list")
def users_list(data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List users (no tokens), revoked ones too."""
    with managing(settings_for(data_dir)) as m:
        users = managed(m.list_users)
    if json_out:
        print_json(users)
        return
    table = Table("email", "project ids", "created", "revoked")
    for u in users:
        table.add_row(
            u["email"],
            ", ".join(str(p) for p in u["project_ids"]),
            u["created"] or "",
            "yes" if u["revoked"] else "",
        )
    console.print(table)


@users_app.command("revoke")
def users_revoke(email: str, data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """Revoke a user: the token and the dashboard sign-ins made with it are refused."""
    with managing(settings_for(data_dir)) as m:
        user = managed(m.revoke_user, email)
    if json_out:
        print_json(user)
    else:
        console.print(f"user {user['email']} revoked")
