"""Taking data out: ``export``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn

from sessionscope.commands.common import (
    DataDir,
    ProjectName,
    err,
    opened_store,
    project_named,
    settings_for,
)
from sessionscope.domain.events import KINDS
from sessionscope.domain.timerange import TimeRangeError, parse_instant

__all__ = ["export"]


def export(
    project: ProjectName,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [default: stdout]")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="ndjson or parquet.")] = "ndjson",
    kind: Annotated[
        list[str] | None, typer.Option(help=f"Only these kinds ({', '.join(KINDS)}).")
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Events at or after.")] = None,
    to: Annotated[str | None, typer.Option(help="Events at or before.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Write a project's stored events in the ingest format (NDJSON or Parquet), streaming."""
    from sessionscope.export import FORMATS, export_events

    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if fmt == "parquet" and output is None:
        raise typer.BadParameter("Parquet needs a file", param_hint="--output")
    kinds = kind or list(KINDS)
    for k in kinds:
        if k not in KINDS:
            raise typer.BadParameter(f"must be one of {', '.join(KINDS)}", param_hint="--kind")
    try:
        start = parse_instant(from_, "--from") if from_ else None
        end = parse_instant(to, "--to", end_of_day=True) if to else None
    except TimeRangeError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.param) from None
    with opened_store(settings_for(data_dir)) as store:
        p = project_named(store, project)
        progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed} events"),
            console=err,
        )
        with progress:
            task = progress.add_task("exporting", total=store.count_events(p.id))
            count = export_events(
                store,
                p.id,
                output if output is not None else sys.stdout.buffer,
                fmt=fmt,
                kinds=kinds,
                start=start,
                end=end,
                progress=lambda n: progress.advance(task, n),
            )
    err.print(f"exported {count} events" + (f" to {output}" if output else ""))
