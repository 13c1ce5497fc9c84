"""Exactly once through crashes: the server killed (SIGKILL) at random moments while clients
post events concurrently and retry, restarted each time; at the end every acknowledged event is
stored exactly once and every session's metrics are those of the acknowledged events.

The server runs as its own process on a data directory of its own (chDB allows one engine per
process). Clients resend the very same batch (same ids) after a connection error, a timeout or
a 5xx until it is acknowledged, across restarts, and sometimes resend a batch already
acknowledged (all duplicates: acknowledged means durable). Half of the kills are random; the
others land while the loader writes a block: a large batch is posted and the server is killed
as soon as the journal marks its block (between the mark and the records' removal, i.e. during
or right after the block's insert).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import EXE, cli_json, free_port
from tests.factories import BASE, desktop, iso, player

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SEED = 20251010
ROUNDS = 6  # server runs that end in a SIGKILL; one more runs to the end
CLIENTS = 4
BIG_BATCH = 3000
#: Journal settings per run: the loader lingering or not, small blocks or large ones.
RUN_ENV = [
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "500", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "50000"},
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "0", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "500"},
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "50", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "50000"},
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "0", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "2000"},
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "20", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "700"},
    {"SESSIONSCOPE_JOURNAL_LINGER_MS": "0", "SESSIONSCOPE_JOURNAL_BLOCK_EVENTS": "50000"},
    {},  # the last run: defaults
]
IDLE_TIMEOUT = timedelta(minutes=15)  # the project's default


def cli(data_dir: Path, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = cli_json(data_dir, *args)
    return result


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}


# ---------------------------------------------------------------------------- the server


class Server:
    """``sessionscope serve`` on one port, started again after each kill."""

    def __init__(self, data_dir: Path, logs: Path) -> None:
        self.data_dir = data_dir
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self, env: dict[str, str]) -> None:
        self.runs += 1
        log = open(self.logs / f"server-{self.runs}.log", "wb")  # noqa: SIM115 - the child's
        with log:  # the child keeps its own descriptor (a pipe nobody reads could fill up)
            self.proc = subprocess.Popen(
                [*EXE, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**base_env(), **env},
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited at start:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"server not healthy in 60 s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown of any kind
        self.proc.wait(30)
        self.proc = None

    def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def log_tail(self) -> str:
        path = self.logs / f"server-{self.runs}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def journal_state(data_dir: Path) -> tuple[int, int, str | None]:
    """(records, events, block mark) of the journal a killed server left, read on a copy (the
    data directory stays as the crash left it)."""
    source = data_dir / "journal"
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("journal.db", "journal.db-wal"):
            if (source / name).exists():
                shutil.copy(source / name, Path(tmp) / name)
        with contextlib.closing(sqlite3.connect(Path(tmp) / "journal.db")) as db:
            records, events = db.execute(
                "SELECT count(*), coalesce(sum(count), 0) FROM records"
            ).fetchone()
            row = db.execute("SELECT value FROM meta WHERE key = 'block'").fetchone()
    return int(records), int(events), row[0] if row else None


def wait_for_block_mark(data_dir: Path, timeout_s: float) -> bool:
    """Poll the live journal (a reader on the server's WAL database) until the loader marks a
    block; close the reader before returning (the server stays its last user)."""
    deadline = time.monotonic() + timeout_s
    with contextlib.closing(sqlite3.connect(data_dir / "journal" / "journal.db", timeout=5)) as db:
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.OperationalError):
                if db.execute("SELECT 1 FROM meta WHERE key = 'block'").fetchone():
                    return True
            time.sleep(0.001)
    return False


# ---------------------------------------------------------------------------- the clients


@dataclass
class Ledger:
    """Everything acknowledged, by every sender."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    acks: list[tuple[int, int, int, int]] = field(default_factory=list)  # len, tries, acc, dup
    resends: list[tuple[int, int, int]] = field(default_factory=list)  # len, accepted, dup
    problems: list[str] = field(default_factory=list)
    refusals: dict[int, int] = field(default_factory=dict)  # 5xx answers by status
    retries: int = 0
    #: Set when the test fails: the senders stop retrying.
    abort: threading.Event = field(default_factory=threading.Event)


class Sender:
    """Posts one batch until it is acknowledged: the same body (same ids) again after a
    connection error, a timeout or a 5xx, whatever happens to the server meanwhile."""

    def __init__(self, server: Server, auth: dict[str, str], ledger: Ledger) -> None:
        self.server, self.auth, self.ledger = server, auth, ledger
        self.http = httpx.Client(timeout=15)

    def close(self) -> None:
        self.http.close()

    def post_until_acked(self, batch: list[dict[str, Any]], single: bool) -> tuple[int, int, int]:
        body = orjson.dumps(batch[0] if single else batch)
        headers = {**self.auth, "Content-Type": "application/json"}
        deadline = time.monotonic() + 150
        tries = 0
        while True:
            tries += 1
            if self.ledger.abort.is_set():
                raise AssertionError("the test failed meanwhile")
            if time.monotonic() > deadline:
                raise AssertionError(f"a batch of {len(batch)} not acknowledged in 150 s")
            try:
                r = self.http.post(
                    f"{self.server.url}/api/v1/events", content=body, headers=headers
                )
            except httpx.HTTPError:
                with self.ledger.lock:
                    self.ledger.retries += 1
                time.sleep(0.05)
                continue
            if r.status_code >= 500:
                with self.ledger.lock:
                    self.ledger.refusals[r.status_code] = (
                        self.ledger.refusals.get(r.status_code, 0) + 1
                    )
                    if r.status_code != 503:  # a refusal is 503; anything else is a failure
                        self.ledger.problems.append(f"{r.status_code}: {r.text[:300]}")
                time.sleep(0.05)
                continue
            if r.status_code != 200:
                raise AssertionError(f"unexpected {r.status_code}: {r.text[:300]}")
            answer = r.json()
            return tries, int(answer["accepted"]), int(answer["duplicates"])

    def send(self, batch: list[dict[str, Any]], single: bool = False) -> None:
        tries, accepted, duplicates = self.post_until_acked(batch, single)
        with self.ledger.lock:
            self.ledger.acks.append((len(batch), tries, accepted, duplicates))
            for event in batch:
                assert event["id"] not in self.ledger.events, event["id"]
                self.ledger.events[event["id"]] = event

    def resend(self, batch: list[dict[str, Any]]) -> None:
        """An acknowledged batch again: all duplicates."""
        _, accepted, duplicates = self.post_until_acked(batch, False)
        with self.ledger.lock:
            self.ledger.resends.append((len(batch), accepted, duplicates))


PLAYER_TYPES = ["playing"] * 5 + ["rebuffering"] * 2 + ["startup", "player_start", "paused"]
PLAYER_TYPES += ["error", "seeking"]


class Client(threading.Thread):
    """Posts batches of 1 to 50 player and desktop events (single events as one object) from
    a few sessions at a time, each batch until acknowledged, until told to stop."""

    def __init__(self, index: int, sender: Sender, stop: threading.Event) -> None:
        super().__init__(name=f"client-{index}", daemon=True)
        self.index, self.sender, self.stop = index, sender, stop
        self.rng = random.Random(SEED + index)
        self.n = 0
        self.players: dict[str, datetime] = {}
        self.desktops: dict[int, datetime] = {}
        self.opened = 0
        self.failure: BaseException | None = None

    def next_id(self) -> str:
        self.n += 1
        return f"c{self.index}-e{self.n}"

    def player_event(self) -> dict[str, Any]:
        rng = self.rng
        if len(self.players) < 4 or rng.random() < 0.04:
            self.opened += 1
            start = BASE + timedelta(minutes=rng.randrange(0, 600))
            self.players[f"c{self.index}-p{self.opened}"] = start
            if len(self.players) > 4:
                del self.players[rng.choice(sorted(self.players))]
        session = rng.choice(sorted(self.players))
        at = self.players[session] = self.players[session] + timedelta(
            seconds=rng.randrange(1, 120), milliseconds=rng.randrange(1000)
        )
        extra: dict[str, Any] = {}
        if rng.random() < 0.85:
            extra["duration_ms"] = rng.randrange(0, 60_000)
        return player(rng.choice(PLAYER_TYPES), at=at, session=session, id=self.next_id(), **extra)

    def desktop_event(self) -> dict[str, Any]:
        rng = self.rng
        if len(self.desktops) < 2:
            self.opened += 1
            number = self.index * 100_000 + self.opened
            at = BASE + timedelta(minutes=rng.randrange(0, 600), milliseconds=rng.randrange(1000))
            self.desktops[number] = at
            return desktop("login", at=at, session=number, id=self.next_id())
        number = rng.choice(sorted(self.desktops))
        at = self.desktops[number] + timedelta(
            seconds=rng.randrange(10, 1500), milliseconds=rng.randrange(1000)
        )
        self.desktops[number] = at
        kind = "activity"
        if rng.random() < 0.04:
            kind = "logout"
            del self.desktops[number]  # nothing after a logout
        return desktop(kind, at=at, session=number, id=self.next_id())

    def batch(self) -> list[dict[str, Any]]:
        size = 1 if self.rng.random() < 0.3 else self.rng.randint(2, 50)
        return [
            self.player_event() if self.rng.random() < 0.65 else self.desktop_event()
            for _ in range(size)
        ]

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                batch = self.batch()
                self.sender.send(batch, single=len(batch) == 1 and self.rng.random() < 0.7)
                if self.rng.random() < 0.1:
                    self.sender.resend(batch)
                time.sleep(self.rng.uniform(0, 0.03))
        except BaseException as exc:
            self.failure = exc
        finally:
            self.sender.close()


def big_batch(run: int) -> list[dict[str, Any]]:
    """``BIG_BATCH`` player events of 60 sessions: a block that takes the loader a while."""
    rng = random.Random(SEED * 10 + run)
    out = []
    for i in range(BIG_BATCH):
        session = f"big{run}-s{i % 60}"
        at = BASE + timedelta(hours=2, seconds=i, milliseconds=rng.randrange(1000))
        out.append(
            player(
                rng.choice(PLAYER_TYPES),
                at=at,
                session=session,
                id=f"big{run}-{i}",
                duration_ms=rng.randrange(0, 30_000),
            )
        )
    return out


# ---------------------------------------------------------------------------- expectations


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def expected_player(events: list[dict[str, Any]]) -> dict[str, Any]:
    def total(kind: str) -> int:
        return sum(int(e.get("duration_ms", 0)) for e in events if e["type"] == kind)

    times = sorted(t(e["time"]) for e in events)
    errors = sum(e["type"] == "error" for e in events)
    playing, rebuffering = total("playing"), total("rebuffering")
    ratio = rebuffering / (rebuffering + playing) if rebuffering + playing else 0
    return {
        "start": iso(times[0]),
        "end": iso(times[-1]),
        "events": len(events),
        "player_start_ms": total("player_start"),
        "video_start_ms": total("startup"),
        "total_start_ms": total("player_start") + total("startup"),
        "rebuffering_ms": rebuffering,
        "playing_ms": playing,
        "rebuffer_ratio": round(ratio, 4),
        "errors": errors,
        "is_error": errors > 0,
    }


def expected_desktop(events: list[dict[str, Any]]) -> dict[str, Any]:
    times = sorted(t(e["time"]) for e in events)
    logins = [t(e["time"]) for e in events if e["type"] == "login"]
    logouts = [t(e["time"]) for e in events if e["type"] == "logout"]
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > IDLE_TIMEOUT]
    ms = timedelta(milliseconds=1)
    duration = (times[-1] - times[0]) // ms
    idle = sum((b - a) // ms for a, b in gaps)
    return {
        "login": iso(min(logins) if logins else times[0]),
        "logout": iso(max(logouts)) if logouts else None,
        "start": iso(times[0]),
        "end": iso(times[-1]),
        "duration_ms": duration,
        "idle_ms": idle,
        "productive_ms": duration - idle,
        "idle_gaps": [{"start": iso(a), "end": iso(b)} for a, b in gaps],
    }


def list_sessions(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    """Every session of the kind, following ``next``."""
    out: list[dict[str, Any]] = []
    params: dict[str, str] = {"kind": kind, "from": "2025-10-01", "to": "2025-10-31"}
    params["limit"] = "1000"
    while True:
        r = http.get("/api/v1/sessions", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["sessions"])
        if not body["next"]:
            return out
        params["cursor"] = body["next"]


_STORED = """
import json, sys
from pathlib import Path
from sessionscope.config import load_settings
from sessionscope.store.clickhouse import open_store

store = open_store(load_settings(data_dir=Path(sys.argv[1])))
p = {"p": int(sys.argv[2])}
where = " WHERE project_id = {p:UInt32}"
out = {
    "events": store.query("SELECT count(), uniqExact(id) FROM events" + where, p)[0],
    "ids": sorted(r[0] for r in store.query("SELECT id FROM event_ids" + where, p)),
    "event_ids": store.query("SELECT count(), uniqExact(id) FROM event_ids" + where, p)[0],
    "player": dict(store.query(
        "SELECT session, sum(events) FROM player_sessions" + where + " GROUP BY session", p)),
    "desktop": dict(store.query(
        "SELECT toString(session), sum(events) FROM desktop_sessions" + where
        + " GROUP BY session", p)),
}
store.close()
print("RESULT " + json.dumps(out, default=int))
"""


def stored_counts(data_dir: Path, project_id: int) -> dict[str, Any]:
    """Raw counts in the store (every part, no FINAL: a block written twice counts twice in
    the aggregates), read by a process of its own once the server has stopped."""
    out = subprocess.run(
        [sys.executable, "-c", _STORED, str(data_dir), str(project_id)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env=base_env(),
    )
    (line,) = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


# ---------------------------------------------------------------------------- the test


@contextlib.contextmanager
def clients(server: Server, auth: dict[str, str], ledger: Ledger) -> Iterator[list[Client]]:
    stop = threading.Event()
    running = [Client(i, Sender(server, auth, ledger), stop) for i in range(CLIENTS)]
    for c in running:
        c.start()
    try:
        yield running
    except BaseException:
        ledger.abort.set()
        raise
    finally:
        stop.set()
        for c in running:
            c.join(160)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "data", tmp_path)
    try:
        yield s
    finally:
        if s.proc is not None:  # a failure left it running
            s.proc.kill()
            s.proc.wait()


def test_kill_9_during_concurrent_ingest_stores_every_acknowledged_event_once(
    server: Server,
) -> None:
    data = server.data_dir
    project = cli(data, "projects", "create", "crash")
    key = cli(data, "keys", "create", "--project", "crash")["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    ledger = Ledger()
    rng = random.Random(SEED)
    kills: list[dict[str, Any]] = []
    began = time.monotonic()

    server.start(RUN_ENV[0])
    with clients(server, auth, ledger) as running:
        main = Sender(server, auth, ledger)
        try:
            for run in range(ROUNDS):
                if run:
                    server.start(RUN_ENV[run])
                targeted = run % 2 == 1
                marked = False
                if targeted:
                    # A large batch, and the kill as soon as its block is being loaded.
                    time.sleep(rng.uniform(0.3, 1.0))
                    main.send(big_batch(run))
                    marked = wait_for_block_mark(data, timeout_s=10)
                else:
                    time.sleep(rng.uniform(0.3, 2.0))
                server.kill()
                records, events, block = journal_state(data)
                kills.append(
                    {
                        "run": run,
                        "targeted": targeted,
                        "marked": marked,
                        "records": records,
                        "events": events,
                        "block": block,
                        "acked": len(ledger.events),
                    }
                )
                assert all(c.is_alive() for c in running), [c.failure for c in running]
            server.start(RUN_ENV[ROUNDS])
            time.sleep(1.0)  # the clients go on with the last server for a while
        finally:
            main.close()
    try:
        for c in running:
            assert not c.is_alive(), "a client did not finish its last batch"
            assert c.failure is None, repr(c.failure)
        ingest_s = time.monotonic() - began
        assert not ledger.problems, ledger.problems[:5]
        sent = ledger.events
        by_player: dict[str, list[dict[str, Any]]] = {}
        by_desktop: dict[str, list[dict[str, Any]]] = {}
        for event in sent.values():
            group = by_player if event["kind"] == "player" else by_desktop
            group.setdefault(str(event["session"]), []).append(event)

        # Every acknowledgement adds up, and a batch acknowledged at its first try was new.
        for size, tries, accepted, duplicates in ledger.acks:
            assert accepted + duplicates == size
            if tries == 1:
                assert (accepted, duplicates) == (size, 0)
            else:  # an earlier try may have been journaled, as a whole or not at all
                assert accepted in (0, size), (size, tries, accepted, duplicates)
        # Acknowledged means durable: an acknowledged batch sent again is all duplicates.
        for size, accepted, duplicates in ledger.resends:
            assert (accepted, duplicates) == (0, size)

        with httpx.Client(base_url=server.url, headers=auth, timeout=60) as http:
            # Player sessions: their events and metrics (from the aggregates, where a block
            # written twice would count twice) are those of the acknowledged events.
            players = {s["session"]: s for s in list_sessions(http, "player")}
            assert set(players) == set(by_player)
            for name, events in by_player.items():
                want = expected_player(events)
                got = {k: players[name][k] for k in want}
                assert got == want, name
            # Every acknowledged id is stored, in its session (the session's events; all of the
            # clients' sessions, a few of each large batch's).
            looked = [n for n in by_player if not n.startswith("big")]
            looked += [n for n in by_player if n.startswith("big") and n.endswith(("-s0", "-s59"))]
            for name in looked:
                r = http.get(f"/api/v1/sessions/player/{name}")
                assert r.status_code == 200, r.text
                body = r.json()
                ids = [e["id"] for e in body["events"]]
                assert sorted(ids) == sorted(e["id"] for e in by_player[name]), name
                assert body["events"] == sorted(body["events"], key=lambda e: (e["time"], e["id"]))
            desktops = {str(s["session"]): s for s in list_sessions(http, "desktop")}
            assert set(desktops) == set(by_desktop)
            for name, events in by_desktop.items():
                want = expected_desktop(events)
                assert {k: desktops[name][k] for k in want} == want, name
                r = http.get(f"/api/v1/sessions/desktop/{name}")
                assert r.status_code == 200, r.text
                body = r.json()
                assert sorted(e["id"] for e in body["events"]) == sorted(e["id"] for e in events)
                assert {k: body[k] for k in want} == want
            health = http.get("/healthz").json()
        check_s = time.monotonic() - began - ingest_s
    finally:
        status = server.interrupt() if server.proc is not None else None
    assert status == 0, server.log_tail()

    # After a clean stop: nothing left in the journal, and the raw counts of the store.
    records, _, block = journal_state(data)
    assert (records, block) == (0, None)
    stored = stored_counts(data, int(project["id"]))
    assert stored["events"] == [len(sent), len(sent)]
    assert stored["ids"] == sorted(sent)  # each acknowledged id once, and nothing else
    assert stored["event_ids"] == [len(sent), len(sent)]
    assert stored["player"] == {k: len(v) for k, v in by_player.items()}
    assert stored["desktop"] == {k: len(v) for k, v in by_desktop.items()}

    # The kills were of both sorts: with acknowledged events still in the journal, and in
    # the middle of a block.
    summary = {
        "events": len(sent),
        "batches": len(ledger.acks),
        "resends": len(ledger.resends),
        "retried_batches": sum(tries > 1 for _, tries, _, _ in ledger.acks),
        "connection_errors": ledger.retries,
        "refusals": ledger.refusals,
        "ingest_s": round(ingest_s, 1),
        "check_s": round(check_s, 1),
        "journal": health["journal"],
        "kills": kills,
    }
    print(json.dumps(summary, indent=1))
    assert len(kills) >= 5
    assert any(k["records"] > 0 for k in kills), summary
    assert any(k["block"] is not None for k in kills), summary
