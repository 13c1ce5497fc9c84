"""What every command shares: options, consoles, settings, opening the store and the journal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import orjson
import typer
from clickhouse_connect.driver.exceptions import ClickHouseError
from rich.console import Console
from rich.markup import escape

from sessionscope.config import Settings, load_settings
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import Event
from sessionscope.ingest import Ingestor, Overloaded, open_ingestor
from sessionscope.ingest.journal import JournalBusy, JournalError
from sessionscope.management import (
    ADMIN_TOKEN_FILE,
    Management,
    ManagementError,
    RemoteManagement,
    StoreManagement,
    recorded_server,
)
from sessionscope.store.clickhouse import ClickHouseStore, open_store
from sessionscope.store.migrations import MigrationRefused

__all__ = [
    "DataDir",
    "JsonOut",
    "LogFormat",
    "ProjectName",
    "console",
    "err",
    "fail",
    "managed",
    "managing",
    "opened_store",
    "print_json",
    "project_named",
    "run_server",
    "settings_for",
    "stopped_by_signals",
    "submit",
    "writing",
]


T = TypeVar("T")

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
LogFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        help="text, or json: one JSON object per request and log record "
        "[env: SESSIONSCOPE_LOG_FORMAT; default text]",
        show_default=False,
    ),
]


def settings_for(data_dir: Path | None, **flags: Any) -> Settings:
    try:
        return load_settings(data_dir=data_dir, **flags)
    except ValueError as exc:  # a SESSIONSCOPE_* variable that cannot be read
        raise fail(str(exc)) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def in_use_by_another_process(settings: Settings) -> bool:
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
def held_stderr() -> Iterator[list[bool]]:
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


def _first_line(exc: BaseException) -> str:
    """The gist of a store error: its cause's message when there is one (connection refused)."""
    text = str(exc).split("Caused by ", 1)[-1]
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def open_cli_store(settings: Settings, *, migrate: bool = True) -> ClickHouseStore:
    """Open (and migrate) the store; fail in one line when a server holds the embedded one."""
    store: ClickHouseStore | None = None
    with held_stderr() as drop:
        try:
            store = open_store(settings, migrate=migrate)
            store.query("SELECT 1")  # connect now, so that a busy store is reported here
        except Exception as exc:
            if store is not None:  # no connection of this process is left open at exit
                store.close()
            if not settings.embedded and isinstance(exc, ClickHouseError):
                where = urlsplit(settings.clickhouse_url)  # no credentials in the message
                raise fail(
                    f"cannot reach the store at {where.scheme}://{where.hostname}:{where.port} "
                    f"(SESSIONSCOPE_CLICKHOUSE_URL): {_first_line(exc)}"
                ) from None
            if isinstance(exc, MigrationRefused):
                raise fail(str(exc)) from None
            if not (settings.embedded and in_use_by_another_process(settings)):
                raise
            drop[0] = True
    if store is None or drop[0]:
        raise fail(
            f"the data directory {settings.data_dir} is in use by a running sessionscope "
            "server; stop it first (or point SESSIONSCOPE_CLICKHOUSE_URL at a ClickHouse "
            "server to share a store)"
        )
    return store


@contextmanager
def opened_store(settings: Settings, *, migrate: bool = True) -> Iterator[ClickHouseStore]:
    """The store, with what the data directory's ingest journal still held loaded into it
    (events a server acknowledged before it stopped), so every command reads them."""
    store = open_cli_store(settings, migrate=migrate)
    try:
        # A server on a shared ClickHouse store may hold the journal: it loads it itself.
        if migrate:
            with contextlib.suppress(JournalBusy):
                replayed(open_ingestor(settings, store)).close()
        yield store
    finally:
        store.close()


@contextmanager
def writing(settings: Settings) -> Iterator[tuple[ClickHouseStore, Ingestor]]:
    """The store and its ingest journal, for a command that stores events: they are journaled
    as a server's are, and in the store when the command ends."""
    store = open_cli_store(settings)
    try:
        try:
            ingestor = replayed(open_ingestor(settings, store))
        except JournalBusy:
            raise fail(
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


def replayed(ingestor: Ingestor) -> Ingestor:
    """Say (on standard error) what the journal still held and is now in the store."""
    if ingestor.replayed_events:
        err.print(
            f"loaded {ingestor.replayed_events} events the ingest journal held "
            "(acknowledged before the last stop)"
        )
    return ingestor


def submit(ingestor: Ingestor, project_id: int, events: list[Event]) -> tuple[int, int]:
    try:
        return ingestor.submit(project_id, events)
    except (Overloaded, JournalError) as exc:
        raise fail(f"could not store the events: {exc}") from None


def project_named(store: ClickHouseStore, name: str) -> Project:
    project = store.get_project_by_name(name)
    if project is None:
        raise fail(f"no project named {name!r} (create it with: sessionscope projects create)")
    return project


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def run_server(settings: Settings, store: ClickHouseStore) -> None:
    """Serve the app on ``store`` with uvicorn, logging as the settings say (the caller stops
    by :func:`stopped_by_signals`, around the store's opening)."""
    import uvicorn

    from sessionscope.api.server import uvicorn_options
    from sessionscope.app import create_app
    from sessionscope.logs import AccessLines, lighten_records, server_log_config

    # The management channel: commands on this data directory reach the server where it
    # records its address, with the admin token.
    app = create_app(settings, store=store, record_address=True, freeze_heap=True)
    lighten_records()
    # The access lines are the app's (``logs.AccessLines``: the same text, cheaper).
    access_lines = settings.access_log and settings.log_format == "text"
    if access_lines:
        app.state.request_recorder.access_lines = AccessLines()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=server_log_config(settings.log_format),
        access_log=access_lines,
        **uvicorn_options(settings, app.state.connection_guard, app_access_log=access_lines),
    )


class _Stopped(Exception):
    """SIGTERM or SIGINT asked the server to stop."""


@contextmanager
def stopped_by_signals() -> Iterator[None]:
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


@contextmanager
def managing(settings: Settings) -> Iterator[Management]:
    """The management operations: through the server that holds the data directory's embedded
    store (its management API, with the admin token), or else on the store directly."""
    remote = running_server(settings)
    if remote is not None:
        yield remote
        return
    with opened_store(settings) as store:
        yield StoreManagement(store)


def running_server(settings: Settings) -> RemoteManagement | None:
    """The management API of the server holding the embedded store, or None when no server
    holds it (or it is shared: every process works on a ClickHouse server directly)."""
    if not settings.embedded:
        return None
    found = recorded_server(settings.data_dir)
    if found is None or found[1] == os.getpid() or not in_use_by_another_process(settings):
        return None
    token_file = Path(settings.data_dir) / ADMIN_TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise fail(
            f"a server holds {settings.data_dir} but its admin token is unreadable: {exc}"
        ) from None
    return RemoteManagement(found[0], token)


def managed(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a refusal printed as an error (exit status 1)."""
    try:
        return call(*args)
    except ManagementError as exc:
        raise fail(exc.message) from None
