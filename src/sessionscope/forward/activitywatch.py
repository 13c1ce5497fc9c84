"""Forward an ActivityWatch server's desktop activity to sessionscope as ``desktop`` events.

``sessionscope forward activitywatch --aw-url http://localhost:5600 --url SERVER --api-key KEY``
reads aw-server's REST API (``/api/0/info``, ``/api/0/buckets/``, the events of the host's
``afkstatus`` bucket, from aw-watcher-afk, and of its ``currentwindow`` bucket, from
aw-watcher-window) and posts ``login``, ``activity`` and ``logout`` events.

How the events are made (docs: the README's "Sending events from real sources"):

- **Active periods** are the host's ``not-afk`` events, merged where they touch. Away periods
  (``afk`` events, or no data at all: the machine asleep or off) are the gaps between them.
- **Activity points**: the start of each active period, a point every ``heartbeat`` seconds
  inside it (on a fixed grid of epoch multiples), each window change inside it (with its app
  and title), and its end once it has ended. Every point carries the app and title of the window
  in front at that moment. So inside an active period consecutive points are at most
  ``heartbeat`` apart, and an away period is one gap between two points: the server counts it as
  idle when it is longer than the project's idle timeout (15 minutes by default), exactly as
  Ekran counts a period without input.
- **Sessions**: a session starts (``login``) at the first activity point; it ends (``logout``, at
  its last activity point) when an away period of at least ``new_session_after`` (60 minutes)
  follows, or at the day boundary (``day_start``, 04:00 local time by default): an active period
  across it is cut there, a logout and a login at the same instant.
- **Identity**: ``client_name`` is the host name aw-server reports, ``client_guid`` its
  ``device_id`` (a uuid aw-server keeps in its data directory; a uuid derived from the host
  name when it has none), ``user_name`` the local login name, ``user_id`` a number derived from
  the user name (the same name gives the same id on every machine). Each can be given instead.
  The session number is derived from the client guid and the login time.

Nothing is sent twice: every event's id is derived from its content (client, session, type,
time), and a state file remembers how far the forwarder got (``cursor``) and the open session.
The state is written only after the server acknowledged every event of a pass, so a pass that
failed halfway is sent again whole, with the same ids, and the server stores each event once.
Data that reaches aw-server after the cursor passed its time (a watcher's offline queue
flushed late) is not forwarded.
"""

from __future__ import annotations

import bisect
import getpass
import hashlib
import json
import os
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import httpx

from sessionscope.client import Client, ClientError

__all__ = [
    "Config",
    "ForwardError",
    "Identity",
    "Pass",
    "Period",
    "State",
    "active_periods",
    "forward_once",
    "plan",
    "run",
]

_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Events read before the cursor: a period running across it is seen as running, not starting.
_LOOKBACK_MS = 60_000
#: Not-afk events closer than this are one active period.
_MERGE_MS = 1000
_BATCH = 1000


class ForwardError(Exception):
    """Something the user must fix (no bucket, server refusing the key...)."""


@dataclass(frozen=True)
class Config:
    aw_url: str
    url: str
    api_key: str
    state_path: Path
    hostname: str | None = None
    user_id: int | None = None
    user_name: str | None = None
    client_guid: str | None = None
    client_name: str | None = None
    heartbeat_s: int = 60
    new_session_after_s: int = 3600
    #: Minutes after local midnight where a day ends (None: sessions are not cut by day).
    day_start_min: int | None = 4 * 60
    #: Where the first pass starts when there is no state (epoch ms; None: 7 days back).
    since_ms: int | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Identity:
    user_id: int
    user_name: str
    client_guid: str
    client_name: str


@dataclass
class State:
    """What the forwarder has done: points before ``cursor_ms`` are handled; the open session."""

    cursor_ms: int
    session: int | None = None
    login_ms: int | None = None
    last_ms: int | None = None

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ForwardError(f"state file {path} is not readable: {exc}") from None
        return cls(
            cursor_ms=int(raw["cursor_ms"]),
            session=raw.get("session"),
            login_ms=raw.get("login_ms"),
            last_ms=raw.get("last_ms"),
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "version": 1,
                    "cursor_ms": self.cursor_ms,
                    "session": self.session,
                    "login_ms": self.login_ms,
                    "last_ms": self.last_ms,
                }
            )
        )
        os.replace(tmp, path)


@dataclass(frozen=True)
class Period:
    """An active period ``[start, end]`` (epoch ms); ``open`` while it may still grow;
    ``cut`` when it begins at a day boundary that cut a longer one."""

    start: int
    end: int
    open: bool = False
    cut: bool = False


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    app: str
    title: str


@dataclass
class Pass:
    """The outcome of one pass: the events to send and the state once they are acknowledged."""

    events: list[dict[str, Any]] = field(default_factory=list)
    state: State | None = None
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "events": len(self.events),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
        }


# ------------------------------------------------------------------------------ pure part


def _ms(text: str) -> int:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _MS


def _span(event: dict[str, Any]) -> tuple[int, int]:
    start = _ms(str(event["timestamp"]))
    return start, start + round(float(event.get("duration") or 0) * 1000)


def active_periods(
    afk_events: Sequence[dict[str, Any]], now_ms: int, stale_ms: int
) -> list[Period]:
    """Merge the ``not-afk`` events into periods; the last one is open when it reaches the end of
    the bucket's data and that end is recent (within ``stale_ms`` of now)."""
    spans = sorted(_span(e) for e in afk_events if (e.get("data") or {}).get("status") == "not-afk")
    horizon = max((_span(e)[1] for e in afk_events), default=0)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + _MERGE_MS:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    periods = [Period(s, e) for s, e in merged]
    if periods and periods[-1].end >= horizon and now_ms - horizon < stale_ms:
        last = periods[-1]
        periods[-1] = Period(last.start, last.end, open=True)
    return periods


def _day_boundaries(start_ms: int, end_ms: int, day_start_min: int) -> Iterator[int]:
    """The day boundaries (``day_start_min`` after local midnight) strictly inside
    ``(start, end)``; wall-clock times, so they follow daylight saving changes."""
    day = datetime.fromtimestamp(start_ms / 1000).date() - timedelta(days=1)
    while True:
        local = datetime.combine(day, dtime()) + timedelta(minutes=day_start_min)
        at = (local.astimezone() - _EPOCH) // _MS  # a naive time is read as local time
        if at >= end_ms:
            return
        if at > start_ms:
            yield at
        day += timedelta(days=1)


def split_by_day(periods: Sequence[Period], day_start_min: int | None) -> list[Period]:
    if day_start_min is None:
        return list(periods)
    out: list[Period] = []
    for p in periods:
        start, cut = p.start, p.cut
        for boundary in _day_boundaries(p.start, p.end, day_start_min):
            out.append(Period(start, boundary, cut=cut))
            start, cut = boundary, True
        out.append(Period(start, p.end, open=p.open, cut=cut))
    return out


class _Windows:
    """The window events, ordered by start: the one in front at an instant, the changes in a
    span (binary searches: a week of data is tens of thousands of events)."""

    def __init__(self, events: Sequence[dict[str, Any]]) -> None:
        found = []
        for e in events:
            data = e.get("data") or {}
            start, end = _span(e)
            found.append(
                Window(start, end, str(data.get("app") or ""), str(data.get("title") or ""))
            )
        self.items = sorted(found, key=lambda w: w.start)
        self.starts = [w.start for w in self.items]

    def at(self, t: int) -> Window | None:
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0 or self.items[i].end + _MERGE_MS < t:
            return None
        return self.items[i]

    def changes(self, start: int, end: int) -> list[int]:
        """Start times strictly inside ``(start, end)``."""
        lo, hi = bisect.bisect_right(self.starts, start), bisect.bisect_left(self.starts, end)
        return self.starts[lo:hi]


def _points(p: Period, windows: _Windows, heartbeat_ms: int) -> list[tuple[int, bool]]:
    """The activity points of a period: ``(time, is the period's start)``."""
    times = {p.start}
    grid = (p.start // heartbeat_ms + 1) * heartbeat_ms
    times.update(range(grid, p.end, heartbeat_ms))
    times.update(windows.changes(p.start, p.end))
    if not p.open:
        times.add(p.end)
    return sorted((t, t == p.start) for t in times)


def session_number(client_guid: str, login_ms: int) -> int:
    digest = hashlib.sha256(f"{client_guid}|{login_ms}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2_147_483_647 + 1


def _event(
    who: Identity, session: int, etype: str, at_ms: int, window: Window | None
) -> dict[str, Any]:
    key = f"{who.client_guid}|{session}|{etype}|{at_ms}"
    event: dict[str, Any] = {
        "id": "aw-" + hashlib.sha256(key.encode()).hexdigest()[:32],
        "kind": "desktop",
        "time": at_ms,
        "type": etype,
        "session": session,
        "user_id": who.user_id,
        "user_name": who.user_name,
        "client_guid": who.client_guid,
        "client_name": who.client_name,
    }
    if etype == "activity" and window is not None:
        if window.app:
            event["app"] = window.app[:2048]
        if window.title:
            event["title"] = window.title[:2048]
    return event


def plan(
    state: State,
    who: Identity,
    afk_events: Sequence[dict[str, Any]],
    window_events: Sequence[dict[str, Any]],
    *,
    now_ms: int,
    heartbeat_s: int = 60,
    new_session_after_s: int = 3600,
    day_start_min: int | None = 4 * 60,
) -> Pass:
    """Work out the events of one pass from the buckets' events (read from ``state.cursor_ms``
    minus a minute on) and the state; return them with the state to keep once they are sent."""
    gap_ms = new_session_after_s * 1000
    periods = split_by_day(active_periods(afk_events, now_ms, gap_ms), day_start_min)
    windows = _Windows(window_events)
    st = State(state.cursor_ms, state.session, state.login_ms, state.last_ms)
    out: list[dict[str, Any]] = []

    def close() -> None:
        assert st.session is not None and st.last_ms is not None
        out.append(_event(who, st.session, "logout", st.last_ms, None))
        st.session = st.login_ms = st.last_ms = None

    for p in periods:
        for t, starts in _points(p, windows, heartbeat_s * 1000):
            if t < state.cursor_ms:
                continue
            if (
                st.session is not None
                and st.last_ms is not None
                and starts
                and (p.cut or t - st.last_ms >= gap_ms)
            ):
                close()
            if st.session is None:
                st.session, st.login_ms = session_number(who.client_guid, t), t
                out.append(_event(who, st.session, "login", t, None))
            else:
                out.append(_event(who, st.session, "activity", t, windows.at(t)))
            st.last_ms = t
    running = bool(periods) and periods[-1].open
    if st.last_ms is not None and not running and now_ms - st.last_ms >= gap_ms:
        close()
    last = max((e["time"] for e in out), default=state.cursor_ms - 1)
    st.cursor_ms = max(state.cursor_ms, last + 1)
    if not running and afk_events:
        st.cursor_ms = max(st.cursor_ms, max(_span(e)[1] for e in afk_events) + 1)
        st.cursor_ms = min(st.cursor_ms, now_ms)
    return Pass(out, st)


# ------------------------------------------------------------------------------ I/O


def _buckets(aw: httpx.Client, hostname: str, *, only_host: bool) -> tuple[str, str | None]:
    r = aw.get("/api/0/buckets/")
    r.raise_for_status()
    buckets: dict[str, dict[str, Any]] = r.json()

    def pick(kind: str) -> str | None:
        mine = [b for b, v in buckets.items() if v.get("type") == kind]
        local = [b for b in mine if buckets[b].get("hostname") == hostname]
        chosen = local or (mine if len(mine) == 1 and not only_host else [])
        return sorted(chosen)[0] if chosen else None

    afk = pick("afkstatus")
    if afk is None:
        raise ForwardError(
            f"aw-server has no afkstatus bucket for host {hostname!r} "
            "(is aw-watcher-afk running? --hostname picks another host)"
        )
    return afk, pick("currentwindow")


def _events(aw: httpx.Client, bucket: str, start_ms: int) -> list[dict[str, Any]]:
    start = (_EPOCH + start_ms * _MS).isoformat()
    r = aw.get(f"/api/0/buckets/{bucket}/events", params={"start": start, "limit": -1})
    r.raise_for_status()
    events: list[dict[str, Any]] = r.json()
    return events


def identity(cfg: Config, info: dict[str, Any]) -> Identity:
    host = cfg.client_name or cfg.hostname or str(info.get("hostname") or "unknown")
    guid = cfg.client_guid or str(
        info.get("device_id") or uuid.uuid5(uuid.NAMESPACE_DNS, f"{host}.activitywatch")
    )
    name = cfg.user_name or getpass.getuser()
    user_id = cfg.user_id if cfg.user_id is not None else zlib.crc32(name.lower().encode())
    return Identity(user_id % 2_147_483_648, name, guid, host)


def _send(server: Client, events: list[dict[str, Any]], result: Pass) -> None:
    """Send through :class:`sessionscope.client.Client`: batches of 1,000, retried (with the
    same ids, so nothing is stored twice) on 429, 502, 503, 504 and lost connections."""
    try:
        sent = server.send(events)
    except ClientError as exc:
        raise ForwardError(f"sessionscope answered {exc}") from None
    except httpx.TransportError as exc:
        raise ForwardError(f"sessionscope did not answer: {exc}") from None
    result.sent += len(events)
    result.accepted += sent.accepted
    result.duplicates += sent.duplicates


def forward_once(cfg: Config, *, now_ms: int | None = None) -> Pass:
    """One pass: read what is new in aw-server, send it, then save the state."""
    now = now_ms if now_ms is not None else (datetime.now(UTC) - _EPOCH) // _MS
    state = State.load(cfg.state_path)
    if state is None:
        state = State(cfg.since_ms if cfg.since_ms is not None else now - 7 * 86_400_000)
    with (
        httpx.Client(base_url=cfg.aw_url, timeout=cfg.timeout_s) as aw,
        Client(cfg.url, cfg.api_key, timeout=cfg.timeout_s, batch_size=_BATCH) as server,
    ):
        try:
            info_r = aw.get("/api/0/info")
            info_r.raise_for_status()
            info: dict[str, Any] = info_r.json()
            host = cfg.hostname or str(info.get("hostname") or "")
            afk, window = _buckets(aw, host, only_host=cfg.hostname is not None)
            start = state.cursor_ms - _LOOKBACK_MS
            afk_events = _events(aw, afk, start)
            window_events = _events(aw, window, start) if window else []
        except httpx.HTTPError as exc:
            raise ForwardError(f"aw-server at {cfg.aw_url}: {exc}") from None
        result = plan(
            state,
            identity(cfg, info),
            afk_events,
            window_events,
            now_ms=now,
            heartbeat_s=cfg.heartbeat_s,
            new_session_after_s=cfg.new_session_after_s,
            day_start_min=cfg.day_start_min,
        )
        _send(server, result.events, result)
    assert result.state is not None
    result.state.save(cfg.state_path)
    return result


def run(cfg: Config, *, once: bool, interval_s: float, echo: Any = print) -> None:
    """Forward once, or every ``interval_s`` seconds until interrupted (a failed pass is
    reported and tried again at the next one)."""
    while True:
        try:
            echo(json.dumps(forward_once(cfg).summary()))
        except ForwardError as exc:
            if once:
                raise
            echo(json.dumps({"error": str(exc)}))
        if once:
            return
        time.sleep(interval_s)
