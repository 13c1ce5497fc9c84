"""Export: a project's events in the ingest format; exported and ingested again into an empty
project, they give the same sessions with the same metrics."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from sessionscope.config import Settings
from sessionscope.domain.events import KINDS
from sessionscope.service import SessionQuery, SessionService, session_to_dict
from sessionscope.store.clickhouse import ClickHouseStore
from tests.factories import BASE, iso
from tests.test_cli import cli, cli_json

END = BASE + timedelta(days=1)
_names = itertools.count(1)


def _sessions(store: ClickHouseStore, name: str) -> dict[str, list[dict[str, Any]]]:
    project = store.get_project_by_name(name)
    assert project is not None
    service = SessionService(store)
    out = {}
    for kind in KINDS:
        query = SessionQuery(kind, END - timedelta(days=3), END, {}, 1000, None)
        out[kind] = [
            session_to_dict(s, now=END) for s in service.list_sessions(project, query).sessions
        ]
    return out


@pytest.fixture(scope="module")
def source(settings: Settings) -> str:
    name = f"export-src-{next(_names)}"
    result = cli(
        settings, "simulate", "--project", name, "--days", "0.5", "--end", iso(END),
        "--players", "40", "--channels", "2", "--desktop-users", "4", "--endpoint-agents", "3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return name


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_export_then_ingest_gives_the_same_sessions(
    settings: Settings, loaded_store: ClickHouseStore, source: str, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"events.{fmt}"
    done = cli(settings, "export", "--project", source, "--format", fmt, "--output", str(out))
    assert done.exit_code == 0, done.output
    copy = f"export-dst-{next(_names)}"
    cli_json(settings, "projects", "create", copy)
    loaded = cli_json(settings, "ingest", str(out), "--project", copy)
    src_project = loaded_store.get_project_by_name(source)
    assert src_project is not None
    assert loaded["accepted"] == loaded_store.count_events(src_project.id) > 100
    before, after = _sessions(loaded_store, source), _sessions(loaded_store, copy)
    assert all(before[k] for k in KINDS)
    assert before == after


def test_export_is_the_ingest_format_and_filters(
    settings: Settings, loaded_store: ClickHouseStore, source: str, tmp_path: Path
) -> None:
    out = tmp_path / "desktop.ndjson"
    start, stop = iso(END - timedelta(hours=3)), iso(END - timedelta(hours=1))
    done = cli(
        settings, "export", "--project", source, "--kind", "desktop",
        "--from", start, "--to", stop, "-o", str(out),
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert events and {e["kind"] for e in events} == {"desktop"}
    assert all(start <= e["time"] <= stop for e in events)
    assert events == sorted(events, key=lambda e: e["time"])
    assert all(isinstance(e["session"], int) and "id" in e for e in events)


def test_parquet_columns(settings: Settings, source: str, tmp_path: Path) -> None:
    out = tmp_path / "all.parquet"
    assert (
        cli(settings, "export", "-p", source, "--format", "parquet", "-o", str(out)).exit_code == 0
    )
    table = pq.read_table(out)
    assert table.column_names == ["id", "kind", "time", "type", "event"]
    assert set(table.column("kind").to_pylist()) == set(KINDS)


def test_export_refuses_bad_options(settings: Settings, source: str) -> None:
    assert cli(settings, "export", "-p", source, "--format", "csv").exit_code == 2
    assert cli(settings, "export", "-p", source, "--format", "parquet").exit_code == 2
    assert cli(settings, "export", "-p", source, "--kind", "robot").exit_code == 2
    assert cli(settings, "export", "-p", "no-such-project").exit_code == 1
