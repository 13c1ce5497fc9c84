"""The ``sessionscope`` command. Commands build Settings, call factories and print; no logic."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
import typer
from clickhouse_connect.driver.exceptions import ClickHouseError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sessionscope.config import Settings, load_settings
from sessionscope.domain.events import KINDS, Event, validate_batch
from sessionscope.domain.timerange import TimeRangeError, parse_instant
from sessionscope.ingest import Ingestor, Overloaded, open_ingestor
from sessionscope.ingest.journal import JournalBusy, JournalError
from sessionscope.service import FILTERS, SessionQuery, SessionService, session_to_dict
from sessionscope.store.clickhouse import ClickHouseStore, Project, StoreError, open_store

__all__ = ["app", "main"]

app = typer.Typer(
    help="sessionscope: self-hosted session analytics (collect events, build sessions, serve).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
projects_app = typer.Typer(help="Create, list and configure projects.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and list API keys.", no_args_is_help=True)
users_app = typer.Typer(help="Users with API tokens (ThousandEyes-style access).")
app.add_typer(projects_app, name="projects")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory of the embedded store [env: SESSIONSCOPE_DATA_DIR; "
        "default ./sessionscope-data]",
        show_default=False,
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ProjectName = Annotated[str, typer.Option("--project", "-p", help="Project name.")]


def _settings(data_dir: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(data_dir=data_dir, **flags)
    except ValueError as exc:  # a SESSIONSCOPE_* variable that cannot be read
        raise _fail(str(exc)) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def _in_use_by_another_process(settings: Settings) -> bool:
    """Whether the embedded engine of the data directory is locked by another process.

    The engine holds an exclusive ``flock`` on ``<data dir>/clickhouse/status`` while it is
    open. Only asked once opening failed: this process's own engine holds the lock too.
    """
    status = Path(settings.data_dir) / "clickhouse" / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextmanager
def _held_stderr() -> Iterator[list[bool]]:
    """Hold what is written to file descriptor 2 meanwhile, and write it out at the end unless
    the caller sets the yielded flag (the embedded engine prints its errors there itself)."""
    drop = [False]
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to hold (a detached process)
        yield drop
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield drop
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            if (text := held.read()) and not drop[0]:
                os.write(2, text)


def _open_store(settings: Settings, *, migrate: bool = True) -> ClickHouseStore:
    """Open (and migrate) the store; fail in one line when a server holds the embedded one."""
    store: ClickHouseStore | None = None
    with _held_stderr() as drop:
        try:
            store = open_store(settings, migrate=migrate)
            store.query("SELECT 1")  # connect now, so that a busy store is reported here
        except Exception as exc:
            if store is not None:  # no connection of this process is left open at exit
                store.close()
            if not settings.embedded and isinstance(exc, ClickHouseError):
                where = urlsplit(settings.clickhouse_url)  # no credentials in the message
                raise _fail(
                    f"cannot reach the store at {where.scheme}://{where.hostname}:{where.port} "
                    f"(SESSIONSCOPE_CLICKHOUSE_URL): {_first_line(exc)}"
                ) from None
            if not (settings.embedded and _in_use_by_another_process(settings)):
                raise
            drop[0] = True
    if store is None or drop[0]:
        raise _fail(
            f"the data directory {settings.data_dir} is in use by a running sessionscope "
            "server; stop it first (or point SESSIONSCOPE_CLICKHOUSE_URL at a ClickHouse "
            "server to share a store)"
        )
    return store


def _first_line(exc: BaseException) -> str:
    """The gist of a store error: its cause's message when there is one (connection refused)."""
    text = str(exc).split("Caused by ", 1)[-1]
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


@contextmanager
def _store(settings: Settings, *, migrate: bool = True) -> Iterator[ClickHouseStore]:
    """The store, with what the data directory's ingest journal still held loaded into it
    (events a server acknowledged before it stopped), so every command reads them."""
    store = _open_store(settings, migrate=migrate)
    try:
        # A server on a shared ClickHouse store may hold the journal: it loads it itself.
        if migrate:
            with contextlib.suppress(JournalBusy):
                _replayed(open_ingestor(settings, store)).close()
        yield store
    finally:
        store.close()


@contextmanager
def _writing(settings: Settings) -> Iterator[tuple[ClickHouseStore, Ingestor]]:
    """The store and its ingest journal, for a command that stores events: they are journaled
    as a server's are, and in the store when the command ends."""
    store = _open_store(settings)
    try:
        try:
            ingestor = _replayed(open_ingestor(settings, store))
        except JournalBusy:
            raise _fail(
                f"the ingest journal of {settings.data_dir} is in use by a running sessionscope "
                "server; post the events to it (simulate --url, POST /api/v1/events) or use "
                "another --data-dir"
            ) from None
        try:
            yield store, ingestor
        finally:
            ingestor.close()
    finally:
        store.close()


def _replayed(ingestor: Ingestor) -> Ingestor:
    """Say (on standard error) what the journal still held and is now in the store."""
    if ingestor.replayed_events:
        err.print(
            f"loaded {ingestor.replayed_events} events the ingest journal held "
            "(acknowledged before the last stop)"
        )
    return ingestor


def _submit(ingestor: Ingestor, project_id: int, events: list[Event]) -> tuple[int, int]:
    try:
        return ingestor.submit(project_id, events)
    except (Overloaded, JournalError) as exc:
        raise _fail(f"could not store the events: {exc}") from None


def _project(store: ClickHouseStore, name: str) -> Project:
    project = store.get_project_by_name(name)
    if project is None:
        raise _fail(f"no project named {name!r} (create it with: sessionscope projects create)")
    return project


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


#: The idle timeouts a project may have, in seconds: a minute to a day.
IDLE_TIMEOUT_RANGE_S = (60, 86_400)
#: The Apdex thresholds T a project may have, in milliseconds: up to a minute.
APDEX_THRESHOLD_RANGE_MS = (1, 60_000)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smh]?)", re.ASCII | re.IGNORECASE)


def _duration(text: str, param: str, bounds: tuple[int, int]) -> int:
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


# ---------------------------------------------------------------------------- server


class _Stopped(Exception):
    """SIGTERM or SIGINT asked the server to stop."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGINT stop the server and the command exits 0, after the store is closed.

    uvicorn shuts down gracefully on either (in-flight requests finish, the lifespan loads what
    was acknowledged), restores the handlers it found and raises the signal again: here that
    is an exception that unwinds through the store's close, not a death by the signal (which
    skipped the close: status 143 on SIGTERM). A signal before uvicorn runs stops the same way;
    signals while closing are ignored (the close finishes)."""
    stopping: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if not stopping:
            stopping.append(signum)
            raise _Stopped(signum)

    handled = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        yield
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    public_url: Annotated[str | None, typer.Option(help="Base URL users reach.")] = None,
) -> None:
    """Serve the API and dashboard."""
    import uvicorn

    from sessionscope.api.server import uvicorn_options
    from sessionscope.app import create_app

    settings = _settings(data_dir, host=host, port=port, public_url=public_url)
    # Opened here, not in the app's lifespan: a data directory in use fails in one line.
    with _stopped_by_signals(), _store(settings) as store:
        asgi = create_app(settings, store=store)
        uvicorn.run(
            asgi,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
            **uvicorn_options(settings),
        )


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply pending schema migrations (also done at every start)."""
    with _store(_settings(data_dir), migrate=False) as store:
        applied = store.migrate()
        for name in applied:
            console.print(f"applied {name}")
        console.print(f"schema at version {max(store.applied_migrations(), default=0)}")


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
    with _store(_settings(data_dir)) as store:
        try:
            project = store.create_project(name, organization=org)
        except StoreError as exc:
            raise _fail(str(exc)) from None
    if json_out:
        _print_json(project.as_dict())
    else:
        console.print(f"project [bold]{project.name}[/bold] created with id {project.id}")


@projects_app.command("list")
def projects_list(data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List projects."""
    with _store(_settings(data_dir)) as store:
        projects = store.list_projects()
    if json_out:
        _print_json([p.as_dict() for p in projects])
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
        _duration(idle_timeout, "--idle-timeout", IDLE_TIMEOUT_RANGE_S)
        if idle_timeout is not None
        else None
    )
    org = organization.strip() if organization is not None else None
    if org is not None and len(org) > 100:
        raise typer.BadParameter("must be at most 100 characters", param_hint="--organization")
    with _store(_settings(data_dir)) as store:
        project = store.update_project(
            _project(store, name),
            idle_timeout_s=timeout,
            apdex_threshold_ms=apdex_threshold_ms,
            organization=org,
        )
    if json_out:
        _print_json(project.as_dict())
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
    with _store(_settings(data_dir)) as store:
        p = _project(store, project)
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
        _print_json(out)
    else:
        for k, v in out.items():
            console.print(f"{k}: [bold]{v}[/bold]")
        console.print("[dim]Keep the key now: it is stored hashed and cannot be shown again.[/dim]")


@keys_app.command("list")
def keys_list(project: ProjectName, data_dir: DataDir = None, json_out: JsonOut = False) -> None:
    """List a project's keys (ids only)."""
    with _store(_settings(data_dir)) as store:
        keys = store.list_keys(_project(store, project).id)
    rows = [
        {"key_id": k.key_id, "kind": k.kind, "name": k.name, "created_at": k.created_at.isoformat()}
        for k in keys
    ]
    if json_out:
        _print_json(rows)
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
    with _store(_settings(data_dir)) as store:
        projects = [_project(store, name) for name in project]
        try:
            token = store.create_user(email, [p.id for p in projects])
        except StoreError as exc:
            raise _fail(str(exc)) from None
    out = {"email": email.strip().lower(), "token": token, "project_ids": [p.id for p in projects]}
    if json_out:
        _print_json(out)
    else:
        console.print(f"user {out['email']} token: [bold]{token}[/bold]")


# ---------------------------------------------------------------------------- data


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON file, - none")],
    project: ProjectName,
    batch_size: Annotated[int, typer.Option(min=1, max=100000)] = 5000,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Load events from an NDJSON file. The whole file is validated before anything is stored."""
    total = file.stat().st_size
    problems: list[dict[str, Any]] = []
    count = 0
    now = datetime.now(UTC)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=json_out,
    )

    def batches(task: Any) -> Iterator[tuple[list[int], list[Any]]]:
        lines: list[int] = []
        batch: list[Any] = []
        with file.open("rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                progress.advance(task, len(line))
                if not line.strip():
                    continue
                try:
                    batch.append(orjson.loads(line))
                except orjson.JSONDecodeError as exc:
                    problems.append(
                        {"line": lineno, "field": "", "message": f"invalid JSON: {exc}"}
                    )
                    continue
                lines.append(lineno)
                if len(batch) >= batch_size:
                    yield lines, batch
                    lines, batch = [], []
        if batch:
            yield lines, batch

    settings = _settings(data_dir)
    with _writing(settings) as (store, ingestor), progress:
        p = _project(store, project)
        task = progress.add_task("validating", total=total)
        for lines, batch in batches(task):
            _, found = validate_batch(batch, now=now)
            count += len(batch)
            for pr in found:
                problems.append({"line": lines[pr.index], "field": pr.field, "message": pr.message})
        if problems:
            progress.stop()
            for item in problems[:20]:
                err.print(f"  line {item['line']}: {item['field']} {item['message']}")
            raise _fail(f"{len(problems)} problem(s) in {file}; nothing was stored")
        task = progress.add_task("storing", total=total)
        accepted = duplicates = 0
        for _lines, batch in batches(task):
            events, _ = validate_batch(batch, now=now)
            a, d = _submit(ingestor, p.id, events)
            accepted += a
            duplicates += d
    result = {"events": count, "accepted": accepted, "duplicates": duplicates}
    if json_out:
        _print_json(result)
    else:
        console.print(f"{count} events: {accepted} stored, {duplicates} duplicates")


@app.command()
def simulate(
    project: ProjectName = "demo",
    days: Annotated[float, typer.Option(help="Span of simulated time, ending now.")] = 2.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same events).")] = 42,
    players: Annotated[int, typer.Option(help="Player sessions over the span.")] = 400,
    channels: Annotated[int, typer.Option(help="Live channels.")] = 3,
    desktop_users: Annotated[int, typer.Option(help="Desktop users.")] = 12,
    endpoint_agents: Annotated[int, typer.Option(help="Endpoint agents.")] = 8,
    end: Annotated[str | None, typer.Option(help="End of the span (default: now).")] = None,
    url: Annotated[
        str | None, typer.Option(help="Post to this server instead of writing the store.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --url.")] = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Generate realistic traffic for all four kinds, into the store or to a server."""
    try:
        end_at = parse_instant(end, "end") if end else datetime.now(UTC)
    except TimeRangeError as exc:
        raise typer.BadParameter(exc.message, param_hint="--end") from None
    result = _run_simulation(
        _settings(data_dir),
        project=project,
        end=end_at,
        days=days,
        seed=seed,
        sizes={
            "players": players,
            "channels": channels,
            "desktop_users": desktop_users,
            "endpoint_agents": endpoint_agents,
        },
        url=url,
        api_key=api_key,
        quiet=json_out,
    )
    if json_out:
        _print_json(result)
    else:
        console.print(
            f"simulated {result['events']} events: {result['accepted']} stored, "
            f"{result['duplicates']} duplicates"
        )


def _run_simulation(
    settings: Settings,
    *,
    project: str,
    end: datetime,
    days: float,
    seed: int,
    sizes: dict[str, int],
    url: str | None,
    api_key: str | None,
    quiet: bool = False,
) -> dict[str, int]:
    from sessionscope.simulate import SimulationConfig, simulate_batches

    config = SimulationConfig(
        seed=seed,
        start=end - timedelta(days=days),
        end=end,
        players=sizes["players"],
        channels=sizes["channels"],
        desktop_users=sizes["desktop_users"],
        endpoint_agents=sizes["endpoint_agents"],
    )
    totals = {"events": 0, "accepted": 0, "duplicates": 0}
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} events"),
        console=err,
        disable=quiet,
    )
    if url:
        import httpx

        if not api_key:
            raise _fail("--url needs --api-key")
        with (
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
            ) as http,
            progress,
        ):
            task = progress.add_task("posting", total=None)
            for batch in simulate_batches(config, batch_size=1000):
                body = b"\n".join(orjson.dumps(e) for e in batch)
                r = http.post(
                    "/api/v1/events", content=body, headers={"Content-Type": "application/x-ndjson"}
                )
                if r.status_code != 200:
                    raise _fail(f"server answered {r.status_code}: {r.text[:500]}")
                data = r.json()
                totals["events"] += len(batch)
                totals["accepted"] += data["accepted"]
                totals["duplicates"] += data["duplicates"]
                progress.advance(task, len(batch))
        return totals
    with _writing(settings) as (store, ingestor), progress:
        p = store.get_project_by_name(project) or store.create_project(project)
        task = progress.add_task("storing", total=None)
        now = max(end, datetime.now(UTC))
        for batch in simulate_batches(config, batch_size=5000):
            events, problems = validate_batch(batch, now=now)
            if problems:  # pragma: no cover - the simulator only makes valid events
                raise _fail(f"simulator produced an invalid event: {problems[0]}")
            a, d = _submit(ingestor, p.id, events)
            totals["events"] += len(batch)
            totals["accepted"] += a
            totals["duplicates"] += d
            progress.advance(task, len(batch))
    return totals


@app.command()
def sessions(
    project: ProjectName,
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}.")] = "player",
    from_: Annotated[str | None, typer.Option("--from", help="Active at or after.")] = None,
    to: Annotated[str | None, typer.Option(help="Active at or before.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue after a previous page.")] = None,
    filter_: Annotated[
        list[str] | None, typer.Option("--filter", "-f", help="name=value (repeatable).")
    ] = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """List sessions, newest first (a table, or --json as the native API answers)."""
    if kind not in KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(KINDS)}", param_hint="--kind")
    filters: dict[str, list[str]] = {}
    for item in filter_ or []:
        name, sep, value = item.partition("=")
        if not sep or name not in FILTERS[kind]:
            raise typer.BadParameter(
                f"use name=value with name in {', '.join(FILTERS[kind])}", param_hint="--filter"
            )
        filters.setdefault(name, []).extend(value.split(","))
    try:
        start = parse_instant(from_, "--from") if from_ else None
        stop = parse_instant(to, "--to", end_of_day=True) if to else None
    except TimeRangeError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.param) from None
    with _store(_settings(data_dir)) as store:
        p = _project(store, project)
        page = SessionService(store).list_sessions(
            p, SessionQuery(kind, start, stop, filters, limit, cursor)
        )
    rows = [session_to_dict(s) for s in page.sessions]
    if json_out:
        _print_json({"sessions": rows, "next": page.next})
        return
    if not rows:
        console.print("no sessions")
        return
    columns = [c for c in _TABLE_COLUMNS[kind] if c in rows[0]]
    table = Table(*columns)
    for r in rows:
        table.add_row(*("" if r[c] is None else str(r[c]) for c in columns))
    console.print(table)
    if page.next:
        console.print(f"more: --cursor {page.next}")


_TABLE_COLUMNS = {
    "player": [
        "session",
        "start",
        "device",
        "video_type",
        "total_start_ms",
        "playing_ms",
        "rebuffering_ms",
        "is_error",
    ],
    "channel": ["session", "start", "end", "live", "errors"],
    "desktop": ["session", "user_name", "login", "logout", "duration_ms", "idle_ms"],
    "endpoint": ["session", "visited_site", "start", "pages", "experience_score"],
}


# ---------------------------------------------------------------------------- demo


@app.command()
def demo(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve when the data is loaded.")
    ] = True,
) -> None:
    """Load simulated data into a 'demo' project (once), print credentials, and serve."""
    settings = _settings(data_dir, host=host, port=port)
    creds_file = Path(settings.data_dir) / "demo-credentials.json"
    with _store(settings) as store:
        project = store.get_project_by_name("demo") or store.create_project("demo")
        creds: dict[str, Any] = {}
        if creds_file.exists():
            creds = json.loads(creds_file.read_text())
        if creds.get("project_id") != project.id or not store.verify_api_key(
            creds.get("api_key", "")
        ):
            creds = {"project": "demo", "project_id": project.id}
            creds["api_key"] = store.create_api_key(project.id, "demo")
        # Vendor-compatible APIs add the credentials they need to `creds` here.
        signing = store.signing_secret(str(creds.get("ncp_access_key", "")))
        if signing is None or signing[0] != project.id:  # NAVER Cloud signature v2 pair
            creds["ncp_access_key"], creds["ncp_secret_key"] = store.create_signing_key(
                project.id, "demo"
            )
        te_user = store.verify_user(str(creds.get("te_email", "")), str(creds.get("te_token", "")))
        if te_user is None or project.id not in te_user.project_ids:  # ThousandEyes v6 user
            creds["te_email"] = "demo@example.com"
            creds["te_token"] = store.create_user(creds["te_email"], [project.id])
        creds_file.write_text(json.dumps(creds, indent=2))
        creds_file.chmod(0o600)
        loaded = store.count_events(project.id)
    if loaded:
        console.print(f"demo data already loaded ({loaded} events); not loading again")
    else:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        result = _run_simulation(
            settings,
            project="demo",
            end=end,
            days=7,
            seed=42,
            sizes={"players": 6000, "channels": 4, "desktop_users": 25, "endpoint_agents": 15},
            url=None,
            api_key=None,
        )
        console.print(f"loaded {result['accepted']} simulated events into project 'demo'")
    _print_demo_help(settings, creds)
    if serve_after:
        import uvicorn

        from sessionscope.api.server import uvicorn_options
        from sessionscope.app import create_app

        with _stopped_by_signals(), _store(settings) as store:
            uvicorn.run(
                create_app(settings, store=store),
                host=settings.host,
                port=settings.port,
                access_log=settings.access_log,
                **uvicorn_options(settings),
            )


def _print_demo_help(settings: Settings, creds: dict[str, Any]) -> None:
    from sessionscope.dashboard.auth import sign_in_link

    base = settings.base_url
    key = creds["api_key"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = f'{{"kind":"channel","time":"{now}","type":"PUBLISH_START","channel":"ls-demo"}}'
    auth = f"-H 'Authorization: Bearer {key}'"
    lines = [
        "",
        f"[bold]sessionscope demo[/bold]  {base}",
        f"  project:  demo (id {creds['project_id']})",
        f"  API key:  {key}",
        f"  (saved in {Path(settings.data_dir) / 'demo-credentials.json'})",
        "",
        "Open the dashboard (this sign-in link works for 7 days; or sign in with the API key):",
        f"  {sign_in_link(settings, creds['project_id'])}",
        "",
        "Try the native API:",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=player&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=desktop&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/timeseries?kind=player&metric=viewers'",
        f"  curl -s {auth} -H 'Content-Type: application/json' -d '{event}' '{base}/api/v1/events'",
        f"OpenAPI docs: {base}/docs",
    ]
    # Vendor-compatible APIs add their credentials (made in `demo`) and examples here.
    lines += _livestation_help(base, creds)
    lines += _thousandeyes_help(base, creds)
    vpe = f"-H 'x-api-key: {key}' -H 'x-project-id: {creds['project_id']}'"
    lines += [
        "NAVER Cloud Video Player Enhancement (Media Analytics), docs/compat/ncp-vpe.md:",
        f"  curl -s {vpe} '{base}/v1/sessionRecent?device=PC,Mobile&videoType=VOD,LIVE&limit=5'",
        f"  curl -s {vpe} '{base}/v1/charts/playCnt'",
        f"  curl -s {vpe} '{base}/v1/charts/currentViewers'",
    ]
    ekran = f"-H 'ApiKey: {key}'"
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    lines += [
        "Ekran System (desktop sessions), docs/compat/ekran.md:",
        f"  curl -s {ekran} -H 'Content-Type: application/json' "
        f'-d \'{{"start":"{day}","sessionCount":5}}\' \'{base}/ekranapi/sessions\'',
        f"  curl -s {ekran} '{base}/ekranapi/sessions?start={day}'",
        f"  curl -s {ekran} '{base}/ekranapi/user/getproductivity?start={day}'",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=True)


def _thousandeyes_help(base: str, creds: dict[str, Any]) -> list[str]:
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


def _livestation_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the Live Station API: its keys and a curl signed with openssl."""
    ak, sk = creds.get("ncp_access_key"), creds.get("ncp_secret_key")
    if not ak or not sk:
        return []
    sign = (
        'SIG=$(printf \'GET %s\\n%s\\n%s\' "$P" "$TS" "$AK" '
        '| openssl dgst -sha256 -hmac "$SK" -binary | base64)'
    )
    headers = (
        '-H "x-ncp-apigw-timestamp: $TS" -H "x-ncp-iam-access-key: $AK" '
        '-H "x-ncp-apigw-signature-v2: $SIG"'
    )
    return [
        "NAVER Cloud Live Station (signature v2), docs/compat/ncp-livestation.md:",
        f"  access key: {ak}",
        f"  secret key: {sk}",
        f"  AK='{ak}' SK='{sk}' P='/api/v2/events?pageSize=5'",
        f"  TS=$(date +%s)000; {sign}",
        f'  curl -s {headers} "{base}$P"',
        f"  Live Station callback URL: {base}/api/v2/callbacks/events?apiKey={creds['api_key']}",
    ]


def main() -> None:  # pragma: no cover - entry point
    app()
