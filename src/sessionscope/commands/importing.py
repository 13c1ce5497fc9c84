"""Data in from the vendors: ``import ncp-vpe|ekran|thousandeyes|ncp-livestation``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn

from sessionscope.commands.common import (
    DataDir,
    JsonOut,
    ProjectName,
    console,
    err,
    fail,
    print_json,
    project_named,
    settings_for,
    submit,
    writing,
)
from sessionscope.domain.timerange import TimeRangeError, parse_instant

__all__ = ["import_app"]

import_app = typer.Typer(
    help="Import sessions from a vendor's API (NAVER Cloud, Ekran, ThousandEyes).",
    no_args_is_help=True,
)

Url = Annotated[str, typer.Option("--url", help="The vendor API's base URL.")]
From = Annotated[str | None, typer.Option("--from", help="Start of the range (default: all).")]
To = Annotated[str | None, typer.Option("--to", help="End of the range (default: now).")]


def _range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    try:
        first = parse_instant(start, "--from") if start else None
        last = parse_instant(end, "--to", end_of_day=True) if end else None
    except TimeRangeError as exc:
        raise typer.BadParameter(exc.message, param_hint=exc.param) from None
    if first is not None and last is not None and last < first:
        raise typer.BadParameter("must not be before --from", param_hint="--to")
    return first, last


def _stop(progress: Progress) -> None:
    """Stop the bars if they were shown (rich ends a bar on a non-terminal with a newline)."""
    if progress.live.is_started:
        progress.stop()


@contextmanager
def _stopped(progress: Progress) -> Iterator[Progress]:
    try:
        yield progress
    finally:
        _stop(progress)


def _run(
    vendor: str,
    *,
    make_http: Callable[[], Any],
    runner: Callable[[Any], None],
    url: str,
    project: str,
    start: str | None,
    end: str | None,
    identity: tuple[object, ...],
    data_dir: Any,
    json_out: bool,
    unit: str = "sessions",
) -> None:
    from sessionscope.importers.driver import ImportFailed, Job, StateFile, state_path

    first, last = _range(start, end)
    settings = settings_for(data_dir)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed}} {unit}"),
        console=err,
        disable=json_out,
    )
    # Shown from its first line on (nothing, not even a blank line, for an import refused at
    # its first request).
    with writing(settings) as (store, ingestor), make_http() as http, _stopped(progress):
        p = project_named(store, project)
        path = state_path(settings.data_dir, vendor, url.rstrip("/"), p.id, first, last, *identity)
        state = StateFile.load(path)
        resumed = bool(state.data) and not state.data.get("finished")
        if not resumed:
            state.data = {}
        tasks: dict[str, Any] = {}

        def task(what: str, done: int = 0) -> Any:
            if what not in tasks:
                progress.start()
                tasks[what] = progress.add_task(what, total=None, completed=done)
            return tasks[what]

        def advance(what: str, n: int) -> None:
            progress.advance(task(what), n)

        def expect(what: str, total: int) -> None:
            progress.update(task(what), total=total)

        job = Job(
            http=http,
            project=p,
            state=state,
            submit=lambda events: submit(ingestor, p.id, events),
            start=first,
            end=last,
            on_progress=advance,
            expect=expect,
        )
        for what, n in job.done_before.items():  # a resumed bar goes on from its checkpoint
            task(what, n)
        try:
            runner(job)
        except ImportFailed as exc:
            _stop(progress)
            raise fail(str(exc)) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            _stop(progress)  # the vendor answered something else than its documented shape
            raise fail(
                f"{vendor}: unexpected answer from {url} ({type(exc).__name__}: {exc}); "
                f"progress so far is kept in {path}"
            ) from None
    result = {
        unit: job.sessions,
        "accepted": job.accepted,
        "duplicates": job.duplicates,
        "skipped": job.skipped,
        "requests": http.requests,
        "resumed": resumed,
        "notes": job.notes,
        "state": str(path),
    }
    for note in job.notes:
        err.print(f"[yellow]warning:[/yellow] {escape(f'{vendor}: {note}')}", soft_wrap=True)
    if json_out:
        print_json(result)
    else:
        console.print(
            f"{vendor}: {job.sessions} {unit}{' (resumed)' if resumed else ''}: "
            f"{job.accepted} events stored, {job.duplicates} already there"
            + (f", {job.skipped} skipped" if job.skipped else "")
        )


@import_app.command("ncp-vpe")
def ncp_vpe(
    url: Url,
    project: ProjectName,
    api_key: Annotated[str, typer.Option("--api-key", help="x-api-key.")],
    project_id: Annotated[str, typer.Option("--project-id", help="x-project-id.")],
    from_: From = None,
    to: To = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Import player sessions from NAVER Cloud Video Player Enhancement."""
    from sessionscope.importers import ncp_vpe as vpe
    from sessionscope.importers.driver import RateLimitedHttp

    _run(
        vpe.VENDOR,
        make_http=lambda: RateLimitedHttp(
            vpe.VENDOR,
            url,
            headers={"x-api-key": api_key, "x-project-id": project_id},
            credentials_hint="check --api-key and --project-id",
        ),
        runner=vpe.run,
        url=url,
        project=project,
        start=from_,
        end=to,
        identity=(project_id,),
        data_dir=data_dir,
        json_out=json_out,
    )


@import_app.command("ekran")
def ekran(
    url: Url,
    project: ProjectName,
    api_key: Annotated[str, typer.Option("--api-key", help="The ApiKey header.")],
    from_: From = None,
    to: To = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Import desktop sessions from Ekran System (synthesised from its per-session totals)."""
    from sessionscope.importers import ekran as ek
    from sessionscope.importers.driver import RateLimitedHttp

    _run(
        ek.VENDOR,
        make_http=lambda: RateLimitedHttp(
            ek.VENDOR, url, headers={"ApiKey": api_key}, credentials_hint="check --api-key"
        ),
        runner=ek.run,
        url=url,
        project=project,
        start=from_,
        end=to,
        identity=(),
        data_dir=data_dir,
        json_out=json_out,
    )


@import_app.command("thousandeyes")
def thousandeyes(
    url: Url,
    project: ProjectName,
    email: Annotated[str, typer.Option("--email", help="The user's email (basic auth).")],
    token: Annotated[str, typer.Option("--token", help="The user's API token.")],
    aid: Annotated[str | None, typer.Option("--aid", help="The account group.")] = None,
    from_: From = None,
    to: To = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Import endpoint user sessions (with their pages) from ThousandEyes v6."""
    from sessionscope.importers import thousandeyes as te
    from sessionscope.importers.driver import RateLimitedHttp

    _run(
        te.VENDOR,
        make_http=lambda: RateLimitedHttp(
            te.VENDOR,
            url,
            auth=(email, token),
            credentials_hint="check --email, --token and --aid",
        ),
        runner=lambda job: te.run(job, aid),
        url=url,
        project=project,
        start=from_,
        end=to,
        identity=(email.lower(), aid),
        data_dir=data_dir,
        json_out=json_out,
    )


@import_app.command("ncp-livestation")
def ncp_livestation(
    url: Url,
    project: ProjectName,
    access_key: Annotated[str, typer.Option("--access-key", help="Access key (signature v2).")],
    secret_key: Annotated[str, typer.Option("--secret-key", help="Secret key (signature v2).")],
    from_: From = None,
    to: To = None,
    data_dir: DataDir = None,
    json_out: JsonOut = False,
) -> None:
    """Import channel events from NAVER Cloud Live Station (signed requests)."""
    from sessionscope.importers import ncp_livestation as ls
    from sessionscope.importers.driver import RateLimitedHttp

    _run(
        ls.VENDOR,
        make_http=lambda: RateLimitedHttp(
            ls.VENDOR,
            url,
            sign=ls.signer(access_key, secret_key),
            credentials_hint="check --access-key and --secret-key",
        ),
        runner=ls.run,
        url=url,
        project=project,
        start=from_,
        end=to,
        identity=(access_key,),
        data_dir=data_dir,
        json_out=json_out,
        unit="events",
    )
