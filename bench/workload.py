"""The data of a run: the big read store (built once, reused) and the events posted.

Both come from ``sessionscope.simulate``, seeded, so every process that needs the same events
(the engine baseline in its own process, the HTTP clients in the runner) generates them alike.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from common import DATA_DIR, in_child, log

__all__ = [
    "STORE_VERSION",
    "StoreInfo",
    "build_events",
    "build_store",
    "cli",
    "disk_bytes",
    "ensure_store",
    "ingest_events",
    "large_batch_events",
    "many_client_events",
    "ndjson_bodies",
    "sessionscope_exe",
    "single_events",
    "work_copy",
]

#: Bump when the way the store is built changes: stores of another version are rebuilt.
#: 3: events inserted in time order, as a live server receives them (2: session by session).
STORE_VERSION = 3
#: Player events per simulated player session (measured: about 21.7); a little low on purpose
#: so one round overshoots the target instead of needing a second.
_EVENTS_PER_PLAYER = 21.0
_ROUND_DAYS = 14
_MARKER = "bench-store.json"
#: Projects of every store: the read benchmarks query ``bench``; HTTP ingest writes
#: ``bench-ingest``, the engine baseline ``bench-raw``, so neither disturbs the other.
_PROJECTS = ("bench", "bench-ingest", "bench-raw")
_KEYED = ("bench", "bench-ingest")


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A built store: where it is, what it holds, and the credentials made for it."""

    path: Path
    events: int
    player_sessions: int
    start: datetime
    end: datetime
    project_ids: dict[str, int]
    api_keys: dict[str, str]
    build_seconds: float
    built_at: str
    disk_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STORE_VERSION,
            "events": self.events,
            "player_sessions": self.player_sessions,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "project_ids": self.project_ids,
            "api_keys": self.api_keys,
            "build_seconds": self.build_seconds,
            "built_at": self.built_at,
            "disk_bytes": self.disk_bytes,
        }

    @classmethod
    def from_json(cls, path: Path, data: dict[str, Any]) -> StoreInfo:
        return cls(
            path=path,
            events=int(data["events"]),
            player_sessions=int(data["player_sessions"]),
            start=datetime.fromisoformat(data["start"]),
            end=datetime.fromisoformat(data["end"]),
            project_ids={k: int(v) for k, v in data["project_ids"].items()},
            api_keys=dict(data["api_keys"]),
            build_seconds=float(data["build_seconds"]),
            built_at=str(data["built_at"]),
            disk_bytes=int(data["disk_bytes"]),
        )


def sessionscope_exe() -> str:
    """The ``sessionscope`` script of the interpreter running the bench (the project venv)."""
    exe = Path(sys.executable).parent / "sessionscope"
    return str(exe) if exe.exists() else "sessionscope"


def cli(*args: str) -> Any:
    """Run ``sessionscope ARGS --json`` and return its parsed output."""
    proc = subprocess.run(
        [sessionscope_exe(), *args, "--json"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sessionscope {' '.join(args)} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _store_path(events: int) -> Path:
    return DATA_DIR / f"store-v{STORE_VERSION}-{events}"


def ensure_store(events: int) -> StoreInfo:
    """Return the read store of ``events`` events, building it first when absent or stale."""
    path = _store_path(events)
    marker = path / _MARKER
    if marker.exists():
        info = StoreInfo.from_json(path, json.loads(marker.read_text()))
        log(f"reusing store {path.name}: {info.events:,} events, built {info.built_at}")
        # Bring its schema up to date once, not in every copy of it.
        proc = subprocess.run(
            [sessionscope_exe(), "migrate", "--data-dir", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"sessionscope migrate failed: {proc.stderr.strip()[-2000:]}")
        if "applied" in proc.stdout:
            log(" ".join(proc.stdout.split()))
        return info
    if path.exists():
        log(f"removing incomplete store {path.name}")
        shutil.rmtree(path)
    for old in DATA_DIR.glob("store-v*"):
        if old != path and not (old / _MARKER).exists():
            shutil.rmtree(old, ignore_errors=True)
    path.mkdir(parents=True)
    started = time.monotonic()
    log(f"building store {path.name} (once; reused by later runs)")
    ids: dict[str, int] = {}
    keys: dict[str, str] = {}
    for name in _PROJECTS:
        ids[name] = int(cli("projects", "create", name, "--data-dir", str(path))["id"])
    for name in _KEYED:
        keys[name] = cli("keys", "create", "--project", name, "--data-dir", str(path))["api_key"]
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    built: dict[str, Any] = in_child(build_store, str(path), ids["bench"], events, end)
    info = StoreInfo(
        path=path,
        events=int(built["events"]),
        player_sessions=int(built["player_sessions"]),
        start=datetime.fromisoformat(built["start"]),
        end=end,
        project_ids=ids,
        api_keys=keys,
        build_seconds=round(time.monotonic() - started, 1),
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        disk_bytes=disk_bytes(path),
    )
    marker.write_text(json.dumps(info.to_json(), indent=2))
    log(f"store built in {info.build_seconds:.0f} s: {info.events:,} events")
    return info


def work_copy(store: StoreInfo, name: str) -> Path:
    """Return a fresh copy of the store for one phase that writes (so runs start alike)."""
    dst = DATA_DIR / f"work-{name}"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(store.path, dst, symlinks=True)  # the engine links metadata relatively
    return dst


def _rounds(target: int, end: datetime) -> Iterator[Any]:
    """Yield simulation configs, newest window first, until the caller has enough events."""
    from sessionscope.simulate import SimulationConfig

    for r in itertools.count():
        players = max(1000, math.ceil(target / _EVENTS_PER_PLAYER))
        hi = end - timedelta(days=_ROUND_DAYS * r)
        yield SimulationConfig(
            seed=1000 + r,
            start=hi - timedelta(days=_ROUND_DAYS),
            end=hi,
            players=players,
            channels=8,
            desktop_users=60,
            endpoint_agents=25,
        )


#: Events an insert of the store build holds (a busy server's group commit holds about this).
_BUILD_INSERT_EVENTS = 1000


def _as_they_arrive(config: Any, spool: Path) -> Iterator[list[dict[str, Any]]]:
    """The round's events in time order, in inserts of ``_BUILD_INSERT_EVENTS``: as a live
    server receives them, every kind interleaved, a session's events over several inserts.

    The simulator yields each session whole; inserting it so would put each session in one
    insert, which flatters whatever the store builds per insert (the session index did).
    The events are spooled to one file per UTC day under ``spool`` and each day is sorted
    alone (the whole round sorted at once takes tens of GB).
    """
    from sessionscope.simulate import simulate

    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    files: dict[str, Any] = {}
    try:
        for event in simulate(config):
            day = event["time"][:10]  # RFC 3339 in one format: the UTC day
            out = files.get(day)
            if out is None:
                out = files[day] = (spool / f"{day}.ndjson").open("wb")
            out.write(orjson.dumps(event) + b"\n")
    finally:
        for out in files.values():
            out.close()
    batch: list[dict[str, Any]] = []
    for day in sorted(files):
        events = [
            orjson.loads(line) for line in (spool / f"{day}.ndjson").read_bytes().splitlines()
        ]
        events.sort(key=lambda e: e["time"])  # one format: as text they sort in time order
        for event in events:
            batch.append(event)
            if len(batch) == _BUILD_INSERT_EVENTS:
                yield batch
                batch = []
        (spool / f"{day}.ndjson").unlink()
    if batch:
        yield batch
    shutil.rmtree(spool, ignore_errors=True)


def build_store(path: str, project_id: int, target: int, end: datetime) -> dict[str, Any]:
    """Fill the store with simulated events through ``store.insert_events`` (in a child)."""
    from sessionscope.config import load_settings
    from sessionscope.domain.events import validate_batch
    from sessionscope.store.clickhouse import open_store

    store = open_store(load_settings(data_dir=path))
    try:
        stored = 0
        started = time.monotonic()
        last_log = started
        earliest = end
        now = datetime.now(UTC)
        for config in _rounds(target, end):
            earliest = config.start
            for batch in _as_they_arrive(config, DATA_DIR / "spool"):
                events, problems = validate_batch(batch, now=now)
                if problems:
                    raise RuntimeError(f"the simulator made an invalid event: {problems[0]}")
                accepted, _ = store.insert_events(project_id, events)
                stored += accepted
                if time.monotonic() - last_log > 15:
                    last_log = time.monotonic()
                    rate = stored / (last_log - started)
                    log(f"  {stored:,} events stored ({rate:,.0f}/s)")
            if stored >= target:
                break
        _wait_for_merges(store)
        sessions = store.count_sessions("player", project_id)
        return {"events": stored, "player_sessions": sessions, "start": earliest.isoformat()}
    finally:
        store.close()


def _wait_for_merges(store: Any, timeout_s: float = 600) -> None:
    """Let background merges settle so every run starts from the same part layout."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        running = int(store.query("SELECT count() FROM system.merges")[0][0])
        quiet = quiet + 1 if running == 0 else 0
        time.sleep(1)


# ------------------------------------------------------------------------- posted events


def _posted(seed: int, count: int, end: datetime) -> list[dict[str, Any]]:
    """``count`` simulated events of every kind, for a window before the store's data."""
    from sessionscope.simulate import SimulationConfig, simulate

    players = max(50, math.ceil(count / _EVENTS_PER_PLAYER))
    config = SimulationConfig(
        seed=seed,
        start=end - timedelta(days=3),
        end=end,
        players=players,
        channels=4,
        desktop_users=20,
        endpoint_agents=10,
    )
    events = list(simulate(config))
    if len(events) < count:
        raise RuntimeError(f"simulation made {len(events)} events, {count} wanted")
    # The simulator groups events by kind; interleave so every batch mixes the kinds.
    step = len(events) / count
    return [events[int(i * step)] for i in range(count)]


def ingest_events(count: int, end: datetime) -> list[dict[str, Any]]:
    """The events posted in batches (and bulk-inserted by the baseline)."""
    return _posted(7, count, end)


def large_batch_events(count: int, end: datetime) -> list[dict[str, Any]]:
    """The events posted in large batches (another set: the first is stored by then)."""
    return _posted(9, count, end)


def many_client_events(count: int, end: datetime) -> list[dict[str, Any]]:
    """The events posted in batches by many clients (another set again)."""
    return _posted(10, count, end)


def single_events(count: int, end: datetime) -> list[dict[str, Any]]:
    """The events posted one per request (and inserted one per call by the baseline)."""
    return _posted(8, count, end)


def build_events(items: list[dict[str, Any]]) -> list[Any]:
    """Validate simulated event objects into ``Event`` values (as the ingest pipeline does)."""
    from sessionscope.domain.events import validate_batch

    events, problems = validate_batch(items, now=datetime.now(UTC))
    if problems:
        raise RuntimeError(f"the simulator made an invalid event: {problems[0]}")
    return events


def ndjson_bodies(items: list[dict[str, Any]], batch_size: int) -> list[bytes]:
    """Serialise events as NDJSON request bodies of ``batch_size`` events."""
    return [
        b"\n".join(orjson.dumps(e) for e in items[i : i + batch_size])
        for i in range(0, len(items), batch_size)
    ]
