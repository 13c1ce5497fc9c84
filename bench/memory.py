"""Server memory as the store grows: ``sessionscope serve``'s RSS on a 1M- and a 10M-event store.

``python bench/memory.py [--report PATH] [--sizes 1000000,10000000]`` builds (once, cached under
``bench/.data/memstore-v<version>-<events>``) one store per size, each in a process of its own,
then for each size, on a fresh copy of its store:

1. starts ``sessionscope serve`` as a process and waits for ``/healthz``;
2. posts about 20,000 new events over HTTP (single events and 100-event batches from 4
   clients), waits until ``/healthz`` shows the journal empty and the server idle (the stored-id
   filter and the session starts are loaded from the store in the background at first ingest);
3. reads: player session pages following ``next``, desktop and endpoint pages, one session's
   detail, player time series over the last 7 and 30 days, the dashboard's overview and
   explorer (signed in with a cookie made from the key), three rounds;
4. idles ten seconds and stops the server with SIGINT.

The server's ``/proc/PID/status`` (VmRSS, VmHWM = peak, RssAnon, RssFile) is sampled every 0.5 s
throughout; the RSS at the end of each step is the median of its last samples. Figures are
printed as JSON, kept in ``bench/.data/memory.json`` (and in ``last-run.json`` when present);
with ``--report`` the section of that report is refreshed. ``run.py`` runs it as a phase of
``make bench``. ``BENCH_MEMORY_SIZES`` (``1000000,10000000``) sets the sizes for ``make bench``.

The stores are built without HTTP or the simulator: ``Event`` values made directly (player
sessions of about 30 events with random UUID session and user ids, desktop work days, endpoint
page visits; 30 days ending at the build), written in time order in 100,000-event blocks with
``store.write_events``, as the journal's loader writes them.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import http.client
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

from common import DATA_DIR, cpu_probe_ms, in_child, log

__all__ = ["MEM_STORE_VERSION", "MemoryConfig", "main", "measure_memory", "save"]

#: Bump when the way the stores are built changes: stores of another version are rebuilt.
MEM_STORE_VERSION = 1
_MARKER = "memory-store.json"
#: Set by ``main``: progress of the build's child process to stderr too (figures to stdout).
_STDERR_ENV = "BENCH_MEMORY_LOG_STDERR"
_PREFIX = "memstore-v"
#: The issue's targets.
TARGET_MB = 600
TARGET_RATIO = 1.15

_SECOND = 1000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """Sizes of the phase."""

    sizes: tuple[int, ...] = (1_000_000, 10_000_000)
    #: Days of data in each store, ending at its build.
    days: int = 30
    #: Events per block written while building.
    block_events: int = 100_000
    #: Events posted over HTTP: single-event requests, and 100-event batches.
    single_events: int = 4_000
    batch_events: int = 16_000
    batch_size: int = 100
    clients: int = 4
    #: Rounds of the read requests.
    read_rounds: int = 3
    #: Player session pages followed through ``next`` in each round.
    pages: int = 5
    #: Seconds of idle sampling at the end (steady RSS): the engine's allocator hands freed
    #: memory back over some seconds (measured: still falling 10 s after the reads).
    idle_s: float = 30.0

    @classmethod
    def from_env(cls) -> MemoryConfig:
        raw = os.environ.get("BENCH_MEMORY_SIZES", "").strip()
        return cls(sizes=parse_sizes(raw)) if raw else cls()


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(s.replace("_", ""))) for s in text.split(",") if s.strip())
    except ValueError:
        raise SystemExit(f"sizes must be numbers separated by commas, not {text!r}") from None
    if not sizes or any(s < 10_000 for s in sizes):
        raise SystemExit("sizes must be at least 10000 events each")
    return tuple(sorted(set(sizes)))


# ------------------------------------------------------------------------------ the events

# (os, device, browser, screen), weight: as the simulator's viewers.
_PLATFORMS = (
    (("Windows / 10", "PC", "Chrome / 127.0.0.0", "1920x1080"), 26),
    (("Windows / 10", "PC", "Edge / 126.0.0.0", "1536x864"), 9),
    (("Mac OS / 10.15.7", "PC", "Chrome / 126.0.0.0", "1728x1117"), 12),
    (("Mac OS / 10.15.7", "PC", "Safari / 17.5", "1440x900"), 6),
    (("Android / 14", "Mobile", "Samsung Internet / 25.0", "412x915"), 14),
    (("Android / 13", "Mobile", "Chrome / 126.0.0.0", "393x873"), 9),
    (("iOS / 17.5", "Mobile", "Safari / 17.5", "390x844"), 16),
)
_NETWORKS = (
    (("KT", "KR", "ko-KR", "Seoul, KR"), 22),
    (("SK Broadband", "KR", "ko-KR", "Busan, KR"), 18),
    (("LG U+", "KR", "ko-KR", "Incheon, KR"), 14),
    (("Comcast", "US", "en-US", "Chicago, US"), 8),
    (("NTT", "JP", "ja-JP", "Tokyo, JP"), 6),
)
_ORIGINS = (
    "https://mediaplus-demo.web.app",
    "https://www.example-tv.com",
    "https://m.example-tv.com",
    "https://learn.example.edu",
)
#: Player sessions start more often in the evening (relative weight per UTC hour).
_HOURLY = (3, 2, 1, 1, 1, 1, 2, 3, 4, 4, 4, 5, 6, 5, 5, 5, 6, 7, 9, 11, 12, 12, 9, 6)
_HOURLY_CUM = tuple(itertools.accumulate(_HOURLY))
_SITES = (
    ("www.thousandeyes.com", "https", ("ThousandEyes", "Product", "Pricing")),
    ("mail.example.com", "https", ("Inbox", "Compose", "Calendar")),
    ("example.my.salesforce.com", "https", ("Home", "Accounts", "Reports")),
    ("github.com", "https", ("GitHub", "Pull requests", "Issues")),
    ("jira.example.com", "https", ("Board", "Backlog", "Issue")),
    ("intranet.example.com", "http", ("Intranet", "Directory", "News")),
)
_APPS = (
    ("code.exe", "main.py - project"),
    ("chrome.exe", "Inbox - Mail"),
    ("outlook.exe", "Calendar"),
    ("excel.exe", "budget.xlsx"),
    ("slack.exe", "#general"),
    ("teams.exe", "Meeting"),
)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class _Maker:
    """Makes the events of one store (or of the posted load): sessions of every kind whose
    starts are spread over ``[lo, hi)``, their events in time order."""

    def __init__(self, seed: int, events: int, lo: int, hi: int, prefix: str) -> None:
        from sessionscope.domain.events import Event

        self.Event = Event
        self.rng = random.Random(seed)
        self.lo, self.hi = lo, hi
        self.prefix = prefix
        self.ids = itertools.count(1)
        days = max(1.0, (hi - lo) / _DAY)
        rng = self.rng
        # Shares of the events: player 90%, desktop 6%, endpoint 4%.
        player_sessions = max(1, round(events * 0.90 / 28.6))
        desktop_users = max(1, round(events * 0.06 / (days * 5 / 7 * 150)))
        endpoint_sessions = max(1, round(events * 0.04 / 3.4))
        viewers = max(1, player_sessions * 3 // 5)
        plat = rng.choices([p for p, _ in _PLATFORMS], [w for _, w in _PLATFORMS], k=viewers)
        nets = rng.choices([n for n, _ in _NETWORKS], [w for _, w in _NETWORKS], k=viewers)
        self.viewers = [
            (_uuid(rng), *plat[i], *nets[i], rng.choice(_ORIGINS), self._ip(), rng.random())
            for i in range(viewers)
        ]
        self.agents = [
            (_uuid(rng), self._ip(), rng.choice(("Korea Telecom", "Comcast", "")))
            for _ in range(max(2, endpoint_sessions // 400))
        ]
        specs: list[tuple[int, int, int]] = []  # (start ms, kind 0/1/2, number)
        span = hi - lo
        midnight = lo - lo % _DAY
        for n in range(player_sessions):
            t0 = -1
            while not lo <= t0 < hi:
                if span < 2 * _DAY:  # the posted load's hour: evenly
                    t0 = lo + rng.randrange(span)
                    break
                day = rng.randrange(int(days) + 1)
                hour = bisect.bisect_right(_HOURLY_CUM, rng.random() * _HOURLY_CUM[-1])
                t0 = midnight + day * _DAY + hour * _HOUR + rng.randrange(_HOUR)
            specs.append((t0, 0, n))
        for n in range(endpoint_sessions):
            specs.append((lo + rng.randrange(span), 2, n))
        self.desktop_users = [
            (
                1000 + u,
                f"user.{u:05d}",
                _uuid(rng),
                f"WS-{rng.choice(('ENG', 'OPS', 'FIN', 'HR'))}-{u % 250:03d}",
            )
            for u in range(desktop_users)
        ]
        #: (user index, session number) of each desktop session.
        self.desktop_sessions: list[tuple[int, int]] = []
        numbers = rng.sample(range(1, 2_000_000_000), desktop_users * (int(days) + 2))
        for u in range(desktop_users):
            for day in range(int(days) + 2):
                t0 = midnight + day * _DAY + int((7.5 + rng.random() * 2) * _HOUR)
                weekday = (t0 // _DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
                if weekday >= 5 or not lo <= t0 < hi or rng.random() < 0.07:
                    continue
                specs.append((t0, 1, len(self.desktop_sessions)))
                self.desktop_sessions.append((u, numbers[len(self.desktop_sessions)]))
        specs.sort()
        self.specs = specs

    def _ip(self) -> str:
        r = self.rng
        return f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def _id(self, kind: str) -> str:
        return f"{self.prefix}{kind}{next(self.ids)}"

    def blocks(self, size: int) -> Iterator[list[Any]]:
        """Every event in time order, in blocks of ``size`` (the last one smaller)."""
        pending: list[tuple[int, int, Any]] = []
        out: list[Any] = []
        seq = itertools.count()
        specs = self.specs
        at = 0
        window = self.lo + _HOUR
        while at < len(specs) or pending:
            # Every session starting before the window's end; then its events before it are
            # final (later sessions start after it).
            while at < len(specs) and specs[at][0] < window:
                t0, kind, number = specs[at]
                at += 1
                for ms, event in self._session(kind, t0, number):
                    pending.append((ms, next(seq), event))
            if at >= len(specs):
                window = max(window, self.hi + _DAY)
            pending.sort(key=lambda p: (p[0], p[1]))
            cut = bisect.bisect_left(pending, window, key=lambda p: p[0])
            for _, _, event in pending[:cut]:
                out.append(event)
                if len(out) == size:
                    yield out
                    out = []
            del pending[:cut]
            window += _HOUR
        if out:
            yield out

    def _session(self, kind: int, t0: int, number: int) -> list[tuple[int, Any]]:
        if kind == 0:
            return self._player(t0)
        if kind == 1:
            return self._desktop(t0, number)
        return self._endpoint(t0, number)

    def _player(self, t0: int) -> list[tuple[int, Any]]:
        rng, event, hi = self.rng, self.Event, self.hi
        user, os_, device, browser, screen, isp, nation, lang, address, origin, ip, skew = (
            self.viewers[int(len(self.viewers) * rng.random() ** 1.6)]
        )
        sid = _uuid(rng)
        live = skew < 0.35
        media = rng.randint(1000, 99999)
        path = f"live/ch{media % 16:03d}" if live else f"vod/{media}"
        base = {
            "origin": origin,
            "os": os_,
            "device": device,
            "video_type": "LIVE" if live else "VOD",
        }
        out: list[tuple[int, Any]] = []

        def add(t: int, etype: str, duration: int | None, vt: float, extra: Any = None) -> None:
            attrs = {**base, "video_time": round(vt, 3)}
            if extra:
                attrs.update(extra)
            out.append(
                (
                    t,
                    event(
                        id=self._id("p"),
                        kind="player",
                        time=_dt(t),
                        type=etype,
                        session=sid,
                        user=user,
                        duration_ms=duration,
                        attrs=attrs,
                    ),
                )
            )

        ps = rng.randint(20, 3000)
        t = t0 + ps
        add(
            t,
            "player_start",
            ps,
            0.0,
            {
                "browser": browser,
                "ip": ip,
                "screen": screen,
                "lang": lang,
                "page": f"{origin}/{path}",
                "isp": isp,
                "nation": nation,
                "media": f"https://cdn.example-tv.com/{path}/index.m3u8",
                "address": address,
                "player_name": "ncplayer",
                "player_version": "1.6.2",
            },
        )
        startup = int(rng.lognormvariate(6.7, 0.6))
        t += startup
        add(t, "startup", startup, 0.0)
        playing = rng.randint(16, 34)
        stalls = {rng.randrange(playing) for _ in range(rng.choice((0, 0, 0, 1, 2)))}
        pauses = {rng.randrange(playing) for _ in range(rng.choice((0, 0, 0, 0, 1)))}
        vt = 0.0
        for i in range(playing):
            step = 60_000 + rng.randint(-40, 90)
            t += step
            vt += step / 1000
            add(t, "playing", step, vt)
            if i in stalls:
                stall = rng.randint(150, 8000)
                t += stall
                add(t, "rebuffering", stall, vt)
            if i in pauses:
                pause = rng.randint(2 * _SECOND, 10 * _MINUTE)
                t += pause
                add(t, "paused", pause, vt)
        if rng.random() < 0.9:
            t += rng.randint(20, 400)
            add(t, "ended", None, vt)
        return [p for p in out if p[0] < hi]

    def _desktop(self, t0: int, number: int) -> list[tuple[int, Any]]:
        rng, event, hi = self.rng, self.Event, self.hi
        u, session_number = self.desktop_sessions[number]
        user_id, name, guid, client = self.desktop_users[u]
        session = str(session_number)
        base = {"user_name": name, "client_guid": guid, "client_name": client}
        out: list[tuple[int, Any]] = []

        def add(t: int, etype: str, extra: dict[str, str] | None = None) -> None:
            out.append(
                (
                    t,
                    event(
                        id=self._id("d"),
                        kind="desktop",
                        time=_dt(t),
                        type=etype,
                        session=session,
                        user=str(user_id),
                        attrs={**base, **extra} if extra else dict(base),
                    ),
                )
            )

        add(t0, "login")
        end = t0 + int((7.5 + rng.random() * 1.5) * _HOUR)
        lunch = t0 + 4 * _HOUR
        t = t0 + rng.randint(30 * _SECOND, 5 * _MINUTE)
        app, title = rng.choice(_APPS)
        while t < end:
            if lunch <= t < lunch + 45 * _MINUTE:
                t = lunch + 45 * _MINUTE + rng.randint(0, 2 * _MINUTE)
                continue
            if rng.random() < 0.3:
                app, title = rng.choice(_APPS)
            add(t, "activity", {"app": app, "title": title} if rng.random() < 0.65 else None)
            t += rng.randint(_MINUTE, 5 * _MINUTE)
        if rng.random() < 0.98:
            add(end, "logout")
        return [p for p in out if p[0] < hi]

    def _endpoint(self, t0: int, number: int) -> list[tuple[int, Any]]:
        rng, event, hi = self.rng, self.Event, self.hi
        agent, addr, org = self.agents[number % len(self.agents)]
        site, protocol, titles = rng.choice(_SITES)
        session = f"{self.prefix}es-{number}"
        out: list[tuple[int, Any]] = []
        t = t0
        for _ in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 7))):
            on_load = int(rng.lognormvariate(7.3, 0.75)) + 120
            attrs = {
                "visited_site": site,
                "protocol": protocol,
                "port": 443 if protocol == "https" else 80,
                "source_addr": addr,
                "org_name": org,
                "page_id": "".join(rng.choices(_ALNUM, k=8)),
                "title": rng.choice(titles),
                "on_content_load_ms": int(on_load * rng.uniform(0.45, 0.95)),
                "on_load_ms": on_load,
                "response_code": 200 if rng.random() < 0.92 else rng.choice((302, 404, 503)),
            }
            out.append(
                (
                    t,
                    event(
                        id=self._id("e"),
                        kind="endpoint",
                        time=_dt(t),
                        type="page",
                        session=session,
                        user=agent,
                        duration_ms=on_load,
                        attrs=attrs,
                    ),
                )
            )
            t += on_load + int(rng.lognormvariate(10.6, 1.0))
        return [p for p in out if p[0] < hi]


# ------------------------------------------------------------------------------ the stores


@dataclass(frozen=True, slots=True)
class MemStore:
    path: Path
    #: The size asked for (the store holds about as many events: ``events``).
    size: int
    data: dict[str, Any]

    @property
    def events(self) -> int:
        return int(self.data["events"])


def _store_path(events: int) -> Path:
    return DATA_DIR / f"{_PREFIX}{MEM_STORE_VERSION}-{events}"


def build_store(path: str, target: int, days: int, block_events: int) -> dict[str, Any]:
    """Create the project and its key, then write ``target`` events (in a child process)."""
    with contextlib.redirect_stdout(sys.stderr if os.environ.get(_STDERR_ENV) else sys.stdout):
        return _build_store(path, target, days, block_events)


def _build_store(path: str, target: int, days: int, block_events: int) -> dict[str, Any]:
    from sessionscope.config import load_settings
    from sessionscope.store.clickhouse import open_store

    store = open_store(load_settings(data_dir=path))
    try:
        project = store.create_project("bench")
        key = store.create_api_key(project.id)
        end_dt = datetime.now(UTC).replace(second=0, microsecond=0)
        hi = (end_dt - _EPOCH) // timedelta(milliseconds=1)
        lo = hi - days * _DAY
        started = time.monotonic()
        maker = _Maker(seed=target % 1_000_003, events=target, lo=lo, hi=hi, prefix="m-")
        made_s = time.monotonic() - started
        log(f"  {len(maker.specs):,} sessions planned in {made_s:.1f} s")
        stored = 0
        write_s = 0.0
        last_log = time.monotonic()
        kinds: dict[str, int] = {}
        for n, block in enumerate(maker.blocks(block_events)):
            for e in block:
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
            at = time.monotonic()
            store.write_events([(project.id, block)], token=f"bench-mem-{target}-{n}")
            write_s += time.monotonic() - at
            stored += len(block)
            if time.monotonic() - last_log > 15:
                last_log = time.monotonic()
                rate = stored / (last_log - started)
                log(f"  {stored:,} events stored ({rate:,.0f}/s; {write_s:.0f} s in inserts)")
        merge_at = time.monotonic()
        _wait_for_merges(store)
        merge_s = time.monotonic() - merge_at
        sessions = {kind: store.count_sessions(kind, project.id) for kind in ("player", "desktop")}
        sessions["endpoint"] = store.count_sessions("endpoint", project.id)
        parts = store.query(
            "SELECT table, count() FROM system.parts WHERE active GROUP BY table ORDER BY table"
        )
        return {
            "events": stored,
            "events_by_kind": kinds,
            "sessions": sessions,
            "project_id": project.id,
            "api_key": key,
            "start": _dt(lo).isoformat(),
            "end": end_dt.isoformat(),
            "generate_and_write_s": round(merge_at - started, 1),
            "insert_s": round(write_s, 1),
            "merge_wait_s": round(merge_s, 1),
            "active_parts": {str(t): int(c) for t, c in parts},
        }
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


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _migrate(path: Path) -> None:
    from workload import sessionscope_exe

    proc = subprocess.run(
        [sessionscope_exe(), "migrate", "--data-dir", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"sessionscope migrate failed: {proc.stderr.strip()[-2000:]}")
    if "applied" in proc.stdout:
        log("  " + " ".join(proc.stdout.split()))


def ensure_store(events: int, cfg: MemoryConfig) -> MemStore:
    """Return the store of ``events`` events, building it first when absent or stale."""
    path = _store_path(events)
    marker = path / _MARKER
    if marker.exists():
        store = MemStore(path, events, json.loads(marker.read_text()))
        log(f"reusing store {path.name}: built {store.data['built_at']}")
        _migrate(path)  # once here, not in every copy
        return store
    for old in DATA_DIR.glob(f"{_PREFIX}*"):
        current = old.name.startswith(f"{_PREFIX}{MEM_STORE_VERSION}-")
        if not current or old == path or not (old / _MARKER).exists():
            log(f"removing stale or incomplete store {old.name}")
            shutil.rmtree(old, ignore_errors=True)
    path.mkdir(parents=True)
    log(f"building store {path.name} (once; reused by later runs)")
    started = time.monotonic()
    built = in_child(build_store, str(path), events, cfg.days, cfg.block_events)
    built["build_seconds"] = round(time.monotonic() - started, 1)
    built["built_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    built["disk_bytes"] = _disk_bytes(path)
    built["version"] = MEM_STORE_VERSION
    built["block_events"] = cfg.block_events
    marker.write_text(json.dumps(built, indent=2))
    log(
        f"store built in {built['build_seconds']:.0f} s: {built['events']:,} events, "
        f"{built['disk_bytes'] / 1e6:,.0f} MB on disk"
    )
    return MemStore(path, events, built)


def _work_copy(store: MemStore) -> Path:
    dst = DATA_DIR / "work-memory"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(store.path, dst, symlinks=True)  # the engine links metadata relatively
    return dst


# ------------------------------------------------------------------------------ the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                out[name] = int(value.split()[0])
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class RssSampler:
    """Sample the server's ``/proc/PID/status`` every ``every_s`` seconds, with a step name."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.step = "start"
        #: (seconds since start, step, VmRSS MB, VmHWM MB, RssAnon MB, RssFile MB, threads, cpu s)
        self.samples: list[tuple[float, str, float, float, float, float, int, float]] = []
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        kb = _status_kb(self.pid)
        if "VmRSS" not in kb:
            return
        self.samples.append(
            (
                round(time.monotonic() - self._start, 2),
                self.step,
                round(kb["VmRSS"] / 1024, 1),
                round(kb.get("VmHWM", 0) / 1024, 1),
                round(kb.get("RssAnon", 0) / 1024, 1),
                round(kb.get("RssFile", 0) / 1024, 1),
                kb.get("Threads", 0),
                round(_cpu_s(self.pid), 2),
            )
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every_s)

    def step_summary(self, step: str, last: int = 6) -> dict[str, float]:
        """The step's RSS (median of its last samples, MB), anon/file parts, and its top."""
        rows = [s for s in self.samples if s[1] == step]
        if not rows:
            return {}
        tail = rows[-last:]
        return {
            "rss_mb": round(statistics.median(s[2] for s in tail), 1),
            "anon_mb": round(statistics.median(s[4] for s in tail), 1),
            "file_mb": round(statistics.median(s[5] for s in tail), 1),
            "max_rss_mb": max(s[2] for s in rows),
            "first_rss_mb": rows[0][2],
            "seconds": round(rows[-1][0] - rows[0][0], 1),
            "threads": tail[-1][6],
        }

    def idle(self, seconds: float = 3.0, limit_s: float = 180.0, share: float = 0.05) -> float:
        """Wait until the server used under ``share`` of a core for ``seconds``; return the
        seconds waited (``limit_s`` at most)."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            before = _cpu_s(self.pid)
            time.sleep(seconds)
            if _cpu_s(self.pid) - before < share * seconds:
                break
        return round(time.monotonic() - start, 1)


@contextlib.contextmanager
def serving(data_dir: Path, log_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``sessionscope serve`` on ``data_dir``; yield (port, process) once ``/healthz``
    answers; stop it with SIGINT."""
    from workload import sessionscope_exe

    port = _free_port()
    args = [sessionscope_exe(), "serve", "--data-dir", str(data_dir), "--port", str(port)]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            deadline = time.monotonic() + 300
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the server exited; see {log_path}")
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if _request(port, "GET", "/healthz", timeout=2)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start; see {log_path}")
                time.sleep(0.2)
            yield port, proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class _Client:
    """One keep-alive connection."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port = port
        self.headers = headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
            return r.status, r.read()

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        status, body = self.call("GET", path + ("?" + urlencode(params) if params else ""))
        if status != 200:
            raise RuntimeError(f"GET {path} {params} answered {status}: {body[:300]!r}")
        return orjson.loads(body)

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------ the work


def _posted_bodies(cfg: MemoryConfig, size: int) -> tuple[list[bytes], list[bytes]]:
    """The posted events (new ids, the last hour before now): single-event bodies and
    batch bodies, every kind mixed."""
    now = (datetime.now(UTC) - _EPOCH) // timedelta(milliseconds=1)
    total = cfg.single_events + cfg.batch_events
    # More than needed (sessions cut at the window's end), then spread evenly over them.
    maker = _Maker(seed=size + 17, events=total * 2, lo=now - _HOUR, hi=now, prefix=f"live{size}-")
    events = [e.as_dict() for block in maker.blocks(100_000) for e in block]
    if len(events) < total:
        raise RuntimeError(f"{len(events)} posted events made, {total} wanted")
    step = len(events) / total
    chosen = [events[int(i * step)] for i in range(total)]
    singles = [orjson.dumps(e) for e in chosen[: cfg.single_events]]
    rest = chosen[cfg.single_events :]
    batches = [
        orjson.dumps(rest[i : i + cfg.batch_size]) for i in range(0, len(rest), cfg.batch_size)
    ]
    return singles, batches


def _ingest(port: int, key: str, cfg: MemoryConfig, bodies: list[bytes]) -> dict[str, Any]:
    """POST every body from ``cfg.clients`` threads (single events and batches interleaved)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    lock = threading.Lock()
    todo = iter(bodies)
    totals = {"accepted": 0, "duplicates": 0, "requests": 0}
    errors: list[str] = []

    def client() -> None:
        c = _Client(port, headers)
        try:
            while True:
                with lock:
                    body = next(todo, None)
                if body is None:
                    return
                status, answer = c.call("POST", "/api/v1/events", body)
                if status != 200:
                    raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")
                data = orjson.loads(answer)
                with lock:
                    totals["accepted"] += data["accepted"]
                    totals["duplicates"] += data["duplicates"]
                    totals["requests"] += 1
        except Exception as exc:  # reported below
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            c.close()

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(cfg.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return {**totals, "seconds": round(time.monotonic() - start, 1)}


def _drain(port: int, limit_s: float = 300) -> float:
    """Wait until ``/healthz`` shows nothing pending in the journal; seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        status, body = _request(port, "GET", "/healthz", timeout=30)
        journal = orjson.loads(body).get("journal") if status == 200 else None
        if isinstance(journal, dict) and journal.get("pending_events") == 0:
            return round(time.monotonic() - start, 1)
        time.sleep(0.5)
    raise RuntimeError(f"the journal did not drain in {limit_s:g} s")


def _reads(port: int, key: str, cookie: dict[str, str], cfg: MemoryConfig) -> dict[str, Any]:
    """Every read of a round, ``cfg.read_rounds`` times; request counts and time."""
    api = _Client(port, {"Authorization": f"Bearer {key}"})
    page = _Client(port, cookie)
    now = datetime.now(UTC)

    def stamp(t: datetime) -> str:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    requests = 0
    start = time.monotonic()
    try:
        for _ in range(cfg.read_rounds):
            params = {"kind": "player", "limit": "50"}
            first = api.get_json("/api/v1/sessions", params)
            requests += 1
            sid = first["sessions"][0]["session"] if first["sessions"] else None
            nxt = first.get("next")
            for _ in range(cfg.pages - 1):
                if not nxt:
                    break
                nxt = api.get_json("/api/v1/sessions", {**params, "cursor": nxt}).get("next")
                requests += 1
            for kind in ("desktop", "endpoint"):
                api.get_json("/api/v1/sessions", {"kind": kind, "limit": "50"})
                requests += 1
            if sid is not None:
                api.get_json(f"/api/v1/sessions/player/{sid}")
                requests += 1
            for days in (7, 30):
                api.get_json(
                    "/api/v1/timeseries",
                    {
                        "kind": "player",
                        "metric": "sessions",
                        "from": stamp(now - timedelta(days=days)),
                        "to": stamp(now),
                    },
                )
                requests += 1
            for path in ("/", "/sessions"):
                if not cookie:
                    continue
                status, body = page.call("GET", path)
                if status != 200:
                    raise RuntimeError(f"dashboard {path} answered {status}: {body[:200]!r}")
                requests += 1
    finally:
        api.close()
        page.close()
    return {"requests": requests, "seconds": round(time.monotonic() - start, 1)}


def _cookie(data_dir: Path, project_id: int, key: str) -> dict[str, str]:
    from reads import Read, auth_headers

    return auth_headers(Read("overview", "", "/", auth="cookie"), data_dir, project_id, key)


def measure_size(store: MemStore, cfg: MemoryConfig) -> dict[str, Any]:
    """One store: the server on a fresh copy, ingest, reads, idle; RSS throughout."""
    size = store.size
    data = store.data
    key, project_id = data["api_key"], int(data["project_id"])
    singles, batches = _posted_bodies(cfg, size)
    bodies = [b for pair in itertools.zip_longest(singles, batches) for b in pair if b]
    copy = _work_copy(store)
    cookie = _cookie(copy, project_id, key)
    out: dict[str, Any] = {"size": size, "events": store.events}
    try:
        with (
            serving(copy, DATA_DIR / f"memory-server-{size}.log") as (port, proc),
            RssSampler(proc.pid) as rss,
        ):
            out["start_idle_s"] = rss.idle()
            time.sleep(2)
            rss.step = "ingest"
            ingest = _ingest(port, key, cfg, bodies)
            if ingest["accepted"] != cfg.single_events + cfg.batch_events:
                raise RuntimeError(f"posted events: {ingest}")
            ingest["drain_s"] = _drain(port)
            # The stored ids and session starts load in the background: wait until idle.
            ingest["idle_after_s"] = rss.idle()
            time.sleep(2)
            out["ingest"] = ingest
            rss.step = "read"
            out["reads"] = _reads(port, key, cookie, cfg)
            time.sleep(2)
            rss.step = "idle"
            time.sleep(cfg.idle_s)
            rss.sample()
            out["healthz"] = orjson.loads(_request(port, "GET", "/healthz")[1])
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    steps = {s: rss.step_summary(s) for s in ("start", "ingest", "read", "idle")}
    out["steps"] = steps
    out["steady_mb"] = steps["idle"]["rss_mb"]
    out["peak_mb"] = max(s[3] for s in rss.samples)
    out["samples"] = rss.samples
    out["server_cpu_s"] = rss.samples[-1][7] if rss.samples else None
    log(
        f"  {store.events:,} events: RSS after start {steps['start']['rss_mb']:.0f} MB, "
        f"after ingest {steps['ingest']['rss_mb']:.0f}, "
        f"after reads {steps['read']['rss_mb']:.0f}, steady {out['steady_mb']:.0f}, "
        f"peak {out['peak_mb']:.0f} MB"
    )
    return out


def measure_memory(cfg: MemoryConfig) -> dict[str, Any]:
    """Build (or reuse) every store, then measure each; return the figures (plain JSON)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    probe = cpu_probe_ms()
    stores = [ensure_store(n, cfg) for n in cfg.sizes]
    runs = []
    for store in stores:
        log(f"server memory: {store.events:,}-event store")
        runs.append(measure_size(store, cfg))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 1),
        "cpu_probe_ms": [probe, cpu_probe_ms()],
        "config": {
            "sizes": list(cfg.sizes),
            "days": cfg.days,
            "block_events": cfg.block_events,
            "single_events": cfg.single_events,
            "batch_events": cfg.batch_events,
            "batch_size": cfg.batch_size,
            "clients": cfg.clients,
            "read_rounds": cfg.read_rounds,
            "pages": cfg.pages,
            "idle_s": cfg.idle_s,
        },
        "stores": [
            {"size": s.size, **{k: v for k, v in s.data.items() if k != "api_key"}} for s in stores
        ],
        "runs": runs,
    }


# ------------------------------------------------------------------------------ entry


def save(result: dict[str, Any]) -> None:
    """Keep the figures in ``memory.json`` and in ``last-run.json`` (for ``--rerender``)."""
    (DATA_DIR / "memory.json").write_text(json.dumps(result, indent=2))
    last = DATA_DIR / "last-run.json"
    if last.exists():
        data = json.loads(last.read_text())
        data["memory"] = result
        last.write_text(json.dumps(data, indent=2))


def main(argv: list[str] | None = None) -> int:
    default = MemoryConfig.from_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, help="refresh this report's section")
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in default.sizes),
        help="store sizes in events, comma-separated",
    )
    parser.add_argument(
        "--rerender", action="store_true", help="refresh --report from memory.json only"
    )
    args = parser.parse_args(argv)
    from report import refresh_memory_section

    if args.rerender:
        if args.report is None:
            parser.error("--rerender needs --report")
        refresh_memory_section(args.report, json.loads((DATA_DIR / "memory.json").read_text()))
        return 0
    cfg = MemoryConfig(sizes=parse_sizes(args.sizes))
    os.environ[_STDERR_ENV] = "1"  # the build's child process inherits it
    with contextlib.redirect_stdout(sys.stderr):  # progress to stderr, figures to stdout
        result = measure_memory(cfg)
        save(result)
        if args.report is not None:
            refresh_memory_section(args.report, result)
            log(f"section refreshed in {args.report}")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
