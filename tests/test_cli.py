"""The CLI through Typer's runner, on the test run's data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from sessionscope.cli import app
from sessionscope.config import Settings
from sessionscope.store.clickhouse import ClickHouseStore
from tests.factories import BASE, desktop, minutes, player

runner = CliRunner()


def cli(settings: Settings, *args: str) -> Any:
    result = runner.invoke(
        app,
        [*args, "--data-dir", str(settings.data_dir)],
        env={"SESSIONSCOPE_SECRET_KEY": settings.secret_key},
    )
    return result


def cli_json(settings: Settings, *args: str) -> Any:
    result = cli(settings, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_projects_and_keys(settings: Settings, store: ClickHouseStore) -> None:
    created = cli_json(settings, "projects", "create", "cli-shop")
    assert created["name"] == "cli-shop" and created["id"] > 0
    again = cli(settings, "projects", "create", "cli-shop")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    listed = cli_json(settings, "projects", "list")
    assert "cli-shop" in {p["name"] for p in listed}
    key = cli_json(settings, "keys", "create", "--project", "cli-shop")
    assert key["project_id"] == created["id"]
    project = store.verify_api_key(key["api_key"])
    assert project is not None and project.name == "cli-shop"
    ncp = cli_json(settings, "keys", "create", "--project", "cli-shop", "--ncp")
    assert store.signing_secret(ncp["access_key"]) == (created["id"], ncp["secret_key"])
    keys = cli_json(settings, "keys", "list", "--project", "cli-shop")
    assert {k["kind"] for k in keys} == {"api", "ncp"}
    assert all("secret" not in json.dumps(k) for k in keys)
    missing = cli(settings, "keys", "create", "--project", "nope")
    assert missing.exit_code == 1 and "no project named" in missing.stderr


def test_project_settings(settings: Settings, store: ClickHouseStore) -> None:
    cli_json(settings, "projects", "create", "cli-settings")
    out = cli_json(
        settings,
        "projects",
        "set",
        "cli-settings",
        "--idle-timeout",
        "5m",
        "--apdex-threshold-ms",
        "1500",
    )
    assert (out["idle_timeout_s"], out["apdex_threshold_ms"]) == (300, 1500)
    project = store.get_project_by_name("cli-settings")
    assert project is not None and project.idle_timeout_s == 300
    bad = cli(settings, "projects", "set", "cli-settings", "--idle-timeout", "soon")
    assert bad.exit_code == 2


def test_users_create(settings: Settings, store: ClickHouseStore) -> None:
    cli_json(settings, "projects", "create", "cli-u1")
    cli_json(settings, "projects", "create", "cli-u2")
    out = cli_json(
        settings, "users", "create", "Ops@Example.com", "--project", "cli-u1", "--project", "cli-u2"
    )
    user = store.verify_user("ops@example.com", out["token"])
    assert user is not None and len(user.project_ids) == 2


def write_ndjson(path: Path, events: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_ingest_file(settings: Settings, store: ClickHouseStore, tmp_path: Path) -> None:
    cli_json(settings, "projects", "create", "cli-ingest")
    events = [player(at=BASE + minutes(i), session=f"f{i % 5}") for i in range(40)]
    events += [desktop("login", session=4), "\n"]
    file = write_ndjson(tmp_path / "events.ndjson", [e for e in events if e != "\n"])
    out = cli_json(settings, "ingest", str(file), "--project", "cli-ingest", "--batch-size", "7")
    assert out == {"events": 41, "accepted": 41, "duplicates": 0}
    out = cli_json(settings, "ingest", str(file), "--project", "cli-ingest")
    assert out == {"events": 41, "accepted": 0, "duplicates": 41}
    project = store.get_project_by_name("cli-ingest")
    assert project is not None and store.count_events(project.id) == 41


def test_ingest_refuses_a_bad_file_whole(
    settings: Settings, store: ClickHouseStore, tmp_path: Path
) -> None:
    cli_json(settings, "projects", "create", "cli-bad")
    file = tmp_path / "bad.ndjson"
    file.write_bytes(
        orjson.dumps(player()) + b"\n{broken\n" + orjson.dumps(player(device=None)) + b"\n"
    )
    result = cli(settings, "ingest", str(file), "--project", "cli-bad")
    assert result.exit_code == 1
    assert "line 2" in result.stderr and "line 3: device" in result.stderr
    assert "nothing was stored" in " ".join(result.stderr.split())
    project = store.get_project_by_name("cli-bad")
    assert project is not None and store.count_events(project.id) == 0


def test_sessions_command(settings: Settings, tmp_path: Path) -> None:
    cli_json(settings, "projects", "create", "cli-sessions")
    file = write_ndjson(
        tmp_path / "s.ndjson",
        [player("startup", session="one", duration_ms=10), player(session="two", device="Mobile")],
    )
    cli_json(settings, "ingest", str(file), "--project", "cli-sessions")
    out = cli_json(settings, "sessions", "--project", "cli-sessions", "--kind", "player")
    assert {s["session"] for s in out["sessions"]} == {"one", "two"}
    out = cli_json(settings, "sessions", "--project", "cli-sessions", "--filter", "device=Mobile")
    assert [s["session"] for s in out["sessions"]] == ["two"]
    page = cli_json(settings, "sessions", "--project", "cli-sessions", "--limit", "1")
    assert page["next"]
    table = cli(settings, "sessions", "--project", "cli-sessions")
    assert table.exit_code == 0 and "one" in table.stdout and "two" in table.stdout
    bad = cli(settings, "sessions", "--project", "cli-sessions", "--filter", "color=red")
    assert bad.exit_code == 2


def test_migrate(settings: Settings) -> None:
    result = cli(settings, "migrate")
    assert result.exit_code == 0
    assert "schema at version" in result.stdout


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["simulate"], ["ingest"], ["sessions"]])
def test_every_command_takes_data_dir(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "--data-dir" in result.stdout


def test_simulate_into_the_store_is_seeded_and_idempotent(
    settings: Settings, store: ClickHouseStore
) -> None:
    args = ["simulate", "--project", "cli-sim", "--days", "1", "--players", "30"]
    args += ["--desktop-users", "3", "--endpoint-agents", "2", "--channels", "1"]
    args += ["--end", "2025-10-10T12:00:00Z"]
    first = cli_json(settings, *args)
    assert first["accepted"] == first["events"] > 100
    again = cli_json(settings, *args)
    assert again == {"events": first["events"], "accepted": 0, "duplicates": first["events"]}
    project = store.get_project_by_name("cli-sim")
    assert project is not None
    for kind in ("player", "channel", "desktop", "endpoint"):
        assert store.count_events(project.id, kind) > 0


def test_simulate_posts_to_a_server(
    settings: Settings, base_url: str, store: ClickHouseStore
) -> None:
    project = store.create_project("cli-sim-http")
    key = store.create_api_key(project.id)
    out = cli_json(
        settings,
        "simulate",
        "--url",
        base_url,
        "--api-key",
        key,
        "--days",
        "0.2",
        "--players",
        "10",
        "--desktop-users",
        "1",
        "--endpoint-agents",
        "1",
    )
    assert out["accepted"] == out["events"] == store.count_events(project.id)
