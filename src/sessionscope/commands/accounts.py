"""Projects, keys and users: the ``projects``, ``keys`` and ``users`` sub-commands."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from sessionscope.commands.common import (
    DataDir,
    JsonOut,
    ProjectName,
    console,
    fail,
    opened_store,
    print_json,
    project_named,
    settings_for,
)
from sessionscope.store.engine import StoreError

__all__ = ["keys_app", "projects_app", "users_app"]


projects_app = typer.Typer(help="Create, list and configure projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and list API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Users with API tokens (ThousandEyes-style access).")


#: The idle timeouts a project may have, in seconds: a minute to a day.
IDLE_TIMEOUT_RANGE_S = (60, 86_400)
#: The Apdex thresholds T a project may have, in milliseconds: up to a minute.
APDEX_THRESHOLD_RANGE_MS = (1, 60_000)
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
    with opened_store(settings_for(data_dir)) as store:
        try:
            project = store.create_project(name, organization=org)
        except StoreError as exc:
            raise fail(str(exc)) from None
    if json_out:
        print_json(project.as_dict())
    else:
        console.print(f"project [bold]{project.name}[/bold] created with id {project.id}")


@projects_app.command("list")
def projects_list(data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List projects."""
    with opened_store(settings_for(data_dir)) as store:
        projects = store.list_projects()
    if json_out:
        print_json([p.as_dict() for p in projects])
        return
    table = Table("id", "name", "organization", "idle timeout", "apdex T", "created")
    for p in projects:
        table.add_row(
            str(p.id),
            p.name,
            p.organization or p.name,
            f"{p.idle_timeout_s}s",
            f"{p.apdex_threshold_ms}ms",
            p.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


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
    with opened_store(settings_for(data_dir)) as store:
        project = store.update_project(
            project_named(store, name),
            idle_timeout_s=timeout,
            apdex_threshold_ms=apdex_threshold_ms,
            organization=org,
        )
    if json_out:
        print_json(project.as_dict())
    else:
        console.print(
            f"project {project.name}: idle timeout {project.idle_timeout_s}s, "
            f"apdex T {project.apdex_threshold_ms}ms, "
            f"organization {project.organization or '(none: its own)'}"
        )


# ---------------------------------------------------------------------------- keys


@keys_app.command("create")
def keys_create(
    project: ProjectName,
    ncp: Annotated[
        bool,
        typer.Option("--ncp", help="An access key/secret key pair for signed (NAVER Cloud) calls."),
    ] = False,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Create an API key for a project (shown once)."""
    with opened_store(settings_for(data_dir)) as store:
        p = project_named(store, project)
        if ncp:
            access, secret = store.create_signing_key(p.id, name)
            out: dict[str, Any] = {
                "project": p.name,
                "project_id": p.id,
                "access_key": access,
                "secret_key": secret,
            }
        else:
            out = {
                "project": p.name,
                "project_id": p.id,
                "api_key": store.create_api_key(p.id, name),
            }
    if json_out:
        print_json(out)
    else:
        for k, v in out.items():
            console.print(f"{k}: [bold]{v}[/bold]")
        console.print("[dim]Keep the key now: it is stored hashed and cannot be shown again.[/dim]")


@keys_app.command("list")
def keys_list(project: ProjectName, data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List a project's keys (ids only)."""
    with opened_store(settings_for(data_dir)) as store:
        keys = store.list_keys(project_named(store, project).id)
    rows = [
        {"key_id": k.key_id, "kind": k.kind, "name": k.name, "created_at": k.created_at.isoformat()}
        for k in keys
    ]
    if json_out:
        print_json(rows)
        return
    table = Table("key id", "kind", "name", "created")
    for r in rows:
        table.add_row(r["key_id"], r["kind"], r["name"], r["created_at"])
    console.print(table)


@users_app.command("create")
def users_create(
    email: str,
    project: Annotated[list[str], typer.Option("--project", "-p", help="Project (repeatable).")],
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Create a user with an API token for the given projects (account groups)."""
    with opened_store(settings_for(data_dir)) as store:
        projects = [project_named(store, name) for name in project]
        try:
            token = store.create_user(email, [p.id for p in projects])
        except StoreError as exc:
            raise fail(str(exc)) from None
    out = {"email": email.strip().lower(), "token": token, "project_ids": [p.id for p in projects]}
    if json_out:
        print_json(out)
    else:
        console.print(f"user {out['email']} token: [bold]{token}[/bold]")
