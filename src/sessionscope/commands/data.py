"""Events in (``ingest``, ``simulate``) and sessions out (``sessions``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sessionscope.commands.common import (
    DataDir,
    JsonOut,
    ProjectName,
    console,
    err,
    fail,
    opened_store,
    print_json,
    project_named,
    settings_for,
    submit,
    writing,
)
from sessionscope.config import Settings
from sessionscope.domain.events import KINDS, validate_batch
from sessionscope.domain.timerange import TimeRangeError, parse_instant
from sessionscope.service import FILTERS, SessionQuery, SessionService, session_to_dict

__all__ = ["ingest", "run_simulation", "sessions", "simulate"]


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


def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="NDJSON file, - none")],
    project: ProjectName,
    batch_size: Annotated[int, typer.Option(min=1, max=100000)] = 5000,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Load events from an NDJSON file (or a Parquet file `export` wrote). The whole file is
    validated before anything is stored."""
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

    from sessionscope.export import is_parquet, read_parquet_events

    parquet = is_parquet(file)

    def batches(task: Any) -> Iterator[tuple[list[int], list[Any]]]:
        if parquet:  # rows are numbered as lines are
            first = 1
            for rows in read_parquet_events(file, batch_size):
                yield list(range(first, first + len(rows))), rows
                first += len(rows)
            progress.advance(task, total)
            return
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

    settings = settings_for(data_dir)
    with writing(settings) as (store, ingestor), progress:
        p = project_named(store, project)
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
            raise fail(f"{len(problems)} problem(s) in {file}; nothing was stored")
        task = progress.add_task("storing", total=total)
        accepted = duplicates = 0
        for _lines, batch in batches(task):
            events, _ = validate_batch(batch, now=now)
            a, d = submit(ingestor, p.id, events)
            accepted += a
            duplicates += d
    result = {"events": count, "accepted": accepted, "duplicates": duplicates}
    if json_out:
        print_json(result)
    else:
        console.print(f"{count} events: {accepted} stored, {duplicates} duplicates")


def simulate(
    project: ProjectName = "demo",
    days: Annotated[float, typer.Option(help="Span of simulated time, ending now.")] = 2.0,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed: the same seed makes the same events, ids included, so a second "
            "run into the same project stores nothing new. [default: a new seed each run]",
            show_default=False,
        ),
    ] = None,
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
    from sessionscope.simulate import fresh_seed

    result = run_simulation(
        settings_for(data_dir),
        project=project,
        end=end_at,
        days=days,
        seed=fresh_seed() if seed is None else seed,
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
        print_json(result)
    else:
        console.print(
            f"simulated {result['events']} events (seed {result['seed']}): "
            f"{result['accepted']} stored, {result['duplicates']} duplicates",
            soft_wrap=True,
        )
    if result["events"] and result["duplicates"] == result["events"]:
        # Event ids are made from the seed: this seed's events were stored before (the demo
        # loads seed 42), whatever their times.
        err.print(
            f"every event was a duplicate: seed {result['seed']} makes the ids an earlier run "
            "stored. Pass another --seed, or leave --seed out for a new one each run.",
            soft_wrap=True,
            highlight=False,
        )


def run_simulation(
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
    totals = {"seed": seed, "events": 0, "accepted": 0, "duplicates": 0}
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} events"),
        console=err,
        disable=quiet,
    )
    if url:
        from sessionscope.client import Client, ClientError

        if not api_key:
            raise fail("--url needs --api-key")
        with Client(url, api_key, batch_size=1000) as client, progress:
            task = progress.add_task("posting", total=None)
            for batch in simulate_batches(config, batch_size=1000):
                try:
                    sent = client.send(batch)
                except ClientError as exc:
                    raise fail(f"server answered {exc}") from None
                totals["events"] += len(batch)
                totals["accepted"] += sent.accepted
                totals["duplicates"] += sent.duplicates
                progress.advance(task, len(batch))
        return totals
    with writing(settings) as (store, ingestor), progress:
        p = store.get_project_by_name(project) or store.create_project(project)
        task = progress.add_task("storing", total=None)
        now = max(end, datetime.now(UTC))
        for batch in simulate_batches(config, batch_size=5000):
            events, problems = validate_batch(batch, now=now)
            if problems:  # pragma: no cover - the simulator only makes valid events
                raise fail(f"simulator produced an invalid event: {problems[0]}")
            a, d = submit(ingestor, p.id, events)
            totals["events"] += len(batch)
            totals["accepted"] += a
            totals["duplicates"] += d
            progress.advance(task, len(batch))
    return totals


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
    with opened_store(settings_for(data_dir)) as store:
        p = project_named(store, project)
        page = SessionService(store).list_sessions(
            p, SessionQuery(kind, start, stop, filters, limit, cursor)
        )
    rows = [session_to_dict(s) for s in page.sessions]
    if json_out:
        print_json({"sessions": rows, "next": page.next})
        return
    if not _stdout_is_terminal():
        # Piped or redirected: full values as TSV (a table would be cut to the default 80
        # columns); the notes go to stderr so stdout stays TSV.
        _print_tsv(kind, rows)
        if not rows:
            err.print("no sessions")
        if page.next:
            err.print(f"more: --cursor {page.next}", soft_wrap=True, highlight=False)
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


def _stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def _print_tsv(kind: str, rows: list[dict[str, Any]]) -> None:
    """A header line and one line per session, tab-separated, values whole (tabs and line
    breaks inside a value become spaces)."""
    columns = [c for c in _TABLE_COLUMNS[kind] if not rows or c in rows[0]]

    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")

    lines = ["\t".join(columns), *("\t".join(cell(r[c]) for c in columns) for r in rows)]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


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
