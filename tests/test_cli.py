"""The CLI through Typer's runner, on the test run's data directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from sessionscope.cli import app
from sessionscope.config import Settings, load_settings
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import EXE, free_port, serve_process
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


def test_projects_and_keys(settings: Settings, loaded_store: ClickHouseStore) -> None:
    created = cli_json(settings, "projects", "create", "cli-shop")
    assert created["name"] == "cli-shop" and created["id"] > 0
    again = cli(settings, "projects", "create", "cli-shop")
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    listed = cli_json(settings, "projects", "list")
    assert "cli-shop" in {p["name"] for p in listed}
    key = cli_json(settings, "keys", "create", "--project", "cli-shop")
    assert key["project_id"] == created["id"]
    project = loaded_store.verify_api_key(key["api_key"])
    assert project is not None and project.name == "cli-shop"
    ncp = cli_json(settings, "keys", "create", "--project", "cli-shop", "--ncp")
    assert loaded_store.signing_secret(ncp["access_key"]) == (created["id"], ncp["secret_key"])
    keys = cli_json(settings, "keys", "list", "--project", "cli-shop")
    assert {k["kind"] for k in keys} == {"api", "ncp"}
    assert all("secret" not in json.dumps(k) for k in keys)
    missing = cli(settings, "keys", "create", "--project", "nope")
    assert missing.exit_code == 1 and "no project named" in missing.stderr
    # Scoped keys, and revocation on the store directly (no server running).
    ingest = cli_json(settings, "keys", "create", "--project", "cli-shop", "--scope", "ingest")
    grant = loaded_store.key_grant(ingest["api_key"])
    assert grant is not None and grant.scope == "ingest" and grant.key_id == ingest["id"]
    bad = cli(settings, "keys", "create", "--project", "cli-shop", "--scope", "write")
    assert bad.exit_code == 2
    revoked = cli_json(settings, "keys", "revoke", "--project", "cli-shop", ingest["id"])
    assert revoked["revoked"] is True
    # (The runner's store is another object on this process's engine: it forgets the key, this
    # one has it remembered a while; the store says it is no longer live.)
    live = loaded_store.list_keys(created["id"])
    assert ingest["id"] not in {k.key_id for k in live} and len(live) == 2
    keys = cli_json(settings, "keys", "list", "--project", "cli-shop")
    assert [(k["id"], k["revoked"]) for k in keys if k["revoked"]] == [(ingest["id"], True)]
    table = cli(settings, "keys", "list", "--project", "cli-shop")
    assert ingest["id"] in table.stdout and "ingest" in table.stdout
    unknown = cli(settings, "keys", "revoke", "--project", "cli-shop", "nope")
    assert unknown.exit_code == 1 and "has no key 'nope'" in unknown.stderr


def test_project_settings(settings: Settings, loaded_store: ClickHouseStore) -> None:
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
    project = loaded_store.get_project_by_name("cli-settings")
    assert project is not None and project.idle_timeout_s == 300
    bad = cli(settings, "projects", "set", "cli-settings", "--idle-timeout", "soon")
    assert bad.exit_code == 2


def test_users_create(settings: Settings, loaded_store: ClickHouseStore) -> None:
    cli_json(settings, "projects", "create", "cli-u1")
    cli_json(settings, "projects", "create", "cli-u2")
    out = cli_json(
        settings, "users", "create", "Ops@Example.com", "--project", "cli-u1", "--project", "cli-u2"
    )
    user = loaded_store.verify_user("ops@example.com", out["token"])
    assert user is not None and len(user.project_ids) == 2
    listed = cli_json(settings, "users", "list")
    ops = next(u for u in listed if u["email"] == "ops@example.com")
    assert (ops["project_ids"], ops["revoked"]) == (out["project_ids"], False)
    revoked = cli_json(settings, "users", "revoke", "OPS@example.com")
    assert revoked["revoked"] is True
    assert loaded_store.verify_user("ops@example.com", out["token"]) is None
    assert cli(settings, "users", "revoke", "nobody@example.com").exit_code == 1
    links = cli_json(settings, "projects", "revoke-links", "cli-u1")
    assert links["signin_generation"] == 1


def write_ndjson(path: Path, events: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_ingest_file(settings: Settings, loaded_store: ClickHouseStore, tmp_path: Path) -> None:
    cli_json(settings, "projects", "create", "cli-ingest")
    events = [player(at=BASE + minutes(i), session=f"f{i % 5}") for i in range(40)]
    events += [desktop("login", session=4), "\n"]
    file = write_ndjson(tmp_path / "events.ndjson", [e for e in events if e != "\n"])
    out = cli_json(settings, "ingest", str(file), "--project", "cli-ingest", "--batch-size", "7")
    assert out == {"events": 41, "accepted": 41, "duplicates": 0}
    out = cli_json(settings, "ingest", str(file), "--project", "cli-ingest")
    assert out == {"events": 41, "accepted": 0, "duplicates": 41}
    project = loaded_store.get_project_by_name("cli-ingest")
    assert project is not None and loaded_store.count_events(project.id) == 41


def test_ingest_refuses_a_bad_file_whole(
    settings: Settings, loaded_store: ClickHouseStore, tmp_path: Path
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
    project = loaded_store.get_project_by_name("cli-bad")
    assert project is not None and loaded_store.count_events(project.id) == 0


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


#: A session id far wider than a table cell of an 80-column terminal.
LONG_SESSION = "cli428-" + "0123456789abcdef" * 5


def test_piped_sessions_are_tsv_with_whole_values(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_json(settings, "projects", "create", "cli-tsv")
    events = [
        player("startup", session=LONG_SESSION, duration_ms=10, device="Smart TV\tbox"),
        player(session="short"),
    ]
    cli_json(settings, "ingest", str(write_ndjson(tmp_path / "t.ndjson", events)), "-p", "cli-tsv")
    # The runner's stdout is not a terminal, as a pipe's is not.
    piped = cli(settings, "sessions", "--project", "cli-tsv", "--limit", "1")
    assert piped.exit_code == 0, piped.output
    header, *lines = piped.stdout.splitlines()
    columns = header.split("\t")
    assert columns[:3] == ["session", "start", "device"]
    assert len(lines) == 1  # the page; where the next one starts goes to stderr
    assert "more: --cursor " in piped.stderr
    whole = cli(settings, "sessions", "--project", "cli-tsv").stdout.splitlines()
    assert whole[0] == header
    rows = [dict(zip(columns, line.split("\t"), strict=True)) for line in whole[1:]]
    by_session = {r["session"]: r for r in rows}
    assert set(by_session) == {LONG_SESSION, "short"}
    assert by_session[LONG_SESSION]["device"] == "Smart TV box"  # a tab in a value is a space
    assert by_session[LONG_SESSION]["total_start_ms"] == "10"
    # On a terminal it stays a table that fits the width.
    monkeypatch.setattr("sessionscope.commands.data._stdout_is_terminal", lambda: True)
    tty = cli(settings, "sessions", "--project", "cli-tsv")
    assert tty.exit_code == 0 and "┃" in tty.stdout and LONG_SESSION not in tty.stdout


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
    settings: Settings, loaded_store: ClickHouseStore
) -> None:
    args = ["simulate", "--project", "cli-sim", "--days", "1", "--players", "30", "--seed", "42"]
    args += ["--desktop-users", "3", "--endpoint-agents", "2", "--channels", "1"]
    args += ["--end", "2025-10-10T12:00:00Z"]
    first = cli_json(settings, *args)
    assert first["accepted"] == first["events"] > 100 and first["seed"] == 42
    again = cli(settings, *args, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == {
        "seed": 42,
        "events": first["events"],
        "accepted": 0,
        "duplicates": first["events"],
    }
    # Said in words, with what to do about it.
    assert "every event was a duplicate: seed 42" in again.stderr
    assert "Pass another --seed" in again.stderr
    project = loaded_store.get_project_by_name("cli-sim")
    assert project is not None
    for kind in ("player", "channel", "desktop", "endpoint"):
        assert loaded_store.count_events(project.id, kind) > 0


def test_simulate_posts_to_a_server(
    settings: Settings, base_url: str, loaded_store: ClickHouseStore
) -> None:
    project = loaded_store.create_project("cli-sim-http")
    key = loaded_store.create_api_key(project.id)
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
    assert out["accepted"] == out["events"] == loaded_store.count_events(project.id)


def test_simulate_without_a_seed_adds_to_the_demo_data(
    settings: Settings, base_url: str, loaded_store: ClickHouseStore
) -> None:
    """The demo loads seed 42; `simulate --url` into it, with no --seed, stores new events
    (it used to make the demo's ids again, times aside, and store nothing)."""
    project = loaded_store.create_project("cli-sim-demo")
    key = loaded_store.create_api_key(project.id)
    sizes = ["--players", "10", "--desktop-users", "1", "--endpoint-agents", "1"]
    post = ["simulate", "--url", base_url, "--api-key", key, "--days", "0.2", *sizes]
    demo = cli_json(settings, *post, "--seed", "42", "--end", "2025-10-10T12:00:00Z")
    assert demo["accepted"] == demo["events"] > 0
    runs = [cli(settings, *post) for _ in range(2)]
    seeds = set()
    for run in runs:
        assert run.exit_code == 0, run.output
        assert "stored, 0 duplicates" in run.stdout
        assert "duplicate" not in run.stderr
        seeds.add(int(run.stdout.split("(seed ")[1].split(")")[0]))
    assert len(seeds) == 2 and 42 not in seeds  # a new seed each run, printed
    # An explicit seed still repeats a run exactly: the demo's one stores nothing again.
    again = cli(settings, *post, "--seed", "42", "--end", "2025-10-10T12:00:00Z")
    assert again.exit_code == 0
    assert (
        f"{demo['events']} events (seed 42): 0 stored, {demo['events']} duplicates" in again.stdout
    )
    assert "Pass another --seed" in again.stderr


# ---------------------------------------------------------------------------- project settings


@pytest.mark.parametrize(
    "value", ["infm", "nanm", "1e30m", "99999999999", "0", "59s", "24h1s", "25h", "-5m", "5x", "٥m"]
)
def test_idle_timeout_out_of_range_or_unreadable_is_refused(settings: Settings, value: str) -> None:
    if not _exists(settings, "cli-idle-range"):
        cli_json(settings, "projects", "create", "cli-idle-range")
    result = cli(settings, "projects", "set", "cli-idle-range", "--idle-timeout", value)
    assert result.exit_code == 2, result.output
    assert "--idle-timeout" in result.stderr
    assert "Traceback" not in result.output + result.stderr


@pytest.mark.parametrize(
    ("value", "seconds"), [("1m", 60), ("60", 60), ("90s", 90), ("1.5h", 5400), ("24h", 86400)]
)
def test_idle_timeout_range_is_inclusive(settings: Settings, value: str, seconds: int) -> None:
    if not _exists(settings, "cli-idle-ok"):
        cli_json(settings, "projects", "create", "cli-idle-ok")
    out = cli_json(settings, "projects", "set", "cli-idle-ok", "--idle-timeout", value)
    assert out["idle_timeout_s"] == seconds


@pytest.mark.parametrize("value", ["0", "-1", "60001", "99999999999", "1e3", "x"])
def test_apdex_threshold_out_of_range_is_refused(settings: Settings, value: str) -> None:
    if not _exists(settings, "cli-apdex-range"):
        cli_json(settings, "projects", "create", "cli-apdex-range")
    result = cli(settings, "projects", "set", "cli-apdex-range", "--apdex-threshold-ms", value)
    assert result.exit_code == 2, result.output
    assert "--apdex-threshold-ms" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    ok = cli_json(settings, "projects", "set", "cli-apdex-range", "--apdex-threshold-ms", "60000")
    assert ok["apdex_threshold_ms"] == 60000


def _exists(settings: Settings, name: str) -> bool:
    return name in {p["name"] for p in cli_json(settings, "projects", "list")}


def test_projects_create_with_an_organization(
    settings: Settings, loaded_store: ClickHouseStore
) -> None:
    made = cli_json(settings, "projects", "create", "cli-org-a", "--organization", " Acme ")
    alone = cli_json(settings, "projects", "create", "cli-org-b")
    assert (made["organization"], alone["organization"]) == ("Acme", "cli-org-b")
    project = loaded_store.get_project(made["id"])
    assert project is not None and project.organization == "Acme"
    listed = {p["name"]: p["organization"] for p in cli_json(settings, "projects", "list")}
    assert (listed["cli-org-a"], listed["cli-org-b"]) == ("Acme", "cli-org-b")
    table = cli(settings, "projects", "list")
    assert table.exit_code == 0 and "organization" in table.stdout and "Acme" in table.stdout
    empty = cli(settings, "projects", "create", "cli-org-c", "--organization", "  ")
    assert empty.exit_code == 2 and "--organization" in empty.stderr


# ---------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("value", "entry"),
    [
        ("bad", "'bad'"),
        ("10.0.0.0/8=Ten,nonsense=X", "'nonsense=X'"),
        ("10.0.0.0/33=Ten", "'10.0.0.0/33=Ten'"),
        ("10.0.0.0/8=", "'10.0.0.0/8='"),
        ("10.0.0.0/8=Ten,10.0.0.0/8=Other", "'10.0.0.0/8=Other'"),
    ],
)
def test_a_bad_address_prefix_entry_fails_at_startup(
    settings: Settings, value: str, entry: str
) -> None:
    with pytest.raises(ValueError, match="SESSIONSCOPE_ORG_PREFIXES") as caught:
        load_settings({"SESSIONSCOPE_ORG_PREFIXES": value, "SESSIONSCOPE_SECRET_KEY": "k"})
    assert entry in str(caught.value)
    for command in (["serve"], ["projects", "list"]):
        result = runner.invoke(
            app,
            [*command, "--data-dir", str(settings.data_dir)],
            env={
                "SESSIONSCOPE_SECRET_KEY": settings.secret_key,
                "SESSIONSCOPE_ORG_PREFIXES": value,
            },
        )
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and entry in lines[0] and "SESSIONSCOPE_ORG_PREFIXES" in lines[0]


def test_address_prefixes_parse() -> None:
    env = {
        "SESSIONSCOPE_SECRET_KEY": "k",
        "SESSIONSCOPE_ORG_PREFIXES": "84.255.240.0/20=T-2 Access Network, 2001:db8::/32=Ex=ample,",
    }
    assert load_settings(env).org_prefixes == {
        "84.255.240.0/20": "T-2 Access Network",
        "2001:db8::/32": "Ex=ample",
    }


# ---------------------------------------------------------------------------- a running server


IN_USE = "is in use by a running sessionscope server; stop it first"


@pytest.mark.timeout(300)  # a `serve` that is not refused would never return
def test_commands_refuse_a_data_directory_a_server_holds(
    tmp_path: Path, loaded_store: ClickHouseStore
) -> None:
    # `store`: this process already has its engine open (on the test run's directory), so the
    # runner's attempts on the held directory fail without starting a second engine here.
    data = tmp_path / "held"
    events = write_ndjson(tmp_path / "e.ndjson", [player()])
    # Managing projects, keys and users goes through the server (tests/test_service.py); the
    # rest needs the store itself.
    commands = [
        ["ingest", str(events), "--project", "x"],
        ["sessions", "--project", "x"],
        ["simulate", "--project", "x", "--days", "0.01"],
        ["migrate"],
        ["demo", "--no-serve"],
        ["serve", "--port", str(free_port())],
    ]
    with serve_process(data) as base:
        for command in commands:
            # The CLI runner, in this process (whose own engine is another data directory).
            result = runner.invoke(app, [*command, "--data-dir", str(data)])
            assert result.exit_code == 1, (command, result.output)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, (command, result.stderr)
            assert f"the data directory {data} {IN_USE}" in lines[0], command
            assert "SESSIONSCOPE_CLICKHOUSE_URL" in lines[0]
        # The real command in a fresh process: the engine's own report is not shown.
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
        done = subprocess.run(
            [*EXE, "sessions", "--project", "x", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "COLUMNS": "300"},
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: the data directory {data} {IN_USE} (or point SESSIONSCOPE_CLICKHOUSE_URL "
            "at a ClickHouse server to share a store)"
        ]
        # Posting to the server is how to load data meanwhile.
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        # Management goes through the server, the same from this process's runner.
        made = runner.invoke(app, ["projects", "create", "x", "--data-dir", str(data)])
        assert made.exit_code == 0 and "project x created with id 1" in made.stdout, made.output
    # Once the server has stopped, the same command works.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}
    after = subprocess.run(
        [*EXE, "projects", "list", "--json", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert after.returncode == 0, after.stderr
    assert [p["name"] for p in json.loads(after.stdout)] == ["x"]


def test_projects_set_changes_the_organization(settings: Settings) -> None:
    cli_json(settings, "projects", "create", "cli-org-moves")
    moved = cli_json(settings, "projects", "set", "cli-org-moves", "--organization", "Acme")
    assert moved["organization"] == "Acme"
    back = cli_json(settings, "projects", "set", "cli-org-moves", "--organization", "")
    assert back["organization"] == "cli-org-moves"  # its own again, named after it
    long = cli(settings, "projects", "set", "cli-org-moves", "--organization", "x" * 101)
    assert long.exit_code == 2 and "organization" in long.output
